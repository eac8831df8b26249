//! The query hot path: answers pre-encoded per (name, type) when a snapshot is built, and
//! served by copying the query's ID, RD bit and question (with its 0x20 case) around the
//! stored bytes, plus an OPT record when the query had one. No allocation, no library
//! parsing.
//!
//! Only the common shape of query takes this path: opcode QUERY, one question of class IN
//! for a name the table holds, nothing in answer or authority, at most an empty OPT of
//! version 0, a reply that fits the size limit untruncated. Anything else (and anything
//! this module is unsure about) returns `None` and goes to the library path in `wire`,
//! which is the reference: the stored bytes are produced by that same path when the
//! snapshot is built, and a property test compares the two over random queries.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use model::{Name, RecordType};

use crate::catalog::{Served, Zones};
use crate::config::ServerConfig;
use crate::snapshot::ZoneSnapshot;
use crate::stats::RcodeCounters;
use crate::template::{Miss, Question, Templates};

/// RFC 1035 §3.1: a name on the wire is at most 255 bytes.
pub(crate) const MAX_NAME_WIRE_BYTES: usize = 255;
/// The table key: lower-cased wire name, then the query type.
const KEY_BYTES: usize = MAX_NAME_WIRE_BYTES + 2;
/// Header fields stored in front of each answer: flags1, flags2, ANCOUNT, NSCOUNT, ARCOUNT.
const META_BYTES: usize = 8;
const HEADER_BYTES: usize = 12;
/// An OPT record with no options: root owner, type, class, TTL, RDLENGTH.
const OPT_BYTES: usize = 11;
const CLASSIC_UDP_BYTES: usize = 512;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const FLAG_RD: u8 = 0x01;
/// Query types never answered from the table: DS may be answered by a parent zone
/// (RFC 4035 §3.1.4.1), the rest are meta types the library path handles.
const SLOW_TYPES: [RecordType; 5] = [
    RecordType::DS,
    RecordType::ANY,
    RecordType::AXFR,
    RecordType::IXFR,
    RecordType::OPT,
];

/// The types whose stored answer proves that a name exists, for NODATA.
const PROOF_TYPES: [RecordType; 6] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::SOA,
    RecordType::NS,
];

/// Pre-encoded answers of one snapshot, keyed by lower-cased wire name and type.
///
/// The hasher is a folded-multiply hash ([`FoldHasher`]): keys come from the zone, not from
/// clients, so a client can only choose which bucket it probes, not make chains longer.
#[derive(Debug, Default)]
pub(crate) struct AnswerTable {
    entries: HashSet<StoredAnswer, BuildHasherDefault<FoldHasher>>,
    /// NXDOMAIN and referrals for names the entries do not hold (`crate::template`).
    templates: Templates,
    /// The CNAME chain bound the answers were computed with; a server configured with
    /// another bound uses the library path.
    cname_chain_length: usize,
    /// For each name of the zone (key form), the names whose answers mention it: what a
    /// change of it makes stale when the table is carried to a patched version
    /// (`crate::carried`).
    dependents: crate::nodes::NameMap<Vec<Name>>,
    /// The names whose answers mention the apex, directly or through other names of this
    /// table (its SOA serial changes with every version): worked out once per table, on
    /// the first carry (`crate::carried`).
    through_apex: std::sync::OnceLock<std::sync::Arc<crate::carried::ThroughApex>>,
}

/// A key and its answer in one allocation: the key's length (two bytes), the key, then the
/// answer. Hashed and compared by its key alone, so the table is looked up with a key slice.
#[derive(Debug, Clone)]
struct StoredAnswer(Box<[u8]>);

impl StoredAnswer {
    fn new(key: &[u8], answer: &[&[u8]]) -> StoredAnswer {
        let length = 2 + key.len() + answer.iter().map(|part| part.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(length);
        // Keys are a name (at most 255 bytes) and a type: the length fits two bytes.
        bytes.extend_from_slice(&(key.len() as u16).to_be_bytes());
        bytes.extend_from_slice(key);
        for part in answer {
            bytes.extend_from_slice(part);
        }
        StoredAnswer(bytes.into_boxed_slice())
    }

    fn key_end(&self) -> usize {
        2 + usize::from(u16::from_be_bytes([self.0[0], self.0[1]]))
    }

    fn key(&self) -> &[u8] {
        &self.0[2..self.key_end()]
    }

    fn answer(&self) -> &[u8] {
        &self.0[self.key_end()..]
    }
}

impl Borrow<[u8]> for StoredAnswer {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl Hash for StoredAnswer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for StoredAnswer {
    fn eq(&self, other: &StoredAnswer) -> bool {
        self.key() == other.key()
    }
}

impl Eq for StoredAnswer {}

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

impl AnswerTable {
    pub(crate) fn new(cname_chain_length: usize) -> AnswerTable {
        AnswerTable {
            entries: HashSet::default(),
            templates: Templates::default(),
            cname_chain_length,
            dependents: Default::default(),
            through_apex: std::sync::OnceLock::new(),
        }
    }

    /// Notes that the answers at `source` mention `target` (both in key form).
    pub(crate) fn add_dependent(&mut self, target: Name, source: &Name) {
        self.dependents
            .entry(target)
            .or_default()
            .push(source.clone());
    }

    /// The names whose answers mention `target` (key form).
    pub(crate) fn dependents_of(&self, target: &Name) -> &[Name] {
        self.dependents
            .get(target)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The names whose answers mention `apex` through this table's dependents (see
    /// [`crate::carried::ThroughApex`]); worked out on the first call.
    pub(crate) fn through_apex(&self, apex: &Name) -> std::sync::Arc<crate::carried::ThroughApex> {
        std::sync::Arc::clone(
            self.through_apex
                .get_or_init(|| std::sync::Arc::new(crate::carried::ThroughApex::of(self, apex))),
        )
    }

    /// Copies every answer of `other` whose name (lower-cased wire format) `keep` accepts.
    pub(crate) fn copy_where(&mut self, other: &AnswerTable, keep: impl Fn(&[u8]) -> bool) {
        for stored in &other.entries {
            let key = stored.key();
            if keep(&key[..key.len() - 2]) {
                self.entries.replace(stored.clone());
            }
        }
    }

    pub(crate) fn cname_chain_length(&self) -> usize {
        self.cname_chain_length
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(&mut self, name: &Name, qtype: RecordType, encoded: Encoded) {
        let mut key = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        push_wire_lowercase(name, &mut key);
        key.extend_from_slice(&u16::from(qtype).to_be_bytes());
        let [answers, authorities, additionals] = encoded.counts.map(u16::to_be_bytes);
        let meta: [u8; META_BYTES] = [
            encoded.flags1,
            encoded.flags2,
            answers[0],
            answers[1],
            authorities[0],
            authorities[1],
            additionals[0],
            additionals[1],
        ];
        self.entries
            .replace(StoredAnswer::new(&key, &[&meta, &encoded.body]));
    }

    /// Copies the answer stored under `key` in `other` into this table; false when `other`
    /// holds none.
    pub(crate) fn copy_from(&mut self, other: &AnswerTable, key: &[u8]) -> bool {
        match other.entries.get(key) {
            Some(stored) => {
                self.entries.replace(stored.clone());
                true
            }
            None => false,
        }
    }

    /// Every stored answer of both tables is the same, key and bytes.
    #[cfg(test)]
    pub(crate) fn same_answers(&self, other: &AnswerTable) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().all(|stored| {
                other
                    .entries
                    .get(stored.key())
                    .is_some_and(|theirs| theirs.0 == stored.0)
            })
    }

    pub(crate) fn templates_mut(&mut self) -> &mut Templates {
        &mut self.templates
    }

    /// Whether the table holds an answer for the name of `key` (a name and a type) with some
    /// other common type: proof that the name exists.
    fn holds_name(&self, key: &[u8]) -> bool {
        let Some(name_bytes) = key.len().checked_sub(2) else {
            return false;
        };
        let mut probe = [0u8; KEY_BYTES];
        probe[..name_bytes].copy_from_slice(&key[..name_bytes]);
        let asked = [key[name_bytes], key[name_bytes + 1]];
        PROOF_TYPES.iter().any(|rtype| {
            let rtype = u16::from(*rtype).to_be_bytes();
            rtype != asked && {
                probe[name_bytes..name_bytes + 2].copy_from_slice(&rtype);
                self.entries.contains(&probe[..name_bytes + 2])
            }
        })
    }

    pub(crate) fn templates(&self) -> &Templates {
        &self.templates
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(StoredAnswer::answer)
    }
}

/// The query types a name's answers are stored for: every type it holds, and A and AAAA
/// when it holds a CNAME (the chain is followed for them) or is a zone cut (referral).
pub(crate) fn stored_types(
    types: impl Iterator<Item = RecordType>,
    is_cut: bool,
) -> Vec<RecordType> {
    let mut out: Vec<RecordType> = types.filter(|t| !SLOW_TYPES.contains(t)).collect();
    if is_cut || out.contains(&RecordType::CNAME) {
        for extra in [RecordType::A, RecordType::AAAA] {
            if !out.contains(&extra) {
                out.push(extra);
            }
        }
    }
    out
}

/// `name` in wire format, ASCII lower-cased, fully qualified.
pub(crate) fn push_wire_lowercase(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        // Labels are at most 63 bytes (the library checks when names are made).
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

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
    zones: &Zones,
    config: &ServerConfig,
    out: &mut [u8],
) -> Option<usize> {
    answer_fast_counted(packet, zones, config, out).map(|(length, _)| length)
}

/// [`answer_fast`], also naming the query counters of the zone that answered.
pub(crate) fn answer_fast_counted<'a>(
    packet: &[u8],
    zones: &'a Zones,
    config: &ServerConfig,
    out: &mut [u8],
) -> Option<(usize, &'a RcodeCounters)> {
    let query = parse(packet)?;
    let served = route(zones, &query)?;
    let zone = &served.zone;
    if zone.answers().cname_chain_length() != config.cname_chain_length {
        return None;
    }
    let (limit, opt_bytes) = match query.edns {
        Some((payload, _)) => (
            usize::from(payload.min(config.udp_payload_bytes)),
            OPT_BYTES,
        ),
        None => (CLASSIC_UDP_BYTES, 0),
    };
    let room = limit.min(out.len()).checked_sub(opt_bytes)?;
    let key = &query.key[..query.name_bytes + 2];
    let stored = match zone.carried() {
        None => zone.answers().get(key),
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
                zone.answers().get(key)
            }
        },
    };
    let length = match stored {
        Some(stored) => answer_stored(packet, &query, stored, room, out)?,
        None => answer_missing(packet, &query, zone, room, out)?,
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
    zone: &ZoneSnapshot,
    room: usize,
    out: &mut [u8],
) -> Option<usize> {
    let name = &query.key[..query.name_bytes];
    let apex_offset = name.len() - zone.origin_wire().len();
    let label_starts = &query.label_starts[..query.labels];
    let table = zone.answers();
    // A carried table's negative answers hold an older SOA: this version's own is used.
    let negative = |template| match zone.carried() {
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

/// One folded multiply per word: the 128-bit product of (state ^ word ^ offset) and an odd
/// constant, its halves XOR-ed. As cheap as FxHash's multiply-rotate, which made 2.6 % of
/// 200,000 names like `host123.bench.test.` collide in all 64 bits (this hash: none of
/// 300,000, for three name patterns).
#[derive(Default, Clone, Copy)]
pub(crate) struct FoldHasher {
    hash: u64,
}

const FOLD_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
const FOLD_OFFSET: u64 = 0x24_3f_6a_88_85_a3_08_d3;

impl FoldHasher {
    fn add(&mut self, word: u64) {
        let product = u128::from(self.hash ^ word ^ FOLD_OFFSET) * u128::from(FOLD_SEED);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::common;
    use crate::snapshot::ZoneSnapshot;
    use crate::wire::{handle_with, Transport};
    use crate::Catalog;
    use model::Generation;
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
            let length = answer_fast(&packet, &zones, &config, &mut out)
                .unwrap_or_else(|| panic!("{qname}/{qtype} is on the hot path"));
            let library = handle_with(&packet, Transport::Udp, &zones, &config).unwrap();
            assert_eq!(&out[..length], &library[..], "{qname}/{qtype}");
        }
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
            assert_eq!(answer_fast(&packet, &zones, &config, &mut out), None);
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
            for edns in [None, Some((1232, 0x8000))] {
                let packet = query(9, 0x01, qname, qtype, edns);
                let length = answer_fast(&packet, &zones, &config, &mut out)
                    .unwrap_or_else(|| panic!("{qname}/{qtype} is on the hot path"));
                assert_eq!(out[3] & 0x0f, rcode, "{qname}");
                let library = handle_with(&packet, Transport::Udp, &zones, &config).unwrap();
                assert_eq!(&out[..length], &library[..], "{qname}/{qtype} {edns:?}");
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
        let mut out = [0u8; 4096];
        let mut answers = Vec::new();
        for qname in questions {
            for &qtype in qtypes {
                for &mask in masks {
                    for &edns in edns_variants {
                        let packet = query(3, 0x01, &recase(qname, mask), qtype, edns);
                        let Some(length) = answer_fast(&packet, zones, &config, &mut out) else {
                            continue;
                        };
                        let library = handle_with(&packet, Transport::Udp, zones, &config);
                        assert_eq!(
                            Some(&out[..length]),
                            library.as_deref(),
                            "{what}: {qname}/{qtype} mask {mask:x} {edns:?}"
                        );
                        answers.push(out[..length].to_vec());
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
        ) {
            let zones = zones();
            let config = ServerConfig::default();
            let names = names();
            let qname = recase(name_index.get::<String>(&names), case_mask);
            let packet = query(id, flags1, &qname, qtype, edns);
            let mut out = [0u8; 4096];
            if let Some(length) = answer_fast(&packet, &zones, &config, &mut out) {
                let library = handle_with(&packet, Transport::Udp, &zones, &config);
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
        ) {
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
            let mut out = [0u8; 4096];
            if let Some(length) = answer_fast(&packet, &zones, &config, &mut out) {
                let library = handle_with(&packet, Transport::Udp, &zones, &config);
                prop_assert_eq!(Some(&out[..length]), library.as_deref());
            }
        }
    }
}
