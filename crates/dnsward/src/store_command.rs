//! `dnsward store check`: is a store file whole? Read-only, safe beside a running node.

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
    }
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
