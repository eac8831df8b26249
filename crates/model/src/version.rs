//! Versions, generations, refs and the audit record.

use std::fmt;

use hickory_proto::rr::Name;

/// Position of a version in its zone's history. Strictly increasing per zone, never reused,
/// never going backwards (a rollback is a new, higher generation with old content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl Generation {
    pub const FIRST: Generation = Generation(1);

    pub fn next(self) -> Generation {
        Generation(self.0 + 1)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// SHA-256 of a zone content's normalised encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<ContentHash> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(ContentHash(out))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Who made a version and why. The reason text lives in [`Version::reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Loaded from a zone file.
    Import,
    /// Computed by the planner from health.
    Planner,
    /// Written by a person (break-glass edits, config changes).
    Operator,
    /// Written by a person with an audited override of a floor (`apply --force REASON`):
    /// the guard would have refused it. The validator reports its floor breach as a warning
    /// instead of rolling it back, and `status` shows the zone as forced while it is active.
    Forced,
    /// Old content restored as a new generation.
    Rollback { to: Generation },
    /// Dynamic update or other programmatic change.
    Update,
}

impl Provenance {
    /// Stable text form, used by the store and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            Provenance::Import => "import",
            Provenance::Planner => "planner",
            Provenance::Operator => "operator",
            Provenance::Forced => "forced",
            Provenance::Rollback { .. } => "rollback",
            Provenance::Update => "update",
        }
    }

    /// Inverse of [`Provenance::kind`] plus the rollback target.
    pub fn from_kind(kind: &str, rollback_to: Option<Generation>) -> Option<Provenance> {
        Some(match (kind, rollback_to) {
            ("import", _) => Provenance::Import,
            ("planner", _) => Provenance::Planner,
            ("operator", _) => Provenance::Operator,
            ("forced", _) => Provenance::Forced,
            ("rollback", Some(to)) => Provenance::Rollback { to },
            ("update", _) => Provenance::Update,
            _ => return None,
        })
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Rollback { to } => write!(f, "rollback to {to}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Immutable metadata of stored content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub zone: Name,
    pub generation: Generation,
    pub content_hash: ContentHash,
    /// The generation this version was computed from (the base of its compare-and-swap).
    pub parent: Option<Generation>,
    pub provenance: Provenance,
    pub actor: String,
    pub reason: String,
    /// SOA serial of the content.
    pub serial: u32,
    pub records: u64,
    pub created_at_ms: u64,
    pub pinned: bool,
}

/// The life of a version, as seen from its zone's refs.
///
/// ```text
///  proposed ──guard──▶ guarded ──CAS canary──▶ canary ──CAS active──▶ active
///                                                                      │ newer active
///                                                                      ▼
///                            collectable ◀── not pinned, not last K ── superseded
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    Proposed,
    Guarded,
    Canary,
    Active,
    Superseded,
    Collectable,
}

/// The two refs of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefName {
    Active,
    Canary,
}

impl RefName {
    pub fn as_str(self) -> &'static str {
        match self {
            RefName::Active => "active",
            RefName::Canary => "canary",
        }
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a zone's refs point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Refs {
    pub active: Option<Generation>,
    pub canary: Option<Generation>,
}

impl Refs {
    pub fn get(&self, name: RefName) -> Option<Generation> {
        match name {
            RefName::Active => self.active,
            RefName::Canary => self.canary,
        }
    }
}

/// One line of the append-only audit log: time, actor, zone, from → to, reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the log, assigned by the store.
    pub sequence: u64,
    pub at_ms: u64,
    pub actor: String,
    pub zone: Name,
    /// What happened: `ref-move`, `refused`, `breaker-trip`, `clean-up`, `pin`, ...
    pub action: String,
    pub from: Option<Generation>,
    pub to: Option<Generation>,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_round_trips_through_hex() {
        let hash = ContentHash([0xab; 32]);
        assert_eq!(ContentHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(ContentHash::from_hex("zz"), None);
    }

    #[test]
    fn provenance_round_trips_through_its_kind() {
        for provenance in [
            Provenance::Import,
            Provenance::Planner,
            Provenance::Operator,
            Provenance::Forced,
            Provenance::Rollback { to: Generation(4) },
            Provenance::Update,
        ] {
            let to = match provenance {
                Provenance::Rollback { to } => Some(to),
                _ => None,
            };
            assert_eq!(
                Provenance::from_kind(provenance.kind(), to),
                Some(provenance)
            );
        }
    }
}
