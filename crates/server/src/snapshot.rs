//! One zone, ready to answer: everything lookup needs, computed once when a version is
//! loaded, never modified afterwards.

use model::{limits, Generation, Name, RData, Record, RecordSet, RecordType, ZoneContent};

use std::sync::Arc;

use crate::carried::{self, Carried};
use crate::fast::{self, AnswerTable};
pub(crate) use crate::nodes::Node;
use crate::nodes::{NameMap, Nodes};
use crate::template::NameFacts;
use crate::wire;

/// Query types whose answer at an unchanged name may be copied from an earlier version:
/// their records name no other owner (no additional-section addresses of their own).
const REUSABLE_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::TXT];

/// See [`ZoneSnapshot::apex_dependencies`].
#[derive(Debug, PartialEq)]
pub(crate) struct ApexDependencies {
    ns: Vec<Record>,
    targets: Vec<NsTarget>,
}

/// An in-zone target of the apex NS set, as positive answers carry it.
#[derive(Debug, PartialEq)]
struct NsTarget {
    name: Name,
    below_cut: bool,
    a: Option<Vec<Record>>,
    aaaa: Option<Vec<Record>>,
}

/// Names pre-encoded between two checks whether a newer version is waiting.
pub const ENCODE_CHECK_NAMES: usize = 1024;

fn default_cname_chain_length() -> usize {
    usize::try_from(limits::CNAME_CHAIN_LENGTH.default).unwrap_or(usize::MAX)
}

/// An immutable, query-ready view of one version of one zone.
#[derive(Debug)]
pub struct ZoneSnapshot {
    origin: Name,
    generation: Generation,
    serial: u32,
    /// Every name that exists in the zone, keyed lower-cased and fully qualified: names
    /// with data and the empty non-terminals between them and the apex.
    /// Shared between a snapshot and the same version with its answers pre-encoded, and
    /// in part with the versions before and after (see [`crate::nodes`]).
    nodes: Nodes,
    /// The apex SOA with its TTL lowered to the negative TTL, for NXDOMAIN and NODATA.
    negative_soa: Record,
    negative_ttl: u32,
    /// The origin in wire format, lower-cased: how the hot path routes a query.
    origin_wire: Box<[u8]>,
    /// Answers pre-encoded per (name, type) for the hot path (`crate::fast`); for a version
    /// with `carried` answers, an earlier version's table.
    answers: Arc<AnswerTable>,
    /// What differs from the carried table (`crate::carried`).
    carried: Option<Arc<Carried>>,
    /// For a patched version: the version it was patched from and the names the patch
    /// changed (key form).
    patch: Option<(Generation, Arc<[Name]>)>,
    /// Some name below the apex is a zone cut (else no name lies below one).
    has_cuts: bool,
    /// The zone has (or had, for a patched version) a DNAME: its queries take the library
    /// path, which synthesizes CNAMEs below it (RFC 6672); nothing is pre-encoded.
    has_dname: bool,
}

/// Lower-cased, fully qualified: the one form used as a key.
pub(crate) fn key(name: &Name) -> Name {
    let mut key = name.to_lowercase();
    key.set_fqdn(true);
    key
}

impl ZoneSnapshot {
    /// Precomputes nodes, cuts, empty non-terminals and the negative answer.
    ///
    /// Content without a single apex SOA is served with a synthetic SOA of serial 0 so that
    /// build never fails; the store only activates content that passed
    /// [`ZoneContent::validate`].
    pub fn build(content: &ZoneContent, generation: Generation) -> ZoneSnapshot {
        ZoneSnapshot::build_lookup(content, generation).with_answers()
    }

    /// [`ZoneSnapshot::build`] without the hot path's pre-encoded answers: every query of
    /// this snapshot takes the library path. A follower serves it at once and then swaps
    /// in [`ZoneSnapshot::with_answers`], so a new version reaches the wire sooner.
    pub fn build_lookup(content: &ZoneContent, generation: Generation) -> ZoneSnapshot {
        let origin = key(content.origin());
        let nodes = Nodes::build(
            &origin,
            content
                .rrsets()
                .map(|set| (key(&set.name), set.rtype, set.records().collect())),
        );
        let has_cuts = nodes.iter().any(|(_, node)| node.is_cut);
        let has_dname = nodes
            .iter()
            .any(|(_, node)| node.rrset(RecordType::DNAME).is_some());
        let mut snapshot = ZoneSnapshot::from_nodes(origin, generation, nodes, has_cuts);
        snapshot.has_dname = has_dname;
        snapshot
    }

    /// The next version of this zone from the sets that changed: `added` holds every set of
    /// each changed name in the new version (none for a deleted name), `removed` those it
    /// had here; every other name is as here. Costs the changed names, not the zone. Like
    /// [`ZoneSnapshot::build_lookup`], its queries take the library path.
    pub fn patched(
        &self,
        removed: &[RecordSet],
        added: &[RecordSet],
        generation: Generation,
    ) -> ZoneSnapshot {
        let mut changed: NameMap<Vec<(RecordType, Vec<Record>)>> = removed
            .iter()
            .map(|set| (key(&set.name), Vec::new()))
            .collect();
        for set in added {
            changed
                .entry(key(&set.name))
                .or_default()
                .push((set.rtype, set.records().collect()));
        }
        let has_cuts = self.has_cuts
            || changed.iter().any(|(name, sets)| {
                *name != self.origin
                    && sets
                        .iter()
                        .any(|(t, r)| *t == RecordType::NS && !r.is_empty())
            });
        let has_dname = self.has_dname
            || changed.iter().any(|(_, sets)| {
                sets.iter()
                    .any(|(t, r)| *t == RecordType::DNAME && !r.is_empty())
            });
        let nodes = self.nodes.patched(&self.origin, changed);
        let names: Arc<[Name]> = nodes.newest_layer_names().into();
        let mut next = ZoneSnapshot::from_nodes(self.origin.clone(), generation, nodes, has_cuts);
        next.patch = Some((self.generation, names));
        next.has_dname = has_dname;
        next
    }

    /// This patched version answering from `from`'s pre-encoded answers (the version it was
    /// patched from), with the answers its changes made stale encoded anew
    /// (`crate::carried`). Costs the stale names, not the zone. `None` when `self` is not a
    /// patch of `from`, `from` has no pre-encoded answers, or the changes are not of a kind
    /// that can be carried: then encode the whole version.
    pub fn carry_answers(&self, from: &ZoneSnapshot) -> Option<ZoneSnapshot> {
        let (patched_from, changed) = self.patch.as_ref()?;
        if *patched_from != from.generation || from.origin != self.origin || self.has_dname {
            return None;
        }
        let (table, carried) = carried::carry(self, from, changed)?;
        let mut next = self.with_table(table, self.nodes.clone());
        next.carried = Some(Arc::new(carried));
        Some(next)
    }

    /// Works out now what carrying this version's answers needs once per table (the names
    /// that mention the apex, `crate::carried`), so that the first carry after an encoding
    /// costs the change too. Nothing to do without pre-encoded answers.
    pub fn prepare_carrying(&self) {
        if self.answers.len() > 0 {
            self.answers.through_apex(&key(self.origin()));
        }
    }

    /// For a version with carried answers, the number of names answered anew or on the
    /// library path instead of from the carried table.
    pub fn stale_names(&self) -> Option<usize> {
        self.carried.as_ref().map(|carried| carried.stale_names())
    }

    /// Whether the whole version should be encoded: it has no pre-encoded answers, or its
    /// carried answers have half as many stale names as carrying allows (so that the
    /// encoding, done off the path to the wire, is ready before carrying stops).
    pub fn wants_encoding(&self) -> bool {
        if self.has_dname {
            return false;
        }
        match &self.carried {
            Some(carried) => carried::over_limit(carried.stale_names(), self.answers.len(), 2),
            None => self.answers.len() == 0,
        }
    }

    pub(crate) fn carried(&self) -> Option<&Carried> {
        self.carried.as_deref()
    }

    /// The pre-encoded answers, shared, when there are any.
    pub(crate) fn answers_shared(&self) -> Option<Arc<AnswerTable>> {
        (self.answers.len() > 0).then(|| Arc::clone(&self.answers))
    }

    /// Whether [`ZoneSnapshot::patched`] with this many changed sets (both sides) is less
    /// work than building the new version whole: up to half as many sets as names here.
    pub fn cheaper_to_patch(&self, changed_sets: usize) -> bool {
        changed_sets <= self.nodes.base_len().max(self.nodes.overlay_len()) / 2
    }

    /// The same version with the names changed by patches merged: into one layer, or into
    /// a new base once they have grown to 1/[`crate::nodes::OVERLAY_SHARE`] of it (which
    /// costs the whole zone). `None` when there is nothing to merge, and for a snapshot with
    /// pre-encoded answers (merge before encoding). Done after a patched version is on the
    /// wire, so that the next patch stays cheap.
    pub fn compacted(&self) -> Option<ZoneSnapshot> {
        (self.nodes.wants_merge() && self.answers.len() == 0)
            .then(|| self.with_table(Arc::default(), self.nodes.merged()))
    }

    fn from_nodes(
        origin: Name,
        generation: Generation,
        nodes: Nodes,
        has_cuts: bool,
    ) -> ZoneSnapshot {
        let soa_record = nodes
            .get(&origin)
            .and_then(|apex| apex.rrset(RecordType::SOA))
            .and_then(|records| records.first())
            .cloned();
        let (negative_soa, serial, negative_ttl) = match soa_record {
            Some(mut record) => {
                let (serial, minimum) = match &record.data {
                    RData::SOA(soa) => (soa.serial, soa.minimum),
                    _ => (0, 0),
                };
                // RFC 2308 §3: the negative TTL is the lower of the SOA's TTL and MINIMUM.
                let ttl = record.ttl.min(minimum);
                record.ttl = ttl;
                (record, serial, ttl)
            }
            None => (synthetic_soa(&origin), 0, 0),
        };
        let mut origin_wire = Vec::new();
        fast::push_wire_lowercase(&origin, &mut origin_wire);
        ZoneSnapshot {
            origin,
            generation,
            serial,
            nodes,
            negative_soa,
            negative_ttl,
            origin_wire: origin_wire.into_boxed_slice(),
            answers: Arc::default(),
            carried: None,
            patch: None,
            has_cuts,
            has_dname: false,
        }
    }

    /// The same version with every stored answer pre-encoded for the hot path.
    pub fn with_answers(&self) -> ZoneSnapshot {
        // `never` is false, so the encoding always completes.
        self.with_answers_reusing(None, &|| false)
            .unwrap_or_else(|| self.with_table(Arc::default(), self.nodes.clone()))
    }

    /// [`ZoneSnapshot::with_answers`], given up (`None`) as soon as `superseded` says the
    /// version is no longer wanted (asked every [`ENCODE_CHECK_NAMES`] names), copying from
    /// `previous` (an earlier version of the same zone with its answers encoded) every
    /// answer that cannot have changed instead of encoding it again: A, AAAA and TXT answers of a name whose records are the same in
    /// both versions, that is no cut, holds no CNAME and lies below no cut in either, while
    /// the apex NS set and the addresses of its targets (what such an answer carries besides
    /// its own records) are the same too. Everything else is encoded anew. The result equals
    /// a fresh encoding byte for byte (tested); only the time differs.
    pub fn with_answers_reusing(
        &self,
        previous: Option<&ZoneSnapshot>,
        superseded: &dyn Fn() -> bool,
    ) -> Option<ZoneSnapshot> {
        if self.has_dname {
            return Some(self.with_table(Arc::default(), self.nodes.clone()));
        }
        let cname_chain_length = default_cname_chain_length();
        let reusable = previous.filter(|previous| {
            previous.origin == self.origin
                && previous.answers.len() > 0
                && previous.answers.cname_chain_length() == cname_chain_length
                && previous.apex_dependencies() == self.apex_dependencies()
        });
        let mut table = AnswerTable::new(cname_chain_length);
        let mut key = Vec::with_capacity(fast::MAX_NAME_WIRE_BYTES + 2);
        let nodes = self.nodes.clone();
        for (index, (name, node)) in nodes.iter().enumerate() {
            if index % ENCODE_CHECK_NAMES == 0 && superseded() {
                return None;
            }
            let unchanged = reusable.filter(|previous| {
                !node.is_cut
                    && node.rrset(RecordType::CNAME).is_none()
                    && previous.nodes.get(name) == Some(node)
                    && !self.below_cut(name)
                    && !previous.below_cut(name)
            });
            let mut unstored = false;
            for qtype in fast::stored_types(node.rrsets.iter().map(|(t, _)| *t), node.is_cut) {
                if let Some(previous) = unchanged.filter(|_| REUSABLE_TYPES.contains(&qtype)) {
                    key.clear();
                    fast::push_wire_lowercase(name, &mut key);
                    key.extend_from_slice(&u16::from(qtype).to_be_bytes());
                    if table.copy_from(&previous.answers, &key) {
                        continue;
                    }
                }
                match wire::pre_encode(self, name, qtype, cname_chain_length) {
                    Some(encoded) => table.insert(name, qtype, encoded),
                    None => unstored = true,
                }
            }
            for target in carried::mentions(self, node) {
                table.add_dependent(target, name);
            }
            let facts = NameFacts {
                is_cut: node.is_cut,
                has_cname: node.rrset(RecordType::CNAME).is_some(),
                unstored,
            };
            table
                .templates_mut()
                .add_name(self, name, facts, cname_chain_length);
        }
        table.templates_mut().add_nxdomain(self, cname_chain_length);
        Some(self.with_table(Arc::new(table), nodes))
    }

    /// The same version with these answers and names, nothing carried.
    fn with_table(&self, answers: Arc<AnswerTable>, nodes: Nodes) -> ZoneSnapshot {
        ZoneSnapshot {
            origin: self.origin.clone(),
            generation: self.generation,
            serial: self.serial,
            nodes,
            negative_soa: self.negative_soa.clone(),
            negative_ttl: self.negative_ttl,
            origin_wire: self.origin_wire.clone(),
            answers,
            carried: None,
            patch: self.patch.clone(),
            has_cuts: self.has_cuts,
            has_dname: self.has_dname,
        }
    }

    /// What a positive answer carries besides its own records: the apex NS set, and for
    /// each target in the zone whether it lies below a cut and its A and AAAA sets.
    pub(crate) fn apex_dependencies(&self) -> ApexDependencies {
        let ns = self
            .node(&self.origin)
            .and_then(|apex| apex.rrset(RecordType::NS))
            .map(<[Record]>::to_vec)
            .unwrap_or_default();
        let targets = ns
            .iter()
            .filter_map(|record| match &record.data {
                RData::NS(target) if self.contains(&target.0) => Some(key(&target.0)),
                _ => None,
            })
            .map(|target| {
                let node = self.node(&target);
                let set = |rtype| node.and_then(|n| n.rrset(rtype)).map(<[Record]>::to_vec);
                NsTarget {
                    below_cut: self.cut_above(&target).is_some(),
                    a: set(RecordType::A),
                    aaaa: set(RecordType::AAAA),
                    name: target,
                }
            })
            .collect();
        ApexDependencies { ns, targets }
    }

    pub(crate) fn answers(&self) -> &AnswerTable {
        &self.answers
    }

    pub(crate) fn origin_wire(&self) -> &[u8] {
        &self.origin_wire
    }

    /// Number of (name, type) answers pre-encoded for the hot path (for a version with
    /// carried answers, those of the carried table).
    pub fn stored_answers(&self) -> usize {
        self.answers.len()
    }

    /// The zone's apex, lower-cased and fully qualified.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// SOA serial of the served content.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// min(SOA TTL, SOA MINIMUM), the TTL of the SOA in negative answers (RFC 2308 §3).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    pub(crate) fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    pub(crate) fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(&key(name))
    }

    /// True when `name` is at or below this zone's origin.
    pub fn contains(&self, name: &Name) -> bool {
        self.origin.zone_of(name)
    }

    /// Whether `name` is at or below a zone cut; cheap for a zone without cuts.
    fn below_cut(&self, name: &Name) -> bool {
        self.has_cuts && self.cut_above(name).is_some()
    }

    /// The DNAME strictly above `name` (at or below the apex), nearest the apex first:
    /// names below it are answered by substitution (RFC 6672 §2.3).
    pub(crate) fn dname_above(&self, name: &Name) -> Option<&Record> {
        if !self.has_dname {
            return None;
        }
        let name = key(name);
        let top = self.origin.num_labels();
        (top..name.num_labels()).find_map(|labels| {
            self.nodes
                .get(&name.trim_to(usize::from(labels)))
                .and_then(|node| node.rrset(RecordType::DNAME))
                .and_then(|records| records.first())
        })
    }

    /// The cut at or above `name` (below the apex), nearest the apex first, if any.
    pub(crate) fn cut_above(&self, name: &Name) -> Option<(Name, &Node)> {
        let name = key(name);
        let top = self.origin.num_labels();
        for labels in (top + 1)..=name.num_labels() {
            let ancestor = name.trim_to(usize::from(labels));
            if let Some(node) = self.nodes.get(&ancestor) {
                if node.is_cut {
                    return Some((ancestor, node));
                }
            }
        }
        None
    }
}

fn synthetic_soa(origin: &Name) -> Record {
    Record::from_rdata(
        origin.clone(),
        0,
        RData::SOA(model::rdata::SOA::new(
            origin.clone(),
            origin.clone(),
            0,
            0,
            0,
            0,
            0,
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::common;
    use std::str::FromStr;

    fn name(text: &str) -> Name {
        Name::from_str(text).expect("test name")
    }

    fn with_a(content: &ZoneContent, owner: &str, last: u8) -> ZoneContent {
        let mut changed = content.clone();
        let owner = name(owner);
        changed.remove_rrset(&owner, RecordType::A);
        let record = Record::from_rdata(owner, 60, RData::A(model::rdata::A::new(192, 0, 2, last)));
        changed.insert(record).expect("valid record");
        changed
    }

    /// Each change: the answers reused from the first version plus the ones encoded anew
    /// equal a fresh encoding of the changed version, every key and byte.
    #[test]
    fn answers_reused_from_an_earlier_version_equal_a_fresh_encoding() {
        let first_content = common::example_zone(7);
        let first = ZoneSnapshot::build(&first_content, Generation(1));
        let www = with_a(&first_content.with_serial(8), "www.example.test.", 77);
        let mut cut = www.clone();
        cut.insert(Record::from_rdata(
            name("c.example.test."),
            3600,
            RData::NS(model::rdata::NS(name("ns1.example.test."))),
        ))
        .expect("valid record");
        let changes = [
            ("serial only", first_content.with_serial(8)),
            ("one address", www.clone()),
            (
                "an apex NS target's address",
                with_a(&www, "ns1.example.test.", 99),
            ),
            ("a new cut above a name", cut),
        ];
        for (what, content) in changes {
            let fresh = ZoneSnapshot::build(&content, Generation(2));
            let reused = ZoneSnapshot::build_lookup(&content, Generation(2))
                .with_answers_reusing(Some(&first), &|| false)
                .expect("never superseded");
            assert!(
                reused.answers().same_answers(fresh.answers()),
                "{what}: reused answers differ from a fresh encoding"
            );
        }
    }

    /// The sets of `content` by owner (lower-cased), for comparing two versions by name.
    fn by_name(content: &ZoneContent) -> std::collections::BTreeMap<Name, Vec<RecordSet>> {
        let mut names: std::collections::BTreeMap<Name, Vec<RecordSet>> = Default::default();
        for set in content.rrsets() {
            names.entry(key(&set.name)).or_default().push(set.clone());
        }
        names
    }

    /// What the store records for a commit: every set of each name that differs.
    fn changes(old: &ZoneContent, new: &ZoneContent) -> (Vec<RecordSet>, Vec<RecordSet>) {
        let (before, after) = (by_name(old), by_name(new));
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        let names: std::collections::BTreeSet<&Name> = before.keys().chain(after.keys()).collect();
        for name in names {
            if before.get(name) != after.get(name) {
                removed.extend(before.get(name).cloned().unwrap_or_default());
                added.extend(after.get(name).cloned().unwrap_or_default());
            }
        }
        (removed, added)
    }

    fn all_nodes(snapshot: &ZoneSnapshot) -> std::collections::HashMap<Name, Node> {
        snapshot
            .nodes
            .iter()
            .map(|(name, node)| (name.clone(), node.clone()))
            .collect()
    }

    /// A patched snapshot and one built whole from the same content: same names (empty
    /// non-terminals and their child counts included), same SOA, same answers to every
    /// question about those names, same pre-encoded answers.
    fn assert_same_version(patched: &ZoneSnapshot, fresh: &ZoneSnapshot, questions: &[Name]) {
        let (ours, theirs) = (all_nodes(patched), all_nodes(fresh));
        for (name, node) in &theirs {
            assert_eq!(ours.get(name), Some(node), "{name}");
        }
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(patched.serial(), fresh.serial());
        assert_eq!(patched.negative_soa(), fresh.negative_soa());
        assert!(!fresh.has_cuts || patched.has_cuts);
        for qname in questions {
            for qtype in [
                RecordType::A,
                RecordType::TXT,
                RecordType::NS,
                RecordType::ANY,
            ] {
                assert_eq!(
                    crate::lookup(patched, qname, qtype, 8),
                    crate::lookup(fresh, qname, qtype, 8),
                    "{qname} {qtype}"
                );
            }
        }
        assert!(patched
            .with_answers()
            .answers()
            .same_answers(fresh.with_answers().answers()));
    }

    /// Owner names the generated versions choose from: deep names with empty
    /// non-terminals above them, a wildcard, a cut with glue below it.
    const OWNERS: [&str; 10] = [
        "www.example.test.",
        "a.b.c.example.test.",
        "b.c.example.test.",
        "d.c.example.test.",
        "*.w.example.test.",
        "x.w.example.test.",
        "cut.example.test.",
        "ns.cut.example.test.",
        "Mixed.Case.example.test.",
        "p.q.r.example.test.",
    ];

    fn version(serial: u32, picks: &[(usize, u8, u8)]) -> ZoneContent {
        let mut content = common::example_zone(serial);
        for &(owner, kind, last) in picks {
            let owner = name(OWNERS[owner % OWNERS.len()]);
            let data = match kind % 4 {
                0 => RData::A(model::rdata::A::new(192, 0, 2, last)),
                1 => RData::TXT(model::rdata::TXT::new(vec![format!("t{last}")])),
                2 => RData::NS(model::rdata::NS(name("ns.cut.example.test."))),
                _ => RData::AAAA(model::rdata::AAAA::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    u16::from(last),
                )),
            };
            content
                .insert(Record::from_rdata(owner, 60, data))
                .expect("valid record");
        }
        content
    }

    fn questions() -> Vec<Name> {
        let mut questions: Vec<Name> = OWNERS.iter().map(|owner| name(owner)).collect();
        for extra in [
            "c.example.test.",
            "w.example.test.",
            "y.w.example.test.",
            "no.example.test.",
            "q.b.c.example.test.",
            "example.test.",
        ] {
            questions.push(name(extra));
        }
        questions
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Patch after patch (merging the overlay at times, as the follower does) gives the
        /// version a whole build gives.
        #[test]
        fn patched_versions_equal_whole_builds(
            steps in proptest::collection::vec(
                proptest::collection::vec((0usize..10, 0u8..4, 0u8..3), 0..8),
                1..7,
            ),
        ) {
            let questions = questions();
            let mut content = version(1, &[]);
            let mut served = ZoneSnapshot::build_lookup(&content, Generation(1));
            for (step, picks) in steps.iter().enumerate() {
                let next = version(step as u32 + 2, picks);
                let (removed, added) = changes(&content, &next);
                let generation = Generation(step as u64 + 2);
                let patched = served.patched(&removed, &added, generation);
                let fresh = ZoneSnapshot::build_lookup(&next, generation);
                assert_same_version(&patched, &fresh, &questions);
                // Kept as patched (layers pile up), merged into one layer, or rebased.
                served = match step % 3 {
                    0 => patched,
                    1 => ZoneSnapshot { nodes: patched.nodes.merged(), ..patched.with_answers() },
                    _ => {
                        let rebased = patched.nodes.rebased();
                        assert_eq!(rebased.overlay_len(), 0);
                        ZoneSnapshot { nodes: rebased, ..patched.with_answers() }
                    }
                };
                content = next;
            }
        }
    }

    #[test]
    fn a_patch_costs_the_changed_names_and_deleting_a_deep_name_removes_its_empty_parents() {
        let first = version(1, &[(9, 0, 1)]);
        let served = ZoneSnapshot::build_lookup(&first, Generation(1));
        assert!(
            served.node(&name("r.example.test.")).is_some(),
            "empty non-terminal"
        );
        let second = version(2, &[]);
        let (removed, added) = changes(&first, &second);
        let patched = served.patched(&removed, &added, Generation(2));
        assert!(patched.node(&name("q.r.example.test.")).is_none());
        assert!(patched.node(&name("r.example.test.")).is_none());
        // The apex (new serial), the deleted name and its two empty parents.
        assert_eq!(patched.nodes.overlay_len(), 4);
        assert_eq!(patched.serial(), 2);
    }
}
