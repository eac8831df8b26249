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

#[test]
fn etcd_nodes_share_their_health_verdicts_and_a_silent_nodes_expire() {
    let backend = EtcdBackend::new();
    let (one, two, reader) = (backend.open(), backend.open(), backend.open());
    let mut down = model::HealthView::new();
    down.set(
        "192.0.2.1".parse().unwrap(),
        model::BackendState {
            healthy: false,
            since_ms: 5,
        },
    );
    one.publish_health("node-one", &down, 60_000).unwrap();
    two.publish_health("node-two", &model::HealthView::new(), 2_000)
        .unwrap();
    let verdicts = reader.health_verdicts().unwrap();
    let names: Vec<&str> = verdicts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["node-one", "node-two"]);
    assert_eq!(verdicts[0].1, down);
    // node-two stops publishing: its lease runs out and its verdicts go.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reader.health_verdicts().unwrap().len() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "node-two's verdicts never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_store_one_node_uses_alone_keeps_no_health_verdicts() {
    let backend = SqliteBackend::new();
    let store = backend.open();
    store
        .publish_health("node", &model::HealthView::new(), 1_000)
        .unwrap();
    assert!(store.health_verdicts().unwrap().is_empty());
}

#[test]
fn an_etcd_change_feed_outlives_its_member_restarting_and_tells_followers_to_re_read() {
    use std::time::{Duration, Instant};
    let mut cluster = EtcdCluster::start(1);
    let mut config = EtcdConfig::new(cluster.endpoints());
    config.prefix = "/feed/".to_string();
    let reader: Arc<dyn Store> = Arc::new(EtcdStore::open(&config).expect("the store opens"));
    let writer = EtcdStore::open(&config).expect("the store opens");
    let (mut changes, _handle) = store::watch_changes(Arc::clone(&reader), Duration::from_secs(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let wait_told = |changes: &mut tokio::sync::watch::Receiver<u64>, what: &str| {
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), changes.changed())
                .await
                .unwrap_or_else(|_| panic!("the feed never told its follower {what}"))
                .expect("the feed is running");
        });
        *changes.borrow_and_update()
    };
    let zone = store::contract::fixtures::name("feed.test.");
    let commit = |variant: u8| {
        let content = store::contract::fixtures::content("feed.test.", 1, 3, variant);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let base = writer.refs(&zone).ok().map(|refs| refs.active);
            let result = base.map(|base| {
                writer.commit(store::contract::fixtures::commit(
                    &content,
                    base,
                    model::RefName::Active,
                ))
            });
            match result {
                Some(Ok(version)) => return version,
                other => assert!(
                    Instant::now() < deadline,
                    "no commit within 30 s: {other:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    commit(0);
    let first = wait_told(&mut changes, "of a commit made through another instance");
    assert_eq!(first, reader.change_counter().unwrap());

    // The member dies and comes back: the watch ended with it, so once the member answers
    // the feed tells its follower to re-read although nothing changed...
    cluster.kill(0);
    cluster.restart(0);
    let resumed = wait_told(&mut changes, "after its watch ended");
    assert_eq!(resumed, first, "nothing changed while the member was down");
    // ...and follows what is written after.
    commit(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while *changes.borrow() == first {
        assert!(
            Instant::now() < deadline,
            "the feed never saw the commit after the restart"
        );
        let _ = wait_told(&mut changes, "of the commit after the restart");
    }
    assert_eq!(*changes.borrow(), reader.change_counter().unwrap());
}
