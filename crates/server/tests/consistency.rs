//! The one design decision, tested: readers never see a mix of two versions while a writer
//! swaps snapshots as fast as it can.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use model::rdata::{A, NS, SOA, TXT};
use model::{Generation, Name, RData, Record, ZoneContent};
use server::{handle, Catalog, Server, ServerConfig, Transport, ZoneSnapshot};

const VERSIONS: u32 = 16;
const READS_PER_THREAD: usize = 2_000;

fn name(text: &str) -> Name {
    // Literals written to parse.
    Name::from_str(text).expect("test name parses")
}

/// Version `n`: every record's data says `n` (TXT "gen=n", A 10.0.0.n/10.0.1.n, serial n).
fn version(n: u32) -> ZoneContent {
    let origin = "gen.test.";
    let byte = (n % 250) as u8;
    let records = vec![
        Record::from_rdata(
            name(origin),
            60,
            RData::SOA(SOA::new(
                name("ns.gen.test."),
                name("h.gen.test."),
                n,
                1,
                1,
                1,
                1,
            )),
        ),
        Record::from_rdata(name(origin), 60, RData::NS(NS(name("ns.gen.test.")))),
        Record::from_rdata(name("ns.gen.test."), 60, RData::A(A::new(10, 9, 9, byte))),
        Record::from_rdata(
            name("m.gen.test."),
            60,
            RData::TXT(TXT::new(vec![format!("gen={n}")])),
        ),
        Record::from_rdata(
            name("m.gen.test."),
            60,
            RData::TXT(TXT::new(vec![format!("gen={n}"), "b".into()])),
        ),
        Record::from_rdata(
            name("m.gen.test."),
            60,
            RData::TXT(TXT::new(vec![format!("gen={n}"), "c".into()])),
        ),
        Record::from_rdata(name("a.gen.test."), 60, RData::A(A::new(10, 0, 0, byte))),
        Record::from_rdata(name("a.gen.test."), 60, RData::A(A::new(10, 0, 1, byte))),
    ];
    ZoneContent::from_records(name(origin), records).expect("generated zone is valid")
}

fn query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in qname.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out
}

/// Every generation marker in the reply; they must all be equal.
fn markers(reply: &[u8]) -> Vec<u32> {
    let message = Message::from_vec(reply).expect("reply decodes");
    let mut seen = Vec::new();
    for record in message
        .answers
        .iter()
        .chain(&message.authorities)
        .chain(&message.additionals)
    {
        match &record.data {
            RData::TXT(txt) => {
                let text = String::from_utf8_lossy(&txt.txt_data[0]).to_string();
                seen.push(text.trim_start_matches("gen=").parse().expect("gen=N"));
            }
            RData::A(a) => seen.push(u32::from(a.0.octets()[3])),
            RData::SOA(soa) => seen.push(soa.serial),
            _ => {}
        }
    }
    seen
}

fn assert_consistent(reply: &[u8]) {
    let seen = markers(reply);
    assert!(!seen.is_empty(), "reply carries data");
    assert!(
        seen.iter().all(|g| *g == seen[0]),
        "mixed versions in one reply: {seen:?}"
    );
}

#[test]
fn readers_never_see_a_mixed_version_while_snapshots_swap() {
    let snapshots: Vec<Arc<ZoneSnapshot>> = (1..=VERSIONS)
        .map(|n| Arc::new(ZoneSnapshot::build(&version(n), Generation(u64::from(n)))))
        .collect();
    let catalog = Arc::new(Catalog::new());
    catalog.replace_zone(Arc::clone(&snapshots[0]));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (catalog, done) = (Arc::clone(&catalog), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !done.load(Ordering::Relaxed) {
                for snapshot in &snapshots {
                    catalog.replace_zone(Arc::clone(snapshot));
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let config = ServerConfig::default();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (catalog, config) = (Arc::clone(&catalog), config.clone());
            std::thread::spawn(move || {
                for i in 0..READS_PER_THREAD {
                    let (qname, qtype) = match i % 3 {
                        0 => ("m.gen.test", 16),
                        1 => ("a.gen.test", 1),
                        _ => ("nothing.gen.test", 1),
                    };
                    let reply = handle(
                        &query(i as u16, qname, qtype),
                        Transport::Udp,
                        &catalog,
                        &config,
                    )
                    .expect("a valid query is answered");
                    assert_consistent(&reply);
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().expect("reader thread passes");
    }
    done.store(true, Ordering::Relaxed);
    assert!(writer.join().expect("writer thread ends") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_clients_never_see_a_mixed_version_while_snapshots_swap() {
    let snapshots: Vec<Arc<ZoneSnapshot>> = (1..=VERSIONS)
        .map(|n| Arc::new(ZoneSnapshot::build(&version(n), Generation(u64::from(n)))))
        .collect();
    let catalog = Arc::new(Catalog::new());
    catalog.replace_zone(Arc::clone(&snapshots[0]));
    let server = Server::bind(
        ServerConfig::new(([127, 0, 0, 1], 0).into()),
        Arc::clone(&catalog),
    )
    .await
    .expect("loopback port 0 binds");
    let address = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (catalog, done) = (Arc::clone(&catalog), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for snapshot in &snapshots {
                    catalog.replace_zone(Arc::clone(snapshot));
                }
            }
        })
    };
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("loopback bind");
    socket.connect(address).await.expect("loopback connect");
    let mut buffer = vec![0u8; 4096];
    let mut answered = 0;
    for i in 0..500u16 {
        let qname = if i % 2 == 0 {
            "m.gen.test"
        } else {
            "a.gen.test"
        };
        socket
            .send(&query(i, qname, if i % 2 == 0 { 16 } else { 1 }))
            .await
            .expect("send");
        // Loopback UDP may drop under load; a lost reply is not a failure, a mixed one is.
        if let Ok(Ok(length)) =
            tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer)).await
        {
            assert_consistent(&buffer[..length]);
            answered += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread ends");
    let _ = stop.send(());
    assert!(answered > 400, "most queries are answered ({answered}/500)");
}
