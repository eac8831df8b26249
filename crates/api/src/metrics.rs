//! Prometheus text exposition (format 0.0.4) of a node's metrics. Counters live here as
//! atomics; gauges (generations, breakers, backend health) are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use server::stats::{rcode_name, LATENCY_BOUNDS_MICROS};
use server::QueryTotals;

/// Log lines the node could not write (a closed or full standard error): dropped, never a
/// panic, and counted here for `/metrics`.
pub static LOG_WRITES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Enactor outcomes by kind (applied, stale, conflict, replan, frozen, failed).
    enactor_outcomes: Mutex<BTreeMap<String, u64>>,
    /// Audit events by action, counted by tailing the audit log.
    audit_events: Mutex<BTreeMap<String, u64>>,
    /// The last audit sequence counted.
    pub audit_sequence: AtomicU64,
    /// Pushed health reports that contradicted the backend's own latest probe.
    contradicting_health_reports: AtomicU64,
}

impl Metrics {
    pub fn count_enactor_outcome(&self, kind: &str) {
        *lock(&self.enactor_outcomes)
            .entry(kind.to_string())
            .or_default() += 1;
    }

    pub fn count_audit_event(&self, action: &str) {
        *lock(&self.audit_events)
            .entry(action.to_string())
            .or_default() += 1;
    }

    pub fn count_contradicting_health_reports(&self, count: usize) {
        self.contradicting_health_reports
            .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes every counter and the given gauges.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "dnsward_health_reports_contradicting_probes_total",
            "counter",
            "Pushed health reports that said the opposite of the backend's own latest probe (applied as pushed).",
        );
        sample(
            &mut out,
            "dnsward_health_reports_contradicting_probes_total",
            &[],
            self.contradicting_health_reports
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        family(
            &mut out,
            "dnsward_log_writes_dropped_total",
            "counter",
            "Log lines dropped because standard error could not be written (closed pipe, full disk).",
        );
        sample(
            &mut out,
            "dnsward_log_writes_dropped_total",
            &[],
            LOG_WRITES_DROPPED.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        family(
            &mut out,
            "dnsward_zone_active_generation",
            "gauge",
            "Active generation of each zone.",
        );
        for (zone, generation) in &gauges.active_generation {
            sample(
                &mut out,
                "dnsward_zone_active_generation",
                &[("zone", zone)],
                *generation as f64,
            );
        }
        family(
            &mut out,
            "dnsward_zone_breaker_tripped",
            "gauge",
            "1 when the zone's breaker is tripped (automation frozen).",
        );
        for (zone, tripped) in &gauges.breaker_tripped {
            sample(
                &mut out,
                "dnsward_zone_breaker_tripped",
                &[("zone", zone)],
                f64::from(u8::from(*tripped)),
            );
        }
        family(
            &mut out,
            "dnsward_backend_healthy",
            "gauge",
            "1 when the health monitor sees the backend healthy.",
        );
        for (address, healthy) in &gauges.backend_healthy {
            sample(
                &mut out,
                "dnsward_backend_healthy",
                &[("address", address)],
                f64::from(u8::from(*healthy)),
            );
        }
        family(
            &mut out,
            "dnsward_enactor_outcomes_total",
            "counter",
            "Plans the enactors looked at, by outcome (applied, stale, conflict, ...).",
        );
        for (kind, count) in lock(&self.enactor_outcomes).iter() {
            sample(
                &mut out,
                "dnsward_enactor_outcomes_total",
                &[("outcome", kind)],
                *count as f64,
            );
        }
        family(&mut out, "dnsward_audit_events_total", "counter", "Audit log events by action (ref-move, refused, breaker-trip, validator findings, ...).");
        for (action, count) in lock(&self.audit_events).iter() {
            sample(
                &mut out,
                "dnsward_audit_events_total",
                &[("action", action)],
                *count as f64,
            );
        }
        if let Some(queries) = &gauges.queries {
            render_queries(&mut out, queries);
        }
        out
    }
}

/// Values read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    pub active_generation: Vec<(String, u64)>,
    pub breaker_tripped: Vec<(String, bool)>,
    pub backend_healthy: Vec<(String, bool)>,
    /// The DNS server's counters, when this node serves.
    pub queries: Option<QueryTotals>,
}

/// The `zone` label of answers no served zone gave (zone labels end in a dot, so it cannot
/// clash with one).
pub const NO_ZONE_LABEL: &str = "none";

/// Answers by zone and response code, silences, and the latency histograms.
fn render_queries(out: &mut String, queries: &QueryTotals) {
    const QUERIES: &str = "dnsward_dns_answers_total";
    family(
        out,
        QUERIES,
        "counter",
        "DNS answers sent, by zone (\"none\" when no served zone matched) and response code.",
    );
    let zones = queries
        .zones
        .iter()
        .map(|(zone, counts)| (zone.as_str(), counts))
        .chain(std::iter::once((NO_ZONE_LABEL, &queries.unmatched)));
    for (zone, counts) in zones {
        for (rcode, count) in counts.iter().enumerate() {
            // Codes never sent stay out, except NOERROR so that every zone has a series.
            if *count > 0 || rcode == 0 {
                sample(
                    out,
                    QUERIES,
                    &[("zone", zone), ("rcode", rcode_name(rcode))],
                    *count as f64,
                );
            }
        }
    }
    const DROPPED: &str = "dnsward_dns_queries_dropped_total";
    family(out, DROPPED, "counter", "DNS messages that got no answer (not a query, too short for a header, or the answer could not be sent).");
    sample(out, DROPPED, &[], queries.dropped as f64);
    const RRL: &str = "dnsward_dns_rrl_answers_total";
    family(out, RRL, "counter", "UDP answers response rate limiting acted on: dropped, sent truncated (slipped), or sent in log-only mode although over the limit (would_limit).");
    for (action, count) in [
        ("dropped", queries.rrl_dropped),
        ("slipped", queries.rrl_slipped),
        ("would_limit", queries.rrl_would_limit),
    ] {
        sample(out, RRL, &[("action", action)], count as f64);
    }
    const LATENCY: &str = "dnsward_dns_answer_duration_seconds";
    family(
        out,
        LATENCY,
        "histogram",
        "Time from receiving a query to its answer being ready to send, by transport.",
    );
    let bucket = format!("{LATENCY}_bucket");
    for (transport, histogram) in &queries.latency {
        let transport = transport.label();
        let mut cumulative = 0;
        for (bound_micros, count) in LATENCY_BOUNDS_MICROS.iter().zip(&histogram.buckets) {
            cumulative += count;
            let le = (*bound_micros as f64 / 1e6).to_string();
            sample(
                out,
                &bucket,
                &[("transport", transport), ("le", &le)],
                cumulative as f64,
            );
        }
        let count = histogram.count() as f64;
        sample(
            out,
            &bucket,
            &[("transport", transport), ("le", "+Inf")],
            count,
        );
        let seconds = histogram.sum_nanos as f64 / 1e9;
        sample(
            out,
            &format!("{LATENCY}_sum"),
            &[("transport", transport)],
            seconds,
        );
        sample(
            out,
            &format!("{LATENCY}_count"),
            &[("transport", transport)],
            count,
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = write!(out, "{name}");
    if !labels.is_empty() {
        let rendered: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
            .collect();
        let _ = write!(out, "{{{}}}", rendered.join(","));
    }
    let _ = writeln!(out, " {value}");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_and_end_with_infinity() {
        let mut udp = server::stats::LatencyTotals::default();
        udp.buckets[0] = 2;
        udp.buckets[3] = 1;
        udp.buckets[LATENCY_BOUNDS_MICROS.len()] = 1;
        udp.sum_nanos = 1_500_000_000;
        let mut example = [0; server::stats::RCODE_SLOTS];
        example[3] = 4;
        let gauges = Gauges {
            queries: Some(QueryTotals {
                zones: vec![("example.test.".to_string(), example)],
                unmatched: [0; server::stats::RCODE_SLOTS],
                dropped: 9,
                rrl_slipped: 4,
                latency: vec![(server::stats::StatsTransport::Udp, udp)],
                ..QueryTotals::default()
            }),
            ..Gauges::default()
        };
        let text = Metrics::default().render(&gauges);
        for line in [
            "dnsward_dns_answers_total{zone=\"example.test.\",rcode=\"NOERROR\"} 0",
            "dnsward_dns_answers_total{zone=\"example.test.\",rcode=\"NXDOMAIN\"} 4",
            "dnsward_dns_answers_total{zone=\"none\",rcode=\"NOERROR\"} 0",
            "dnsward_dns_queries_dropped_total 9",
            "dnsward_dns_rrl_answers_total{action=\"slipped\"} 4",
            "dnsward_dns_answer_duration_seconds_bucket{transport=\"udp\",le=\"0.000005\"} 2",
            "dnsward_dns_answer_duration_seconds_bucket{transport=\"udp\",le=\"0.00005\"} 3",
            "dnsward_dns_answer_duration_seconds_bucket{transport=\"udp\",le=\"0.1\"} 3",
            "dnsward_dns_answer_duration_seconds_bucket{transport=\"udp\",le=\"+Inf\"} 4",
            "dnsward_dns_answer_duration_seconds_sum{transport=\"udp\"} 1.5",
            "dnsward_dns_answer_duration_seconds_count{transport=\"udp\"} 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
        assert!(
            !text.contains("rcode=\"SERVFAIL\""),
            "codes never sent stay out"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
