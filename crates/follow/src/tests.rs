use std::collections::BTreeMap;
use std::sync::Arc;

use model::{Generation, Name, Refs};
use server::{Catalog, ZoneSnapshot};
use store::Store;

use crate::sync::bring_forward;
use crate::{targets, zones_to_load, Encoder, Target};

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("test names are valid")
}

#[test]
fn only_zones_whose_active_generation_moved_are_loaded() {
    let active = BTreeMap::from([
        ("a.test.".to_string(), (name("a.test."), Generation(3))),
        ("b.test.".to_string(), (name("b.test."), Generation(5))),
        ("c.test.".to_string(), (name("c.test."), Generation(1))),
    ]);
    let served = BTreeMap::from([
        ("a.test.".to_string(), Generation(3)),
        ("b.test.".to_string(), Generation(4)),
    ]);
    let load = zones_to_load(&active, &served);
    assert_eq!(
        load,
        vec![
            (name("b.test."), Generation(5)),
            (name("c.test."), Generation(1))
        ]
    );
}

/// A query for `qname` A, the second octet of the answer's address (the fixtures'
/// variant; `None` without one).
fn address(catalog: &Catalog, qname: &str) -> Option<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    let mut query = Message::new(7, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(name(qname), model::RecordType::A));
    let packet = query.to_vec().expect("query encodes");
    let config = server::ServerConfig::default();
    let reply = server::handle(&packet, server::Transport::Udp, catalog, &config)?;
    let reply = Message::from_vec(&reply).expect("reply decodes");
    reply.answers.iter().find_map(|record| match &record.data {
        model::RData::A(a) => Some(a.0.octets()[1]),
        _ => None,
    })
}

/// An encoding that finishes after newer versions were served is not thrown away: the
/// served version becomes a patch of it, carrying its answers (hot path), with the
/// newer content.
#[test]
fn an_encoding_overtaken_by_newer_versions_is_brought_forward() {
    use store::contract::fixtures;
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = store::SqliteStore::open(dir.path().join("store.db")).expect("store");
    let zone = name("big.test.");
    let first = fixtures::content("big.test.", 1, 2_000, 0);
    let commit = |content: &model::ZoneContent| {
        let base = store.refs(&zone).expect("refs").active;
        store
            .commit(fixtures::commit(content, base, model::RefName::Active))
            .expect("commit")
            .generation
    };
    let one = commit(&first);
    let encoded = Arc::new(ZoneSnapshot::build(
        &store.content(&zone, one).expect("content"),
        one,
    ));
    let mut next = first.clone();
    next.put_rrset(fixtures::host_set("big.test.", 8, 9));
    let two = commit(&next);
    next.put_rrset(fixtures::host_set("big.test.", 9, 9));
    let three = commit(&next);
    // The follower serves version 3 on the library path (say carrying was refused)
    // when the encoding of version 1 finishes.
    let catalog = Catalog::new();
    let served = ZoneSnapshot::build_lookup(&store.content(&zone, three).expect("content"), three);
    catalog.replace_zone(Arc::new(served));
    assert_ne!(one, two);
    let encoder = Encoder::new(server::default_cname_chain_length());
    bring_forward(&store, &catalog, &encoder, &encoded);

    let now = catalog.find(&zone).expect("served");
    assert_eq!(now.generation(), three);
    assert_eq!(
        now.stale_names(),
        Some(3),
        "host8, host9 and the apex are stale"
    );
    assert!(!now.wants_encoding());
    assert_eq!(address(&catalog, "host8.big.test."), Some(9));
    assert_eq!(address(&catalog, "host9.big.test."), Some(9));
    assert_eq!(address(&catalog, "host10.big.test."), Some(0));
    let mut out = [0u8; 512];
    let mut query = hickory_proto::op::Message::new(
        1,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    query.add_query(hickory_proto::op::Query::query(
        name("host10.big.test."),
        model::RecordType::A,
    ));
    let packet = query.to_vec().expect("query encodes");
    assert!(
        server::answer_fast(
            &packet,
            server::Transport::Udp,
            &catalog.snapshot(),
            &server::ServerConfig::default(),
            &mut out
        )
        .is_some(),
        "an unchanged name is answered on the hot path"
    );
    assert!(!encoder.pending(&zone), "nothing more to encode");
}

#[test]
fn the_canary_wins_over_active_and_active_fills_in() {
    let zones = [
        (
            name("a.test."),
            Refs {
                active: Some(Generation(3)),
                canary: Some(Generation(4)),
            },
        ),
        (
            name("b.test."),
            Refs {
                active: Some(Generation(7)),
                canary: None,
            },
        ),
        (name("c.test."), Refs::default()),
    ];
    let generations =
        |target| -> Vec<Generation> { targets(&zones, target).values().map(|(_, g)| *g).collect() };
    assert_eq!(
        generations(Target::CanaryElseActive),
        [Generation(4), Generation(7)]
    );
    assert_eq!(generations(Target::Active), [Generation(3), Generation(7)]);
}
