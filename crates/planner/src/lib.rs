//! # planner — what the zone should answer, given backend health
//!
//! Sits between health and the guard:
//! `HealthView ──▶ planner ──Plan──▶ guard ──Verdict──▶ enactor`.
//!
//! [`plan`] is a pure function of a [`PlanInput`] (static zone-file records, endpoint
//! configs, the debounced [`HealthView`], the active content, recent removals, the
//! [`GuardPolicy`]) and `now_ms`. It returns a [`Plan`]: the desired [`ZoneContent`], a note
//! per endpoint saying why it answers what it answers, and whether a removal was staged.
//!
//! Rules, per endpoint:
//! * The answer is the healthy backends with weight > 0.
//! * A backend with no verdict yet counts as healthy at first load (no active content) and
//!   when it is already being served; otherwise it is added only once its probes say
//!   healthy. A backend with `check = "none"` is healthy unless a pushed report says not.
//!   So a restart never reshuffles the answer, and a new backend is not served untested.
//! * Fewer than `min_answers` healthy: `serve-all` answers every backend with weight > 0
//!   (fail open; drained backends are added only if that is what it takes to reach the
//!   floor); `keep-last` keeps the active answer, or serves all if there is none.
//! * Endpoint records replace static `A`/`AAAA` (and a `CNAME`, which could not coexist) at
//!   the endpoint name; every other static record is carried as is. The SOA serial is the
//!   store's business.
//!
//! The one design decision to know: **the planner respects the guard's limits itself.** When
//! reaching the desired answer would remove more than the policy allows now (per name, per
//! zone, per velocity window), it removes as many as allowed, keeps the rest in the answer
//! and sets [`Plan::staged`]; later plans, in later windows, finish the job. Additions are
//! never held back, so a staged answer is a superset of the desired one and never below its
//! floor. The guard enforces the same limits independently, with the same model functions.

use std::collections::BTreeSet;
use std::net::IpAddr;

use model::endpoint::address_record_sets;
use model::invariants::{check_change_valid, check_content_valid};
use model::{
    limits, AllDownPolicy, Check, EndpointConfig, GuardPolicy, HealthView, Name, RecordType,
    Removal, ZoneContent, ZoneDiff,
};

/// Everything a plan depends on, besides the time.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub zone_origin: &'a Name,
    /// Records from the zone file, carried as is (except at endpoint names). A plan starts
    /// from a clone of this content (O(1)), so plans and the versions made from them share
    /// its structure: comparing a plan with the active content costs their difference.
    pub static_content: &'a ZoneContent,
    /// Endpoint configs; those outside the zone are ignored.
    pub endpoints: &'a [EndpointConfig],
    pub health: &'a HealthView,
    /// The content now served, if any; `None` at first load.
    pub active: Option<&'a ZoneContent>,
    /// Removals applied recently to this zone, for the velocity limit.
    pub recent_removals: &'a [Removal],
    pub policy: &'a GuardPolicy,
}

/// Desired content for the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The content to propose; its SOA serial is set by the store.
    pub content: ZoneContent,
    /// Why each endpoint answers what it answers, and anything else a person should know.
    pub notes: Vec<String>,
    /// Some removals were held back by the policy and are left for later plans.
    pub staged: bool,
}

/// Computes the desired content of the zone. Pure: same input and `now_ms`, same plan.
pub fn plan(input: &PlanInput<'_>, now_ms: u64) -> Plan {
    let mut notes = Vec::new();
    let endpoints = endpoints_in_zone(input, &mut notes);
    let base = carry_static(input.zone_origin, input.static_content, &mut notes);
    let (content, staged) = answer_endpoints(base, &endpoints, input, now_ms, &mut notes);
    let valid = match input.active {
        Some(active) => check_change_valid(active, &content, limits::ZONE_RECORDS.default),
        None => check_content_valid(&content, limits::ZONE_RECORDS.default),
    };
    if let Err(violation) = valid {
        notes.push(format!(
            "the planned content is not a servable zone ({violation}); the guard will refuse \
             it, fix the zone file"
        ));
    }
    Plan {
        content,
        notes,
        staged,
    }
}

/// Sets every endpoint's answer in `content`, holding back removals the policy does not
/// allow now. Returns the content and whether a removal was held back.
fn answer_endpoints(
    mut content: ZoneContent,
    endpoints: &[&EndpointConfig],
    input: &PlanInput<'_>,
    now_ms: u64,
    notes: &mut Vec<String>,
) -> (ZoneContent, bool) {
    for endpoint in endpoints {
        if let Some(cname) = content.remove_rrset(&endpoint.name, RecordType::CNAME) {
            notes.push(format!(
                "{}: the static CNAME ({} records) was dropped, the endpoint owns this name",
                endpoint.name,
                cname.rdatas.len()
            ));
        }
        let (answer, why) = desired_answer(endpoint, input.health, input.active);
        notes.push(why);
        set_answer(&mut content, endpoint, &answer);
    }
    let staged = match input.active {
        Some(active) => stage_removals(&mut content, active, endpoints, input, now_ms, notes),
        None => false,
    };
    (content, staged)
}

fn carry_static(
    origin: &Name,
    static_content: &ZoneContent,
    notes: &mut Vec<String>,
) -> ZoneContent {
    // Content of this zone holds only names at or below the origin (the zone-file reader
    // and the validity checks see to it): the clone shares its whole structure.
    if static_content.origin() == origin && static_content.within_origin() {
        return static_content.clone();
    }
    let mut content = ZoneContent::new(origin.clone());
    for set in static_content.rrsets() {
        if content.origin().zone_of(&set.name) {
            content.put_rrset(set.clone());
        } else {
            notes.push(format!(
                "static {} {} is outside the zone {} and was left out",
                set.name,
                set.rtype,
                content.origin()
            ));
        }
    }
    content
}

/// The endpoints of this zone, one per name (the first wins), in name order.
fn endpoints_in_zone<'a>(
    input: &PlanInput<'a>,
    notes: &mut Vec<String>,
) -> Vec<&'a EndpointConfig> {
    let mut seen = BTreeSet::new();
    let mut endpoints = Vec::new();
    for endpoint in input.endpoints {
        if !input.zone_origin.zone_of(&endpoint.name) {
            continue;
        }
        if seen.insert(endpoint.name.clone()) {
            endpoints.push(endpoint);
        } else {
            notes.push(format!(
                "{}: configured twice, the first endpoint is used",
                endpoint.name
            ));
        }
    }
    endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    endpoints
}

/// The addresses an endpoint should answer, and why.
fn desired_answer(
    endpoint: &EndpointConfig,
    health: &HealthView,
    active: Option<&ZoneContent>,
) -> (BTreeSet<IpAddr>, String) {
    let served = active.map(|content| endpoint.answers_in(content));
    let is_healthy = |address: &IpAddr, check: &Check| match health.healthy(address) {
        Some(healthy) => healthy,
        None if *check == Check::None => true,
        None => served
            .as_ref()
            .is_none_or(|served| served.contains(address)),
    };
    let serving: Vec<_> = endpoint.serving_backends().collect();
    let healthy: BTreeSet<IpAddr> = serving
        .iter()
        .filter(|backend| is_healthy(&backend.address, &backend.check))
        .map(|backend| backend.address)
        .collect();
    let name = &endpoint.name;
    if healthy.len() >= endpoint.min_answers {
        let why = format!(
            "{name}: {} of {} serving backends healthy: {}",
            healthy.len(),
            serving.len(),
            list(&healthy)
        );
        return (healthy, why);
    }
    if endpoint.all_down == AllDownPolicy::KeepLast {
        if let Some(served) = served.filter(|served| served.len() >= endpoint.min_answers) {
            let why = format!(
                "{name}: {} healthy, fewer than min_answers = {}; keep-last keeps the served \
                 answer: {}",
                healthy.len(),
                endpoint.min_answers,
                list(&served)
            );
            return (served, why);
        }
    }
    let all = serve_all(endpoint);
    let why = format!(
        "{name}: {} healthy, fewer than min_answers = {}; {} serves every backend (fail \
         open): {}",
        healthy.len(),
        endpoint.min_answers,
        endpoint.all_down,
        list(&all)
    );
    (all, why)
}

/// Every backend with weight > 0; drained ones too, in config order, if that is what it
/// takes to reach the floor.
fn serve_all(endpoint: &EndpointConfig) -> BTreeSet<IpAddr> {
    let mut all: BTreeSet<IpAddr> = endpoint.serving_backends().map(|b| b.address).collect();
    for drained in endpoint.backends.iter().filter(|b| b.weight == 0) {
        if all.len() >= endpoint.min_answers {
            break;
        }
        all.insert(drained.address);
    }
    all
}

/// Makes the endpoint's `A` and `AAAA` sets the answer. A set that already holds it is left
/// alone, so an unchanged answer leaves the content sharing all its structure with the base.
fn set_answer(content: &mut ZoneContent, endpoint: &EndpointConfig, answer: &BTreeSet<IpAddr>) {
    let sets = address_record_sets(&endpoint.name, endpoint.ttl, answer);
    for rtype in [RecordType::A, RecordType::AAAA] {
        match sets.iter().find(|set| set.rtype == rtype) {
            Some(set) => content.put_rrset(set.clone()),
            None => {
                content.remove_rrset(&endpoint.name, rtype);
            }
        }
    }
}

/// Holds back removals beyond what the policy allows now; returns whether any was held.
fn stage_removals(
    content: &mut ZoneContent,
    active: &ZoneContent,
    endpoints: &[&EndpointConfig],
    input: &PlanInput<'_>,
    now_ms: u64,
    notes: &mut Vec<String>,
) -> bool {
    let policy = input.policy;
    let diff = ZoneDiff::between(active, content);
    let endpoint_names: BTreeSet<&Name> = endpoints.iter().map(|e| &e.name).collect();
    // Removals the planner does not choose: static records, and endpoint-owned names' other
    // types. They spend the same budgets first.
    let fixed_at = |name: &Name| -> u64 {
        diff.names.get(name).map_or(0, |change| {
            change
                .removed
                .iter()
                .filter(|(rtype, _)| {
                    !endpoint_names.contains(name)
                        || !matches!(rtype, RecordType::A | RecordType::AAAA)
                })
                .count() as u64
        })
    };
    let zone_fixed: u64 = diff.names.keys().map(fixed_at).sum();
    let zone_allowance = policy.zone_change_allowance(diff.old_records);
    if zone_fixed > zone_allowance {
        notes.push(format!(
            "static records remove or replace {zone_fixed} of the zone's {} records, more than \
             the {zone_allowance} allowed at once; the guard will refuse this plan",
            diff.old_records
        ));
    }
    let mut zone_budget = zone_allowance.saturating_sub(zone_fixed);
    let mut staged = false;
    for endpoint in endpoints {
        let Some(change) = diff.names.get(&endpoint.name) else {
            continue;
        };
        let desired = endpoint.answers_in(content);
        let mut removing: Vec<IpAddr> = endpoint
            .answers_in(active)
            .difference(&desired)
            .copied()
            .collect();
        if removing.is_empty() {
            continue;
        }
        // Known-unhealthy addresses go first; the rest (drained, unconfigured) after.
        removing.sort_by_key(|address| (input.health.healthy(address) != Some(false), *address));
        let fixed = fixed_at(&endpoint.name);
        let allowed = policy
            .name_removal_allowance(change.old_records)
            .saturating_sub(fixed)
            .min(
                policy
                    .velocity_remaining(input.recent_removals, &endpoint.name, now_ms)
                    .saturating_sub(fixed),
            )
            .min(zone_budget);
        let removed_now = removing
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        zone_budget -= removed_now as u64;
        if removed_now < removing.len() {
            let held: BTreeSet<IpAddr> = removing[removed_now..].iter().copied().collect();
            notes.push(format!(
                "{}: staged, removing {removed_now} of {} now (guard policy); still served \
                 until a later plan: {}",
                endpoint.name,
                removing.len(),
                list(&held)
            ));
            let answer: BTreeSet<IpAddr> = desired.union(&held).copied().collect();
            set_answer(content, endpoint, &answer);
            staged = true;
        }
    }
    staged
}

fn list(addresses: &BTreeSet<IpAddr>) -> String {
    if addresses.is_empty() {
        return "none".to_string();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
