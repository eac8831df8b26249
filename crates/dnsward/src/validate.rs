//! The validator's wiring: `dnsward run` starts it beside the control plane (with the canary
//! listener in canary mode); `dnsward validate --config FILE` runs it alone against a running
//! node's servers and store.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use enactor::{SpawnOptions, ZonePlan};
use model::{Clock, RefName, SystemClock};
use server::{Catalog, ServerConfig};
use store::Store;
use validator::{Severity, ValidatorConfig, ValidatorHandle, ZoneToValidate};

use crate::config::{self, Config};
use crate::CliError;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The node's configuration file (TOML): servers, store, zones, endpoints, [validator].
    #[arg(long)]
    pub config: PathBuf,
    /// Check once, print the findings and exit (1 when something is violated); nothing is
    /// written to the store.
    #[arg(long)]
    pub once: bool,
}

/// The validator and, in canary mode, the canary listener; dropping it stops them.
pub struct Running {
    validator: ValidatorHandle,
    _canary: Option<(follow::Follower, tokio::task::JoinHandle<()>)>,
}

impl Running {
    /// Whether the validator or the canary listener ended.
    pub fn has_ended(&self) -> bool {
        self.validator.has_ended()
            || self
                ._canary
                .as_ref()
                .is_some_and(|(_, task)| task.is_finished())
    }

    /// Hands a reloaded configuration to the running validator.
    pub fn reloader(&self) -> validator::ValidatorReloader {
        self.validator.reloader()
    }

    pub async fn shutdown(self) {
        if let Some((_, listener)) = &self._canary {
            listener.abort();
        }
        self.validator.shutdown().await;
    }
}

/// How the enactors run: in canary mode they commit to the canary ref.
pub fn spawn_options(config: &Config) -> SpawnOptions {
    let canary = config.validator.enabled && config.validator.canary;
    SpawnOptions {
        target: if canary {
            RefName::Canary
        } else {
            RefName::Active
        },
        node: config.node_name.clone(),
    }
}

/// The validator's settings from the configuration, checking `server` (our own listener).
pub fn validator_config(
    config: &Config,
    zones: &[ZonePlan],
    server: std::net::SocketAddr,
) -> ValidatorConfig {
    let settings = &config.validator;
    // Planned zones with their endpoints, and secondary zones with their protected names
    // (held to their floors; their addresses come from the primary).
    let zones = zones
        .iter()
        .map(|zone| ZoneToValidate {
            origin: zone.origin.clone(),
            endpoints: zone.endpoints.clone(),
        })
        .chain(
            config
                .zones
                .iter()
                .filter(|zone| zone.primary.is_some())
                .map(|zone| ZoneToValidate {
                    origin: zone.name.clone(),
                    endpoints: zone.protect.clone(),
                }),
        )
        .collect();
    ValidatorConfig {
        interval_ms: settings.interval_ms,
        sample_names: settings.sample_names,
        timeout_ms: settings.timeout_ms,
        serial_lag_ms: settings.serial_lag_ms,
        good_after_ms: settings.good_after_ms,
        health_grace_ms: settings.health_grace_ms,
        health_tolerance: settings.health_tolerance,
        server,
        secondaries: settings.servers.clone(),
        canary: settings.canary_listen.filter(|_| settings.canary),
        zones,
        repair: true,
    }
}

/// Starts the validator (and the canary listener in canary mode) unless
/// `[validator] enabled = false`.
pub async fn start(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    zones: &[ZonePlan],
    server: std::net::SocketAddr,
) -> Result<Option<Running>, CliError> {
    if !config.validator.enabled {
        return Ok(None);
    }
    let validator_config = validator_config(config, zones, server);
    let canary = match validator_config.canary {
        Some(listen) => Some(start_canary_listener(config, Arc::clone(&store), listen).await?),
        None => None,
    };
    let handle = validator::spawn(
        store,
        clock,
        validator_config,
        crate::run::probe_targets(config),
    )
    .map_err(|error| CliError::Usage {
        message: format!("{}: validator: {error}", config.file.display()),
    })?;
    tracing::info!(canary = ?config.validator.canary_listen.filter(|_| config.validator.canary), "validator running");
    Ok(Some(Running {
        validator: handle,
        _canary: canary,
    }))
}

/// A second server instance whose catalog follows each zone's canary ref.
async fn start_canary_listener(
    config: &Config,
    store: Arc<dyn Store>,
    listen: std::net::SocketAddr,
) -> Result<(follow::Follower, tokio::task::JoinHandle<()>), CliError> {
    let catalog = Arc::new(Catalog::new());
    let follower = follow::start(
        follow::Sources::store(store),
        Arc::clone(&catalog),
        follow::Target::CanaryElseActive,
        server::default_cname_chain_length(),
        || crate::supervise::task_ended("canary listener follower"),
    )
    .await?;
    let server_config = ServerConfig {
        listen,
        udp_payload_bytes: config.udp_payload_bytes,
        ..ServerConfig::default()
    };
    let server = server::Server::bind(server_config, catalog).await?;
    let task = tokio::spawn(async move {
        if let Err(error) = server.run(std::future::pending()).await {
            tracing::error!(%error, "canary listener stopped");
        }
    });
    Ok((follower, task))
}

/// `dnsward validate --config FILE`.
pub fn run(args: ValidateArgs) -> Result<(), CliError> {
    let config = config::load(&args.config)?;
    let zones = crate::run::zone_plans(&config)?;
    let store = crate::run::open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    runtime.block_on(async move {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let validator_config = validator_config(&config, &zones, config.server_listen);
        if !args.once {
            let handle = validator::spawn(store, clock, validator_config, crate::run::probe_targets(&config))
                .map_err(|error| CliError::Usage {
                    message: format!("{}: validator: {error}", config.file.display()),
                })?;
            crate::serve::shutdown_signal().await;
            handle.shutdown().await;
            return Ok(());
        }
        let (_, health) = tokio::sync::watch::channel(model::HealthView::new());
        let mut validator = validator::Validator::new(
            store,
            clock,
            ValidatorConfig {
                repair: false,
                ..validator_config
            },
            health,
        );
        let report = validator.round().await;
        let mut violations = 0;
        for zone in &report.zones {
            let active = zone.active.map_or_else(|| "none".to_string(), |g| g.to_string());
            println!("zone {} (active generation {active})", zone.zone);
            for finding in zone.findings.iter().chain(&zone.canary_findings) {
                let severity = match finding.severity {
                    Severity::Violation => {
                        violations += 1;
                        "VIOLATION"
                    }
                    Severity::Warning => "warning",
                };
                println!("  {severity}: {finding}");
            }
            if zone.findings.is_empty() && zone.canary_findings.is_empty() {
                println!("  ok");
            }
        }
        if violations > 0 {
            return Err(CliError::Usage {
                message: format!("{violations} violation(s) found; a running node rolls back to its last known good"),
            });
        }
        Ok(())
    })
}
