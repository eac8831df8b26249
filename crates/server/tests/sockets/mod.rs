//! A loopback server on the test zone and the raw-socket helpers the socket tests share.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use model::Generation;
use server::{Catalog, Server, ServerConfig, ZoneSnapshot};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::common::example_zone;

/// How long a test waits for a reply the server is expected to send.
pub const REPLY_DEADLINE: Duration = Duration::from_millis(300);

/// A server on a loopback port serving [`example_zone`] (serial 7, generation 1); it stops
/// when the returned sender is dropped.
pub async fn start() -> (SocketAddr, Arc<Catalog>, tokio::sync::oneshot::Sender<()>) {
    // These tests send many queries from one address; rate limiting has its own tests.
    start_with(ServerConfig {
        rrl: server::RrlConfig::off(),
        ..ServerConfig::new(([127, 0, 0, 1], 0).into())
    })
    .await
}

/// [`start`] with `config` (its listen address is used as given).
pub async fn start_with(
    config: ServerConfig,
) -> (SocketAddr, Arc<Catalog>, tokio::sync::oneshot::Sender<()>) {
    let catalog = Arc::new(Catalog::new());
    catalog.replace_zone(Arc::new(ZoneSnapshot::build(
        &example_zone(7),
        Generation(1),
    )));
    let server = Server::bind(config, Arc::clone(&catalog))
        .await
        .expect("loopback port 0 binds");
    let address = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (address, catalog, stop)
}

pub fn header(flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [0xbeefu16, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

pub fn question(qname: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in qname.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, 0, 1, 0, 1]);
    out
}

/// Sends `packet` and waits [`REPLY_DEADLINE`] for a reply.
pub async fn udp_exchange(socket: &UdpSocket, packet: &[u8]) -> Option<Vec<u8>> {
    socket.send(packet).await.expect("loopback send");
    let mut buffer = vec![0u8; 65_535];
    match tokio::time::timeout(REPLY_DEADLINE, socket.recv(&mut buffer)).await {
        Ok(Ok(length)) => Some(buffer[..length].to_vec()),
        _ => None,
    }
}

/// One length-prefixed reply, or `None` when none comes within [`REPLY_DEADLINE`].
pub async fn tcp_read_reply(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 2];
    tokio::time::timeout(REPLY_DEADLINE, stream.read_exact(&mut prefix))
        .await
        .ok()?
        .ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    tokio::time::timeout(REPLY_DEADLINE, stream.read_exact(&mut reply))
        .await
        .ok()?
        .ok()?;
    Some(reply)
}
