//! The hot path's answers of one version, pre-encoded per (name, type) when a snapshot is
//! made: keys are the lower-cased wire name followed by the type, values the header fields
//! and the body after the question, exactly as the library path encodes them.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use model::{Name, RecordType};

use crate::encode::Encoded;
use crate::hashing::{fingerprint, FoldHasher, FoldSet, NameSet};
use crate::template::Templates;
use crate::wire_format::{push_wire_lowercase, MAX_NAME_WIRE_BYTES};

/// The table key: lower-cased wire name, then the query type.
pub(crate) const KEY_BYTES: usize = MAX_NAME_WIRE_BYTES + 2;
/// Header fields stored in front of each answer: flags1, flags2, ANCOUNT, NSCOUNT, ARCOUNT.
pub(crate) const META_BYTES: usize = 8;
/// Query types never answered from the table: DS may be answered by a parent zone
/// (RFC 4035 §3.1.4.1), the rest are meta types the library path handles.
pub(crate) const SLOW_TYPES: [RecordType; 5] = [
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
    dependents: crate::hashing::NameMap<Vec<Name>>,
    /// The names whose answers mention the apex, directly or through other names of this
    /// table (its SOA serial changes with every version): worked out once per table, on
    /// the first carry (`crate::carried`).
    through_apex: std::sync::OnceLock<std::sync::Arc<ThroughApex>>,
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
    /// [`ThroughApex`]); worked out on the first call.
    pub(crate) fn through_apex(&self, apex: &Name) -> std::sync::Arc<ThroughApex> {
        std::sync::Arc::clone(
            self.through_apex
                .get_or_init(|| std::sync::Arc::new(ThroughApex::of(self, apex))),
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
    pub(crate) fn holds_name(&self, key: &[u8]) -> bool {
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

/// The names of a table whose answers mention the apex, directly or through other names
/// (a CNAME to a CNAME whose chain ends without data): the apex SOA in them changes with
/// every version, so every carried version leaves them to the library path. The same for
/// every version carried from one table, so worked out once per table
/// ([`AnswerTable::through_apex`]) instead of on every carry.
#[derive(Debug, Default)]
pub(crate) struct ThroughApex {
    pub(crate) names: NameSet,
    pub(crate) fingerprints: FoldSet<u64>,
}

impl ThroughApex {
    pub(crate) fn of(table: &AnswerTable, apex: &Name) -> ThroughApex {
        let mut names: NameSet = NameSet::default();
        let mut work: Vec<&Name> = table.dependents_of(apex).iter().collect();
        while let Some(name) = work.pop() {
            if name != apex && names.insert(name.clone()) {
                work.extend(table.dependents_of(name));
            }
        }
        let mut wire = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
        let fingerprints = names
            .iter()
            .map(|name| {
                wire.clear();
                push_wire_lowercase(name, &mut wire);
                fingerprint(&wire)
            })
            .collect();
        ThroughApex {
            names,
            fingerprints,
        }
    }
}
