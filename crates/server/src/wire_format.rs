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
