//! The one TOML configuration file of `dnsward run`: parsed, checked against every named
//! limit, and turned into the stages' types. An invalid file is rejected with
//! `FILE:LINE:COLUMN: reason`; nothing is silently clamped.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use model::limits::{self, FractionLimit, Limit};
use model::{AllDownPolicy, BackendConfig, Check, EndpointConfig, GuardPolicy, Name};
use serde::Deserialize;
use toml::Spanned;

/// A configuration error: the file, where in it, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {reason}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server_listen: SocketAddr,
    pub udp_payload_bytes: u16,
    /// `[server.rrl]`: response rate limiting of UDP answers (on by default).
    pub rrl: server::RrlConfig,
    pub api_listen: SocketAddr,
    /// `api.token`: the bearer token written in the configuration, if any.
    pub api_token: Option<String>,
    /// `api.token_file`: where the token is kept when the configuration names none
    /// (generated at the first start, mode 0600).
    pub api_token_file: PathBuf,
    /// `[store] path`: the SQLite store (the default, `dnsward.db` beside the file). Also
    /// where a node on etcd keeps nothing: see `store_etcd`.
    pub store_path: PathBuf,
    /// `[store] etcd = { endpoints, prefix, timeout_ms }`: the store is the etcd cluster
    /// several nodes share, instead of the SQLite file.
    pub store_etcd: Option<store::EtcdConfig>,
    /// `[node] name`: who this node is among the nodes of one store (audit actors, metrics,
    /// published health verdicts); the host name by default.
    pub node_name: String,
    /// `[node] local_copy`: the directory where the node keeps a copy of every zone version it
    /// serves, which it serves from when it starts while the store is unreachable
    /// (`NAME.served` beside the file by default).
    pub local_copy: PathBuf,
    pub keep_last: usize,
    /// `[health] quorum`: when the nodes of a shared store count a backend as down.
    pub quorum: model::Quorum,
    pub guard: GuardPolicy,
    pub enactor_count: usize,
    pub zones: Vec<ZoneConfig>,
    /// TSIG keys (`[[key]]`), checked.
    pub keys: transfer::Keys,
    pub endpoints: Vec<EndpointSettings>,
    pub validator: ValidatorSettings,
}

/// The `[validator]` table: the independent wire-level checks, canary and rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorSettings {
    /// Run the validator inside `dnsward run` (default true).
    pub enabled: bool,
    pub interval_ms: u64,
    pub sample_names: u64,
    pub timeout_ms: u64,
    pub serial_lag_ms: u64,
    pub good_after_ms: u64,
    pub health_grace_ms: u64,
    pub health_tolerance: f64,
    /// Secondary servers of the same zones, checked besides our own.
    pub servers: Vec<SocketAddr>,
    /// Canary mode: plans go to the canary ref, served on `canary_listen`, and become active
    /// only after the validator passed them.
    pub canary: bool,
    pub canary_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthDefaults {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub rise: u64,
    pub fall: u64,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub name: Name,
    /// Static records; relative to the config file's folder. `None`: a minimal SOA and NS
    /// are made up for the zone.
    pub file: Option<PathBuf>,
    /// Who may transfer the zone (AXFR, IXFR); empty: nobody.
    pub allow_transfer: Vec<transfer::AllowTransfer>,
    /// Secondaries told of every new served serial (NOTIFY), with the name of the key that
    /// signs it.
    pub notify: Vec<(SocketAddr, Option<String>)>,
    /// Set for a secondary zone: the primary it transfers from, and the key for that.
    pub primary: Option<(SocketAddr, Option<String>)>,
    /// Protected names of a secondary zone: a transferred version that leaves one with
    /// fewer addresses than its floor is refused by the guard.
    pub protect: Vec<EndpointConfig>,
}

/// An endpoint and the health settings of its backends.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub endpoint: EndpointConfig,
    pub zone: Name,
    pub health: HealthDefaults,
    /// `replace_static = true`: the endpoint may take over static A, AAAA or CNAME records
    /// at its name (otherwise such a collision is a configuration error).
    pub replace_static: bool,
    /// Where the `[[endpoint]]` is in the file (line, column), for errors found later.
    pub at: (usize, usize),
}

/// Largest configuration file read; a bigger one is almost certainly not a config.
pub const CONFIG_FILE_BYTES: Limit = Limit {
    name: "config.file_bytes",
    default: 4 << 20,
    min: 1,
    max: 64 << 20,
};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    node: RawNode,
    #[serde(default)]
    health: RawHealth,
    #[serde(default)]
    guard: RawGuard,
    #[serde(default)]
    enactor: RawEnactor,
    #[serde(default)]
    validator: RawValidator,
    #[serde(default)]
    key: Vec<Spanned<RawKey>>,
    #[serde(default)]
    zone: Vec<Spanned<RawZone>>,
    #[serde(default)]
    endpoint: Vec<Spanned<RawEndpoint>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    udp_payload_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    rrl: RawRrl,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRrl {
    responses_per_second: Option<Spanned<u64>>,
    slip: Option<Spanned<u64>>,
    window_seconds: Option<Spanned<u64>>,
    ipv4_prefix_length: Option<Spanned<u64>>,
    ipv6_prefix_length: Option<Spanned<u64>>,
    table_entries: Option<Spanned<u64>>,
    log_only: Option<bool>,
    exempt: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: Option<Spanned<String>>,
    token: Option<String>,
    token_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<Spanned<String>>,
    local_copy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEtcd {
    endpoints: Spanned<Vec<Spanned<String>>>,
    prefix: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<Spanned<String>>,
    etcd: Option<Spanned<RawEtcd>>,
    keep_last: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    quorum: Option<Spanned<String>>,
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    rise: Option<Spanned<u64>>,
    fall: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGuard {
    max_remove_fraction: Option<Spanned<f64>>,
    max_change_fraction: Option<Spanned<f64>>,
    velocity_window_ms: Option<Spanned<u64>>,
    max_removals_per_window: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnactor {
    count: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    enabled: Option<bool>,
    interval_ms: Option<Spanned<u64>>,
    sample_names: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    serial_lag_ms: Option<Spanned<u64>>,
    good_after_ms: Option<Spanned<u64>>,
    health_grace_ms: Option<Spanned<u64>>,
    health_tolerance: Option<Spanned<f64>>,
    servers: Option<Spanned<Vec<Spanned<String>>>>,
    canary: Option<Spanned<bool>>,
    canary_listen: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: String,
    file: Option<String>,
    #[serde(default)]
    allow_transfer: Vec<Spanned<RawAllowTransfer>>,
    #[serde(default)]
    notify: Vec<Spanned<RawNotify>>,
    primary: Option<Spanned<String>>,
    primary_key: Option<Spanned<String>>,
    #[serde(default)]
    protect: Vec<Spanned<RawProtect>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtect {
    name: Spanned<String>,
    min_answers: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Spanned<String>,
    algorithm: Spanned<String>,
    secret: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowTransfer {
    from: Spanned<String>,
    key: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    address: Spanned<String>,
    key: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: String,
    ttl: Option<Spanned<u64>>,
    min_answers: Option<Spanned<u64>>,
    all_down: Option<Spanned<String>>,
    interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    rise: Option<Spanned<u64>>,
    fall: Option<Spanned<u64>>,
    #[serde(default)]
    replace_static: bool,
    backends: Vec<Spanned<RawBackend>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    address: String,
    #[serde(default)]
    check: Option<String>,
    #[serde(default = "default_weight")]
    weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let whole_file = |reason: String| ConfigError {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        reason,
    };
    let metadata = std::fs::metadata(path)
        .map_err(|error| whole_file(format!("cannot read the configuration: {error}")))?;
    if metadata.len() > CONFIG_FILE_BYTES.default {
        return Err(whole_file(format!(
            "the file has {} bytes; a configuration has at most {}",
            metadata.len(),
            CONFIG_FILE_BYTES.default
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| whole_file(format!("cannot read the configuration: {error}")))?;
    parse(&text, path)
}

/// Parses and checks configuration text; `path` names it in errors and anchors relative
/// paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let checker = Checker { text, path };
    let raw: RawConfig = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        checker.error(span, error.message().to_string())
    })?;
    checker.build(raw)
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, reason: String) -> ConfigError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map(|at| at + 1).unwrap_or(0) + 1;
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            reason,
        }
    }

    /// `[[key]]` blocks: each checked where it is written.
    fn keys(&self, raw: &[Spanned<RawKey>]) -> Result<transfer::Keys, ConfigError> {
        let mut configs = Vec::new();
        for key in raw {
            let key = key.get_ref();
            let config = transfer::KeyConfig {
                name: key.name.get_ref().clone(),
                algorithm: key.algorithm.get_ref().clone(),
                secret: key.secret.get_ref().clone(),
            };
            transfer::keys::key(&config).map_err(|error| {
                let span = match error {
                    transfer::KeyError::Name(_) => key.name.span(),
                    transfer::KeyError::Algorithm(_) => key.algorithm.span(),
                    _ => key.secret.span(),
                };
                self.error(span, format!("key: {error}"))
            })?;
            let same_name = |other: &transfer::KeyConfig| {
                transfer::keys::key_name(&other.name).ok()
                    == transfer::keys::key_name(&config.name).ok()
            };
            if configs.iter().any(same_name) {
                return Err(self.error(
                    key.name.span(),
                    format!("key \"{}\" is defined twice", config.name),
                ));
            }
            configs.push(config);
        }
        transfer::Keys::new(&configs).map_err(|error| self.error(0..0, format!("key: {error}")))
    }

    /// A key named in `allow_transfer` or `notify` must be one of the `[[key]]` blocks.
    fn key_reference(
        &self,
        key: &Option<Spanned<String>>,
        keys: &transfer::Keys,
    ) -> Result<Option<String>, ConfigError> {
        match key {
            None => Ok(None),
            Some(name) if keys.get(name.get_ref()).is_some() => Ok(Some(name.get_ref().clone())),
            Some(name) => Err(self.error(
                name.span(),
                format!(
                    "key \"{}\" is not defined; add a [[key]] block with name = \"{}\", algorithm and secret",
                    name.get_ref(),
                    name.get_ref()
                ),
            )),
        }
    }

    fn allow_transfer(
        &self,
        raw: &[Spanned<RawAllowTransfer>],
        keys: &transfer::Keys,
    ) -> Result<Vec<transfer::AllowTransfer>, ConfigError> {
        raw.iter()
            .map(|rule| {
                let rule = rule.get_ref();
                let key = self.key_reference(&rule.key, keys)?;
                transfer::AllowTransfer::parse(rule.from.get_ref(), key.as_deref()).map_err(
                    |reason| self.error(rule.from.span(), format!("allow_transfer: {reason}")),
                )
            })
            .collect()
    }

    /// `primary` (and `primary_key`) of a zone: a secondary zone has no file.
    fn primary(
        &self,
        zone: &Spanned<RawZone>,
        keys: &transfer::Keys,
    ) -> Result<Option<(SocketAddr, Option<String>)>, ConfigError> {
        let raw = zone.get_ref();
        let Some(primary) = &raw.primary else {
            if let Some(key) = &raw.primary_key {
                return Err(self.error(
                    key.span(),
                    "primary_key without primary; add primary = \"IP:PORT\"".into(),
                ));
            }
            return Ok(None);
        };
        if raw.file.is_some() {
            return Err(self.error(
                primary.span(),
                "a zone has either a file or a primary, not both: a secondary's records \
                 come from its primary"
                    .into(),
            ));
        }
        let address = primary.get_ref().parse().map_err(|_| {
            self.error(
                primary.span(),
                format!(
                    "primary = \"{}\" is not an address; write IP:PORT, e.g. \"192.0.2.1:53\"",
                    primary.get_ref()
                ),
            )
        })?;
        Ok(Some((address, self.key_reference(&raw.primary_key, keys)?)))
    }

    /// `protect` of a zone: names (in the zone) and their floors.
    fn protect(
        &self,
        zone: &Spanned<RawZone>,
        origin: &Name,
    ) -> Result<Vec<EndpointConfig>, ConfigError> {
        zone.get_ref()
            .protect
            .iter()
            .map(|protect| {
                let raw = protect.get_ref();
                let name = self.name(raw.name.get_ref(), raw.name.span(), "protected name")?;
                if !origin.zone_of(&name) {
                    return Err(self.error(
                        raw.name.span(),
                        format!("protected name {name} is not in zone {origin}"),
                    ));
                }
                let min_answers = self.limit(&raw.min_answers, limits::ENDPOINT_MIN_ANSWERS)?;
                Ok(EndpointConfig {
                    name,
                    ttl: 0,
                    min_answers: min_answers as usize,
                    all_down: model::AllDownPolicy::default(),
                    backends: Vec::new(),
                })
            })
            .collect()
    }

    fn notify(
        &self,
        raw: &[Spanned<RawNotify>],
        keys: &transfer::Keys,
    ) -> Result<Vec<(SocketAddr, Option<String>)>, ConfigError> {
        raw.iter()
            .map(|target| {
                let target = target.get_ref();
                let key = self.key_reference(&target.key, keys)?;
                let address = target.address.get_ref().parse().map_err(|_| {
                    self.error(
                        target.address.span(),
                        format!(
                            "notify: \"{}\" is not an address; write IP:PORT, e.g. \"192.0.2.53:53\"",
                            target.address.get_ref()
                        ),
                    )
                })?;
                Ok((address, key))
            })
            .collect()
    }

    fn limit(&self, value: &Option<Spanned<u64>>, limit: Limit) -> Result<u64, ConfigError> {
        match value {
            None => Ok(limit.default),
            Some(value) => limit
                .check(*value.get_ref())
                .map_err(|reason| self.error(value.span(), reason)),
        }
    }

    fn fraction(
        &self,
        value: &Option<Spanned<f64>>,
        limit: FractionLimit,
    ) -> Result<f64, ConfigError> {
        match value {
            None => Ok(limit.default),
            Some(value) => limit
                .check(*value.get_ref())
                .map_err(|reason| self.error(value.span(), reason)),
        }
    }

    fn address(
        &self,
        value: &Option<Spanned<String>>,
        default: &str,
        key: &str,
    ) -> Result<SocketAddr, ConfigError> {
        match value {
            None => Ok(default.parse().expect("default addresses are valid")),
            Some(value) => value.get_ref().parse().map_err(|_| {
                self.error(
                    value.span(),
                    format!(
                        "{key} = \"{}\" is not an address; write IP:PORT, e.g. \"{default}\"",
                        value.get_ref()
                    ),
                )
            }),
        }
    }

    fn name(&self, text: &str, span: Range<usize>, what: &str) -> Result<Name, ConfigError> {
        let mut name = Name::from_ascii(text).map_err(|error| {
            self.error(
                span,
                format!("{what} \"{text}\" is not a domain name: {error}"),
            )
        })?;
        name.set_fqdn(true);
        Ok(name)
    }

    fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let server_listen = self.address(&raw.server.listen, "127.0.0.1:5353", "server.listen")?;
        let udp_payload_bytes =
            self.limit(&raw.server.udp_payload_bytes, limits::UDP_PAYLOAD_BYTES)?;
        let rrl = self.rrl(&raw.server.rrl)?;
        let api_listen = self.address(&raw.api.listen, "127.0.0.1:8053", "api.listen")?;
        let base = self.path.parent().unwrap_or(Path::new("."));
        let api_token_file = base.join(raw.api.token_file.as_deref().unwrap_or("dnsward.token"));
        let store_path = base.join(
            raw.store
                .path
                .as_ref()
                .map_or("dnsward.db", |path| path.get_ref().as_str()),
        );
        let store_etcd = self.etcd(&raw.store)?;
        let node_name = self.node_name(&raw.node)?;
        let local_copy = base.join(
            raw.node
                .local_copy
                .clone()
                .unwrap_or_else(|| format!("{node_name}.served")),
        );
        let keep_last = self.limit(&raw.store.keep_last, limits::KEEP_LAST_VERSIONS)? as usize;
        let health = HealthDefaults {
            interval_ms: self.limit(&raw.health.interval_ms, limits::HEALTH_INTERVAL_MS)?,
            timeout_ms: self.limit(&raw.health.timeout_ms, limits::HEALTH_TIMEOUT_MS)?,
            rise: self.limit(&raw.health.rise, limits::HEALTH_RISE)?,
            fall: self.limit(&raw.health.fall, limits::HEALTH_FALL)?,
        };
        let quorum = match &raw.health.quorum {
            None => model::Quorum::default(),
            Some(text) => model::Quorum::parse(text.get_ref()).ok_or_else(|| {
                self.error(
                    text.span(),
                    format!(
                        "health.quorum \"{}\" is not one of {}",
                        text.get_ref(),
                        model::Quorum::NAMES.join(", ")
                    ),
                )
            })?,
        };
        let guard = GuardPolicy {
            max_remove_fraction: self.fraction(
                &raw.guard.max_remove_fraction,
                limits::GUARD_MAX_REMOVE_FRACTION,
            )?,
            max_change_fraction: self.fraction(
                &raw.guard.max_change_fraction,
                limits::GUARD_MAX_CHANGE_FRACTION,
            )?,
            velocity_window_ms: self.limit(
                &raw.guard.velocity_window_ms,
                limits::GUARD_VELOCITY_WINDOW_MS,
            )?,
            max_removals_per_window: self.limit(
                &raw.guard.max_removals_per_window,
                limits::GUARD_MAX_REMOVALS_PER_WINDOW,
            )?,
        };
        let enactor_count = self.limit(&raw.enactor.count, limits::ENACTOR_COUNT)? as usize;
        let keys = self.keys(&raw.key)?;
        let mut zones: Vec<ZoneConfig> = Vec::new();
        for zone in &raw.zone {
            let name = self.name(&zone.get_ref().name, zone.span(), "zone name")?;
            if zones.iter().any(|z| z.name == name) {
                return Err(self.error(zone.span(), format!("zone {name} is configured twice")));
            }
            let protect = self.protect(zone, &name)?;
            zones.push(ZoneConfig {
                name,
                file: zone.get_ref().file.as_deref().map(|file| base.join(file)),
                allow_transfer: self.allow_transfer(&zone.get_ref().allow_transfer, &keys)?,
                notify: self.notify(&zone.get_ref().notify, &keys)?,
                primary: self.primary(zone, &keys)?,
                protect,
            });
        }
        let mut endpoints: Vec<EndpointSettings> = Vec::new();
        for endpoint in &raw.endpoint {
            let settings = self.endpoint(endpoint, &zones, health)?;
            if endpoints
                .iter()
                .any(|e| e.endpoint.name == settings.endpoint.name)
            {
                return Err(self.error(
                    endpoint.span(),
                    format!("endpoint {} is configured twice", settings.endpoint.name),
                ));
            }
            if let Some(zone) = zones
                .iter()
                .find(|zone| zone.name == settings.zone && zone.primary.is_some())
            {
                return Err(self.error(
                    endpoint.span(),
                    format!(
                        "endpoint {} is in zone {}, a secondary zone: its records come from \
                         the primary; protect the name with `protect` on the zone instead",
                        settings.endpoint.name, zone.name
                    ),
                ));
            }
            endpoints.push(settings);
        }
        if zones.is_empty() {
            return Err(self.error(
                0..0,
                "no [[zone]] configured; add one, e.g. [[zone]] name = \"example.test\"".into(),
            ));
        }
        let validator = self.validator(&raw.validator, server_listen)?;
        Ok(Config {
            file: self.path.to_path_buf(),
            server_listen,
            udp_payload_bytes: udp_payload_bytes as u16,
            rrl,
            api_listen,
            api_token: raw.api.token,
            api_token_file,
            store_path,
            store_etcd,
            node_name,
            local_copy,
            keep_last,
            quorum,
            guard,
            enactor_count,
            zones,
            keys,
            endpoints,
            validator,
        })
    }

    /// `[store] etcd`, checked: at least one `host:port` endpoint, a prefix, the timeout in
    /// bounds, and not beside `path` (a node has one store).
    fn etcd(&self, raw: &RawStore) -> Result<Option<store::EtcdConfig>, ConfigError> {
        let Some(etcd) = &raw.etcd else {
            return Ok(None);
        };
        if let Some(path) = &raw.path {
            return Err(self.error(
                path.span(),
                "[store] has both path and etcd: a node uses one store; remove path to use \
                 etcd, or etcd to use the SQLite file"
                    .to_string(),
            ));
        }
        let etcd = etcd.get_ref();
        if etcd.endpoints.get_ref().is_empty() {
            return Err(self.error(
                etcd.endpoints.span(),
                "store.etcd.endpoints is empty: list the cluster's members, e.g. \
                 [\"127.0.0.1:2379\"]"
                    .to_string(),
            ));
        }
        let mut endpoints = Vec::new();
        for endpoint in etcd.endpoints.get_ref() {
            let text = endpoint.get_ref();
            let bare = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("https://"))
                .unwrap_or(text);
            let port = bare
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(port))) if !host.is_empty() && port > 0 => {
                    endpoints.push(text.clone())
                }
                _ => {
                    return Err(self.error(
                        endpoint.span(),
                        format!(
                            "store.etcd endpoint \"{text}\" is not HOST:PORT (e.g. \
                             \"127.0.0.1:2379\")"
                        ),
                    ))
                }
            }
        }
        let prefix = match &etcd.prefix {
            None => store::EtcdConfig::DEFAULT_PREFIX.to_string(),
            Some(prefix) if prefix.get_ref().trim().is_empty() => {
                return Err(self.error(
                    prefix.span(),
                    "store.etcd.prefix is empty: every key of the store is written under it \
                     (default \"/dnsward/\")"
                        .to_string(),
                ))
            }
            Some(prefix) => prefix.get_ref().clone(),
        };
        let timeout_ms = self.limit(&etcd.timeout_ms, limits::STORE_ETCD_TIMEOUT_MS)?;
        Ok(Some(store::EtcdConfig {
            endpoints,
            prefix,
            timeout: std::time::Duration::from_millis(timeout_ms),
        }))
    }

    /// `[node] name`: letters, digits, `.`, `_` and `-`, at most 63; the host name (or
    /// "dnsward") when not set.
    fn node_name(&self, raw: &RawNode) -> Result<String, ConfigError> {
        let valid = |name: &str| {
            !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        match &raw.name {
            Some(name) if valid(name.get_ref()) => Ok(name.get_ref().clone()),
            Some(name) => Err(self.error(
                name.span(),
                format!(
                    "node.name \"{}\" must be 1 to 63 letters, digits, '.', '_' or '-' (it \
                     names the node in keys, audit entries and metrics)",
                    name.get_ref()
                ),
            )),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                Ok(if valid(&host) {
                    host
                } else {
                    "dnsward".to_string()
                })
            }
        }
    }

    fn rrl(&self, raw: &RawRrl) -> Result<server::RrlConfig, ConfigError> {
        use server::rrl as r;
        let mut exempt = Vec::new();
        if let Some(list) = &raw.exempt {
            if list.get_ref().len() as u64 > r::RRL_EXEMPT_PREFIXES.max {
                return Err(self.error(
                    list.span(),
                    format!(
                        "{} lists at most {} prefixes",
                        r::RRL_EXEMPT_PREFIXES.name,
                        r::RRL_EXEMPT_PREFIXES.max
                    ),
                ));
            }
            for prefix in list.get_ref() {
                exempt.push(
                    server::Prefix::parse(prefix.get_ref())
                        .map_err(|reason| self.error(prefix.span(), reason))?,
                );
            }
        }
        Ok(server::RrlConfig {
            responses_per_second: self
                .limit(&raw.responses_per_second, r::RRL_RESPONSES_PER_SECOND)?
                as u32,
            slip: self.limit(&raw.slip, r::RRL_SLIP)? as u32,
            window_seconds: self.limit(&raw.window_seconds, r::RRL_WINDOW_SECONDS)? as u32,
            ipv4_prefix_length: self.limit(&raw.ipv4_prefix_length, r::RRL_IPV4_PREFIX_LENGTH)?
                as u8,
            ipv6_prefix_length: self.limit(&raw.ipv6_prefix_length, r::RRL_IPV6_PREFIX_LENGTH)?
                as u8,
            table_entries: self.limit(&raw.table_entries, r::RRL_TABLE_ENTRIES)? as usize,
            log_only: raw.log_only.unwrap_or(false),
            exempt,
        })
    }

    fn validator(
        &self,
        raw: &RawValidator,
        server_listen: SocketAddr,
    ) -> Result<ValidatorSettings, ConfigError> {
        use validator::limits as v;
        let mut servers = Vec::new();
        if let Some(list) = &raw.servers {
            if list.get_ref().len() as u64 > v::SERVERS.max {
                return Err(self.error(
                    list.span(),
                    format!(
                        "validator.servers lists {} servers; at most {}",
                        list.get_ref().len(),
                        v::SERVERS.max
                    ),
                ));
            }
            for server in list.get_ref() {
                let address =
                    self.address(&Some(server.clone()), "127.0.0.1:5300", "validator.servers")?;
                servers.push(address);
            }
        }
        let canary = raw.canary.as_ref().is_some_and(|c| *c.get_ref());
        let canary_listen = match &raw.canary_listen {
            None => None,
            Some(_) => Some(self.address(
                &raw.canary_listen,
                "127.0.0.1:5354",
                "validator.canary_listen",
            )?),
        };
        if canary && canary_listen.is_none() {
            let span = raw.canary.as_ref().map(Spanned::span).unwrap_or(0..0);
            return Err(self.error(
                span,
                "validator.canary = true needs validator.canary_listen, the canary listener's own IP:PORT, e.g. \"127.0.0.1:5354\"".into(),
            ));
        }
        if let (Some(listen), Some(value)) = (canary_listen, &raw.canary_listen) {
            if listen == server_listen {
                return Err(self.error(
                    value.span(),
                    format!("validator.canary_listen = \"{listen}\" is server.listen; the canary listener needs its own address"),
                ));
            }
        }
        Ok(ValidatorSettings {
            enabled: raw.enabled.unwrap_or(true),
            interval_ms: self.limit(&raw.interval_ms, v::INTERVAL_MS)?,
            sample_names: self.limit(&raw.sample_names, v::SAMPLE_NAMES)?,
            timeout_ms: self.limit(&raw.timeout_ms, v::QUERY_TIMEOUT_MS)?,
            serial_lag_ms: self.limit(&raw.serial_lag_ms, v::SERIAL_LAG_MS)?,
            good_after_ms: self.limit(&raw.good_after_ms, v::GOOD_AFTER_MS)?,
            health_grace_ms: self.limit(&raw.health_grace_ms, v::HEALTH_GRACE_MS)?,
            health_tolerance: self.fraction(&raw.health_tolerance, v::HEALTH_TOLERANCE)?,
            servers,
            canary,
            canary_listen,
        })
    }

    fn endpoint(
        &self,
        spanned: &Spanned<RawEndpoint>,
        zones: &[ZoneConfig],
        defaults: HealthDefaults,
    ) -> Result<EndpointSettings, ConfigError> {
        let raw = spanned.get_ref();
        let span = spanned.span();
        let name = self.name(&raw.name, span.clone(), "endpoint name")?;
        let zone = zones
            .iter()
            .filter(|zone| zone.name.zone_of(&name))
            .max_by_key(|zone| zone.name.num_labels())
            .ok_or_else(|| {
                self.error(
                    span.clone(),
                    format!(
                        "endpoint {name} is in no configured zone; add a [[zone]] that contains it"
                    ),
                )
            })?
            .name
            .clone();
        let all_down = match &raw.all_down {
            None => AllDownPolicy::default(),
            Some(value) => match value.get_ref().as_str() {
                "serve-all" => AllDownPolicy::ServeAll,
                "keep-last" => AllDownPolicy::KeepLast,
                other => {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "all_down = \"{other}\"; use \"serve-all\" (default) or \"keep-last\""
                        ),
                    ))
                }
            },
        };
        let mut backends = Vec::new();
        for backend in &raw.backends {
            let address: IpAddr = backend.get_ref().address.parse().map_err(|_| {
                self.error(
                    backend.span(),
                    format!(
                        "backend address \"{}\" is not an IP address",
                        backend.get_ref().address
                    ),
                )
            })?;
            let check = match &backend.get_ref().check {
                None => Check::None,
                Some(text) => {
                    Check::parse(text).map_err(|reason| self.error(backend.span(), reason))?
                }
            };
            backends.push(BackendConfig {
                address,
                check,
                weight: backend.get_ref().weight,
            });
        }
        let endpoint = EndpointConfig {
            name: name.clone(),
            ttl: self.limit(&raw.ttl, limits::ENDPOINT_TTL_SECS)? as u32,
            min_answers: self.limit(&raw.min_answers, limits::ENDPOINT_MIN_ANSWERS)? as usize,
            all_down,
            backends,
        };
        endpoint
            .validate()
            .map_err(|reason| self.error(span.clone(), format!("endpoint {name}: {reason}")))?;
        let health = HealthDefaults {
            interval_ms: self.limit_or(
                &raw.interval_ms,
                limits::HEALTH_INTERVAL_MS,
                defaults.interval_ms,
            )?,
            timeout_ms: self.limit_or(
                &raw.timeout_ms,
                limits::HEALTH_TIMEOUT_MS,
                defaults.timeout_ms,
            )?,
            rise: self.limit_or(&raw.rise, limits::HEALTH_RISE, defaults.rise)?,
            fall: self.limit_or(&raw.fall, limits::HEALTH_FALL, defaults.fall)?,
        };
        let at = self.error(span, String::new());
        Ok(EndpointSettings {
            endpoint,
            zone,
            health,
            replace_static: raw.replace_static,
            at: (at.line, at.column),
        })
    }

    fn limit_or(
        &self,
        value: &Option<Spanned<u64>>,
        limit: Limit,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(_) => self.limit(value, limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/etc/dnsward/dnsward.toml"))
    }

    const MINIMAL: &str = "[[zone]]\nname = \"example.test\"\n";

    #[test]
    fn a_minimal_file_gets_every_default() {
        let config = parse_text(MINIMAL).unwrap();
        assert_eq!(config.server_listen, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(config.api_listen, "127.0.0.1:8053".parse().unwrap());
        assert_eq!(config.store_path, Path::new("/etc/dnsward/dnsward.db"));
        assert_eq!(config.enactor_count, 3);
        assert_eq!(config.udp_payload_bytes, 1232);

        assert_eq!(config.guard, GuardPolicy::default());
    }

    #[test]
    fn the_design_example_parses() {
        let text = "[server]\nlisten = \"127.0.0.1:5353\"\n[api]\nlisten = \"127.0.0.1:8053\"\n\
                    [store]\npath = \"dnsward.db\"\n[[zone]]\nname = \"example.test\"\n\
                    file = \"zones/example.test.zone\"\n[[endpoint]]\nname = \"api.example.test\"\n\
                    ttl = 30\nmin_answers = 1\nall_down = \"serve-all\"\n\
                    backends = [ { address = \"127.0.0.10\", check = \"tcp:127.0.0.10:8080\", weight = 1 } ]\n";
        let config = parse_text(text).unwrap();
        assert_eq!(config.endpoints.len(), 1);
        let endpoint = &config.endpoints[0];
        assert_eq!(endpoint.zone.to_ascii(), "example.test.");
        assert_eq!(endpoint.endpoint.ttl, 30);
        assert_eq!(
            config.zones[0].file.as_deref(),
            Some(Path::new("/etc/dnsward/zones/example.test.zone"))
        );
    }

    #[test]
    fn response_rate_limiting_is_on_by_default_and_configured_under_server_rrl() {
        let config = parse_text(MINIMAL).unwrap();
        assert_eq!(config.rrl, server::RrlConfig::default());
        assert_eq!(config.rrl.responses_per_second, 200);
        let text = format!(
            "{MINIMAL}[server.rrl]\nresponses_per_second = 5\nslip = 0\nlog_only = true\n\
             exempt = [\"192.0.2.0/24\", \"2001:db8::1\"]\n"
        );
        let config = parse_text(&text).unwrap();
        assert_eq!(config.rrl.responses_per_second, 5);
        assert_eq!(config.rrl.slip, 0);
        assert!(config.rrl.log_only);
        assert_eq!(config.rrl.exempt[1].to_string(), "2001:db8::1/128");
        let error = parse_text(&format!(
            "{MINIMAL}[server.rrl]\nexempt = [\"192.0.2.0/40\"]\n"
        ))
        .unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        assert!(error.reason.contains("0 to 32"), "{error}");
        let error = parse_text(&format!("{MINIMAL}[server.rrl]\nslip = 11\n")).unwrap_err();
        assert!(error.reason.contains("server.rrl.slip"), "{error}");
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_line() {
        let error = parse_text(&format!(
            "{MINIMAL}[server]\nlisten = \"127.0.0.1:53\"\nlistn = \"x\"\n"
        ))
        .unwrap_err();
        assert_eq!(error.line, 5, "{error}");
        assert!(
            error
                .to_string()
                .starts_with("/etc/dnsward/dnsward.toml:5:"),
            "{error}"
        );
    }

    #[test]
    fn an_out_of_bounds_value_names_its_bounds_and_line() {
        let error = parse_text(&format!("{MINIMAL}[enactor]\ncount = 99\n")).unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        assert!(error.reason.contains("from 1 to 16"), "{error}");
    }

    #[test]
    fn a_bad_policy_is_rejected_with_the_choices() {
        let text = format!("{MINIMAL}[[endpoint]]\nname = \"api.example.test\"\nall_down = \"panic\"\nbackends = [ {{ address = \"127.0.0.10\" }} ]\n");
        let error = parse_text(&text).unwrap_err();
        assert_eq!(error.line, 5, "{error}");
        assert!(error.reason.contains("keep-last"), "{error}");
    }

    #[test]
    fn an_endpoint_outside_every_zone_is_rejected() {
        let text = format!("{MINIMAL}[[endpoint]]\nname = \"api.other.test\"\nbackends = [ {{ address = \"127.0.0.10\" }} ]\n");
        let error = parse_text(&text).unwrap_err();
        assert!(error.reason.contains("in no configured zone"), "{error}");
    }

    #[test]
    fn a_bad_check_is_rejected() {
        let text = format!("{MINIMAL}[[endpoint]]\nname = \"api.example.test\"\nbackends = [ {{ address = \"127.0.0.10\", check = \"icmp:x\" }} ]\n");
        let error = parse_text(&text).unwrap_err();
        assert_eq!(error.line, 5, "{error}");
    }

    #[test]
    fn the_api_token_file_defaults_beside_the_configuration() {
        let config = parse_text(MINIMAL).unwrap();
        assert_eq!(config.api_token, None);
        assert_eq!(
            config.api_token_file,
            Path::new("/etc/dnsward/dnsward.token"),
            "generated there at the first start; every change needs it"
        );
        let config = parse_text(&format!(
            "{MINIMAL}[api]\nlisten = \"0.0.0.0:8053\"\ntoken_file = \"/run/dnsward/token\"\n"
        ))
        .unwrap();
        assert_eq!(config.api_token_file, Path::new("/run/dnsward/token"));
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let error = parse_text("[[zone]]\nname = \"example.test\nfile = 3\n").unwrap_err();
        assert_eq!(error.line, 2, "{error}");
    }

    #[test]
    fn the_validator_runs_by_default_without_canary() {
        let config = parse_text(MINIMAL).unwrap();
        let validator = &config.validator;
        assert!(validator.enabled);
        assert!(!validator.canary);
        assert_eq!(validator.interval_ms, 1_000);
        assert_eq!(validator.good_after_ms, 3_000);
        assert!(validator.servers.is_empty());
    }

    #[test]
    fn validator_keys_are_read_and_checked() {
        let text = format!(
            "{MINIMAL}[validator]\ninterval_ms = 200\nservers = [\"127.0.0.1:5300\"]\ncanary = true\n\
             canary_listen = \"127.0.0.1:5354\"\ngood_after_ms = 500\n"
        );
        let config = parse_text(&text).unwrap();
        assert_eq!(config.validator.interval_ms, 200);
        assert_eq!(
            config.validator.servers,
            vec!["127.0.0.1:5300".parse().unwrap()]
        );
        assert_eq!(
            config.validator.canary_listen,
            Some("127.0.0.1:5354".parse().unwrap())
        );
        assert_eq!(config.validator.good_after_ms, 500);

        let error = parse_text(&format!("{MINIMAL}[validator]\ninterval_ms = 1\n")).unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        assert!(error.reason.contains("validator.interval_ms"), "{error}");
        let error = parse_text(&format!("{MINIMAL}[validator]\ncanary = true\n")).unwrap_err();
        assert!(error.reason.contains("canary_listen"), "{error}");
        let error =
            parse_text(&format!("{MINIMAL}[validator]\nservers = [\"nowhere\"]\n")).unwrap_err();
        assert_eq!(error.line, 4, "{error}");
    }

    #[test]
    fn per_endpoint_health_overrides_the_defaults() {
        let text = format!("{MINIMAL}[health]\nfall = 3\n[[endpoint]]\nname = \"api.example.test\"\nrise = 1\nbackends = [ {{ address = \"127.0.0.10\" }} ]\n");
        let config = parse_text(&text).unwrap();
        assert_eq!(config.endpoints[0].health.rise, 1);
        assert_eq!(config.endpoints[0].health.fall, 3);
    }

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==";

    /// A config with one key block (`algorithm`, `secret`) and the zone's transfer lines.
    fn transfer_config(algorithm: &str, secret: &str, zone_lines: &str) -> String {
        format!(
            "[[key]]\nname = \"xfr-key\"\nalgorithm = \"{algorithm}\"\nsecret = \"{secret}\"\n\
             [[zone]]\nname = \"example.test\"\n{zone_lines}"
        )
    }

    #[test]
    fn transfer_keys_rules_and_notify_targets_parse() {
        let text = transfer_config(
            "hmac-sha512",
            SECRET,
            "allow_transfer = [{ from = \"192.0.2.0/24\", key = \"xfr-key\" }, { from = \"::1\" }]\n\
             notify = [{ address = \"192.0.2.53:53\", key = \"XFR-key.\" }]\n",
        );
        let config = parse_text(&text).unwrap();
        let zone = &config.zones[0];
        assert_eq!(zone.allow_transfer.len(), 2);
        assert_eq!(zone.allow_transfer[0].key.as_deref(), Some("xfr-key"));
        assert_eq!(zone.allow_transfer[1].prefix_length, 128);
        assert_eq!(
            zone.notify,
            vec![("192.0.2.53:53".parse().unwrap(), Some("XFR-key.".into()))]
        );
        assert!(config.keys.get("xfr-key").is_some());
        assert!(
            parse_text(MINIMAL).unwrap().zones[0]
                .allow_transfer
                .is_empty(),
            "off by default"
        );
    }

    #[test]
    fn bad_keys_algorithms_rules_and_targets_are_rejected_at_their_line() {
        let cases = [
            (transfer_config("hmac-md5", SECRET, ""), 3, "hmac-sha256"),
            (transfer_config("hmac-sha256", "not base64", ""), 4, "base64"),
            (transfer_config("hmac-sha256", "c2hvcnQ=", ""), 4, "at least 16"),
            (
                transfer_config("hmac-sha256", SECRET, "allow_transfer = [{ from = \"10.0.0.1/8\" }]\n"),
                7,
                "10.0.0.0/8",
            ),
            (
                transfer_config(
                    "hmac-sha256",
                    SECRET,
                    "allow_transfer = [{ from = \"10.0.0.0/8\", key = \"nokey\" }]\n",
                ),
                7,
                "[[key]]",
            ),
            (
                transfer_config("hmac-sha256", SECRET, "notify = [{ address = \"192.0.2.53\" }]\n"),
                7,
                "IP:PORT",
            ),
            (
                format!("{}[[key]]\nname = \"XFR-KEY.\"\nalgorithm = \"hmac-sha1\"\nsecret = \"{SECRET}\"\n", transfer_config("hmac-sha256", SECRET, "")),
                8,
                "twice",
            ),
        ];
        for (text, line, says) in cases {
            let error = parse_text(&text).unwrap_err();
            assert_eq!(error.line, line, "{error}\n{text}");
            assert!(error.reason.contains(says), "{error}");
        }
    }
}
