//! The follower of a node: [`sync`] whenever the store changes (and a whole encoding of
//! carried answers after a quiet spell), with the encoder on a thread of its own.

use std::sync::Arc;

use server::Catalog;
use store::{watch_changes, WatchHandle};

use crate::encoder::Encoder;
use crate::sync::{encode_carried, sync, Sources, QUIET_BEFORE_ENCODING};
use crate::{FollowError, Target};

/// Keeps the follower running; dropping it stops it.
pub struct Follower {
    _watch: WatchHandle,
    task: tokio::task::JoinHandle<()>,
    encoder: Arc<Encoder>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
        // The encoder's thread ends after the encoding in hand, if any; not waited for.
        self.encoder.stop();
    }
}

/// Loads every zone's `target` version now, then follows changes in the background.
///
/// `sources.zone_files`: the configuration's zone files, served (with a loud error) for a
/// zone none of whose stored versions verifies, when nothing of it is served yet.
/// `on_end` runs if the follower ever stops on its own (the store watch ended): a node
/// cannot serve correctly without it.
pub async fn start(
    sources: Sources,
    catalog: Arc<Catalog>,
    target: Target,
    cname_chain_length: usize,
    on_end: impl FnOnce() + Send + 'static,
) -> Result<Follower, FollowError> {
    let (mut changes, watch) = watch_changes(sources.store.clone(), store::default_poll_interval());
    let encoder = Arc::new(Encoder::new(cname_chain_length));
    let thread = Arc::clone(&encoder);
    std::thread::Builder::new()
        .name("dnsward-encoder".into())
        .spawn(move || thread.run())
        .map_err(FollowError::Thread)?;
    run_sync(sources.clone(), catalog.clone(), encoder.clone(), target).await?;
    let follower = Arc::clone(&encoder);
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::time::timeout(QUIET_BEFORE_ENCODING, async {
                tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    () = follower.finished.notified() => true,
                }
            })
            .await;
            match event {
                Ok(false) => break,
                Ok(true) => {
                    if let Err(error) =
                        run_sync(sources.clone(), catalog.clone(), follower.clone(), target).await
                    {
                        tracing::error!(%error, ?target, "could not follow the store; the last loaded versions keep serving");
                    }
                }
                Err(_quiet) => encode_carried(&catalog, &follower),
            }
        }
        // The store watcher is gone: nothing would bring new versions to the wire again.
        on_end();
    });
    Ok(Follower {
        _watch: watch,
        task,
        encoder,
    })
}

/// [`sync`] on a blocking thread.
async fn run_sync(
    sources: Sources,
    catalog: Arc<Catalog>,
    encoder: Arc<Encoder>,
    target: Target,
) -> Result<(), FollowError> {
    tokio::task::spawn_blocking(move || sync(&sources, &catalog, &encoder, target))
        .await
        .map_err(|error| FollowError::Task(error.to_string()))?
        .map_err(FollowError::Store)
}
