//! The store contract suite, stamped onto every implementation: SQLite, memory and etcd.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use store::contract::Backend;
use store::etcd_cluster::EtcdCluster;
use store::{EtcdConfig, EtcdStore, MemoryStore, SqliteStore, Store};

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

/// The etcd every etcd backend of this test binary shares: the one `scripts/test` started
/// (`DNSWARD_TEST_ETCD=host:port`), else one member started here.
fn etcd_endpoints() -> Vec<String> {
    static CLUSTER: OnceLock<(Option<EtcdCluster>, Vec<String>)> = OnceLock::new();
    let (_, endpoints) = CLUSTER.get_or_init(|| match std::env::var("DNSWARD_TEST_ETCD") {
        Ok(endpoints) => (None, endpoints.split(',').map(str::to_string).collect()),
        Err(_) => {
            let cluster = EtcdCluster::start(1);
            let endpoints = cluster.endpoints();
            (Some(cluster), endpoints)
        }
    });
    endpoints.clone()
}

/// A fresh store on etcd: its own key prefix, so backends never see each other's keys.
struct EtcdBackend {
    config: EtcdConfig,
}

impl EtcdBackend {
    fn new() -> EtcdBackend {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut config = EtcdConfig::new(etcd_endpoints());
        config.prefix = format!(
            "/contract-{}-{}/",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        EtcdBackend { config }
    }
}

impl Backend for EtcdBackend {
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(EtcdStore::open(&self.config).expect("the store opens"))
    }

    fn torture_command(&self) -> Option<Command> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_store-torture"));
        command
            .arg("--etcd")
            .arg(self.config.endpoints.join(","))
            .arg(&self.config.prefix);
        Some(command)
    }
}

store::contract_suite!(etcd, EtcdBackend::new);
