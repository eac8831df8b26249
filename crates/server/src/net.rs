//! The shell: UDP worker threads (one `SO_REUSEPORT` socket each, batched system calls,
//! the hot path first), TCP on the async runtime; `crate::answer` chooses the path for both.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::answer::{answer, Reply};
use crate::catalog::Catalog;
use crate::config::ServerConfig;
use crate::cookie::{self, CookieSecret};
use crate::library::Answered;
use crate::rrl::{self, RateLimiter, RrlAction};
use crate::stats::{RrlCount, ServerCounters, StatsTransport};
use crate::tcp_table::{Admitted, TcpTable};
use crate::transfer::TransferService;
use crate::udp_batch::{self, Batch};
use crate::wire_format::{
    is_notify_request, is_signed, is_transfer_request, Transport, MAX_MESSAGE_BYTES,
};
use crate::ServerError;

/// The statistics shard TCP connections count in: the last, which only the fourth UDP
/// worker (of a server with at least four) shares.
const TCP_STATS_SHARD: usize = crate::stats::STATS_SHARDS - 1;

/// How often an idle UDP worker looks whether the server is shutting down.
const UDP_SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Messages of a zone transfer produced ahead of the connection's writes: enough to keep
/// the socket busy, few enough that a slow secondary does not make the server hold the zone
/// twice.
const TRANSFER_QUEUE_MESSAGES: usize = 16;

/// Sockets bound and ready; [`Server::run`] answers on them until shutdown.
pub struct Server {
    config: Arc<ServerConfig>,
    catalog: Arc<Catalog>,
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
    local_addr: SocketAddr,
    /// Key of the server cookies this server hands out (RFC 7873, RFC 9018).
    cookies: Arc<CookieSecret>,
    /// Who answers AXFR and IXFR over TCP; `None` refuses them.
    transfers: Option<Arc<dyn TransferService>>,
}

impl Server {
    /// Binds TCP on `config.listen`, then `config.udp_workers` UDP sockets on the same
    /// address and port with `SO_REUSEPORT` (so port 0 picks one port for all).
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
        // SO_REUSEPORT only when several workers share the port: any process of the same
        // user may join a reuse-port group and take a share of its queries.
        let reuse_port = config.udp_workers > 1;
        let udp = (0..config.udp_workers)
            .map(|_| bind_udp(local_addr, reuse_port))
            .collect::<Result<Vec<_>, _>>()
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
            cookies: Arc::new(CookieSecret::random()),
            transfers: None,
        })
    }

    /// Hands AXFR and IXFR requests over TCP to `service` (else they are refused).
    pub fn with_transfers(mut self, service: Arc<dyn TransferService>) -> Server {
        self.transfers = Some(service);
        self
    }

    /// The address both sockets are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers queries until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let limiter = RateLimiter::new(&self.config.rrl).map(Arc::new);
        for (index, socket) in self.udp.into_iter().enumerate() {
            let catalog = Arc::clone(&self.catalog);
            let config = Arc::clone(&self.config);
            let stop = Arc::clone(&stop);
            let limiter = limiter.clone();
            let cookies = Arc::clone(&self.cookies);
            let transfers = self.transfers.clone();
            let worker = std::thread::Builder::new()
                .name(format!("dnsward-udp-{index}"))
                .spawn(move || {
                    let shell = UdpShell {
                        catalog: &catalog,
                        config: &config,
                        limiter: limiter.as_deref(),
                        cookies: &cookies,
                        transfers: transfers.as_ref(),
                    };
                    serve_udp(&socket, &shell, &stop, index)
                });
            match worker {
                Ok(worker) => workers.push(worker),
                Err(error) => tracing::error!(%error, "cannot start a udp worker"),
            }
        }
        let tcp = tokio::spawn(serve_tcp(
            self.tcp,
            Arc::clone(&self.catalog),
            Arc::clone(&self.config),
            Arc::clone(&self.cookies),
            self.transfers.clone(),
        ));
        shutdown.await;
        stop.store(true, Ordering::Relaxed);
        tcp.abort();
        // Workers notice within one poll interval; their sockets close when they return.
        let _ = tokio::task::spawn_blocking(move || {
            for worker in workers {
                let _ = worker.join();
            }
        })
        .await;
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

fn bind_udp(address: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_port(reuse_port)?;
    #[cfg(not(unix))]
    let _ = reuse_port;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&address.into())?;
    socket.set_read_timeout(Some(UDP_SHUTDOWN_POLL))?;
    Ok(socket.into())
}

/// One worker: a batch in, the catalog loaded once for it, every query answered by the
/// hot path or else the library path and counted in the worker's own statistics shard,
/// charged to its account when rate limiting is on (`crate::rrl`), the batch out.
fn serve_udp(socket: &UdpSocket, shell: &UdpShell<'_>, stop: &AtomicBool, shard: usize) {
    let UdpShell {
        catalog,
        config,
        limiter,
        cookies,
        transfers,
    } = *shell;
    let counters = catalog.counters();
    let mut batch = Batch::new();
    while !stop.load(Ordering::Relaxed) {
        match udp_batch::receive(socket, &mut batch) {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(error) => {
                // ICMP errors from earlier sends surface here on some systems; keep going.
                tracing::debug!(%error, "udp receive failed");
                continue;
            }
        }
        let received = Instant::now();
        let now_ms = limiter.map_or(0, RateLimiter::now_ms);
        let now_s = unix_seconds();
        let zones = catalog.load();
        for index in 0..batch.len() {
            let peer = batch.peer(index);
            let (query, reply) = batch.slot(index);
            if let (Some(service), Some(peer)) = (transfers, peer) {
                let signed = is_signed(query);
                if signed || is_notify_request(query) {
                    let handed = if signed && !is_notify_request(query) {
                        service.signed_query(query, peer, &mut |unsigned| {
                            crate::library::answer_library(unsigned, Transport::Udp, &zones, config)
                        })
                    } else {
                        service.notify(query, peer)
                    };
                    // `None`: the answer paths take it (NOTIFY → NOTIMP).
                    if let Some(answer) = handed {
                        let length = if answer.len() <= reply.len() {
                            reply[..answer.len()].copy_from_slice(&answer);
                            answer.len()
                        } else {
                            0
                        };
                        batch.set_reply(index, length);
                        continue;
                    }
                }
            }
            // Queries with options (a COOKIE among them) never take the hot path.
            let mut cookie_verified = false;
            let length = match answer(query, Transport::Udp, &zones, config, reply) {
                Some(Reply::Fast { length, counters }) => {
                    counters.count(shard, crate::stats::reply_rcode(reply));
                    length
                }
                Some(Reply::Library(mut answered)) if answered.reply.len() <= reply.len() => {
                    if let (Some(peer), Some(cookie)) = (peer, cookie::query_cookie(query)) {
                        cookie_verified = cookie::verified(cookies, &cookie, peer, now_s);
                        let limit =
                            cookie::udp_limit(query, config.udp_payload_bytes).min(reply.len());
                        cookie::add_to_reply(
                            &mut answered.reply,
                            cookies,
                            &cookie,
                            peer,
                            now_s,
                            limit,
                        );
                    }
                    let length = answered.reply.len();
                    reply[..length].copy_from_slice(&answered.reply);
                    count(counters, &answered, shard);
                    length
                }
                _ => 0,
            };
            if length == 0 {
                counters.count_dropped(shard);
            } else {
                counters.observe_latency(StatsTransport::Udp, shard, received.elapsed());
            }
            let length = match (limiter, peer) {
                // A verified server cookie proves the source address: never limited.
                (Some(limiter), Some(peer)) if length > 0 && !cookie_verified => {
                    let (_, reply) = batch.slot(index);
                    rate_limited(limiter, peer, reply, length, now_ms, counters, shard)
                }
                _ => length,
            };
            batch.set_reply(index, length);
        }
        drop(zones);
        udp_batch::send(socket, &mut batch);
    }
}

/// What every UDP worker shares.
#[derive(Clone, Copy)]
struct UdpShell<'a> {
    catalog: &'a Catalog,
    config: &'a ServerConfig,
    limiter: Option<&'a RateLimiter>,
    cookies: &'a CookieSecret,
    transfers: Option<&'a Arc<dyn TransferService>>,
}

/// Seconds since the Unix epoch (the server cookies' clock).
fn unix_seconds() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX)
        })
}

/// The length of `reply` after response rate limiting: unchanged, shortened to a
/// truncated reply (slip), or 0 (dropped); counted.
fn rate_limited(
    limiter: &RateLimiter,
    peer: std::net::IpAddr,
    reply: &mut [u8],
    length: usize,
    now_ms: u64,
    counters: &ServerCounters,
    shard: usize,
) -> usize {
    let outcome = limiter.judge(peer, &reply[..length], now_ms);
    match outcome.action {
        RrlAction::Send => {
            if outcome.would_limit {
                counters.count_rrl(shard, RrlCount::WouldLimit);
            }
            length
        }
        RrlAction::Slip => {
            counters.count_rrl(shard, RrlCount::Slipped);
            rrl::slip_reply(reply, length)
        }
        RrlAction::Drop => {
            counters.count_rrl(shard, RrlCount::Dropped);
            0
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    catalog: Arc<Catalog>,
    config: Arc<ServerConfig>,
    cookies: Arc<CookieSecret>,
    transfers: Option<Arc<dyn TransferService>>,
) {
    let table = Arc::new(TcpTable::new(&config));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "tcp accept failed");
                continue;
            }
        };
        // No slot (every connection busy, or this source at its cap with none idle): the
        // connection is closed at once.
        let Some(admitted) = table.admit(peer.ip()) else {
            tracing::debug!(%peer, "tcp connection refused: no idle slot to give way");
            continue;
        };
        let catalog = Arc::clone(&catalog);
        let config = Arc::clone(&config);
        let table = Arc::clone(&table);
        let cookies = Arc::clone(&cookies);
        let transfers = transfers.clone();
        tokio::spawn(async move {
            let shell = TcpShell {
                catalog: &catalog,
                config: &config,
                table: &table,
                cookies: &cookies,
                transfers: transfers.as_ref(),
                peer: peer.ip(),
            };
            if let Err(error) = serve_connection(stream, &shell, &admitted).await {
                tracing::debug!(%error, %peer, "tcp connection ended");
            }
        });
    }
}

/// RFC 7766: length-prefixed messages, answered in order, until the client closes, goes
/// idle, sends something unreadable, reaches the per-connection query limit, or its slot
/// goes to a new connection while it is idle (`crate::tcp_table`).
async fn serve_connection(
    mut stream: TcpStream,
    shell: &TcpShell<'_>,
    admitted: &Admitted,
) -> std::io::Result<()> {
    let TcpShell { config, table, .. } = *shell;
    let mut message = Vec::new();
    // The length prefix, then the reply: written in place by either answer path.
    let mut framed = vec![0u8; 2 + MAX_MESSAGE_BYTES];
    for _ in 0..config.tcp_queries_per_connection {
        admitted.idle();
        let idle = table.idle_timeout();
        let mut prefix = [0u8; 2];
        tokio::select! {
            read = tokio::time::timeout(idle, stream.read_exact(&mut prefix)) => match read {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Ok(()),
            },
            () = admitted.evicted.notified() => return Ok(()),
        }
        admitted.busy();
        let length = usize::from(u16::from_be_bytes(prefix));
        message.resize(length, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        if let Some(service) = shell.transfers {
            if is_transfer_request(&message) {
                stream_transfer(&mut stream, service, &message, shell).await?;
                continue;
            }
            let signed = is_signed(&message);
            if signed || is_notify_request(&message) {
                let handed = if signed && !is_notify_request(&message) {
                    let zones = shell.catalog.snapshot();
                    service.signed_query(&message, shell.peer, &mut |unsigned| {
                        crate::library::answer_library(unsigned, Transport::Tcp, &zones, config)
                    })
                } else {
                    service.notify(&message, shell.peer)
                };
                if let Some(answer) = handed {
                    let length = u16::try_from(answer.len()).unwrap_or(u16::MAX);
                    let mut framed = length.to_be_bytes().to_vec();
                    framed.extend_from_slice(&answer[..usize::from(length)]);
                    stream.write_all(&framed).await?;
                    continue;
                }
            }
        }
        let Some(length) = answer_tcp(&message, shell, &mut framed[2..]) else {
            continue;
        };
        // Replies are at most 65535 bytes: both paths are bounded by MAX_MESSAGE_BYTES.
        let length = u16::try_from(length).unwrap_or(u16::MAX);
        framed[..2].copy_from_slice(&length.to_be_bytes());
        stream.write_all(&framed[..2 + usize::from(length)]).await?;
    }
    stream.shutdown().await
}

/// Writes the messages `service` produces for one transfer request as they come (they are
/// made on a blocking thread, at most [`TRANSFER_QUEUE_MESSAGES`] ahead of the writes).
async fn stream_transfer(
    stream: &mut TcpStream,
    service: &Arc<dyn TransferService>,
    request: &[u8],
    shell: &TcpShell<'_>,
) -> std::io::Result<()> {
    let (sender, mut messages) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_QUEUE_MESSAGES);
    let service = Arc::clone(service);
    let request = request.to_vec();
    let zones = shell.catalog.snapshot();
    let peer = shell.peer;
    let producer = tokio::task::spawn_blocking(move || {
        service.transfer(&request, peer, &zones, &mut |message| {
            sender.blocking_send(message).is_ok()
        });
    });
    let mut written = Ok(());
    while let Some(message) = messages.recv().await {
        let Ok(length) = u16::try_from(message.len()) else {
            tracing::error!(bytes = message.len(), %peer, "a transfer message longer than 65535 bytes; the transfer is cut short");
            break;
        };
        let mut framed = Vec::with_capacity(2 + message.len());
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&message);
        written = stream.write_all(&framed).await;
        if written.is_err() {
            break;
        }
    }
    // Closing the queue stops a producer whose connection is gone.
    drop(messages);
    if let Err(error) = producer.await {
        tracing::error!(%error, %peer, "a zone transfer failed");
    }
    written
}

/// One TCP message answered into `out` from one load of the catalog (not held across the
/// write) and counted; the reply's length, or `None` to stay silent.
fn answer_tcp(message: &[u8], shell: &TcpShell<'_>, out: &mut [u8]) -> Option<usize> {
    let TcpShell {
        catalog,
        config,
        cookies,
        peer,
        ..
    } = *shell;
    let received = Instant::now();
    let counters = catalog.counters();
    let zones = catalog.load();
    let length = match answer(message, Transport::Tcp, &zones, config, out) {
        None => {
            counters.count_dropped(TCP_STATS_SHARD);
            return None;
        }
        Some(Reply::Fast { length, counters }) => {
            counters.count(TCP_STATS_SHARD, crate::stats::reply_rcode(&out[..length]));
            length
        }
        Some(Reply::Library(mut answered)) => {
            if let Some(cookie) = cookie::query_cookie(message) {
                cookie::add_to_reply(
                    &mut answered.reply,
                    cookies,
                    &cookie,
                    peer,
                    unix_seconds(),
                    MAX_MESSAGE_BYTES,
                );
            }
            count(counters, &answered, TCP_STATS_SHARD);
            let length = answered.reply.len().min(out.len());
            out[..length].copy_from_slice(&answered.reply[..length]);
            length
        }
    };
    counters.observe_latency(StatsTransport::Tcp, TCP_STATS_SHARD, received.elapsed());
    Some(length)
}

/// What one TCP connection's task needs.
#[derive(Clone, Copy)]
struct TcpShell<'a> {
    catalog: &'a Catalog,
    config: &'a ServerConfig,
    table: &'a TcpTable,
    cookies: &'a CookieSecret,
    transfers: Option<&'a Arc<dyn TransferService>>,
    peer: std::net::IpAddr,
}

/// Counts an answer of the library path under its zone, or as unmatched.
fn count(counters: &ServerCounters, answered: &Answered<'_>, shard: usize) {
    match answered.counters {
        Some(zone) => zone.count(shard, answered.rcode),
        None => counters.unmatched.count(shard, answered.rcode),
    }
}
