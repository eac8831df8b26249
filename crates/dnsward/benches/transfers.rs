//! Zone transfers against the real secondaries (issue 18):
//!
//! 1. NOTIFY → a secondary serving the new serial: a node serves a zone of
//!    `TRANSFER_NAMES` names (default 200,000) to NSD and Knot secondaries (TSIG), and
//!    `TRANSFER_ROUNDS` times (default 20) a 1 % change is applied to it; each round is
//!    timed from the moment the node serves the new serial (when it sends NOTIFY) to the
//!    moment each secondary does (NOTIFY, IXFR, the secondary's own load). p50 and p99.
//! 2. AXFR of a `TRANSFER_AXFR_NAMES`-record zone (default 1,000,000; 0 skips) to Knot, from
//!    a node and, in the same run, from a Knot primary serving the same zone file: the
//!    transfer's duration and size as the receiving Knot logs them ("AXFR, incoming, …,
//!    finished, S seconds, M messages, B bytes").
//!
//! Run: `bench/transfers` (release build; installs nothing: run `scripts/test` once first).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::node::Node;
use common::secondaries::{
    soa_serial, start_primary_on, start_secondary_on, wait_serial, Kind, TsigKey,
};
use common::{free_port, wait_until};

const ZONE: &str = "bench-xfr.test.";
const LOAD_DEADLINE: Duration = Duration::from_secs(900);
const ROUND_DEADLINE: Duration = Duration::from_secs(60);

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The zone: SOA, NS and `names` hosts with one A record each; the hosts of `rounds`
/// blocks of 1 % get a second address each.
fn zone_text(names: u64, rounds: u64) -> String {
    let mut text = format!(
        "$ORIGIN {ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    text.reserve(names as usize * 32);
    for host in 0..names {
        text.push_str(&format!(
            "h{host} IN A 10.{}.{}.{}\n",
            host >> 16 & 255,
            host >> 8 & 255,
            host & 255
        ));
    }
    let block = (names / 100).max(1);
    for round in 1..=rounds {
        for host in (round - 1) * block..round * block {
            text.push_str(&format!(
                "h{} IN A 172.{}.{}.{}\n",
                host % names,
                16 + round % 16,
                host >> 8 & 255,
                host & 255
            ));
        }
    }
    text
}

/// A node serving `zone` (the file) with `blocks`, response rate limiting off (the bench
/// polls serials) and the validator off; returns once it serves the zone.
fn start_node(blocks: &str, zone: &str) -> Node {
    let node = Node::start(
        &format!("[server.rrl]\nresponses_per_second = 0\n[validator]\nenabled = false\n{blocks}"),
        &[("zone", zone.to_string())],
    );
    wait_until(
        LOAD_DEADLINE,
        || soa_serial(node.dns, ZONE).is_some(),
        || format!("the node never served the zone\n{}", node.log()),
    );
    node
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index]
}

fn notify_to_serving(names: u64, rounds: u64) {
    let key = TsigKey::new("bench-key", "hmac-sha256");
    let kinds = [Kind::Nsd, Kind::Knot];
    let ports: Vec<u16> = kinds.iter().map(|_| free_port()).collect();
    let notify: Vec<String> = ports
        .iter()
        .map(|port| format!("{{ address = \"127.0.0.1:{port}\", key = \"bench-key\" }}"))
        .collect();
    let blocks = format!(
        "[[key]]\nname = \"bench-key\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n\
         [[zone]]\nname = \"{ZONE}\"\nfile = \"zone\"\n\
         allow_transfer = [{{ from = \"127.0.0.0/8\", key = \"bench-key\" }}]\nnotify = [{}]\n",
        key.algorithm,
        key.secret,
        notify.join(", ")
    );
    let started = Instant::now();
    let node = start_node(&blocks, &zone_text(names, 0));
    println!("node serving {names} names after {:.1?}", started.elapsed());
    let first = soa_serial(node.dns, ZONE).expect("served");
    let secondaries: Vec<_> = kinds
        .iter()
        .zip(&ports)
        .map(|(kind, port)| {
            let secondary = start_secondary_on(*kind, ZONE, node.dns, Some(&key), *port);
            let took = wait_serial(&secondary, ZONE, first, LOAD_DEADLINE);
            println!("{kind:?}: first AXFR served after {took:.1?}");
            (*kind, secondary)
        })
        .collect();
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let mut serial = first;
    for round in 1..=rounds {
        let file = node.path("change.zone");
        std::fs::write(&file, zone_text(names, round)).expect("write the change");
        // The apply runs beside the polling: the node's first answer with the new serial
        // is when it sends NOTIFY.
        let mut apply = Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args([
                "apply",
                ZONE,
                file.to_str().expect("utf-8"),
                "--reason",
                "bench: 1 % change",
            ])
            .args(["--api", &node.api, "--config"])
            .arg(node.path("dnsward.toml"))
            .stdout(Stdio::null())
            .spawn()
            .expect("run dnsward apply");
        let started = Instant::now();
        let mut served_at = None;
        let mut seen: Vec<Option<Instant>> = vec![None; secondaries.len()];
        while served_at.is_none() || seen.iter().any(Option::is_none) {
            assert!(
                started.elapsed() < ROUND_DEADLINE,
                "round {round} did not finish"
            );
            let now = soa_serial(node.dns, ZONE);
            if served_at.is_none() && now.is_some_and(|now| now != serial) {
                served_at = Some(Instant::now());
            }
            for (index, (_, secondary)) in secondaries.iter().enumerate() {
                if seen[index].is_none()
                    && soa_serial(secondary.addr, ZONE).is_some_and(|now| now != serial)
                {
                    seen[index] = Some(Instant::now());
                }
            }
        }
        let served_at = served_at.expect("seen");
        if std::env::var_os("TRANSFER_DEBUG").is_some() {
            eprintln!(
                "round {round}: node at {:?}, secondaries at {:?}",
                served_at - started,
                seen.iter()
                    .map(|at| at.map(|at| at - started))
                    .collect::<Vec<_>>()
            );
        }
        for (index, at) in seen.into_iter().enumerate() {
            latencies[index].push(at.expect("seen").saturating_duration_since(served_at));
        }
        assert!(apply.wait().expect("apply ends").success(), "apply failed");
        serial = soa_serial(node.dns, ZONE).expect("served");
    }
    if std::env::var_os("TRANSFER_DEBUG").is_some() {
        for (kind, secondary) in &secondaries {
            eprintln!("--- {kind:?} log:\n{}", secondary.log_text());
        }
    }
    println!("1 % change of {names} names, {rounds} rounds: node serving → secondary serving");
    for (index, (kind, _)) in secondaries.iter().enumerate() {
        let mut sorted = latencies[index].clone();
        sorted.sort();
        println!(
            "  {kind:?}: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            sorted.last().expect("rounds")
        );
    }
}

/// Seconds, messages and bytes of the last incoming AXFR in a Knot secondary's log.
fn knot_axfr(log: &str) -> Option<(f64, u64, u64)> {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("AXFR, incoming") && line.contains("finished"))?;
    let after = &line[line.find("finished, ")? + 10..];
    let mut fields = after.split(", ");
    let seconds = fields.next()?.strip_suffix(" seconds")?.parse().ok()?;
    let messages = fields.next()?.strip_suffix(" messages")?.parse().ok()?;
    let bytes = fields.next()?.split(' ').next()?.parse().ok()?;
    Some((seconds, messages, bytes))
}

fn axfr_to_knot(names: u64) {
    let text = zone_text(names, 0);
    let started = Instant::now();
    let node = start_node(
        &format!("[[zone]]\nname = \"{ZONE}\"\nfile = \"zone\"\nallow_transfer = [{{ from = \"127.0.0.0/8\" }}]\n"),
        &text,
    );
    println!("node serving {names} names after {:.1?}", started.elapsed());
    // Transfer from a quiet node: its first whole encoding of the answers (a one-off at
    // start, on the other core's worth of CPU) done, as a primary is most of its life.
    wait_until(
        LOAD_DEADLINE,
        || node.log().contains("answers pre-encoded"),
        || "the node never finished encoding its answers".into(),
    );
    println!(
        "node quiet (answers encoded) after {:.1?}",
        started.elapsed()
    );
    let serial = soa_serial(node.dns, ZONE).expect("served");
    let from_node = start_secondary_on(Kind::Knot, ZONE, node.dns, None, free_port());
    wait_serial(&from_node, ZONE, serial, LOAD_DEADLINE);
    let node_axfr = knot_axfr(&from_node.log_text()).expect("Knot logged the AXFR");
    drop(from_node);
    drop(node);

    let files = tempfile::tempdir().expect("temporary directory");
    let file = files.path().join("zone");
    std::fs::write(&file, &text).expect("write the zone");
    let primary_port = free_port();
    let primary = start_primary_on(Kind::Knot, ZONE, &file, &[], None, primary_port);
    let from_knot = start_secondary_on(Kind::Knot, ZONE, primary.addr, None, free_port());
    wait_serial(&from_knot, ZONE, 1, LOAD_DEADLINE);
    let knot_axfr = knot_axfr(&from_knot.log_text()).expect("Knot logged the AXFR");
    println!(
        "AXFR of {} records to Knot 3.2 (as the receiving Knot logs it):",
        names + 3
    );
    for (who, (seconds, messages, bytes)) in
        [("dnsward → Knot", node_axfr), ("Knot → Knot", knot_axfr)]
    {
        println!(
            "  {who}: {seconds:.2} s, {messages} messages, {:.1} MB, {:.1} MB/s",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / seconds.max(1e-3)
        );
    }
    println!(
        "  time Knot/dnsward: {:.2}",
        knot_axfr.0 / node_axfr.0.max(1e-3)
    );
}

fn main() {
    let names = env_number("TRANSFER_NAMES", 200_000);
    let rounds = env_number("TRANSFER_ROUNDS", 20);
    let axfr_names = env_number("TRANSFER_AXFR_NAMES", 1_000_000);
    if rounds > 0 {
        notify_to_serving(names, rounds);
    }
    if axfr_names > 0 {
        axfr_to_knot(axfr_names);
    }
}
