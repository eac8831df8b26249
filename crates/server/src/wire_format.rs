//! DNS wire-format constants and helpers shared by the answer paths (a leaf: nothing of the
//! crate below it).

use model::Name;

/// How a query arrived; decides the size limit and zone-transfer handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// RFC 1035 §4.1.1: the fixed header.
pub(crate) const HEADER_BYTES: usize = 12;
/// RFC 1035 §3.1: a name on the wire is at most 255 bytes.
pub(crate) const MAX_NAME_WIRE_BYTES: usize = 255;
/// The largest DNS message: what a TCP answer may fill (RFC 1035 §4.2.2).
pub(crate) const MAX_MESSAGE_BYTES: usize = 65_535;
/// RFC 1035 §4.2.1: the UDP limit without EDNS.
pub(crate) const CLASSIC_UDP_BYTES: usize = 512;
/// An OPT record with no options: root owner, type, class, TTL, RDLENGTH.
pub(crate) const OPT_BYTES: usize = 11;
pub(crate) const TYPE_OPT: u16 = 41;
pub(crate) const CLASS_IN: u16 = 1;

/// Header flags, first byte.
pub(crate) const FLAG_QR: u8 = 0x80;
pub(crate) const FLAG_AA: u8 = 0x04;
pub(crate) const FLAG_TC: u8 = 0x02;
pub(crate) const FLAG_RD: u8 = 0x01;
/// Header flags, second byte.
pub(crate) const FLAG_AD: u8 = 0x20;

/// `name` in wire format, ASCII lower-cased, fully qualified.
pub(crate) fn push_wire_lowercase(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter() {
        // Labels are at most 63 bytes (the library checks when names are made).
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

/// The length of `name` in wire format, fully qualified and uncompressed.
pub(crate) fn wire_length(name: &Name) -> usize {
    name.iter().map(|label| label.len() + 1).sum::<usize>() + 1
}

/// RFC 1035 §3.2.3 and RFC 1995: the zone transfer query types.
pub(crate) const TYPE_AXFR: u16 = 252;
pub(crate) const TYPE_IXFR: u16 = 251;

/// Whether `message` is a standard query (opcode 0, not a response) with one question whose
/// type is AXFR or IXFR: what the server hands to its [`crate::TransferService`]. Reads
/// only the header and the question; anything malformed is not a transfer (the answer paths
/// judge it).
pub fn is_transfer_request(message: &[u8]) -> bool {
    let Some(header) = message.get(..HEADER_BYTES) else {
        return false;
    };
    let opcode = (header[2] >> 3) & 0x0f;
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if header[2] & FLAG_QR != 0 || opcode != 0 || qdcount != 1 {
        return false;
    }
    let mut at = HEADER_BYTES;
    loop {
        let Some(&length) = message.get(at) else {
            return false;
        };
        if length == 0 {
            at += 1;
            break;
        }
        if length & 0xc0 != 0 || at - HEADER_BYTES > MAX_NAME_WIRE_BYTES {
            return false;
        }
        at += 1 + usize::from(length);
    }
    match message.get(at..at + 2) {
        Some(qtype) => matches!(
            u16::from_be_bytes([qtype[0], qtype[1]]),
            TYPE_AXFR | TYPE_IXFR
        ),
        None => false,
    }
}

/// RFC 1996: the NOTIFY opcode.
pub(crate) const OPCODE_NOTIFY: u8 = 4;

/// Whether `message` is a NOTIFY request (opcode 4, not a response): what the server hands
/// to its [`crate::TransferService`].
pub fn is_notify_request(message: &[u8]) -> bool {
    message.len() >= HEADER_BYTES
        && message[2] & FLAG_QR == 0
        && (message[2] >> 3) & 0x0f == OPCODE_NOTIFY
}

/// RFC 8945: the TSIG record type.
pub(crate) const TYPE_TSIG: u16 = 250;

/// Where the name starting at `at` ends (after its root label or compression pointer).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *message.get(at)?;
        match length & 0xc0 {
            0x00 if length == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(length),
            0xc0 => return (at + 2 <= message.len()).then_some(at + 2),
            _ => return None,
        }
    }
}

/// Whether the last record of `message` is a TSIG record (RFC 8945 §5.1: where a signed
/// message carries it): such a query goes to the [`crate::TransferService`] to be checked
/// and its answer signed. Walks the records only when there are additional ones; anything
/// malformed is not signed.
pub fn is_signed(message: &[u8]) -> bool {
    tsig_start(message).is_some()
}

/// Where the TSIG record that ends `message` starts (see [`is_signed`]): the message
/// without it is `message[..start]` with one additional record less.
pub fn tsig_start(message: &[u8]) -> Option<usize> {
    let header = message.get(..HEADER_BYTES)?;
    let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
    let (questions, records, additional) = (count(4), count(6) + count(8) + count(10), count(10));
    if additional == 0 {
        return None;
    }
    let mut at = HEADER_BYTES;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    for index in 0..records {
        let end = skip_name(message, at)?;
        let fixed = message.get(end..end + 10)?;
        if index + 1 == records {
            return (u16::from_be_bytes([fixed[0], fixed[1]]) == TYPE_TSIG).then_some(at);
        }
        at = end + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(flags: u8, qdcount: u8, qtype: u16) -> Vec<u8> {
        let mut message = vec![0x12, 0x34, flags, 0, 0, qdcount, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(b"\x07example\x04test\x00");
        message.extend_from_slice(&qtype.to_be_bytes());
        message.extend_from_slice(&1u16.to_be_bytes());
        message
    }

    #[test]
    fn axfr_and_ixfr_queries_are_transfer_requests() {
        assert!(is_transfer_request(&question(0, 1, TYPE_AXFR)));
        assert!(is_transfer_request(&question(0, 1, TYPE_IXFR)));
    }

    /// `question(…)` with one additional record of `rtype` (root owner, empty data).
    fn with_additional(rtype: u16) -> Vec<u8> {
        let mut message = question(0, 1, 6);
        message[11] = 1;
        message.push(0);
        message.extend_from_slice(&rtype.to_be_bytes());
        message.extend_from_slice(&[0, 255, 0, 0, 0, 0, 0, 0]);
        message
    }

    #[test]
    fn a_message_ending_in_a_tsig_record_is_signed_and_others_are_not() {
        assert!(is_signed(&with_additional(TYPE_TSIG)));
        assert!(!is_signed(&with_additional(TYPE_OPT)));
        assert!(!is_signed(&question(0, 1, 6)));
        assert_eq!(
            tsig_start(&with_additional(TYPE_TSIG)),
            Some(question(0, 1, 6).len())
        );
        let whole = with_additional(TYPE_TSIG);
        for cut in 0..whole.len() - 10 {
            assert!(!is_signed(&whole[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn notify_requests_are_told_from_queries_and_responses() {
        assert!(is_notify_request(&question(OPCODE_NOTIFY << 3, 1, 6)));
        assert!(!is_notify_request(&question(
            FLAG_QR | OPCODE_NOTIFY << 3,
            1,
            6
        )));
        assert!(!is_notify_request(&question(0, 1, 6)));
        assert!(!is_notify_request(&[0, 1, OPCODE_NOTIFY << 3]));
    }

    #[test]
    fn other_queries_responses_notifies_and_torn_messages_are_not() {
        assert!(!is_transfer_request(&question(0, 1, 6)));
        assert!(!is_transfer_request(&question(FLAG_QR, 1, TYPE_AXFR)));
        assert!(!is_transfer_request(&question(4 << 3, 1, TYPE_AXFR)));
        assert!(!is_transfer_request(&question(0, 2, TYPE_AXFR)));
        let whole = question(0, 1, TYPE_AXFR);
        for cut in 0..whole.len() - 2 {
            assert!(!is_transfer_request(&whole[..cut]), "cut at {cut}");
        }
    }
}
