//! The control loop: the async shell around the planner and the guard. On every health
//! change, re-plan request or tick it plans each zone against its active version, judges the
//! plan, and publishes accepted plans to the [`PlanBoard`]; a refusal trips the zone's
//! breaker and is audited.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use guard::{GuardInput, Verdict};
use model::endpoint::addresses_at;
use model::{
    limits, Breaker, Clock, Deferral, EndpointConfig, Generation, GuardPolicy, HealthView, Name,
    Provenance, RefName, Removal, ZoneContent,
};
use planner::{PlanInput, Planner};
use store::{actions, zone_key, BreakerChange, NewAuditEntry, Store, StoreError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::board::{GuardedPlan, PlanBoard};
use crate::cache::ContentCache;
use crate::enactor::{blocking, Enactor, Observer};
use crate::removals::RemovalLedger;
use crate::statics::{Start, StaticLayer};

/// Actor name of the control loop in the audit log.
pub const CONTROL_ACTOR: &str = "guard";

/// One zone under automation.
#[derive(Debug, Clone, PartialEq)]
pub struct ZonePlan {
    pub origin: Name,
    /// Records from the zone file (SOA and NS at least). The planner starts from them
    /// merged with operator changes (see [`StaticLayer`]).
    pub static_content: ZoneContent,
    /// Protected names whose addresses follow health.
    pub endpoints: Vec<EndpointConfig>,
}

/// What the control loop and its enactors run with. Reloadable with
/// [`ControlHandle::set_config`] (the enactor count and `keep_last` apply at the next start).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    pub zones: Vec<ZonePlan>,
    pub policy: GuardPolicy,
    /// Enactor tasks, clamped to [`limits::ENACTOR_COUNT`].
    pub enactor_count: usize,
    /// Versions clean-up always keeps, clamped to [`limits::KEEP_LAST_VERSIONS`].
    pub keep_last: usize,
}

impl ControlConfig {
    /// The zones with the default policy, enactor count and `keep_last`.
    pub fn new(zones: Vec<ZonePlan>) -> ControlConfig {
        ControlConfig {
            zones,
            policy: GuardPolicy::default(),
            enactor_count: clamp_usize(&limits::ENACTOR_COUNT, None),
            keep_last: clamp_usize(&limits::KEEP_LAST_VERSIONS, None),
        }
    }
}

fn clamp_usize(limit: &limits::Limit, requested: Option<usize>) -> usize {
    // Every limit used here tops out far below usize::MAX.
    usize::try_from(limit.clamp(requested.map(|value| value as u64))).unwrap_or(usize::MAX)
}

/// What one round did for one zone.
#[derive(Debug, Clone, PartialEq)]
pub enum ZoneRound {
    /// An accepted plan is on the board.
    Published(Arc<GuardedPlan>),
    /// The plan equals the active content (or the plan already on the board): nothing to do.
    Unchanged,
    /// The breaker is tripped: the zone was not planned.
    Frozen(Breaker),
    /// The guard refused the plan; the breaker tripped (unless the only reason was a stale
    /// base) and the verdict is in the audit log.
    Refused(Verdict),
    /// The zone has no version yet and some backends with a check have no verdict: its
    /// first version waits for their probes (at most
    /// [`limits::CONTROL_FIRST_VERDICT_WAIT_MS`] after the loop started).
    AwaitingProbes { unprobed: usize },
    /// The store could not be read; the next round tries again.
    Failed(String),
}

/// The planner and the guard in a loop. Its state (removal history, retired endpoints) is
/// either derived from the store or errs on the safe side when lost.
pub struct ControlLoop {
    store: Arc<dyn Store>,
    board: Arc<PlanBoard>,
    clock: Arc<dyn Clock>,
    health: watch::Receiver<HealthView>,
    replan: Arc<Notify>,
    config: Mutex<Arc<ControlConfig>>,
    /// Endpoints removed from the config by a reload, per zone: still protected until the
    /// active content no longer answers at their names (an operator removed them).
    retired: Mutex<BTreeMap<String, Vec<EndpointConfig>>>,
    ledger: Arc<RemovalLedger>,
    /// The active content of each zone, shared with the enactors.
    cache: Arc<ContentCache>,
    /// Each zone's planner, which remembers its last plan (so a round costs what changed).
    planners: Mutex<BTreeMap<String, Planner>>,
    /// Each zone's static records: the zone file merged with operator changes.
    statics: Mutex<BTreeMap<String, StaticLayer>>,
    /// Each zone's removals held back by the policy in its last plan, and why each endpoint
    /// answers what it answers.
    convergence: Mutex<BTreeMap<String, Convergence>>,
    /// When the loop was made: a zone's first version waits for probe verdicts until
    /// [`limits::CONTROL_FIRST_VERDICT_WAIT_MS`] after it.
    started_ms: u64,
}

impl std::fmt::Debug for ControlLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlLoop").finish_non_exhaustive()
    }
}

impl ControlLoop {
    pub fn new(
        store: Arc<dyn Store>,
        board: Arc<PlanBoard>,
        config: ControlConfig,
        health: watch::Receiver<HealthView>,
        clock: Arc<dyn Clock>,
        replan: Arc<Notify>,
    ) -> ControlLoop {
        let started_ms = clock.now_ms();
        ControlLoop {
            store,
            board,
            clock,
            health,
            replan,
            config: Mutex::new(Arc::new(config)),
            retired: Mutex::new(BTreeMap::new()),
            ledger: Arc::new(RemovalLedger::new()),
            cache: Arc::new(ContentCache::new()),
            planners: Mutex::new(BTreeMap::new()),
            statics: Mutex::new(BTreeMap::new()),
            convergence: Mutex::new(BTreeMap::new()),
            started_ms,
        }
    }

    /// Shares `cache` (the enactors' too) instead of the loop's own.
    pub fn with_cache(mut self, cache: Arc<ContentCache>) -> ControlLoop {
        self.cache = cache;
        self
    }

    /// The content cache the loop reads active content through.
    pub fn cache(&self) -> &Arc<ContentCache> {
        &self.cache
    }

    pub fn config(&self) -> Arc<ControlConfig> {
        Arc::clone(&self.config.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the config; the next round plans with it. Endpoints the new config drops stay
    /// protected (the guard refuses to empty them) until an operator removes their records.
    pub fn set_config(&self, config: ControlConfig) {
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        for old_zone in &current.zones {
            let new_zone = config.zones.iter().find(|z| z.origin == old_zone.origin);
            let kept = |endpoint: &EndpointConfig| {
                new_zone.is_some_and(|z| z.endpoints.iter().any(|e| e.name == endpoint.name))
            };
            let list = retired.entry(zone_key(&old_zone.origin)).or_default();
            for endpoint in old_zone.endpoints.iter().filter(|e| !kept(e)) {
                if !list.iter().any(|e| e.name == endpoint.name) {
                    list.push(endpoint.clone());
                }
            }
        }
        for zone in &config.zones {
            if let Some(list) = retired.get_mut(&zone_key(&zone.origin)) {
                list.retain(|old| !zone.endpoints.iter().any(|e| e.name == old.name));
            }
        }
        *current = Arc::new(config);
    }

    pub fn board(&self) -> &Arc<PlanBoard> {
        &self.board
    }

    /// One round over every zone of the config, in config order.
    pub async fn plan_once(&self) -> Vec<(Name, ZoneRound)> {
        let config = self.config();
        let health = self.health.borrow().clone();
        let mut rounds = Vec::with_capacity(config.zones.len());
        for zone in &config.zones {
            let round = self.plan_zone(zone, &config.policy, &health).await;
            match &round {
                ZoneRound::Published(plan) => {
                    tracing::debug!(zone = %zone.origin, base = ?plan.base, sequence = plan.sequence, "plan published")
                }
                other => tracing::debug!(zone = %zone.origin, round = ?other, "no plan published"),
            }
            rounds.push((zone.origin.clone(), round));
        }
        rounds
    }

    /// Plans one zone: read, plan, judge, publish or trip.
    pub async fn plan_zone(
        &self,
        zone: &ZonePlan,
        policy: &GuardPolicy,
        health: &HealthView,
    ) -> ZoneRound {
        let now_ms = self.clock.now_ms();
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone_key(&zone.origin))
            .cloned()
            .unwrap_or_default();
        // The recorded source matters only when the zone's static layer is made (its first
        // round): not read again every round.
        // Who made the active version matters only to a layer that has seen none yet.
        let (needs_source, needs_provenance) = match self
            .statics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone_key(&zone.origin))
        {
            None => (true, true),
            Some(layer) => (false, !layer.has_seen()),
        };
        let read = self
            .read_zone(
                zone,
                policy,
                &retired,
                needs_source,
                needs_provenance,
                now_ms,
            )
            .await;
        let view = match read {
            Ok(Ok(view)) => view,
            Ok(Err(breaker)) => return ZoneRound::Frozen(breaker),
            Err(error) => return ZoneRound::Failed(error.to_string()),
        };
        if view.active.is_none() {
            let unprobed = unprobed_backends(&zone.endpoints, health);
            let waited = now_ms.saturating_sub(self.started_ms);
            if unprobed > 0 && waited < limits::CONTROL_FIRST_VERDICT_WAIT_MS.default {
                return ZoneRound::AwaitingProbes { unprobed };
            }
        }
        // Retired endpoints stay protected while the active content still answers there.
        let retired: Vec<EndpointConfig> = retired
            .into_iter()
            .filter(|endpoint| {
                view.content
                    .as_ref()
                    .is_some_and(|content| !addresses_at(content, &endpoint.name).is_empty())
            })
            .collect();
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(zone_key(&zone.origin), retired.clone());
        let mut layer = self.static_layer(zone, &view);
        let mut planner = self
            .planners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&zone_key(&zone.origin))
            .unwrap_or_default();
        let plan = planner.plan(
            &PlanInput {
                zone_origin: &zone.origin,
                static_content: layer.records(),
                endpoints: &zone.endpoints,
                health,
                active: view.content.as_ref(),
                recent_removals: &view.removals,
                policy,
            },
            now_ms,
        );
        self.planners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(zone_key(&zone.origin), planner);
        self.note_convergence(&zone.origin, &plan.deferred, &plan.endpoints);
        if let (Some(active), Some(generation)) = (&view.content, view.active) {
            if same_answers(&plan.content, active) {
                // The active version carries the static records: record their source, so a
                // restart with the same zone file keeps operator changes.
                if let Some(source) = layer.unrecorded_source().map(str::to_string) {
                    let origin = zone.origin.clone();
                    let recorded = blocking(&self.store, move |store| {
                        store.set_zone_source(&origin, &source)
                    })
                    .await;
                    match recorded {
                        Ok(()) => {
                            layer.recorded();
                            tracing::info!(zone = %zone.origin, "the active version carries the zone file: recorded as the zone's source (a restart with this file keeps operator changes)");
                        }
                        Err(error) => {
                            tracing::warn!(zone = %zone.origin, %error, "recording the zone file's source failed; the next round tries again")
                        }
                    }
                }
                self.keep_static_layer(zone, layer);
                // The plan's content shares the zone file's structure; the active content
                // read from the store does not. Keeping the plan's copy makes the next
                // round's comparison cost the change, not the zone.
                self.cache.replace_equal(
                    &zone.origin,
                    generation,
                    plan.content.with_serial(active.serial().unwrap_or(0)),
                );
                return ZoneRound::Unchanged;
            }
        }
        self.keep_static_layer(zone, layer);
        if let Some(latest) = self.board.latest(&zone.origin) {
            // The same plan is already on the board. It is published again once it has gone
            // unapplied for a tick: every enactor takes a plan once, so a plan they all
            // dropped for a reason that has passed (a frozen zone since thawed, a store call
            // that failed) would otherwise never be applied (found by `dnsward sim`).
            let pending_ms = now_ms.saturating_sub(latest.planned_at_ms);
            if latest.base == view.active
                && same_answers(&plan.content, &latest.content)
                && pending_ms < limits::CONTROL_TICK_MS.default
            {
                return ZoneRound::Unchanged;
            }
        }
        let mut protected = zone.endpoints.clone();
        protected.extend(retired);
        let verdict = guard::judge(
            &GuardInput {
                origin: &zone.origin,
                base: view.active,
                active: view.content.as_ref(),
                proposed: &plan.content,
                proposed_base: view.active,
                proposed_generation: None,
                endpoints: &protected,
                recent_removals: &view.removals,
                policy,
                operator_override: None,
            },
            now_ms,
        );
        if verdict.is_accept() {
            let published = self.board.publish(GuardedPlan {
                sequence: 0,
                zone: zone.origin.clone(),
                base: view.active,
                content: plan.content,
                base_content: view.content,
                provenance: Provenance::Planner,
                reason: plan.summary.join("; "),
                planned_at_ms: now_ms,
            });
            return ZoneRound::Published(published);
        }
        if let Some(reason) = verdict.breaker_reason() {
            let recorded = refuse_and_trip(
                &self.store,
                &zone.origin,
                view.active,
                &verdict,
                reason,
                CONTROL_ACTOR,
                now_ms,
            )
            .await;
            if let Err(error) = recorded {
                tracing::error!(zone = %zone.origin, %error, "recording a refusal failed");
            }
        }
        ZoneRound::Refused(verdict)
    }

    /// The zone's static records for this round: made at the first round (from the zone
    /// file, or the active version when the file is the source the store recorded), merged
    /// with a zone file read again by a reload, and brought in line with versions made by
    /// anyone but the planner.
    fn static_layer(&self, zone: &ZonePlan, view: &ZoneView) -> StaticLayer {
        let kept = self
            .statics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&zone_key(&zone.origin));
        let endpoint_names: Vec<Name> = zone.endpoints.iter().map(|e| e.name.clone()).collect();
        let mut layer = match kept {
            Some(mut layer) => {
                let merged = layer.merge_file(&zone.static_content);
                if merged > 0 {
                    tracing::info!(zone = %zone.origin, sets = merged, "zone file read again: the record sets it changed replace the served ones; operator changes to other sets stay");
                }
                layer
            }
            None => {
                let active = view.active.zip(view.content.as_ref());
                let (layer, start) =
                    StaticLayer::start(&zone.static_content, active, view.source.as_deref());
                match start {
                    Start::FirstLoad => {}
                    Start::Unchanged => {
                        tracing::info!(zone = %zone.origin, "the zone file is unchanged since it was last loaded: the active version's records are kept (operator changes included)")
                    }
                    Start::FileChanged { recorded: None } => {
                        tracing::info!(zone = %zone.origin, "no zone file source recorded for this zone: the zone file's records are the static records")
                    }
                    Start::FileChanged { recorded: Some(_) } => {
                        tracing::warn!(zone = %zone.origin, "the zone file changed since it was last loaded: its records replace the static records served (operator changes not in the file are dropped; put them in the file)")
                    }
                }
                layer
            }
        };
        if let (Some(generation), Some(content)) = (view.active, &view.content) {
            let by_planner = view.provenance == Some(Provenance::Planner);
            let taken = layer.follow_active(generation, content, &endpoint_names, by_planner);
            if taken > 0 {
                tracing::info!(zone = %zone.origin, %generation, sets = taken, "record sets changed by a version not made by the planner (operator, rollback, import) are kept in later plans");
            }
        }
        layer
    }

    /// The records the zone's plans start from (the zone file merged with operator
    /// changes, see [`StaticLayer`]); `None` before the zone's first round.
    pub fn static_records(&self, zone: &Name) -> Option<ZoneContent> {
        self.statics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone_key(zone))
            .map(|layer| layer.records().clone())
    }

    /// How the zone's last plan converges on health: the removals it held back (why an
    /// endpoint still answers an address health says should go, and when the limit lifts)
    /// and why each endpoint answers what it answers. Empty before the zone's first plan.
    pub fn convergence(&self, zone: &Name) -> Convergence {
        self.convergence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&zone_key(zone))
            .cloned()
            .unwrap_or_default()
    }

    /// Keeps the plan's convergence and logs deferrals when they change.
    fn note_convergence(&self, zone: &Name, deferred: &[Deferral], endpoints: &[(Name, String)]) {
        let mut all = self
            .convergence
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let known = all.entry(zone_key(zone)).or_default();
        if known.endpoints.as_slice() != endpoints {
            known.endpoints = endpoints.to_vec();
        }
        if known.deferred.as_slice() == deferred {
            return;
        }
        for deferral in deferred.iter().filter(|d| !known.deferred.contains(d)) {
            let held: Vec<String> = deferral.held.iter().map(ToString::to_string).collect();
            tracing::info!(
                %zone,
                endpoint = %deferral.name,
                still_served = %held.join(", "),
                limit = %deferral.limit,
                lifts_at_ms = ?deferral.lifts_at_ms,
                "removal deferred: health says these should go, the guard policy holds them for a later plan"
            );
        }
        known.deferred = deferred.to_vec();
    }

    fn keep_static_layer(&self, zone: &ZonePlan, layer: StaticLayer) {
        self.statics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(zone_key(&zone.origin), layer);
    }

    async fn read_zone(
        &self,
        zone: &ZonePlan,
        policy: &GuardPolicy,
        retired: &[EndpointConfig],
        needs_source: bool,
        needs_provenance: bool,
        now_ms: u64,
    ) -> Result<Result<ZoneView, Breaker>, StoreError> {
        let origin = zone.origin.clone();
        let mut endpoints = zone.endpoints.clone();
        endpoints.extend(retired.iter().cloned());
        let policy = *policy;
        let ledger = Arc::clone(&self.ledger);
        let cache = Arc::clone(&self.cache);
        blocking(&self.store, move |store| {
            let breaker = store.breaker(&origin)?;
            if !breaker.allows_automation() {
                return Ok(Err(breaker));
            }
            let active = store.refs(&origin)?.active;
            let content = active
                .map(|generation| cache.content(store, &origin, generation))
                .transpose()?;
            let provenance = active
                .filter(|_| needs_provenance)
                .map(|generation| store.version(&origin, generation).map(|v| v.provenance))
                .transpose()?;
            let removals = ledger.recent(store, &origin, &endpoints, &policy, now_ms)?;
            let source = if needs_source {
                store.zone_source(&origin)?
            } else {
                None
            };
            Ok(Ok(ZoneView {
                active,
                provenance,
                content,
                removals,
                source,
            }))
        })
        .await
    }
}

/// How a zone's last plan converges on health (see [`ControlLoop::convergence`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Convergence {
    /// Removals held back by the guard policy.
    pub deferred: Vec<Deferral>,
    /// Per endpoint: why it answers what it answers.
    pub endpoints: Vec<(Name, String)>,
}

/// What the control loop read of a zone in one round.
struct ZoneView {
    active: Option<Generation>,
    /// Who made the active version (the planner, an operator, …); read only for a zone
    /// whose static layer has seen no version yet.
    provenance: Option<Provenance>,
    content: Option<ZoneContent>,
    removals: Vec<Removal>,
    /// What the store recorded as the zone's static records' source (read only for a zone
    /// whose static layer is not made yet).
    source: Option<String>,
}

/// Backends (serving, with a probe) that have no health verdict yet.
fn unprobed_backends(endpoints: &[EndpointConfig], health: &HealthView) -> usize {
    endpoints
        .iter()
        .flat_map(|endpoint| endpoint.serving_backends())
        .filter(|backend| {
            backend.check != model::Check::None && health.healthy(&backend.address).is_none()
        })
        .count()
}

/// Whether two contents answer the same (the SOA serial is the store's business).
pub(crate) fn same_answers(planned: &ZoneContent, active: &ZoneContent) -> bool {
    match active.serial() {
        Some(serial) => planned.with_serial(serial) == *active,
        None => planned == active,
    }
}

/// Records a refusal: trips the zone's breaker with `reason` and appends the verdict to the
/// audit log as [`actions::REFUSED`].
pub(crate) async fn refuse_and_trip(
    store: &Arc<dyn Store>,
    zone: &Name,
    active: Option<Generation>,
    verdict: &Verdict,
    reason: String,
    actor: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let zone = zone.clone();
    let verdict = verdict.to_string();
    let actor = actor.to_string();
    blocking(store, move |store| {
        record_refusal(store, &zone, active, &verdict, &reason, &actor, now_ms)
    })
    .await
}

/// The synchronous half of [`refuse_and_trip`]: the refusal entry, then the breaker.
pub(crate) fn record_refusal(
    store: &dyn Store,
    zone: &Name,
    active: Option<Generation>,
    verdict: &str,
    reason: &str,
    actor: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    store.append_audit(NewAuditEntry {
        at_ms: now_ms,
        actor: actor.to_string(),
        zone: zone.clone(),
        action: actions::REFUSED.to_string(),
        from: active,
        to: None,
        reason: verdict.to_string(),
    })?;
    store.trip_breaker(BreakerChange {
        zone,
        reason,
        actor,
        now_ms,
    })?;
    Ok(())
}

/// A running control loop and its enactors.
#[derive(Debug)]
pub struct ControlHandle {
    control: Arc<ControlLoop>,
    shutdown: watch::Sender<bool>,
    replan: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl ControlHandle {
    /// Whether the control loop or an enactor ended (they run until shutdown): a node
    /// without them would serve but never follow health again.
    pub fn has_ended_task(&self) -> bool {
        self.tasks.iter().any(JoinHandle::is_finished)
    }

    /// Asks for a round now (e.g. after an operator thawed a zone).
    pub fn replan(&self) {
        self.replan.notify_one();
    }

    /// Reloads the config (see [`ControlLoop::set_config`]) and re-plans.
    pub fn set_config(&self, config: ControlConfig) {
        self.control.set_config(config);
        self.replan();
    }

    pub fn board(&self) -> &Arc<PlanBoard> {
        self.control.board()
    }

    pub fn control(&self) -> &Arc<ControlLoop> {
        &self.control
    }

    /// Stops the loop and the enactors and waits for them; an enactor finishes the plan it
    /// is applying first.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        for task in self.tasks {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
    }
}

/// Starts the control loop and `config.enactor_count` enactors (clamped to
/// [`limits::ENACTOR_COUNT`]) on the current tokio runtime.
pub fn spawn(
    store: Arc<dyn Store>,
    config: ControlConfig,
    health: watch::Receiver<HealthView>,
    clock: Arc<dyn Clock>,
    observer: Option<Observer>,
) -> ControlHandle {
    spawn_with(
        store,
        config,
        health,
        clock,
        observer,
        SpawnOptions::default(),
    )
}

/// How [`spawn_with`] runs the enactors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnOptions {
    /// `RefName::Active` (default): plans are applied directly. `RefName::Canary`: plans go
    /// to the canary ref and active moves only when the validator promotes them
    /// ([`crate::promote_canary`]).
    pub target: RefName,
    /// The node the enactors run on (`[node] name`): their actor is `NODE/enactor-N`, so the
    /// audit log of a store shared by several nodes says which node wrote. Empty: `enactor-N`.
    pub node: String,
}

impl Default for SpawnOptions {
    fn default() -> SpawnOptions {
        SpawnOptions {
            target: RefName::Active,
            node: String::new(),
        }
    }
}

/// [`spawn`] with options (canary mode).
pub fn spawn_with(
    store: Arc<dyn Store>,
    config: ControlConfig,
    health: watch::Receiver<HealthView>,
    clock: Arc<dyn Clock>,
    observer: Option<Observer>,
    options: SpawnOptions,
) -> ControlHandle {
    let board = PlanBoard::new();
    let replan = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let enactor_count = clamp_usize(&limits::ENACTOR_COUNT, Some(config.enactor_count));
    let keep_last = config.keep_last;
    let cache = Arc::new(ContentCache::new());
    let control = Arc::new(
        ControlLoop::new(
            Arc::clone(&store),
            Arc::clone(&board),
            config,
            health,
            Arc::clone(&clock),
            Arc::clone(&replan),
        )
        .with_cache(Arc::clone(&cache)),
    );
    let mut tasks = Vec::with_capacity(enactor_count + 1);
    for index in 0..enactor_count {
        let mut enactor = Enactor::new(
            index,
            Arc::clone(&store),
            Arc::clone(&clock),
            keep_last,
            Arc::clone(&replan),
        )
        .with_target(options.target)
        .with_cache(Arc::clone(&cache))
        .on_node(&options.node);
        if let Some(observer) = &observer {
            enactor = enactor.with_observer(Arc::clone(observer));
        }
        tasks.push(tokio::spawn(
            enactor.run(Arc::clone(&board), shutdown_rx.clone()),
        ));
    }
    tasks.push(tokio::spawn(Arc::clone(&control).run(shutdown_rx)));
    ControlHandle {
        control,
        shutdown,
        replan,
        tasks,
    }
}

impl ControlLoop {
    /// Plans on every health change, re-plan request and tick
    /// ([`limits::CONTROL_TICK_MS`]) until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut health = self.health.clone();
        let mut health_open = true;
        let mut tick =
            tokio::time::interval(Duration::from_millis(limits::CONTROL_TICK_MS.default));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                return;
            }
            health.borrow_and_update();
            self.plan_once().await;
            tokio::select! {
                changed = health.changed(), if health_open => health_open = changed.is_ok(),
                () = self.replan.notified() => {}
                _ = tick.tick() => {}
                changed = shutdown.changed() => if changed.is_err() { return },
            }
        }
    }
}
