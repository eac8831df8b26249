//! The store's decisions, written once.
//!
//! Every backend reads what a decision needs inside its transaction, calls the function here,
//! and carries out what it returns in the same transaction. The rules of safety contracts 2
//! (compare-and-swap of refs, generations only rise), 4 (clean-up by reachability) and 7 (a
//! tripped breaker refuses automation) exist only here; a new backend implements storage,
//! not rules. Each function is a pure function of its inputs.

use std::collections::BTreeSet;

use model::invariants::{self, Violation};
use model::{limits, serial, Breaker, Generation, Name, RefName, Refs, ZoneContent};

use crate::{actions, MoveRef, NewAuditEntry, StoreError};

/// What a backend knows of a zone before a commit: `None` fields for a zone it does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneFacts {
    pub refs: Refs,
    /// The generation the next version gets; `None` for a zone without versions ever.
    pub next_generation: Option<Generation>,
    /// The last SOA serial ever stored for the zone.
    pub last_serial: Option<u32>,
}

/// A commit the rules admit: the generation and served serial the new version gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmittedCommit {
    pub generation: Generation,
    /// The SOA serial stored and served ([`serial::next_serial`] of the last one stored and
    /// the content's own).
    pub serial: u32,
}

/// One ref write and its audit entry, in the order they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefWrite {
    pub reference: RefName,
    pub from: Option<Generation>,
    pub to: Option<Generation>,
    /// The audit entry's reason.
    pub reason: String,
}

impl RefWrite {
    /// The audit action of this write ([`actions::REF_MOVE`] or [`actions::CANARY_MOVE`]).
    pub fn action(&self) -> &'static str {
        match self.reference {
            RefName::Active => actions::REF_MOVE,
            RefName::Canary => actions::CANARY_MOVE,
        }
    }
}

/// What a ref change writes: the refs after it and each write with its audit entry. A
/// backend sets the refs, marks the active target as ever-active (when active moved),
/// appends one audit entry per write and moves the change counter once per write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChanges {
    pub refs: Refs,
    pub writes: Vec<RefWrite>,
}

impl RefChanges {
    /// The generation active moved to, if it moved.
    pub fn activated(&self) -> Option<Generation> {
        self.writes
            .iter()
            .find(|write| write.reference == RefName::Active)
            .and_then(|write| write.to)
    }
}

/// One version as clean-up sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionFacts {
    pub generation: Generation,
    pub pinned: bool,
    /// Was ever the target of the active ref.
    pub activated: bool,
    /// The version it is read from, when it is stored as a change of another (a kept version
    /// keeps it).
    pub read_from: Option<Generation>,
}

/// What clean-up deletes, and the audit reason saying what it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanUp {
    /// Oldest first; never empty.
    pub delete: Vec<Generation>,
    pub reason: String,
}

/// [`StoreError::Frozen`] when the zone's breaker stops this write: only automated writes
/// stop, and only at a tripped breaker (safety contract 7).
pub fn refuse_frozen(zone: &Name, breaker: &Breaker, automation: bool) -> Result<(), StoreError> {
    match breaker {
        Breaker::Tripped { reason, at_ms, .. } if automation => Err(StoreError::Frozen {
            zone: zone.clone(),
            reason: reason.clone(),
            since_ms: *at_ms,
        }),
        _ => Ok(()),
    }
}

/// The content's own SOA serial, or the refusal of content without one SOA at the apex.
pub fn content_serial(content: &ZoneContent) -> Result<u32, StoreError> {
    content.serial().ok_or_else(|| {
        invalid(
            content.origin(),
            Violation::InvalidContent {
                problems: "no single SOA at the apex".to_string(),
            },
        )
    })
}

/// [`StoreError::Invalid`] of `violation`.
pub fn invalid(zone: &Name, violation: Violation) -> StoreError {
    StoreError::Invalid {
        zone: zone.clone(),
        violation: Box::new(violation),
    }
}

/// Whether a commit of content with serial `content_serial` on top of `base` may happen,
/// and what it gets. In order: a frozen zone refuses automation; the active ref must still
/// be `base` (compare-and-swap); the new generation is the zone's next (never reused), above
/// both refs; the served serial rises.
pub fn admit_commit(
    zone: &Name,
    facts: &ZoneFacts,
    breaker: &Breaker,
    base: Option<Generation>,
    automation: bool,
    content_serial: u32,
) -> Result<AdmittedCommit, StoreError> {
    refuse_frozen(zone, breaker, automation)?;
    if facts.refs.active != base {
        return Err(StoreError::Conflict {
            zone: zone.clone(),
            reference: RefName::Active,
            expected: base,
            actual: facts.refs.active,
        });
    }
    let generation = facts.next_generation.unwrap_or(Generation::FIRST);
    let served_serial = serial::next_serial(facts.last_serial, content_serial);
    // Kept in release builds: a violation here is a bug, refuse rather than store it.
    invariants::check_generation_monotonic(facts.refs.active, generation)
        .and_then(|()| invariants::check_generation_monotonic(facts.refs.canary, generation))
        .and_then(|()| invariants::check_serial_rises(facts.last_serial, served_serial))
        .map_err(|violation| invalid(zone, violation))?;
    Ok(AdmittedCommit {
        generation,
        serial: served_serial,
    })
}

/// The ref writes of a commit admitted as `generation` to `target`.
pub fn commit_writes(
    refs: Refs,
    target: RefName,
    generation: Generation,
    reason: &str,
) -> RefChanges {
    match target {
        RefName::Active => activate(refs, generation, reason),
        RefName::Canary => set_canary(refs, Some(generation), reason),
    }
}

/// Whether a [`MoveRef`] may happen on a zone with `refs` and `breaker`, and what it writes.
/// `target_exists`: the version `request.to` names is stored (ignored when `to` is `None`).
///
/// In order: a frozen zone refuses automation; the ref must still be where the caller saw it
/// (compare-and-swap); the active ref is never cleared, a clear canary is not cleared again;
/// the target must exist, be newer than where the ref was, and (for a canary) newer than
/// active.
pub fn admit_move(
    request: &MoveRef<'_>,
    refs: Refs,
    breaker: &Breaker,
    target_exists: bool,
) -> Result<RefChanges, StoreError> {
    let zone = request.zone;
    refuse_frozen(zone, breaker, request.automation)?;
    let actual = refs.get(request.reference);
    if actual != request.expected {
        return Err(StoreError::Conflict {
            zone: zone.clone(),
            reference: request.reference,
            expected: request.expected,
            actual,
        });
    }
    let Some(to) = request.to else {
        return match (request.reference, actual) {
            (RefName::Active, _) => Err(StoreError::Refused {
                zone: zone.clone(),
                reason: "the active ref cannot be cleared; roll back to an earlier generation \
                         instead"
                    .to_string(),
            }),
            (RefName::Canary, None) => Err(StoreError::Refused {
                zone: zone.clone(),
                reason: "the canary ref is already clear".to_string(),
            }),
            (RefName::Canary, Some(_)) => Ok(set_canary(refs, None, request.reason)),
        };
    };
    if !target_exists {
        return Err(StoreError::NotFound {
            zone: zone.clone(),
            generation: to,
        });
    }
    let mut checked = invariants::check_generation_monotonic(request.expected, to);
    if request.reference == RefName::Canary {
        checked = checked.and_then(|()| invariants::check_generation_monotonic(refs.active, to));
    }
    checked.map_err(|violation| invalid(zone, violation))?;
    Ok(match request.reference {
        RefName::Active => activate(refs, to, request.reason),
        RefName::Canary => set_canary(refs, Some(to), request.reason),
    })
}

/// Active moves to `to`; a canary at or below `to` is promoted (equal) or superseded
/// (older) and cleared.
fn activate(refs: Refs, to: Generation, reason: &str) -> RefChanges {
    let mut writes = vec![RefWrite {
        reference: RefName::Active,
        from: refs.active,
        to: Some(to),
        reason: reason.to_string(),
    }];
    let mut after = Refs {
        active: Some(to),
        canary: refs.canary,
    };
    if let Some(canary) = refs.canary.filter(|canary| *canary <= to) {
        let reason = if canary == to {
            format!("promoted to active: {reason}")
        } else {
            format!("superseded by active generation {to}")
        };
        writes.push(RefWrite {
            reference: RefName::Canary,
            from: Some(canary),
            to: None,
            reason,
        });
        after.canary = None;
    }
    RefChanges {
        refs: after,
        writes,
    }
}

fn set_canary(refs: Refs, to: Option<Generation>, reason: &str) -> RefChanges {
    RefChanges {
        refs: Refs {
            active: refs.active,
            canary: to,
        },
        writes: vec![RefWrite {
            reference: RefName::Canary,
            from: refs.canary,
            to,
            reason: reason.to_string(),
        }],
    }
}

/// Clean-up by reachability (safety contract 4): which of `versions` to delete. Kept: the
/// targets of active and canary, pinned versions, the `keep_last` newest ever-active
/// versions (clamped to [`limits::KEEP_LAST_VERSIONS`]), every version newer than active
/// (in flight), and every version a kept one is read from. Age is never a reason. `None`
/// when nothing is deleted (also for a zone without an active version: all of it is in
/// flight).
pub fn select_clean_up(versions: &[VersionFacts], refs: Refs, keep_last: usize) -> Option<CleanUp> {
    let active = refs.active?;
    let keep_last = limits::KEEP_LAST_VERSIONS.clamp(Some(keep_last as u64));
    let mut by_age: Vec<&VersionFacts> = versions.iter().collect();
    by_age.sort_by_key(|version| std::cmp::Reverse(version.generation));
    let recent: BTreeSet<Generation> = by_age
        .iter()
        .filter(|version| version.activated)
        .take(usize::try_from(keep_last).unwrap_or(usize::MAX))
        .map(|version| version.generation)
        .collect();
    // `generation < active` keeps the active version and every newer, in-flight one.
    let mut delete: BTreeSet<Generation> = versions
        .iter()
        .filter(|version| {
            version.generation < active
                && !version.pinned
                && !recent.contains(&version.generation)
                && Some(version.generation) != refs.canary
        })
        .map(|version| version.generation)
        .collect();
    for version in versions {
        if let Some(read_from) = version.read_from {
            if !delete.contains(&version.generation) {
                delete.remove(&read_from);
            }
        }
    }
    if delete.is_empty() {
        return None;
    }
    let delete: Vec<Generation> = delete.into_iter().collect();
    let list = delete
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let reason = format!(
        "deleted generations {list}; kept active {active}, canary {}, the last {keep_last} \
         ever-active, pinned and in-flight versions",
        refs.canary
            .map_or_else(|| "none".to_string(), |canary| canary.to_string()),
    );
    Some(CleanUp { delete, reason })
}

/// Breaker entries are written only with the breaker ([`crate::Store::trip_breaker`],
/// [`crate::Store::thaw_breaker`]), so the stored breaker and the log cannot disagree.
pub fn refuse_breaker_entry(entry: &NewAuditEntry) -> Result<(), StoreError> {
    if entry.action == actions::BREAKER_TRIP || entry.action == actions::BREAKER_THAW {
        return Err(StoreError::Refused {
            zone: entry.zone.clone(),
            reason: "breaker changes are written with trip_breaker and thaw_breaker, which \
                     keep the stored breaker and the audit log in step"
                .to_string(),
        });
    }
    Ok(())
}

/// The breaker after a thaw, or the refusal of thawing one that is not tripped.
pub fn thaw(
    zone: &Name,
    current: Breaker,
    reason: &str,
    actor: &str,
    now_ms: u64,
) -> Result<Breaker, StoreError> {
    current
        .thaw(reason, actor, now_ms)
        .map_err(|error| StoreError::Refused {
            zone: zone.clone(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests;
