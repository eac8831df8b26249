//! Canary mode: enactors commit guarded plans to the zone's `canary` ref instead of `active`;
//! a canary listener serves it; only after the validator passed it does [`promote_canary`]
//! move `active` to it, by compare-and-swap from the canary's base. A canary that fails is
//! refused with [`refuse_canary`], which trips the breaker.
//!
//! ```text
//!  guarded plan ──commit(canary, base = active)──▶ canary ──validator passed──▶ promote:
//!                                                    │      move_ref(active, expected = base)
//!                                                    └──validator failed──▶ refused, breaker trips
//! ```

use model::{Generation, Name, RefName, Refs};
use store::{MoveRef, Store, StoreError};

use crate::control::record_refusal;

/// Evidence that the validator checked `canary` on the canary listener and found nothing.
/// Only the validator builds one; promotion needs it.
#[derive(Debug, Clone)]
pub struct CanaryPassed<'a> {
    pub zone: &'a Name,
    pub canary: Generation,
    /// The canary version's parent: the active generation it was computed against.
    pub base: Option<Generation>,
    /// What was checked, for the audit log.
    pub evidence: &'a str,
}

/// What to do with a passed canary, given where the refs are now. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionDecision {
    /// Active is still the canary's base: move it to the canary.
    Promote,
    /// The canary ref moved since the check (a newer canary, or cleared): nothing to do,
    /// the newer one gets its own check.
    CanaryMoved { actual: Option<Generation> },
    /// Active moved since the canary was made: the canary is stale; clear it and re-plan.
    BaseMoved { active: Option<Generation> },
}

pub fn decide_promotion(
    refs: Refs,
    canary: Generation,
    base: Option<Generation>,
) -> PromotionDecision {
    if refs.canary != Some(canary) {
        PromotionDecision::CanaryMoved {
            actual: refs.canary,
        }
    } else if refs.active != base {
        PromotionDecision::BaseMoved {
            active: refs.active,
        }
    } else {
        PromotionDecision::Promote
    }
}

/// Promotes a passed canary: `active` moves to it by compare-and-swap (expected = its base),
/// as automation (refused while the breaker is tripped). A stale canary is cleared instead.
/// Returns the decision taken.
pub fn promote_canary(
    store: &dyn Store,
    passed: &CanaryPassed<'_>,
    actor: &str,
    now_ms: u64,
) -> Result<PromotionDecision, StoreError> {
    let refs = store.refs(passed.zone)?;
    let decision = decide_promotion(refs, passed.canary, passed.base);
    let reason;
    let request = match decision {
        PromotionDecision::CanaryMoved { .. } => return Ok(decision),
        PromotionDecision::Promote => {
            reason = format!(
                "canary {} passed validation: {}",
                passed.canary, passed.evidence
            );
            MoveRef {
                zone: passed.zone,
                reference: RefName::Active,
                expected: passed.base,
                to: Some(passed.canary),
                actor,
                reason: &reason,
                now_ms,
                automation: true,
            }
        }
        PromotionDecision::BaseMoved { active } => {
            reason = format!(
                "canary {} was made from {} but active is now {}; cleared, a new plan follows",
                passed.canary,
                show(passed.base),
                show(active)
            );
            MoveRef {
                zone: passed.zone,
                reference: RefName::Canary,
                expected: Some(passed.canary),
                to: None,
                actor,
                reason: &reason,
                now_ms,
                automation: true,
            }
        }
    };
    store.move_ref(request)?;
    Ok(decision)
}

/// Refuses a canary that failed validation: the refusal is audited and the zone's breaker
/// trips. The canary ref stays where it is, so the canary listener keeps showing what was
/// refused until an operator clears or replaces it; active never moved.
pub fn refuse_canary(
    store: &dyn Store,
    zone: &Name,
    canary: Generation,
    findings: &str,
    actor: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let active = store.refs(zone)?.active;
    let reason = format!("canary {canary} failed validation: {findings}");
    record_refusal(store, zone, active, &reason, &reason, actor, now_ms)
}

fn show(generation: Option<Generation>) -> String {
    generation.map_or_else(|| "nothing".to_string(), |g| g.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(active: u64, canary: Option<u64>) -> Refs {
        Refs {
            active: Some(Generation(active)),
            canary: canary.map(Generation),
        }
    }

    #[test]
    fn a_canary_is_promoted_only_while_active_is_its_base() {
        assert_eq!(
            decide_promotion(refs(3, Some(4)), Generation(4), Some(Generation(3))),
            PromotionDecision::Promote
        );
        assert_eq!(
            decide_promotion(refs(5, Some(4)), Generation(4), Some(Generation(3))),
            PromotionDecision::BaseMoved {
                active: Some(Generation(5))
            }
        );
        assert_eq!(
            decide_promotion(refs(3, Some(6)), Generation(4), Some(Generation(3))),
            PromotionDecision::CanaryMoved {
                actual: Some(Generation(6))
            }
        );
    }
}
