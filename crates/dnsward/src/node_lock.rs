//! Which store files a running node serves: a lock file beside the store, `STORE.node`,
//! held with a shared lock by every `dnsward run` and `dnsward serve --store` for as long as
//! they run, and written with who holds it (process id, API address). The lock goes with
//! the process, however it ends (the kernel drops it), so a killed node never blocks anyone.
//!
//! Commands that write a store around a node's guard (`zone import`) take it exclusively
//! first: with a node running they are refused with a message that names the node and the
//! guarded command to use instead.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::CliError;

/// A held lock on a store's lock file; released when dropped (or the process ends).
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
}

/// The lock file of the store at `store`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".node");
    PathBuf::from(name)
}

fn open(store: &Path) -> Result<File, CliError> {
    let path = lock_path(store);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| CliError::Io { path, source })
}

impl NodeLock {
    /// Marks the store as served by this process (`api`: its API address, if any), beside
    /// other nodes serving it too.
    pub fn serving(store: &Path, api: Option<&str>) -> Result<NodeLock, CliError> {
        let mut file = open(store)?;
        file.lock_shared().map_err(|source| CliError::Io {
            path: lock_path(store),
            source,
        })?;
        let who = format!(
            "pid {}{}\n",
            std::process::id(),
            api.map(|api| format!(", API http://{api}"))
                .unwrap_or_default()
        );
        // Best effort: the lock is what counts, the text only names the node.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(who.as_bytes()));
        Ok(NodeLock { _file: file })
    }

    /// The store to itself, for `what` (e.g. "zone import"): refused while a node serves
    /// it.
    pub fn exclusive(store: &Path, what: &str) -> Result<NodeLock, CliError> {
        let mut file = open(store)?;
        match file.try_lock() {
            Ok(()) => Ok(NodeLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = who.trim();
                let who = if who.is_empty() {
                    "a running node".to_string()
                } else {
                    format!("a running node ({who})")
                };
                Err(CliError::Usage {
                    message: format!(
                        "{}: {what} refused: the store is served by {who}, and writing it \
                         directly would skip the node's guard; use `dnsward apply ZONE FILE \
                         --reason ... --api URL` against the node instead (judged by the \
                         guard), or stop the node first",
                        store.display()
                    ),
                })
            }
            Err(TryLockError::Error(source)) => Err(CliError::Io {
                path: lock_path(store),
                source,
            }),
        }
    }
}
