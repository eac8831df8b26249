//! Server settings, each bounded by a named limit from `model::limits`.

use std::net::SocketAddr;
use std::time::Duration;

use model::limits;

use crate::rrl::RrlConfig;

/// How the server listens and how much it does per query and per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// UDP and TCP are bound on this one address.
    pub listen: SocketAddr,
    /// Largest UDP response we send and the payload size we advertise in OPT.
    pub udp_payload_bytes: u16,
    /// CNAMEs followed in one answer.
    pub cname_chain_length: usize,
    /// Concurrent TCP connections; when full, a new one takes the slot of the oldest idle
    /// connection (refused when none is idle).
    pub tcp_connections: usize,
    /// Connections one source address may hold ([`limits::TCP_CONNECTIONS_PER_SOURCE`]).
    pub tcp_connections_per_source: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout_ms: u64,
    /// The idle timeout while the connection table is at least half full.
    pub tcp_busy_idle_timeout_ms: u64,
    /// Queries answered on one TCP connection before it is closed.
    pub tcp_queries_per_connection: u64,
    /// UDP worker threads, each with its own `SO_REUSEPORT` socket; see [`UDP_WORKERS`].
    pub udp_workers: usize,
    /// Response rate limiting of UDP answers (on by default; [`RrlConfig::off`]).
    pub rrl: RrlConfig,
}

/// UDP worker threads. [`ServerConfig::new`] starts one per core the process may run on
/// ([`default_udp_workers`]; more workers than cores only add switching); `default` here
/// is the fallback when that cannot be known.
pub const UDP_WORKERS: limits::Limit = limits::Limit {
    name: "server.udp_workers",
    default: 1,
    min: 1,
    max: 64,
};

/// The default of [`UDP_WORKERS`]: the cores available to this process.
pub fn default_udp_workers() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, UDP_WORKERS.max as usize)
}

impl ServerConfig {
    /// Defaults from `model::limits`, listening on `listen`.
    pub fn new(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            udp_payload_bytes: clamp_u16(limits::UDP_PAYLOAD_BYTES.default),
            cname_chain_length: clamp_usize(limits::CNAME_CHAIN_LENGTH.default),
            tcp_connections: clamp_usize(limits::TCP_CONNECTIONS.default),
            tcp_connections_per_source: clamp_usize(limits::TCP_CONNECTIONS_PER_SOURCE.default),
            tcp_idle_timeout_ms: limits::TCP_IDLE_TIMEOUT_MS.default,
            tcp_busy_idle_timeout_ms: limits::TCP_BUSY_IDLE_TIMEOUT_MS.default,
            tcp_queries_per_connection: limits::TCP_QUERIES_PER_CONNECTION.default,
            udp_workers: default_udp_workers(),
            rrl: RrlConfig::default(),
        }
    }

    /// The same settings with every value clamped into its limit's bounds.
    pub fn clamped(&self) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            udp_payload_bytes: clamp_u16(
                limits::UDP_PAYLOAD_BYTES.clamp(Some(u64::from(self.udp_payload_bytes))),
            ),
            cname_chain_length: clamp_usize(
                limits::CNAME_CHAIN_LENGTH.clamp(Some(self.cname_chain_length as u64)),
            ),
            tcp_connections: clamp_usize(
                limits::TCP_CONNECTIONS.clamp(Some(self.tcp_connections as u64)),
            ),
            tcp_connections_per_source: clamp_usize(
                limits::TCP_CONNECTIONS_PER_SOURCE
                    .clamp(Some(self.tcp_connections_per_source as u64)),
            ),
            tcp_idle_timeout_ms: limits::TCP_IDLE_TIMEOUT_MS.clamp(Some(self.tcp_idle_timeout_ms)),
            tcp_busy_idle_timeout_ms: limits::TCP_BUSY_IDLE_TIMEOUT_MS
                .clamp(Some(self.tcp_busy_idle_timeout_ms)),
            tcp_queries_per_connection: limits::TCP_QUERIES_PER_CONNECTION
                .clamp(Some(self.tcp_queries_per_connection)),
            udp_workers: clamp_usize(UDP_WORKERS.clamp(Some(self.udp_workers as u64))),
            rrl: self.rrl.clamped(),
        }
    }

    pub fn tcp_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.tcp_idle_timeout_ms)
    }
}

impl Default for ServerConfig {
    /// Loopback, port 53.
    fn default() -> ServerConfig {
        ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 53)))
    }
}

fn clamp_u16(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

fn clamp_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}
