//! The change feed of an etcd store: what followers wait on instead of polling. The same
//! task watches the nodes' health verdicts for the health exchange (another prefix).
//!
//! The counter is the highest mod revision under `zones/` (every ref move, breaker change
//! and canary move rewrites a zone record), the same number [`Store::change_counter`]
//! reads. The task reads it, opens a watch on `zones/` from the revision that read was
//! made at, and raises the counter with every event, so a follower hears of another node's
//! ref move as etcd applies it.
//!
//! A watch can end or go silent: the member it runs on dies or loses its leader (the
//! client asks for a leader, so etcd cancels such a watch), or etcd has compacted the
//! history the watch would resume from (it cancels the watch and names the compacted
//! revision). Each time, the task reads the counter again and tells every receiver, even
//! when the number did not change, so followers re-read what they hold; then it opens a
//! new watch from that read. Every [`limits::STORE_ETCD_RESYNC_MS`] it also reads the
//! counter while the watch is open, which bounds how long a silent watch can hide a move.
//!
//! [`Store::change_counter`]: crate::Store::change_counter

use std::time::Duration;

use etcd_client::{Client, GetOptions, SortOrder, SortTarget, WatchOptions};
use model::limits;
use tokio::sync::watch;

/// Pause before the task tries again after a failed read or a failed watch, doubled up to
/// [`MOST_PAUSE`] while the cluster stays unreachable.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MOST_PAUSE: Duration = Duration::from_secs(1);

/// The counter and the store revision it was read at.
#[derive(Debug, Clone, Copy)]
struct Read {
    counter: u64,
    revision: i64,
}

/// Starts a feed on `runtime`, its receiver at `initial` (the counter as the caller read
/// it). The task ends when the receiver is gone, when it is aborted (which closes the
/// channel) or when the runtime stops.
pub(super) fn start(
    runtime: &tokio::runtime::Handle,
    client: Client,
    zones_prefix: String,
    initial: u64,
) -> (watch::Receiver<u64>, tokio::task::AbortHandle) {
    let (sender, receiver) = watch::channel(initial);
    let task = runtime.spawn(run(client, zones_prefix, sender));
    (receiver, task.abort_handle())
}

async fn run(client: Client, prefix: String, sender: watch::Sender<u64>) {
    let resync = Duration::from_millis(limits::STORE_ETCD_RESYNC_MS.default);
    let mut pause = FIRST_PAUSE;
    // Whether the feed has watched before: a new watch after one ended tells every
    // receiver, whatever the counter says.
    let mut resumed = false;
    loop {
        if sender.is_closed() {
            return;
        }
        let read = match read_counter(&client, &prefix).await {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(%error, "etcd change feed: cannot read the counter; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MOST_PAUSE);
                continue;
            }
        };
        if resumed {
            // Told even when unchanged: whatever happened while the feed was not watching
            // is re-read by the followers.
            sender.send_modify(|counter| *counter = (*counter).max(read.counter));
        } else {
            sender.send_if_modified(|counter| raise(counter, read.counter));
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(read.revision + 1);
        let mut stream = match client
            .watch_client()
            .watch(prefix.as_bytes().to_vec(), Some(options))
            .await
        {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "etcd change feed: cannot open the watch; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MOST_PAUSE);
                continue;
            }
        };
        pause = FIRST_PAUSE;
        resumed = true;
        loop {
            tokio::select! {
                message = stream.message() => {
                    let response = match message {
                        Ok(Some(response)) => response,
                        Ok(None) => {
                            tracing::debug!("etcd change feed: the watch ended; re-reading");
                            break;
                        }
                        Err(error) => {
                            tracing::debug!(%error, "etcd change feed: the watch failed; re-reading");
                            break;
                        }
                    };
                    if response.canceled() {
                        tracing::info!(
                            compacted = response.compact_revision(),
                            reason = response.cancel_reason(),
                            "etcd change feed: etcd cancelled the watch; re-reading everything"
                        );
                        break;
                    }
                    let newest = response
                        .events()
                        .iter()
                        .filter_map(|event| event.kv())
                        .map(|kv| u64::try_from(kv.mod_revision()).unwrap_or(0))
                        .max();
                    if let Some(newest) = newest {
                        sender.send_if_modified(|counter| raise(counter, newest));
                    }
                }
                () = tokio::time::sleep(resync) => {
                    match read_counter(&client, &prefix).await {
                        Ok(read) => {
                            sender.send_if_modified(|counter| raise(counter, read.counter));
                        }
                        Err(error) => {
                            tracing::debug!(%error, "etcd change feed: the periodic read failed");
                        }
                    }
                }
                () = sender.closed() => return,
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// Raises `counter` to `to`; whether it changed.
fn raise(counter: &mut u64, to: u64) -> bool {
    let raised = to > *counter;
    if raised {
        *counter = to;
    }
    raised
}

/// The highest mod revision under `prefix` and the revision the read was made at.
async fn read_counter(client: &Client, prefix: &str) -> Result<Read, etcd_client::Error> {
    let options = GetOptions::new()
        .with_prefix()
        .with_keys_only()
        .with_sort(SortTarget::Mod, SortOrder::Descend)
        .with_limit(1);
    let response = client
        .kv_client()
        .get(prefix.as_bytes().to_vec(), Some(options))
        .await?;
    let counter = response
        .kvs()
        .first()
        .map_or(0, |kv| u64::try_from(kv.mod_revision()).unwrap_or(0));
    let revision = response.header().map_or(0, |header| header.revision());
    Ok(Read { counter, revision })
}

#[cfg(test)]
mod tests {
    use super::raise;

    #[test]
    fn the_counter_only_rises() {
        let mut counter = 5;
        assert!(raise(&mut counter, 7));
        assert_eq!(counter, 7);
        assert!(!raise(&mut counter, 7));
        assert!(!raise(&mut counter, 3));
        assert_eq!(counter, 7);
    }
}
