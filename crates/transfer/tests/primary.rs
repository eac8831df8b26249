//! The primary answers transfer requests from a real store and served snapshots; each reply
//! is parsed as a secondary would (hickory-proto), signed replies verified with `domain`'s
//! TSIG client sequence.

use std::net::IpAddr;
use std::sync::Arc;

use domain::base::iana::{Rcode, Rtype};
use domain::base::{Message as WireMessage, MessageBuilder, Name as WireName, Serial, Ttl};
use domain::rdata::tsig::Time48;
use domain::rdata::Soa;
use domain::tsig::{ClientSequence, Key};
use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use model::{Generation, RefName, ZoneContent};
use server::{Catalog, ZoneSnapshot};
use store::contract::fixtures;
use store::{SqliteStore, Store};
use transfer::{AllowTransfer, Answer, KeyConfig, Keys, Primary, ZoneTransfers};

const ZONE: &str = "xfr.test.";
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==";
const OTHER_SECRET: &str = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItMzI=";

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    catalog: Catalog,
    serials: Vec<u32>,
}

impl Setup {
    /// A zone of `hosts` hosts committed as version 1, then one more version per entry of
    /// `changes` (each changes one host's address), the last one served.
    fn new(hosts: u32, changes: &[u32]) -> Setup {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(SqliteStore::open(dir.path().join("store.db")).expect("store"));
        let zone = fixtures::name(ZONE);
        let mut content = fixtures::content(ZONE, 1, hosts, 0);
        let mut serials = Vec::new();
        let mut commit = |content: &ZoneContent| -> Generation {
            let base = store.refs(&zone).expect("refs").active;
            let version = store
                .commit(fixtures::commit(content, base, RefName::Active))
                .expect("commit");
            serials.push(version.serial);
            version.generation
        };
        let mut served = commit(&content);
        for (step, host) in changes.iter().enumerate() {
            content.put_rrset(fixtures::host_set(ZONE, *host, step as u8 + 1));
            served = commit(&content);
        }
        let catalog = Catalog::new();
        let snapshot = ZoneSnapshot::build(&store.content(&zone, served).expect("content"), served);
        catalog.replace_zone(Arc::new(snapshot));
        Setup {
            _dir: dir,
            store,
            catalog,
            serials,
        }
    }

    fn primary(&self, rules: Vec<AllowTransfer>) -> Primary {
        let keys = Keys::new(&[key_config("xfr-key", SECRET)]).expect("keys");
        let store: Arc<dyn Store> = self.store.clone();
        Primary::new(
            store,
            keys,
            [(
                fixtures::name(ZONE),
                ZoneTransfers {
                    allow_transfer: rules,
                },
            )],
        )
    }
}

fn key_config(name: &str, secret: &str) -> KeyConfig {
    KeyConfig {
        name: name.into(),
        algorithm: "hmac-sha256".into(),
        secret: secret.into(),
    }
}

fn key(secret: &str) -> Key {
    transfer::keys::key(&key_config("xfr-key", secret)).expect("key")
}

fn loopback_rule(key: Option<&str>) -> Vec<AllowTransfer> {
    vec![AllowTransfer::parse("127.0.0.0/8", key).expect("rule")]
}

fn localhost() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// An AXFR or IXFR request (IXFR with `serial` in its authority section), signed when a
/// key is given (with the client sequence that verifies the answers).
fn request(
    rtype: Rtype,
    serial: Option<u32>,
    key: Option<Key>,
) -> (Vec<u8>, Option<ClientSequence<Key>>) {
    let zone = WireName::<Vec<u8>>::from_chars(ZONE.chars()).expect("zone name");
    let mut builder = MessageBuilder::new_vec();
    builder.header_mut().set_id(4242);
    let mut question = builder.question();
    question.push((&zone, rtype)).expect("question");
    let mut authority = question.authority();
    if let Some(serial) = serial {
        let soa = Soa::new(
            zone.clone(),
            zone.clone(),
            Serial(serial),
            Ttl::from_secs(1),
            Ttl::from_secs(1),
            Ttl::from_secs(1),
            Ttl::from_secs(1),
        );
        authority.push((&zone, 3600, soa)).expect("authority");
    }
    let mut additional = authority.additional();
    let sequence =
        key.map(|key| ClientSequence::request(key, &mut additional, Time48::now()).expect("sign"));
    (additional.finish(), sequence)
}

/// The reply messages of one request.
fn ask(
    primary: &Primary,
    setup: &Setup,
    bytes: &[u8],
    peer: IpAddr,
) -> (Option<Answer>, Vec<Vec<u8>>) {
    let mut messages = Vec::new();
    let zones = setup.catalog.snapshot();
    let answer = primary
        .answer(bytes, peer, &zones, &mut |message| {
            messages.push(message);
            true
        })
        .map(|(answer, _)| answer);
    (answer, messages)
}

fn records(messages: &[Vec<u8>]) -> Vec<hickory_proto::rr::Record> {
    messages
        .iter()
        .flat_map(|bytes| Message::from_vec(bytes).expect("reply parses").answers)
        .collect()
}

fn serial_of(record: &hickory_proto::rr::Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

#[test]
fn an_axfr_sends_the_soa_every_record_and_the_soa_again_in_messages_near_16_kib() {
    let setup = Setup::new(3_000, &[]);
    let primary = setup.primary(loopback_rule(None));
    let (bytes, _) = request(Rtype::AXFR, None, None);
    let (answer, messages) = ask(&primary, &setup, &bytes, localhost());
    assert_eq!(answer, Some(Answer::Axfr));
    assert!(messages.len() > 2, "3,000 records take several messages");
    for message in &messages {
        assert!(
            message.len() <= transfer::MESSAGE_SOFT_BYTES + 300,
            "{} bytes",
            message.len()
        );
        let parsed = Message::from_vec(message).expect("parses");
        assert!(parsed.metadata.authoritative, "AA set");
        assert_eq!(parsed.metadata.id, 4242);
    }
    let records = records(&messages);
    assert_eq!(records.len(), 3_000 + 2 + 1, "hosts, NS, and the SOA twice");
    assert_eq!(serial_of(&records[0]), Some(setup.serials[0]));
    assert_eq!(serial_of(records.last().unwrap()), Some(setup.serials[0]));
    assert_eq!(
        records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count(),
        2
    );
}

#[test]
fn an_ixfr_sends_only_what_changed_since_the_clients_serial_condensed() {
    // Versions: 1 (all hosts variant 0), 2 (host8 → 1), 3 (host9 → 2), 4 (host8 → 3).
    let setup = Setup::new(100, &[8, 9, 8]);
    let primary = setup.primary(loopback_rule(None));
    let (bytes, _) = request(Rtype::IXFR, Some(setup.serials[0]), None);
    let (answer, messages) = ask(&primary, &setup, &bytes, localhost());
    assert_eq!(
        answer,
        Some(Answer::Ixfr {
            from: setup.serials[0]
        })
    );
    let records = records(&messages);
    let newest = setup.serials[3];
    let serials: Vec<Option<u32>> = records.iter().map(serial_of).collect();
    let text: Vec<String> = records.iter().map(ToString::to_string).collect();
    // SOA new, SOA old, deleted (host8 v0, host9 v0), SOA new, added (host8 v3, host9 v2), SOA new.
    assert_eq!(records.len(), 8, "{text:#?}");
    assert_eq!(serials[0], Some(newest));
    assert_eq!(serials[1], Some(setup.serials[0]));
    assert_eq!(serials[4], Some(newest));
    assert_eq!(serials[7], Some(newest));
    let address = |record: &hickory_proto::rr::Record| match &record.data {
        RData::A(a) => (record.name.to_ascii(), a.0.octets()[1]),
        other => panic!("not an A record: {other:?}"),
    };
    let mut deleted: Vec<_> = records[2..4].iter().map(address).collect();
    let mut added: Vec<_> = records[5..7].iter().map(address).collect();
    deleted.sort();
    added.sort();
    assert_eq!(
        deleted,
        vec![("host8.xfr.test.".into(), 0), ("host9.xfr.test.".into(), 0)]
    );
    assert_eq!(
        added,
        vec![("host8.xfr.test.".into(), 3), ("host9.xfr.test.".into(), 2)]
    );
}

#[test]
fn an_ixfr_from_a_serial_the_store_does_not_know_sends_the_whole_zone() {
    let setup = Setup::new(50, &[1]);
    let primary = setup.primary(loopback_rule(None));
    let unknown = setup.serials[0].wrapping_sub(10);
    let (bytes, _) = request(Rtype::IXFR, Some(unknown), None);
    let (answer, messages) = ask(&primary, &setup, &bytes, localhost());
    assert_eq!(answer, Some(Answer::IxfrWholeZone { from: unknown }));
    let records = records(&messages);
    assert_eq!(records.len(), 50 + 2 + 1);
    assert_eq!(
        serial_of(&records[1]),
        None,
        "AXFR form: the second record is not an SOA"
    );
}

#[test]
fn an_ixfr_from_the_served_serial_gets_the_soa_alone() {
    let setup = Setup::new(10, &[1]);
    let primary = setup.primary(loopback_rule(None));
    let (bytes, _) = request(Rtype::IXFR, Some(setup.serials[1]), None);
    let (answer, messages) = ask(&primary, &setup, &bytes, localhost());
    assert_eq!(answer, Some(Answer::UpToDate));
    let records = records(&messages);
    assert_eq!(records.len(), 1);
    assert_eq!(serial_of(&records[0]), Some(setup.serials[1]));
}

fn rcode_of(messages: &[Vec<u8>]) -> u16 {
    assert_eq!(messages.len(), 1, "one error message");
    let message = WireMessage::from_octets(messages[0].clone()).expect("parses");
    message.header().rcode().to_int().into()
}

#[test]
fn a_transfer_no_rule_allows_is_refused() {
    let setup = Setup::new(10, &[]);
    let (bytes, _) = request(Rtype::AXFR, None, None);
    for (rules, peer) in [
        (vec![], localhost()),
        (
            vec![AllowTransfer::parse("192.0.2.0/24", None).unwrap()],
            localhost(),
        ),
        (loopback_rule(Some("xfr-key")), localhost()),
    ] {
        let primary = setup.primary(rules.clone());
        let (answer, messages) = ask(&primary, &setup, &bytes, peer);
        assert_eq!(answer, Some(Answer::Refused(Rcode::REFUSED)), "{rules:?}");
        assert_eq!(rcode_of(&messages), u16::from(Rcode::REFUSED.to_int()));
    }
}

#[test]
fn a_signed_transfer_is_signed_in_every_message_and_a_wrong_key_gets_notauth() {
    let setup = Setup::new(3_000, &[]);
    let primary = setup.primary(loopback_rule(Some("xfr-key")));
    let (bytes, sequence) = request(Rtype::AXFR, None, Some(key(SECRET)));
    let (answer, messages) = ask(&primary, &setup, &bytes, localhost());
    assert_eq!(answer, Some(Answer::Axfr));
    assert!(messages.len() > 2);
    let mut sequence = sequence.expect("signed");
    for message in &messages {
        let mut parsed = WireMessage::from_octets(message.clone()).expect("parses");
        sequence
            .answer(&mut parsed, Time48::now())
            .expect("every message verifies against the key");
    }
    sequence.done().expect("the sequence ends signed");

    let (wrong, _) = request(Rtype::AXFR, None, Some(key(OTHER_SECRET)));
    let (answer, messages) = ask(&primary, &setup, &wrong, localhost());
    assert_eq!(answer, Some(Answer::Refused(Rcode::NOTAUTH)));
    assert_eq!(rcode_of(&messages), u16::from(Rcode::NOTAUTH.to_int()));
    assert!(records(&messages).is_empty(), "nothing of the zone");
    let reply = WireMessage::from_octets(messages[0].clone()).expect("parses");
    let tsig = reply
        .additional()
        .expect("additional")
        .limit_to::<domain::rdata::tsig::Tsig<_, _>>()
        .next()
        .expect("a TSIG record")
        .expect("parses");
    assert_eq!(
        tsig.data().error(),
        domain::base::iana::TsigRcode::BADSIG,
        "RFC 8945 §5.2.2"
    );
    assert!(tsig.data().mac().is_empty(), "the error is not signed");
}
