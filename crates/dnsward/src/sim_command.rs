//! `dnsward sim`: the deterministic simulation of the control plane (crate `sim`) over many
//! seeds, with a progress line, a summary line and a replay command for every failure.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use clap::Args;
use sim::{SimConfig, Simulator};

use crate::CliError;

/// Failing seeds listed one per line before the first one is shown in full.
const LISTED_FAILURES: usize = 10;
/// Trace lines shown for a failure.
const TRACE_TAIL: usize = 20;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Run (or replay) exactly this seed and show its trace.
    #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
    pub seed: Option<u64>,
    /// How many seeds to run, from --first-seed on.
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// The first seed of the run.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Simulate the October 2025 design (check-then-write, unjudged plans, clean-up by age)
    /// instead of dnsward's: the checkers must catch it.
    #[arg(long)]
    pub naive: bool,
    /// Steps with faults per seed.
    #[arg(long, default_value_t = sim::DEFAULT_FAULT_STEPS)]
    pub fault_steps: u64,
    /// Calm steps within which the system must converge or be frozen with a reason.
    #[arg(long, default_value_t = sim::DEFAULT_LIVENESS_STEPS)]
    pub liveness_steps: u64,
    /// Racing enactors (enactor 0 is the one that stalls).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub enactors: u64,
    /// Nodes sharing the store, each with its own control loop, enactors and health view
    /// (health by majority; faults cut a node off from a backend). The naive mode has one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=7))]
    pub nodes: u64,
    /// Canary mode: enactors write the canary ref, the validator promotes what passes, and
    /// the faults also write canaries that empty a protected name.
    #[arg(long)]
    pub canary: bool,
    /// Make the store's recorded changes wrong on purpose (each leaves out a set it should
    /// add): the servers' patched versions answer wrong and the served-answers checker must
    /// catch it. A check of the simulation itself.
    #[arg(long)]
    pub break_changes: bool,
    /// With --seed: print every step, not only the last ones.
    #[arg(long)]
    pub trace: bool,
}

pub fn run(args: SimArgs) -> Result<(), CliError> {
    let template = SimConfig {
        seed: 0,
        naive: args.naive,
        fault_steps: args.fault_steps,
        liveness_steps: args.liveness_steps,
        // Bounded to 16 by the parser.
        enactors: usize::try_from(args.enactors).unwrap_or(sim::DEFAULT_ENACTORS),
        canary: args.canary,
        broken_changes: args.break_changes,
        // Bounded to 7 by the parser.
        nodes: usize::try_from(args.nodes).unwrap_or(sim::DEFAULT_NODES),
    };
    match args.seed {
        Some(seed) => replay(SimConfig { seed, ..template }, args.trace),
        None => many(&template, args.first_seed, args.seeds),
    }
}

fn replay(config: SimConfig, full_trace: bool) -> Result<(), CliError> {
    let report = Simulator::new().run(config);
    if full_trace {
        for line in report.trace.lines() {
            println!("{line}");
        }
    }
    print!("{}", report.describe(TRACE_TAIL));
    if report.failed() {
        return Err(CliError::Usage {
            message: format!(
                "seed {} violates {}",
                report.config.seed,
                names(&report.violations)
            ),
        });
    }
    Ok(())
}

fn many(template: &SimConfig, first_seed: u64, count: u64) -> Result<(), CliError> {
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut listed = 0;
    let mut last_draw = Instant::now();
    let summary = sim::run_seeds(first_seed, count, template, |report, summary| {
        if report.failed() && listed < LISTED_FAILURES {
            listed += 1;
            if progress {
                eprint!("\r\x1b[K");
            }
            println!(
                "seed {}: {} — replay: {}",
                report.config.seed,
                names(&report.violations),
                report.replay_command()
            );
        }
        if progress && (last_draw.elapsed().as_millis() >= 100 || summary.seeds == count) {
            last_draw = Instant::now();
            let rate = summary.seeds as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\r\x1b[K[{}] {}/{} seeds, {} violations, {:.0} seeds/s",
                bar(summary.seeds, count),
                summary.seeds,
                count,
                summary.violations,
                rate
            );
            let _ = std::io::stderr().flush();
        }
    });
    if progress {
        eprintln!();
    }
    if let Some(first) = &summary.first_failure {
        println!();
        print!("{}", first.describe(TRACE_TAIL));
    }
    if let Some(empty) = &summary.first_empty_endpoint {
        let same = summary
            .first_failure
            .as_ref()
            .is_some_and(|first| first.config.seed == empty.config.seed);
        if !same {
            println!("\nthe first empty endpoint:");
            print!("{}", empty.describe(TRACE_TAIL));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} in {elapsed:.1} s ({:.0} seeds/s){}",
        summary.line(),
        summary.seeds as f64 / elapsed.max(1e-9),
        summary
            .seeds_until_caught
            .map_or_else(String::new, |n| format!("; first caught after {n} seeds"))
    );
    match &summary.first_failure {
        None => Ok(()),
        Some(first) => Err(CliError::Usage {
            message: format!(
                "{} of {} seeds violate the safety contract; replay the first with `{}`",
                summary.violations,
                summary.seeds,
                first.replay_command()
            ),
        }),
    }
}

fn names(violations: &[sim::Violation]) -> String {
    let mut names: Vec<String> = Vec::new();
    for violation in violations {
        let name = if violation.is_empty_endpoint() {
            format!("{} (empty endpoint)", violation.invariant)
        } else {
            violation.invariant.to_string()
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let filled = usize::try_from(filled).unwrap_or(0);
    format!(
        "{}{}",
        "#".repeat(filled),
        " ".repeat(usize::try_from(WIDTH).unwrap_or(0).saturating_sub(filled))
    )
}
