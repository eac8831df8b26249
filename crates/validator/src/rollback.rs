//! The repair path: small, synchronous, and sharing nothing with the enactor's plan path but
//! the store's compare-and-swap.
//!
//! 1. Trip the zone's breaker first: automation stops moving the ref while we repair, and if
//!    nothing can be restored the zone stays frozen with the last loaded snapshot serving.
//! 2. Read the newest candidate whose content the store can still show (a deleted or corrupt
//!    version is skipped).
//! 3. Commit that content as a new generation with provenance `rollback to G`, by CAS on
//!    whatever active is now (even a ref to a missing version), as a non-automation write:
//!    the breaker just tripped stops the planner, not the repair.
//! 4. Append a `rollback` audit entry.

use model::{Generation, Name, Provenance, RefName};
use store::{BreakerChange, Commit, NewAuditEntry, Store, StoreError};

use crate::{actions, limits, VALIDATOR_ACTOR};

/// A finished rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// Where active pointed before (possibly a generation that no longer exists).
    pub from: Option<Generation>,
    /// The good generation whose content was restored.
    pub restored: Generation,
    /// The new generation, now active.
    pub generation: Generation,
}

/// Why a rollback did not happen. The breaker is tripped in every case but the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    #[error("cannot trip the breaker of zone {zone}: {error}")]
    Trip { zone: Name, error: Box<StoreError> },
    #[error(
        "zone {zone}: no last known good to restore ({}); the zone is frozen and the last \
         loaded version keeps serving; restore a version by hand (`dnsward rollback`)",
        if tried.is_empty() { "none validated yet".to_string() } else { tried.join("; ") }
    )]
    NoGoodContent { zone: Name, tried: Vec<String> },
    #[error("zone {zone}: restoring generation {restored} failed: {error}")]
    Commit {
        zone: Name,
        restored: Generation,
        error: Box<StoreError>,
    },
}

/// The candidates worth restoring: known good generations (newest first) except the active
/// one and the one whose content active already restores (it did not help).
pub fn candidates(
    good: &[Generation],
    active: Option<Generation>,
    active_provenance: Option<&Provenance>,
) -> Vec<Generation> {
    let restored = match active_provenance {
        Some(Provenance::Rollback { to }) => Some(*to),
        _ => None,
    };
    good.iter()
        .copied()
        .filter(|g| Some(*g) != active && Some(*g) != restored)
        .collect()
}

/// Whether to roll back now. A generation not rolled back before: at once. The generation the
/// last attempt left active (the repair itself, or a state it could not repair): only after
/// `cooldown_ms`, so a repair that did not help is not repeated every round (no loops, no
/// audit floods).
pub fn rollback_due(
    last_attempt: Option<(Generation, u64)>,
    active: Generation,
    now_ms: u64,
    cooldown_ms: u64,
) -> bool {
    match last_attempt {
        Some((left_active, at_ms)) if left_active == active => {
            now_ms.saturating_sub(at_ms) >= cooldown_ms
        }
        _ => true,
    }
}

/// Rolls `zone` forward to the content of the first readable candidate. See the module doc.
pub fn roll_back(
    store: &dyn Store,
    zone: &Name,
    candidates: &[Generation],
    reason: &str,
    now_ms: u64,
) -> Result<RolledBack, RollbackError> {
    store
        .trip_breaker(BreakerChange {
            zone,
            reason,
            actor: VALIDATOR_ACTOR,
            now_ms,
        })
        .map_err(|error| RollbackError::Trip {
            zone: zone.clone(),
            error: Box::new(error),
        })?;
    let mut tried = Vec::new();
    let found = candidates
        .iter()
        .find_map(|&generation| match store.content(zone, generation) {
            Ok(content) => Some((generation, content)),
            Err(error) => {
                tried.push(format!("generation {generation}: {error}"));
                None
            }
        });
    let Some((restored, content)) = found else {
        return Err(RollbackError::NoGoodContent {
            zone: zone.clone(),
            tried,
        });
    };
    let commit_error = |error| RollbackError::Commit {
        zone: zone.clone(),
        restored,
        error: Box::new(error),
    };
    let text = format!("rollback to last known good {restored}: {reason}");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let from = store.refs(zone).map_err(commit_error)?.active;
        let committed = store.commit(Commit {
            content: &content,
            base: from,
            target: RefName::Active,
            provenance: Provenance::Rollback { to: restored },
            actor: VALIDATOR_ACTOR,
            reason: &text,
            now_ms,
            automation: false,
        });
        match committed {
            Ok(version) => {
                store
                    .append_audit(NewAuditEntry {
                        at_ms: now_ms,
                        actor: VALIDATOR_ACTOR.to_string(),
                        zone: zone.clone(),
                        action: actions::ROLLBACK.to_string(),
                        from,
                        to: Some(version.generation),
                        reason: text,
                    })
                    .map_err(commit_error)?;
                return Ok(RolledBack {
                    from,
                    restored,
                    generation: version.generation,
                });
            }
            Err(StoreError::Conflict { .. }) if attempts < limits::ROLLBACK_ATTEMPTS.default => {
                continue
            }
            Err(error) => return Err(commit_error(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{rdata::A, Breaker, RData, Record, ZoneContent};
    use store::SqliteStore;

    fn zone() -> Name {
        Name::from_ascii("example.test.").unwrap()
    }

    fn content(last: u8) -> ZoneContent {
        let origin = zone();
        let ns = Name::from_ascii("ns.example.test.").unwrap();
        let mbox = Name::from_ascii("hostmaster.example.test.").unwrap();
        let soa = model::rdata::SOA::new(ns.clone(), mbox, 1, 3600, 600, 1_209_600, 30);
        let records = vec![
            Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
            Record::from_rdata(
                origin.clone(),
                3600,
                RData::NS(model::rdata::NS(ns.clone())),
            ),
            Record::from_rdata(ns, 3600, RData::A(A::new(127, 0, 0, 1))),
            Record::from_rdata(
                Name::from_ascii("app.example.test.").unwrap(),
                30,
                RData::A(A::new(127, 0, 0, last)),
            ),
        ];
        ZoneContent::from_records(origin, records).unwrap()
    }

    fn commit(store: &SqliteStore, content: &ZoneContent) -> Generation {
        let base = store.refs(&zone()).unwrap().active;
        store
            .commit(Commit {
                content,
                base,
                target: RefName::Active,
                provenance: Provenance::Planner,
                actor: "test",
                reason: "test",
                now_ms: 1,
                automation: true,
            })
            .unwrap()
            .generation
    }

    #[test]
    fn rollback_restores_good_content_as_a_new_generation_and_freezes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
        let good = commit(&store, &content(11));
        let bad = commit(&store, &content(99));
        let done = roll_back(&store, &zone(), &[good], "empty answer", 5).unwrap();
        assert_eq!(done.from, Some(bad));
        assert!(done.generation > bad);
        assert_eq!(store.refs(&zone()).unwrap().active, Some(done.generation));
        let restored = store.content(&zone(), done.generation).unwrap();
        assert_eq!(
            model::endpoint::addresses_at(
                &restored,
                &Name::from_ascii("app.example.test.").unwrap()
            ),
            ["127.0.0.11".parse().unwrap()].into()
        );
        assert_eq!(
            store.version(&zone(), done.generation).unwrap().provenance,
            Provenance::Rollback { to: good }
        );
        assert!(matches!(
            store.breaker(&zone()).unwrap(),
            Breaker::Tripped { .. }
        ));
    }

    #[test]
    fn unreadable_candidates_are_skipped_and_none_left_freezes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
        let good = commit(&store, &content(11));
        commit(&store, &content(99));
        let done = roll_back(&store, &zone(), &[Generation(42), good], "bad", 5).unwrap();
        assert_eq!(done.restored, good);
        let error = roll_back(&store, &zone(), &[Generation(42)], "bad", 6).unwrap_err();
        assert!(
            matches!(error, RollbackError::NoGoodContent { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_new_bad_generation_is_rolled_back_at_once_the_same_one_after_the_cooldown() {
        assert!(rollback_due(None, Generation(5), 0, 3_000));
        let last = Some((Generation(5), 1_000));
        assert!(rollback_due(last, Generation(6), 1_001, 3_000));
        assert!(!rollback_due(last, Generation(5), 3_999, 3_000));
        assert!(rollback_due(last, Generation(5), 4_000, 3_000));
    }

    #[test]
    fn candidates_skip_the_active_one_and_what_it_already_restored() {
        let good = [Generation(9), Generation(7), Generation(4)];
        assert_eq!(
            candidates(
                &good,
                Some(Generation(10)),
                Some(&Provenance::Rollback { to: Generation(9) })
            ),
            vec![Generation(7), Generation(4)]
        );
        assert_eq!(
            candidates(&good, Some(Generation(9)), None),
            vec![Generation(7), Generation(4)]
        );
    }
}
