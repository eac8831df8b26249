//! The door for zone transfers: the server recognises AXFR and IXFR requests among TCP
//! queries ([`crate::wire_format::is_transfer_request`]) and streams whatever its
//! [`TransferService`] produces, and hands it NOTIFY messages (UDP and TCP,
//! [`crate::wire_format::is_notify_request`]); without one it refuses transfers like NSD
//! without an ACL and answers NOTIFY with NOTIMP.

use std::net::IpAddr;

use crate::catalog::Zones;

/// Answers zone transfer requests (AXFR, IXFR over TCP) from the served zones.
pub trait TransferService: Send + Sync + 'static {
    /// Answers one request from `peer` out of `zones` (one consistent load of the catalog):
    /// every message of the answer, in order, handed to `send`, which returns `false` once
    /// the connection is gone (stop then). Runs on a blocking thread: it may read a store.
    fn transfer(
        &self,
        request: &[u8],
        peer: IpAddr,
        zones: &Zones,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    );

    /// Answers a NOTIFY (RFC 1996) from `peer`: the reply, or `None` to leave the message
    /// to the answer paths (NOTIMP). Called on the serving threads: it must not block.
    fn notify(&self, request: &[u8], peer: IpAddr) -> Option<Vec<u8>> {
        let _ = (request, peer);
        None
    }

    /// Answers a query signed with TSIG (RFC 8945; e.g. a secondary's SOA query): checks
    /// the signature and signs `answer`'s reply to the query without its TSIG record, or
    /// answers the TSIG error. `None` leaves the query to the answer paths, which ignore
    /// the TSIG record.
    fn signed_query(
        &self,
        request: &[u8],
        peer: IpAddr,
        answer: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let _ = (request, peer, answer);
        None
    }
}
