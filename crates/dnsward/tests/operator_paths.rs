//! The paths an operator takes during an incident, on a real node with real `dig`: a fix
//! survives later plans and a thaw, a zone file reload merges with it, a typo'd zone name
//! creates nothing, and `zone import` cannot write around the guard of a running node.
//!
//! Backends have no probe (`check = "none"`): their health comes from pushed reports, so
//! each test decides exactly when the planner has something to do.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dig, free_port, wait_until};

const DEADLINE: Duration = Duration::from_secs(15);
const APP: &str = "app.example.test.";
const WWW: &str = "www.example.test.";
const BACKENDS: [&str; 3] = ["127.0.9.1", "127.0.9.2", "127.0.9.3"];

struct Node {
    child: Child,
    dns: SocketAddr,
    api: String,
    dir: tempfile::TempDir,
    sampler: Option<Sampler>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks `dig` for the endpoint every [`SAMPLE_INTERVAL`] and keeps when it saw an empty
/// answer (a failed dig, e.g. while the node restarts, is not an answer).
struct Sampler {
    stop: Arc<AtomicBool>,
    empty_at: Arc<Mutex<Vec<Instant>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

impl Sampler {
    fn start(server: SocketAddr) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let empty_at = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, empty_at) = (Arc::clone(&stop), Arc::clone(&empty_at));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if dig(server, APP).is_some_and(|answer| answer.is_empty()) {
                        empty_at.lock().expect("sampler lock").push(Instant::now());
                    }
                    std::thread::sleep(SAMPLE_INTERVAL);
                }
            })
        };
        Sampler {
            stop,
            empty_at,
            thread: Some(thread),
        }
    }

    /// Stops and returns when it saw the endpoint empty.
    fn finish(mut self) -> Vec<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("sampler thread");
        }
        std::mem::take(&mut *self.empty_at.lock().expect("sampler lock"))
    }
}

impl Node {
    /// A node serving a copy of the example zone (in its own folder, so tests can edit it)
    /// with `app` as an endpoint of three pushed-health backends.
    fn start() -> Node {
        Node::start_with("")
    }

    /// [`Node::start`] with `extra` appended to the configuration.
    fn start_with(extra: &str) -> Node {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::copy(common::example_zone(), dir.path().join("example.test.zone"))
            .expect("copy the example zone");
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let api_port = free_port();
        let backends: Vec<String> = BACKENDS
            .iter()
            .map(|address| format!("  {{ address = \"{address}\" }},"))
            .collect();
        let config = format!(
            "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n\
             [store]\npath = \"node.db\"\n\
             [[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n\
             [[endpoint]]\nname = \"app.example.test\"\nttl = 5\nmin_answers = 1\n\
             backends = [\n{}\n]\n{extra}",
            backends.join("\n")
        );
        std::fs::write(dir.path().join("dnsward.toml"), config).expect("write config");
        let mut node = Node {
            child: spawn_node(dir.path()),
            dns,
            api: format!("http://127.0.0.1:{api_port}"),
            dir,
            sampler: None,
        };
        node.wait_for(APP, &BACKENDS);
        node.sampler = Some(Sampler::start(dns));
        node
    }

    /// The endpoint never answered empty since the node started (before `until`, if given).
    fn assert_never_empty(&mut self, until: Option<Instant>) {
        let empty = self.sampler.take().map(Sampler::finish).unwrap_or_default();
        let early: Vec<&Instant> = empty
            .iter()
            .filter(|at| until.is_none_or(|until| **at < until))
            .collect();
        assert!(
            early.is_empty(),
            "{APP} answered empty {} times\n{}",
            early.len(),
            self.log()
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("node.log")).unwrap_or_default()
    }

    /// Runs a dnsward command against this node's API; its output, whatever the exit.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args(args)
            .args(["--api", &self.api])
            .arg("--config")
            .arg(self.path("dnsward.toml"))
            .output()
            .expect("run dnsward CLI")
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        common::cli_at(&self.api, &self.path("dnsward.toml"), args)
    }

    fn push(&self, address: &str, healthy: bool) {
        let body = serde_json::json!({"reports": [{"address": address, "healthy": healthy}]});
        let response = ureq::post(&format!("{}/v1/health", self.api))
            .header("Authorization", &common::bearer(&self.path("dnsward.toml")))
            .send_json(&body)
            .expect("health push accepted");
        assert_eq!(response.status().as_u16(), 200);
    }

    /// Waits until `name` answers exactly `addresses`.
    fn wait_for(&self, name: &str, addresses: &[&str]) {
        let want: BTreeSet<String> = addresses.iter().map(|a| a.to_string()).collect();
        wait_until(
            DEADLINE,
            || dig(self.dns, name).as_ref() == Some(&want),
            || {
                format!(
                    "{name} never answered {want:?}; last {:?}\n{}",
                    dig(self.dns, name),
                    self.log()
                )
            },
        );
    }

    fn zones(&self) -> Vec<String> {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["status", "--json"])).expect("status is JSON");
        status["zones"]
            .as_array()
            .expect("zones")
            .iter()
            .map(|zone| zone["zone"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn spawn_node(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .current_dir(dir)
        .args(["run", "--config", "dnsward.toml"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dnsward run")
}

impl Node {
    /// The zone as served now (`dnsward zone export`, which only reads the store) with
    /// `line` added, written to `file` in the node's folder: how an operator stages a fix.
    fn export_with(&self, file: &str, line: &str) -> PathBuf {
        let path = self.path(file);
        let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args(["zone", "export", "example.test", "--store"])
            .arg(self.path("node.db"))
            .output()
            .expect("run zone export");
        assert!(output.status.success(), "export: {}", stderr(&output));
        let text = format!("{}{line}\n", String::from_utf8_lossy(&output.stdout));
        std::fs::write(&path, text).expect("write the staged zone");
        path
    }
}

impl Node {
    /// The operator's fix of every test here: the served zone, exported, with a third
    /// address for `www`, applied; returns `www`'s addresses once it is on the wire.
    fn apply_third_web_server(&self, reason: &str) -> [&'static str; 3] {
        let fix = self.export_with("fix.zone", "www.example.test. 300 IN A 192.0.2.12");
        self.cli_ok(&[
            "apply",
            "example.test",
            fix.to_str().expect("utf-8 path"),
            "--reason",
            reason,
        ]);
        let fixed = ["192.0.2.10", "192.0.2.11", "192.0.2.12"];
        self.wait_for(WWW, &fixed);
        fixed
    }
}

/// The example zone with `line` added.
fn example_zone_with(line: &str) -> String {
    let text = std::fs::read_to_string(common::example_zone()).expect("example zone");
    format!("{text}{line}\n")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_operator_fix_to_a_static_record_survives_later_plans_and_a_thaw() {
    let mut node = Node::start();
    node.cli_ok(&["freeze", "example.test", "--reason", "incident 42"]);
    let fixed = node.apply_third_web_server("incident 42: third web server");

    node.cli_ok(&["thaw", "example.test", "--reason", "incident 42 over"]);
    node.push(BACKENDS[0], false);
    node.wait_for(APP, &BACKENDS[1..]);
    assert_eq!(
        dig(node.dns, WWW),
        Some(fixed.iter().map(|a| a.to_string()).collect()),
        "the plans after the thaw keep the operator's fix"
    );
    node.push(BACKENDS[0], true);
    node.wait_for(APP, &BACKENDS);
    node.wait_for(WWW, &fixed);
    node.assert_never_empty(None);
}

#[test]
fn a_zone_file_reload_changes_what_the_file_changed_and_keeps_operator_fixes() {
    let mut node = Node::start();
    let fixed = node.apply_third_web_server("third web server");

    // The file gains a record elsewhere; a reload brings it in and keeps the fix.
    std::fs::write(
        node.path("example.test.zone"),
        example_zone_with("added IN A 192.0.2.77"),
    )
    .expect("edit the zone file");
    let hangup = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hangup.success());
    node.wait_for("added.example.test.", &["192.0.2.77"]);
    node.wait_for(WWW, &fixed);
    node.wait_for(APP, &BACKENDS);
    node.assert_never_empty(None);
}

#[test]
fn a_restart_with_an_unchanged_zone_file_keeps_operator_fixes() {
    let mut node = Node::start();
    wait_until(
        DEADLINE,
        || node.log().contains("recorded as the zone's source"),
        || {
            format!(
                "the zone file was never recorded as the source:\n{}",
                node.log()
            )
        },
    );
    let fixed = node.apply_third_web_server("third web server");
    let _ = node.child.kill();
    let _ = node.child.wait();

    node.child = spawn_node(node.dir.path());
    node.wait_for(APP, &BACKENDS);
    node.push(BACKENDS[2], false);
    node.wait_for(APP, &BACKENDS[..2]);
    node.wait_for(WWW, &fixed);
    node.assert_never_empty(None);
}

#[test]
fn a_typod_zone_name_is_refused_and_creates_nothing() {
    let mut node = Node::start();
    for zone in ["exmaple.test", "", "."] {
        let output = node.cli(&["freeze", zone, "--reason", "typo"]);
        assert!(
            !output.status.success(),
            "freeze {zone:?} must fail: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let message = stderr(&output);
        if zone == "exmaple.test" {
            assert!(
                message.contains("no such zone exmaple.test.")
                    && message.contains("known zones: example.test."),
                "{message}"
            );
        } else {
            assert!(message.contains("is not a zone name"), "{message}");
        }
    }
    for command in [
        vec!["thaw", "exmaple.test", "--reason", "typo"],
        vec!["history", "exmaple.test"],
        vec!["rollback", "exmaple.test", "--to", "1", "--reason", "typo"],
        vec!["pin", "exmaple.test", "1", "--reason", "typo"],
    ] {
        let output = node.cli(&command);
        assert!(!output.status.success(), "{command:?} must fail");
        assert!(
            stderr(&output).contains("no such zone exmaple.test."),
            "{command:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(node.zones(), ["example.test."]);
    let metrics = ureq::get(&format!("{}/metrics", node.api))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("metrics text");
    assert!(!metrics.contains("exmaple"), "{metrics}");
    node.assert_never_empty(None);
}

#[test]
fn zone_import_into_the_store_of_a_running_node_is_refused_and_names_the_node() {
    let mut node = Node::start();
    let empty_app = node.path("bad.zone");
    let text = std::fs::read_to_string(common::example_zone()).expect("example zone");
    std::fs::write(&empty_app, text).expect("write bad zone");
    let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["zone", "import"])
        .arg(&empty_app)
        .arg("--store")
        .arg(node.path("node.db"))
        .output()
        .expect("run zone import");
    assert!(!output.status.success(), "the import must be refused");
    let message = stderr(&output);
    assert!(
        message.contains("served by a running node") && message.contains("dnsward apply"),
        "{message}"
    );
    assert!(
        message.contains(&node.api),
        "names the node's API: {message}"
    );
    assert_eq!(
        dig(node.dns, APP),
        Some(BACKENDS.iter().map(|a| a.to_string()).collect()),
        "the endpoint keeps its answer"
    );
    node.assert_never_empty(None);
}

fn audit(node: &Node) -> Vec<serde_json::Value> {
    let body = ureq::get(&format!(
        "{}/v1/audit?zone=example.test&limit=1000",
        node.api
    ))
    .call()
    .expect("audit")
    .body_mut()
    .read_to_string()
    .expect("audit body");
    let audit: serde_json::Value = serde_json::from_str(&body).expect("audit is JSON");
    audit["entries"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_forced_change_below_the_floor_stays_served_and_is_reported_not_rolled_back() {
    let mut node = Node::start();
    // The example zone has no records at app: applying it empties the endpoint.
    let drained = node.path("drained.zone");
    std::fs::copy(common::example_zone(), &drained).expect("copy the example zone");
    let drained = drained.to_str().expect("utf-8 path");
    let refused = node.cli(&["apply", "example.test", drained, "--reason", "drain app"]);
    assert!(
        !refused.status.success(),
        "without --force the guard refuses"
    );
    node.wait_for(APP, &BACKENDS);
    node.cli_ok(&["thaw", "example.test", "--reason", "refused apply"]);

    let forcing = Instant::now();
    node.cli_ok(&[
        "apply",
        "example.test",
        drained,
        "--reason",
        "drain app",
        "--force",
        "maintenance: app drained on purpose",
    ]);
    node.wait_for(APP, &[]);
    wait_until(
        DEADLINE,
        || {
            audit(&node).iter().any(|entry| {
                entry["action"] == "validator-finding"
                    && entry["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("warning") && r.contains("below its floor"))
            })
        },
        || {
            format!(
                "the validator never reported the forced floor breach:\n{}",
                node.log()
            )
        },
    );
    assert_eq!(
        dig(node.dns, APP),
        Some(BTreeSet::new()),
        "still served as forced"
    );
    assert!(
        !audit(&node)
            .iter()
            .any(|entry| entry["action"] == "rollback"
                || entry["actor"] == "validator" && entry["action"] == "ref-move"),
        "the validator did not roll the forced version back"
    );
    let status: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["status", "--json"])).expect("status is JSON");
    let zone = &status["zones"][0];
    assert_eq!(
        zone["breaker"], "tripped",
        "a forced version freezes the zone"
    );
    let forced = zone["forced"].as_str().unwrap_or_default();
    assert!(
        forced.contains("forced below floor") && forced.contains("maintenance: app drained"),
        "{status}"
    );

    // A thaw gives the endpoint back to automation, which restores the floor.
    node.cli_ok(&["thaw", "example.test", "--reason", "maintenance over"]);
    node.wait_for(APP, &BACKENDS);
    let status: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["status", "--json"])).expect("status is JSON");
    assert!(status["zones"][0]["forced"].is_null(), "{status}");
    node.assert_never_empty(Some(forcing));
}

#[test]
fn plan_shows_a_change_without_making_it_and_a_stale_apply_base_is_refused() {
    let mut node = Node::start();
    let fix = node.export_with("fix.zone", "www.example.test. 300 IN A 192.0.2.12");
    let fix = fix.to_str().expect("utf-8 path");
    let plan = |file: &str| -> serde_json::Value {
        serde_json::from_str(&node.cli_ok(&["plan", "example.test", file, "--json"]))
            .expect("plan is JSON")
    };
    let lines = |plan: &serde_json::Value, side: &str| -> Vec<String> {
        plan[side]
            .as_array()
            .expect("a list of lines")
            .iter()
            .filter_map(|line| line.as_str().map(str::to_string))
            .collect()
    };
    let drained = node.path("drained.zone");
    std::fs::copy(common::example_zone(), &drained).expect("copy the example zone");
    let drained = plan(drained.to_str().expect("utf-8 path"));
    assert_eq!(drained["verdict"], "refuse-unless-forced", "{drained}");
    assert_eq!(
        drained["endpoints_touched"],
        serde_json::json!([APP]),
        "{drained}"
    );
    assert!(
        lines(&drained, "removed")
            .iter()
            .any(|line| line.contains(APP)),
        "a file without app records removes them: {drained}"
    );

    let plan = plan(fix);
    assert_eq!(plan["verdict"], "accept", "{plan}");
    let added = lines(&plan, "added");
    assert!(
        added.len() == 1 && added[0].contains(WWW) && added[0].contains("192.0.2.12"),
        "{plan}"
    );
    assert!(lines(&plan, "removed").is_empty(), "{plan}");
    assert_eq!(plan["endpoints_touched"], serde_json::json!([]), "{plan}");
    let base = plan["base"].as_u64().expect("a base generation");
    assert_eq!(
        dig(node.dns, WWW),
        Some(
            ["192.0.2.10", "192.0.2.11"]
                .iter()
                .map(|a| a.to_string())
                .collect()
        ),
        "plan changed nothing"
    );
    let text = node.cli_ok(&["plan", "example.test", fix]);
    assert!(
        text.contains("+")
            && text.contains("192.0.2.12")
            && text.contains(&format!("--base {base}")),
        "{text}"
    );

    // Health moves the zone on; the change prepared against `base` is now stale.
    node.push(BACKENDS[1], false);
    node.wait_for(APP, &[BACKENDS[0], BACKENDS[2]]);
    let base_text = base.to_string();
    let stale = node.cli(&[
        "apply",
        "example.test",
        fix,
        "--base",
        &base_text,
        "--reason",
        "third web server",
    ]);
    assert!(!stale.status.success(), "a stale base is refused");
    let message = stderr(&stale);
    assert!(
        message.contains(&format!("expected generation {base}")) && message.contains("re-plan"),
        "{message}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&node.cli_ok(&["status", "--json"])).expect("status is JSON");
    assert_eq!(
        status["zones"][0]["breaker"], "closed",
        "a stale apply trips nothing"
    );
    assert_eq!(
        dig(node.dns, WWW),
        Some(
            ["192.0.2.10", "192.0.2.11"]
                .iter()
                .map(|a| a.to_string())
                .collect()
        )
    );
    node.wait_for(APP, &[BACKENDS[0], BACKENDS[2]]);
    node.assert_never_empty(None);
}

/// Runs `dnsward run` with an endpoint at `www`, which the example zone has static A and
/// AAAA records for.
fn run_with_www_endpoint(extra: &str) -> (tempfile::TempDir, Child, SocketAddr) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(common::example_zone(), dir.path().join("example.test.zone"))
        .expect("copy the example zone");
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n\
         [store]\npath = \"node.db\"\n\
         [[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n\
         \n[[endpoint]]\nname = \"www.example.test\"\n{extra}\
         backends = [ {{ address = \"127.0.9.7\" }} ]\n",
        free_port()
    );
    std::fs::write(dir.path().join("dnsward.toml"), config).expect("write config");
    let child = spawn_node(dir.path());
    (dir, child, dns)
}

#[test]
fn an_endpoint_on_a_name_with_static_addresses_is_a_config_error_with_both_lines() {
    let (dir, mut child, _) = run_with_www_endpoint("");
    let status = child.wait().expect("the node exits");
    assert!(!status.success(), "the config is refused");
    let log = std::fs::read_to_string(dir.path().join("node.log")).expect("log");
    assert!(
        (log.contains("dnsward.toml:11:") || log.contains("dnsward.toml:12:"))
            && log.contains("example.test.zone:18")
            && log.contains("replace_static = true"),
        "{log}"
    );

    let (dir, mut child, dns) = run_with_www_endpoint("replace_static = true\n");
    wait_until(
        DEADLINE,
        || dig(dns, WWW) == Some(["127.0.9.7".to_string()].into()),
        || {
            format!(
                "with replace_static the endpoint answers at www:\n{}",
                std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
            )
        },
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn zone_check_reports_every_error_with_its_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("five.zone");
    std::fs::write(
        &file,
        "$ORIGIN example.test.\n\
         $TTL 3600\n\
         @ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n\
         @ IN NS ns1\n\
         ns1 IN A 192.0.2.53\n\
         bad IN A 192.0.2.999\n\
         $GENERATE 1-10 host$ A 192.0.2.$\n\
         alias IN CNAME www\n\
         alias IN TXT \"beside a CNAME\"\n\
         www IN A 192.0.2.10\n\
         www 300 IN A 192.0.2.11\n\
         outside.example.net. IN A 192.0.2.1\n\
         sub IN SOA ns1 hostmaster 1 7200 900 1209600 300\n",
    )
    .expect("write zone");
    let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args(["zone", "check"])
        .arg(&file)
        .output()
        .expect("run zone check");
    assert!(!output.status.success());
    let text = stderr(&output);
    let place = format!("{}:", file.display());
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&place) && !line.contains("warning"))
        .collect();
    let lines: Vec<&str> = errors
        .iter()
        .map(|line| line[place.len()..].split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(lines, ["6", "7", "8", "12", "13"], "{text}");
    assert!(
        text.contains(&format!("{place}11: warning:")),
        "the differing TTL is a warning: {text}"
    );
    assert!(text.contains("5 errors"), "{text}");
}

#[test]
fn status_explains_a_deferred_removal_and_when_it_lifts() {
    let mut node = Node::start_with("[guard]\nmax_removals_per_window = 1\n");
    node.push(BACKENDS[0], false);
    node.wait_for(APP, &BACKENDS[1..]);
    node.push(BACKENDS[1], false);
    let status = || -> serde_json::Value {
        serde_json::from_str(&node.cli_ok(&["status", "--json"])).expect("status is JSON")
    };
    wait_until(
        DEADLINE,
        || {
            status()["zones"][0]["deferred"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        },
        || {
            format!(
                "status never showed the deferred removal: {}\n{}",
                status(),
                node.log()
            )
        },
    );
    let status = status();
    let deferral = &status["zones"][0]["deferred"][0];
    assert_eq!(deferral["endpoint"], APP, "{status}");
    assert_eq!(
        deferral["still_served"],
        serde_json::json!([BACKENDS[1]]),
        "{status}"
    );
    assert!(
        deferral["why"]
            .as_str()
            .is_some_and(|why| why.contains("velocity limit")
                && why.contains("guard.max_removals_per_window")),
        "{status}"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let why = &status["zones"][0]["endpoints"][0];
    assert_eq!(why["endpoint"], APP, "{status}");
    assert!(
        why["why"]
            .as_str()
            .is_some_and(|why| why.contains("1 of 3 serving backends healthy")),
        "{status}"
    );
    let lifts = deferral["lifts_at_ms"].as_u64().expect("when it lifts");
    assert!(lifts > now_ms && lifts <= now_ms + 60_000, "{status}");
    node.wait_for(APP, &BACKENDS[1..]);
    assert!(node.log().contains("removal deferred"), "{}", node.log());
    let text = node.cli_ok(&["status"]);
    assert!(
        text.contains(&format!("still serving {}", BACKENDS[1])),
        "{text}"
    );
    node.assert_never_empty(None);
}

#[test]
fn a_zones_first_version_waits_for_the_first_probes_instead_of_guessing() {
    let up = std::net::TcpListener::bind("127.0.9.21:0").expect("bind a live backend");
    let up_port = up.local_addr().expect("bound").port();
    let down_port = std::net::TcpListener::bind("127.0.9.22:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(common::example_zone(), dir.path().join("example.test.zone"))
        .expect("copy the example zone");
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n\
         [store]\npath = \"node.db\"\n\
         [health]\ninterval_ms = 200\ntimeout_ms = 100\nrise = 2\nfall = 2\n\
         [[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n\
         [[endpoint]]\nname = \"app.example.test\"\nbackends = [\n\
           {{ address = \"127.0.9.21\", check = \"tcp:127.0.9.21:{up_port}\" }},\n\
           {{ address = \"127.0.9.22\", check = \"tcp:127.0.9.22:{down_port}\" }},\n]\n",
        free_port()
    );
    std::fs::write(dir.path().join("dnsward.toml"), config).expect("write config");
    let mut child = spawn_node(dir.path());
    let mut first = None;
    wait_until(
        DEADLINE,
        || {
            first = dig(dns, APP).filter(|answer| !answer.is_empty());
            first.is_some()
        },
        || {
            format!(
                "app never answered:\n{}",
                std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
            )
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(up);
    assert_eq!(
        first,
        Some(["127.0.9.21".to_string()].into()),
        "the first version serves what the probes found, not a guess"
    );
}

#[test]
fn an_operator_change_is_judged_with_the_endpoints_of_the_last_reload() {
    let mut node = Node::start();
    let stale = node.export_with("stale.zone", "");
    // A reload adds an endpoint of one backend; the export made before it has no records
    // there. Removing one record of one is within the removal limits: only the new
    // endpoint's floor stands in the way.
    let config = std::fs::read_to_string(node.path("dnsward.toml")).expect("config");
    std::fs::write(
        node.path("dnsward.toml"),
        format!(
            "{config}\n[[endpoint]]\nname = \"new.example.test\"\nmin_answers = 1\n\
             backends = [ {{ address = \"127.0.9.41\" }} ]\n"
        ),
    )
    .expect("edit config");
    let hangup = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hangup.success());
    node.wait_for("new.example.test.", &["127.0.9.41"]);

    let applied = node.cli(&[
        "apply",
        "example.test",
        stale.to_str().expect("utf-8 path"),
        "--reason",
        "stale export",
    ]);
    assert!(
        !applied.status.success(),
        "emptying the endpoint the reload added is refused"
    );
    assert!(
        stderr(&applied).contains("below floor: new.example.test."),
        "{}",
        stderr(&applied)
    );
    node.wait_for("new.example.test.", &["127.0.9.41"]);
    node.assert_never_empty(None);
}
