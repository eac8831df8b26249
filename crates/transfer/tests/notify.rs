//! NOTIFY to a real UDP socket standing in for a secondary: the message a secondary reads
//! (opcode, AA, question, the SOA with its serial, the TSIG that verifies with the shared
//! key), retries until answered, and what a refusal is called.

use std::time::Duration;

use domain::base::iana::{Opcode, Rcode};
use domain::base::{Message, MessageBuilder};
use domain::rdata::tsig::Time48;
use domain::tsig::ServerTransaction;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;
use transfer::notify::{notify, Notified, NotifyTarget};
use transfer::{KeyConfig, Keys};

fn key_config() -> KeyConfig {
    KeyConfig {
        name: "notify-key".into(),
        algorithm: "hmac-sha256".into(),
        secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==".into(),
    }
}

fn soa(serial: u32) -> Record {
    let name = |text: &str| Name::from_ascii(text).unwrap();
    Record::from_rdata(
        name("n.test."),
        300,
        RData::SOA(SOA::new(
            name("ns.n.test."),
            name("h.n.test."),
            serial,
            60,
            30,
            600,
            5,
        )),
    )
}

/// A secondary that ignores the first `ignore` NOTIFYs, then answers `rcode`, checking and
/// signing with the key; returns what it saw: (opcode, AA, answer count, SOA serial).
async fn secondary(
    socket: UdpSocket,
    ignore: usize,
    rcode: Rcode,
) -> Vec<(Opcode, bool, u16, u32)> {
    let keys = Keys::new(&[key_config()]).unwrap();
    let store = keys_store(&keys);
    let mut seen = Vec::new();
    let mut buffer = vec![0u8; 4096];
    loop {
        let (length, from) = socket.recv_from(&mut buffer).await.unwrap();
        let mut message = Message::from_octets(buffer[..length].to_vec()).unwrap();
        let transaction = ServerTransaction::request(&store, &mut message, Time48::now())
            .expect("the NOTIFY verifies with the shared key")
            .expect("the NOTIFY is signed");
        let header = message.header();
        let serial = message
            .answer()
            .unwrap()
            .limit_to::<domain::rdata::Soa<_>>()
            .next()
            .expect("the SOA is in the answer section")
            .unwrap()
            .data()
            .serial()
            .into_int();
        seen.push((
            header.opcode(),
            header.aa(),
            message.header_counts().ancount(),
            serial,
        ));
        if seen.len() <= ignore {
            continue;
        }
        let mut additional = MessageBuilder::new_vec()
            .start_answer(&message, rcode)
            .unwrap()
            .additional();
        transaction.answer(&mut additional, Time48::now()).unwrap();
        socket.send_to(&additional.finish(), from).await.unwrap();
        return seen;
    }
}

fn keys_store(
    keys: &Keys,
) -> std::collections::HashMap<(domain::tsig::KeyName, domain::tsig::Algorithm), domain::tsig::Key>
{
    let key = keys.get("notify-key").unwrap();
    std::collections::HashMap::from([((key.name().clone(), key.algorithm()), key)])
}

#[tokio::test]
async fn a_signed_notify_carries_the_soa_and_is_retried_until_answered() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = NotifyTarget {
        address: socket.local_addr().unwrap(),
        key: Keys::new(&[key_config()]).unwrap().get("notify-key"),
    };
    let listener = tokio::spawn(secondary(socket, 1, Rcode::NOERROR));
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        notify(&Name::from_ascii("n.test.").unwrap(), &soa(42), &target),
    )
    .await
    .expect("answered in time");
    assert_eq!(outcome, Notified::Acknowledged { attempts: 2 });
    let seen = listener.await.unwrap();
    assert_eq!(seen, vec![(Opcode::NOTIFY, true, 1, 42); 2]);
}

#[tokio::test]
async fn a_refused_notify_is_reported_with_its_code() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = NotifyTarget {
        address: socket.local_addr().unwrap(),
        key: Keys::new(&[key_config()]).unwrap().get("notify-key"),
    };
    let listener = tokio::spawn(secondary(socket, 0, Rcode::REFUSED));
    let outcome = notify(&Name::from_ascii("n.test.").unwrap(), &soa(7), &target).await;
    assert_eq!(outcome, Notified::Answered("REFUSED".into()));
    listener.await.unwrap();
}
