//! Self-heal timings: how long from a bad version written straight into a running node's
//! store (bypassing planner and guard) until the validator records the violation
//! (detection), restores the last known good (rollback), and the good answer is back on the
//! wire (repair, asked with `dig`).
//!
//! `cargo bench -p dnsward --bench self_heal [-- ROUNDS]` (default 10 rounds). Needs `dig`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{dig, free_port};
use model::{Name, Provenance, RecordType, RefName};
use store::{AuditQuery, Commit, SqliteStore, Store};

const ENDPOINT: &str = "app.example.test.";
const DEADLINE: Duration = Duration::from_secs(30);

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn audit_after(store: &SqliteStore, zone: &Name, action: &str, since_ms: u64) -> Option<u64> {
    let mut after = None;
    loop {
        let page = store
            .audit(&AuditQuery {
                zone: Some(zone.clone()),
                after_sequence: after,
                ..AuditQuery::default()
            })
            .ok()?;
        let last = page.last()?.sequence;
        if let Some(entry) = page
            .iter()
            .find(|e| e.action == action && e.at_ms >= since_ms)
        {
            return Some(entry.at_ms);
        }
        after = Some(last);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut backends = Vec::new();
    let mut lines = Vec::new();
    for last in [61u8, 62] {
        let listener = TcpListener::bind((Ipv4Addr::new(127, 0, 9, last), 0)).expect("backend");
        let address = listener.local_addr().expect("bound");
        lines.push(format!(
            "  {{ address = \"{}\", check = \"tcp:{address}\" }},",
            address.ip()
        ));
        backends.push(listener);
    }
    let good: BTreeSet<String> = ["127.0.9.61".to_string(), "127.0.9.62".to_string()].into();
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let zone_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/zones/example.test.zone")
        .canonicalize()
        .expect("example zone");
    let config = format!(
        "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n[store]\npath = \"node.db\"\n\
         [health]\ninterval_ms = 200\ntimeout_ms = 200\nrise = 1\nfall = 2\n\
         [validator]\ngood_after_ms = 1000\n\
         [[zone]]\nname = \"example.test\"\nfile = \"{}\"\n\
         [[endpoint]]\nname = \"app.example.test\"\nttl = 5\nbackends = [\n{}\n]\n",
        free_port(),
        zone_file.display(),
        lines.join("\n")
    );
    let config_path = dir.path().join("dnsward.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut node = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["run", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsward run");
    wait("the endpoint answers", || {
        dig(dns, ENDPOINT).as_ref() == Some(&good)
    });
    let store = SqliteStore::open(dir.path().join("node.db")).expect("store");
    let zone = Name::from_ascii("example.test.").expect("valid");
    let endpoint = Name::from_ascii(ENDPOINT).expect("valid");

    let (mut detect, mut rollback, mut repair) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Steady state first: the active version is validated good.
        let since = now_ms();
        wait("a last known good", || {
            audit_after(
                &store,
                &zone,
                "validated-good",
                since.saturating_sub(60_000),
            )
            .is_some()
                && dig(dns, ENDPOINT).as_ref() == Some(&good)
        });
        let active = store.refs(&zone).expect("refs").active;
        let mut bad = store
            .content(&zone, active.expect("active"))
            .expect("content");
        bad.remove_rrset(&endpoint, RecordType::A);
        let written = now_ms();
        let started = Instant::now();
        store
            .commit(Commit {
                content: &bad,
                base: active,
                target: RefName::Active,
                provenance: Provenance::Planner,
                actor: "bench-buggy-automation",
                reason: "bench",
                now_ms: written,
                automation: false,
            })
            .expect("bad write");
        // The planner may restore the endpoint on its own tick before the validator sees the
        // bad version (rare; only while the breaker is closed): such a round is skipped.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rolled = None;
        while rolled.is_none() && Instant::now() < deadline {
            rolled = audit_after(&store, &zone, "rollback", written);
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(rolled) = rolled else {
            println!("round {round}: the planner restored the endpoint first; skipped");
            continue;
        };
        wait("the good answer is back", || {
            dig(dns, ENDPOINT).as_ref() == Some(&good)
        });
        let repaired = started.elapsed().as_secs_f64() * 1e3;
        let found = audit_after(&store, &zone, "validator-finding", written).expect("finding");
        detect.push((found - written) as f64);
        rollback.push((rolled - written) as f64);
        repair.push(repaired);
        println!(
            "round {round}: detected {} ms, rolled back {} ms, good answer on the wire {repaired:.1} ms",
            found - written,
            rolled - written
        );
    }
    let _ = node.kill();
    let _ = node.wait();
    for (what, values) in [
        ("detection", &mut detect),
        ("rollback", &mut rollback),
        ("repair (dig)", &mut repair),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "{what}: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} rounds",
            percentile(values, 0.5),
            percentile(values, 0.9),
            values.last().copied().unwrap_or_default(),
            values.len()
        );
    }
}
