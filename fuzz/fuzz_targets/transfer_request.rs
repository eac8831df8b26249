//! Arbitrary bytes into the transfer plane of a node that is both a primary (a zone with
//! `allow_transfer` from loopback, one TSIG key, two versions in a real store so IXFR has
//! history) and a secondary (NOTIFY for another zone): the AXFR/IXFR answerer, the NOTIFY
//! handler and the signed-query path.
//!
//! Properties:
//! * nothing panics;
//! * every message a transfer answer sends has QR set and the request's ID, fits a TCP
//!   length prefix, and decodes as a message;
//! * a NOTIFY or signed-query reply, when there is one, has QR set and the request's ID.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use model::{Name, RefName};
use server::{Catalog, TransferService, ZoneSnapshot};
use store::contract::fixtures;
use store::Store;
use transfer::secondary::{Secondaries, SecondaryZone};
use transfer::{AllowTransfer, KeyConfig, Keys, Primary, Transfers, ZoneTransfers};

struct World {
    _dir: tempfile::TempDir,
    catalog: Catalog,
    transfers: Transfers,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Arc::new(store::SqliteStore::open(dir.path().join("s.db")).expect("store"));
        let zone = fixtures::name("xfr.test.");
        let mut content = fixtures::content("xfr.test.", 1, 200, 0);
        let one = store
            .commit(fixtures::commit(&content, None, RefName::Active))
            .expect("commit");
        content.put_rrset(fixtures::host_set("xfr.test.", 7, 1));
        let two = store
            .commit(fixtures::commit(
                &content,
                Some(one.generation),
                RefName::Active,
            ))
            .expect("commit");
        let catalog = Catalog::new();
        let served = store.content(&zone, two.generation).expect("content");
        catalog.replace_zone(Arc::new(ZoneSnapshot::build(&served, two.generation)));
        let keys = Keys::new(&[KeyConfig {
            name: "fuzz-key".into(),
            algorithm: "hmac-sha256".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==".into(),
        }])
        .expect("keys");
        let store: Arc<dyn Store> = store;
        let primary = Primary::new(
            store,
            keys.clone(),
            [(
                zone,
                ZoneTransfers {
                    allow_transfer: vec![AllowTransfer::parse("127.0.0.0/8", None).expect("rule")],
                },
            )],
        );
        let secondaries = Secondaries::new(
            vec![SecondaryZone {
                zone: Name::from_ascii("secondary.test.").expect("name"),
                primary: "127.0.0.1:53".parse().expect("address"),
                key: keys.get("fuzz-key"),
            }],
            keys,
        );
        World {
            _dir: dir,
            catalog,
            transfers: Transfers {
                primary,
                secondaries: Arc::new(secondaries),
            },
        }
    })
}

fn id(bytes: &[u8]) -> [u8; 2] {
    [bytes[0], bytes[1]]
}

fuzz_target!(|bytes: &[u8]| {
    let world = world();
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    let zones = world.catalog.snapshot();
    if server::is_transfer_request(bytes) {
        world
            .transfers
            .transfer(bytes, peer, &zones, &mut |message| {
                assert!(message.len() <= 65_535, "a message longer than TCP allows");
                assert!(message.len() >= 12 && message[2] & 0x80 != 0, "QR set");
                assert_eq!(id(&message), id(bytes), "the request's ID");
                Message::from_vec(&message).expect("a transfer message decodes");
                true
            });
    }
    if server::is_notify_request(bytes) {
        if let Some(reply) = world.transfers.notify(bytes, peer) {
            assert!(reply.len() >= 12 && reply[2] & 0x80 != 0, "QR set");
            assert_eq!(id(&reply), id(bytes));
        }
    }
    if server::is_signed(bytes) {
        let config = server::ServerConfig::default();
        if let Some(reply) = world.transfers.signed_query(bytes, peer, &mut |unsigned| {
            server::answer_library(unsigned, server::Transport::Udp, &zones, &config)
        }) {
            assert!(reply.len() >= 12 && reply[2] & 0x80 != 0, "QR set");
            assert_eq!(id(&reply), id(bytes));
        }
    }
});
