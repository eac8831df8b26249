//! The enactor against the real SQLite store, planner and guard: the October race and its
//! defences one by one, racing enactors, the breaker, and the operator path. Deterministic:
//! time is a `ManualClock`, steps are driven one by one, waits are conditions with deadlines.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enactor::{
    submit_operator_change, ContentCache, ControlConfig, ControlLoop, Enactor, GuardedPlan,
    OperatorChange, OperatorError, Outcome, PlanBoard, RemovalLedger, ZonePlan, ZoneRound,
};
use guard::{GuardInput, Verdict};
use model::endpoint::address_record_sets;
use model::invariants::check_never_empty;
use model::rdata::{NS, SOA};
use model::{
    BackendConfig, BackendState, Breaker, Check, Clock, EndpointConfig, Generation, GuardPolicy,
    HealthView, ManualClock, Name, Provenance, RData, Record, RefName, ZoneContent,
};
use planner::PlanInput;
use store::{actions, AuditQuery, BreakerChange, Commit, SqliteStore, Store};
use tokio::sync::{watch, Notify};

const ZONE: &str = "example.test.";
const API: &str = "api.example.test.";
const WWW: &str = "www.example.test.";
/// More than the default velocity window: every health change starts a fresh window.
const STEP_MS: u64 = 61_000;
/// How long a condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("test names are valid")
}

fn address(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn static_content() -> ZoneContent {
    let soa = SOA::new(
        name("ns1.example.test."),
        name("hostmaster.example.test."),
        1,
        3600,
        600,
        86400,
        300,
    );
    ZoneContent::from_records(
        name(ZONE),
        vec![
            Record::from_rdata(name(ZONE), 3600, RData::SOA(soa)),
            Record::from_rdata(name(ZONE), 3600, RData::NS(NS(name("ns1.example.test.")))),
        ],
    )
    .expect("the static records are a zone")
}

fn endpoint(owner: &str, backends: &[u8], min_answers: usize) -> EndpointConfig {
    let mut endpoint = EndpointConfig::new(
        name(owner),
        backends
            .iter()
            .map(|last| BackendConfig {
                address: address(*last),
                check: Check::None,
                weight: 1,
            })
            .collect(),
    );
    endpoint.min_answers = min_answers;
    endpoint
}

/// `static_content` with `owner` answering `addresses`.
fn content_with(owner: &str, addresses: &[u8]) -> ZoneContent {
    let mut content = static_content();
    let addresses: BTreeSet<IpAddr> = addresses.iter().map(|last| address(*last)).collect();
    for set in address_record_sets(&name(owner), 30, &addresses) {
        content.put_rrset(set);
    }
    content
}

/// One zone under automation on a real store, driven step by step by the test.
struct World {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    health: watch::Sender<HealthView>,
    backends: Vec<u8>,
    endpoints: Vec<EndpointConfig>,
    config: ControlConfig,
    board: Arc<PlanBoard>,
    replan: Arc<Notify>,
    control: ControlLoop,
    keep_last: usize,
}

impl World {
    fn new(endpoints: Vec<EndpointConfig>, keep_last: usize) -> World {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = dir.path().join("store.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("the store opens"));
        let clock = Arc::new(ManualClock::new(1_000_000));
        let backends: Vec<u8> = endpoints
            .iter()
            .flat_map(|e| e.backends.iter())
            .map(|b| match b.address {
                IpAddr::V4(v4) => v4.octets()[3],
                IpAddr::V6(_) => unreachable!("the tests use IPv4 backends"),
            })
            .collect();
        let (health, health_rx) = watch::channel(HealthView::new());
        let config = ControlConfig {
            keep_last,
            ..ControlConfig::new(vec![ZonePlan {
                origin: name(ZONE),
                static_content: static_content(),
                endpoints: endpoints.clone(),
            }])
        };
        let board = PlanBoard::new();
        let replan = Arc::new(Notify::new());
        let control = ControlLoop::new(
            Arc::clone(&store),
            Arc::clone(&board),
            config.clone(),
            health_rx,
            Arc::clone(&clock) as Arc<dyn Clock>,
            Arc::clone(&replan),
        );
        let world = World {
            _dir: dir,
            path,
            store,
            clock,
            health,
            backends,
            endpoints,
            config,
            board,
            replan,
            control,
            keep_last,
        };
        world.set_health(&[]);
        world
    }

    fn enactor(&self, index: usize) -> Enactor {
        Enactor::new(
            index,
            Arc::clone(&self.store),
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            self.keep_last,
            Arc::clone(&self.replan),
        )
    }

    /// Moves time past the velocity window and marks `down` unhealthy, every other backend
    /// healthy.
    fn set_health(&self, down: &[u8]) {
        let now_ms = self.clock.advance(STEP_MS);
        let mut view = HealthView::new();
        for last in &self.backends {
            view.set(
                address(*last),
                BackendState {
                    healthy: !down.contains(last),
                    since_ms: now_ms,
                },
            );
        }
        self.health.send_replace(view);
    }

    /// One control round for the zone.
    async fn plan(&self) -> ZoneRound {
        let mut rounds = self.control.plan_once().await;
        assert_eq!(rounds.len(), 1);
        rounds.remove(0).1
    }

    async fn publish(&self) -> Arc<GuardedPlan> {
        match self.plan().await {
            ZoneRound::Published(plan) => plan,
            other => panic!("expected a published plan, got {other:?}"),
        }
    }

    fn active(&self) -> Option<Generation> {
        self.store.refs(&name(ZONE)).unwrap().active
    }

    /// The safety contract after a step: the store is consistent, the endpoint answers at
    /// least its floor, the active version and the last K ever-active versions exist, and the
    /// active generation is at least `at_least`. Returns the active generation.
    fn assert_safe(&self, at_least: Option<Generation>) -> Generation {
        assert_safe(&*self.store, &self.endpoints, self.keep_last, at_least)
    }

    /// A plan computed by the real planner from the active version, published without the
    /// guard judging it (the guard-disabled defence test).
    fn publish_unjudged(&self) -> Arc<GuardedPlan> {
        let zone = name(ZONE);
        let active = self.active();
        let content = active.map(|g| self.store.content(&zone, g).unwrap());
        let now_ms = self.clock.now_ms();
        let plan = planner::plan(
            &PlanInput {
                zone_origin: &zone,
                static_content: &self.config.zones[0].static_content,
                endpoints: &self.endpoints,
                health: &self.health.borrow(),
                active: content.as_ref(),
                recent_removals: &[],
                policy: &self.config.policy,
            },
            now_ms,
        );
        self.publish_content(active, plan.content)
    }

    fn publish_content(&self, base: Option<Generation>, content: ZoneContent) -> Arc<GuardedPlan> {
        self.board.publish(GuardedPlan {
            sequence: 0,
            base_content: None,
            zone: name(ZONE),
            base,
            content,
            provenance: Provenance::Planner,
            reason: "test plan".to_string(),
            planned_at_ms: self.clock.now_ms(),
        })
    }

    fn audit(&self) -> Vec<model::AuditEntry> {
        audit_of(&*self.store)
    }
}

/// The whole audit log of the zone, page by page.
fn audit_of(store: &dyn Store) -> Vec<model::AuditEntry> {
    let mut entries: Vec<model::AuditEntry> = Vec::new();
    loop {
        let page = store
            .audit(&AuditQuery {
                zone: Some(name(ZONE)),
                after_sequence: entries.last().map(|entry| entry.sequence),
                ..AuditQuery::default()
            })
            .unwrap();
        if page.is_empty() {
            return entries;
        }
        entries.extend(page);
    }
}

fn assert_safe(
    store: &dyn Store,
    endpoints: &[EndpointConfig],
    keep_last: usize,
    at_least: Option<Generation>,
) -> Generation {
    let zone = name(ZONE);
    store.check_integrity().expect("the store is consistent");
    let active = store
        .refs(&zone)
        .unwrap()
        .active
        .expect("the zone is served");
    let content = store
        .content(&zone, active)
        .expect("the active version exists");
    check_never_empty(&content, endpoints).expect("every endpoint answers its floor");
    if let Some(at_least) = at_least {
        assert!(active >= at_least, "active {active} fell behind {at_least}");
    }
    let mut ever_active: Vec<Generation> = audit_of(store)
        .into_iter()
        .filter(|entry| entry.action == actions::REF_MOVE)
        .filter_map(|entry| entry.to)
        .collect();
    ever_active.dedup();
    for generation in ever_active.iter().rev().take(keep_last) {
        store.version(&zone, *generation).unwrap_or_else(|error| {
            panic!("one of the last {keep_last} versions is gone: {error}")
        });
    }
    active
}

/// Four backends, a floor of two; warmed up with a first load and four applied health
/// changes so that clean-up has old versions to delete.
async fn warmed_up_world() -> (World, Enactor) {
    let world = World::new(vec![endpoint(API, &[1, 2, 3, 4], 2)], 2);
    let b = world.enactor(1);
    let first = world.publish().await;
    assert_eq!(first.base, None);
    assert!(matches!(b.enact(first).await, Outcome::Applied { .. }));
    for down in [1, 2, 3, 4] {
        world.set_health(&[down]);
        let plan = world.publish().await;
        assert!(matches!(b.enact(plan).await, Outcome::Applied { .. }));
        world.assert_safe(None);
    }
    (world, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn october_race_a_stalled_enactor_cannot_overwrite_a_newer_version() {
    let (world, b) = warmed_up_world().await;
    let a = world.enactor(0);
    let base = world.assert_safe(None);

    // Enactor A takes plan G, checks it (its base is active) and stalls before writing.
    world.set_health(&[1]);
    let plan_g = world.publish().await;
    assert_eq!(plan_g.base, Some(base));
    let stalled = a
        .prepare(Arc::clone(&plan_g))
        .await
        .expect("A decides to apply G");
    world.assert_safe(Some(base));

    // The planner emits G+1 … G+10 while A stalls.
    let mut plans = Vec::new();
    for down in [2, 3, 1, 2, 3, 1, 2, 3, 1, 2] {
        world.set_health(&[down]);
        plans.push(world.publish().await);
        assert_eq!(world.assert_safe(Some(base)), base, "nothing applied yet");
    }
    let newest = Arc::clone(plans.last().expect("ten plans"));
    assert_eq!(newest.sequence, plan_g.sequence + 10);

    // Enactor B applies G+10 and runs clean-up.
    let Outcome::Applied {
        generation: applied,
        cleaned,
        ..
    } = b.enact(Arc::clone(&newest)).await
    else {
        panic!("B applies the newest plan");
    };
    assert!(!cleaned.is_empty(), "clean-up deleted old versions");
    assert!(applied > base);
    world.assert_safe(Some(applied));
    // The plans in between are older than the active version now: never applied.
    for older in &plans[..9] {
        assert!(matches!(
            b.enact(Arc::clone(older)).await,
            Outcome::DroppedStale { .. }
        ));
    }

    // A resumes and writes G: the store refuses it inside the commit transaction.
    let audit_before = world.audit().len();
    let outcome = a.apply(stalled).await;
    assert_eq!(
        outcome,
        Outcome::Conflict {
            zone: name(ZONE),
            base: Some(base),
            actual: Some(applied),
        }
    );
    assert_eq!(
        world.assert_safe(Some(applied)),
        applied,
        "G+10 stays active"
    );
    assert_eq!(
        world.audit().len(),
        audit_before,
        "the refused write left no trace"
    );
    tokio::time::timeout(DEADLINE, world.replan.notified())
        .await
        .expect("the conflict asked for a re-plan");
    // G itself is stale for every enactor from now on.
    assert!(matches!(
        world.enactor(2).enact(Arc::clone(&plan_g)).await,
        Outcome::DroppedStale { .. }
    ));

    // Later plans still apply, by A too.
    world.set_health(&[]);
    let later = world.publish().await;
    assert_eq!(later.base, Some(applied));
    let Outcome::Applied { generation, .. } = a.enact(later).await else {
        panic!("a later plan applies");
    };
    assert_eq!(world.assert_safe(Some(generation)), generation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn october_race_fencing_alone_keeps_the_endpoint_when_the_guard_is_disabled() {
    let (world, b) = warmed_up_world().await;
    let a = world.enactor(0);
    let base = world.assert_safe(None);

    // Without the guard, an empty plan G reaches the board; A takes it and stalls.
    let empty = world.publish_content(Some(base), static_content());
    assert!(check_never_empty(&empty.content, &world.endpoints).is_err());
    let stalled = a
        .prepare(Arc::clone(&empty))
        .await
        .expect("A decides to apply G");

    // The planner emits ten plans, published unjudged; B applies the newest and cleans up.
    let mut newest = None;
    for down in [2, 3, 1, 2, 3, 1, 2, 3, 1, 2] {
        world.set_health(&[down]);
        newest = Some(world.publish_unjudged());
        world.assert_safe(Some(base));
    }
    let newest = newest.expect("ten plans");
    let Outcome::Applied {
        generation: applied,
        ..
    } = b.enact(newest).await
    else {
        panic!("B applies the newest plan");
    };
    world.assert_safe(Some(applied));

    // A resumes: fencing alone refuses the stale, empty write.
    assert!(matches!(a.apply(stalled).await, Outcome::Conflict { .. }));
    assert_eq!(world.assert_safe(Some(applied)), applied);
    // And no enactor ever applies G.
    for index in 2..5 {
        assert!(matches!(
            world.enactor(index).enact(Arc::clone(&empty)).await,
            Outcome::DroppedStale { .. }
        ));
    }
    assert_eq!(world.assert_safe(Some(applied)), applied);
    assert_eq!(world.store.breaker(&name(ZONE)).unwrap(), Breaker::Closed);
}

/// The October bug, minus the empty write: checks that its plan is current, stalls, then
/// writes on top of whatever is active (check-then-write, no compare-and-swap). The guard
/// still judges the content against what is active at write time.
async fn naive_write(world: &World, plan: &GuardedPlan) -> Result<Generation, Verdict> {
    let zone = name(ZONE);
    let now_ms = world.clock.now_ms();
    let active = world.active();
    let content = active.map(|g| world.store.content(&zone, g).unwrap());
    let recent = RemovalLedger::new()
        .recent(
            &*world.store,
            &zone,
            &world.endpoints,
            &world.config.policy,
            now_ms,
        )
        .unwrap();
    let verdict = guard::judge(
        &GuardInput {
            origin: &zone,
            base: active,
            active: content.as_ref(),
            proposed: &plan.content,
            // Fencing disabled: the plan is taken to be based on whatever is active.
            proposed_base: active,
            proposed_generation: None,
            endpoints: &world.endpoints,
            recent_removals: &recent,
            policy: &world.config.policy,
            operator_override: None,
        },
        now_ms,
    );
    if let Some(reason) = verdict.breaker_reason() {
        world
            .store
            .append_audit(store::NewAuditEntry {
                at_ms: now_ms,
                actor: "naive-enactor".into(),
                zone: zone.clone(),
                action: actions::REFUSED.into(),
                from: active,
                to: None,
                reason: verdict.to_string(),
            })
            .unwrap();
        world
            .store
            .trip_breaker(BreakerChange {
                zone: &zone,
                reason: &reason,
                actor: "naive-enactor",
                now_ms,
            })
            .unwrap();
        return Err(verdict);
    }
    let version = world
        .store
        .commit(Commit {
            content: &plan.content,
            base: active,
            target: RefName::Active,
            provenance: Provenance::Planner,
            actor: "naive-enactor",
            reason: "check-then-write",
            now_ms,
            automation: true,
        })
        .expect("a check-then-write always wins");
    Ok(version.generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn october_race_guard_alone_refuses_the_empty_plan_when_fencing_is_disabled() {
    let (world, b) = warmed_up_world().await;
    let base = world.assert_safe(None);

    // The naive writer takes an empty plan G (its base is active: the check passes) and
    // stalls; the planner emits ten plans and B applies the newest.
    let empty = world.publish_content(Some(base), static_content());
    assert_eq!(empty.base, world.active(), "the naive check passes now");
    let mut newest = None;
    for down in [2, 3, 1, 2, 3, 1, 2, 3, 1, 2] {
        world.set_health(&[down]);
        newest = Some(world.publish().await);
    }
    let Outcome::Applied {
        generation: last_good,
        ..
    } = b.enact(newest.expect("ten plans")).await
    else {
        panic!("B applies the newest plan");
    };
    world.assert_safe(Some(last_good));

    // The naive writer resumes and writes G over whatever is active: the guard refuses.
    let verdict = naive_write(&world, &empty)
        .await
        .expect_err("the guard refuses the empty plan");
    assert!(verdict.to_string().contains("below floor"), "{verdict}");
    assert_eq!(
        world.assert_safe(Some(last_good)),
        last_good,
        "the last good stays"
    );
    let breaker = world.store.breaker(&name(ZONE)).unwrap();
    assert!(!breaker.allows_automation(), "{breaker}");
    let audit = world.audit();
    assert!(audit
        .iter()
        .any(|e| e.action == actions::REFUSED && e.reason.contains("below floor")));
    assert!(audit.iter().any(|e| e.action == actions::BREAKER_TRIP));

    // Automation stops: the control loop does not plan, enactors leave the zone alone, and
    // the store refuses automated writes.
    world.set_health(&[3]);
    assert!(matches!(world.plan().await, ZoneRound::Frozen(_)));
    let stray = world.publish_content(Some(last_good), content_with(API, &[1, 2, 4]));
    assert!(matches!(b.enact(stray).await, Outcome::Frozen { .. }));
    assert_eq!(world.assert_safe(Some(last_good)), last_good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_enactors_racing_over_1000_plans_only_move_the_active_generation_forward() {
    const PLANS: usize = 1_000;
    let world = World::new(vec![endpoint(API, &[1, 2, 3, 4], 2)], 10);
    let outcomes: Arc<Mutex<Vec<(usize, Outcome)>>> = Arc::default();
    let progressed = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for index in 0..3 {
        let outcomes = Arc::clone(&outcomes);
        let progressed = Arc::clone(&progressed);
        let enactor = world
            .enactor(index)
            .with_observer(Arc::new(move |index, outcome| {
                outcomes.lock().unwrap().push((index, outcome.clone()));
                progressed.notify_one();
            }));
        tasks.push(tokio::spawn(
            enactor.run(Arc::clone(&world.board), shutdown_rx.clone()),
        ));
    }
    // A server's eye view: another connection samples the active answer all along.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let path = world.path.clone();
        let endpoints = world.endpoints.clone();
        let stop = Arc::clone(&stop);
        let samples = Arc::clone(&samples);
        std::thread::spawn(move || {
            let store = SqliteStore::open(&path).unwrap();
            let zone = name(ZONE);
            while !stop.load(Ordering::SeqCst) {
                if let Some(active) = store.refs(&zone).unwrap().active {
                    let content = store.content(&zone, active).expect("active is readable");
                    check_never_empty(&content, &endpoints).expect("never empty");
                    samples.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::yield_now();
            }
        })
    };

    let states: [&[u8]; 5] = [&[], &[1], &[2], &[3], &[4]];
    let mut published = 0;
    let mut step = 0;
    while published < PLANS {
        step += 1;
        assert!(step < PLANS * 10, "plans keep coming");
        world.set_health(states[step % states.len()]);
        match world.plan().await {
            ZoneRound::Published(_) => published += 1,
            ZoneRound::Unchanged => {}
            other => panic!("a health flip is never refused: {other:?}"),
        }
        tokio::task::yield_now().await;
    }
    // Converge: re-plan until the active answer is the healthy set of the last flip.
    let wanted: BTreeSet<IpAddr> = [1, 2, 3, 4]
        .iter()
        .filter(|last| !states[step % states.len()].contains(last))
        .map(|last| address(*last))
        .collect();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let active = world.active().expect("served");
        let content = world.store.content(&name(ZONE), active).unwrap();
        if world.endpoints[0].answers_in(&content) == wanted {
            break;
        }
        match world.plan().await {
            ZoneRound::Published(_) | ZoneRound::Unchanged => {}
            other => panic!("converging is never refused: {other:?}"),
        }
        tokio::time::timeout_at(deadline, progressed.notified())
            .await
            .expect("the enactors converge before the deadline");
    }
    shutdown.send_replace(true);
    for task in tasks {
        task.await.expect("an enactor task ended cleanly");
    }
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("the sampler saw no empty answer");
    assert!(samples.load(Ordering::SeqCst) > 0);

    // Every applied plan was applied from the generation that was active right before it:
    // the ref moves form one chain, and each applied plan's base is the `from` of its move.
    let moves: Vec<(Option<Generation>, Generation, String)> = world
        .audit()
        .into_iter()
        .filter(|e| e.action == actions::REF_MOVE)
        .map(|e| (e.from, e.to.expect("a ref move has a target"), e.actor))
        .collect();
    let mut previous = None;
    for (from, to, _) in &moves {
        assert_eq!(*from, previous, "a move started from the active generation");
        assert!(Some(*to) > previous, "the active generation only rises");
        previous = Some(*to);
    }
    let outcomes = outcomes.lock().unwrap();
    let applied: Vec<(Option<Generation>, Generation)> = outcomes
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Outcome::Applied {
                base, generation, ..
            } => Some((*base, *generation)),
            _ => None,
        })
        .collect();
    assert_eq!(applied.len(), moves.len(), "one ref move per applied plan");
    for (base, generation) in &applied {
        let (from, _, actor) = moves
            .iter()
            .find(|(_, to, _)| to == generation)
            .expect("every applied plan moved the ref");
        assert_eq!(
            from, base,
            "generation {generation} ({actor}) was applied from its base"
        );
    }
    let stale = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::DroppedStale { .. } | Outcome::Conflict { .. }))
        .count();
    let by: BTreeSet<usize> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Applied { .. }))
        .map(|(index, _)| *index)
        .collect();
    assert!(applied.len() >= 10, "plans were applied: {}", applied.len());
    assert!(
        stale > 0,
        "the enactors raced and the losers dropped their plans"
    );
    assert!(!by.is_empty());
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| !matches!(o, Outcome::Frozen { .. } | Outcome::Failed { .. })),
        "normal health changes never freeze or fail"
    );
    world.assert_safe(previous);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_trips_the_breaker_which_survives_a_restart_until_an_operator_thaws_it() {
    let endpoints = vec![endpoint(API, &[1, 2], 1), endpoint(WWW, &[9], 1)];
    let world = World::new(endpoints.clone(), 2);
    let enactor = world.enactor(0);
    assert!(matches!(
        enactor.enact(world.publish().await).await,
        Outcome::Applied { .. }
    ));
    let good = world.assert_safe(None);

    // A reload drops the www endpoint: its records would vanish. The guard refuses.
    let mut reload = world.config.clone();
    reload.zones[0].endpoints.retain(|e| e.name != name(WWW));
    world.control.set_config(reload);
    let ZoneRound::Refused(verdict) = world.plan().await else {
        panic!("the reload's plan is refused");
    };
    assert!(verdict.to_string().contains("below floor"), "{verdict}");
    assert!(verdict.to_string().contains(WWW), "{verdict}");
    let breaker = world.store.breaker(&name(ZONE)).unwrap();
    assert!(!breaker.allows_automation());
    assert!(world
        .audit()
        .iter()
        .any(|e| e.action == actions::REFUSED && e.reason.contains(WWW)));
    assert_eq!(
        world.assert_safe(Some(good)),
        good,
        "the previous answer stays"
    );
    assert!(matches!(world.plan().await, ZoneRound::Frozen(_)));

    // Restart: a new store instance and control loop, the operator's config fixed.
    let path = world.path.clone();
    let dir = world._dir;
    drop((world.control, world.store));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(
        store.breaker(&name(ZONE)).unwrap(),
        breaker,
        "the trip survives"
    );
    let clock = Arc::new(ManualClock::new(world.clock.now_ms()));
    let mut view = HealthView::new();
    for last in [1, 2, 9] {
        view.set(
            address(last),
            BackendState {
                healthy: last != 2,
                since_ms: 0,
            },
        );
    }
    let (_health, health_rx) = watch::channel(view);
    let board = PlanBoard::new();
    let replan = Arc::new(Notify::new());
    let control = ControlLoop::new(
        Arc::clone(&store),
        Arc::clone(&board),
        world.config.clone(),
        health_rx,
        Arc::clone(&clock) as Arc<dyn Clock>,
        Arc::clone(&replan),
    );
    let frozen = control.plan_once().await;
    assert!(matches!(frozen[0].1, ZoneRound::Frozen(_)), "{frozen:?}");

    // An operator thaws; automation continues.
    store
        .thaw_breaker(BreakerChange {
            zone: &name(ZONE),
            reason: "reload reverted",
            actor: "alice",
            now_ms: clock.now_ms(),
        })
        .unwrap();
    let rounds = control.plan_once().await;
    let ZoneRound::Published(plan) = &rounds[0].1 else {
        panic!("automation plans again: {rounds:?}");
    };
    let enactor = Enactor::new(0, Arc::clone(&store), clock, 2, replan);
    let Outcome::Applied { generation, .. } = enactor.enact(Arc::clone(plan)).await else {
        panic!("and applies");
    };
    assert_eq!(
        assert_safe(&*store, &endpoints, 2, Some(generation)),
        generation
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_change_below_the_floor_is_refused_frozen_and_audited_unless_forced() {
    let endpoints = vec![endpoint(API, &[1, 2], 2)];
    let world = World::new(endpoints.clone(), 2);
    let enactor = world.enactor(0);
    assert!(matches!(
        enactor.enact(world.publish().await).await,
        Outcome::Applied { .. }
    ));
    let good = world.assert_safe(None);
    let zone = name(ZONE);
    let policy = GuardPolicy::default();
    let one_left = content_with(API, &[1]);
    let change = |force: Option<String>| OperatorChange {
        zone: &zone,
        content: &one_left,
        endpoints: &endpoints,
        policy: &policy,
        actor: "alice",
        reason: "take backend 2 out",
        force,
        base: None,
        now_ms: world.clock.now_ms(),
        automated: false,
        target: model::RefName::Active,
    };

    let error = submit_operator_change(&*world.store, change(None)).unwrap_err();
    let OperatorError::Refused { reasons, .. } = &error else {
        panic!("refused by the guard: {error}");
    };
    assert!(
        reasons.iter().any(|r| r.contains("below floor")),
        "{reasons:?}"
    );
    assert!(error.to_string().contains("--force"), "{error}");
    assert_eq!(
        world.active(),
        Some(good),
        "the previous version stays active"
    );
    assert!(!world.store.breaker(&zone).unwrap().allows_automation());
    let audit = world.audit();
    assert!(audit.iter().any(|e| e.action == actions::REFUSED
        && e.actor == "alice"
        && e.reason.contains("below floor")));
    assert!(audit.iter().any(|e| e.action == actions::BREAKER_TRIP));

    let forced = submit_operator_change(
        &*world.store,
        change(Some("backend 2 is decommissioned".into())),
    )
    .expect("an audited override passes the floor");
    assert_eq!(world.active(), Some(forced.generation));
    assert_eq!(forced.provenance, Provenance::Forced);
    assert!(
        !world.store.breaker(&zone).unwrap().allows_automation(),
        "a forced version freezes the zone, so automation does not plan it away"
    );
    let last_move = world
        .audit()
        .into_iter()
        .rfind(|e| e.action == actions::REF_MOVE)
        .expect("the override moved the ref");
    assert_eq!(last_move.to, Some(forced.generation));
    assert!(
        last_move.reason.contains("backend 2 is decommissioned"),
        "{}",
        last_move.reason
    );
    assert!(
        last_move
            .reason
            .contains("committed while the zone was frozen: guard refused"),
        "the refusal froze the zone, and the forced version says it came while frozen: {}",
        last_move.reason
    );
    world.store.check_integrity().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_history_is_rebuilt_from_the_store_after_a_restart() {
    let world = World::new(vec![endpoint(API, &[1, 2, 3], 1)], 2);
    let enactor = world.enactor(0);
    enactor.enact(world.publish().await).await;
    world.set_health(&[3]);
    let plan = world.publish().await;
    assert!(matches!(enactor.enact(plan).await, Outcome::Applied { .. }));
    let now_ms = world.clock.now_ms();
    let policy = GuardPolicy::default();
    let reopened = SqliteStore::open(&world.path).unwrap();
    let recent = RemovalLedger::new()
        .recent(&reopened, &name(ZONE), &world.endpoints, &policy, now_ms)
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!((recent[0].name.clone(), recent[0].records), (name(API), 1));
    let later = RemovalLedger::new()
        .recent(
            &reopened,
            &name(ZONE),
            &world.endpoints,
            &policy,
            now_ms + STEP_MS,
        )
        .unwrap();
    assert!(later.is_empty(), "outside the window nothing counts");
}

/// A reader that sees a version before its enactor remembered it (the store follower, woken
/// by the commit) takes the content being committed, but only when it hashes to the
/// version's: anything else is read from the store.
#[test]
fn the_content_being_committed_is_served_only_when_it_is_the_versions() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = SqliteStore::open(dir.path().join("store.db")).expect("the store opens");
    let zone = name("example.test.");
    let committed = content_with("www.example.test.", &[1, 2]);
    fn commit(content: &ZoneContent, base: Option<Generation>) -> Commit<'_> {
        Commit {
            content,
            base,
            target: RefName::Active,
            provenance: Provenance::Planner,
            actor: "test",
            reason: "test",
            now_ms: 1,
            automation: true,
        }
    }
    let first = store.commit(commit(&committed, None)).expect("committed");

    let cache = ContentCache::new();
    cache.committing(&zone, &committed);
    let read = cache
        .content(&store, &zone, first.generation)
        .expect("read");
    assert_eq!(
        read,
        store.content(&zone, first.generation).expect("stored")
    );
    assert_eq!(read.serial(), Some(first.serial));

    let other = content_with("www.example.test.", &[3]);
    let second = store
        .commit(commit(&other, Some(first.generation)))
        .expect("committed");
    let stale = ContentCache::new();
    stale.committing(&zone, &committed);
    let read = stale
        .content(&store, &zone, second.generation)
        .expect("read");
    assert_eq!(
        read,
        store.content(&zone, second.generation).expect("stored")
    );
    assert_eq!(read.hash(), second.content_hash);
}
