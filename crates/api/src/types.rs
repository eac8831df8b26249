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
    /// The node that answered: its name, its store, and whether it serves from the store or
    /// from its local copy. `None` from a server that does not say (older API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeStatus>,
}

/// The answering node, in `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// `[node] name`.
    pub name: String,
    /// Where its store is (a file, or etcd endpoints and prefix).
    pub store: String,
    /// The node started while the store could not be read and serves its local copy of the
    /// zones (static stability) until it can.
    pub serving_local_copy: bool,
    /// Why the store could not be read for this status (then `zones` lists what the node
    /// serves, from its own memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
    /// On a shared store: every live node's own verdict per backend (this node first); a
    /// backend is down when the `[health] quorum` of them says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkers: Vec<CheckerStatus>,
}

/// One node's own health verdicts, in `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckerStatus {
    pub node: String,
    /// Backend address → healthy.
    pub verdicts: std::collections::BTreeMap<String, bool>,
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
    /// Set while the active version was forced below a floor by an operator (`apply
    /// --force`): who, and why. Cleared by the next version, which restores the floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// For a secondary zone: its primary, the serial the primary has, and how the last
    /// transfer went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<PrimaryStatus>,
    /// Removals health asks for that the guard policy holds back: why each endpoint still
    /// answers addresses it should not, and when that lifts.
    #[serde(default)]
    pub deferred: Vec<DeferralBody>,
    /// Per endpoint, why it answers what it answers (healthy backends, not probed yet,
    /// fewer than its floor and the all-down policy), from the last plan.
    #[serde(default)]
    pub endpoints: Vec<EndpointWhy>,
}

/// A secondary zone's primary, as the node last saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrimaryStatus {
    pub address: String,
    /// The primary's serial at the last check; absent before the first answer.
    pub serial: Option<u32>,
    /// When the primary last answered (ms since the epoch).
    pub checked_at_ms: Option<u64>,
    /// What the last transfer did: committed, refused by the guard (and why), not applied
    /// while frozen.
    pub last_transfer: Option<String>,
    /// The last failure to reach or use the primary; absent after a success.
    pub last_error: Option<String>,
    /// The SOA expire interval passed without reaching the primary (still serving).
    pub expired: bool,
}

/// Why one endpoint answers what it answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointWhy {
    pub endpoint: String,
    pub why: String,
}

/// One endpoint's removal held back by the guard policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeferralBody {
    pub endpoint: String,
    /// Addresses still served although health says they should go.
    pub still_served: Vec<String>,
    /// The limit holding them, with its value and configuration key.
    pub why: String,
    /// When the limit next lets one go (ms since the epoch); absent: at the next plan.
    pub lifts_at_ms: Option<u64>,
}

impl DeferralBody {
    pub fn from_deferral(deferral: &model::Deferral) -> DeferralBody {
        DeferralBody {
            endpoint: deferral.name.to_ascii(),
            still_served: deferral.held.iter().map(ToString::to_string).collect(),
            why: deferral.limit.clone(),
            lifts_at_ms: deferral.lifts_at_ms,
        }
    }
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
    /// Reported backends whose own latest probe says the opposite (applied all the same,
    /// logged and counted in `dnsward_health_reports_contradicting_probes_total`).
    #[serde(default)]
    pub contradicting_probes: Vec<String>,
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
    /// The active generation the change was prepared against (`apply --base`); refused
    /// with a conflict when the zone moved since. `None`: whatever is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u64>,
}

/// Body of `POST /v1/zones/{zone}/plan`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanRequest {
    pub zone_file: String,
}

/// What an operator change would do: `dnsward plan`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanResponse {
    pub zone: String,
    /// The active generation the plan was made against: `apply --base` it.
    pub base: Option<u64>,
    /// `accept`, `refuse`, or `refuse-unless-forced` (only floors stand in the way).
    pub verdict: String,
    /// Why not, when refused.
    pub reasons: Vec<String>,
    /// Records the change adds, and those it removes, one zone-file line each.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Protected names whose records it touches.
    pub endpoints_touched: Vec<String>,
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
