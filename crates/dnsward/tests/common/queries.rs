//! The query set of the differential tests over `examples/zones/example.test.zone`: each
//! behaviour of an authoritative server (RFC 1034/1035/2181/2308/4592/6891/7766/8482) once.

use hickory_proto::rr::RecordType;

/// Every query of the set.
pub const EXAMPLE_QUERIES: &[(&str, RecordType)] = &[
    // positive answers, one per record type
    ("example.test.", RecordType::SOA),
    ("example.test.", RecordType::NS),
    ("example.test.", RecordType::MX),
    ("example.test.", RecordType::TXT),
    ("example.test.", RecordType::CAA),
    ("www.example.test.", RecordType::A),
    ("www.example.test.", RecordType::AAAA),
    ("_sip._tcp.example.test.", RecordType::SRV),
    ("10.2.0.192.in-addr.example.test.", RecordType::PTR),
    ("text.example.test.", RecordType::TXT),
    ("api.example.test.", RecordType::A),
    // 0x20 mixed case: question echoed as asked
    ("WwW.ExAmPlE.tEsT.", RecordType::A),
    // RFC 2308: NODATA and NXDOMAIN carry the SOA in authority
    ("www.example.test.", RecordType::MX),
    ("www.example.test.", RecordType::Unknown(65280)),
    ("nothing.example.test.", RecordType::A),
    ("deep.nothing.example.test.", RecordType::AAAA),
    // empty non-terminals answer NODATA
    ("ent.example.test.", RecordType::A),
    ("c.ent.example.test.", RecordType::A),
    ("b.c.ent.example.test.", RecordType::TXT),
    ("x.b.c.ent.example.test.", RecordType::A),
    // CNAME: chains, dangling, leaving the zone, loops, qtype CNAME
    ("alias.example.test.", RecordType::A),
    ("alias.example.test.", RecordType::CNAME),
    ("alias.example.test.", RecordType::MX),
    ("chain1.example.test.", RecordType::A),
    ("dangling.example.test.", RecordType::A),
    ("outside.example.test.", RecordType::A),
    ("loop1.example.test.", RecordType::A),
    // RFC 4592 wildcards
    ("anything.wild.example.test.", RecordType::A),
    ("anything.wild.example.test.", RecordType::TXT),
    ("anything.wild.example.test.", RecordType::MX),
    ("two.labels.wild.example.test.", RecordType::A),
    ("exists.wild.example.test.", RecordType::A),
    ("exists.wild.example.test.", RecordType::AAAA),
    ("below.exists.wild.example.test.", RecordType::A),
    ("wild.example.test.", RecordType::A),
    ("x.cnamewild.example.test.", RecordType::A),
    // delegations: referral with glue, occluded data, DS from the parent
    ("sub.example.test.", RecordType::NS),
    ("sub.example.test.", RecordType::A),
    ("hidden.sub.example.test.", RecordType::A),
    ("ns.sub.example.test.", RecordType::A),
    ("deep.below.sub.example.test.", RecordType::MX),
    ("sub.example.test.", RecordType::DS),
    // a record set larger than 512 bytes: TC without EDNS, whole with EDNS and over TCP
    ("big.example.test.", RecordType::TXT),
    // outside every served zone
    ("www.example.net.", RecordType::A),
    ("test.", RecordType::SOA),
];
