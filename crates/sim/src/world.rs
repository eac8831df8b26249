//! One simulated control plane: a zone with two endpoints, the real control loop (planner +
//! guard), N real enactors, a janitor, a health flapper, an operator, a clock, faults and
//! (dnsward's design only) the validator with the servers it asks, over one [`MemoryStore`]. Every step is one actor's move, chosen by the seeded [`Rng`];
//! async calls are driven to completion one at a time on a current-thread runtime, so
//! nothing runs concurrently and a seed names one interleaving.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use enactor::{
    submit_operator_change, ControlConfig, ControlLoop, Enactor, OperatorChange, OperatorError,
    Outcome, PlanBoard, Prepared, RemovalLedger, ZonePlan, ZoneRound,
};
use model::endpoint::address_record_sets;
use model::rdata::{NS, SOA};
use model::{
    AllDownPolicy, BackendConfig, BackendState, Breaker, Check, Clock, EndpointConfig, Generation,
    HealthView, ManualClock, Name, Provenance, RData, Record, RecordType, RefName, ZoneContent,
};
use planner::PlanInput;
use store::{BreakerChange, Commit, Fault, MemoryStore, SetPinned, Store};
use tokio::runtime::Runtime;
use tokio::sync::{watch, Notify};

use crate::checks::{Checker, Invariant, Violation};
use crate::rng::Rng;
use crate::trace::Trace;
use crate::validate::{Servers, SimValidator, VALIDATOR_INTERVAL_STEPS};
use crate::SimConfig;

pub(crate) const ZONE: &str = "example.test.";
pub(crate) const API: &str = "api.example.test.";
pub(crate) const DB: &str = "db.example.test.";
/// Versions that were active which clean-up keeps: the smallest allowed, so clean-up runs hot.
pub(crate) const KEEP_LAST: usize = 2;
/// Static names besides the apex, ns1 and www.
const STATIC_HOSTS: u8 = 24;
/// Mixed into the seed for the stream that decides when the servers' encoders run.
const ENCODE_STREAM: u64 = 0x656e_636f_6465;
/// Where the virtual clock starts (2026-01-01T00:00:00Z).
const START_MS: u64 = 1_767_225_600_000;
/// Actor name of the operator in the audit log.
const OPERATOR: &str = "operator";
/// Actor name of the faults' rogue writer (a buggy automation that bypasses planner and guard).
pub(crate) const ROGUE: &str = "rogue-automation";
/// An address no endpoint has as a backend (TEST-NET-1).
const FOREIGN: [u8; 4] = [192, 0, 2, 66];

/// A bad state the faults write past planner and guard, for the validator to repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadState {
    /// A version with no address at the api endpoint (floor 2) becomes active.
    EmptiedEndpoint,
    /// A version whose db endpoint also answers 192.0.2.66, no backend of it, becomes active.
    ForeignAddress,
    /// The active version is deleted while live: the October end state.
    DeletedActive,
    /// Canary mode: a canary with no address at the api endpoint.
    EmptiedCanary,
}

impl BadState {
    /// Every kind; the last only in canary mode.
    pub const ALL: [BadState; 4] = [
        BadState::EmptiedEndpoint,
        BadState::ForeignAddress,
        BadState::DeletedActive,
        BadState::EmptiedCanary,
    ];
}

/// Who moves in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// A node's control loop plans.
    Plan(usize),
    Enactor(usize),
    /// A node reads the other nodes' published verdicts.
    Exchange(usize),
    /// A node is cut off from a backend, or reaches it again.
    Blind,
    Janitor,
    Flap,
    Clock,
    Operator,
    Fault,
    Crash,
    Restart,
    Validator,
    /// A bad state written past planner and guard: see [`World::write_bad_state`].
    Rogue,
}

/// The phase of a run: faults first, then calm while liveness is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Faults,
    Calm,
}

/// One enactor and what it holds between steps.
pub(crate) struct Slot {
    /// The node it runs on.
    pub(crate) node: usize,
    pub(crate) enactor: Enactor,
    /// The newest plan sequence this enactor has taken (its in-memory `seen`).
    pub(crate) seen: u64,
    /// A plan it looked at and decided to apply, not applied yet.
    pub(crate) held: Option<Prepared>,
    /// Stalled: not scheduled before this step.
    pub(crate) stalled_until: Option<u64>,
}

/// One node of the control plane: its control loop (planner and guard), the board its
/// enactors take plans from, and the health it plans from. Every node shares the one store.
pub(crate) struct SimNode {
    /// Empty with one node (actors keep their single-node names).
    pub(crate) name: String,
    /// Backends this node's checkers cannot reach: its own verdict says down.
    blind: BTreeSet<IpAddr>,
    /// Its copy of every node's own verdicts (its own always current), as of its last
    /// exchange: what the store's health keys held when it read them.
    seen: Vec<HealthView>,
    /// The combination by majority of `seen`: what the control loop plans from.
    health: watch::Sender<HealthView>,
    pub(crate) board: Arc<PlanBoard>,
    replan: Arc<Notify>,
    control: ControlLoop,
}

/// Counts for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
    pub applied: u64,
    pub dropped_stale: u64,
    pub conflicts: u64,
    pub refused: u64,
    pub faults: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub stalls: u64,
    pub validator_rounds: u64,
    /// Bad states the faults wrote (rogue writes, deleted active versions, bad canaries).
    pub bad_states: u64,
    /// Rollbacks the validator made.
    pub rollbacks: u64,
    pub canaries_refused: u64,
    pub canaries_promoted: u64,
    /// Several nodes: times a node was cut off from a backend.
    pub cut_offs: u64,
    /// Several nodes: plans published by a node other than the first.
    pub plans_elsewhere: u64,
    /// How the bad states ended (the checkers' count).
    pub repairs: crate::checks::Repairs,
}

pub(crate) struct World<'rt> {
    pub(crate) runtime: &'rt Runtime,
    pub(crate) config: SimConfig,
    pub(crate) rng: Rng,
    /// When the servers' encoders run: a stream of its own, so the actors' moves for a seed
    /// do not depend on it.
    encode_rng: Rng,
    /// The actors' handle: faults are injected here.
    pub(crate) store: MemoryStore,
    pub(crate) store_dyn: Arc<dyn Store>,
    /// The checkers' client: never faulted.
    pub(crate) reader: MemoryStore,
    pub(crate) clock: Arc<ManualClock>,
    truth: BTreeMap<IpAddr, bool>,
    pub(crate) zone: ZonePlan,
    control_config: ControlConfig,
    /// The nodes; the naive mode has one.
    pub(crate) nodes: Vec<SimNode>,
    /// Several nodes: a backend that never goes down and that at most a minority of nodes
    /// is ever cut off from (the quorum-holds checker's subject).
    steady: Option<IpAddr>,
    /// Violations found while a step ran (the quorum-holds checker), reported by `check`.
    pending: Vec<Violation>,
    pub(crate) slots: Vec<Slot>,
    /// Naive mode: the plan sequence of each applied version (the October "plan number").
    pub(crate) naive_plans: BTreeMap<Generation, u64>,
    pub(crate) checker: Checker,
    /// The validator; `None` in the naive mode (the October design had none).
    pub(crate) validator: Option<SimValidator>,
    /// What the main server and the canary listener serve.
    pub(crate) servers: Servers,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) step: u64,
    start_ms: u64,
}

impl<'rt> World<'rt> {
    pub(crate) fn new(runtime: &'rt Runtime, config: SimConfig) -> World<'rt> {
        let mut rng = Rng::new(config.seed);
        let clock = Arc::new(ManualClock::new(START_MS + rng.range(0, 86_400_000)));
        let store = MemoryStore::new();
        if config.broken_changes {
            store.break_changes();
        }
        let encode_rng = Rng::new(config.seed ^ ENCODE_STREAM);
        let servers = Servers::new(store.client());
        let reader = store.client();
        let store_dyn: Arc<dyn Store> = Arc::new(store.clone());
        let endpoints = endpoints();
        let zone = ZonePlan {
            origin: name(ZONE),
            static_content: static_content(),
            endpoints: endpoints.clone(),
        };
        let control_config = ControlConfig {
            keep_last: KEEP_LAST,
            enactor_count: config.enactors,
            ..ControlConfig::new(vec![zone.clone()])
        };
        let truth: BTreeMap<IpAddr, bool> = endpoints
            .iter()
            .flat_map(|endpoint| endpoint.backends.iter())
            .map(|backend| (backend.address, true))
            .collect();
        let count = if config.naive { 1 } else { config.nodes.max(1) };
        let nodes: Vec<SimNode> = (0..count)
            .map(|index| {
                let (health, health_rx) = watch::channel(HealthView::new());
                let board = PlanBoard::new();
                let replan = Arc::new(Notify::new());
                let control = ControlLoop::new(
                    Arc::clone(&store_dyn),
                    Arc::clone(&board),
                    control_config.clone(),
                    health_rx,
                    Arc::clone(&clock) as Arc<dyn Clock>,
                    Arc::clone(&replan),
                );
                SimNode {
                    name: if count == 1 {
                        String::new()
                    } else {
                        node_name(index)
                    },
                    blind: BTreeSet::new(),
                    seen: vec![HealthView::new(); count],
                    health,
                    board,
                    replan,
                    control,
                }
            })
            .collect();
        let steady = (count > 1).then(|| endpoints[0].backends[0].address);
        let validator = (!config.naive).then(|| SimValidator::start(store.client(), &name(ZONE)));
        let mut checker = Checker::new(name(ZONE), endpoints.clone(), KEEP_LAST);
        checker.rogue_actor(ROGUE);
        let mut world = World {
            runtime,
            config,
            rng,
            encode_rng,
            store,
            store_dyn,
            reader,
            clock,
            truth,
            checker,
            validator,
            servers,
            zone,
            control_config,
            nodes,
            steady,
            pending: Vec::new(),
            slots: Vec::new(),
            naive_plans: BTreeMap::new(),
            trace: Trace::default(),
            stats: Stats::default(),
            step: 0,
            start_ms: 0,
        };
        world.start_ms = world.now_ms();
        world.slots = (0..world.config.enactors * world.nodes.len())
            .map(|index| world.new_slot(index))
            .collect();
        world.publish_health();
        for node in 0..world.nodes.len() {
            world.exchange_views(node);
        }
        world
    }

    /// Enactor `index` of all: node `index / enactors`, its enactor `index % enactors`.
    fn new_slot(&self, index: usize) -> Slot {
        let target = if self.config.canary {
            RefName::Canary
        } else {
            RefName::Active
        };
        let per_node = self.config.enactors.max(1);
        let node = index / per_node;
        Slot {
            node,
            enactor: Enactor::new(
                index % per_node,
                Arc::clone(&self.store_dyn),
                Arc::clone(&self.clock) as Arc<dyn Clock>,
                KEEP_LAST,
                Arc::clone(&self.nodes[node].replan),
            )
            .on_node(&self.nodes[node].name)
            .with_target(target),
            seen: 0,
            held: None,
            stalled_until: None,
        }
    }

    /// What the first node plans from (the only node of the naive mode).
    pub(crate) fn health_view(&self) -> HealthView {
        self.nodes[0].health.borrow().clone()
    }

    /// The first node's plan board (the only node of the naive mode).
    pub(crate) fn board(&self) -> &Arc<PlanBoard> {
        &self.nodes[0].board
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Takes one step: picks an actor among those that can move, moves it, records it.
    pub(crate) fn step(&mut self, phase: Phase) {
        self.step += 1;
        self.stats.steps += 1;
        let actor = self.pick(phase);
        let line = match actor {
            Actor::Plan(_) if self.config.naive => self.naive_plan(),
            Actor::Plan(node) => self.plan(node),
            Actor::Enactor(index) => self.enact(index, phase),
            Actor::Exchange(node) => self.exchange(node),
            Actor::Blind => self.blind(),
            Actor::Janitor if self.config.naive => self.naive_clean_up("janitor"),
            Actor::Janitor => self.clean_up(),
            Actor::Flap => self.flap(),
            Actor::Clock => self.tick(phase),
            Actor::Operator => self.operate(),
            Actor::Fault => self.inject(),
            Actor::Crash => self.crash(),
            Actor::Restart => self.restart(),
            Actor::Validator => self.validate(),
            Actor::Rogue => self.write_bad_state(),
        };
        let line = format!("{} t+{}s {line}", self.step, self.elapsed_secs());
        self.trace.push(line);
        if let Some(validator) = &mut self.validator {
            validator.idle_steps += 1;
            // The servers load what the step made (the naive mode has no validator to serve).
            self.servers.follow(self.config.canary);
            // The encoder thread finishes a whole encoding at some step.
            if self.encode_rng.chance(1, 3) {
                self.servers.encode();
                self.servers.follow(self.config.canary);
            }
        }
    }

    /// The validator's round against what the servers serve.
    fn validate(&mut self) -> String {
        let now_ms = self.now_ms();
        let Some(validator) = &mut self.validator else {
            return "validator: none".to_string();
        };
        self.stats.validator_rounds += 1;
        let (line, outcome) = validator.round(
            &self.zone,
            &mut self.servers,
            &self.truth,
            self.config.canary,
            now_ms,
        );
        self.stats.rollbacks += u64::from(outcome.rolled_back);
        self.stats.canaries_refused += u64::from(outcome.canary_refused);
        self.stats.canaries_promoted += u64::from(outcome.canary_promoted);
        line
    }

    fn elapsed_secs(&self) -> u64 {
        self.now_ms().saturating_sub(self.start_ms) / 1000
    }

    fn pick(&mut self, phase: Phase) -> Actor {
        // The validator's interval timer: it never goes longer than this without a round.
        if self
            .validator
            .as_ref()
            .is_some_and(|v| v.idle_steps >= VALIDATOR_INTERVAL_STEPS)
        {
            return Actor::Validator;
        }
        let mut actors: Vec<(Actor, u64)> = vec![(Actor::Plan(0), 16), (Actor::Janitor, 4)];
        for node in 1..self.nodes.len() {
            actors.push((Actor::Plan(node), 16));
        }
        if self.nodes.len() > 1 {
            actors.extend((0..self.nodes.len()).map(|node| (Actor::Exchange(node), 8)));
            if phase == Phase::Faults {
                actors.push((Actor::Blind, 4));
            }
        }
        let latest: Vec<Option<u64>> = self
            .nodes
            .iter()
            .map(|node| {
                node.board
                    .latest(&self.zone.origin)
                    .map(|plan| plan.sequence)
            })
            .collect();
        for (index, slot) in self.slots.iter().enumerate() {
            let stalled = slot.stalled_until.is_some_and(|until| until > self.step);
            let has_work =
                slot.held.is_some() || latest[slot.node].is_some_and(|seq| seq > slot.seen);
            if has_work && !stalled {
                actors.push((Actor::Enactor(index), 14));
            }
        }
        match phase {
            Phase::Faults => actors.extend([
                (Actor::Flap, 10),
                (Actor::Clock, 10),
                (Actor::Operator, 2),
                (Actor::Fault, 3),
                (Actor::Crash, 2),
                (Actor::Restart, 1),
            ]),
            Phase::Calm => actors.push((Actor::Clock, 6)),
        }
        if self.validator.is_some() {
            actors.push((Actor::Validator, 6));
            if phase == Phase::Faults {
                actors.push((Actor::Rogue, 1));
            }
        }
        // The plan actor always has weight, so there is always a pick.
        self.rng.weighted(&actors).unwrap_or(Actor::Plan(0))
    }

    /// Every node's checkers report: each node's own verdicts are the truth, less the
    /// backends it is cut off from. A node plans from its own current verdicts combined with
    /// the others' as of its last exchange.
    fn publish_health(&mut self) {
        let now_ms = self.now_ms();
        for index in 0..self.nodes.len() {
            let mut view = HealthView::new();
            for (address, healthy) in &self.truth {
                view.set(
                    *address,
                    BackendState {
                        healthy: *healthy && !self.nodes[index].blind.contains(address),
                        since_ms: now_ms,
                    },
                );
            }
            self.nodes[index].seen[index] = view;
            self.combine(index);
        }
    }

    /// The node's view to plan from: with one node its own verdicts, with several their
    /// combination by majority ([`model::health::combine`], as `[health] quorum`'s default).
    fn combine(&self, index: usize) {
        let node = &self.nodes[index];
        let view = if node.seen.len() == 1 {
            node.seen[0].clone()
        } else {
            let views: Vec<&HealthView> = node.seen.iter().collect();
            model::health::combine(&views, model::Quorum::Majority)
        };
        node.health.send_replace(view);
    }

    /// Node `index` reads every node's published verdicts.
    fn exchange_views(&mut self, index: usize) {
        let own: Vec<HealthView> = (0..self.nodes.len())
            .map(|other| self.nodes[other].seen[other].clone())
            .collect();
        self.nodes[index].seen = own;
        self.combine(index);
    }

    fn exchange(&mut self, index: usize) -> String {
        self.exchange_views(index);
        let down: Vec<String> = self.nodes[index]
            .health
            .borrow()
            .backends
            .iter()
            .filter(|(_, state)| !state.healthy)
            .map(|(address, _)| address.to_string())
            .collect();
        format!(
            "{}: reads the others' verdicts; plans with down: {}",
            self.nodes[index].name,
            if down.is_empty() {
                "none".to_string()
            } else {
                down.join(", ")
            }
        )
    }

    /// A node is cut off from a backend (its own checks fail while the backend is up), or
    /// reaches it again. At most a minority of nodes is ever cut off from the steady backend.
    fn blind(&mut self) -> String {
        let index = self.rng.index(self.nodes.len());
        let addresses: Vec<IpAddr> = self.truth.keys().copied().collect();
        let address = addresses[self.rng.index(addresses.len())];
        let name = self.nodes[index].name.clone();
        if self.nodes[index].blind.remove(&address) {
            self.publish_health();
            return format!("{name}: reaches {address} again");
        }
        if Some(address) == self.steady {
            let blind = self
                .nodes
                .iter()
                .filter(|node| node.blind.contains(&address))
                .count();
            if 2 * (blind + 1) > self.nodes.len() {
                return format!("{name}: stays in reach of {address} (a majority would not)");
            }
        }
        self.nodes[index].blind.insert(address);
        self.stats.cut_offs += 1;
        self.publish_health();
        format!("{name}: cut off from {address}")
    }

    /// One round of the real control loop: plan, judge, publish or refuse and trip.
    fn plan(&mut self, node: usize) -> String {
        let rounds = self.runtime.block_on(self.nodes[node].control.plan_once());
        let Some((_, round)) = rounds.into_iter().next() else {
            return "plan: no zone".to_string();
        };
        let who = if self.nodes[node].name.is_empty() {
            "plan".to_string()
        } else {
            format!("{} plan", self.nodes[node].name)
        };
        match round {
            ZoneRound::Published(plan) => {
                self.checker.accepted(plan.base, &plan.content);
                self.check_quorum(node, &plan.content);
                self.stats.plans_elsewhere += u64::from(node > 0);
                format!(
                    "{who}: published #{} on {}{}",
                    plan.sequence,
                    show(plan.base),
                    answers(&plan.content)
                )
            }
            ZoneRound::Unchanged => format!("{who}: unchanged"),
            ZoneRound::Frozen(breaker) => format!("{who}: frozen ({})", breaker.state_name()),
            ZoneRound::Refused(verdict) => {
                self.stats.refused += 1;
                // The refused content, recomputed from the same inputs (the planner is pure
                // and nothing moved in between), for the refused-never-active checker.
                if let Some((base, content)) = self.replay_plan(node) {
                    self.checker.refused(base, content);
                }
                format!("{who}: refused ({verdict})")
            }
            ZoneRound::Failed(error) => format!("{who}: failed ({})", first_clause(&error)),
            ZoneRound::AwaitingProbes { unprobed } => {
                format!("{who}: waits for the first probes of {unprobed} backends")
            }
        }
    }

    /// The quorum-holds checker: the steady backend (up, and at most a minority of nodes
    /// cut off from it) is in every plan a node publishes.
    fn check_quorum(&mut self, node: usize, content: &ZoneContent) {
        let Some(steady) = self.steady else {
            return;
        };
        let owner = &self.zone.endpoints[0].name;
        if !self.zone.endpoints[0].answers_in(content).contains(&steady) {
            let blind: Vec<&str> = self
                .nodes
                .iter()
                .filter(|other| other.blind.contains(&steady))
                .map(|other| other.name.as_str())
                .collect();
            self.pending.push(Violation::new(
                Invariant::QuorumHolds,
                format!(
                    "step {}: {} published a plan without {steady} at {owner}, which only {} \
                     of {} nodes cannot reach",
                    self.step,
                    self.nodes[node].name,
                    if blind.is_empty() {
                        "none".to_string()
                    } else {
                        blind.join(", ")
                    },
                    self.nodes.len()
                ),
            ));
        }
    }

    /// The plan the control loop just made, recomputed from the store as it is.
    fn replay_plan(&self, node: usize) -> Option<(Option<Generation>, ZoneContent)> {
        let reader = &self.reader;
        let origin = &self.zone.origin;
        let active = reader.refs(origin).ok()?.active;
        let content = match active {
            Some(generation) => Some(reader.content(origin, generation).ok()?),
            None => None,
        };
        let now_ms = self.now_ms();
        let removals = RemovalLedger::new()
            .recent(
                reader,
                origin,
                &self.zone.endpoints,
                &self.control_config.policy,
                now_ms,
            )
            .ok()?;
        let health = self.nodes[node].health.borrow().clone();
        let static_content = self.static_records();
        let plan = planner::plan(
            &PlanInput {
                zone_origin: origin,
                static_content: &static_content,
                endpoints: &self.zone.endpoints,
                health: &health,
                active: content.as_ref(),
                recent_removals: &removals,
                policy: &self.control_config.policy,
            },
            now_ms,
        );
        Some((active, plan.content))
    }

    /// An enactor's move: apply the plan it holds, or take the newest plan and prepare it.
    fn enact(&mut self, index: usize, phase: Phase) -> String {
        let actor = self.slots[index].enactor.actor().to_string();
        if let Some(prepared) = self.slots[index].held.take() {
            let sequence = prepared.plan.sequence;
            if self.config.naive {
                return format!(
                    "{actor} apply #{sequence}: {}",
                    self.naive_apply(index, prepared)
                );
            }
            let outcome = self
                .runtime
                .block_on(self.slots[index].enactor.apply(prepared));
            return format!("{actor} apply #{sequence}: {}", self.outcome(&outcome));
        }
        let node = self.slots[index].node;
        let Some(plan) = self.nodes[node].board.latest(&self.zone.origin) else {
            return format!("{actor}: no plan");
        };
        self.slots[index].seen = plan.sequence;
        let sequence = plan.sequence;
        match self
            .runtime
            .block_on(self.slots[index].enactor.prepare(plan))
        {
            Ok(prepared) => {
                let active = prepared.active;
                self.slots[index].held = Some(prepared);
                // Enactor 0 is the one that stalls, as one of October's did.
                if index == 0 && phase == Phase::Faults && self.rng.chance(1, 2) {
                    let steps = self.rng.range(20, 200);
                    self.slots[index].stalled_until = Some(self.step + steps);
                    self.stats.stalls += 1;
                    return format!(
                        "{actor} prepare #{sequence}: holds it (active {}) and stalls for \
                         {steps} steps",
                        show(active)
                    );
                }
                format!(
                    "{actor} prepare #{sequence}: holds it (active {})",
                    show(active)
                )
            }
            Err(outcome) => format!("{actor} prepare #{sequence}: {}", self.outcome(&outcome)),
        }
    }

    pub(crate) fn outcome(&mut self, outcome: &Outcome) -> String {
        match outcome {
            Outcome::Applied {
                base,
                generation,
                cleaned,
                target: RefName::Canary,
                ..
            } => {
                self.stats.applied += 1;
                format!(
                    "canaried g{generation} on {} (cleaned {})",
                    show(*base),
                    list(cleaned)
                )
            }
            Outcome::Applied {
                base,
                generation,
                cleaned,
                ..
            } => {
                self.stats.applied += 1;
                format!(
                    "applied g{generation} on {} (cleaned {})",
                    show(*base),
                    list(cleaned)
                )
            }
            Outcome::DroppedStale { base, active, .. } => {
                self.stats.dropped_stale += 1;
                format!(
                    "dropped stale (base {}, active {})",
                    show(*base),
                    show(*active)
                )
            }
            Outcome::Conflict { base, actual, .. } => {
                self.stats.conflicts += 1;
                format!("conflict (base {}, active {})", show(*base), show(*actual))
            }
            Outcome::Replan { base, active, .. } => {
                format!("re-plan (base {}, active {})", show(*base), show(*active))
            }
            Outcome::Frozen { reason, .. } => format!("frozen ({})", first_clause(reason)),
            Outcome::Failed { error, .. } => format!("failed ({})", first_clause(error)),
            // Outcomes added later (canaries) are traced as they print.
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        }
    }

    /// The janitor: clean-up by reachability, outside any enactor.
    fn clean_up(&mut self) -> String {
        let now_ms = self.now_ms();
        match self
            .store
            .clean_up(&self.zone.origin, KEEP_LAST, "janitor", now_ms)
        {
            Ok(deleted) => format!("janitor: cleaned {}", list(&deleted)),
            Err(error) => format!("janitor: failed ({})", first_clause(&error.to_string())),
        }
    }

    fn flap(&mut self) -> String {
        let steady = self.steady;
        let addresses: Vec<IpAddr> = self
            .truth
            .keys()
            .copied()
            .filter(|address| Some(*address) != steady)
            .collect();
        let address = addresses[self.rng.index(addresses.len())];
        let healthy = {
            let state = self.truth.entry(address).or_insert(true);
            *state = !*state;
            *state
        };
        self.publish_health();
        format!("health: {address} {}", if healthy { "up" } else { "down" })
    }

    fn tick(&mut self, phase: Phase) -> String {
        if phase == Phase::Faults {
            if self.rng.chance(1, 20) {
                let now = self.clock.advance(3_600_000);
                return format!("clock: jumps forward 1 h to {now}");
            }
            if self.rng.chance(1, 30) {
                let back = self.rng.range(1_000, 60_000);
                self.clock.set(self.now_ms().saturating_sub(back));
                return format!("clock: jumps back {back} ms");
            }
        }
        let ms = self.rng.range(100, 90_000);
        self.clock.advance(ms);
        format!("clock: +{ms} ms")
    }

    /// The operator: thaws a frozen zone, pins or unpins a version, or submits a change
    /// (sometimes one that would empty an endpoint, which the guard refuses).
    fn operate(&mut self) -> String {
        let origin = self.zone.origin.clone();
        let now_ms = self.now_ms();
        if let Ok(breaker @ Breaker::Tripped { .. }) = self.store.breaker(&origin) {
            return self.thaw(&breaker);
        }
        if self.config.naive {
            return "operator: looks".to_string();
        }
        match self.rng.index(3) {
            0 => {
                // The validator's last known good pin is the validator's business.
                let kept = self.validator.as_ref().and_then(SimValidator::pinned);
                let mut history = self.store.history(&origin, 16).unwrap_or_default();
                history.retain(|version| Some(version.generation) != kept);
                if history.is_empty() {
                    return "operator: nothing to pin".to_string();
                }
                let version = &history[self.rng.index(history.len())];
                let pinned = !version.pinned;
                let result = self.store.set_pinned(SetPinned {
                    zone: &origin,
                    generation: version.generation,
                    pinned,
                    actor: OPERATOR,
                    reason: "known good",
                    now_ms,
                });
                format!(
                    "operator: {} g{}: {}",
                    if pinned { "pin" } else { "unpin" },
                    version.generation,
                    result.map_or_else(|e| first_clause(&e.to_string()), |()| "ok".into())
                )
            }
            choice => {
                // 1: an edit that empties the api endpoint; 2: one that adds a record.
                let content = if choice == 1 {
                    static_content()
                } else {
                    let mut content = self.active_content().unwrap_or_else(static_content);
                    let set = address_record_sets(
                        &name("extra.example.test."),
                        60,
                        &BTreeSet::from([IpAddr::from([10, 9, 9, 9])]),
                    );
                    for set in set {
                        content.put_rrset(set);
                    }
                    content
                };
                let base = self.store.refs(&origin).ok().and_then(|refs| refs.active);
                let result = submit_operator_change(
                    &self.store,
                    OperatorChange {
                        zone: &origin,
                        content: &content,
                        endpoints: &self.zone.endpoints,
                        policy: &self.control_config.policy,
                        actor: OPERATOR,
                        reason: "sim edit",
                        force: None,
                        base: None,
                        now_ms,
                        automated: false,
                        target: model::RefName::Active,
                    },
                );
                match result {
                    Ok(version) => format!("operator: edit applied g{}", version.generation),
                    Err(OperatorError::Refused { reasons, .. }) => {
                        self.stats.refused += 1;
                        self.checker.refused(base, content);
                        format!("operator: edit refused ({})", reasons.join("; "))
                    }
                    Err(OperatorError::Store(error)) => {
                        format!(
                            "operator: edit failed ({})",
                            first_clause(&error.to_string())
                        )
                    }
                }
            }
        }
    }

    pub(crate) fn thaw(&mut self, breaker: &Breaker) -> String {
        let origin = self.zone.origin.clone();
        let now_ms = self.now_ms();
        let result = self.store.thaw_breaker(BreakerChange {
            zone: &origin,
            reason: "read the reason, fixed the cause",
            actor: OPERATOR,
            now_ms,
        });
        format!(
            "operator: thaw ({breaker}): {}",
            result.map_or_else(|e| first_clause(&e.to_string()), |_| "ok".into())
        )
    }

    fn active_content(&self) -> Option<ZoneContent> {
        let origin = &self.zone.origin;
        let active = self.reader.refs(origin).ok()?.active?;
        self.reader.content(origin, active).ok()
    }

    fn inject(&mut self) -> String {
        self.stats.faults += 1;
        let fault = if self.rng.chance(1, 2) {
            Fault::Lost
        } else {
            Fault::Unacknowledged
        };
        self.store.inject(fault);
        match fault {
            Fault::Lost => "fault: the next store call times out, not done".to_string(),
            Fault::Unacknowledged => {
                "fault: the next store call times out after it is done".to_string()
            }
        }
    }

    /// An enactor dies: between prepare and apply (it loses its plan), or after the store
    /// committed but before it heard back. It comes back with nothing in memory.
    fn crash(&mut self) -> String {
        self.stats.crashes += 1;
        let index = self.rng.index(self.slots.len());
        let actor = self.slots[index].enactor.actor().to_string();
        let mut line = format!("crash: {actor}");
        if self.slots[index].held.is_some() && self.rng.chance(1, 2) {
            self.store.inject(Fault::Unacknowledged);
            let held = self.slots[index].held.take();
            if let Some(prepared) = held {
                let result = if self.config.naive {
                    self.naive_apply(index, prepared)
                } else {
                    let outcome = self
                        .runtime
                        .block_on(self.slots[index].enactor.apply(prepared));
                    self.outcome(&outcome)
                };
                line.push_str(&format!(" after its commit reached the store ({result})"));
            }
        } else if self.slots[index].held.is_some() {
            line.push_str(" between prepare and apply");
        }
        self.slots[index] = self.new_slot(index);
        line
    }

    /// The node restarts: the control loop (its removal ledger, its retired endpoints) and
    /// every enactor but a stalled one (on another node) start again with empty memory.
    fn restart(&mut self) -> String {
        self.stats.restarts += 1;
        let node = if self.nodes.len() == 1 {
            0
        } else {
            self.rng.index(self.nodes.len())
        };
        let health_rx = self.nodes[node].health.subscribe();
        self.nodes[node].control = ControlLoop::new(
            Arc::clone(&self.store_dyn),
            Arc::clone(&self.nodes[node].board),
            self.control_config.clone(),
            health_rx,
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            Arc::clone(&self.nodes[node].replan),
        );
        let mut restarted = Vec::new();
        for index in 0..self.slots.len() {
            if self.slots[index].node != node
                || self.slots[index]
                    .stalled_until
                    .is_some_and(|until| until > self.step)
            {
                continue;
            }
            self.slots[index] = self.new_slot(index);
            restarted.push(index.to_string());
        }
        if self.validator.is_some() {
            let mut validator = SimValidator::start(self.reader.client(), &self.zone.origin);
            // Like the shell, a validator that starts takes its first round at once.
            validator.idle_steps = VALIDATOR_INTERVAL_STEPS;
            self.validator = Some(validator);
            restarted.push("validator".to_string());
        }
        let name = &self.nodes[node].name;
        let name = if name.is_empty() {
            String::new()
        } else {
            format!(" {name}")
        };
        format!(
            "restart{name}: control loop and enactors {}",
            restarted.join(",")
        )
    }

    /// Faults stop: stalled enactors resume, no fault is pending, health holds still.
    pub(crate) fn calm_down(&mut self) -> String {
        for slot in &mut self.slots {
            slot.stalled_until = None;
        }
        if self.store.fault_pending() {
            // A pending fault is spent on a harmless read.
            let _ = self.store.refs(&self.zone.origin);
        }
        if self.nodes.len() > 1 {
            for node in &mut self.nodes {
                node.blind.clear();
            }
            self.publish_health();
            return "calm: faults stop, stalled enactors resume, every node reaches every backend"
                .to_string();
        }
        "calm: faults stop, stalled enactors resume".to_string()
    }

    /// What the control loop plans from: the zone file with the operator's edits (records
    /// no endpoint owns stay as an operator left them).
    fn static_records(&self) -> ZoneContent {
        self.nodes[0]
            .control
            .static_records(&self.zone.origin)
            .unwrap_or_else(|| self.zone.static_content.clone())
    }

    /// Converged when the planner, given the active content and no removal history, proposes
    /// nothing new: every endpoint answers what health asks for.
    pub(crate) fn converged(&self) -> bool {
        let Some(active) = self.active_content() else {
            return false;
        };
        // Converged when every node plans from the same view and that view asks for nothing
        // new (after the faults, nodes reach every backend and exchange verdicts).
        let health = self.health_view();
        if self
            .nodes
            .iter()
            .any(|node| *node.health.borrow() != health)
        {
            return false;
        }
        let static_content = self.static_records();
        let plan = planner::plan(
            &PlanInput {
                zone_origin: &self.zone.origin,
                static_content: &static_content,
                endpoints: &self.zone.endpoints,
                health: &health,
                active: Some(&active),
                recent_removals: &[],
                policy: &self.control_config.policy,
            },
            self.now_ms(),
        );
        crate::checks::same(&plan.content, &active)
    }

    /// The checkers, after a step.
    pub(crate) fn check(&mut self) -> Vec<Violation> {
        let mut found = self.checker.check(&self.reader, self.step);
        found.append(&mut self.pending);
        if self.validator.is_some() {
            if let Some(detail) = self.servers.wrong_answer(&self.zone.origin) {
                found.push(Violation::new(Invariant::ServedAnswers, detail));
            }
        }
        found
    }

    /// A bad state written past planner and guard, as a buggy automation or clean-up would:
    /// a version that empties the api endpoint or answers an address no endpoint has, or the
    /// active version deleted while live (October's end state), or (canary mode) a canary that
    /// empties the api endpoint. Only while the validator has a known good version to fall
    /// back on and no earlier bad state is waiting for its repair.
    pub(crate) fn write_bad_state(&mut self) -> String {
        if self.checker.repair_pending() {
            return "rogue: waits for the last repair".to_string();
        }
        let kinds = if self.config.canary {
            &BadState::ALL[..]
        } else {
            &BadState::ALL[..3]
        };
        let kind = kinds[self.rng.index(kinds.len())];
        self.write_bad(kind)
    }

    /// Writes `kind` if the validator could repair it (see [`World::write_bad_state`]).
    pub(crate) fn write_bad(&mut self, kind: BadState) -> String {
        let origin = self.zone.origin.clone();
        let now_ms = self.now_ms();
        let Some(active) = self.reader.refs(&origin).ok().and_then(|refs| refs.active) else {
            return "rogue: nothing active".to_string();
        };
        let Ok(content) = self.reader.content(&origin, active) else {
            return "rogue: active unreadable".to_string();
        };
        if !self.bad_state_repairable(kind) {
            return "rogue: no last known good to fall back on yet".to_string();
        }
        self.stats.bad_states += 1;
        match kind {
            BadState::EmptiedEndpoint | BadState::ForeignAddress => {
                let (bad, what) = if kind == BadState::EmptiedEndpoint {
                    (emptied(&content, API), "a rogue version emptying api")
                } else {
                    (
                        with_foreign(&content, DB),
                        "a rogue version answering a foreign db address",
                    )
                };
                match self.rogue_commit(&bad, Some(active), RefName::Active, now_ms) {
                    Ok(generation) => {
                        self.checker
                            .bad_state_written(format!("{what} (g{generation})"), self.step);
                        format!("rogue: {what} written as g{generation} over g{active}")
                    }
                    Err(error) => format!("rogue: {what} failed ({error})"),
                }
            }
            BadState::DeletedActive => {
                self.store.delete_version_unchecked(&origin, active);
                self.checker.deleted_by_fault(active);
                self.checker
                    .bad_state_written(format!("active g{active} deleted while live"), self.step);
                format!("rogue: deletes active g{active} while live (the October end state)")
            }
            BadState::EmptiedCanary => {
                let bad = emptied(&content, API);
                match self.rogue_commit(&bad, Some(active), RefName::Canary, now_ms) {
                    Ok(generation) => {
                        self.checker.bad_canary_written(generation, self.step);
                        format!(
                            "rogue: a canary emptying api written as g{generation} on g{active}"
                        )
                    }
                    Err(error) => format!("rogue: a bad canary failed ({error})"),
                }
            }
        }
    }

    /// Whether the validator could repair `kind` if it were written now.
    /// A rogue version is new: what it could be repaired with is every known good one. A
    /// deleted active version can be repaired with every known good one but itself.
    pub(crate) fn bad_state_repairable(&self, kind: BadState) -> bool {
        let origin = &self.zone.origin;
        let now_ms = self.now_ms();
        let Some(active) = self.reader.refs(origin).ok().and_then(|refs| refs.active) else {
            return false;
        };
        let Ok(version) = self.reader.version(origin, active) else {
            return false;
        };
        self.validator.as_ref().is_some_and(|validator| match kind {
            BadState::DeletedActive => {
                validator.can_repair(origin, active, Some(&version.provenance), now_ms)
            }
            _ => validator.can_repair(origin, active.next(), Some(&Provenance::Planner), now_ms),
        })
    }

    /// The active content again as a new active version, by an operator.
    pub(crate) fn commit_copy_of_active(&mut self) -> Result<Generation, String> {
        let origin = self.zone.origin.clone();
        let active = self
            .reader
            .refs(&origin)
            .map_err(|e| e.to_string())?
            .active
            .ok_or("nothing active")?;
        let content = self
            .reader
            .content(&origin, active)
            .map_err(|e| e.to_string())?;
        let version = self
            .reader
            .commit(Commit {
                content: &content,
                base: Some(active),
                target: RefName::Active,
                provenance: Provenance::Operator,
                actor: OPERATOR,
                reason: "a copy a buggy clean-up will delete",
                now_ms: self.now_ms(),
                automation: false,
            })
            .map_err(|e| e.to_string())?;
        self.servers.follow(self.config.canary);
        self.trace.push(format!(
            "operator: copies g{active} as g{}",
            version.generation
        ));
        Ok(version.generation)
    }

    fn rogue_commit(
        &self,
        content: &ZoneContent,
        base: Option<Generation>,
        target: RefName,
        now_ms: u64,
    ) -> Result<Generation, String> {
        self.reader
            .commit(Commit {
                content,
                base,
                target,
                provenance: Provenance::Planner,
                actor: ROGUE,
                reason: "a plan that bypassed the guard",
                now_ms,
                automation: false,
            })
            .map(|version| version.generation)
            .map_err(|error| first_clause(&error.to_string()))
    }
}

/// `content` with no address at `owner`.
pub(crate) fn emptied(content: &ZoneContent, owner: &str) -> ZoneContent {
    let mut bad = content.clone();
    for rtype in [RecordType::A, RecordType::AAAA] {
        bad.remove_rrset(&name(owner), rtype);
    }
    bad
}

/// `content` with an address no endpoint has added at `owner`.
pub(crate) fn with_foreign(content: &ZoneContent, owner: &str) -> ZoneContent {
    let mut bad = content.clone();
    let owner = name(owner);
    let mut addresses = model::endpoint::addresses_at(content, &owner);
    addresses.insert(IpAddr::from(FOREIGN));
    for set in address_record_sets(&owner, 60, &addresses) {
        bad.put_rrset(set);
    }
    bad
}

/// `node-a`, `node-b`, …
fn node_name(index: usize) -> String {
    let letter = u8::try_from(index % 26).unwrap_or(0);
    format!("node-{}", char::from(b'a' + letter))
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("the simulation's names are valid")
}

/// The zone file: SOA, NS and one static host.
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
    let mut records = vec![
        Record::from_rdata(name(ZONE), 3600, RData::SOA(soa)),
        Record::from_rdata(name(ZONE), 3600, RData::NS(NS(name("ns1.example.test.")))),
        Record::from_rdata(
            name("ns1.example.test."),
            3600,
            RData::A(model::rdata::A::new(10, 0, 9, 1)),
        ),
        // A name whose answer follows the api endpoint: a change of api makes it stale.
        Record::from_rdata(
            name("www.example.test."),
            3600,
            RData::CNAME(model::rdata::CNAME(name(API))),
        ),
    ];
    // Names no change touches: enough that a change is patched onto the served version
    // rather than loaded whole, so the servers run patches and carried answers.
    for host in 1..=STATIC_HOSTS {
        records.push(Record::from_rdata(
            name(&format!("host{host}.example.test.")),
            3600,
            RData::A(model::rdata::A::new(10, 0, 8, host)),
        ));
    }
    ZoneContent::from_records(name(ZONE), records).expect("the static records are a zone")
}

/// `api` (four backends, floor 2, serve-all) and `db` (two backends, floor 1, keep-last).
fn endpoints() -> Vec<EndpointConfig> {
    let endpoint = |owner: &str, subnet: u8, count: u8, min_answers, all_down| {
        let mut endpoint = EndpointConfig::new(
            name(owner),
            (1..=count)
                .map(|last| BackendConfig {
                    address: IpAddr::from([10, 0, subnet, last]),
                    check: Check::None,
                    weight: 1,
                })
                .collect(),
        );
        endpoint.min_answers = min_answers;
        endpoint.all_down = all_down;
        endpoint
    };
    vec![
        endpoint(API, 0, 4, 2, AllDownPolicy::ServeAll),
        endpoint(DB, 1, 2, 1, AllDownPolicy::KeepLast),
    ]
}

pub(crate) fn show(generation: Option<Generation>) -> String {
    generation.map_or_else(|| "nothing".to_string(), |g| format!("g{g}"))
}

pub(crate) fn list(generations: &[Generation]) -> String {
    if generations.is_empty() {
        return "none".to_string();
    }
    generations
        .iter()
        .map(|g| format!("g{g}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The endpoints' answers in a plan, for the trace: ` api=1,2 db=1`.
pub(crate) fn answers(content: &ZoneContent) -> String {
    endpoints()
        .iter()
        .map(|endpoint| {
            let lasts: Vec<String> = endpoint
                .answers_in(content)
                .iter()
                .map(|address| match address {
                    IpAddr::V4(v4) => v4.octets()[3].to_string(),
                    IpAddr::V6(v6) => v6.to_string(),
                })
                .collect();
            let label = endpoint
                .name
                .iter()
                .next()
                .map_or_else(String::new, |l| String::from_utf8_lossy(l).into_owned());
            format!(" {label}={}", lasts.join(","))
        })
        .collect()
}

/// The first clause of an error message: what happened, without the advice.
pub(crate) fn first_clause(text: &str) -> String {
    text.split(';').next().unwrap_or(text).trim().to_string()
}
