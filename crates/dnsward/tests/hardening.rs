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

/// A node on `dir/dnsward.toml` (the example zone, `app.example.test` on three pushed-health
/// backends), logging to `dir/LOG`.
fn start_corruption_node(dir: &std::path::Path, log: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .current_dir(dir)
        .args(["run", "--config", "dnsward.toml"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).expect("log file"))
        .spawn()
        .expect("start dnsward run")
}

#[test]
fn a_flipped_byte_in_the_active_version_never_reaches_the_wire_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(common::example_zone(), dir.path().join("example.test.zone"))
        .expect("copy the example zone");
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let api = format!("http://127.0.0.1:{}", free_port());
    let config = dir.path().join("dnsward.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{dns}\"\n[api]\nlisten = \"{}\"\n[store]\npath = \"node.db\"\n\
             [[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n\
             [[endpoint]]\nname = \"app.example.test\"\nbackends = [ {{ address = \"127.0.9.41\" }}, \
             {{ address = \"127.0.9.42\" }}, {{ address = \"127.0.9.43\" }} ]\n",
            api.trim_start_matches("http://")
        ),
    )
    .expect("write config");
    let runbook = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .args(args)
            .args(["--api", &api])
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run dnsward");
        assert!(
            output.status.success(),
            "dnsward {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let set = |addresses: &[&str]| -> std::collections::BTreeSet<String> {
        addresses.iter().map(|a| a.to_string()).collect()
    };
    let mut node = start_corruption_node(dir.path(), "first.log");
    wait_until(
        DEADLINE,
        || dig(dns, APP) == Some(set(&["127.0.9.41", "127.0.9.42", "127.0.9.43"])),
        || "the endpoint never answered".into(),
    );
    // Two backends go down one after the other: generations 2 and 3.
    for (down, left) in [
        ("127.0.9.41", set(&["127.0.9.42", "127.0.9.43"])),
        ("127.0.9.42", set(&["127.0.9.43"])),
    ] {
        let body = serde_json::json!({"reports": [{"address": down, "healthy": false}]});
        ureq::post(&format!("{api}/v1/health"))
            .header("Authorization", &common::bearer(&config))
            .send_json(&body)
            .expect("health pushed");
        wait_until(
            DEADLINE,
            || dig(dns, APP) == Some(left.clone()),
            || format!("{down} never left the answer"),
        );
    }
    // Frozen, so that automation cannot paper over the corruption with a new version.
    runbook(&[
        "freeze",
        "example.test",
        "--reason",
        "before the disk goes bad",
    ]);
    let _ = node.kill();
    let _ = node.wait();

    // One flipped bit in the active version's stored content (SQLite's own checks pass).
    let store = dir.path().join("node.db");
    {
        let db = rusqlite::Connection::open(&store).expect("open the store file");
        let active: i64 = db
            .query_row("SELECT active FROM zones", [], |row| row.get(0))
            .expect("an active version");
        assert_eq!(active, 3);
        let mut bytes: Vec<u8> = db
            .query_row(
                "SELECT since_checkpoint FROM versions WHERE generation = ?1",
                [active],
                |row| row.get(0),
            )
            .expect("generation 3 is stored as changes since a checkpoint");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        db.execute(
            "UPDATE versions SET since_checkpoint = ?1 WHERE generation = ?2",
            rusqlite::params![bytes, active],
        )
        .expect("flip one bit");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("integrity check");
        assert_eq!(check, "ok", "SQLite does not see it");
    }

    let mut node = start_corruption_node(dir.path(), "second.log");
    // The corrupt version never reaches the wire: the newest version that verifies does.
    wait_until(
        DEADLINE,
        || dig(dns, APP) == Some(set(&["127.0.9.42", "127.0.9.43"])),
        || {
            format!(
                "the node does not serve the last verified version: {:?}\n{}",
                dig(dns, APP),
                std::fs::read_to_string(dir.path().join("second.log")).unwrap_or_default()
            )
        },
    );
    let log = std::fs::read_to_string(dir.path().join("second.log")).expect("log");
    assert!(
        log.contains("THE ACTIVE VERSION CANNOT BE READ") && log.contains("--to 2"),
        "{log}"
    );
    // The way back is in-band: a rollback to the verified version.
    runbook(&[
        "rollback",
        "example.test",
        "--to",
        "2",
        "--reason",
        "generation 3 fails its hash",
    ]);
    wait_until(
        DEADLINE,
        || served_serial(dns).is_some_and(|serial| serial % 100 >= 4),
        || "the rollback's version is not served".into(),
    );
    assert_eq!(dig(dns, APP), Some(set(&["127.0.9.42", "127.0.9.43"])));
    let _ = node.kill();
    let _ = node.wait();

    // The store keeps failing its check until it is repaired into a new file.
    let dnsward = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dnsward"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("run dnsward")
    };
    assert!(!dnsward(&["store", "check", "--store", "node.db"])
        .status
        .success());
    let repaired = dnsward(&[
        "store",
        "repair",
        "--store",
        "node.db",
        "--out",
        "repaired.db",
    ]);
    let report = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    assert!(
        report.contains("3 versions verified and copied, 1 dropped (3); active 4 -> 4"),
        "{report}"
    );
    let checked = dnsward(&["store", "check", "--store", "repaired.db"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        dir.path().join("node.db").is_file(),
        "the damaged file is kept"
    );
}

#[test]
fn a_zone_name_too_long_for_its_made_up_soa_is_a_configuration_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let long = [
        "a".repeat(61),
        "b".repeat(61),
        "c".repeat(61),
        "d".repeat(61),
    ]
    .join(".");
    std::fs::write(
        dir.path().join("dnsward.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n[api]\nlisten = \"127.0.0.1:{}\"\n\
             [[zone]]\nname = \"{long}\"\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .current_dir(dir.path())
        .args(["run", "--config", "dnsward.toml"])
        .output()
        .expect("run dnsward");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("give the zone a file"), "{stderr}");
}
