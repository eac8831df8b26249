//! The simulation as CI runs it: many seeds of dnsward's design with no violation (with and
//! without canary mode, bad states written past planner and guard among the faults), the
//! same trace for the same seed, the October design caught with an empty endpoint, and the
//! validator's three self-heal scenarios driven step by step; a wrong patch of a served
//! version is caught.

use model::{Breaker, Provenance};
use sim::validate::REPAIR_BOUND_STEPS;
use sim::{BadState, Ending, Invariant, Scenario, SimConfig, Simulator};
use store::{AuditQuery, Store};

#[test]
fn a_thousand_seeds_of_dnsward_violate_nothing_and_every_one_converges_or_freezes() {
    // 100 fault steps rather than the CLI's 150 keep this under 20 s in a debug build.
    let config = SimConfig {
        fault_steps: 100,
        ..SimConfig::new(0)
    };
    let summary = sim::run_seeds(0, 1_000, &config, |_, _| {});
    if let Some(first) = &summary.first_failure {
        panic!("{}\n{}", summary.line(), first.describe(30));
    }
    assert_eq!(summary.seeds, 1_000);
    assert_eq!(
        summary.converged + summary.frozen,
        1_000,
        "{}",
        summary.line()
    );
    assert!(
        summary.stats.conflicts > 0,
        "stalled writers lost races: {}",
        summary.line()
    );
    assert!(summary.stats.dropped_stale > 0, "{}", summary.line());
    assert!(
        summary.stats.faults > 0 && summary.stats.stalls > 0,
        "{}",
        summary.line()
    );
    let stats = summary.stats;
    assert!(stats.bad_states > 0, "{}", summary.line());
    assert!(
        stats.repairs.by_rollback > 0 && stats.rollbacks >= stats.repairs.by_rollback,
        "the validator repaired bad states: {}",
        summary.line()
    );
}

#[test]
fn three_nodes_with_their_own_health_views_violate_nothing_and_a_cut_off_node_removes_nothing_alone(
) {
    let config = SimConfig {
        fault_steps: 100,
        ..SimConfig::new(0).nodes(3)
    };
    let summary = sim::run_seeds(0, 300, &config, |_, _| {});
    if let Some(first) = &summary.first_failure {
        panic!("{}\n{}", summary.line(), first.describe(30));
    }
    assert_eq!(
        summary.converged + summary.frozen,
        300,
        "{}",
        summary.line()
    );
    let stats = summary.stats;
    assert!(
        stats.cut_offs > 0 && stats.plans_elsewhere > 0 && stats.conflicts > 0,
        "nodes were cut off, planned and raced: {}",
        summary.line()
    );
    let report = Simulator::new().run(SimConfig::new(7).nodes(3));
    let traced = |text: &str| report.trace.lines().iter().any(|line| line.contains(text));
    assert!(
        traced("node-b/enactor-") && traced("node-c plan") && traced("cut off from"),
        "every node plans and enacts: {}",
        report.describe(20)
    );
}

#[test]
fn three_hundred_seeds_in_canary_mode_violate_nothing_and_refuse_bad_canaries() {
    let config = SimConfig {
        fault_steps: 100,
        ..SimConfig::new(0).canary(true)
    };
    let summary = sim::run_seeds(0, 300, &config, |_, _| {});
    if let Some(first) = &summary.first_failure {
        panic!("{}\n{}", summary.line(), first.describe(30));
    }
    assert_eq!(
        summary.converged + summary.frozen,
        300,
        "{}",
        summary.line()
    );
    let stats = summary.stats;
    assert!(stats.canaries_promoted > 0, "{}", summary.line());
    assert!(stats.repairs.canaries > 0, "{}", summary.line());
}

/// Steps a scenario may take to reach a state worth breaking.
const SETTLE_STEPS: u64 = 400;

/// Calm steps until nothing waits for a repair, at most the bound (plus the step that
/// writes); the checkers run after each.
fn until_repaired(scenario: &mut Scenario<'_>) -> u64 {
    for taken in 1..=REPAIR_BOUND_STEPS + 1 {
        if let Err(violations) = scenario.step() {
            panic!("{}", scenario.describe(&violations));
        }
        if !scenario.repair_pending() {
            return taken;
        }
    }
    panic!(
        "not repaired within {REPAIR_BOUND_STEPS} steps:\n{}",
        scenario.describe(&[])
    );
}

fn audit_actions(scenario: &Scenario<'_>, action: &str) -> Vec<model::AuditEntry> {
    scenario
        .reader()
        .audit(&AuditQuery {
            zone: Some(scenario.zone().clone()),
            ..AuditQuery::default()
        })
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == action)
        .collect()
}

/// The rollback left active restoring a good generation's content, tripped the breaker and
/// is in the audit log.
fn assert_rolled_back_to_good(scenario: &Scenario<'_>, bad: model::Generation) {
    let store = scenario.reader();
    let zone = scenario.zone();
    let active = scenario.refs().active.expect("something is active");
    assert!(active > bad, "rolls forward: {active} after {bad}");
    let version = store.version(zone, active).unwrap();
    let Provenance::Rollback { to: good } = version.provenance else {
        panic!("not a rollback: {version:?}\n{}", scenario.describe(&[]));
    };
    assert_eq!(version.actor, validator::VALIDATOR_ACTOR);
    let restored = store.content(zone, active).unwrap();
    let original = store.content(zone, good).unwrap();
    assert!(sim::checks::same(&original, &restored));
    assert!(matches!(
        store.breaker(zone).unwrap(),
        Breaker::Tripped { .. }
    ));
    let rollbacks = audit_actions(scenario, validator::actions::ROLLBACK);
    assert!(
        rollbacks
            .iter()
            .any(|entry| entry.from == Some(bad) && entry.to == Some(active)),
        "{rollbacks:?}"
    );
}

#[test]
fn validator_rolls_back_a_rogue_write_in_the_simulation() {
    let simulator = Simulator::new();
    // In these seeds the validator's round comes before the planner's next plan; in others
    // the planner re-plans over the rogue version first, which the checkers accept as a
    // repair by the pipeline (the seeded runs count both).
    for (seed, kind) in [
        (1, BadState::EmptiedEndpoint),
        (3, BadState::ForeignAddress),
    ] {
        let mut scenario = simulator.scenario(SimConfig::new(seed));
        scenario.settle_for(kind, SETTLE_STEPS).unwrap();
        let line = scenario.write(kind);
        let bad = scenario.refs().active.unwrap();
        assert!(line.contains(&format!("written as g{bad}")), "{line}");
        let steps = until_repaired(&mut scenario);
        assert!(steps <= REPAIR_BOUND_STEPS, "{steps}");
        assert_eq!(
            scenario.stats().repairs.by_rollback,
            1,
            "seed {seed}:\n{}",
            scenario.describe(&[])
        );
        assert_rolled_back_to_good(&scenario, bad);
        // The validator audited what it saw on the wire.
        assert!(!audit_actions(&scenario, validator::actions::FINDING).is_empty());
    }
}

#[test]
fn canary_that_empties_a_protected_name_is_never_promoted_in_the_simulation() {
    let simulator = Simulator::new();
    let mut scenario = simulator.scenario(SimConfig::new(3).canary(true));
    scenario
        .settle_for(BadState::EmptiedCanary, SETTLE_STEPS)
        .unwrap();
    let active = scenario.refs().active;
    let line = scenario.write(BadState::EmptiedCanary);
    let bad = scenario.refs().canary.expect("the bad canary is pending");
    assert!(line.contains(&format!("g{bad}")), "{line}");
    until_repaired(&mut scenario);
    // Checked after every step by the checkers too (bad-canary-never-active).
    let refs = scenario.refs();
    assert_ne!(refs.active, Some(bad));
    assert_eq!(refs.active, active, "active never moved");
    let store = scenario.reader();
    assert!(matches!(
        store.breaker(scenario.zone()).unwrap(),
        Breaker::Tripped { .. }
    ));
    assert_eq!(scenario.stats().canaries_refused, 1);
    let refusals = audit_actions(&scenario, store::actions::REFUSED);
    assert!(
        refusals
            .iter()
            .any(|entry| entry.reason.contains(&format!("canary {bad}"))),
        "{refusals:?}"
    );
    // More steps: still never promoted.
    for _ in 0..50 {
        if let Err(violations) = scenario.step() {
            panic!("{}", scenario.describe(&violations));
        }
    }
    assert_ne!(scenario.refs().active, Some(bad));
}

#[test]
fn active_ref_to_a_deleted_version_heals_in_the_simulation() {
    let simulator = Simulator::new();
    let mut scenario = simulator.scenario(SimConfig::new(4));
    // As the self-heal test does: a last known good, then a newer version that a buggy
    // clean-up deletes while it is live.
    scenario
        .settle_for(BadState::EmptiedEndpoint, SETTLE_STEPS)
        .unwrap();
    let doomed = scenario.commit_copy_of_active().unwrap();
    scenario
        .settle_for(BadState::DeletedActive, SETTLE_STEPS)
        .unwrap();
    assert_eq!(scenario.refs().active, Some(doomed));
    scenario.write(BadState::DeletedActive);
    assert!(scenario.reader().content(scenario.zone(), doomed).is_err());
    until_repaired(&mut scenario);
    let active = scenario.refs().active.unwrap();
    assert!(scenario.reader().content(scenario.zone(), active).is_ok());
    assert_rolled_back_to_good(&scenario, doomed);
}

#[test]
fn bad_states_are_written_and_repaired_across_seeds_within_the_bound() {
    // The fault phase writes them among the other faults; the checkers hold each to the
    // repair bound, so a clean run is the assertion. Every kind shows up.
    let simulator = Simulator::new();
    let mut seen = [false; 4];
    for seed in 0..60 {
        let report = simulator.run(SimConfig::new(seed).canary(seed % 2 == 1));
        assert!(!report.failed(), "{}", report.describe(30));
        for line in report.trace.lines() {
            for (index, needle) in [
                "rogue version emptying api written",
                "foreign db address written",
                "deletes active",
                "a canary emptying api written",
            ]
            .iter()
            .enumerate()
            {
                seen[index] |= line.contains(needle);
            }
        }
    }
    assert_eq!(seen, [true; 4]);
}

#[test]
fn a_hundred_random_seeds_run_twice_give_the_same_traces() {
    let simulator = Simulator::new();
    // Seeds spread over the whole range, from a fixed generator.
    let mut rng = sim::rng::Rng::new(0x5eed);
    for _ in 0..100 {
        let seed = rng.next_u64();
        for naive in [false, true] {
            let config = SimConfig::new(seed).naive(naive).canary(seed % 3 == 0);
            let first = simulator.run(config.clone());
            let second = Simulator::new().run(config);
            assert_eq!(first.trace.lines(), second.trace.lines(), "seed {seed}");
            assert_eq!(first.trace.hash(), second.trace.hash());
            assert_eq!(first.violations, second.violations);
        }
    }
}

#[test]
fn the_october_design_is_caught_serving_an_empty_endpoint_and_the_replay_reproduces_it() {
    let summary = sim::run_seeds(0, 200, &SimConfig::new(0).naive(true), |_, _| {});
    assert!(summary.violations > 0, "{}", summary.line());
    let empty = summary
        .first_empty_endpoint
        .as_ref()
        .unwrap_or_else(|| panic!("no empty endpoint in 200 naive seeds: {}", summary.line()));
    assert_eq!(empty.ending, Ending::Violated);
    assert!(empty
        .violations
        .iter()
        .any(|violation| violation.invariant == Invariant::ActiveExists));
    let command = empty.replay_command();
    assert_eq!(
        command,
        format!("dnsward sim --seed {} --naive", empty.config.seed)
    );
    let replayed = Simulator::new().run(empty.config.clone());
    assert_eq!(replayed.trace.hash(), empty.trace.hash());
    assert_eq!(replayed.violations, empty.violations);
}

#[test]
fn the_seed_that_catches_the_naive_design_passes_in_dnsward() {
    // Same seed, same stalls and faults; dnsward's stalled writer loses its compare-and-swap.
    let simulator = Simulator::new();
    let caught = (0..200)
        .find(|seed| simulator.run(SimConfig::new(*seed).naive(true)).failed())
        .expect("the naive design fails within 200 seeds");
    let dnsward = simulator.run(SimConfig::new(caught));
    assert!(!dnsward.failed(), "{}", dnsward.describe(30));
}

#[test]
fn a_store_fault_is_traced_and_the_system_still_converges() {
    let simulator = Simulator::new();
    let report = (0..50)
        .map(|seed| simulator.run(SimConfig::new(seed)))
        .find(|report| {
            report
                .trace
                .lines()
                .iter()
                .any(|line| line.contains("times out after it is done"))
        })
        .expect("some seed injects an unknown-outcome fault");
    assert!(!report.failed(), "{}", report.describe(30));
    assert!(matches!(
        report.ending,
        Ending::Converged { .. } | Ending::Frozen { .. }
    ));
}

#[test]
fn a_patch_made_wrong_on_purpose_is_caught_by_the_served_answers_checker() {
    // The servers run the real follower: a version is patched onto the served one from the
    // store's recorded changes, and its answers are carried. Changes that lose a set make the
    // patch wrong; the checker compares every answer with a whole build and must say so.
    let simulator = Simulator::new();
    for seed in 0..20 {
        let broken = simulator.run(SimConfig {
            broken_changes: true,
            ..SimConfig::new(seed)
        });
        assert!(
            broken
                .violations
                .iter()
                .any(|violation| violation.invariant == Invariant::ServedAnswers),
            "seed {seed}: a wrong patch went unnoticed\n{}",
            broken.describe(30)
        );
        assert!(broken.config.replay_command().contains("--break-changes"));
        let sound = simulator.run(SimConfig::new(seed));
        assert!(!sound.failed(), "{}", sound.describe(30));
    }
}
