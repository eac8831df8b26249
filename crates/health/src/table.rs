//! The health table: every target's probe history and the [`HealthView`] built from it.
//! Synchronous and free of I/O; the monitor calls it under one lock, so probe results,
//! pushed reports and reloads are applied one at a time, in the order they arrive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use model::{observe, Check, HealthView, ProbeState};

use crate::{HealthError, ProbeTarget, PushedReport, MAX_PUSHED_REPORTS};

/// One backend the monitor knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub target: ProbeTarget,
    pub state: ProbeState,
    /// Changes when the target's check changes, so results of a probe started under the old
    /// check are recognised and dropped.
    pub epoch: u64,
}

/// What a probe result did to the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    /// The target was removed or its check replaced while the probe ran: result dropped.
    Stale,
    /// Folded into the history; the verdict did not change.
    Steady,
    /// The verdict changed (or there is a first one): the view must be published.
    Changed,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Backends whose verdict changed.
    pub changed: usize,
    /// Reports that contradict the backend's latest probes.
    pub contradicting: Vec<IpAddr>,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    entries: BTreeMap<IpAddr, Entry>,
    view: HealthView,
    next_epoch: u64,
    /// Bumped by every [`Table::replace_targets`], so the scheduler knows to re-read.
    generation: u64,
}

impl Table {
    pub fn view(&self) -> &HealthView {
        &self.view
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn entries(&self) -> &BTreeMap<IpAddr, Entry> {
        &self.entries
    }

    /// Replaces the target set (already checked by [`prepare_targets`]). A target whose
    /// address and check are unchanged keeps its history (interval, timeout and rise/fall
    /// may change); a target whose check changed keeps its verdict but counts its run of
    /// results afresh; a removed target leaves the view. Returns whether the view changed.
    pub fn replace_targets(&mut self, targets: Vec<ProbeTarget>) -> bool {
        let mut previous = std::mem::take(&mut self.entries);
        for target in targets {
            let entry = match previous.remove(&target.address) {
                Some(old) if old.target.check == target.check => Entry {
                    target,
                    state: old.state,
                    epoch: old.epoch,
                },
                Some(old) => Entry {
                    target,
                    state: ProbeState {
                        successes: 0,
                        failures: 0,
                        ..old.state
                    },
                    epoch: self.take_epoch(),
                },
                None => Entry {
                    target,
                    state: ProbeState::default(),
                    epoch: self.take_epoch(),
                },
            };
            self.entries.insert(entry.target.address, entry);
        }
        self.generation += 1;
        let mut view = HealthView::new();
        for (address, entry) in &self.entries {
            if let Some(state) = entry.state.backend_state() {
                view.set(*address, state);
            }
        }
        let changed = view != self.view;
        self.view = view;
        changed
    }

    /// Folds one probe result through the rise/fall hysteresis.
    pub fn record_probe(
        &mut self,
        address: IpAddr,
        epoch: u64,
        success: bool,
        now_ms: u64,
    ) -> ProbeOutcome {
        let Some(entry) = self.entries.get_mut(&address) else {
            return ProbeOutcome::Stale;
        };
        if entry.epoch != epoch {
            return ProbeOutcome::Stale;
        }
        let before = entry.state.healthy;
        entry.state = observe(entry.state, success, now_ms, entry.target.hysteresis);
        match entry.state.backend_state() {
            Some(state) if entry.state.healthy != before => {
                self.view.set(address, state);
                ProbeOutcome::Changed
            }
            _ => ProbeOutcome::Steady,
        }
    }

    /// Applies pushed verdicts: all of them, or none when one names an unknown backend.
    /// A pushed verdict is authoritative: it sets the backend's state at once, and later
    /// probe results count from it (a run of `rise` or `fall` results is needed to overturn
    /// it). Returns how many backends changed verdict, and the reports that contradict the
    /// backend's own latest probes (a probed backend whose last probe failed reported
    /// healthy, or the other way round): applied all the same, and recorded as such.
    pub fn push(&mut self, reports: &[PushedReport], now_ms: u64) -> Result<Pushed, HealthError> {
        if reports.len() > MAX_PUSHED_REPORTS {
            return Err(HealthError::TooManyReports {
                count: reports.len(),
                max: MAX_PUSHED_REPORTS,
            });
        }
        let unknown: BTreeSet<IpAddr> = reports
            .iter()
            .map(|report| report.address)
            .filter(|address| !self.entries.contains_key(address))
            .collect();
        if !unknown.is_empty() {
            return Err(HealthError::UnknownBackends {
                addresses: unknown.into_iter().collect(),
            });
        }
        let mut changed = 0;
        let mut contradicting = Vec::new();
        for report in reports {
            // Checked above: every address has an entry.
            let Some(entry) = self.entries.get_mut(&report.address) else {
                continue;
            };
            let probed = entry.target.check != Check::None;
            let last_probe_says = match (entry.state.successes, entry.state.failures) {
                (0, 0) => None,
                (_, 0) => Some(true),
                _ => Some(false),
            };
            if probed && last_probe_says.is_some_and(|probe| probe != report.healthy) {
                contradicting.push(report.address);
            }
            let flips = entry.state.healthy != Some(report.healthy);
            entry.state = ProbeState {
                healthy: Some(report.healthy),
                successes: 0,
                failures: 0,
                since_ms: if flips { now_ms } else { entry.state.since_ms },
            };
            if flips {
                changed += 1;
                if let Some(state) = entry.state.backend_state() {
                    self.view.set(report.address, state);
                }
            }
        }
        Ok(Pushed {
            changed,
            contradicting,
        })
    }

    fn take_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }
}

/// Clamps every target to the health limits, merges duplicates that agree and refuses the
/// rest: one address has one verdict, so it cannot have two different checks.
pub(crate) fn prepare_targets(targets: Vec<ProbeTarget>) -> Result<Vec<ProbeTarget>, HealthError> {
    let mut prepared: BTreeMap<IpAddr, ProbeTarget> = BTreeMap::new();
    for target in targets {
        let target = target.clamped();
        if let Check::Http { url, path, .. } = &target.check {
            if !is_request_target(path) {
                return Err(HealthError::InvalidHttpPath {
                    url: url.clone(),
                    path: path.clone(),
                });
            }
        }
        match prepared.get(&target.address) {
            Some(first) if first.check != target.check => {
                return Err(HealthError::ConflictingChecks {
                    address: target.address,
                    first: Box::new(first.check.clone()),
                    second: Box::new(target.check),
                });
            }
            // Same address, same check (e.g. a backend shared by two endpoints): the first
            // listing's interval, timeout and rise/fall apply.
            Some(_) => {}
            None => {
                prepared.insert(target.address, target);
            }
        }
    }
    Ok(prepared.into_values().collect())
}

/// An origin-form request target we can put on a request line as is: starts with `/`,
/// visible ASCII only (no spaces, no CR/LF that could split the request).
pub(crate) fn is_request_target(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|byte| byte.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Hysteresis;

    fn target(last: u8, check: &str) -> ProbeTarget {
        let mut target = ProbeTarget::new(
            IpAddr::from([192, 0, 2, last]),
            Check::parse(check).expect("test checks parse"),
        );
        target.hysteresis = Hysteresis { rise: 2, fall: 2 };
        target
    }

    fn table(targets: Vec<ProbeTarget>) -> Table {
        let mut table = Table::default();
        table.replace_targets(prepare_targets(targets).expect("test targets are valid"));
        table
    }

    fn epoch(table: &Table, last: u8) -> u64 {
        table.entries()[&IpAddr::from([192, 0, 2, last])].epoch
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn a_verdict_appears_only_after_rise_results() {
        let mut table = table(vec![target(1, "tcp:192.0.2.1:80")]);
        let epoch = epoch(&table, 1);
        assert_eq!(table.record_probe(A, epoch, true, 10), ProbeOutcome::Steady);
        assert_eq!(table.view().healthy(&A), None);
        assert_eq!(
            table.record_probe(A, epoch, true, 20),
            ProbeOutcome::Changed
        );
        assert_eq!(table.view().healthy(&A), Some(true));
        assert_eq!(table.record_probe(A, epoch, true, 30), ProbeOutcome::Steady);
    }

    #[test]
    fn a_result_from_a_replaced_check_is_dropped() {
        let mut table = table(vec![target(1, "tcp:192.0.2.1:80")]);
        let old = epoch(&table, 1);
        table.replace_targets(vec![target(1, "tcp:192.0.2.1:81")]);
        assert_eq!(table.record_probe(A, old, true, 10), ProbeOutcome::Stale);
        table.replace_targets(vec![]);
        assert_eq!(table.record_probe(A, old, true, 10), ProbeOutcome::Stale);
    }

    #[test]
    fn reload_keeps_history_of_unchanged_targets_and_drops_removed_ones() {
        let mut table = table(vec![target(1, "tcp:192.0.2.1:80")]);
        let epoch_before = epoch(&table, 1);
        table.record_probe(A, epoch_before, true, 10);
        table.record_probe(A, epoch_before, true, 20);
        let mut slower = target(1, "tcp:192.0.2.1:80");
        slower.interval_ms = 5_000;
        let changed =
            table.replace_targets(prepare_targets(vec![slower, target(2, "none")]).expect("valid"));
        assert!(!changed, "same verdicts, nothing to publish");
        assert_eq!(epoch(&table, 1), epoch_before);
        assert_eq!(table.view().backends[&A].since_ms, 20);
        assert!(
            table.replace_targets(vec![target(2, "none")]),
            "A left the view"
        );
        assert_eq!(table.view().healthy(&A), None);
    }

    #[test]
    fn a_changed_check_keeps_the_verdict_but_counts_afresh() {
        let mut table = table(vec![target(1, "tcp:192.0.2.1:80")]);
        let first = epoch(&table, 1);
        table.record_probe(A, first, true, 10);
        table.record_probe(A, first, true, 20);
        table.record_probe(A, first, false, 30);
        assert!(!table.replace_targets(vec![target(1, "http://192.0.2.1/health")]));
        let second = epoch(&table, 1);
        assert_ne!(first, second);
        assert_eq!(table.view().healthy(&A), Some(true));
        assert_eq!(
            table.record_probe(A, second, false, 40),
            ProbeOutcome::Steady
        );
        assert_eq!(
            table.record_probe(A, second, false, 50),
            ProbeOutcome::Changed
        );
    }

    #[test]
    fn a_push_with_an_unknown_address_applies_nothing() {
        let mut table = table(vec![target(1, "none")]);
        let unknown = IpAddr::from([192, 0, 2, 9]);
        let error = table
            .push(
                &[
                    PushedReport {
                        address: A,
                        healthy: false,
                    },
                    PushedReport {
                        address: unknown,
                        healthy: true,
                    },
                ],
                10,
            )
            .unwrap_err();
        assert_eq!(
            error,
            HealthError::UnknownBackends {
                addresses: vec![unknown]
            }
        );
        assert!(error.to_string().contains("192.0.2.9"), "{error}");
        assert_eq!(table.view().healthy(&A), None);
    }

    #[test]
    fn probes_overturn_a_pushed_verdict_only_through_hysteresis() {
        let mut table = table(vec![target(1, "tcp:192.0.2.1:80")]);
        let epoch = epoch(&table, 1);
        table.record_probe(A, epoch, true, 10);
        let report = PushedReport {
            address: A,
            healthy: false,
        };
        // The last probe succeeded: the report is applied and recorded as contradicting it.
        assert_eq!(
            table.push(&[report], 20),
            Ok(Pushed {
                changed: 1,
                contradicting: vec![A]
            })
        );
        assert_eq!(table.view().healthy(&A), Some(false));
        assert_eq!(
            table.push(&[report], 25).map(|pushed| pushed.changed),
            Ok(0),
            "a repeated verdict changes nothing"
        );
        assert_eq!(table.view().backends[&A].since_ms, 20);
        assert_eq!(table.record_probe(A, epoch, true, 30), ProbeOutcome::Steady);
        assert_eq!(
            table.record_probe(A, epoch, true, 40),
            ProbeOutcome::Changed
        );
        assert_eq!(table.view().healthy(&A), Some(true));
    }

    #[test]
    fn one_address_with_two_checks_is_refused_and_equal_duplicates_merge() {
        let merged = prepare_targets(vec![
            target(1, "tcp:192.0.2.1:80"),
            target(1, "tcp:192.0.2.1:80"),
        ])
        .expect("equal duplicates merge");
        assert_eq!(merged.len(), 1);
        let error = prepare_targets(vec![
            target(1, "tcp:192.0.2.1:80"),
            target(1, "tcp:192.0.2.1:81"),
        ])
        .unwrap_err();
        assert!(matches!(error, HealthError::ConflictingChecks { .. }));
        assert!(error.to_string().contains("tcp:192.0.2.1:81"), "{error}");
    }

    #[test]
    fn an_http_path_that_could_split_the_request_is_refused() {
        let mut bad = target(1, "http://192.0.2.1/health");
        bad.check = Check::Http {
            url: "http://192.0.2.1/a b".into(),
            addr: "192.0.2.1:80".parse().expect("literal"),
            path: "/a b".into(),
        };
        assert!(matches!(
            prepare_targets(vec![bad]),
            Err(HealthError::InvalidHttpPath { .. })
        ));
        assert!(is_request_target("/health?full=1"));
        assert!(!is_request_target("/x\r\nHost: evil"));
        assert!(!is_request_target("health"));
    }

    #[test]
    fn targets_are_clamped_to_the_health_limits() {
        let mut wild = target(1, "tcp:192.0.2.1:80");
        wild.interval_ms = 1;
        wild.timeout_ms = 1_000_000;
        wild.hysteresis = Hysteresis { rise: 0, fall: 99 };
        let prepared = prepare_targets(vec![wild]).expect("valid");
        assert_eq!(
            prepared[0].interval_ms,
            model::limits::HEALTH_INTERVAL_MS.min
        );
        assert_eq!(prepared[0].timeout_ms, model::limits::HEALTH_TIMEOUT_MS.max);
        assert_eq!(prepared[0].hysteresis, Hysteresis { rise: 1, fall: 10 });
    }
}
