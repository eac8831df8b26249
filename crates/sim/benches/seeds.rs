//! Seeds per second: how fast the simulation explores. Goal: at least 200 per core, so a
//! million seeds fit in a night on one small machine. `cargo bench -p sim`.

use std::time::Instant;

use sim::{SimConfig, Simulator};

fn measure(label: &str, naive: bool, seeds: u64) {
    let simulator = Simulator::new();
    let started = Instant::now();
    let mut steps = 0;
    for seed in 0..seeds {
        let report = simulator.run(SimConfig::new(seed).naive(naive));
        steps += report.stats.steps;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{label}: {seeds} seeds in {elapsed:.2} s = {:.0} seeds/s on one core ({:.0} steps/s)",
        seeds as f64 / elapsed,
        steps as f64 / elapsed
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    measure("dnsward", false, 2_000);
    measure("naive", true, 2_000);
}
