//! A `dnsward serve --store` process loads each new version as a patch of the version it
//! serves (the names the commit recorded as changed). Its answers over UDP must equal
//! those of a second process that loaded the same version whole, for names changed,
//! deleted, added below new empty non-terminals and below a new cut.
//!
//! Every wait has a deadline; nothing sleeps blindly.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{query, start_dnsward, udp_exchange};
use hickory_proto::rr::rdata::{A, NS, SOA};
use model::{Name, Provenance, RData, Record, RecordType, RefName, ZoneContent};
use store::{Commit, SqliteStore, Store};

const ZONE: &str = "patch.test.";
const HOSTS: u32 = 3_000;
const DEADLINE: Duration = Duration::from_secs(30);

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("test names are valid")
}

fn a(owner: &str, last: u8) -> Record {
    Record::from_rdata(name(owner), 300, RData::A(A::new(192, 0, 2, last)))
}

fn first_version() -> ZoneContent {
    let mut records = vec![
        Record::from_rdata(
            name(ZONE),
            3600,
            RData::SOA(SOA::new(
                name("ns1.patch.test."),
                name("hostmaster.patch.test."),
                1,
                3600,
                600,
                86400,
                60,
            )),
        ),
        Record::from_rdata(name(ZONE), 3600, RData::NS(NS(name("ns1.patch.test.")))),
        a("ns1.patch.test.", 53),
        a("deep.a.b.patch.test.", 1),
    ];
    for host in 0..HOSTS {
        records.push(a(&format!("host{host}.patch.test."), (host % 200) as u8));
    }
    ZoneContent::from_records(name(ZONE), records).expect("valid zone")
}

/// host7 readdressed, deep.a.b deleted (its empty parents go), new.x.y added (its empty
/// parents appear), a delegation with glue added.
fn second_version(first: &ZoneContent) -> ZoneContent {
    let mut next = first.clone();
    next.remove_rrset(&name("host7.patch.test."), RecordType::A);
    next.remove_rrset(&name("deep.a.b.patch.test."), RecordType::A);
    for record in [
        a("host7.patch.test.", 250),
        a("new.x.y.patch.test.", 9),
        Record::from_rdata(
            name("sub.patch.test."),
            3600,
            RData::NS(NS(name("ns.sub.patch.test."))),
        ),
        a("ns.sub.patch.test.", 77),
    ] {
        next.insert(record).expect("valid record");
    }
    next
}

fn commit(store: &SqliteStore, content: &ZoneContent, base: Option<model::Generation>) {
    store
        .commit(Commit {
            content,
            base,
            target: RefName::Active,
            provenance: Provenance::Import,
            actor: "test",
            reason: "follow patches",
            now_ms: 1,
            automation: false,
        })
        .expect("commit");
}

/// Everything of an answer but its ID: rcode, flags and all sections.
fn answer(server: SocketAddr, qname: &str, qtype: RecordType) -> String {
    let reply = udp_exchange(
        server,
        &query(qname, qtype, Some(1232)),
        Duration::from_secs(1),
    )
    .unwrap_or_else(|error| panic!("{qname} {qtype} from {server}: {error}"));
    format!(
        "{:?} aa={} answers={:?} authority={:?} additional={:?}",
        reply.metadata.response_code,
        reply.metadata.authoritative,
        reply.answers,
        reply.authorities,
        reply.additionals
    )
}

#[test]
fn a_follower_that_patches_answers_like_one_that_loaded_the_version_whole() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).expect("open store");
    let first = first_version();
    commit(&store, &first, None);
    let path_text = path.display().to_string();
    let serve = ["serve", "--workers", "1", "--store", path_text.as_str()];
    let patching = start_dnsward(&serve, ZONE);

    let base = store.refs(&name(ZONE)).expect("refs").active;
    commit(&store, &second_version(&first), base);
    common::wait_until(
        DEADLINE,
        || answer(patching.addr, "host7.patch.test.", RecordType::A).contains("192.0.2.250"),
        || {
            format!(
                "the new version never reached the wire:\n{}",
                patching.log_text()
            )
        },
    );
    let whole = start_dnsward(&serve, ZONE);

    let questions = [
        ("patch.test.", RecordType::SOA),
        ("host7.patch.test.", RecordType::A),
        ("host8.patch.test.", RecordType::A),
        ("host8.patch.test.", RecordType::AAAA),
        ("deep.a.b.patch.test.", RecordType::A),
        ("a.b.patch.test.", RecordType::A),
        ("b.patch.test.", RecordType::A),
        ("new.x.y.patch.test.", RecordType::A),
        ("x.y.patch.test.", RecordType::A),
        ("y.patch.test.", RecordType::TXT),
        ("www.sub.patch.test.", RecordType::A),
        ("sub.patch.test.", RecordType::NS),
        ("nothing.patch.test.", RecordType::A),
    ];
    assert_same_answers(&patching, &whole, &questions, "the patched version");
    assert!(answer(patching.addr, "b.patch.test.", RecordType::A).starts_with("NXDomain"));
    assert!(answer(patching.addr, "x.y.patch.test.", RecordType::A).starts_with("NoError"));
    let log = patching.log_text();
    assert!(
        log.lines()
            .any(|line| line.contains("now serving") && line.contains("patch")),
        "the second version was not loaded as a patch:\n{log}"
    );

    // Once the second version's answers are encoded, a third version (one address
    // changed) is patched and keeps them: its answers are carried, not encoded again.
    wait_for_log(&patching, |line| {
        line.contains("answers pre-encoded") && line.contains("generation=2")
    });
    let mut third = second_version(&first);
    third.remove_rrset(&name("host8.patch.test."), RecordType::A);
    third
        .insert(a("host8.patch.test.", 251))
        .expect("valid record");
    let active = store.refs(&name(ZONE)).expect("refs").active;
    commit(&store, &third, active);
    wait_for_log(&patching, |line| {
        line.contains("answers carried") && line.contains("generation=3")
    });
    let whole = start_dnsward(&serve, ZONE);
    assert_same_answers(
        &patching,
        &whole,
        &questions,
        "the version with carried answers",
    );
    assert!(answer(patching.addr, "host8.patch.test.", RecordType::A).contains("192.0.2.251"));
}

/// Every question answered alike (rcode, flags, sections) by both processes.
fn assert_same_answers(
    ours: &common::Process,
    theirs: &common::Process,
    questions: &[(&str, RecordType)],
    what: &str,
) {
    for &(qname, qtype) in questions {
        assert_eq!(
            answer(ours.addr, qname, qtype),
            answer(theirs.addr, qname, qtype),
            "{qname} {qtype}: {what} answers differently"
        );
    }
}

/// The log without its colour escapes (`ESC [ ... m`).
fn plain_log(process: &common::Process) -> String {
    let mut plain = String::new();
    let mut chars = process.log_text().chars().collect::<Vec<_>>().into_iter();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for skipped in chars.by_ref() {
                if skipped == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Waits until a line of the process's log matches.
fn wait_for_log(process: &common::Process, matches: impl Fn(&str) -> bool) {
    common::wait_until(
        DEADLINE,
        || plain_log(process).lines().any(&matches),
        || format!("the expected log line never came:\n{}", process.log_text()),
    );
}
