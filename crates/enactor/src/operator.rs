//! The operator path: a person's change to a zone, judged by the same guard as automation.
//! A refusal freezes the zone like any other; only an explicit, audited override (`force`)
//! may take a protected name below its floor.

use guard::GuardInput;
use model::{EndpointConfig, GuardPolicy, Name, Provenance, RefName, Version, ZoneContent};
use store::{Commit, Store, StoreError};

use crate::control::record_refusal;
use crate::removals::RemovalLedger;

/// A change an operator submits (CLI, API).
#[derive(Debug, Clone)]
pub struct OperatorChange<'a> {
    pub zone: &'a Name,
    pub content: &'a ZoneContent,
    /// The protected names of the zone (from the config).
    pub endpoints: &'a [EndpointConfig],
    pub policy: &'a GuardPolicy,
    pub actor: &'a str,
    pub reason: &'a str,
    /// An override of the floor, with its reason; recorded with the version.
    pub force: Option<String>,
    pub now_ms: u64,
}

/// Why an operator change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The guard refused the change; the zone's breaker tripped and the reasons are in the
    /// audit log.
    #[error(
        "zone {zone}: the guard refused the change and froze the zone: {}; fix the change, or \
         if going below the floor is intended, resubmit with an override reason (--force \
         REASON), then thaw the zone",
        reasons.join("; ")
    )]
    Refused { zone: Name, reasons: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Judges `change` against the zone's active version and commits it as the operator
/// (fenced on the active generation read here, not subject to the breaker). On refusal the
/// breaker trips, the verdict is audited and nothing else changes.
pub fn submit_operator_change(
    store: &dyn Store,
    change: OperatorChange<'_>,
) -> Result<Version, OperatorError> {
    let zone = change.zone;
    let active = store.refs(zone)?.active;
    let active_content = active
        .map(|generation| store.content(zone, generation))
        .transpose()?;
    let recent =
        RemovalLedger::new().recent(store, zone, change.endpoints, change.policy, change.now_ms)?;
    let verdict = guard::judge(
        &GuardInput {
            origin: zone,
            base: active,
            active: active_content.as_ref(),
            proposed: change.content,
            proposed_base: active,
            proposed_generation: None,
            endpoints: change.endpoints,
            recent_removals: &recent,
            policy: change.policy,
            operator_override: change.force.clone(),
        },
        change.now_ms,
    );
    if !verdict.is_accept() {
        let reasons: Vec<String> = verdict.reasons().iter().map(ToString::to_string).collect();
        let trip = verdict
            .breaker_reason()
            .unwrap_or_else(|| format!("guard refused an operator change: {verdict}"));
        record_refusal(
            store,
            zone,
            active,
            &verdict.to_string(),
            &trip,
            change.actor,
            change.now_ms,
        )?;
        return Err(OperatorError::Refused {
            zone: zone.clone(),
            reasons,
        });
    }
    let reason = match &change.force {
        Some(force) => format!(
            "{} (operator override of the floor: {force})",
            change.reason
        ),
        None => change.reason.to_string(),
    };
    Ok(store.commit(Commit {
        content: change.content,
        base: active,
        target: RefName::Active,
        provenance: Provenance::Operator,
        actor: change.actor,
        reason: &reason,
        now_ms: change.now_ms,
        automation: false,
    })?)
}
