//! Arbitrary bytes as a DNS query to the authoritative server.
//!
//! Served zones, built once: the repository's example zones (`examples/zones/`,
//! `example.test` and `dname.test`) with pre-encoded answers, and a copy of `example.test`
//! renamed `carried.test` served as a patched version answering from its predecessor's
//! carried table (`ZoneSnapshot::carry_answers`), so the hot path's carried branch is
//! reached too.
//!
//! Properties, for the default configuration and for the largest UDP payload we allow:
//! * the library path (`answer_library`) and the server's own choice of path (`handle`,
//!   `handle_with`: the hot path first) never panic, over UDP and TCP; silence (`None`) is
//!   allowed (library.rs: fewer than 12 bytes, or QR set);
//! * every reply has QR set, the query's ID, at least a header, and decodes as a message
//!   unless it is a bare error header (the rule of library.rs's own property test);
//! * a UDP reply fits what the query allows: 512 bytes without an additional record,
//!   otherwise the OPT's payload size raised to 512 and clamped to ours (library.rs
//!   `answer`); a TCP reply fits a TCP length prefix;
//! * whenever the hot path (`answer_fast`) answers, over UDP or TCP, its bytes are the
//!   library path's reply for that transport, byte for byte: table.rs stores exactly what
//!   encode.rs encodes and the library path is the reference, so nothing is ignored in the
//!   comparison; and what the server sends (`handle`) is the library path's reply. The hot
//!   path may decline anything (`None`), as the shell (answer.rs) then asks the library
//!   path.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use model::{Generation, Name, RData, Record, RecordSet, RecordType, ZoneContent};
use server::{
    answer_fast, answer_library, handle, handle_with, Catalog, ServerConfig, Transport,
    ZoneSnapshot,
};

const EXAMPLE_ZONE: &str = include_str!("../../examples/zones/example.test.zone");
const DNAME_ZONE: &str = include_str!("../../examples/zones/dname.test.zone");
/// The UDP shell's reply buffer (server's `udp_batch::REPLY_BYTES`), given to the hot path.
const REPLY_BYTES: usize = 4_096 + 512;
const HEADER_BYTES: usize = 12;
const CLASSIC_UDP_BYTES: usize = 512;
const TYPE_OPT: u16 = 41;

struct Fixture {
    catalog: Catalog,
    zones: Arc<server::Zones>,
    configs: [ServerConfig; 2],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let catalog = Catalog::new();
        let example = parse_zone(EXAMPLE_ZONE, "example.test.zone");
        catalog.replace_zone(Arc::new(ZoneSnapshot::build(&example, Generation(1))));
        let dname = parse_zone(DNAME_ZONE, "dname.test.zone");
        catalog.replace_zone(Arc::new(ZoneSnapshot::build(&dname, Generation(1))));
        catalog.replace_zone(Arc::new(carried_zone()));
        let zones = catalog.snapshot();
        assert_eq!(zones.len(), 3, "three zones served");
        let default = ServerConfig::default();
        let largest = ServerConfig {
            udp_payload_bytes: model::limits::UDP_PAYLOAD_BYTES.max as u16,
            ..default.clone()
        };
        Fixture {
            catalog,
            zones,
            configs: [default, largest],
        }
    })
}

fn parse_zone(text: &str, file: &str) -> ZoneContent {
    // The example zones are part of the repository and parse (zonefile's own tests).
    zonefile::parse_str(text, Path::new(file), None).expect("example zone parses")
}

/// `carried.test`: the example zone renamed, then a second version (serial, an address of a
/// CNAME target, a new deep name, a removed name) patched onto it and answering from the
/// first version's carried table.
fn carried_zone() -> ZoneSnapshot {
    let first = parse_zone(
        &EXAMPLE_ZONE.replace("example.test.", "carried.test."),
        "carried.test.zone",
    );
    let encoded = ZoneSnapshot::build(&first, Generation(1));
    let mut second = first.with_serial(first.serial().unwrap_or(0).wrapping_add(1));
    let www = name("www.carried.test.");
    second.remove_rrset(&www, RecordType::A);
    for (owner, last) in [("www.carried.test.", 77u8), ("n.m.carried.test.", 99)] {
        second
            .insert(Record::from_rdata(
                name(owner),
                60,
                RData::A(model::rdata::A::new(192, 0, 2, last)),
            ))
            .expect("an A record in the zone is valid");
    }
    second.remove_rrset(&name("api.carried.test."), RecordType::A);
    let (removed, added) = changes(&first, &second);
    let patched = encoded.patched(&removed, &added, Generation(2));
    patched
        .carry_answers(&encoded)
        .expect("these changes are of a kind that is carried")
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("fixture names are valid")
}

/// The record sets of every name that differs between `old` and `new`, as the follower
/// hands them to `ZoneSnapshot::patched`.
fn changes(old: &ZoneContent, new: &ZoneContent) -> (Vec<RecordSet>, Vec<RecordSet>) {
    let by_name = |content: &ZoneContent| {
        let mut names: BTreeMap<Name, Vec<RecordSet>> = BTreeMap::new();
        for set in content.rrsets() {
            names
                .entry(set.name.to_lowercase())
                .or_default()
                .push(set.clone());
        }
        names
    };
    let (before, after) = (by_name(old), by_name(new));
    let mut names: Vec<&Name> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for name in names {
        if before.get(name) != after.get(name) {
            removed.extend(before.get(name).cloned().unwrap_or_default());
            added.extend(after.get(name).cloned().unwrap_or_default());
        }
    }
    (removed, added)
}

fuzz_target!(|packet: &[u8]| {
    let fixture = fixture();
    for config in &fixture.configs {
        check_query(packet, fixture, config);
    }
});

fn check_query(packet: &[u8], fixture: &Fixture, config: &ServerConfig) {
    let udp = answer_library(packet, Transport::Udp, &fixture.zones, config);
    let tcp = answer_library(packet, Transport::Tcp, &fixture.zones, config);
    if packet.len() < HEADER_BYTES || packet[2] & 0x80 != 0 {
        assert!(udp.is_none() && tcp.is_none(), "a non-query got a reply");
    }
    if let Some(reply) = &udp {
        check_reply(packet, reply, "udp");
        let limit = udp_limit(packet, config.udp_payload_bytes);
        assert!(
            reply.len() <= limit,
            "udp reply of {} bytes exceeds the query's limit of {limit}",
            reply.len()
        );
    }
    if let Some(reply) = &tcp {
        check_reply(packet, reply, "tcp");
        assert!(
            reply.len() <= usize::from(u16::MAX),
            "tcp reply over 65535 bytes"
        );
    }
    let mut out = vec![0u8; usize::from(u16::MAX)];
    for (transport, library, room) in [
        (Transport::Udp, &udp, REPLY_BYTES),
        (Transport::Tcp, &tcp, usize::from(u16::MAX)),
    ] {
        if let Some(length) =
            answer_fast(packet, transport, &fixture.zones, config, &mut out[..room])
        {
            let fast = &out[..length];
            check_reply(packet, fast, "fast");
            assert_eq!(
                Some(fast),
                library.as_deref(),
                "the hot path's {transport:?} answer differs from the library path's"
            );
        }
    }
    assert_eq!(
        handle(packet, Transport::Udp, &fixture.catalog, config),
        udp,
        "the server's UDP answer differs from the library path's"
    );
    assert_eq!(
        handle_with(packet, Transport::Tcp, &fixture.zones, config),
        tcp,
        "the server's TCP answer differs from the library path's"
    );
}

fn check_reply(packet: &[u8], reply: &[u8], path: &str) {
    assert!(
        reply.len() >= HEADER_BYTES,
        "{path}: reply shorter than a header"
    );
    assert!(reply[2] & 0x80 != 0, "{path}: QR is not set");
    assert_eq!(reply[..2], packet[..2], "{path}: the ID is not the query's");
    let rcode = reply[3] & 0x0f;
    let bare_error = matches!(rcode, 1 | 4 | 5) && reply[4..12].iter().all(|b| *b == 0);
    if !bare_error {
        if let Err(error) = Message::from_vec(reply) {
            panic!("{path}: the reply does not decode: {error}");
        }
    }
}

/// The UDP size `packet` allows, worked out from its bytes independently of wire.rs: 512
/// without an additional record; with an OPT straight after the question, its payload size
/// (class) raised to 512 and clamped to ours; ours when the bytes do not say (such queries
/// get FORMERR or REFUSED, far below it anyway).
fn udp_limit(packet: &[u8], our_payload_bytes: u16) -> usize {
    let word = |at: usize| {
        packet
            .get(at..at + 2)
            .map(|bytes| usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
    };
    let ours = usize::from(our_payload_bytes);
    if word(10) == Some(0) {
        return CLASSIC_UDP_BYTES;
    }
    if word(6) != Some(0) || word(8) != Some(0) {
        return ours;
    }
    let Some(owner) = skip_name(packet, HEADER_BYTES).map(|end| end + 4) else {
        return ours;
    };
    let Some(fixed) = skip_name(packet, owner) else {
        return ours;
    };
    match (word(fixed), word(fixed + 2)) {
        (Some(rtype), Some(class)) if rtype == usize::from(TYPE_OPT) => {
            class.max(CLASSIC_UDP_BYTES).min(ours)
        }
        _ => ours,
    }
}

/// The offset just past the wire name at `at` (labels, then the root or a pointer).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let length = *packet.get(at)?;
        match length & 0xc0 {
            0 if length == 0 => return Some(at + 1),
            0 => at += 1 + usize::from(length),
            0xc0 => return Some(at + 2).filter(|end| *end <= packet.len()),
            _ => return None,
        }
    }
}
