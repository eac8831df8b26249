//! Whole encodings of a version's answers for the hot path, off the path to the wire.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use model::Name;
use server::ZoneSnapshot;

/// Whole encodings of served versions, one at a time: on a thread of their own in a node
/// ([`Encoder::run`]), or one step at a time where a scheduler drives them
/// ([`Encoder::encode_next`], the simulation).
pub struct Encoder {
    state: Mutex<EncoderState>,
    wake: Condvar,
    /// Tells the follower that an encoding finished.
    pub(crate) finished: tokio::sync::Notify,
    /// The CNAME chain bound answers are encoded with: the servers' own.
    cname_chain_length: usize,
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
    pub fn request(&self, snapshot: &Arc<ZoneSnapshot>) {
        if self.pending(snapshot.origin()) {
            return;
        }
        let key = store::zone_key(snapshot.origin());
        self.lock().waiting.insert(key, Arc::clone(snapshot));
        self.wake.notify_one();
    }

    /// Gives up encoding `zone`'s answers: a version that no patch could bring the
    /// result forward to is served now (a whole load).
    pub fn cancel(&self, zone: &Name) {
        let key = store::zone_key(zone);
        let mut state = self.lock();
        state.waiting.remove(&key);
        if state.busy.as_ref() == Some(&key) {
            state.cancelled = true;
        }
    }

    /// Whether `zone`'s answers are being encoded or waiting to be.
    pub fn pending(&self, zone: &Name) -> bool {
        let key = store::zone_key(zone);
        let state = self.lock();
        state.busy.as_ref() == Some(&key) || state.waiting.contains_key(&key)
    }

    /// The encodings finished since the last call.
    pub fn take_done(&self) -> Vec<Arc<ZoneSnapshot>> {
        std::mem::take(&mut self.lock().done)
            .into_values()
            .collect()
    }

    pub fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_all();
    }

    /// An encoder for servers that follow CNAME chains up to `cname_chain_length` (their
    /// `ServerConfig::cname_chain_length`).
    pub fn new(cname_chain_length: usize) -> Encoder {
        Encoder {
            state: Mutex::default(),
            wake: Condvar::new(),
            finished: tokio::sync::Notify::new(),
            cname_chain_length,
        }
    }

    /// The encoder thread's loop: one waiting version at a time, until stopped.
    pub fn run(&self) {
        loop {
            {
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
            }
            if self.encode_next() {
                // The replaced snapshots and the encoder's scratch are freed.
                server::release_free_memory();
                self.finished.notify_one();
            }
        }
    }

    /// Encodes the oldest waiting version now, on this thread; `false` when none waits. Its
    /// result is taken with [`Encoder::take_done`].
    pub fn encode_next(&self) -> bool {
        let (key, snapshot, previous) = {
            let mut state = self.lock();
            let Some((key, snapshot)) = state.waiting.pop_first() else {
                return false;
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
                self.cname_chain_length,
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
        true
    }
}
