//! A node under conditions a service meets in production: its log sink goes away, a task
//! dies. Nothing may be left half-alive: the served version follows the store, or the
//! process exits non-zero for the service manager to restart it.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{dig, free_port, wait_until};

const DEADLINE: Duration = Duration::from_secs(15);
const APP: &str = "app.example.test.";

/// The served SOA serial of example.test.
fn served_serial(dns: SocketAddr) -> Option<u64> {
    let output = Command::new("dig")
        .args([
            "+short",
            "+time=1",
            "+tries=1",
            &format!("@{}", dns.ip()),
            "-p",
        ])
        .arg(dns.port().to_string())
        .args(["example.test.", "SOA"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[test]
fn a_node_whose_standard_error_closes_keeps_following_the_store_or_exits() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(common::example_zone(), dir.path().join("example.test.zone"))
        .expect("copy the example zone");
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let api = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"{}\"\n[store]\npath = \"node.db\"\n\
         [[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n\
         [[endpoint]]\nname = \"app.example.test\"\n\
         backends = [ {{ address = \"127.0.9.31\" }}, {{ address = \"127.0.9.32\" }} ]\n",
        api.trim_start_matches("http://")
    );
    std::fs::write(dir.path().join("dnsward.toml"), config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .current_dir(dir.path())
        .args(["run", "--config", "dnsward.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsward run");
    // Like `dnsward run 2>&1 | head -n 2`: two lines read, then the pipe is closed.
    let mut log = BufReader::new(child.stderr.take().expect("piped stderr"));
    for _ in 0..2 {
        let mut line = String::new();
        log.read_line(&mut line).expect("a log line");
    }
    drop(log);
    let both = ["127.0.9.31".to_string(), "127.0.9.32".to_string()].into();
    wait_until(
        DEADLINE,
        || dig(dns, APP).as_ref() == Some(&both),
        || "the endpoint never answered".to_string(),
    );

    // Every change logs (now into a closed pipe); the node must keep up, or stop.
    for (address, healthy) in [
        ("127.0.9.31", false),
        ("127.0.9.31", true),
        ("127.0.9.32", false),
    ] {
        let body = serde_json::json!({"reports": [{"address": address, "healthy": healthy}]});
        if ureq::post(&format!("{api}/v1/health"))
            .header(
                "Authorization",
                &common::bearer(&dir.path().join("dnsward.toml")),
            )
            .send_json(&body)
            .is_err()
        {
            break; // the node is gone: checked below
        }
        let mut exited = None;
        wait_until(
            DEADLINE,
            || {
                exited = child.try_wait().expect("poll the node");
                if exited.is_some() {
                    return true;
                }
                let status: Option<serde_json::Value> = ureq::get(&format!("{api}/v1/status"))
                    .call()
                    .ok()
                    .and_then(|mut response| response.body_mut().read_json().ok());
                let store_serial = status.and_then(|status| status["zones"][0]["serial"].as_u64());
                let answer = dig(dns, APP).unwrap_or_default();
                store_serial.is_some()
                    && store_serial == served_serial(dns)
                    && answer.contains(address) == healthy
            },
            || "the served version stopped following the store and the node did not exit".into(),
        );
        if let Some(status) = exited {
            assert!(!status.success(), "a node that stops must say so: {status}");
            return;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `dig +tcp` for the name's A records from the source address `from`.
fn dig_tcp(
    server: SocketAddr,
    from: &str,
    name: &str,
) -> Option<std::collections::BTreeSet<String>> {
    let output = Command::new("dig")
        .args(["+tcp", "+short", "+time=2", "+tries=1", "-b", from])
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, "A"])
        .output()
        .expect("dig is installed by scripts/test");
    let text = String::from_utf8_lossy(&output.stdout);
    (output.status.success() && !text.contains("timed out")).then(|| {
        text.lines()
            .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
            .map(|line| line.trim().to_string())
            .collect()
    })
}

#[test]
fn idle_tcp_connections_from_one_source_never_deny_tcp_to_others() {
    let zone = common::example_zone();
    let server = common::start_dnsward(
        &["serve", "--zone", zone.to_str().expect("utf-8 path")],
        "example.test.",
    );
    let www: std::collections::BTreeSet<String> =
        ["192.0.2.10".to_string(), "192.0.2.11".to_string()].into();
    // 400 connections from one source that never send a query (more than the table holds).
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(server.addr).ok())
        .collect();
    assert!(idle.len() > 256, "the client opened its connections");
    assert_eq!(
        dig_tcp(server.addr, "127.0.0.2", "www.example.test."),
        Some(www.clone()),
        "another source is answered over TCP"
    );
    assert_eq!(
        dig_tcp(server.addr, "127.0.0.1", "www.example.test."),
        Some(www),
        "the same source gets a slot too: its oldest idle connection gives way"
    );
    drop(idle);
}

#[test]
fn store_check_verifies_a_store_and_names_what_is_corrupt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = dir.path().join("store.db");
    let dnsward = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args(args)
            .output()
            .expect("run dnsward")
    };
    let store_arg = store.to_str().expect("utf-8 path");
    let zone = common::example_zone();
    let imported = dnsward(&[
        "zone",
        "import",
        zone.to_str().expect("utf-8"),
        "--store",
        store_arg,
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let checked = dnsward(&["store", "check", "--store", store_arg]);
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        out.contains("zone example.test.: active 1, 1 versions verified") && out.contains("ok"),
        "{out}"
    );

    rusqlite::Connection::open(&store)
        .expect("open the store file")
        .execute("UPDATE blobs SET bytes = X'00'", [])
        .expect("flip the content");
    let checked = dnsward(&["store", "check", "--store", store_arg]);
    assert!(!checked.status.success(), "a corrupt store fails the check");
    assert!(
        String::from_utf8_lossy(&checked.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let missing = dir.path().join("missing.db");
    let checked = dnsward(&[
        "store",
        "check",
        "--store",
        missing.to_str().expect("utf-8"),
    ]);
    assert!(!checked.status.success());
    assert!(!missing.exists(), "a check creates nothing");
}
