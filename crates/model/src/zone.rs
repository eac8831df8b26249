//! Zone content: the record sets of one zone, normalised so equal content has one encoding.

use std::collections::BTreeMap;

use hickory_proto::rr::{rdata::SOA, DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use sha2::{Digest, Sha256};

use crate::version::ContentHash;

/// Key of a record set: owner name (compared case-insensitively, in canonical DNS order) and
/// type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RrsetKey {
    pub name: Name,
    pub rtype: RecordType,
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
        RrsetKey {
            name: self.name.clone(),
            rtype: self.rtype,
        }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneContent {
    origin: Name,
    rrsets: BTreeMap<RrsetKey, RecordSet>,
}

impl ZoneContent {
    pub fn new(origin: Name) -> ZoneContent {
        let mut origin = origin;
        origin.set_fqdn(true);
        ZoneContent {
            origin,
            rrsets: BTreeMap::new(),
        }
    }

    /// Builds content from records, checking each as it is added. Validity of the whole
    /// (SOA, NS, CNAME rules) is checked by [`ZoneContent::validate`].
    pub fn from_records(
        origin: Name,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<ZoneContent, ContentError> {
        let mut content = ZoneContent::new(origin);
        for record in records {
            content.insert(record)?;
        }
        Ok(content)
    }

    /// Builds content from record sets that are already normalised, as read back from
    /// storage: no per-record checks and no re-sorting of data inside a set. The caller must
    /// verify the result (the store compares [`ZoneContent::hash`] with the stored hash).
    pub fn from_normalized_sets(
        origin: Name,
        sets: impl IntoIterator<Item = RecordSet>,
    ) -> ZoneContent {
        let mut content = ZoneContent::new(origin);
        let mut sets: Vec<(RrsetKey, RecordSet)> =
            sets.into_iter().map(|set| (set.key(), set)).collect();
        sets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Sorted input lets the map build itself in one pass.
        content.rrsets = sets.into_iter().collect();
        content
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Adds one record. A set's TTL is the lowest TTL seen among its records.
    pub fn insert(&mut self, record: Record) -> Result<(), ContentError> {
        let rtype = record.record_type();
        if record.dns_class != DNSClass::IN {
            return Err(ContentError::NotClassIn {
                name: record.name,
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
                name: record.name,
                rtype,
            });
        }
        if !self.origin.zone_of(&record.name) {
            return Err(ContentError::OutOfZone {
                name: record.name,
                origin: Box::new(self.origin.clone()),
            });
        }
        let key = RrsetKey {
            name: record.name.clone(),
            rtype,
        };
        let set = self
            .rrsets
            .entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), rtype, record.ttl));
        set.ttl = set.ttl.min(record.ttl);
        set.insert(record.data);
        Ok(())
    }

    /// Replaces (or with an empty set, removes) the record set of `set.name`/`set.rtype`.
    pub fn put_rrset(&mut self, set: RecordSet) {
        let key = set.key();
        if set.rdatas.is_empty() {
            self.rrsets.remove(&key);
        } else {
            self.rrsets.insert(key, set);
        }
    }

    pub fn remove_rrset(&mut self, name: &Name, rtype: RecordType) -> Option<RecordSet> {
        self.rrsets.remove(&RrsetKey {
            name: name.clone(),
            rtype,
        })
    }

    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<&RecordSet> {
        self.rrsets.get(&RrsetKey {
            name: name.clone(),
            rtype,
        })
    }

    /// Every record set, in canonical DNS order of owner names, then by type.
    pub fn rrsets(&self) -> impl Iterator<Item = &RecordSet> {
        self.rrsets.values()
    }

    pub fn rrset_count(&self) -> usize {
        self.rrsets.len()
    }

    pub fn record_count(&self) -> u64 {
        self.rrsets
            .values()
            .map(|set| set.rdatas.len() as u64)
            .sum()
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
        if let Some(set) = content.rrsets.get_mut(&RrsetKey {
            name: self.origin.clone(),
            rtype: RecordType::SOA,
        }) {
            for rdata in &mut set.rdatas {
                if let RData::SOA(soa) = rdata {
                    soa.serial = serial;
                }
            }
        }
        content
    }

    /// Checks the rules a zone must meet to be served. Returns every problem found.
    pub fn validate(&self, record_limit: u64) -> Vec<ContentError> {
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
        let records = self.record_count();
        if records > record_limit {
            problems.push(ContentError::TooManyRecords {
                records,
                limit: record_limit,
            });
        }
        let mut previous_name: Option<&Name> = None;
        let mut types_at_name: Vec<RecordType> = Vec::new();
        for set in self.rrsets.values() {
            if previous_name != Some(&set.name) {
                check_cname_rules(previous_name, &types_at_name, self, &mut problems);
                previous_name = Some(&set.name);
                types_at_name.clear();
            }
            types_at_name.push(set.rtype);
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
        check_cname_rules(previous_name, &types_at_name, self, &mut problems);
        problems
    }

    /// Hash of the normalised encoding: equal content, equal hash.
    pub fn hash(&self) -> ContentHash {
        let mut hasher = Sha256::new();
        hasher.update(self.origin.to_ascii().to_ascii_lowercase().as_bytes());
        let mut buffer = Vec::new();
        for set in self.rrsets.values() {
            buffer.clear();
            set.encode(&mut buffer);
            hasher.update((buffer.len() as u64).to_be_bytes());
            hasher.update(&buffer);
        }
        ContentHash(hasher.finalize().into())
    }

    /// Every owner name that has data, in canonical order, each once.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        let mut last: Option<&Name> = None;
        self.rrsets.values().filter_map(move |set| {
            if last == Some(&set.name) {
                None
            } else {
                last = Some(&set.name);
                Some(&set.name)
            }
        })
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
