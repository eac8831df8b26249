//! # server — authoritative DNS over UDP and TCP from an immutable in-memory snapshot
//!
//! Where it sits: `store ──watch──▶ snapshot of the active version ──▶ server ──DNS──▶
//! resolvers and the validator`. Whoever follows the store builds a [`ZoneSnapshot`] from
//! a version's [`model::ZoneContent`] and hands it to [`Catalog::replace_zone`]; the server
//! answers from whatever the catalog holds at the moment a query arrives.
//!
//! * [`ZoneSnapshot`]: one version of one zone: its [`ZoneData`] (nodes by lower-cased
//!   name, ready records per type, cuts, empty non-terminals, wildcards, the negative SOA;
//!   `zone`) and how the hot path answers it (`snapshot::Answers`: the library path only,
//!   this version's pre-encoded answers, or an earlier version's carried forward). A new
//!   version can be a patch of the one before ([`ZoneSnapshot::patched`]): it shares the
//!   unchanged names and costs only the changed ones, and it can keep answering on the hot
//!   path from the earlier version's pre-encoded answers ([`ZoneSnapshot::carry_answers`])
//!   for every name the change cannot touch.
//! * [`Catalog`]: the served zones behind an `ArcSwap`.
//! * [`lookup`]: the pure answer to one question from one zone (RFC 1034 §4.3.2, RFC 2308,
//!   RFC 4592, RFC 8482), returning a [`Lookup`].
//! * Two answer paths and one place that chooses between them (`answer`, for UDP, TCP and
//!   [`handle`] alike): the hot path ([`answer_fast`]: stored bytes around the query's
//!   question, `fast`, `table`, `template`, `carried`) first, else the library path
//!   ([`answer_library`]: the checks NSD 4.6 makes (FORMERR, NOTIMP, REFUSED, BADVERS),
//!   EDNS, lookup, encoding with 0x20 case and truncation; `library`, `encode`), which is
//!   the reference every hot-path byte is tested against.
//! * [`Server`] / [`serve`]: the async shell binding UDP and TCP on one address.
//! * [`TransferService`]: AXFR and IXFR requests over TCP go to it (the `transfer` crate
//!   implements it); without one they are refused.
//! * [`rrl`]: response rate limiting of UDP answers (BIND's semantics), on by default.
//! * [`stats`]: answers by zone and response code, silences and answer latency, counted on
//!   the hot path without allocation and read through [`Catalog::query_totals`].
//!
//! Modules, leaves first (no module imports one above it): `wire_format`, `hashing` →
//! `nodes` → `zone` → `lookup` → `encode` → `template` → `table` → `carried` → `snapshot` →
//! `catalog` → `fast`, `library` → `answer` → `net` (with `cookie`, `rrl`, `tcp_table`,
//! `udp_batch`, `stats`, `config` beside it).
//!
//! The one design decision: **snapshots are immutable and swapped atomically.** A query
//! loads the catalog once and answers entirely from that load, so it never sees half of
//! a version nor a mix of two, and readers never wait for writers. Behaviour is matched
//! against NSD 4.6; where we differ, the item says so.

mod answer;
mod carried;
mod catalog;
mod config;
pub mod cookie;
mod encode;
mod fast;
mod hashing;
mod library;
mod lookup;
mod memory;
mod net;
mod nodes;
pub mod rrl;
mod snapshot;
pub mod stats;
mod table;
mod tcp_table;
mod template;
mod transfer;
mod udp_batch;
mod wire_format;
mod zone;

pub use answer::{handle, handle_with};
pub use catalog::{Catalog, Zones};
pub use config::{default_udp_workers, ServerConfig, UDP_WORKERS};
pub use fast::answer_fast;
pub use library::answer_library;
pub use lookup::{lookup, AnswerKind, Lookup};
pub use memory::release_free_memory;
pub use net::{serve, Server};
pub use rrl::{Prefix, RrlConfig};
pub use snapshot::{default_cname_chain_length, ZoneSnapshot};
pub use stats::QueryTotals;
pub use transfer::TransferService;
pub use wire_format::{is_notify_request, is_signed, is_transfer_request, tsig_start, Transport};
pub use zone::ZoneData;

/// What can go wrong running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}; is another server using that port?")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}
