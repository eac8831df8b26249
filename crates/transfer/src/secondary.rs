//! dnsward as a guarded secondary (`[[zone]] primary = "IP:PORT"`): it pulls the zone from
//! its primary — when the SOA's refresh (or, after a failure, retry) interval passes, and at
//! once on a NOTIFY from the primary — IXFR from the serial it holds when it holds one, and
//! hands every received version to the node, which commits it through the guard like any
//! other change (floors of the zone's protected names, change limits). A version the guard
//! refuses is not served: the previous one keeps serving, the zone's breaker trips and the
//! audit log says why; that serial is not asked for again (a newer one is). While the zone
//! is frozen nothing received is applied.
//!
//! Past the SOA's expire interval without reaching the primary, the zone keeps serving what
//! it holds (dnsward never goes dark on its own) and says so loudly: log and `status`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::base::iana::{Opcode, Rcode};
use domain::base::{Message, MessageBuilder};
use domain::rdata::tsig::Time48;
use domain::tsig::{Key, ServerTransaction};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::BinDecodable;
use model::limits::Limit;
use model::{Generation, ZoneContent};
use store::zone_key;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::{self, Fetched};
use crate::keys::Keys;

/// The shortest refresh or retry interval honoured, whatever the SOA says.
pub const REFRESH_MIN_MS: Limit = Limit {
    name: "transfer.refresh_min_ms",
    default: 2_000,
    min: 100,
    max: 86_400_000,
};

/// The longest: a primary's SOA asking for weeks is still checked daily.
pub const REFRESH_MAX_MS: Limit = Limit {
    name: "transfer.refresh_max_ms",
    default: 86_400_000,
    min: 1_000,
    max: 604_800_000,
};

/// With nothing held yet (no SOA to read intervals from), how soon to try again.
pub const FIRST_RETRY_MS: u64 = 2_000;

/// One zone this node is a secondary for.
#[derive(Clone)]
pub struct SecondaryZone {
    pub zone: Name,
    pub primary: SocketAddr,
    /// Signs transfers and SOA queries, and must sign the primary's NOTIFY.
    pub key: Option<Key>,
}

/// What the node knows of one secondary zone, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecondaryState {
    /// The primary's serial at the last successful SOA query.
    pub primary_serial: Option<u32>,
    /// When the primary last answered (ms since the epoch).
    pub checked_at_ms: Option<u64>,
    /// What the last transfer did, in words.
    pub last_transfer: Option<String>,
    /// The last failure to reach or use the primary, cleared by the next success.
    pub last_error: Option<String>,
    /// A serial the guard refused: not asked for again.
    pub refused_serial: Option<u32>,
    /// The SOA expire interval passed without reaching the primary.
    pub expired: bool,
}

/// Why a received version was not committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The guard refused it (the breaker tripped; the reasons are audited).
    Refused(String),
    /// The zone is frozen: automation, transfers included, waits for a thaw.
    Frozen(String),
    /// Anything else (the store).
    Failed(String),
}

/// Commits a received version through the guard: zone, content, the generation it replaces
/// (compare-and-swap: a conflict if the zone moved meanwhile), reason → the committed
/// serial. Called on a blocking thread.
pub type Apply = Arc<
    dyn Fn(&Name, &ZoneContent, Option<Generation>, &str) -> Result<u32, ApplyError> + Send + Sync,
>;

/// The zone's active generation and content, to transfer incrementally from (`None`:
/// nothing held).
pub type Held = Arc<dyn Fn(&Name) -> Option<(Generation, ZoneContent)> + Send + Sync>;

struct ZoneTask {
    config: SecondaryZone,
    state: Mutex<SecondaryState>,
    wake: Notify,
}

/// Every secondary zone of a node: their refresh tasks, NOTIFY and status.
pub struct Secondaries {
    zones: HashMap<String, Arc<ZoneTask>>,
    /// The keys NOTIFY is checked against; replaced by a reload ([`Secondaries::set_keys`]).
    keys: std::sync::RwLock<Keys>,
}

impl Secondaries {
    pub fn new(zones: Vec<SecondaryZone>, keys: Keys) -> Secondaries {
        Secondaries {
            zones: zones
                .into_iter()
                .map(|config| {
                    (
                        zone_key(&config.zone),
                        Arc::new(ZoneTask {
                            config,
                            state: Mutex::new(SecondaryState::default()),
                            wake: Notify::new(),
                        }),
                    )
                })
                .collect(),
            keys: std::sync::RwLock::new(keys),
        }
    }

    /// Takes reloaded keys (for NOTIFY; a zone's primary and `primary_key` apply at the
    /// next start).
    pub fn set_keys(&self, keys: Keys) {
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
    }

    /// Starts one refresh task per zone.
    pub fn start(
        &self,
        held: Held,
        apply: Apply,
        now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Vec<JoinHandle<()>> {
        self.zones
            .values()
            .map(|task| {
                let task = Arc::clone(task);
                let held = Arc::clone(&held);
                let apply = Arc::clone(&apply);
                let now_ms = Arc::clone(&now_ms);
                tokio::spawn(async move { refresh_loop(task, held, apply, now_ms).await })
            })
            .collect()
    }

    /// The state of `zone`, if this node is its secondary.
    pub fn status(&self, zone: &Name) -> Option<(SocketAddr, SecondaryState)> {
        let task = self.zones.get(&zone_key(zone))?;
        let state = task
            .state
            .lock()
            .map(|state| state.clone())
            .unwrap_or_default();
        Some((task.config.primary, state))
    }

    /// Answers a NOTIFY (RFC 1996 §3.7): accepted (NOERROR, and the zone is checked at
    /// once) from the zone's primary signed with its key when one is configured; REFUSED for
    /// a zone this node is not a secondary of or from anyone else; a TSIG that does not
    /// verify gets NOTAUTH. `None` for what is not a NOTIFY request.
    pub fn notify(&self, request: &[u8], peer: IpAddr) -> Option<Vec<u8>> {
        let mut message = Message::from_octets(request.to_vec()).ok()?;
        let header = message.header();
        if header.opcode() != Opcode::NOTIFY || header.qr() {
            return None;
        }
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let transaction =
            match ServerTransaction::request(keys.store(), &mut message, Time48::now()) {
                Ok(transaction) => transaction,
                Err(error) => {
                    tracing::warn!(%peer, %error, "NOTIFY refused: its TSIG does not verify");
                    return error
                        .build_message(&message, MessageBuilder::new_vec())
                        .ok()
                        .map(|reply| reply.finish());
                }
            };
        let zone = message.sole_question().ok().and_then(|question| {
            Name::from_bytes(domain::base::ToName::to_vec(&question.qname()).as_slice()).ok()
        });
        let signed_by = transaction.as_ref().map(|t| t.key().name().to_string());
        let task = zone
            .as_ref()
            .and_then(|zone| self.zones.get(&zone_key(zone)));
        let rcode = match (&zone, task) {
            (Some(zone), Some(task)) if from_primary(&task.config, peer, signed_by.as_deref()) => {
                tracing::info!(%zone, %peer, "NOTIFY from the primary: checking its serial now");
                task.wake.notify_one();
                Rcode::NOERROR
            }
            (Some(zone), Some(_)) => {
                tracing::warn!(%zone, %peer, key = signed_by.as_deref().unwrap_or("none"), "NOTIFY refused: not from the zone's primary with its key");
                Rcode::REFUSED
            }
            (zone, _) => {
                tracing::info!(zone = ?zone.as_ref().map(ToString::to_string), %peer, "NOTIFY refused: not a secondary zone here");
                Rcode::REFUSED
            }
        };
        let mut builder = MessageBuilder::new_vec();
        builder.header_mut().set_aa(rcode == Rcode::NOERROR);
        let answer = builder.start_answer(&message, rcode).ok()?;
        let mut additional = answer.additional();
        if let Some(transaction) = transaction {
            transaction.answer(&mut additional, Time48::now()).ok()?;
        }
        Some(additional.finish())
    }
}

/// A NOTIFY comes from the zone's primary: its address, and its key when one is set.
fn from_primary(config: &SecondaryZone, peer: IpAddr, signed_by: Option<&str>) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        v4 => v4,
    };
    let key_matches = match &config.key {
        None => true,
        Some(key) => {
            signed_by.is_some_and(|used| crate::acl::same_key(used, &key.name().to_string()))
        }
    };
    peer == config.primary.ip() && key_matches
}

/// The SOA timers of `soa` in ms: refresh, retry, expire.
fn timers(soa: Option<&Record>) -> Option<(u64, u64, u64)> {
    match &soa?.data {
        RData::SOA(soa) => Some((
            u64::from(soa.refresh as u32) * 1000,
            u64::from(soa.retry as u32) * 1000,
            u64::from(soa.expire as u32) * 1000,
        )),
        _ => None,
    }
}

/// How long to wait before the next check (RFC 1034 §4.3.5): the SOA's refresh after a
/// success, its retry after a failure, clamped to the named bounds; with no SOA held, soon.
pub fn next_check(held: Option<(u64, u64)>, last_succeeded: bool) -> Duration {
    let wait = match held {
        None => FIRST_RETRY_MS,
        Some((refresh, _)) if last_succeeded => refresh,
        Some((_, retry)) => retry,
    };
    Duration::from_millis(wait.clamp(REFRESH_MIN_MS.default, REFRESH_MAX_MS.default))
}

async fn refresh_loop(
    task: Arc<ZoneTask>,
    held: Held,
    apply: Apply,
    now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
) {
    let zone = task.config.zone.clone();
    let mut last_success_ms: Option<u64> = None;
    loop {
        let held = {
            let held = Arc::clone(&held);
            let zone = zone.clone();
            tokio::task::spawn_blocking(move || held(&zone))
                .await
                .ok()
                .flatten()
        };
        let (base, content) = match held {
            Some((generation, content)) => (Some(generation), Some(content)),
            None => (None, None),
        };
        let soa = content.as_ref().and_then(|content| {
            content
                .get(content.origin(), model::RecordType::SOA)
                .and_then(|set| set.records().next())
        });
        let outcome = check(&task, base, content.as_ref(), soa.as_ref(), &apply).await;
        let now = now_ms();
        let succeeded = outcome.is_ok();
        {
            let mut state = task
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match outcome {
                Ok(()) => {
                    state.last_error = None;
                    state.checked_at_ms = Some(now);
                    state.expired = false;
                    last_success_ms = Some(now);
                }
                Err(error) => {
                    tracing::warn!(%zone, primary = %task.config.primary, %error, "zone refresh failed; the held version keeps serving");
                    state.last_error = Some(error);
                }
            }
            if let (Some((_, _, expire)), Some(last)) = (timers(soa.as_ref()), last_success_ms) {
                if !state.expired && now.saturating_sub(last) > expire {
                    state.expired = true;
                    tracing::error!(%zone, primary = %task.config.primary, "the SOA expire interval passed without reaching the primary; still serving the held version (dnsward does not go dark); fix the primary or its reachability");
                }
            }
        }
        let wait = next_check(
            timers(soa.as_ref()).map(|(refresh, retry, _)| (refresh, retry)),
            succeeded,
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = task.wake.notified() => {}
        }
    }
}

/// One refresh: the primary's serial, and a transfer when it is newer than what is held.
async fn check(
    task: &ZoneTask,
    base: Option<Generation>,
    content: Option<&ZoneContent>,
    soa: Option<&Record>,
    apply: &Apply,
) -> Result<(), String> {
    let config = &task.config;
    let zone = &config.zone;
    let skip = task
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .refused_serial;
    let mut fetched = client::fetch(config.primary, zone, config.key.as_ref(), soa, skip).await;
    if let Ok(answer) = &fetched {
        let mut state = task
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.primary_serial = Some(answer.serial());
    }
    let mut how = if soa.is_some() { "IXFR" } else { "AXFR" };
    let mut received = match (&fetched, content) {
        (Ok(Fetched::Incremental { steps, .. }), Some(content)) => {
            match client::apply(content, steps) {
                Ok(next) => Some(next),
                Err(reason) => {
                    tracing::warn!(%zone, %reason, "the IXFR does not apply to the held version; asking for the whole zone");
                    None
                }
            }
        }
        (Ok(Fetched::Whole { records, .. }), _) => Some(
            ZoneContent::from_records(zone.clone(), records.iter().cloned())
                .map_err(|error| format!("the transferred zone is not valid: {error}"))?,
        ),
        (Ok(Fetched::UpToDate { .. } | Fetched::Skipped { .. }), _) => return Ok(()),
        (Ok(Fetched::Incremental { .. }), None) => None,
        (Err(error), _) => return Err(error.to_string()),
    };
    if received.is_none() {
        how = "AXFR";
        fetched = client::fetch(config.primary, zone, config.key.as_ref(), None, None).await;
        received = match &fetched {
            Ok(Fetched::Whole { records, .. }) => Some(
                ZoneContent::from_records(zone.clone(), records.iter().cloned())
                    .map_err(|error| format!("the transferred zone is not valid: {error}"))?,
            ),
            Ok(_) => return Err("an AXFR was not answered with a whole zone".into()),
            Err(error) => return Err(error.to_string()),
        };
    }
    let Some(received) = received else {
        return Ok(());
    };
    let serial = received.serial().unwrap_or_default();
    if fetched
        .as_ref()
        .is_ok_and(|fetched| matches!(fetched, Fetched::Whole { .. }))
        && soa.is_some()
    {
        how = "IXFR (whole zone)";
    }
    let reason = format!(
        "{how} from the primary {} (serial {serial})",
        config.primary
    );
    let outcome = {
        let apply = Arc::clone(apply);
        let zone = zone.clone();
        let reason = reason.clone();
        tokio::task::spawn_blocking(move || apply(&zone, &received, base, &reason))
            .await
            .map_err(|error| format!("the commit task failed: {error}"))?
    };
    let mut state = task
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match outcome {
        Ok(committed) => {
            tracing::info!(%zone, primary = %config.primary, serial, committed, how, "transferred version committed");
            state.last_transfer = Some(format!("{reason}: committed"));
            state.refused_serial = None;
            Ok(())
        }
        Err(ApplyError::Refused(why)) => {
            tracing::error!(%zone, primary = %config.primary, serial, %why, "the guard refused the transferred version: the previous version keeps serving and the zone is frozen");
            state.last_transfer = Some(format!("{reason}: refused by the guard: {why}"));
            state.refused_serial = Some(serial);
            Ok(())
        }
        Err(ApplyError::Frozen(why)) => {
            state.last_transfer = Some(format!(
                "{reason}: not applied, the zone is frozen ({why}); thaw it to resume"
            ));
            Ok(())
        }
        Err(ApplyError::Failed(why)) => {
            Err(format!("cannot commit the transferred version: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_check_follows_the_soa_within_bounds() {
        assert_eq!(
            next_check(None, false),
            Duration::from_millis(FIRST_RETRY_MS)
        );
        assert_eq!(
            next_check(Some((3_600_000, 600_000)), true),
            Duration::from_secs(3_600)
        );
        assert_eq!(
            next_check(Some((3_600_000, 600_000)), false),
            Duration::from_secs(600)
        );
        assert_eq!(
            next_check(Some((1, 1)), true),
            Duration::from_millis(REFRESH_MIN_MS.default),
            "a primary asking for 1 ms is not polled in a loop"
        );
        assert_eq!(
            next_check(Some((u64::from(u32::MAX) * 1000, 1)), true),
            Duration::from_millis(REFRESH_MAX_MS.default)
        );
    }

    #[test]
    fn a_notify_counts_only_from_the_primary_with_its_key() {
        let key = crate::keys::key(&crate::keys::KeyConfig {
            name: "xfr-key".into(),
            algorithm: "hmac-sha256".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==".into(),
        })
        .unwrap();
        let signed = SecondaryZone {
            zone: Name::from_ascii("example.test.").unwrap(),
            primary: "127.0.0.1:5300".parse().unwrap(),
            key: Some(key),
        };
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(from_primary(&signed, local, Some("xfr-key.")));
        assert!(!from_primary(&signed, local, None));
        assert!(!from_primary(
            &signed,
            "127.0.0.2".parse().unwrap(),
            Some("xfr-key.")
        ));
        let unsigned = SecondaryZone {
            key: None,
            ..signed
        };
        assert!(from_primary(
            &unsigned,
            "::ffff:127.0.0.1".parse().unwrap(),
            None
        ));
    }
}
