//! Response rate limiting (RRL) on UDP, with BIND 9's semantics, so that dnsward is not an
//! amplifier for spoofed queries: a small query for a large answer, sent with a victim's
//! source address, must not turn into a stream of large answers to the victim.
//!
//! * Every UDP answer is charged to an **account**: the client's prefix (`/24` for IPv4,
//!   `/56` for IPv6 by default) and the kind of response: an answer (keyed by question
//!   name and type), a NODATA or referral (the same key), an NXDOMAIN (keyed by the
//!   question name's *parent*, so random names under one domain share one account) or an
//!   error (REFUSED, FORMERR, ...; keyed by the client prefix alone).
//! * An account earns `responses_per_second` credits per second, holds at most that many,
//!   and owes at most `window_seconds` times that many. Each answer costs one credit.
//!   While the balance is negative, answers are **limited**: every `slip`th one is sent as
//!   a truncated reply (TC=1, no records; a real client retries over TCP, which is never
//!   limited) and the rest are dropped. `slip = 0` drops them all.
//! * **Exempt**: TCP (the answer goes to a client that completed a handshake), and sources
//!   in the configured `exempt` prefixes (secondaries, monitoring, a resolver of our own).
//! * **Log-only** mode charges accounts and counts what would have been limited but sends
//!   every answer, to size the limit before it is enforced.
//!
//! [`charge`] is the pure rule for one account; [`RateLimiter`] keeps the accounts (a fixed
//! table: an account whose slot is taken by another key starts afresh, like NSD's) and
//! applies the rule under a per-shard lock.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use model::limits::Limit;

/// Answers per second one account may receive before it is limited (NSD's default; BIND
/// leaves the value to the operator and suggests 5 to 10 behind resolvers). `0` turns
/// response rate limiting off.
pub const RRL_RESPONSES_PER_SECOND: Limit = Limit {
    name: "server.rrl.responses_per_second",
    default: 200,
    min: 0,
    max: 1_000_000,
};

/// Every `slip`th limited answer is sent truncated instead of dropped (BIND's and NSD's
/// default 2). `0`: drop every limited answer.
pub const RRL_SLIP: Limit = Limit {
    name: "server.rrl.slip",
    default: 2,
    min: 0,
    max: 10,
};

/// How many seconds of credit an account can owe (BIND's `window`, default 15): a source
/// that kept sending above the rate stays limited this long after it slows down.
pub const RRL_WINDOW_SECONDS: Limit = Limit {
    name: "server.rrl.window_seconds",
    default: 15,
    min: 1,
    max: 3_600,
};

/// IPv4 sources in one account share this prefix length.
pub const RRL_IPV4_PREFIX_LENGTH: Limit = Limit {
    name: "server.rrl.ipv4_prefix_length",
    default: 24,
    min: 8,
    max: 32,
};

/// IPv6 sources in one account share this prefix length.
pub const RRL_IPV6_PREFIX_LENGTH: Limit = Limit {
    name: "server.rrl.ipv6_prefix_length",
    default: 56,
    min: 16,
    max: 128,
};

/// Accounts kept (a power of two is used, rounded up). 8 bytes of key and 24 of state
/// each: the default holds a quarter of a million accounts in 8 MiB.
pub const RRL_TABLE_ENTRIES: Limit = Limit {
    name: "server.rrl.table_entries",
    default: 262_144,
    min: 1_024,
    max: 16_777_216,
};

/// Prefixes exempt from rate limiting.
pub const RRL_EXEMPT_PREFIXES: Limit = Limit {
    name: "server.rrl.exempt",
    default: 0,
    min: 0,
    max: 1_024,
};

/// An address prefix, e.g. `192.0.2.0/24` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub address: IpAddr,
    pub length: u8,
}

impl Prefix {
    /// Parses `ADDRESS/LENGTH` (or a bare address, a whole-address prefix).
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let (address, length) = match text.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (text, None),
        };
        let address: IpAddr = address.trim().parse().map_err(|_| {
            format!("`{text}` is not an address prefix; write e.g. 192.0.2.0/24 or 2001:db8::/32")
        })?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let length = match length {
            None => most,
            Some(length) => match length.trim().parse::<u8>() {
                Ok(length) if length <= most => length,
                _ => {
                    return Err(format!(
                        "`{text}`: the prefix length must be a number from 0 to {most}"
                    ))
                }
            },
        };
        Ok(Prefix { address, length })
    }

    /// Whether `address` lies in this prefix (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, unmapped(address)) {
            (IpAddr::V4(prefix), IpAddr::V4(address)) => {
                masked(&prefix.octets(), self.length) == masked(&address.octets(), self.length)
            }
            (IpAddr::V6(prefix), IpAddr::V6(address)) => {
                masked(&prefix.octets(), self.length) == masked(&address.octets(), self.length)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.address, self.length)
    }
}

/// Response rate limiting settings; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// `0`: off.
    pub responses_per_second: u32,
    pub slip: u32,
    pub window_seconds: u32,
    pub ipv4_prefix_length: u8,
    pub ipv6_prefix_length: u8,
    /// Count and report what would be limited, but send every answer.
    pub log_only: bool,
    pub table_entries: usize,
    pub exempt: Vec<Prefix>,
}

impl Default for RrlConfig {
    /// On, with the named limits' defaults.
    fn default() -> RrlConfig {
        RrlConfig {
            responses_per_second: RRL_RESPONSES_PER_SECOND.default as u32,
            slip: RRL_SLIP.default as u32,
            window_seconds: RRL_WINDOW_SECONDS.default as u32,
            ipv4_prefix_length: RRL_IPV4_PREFIX_LENGTH.default as u8,
            ipv6_prefix_length: RRL_IPV6_PREFIX_LENGTH.default as u8,
            log_only: false,
            table_entries: RRL_TABLE_ENTRIES.default as usize,
            exempt: Vec::new(),
        }
    }
}

impl RrlConfig {
    /// Response rate limiting off (benchmarks that load the server from one address).
    pub fn off() -> RrlConfig {
        RrlConfig {
            responses_per_second: 0,
            ..RrlConfig::default()
        }
    }

    /// The same settings with every value clamped into its limit's bounds.
    pub fn clamped(&self) -> RrlConfig {
        let clamp = |limit: &Limit, value: u64| limit.clamp(Some(value));
        RrlConfig {
            responses_per_second: clamp(
                &RRL_RESPONSES_PER_SECOND,
                u64::from(self.responses_per_second),
            ) as u32,
            slip: clamp(&RRL_SLIP, u64::from(self.slip)) as u32,
            window_seconds: clamp(&RRL_WINDOW_SECONDS, u64::from(self.window_seconds)) as u32,
            ipv4_prefix_length: clamp(&RRL_IPV4_PREFIX_LENGTH, u64::from(self.ipv4_prefix_length))
                as u8,
            ipv6_prefix_length: clamp(&RRL_IPV6_PREFIX_LENGTH, u64::from(self.ipv6_prefix_length))
                as u8,
            log_only: self.log_only,
            table_entries: clamp(&RRL_TABLE_ENTRIES, self.table_entries as u64) as usize,
            exempt: self
                .exempt
                .iter()
                .take(RRL_EXEMPT_PREFIXES.max as usize)
                .copied()
                .collect(),
        }
    }
}

/// What happens to one UDP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RrlAction {
    Send,
    /// Sent truncated: header and question only, TC=1.
    Slip,
    Drop,
}

/// The kind of response an account is kept for (BIND's response classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    Answer = 1,
    NoData = 2,
    NxDomain = 3,
    Error = 4,
}

/// One account's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    /// Which key holds the slot (0: none).
    pub key: u64,
    /// Credits in thousandths of an answer.
    pub balance: i64,
    /// When credits were last added (ms).
    pub updated_ms: u64,
    /// Limited answers so far (for slip).
    pub limited: u32,
}

/// The rule for one answer charged to `account` (BIND's): a slot held by another key is
/// taken over with a full balance; credits accrue at `rate` per second up to `rate`; the
/// answer costs one; the debt is at most `window` seconds of credit. Not negative: sent.
/// Negative: limited, and every `slip`th limited answer slips.
pub fn charge(account: &mut Account, key: u64, now_ms: u64, config: &RrlConfig) -> RrlAction {
    let rate = i64::from(config.responses_per_second);
    let full = rate * 1_000;
    if account.key != key {
        *account = Account {
            key,
            balance: full,
            updated_ms: now_ms,
            limited: 0,
        };
    } else {
        let elapsed = i64::try_from(now_ms.saturating_sub(account.updated_ms)).unwrap_or(i64::MAX);
        account.balance = account
            .balance
            .saturating_add(elapsed.saturating_mul(rate))
            .min(full);
        account.updated_ms = now_ms.max(account.updated_ms);
    }
    let floor = -(full * i64::from(config.window_seconds));
    account.balance = (account.balance - 1_000).max(floor);
    if account.balance >= 0 {
        return RrlAction::Send;
    }
    account.limited = account.limited.wrapping_add(1);
    if config.slip > 0 && account.limited.is_multiple_of(config.slip) {
        RrlAction::Slip
    } else {
        RrlAction::Drop
    }
}

/// The response class of a reply and the name it is keyed by (a range of the reply's
/// question name, still in wire form), or `None` for a reply without a readable question.
pub fn classify(reply: &[u8]) -> (ResponseClass, Option<(usize, usize)>) {
    let rcode = reply.get(3).map_or(0, |flags| flags & 0x0f);
    let questions = reply
        .get(4..6)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let answers = reply
        .get(6..8)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let name = if questions == 1 {
        question_name(reply)
    } else {
        None
    };
    match (rcode, name) {
        (0, Some(name)) if answers > 0 => (ResponseClass::Answer, Some(name)),
        (0, Some(name)) => (ResponseClass::NoData, Some(name)),
        (3, Some((start, end))) => {
            // The parent: the name without its first label (the root stays the root).
            let first = usize::from(reply[start]);
            let parent = if first == 0 { start } else { start + 1 + first };
            (ResponseClass::NxDomain, Some((parent, end)))
        }
        _ => (ResponseClass::Error, None),
    }
}

/// The question name of a reply (uncompressed, right after the header): its byte range
/// including the final root label, and the two type bytes after it.
fn question_name(reply: &[u8]) -> Option<(usize, usize)> {
    let mut at = 12;
    loop {
        let length = usize::from(*reply.get(at)?);
        if length == 0 {
            at += 1;
            break;
        }
        if length > 63 {
            return None;
        }
        at += 1 + length;
    }
    // The type follows the name; the key includes it for answers and NODATA.
    (reply.len() >= at + 2).then_some((12, at + 2))
}

/// Rewrites `reply[..length]` as a slipped answer: header and question only, TC=1. Returns
/// the new length.
pub fn slip_reply(reply: &mut [u8], length: usize) -> usize {
    if length < 12 {
        return length;
    }
    reply[2] |= 0x02;
    let question_end = question_name(&reply[..length])
        .map(|(_, end)| end + 2)
        .filter(|&end| end <= length && reply[4..6] == [0, 1]);
    if question_end.is_none() {
        reply[4..6].copy_from_slice(&[0, 0]);
    }
    reply[6..12].copy_from_slice(&[0; 6]);
    question_end.unwrap_or(12)
}

/// Shards of the account table, each behind its own lock.
const SHARDS: usize = 64;

/// The accounts of one server and the rule applied to them; shared by every UDP worker.
pub struct RateLimiter {
    config: RrlConfig,
    shards: Box<[Mutex<Box<[Account]>>]>,
    slots_per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    epoch: Instant,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The outcome for one answer: what to do, and whether log-only mode let a limited answer
/// through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlOutcome {
    pub action: RrlAction,
    pub would_limit: bool,
}

impl RateLimiter {
    /// The limiter for `config`, or `None` when rate limiting is off.
    pub fn new(config: &RrlConfig) -> Option<RateLimiter> {
        let config = config.clamped();
        if config.responses_per_second == 0 {
            return None;
        }
        let slots_per_shard = (config.table_entries.next_power_of_two() / SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(vec![Account::default(); slots_per_shard].into_boxed_slice()))
            .collect();
        Some(RateLimiter {
            config,
            shards,
            slots_per_shard,
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: Instant::now(),
        })
    }

    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// Milliseconds on this limiter's clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Charges the UDP answer `reply` to `peer` at `now_ms` and says what to do with it.
    pub fn judge(&self, peer: IpAddr, reply: &[u8], now_ms: u64) -> RrlOutcome {
        let send = RrlOutcome {
            action: RrlAction::Send,
            would_limit: false,
        };
        let peer = unmapped(peer);
        if self
            .config
            .exempt
            .iter()
            .any(|prefix| prefix.contains(peer))
        {
            return send;
        }
        let key = self.key(peer, reply);
        let slot = usize::try_from(key).unwrap_or(usize::MAX);
        let shard = &self.shards[slot % SHARDS];
        let index = (slot / SHARDS) & (self.slots_per_shard - 1);
        let action = {
            let mut accounts = shard.lock().unwrap_or_else(PoisonError::into_inner);
            charge(&mut accounts[index], key, now_ms, &self.config)
        };
        match (action, self.config.log_only) {
            (RrlAction::Send, _) => send,
            (_, true) => RrlOutcome {
                action: RrlAction::Send,
                would_limit: true,
            },
            (action, false) => RrlOutcome {
                action,
                would_limit: true,
            },
        }
    }

    /// The account key: client prefix, response class and (but for errors) the keyed name
    /// in lower case. Never 0 (the empty slot).
    fn key(&self, peer: IpAddr, reply: &[u8]) -> u64 {
        let (class, name) = classify(reply);
        let mut hasher = self.hasher.build_hasher();
        match peer {
            IpAddr::V4(address) => {
                hasher.write_u8(4);
                hasher.write(&masked(&address.octets(), self.config.ipv4_prefix_length));
            }
            IpAddr::V6(address) => {
                hasher.write_u8(6);
                hasher.write(&masked(&address.octets(), self.config.ipv6_prefix_length));
            }
        }
        hasher.write_u8(class as u8);
        if let Some((start, end)) = name {
            let keyed = &reply[start..end];
            // NXDOMAIN is keyed by the parent alone; answers and NODATA also by type.
            let name_bytes = if class == ResponseClass::NxDomain {
                keyed.len().saturating_sub(2)
            } else {
                keyed.len()
            };
            for byte in &keyed[..name_bytes] {
                hasher.write_u8(byte.to_ascii_lowercase());
            }
        }
        hasher.finish().max(1)
    }
}

fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn masked<const N: usize>(octets: &[u8; N], length: u8) -> [u8; N] {
    let mut out = *octets;
    for (index, byte) in out.iter_mut().enumerate() {
        let bits_before = index * 8;
        let keep = usize::from(length).saturating_sub(bits_before).min(8);
        *byte &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u32, slip: u32) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            slip,
            window_seconds: 15,
            ..RrlConfig::default()
        }
    }

    fn actions(
        account: &mut Account,
        count: usize,
        now_ms: u64,
        config: &RrlConfig,
    ) -> Vec<RrlAction> {
        (0..count)
            .map(|_| charge(account, 7, now_ms, config))
            .collect()
    }

    #[test]
    fn an_account_sends_its_rate_in_a_burst_then_slips_every_second_limited_answer() {
        let config = config(10, 2);
        let mut account = Account::default();
        let burst = actions(&mut account, 20, 0, &config);
        assert!(
            burst[..10].iter().all(|a| *a == RrlAction::Send),
            "{burst:?}"
        );
        assert_eq!(
            &burst[10..14],
            &[
                RrlAction::Drop,
                RrlAction::Slip,
                RrlAction::Drop,
                RrlAction::Slip
            ]
        );
    }

    #[test]
    fn credit_returns_at_the_rate_and_debt_is_bounded_by_the_window() {
        let config = config(10, 0);
        let mut account = Account::default();
        actions(&mut account, 10_000, 0, &config);
        assert_eq!(
            account.balance,
            -10 * 1_000 * 15,
            "owes at most 15 s of credit"
        );
        // 15 s pays the debt back; one more second earns ten answers.
        let later = actions(&mut account, 11, 16_000, &config);
        assert_eq!(later.iter().filter(|a| **a == RrlAction::Send).count(), 10);
        assert_eq!(
            later[10],
            RrlAction::Drop,
            "slip 0 drops every limited answer"
        );
    }

    #[test]
    fn a_slot_taken_by_another_key_starts_with_a_full_balance() {
        let config = config(2, 2);
        let mut account = Account::default();
        actions(&mut account, 5, 0, &config);
        assert_eq!(charge(&mut account, 8, 0, &config), RrlAction::Send);
    }

    #[test]
    fn prefixes_mask_the_host_bits_and_match_mapped_addresses() {
        let prefix = Prefix::parse("192.0.2.0/24").unwrap();
        assert!(prefix.contains("192.0.2.77".parse().unwrap()));
        assert!(prefix.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!prefix.contains("192.0.3.1".parse().unwrap()));
        assert!(Prefix::parse("2001:db8::/33")
            .unwrap()
            .contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(Prefix::parse("10.0.0.0/33")
            .unwrap_err()
            .contains("0 to 32"));
        assert!(Prefix::parse("ten/8")
            .unwrap_err()
            .contains("not an address prefix"));
        assert_eq!(masked(&[255, 255, 255, 255], 20), [255, 255, 240, 0]);
    }

    fn reply(name: &[&str], rcode: u8, answers: u16) -> Vec<u8> {
        let mut bytes = vec![0, 1, 0x84, rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        bytes[6..8].copy_from_slice(&answers.to_be_bytes());
        for label in name {
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label.as_bytes());
        }
        bytes.extend_from_slice(&[0, 0, 16, 0, 1]);
        bytes.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 1, 0]);
        bytes
    }

    #[test]
    fn nxdomain_is_keyed_by_the_parent_and_answers_by_name_and_type() {
        let limiter = RateLimiter::new(&config(1, 0)).unwrap();
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.200".parse().unwrap();
        let a = reply(&["x1", "example", "test"], 3, 0);
        let b = reply(&["y2", "example", "test"], 3, 0);
        assert_eq!(limiter.judge(peer, &a, 0).action, RrlAction::Send);
        assert_eq!(
            limiter.judge(neighbour, &b, 0).action,
            RrlAction::Drop,
            "one /24, one parent"
        );
        let answer = reply(&["www", "example", "test"], 0, 1);
        let other = reply(&["WWW2", "example", "test"], 0, 1);
        assert_eq!(limiter.judge(peer, &answer, 0).action, RrlAction::Send);
        assert_eq!(limiter.judge(peer, &other, 0).action, RrlAction::Send);
        assert_eq!(limiter.judge(peer, &answer, 0).action, RrlAction::Drop);
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(limiter.judge(elsewhere, &answer, 0).action, RrlAction::Send);
    }

    #[test]
    fn exempt_sources_and_log_only_mode_always_send() {
        let mut settings = config(1, 2);
        settings.exempt = vec![Prefix::parse("192.0.2.0/24").unwrap()];
        let limiter = RateLimiter::new(&settings).unwrap();
        let answer = reply(&["www", "example", "test"], 0, 1);
        for _ in 0..5 {
            let outcome = limiter.judge("192.0.2.1".parse().unwrap(), &answer, 0);
            assert_eq!(
                outcome,
                RrlOutcome {
                    action: RrlAction::Send,
                    would_limit: false
                }
            );
        }
        settings.log_only = true;
        settings.exempt.clear();
        let limiter = RateLimiter::new(&settings).unwrap();
        let peer = "192.0.2.1".parse().unwrap();
        assert!(!limiter.judge(peer, &answer, 0).would_limit);
        let limited = limiter.judge(peer, &answer, 0);
        assert_eq!(
            limited,
            RrlOutcome {
                action: RrlAction::Send,
                would_limit: true
            }
        );
        assert!(RateLimiter::new(&RrlConfig::off()).is_none());
    }

    #[test]
    fn a_slipped_reply_keeps_header_and_question_with_tc_set() {
        let mut bytes = reply(&["www", "example", "test"], 0, 1);
        let length = bytes.len();
        let slipped = slip_reply(&mut bytes, length);
        assert_eq!(slipped, 12 + 18 + 4);
        assert_eq!(bytes[2] & 0x02, 0x02, "TC");
        assert_eq!(&bytes[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
