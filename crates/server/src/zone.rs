//! One version of one zone, ready for lookup: every name by its key (lower-cased, fully
//! qualified), cuts, empty non-terminals, wildcards and the negative SOA, computed once when
//! the version is loaded (or patched from the version before) and never modified
//! afterwards. What the library path needs; the hot path's pre-encoded answers are added on
//! top by [`crate::ZoneSnapshot`].

use std::sync::Arc;

use model::{Generation, Name, RData, Record, RecordSet, RecordType, ZoneContent};

pub(crate) use crate::nodes::Node;
use crate::nodes::{NameMap, Nodes};
use crate::wire_format::push_wire_lowercase;

/// See [`ZoneData::apex_dependencies`].
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

/// The lookup data of one version of one zone: see the module documentation.
#[derive(Debug, Clone)]
pub struct ZoneData {
    origin: Name,
    generation: Generation,
    serial: u32,
    /// Every name that exists in the zone, keyed lower-cased and fully qualified: names
    /// with data and the empty non-terminals between them and the apex.
    /// Shared between a version with and without pre-encoded answers, and in part with the
    /// versions before and after (see [`crate::nodes`]).
    pub(crate) nodes: Nodes,
    /// The apex SOA with its TTL lowered to the negative TTL, for NXDOMAIN and NODATA.
    negative_soa: Record,
    negative_ttl: u32,
    /// The origin in wire format, lower-cased: how the hot path routes a query.
    origin_wire: Box<[u8]>,
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

impl ZoneData {
    /// Precomputes nodes, cuts, empty non-terminals and the negative answer.
    ///
    /// Content without a single apex SOA is served with a synthetic SOA of serial 0 so that
    /// build never fails; the store only activates content that passed
    /// [`ZoneContent::validate`].
    pub fn build(content: &ZoneContent, generation: Generation) -> ZoneData {
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
        let mut zone = ZoneData::from_nodes(origin, generation, nodes, has_cuts);
        zone.has_dname = has_dname;
        zone
    }

    /// The next version of this zone from the sets that changed: `added` holds every set of
    /// each changed name in the new version (none for a deleted name), `removed` those it
    /// had here; every other name is as here. Costs the changed names, not the zone.
    pub fn patched(
        &self,
        removed: &[RecordSet],
        added: &[RecordSet],
        generation: Generation,
    ) -> ZoneData {
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
        let mut next = ZoneData::from_nodes(self.origin.clone(), generation, nodes, has_cuts);
        next.patch = Some((self.generation, names));
        next.has_dname = has_dname;
        next
    }

    /// For a patched version: the version it was patched from and the names it changed.
    pub(crate) fn patch(&self) -> Option<&(Generation, Arc<[Name]>)> {
        self.patch.as_ref()
    }

    /// Whether some name below the apex is (or, for a patched version, was) a zone cut.
    #[cfg(test)]
    pub(crate) fn has_cuts(&self) -> bool {
        self.has_cuts
    }

    /// Whether the zone has (or had) a DNAME: nothing of it is pre-encoded.
    pub(crate) fn has_dname(&self) -> bool {
        self.has_dname
    }

    /// The same version with its names in `nodes` (merged or rebased layers).
    pub(crate) fn with_nodes(&self, nodes: Nodes) -> ZoneData {
        ZoneData {
            nodes,
            ..self.clone()
        }
    }

    /// Whether [`ZoneData::patched`] with this many changed sets (both sides) is less
    /// work than building the new version whole: up to half as many sets as names here.
    pub fn cheaper_to_patch(&self, changed_sets: usize) -> bool {
        changed_sets <= self.nodes.base_len().max(self.nodes.overlay_len()) / 2
    }

    fn from_nodes(origin: Name, generation: Generation, nodes: Nodes, has_cuts: bool) -> ZoneData {
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
        push_wire_lowercase(&origin, &mut origin_wire);
        ZoneData {
            origin,
            generation,
            serial,
            nodes,
            negative_soa,
            negative_ttl,
            origin_wire: origin_wire.into_boxed_slice(),
            patch: None,
            has_cuts,
            has_dname: false,
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

    pub(crate) fn origin_wire(&self) -> &[u8] {
        &self.origin_wire
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

    /// The apex SOA as stored (its own TTL): the first and last record of a zone transfer.
    pub fn soa(&self) -> Option<&Record> {
        self.node(&self.origin)?
            .rrset(RecordType::SOA)
            .and_then(<[Record]>::first)
    }

    /// Every record of the zone, the apex SOA among them, in no particular order: what a
    /// zone transfer sends. Walks the whole zone.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.nodes
            .iter()
            .flat_map(|(_, node)| node.rrsets.iter().flat_map(|(_, records)| records.iter()))
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
    pub(crate) fn below_cut(&self, name: &Name) -> bool {
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
