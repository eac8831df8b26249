//! The canary listener's catalog: each zone's canary version while one is pending, else its
//! active version. A second server instance serves it on its own address, so a new version
//! is asked over the wire before anyone depends on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::{Generation, Name};
use server::{Catalog, ZoneSnapshot};
use store::{watch_changes, zone_key, Store, WatchHandle};

/// Keeps the canary follower running; dropping it stops it.
pub struct CanaryFollower {
    _watch: WatchHandle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CanaryFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The generation the canary listener should serve per zone: the canary if set, else active.
pub fn canary_targets(zones: &[(Name, model::Refs)]) -> BTreeMap<String, (Name, Generation)> {
    zones
        .iter()
        .filter_map(|(name, refs)| {
            Some((zone_key(name), (name.clone(), refs.canary.or(refs.active)?)))
        })
        .collect()
}

/// Loads every zone's canary (or active) version into `catalog` now, then follows changes.
pub async fn follow_canary(store: Arc<dyn Store>, catalog: Arc<Catalog>) -> CanaryFollower {
    let (mut changes, watch) = watch_changes(Arc::clone(&store), store::default_poll_interval());
    sync(Arc::clone(&store), Arc::clone(&catalog)).await;
    let task = tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            sync(Arc::clone(&store), Arc::clone(&catalog)).await;
        }
    });
    CanaryFollower {
        _watch: watch,
        task,
    }
}

async fn sync(store: Arc<dyn Store>, catalog: Arc<Catalog>) {
    let done = tokio::task::spawn_blocking(move || sync_blocking(store.as_ref(), &catalog)).await;
    if let Err(error) = done {
        tracing::error!(%error, "canary follower task failed");
    }
}

fn sync_blocking(store: &dyn Store, catalog: &Catalog) {
    let zones = match store.zones() {
        Ok(zones) => zones,
        Err(error) => {
            tracing::error!(%error, "canary follower cannot list zones");
            return;
        }
    };
    let served: BTreeMap<String, Generation> = catalog
        .zones()
        .into_iter()
        .map(|(name, generation)| (zone_key(&name), generation))
        .collect();
    for (key, (zone, generation)) in canary_targets(&zones) {
        if served.get(&key) == Some(&generation) {
            continue;
        }
        match store.content(&zone, generation) {
            Ok(content) => {
                catalog.replace_zone(Arc::new(ZoneSnapshot::build(&content, generation)));
                tracing::info!(%zone, %generation, "canary listener now serving");
            }
            Err(error) => {
                tracing::error!(%zone, %generation, %error, "canary listener cannot load the version");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Refs;

    #[test]
    fn the_canary_wins_over_active_and_active_fills_in() {
        let a = Name::from_ascii("a.test.").unwrap();
        let b = Name::from_ascii("b.test.").unwrap();
        let c = Name::from_ascii("c.test.").unwrap();
        let targets = canary_targets(&[
            (
                a,
                Refs {
                    active: Some(Generation(3)),
                    canary: Some(Generation(4)),
                },
            ),
            (
                b,
                Refs {
                    active: Some(Generation(7)),
                    canary: None,
                },
            ),
            (c, Refs::default()),
        ]);
        let generations: Vec<Generation> = targets.values().map(|(_, g)| *g).collect();
        assert_eq!(generations, vec![Generation(4), Generation(7)]);
    }
}
