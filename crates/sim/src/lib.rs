//! # sim — deterministic simulation of the control plane
//!
//! Where it sits: beside the pipeline, driving it. The real planner and guard (through the
//! real [`enactor::ControlLoop`]), N real [`enactor::Enactor`]s (`prepare`, then `apply`
//! later), clean-up by reachability and the operator path run against one
//! [`store::MemoryStore`] (which passes the store contract suite), under one seeded
//! scheduler ([`rng::Rng`]) and a virtual clock ([`model::ManualClock`]).
//!
//! * [`Simulator::run`]: one seed. A fault phase (an enactor stalled across many
//!   generations, crashes between prepare and apply or after the store committed, store
//!   calls that time out with an unknown outcome, restarts that drop in-memory state,
//!   health flapping, clock jumps) and then a calm phase that checks liveness.
//! * [`checks::Checker`]: after every step, the safety contract against what a server would
//!   load, through the same functions the guard calls (`model::invariants`).
//! * [`SeedReport`]: the trace ([`trace::Trace`], one line per step, hashed), the violations,
//!   how the run ended, and [`SeedReport::replay_command`].
//! * [`run_seeds`]: many seeds, a [`Summary`].
//! * [`validate`]: the validator's real checks, last known good and rollback (and, with
//!   [`SimConfig::canary`], canary refusal and promotion) as an actor that asks simulated
//!   servers over in-process DNS; the faults also write bad states past planner and guard
//!   ([`BadState`]) that it must repair within
//!   [`REPAIR_BOUND_STEPS`](validate::REPAIR_BOUND_STEPS).
//! * [`Scenario`]: one world driven step by step, for scenario tests.
//! * `--naive` ([`SimConfig::naive`]): the same world built the October 2025 way
//!   (check-then-write, unjudged plans, clean-up by age, and no validator: October's system
//!   had none); the checkers must catch it.
//!
//! The one design decision to know: **nothing runs concurrently.** Each step is one actor's
//! move, chosen by the seeded generator; its async calls are driven to completion on a
//! current-thread runtime before the next step starts, so interleavings come only from the
//! scheduler and a seed names exactly one run. Races such as October's are interleavings of
//! steps (prepare … many steps … apply), which is where the real bugs live.

pub mod checks;
mod naive;
pub mod rng;
pub mod trace;
pub mod validate;
mod world;

use std::collections::BTreeMap;

use model::Breaker;
use store::Store;
use tokio::runtime::Runtime;

pub use checks::{Invariant, Violation};
pub use trace::Trace;
pub use world::{BadState, Stats};

use model::{Generation, Refs};
use store::MemoryStore;
use world::{Phase, World};

/// One run's settings. A seed and `naive` name a run; the rest has defaults that the replay
/// command repeats when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    /// Build the October 2025 design instead of dnsward's.
    pub naive: bool,
    /// Steps with faults.
    pub fault_steps: u64,
    /// Bound of the calm phase: the system must converge (or be frozen) within it.
    pub liveness_steps: u64,
    /// Enactors racing (enactor 0 is the one that stalls).
    pub enactors: usize,
    /// Canary mode: enactors write the canary ref and the validator promotes what passes.
    pub canary: bool,
    /// The store's recorded changes are wrong on purpose ([`store::MemoryStore::break_changes`]):
    /// the servers' patches go wrong and the checkers must say so.
    pub broken_changes: bool,
    /// Nodes sharing the store, each with its own control loop, `enactors` enactors and
    /// health view (its own verdicts, a copy of the others' it refreshes now and then, the
    /// combination by majority it plans from); faults cut a node off from a backend. The
    /// naive mode has one.
    pub nodes: usize,
}

/// Default steps with faults per seed.
pub const DEFAULT_FAULT_STEPS: u64 = 150;
/// Default bound of the calm phase, in steps.
pub const DEFAULT_LIVENESS_STEPS: u64 = 300;
/// Default number of enactors.
pub const DEFAULT_ENACTORS: usize = 3;
/// Default number of nodes.
pub const DEFAULT_NODES: usize = 1;

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            naive: false,
            fault_steps: DEFAULT_FAULT_STEPS,
            liveness_steps: DEFAULT_LIVENESS_STEPS,
            enactors: DEFAULT_ENACTORS,
            canary: false,
            broken_changes: false,
            nodes: DEFAULT_NODES,
        }
    }

    pub fn nodes(self, nodes: usize) -> SimConfig {
        SimConfig { nodes, ..self }
    }

    pub fn naive(self, naive: bool) -> SimConfig {
        SimConfig { naive, ..self }
    }

    pub fn canary(self, canary: bool) -> SimConfig {
        SimConfig { canary, ..self }
    }

    /// The command line that replays this run exactly.
    pub fn replay_command(&self) -> String {
        let mut command = format!("dnsward sim --seed {}", self.seed);
        if self.naive {
            command.push_str(" --naive");
        }
        if self.canary {
            command.push_str(" --canary");
        }
        if self.broken_changes {
            command.push_str(" --break-changes");
        }
        if self.fault_steps != DEFAULT_FAULT_STEPS {
            command.push_str(&format!(" --fault-steps {}", self.fault_steps));
        }
        if self.liveness_steps != DEFAULT_LIVENESS_STEPS {
            command.push_str(&format!(" --liveness-steps {}", self.liveness_steps));
        }
        if self.enactors != DEFAULT_ENACTORS {
            command.push_str(&format!(" --enactors {}", self.enactors));
        }
        if self.nodes != DEFAULT_NODES {
            command.push_str(&format!(" --nodes {}", self.nodes));
        }
        command
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The calm phase reached the newest acceptable plan after this many steps.
    Converged { calm_steps: u64 },
    /// The zone is frozen with a reason: automation stopped safely.
    Frozen { reason: String },
    /// A checker failed; see [`SeedReport::violations`].
    Violated,
}

/// Everything one seed produced.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub config: SimConfig,
    pub trace: Trace,
    /// The violations found at the first failing step (empty when none failed).
    pub violations: Vec<Violation>,
    pub ending: Ending,
    pub stats: Stats,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    pub fn replay_command(&self) -> String {
        self.config.replay_command()
    }

    /// A report for a person: seed, violations, the last steps, the replay command.
    pub fn describe(&self, tail: usize) -> String {
        let mut text = format!(
            "seed {} ({}): {}\n",
            self.config.seed,
            if self.config.naive {
                "naive"
            } else {
                "dnsward"
            },
            match &self.ending {
                Ending::Converged { calm_steps } =>
                    format!("converged after {calm_steps} calm steps"),
                Ending::Frozen { reason } => format!("frozen: {reason}"),
                Ending::Violated => "VIOLATION".to_string(),
            }
        );
        for violation in &self.violations {
            text.push_str(&format!("  violated {violation}\n"));
        }
        text.push_str(&format!(
            "  last {} of {} steps (trace hash {:016x}):\n",
            self.trace.tail(tail).len(),
            self.trace.lines().len(),
            self.trace.hash()
        ));
        for line in self.trace.tail(tail) {
            text.push_str(&format!("    {line}\n"));
        }
        text.push_str(&format!("  replay: {}\n", self.replay_command()));
        text
    }
}

/// Runs seeds. Holds the current-thread runtime that drives the async calls; make one per
/// thread and reuse it.
#[derive(Debug)]
pub struct Simulator {
    runtime: Runtime,
}

impl Default for Simulator {
    fn default() -> Simulator {
        Simulator::new()
    }
}

impl Simulator {
    /// Panics only if the operating system refuses to create the runtime.
    pub fn new() -> Simulator {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds");
        Simulator { runtime }
    }

    /// Runs one seed: the fault phase, then the calm phase until converged, frozen or the
    /// bound. Stops at the first step where a checker fails.
    pub fn run(&self, config: SimConfig) -> SeedReport {
        let mut world = World::new(&self.runtime, config);
        let ending = run_world(&mut world);
        world.stats.repairs = world.checker.repairs;
        let violations = match &ending {
            Err(violations) => violations.clone(),
            Ok(_) => Vec::new(),
        };
        SeedReport {
            config: world.config.clone(),
            stats: world.stats,
            violations,
            ending: ending.unwrap_or(Ending::Violated),
            trace: world.trace,
        }
    }
}

/// One world driven by a test, step by step, with no random faults: settle, write a bad
/// state, watch the repair. The checkers run after every step as in [`Simulator::run`].
pub struct Scenario<'rt> {
    world: World<'rt>,
}

impl Simulator {
    /// A world for `config` (its seed drives the calm steps' scheduler).
    pub fn scenario(&self, config: SimConfig) -> Scenario<'_> {
        Scenario {
            world: World::new(&self.runtime, config),
        }
    }
}

impl Scenario<'_> {
    /// One calm step (planner, enactors, janitor, clock, validator), then the checkers.
    pub fn step(&mut self) -> Result<(), Vec<Violation>> {
        self.world.step(Phase::Calm);
        fail_on(self.world.check())
    }

    /// Calm steps until `kind` can be written (something is active and the validator has a
    /// pinned last known good to fall back on), at most `max_steps`.
    pub fn settle_for(&mut self, kind: BadState, max_steps: u64) -> Result<u64, String> {
        for taken in 0..max_steps {
            if self.world.bad_state_repairable(kind) {
                return Ok(taken);
            }
            self.step()
                .map_err(|violations| self.describe(&violations))?;
        }
        Err(format!(
            "{kind:?} still cannot be written after {max_steps} steps"
        ))
    }

    /// Writes `kind` now; the trace line says what happened.
    pub fn write(&mut self, kind: BadState) -> String {
        self.world.step += 1;
        let written = self.world.write_bad(kind);
        let line = format!("{} {written}", self.world.step);
        self.world.trace.push(line.clone());
        let world = &mut self.world;
        world.servers.follow(world.config.canary);
        line
    }

    /// A copy of the active content committed as a new active version by an operator (the
    /// validator has not proved it good yet).
    pub fn commit_copy_of_active(&mut self) -> Result<Generation, String> {
        self.world.commit_copy_of_active()
    }

    /// Whether a bad state or canary the scenario wrote still waits for its repair.
    pub fn repair_pending(&self) -> bool {
        self.world.checker.repair_pending()
    }

    pub fn refs(&self) -> Refs {
        self.world
            .reader
            .refs(&self.world.zone.origin)
            .unwrap_or_default()
    }

    /// A client of the simulated store (no faults).
    pub fn reader(&self) -> &MemoryStore {
        &self.world.reader
    }

    pub fn zone(&self) -> &model::Name {
        &self.world.zone.origin
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.world.stats;
        stats.repairs = self.world.checker.repairs;
        stats
    }

    pub fn trace(&self) -> &Trace {
        &self.world.trace
    }

    /// The violations and the last steps, for a failure message.
    pub fn describe(&self, violations: &[Violation]) -> String {
        let mut text = String::new();
        for violation in violations {
            text.push_str(&format!("violated {violation}\n"));
        }
        for line in self.world.trace.tail(25) {
            text.push_str(&format!("  {line}\n"));
        }
        text
    }
}

fn run_world(world: &mut World<'_>) -> Result<Ending, Vec<Violation>> {
    for _ in 0..world.config.fault_steps {
        world.step(Phase::Faults);
        fail_on(world.check())?;
    }
    let line = world.calm_down();
    world.trace.push(line);
    // An operator reads why the zone froze and thaws it; then the system must converge.
    if let Ok(breaker @ Breaker::Tripped { .. }) = world.reader.breaker(&world.zone.origin) {
        let line = world.thaw(&breaker);
        world.trace.push(line);
    }
    for calm_steps in 0..=world.config.liveness_steps {
        if world.converged() {
            return Ok(Ending::Converged { calm_steps });
        }
        if let Ok(Breaker::Tripped { reason, .. }) = world.reader.breaker(&world.zone.origin) {
            return Ok(Ending::Frozen { reason });
        }
        if calm_steps == world.config.liveness_steps {
            break;
        }
        world.step(Phase::Calm);
        fail_on(world.check())?;
    }
    Err(vec![Violation::new(
        Invariant::Liveness,
        format!(
            "not converged within {} calm steps and not frozen",
            world.config.liveness_steps
        ),
    )])
}

fn fail_on(violations: Vec<Violation>) -> Result<(), Vec<Violation>> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// What many seeds did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seeds: u64,
    /// Seeds with a violation.
    pub violations: u64,
    pub converged: u64,
    pub frozen: u64,
    /// Failing seeds per invariant (a seed may count under several).
    pub by_invariant: BTreeMap<Invariant, u64>,
    /// The first failing seed's report.
    pub first_failure: Option<SeedReport>,
    /// The first seed whose failure is an empty endpoint.
    pub first_empty_endpoint: Option<SeedReport>,
    /// How many seeds ran until the first failure (1 = the first seed failed).
    pub seeds_until_caught: Option<u64>,
    pub stats: Stats,
}

impl Summary {
    pub fn add(&mut self, report: &SeedReport) {
        self.seeds += 1;
        let stats = &mut self.stats;
        let more = report.stats;
        stats.steps += more.steps;
        stats.applied += more.applied;
        stats.dropped_stale += more.dropped_stale;
        stats.conflicts += more.conflicts;
        stats.refused += more.refused;
        stats.faults += more.faults;
        stats.crashes += more.crashes;
        stats.restarts += more.restarts;
        stats.stalls += more.stalls;
        stats.validator_rounds += more.validator_rounds;
        stats.bad_states += more.bad_states;
        stats.rollbacks += more.rollbacks;
        stats.canaries_refused += more.canaries_refused;
        stats.canaries_promoted += more.canaries_promoted;
        stats.cut_offs += more.cut_offs;
        stats.plans_elsewhere += more.plans_elsewhere;
        stats.repairs.by_rollback += more.repairs.by_rollback;
        stats.repairs.by_pipeline += more.repairs.by_pipeline;
        stats.repairs.canaries += more.repairs.canaries;
        match &report.ending {
            Ending::Converged { .. } => self.converged += 1,
            Ending::Frozen { .. } => self.frozen += 1,
            Ending::Violated => {}
        }
        if report.failed() {
            self.violations += 1;
            let mut kinds: Vec<Invariant> = report.violations.iter().map(|v| v.invariant).collect();
            kinds.dedup();
            for kind in kinds {
                *self.by_invariant.entry(kind).or_default() += 1;
            }
            if self.first_failure.is_none() {
                self.first_failure = Some(report.clone());
                self.seeds_until_caught = Some(self.seeds);
            }
            if self.first_empty_endpoint.is_none()
                && report.violations.iter().any(Violation::is_empty_endpoint)
            {
                self.first_empty_endpoint = Some(report.clone());
            }
        }
    }

    /// `N seeds, V violations, ...`: the summary line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} seeds, {} violations, {} converged, {} frozen with a reason; {} steps, {} \
             applied, {} dropped stale, {} conflicts, {} refused, {} faults, {} crashes, {} \
             restarts, {} stalls",
            self.seeds,
            self.violations,
            self.converged,
            self.frozen,
            self.stats.steps,
            self.stats.applied,
            self.stats.dropped_stale,
            self.stats.conflicts,
            self.stats.refused,
            self.stats.faults,
            self.stats.crashes,
            self.stats.restarts,
            self.stats.stalls
        );
        if self.stats.validator_rounds > 0 {
            let stats = &self.stats;
            line.push_str(&format!(
                "; validator: {} rounds, {} bad states written, {} repaired by rollback, {} by \
                 the pipeline, {} bad canaries refused or replaced, {} rollbacks, {} canaries \
                 refused, {} promoted",
                stats.validator_rounds,
                stats.bad_states,
                stats.repairs.by_rollback,
                stats.repairs.by_pipeline,
                stats.repairs.canaries,
                stats.rollbacks,
                stats.canaries_refused,
                stats.canaries_promoted
            ));
        }
        if self.stats.cut_offs > 0 || self.stats.plans_elsewhere > 0 {
            line.push_str(&format!(
                "; nodes: {} cut off from a backend, {} plans by a node other than the first",
                self.stats.cut_offs, self.stats.plans_elsewhere
            ));
        }
        if !self.by_invariant.is_empty() {
            let kinds: Vec<String> = self
                .by_invariant
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            line.push_str(&format!(" (violated: {})", kinds.join(", ")));
        }
        line
    }
}

/// Runs `count` seeds from `first_seed` on, calling `progress` after each.
pub fn run_seeds(
    first_seed: u64,
    count: u64,
    template: &SimConfig,
    mut progress: impl FnMut(&SeedReport, &Summary),
) -> Summary {
    let simulator = Simulator::new();
    let mut summary = Summary::default();
    for offset in 0..count {
        let config = SimConfig {
            seed: first_seed.wrapping_add(offset),
            ..template.clone()
        };
        let report = simulator.run(config);
        summary.add(&report);
        progress(&report, &summary);
    }
    summary
}

/// Whether a store is consistent enough to be judged (used by tests).
pub fn integrity(store: &dyn Store) -> Result<(), String> {
    store.check_integrity().map_err(|error| error.to_string())
}
