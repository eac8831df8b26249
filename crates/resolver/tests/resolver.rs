//! The resolver in process, against fake upstreams on loopback: upstream choice by health,
//! prefetch of popular names, and the cache answering without upstreams. Real upstreams
//! (`dnsward serve`, NSD) and `dig` are in `crates/dnsward/tests/resolver.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use model::{Clock, ManualClock};
use resolver::{Resolver, ResolverConfig, Transport};
use tokio::net::UdpSocket;

const DEADLINE: Duration = Duration::from_secs(10);
const TTL_SECS: u32 = 10;

/// An upstream that answers every A question with 192.0.2.1 and counts the questions.
async fn answering_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback bind");
    let addr = socket.local_addr().expect("bound socket has an address");
    let asked = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&asked);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
            let Ok(query) = Message::from_vec(&buffer[..length]) else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut answer = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            let question = query.queries[0].clone();
            let owner = question.name().clone();
            answer.add_query(question);
            answer.add_answer(Record::from_rdata(
                owner,
                TTL_SECS,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            let bytes = answer.to_vec().expect("answer encodes");
            let _ = socket.send_to(&bytes, peer).await;
        }
    });
    (addr, asked)
}

/// An upstream that takes every question and never answers.
async fn silent_upstream() -> (SocketAddr, UdpSocket) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("loopback bind");
    (
        socket.local_addr().expect("bound socket has an address"),
        socket,
    )
}

fn question(name: &str) -> Vec<u8> {
    let mut message = Message::new(0x4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        RecordType::A,
    ));
    message.to_vec().expect("query encodes")
}

async fn ask(resolver: &Arc<Resolver>, name: &str) -> Message {
    let reply = resolver
        .answer(&question(name), Transport::Udp)
        .await
        .expect("a reply");
    Message::from_vec(&reply).expect("the reply parses")
}

#[tokio::test]
async fn a_silent_upstream_is_marked_dead_and_questions_go_to_the_live_one() {
    let (live, _) = answering_upstream().await;
    let (silent, silent_socket) = silent_upstream().await;
    let config = ResolverConfig::new("127.0.0.1:0".parse().expect("address"), vec![silent, live]);
    // The clock stands still: a dead upstream's probe never comes due.
    let clock = Arc::new(ManualClock::new(1_000_000));
    let resolver = Resolver::new(config, clock).expect("valid config");
    for i in 0..20 {
        let reply = ask(&resolver, &format!("n{i}.example.test.")).await;
        assert_eq!(reply.answers.len(), 1, "question {i} answered");
    }
    let stats = resolver.stats();
    // The silent one costs at most the failures that mark it dead.
    assert!(stats.upstream_failures <= 5, "{stats:?}");
    let mut buffer = [0u8; 512];
    while silent_socket.try_recv(&mut buffer).is_ok() {}
    ask(&resolver, "after.example.test.").await;
    // A question is sent before its answer is awaited: had it gone to the dead upstream,
    // the datagram would be waiting in the silent socket now.
    assert!(
        silent_socket.try_recv(&mut buffer).is_err(),
        "the dead upstream was asked again"
    );
    assert_eq!(resolver.stats().upstream_failures, stats.upstream_failures);
}

#[tokio::test]
async fn a_popular_name_is_refreshed_before_it_expires() {
    let (upstream, asked) = answering_upstream().await;
    let clock = Arc::new(ManualClock::new(1_000_000));
    let config = ResolverConfig::new("127.0.0.1:0".parse().expect("address"), vec![upstream]);
    let resolver =
        Resolver::new(config, Arc::clone(&clock) as Arc<dyn Clock>).expect("valid config");
    ask(&resolver, "popular.example.test.").await;
    ask(&resolver, "popular.example.test.").await;
    ask(&resolver, "popular.example.test.").await;
    assert_eq!(asked.load(Ordering::SeqCst), 1, "answered from the cache");

    clock.advance(u64::from(TTL_SECS) * 1000 - 500);
    let reply = ask(&resolver, "popular.example.test.").await;
    assert_eq!(reply.answers[0].ttl, 1, "still the cached answer, aged");
    let deadline = Instant::now() + DEADLINE;
    while asked.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "no prefetch reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clock.advance(1_000);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let reply = ask(&resolver, "popular.example.test.").await;
        if reply.answers[0].ttl == TTL_SECS - 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the prefetched answer never replaced the old one"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "the client never waited for upstream"
    );
}
