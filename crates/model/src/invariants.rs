//! The safety contract of DESIGN.md as functions. The store, the guard, the tests and the
//! simulation call these; keep them pure and keep them in release builds.

use crate::serial;
use crate::version::Generation;
use crate::zone::{ContentError, ZoneContent};

/// A violated invariant, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("generation must rise: {new} is not above {base}")]
    GenerationNotAbove { base: Generation, new: Generation },
    #[error("SOA serial must rise with every generation: {new} is not after {parent} (RFC 1982)")]
    SerialNotAfter { parent: u32, new: u32 },
    #[error("content is not a valid zone: {problems}")]
    InvalidContent { problems: String },
}

/// Contract 2: a ref only moves forward.
pub fn check_generation_monotonic(
    base: Option<Generation>,
    new: Generation,
) -> Result<(), Violation> {
    match base {
        Some(base) if new <= base => Err(Violation::GenerationNotAbove { base, new }),
        _ => Ok(()),
    }
}

/// Contract 1: the served serial rises with every generation.
pub fn check_serial_rises(parent: Option<u32>, new: u32) -> Result<(), Violation> {
    match parent {
        Some(parent) if !serial::is_after(new, parent) => {
            Err(Violation::SerialNotAfter { parent, new })
        }
        _ => Ok(()),
    }
}

/// Content must be a servable zone before it becomes a version.
pub fn check_content_valid(content: &ZoneContent, record_limit: u64) -> Result<(), Violation> {
    let problems: Vec<ContentError> = content.validate(record_limit);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Violation::InvalidContent {
            problems: problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_may_not_move_to_its_own_or_an_older_generation() {
        assert!(check_generation_monotonic(None, Generation(1)).is_ok());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(4)).is_ok());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(3)).is_err());
        assert!(check_generation_monotonic(Some(Generation(3)), Generation(2)).is_err());
    }

    #[test]
    fn a_serial_that_does_not_rise_is_a_violation() {
        assert!(check_serial_rises(Some(5), 6).is_ok());
        assert!(check_serial_rises(Some(5), 5).is_err());
        assert!(check_serial_rises(Some(u32::MAX), 0).is_ok());
    }
}
