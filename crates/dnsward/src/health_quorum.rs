//! Health by quorum, on a store several nodes share: each node publishes its own verdicts
//! (its health monitor's view) to the store under its name, leased so that a dead node's
//! verdicts expire, and plans from every live node's verdicts combined by
//! [`model::health::combine`] with the `[health] quorum` policy (majority by default): a
//! node cut off from the backends cannot remove them alone.
//!
//! The node's own view goes into the combination at once (not after a round trip through
//! the store); the others' are read when the store's health feed says one published (etcd's
//! watch), and every [`EXCHANGE_POLL_MS`] in any case. When the store cannot be read, the
//! node plans from its own view (its writes fail anyway until the store answers).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use model::limits::Limit;
use model::{HealthView, Quorum};
use store::Store;
use tokio::sync::watch;

/// How often a node reads the other nodes' verdicts.
pub const EXCHANGE_POLL_MS: Limit = Limit {
    name: "health.exchange_poll_ms",
    default: 200,
    min: 10,
    max: 60_000,
};

/// How often a node publishes its verdicts when they do not change (it publishes at once
/// when they do): the lease is renewed this way.
pub const PUBLISH_INTERVAL_MS: Limit = Limit {
    name: "health.publish_interval_ms",
    default: 1_000,
    min: 100,
    max: 60_000,
};

/// How long a node's published verdicts count after its last publication: a node that
/// stops (dies, is cut off from the store) stops counting after this.
pub const VERDICT_TTL_MS: Limit = Limit {
    name: "health.verdict_ttl_ms",
    default: 5_000,
    min: 2_000,
    max: 600_000,
};

/// Every live node's latest verdicts, this node's first: what `status` shows.
pub type Checkers = Arc<Mutex<Vec<(String, HealthView)>>>;

/// Starts the exchange; returns the combined view to plan from, the checkers' verdicts, and
/// the task (it ends when `own` closes).
pub fn start(
    store: Arc<dyn Store>,
    node: String,
    quorum: Quorum,
    mut own: watch::Receiver<HealthView>,
) -> (
    watch::Receiver<HealthView>,
    Checkers,
    tokio::task::JoinHandle<()>,
) {
    let (sender, combined) = watch::channel(own.borrow().clone());
    let checkers: Checkers = Arc::new(Mutex::new(Vec::new()));
    let shown = Arc::clone(&checkers);
    let poll = Duration::from_millis(EXCHANGE_POLL_MS.default);
    let refresh = Duration::from_millis(PUBLISH_INTERVAL_MS.default);
    let feed = store.health_feed();
    let task = tokio::spawn(async move {
        // Ends the feed's watch when the exchange ends.
        let (mut published_elsewhere, _stop) = match feed {
            Some(feed) => (Some(feed.receiver), Some(StopOnDrop(Some(feed.stop)))),
            None => (None, None),
        };
        let mut published: Option<Instant> = None;
        let mut changed = true;
        loop {
            let view = own.borrow_and_update().clone();
            if changed || published.is_none_or(|at| at.elapsed() >= refresh) {
                let (store, node, view) = (Arc::clone(&store), node.clone(), view.clone());
                let result = tokio::task::spawn_blocking(move || {
                    store.publish_health(&node, &view, VERDICT_TTL_MS.default)
                })
                .await;
                match result {
                    Ok(Ok(())) => published = Some(Instant::now()),
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "health verdicts not published; retrying")
                    }
                    Err(error) => tracing::error!(%error, "health publisher failed"),
                }
            }
            let reader = Arc::clone(&store);
            let others: Vec<(String, HealthView)> =
                match tokio::task::spawn_blocking(move || reader.health_verdicts()).await {
                    Ok(Ok(verdicts)) => verdicts
                        .into_iter()
                        .filter(|(name, _)| *name != node)
                        .collect(),
                    _ => Vec::new(),
                };
            let mut views: Vec<&HealthView> = vec![&view];
            views.extend(others.iter().map(|(_, view)| view));
            let next = model::health::combine(&views, quorum);
            {
                let mut checkers = shown
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                checkers.clear();
                checkers.push((node.clone(), view.clone()));
                checkers.extend(others.iter().cloned());
            }
            sender.send_if_modified(|current| {
                let differs = *current != next;
                if differs {
                    *current = next;
                }
                differs
            });
            changed = tokio::select! {
                result = own.changed() => {
                    if result.is_err() {
                        return;
                    }
                    true
                }
                () = elsewhere(&mut published_elsewhere) => false,
                () = tokio::time::sleep(poll) => false,
            };
        }
    });
    (combined, checkers, task)
}

/// Resolves when the health feed says another node published; never without a feed (or
/// once it has closed: the poll goes on).
async fn elsewhere(feed: &mut Option<watch::Receiver<u64>>) {
    match feed {
        Some(receiver) => {
            if receiver.changed().await.is_err() {
                *feed = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Runs a feed's stop when dropped.
struct StopOnDrop(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

/// The checkers' verdicts per backend, for `status`: node → address → healthy.
pub fn verdicts(checkers: &Checkers) -> Vec<(String, BTreeMap<String, bool>)> {
    checkers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(node, view)| {
            (
                node.clone(),
                view.backends
                    .iter()
                    .map(|(address, state)| (address.to_string(), state.healthy))
                    .collect(),
            )
        })
        .collect()
}
