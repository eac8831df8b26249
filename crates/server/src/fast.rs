//! The query hot path: answers pre-encoded per (name, type) when a snapshot is built, and
//! served by copying the query's ID, RD bit and question (with its 0x20 case) around the
//! stored bytes, plus an OPT record when the query had one. No allocation, no library
//! parsing.
//!
//! Only the common shape of query takes this path: opcode QUERY, one question of class IN
//! for a name the table holds, nothing in answer or authority, at most an empty OPT of
//! version 0, a reply that fits the size limit untruncated. Anything else (and anything
//! this module is unsure about) returns `None` and goes to the library path (`library`),
//! which is the reference: the stored bytes are produced by that same path when the
//! snapshot is built, and a property test compares the two over random queries.

use model::RecordType;

use crate::carried::Carried;
use crate::catalog::{Served, Zones};
use crate::config::ServerConfig;
use crate::snapshot::Answers;
use crate::stats::RcodeCounters;
use crate::table::{AnswerTable, KEY_BYTES, META_BYTES, SLOW_TYPES};
use crate::template::{Miss, Question};
use crate::wire_format::{Transport, MAX_MESSAGE_BYTES};
use crate::wire_format::{
    CLASSIC_UDP_BYTES, CLASS_IN, FLAG_RD, HEADER_BYTES, MAX_NAME_WIRE_BYTES, OPT_BYTES, TYPE_OPT,
};
use crate::zone::ZoneData;

/// A query in the one shape the hot path answers.
struct PlainQuery {
    /// Lower-cased wire name followed by the type: the table key.
    key: [u8; KEY_BYTES],
    name_bytes: usize,
    /// Offsets of the labels within the name, for suffix matching against origins.
    label_starts: [u8; 128],
    labels: usize,
    /// Bytes from the header to the end of the question.
    question_end: usize,
    /// The EDNS payload size (at least 512) and DO bit, when the query had an OPT.
    edns: Option<(u16, bool)>,
}

/// Answers `packet` into `out` from a pre-encoded answer, or `None` for the library path.
pub fn answer_fast(
    packet: &[u8],
    transport: Transport,
    zones: &Zones,
    config: &ServerConfig,
    out: &mut [u8],
) -> Option<usize> {
    answer_fast_counted(packet, transport, zones, config, out).map(|(length, _)| length)
}

/// [`answer_fast`], also naming the query counters of the zone that answered.
pub(crate) fn answer_fast_counted<'a>(
    packet: &[u8],
    transport: Transport,
    zones: &'a Zones,
    config: &ServerConfig,
    out: &mut [u8],
) -> Option<(usize, &'a RcodeCounters)> {
    let query = parse(packet)?;
    let served = route(zones, &query)?;
    let zone = &served.zone;
    let opt_bytes = if query.edns.is_some() { OPT_BYTES } else { 0 };
    // The same limits as the library path's: a TCP message may be as long as any message.
    let limit = match (transport, query.edns) {
        (Transport::Tcp, _) => MAX_MESSAGE_BYTES,
        (Transport::Udp, Some((payload, _))) => usize::from(payload.min(config.udp_payload_bytes)),
        (Transport::Udp, None) => CLASSIC_UDP_BYTES,
    };
    let room = limit.min(out.len()).checked_sub(opt_bytes)?;
    let key = &query.key[..query.name_bytes + 2];
    let (table, carried) = match zone.answers() {
        Answers::Library => return None,
        Answers::Encoded(table) => (&**table, None),
        Answers::Carried { table, carried } => (&**table, Some(&**carried)),
    };
    // Answers encoded with another CNAME chain bound than this server's are not its own.
    if table.cname_chain_length() != config.cname_chain_length {
        return None;
    }
    let stored = match carried {
        None => table.get(key),
        // A patched version serving an earlier version's table: its own answers for the
        // names that changed, the library path for what they may touch.
        Some(carried) => match carried.fresh(key) {
            Some(fresh) => Some(fresh),
            None => {
                let name = &query.key[..query.name_bytes];
                let apex_offset = name.len() - zone.origin_wire().len();
                if carried.touches(name, &query.label_starts[..query.labels], apex_offset) {
                    return None;
                }
                table.get(key)
            }
        },
    };
    let length = match stored {
        Some(stored) => answer_stored(packet, &query, stored, room, out)?,
        None => answer_missing(packet, &query, zone, table, carried, room, out)?,
    };
    let total = length + opt_bytes;
    if let Some((_, dnssec_ok)) = query.edns {
        let additional = u16::from_be_bytes([out[10], out[11]]) + 1;
        out[10..12].copy_from_slice(&additional.to_be_bytes());
        let opt = &mut out[length..total];
        opt[0] = 0;
        opt[1..3].copy_from_slice(&TYPE_OPT.to_be_bytes());
        opt[3..5].copy_from_slice(&config.udp_payload_bytes.to_be_bytes());
        // Extended rcode 0 (stored answers are NOERROR or NXDOMAIN), version 0, DO echoed.
        opt[5..9].copy_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
        opt[9..11].copy_from_slice(&[0, 0]);
    }
    Some((total, &served.counters))
}

/// A stored answer: the query's ID, RD bit and question around the stored bytes.
fn answer_stored(
    packet: &[u8],
    query: &PlainQuery,
    stored: &[u8],
    room: usize,
    out: &mut [u8],
) -> Option<usize> {
    let (meta, body) = stored.split_at(META_BYTES);
    let total = query.question_end + body.len();
    if total > room {
        return None;
    }
    out[..2].copy_from_slice(&packet[..2]);
    out[2] = meta[0] | (packet[2] & FLAG_RD);
    out[3] = meta[1];
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].copy_from_slice(&meta[2..8]);
    out[HEADER_BYTES..query.question_end]
        .copy_from_slice(&packet[HEADER_BYTES..query.question_end]);
    out[query.question_end..total].copy_from_slice(body);
    Some(total)
}

/// A (name, type) the table does not hold: NXDOMAIN, a referral or NODATA from the zone's
/// templates, or `None` for the library path (wildcards, CNAMEs, anything unusual).
fn answer_missing(
    packet: &[u8],
    query: &PlainQuery,
    zone: &ZoneData,
    table: &AnswerTable,
    carried: Option<&Carried>,
    room: usize,
    out: &mut [u8],
) -> Option<usize> {
    let name = &query.key[..query.name_bytes];
    let apex_offset = name.len() - zone.origin_wire().len();
    let label_starts = &query.label_starts[..query.labels];
    // A carried table's negative answers hold an older SOA: this version's own is used.
    let negative = |template| match carried {
        Some(carried) => carried.nxdomain(),
        None => Some(template),
    };
    let (template, anchor_offset, nodata) =
        match table.templates().miss(name, label_starts, apex_offset)? {
            Miss::NxDomain(template) => (negative(template)?, apex_offset, false),
            Miss::Referral {
                template,
                anchor_offset,
            } => (template, anchor_offset, false),
            Miss::NoData(template) => {
                // The fingerprint may be another name's: the name exists only if the table
                // holds an answer of another type for exactly it.
                if !table.holds_name(&query.key[..query.name_bytes + 2]) {
                    return None;
                }
                (negative(template)?, apex_offset, true)
            }
        };
    let question = Question {
        name,
        anchor_offset,
        labels: query.labels,
        question_end: query.question_end,
    };
    let length = template.fit(packet, &question, room, out)?;
    if nodata {
        // NODATA is NXDOMAIN's answer with rcode NOERROR (RFC 2308 §2.2).
        out[3] &= 0xf0;
    }
    Some(length)
}

fn parse(packet: &[u8]) -> Option<PlainQuery> {
    if packet.len() < HEADER_BYTES + 5 {
        return None;
    }
    let word = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
    // QR clear, opcode QUERY; no rcode bits; one question and nothing else but an OPT.
    if packet[2] & 0xf8 != 0 || packet[3] & 0x0f != 0 {
        return None;
    }
    if word(4) != 1 || word(6) != 0 || word(8) != 0 || word(10) > 1 {
        return None;
    }
    let mut query = PlainQuery {
        key: [0; KEY_BYTES],
        name_bytes: 0,
        label_starts: [0; 128],
        labels: 0,
        question_end: 0,
        edns: None,
    };
    let mut position = HEADER_BYTES;
    loop {
        let length = usize::from(*packet.get(position)?);
        let offset = position - HEADER_BYTES;
        if length == 0 {
            query.key[offset] = 0;
            query.name_bytes = offset + 1;
            position += 1;
            break;
        }
        // Pointers and extended label types are for the library; so is a name that would
        // exceed 255 bytes with its root label.
        if length > 63 || offset + length + 2 > MAX_NAME_WIRE_BYTES {
            return None;
        }
        let label = packet.get(position + 1..position + 1 + length)?;
        if !label.iter().all(|byte| is_plain_label_byte(*byte)) {
            return None;
        }
        query.label_starts[query.labels] = offset as u8;
        query.labels += 1;
        query.key[offset] = length as u8;
        for (slot, byte) in query.key[offset + 1..offset + 1 + length]
            .iter_mut()
            .zip(label)
        {
            *slot = byte.to_ascii_lowercase();
        }
        position += 1 + length;
    }
    let fixed = packet.get(position..position + 4)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    if qclass != CLASS_IN || SLOW_TYPES.contains(&RecordType::from(qtype)) {
        return None;
    }
    query.key[query.name_bytes..query.name_bytes + 2].copy_from_slice(&fixed[..2]);
    position += 4;
    query.question_end = position;
    if word(10) == 1 {
        let opt = packet.get(position..position + OPT_BYTES)?;
        let version = opt[6];
        let rdata_bytes = u16::from_be_bytes([opt[9], opt[10]]);
        if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != TYPE_OPT {
            return None;
        }
        if version != 0 || rdata_bytes != 0 {
            return None;
        }
        // RFC 6891 §6.2.5: values below 512 are treated as 512.
        let payload = u16::from_be_bytes([opt[3], opt[4]]).max(512);
        query.edns = Some((payload, opt[7] & 0x80 != 0));
    }
    Some(query)
}

/// Letters, digits, hyphen, underscore, asterisk: names the library reads back unchanged.
fn is_plain_label_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'*'
}

/// The served zone with the longest origin at or above the query name.
fn route<'a>(zones: &'a Zones, query: &PlainQuery) -> Option<&'a Served> {
    let name = &query.key[..query.name_bytes];
    let mut best: Option<&Served> = None;
    for served in zones.iter() {
        let origin = served.zone.origin_wire();
        if origin.len() > name.len() {
            continue;
        }
        let start = name.len() - origin.len();
        let aligned = start == name.len() - 1
            || query.label_starts[..query.labels]
                .iter()
                .any(|s| usize::from(*s) == start);
        if aligned
            && &name[start..] == origin
            && best.is_none_or(|b| b.zone.origin_wire().len() < origin.len())
        {
            best = Some(served);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::answer_library as handle_with;
    use crate::lookup::common;
    use crate::snapshot::ZoneSnapshot;
    use crate::Catalog;
    use model::Generation;
    use model::Name;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn zones() -> Arc<Zones> {
        static ZONES: std::sync::OnceLock<Arc<Zones>> = std::sync::OnceLock::new();
        ZONES
            .get_or_init(|| {
                let catalog = Catalog::new();
                catalog.replace_zone(Arc::new(ZoneSnapshot::build(
                    &common::example_zone(7),
                    Generation(1),
                )));
                catalog.snapshot()
            })
            .clone()
    }

    /// Every owner name of the test zone, plus names that do not exist, below a cut,
    /// under a wildcard and outside the zone.
    fn names() -> Vec<String> {
        let mut names: Vec<String> = common::example_zone(7)
            .rrsets()
            .map(|set| set.name.to_ascii())
            .collect();
        names.extend(
            [
                "nope.example.test.",
                "x.sub.example.test.",
                "foo.wild.example.test.",
                "c.example.test.",
                "www.other.test.",
                "test.",
                // Missing names at every depth: below an empty non-terminal, below data,
                // named like the SOA's names (compressed differently), under a wildcard.
                "z.b.c.example.test.",
                "x.a.b.c.example.test.",
                "no.pe.example.test.",
                "hostmaster.example.test.",
                "x.hostmaster.example.test.",
                "x.ns1.example.test.",
                "ns1.nope.example.test.",
                "a.b.wild.example.test.",
                "x.exists.wild.example.test.",
                "x.wc.example.test.",
                // Below cuts: names like the referral's own names, and deeper.
                "www.x.sub.example.test.",
                "x.ns.sub.example.test.",
                "ns.x.sub.example.test.",
                "deep.sec.example.test.",
                "ns1.sec.example.test.",
                "a.b.c.d.sec.example.test.",
            ]
            .map(String::from),
        );
        // Many labels: the encoder's bound on compression candidates.
        names.push(format!("{}nope.example.test.", "a.".repeat(60)));
        names.push(format!("{}x.sub.example.test.", "a.".repeat(60)));
        names.sort();
        names.dedup();
        names
    }

    fn query(id: u16, flags1: u8, qname: &str, qtype: u16, edns: Option<(u16, u32)>) -> Vec<u8> {
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(&[flags1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        for label in qname.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        if let Some((payload, ttl)) = edns {
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&payload.to_be_bytes());
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    fn recase(name: &str, mask: u64) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    #[test]
    fn common_answers_are_pre_encoded_and_taken_on_the_hot_path() {
        let zones = zones();
        let config = ServerConfig::default();
        let mut out = [0u8; 4096];
        for (qname, qtype) in [
            ("www.example.test", 1u16),
            ("WwW.ExAmPlE.tEsT", 1),
            ("ns2.example.test", 28),
            ("alias.example.test", 1),
            ("example.test", 6),
            ("sub.example.test", 1),
        ] {
            let packet = query(7, 0x01, qname, qtype, Some((1232, 0)));
            for transport in [Transport::Udp, Transport::Tcp] {
                let length = answer_fast(&packet, transport, &zones, &config, &mut out)
                    .unwrap_or_else(|| panic!("{qname}/{qtype} is on the hot path"));
                let library = handle_with(&packet, transport, &zones, &config).unwrap();
                assert_eq!(
                    &out[..length],
                    &library[..],
                    "{qname}/{qtype} {transport:?}"
                );
            }
        }
    }

    #[test]
    fn a_server_with_another_cname_chain_bound_answers_from_answers_encoded_with_it() {
        let config = ServerConfig {
            cname_chain_length: 1,
            ..ServerConfig::default()
        };
        let lookup_only = ZoneSnapshot::build_lookup(&common::example_zone(7), Generation(1));
        let encoded_with = |bound| {
            let catalog = Catalog::new();
            let snapshot = lookup_only
                .with_answers_reusing(None, &|| false, bound)
                .expect("never superseded");
            catalog.replace_zone(Arc::new(snapshot));
            catalog.snapshot()
        };
        let packet = query(7, 0, "alias.example.test", 1, None);
        let mut out = [0u8; 4096];
        // Answers encoded with the default bound are not this server's.
        let default = encoded_with(crate::snapshot::default_cname_chain_length());
        assert_eq!(
            answer_fast(&packet, Transport::Udp, &default, &config, &mut out),
            None
        );
        let own = encoded_with(1);
        let length = answer_fast(&packet, Transport::Udp, &own, &config, &mut out)
            .expect("answers encoded with the server's bound take the hot path");
        let library = handle_with(&packet, Transport::Udp, &own, &config).unwrap();
        assert_eq!(&out[..length], &library[..]);
    }

    #[test]
    fn an_answer_too_long_for_udp_takes_the_hot_path_over_tcp() {
        let zones = zones();
        let config = ServerConfig::default();
        let mut out = vec![0u8; MAX_MESSAGE_BYTES];
        let packet = query(7, 0, "big.example.test", 16, None);
        assert_eq!(
            answer_fast(&packet, Transport::Udp, &zones, &config, &mut out),
            None
        );
        let length = answer_fast(&packet, Transport::Tcp, &zones, &config, &mut out)
            .expect("over TCP the stored answer fits");
        assert!(length > CLASSIC_UDP_BYTES, "{length} bytes");
        let library = handle_with(&packet, Transport::Tcp, &zones, &config).unwrap();
        assert_eq!(&out[..length], &library[..]);
        assert_eq!(out[2] & 0x02, 0, "not truncated");
    }

    #[test]
    fn unusual_queries_go_to_the_library_path() {
        let zones = zones();
        let config = ServerConfig::default();
        let mut out = [0u8; 4096];
        let plain = query(7, 0, "www.example.test", 1, None);
        let mut notify = plain.clone();
        notify[2] = 4 << 3;
        let mut class_ch = plain.clone();
        let last = class_ch.len() - 1;
        class_ch[last] = 3;
        for packet in [
            notify,
            class_ch,
            query(7, 0, "www.example.test", 43, None),
            query(7, 0, "www.example.test", 255, None),
            query(7, 0, "www.example.test", 1, Some((1232, 0x0001_0000))),
            query(7, 0, "big.example.test", 16, None),
            // NODATA, wildcards, and names the SOA's own names would compress into.
            query(7, 0, "b.c.example.test", 1, None),
            query(7, 0, "foo.wild.example.test", 1, None),
            query(7, 0, "hostmaster.example.test", 1, None),
            query(7, 0, "x.ns1.example.test", 1, None),
            query(7, 0, "x.ns.sub.example.test", 1, None),
            // NODATA where the SOA's names share the question, at a CNAME, at an empty
            // non-terminal, below a wildcard.
            query(7, 0, "ns1.example.test", 28, None),
            query(7, 0, "alias.example.test", 15, None),
            query(7, 0, "c.example.test", 28, None),
            query(7, 0, "exists.wild.example.test", 1, None),
        ] {
            assert_eq!(
                answer_fast(&packet, Transport::Udp, &zones, &config, &mut out),
                None
            );
        }
    }

    #[test]
    fn missing_names_and_names_below_a_cut_are_answered_on_the_hot_path() {
        let zones = zones();
        let config = ServerConfig::default();
        let mut out = [0u8; 4096];
        for (qname, qtype, rcode) in [
            ("nope.example.test", 1u16, 3u8),
            ("NoPe.ExAmPlE.tEsT", 28, 3),
            ("z.b.c.example.test", 1, 3),
            ("x.a.b.c.example.test", 16, 3),
            ("www.x.sub.example.test", 1, 0),
            ("Deep.Sec.Example.Test", 28, 0),
            // NODATA: the name exists without the type.
            ("www.example.test", 28, 0),
            ("Example.Test", 28, 0),
            ("order.example.test", 15, 0),
        ] {
            for (edns, transport) in [None, Some((1232, 0x8000))]
                .into_iter()
                .flat_map(|edns| [(edns, Transport::Udp), (edns, Transport::Tcp)])
            {
                let packet = query(9, 0x01, qname, qtype, edns);
                let length = answer_fast(&packet, transport, &zones, &config, &mut out)
                    .unwrap_or_else(|| panic!("{qname}/{qtype} is on the hot path"));
                assert_eq!(out[3] & 0x0f, rcode, "{qname}");
                let library = handle_with(&packet, transport, &zones, &config).unwrap();
                assert_eq!(
                    &out[..length],
                    &library[..],
                    "{qname}/{qtype} {edns:?} {transport:?}"
                );
            }
        }
    }

    /// Asks every question in every case and EDNS variant; each answer the hot path gives
    /// must be the library path's, byte for byte. Returns the hot path's answers.
    fn hot_answers_equal_library(
        zones: &Zones,
        questions: &[String],
        qtypes: &[u16],
        masks: &[u64],
        edns_variants: &[Option<(u16, u32)>],
        what: &str,
    ) -> Vec<Vec<u8>> {
        let config = ServerConfig::default();
        let mut out = vec![0u8; MAX_MESSAGE_BYTES];
        let mut answers = Vec::new();
        for qname in questions {
            for &qtype in qtypes {
                for &mask in masks {
                    for &edns in edns_variants {
                        let packet = query(3, 0x01, &recase(qname, mask), qtype, edns);
                        for transport in [Transport::Udp, Transport::Tcp] {
                            let Some(length) =
                                answer_fast(&packet, transport, zones, &config, &mut out)
                            else {
                                continue;
                            };
                            let library = handle_with(&packet, transport, zones, &config);
                            assert_eq!(
                                Some(&out[..length]),
                                library.as_deref(),
                                "{what}: {qname}/{qtype} mask {mask:x} {edns:?} {transport:?}"
                            );
                            if transport == Transport::Udp {
                                answers.push(out[..length].to_vec());
                            }
                        }
                    }
                }
            }
        }
        answers
    }

    #[test]
    fn every_name_type_case_and_edns_is_answered_alike_on_both_paths() {
        let answers = hot_answers_equal_library(
            &zones(),
            &names(),
            &[1, 2, 5, 6, 15, 16, 28, 33, 99, 0, 249, 250, 253, 254, 65535],
            &[0, u64::MAX, 0x5555_5555_5555_5555],
            &[None, Some((512, 0)), Some((4096, 0x8000))],
            "the test zone",
        );
        let fast = answers.len();
        let negative = answers
            .iter()
            .filter(|out| out[3] & 0x0f == 3 || out[2] & 0x04 == 0)
            .count();
        let nodata = answers
            .iter()
            .filter(|out| out[3] & 0x0f == 0 && out[6..8] == [0, 0] && out[2] & 0x04 != 0)
            .count();
        assert!(fast > 1000, "{fast} answers on the hot path");
        assert!(
            negative > 300,
            "{negative} NXDOMAIN or referral answers on the hot path"
        );
        assert!(nodata > 100, "{nodata} NODATA answers on the hot path");
    }

    /// Every set of each name that differs between two versions, as the store records.
    fn changes(
        old: &model::ZoneContent,
        new: &model::ZoneContent,
    ) -> (Vec<model::RecordSet>, Vec<model::RecordSet>) {
        let by_name = |content: &model::ZoneContent| {
            let mut names: std::collections::BTreeMap<Name, Vec<model::RecordSet>> =
                Default::default();
            for set in content.rrsets() {
                names
                    .entry(set.name.to_lowercase())
                    .or_default()
                    .push(set.clone());
            }
            names
        };
        let (before, after) = (by_name(old), by_name(new));
        let names: std::collections::BTreeSet<&Name> = before.keys().chain(after.keys()).collect();
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for name in names {
            if before.get(name) != after.get(name) {
                removed.extend(before.get(name).cloned().unwrap_or_default());
                added.extend(after.get(name).cloned().unwrap_or_default());
            }
        }
        (removed, added)
    }

    fn with_a(content: &model::ZoneContent, owner: &str, last: u8) -> model::ZoneContent {
        let mut next = content.clone();
        let owner = common::name(owner);
        next.remove_rrset(&owner, RecordType::A);
        next.insert(model::Record::from_rdata(
            owner,
            60,
            model::RData::A(model::rdata::A::new(192, 0, 2, last)),
        ))
        .expect("valid record");
        next
    }

    fn without(content: &model::ZoneContent, owner: &str) -> model::ZoneContent {
        let mut next = content.clone();
        let owner = common::name(owner);
        for rtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            next.remove_rrset(&owner, rtype);
        }
        next
    }

    /// [`hot_answers_equal_library`] for `zone` alone, over the test names and the names
    /// the carried-answer tests add; returns the number of hot answers.
    fn hot_equals_library(zone: impl Into<Arc<ZoneSnapshot>>, what: &str) -> usize {
        let catalog = Catalog::new();
        catalog.replace_zone(zone.into());
        let mut questions = names();
        questions.extend(
            [
                "n.m.example.test.",
                "m.example.test.",
                "x.n.m.example.test.",
            ]
            .map(String::from),
        );
        hot_answers_equal_library(
            &catalog.snapshot(),
            &questions,
            &[1, 2, 5, 6, 15, 16, 28, 99],
            &[0, 0x5555_5555_5555_5555],
            &[None, Some((4096, 0x8000))],
            what,
        )
        .len()
    }

    /// A patched version carrying its predecessor's answers answers on the hot path exactly
    /// what the library path answers from the new version, for changes that make CNAMEs,
    /// a dangling CNAME, an MX target, glue below a cut and empty non-terminals stale.
    #[test]
    fn carried_answers_equal_the_library_path_of_the_new_version() {
        let first = common::example_zone(7);
        let encoded = ZoneSnapshot::build(&first, Generation(1));
        let whole = hot_equals_library(ZoneSnapshot::build(&first, Generation(1)), "whole");
        let mut added_deep = first.with_serial(8);
        added_deep
            .insert(model::Record::from_rdata(
                common::name("n.m.example.test."),
                60,
                model::RData::A(model::rdata::A::new(192, 0, 2, 99)),
            ))
            .expect("valid record");
        let changes_to_carry = [
            ("serial only", first.with_serial(8)),
            (
                "a CNAME target",
                with_a(&first.with_serial(8), "www.example.test.", 77),
            ),
            (
                "a dangling CNAME's target appears",
                with_a(&first.with_serial(8), "nothere.example.test.", 5),
            ),
            (
                "the apex MX target",
                with_a(&first.with_serial(8), "mail.example.test.", 6),
            ),
            (
                "glue below a cut",
                with_a(&first.with_serial(8), "ns.sub.example.test.", 7),
            ),
            (
                "a deep name goes",
                without(&first.with_serial(8), "a.b.c.example.test."),
            ),
            ("a deep name comes", added_deep),
        ];
        for (what, content) in changes_to_carry {
            let (removed, added) = changes(&first, &content);
            let patched = encoded.patched(&removed, &added, Generation(2));
            let carried = patched
                .carry_answers(&encoded)
                .unwrap_or_else(|| panic!("{what}: carried"));
            let fast = hot_equals_library(carried, what);
            // Answers that mention the apex (CNAME chains ending without data: the SOA) go
            // to the library path after every version instead of being encoded anew; in
            // this small zone that is about a third of them.
            assert!(
                fast * 10 > whole * 6,
                "{what}: {fast} of {whole} answers stayed hot"
            );
        }
        // Two patches in a row, the second carrying the first's carried answers.
        let second = with_a(&first.with_serial(8), "www.example.test.", 77);
        let third = with_a(&second.with_serial(9), "nothere.example.test.", 5);
        let (removed, added) = changes(&first, &second);
        let carried = encoded
            .patched(&removed, &added, Generation(2))
            .carry_answers(&encoded)
            .expect("carried");
        let (removed, added) = changes(&second, &third);
        let again = carried
            .patched(&removed, &added, Generation(3))
            .carry_answers(&carried)
            .expect("carried twice");
        assert!(hot_equals_library(again, "two patches") * 10 > whole * 7);
        // What the bookkeeping does not follow is refused: an apex NS target's address,
        // a wildcard.
        for (what, content) in [
            (
                "an apex NS address",
                with_a(&first.with_serial(8), "ns1.example.test.", 9),
            ),
            (
                "a wildcard",
                with_a(&first.with_serial(8), "*.wild.example.test.", 9),
            ),
        ] {
            let (removed, added) = changes(&first, &content);
            let patched = encoded.patched(&removed, &added, Generation(2));
            assert!(
                patched.carry_answers(&encoded).is_none(),
                "{what} is not carried"
            );
        }
    }

    /// A CNAME whose chain comes to end without data is answered anew with that version's
    /// SOA; later patches that do not touch it must not serve that answer with the old
    /// serial (it mentions the apex now, which the carried table does not know).
    #[test]
    fn an_answer_that_came_to_mention_the_apex_is_not_carried_past_its_version() {
        let mut first = common::example_zone(7);
        let both = common::name("both.example.test.");
        for record in [
            model::Record::from_rdata(
                both.clone(),
                60,
                model::RData::A(model::rdata::A::new(192, 0, 2, 60)),
            ),
            model::Record::from_rdata(
                both.clone(),
                60,
                model::RData::AAAA(model::rdata::AAAA::from(std::net::Ipv6Addr::LOCALHOST)),
            ),
            model::Record::from_rdata(
                common::name("to-both.example.test."),
                60,
                model::RData::CNAME(model::rdata::CNAME(both.clone())),
            ),
        ] {
            first.insert(record).expect("valid record");
        }
        let encoded = Arc::new(ZoneSnapshot::build(&first, Generation(1)));
        let mut second = first.with_serial(8);
        second.remove_rrset(&both, RecordType::AAAA);
        let third = with_a(&second.with_serial(9), "mail.example.test.", 6);
        let fourth = with_a(&third.with_serial(10), "a.b.c.example.test.", 9);
        let mut served = encoded;
        let mut content = first;
        for (step, next) in [second, third, fourth].into_iter().enumerate() {
            let (removed, added) = changes(&content, &next);
            let patched = served.patched(&removed, &added, Generation(2 + step as u64));
            served = Arc::new(patched.carry_answers(&served).expect("carried"));
            let mut questions = names();
            questions.push("to-both.example.test.".to_string());
            let catalog = Catalog::new();
            catalog.replace_zone(Arc::clone(&served));
            hot_answers_equal_library(
                &catalog.snapshot(),
                &questions,
                &[1, 28],
                &[0],
                &[None],
                &format!("patch {}", step + 1),
            );
            content = next;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Patch after patch, each carrying the answers before it (or encoding the whole
        /// version when carrying is refused), the hot path answers what the library path
        /// answers from the new version.
        #[test]
        fn carried_answers_across_random_patches_equal_the_library_path(
            steps in proptest::collection::vec((0usize..9, any::<bool>(), 1u8..4), 1..7),
        ) {
            const OWNERS: [&str; 9] = [
                "www.example.test.", "nothere.example.test.", "mail.example.test.",
                "ns.sub.example.test.", "a.b.c.example.test.", "n.m.example.test.",
                "alias.example.test.", "chain2.example.test.", "example.test.",
            ];
            let mut content = common::example_zone(7);
            let mut served = Arc::new(ZoneSnapshot::build(&content, Generation(1)));
            for (step, (owner, remove, last)) in steps.into_iter().enumerate() {
                let serial = 8 + step as u32;
                let next = if remove {
                    without(&content.with_serial(serial), OWNERS[owner])
                } else {
                    with_a(&content.with_serial(serial), OWNERS[owner], last)
                };
                let (removed, added) = changes(&content, &next);
                let generation = Generation(2 + step as u64);
                let patched = served.patched(&removed, &added, generation);
                served = Arc::new(
                    patched
                        .carry_answers(&served)
                        .unwrap_or_else(|| patched.with_answers()),
                );
                hot_equals_library(Arc::clone(&served), OWNERS[owner]);
                content = next;
            }
        }
    }

    proptest! {
        /// The hot path answers exactly what the library path answers, byte for byte.
        #[test]
        fn hot_path_equals_library_path(
            name_index in any::<prop::sample::Index>(),
            case_mask in any::<u64>(),
            qtype in prop::sample::select(vec![1u16, 2, 5, 6, 12, 15, 16, 28, 33, 43, 99, 255, 257]),
            id in any::<u16>(),
            flags1 in prop::sample::select(vec![0u8, 1, 0x10, 0x21, 0x04, 0x80]),
            edns in prop::option::of((any::<u16>(), prop::sample::select(vec![0u32, 0x8000, 0x0001_0000, 0x0100_0000]))),
            tcp in any::<bool>(),
        ) {
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            let zones = zones();
            let config = ServerConfig::default();
            let names = names();
            let qname = recase(name_index.get::<String>(&names), case_mask);
            let packet = query(id, flags1, &qname, qtype, edns);
            let mut out = vec![0u8; MAX_MESSAGE_BYTES];
            if let Some(length) = answer_fast(&packet, transport, &zones, &config, &mut out) {
                let library = handle_with(&packet, transport, &zones, &config);
                prop_assert_eq!(Some(&out[..length]), library.as_deref());
            }
        }

        /// Damaged queries (bytes flipped, cut short, lengthened) never panic the hot path,
        /// and whatever it still answers is what the library path answers.
        #[test]
        fn damaged_queries_are_declined_or_answered_like_the_library(
            name_index in any::<prop::sample::Index>(),
            qtype in prop::sample::select(vec![1u16, 6, 15, 28]),
            edns in prop::option::of(Just((1232u16, 0u32))),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
            tcp in any::<bool>(),
        ) {
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            let zones = zones();
            let config = ServerConfig::default();
            let names = names();
            let mut packet = query(5, 0, name_index.get::<String>(&names), qtype, edns);
            for (at, byte) in flips {
                let at = at.index(packet.len());
                packet[at] = byte;
            }
            packet.truncate(cut.index(packet.len() + 1).max(1));
            packet.extend_from_slice(&tail);
            let mut out = vec![0u8; MAX_MESSAGE_BYTES];
            if let Some(length) = answer_fast(&packet, transport, &zones, &config, &mut out) {
                let library = handle_with(&packet, transport, &zones, &config);
                prop_assert_eq!(Some(&out[..length]), library.as_deref());
            }
        }
    }
}
