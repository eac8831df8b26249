//! How many seeds it takes to catch the October design, measured over independent runs:
//! `cargo run --release -p sim --example naive_median [RUNS]` (default 200). Run `r` starts
//! at seed `r × 1,000,000` and counts seeds until the first violation, and until the first
//! empty endpoint.

use sim::{SimConfig, Simulator};

/// Seeds tried per run before giving up on it.
const LIMIT: u64 = 10_000;

fn median(values: &mut [u64]) -> f64 {
    values.sort_unstable();
    let middle = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) as f64 / 2.0
    } else {
        values[middle] as f64
    }
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(200);
    let simulator = Simulator::new();
    let mut until_caught = Vec::new();
    let mut until_empty = Vec::new();
    for run in 0..runs {
        let first_seed = run * 1_000_000;
        let mut caught = None;
        for count in 1..=LIMIT {
            let report = simulator.run(SimConfig::new(first_seed + count - 1).naive(true));
            if report.failed() && caught.is_none() {
                caught = Some(count);
            }
            if report
                .violations
                .iter()
                .any(sim::Violation::is_empty_endpoint)
            {
                until_empty.push(count);
                break;
            }
        }
        until_caught.extend(caught);
    }
    println!(
        "{runs} runs: median {} seeds until the naive design is caught (any invariant), \
         median {} seeds until it serves an empty endpoint",
        median(&mut until_caught),
        median(&mut until_empty)
    );
}
