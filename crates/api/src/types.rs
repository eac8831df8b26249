//! Request and response bodies of the HTTP API, shared with the CLI.

use std::collections::BTreeMap;

use model::{AuditEntry, Breaker, Refs, Version};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusResponse {
    pub zones: Vec<ZoneStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZoneStatus {
    pub zone: String,
    pub active: Option<u64>,
    pub canary: Option<u64>,
    pub serial: Option<u32>,
    /// `closed`, `tripped` or `thawed`.
    pub breaker: String,
    pub breaker_reason: Option<String>,
}

/// The reason of a tripped breaker, if it is tripped.
pub fn breaker_reason(breaker: &Breaker) -> Option<String> {
    match breaker {
        Breaker::Tripped { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryResponse {
    pub zone: String,
    pub active: Option<u64>,
    pub canary: Option<u64>,
    /// Newest first: versions, and plans the guard refused.
    pub entries: Vec<HistoryEntry>,
}

/// One line of a zone's history: a version, or a refused plan (no generation).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    pub generation: Option<u64>,
    pub at_ms: u64,
    /// import, planner, operator, rollback to G, update; or the refusing actor.
    pub provenance: String,
    pub actor: String,
    /// `accepted`, or `refused: REASONS`.
    pub verdict: String,
    pub reason: String,
    pub serial: Option<u32>,
    pub records: Option<u64>,
    pub parent: Option<u64>,
    pub content_hash: Option<String>,
    pub pinned: bool,
    /// `active`, `canary`, or empty.
    pub reference: String,
}

impl HistoryEntry {
    pub fn from_version(version: &Version, refs: &Refs) -> HistoryEntry {
        let reference = if refs.active == Some(version.generation) {
            "active"
        } else if refs.canary == Some(version.generation) {
            "canary"
        } else {
            ""
        };
        HistoryEntry {
            generation: Some(version.generation.0),
            at_ms: version.created_at_ms,
            provenance: version.provenance.to_string(),
            actor: version.actor.clone(),
            verdict: "accepted".to_string(),
            reason: version.reason.clone(),
            serial: Some(version.serial),
            records: Some(version.records),
            parent: version.parent.map(|g| g.0),
            content_hash: Some(version.content_hash.to_hex()),
            pinned: version.pinned,
            reference: reference.to_string(),
        }
    }

    pub fn from_refusal(entry: &AuditEntry) -> HistoryEntry {
        HistoryEntry {
            generation: None,
            at_ms: entry.at_ms,
            provenance: "refused plan".to_string(),
            actor: entry.actor.clone(),
            verdict: format!("refused: {}", entry.reason),
            reason: entry.reason.clone(),
            serial: None,
            records: None,
            parent: entry.from.map(|g| g.0),
            content_hash: None,
            pinned: false,
            reference: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthReport {
    pub address: String,
    pub healthy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthPushRequest {
    pub reports: Vec<HealthReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthPushResponse {
    pub accepted: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthViewBody {
    /// Address → healthy and since when.
    pub backends: BTreeMap<String, BackendHealth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackendHealth {
    pub healthy: bool,
    pub since_ms: u64,
}

impl HealthViewBody {
    pub fn from_view(view: &model::HealthView) -> HealthViewBody {
        HealthViewBody {
            backends: view
                .backends
                .iter()
                .map(|(address, state)| {
                    (
                        address.to_string(),
                        BackendHealth {
                            healthy: state.healthy,
                            since_ms: state.since_ms,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// A guarded operator change: new content for the zone as zone-file text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OperatorChangeRequest {
    pub zone_file: String,
    pub actor: String,
    pub reason: String,
    /// Break-glass: skip the floor check, with this reason (audited).
    #[serde(default)]
    pub force: Option<String>,
}

/// Who asks, and why: the body of freeze and thaw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActionRequest {
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RollbackRequest {
    pub to: u64,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinRequest {
    pub generation: u64,
    #[serde(default = "yes")]
    pub pinned: bool,
    pub actor: String,
    pub reason: String,
}

fn yes() -> bool {
    true
}

/// What a zone action left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZoneActionResponse {
    pub zone: String,
    pub active: Option<u64>,
    pub breaker: String,
    pub breaker_reason: Option<String>,
    /// The version a rollback created.
    pub created: Option<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiffResponse {
    pub zone: String,
    pub from: u64,
    pub to: u64,
    /// Records (zone-file lines) in `to` but not in `from`.
    pub added: Vec<String>,
    /// Records in `from` but not in `to`.
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntryBody {
    pub sequence: u64,
    pub at_ms: u64,
    pub actor: String,
    pub zone: String,
    pub action: String,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub reason: String,
}

impl AuditEntryBody {
    pub fn from_entry(entry: &AuditEntry) -> AuditEntryBody {
        AuditEntryBody {
            sequence: entry.sequence,
            at_ms: entry.at_ms,
            actor: entry.actor.clone(),
            zone: entry.zone.to_ascii(),
            action: entry.action.clone(),
            from: entry.from.map(|g| g.0),
            to: entry.to.map(|g| g.0),
            reason: entry.reason.clone(),
        }
    }

    /// Back to the model's type (for rendering timelines from API data).
    pub fn to_entry(&self) -> Option<AuditEntry> {
        Some(AuditEntry {
            sequence: self.sequence,
            at_ms: self.at_ms,
            actor: self.actor.clone(),
            zone: model::Name::from_ascii(&self.zone).ok()?,
            action: self.action.clone(),
            from: self.from.map(model::Generation),
            to: self.to.map(model::Generation),
            reason: self.reason.clone(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditResponse {
    pub entries: Vec<AuditEntryBody>,
}
