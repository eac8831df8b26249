//! The library path, from query bytes to response bytes: parsing with hickory-proto, the
//! checks NSD 4.6 makes before answering, EDNS, lookup, encoding (`crate::encode`). Every
//! query the hot path (`crate::fast`) does not take comes here, and its bytes are the
//! reference the hot path is tested against.

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use model::{DNSClass, RData, Record, RecordType};

use crate::catalog::Zones;
use crate::config::ServerConfig;
use crate::encode::{encode, Reply, ReplyOpt};
use crate::lookup::{lookup, AnswerKind};
use crate::stats::{reply_rcode, RcodeCounters};
use crate::wire_format::{
    Transport, CLASSIC_UDP_BYTES, FLAG_AA, FLAG_AD, FLAG_QR, FLAG_RD, HEADER_BYTES,
};

const OPCODE_QUERY: u8 = 0;
const OPCODE_NOTIFY: u8 = 4;
/// RFC 8914 extended DNS error option code and the two codes NSD sends.
const EDE_NOT_AUTHORITATIVE: u16 = 20;
const EDE_NOT_SUPPORTED: u16 = 21;

/// The library path's answer to one DNS message, the reference every other path is
/// compared with: `None` means stay silent (no header, or not a query). Servers answer
/// through [`crate::handle`], which takes the hot path first.
pub fn answer_library(
    packet: &[u8],
    transport: Transport,
    zones: &Zones,
    config: &ServerConfig,
) -> Option<Vec<u8>> {
    respond(packet, transport, zones, config).map(|answered| answered.reply)
}

/// An answer and what it counts as in the query statistics.
pub(crate) struct Answered<'a> {
    pub(crate) reply: Vec<u8>,
    /// The counters of the zone that answered; `None` when no served zone did.
    pub(crate) counters: Option<&'a RcodeCounters>,
    /// The full response code, BADVERS included.
    pub(crate) rcode: u16,
}

impl Answered<'_> {
    fn unmatched(reply: Vec<u8>) -> Answered<'static> {
        let rcode = reply_rcode(&reply);
        Answered {
            reply,
            counters: None,
            rcode,
        }
    }
}

/// [`handle_with`], also saying which zone answered and with what response code.
pub(crate) fn respond<'a>(
    packet: &[u8],
    transport: Transport,
    zones: &'a Zones,
    config: &ServerConfig,
) -> Option<Answered<'a>> {
    let header = RawHeader::parse(packet)?;
    if header.flags1 & FLAG_QR != 0 {
        return None;
    }
    // Opcodes are checked before anything else is parsed: a new opcode may lay out its
    // sections differently (NSD does the same).
    if header.opcode() != OPCODE_QUERY && header.opcode() != OPCODE_NOTIFY {
        return Some(Answered::unmatched(
            header.error_reply(ResponseCode::NotImp),
        ));
    }
    if header.flags2 & 0x0f != 0 {
        return Some(Answered::unmatched(header.formerr(true)));
    }
    let mut decoder = BinDecoder::new(packet);
    // The header was read by hand above; 12 bytes are there.
    if decoder.read_slice(HEADER_BYTES).is_err() {
        return None;
    }
    // NSD reads a question even when QDCOUNT says there is none and rejects the message
    // if it does not decode.
    let Ok(query) = Query::read(&mut decoder) else {
        return Some(Answered::unmatched(header.formerr(true)));
    };
    if header.opcode() == OPCODE_NOTIFY {
        // We accept NOTIFY from nobody: REFUSED for a zone we serve, NXDOMAIN otherwise.
        let served = zones
            .find(query.name())
            .is_some_and(|zone| zone.origin() == &crate::zone::key(query.name()));
        let rcode = if served {
            ResponseCode::Refused
        } else {
            ResponseCode::NXDomain
        };
        return Some(Answered::unmatched(header.error_reply(rcode)));
    }
    if header.qdcount != 1 {
        return Some(Answered::unmatched(header.formerr(false)));
    }
    if header.ancount != 0 || (header.nscount != 0 && query.query_type() != RecordType::IXFR) {
        return Some(Answered::unmatched(header.formerr(true)));
    }
    for _ in 0..header.nscount {
        if Record::read(&mut decoder).is_err() {
            return Some(Answered::unmatched(header.formerr(true)));
        }
    }
    let edns = match read_additional(&mut decoder, header.arcount) {
        Ok(edns) => edns,
        Err(()) => return Some(Answered::unmatched(header.formerr(true))),
    };
    // Anything after the parsed records is ignored, as NSD does.
    Some(answer(&header, &query, edns, transport, zones, config))
}

/// The header fields we need, read by hand so that any opcode can be answered.
struct RawHeader {
    id: u16,
    flags1: u8,
    flags2: u8,
    qdcount: u16,
    ancount: u16,
    nscount: u16,
    arcount: u16,
}

impl RawHeader {
    fn parse(packet: &[u8]) -> Option<RawHeader> {
        let bytes: &[u8; HEADER_BYTES] = packet.get(..HEADER_BYTES)?.try_into().ok()?;
        let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        Some(RawHeader {
            id: word(0),
            flags1: bytes[2],
            flags2: bytes[3],
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    fn opcode(&self) -> u8 {
        (self.flags1 >> 3) & 0x0f
    }

    fn rd(&self) -> u8 {
        self.flags1 & FLAG_RD
    }

    /// FORMERR: QR, the opcode and (unless `keep_rd` is false) RD; no sections.
    fn formerr(&self, keep_rd: bool) -> Vec<u8> {
        let rd = if keep_rd { self.rd() } else { 0 };
        let flags1 = FLAG_QR | (self.opcode() << 3) | rd;
        bare_header(self.id, flags1, ResponseCode::FormErr.low())
    }

    /// NSD's `query_error`: the query's flags with QR set and AD cleared, no sections.
    fn error_reply(&self, rcode: ResponseCode) -> Vec<u8> {
        let flags2 = (self.flags2 & 0xf0 & !FLAG_AD) | rcode.low();
        bare_header(self.id, self.flags1 | FLAG_QR, flags2)
    }
}

fn bare_header(id: u16, flags1: u8, flags2: u8) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_BYTES];
    out[..2].copy_from_slice(&id.to_be_bytes());
    out[2] = flags1;
    out[3] = flags2;
    out
}

/// The EDNS parameters of a query.
#[derive(Debug, Clone, Copy)]
struct QueryEdns {
    payload_bytes: u16,
    version: u8,
    dnssec_ok: bool,
}

/// The additional section of a query: at most one OPT, first, with the root as owner.
/// Anything else there (a second OPT, TSIG, other records) is a format error to NSD 4.6.
fn read_additional(decoder: &mut BinDecoder<'_>, count: u16) -> Result<Option<QueryEdns>, ()> {
    if count == 0 {
        return Ok(None);
    }
    let record = Record::read(decoder).map_err(|_| ())?;
    if record.record_type() != RecordType::OPT || !record.name.is_root() || count > 1 {
        return Err(());
    }
    if !matches!(
        record.data,
        RData::OPT(_) | RData::Update0(_) | RData::NULL(_)
    ) {
        return Err(());
    }
    Ok(Some(QueryEdns {
        // RFC 6891 §6.2.5: values below 512 are treated as 512.
        payload_bytes: u16::from(record.dns_class).max(512),
        version: ((record.ttl >> 16) & 0xff) as u8,
        dnssec_ok: record.ttl & 0x8000 != 0,
    }))
}

fn answer<'a>(
    header: &RawHeader,
    query: &Query,
    edns: Option<QueryEdns>,
    transport: Transport,
    zones: &'a Zones,
    config: &ServerConfig,
) -> Answered<'a> {
    let our_payload = config.udp_payload_bytes;
    let opt = |extended_error: Option<u16>| {
        edns.map(|edns| ReplyOpt {
            payload_bytes: our_payload,
            dnssec_ok: edns.dnssec_ok,
            extended_error,
        })
    };
    let limit = match (transport, edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(edns)) => usize::from(edns.payload_bytes.min(our_payload)),
        (Transport::Udp, None) => CLASSIC_UDP_BYTES,
    };
    let mut reply = Reply {
        id: header.id,
        flags1: FLAG_QR | header.rd(),
        rcode: ResponseCode::NoError,
        question: Some(query.clone()),
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
        authority_optional: false,
        opt: opt(None),
    };
    if let Some(edns) = edns {
        if edns.version != 0 {
            // RFC 6891 §6.1.3: BADVERS, with our version 0; NSD does not echo DO here.
            reply.rcode = ResponseCode::BADVERS;
            reply.opt = opt(None).map(|o| ReplyOpt {
                dnssec_ok: false,
                ..o
            });
            return Answered {
                reply: encode(reply, limit, query.name()),
                counters: None,
                rcode: u16::from(ResponseCode::BADVERS),
            };
        }
    }
    let qclass = query.query_class();
    if qclass == DNSClass::CH {
        reply.rcode = ResponseCode::Refused;
        reply.opt = opt(Some(EDE_NOT_SUPPORTED));
        return Answered::unmatched(encode(reply, limit, query.name()));
    }
    if qclass != DNSClass::IN && qclass != DNSClass::ANY {
        // NSD answers other classes like an error: no question, but with OPT.
        reply.flags1 = header.flags1 | FLAG_QR;
        reply.rcode = ResponseCode::Refused;
        reply.question = None;
        reply.opt = opt(Some(EDE_NOT_SUPPORTED));
        let mut out = encode(reply, limit, query.name());
        out[3] |= header.flags2 & 0xf0 & !FLAG_AD;
        return Answered::unmatched(out);
    }
    let qtype = query.query_type();
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // No zone transfers from this server: NSD says NOTIMP for AXFR over UDP and
        // REFUSED otherwise (no transfer ACL).
        reply.rcode = if qtype == RecordType::AXFR && transport == Transport::Udp {
            ResponseCode::NotImp
        } else {
            ResponseCode::Refused
        };
        return Answered::unmatched(encode(reply, limit, query.name()));
    }
    let Some(served) = zones.find_served_for(query.name(), qtype) else {
        reply.rcode = ResponseCode::Refused;
        reply.opt = opt(Some(EDE_NOT_AUTHORITATIVE));
        return Answered::unmatched(encode(reply, limit, query.name()));
    };
    let result = lookup(&served.zone, query.name(), qtype, config.cname_chain_length);
    reply.rcode = result.rcode;
    reply.answers = result.answers;
    reply.authorities = result.authorities;
    reply.additionals = result.additionals;
    reply.authority_optional = result.kind == AnswerKind::Data;
    let mut authoritative = result.authoritative;
    if qclass == DNSClass::ANY {
        // NSD: class ANY answers are not authoritative and carry only answer data (and
        // the NS and glue of a referral).
        authoritative = false;
        if result.kind != AnswerKind::Referral {
            reply.authorities.clear();
            reply.additionals.clear();
        }
    }
    if authoritative {
        reply.flags1 |= FLAG_AA;
    }
    let rcode = u16::from(reply.rcode);
    Answered {
        reply: encode(reply, limit, query.name()),
        counters: Some(&served.counters),
        rcode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::lookup::common;
    use crate::snapshot::ZoneSnapshot;

    /// The library path on a catalog's zones: what these tests are about.
    fn handle(
        packet: &[u8],
        transport: Transport,
        catalog: &Catalog,
        config: &ServerConfig,
    ) -> Option<Vec<u8>> {
        answer_library(packet, transport, &catalog.snapshot(), config)
    }
    use hickory_proto::op::Message;
    use model::Generation;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// Built once: building pre-encodes every answer, slow in a debug build.
    fn catalog() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| {
            let catalog = Catalog::new();
            catalog.replace_zone(Arc::new(ZoneSnapshot::build(
                &common::example_zone(7),
                Generation(1),
            )));
            catalog
        })
    }

    fn query(qname: &str, qtype: u16, qclass: u16, opt: Option<u32>) -> Vec<u8> {
        let mut out = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(opt.is_some()),
        ];
        for label in qname.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&qclass.to_be_bytes());
        if let Some(ttl) = opt {
            out.extend_from_slice(&[0, 0, 41, 0x04, 0xd0]);
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    fn ask(packet: &[u8], transport: Transport) -> Message {
        let reply = handle(packet, transport, catalog(), &ServerConfig::default())
            .expect("every test query gets a reply");
        Message::from_vec(&reply).expect("replies decode")
    }

    #[test]
    fn rfc1035_answer_echoes_question_case_and_copies_rd() {
        let reply = ask(&query("WwW.ExAmPle.TeSt", 1, 1, None), Transport::Udp);
        assert!(reply.authoritative && reply.recursion_desired && !reply.recursion_available);
        assert_eq!(reply.queries[0].name().to_ascii(), "WwW.ExAmPle.TeSt.");
        assert_eq!(reply.answers[0].name.to_ascii(), "WwW.ExAmPle.TeSt.");
        assert_eq!(reply.authorities[0].name.to_ascii(), "ExAmPle.TeSt.");
    }

    #[test]
    fn rfc6891_opt_in_query_gets_opt_with_our_payload_and_do_copied() {
        let reply = ask(
            &query("www.example.test", 1, 1, Some(0x8000)),
            Transport::Udp,
        );
        let edns = reply.edns.expect("OPT in reply");
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);
        let plain = ask(&query("www.example.test", 1, 1, None), Transport::Udp);
        assert!(plain.edns.is_none());
    }

    #[test]
    fn rfc6891_edns_version_above_zero_is_badvers() {
        let reply = ask(
            &query("www.example.test", 1, 1, Some(0x0001_0000)),
            Transport::Udp,
        );
        assert_eq!(
            u16::from(reply.response_code),
            16,
            "BADVERS (hickory decodes 16 as BADSIG)"
        );
        assert!(!reply.authoritative && reply.answers.is_empty());
    }

    #[test]
    fn rfc2181_9_rrset_too_big_for_udp_sets_tc_with_empty_answer() {
        let reply = ask(&query("big.example.test", 16, 1, None), Transport::Udp);
        assert!(reply.truncation && reply.answers.is_empty());
        let tcp = ask(&query("big.example.test", 16, 1, None), Transport::Tcp);
        assert!(!tcp.truncation);
        assert_eq!(tcp.answers.len(), 31);
    }

    #[test]
    fn rfc2181_9_optional_authority_is_dropped_without_tc() {
        let reply = ask(&query("mid2.example.test", 16, 1, None), Transport::Udp);
        assert!(!reply.truncation);
        assert_eq!(reply.answers.len(), 2);
        assert!(reply.authorities.is_empty());
    }

    #[test]
    fn rfc1035_names_outside_every_zone_are_refused_without_aa() {
        let reply = ask(&query("www.other.test", 1, 1, None), Transport::Udp);
        assert_eq!(reply.response_code, ResponseCode::Refused);
        assert!(!reply.authoritative);
    }

    #[test]
    fn rfc1035_classes_other_than_in_are_refused() {
        for class in [3u16, 4, 254] {
            let reply = ask(&query("www.example.test", 1, class, None), Transport::Udp);
            assert_eq!(reply.response_code, ResponseCode::Refused, "class {class}");
        }
        let any = ask(&query("www.example.test", 1, 255, None), Transport::Udp);
        assert_eq!(any.answers.len(), 2);
        assert!(!any.authoritative);
    }

    #[test]
    fn rfc1035_opcodes_other_than_query_are_notimp() {
        for opcode in [1u8, 2, 3, 5, 15] {
            let mut packet = query("www.example.test", 1, 1, None);
            packet[2] = opcode << 3;
            let reply = ask(&packet, Transport::Udp);
            assert_eq!(reply.response_code, ResponseCode::NotImp, "opcode {opcode}");
        }
    }

    #[test]
    fn rfc1035_responses_and_short_packets_get_silence() {
        let config = ServerConfig::default();
        let mut packet = query("www.example.test", 1, 1, None);
        packet[2] |= 0x80;
        assert!(handle(&packet, Transport::Udp, catalog(), &config).is_none());
        assert!(handle(&packet[..11], Transport::Udp, catalog(), &config).is_none());
    }

    fn valid_or_error(reply: &[u8]) {
        assert!(reply.len() >= 12);
        assert!(reply[2] & 0x80 != 0, "QR must be set");
        let rcode = reply[3] & 0x0f;
        if matches!(rcode, 1 | 4 | 5) && reply[4..12].iter().all(|b| *b == 0) {
            return;
        }
        Message::from_vec(reply).expect("a reply that is not a bare error decodes");
    }

    proptest! {
        #[test]
        fn any_bytes_get_silence_or_a_well_formed_reply(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(reply) = handle(&bytes, Transport::Udp, catalog(), &ServerConfig::default()) {
                valid_or_error(&reply);
            }
        }

        #[test]
        fn mutated_valid_queries_get_silence_or_a_well_formed_reply(
            position in 0usize..40, value in any::<u8>(), cut in 0usize..50, edns in any::<bool>()
        ) {
            let mut packet = query("www.example.test", 1, 1, edns.then_some(0));
            let position = position % packet.len();
            packet[position] = value;
            packet.truncate(packet.len().min(cut.max(12)));
            for transport in [Transport::Udp, Transport::Tcp] {
                if let Some(reply) = handle(&packet, transport, catalog(), &ServerConfig::default()) {
                    valid_or_error(&reply);
                }
            }
        }
    }
}
