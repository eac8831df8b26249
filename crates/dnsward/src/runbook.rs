//! Runbook commands against a running node's HTTP API: tables for people, `--json` for
//! machines, errors that say what to do.

use api::types::{ApiErrorBody, HistoryResponse, StatusResponse};
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
        default_value = "http://127.0.0.1:8053",
        env = "DNSWARD_API"
    )]
    pub api: String,
    /// Bearer token, when the API requires one.
    #[arg(long, global = true, env = "DNSWARD_TOKEN")]
    pub token: Option<String>,
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
    let url = format!("{}{}", api.api.trim_end_matches('/'), path);
    let mut request = ureq::get(&url).config().http_status_as_error(false).build();
    if let Some(token) = &api.token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call().map_err(|error| CliError::Usage {
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

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn format_time(at_ms: u64) -> String {
    let seconds = at_ms / 1000;
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60,
        at_ms % 1000
    )
}

pub fn status(args: StatusArgs) -> Result<(), CliError> {
    let response: StatusResponse = get(&args.api, "/v1/status")?;
    if args.api.json {
        return print_json(&response);
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
    }
    Ok(())
}

pub fn history(args: HistoryArgs) -> Result<(), CliError> {
    let zone = crate::zone_command::parse_name(&args.zone)?;
    let response: HistoryResponse = get(
        &args.api,
        &format!("/v1/zones/{}/history?limit={}", zone.to_ascii(), args.limit),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_time(1_795_737_600_123), "2026-11-27 00:00:00.123");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
    }
}
