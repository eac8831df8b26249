//! Operator actions on the store: freeze, thaw, pin, rollback, diff. Each is one or two
//! store transactions and lands in the audit log.

use std::collections::BTreeSet;

use model::{Breaker, Generation, Name, Provenance, RefName, Version};
use store::{BreakerChange, Commit, SetPinned, Store, StoreError};

/// Compare-and-swap attempts of a rollback before it gives up (only operator and validator
/// writes can race with it once the zone is frozen).
pub const ROLLBACK_ATTEMPTS: usize = 3;

/// Who did what, and why.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    pub now_ms: u64,
}

pub fn freeze(store: &dyn Store, zone: &Name, act: Act<'_>) -> Result<Breaker, StoreError> {
    store.trip_breaker(BreakerChange {
        zone,
        reason: act.reason,
        actor: act.actor,
        now_ms: act.now_ms,
    })
}

pub fn thaw(store: &dyn Store, zone: &Name, act: Act<'_>) -> Result<Breaker, StoreError> {
    store.thaw_breaker(BreakerChange {
        zone,
        reason: act.reason,
        actor: act.actor,
        now_ms: act.now_ms,
    })
}

pub fn pin(
    store: &dyn Store,
    zone: &Name,
    generation: Generation,
    pinned: bool,
    act: Act<'_>,
) -> Result<(), StoreError> {
    store.set_pinned(SetPinned {
        zone,
        generation,
        pinned,
        actor: act.actor,
        reason: act.reason,
        now_ms: act.now_ms,
    })
}

/// Rolls forward to the content of generation `to`: freezes the zone first (so automation
/// cannot undo the rollback before an operator thaws it), then commits that content as a
/// new generation with provenance "rollback to G", by compare-and-swap on the active ref.
pub fn rollback(
    store: &dyn Store,
    zone: &Name,
    to: Generation,
    act: Act<'_>,
) -> Result<Version, StoreError> {
    let content = store.content(zone, to)?;
    let freeze_reason = format!(
        "rolled back to generation {to} by {}: {}; thaw to resume automation",
        act.actor, act.reason
    );
    freeze(
        store,
        zone,
        Act {
            reason: &freeze_reason,
            ..act
        },
    )?;
    let mut last_error = None;
    for _ in 0..ROLLBACK_ATTEMPTS {
        let base = store.refs(zone)?.active;
        match store.commit(Commit {
            content: &content,
            base,
            target: RefName::Active,
            automation: false,
            provenance: Provenance::Rollback { to },
            actor: act.actor,
            reason: act.reason,
            now_ms: act.now_ms,
        }) {
            Ok(version) => return Ok(version),
            Err(error @ StoreError::Conflict { .. }) => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.expect("the loop ran at least once and only conflicts continue it"))
}

/// Records in zone-file presentation, one per line, that differ between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// The records of `added` and of `removed` as zone-file lines, leaving out lines both
/// hold (a set that changed keeps its unchanged records out of the diff).
pub fn changed_lines(
    added: &model::ZoneContent,
    removed: &model::ZoneContent,
) -> (Vec<String>, Vec<String>) {
    let lines = |content: &model::ZoneContent| -> BTreeSet<String> {
        zonefile::write(content)
            .lines()
            .filter(|line| !line.starts_with(';') && !line.starts_with('$'))
            .map(str::to_string)
            .collect()
    };
    let (new, old) = (lines(added), lines(removed));
    (
        new.difference(&old).cloned().collect(),
        old.difference(&new).cloned().collect(),
    )
}

pub fn diff(
    store: &dyn Store,
    zone: &Name,
    from: Generation,
    to: Generation,
) -> Result<Diff, StoreError> {
    let lines = |generation| -> Result<BTreeSet<String>, StoreError> {
        let text = zonefile::write(&store.content(zone, generation)?);
        Ok(text
            .lines()
            .filter(|line| !line.starts_with(';') && !line.starts_with('$'))
            .map(str::to_string)
            .collect())
    };
    let (old, new) = (lines(from)?, lines(to)?);
    Ok(Diff {
        added: new.difference(&old).cloned().collect(),
        removed: old.difference(&new).cloned().collect(),
    })
}
