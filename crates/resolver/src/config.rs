//! The resolver's configuration, clamped to the named limits in `model::limits`.

use std::net::SocketAddr;

use model::limits;

use crate::policy::PolicyConfig;

/// Everything `dnsward resolve` can be told. Build with [`ResolverConfig::new`], adjust the
/// fields, and the shell clamps them with [`ResolverConfig::clamped`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Address for UDP and TCP.
    pub listen: SocketAddr,
    /// Upstream servers, asked by health and latency.
    pub upstreams: Vec<SocketAddr>,
    /// Names allowed to go empty at once (no stale-on-empty hold), as given.
    pub allow_empty: Vec<String>,
    pub empty_hold_secs: u64,
    pub max_stale_secs: u64,
    pub client_timeout_ms: u64,
    pub cache_entries: u64,
    pub cache_bytes: u64,
    pub stale_ttl_secs: u64,
    pub upstream_attempts: u64,
    pub upstream_budget_ms: u64,
    pub dead_after_failures: u64,
    pub probe_interval_ms: u64,
    pub max_ttl_secs: u64,
    pub max_negative_ttl_secs: u64,
    pub upstream_in_flight: u64,
    /// Our EDNS UDP payload size, to clients and upstreams.
    pub udp_payload_bytes: u64,
}

impl ResolverConfig {
    /// Defaults for everything but where to listen and whom to ask.
    pub fn new(listen: SocketAddr, upstreams: Vec<SocketAddr>) -> ResolverConfig {
        ResolverConfig {
            listen,
            upstreams,
            allow_empty: Vec::new(),
            empty_hold_secs: limits::RESOLVER_EMPTY_HOLD_SECS.default,
            max_stale_secs: limits::RESOLVER_MAX_STALE_SECS.default,
            client_timeout_ms: limits::RESOLVER_CLIENT_TIMEOUT_MS.default,
            cache_entries: limits::RESOLVER_CACHE_ENTRIES.default,
            cache_bytes: limits::RESOLVER_CACHE_BYTES.default,
            stale_ttl_secs: limits::RESOLVER_STALE_TTL_SECS.default,
            upstream_attempts: limits::RESOLVER_UPSTREAM_ATTEMPTS.default,
            upstream_budget_ms: limits::RESOLVER_UPSTREAM_BUDGET_MS.default,
            dead_after_failures: limits::RESOLVER_DEAD_AFTER_FAILURES.default,
            probe_interval_ms: limits::RESOLVER_PROBE_INTERVAL_MS.default,
            max_ttl_secs: limits::RESOLVER_MAX_TTL_SECS.default,
            max_negative_ttl_secs: limits::RESOLVER_MAX_NEGATIVE_TTL_SECS.default,
            upstream_in_flight: limits::RESOLVER_UPSTREAM_IN_FLIGHT.default,
            udp_payload_bytes: limits::UDP_PAYLOAD_BYTES.default,
        }
    }

    /// Every bound inside its limits.
    pub fn clamped(mut self) -> ResolverConfig {
        let clamp = |limit: limits::Limit, value: u64| limit.clamp(Some(value));
        self.empty_hold_secs = clamp(limits::RESOLVER_EMPTY_HOLD_SECS, self.empty_hold_secs);
        self.max_stale_secs = clamp(limits::RESOLVER_MAX_STALE_SECS, self.max_stale_secs);
        self.client_timeout_ms = clamp(limits::RESOLVER_CLIENT_TIMEOUT_MS, self.client_timeout_ms);
        self.cache_entries = clamp(limits::RESOLVER_CACHE_ENTRIES, self.cache_entries);
        self.cache_bytes = clamp(limits::RESOLVER_CACHE_BYTES, self.cache_bytes);
        self.stale_ttl_secs = clamp(limits::RESOLVER_STALE_TTL_SECS, self.stale_ttl_secs);
        self.upstream_attempts = clamp(limits::RESOLVER_UPSTREAM_ATTEMPTS, self.upstream_attempts);
        self.upstream_budget_ms =
            clamp(limits::RESOLVER_UPSTREAM_BUDGET_MS, self.upstream_budget_ms);
        self.dead_after_failures = clamp(
            limits::RESOLVER_DEAD_AFTER_FAILURES,
            self.dead_after_failures,
        );
        self.probe_interval_ms = clamp(limits::RESOLVER_PROBE_INTERVAL_MS, self.probe_interval_ms);
        self.max_ttl_secs = clamp(limits::RESOLVER_MAX_TTL_SECS, self.max_ttl_secs);
        self.max_negative_ttl_secs = clamp(
            limits::RESOLVER_MAX_NEGATIVE_TTL_SECS,
            self.max_negative_ttl_secs,
        );
        self.upstream_in_flight =
            clamp(limits::RESOLVER_UPSTREAM_IN_FLIGHT, self.upstream_in_flight);
        self.udp_payload_bytes = clamp(limits::UDP_PAYLOAD_BYTES, self.udp_payload_bytes);
        self
    }

    /// The part the pure policy reads.
    pub fn policy(&self) -> PolicyConfig {
        PolicyConfig {
            max_stale_ms: self.max_stale_secs * 1000,
            empty_hold_ms: self.empty_hold_secs * 1000,
            dead_after_failures: u32::try_from(self.dead_after_failures).unwrap_or(u32::MAX),
            probe_interval_ms: self.probe_interval_ms,
            ..PolicyConfig::default()
        }
    }
}
