//! Follows the store: whenever a zone's active ref moves, load that version, build its
//! snapshot off the serving path and swap it into the catalog. A version that cannot be
//! loaded leaves the previous snapshot serving (the last good state keeps serving).
//!
//! Two threads do the work. The follower loads each new version (as a patch of the served
//! one when the store recorded what changed, else whole), serves it at once, and carries
//! the served version's pre-encoded answers over to it when it can. The encoder encodes a
//! whole version's answers when carrying is not possible or its stale names grow many; it
//! never gives up on a version, and the follower brings its result forward to whatever
//! version it serves by then (a patch and a carry again), so the hot path survives a
//! stream of versions that arrive faster than a whole encoding takes.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use enactor::ContentCache;
use model::{Generation, Name};
use server::{Catalog, ZoneSnapshot};
use store::{watch_changes, Store, WatchHandle};

use crate::CliError;

/// Keeps the follower running; dropping it stops it.
pub struct Follower {
    _watch: WatchHandle,
    task: tokio::task::JoinHandle<()>,
    encoder: Arc<Encoder>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
        // The encoder's thread ends after the encoding in hand, if any; not waited for.
        self.encoder.stop();
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

/// A zone that serves carried answers and got no new version for this long is encoded
/// whole: the hot path is a little cheaper without stale names to check.
const QUIET_BEFORE_ENCODING: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks for a whole encoding of every served version that carries answers.
fn encode_carried(catalog: &Catalog, encoder: &Encoder) {
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

/// Whole encodings, off the follower's thread. See the module documentation.
#[derive(Default)]
struct Encoder {
    state: Mutex<EncoderState>,
    wake: Condvar,
    /// Tells the follower that an encoding finished.
    finished: tokio::sync::Notify,
}

#[derive(Default)]
struct EncoderState {
    /// Per zone key, the newest version waiting to be encoded.
    waiting: BTreeMap<String, Arc<ZoneSnapshot>>,
    /// The zone being encoded now.
    busy: Option<String>,
    /// Per zone key, the newest encoded version the follower has not taken yet.
    done: BTreeMap<String, Arc<ZoneSnapshot>>,
    /// Per zone key, the newest encoded version: the next encoding copies the answers that
    /// cannot have changed from it.
    encoded: BTreeMap<String, Arc<ZoneSnapshot>>,
    /// The zone being encoded got a version that is no patch of it: give up.
    cancelled: bool,
    stopped: bool,
}

impl Encoder {
    fn lock(&self) -> MutexGuard<'_, EncoderState> {
        // A panic while holding the lock leaves the state as it was: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks for `snapshot`'s answers to be encoded, unless its zone's answers are being
    /// encoded or waiting to be already: that result is brought forward to `snapshot`.
    fn request(&self, snapshot: &Arc<ZoneSnapshot>) {
        if self.pending(snapshot.origin()) {
            return;
        }
        let key = store::zone_key(snapshot.origin());
        self.lock().waiting.insert(key, Arc::clone(snapshot));
        self.wake.notify_one();
    }

    /// Gives up encoding `zone`'s answers: a version that no patch could bring the
    /// result forward to is served now (a whole load).
    fn cancel(&self, zone: &Name) {
        let key = store::zone_key(zone);
        let mut state = self.lock();
        state.waiting.remove(&key);
        if state.busy.as_ref() == Some(&key) {
            state.cancelled = true;
        }
    }

    /// Whether `zone`'s answers are being encoded or waiting to be.
    fn pending(&self, zone: &Name) -> bool {
        let key = store::zone_key(zone);
        let state = self.lock();
        state.busy.as_ref() == Some(&key) || state.waiting.contains_key(&key)
    }

    /// The encodings finished since the last call.
    fn take_done(&self) -> Vec<Arc<ZoneSnapshot>> {
        std::mem::take(&mut self.lock().done)
            .into_values()
            .collect()
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_all();
    }

    /// The encoder thread's loop: one waiting version at a time, until stopped.
    fn run(&self) {
        loop {
            let (key, snapshot, previous) = {
                let mut state = self.lock();
                while state.waiting.is_empty() && !state.stopped {
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if state.stopped {
                    return;
                }
                let Some((key, snapshot)) = state.waiting.pop_first() else {
                    continue;
                };
                state.busy = Some(key.clone());
                state.cancelled = false;
                let previous = state.encoded.get(&key).cloned();
                (key, snapshot, previous)
            };
            let started = std::time::Instant::now();
            let ready = snapshot
                .with_answers_reusing(
                    previous.as_deref(),
                    &|| self.lock().cancelled,
                    // The servers this follower feeds follow chains up to the default.
                    server::default_cname_chain_length(),
                )
                .map(Arc::new);
            if let Some(ready) = &ready {
                ready.prepare_carrying();
            }
            drop((snapshot, previous));
            let mut state = self.lock();
            state.busy = None;
            if let Some(ready) = ready {
                tracing::info!(
                    zone = %ready.origin(),
                    generation = %ready.generation(),
                    encode_ms = started.elapsed().as_secs_f64() * 1e3,
                    "answers pre-encoded"
                );
                state.encoded.insert(key.clone(), Arc::clone(&ready));
                state.done.insert(key, ready);
            } else {
                tracing::info!(zone = %key, "encoding given up: a whole new version is served");
            }
            drop(state);
            // The replaced snapshots and the encoder's scratch are freed.
            server::release_free_memory();
            self.finished.notify_one();
        }
    }
}

/// Loads every zone's active version now, then follows changes in the background.
///
/// `contents`: the node's own cache of committed content (`dnsward run`), which a whole
/// load takes its content from when it holds the version (shared with the control plane,
/// not read and decoded a second time); `None` reads every whole version from the store.
///
/// `zone_files`: the configuration's zone files, served (with a loud error) for a zone none
/// of whose stored versions verifies, when nothing of it is served yet.
pub async fn start(
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    contents: Option<Arc<ContentCache>>,
    zone_files: Vec<(Name, std::path::PathBuf)>,
) -> Result<Follower, CliError> {
    let (mut changes, watch) = watch_changes(store.clone(), store::default_poll_interval());
    let encoder = Arc::new(Encoder::default());
    let thread = Arc::clone(&encoder);
    std::thread::Builder::new()
        .name("dnsward-encoder".into())
        .spawn(move || thread.run())
        .map_err(|error| CliError::Usage {
            message: format!("cannot start the answer encoder thread: {error}"),
        })?;
    let sources = Sources {
        store: store.clone(),
        contents,
        zone_files: Arc::new(
            zone_files
                .into_iter()
                .map(|(zone, file)| (store::zone_key(&zone), file))
                .collect(),
        ),
    };
    sync(sources.clone(), catalog.clone(), encoder.clone()).await?;
    let follower = Arc::clone(&encoder);
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::time::timeout(QUIET_BEFORE_ENCODING, async {
                tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    () = follower.finished.notified() => true,
                }
            })
            .await;
            match event {
                Ok(false) => break,
                Ok(true) => {
                    if let Err(error) =
                        sync(sources.clone(), catalog.clone(), follower.clone()).await
                    {
                        tracing::error!(%error, "could not follow the store; the last loaded versions keep serving");
                    }
                }
                Err(_quiet) => encode_carried(&catalog, &follower),
            }
        }
        // The store watcher is gone: nothing would bring new versions to the wire again.
        crate::supervise::task_ended("store follower");
    });
    Ok(Follower {
        _watch: watch,
        task,
        encoder,
    })
}

/// Where versions come from: the store, and the node's cache of committed content if any.
#[derive(Clone)]
struct Sources {
    store: Arc<dyn Store>,
    contents: Option<Arc<ContentCache>>,
    /// Zone files by zone key: the last resort of [`fall_back`].
    zone_files: Arc<BTreeMap<String, std::path::PathBuf>>,
}

impl Sources {
    /// The whole content of a version.
    fn content(
        &self,
        zone: &Name,
        generation: Generation,
    ) -> Result<model::ZoneContent, store::StoreError> {
        match &self.contents {
            Some(cache) => cache.content(self.store.as_ref(), zone, generation),
            None => self.store.content(zone, generation),
        }
    }
}

async fn sync(
    sources: Sources,
    catalog: Arc<Catalog>,
    encoder: Arc<Encoder>,
) -> Result<(), CliError> {
    tokio::task::spawn_blocking(move || sync_blocking(&sources, &catalog, &encoder))
        .await
        .map_err(|error| CliError::Usage {
            message: format!("store follower task failed: {error}"),
        })?
}

fn sync_blocking(sources: &Sources, catalog: &Catalog, encoder: &Encoder) -> Result<(), CliError> {
    let store = sources.store.as_ref();
    for ready in encoder.take_done() {
        bring_forward(store, catalog, encoder, &ready);
    }
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
fn bring_forward(
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

    /// A query for `qname` A, the second octet of the answer's address (the fixtures'
    /// variant; `None` without one).
    fn address(catalog: &Catalog, qname: &str) -> Option<u8> {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(name(qname), model::RecordType::A));
        let packet = query.to_vec().expect("query encodes");
        let config = server::ServerConfig::default();
        let reply = server::handle(&packet, server::Transport::Udp, catalog, &config)?;
        let reply = Message::from_vec(&reply).expect("reply decodes");
        reply.answers.iter().find_map(|record| match &record.data {
            model::RData::A(a) => Some(a.0.octets()[1]),
            _ => None,
        })
    }

    /// An encoding that finishes after newer versions were served is not thrown away: the
    /// served version becomes a patch of it, carrying its answers (hot path), with the
    /// newer content.
    #[test]
    fn an_encoding_overtaken_by_newer_versions_is_brought_forward() {
        use store::contract::fixtures;
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = store::SqliteStore::open(dir.path().join("store.db")).expect("store");
        let zone = name("big.test.");
        let first = fixtures::content("big.test.", 1, 2_000, 0);
        let commit = |content: &model::ZoneContent| {
            let base = store.refs(&zone).expect("refs").active;
            store
                .commit(fixtures::commit(content, base, model::RefName::Active))
                .expect("commit")
                .generation
        };
        let one = commit(&first);
        let encoded = Arc::new(ZoneSnapshot::build(
            &store.content(&zone, one).expect("content"),
            one,
        ));
        let mut next = first.clone();
        next.put_rrset(fixtures::host_set("big.test.", 8, 9));
        let two = commit(&next);
        next.put_rrset(fixtures::host_set("big.test.", 9, 9));
        let three = commit(&next);
        // The follower serves version 3 on the library path (say carrying was refused)
        // when the encoding of version 1 finishes.
        let catalog = Catalog::new();
        let served =
            ZoneSnapshot::build_lookup(&store.content(&zone, three).expect("content"), three);
        catalog.replace_zone(Arc::new(served));
        assert_ne!(one, two);
        let encoder = Encoder::default();
        bring_forward(&store, &catalog, &encoder, &encoded);

        let now = catalog.find(&zone).expect("served");
        assert_eq!(now.generation(), three);
        assert_eq!(
            now.stale_names(),
            Some(3),
            "host8, host9 and the apex are stale"
        );
        assert!(!now.wants_encoding());
        assert_eq!(address(&catalog, "host8.big.test."), Some(9));
        assert_eq!(address(&catalog, "host9.big.test."), Some(9));
        assert_eq!(address(&catalog, "host10.big.test."), Some(0));
        let mut out = [0u8; 512];
        let mut query = hickory_proto::op::Message::new(
            1,
            hickory_proto::op::MessageType::Query,
            hickory_proto::op::OpCode::Query,
        );
        query.add_query(hickory_proto::op::Query::query(
            name("host10.big.test."),
            model::RecordType::A,
        ));
        let packet = query.to_vec().expect("query encodes");
        assert!(
            server::answer_fast(
                &packet,
                server::Transport::Udp,
                &catalog.snapshot(),
                &server::ServerConfig::default(),
                &mut out
            )
            .is_some(),
            "an unchanged name is answered on the hot path"
        );
        assert!(!encoder.pending(&zone), "nothing more to encode");
    }
}
