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
pub mod client;
pub mod keys;
mod messages;
pub mod notify;
mod primary;
pub mod secondary;
mod signed;

pub use acl::AllowTransfer;
pub use keys::{KeyConfig, KeyError, Keys};
pub use messages::{Sent, MESSAGE_SOFT_BYTES};
pub use primary::{Answer, Primary, ZoneTransfers, IXFR_HISTORY_VERSIONS};

use std::net::IpAddr;
use std::sync::Arc;

/// A node's whole transfer plane as the server sees it: AXFR/IXFR out of [`Primary`],
/// NOTIFY into [`secondary::Secondaries`].
pub struct Transfers {
    pub primary: Primary,
    pub secondaries: Arc<secondary::Secondaries>,
}

impl Transfers {
    /// Takes reloaded keys and transfer rules (`allow_transfer`).
    pub fn reload(
        &self,
        keys: Keys,
        zones: impl IntoIterator<Item = (hickory_proto::rr::Name, ZoneTransfers)>,
    ) {
        self.secondaries.set_keys(keys.clone());
        self.primary.reload(keys, zones);
    }
}

impl server::TransferService for Transfers {
    fn transfer(
        &self,
        request: &[u8],
        peer: IpAddr,
        zones: &server::Zones,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) {
        self.primary.answer(request, peer, zones, send);
    }

    fn notify(&self, request: &[u8], peer: IpAddr) -> Option<Vec<u8>> {
        self.secondaries.notify(request, peer)
    }

    fn signed_query(
        &self,
        request: &[u8],
        peer: IpAddr,
        answer: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        signed::signed_query(&self.primary.keys(), request, peer, answer)
    }
}
