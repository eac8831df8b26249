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

/// Records in one zone. Bounds memory of a snapshot and the work of one version.
pub const ZONE_RECORDS: Limit = Limit {
    name: "zone.records",
    default: 5_000_000,
    min: 1,
    max: 50_000_000,
};

/// Record sets per storage bucket that the store aims for when it splits content into
/// content-addressed buckets; a small change rewrites only the buckets it touches.
pub const STORE_BUCKET_RRSETS: Limit = Limit {
    name: "store.bucket_rrsets",
    default: 32,
    min: 1,
    max: 4_096,
};

/// Audit entries returned by one read.
pub const AUDIT_PAGE: Limit = Limit {
    name: "store.audit_page",
    default: 1_000,
    min: 1,
    max: 100_000,
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
}
