//! `dnsward store check`: is a store file whole? Read-only, safe beside a running node.
//! `dnsward store repair`: every version that still verifies, copied into a new file.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use store::{SqliteStore, Store};

use crate::CliError;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check a store file: SQLite's own integrity, every ref pointing at a version, every
    /// version's content present and hashing to its recorded hash. Prints the zones and
    /// exits 0, or prints the first problem and exits 1. Writes nothing.
    Check(CheckArgs),
    /// Copy every version that still verifies (content present and hashing to its recorded
    /// hash) into a new store file; the old file is kept as it is. A zone whose active
    /// version did not verify gets the newest verified version that was active (audited).
    /// Then point `store.path` at the new file and start the node.
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The damaged SQLite store (read only).
    #[arg(long)]
    pub store: PathBuf,
    /// The new store file (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The SQLite store.
    #[arg(long)]
    pub store: PathBuf,
}

pub fn run(command: StoreCommand) -> Result<(), CliError> {
    match command {
        StoreCommand::Check(args) => check(args),
        StoreCommand::Repair(args) => repair(args),
    }
}

fn repair(args: RepairArgs) -> Result<(), CliError> {
    if !args.store.is_file() {
        return Err(CliError::Usage {
            message: format!("{}: no such store file", args.store.display()),
        });
    }
    let old = SqliteStore::open(&args.store)?;
    let zones = store::repair::repair_into(&old, &args.out)?;
    for zone in &zones {
        let generation = |g: Option<model::Generation>| {
            g.map(|g| g.to_string()).unwrap_or_else(|| "none".into())
        };
        println!(
            "zone {}: {} versions verified and copied, {} dropped{}; active {} -> {}",
            zone.zone,
            zone.verified.len(),
            zone.dropped.len(),
            if zone.dropped.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    zone.dropped
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            generation(zone.active_before),
            generation(zone.active_after)
        );
    }
    println!(
        "{}: written and checked; {} is unchanged. Point store.path at the new file to use it.",
        args.out.display(),
        args.store.display()
    );
    Ok(())
}

fn check(args: CheckArgs) -> Result<(), CliError> {
    // Opening creates a missing file: a check must not.
    if !args.store.is_file() {
        return Err(CliError::Usage {
            message: format!("{}: no such store file", args.store.display()),
        });
    }
    let store = SqliteStore::open(&args.store)?;
    let zones = store.zones()?;
    store.check_integrity()?;
    for (zone, refs) in &zones {
        let versions = store.history(zone, usize::MAX)?.len();
        println!(
            "zone {zone}: active {}, {versions} versions verified",
            refs.active
                .map(|g| g.to_string())
                .unwrap_or_else(|| "none".into())
        );
    }
    println!("{}: ok", args.store.display());
    Ok(())
}
