//! The hot path for names the answer table does not hold: NXDOMAIN, and referrals for names
//! below a zone cut, from answers encoded once per zone (NXDOMAIN) and once per cut
//! (referral) and fitted to each question.
//!
//! A template is the library path's answer to one question `T` (a made-up name just below
//! the apex for NXDOMAIN; the cut itself for a referral), whose names all became
//! compression pointers. For another question `Q` that ends in the same *anchor* (the apex,
//! or the cut), the library path's answer differs only in where its pointers point: into
//! the anchor inside `Q`'s question, or into the body, which starts later or earlier by the
//! difference in question length. So the body is copied and each recorded pointer moved.
//!
//! That holds only while the library would compress exactly as it did for `T`: no name of
//! the body may share more of `Q` than the anchor (checked with the first label above the
//! anchor of every body name below it), and `Q`'s labels must keep the encoder within its
//! candidate bound. Anything else goes to the library path, and a property test in
//! `crate::fast` compares the two byte for byte.
//!
//! Whether a name exists is answered from a table of fingerprints of every owner name and
//! empty non-terminal: no fingerprint means no name. A fingerprint can also belong to
//! another name, so a match is only ever a reason to look further or to give up, and
//! wildcards are checked at every level so that a false match cannot hide one.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use model::{Name, RecordType};

use crate::hashing::{fingerprint, FoldHasher};
use crate::wire_format::{push_wire_lowercase, HEADER_BYTES, MAX_NAME_WIRE_BYTES};
use crate::zone::ZoneData;
/// hickory's encoder keeps at most this many compression candidates (one per label).
const COMPRESSION_CANDIDATES: usize = 64;
/// hickory's encoder stores candidates only below this offset; stay well clear of it.
const COMPRESSION_OFFSET_BYTES: usize = 0x3000;
/// The label of the made-up question the NXDOMAIN template is encoded for; a zone that
/// holds this name gets no NXDOMAIN template.
const NXDOMAIN_PROBE_LABEL: &[u8] = b"dnsward--nxdomain--template";

const TYPE_A: u16 = 1;
const TYPE_NS: u16 = 2;
const TYPE_CNAME: u16 = 5;
const TYPE_SOA: u16 = 6;
const TYPE_PTR: u16 = 12;
const TYPE_MX: u16 = 15;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;

/// Flags of a fingerprint, OR-ed over every name that has it: some such name is a zone
/// cut; holds a CNAME; holds a type whose answer could not be pre-encoded.
const CUT: u8 = 1;
const CNAME: u8 = 2;
const UNSTORED: u8 = 4;

/// One answer fitted to any question ending in its anchor.
#[derive(Debug)]
pub(crate) struct Template {
    flags1: u8,
    flags2: u8,
    /// ANCOUNT, NSCOUNT, ARCOUNT.
    counts: [u16; 3],
    body: Box<[u8]>,
    /// Where the anchor starts in the template's question name, and where that question
    /// ends (header included).
    anchor_offset: usize,
    question_end: usize,
    /// Positions in `body` of every compression pointer.
    pointers: Box<[usize]>,
    /// First labels above the anchor of the body's names below it, lower-cased: a question
    /// with one of them there would be compressed differently.
    guard_labels: Box<[Box<[u8]>]>,
    /// Labels the encoder counted besides the question's.
    other_labels: usize,
}

/// A question fitted: where its name's anchor starts and how many labels the name has.
pub(crate) struct Question<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) anchor_offset: usize,
    pub(crate) labels: usize,
    pub(crate) question_end: usize,
}

impl Template {
    /// Encodes the library path's answer to `qname`/A and records its pointers; `None`
    /// when it cannot serve as a template.
    fn encode(
        zone: &ZoneData,
        qname: &Name,
        anchor: &Name,
        cname_chain: usize,
    ) -> Option<Template> {
        let (message, other_labels) =
            crate::encode::encode_for_template(zone, qname, RecordType::A, cname_chain)?;
        let mut question = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        push_wire_lowercase(qname, &mut question);
        let mut anchor_wire = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        push_wire_lowercase(anchor, &mut anchor_wire);
        let anchor_offset = question.len().checked_sub(anchor_wire.len())?;
        let question_end = HEADER_BYTES + question.len() + 4;
        let word = |i: usize| {
            message
                .get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let counts = [word(6)?, word(8)?, word(10)?];
        let mut walk = BodyWalk {
            message: &message,
            position: question_end,
            pointers: Vec::new(),
            guard_labels: Vec::new(),
            anchor: &anchor_wire,
        };
        for _ in 0..counts.iter().map(|c| usize::from(*c)).sum::<usize>() {
            walk.record()?;
        }
        if walk.position != message.len() {
            return None;
        }
        // Every pointer into the question must point into the anchor.
        let anchor_start = HEADER_BYTES + anchor_offset;
        for &position in &walk.pointers {
            let target = pointer_target(&message, position)?;
            if target < question_end && target < anchor_start {
                return None;
            }
        }
        let body_start = question_end;
        Some(Template {
            flags1: message[2],
            flags2: message[3],
            counts,
            body: message[body_start..].into(),
            anchor_offset,
            question_end,
            pointers: walk.pointers.iter().map(|p| p - body_start).collect(),
            guard_labels: walk
                .guard_labels
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
            other_labels,
        })
    }

    /// Writes the answer to `packet` (whose question is `question`) into `out`, at most
    /// `limit` bytes (room for an OPT record is kept by the caller); `None` when this
    /// question needs the library path.
    pub(crate) fn fit(
        &self,
        packet: &[u8],
        question: &Question<'_>,
        limit: usize,
        out: &mut [u8],
    ) -> Option<usize> {
        if question.anchor_offset > 0 {
            let above = label_before(question.name, question.anchor_offset)?;
            if self
                .guard_labels
                .iter()
                .any(|guard| guard.eq_ignore_ascii_case(above))
            {
                return None;
            }
        }
        let end = question.question_end + self.body.len();
        if self.other_labels + question.labels + 1 > COMPRESSION_CANDIDATES
            || end >= COMPRESSION_OFFSET_BYTES
            || end > limit
            || end > out.len()
        {
            return None;
        }
        out[..2].copy_from_slice(&packet[..2]);
        out[2] = self.flags1 | (packet[2] & 0x01);
        out[3] = self.flags2;
        out[4..6].copy_from_slice(&1u16.to_be_bytes());
        out[6..8].copy_from_slice(&self.counts[0].to_be_bytes());
        out[8..10].copy_from_slice(&self.counts[1].to_be_bytes());
        out[10..12].copy_from_slice(&self.counts[2].to_be_bytes());
        out[HEADER_BYTES..question.question_end]
            .copy_from_slice(&packet[HEADER_BYTES..question.question_end]);
        out[question.question_end..end].copy_from_slice(&self.body);
        let into_anchor = HEADER_BYTES + question.anchor_offset;
        for &at in self.pointers.iter() {
            let position = question.question_end + at;
            let old = usize::from(u16::from_be_bytes([out[position], out[position + 1]]) & 0x3fff);
            let new = if old < self.question_end {
                old - (HEADER_BYTES + self.anchor_offset) + into_anchor
            } else {
                old - self.question_end + question.question_end
            };
            // Below COMPRESSION_OFFSET_BYTES, checked above.
            let pointer = 0xc000 | new as u16;
            out[position..position + 2].copy_from_slice(&pointer.to_be_bytes());
        }
        Some(end)
    }
}

/// Walks the records of a template's body, noting pointers and guard labels.
struct BodyWalk<'a> {
    message: &'a [u8],
    position: usize,
    pointers: Vec<usize>,
    guard_labels: Vec<Vec<u8>>,
    anchor: &'a [u8],
}

impl BodyWalk<'_> {
    fn record(&mut self) -> Option<()> {
        self.name()?;
        let fixed = self.message.get(self.position..self.position + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let length = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        self.position += 10;
        let end = self.position + length;
        match rtype {
            TYPE_A | TYPE_AAAA | TYPE_TXT => self.position = end,
            TYPE_NS | TYPE_CNAME | TYPE_PTR => self.name()?,
            TYPE_MX => {
                self.position += 2;
                self.name()?;
            }
            TYPE_SOA => {
                self.name()?;
                self.name()?;
                self.position += 20;
            }
            // Types whose data may hold names we do not walk: no template.
            _ => return None,
        }
        (self.position == end).then_some(())
    }

    /// Steps over a name at the current position, noting its pointer and, when the whole
    /// name lies below the anchor, its first label above the anchor.
    fn name(&mut self) -> Option<()> {
        let start = self.position;
        loop {
            let length = *self.message.get(self.position)?;
            if length & 0xc0 == 0xc0 {
                self.message.get(self.position + 1)?;
                self.pointers.push(self.position);
                self.position += 2;
                break;
            }
            if length & 0xc0 != 0 {
                return None;
            }
            self.position += 1 + usize::from(length);
            if length == 0 {
                break;
            }
        }
        let full = expand(self.message, start)?;
        if full.len() > self.anchor.len() && full.ends_with(self.anchor) {
            let above = label_before(&full, full.len() - self.anchor.len())?;
            self.guard_labels.push(above.to_ascii_lowercase());
        }
        Some(())
    }
}

/// The name at `start` with every pointer followed, lower-cased, in wire form.
fn expand(message: &[u8], mut position: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
    // Each jump must go backwards, so the walk ends.
    let mut limit = position;
    loop {
        let length = *message.get(position)?;
        if length & 0xc0 == 0xc0 {
            let target = pointer_target(message, position)?;
            if target >= limit {
                return None;
            }
            limit = target;
            position = target;
            continue;
        }
        let label = message.get(position..position + 1 + usize::from(length))?;
        out.push(length);
        out.extend(label[1..].iter().map(u8::to_ascii_lowercase));
        if length == 0 || out.len() > MAX_NAME_WIRE_BYTES {
            return (length == 0).then_some(out);
        }
        position += 1 + usize::from(length);
    }
}

fn pointer_target(message: &[u8], position: usize) -> Option<usize> {
    let bytes = message.get(position..position + 2)?;
    Some(usize::from(
        u16::from_be_bytes([bytes[0], bytes[1]]) & 0x3fff,
    ))
}

/// The label that ends just before `offset` in the wire name `name` (labels are walked
/// from the start, as lengths are only known that way).
fn label_before(name: &[u8], offset: usize) -> Option<&[u8]> {
    let mut position = 0;
    while position < offset {
        let length = usize::from(*name.get(position)?);
        let next = position + 1 + length;
        if next == offset {
            return name.get(position + 1..next);
        }
        position = next;
    }
    None
}

/// The zone's NXDOMAIN template: the answer to a made-up name just below the apex, unless
/// the zone holds that name or does not answer it with NXDOMAIN (a wildcard at the apex).
pub(crate) fn nxdomain_template(zone: &ZoneData, cname_chain: usize) -> Option<Template> {
    let probe = zone.origin().prepend_label(NXDOMAIN_PROBE_LABEL).ok()?;
    if zone.node(&probe).is_some() {
        return None;
    }
    Template::encode(zone, &probe, zone.origin(), cname_chain)
        .filter(|template| template.flags2 & 0x0f == 3)
}

/// Per snapshot: the name fingerprints, the NXDOMAIN template and one referral per cut.
#[derive(Debug, Default)]
pub(crate) struct Templates {
    names: HashMap<u64, u8, BuildHasherDefault<FoldHasher>>,
    nxdomain: Option<Template>,
    referrals: HashMap<Box<[u8]>, Template, BuildHasherDefault<FoldHasher>>,
}

/// What the hot path may answer for a name the table does not hold.
pub(crate) enum Miss<'a> {
    /// The name does not exist: the zone's NXDOMAIN.
    NxDomain(&'a Template),
    /// The name is at or below this cut: its referral; the anchor is the cut.
    Referral {
        template: &'a Template,
        anchor_offset: usize,
    },
    /// The name may exist without the type: NODATA, the NXDOMAIN template with rcode
    /// NOERROR, once the caller has proven the name exists from an exact key.
    NoData(&'a Template),
}

/// What the templates need to know of one owner name.
pub(crate) struct NameFacts {
    pub(crate) is_cut: bool,
    pub(crate) has_cname: bool,
    /// Some type it holds has no pre-encoded answer: a miss is not NODATA.
    pub(crate) unstored: bool,
}

impl Templates {
    /// Notes that `name` exists, with its facts; for a cut, encodes its referral.
    pub(crate) fn add_name(
        &mut self,
        zone: &ZoneData,
        name: &Name,
        facts: NameFacts,
        cname_chain: usize,
    ) {
        let mut wire = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        push_wire_lowercase(name, &mut wire);
        let flags = [
            (facts.is_cut, CUT),
            (facts.has_cname, CNAME),
            (facts.unstored, UNSTORED),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        *self.names.entry(fingerprint(&wire)).or_default() |= flags;
        if facts.is_cut {
            if let Some(template) = Template::encode(zone, name, name, cname_chain) {
                self.referrals.insert(wire.into_boxed_slice(), template);
            }
        }
    }

    /// Encodes the NXDOMAIN template, unless the zone holds the probe name or does not
    /// answer it with NXDOMAIN (a wildcard at the apex).
    pub(crate) fn add_nxdomain(&mut self, zone: &ZoneData, cname_chain: usize) {
        let Ok(probe) = zone.origin().prepend_label(NXDOMAIN_PROBE_LABEL) else {
            return;
        };
        let mut wire = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        push_wire_lowercase(&probe, &mut wire);
        if self.names.contains_key(&fingerprint(&wire)) {
            return;
        }
        self.nxdomain = nxdomain_template(zone, cname_chain);
    }

    /// Decides what a name that the table does not hold gets. `name` is the lower-cased
    /// wire name, `label_starts` the offsets of its labels, `apex_offset` where the zone's
    /// origin starts in it.
    pub(crate) fn miss(
        &self,
        name: &[u8],
        label_starts: &[u8],
        apex_offset: usize,
    ) -> Option<Miss<'_>> {
        let mut parent = apex_offset;
        // From the label just below the apex down to the whole name.
        for start in label_starts
            .iter()
            .rev()
            .map(|s| usize::from(*s))
            .filter(|s| *s < apex_offset)
        {
            if self.has_wildcard_below(&name[parent..]) {
                return None;
            }
            match self.names.get(&fingerprint(&name[start..])) {
                None => return self.nxdomain.as_ref().map(Miss::NxDomain),
                Some(flags) if flags & CUT != 0 => {
                    // Verified by the exact key: a fingerprint may be another name's.
                    let template = self.referrals.get(&name[start..])?;
                    return Some(Miss::Referral {
                        template,
                        anchor_offset: start,
                    });
                }
                Some(_) => parent = start,
            }
        }
        // The name may exist; NODATA only for a plain name (no CNAME, every type stored).
        let flags = self.names.get(&fingerprint(name))?;
        if flags & (CUT | CNAME | UNSTORED) != 0 {
            return None;
        }
        self.nxdomain.as_ref().map(Miss::NoData)
    }

    fn has_wildcard_below(&self, parent: &[u8]) -> bool {
        let mut wildcard = [0u8; MAX_NAME_WIRE_BYTES + 2];
        let Some(slot) = wildcard.get_mut(2..2 + parent.len()) else {
            return true;
        };
        slot.copy_from_slice(parent);
        wildcard[0] = 1;
        wildcard[1] = b'*';
        self.names
            .contains_key(&fingerprint(&wildcard[..2 + parent.len()]))
    }
}
