//! Response rate limiting over real sockets: a spoofed-source amplification flood from one
//! /24 gets at most the configured rate of full answers, the rest dropped or truncated
//! (slip), while a client on another /24 loses nothing; TCP is never limited.

mod common;
mod sockets;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server::{RrlConfig, ServerConfig};
use sockets::{question, start_with, tcp_read_reply, REPLY_DEADLINE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

/// Full answers one account may get per second in these tests.
const RATE: u32 = 20;
/// How long the flood lasts, and how many queries it sends (a bounded loop).
const FLOOD: Duration = Duration::from_millis(1_500);
const FLOOD_QUERIES: usize = 3_000;

fn limited(rate: u32, log_only: bool) -> ServerConfig {
    ServerConfig {
        rrl: RrlConfig {
            responses_per_second: rate,
            log_only,
            ..RrlConfig::default()
        },
        ..ServerConfig::new(([127, 0, 0, 1], 0).into())
    }
}

/// A TXT query for `mid.example.test` (two 200-byte strings): a 34-byte query, a
/// 400-byte-plus answer: the amplification an attacker looks for.
fn amplifying_query(id: u16) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let mut q = question("mid.example.test");
    let at = q.len() - 4;
    q[at..at + 2].copy_from_slice(&16u16.to_be_bytes());
    packet.extend_from_slice(&q);
    packet
}

async fn socket_on(source: [u8; 4], server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::from((source, 0)))
        .await
        .expect("loopback source binds (127.0.0.0/8 is all local)");
    socket.connect(server).await.expect("connect");
    socket
}

#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    full: usize,
    truncated: usize,
    truncated_with_records: usize,
}

/// Sends [`FLOOD_QUERIES`] over [`FLOOD`] from `source` and counts what comes back.
async fn flood(source: [u8; 4], server: SocketAddr) -> (Tally, Duration) {
    let socket = socket_on(source, server).await;
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut buffer = vec![0u8; 65_535];
    // Sent in bursts of ten: a timer is coarser than the gap between two queries.
    let pause = FLOOD * 10 / FLOOD_QUERIES as u32;
    for id in 0..FLOOD_QUERIES {
        socket
            .send(&amplifying_query(id as u16))
            .await
            .expect("send");
        tally.sent += 1;
        while let Ok(length) = socket.try_recv(&mut buffer) {
            count(&buffer[..length], &mut tally);
        }
        if id % 10 == 9 {
            tokio::time::sleep(pause).await;
        }
    }
    // Replies still in flight.
    while let Ok(Ok(length)) = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await
    {
        count(&buffer[..length], &mut tally);
    }
    (tally, started.elapsed())
}

fn count(reply: &[u8], tally: &mut Tally) {
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    if reply[2] & 0x02 != 0 {
        tally.truncated += 1;
        if answers > 0 || reply.len() > 12 + 18 + 4 {
            tally.truncated_with_records += 1;
        }
    } else if answers > 0 {
        tally.full += 1;
    }
}

/// A client asking one query at a time, `count` times, `gap` apart; the full answers.
async fn polite_client(source: [u8; 4], server: SocketAddr, count: usize, gap: Duration) -> usize {
    let socket = socket_on(source, server).await;
    let mut full = 0;
    let mut buffer = vec![0u8; 65_535];
    for id in 0..count {
        socket
            .send(&amplifying_query(id as u16))
            .await
            .expect("send");
        if let Ok(Ok(length)) = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await
        {
            let reply = &buffer[..length];
            if reply[2] & 0x02 == 0 && u16::from_be_bytes([reply[6], reply[7]]) == 2 {
                full += 1;
            }
        }
        tokio::time::sleep(gap).await;
    }
    full
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_prefix_gets_at_most_the_rate_while_another_prefix_loses_nothing() {
    let (server, catalog, _stop) = start_with(limited(RATE, false)).await;
    let polite = tokio::spawn(polite_client(
        [127, 0, 2, 1],
        server,
        30,
        Duration::from_millis(40),
    ));
    let (tally, elapsed) = flood([127, 0, 1, 1], server).await;
    let allowed = (f64::from(RATE) * (elapsed.as_secs_f64() + 1.0)).ceil() as usize;
    assert!(
        tally.full <= allowed,
        "{} full answers in {elapsed:?} at {RATE}/s (burst included: at most {allowed}): {tally:?}",
        tally.full
    );
    assert!(
        tally.full >= RATE as usize,
        "the burst is answered: {tally:?}"
    );
    let limited = tally.sent - tally.full;
    assert!(
        tally.truncated * 3 >= limited,
        "slip 2: about every second limited answer is sent truncated: {tally:?}"
    );
    assert_eq!(
        tally.truncated_with_records, 0,
        "a slipped answer carries no records"
    );
    assert_eq!(
        polite.await.expect("client"),
        30,
        "a client on another /24 gets every answer during the flood"
    );
    let totals = catalog.query_totals();
    assert!(totals.rrl_slipped as usize >= tally.truncated);
    assert!(totals.rrl_dropped > 0, "{totals:?}");
    // A neighbour in the attacked /24 shares its account; over TCP it is answered.
    let mut stream = TcpStream::connect(server).await.expect("tcp");
    let query = amplifying_query(7);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).await.expect("write");
    let reply = tcp_read_reply(&mut stream)
        .await
        .expect("TCP is never rate limited");
    assert_eq!(u16::from_be_bytes([reply[6], reply[7]]), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_only_mode_answers_everything_and_counts_what_it_would_limit() {
    let (server, catalog, _stop) = start_with(limited(RATE, true)).await;
    let socket = socket_on([127, 0, 3, 1], server).await;
    let mut buffer = vec![0u8; 65_535];
    let mut full = 0;
    for id in 0..100u16 {
        socket.send(&amplifying_query(id)).await.expect("send");
        if let Ok(Ok(length)) = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await
        {
            if buffer[2] & 0x02 == 0 && length > 400 {
                full += 1;
            }
        }
    }
    assert_eq!(full, 100);
    let totals = catalog.query_totals();
    assert!(
        totals.rrl_would_limit >= 100 - 2 * u64::from(RATE),
        "{totals:?}"
    );
    assert_eq!(totals.rrl_dropped + totals.rrl_slipped, 0);
}

/// [`amplifying_query`] with an OPT carrying a COOKIE option (client cookie, and the
/// server cookie when given).
fn query_with_cookie(id: u16, client: [u8; 8], server: &[u8]) -> Vec<u8> {
    let mut packet = amplifying_query(id);
    packet[11] = 1; // ARCOUNT
    let option_bytes = 8 + server.len();
    packet.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    packet.extend_from_slice(&((4 + option_bytes) as u16).to_be_bytes());
    packet.extend_from_slice(&10u16.to_be_bytes());
    packet.extend_from_slice(&(option_bytes as u16).to_be_bytes());
    packet.extend_from_slice(&client);
    packet.extend_from_slice(server);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_presents_our_server_cookie_is_never_rate_limited() {
    let (server, _catalog, _stop) = start_with(limited(RATE, false)).await;
    let socket = socket_on([127, 0, 4, 1], server).await;
    let client = [7, 6, 5, 4, 3, 2, 1, 0];
    let mut buffer = vec![0u8; 65_535];
    socket
        .send(&query_with_cookie(1, client, &[]))
        .await
        .expect("send");
    let length = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer))
        .await
        .expect("a reply")
        .expect("recv");
    let cookie = server::cookie::query_cookie(&buffer[..length])
        .expect("the answer carries our cookie (RFC 7873 §5.2.1)");
    assert_eq!(cookie.client, client, "the client cookie is echoed");
    assert_eq!(cookie.server.len(), 16, "an RFC 9018 server cookie");
    // Far above the rate, with the cookie: every answer is full.
    let mut full = 0;
    for id in 0..200u16 {
        socket
            .send(&query_with_cookie(id, client, &cookie.server))
            .await
            .expect("send");
        if let Ok(Ok(length)) = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await
        {
            if buffer[2] & 0x02 == 0 && u16::from_be_bytes([buffer[6], buffer[7]]) == 2 {
                full += 1;
            }
            assert!(length > 400);
        }
    }
    assert_eq!(
        full, 200,
        "a verified cookie proves the source: nothing limited"
    );
    // A forged server cookie proves nothing: the same burst is limited.
    let mut forged = cookie.server.clone();
    forged[15] ^= 1;
    let started = Instant::now();
    for id in 0..200u16 {
        socket
            .send(&query_with_cookie(id, client, &forged))
            .await
            .expect("send");
    }
    let mut full_forged = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await {
        if buffer[2] & 0x02 == 0 {
            full_forged += 1;
        }
    }
    let allowed = (f64::from(RATE) * (started.elapsed().as_secs_f64() + 1.0)).ceil() as usize;
    assert!(
        full_forged <= allowed,
        "{full_forged} full answers to a forged cookie (at most {allowed})"
    );
}
