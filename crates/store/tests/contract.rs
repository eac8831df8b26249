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

#[test]
fn etcd_clean_up_deletes_the_content_no_version_uses_and_keeps_what_versions_use() {
    let backend = EtcdBackend::new();
    let store = backend.open();
    let origin = "sweep.test.";
    let zone = store::contract::fixtures::name(origin);
    let every = model::limits::STORE_ETCD_SWEEP_EVERY.default;
    let mut version = store
        .commit(store::contract::fixtures::commit(
            &store::contract::fixtures::content(origin, 1, 300, 0),
            None,
            model::RefName::Active,
        ))
        .unwrap();
    let rounds = 3 * every;
    for round in 0..rounds {
        let base = store.content(&zone, version.generation).unwrap();
        let mut next = base.clone();
        let host = u32::try_from(round).unwrap();
        next.put_rrset(store::contract::fixtures::host_set(origin, host, 7));
        version = store
            .commit_from(
                store::contract::fixtures::commit(
                    &next,
                    Some(version.generation),
                    model::RefName::Active,
                ),
                &base,
            )
            .unwrap();
        store.clean_up(&zone, 2, "test", 1_000).unwrap();
    }
    let kept = store.history(&zone, 1_000).unwrap();
    for kept in &kept {
        let content = store.content(&zone, kept.generation).unwrap();
        assert_eq!(
            content.hash(),
            kept.content_hash,
            "a kept version reads back whole"
        );
    }
    // Each change writes at most two buckets (the host's and the apex's, whose SOA serial
    // rises), one manifest chunk and its recorded changes; the first version wrote every
    // bucket and a chunk. What remains: the kept versions' blobs, and at
    // most the blobs of the versions deleted since the last sweep.
    let listed = std::process::Command::new("etcdctl")
        .arg("--endpoints")
        .arg(backend.config.endpoints.join(","))
        .args(["get", "--prefix", "--keys-only"])
        .arg(format!("{}blobs/", backend.config.prefix))
        .output()
        .expect("etcdctl runs (scripts/test installs etcd-client)");
    assert!(listed.status.success(), "{listed:?}");
    let blobs = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .count() as u64;
    let buckets = store::buckets::bucket_count(302) as u64;
    let bound = buckets + 1 + 4 * kept.len() as u64 + 4 * every;
    let unswept = buckets + 1 + 4 * rounds;
    assert!(
        blobs <= bound,
        "{blobs} blobs stored; the kept versions and the unswept ones need at most {bound} \
         ({unswept} if nothing were ever deleted)"
    );
}
