//! The validator's DNS client: one question, one server, UDP or TCP, hickory-proto messages
//! over tokio sockets, bounded by a timeout. No retries here: a lost answer is a `Silent`
//! reply, which is never a reason to repair.
//!
//! [`observe_in_process`] asks the same questions of a server's [`server::Catalog`] through
//! the server's own bytes-in, bytes-out [`server::handle`], without sockets, and reads the
//! replies with the same parsing: the deterministic simulation's way to learn what a server
//! serves.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use model::EndpointConfig;
use server::{Catalog, ServerConfig};

use crate::check::{Observation, Reply, Transport};

/// Largest UDP answer read.
const UDP_RECEIVE_BYTES: usize = 65_535;
/// Datagrams read while waiting for the one with our ID (stray replies are dropped).
const UDP_STRAY_REPLIES: usize = 8;

/// Asks `server` one question and returns the parsed reply, or why there is none.
pub async fn ask(
    server: SocketAddr,
    transport: Transport,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let query = query(name, rtype);
    let bytes = query
        .to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    let exchange = async {
        match transport {
            Transport::Udp => udp(server, &bytes, query.metadata.id).await,
            Transport::Tcp => tcp(server, &bytes).await,
        }
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))??;
    parse_reply(&reply, &query)
}

/// The reply to `query`, or why it is not one.
fn parse_reply(reply: &[u8], query: &Message) -> Result<Message, String> {
    let message = Message::from_vec(reply).map_err(|e| format!("unparsable answer: {e}"))?;
    if message.metadata.id != query.metadata.id
        || message.metadata.message_type != MessageType::Response
    {
        return Err("the answer does not match the question".into());
    }
    Ok(message)
}

/// The SOA serial at `zone`'s apex.
pub async fn serial(
    server: SocketAddr,
    transport: Transport,
    zone: &Name,
    timeout: Duration,
) -> Reply<u32> {
    serial_reply(ask(server, transport, zone, RecordType::SOA, timeout).await)
}

/// The serial in the reply to an SOA question.
fn serial_reply(asked: Result<Message, String>) -> Reply<u32> {
    match asked {
        Err(detail) => Reply::Silent { detail },
        Ok(message) => match message.metadata.response_code {
            ResponseCode::NoError => message
                .answers
                .iter()
                .find_map(|record| match &record.data {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                })
                .map_or_else(
                    || Reply::Error {
                        rcode: "NOERROR without an SOA".into(),
                    },
                    Reply::Answer,
                ),
            rcode => Reply::Error {
                rcode: rcode.to_string(),
            },
        },
    }
}

/// The A and AAAA addresses at `name`. NXDOMAIN and NODATA answer nothing; a truncated UDP
/// answer counts as silent (TCP is asked too).
pub async fn addresses(
    server: SocketAddr,
    transport: Transport,
    name: &Name,
    timeout: Duration,
) -> Reply<BTreeSet<IpAddr>> {
    let mut found = BTreeSet::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        let asked = ask(server, transport, name, rtype, timeout).await;
        if let Err(reply) = collect_addresses(asked, name, &mut found) {
            return reply;
        }
    }
    Reply::Answer(found)
}

/// Adds the addresses at `name` in the reply to an A or AAAA question to `found`; `Err` is
/// the whole answer when the reply is not usable (silent, truncated, an error code).
fn collect_addresses(
    asked: Result<Message, String>,
    name: &Name,
    found: &mut BTreeSet<IpAddr>,
) -> Result<(), Reply<BTreeSet<IpAddr>>> {
    let message = asked.map_err(|detail| Reply::Silent { detail })?;
    if message.metadata.truncation {
        return Err(Reply::Silent {
            detail: "truncated".into(),
        });
    }
    match message.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rcode => {
            return Err(Reply::Error {
                rcode: rcode.to_string(),
            })
        }
    }
    for record in &message.answers {
        if record.name.to_lowercase() != name.to_lowercase() {
            continue;
        }
        match &record.data {
            RData::A(a) => found.insert(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => found.insert(IpAddr::V6(aaaa.0)),
            _ => false,
        };
    }
    Ok(())
}

/// What a server answering from `catalog` with `config` serves over `transport`: the zone's
/// serial and every protected name's addresses, asked as DNS messages through
/// [`server::handle`] and read with the same parsing as the wire client. No sockets, no
/// clock, no randomness in the answer: the same catalog gives the same observation. The
/// observation is labelled with `config.listen`.
pub fn observe_in_process(
    catalog: &Catalog,
    config: &ServerConfig,
    transport: Transport,
    zone: &Name,
    endpoints: &[EndpointConfig],
) -> Observation {
    let server = config.listen;
    let ask = |name: &Name, rtype: RecordType| -> Result<Message, String> {
        let query = query(name, rtype);
        let bytes = query
            .to_vec()
            .map_err(|e| format!("cannot encode the query: {e}"))?;
        let on = match transport {
            Transport::Udp => server::Transport::Udp,
            Transport::Tcp => server::Transport::Tcp,
        };
        let reply = server::handle(&bytes, on, catalog, config)
            .ok_or_else(|| "the server stayed silent".to_string())?;
        parse_reply(&reply, &query)
    };
    let serial = serial_reply(ask(zone, RecordType::SOA));
    let mut answers = BTreeMap::new();
    for endpoint in endpoints {
        let name = &endpoint.name;
        let mut found = BTreeSet::new();
        let mut reply = None;
        for rtype in [RecordType::A, RecordType::AAAA] {
            if let Err(unusable) = collect_addresses(ask(name, rtype), name, &mut found) {
                reply = Some(unusable);
                break;
            }
        }
        answers.insert(name.clone(), reply.unwrap_or(Reply::Answer(found)));
    }
    Observation {
        server,
        transport,
        serial,
        endpoints: answers,
    }
}

fn query(name: &Name, rtype: RecordType) -> Message {
    static NEXT_ID: AtomicU16 = AtomicU16::new(0x5a17);
    let id = NEXT_ID.fetch_add(7919, Ordering::Relaxed);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    message
}

async fn udp(server: SocketAddr, bytes: &[u8], id: u16) -> Result<Vec<u8>, String> {
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("udp bind: {e}"))?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("udp connect: {e}"))?;
    socket
        .send(bytes)
        .await
        .map_err(|e| format!("udp send: {e}"))?;
    let mut buffer = vec![0u8; UDP_RECEIVE_BYTES];
    for _ in 0..UDP_STRAY_REPLIES {
        let length = socket
            .recv(&mut buffer)
            .await
            .map_err(|e| format!("udp receive: {e}"))?;
        if length >= 2 && u16::from_be_bytes([buffer[0], buffer[1]]) == id {
            return Ok(buffer[..length].to_vec());
        }
    }
    Err("only stray replies".into())
}

async fn tcp(server: SocketAddr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|e| format!("tcp connect: {e}"))?;
    // A query is one question: far below 64 KiB.
    let length = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| format!("tcp send: {e}"))?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| format!("tcp receive: {e}"))?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|e| format!("tcp receive: {e}"))?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use model::rdata::{A, NS, SOA};
    use model::{BackendConfig, Check, Generation, Record, ZoneContent};
    use server::ZoneSnapshot;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn zone_with(app: &[u8]) -> ZoneContent {
        let origin = name("example.test.");
        let ns = name("ns.example.test.");
        let soa = SOA::new(
            ns.clone(),
            name("hostmaster.example.test."),
            41,
            3600,
            600,
            86_400,
            30,
        );
        let mut records = vec![
            Record::from_rdata(origin.clone(), 3600, model::RData::SOA(soa)),
            Record::from_rdata(origin.clone(), 3600, model::RData::NS(NS(ns.clone()))),
            Record::from_rdata(ns, 3600, model::RData::A(A::new(127, 0, 0, 1))),
        ];
        for last in app {
            records.push(Record::from_rdata(
                name("app.example.test."),
                30,
                model::RData::A(A::new(127, 0, 0, *last)),
            ));
        }
        ZoneContent::from_records(origin, records).unwrap()
    }

    fn endpoints() -> Vec<EndpointConfig> {
        let backends = [11, 12]
            .into_iter()
            .map(|last| BackendConfig {
                address: IpAddr::from([127, 0, 0, last]),
                check: Check::None,
                weight: 1,
            })
            .collect();
        vec![EndpointConfig::new(name("app.example.test."), backends)]
    }

    fn observe(catalog: &Catalog, transport: Transport) -> Observation {
        let config = ServerConfig::new("127.0.0.1:53".parse().unwrap());
        let seen = observe_in_process(
            catalog,
            &config,
            transport,
            &name("example.test."),
            &endpoints(),
        );
        assert_eq!(seen.server, config.listen);
        seen
    }

    #[test]
    fn in_process_observation_reads_what_the_catalog_serves_over_both_transports() {
        let catalog = Catalog::new();
        catalog.replace_zone(Arc::new(ZoneSnapshot::build(
            &zone_with(&[11, 99]),
            Generation(3),
        )));
        for transport in [Transport::Udp, Transport::Tcp] {
            let seen = observe(&catalog, transport);
            assert_eq!(seen.serial, Reply::Answer(41));
            assert_eq!(
                seen.endpoints[&name("app.example.test.")],
                Reply::Answer(
                    [IpAddr::from([127, 0, 0, 11]), IpAddr::from([127, 0, 0, 99])].into()
                )
            );
        }
    }

    #[test]
    fn in_process_observation_of_an_emptied_name_answers_nothing() {
        let catalog = Catalog::new();
        catalog.replace_zone(Arc::new(ZoneSnapshot::build(
            &zone_with(&[]),
            Generation(4),
        )));
        let seen = observe(&catalog, Transport::Udp);
        assert_eq!(
            seen.endpoints[&name("app.example.test.")],
            Reply::Answer(BTreeSet::new())
        );
    }

    #[test]
    fn in_process_observation_of_a_zone_not_served_is_refused() {
        let seen = observe(&Catalog::new(), Transport::Tcp);
        assert!(matches!(seen.serial, Reply::Error { .. }), "{seen:?}");
        assert!(matches!(
            seen.endpoints[&name("app.example.test.")],
            Reply::Error { .. }
        ));
    }
}
