//! The store contract suite, stamped onto every implementation: SQLite and memory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use store::contract::Backend;
use store::{MemoryStore, SqliteStore, Store};

/// A fresh SQLite file in its own scratch directory, removed when dropped.
struct SqliteBackend {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SqliteBackend {
    fn new() -> SqliteBackend {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = dir.path().join("store.db");
        SqliteBackend { _dir: dir, path }
    }
}

impl Backend for SqliteBackend {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path).expect("the store opens"))
    }

    fn torture_command(&self) -> Option<Command> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_store-torture"));
        command.arg(&self.path);
        Some(command)
    }
}

store::contract_suite!(sqlite, SqliteBackend::new);

/// A fresh in-memory store; every `open` is another client of the same data.
struct MemoryBackend {
    store: MemoryStore,
}

impl Backend for MemoryBackend {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.store.client())
    }

    fn torture_command(&self) -> Option<Command> {
        // Nothing of an in-memory store survives its process.
        None
    }
}

store::contract_suite!(
    memory,
    || MemoryBackend {
        store: MemoryStore::new()
    },
    in_process
);
