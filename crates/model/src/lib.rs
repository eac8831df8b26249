//! # model — the vocabulary of dnsward
//!
//! Every other crate speaks these types; this crate does no I/O.
//!
//! * [`ZoneContent`]: the records of one zone at one point in time, normalised (record sets
//!   in canonical DNS order, each set's data sorted and de-duplicated) so that equal content
//!   has one encoding and one [`ContentHash`]. A persistent map: clones are O(1), content
//!   derived from other content shares its structure, and [`ZoneContent::changed_sets`],
//!   equality, the record count and the hash cost the change, not the zone.
//! * [`Version`]: content stored under a [`Generation`] of a zone, with its parent and its
//!   [`Provenance`]. Versions are immutable; the one mutable thing per zone is a ref
//!   ([`RefName::Active`], [`RefName::Canary`]) that points at a generation.
//! * [`limits`]: every bound in the system, with a default, a minimum and a maximum.
//! * [`EndpointConfig`] (protected names whose addresses follow backend health),
//!   [`HealthView`] and the rise/fall [`observe`] machine, the zone [`Breaker`] (a fold over
//!   the audit log), and [`GuardPolicy`] with [`ZoneDiff`]: the vocabulary of the planner and
//!   the guard.
//! * [`Clock`]: the time seam ([`SystemClock`], and [`ManualClock`] for tests and the
//!   simulation).
//! * [`invariants`]: the safety contract of `DESIGN.md` written once as functions, called by
//!   the store, the guard, the tests and the simulation.
//!
//! The one design decision to know: names, types and RDATA are `hickory-proto`'s. Names
//! compare case-insensitively and keep their case; record sets are keyed by the lower-cased
//! name, so `WWW.example.` and `www.example.` are the same owner.

pub mod breaker;
mod change;
pub mod clock;
pub mod contained;
pub mod endpoint;
pub mod health;
pub mod invariants;
pub mod limits;
pub mod serial;
mod version;
mod zone;

pub use breaker::{Breaker, BreakerError, BREAKER_THAW, BREAKER_TRIP};
pub use change::{Deferral, GuardPolicy, NameDiff, Removal, ZoneDiff};
pub use clock::{Clock, ManualClock, SystemClock};
pub use endpoint::{AllDownPolicy, BackendConfig, Check, EndpointConfig};
pub use health::{observe, BackendState, HealthView, Hysteresis, ProbeState, Quorum};

pub use hickory_proto::rr::{rdata, DNSClass, Name, RData, Record, RecordType};
pub use version::{
    AuditEntry, ContentHash, Generation, Provenance, RefName, Refs, Version, VersionState,
};
pub use zone::{
    decode_record_sets, decode_records, encode_rdata, ChangedSet, ContentBuilder, ContentError,
    RecordSet, RrsetKey, ZoneContent,
};
