//! What the etcd store keeps under its keys: JSON values, converted from and to the model's
//! types here and nowhere else.

use model::{Breaker, ContentHash, Generation, Name, Provenance, Refs, Version};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A zone's one mutable record: its refs, breaker and counters. Every write to the zone moves
/// this key (its mod revision), so a transaction that compares it fences every other writer
/// of the zone, clean-up included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ZoneRecord {
    /// The zone as first written.
    pub display: String,
    /// The generation the next version gets (never reused).
    pub next_generation: u64,
    pub last_serial: Option<u32>,
    pub active: Option<u64>,
    pub canary: Option<u64>,
    pub breaker: BreakerRecord,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub(super) enum BreakerRecord {
    Closed,
    Tripped {
        reason: String,
        at_ms: u64,
        actor: String,
    },
    Thawed {
        at_ms: u64,
        actor: String,
        reason: String,
    },
}

/// One version: its metadata and where its content is (the keys of its manifest chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct VersionRecord {
    /// The zone as first written.
    pub zone: String,
    pub generation: u64,
    pub content_hash: String,
    pub parent: Option<u64>,
    pub provenance: String,
    pub rollback_to: Option<u64>,
    pub actor: String,
    pub reason: String,
    pub serial: u32,
    pub records: u64,
    pub created_at_ms: u64,
    pub pinned: bool,
    /// Was ever the target of the active ref (clean-up keeps the last K of these).
    pub activated: bool,
    /// SHA-256 (hex) of each chunk of the bucket manifest, in order.
    pub manifest: Vec<String>,
    /// Written by the one call that committed it: after a timed-out commit the caller finds
    /// out whether it was its own.
    pub token: String,
    /// SHA-256 (hex) of the blob of its changes from its parent ([`NameChanges`]), when it
    /// was committed as a change: what it changed stays known after the parent is cleaned
    /// up (the velocity window reads it).
    ///
    /// [`NameChanges`]: crate::changes::NameChanges
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
}

/// One node's health verdicts, as it published them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HealthRecord {
    pub backends: Vec<VerdictRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct VerdictRecord {
    pub address: std::net::IpAddr,
    pub healthy: bool,
    pub since_ms: u64,
}

impl HealthRecord {
    pub fn new(view: &model::HealthView) -> HealthRecord {
        HealthRecord {
            backends: view
                .backends
                .iter()
                .map(|(address, state)| VerdictRecord {
                    address: *address,
                    healthy: state.healthy,
                    since_ms: state.since_ms,
                })
                .collect(),
        }
    }

    pub fn view(&self) -> model::HealthView {
        let mut view = model::HealthView::new();
        for verdict in &self.backends {
            view.set(
                verdict.address,
                model::BackendState {
                    healthy: verdict.healthy,
                    since_ms: verdict.since_ms,
                },
            );
        }
        view
    }
}

/// One audit entry; its sequence number is in its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AuditRecord {
    pub zone: String,
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub reason: String,
}

impl ZoneRecord {
    pub fn new(display: &Name) -> ZoneRecord {
        ZoneRecord {
            display: display.to_ascii(),
            next_generation: Generation::FIRST.0,
            last_serial: None,
            active: None,
            canary: None,
            breaker: BreakerRecord::from(&Breaker::Closed),
            source: None,
        }
    }

    pub fn refs(&self) -> Refs {
        Refs {
            active: self.active.map(Generation),
            canary: self.canary.map(Generation),
        }
    }

    pub fn set_refs(&mut self, refs: Refs) {
        self.active = refs.active.map(|g| g.0);
        self.canary = refs.canary.map(|g| g.0);
    }

    pub fn facts(&self) -> crate::rules::ZoneFacts {
        crate::rules::ZoneFacts {
            refs: self.refs(),
            next_generation: Some(Generation(self.next_generation)),
            last_serial: self.last_serial,
        }
    }

    pub fn display_name(&self) -> Result<Name, StoreError> {
        parse_name(&self.display)
    }
}

impl From<&Breaker> for BreakerRecord {
    fn from(breaker: &Breaker) -> BreakerRecord {
        match breaker.clone() {
            Breaker::Closed => BreakerRecord::Closed,
            Breaker::Tripped {
                reason,
                at_ms,
                actor,
            } => BreakerRecord::Tripped {
                reason,
                at_ms,
                actor,
            },
            Breaker::Thawed {
                at_ms,
                actor,
                reason,
            } => BreakerRecord::Thawed {
                at_ms,
                actor,
                reason,
            },
        }
    }
}

impl From<&BreakerRecord> for Breaker {
    fn from(record: &BreakerRecord) -> Breaker {
        match record.clone() {
            BreakerRecord::Closed => Breaker::Closed,
            BreakerRecord::Tripped {
                reason,
                at_ms,
                actor,
            } => Breaker::Tripped {
                reason,
                at_ms,
                actor,
            },
            BreakerRecord::Thawed {
                at_ms,
                actor,
                reason,
            } => Breaker::Thawed {
                at_ms,
                actor,
                reason,
            },
        }
    }
}

impl VersionRecord {
    pub fn new(version: &Version, manifest: Vec<String>, token: String) -> VersionRecord {
        let rollback_to = match version.provenance {
            Provenance::Rollback { to } => Some(to.0),
            _ => None,
        };
        VersionRecord {
            zone: version.zone.to_ascii(),
            generation: version.generation.0,
            content_hash: version.content_hash.to_hex(),
            parent: version.parent.map(|g| g.0),
            provenance: version.provenance.kind().to_string(),
            rollback_to,
            actor: version.actor.clone(),
            reason: version.reason.clone(),
            serial: version.serial,
            records: version.records,
            created_at_ms: version.created_at_ms,
            pinned: version.pinned,
            activated: false,
            manifest,
            token,
            changes: None,
        }
    }

    /// The model's version.
    pub fn version(&self) -> Result<Version, StoreError> {
        let display = &parse_name(&self.zone)?;
        let corrupt = |what: &str| StoreError::Corrupt {
            detail: format!(
                "zone {display} generation {}: {what}; the record was not written by dnsward \
                 or was damaged",
                self.generation
            ),
        };
        let provenance = Provenance::from_kind(&self.provenance, self.rollback_to.map(Generation))
            .ok_or_else(|| corrupt(&format!("unknown provenance {:?}", self.provenance)))?;
        let content_hash = ContentHash::from_hex(&self.content_hash)
            .ok_or_else(|| corrupt("the content hash is not 64 hex digits"))?;
        Ok(Version {
            zone: display.clone(),
            generation: Generation(self.generation),
            content_hash,
            parent: self.parent.map(Generation),
            provenance,
            actor: self.actor.clone(),
            reason: self.reason.clone(),
            serial: self.serial,
            records: self.records,
            created_at_ms: self.created_at_ms,
            pinned: self.pinned,
        })
    }
}

/// The value of a record, as stored.
pub(super) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Records hold strings and numbers only: serialising them cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

/// A record read back from `key`; [`StoreError::Corrupt`] naming the key when it does not
/// parse.
pub(super) fn decode<T: for<'de> Deserialize<'de>>(
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        detail: format!(
            "etcd key {}: {error}; the value was not written by this version of dnsward or was \
             damaged",
            String::from_utf8_lossy(key)
        ),
    })
}

pub(super) fn parse_name(text: &str) -> Result<Name, StoreError> {
    Name::from_ascii(text).map_err(|error| StoreError::Corrupt {
        detail: format!("stored zone name {text:?} does not parse: {error}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_breaker_state_round_trips_through_its_record() {
        for breaker in [
            Breaker::Closed,
            Breaker::Closed.trip("why", "who", 5),
            Breaker::Closed
                .trip("why", "who", 5)
                .thaw("fixed", "op", 9)
                .unwrap(),
        ] {
            let record = BreakerRecord::from(&breaker);
            let bytes = encode(&record);
            let back: BreakerRecord = decode(b"k", &bytes).unwrap();
            assert_eq!(Breaker::from(&back), breaker);
        }
    }

    #[test]
    fn a_damaged_record_is_reported_as_corrupt_with_its_key() {
        let error = decode::<ZoneRecord>(b"/dnsward/zones/x.", b"{not json").unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { detail } if detail.contains("/dnsward/zones/x.")),
            "{error}"
        );
    }
}
