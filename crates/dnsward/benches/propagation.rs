//! Propagation: time from a compare-and-swap of a new version in the store to the first
//! UDP answer carrying the new content from `dnsward serve --store`.
//!
//! Run: `cargo bench -p dnsward --bench propagation` (or `bench/propagation`).
//! Environment: `PROPAGATION_NAMES` (zone size in names, default 10000),
//! `PROPAGATION_ROUNDS` (default 50). Goal (issue 2): p99 ≤ 50 ms.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use model::{Provenance, RefName, ZoneContent};
use store::{Commit, SqliteStore, Store};

const ORIGIN: &str = "bench.test.";
const DEADLINE: Duration = Duration::from_secs(10);

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("bench names are valid")
}

/// A zone of `names` A records plus a TXT marker naming the round; `round` also changes
/// 1 % of the A records, so each version is a realistic small change.
fn zone(names: u64, round: u64) -> ZoneContent {
    let origin = name(ORIGIN);
    let mut records = vec![
        Record::from_rdata(
            origin.clone(),
            3600,
            RData::SOA(SOA::new(
                name("ns1.bench.test."),
                name("hostmaster.bench.test."),
                1,
                3600,
                600,
                86400,
                60,
            )),
        ),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(name("ns1.bench.test.")))),
        Record::from_rdata(
            name("ns1.bench.test."),
            3600,
            RData::A(A::new(192, 0, 2, 53)),
        ),
        Record::from_rdata(
            name("marker.bench.test."),
            60,
            RData::TXT(TXT::new(vec![format!("round-{round}")])),
        ),
    ];
    for i in 0..names {
        let changed = i % 100 == round % 100;
        let last = if changed { (round % 250) as u8 } else { 1 };
        records.push(Record::from_rdata(
            name(&format!("host{i}.bench.test.")),
            300,
            RData::A(A::new(10, (i >> 8) as u8, i as u8, last)),
        ));
    }
    ZoneContent::from_records(origin, records).expect("bench zone is valid")
}

fn marker(server: SocketAddr, socket: &UdpSocket, id: u16) -> Option<String> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(name("marker.bench.test."), RecordType::TXT));
    socket.send_to(&message.to_vec().ok()?, server).ok()?;
    let mut buffer = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buffer).ok()?;
    let reply = Message::from_vec(&buffer[..len]).ok()?;
    reply.answers.iter().find_map(|record| match &record.data {
        RData::TXT(txt) => txt
            .txt_data
            .first()
            .map(|s| String::from_utf8_lossy(s).into_owned()),
        _ => None,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    let names = env_number("PROPAGATION_NAMES", 10_000);
    let rounds = env_number("PROPAGATION_ROUNDS", 50);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("propagation.db");
    let store = SqliteStore::open(&path).expect("open store");
    let mut active = store
        .commit(Commit {
            content: &zone(names, 0),
            base: None,
            target: RefName::Active,
            automation: false,
            provenance: Provenance::Import,
            actor: "bench",
            reason: "initial",
            now_ms: 0,
        })
        .expect("initial commit")
        .generation;

    let port = UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["serve", "--store"])
        .arg(&path)
        .args(["--listen", &server.to_string()])
        .env(
            "RUST_LOG",
            std::env::var("PROPAGATION_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("start dnsward");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let start = Instant::now();
    while marker(server, &socket, 1).as_deref() != Some("round-0") {
        assert!(
            start.elapsed() < DEADLINE * 3,
            "dnsward did not start serving the store"
        );
    }

    let mut samples = Vec::new();
    for round in 1..=rounds {
        let content = zone(names, round);
        let version = store
            .commit(Commit {
                content: &content,
                base: Some(active),
                target: RefName::Active,
                automation: false,
                provenance: Provenance::Planner,
                actor: "bench",
                reason: "propagation round",
                now_ms: round,
            })
            .expect("commit");
        let committed = Instant::now();
        active = version.generation;
        let expected = format!("round-{round}");
        loop {
            if marker(server, &socket, round as u16).as_deref() == Some(expected.as_str()) {
                samples.push(committed.elapsed());
                break;
            }
            assert!(
                committed.elapsed() < DEADLINE,
                "round {round} never reached the wire"
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    samples.sort();
    println!(
        "propagation CAS->wire, {names} names, 1% change, {rounds} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 50 ms)",
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}
