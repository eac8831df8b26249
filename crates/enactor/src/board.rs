//! The plan board: the newest guarded plan per zone, published by the control loop and taken
//! by every enactor. Only the newest plan matters: an older one that was never taken is
//! simply replaced (it would be stale anyway).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use model::{Generation, Name, Provenance, ZoneContent};
use store::zone_key;
use tokio::sync::watch;

/// Content the guard accepted for a zone, and the base it was computed and judged against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedPlan {
    /// Position among all published plans, assigned by [`PlanBoard::publish`].
    pub sequence: u64,
    pub zone: Name,
    /// The active generation the plan was computed from: the base of its compare-and-swap.
    pub base: Option<Generation>,
    /// The content to commit; its SOA serial is set by the store.
    pub content: ZoneContent,
    /// The content of `base` the plan was derived from, when the planner had it: lets the
    /// store validate and write only what changed ([`store::Store::commit_from`]).
    pub base_content: Option<ZoneContent>,
    pub provenance: Provenance,
    /// Why (the planner's notes), written into the version and the audit log.
    pub reason: String,
    pub planned_at_ms: u64,
}

/// The newest guarded plan per zone.
#[derive(Debug)]
pub struct PlanBoard {
    plans: Mutex<BTreeMap<String, watch::Sender<Option<Arc<GuardedPlan>>>>>,
    /// The sequence of the newest plan of any zone; enactors wait on it.
    published: watch::Sender<u64>,
}

impl Default for PlanBoard {
    fn default() -> PlanBoard {
        PlanBoard {
            plans: Mutex::new(BTreeMap::new()),
            published: watch::channel(0).0,
        }
    }
}

impl PlanBoard {
    pub fn new() -> Arc<PlanBoard> {
        Arc::new(PlanBoard::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, watch::Sender<Option<Arc<GuardedPlan>>>>> {
        // The map is consistent after every statement; a panic elsewhere leaves it usable.
        self.plans.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `plan` the newest plan of its zone, with the next sequence number.
    pub fn publish(&self, mut plan: GuardedPlan) -> Arc<GuardedPlan> {
        let mut plans = self.lock();
        plan.sequence = *self.published.borrow() + 1;
        let plan = Arc::new(plan);
        let key = zone_key(&plan.zone);
        let sender = plans.entry(key).or_insert_with(|| watch::channel(None).0);
        sender.send_replace(Some(Arc::clone(&plan)));
        self.published.send_replace(plan.sequence);
        plan
    }

    /// The newest plan of `zone`, if any was published.
    pub fn latest(&self, zone: &Name) -> Option<Arc<GuardedPlan>> {
        self.lock()
            .get(&zone_key(zone))
            .and_then(|sender| sender.borrow().clone())
    }

    /// The newest plan of every zone, in zone order.
    pub fn latest_plans(&self) -> Vec<Arc<GuardedPlan>> {
        self.lock()
            .values()
            .filter_map(|sender| sender.borrow().clone())
            .collect()
    }

    /// Follows the newest plan of one zone.
    pub fn subscribe(&self, zone: &Name) -> watch::Receiver<Option<Arc<GuardedPlan>>> {
        self.lock()
            .entry(zone_key(zone))
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Changes whenever a plan of any zone is published (the value is its sequence).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.published.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(zone: &str, base: u64) -> GuardedPlan {
        let zone = Name::from_ascii(zone).unwrap();
        GuardedPlan {
            sequence: 0,
            base_content: None,
            content: ZoneContent::new(zone.clone()),
            zone,
            base: Some(Generation(base)),
            provenance: Provenance::Planner,
            reason: String::new(),
            planned_at_ms: 0,
        }
    }

    #[test]
    fn the_newest_plan_per_zone_replaces_the_older_one() {
        let board = PlanBoard::new();
        let mut follower = board.subscribe(&Name::from_ascii("a.test.").unwrap());
        let mut changes = board.changes();
        board.publish(plan("a.test.", 1));
        board.publish(plan("b.test.", 7));
        let newest = board.publish(plan("A.TEST.", 2));
        assert_eq!(newest.sequence, 3);
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 3);
        let latest = board.latest_plans();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].base, Some(Generation(2)));
        assert_eq!(
            follower.borrow_and_update().as_ref().map(|p| p.sequence),
            Some(3)
        );
    }
}
