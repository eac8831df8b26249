//! Zone content: the record sets of one zone, normalised so equal content has one encoding.

use std::sync::Arc;

use hickory_proto::rr::{rdata::SOA, DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use sha2::{Digest, Sha256};

use crate::version::ContentHash;

/// Key of a record set: owner name (compared case-insensitively, in canonical DNS order) and
/// type. Made with [`RrsetKey::new`].
///
/// Compared, ordered and hashed by the name's canonical bytes (below), worked out once when
/// the key is made: the same order and equality as comparing the names, at the cost of a
/// byte comparison instead of a walk over labels (what every lookup and every change of a
/// zone's content does a few dozen times).
#[derive(Debug, Clone)]
pub struct RrsetKey {
    pub name: Name,
    pub rtype: RecordType,
    canonical: Box<[u8]>,
}

impl RrsetKey {
    pub fn new(name: Name, rtype: RecordType) -> RrsetKey {
        let canonical = canonical_bytes(&name);
        RrsetKey {
            name,
            rtype,
            canonical,
        }
    }
}

/// A name's bytes in the order and equality of [`Name`]'s own `Ord` (RFC 4034 §6.1,
/// canonical DNS order, case-insensitive): a byte for fully-qualified or not (relative names
/// first), then the labels from the root down, each lower-cased and closed by a 0 byte. Bytes
/// 0 and 1 inside a label are written as 1 1 and 1 2, so a label's end sorts before any of
/// its bytes and a shorter label before a longer one it begins.
pub fn canonical_bytes(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 2);
    out.push(u8::from(name.is_fqdn()));
    for label in name.iter().rev() {
        for byte in label {
            match byte.to_ascii_lowercase() {
                0 => out.extend_from_slice(&[1, 1]),
                1 => out.extend_from_slice(&[1, 2]),
                other => out.push(other),
            }
        }
        out.push(0);
    }
    out.into_boxed_slice()
}

impl PartialEq for RrsetKey {
    fn eq(&self, other: &RrsetKey) -> bool {
        self.rtype == other.rtype && self.canonical == other.canonical
    }
}

impl Eq for RrsetKey {}

impl PartialOrd for RrsetKey {
    fn partial_cmp(&self, other: &RrsetKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RrsetKey {
    fn cmp(&self, other: &RrsetKey) -> std::cmp::Ordering {
        self.canonical
            .cmp(&other.canonical)
            .then_with(|| self.rtype.cmp(&other.rtype))
    }
}

impl std::hash::Hash for RrsetKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
        self.rtype.hash(state);
    }
}

/// All records of one owner name and type. The data is sorted by its wire encoding and holds
/// no duplicates; all records share one TTL (RFC 2181 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

impl RecordSet {
    pub fn new(name: Name, rtype: RecordType, ttl: u32) -> RecordSet {
        RecordSet {
            name,
            rtype,
            ttl,
            rdatas: Vec::new(),
        }
    }

    pub fn key(&self) -> RrsetKey {
        RrsetKey::new(self.name.clone(), self.rtype)
    }

    /// The set as resource records, in its normalised order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.rdatas.iter().map(move |rdata| {
            let mut record = Record::from_rdata(self.name.clone(), self.ttl, rdata.clone());
            record.dns_class = DNSClass::IN;
            record
        })
    }

    /// Adds data, keeping the set sorted and free of duplicates. Returns false for a duplicate.
    pub fn insert(&mut self, rdata: RData) -> bool {
        let encoded = encode_rdata(&rdata);
        match self
            .rdatas
            .binary_search_by(|existing| encode_rdata(existing).cmp(&encoded))
        {
            Ok(_) => false,
            Err(position) => {
                self.rdatas.insert(position, rdata);
                true
            }
        }
    }

    /// Uncompressed, case-preserving wire encoding of every record of the set, appended to
    /// `out`. Each record gets its own encoder: hickory's encoder addresses at most 64 KiB,
    /// one record always fits, a whole bucket of sets may not.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut buffer = Vec::with_capacity(64);
        for record in self.records() {
            buffer.clear();
            let mut encoder = BinEncoder::new(&mut buffer);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            // Every RData we hold was parsed or built by hickory and is below 64 KiB, and
            // an uncompressed name is at most 255 bytes, so one record always encodes.
            record
                .emit(&mut encoder)
                .expect("a record held in zone content always encodes");
            out.extend_from_slice(&buffer);
        }
    }
}

/// Why content is not a valid zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error(
        "{name} is outside the zone {origin}; every owner name must be at or below the origin"
    )]
    OutOfZone { name: Name, origin: Box<Name> },
    #[error("the zone {origin} has no SOA record at its apex; add one")]
    MissingSoa { origin: Name },
    #[error("the zone {origin} has {count} SOA records at its apex; keep exactly one")]
    MultipleSoa { origin: Name, count: usize },
    #[error("{name} has an SOA record but is not the apex {origin}")]
    SoaNotAtApex { name: Name, origin: Box<Name> },
    #[error("the zone {origin} has no NS records at its apex; add at least one")]
    MissingApexNs { origin: Name },
    #[error(
        "{name} has a CNAME and other data ({other}); a CNAME must stand alone (RFC 1034 §3.6.2)"
    )]
    CnameAndOtherData { name: Name, other: RecordType },
    #[error("{name} has {count} CNAME records; a name has at most one")]
    MultipleCname { name: Name, count: usize },
    #[error("the apex {origin} cannot be a CNAME")]
    CnameAtApex { origin: Name },
    #[error("{name} {rtype} is class {class}; dnsward serves class IN only")]
    NotClassIn {
        name: Name,
        rtype: RecordType,
        class: DNSClass,
    },
    #[error("{rtype} records cannot be stored in a zone ({name})")]
    MetaType { name: Name, rtype: RecordType },
    #[error("the zone has {records} records; the limit is {limit}")]
    TooManyRecords { records: u64, limit: u64 },
    #[error("stored content is corrupt: {reason}")]
    Corrupt { reason: String },
}

/// The records of one zone at one point in time.
///
/// Held as a persistent ordered map: a clone costs O(1), and a change copies only the path to
/// what changed, so content derived from the active version (a plan, the next version) shares
/// the structure of everything it did not touch. [`ZoneContent::changed_sets`] and equality
/// skip shared structure: comparing a plan with the content it was derived from costs the
/// change, not the zone. The record count and the content hash are kept up to date by every
/// change, so neither walks the zone.
#[derive(Clone)]
pub struct ZoneContent {
    origin: Name,
    rrsets: imbl::OrdMap<RrsetKey, Arc<RecordSet>>,
    records: u64,
    digest: SetDigest,
}

/// The checks every record passes on its way into a zone's content: class IN, a type that
/// can be stored, an owner at or below the origin.
fn check_record(origin: &Name, record: &Record) -> Result<(), ContentError> {
    let rtype = record.record_type();
    if record.dns_class != DNSClass::IN {
        return Err(ContentError::NotClassIn {
            name: record.name.clone(),
            rtype,
            class: record.dns_class,
        });
    }
    if matches!(
        rtype,
        RecordType::OPT
            | RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::TSIG
            | RecordType::ZERO
    ) {
        return Err(ContentError::MetaType {
            name: record.name.clone(),
            rtype,
        });
    }
    if !origin.zone_of(&record.name) {
        return Err(ContentError::OutOfZone {
            name: record.name.clone(),
            origin: Box::new(origin.clone()),
        });
    }
    Ok(())
}

/// Content built record by record, as [`ZoneContent::insert`] would build it, at the cost
/// of one hash-map entry per record: the sets are gathered first, and the persistent map,
/// the record count and the content hash are made once, at [`ContentBuilder::finish`]
/// (inserting into the persistent map record by record copies a path each time).
#[derive(Debug)]
pub struct ContentBuilder {
    origin: Name,
    sets: std::collections::HashMap<RrsetKey, RecordSet>,
}

impl ContentBuilder {
    pub fn new(origin: Name) -> ContentBuilder {
        let mut origin = origin;
        origin.set_fqdn(true);
        ContentBuilder {
            origin,
            sets: std::collections::HashMap::new(),
        }
    }

    /// Adds one record, with the checks and merging of [`ZoneContent::insert`].
    pub fn insert(&mut self, record: Record) -> Result<(), ContentError> {
        check_record(&self.origin, &record)?;
        let rtype = record.record_type();
        let set = self
            .sets
            .entry(RrsetKey::new(record.name.clone(), rtype))
            .or_insert_with(|| RecordSet::new(record.name.clone(), rtype, record.ttl));
        set.ttl = set.ttl.min(record.ttl);
        set.insert(record.data);
        Ok(())
    }

    pub fn finish(self) -> ZoneContent {
        ZoneContent::from_normalized_sets(self.origin, self.sets.into_values())
    }
}

impl PartialEq for ZoneContent {
    fn eq(&self, other: &ZoneContent) -> bool {
        self.origin == other.origin
            && self.records == other.records
            && self.digest == other.digest
            && self.rrsets == other.rrsets
    }
}

impl Eq for ZoneContent {}

impl std::fmt::Debug for ZoneContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneContent")
            .field("origin", &self.origin)
            .field("rrsets", &self.rrsets.len())
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// One record set of two contents that differ there: `old` and `new` (`None` = absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangedSet<'a> {
    pub key: &'a RrsetKey,
    pub old: Option<&'a RecordSet>,
    pub new: Option<&'a RecordSet>,
}

impl ZoneContent {
    pub fn new(origin: Name) -> ZoneContent {
        let mut origin = origin;
        origin.set_fqdn(true);
        ZoneContent {
            origin,
            rrsets: imbl::OrdMap::new(),
            records: 0,
            digest: SetDigest::default(),
        }
    }

    /// Builds content from records, checking each as it is added. Validity of the whole
    /// (SOA, NS, CNAME rules) is checked by [`ZoneContent::validate`].
    pub fn from_records(
        origin: Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<ZoneContent, ContentError> {
        let mut builder = ContentBuilder::new(origin);
        for record in records {
            builder.insert(record)?;
        }
        Ok(builder.finish())
    }

    /// Builds content from record sets that are already normalised, as read back from
    /// storage: no per-record checks and no re-sorting of data inside a set. The caller must
    /// verify the result (the store compares [`ZoneContent::hash`] with the stored hash).
    pub fn from_normalized_sets(
        origin: Name,
        sets: impl IntoIterator<Item = RecordSet>,
    ) -> ZoneContent {
        let mut content = ZoneContent::new(origin);
        let mut sets: Vec<(RrsetKey, Arc<RecordSet>)> = sets
            .into_iter()
            .map(|set| (set.key(), Arc::new(set)))
            .collect();
        sets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, set) in &sets {
            content.records += set.rdatas.len() as u64;
            content.digest.add(&SetDigest::of(set));
        }
        content.rrsets = sets.into_iter().collect();
        content
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Adds one record. A set's TTL is the lowest TTL seen among its records.
    pub fn insert(&mut self, record: Record) -> Result<(), ContentError> {
        check_record(&self.origin, &record)?;
        let rtype = record.record_type();
        let mut set = self
            .get(&record.name, rtype)
            .cloned()
            .unwrap_or_else(|| RecordSet::new(record.name.clone(), rtype, record.ttl));
        set.ttl = set.ttl.min(record.ttl);
        set.insert(record.data);
        self.put_rrset(set);
        Ok(())
    }

    /// Replaces (or with an empty set, removes) the record set of `set.name`/`set.rtype`.
    /// Putting a set equal to the one held changes nothing, not even shared structure.
    pub fn put_rrset(&mut self, set: RecordSet) {
        if set.rdatas.is_empty() {
            self.remove_rrset(&set.name, set.rtype);
            return;
        }
        if self.get(&set.name, set.rtype).is_some_and(|held| {
            held.ttl == set.ttl && held.name.eq_case(&set.name) && held.rdatas == set.rdatas
        }) {
            return;
        }
        self.records += set.rdatas.len() as u64;
        self.digest.add(&SetDigest::of(&set));
        if let Some(old) = self.rrsets.insert(set.key(), Arc::new(set)) {
            self.forget(&old);
        }
    }

    pub fn remove_rrset(&mut self, name: &Name, rtype: RecordType) -> Option<RecordSet> {
        let old = self.rrsets.remove(&RrsetKey::new(name.clone(), rtype))?;
        self.forget(&old);
        Some(Arc::unwrap_or_clone(old))
    }

    fn forget(&mut self, old: &RecordSet) {
        self.records -= old.rdatas.len() as u64;
        self.digest.subtract(&SetDigest::of(old));
    }

    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<&RecordSet> {
        self.rrsets
            .get(&RrsetKey::new(name.clone(), rtype))
            .map(|set| &**set)
    }

    /// Every record set of one owner name, by type.
    pub fn sets_at<'a>(&'a self, name: &Name) -> impl Iterator<Item = &'a RecordSet> + 'a {
        let low = RrsetKey::new(name.clone(), RecordType::from(0));
        let high = RrsetKey::new(name.clone(), RecordType::from(u16::MAX));
        self.rrsets.range(low..=high).map(|(_, set)| &**set)
    }

    /// Every record set, in canonical DNS order of owner names, then by type.
    pub fn rrsets(&self) -> impl Iterator<Item = &RecordSet> {
        self.rrsets.values().map(|set| &**set)
    }

    /// The record sets that differ between `self` (old) and `new`, in key order. Structure
    /// the two share (one was derived from the other) is skipped, so this costs the change.
    pub fn changed_sets<'a>(&'a self, new: &'a ZoneContent) -> Vec<ChangedSet<'a>> {
        use imbl::ordmap::DiffItem;
        self.rrsets
            .diff(&new.rrsets)
            .filter_map(|item| match item {
                DiffItem::Add(key, set) => Some(ChangedSet {
                    key,
                    old: None,
                    new: Some(&**set),
                }),
                DiffItem::Remove(key, set) => Some(ChangedSet {
                    key,
                    old: Some(&**set),
                    new: None,
                }),
                DiffItem::Update {
                    old: (key, old),
                    new: (_, new),
                } => (!Arc::ptr_eq(old, new) && old != new).then_some(ChangedSet {
                    key,
                    old: Some(&**old),
                    new: Some(&**new),
                }),
            })
            .collect()
    }

    /// Replaces the sets of some names: every set in `removed` goes, then every set in
    /// `added` is put. With `removed` holding all sets the names had and `added` all they
    /// have after (recorded changes), the result is the content after the change.
    pub fn replace_sets<'a>(
        &mut self,
        removed: impl IntoIterator<Item = &'a RecordSet>,
        added: impl IntoIterator<Item = RecordSet>,
    ) {
        for set in removed {
            self.remove_rrset(&set.name, set.rtype);
        }
        for set in added {
            self.put_rrset(set);
        }
    }

    /// Whether `other` is this very content: the same zone and the same map root (a clone
    /// of it with nothing changed since). O(1); `false` says nothing about equality.
    pub fn is_same_as(&self, other: &ZoneContent) -> bool {
        self.origin == other.origin && self.rrsets.ptr_eq(&other.rrsets)
    }

    pub fn rrset_count(&self) -> usize {
        self.rrsets.len()
    }

    /// Whether every owner name is at or below the origin. Names of one zone are contiguous
    /// in canonical order, so the first and the last name tell.
    pub fn within_origin(&self) -> bool {
        let inside = |entry: Option<&(RrsetKey, Arc<RecordSet>)>| {
            entry.is_none_or(|(key, _)| self.origin.zone_of(&key.name))
        };
        inside(self.rrsets.get_min()) && inside(self.rrsets.get_max())
    }

    pub fn record_count(&self) -> u64 {
        self.records
    }

    /// The SOA of the apex, if there is exactly one.
    pub fn soa(&self) -> Option<&SOA> {
        let set = self.get(&self.origin, RecordType::SOA)?;
        match set.rdatas.as_slice() {
            [RData::SOA(soa)] => Some(soa),
            _ => None,
        }
    }

    pub fn serial(&self) -> Option<u32> {
        self.soa().map(|soa| soa.serial)
    }

    /// The same content with the SOA serial replaced.
    pub fn with_serial(&self, serial: u32) -> ZoneContent {
        let mut content = self.clone();
        if let Some(set) = self.get(&self.origin, RecordType::SOA) {
            let mut set = set.clone();
            for rdata in &mut set.rdatas {
                if let RData::SOA(soa) = rdata {
                    soa.serial = serial;
                }
            }
            content.put_rrset(set);
        }
        content
    }

    /// Checks the rules a zone must meet to be served. Returns every problem found.
    pub fn validate(&self, record_limit: u64) -> Vec<ContentError> {
        let mut problems = self.validate_apex(record_limit);
        let mut previous_name: Option<&Name> = None;
        let mut types_at_name: Vec<RecordType> = Vec::new();
        for set in self.rrsets() {
            if previous_name != Some(&set.name) {
                check_cname_rules(previous_name, &types_at_name, self, &mut problems);
                previous_name = Some(&set.name);
                types_at_name.clear();
            }
            types_at_name.push(set.rtype);
            self.check_set_placement(set, &mut problems);
        }
        check_cname_rules(previous_name, &types_at_name, self, &mut problems);
        problems
    }

    /// [`ZoneContent::validate`] for content derived from valid content by changing the
    /// sets of `changed` names only: the apex and the record count, then every rule at the
    /// changed names. Same problems as the whole check, at the cost of the change.
    pub fn validate_names<'a>(
        &self,
        changed: impl IntoIterator<Item = &'a Name>,
        record_limit: u64,
    ) -> Vec<ContentError> {
        let mut problems = self.validate_apex(record_limit);
        let mut types: Vec<RecordType> = Vec::new();
        let mut names: Vec<&Name> = changed.into_iter().collect();
        names.sort();
        names.dedup();
        for name in names {
            types.clear();
            for set in self.sets_at(name) {
                types.push(set.rtype);
                self.check_set_placement(set, &mut problems);
            }
            check_cname_rules(Some(name), &types, self, &mut problems);
        }
        problems
    }

    fn validate_apex(&self, record_limit: u64) -> Vec<ContentError> {
        let mut problems = Vec::new();
        let origin = &self.origin;
        match self.get(origin, RecordType::SOA).map(|s| s.rdatas.len()) {
            None => problems.push(ContentError::MissingSoa {
                origin: origin.clone(),
            }),
            Some(1) => {}
            Some(count) => problems.push(ContentError::MultipleSoa {
                origin: origin.clone(),
                count,
            }),
        }
        if self.get(origin, RecordType::NS).is_none() {
            problems.push(ContentError::MissingApexNs {
                origin: origin.clone(),
            });
        }
        if self.records > record_limit {
            problems.push(ContentError::TooManyRecords {
                records: self.records,
                limit: record_limit,
            });
        }
        problems
    }

    fn check_set_placement(&self, set: &RecordSet, problems: &mut Vec<ContentError>) {
        let origin = &self.origin;
        // `insert` refuses out-of-zone records but `put_rrset` takes whole sets as given.
        if !origin.zone_of(&set.name) {
            problems.push(ContentError::OutOfZone {
                name: set.name.clone(),
                origin: Box::new(origin.clone()),
            });
        }
        if set.rtype == RecordType::SOA && set.name != *origin {
            problems.push(ContentError::SoaNotAtApex {
                name: set.name.clone(),
                origin: Box::new(origin.clone()),
            });
        }
    }

    /// The content hash (scheme 2): equal content, equal hash. Kept up to date by every
    /// change, so reading it costs nothing: SHA-256 over the scheme's tag, the lower-cased
    /// origin, the number of sets and records, and the sum modulo 2^256 of the SHA-256 of
    /// each set's uncompressed, case-preserving encoding. A sum of per-set hashes is what
    /// lets a version's hash follow from its base's and its change. It detects damage and
    /// tells contents apart; it is not a commitment against someone who can write to the
    /// store (who could write any content anyway).
    pub fn hash(&self) -> ContentHash {
        let mut hasher = Sha256::new();
        hasher.update(b"dnsward content hash 2\0");
        hasher.update(self.origin.to_ascii().to_ascii_lowercase().as_bytes());
        hasher.update((self.rrsets.len() as u64).to_be_bytes());
        hasher.update(self.records.to_be_bytes());
        hasher.update(self.digest.to_bytes());
        ContentHash(hasher.finalize().into())
    }

    /// The content hash of scheme 1 (versions stored before scheme 2): SHA-256 of the whole
    /// normalised encoding. Walks the zone; only for verifying such versions.
    pub fn legacy_hash(&self) -> ContentHash {
        let mut hasher = Sha256::new();
        hasher.update(self.origin.to_ascii().to_ascii_lowercase().as_bytes());
        let mut buffer = Vec::new();
        for set in self.rrsets() {
            buffer.clear();
            set.encode(&mut buffer);
            hasher.update((buffer.len() as u64).to_be_bytes());
            hasher.update(&buffer);
        }
        ContentHash(hasher.finalize().into())
    }

    /// Whether `stored` is this content's hash, in either scheme.
    pub fn has_hash(&self, stored: &ContentHash) -> bool {
        self.hash() == *stored || self.legacy_hash() == *stored
    }

    /// Every owner name that has data, in canonical order, each once.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        let mut last: Option<&Name> = None;
        self.rrsets().filter_map(move |set| {
            if last == Some(&set.name) {
                None
            } else {
                last = Some(&set.name);
                Some(&set.name)
            }
        })
    }
}

/// The sum modulo 2^256 of per-set SHA-256 digests, as four little-endian 64-bit limbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SetDigest([u64; 4]);

impl SetDigest {
    fn of(set: &RecordSet) -> SetDigest {
        let mut bytes = Vec::with_capacity(64);
        set.encode(&mut bytes);
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(digest.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        SetDigest(limbs)
    }

    fn add(&mut self, other: &SetDigest) {
        let mut carry = false;
        for (limb, other) in self.0.iter_mut().zip(other.0) {
            let (sum, first) = limb.overflowing_add(other);
            let (sum, second) = sum.overflowing_add(u64::from(carry));
            *limb = sum;
            carry = first || second;
        }
    }

    fn subtract(&mut self, other: &SetDigest) {
        let mut borrow = false;
        for (limb, other) in self.0.iter_mut().zip(other.0) {
            let (difference, first) = limb.overflowing_sub(other);
            let (difference, second) = difference.overflowing_sub(u64::from(borrow));
            *limb = difference;
            borrow = first || second;
        }
    }

    fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }
}

fn check_cname_rules(
    name: Option<&Name>,
    types: &[RecordType],
    content: &ZoneContent,
    problems: &mut Vec<ContentError>,
) {
    let Some(name) = name else { return };
    if !types.contains(&RecordType::CNAME) {
        return;
    }
    if name == content.origin() {
        problems.push(ContentError::CnameAtApex {
            origin: name.clone(),
        });
    }
    if let Some(set) = content.get(name, RecordType::CNAME) {
        if set.rdatas.len() > 1 {
            problems.push(ContentError::MultipleCname {
                name: name.clone(),
                count: set.rdatas.len(),
            });
        }
    }
    // DNSSEC types may sit beside a CNAME (RFC 4035 §2.5).
    if let Some(other) = types.iter().find(|t| {
        !matches!(
            t,
            RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
        )
    }) {
        problems.push(ContentError::CnameAndOtherData {
            name: name.clone(),
            other: *other,
        });
    }
}

/// Uncompressed wire encoding of one RDATA, the order key inside a set.
pub fn encode_rdata(rdata: &RData) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    rdata
        .emit(&mut encoder)
        .expect("an RData held in zone content always encodes");
    out
}

/// Decodes record sets written by [`RecordSet::encode`], back to back: consecutive records
/// of the same owner and type form one set, in the order they were written.
pub fn decode_record_sets(bytes: &[u8]) -> Result<Vec<RecordSet>, ContentError> {
    let mut sets: Vec<RecordSet> = Vec::new();
    for record in decode_records(bytes)? {
        let rtype = record.record_type();
        match sets.last_mut() {
            Some(set) if set.rtype == rtype && set.name.eq_case(&record.name) => {
                set.rdatas.push(record.data)
            }
            _ => sets.push(RecordSet {
                name: record.name,
                rtype,
                ttl: record.ttl,
                rdatas: vec![record.data],
            }),
        }
    }
    Ok(sets)
}

/// Decodes records written by [`RecordSet::encode`] (any number of sets, back to back).
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Record>, ContentError> {
    let mut decoder = BinDecoder::new(bytes);
    let mut records = Vec::new();
    while !decoder.is_empty() {
        let record = Record::read(&mut decoder).map_err(|error| ContentError::Corrupt {
            reason: format!("record {} does not decode: {error}", records.len()),
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, NS, TXT};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn soa_record() -> Record {
        Record::from_rdata(
            name("example.test."),
            3600,
            RData::SOA(SOA::new(
                name("ns1.example.test."),
                name("hostmaster.example.test."),
                1,
                3600,
                600,
                86400,
                300,
            )),
        )
    }

    fn valid_zone() -> ZoneContent {
        ZoneContent::from_records(
            name("example.test."),
            [
                soa_record(),
                Record::from_rdata(
                    name("example.test."),
                    3600,
                    RData::NS(NS(name("ns1.example.test."))),
                ),
                Record::from_rdata(
                    name("www.example.test."),
                    60,
                    RData::A(A::new(192, 0, 2, 1)),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_valid_zone_has_no_problems() {
        assert_eq!(valid_zone().validate(100), vec![]);
    }

    #[test]
    fn names_differing_only_in_case_share_one_record_set() {
        let mut zone = valid_zone();
        zone.insert(Record::from_rdata(
            name("WWW.Example.Test."),
            60,
            RData::A(A::new(192, 0, 2, 2)),
        ))
        .unwrap();
        let set = zone.get(&name("www.example.test."), RecordType::A).unwrap();
        assert_eq!(set.rdatas.len(), 2);
        assert_eq!(set.name.to_ascii(), "www.example.test.");
    }

    #[test]
    fn insertion_order_does_not_change_the_hash() {
        let mut one = valid_zone();
        let mut two = valid_zone();
        one.insert(Record::from_rdata(
            name("a.example.test."),
            60,
            RData::A(A::new(10, 0, 0, 2)),
        ))
        .unwrap();
        one.insert(Record::from_rdata(
            name("a.example.test."),
            60,
            RData::A(A::new(10, 0, 0, 1)),
        ))
        .unwrap();
        two.insert(Record::from_rdata(
            name("a.example.test."),
            60,
            RData::A(A::new(10, 0, 0, 1)),
        ))
        .unwrap();
        two.insert(Record::from_rdata(
            name("a.example.test."),
            60,
            RData::A(A::new(10, 0, 0, 2)),
        ))
        .unwrap();
        assert_eq!(one, two);
        assert_eq!(one.hash(), two.hash());
        assert_ne!(one.hash(), valid_zone().hash());
    }

    #[test]
    fn out_of_zone_records_are_refused() {
        let mut zone = valid_zone();
        let error = zone
            .insert(Record::from_rdata(
                name("www.other.test."),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ))
            .unwrap_err();
        assert!(matches!(error, ContentError::OutOfZone { .. }));
    }

    #[test]
    fn an_out_of_zone_set_put_as_a_whole_is_a_problem() {
        let mut zone = valid_zone();
        let mut set = RecordSet::new(name("www.other.test."), RecordType::A, 60);
        set.insert(RData::A(A::new(192, 0, 2, 1)));
        zone.put_rrset(set);
        assert!(zone
            .validate(100)
            .iter()
            .any(|p| matches!(p, ContentError::OutOfZone { .. })));
    }

    #[test]
    fn cname_beside_other_data_is_a_problem() {
        let mut zone = valid_zone();
        zone.insert(Record::from_rdata(
            name("www.example.test."),
            60,
            RData::CNAME(CNAME(name("other.example.test."))),
        ))
        .unwrap();
        let problems = zone.validate(100);
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, ContentError::CnameAndOtherData { .. })),
            "{problems:?}"
        );
    }

    #[test]
    fn record_sets_encode_and_decode_to_the_same_records() {
        let mut zone = valid_zone();
        zone.insert(Record::from_rdata(
            name("t.example.test."),
            60,
            RData::TXT(TXT::new(vec!["hello world".into(), "two".into()])),
        ))
        .unwrap();
        let mut bytes = Vec::new();
        for set in zone.rrsets() {
            set.encode(&mut bytes);
        }
        let decoded =
            ZoneContent::from_records(name("example.test."), decode_records(&bytes).unwrap())
                .unwrap();
        assert_eq!(decoded, zone);
    }

    #[test]
    fn with_serial_changes_only_the_serial() {
        let zone = valid_zone();
        let bumped = zone.with_serial(42);
        assert_eq!(bumped.serial(), Some(42));
        assert_eq!(bumped.record_count(), zone.record_count());
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, TXT};
    use proptest::prelude::*;

    fn label() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(prop::sample::select(b"aAbB-0".to_vec()), 1..4),
            prop::collection::vec(any::<u8>(), 1..4),
        ]
    }

    proptest! {
        /// Keys order, compare and hash as their names and types do (the order hickory's
        /// `Name` defines: canonical DNS order, case-insensitive, relative names first).
        #[test]
        fn keys_order_as_their_names_and_types(
            a in (prop::collection::vec(label(), 0..4), any::<bool>(), 0u16..3),
            b in (prop::collection::vec(label(), 0..4), any::<bool>(), 0u16..3),
        ) {
            let make = |(labels, fqdn, rtype): (Vec<Vec<u8>>, bool, u16)| {
                let mut name = Name::from_labels(labels).unwrap();
                name.set_fqdn(fqdn);
                (name, RecordType::from(rtype))
            };
            let (a, b) = (make(a), make(b));
            let (ka, kb) = (RrsetKey::new(a.0.clone(), a.1), RrsetKey::new(b.0.clone(), b.1));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b), "{:?} {:?}", a, b);
            prop_assert_eq!(ka == kb, a == b);
            let recased = RrsetKey::new(a.0.to_lowercase(), a.1);
            prop_assert_eq!(&recased, &ka);
            let hash = |key: &RrsetKey| {
                use std::hash::{BuildHasher, BuildHasherDefault};
                BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(key)
            };
            prop_assert_eq!(hash(&recased), hash(&ka));
        }
    }

    proptest! {
        /// Building at the end gives exactly the content inserting one record at a time
        /// gives: the same sets, TTLs (lowest wins), owner case (first wins) and hash.
        #[test]
        fn a_builder_gives_the_content_of_inserting_record_by_record(
            records in prop::collection::vec(
                (0usize..6, any::<bool>(), 0u8..4, 60u32..65),
                0..60,
            ),
        ) {
            const OWNERS: [&str; 6] = ["z.", "a.z.", "b.a.z.", "B.a.z.", "c.z.", "A.z."];
            let records: Vec<Record> = records
                .into_iter()
                .map(|(owner, txt, value, ttl)| {
                    let name = Name::from_ascii(OWNERS[owner]).unwrap();
                    let data = if txt {
                        RData::TXT(TXT::new(vec![format!("v{value}")]))
                    } else {
                        RData::A(A::new(192, 0, 2, value))
                    };
                    Record::from_rdata(name, ttl, data)
                })
                .collect();
            let origin = Name::from_ascii("z.").unwrap();
            let mut one_by_one = ZoneContent::new(origin.clone());
            let mut builder = ContentBuilder::new(origin);
            for record in records {
                one_by_one.insert(record.clone()).unwrap();
                builder.insert(record).unwrap();
            }
            let built = builder.finish();
            prop_assert_eq!(built.hash(), one_by_one.hash());
            prop_assert_eq!(&built, &one_by_one);
            let cases = |content: &ZoneContent| -> Vec<String> {
                content.rrsets().map(|set| format!("{} {} {}", set.name, set.rtype, set.ttl)).collect()
            };
            prop_assert_eq!(cases(&built), cases(&one_by_one));
        }
    }
}
