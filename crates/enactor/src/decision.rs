//! The enactor's pure decisions: what to do with a guarded plan given the zone's active
//! generation, and what a failed commit means. No I/O; the tasks in `enactor.rs` call these.

use model::Generation;
use store::StoreError;

/// What to do with a plan computed from `plan_base` when the zone's active generation is
/// `active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The plan was computed from the active generation: commit it, with compare-and-swap
    /// from that base (the store checks again inside its transaction).
    Apply,
    /// The plan's base is older than the active generation: a newer version was applied
    /// since the plan was made. Drop it; it is never applied and never retried.
    DropStale,
    /// The base is neither active nor older than it (the zone has no active version, or the
    /// plan claims a generation the store has not reached): re-read and re-plan.
    Replan,
}

/// Decides what to do with a plan. Generations never go backwards (a rollback is a new,
/// higher generation), so "older than active" is a plain comparison; `None` (no version
/// yet) is older than every generation.
pub fn decide(active: Option<Generation>, plan_base: Option<Generation>) -> Decision {
    if plan_base == active {
        Decision::Apply
    } else if plan_base < active {
        Decision::DropStale
    } else {
        Decision::Replan
    }
}

/// What a commit that failed means for the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Lost a race (or the store moved on): drop the plan and ask for a new one.
    Replan,
    /// The zone's breaker is tripped: leave the zone alone until an operator thaws it.
    Frozen { reason: String },
    /// The store refused what the guard accepted: an impossible state. Trip the breaker with
    /// this reason (safety contract 7) and keep serving the last good version.
    Trip { reason: String },
}

/// Classifies a failed commit. Nothing here retries the plan: a plan is applied once from its
/// base or dropped; progress comes from the next plan (safety contract 8: never retry
/// forever).
pub fn after_failure(error: &StoreError) -> AfterFailure {
    match error {
        StoreError::Frozen { reason, .. } => AfterFailure::Frozen {
            reason: reason.clone(),
        },
        StoreError::Invalid { .. } | StoreError::Refused { .. } => AfterFailure::Trip {
            reason: format!("the store refused a guarded plan: {error}"),
        },
        StoreError::Conflict { .. }
        | StoreError::NotFound { .. }
        | StoreError::Corrupt { .. }
        | StoreError::Backend { .. } => AfterFailure::Replan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Name, RefName};

    fn generation(number: u64) -> Option<Generation> {
        Some(Generation(number))
    }

    #[test]
    fn a_plan_from_the_active_generation_is_applied() {
        assert_eq!(decide(generation(5), generation(5)), Decision::Apply);
        assert_eq!(decide(None, None), Decision::Apply, "first load");
    }

    #[test]
    fn a_plan_from_an_older_generation_is_dropped_never_applied() {
        assert_eq!(decide(generation(15), generation(5)), Decision::DropStale);
        assert_eq!(decide(generation(6), generation(5)), Decision::DropStale);
        assert_eq!(
            decide(generation(1), None),
            Decision::DropStale,
            "a first-load plan is stale once anything is active"
        );
    }

    #[test]
    fn a_plan_from_a_generation_the_store_has_not_reached_is_re_planned() {
        assert_eq!(decide(generation(4), generation(5)), Decision::Replan);
        assert_eq!(decide(None, generation(5)), Decision::Replan);
    }

    #[test]
    fn a_lost_race_re_plans_a_frozen_zone_waits_an_impossible_refusal_trips() {
        let zone = Name::from_ascii("example.test.").unwrap();
        let conflict = StoreError::Conflict {
            zone: zone.clone(),
            reference: RefName::Active,
            expected: generation(5),
            actual: generation(6),
        };
        assert_eq!(after_failure(&conflict), AfterFailure::Replan);
        let frozen = StoreError::Frozen {
            zone: zone.clone(),
            reason: "below floor".into(),
            since_ms: 1,
        };
        assert_eq!(
            after_failure(&frozen),
            AfterFailure::Frozen {
                reason: "below floor".into()
            }
        );
        let refused = StoreError::Refused {
            zone,
            reason: "nonsense".into(),
        };
        assert!(matches!(after_failure(&refused), AfterFailure::Trip { .. }));
    }
}
