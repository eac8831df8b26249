//! `dnsward resolve` against real upstreams (`dnsward serve`, NSD), asked with real `dig`:
//! serve-stale when the upstream dies, stale-on-empty when a name vanishes, and answers
//! relayed unchanged for names never seen.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{start_dnsward, start_dnsward_on, start_nsd, udp_exchange, Process, QUERY_TIMEOUT};
use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};

/// How long a condition the test waits for may take.
const CONDITION_DEADLINE: Duration = Duration::from_secs(15);

const ZONE: &str = "res.test";

/// A zone where every record lives one second, so the resolver re-asks quickly.
fn zone_text(serial: u32, with_app: bool) -> String {
    let mut text = format!(
        "$ORIGIN res.test.\n$TTL 1\n@ IN SOA ns.res.test. hostmaster.res.test. {serial} 60 60 600 1\n\
         @ IN NS ns.res.test.\nns IN A 192.0.2.1\n"
    );
    if with_app {
        text.push_str("app IN A 192.0.2.80\napp IN A 192.0.2.81\nfree IN A 192.0.2.90\n");
    }
    text
}

fn write_zone(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write zone file");
    path.display().to_string()
}

fn start_upstream(zone_file: &str, port: u16) -> Process {
    start_dnsward_on(&["serve", "--zone", zone_file], ZONE, port)
}

/// Starts `dnsward resolve` forwarding to `upstream`; ready once it answers for `zone`.
fn start_resolver(upstream: SocketAddr, zone: &str, extra: &[&str]) -> Process {
    let upstream = upstream.to_string();
    let mut args = vec!["resolve", "--upstream", upstream.as_str()];
    args.extend_from_slice(extra);
    start_dnsward(&args, zone)
}

/// What `dig` printed, reduced to what the tests judge.
#[derive(Debug)]
struct Dig {
    status: String,
    /// (TTL, record data) of the answer section, sorted by data.
    answers: Vec<(u32, String)>,
    /// The EDE line, e.g. "3 (Stale Answer): (stale-on-empty)".
    ede: Option<String>,
}

impl Dig {
    fn addresses(&self) -> Vec<&str> {
        self.answers.iter().map(|(_, data)| data.as_str()).collect()
    }

    fn is_stale_on_empty(&self) -> bool {
        self.ede
            .as_deref()
            .is_some_and(|ede| ede.contains("stale-on-empty"))
    }

    fn is_serve_stale(&self) -> bool {
        self.ede
            .as_deref()
            .is_some_and(|ede| ede.starts_with("3 ") && ede.contains("serve-stale"))
    }
}

fn dig(server: SocketAddr, name: &str, rtype: &str) -> Dig {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, rtype])
        .args(["+tries=1", "+time=5", "+nocookie"])
        .output()
        .expect("dig is installed by scripts/test");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .lines()
        .find_map(|line| line.split("status: ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{text}"))
        .to_string();
    let ede = text
        .lines()
        .find_map(|line| line.strip_prefix("; EDE: "))
        .map(str::to_string);
    let mut answers: Vec<(u32, String)> = text
        .lines()
        .skip_while(|line| !line.starts_with(";; ANSWER SECTION:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ttl = fields[1].parse().expect("TTL is a number");
            (ttl, fields[4..].join(" "))
        })
        .collect();
    answers.sort_by(|a, b| a.1.cmp(&b.1));
    Dig {
        status,
        answers,
        ede,
    }
}

/// Asks until `done` holds or the deadline passes; every answer on the way goes to `each`.
fn dig_until(
    server: SocketAddr,
    name: &str,
    mut each: impl FnMut(&Dig),
    done: impl Fn(&Dig) -> bool,
    what: &str,
    log: &dyn Fn() -> String,
) -> Dig {
    let deadline = Instant::now() + CONDITION_DEADLINE;
    loop {
        let answer = dig(server, name, "A");
        each(&answer);
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}; last {answer:?}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(process: &Process, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn when_the_upstream_stops_answering_stale_data_is_served() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let zone = write_zone(dir.path(), "res.test.zone", &zone_text(1, true));
    let upstream = start_upstream(&zone, common::free_port());
    let resolver = start_resolver(upstream.addr, ZONE, &[]);
    let good = dig(resolver.addr, "app.res.test", "A");
    assert_eq!(good.status, "NOERROR");
    assert_eq!(good.addresses(), ["192.0.2.80", "192.0.2.81"]);
    assert_eq!(good.ede, None);

    // A stopped process: datagrams are queued, never answered, so only timers help.
    signal(&upstream, "STOP");
    let stale = dig_until(
        resolver.addr,
        "app.res.test",
        |answer| {
            assert_eq!(answer.addresses(), ["192.0.2.80", "192.0.2.81"]);
        },
        Dig::is_serve_stale,
        "a stale answer",
        &|| resolver.log_text(),
    );
    assert_eq!(stale.status, "NOERROR");
    assert!(stale.answers.iter().all(|(ttl, _)| *ttl == 30), "{stale:?}");
    signal(&upstream, "CONT");
}

#[test]
fn when_the_upstream_is_killed_answers_continue_from_stale_data() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let zone = write_zone(dir.path(), "res.test.zone", &zone_text(1, true));
    let upstream = start_upstream(&zone, common::free_port());
    let resolver = start_resolver(upstream.addr, ZONE, &[]);
    assert_eq!(dig(resolver.addr, "app.res.test", "A").status, "NOERROR");
    drop(upstream);

    dig_until(
        resolver.addr,
        "app.res.test",
        |answer| {
            assert_eq!(answer.status, "NOERROR");
            assert_eq!(answer.addresses(), ["192.0.2.80", "192.0.2.81"]);
        },
        Dig::is_serve_stale,
        "a stale answer",
        &|| resolver.log_text(),
    );
    // Once the upstream is known dead, stale answers go out without waiting for it.
    dig_until(
        resolver.addr,
        "app.res.test",
        |answer| assert_eq!(answer.addresses(), ["192.0.2.80", "192.0.2.81"]),
        |answer| answer.is_serve_stale() && resolver.log_text().contains("upstream marked dead"),
        "the upstream marked dead",
        &|| resolver.log_text(),
    );
    // A name never cached has nothing stale to give: SERVFAIL, not silence.
    assert_eq!(dig(resolver.addr, "never.res.test", "A").status, "SERVFAIL");
}

#[test]
fn a_name_that_goes_empty_keeps_its_last_good_records_until_the_hold_ends() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let full = write_zone(dir.path(), "full.zone", &zone_text(1, true));
    let gone = write_zone(dir.path(), "gone.zone", &zone_text(2, false));
    let port = common::free_port();
    let upstream = start_upstream(&full, port);
    let resolver = start_resolver(
        upstream.addr,
        ZONE,
        &["--empty-hold", "2", "--allow-empty", "free.res.test"],
    );
    assert_eq!(
        dig(resolver.addr, "app.res.test", "A").addresses(),
        ["192.0.2.80", "192.0.2.81"]
    );
    assert_eq!(
        dig(resolver.addr, "free.res.test", "A").addresses(),
        ["192.0.2.90"]
    );

    // The upstream is replaced by one serving the zone without the names.
    drop(upstream);
    let _upstream = start_upstream(&gone, port);

    // A name allowed to go empty goes empty at once, never held.
    dig_until(
        resolver.addr,
        "free.res.test",
        |answer| assert!(!answer.is_stale_on_empty(), "{answer:?}"),
        |answer| answer.status == "NXDOMAIN",
        "NXDOMAIN for the name allowed to go empty",
        &|| resolver.log_text(),
    );

    let held = dig_until(
        resolver.addr,
        "app.res.test",
        |answer| assert!(answer.status == "NOERROR", "{answer:?}"),
        Dig::is_stale_on_empty,
        "the last good records held",
        &|| resolver.log_text(),
    );
    assert_eq!(held.addresses(), ["192.0.2.80", "192.0.2.81"]);
    assert!(
        held.answers.iter().all(|(ttl, _)| *ttl <= 2),
        "TTL within the hold: {held:?}"
    );

    let mut held_answers = 0;
    let empty = dig_until(
        resolver.addr,
        "app.res.test",
        |answer| {
            if answer.status == "NOERROR" {
                held_answers += 1;
                assert!(answer.is_stale_on_empty(), "{answer:?}");
                assert_eq!(answer.addresses(), ["192.0.2.80", "192.0.2.81"]);
            }
        },
        |answer| answer.status == "NXDOMAIN",
        "the empty answer accepted after the hold",
        &|| resolver.log_text(),
    );
    assert!(empty.answers.is_empty());
    assert!(held_answers > 0, "the hold lasted while we asked");
    let log = resolver.log_text();
    assert!(
        log.contains("stale-on-empty: upstream now says this name is empty"),
        "{log}"
    );
    assert!(
        log.contains("stale-on-empty: hold over; accepting the empty answer"),
        "{log}"
    );
}

/// The parts of an answer that must come through the resolver unchanged.
fn sections(message: &Message) -> (String, Vec<String>, Vec<String>) {
    let show = |records: &[Record]| -> Vec<String> {
        let mut shown: Vec<String> = records.iter().map(|record| record.to_string()).collect();
        shown.sort();
        shown
    };
    (
        format!("{:?}", message.metadata.response_code),
        show(&message.answers),
        show(&message.authorities),
    )
}

#[test]
fn names_never_seen_get_the_upstreams_answer_unchanged() {
    let nsd = start_nsd("example.test", &common::example_zone());
    let resolver = start_resolver(nsd.addr, "example.test", &[]);
    let questions = [
        ("www.example.test.", RecordType::A),
        ("www.example.test.", RecordType::AAAA),
        ("nothing.example.test.", RecordType::A),
        ("mail.example.test.", RecordType::TXT),
        ("example.test.", RecordType::MX),
        ("alias.example.test.", RecordType::A),
        ("text.example.test.", RecordType::TXT),
        ("hidden.sub.example.test.", RecordType::A),
    ];
    for (name, rtype) in questions {
        let query = common::query(name, rtype, Some(1232));
        let direct = udp_exchange(nsd.addr, &query, QUERY_TIMEOUT).expect("NSD answers");
        let relayed = udp_exchange(resolver.addr, &query, QUERY_TIMEOUT).expect("resolver answers");
        assert_eq!(relayed.metadata.id, query.metadata.id);
        assert_eq!(sections(&relayed), sections(&direct), "{name} {rtype}");
    }
    let big = common::query("big.example.test.", RecordType::TXT, None);
    let direct = common::tcp_exchange(nsd.addr, &big).expect("NSD answers over TCP");
    let relayed = common::tcp_exchange(resolver.addr, &big).expect("resolver answers over TCP");
    assert_eq!(sections(&relayed), sections(&direct), "over TCP");
    let www = dig(resolver.addr, "WWW.Example.Test", "A");
    assert_eq!(www.status, "NOERROR");
    assert_eq!(www.addresses(), ["192.0.2.10", "192.0.2.11"]);
}
