//! Following the store: the backend's own change feed (etcd's watch), or a thread that polls
//! [`Store::change_counter`] and publishes changes on a `tokio::sync::watch` channel. This
//! is how a server learns that a zone's active version moved, also when another process
//! wrote it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use model::limits;
use tokio::sync::watch;

use crate::Store;

/// The default polling interval, [`limits::STORE_POLL_INTERVAL_MS`].
pub fn default_poll_interval() -> Duration {
    Duration::from_millis(limits::STORE_POLL_INTERVAL_MS.default)
}

/// Stops the polling thread when dropped (and waits for it to end).
pub struct WatchHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Ends the backend's feed, when the store has one.
    feed: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle")
            .field("polling", &self.thread.is_some())
            .field("feed", &self.feed.is_some())
            .finish()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.feed.take() {
            stop();
        }
        // Dropping the sender wakes the thread at once: its wait ends with `Disconnected`.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has already been reported; nothing more to do here.
            let _ = thread.join();
        }
    }
}

/// The store's own [`Store::change_feed`] when it has one (no thread). Otherwise polls
/// `store.change_counter()` every `interval` (clamped to [`limits::STORE_POLL_INTERVAL_MS`])
/// and publishes each new value. The receiver starts at the counter's value when called. A
/// failed poll (store briefly locked) is retried at the next interval. The thread ends when
/// the handle is dropped or every receiver is gone.
///
/// Panics only if the operating system refuses to start a thread.
pub fn watch_changes(
    store: Arc<dyn Store>,
    interval: Duration,
) -> (watch::Receiver<u64>, WatchHandle) {
    if let Some(feed) = store.change_feed() {
        let handle = WatchHandle {
            stop: None,
            thread: None,
            feed: Some(feed.stop),
        };
        return (feed.receiver, handle);
    }
    let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let interval = Duration::from_millis(limits::STORE_POLL_INTERVAL_MS.clamp(Some(interval_ms)));
    let initial = store.change_counter().unwrap_or(0);
    let (sender, receiver) = watch::channel(initial);
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("store-watch".to_string())
        .spawn(move || loop {
            match stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            if sender.is_closed() {
                return;
            }
            if let Ok(counter) = store.change_counter() {
                sender.send_if_modified(|current| {
                    let changed = *current != counter;
                    *current = counter;
                    changed
                });
            }
        })
        .expect("the operating system starts a polling thread");
    (
        receiver,
        WatchHandle {
            stop: Some(stop),
            thread: Some(thread),
            feed: None,
        },
    )
}
