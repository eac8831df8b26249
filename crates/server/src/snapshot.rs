//! One zone, ready to answer: its lookup data ([`ZoneData`]) and how the hot path answers
//! it ([`Answers`]), fixed when the snapshot is made and never modified afterwards.

use std::sync::Arc;

use model::{limits, Generation, RecordSet, RecordType, ZoneContent};

use crate::carried::{self, Carried};
use crate::encode;
use crate::table::{self, AnswerTable};
use crate::template::NameFacts;
use crate::wire_format::{push_wire_lowercase, MAX_NAME_WIRE_BYTES};
pub use crate::zone::ZoneData;
#[cfg(test)]
use crate::zone::{key, Node};

/// Query types whose answer at an unchanged name may be copied from an earlier version:
/// their records name no other owner (no additional-section addresses of their own).
const REUSABLE_TYPES: [RecordType; 3] = [RecordType::A, RecordType::AAAA, RecordType::TXT];

/// Names pre-encoded between two checks whether a newer version is waiting.
pub const ENCODE_CHECK_NAMES: usize = 1024;

/// The CNAME chain bound answers are encoded with unless the caller names another
/// ([`model::limits::CNAME_CHAIN_LENGTH`]).
pub fn default_cname_chain_length() -> usize {
    usize::try_from(limits::CNAME_CHAIN_LENGTH.default).unwrap_or(usize::MAX)
}

/// How the hot path answers a snapshot's queries.
#[derive(Debug, Clone)]
pub(crate) enum Answers {
    /// Nothing pre-encoded: every query takes the library path (a version just loaded or
    /// patched and not yet encoded, or a zone with a DNAME).
    Library,
    /// This version's answers, pre-encoded per (name, type).
    Encoded(Arc<AnswerTable>),
    /// An earlier version's table, with what differs from it in this version
    /// (`crate::carried`).
    Carried {
        table: Arc<AnswerTable>,
        carried: Arc<Carried>,
    },
}

/// An immutable, query-ready view of one version of one zone. It dereferences to its
/// [`ZoneData`] (origin, serial, names), which is what lookup reads.
#[derive(Debug)]
pub struct ZoneSnapshot {
    zone: ZoneData,
    answers: Answers,
}

impl std::ops::Deref for ZoneSnapshot {
    type Target = ZoneData;

    fn deref(&self) -> &ZoneData {
        &self.zone
    }
}

impl ZoneSnapshot {
    /// [`ZoneData::build`] with every answer pre-encoded.
    pub fn build(content: &ZoneContent, generation: Generation) -> ZoneSnapshot {
        ZoneSnapshot::build_lookup(content, generation).with_answers()
    }

    /// [`ZoneSnapshot::build`] without the hot path's pre-encoded answers: every query of
    /// this snapshot takes the library path. A follower serves it at once and then swaps
    /// in [`ZoneSnapshot::with_answers`], so a new version reaches the wire sooner.
    pub fn build_lookup(content: &ZoneContent, generation: Generation) -> ZoneSnapshot {
        ZoneSnapshot::library(ZoneData::build(content, generation))
    }

    fn library(zone: ZoneData) -> ZoneSnapshot {
        ZoneSnapshot {
            zone,
            answers: Answers::Library,
        }
    }

    /// The next version of this zone from the sets that changed ([`ZoneData::patched`]).
    /// Like [`ZoneSnapshot::build_lookup`], its queries take the library path.
    pub fn patched(
        &self,
        removed: &[RecordSet],
        added: &[RecordSet],
        generation: Generation,
    ) -> ZoneSnapshot {
        ZoneSnapshot::library(self.zone.patched(removed, added, generation))
    }

    /// How the hot path answers this snapshot.
    pub(crate) fn answers(&self) -> &Answers {
        &self.answers
    }

    /// This version's lookup data.
    pub fn data(&self) -> &ZoneData {
        &self.zone
    }

    /// This patched version answering from `from`'s pre-encoded answers (the version it was
    /// patched from), with the answers its changes made stale encoded anew
    /// (`crate::carried`). Costs the stale names, not the zone. `None` when `self` is not a
    /// patch of `from`, `from` has no pre-encoded answers, or the changes are not of a kind
    /// that can be carried: then encode the whole version.
    pub fn carry_answers(&self, from: &ZoneSnapshot) -> Option<ZoneSnapshot> {
        let (patched_from, changed) = self.zone.patch()?;
        if *patched_from != from.generation() || from.origin() != self.origin() || self.has_dname()
        {
            return None;
        }
        let (table, previous) = match &from.answers {
            Answers::Library => return None,
            Answers::Encoded(table) => (table, None),
            Answers::Carried { table, carried } => (table, Some(&**carried)),
        };
        let carried = carried::carry(&self.zone, from, table, previous, changed)?;
        Some(ZoneSnapshot {
            zone: self.zone.clone(),
            answers: Answers::Carried {
                table: Arc::clone(table),
                carried: Arc::new(carried),
            },
        })
    }

    /// Works out now what carrying this version's answers needs once per table (the names
    /// that mention the apex, `crate::carried`), so that the first carry after an encoding
    /// costs the change too. Nothing to do without pre-encoded answers.
    pub fn prepare_carrying(&self) {
        if let Some(table) = self.table() {
            table.through_apex(self.origin());
        }
    }

    /// For a version with carried answers, the number of names answered anew or on the
    /// library path instead of from the carried table.
    pub fn stale_names(&self) -> Option<usize> {
        match &self.answers {
            Answers::Carried { carried, .. } => Some(carried.stale_names()),
            Answers::Library | Answers::Encoded(_) => None,
        }
    }

    /// Whether the whole version should be encoded: it has no pre-encoded answers, or its
    /// carried answers have half as many stale names as carrying allows (so that the
    /// encoding, done off the path to the wire, is ready before carrying stops).
    pub fn wants_encoding(&self) -> bool {
        if self.has_dname() {
            return false;
        }
        match &self.answers {
            Answers::Library => true,
            Answers::Encoded(_) => false,
            Answers::Carried { table, carried } => {
                carried::over_limit(carried.stale_names(), table.len(), 2)
            }
        }
    }

    /// The pre-encoded table the hot path reads (for carried answers, the carried one).
    fn table(&self) -> Option<&Arc<AnswerTable>> {
        match &self.answers {
            Answers::Library => None,
            Answers::Encoded(table) | Answers::Carried { table, .. } => Some(table),
        }
    }

    /// This version's own pre-encoded answers, when it has them (not carried ones).
    fn own_table(&self) -> Option<&Arc<AnswerTable>> {
        match &self.answers {
            Answers::Encoded(table) => Some(table),
            Answers::Library | Answers::Carried { .. } => None,
        }
    }

    /// Whether [`ZoneSnapshot::patched`] with this many changed sets (both sides) is less
    /// work than building the new version whole: up to half as many sets as names here.
    pub fn cheaper_to_patch(&self, changed_sets: usize) -> bool {
        self.zone.cheaper_to_patch(changed_sets)
    }

    /// The same version with the names changed by patches merged: into one layer, or into
    /// a new base once they have grown to 1/[`crate::nodes::OVERLAY_SHARE`] of it (which
    /// costs the whole zone). `None` when there is nothing to merge, and for a snapshot with
    /// pre-encoded answers (merge before encoding). Done after a patched version is on the
    /// wire, so that the next patch stays cheap.
    pub fn compacted(&self) -> Option<ZoneSnapshot> {
        (self.zone.nodes.wants_merge() && matches!(self.answers, Answers::Library))
            .then(|| ZoneSnapshot::library(self.zone.with_nodes(self.zone.nodes.merged())))
    }

    /// The same version with every stored answer pre-encoded for the hot path.
    pub fn with_answers(&self) -> ZoneSnapshot {
        // `never` is false, so the encoding always completes.
        self.with_answers_reusing(None, &|| false, default_cname_chain_length())
            .unwrap_or_else(|| ZoneSnapshot::library(self.zone.clone()))
    }

    /// [`ZoneSnapshot::with_answers`] for a server that follows CNAME chains up to
    /// `cname_chain_length` (its `ServerConfig::cname_chain_length`; the hot path answers
    /// only from a table encoded with the server's bound), given up (`None`) as soon as
    /// `superseded` says the version is no longer wanted (asked every
    /// [`ENCODE_CHECK_NAMES`] names), copying from `previous` (an earlier version of the
    /// same zone with its answers encoded) every answer that cannot have changed instead
    /// of encoding it again: A, AAAA and TXT answers of a name whose records are the same
    /// in both versions, that is no cut, holds no CNAME and lies below no cut in either,
    /// while the apex NS set and the addresses of its targets (what such an answer carries
    /// besides its own records) are the same too. Everything else is encoded anew. The
    /// result equals a fresh encoding byte for byte (tested); only the time differs.
    pub fn with_answers_reusing(
        &self,
        previous: Option<&ZoneSnapshot>,
        superseded: &dyn Fn() -> bool,
        cname_chain_length: usize,
    ) -> Option<ZoneSnapshot> {
        if self.has_dname() {
            return Some(ZoneSnapshot::library(self.zone.clone()));
        }
        let reusable = previous.and_then(|previous| {
            let table = previous.own_table()?;
            (previous.origin() == self.origin()
                && table.cname_chain_length() == cname_chain_length
                && previous.apex_dependencies() == self.apex_dependencies())
            .then_some((previous, table))
        });
        let mut table = AnswerTable::new(cname_chain_length);
        let mut key = Vec::with_capacity(MAX_NAME_WIRE_BYTES + 2);
        let zone = &self.zone;
        for (index, (name, node)) in zone.nodes.iter().enumerate() {
            if index % ENCODE_CHECK_NAMES == 0 && superseded() {
                return None;
            }
            let unchanged = reusable.filter(|(previous, _)| {
                !node.is_cut
                    && node.rrset(RecordType::CNAME).is_none()
                    && previous.nodes.get(name) == Some(node)
                    && !zone.below_cut(name)
                    && !previous.below_cut(name)
            });
            let mut unstored = false;
            for qtype in table::stored_types(node.rrsets.iter().map(|(t, _)| *t), node.is_cut) {
                if let Some((_, previous)) = unchanged.filter(|_| REUSABLE_TYPES.contains(&qtype)) {
                    key.clear();
                    push_wire_lowercase(name, &mut key);
                    key.extend_from_slice(&u16::from(qtype).to_be_bytes());
                    if table.copy_from(previous, &key) {
                        continue;
                    }
                }
                match encode::pre_encode(zone, name, qtype, cname_chain_length) {
                    Some(encoded) => table.insert(name, qtype, encoded),
                    None => unstored = true,
                }
            }
            for target in carried::mentions(zone, node) {
                table.add_dependent(target, name);
            }
            let facts = NameFacts {
                is_cut: node.is_cut,
                has_cname: node.rrset(RecordType::CNAME).is_some(),
                unstored,
            };
            table
                .templates_mut()
                .add_name(zone, name, facts, cname_chain_length);
        }
        table.templates_mut().add_nxdomain(zone, cname_chain_length);
        Some(ZoneSnapshot {
            zone: self.zone.clone(),
            answers: Answers::Encoded(Arc::new(table)),
        })
    }

    /// Number of (name, type) answers pre-encoded for the hot path (for a version with
    /// carried answers, those of the carried table).
    pub fn stored_answers(&self) -> usize {
        self.table().map_or(0, |table| table.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::common;
    use model::{Name, RData, Record};
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
                .with_answers_reusing(Some(&first), &|| false, default_cname_chain_length())
                .expect("never superseded");
            assert!(
                reused
                    .own_table()
                    .unwrap()
                    .same_answers(fresh.own_table().unwrap()),
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
        assert!(!fresh.has_cuts() || patched.has_cuts());
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
            .own_table()
            .unwrap()
            .same_answers(fresh.with_answers().own_table().unwrap()));
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
                    1 => ZoneSnapshot {
                        zone: patched.with_nodes(patched.nodes.merged()),
                        answers: patched.with_answers().answers,
                    },
                    _ => {
                        let rebased = patched.nodes.rebased();
                        assert_eq!(rebased.overlay_len(), 0);
                        ZoneSnapshot {
                            zone: patched.with_nodes(rebased),
                            answers: patched.with_answers().answers,
                        }
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
