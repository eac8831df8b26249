//! `dnsward run` end to end: real HTTP and TCP backends on loopback addresses, real health
//! probes, the real control plane and server, and real `dig` as the client.
//!
//! While backends stop and start, a sampler asks `dig` for the endpoint continuously; no
//! sample may ever be empty.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{dig, free_port};

const INTERVAL_MS: u64 = 300;
const FALL: u64 = 2;
/// The goal for taking a stopped backend out of the answer: printed here, measured at scale
/// by `bench/control-plane` (a test does not assert a wall-clock duration).
const REMOVAL_GOAL: Duration = Duration::from_millis(INTERVAL_MS * FALL + 1000);
const CONVERGE_DEADLINE: Duration = Duration::from_secs(15);

/// A backend that can stop and start on a fixed address.
enum Backend {
    /// `dnsward backend`: HTTP, checked with GET /health.
    Http {
        listen: SocketAddr,
        child: Option<Child>,
    },
    /// A bare listening socket, checked with a TCP connect.
    Tcp {
        listen: SocketAddr,
        socket: Option<TcpListener>,
    },
}

impl Backend {
    /// A TCP backend on 127.0.`third`.`last` at a free port (not listening until started).
    fn tcp(last: u8, third: u8) -> Backend {
        Backend::Tcp {
            listen: loopback(last, third),
            socket: None,
        }
    }

    fn start(&mut self) {
        match self {
            Backend::Http { listen, child } => {
                let process = Command::new(env!("CARGO_BIN_EXE_dnsward"))
                    .args(["backend", "--listen", &listen.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start dnsward backend");
                *child = Some(process);
            }
            Backend::Tcp { listen, socket } => {
                *socket = Some(TcpListener::bind(*listen).expect("bind TCP backend"));
            }
        }
    }

    fn stop(&mut self) {
        match self {
            Backend::Http { child, .. } => {
                if let Some(mut process) = child.take() {
                    let _ = process.kill();
                    let _ = process.wait();
                }
            }
            Backend::Tcp { socket, .. } => drop(socket.take()),
        }
    }

    fn address(&self) -> String {
        match self {
            Backend::Http { listen, .. } | Backend::Tcp { listen, .. } => listen.ip().to_string(),
        }
    }

    fn check(&self) -> String {
        match self {
            Backend::Http { listen, .. } => format!("http://{listen}/health"),
            Backend::Tcp { listen, .. } => format!("tcp:{listen}"),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One answer of the sampler: when, and the addresses (`None` when dig failed).
type Sample = (Instant, Option<BTreeSet<String>>);

/// Asks continuously and keeps every answer.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    fn start(server: SocketAddr, name: &'static str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let answer = dig(server, name);
                    samples
                        .lock()
                        .expect("sampler lock")
                        .push((Instant::now(), answer));
                }
            })
        };
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("sampler thread");
        }
        std::mem::take(&mut *self.samples.lock().expect("sampler lock"))
    }
}

fn wait_for_answer(server: SocketAddr, want: &BTreeSet<String>, deadline: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if dig(server, "app.example.test.").as_ref() == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "the answer did not become {want:?} within {deadline:?}; last {:?}",
            dig(server, "app.example.test.")
        );
    }
}

fn set(addresses: &[&Backend]) -> BTreeSet<String> {
    addresses.iter().map(|backend| backend.address()).collect()
}

struct Node {
    child: Child,
    dns: SocketAddr,
    api: String,
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(backends: &[&Backend]) -> Node {
    let lines: Vec<String> = backends
        .iter()
        .map(|b| {
            format!(
                "  {{ address = \"{}\", check = \"{}\" }},",
                b.address(),
                b.check()
            )
        })
        .collect();
    start_node_with(&lines, None)
}

/// Starts a node whose endpoint has these `backends = [...]` lines.
fn start_node_with(backend_lines: &[String], api_token: Option<&str>) -> Node {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let api_port = free_port();
    let zone = common::example_zone().canonicalize().expect("example zone");
    let token = api_token
        .map(|token| format!("token = \"{token}\"\n"))
        .unwrap_or_default();
    let config = format!(
        "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n{token}[store]\npath = \"node.db\"\n\
         [health]\ninterval_ms = {INTERVAL_MS}\ntimeout_ms = 200\nrise = 2\nfall = {FALL}\n\
         [[zone]]\nname = \"example.test\"\nfile = \"{}\"\n\
         [[endpoint]]\nname = \"app.example.test\"\nttl = 5\nmin_answers = 1\nall_down = \"serve-all\"\nbackends = [\n{}\n]\n",
        zone.display(),
        backend_lines.join("\n")
    );
    let config_path = dir.path().join("dnsward.toml");
    std::fs::write(&config_path, config).expect("write config");
    let log = std::fs::File::create(dir.path().join("node.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["run", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dnsward run");
    Node {
        child,
        dns,
        api: format!("http://127.0.0.1:{api_port}"),
        config: config_path,
        _dir: dir,
    }
}

fn node_log(node: &Node) -> String {
    std::fs::read_to_string(node._dir.path().join("node.log")).unwrap_or_default()
}

fn cli(node: &Node, args: &[&str]) -> String {
    common::cli_at(&node.api, &node.config, args)
}

fn breaker(node: &Node) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&cli(node, &["status", "--json"])).expect("status is JSON");
    status["zones"][0]["breaker"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn loopback(last: u8, third: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, third, last], free_port_on([127, 0, third, last])))
}

fn free_port_on(ip: [u8; 4]) -> u16 {
    TcpListener::bind((std::net::Ipv4Addr::from(ip), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("loopback address is usable")
}

#[test]
fn the_endpoint_follows_backend_health_and_is_never_empty() {
    let mut one = Backend::Http {
        listen: loopback(11, 7),
        child: None,
    };
    let mut two = Backend::Http {
        listen: loopback(12, 7),
        child: None,
    };
    let mut three = Backend::tcp(13, 7);
    for backend in [&mut one, &mut two, &mut three] {
        backend.start();
    }
    let node = start_node(&[&one, &two, &three]);
    wait_for_answer(node.dns, &set(&[&one, &two, &three]), CONVERGE_DEADLINE);
    let sampler = Sampler::start(node.dns, "app.example.test.");

    one.stop();
    let took = wait_for_answer(node.dns, &set(&[&two, &three]), CONVERGE_DEADLINE);
    println!("removal: a stopped backend left the answer after {took:?} (goal {REMOVAL_GOAL:?})");

    two.stop();
    three.stop();
    // Every backend down: serve-all answers all of them rather than nothing.
    wait_for_answer(node.dns, &set(&[&one, &two, &three]), CONVERGE_DEADLINE);

    two.start();
    wait_for_answer(node.dns, &set(&[&two]), CONVERGE_DEADLINE);

    let samples = sampler.finish();
    assert!(
        samples.len() > 10,
        "the sampler took only {} samples",
        samples.len()
    );
    let empty: Vec<_> = samples
        .iter()
        .filter(|(_, answer)| answer.as_ref().is_none_or(BTreeSet::is_empty))
        .collect();
    assert!(
        empty.is_empty(),
        "{} of {} samples were empty or failed",
        empty.len(),
        samples.len()
    );
    assert_eq!(
        breaker(&node),
        "closed",
        "normal health changes tripped the breaker:\n{}",
        node_log(&node)
    );

    let history = cli(&node, &["history", "example.test"]);
    assert!(
        history.contains("planner") && history.contains("accepted") && history.contains("active"),
        "{history}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli(&node, &["history", "example.test", "--json"]))
            .expect("history is JSON");
    let entries = json["entries"].as_array().expect("entries");
    assert!(entries.len() >= 4, "{json}");
    let generations: Vec<u64> = entries
        .iter()
        .filter_map(|e| e["generation"].as_u64())
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] > w[1]),
        "history is newest first: {generations:?}"
    );
}

#[test]
fn an_operator_change_below_the_floor_is_refused_and_the_answer_stays() {
    let mut one = Backend::tcp(21, 7);
    let mut two = Backend::tcp(22, 7);
    one.start();
    two.start();
    let node = start_node(&[&one, &two]);
    let both = set(&[&one, &two]);
    wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);

    // The example zone without the endpoint's records: the operator would empty it.
    let zone_text = std::fs::read_to_string(common::example_zone()).expect("example zone");
    let body = serde_json::json!({
        "zone_file": zone_text,
        "actor": "test-operator",
        "reason": "replace the zone from the file",
    });
    let mut response = ureq::post(&format!("{}/v1/zones/example.test/content", node.api))
        .header("Authorization", &common::bearer(&node.config))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&body)
        .expect("API reachable");
    assert_eq!(response.status().as_u16(), 409);
    let text = response.body_mut().read_to_string().expect("body");
    assert!(
        text.contains("app.example.test"),
        "the refusal names the name: {text}"
    );

    assert_eq!(breaker(&node), "tripped");
    assert_eq!(
        dig(node.dns, "app.example.test."),
        Some(both.clone()),
        "the previous answer stays on the wire"
    );
    let history: serde_json::Value =
        serde_json::from_str(&cli(&node, &["history", "example.test", "--json"]))
            .expect("history JSON");
    let refused = history["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| {
            e["verdict"]
                .as_str()
                .is_some_and(|v| v.starts_with("refused"))
        })
        .unwrap_or_else(|| panic!("no refusal in history: {history}"));
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("app.example.test"),
        "{refused}"
    );

    // While frozen, automation does not move the zone even when health changes.
    one.stop();
    let frozen_deadline = Instant::now() + Duration::from_millis(INTERVAL_MS * (FALL + 3));
    while Instant::now() < frozen_deadline {
        assert_eq!(
            dig(node.dns, "app.example.test."),
            Some(both.clone()),
            "a frozen zone moved"
        );
    }
}

/// POSTs `body` to `url` with the node's token.
fn post_json(node: &Node, url: &str, body: &serde_json::Value) -> (u16, String) {
    post_as(url, Some(&common::bearer(&node.config)), body)
}

/// POSTs `body` to `url` with this `Authorization` header (or none).
fn post_as(url: &str, authorization: Option<&str>, body: &serde_json::Value) -> (u16, String) {
    let mut request = ureq::post(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let mut response = request
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(body)
        .expect("API reachable");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().expect("body"))
}

fn wait_for_breaker(node: &Node, state: &str) {
    let deadline = Instant::now() + CONVERGE_DEADLINE;
    while breaker(node) != state {
        assert!(
            Instant::now() < deadline,
            "the breaker never became {state}:\n{}",
            node_log(node)
        );
    }
}

#[test]
fn pushed_health_reports_move_the_endpoint_and_unknown_backends_are_rejected() {
    // Backends without a check follow pushed reports only (e.g. a load-balancer feed).
    let lines = vec![
        "  { address = \"127.0.7.31\" },".to_string(),
        "  { address = \"127.0.7.32\" },".to_string(),
    ];
    let node = start_node_with(&lines, None);
    let both: BTreeSet<String> = ["127.0.7.31".to_string(), "127.0.7.32".to_string()].into();
    wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);

    let url = format!("{}/v1/health", node.api);
    let (status, _) = post_json(
        &node,
        &url,
        &serde_json::json!({"reports": [{"address": "127.0.7.31", "healthy": false}]}),
    );
    assert_eq!(status, 200);
    wait_for_answer(
        node.dns,
        &["127.0.7.32".to_string()].into(),
        CONVERGE_DEADLINE,
    );

    let (status, body) = post_json(
        &node,
        &url,
        &serde_json::json!({"reports": [{"address": "192.0.2.99", "healthy": false}]}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("192.0.2.99"),
        "the error names the unknown backend: {body}"
    );
    assert_eq!(breaker(&node), "closed");
}

#[test]
fn a_config_reload_that_drops_an_endpoint_is_refused_and_the_answer_stays() {
    let mut one = Backend::tcp(41, 7);
    let mut two = Backend::tcp(42, 7);
    one.start();
    two.start();
    let node = start_node(&[&one, &two]);
    let both = set(&[&one, &two]);
    wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);

    // The operator deletes the [[endpoint]] table and reloads: automation would empty the
    // name, so the guard refuses and the zone freezes.
    let text = std::fs::read_to_string(&node.config).expect("config");
    let without_endpoint = text
        .split("[[endpoint]]")
        .next()
        .expect("config has a head")
        .to_string();
    std::fs::write(&node.config, without_endpoint).expect("rewrite config");
    let status = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_for_breaker(&node, "tripped");
    assert_eq!(
        dig(node.dns, "app.example.test."),
        Some(both),
        "the previous answer stays on the wire"
    );
    let history = cli(&node, &["history", "example.test"]);
    assert!(history.contains("REFUSED"), "{history}");
    assert!(
        node_log(&node).contains("configuration reloaded"),
        "{}",
        node_log(&node)
    );
}

/// Audit entries of the node's zone with `action`, oldest first.
fn audit_entries(node: &Node, action: &str) -> Vec<serde_json::Value> {
    let body = ureq::get(&format!(
        "{}/v1/audit?zone=example.test&limit=1000",
        node.api
    ))
    .call()
    .expect("audit reachable")
    .body_mut()
    .read_to_string()
    .expect("audit body");
    let audit: serde_json::Value = serde_json::from_str(&body).expect("audit is JSON");
    audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["action"] == action)
        .cloned()
        .collect()
}

#[test]
fn a_config_reload_that_adds_a_backend_reaches_the_validator_too() {
    let mut one = Backend::tcp(43, 7);
    let mut two = Backend::tcp(44, 7);
    one.start();
    two.start();
    let node = start_node(&[&one]);
    wait_for_answer(node.dns, &set(&[&one]), CONVERGE_DEADLINE);
    let first = active_generation(&node);
    wait_for_validated(&node, first);

    // The operator adds a backend and reloads: the planner answers it, and the validator,
    // which checks that every answered address is a configured backend, must know it too.
    let text = std::fs::read_to_string(&node.config).expect("config");
    let line = format!(
        "  {{ address = \"{}\", check = \"{}\" }},",
        two.address(),
        two.check()
    );
    let added = text.replace("backends = [\n", &format!("backends = [\n{line}\n"));
    assert_ne!(added, text, "the backend line was added");
    std::fs::write(&node.config, added).expect("rewrite config");
    let status = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    let both = set(&[&one, &two]);
    wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);
    let with_both = active_generation(&node);

    // The validator passes the new generation as good instead of rolling it back.
    wait_for_validated(&node, with_both);
    assert_eq!(breaker(&node), "closed");
    assert_eq!(dig(node.dns, "app.example.test."), Some(both));
}

/// Waits until the validator has recorded `generation` (or a later one) as last known good;
/// fails at once if it rolled anything back instead.
fn wait_for_validated(node: &Node, generation: u64) {
    common::wait_until(
        CONVERGE_DEADLINE,
        || {
            let validated = audit_entries(node, "validated-good")
                .iter()
                .any(|entry| entry["to"].as_u64() >= Some(generation));
            assert!(
                validated || audit_entries(node, "rollback").is_empty(),
                "the validator rolled back: {:?}\n{}",
                audit_entries(node, "validator-finding"),
                node_log(node)
            );
            validated
        },
        || {
            format!(
                "generation {generation} never validated: {}",
                node_log(node)
            )
        },
    );
}

fn active_generation(node: &Node) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&cli(node, &["status", "--json"])).expect("status is JSON");
    status["zones"][0]["active"]
        .as_u64()
        .expect("an active generation")
}

#[test]
fn runbook_commands_drive_a_running_node() {
    let mut one = Backend::tcp(51, 7);
    let mut two = Backend::tcp(52, 7);
    one.start();
    two.start();
    let node = start_node(&[&one, &two]);
    let both = set(&[&one, &two]);
    wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);
    let with_both = active_generation(&node);

    // Freeze holds the answer on the wire while a backend dies.
    let frozen = cli(
        &node,
        &["freeze", "example.test", "--reason", "maintenance window"],
    );
    assert!(frozen.contains("tripped"), "{frozen}");
    one.stop();
    let hold_until = Instant::now() + Duration::from_millis(INTERVAL_MS * (FALL + 3));
    while Instant::now() < hold_until {
        assert_eq!(
            dig(node.dns, "app.example.test."),
            Some(both.clone()),
            "a frozen zone moved"
        );
    }

    // Thaw releases it: automation removes the dead backend.
    cli(
        &node,
        &["thaw", "example.test", "--reason", "maintenance over"],
    );
    wait_for_answer(node.dns, &set(&[&two]), CONVERGE_DEADLINE);
    assert_eq!(breaker(&node), "thawed");
    let without_one = active_generation(&node);

    // Rollback to the old generation restores its answer on the wire and freezes the zone.
    let started = Instant::now();
    let rolled = cli(
        &node,
        &[
            "rollback",
            "example.test",
            "--to",
            &with_both.to_string(),
            "--reason",
            "restore both",
        ],
    );
    assert!(rolled.contains("frozen"), "{rolled}");
    let took = wait_for_answer(node.dns, &both, CONVERGE_DEADLINE);
    println!(
        "rollback command to wire: {:?}",
        started.elapsed().max(took)
    );
    assert_eq!(breaker(&node), "tripped", "a rollback freezes the zone");
    let rolled_to = active_generation(&node);
    assert!(
        rolled_to > without_one,
        "rollback rolls forward: {rolled_to} after {without_one}"
    );

    let diff = cli(
        &node,
        &[
            "diff",
            "example.test",
            &without_one.to_string(),
            &rolled_to.to_string(),
        ],
    );
    assert!(
        diff.contains(&format!("+app.example.test.\t5\tIN\tA\t{}", one.address())),
        "{diff}"
    );

    let pinned = cli(&node, &["pin", "example.test", &with_both.to_string()]);
    assert!(pinned.contains("pinned"), "{pinned}");
    let history: serde_json::Value =
        serde_json::from_str(&cli(&node, &["history", "example.test", "--json"]))
            .expect("history is JSON");
    let entries = history["entries"].as_array().expect("entries");
    let rollback = entries
        .iter()
        .find(|e| e["generation"].as_u64() == Some(rolled_to))
        .expect("the rollback version");
    assert_eq!(rollback["provenance"], format!("rollback to {with_both}"));
    let old = entries
        .iter()
        .find(|e| e["generation"].as_u64() == Some(with_both))
        .expect("the pinned version");
    assert_eq!(old["pinned"], true);

    // The timeline lists the scripted incident in order.
    let timeline = cli(&node, &["timeline", "--zone", "example.test"]);
    let positions: Vec<usize> = ["maintenance window", "maintenance over", "restore both"]
        .iter()
        .map(|marker| {
            timeline
                .find(marker)
                .unwrap_or_else(|| panic!("{marker} missing from:\n{timeline}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{timeline}"
    );
    assert!(
        timeline.contains("breaker tripped") && timeline.contains("breaker thawed"),
        "{timeline}"
    );

    // Errors say what to do.
    let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args([
            "rollback",
            "example.test",
            "--to",
            "999",
            "--reason",
            "typo",
            "--api",
            &node.api,
        ])
        .arg("--config")
        .arg(&node.config)
        .output()
        .expect("run CLI");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("999"), "{message}");
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let mut backend = Backend::tcp(61, 7);
    backend.start();
    let node = start_node(&[&backend]);
    wait_for_answer(node.dns, &set(&[&backend]), CONVERGE_DEADLINE);
    // One NXDOMAIN from the zone and one REFUSED from outside every zone, for the counters.
    assert_eq!(dig(node.dns, "nothing.example.test"), Some(BTreeSet::new()));
    assert_eq!(dig(node.dns, "www.elsewhere.test"), Some(BTreeSet::new()));
    // The first probe verdict arrives after `rise` probes; wait until a scrape shows it.
    let deadline = Instant::now() + CONVERGE_DEADLINE;
    let text = loop {
        let text = ureq::get(&format!("{}/metrics", node.api))
            .call()
            .expect("metrics reachable")
            .body_mut()
            .read_to_string()
            .expect("metrics body");
        if text.contains("dnsward_backend_healthy{") || Instant::now() > deadline {
            break text;
        }
    };
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
    {
        assert!(
            matches!(
                prometheus_parse::LineInfo::parse(line),
                prometheus_parse::LineInfo::Sample { .. }
            ),
            "not a Prometheus sample line: {line}"
        );
    }
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string())))
        .expect("parses");
    let names: BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|sample| sample.metric.as_str())
        .collect();
    for expected in [
        "dnsward_zone_active_generation",
        "dnsward_zone_breaker_tripped",
        "dnsward_backend_healthy",
        "dnsward_enactor_outcomes_total",
        "dnsward_dns_answers_total",
        "dnsward_dns_queries_dropped_total",
        "dnsward_dns_answer_duration_seconds",
    ] {
        assert!(names.contains(expected), "{expected} missing from:\n{text}");
    }
    let answers = |zone: &str, rcode: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "dnsward_dns_answers_total"
                    && s.labels.get("zone") == Some(zone)
                    && s.labels.get("rcode") == Some(rcode)
            })
            .map_or(0.0, |s| match s.value {
                prometheus_parse::Value::Counter(value) => value,
                ref other => panic!("answers are a counter: {other:?}"),
            })
    };
    assert!(answers("example.test.", "NOERROR") >= 1.0, "{text}");
    assert!(answers("example.test.", "NXDOMAIN") >= 1.0, "{text}");
    assert!(answers("none", "REFUSED") >= 1.0, "{text}");
    let udp_latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "dnsward_dns_answer_duration_seconds"
                && s.labels.get("transport") == Some("udp")
        })
        .expect("a UDP latency histogram");
    let prometheus_parse::Value::Histogram(buckets) = &udp_latency.value else {
        panic!("latency is a histogram: {:?}", udp_latency.value);
    };
    let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
    assert!(
        counts.windows(2).all(|pair| pair[0] <= pair[1]),
        "buckets are cumulative: {counts:?}"
    );
    let infinite = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("a +Inf bucket");
    assert!(
        infinite.count >= answers("example.test.", "NXDOMAIN") + answers("none", "REFUSED"),
        "every UDP answer is in the histogram: {text}"
    );
}

#[test]
fn the_api_requires_the_generated_token_to_change_anything_and_audits_who_holds_it() {
    let lines = vec!["  { address = \"127.0.7.71\" },".to_string()];
    let node = start_node_with(&lines, None);
    wait_for_answer(
        node.dns,
        &["127.0.7.71".to_string()].into(),
        CONVERGE_DEADLINE,
    );
    let token_file = node.config.with_file_name("dnsward.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the service user reads the token");
    }
    // Reads stay open on loopback.
    let status = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["status", "--api", &node.api])
        .env_remove("DNSWARD_TOKEN")
        .env_remove("DNSWARD_CONFIG")
        .output()
        .expect("run CLI");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // Every change needs the token, whatever the door.
    let freeze = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args([
            "freeze",
            "example.test",
            "--reason",
            "no token",
            "--api",
            &node.api,
        ])
        .env_remove("DNSWARD_TOKEN")
        .env_remove("DNSWARD_CONFIG")
        .output()
        .expect("run CLI");
    assert!(!freeze.status.success());
    let message = String::from_utf8_lossy(&freeze.stderr);
    assert!(
        message.contains("401") && message.contains("--config"),
        "{message}"
    );
    let zone_text = std::fs::read_to_string(common::example_zone()).expect("example zone");
    for (path, body) in [
        (
            "v1/health",
            serde_json::json!({"reports": [{"address": "127.0.7.71", "healthy": false}]}),
        ),
        (
            "v1/zones/example.test/content",
            serde_json::json!({"zone_file": zone_text, "actor": "validator", "reason": "r", "force": "f"}),
        ),
        (
            "v1/zones/example.test/rollback",
            serde_json::json!({"actor": "validator", "reason": "r", "to": 1}),
        ),
        (
            "v1/zones/example.test/thaw",
            serde_json::json!({"actor": "validator", "reason": "r"}),
        ),
    ] {
        let (status, answer) = post_as(&format!("{}/{path}", node.api), None, &body);
        assert_eq!(status, 401, "{path}: {answer}");
        let (status, answer) =
            post_as(&format!("{}/{path}", node.api), Some("Bearer guess"), &body);
        assert_eq!(status, 401, "{path}: {answer}");
    }
    assert_eq!(breaker(&node), "closed", "nothing was done");
    // With the token (read from the node's configuration), the holder is the actor; what
    // the client says about itself is kept beside it, never instead of it.
    cli(
        &node,
        &["freeze", "example.test", "--reason", "maintenance"],
    );
    let (status, body) = post_json(
        &node,
        &format!("{}/v1/zones/example.test/thaw", node.api),
        &serde_json::json!({"actor": "validator", "reason": "done"}),
    );
    assert_eq!(status, 200, "{body}");
    let trips = audit_entries(&node, "breaker-trip");
    let trip_actor = trips.last().expect("the freeze is audited")["actor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        trip_actor.starts_with("operator (client: ") && trip_actor.contains("via dnsward freeze"),
        "{trip_actor}"
    );
    let thaws = audit_entries(&node, "breaker-thaw");
    assert_eq!(
        thaws.last().expect("the thaw is audited")["actor"],
        "operator (client: validator)"
    );
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = std::fs::read_to_string(&token_file).expect("token");
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = post_as(
            &format!("{}/v1/health", node.api),
            Some(&format!("{scheme} {}", token.trim())),
            &serde_json::json!({"reports": [{"address": "127.0.7.71", "healthy": true}]}),
        );
        assert_eq!(status, 200, "{scheme}: {body}");
    }
}

#[test]
fn a_configured_token_is_the_one_changes_need_and_is_not_written_to_a_file() {
    let lines = vec!["  { address = \"127.0.7.72\" },".to_string()];
    let node = start_node_with(&lines, Some("s3cret"));
    wait_for_answer(
        node.dns,
        &["127.0.7.72".to_string()].into(),
        CONVERGE_DEADLINE,
    );
    let freeze = |token: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args([
                "freeze",
                "example.test",
                "--reason",
                "r",
                "--api",
                &node.api,
            ])
            .args(token)
            .env_remove("DNSWARD_TOKEN")
            .output()
            .expect("run CLI")
    };
    assert!(!freeze(&[]).status.success());
    let with = freeze(&["--token", "s3cret"]);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(
        !node.config.with_file_name("dnsward.token").exists(),
        "a configured token is not written anywhere"
    );
}

#[test]
fn the_api_keeps_reasons_short_and_answers_only_its_own_host() {
    let lines = vec!["  { address = \"127.0.7.81\" },".to_string()];
    let node = start_node_with(&lines, None);
    wait_for_answer(
        node.dns,
        &["127.0.7.81".to_string()].into(),
        CONVERGE_DEADLINE,
    );
    let long = "x".repeat(64 * 1024);
    let (status, body) = post_json(
        &node,
        &format!("{}/v1/zones/example.test/freeze", node.api),
        &serde_json::json!({"actor": "mallory", "reason": long}),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("api.reason_bytes"), "{body}");
    // A request that names another host (a DNS rebinding) is refused.
    let response = ureq::post(&format!("{}/v1/zones/example.test/freeze", node.api))
        .header("Host", "attacker.example:80")
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(serde_json::json!({"actor": "mallory", "reason": "rebinding"}))
        .expect("API reachable");
    assert_eq!(response.status().as_u16(), 421);
    assert_eq!(breaker(&node), "closed", "nothing was done");
    assert!(
        audit_entries(&node, "breaker-trip").is_empty(),
        "nothing was written to the audit log"
    );
}
