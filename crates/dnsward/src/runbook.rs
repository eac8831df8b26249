//! Runbook commands against a running node's HTTP API: tables for people, `--json` for
//! machines, errors that say what to do.

use api::types::{
    ActionRequest, ApiErrorBody, AuditResponse, DiffResponse, HistoryEntry, HistoryResponse,
    OperatorChangeRequest, PinRequest, PlanRequest, PlanResponse, RollbackRequest, StatusResponse,
    ZoneActionResponse,
};
use clap::Args;
use serde::de::DeserializeOwned;

use crate::CliError;

/// Options every runbook command takes.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The node's API.
    #[arg(
        long,
        global = true,
        default_value = DEFAULT_API,
        env = "DNSWARD_API"
    )]
    pub api: String,
    /// The node's configuration: the API address (`api.listen`) and token (`api.token`, or
    /// the `api.token_file` the node wrote at its first start) come from it.
    #[arg(long, global = true, env = "DNSWARD_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Bearer token (commands that change something need it; reads on a loopback API do
    /// not).
    #[arg(long, global = true, env = "DNSWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token (e.g. the node's `api.token_file`).
    #[arg(long, global = true, env = "DNSWARD_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The zone, e.g. example.test
    pub zone: String,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

fn get<T: DeserializeOwned>(api: &ApiArgs, path: &str) -> Result<T, CliError> {
    call(api, path, None::<&()>)
}

fn post<B: serde::Serialize, T: DeserializeOwned>(
    api: &ApiArgs,
    path: &str,
    body: &B,
) -> Result<T, CliError> {
    call(api, path, Some(body))
}

/// The API's address and token: `--token` first, then `--token-file`, then the
/// configuration's (which also gives the address, unless `--api` was given explicitly).
fn endpoint(api: &ApiArgs) -> Result<(String, Option<String>), CliError> {
    let config = api
        .config
        .as_deref()
        .map(crate::config::load)
        .transpose()
        .map_err(|error| CliError::Usage {
            message: error.to_string(),
        })?;
    let base = match &config {
        Some(config) if api.api == DEFAULT_API => format!("http://{}", config.api_listen),
        _ => api.api.clone(),
    };
    let token = match (&api.token, &api.token_file, &config) {
        (Some(token), _, _) => Some(token.clone()),
        (None, Some(file), _) => Some(crate::token::read(file)?),
        (None, None, Some(config)) => match &config.api_token {
            Some(token) => Some(token.clone()),
            None if config.api_token_file.exists() => {
                Some(crate::token::read(&config.api_token_file)?)
            }
            None => None,
        },
        (None, None, None) => None,
    };
    Ok((base, token))
}

/// `--api`'s default.
const DEFAULT_API: &str = "http://127.0.0.1:8053";

/// GET (no body) or POST (JSON body) to the API; the JSON answer, or the API's error as a
/// CLI error.
fn call<B: serde::Serialize, T: DeserializeOwned>(
    api: &ApiArgs,
    path: &str,
    body: Option<&B>,
) -> Result<T, CliError> {
    let (base, token) = endpoint(api)?;
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let authorization = token.map(|token| format!("Bearer {token}"));
    let sent = match body {
        None => {
            let mut request = ureq::get(&url).config().http_status_as_error(false).build();
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request.call()
        }
        Some(body) => {
            let mut request = ureq::post(&url)
                .config()
                .http_status_as_error(false)
                .build();
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            request.send_json(body)
        }
    };
    let mut response = sent.map_err(|error| CliError::Usage {
        message: format!(
            "cannot reach the dnsward API at {}: {error}; is `dnsward run` running there? (set --api or DNSWARD_API)",
            api.api
        ),
    })?;
    let status = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|error| CliError::Usage {
            message: format!("{url}: unreadable response: {error}"),
        })?;
    if !status.is_success() {
        let message = serde_json::from_str::<ApiErrorBody>(&body)
            .map(|body| body.error)
            .unwrap_or(body);
        return Err(CliError::Usage {
            message: format!("{url}: {status}: {message}"),
        });
    }
    serde_json::from_str(&body).map_err(|error| CliError::Usage {
        message: format!(
            "{url}: unexpected response ({error}); are the CLI and the node the same version?"
        ),
    })
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|error| CliError::Usage {
        message: format!("cannot encode JSON: {error}"),
    })?;
    println!("{text}");
    Ok(())
}

pub use api::timeline::format_time;

pub fn status(args: StatusArgs) -> Result<(), CliError> {
    let response: StatusResponse = get(&args.api, "/v1/status")?;
    if args.api.json {
        return print_json(&response);
    }
    if let Some(node) = &response.node {
        println!("node {} on store {}", node.name, node.store);
        if node.serving_local_copy {
            println!(
                "WARNING: the store could not be read when this node started: it serves its \
                 local copy of the zones until it can"
            );
        }
        for checker in &node.checkers {
            let verdicts: Vec<String> = checker
                .verdicts
                .iter()
                .map(|(address, healthy)| {
                    format!("{address} {}", if *healthy { "up" } else { "down" })
                })
                .collect();
            println!("checker {}: {}", checker.node, verdicts.join(", "));
        }
        if let Some(error) = &node.store_error {
            println!(
                "WARNING: the store cannot be read ({error}); zones below are what this node \
                 serves from memory"
            );
        }
    }
    println!(
        "{:<28} {:>8} {:>8} {:>12}  breaker",
        "zone", "active", "canary", "serial"
    );
    for zone in &response.zones {
        let show = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<28} {:>8} {:>8} {:>12}  {}{}",
            zone.zone,
            show(zone.active),
            show(zone.canary),
            zone.serial
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            zone.breaker,
            zone.breaker_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        if let Some(forced) = &zone.forced {
            println!("{:<28} {forced}", "");
        }
        if let Some(primary) = &zone.primary {
            let serial = primary.serial.map_or_else(
                || "not reached yet".to_string(),
                |serial| format!("serial {serial}"),
            );
            println!("{:<28} primary {}: {serial}", "", primary.address);
            for line in [&primary.last_transfer, &primary.last_error]
                .into_iter()
                .flatten()
            {
                println!("{:<28} {line}", "");
            }
            if primary.expired {
                println!("{:<28} EXPIRED: the primary has not answered for longer than the SOA expire; still serving the held version", "");
            }
        }
        // Endpoints whose answer is not simply their healthy backends.
        for endpoint in zone.endpoints.iter().filter(|endpoint| {
            endpoint.why.contains("fewer than min_answers") || endpoint.why.contains("not probed")
        }) {
            println!("{:<28} {}", "", endpoint.why);
        }
        for deferral in &zone.deferred {
            let lifts = deferral
                .lifts_at_ms
                .map(|at| format!("; lifts at {}", format_time(at)))
                .unwrap_or_else(|| "; at the next plan".to_string());
            println!(
                "{:<28} {}: still serving {} (removal deferred by the {}{lifts})",
                "",
                deferral.endpoint,
                deferral.still_served.join(", "),
                deferral.why
            );
        }
    }
    Ok(())
}

pub fn history(args: HistoryArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let response: HistoryResponse = get(
        &args.api,
        &format!("/v1/zones/{zone}/history?limit={}", args.limit),
    )?;
    if args.api.json {
        return print_json(&response);
    }
    println!(
        "{:>6} {:<23} {:<16} {:<7} {:<22} verdict — reason",
        "gen", "time (UTC)", "provenance", "ref", "actor"
    );
    for entry in &response.entries {
        println!(
            "{:>6} {:<23} {:<16} {:<7} {:<22} {} — {}",
            entry
                .generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            format_time(entry.at_ms),
            entry.provenance,
            entry.reference,
            entry.actor,
            if entry.verdict == "accepted" {
                "accepted"
            } else {
                "REFUSED"
            },
            entry.reason
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The zone.
    pub zone: String,
    /// The older generation.
    pub from: u64,
    /// The newer generation.
    pub to: u64,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The zone.
    pub zone: String,
    /// The generation whose content to restore (as a new generation).
    #[arg(long)]
    pub to: u64,
    /// Why, for the audit log and the timeline.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct BreakerArgs {
    /// The zone.
    pub zone: String,
    /// Why, for the audit log and the timeline.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The zone.
    pub zone: String,
    /// The generation to keep through clean-up.
    pub generation: u64,
    /// Unpin instead.
    #[arg(long)]
    pub unpin: bool,
    /// Why, for the audit log.
    #[arg(long, default_value = "pinned by an operator")]
    pub reason: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Only this zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Only events at or after this time: milliseconds since the epoch, or a duration back
    /// from now such as 30m, 2h, 1d.
    #[arg(long)]
    pub since: Option<String>,
    /// Write the markdown here instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The zone.
    pub zone: String,
    /// Zone file with the zone's new content.
    pub file: std::path::PathBuf,
    /// Why, for the audit log.
    #[arg(long)]
    pub reason: String,
    /// Break-glass: allow going below a protected name's floor, with this reason (audited).
    #[arg(long, value_name = "REASON")]
    pub force: Option<String>,
    /// The active generation the change was prepared against (printed by `dnsward plan`):
    /// refused, nothing changed, when the zone moved since.
    #[arg(long, value_name = "GENERATION")]
    pub base: Option<u64>,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The zone.
    pub zone: String,
    /// Zone file with the zone's new content.
    pub file: std::path::PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// The zone argument of a runbook command, refused when empty or the root: no runbook
/// command acts on the root by accident (`freeze ''` would otherwise freeze ".").
fn zone_path(zone: &str) -> Result<String, CliError> {
    let trimmed = zone.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Err(CliError::Usage {
            message: format!(
                "'{zone}' is not a zone name: give the zone's name, e.g. example.test \
                 (`dnsward status` lists the zones)"
            ),
        });
    }
    Ok(crate::zone_command::parse_name(trimmed)?.to_ascii())
}

fn print_zone_action(
    api: &ApiArgs,
    response: &ZoneActionResponse,
    what: &str,
) -> Result<(), CliError> {
    if api.json {
        return print_json(response);
    }
    println!(
        "{what}: zone {} active generation {} breaker {}{}",
        response.zone,
        response
            .active
            .map(|g| g.to_string())
            .unwrap_or_else(|| "-".into()),
        response.breaker,
        response
            .breaker_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    Ok(())
}

pub fn diff(args: DiffArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let response: DiffResponse = get(
        &args.api,
        &format!("/v1/zones/{zone}/diff?from={}&to={}", args.from, args.to),
    )?;
    if args.api.json {
        return print_json(&response);
    }
    println!(
        "--- {zone} generation {}\n+++ {zone} generation {}",
        response.from, response.to
    );
    for line in &response.removed {
        println!("-{line}");
    }
    for line in &response.added {
        println!("+{line}");
    }
    if response.added.is_empty() && response.removed.is_empty() {
        println!("(no difference)");
    }
    Ok(())
}

pub fn rollback(args: RollbackArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let body = RollbackRequest {
        to: args.to,
        actor: crate::actor("rollback"),
        reason: args.reason.clone(),
    };
    let response: ZoneActionResponse =
        post(&args.api, &format!("/v1/zones/{zone}/rollback"), &body)?;
    print_zone_action(
        &args.api,
        &response,
        &format!("rolled back to the content of generation {}", args.to),
    )?;
    if !args.api.json {
        println!("the zone is frozen so automation does not undo this; `dnsward thaw {zone} --reason ...` resumes it");
    }
    Ok(())
}

pub fn freeze(args: BreakerArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let body = ActionRequest {
        actor: crate::actor("freeze"),
        reason: args.reason.clone(),
    };
    let response: ZoneActionResponse = post(&args.api, &format!("/v1/zones/{zone}/freeze"), &body)?;
    print_zone_action(&args.api, &response, "frozen")
}

pub fn thaw(args: BreakerArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let body = ActionRequest {
        actor: crate::actor("thaw"),
        reason: args.reason.clone(),
    };
    let response: ZoneActionResponse = post(&args.api, &format!("/v1/zones/{zone}/thaw"), &body)?;
    print_zone_action(&args.api, &response, "thawed")
}

pub fn pin(args: PinArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let body = PinRequest {
        generation: args.generation,
        pinned: !args.unpin,
        actor: crate::actor("pin"),
        reason: args.reason.clone(),
    };
    let entry: HistoryEntry = post(&args.api, &format!("/v1/zones/{zone}/pin"), &body)?;
    if args.api.json {
        return print_json(&entry);
    }
    println!(
        "zone {zone} generation {} {}",
        args.generation,
        if entry.pinned {
            "pinned: clean-up keeps it"
        } else {
            "unpinned"
        }
    );
    Ok(())
}

pub fn apply(args: ApplyArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let zone_file = read_zone_file(&args.file)?;
    let body = OperatorChangeRequest {
        zone_file,
        actor: crate::actor("apply"),
        reason: args.reason.clone(),
        force: args.force.clone(),
        base: args.base,
    };
    let entry: HistoryEntry = post(&args.api, &format!("/v1/zones/{zone}/content"), &body)?;
    if args.api.json {
        return print_json(&entry);
    }
    println!(
        "zone {zone} generation {} active (serial {})",
        entry.generation.map(|g| g.to_string()).unwrap_or_default(),
        entry.serial.map(|s| s.to_string()).unwrap_or_default()
    );
    Ok(())
}

fn read_zone_file(path: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Shows what `apply` of the file would do, without doing it: the records it adds and
/// removes against the active version, the protected names it touches, the guard's verdict,
/// and the `apply` command that applies exactly this (with `--base`).
pub fn plan(args: PlanArgs) -> Result<(), CliError> {
    let zone = zone_path(&args.zone)?;
    let zone_file = read_zone_file(&args.file)?;
    let response: PlanResponse = post(
        &args.api,
        &format!("/v1/zones/{zone}/plan"),
        &PlanRequest { zone_file },
    )?;
    if args.api.json {
        return print_json(&response);
    }
    let base = response
        .base
        .map(|g| format!("generation {g}"))
        .unwrap_or_else(|| "no version".to_string());
    println!("zone {zone}: against the active {base}");
    for line in &response.removed {
        println!("-{line}");
    }
    for line in &response.added {
        println!("+{line}");
    }
    if response.added.is_empty() && response.removed.is_empty() {
        println!("(no difference)");
    }
    if !response.endpoints_touched.is_empty() {
        println!(
            "protected names touched: {}",
            response.endpoints_touched.join(", ")
        );
    }
    let file = args.file.display();
    let base_arg = response
        .base
        .map(|g| format!(" --base {g}"))
        .unwrap_or_default();
    match response.verdict.as_str() {
        "accept" => {
            println!("guard: accepts");
            println!("apply it with: dnsward apply {zone} {file}{base_arg} --reason \"...\"");
        }
        "refuse-unless-forced" => {
            println!(
                "guard: refuses unless forced: {}",
                response.reasons.join("; ")
            );
            println!(
                "only a floor stands in the way; if that is intended: dnsward apply {zone} \
                 {file}{base_arg} --reason \"...\" --force \"why\" (freezes the zone)"
            );
        }
        _ => println!("guard: refuses: {}", response.reasons.join("; ")),
    }
    Ok(())
}

/// `--since` as milliseconds since the epoch: a number, or a duration back from `now_ms`.
pub fn parse_since(text: &str, now_ms: u64) -> Result<u64, CliError> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(count) if unit_ms > 0 => Ok(now_ms.saturating_sub(count.saturating_mul(unit_ms))),
        _ => Err(CliError::Usage {
            message: format!(
                "--since {text}: use milliseconds since the epoch or a duration like 30m, 2h, 1d"
            ),
        }),
    }
}

pub fn timeline(args: TimelineArgs) -> Result<(), CliError> {
    let mut query = Vec::new();
    if let Some(zone) = &args.zone {
        query.push(format!("zone={}", zone_path(zone)?));
    }
    if let Some(since) = &args.since {
        query.push(format!("since_ms={}", parse_since(since, crate::now_ms())?));
    }
    // Page through the audit log so a long incident is complete.
    let mut entries = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let mut page = query.clone();
        if let Some(after) = after {
            page.push(format!("after={after}"));
        }
        let response: AuditResponse = get(&args.api, &format!("/v1/audit?{}", page.join("&")))?;
        let Some(last) = response.entries.last() else {
            break;
        };
        after = Some(last.sequence);
        entries.extend(response.entries);
    }
    if args.api.json {
        return print_json(&AuditResponse { entries });
    }
    let model_entries: Vec<model::AuditEntry> =
        entries.iter().filter_map(|e| e.to_entry()).collect();
    let scope = match &args.zone {
        Some(zone) => format!("zone {}", zone_path(zone)?),
        None => "all zones".to_string(),
    };
    let text = api::timeline::render(&model_entries, &scope);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        }),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_epoch_milliseconds_or_a_duration_back() {
        assert_eq!(parse_since("1234", 10_000_000).unwrap(), 1234);
        assert_eq!(
            parse_since("30m", 10_000_000).unwrap(),
            10_000_000 - 1_800_000
        );
        assert_eq!(parse_since("1d", 10).unwrap(), 0);
        assert!(parse_since("yesterday", 10).is_err());
    }
}
