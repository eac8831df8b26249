//! Answers carried over to a patched version: the hot path keeps serving a large zone
//! while its versions change, without encoding every answer again for each version.
//!
//! A patched version ([`crate::ZoneData::patched`]) starts without pre-encoded answers.
//! [`crate::ZoneData::carry_answers`] gives it the answer table of the version it was
//! patched from, plus a [`Carried`]: the names whose answers may differ from that table
//! (*stale*: the changed names and, transitively, every name whose answer mentions one: a
//! CNAME to it, an MX, NS or SRV naming it, a cut whose glue it is), those names' answers
//! encoded anew (*fresh*), and the new version's NXDOMAIN template (its SOA serial
//! differs). The hot path answers a fresh answer first; a query for a stale name, or for a
//! name below one, takes the library path; anything else is answered from the carried
//! table as before.
//!
//! Carrying is refused (and the follower encodes the whole version) when a change could
//! alter answers that this bookkeeping does not follow: a cut or a wildcard changed, the
//! apex NS set or its addresses changed, or the stale names outgrew [`CARRY_SHARE`] of the
//! table.

use model::{Name, RData};

use crate::encode;
use crate::hashing::{fingerprint, FoldSet, NameMap, NameSet};
use crate::table::{self, AnswerTable, ThroughApex};
use crate::template::{self, Template};
use crate::wire_format::{push_wire_lowercase, MAX_NAME_WIRE_BYTES};
use crate::zone::{key, Node, ZoneData};

/// Carrying stops when more than 1/`CARRY_SHARE` of the table's answers are stale (and more
/// than [`CARRY_FLOOR`] names): a whole encoding is then due.
pub const CARRY_SHARE: usize = 8;

/// Stale names up to this many are always carried.
pub const CARRY_FLOOR: usize = 65_536;

/// Whether `stale` names are more than the carry limit divided by `divisor` for a table of
/// `answers` answers.
pub(crate) fn over_limit(stale: usize, answers: usize, divisor: usize) -> bool {
    stale > CARRY_FLOOR / divisor && stale * CARRY_SHARE * divisor > answers
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Carried {
    /// Fingerprints of the stale names (lower-cased wire format), besides `through_apex`.
    stale: FoldSet<u64>,
    /// The carried table's names that mention the apex: stale in every carried version.
    through_apex: std::sync::Arc<ThroughApex>,
    /// Answers of stale names in this version.
    fresh: AnswerTable,
    /// Names whose answers mention each name (key form), for answers encoded since the
    /// carried table: its own map does not know them.
    dependents: NameMap<Vec<Name>>,
    /// This version's NXDOMAIN template.
    nxdomain: Option<Template>,
}

impl Carried {
    /// The fresh answer for a table key, if any.
    pub(crate) fn fresh(&self, key: &[u8]) -> Option<&[u8]> {
        self.fresh.get(key)
    }

    pub(crate) fn nxdomain(&self) -> Option<&Template> {
        self.nxdomain.as_ref()
    }

    /// Number of stale names.
    pub(crate) fn stale_names(&self) -> usize {
        self.stale.len() + self.through_apex.fingerprints.len()
    }

    fn is_stale(&self, fingerprint: u64) -> bool {
        self.stale.contains(&fingerprint) || self.through_apex.fingerprints.contains(&fingerprint)
    }

    /// Whether the answer to `name` (lower-cased wire format, labels starting at
    /// `label_starts`, the zone's origin at `apex_offset`) may differ from the carried
    /// table's: the name or a name between it and the apex is stale. The apex itself
    /// (whose SOA changes with every version) counts only for a question about the apex.
    pub(crate) fn touches(&self, name: &[u8], label_starts: &[u8], apex_offset: usize) -> bool {
        label_starts
            .iter()
            .map(|start| usize::from(*start))
            .filter(|start| *start < apex_offset || *start == 0)
            .any(|start| self.is_stale(fingerprint(&name[start..])))
    }
}

/// The names of the zone that the answers at `node` mention: the targets of its CNAME, MX,
/// NS and SRV records that lie in the zone (key form), and the apex for a CNAME whose chain
/// may end without data (such an answer carries the apex SOA, whose serial changes with
/// every version). A chain that ends in data or leaves the zone does not mention the apex:
/// were its end to change, the names on the chain are stale through their targets, and
/// their mentions are worked out again.
pub(crate) fn mentions<'a>(zone: &'a ZoneData, node: &'a Node) -> impl Iterator<Item = Name> + 'a {
    let targets = node
        .rrsets
        .iter()
        .flat_map(|(_, records)| records.iter())
        .filter_map(|record| match &record.data {
            RData::CNAME(target) => Some(&target.0),
            RData::NS(target) => Some(&target.0),
            RData::MX(mx) => Some(&mx.exchange),
            RData::SRV(srv) => Some(&srv.target),
            _ => None,
        })
        .filter(|target| zone.contains(target))
        .map(key);
    let apex = node
        .rrset(model::RecordType::CNAME)
        .filter(|records| may_end_without_data(zone, records))
        .map(|_| zone.origin().clone());
    targets.chain(apex)
}

/// Whether a CNAME chain starting with `records`, asked for `A` or `AAAA` (the types the
/// hot path stores for a CNAME), may end in the zone without data: a missing name, a name
/// without the type, a cut, or a chain longer than any answer follows. Conservative.
fn may_end_without_data(zone: &ZoneData, records: &[model::Record]) -> bool {
    let bound = usize::try_from(model::limits::CNAME_CHAIN_LENGTH.max).unwrap_or(16);
    [model::RecordType::A, model::RecordType::AAAA]
        .into_iter()
        .any(|qtype| {
            let mut target = match records.first().map(|record| &record.data) {
                Some(RData::CNAME(target)) => target.0.clone(),
                _ => return true,
            };
            for _ in 0..bound {
                if !zone.contains(&target) {
                    return false;
                }
                let Some(node) = zone.node(&key(&target)) else {
                    return true;
                };
                if node.is_cut || target.is_wildcard() {
                    return true;
                }
                if node.rrset(qtype).is_some() {
                    return false;
                }
                match node
                    .rrset(model::RecordType::CNAME)
                    .and_then(|set| set.first())
                {
                    Some(model::Record {
                        data: RData::CNAME(next),
                        ..
                    }) => target = next.0.clone(),
                    _ => return true,
                }
            }
            true
        })
}

/// Carries `from`'s answers to `next`, `from` patched with `changed` (key form). See the
/// module documentation for when it refuses (`None`).
pub(crate) fn carry(
    next: &ZoneData,
    from: &ZoneData,
    table: &AnswerTable,
    previous: Option<&Carried>,
    changed: &[Name],
) -> Option<Carried> {
    let cname_chain_length = table.cname_chain_length();
    let structural = changed.iter().any(|name| {
        let cut = |zone: &ZoneData| zone.node(name).is_some_and(|node| node.is_cut);
        name.is_wildcard() || cut(from) || cut(next)
    });
    if structural || from.apex_dependencies() != next.apex_dependencies() {
        return None;
    }
    // Every name whose answer may have changed: the changed names and, transitively, the
    // names whose answers mention one. The apex changes with every version (its SOA
    // serial), and the answers that mention it are mostly CNAME chains ending without data:
    // they are marked stale and left to the library path rather than encoded anew for each
    // version (at 200,000 names that was seconds of work per version). Those the table
    // knows are worked out once per table (`ThroughApex`); only the answers encoded since
    // (`previous`) can add to them here.
    let apex = key(next.origin());
    let through_apex = table.through_apex(&apex);
    let recent = |name: &Name| {
        previous
            .and_then(|carried| carried.dependents.get(name))
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let dependents = |name: &Name| {
        let known = table.dependents_of(name);
        known
            .iter()
            .chain(recent(name))
            .cloned()
            .collect::<Vec<Name>>()
    };
    let mut stale_now: NameSet = NameSet::default();
    let mut work: Vec<Name> = changed.to_vec();
    while let Some(name) = work.pop() {
        // The apex is stale itself (a question about it is answered anew), but what
        // mentions it is left to the library path below, not encoded anew.
        if stale_now.insert(name.clone()) && name != apex {
            work.extend(dependents(&name));
        }
    }
    // Names that mention the apex through an answer encoded since the table, and not
    // already known to: what they lead to is left to the library path too.
    let mut through_recent: Vec<Name> = recent(&apex).to_vec();
    if let Some(previous) = previous {
        for (target, sources) in previous.dependents.iter() {
            if through_apex.names.contains(target) {
                through_recent.extend(sources.iter().cloned());
            }
        }
    }
    let mut left_to_library: NameSet = NameSet::default();
    while let Some(name) = through_recent.pop() {
        if name == apex
            || stale_now.contains(&name)
            || through_apex.names.contains(&name)
            || !left_to_library.insert(name.clone())
        {
            continue;
        }
        through_recent.extend(dependents(&name));
    }
    let mut stale = previous
        .map(|carried| carried.stale.clone())
        .unwrap_or_default();
    let mut wire = Vec::with_capacity(MAX_NAME_WIRE_BYTES);
    let mut stale_wire: FoldSet<Vec<u8>> = FoldSet::default();
    for name in stale_now.iter().chain(&left_to_library) {
        wire.clear();
        push_wire_lowercase(name, &mut wire);
        stale.insert(fingerprint(&wire));
        stale_wire.insert(wire.clone());
    }
    if over_limit(
        stale.len() + through_apex.fingerprints.len(),
        table.len(),
        1,
    ) {
        return None;
    }
    let mut fresh = AnswerTable::new(cname_chain_length);
    let mut dependents = NameMap::default();
    if let Some(previous) = previous {
        fresh.copy_where(&previous.fresh, |name| {
            !stale_wire.contains(name) && !through_apex.fingerprints.contains(&fingerprint(name))
        });
        dependents.clone_from(&previous.dependents);
    }
    for name in &stale_now {
        let Some(node) = next.node(name) else {
            continue;
        };
        for qtype in table::stored_types(node.rrsets.iter().map(|(t, _)| *t), node.is_cut) {
            if let Some(encoded) = encode::pre_encode(next, name, qtype, cname_chain_length) {
                fresh.insert(name, qtype, encoded);
            }
        }
        for target in mentions(next, node) {
            let sources: &mut Vec<Name> = dependents.entry(target).or_default();
            if !sources.contains(name) {
                sources.push(name.clone());
            }
        }
    }
    let carried = Carried {
        stale,
        through_apex,
        fresh,
        dependents,
        nxdomain: template::nxdomain_template(next, cname_chain_length),
    };
    Some(carried)
}
