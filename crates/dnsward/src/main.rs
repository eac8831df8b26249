//! # dnsward — the binary
//!
//! One binary whose subcommands wire the stages together (see `ARCHITECTURE.md`):
//!
//! * `dnsward serve --zone FILE... | --store PATH --listen ADDR` — authoritative DNS from
//!   zone files, or from the store's active versions, following every ref move.
//! * `dnsward zone check|import|export` — zone files in and out of the store.
//!
//! The one design decision to know: the binary holds no logic of its own beyond wiring;
//! decisions live in the stage crates, so the tests and the simulation run the same code.

mod backend;
mod config;
mod health_quorum;
mod local_copy;
mod node_lock;
mod resolve_command;
mod run;
mod runbook;
mod serve;
mod sim_command;
mod store_command;
mod supervise;
mod token;
mod validate;
mod zone_command;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dnsward",
    version,
    about = "A DNS control plane that cannot publish an empty record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve zones as an authoritative server over UDP and TCP.
    ///
    /// With --zone only, the files are served as they are (no store). With --store, the
    /// store's active versions are served and every ref move is followed; --zone files given
    /// too are imported first (a new version only when their content changed).
    Serve(serve::ServeArgs),
    /// The whole system on one node: store, health probes, planner, guard, enactors,
    /// authoritative server and HTTP API, from one TOML configuration file.
    Run(run::RunArgs),
    /// Zone files in and out of the store.
    #[command(subcommand)]
    Zone(zone_command::ZoneCommand),
    /// Store files: `store check` verifies one, read-only.
    #[command(subcommand)]
    Store(store_command::StoreCommand),
    /// Show every zone's active generation, serial and breaker (needs a running node).
    Status(runbook::StatusArgs),
    /// List a zone's versions and refused plans, newest first (needs a running node).
    History(runbook::HistoryArgs),
    /// Show what changed between two generations of a zone (needs a running node).
    Diff(runbook::DiffArgs),
    /// Restore an old generation's content as a new generation and freeze the zone.
    Rollback(runbook::RollbackArgs),
    /// Stop automation for a zone (its breaker trips); the served answer stays.
    Freeze(runbook::BreakerArgs),
    /// Resume automation for a frozen zone.
    Thaw(runbook::BreakerArgs),
    /// Keep a generation through clean-up (or --unpin).
    Pin(runbook::PinArgs),
    /// The audit log as a markdown incident timeline.
    Timeline(runbook::TimelineArgs),
    /// Submit a zone file as the zone's new content, judged by the guard (--force to override
    /// the floor, audited).
    Apply(runbook::ApplyArgs),
    /// Show what `apply` of a zone file would do, without doing it: the records it adds and
    /// removes, the protected names it touches, the guard's verdict, the apply command.
    Plan(runbook::PlanArgs),
    /// A tiny HTTP backend for demos: 200 on /health until stopped.
    Backend(backend::BackendArgs),
    /// The validator alone: ask the node's servers over UDP and TCP and judge the answers
    /// (with --once: print the findings and exit, 1 on a violation, nothing written).
    Validate(validate::ValidateArgs),
    /// The client-side caching resolver: forwards to --upstream servers, serves stale data
    /// when they fail (RFC 8767) and holds the last good records when a name goes empty.
    Resolve(resolve_command::ResolveArgs),
    /// The deterministic simulation of the control plane: seeds, faults, invariant checkers
    /// (--naive: the October 2025 design, which the checkers must catch).
    Sim(sim_command::SimArgs),
}

/// What went wrong, said so a person can act on it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    ZoneFile(#[from] zonefile::ZoneFileError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Server(#[from] server::ServerError),
    #[error("{0}")]
    Follow(#[from] follow::FollowError),
    #[error("{message}")]
    Usage { message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The simulation runs the real enactors thousands of times: their per-plan info lines
    // would drown its progress and summary.
    let default_filter = match cli.command {
        Command::Sim(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(|| LogSink)
        // A line that cannot be written is dropped and counted (LogSink), never reported
        // with eprintln!, which panics on a closed standard error.
        .log_internal_errors(false)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Run(args) => run::run(args),
        Command::Zone(command) => zone_command::run(command),
        Command::Store(command) => store_command::run(command),
        Command::Status(args) => runbook::status(args),
        Command::History(args) => runbook::history(args),
        Command::Diff(args) => runbook::diff(args),
        Command::Rollback(args) => runbook::rollback(args),
        Command::Freeze(args) => runbook::freeze(args),
        Command::Thaw(args) => runbook::thaw(args),
        Command::Pin(args) => runbook::pin(args),
        Command::Timeline(args) => runbook::timeline(args),
        Command::Apply(args) => runbook::apply(args),
        Command::Plan(args) => runbook::plan(args),
        Command::Backend(args) => backend::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Resolve(args) => resolve_command::run(args),
        Command::Sim(args) => sim_command::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not eprintln!: it panics when standard error is closed.
            let _ = writeln!(std::io::stderr(), "dnsward: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Where log lines go: standard error, and nowhere when it cannot be written (a closed
/// pipe, a full disk). Logging never fails and never panics: a dropped line is counted
/// (`dnsward_log_writes_dropped_total` in `/metrics`).
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(buf).is_err() {
            api::metrics::LOG_WRITES_DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Milliseconds since the Unix epoch: the one clock of the binary's shell.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Who is acting, for the audit log: the user running the command.
pub fn actor(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("{user} via dnsward {command}")
}
