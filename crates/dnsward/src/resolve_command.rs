//! `dnsward resolve`: the client-side caching resolver (serve-stale, stale-on-empty).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use model::limits;
use resolver::{Resolver, ResolverConfig};

use crate::CliError;

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Address for UDP and TCP.
    #[arg(long, default_value = "127.0.0.1:5300")]
    pub listen: SocketAddr,
    /// Upstream server (IP:PORT). Repeatable; asked by health and latency.
    #[arg(long = "upstream", value_name = "ADDR", required = true, num_args = 1..)]
    pub upstreams: Vec<SocketAddr>,
    /// Stale-on-empty: seconds a name that had records keeps its last good records after
    /// upstreams start answering NODATA/NXDOMAIN (0 accepts empty answers at once).
    #[arg(long, default_value_t = limits::RESOLVER_EMPTY_HOLD_SECS.default)]
    pub empty_hold: u64,
    /// A name allowed to go empty at once (no stale-on-empty hold). Repeatable.
    #[arg(long = "allow-empty", value_name = "NAME")]
    pub allow_empty: Vec<String>,
    /// RFC 8767 maximum staleness in seconds.
    #[arg(long, default_value_t = limits::RESOLVER_MAX_STALE_SECS.default)]
    pub max_stale: u64,
    /// RFC 8767 client response timer: with stale data in hand, answer it after this many
    /// milliseconds without an upstream answer.
    #[arg(long, default_value_t = limits::RESOLVER_CLIENT_TIMEOUT_MS.default)]
    pub client_timeout_ms: u64,
    /// Largest number of cached answers.
    #[arg(long, default_value_t = limits::RESOLVER_CACHE_ENTRIES.default)]
    pub cache_entries: u64,
    /// Largest cache size in bytes.
    #[arg(long, default_value_t = limits::RESOLVER_CACHE_BYTES.default)]
    pub cache_bytes: u64,
}

pub fn run(args: ResolveArgs) -> Result<(), CliError> {
    let check = |limit: limits::Limit, value: u64| {
        limit
            .check(value)
            .map_err(|message| CliError::Usage { message })
    };
    let mut config = ResolverConfig::new(args.listen, args.upstreams);
    config.empty_hold_secs = check(limits::RESOLVER_EMPTY_HOLD_SECS, args.empty_hold)?;
    config.max_stale_secs = check(limits::RESOLVER_MAX_STALE_SECS, args.max_stale)?;
    config.client_timeout_ms = check(limits::RESOLVER_CLIENT_TIMEOUT_MS, args.client_timeout_ms)?;
    config.cache_entries = check(limits::RESOLVER_CACHE_ENTRIES, args.cache_entries)?;
    config.cache_bytes = check(limits::RESOLVER_CACHE_BYTES, args.cache_bytes)?;
    config.allow_empty = args.allow_empty;
    let resolver =
        Resolver::new(config, Arc::new(model::SystemClock)).map_err(|error| CliError::Usage {
            message: error.to_string(),
        })?;
    // One thread: a sidecar resolver should not take the host's cores.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime
        .block_on(resolver::serve(resolver, crate::serve::shutdown_signal()))
        .map_err(|error| CliError::Usage {
            message: error.to_string(),
        })
}
