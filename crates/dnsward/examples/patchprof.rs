use hickory_proto::rr::rdata::{A, NS, SOA};
use model::{Generation, Name, Provenance, RData, Record, RefName, ZoneContent};
use std::time::Instant;
use store::{Commit, SqliteStore, Store};
fn name(t: &str) -> Name {
    Name::from_ascii(t).unwrap()
}
fn zone(n: u64, round: u64) -> ZoneContent {
    let o = name("bench.test.");
    let mut r = vec![
        Record::from_rdata(
            o.clone(),
            3600,
            RData::SOA(SOA::new(
                name("ns1.bench.test."),
                name("h.bench.test."),
                1,
                3600,
                600,
                86400,
                60,
            )),
        ),
        Record::from_rdata(o.clone(), 3600, RData::NS(NS(name("ns1.bench.test.")))),
    ];
    for i in 0..n {
        let changed = (i + round) % 100 < 1;
        let last = if changed { (round % 250) as u8 } else { 1 };
        r.push(Record::from_rdata(
            name(&format!("host{i}.bench.test.")),
            300,
            RData::A(A::new(10, (i >> 8) as u8, i as u8, last)),
        ));
    }
    ZoneContent::from_records(o, r).unwrap()
}
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let c0 = zone(n, 0);
    let g1 = store
        .commit(Commit {
            content: &c0,
            base: None,
            target: RefName::Active,
            provenance: Provenance::Import,
            actor: "x",
            reason: "x",
            now_ms: 0,
            automation: false,
        })
        .unwrap()
        .generation;
    let snap = server::ZoneSnapshot::build_lookup(&c0, g1);
    let mut served = std::sync::Arc::new(snap);
    let mut active = g1;
    for round in 1..=3 {
        let c = zone(n, round);
        let t = Instant::now();
        let g = store
            .commit(Commit {
                content: &c,
                base: Some(active),
                target: RefName::Active,
                provenance: Provenance::Import,
                actor: "x",
                reason: "x",
                now_ms: 0,
                automation: false,
            })
            .unwrap()
            .generation;
        let commit = t.elapsed();
        let t = Instant::now();
        let ch = store
            .content_changes(&name("bench.test."), active, g)
            .unwrap()
            .unwrap();
        let read = t.elapsed();
        let t = Instant::now();
        let p = served.patched(&ch.removed, &ch.added, g);
        let build = t.elapsed();
        let t = Instant::now();
        drop(ch);
        let dropt = t.elapsed();
        println!(
            "round {round}: commit {:?} read {:?} build {:?} drop {:?} overlay {}",
            commit,
            read,
            build,
            dropt,
            p.patched_names()
        );
        let t = Instant::now();
        let p = p.compacted().unwrap_or(p);
        println!("  merge {:?}", t.elapsed());
        served = std::sync::Arc::new(p);
        active = g;
        let _ = Generation(0);
    }
}
