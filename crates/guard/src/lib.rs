//! # guard — may this content become the zone's next version?
//!
//! Sits between the planner and the enactor:
//! `planner ──Plan──▶ guard ──Verdict──▶ enactor ──CAS──▶ store`.
//!
//! [`judge`] is a pure function of a [`GuardInput`] (the active generation and content, the
//! proposed content and the generation it was planned from, the endpoint configs, recent
//! removals, the [`GuardPolicy`]) and `now_ms`. It returns a [`Verdict`]: accept, or refuse
//! with every [`Reason`] found, each with text fit for the audit log.
//!
//! It checks: a stale base (the plan was computed from a generation that is no longer
//! active), invalid data (not a servable zone, another zone's content, TTL bounds), a
//! protected name below its floor (skipped only for an audited operator override), too
//! large a removal from one name or change to the zone, and removal velocity.
//!
//! The one design decision to know: **the guard calls the model's invariant functions and
//! re-implements none.** The planner, the tests and the simulation call the same functions,
//! so "what the planner stays within" and "what the guard enforces" cannot drift apart.
//! A refusal trips the zone's breaker ([`Verdict::breaker_reason`]), except a refusal for a
//! stale base alone: that is an ordinary lost race, answered by re-reading and re-planning.

use std::fmt;

use model::invariants::{
    bounded_change_violations, check_change_valid, check_content_valid, check_generation_monotonic,
    check_zone_origin, never_empty_violations, ttl_violations, ttl_violations_in_change,
    velocity_violations, Violation,
};
use model::{
    limits, EndpointConfig, Generation, GuardPolicy, Name, Removal, ZoneContent, ZoneDiff,
};

/// Everything a verdict depends on, besides the time.
#[derive(Debug, Clone)]
pub struct GuardInput<'a> {
    /// The zone the content is offered to.
    pub origin: &'a Name,
    /// The zone's active generation now, if any.
    pub base: Option<Generation>,
    /// The content of `base`.
    pub active: Option<&'a ZoneContent>,
    /// The content offered as the next version.
    pub proposed: &'a ZoneContent,
    /// The generation `proposed` was computed from.
    pub proposed_base: Option<Generation>,
    /// The generation the store will give `proposed`, when the caller knows it.
    pub proposed_generation: Option<Generation>,
    pub endpoints: &'a [EndpointConfig],
    /// Removals applied to this zone recently (by every enactor), for the velocity limit.
    pub recent_removals: &'a [Removal],
    pub policy: &'a GuardPolicy,
    /// An operator's audited override, with its reason: what stands between a person and
    /// deliberately draining a protected name is skipped (its floor, the share of its
    /// records one version may remove, the removal velocity); the zone-wide change limit and
    /// every validity rule still hold.
    pub operator_override: Option<String>,
}

/// The guard's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    Refuse { reasons: Vec<Reason> },
}

/// Why content was refused. The `Display` text is written to the audit log.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// A protected name would have fewer address records than its floor.
    BelowFloor {
        name: Name,
        answers: usize,
        min: usize,
    },
    /// One version would remove too large a part of a name's records.
    RemovesTooMuch {
        name: Name,
        removed: u64,
        of: u64,
        allowed: u64,
        max_fraction: f64,
    },
    /// One version would remove or replace too large a part of the zone.
    ChangesTooMuch {
        changed: u64,
        of: u64,
        allowed: u64,
        max_fraction: f64,
    },
    /// Too many records removed from one name within the velocity window.
    VelocityExceeded {
        name: Name,
        removed_in_window: u64,
        proposed: u64,
        max: u64,
        window_ms: u64,
    },
    /// Not servable: CNAME beside other data, out-of-zone names, TTL out of bounds, ...
    InvalidData { problem: String },
    /// The plan was computed from a generation that is no longer the active one.
    StaleBase {
        plan_base: Option<Generation>,
        active: Option<Generation>,
    },
    /// The new generation would not be above the active one.
    GenerationNotAbove { base: Generation, new: Generation },
}

/// Judges `input.proposed`. Pure: same input and `now_ms`, same verdict.
pub fn judge(input: &GuardInput<'_>, now_ms: u64) -> Verdict {
    let mut reasons = Vec::new();
    if input.proposed_base != input.base {
        reasons.push(Reason::StaleBase {
            plan_base: input.proposed_base,
            active: input.base,
        });
    }
    if let Some(new) = input.proposed_generation {
        if let Err(violation) = check_generation_monotonic(input.base, new) {
            reasons.push(Reason::from_violation(violation, input.policy));
        }
    }
    let proposed = input.proposed;
    let mut violations: Vec<Violation> = Vec::new();
    violations.extend(check_zone_origin(proposed, input.origin).err());
    // The limit's maximum is one week, which fits in u32.
    let max_ttl_secs = u32::try_from(limits::RECORD_TTL_SECS.max).expect("one week fits in u32");
    // The active content is a stored version, valid when it was stored: judging what the
    // proposal changes gives the whole zone's verdict at the cost of the change.
    match input
        .active
        .filter(|active| active.origin() == proposed.origin())
    {
        Some(active) => {
            violations
                .extend(check_change_valid(active, proposed, limits::ZONE_RECORDS.default).err());
            violations.extend(ttl_violations_in_change(active, proposed, max_ttl_secs));
        }
        None => {
            violations.extend(check_content_valid(proposed, limits::ZONE_RECORDS.default).err());
            violations.extend(ttl_violations(proposed, max_ttl_secs));
        }
    }
    if input.operator_override.is_none() {
        violations.extend(never_empty_violations(proposed, input.endpoints));
    }
    if let Some(active) = input.active {
        let diff = ZoneDiff::between(active, proposed);
        let bounded = bounded_change_violations(&diff, input.policy);
        if input.operator_override.is_none() {
            violations.extend(bounded);
            violations.extend(velocity_violations(
                input.recent_removals,
                &diff.removals(now_ms),
                input.policy,
                now_ms,
            ));
        } else {
            violations.extend(
                bounded
                    .into_iter()
                    .filter(|violation| matches!(violation, Violation::ChangesTooMuch { .. })),
            );
        }
    }
    reasons.extend(
        violations
            .into_iter()
            .map(|violation| Reason::from_violation(violation, input.policy)),
    );
    if reasons.is_empty() {
        Verdict::Accept
    } else {
        Verdict::Refuse { reasons }
    }
}

impl Verdict {
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept)
    }

    /// The reasons of a refusal (none for an accept).
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Verdict::Accept => &[],
            Verdict::Refuse { reasons } => reasons,
        }
    }

    /// The text to trip the zone's breaker with, when this verdict must trip it: every
    /// refusal except one for a stale base alone (a lost race; re-read and re-plan).
    pub fn breaker_reason(&self) -> Option<String> {
        let tripping: Vec<String> = self
            .reasons()
            .iter()
            .filter(|reason| reason.trips_breaker())
            .map(ToString::to_string)
            .collect();
        (!tripping.is_empty()).then(|| format!("guard refused: {}", tripping.join("; ")))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accepted"),
            Verdict::Refuse { reasons } => {
                f.write_str("refused: ")?;
                for (i, reason) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{reason}")?;
                }
                Ok(())
            }
        }
    }
}

impl Reason {
    /// Whether this reason alone must stop automation on the zone.
    pub fn trips_breaker(&self) -> bool {
        !matches!(self, Reason::StaleBase { .. })
    }

    /// The guard's reason for a violated invariant.
    pub fn from_violation(violation: Violation, policy: &GuardPolicy) -> Reason {
        match violation {
            Violation::BelowFloor {
                name,
                answers,
                min_answers,
            } => Reason::BelowFloor {
                name,
                answers,
                min: min_answers,
            },
            Violation::RemovesTooMuch {
                name,
                removed,
                of,
                allowed,
            } => Reason::RemovesTooMuch {
                name,
                removed,
                of,
                allowed,
                max_fraction: policy.max_remove_fraction,
            },
            Violation::ChangesTooMuch {
                changed,
                of,
                allowed,
            } => Reason::ChangesTooMuch {
                changed,
                of,
                allowed,
                max_fraction: policy.max_change_fraction,
            },
            Violation::VelocityExceeded {
                name,
                recent,
                proposed,
                allowed,
                window_ms,
            } => Reason::VelocityExceeded {
                name,
                removed_in_window: recent,
                proposed,
                max: allowed,
                window_ms,
            },
            Violation::GenerationNotAbove { base, new } => Reason::GenerationNotAbove { base, new },
            other => Reason::InvalidData {
                problem: other.to_string(),
            },
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BelowFloor { name, answers, min } => write!(
                f,
                "below floor: {name} would have {answers} address records, its floor is {min}; \
                 check the backends and the endpoint config, or make an audited operator \
                 override"
            ),
            Reason::RemovesTooMuch {
                name,
                removed,
                of,
                allowed,
                max_fraction,
            } => write!(
                f,
                "removes too much: {removed} of the {of} records of {name} in one version, at \
                 most {allowed} allowed (guard.max_remove_fraction = {max_fraction}); remove \
                 them over several versions"
            ),
            Reason::ChangesTooMuch {
                changed,
                of,
                allowed,
                max_fraction,
            } => write!(
                f,
                "changes too much: {changed} of the zone's {of} records removed or replaced in \
                 one version, at most {allowed} allowed (guard.max_change_fraction = \
                 {max_fraction}); split the change or find out where it comes from"
            ),
            Reason::VelocityExceeded {
                name,
                removed_in_window,
                proposed,
                max,
                window_ms,
            } => write!(
                f,
                "velocity exceeded: {name} lost {removed_in_window} records in the last \
                 {window_ms} ms and this version removes {proposed} more, at most {max} per \
                 window (guard.max_removals_per_window); wait or find out why it keeps \
                 shrinking"
            ),
            Reason::InvalidData { problem } => write!(f, "invalid data: {problem}"),
            Reason::StaleBase { plan_base, active } => write!(
                f,
                "stale base: planned from generation {} but generation {} is active; re-read \
                 and re-plan",
                show(plan_base),
                show(active)
            ),
            Reason::GenerationNotAbove { base, new } => write!(
                f,
                "generation {new} is not above the active generation {base}; a ref only moves \
                 forward"
            ),
        }
    }
}

fn show(generation: &Option<Generation>) -> String {
    generation.map_or_else(|| "none".to_string(), |g| g.to_string())
}

#[cfg(test)]
mod tests;
