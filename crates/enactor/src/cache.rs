//! The newest content of each zone this node knows, kept in memory so that a round of the
//! control loop reads the active content at the cost of what changed since the last round,
//! not of the zone (safety contract 12).
//!
//! An entry is the content of one generation, checked against that version's stored hash
//! (which costs nothing: the hash is kept up to date by every change). It comes from what an
//! enactor committed, from the store's recorded changes applied to an older entry, or, when
//! neither is possible (start, a rollback, a full replace), from a whole load.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use model::{Generation, Name, Version, ZoneContent};
use store::{zone_key, Store, StoreError};

/// One content per zone: the newest generation seen.
#[derive(Debug, Default)]
pub struct ContentCache {
    zones: Mutex<HashMap<String, (Generation, ZoneContent)>>,
    /// Per zone, the content an enactor is committing now (its SOA serial not yet set):
    /// a reader that sees the new version before the enactor remembers it (the store
    /// follower, woken by the commit) takes it from here instead of a whole load.
    committing: Mutex<HashMap<String, ZoneContent>>,
}

impl ContentCache {
    pub fn new() -> ContentCache {
        ContentCache::default()
    }

    /// Remembers `content` as the content of `version` when it hashes to the version's
    /// content hash, and the cache holds nothing newer for the zone.
    pub fn remember(&self, version: &Version, content: ZoneContent) {
        if content.hash() != version.content_hash {
            tracing::debug!(zone = %version.zone, generation = %version.generation,
                "content to remember does not hash to its version's hash; not kept");
            return;
        }
        let mut zones = self.lock();
        let key = zone_key(&version.zone);
        if zones
            .get(&key)
            .is_some_and(|(held, _)| *held > version.generation)
        {
            return;
        }
        zones.insert(key, (version.generation, content));
    }

    /// Notes that `content` is being committed to `zone` now (see the `committing` field).
    pub fn committing(&self, zone: &Name, content: &ZoneContent) {
        self.lock_committing()
            .insert(zone_key(zone), content.clone());
    }

    /// The content being committed, if it is `version`'s once the store has set its serial.
    fn committed(&self, version: &Version) -> Option<ZoneContent> {
        let committing = self
            .lock_committing()
            .get(&zone_key(&version.zone))
            .cloned()?;
        let content = committing.with_serial(version.serial);
        (content.hash() == version.content_hash).then_some(content)
    }

    fn lock_committing(&self) -> std::sync::MutexGuard<'_, HashMap<String, ZoneContent>> {
        self.committing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the cached content of `generation` with `content` when both hash the same
    /// (equal content): a copy that shares structure with what plans are made from.
    pub fn replace_equal(&self, zone: &Name, generation: Generation, content: ZoneContent) {
        let mut zones = self.lock();
        if let Some((held_generation, held)) = zones.get_mut(&zone_key(zone)) {
            if *held_generation == generation && held.hash() == content.hash() {
                *held = content;
            }
        }
    }

    /// The content of `generation`: the cached one, the cached one patched by the store's
    /// recorded changes, or a whole load.
    pub fn content(
        &self,
        store: &dyn Store,
        zone: &Name,
        generation: Generation,
    ) -> Result<ZoneContent, StoreError> {
        let held = self.lock().get(&zone_key(zone)).cloned();
        if let Some((held_generation, held_content)) = held {
            if held_generation == generation {
                return Ok(held_content);
            }
            if held_generation < generation {
                if let Some(patched) = patch(store, zone, held_generation, held_content, generation)
                {
                    return Ok(patched);
                }
            }
        }
        let version = store.version(zone, generation)?;
        if let Some(content) = self.committed(&version) {
            self.remember(&version, content.clone());
            return Ok(content);
        }
        let content = store.content(zone, generation)?;
        self.remember(&version, content.clone());
        Ok(content)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Generation, ZoneContent)>> {
        // Every entry is whole when inserted; a panic elsewhere leaves the map usable.
        self.zones.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `held` (the content of `from`) with the recorded changes up to `to` applied, when the
/// store has them and the result hashes to `to`'s hash; `None` otherwise.
fn patch(
    store: &dyn Store,
    zone: &Name,
    from: Generation,
    mut held: ZoneContent,
    to: Generation,
) -> Option<ZoneContent> {
    // `from` may have been cleaned up since: then the whole load is the way.
    let Ok(Some(changes)) = store.content_changes(zone, from, to) else {
        return None;
    };
    // A name on either side has, in `to`, exactly its sets on the added side.
    held.replace_sets(&changes.removed, changes.added);
    (held.hash() == changes.version.content_hash).then_some(held)
}
