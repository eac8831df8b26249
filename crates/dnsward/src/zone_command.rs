//! `dnsward zone check|import|export`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use model::{Name, Provenance, RefName};
use store::{Commit, SqliteStore, Store};

use crate::node_lock::NodeLock;
use crate::CliError;

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Parse and validate a zone file; print a summary, or every error (up to 100) as
    /// FILE:LINE: reason, with warnings (differing TTLs in a set, no $TTL).
    Check(CheckArgs),
    /// Store a zone file's content as a new version and make it active.
    Import(ImportArgs),
    /// Write a zone's active (or given) version as a zone file.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The zone file.
    pub file: PathBuf,
    /// Origin for relative names when the file has no $ORIGIN.
    #[arg(long)]
    pub origin: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The zone file.
    pub file: PathBuf,
    /// The SQLite store (created if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// Origin for relative names when the file has no $ORIGIN.
    #[arg(long)]
    pub origin: Option<String>,
    /// Why, for the audit log.
    #[arg(long, default_value = "zone file import")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The zone's name, e.g. example.test.
    pub zone: String,
    /// The SQLite store.
    #[arg(long)]
    pub store: PathBuf,
    /// A generation other than the active one.
    #[arg(long)]
    pub generation: Option<u64>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(command: ZoneCommand) -> Result<(), CliError> {
    match command {
        ZoneCommand::Check(args) => check(args),
        ZoneCommand::Import(args) => import(args),
        ZoneCommand::Export(args) => export(args),
    }
}

pub fn parse_name(text: &str) -> Result<Name, CliError> {
    let mut name = Name::from_ascii(text).map_err(|error| CliError::Usage {
        message: format!("'{text}' is not a domain name: {error}"),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

fn origin_arg(origin: &Option<String>) -> Result<Option<Name>, CliError> {
    origin.as_deref().map(parse_name).transpose()
}

fn check(args: CheckArgs) -> Result<(), CliError> {
    let report = zonefile::check_file(&args.file, origin_arg(&args.origin)?.as_ref())?;
    for warning in &report.warnings {
        match warning.line {
            Some(line) => eprintln!(
                "{}:{line}: warning: {}",
                warning.file.display(),
                warning.message
            ),
            None => eprintln!("{}: warning: {}", warning.file.display(), warning.message),
        }
    }
    for error in &report.errors {
        eprintln!("{error}");
    }
    let Some(content) = report.content else {
        return Err(CliError::Usage {
            message: format!(
                "{}: {} error{}{}",
                args.file.display(),
                report.errors.len(),
                if report.errors.len() == 1 { "" } else { "s" },
                if report.truncated {
                    format!(
                        " (stopped at {}; there may be more)",
                        zonefile::MAX_CHECK_ERRORS
                    )
                } else {
                    String::new()
                }
            ),
        });
    };
    println!(
        "{}: zone {} serial {} with {} records in {} sets: OK",
        args.file.display(),
        content.origin(),
        content.serial().unwrap_or_default(),
        content.record_count(),
        content.rrset_count()
    );
    Ok(())
}

/// Imports `content` unless the active version already holds it (serials aside). Returns the
/// generation now active.
pub fn import_content(
    store: &dyn Store,
    content: &model::ZoneContent,
    reason: &str,
) -> Result<(model::Generation, bool), CliError> {
    let refs = store.refs(content.origin())?;
    if let Some(active) = refs.active {
        let version = store.version(content.origin(), active)?;
        if content
            .with_serial(version.serial)
            .has_hash(&version.content_hash)
        {
            return Ok((active, false));
        }
    }
    let actor = crate::actor("zone import");
    let version = store.commit(Commit {
        content,
        base: refs.active,
        target: RefName::Active,
        // An import is an operator's act, not automation: it passes a tripped breaker.
        automation: false,
        provenance: Provenance::Import,
        actor: &actor,
        reason,
        now_ms: crate::now_ms(),
    })?;
    Ok((version.generation, true))
}

fn import(args: ImportArgs) -> Result<(), CliError> {
    let content = zonefile::read_file(&args.file, origin_arg(&args.origin)?.as_ref())?;
    let _alone = NodeLock::exclusive(&args.store, "zone import")?;
    let store = SqliteStore::open(&args.store)?;
    let reason = format!("{} ({})", args.reason, args.file.display());
    let (generation, created) = import_content(&store, &content, &reason)?;
    if created {
        let version = store.version(content.origin(), generation)?;
        println!(
            "zone {} generation {} serial {} active ({} records)",
            content.origin(),
            generation,
            version.serial,
            version.records
        );
    } else {
        println!(
            "zone {} unchanged: generation {} already holds this content",
            content.origin(),
            generation
        );
    }
    Ok(())
}

fn export(args: ExportArgs) -> Result<(), CliError> {
    let zone = parse_name(&args.zone)?;
    let store = SqliteStore::open(&args.store)?;
    let generation = match args.generation {
        Some(generation) => model::Generation(generation),
        None => store.refs(&zone)?.active.ok_or_else(|| CliError::Usage {
            message: format!(
                "zone {zone} has no active version in {}; import one with `dnsward zone import FILE --store {}`",
                args.store.display(),
                args.store.display()
            ),
        })?,
    };
    let text = zonefile::write(&store.content(&zone, generation)?);
    match args.output {
        Some(path) => std::fs::write(&path, text).map_err(|source| CliError::Io { path, source }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
