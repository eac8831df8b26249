//! # store — the one mutable thing
//!
//! Where it sits: `enactor ──CAS──▶ store ──watch──▶ server`. The enactor, the validator and
//! operators write versions and move refs here; the server follows the active ref of each
//! zone (through [`watch_changes`]) and serves a snapshot of that version's content.
//!
//! * [`Store`]: the trait every backend implements (SQLite, etcd, memory). Synchronous and
//!   free of backend concepts: versions, refs, audit, clean-up.
//! * [`SqliteStore`]: the embedded implementation (WAL, `synchronous=FULL`).
//! * [`EtcdStore`]: the shared implementation on an etcd cluster, for several nodes.
//! * [`MemoryStore`]: the in-memory implementation (tests, the simulation), with a fault hook
//!   ([`Fault`]) that makes a call time out before or after it happened.
//! * [`Commit`], [`MoveRef`]: the two ways a ref moves, both compare-and-swap.
//! * [`StoreError`]: what a caller can handle (`Conflict`, `Frozen`, `NotFound`, ...).
//! * The zone breaker ([`Store::breaker`], [`Store::trip_breaker`], [`Store::thaw_breaker`]):
//!   kept with the zone's refs, so an automated commit is refused by the same transaction
//!   that would move the ref (safety contract 7).
//! * [`contract`]: one test suite every implementation must pass, stamped onto it with
//!   [`contract_suite!`].
//! * [`rules`]: the store's decisions (commit and ref-move admission, the breaker check,
//!   clean-up selection) as pure functions, written once; every backend calls them inside
//!   its transaction and implements only storage.
//! * [`buckets`]: how content is split into content-addressed, deduplicated buckets.
//!
//! The one design decision to know: **a ref moves only by compare-and-swap inside the same
//! transaction that reads it** (safety contract 2), and content is stored immutable in
//! **content-addressed buckets** (contract 1), so a new version of a large zone costs only
//! the buckets it changes; a version committed from its verified base
//! ([`Store::commit_from`]) costs only its change (the SQLite store keeps it as the change
//! of its parent, with a checkpoint every `store.delta_chain` versions). Clean-up decides
//! reachability in the transaction that deletes
//! (contract 4), and every ref move, pin and clean-up is appended to the audit log in the
//! same transaction (contract 10). An acknowledged write is durable (contract 11).

pub mod buckets;
pub mod changes;
pub mod contract;
mod error;
mod etcd;
pub mod etcd_cluster;
mod memory;
pub mod repair;
pub mod rules;
mod sqlite;
mod watch;

use model::{
    AuditEntry, Breaker, Generation, Name, Provenance, RefName, Refs, Version, ZoneContent,
};

pub use error::StoreError;
pub use etcd::{EtcdConfig, EtcdStore};
pub use memory::{Fault, MemoryStore};
pub use sqlite::SqliteStore;
pub use watch::{default_poll_interval, watch_changes, WatchHandle};

/// The `action` words of audit entries written by the store itself.
pub mod actions {
    /// The active ref of a zone moved (commit, promotion, rollback).
    pub const REF_MOVE: &str = "ref-move";
    /// The canary ref was set, moved or cleared.
    pub const CANARY_MOVE: &str = "canary-move";
    /// A version was pinned: clean-up keeps it.
    pub const PIN: &str = "pin";
    /// A version was unpinned.
    pub const UNPIN: &str = "unpin";
    /// Clean-up deleted unreachable versions; the reason lists them.
    pub const CLEAN_UP: &str = "clean-up";
    /// The guard refused a plan or an operator change; the reason is the verdict's text.
    /// Written by the stage that asked (enactor, operator path) through
    /// [`Store::append_audit`](crate::Store::append_audit).
    pub const REFUSED: &str = "refused";
    /// The zone's breaker tripped ([`Store::trip_breaker`](crate::Store::trip_breaker)).
    pub const BREAKER_TRIP: &str = model::BREAKER_TRIP;
    /// An operator thawed the zone's breaker
    /// ([`Store::thaw_breaker`](crate::Store::thaw_breaker)).
    pub const BREAKER_THAW: &str = model::BREAKER_THAW;
}

/// The store: versions of zones, the refs that point at them, and the audit log.
///
/// Every method is one transaction of the backend. Methods that change something take the
/// actor and `now_ms` from the caller (time comes in through the caller's seam).
pub trait Store: Send + Sync {
    /// Creates a new version of `commit.content.origin()` and moves `commit.target` to it,
    /// in one transaction.
    ///
    /// Compare-and-swap: the zone's active ref must still equal `commit.base` (`None` = the
    /// zone has no active version yet), else [`StoreError::Conflict`] and nothing changes.
    /// An automated commit (`commit.automation`) to a zone whose breaker is tripped is
    /// refused with [`StoreError::Frozen`], decided in the same transaction.
    /// The new generation is the zone's next one (never reused, even after clean-up). The
    /// stored SOA serial is [`model::serial::next_serial`] of the last serial ever stored
    /// for the zone and the content's serial, so the served serial rises with every
    /// generation. Moving active past a canary clears the canary. Audited.
    fn commit(&self, commit: Commit<'_>) -> Result<Version, StoreError>;

    /// [`Store::commit`] of content derived from `base_content`, the content of
    /// `commit.base` as the caller read it. A backend that checks `base_content` against the
    /// base's stored hash may then validate and store only what changed (safety contract 12);
    /// the result is the same as [`Store::commit`]'s. The default ignores the hint.
    fn commit_from(
        &self,
        commit: Commit<'_>,
        base_content: &ZoneContent,
    ) -> Result<Version, StoreError> {
        let _ = base_content;
        self.commit(commit)
    }

    /// Compare-and-swap of a ref to an existing version: `reference` must equal `expected`;
    /// `to` must exist and be newer than `expected` (a canary must also be newer than the
    /// active version). `to = None` clears the canary; the active ref cannot be cleared.
    /// Moving active to (or past) the canary's generation clears the canary (promotion).
    /// An automated move on a frozen zone is refused with [`StoreError::Frozen`]. Audited.
    fn move_ref(&self, request: MoveRef<'_>) -> Result<(), StoreError>;

    /// Where the zone's refs point; both `None` for a zone the store does not know.
    fn refs(&self, zone: &Name) -> Result<Refs, StoreError>;

    /// Every zone the store knows, in order of their lower-cased names.
    fn zones(&self) -> Result<Vec<(Name, Refs)>, StoreError>;

    /// Metadata of one version, or [`StoreError::NotFound`].
    fn version(&self, zone: &Name, generation: Generation) -> Result<Version, StoreError>;

    /// Content of one version, verified against its content hash
    /// ([`StoreError::Corrupt`] on mismatch).
    fn content(&self, zone: &Name, generation: Generation) -> Result<ZoneContent, StoreError>;

    /// The record sets that may differ between versions `from` and `to` of a zone. When
    /// `from` is an ancestor of `to` (through parents, at most
    /// [`model::limits::STORE_CHANGES_CHAIN`] back) whose versions all recorded their
    /// changes at commit ([`changes`]): the sets of the changed names only. Otherwise every
    /// set of `from` and of `to` in the content buckets whose keys differ (unchanged buckets
    /// are not read). Either way a name that appears on neither side is the same in both
    /// versions, and a name that appears has, in `to`, exactly its sets in `added`. What is
    /// read is verified against its hash. `None` when the backend cannot tell cheaply (the
    /// default, a different bucket layout, or more than half of the buckets changed): load
    /// the whole content. Recorded changes are answered even when `from` has been cleaned
    /// up since (what a version changed stays known while the version exists).
    fn content_changes(
        &self,
        zone: &Name,
        from: Generation,
        to: Generation,
    ) -> Result<Option<ContentChanges>, StoreError> {
        let _ = (zone, from, to);
        Ok(None)
    }

    /// The zone's newest `limit` versions, newest first.
    fn history(&self, zone: &Name, limit: usize) -> Result<Vec<Version>, StoreError>;

    /// Pins or unpins a version (clean-up keeps pinned versions). Audited.
    fn set_pinned(&self, request: SetPinned<'_>) -> Result<(), StoreError>;

    /// Appends an entry written by another stage (guard refusals, operator, validator).
    /// Returns its sequence number. Breaker actions are refused here: they go through
    /// [`Store::trip_breaker`] and [`Store::thaw_breaker`].
    fn append_audit(&self, entry: NewAuditEntry) -> Result<u64, StoreError>;

    /// Audit entries matching `query`, oldest first, at most
    /// [`model::limits::AUDIT_PAGE`] of them.
    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Clean-up by reachability, decided and executed in one transaction. Deletes versions
    /// of `zone` that are not the target of active or canary, not pinned, not among the
    /// `keep_last` newest versions that were ever active (clamped to
    /// [`model::limits::KEEP_LAST_VERSIONS`]), and not newer than the active generation
    /// (in-flight proposals). Age is never a reason. Then deletes the content no remaining
    /// version uses. Audited when it deletes something. Returns the deleted generations,
    /// oldest first.
    fn clean_up(
        &self,
        zone: &Name,
        keep_last: usize,
        actor: &str,
        now_ms: u64,
    ) -> Result<Vec<Generation>, StoreError>;

    /// The zone's breaker; [`Breaker::Closed`] for a zone the store does not know. Always
    /// equal to [`Breaker::from_audit`] over the zone's audit entries.
    fn breaker(&self, zone: &Name) -> Result<Breaker, StoreError>;

    /// Trips the zone's breaker (a tripped breaker keeps its first reason, see
    /// [`Breaker::trip`]) and appends a [`actions::BREAKER_TRIP`] audit entry, in one
    /// transaction. Creates the zone if the store does not know it yet, so a zone can be
    /// frozen before its first version. Returns the breaker after the trip.
    fn trip_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError>;

    /// Thaws a tripped breaker and appends a [`actions::BREAKER_THAW`] audit entry, in one
    /// transaction. A breaker that is not tripped is [`StoreError::Refused`] and nothing
    /// changes.
    fn thaw_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError>;

    /// What the zone's static records were last loaded from, as recorded by
    /// [`Store::set_zone_source`] (the node records its zone file's content hash); `None`
    /// when nothing was recorded or the zone is unknown.
    fn zone_source(&self, zone: &Name) -> Result<Option<String>, StoreError>;

    /// Records what the zone's static records were last loaded from. A zone without a
    /// version is [`StoreError::Refused`]: recording a source never creates a zone.
    fn set_zone_source(&self, zone: &Name, source: &str) -> Result<(), StoreError>;

    /// A number that changes whenever any ref of any zone moves, in this or another
    /// process. Followers poll it cheaply.
    fn change_counter(&self) -> Result<u64, StoreError>;

    /// A new feed of the change counter, pushed by the backend as it changes (etcd's
    /// watch), for [`watch_changes`]; `None` (the default) when followers poll
    /// [`Store::change_counter`] instead. Its receiver starts at the counter as read now; it
    /// may also be told when nothing changed (the backend lost track and asks its followers
    /// to re-read).
    fn change_feed(&self) -> Option<ChangeFeed> {
        None
    }

    /// Publishes this node's own health verdicts under `node`, kept for `ttl_ms` unless
    /// published again, so a node that dies stops counting once they expire. Every node of
    /// a shared store plans from all live nodes' verdicts ([`model::health::combine`]). A
    /// store that one node uses alone keeps nothing (the default).
    fn publish_health(
        &self,
        node: &str,
        view: &model::HealthView,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (node, view, ttl_ms);
        Ok(())
    }

    /// A feed that is told whenever any node publishes verdicts or a node's verdicts
    /// expire (etcd's watch), so a node combines the others' verdicts as they come instead
    /// of at its next poll; `None` (the default) when there is none.
    fn health_feed(&self) -> Option<ChangeFeed> {
        None
    }

    /// Every live node's published verdicts, by node name (empty by default).
    fn health_verdicts(&self) -> Result<Vec<(String, model::HealthView)>, StoreError> {
        Ok(Vec::new())
    }

    /// Full check: backend integrity, every ref points at an existing version, every
    /// version's content is present and hashes to its content hash. The error describes the
    /// first problem found.
    fn check_integrity(&self) -> Result<(), StoreError>;
}

/// One subscription to a backend's change feed ([`Store::change_feed`]).
pub struct ChangeFeed {
    /// The change counter as the backend learns of changes.
    pub receiver: tokio::sync::watch::Receiver<u64>,
    /// Ends the subscription (the receiver's channel closes).
    pub stop: Box<dyn FnOnce() + Send + Sync>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("counter", &*self.receiver.borrow())
            .finish_non_exhaustive()
    }
}

/// Record sets of the changed buckets of two versions. See [`Store::content_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentChanges {
    /// The version the changes lead to.
    pub version: Version,
    /// Sets of the old version in the changed buckets.
    pub removed: Vec<model::RecordSet>,
    /// Sets of the new version in the changed buckets.
    pub added: Vec<model::RecordSet>,
}

/// A new version and the ref to move to it. See [`Store::commit`].
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub content: &'a ZoneContent,
    /// The active generation the content was computed from; `None` for a new zone.
    pub base: Option<Generation>,
    /// `Active` to make it served, `Canary` to canary it first.
    pub target: RefName,
    pub provenance: Provenance,
    pub actor: &'a str,
    pub reason: &'a str,
    pub now_ms: u64,
    /// `true` for a write by automation (enactor, planner): refused with
    /// [`StoreError::Frozen`] while the zone's breaker is tripped. `false` for an operator.
    pub automation: bool,
}

/// A compare-and-swap of one ref to an existing version. See [`Store::move_ref`].
#[derive(Debug, Clone)]
pub struct MoveRef<'a> {
    pub zone: &'a Name,
    pub reference: RefName,
    /// Where the caller saw the ref; the move happens only if it is still there.
    pub expected: Option<Generation>,
    /// Where it should point; `None` clears it (canary only).
    pub to: Option<Generation>,
    pub actor: &'a str,
    pub reason: &'a str,
    pub now_ms: u64,
    /// `true` for a move by automation (promotion, validator rollback): refused with
    /// [`StoreError::Frozen`] while the zone's breaker is tripped. `false` for an operator.
    pub automation: bool,
}

/// Trip or thaw a zone's breaker. See [`Store::trip_breaker`], [`Store::thaw_breaker`].
#[derive(Debug, Clone)]
pub struct BreakerChange<'a> {
    pub zone: &'a Name,
    pub reason: &'a str,
    pub actor: &'a str,
    pub now_ms: u64,
}

/// Pin or unpin one version. See [`Store::set_pinned`].
#[derive(Debug, Clone)]
pub struct SetPinned<'a> {
    pub zone: &'a Name,
    pub generation: Generation,
    pub pinned: bool,
    pub actor: &'a str,
    pub reason: &'a str,
    pub now_ms: u64,
}

/// An audit entry before the store gives it a sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at_ms: u64,
    pub actor: String,
    pub zone: Name,
    pub action: String,
    pub from: Option<Generation>,
    pub to: Option<Generation>,
    pub reason: String,
}

/// Which audit entries to read. All filters are conjunctive; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub zone: Option<Name>,
    /// Entries at or after this time.
    pub since_ms: Option<u64>,
    /// Entries with a sequence strictly above this one (paging).
    pub after_sequence: Option<u64>,
    /// Page size; `None` or out-of-bounds values are clamped to
    /// [`model::limits::AUDIT_PAGE`].
    pub limit: Option<usize>,
}

/// The refusal of [`Store::set_zone_source`] for a zone without a version.
pub(crate) fn unknown_zone_source(zone: &Name) -> StoreError {
    StoreError::Refused {
        zone: zone.clone(),
        reason: "the zone has no version yet; commit one before recording its source".to_string(),
    }
}

/// The store's key for a zone: the lower-cased, fully qualified name.
pub fn zone_key(zone: &Name) -> String {
    let mut name = zone.to_lowercase();
    name.set_fqdn(true);
    name.to_ascii()
}
