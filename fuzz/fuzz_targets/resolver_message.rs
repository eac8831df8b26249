//! Arbitrary bytes through the caching resolver's wire code (`resolver::message`), as a
//! client query and as an upstream answer.
//!
//! Properties:
//! * `parse_query` never panics; it drops only what has no header or is a response, and
//!   every reply it makes has QR set and the query's ID;
//! * for a query it accepts: `error_reply` and `servfail` have QR set, the query's ID and
//!   the question as asked; the UDP limit is between 512 and ours; the query we would send
//!   upstream for its key parses back to the same key, with our EDNS;
//! * `parse_answer` never panics, given the ID and question of the bytes themselves (so the
//!   fuzzer gets past the match checks) and given a fixed question; an accepted answer keeps
//!   every TTL offset inside its bytes and no OPT;
//! * rendering an accepted answer for a client (with and without EDNS, fresh and stale)
//!   never panics, has QR set and the client's ID, and a UDP rendering fits the client's
//!   limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resolver::message::{
    error_reply, parse_answer, parse_query, render, servfail, upstream_query, AnswerKind,
    ClientQuery, Parsed, Render, Stored, TtlRewrite, EDE_STALE_ANSWER, HEADER_BYTES, MAX_KEY_BYTES,
    RCODE_FORMERR, RCODE_SERVFAIL,
};
use resolver::{SERVE_STALE_TEXT, STALE_ON_EMPTY_TEXT};

/// The resolver's default EDNS payload size.
const OUR_PAYLOAD_BYTES: u16 = 1232;
/// `www.example.test.` A IN, lower-cased: a question the fuzzer must match by itself.
const FIXED_KEY: &[u8] = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01";

fuzz_target!(|bytes: &[u8]| {
    check_query(bytes);
    let id = bytes
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    if let Some(key) = own_key(bytes) {
        check_answer(bytes, id, &key);
    }
    check_answer(bytes, id, FIXED_KEY);
});

fn check_query(bytes: &[u8]) {
    match parse_query(bytes) {
        Parsed::Drop => assert!(
            bytes.len() < HEADER_BYTES || bytes[2] & 0x80 != 0,
            "a query with a header was dropped"
        ),
        Parsed::Reply(reply) => check_reply(bytes, &reply, "parse_query reply"),
        Parsed::Query(query) => {
            assert_eq!(query.packet, bytes);
            for (reply, what) in [
                (error_reply(&query, RCODE_FORMERR), "error_reply"),
                (servfail(&query), "servfail"),
            ] {
                check_reply(bytes, &reply, what);
                let question_end = query.name_end + 4;
                assert_eq!(
                    reply[HEADER_BYTES..question_end],
                    bytes[HEADER_BYTES..question_end],
                    "{what}: the question is not the query's"
                );
            }
            assert_eq!(servfail(&query)[3] & 0x0f, RCODE_SERVFAIL);
            let limit = query.udp_limit(OUR_PAYLOAD_BYTES);
            assert!(
                (512..=usize::from(OUR_PAYLOAD_BYTES)).contains(&limit),
                "udp limit {limit}"
            );
            let mut buffer = [0u8; MAX_KEY_BYTES];
            let key = query.key(&mut buffer).to_vec();
            let upstream = upstream_query(0x1234, &key, OUR_PAYLOAD_BYTES);
            match parse_query(&upstream) {
                Parsed::Query(asked) => {
                    let mut again = [0u8; MAX_KEY_BYTES];
                    assert_eq!(asked.key(&mut again), &key[..], "upstream query's key");
                    assert_eq!(asked.id, 0x1234);
                    assert_eq!(
                        asked.edns.map(|edns| edns.payload_bytes),
                        Some(OUR_PAYLOAD_BYTES)
                    );
                }
                other => panic!("our upstream query does not parse as a query: {other:?}"),
            }
        }
    }
}

fn check_reply(query: &[u8], reply: &[u8], what: &str) {
    assert!(reply.len() >= HEADER_BYTES, "{what}: shorter than a header");
    assert!(reply[2] & 0x80 != 0, "{what}: QR is not set");
    assert_eq!(reply[..2], query[..2], "{what}: the ID is not the query's");
}

/// The question of `bytes` as a key (lower-cased plain labels, type, class), if it has one.
fn own_key(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut at = HEADER_BYTES;
    loop {
        let length = usize::from(*bytes.get(at)?);
        if length == 0 {
            break;
        }
        if length > 63 {
            return None;
        }
        at += 1 + length;
    }
    let end = at + 1 + 4;
    (end - HEADER_BYTES <= MAX_KEY_BYTES)
        .then(|| bytes.get(HEADER_BYTES..end))
        .flatten()
        .map(|key| key.to_ascii_lowercase())
}

fn check_answer(bytes: &[u8], id: u16, key: &[u8]) {
    let Ok(stored) = parse_answer(bytes, id, key) else {
        return;
    };
    assert!(stored.bytes.len() >= HEADER_BYTES + key.len());
    for &offset in &stored.ttl_offsets {
        assert!(
            offset as usize + 4 <= stored.bytes.len(),
            "TTL offset {offset} past the stored {} bytes",
            stored.bytes.len()
        );
    }
    if stored.kind == AnswerKind::Positive {
        assert!(stored.bytes[6..8] != [0, 0], "positive without answers");
    }
    for edns in [None, Some(512u16), Some(4096)] {
        let client = client_query(
            id ^ 0x5a5a,
            &bytes[HEADER_BYTES..HEADER_BYTES + key.len()],
            edns,
        );
        let Parsed::Query(query) = parse_query(&client) else {
            // The answer's question is not one a client could ask (e.g. AXFR).
            continue;
        };
        render_all(&stored, &query, &client);
    }
}

/// A client's query for the question `question` (name as the answer spells it).
fn client_query(id: u16, question: &[u8], edns: Option<u16>) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0x01, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    packet.extend_from_slice(question);
    if let Some(payload) = edns {
        packet.extend_from_slice(&[0, 0, 41]);
        packet.extend_from_slice(&payload.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
    }
    packet
}

fn render_all(stored: &Stored, query: &ClientQuery<'_>, client: &[u8]) {
    let udp_limit = query.udp_limit(OUR_PAYLOAD_BYTES);
    for (ttl, ede, limit) in [
        (TtlRewrite::Age(7), None, udp_limit),
        (
            TtlRewrite::Fixed(30),
            Some((EDE_STALE_ANSWER, SERVE_STALE_TEXT)),
            udp_limit,
        ),
        (
            TtlRewrite::Age(u32::MAX),
            Some((EDE_STALE_ANSWER, STALE_ON_EMPTY_TEXT)),
            usize::from(u16::MAX),
        ),
    ] {
        let how = Render {
            ttl,
            ede,
            keep_authoritative: ede.is_none(),
            limit_bytes: limit,
            payload_bytes: OUR_PAYLOAD_BYTES,
        };
        let out = render(stored, query, &how);
        check_reply(client, &out, "render");
        assert!(
            out.len() <= limit,
            "rendered {} bytes over the limit of {limit}",
            out.len()
        );
    }
}
