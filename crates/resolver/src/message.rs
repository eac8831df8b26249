//! Wire bytes in and out. Names are decoded by hickory-proto (compression, label rules);
//! what is done by hand is fixed-offset header fields and copying bytes, so that a cache
//! hit never builds a message object.

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

pub const HEADER_BYTES: usize = 12;
/// RFC 1035 §4.2.1: the UDP limit without EDNS.
pub const CLASSIC_UDP_BYTES: usize = 512;
/// Bytes of a key beyond the name: type and class.
const KEY_TAIL_BYTES: usize = 4;
/// Longest wire name (RFC 1035 §2.3.4) plus type and class.
pub const MAX_KEY_BYTES: usize = 255 + KEY_TAIL_BYTES;

const TYPE_SOA: u16 = 6;
const TYPE_OPT: u16 = 41;
const TYPE_AXFR: u16 = 252;
const TYPE_IXFR: u16 = 251;
const OPCODE_QUERY: u8 = 0;
const FLAG_QR: u8 = 0x80;
const FLAG_AA: u8 = 0x04;
const FLAG_TC: u8 = 0x02;
const FLAG_RD: u8 = 0x01;
const FLAG_RA: u8 = 0x80;
const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_NOTIMP: u8 = 4;
const RCODE_REFUSED: u8 = 5;
/// RFC 8914 Extended DNS Error option and the code we send.
const EDE_OPTION: u16 = 15;
pub const EDE_STALE_ANSWER: u16 = 3;
const DO_BIT: u32 = 0x8000;

/// A client's EDNS: its UDP payload size and DO bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEdns {
    pub payload_bytes: u16,
    pub dnssec_ok: bool,
}

/// A client query, read in place.
#[derive(Debug, Clone, Copy)]
pub struct ClientQuery<'a> {
    pub packet: &'a [u8],
    pub id: u16,
    pub recursion_desired: bool,
    /// End of the question name (it starts at [`HEADER_BYTES`]).
    pub name_end: usize,
    pub edns: Option<ClientEdns>,
}

/// What to do with bytes that arrived.
#[derive(Debug)]
pub enum Parsed<'a> {
    Query(ClientQuery<'a>),
    /// Answer this at once (FORMERR, NOTIMP, REFUSED).
    Reply(Vec<u8>),
    /// Stay silent: not even a header, or a response.
    Drop,
}

/// Reads a client query. Anything we do not forward gets an error answer here.
pub fn parse_query(packet: &[u8]) -> Parsed<'_> {
    let Some(header) = packet.get(..HEADER_BYTES) else {
        return Parsed::Drop;
    };
    if header[2] & FLAG_QR != 0 {
        return Parsed::Drop;
    }
    if (header[2] >> 3) & 0x0f != OPCODE_QUERY {
        return Parsed::Reply(header_reply(packet, RCODE_NOTIMP));
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    if count(4) != 1 || count(6) != 0 || count(8) != 0 {
        return Parsed::Reply(header_reply(packet, RCODE_FORMERR));
    }
    let mut decoder = BinDecoder::new(packet);
    if decoder.read_slice(HEADER_BYTES).is_err() || Name::read(&mut decoder).is_err() {
        return Parsed::Reply(header_reply(packet, RCODE_FORMERR));
    }
    let name_end = decoder.index();
    // A query's name cannot point anywhere (nothing precedes it): it must be plain labels.
    if !plain_labels(&packet[HEADER_BYTES..name_end]) {
        return Parsed::Reply(header_reply(packet, RCODE_FORMERR));
    }
    let Ok(qtype) = decoder.read_u16().map(|v| v.unverified()) else {
        return Parsed::Reply(header_reply(packet, RCODE_FORMERR));
    };
    if decoder.read_u16().is_err() {
        return Parsed::Reply(header_reply(packet, RCODE_FORMERR));
    }
    let query = ClientQuery {
        packet,
        id: count(0),
        recursion_desired: header[2] & FLAG_RD != 0,
        name_end,
        edns: None,
    };
    if qtype == TYPE_AXFR || qtype == TYPE_IXFR {
        return Parsed::Reply(error_reply(&query, RCODE_REFUSED));
    }
    let mut edns = None;
    for _ in 0..count(10) {
        match read_record(&mut decoder) {
            Some(record) if record.rtype == TYPE_OPT => {
                edns = Some(ClientEdns {
                    payload_bytes: record.class,
                    dnssec_ok: record.ttl & DO_BIT != 0,
                });
            }
            Some(_) => {}
            None => return Parsed::Reply(error_reply(&query, RCODE_FORMERR)),
        }
    }
    Parsed::Query(ClientQuery { edns, ..query })
}

/// True when `name` is a sequence of labels ending in the root, without pointers.
fn plain_labels(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&length) = name.get(at) {
        if length == 0 {
            return at + 1 == name.len();
        }
        if length & 0xc0 != 0 {
            return false;
        }
        at += 1 + usize::from(length);
    }
    false
}

impl ClientQuery<'_> {
    /// The question name as it arrived (case preserved).
    pub fn name(&self) -> &[u8] {
        &self.packet[HEADER_BYTES..self.name_end]
    }

    /// The cache key: lower-cased wire name, type, class. Written into `buffer`; returns
    /// the used part. Label lengths are at most 63, below 'A', so lower-casing every byte
    /// leaves them alone.
    pub fn key<'b>(&self, buffer: &'b mut [u8; MAX_KEY_BYTES]) -> &'b [u8] {
        let end = self.name_end + KEY_TAIL_BYTES;
        let raw = &self.packet[HEADER_BYTES..end];
        for (to, from) in buffer.iter_mut().zip(raw) {
            *to = from.to_ascii_lowercase();
        }
        &buffer[..raw.len()]
    }

    /// The largest answer this client can take over UDP.
    pub fn udp_limit(&self, our_payload_bytes: u16) -> usize {
        match self.edns {
            Some(edns) => usize::from(edns.payload_bytes.clamp(512, our_payload_bytes.max(512))),
            None => CLASSIC_UDP_BYTES,
        }
    }
}

/// The question name part of a key.
pub fn key_name(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(KEY_TAIL_BYTES)]
}

/// The lower-cased wire form of a name, as it appears in keys (for `--allow-empty`).
pub fn wire_name(name: &Name) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}

/// A header-only reply: the ID, opcode and RD of the query, QR, RA and `rcode`.
fn header_reply(packet: &[u8], rcode: u8) -> Vec<u8> {
    let mut reply = vec![0u8; HEADER_BYTES];
    reply[..2].copy_from_slice(&packet[..2]);
    reply[2] = FLAG_QR | (packet[2] & (0x78 | FLAG_RD));
    reply[3] = FLAG_RA | rcode;
    reply
}

/// An error answer that repeats the question (and has an OPT if the client sent one).
pub fn error_reply(query: &ClientQuery<'_>, rcode: u8) -> Vec<u8> {
    let question_end = query.name_end + KEY_TAIL_BYTES;
    let mut reply = Vec::with_capacity(question_end + 11);
    reply.extend_from_slice(&header_reply(query.packet, rcode));
    reply[4..6].copy_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&query.packet[HEADER_BYTES..question_end]);
    if let Some(edns) = query.edns {
        append_opt(&mut reply, edns, None, 1232);
    }
    reply
}

/// The question we send upstream: our ID, RD, the key's name, type and class, EDNS.
pub fn upstream_query(id: u16, key: &[u8], payload_bytes: u16) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_BYTES + key.len() + 11);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[FLAG_RD, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    query.extend_from_slice(key);
    query.extend_from_slice(&[0, 0, 41]);
    query.extend_from_slice(&payload_bytes.to_be_bytes());
    query.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    query
}

/// What an upstream answer says, for caching and stale-on-empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// NOERROR with records in the answer section.
    Positive,
    /// NOERROR, empty answer section (RFC 2308 NODATA).
    NoData,
    NxDomain,
    /// Any other RCODE: relayed, never cached.
    Other {
        rcode: u8,
    },
}

impl AnswerKind {
    pub fn is_empty(&self) -> bool {
        matches!(self, AnswerKind::NoData | AnswerKind::NxDomain)
    }
}

/// An upstream answer kept as wire bytes without its OPT record, with where its TTLs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    /// Offsets of every record's TTL field.
    pub ttl_offsets: Vec<u32>,
    pub kind: AnswerKind,
    /// Smallest TTL in the message; for NODATA/NXDOMAIN min(SOA TTL, SOA MINIMUM)
    /// (RFC 2308 §5), 0 without an SOA.
    pub ttl_secs: u32,
}

/// Why an upstream answer was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// Not a well-formed DNS message.
    Malformed,
    /// Not the answer to our question (ID or question differs).
    Mismatch,
    /// TC set: ask again over TCP.
    Truncated,
}

struct RawRecord {
    start: usize,
    rtype: u16,
    class: u16,
    ttl_offset: usize,
    ttl: u32,
    rdata: std::ops::Range<usize>,
}

fn read_record(decoder: &mut BinDecoder<'_>) -> Option<RawRecord> {
    let start = decoder.index();
    Name::read(decoder).ok()?;
    let rtype = decoder.read_u16().ok()?.unverified();
    let class = decoder.read_u16().ok()?.unverified();
    let ttl_offset = decoder.index();
    let ttl = decoder.read_u32().ok()?.unverified();
    let length = usize::from(decoder.read_u16().ok()?.unverified());
    let rdata_start = decoder.index();
    decoder.read_slice(length).ok()?;
    Some(RawRecord {
        start,
        rtype,
        class,
        ttl_offset,
        ttl,
        rdata: rdata_start..rdata_start + length,
    })
}

/// Reads an upstream answer to the question `key` asked with `id`.
pub fn parse_answer(bytes: &[u8], id: u16, key: &[u8]) -> Result<Stored, BadAnswer> {
    let header = bytes.get(..HEADER_BYTES).ok_or(BadAnswer::Malformed)?;
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    if count(0) != id || header[2] & FLAG_QR == 0 || count(4) != 1 {
        return Err(BadAnswer::Mismatch);
    }
    if header[2] & FLAG_TC != 0 {
        return Err(BadAnswer::Truncated);
    }
    let question_end = HEADER_BYTES + key.len();
    let question = bytes
        .get(HEADER_BYTES..question_end)
        .ok_or(BadAnswer::Mismatch)?;
    if !question.eq_ignore_ascii_case(key) {
        return Err(BadAnswer::Mismatch);
    }
    let mut decoder = BinDecoder::new(bytes);
    decoder
        .read_slice(question_end)
        .map_err(|_| BadAnswer::Malformed)?;
    let (answers, authorities, additionals) = (count(6), count(8), count(10));
    let mut ttl_offsets = Vec::new();
    let mut min_ttl = u32::MAX;
    let mut soa_ttl = None;
    let mut opt = None;
    let total = u32::from(answers) + u32::from(authorities) + u32::from(additionals);
    for index in 0..total {
        let record = read_record(&mut decoder).ok_or(BadAnswer::Malformed)?;
        let in_authority =
            (u32::from(answers)..u32::from(answers) + u32::from(authorities)).contains(&index);
        if record.rtype == TYPE_OPT {
            if index < u32::from(answers) + u32::from(authorities) || opt.is_some() {
                return Err(BadAnswer::Malformed);
            }
            opt = Some((record.start, decoder.index(), record.ttl));
            continue;
        }
        ttl_offsets.push(record.ttl_offset as u32);
        min_ttl = min_ttl.min(record.ttl);
        if in_authority && record.rtype == TYPE_SOA && record.rdata.len() >= 20 {
            let minimum = &bytes[record.rdata.end - 4..record.rdata.end];
            let minimum = u32::from_be_bytes([minimum[0], minimum[1], minimum[2], minimum[3]]);
            soa_ttl = Some(record.ttl.min(minimum));
        }
    }
    let mut stored = bytes[..decoder.index()].to_vec();
    let mut rcode = header[3] & 0x0f;
    if let Some((start, end, opt_ttl)) = opt {
        // RFC 6891 §6.1.3: the OPT TTL's top byte extends the RCODE.
        if opt_ttl >> 24 != 0 {
            rcode = 0xf0;
        }
        if end != stored.len() {
            // Records after the OPT may point into what we would cut; such answers are
            // too unusual to be worth caching.
            return Err(BadAnswer::Malformed);
        }
        stored.truncate(start);
        stored[10..12].copy_from_slice(&(additionals - 1).to_be_bytes());
    }
    let kind = match rcode {
        RCODE_NOERROR if answers > 0 => AnswerKind::Positive,
        RCODE_NOERROR => AnswerKind::NoData,
        RCODE_NXDOMAIN => AnswerKind::NxDomain,
        rcode => AnswerKind::Other { rcode },
    };
    let ttl_secs = match kind {
        AnswerKind::Positive => min_ttl,
        AnswerKind::NoData | AnswerKind::NxDomain => soa_ttl.unwrap_or(0),
        AnswerKind::Other { .. } => 0,
    };
    Ok(Stored {
        bytes: stored,
        ttl_offsets,
        kind,
        ttl_secs,
    })
}

/// How to set the TTLs of an answer going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlRewrite {
    /// Fresh: subtract the answer's age in seconds.
    Age(u32),
    /// Stale: every TTL is this (RFC 8767 recommends 30 s).
    Fixed(u32),
}

/// How one answer goes out to one client.
#[derive(Debug, Clone, Copy)]
pub struct Render<'a> {
    pub ttl: TtlRewrite,
    /// Extended DNS Error code and extra text, sent when the client has EDNS.
    pub ede: Option<(u16, &'a str)>,
    /// Keep the upstream's AA bit: only for an answer relayed straight from upstream.
    pub keep_authoritative: bool,
    /// Largest reply; larger ones are cut to the question with TC set.
    pub limit_bytes: usize,
    /// Our EDNS UDP payload size.
    pub payload_bytes: u16,
}

/// The client's answer: `stored` with the client's ID, RD and question case, TTLs
/// rewritten, our OPT (with `ede`) when the client sent one.
pub fn render(stored: &Stored, query: &ClientQuery<'_>, how: &Render<'_>) -> Vec<u8> {
    let ede_bytes = how.ede.map_or(0, |(_, text)| 6 + text.len());
    let mut out = Vec::with_capacity(stored.bytes.len() + 11 + ede_bytes);
    out.extend_from_slice(&stored.bytes);
    out[..2].copy_from_slice(&query.id.to_be_bytes());
    let keep = if how.keep_authoritative { FLAG_AA } else { 0 };
    out[2] = (out[2] & !(FLAG_RD | FLAG_AA | FLAG_TC))
        | (out[2] & keep)
        | u8::from(query.recursion_desired);
    out[3] |= FLAG_RA;
    let name = query.name();
    out[HEADER_BYTES..HEADER_BYTES + name.len()].copy_from_slice(name);
    for &offset in &stored.ttl_offsets {
        let at = offset as usize;
        let ttl = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
        let ttl = match how.ttl {
            TtlRewrite::Age(age) => ttl.saturating_sub(age),
            TtlRewrite::Fixed(fixed) => fixed,
        };
        out[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
    }
    let opt_bytes = if query.edns.is_some() {
        11 + ede_bytes
    } else {
        0
    };
    if out.len() + opt_bytes > how.limit_bytes {
        let question_end = query.name_end + KEY_TAIL_BYTES;
        out.truncate(question_end);
        out[2] |= FLAG_TC;
        out[6..12].fill(0);
    }
    if let Some(edns) = query.edns {
        append_opt(&mut out, edns, how.ede, how.payload_bytes);
    }
    out
}

/// Appends an OPT record (RFC 6891) and counts it in ARCOUNT.
fn append_opt(out: &mut Vec<u8>, edns: ClientEdns, ede: Option<(u16, &str)>, payload_bytes: u16) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload_bytes.to_be_bytes());
    let flags = if edns.dnssec_ok { DO_BIT } else { 0 };
    out.extend_from_slice(&flags.to_be_bytes());
    match ede {
        Some((code, text)) => {
            let option_length = 2 + text.len() as u16;
            out.extend_from_slice(&(4 + option_length).to_be_bytes());
            out.extend_from_slice(&EDE_OPTION.to_be_bytes());
            out.extend_from_slice(&option_length.to_be_bytes());
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        None => out.extend_from_slice(&0u16.to_be_bytes()),
    }
    let additionals = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
    out[10..12].copy_from_slice(&additionals.to_be_bytes());
}

/// SERVFAIL for `query` (upstreams failed and nothing stale to give).
pub fn servfail(query: &ClientQuery<'_>) -> Vec<u8> {
    error_reply(query, RCODE_SERVFAIL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{RData, Record, RecordType};

    fn query_bytes(name: &str, edns: bool) -> Vec<u8> {
        let mut message = Message::new(0xbeef, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if edns {
            let mut opt = Edns::new();
            opt.set_max_payload(1232);
            message.set_edns(opt);
        }
        message.to_vec().unwrap()
    }

    fn upstream_answer(id: u16, name: &str, ttls: &[u32]) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii(name).unwrap();
        message.add_query(Query::query(owner.clone(), RecordType::A));
        for (i, &ttl) in ttls.iter().enumerate() {
            let address = A::new(192, 0, 2, i as u8 + 1);
            message.add_answer(Record::from_rdata(owner.clone(), ttl, RData::A(address)));
        }
        let mut opt = Edns::new();
        opt.set_max_payload(1232);
        message.set_edns(opt);
        message.to_vec().unwrap()
    }

    fn nxdomain(id: u16, name: &str, soa_ttl: u32, minimum: u32) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Response, OpCode::Query);
        message.metadata.response_code = ResponseCode::NXDomain;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let zone = Name::from_ascii("example.test.").unwrap();
        let soa = SOA::new(zone.clone(), zone.clone(), 1, 3600, 600, 86400, minimum);
        message.add_authority(Record::from_rdata(zone, soa_ttl, RData::SOA(soa)));
        message.to_vec().unwrap()
    }

    fn parsed(bytes: &[u8]) -> ClientQuery<'_> {
        match parse_query(bytes) {
            Parsed::Query(query) => query,
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn the_key_ignores_the_case_of_the_question() {
        let (upper, lower) = (
            query_bytes("WWW.Example.TEST.", false),
            query_bytes("www.example.test.", false),
        );
        let (mut a, mut b) = ([0u8; MAX_KEY_BYTES], [0u8; MAX_KEY_BYTES]);
        assert_eq!(parsed(&upper).key(&mut a), parsed(&lower).key(&mut b));
    }

    #[test]
    fn a_cached_answer_goes_out_with_the_clients_id_case_and_aged_ttls() {
        let client = query_bytes("WWW.Example.TEST.", true);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer).to_vec();
        let stored = parse_answer(
            &upstream_answer(7, "www.example.test.", &[300, 60]),
            7,
            &key,
        )
        .unwrap();
        assert_eq!((stored.kind, stored.ttl_secs), (AnswerKind::Positive, 60));
        let how = Render {
            ttl: TtlRewrite::Age(10),
            ede: None,
            keep_authoritative: false,
            limit_bytes: 1232,
            payload_bytes: 1232,
        };
        let reply = Message::from_vec(&render(&stored, &query, &how)).unwrap();
        assert_eq!(reply.metadata.id, 0xbeef);
        assert!(reply.metadata.recursion_desired && reply.metadata.recursion_available);
        assert_eq!(reply.queries[0].name().to_ascii(), "WWW.Example.TEST.");
        let ttls: Vec<u32> = reply.answers.iter().map(|r| r.ttl).collect();
        assert_eq!(ttls, vec![290, 50]);
        assert!(reply.edns.is_some());
    }

    #[test]
    fn a_stale_answer_carries_ede_3_and_the_stale_ttl() {
        let client = query_bytes("www.example.test.", true);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer).to_vec();
        let stored =
            parse_answer(&upstream_answer(7, "www.example.test.", &[300]), 7, &key).unwrap();
        let how = Render {
            ttl: TtlRewrite::Fixed(30),
            ede: Some((EDE_STALE_ANSWER, "stale-on-empty")),
            keep_authoritative: false,
            limit_bytes: 1232,
            payload_bytes: 1232,
        };
        let bytes = render(&stored, &query, &how);
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.answers[0].ttl, 30);
        let tail = [&[0u8, 15, 0, 16, 0, 3][..], b"stale-on-empty"].concat();
        assert!(bytes.ends_with(&tail), "EDE option at the end of the OPT");
    }

    #[test]
    fn a_negative_answer_is_cached_for_the_smaller_of_soa_ttl_and_minimum() {
        let client = query_bytes("gone.example.test.", false);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer).to_vec();
        let stored = parse_answer(&nxdomain(9, "gone.example.test.", 3600, 300), 9, &key).unwrap();
        assert_eq!((stored.kind, stored.ttl_secs), (AnswerKind::NxDomain, 300));
        let stored = parse_answer(&nxdomain(9, "gone.example.test.", 60, 300), 9, &key).unwrap();
        assert_eq!(stored.ttl_secs, 60);
    }

    #[test]
    fn an_answer_to_another_question_is_rejected() {
        let client = query_bytes("www.example.test.", false);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer).to_vec();
        let other = upstream_answer(7, "evil.example.test.", &[300]);
        assert_eq!(parse_answer(&other, 7, &key), Err(BadAnswer::Mismatch));
        let ours = upstream_answer(7, "www.example.test.", &[300]);
        assert_eq!(parse_answer(&ours, 8, &key), Err(BadAnswer::Mismatch));
    }

    #[test]
    fn an_answer_too_big_for_the_client_is_truncated_to_the_question() {
        let client = query_bytes("www.example.test.", false);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer).to_vec();
        let ttls = vec![300; 40];
        let stored =
            parse_answer(&upstream_answer(7, "www.example.test.", &ttls), 7, &key).unwrap();
        let how = Render {
            ttl: TtlRewrite::Age(0),
            ede: None,
            keep_authoritative: false,
            limit_bytes: query.udp_limit(1232),
            payload_bytes: 1232,
        };
        let reply = Message::from_vec(&render(&stored, &query, &how)).unwrap();
        assert!(reply.metadata.truncation);
        assert!(reply.answers.is_empty());
    }

    #[test]
    fn the_upstream_query_is_a_well_formed_edns_question() {
        let client = query_bytes("www.example.test.", false);
        let query = parsed(&client);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer);
        let message = Message::from_vec(&upstream_query(42, key, 1232)).unwrap();
        assert_eq!(message.metadata.id, 42);
        assert_eq!(message.queries[0].name().to_ascii(), "www.example.test.");
        assert_eq!(message.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    }

    #[test]
    fn garbage_gets_formerr_or_silence_never_a_panic() {
        assert!(matches!(parse_query(&[1, 2, 3]), Parsed::Drop));
        let mut bytes = query_bytes("www.example.test.", false);
        bytes.truncate(20);
        assert!(
            matches!(parse_query(&bytes), Parsed::Reply(reply) if reply[3] & 0x0f == RCODE_FORMERR)
        );
        for cut in 0..bytes.len() {
            let _ = parse_query(&bytes[..cut]);
        }
    }
}
