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
        let loaded = match load(store, catalog, &zone, generation) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%zone, %generation, %error, "cannot load the active version; the previous one keeps serving");
                continue;
            }
        };
        let mut snapshot = Arc::new(loaded.snapshot);
        // Serve the new version as soon as it can be looked up (library path), then again
        // with its answers pre-encoded for the hot path.
        catalog.replace_zone(Arc::clone(&snapshot));
        tracing::info!(
            %zone,
            %generation,
            serial = snapshot.serial(),
            how = loaded.how,
            changed_sets = loaded.changed_sets,
            read_ms = loaded.read.as_secs_f64() * 1e3,
            build_ms = (started.elapsed() - loaded.read).as_secs_f64() * 1e3,
            "now serving"
        );
        // A long run of patches is merged into one base here, after the new version is
        // on the wire, so that the next patch stays small.
        if let Some(compacted) = snapshot.compacted() {
            snapshot = Arc::new(compacted);
            serve_if_current(catalog, Arc::clone(&snapshot));
        }
        let encoding = std::time::Instant::now();
        // A patch keeps the hot path: the answers of the version it was patched from are
        // carried, with those its changes made stale encoded anew.
        if let Some(carried) = loaded
            .from
            .as_ref()
            .and_then(|from| snapshot.carry_answers(from))
        {
            let stale = carried.stale_names().unwrap_or_default();
            serve_if_current(catalog, Arc::new(carried));
            tracing::info!(
                %zone,
                %generation,
                stale_names = stale,
                carry_ms = encoding.elapsed().as_secs_f64() * 1e3,
                "answers carried"
            );
            continue;
        }
        drop(loaded.from);
        // Given up when the zone's active ref moves meanwhile: the newer version is loaded
        // next, by the sync its ref move triggers.
        let superseded = || {
            store
                .refs(&zone)
                .is_ok_and(|refs| refs.active != Some(generation))
        };
        let key = store::zone_key(&zone);
        let previous = lock(encoded).get(&key).cloned();
        let Some(ready) = snapshot.with_answers_reusing(previous.as_deref(), &superseded) else {
            tracing::info!(%zone, %generation, "a newer version is waiting; answers not pre-encoded");
            continue;
        };
        let ready = Arc::new(ready);
        lock(encoded).insert(key, Arc::clone(&ready));
        drop(previous);
        drop(snapshot);
        serve_if_current(catalog, ready);
        // The content, the replaced snapshots and the encoder's scratch are freed.
        server::release_free_memory();
        tracing::info!(
            %zone,
            %generation,
            encode_ms = encoding.elapsed().as_secs_f64() * 1e3,
            "answers pre-encoded"
        );
    }
    Ok(())
}

/// Serves `snapshot` in place of the same version of its zone: the same answers, obtained
/// faster. Nothing happens when the catalog serves another version meanwhile.
fn serve_if_current(catalog: &Catalog, snapshot: Arc<ZoneSnapshot>) {
    let current = catalog.find(snapshot.origin()).is_some_and(|served| {
        served.origin() == snapshot.origin() && served.generation() == snapshot.generation()
    });
    if current {
        catalog.replace_zone(snapshot);
    }
}

/// A version ready for lookup, and how it was obtained.
struct Loaded {
    snapshot: ZoneSnapshot,
    /// `"patch"` (the served version plus the recorded changes) or `"whole"`.
    how: &'static str,
    changed_sets: usize,
    read: std::time::Duration,
    /// For a patch: the version it was patched from.
    from: Option<Arc<ZoneSnapshot>>,
}

/// The version `generation` of `zone`: a patch of the served version when the store can
/// say cheaply what changed since ([`Store::content_changes`]) and that is less work than
/// a whole build, else built from the whole content.
fn load(
    store: &dyn Store,
    catalog: &Catalog,
    zone: &Name,
    generation: Generation,
) -> Result<Loaded, store::StoreError> {
    let started = std::time::Instant::now();
    let served = catalog.find(zone).filter(|served| served.origin() == zone);
    if let Some(served) = served {
        match store.content_changes(zone, served.generation(), generation) {
            Ok(Some(changes))
                if served.cheaper_to_patch(changes.removed.len() + changes.added.len()) =>
            {
                let read = started.elapsed();
                return Ok(Loaded {
                    snapshot: served.patched(&changes.removed, &changes.added, generation),
                    how: "patch",
                    changed_sets: changes.removed.len() + changes.added.len(),
                    read,
                    from: Some(Arc::clone(&served)),
                });
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%zone, %generation, %error, "cannot read the changes since the served version; loading the whole version");
            }
        }
    }
    let content = store.content(zone, generation)?;
    let read = started.elapsed();
    Ok(Loaded {
        snapshot: ZoneSnapshot::build_lookup(&content, generation),
        how: "whole",
        changed_sets: content.rrset_count(),
        read,
        from: None,
    })
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
