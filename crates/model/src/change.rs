//! What one version changes, and how much change the guard policy allows (safety contract 6).
//!
//! [`ZoneDiff`] compares two contents record by record (owner, type, data). The SOA is left
//! out: its serial changes with every version and the store owns it. TTL changes are not
//! counted either: a record whose TTL changed still answers.
//!
//! The policy bounds *loss*: how many of a name's records one version removes, how many of
//! the zone's old records one version removes or replaces, and how many records all versions
//! together remove from one name within a time window. Additions take no answer away and are
//! not bounded here (the validator judges what is served).

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, RecordType};

use crate::limits;
use crate::zone::{encode_rdata, RecordSet, ZoneContent};

/// Limits on change, from the `[guard]` configuration section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuardPolicy {
    /// Largest fraction of one name's records that one version may remove.
    pub max_remove_fraction: f64,
    /// Largest fraction of the zone's records (SOA aside) one version may remove or replace.
    pub max_change_fraction: f64,
    /// Window over which removals per name are counted.
    pub velocity_window_ms: u64,
    /// Records all versions together may remove from one name within the window.
    pub max_removals_per_window: u64,
}

/// Records removed from one name by one applied version, at the time it was applied. The
/// enactor keeps these (from [`ZoneDiff::removals`]) to feed the velocity check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub name: Name,
    pub records: u64,
    pub at_ms: u64,
}

/// Addresses a plan keeps serving at an endpoint although health says they should go,
/// because a limit of the guard policy holds their removal back (the planner stages it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub name: Name,
    /// Still served, to be removed by a later plan.
    pub held: Vec<std::net::IpAddr>,
    /// Which limit holds them, in words, with its value.
    pub limit: String,
    /// When the limit next lets one of them go (ms since the epoch): the oldest removal in
    /// the velocity window leaves it; `None` when the next plan may go on (a per-version
    /// limit).
    pub lifts_at_ms: Option<u64>,
}

impl GuardPolicy {
    /// When the oldest removal at `name` within the window ending at `now_ms` leaves it.
    pub fn velocity_lifts_at(&self, recent: &[Removal], name: &Name, now_ms: u64) -> Option<u64> {
        let window_start = now_ms.saturating_sub(self.velocity_window_ms);
        recent
            .iter()
            .filter(|removal| removal.name == *name && removal.at_ms > window_start)
            .map(|removal| removal.at_ms.saturating_add(self.velocity_window_ms))
            .min()
    }
}

impl Default for GuardPolicy {
    fn default() -> GuardPolicy {
        GuardPolicy {
            max_remove_fraction: limits::GUARD_MAX_REMOVE_FRACTION.default,
            max_change_fraction: limits::GUARD_MAX_CHANGE_FRACTION.default,
            velocity_window_ms: limits::GUARD_VELOCITY_WINDOW_MS.default,
            max_removals_per_window: limits::GUARD_MAX_REMOVALS_PER_WINDOW.default,
        }
    }
}

impl GuardPolicy {
    /// Checks every value against its named limit; the error names the key and its bounds.
    pub fn validate(&self) -> Result<(), String> {
        limits::GUARD_MAX_REMOVE_FRACTION.check(self.max_remove_fraction)?;
        limits::GUARD_MAX_CHANGE_FRACTION.check(self.max_change_fraction)?;
        limits::GUARD_VELOCITY_WINDOW_MS.check(self.velocity_window_ms)?;
        limits::GUARD_MAX_REMOVALS_PER_WINDOW.check(self.max_removals_per_window)?;
        Ok(())
    }

    /// Records one version may remove from a name that has `old_records`:
    /// `max(1, floor(old_records × max_remove_fraction))`.
    ///
    /// One record may always go: otherwise a one-record name could never change, and an
    /// endpoint whose only served backend died could never move to a healthy one. Emptying a
    /// protected name is the floor's business ([`crate::invariants::check_never_empty`]),
    /// not this rule's. With the default 0.5, an endpoint of two backends may lose one per
    /// version, of three one, of four two.
    pub fn name_removal_allowance(&self, old_records: u64) -> u64 {
        fraction_of(old_records, self.max_remove_fraction).max(1)
    }

    /// Records one version may remove or replace in a zone of `old_records` (SOA aside):
    /// `max(1, floor(old_records × max_change_fraction))`.
    pub fn zone_change_allowance(&self, old_records: u64) -> u64 {
        fraction_of(old_records, self.max_change_fraction).max(1)
    }

    /// Records removed from `name` by versions applied within the window ending at `now_ms`.
    /// Entries stamped in the future (clock skew between nodes) count too.
    pub fn removed_in_window(&self, recent: &[Removal], name: &Name, now_ms: u64) -> u64 {
        let window_start = now_ms.saturating_sub(self.velocity_window_ms);
        recent
            .iter()
            .filter(|removal| removal.name == *name && removal.at_ms > window_start)
            .map(|removal| removal.records)
            .fold(0, u64::saturating_add)
    }

    /// Records that may still be removed from `name` in the window ending at `now_ms`.
    pub fn velocity_remaining(&self, recent: &[Removal], name: &Name, now_ms: u64) -> u64 {
        self.max_removals_per_window
            .saturating_sub(self.removed_in_window(recent, name, now_ms))
    }
}

fn fraction_of(count: u64, fraction: f64) -> u64 {
    // Record counts are far below 2^53, so the conversions are exact; `as u64` saturates.
    (count as f64 * fraction.clamp(0.0, 1.0)).floor() as u64
}

/// Record-level differences of one owner name (SOA aside).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameDiff {
    /// Records the name had before.
    pub old_records: u64,
    /// Records the name has after.
    pub new_records: u64,
    pub added: Vec<(RecordType, RData)>,
    pub removed: Vec<(RecordType, RData)>,
}

/// Record-level differences between two contents of one zone (SOA aside).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneDiff {
    /// Only names with an added or removed record, in canonical order.
    pub names: BTreeMap<Name, NameDiff>,
    /// Records of the old content, SOA aside.
    pub old_records: u64,
    /// Records of the new content, SOA aside.
    pub new_records: u64,
}

impl ZoneDiff {
    /// Compares `old` with `new`, record by record. Costs the change when one was derived
    /// from the other (see [`ZoneContent::changed_sets`]); the zone totals are counters.
    pub fn between(old: &ZoneContent, new: &ZoneContent) -> ZoneDiff {
        let mut names: BTreeMap<Name, NameDiff> = BTreeMap::new();
        for changed in old.changed_sets(new) {
            if changed.key.rtype == RecordType::SOA {
                continue;
            }
            let before = encoded(changed.old);
            let after = encoded(changed.new);
            let removed: Vec<_> = before
                .iter()
                .filter(|(bytes, _)| !after.contains_key(*bytes))
                .map(|(_, rdata)| (changed.key.rtype, (*rdata).clone()))
                .collect();
            let added: Vec<_> = after
                .iter()
                .filter(|(bytes, _)| !before.contains_key(*bytes))
                .map(|(_, rdata)| (changed.key.rtype, (*rdata).clone()))
                .collect();
            if removed.is_empty() && added.is_empty() {
                continue;
            }
            let name = &changed.key.name;
            let diff = names.entry(name.clone()).or_insert_with(|| NameDiff {
                old_records: records_at(old, name),
                new_records: records_at(new, name),
                ..NameDiff::default()
            });
            diff.removed.extend(removed);
            diff.added.extend(added);
        }
        ZoneDiff {
            names,
            old_records: records_without_soa(old),
            new_records: records_without_soa(new),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Records removed or replaced, over all names.
    pub fn removed_records(&self) -> u64 {
        self.names
            .values()
            .map(|diff| diff.removed.len() as u64)
            .sum()
    }

    /// Records added, over all names.
    pub fn added_records(&self) -> u64 {
        self.names
            .values()
            .map(|diff| diff.added.len() as u64)
            .sum()
    }

    /// The removals of this diff as applied at `at_ms`, one per name that lost records.
    pub fn removals(&self, at_ms: u64) -> Vec<Removal> {
        self.names
            .iter()
            .filter(|(_, diff)| !diff.removed.is_empty())
            .map(|(name, diff)| Removal {
                name: name.clone(),
                records: diff.removed.len() as u64,
                at_ms,
            })
            .collect()
    }
}

/// Records of one owner name, SOA aside.
pub(crate) fn records_at(content: &ZoneContent, name: &Name) -> u64 {
    content
        .sets_at(name)
        .filter(|set| set.rtype != RecordType::SOA)
        .map(|set| set.rdatas.len() as u64)
        .sum()
}

/// Records of the zone, SOA aside.
pub(crate) fn records_without_soa(content: &ZoneContent) -> u64 {
    let soa = content
        .get(content.origin(), RecordType::SOA)
        .map_or(0, |set| set.rdatas.len() as u64);
    content.record_count() - soa
}

fn encoded(set: Option<&RecordSet>) -> BTreeMap<Vec<u8>, &RData> {
    set.map_or(&[][..], |set| &set.rdatas)
        .iter()
        .map(|rdata| (encode_rdata(rdata), rdata))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, NS, SOA, TXT};
    use hickory_proto::rr::Record;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn zone(serial: u32, records: &[(&str, RData)]) -> ZoneContent {
        let soa = SOA::new(name("ns.z."), name("h.z."), serial, 1, 1, 1, 1);
        let mut all = vec![
            Record::from_rdata(name("z."), 60, RData::SOA(soa)),
            Record::from_rdata(name("z."), 60, RData::NS(NS(name("ns.z.")))),
        ];
        all.extend(
            records
                .iter()
                .map(|(owner, rdata)| Record::from_rdata(name(owner), 60, rdata.clone())),
        );
        ZoneContent::from_records(name("z."), all).unwrap()
    }

    fn a(last: u8) -> RData {
        RData::A(A::new(10, 0, 0, last))
    }

    #[test]
    fn the_diff_lists_added_and_removed_records_per_name_and_ignores_the_serial() {
        let old = zone(1, &[("api.z.", a(1)), ("api.z.", a(2)), ("www.z.", a(9))]);
        let new = zone(
            2,
            &[
                ("api.z.", a(1)),
                ("api.z.", a(3)),
                ("www.z.", a(9)),
                ("t.z.", RData::TXT(TXT::new(vec!["x".into()]))),
            ],
        );
        let diff = ZoneDiff::between(&old, &new);
        assert_eq!(diff.names.len(), 2, "{diff:?}");
        let api = &diff.names[&name("api.z.")];
        assert_eq!((api.old_records, api.new_records), (2, 2));
        assert_eq!(api.removed, vec![(RecordType::A, a(2))]);
        assert_eq!(api.added, vec![(RecordType::A, a(3))]);
        assert_eq!(diff.names[&name("t.z.")].old_records, 0);
        assert_eq!((diff.old_records, diff.new_records), (4, 5));
        assert_eq!((diff.removed_records(), diff.added_records()), (1, 2));
        assert_eq!(
            diff.removals(7),
            vec![Removal {
                name: name("api.z."),
                records: 1,
                at_ms: 7
            }]
        );
        assert!(ZoneDiff::between(&old, &old.with_serial(5)).is_empty());
    }

    #[test]
    fn one_record_may_always_be_removed_from_a_name() {
        let policy = GuardPolicy::default();
        assert_eq!(policy.name_removal_allowance(1), 1);
        assert_eq!(policy.name_removal_allowance(2), 1);
        assert_eq!(policy.name_removal_allowance(3), 1);
        assert_eq!(policy.name_removal_allowance(4), 2);
        assert_eq!(policy.zone_change_allowance(0), 1);
    }

    #[test]
    fn removals_leave_the_velocity_window_when_it_has_passed() {
        let policy = GuardPolicy::default();
        let api = name("api.z.");
        let recent = vec![
            Removal {
                name: api.clone(),
                records: 3,
                at_ms: 1_000,
            },
            Removal {
                name: name("www.z."),
                records: 3,
                at_ms: 1_000,
            },
        ];
        assert_eq!(policy.removed_in_window(&recent, &api, 60_999), 3);
        assert_eq!(policy.velocity_remaining(&recent, &api, 60_999), 1);
        assert_eq!(policy.removed_in_window(&recent, &api, 61_000), 0);
        assert_eq!(policy.velocity_remaining(&recent, &api, 61_000), 4);
    }

    #[test]
    fn the_default_policy_is_within_its_limits_and_bad_values_are_named() {
        assert_eq!(GuardPolicy::default().validate(), Ok(()));
        let bad = GuardPolicy {
            max_remove_fraction: 1.5,
            ..GuardPolicy::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("guard.max_remove_fraction"));
    }
}
