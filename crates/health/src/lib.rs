//! # health — probes and pushed reports → the debounced [`HealthView`]
//!
//! First stage of the flow: `backends ──probe──▶ health ──HealthView──▶ planner`. The
//! planner reads the view; this crate is the async shell that fills it.
//!
//! * [`HealthMonitor`]: started with a list of [`ProbeTarget`]s, it runs one scheduler task
//!   that probes each target every `interval_ms` (never two probes of one target at once),
//!   at most `max_concurrent_probes` in flight (a semaphore), each bounded by `timeout_ms`.
//!   TCP checks succeed when a connection opens; HTTP checks when `GET path` answers 2xx
//!   (a minimal HTTP/1.1 client, [`probe`]). `Check::None` is never probed.
//! * [`PushedReport`]: an external, authoritative verdict (load-balancer feeds, the HTTP
//!   API) applied with [`HealthMonitor::push`]; later probe results count from it.
//! * [`HealthMonitor::set_targets`] reloads the target set, keeping the history of targets
//!   whose check did not change; [`Counters`] are metrics-ready totals.
//!
//! The design decision to know: every result, probe or pushed, goes through one table
//! (`table.rs`, synchronous, no I/O) under one lock, and through `model::observe`'s
//! rise/fall hysteresis; the [`HealthView`] is published on the watch channel **only when
//! a backend's verdict changes** (a first verdict, a flip, a pushed change, a backend
//! leaving the view). Consumers re-plan on every message, so a message means a real change.
//! The `clock` seam stamps verdicts (`since_ms`); probe scheduling uses tokio's timer.

pub mod probe;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use model::limits::{self, Limit};
use model::{Check, HealthView, Hysteresis};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::table::{prepare_targets, ProbeOutcome, Table};

/// Probes in flight at once, across all targets. Bounds sockets and tasks when many
/// backends share one interval.
pub const HEALTH_MAX_CONCURRENT_PROBES: Limit = Limit {
    name: "health.max_concurrent_probes",
    default: 64,
    min: 1,
    max: 4_096,
};

/// Most reports accepted in one [`HealthMonitor::push`]; a feed that sends more is broken.
pub const MAX_PUSHED_REPORTS: usize = 65_536;

/// One backend to watch: where its verdict goes (`address`) and how it is learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The backend's address: the key of its verdict in the [`HealthView`].
    pub address: IpAddr,
    pub check: Check,
    /// Time from the start of one probe to the start of the next.
    pub interval_ms: u64,
    /// How long one probe may take before it counts as a failure.
    pub timeout_ms: u64,
    pub hysteresis: Hysteresis,
}

impl ProbeTarget {
    /// A target with the default interval, timeout, rise and fall.
    pub fn new(address: IpAddr, check: Check) -> ProbeTarget {
        ProbeTarget {
            address,
            check,
            interval_ms: limits::HEALTH_INTERVAL_MS.default,
            timeout_ms: limits::HEALTH_TIMEOUT_MS.default,
            hysteresis: Hysteresis::default(),
        }
    }

    /// The same target with every value clamped to its `model::limits` bound. The monitor
    /// clamps what it is given; this is for callers that want to see the values used.
    pub fn clamped(self) -> ProbeTarget {
        ProbeTarget {
            interval_ms: limits::HEALTH_INTERVAL_MS.clamp(Some(self.interval_ms)),
            timeout_ms: limits::HEALTH_TIMEOUT_MS.clamp(Some(self.timeout_ms)),
            hysteresis: Hysteresis::clamped(
                Some(u64::from(self.hysteresis.rise)),
                Some(u64::from(self.hysteresis.fall)),
            ),
            ..self
        }
    }
}

/// An external verdict on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushedReport {
    pub address: IpAddr,
    pub healthy: bool,
}

/// Totals since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Probes that finished (success, failure or timeout).
    pub probes_run: u64,
    /// Probes that failed or timed out.
    pub probe_failures: u64,
    /// Verdict changes of one backend: first verdicts, flips, pushed changes.
    pub flips: u64,
    /// Pushed reports accepted.
    pub reports_pushed: u64,
}

/// What a caller of this crate can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    #[error(
        "health report names {} not configured as a backend: {}; report only configured \
         backend addresses (nothing from this report was applied)",
        if addresses.len() == 1 { "an address" } else { "addresses" },
        list(addresses)
    )]
    UnknownBackends { addresses: Vec<IpAddr> },
    #[error("health report has {count} entries, more than the {max} accepted at once; split it")]
    TooManyReports { count: usize, max: usize },
    #[error(
        "backend {address} has two different checks, \"{first}\" and \"{second}\"; one \
         address has one health verdict, so give every listing of it the same check"
    )]
    ConflictingChecks {
        address: IpAddr,
        // Boxed: a check is large and errors travel in every `Result` of this crate.
        first: Box<Check>,
        second: Box<Check>,
    },
    #[error(
        "check \"{url}\": path {path:?} cannot be sent in an HTTP request line; use a path \
         that starts with '/' and has no spaces or control characters"
    )]
    InvalidHttpPath { url: String, path: String },
}

fn list(addresses: &[IpAddr]) -> String {
    let texts: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    texts.join(", ")
}

/// Watches backends and publishes their debounced health. Dropping it stops its tasks.
pub struct HealthMonitor {
    shared: Arc<Shared>,
    scheduler: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    table: Mutex<Table>,
    view_sender: watch::Sender<HealthView>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    semaphore: Arc<Semaphore>,
    /// Wakes the scheduler after a reload or on shutdown (a stored permit is never lost).
    wake: Notify,
    stopping: AtomicBool,
    counters: AtomicCounters,
}

#[derive(Default)]
struct AtomicCounters {
    probes_run: AtomicU64,
    probe_failures: AtomicU64,
    flips: AtomicU64,
    reports_pushed: AtomicU64,
}

impl HealthMonitor {
    /// Whether the probe scheduler ended on its own (it runs until [`Self::shutdown`]).
    pub fn has_ended(&self) -> bool {
        self.scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
    }

    /// Starts watching `targets` (clamped to the health limits) and returns the monitor and
    /// a receiver of the view, which starts empty: no backend has a verdict yet.
    /// `clock` returns now in milliseconds (the seam tests and the simulation replace);
    /// `max_concurrent_probes` is clamped to [`HEALTH_MAX_CONCURRENT_PROBES`].
    ///
    /// Refuses one address with two different checks, and HTTP paths that cannot be sent.
    /// Must be called inside a tokio runtime.
    pub fn start(
        targets: Vec<ProbeTarget>,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
        max_concurrent_probes: usize,
    ) -> Result<(HealthMonitor, watch::Receiver<HealthView>), HealthError> {
        let targets = prepare_targets(targets)?;
        let mut table = Table::default();
        table.replace_targets(targets);
        let (view_sender, receiver) = watch::channel(table.view().clone());
        let permits = HEALTH_MAX_CONCURRENT_PROBES.clamp(Some(max_concurrent_probes as u64));
        let shared = Arc::new(Shared {
            table: Mutex::new(table),
            view_sender,
            clock: Box::new(clock),
            // The limit's max (4,096) fits in usize on every target we build for.
            semaphore: Arc::new(Semaphore::new(
                usize::try_from(permits).expect("at most 4096 permits"),
            )),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            counters: AtomicCounters::default(),
        });
        let scheduler = tokio::spawn(run_scheduler(Arc::clone(&shared)));
        let monitor = HealthMonitor {
            shared,
            scheduler: Mutex::new(Some(scheduler)),
        };
        Ok((monitor, receiver))
    }

    /// Applies external verdicts at once, all or none: an address that is not a target is
    /// an error naming it. Later probe results of a probed backend count from the pushed
    /// verdict (it takes `rise` or `fall` results in a row to overturn it). Publishes when
    /// a verdict changed.
    /// Returns the reports that contradict the backend's own latest probes.
    pub fn push(&self, reports: Vec<PushedReport>) -> Result<Vec<IpAddr>, HealthError> {
        let now_ms = (self.shared.clock)();
        let mut table = self.shared.lock_table();
        let table::Pushed {
            changed,
            contradicting,
        } = table.push(&reports, now_ms)?;
        let counters = &self.shared.counters;
        counters
            .reports_pushed
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        if changed > 0 {
            counters.flips.fetch_add(changed as u64, Ordering::Relaxed);
            self.shared.publish(&table);
        }
        Ok(contradicting)
    }

    /// Replaces the targets (config reload). A target whose address and check are unchanged
    /// keeps its verdict and history and its probe schedule; a changed check keeps the
    /// verdict and starts counting afresh; removed targets leave the view. Nothing changes
    /// when the new set is refused.
    pub fn set_targets(&self, targets: Vec<ProbeTarget>) -> Result<(), HealthError> {
        let targets = prepare_targets(targets)?;
        let mut table = self.shared.lock_table();
        if table.replace_targets(targets) {
            self.shared.publish(&table);
        }
        drop(table);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The current view (the last one published).
    pub fn view(&self) -> HealthView {
        self.shared.view_sender.borrow().clone()
    }

    /// Another receiver of the view.
    pub fn subscribe(&self) -> watch::Receiver<HealthView> {
        self.shared.view_sender.subscribe()
    }

    /// Totals since start.
    pub fn counters(&self) -> Counters {
        let counters = &self.shared.counters;
        Counters {
            probes_run: counters.probes_run.load(Ordering::Relaxed),
            probe_failures: counters.probe_failures.load(Ordering::Relaxed),
            flips: counters.flips.load(Ordering::Relaxed),
            reports_pushed: counters.reports_pushed.load(Ordering::Relaxed),
        }
    }

    /// Stops probing and waits for the scheduler to end; probes in flight are cancelled.
    /// Pushes and [`HealthMonitor::view`] keep working on the last state.
    pub async fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        let scheduler = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(scheduler) = scheduler {
            // Ends by itself now; an error only means it was already cancelled.
            let _ = scheduler.await;
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        let scheduler = self
            .scheduler
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(scheduler) = scheduler {
            // Aborting the scheduler drops its JoinSet, which aborts the probes in flight.
            scheduler.abort();
        }
    }
}

impl fmt::Debug for HealthMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthMonitor")
            .field("view", &self.view())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock_table(&self) -> MutexGuard<'_, Table> {
        // Table methods leave it consistent at every return, so a panic elsewhere while
        // the lock was held does not leave a half-applied change behind.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the table's view. Called with the table locked, so views go out in the order
    /// the changes were made.
    fn publish(&self, table: &Table) {
        self.view_sender.send_replace(table.view().clone());
    }

    fn record_probe(&self, address: IpAddr, epoch: u64, success: bool) {
        let counters = &self.counters;
        counters.probes_run.fetch_add(1, Ordering::Relaxed);
        if !success {
            counters.probe_failures.fetch_add(1, Ordering::Relaxed);
        }
        let now_ms = (self.clock)();
        let mut table = self.lock_table();
        if table.record_probe(address, epoch, success, now_ms) == ProbeOutcome::Changed {
            counters.flips.fetch_add(1, Ordering::Relaxed);
            self.publish(&table);
        }
    }
}

/// The scheduler's view of one probed target.
struct Slot {
    epoch: u64,
    interval: Duration,
    /// When the next probe starts (counted from the start of the previous one).
    due: Instant,
    in_flight: bool,
}

/// What a probe task hands back.
struct ProbeResult {
    address: IpAddr,
    epoch: u64,
    success: bool,
}

/// Probe schedule of the targets: `due` holds `(due, address)` of every slot not in flight,
/// so finding what to start costs only the probes started.
#[derive(Default)]
struct Schedule {
    slots: BTreeMap<IpAddr, Slot>,
    due: BTreeSet<(Instant, IpAddr)>,
    generation: Option<u64>,
}

impl Schedule {
    /// Brings the slots in line with the table after a reload.
    fn reconcile(&mut self, table: &Table, now: Instant) {
        if self.generation == Some(table.generation()) {
            return;
        }
        self.generation = Some(table.generation());
        let probed: BTreeMap<IpAddr, (u64, Duration)> = table
            .entries()
            .iter()
            .filter(|(_, entry)| entry.target.check != Check::None)
            .map(|(address, entry)| {
                let interval = Duration::from_millis(entry.target.interval_ms);
                (*address, (entry.epoch, interval))
            })
            .collect();
        self.slots.retain(|address, _| probed.contains_key(address));
        self.due.retain(|(_, address)| probed.contains_key(address));
        for (address, (epoch, interval)) in probed {
            match self.slots.get_mut(&address) {
                Some(slot) if slot.epoch == epoch => {
                    slot.interval = interval;
                    let sooner = now + interval;
                    if !slot.in_flight && slot.due > sooner {
                        self.due.remove(&(slot.due, address));
                        slot.due = sooner;
                        self.due.insert((sooner, address));
                    }
                }
                previous => {
                    // New target or new check: probe now. A probe of the old check still
                    // in flight finishes on its own; its result is dropped as stale.
                    if let Some(old) = previous {
                        self.due.remove(&(old.due, address));
                    }
                    self.slots.insert(
                        address,
                        Slot {
                            epoch,
                            interval,
                            due: now,
                            in_flight: false,
                        },
                    );
                    self.due.insert((now, address));
                }
            }
        }
    }

    /// Takes the slots due at `now`, marking them in flight and setting their next start.
    fn take_due(&mut self, now: Instant) -> Vec<(IpAddr, u64)> {
        let mut started = Vec::new();
        while let Some(&(due, address)) = self.due.first() {
            if due > now {
                break;
            }
            self.due.pop_first();
            if let Some(slot) = self.slots.get_mut(&address) {
                slot.in_flight = true;
                slot.due = now + slot.interval;
                started.push((address, slot.epoch));
            }
        }
        started
    }

    /// A probe of `address` under `epoch` ended: its slot may be scheduled again.
    fn finished(&mut self, address: IpAddr, epoch: u64) {
        if let Some(slot) = self.slots.get_mut(&address) {
            if slot.epoch == epoch && slot.in_flight {
                slot.in_flight = false;
                self.due.insert((slot.due, address));
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.first().map(|&(due, _)| due)
    }
}

/// The one scheduler task: starts due probes, folds their results, re-reads the targets
/// when woken. Ends when the monitor stops; dropping its JoinSet cancels the probes.
async fn run_scheduler(shared: Arc<Shared>) {
    let mut schedule = Schedule::default();
    let mut probes: JoinSet<ProbeResult> = JoinSet::new();
    // Which probe a task is, so a probe task that panicked still frees its slot.
    let mut running: HashMap<tokio::task::Id, (IpAddr, u64)> = HashMap::new();
    while !shared.stopping.load(Ordering::Acquire) {
        let now = Instant::now();
        let starts: Vec<(IpAddr, u64, Check, Duration)> = {
            let table = shared.lock_table();
            schedule.reconcile(&table, now);
            schedule
                .take_due(now)
                .into_iter()
                .filter_map(|(address, epoch)| {
                    let entry = table.entries().get(&address)?;
                    let timeout = Duration::from_millis(entry.target.timeout_ms);
                    Some((address, epoch, entry.target.check.clone(), timeout))
                })
                .collect()
        };
        for (address, epoch, check, timeout) in starts {
            let semaphore = Arc::clone(&shared.semaphore);
            let task = probes.spawn(async move {
                let success = match semaphore.acquire_owned().await {
                    // The timeout starts once the probe may run, not while it queues.
                    Ok(_permit) => tokio::time::timeout(timeout, probe::run(&check))
                        .await
                        .unwrap_or(false),
                    // The semaphore is never closed; treat it as a failed probe anyway.
                    Err(_) => false,
                };
                ProbeResult {
                    address,
                    epoch,
                    success,
                }
            });
            running.insert(task.id(), (address, epoch));
        }
        let next_due = schedule.next_due();
        tokio::select! {
            () = shared.wake.notified() => {}
            () = sleep_until(next_due) => {}
            Some(joined) = probes.join_next_with_id() => {
                let (id, result) = match joined {
                    Ok((id, result)) => (id, Some(result)),
                    Err(error) => {
                        tracing::error!(%error, "health probe task failed; counted as a failed probe");
                        (error.id(), None)
                    }
                };
                if let Some((address, epoch)) = running.remove(&id) {
                    let success = result.is_some_and(|result| {
                        debug_assert_eq!((result.address, result.epoch), (address, epoch));
                        result.success
                    });
                    shared.record_probe(address, epoch, success);
                    schedule.finished(address, epoch);
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_address_error_names_every_address_and_says_what_to_do() {
        let error = HealthError::UnknownBackends {
            addresses: vec![
                "192.0.2.7".parse().expect("literal"),
                "2001:db8::7".parse().expect("literal"),
            ],
        };
        let text = error.to_string();
        assert!(text.contains("192.0.2.7, 2001:db8::7"), "{text}");
        assert!(
            text.contains("nothing from this report was applied"),
            "{text}"
        );
    }

    #[test]
    fn a_new_target_uses_the_default_limits() {
        let target = ProbeTarget::new("192.0.2.1".parse().expect("literal"), Check::None);
        assert_eq!(target.interval_ms, 1_000);
        assert_eq!(target.timeout_ms, 500);
        assert_eq!(target.clone().clamped(), target);
    }
}
