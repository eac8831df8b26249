//! Recent removals (for the velocity limit), derived from the store's history, so a restart
//! loses nothing: each applied version's removals are the diff between its parent's content
//! and its own, stamped with the time it was committed. A version whose parent was cleaned up
//! counts as having used the whole window's budget on every endpoint name: after a restart
//! the planner is at worst more conservative, never less.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use model::{
    limits, EndpointConfig, Generation, GuardPolicy, Name, Removal, ZoneContent, ZoneDiff,
};
use store::{zone_key, Store, StoreError};

/// Removals of applied versions, computed once per version and kept while they matter.
#[derive(Debug, Default)]
pub struct RemovalLedger {
    computed: Mutex<HashMap<(String, Generation), Vec<Removal>>>,
}

impl RemovalLedger {
    pub fn new() -> RemovalLedger {
        RemovalLedger::default()
    }

    /// Removals from `zone` by versions committed within the policy's velocity window ending
    /// at `now_ms`. Reads at most [`limits::CONTROL_HISTORY_VERSIONS`] versions.
    pub fn recent(
        &self,
        store: &dyn Store,
        zone: &Name,
        endpoints: &[EndpointConfig],
        policy: &GuardPolicy,
        now_ms: u64,
    ) -> Result<Vec<Removal>, StoreError> {
        let window_start = now_ms.saturating_sub(policy.velocity_window_ms);
        let key = zone_key(zone);
        // Bounded by the limit's maximum (10,000), which fits in usize.
        let limit = usize::try_from(limits::CONTROL_HISTORY_VERSIONS.default).unwrap_or(64);
        let history = store.history(zone, limit)?;
        let mut recent = Vec::new();
        for version in history
            .iter()
            .filter(|version| version.created_at_ms > window_start)
        {
            let cached = self.lock().get(&(key.clone(), version.generation)).cloned();
            let removals = match cached {
                Some(removals) => removals,
                None => {
                    let removals = removals_of(store, zone, endpoints, policy, version)?;
                    self.lock()
                        .insert((key.clone(), version.generation), removals.clone());
                    removals
                }
            };
            recent.extend(removals);
        }
        // Forget what can no longer count: the window only moves forward.
        self.lock().retain(|(cached_zone, _), removals| {
            *cached_zone != key || removals.iter().any(|r| r.at_ms > window_start)
        });
        Ok(recent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Generation), Vec<Removal>>> {
        // Every entry is complete when inserted; a panic elsewhere leaves the map usable.
        self.computed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn removals_of(
    store: &dyn Store,
    zone: &Name,
    endpoints: &[EndpointConfig],
    policy: &GuardPolicy,
    version: &model::Version,
) -> Result<Vec<Removal>, StoreError> {
    let Some(parent) = version.parent else {
        return Ok(Vec::new());
    };
    // The recorded changes hold every set of every changed name on both sides: their diff
    // is the version's diff, at the cost of the change.
    // A parent cleaned up since is handled below, as before.
    if let Ok(Some(changes)) = store.content_changes(zone, parent, version.generation) {
        let before = ZoneContent::from_normalized_sets(zone.clone(), changes.removed);
        let after = ZoneContent::from_normalized_sets(zone.clone(), changes.added);
        return Ok(ZoneDiff::between(&before, &after).removals(version.created_at_ms));
    }
    let parent_content = match store.content(zone, parent) {
        Ok(content) => content,
        Err(StoreError::NotFound { .. }) => {
            // Unknown: assume the worst for every protected name.
            return Ok(endpoints
                .iter()
                .filter(|endpoint| zone.zone_of(&endpoint.name))
                .map(|endpoint| Removal {
                    name: endpoint.name.clone(),
                    records: policy.max_removals_per_window,
                    at_ms: version.created_at_ms,
                })
                .collect());
        }
        Err(error) => return Err(error),
    };
    let content = store.content(zone, version.generation)?;
    Ok(ZoneDiff::between(&parent_content, &content).removals(version.created_at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{EndpointConfig, RefName};
    use store::contract::fixtures;
    use store::SqliteStore;

    /// Found by `bench/control-plane`: once clean-up had deleted the parent of a version in
    /// the velocity window, every control round failed and no change reached the wire; and
    /// once it failed no longer, the worst case assumed for such versions held back every
    /// removal while versions came faster than clean-up kept them. A version's own
    /// recorded changes outlive its parent.
    #[test]
    fn recent_removals_come_from_recorded_changes_after_the_parent_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        let origin = "ledger.test.";
        let mut zone = fixtures::content(origin, 1, 50, 0);
        let mut base = store
            .commit(fixtures::commit(&zone, None, RefName::Active))
            .unwrap();
        for host in 0..12 {
            let base_content = store.content(zone.origin(), base.generation).unwrap();
            zone = base_content.clone();
            zone.put_rrset(fixtures::host_set(origin, host, 9));
            base = store
                .commit_from(
                    fixtures::commit(&zone, Some(base.generation), RefName::Active),
                    &base_content,
                )
                .unwrap();
        }
        let deleted = store.clean_up(zone.origin(), 2, "test", 1_000).unwrap();
        assert!(!deleted.is_empty());
        let endpoint = EndpointConfig::new(fixtures::name(&format!("host0.{origin}")), vec![]);
        let policy = GuardPolicy::default();
        let recent = RemovalLedger::new()
            .recent(&store, zone.origin(), &[endpoint], &policy, 1_000)
            .expect("a cleaned-up parent is no error");
        assert!(!recent.is_empty());
        assert!(
            recent.iter().all(|removal| removal.records == 1),
            "each version replaced one address: {recent:?}"
        );
    }
}
