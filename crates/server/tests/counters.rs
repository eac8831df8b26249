//! Query statistics over real sockets: every answer is counted under the zone that gave it
//! and its response code, silences are counted apart, and every answer's latency lands in
//! the histogram of its transport.

mod common;
mod sockets;

use std::sync::Arc;

use model::Generation;
use server::stats::{StatsTransport, RCODE_SLOTS};
use server::{QueryTotals, ZoneSnapshot};
use sockets::{header, question, start, tcp_read_reply, udp_exchange};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

const NOERROR: usize = 0;
const NXDOMAIN: usize = 3;
const REFUSED: usize = 5;

fn query(qname: &str) -> Vec<u8> {
    [header(0x0100, 1, 0, 0, 0), question(qname)].concat()
}

fn zone_counts(totals: &QueryTotals, origin: &str) -> [u64; RCODE_SLOTS] {
    totals
        .zones
        .iter()
        .find(|(zone, _)| zone == origin)
        .map(|(_, counts)| *counts)
        .unwrap_or_else(|| panic!("{origin} is listed: {totals:?}"))
}

fn latency_count(totals: &QueryTotals, transport: StatsTransport) -> u64 {
    totals
        .latency
        .iter()
        .find(|(t, _)| *t == transport)
        .map_or(0, |(_, histogram)| histogram.count())
}

#[tokio::test]
async fn answers_are_counted_by_zone_and_rcode_and_silences_apart() {
    let (address, catalog, _stop) = start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback bind");
    socket.connect(address).await.expect("loopback connect");

    // A response (QR set) gets silence; the valid query after it proves it was processed.
    let mut response = query("www.example.test");
    response[2] |= 0x80;
    assert!(udp_exchange(&socket, &response).await.is_none());
    for _ in 0..3 {
        let reply = udp_exchange(&socket, &query("www.example.test")).await;
        assert!(reply.is_some(), "hot-path answer");
    }
    // A new version of the zone keeps counting where the old one left off.
    catalog.replace_zone(Arc::new(ZoneSnapshot::build(
        &common::example_zone(8),
        Generation(2),
    )));
    let reply = udp_exchange(&socket, &query("nope.example.test")).await;
    assert_eq!(reply.map(|r| r[3] & 0x0f), Some(NXDOMAIN as u8));
    let reply = udp_exchange(&socket, &query("www.other.test")).await;
    assert_eq!(reply.map(|r| r[3] & 0x0f), Some(REFUSED as u8));

    let mut stream = TcpStream::connect(address).await.expect("loopback connect");
    let packet = query("www.example.test");
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    stream.write_all(&framed).await.expect("write");
    assert!(tcp_read_reply(&mut stream).await.is_some(), "tcp answer");

    let totals = catalog.query_totals();
    let zone = zone_counts(&totals, "example.test.");
    assert_eq!(zone[NOERROR], 4, "three over UDP, one over TCP: {totals:?}");
    assert_eq!(zone[NXDOMAIN], 1, "{totals:?}");
    assert_eq!(zone.iter().sum::<u64>(), 5, "{totals:?}");
    assert_eq!(totals.unmatched[REFUSED], 1, "{totals:?}");
    assert_eq!(totals.unmatched.iter().sum::<u64>(), 1, "{totals:?}");
    assert_eq!(totals.dropped, 1, "{totals:?}");
    assert_eq!(latency_count(&totals, StatsTransport::Udp), 5, "{totals:?}");
    assert_eq!(latency_count(&totals, StatsTransport::Tcp), 1, "{totals:?}");
}

#[tokio::test]
async fn malformed_queries_are_counted_as_answered_by_no_zone() {
    let (address, catalog, _stop) = start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback bind");
    socket.connect(address).await.expect("loopback connect");
    let truncated = header(0x0100, 1, 0, 0, 0);
    let reply = udp_exchange(&socket, &truncated).await.expect("FORMERR");
    assert_eq!(reply[3] & 0x0f, 1);
    let notify_status = header(0x1000, 0, 0, 0, 0);
    let reply = udp_exchange(&socket, &notify_status).await.expect("NOTIMP");
    assert_eq!(reply[3] & 0x0f, 4);

    let totals = catalog.query_totals();
    assert_eq!(totals.unmatched[1], 1, "FORMERR: {totals:?}");
    assert_eq!(totals.unmatched[4], 1, "NOTIMP: {totals:?}");
    assert_eq!(zone_counts(&totals, "example.test.").iter().sum::<u64>(), 0);
}
