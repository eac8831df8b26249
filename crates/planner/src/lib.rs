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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use model::endpoint::address_record_sets;
use model::invariants::{check_change_valid, check_content_valid};
use model::{
    limits, AllDownPolicy, Check, Deferral, EndpointConfig, GuardPolicy, HealthView, Name,
    RecordType, Removal, ZoneContent, ZoneDiff,
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
    /// The notes that explain this plan's change: the notes of the endpoints whose answer it
    /// changes (all of them at first load), and every note that is not about one endpoint's
    /// answer. What the audit log keeps of a plan.
    pub summary: Vec<String>,
    /// Some removals were held back by the policy and are left for later plans.
    pub staged: bool,
    /// What was held back, per endpoint, and until when.
    pub deferred: Vec<Deferral>,
    /// Per endpoint of the zone, in name order: why it answers what it answers (healthy
    /// backends, not probed yet, fewer than its floor and the all-down policy).
    pub endpoints: Vec<(Name, String)>,
}

/// Computes the desired content of the zone. Pure: same input and `now_ms`, same plan.
pub fn plan(input: &PlanInput<'_>, now_ms: u64) -> Plan {
    Planner::default().plan(input, now_ms)
}

/// [`plan`] for one zone, round after round, at the cost of what changed: it remembers what
/// its last plan computed and works out again only the answers of the endpoints whose
/// inputs changed since (a backend's verdict, the active answer at the endpoint's name).
/// Any other change of input (zone file, endpoint configs, zone, first load) plans the
/// zone whole. Same input and `now_ms`, same plan as [`plan`], whatever came before (a
/// property test holds it to that).
#[derive(Debug, Clone, Default)]
pub struct Planner {
    memo: Option<Memo>,
}

impl Planner {
    pub fn new() -> Planner {
        Planner::default()
    }

    /// The plan [`plan`] would give.
    pub fn plan(&mut self, input: &PlanInput<'_>, now_ms: u64) -> Plan {
        let memo = match self.memo.take() {
            Some(mut memo) if memo.fits(input) => {
                memo.catch_up(input);
                memo
            }
            _ => Memo::new(input),
        };
        let plan = memo.finish(input, now_ms);
        self.memo = Some(memo);
        plan
    }
}

/// What a plan computed before staging, and the inputs it computed it from.
#[derive(Debug, Clone)]
struct Memo {
    origin: Name,
    static_content: ZoneContent,
    endpoints: Vec<EndpointConfig>,
    health: HealthView,
    active: Option<ZoneContent>,
    /// Notes before the endpoints' own: duplicates in the config, static records left out.
    head: Vec<String>,
    /// The zone's endpoints, one per name, in name order (indices into `endpoints`).
    order: Vec<usize>,
    /// Position in `order` of each endpoint name.
    position: BTreeMap<Name, usize>,
    /// Positions in `order` of the endpoints serving each backend address.
    by_address: BTreeMap<IpAddr, Vec<usize>>,
    /// Per position: the note on a static CNAME the endpoint replaced, if any.
    cname_notes: Vec<Option<String>>,
    /// Per position: why the endpoint answers what it answers.
    why: Vec<String>,
    /// The zone file's records with every endpoint's desired answer, before staging.
    answered: ZoneContent,
}

impl Memo {
    /// Plans the zone whole.
    fn new(input: &PlanInput<'_>) -> Memo {
        let mut head = Vec::new();
        let order = endpoints_in_zone(input, &mut head);
        let mut answered = carry_static(input.zone_origin, input.static_content, &mut head);
        let mut position = BTreeMap::new();
        let mut by_address: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
        let mut cname_notes = Vec::with_capacity(order.len());
        let mut why = Vec::with_capacity(order.len());
        for (at, index) in order.iter().enumerate() {
            let endpoint = &input.endpoints[*index];
            position.insert(endpoint.name.clone(), at);
            for backend in &endpoint.backends {
                let list = by_address.entry(backend.address).or_default();
                if list.last() != Some(&at) {
                    list.push(at);
                }
            }
            cname_notes.push(
                answered
                    .remove_rrset(&endpoint.name, RecordType::CNAME)
                    .map(|cname| {
                        format!(
                            "{}: the static CNAME ({} records) was dropped, the endpoint owns \
                             this name",
                            endpoint.name,
                            cname.rdatas.len()
                        )
                    }),
            );
            why.push(answer_endpoint(&mut answered, endpoint, input));
        }
        Memo {
            origin: input.zone_origin.clone(),
            static_content: input.static_content.clone(),
            endpoints: input.endpoints.to_vec(),
            health: input.health.clone(),
            active: input.active.cloned(),
            head,
            order,
            position,
            by_address,
            cname_notes,
            why,
            answered,
        }
    }

    /// Whether only health and active content changed since this memo was made (anything
    /// else plans the zone whole).
    fn fits(&self, input: &PlanInput<'_>) -> bool {
        self.origin == *input.zone_origin
            && self.static_content.is_same_as(input.static_content)
            && self.active.is_some() == input.active.is_some()
            && self.endpoints == input.endpoints
    }

    /// Works out again the answers of the endpoints whose inputs changed: a backend's
    /// verdict, or the active answer at the endpoint's name.
    fn catch_up(&mut self, input: &PlanInput<'_>) {
        let mut stale = BTreeSet::new();
        for address in changed_verdicts(&self.health, input.health) {
            stale.extend(self.by_address.get(&address).into_iter().flatten().copied());
        }
        if let (Some(before), Some(now)) = (&self.active, input.active) {
            for set in before.changed_sets(now) {
                stale.extend(self.position.get(&set.key.name).copied());
            }
        }
        for at in stale {
            let endpoint = &input.endpoints[self.order[at]];
            self.why[at] = answer_endpoint(&mut self.answered, endpoint, input);
        }
        self.health = input.health.clone();
        self.active = input.active.cloned();
    }

    /// The plan: the memo's answers, staged against the active content.
    fn finish(&self, input: &PlanInput<'_>, now_ms: u64) -> Plan {
        let mut content = self.answered.clone();
        let mut notes = self.head.clone();
        for (cname, why) in self.cname_notes.iter().zip(&self.why) {
            notes.extend(cname.iter().cloned());
            notes.push(why.clone());
        }
        let endpoints: Vec<&EndpointConfig> = self
            .order
            .iter()
            .map(|index| &input.endpoints[*index])
            .collect();
        let mut tail = Vec::new();
        let mut deferred = Vec::new();
        if let Some(active) = input.active {
            stage_removals(
                &mut content,
                active,
                &endpoints,
                &self.position,
                input,
                now_ms,
                &mut tail,
                &mut deferred,
            );
        }
        let staged = !deferred.is_empty();
        let valid = match input.active {
            Some(active) => check_change_valid(active, &content, limits::ZONE_RECORDS.default),
            None => check_content_valid(&content, limits::ZONE_RECORDS.default),
        };
        if let Err(violation) = valid {
            tail.push(format!(
                "the planned content is not a servable zone ({violation}); the guard will \
                 refuse it, fix the zone file"
            ));
        }
        let mut summary = self.head.clone();
        match input.active {
            Some(active) => {
                let sets = active.changed_sets(&content);
                let changed: BTreeSet<usize> = sets
                    .iter()
                    .filter_map(|set| self.position.get(&set.key.name).copied())
                    .collect();
                let zone_file = sets
                    .iter()
                    .any(|set| !self.position.contains_key(&set.key.name));
                for at in changed {
                    summary.extend(self.cname_notes[at].iter().cloned());
                    summary.push(self.why[at].clone());
                }
                if zone_file {
                    summary.push("records from the zone file changed".to_string());
                }
            }
            None => summary.extend(notes[self.head.len()..].iter().cloned()),
        }
        summary.extend(tail.iter().cloned());
        notes.extend(tail);
        let endpoints = self
            .order
            .iter()
            .zip(&self.why)
            .map(|(index, why)| (input.endpoints[*index].name.clone(), why.clone()))
            .collect();
        Plan {
            content,
            notes,
            summary,
            staged,
            deferred,
            endpoints,
        }
    }
}

/// The addresses whose verdict (healthy, unhealthy, none yet) differs between two views.
fn changed_verdicts(before: &HealthView, now: &HealthView) -> Vec<IpAddr> {
    let mut changed = Vec::new();
    for (address, state) in &now.backends {
        if before.healthy(address) != Some(state.healthy) {
            changed.push(*address);
        }
    }
    for address in before.backends.keys() {
        if !now.backends.contains_key(address) {
            changed.push(*address);
        }
    }
    changed
}

/// Sets one endpoint's desired answer in `content`; returns why it answers that.
fn answer_endpoint(
    content: &mut ZoneContent,
    endpoint: &EndpointConfig,
    input: &PlanInput<'_>,
) -> String {
    let (answer, why) = desired_answer(endpoint, input.health, input.active);
    set_answer(content, endpoint, &answer);
    why
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

/// The endpoints of this zone, one per name (the first wins), in name order, as indices
/// into `input.endpoints`.
fn endpoints_in_zone(input: &PlanInput<'_>, notes: &mut Vec<String>) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut endpoints = Vec::new();
    for (index, endpoint) in input.endpoints.iter().enumerate() {
        if !input.zone_origin.zone_of(&endpoint.name) {
            continue;
        }
        if seen.insert(&endpoint.name) {
            endpoints.push(index);
        } else {
            notes.push(format!(
                "{}: configured twice, the first endpoint is used",
                endpoint.name
            ));
        }
    }
    endpoints.sort_by(|a, b| input.endpoints[*a].name.cmp(&input.endpoints[*b].name));
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
        // Counted healthy without a verdict (first load, or already served): said so.
        let unprobed: BTreeSet<IpAddr> = serving
            .iter()
            .filter(|b| b.check != Check::None && health.healthy(&b.address).is_none())
            .map(|b| b.address)
            .collect();
        let unprobed = if unprobed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} of them not probed yet, served until a probe says otherwise: {}",
                unprobed.len(),
                list(&unprobed)
            )
        };
        let why = format!(
            "{name}: {} of {} serving backends healthy: {}{unprobed}",
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

/// Holds back removals beyond what the policy allows now; each endpoint held back is in
/// `deferred`.
#[allow(clippy::too_many_arguments)]
fn stage_removals(
    content: &mut ZoneContent,
    active: &ZoneContent,
    endpoints: &[&EndpointConfig],
    position: &BTreeMap<Name, usize>,
    input: &PlanInput<'_>,
    now_ms: u64,
    notes: &mut Vec<String>,
    deferred: &mut Vec<Deferral>,
) {
    let policy = input.policy;
    let diff = ZoneDiff::between(active, content);
    // Removals the planner does not choose: static records, and endpoint-owned names' other
    // types. They spend the same budgets first.
    let fixed_at = |name: &Name| -> u64 {
        diff.names.get(name).map_or(0, |change| {
            change
                .removed
                .iter()
                .filter(|(rtype, _)| {
                    !position.contains_key(name)
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
    for (name, change) in &diff.names {
        let Some(endpoint) = position.get(name).map(|at| endpoints[*at]) else {
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
        let by_name = policy
            .name_removal_allowance(change.old_records)
            .saturating_sub(fixed);
        let by_velocity = policy
            .velocity_remaining(input.recent_removals, &endpoint.name, now_ms)
            .saturating_sub(fixed);
        let allowed = by_name.min(by_velocity).min(zone_budget);
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
            let (limit, lifts_at_ms) = if allowed == by_velocity {
                (
                    format!(
                        "velocity limit: at most {} removals per name in {} ms \
                         (guard.max_removals_per_window, guard.velocity_window_ms)",
                        policy.max_removals_per_window, policy.velocity_window_ms
                    ),
                    policy.velocity_lifts_at(input.recent_removals, &endpoint.name, now_ms),
                )
            } else if allowed == by_name {
                (
                    format!(
                        "removal limit: at most {} of {} records of a name per version \
                         (guard.max_remove_fraction {})",
                        by_name, change.old_records, policy.max_remove_fraction
                    ),
                    None,
                )
            } else {
                (
                    format!(
                        "zone change limit: at most {zone_allowance} of the zone's {} records \
                         changed per version (guard.max_change_fraction {})",
                        diff.old_records, policy.max_change_fraction
                    ),
                    None,
                )
            };
            let answer: BTreeSet<IpAddr> = desired.union(&held).copied().collect();
            set_answer(content, endpoint, &answer);
            deferred.push(Deferral {
                name: endpoint.name.clone(),
                held: held.into_iter().collect(),
                limit,
                lifts_at_ms,
            });
        }
    }
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
