//! Endpoints: a name whose address records follow the health of its backends.
//!
//! An endpoint produces `A` records for its IPv4 backends and `AAAA` records for its IPv6
//! backends, at its name, with its TTL. Every endpoint name is a *protected name* (safety
//! contract 5): automation never leaves it with fewer than `min_answers` address records.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::limits;
use crate::zone::{RecordSet, ZoneContent};

/// One `[[endpoint]]` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The protected name; its `A`/`AAAA` sets are owned by the endpoint.
    pub name: Name,
    /// TTL of the address records, in seconds.
    pub ttl: u32,
    /// Fewest address records automation may leave at `name`.
    pub min_answers: usize,
    /// What to answer when fewer than `min_answers` backends are healthy.
    pub all_down: AllDownPolicy,
    pub backends: Vec<BackendConfig>,
}

/// One backend of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// The address served in the endpoint's answer.
    pub address: IpAddr,
    /// How its health is learned.
    pub check: Check,
    /// 0 means drained: not served while other backends can carry the floor.
    pub weight: u32,
}

/// What an endpoint answers when fewer than `min_answers` of its backends are healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllDownPolicy {
    /// Fail open: answer every backend with weight > 0 (Route 53's behaviour). Clients that
    /// retry across addresses find whatever still works; an empty answer helps nobody.
    #[default]
    ServeAll,
    /// Keep the answer that is currently served; serve-all if nothing is served yet.
    KeepLast,
}

/// How a backend's health is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Healthy when a TCP connection to the address opens.
    Tcp(SocketAddr),
    /// Healthy when `GET path` answers 2xx. `addr` is an IP literal: health checks of a DNS
    /// control plane must not depend on DNS.
    Http {
        url: String,
        addr: SocketAddr,
        path: String,
    },
    /// Not probed: healthy unless a pushed report says otherwise.
    None,
}

impl EndpointConfig {
    /// An endpoint with the default TTL, floor and all-down policy.
    pub fn new(name: Name, backends: Vec<BackendConfig>) -> EndpointConfig {
        let mut name = name;
        name.set_fqdn(true);
        EndpointConfig {
            name,
            // The limit's bounds fit in u32 (one week).
            ttl: u32::try_from(limits::ENDPOINT_TTL_SECS.default).expect("a week fits in u32"),
            min_answers: 1,
            all_down: AllDownPolicy::ServeAll,
            backends,
        }
    }

    /// Checks the rules a config must meet; the error says what to change.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if self.backends.is_empty() {
            return Err(format!("endpoint {name} has no backends; add at least one"));
        }
        limits::ENDPOINT_BACKENDS
            .check(self.backends.len() as u64)
            .map_err(|error| format!("endpoint {name}: {error}"))?;
        limits::ENDPOINT_TTL_SECS
            .check(u64::from(self.ttl))
            .map_err(|error| format!("endpoint {name}: {error}"))?;
        limits::ENDPOINT_MIN_ANSWERS
            .check(self.min_answers as u64)
            .map_err(|error| format!("endpoint {name}: {error}"))?;
        if self.min_answers > self.backends.len() {
            return Err(format!(
                "endpoint {name} has min_answers = {} but only {} backends; the floor could \
                 never be met, lower min_answers or add backends",
                self.min_answers,
                self.backends.len()
            ));
        }
        let mut seen = BTreeSet::new();
        for backend in &self.backends {
            if !seen.insert(backend.address) {
                return Err(format!(
                    "endpoint {name} lists backend {} twice; list each address once",
                    backend.address
                ));
            }
        }
        Ok(())
    }

    /// Backends that may be served: weight > 0, in config order.
    pub fn serving_backends(&self) -> impl Iterator<Item = &BackendConfig> {
        self.backends.iter().filter(|backend| backend.weight > 0)
    }

    /// The endpoint's address record sets for `addresses`: an `A` set and an `AAAA` set, each
    /// present only if it has data.
    pub fn record_sets(&self, addresses: &BTreeSet<IpAddr>) -> Vec<RecordSet> {
        address_record_sets(&self.name, self.ttl, addresses)
    }

    /// The addresses `content` currently answers at this endpoint's name.
    pub fn answers_in(&self, content: &ZoneContent) -> BTreeSet<IpAddr> {
        addresses_at(content, &self.name)
    }
}

/// Whether the set `name`/`rtype` belongs to an endpoint named in `endpoints`: an endpoint
/// owns the `A`, `AAAA` and `CNAME` sets at its name (the planner writes them from health);
/// every other set belongs to the zone file and the operator.
pub fn is_endpoint_owned(endpoints: &[Name], name: &Name, rtype: RecordType) -> bool {
    matches!(rtype, RecordType::A | RecordType::AAAA | RecordType::CNAME)
        && endpoints.iter().any(|endpoint| endpoint == name)
}

/// `A` and `AAAA` record sets at `name` for `addresses` (empty sets are left out).
pub fn address_record_sets(name: &Name, ttl: u32, addresses: &BTreeSet<IpAddr>) -> Vec<RecordSet> {
    let mut v4 = RecordSet::new(name.clone(), RecordType::A, ttl);
    let mut v6 = RecordSet::new(name.clone(), RecordType::AAAA, ttl);
    for address in addresses {
        match address {
            IpAddr::V4(ip) => v4.insert(RData::A(A(*ip))),
            IpAddr::V6(ip) => v6.insert(RData::AAAA(AAAA(*ip))),
        };
    }
    [v4, v6]
        .into_iter()
        .filter(|set| !set.rdatas.is_empty())
        .collect()
}

/// The `A` and `AAAA` addresses of `name` in `content`.
pub fn addresses_at(content: &ZoneContent, name: &Name) -> BTreeSet<IpAddr> {
    let mut addresses = BTreeSet::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        for rdata in content.get(name, rtype).map_or(&[][..], |set| &set.rdatas) {
            match rdata {
                RData::A(a) => addresses.insert(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => addresses.insert(IpAddr::V6(aaaa.0)),
                _ => false,
            };
        }
    }
    addresses
}

impl AllDownPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            AllDownPolicy::ServeAll => "serve-all",
            AllDownPolicy::KeepLast => "keep-last",
        }
    }
}

impl FromStr for AllDownPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<AllDownPolicy, String> {
        match text {
            "serve-all" => Ok(AllDownPolicy::ServeAll),
            "keep-last" => Ok(AllDownPolicy::KeepLast),
            other => Err(format!(
                "all_down = \"{other}\" is not a policy; use \"serve-all\" (the default) or \
                 \"keep-last\""
            )),
        }
    }
}

impl fmt::Display for AllDownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Check {
    /// Parses `"tcp:ADDR:PORT"`, `"http://ADDR[:PORT][/path]"` or `"none"`. Addresses are IP
    /// literals (IPv6 in brackets).
    pub fn parse(text: &str) -> Result<Check, String> {
        let text = text.trim();
        if text == "none" {
            return Ok(Check::None);
        }
        if let Some(target) = text.strip_prefix("tcp:") {
            return target.parse::<SocketAddr>().map(Check::Tcp).map_err(|_| {
                format!(
                    "check \"{text}\": \"{target}\" is not ADDRESS:PORT with an IP address; \
                     write e.g. \"tcp:127.0.0.10:8080\" or \"tcp:[::1]:8080\""
                )
            });
        }
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(slash) => (&rest[..slash], &rest[slash..]),
                None => (rest, "/"),
            };
            let addr = parse_authority(authority).ok_or_else(|| {
                format!(
                    "check \"{text}\": \"{authority}\" is not an IP address with an optional \
                     port; health checks do not resolve names, write e.g. \
                     \"http://127.0.0.10:8080/health\""
                )
            })?;
            return Ok(Check::Http {
                url: text.to_string(),
                addr,
                path: path.to_string(),
            });
        }
        if text.starts_with("https://") {
            return Err(format!(
                "check \"{text}\": https checks are not supported; use \"http://ADDR:PORT/path\" \
                 or \"tcp:ADDR:PORT\""
            ));
        }
        Err(format!(
            "check \"{text}\" is not understood; use \"tcp:ADDR:PORT\", \
             \"http://ADDR:PORT/path\" or \"none\""
        ))
    }
}

fn parse_authority(authority: &str) -> Option<SocketAddr> {
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = authority
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(authority);
    bare.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 80))
}

impl FromStr for Check {
    type Err = String;

    fn from_str(text: &str) -> Result<Check, String> {
        Check::parse(text)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Tcp(addr) => write!(f, "tcp:{addr}"),
            Check::Http { url, .. } => f.write_str(url),
            Check::None => f.write_str("none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(address: &str) -> BackendConfig {
        BackendConfig {
            address: address.parse().unwrap(),
            check: Check::None,
            weight: 1,
        }
    }

    #[test]
    fn tcp_checks_parse_ipv4_and_bracketed_ipv6() {
        assert_eq!(
            Check::parse("tcp:127.0.0.10:8080"),
            Ok(Check::Tcp("127.0.0.10:8080".parse().unwrap()))
        );
        assert_eq!(
            Check::parse("tcp:[::1]:53"),
            Ok(Check::Tcp("[::1]:53".parse().unwrap()))
        );
    }

    #[test]
    fn http_checks_keep_url_address_and_path() {
        assert_eq!(
            Check::parse("http://127.0.0.10:8080/health"),
            Ok(Check::Http {
                url: "http://127.0.0.10:8080/health".into(),
                addr: "127.0.0.10:8080".parse().unwrap(),
                path: "/health".into(),
            })
        );
        let Ok(Check::Http { addr, path, .. }) = Check::parse("http://[::1]") else {
            panic!("bracketed IPv6 without port parses");
        };
        assert_eq!(addr, "[::1]:80".parse().unwrap());
        assert_eq!(path, "/");
    }

    #[test]
    fn a_check_with_a_host_name_is_refused_with_an_example() {
        let error = Check::parse("http://backend.example:8080/health").unwrap_err();
        assert!(error.contains("do not resolve names"), "{error}");
        let error = Check::parse("tcp:localhost:80").unwrap_err();
        assert!(error.contains("tcp:127.0.0.10:8080"), "{error}");
        assert!(Check::parse("https://127.0.0.1/").is_err());
        assert!(Check::parse("icmp:127.0.0.1").is_err());
    }

    #[test]
    fn checks_display_as_they_were_written() {
        for text in [
            "tcp:127.0.0.10:8080",
            "http://127.0.0.10:8080/health",
            "none",
        ] {
            assert_eq!(Check::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn all_down_policies_parse_by_their_config_names() {
        assert_eq!("serve-all".parse(), Ok(AllDownPolicy::ServeAll));
        assert_eq!("keep-last".parse(), Ok(AllDownPolicy::KeepLast));
        assert!("keep".parse::<AllDownPolicy>().is_err());
    }

    #[test]
    fn ipv4_and_ipv6_backends_become_a_and_aaaa_sets() {
        let endpoint = EndpointConfig::new(
            Name::from_ascii("api.example.test.").unwrap(),
            vec![backend("192.0.2.1"), backend("2001:db8::1")],
        );
        let addresses = endpoint.backends.iter().map(|b| b.address).collect();
        let sets = endpoint.record_sets(&addresses);
        let types: Vec<_> = sets.iter().map(|set| set.rtype).collect();
        assert_eq!(types, vec![RecordType::A, RecordType::AAAA]);
        let mut content = ZoneContent::new(Name::from_ascii("example.test.").unwrap());
        for set in sets {
            content.put_rrset(set);
        }
        assert_eq!(endpoint.answers_in(&content), addresses);
    }

    #[test]
    fn a_floor_above_the_number_of_backends_is_refused() {
        let mut endpoint = EndpointConfig::new(
            Name::from_ascii("api.example.test.").unwrap(),
            vec![backend("192.0.2.1")],
        );
        assert_eq!(endpoint.validate(), Ok(()));
        endpoint.min_answers = 2;
        assert!(endpoint.validate().unwrap_err().contains("min_answers"));
        endpoint.min_answers = 1;
        endpoint.backends.push(backend("192.0.2.1"));
        assert!(endpoint.validate().unwrap_err().contains("twice"));
    }
}
