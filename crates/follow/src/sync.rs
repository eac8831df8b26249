//! One pass of following the store ([`sync`]) and what it is made of.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::{Generation, Name, ZoneContent};
use server::{Catalog, ZoneSnapshot};
use store::{Store, StoreError};

use crate::encoder::Encoder;
use crate::{targets, zones_to_load, Target};

/// A zone that serves carried answers and got no new version for this long is encoded
/// whole: the hot path is a little cheaper without stale names to check.
pub(crate) const QUIET_BEFORE_ENCODING: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks for a whole encoding of every served version that carries answers.
pub(crate) fn encode_carried(catalog: &Catalog, encoder: &Encoder) {
    for (zone, _) in catalog.zones() {
        let Some(served) = catalog
            .find(&zone)
            .filter(|served| *served.origin() == zone)
        else {
            continue;
        };
        if served.stale_names().is_some() {
            encoder.request(&served);
        }
    }
}

/// Reads the whole content of a version, e.g. from a node's cache of committed content
/// (shared with its control plane, not read and decoded a second time).
pub type ReadContent =
    Arc<dyn Fn(&dyn Store, &Name, Generation) -> Result<ZoneContent, StoreError> + Send + Sync>;

/// Where versions come from: the store, a reader of whole content if any, and the
/// configuration's zone files.
#[derive(Clone)]
pub struct Sources {
    pub store: Arc<dyn Store>,
    /// `None` reads every whole version from the store.
    pub contents: Option<ReadContent>,
    /// Zone files by zone key ([`store::zone_key`]): the last resort of `fall_back`.
    pub zone_files: Arc<BTreeMap<String, std::path::PathBuf>>,
}

impl Sources {
    /// Sources reading from `store` alone.
    pub fn store(store: Arc<dyn Store>) -> Sources {
        Sources {
            store,
            contents: None,
            zone_files: Arc::default(),
        }
    }

    /// The whole content of a version.
    fn content(&self, zone: &Name, generation: Generation) -> Result<ZoneContent, StoreError> {
        match &self.contents {
            Some(read) => read(self.store.as_ref(), zone, generation),
            None => self.store.content(zone, generation),
        }
    }
}

/// One pass of following: brings finished encodings forward, then loads every zone whose
/// `target` ref moved since the catalog's version (a patch of the served version when the
/// store recorded what changed, else whole), serves it at once, and carries the served
/// version's pre-encoded answers over to it when it can; asks `encoder` for a whole
/// encoding when it cannot. A version that cannot be read leaves the served one serving
/// (or, when nothing is served yet, `fall_back`). This is the one loop from a store's
/// refs to served snapshots: the node's follower, the canary listener and the simulation
/// all run it.
pub fn sync(
    sources: &Sources,
    catalog: &Catalog,
    encoder: &Encoder,
    target: Target,
) -> Result<(), StoreError> {
    let store = sources.store.as_ref();
    for ready in encoder.take_done() {
        bring_forward(store, catalog, encoder, &ready);
    }
    let active = targets(&store.zones()?, target);
    let served: BTreeMap<String, Generation> = catalog
        .zones()
        .into_iter()
        .map(|(name, generation)| (store::zone_key(&name), generation))
        .collect();
    for (zone, generation) in zones_to_load(&active, &served) {
        let started = std::time::Instant::now();
        let loaded = match load(sources, catalog, encoder, &zone, generation) {
            Ok(loaded) => loaded,
            Err(error) if catalog.find(&zone).is_some_and(|s| s.origin() == &zone) => {
                tracing::error!(%zone, %generation, %error, "cannot load the active version; the previous one keeps serving");
                continue;
            }
            Err(error) => {
                fall_back(sources, catalog, &zone, generation, &error);
                continue;
            }
        };
        let mut snapshot = Arc::new(loaded.snapshot);
        // Serve the new version as soon as it can be looked up (library path), then again
        // with pre-encoded answers for the hot path.
        catalog.replace_zone(Arc::clone(&snapshot));
        tracing::info!(
            %zone,
            %generation,
            serial = snapshot.serial(),
            how = loaded.how,
            changed_sets = loaded.changed_sets,
            read_ms = loaded.read.as_secs_f64() * 1e3,
            build_ms = (started.elapsed() - loaded.read).as_secs_f64() * 1e3,
            ?target,
            "now serving"
        );
        // Patches are merged here, after the new version is on the wire, so that the next
        // patch stays small.
        if let Some(compacted) = snapshot.compacted() {
            snapshot = Arc::new(compacted);
            serve_if_current(catalog, Arc::clone(&snapshot));
        }
        let carrying = std::time::Instant::now();
        if let Some(carried) = loaded
            .from
            .as_ref()
            .and_then(|from| snapshot.carry_answers(from))
        {
            tracing::info!(
                %zone,
                %generation,
                stale_names = carried.stale_names().unwrap_or_default(),
                carry_ms = carrying.elapsed().as_secs_f64() * 1e3,
                "answers carried"
            );
            snapshot = Arc::new(carried);
            serve_if_current(catalog, Arc::clone(&snapshot));
        }
        if snapshot.wants_encoding() {
            encoder.request(&snapshot);
        }
    }
    Ok(())
}

/// Versions looked at, newest first, for one that verifies when the active one does not.
const FALLBACK_VERSIONS: usize = 64;

/// Nothing of `zone` is served and its active version cannot be read (it fails its hash,
/// or its content is missing): serve the newest older version that verifies, or else the
/// configuration's zone file, and say so loudly. A version that fails its check is never
/// served; the operator rolls back to a verified one in-band.
fn fall_back(
    sources: &Sources,
    catalog: &Catalog,
    zone: &Name,
    active: Generation,
    error: &store::StoreError,
) {
    let history = sources
        .store
        .history(zone, FALLBACK_VERSIONS)
        .unwrap_or_default();
    for version in history.iter().filter(|v| v.generation < active) {
        let Ok(content) = sources.content(zone, version.generation) else {
            continue;
        };
        tracing::error!(
            %zone,
            %active,
            serving = %version.generation,
            serial = version.serial,
            %error,
            "THE ACTIVE VERSION CANNOT BE READ: serving the newest version that verifies instead. \
             Roll back to it in-band (`dnsward rollback {zone} --to {} --reason ...`), then run \
             `dnsward store check` and `dnsward store repair`",
            version.generation
        );
        catalog.replace_zone(Arc::new(ZoneSnapshot::build_lookup(
            &content,
            version.generation,
        )));
        return;
    }
    let file = sources.zone_files.get(&store::zone_key(zone));
    match file.map(|file| (file, zonefile::read_file(file, Some(zone)))) {
        Some((file, Ok(content))) => {
            tracing::error!(
                %zone,
                %active,
                file = %file.display(),
                %error,
                "NO STORED VERSION OF THE ZONE VERIFIES: serving the configuration's zone file \
                 (without endpoint records) until a verified version is active; restore the \
                 store from a backup or `dnsward store repair` it, or `dnsward apply` a version"
            );
            catalog.replace_zone(Arc::new(ZoneSnapshot::build_lookup(
                &content,
                Generation(0),
            )));
        }
        Some((file, Err(file_error))) => tracing::error!(
            %zone, %active, %error, file = %file.display(), %file_error,
            "NO STORED VERSION OF THE ZONE VERIFIES and its zone file cannot be read: the zone is not served"
        ),
        None => tracing::error!(
            %zone, %active, %error,
            "NO STORED VERSION OF THE ZONE VERIFIES and it has no zone file: the zone is not served"
        ),
    }
}

/// Serves an encoded version, or brings it forward to the newer version served meanwhile:
/// that version as a patch of the encoded one, carrying its answers. When that is not
/// possible the served version is encoded next.
pub(crate) fn bring_forward(
    store: &dyn Store,
    catalog: &Catalog,
    encoder: &Encoder,
    ready: &Arc<ZoneSnapshot>,
) {
    let zone = ready.origin();
    let Some(served) = catalog.find(zone).filter(|served| served.origin() == zone) else {
        return;
    };
    let (from, to) = (ready.generation(), served.generation());
    if from == to {
        serve_if_current(catalog, Arc::clone(ready));
        return;
    }
    let started = std::time::Instant::now();
    let forward = match store.content_changes(zone, from, to) {
        Ok(Some(changes))
            if ready.cheaper_to_patch(changes.removed.len() + changes.added.len()) =>
        {
            ready
                .patched(&changes.removed, &changes.added, to)
                .carry_answers(ready)
        }
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%zone, %error, "cannot read the changes since the encoded version");
            None
        }
    };
    match forward {
        Some(forward) => {
            tracing::info!(
                %zone,
                encoded = %from,
                generation = %to,
                stale_names = forward.stale_names().unwrap_or_default(),
                carry_ms = started.elapsed().as_secs_f64() * 1e3,
                "encoded answers brought forward"
            );
            serve_if_current(catalog, Arc::new(forward));
        }
        None => encoder.request(&served),
    }
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
/// a whole build, else built from the whole content (after giving up any encoding of the
/// zone in progress: no patch could bring it forward, and it would slow the load down).
fn load(
    sources: &Sources,
    catalog: &Catalog,
    encoder: &Encoder,
    zone: &Name,
    generation: Generation,
) -> Result<Loaded, store::StoreError> {
    let store = sources.store.as_ref();
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
    encoder.cancel(zone);
    let content = sources.content(zone, generation)?;
    let read = started.elapsed();
    Ok(Loaded {
        snapshot: ZoneSnapshot::build_lookup(&content, generation),
        how: "whole",
        changed_sets: content.rrset_count(),
        read,
        from: None,
    })
}
