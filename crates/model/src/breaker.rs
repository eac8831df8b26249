//! The zone breaker (safety contract 7): a refused plan, a failed validation or an impossible
//! state trips it; while tripped, automation stops moving the zone's ref and the last good
//! version keeps being served. Only an operator thaws it.
//!
//! ```text
//!              trip (refusal, failed validation, impossible state)
//!   Closed ───────────────────────────────────────────────────────▶ Tripped
//!                                                                  │   ▲
//!                                      thaw (operator, with reason) │   │ trip
//!                                                                  ▼   │
//!                                                                  Thawed
//! ```
//!
//! `Thawed` lets automation run exactly like `Closed`, but remembers who thawed it and why.
//! Tripping an already tripped breaker keeps the first trip: the first cause is the one a
//! person needs to read.
//!
//! The state is not stored on its own: it is a fold over the zone's append-only audit log
//! ([`Breaker::from_audit`]), so it survives restarts and every change is recorded.

use std::fmt;

use crate::version::AuditEntry;

/// Audit action recorded when a breaker trips.
pub const BREAKER_TRIP: &str = "breaker-trip";
/// Audit action recorded when an operator thaws a breaker.
pub const BREAKER_THAW: &str = "breaker-thaw";

/// The breaker of one zone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Breaker {
    /// Never tripped: automation runs.
    #[default]
    Closed,
    /// Automation stops moving the zone's ref until an operator thaws it.
    Tripped {
        reason: String,
        at_ms: u64,
        actor: String,
    },
    /// Thawed by an operator after a trip: automation runs again.
    Thawed {
        at_ms: u64,
        actor: String,
        reason: String,
    },
}

/// A breaker transition that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError {
    #[error("the breaker is {state}, not tripped; there is nothing to thaw")]
    NotTripped { state: &'static str },
}

impl Breaker {
    /// Trips the breaker. A tripped breaker stays tripped with its first reason.
    pub fn trip(self, reason: impl Into<String>, actor: impl Into<String>, now_ms: u64) -> Breaker {
        match self {
            tripped @ Breaker::Tripped { .. } => tripped,
            Breaker::Closed | Breaker::Thawed { .. } => Breaker::Tripped {
                reason: reason.into(),
                at_ms: now_ms,
                actor: actor.into(),
            },
        }
    }

    /// Thaws a tripped breaker; anything else is an error.
    pub fn thaw(
        self,
        reason: impl Into<String>,
        actor: impl Into<String>,
        now_ms: u64,
    ) -> Result<Breaker, BreakerError> {
        match self {
            Breaker::Tripped { .. } => Ok(Breaker::Thawed {
                at_ms: now_ms,
                actor: actor.into(),
                reason: reason.into(),
            }),
            other => Err(BreakerError::NotTripped {
                state: other.state_name(),
            }),
        }
    }

    /// Whether automation may move the zone's ref.
    pub fn allows_automation(&self) -> bool {
        !matches!(self, Breaker::Tripped { .. })
    }

    /// `closed`, `tripped` or `thawed`.
    pub fn state_name(&self) -> &'static str {
        match self {
            Breaker::Closed => "closed",
            Breaker::Tripped { .. } => "tripped",
            Breaker::Thawed { .. } => "thawed",
        }
    }

    /// Replays the audit entries of one zone, in log order (by `sequence`), through
    /// [`Breaker::trip`] and [`Breaker::thaw`]. Entries with other actions are ignored; a
    /// thaw of a breaker that is not tripped was refused when it was made and changes
    /// nothing here either.
    pub fn from_audit(entries: &[AuditEntry]) -> Breaker {
        let mut ordered: Vec<&AuditEntry> = entries.iter().collect();
        ordered.sort_by_key(|entry| entry.sequence);
        ordered.into_iter().fold(Breaker::Closed, |breaker, entry| {
            match entry.action.as_str() {
                BREAKER_TRIP => {
                    breaker.trip(entry.reason.clone(), entry.actor.clone(), entry.at_ms)
                }
                BREAKER_THAW => {
                    let unchanged = breaker.clone();
                    breaker
                        .thaw(entry.reason.clone(), entry.actor.clone(), entry.at_ms)
                        .unwrap_or(unchanged)
                }
                _ => breaker,
            }
        })
    }
}

impl fmt::Display for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breaker::Closed => f.write_str("closed"),
            Breaker::Tripped {
                reason,
                at_ms,
                actor,
            } => write!(f, "tripped at {at_ms} ms by {actor}: {reason}"),
            Breaker::Thawed {
                at_ms,
                actor,
                reason,
            } => write!(f, "thawed at {at_ms} ms by {actor}: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Name;

    fn entry(sequence: u64, action: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            sequence,
            at_ms: sequence * 100,
            actor: if action == BREAKER_THAW {
                "operator".into()
            } else {
                "guard".into()
            },
            zone: Name::from_ascii("example.test.").unwrap(),
            action: action.into(),
            from: None,
            to: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_closed_breaker_trips_and_stops_automation() {
        let breaker = Breaker::Closed.trip("below floor", "guard", 5);
        assert!(!breaker.allows_automation());
        assert_eq!(breaker.state_name(), "tripped");
    }

    #[test]
    fn only_a_tripped_breaker_can_be_thawed() {
        assert_eq!(
            Breaker::Closed.thaw("why", "operator", 1),
            Err(BreakerError::NotTripped { state: "closed" })
        );
        let thawed = Breaker::Closed
            .trip("below floor", "guard", 5)
            .thaw("backends fixed", "operator", 9)
            .unwrap();
        assert!(thawed.allows_automation());
        assert!(thawed.clone().thaw("again", "operator", 10).is_err());
        assert!(!thawed.trip("again", "guard", 11).allows_automation());
    }

    #[test]
    fn tripping_a_tripped_breaker_keeps_the_first_reason() {
        let breaker = Breaker::Closed
            .trip("first", "guard", 1)
            .trip("second", "validator", 2);
        assert_eq!(
            breaker,
            Breaker::Tripped {
                reason: "first".into(),
                at_ms: 1,
                actor: "guard".into()
            }
        );
    }

    #[test]
    fn breaker_state_survives_a_replay_of_the_audit_log() {
        let log = vec![
            entry(1, "ref-move", "plan"),
            entry(2, BREAKER_TRIP, "below floor"),
            entry(3, BREAKER_THAW, "fixed"),
            entry(4, BREAKER_TRIP, "removes too much"),
            entry(5, "refused", "removes too much"),
        ];
        let live = Breaker::Closed
            .trip("below floor", "guard", 200)
            .thaw("fixed", "operator", 300)
            .unwrap()
            .trip("removes too much", "guard", 400);
        assert_eq!(Breaker::from_audit(&log), live);
        let mut shuffled = log.clone();
        shuffled.reverse();
        assert_eq!(
            Breaker::from_audit(&shuffled),
            live,
            "replay follows sequence"
        );
        assert_eq!(Breaker::from_audit(&log[..3]).state_name(), "thawed");
        assert_eq!(Breaker::from_audit(&[]), Breaker::Closed);
    }

    #[test]
    fn a_thaw_in_the_log_without_a_trip_changes_nothing() {
        let log = vec![entry(1, BREAKER_THAW, "nothing to thaw")];
        assert_eq!(Breaker::from_audit(&log), Breaker::Closed);
    }
}
