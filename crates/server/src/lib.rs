//! # server — authoritative DNS over UDP and TCP from an immutable in-memory snapshot
//!
//! Where it sits: `store ──watch──▶ snapshot of the active version ──▶ server ──DNS──▶
//! resolvers and the validator`. Whoever follows the store builds a [`ZoneSnapshot`] from
//! a version's [`model::ZoneContent`] and hands it to [`Catalog::replace_zone`]; the server
//! answers from whatever the catalog holds at the moment a query arrives.
//!
//! * [`ZoneSnapshot`]: one version of one zone, precomputed for lookup (nodes by
//!   lower-cased name, ready records per type, cuts, empty non-terminals, wildcards,
//!   the negative SOA). A new version can be a patch of the one before
//!   ([`ZoneSnapshot::patched`]): it shares the unchanged names and costs only the changed
//!   ones, and it can keep answering on the hot path from the earlier version's pre-encoded
//!   answers ([`ZoneSnapshot::carry_answers`]) for every name the change cannot touch.
//! * [`Catalog`]: the served zones behind an `ArcSwap`.
//! * [`lookup`]: the pure answer to one question from one zone (RFC 1034 §4.3.2, RFC 2308,
//!   RFC 4592, RFC 8482), returning a [`Lookup`].
//! * [`handle`]: bytes in, bytes out (or silence), pure apart from one catalog load: the
//!   checks NSD 4.6 makes (FORMERR, NOTIMP, REFUSED, BADVERS), EDNS, 0x20 case, truncation.
//! * [`Server`] / [`serve`]: the async shell binding UDP and TCP on one address.
//! * [`rrl`]: response rate limiting of UDP answers (BIND's semantics), on by default.
//! * [`stats`]: answers by zone and response code, silences and answer latency, counted on
//!   the hot path without allocation and read through [`Catalog::query_totals`].
//!
//! The one design decision: **snapshots are immutable and swapped atomically.** A query
//! loads the catalog once and answers entirely from that load, so it never sees half of
//! a version nor a mix of two, and readers never wait for writers. Behaviour is matched
//! against NSD 4.6; where we differ, the item says so.

mod carried;
mod catalog;
mod config;
pub mod cookie;
mod fast;
mod lookup;
mod memory;
mod net;
mod nodes;
pub mod rrl;
mod snapshot;
pub mod stats;
mod tcp_table;
mod template;
mod udp_batch;
mod wire;

pub use catalog::{Catalog, Zones};
pub use config::{default_udp_workers, ServerConfig, UDP_WORKERS};
pub use fast::answer_fast;
pub use lookup::{lookup, AnswerKind, Lookup};
pub use memory::release_free_memory;
pub use net::{serve, Server};
pub use rrl::{Prefix, RrlConfig};
pub use snapshot::ZoneSnapshot;
pub use stats::QueryTotals;
pub use wire::{handle, handle_with, Transport};

/// What can go wrong running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}; is another server using that port?")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}
