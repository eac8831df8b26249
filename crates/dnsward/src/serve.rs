//! `dnsward serve`: zone files or the store's active versions, over UDP and TCP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use model::Generation;
use server::{Catalog, ServerConfig, ZoneSnapshot};
use store::{SqliteStore, Store};

use crate::node_lock::NodeLock;
use crate::CliError;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Zone files to serve (origin from $ORIGIN or the SOA owner). Repeatable.
    #[arg(long = "zone", value_name = "FILE", num_args = 1..)]
    pub zones: Vec<PathBuf>,
    /// Serve the active versions in this SQLite store and follow every ref move.
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// Address for UDP and TCP.
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub listen: SocketAddr,
    /// Largest UDP answer in bytes when the client's EDNS buffer allows it (512–4096).
    #[arg(long, default_value_t = model::limits::UDP_PAYLOAD_BYTES.default)]
    pub udp_payload_bytes: u64,
    /// UDP worker threads, each with its own SO_REUSEPORT socket (1–64; default: one per
    /// core this process may run on).
    #[arg(long)]
    pub workers: Option<u64>,
    /// Response rate limiting: UDP answers per second per account (client /24 or /56,
    /// response kind, name); 0 turns it off (benchmarks loading the server from one
    /// address). Slip 2, window 15 s.
    #[arg(long, value_name = "N", default_value_t = server::rrl::RRL_RESPONSES_PER_SECOND.default)]
    pub rrl_responses_per_second: u64,
}

pub fn run(args: ServeArgs) -> Result<(), CliError> {
    crate::supervise::exit_on_panic("dnsward serve");
    if args.zones.is_empty() && args.store.is_none() {
        return Err(CliError::Usage {
            message: "nothing to serve: give --zone FILE... and/or --store PATH".into(),
        });
    }
    let udp_payload_bytes = model::limits::UDP_PAYLOAD_BYTES
        .check(args.udp_payload_bytes)
        .map_err(|message| CliError::Usage { message })?;
    let catalog = Arc::new(Catalog::new());
    let store: Option<Arc<dyn Store>> = match &args.store {
        Some(path) => Some(Arc::new(SqliteStore::open(path)?)),
        None => None,
    };
    // --zone files go into the store only when no node serves it (their import skips the
    // guard); then this process serves it like any node.
    let importing = match &args.store {
        Some(path) if !args.zones.is_empty() => {
            Some(NodeLock::exclusive(path, "importing --zone files")?)
        }
        _ => None,
    };
    for file in &args.zones {
        let content = zonefile::read_file(file, None)?;
        match &store {
            Some(store) => {
                let reason = format!("loaded by dnsward serve ({})", file.display());
                let (generation, created) =
                    crate::zone_command::import_content(store.as_ref(), &content, &reason)?;
                tracing::info!(zone = %content.origin(), %generation, created, "zone file imported");
            }
            None => {
                let snapshot = ZoneSnapshot::build(&content, Generation::FIRST);
                tracing::info!(zone = %content.origin(), records = content.record_count(), "zone file loaded");
                catalog.replace_zone(Arc::new(snapshot));
            }
        }
    }
    drop(importing);
    let _serving = args
        .store
        .as_deref()
        .map(|path| NodeLock::serving(path, None))
        .transpose()?;
    // The parsed files and the builds' scratch are gone; give their pages back.
    server::release_free_memory();
    let udp_workers = match args.workers {
        Some(workers) => server::UDP_WORKERS
            .check(workers)
            .map_err(|message| CliError::Usage { message })? as usize,
        None => server::default_udp_workers(),
    };
    let responses_per_second = server::rrl::RRL_RESPONSES_PER_SECOND
        .check(args.rrl_responses_per_second)
        .map_err(|message| CliError::Usage { message })?;
    let config = ServerConfig {
        listen: args.listen,
        udp_payload_bytes: udp_payload_bytes as u16,
        udp_workers,
        rrl: server::RrlConfig {
            responses_per_second: responses_per_second as u32,
            ..server::RrlConfig::default()
        },
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let _follower = match store {
            Some(store) => {
                let follower = follow::start(
                    follow::Sources::store(store),
                    catalog.clone(),
                    follow::Target::Active,
                    server::default_cname_chain_length(),
                    || crate::supervise::task_ended("store follower"),
                )
                .await?;
                Some(follower)
            }
            None => None,
        };
        let server = server::Server::bind(config, catalog).await?;
        tracing::info!(listen = %server.local_addr(), "serving");
        server.run(shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
