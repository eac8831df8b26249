//! The checkers, run after every step against what a server would load: the active version's
//! content, read through a client of the store that no fault touches. They call the same
//! invariant functions as the guard and the store (`model::invariants`).
//!
//! A bad state a fault wrote on purpose (a rogue write, an active ref to a deleted version, a
//! bad canary) is the validator's to repair: the checkers tolerate it for
//! [`REPAIR_BOUND_STEPS`](crate::validate::REPAIR_BOUND_STEPS) steps, then fail with
//! `repair-bound`; when it ends with a rollback, they check the repair itself.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use model::invariants::{self, Violation as ModelViolation};
use model::{Breaker, EndpointConfig, Generation, Name, Provenance, Refs, ZoneContent};
use store::{actions, AuditQuery, Store, StoreError};

use crate::validate::REPAIR_BOUND_STEPS;

/// One invariant of the safety contract, as the simulation names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Contract 5: no protected name is served below its floor (an empty endpoint is the
    /// October outcome).
    NeverEmpty,
    /// Contract 2: the active generation never decreases (and the active ref never clears).
    GenerationMonotonic,
    /// Contract 4/8: the active version exists.
    ActiveExists,
    /// Contract 4: the last K versions that were active exist.
    LastKExist,
    /// Contract 1: what is served is exactly one committed version (its content hash).
    ServedIsCommitted,
    /// Contract 7: content the guard refused for a base never becomes active on that base.
    RefusedNeverActive,
    /// Contract 8: after the faults stop, the newest acceptable plan is reached within the
    /// bound, or the zone is frozen with a reason.
    Liveness,
    /// Contract 9's policy: a protected name answers only its configured backends.
    ConfiguredBackends,
    /// Contracts 8 and 9: a bad state written past the planner and the guard is gone within
    /// the repair bound.
    RepairBound,
    /// Contracts 3, 7 and 10: a rollback restores the last known good's content, trips the
    /// breaker and is in the audit log.
    RepairedToGood,
    /// Canary mode: a canary that fails validation never becomes active.
    BadCanaryNeverActive,
    /// What a server answers (patched, carried or pre-encoded) is what the library path
    /// answers from a whole build of the version it serves.
    ServedAnswers,
    /// Several nodes: a backend that only a minority of nodes sees down (they are cut off
    /// from it) stays in every plan any node publishes.
    QuorumHolds,
}

impl Invariant {
    /// The short name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::NeverEmpty => "never-empty",
            Invariant::GenerationMonotonic => "generation-monotonic",
            Invariant::ActiveExists => "active-exists",
            Invariant::LastKExist => "last-k-exist",
            Invariant::ServedIsCommitted => "served-is-committed",
            Invariant::RefusedNeverActive => "refused-never-active",
            Invariant::Liveness => "liveness",
            Invariant::ConfiguredBackends => "configured-backends",
            Invariant::RepairBound => "repair-bound",
            Invariant::RepairedToGood => "repaired-to-good",
            Invariant::BadCanaryNeverActive => "bad-canary-never-active",
            Invariant::ServedAnswers => "served-answers",
            Invariant::QuorumHolds => "quorum-holds",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated invariant and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }

    /// Whether this is about the content served (what the validator repairs).
    fn is_bad_content(&self) -> bool {
        matches!(
            self.invariant,
            Invariant::NeverEmpty | Invariant::ConfiguredBackends | Invariant::ActiveExists
        )
    }

    /// Whether this is the October outcome: a protected name with no address at all.
    pub fn is_empty_endpoint(&self) -> bool {
        self.invariant == Invariant::NeverEmpty && self.detail.contains("empty endpoint")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// One move of the active ref, from the audit log.
#[derive(Debug, Clone)]
struct RefMove {
    from: Option<Generation>,
    to: Generation,
    actor: String,
}

/// A bad state a fault wrote on purpose, waiting for its repair.
#[derive(Debug, Clone)]
struct Repair {
    what: String,
    step: u64,
}

/// Repairs the checkers saw end, by who ended them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// By the validator's rollback.
    pub by_rollback: u64,
    /// By the pipeline (a plan applied over the bad state) before the validator got to it.
    pub by_pipeline: u64,
    /// Bad canaries refused (the breaker tripped) or replaced before promotion.
    pub canaries: u64,
}

/// What the checkers remember between steps.
#[derive(Debug)]
pub struct Checker {
    zone: Name,
    endpoints: Vec<EndpointConfig>,
    keep_last: usize,
    last_active: Option<Generation>,
    audit_cursor: u64,
    /// Generations that were ever active, in the order they became active.
    ever_active: Vec<Generation>,
    /// Content the guard refused, with the base it was judged against, and not accepted on
    /// that base since.
    refused: Vec<(Option<Generation>, ZoneContent)>,
    /// Actors whose writes bypass the guard on purpose (the faults' rogue writer).
    rogue_actors: Vec<String>,
    /// The bad state waiting for its repair.
    repair: Option<Repair>,
    /// Generations a fault deleted (not clean-up): the last-K checker does not blame them.
    deleted_by_fault: BTreeSet<Generation>,
    /// Canaries a fault wrote that fail validation: never active.
    bad_canaries: Vec<Generation>,
    /// The newest bad canary and the step it was written, until refused or replaced.
    pending_canary: Option<(Generation, u64)>,
    /// Generations the audit log records as rollbacks since the last step.
    rollbacks: Vec<Generation>,
    pub repairs: Repairs,
}

impl Checker {
    pub fn new(zone: Name, endpoints: Vec<EndpointConfig>, keep_last: usize) -> Checker {
        Checker {
            zone,
            endpoints,
            keep_last,
            last_active: None,
            audit_cursor: 0,
            ever_active: Vec::new(),
            refused: Vec::new(),
            rogue_actors: Vec::new(),
            repair: None,
            deleted_by_fault: BTreeSet::new(),
            bad_canaries: Vec::new(),
            pending_canary: None,
            rollbacks: Vec::new(),
            repairs: Repairs::default(),
        }
    }

    /// Writes by `actor` bypass the guard on purpose: not judged as refused content.
    pub fn rogue_actor(&mut self, actor: &str) {
        self.rogue_actors.push(actor.to_string());
    }

    /// A fault just wrote a bad active state at `step` (what it did, for the report): the
    /// validator has [`REPAIR_BOUND_STEPS`] steps to repair it.
    pub fn bad_state_written(&mut self, what: impl Into<String>, step: u64) {
        self.repair = Some(Repair {
            what: what.into(),
            step,
        });
    }

    /// A fault deleted `generation` (clean-up did not).
    pub fn deleted_by_fault(&mut self, generation: Generation) {
        self.deleted_by_fault.insert(generation);
    }

    /// A fault wrote `canary`, which fails validation, at `step`.
    pub fn bad_canary_written(&mut self, canary: Generation, step: u64) {
        self.bad_canaries.push(canary);
        self.pending_canary = Some((canary, step));
    }

    /// Whether a bad state or canary written by a fault is still waiting for its repair.
    pub fn repair_pending(&self) -> bool {
        self.repair.is_some() || self.pending_canary.is_some()
    }

    /// The guard refused `content` as the successor of `base`.
    pub fn refused(&mut self, base: Option<Generation>, content: ZoneContent) {
        self.refused.push((base, content));
    }

    /// The guard accepted `content` on `base`: an identical earlier refusal is history.
    pub fn accepted(&mut self, base: Option<Generation>, content: &ZoneContent) {
        self.refused
            .retain(|(refused_base, refused)| !(*refused_base == base && same(refused, content)));
    }

    /// Every invariant, checked against the store as it is now, after step `step`.
    pub fn check(&mut self, store: &dyn Store, step: u64) -> Vec<Violation> {
        let mut found = Vec::new();
        let moves = match self.new_ref_moves(store) {
            Ok(moves) => moves,
            Err(error) => {
                return vec![Violation::new(
                    Invariant::ServedIsCommitted,
                    format!("the audit log cannot be read: {error}"),
                )]
            }
        };
        let refs = match store.refs(&self.zone) {
            Ok(refs) => refs,
            Err(error) => {
                return vec![Violation::new(
                    Invariant::ActiveExists,
                    format!("the refs cannot be read: {error}"),
                )]
            }
        };
        let active = refs.active;
        self.check_monotonic(active, &mut found);
        self.check_refused(store, &moves, &mut found);
        let mut served = Vec::new();
        if let Some(active) = active {
            self.check_served(store, active, &mut served);
        }
        let (bad, other): (Vec<Violation>, Vec<Violation>) =
            served.into_iter().partition(Violation::is_bad_content);
        found.extend(other);
        self.check_repair(store, refs, &moves, bad, step, &mut found);
        self.check_canaries(store, refs, &moves, step, &mut found);
        self.check_last_k(store, &mut found);
        found
    }

    /// Bad content is a violation at once, unless a fault wrote it: then it is tolerated for
    /// the repair bound, and a rollback that ends it must have restored good content.
    fn check_repair(
        &mut self,
        store: &dyn Store,
        refs: Refs,
        moves: &[RefMove],
        bad: Vec<Violation>,
        step: u64,
        found: &mut Vec<Violation>,
    ) {
        let Some(repair) = &self.repair else {
            found.extend(bad);
            return;
        };
        let waited = step.saturating_sub(repair.step);
        if !bad.is_empty() {
            if waited > REPAIR_BOUND_STEPS {
                let details: Vec<String> = bad.iter().map(ToString::to_string).collect();
                found.push(Violation::new(
                    Invariant::RepairBound,
                    format!(
                        "{} at step {} still serves bad content {waited} steps later (bound \
                         {REPAIR_BOUND_STEPS}): {}",
                        repair.what,
                        repair.step,
                        details.join("; ")
                    ),
                ));
            }
            return;
        }
        self.repair = None;
        let Some(active) = refs.active else { return };
        let rolled_back = moves
            .iter()
            .any(|m| m.to == active && m.actor == validator::VALIDATOR_ACTOR);
        if !rolled_back {
            self.repairs.by_pipeline += 1;
            return;
        }
        self.repairs.by_rollback += 1;
        if let Err(problem) = self.check_rollback(store, active) {
            found.push(Violation::new(Invariant::RepairedToGood, problem));
        }
    }

    /// A rollback to `active`: its provenance names a known good generation whose content it
    /// answers, the breaker is tripped, and the audit log records the rollback.
    fn check_rollback(&self, store: &dyn Store, active: Generation) -> Result<(), String> {
        let version = store
            .version(&self.zone, active)
            .map_err(|error| format!("the rollback's generation {active}: {error}"))?;
        let Provenance::Rollback { to: good } = version.provenance else {
            return Err(format!(
                "generation {active}, written by the validator, is not a rollback: {:?}",
                version.provenance
            ));
        };
        let restored = store
            .content(&self.zone, active)
            .map_err(|error| format!("the rollback's content: {error}"))?;
        let original = store
            .content(&self.zone, good)
            .map_err(|error| format!("the last known good {good}: {error}"))?;
        if !same(&original, &restored) {
            return Err(format!(
                "generation {active} restores generation {good} but answers differently"
            ));
        }
        match store.breaker(&self.zone) {
            Ok(Breaker::Tripped { .. }) => {}
            other => return Err(format!("after the rollback the breaker is {other:?}")),
        }
        if !self.rollbacks.contains(&active) {
            return Err(format!(
                "the audit log has no `{}` entry for generation {active}",
                validator::actions::ROLLBACK
            ));
        }
        Ok(())
    }

    /// A canary that fails validation never becomes active, and is refused (the breaker
    /// trips) or replaced within the repair bound.
    fn check_canaries(
        &mut self,
        store: &dyn Store,
        refs: Refs,
        moves: &[RefMove],
        step: u64,
        found: &mut Vec<Violation>,
    ) {
        for canary in &self.bad_canaries {
            if refs.active == Some(*canary) || moves.iter().any(|m| m.to == *canary) {
                found.push(Violation::new(
                    Invariant::BadCanaryNeverActive,
                    format!("generation {canary}, a canary that empties a protected name, became active"),
                ));
            }
        }
        let Some((canary, since)) = self.pending_canary else {
            return;
        };
        let tripped = matches!(store.breaker(&self.zone), Ok(Breaker::Tripped { .. }));
        if tripped || refs.canary != Some(canary) {
            self.pending_canary = None;
            self.repairs.canaries += 1;
        } else if step.saturating_sub(since) > REPAIR_BOUND_STEPS {
            found.push(Violation::new(
                Invariant::RepairBound,
                format!(
                    "canary {canary}, written at step {since}, is neither refused nor replaced \
                     after {REPAIR_BOUND_STEPS} steps"
                ),
            ));
        }
    }

    fn check_monotonic(&mut self, active: Option<Generation>, found: &mut Vec<Violation>) {
        match (self.last_active, active) {
            (Some(before), None) => found.push(Violation::new(
                Invariant::GenerationMonotonic,
                format!("the active ref was cleared (it was at generation {before})"),
            )),
            (before, Some(now)) if before != Some(now) => {
                if let Err(violation) = invariants::check_generation_monotonic(before, now) {
                    found.push(Violation::new(
                        Invariant::GenerationMonotonic,
                        violation.to_string(),
                    ));
                }
            }
            _ => {}
        }
        self.last_active = active;
    }

    /// What a server would load: the active version's content. A version that is gone
    /// leaves the server nothing to answer with.
    fn check_served(&self, store: &dyn Store, active: Generation, found: &mut Vec<Violation>) {
        let served = match (
            store.version(&self.zone, active),
            store.content(&self.zone, active),
        ) {
            (Ok(version), Ok(content)) => {
                let hash = content.hash();
                if hash != version.content_hash {
                    found.push(Violation::new(
                        Invariant::ServedIsCommitted,
                        format!(
                            "generation {active} serves content hashing to {hash}, committed \
                             as {}",
                            version.content_hash
                        ),
                    ));
                }
                content
            }
            (Err(StoreError::NotFound { .. }), _) | (_, Err(StoreError::NotFound { .. })) => {
                found.push(Violation::new(
                    Invariant::ActiveExists,
                    format!("the active ref points at generation {active}, which is gone"),
                ));
                ZoneContent::new(self.zone.clone())
            }
            (Err(error), _) | (_, Err(error)) => {
                found.push(Violation::new(
                    Invariant::ServedIsCommitted,
                    format!("generation {active} cannot be read: {error}"),
                ));
                return;
            }
        };
        for endpoint in &self.endpoints {
            let configured: BTreeSet<IpAddr> =
                endpoint.backends.iter().map(|b| b.address).collect();
            let foreign: Vec<String> = endpoint
                .answers_in(&served)
                .difference(&configured)
                .map(ToString::to_string)
                .collect();
            if !foreign.is_empty() {
                found.push(Violation::new(
                    Invariant::ConfiguredBackends,
                    format!(
                        "{} answers {}, not among its backends",
                        endpoint.name,
                        foreign.join(", ")
                    ),
                ));
            }
        }
        for violation in invariants::never_empty_violations(&served, &self.endpoints) {
            if let ModelViolation::BelowFloor {
                name,
                answers,
                min_answers,
            } = violation
            {
                let empty = if answers == 0 {
                    " (empty endpoint)"
                } else {
                    ""
                };
                found.push(Violation::new(
                    Invariant::NeverEmpty,
                    format!(
                        "{name} is served with {answers} address records, below its floor of \
                         {min_answers}{empty}"
                    ),
                ));
            }
        }
    }

    /// Judges automation's moves: a rogue writer's and a rollback's are not (they bypass the
    /// guard by design, and a rollback is not automation).
    fn check_refused(&self, store: &dyn Store, moves: &[RefMove], found: &mut Vec<Violation>) {
        if self.refused.is_empty() {
            return;
        }
        for RefMove { from, to, actor } in moves {
            if self.rogue_actors.contains(actor) {
                continue;
            }
            let Ok(version) = store.version(&self.zone, *to) else {
                continue; // already gone: the other checkers say so
            };
            if matches!(version.provenance, Provenance::Rollback { .. }) {
                continue;
            }
            let Ok(content) = store.content(&self.zone, *to) else {
                continue;
            };
            if self
                .refused
                .iter()
                .any(|(base, refused)| base == from && same(refused, &content))
            {
                found.push(Violation::new(
                    Invariant::RefusedNeverActive,
                    format!(
                        "generation {to} is content the guard refused on base {}",
                        show(*from)
                    ),
                ));
            }
        }
    }

    fn check_last_k(&self, store: &dyn Store, found: &mut Vec<Violation>) {
        let mut seen = Vec::new();
        for generation in self.ever_active.iter().rev() {
            if seen.len() == self.keep_last {
                break;
            }
            if seen.contains(generation) {
                continue;
            }
            seen.push(*generation);
            if self.deleted_by_fault.contains(generation) {
                continue;
            }
            if let Err(StoreError::NotFound { .. }) = store.version(&self.zone, *generation) {
                found.push(Violation::new(
                    Invariant::LastKExist,
                    format!(
                        "generation {generation}, one of the last {} that were active, is gone",
                        self.keep_last
                    ),
                ));
            }
        }
    }

    /// Ref moves of the active ref since the last step, from the audit log (and the
    /// rollbacks it records).
    fn new_ref_moves(&mut self, store: &dyn Store) -> Result<Vec<RefMove>, StoreError> {
        let mut moves = Vec::new();
        self.rollbacks.clear();
        loop {
            let page = store.audit(&AuditQuery {
                zone: Some(self.zone.clone()),
                after_sequence: Some(self.audit_cursor),
                ..AuditQuery::default()
            })?;
            let Some(last) = page.last() else {
                return Ok(moves);
            };
            self.audit_cursor = last.sequence;
            for entry in page {
                if entry.action == actions::REF_MOVE {
                    if let Some(to) = entry.to {
                        self.ever_active.push(to);
                        moves.push(RefMove {
                            from: entry.from,
                            to,
                            actor: entry.actor,
                        });
                    }
                } else if entry.action == validator::actions::ROLLBACK {
                    self.rollbacks.extend(entry.to);
                }
            }
        }
    }
}

/// Whether two contents answer the same (the SOA serial is the store's business).
pub fn same(planned: &ZoneContent, stored: &ZoneContent) -> bool {
    match stored.serial() {
        Some(serial) => planned.with_serial(serial) == *stored,
        None => planned == stored,
    }
}

fn show(generation: Option<Generation>) -> String {
    generation.map_or_else(|| "none".to_string(), |g| format!("g{g}"))
}
