//! # resolver — the client-side caching resolver: serve-stale and stale-on-empty
//!
//! Where it sits: `server (authoritative, or any recursive upstream) ──DNS──▶ resolver ──DNS──▶
//! clients on the host`. It is the last line of DESIGN.md's defence: clients that survive a
//! bad answer. `dnsward resolve --listen ADDR --upstream ADDR...` runs it.
//!
//! * [`policy`]: the pure decisions, all functions of their inputs and `now_ms`:
//!   [`policy::decide`] (fresh, prefetch, held, stale-servable, expired),
//!   [`policy::judge_empty`] (stale-on-empty: hold the last good records or accept the
//!   empty answer) and [`policy::UpstreamHealth`] (smoothed RTT, alive → dead → probed).
//! * [`message`]: wire bytes in and out. A client query is read with hickory-proto's
//!   decoder; an upstream answer is walked once and kept as wire bytes with the offsets of
//!   its TTLs, so a cache hit is a copy and a few patched bytes (ID, question case, TTLs,
//!   our OPT with an Extended DNS Error when the answer is stale).
//! * [`cache`]: entries keyed by (lower-cased question name, type, class), bounded by count
//!   and bytes, evicted by CLOCK (second chance, LRU-ish).
//! * [`Resolver`] / [`serve`]: the async shell — UDP and TCP listeners, upstream exchanges
//!   with a bounded retry budget, the RFC 8767 client response timer, prefetch, probes.
//!
//! The one design decision: **an answer that empties a name is not believed at once.** When
//! a name that had records starts answering NODATA or NXDOMAIN, the last good records are
//! served for `empty_hold` (EDE 3 "Stale Answer" with extra text `stale-on-empty`, a warning
//! in the log, a counter) while upstreams are re-asked; only after the hold, or for names
//! listed in `allow_empty`, is the empty answer accepted. Serve-stale (RFC 8767) covers
//! upstreams that fail; this covers upstreams that succeed with the wrong thing.

pub mod cache;
mod config;
pub mod message;
pub mod policy;
mod shell;
mod upstream;

pub use config::ResolverConfig;
pub use shell::{
    serve, Bound, Resolver, Stats, StatsSnapshot, Transport, SERVE_STALE_TEXT, STALE_ON_EMPTY_TEXT,
};

/// What can go wrong running the resolver.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("cannot listen on {address}: {source}; is another server using that port?")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("no upstream given; pass at least one --upstream ADDR")]
    NoUpstream,
    #[error("--allow-empty {name:?} is not a domain name: {reason}")]
    BadName { name: String, reason: String },
}
