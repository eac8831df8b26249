//! # validator — independent wire-level checks, canary promotion, rollback to last good
//!
//! Where it sits: beside the flow, looking at what is *served*:
//! `server ──DNS──▶ validator ──(violation)──▶ rollback (CAS) ──▶ store`, and
//! `enactor ──CAS canary──▶ store ──▶ canary listener ──DNS──▶ validator ──promote (CAS)──▶ active`.
//!
//! * [`check`]: pure checks of (observations, expectation, now) → [`Finding`]s: the served
//!   SOA serial keeps up with the active generation within a lag bound, every protected
//!   name answers with at least its floor, every answered address is a configured backend,
//!   and the answer agrees with the validator's own health view within a tolerance.
//! * [`client`]: the DNS client (hickory-proto messages over tokio UDP and TCP sockets).
//! * [`GoodTracker`]: the last known good — the newest generation that passed every check
//!   while active for `good_after_ms`; persisted as a pin and a `validated-good` audit entry,
//!   replayed at start ([`replay_good`]).
//! * [`client::observe_in_process`]: the same questions asked of a [`server::Catalog`]
//!   through the server's own message handler, without sockets (the simulation's wire).
//! * [`round`]: one zone's round without I/O — observations and what the store said in,
//!   findings and the writes to make out — run by the shell and the simulation alike.
//! * [`roll_back`]: the repair path, small and synchronous: trip the breaker, restore the
//!   newest readable good content as a new generation by compare-and-swap, audit it. It
//!   shares nothing with the enactor's plan path except the store's CAS.
//! * [`Validator`] / [`spawn`]: the async shell: its own [`health::HealthMonitor`], one round
//!   every `interval_ms` (and on every store change), queries, decides, acts.
//!
//! The one design decision to know: **the validator believes the wire, not the store.** What
//! is served is learned only by asking the servers over UDP and TCP; the store supplies only
//! the expectation (which generation and serial should be served) and the content to restore.
//! A state the store cannot show (a ref to a missing version, corrupt content) is itself a
//! finding, so the repair works from every state the store can be in.

pub mod check;
pub mod client;
mod good;
pub mod limits;
pub mod rollback;
pub mod round;
mod shell;

pub use check::{
    check, Expectation, Finding, FindingKind, Observation, Reply, Severity, Target, Transport,
};
pub use good::{replay_good, GoodTracker};
pub use rollback::{roll_back, RollbackError, RolledBack};
pub use shell::{
    audit_findings, fresh_findings, pin_restored, record_good, repair, spawn, target_of, Repair,
    RepairMemory, RepairRound, RoundReport, Validator, ValidatorConfig, ValidatorHandle,
    ValidatorReloader, ZoneReport, ZoneToValidate,
};

/// Actor name of the validator in the audit log.
pub const VALIDATOR_ACTOR: &str = "validator";

/// The `action` words of the audit entries the validator writes.
pub mod actions {
    /// A check failed; the reason is the finding.
    pub const FINDING: &str = "validator-finding";
    /// Active was restored to the last known good (from = the bad generation, to = the new
    /// one; the version's provenance names the good generation).
    pub const ROLLBACK: &str = "rollback";
    /// A generation passed validation while active for `good_after_ms`: the last known good.
    pub const VALIDATED_GOOD: &str = "validated-good";
}
