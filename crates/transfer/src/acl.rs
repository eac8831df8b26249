//! Who may transfer a zone: `allow_transfer` rules, each an address prefix and, optionally,
//! the TSIG key the request must be signed with. Pure: the primary asks [`permits`].

use std::net::IpAddr;

use server::Prefix;

/// One rule: requests from `network`/`prefix_length`, signed with `key` when one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowTransfer {
    pub network: IpAddr,
    pub prefix_length: u8,
    /// A key name (compared as a domain name: case and a trailing dot do not matter).
    pub key: Option<String>,
}

impl AllowTransfer {
    /// Parses `ADDRESS/LENGTH` (or a bare address: just that host; `server::Prefix`, as
    /// `server.rrl.exempt` is written); host bits set are an error naming the prefix to
    /// write.
    pub fn parse(from: &str, key: Option<&str>) -> Result<AllowTransfer, String> {
        let prefix = Prefix::parse(from)?;
        let network = masked(prefix.address, prefix.length);
        if network != prefix.address {
            return Err(format!(
                "\"{from}\" has host bits set; write \"{network}/{}\"",
                prefix.length
            ));
        }
        Ok(AllowTransfer {
            network,
            prefix_length: prefix.length,
            key: key.map(str::to_string),
        })
    }

    fn contains(&self, peer: IpAddr) -> bool {
        Prefix {
            address: self.network,
            length: self.prefix_length,
        }
        .contains(peer)
    }
}

/// `address` with every bit past the first `length` cleared.
fn masked(address: IpAddr, length: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// Two key names are one key when they are the same domain name.
pub(crate) fn same_key(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Whether a request from `peer`, signed with `key` (a verified TSIG key's name, `None`
/// when unsigned), may transfer: some rule matches its address and, if the rule names a
/// key, that key signed it. No rules: nobody (transfers are off unless configured).
pub fn permits(rules: &[AllowTransfer], peer: IpAddr, key: Option<&str>) -> bool {
    rules.iter().any(|rule| {
        rule.contains(peer)
            && match (&rule.key, key) {
                (None, _) => true,
                (Some(wanted), Some(used)) => same_key(wanted, used),
                (Some(_), None) => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, key: Option<&str>) -> AllowTransfer {
        AllowTransfer::parse(from, key).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn nobody_transfers_without_a_rule() {
        assert!(!permits(&[], ip("127.0.0.1"), None));
    }

    #[test]
    fn a_rule_matches_its_prefix_only() {
        let rules = [rule("192.0.2.0/24", None), rule("2001:db8::/32", None)];
        assert!(permits(&rules, ip("192.0.2.200"), None));
        assert!(permits(&rules, ip("::ffff:192.0.2.7"), None));
        assert!(permits(&rules, ip("2001:db8:1::1"), None));
        assert!(!permits(&rules, ip("192.0.3.1"), None));
        assert!(!permits(&rules, ip("2001:db9::1"), None));
    }

    #[test]
    fn a_rule_with_a_key_wants_that_key() {
        let rules = [rule("127.0.0.0/8", Some("xfr-key"))];
        assert!(permits(&rules, ip("127.0.0.1"), Some("XFR-key.")));
        assert!(!permits(&rules, ip("127.0.0.1"), None));
        assert!(!permits(&rules, ip("127.0.0.1"), Some("other-key")));
    }

    #[test]
    fn bad_prefixes_are_refused_with_what_to_write() {
        assert!(AllowTransfer::parse("10.0.0.1/8", None)
            .unwrap_err()
            .contains("\"10.0.0.0/8\""));
        assert!(AllowTransfer::parse("10.0.0.0/33", None).is_err());
        assert!(AllowTransfer::parse("example.com", None).is_err());
        assert_eq!(rule("::1", None).prefix_length, 128);
        assert_eq!(rule("0.0.0.0/0", None).prefix_length, 0);
    }
}
