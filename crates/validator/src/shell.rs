//! The async shell: one round every `interval_ms` (sooner after a store change, and every
//! few milliseconds while an expected generation is not on the wire yet). A round reads the
//! expectation from the store, asks every server over UDP and TCP, runs the pure checks, and
//! acts: audit findings, roll back on a violation in what is active, record the last known
//! good, refuse or promote a pending canary.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use enactor::PromotionDecision;
use health::{HealthError, HealthMonitor, ProbeTarget};
use model::{Clock, EndpointConfig, Generation, HealthView, Name, Provenance, Refs, Version};
use store::{NewAuditEntry, SetPinned, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::check::{Finding, Observation, Severity, Target, Transport};
use crate::good::{replay_good, GoodTracker};
use crate::rollback::{self, roll_back, RollbackError, RolledBack};
use crate::round::{
    judge_active, judge_canary, write_active, write_canary, ActiveNext, ActiveRound, Bounds,
    CanaryNext, CanaryRound, CanaryWrites, ZoneMemory,
};
use crate::{actions, client, limits, VALIDATOR_ACTOR};

/// One zone and its protected names.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneToValidate {
    pub origin: Name,
    pub endpoints: Vec<EndpointConfig>,
}

/// What the validator checks and how. Values are clamped to [`limits`] by [`spawn`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    pub interval_ms: u64,
    /// Protected names asked per round besides the changed ones ([`limits::SAMPLE_NAMES`]).
    pub sample_names: u64,
    pub timeout_ms: u64,
    pub serial_lag_ms: u64,
    pub good_after_ms: u64,
    pub health_grace_ms: u64,
    pub health_tolerance: f64,
    /// Our own server: violations seen here are repaired.
    pub server: SocketAddr,
    /// Other servers of the same zones (secondaries): their findings are recorded.
    pub secondaries: Vec<SocketAddr>,
    /// The canary listener (canary mode): pending canaries are checked here and promoted.
    pub canary: Option<SocketAddr>,
    pub zones: Vec<ZoneToValidate>,
    /// `false`: only observe and report (no audit, rollback, pin, promotion).
    pub repair: bool,
}

impl ValidatorConfig {
    /// Defaults for everything but the server and the zones.
    pub fn new(server: SocketAddr, zones: Vec<ZoneToValidate>) -> ValidatorConfig {
        ValidatorConfig {
            interval_ms: limits::INTERVAL_MS.default,
            sample_names: limits::SAMPLE_NAMES.default,
            timeout_ms: limits::QUERY_TIMEOUT_MS.default,
            serial_lag_ms: limits::SERIAL_LAG_MS.default,
            good_after_ms: limits::GOOD_AFTER_MS.default,
            health_grace_ms: limits::HEALTH_GRACE_MS.default,
            health_tolerance: limits::HEALTH_TOLERANCE.default,
            server,
            secondaries: Vec::new(),
            canary: None,
            zones,
            repair: true,
        }
    }

    fn clamped(mut self) -> ValidatorConfig {
        self.interval_ms = limits::INTERVAL_MS.clamp(Some(self.interval_ms));
        self.sample_names = limits::SAMPLE_NAMES.clamp(Some(self.sample_names));
        self.timeout_ms = limits::QUERY_TIMEOUT_MS.clamp(Some(self.timeout_ms));
        self.serial_lag_ms = limits::SERIAL_LAG_MS.clamp(Some(self.serial_lag_ms));
        self.good_after_ms = limits::GOOD_AFTER_MS.clamp(Some(self.good_after_ms));
        self.health_grace_ms = limits::HEALTH_GRACE_MS.clamp(Some(self.health_grace_ms));
        self.health_tolerance = limits::HEALTH_TOLERANCE.clamp(Some(self.health_tolerance));
        self.secondaries.truncate(limits::SERVERS.max as usize);
        self
    }
}

/// What one round found and did, per zone.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    pub zones: Vec<ZoneReport>,
    /// An expected generation was not on the wire yet: check again soon.
    pub recheck: bool,
}

#[derive(Debug, Clone)]
pub struct ZoneReport {
    pub zone: Name,
    pub active: Option<Generation>,
    pub findings: Vec<Finding>,
    /// Findings on the canary listener about the pending canary.
    pub canary_findings: Vec<Finding>,
    /// What the round did (rollback, promotion, ...), as sentences.
    pub actions: Vec<String>,
}

/// Per-zone memory between rounds.
#[derive(Debug, Default)]
struct ZoneState {
    /// Where the next round's rotating sample of protected names starts.
    sample_cursor: usize,
    /// The active generation and health view of the last round: what changed since.
    last_active: Option<Generation>,
    last_health: Option<model::HealthView>,
    /// What the round's judgement remembers ([`crate::round`]).
    memory: ZoneMemory,
}

/// What a round read of a zone from the store.
struct ZoneRead {
    refs: Refs,
    /// Owner names changed from the last round's active generation to this one (empty
    /// when it is the same), from the store's recorded changes; `None` when the store
    /// cannot tell cheaply.
    changed_names: Option<Vec<Name>>,
    active: Option<Result<Version, StoreError>>,
    canary: Option<Result<Version, StoreError>>,
    replayed: Option<Vec<Generation>>,
}

/// The validator: its config, its own health view, and what it remembers per zone.
pub struct Validator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ValidatorConfig,
    health: watch::Receiver<HealthView>,
    zones: BTreeMap<String, ZoneState>,
}

impl Validator {
    /// `health` must come from the validator's own monitor, not the planner's.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ValidatorConfig,
        health: watch::Receiver<HealthView>,
    ) -> Validator {
        Validator {
            store,
            clock,
            config: config.clamped(),
            health,
            zones: BTreeMap::new(),
        }
    }

    /// One round over every zone.
    pub async fn round(&mut self) -> RoundReport {
        let mut report = RoundReport::default();
        for zone in self.config.zones.clone() {
            match self.round_zone(&zone).await {
                Ok((zone_report, recheck)) => {
                    report.recheck |= recheck;
                    report.zones.push(zone_report);
                }
                Err(error) => {
                    tracing::warn!(zone = %zone.origin, %error, "validator could not read the store; next round tries again");
                }
            }
        }
        report
    }

    async fn round_zone(
        &mut self,
        zone: &ZoneToValidate,
    ) -> Result<(ZoneReport, bool), StoreError> {
        let key = store::zone_key(&zone.origin);
        let needs_replay = self
            .zones
            .get(&key)
            .is_none_or(|state| state.memory.good.is_none());
        let since = self.zones.get(&key).and_then(|state| state.last_active);
        let read = self.read_zone(&zone.origin, needs_replay, since).await?;
        let now_ms = self.clock.now_ms();
        let timeout = self.timeout();
        let bounds = self.bounds();
        let state = self.zones.entry(key.clone()).or_default();
        if let Some(replayed) = read.replayed {
            state.memory.good = Some(GoodTracker::new(self.config.good_after_ms, replayed));
        }
        let mut report = ZoneReport {
            zone: zone.origin.clone(),
            active: read.refs.active,
            findings: Vec::new(),
            canary_findings: Vec::new(),
            actions: Vec::new(),
        };
        let health = self.health.borrow().clone();
        let Some(active) = read.refs.active else {
            // A zone's first version can only be a canary: check it before anything serves.
            let mut recheck = false;
            if let Some(canary) = read.refs.canary.filter(|_| self.config.canary.is_some()) {
                recheck = self
                    .canary_round(
                        zone,
                        canary,
                        read.canary.as_ref(),
                        &health,
                        now_ms,
                        &mut report,
                    )
                    .await?;
            }
            return Ok((report, recheck));
        };
        let mut servers = vec![self.config.server];
        servers.extend(self.config.secondaries.iter().copied());
        let changed = changed_endpoints(
            &zone.endpoints,
            read.changed_names.as_deref(),
            state.last_health.as_ref(),
            &health,
        );
        let sample = usize::try_from(self.config.sample_names).unwrap_or(usize::MAX);
        let (asked, next_cursor) =
            names_to_ask(&zone.endpoints, &changed, state.sample_cursor, sample);
        state.sample_cursor = next_cursor;
        state.last_active = Some(active);
        state.last_health = Some(health.clone());
        let observations = observe(&servers, &zone.origin, &asked, timeout).await;
        let verdict = judge_active(
            &mut state.memory,
            ActiveRound {
                zone: &zone.origin,
                active,
                version: read.active.as_ref(),
                observations: &observations,
                endpoints: &asked,
                our_server: self.config.server,
                health: &health,
                bounds,
                now_ms,
            },
        );
        report.findings = verdict.findings.clone();
        if !self.config.repair {
            return Ok((report, false));
        }
        for finding in &verdict.fresh {
            tracing::warn!(%finding, severity = ?finding.severity, "validator finding");
        }
        let zone_name = zone.origin.clone();
        let limits = (self.config.serial_lag_ms, self.config.good_after_ms);
        let (mut memory, next) = (state.memory.clone(), verdict.next.clone());
        let (writes, memory) = blocking(&self.store, move |store| {
            let writes = write_active(
                store,
                &zone_name,
                &mut memory,
                active,
                &verdict,
                limits,
                now_ms,
            );
            Ok((writes, memory))
        })
        .await?;
        let state = self.zones.entry(key).or_default();
        state.memory = memory;
        if let Err(error) = writes.audited {
            tracing::warn!(zone = %zone.origin, %error, "auditing the findings failed");
        }
        let mut recheck = false;
        match writes.repair {
            // Check again soon only after a rollback, to confirm the repair on the wire.
            Some(Repair::CoolingDown) => return Ok((report, false)),
            Some(Repair::RolledBack { done, pinned }) => {
                if let Err(error) = pinned {
                    tracing::warn!(zone = %zone.origin, %error, "pinning the restored good failed");
                }
                tracing::warn!(zone = %zone.origin, from = ?done.from, restored = %done.restored, generation = %done.generation, "rolled back to the last known good");
                report.actions.push(format!(
                    "rolled back: generation {} restores {}",
                    done.generation, done.restored
                ));
                return Ok((report, true));
            }
            Some(Repair::Impossible(error)) => {
                tracing::error!(zone = %zone.origin, %error, "rollback impossible");
                report.actions.push(error.to_string());
                return Ok((report, false));
            }
            None => {}
        }
        match writes.recorded {
            Some((newly, Ok(()))) => report
                .actions
                .push(format!("generation {newly} is the last known good")),
            Some((_, Err(error))) => {
                tracing::warn!(zone = %zone.origin, %error, "recording the last known good failed")
            }
            None => recheck = next == ActiveNext::Recheck,
        }

        if let Some(canary) = read.refs.canary.filter(|_| self.config.canary.is_some()) {
            recheck |= self
                .canary_round(
                    zone,
                    canary,
                    read.canary.as_ref(),
                    &health,
                    now_ms,
                    &mut report,
                )
                .await?;
        }
        Ok((report, recheck))
    }

    /// Checks a pending canary on the canary listener against its own generation, then
    /// refuses it (breaker trips) or promotes it. Returns whether to check again soon.
    async fn canary_round(
        &mut self,
        zone: &ZoneToValidate,
        canary: Generation,
        version: Option<&Result<Version, StoreError>>,
        health: &HealthView,
        now_ms: u64,
        report: &mut ZoneReport,
    ) -> Result<bool, StoreError> {
        let Some(listener) = self.config.canary else {
            return Ok(false);
        };
        let bounds = self.bounds();
        let observed = observe(
            &[listener],
            &zone.origin,
            &zone.endpoints,
            Duration::from_millis(self.config.timeout_ms),
        )
        .await;
        let key = store::zone_key(&zone.origin);
        let state = self.zones.entry(key.clone()).or_default();
        let verdict = judge_canary(
            &mut state.memory,
            CanaryRound {
                zone: &zone.origin,
                canary,
                version,
                observations: &observed,
                endpoints: &zone.endpoints,
                health,
                bounds,
                now_ms,
            },
        );
        report.canary_findings = verdict.findings;
        if !self.config.repair {
            return Ok(false);
        }
        let next = verdict.next;
        let zone_name = zone.origin.clone();
        let (mut memory, decided) = (state.memory.clone(), next.clone());
        let (writes, memory) = blocking(&self.store, move |store| {
            let writes = write_canary(
                store,
                &zone_name,
                &mut memory,
                canary,
                &decided,
                (
                    "served on the canary listener over UDP and TCP with every check clean",
                    now_ms,
                ),
            );
            Ok((writes, memory))
        })
        .await?;
        self.zones.entry(key).or_default().memory = memory;
        match writes {
            CanaryWrites::Refused(refused) => {
                refused?;
                tracing::warn!(zone = %zone.origin, %canary, "canary refused; breaker tripped");
                report.actions.push(format!("canary {canary} refused"));
            }
            CanaryWrites::Promoted(Ok(PromotionDecision::Promote)) => {
                tracing::info!(zone = %zone.origin, %canary, "canary promoted");
                report.actions.push(format!("canary {canary} promoted"));
            }
            CanaryWrites::Promoted(Ok(other)) => {
                tracing::debug!(zone = %zone.origin, ?other, "canary not promoted")
            }
            CanaryWrites::Promoted(Err(error)) => {
                tracing::info!(zone = %zone.origin, %error, "canary not promoted")
            }
            CanaryWrites::Nothing => {}
        }
        Ok(next == CanaryNext::Recheck)
    }

    /// The bounds of the round's checks and decisions.
    fn bounds(&self) -> Bounds {
        Bounds {
            serial_lag_ms: self.config.serial_lag_ms,
            good_after_ms: self.config.good_after_ms,
            health_grace_ms: self.config.health_grace_ms,
            health_tolerance: self.config.health_tolerance,
        }
    }

    async fn read_zone(
        &self,
        zone: &Name,
        replay: bool,
        since: Option<Generation>,
    ) -> Result<ZoneRead, StoreError> {
        let zone = zone.clone();
        let canary_mode = self.config.canary.is_some();
        blocking(&self.store, move |store| {
            let refs = store.refs(&zone)?;
            let changed_names = match (since, refs.active) {
                (Some(since), Some(active)) if since == active => Some(Vec::new()),
                (Some(since), Some(active)) if since < active => store
                    .content_changes(&zone, since, active)
                    .ok()
                    .flatten()
                    .map(|changes| {
                        changes
                            .removed
                            .iter()
                            .chain(&changes.added)
                            .map(|set| set.name.clone())
                            .collect()
                    }),
                _ => None,
            };
            let active = refs.active.map(|g| store.version(&zone, g));
            let canary = refs
                .canary
                .filter(|_| canary_mode)
                .map(|g| store.version(&zone, g));
            let replayed = if replay {
                Some(replay_good(store, &zone)?)
            } else {
                None
            };
            Ok(ZoneRead {
                refs,
                changed_names,
                active,
                canary,
                replayed,
            })
        })
        .await
    }

    /// Takes a reloaded configuration: zones and endpoints to check, bounds, servers. What
    /// it remembers of a zone still checked (last known good, last rollback) stays; a zone no
    /// longer checked is forgotten.
    pub fn set_config(&mut self, config: ValidatorConfig) {
        self.config = config.clamped();
        let keep: BTreeSet<String> = self
            .config
            .zones
            .iter()
            .map(|zone| store::zone_key(&zone.origin))
            .collect();
        self.zones.retain(|key, _| keep.contains(key));
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.config.interval_ms)
    }
}

/// What should be served according to the store: `generation` and its serial, or why the
/// store cannot show it (a ref to a missing version is an impossible state, a violation).
pub fn target_of(
    generation: Generation,
    version: Option<&Result<Version, StoreError>>,
) -> Result<Target, String> {
    match version {
        Some(Ok(version)) => Ok(Target {
            generation,
            serial: version.serial,
        }),
        Some(Err(error)) => Err(format!(
            "the ref points at generation {generation}, which cannot be read: {error}"
        )),
        None => Err(format!("generation {generation} was not read")),
    }
}

/// The endpoints whose answers may have changed since the last round: those at a name the
/// store changed, and those with a backend whose verdict in the validator's health view
/// changed. Every endpoint when the store cannot tell what changed or there was no last
/// round.
pub fn changed_endpoints(
    endpoints: &[EndpointConfig],
    changed_names: Option<&[Name]>,
    last_health: Option<&model::HealthView>,
    health: &model::HealthView,
) -> BTreeSet<Name> {
    let (Some(changed_names), Some(last_health)) = (changed_names, last_health) else {
        return endpoints.iter().map(|e| e.name.clone()).collect();
    };
    let changed_names: BTreeSet<&Name> = changed_names.iter().collect();
    endpoints
        .iter()
        .filter(|endpoint| {
            changed_names.contains(&endpoint.name)
                || endpoint.backends.iter().any(|backend| {
                    last_health.healthy(&backend.address) != health.healthy(&backend.address)
                })
        })
        .map(|endpoint| endpoint.name.clone())
        .collect()
}

/// The endpoints to ask this round: the changed ones and a rotating sample of `sample`
/// others starting at `cursor`; and where the next sample starts. Every endpoint is asked
/// within `endpoints.len() / sample` rounds (rounded up).
pub fn names_to_ask(
    endpoints: &[EndpointConfig],
    changed: &BTreeSet<Name>,
    cursor: usize,
    sample: usize,
) -> (Vec<EndpointConfig>, usize) {
    if endpoints.is_empty() {
        return (Vec::new(), 0);
    }
    let start = cursor % endpoints.len();
    let take = sample.min(endpoints.len());
    let sampled: BTreeSet<usize> = (0..take).map(|i| (start + i) % endpoints.len()).collect();
    let asked = endpoints
        .iter()
        .enumerate()
        .filter(|(index, endpoint)| sampled.contains(index) || changed.contains(&endpoint.name))
        .map(|(_, endpoint)| endpoint.clone())
        .collect();
    (asked, (start + take) % endpoints.len())
}

/// Asks every server, over UDP and TCP, for the zone's serial and every protected name.
async fn observe(
    servers: &[SocketAddr],
    zone: &Name,
    endpoints: &[EndpointConfig],
    timeout: Duration,
) -> Vec<Observation> {
    let mut tasks = tokio::task::JoinSet::new();
    for &server in servers {
        for transport in [Transport::Udp, Transport::Tcp] {
            let zone = zone.clone();
            let names: Vec<Name> = endpoints.iter().map(|e| e.name.clone()).collect();
            tasks.spawn(async move {
                let serial = client::serial(server, transport, &zone, timeout).await;
                let mut answers = BTreeMap::new();
                for name in names {
                    let reply = client::addresses(server, transport, &name, timeout).await;
                    answers.insert(name, reply);
                }
                Observation {
                    server,
                    transport,
                    serial,
                    endpoints: answers,
                }
            });
        }
    }
    let mut observations = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(observation) = done {
            observations.push(observation);
        }
    }
    observations.sort_by_key(|o| (o.server, o.transport));
    observations
}

/// The findings not reported while they persisted: each is audited (and logged) once, when
/// it appears. `reported` remembers this round's keys for the next; it is bounded by
/// [`limits::REPORTED_FINDINGS`] (past it, everything counts as new again).
pub fn fresh_findings<'a>(
    reported: &mut BTreeSet<String>,
    findings: impl Iterator<Item = &'a Finding> + Clone,
) -> Vec<Finding> {
    let current: BTreeSet<String> = findings.clone().map(Finding::key).collect();
    let fresh = findings
        .filter(|finding| !reported.contains(&finding.key()))
        .cloned()
        .collect();
    *reported = current;
    if reported.len() > limits::REPORTED_FINDINGS.default as usize {
        reported.clear();
    }
    fresh
}

/// Appends one `validator-finding` audit entry per finding.
pub fn audit_findings(
    store: &dyn Store,
    zone: &Name,
    active: Option<Generation>,
    findings: &[Finding],
    now_ms: u64,
) -> Result<(), StoreError> {
    for finding in findings {
        store.append_audit(NewAuditEntry {
            at_ms: now_ms,
            actor: VALIDATOR_ACTOR.to_string(),
            zone: zone.clone(),
            action: actions::FINDING.to_string(),
            from: active,
            to: None,
            reason: format!(
                "{}: {finding}",
                match finding.severity {
                    Severity::Violation => "violation",
                    Severity::Warning => "warning",
                }
            ),
        })?;
    }
    Ok(())
}

/// What the validator remembers of a zone's repairs between rounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairMemory {
    /// The last rollback attempt: the generation it left active (the new one, or the one it
    /// could not repair) and when. The same generation is not rolled back again before the
    /// cooldown has passed (no loops, no audit floods); a new bad generation is at once.
    pub last_rollback: Option<(Generation, u64)>,
    /// The good generation this validator keeps pinned: the last known good, or the one a
    /// rollback restored.
    pub pinned_by_us: Option<Generation>,
}

/// One round's violation in what is active, as [`repair`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct RepairRound<'a> {
    pub active: Generation,
    /// The active version's provenance, when the store can show it.
    pub provenance: Option<&'a Provenance>,
    /// The violations, as one sentence for the audit log.
    pub reason: &'a str,
    /// How long the same generation is left alone after a rollback attempt.
    pub cooldown_ms: u64,
    pub now_ms: u64,
}

/// What [`repair`] did.
#[derive(Debug)]
pub enum Repair {
    /// The same generation was rolled back less than the cooldown ago: nothing this round.
    CoolingDown,
    /// Rolled forward to a good generation's content; `pinned` is whether pinning the
    /// restored generation worked.
    RolledBack {
        done: RolledBack,
        pinned: Result<(), StoreError>,
    },
    /// Nothing could be restored; the breaker is tripped unless tripping it failed.
    Impossible(RollbackError),
}

/// A violation in what is active: marks it not good, and unless it is cooling down rolls
/// the zone forward to the newest restorable good generation (breaker first) and pins what it
/// restored. The validator's decision and its store writes in one synchronous function, the
/// same code in the async shell and in the simulation.
pub fn repair(
    store: &dyn Store,
    zone: &Name,
    good: &mut GoodTracker,
    memory: &mut RepairMemory,
    round: RepairRound<'_>,
) -> Repair {
    let RepairRound {
        active,
        provenance,
        reason,
        cooldown_ms,
        now_ms,
    } = round;
    good.observe(active, false, now_ms);
    if !rollback::rollback_due(memory.last_rollback, active, now_ms, cooldown_ms) {
        return Repair::CoolingDown;
    }
    let candidates = rollback::candidates(good.good(), Some(active), provenance);
    let outcome = roll_back(store, zone, &candidates, reason, now_ms);
    memory.last_rollback = Some((
        outcome.as_ref().map_or(active, |done| done.generation),
        now_ms,
    ));
    match outcome {
        Ok(done) => {
            let previous = memory.pinned_by_us.replace(done.restored);
            let pinned = pin_restored(store, zone, done.restored, previous, now_ms);
            Repair::RolledBack { done, pinned }
        }
        Err(error) => Repair::Impossible(error),
    }
}

/// Persists a new last known good: pinned (clean-up keeps it) and a `validated-good` audit
/// entry (replayed at start). The previous good pinned by this process is unpinned.
pub fn record_good(
    store: &dyn Store,
    zone: &Name,
    good: Generation,
    previous: Option<Generation>,
    now_ms: u64,
) -> Result<(), StoreError> {
    pin(store, zone, good, "last known good", now_ms)?;
    store.append_audit(NewAuditEntry {
        at_ms: now_ms,
        actor: VALIDATOR_ACTOR.to_string(),
        zone: zone.clone(),
        action: actions::VALIDATED_GOOD.to_string(),
        from: None,
        to: Some(good),
        reason: "passed every check while active".to_string(),
    })?;
    unpin(store, zone, previous.filter(|p| *p != good), now_ms);
    Ok(())
}

/// After a rollback: pins the good generation it restored, and unpins the previous good this
/// process pinned. The pin had moved on to a newer good that has just failed (or vanished);
/// without it, clean-up could delete the only content known good while the rollback's new
/// generation is still proving itself, and a second repair would have nothing to restore.
/// The next [`record_good`] moves the pin on again.
pub fn pin_restored(
    store: &dyn Store,
    zone: &Name,
    restored: Generation,
    previous: Option<Generation>,
    now_ms: u64,
) -> Result<(), StoreError> {
    pin(store, zone, restored, "restored by a rollback", now_ms)?;
    unpin(store, zone, previous.filter(|p| *p != restored), now_ms);
    Ok(())
}

fn pin(
    store: &dyn Store,
    zone: &Name,
    generation: Generation,
    reason: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    if !store.version(zone, generation)?.pinned {
        store.set_pinned(SetPinned {
            zone,
            generation,
            pinned: true,
            actor: VALIDATOR_ACTOR,
            reason,
            now_ms,
        })?;
    }
    Ok(())
}

fn unpin(store: &dyn Store, zone: &Name, previous: Option<Generation>, now_ms: u64) {
    if let Some(previous) = previous {
        // Failing to unpin leaves an extra version, never a missing one.
        let _ = store.set_pinned(SetPinned {
            zone,
            generation: previous,
            pinned: false,
            actor: VALIDATOR_ACTOR,
            reason: "superseded as last known good",
            now_ms,
        });
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(&*store))
        .await
        .unwrap_or_else(|join| {
            Err(StoreError::Backend {
                location: "store".to_string(),
                operation: "a blocking store call of the validator".to_string(),
                detail: join.to_string(),
            })
        })
}

/// A running validator; dropping it stops it.
pub struct ValidatorHandle {
    monitor: Arc<HealthMonitor>,
    config: Arc<watch::Sender<ValidatorConfig>>,
    task: JoinHandle<()>,
    _watch: store::WatchHandle,
}

/// Hands a reloaded configuration to a running validator; cheap to clone.
#[derive(Clone)]
pub struct ValidatorReloader {
    monitor: Arc<HealthMonitor>,
    config: Arc<watch::Sender<ValidatorConfig>>,
}

impl ValidatorReloader {
    /// New probe targets for the validator's own health monitor and a new configuration,
    /// taken before its next round. Call it before the planner learns the same change, so
    /// the validator never judges a new answer by the old endpoints.
    pub fn reload(
        &self,
        config: ValidatorConfig,
        probes: Vec<ProbeTarget>,
    ) -> Result<(), HealthError> {
        self.monitor.set_targets(probes)?;
        self.config.send_replace(config);
        Ok(())
    }
}

impl ValidatorHandle {
    /// Whether the validator's task ended (it runs until shutdown), or its probes did.
    pub fn has_ended(&self) -> bool {
        self.task.is_finished() || self.monitor.has_ended()
    }

    pub fn reloader(&self) -> ValidatorReloader {
        ValidatorReloader {
            monitor: Arc::clone(&self.monitor),
            config: Arc::clone(&self.config),
        }
    }

    /// The validator's own health view (not the planner's).
    pub fn health(&self) -> model::HealthView {
        self.monitor.view()
    }

    pub async fn shutdown(self) {
        self.task.abort();
        self.monitor.shutdown().await;
    }
}

impl Drop for ValidatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the validator with its own health monitor over `probes` (a separate instance from
/// the planner's). Must be called inside a tokio runtime.
pub fn spawn(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: ValidatorConfig,
    probes: Vec<ProbeTarget>,
) -> Result<ValidatorHandle, HealthError> {
    let probe_clock = Arc::clone(&clock);
    let (monitor, health) = HealthMonitor::start(
        probes,
        move || probe_clock.now_ms(),
        health::HEALTH_MAX_CONCURRENT_PROBES.default as usize,
    )?;
    let (mut changes, watch) =
        store::watch_changes(Arc::clone(&store), store::default_poll_interval());
    let (config_sender, mut config_changes) = watch::channel(config.clone());
    let mut validator = Validator::new(store, clock, config, health);
    let task = tokio::spawn(async move {
        let mut reloads_open = true;
        loop {
            // A reload that arrived during the last round.
            if config_changes.has_changed().unwrap_or(false) {
                validator.set_config(config_changes.borrow_and_update().clone());
            }
            let report = validator.round().await;
            let wait = if report.recheck {
                Duration::from_millis(limits::RECHECK_MS.default)
            } else {
                validator.interval()
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = changes.changed() => if changed.is_err() { return },
                changed = config_changes.changed(), if reloads_open => {
                    // `changed` marks the new value seen: take it here. The sender lives in
                    // the handle; once it is gone nothing reloads.
                    reloads_open = changed.is_ok();
                    if reloads_open {
                        validator.set_config(config_changes.borrow_and_update().clone());
                    }
                }
            }
        }
    });
    Ok(ValidatorHandle {
        monitor: Arc::new(monitor),
        config: Arc::new(config_sender),
        task,
        _watch: watch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{BackendConfig, Check, HealthView};

    fn endpoints(count: u8) -> Vec<EndpointConfig> {
        (0..count)
            .map(|i| {
                EndpointConfig::new(
                    Name::from_ascii(format!("ep{i}.example.test.")).unwrap(),
                    vec![BackendConfig {
                        address: std::net::IpAddr::from([10, 0, 0, i]),
                        check: Check::None,
                        weight: 1,
                    }],
                )
            })
            .collect()
    }

    #[test]
    fn a_round_asks_the_changed_names_and_a_rotating_sample_that_covers_every_name() {
        let all = endpoints(10);
        let changed: BTreeSet<Name> = [all[7].name.clone()].into();
        let mut cursor = 0;
        let mut seen = BTreeSet::new();
        for _ in 0..4 {
            let (asked, next) = names_to_ask(&all, &changed, cursor, 3);
            assert!(
                asked.iter().any(|e| e.name == all[7].name),
                "changed is asked"
            );
            assert!(asked.len() <= 4, "three sampled and the changed one");
            seen.extend(asked.into_iter().map(|e| e.name));
            cursor = next;
        }
        assert_eq!(seen.len(), 10, "every name within ceil(10 / 3) rounds");
    }

    #[test]
    fn endpoints_change_with_the_store_or_with_a_backend_verdict() {
        let all = endpoints(4);
        let state = |healthy| model::BackendState {
            healthy,
            since_ms: 0,
        };
        let mut before = HealthView::new();
        before.set(std::net::IpAddr::from([10, 0, 0, 2]), state(true));
        let mut after = before.clone();
        after.set(std::net::IpAddr::from([10, 0, 0, 2]), state(false));
        let store_changed = [all[0].name.clone()];
        let changed = changed_endpoints(&all, Some(&store_changed), Some(&before), &after);
        assert_eq!(
            changed,
            [all[0].name.clone(), all[2].name.clone()].into(),
            "the stored name and the endpoint whose backend turned"
        );
        assert_eq!(
            changed_endpoints(&all, None, Some(&before), &after).len(),
            4,
            "unknown store changes: every endpoint"
        );
        assert_eq!(changed_endpoints(&all, Some(&[]), None, &after).len(), 4);
    }
}
