//! The store's error enum: what a caller can handle, each message saying what to do.

use model::invariants::Violation;
use model::{Generation, Name, RefName};

/// Why a store call did not happen. Nothing changed in the store when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Compare-and-swap lost: someone moved the ref since the caller read it.
    #[error(
        "zone {zone}: the {reference} ref is at {} but the writer expected {}; \
         re-read the zone, re-plan against the current version and retry",
        show(.actual),
        show(.expected)
    )]
    Conflict {
        zone: Name,
        reference: RefName,
        expected: Option<Generation>,
        actual: Option<Generation>,
    },

    /// The zone's breaker is tripped and the write came from automation.
    #[error(
        "zone {zone} is frozen since {since_ms} ms: {reason}; an operator must thaw it \
         (`dnsward thaw {zone} --reason ...`)"
    )]
    Frozen {
        zone: Name,
        /// Why the breaker tripped (its first cause).
        reason: String,
        /// When it tripped, in ms since the epoch.
        since_ms: u64,
    },

    /// The version does not exist (never did, or clean-up deleted it).
    #[error(
        "zone {zone} has no generation {generation}; list its history for the generations \
         that exist"
    )]
    NotFound { zone: Name, generation: Generation },

    /// The request would break an invariant of the safety contract.
    #[error("zone {zone}: refused, {violation}; fix the content or the request and retry")]
    Invalid {
        zone: Name,
        violation: Box<Violation>,
    },

    /// The request makes no sense in the zone's current state.
    #[error("zone {zone}: refused, {reason}")]
    Refused { zone: Name, reason: String },

    /// Stored data does not match what was written.
    #[error(
        "store content is corrupt: {detail}; serve another generation (roll back) and \
         restore the store from a backup"
    )]
    Corrupt { detail: String },

    /// The backend failed (locked, unwritable, unreachable).
    #[error(
        "store at {location} failed while {operation}: {detail}; if it is locked, another \
         writer held it longer than store.busy_timeout_ms, retry; if it is unwritable, check \
         the path's permissions and free disk space"
    )]
    Backend {
        location: String,
        operation: String,
        detail: String,
    },
}

fn show(generation: &Option<Generation>) -> String {
    match generation {
        Some(generation) => format!("generation {generation}"),
        None => "no version".to_string(),
    }
}
