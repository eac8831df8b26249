//! The async shell: sockets in, [`handle`] in the middle, sockets out.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::catalog::Catalog;
use crate::config::ServerConfig;
use crate::wire::{handle, Transport};
use crate::ServerError;

/// Largest datagram we read; anything longer is cut and then fails to parse.
const UDP_RECEIVE_BYTES: usize = 65_535;

/// Sockets bound and ready; [`Server::run`] answers on them until shutdown.
pub struct Server {
    config: Arc<ServerConfig>,
    catalog: Arc<Catalog>,
    udp: UdpSocket,
    tcp: TcpListener,
    local_addr: SocketAddr,
}

impl Server {
    /// Binds TCP on `config.listen`, then UDP on the same address and port (so port 0
    /// picks one port for both).
    pub async fn bind(config: ServerConfig, catalog: Arc<Catalog>) -> Result<Server, ServerError> {
        let config = config.clamped();
        let tcp = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                address: config.listen,
                source,
            })?;
        let local_addr = tcp.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen,
            source,
        })?;
        let udp = UdpSocket::bind(local_addr)
            .await
            .map_err(|source| ServerError::Bind {
                address: local_addr,
                source,
            })?;
        Ok(Server {
            config: Arc::new(config),
            catalog,
            udp,
            tcp,
            local_addr,
        })
    }

    /// The address both sockets are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers queries until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let udp = tokio::spawn(serve_udp(
            self.udp,
            Arc::clone(&self.catalog),
            Arc::clone(&self.config),
        ));
        let tcp = tokio::spawn(serve_tcp(
            self.tcp,
            Arc::clone(&self.catalog),
            Arc::clone(&self.config),
        ));
        shutdown.await;
        udp.abort();
        tcp.abort();
        Ok(())
    }
}

/// Binds `config.listen` and serves `catalog` until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    catalog: Arc<Catalog>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    Server::bind(config, catalog).await?.run(shutdown).await
}

async fn serve_udp(socket: UdpSocket, catalog: Arc<Catalog>, config: Arc<ServerConfig>) {
    let mut buffer = vec![0u8; UDP_RECEIVE_BYTES];
    loop {
        let (length, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                tracing::debug!(%error, "udp receive failed");
                continue;
            }
        };
        if let Some(reply) = handle(&buffer[..length], Transport::Udp, &catalog, &config) {
            if let Err(error) = socket.send_to(&reply, peer).await {
                tracing::debug!(%error, %peer, "udp send failed");
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, catalog: Arc<Catalog>, config: Arc<ServerConfig>) {
    let permits = Arc::new(Semaphore::new(config.tcp_connections));
    loop {
        // Wait for a free slot before accepting: the connection limit holds at all times.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "tcp accept failed");
                continue;
            }
        };
        let catalog = Arc::clone(&catalog);
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream, &catalog, &config).await {
                tracing::debug!(%error, %peer, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// RFC 7766: length-prefixed messages, answered in order, until the client closes, goes
/// idle, sends something unreadable or reaches the per-connection query limit.
async fn serve_connection(
    mut stream: TcpStream,
    catalog: &Catalog,
    config: &ServerConfig,
) -> std::io::Result<()> {
    let idle = config.tcp_idle_timeout();
    let mut message = Vec::new();
    for _ in 0..config.tcp_queries_per_connection {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut prefix)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        let length = usize::from(u16::from_be_bytes(prefix));
        message.resize(length, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        let Some(reply) = handle(&message, Transport::Tcp, catalog, config) else {
            continue;
        };
        // Replies are at most 65535 bytes: the encoder's buffer is bounded by u16::MAX.
        let length = u16::try_from(reply.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&reply[..usize::from(length)]);
        stream.write_all(&framed).await?;
    }
    stream.shutdown().await
}
