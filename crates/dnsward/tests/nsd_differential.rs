//! Differential test against NSD: both servers load the same zone file and must give the
//! same reply to every query of a set that exercises each behaviour of an authoritative
//! server (RFC 1034/1035/2181/2308/4592/6891/7766/8482), over UDP with EDNS, UDP without
//! EDNS and TCP.
//!
//! Compared: rcode, AA, TC, the question (with its case), the presence of OPT, and the
//! answer, authority and additional sections as sets (record order within an RRset is not
//! significant). ANY is answered minimally (RFC 8482), so there dnsward's answer must be a
//! non-empty subset of NSD's.

mod common;

use std::collections::BTreeSet;

use common::{example_zone, query, start_dnsward, start_nsd, tcp_exchange, udp_exchange};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};

#[derive(Debug, Clone, Copy)]
enum Transport {
    UdpEdns,
    UdpPlain,
    Tcp,
}

/// dnsward also fills authority and additional of positive answers as NSD does, so every
/// section is compared for every query but ANY.
const COMPARE_ALL_SECTIONS: bool = true;

/// The held-out query set (`tests/common/queries.rs`), shared with the transfer tests.
const QUERIES: &[(&str, RecordType)] = common::queries::EXAMPLE_QUERIES;

fn exchange(
    server: std::net::SocketAddr,
    name: &str,
    rtype: RecordType,
    transport: Transport,
) -> Message {
    let result = match transport {
        Transport::UdpEdns => udp_exchange(
            server,
            &query(name, rtype, Some(1232)),
            common::QUERY_TIMEOUT,
        ),
        Transport::UdpPlain => {
            udp_exchange(server, &query(name, rtype, None), common::QUERY_TIMEOUT)
        }
        Transport::Tcp => tcp_exchange(server, &query(name, rtype, Some(1232))),
    };
    result
        .unwrap_or_else(|error| panic!("{name} {rtype} over {transport:?} from {server}: {error}"))
}

/// Records as comparable text, order-independent within a section.
fn section(records: &[Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|record| record.record_type() != RecordType::OPT)
        .map(|record| {
            format!(
                "{} {} {} {}",
                record.name.to_ascii().to_ascii_lowercase(),
                record.ttl,
                record.record_type(),
                record.data
            )
        })
        .collect()
}

fn is_negative_or_referral(reply: &Message) -> bool {
    reply.metadata.response_code != ResponseCode::NoError
        || reply.answers.is_empty()
        || !reply.metadata.authoritative
}

fn differences(name: &str, rtype: RecordType, ours: &Message, theirs: &Message) -> Vec<String> {
    let mut out = Vec::new();
    let check = |out: &mut Vec<String>, what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: dnsward {a} / nsd {b}"));
        }
    };
    check(
        &mut out,
        "rcode",
        format!("{:?}", ours.metadata.response_code),
        format!("{:?}", theirs.metadata.response_code),
    );
    check(
        &mut out,
        "aa",
        ours.metadata.authoritative.to_string(),
        theirs.metadata.authoritative.to_string(),
    );
    check(
        &mut out,
        "tc",
        ours.metadata.truncation.to_string(),
        theirs.metadata.truncation.to_string(),
    );
    check(
        &mut out,
        "qr",
        ours.metadata.message_type_is_response().to_string(),
        "true".into(),
    );
    check(
        &mut out,
        "question",
        ours.queries
            .iter()
            .map(|q| q.name().to_ascii())
            .collect::<Vec<_>>()
            .join(","),
        theirs
            .queries
            .iter()
            .map(|q| q.name().to_ascii())
            .collect::<Vec<_>>()
            .join(","),
    );
    check(
        &mut out,
        "edns",
        ours.edns.is_some().to_string(),
        theirs.edns.is_some().to_string(),
    );
    let (our_answer, their_answer) = (section(&ours.answers), section(&theirs.answers));
    if rtype == RecordType::ANY {
        if our_answer.is_empty() || !our_answer.is_subset(&their_answer) {
            out.push(format!(
                "ANY answer not a non-empty subset: {our_answer:?} / {their_answer:?}"
            ));
        }
    } else {
        check(
            &mut out,
            "answer",
            format!("{our_answer:?}"),
            format!("{their_answer:?}"),
        );
    }
    if (is_negative_or_referral(theirs) || COMPARE_ALL_SECTIONS) && rtype != RecordType::ANY {
        check(
            &mut out,
            "authority",
            format!("{:?}", section(&ours.authorities)),
            format!("{:?}", section(&theirs.authorities)),
        );
        check(
            &mut out,
            "additional",
            format!("{:?}", section(&ours.additionals)),
            format!("{:?}", section(&theirs.additionals)),
        );
    }
    out.into_iter()
        .map(|d| format!("{name} {rtype}: {d}"))
        .collect()
}

trait IsResponse {
    fn message_type_is_response(&self) -> bool;
}

impl IsResponse for hickory_proto::op::Metadata {
    fn message_type_is_response(&self) -> bool {
        self.message_type == hickory_proto::op::MessageType::Response
    }
}

fn compare_all(transport: Transport) {
    let mut queries: Vec<(&str, RecordType)> = QUERIES.to_vec();
    queries.push(("www.example.test.", RecordType::ANY));
    compare_zone("example.test", &example_zone(), &queries, transport);
}

/// Names below a DNAME, at its owner, leaving the zone through it, and overflowing a name.
const DNAME_QUERIES: &[(&str, RecordType)] = &[
    ("www.old.dname.test.", RecordType::A),
    ("WwW.oLd.DnAmE.tEsT.", RecordType::A),
    ("mail.old.dname.test.", RecordType::MX),
    ("www.old.dname.test.", RecordType::TXT),
    ("missing.old.dname.test.", RecordType::A),
    ("deep.www.old.dname.test.", RecordType::A),
    ("www.old.dname.test.", RecordType::CNAME),
    ("www.old.dname.test.", RecordType::DNAME),
    ("old.dname.test.", RecordType::DNAME),
    ("old.dname.test.", RecordType::TXT),
    ("old.dname.test.", RecordType::A),
    ("a.b.away.dname.test.", RecordType::A),
    ("new.dname.test.", RecordType::A),
    (
        "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd.long.dname.test.",
        RecordType::A,
    ),
];

#[test]
fn dname_answers_equal_nsd_over_udp_and_tcp() {
    let zone = common::repo_root().join("examples/zones/dname.test.zone");
    for transport in [Transport::UdpEdns, Transport::Tcp] {
        compare_zone("dname.test", &zone, DNAME_QUERIES, transport);
    }
}

fn compare_zone(
    zone: &str,
    zone_file: &std::path::Path,
    queries: &[(&str, RecordType)],
    transport: Transport,
) {
    let nsd = start_nsd(zone, zone_file);
    let zone_arg = zone_file.to_string_lossy().into_owned();
    let dnsward = start_dnsward(&["serve", "--zone", &zone_arg], &format!("{zone}."));
    let mut all = Vec::new();
    for &(name, rtype) in queries {
        let ours = exchange(dnsward.addr, name, rtype, transport);
        let theirs = exchange(nsd.addr, name, rtype, transport);
        all.extend(differences(name, rtype, &ours, &theirs));
    }
    assert!(
        all.is_empty(),
        "dnsward differs from NSD over {transport:?}:\n{}",
        all.join("\n")
    );
}

#[test]
fn answers_equal_nsd_over_udp_with_edns() {
    compare_all(Transport::UdpEdns);
}

#[test]
fn answers_equal_nsd_over_udp_without_edns() {
    compare_all(Transport::UdpPlain);
}

#[test]
fn answers_equal_nsd_over_tcp() {
    compare_all(Transport::Tcp);
}

#[test]
fn the_large_record_set_is_truncated_without_edns_and_whole_over_tcp() {
    let zone_file = example_zone();
    let zone_arg = zone_file.to_string_lossy().into_owned();
    let dnsward = start_dnsward(&["serve", "--zone", &zone_arg], "example.test.");
    let plain = exchange(
        dnsward.addr,
        "big.example.test.",
        RecordType::TXT,
        Transport::UdpPlain,
    );
    assert!(
        plain.metadata.truncation,
        "a 700-byte answer must set TC in 512 bytes"
    );
    let tcp = exchange(
        dnsward.addr,
        "big.example.test.",
        RecordType::TXT,
        Transport::Tcp,
    );
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 7);
}

/// A valid query for www.example.test A as bytes, with EDNS when `edns_version` is given.
fn raw_query(edns_version: Option<u8>) -> Vec<u8> {
    let mut message = query(
        "www.example.test.",
        RecordType::A,
        edns_version.map(|_| 1232),
    );
    if let (Some(version), Some(edns)) = (edns_version, message.edns.as_mut()) {
        edns.set_version(version);
    }
    message.to_vec().expect("test query encodes")
}

/// (what, packet) pairs that must get the same error reply from both servers.
fn error_cases() -> Vec<(&'static str, Vec<u8>)> {
    let plain = raw_query(None);
    let mut two_questions = plain.clone();
    two_questions[5] = 2; // QDCOUNT = 2 with the question repeated
    two_questions.extend_from_slice(&plain[12..]);
    let mut no_question = plain[..12].to_vec();
    no_question[5] = 0;
    let mut status_opcode = plain.clone();
    status_opcode[2] = (status_opcode[2] & 0x87) | (2 << 3); // opcode STATUS
    let mut unknown_opcode = plain.clone();
    unknown_opcode[2] = (unknown_opcode[2] & 0x87) | (15 << 3);
    let mut truncated_question = plain.clone();
    truncated_question.truncate(20);
    vec![
        ("QDCOUNT=2 gets FORMERR", two_questions),
        ("QDCOUNT=0 gets FORMERR", no_question),
        ("a truncated question gets FORMERR", truncated_question),
        ("opcode STATUS gets NOTIMP", status_opcode),
        ("opcode 15 gets NOTIMP", unknown_opcode),
        ("EDNS version 1 gets BADVERS", raw_query(Some(1))),
    ]
}

/// Header fields of a reply: id, QR, opcode, AA, TC, RCODE (low 4 bits), and the extended
/// rcode bits from OPT when the reply decodes.
fn header_summary(reply: &[u8]) -> String {
    let id = u16::from_be_bytes([reply[0], reply[1]]);
    let qr = reply[2] >> 7;
    let opcode = (reply[2] >> 3) & 0x0f;
    let aa = (reply[2] >> 2) & 1;
    let tc = (reply[2] >> 1) & 1;
    let rcode = reply[3] & 0x0f;
    let extended = Message::from_vec(reply)
        .ok()
        .and_then(|m| m.edns.map(|e| e.rcode_high()))
        .unwrap_or(0);
    format!("id={id} qr={qr} opcode={opcode} aa={aa} tc={tc} rcode={rcode} ext={extended}")
}

#[test]
fn error_replies_equal_nsd() {
    let zone_file = example_zone();
    let nsd = start_nsd("example.test", &zone_file);
    let zone_arg = zone_file.to_string_lossy().into_owned();
    let dnsward = start_dnsward(&["serve", "--zone", &zone_arg], "example.test.");
    let mut differences = Vec::new();
    for (what, packet) in error_cases() {
        let ours = common::udp_exchange_raw(dnsward.addr, &packet, common::QUERY_TIMEOUT)
            .expect("send to dnsward");
        let theirs = common::udp_exchange_raw(nsd.addr, &packet, common::QUERY_TIMEOUT)
            .expect("send to nsd");
        let ours = ours.as_deref().map(header_summary);
        let theirs = theirs.as_deref().map(header_summary);
        if ours != theirs {
            differences.push(format!("{what}: dnsward {ours:?} / nsd {theirs:?}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
