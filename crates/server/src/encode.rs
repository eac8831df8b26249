//! Encoding of answers: a [`Lookup`] into response bytes, with NSD's truncation rules and
//! the query's 0x20 case, and the pre-encoded forms the hot path stores (`crate::table`)
//! and fits (`crate::template`). The reference for every byte the server sends.

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use model::{DNSClass, Name, RData, Record, RecordType};

use crate::lookup::{lookup, AnswerKind};
use crate::wire_format::{wire_length, FLAG_AA, FLAG_QR, FLAG_TC, HEADER_BYTES};
use crate::zone::ZoneData;

/// RFC 8914 extended DNS error option code.
const EDE_OPTION: u16 = 15;

/// One pre-encoded answer as the library path produced it for a lower-case query with
/// RD clear and no EDNS, unlimited in size.
pub(crate) struct Encoded {
    pub(crate) flags1: u8,
    pub(crate) flags2: u8,
    /// ANCOUNT, NSCOUNT, ARCOUNT.
    pub(crate) counts: [u16; 3],
    /// Everything after the question.
    pub(crate) body: Vec<u8>,
}

/// A response ready to encode.
pub(crate) struct Reply {
    pub(crate) id: u16,
    pub(crate) flags1: u8,
    pub(crate) rcode: ResponseCode,
    pub(crate) question: Option<Query>,
    pub(crate) answers: Vec<Vec<Record>>,
    pub(crate) authorities: Vec<Vec<Record>>,
    pub(crate) additionals: Vec<Vec<Record>>,
    /// Positive answers may lose authority to truncation without TC (NSD does).
    pub(crate) authority_optional: bool,
    pub(crate) opt: Option<ReplyOpt>,
}

pub(crate) struct ReplyOpt {
    pub(crate) payload_bytes: u16,
    pub(crate) dnssec_ok: bool,
    pub(crate) extended_error: Option<u16>,
}

/// The library path's answer to a lower-case query for `qname`/`qtype` of class IN with
/// RD clear, no EDNS and no size limit, split for [`crate::table`]. `None` when the answer
/// cannot be stored: it would depend on the query name's case (compression gave out), or
/// it was truncated.
pub(crate) fn pre_encode(
    zone: &ZoneData,
    qname: &Name,
    qtype: RecordType,
    cname_chain_length: usize,
) -> Option<Encoded> {
    let lower = encode_plain(zone, qname, qtype, cname_chain_length);
    let question_end = HEADER_BYTES + wire_length(qname) + 4;
    if lower.bytes.len() < question_end || lower.bytes[2] & FLAG_TC != 0 {
        return None;
    }
    if !lower.compression_complete {
        // Some label shared with the question may have been written out literally, in the
        // question's case: keep the answer only if the upper-case query gives the same body.
        let mut upper = Name::from_labels(qname.iter().map(<[u8]>::to_ascii_uppercase)).ok()?;
        upper.set_fqdn(true);
        let other = encode_plain(zone, &upper, qtype, cname_chain_length);
        if other.bytes.get(question_end..) != lower.bytes.get(question_end..) {
            return None;
        }
    }
    let word = |i: usize| u16::from_be_bytes([lower.bytes[i], lower.bytes[i + 1]]);
    Some(Encoded {
        flags1: lower.bytes[2],
        flags2: lower.bytes[3],
        counts: [word(6), word(8), word(10)],
        body: lower.bytes[question_end..].to_vec(),
    })
}

/// The library path's whole answer to a lower-case query for `qname`/`qtype` (class IN,
/// RD clear, no EDNS), for [`crate::template`]: only when every name was compressed
/// (so the body depends on the question only through its pointers) and it was not
/// truncated. Also returns how many labels the encoder saw besides the question's.
pub(crate) fn encode_for_template(
    zone: &ZoneData,
    qname: &Name,
    qtype: RecordType,
    cname_chain_length: usize,
) -> Option<(Vec<u8>, usize)> {
    let plain = encode_plain(zone, qname, qtype, cname_chain_length);
    if !plain.compression_complete || plain.bytes.get(2)? & FLAG_TC != 0 {
        return None;
    }
    let question_labels = usize::from(qname.num_labels()) + 1;
    Some((plain.bytes, plain.labels.checked_sub(question_labels)?))
}

struct Plain {
    bytes: Vec<u8>,
    /// Every name fit hickory's compression bounds, so any label shared with the question
    /// became a pointer and the body does not depend on the question's case.
    compression_complete: bool,
    /// Labels the encoder's compression bound counts, the question's included.
    labels: usize,
}

fn encode_plain(
    zone: &ZoneData,
    qname: &Name,
    qtype: RecordType,
    cname_chain_length: usize,
) -> Plain {
    let mut question = Query::query(qname.clone(), qtype);
    question.set_query_class(DNSClass::IN);
    let result = lookup(zone, qname, qtype, cname_chain_length);
    let mut flags1 = FLAG_QR;
    if result.authoritative {
        flags1 |= FLAG_AA;
    }
    let (mut names, mut labels) = (1usize, usize::from(qname.num_labels()) + 1);
    let mut known_types = true;
    for record in [&result.answers, &result.authorities, &result.additionals]
        .into_iter()
        .flatten()
        .flatten()
    {
        names += 1;
        labels += usize::from(record.name.num_labels()) + 1;
        match &record.data {
            RData::A(_) | RData::AAAA(_) | RData::TXT(_) | RData::CAA(_) => {}
            RData::NS(ns) => (names, labels) = (names + 1, labels + ns.0.iter().count() + 1),
            RData::CNAME(c) => (names, labels) = (names + 1, labels + c.0.iter().count() + 1),
            RData::PTR(p) => (names, labels) = (names + 1, labels + p.0.iter().count() + 1),
            RData::MX(mx) => {
                (names, labels) = (names + 1, labels + mx.exchange.iter().count() + 1);
            }
            RData::SOA(soa) => {
                names += 2;
                labels += soa.mname.iter().count() + soa.rname.iter().count() + 2;
            }
            _ => known_types = false,
        }
    }
    let reply = Reply {
        id: 0,
        flags1,
        rcode: result.rcode,
        question: Some(question),
        answers: result.answers,
        authorities: result.authorities,
        additionals: result.additionals,
        authority_optional: result.kind == AnswerKind::Data,
        opt: None,
    };
    let bytes = encode(reply, usize::from(u16::MAX), qname);
    // hickory keeps 64 compression candidates (one per label written) and compresses the
    // first 120 names, below offset 0x3FFF.
    let compression_complete = known_types && labels <= 64 && names < 120 && bytes.len() < 0x3000;
    Plain {
        bytes,
        compression_complete,
        labels,
    }
}

/// Encodes `reply` within `limit` bytes: whole RRsets only; an answer (or required
/// authority) set that does not fit sets TC and ends the message; optional sets that do
/// not fit are left out.
pub(crate) fn encode(mut reply: Reply, limit: usize, qname: &Name) -> Vec<u8> {
    for section in [
        &mut reply.answers,
        &mut reply.authorities,
        &mut reply.additionals,
    ] {
        for record in section.iter_mut().flatten() {
            match_query_case(record, qname);
        }
    }
    let opt_bytes = reply.opt.as_ref().map_or(0, |opt| {
        11 + if opt.extended_error.is_some() { 6 } else { 0 }
    });
    let budget = limit.saturating_sub(opt_bytes).max(HEADER_BYTES);
    let mut buffer = Vec::with_capacity(limit.min(4096));
    let mut counts = [0u16; 4];
    let mut truncated = false;
    {
        let mut encoder = BinEncoder::new(&mut buffer);
        let _ = encoder.emit_vec(&[0u8; HEADER_BYTES]);
        if let Some(question) = &reply.question {
            if question.emit(&mut encoder).is_ok() {
                counts[0] = 1;
            }
        }
        for rrset in &reply.answers {
            if !emit_rrset(&mut encoder, rrset, budget, &mut counts[1]) {
                truncated = true;
                break;
            }
        }
        if !truncated {
            for rrset in &reply.authorities {
                if !emit_rrset(&mut encoder, rrset, budget, &mut counts[2])
                    && !reply.authority_optional
                {
                    truncated = true;
                    break;
                }
            }
        }
        if !truncated {
            for rrset in &reply.additionals {
                emit_rrset(&mut encoder, rrset, budget, &mut counts[3]);
            }
        }
        if let Some(opt) = &reply.opt {
            if emit_opt(&mut encoder, opt, reply.rcode).is_ok() {
                counts[3] += 1;
            }
        }
    }
    buffer[..2].copy_from_slice(&reply.id.to_be_bytes());
    buffer[2] = reply.flags1 | if truncated { FLAG_TC } else { 0 };
    buffer[3] = reply.rcode.low();
    for (i, count) in counts.iter().enumerate() {
        buffer[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
    }
    buffer
}

/// Emits every record of `rrset` or none of them; false when it did not fit in `budget`.
fn emit_rrset(
    encoder: &mut BinEncoder<'_>,
    rrset: &[Record],
    budget: usize,
    count: &mut u16,
) -> bool {
    let mark = encoder.offset();
    let fits = rrset.iter().all(|record| record.emit(encoder).is_ok()) && encoder.len() <= budget;
    if fits {
        *count = count.saturating_add(u16::try_from(rrset.len()).unwrap_or(u16::MAX));
    } else {
        encoder.set_offset(mark);
        encoder.trim();
    }
    fits
}

/// Our OPT: payload size, version 0, DO echoed, the extended rcode bits and maybe an EDE.
fn emit_opt(
    encoder: &mut BinEncoder<'_>,
    opt: &ReplyOpt,
    rcode: ResponseCode,
) -> Result<(), hickory_proto::ProtoError> {
    encoder.emit(0)?;
    encoder.emit_u16(u16::from(RecordType::OPT))?;
    encoder.emit_u16(opt.payload_bytes)?;
    let do_bit = if opt.dnssec_ok { 0x8000 } else { 0 };
    encoder.emit_u32((u32::from(rcode.high()) << 24) | do_bit)?;
    match opt.extended_error {
        Some(code) => {
            encoder.emit_u16(6)?;
            encoder.emit_u16(EDE_OPTION)?;
            encoder.emit_u16(2)?;
            encoder.emit_u16(code)
        }
        None => encoder.emit_u16(0),
    }
}

/// Rewrites the labels a name shares with the query name to the query's spelling, so that
/// compression points into the question and the response keeps the query's case (0x20),
/// as NSD's does.
fn match_query_case(record: &mut Record, qname: &Name) {
    recase(&mut record.name, qname);
    match &mut record.data {
        RData::NS(ns) => recase(&mut ns.0, qname),
        RData::CNAME(cname) => recase(&mut cname.0, qname),
        RData::PTR(ptr) => recase(&mut ptr.0, qname),
        RData::MX(mx) => recase(&mut mx.exchange, qname),
        RData::SOA(soa) => {
            recase(&mut soa.mname, qname);
            recase(&mut soa.rname, qname);
        }
        _ => {}
    }
}

fn recase(name: &mut Name, qname: &Name) {
    let shared = name
        .iter()
        .rev()
        .zip(qname.iter().rev())
        .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
        .count();
    if shared == 0 {
        return;
    }
    let own = name.iter().count() - shared;
    let query_labels = qname.iter().count();
    let labels = name
        .iter()
        .take(own)
        .chain(qname.iter().skip(query_labels - shared));
    if let Ok(mut renamed) = Name::from_labels(labels) {
        renamed.set_fqdn(true);
        *name = renamed;
    }
}
