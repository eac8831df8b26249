//! Backend health: the debounced view the planner reads, and the rise/fall hysteresis that
//! turns single probe results into it.
//!
//! ```text
//!            rise successes in a row                 fall failures in a row
//!  unknown ───────────────────────────▶ healthy ◀──────────────────────────▶ unhealthy
//!     │                                             (rise successes back)       ▲
//!     └─────────────────────── fall failures in a row ─────────────────────────┘
//! ```
//!
//! One probe never flips a backend: a single lost packet or slow answer is noise.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::limits;

/// The debounced health of every known backend, keyed by address. A backend missing from
/// the view has no verdict yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthView {
    pub backends: BTreeMap<IpAddr, BackendState>,
}

/// The verdict on one backend and since when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendState {
    pub healthy: bool,
    pub since_ms: u64,
}

impl HealthView {
    pub fn new() -> HealthView {
        HealthView::default()
    }

    /// Records a verdict (from a probe's [`ProbeState`] or a pushed report).
    pub fn set(&mut self, address: IpAddr, state: BackendState) {
        self.backends.insert(address, state);
    }

    /// `Some(healthy)` when there is a verdict, `None` when the backend is not known yet.
    pub fn healthy(&self, address: &IpAddr) -> Option<bool> {
        self.backends.get(address).map(|state| state.healthy)
    }
}

/// How many consecutive results flip a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    /// Consecutive successes before a backend is marked up.
    pub rise: u32,
    /// Consecutive failures before a backend is marked down.
    pub fall: u32,
}

impl Default for Hysteresis {
    fn default() -> Hysteresis {
        Hysteresis::clamped(None, None)
    }
}

impl Hysteresis {
    /// Rise and fall from configuration, clamped to [`limits::HEALTH_RISE`] and
    /// [`limits::HEALTH_FALL`].
    pub fn clamped(rise: Option<u64>, fall: Option<u64>) -> Hysteresis {
        // Both limits top out at 10, so the values fit in u32.
        Hysteresis {
            rise: u32::try_from(limits::HEALTH_RISE.clamp(rise)).expect("rise is at most 10"),
            fall: u32::try_from(limits::HEALTH_FALL.clamp(fall)).expect("fall is at most 10"),
        }
    }
}

/// Probe history of one backend: the verdict so far and the current run of equal results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeState {
    /// `None` until `rise` successes or `fall` failures in a row decide.
    pub healthy: Option<bool>,
    /// Successes in a row (0 after a failure).
    pub successes: u32,
    /// Failures in a row (0 after a success).
    pub failures: u32,
    /// When `healthy` last changed.
    pub since_ms: u64,
}

impl ProbeState {
    /// The verdict for the [`HealthView`], once there is one.
    pub fn backend_state(&self) -> Option<BackendState> {
        self.healthy.map(|healthy| BackendState {
            healthy,
            since_ms: self.since_ms,
        })
    }
}

/// Folds one probe result into a backend's state. The verdict flips only after `rise`
/// successes or `fall` failures in a row (a rise or fall of 0 counts as 1).
pub fn observe(
    state: ProbeState,
    success: bool,
    now_ms: u64,
    hysteresis: Hysteresis,
) -> ProbeState {
    let mut next = state;
    let (run, threshold) = if success {
        next.successes = next.successes.saturating_add(1);
        next.failures = 0;
        (next.successes, hysteresis.rise.max(1))
    } else {
        next.failures = next.failures.saturating_add(1);
        next.successes = 0;
        (next.failures, hysteresis.fall.max(1))
    };
    if run >= threshold && next.healthy != Some(success) {
        next.healthy = Some(success);
        next.since_ms = now_ms;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(results: &[bool], hysteresis: Hysteresis) -> Vec<Option<bool>> {
        let mut state = ProbeState::default();
        results
            .iter()
            .enumerate()
            .map(|(i, &success)| {
                state = observe(state, success, i as u64 * 1000, hysteresis);
                state.healthy
            })
            .collect()
    }

    #[test]
    fn hysteresis_needs_fall_failures_to_mark_down() {
        let verdicts = run(
            &[true, true, false, false, false],
            Hysteresis { rise: 2, fall: 3 },
        );
        assert_eq!(
            verdicts,
            vec![None, Some(true), Some(true), Some(true), Some(false)]
        );
    }

    #[test]
    fn hysteresis_needs_rise_successes_to_mark_up_again() {
        let verdicts = run(&[false, false, true, true], Hysteresis { rise: 2, fall: 2 });
        assert_eq!(verdicts, vec![None, Some(false), Some(false), Some(true)]);
    }

    #[test]
    fn one_success_between_failures_restarts_the_count() {
        let verdicts = run(
            &[true, true, false, true, false, false],
            Hysteresis { rise: 2, fall: 2 },
        );
        assert_eq!(verdicts.last(), Some(&Some(false)));
        assert_eq!(verdicts[4], Some(true), "a broken run does not count");
    }

    #[test]
    fn since_records_when_the_verdict_flipped() {
        let hysteresis = Hysteresis { rise: 1, fall: 2 };
        let mut state = observe(ProbeState::default(), true, 10, hysteresis);
        state = observe(state, true, 20, hysteresis);
        assert_eq!(
            state.backend_state(),
            Some(BackendState {
                healthy: true,
                since_ms: 10
            })
        );
        state = observe(state, false, 30, hysteresis);
        state = observe(state, false, 40, hysteresis);
        assert_eq!(state.backend_state().map(|s| s.since_ms), Some(40));
    }

    #[test]
    fn hysteresis_from_config_is_clamped_to_its_limits() {
        assert_eq!(Hysteresis::default(), Hysteresis { rise: 2, fall: 2 });
        assert_eq!(
            Hysteresis::clamped(Some(0), Some(99)),
            Hysteresis { rise: 1, fall: 10 }
        );
    }
}
