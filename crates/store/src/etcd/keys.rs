//! Where the etcd store keeps what, under its prefix (default `/dnsward/`):
//!
//! | key                                   | value                                    |
//! |---------------------------------------|------------------------------------------|
//! | `zones/ZONE`                          | the zone's record: refs, breaker, counters |
//! | `versions/ZONE/GENERATION`            | a version's metadata and manifest chunks |
//! | `blobs/ZONE/SHA256`                   | a content bucket or a manifest chunk     |
//! | `audit/SEQUENCE`                      | an audit entry                           |
//! | `zone-audit/ZONE/SEQUENCE`            | the same entry, found by zone            |
//! | `audit-next`                          | the next audit sequence number           |
//! | `health/NODE`                         | a node's own health verdicts (leased)    |
//!
//! ZONE is [`zone_key`](crate::zone_key) (lower-cased, fully qualified); numbers are written
//! with 20 digits so that key order is numeric order.

use model::Generation;

use crate::buckets::BucketHash;

/// The keys of one store, all under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`, which gets a trailing `/` when it has none.
    pub fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }

    pub fn zone(&self, zone: &str) -> String {
        format!("{}zones/{zone}", self.prefix)
    }

    pub fn zones(&self) -> String {
        format!("{}zones/", self.prefix)
    }

    pub fn version(&self, zone: &str, generation: Generation) -> String {
        format!("{}versions/{zone}/{:020}", self.prefix, generation.0)
    }

    pub fn versions(&self, zone: &str) -> String {
        format!("{}versions/{zone}/", self.prefix)
    }

    pub fn blob(&self, zone: &str, hash: &BucketHash) -> String {
        format!("{}blobs/{zone}/{}", self.prefix, hex(hash))
    }

    pub fn blobs(&self, zone: &str) -> String {
        format!("{}blobs/{zone}/", self.prefix)
    }

    pub fn audit(&self, sequence: u64) -> String {
        format!("{}audit/{sequence:020}", self.prefix)
    }

    pub fn audits(&self) -> String {
        format!("{}audit/", self.prefix)
    }

    pub fn zone_audit(&self, zone: &str, sequence: u64) -> String {
        format!("{}zone-audit/{zone}/{sequence:020}", self.prefix)
    }

    pub fn zone_audits(&self, zone: &str) -> String {
        format!("{}zone-audit/{zone}/", self.prefix)
    }

    pub fn health(&self, node: &str) -> String {
        format!("{}health/{node}", self.prefix)
    }

    pub fn healths(&self) -> String {
        format!("{}health/", self.prefix)
    }

    pub fn audit_next(&self) -> String {
        format!("{}audit-next", self.prefix)
    }
}

/// The end of the key range of every key starting with `prefix` (etcd's `range_end`).
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the key space.
    vec![0]
}

/// The sequence number or generation at the end of a key.
pub(super) fn trailing_number(key: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(key).ok()?;
    text.rsplit('/').next()?.parse().ok()
}

/// The hash at the end of a blob key, as written by [`Keys::blob`].
pub(super) fn trailing_text(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()?.rsplit('/').next()
}

pub(super) fn hex(hash: &BucketHash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys_sort_in_numeric_order_and_parse_back() {
        let keys = Keys::new("/dnsward");
        let nine = keys.version("example.test.", Generation(9));
        let ten = keys.version("example.test.", Generation(10));
        assert!(nine < ten);
        assert!(nine.starts_with(&keys.versions("example.test.")));
        assert_eq!(trailing_number(ten.as_bytes()), Some(10));
        assert_eq!(trailing_number(keys.audit(42).as_bytes()), Some(42));
    }

    #[test]
    fn a_zone_prefix_never_covers_another_zone() {
        let keys = Keys::new("/dnsward/");
        let one = keys.versions("example.test.");
        let other = keys.version("a.example.test.", Generation(1));
        assert!(!other.starts_with(&one));
    }

    #[test]
    fn the_prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
