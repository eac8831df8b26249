//! dnsward in a real estate of secondaries and primaries: NSD 4.6, Knot 3.2 and BIND 9.18
//! (Debian packages, started here on loopback ports) transfer a node's zone with TSIG, follow
//! its changes by IXFR after a NOTIFY and its rollbacks under a higher serial, and answer
//! like the node; unsigned and wrongly signed transfer requests get nothing. The other way
//! round, a node as the guarded secondary of a BIND primary serves a normal change and
//! refuses one that empties a protected name.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::node::Node;
use common::secondaries::{
    last_transfer_kind, reload_primary, soa_serial, start_primary_on, start_secondary_on,
    wait_serial, Kind, TsigKey,
};
use common::{free_port, query, tcp_exchange, udp_exchange, wait_until};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const ZONE: &str = "xfr.test.";
/// Hosts in the zone: a 1 % change is 20 names.
const HOSTS: u32 = 2_000;
/// Transfers and NOTIFY on loopback take milliseconds; this only bounds a failure.
const DEADLINE: Duration = Duration::from_secs(30);

/// The zone file: SOA, NS, MX, TXT at the apex and `HOSTS` names with an A record each,
/// `extra` lines appended.
fn zone_text(serial: u32, extra: &str) -> String {
    let mut text = format!(
        "$ORIGIN {ZONE}\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\n@ IN MX 10 mail\n@ IN TXT \"dnsward transfer test\"\n\
         ns1 IN A 192.0.2.1\nmail IN A 192.0.2.25\nwww IN A 192.0.2.10\nwww IN A 192.0.2.11\n\
         alias IN CNAME www\n"
    );
    for host in 0..HOSTS {
        text.push_str(&format!(
            "host{host} IN A 10.0.{}.{}\n",
            host / 250,
            host % 250
        ));
    }
    text.push_str(extra);
    text
}

/// What `server` answers for `name`/`rtype`: the rcode and the answer section as sorted
/// presentation lines (TTL included), over UDP.
fn answer(server: SocketAddr, name: &str, rtype: RecordType) -> (ResponseCode, BTreeSet<String>) {
    let reply = udp_exchange(
        server,
        &query(name, rtype, Some(1232)),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|error| panic!("{server} did not answer {name} {rtype}: {error}"));
    (
        reply.metadata.response_code,
        reply.answers.iter().map(ToString::to_string).collect(),
    )
}

/// The questions compared between the node and each secondary: the apex's types, a CNAME,
/// a sample of hosts, names that do not exist and the names `extra` lists.
fn questions(extra: &[String]) -> Vec<(String, RecordType)> {
    let mut questions: Vec<(String, RecordType)> = [
        (ZONE.to_string(), RecordType::SOA),
        (ZONE.to_string(), RecordType::NS),
        (ZONE.to_string(), RecordType::MX),
        (ZONE.to_string(), RecordType::TXT),
        (format!("www.{ZONE}"), RecordType::A),
        (format!("www.{ZONE}"), RecordType::AAAA),
        (format!("alias.{ZONE}"), RecordType::A),
        (format!("nothing.{ZONE}"), RecordType::A),
    ]
    .into_iter()
    .collect();
    questions.extend(
        (0..HOSTS)
            .step_by(97)
            .map(|host| (format!("host{host}.{ZONE}"), RecordType::A)),
    );
    questions.extend(extra.iter().map(|name| (name.clone(), RecordType::A)));
    questions
}

/// Waits until `secondary` answers every question like the node; fails with the
/// differences after the deadline. (A secondary that has just taken a new version may still
/// answer a few queries from the old one: NSD's old server process serves until it exits.)
fn assert_same_answers(node: SocketAddr, secondary: SocketAddr, who: &str, extra: &[String]) {
    let differences = || {
        questions(extra)
            .into_iter()
            .filter_map(|(name, rtype)| {
                let (theirs, ours) = (answer(secondary, &name, rtype), answer(node, &name, rtype));
                (theirs != ours)
                    .then(|| format!("{name} {rtype}: {who} {theirs:?} / node {ours:?}"))
            })
            .collect::<Vec<_>>()
    };
    wait_until(
        DEADLINE,
        || differences().is_empty(),
        || format!("{who} and the node differ:\n{}", differences().join("\n")),
    );
}

/// The node's serial of the test zone.
fn serial(node: &Node) -> Option<u32> {
    soa_serial(node.dns, ZONE)
}

/// Waits until `node` serves a serial of the test zone that `want`s; returns it.
fn wait_node_serial(node: &Node, want: impl Fn(u32) -> bool, what: &str) -> u32 {
    wait_until(
        DEADLINE,
        || serial(node).is_some_and(&want),
        || {
            format!(
                "the node never served {what}; it serves {:?}\n{}",
                serial(node),
                node.log()
            )
        },
    );
    serial(node).expect("just seen")
}

fn key_block(key: &TsigKey) -> String {
    format!(
        "[[key]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n",
        key.name, key.algorithm, key.secret
    )
}

/// `dig` of an AXFR of the zone from `server` signed with `key` (`None`: unsigned): its
/// output.
fn dig_axfr(server: SocketAddr, key: Option<&TsigKey>) -> String {
    let mut command = Command::new("dig");
    if let Some(key) = key {
        command.args([
            "-y",
            &format!("{}:{}:{}", key.algorithm, key.name, key.secret),
        ]);
    }
    let output = command
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            ZONE,
            "AXFR",
        ])
        .output()
        .expect("dig is installed by scripts/test");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `text` without terminal colour codes (ESC [ … m).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines of the node's log of transfers signed with `key`, as `answer=…` words.
fn transfers_with_key(log: &str, key: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter(|line| {
            line.contains("zone transfer sent") && line.contains(&format!("key=\"{key}\""))
        })
        .filter_map(|line| {
            let at = line.find("answer=")?;
            Some(line[at + 7..].split_whitespace().next()?.to_string())
        })
        .collect()
}

#[test]
fn nsd_knot_and_bind_transfer_a_nodes_zone_follow_its_changes_by_ixfr_and_its_rollback() {
    // One key per secondary, so the node's log tells their transfers apart.
    let kinds = [
        (Kind::Nsd, "nsd-key"),
        (Kind::Knot, "knot-key"),
        (Kind::Bind, "bind-key"),
    ];
    let keys: Vec<TsigKey> = kinds
        .iter()
        .map(|(_, name)| TsigKey::new(name, "hmac-sha256"))
        .collect();
    let ports: Vec<u16> = kinds.iter().map(|_| free_port()).collect();
    let mut blocks: String = keys.iter().map(key_block).collect();
    blocks.push_str(&format!(
        "[[zone]]\nname = \"{ZONE}\"\nfile = \"xfr.test.zone\"\nallow_transfer = [\n"
    ));
    for key in &keys {
        blocks.push_str(&format!(
            "  {{ from = \"127.0.0.0/8\", key = \"{}\" }},\n",
            key.name
        ));
    }
    blocks.push_str("]\nnotify = [\n");
    for (key, port) in keys.iter().zip(&ports) {
        blocks.push_str(&format!(
            "  {{ address = \"127.0.0.1:{port}\", key = \"{}\" }},\n",
            key.name
        ));
    }
    blocks.push_str("]\n");
    let node = Node::start(&blocks, &[("xfr.test.zone", zone_text(2026120301, ""))]);
    let first = wait_node_serial(&node, |_| true, "the zone");

    let secondaries: Vec<_> = kinds
        .iter()
        .zip(&keys)
        .zip(&ports)
        .map(|(((kind, _), key), port)| {
            (
                *kind,
                start_secondary_on(*kind, ZONE, node.dns, Some(key), *port),
            )
        })
        .collect();
    for (kind, secondary) in &secondaries {
        let took = wait_serial(secondary, ZONE, first, DEADLINE);
        println!("{kind:?}: first transfer served after {took:?}");
        assert_same_answers(node.dns, secondary.addr, &format!("{kind:?}"), &[]);
    }

    // A 1 % change through the operator path: 20 new names and a second address on 20 hosts.
    let mut extra = String::new();
    let mut changed = Vec::new();
    for index in 0..10 {
        extra.push_str(&format!("new{index} IN A 192.0.2.{}\n", 100 + index));
        changed.push(format!("new{index}.{ZONE}"));
        extra.push_str(&format!("host{index} IN A 10.9.9.{index}\n"));
        changed.push(format!("host{index}.{ZONE}"));
    }
    std::fs::write(node.path("change.zone"), zone_text(first, &extra)).expect("write the change");
    node.cli(&[
        "apply",
        ZONE,
        node.path("change.zone").to_str().unwrap(),
        "--reason",
        "1 % change",
    ]);
    let changed_serial = wait_node_serial(&node, |serial| serial != first, "the change");
    for (kind, secondary) in &secondaries {
        let took = wait_serial(secondary, ZONE, changed_serial, DEADLINE);
        println!("{kind:?}: the change served after {took:?}");
        assert_same_answers(node.dns, secondary.addr, &format!("{kind:?}"), &changed);
    }
    // How each secondary got it: the node's log (signed with that secondary's key), and the
    // secondary's own log where it says (Knot and BIND; NSD 4.6 does not log the type).
    for ((kind, key_name), (_, secondary)) in kinds.iter().zip(&secondaries) {
        let answers = transfers_with_key(&node.log(), key_name);
        assert!(
            answers.iter().any(|answer| answer.starts_with("Ixfr")),
            "{kind:?} did not get an incremental transfer: {answers:?}\n{}",
            node.log()
        );
        if *kind != Kind::Nsd {
            // Its log line may follow its serving the version by a moment.
            wait_until(
                DEADLINE,
                || last_transfer_kind(secondary, ZONE) == Some("IXFR"),
                || format!("{kind:?} logged no IXFR:\n{}", secondary.log_text()),
            );
        }
    }

    // A rollback to the first version: its content, under a higher serial.
    node.cli(&[
        "rollback",
        ZONE,
        "--to",
        "1",
        "--reason",
        "back to the first version",
    ]);
    let rolled_back = wait_node_serial(
        &node,
        |serial| model::serial::is_after(serial, changed_serial),
        "the rollback",
    );
    assert_eq!(
        answer(node.dns, &format!("new0.{ZONE}"), RecordType::A).0,
        ResponseCode::NXDomain
    );
    for (kind, secondary) in &secondaries {
        wait_serial(secondary, ZONE, rolled_back, DEADLINE);
        assert_same_answers(node.dns, secondary.addr, &format!("{kind:?}"), &changed);
    }

    // Nothing of the zone without the right key.
    let unsigned = tcp_exchange(node.dns, &query(ZONE, RecordType::AXFR, None)).expect("an answer");
    assert_eq!(unsigned.metadata.response_code, ResponseCode::Refused);
    assert!(unsigned.answers.is_empty());
    let wrong = TsigKey::new("nsd-key", "hmac-sha256");
    let output = dig_axfr(node.dns, Some(&wrong));
    assert!(
        !output.contains("host1."),
        "a wrongly signed AXFR got records:\n{output}"
    );
    assert!(
        output.contains("Transfer failed") || output.contains("BADSIG"),
        "{output}"
    );
    let output = dig_axfr(node.dns, Some(&keys[0]));
    assert!(
        output.contains(&format!("host1.{ZONE}")),
        "the right key transfers:\n{output}"
    );
}

/// A zone file for the BIND primary: the test zone with `www` as given.
fn primary_zone(serial: u32, www: &[&str], extra: &str) -> String {
    let mut text = format!(
        "$ORIGIN {ZONE}\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    for address in www {
        text.push_str(&format!("www IN A {address}\n"));
    }
    text.push_str(extra);
    text
}

fn www(server: SocketAddr) -> BTreeSet<String> {
    udp_exchange(
        server,
        &query(&format!("www.{ZONE}"), RecordType::A, Some(1232)),
        Duration::from_secs(2),
    )
    .map(|reply| {
        reply
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                hickory_proto::rr::RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the primary's zone file");
}

/// A node as the guarded secondary of a BIND primary (TSIG) whose zone file holds
/// `primary_zone(10, www …)`, `www` protected with a floor of 1; `validator` is the node's
/// `[validator]` block (may be empty). Returns once the node serves serial 10.
struct BindAndNode {
    _files: tempfile::TempDir,
    zone_file: std::path::PathBuf,
    node: Node,
    primary: common::Process,
}

fn bind_primary_and_secondary_node(validator: &str) -> BindAndNode {
    let key = TsigKey::new("primary-key", "hmac-sha256");
    let files = tempfile::tempdir().expect("temporary directory");
    let zone_file = files.path().join("xfr.test.zone");
    write(
        &zone_file,
        &primary_zone(10, &["192.0.2.10", "192.0.2.11"], ""),
    );
    let node_port = free_port();
    let primary_port = free_port();
    // The node first: the primary's NOTIFY at load then finds it.
    let blocks = format!(
        "{validator}{}[[zone]]\nname = \"{ZONE}\"\nprimary = \"127.0.0.1:{primary_port}\"\n\
         primary_key = \"{}\"\nprotect = [{{ name = \"www.{ZONE}\", min_answers = 1 }}]\n",
        key_block(&key),
        key.name
    );
    let node = Node::start_on(&blocks, &[], node_port);
    let primary = start_primary_on(
        Kind::Bind,
        ZONE,
        &zone_file,
        &[node.dns],
        Some(&key),
        primary_port,
    );
    wait_node_serial(&node, |serial| serial == 10, "the primary's first version");
    BindAndNode {
        _files: files,
        zone_file,
        node,
        primary,
    }
}

#[test]
fn a_node_as_the_secondary_of_bind_serves_a_normal_change_and_refuses_one_that_empties_a_protected_name(
) {
    let BindAndNode {
        _files,
        zone_file,
        node,
        primary,
    } = bind_primary_and_secondary_node("");
    assert_eq!(
        www(node.dns),
        BTreeSet::from(["192.0.2.10".into(), "192.0.2.11".into()])
    );

    // A normal change: a new name.
    write(
        &zone_file,
        &primary_zone(11, &["192.0.2.10", "192.0.2.11"], "api IN A 192.0.2.80\n"),
    );
    reload_primary(Kind::Bind, &primary, ZONE);
    wait_node_serial(&node, |serial| serial == 11, "the normal change");
    assert_eq!(
        answer(node.dns, &format!("api.{ZONE}"), RecordType::A)
            .1
            .len(),
        1
    );
    assert_eq!(node.status()["primary"]["serial"], 11);

    // A change that empties the protected name: refused, the last good version serves.
    write(&zone_file, &primary_zone(12, &[], "api IN A 192.0.2.80\n"));
    reload_primary(Kind::Bind, &primary, ZONE);
    wait_until(
        DEADLINE,
        || node.status()["breaker"] == "tripped",
        || {
            format!(
                "the breaker never tripped: {}\n{}",
                node.status(),
                node.log()
            )
        },
    );
    let status = node.status();
    assert_eq!(status["primary"]["serial"], 12, "{status}");
    assert_eq!(status["serial"], 11, "{status}");
    assert_eq!(serial(&node), Some(11));
    assert_eq!(
        www(node.dns),
        BTreeSet::from(["192.0.2.10".into(), "192.0.2.11".into()])
    );
    let last = status["primary"]["last_transfer"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last.contains("refused by the guard") && last.contains(&format!("below floor: www.{ZONE}")),
        "{status}"
    );
    // An operator change on the secondary is held to the same protected names.
    std::fs::write(node.path("empty-www.zone"), primary_zone(13, &[], "")).expect("write");
    let refused = Command::new(env!("CARGO_BIN_EXE_dnsward"))
        .args([
            "apply",
            ZONE,
            node.path("empty-www.zone").to_str().unwrap(),
            "--reason",
            "try",
        ])
        .args(["--api", &node.api, "--config"])
        .arg(node.path("dnsward.toml"))
        .output()
        .expect("run dnsward apply");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains(&format!("below floor: www.{ZONE}")),
        "an operator apply emptying a protected name of a secondary zone is refused: {said}"
    );
    let audit = node.cli(&["timeline", "--zone", ZONE]);
    assert!(
        audit.contains("www") && audit.contains("transfer from"),
        "the audit log says why:\n{audit}"
    );
}

/// Multi-region, first shape: one region's node is the primary of another region's node,
/// a guarded secondary (any other secondary works the same way; see the NSD/Knot/BIND test).
#[test]
fn a_node_in_another_region_follows_a_primary_node_by_ixfr_and_keeps_its_own_guard() {
    let key = TsigKey::new("region-key", "hmac-sha256");
    let secondary_port = free_port();
    let primary_blocks = format!(
        "{}[[zone]]\nname = \"{ZONE}\"\nfile = \"xfr.test.zone\"\n\
         allow_transfer = [{{ from = \"127.0.0.0/8\", key = \"{}\" }}]\n\
         notify = [{{ address = \"127.0.0.1:{secondary_port}\", key = \"{}\" }}]\n",
        key_block(&key),
        key.name,
        key.name
    );
    let primary = Node::start(
        &primary_blocks,
        &[("xfr.test.zone", zone_text(2026120301, ""))],
    );
    let first = wait_node_serial(&primary, |_| true, "the zone");
    let secondary_blocks = format!(
        "{}[[zone]]\nname = \"{ZONE}\"\nprimary = \"{}\"\nprimary_key = \"{}\"\n\
         protect = [{{ name = \"www.{ZONE}\", min_answers = 2 }}]\n",
        key_block(&key),
        primary.dns,
        key.name
    );
    let secondary = Node::start_on(&secondary_blocks, &[], secondary_port);
    wait_node_serial(&secondary, |serial| serial == first, "the primary's zone");
    assert_same_answers(primary.dns, secondary.dns, "the secondary node", &[]);

    let mut extra = String::new();
    let mut changed = Vec::new();
    for index in 0..20 {
        extra.push_str(&format!("new{index} IN A 192.0.2.{}\n", 100 + index));
        changed.push(format!("new{index}.{ZONE}"));
    }
    std::fs::write(primary.path("change.zone"), zone_text(first, &extra)).expect("write");
    primary.cli(&[
        "apply",
        ZONE,
        primary.path("change.zone").to_str().unwrap(),
        "--reason",
        "20 new names",
    ]);
    let changed_serial = wait_node_serial(&primary, |serial| serial != first, "the change");
    wait_node_serial(&secondary, |serial| serial == changed_serial, "the change");
    assert_same_answers(primary.dns, secondary.dns, "the secondary node", &changed);
    let status = secondary.status();
    assert_eq!(status["primary"]["serial"], changed_serial, "{status}");
    let last = status["primary"]["last_transfer"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last.starts_with("IXFR from the primary") && last.ends_with("committed"),
        "{status}"
    );
    assert!(
        transfers_with_key(&primary.log(), "region-key")
            .iter()
            .any(|answer| answer.starts_with("Ixfr")),
        "the change went by IXFR:\n{}",
        primary.log()
    );
    assert_eq!(status["breaker"], "closed", "{status}");
}

/// Multi-region, second shape: independent regional planes (each its own store, planner
/// and guard) whose validators also ask each other's servers. What one region finds on the
/// other's server is reported in its own audit log and never repaired: its own zone is not
/// rolled back, frozen or changed.
#[test]
fn independent_regions_report_each_others_violations_and_repair_only_their_own() {
    const APP: &str = "app.example.test.";
    let backends = ["127.0.9.1", "127.0.9.2", "127.0.9.3"];
    let endpoint = format!(
        "[[endpoint]]\nname = \"{APP}\"\nttl = 5\nmin_answers = 1\nbackends = [{}]\n",
        backends
            .iter()
            .map(|address| format!("{{ address = \"{address}\" }}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let example = std::fs::read_to_string(common::example_zone()).expect("example zone");
    let zone = "[[zone]]\nname = \"example.test\"\nfile = \"example.test.zone\"\n";
    let east = Node::start(
        &format!("{zone}{endpoint}"),
        &[("example.test.zone", example.clone())],
    );
    let west = Node::start(
        &format!(
            "[validator]\ninterval_ms = 200\nservers = [\"{}\"]\n{zone}{endpoint}",
            east.dns
        ),
        &[("example.test.zone", example.clone())],
    );
    let all: BTreeSet<String> = backends.iter().map(|address| address.to_string()).collect();
    for node in [&east, &west] {
        wait_until(
            DEADLINE,
            || common::dig(node.dns, APP).as_ref() == Some(&all),
            || format!("{APP} never answered its backends\n{}", node.log()),
        );
    }
    let west_before = west.status();

    // East drains the endpoint on purpose, below its floor (an operator override).
    std::fs::write(east.path("drained.zone"), &example).expect("write");
    east.cli(&[
        "apply",
        "example.test",
        east.path("drained.zone").to_str().unwrap(),
        "--reason",
        "drain app",
        "--force",
        "east maintenance",
    ]);
    wait_until(
        DEADLINE,
        || common::dig(east.dns, APP) == Some(BTreeSet::new()),
        || format!("east never served the drained endpoint\n{}", east.log()),
    );

    // West's validator reports east's server, and repairs nothing of its own.
    let reported = || {
        west.audit("example.test").iter().any(|entry| {
            entry["action"] == "validator-finding"
                && entry["reason"].as_str().is_some_and(|reason| {
                    reason.contains(&east.dns.to_string()) && reason.contains("app.example.test")
                })
        })
    };
    wait_until(DEADLINE, reported, || {
        format!(
            "west never reported east's empty endpoint:\n{:#?}\n{}",
            west.audit("example.test"),
            west.log()
        )
    });
    let west_after = west.status();
    assert_eq!(
        west_after["active"], west_before["active"],
        "west's zone did not move: {west_after}"
    );
    assert_eq!(west_after["breaker"], "closed", "{west_after}");
    assert_eq!(
        common::dig(west.dns, APP).as_ref(),
        Some(&all),
        "west still answers its backends"
    );
    assert!(
        !west
            .audit("example.test")
            .iter()
            .any(|entry| entry["action"] == "rollback" || entry["action"] == "breaker-trip"),
        "west repaired nothing"
    );
}

/// The differential test's query set (`tests/common/queries.rs`) over the example zone,
/// transferred to NSD, Knot and BIND: each secondary answers every query with the node's
/// rcode and answer section.
#[test]
fn secondaries_answer_the_differential_query_set_like_the_node() {
    const EXAMPLE: &str = "example.test.";
    let key = TsigKey::new("xfr-key", "hmac-sha256");
    let blocks = format!(
        "{}[[zone]]\nname = \"{EXAMPLE}\"\nfile = \"example.test.zone\"\n\
         allow_transfer = [{{ from = \"127.0.0.0/8\", key = \"{}\" }}]\n",
        key_block(&key),
        key.name
    );
    let example = std::fs::read_to_string(common::example_zone()).expect("example zone");
    let node = Node::start(&blocks, &[("example.test.zone", example)]);
    wait_until(
        DEADLINE,
        || soa_serial(node.dns, EXAMPLE).is_some(),
        || format!("the node never served {EXAMPLE}\n{}", node.log()),
    );
    let serial = soa_serial(node.dns, EXAMPLE).expect("served");
    let comparable = |reply: (ResponseCode, BTreeSet<String>)| {
        (
            reply.0,
            reply
                .1
                .into_iter()
                .map(|line| line.to_ascii_lowercase())
                .collect::<BTreeSet<_>>(),
        )
    };
    for kind in Kind::ALL {
        let secondary = common::secondaries::start_secondary(kind, EXAMPLE, node.dns, Some(&key));
        wait_serial(&secondary, EXAMPLE, serial, DEADLINE);
        let differ = || {
            let mut differ = Vec::new();
            for (name, rtype) in common::queries::EXAMPLE_QUERIES {
                if !name.ends_with(EXAMPLE) {
                    continue; // outside the zone: what a server says there is its own affair
                }
                let ours = comparable(answer(node.dns, name, *rtype));
                let mut theirs = comparable(answer(secondary.addr, name, *rtype));
                // BIND answers a CNAME loop with the same records and SERVFAIL; dnsward, NSD
                // and Knot with NOERROR (RFC 1034 leaves it open). Only the rcode may differ.
                if kind == Kind::Bind
                    && name.starts_with("loop")
                    && theirs.0 == ResponseCode::ServFail
                {
                    theirs.0 = ours.0;
                }
                if ours != theirs {
                    differ.push(format!(
                        "{name} {rtype}: node {ours:?} / {kind:?} {theirs:?}"
                    ));
                }
            }
            differ
        };
        // Polled: a secondary that has just loaded the zone may answer a query or two from
        // its previous state (NSD's old server process serves until it exits).
        wait_until(
            DEADLINE,
            || differ().is_empty(),
            || format!("{kind:?} answers differently:\n{}", differ().join("\n")),
        );
    }
}

/// In canary mode a transferred version is a canary first: the validator asks it over the
/// canary listener and promotes it; only then is it served.
#[test]
fn in_canary_mode_a_transferred_version_is_served_after_the_validator_passes_it() {
    let canary_port = free_port();
    let BindAndNode {
        _files,
        zone_file,
        node,
        primary,
    } = bind_primary_and_secondary_node(&format!(
        "[validator]\ncanary = true\ncanary_listen = \"127.0.0.1:{canary_port}\"\n\
         good_after_ms = 500\ninterval_ms = 200\n"
    ));

    write(
        &zone_file,
        &primary_zone(11, &["192.0.2.10", "192.0.2.11"], "api IN A 192.0.2.80\n"),
    );
    reload_primary(Kind::Bind, &primary, ZONE);
    wait_node_serial(&node, |serial| serial == 11, "the change, once promoted");
    let audit = node.audit(ZONE);
    let canary_by_transfer = audit.iter().find(|entry| {
        entry["action"] == "canary-move"
            && entry["actor"]
                .as_str()
                .is_some_and(|actor| actor.starts_with("transfer from"))
            && entry["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("(serial 11)"))
    });
    let promoted_by_validator = canary_by_transfer.is_some_and(|canary| {
        audit.iter().any(|entry| {
            entry["actor"] == "validator"
                && entry["action"] == "ref-move"
                && entry["to"] == canary["to"]
                && entry["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("passed validation"))
        })
    });
    assert!(
        promoted_by_validator,
        "the transfer went to the canary and the validator promoted it:\n{audit:#?}"
    );
    assert_eq!(node.status()["breaker"], "closed");
}

/// `kill -HUP` takes new keys and `allow_transfer` rules: a secondary added to the
/// configuration can transfer without a restart.
#[test]
fn a_reload_lets_a_newly_configured_secondary_transfer() {
    let old = TsigKey::new("old-key", "hmac-sha256");
    let new = TsigKey::new("new-key", "hmac-sha512");
    let zone_block = |keys: &[&TsigKey]| {
        let blocks: String = keys.iter().map(|key| key_block(key)).collect();
        let rules: Vec<String> = keys
            .iter()
            .map(|key| format!("{{ from = \"127.0.0.0/8\", key = \"{}\" }}", key.name))
            .collect();
        format!(
            "{blocks}[[zone]]\nname = \"{ZONE}\"\nfile = \"xfr.test.zone\"\nallow_transfer = [{}]\n",
            rules.join(", ")
        )
    };
    let node = Node::start(&zone_block(&[&old]), &[("xfr.test.zone", zone_text(7, ""))]);
    wait_node_serial(&node, |_| true, "the zone");
    assert!(dig_axfr(node.dns, Some(&old)).contains(&format!("host1.{ZONE}")));
    assert!(
        !dig_axfr(node.dns, Some(&new)).contains(&format!("host1.{ZONE}")),
        "not yet"
    );

    let config = node.path("dnsward.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let head = &text[..text.find("[[key]]").expect("the key block")];
    std::fs::write(&config, format!("{head}{}", zone_block(&[&old, &new]))).expect("write");
    let hangup = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hangup.success());
    wait_until(
        DEADLINE,
        || dig_axfr(node.dns, Some(&new)).contains(&format!("host1.{ZONE}")),
        || {
            format!(
                "the new key never transferred after the reload\n{}",
                node.log()
            )
        },
    );
    assert!(
        dig_axfr(node.dns, Some(&old)).contains(&format!("host1.{ZONE}")),
        "the old key still does"
    );
}

/// A secondary zone whose primary cannot be reached is listed by `status` from the start,
/// with its primary and why the transfer fails, and is not served.
#[test]
fn status_lists_a_secondary_zone_whose_primary_is_unreachable() {
    let nobody = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let node = Node::start(
        &format!("[[zone]]\nname = \"{ZONE}\"\nprimary = \"{nobody}\"\n"),
        &[],
    );
    wait_until(
        DEADLINE,
        || node.status()["primary"]["last_error"].is_string(),
        || {
            format!(
                "status never said why the zone is not transferred: {}\n{}",
                node.status(),
                node.log()
            )
        },
    );
    let status = node.status();
    assert_eq!(status["zone"], ZONE, "{status}");
    assert_eq!(status["primary"]["address"], nobody.to_string(), "{status}");
    assert!(
        status["serial"].is_null() && status["primary"]["serial"].is_null(),
        "{status}"
    );
    assert!(
        status["primary"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains(&nobody.to_string()),
        "{status}"
    );
    assert_eq!(serial(&node), None, "nothing is served");
    let table = node.cli(&["status"]);
    assert!(
        table.contains(&format!("primary {nobody}: not reached yet")),
        "{table}"
    );
}
