//! The operator path: a person's change to a zone, judged by the same guard as automation.
//! A refusal freezes the zone like any other; only an explicit, audited override (`force`)
//! may take a protected name below its floor.

use guard::{GuardInput, Verdict};
use model::{
    EndpointConfig, Generation, GuardPolicy, Name, Provenance, RefName, Version, ZoneContent,
};
use store::{BreakerChange, Commit, Store, StoreError};

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
    /// The active generation the change was prepared against (`apply --base`, what `plan`
    /// showed): refused with a conflict, nothing tripped, when the zone moved since. `None`:
    /// whatever is active.
    pub base: Option<Generation>,
    pub now_ms: u64,
    /// No person made it (a zone transfer from a primary): refused with
    /// [`StoreError::Frozen`] while the zone is frozen, decided in the store's transaction,
    /// like automation's own commits. A person's change (`false`) is theirs to make on a
    /// frozen zone.
    pub automated: bool,
    /// Where the version goes: [`RefName::Active`] for a person's change; a zone transfer
    /// in canary mode goes to [`RefName::Canary`], for the validator to check on the wire
    /// before it is served.
    pub target: RefName,
}

/// What an operator change would do, worked out without writing: the guard's verdict
/// against the active version and the record sets it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorPreview {
    /// The active generation the preview was made against (pass it as `--base`).
    pub base: Option<Generation>,
    /// The guard's verdict without an override.
    pub verdict: Verdict,
    /// The guard would accept it with `--force` (only floors stand in the way).
    pub forcible: bool,
    /// The record sets the change puts (new or changed) and those it replaces or removes,
    /// as they are now.
    pub added: ZoneContent,
    pub removed: ZoneContent,
    /// Protected names (endpoints) whose records the change touches.
    pub endpoints_touched: Vec<Name>,
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
///
/// With `force`, a change the guard refuses only for a floor is committed as
/// [`Provenance::Forced`], after the zone is frozen (so automation does not plan it away
/// before an operator thaws it); a change the guard accepts anyway is an ordinary operator
/// change, and the override is not used.
pub fn submit_operator_change(
    store: &dyn Store,
    change: OperatorChange<'_>,
) -> Result<Version, OperatorError> {
    let zone = change.zone;
    let judged = Judged::read(store, &change)?;
    let active = judged.active;
    let judge = |operator_override| judged.judge(&change, operator_override);
    let mut verdict = judge(None);
    let mut forced = None;
    if !verdict.is_accept() {
        if let Some(force) = &change.force {
            verdict = judge(Some(force.clone()));
            forced = Some(force.as_str());
        }
    }
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
    // A change while the zone is frozen is the operator's to make (they fix what froze
    // it), but the audit log says so: the validator pins what it then serves.
    let frozen = match store.breaker(zone)? {
        model::Breaker::Tripped { reason, .. } => Some(reason),
        _ => None,
    };
    let (provenance, reason) = match forced {
        Some(force) => {
            store.trip_breaker(BreakerChange {
                zone,
                reason: &format!(
                    "forced below a floor by {}: {force}; thaw to resume automation, which \
                     restores the floor",
                    change.actor
                ),
                actor: change.actor,
                now_ms: change.now_ms,
            })?;
            (
                Provenance::Forced,
                format!(
                    "{} (operator override of the floor: {force})",
                    change.reason
                ),
            )
        }
        None => (Provenance::Operator, change.reason.to_string()),
    };
    let reason = match frozen {
        Some(frozen) => format!("{reason} [committed while the zone was frozen: {frozen}]"),
        None => reason,
    };
    Ok(store.commit(Commit {
        content: change.content,
        base: active,
        target: change.target,
        provenance,
        actor: change.actor,
        reason: &reason,
        now_ms: change.now_ms,
        automation: change.automated,
    })?)
}

/// What an operator change is judged against: the active version, read once.
struct Judged {
    active: Option<Generation>,
    content: Option<ZoneContent>,
    recent: Vec<model::Removal>,
}

impl Judged {
    /// Reads the active version; a `base` the zone has moved from is a conflict.
    fn read(store: &dyn Store, change: &OperatorChange<'_>) -> Result<Judged, StoreError> {
        let zone = change.zone;
        let active = store.refs(zone)?.active;
        if let Some(base) = change.base {
            if active != Some(base) {
                return Err(StoreError::Conflict {
                    zone: zone.clone(),
                    reference: RefName::Active,
                    expected: Some(base),
                    actual: active,
                });
            }
        }
        let content = active
            .map(|generation| store.content(zone, generation))
            .transpose()?;
        let recent = RemovalLedger::new().recent(
            store,
            zone,
            change.endpoints,
            change.policy,
            change.now_ms,
        )?;
        Ok(Judged {
            active,
            content,
            recent,
        })
    }

    fn judge(&self, change: &OperatorChange<'_>, operator_override: Option<String>) -> Verdict {
        guard::judge(
            &GuardInput {
                origin: change.zone,
                base: self.active,
                active: self.content.as_ref(),
                proposed: change.content,
                proposed_base: self.active,
                proposed_generation: None,
                endpoints: change.endpoints,
                recent_removals: &self.recent,
                policy: change.policy,
                operator_override,
            },
            change.now_ms,
        )
    }
}

/// What `change` would do if submitted now: read-only (nothing judged is recorded, no
/// breaker trips).
pub fn preview_operator_change(
    store: &dyn Store,
    change: OperatorChange<'_>,
) -> Result<OperatorPreview, StoreError> {
    let judged = Judged::read(store, &change)?;
    let verdict = judged.judge(&change, None);
    let forcible = !verdict.is_accept()
        && judged
            .judge(&change, Some("preview".to_string()))
            .is_accept();
    let origin = change.zone.clone();
    let empty = ZoneContent::new(origin.clone());
    let before = judged.content.as_ref().unwrap_or(&empty);
    let mut added = ZoneContent::new(origin.clone());
    let mut removed = ZoneContent::new(origin);
    let mut touched = Vec::new();
    for set in before.changed_sets(change.content) {
        if let Some(old) = set.old {
            removed.put_rrset(old.clone());
        }
        if let Some(new) = set.new {
            added.put_rrset(new.clone());
        }
        if let Some(endpoint) = change
            .endpoints
            .iter()
            .find(|endpoint| endpoint.name == set.key.name)
        {
            if !touched.contains(&endpoint.name) {
                touched.push(endpoint.name.clone());
            }
        }
    }
    Ok(OperatorPreview {
        base: judged.active,
        verdict,
        forcible,
        added,
        removed,
        endpoints_touched: touched,
    })
}
