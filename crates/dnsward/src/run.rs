//! `dnsward run --config FILE`: the whole system on one node — store, health, planner,
//! guard, enactors, server, store follower and HTTP API — wired together.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use api::{ApiState, HealthSink, OperatorChanges, OperatorError};
use clap::Args;
use enactor::{ControlConfig, OperatorChange, ZonePlan};
use health::{HealthMonitor, ProbeTarget, PushedReport};
use model::rdata::{A, AAAA, NS, SOA};
use model::{
    Clock, Hysteresis, Name, RData, Record, RecordType, RefName, SystemClock, ZoneContent,
};
use server::{Catalog, ServerConfig};
use store::{EtcdStore, SqliteStore, Store};

use crate::config::{self, Config};
use crate::node_lock::NodeLock;
use crate::CliError;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (TOML); see the README for every key.
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> Result<(), CliError> {
    crate::supervise::exit_on_panic("dnsward run");
    let config = config::load(&args.config)?;
    let zones = zone_plans(&config)?;
    let store = open_store(&config)?;
    // Held while the node runs: `zone import` refuses to write around its guard (a SQLite
    // file; etcd has no file to lock, and `zone import` does not write to it).
    let _serving = match config.store_etcd {
        None => Some(NodeLock::serving(
            &config.store_path,
            Some(&config.api_listen.to_string()),
        )?),
        Some(_) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(run_node(args.config, config, zones, store))
}

/// The node's store: the etcd cluster when `[store] etcd` is set, else the SQLite file.
pub(crate) fn open_store(config: &Config) -> Result<Arc<dyn Store>, CliError> {
    Ok(match &config.store_etcd {
        Some(etcd) => Arc::new(EtcdStore::open(etcd)?),
        None => Arc::new(SqliteStore::open(&config.store_path)?),
    })
}

/// Where the node's store is, for its log.
fn store_location(config: &Config) -> String {
    match &config.store_etcd {
        Some(etcd) => format!("etcd {} {}", etcd.endpoints.join(","), etcd.prefix),
        None => config.store_path.display().to_string(),
    }
}

/// Whether any zone is transferred to or from anyone, or any TSIG key is configured.
fn uses_transfers(config: &Config) -> bool {
    !config.keys.is_empty()
        || config.zones.iter().any(|zone| {
            !zone.allow_transfer.is_empty() || !zone.notify.is_empty() || zone.primary.is_some()
        })
}

/// AXFR and IXFR of the configured zones, as their `allow_transfer` rules allow.
fn transfer_service(config: &Config, store: Arc<dyn Store>) -> transfer::Primary {
    transfer::Primary::new(store, config.keys.clone(), transfer_rules(config))
}

/// Each zone's `allow_transfer` rules.
fn transfer_rules(config: &Config) -> Vec<(Name, transfer::ZoneTransfers)> {
    config
        .zones
        .iter()
        .map(|zone| {
            (
                zone.name.clone(),
                transfer::ZoneTransfers {
                    allow_transfer: zone.allow_transfer.clone(),
                },
            )
        })
        .collect()
}

/// The zones this node is a secondary of, with their primaries and keys.
fn secondary_zones(config: &Config) -> Vec<transfer::secondary::SecondaryZone> {
    config
        .zones
        .iter()
        .filter_map(|zone| {
            let (primary, key) = zone.primary.as_ref()?;
            Some(transfer::secondary::SecondaryZone {
                zone: zone.name.clone(),
                primary: *primary,
                key: key.as_deref().and_then(|key| config.keys.get(key)),
            })
        })
        .collect()
}

/// Each secondary zone's protected names (`protect`), by zone key: what a received version
/// and an operator change to the zone are judged by.
fn secondary_protect(
    config: &Config,
) -> std::collections::HashMap<String, Vec<model::EndpointConfig>> {
    config
        .zones
        .iter()
        .filter(|zone| zone.primary.is_some())
        .map(|zone| (store::zone_key(&zone.name), zone.protect.clone()))
        .collect()
}

/// What a secondary zone holds now: its pending canary, else its active version (through
/// the control plane's content cache), so a version waiting for the validator is not
/// fetched again.
fn held_versions(
    store: Arc<dyn Store>,
    cache: Arc<enactor::ContentCache>,
) -> transfer::secondary::Held {
    Arc::new(move |zone: &Name| {
        let refs = store.refs(zone).ok()?;
        let held = refs.canary.or(refs.active)?;
        let content = cache.content(store.as_ref(), zone, held).ok()?;
        Some((refs.active?, content))
    })
}

/// A transferred version into the store through the guard: the operator path with the
/// zone's protected names, as automation (refused while the zone is frozen), by the actor
/// "transfer from PRIMARY".
fn commit_transferred(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> transfer::secondary::Apply {
    use transfer::secondary::ApplyError;
    let protected = secondary_protect(config);
    let primaries: std::collections::HashMap<String, std::net::SocketAddr> =
        secondary_zones(config)
            .into_iter()
            .map(|zone| (store::zone_key(&zone.zone), zone.primary))
            .collect();
    let policy = config.guard;
    // In canary mode a received version is a canary first: the validator asks it over the
    // wire before it is served, like the planner's.
    let target = crate::validate::spawn_options(config).target;
    Arc::new(
        move |zone: &Name, content: &ZoneContent, base, reason: &str| {
            let key = store::zone_key(zone);
            let endpoints = protected.get(&key).cloned().unwrap_or_default();
            let actor = match primaries.get(&key) {
                Some(primary) => format!("transfer from {primary}"),
                None => "transfer".to_string(),
            };
            enactor::submit_operator_change(
                store.as_ref(),
                OperatorChange {
                    zone,
                    content,
                    endpoints: &endpoints,
                    policy: &policy,
                    actor: &actor,
                    reason,
                    force: None,
                    base,
                    now_ms: clock.now_ms(),
                    automated: true,
                    target,
                },
            )
            .map(|version| version.serial)
            .map_err(|error| match error {
                enactor::OperatorError::Refused { reasons, .. } => {
                    ApplyError::Refused(reasons.join("; "))
                }
                enactor::OperatorError::Store(error @ store::StoreError::Frozen { .. }) => {
                    ApplyError::Frozen(error.to_string())
                }
                enactor::OperatorError::Store(error) => ApplyError::Failed(error.to_string()),
            })
        },
    )
}

/// Each zone's `notify` secondaries with their keys.
fn notify_targets(config: &Config) -> Vec<(Name, Vec<transfer::notify::NotifyTarget>)> {
    config
        .zones
        .iter()
        .filter(|zone| !zone.notify.is_empty())
        .map(|zone| {
            let targets = zone
                .notify
                .iter()
                .map(|(address, key)| transfer::notify::NotifyTarget {
                    address: *address,
                    key: key.as_deref().and_then(|key| config.keys.get(key)),
                })
                .collect();
            (zone.name.clone(), targets)
        })
        .collect()
}

async fn run_node(
    config_path: PathBuf,
    config: Config,
    zones: Vec<ZonePlan>,
    store: Arc<dyn Store>,
) -> Result<(), CliError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let probe_clock = Arc::clone(&clock);
    let (monitor, health_view) = HealthMonitor::start(
        probe_targets(&config),
        move || probe_clock.now_ms(),
        health::HEALTH_MAX_CONCURRENT_PROBES.default as usize,
    )
    .map_err(|error| CliError::Usage {
        message: format!("{}: {error}", config.file.display()),
    })?;
    let monitor = Arc::new(monitor);
    // On a shared store, every node plans from all live nodes' verdicts (health by quorum).
    let (health_view, checkers, exchange) = match config.store_etcd {
        Some(_) => {
            let (view, checkers, task) = crate::health_quorum::start(
                Arc::clone(&store),
                config.node_name.clone(),
                config.quorum,
                health_view,
            );
            (view, Some(checkers), Some(task))
        }
        None => (health_view, None, None),
    };

    let control_config = ControlConfig {
        zones: zones.clone(),
        policy: config.guard,
        enactor_count: config.enactor_count,
        keep_last: config.keep_last,
    };
    let metrics = Arc::new(api::metrics::Metrics::default());
    let observer: enactor::Observer = {
        let metrics = Arc::clone(&metrics);
        Arc::new(move |_, outcome: &enactor::Outcome| {
            metrics.count_enactor_outcome(outcome_kind(outcome))
        })
    };
    let control = Arc::new(enactor::spawn_with(
        Arc::clone(&store),
        control_config,
        health_view,
        Arc::clone(&clock),
        Some(observer),
        crate::validate::spawn_options(&config),
    ));
    let audit_tail = tokio::spawn(api::tail_audit(
        Arc::clone(&store),
        Arc::clone(&metrics),
        std::time::Duration::from_millis(AUDIT_TAIL_INTERVAL_MS),
    ));
    let catalog = Arc::new(Catalog::new());
    let cache = Arc::clone(control.control().cache());
    let sources = follow::Sources {
        store: Arc::clone(&store),
        // Whole loads take the content the control plane holds already.
        contents: Some(Arc::new(
            move |store: &dyn store::Store, zone: &model::Name, generation| {
                cache.content(store, zone, generation)
            },
        )),
        zone_files: Arc::new(
            config
                .zones
                .iter()
                .filter_map(|zone| Some((store::zone_key(&zone.name), zone.file.clone()?)))
                .collect(),
        ),
    };
    // On a shared store, the node keeps a local copy of what it serves, and serves that copy
    // when the store cannot be read at start (static stability).
    let serving_local_copy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = match follow::start(
        sources.clone(),
        Arc::clone(&catalog),
        follow::Target::Active,
        server::default_cname_chain_length(),
        || crate::supervise::task_ended("store follower"),
    )
    .await
    {
        Ok(follower) => tokio::spawn(async move {
            let _follower = follower;
            std::future::pending::<()>().await
        }),
        Err(follow::FollowError::Store(error)) if config.store_etcd.is_some() => {
            let served = crate::local_copy::serve(&config.local_copy, &catalog);
            if served.is_empty() {
                return Err(CliError::Usage {
                    message: format!(
                        "{error}; and there is no local copy to serve in {} (a node writes \
                         one once it has served from the store): start the node when the \
                         store answers",
                        config.local_copy.display()
                    ),
                });
            }
            for (zone, generation, serial) in &served {
                tracing::warn!(%zone, generation = generation.0, serial, %error, "the store cannot be read at start: serving the local copy until it can");
            }
            serving_local_copy.store(true, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(follow_when_reachable(
                sources.clone(),
                Arc::clone(&catalog),
                Arc::clone(&serving_local_copy),
            ))
        }
        Err(error) => return Err(error.into()),
    };
    let local_copy = config
        .store_etcd
        .is_some()
        .then(|| crate::local_copy::keep(config.local_copy.clone(), Arc::clone(&catalog)));
    let server_config = ServerConfig {
        listen: config.server_listen,
        udp_payload_bytes: config.udp_payload_bytes,
        rrl: config.rrl.clone(),
        ..ServerConfig::default()
    };
    let secondaries = Arc::new(transfer::secondary::Secondaries::new(
        secondary_zones(&config),
        config.keys.clone(),
    ));
    let mut server = server::Server::bind(server_config, Arc::clone(&catalog)).await?;
    let transfers = Arc::new(transfer::Transfers {
        primary: transfer_service(&config, Arc::clone(&store)),
        secondaries: Arc::clone(&secondaries),
    });
    // Only a node that transfers pays for looking at transfer requests, NOTIFY and TSIG.
    let transfers_on = uses_transfers(&config);
    if transfers_on {
        server = server.with_transfers(Arc::clone(&transfers) as Arc<dyn server::TransferService>);
    }
    let notify = Arc::new(transfer::notify::Targets::new(notify_targets(&config)));
    let notifier = transfer::notify::start(Arc::clone(&catalog), Arc::clone(&notify));
    let secondary_tasks = secondaries.start(
        held_versions(Arc::clone(&store), Arc::clone(control.control().cache())),
        commit_transferred(&config, Arc::clone(&store), Arc::clone(&clock)),
        {
            let clock = Arc::clone(&clock);
            Arc::new(move || clock.now_ms())
        },
    );
    let validator = crate::validate::start(
        &config,
        Arc::clone(&store),
        Arc::clone(&clock),
        &zones,
        server.local_addr(),
    )
    .await?;
    let reloader = tokio::spawn(reload_on_hangup(
        config_path,
        Arc::clone(&control),
        Arc::clone(&monitor),
        validator.as_ref().map(|running| ValidatorReload {
            reloader: running.reloader(),
            server: server.local_addr(),
            canary: crate::validate::validator_config(&config, &zones, server.local_addr()).canary,
        }),
        TransferReload {
            transfers: Arc::clone(&transfers),
            notify: Arc::clone(&notify),
            on: transfers_on,
            secondaries: secondary_set(&config),
        },
    ));

    let api_state = ApiState {
        store: Arc::clone(&store),
        health: Some(Arc::new(MonitorSink(Arc::clone(&monitor)))),
        operator: Some(Arc::new(Operator {
            store: Arc::clone(&store),
            control: Arc::clone(&control),
            clock: Arc::clone(&clock),
            protected: secondary_protect(&config),
        })),
        token: Some(crate::token::for_node(&config)?),
        now_ms: Arc::new(move || clock.now_ms()),
        metrics: Arc::clone(&metrics),
        catalog: Some(catalog),
        on_thaw: Some({
            let control = Arc::clone(&control);
            Arc::new(move || control.replan())
        }),
        listen: Some(config.api_listen),
        secondary_zones: config
            .zones
            .iter()
            .filter(|zone| zone.primary.is_some())
            .map(|zone| zone.name.clone())
            .collect(),
        node: Some(api::NodeInfo {
            name: config.node_name.clone(),
            store: store_location(&config),
            serving_local_copy: Arc::clone(&serving_local_copy),
            checkers: checkers.map(|checkers| {
                Arc::new(move || crate::health_quorum::verdicts(&checkers)) as api::CheckersView
            }),
        }),
        primary: Some({
            let secondaries = Arc::clone(&secondaries);
            Arc::new(move |zone: &Name| {
                let (address, state) = secondaries.status(zone)?;
                Some(api::types::PrimaryStatus {
                    address: address.to_string(),
                    serial: state.primary_serial,
                    checked_at_ms: state.checked_at_ms,
                    last_transfer: state.last_transfer,
                    last_error: state.last_error,
                    expired: state.expired,
                })
            })
        }),
        convergence: Some({
            let control = Arc::clone(&control);
            Arc::new(move |zone: &Name| {
                let convergence = control.control().convergence(zone);
                (convergence.deferred, convergence.endpoints)
            })
        }),
    };
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .map_err(|source| CliError::Io {
            path: format!("api.listen {}", config.api_listen).into(),
            source,
        })?;
    tracing::info!(node = %config.node_name, dns = %server.local_addr(), api = %config.api_listen, store = %store_location(&config), "dnsward running");

    let api = axum::serve(api_listener, api::router(api_state))
        .with_graceful_shutdown(crate::serve::shutdown_signal());
    let dns = server.run(crate::serve::shutdown_signal());
    // Nothing half-alive: a task that ends before shutdown ends the node (non-zero), so
    // the service manager restarts it whole.
    let supervised = async {
        let mut every = tokio::time::interval(SUPERVISION_INTERVAL);
        loop {
            every.tick().await;
            if control.has_ended_task() {
                return "control loop or enactor";
            }
            if monitor.has_ended() {
                return "health monitor";
            }
            if validator
                .as_ref()
                .is_some_and(crate::validate::Running::has_ended)
            {
                return "validator";
            }
            if audit_tail.is_finished() {
                return "audit tail (metrics)";
            }
            if notifier.is_finished() {
                return "NOTIFY sender";
            }
            if follower.is_finished() {
                return "store follower";
            }
            if exchange
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
            {
                return "health verdict exchange";
            }
            if local_copy
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
            {
                return "local copy writer";
            }
            if secondary_tasks
                .iter()
                .any(tokio::task::JoinHandle::is_finished)
            {
                return "secondary zone refresh";
            }
        }
    };
    let result = tokio::select! {
        result = api => result.map_err(|source| CliError::Io { path: "api".into(), source }),
        result = dns => result.map_err(CliError::from),
        task = supervised => crate::supervise::task_ended(task),
    };
    reloader.abort();
    audit_tail.abort();
    if let Ok(control) = Arc::try_unwrap(control) {
        control.shutdown().await;
    }
    if let Some(validator) = validator {
        validator.shutdown().await;
    }
    monitor.shutdown().await;
    tracing::info!("stopped");
    result
}

/// Starts following the store once it can be read (a node that started from its local copy),
/// every [`STORE_RETRY_INTERVAL`]; then holds the follower for as long as the node runs.
async fn follow_when_reachable(
    sources: follow::Sources,
    catalog: Arc<Catalog>,
    serving_local_copy: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        tokio::time::sleep(STORE_RETRY_INTERVAL).await;
        match follow::start(
            sources.clone(),
            Arc::clone(&catalog),
            follow::Target::Active,
            server::default_cname_chain_length(),
            || crate::supervise::task_ended("store follower"),
        )
        .await
        {
            Ok(follower) => {
                serving_local_copy.store(false, std::sync::atomic::Ordering::SeqCst);
                tracing::info!("the store can be read again: serving from it");
                let _follower = follower;
                std::future::pending::<()>().await
            }
            Err(error) => tracing::debug!(%error, "the store still cannot be read"),
        }
    }
}

/// How often a node serving its local copy tries the store again.
const STORE_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How often `run` looks whether a task of the node ended before shutdown.
const SUPERVISION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// What a reload hands the running validator, with the addresses bound at start.
struct ValidatorReload {
    reloader: validator::ValidatorReloader,
    /// Our own server, as bound.
    server: std::net::SocketAddr,
    /// The canary listener, as bound (or none).
    canary: Option<std::net::SocketAddr>,
}

/// On SIGHUP, reads the configuration again and hands the new zones, endpoints and
/// `[validator]` settings to the validator first (so it never judges a new answer by the old
/// endpoints), then the new probe targets to the health monitor and the zones, endpoints and
/// guard policy to the control loop. A file that does not parse changes nothing (the error
/// is logged); a reload that would take a protected name below its floor is refused by the
/// guard, which trips the zone's breaker. Listen addresses (the canary listener's too), the
/// store, the enactor count and turning the validator or canary mode on or off apply at the
/// next start.
/// What a reload changes of the transfer plane: keys, `allow_transfer`, `notify`.
struct TransferReload {
    transfers: Arc<transfer::Transfers>,
    notify: Arc<transfer::notify::Targets>,
    /// The server looks at transfers at all (decided at start).
    on: bool,
    /// The secondary zones and their primaries, as started.
    secondaries: Vec<(String, std::net::SocketAddr, Option<String>)>,
}

/// The secondary zones with their primaries and key names, in order: what a reload cannot
/// change.
fn secondary_set(config: &Config) -> Vec<(String, std::net::SocketAddr, Option<String>)> {
    config
        .zones
        .iter()
        .filter_map(|zone| {
            let (primary, key) = zone.primary.as_ref()?;
            Some((store::zone_key(&zone.name), *primary, key.clone()))
        })
        .collect()
}

impl TransferReload {
    fn apply(&self, config: &Config) {
        self.transfers
            .reload(config.keys.clone(), transfer_rules(config));
        self.notify.set(notify_targets(config));
        if !self.on && uses_transfers(config) {
            tracing::warn!("transfer settings were added to a node started without any: they take effect at the next start");
        }
        if secondary_set(config) != self.secondaries {
            tracing::warn!("secondary zones (primary, primary_key) changed: they take effect at the next start");
        }
    }
}

async fn reload_on_hangup(
    path: PathBuf,
    control: Arc<enactor::ControlHandle>,
    monitor: Arc<HealthMonitor>,
    validator: Option<ValidatorReload>,
    transfers: TransferReload,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; configuration reload is off");
        return;
    };
    while hangups.recv().await.is_some() {
        let loaded = config::load(&path)
            .map_err(CliError::from)
            .and_then(|config| {
                let zones = zone_plans(&config)?;
                Ok((config, zones))
            });
        let (config, zones) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, "configuration not reloaded; the running one stays");
                continue;
            }
        };
        if let Some(running) = &validator {
            let mut settings = crate::validate::validator_config(&config, &zones, running.server);
            settings.canary = running.canary;
            if let Err(error) = running.reloader.reload(settings, probe_targets(&config)) {
                tracing::error!(%error, "configuration not reloaded; the running one stays");
                continue;
            }
        }
        if let Err(error) = monitor.set_targets(probe_targets(&config)) {
            tracing::error!(%error, "configuration not reloaded; the running one stays");
            continue;
        }
        control.set_config(ControlConfig {
            zones,
            policy: config.guard,
            enactor_count: config.enactor_count,
            keep_last: config.keep_last,
        });
        transfers.apply(&config);
        tracing::info!(file = %path.display(), "configuration reloaded");
    }
}

/// How often `/metrics` counters catch up with the audit log.
const AUDIT_TAIL_INTERVAL_MS: u64 = 500;

/// The metric label of an enactor outcome.
fn outcome_kind(outcome: &enactor::Outcome) -> &'static str {
    match outcome {
        enactor::Outcome::Applied { .. } => "applied",
        enactor::Outcome::DroppedStale { .. } => "stale",
        enactor::Outcome::Conflict { .. } => "conflict",
        enactor::Outcome::Replan { .. } => "replan",
        enactor::Outcome::Frozen { .. } => "frozen",
        enactor::Outcome::Failed { .. } => "failed",
    }
}

/// Each zone's static content (its file, or a made-up SOA and NS) and its endpoints.
/// The zones the control plane plans: every zone but the secondary ones (their records
/// come from their primaries).
pub(crate) fn zone_plans(config: &Config) -> Result<Vec<ZonePlan>, CliError> {
    let mut plans = Vec::new();
    for zone in config.zones.iter().filter(|zone| zone.primary.is_none()) {
        let static_content = match &zone.file {
            Some(file) => zonefile::read_file(file, Some(&zone.name))?,
            None => default_zone(&zone.name, config.server_listen.ip()).ok_or_else(|| {
                CliError::Usage {
                    message: format!(
                        "{}: zone {} has no file, and the SOA made up for it \
                         (hostmaster.{}) would be longer than a name may be (255 bytes); \
                         give the zone a file",
                        config.file.display(),
                        zone.name,
                        zone.name
                    ),
                }
            })?,
        };
        if let Some(file) = &zone.file {
            refuse_collisions(config, &zone.name, file, &static_content)?;
        }
        let endpoints = config
            .endpoints
            .iter()
            .filter(|settings| settings.zone == zone.name)
            .map(|settings| settings.endpoint.clone())
            .collect();
        plans.push(ZonePlan {
            origin: zone.name.clone(),
            static_content,
            endpoints,
        });
    }
    Ok(plans)
}

/// An endpoint owns the A, AAAA and CNAME records at its name: static ones there would be
/// replaced silently, so they are a configuration error unless the endpoint says
/// `replace_static = true`.
fn refuse_collisions(
    config: &Config,
    zone: &Name,
    file: &std::path::Path,
    content: &ZoneContent,
) -> Result<(), CliError> {
    for settings in config.endpoints.iter().filter(|s| &s.zone == zone) {
        if settings.replace_static {
            continue;
        }
        let name = &settings.endpoint.name;
        let Some(rtype) = [RecordType::CNAME, RecordType::A, RecordType::AAAA]
            .into_iter()
            .find(|rtype| content.get(name, *rtype).is_some())
        else {
            continue;
        };
        let line = zonefile::first_line_of(file, Some(zone), name, rtype)
            .map(|line| format!(":{line}"))
            .unwrap_or_default();
        return Err(CliError::Config(config::ConfigError {
            file: config.file.clone(),
            line: settings.at.0,
            column: settings.at.1,
            reason: format!(
                "endpoint {name} collides with the static {rtype} record at {}{line}: an \
                 endpoint owns the A, AAAA and CNAME records of its name and would replace \
                 it; remove the record from the zone file, or set replace_static = true on \
                 the endpoint if health-driven answers should replace it",
                file.display()
            ),
        }));
    }
    Ok(())
}

/// A zone without a file: SOA and NS naming `ns.ZONE`, which points at the server; `None`
/// when the zone's name is too long to carry `hostmaster.` in front.
fn default_zone(origin: &Name, server: IpAddr) -> Option<ZoneContent> {
    let ns = Name::from_ascii("ns")
        .and_then(|label| label.append_domain(origin))
        .ok()?;
    let hostmaster = Name::from_ascii("hostmaster")
        .and_then(|label| label.append_domain(origin))
        .ok()?;
    let address = match server {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    let records = [
        Record::from_rdata(
            origin.clone(),
            3600,
            RData::SOA(SOA::new(
                ns.clone(),
                hostmaster,
                1,
                3600,
                600,
                1_209_600,
                30,
            )),
        ),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(ns.clone()))),
        Record::from_rdata(ns, 3600, address),
    ];
    ZoneContent::from_records(origin.clone(), records).ok()
}

pub(crate) fn probe_targets(config: &Config) -> Vec<ProbeTarget> {
    let mut targets = Vec::new();
    for settings in &config.endpoints {
        for backend in &settings.endpoint.backends {
            targets.push(ProbeTarget {
                address: backend.address,
                check: backend.check.clone(),
                interval_ms: settings.health.interval_ms,
                timeout_ms: settings.health.timeout_ms,
                hysteresis: Hysteresis::clamped(
                    Some(settings.health.rise),
                    Some(settings.health.fall),
                ),
            });
        }
    }
    targets
}

/// The health monitor as the API's sink for pushed reports.
struct MonitorSink(Arc<HealthMonitor>);

impl HealthSink for MonitorSink {
    fn push(&self, reports: &[(IpAddr, bool)]) -> Result<Vec<IpAddr>, String> {
        self.0
            .push(
                reports
                    .iter()
                    .map(|&(address, healthy)| PushedReport { address, healthy })
                    .collect(),
            )
            .map_err(|error| error.to_string())
    }

    fn view(&self) -> model::HealthView {
        self.0.view()
    }
}

/// Operator changes judged by the same guard as automation.
struct Operator {
    store: Arc<dyn Store>,
    /// The running control loop, whose configuration (endpoints, guard policy) is the one
    /// a reload last set: an operator change is judged by the same rules as automation now.
    control: Arc<enactor::ControlHandle>,
    clock: Arc<dyn Clock>,
    /// Secondary zones' protected names (`protect`), by zone key: the planner does not plan
    /// those zones, but an operator change to one is judged by their floors too.
    protected: std::collections::HashMap<String, Vec<model::EndpointConfig>>,
}

impl Operator {
    /// The zone's endpoints and the guard policy of the control loop's current config.
    fn rules(&self, zone: &Name) -> (Vec<model::EndpointConfig>, model::GuardPolicy) {
        let config = self.control.control().config();
        let endpoints = config
            .zones
            .iter()
            .find(|plan| &plan.origin == zone)
            .map(|plan| plan.endpoints.clone())
            .or_else(|| self.protected.get(&store::zone_key(zone)).cloned())
            .unwrap_or_default();
        (endpoints, config.policy)
    }
}

impl OperatorChanges for Operator {
    fn submit(
        &self,
        zone: &Name,
        content: ZoneContent,
        submission: api::Submission<'_>,
    ) -> Result<model::Version, OperatorError> {
        let (endpoints, policy) = self.rules(zone);
        enactor::submit_operator_change(
            self.store.as_ref(),
            OperatorChange {
                zone,
                content: &content,
                endpoints: &endpoints,
                policy: &policy,
                actor: submission.actor,
                reason: submission.reason,
                force: submission.force,
                base: submission.base,
                now_ms: self.clock.now_ms(),
                automated: false,
                target: RefName::Active,
            },
        )
        .map_err(|error| match error {
            enactor::OperatorError::Refused { zone, reasons } => {
                OperatorError::Refused { zone, reasons }
            }
            enactor::OperatorError::Store(error) => OperatorError::Store(error),
        })
    }

    fn preview(&self, zone: &Name, content: ZoneContent) -> Result<api::Preview, OperatorError> {
        let (endpoints, policy) = self.rules(zone);
        let preview = enactor::preview_operator_change(
            self.store.as_ref(),
            OperatorChange {
                zone,
                content: &content,
                endpoints: &endpoints,
                policy: &policy,
                actor: "plan",
                reason: "preview",
                force: None,
                base: None,
                now_ms: self.clock.now_ms(),
                automated: false,
                target: RefName::Active,
            },
        )?;
        Ok(api::Preview {
            base: preview.base,
            accepted: preview.verdict.is_accept(),
            forcible: preview.forcible,
            reasons: preview
                .verdict
                .reasons()
                .iter()
                .map(ToString::to_string)
                .collect(),
            added: preview.added,
            removed: preview.removed,
            endpoints_touched: preview.endpoints_touched,
        })
    }
}
