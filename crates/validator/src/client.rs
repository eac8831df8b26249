//! The validator's DNS client: one question, one server, UDP or TCP, hickory-proto messages
//! over tokio sockets, bounded by a timeout. No retries here: a lost answer is a `Silent`
//! reply, which is never a reason to repair.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::check::{Reply, Transport};

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
    let message = Message::from_vec(&reply).map_err(|e| format!("unparsable answer: {e}"))?;
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
    match ask(server, transport, zone, RecordType::SOA, timeout).await {
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
        let message = match ask(server, transport, name, rtype, timeout).await {
            Ok(message) => message,
            Err(detail) => return Reply::Silent { detail },
        };
        if message.metadata.truncation {
            return Reply::Silent {
                detail: "truncated".into(),
            };
        }
        match message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            rcode => {
                return Reply::Error {
                    rcode: rcode.to_string(),
                }
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
    }
    Reply::Answer(found)
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
