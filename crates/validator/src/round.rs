//! One zone's round without I/O: what the store said and what the servers answered go in,
//! the findings and what to write come out ([`judge_active`], [`judge_canary`]); the writes
//! are carried out by [`write_active`] and [`write_canary`], synchronous store calls. The
//! async shell ([`crate::Validator`]) and the simulation run the very same steps: only how
//! they ask the servers (sockets, or the server's handler in process) and when they call
//! the store (a blocking thread, or inline) differ.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use enactor::{promote_canary, refuse_canary, CanaryPassed, PromotionDecision};
use model::{EndpointConfig, Generation, HealthView, Name, Provenance, Version};
use store::{Store, StoreError};

use crate::check::{
    self, has_violation, serves_target, Expectation, Finding, Observation, Reply, Severity,
};
use crate::good::GoodTracker;
use crate::shell::{
    audit_findings, fresh_findings, record_good, repair, target_of, Repair, RepairMemory,
    RepairRound,
};
use crate::VALIDATOR_ACTOR;

/// What the validator remembers of a zone between rounds.
#[derive(Debug, Clone, Default)]
pub struct ZoneMemory {
    /// Our server has been seen serving the zone since the validator started.
    pub served_before: bool,
    /// The last known good; `None` until replayed from the audit log (or first needed).
    pub good: Option<GoodTracker>,
    /// The active and the canary generation, with when they were first seen as such.
    pub active_seen: Option<(Generation, u64)>,
    pub canary_seen: Option<(Generation, u64)>,
    /// The findings reported while they persist ([`fresh_findings`]).
    pub reported: BTreeSet<String>,
    pub repair: RepairMemory,
    /// A canary refused by this validator: not checked again.
    pub refused_canary: Option<Generation>,
}

impl ZoneMemory {
    /// The last known good, made empty (nothing known good) if not replayed yet.
    fn good(&mut self, good_after_ms: u64) -> &mut GoodTracker {
        self.good
            .get_or_insert_with(|| GoodTracker::new(good_after_ms, Vec::new()))
    }
}

/// The bounds the checks and decisions use (the validator's configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub serial_lag_ms: u64,
    pub good_after_ms: u64,
    pub health_grace_ms: u64,
    pub health_tolerance: f64,
}

/// A round of the active version: what is known of it and what the servers answered.
#[derive(Debug, Clone, Copy)]
pub struct ActiveRound<'a> {
    pub zone: &'a Name,
    pub active: Generation,
    /// The active version as the store showed it (`None`: not read).
    pub version: Option<&'a Result<Version, StoreError>>,
    pub observations: &'a [Observation],
    /// The protected names asked this round.
    pub endpoints: &'a [EndpointConfig],
    /// Our own server: its violations are repaired; other servers' are only reported.
    pub our_server: SocketAddr,
    /// The validator's own health view.
    pub health: &'a HealthView,
    pub bounds: Bounds,
    pub now_ms: u64,
}

/// What a round of the active version found and decided.
#[derive(Debug, Clone)]
pub struct ActiveVerdict {
    pub findings: Vec<Finding>,
    /// Findings not reported before: audited once each.
    pub fresh: Vec<Finding>,
    pub next: ActiveNext,
}

/// What to do after a round of the active version.
#[derive(Debug, Clone, PartialEq)]
pub enum ActiveNext {
    /// Our server serves a violation: repair ([`repair`]: roll back unless cooling down).
    Repair {
        /// The violations, once each, as one sentence.
        reason: String,
        provenance: Option<Provenance>,
    },
    /// Clean and on target long enough: `newly` is the last known good, `previous` (pinned
    /// by this validator before) is unpinned.
    RecordGood {
        newly: Generation,
        previous: Option<Generation>,
    },
    /// Clean and on target; nothing new to record.
    Nothing,
    /// What should be served is not on the wire yet: check again soon.
    Recheck,
}

/// Judges the active version from what was observed: runs the checks, and decides between
/// repair, a new last known good, and checking again. Updates `memory` (when the
/// generation was first seen, whether our server served, what was reported, the last
/// known good's clock and the pin it will hold).
pub fn judge_active(memory: &mut ZoneMemory, round: ActiveRound<'_>) -> ActiveVerdict {
    let ActiveRound {
        zone,
        active,
        version,
        observations,
        endpoints,
        our_server,
        health,
        bounds,
        now_ms,
    } = round;
    let target = target_of(active, version);
    let since = seen_since(&mut memory.active_seen, active, now_ms);
    memory.served_before |= observations.iter().any(|observation| {
        observation.server == our_server && matches!(observation.serial, Reply::Answer(_))
    });
    let expectation = Expectation {
        zone,
        target: target.clone(),
        target_since_ms: since,
        served_before: memory.served_before,
        endpoints,
        health,
        serial_lag_ms: bounds.serial_lag_ms,
        health_grace_ms: bounds.health_grace_ms,
        health_tolerance: bounds.health_tolerance,
    };
    let mut findings = check::check(observations, &expectation, now_ms);
    let provenance = version
        .and_then(|version| version.as_ref().ok())
        .map(|version| version.provenance.clone());
    // A version forced below a floor: what the override allowed is a warning.
    let forced = provenance == Some(Provenance::Forced);
    if forced {
        findings = check::under_override(findings);
    }
    let fresh = fresh_findings(&mut memory.reported, findings.iter());
    let ours = |finding: &&Finding| {
        finding
            .server
            .is_none_or(|(server, _)| server == our_server)
    };
    let repair_needed: Vec<&Finding> = findings
        .iter()
        .filter(|finding| finding.severity == Severity::Violation)
        .filter(ours)
        .collect();
    let next = if !repair_needed.is_empty() {
        ActiveNext::Repair {
            reason: reason(repair_needed.into_iter()),
            provenance,
        }
    } else {
        let our_observations: Vec<Observation> = observations
            .iter()
            .filter(|observation| observation.server == our_server)
            .cloned()
            .collect();
        match target {
            Ok(target) if serves_target(&our_observations, target) => {
                // A forced version is never a known good one: a rollback must not restore
                // a name below its floor.
                let clean = !has_violation(&findings) && !forced;
                match memory
                    .good(bounds.good_after_ms)
                    .observe(active, clean, now_ms)
                {
                    Some(newly) => ActiveNext::RecordGood {
                        newly,
                        previous: memory.repair.pinned_by_us.replace(newly),
                    },
                    None => ActiveNext::Nothing,
                }
            }
            _ => ActiveNext::Recheck,
        }
    };
    ActiveVerdict {
        findings,
        fresh,
        next,
    }
}

/// What [`write_active`] did.
#[derive(Debug)]
pub struct ActiveWrites {
    /// Auditing the fresh findings.
    pub audited: Result<(), StoreError>,
    /// The repair, when one was decided.
    pub repair: Option<Repair>,
    /// Recording a new last known good, when one was decided.
    pub recorded: Option<(Generation, Result<(), StoreError>)>,
}

/// Carries out a verdict of [`judge_active`]: audits its fresh findings, then repairs or
/// records the new last known good. `cooldown_ms`: how long a generation rolled back is
/// left alone.
pub fn write_active(
    store: &dyn Store,
    zone: &Name,
    memory: &mut ZoneMemory,
    active: Generation,
    verdict: &ActiveVerdict,
    (cooldown_ms, good_after_ms): (u64, u64),
    now_ms: u64,
) -> ActiveWrites {
    let audited = audit_findings(store, zone, Some(active), &verdict.fresh, now_ms);
    let mut writes = ActiveWrites {
        audited,
        repair: None,
        recorded: None,
    };
    match &verdict.next {
        ActiveNext::Repair { reason, provenance } => {
            let mut good = memory.good(good_after_ms).clone();
            let round = RepairRound {
                active,
                provenance: provenance.as_ref(),
                reason,
                cooldown_ms,
                now_ms,
            };
            writes.repair = Some(repair(store, zone, &mut good, &mut memory.repair, round));
            memory.good = Some(good);
        }
        ActiveNext::RecordGood { newly, previous } => {
            writes.recorded = Some((*newly, record_good(store, zone, *newly, *previous, now_ms)));
        }
        ActiveNext::Nothing | ActiveNext::Recheck => {}
    }
    writes
}

/// A round of a pending canary on the canary listener.
#[derive(Debug, Clone, Copy)]
pub struct CanaryRound<'a> {
    pub zone: &'a Name,
    pub canary: Generation,
    /// The canary version as the store showed it (`None`: not read).
    pub version: Option<&'a Result<Version, StoreError>>,
    pub observations: &'a [Observation],
    pub endpoints: &'a [EndpointConfig],
    pub health: &'a HealthView,
    pub bounds: Bounds,
    pub now_ms: u64,
}

/// What a round of a canary found and decided.
#[derive(Debug, Clone)]
pub struct CanaryVerdict {
    pub findings: Vec<Finding>,
    pub next: CanaryNext,
}

/// What to do with a pending canary.
#[derive(Debug, Clone, PartialEq)]
pub enum CanaryNext {
    /// This validator refused it already.
    StaysRefused,
    /// It serves a violation: refuse it (the breaker trips).
    Refuse { reason: String },
    /// Clean and served on the listener: promote it over `base`, the active generation it
    /// was computed against.
    Promote { base: Option<Generation> },
    /// The store cannot show it: nothing to promote.
    Unreadable,
    /// Not on the listener yet: check again soon.
    Recheck,
}

/// Judges a pending canary from what the canary listener answered.
pub fn judge_canary(memory: &mut ZoneMemory, round: CanaryRound<'_>) -> CanaryVerdict {
    let CanaryRound {
        zone,
        canary,
        version,
        observations,
        endpoints,
        health,
        bounds,
        now_ms,
    } = round;
    let target = target_of(canary, version);
    let since = seen_since(&mut memory.canary_seen, canary, now_ms);
    let expectation = Expectation {
        zone,
        target: target.clone(),
        target_since_ms: since,
        endpoints,
        health,
        serial_lag_ms: bounds.serial_lag_ms,
        served_before: true,
        health_grace_ms: bounds.health_grace_ms,
        health_tolerance: bounds.health_tolerance,
    };
    let findings = check::check(observations, &expectation, now_ms);
    let parent = version
        .and_then(|version| version.as_ref().ok())
        .map(|version| version.parent);
    let next = if memory.refused_canary == Some(canary) {
        CanaryNext::StaysRefused
    } else if has_violation(&findings) {
        CanaryNext::Refuse {
            reason: reason(
                findings
                    .iter()
                    .filter(|finding| finding.severity == Severity::Violation),
            ),
        }
    } else {
        match (target, parent) {
            (Ok(target), Some(base)) if serves_target(observations, target) => {
                CanaryNext::Promote { base }
            }
            (Ok(_), Some(_)) => CanaryNext::Recheck,
            _ => CanaryNext::Unreadable,
        }
    };
    CanaryVerdict { findings, next }
}

/// What [`write_canary`] did.
#[derive(Debug)]
pub enum CanaryWrites {
    Nothing,
    Refused(Result<(), StoreError>),
    Promoted(Result<PromotionDecision, StoreError>),
}

/// Carries out a decision of [`judge_canary`]; a refusal that was written is remembered.
pub fn write_canary(
    store: &dyn Store,
    zone: &Name,
    memory: &mut ZoneMemory,
    canary: Generation,
    next: &CanaryNext,
    (evidence, now_ms): (&str, u64),
) -> CanaryWrites {
    match next {
        CanaryNext::Refuse { reason } => {
            let refused = refuse_canary(store, zone, canary, reason, VALIDATOR_ACTOR, now_ms);
            if refused.is_ok() {
                memory.refused_canary = Some(canary);
            }
            CanaryWrites::Refused(refused)
        }
        CanaryNext::Promote { base } => CanaryWrites::Promoted(promote_canary(
            store,
            &CanaryPassed {
                zone,
                canary,
                base: *base,
                evidence,
            },
            VALIDATOR_ACTOR,
            now_ms,
        )),
        CanaryNext::StaysRefused | CanaryNext::Unreadable | CanaryNext::Recheck => {
            CanaryWrites::Nothing
        }
    }
}

/// When `generation` was first seen in this role (now, if it just changed).
fn seen_since(seen: &mut Option<(Generation, u64)>, generation: Generation, now_ms: u64) -> u64 {
    match *seen {
        Some((g, since)) if g == generation => since,
        _ => {
            *seen = Some((generation, now_ms));
            now_ms
        }
    }
}

/// Violations once each (UDP and TCP, or several servers, usually agree), as one reason.
fn reason<'a>(findings: impl Iterator<Item = &'a Finding>) -> String {
    let mut texts: Vec<String> = Vec::new();
    for finding in findings {
        let mut without_server = finding.clone();
        without_server.server = None;
        let text = without_server.to_string();
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    texts.join("; ")
}
