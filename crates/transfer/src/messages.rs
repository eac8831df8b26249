//! A transfer's records into messages (RFC 5936 §2.2): each message a complete DNS answer
//! to the request, with AA, the question, as many records as fit under
//! [`MESSAGE_SOFT_BYTES`] (NSD's ~16 KiB, so name compression keeps paying off and no
//! secondary meets an unusual size), compressed names, and, for a signed request, a TSIG
//! record signing it as the next message of the sequence (RFC 8945 §5.3.1: every message is
//! signed, which every secondary accepts).

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::message_builder::{AnswerBuilder, HashCompressor};
use domain::base::record::ComposeRecord;
use domain::base::{Message, MessageBuilder, Name as WireName, Ttl, UnknownRecordData};
use domain::rdata::tsig::Time48;
use domain::tsig::{Key, ServerSequence};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// A message is closed once it holds this many bytes (a record that would pass it is put
/// in the next message; a record alone may take up to [`MESSAGE_MAX_BYTES`]).
pub const MESSAGE_SOFT_BYTES: usize = 16_384;
/// RFC 1035 §4.2.2: TCP messages are at most 65535 bytes, less room kept for the TSIG.
pub const MESSAGE_MAX_BYTES: usize = 65_535 - TSIG_RESERVE_BYTES;
/// Room for a TSIG record: owner and algorithm names (at most 255 bytes each) and a
/// SHA-512 MAC.
const TSIG_RESERVE_BYTES: usize = 640;

/// A record ready for the message builder.
pub type WireRecord = (WireName<Bytes>, Ttl, UnknownRecordData<Bytes>);

/// A served record in the builder's form: owner and data in wire form, names in the data
/// uncompressed (valid for every type; the owners are compressed by the builder).
pub fn wire_record(record: &Record) -> Option<WireRecord> {
    let owner = WireName::from_octets(Bytes::from(record.name.to_bytes().ok()?)).ok()?;
    let rdata = model::encode_rdata(&record.data);
    let rtype = Rtype::from_int(u16::from(record.record_type()));
    let data = UnknownRecordData::from_octets(rtype, Bytes::from(rdata)).ok()?;
    Some((owner, Ttl::from_secs(record.ttl), data))
}

/// How a transfer went, for its log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub messages: usize,
    pub records: usize,
    pub bytes: usize,
    /// Records that could not be put in any message (bigger than a message): the transfer
    /// is incomplete and the secondary must not use it. Never expected.
    pub unsendable: usize,
    /// The connection went away before the end.
    pub cut_short: bool,
}

/// Builds the messages of one answer and hands each, finished and signed, to `send`.
pub struct Batcher<'a> {
    request: &'a Message<Vec<u8>>,
    tsig: Option<ServerSequence<Key>>,
    current: Option<AnswerBuilder<HashCompressor<Vec<u8>>>>,
    in_current: usize,
    send: &'a mut dyn FnMut(Vec<u8>) -> bool,
    sent: Sent,
    /// Reused encoding buffers of [`Batcher::push_record`].
    owner: Vec<u8>,
    rdata: Vec<u8>,
}

impl<'a> Batcher<'a> {
    /// Answers `request` (its TSIG record already taken off and checked into `tsig`).
    pub fn new(
        request: &'a Message<Vec<u8>>,
        tsig: Option<ServerSequence<Key>>,
        send: &'a mut dyn FnMut(Vec<u8>) -> bool,
    ) -> Batcher<'a> {
        Batcher {
            request,
            tsig,
            current: None,
            in_current: 0,
            send,
            sent: Sent::default(),
            owner: Vec::with_capacity(256),
            rdata: Vec::with_capacity(256),
        }
    }

    fn start(&self) -> AnswerBuilder<HashCompressor<Vec<u8>>> {
        let target = HashCompressor::new(Vec::with_capacity(MESSAGE_SOFT_BYTES + 1024));
        let mut builder = MessageBuilder::from_target(target).expect("a vector has room");
        builder.set_push_limit(MESSAGE_MAX_BYTES);
        builder.header_mut().set_aa(true);
        // The question was parsed from a message of at most 65535 bytes: it fits.
        builder
            .start_answer(self.request, Rcode::NOERROR)
            .expect("the question fits an empty message")
    }

    /// Adds one served record (see [`wire_record`]), encoded into buffers the batcher
    /// reuses: no allocation per record, what a million-record AXFR costs most.
    pub fn push_record(&mut self, record: &Record) -> bool {
        let mut owner = std::mem::take(&mut self.owner);
        let mut rdata = std::mem::take(&mut self.rdata);
        owner.clear();
        rdata.clear();
        let encoded = {
            let mut encoder = BinEncoder::new(&mut owner);
            record.name.emit(&mut encoder).is_ok()
        } && {
            let mut encoder = BinEncoder::new(&mut rdata);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            record.data.emit(&mut encoder).is_ok()
        };
        let rtype = Rtype::from_int(u16::from(record.record_type()));
        let pushed = match (
            encoded,
            WireName::from_slice(owner.as_slice()),
            UnknownRecordData::from_octets(rtype, rdata.as_slice()),
        ) {
            (true, Ok(name), Ok(data)) => self.push(&(name, Ttl::from_secs(record.ttl), data)),
            _ => {
                self.sent.unsendable += 1;
                tracing::error!(owner = %record.name, "a record that cannot be encoded is left out of a transfer");
                !self.sent.cut_short
            }
        };
        self.owner = owner;
        self.rdata = rdata;
        pushed
    }

    /// Adds one record, closing the message first when it is full. `false` once the
    /// connection is gone: stop producing.
    pub fn push(&mut self, record: &impl ComposeRecord) -> bool {
        if self.sent.cut_short {
            return false;
        }
        if self
            .current
            .as_ref()
            .is_some_and(|builder| builder.as_slice().len() >= MESSAGE_SOFT_BYTES)
        {
            self.flush();
        }
        let mut builder = match self.current.take() {
            Some(builder) => builder,
            None => self.start(),
        };
        if builder.push(record).is_err() {
            if self.in_current > 0 {
                self.current = Some(builder);
                self.flush();
                builder = self.start();
            }
            if builder.push(record).is_err() {
                self.sent.unsendable += 1;
                tracing::error!("a record larger than a transfer message cannot be sent");
            } else {
                self.in_current += 1;
            }
        } else {
            self.in_current += 1;
        }
        self.current = Some(builder);
        !self.sent.cut_short
    }

    fn flush(&mut self) {
        let Some(builder) = self.current.take() else {
            return;
        };
        let mut additional = builder.additional();
        if let Some(sequence) = self.tsig.as_mut() {
            if sequence.answer(&mut additional, Time48::now()).is_err() {
                // TSIG_RESERVE_BYTES keeps room for it; never expected.
                tracing::error!("no room left for the TSIG record of a transfer message");
            }
        }
        let bytes = additional.finish().into_target();
        self.sent.messages += 1;
        self.sent.records += self.in_current;
        self.sent.bytes += bytes.len();
        self.in_current = 0;
        if !(self.send)(bytes) {
            self.sent.cut_short = true;
        }
    }

    /// Sends what is left (an answer with no records is one message) and says how it went.
    pub fn finish(mut self) -> Sent {
        if self.current.is_none() && self.sent.messages == 0 {
            self.current = Some(self.start());
        }
        self.flush();
        self.sent
    }
}
