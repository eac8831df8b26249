//! # follow — a store's refs to served snapshots
//!
//! Where it sits: `store ──watch──▶ follow ──snapshots──▶ server catalog`. Whenever a
//! zone's ref moves, load that version, build its snapshot off the serving path and swap it
//! into the catalog. A version that cannot be loaded leaves the previous snapshot serving
//! (the last good state keeps serving).
//!
//! * [`sync`]: one pass, the one loop from refs to snapshots. The node's follower and its
//!   canary listener ([`start`], with a [`Target`] each) and the simulation (driving
//!   [`sync`] and [`Encoder::encode_next`] with its seeded scheduler) all run it.
//! * How a version is loaded: as a patch of the served one when the store recorded what
//!   changed ([`store::Store::content_changes`]), else whole; served at once on the library
//!   path; then carrying the served version's pre-encoded answers over to it when it can
//!   ([`server::ZoneSnapshot::carry_answers`]).
//! * [`Encoder`]: whole encodings when carrying is not possible or its stale names grow
//!   many. It never gives up on a version: its result is brought forward to whatever version
//!   is served by then (a patch and a carry again), so the hot path survives a stream of
//!   versions that arrive faster than a whole encoding takes.
//! * When nothing of a zone is served and its version does not verify: the newest older
//!   version that does, else the configuration's zone file, loudly.

mod encoder;
mod shell;
mod sync;

use std::collections::BTreeMap;

use model::{Generation, Name, Refs};
use store::zone_key;

pub use encoder::Encoder;
pub use shell::{start, Follower};
pub use sync::{sync, ReadContent, Sources};

/// Which ref of each zone a catalog serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The active version: what a node's server answers.
    Active,
    /// The canary while one is pending, else the active version: what the canary listener
    /// answers, so a new version is asked over the wire before anyone depends on it.
    CanaryElseActive,
}

/// What can stop the follower.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot read the store: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot start the answer encoder thread: {0}; is the process out of threads?")]
    Thread(std::io::Error),
    #[error("the store follower's task failed: {0}")]
    Task(String),
}

/// The generation each zone's catalog entry should be, by zone key: per [`Target`].
pub fn targets(zones: &[(Name, Refs)], target: Target) -> BTreeMap<String, (Name, Generation)> {
    zones
        .iter()
        .filter_map(|(name, refs)| {
            let generation = match target {
                Target::Active => refs.active?,
                Target::CanaryElseActive => refs.canary.or(refs.active)?,
            };
            Some((zone_key(name), (name.clone(), generation)))
        })
        .collect()
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

#[cfg(test)]
mod tests;
