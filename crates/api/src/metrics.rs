//! Prometheus text exposition (format 0.0.4) of a node's metrics. Counters live here as
//! atomics; gauges (generations, breakers, backend health) are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// Counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Enactor outcomes by kind (applied, stale, conflict, replan, frozen, failed).
    enactor_outcomes: Mutex<BTreeMap<String, u64>>,
    /// Audit events by action, counted by tailing the audit log.
    audit_events: Mutex<BTreeMap<String, u64>>,
    /// The last audit sequence counted.
    pub audit_sequence: AtomicU64,
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

    /// Writes every counter and the given gauges.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
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
        out
    }
}

/// Values read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    pub active_generation: Vec<(String, u64)>,
    pub breaker_tripped: Vec<(String, bool)>,
    pub backend_healthy: Vec<(String, bool)>,
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
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
