//! # api — the HTTP API of a running node, and the types the CLI shares with it
//!
//! Sits beside the data flow: operators and external health feeds talk to a node through
//! it. JSON over HTTP, loopback by default, bearer token when bound elsewhere.
//!
//! * [`router`] builds the axum router over an [`ApiState`].
//! * [`types`] holds the request and response bodies; the CLI deserialises the same types.
//! * The API reaches stages through narrow traits ([`HealthSink`], [`OperatorChanges`]) that
//!   the binary implements, so this crate does not depend on how they are wired.
//!
//! The one design decision to know: the API never moves a ref itself; operator changes go
//! through the same guard as automation (break-glass only with `force` and a reason), and
//! every action lands in the store's audit log.

pub mod metrics;
pub mod operations;
pub mod timeline;
pub mod types;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::{Name, ZoneContent};
use store::{AuditQuery, Store, StoreError};

use metrics::{Gauges, Metrics};
use model::Generation;
use operations::Act;
use types::{
    ActionRequest, ApiErrorBody, AuditEntryBody, AuditResponse, DiffResponse, HealthPushRequest,
    HealthPushResponse, HistoryEntry, HistoryResponse, OperatorChangeRequest, PinRequest,
    PlanRequest, PlanResponse, RollbackRequest, StatusResponse, ZoneActionResponse, ZoneStatus,
};

/// Where pushed health reports go (the health monitor).
pub trait HealthSink: Send + Sync {
    /// Applies reports; an error names addresses that are not configured backends. Returns
    /// the reports that contradict the backend's own latest probes.
    fn push(&self, reports: &[(IpAddr, bool)]) -> Result<Vec<IpAddr>, String>;
    /// The current view, for `GET /v1/health`.
    fn view(&self) -> model::HealthView;
}

/// Guarded operator changes (the enactor's operator path).
pub trait OperatorChanges: Send + Sync {
    /// Submits content for a zone, prepared against `base` (when given); refused changes
    /// trip the breaker and come back as `Err(reasons)`; a zone that moved from `base` is
    /// a conflict and trips nothing.
    fn submit(
        &self,
        zone: &Name,
        content: ZoneContent,
        submission: Submission<'_>,
    ) -> Result<model::Version, OperatorError>;

    /// What submitting `content` would do now; writes nothing.
    fn preview(&self, zone: &Name, content: ZoneContent) -> Result<Preview, OperatorError>;
}

/// Who submits an operator change, why, and against what.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
    pub force: Option<String>,
    pub base: Option<Generation>,
}

/// What an operator change would do (see [`OperatorChanges::preview`]).
#[derive(Debug, Clone)]
pub struct Preview {
    pub base: Option<Generation>,
    pub accepted: bool,
    /// Refused, but only floors stand in the way: `--force` would pass.
    pub forcible: bool,
    pub reasons: Vec<String>,
    /// The sets the change puts, and the sets as they are now that it replaces or removes.
    pub added: ZoneContent,
    pub removed: ZoneContent,
    pub endpoints_touched: Vec<Name>,
}

/// Why an operator change was not applied: the operator path's own error (the node's
/// `enactor::OperatorError`), seen from the API, which does not depend on the enactor.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The guard refused the change and froze the zone; each reason is one finding.
    #[error("zone {zone}: refused by the guard: {}", reasons.join("; "))]
    Refused { zone: Name, reasons: Vec<String> },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What the handlers need.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub health: Option<Arc<dyn HealthSink>>,
    pub operator: Option<Arc<dyn OperatorChanges>>,
    /// When set, every request needs `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Clock seam: milliseconds since the epoch.
    pub now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Counters behind `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The served catalog, whose query counters `/metrics` shows.
    pub catalog: Option<Arc<server::Catalog>>,
    /// Called after a thaw so automation re-plans at once.
    pub on_thaw: Option<Arc<dyn Fn() + Send + Sync>>,
    /// How a zone's last plan converges on health (`status`).
    pub convergence: Option<ConvergenceView>,
    /// The address the API listens on: requests must name it as their Host.
    pub listen: Option<std::net::SocketAddr>,
    /// For a secondary zone: its primary and what the node knows of it (`status`).
    pub primary: Option<PrimaryView>,
    /// The configured secondary zones: listed by `status` even before their first
    /// transfer put a version in the store.
    pub secondary_zones: Vec<Name>,
    /// Who this node is and where its store is, for `status`.
    pub node: Option<NodeInfo>,
}

/// A secondary zone's primary as the node sees it; `None` for a zone that is not one.
/// The node behind an API: its name, its store, and whether it serves its local copy.
#[derive(Clone)]
pub struct NodeInfo {
    pub name: String,
    pub store: String,
    pub serving_local_copy: Arc<std::sync::atomic::AtomicBool>,
    /// Every live node's own health verdicts (node, address → healthy), on a shared store.
    pub checkers: Option<CheckersView>,
}

/// See [`NodeInfo::checkers`].
pub type CheckersView =
    Arc<dyn Fn() -> Vec<(String, std::collections::BTreeMap<String, bool>)> + Send + Sync>;

pub type PrimaryView = Arc<dyn Fn(&Name) -> Option<types::PrimaryStatus> + Send + Sync>;

/// A zone's removals held back by the guard policy, and why each endpoint answers what it
/// answers (the control loop's last plan).
pub type ConvergenceView =
    Arc<dyn Fn(&Name) -> (Vec<model::Deferral>, Vec<(Name, String)>) + Send + Sync>;

/// Largest number of versions one history request returns.
pub const HISTORY_PAGE: model::limits::Limit = model::limits::Limit {
    name: "api.history_page",
    default: 50,
    min: 1,
    max: 10_000,
};

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/zones", get(status))
        .route("/v1/zones/{zone}/history", get(history))
        .route("/v1/zones/{zone}/versions/{generation}", get(version))
        .route("/v1/zones/{zone}/diff", get(diff))
        .route("/v1/zones/{zone}/content", post(operator_change))
        .route("/v1/zones/{zone}/plan", post(plan))
        .route("/v1/zones/{zone}/rollback", post(rollback))
        .route("/v1/zones/{zone}/freeze", post(freeze))
        .route("/v1/zones/{zone}/thaw", post(thaw))
        .route("/v1/zones/{zone}/pin", post(pin))
        .route("/v1/audit", get(audit))
        .route("/v1/timeline", get(timeline))
        .route("/v1/health", get(health_view).post(health_push))
        .route("/metrics", get(metrics_text))
        // Zone files of large zones come in `apply` and `plan` bodies.
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(API_BODY_BYTES.default).unwrap_or(usize::MAX),
        ))
        .with_state(state)
}

/// Largest request body the API reads (a whole zone file for `apply` and `plan`).
pub const API_BODY_BYTES: model::limits::Limit = model::limits::Limit {
    name: "api.body_bytes",
    default: 256 << 20,
    min: 1 << 10,
    max: 4 << 30,
};

/// An error response: status and a JSON body that says what to do.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ApiErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match error {
            StoreError::Conflict { .. } | StoreError::Frozen { .. } => StatusCode::CONFLICT,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Invalid { .. } | StoreError::Refused { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, error.to_string())
    }
}

/// The Host a request names must be this API's address (or `localhost` with its port on a
/// loopback address): a page in a browser that a DNS rebinding pointed at the loopback
/// address names its own host and is refused (421).
fn check_host(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(listen) = state.listen.filter(|listen| !listen.ip().is_unspecified()) else {
        return Ok(());
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let port = listen.port();
    let allowed = host == listen.to_string()
        || (listen.ip().is_loopback()
            && (host == format!("localhost:{port}")
                || (listen.is_ipv4() && host == format!("127.0.0.1:{port}"))
                || (listen.is_ipv6() && host == format!("[::1]:{port}"))));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host '{host}' is not this API (it listens on {listen}); ask it by its address"
            ),
        ))
    }
}

/// A request that only reads: open on a loopback API (any local process may look), the
/// token required elsewhere.
fn authorize_read(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_host(state, headers)?;
    if state.listen.is_some_and(|listen| listen.ip().is_loopback()) {
        return Ok(());
    }
    bearer(state, headers).map(|_| ())
}

/// A request that changes something: the token is required, also on loopback. Returns the
/// actor the audit log records: who authenticated (the token's holder), with what the
/// client says about itself in brackets; never the body's word alone.
fn authorize_write(
    state: &ApiState,
    headers: &HeaderMap,
    claimed: &str,
) -> Result<String, ApiError> {
    check_host(state, headers)?;
    bounded("actor", claimed, API_ACTOR_BYTES)?;
    Ok(match bearer(state, headers)? {
        Some(holder) if claimed.trim().is_empty() || claimed.trim() == holder => holder.into(),
        Some(holder) => format!("{holder} (client: {})", claimed.trim()),
        None => claimed.trim().to_string(),
    })
}

/// The actor a valid token stands for.
pub const TOKEN_HOLDER: &str = "operator";

/// Checks the bearer token when the API has one: `Some(holder)` for a valid one, `None`
/// when the API has no token (a library user's choice; `dnsward run` always has one).
fn bearer(state: &ApiState, headers: &HeaderMap) -> Result<Option<&'static str>, ApiError> {
    let Some(token) = &state.token else {
        return Ok(None);
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): "bearer" is "Bearer".
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(presented) if same_secret(presented.as_bytes(), token.as_bytes()) => {
            Ok(Some(TOKEN_HOLDER))
        }
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: this request changes the node; pass --config \
             (the node's configuration, whose token file the node wrote at its first start), \
             --token-file or --token (or DNSWARD_CONFIG, DNSWARD_TOKEN_FILE, DNSWARD_TOKEN)",
        )),
    }
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn zone_name(text: &str) -> Result<Name, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "'{text}' is not a zone name: give the zone's name, e.g. example.test \
                 (`dnsward status` lists the zones)"
            ),
        ));
    }
    let mut name = Name::from_ascii(trimmed).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("'{text}' is not a zone name: {error}"),
        )
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// Refuses a zone the store holds no version of: runbook commands act on zones that exist
/// (by configuration or import) and never create one as a side effect (a typo'd name in
/// `freeze` would otherwise leave a phantom zone behind).
fn known_zone(store: &dyn Store, zone: &Name) -> Result<(), ApiError> {
    if store.refs(zone)?.active.is_some() || !store.history(zone, 1)?.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = store
        .zones()?
        .into_iter()
        .filter(|(_, refs)| refs.active.is_some())
        .map(|(name, _)| name.to_ascii())
        .collect();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such zone {zone}; known zones: {known}"),
    ))
}

/// Runs a blocking store call off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {error}"),
        )
    })?
}

async fn status(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<StatusResponse>, ApiError> {
    authorize_read(&state, &headers)?;
    let store = state.store.clone();
    let convergence = state.convergence.clone();
    let primary = state.primary.clone();
    let secondary_zones = state.secondary_zones.clone();
    let zones = blocking(move || {
        let mut zones = Vec::new();
        for (zone, refs) in store.zones()? {
            let breaker = store.breaker(&zone)?;
            let active = refs
                .active
                .map(|generation| store.version(&zone, generation))
                .transpose()?;
            let serial = active.as_ref().map(|version| version.serial);
            let forced = active
                .as_ref()
                .filter(|version| version.provenance == model::Provenance::Forced)
                .map(|version| {
                    format!(
                        "forced below floor by {} (generation {}): {}",
                        version.actor, version.generation, version.reason
                    )
                });
            let (deferred, endpoints) = convergence
                .as_ref()
                .map(|convergence| convergence(&zone))
                .unwrap_or_default();
            zones.push(ZoneStatus {
                zone: zone.to_ascii(),
                active: refs.active.map(|g| g.0),
                canary: refs.canary.map(|g| g.0),
                serial,
                breaker: breaker.state_name().to_string(),
                breaker_reason: types::breaker_reason(&breaker),
                forced,
                primary: primary.as_ref().and_then(|primary| primary(&zone)),
                deferred: deferred
                    .iter()
                    .map(types::DeferralBody::from_deferral)
                    .collect(),
                endpoints: endpoints
                    .into_iter()
                    .map(|(name, why)| types::EndpointWhy {
                        endpoint: name.to_ascii(),
                        why,
                    })
                    .collect(),
            });
        }
        // A secondary zone whose first transfer has not succeeded has no version yet: it is
        // listed with its primary (and why it cannot transfer) all the same.
        for zone in &secondary_zones {
            let listed = zones
                .iter()
                .any(|status: &ZoneStatus| status.zone.eq_ignore_ascii_case(&zone.to_ascii()));
            if !listed {
                zones.push(ZoneStatus {
                    zone: zone.to_ascii(),
                    active: None,
                    canary: None,
                    serial: None,
                    breaker: model::Breaker::Closed.state_name().to_string(),
                    breaker_reason: None,
                    forced: None,
                    primary: primary.as_ref().and_then(|primary| primary(zone)),
                    deferred: Vec::new(),
                    endpoints: Vec::new(),
                });
            }
        }
        Ok(zones)
    })
    .await;
    let node = state.node.as_ref().map(|node| types::NodeStatus {
        name: node.name.clone(),
        store: node.store.clone(),
        serving_local_copy: node
            .serving_local_copy
            .load(std::sync::atomic::Ordering::SeqCst),
        store_error: None,
        checkers: node
            .checkers
            .as_ref()
            .map(|checkers| {
                checkers()
                    .into_iter()
                    .map(|(node, verdicts)| types::CheckerStatus { node, verdicts })
                    .collect()
            })
            .unwrap_or_default(),
    });
    match (zones, node, &state.catalog) {
        (Ok(zones), node, _) => Ok(Json(StatusResponse { zones, node })),
        // A node whose store cannot be read still says what it serves (from memory) and why
        // the rest is missing: the outage is when an operator needs status most.
        (Err(error), Some(mut node), Some(catalog)) => {
            node.store_error = Some(error.message);
            let zones = catalog
                .snapshot()
                .list()
                .into_iter()
                .map(|(zone, generation)| ZoneStatus {
                    serial: catalog.snapshot().get(&zone).map(|served| served.serial()),
                    zone: zone.to_ascii(),
                    active: Some(generation.0),
                    canary: None,
                    breaker: "unknown".to_string(),
                    breaker_reason: None,
                    forced: None,
                    primary: None,
                    deferred: Vec::new(),
                    endpoints: Vec::new(),
                })
                .collect();
            Ok(Json(StatusResponse {
                zones,
                node: Some(node),
            }))
        }
        (Err(error), _, _) => Err(error),
    }
}

#[derive(Debug, serde::Deserialize)]
struct HistoryQuery {
    limit: Option<u64>,
}

async fn history(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryResponse>, ApiError> {
    authorize_read(&state, &headers)?;
    let zone = zone_name(&zone)?;
    let limit = HISTORY_PAGE.clamp(query.limit) as usize;
    let store = state.store.clone();
    let response = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let refs = store.refs(&zone)?;
        let versions = store.history(&zone, limit)?;
        let refusals = store.audit(&AuditQuery {
            zone: Some(zone.clone()),
            ..AuditQuery::default()
        })?;
        let mut entries: Vec<HistoryEntry> = versions
            .iter()
            .map(|version| HistoryEntry::from_version(version, &refs))
            .collect();
        entries.extend(
            refusals
                .iter()
                .filter(|entry| entry.action == store::actions::REFUSED)
                .map(HistoryEntry::from_refusal),
        );
        entries.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then(b.generation.cmp(&a.generation)));
        entries.truncate(limit);
        Ok(HistoryResponse {
            zone: zone.to_ascii(),
            active: refs.active.map(|g| g.0),
            canary: refs.canary.map(|g| g.0),
            entries,
        })
    })
    .await?;
    Ok(Json(response))
}

async fn operator_change(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<OperatorChangeRequest>,
) -> Result<Json<HistoryEntry>, ApiError> {
    let actor = authorize_write(&state, &headers, &request.actor)?;
    let zone = zone_name(&zone)?;
    let operator = operator_path(&state)?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a reason is required for the audit log",
        ));
    }
    require_reason(&request.actor, &request.reason)?;
    if let Some(force) = &request.force {
        bounded("override reason", force, API_REASON_BYTES)?;
    }
    let content = request_zone(&request.zone_file, &zone)?;
    let store = state.store.clone();
    let result = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let refs = store.refs(&zone)?;
        let submission = Submission {
            actor: &actor,
            reason: &request.reason,
            force: request.force.clone(),
            base: request.base.map(Generation),
        };
        match operator.submit(&zone, content, submission) {
            Ok(version) => Ok(HistoryEntry::from_version(&version, &model::Refs { active: Some(version.generation), ..refs })),
            Err(OperatorError::Refused { reasons, .. }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("refused, the zone's breaker is tripped and the previous version keeps serving: {}; fix the change, or thaw and resubmit with force and a reason", reasons.join("; ")),
            )),
            Err(OperatorError::Store(error)) => Err(error.into()),
        }
    })
    .await?;
    Ok(Json(result))
}

/// The node's guarded operator path, or 501 on a node without one.
fn operator_path(state: &ApiState) -> Result<Arc<dyn OperatorChanges>, ApiError> {
    state.operator.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this node takes no operator changes",
        )
    })
}

/// A zone file sent in a request body, parsed for `zone`.
fn request_zone(text: &str, zone: &Name) -> Result<ZoneContent, ApiError> {
    zonefile::parse_untrusted(text, std::path::Path::new("request"), Some(zone))
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))
}

async fn plan(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<PlanRequest>,
) -> Result<Json<PlanResponse>, ApiError> {
    authorize_write(&state, &headers, "")?;
    let zone = zone_name(&zone)?;
    let operator = operator_path(&state)?;
    let content = request_zone(&request.zone_file, &zone)?;
    let store = state.store.clone();
    let response = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let preview = operator
            .preview(&zone, content)
            .map_err(|error| match error {
                OperatorError::Store(error) => ApiError::from(error),
                other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
            })?;
        let (added, removed) = operations::changed_lines(&preview.added, &preview.removed);
        Ok(PlanResponse {
            zone: zone.to_ascii(),
            base: preview.base.map(|g| g.0),
            verdict: match (preview.accepted, preview.forcible) {
                (true, _) => "accept",
                (false, true) => "refuse-unless-forced",
                (false, false) => "refuse",
            }
            .to_string(),
            reasons: preview.reasons,
            added,
            removed,
            endpoints_touched: preview
                .endpoints_touched
                .iter()
                .map(|name| name.to_ascii())
                .collect(),
        })
    })
    .await?;
    Ok(Json(response))
}

async fn health_view(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<types::HealthViewBody>, ApiError> {
    authorize_read(&state, &headers)?;
    let Some(health) = &state.health else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this node has no health monitor",
        ));
    };
    Ok(Json(types::HealthViewBody::from_view(&health.view())))
}

async fn health_push(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Json(request): Json<HealthPushRequest>,
) -> Result<Json<HealthPushResponse>, ApiError> {
    let actor = authorize_write(&state, &headers, "")?;
    let Some(health) = &state.health else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this node has no health monitor",
        ));
    };
    let mut reports = Vec::with_capacity(request.reports.len());
    for report in &request.reports {
        let address: IpAddr = report.address.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("'{}' is not an IP address", report.address),
            )
        })?;
        reports.push((address, report.healthy));
    }
    let contradicting = health
        .push(&reports)
        .map_err(|error| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error))?;
    tracing::debug!(reports = reports.len(), %actor, "health reports pushed");
    for address in &contradicting {
        let reported = reports
            .iter()
            .find(|(a, _)| a == address)
            .map_or(
                "?",
                |(_, healthy)| if *healthy { "healthy" } else { "unhealthy" },
            );
        tracing::warn!(%address, reported, %actor, "a pushed health report contradicts the backend's latest probe; applied as pushed");
    }
    state
        .metrics
        .count_contradicting_health_reports(contradicting.len());
    Ok(Json(HealthPushResponse {
        accepted: reports.len(),
        contradicting_probes: contradicting.iter().map(ToString::to_string).collect(),
    }))
}

fn require_reason(actor: &str, reason: &str) -> Result<(), ApiError> {
    if actor.trim().is_empty() || reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "an actor and a reason are required for the audit log",
        ));
    }
    bounded("actor", actor, API_ACTOR_BYTES)?;
    bounded("reason", reason, API_REASON_BYTES)
}

/// Refuses a text longer than its limit: the audit log is append-only, and what it keeps
/// is read back by every timeline and history.
fn bounded(what: &str, text: &str, limit: model::limits::Limit) -> Result<(), ApiError> {
    if text.len() as u64 > limit.default {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the {what} has {} bytes, at most {} are kept ({}); say it shorter, with a \
                 link to where the details are",
                text.len(),
                limit.default,
                limit.name
            ),
        ));
    }
    Ok(())
}

/// Longest reason (or override reason) an API request may give.
pub const API_REASON_BYTES: model::limits::Limit = model::limits::Limit {
    name: "api.reason_bytes",
    default: 1024,
    min: 1,
    max: 65_536,
};

/// Longest actor name an API request may give.
pub const API_ACTOR_BYTES: model::limits::Limit = model::limits::Limit {
    name: "api.actor_bytes",
    default: 256,
    min: 1,
    max: 4096,
};

fn zone_action_response(
    store: &dyn Store,
    zone: &Name,
    created: Option<HistoryEntry>,
) -> Result<ZoneActionResponse, ApiError> {
    let breaker = store.breaker(zone)?;
    Ok(ZoneActionResponse {
        zone: zone.to_ascii(),
        active: store.refs(zone)?.active.map(|g| g.0),
        breaker: breaker.state_name().to_string(),
        breaker_reason: types::breaker_reason(&breaker),
        created,
    })
}

async fn version(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((zone, generation)): Path<(String, u64)>,
) -> Result<Json<HistoryEntry>, ApiError> {
    authorize_read(&state, &headers)?;
    let zone = zone_name(&zone)?;
    let store = state.store.clone();
    let entry = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let refs = store.refs(&zone)?;
        let version = store.version(&zone, Generation(generation))?;
        Ok(HistoryEntry::from_version(&version, &refs))
    })
    .await?;
    Ok(Json(entry))
}

#[derive(Debug, serde::Deserialize)]
struct DiffQuery {
    from: u64,
    to: u64,
}

async fn diff(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<DiffResponse>, ApiError> {
    authorize_read(&state, &headers)?;
    let zone = zone_name(&zone)?;
    let store = state.store.clone();
    let response = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let diff = operations::diff(
            store.as_ref(),
            &zone,
            Generation(query.from),
            Generation(query.to),
        )?;
        Ok(DiffResponse {
            zone: zone.to_ascii(),
            from: query.from,
            to: query.to,
            added: diff.added,
            removed: diff.removed,
        })
    })
    .await?;
    Ok(Json(response))
}

async fn rollback(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> Result<Json<ZoneActionResponse>, ApiError> {
    require_reason(&request.actor, &request.reason)?;
    let actor = authorize_write(&state, &headers, &request.actor)?;
    let zone = zone_name(&zone)?;
    let store = state.store.clone();
    let now_ms = (state.now_ms)();
    let response = blocking(move || {
        let act = Act {
            actor: &actor,
            reason: &request.reason,
            now_ms,
        };
        known_zone(store.as_ref(), &zone)?;
        let version = operations::rollback(store.as_ref(), &zone, Generation(request.to), act)?;
        let refs = store.refs(&zone)?;
        let created = HistoryEntry::from_version(&version, &refs);
        zone_action_response(store.as_ref(), &zone, Some(created))
    })
    .await?;
    Ok(Json(response))
}

/// A freeze or a thaw: the breaker change, then the zone's refs and breaker.
type BreakerOperation = fn(&dyn Store, &Name, Act<'_>) -> Result<model::Breaker, StoreError>;

async fn change_breaker(
    state: &ApiState,
    headers: &HeaderMap,
    zone: &str,
    request: ActionRequest,
    operation: BreakerOperation,
) -> Result<Json<ZoneActionResponse>, ApiError> {
    require_reason(&request.actor, &request.reason)?;
    let actor = authorize_write(state, headers, &request.actor)?;
    let zone = zone_name(zone)?;
    let store = state.store.clone();
    let now_ms = (state.now_ms)();
    let response = blocking(move || {
        let act = Act {
            actor: &actor,
            reason: &request.reason,
            now_ms,
        };
        known_zone(store.as_ref(), &zone)?;
        operation(store.as_ref(), &zone, act)?;
        zone_action_response(store.as_ref(), &zone, None)
    })
    .await?;
    Ok(Json(response))
}

async fn freeze(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<ActionRequest>,
) -> Result<Json<ZoneActionResponse>, ApiError> {
    change_breaker(&state, &headers, &zone, request, operations::freeze).await
}

async fn thaw(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<ActionRequest>,
) -> Result<Json<ZoneActionResponse>, ApiError> {
    let response = change_breaker(&state, &headers, &zone, request, operations::thaw).await?;
    if let Some(on_thaw) = &state.on_thaw {
        on_thaw();
    }
    Ok(response)
}

async fn pin(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Json(request): Json<PinRequest>,
) -> Result<Json<HistoryEntry>, ApiError> {
    require_reason(&request.actor, &request.reason)?;
    let actor = authorize_write(&state, &headers, &request.actor)?;
    let zone = zone_name(&zone)?;
    let store = state.store.clone();
    let now_ms = (state.now_ms)();
    let entry = blocking(move || {
        known_zone(store.as_ref(), &zone)?;
        let generation = Generation(request.generation);
        operations::pin(
            store.as_ref(),
            &zone,
            generation,
            request.pinned,
            Act {
                actor: &actor,
                reason: &request.reason,
                now_ms,
            },
        )?;
        let refs = store.refs(&zone)?;
        Ok(HistoryEntry::from_version(
            &store.version(&zone, generation)?,
            &refs,
        ))
    })
    .await?;
    Ok(Json(entry))
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuditParams {
    zone: Option<String>,
    since_ms: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

fn audit_query(params: &AuditParams) -> Result<AuditQuery, ApiError> {
    Ok(AuditQuery {
        zone: params.zone.as_deref().map(zone_name).transpose()?,
        since_ms: params.since_ms,
        after_sequence: params.after,
        limit: params.limit,
    })
}

async fn audit(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditResponse>, ApiError> {
    authorize_read(&state, &headers)?;
    let query = audit_query(&params)?;
    let store = state.store.clone();
    let entries = blocking(move || Ok(store.audit(&query)?)).await?;
    Ok(Json(AuditResponse {
        entries: entries.iter().map(AuditEntryBody::from_entry).collect(),
    }))
}

/// Every audit entry matching `query`, following pages.
pub fn read_all_audit(
    store: &dyn Store,
    query: &AuditQuery,
) -> Result<Vec<model::AuditEntry>, StoreError> {
    let mut entries: Vec<model::AuditEntry> = Vec::new();
    let mut page = query.clone();
    loop {
        let batch = store.audit(&page)?;
        let Some(last) = batch.last() else { break };
        page.after_sequence = Some(last.sequence);
        let full = batch.len()
            >= page
                .limit
                .unwrap_or(model::limits::AUDIT_PAGE.default as usize);
        entries.extend(batch);
        if !full {
            break;
        }
    }
    Ok(entries)
}

async fn timeline(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers)?;
    let query = audit_query(&params)?;
    let scope = match &params.zone {
        Some(zone) => format!("zone {zone}"),
        None => "all zones".to_string(),
    };
    let store = state.store.clone();
    let entries = blocking(move || Ok(read_all_audit(store.as_ref(), &query)?)).await?;
    let text = timeline::render(&entries, &scope);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/markdown; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn metrics_text(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize_read(&state, &headers)?;
    let store = state.store.clone();
    let mut gauges = blocking(move || {
        let mut gauges = Gauges::default();
        for (zone, refs) in store.zones()? {
            let name = zone.to_ascii();
            if let Some(active) = refs.active {
                gauges.active_generation.push((name.clone(), active.0));
            }
            gauges
                .breaker_tripped
                .push((name, !store.breaker(&zone)?.allows_automation()));
        }
        Ok(gauges)
    })
    .await?;
    if let Some(health) = &state.health {
        gauges.backend_healthy = health
            .view()
            .backends
            .iter()
            .map(|(address, backend)| (address.to_string(), backend.healthy))
            .collect();
    }
    gauges.queries = state.catalog.as_ref().map(|catalog| catalog.query_totals());
    let text = state.metrics.render(&gauges);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response())
}

/// Counts audit events into `metrics` by tailing the log every `interval` until the task is
/// dropped. Starts after the newest entry at start-up (counters begin at zero).
pub async fn tail_audit(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    interval: std::time::Duration,
) {
    let mut after: Option<u64> = None;
    let mut first = true;
    loop {
        let read_store = Arc::clone(&store);
        let query = AuditQuery {
            after_sequence: after,
            ..AuditQuery::default()
        };
        let read =
            tokio::task::spawn_blocking(move || read_all_audit(read_store.as_ref(), &query)).await;
        if let Ok(Ok(entries)) = read {
            if let Some(last) = entries.last() {
                after = Some(last.sequence);
                metrics
                    .audit_sequence
                    .store(last.sequence, std::sync::atomic::Ordering::Relaxed);
            }
            if !first {
                for entry in &entries {
                    metrics.count_audit_event(&entry.action);
                }
            }
            first = false;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    /// Every route the router serves, as written in `openapi.yaml`.
    const ROUTES: &[&str] = &[
        "/v1/status",
        "/v1/zones",
        "/v1/zones/{zone}/history",
        "/v1/zones/{zone}/versions/{generation}",
        "/v1/zones/{zone}/diff",
        "/v1/zones/{zone}/content",
        "/v1/zones/{zone}/plan",
        "/v1/zones/{zone}/rollback",
        "/v1/zones/{zone}/freeze",
        "/v1/zones/{zone}/thaw",
        "/v1/zones/{zone}/pin",
        "/v1/audit",
        "/v1/timeline",
        "/v1/health",
        "/metrics",
    ];

    #[test]
    fn the_openapi_file_describes_every_route_and_no_other() {
        let spec = include_str!("../openapi.yaml");
        let documented: Vec<&str> = spec
            .lines()
            .filter(|line| line.starts_with("  /") && line.trim_end().ends_with(':'))
            .map(|line| line.trim().trim_end_matches(':'))
            .collect();
        assert_eq!(documented, ROUTES);
        let source = include_str!("lib.rs");
        for route in ROUTES {
            assert!(
                source.contains(&format!(".route(\"{route}\"")),
                "{route} is documented but not routed"
            );
        }
    }
}
