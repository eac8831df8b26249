//! DNS cookies (RFC 7873) with RFC 9018's interoperable server cookie, on UDP and TCP.
//!
//! A query whose OPT carries a COOKIE option gets our server cookie in its answer: the
//! client cookie echoed, then version 1, three reserved bytes, the time in seconds and
//! SipHash-2-4 over client cookie, version, reserved bytes, time and the client's address,
//! keyed with this server's secret (random at start). A query that presents a server cookie
//! we made for that client within the last hour is *verified*: response rate limiting lets
//! its answers through (a spoofed source cannot have seen the cookie).
//!
//! Queries with options never take the hot path (`crate::fast` answers option-less queries
//! only), so cookies are added to the library path's answer bytes here, after the fact.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

use crate::wire_format::TYPE_OPT;

/// EDNS option code of COOKIE (RFC 7873 §4).
const COOKIE: u16 = 10;
const CLIENT_COOKIE_BYTES: usize = 8;
/// RFC 9018: version, reserved (3), timestamp (4), hash (8).
const SERVER_COOKIE_BYTES: usize = 16;
/// A server cookie older than this is not verified (RFC 9018 §4.3: one hour).
const COOKIE_LIFETIME_SECONDS: u32 = 3_600;
/// A cookie from up to this far in the future is accepted (clock steps between servers).
const COOKIE_FUTURE_SECONDS: u32 = 300;

/// This server's cookie secret.
#[derive(Clone)]
pub struct CookieSecret([u8; 16]);

impl std::fmt::Debug for CookieSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CookieSecret(..)")
    }
}

impl CookieSecret {
    /// A random secret (from the standard library's per-process random keys and the time).
    pub fn random() -> CookieSecret {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let low = state.hash_one((now, 1u8)).to_le_bytes();
        let high = state.hash_one((now, 2u8)).to_le_bytes();
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&low);
        secret[8..].copy_from_slice(&high);
        CookieSecret(secret)
    }

    pub fn from_bytes(secret: [u8; 16]) -> CookieSecret {
        CookieSecret(secret)
    }

    /// Our server cookie for `client` at `now_s`.
    pub fn server_cookie(
        &self,
        client_cookie: &[u8; CLIENT_COOKIE_BYTES],
        client: IpAddr,
        now_s: u32,
    ) -> [u8; SERVER_COOKIE_BYTES] {
        let mut cookie = [0u8; SERVER_COOKIE_BYTES];
        cookie[0] = 1;
        cookie[4..8].copy_from_slice(&now_s.to_be_bytes());
        let hash = self.hash(client_cookie, &cookie[..8], client);
        cookie[8..].copy_from_slice(&hash.to_le_bytes());
        cookie
    }

    fn hash(&self, client_cookie: &[u8], head: &[u8], client: IpAddr) -> u64 {
        let mut hasher = SipHasher24::new_with_key(&self.0);
        hasher.write(client_cookie);
        hasher.write(head);
        match client {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        hasher.finish()
    }

    /// Whether `server_cookie` is one we made for `client` and `client_cookie`, recently.
    fn verifies(
        &self,
        client_cookie: &[u8; CLIENT_COOKIE_BYTES],
        server_cookie: &[u8],
        client: IpAddr,
        now_s: u32,
    ) -> bool {
        if server_cookie.len() != SERVER_COOKIE_BYTES || server_cookie[0] != 1 {
            return false;
        }
        let made = u32::from_be_bytes([
            server_cookie[4],
            server_cookie[5],
            server_cookie[6],
            server_cookie[7],
        ]);
        let fresh = made <= now_s.saturating_add(COOKIE_FUTURE_SECONDS)
            && now_s.saturating_sub(made) <= COOKIE_LIFETIME_SECONDS;
        fresh
            && self
                .hash(client_cookie, &server_cookie[..8], client)
                .to_le_bytes()
                == server_cookie[8..]
    }
}

/// The COOKIE option of a query: the client cookie and the server cookie it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCookie {
    pub client: [u8; CLIENT_COOKIE_BYTES],
    pub server: Vec<u8>,
}

/// The COOKIE option of `query`'s OPT record, if it has a well-formed one.
pub fn query_cookie(query: &[u8]) -> Option<QueryCookie> {
    let (rdata_start, rdata_end) = opt_rdata(query, 1)?;
    let mut at = rdata_start;
    while at + 4 <= rdata_end {
        let code = u16::from_be_bytes([query[at], query[at + 1]]);
        let length = usize::from(u16::from_be_bytes([query[at + 2], query[at + 3]]));
        let value = query.get(at + 4..at + 4 + length)?;
        if code == COOKIE {
            // RFC 7873 §4: a client cookie alone, or with a server cookie of 8 to 32 bytes.
            if length != CLIENT_COOKIE_BYTES && !(16..=40).contains(&length) {
                return None;
            }
            let mut client = [0u8; CLIENT_COOKIE_BYTES];
            client.copy_from_slice(&value[..CLIENT_COOKIE_BYTES]);
            return Some(QueryCookie {
                client,
                server: value[CLIENT_COOKIE_BYTES..].to_vec(),
            });
        }
        at += 4 + length;
    }
    None
}

/// Whether `cookie` carries a server cookie this server made for `client` recently.
pub fn verified(secret: &CookieSecret, cookie: &QueryCookie, client: IpAddr, now_s: u32) -> bool {
    secret.verifies(&cookie.client, &cookie.server, client, now_s)
}

/// Adds our COOKIE option to the OPT record of `reply[..length]` (the reply to a query
/// with `cookie`), when the reply has an OPT and the cookie fits within `limit`. Returns
/// the new length (unchanged when it could not be added).
pub fn add_to_reply(
    reply: &mut Vec<u8>,
    secret: &CookieSecret,
    cookie: &QueryCookie,
    client: IpAddr,
    now_s: u32,
    limit: usize,
) {
    let Some((rdata_start, rdata_end)) = opt_rdata(reply, 0) else {
        return;
    };
    let option_bytes = 4 + CLIENT_COOKIE_BYTES + SERVER_COOKIE_BYTES;
    // The OPT record is the last one we write; anything after it would be misplaced.
    if rdata_end != reply.len() || reply.len() + option_bytes > limit {
        return;
    }
    let server = secret.server_cookie(&cookie.client, client, now_s);
    let rdlength_at = rdata_start - 2;
    let rdlength = u16::from_be_bytes([reply[rdlength_at], reply[rdlength_at + 1]]);
    let Ok(option_len) = u16::try_from(option_bytes) else {
        return;
    };
    reply[rdlength_at..rdlength_at + 2].copy_from_slice(&(rdlength + option_len).to_be_bytes());
    reply.extend_from_slice(&COOKIE.to_be_bytes());
    reply.extend_from_slice(&((CLIENT_COOKIE_BYTES + SERVER_COOKIE_BYTES) as u16).to_be_bytes());
    reply.extend_from_slice(&cookie.client);
    reply.extend_from_slice(&server);
}

/// The UDP reply limit of `query`: its OPT's payload size (at least 512) capped at ours,
/// or 512 without an OPT (as the library path computes it).
pub fn udp_limit(query: &[u8], our_payload_bytes: u16) -> usize {
    let Some((rdata_start, _)) = opt_rdata(query, 1) else {
        return 512;
    };
    // The class field of the OPT record is 8 bytes before its RDATA.
    let class = query
        .get(rdata_start - 8..rdata_start - 6)
        .map_or(512, |b| u16::from_be_bytes([b[0], b[1]]));
    usize::from(class.max(512).min(our_payload_bytes))
}

/// The byte range of the OPT record's RDATA in `message`, which must be the last record of
/// the additional section. `question_count_minimum`: a query must have its question.
fn opt_rdata(message: &[u8], question_count_minimum: u16) -> Option<(usize, usize)> {
    let count = |at: usize| {
        message
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let questions = count(4)?;
    if questions < question_count_minimum {
        return None;
    }
    let records = usize::from(count(6)?) + usize::from(count(8)?) + usize::from(count(10)?);
    if count(10)? == 0 {
        return None;
    }
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut last = None;
    for _ in 0..records {
        let name_end = skip_name(message, at)?;
        let fixed = message.get(name_end..name_end + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata_start = name_end + 10;
        let rdata_end = rdata_start.checked_add(rdlength)?;
        if rdata_end > message.len() {
            return None;
        }
        last = Some((rtype, name_end, rdata_start, rdata_end));
        at = rdata_end;
    }
    match last {
        Some((TYPE_OPT, name_end, rdata_start, rdata_end)) if name_end == rdata_start - 10 => {
            Some((rdata_start, rdata_end))
        }
        _ => None,
    }
}

/// The offset after the name at `at` (labels, or a compression pointer ending it).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let length = *message.get(at)?;
        match length {
            0 => return Some(at + 1),
            1..=63 => at += 1 + usize::from(length),
            0xc0..=0xff => return message.get(at + 1).map(|_| at + 2),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_with(cookie: &[u8]) -> Vec<u8> {
        let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(&[
            3, b'w', b'w', b'w', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
        ]);
        q.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        q.extend_from_slice(&((cookie.len() + 4) as u16).to_be_bytes());
        q.extend_from_slice(&COOKIE.to_be_bytes());
        q.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
        q.extend_from_slice(cookie);
        q
    }

    #[test]
    fn a_server_cookie_verifies_for_its_client_within_an_hour_and_for_no_one_else() {
        let secret = CookieSecret::from_bytes([9; 16]);
        let client_cookie = [1, 2, 3, 4, 5, 6, 7, 8];
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        let cookie = secret.server_cookie(&client_cookie, me, 1_000_000);
        assert_eq!(cookie[0], 1, "RFC 9018 version");
        let presented = |server: &[u8]| QueryCookie {
            client: client_cookie,
            server: server.to_vec(),
        };
        assert!(verified(
            &secret,
            &presented(&cookie),
            me,
            1_000_000 + 3_600
        ));
        assert!(
            !verified(&secret, &presented(&cookie), me, 1_000_000 + 3_601),
            "expired"
        );
        assert!(!verified(
            &secret,
            &presented(&cookie),
            "192.0.2.2".parse().unwrap(),
            1_000_000
        ));
        assert!(!verified(
            &CookieSecret::from_bytes([8; 16]),
            &presented(&cookie),
            me,
            1_000_000
        ));
        let mut forged = cookie;
        forged[15] ^= 1;
        assert!(!verified(&secret, &presented(&forged), me, 1_000_000));
    }

    #[test]
    fn the_cookie_option_is_read_from_a_query_and_added_to_its_reply() {
        let client_cookie = [1, 2, 3, 4, 5, 6, 7, 8];
        let query = query_with(&client_cookie);
        let cookie = query_cookie(&query).expect("a client cookie");
        assert_eq!(cookie.client, client_cookie);
        assert!(cookie.server.is_empty());
        assert_eq!(
            query_cookie(&query_with(&[1, 2, 3])),
            None,
            "a bad length is no cookie"
        );
        // A reply: header, the question, one answer, our OPT (no options) last.
        let mut reply = vec![0, 7, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 1];
        reply.extend_from_slice(&[
            3, b'w', b'w', b'w', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
        ]);
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        reply.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        let secret = CookieSecret::from_bytes([9; 16]);
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        add_to_reply(&mut reply, &secret, &cookie, me, 5, 512);
        let echoed = query_cookie(&reply).expect("the reply carries the cookie");
        assert_eq!(echoed.client, client_cookie);
        assert!(verified(&secret, &echoed, me, 5));
        let full = reply.len();
        add_to_reply(&mut reply, &secret, &cookie, me, 5, full);
        assert_eq!(reply.len(), full, "nothing added past the limit");
    }
}
