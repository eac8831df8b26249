//! # transfer — dnsward as the primary that secondaries transfer from
//!
//! Where it sits: `store ──▶ follow ──▶ server catalog ──▶ transfer ──AXFR/IXFR──▶
//! secondaries (NSD, Knot, BIND, dnsward)`, and `catalog change ──▶ NOTIFY`.
//!
//! * [`Primary`] answers AXFR and IXFR requests the server receives over TCP
//!   ([`server::TransferService`]): from the served snapshot, IXFR from the store's recorded
//!   changes, TSIG-checked and signed, allowed by [`acl`] rules.
//! * [`notify`] tells configured secondaries about every new served serial (RFC 1996).
//! * [`keys`]: TSIG keys as BIND, NSD and Knot write them.
//! * `messages`: records into ~16 KiB answer messages, each signed when the request was.
//!
//! The transfer plane uses NLnet Labs' `domain` for messages and TSIG; the query path keeps
//! hickory-proto.

pub mod acl;
pub mod keys;
mod messages;
pub mod notify;
mod primary;

pub use acl::AllowTransfer;
pub use keys::{KeyConfig, KeyError, Keys};
pub use messages::{Sent, MESSAGE_SOFT_BYTES};
pub use primary::{Answer, Primary, ZoneTransfers, IXFR_HISTORY_VERSIONS};
