//! dnsward as a primary: answers AXFR (RFC 5936) and IXFR (RFC 1995) requests that reach the
//! server over TCP ([`server::TransferService`]).
//!
//! * What is sent is what the node serves at that moment: one load of the catalog, the
//!   served snapshot's records and serial (every node serves the same serial for the same
//!   generation: the store keeps it with the version).
//! * IXFR is built from the changes the store recorded between the version with the
//!   client's serial and the served one ([`store::Store::content_changes`]), condensed into
//!   one difference (RFC 1995 §6) at record level. When that version is gone from the
//!   store's history, or the difference is larger than the zone, the answer is the whole zone
//!   in IXFR form (what BIND calls "falling back to AXFR", RFC 1995 §4). A client already at
//!   the served serial (or past it) gets the SOA alone.
//! * A signed request is checked against the configured keys first (`domain`'s TSIG: a bad
//!   MAC, an unknown key or a stale time gets NOTAUTH with the TSIG error, unsigned as RFC
//!   8945 requires); then the zone's `allow_transfer` rules decide (REFUSED otherwise).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, ToName};
use domain::rdata::tsig::Time48;
use domain::rdata::Soa;
use domain::tsig::{Key, ServerSequence};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinDecodable;
use model::limits::Limit;
use server::Zones;
use store::{zone_key, Store};

use crate::acl::{permits, AllowTransfer};
use crate::keys::Keys;
use crate::messages::{Batcher, Sent};

/// How many of a zone's newest versions are searched for the serial an IXFR asks from.
pub const IXFR_HISTORY_VERSIONS: Limit = Limit {
    name: "transfer.ixfr_history_versions",
    default: 1_000,
    min: 1,
    max: 100_000,
};

/// A zone's transfer settings.
#[derive(Debug, Clone, Default)]
pub struct ZoneTransfers {
    /// Who may transfer it; empty: nobody.
    pub allow_transfer: Vec<AllowTransfer>,
}

/// The transfer service of a node: see the module documentation.
pub struct Primary {
    store: Arc<dyn Store>,
    /// Replaced whole by a configuration reload ([`Primary::reload`]); a request uses the
    /// settings it started with.
    settings: std::sync::RwLock<Arc<Settings>>,
}

struct Settings {
    keys: Keys,
    /// By [`zone_key`].
    zones: HashMap<String, ZoneTransfers>,
}

impl Settings {
    fn new(keys: Keys, zones: impl IntoIterator<Item = (Name, ZoneTransfers)>) -> Settings {
        Settings {
            keys,
            zones: zones
                .into_iter()
                .map(|(name, transfers)| (zone_key(&name), transfers))
                .collect(),
        }
    }
}

/// What one request got, for its log line and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Axfr,
    Ixfr {
        from: u32,
    },
    /// An IXFR answered with the whole zone: the client's version is not in the history,
    /// or the difference would be larger than the zone.
    IxfrWholeZone {
        from: u32,
    },
    /// An IXFR from the served serial or later: the SOA alone.
    UpToDate,
    Refused(Rcode),
}

impl Primary {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Keys,
        zones: impl IntoIterator<Item = (Name, ZoneTransfers)>,
    ) -> Primary {
        Primary {
            store,
            settings: std::sync::RwLock::new(Arc::new(Settings::new(keys, zones))),
        }
    }

    /// Takes reloaded keys and transfer rules; requests already answering finish with the
    /// ones they started with.
    pub fn reload(&self, keys: Keys, zones: impl IntoIterator<Item = (Name, ZoneTransfers)>) {
        *self
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Settings::new(keys, zones));
    }

    fn settings(&self) -> Arc<Settings> {
        Arc::clone(
            &self
                .settings
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The keys requests are checked against now.
    pub fn keys(&self) -> Keys {
        self.settings().keys.clone()
    }

    /// Answers one request: see the module documentation.
    pub fn answer(
        &self,
        request: &[u8],
        peer: IpAddr,
        zones: &Zones,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Option<(Answer, Sent)> {
        let settings = self.settings();
        let mut message = Message::from_octets(request.to_vec()).ok()?;
        let tsig = match ServerSequence::request(settings.keys.store(), &mut message, Time48::now())
        {
            Ok(tsig) => tsig,
            Err(error) => {
                tracing::warn!(%peer, error = %error, "zone transfer refused: its TSIG does not verify");
                let mut reply = error
                    .build_message(&message, MessageBuilder::new_vec())
                    .ok()?
                    .finish();
                bad_signature_as_badsig(&mut reply);
                send(reply);
                return Some((Answer::Refused(Rcode::NOTAUTH), Sent::default()));
            }
        };
        let key = tsig
            .as_ref()
            .map(|sequence| sequence.key().name().to_string());
        let question = match message.sole_question() {
            Ok(question) => question,
            Err(_) => return Some(refuse(&message, tsig, Rcode::FORMERR, send)),
        };
        let qname = Name::from_bytes(question.qname().to_vec().as_slice()).ok()?;
        if question.qclass() != Class::IN {
            return Some(refuse(&message, tsig, Rcode::REFUSED, send));
        }
        let Some(snapshot) = zones.get(&qname) else {
            tracing::info!(%peer, zone = %qname, "zone transfer refused: no such zone here");
            return Some(refuse(&message, tsig, Rcode::NOTAUTH, send));
        };
        let rules = settings
            .zones
            .get(&zone_key(&qname))
            .map(|zone| zone.allow_transfer.as_slice())
            .unwrap_or_default();
        if !permits(rules, peer, key.as_deref()) {
            tracing::warn!(%peer, zone = %qname, key = key.as_deref().unwrap_or("none"), "zone transfer refused: no allow_transfer rule matches this address and key");
            return Some(refuse(&message, tsig, Rcode::REFUSED, send));
        }
        let zone = snapshot.data();
        let soa = zone.soa()?.clone();
        let served = zone.serial();
        let (answer, records) = if question.qtype() == Rtype::IXFR {
            let Some(from) = client_serial(&message) else {
                return Some(refuse(&message, tsig, Rcode::FORMERR, send));
            };
            if !model::serial::is_after(served, from) {
                (Answer::UpToDate, vec![soa.clone()])
            } else {
                match self.difference(&qname, from, zone) {
                    Some((old_soa, deleted, added)) => {
                        let mut records = Vec::with_capacity(deleted.len() + added.len() + 4);
                        records.push(soa.clone());
                        records.push(old_soa);
                        records.extend(deleted);
                        records.push(soa.clone());
                        records.extend(added);
                        records.push(soa.clone());
                        (Answer::Ixfr { from }, records)
                    }
                    None => (Answer::IxfrWholeZone { from }, Vec::new()),
                }
            }
        } else {
            (Answer::Axfr, Vec::new())
        };
        let mut batcher = Batcher::new(&message, tsig, send);
        let whole_zone = matches!(answer, Answer::Axfr | Answer::IxfrWholeZone { .. });
        let pushed = if whole_zone {
            push_whole_zone(&mut batcher, zone, &soa)
        } else {
            records.iter().all(|record| batcher.push_record(record))
        };
        let sent = batcher.finish();
        if !pushed || sent.cut_short {
            tracing::warn!(%peer, zone = %qname, serial = served, ?answer, "zone transfer cut short: the secondary closed the connection");
        } else {
            tracing::info!(%peer, zone = %qname, serial = served, ?answer, key = key.as_deref().unwrap_or("none"), records = sent.records, messages = sent.messages, bytes = sent.bytes, "zone transfer sent");
        }
        Some((answer, sent))
    }

    /// The condensed record-level difference from the version serving `from` to the served
    /// one: the old SOA, the records deleted and the records added (SOAs aside). `None` when
    /// the history does not reach `from` or the difference is larger than the zone.
    fn difference(
        &self,
        zone_name: &Name,
        from: u32,
        served: &server::ZoneData,
    ) -> Option<(Record, Vec<Record>, Vec<Record>)> {
        let history = self
            .store
            .history(zone_name, IXFR_HISTORY_VERSIONS.default as usize)
            .map_err(|error| tracing::warn!(zone = %zone_name, %error, "cannot read the history for an IXFR; sending the whole zone"))
            .ok()?;
        let base = history.iter().find(|version| version.serial == from)?;
        let changes = self
            .store
            .content_changes(zone_name, base.generation, served.generation())
            .map_err(|error| tracing::warn!(zone = %zone_name, %error, "cannot read the recorded changes for an IXFR; sending the whole zone"))
            .ok()??;
        if changes.version.generation != served.generation() {
            return None;
        }
        let mut old_soa = None;
        let mut before = by_identity(
            changes.removed.iter().flat_map(|set| set.records()),
            &mut old_soa,
        );
        let mut after = by_identity(
            changes.added.iter().flat_map(|set| set.records()),
            &mut None,
        );
        // A record on both sides is unchanged: in neither part.
        before.retain(|identity, _| after.remove(identity).is_none());
        let deleted: Vec<Record> = before.into_values().collect();
        let added: Vec<Record> = after.into_values().collect();
        if (deleted.len() + added.len()) as u64 > changes.version.records {
            return None;
        }
        let old_soa = old_soa.unwrap_or_else(|| with_serial(served.soa(), from));
        Some((old_soa, deleted, added))
    }
}

/// SOA, every other record in canonical order, SOA (RFC 5936 §2.2); `false` when the
/// connection went away. The order is not required, but a secondary building its tree from
/// names in order does much less work: sorting here took a 1M-record AXFR to Knot from 2.0
/// to 1.4 s (`bench/transfers`).
fn push_whole_zone(batcher: &mut Batcher<'_>, zone: &server::ZoneData, soa: &Record) -> bool {
    let mut records: Vec<&Record> = zone
        .records()
        .filter(|record| record.record_type() != RecordType::SOA)
        .collect();
    records.sort_by_cached_key(|record| model::RrsetKey::new(record.name.clone(), RecordType::A));
    batcher.push_record(soa)
        && records
            .into_iter()
            .all(|record| batcher.push_record(record))
        && batcher.push_record(soa)
}

/// An error answer (signed when the request was).
fn refuse(
    message: &Message<Vec<u8>>,
    tsig: Option<ServerSequence<Key>>,
    rcode: Rcode,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> (Answer, Sent) {
    let mut builder = MessageBuilder::new_vec();
    builder.header_mut().set_aa(false);
    if let Ok(answer) = builder.start_answer(message, rcode) {
        let mut additional = answer.additional();
        if let Some(mut sequence) = tsig {
            let _ = sequence.answer(&mut additional, Time48::now());
        }
        send(additional.finish());
    }
    (Answer::Refused(rcode), Sent::default())
}

/// RFC 8945 §5.2.2: a request whose MAC does not verify gets NOTAUTH with TSIG error BADSIG
/// (16). `domain` 0.12 writes FORMERR (1) there (its MAC check maps a bad signature to
/// FORMERR), which BIND and Knot report as a malformed request rather than a wrong key. Its
/// unsigned error answer ends with the TSIG record, whose data ends with the error and an
/// empty other-data length: the error is the four bytes before the end.
pub(crate) fn bad_signature_as_badsig(reply: &mut [u8]) {
    const NOTAUTH: u8 = 9;
    const TSIG_FORMERR: [u8; 2] = [0, 1];
    const TSIG_BADSIG: [u8; 2] = [0, 16];
    let length = reply.len();
    let is_unsigned_error = length > 16
        && reply[3] & 0x0f == NOTAUTH
        && u16::from_be_bytes([reply[10], reply[11]]) > 0
        && reply[length - 2..] == [0, 0];
    if is_unsigned_error && reply[length - 4..length - 2] == TSIG_FORMERR {
        reply[length - 4..length - 2].copy_from_slice(&TSIG_BADSIG);
    }
}

/// The serial of the SOA an IXFR request carries in its authority section (RFC 1995 §3).
fn client_serial(message: &Message<Vec<u8>>) -> Option<u32> {
    let mut authority = message.authority().ok()?;
    let record = authority.next()?.ok()?;
    let soa = record.into_record::<Soa<_>>().ok()??;
    Some(soa.data().serial().into_int())
}

/// Records by what makes them the same record: owner (case-insensitive), type, TTL and data;
/// the SOA is set aside in `soa`.
fn by_identity(
    records: impl Iterator<Item = Record>,
    soa: &mut Option<Record>,
) -> BTreeMap<(String, u16, u32, Vec<u8>), Record> {
    let mut map = BTreeMap::new();
    for record in records {
        if record.record_type() == RecordType::SOA {
            *soa = Some(record);
            continue;
        }
        let identity = (
            record.name.to_lowercase().to_ascii(),
            u16::from(record.record_type()),
            record.ttl,
            model::encode_rdata(&record.data),
        );
        map.insert(identity, record);
    }
    map
}

/// `soa` (the served one) with another serial: the old SOA when the recorded changes do not
/// carry it.
fn with_serial(soa: Option<&Record>, serial: u32) -> Record {
    let soa = soa.expect("a served zone has an SOA");
    let mut record = soa.clone();
    if let RData::SOA(data) = &soa.data {
        let mut data: SOA = data.clone();
        data.serial = serial;
        record.data = RData::SOA(data);
    }
    record
}
