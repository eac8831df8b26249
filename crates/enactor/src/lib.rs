//! # enactor — applies guarded plans to the store; the control loop around planner and guard
//!
//! Where it sits:
//! `HealthView ──▶ ControlLoop (planner::plan, guard::judge) ──▶ PlanBoard ──▶ Enactor ×N ──CAS──▶ store`.
//!
//! * [`ControlLoop`]: on every health change, re-plan request or tick, plans each zone whose
//!   breaker allows automation against its active version, judges the plan, and publishes
//!   accepted plans to the [`PlanBoard`]. A refusal trips the zone's breaker and is audited.
//!   [`spawn`] starts it with its enactors and returns a [`ControlHandle`].
//! * [`PlanBoard`]: the newest [`GuardedPlan`] per zone (a `tokio::sync::watch` each).
//! * [`Enactor`]: one of N independent tasks; takes each new plan once, [`decide`]s, commits
//!   it as automation with compare-and-swap from the plan's base, then cleans up by
//!   reachability. Every store call runs on the blocking pool.
//! * [`decide`], [`after_failure`]: the pure decisions (apply / drop as stale / re-plan).
//! * [`submit_operator_change`]: a person's change, judged by the same guard; only an
//!   audited override may go below a floor.
//! * Canary mode ([`spawn_with`], [`SpawnOptions`]): enactors commit to the `canary` ref;
//!   [`promote_canary`] moves `active` to it by compare-and-swap from its base, only with the
//!   validator's [`CanaryPassed`]; [`refuse_canary`] refuses a failed one and trips the
//!   breaker.
//! * [`StaticLayer`]: who owns which records. Endpoints own the address sets at their
//!   names; every other set belongs to the zone file and the operator, and the planner
//!   carries it over from the base version, so an operator's fix is not planned away.
//! * [`RemovalLedger`]: recent removals for the velocity limit, derived from the store's
//!   history, so a restart is at worst more conservative.
//!
//! The one design decision to know: **fencing is a compare-and-swap inside the store's
//! commit transaction, and plans are never retried, only re-planned.** An enactor may look
//! at the zone, stall for any time, and write later: the store compares the plan's base with
//! the active ref in the same transaction that moves it, so a stale plan loses with a
//! conflict and is dropped; the enactor asks the control loop for a new plan computed (and
//! judged) against what is active now. Clean-up runs in the store and deletes by
//! reachability, so it cannot delete what is live. The breaker is checked in the same
//! transaction, so a frozen zone stays frozen however many enactors race.

mod board;
mod cache;
mod canary;
mod control;
mod decision;
mod enactor;
mod operator;
mod removals;
mod statics;

pub use board::{GuardedPlan, PlanBoard};
pub use cache::ContentCache;
pub use canary::{
    decide_promotion, promote_canary, refuse_canary, CanaryPassed, PromotionDecision,
};
pub use control::{
    spawn, spawn_with, ControlConfig, ControlHandle, ControlLoop, Convergence, SpawnOptions,
    ZonePlan, ZoneRound, CONTROL_ACTOR,
};
pub use decision::{after_failure, decide, AfterFailure, Decision};
pub use enactor::{Enactor, Observer, Outcome, Prepared};
pub use operator::{
    preview_operator_change, submit_operator_change, OperatorChange, OperatorError, OperatorPreview,
};
pub use removals::RemovalLedger;
pub use statics::{source_of, Start, StaticLayer};
