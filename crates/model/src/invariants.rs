//! The safety contract of DESIGN.md as functions. The store, the guard, the tests and the
//! simulation call these; keep them pure and keep them in release builds.

use hickory_proto::rr::{Name, RecordType};

use crate::change::{GuardPolicy, Removal, ZoneDiff};
use crate::endpoint::{addresses_at, EndpointConfig};
use crate::serial;
use crate::version::Generation;
use crate::zone::{ContentError, ZoneContent};

/// A violated invariant, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("generation must rise: {new} is not above {base}")]
    GenerationNotAbove { base: Generation, new: Generation },
    #[error("SOA serial must rise with every generation: {new} is not after {parent} (RFC 1982)")]
    SerialNotAfter { parent: u32, new: u32 },
    #[error("content is not a valid zone: {problems}")]
    InvalidContent { problems: String },
    #[error(
        "{name} would have {answers} address records, below its floor of {min_answers}; \
         automation may not go below the floor: keep serving the last good version, check the \
         backends and the endpoint config, or make an audited operator override"
    )]
    BelowFloor {
        name: Name,
        answers: usize,
        min_answers: usize,
    },
    #[error(
        "one version would remove {removed} of the {of} records of {name}; at most {allowed} \
         may go at once (guard.max_remove_fraction): remove them over several versions"
    )]
    RemovesTooMuch {
        name: Name,
        removed: u64,
        of: u64,
        allowed: u64,
    },
    #[error(
        "one version would remove or replace {changed} of the zone's {of} records; at most \
         {allowed} may change at once (guard.max_change_fraction): split the change or check \
         where it comes from"
    )]
    ChangesTooMuch { changed: u64, of: u64, allowed: u64 },
    #[error(
        "{name} lost {recent} records in the last {window_ms} ms and this version would remove \
         {proposed} more; at most {allowed} may go per window \
         (guard.max_removals_per_window): wait for the window to pass or find out why it keeps \
         shrinking"
    )]
    VelocityExceeded {
        name: Name,
        recent: u64,
        proposed: u64,
        allowed: u64,
        window_ms: u64,
    },
    #[error(
        "{name} {rtype} has TTL {ttl_secs}, above the largest allowed TTL of {max_ttl_secs} \
         seconds (zone.record_ttl_secs); lower it"
    )]
    TtlOutOfBounds {
        name: Name,
        rtype: RecordType,
        ttl_secs: u32,
        max_ttl_secs: u32,
    },
    #[error(
        "content for zone {actual} was offered to zone {expected}; plan against the right zone"
    )]
    WrongZone {
        expected: Box<Name>,
        actual: Box<Name>,
    },
}

/// Contract 2: a ref only moves forward.
pub fn check_generation_monotonic(
    base: Option<Generation>,
    new: Generation,
) -> Result<(), Violation> {
    match base {
        Some(base) if new <= base => Err(Violation::GenerationNotAbove { base, new }),
        _ => Ok(()),
    }
}

/// Contract 1: the served serial rises with every generation.
pub fn check_serial_rises(parent: Option<u32>, new: u32) -> Result<(), Violation> {
    match parent {
        Some(parent) if !serial::is_after(new, parent) => {
            Err(Violation::SerialNotAfter { parent, new })
        }
        _ => Ok(()),
    }
}

/// Content must be a servable zone before it becomes a version.
pub fn check_content_valid(content: &ZoneContent, record_limit: u64) -> Result<(), Violation> {
    valid_unless(content.validate(record_limit))
}

fn valid_unless(problems: Vec<ContentError>) -> Result<(), Violation> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Violation::InvalidContent {
            problems: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

/// [`check_content_valid`] for `new` derived from `old`, which is valid (every stored
/// version is): the apex, the record count and every rule at the names whose sets differ.
/// Same verdict as the whole check at the cost of the change (safety contract 12).
pub fn check_change_valid(
    old: &ZoneContent,
    new: &ZoneContent,
    record_limit: u64,
) -> Result<(), Violation> {
    let changed = old.changed_sets(new);
    valid_unless(new.validate_names(changed.iter().map(|set| &set.key.name), record_limit))
}

/// [`ttl_violations`] of the sets of `new` that differ from `old`: the same violations when
/// `old` has none.
pub fn ttl_violations_in_change(
    old: &ZoneContent,
    new: &ZoneContent,
    max_ttl_secs: u32,
) -> Vec<Violation> {
    ttl_violations_of(
        old.changed_sets(new)
            .into_iter()
            .filter_map(|changed| changed.new),
        max_ttl_secs,
    )
}

/// Contract 5: every endpoint of the content's zone has at least `min_answers` address
/// (`A` + `AAAA`) records. Endpoints of other zones are not this content's business.
pub fn check_never_empty(
    content: &ZoneContent,
    endpoints: &[EndpointConfig],
) -> Result<(), Violation> {
    first(never_empty_violations(content, endpoints))
}

/// Every violation of [`check_never_empty`], one per endpoint below its floor.
pub fn never_empty_violations(
    content: &ZoneContent,
    endpoints: &[EndpointConfig],
) -> Vec<Violation> {
    endpoints
        .iter()
        .filter(|endpoint| content.origin().zone_of(&endpoint.name))
        .filter_map(|endpoint| {
            let answers = addresses_at(content, &endpoint.name).len();
            (answers < endpoint.min_answers).then(|| Violation::BelowFloor {
                name: endpoint.name.clone(),
                answers,
                min_answers: endpoint.min_answers,
            })
        })
        .collect()
}

/// Contract 6, per version: no name loses more than
/// [`GuardPolicy::name_removal_allowance`] records, and the zone loses or replaces no more
/// than [`GuardPolicy::zone_change_allowance`] records (SOA aside; additions and TTL
/// changes take no answer away and are not counted).
pub fn check_bounded_change(
    old: &ZoneContent,
    new: &ZoneContent,
    policy: &GuardPolicy,
) -> Result<(), Violation> {
    first(bounded_change_violations(
        &ZoneDiff::between(old, new),
        policy,
    ))
}

/// Every violation of [`check_bounded_change`] in a diff already computed.
pub fn bounded_change_violations(diff: &ZoneDiff, policy: &GuardPolicy) -> Vec<Violation> {
    let mut violations: Vec<Violation> = diff
        .names
        .iter()
        .filter_map(|(name, change)| {
            let removed = change.removed.len() as u64;
            let allowed = policy.name_removal_allowance(change.old_records);
            (removed > allowed).then(|| Violation::RemovesTooMuch {
                name: name.clone(),
                removed,
                of: change.old_records,
                allowed,
            })
        })
        .collect();
    let changed = diff.removed_records();
    let allowed = policy.zone_change_allowance(diff.old_records);
    if changed > allowed {
        violations.push(Violation::ChangesTooMuch {
            changed,
            of: diff.old_records,
            allowed,
        });
    }
    violations
}

/// Contract 6, over time: per name, the records removed by versions applied within the
/// window plus those `proposed` now stay within `policy.max_removals_per_window`.
pub fn check_velocity(
    recent: &[Removal],
    proposed: &[Removal],
    policy: &GuardPolicy,
    now_ms: u64,
) -> Result<(), Violation> {
    first(velocity_violations(recent, proposed, policy, now_ms))
}

/// Every violation of [`check_velocity`], one per name.
pub fn velocity_violations(
    recent: &[Removal],
    proposed: &[Removal],
    policy: &GuardPolicy,
    now_ms: u64,
) -> Vec<Violation> {
    let mut per_name: std::collections::BTreeMap<&Name, u64> = Default::default();
    for removal in proposed {
        let total = per_name.entry(&removal.name).or_default();
        *total = total.saturating_add(removal.records);
    }
    per_name
        .into_iter()
        .filter_map(|(name, proposed)| {
            let recent = policy.removed_in_window(recent, name, now_ms);
            let allowed = policy.max_removals_per_window;
            (proposed > 0 && recent.saturating_add(proposed) > allowed).then(|| {
                Violation::VelocityExceeded {
                    name: name.clone(),
                    recent,
                    proposed,
                    allowed,
                    window_ms: policy.velocity_window_ms,
                }
            })
        })
        .collect()
}

/// Every record's TTL is at most `max_ttl_secs` (see [`crate::limits::RECORD_TTL_SECS`]).
pub fn check_ttl_bounds(content: &ZoneContent, max_ttl_secs: u32) -> Result<(), Violation> {
    first(ttl_violations(content, max_ttl_secs))
}

/// Every violation of [`check_ttl_bounds`], one per record set.
pub fn ttl_violations(content: &ZoneContent, max_ttl_secs: u32) -> Vec<Violation> {
    ttl_violations_of(content.rrsets(), max_ttl_secs)
}

fn ttl_violations_of<'a>(
    sets: impl Iterator<Item = &'a crate::zone::RecordSet>,
    max_ttl_secs: u32,
) -> Vec<Violation> {
    sets.filter(|set| set.ttl > max_ttl_secs)
        .map(|set| Violation::TtlOutOfBounds {
            name: set.name.clone(),
            rtype: set.rtype,
            ttl_secs: set.ttl,
            max_ttl_secs,
        })
        .collect()
}

/// Content offered for a zone is content of that zone.
pub fn check_zone_origin(content: &ZoneContent, origin: &Name) -> Result<(), Violation> {
    if content.origin() == origin {
        Ok(())
    } else {
        Err(Violation::WrongZone {
            expected: Box::new(origin.clone()),
            actual: Box::new(content.origin().clone()),
        })
    }
}

fn first(violations: Vec<Violation>) -> Result<(), Violation> {
    match violations.into_iter().next() {
        Some(violation) => Err(violation),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{BackendConfig, Check};
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{RData, Record};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn zone(addresses: &[(&str, u8)]) -> ZoneContent {
        let soa = SOA::new(name("ns.z."), name("h.z."), 1, 1, 1, 1, 1);
        let mut records = vec![
            Record::from_rdata(name("z."), 60, RData::SOA(soa)),
            Record::from_rdata(name("z."), 60, RData::NS(NS(name("ns.z.")))),
        ];
        for (owner, last) in addresses {
            records.push(Record::from_rdata(
                name(owner),
                30,
                RData::A(A::new(10, 0, 0, *last)),
            ));
        }
        ZoneContent::from_records(name("z."), records).unwrap()
    }

    fn endpoint(owner: &str, backends: usize) -> EndpointConfig {
        EndpointConfig::new(
            name(owner),
            (1..=backends)
                .map(|i| BackendConfig {
                    address: format!("10.0.0.{i}").parse().unwrap(),
                    check: Check::None,
                    weight: 1,
                })
                .collect(),
        )
    }

    #[test]
    fn an_endpoint_without_address_records_violates_the_floor() {
        let api = endpoint("api.z.", 2);
        assert_eq!(
            check_never_empty(&zone(&[("api.z.", 1)]), std::slice::from_ref(&api)),
            Ok(())
        );
        assert_eq!(
            check_never_empty(&zone(&[("www.z.", 1)]), &[api]),
            Err(Violation::BelowFloor {
                name: name("api.z."),
                answers: 0,
                min_answers: 1
            })
        );
    }

    #[test]
    fn endpoints_of_other_zones_are_not_checked() {
        assert_eq!(
            check_never_empty(&zone(&[]), &[endpoint("api.other.", 1)]),
            Ok(())
        );
    }

    #[test]
    fn removing_one_of_two_records_is_a_bounded_change() {
        let policy = GuardPolicy::default();
        let old = zone(&[("api.z.", 1), ("api.z.", 2)]);
        assert_eq!(
            check_bounded_change(&old, &zone(&[("api.z.", 1)]), &policy),
            Ok(())
        );
    }

    #[test]
    fn removing_three_of_four_records_of_a_name_is_too_much() {
        let policy = GuardPolicy::default();
        let old = zone(&[("api.z.", 1), ("api.z.", 2), ("api.z.", 3), ("api.z.", 4)]);
        let error = check_bounded_change(&old, &zone(&[("api.z.", 1)]), &policy).unwrap_err();
        assert_eq!(
            error,
            Violation::RemovesTooMuch {
                name: name("api.z."),
                removed: 3,
                of: 4,
                allowed: 2
            }
        );
        assert!(
            error.to_string().contains("over several versions"),
            "{error}"
        );
    }

    #[test]
    fn removing_many_single_record_names_changes_too_much_of_the_zone() {
        let policy = GuardPolicy::default();
        let old = zone(&[("a.z.", 1), ("b.z.", 2), ("c.z.", 3)]);
        let violations = bounded_change_violations(&ZoneDiff::between(&old, &zone(&[])), &policy);
        assert_eq!(
            violations,
            vec![Violation::ChangesTooMuch {
                changed: 3,
                of: 4,
                allowed: 2
            }]
        );
    }

    #[test]
    fn removals_beyond_the_window_budget_exceed_the_velocity() {
        let policy = GuardPolicy::default();
        let api = name("api.z.");
        let removal = |records, at_ms| Removal {
            name: api.clone(),
            records,
            at_ms,
        };
        let recent = vec![removal(3, 10_000)];
        assert_eq!(
            check_velocity(&recent, &[removal(1, 20_000)], &policy, 20_000),
            Ok(())
        );
        assert_eq!(
            check_velocity(&recent, &[removal(2, 20_000)], &policy, 20_000),
            Err(Violation::VelocityExceeded {
                name: api.clone(),
                recent: 3,
                proposed: 2,
                allowed: 4,
                window_ms: 60_000
            })
        );
        assert_eq!(
            check_velocity(&recent, &[removal(2, 80_000)], &policy, 80_000),
            Ok(())
        );
    }

    #[test]
    fn a_ttl_above_one_week_is_out_of_bounds() {
        let content = zone(&[("api.z.", 1)]);
        assert_eq!(check_ttl_bounds(&content, 604_800), Ok(()));
        assert!(matches!(
            check_ttl_bounds(&content, 40),
            Err(Violation::TtlOutOfBounds { ttl_secs: 60, .. })
        ));
    }

    #[test]
    fn content_of_another_zone_is_refused() {
        assert!(check_zone_origin(&zone(&[]), &name("z.")).is_ok());
        assert!(check_zone_origin(&zone(&[]), &name("y.")).is_err());
    }

    #[test]
    fn a_ref_may_not_move_to_its_own_or_an_older_generation() {
        assert!(check_generation_monotonic(None, Generation(1)).is_ok());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(4)).is_ok());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(3)).is_err());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(2)).is_err());
    }

    #[test]
    fn a_serial_that_does_not_rise_is_a_violation() {
        assert!(check_serial_rises(Some(5), 6).is_ok());
        assert!(check_serial_rises(Some(5), 5).is_err());
        assert!(check_serial_rises(Some(u32::MAX), 0).is_ok());
    }
}
