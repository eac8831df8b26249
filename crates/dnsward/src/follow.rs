//! Follows the store: whenever a zone's active ref moves, load that version, build its
//! snapshot off the serving path and swap it into the catalog. A version that cannot be
//! loaded leaves the previous snapshot serving (the last good state keeps serving).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use model::{Generation, Name};
use server::{Catalog, ZoneSnapshot};
use store::{watch_changes, Store, WatchHandle};

use crate::CliError;

/// Keeps the follower running; dropping it stops it.
pub struct Follower {
    _watch: WatchHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which zones must be (re)loaded: those whose active generation differs from the served
/// one. Pure, so it is tested without a store.
pub fn zones_to_load(
    active: &BTreeMap<String, (Name, Generation)>,
    served: &BTreeMap<String, Generation>,
) -> Vec<(Name, Generation)> {
    active
        .iter()
        .filter(|(key, (_, generation))| served.get(*key) != Some(generation))
        .map(|(_, (name, generation))| (name.clone(), *generation))
        .collect()
}

/// Per zone, the newest snapshot whose answers were all encoded: the next version copies
/// the answers that cannot have changed from it instead of encoding them again.
type Encoded = Arc<Mutex<BTreeMap<String, Arc<ZoneSnapshot>>>>;

/// Loads every zone's active version now, then follows changes in the background.
pub async fn start(store: Arc<dyn Store>, catalog: Arc<Catalog>) -> Result<Follower, CliError> {
    let (mut changes, watch) = watch_changes(store.clone(), store::default_poll_interval());
    let encoded = Encoded::default();
    sync(store.clone(), catalog.clone(), encoded.clone()).await?;
    let task = tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            if let Err(error) = sync(store.clone(), catalog.clone(), encoded.clone()).await {
                tracing::error!(%error, "could not follow the store; the last loaded versions keep serving");
            }
        }
    });
    Ok(Follower {
        _watch: watch,
        task,
    })
}

async fn sync(
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    encoded: Encoded,
) -> Result<(), CliError> {
    tokio::task::spawn_blocking(move || sync_blocking(store.as_ref(), &catalog, &encoded))
        .await
        .map_err(|error| CliError::Usage {
            message: format!("store follower task failed: {error}"),
        })?
}

fn sync_blocking(store: &dyn Store, catalog: &Catalog, encoded: &Encoded) -> Result<(), CliError> {
    let active: BTreeMap<String, (Name, Generation)> = store
        .zones()?
        .into_iter()
        .filter_map(|(name, refs)| Some((store::zone_key(&name), (name, refs.active?))))
        .collect();
    let served: BTreeMap<String, Generation> = catalog
        .zones()
        .into_iter()
        .map(|(name, generation)| (store::zone_key(&name), generation))
        .collect();
    for (zone, generation) in zones_to_load(&active, &served) {
        let started = std::time::Instant::now();
        match store.content(&zone, generation) {
            Ok(content) => {
                let loaded = started.elapsed();
                // Serve the new version as soon as it can be looked up (library path),
                // then again with its answers pre-encoded for the hot path.
                let snapshot = Arc::new(ZoneSnapshot::build_lookup(&content, generation));
                let built = started.elapsed() - loaded;
                drop(content);
                catalog.replace_zone(Arc::clone(&snapshot));
                tracing::info!(
                    %zone,
                    %generation,
                    serial = snapshot.serial(),
                    load_ms = loaded.as_secs_f64() * 1e3,
                    build_ms = built.as_secs_f64() * 1e3,
                    "now serving"
                );
                // Given up when the zone's active ref moves meanwhile: the newer version
                // is loaded next, by the sync its ref move triggers.
                let encoding = std::time::Instant::now();
                let superseded = || {
                    store
                        .refs(&zone)
                        .is_ok_and(|refs| refs.active != Some(generation))
                };
                let key = store::zone_key(&zone);
                let previous = lock(encoded).get(&key).cloned();
                let Some(ready) = snapshot.with_answers_reusing(previous.as_deref(), &superseded)
                else {
                    tracing::info!(%zone, %generation, "a newer version is waiting; answers not pre-encoded");
                    continue;
                };
                let still_current = catalog
                    .find(&zone)
                    .is_some_and(|served| served.generation() == generation);
                let ready = Arc::new(ready);
                lock(encoded).insert(key, Arc::clone(&ready));
                drop(previous);
                if still_current {
                    catalog.replace_zone(ready);
                }
                // The content, the replaced snapshots and the encoder's scratch are freed.
                server::release_free_memory();
                tracing::info!(
                    %zone,
                    %generation,
                    encode_ms = encoding.elapsed().as_secs_f64() * 1e3,
                    "answers pre-encoded"
                );
            }
            Err(error) => {
                tracing::error!(%zone, %generation, %error, "cannot load the active version; the previous one keeps serving");
            }
        }
    }
    Ok(())
}

fn lock(encoded: &Encoded) -> MutexGuard<'_, BTreeMap<String, Arc<ZoneSnapshot>>> {
    // A panic while holding the lock leaves the map as it was: still usable.
    encoded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("test names are valid")
    }

    #[test]
    fn only_zones_whose_active_generation_moved_are_loaded() {
        let active = BTreeMap::from([
            ("a.test.".to_string(), (name("a.test."), Generation(3))),
            ("b.test.".to_string(), (name("b.test."), Generation(5))),
            ("c.test.".to_string(), (name("c.test."), Generation(1))),
        ]);
        let served = BTreeMap::from([
            ("a.test.".to_string(), Generation(3)),
            ("b.test.".to_string(), Generation(4)),
        ]);
        let load = zones_to_load(&active, &served);
        assert_eq!(
            load,
            vec![
                (name("b.test."), Generation(5)),
                (name("c.test."), Generation(1))
            ]
        );
    }
}
