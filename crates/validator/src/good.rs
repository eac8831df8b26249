//! The last known good: the newest generation that passed every check while active for
//! `good_after_ms`. A pure tracker, plus the replay of its persisted form (the
//! `validated-good` audit entries) at start.
//!
//! ```text
//!            clean round, target served              clean for good_after_ms
//!  unproven ──────────────────────────▶ proving ─────────────────────────────▶ good
//!     ▲                                   │ finding, or active moved
//!     └───────────────────────────────────┘
//! ```

use model::{Generation, Name};
use store::{AuditQuery, Store, StoreError};

use crate::actions;
use crate::limits;

/// Tracks one zone's last known good generations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodTracker {
    good_after_ms: u64,
    remembered: usize,
    /// The generation currently proving itself, and since when.
    proving: Option<(Generation, u64)>,
    /// Known good generations, newest first.
    good: Vec<Generation>,
}

impl GoodTracker {
    /// A tracker that starts from `good` (newest first, e.g. from [`replay_good`]).
    pub fn new(good_after_ms: u64, good: Vec<Generation>) -> GoodTracker {
        let remembered = limits::GOOD_REMEMBERED.default as usize;
        let mut tracker = GoodTracker {
            good_after_ms,
            remembered,
            proving: None,
            good,
        };
        tracker.good.truncate(remembered);
        tracker
    }

    /// Known good generations, newest first: the rollback candidates.
    pub fn good(&self) -> &[Generation] {
        &self.good
    }

    /// Folds one round in: `active` was served and every check was `clean` (or not).
    /// Returns the generation that became good with this round, if one did.
    pub fn observe(&mut self, active: Generation, clean: bool, now_ms: u64) -> Option<Generation> {
        if !clean {
            self.proving = None;
            return None;
        }
        let since = match self.proving {
            Some((generation, since)) if generation == active => since,
            _ => {
                self.proving = Some((active, now_ms));
                now_ms
            }
        };
        if now_ms.saturating_sub(since) < self.good_after_ms || self.good.first() == Some(&active) {
            return None;
        }
        self.good.retain(|g| *g != active);
        self.good.insert(0, active);
        self.good.truncate(self.remembered);
        Some(active)
    }

    /// Forgets a generation that turned out unreadable (deleted, corrupt).
    pub fn forget(&mut self, generation: Generation) {
        self.good.retain(|g| *g != generation);
    }
}

/// The zone's good generations recorded in the audit log (`validated-good`), newest first,
/// at most [`limits::GOOD_REMEMBERED`].
pub fn replay_good(store: &dyn Store, zone: &Name) -> Result<Vec<Generation>, StoreError> {
    let mut good: Vec<Generation> = Vec::new();
    let mut after = None;
    let mut read = 0u64;
    while read < limits::REPLAY_AUDIT_ENTRIES.default {
        let page = store.audit(&AuditQuery {
            zone: Some(zone.clone()),
            after_sequence: after,
            ..AuditQuery::default()
        })?;
        let Some(last) = page.last() else { break };
        after = Some(last.sequence);
        read += page.len() as u64;
        for entry in &page {
            if entry.action == actions::VALIDATED_GOOD {
                if let Some(generation) = entry.to {
                    good.retain(|g| *g != generation);
                    good.push(generation);
                }
            }
        }
    }
    good.reverse();
    good.truncate(limits::GOOD_REMEMBERED.default as usize);
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_is_good_after_passing_for_the_whole_time() {
        let mut tracker = GoodTracker::new(3_000, vec![]);
        assert_eq!(tracker.observe(Generation(4), true, 1_000), None);
        assert_eq!(tracker.observe(Generation(4), true, 3_999), None);
        assert_eq!(
            tracker.observe(Generation(4), true, 4_000),
            Some(Generation(4))
        );
        assert_eq!(tracker.observe(Generation(4), true, 9_000), None, "once");
        assert_eq!(tracker.good(), &[Generation(4)]);
    }

    #[test]
    fn a_finding_or_a_move_restarts_the_clock() {
        let mut tracker = GoodTracker::new(3_000, vec![Generation(2)]);
        tracker.observe(Generation(4), true, 0);
        tracker.observe(Generation(4), false, 2_000);
        assert_eq!(tracker.observe(Generation(4), true, 3_000), None);
        tracker.observe(Generation(5), true, 4_000);
        assert_eq!(tracker.observe(Generation(5), true, 6_999), None);
        assert_eq!(
            tracker.observe(Generation(5), true, 7_000),
            Some(Generation(5))
        );
        assert_eq!(tracker.good(), &[Generation(5), Generation(2)]);
        tracker.forget(Generation(5));
        assert_eq!(tracker.good(), &[Generation(2)]);
    }
}
