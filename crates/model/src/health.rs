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

/// When the nodes of one store count a backend as down (`[health] quorum`): each live node
/// publishes its own verdicts, and every node plans from all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// Down when more than half of the nodes with a verdict on it say so (the default): a
    /// node cut off from the backends cannot remove them alone.
    #[default]
    Majority,
    /// Down only when every node with a verdict on it says so.
    All,
    /// Down when any node says so (one node's view, as a single node plans).
    Any,
}

impl Quorum {
    /// The names `[health] quorum` takes.
    pub const NAMES: [&'static str; 3] = ["majority", "all", "any"];

    pub fn parse(text: &str) -> Option<Quorum> {
        match text {
            "majority" => Some(Quorum::Majority),
            "all" => Some(Quorum::All),
            "any" => Some(Quorum::Any),
            _ => None,
        }
    }

    /// Whether `down` of `voters` verdicts make a backend down.
    pub fn is_down(self, down: usize, voters: usize) -> bool {
        match self {
            Quorum::Majority => down * 2 > voters,
            Quorum::All => voters > 0 && down == voters,
            Quorum::Any => down > 0,
        }
    }
}

/// The view a node plans from, from the own views of the live nodes (`views`, this node's
/// included): a backend is down when `quorum` of the live nodes say so (a node without a
/// verdict on it yet, still starting, does not count as saying down), healthy when it is not
/// down and some node says it is healthy, and absent (not probed yet) otherwise; `since_ms`
/// is the latest change among the verdicts that agree with the result. Pure: the same
/// verdicts give every node the same view.
pub fn combine(views: &[&HealthView], quorum: Quorum) -> HealthView {
    let mut votes: BTreeMap<IpAddr, Vec<BackendState>> = BTreeMap::new();
    for view in views {
        for (address, state) in &view.backends {
            votes.entry(*address).or_default().push(*state);
        }
    }
    let mut combined = HealthView::new();
    for (address, states) in votes {
        let down = states.iter().filter(|state| !state.healthy).count();
        let healthy = if quorum.is_down(down, views.len()) {
            false
        } else if states.iter().any(|state| state.healthy) {
            true
        } else {
            continue;
        };
        let since_ms = states
            .iter()
            .filter(|state| state.healthy == healthy)
            .map(|state| state.since_ms)
            .max()
            .unwrap_or(0);
        combined.set(address, BackendState { healthy, since_ms });
    }
    combined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(verdicts: &[(&str, bool)]) -> HealthView {
        let mut view = HealthView::new();
        for (address, healthy) in verdicts {
            view.set(
                address.parse().unwrap(),
                BackendState {
                    healthy: *healthy,
                    since_ms: 7,
                },
            );
        }
        view
    }

    #[test]
    fn one_node_cut_off_from_a_backend_cannot_take_it_down_alone() {
        let cut_off = view(&[("192.0.2.1", false), ("192.0.2.2", false)]);
        let seeing = view(&[("192.0.2.1", true), ("192.0.2.2", true)]);
        let combined = combine(&[&cut_off, &seeing, &seeing], Quorum::Majority);
        assert_eq!(combined.healthy(&"192.0.2.1".parse().unwrap()), Some(true));
        assert_eq!(combined.healthy(&"192.0.2.2".parse().unwrap()), Some(true));
    }

    #[test]
    fn a_majority_takes_a_backend_down_and_a_tie_does_not() {
        let down = view(&[("192.0.2.1", false)]);
        let up = view(&[("192.0.2.1", true)]);
        let address = "192.0.2.1".parse().unwrap();
        assert_eq!(
            combine(&[&down, &down, &up], Quorum::Majority).healthy(&address),
            Some(false)
        );
        assert_eq!(
            combine(&[&down, &up], Quorum::Majority).healthy(&address),
            Some(true)
        );
        assert_eq!(
            combine(&[&down], Quorum::Majority).healthy(&address),
            Some(false)
        );
    }

    #[test]
    fn all_and_any_are_the_strict_and_the_loose_policy() {
        let down = view(&[("192.0.2.1", false)]);
        let up = view(&[("192.0.2.1", true)]);
        let address = "192.0.2.1".parse().unwrap();
        assert_eq!(
            combine(&[&down, &down, &up], Quorum::All).healthy(&address),
            Some(true)
        );
        assert_eq!(
            combine(&[&down, &down], Quorum::All).healthy(&address),
            Some(false)
        );
        assert_eq!(
            combine(&[&down, &up, &up], Quorum::Any).healthy(&address),
            Some(false)
        );
    }

    #[test]
    fn a_node_without_a_verdict_yet_does_not_count_as_saying_down() {
        let says_down = view(&[("192.0.2.9", false)]);
        let starting = view(&[("192.0.2.1", true)]);
        let combined = combine(&[&says_down, &starting], Quorum::Majority);
        assert_eq!(
            combined.healthy(&"192.0.2.9".parse().unwrap()),
            None,
            "one of two live nodes says down, nobody says healthy: not probed yet"
        );
        assert_eq!(combined.healthy(&"192.0.2.1".parse().unwrap()), Some(true));
        assert_eq!(combine(&[], Quorum::Majority), HealthView::new());
    }

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
