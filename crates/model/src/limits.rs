//! Every bound in dnsward, named, with a default, a minimum and a maximum. Values read from
//! configuration are clamped with [`Limit::clamp`] when the config is loaded.

/// A named bound: default, smallest and largest accepted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
}

impl Limit {
    /// The value to use for `requested`, or the default when nothing was requested.
    pub fn clamp(&self, requested: Option<u64>) -> u64 {
        requested.unwrap_or(self.default).clamp(self.min, self.max)
    }

    /// Like [`Limit::clamp`] but an out-of-bounds request is an error naming the bounds.
    pub fn check(&self, requested: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&requested) {
            Ok(requested)
        } else {
            Err(format!(
                "{} = {} is out of bounds; use a value from {} to {} (default {})",
                self.name, requested, self.min, self.max, self.default
            ))
        }
    }
}

/// Largest UDP answer we send when the client's EDNS buffer allows it (DNS flag day 2020).
pub const UDP_PAYLOAD_BYTES: Limit = Limit {
    name: "server.udp_payload_bytes",
    default: 1232,
    min: 512,
    max: 4096,
};

/// Longest in-zone CNAME chain followed in one answer; a loop ends here cleanly.
pub const CNAME_CHAIN_LENGTH: Limit = Limit {
    name: "server.cname_chain_length",
    default: 8,
    min: 1,
    max: 16,
};

/// Concurrent TCP connections the server keeps open.
pub const TCP_CONNECTIONS: Limit = Limit {
    name: "server.tcp_connections",
    default: 256,
    min: 1,
    max: 65_536,
};

/// How long an idle TCP connection stays open (RFC 7766 recommends seconds, not minutes).
pub const TCP_IDLE_TIMEOUT_MS: Limit = Limit {
    name: "server.tcp_idle_timeout_ms",
    default: 10_000,
    min: 100,
    max: 120_000,
};

/// TCP connections one source address may hold. A new connection from a source at its
/// cap takes the slot of that source's oldest idle connection (refused when none is idle),
/// so one client can never hold the table (RFC 7766 §6.2.3).
pub const TCP_CONNECTIONS_PER_SOURCE: Limit = Limit {
    name: "server.tcp_connections_per_source",
    default: 16,
    min: 1,
    max: 65_536,
};

/// The idle timeout of TCP connections while the table is at least half full (as NSD
/// shortens its `tcp-timeout` under load): idle connections give way to new ones.
pub const TCP_BUSY_IDLE_TIMEOUT_MS: Limit = Limit {
    name: "server.tcp_busy_idle_timeout_ms",
    default: 200,
    min: 10,
    max: 120_000,
};

/// Queries answered on one TCP connection before the server closes it.
pub const TCP_QUERIES_PER_CONNECTION: Limit = Limit {
    name: "server.tcp_queries_per_connection",
    default: 1_000,
    min: 1,
    max: 1_000_000,
};

/// Good versions of a zone that clean-up always keeps, besides referenced and pinned ones.
pub const KEEP_LAST_VERSIONS: Limit = Limit {
    name: "store.keep_last_versions",
    default: 10,
    min: 2,
    max: 10_000,
};

/// How often a store follower looks for ref moves made by another process.
pub const STORE_POLL_INTERVAL_MS: Limit = Limit {
    name: "store.poll_interval_ms",
    default: 5,
    min: 1,
    max: 10_000,
};

/// How long a store call waits for a lock held by another writer before giving up.
pub const STORE_BUSY_TIMEOUT_MS: Limit = Limit {
    name: "store.busy_timeout_ms",
    default: 5_000,
    min: 10,
    max: 60_000,
};

/// Errors one `dnsward zone check` reports before it stops reading.
pub const ZONE_CHECK_ERRORS: Limit = Limit {
    name: "zone.check_errors",
    default: 100,
    min: 1,
    max: 100_000,
};

/// Records in one zone. Bounds memory of a snapshot and the work of one version.
pub const ZONE_RECORDS: Limit = Limit {
    name: "zone.records",
    default: 5_000_000,
    min: 1,
    max: 50_000_000,
};

/// How long one call to etcd may take before its outcome counts as unknown (re-read, never
/// assumed failed): `[store] etcd = { timeout_ms = ... }`.
pub const STORE_ETCD_TIMEOUT_MS: Limit = Limit {
    name: "store.etcd.timeout_ms",
    default: 5_000,
    min: 100,
    max: 60_000,
};

/// Keys one etcd transaction writes when the store stores content or deletes it in batches:
/// below etcd's own limit of 128 operations per transaction (`--max-txn-ops`).
pub const STORE_ETCD_TXN_OPS: Limit = Limit {
    name: "store.etcd.txn_ops",
    default: 100,
    min: 1,
    max: 128,
};

/// Bytes one etcd transaction writes when the store stores content in batches: below etcd's
/// request limit of 1.5 MiB (`--max-request-bytes`).
pub const STORE_ETCD_TXN_BYTES: Limit = Limit {
    name: "store.etcd.txn_bytes",
    default: 1 << 20,
    min: 64 << 10,
    max: 1_400_000,
};

/// How many times one store call re-reads and retries when another writer changed what it
/// read (a transaction's compare failed) before it reports the contention.
pub const STORE_ETCD_RETRIES: Limit = Limit {
    name: "store.etcd.retries",
    default: 1_000,
    min: 1,
    max: 100_000,
};

/// How often a node on etcd reads the zones' change counter although its watch is open: a
/// watch served by a member cut off from the others can stay silent, and this read bounds
/// how long a follower can miss a ref move then.
pub const STORE_ETCD_RESYNC_MS: Limit = Limit {
    name: "store.etcd.resync_ms",
    default: 1_000,
    min: 50,
    max: 60_000,
};

/// The etcd store deletes content no version uses (reading every kept version's manifest
/// and listing the zone's blobs) when a clean-up deletes a generation that is a multiple of
/// this: the sweep's cost is shared by that many commits, and at most about that many
/// versions' changed buckets wait for it.
pub const STORE_ETCD_SWEEP_EVERY: Limit = Limit {
    name: "store.etcd.sweep_every",
    default: 8,
    min: 1,
    max: 1_024,
};

/// Record sets per storage bucket that the store aims for when it splits content into
/// content-addressed buckets; a small change rewrites only the buckets it touches.
pub const STORE_BUCKET_RRSETS: Limit = Limit {
    name: "store.bucket_rrsets",
    default: 32,
    min: 1,
    max: 4_096,
};

/// Record sets (before and after) a version's recorded changes may hold. A commit that
/// changes more records none, and a follower loads that version's whole content, which then
/// costs about as much as reading the changes would.
pub const STORE_RECORDED_CHANGE_RRSETS: Limit = Limit {
    name: "store.recorded_change_rrsets",
    default: 262_144,
    min: 0,
    max: 4_194_304,
};

/// Versions whose recorded changes a follower composes to catch up from the version it
/// serves; further behind, it loads the whole content.
pub const STORE_CHANGES_CHAIN: Limit = Limit {
    name: "store.changes_chain",
    default: 64,
    min: 1,
    max: 4_096,
};

/// Versions the SQLite store keeps as a change of their parent (no bucket manifest of their
/// own) before it writes a checkpoint: a version stored in full, which a read of a later
/// one starts from. Below [`STORE_CHANGES_CHAIN`], so a read always composes.
pub const STORE_DELTA_CHAIN: Limit = Limit {
    name: "store.delta_chain",
    default: 32,
    min: 1,
    max: 63,
};

/// Audit entries returned by one read.
pub const AUDIT_PAGE: Limit = Limit {
    name: "store.audit_page",
    default: 1_000,
    min: 1,
    max: 100_000,
};

/// How often a backend is probed.
pub const HEALTH_INTERVAL_MS: Limit = Limit {
    name: "health.interval_ms",
    default: 1_000,
    min: 100,
    max: 60_000,
};

/// How long one probe may take before it counts as a failure.
pub const HEALTH_TIMEOUT_MS: Limit = Limit {
    name: "health.timeout_ms",
    default: 500,
    min: 10,
    max: 30_000,
};

/// Consecutive successful probes before a backend is marked up.
pub const HEALTH_RISE: Limit = Limit {
    name: "health.rise",
    default: 2,
    min: 1,
    max: 10,
};

/// Consecutive failed probes before a backend is marked down.
pub const HEALTH_FALL: Limit = Limit {
    name: "health.fall",
    default: 2,
    min: 1,
    max: 10,
};

/// TTL of any record in a zone: one week at most (the usual registry ceiling); 0 is allowed
/// (RFC 1035 §3.2.1: do not cache).
pub const RECORD_TTL_SECS: Limit = Limit {
    name: "zone.record_ttl_secs",
    default: 3_600,
    min: 0,
    max: 604_800,
};

/// TTL of an endpoint's address records: short by default so clients follow health.
pub const ENDPOINT_TTL_SECS: Limit = Limit {
    name: "endpoint.ttl",
    default: 30,
    min: 0,
    max: 604_800,
};

/// Fewest address records automation may leave at an endpoint name (safety contract 5).
pub const ENDPOINT_MIN_ANSWERS: Limit = Limit {
    name: "endpoint.min_answers",
    default: 1,
    min: 1,
    max: 64,
};

/// Backends of one endpoint; bounds the size of one answer and the work of one plan.
pub const ENDPOINT_BACKENDS: Limit = Limit {
    name: "endpoint.backends",
    default: 256,
    min: 1,
    max: 4_096,
};

/// Length of the window over which removals from one name are counted (safety contract 6).
pub const GUARD_VELOCITY_WINDOW_MS: Limit = Limit {
    name: "guard.velocity_window_ms",
    default: 60_000,
    min: 1_000,
    max: 86_400_000,
};

/// Records that all versions together may remove from one name within the velocity window.
/// Four lets an endpoint lose a backend, fall back to serve-all and recover within a minute,
/// while a runaway series of plans stops after four records and freezes for a person.
pub const GUARD_MAX_REMOVALS_PER_WINDOW: Limit = Limit {
    name: "guard.max_removals_per_window",
    default: 4,
    min: 1,
    max: 1_000_000,
};

/// Independent enactor tasks applying guarded plans (`[enactor] count`). Redundant writers
/// are safe because every write is a compare-and-swap; more than a few only add conflicts.
pub const ENACTOR_COUNT: Limit = Limit {
    name: "enactor.count",
    default: 3,
    min: 1,
    max: 16,
};

/// How often the control loop re-plans every zone even when nothing told it to.
pub const CONTROL_TICK_MS: Limit = Limit {
    name: "control.tick_ms",
    default: 1_000,
    min: 10,
    max: 60_000,
};

/// How long a zone's first version waits for the first probe verdicts of its backends: a
/// backend with a check is not published as healthy on a guess; past this bound, backends
/// still unprobed are served (fail open) and the plan says so.
pub const CONTROL_FIRST_VERDICT_WAIT_MS: Limit = Limit {
    name: "control.first_verdict_wait_ms",
    default: 10_000,
    min: 0,
    max: 600_000,
};

/// Versions of a zone the control loop reads back to rebuild its removal history (velocity)
/// after a restart; more than a window's worth is never needed.
pub const CONTROL_HISTORY_VERSIONS: Limit = Limit {
    name: "control.history_versions",
    default: 64,
    min: 1,
    max: 10_000,
};

/// A named bound on a fraction: default, smallest and largest accepted value, in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FractionLimit {
    pub name: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
}

impl FractionLimit {
    /// The value to use for `requested`, or the default when nothing was requested (or the
    /// request is not a number).
    pub fn clamp(&self, requested: Option<f64>) -> f64 {
        match requested {
            Some(value) if value.is_finite() => value.clamp(self.min, self.max),
            _ => self.default,
        }
    }

    /// Like [`FractionLimit::clamp`] but an out-of-bounds request is an error naming the
    /// bounds.
    pub fn check(&self, requested: f64) -> Result<f64, String> {
        if requested.is_finite() && (self.min..=self.max).contains(&requested) {
            Ok(requested)
        } else {
            Err(format!(
                "{} = {} is out of bounds; use a value from {} to {} (default {})",
                self.name, requested, self.min, self.max, self.default
            ))
        }
    }
}

/// Largest fraction of one name's records that one version may remove (safety contract 6).
/// At 0.5 an endpoint of two backends may lose one per version; see
/// [`crate::GuardPolicy::name_removal_allowance`] for small names.
pub const GUARD_MAX_REMOVE_FRACTION: FractionLimit = FractionLimit {
    name: "guard.max_remove_fraction",
    default: 0.5,
    min: 0.01,
    max: 1.0,
};

/// Largest fraction of a zone's records (SOA aside) that one version may remove or replace.
pub const GUARD_MAX_CHANGE_FRACTION: FractionLimit = FractionLimit {
    name: "guard.max_change_fraction",
    default: 0.5,
    min: 0.01,
    max: 1.0,
};

/// Answers the resolver keeps in its cache (entries; each is one name, type and class).
pub const RESOLVER_CACHE_ENTRIES: Limit = Limit {
    name: "resolver.cache_entries",
    default: 100_000,
    min: 16,
    max: 10_000_000,
};

/// Bytes the resolver's cache may hold (wire bytes plus bookkeeping per entry).
pub const RESOLVER_CACHE_BYTES: Limit = Limit {
    name: "resolver.cache_bytes",
    default: 64 * 1024 * 1024,
    min: 64 * 1024,
    max: 16 * 1024 * 1024 * 1024,
};

/// RFC 8767 client response timer: with stale data in hand, answer it after this long
/// without an upstream answer.
pub const RESOLVER_CLIENT_TIMEOUT_MS: Limit = Limit {
    name: "resolver.client_timeout_ms",
    default: 1_800,
    min: 0,
    max: 30_000,
};

/// RFC 8767 maximum staleness: how long after expiry a cached answer may still be served.
pub const RESOLVER_MAX_STALE_SECS: Limit = Limit {
    name: "resolver.max_stale_secs",
    default: 86_400,
    min: 0,
    max: 7 * 86_400,
};

/// Stale-on-empty: how long a name that had records keeps its last good records after
/// upstreams start answering NODATA or NXDOMAIN for it.
pub const RESOLVER_EMPTY_HOLD_SECS: Limit = Limit {
    name: "resolver.empty_hold_secs",
    default: 300,
    min: 0,
    max: 86_400,
};

/// TTL on stale answers (RFC 8767 §4 recommends 30 seconds).
pub const RESOLVER_STALE_TTL_SECS: Limit = Limit {
    name: "resolver.stale_ttl_secs",
    default: 30,
    min: 1,
    max: 300,
};

/// Upstream attempts for one question (across upstreams), the retry budget.
pub const RESOLVER_UPSTREAM_ATTEMPTS: Limit = Limit {
    name: "resolver.upstream_attempts",
    default: 3,
    min: 1,
    max: 8,
};

/// Total time one question may spend on upstreams before the client gets SERVFAIL.
pub const RESOLVER_UPSTREAM_BUDGET_MS: Limit = Limit {
    name: "resolver.upstream_budget_ms",
    default: 4_000,
    min: 100,
    max: 30_000,
};

/// Consecutive failures after which an upstream is marked dead.
pub const RESOLVER_DEAD_AFTER_FAILURES: Limit = Limit {
    name: "resolver.dead_after_failures",
    default: 3,
    min: 1,
    max: 100,
};

/// How often a dead upstream is probed with a real question.
pub const RESOLVER_PROBE_INTERVAL_MS: Limit = Limit {
    name: "resolver.probe_interval_ms",
    default: 1_000,
    min: 50,
    max: 60_000,
};

/// Longest TTL the resolver caches a positive answer for (Unbound's cache-max-ttl).
pub const RESOLVER_MAX_TTL_SECS: Limit = Limit {
    name: "resolver.max_ttl_secs",
    default: 86_400,
    min: 1,
    max: 7 * 86_400,
};

/// Longest TTL the resolver caches a negative answer for (Unbound's cache-max-negative-ttl).
pub const RESOLVER_MAX_NEGATIVE_TTL_SECS: Limit = Limit {
    name: "resolver.max_negative_ttl_secs",
    default: 3_600,
    min: 0,
    max: 86_400,
};

/// Upstream questions in flight at once (misses, refreshes, probes); more are SERVFAIL or stale.
pub const RESOLVER_UPSTREAM_IN_FLIGHT: Limit = Limit {
    name: "resolver.upstream_in_flight",
    default: 1_024,
    min: 1,
    max: 65_536,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_uses_default_and_respects_bounds() {
        assert_eq!(UDP_PAYLOAD_BYTES.clamp(None), 1232);
        assert_eq!(UDP_PAYLOAD_BYTES.clamp(Some(100)), 512);
        assert_eq!(UDP_PAYLOAD_BYTES.clamp(Some(65_000)), 4096);
    }

    #[test]
    fn check_names_the_bounds_in_its_error() {
        let error = KEEP_LAST_VERSIONS.check(1).unwrap_err();
        assert!(error.contains("store.keep_last_versions"), "{error}");
        assert!(error.contains("from 2 to 10000"), "{error}");
    }

    #[test]
    fn a_fraction_that_is_not_a_number_falls_back_to_the_default() {
        assert_eq!(GUARD_MAX_REMOVE_FRACTION.clamp(Some(f64::NAN)), 0.5);
        assert_eq!(GUARD_MAX_REMOVE_FRACTION.clamp(Some(7.0)), 1.0);
        assert!(GUARD_MAX_REMOVE_FRACTION.check(f64::NAN).is_err());
        assert_eq!(GUARD_MAX_REMOVE_FRACTION.check(0.25), Ok(0.25));
    }
}
