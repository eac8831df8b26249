//! NOTIFY (RFC 1996): whenever the node serves a new serial of a zone (and once when it
//! starts serving it), the zone's configured secondaries are told, with the SOA in the
//! answer section (so BIND can tell at once whether it is behind) and signed with the
//! target's TSIG key when one is configured. Each NOTIFY is retried until the secondary
//! answers or [`NOTIFY_ATTEMPTS`] are used; a newer serial replaces a NOTIFY still being
//! retried.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name as WireName};
use domain::rdata::tsig::Time48;
use domain::tsig::{ClientTransaction, Key};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::BinEncodable;
use model::limits::Limit;
use server::Catalog;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::messages::wire_record;

/// How many times one NOTIFY is sent before giving up on an answer.
pub const NOTIFY_ATTEMPTS: Limit = Limit {
    name: "transfer.notify_attempts",
    default: 5,
    min: 1,
    max: 20,
};

/// How long each attempt waits for the answer; it doubles with every retry.
pub const NOTIFY_TIMEOUT_MS: Limit = Limit {
    name: "transfer.notify_timeout_ms",
    default: 1_000,
    min: 10,
    max: 60_000,
};

/// One secondary to notify.
#[derive(Clone)]
pub struct NotifyTarget {
    pub address: SocketAddr,
    /// Signs the NOTIFY (and checks the answer) when set.
    pub key: Option<Key>,
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTarget")
            .field("address", &self.address)
            .field("key", &self.key.as_ref().map(|key| key.name().to_string()))
            .finish()
    }
}

/// How one NOTIFY ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notified {
    /// The secondary answered NOERROR.
    Acknowledged { attempts: u64 },
    /// It answered with another code (REFUSED, NOTAUTH: its configuration does not allow
    /// us).
    Answered(String),
    /// No (verifiable) answer after every attempt.
    Unanswered,
}

/// The zones' NOTIFY targets, replaceable while the node runs (a configuration reload).
#[derive(Default)]
pub struct Targets {
    zones: std::sync::RwLock<Vec<(Name, Vec<NotifyTarget>)>>,
    changed: tokio::sync::Notify,
}

impl Targets {
    pub fn new(zones: Vec<(Name, Vec<NotifyTarget>)>) -> Targets {
        Targets {
            zones: std::sync::RwLock::new(zones),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Replaces every zone's targets; a target not told of the served serial yet is told
    /// at once.
    pub fn set(&self, zones: Vec<(Name, Vec<NotifyTarget>)>) {
        *self
            .zones
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = zones;
        self.changed.notify_one();
    }

    fn current(&self) -> Vec<(Name, Vec<NotifyTarget>)> {
        self.zones
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Watches `catalog` and tells each zone's targets of every new served serial (each target
/// once per serial), until the task is aborted.
pub fn start(catalog: Arc<Catalog>, targets: Arc<Targets>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = catalog.subscribe();
        let mut notified: HashMap<(String, SocketAddr), u32> = HashMap::new();
        let mut in_flight: HashMap<(String, SocketAddr), JoinHandle<Notified>> = HashMap::new();
        loop {
            let zones = catalog.snapshot();
            for (zone, secondaries) in targets.current() {
                let Some(snapshot) = zones.get(&zone) else {
                    continue;
                };
                let data = snapshot.data();
                let key = store::zone_key(&zone);
                let Some(soa) = data.soa().cloned() else {
                    continue;
                };
                for target in secondaries {
                    let id = (key.clone(), target.address);
                    if notified.get(&id) == Some(&data.serial()) {
                        continue;
                    }
                    notified.insert(id.clone(), data.serial());
                    let zone = zone.clone();
                    let soa = soa.clone();
                    let task = tokio::spawn(async move {
                        let outcome = notify(&zone, &soa, &target).await;
                        log(&zone, &soa, &target, &outcome);
                        outcome
                    });
                    if let Some(previous) = in_flight.insert(id, task) {
                        previous.abort();
                    }
                }
            }
            in_flight.retain(|_, task| !task.is_finished());
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = targets.changed.notified() => {}
            }
        }
    })
}

fn log(zone: &Name, soa: &Record, target: &NotifyTarget, outcome: &Notified) {
    let serial = serial_of(soa);
    match outcome {
        Notified::Acknowledged { attempts } => {
            tracing::info!(%zone, serial, secondary = %target.address, attempts, "NOTIFY acknowledged")
        }
        Notified::Answered(rcode) => {
            tracing::warn!(%zone, serial, secondary = %target.address, %rcode, "the secondary refused our NOTIFY; does its configuration allow NOTIFY from this address and key?")
        }
        Notified::Unanswered => {
            tracing::warn!(%zone, serial, secondary = %target.address, attempts = NOTIFY_ATTEMPTS.default, "no answer to NOTIFY; the secondary will still see the new serial at its next SOA refresh")
        }
    }
}

fn serial_of(soa: &Record) -> u32 {
    match &soa.data {
        hickory_proto::rr::RData::SOA(data) => data.serial,
        _ => 0,
    }
}

/// Sends one NOTIFY for `soa` of `zone` to `target`, retrying with a doubling timeout.
pub async fn notify(zone: &Name, soa: &Record, target: &NotifyTarget) -> Notified {
    let local: SocketAddr = if target.address.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = UdpSocket::bind(local).await else {
        return Notified::Unanswered;
    };
    let mut timeout = Duration::from_millis(NOTIFY_TIMEOUT_MS.default);
    let mut buffer = vec![0u8; 65_535];
    for attempt in 1..=NOTIFY_ATTEMPTS.default {
        let id = random_id();
        let Some((request, transaction)) = notify_message(zone, soa, id, target.key.as_ref())
        else {
            return Notified::Unanswered;
        };
        if socket.send_to(&request, target.address).await.is_err() {
            tokio::time::sleep(timeout).await;
            timeout *= 2;
            continue;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(Ok((length, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await
        {
            if from != target.address {
                continue;
            }
            let Ok(mut answer) = Message::from_octets(buffer[..length].to_vec()) else {
                continue;
            };
            if answer.header().id() != id || !answer.header().qr() {
                continue;
            }
            if let Some(transaction) = &transaction {
                if transaction.answer(&mut answer, Time48::now()).is_err() {
                    tracing::warn!(%zone, secondary = %target.address, "the answer to our NOTIFY is not signed with our key; ignored");
                    continue;
                }
            }
            let rcode = answer.header().rcode();
            return if rcode == Rcode::NOERROR {
                Notified::Acknowledged { attempts: attempt }
            } else {
                Notified::Answered(rcode.to_string())
            };
        }
        timeout *= 2;
    }
    Notified::Unanswered
}

/// The NOTIFY message (RFC 1996 §3.7: opcode NOTIFY, AA, the zone's SOA as the question and
/// the current SOA in the answer section), signed with `key` when given.
fn notify_message(
    zone: &Name,
    soa: &Record,
    id: u16,
    key: Option<&Key>,
) -> Option<(Vec<u8>, Option<ClientTransaction<Key>>)> {
    let owner = WireName::from_octets(Bytes::from(zone.to_bytes().ok()?)).ok()?;
    let mut builder = MessageBuilder::new_vec();
    {
        let header = builder.header_mut();
        header.set_id(id);
        header.set_opcode(Opcode::NOTIFY);
        header.set_aa(true);
    }
    let mut question = builder.question();
    question.push((&owner, Rtype::SOA)).ok()?;
    let mut answer = question.answer();
    answer.push(&wire_record(soa)?).ok()?;
    let mut additional = answer.additional();
    let transaction = match key {
        Some(key) => {
            Some(ClientTransaction::request(key.clone(), &mut additional, Time48::now()).ok()?)
        }
        None => None,
    };
    Some((additional.finish(), transaction))
}

/// A message ID nobody on the path can guess (RFC 5452 §9.2), from the standard library's
/// randomly keyed hasher.
pub(crate) fn random_id() -> u16 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64),
    );
    hasher.finish() as u16
}
