//! The one place that chooses how a query is answered, for UDP, TCP and [`handle`] alike:
//! the hot path (`crate::fast`, pre-encoded answers) when it can, else the library path
//! (`crate::library`, the reference).

use crate::catalog::{Catalog, Zones};
use crate::config::ServerConfig;
use crate::fast::answer_fast_counted;
use crate::library::{respond, Answered};
use crate::stats::RcodeCounters;
use crate::wire_format::Transport;

/// The buffer [`handle_with`] lets the hot path write into.
const HANDLE_BUFFER_BYTES: usize = 4_096 + 512;

/// An answer, by the path that made it.
pub(crate) enum Reply<'a> {
    /// Written by the hot path into the caller's buffer: its length, and the counters of
    /// the zone that answered.
    Fast {
        length: usize,
        counters: &'a RcodeCounters,
    },
    /// Made by the library path.
    Library(Answered<'a>),
}

/// Answers `packet` from `zones`: the hot path writes into `out` when it can, else the
/// library path answers. `None`: stay silent.
pub(crate) fn answer<'a>(
    packet: &[u8],
    transport: Transport,
    zones: &'a Zones,
    config: &ServerConfig,
    out: &mut [u8],
) -> Option<Reply<'a>> {
    match answer_fast_counted(packet, transport, zones, config, out) {
        Some((length, counters)) => Some(Reply::Fast { length, counters }),
        None => respond(packet, transport, zones, config).map(Reply::Library),
    }
}

/// Answers one DNS message. `None` means stay silent (no header, or not a query).
pub fn handle(
    packet: &[u8],
    transport: Transport,
    catalog: &Catalog,
    config: &ServerConfig,
) -> Option<Vec<u8>> {
    let zones = catalog.snapshot();
    handle_with(packet, transport, &zones, config)
}

/// [`handle`] against an already loaded set of zones.
pub fn handle_with(
    packet: &[u8],
    transport: Transport,
    zones: &Zones,
    config: &ServerConfig,
) -> Option<Vec<u8>> {
    // Room for what the hot path answers over UDP; a longer TCP answer takes the library
    // path, with the same bytes (zeroing 64 KiB per call would cost more than answering).
    let mut out = vec![0u8; HANDLE_BUFFER_BYTES];
    match answer(packet, transport, zones, config, &mut out)? {
        Reply::Fast { length, .. } => {
            out.truncate(length);
            Some(out)
        }
        Reply::Library(answered) => Some(answered.reply),
    }
}
