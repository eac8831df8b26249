//! Several `dnsward run` nodes on one etcd cluster (real etcd members on loopback, started by
//! the test): every node runs the whole pipeline against the shared store, and keeps serving
//! when the store is gone.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::node::Node;
use common::{free_port, query, udp_exchange, wait_until};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use store::etcd_cluster::EtcdCluster;

const ZONE: &str = "shared.test.";
const APP: &str = "app.shared.test.";
const DEADLINE: Duration = Duration::from_secs(30);
/// How long etcd stays down while every node is sampled (the figure).
const OUTAGE: Duration = Duration::from_secs(60);

fn zone_text() -> String {
    "$ORIGIN shared.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n\
     @ IN NS ns\nns IN A 127.0.0.1\nstatic IN A 192.0.2.1\n"
        .to_string()
}

/// TCP backends on 127.0.9.N, checked with a TCP connect. A backend that is up listens and
/// accepts (and closes) every connection, so a long run of probes never fills its backlog;
/// one that is down does not listen at all.
struct Backends {
    addresses: Vec<SocketAddr>,
    up: Vec<Arc<AtomicBool>>,
    alive: Arc<AtomicBool>,
}

/// Listens on `address` while `up` holds, until `alive` turns false.
fn serve_backend(address: SocketAddr, up: Arc<AtomicBool>, alive: Arc<AtomicBool>) {
    let mut listener: Option<TcpListener> = Some(bind_backend(address));
    std::thread::spawn(move || {
        while alive.load(Ordering::SeqCst) {
            if !up.load(Ordering::SeqCst) {
                listener = None;
            } else if listener.is_none() {
                listener = Some(bind_backend(address));
            }
            match listener.as_ref().map(TcpListener::accept) {
                Some(Ok((stream, _))) => drop(stream),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

fn bind_backend(address: SocketAddr) -> TcpListener {
    let listener = TcpListener::bind(address).expect("bind a backend");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
    }
}

impl Backends {
    fn start(count: u8) -> Backends {
        let addresses: Vec<SocketAddr> = (1..=count)
            .map(|last| SocketAddr::from(([127, 0, 9, last], free_port())))
            .collect();
        let alive = Arc::new(AtomicBool::new(true));
        let up = addresses
            .iter()
            .map(|address| {
                let up = Arc::new(AtomicBool::new(true));
                serve_backend(*address, Arc::clone(&up), Arc::clone(&alive));
                up
            })
            .collect();
        Backends {
            addresses,
            up,
            alive,
        }
    }

    fn stop(&mut self, index: usize) {
        self.set(index, false);
    }

    fn set(&mut self, index: usize, up: bool) {
        self.up[index].store(up, Ordering::SeqCst);
    }

    /// The addresses of the backends that are up.
    fn up_ips(&self) -> BTreeSet<String> {
        let up: Vec<usize> = (0..self.up.len())
            .filter(|index| self.up[*index].load(Ordering::SeqCst))
            .collect();
        self.ips(&up)
    }

    fn ips(&self, indexes: &[usize]) -> BTreeSet<String> {
        indexes
            .iter()
            .map(|index| self.addresses[*index].ip().to_string())
            .collect()
    }

    fn config(&self) -> String {
        let lines: Vec<String> = self
            .addresses
            .iter()
            .map(|address| {
                format!(
                    "  {{ address = \"{}\", check = \"tcp:{address}\" }},",
                    address.ip()
                )
            })
            .collect();
        format!(
            "[health]\ninterval_ms = 100\ntimeout_ms = 200\nrise = 2\nfall = 2\n\
             [guard]\nvelocity_window_ms = 1000\nmax_removals_per_window = 1000\n\
             [[zone]]\nname = \"{ZONE}\"\nfile = \"shared.test.zone\"\n\
             [[endpoint]]\nname = \"{APP}\"\nttl = 5\nmin_answers = 1\nall_down = \"serve-all\"\n\
             backends = [\n{}\n]\n",
            lines.join("\n")
        )
    }
}

/// A node named `name` on the cluster's store under `prefix`.
fn start_node(cluster: &EtcdCluster, prefix: &str, name: &str, backends: &Backends) -> Node {
    start_node_with(cluster, prefix, name, &backends.config())
}

/// [`start_node`] with `blocks` after `[store]` and `[node]`.
fn start_node_with(cluster: &EtcdCluster, prefix: &str, name: &str, blocks: &str) -> Node {
    let endpoints: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|endpoint| format!("\"{endpoint}\""))
        .collect();
    let store = format!(
        "[store]\netcd = {{ endpoints = [{}], prefix = \"{prefix}\", timeout_ms = 1000 }}\n\
         keep_last = 2\n\
         [node]\nname = \"{name}\"\n",
        endpoints.join(", ")
    );
    Node::start_with_store(
        &store,
        blocks,
        &[("shared.test.zone", zone_text())],
        free_port(),
    )
}

/// The A records `node` answers for the endpoint; `None` unless it answers NOERROR.
fn answer(node: SocketAddr) -> Option<BTreeSet<String>> {
    let reply = udp_exchange(
        node,
        &query(APP, RecordType::A, Some(1232)),
        Duration::from_secs(1),
    )
    .ok()?;
    (reply.metadata.response_code == ResponseCode::NoError).then(|| {
        reply
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect()
    })
}

fn serial(node: SocketAddr) -> Option<u32> {
    let reply = udp_exchange(
        node,
        &query(ZONE, RecordType::SOA, Some(1232)),
        Duration::from_secs(1),
    )
    .ok()?;
    reply.answers.iter().find_map(|record| match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

fn wait_all_answer(nodes: &[Node], expected: &BTreeSet<String>, what: &str) -> Duration {
    wait_until(
        DEADLINE,
        || {
            nodes
                .iter()
                .all(|node| answer(node.dns).as_ref() == Some(expected))
        },
        || {
            let seen: Vec<_> = nodes.iter().map(|node| answer(node.dns)).collect();
            format!(
                "{what}: not every node answers {expected:?} within {DEADLINE:?}: {seen:?}\n{}",
                nodes[0].log()
            )
        },
    )
}

#[test]
fn three_nodes_on_one_etcd_cluster_follow_a_backend_failure_and_serve_the_same_serial() {
    let cluster = EtcdCluster::start(3);
    let mut backends = Backends::start(2);
    let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| start_node(&cluster, "/three/", name, &backends))
        .collect();
    wait_all_answer(&nodes, &backends.ips(&[0, 1]), "both backends up");

    backends.stop(0);
    let took = wait_all_answer(&nodes, &backends.ips(&[1]), "backend 0 stopped");
    println!("backend stopped → every node answers without it after {took:?}");

    wait_until(
        DEADLINE,
        || {
            let serials: BTreeSet<Option<u32>> =
                nodes.iter().map(|node| serial(node.dns)).collect();
            serials.len() == 1 && !serials.contains(&None)
        },
        || "the nodes do not converge on one serial".to_string(),
    );
    // One store, one history: any node's runbook shows the same versions, and the audit log
    // names the node whose enactor wrote each one.
    let status: Vec<serde_json::Value> = nodes.iter().map(Node::status).collect();
    assert!(
        status
            .windows(2)
            .all(|pair| pair[0]["active"] == pair[1]["active"]),
        "{status:?}"
    );
    let actors: BTreeSet<String> = nodes[1]
        .audit(ZONE)
        .iter()
        .filter_map(|entry| entry["actor"].as_str().map(str::to_string))
        .collect();
    assert!(
        actors
            .iter()
            .any(|actor| actor.starts_with("node-") && actor.contains("/enactor-")),
        "the audit log names the writing node: {actors:?}"
    );
}

/// When (since the outage began) a query was not answered right, and what it got.
type BadAnswer = (Duration, Option<BTreeSet<String>>);

#[test]
fn a_node_cut_off_from_the_backends_cannot_remove_them_alone() {
    let cluster = EtcdCluster::start(1);
    let mut backends = Backends::start(2);
    // node-a probes backend 0 on a port where nothing listens: to it, backend 0 is down.
    let address = backends.addresses[0];
    let cut_off = backends.config().replace(
        &format!("tcp:{address}"),
        &format!("tcp:{}:{}", address.ip(), free_port()),
    );
    let nodes: Vec<Node> = vec![
        start_node_with(&cluster, "/quorum/", "node-a", &cut_off),
        start_node(&cluster, "/quorum/", "node-b", &backends),
        start_node(&cluster, "/quorum/", "node-c", &backends),
    ];
    let both = backends.ips(&[0, 1]);
    wait_all_answer(&nodes, &both, "both backends up for two of three checkers");
    // Every node shows every checker's verdict, node-a's included.
    wait_until(
        DEADLINE,
        || {
            let status: serde_json::Value =
                serde_json::from_str(&nodes[1].cli(&["status", "--json"])).unwrap_or_default();
            let checkers = status["node"]["checkers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            checkers.len() == 3
                && checkers.iter().any(|checker| {
                    checker["node"] == "node-a"
                        && checker["verdicts"][address.ip().to_string()] == false
                })
        },
        || {
            format!(
                "node-b's status never showed node-a's verdicts\n{}",
                nodes[1].cli(&["status"])
            )
        },
    );
    // Still answered by every node, well past node-a's fall: the quorum keeps them.
    std::thread::sleep(Duration::from_secs(2));
    for node in &nodes {
        assert_eq!(answer(node.dns).as_ref(), Some(&both));
    }
    let moves: Vec<String> = nodes[2]
        .audit(ZONE)
        .iter()
        .filter(|entry| entry["action"] == "ref-move")
        .map(|entry| format!("{} {}", entry["actor"], entry["reason"]))
        .collect();
    assert_eq!(moves.len(), 1, "no version removed a backend: {moves:#?}");

    // Backend 0 really down: two of three say so, and it goes on every node.
    backends.stop(0);
    wait_all_answer(
        &nodes,
        &backends.ips(&[1]),
        "backend 0 down for the majority",
    );
}

/// Queries a node continuously and counts what was not a good answer.
struct Sampler {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    bad: Arc<Mutex<Vec<BadAnswer>>>,
    asked: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    fn start(node: SocketAddr, good: BTreeSet<String>, since: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(Mutex::new(0));
        let thread = {
            let (stop, paused, bad, asked) = (
                Arc::clone(&stop),
                Arc::clone(&paused),
                Arc::clone(&bad),
                Arc::clone(&asked),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if !paused.load(Ordering::SeqCst) {
                        let seen = answer(node);
                        *asked.lock().unwrap() += 1;
                        if seen.as_ref() != Some(&good) {
                            bad.lock().unwrap().push((since.elapsed(), seen));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Sampler {
            stop,
            paused,
            bad,
            asked,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the number of queries asked and the bad answers.
    fn finish(mut self) -> (u64, Vec<BadAnswer>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("sampler");
        }
        let asked = *self.asked.lock().unwrap();
        let bad = self.bad.lock().unwrap().clone();
        (asked, bad)
    }
}

#[test]
fn with_etcd_down_every_node_keeps_answering_and_a_restarted_node_serves_its_local_copy() {
    let mut cluster = EtcdCluster::start(1);
    let mut backends = Backends::start(2);
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| start_node(&cluster, "/outage/", name, &backends))
        .collect();
    let good = backends.ips(&[0, 1]);
    wait_all_answer(&nodes, &good, "both backends up");
    for (node, name) in nodes.iter().zip(["node-a", "node-b", "node-c"]) {
        let copy = node.path(&format!("{name}.served/shared.test.copy"));
        wait_until(
            DEADLINE,
            || copy.exists(),
            || format!("{} was never written\n{}", copy.display(), node.log()),
        );
    }

    let started = Instant::now();
    cluster.kill(0);
    let samplers: Vec<Sampler> = nodes
        .iter()
        .map(|node| Sampler::start(node.dns, good.clone(), started))
        .collect();

    // A node restarted during the outage answers from its local copy as soon as it is up.
    std::thread::sleep(OUTAGE / 6);
    samplers[1].paused.store(true, Ordering::SeqCst);
    let restarted = Instant::now();
    nodes[1].restart();
    let up = restarted.elapsed();
    let first = answer(nodes[1].dns);
    samplers[1].paused.store(false, Ordering::SeqCst);
    println!("node-b restarted during the outage: up after {up:?}, first answer {first:?}");
    assert_eq!(
        first.as_ref(),
        Some(&good),
        "the restarted node answers from its local copy once it is up\n{}",
        nodes[1].log()
    );
    let status: serde_json::Value =
        serde_json::from_str(&nodes[1].cli(&["status", "--json"])).expect("status is JSON");
    assert_eq!(status["node"]["serving_local_copy"], true, "{status}");
    assert!(status["node"]["store_error"].is_string(), "{status}");
    assert_eq!(status["zones"][0]["zone"], ZONE, "{status}");
    assert!(nodes[1].log().contains("serving the local copy"));

    std::thread::sleep(OUTAGE.saturating_sub(started.elapsed()));
    let results: Vec<(u64, Vec<_>)> = samplers.into_iter().map(Sampler::finish).collect();
    for ((asked, bad), name) in results.iter().zip(["node-a", "node-b", "node-c"]) {
        println!("{name}: {asked} queries during {OUTAGE:?} of etcd down, {} not answered with both backends", bad.len());
        assert!(*asked > 100, "{name} was sampled ({asked} queries)");
        assert!(
            bad.is_empty(),
            "{name} answered badly: {:?}",
            &bad[..bad.len().min(5)]
        );
    }

    // The store back: the restarted node follows it again, and the pipeline moves again on
    // every node.
    cluster.restart(0);
    wait_until(
        DEADLINE,
        || {
            let status: serde_json::Value =
                serde_json::from_str(&nodes[1].cli(&["status", "--json"])).unwrap_or_default();
            status["node"]["serving_local_copy"] == false && status["node"]["store_error"].is_null()
        },
        || format!("node-b never followed the store again\n{}", nodes[1].log()),
    );
    backends.stop(0);
    wait_all_answer(
        &nodes,
        &backends.ips(&[1]),
        "backend 0 stopped after the outage",
    );
}

/// Samples every node's answer and SOA serial until stopped: an answer that is not NOERROR
/// with at least one address of `all`, or a serial lower than one the node served before, is
/// a violation. A node's sampling pauses while `paused[node]` (stopped or restarting).
struct Watcher {
    stop: Arc<AtomicBool>,
    paused: Vec<Arc<AtomicBool>>,
    violations: Arc<Mutex<Vec<String>>>,
    asked: Arc<Mutex<u64>>,
    threads: Vec<JoinHandle<()>>,
}

impl Watcher {
    fn start(nodes: &[Node], all: BTreeSet<String>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(Mutex::new(0));
        let mut paused = Vec::new();
        let mut threads = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            let pause = Arc::new(AtomicBool::new(false));
            paused.push(Arc::clone(&pause));
            let (stop, violations, asked, all, dns) = (
                Arc::clone(&stop),
                Arc::clone(&violations),
                Arc::clone(&asked),
                all.clone(),
                node.dns,
            );
            threads.push(std::thread::spawn(move || {
                let mut highest = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                    if pause.load(Ordering::SeqCst) {
                        continue;
                    }
                    let seen = answer(dns);
                    let current = serial(dns);
                    if pause.load(Ordering::SeqCst) {
                        continue;
                    }
                    *asked.lock().unwrap() += 1;
                    let good = seen
                        .as_ref()
                        .is_some_and(|seen| !seen.is_empty() && seen.is_subset(&all));
                    if !good {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("node {index} answered {seen:?}"));
                    }
                    match current {
                        Some(serial) if serial < highest => violations.lock().unwrap().push(
                            format!("node {index} served serial {serial} after {highest}"),
                        ),
                        Some(serial) => highest = serial,
                        None => violations
                            .lock()
                            .unwrap()
                            .push(format!("node {index} did not answer its SOA")),
                    }
                }
            }));
        }
        Watcher {
            stop,
            paused,
            violations,
            asked,
            threads,
        }
    }

    fn pause(&self, node: usize, paused: bool) {
        self.paused[node].store(paused, Ordering::SeqCst);
    }

    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("watcher");
        }
        let asked = *self.asked.lock().unwrap();
        let violations = self.violations.lock().unwrap().clone();
        (asked, violations)
    }
}

/// The index of the member that leads the cluster now, as `etcdctl endpoint status` says.
fn leader(cluster: &EtcdCluster) -> Option<usize> {
    let output = std::process::Command::new("etcdctl")
        .args(["--endpoints", &cluster.endpoints().join(",")])
        .args(["endpoint", "status", "--write-out=json"])
        .output()
        .ok()?;
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let endpoints = cluster.endpoints();
    status.as_array()?.iter().find_map(|member| {
        let leads = member["Status"]["leader"] == member["Status"]["header"]["member_id"];
        let endpoint = member["Endpoint"].as_str()?;
        leads
            .then(|| endpoints.iter().position(|e| e == endpoint))
            .flatten()
    })
}

fn signal(node: &Node, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(node.child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} of a node");
}

/// Changes which backends are up (never all down) `count` times, each time waiting until
/// the nodes in `answering` answer the backends that are up: `count` new versions.
fn flap(backends: &mut Backends, nodes: &[Node], answering: &[usize], count: usize, step: usize) {
    let mut turn = step;
    for change in 0..count {
        let expected = loop {
            let index = turn % backends.addresses.len();
            turn += 1;
            let up = !backends.up[index].load(Ordering::SeqCst);
            backends.set(index, up);
            if backends.up_ips().is_empty() {
                backends.set(index, true);
                continue;
            }
            break backends.up_ips();
        };
        let answering: Vec<&Node> = answering.iter().map(|index| &nodes[*index]).collect();
        wait_until(
            DEADLINE,
            || {
                answering
                    .iter()
                    .all(|node| answer(node.dns).as_ref() == Some(&expected))
            },
            || {
                format!(
                    "change {change}: the nodes do not answer {expected:?}\n{}",
                    answering[0].log()
                )
            },
        );
    }
}

/// How many fault rounds the October test runs: 1 in the suite; `bench/etcd-faults` asks
/// for more through `DNSWARD_FAULT_ROUNDS`.
fn fault_rounds() -> usize {
    std::env::var("DNSWARD_FAULT_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(1)
}

#[test]
fn the_october_race_across_hosts_a_stopped_node_resumes_and_nothing_newer_is_lost() {
    let mut cluster = EtcdCluster::start(3);
    let mut backends = Backends::start(3);
    let all = backends.ips(&[0, 1, 2]);
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|name| start_node(&cluster, "/october/", name, &backends))
        .collect();
    wait_all_answer(&nodes, &all, "every backend up");
    let watcher = Watcher::start(&nodes, all.clone());
    let mut faults = 0;
    let rounds = fault_rounds();
    for round in 0..rounds {
        // node-a is stopped right after a health change it sees: it holds (or is about to
        // make) a plan for it. The others apply ten newer versions and clean up around it.
        backends.set(round % 3, false);
        std::thread::sleep(Duration::from_millis(150 + 37 * (round as u64 % 5)));
        watcher.pause(0, true);
        signal(&nodes[0], "STOP");
        faults += 1;
        let expected = backends.up_ips();
        wait_until(
            DEADLINE,
            || {
                nodes[1..]
                    .iter()
                    .all(|node| answer(node.dns).as_ref() == Some(&expected))
            },
            || "the change before node-a stopped is not served".to_string(),
        );
        let before = nodes[1].status()["active"].as_u64().unwrap_or(0);
        flap(&mut backends, &nodes, &[1, 2], 10, round);
        let after = nodes[1].status()["active"].as_u64().unwrap_or(0);
        assert!(
            after >= before + 10,
            "ten newer versions: {before} → {after}"
        );
        signal(&nodes[0], "CONT");
        watcher.pause(0, false);
        wait_all_answer(&nodes, &backends.up_ips(), "node-a resumed");

        // kill -9 of a node and of etcd's leader, with changes in between.
        let victim = 1 + round % 2;
        watcher.pause(victim, true);
        nodes[victim].restart();
        watcher.pause(victim, false);
        faults += 1;
        let member = leader(&cluster).unwrap_or(round % 3);
        cluster.kill(member);
        faults += 1;
        flap(&mut backends, &nodes, &[0, 1, 2], 3, round + 1);
        cluster.restart(member);
        flap(&mut backends, &nodes, &[0, 1, 2], 2, round + 2);
    }

    // Converged: every node serves the same generation, the one that answers the backends
    // that are up.
    wait_all_answer(&nodes, &backends.up_ips(), "after the faults");
    wait_until(
        DEADLINE,
        || {
            let active: BTreeSet<String> = nodes
                .iter()
                .map(|node| node.status()["active"].to_string())
                .collect();
            active.len() == 1
        },
        || "the nodes do not converge on one generation".to_string(),
    );
    let (asked, violations) = watcher.finish();
    println!(
        "october across hosts: {rounds} runs, {faults} faults, {asked} queries sampled, {} violations",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{:?}",
        &violations[..violations.len().min(10)]
    );
    let audit = nodes[2].audit(ZONE);
    assert!(
        audit.iter().any(|entry| entry["action"] == "clean-up"),
        "clean-up ran while node-a was stopped"
    );
    // No stale write: every move of the active ref starts where the one before ended (a plan
    // computed from an older version would move it from that version, over a newer one).
    let moves: Vec<(Option<u64>, Option<u64>, String)> = audit
        .iter()
        .filter(|entry| entry["action"] == "ref-move")
        .map(|entry| {
            (
                entry["from"].as_u64(),
                entry["to"].as_u64(),
                entry["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for pair in moves.windows(2) {
        assert_eq!(
            pair[1].0, pair[0].1,
            "{} moved active from {:?} while it was at {:?} (by {})",
            pair[1].2, pair[1].0, pair[0].1, pair[0].2
        );
    }
}
