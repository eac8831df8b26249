//! The query hot path against the library path, in process: nanoseconds per query and heap
//! allocations per query (counted by a global allocator that counts).
//!
//! Run: `cargo bench -p server --bench hot_path`. Environment: `HOT_PATH_NAMES` (zone
//! size, default 20000), `HOT_PATH_QUERIES` (default 2000000).
//!
//! The mix is the serving benchmark's (bench/genzone.py): 80 % A, 5 % AAAA, 5 % A of a
//! CNAME, 5 % NXDOMAIN, 5 % below a delegation. Queries the hot path declines go to the
//! library path, as in the server; both figures are printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use model::rdata::{A, AAAA, CNAME, NS, SOA};
use model::{Generation, Name, RData, Record, ZoneContent};
use server::{answer_fast, answer_library, Catalog, ServerConfig, Transport, ZoneSnapshot};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed through unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn env_number(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name(text: &str) -> Name {
    Name::from_str(text).expect("bench names are valid")
}

fn zone(names: usize) -> ZoneContent {
    let o = |label: String| name(&format!("{label}.bench.test."));
    let mut records = vec![
        Record::from_rdata(
            name("bench.test."),
            3600,
            RData::SOA(SOA::new(
                name("ns1.bench.test."),
                name("hostmaster.bench.test."),
                1,
                3600,
                600,
                86400,
                300,
            )),
        ),
        Record::from_rdata(
            name("bench.test."),
            3600,
            RData::NS(NS(name("ns1.bench.test."))),
        ),
        Record::from_rdata(
            name("bench.test."),
            3600,
            RData::NS(NS(name("ns2.bench.test."))),
        ),
        Record::from_rdata(
            name("ns1.bench.test."),
            3600,
            RData::A(A::new(192, 0, 2, 1)),
        ),
        Record::from_rdata(
            name("ns2.bench.test."),
            3600,
            RData::A(A::new(192, 0, 2, 2)),
        ),
    ];
    for i in 0..names {
        let host = o(format!("host{i}"));
        records.push(Record::from_rdata(
            host.clone(),
            300,
            RData::A(A::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
        ));
        if i % 17 == 0 {
            let v6 = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
            records.push(Record::from_rdata(host, 300, RData::AAAA(AAAA::from(v6))));
        }
        if i % 20 == 0 {
            records.push(Record::from_rdata(
                o(format!("alias{i}")),
                300,
                RData::CNAME(CNAME(o(format!("host{}", (i * 7) % names)))),
            ));
            let sub = o(format!("sub{i}"));
            let ns = name(&format!("ns.sub{i}.bench.test."));
            records.push(Record::from_rdata(sub, 3600, RData::NS(NS(ns.clone()))));
            records.push(Record::from_rdata(
                ns,
                3600,
                RData::A(A::new(198, 51, (i >> 8) as u8, i as u8)),
            ));
        }
    }
    ZoneContent::from_records(name("bench.test."), records).expect("bench zone is valid")
}

fn query(id: u16, qname: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in qname.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    out
}

fn mix(names: usize, count: usize) -> Vec<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|i| {
            let r = next() % 100;
            let n = next() as usize % names;
            let (qname, qtype) = match r {
                0..80 => (format!("host{n}.bench.test"), 1),
                80..85 => (format!("host{}.bench.test", n / 17 * 17), 28),
                85..90 => (format!("alias{}.bench.test", n / 20 * 20), 1),
                90..95 => (format!("nx{n}.bench.test"), 1),
                _ => (format!("www.sub{}.bench.test", n / 20 * 20), 1),
            };
            query(i as u16, &qname, qtype)
        })
        .collect()
}

fn main() {
    let names = env_number("HOT_PATH_NAMES", 20_000);
    let count = env_number("HOT_PATH_QUERIES", 2_000_000);
    let content = zone(names);
    let started = Instant::now();
    let snapshot = ZoneSnapshot::build(&content, Generation(1));
    let build = started.elapsed();
    let stored = snapshot.stored_answers();
    let catalog = Catalog::new();
    catalog.replace_zone(Arc::new(snapshot));
    let zones = catalog.snapshot();
    let config = ServerConfig::default();
    let queries = mix(names, 65_536);
    let mut out = vec![0u8; 4096];

    // Hot path only, over the queries it takes.
    let taken: Vec<&Vec<u8>> = queries
        .iter()
        .filter(|q| answer_fast(q, Transport::Udp, &zones, &config, &mut out).is_some())
        .collect();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..count {
        black_box(answer_fast(
            taken[i % taken.len()],
            Transport::Udp,
            &zones,
            &config,
            &mut out,
        ));
    }
    let fast_ns = started.elapsed().as_nanos() as f64 / count as f64;
    let fast_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    // The library path on the same queries.
    let library_count = count / 10;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..library_count {
        black_box(answer_library(
            taken[i % taken.len()],
            Transport::Udp,
            &zones,
            &config,
        ));
    }
    let library_ns = started.elapsed().as_nanos() as f64 / library_count as f64;
    let library_allocations =
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / library_count as f64;

    // The whole mix as the server runs it: hot path, else library path.
    let started = Instant::now();
    for i in 0..library_count {
        let q = &queries[i % queries.len()];
        if answer_fast(q, Transport::Udp, &zones, &config, &mut out).is_none() {
            black_box(answer_library(q, Transport::Udp, &zones, &config));
        }
    }
    let mix_ns = started.elapsed().as_nanos() as f64 / library_count as f64;

    println!(
        "zone {names} names: snapshot build {:.0} ms, {stored} answers pre-encoded",
        build.as_secs_f64() * 1e3
    );
    println!(
        "hot path takes {:.1} % of the mix",
        taken.len() as f64 * 100.0 / queries.len() as f64
    );
    println!("hot path     {fast_ns:7.0} ns/query, {fast_allocations} heap allocations in {count} queries");
    println!("library path {library_ns:7.0} ns/query, {library_allocations:.1} heap allocations per query");
    println!("whole mix    {mix_ns:7.0} ns/query (hot path, else library path)");
    assert_eq!(fast_allocations, 0, "the hot path must not allocate");
}
