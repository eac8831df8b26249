//! The simulation as CI runs it: many seeds of dnsward's design with no violation, the same
//! trace for the same seed, and the October design caught with an empty endpoint.

use sim::{Ending, Invariant, SimConfig, Simulator};

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
}

#[test]
fn a_hundred_random_seeds_run_twice_give_the_same_traces() {
    let simulator = Simulator::new();
    // Seeds spread over the whole range, from a fixed generator.
    let mut rng = sim::rng::Rng::new(0x5eed);
    for _ in 0..100 {
        let seed = rng.next_u64();
        for naive in [false, true] {
            let config = SimConfig::new(seed).naive(naive);
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
