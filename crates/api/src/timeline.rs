//! The incident timeline: the audit log rendered as markdown, ready to paste into a
//! post-incident review. A pure function of the entries.

use model::AuditEntry;

/// What an audit action means to a reader of the timeline.
pub fn describe(action: &str) -> &str {
    match action {
        "ref-move" => "version activated",
        "canary-move" => "canary moved",
        "refused" => "plan refused by the guard",
        "breaker-trip" => "breaker tripped: zone frozen",
        "breaker-thaw" => "breaker thawed: automation resumes",
        "clean-up" => "unreachable versions deleted",
        "pin" => "version pinned",
        "unpin" => "version unpinned",
        "validator-finding" => "validator finding",
        "rollback" => "rolled back to last known good",
        "validated-good" => "validated: last known good",
        other => other,
    }
}

/// Milliseconds since the epoch as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn format_time(at_ms: u64) -> String {
    let seconds = at_ms / 1000;
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Civil date from days since 1970-01-01 (the days-from-civil inverse).
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

/// Markdown for `entries` (already filtered), oldest first.
pub fn render(entries: &[AuditEntry], scope: &str) -> String {
    let mut out = format!("# dnsward timeline: {scope}\n\n");
    if entries.is_empty() {
        out.push_str("No events.\n");
        return out;
    }
    out.push_str(&format!(
        "{} events from {} to {} (UTC).\n\n",
        entries.len(),
        format_time(entries[0].at_ms),
        format_time(entries[entries.len() - 1].at_ms)
    ));
    out.push_str("| # | time (UTC) | zone | actor | event | generations | reason |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for entry in entries {
        let generations = match (entry.from, entry.to) {
            (Some(from), Some(to)) => format!("{from} → {to}"),
            (None, Some(to)) => format!("→ {to}"),
            (Some(from), None) => format!("{from}"),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            entry.sequence,
            format_time(entry.at_ms),
            entry.zone,
            cell(&entry.actor),
            describe(&entry.action),
            generations,
            cell(&entry.reason)
        ));
    }
    out
}

/// Text safe inside a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Generation, Name};

    fn entry(sequence: u64, at_ms: u64, action: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            sequence,
            at_ms,
            actor: "enactor-0".into(),
            zone: Name::from_ascii("example.test.").unwrap(),
            action: action.into(),
            from: Some(Generation(sequence)),
            to: Some(Generation(sequence + 1)),
            reason: reason.into(),
        }
    }

    #[test]
    fn times_print_as_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(format_time(1_795_737_600_123), "2026-11-27 00:00:00.123");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn the_timeline_lists_events_in_order_with_their_meaning() {
        let text = render(
            &[
                entry(1, 1_000, "ref-move", "planned"),
                entry(2, 2_000, "refused", "below floor | app"),
            ],
            "zone example.test.",
        );
        let first = text.find("version activated").unwrap();
        let second = text.find("plan refused by the guard").unwrap();
        assert!(first < second, "{text}");
        assert!(
            text.contains("below floor \\| app"),
            "pipes are escaped: {text}"
        );
        assert!(text.contains("| 1 → 2 |"), "{text}");
    }

    #[test]
    fn an_empty_timeline_says_so() {
        assert!(render(&[], "all zones").contains("No events."));
    }
}
