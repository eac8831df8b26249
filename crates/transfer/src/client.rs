//! The secondary's side of a transfer: IXFR from the serial we hold (AXFR without one) over
//! TCP, every message's TSIG checked when a key is configured (RFC 8945 §5.3.1). The IXFR
//! is also the refresh check: a primary with nothing newer answers it with its SOA alone, so
//! the check is signed and authenticated like the transfer (an SOA query over UDP would
//! need the primary to sign query answers, which dnsward's query path does not).
//! [`interpret`] and [`apply`] are pure: records in, what they mean out.

use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;
use domain::base::{Message as WireMessage, MessageBuilder, Name as WireName};
use domain::rdata::tsig::Time48;
use domain::tsig::{ClientSequence, Key};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use model::limits::Limit;
use model::{RecordSet, ZoneContent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::messages::wire_record;

/// How long one read of a transfer may wait for the primary.
pub const INBOUND_READ_TIMEOUT_MS: Limit = Limit {
    name: "transfer.inbound_read_timeout_ms",
    default: 10_000,
    min: 100,
    max: 600_000,
};

/// Records one incoming transfer may carry: a zone's limit, plus the difference's own.
pub const INBOUND_MAX_RECORDS: u64 = model::limits::ZONE_RECORDS.default * 2 + 16;

/// What a transfer brought.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The primary has nothing newer than what we hold.
    UpToDate { serial: u32 },
    /// The whole zone (AXFR, or IXFR answered in AXFR form): the records, the SOA once.
    Whole { serial: u32, records: Vec<Record> },
    /// Differences from the serial we asked from, oldest first.
    Incremental { serial: u32, steps: Vec<Step> },
    /// The primary serves the serial we were told to skip (one the guard refused): the
    /// transfer was cut after its first message.
    Skipped { serial: u32 },
}

impl Fetched {
    pub fn serial(&self) -> u32 {
        match self {
            Fetched::UpToDate { serial }
            | Fetched::Whole { serial, .. }
            | Fetched::Incremental { serial, .. }
            | Fetched::Skipped { serial } => *serial,
        }
    }
}

/// One difference sequence of an IXFR (RFC 1995 §4): from version `from` to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub from: Record,
    pub to: Record,
    pub deleted: Vec<Record>,
    pub added: Vec<Record>,
}

/// Why a transfer or an SOA query failed; each says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the primary {primary}: {reason}")]
    Unreachable { primary: SocketAddr, reason: String },
    #[error("the primary {primary} answered {rcode}; does it serve the zone, and does its transfer ACL allow this address and key?")]
    Refused { primary: SocketAddr, rcode: String },
    #[error("the answer of the primary {primary} does not verify with our TSIG key ({reason}); do both sides have the same key name, algorithm and secret?")]
    Tsig { primary: SocketAddr, reason: String },
    #[error("the primary {primary} sent a broken transfer: {reason}")]
    Malformed { primary: SocketAddr, reason: String },
}

fn soa_serial(record: &Record) -> Option<u32> {
    match &record.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

/// Where reading a transfer stands after the records so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More messages are needed.
    More,
    /// The answer is complete.
    Complete,
}

/// Whether `records` (all answer records so far, in order) make a complete answer to a
/// request made while holding `have`: a single SOA not newer than `have`; or, once the
/// first SOA's serial `N` opens it, the SOA of `N` closing a whole zone (its second
/// appearance) or a difference sequence (its third: IXFR repeats it before the last
/// additions). Costs only the newest record, so a 1M-record transfer is judged as it
/// arrives.
pub struct Completion {
    have: Option<u32>,
    serial: Option<u32>,
    incremental: Option<bool>,
    closing_seen: usize,
    records: usize,
}

impl Completion {
    pub fn new(have: Option<u32>) -> Completion {
        Completion {
            have,
            serial: None,
            incremental: None,
            closing_seen: 0,
            records: 0,
        }
    }

    /// Takes the next record.
    pub fn push(&mut self, record: &Record) {
        self.records += 1;
        let serial = soa_serial(record);
        match (self.records, self.serial) {
            (1, _) => {
                self.serial = serial;
                self.closing_seen = 1;
            }
            (2, Some(opening)) => {
                self.incremental = Some(serial.is_some_and(|serial| serial != opening));
                if serial == Some(opening) {
                    self.closing_seen += 1;
                }
            }
            (_, Some(opening)) if serial == Some(opening) => self.closing_seen += 1,
            _ => {}
        }
    }

    /// Whether the answer is complete after the records pushed so far.
    pub fn progress(&self) -> Progress {
        let Some(serial) = self.serial else {
            return Progress::More;
        };
        if self.records == 1 {
            let up_to_date = self
                .have
                .is_some_and(|have| !model::serial::is_after(serial, have));
            return if up_to_date {
                Progress::Complete
            } else {
                Progress::More
            };
        }
        let needed = if self.incremental == Some(true) { 3 } else { 2 };
        if self.closing_seen >= needed {
            Progress::Complete
        } else {
            Progress::More
        }
    }
}

/// What a complete answer means (see [`Completion`]); an error names what is wrong.
pub fn interpret(records: Vec<Record>, have: Option<u32>) -> Result<Fetched, String> {
    let first = records.first().ok_or("the answer has no records")?;
    let serial = soa_serial(first).ok_or("the first record is not the zone's SOA")?;
    if records.len() == 1 {
        return match have {
            Some(have) if !model::serial::is_after(serial, have) => {
                Ok(Fetched::UpToDate { serial })
            }
            _ => Err("the transfer ended after its first SOA".into()),
        };
    }
    if soa_serial(records.last().expect("two or more")) != Some(serial) {
        return Err("the transfer does not end with the zone's SOA".into());
    }
    let incremental = soa_serial(&records[1]).is_some_and(|second| second != serial);
    if !incremental {
        let mut records = records;
        records.pop();
        if records[1..]
            .iter()
            .any(|record| record.record_type() == RecordType::SOA)
        {
            return Err("a whole-zone transfer has an SOA in its middle".into());
        }
        return Ok(Fetched::Whole { serial, records });
    }
    // SOA(N), then per step: SOA(from), deleted…, SOA(to), added…; then SOA(N).
    let mut steps = Vec::new();
    let body = &records[1..records.len() - 1];
    let mut at = 0;
    while at < body.len() {
        let from = body[at].clone();
        at += 1;
        let mut deleted = Vec::new();
        while at < body.len() && body[at].record_type() != RecordType::SOA {
            deleted.push(body[at].clone());
            at += 1;
        }
        let to = body
            .get(at)
            .ok_or("a difference has no SOA before its additions")?
            .clone();
        at += 1;
        let mut added = Vec::new();
        while at < body.len() && body[at].record_type() != RecordType::SOA {
            added.push(body[at].clone());
            at += 1;
        }
        steps.push(Step {
            from,
            to,
            deleted,
            added,
        });
    }
    for pair in steps.windows(2) {
        if soa_serial(&pair[0].to) != soa_serial(&pair[1].from) {
            return Err("the differences do not follow each other".into());
        }
    }
    if steps.last().and_then(|step| soa_serial(&step.to)) != Some(serial) {
        return Err("the last difference does not lead to the new serial".into());
    }
    Ok(Fetched::Incremental { serial, steps })
}

/// `content` (at the serial of the first step's `from`) with every step applied: a deleted
/// record that is not there, or content at another serial, is an error (ask for the whole
/// zone then).
pub fn apply(content: &ZoneContent, steps: &[Step]) -> Result<ZoneContent, String> {
    let mut content = content.clone();
    for step in steps {
        let from = soa_serial(&step.from);
        if content.serial() != from {
            return Err(format!(
                "the difference starts at serial {from:?}, the zone held is at {:?}",
                content.serial()
            ));
        }
        for record in &step.deleted {
            let held = content
                .get(&record.name, record.record_type())
                .cloned()
                .ok_or_else(|| format!("{record} is to be deleted but is not in the zone"))?;
            let encoded = model::encode_rdata(&record.data);
            let mut set = RecordSet::new(held.name.clone(), held.rtype, held.ttl);
            let mut found = false;
            for rdata in held.rdatas {
                if model::encode_rdata(&rdata) == encoded {
                    found = true;
                } else {
                    set.insert(rdata);
                }
            }
            if !found {
                return Err(format!("{record} is to be deleted but is not in the zone"));
            }
            content.put_rrset(set);
        }
        for record in &step.added {
            content
                .insert(record.clone())
                .map_err(|error| format!("{record} cannot be added: {error}"))?;
        }
        let origin = content.origin().clone();
        content.remove_rrset(&origin, RecordType::SOA);
        content
            .insert(step.to.clone())
            .map_err(|error| format!("the new SOA cannot be added: {error}"))?;
    }
    Ok(content)
}

/// A query for `zone` of `rtype`, with `authority` (IXFR's SOA), signed with `key`.
fn request(
    zone: &Name,
    rtype: Rtype,
    authority: Option<&Record>,
    key: Option<&Key>,
    id: u16,
) -> Result<(Vec<u8>, Option<ClientSequence<Key>>), String> {
    let owner = WireName::from_octets(bytes::Bytes::from(
        zone.to_bytes().map_err(|error| error.to_string())?,
    ))
    .map_err(|error| error.to_string())?;
    let mut builder = MessageBuilder::new_vec();
    builder.header_mut().set_id(id);
    let mut question = builder.question();
    question
        .push((&owner, rtype))
        .map_err(|error| error.to_string())?;
    let mut section = question.authority();
    if let Some(record) = authority {
        let record = wire_record(record).ok_or("the SOA held cannot be encoded")?;
        section.push(&record).map_err(|error| error.to_string())?;
    }
    let mut additional = section.additional();
    match key {
        Some(key) => {
            let sequence = ClientSequence::request(key.clone(), &mut additional, Time48::now())
                .map_err(|error| error.to_string())?;
            Ok((additional.finish(), Some(sequence)))
        }
        None => Ok((additional.finish(), None)),
    }
}

/// Transfers `zone` from `primary`: IXFR from `held` (its SOA) when given, else AXFR; stops
/// after the first message when the primary's serial is `skip`.
pub async fn fetch(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Key>,
    held: Option<&Record>,
    skip: Option<u32>,
) -> Result<Fetched, FetchError> {
    let unreachable = |reason: String| FetchError::Unreachable { primary, reason };
    let malformed = |reason: String| FetchError::Malformed { primary, reason };
    let id = crate::notify::random_id();
    let rtype = if held.is_some() {
        Rtype::IXFR
    } else {
        Rtype::AXFR
    };
    let (bytes, mut sequence) = request(zone, rtype, held, key, id).map_err(unreachable)?;
    let read_timeout = Duration::from_millis(INBOUND_READ_TIMEOUT_MS.default);
    let mut stream = tokio::time::timeout(read_timeout, TcpStream::connect(primary))
        .await
        .map_err(|_| unreachable("connecting timed out".into()))?
        .map_err(|error| unreachable(error.to_string()))?;
    let length = u16::try_from(bytes.len()).map_err(|_| unreachable("request too long".into()))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    let have = held.and_then(soa_serial);
    let mut completion = Completion::new(have);
    let mut records = Vec::new();
    while completion.progress() == Progress::More {
        let mut prefix = [0u8; 2];
        tokio::time::timeout(read_timeout, stream.read_exact(&mut prefix))
            .await
            .map_err(|_| unreachable("the transfer stalled".into()))?
            .map_err(|error| malformed(format!("the connection ended early: {error}")))?;
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        tokio::time::timeout(read_timeout, stream.read_exact(&mut message))
            .await
            .map_err(|_| unreachable("the transfer stalled".into()))?
            .map_err(|error| malformed(format!("the connection ended early: {error}")))?;
        let mut wire =
            WireMessage::from_octets(message).map_err(|error| malformed(error.to_string()))?;
        if wire.header().id() != id {
            return Err(malformed("an answer with another message ID".into()));
        }
        if let Some(sequence) = sequence.as_mut() {
            sequence
                .answer(&mut wire, Time48::now())
                .map_err(|error| FetchError::Tsig {
                    primary,
                    reason: error.to_string(),
                })?;
        }
        let parsed =
            Message::from_vec(wire.as_slice()).map_err(|error| malformed(error.to_string()))?;
        let rcode = parsed.metadata.response_code;
        if rcode != hickory_proto::op::ResponseCode::NoError {
            return Err(FetchError::Refused {
                primary,
                rcode: rcode.to_string(),
            });
        }
        if parsed.answers.is_empty() {
            return Err(malformed("a transfer message without records".into()));
        }
        for record in parsed.answers {
            completion.push(&record);
            records.push(record);
        }
        if let Some(serial) =
            skip.filter(|skip| records.first().and_then(soa_serial) == Some(*skip))
        {
            return Ok(Fetched::Skipped { serial });
        }
        if records.len() as u64 > INBOUND_MAX_RECORDS {
            return Err(malformed(format!(
                "more than {INBOUND_MAX_RECORDS} records (zone.records)"
            )));
        }
    }
    if let Some(sequence) = sequence {
        sequence.done().map_err(|error| FetchError::Tsig {
            primary,
            reason: error.to_string(),
        })?;
    }
    interpret(records, have).map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SOA};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn soa(serial: u32) -> Record {
        let data = SOA::new(
            name("ns.z.test."),
            name("h.z.test."),
            serial,
            60,
            30,
            600,
            5,
        );
        Record::from_rdata(name("z.test."), 300, RData::SOA(data))
    }

    fn a(owner: &str, last: u8) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A::new(192, 0, 2, last)))
    }

    fn completes(records: &[Record], have: Option<u32>) -> Vec<Progress> {
        let mut completion = Completion::new(have);
        records
            .iter()
            .map(|record| {
                completion.push(record);
                completion.progress()
            })
            .collect()
    }

    #[test]
    fn a_whole_zone_completes_at_its_closing_soa() {
        let records = [soa(7), a("a.z.test.", 1), a("b.z.test.", 2), soa(7)];
        use Progress::{Complete, More};
        assert_eq!(completes(&records, None), [More, More, More, Complete]);
        let fetched = interpret(records.to_vec(), None).unwrap();
        assert_eq!(
            fetched,
            Fetched::Whole {
                serial: 7,
                records: records[..3].to_vec()
            }
        );
    }

    #[test]
    fn a_difference_sequence_completes_at_the_third_soa_of_the_new_serial() {
        // 5 → 6 deletes a, 6 → 7 adds b.
        let records = [
            soa(7),
            soa(5),
            a("a.z.test.", 1),
            soa(6),
            soa(6),
            soa(7),
            a("b.z.test.", 2),
            soa(7),
        ];
        use Progress::{Complete, More};
        assert_eq!(
            completes(&records, Some(5)),
            [More, More, More, More, More, More, More, Complete]
        );
        let Fetched::Incremental { serial, steps } = interpret(records.to_vec(), Some(5)).unwrap()
        else {
            panic!("incremental expected");
        };
        assert_eq!(serial, 7);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].deleted, vec![a("a.z.test.", 1)]);
        assert!(steps[0].added.is_empty());
        assert_eq!(steps[1].added, vec![a("b.z.test.", 2)]);
    }

    #[test]
    fn a_lone_soa_is_up_to_date_only_when_not_newer_than_what_is_held() {
        assert_eq!(completes(&[soa(5)], Some(5)), [Progress::Complete]);
        assert_eq!(
            interpret(vec![soa(5)], Some(5)).unwrap(),
            Fetched::UpToDate { serial: 5 }
        );
        // A newer serial alone is the first message of a transfer, not an answer.
        assert_eq!(completes(&[soa(6)], Some(5)), [Progress::More]);
        assert!(interpret(vec![soa(6)], Some(5)).is_err());
    }

    #[test]
    fn broken_transfers_are_errors_not_zones() {
        assert!(interpret(vec![a("a.z.test.", 1), soa(7)], None).is_err());
        assert!(interpret(vec![soa(7), a("a.z.test.", 1)], None).is_err());
        assert!(interpret(vec![soa(7), a("a.z.test.", 1), soa(6), soa(7)], None).is_err());
        assert!(
            interpret(vec![soa(7), soa(5), soa(6), soa(7)], Some(5)).is_err(),
            "the differences must lead to the new serial"
        );
    }

    #[test]
    fn a_difference_applies_to_the_version_it_starts_from_and_nowhere_else() {
        let held = ZoneContent::from_records(
            name("z.test."),
            [soa(5), a("a.z.test.", 1), a("a.z.test.", 9)],
        )
        .unwrap();
        let step = Step {
            from: soa(5),
            to: soa(6),
            deleted: vec![a("a.z.test.", 1)],
            added: vec![a("b.z.test.", 2)],
        };
        let next = apply(&held, std::slice::from_ref(&step)).unwrap();
        assert_eq!(next.serial(), Some(6));
        let a_set = next.get(&name("a.z.test."), RecordType::A).unwrap();
        assert_eq!(a_set.rdatas, vec![RData::A(A::new(192, 0, 2, 9))]);
        assert!(next.get(&name("b.z.test."), RecordType::A).is_some());
        assert!(
            apply(&next, std::slice::from_ref(&step)).is_err(),
            "held is at 6, the step starts at 5"
        );
        let missing = Step {
            deleted: vec![a("c.z.test.", 3)],
            ..step
        };
        assert!(
            apply(&held, &[missing]).is_err(),
            "deleting what is not there"
        );
    }
}
