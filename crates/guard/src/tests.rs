use std::collections::BTreeSet;
use std::net::IpAddr;

use model::endpoint::address_record_sets;
use model::rdata::{CNAME, NS, SOA, TXT};
use model::{
    AllDownPolicy, BackendConfig, BackendState, Check, HealthView, RData, Record, RecordSet,
    RecordType,
};
use proptest::prelude::*;

use super::*;

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn origin() -> Name {
    name("example.test.")
}

fn api_name() -> Name {
    name("api.example.test.")
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn static_zone() -> ZoneContent {
    let soa = SOA::new(
        name("ns1.example.test."),
        name("hostmaster.example.test."),
        1,
        3600,
        600,
        86400,
        300,
    );
    ZoneContent::from_records(
        origin(),
        [
            Record::from_rdata(origin(), 3600, RData::SOA(soa)),
            Record::from_rdata(origin(), 3600, RData::NS(NS(name("ns1.example.test.")))),
            Record::from_rdata(
                name("www.example.test."),
                300,
                RData::TXT(TXT::new(vec!["static".into()])),
            ),
        ],
    )
    .unwrap()
}

/// The static zone with `api` answering `lasts`.
fn zone_with_api(lasts: &[u8]) -> ZoneContent {
    let mut content = static_zone();
    let addresses: BTreeSet<IpAddr> = lasts.iter().map(|&last| ip(last)).collect();
    for set in address_record_sets(&api_name(), 30, &addresses) {
        content.put_rrset(set);
    }
    content
}

fn api(backends: u8) -> EndpointConfig {
    EndpointConfig::new(
        api_name(),
        (1..=backends)
            .map(|i| BackendConfig {
                address: ip(i),
                check: Check::None,
                weight: 1,
            })
            .collect(),
    )
}

struct Case {
    origin: Name,
    endpoints: Vec<EndpointConfig>,
    recent: Vec<Removal>,
    policy: GuardPolicy,
    operator_override: Option<String>,
}

impl Case {
    fn new(backends: u8) -> Case {
        Case {
            origin: origin(),
            endpoints: vec![api(backends)],
            recent: Vec::new(),
            policy: GuardPolicy::default(),
            operator_override: None,
        }
    }

    /// Judges `proposed` planned from generation 1, which is active with `active`.
    fn judge(&self, active: &ZoneContent, proposed: &ZoneContent) -> Verdict {
        judge(
            &GuardInput {
                origin: &self.origin,
                base: Some(Generation(1)),
                active: Some(active),
                proposed,
                proposed_base: Some(Generation(1)),
                proposed_generation: Some(Generation(2)),
                endpoints: &self.endpoints,
                recent_removals: &self.recent,
                policy: &self.policy,
                operator_override: self.operator_override.clone(),
            },
            10_000,
        )
    }
}

#[test]
fn removing_one_unhealthy_backend_of_two_is_accepted() {
    let case = Case::new(2);
    let verdict = case.judge(&zone_with_api(&[1, 2]), &zone_with_api(&[1]));
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(verdict.breaker_reason(), None);
}

#[test]
fn a_plan_that_empties_a_protected_name_is_refused() {
    let case = Case::new(1);
    let verdict = case.judge(&zone_with_api(&[1]), &zone_with_api(&[]));
    assert_eq!(
        verdict.reasons(),
        &[Reason::BelowFloor {
            name: api_name(),
            answers: 0,
            min: 1
        }]
    );
    let reason = verdict
        .breaker_reason()
        .expect("a refusal trips the breaker");
    assert!(
        reason.contains("below floor: api.example.test."),
        "{reason}"
    );
}

#[test]
fn an_operator_override_skips_the_names_limits_and_not_the_zones() {
    let mut case = Case::new(4);
    case.operator_override = Some("decommissioning api".into());
    assert_eq!(
        case.judge(&zone_with_api(&[1]), &zone_with_api(&[])),
        Verdict::Accept
    );
    // Draining the name whole passes its floor and its removal share, not the zone's
    // change limit (this zone is small: api's four records are most of it).
    let verdict = case.judge(&zone_with_api(&[1, 2, 3, 4]), &zone_with_api(&[]));
    assert!(
        matches!(verdict.reasons(), [Reason::ChangesTooMuch { .. }]),
        "{verdict}"
    );
    case.operator_override = None;
    let verdict = case.judge(&zone_with_api(&[1, 2, 3, 4]), &zone_with_api(&[]));
    assert!(
        matches!(
            verdict.reasons(),
            [
                Reason::BelowFloor { .. },
                Reason::RemovesTooMuch { removed: 4, .. },
                Reason::ChangesTooMuch { .. }
            ]
        ),
        "{verdict}"
    );
}

#[test]
fn removing_three_of_four_backends_at_once_is_refused_as_too_much() {
    let case = Case::new(4);
    let verdict = case.judge(&zone_with_api(&[1, 2, 3, 4]), &zone_with_api(&[1]));
    assert_eq!(
        verdict.reasons(),
        &[Reason::RemovesTooMuch {
            name: api_name(),
            removed: 3,
            of: 4,
            allowed: 2,
            max_fraction: 0.5
        }]
    );
}

#[test]
fn replacing_most_of_the_zone_at_once_is_refused_as_too_much_change() {
    let mut case = Case::new(2);
    case.endpoints.clear();
    let mut old = zone_with_api(&[1, 2]);
    for label in ["a", "b", "c"] {
        old.insert(Record::from_rdata(
            name(&format!("{label}.example.test.")),
            60,
            RData::TXT(TXT::new(vec![label.into()])),
        ))
        .unwrap();
    }
    let verdict = case.judge(&old, &static_zone());
    assert!(
        verdict
            .reasons()
            .iter()
            .any(|r| matches!(r, Reason::ChangesTooMuch { changed: 5, .. })),
        "{verdict}"
    );
}

#[test]
fn removals_beyond_the_velocity_window_budget_are_refused() {
    let mut case = Case::new(2);
    case.recent = vec![Removal {
        name: api_name(),
        records: 4,
        at_ms: 5_000,
    }];
    let verdict = case.judge(&zone_with_api(&[1, 2]), &zone_with_api(&[1]));
    assert_eq!(
        verdict.reasons(),
        &[Reason::VelocityExceeded {
            name: api_name(),
            removed_in_window: 4,
            proposed: 1,
            max: 4,
            window_ms: 60_000
        }]
    );
}

#[test]
fn a_plan_from_a_stale_base_is_refused_without_tripping_the_breaker() {
    let case = Case::new(2);
    let active = zone_with_api(&[1, 2]);
    let verdict = judge(
        &GuardInput {
            origin: &case.origin,
            base: Some(Generation(12)),
            active: Some(&active),
            proposed: &active,
            proposed_base: Some(Generation(2)),
            proposed_generation: None,
            endpoints: &case.endpoints,
            recent_removals: &[],
            policy: &case.policy,
            operator_override: None,
        },
        0,
    );
    assert_eq!(
        verdict.reasons(),
        &[Reason::StaleBase {
            plan_base: Some(Generation(2)),
            active: Some(Generation(12))
        }]
    );
    assert_eq!(verdict.breaker_reason(), None);
    assert!(verdict.to_string().contains("re-plan"), "{verdict}");
}

#[test]
fn a_generation_not_above_the_active_one_is_refused() {
    let case = Case::new(2);
    let active = zone_with_api(&[1, 2]);
    let verdict = judge(
        &GuardInput {
            origin: &case.origin,
            base: Some(Generation(5)),
            active: Some(&active),
            proposed: &active,
            proposed_base: Some(Generation(5)),
            proposed_generation: Some(Generation(5)),
            endpoints: &case.endpoints,
            recent_removals: &[],
            policy: &case.policy,
            operator_override: None,
        },
        0,
    );
    assert_eq!(
        verdict.reasons(),
        &[Reason::GenerationNotAbove {
            base: Generation(5),
            new: Generation(5)
        }]
    );
    assert!(verdict.breaker_reason().is_some());
}

#[test]
fn a_cname_beside_other_data_is_invalid_data() {
    let case = Case::new(2);
    let mut proposed = zone_with_api(&[1, 2]);
    proposed
        .insert(Record::from_rdata(
            api_name(),
            30,
            RData::CNAME(CNAME(name("www.example.test."))),
        ))
        .unwrap();
    let verdict = case.judge(&zone_with_api(&[1, 2]), &proposed);
    assert!(
        matches!(verdict.reasons(), [Reason::InvalidData { problem }] if problem.contains("CNAME")),
        "{verdict}"
    );
}

#[test]
fn a_ttl_above_one_week_is_invalid_data() {
    let case = Case::new(1);
    let mut proposed = zone_with_api(&[1]);
    let mut set = proposed.get(&api_name(), RecordType::A).unwrap().clone();
    set.ttl = 604_801;
    proposed.put_rrset(set);
    let verdict = case.judge(&zone_with_api(&[1]), &proposed);
    assert!(
        matches!(verdict.reasons(), [Reason::InvalidData { problem }] if problem.contains("TTL 604801")),
        "{verdict}"
    );
}

#[test]
fn content_of_another_zone_is_invalid_data() {
    let mut case = Case::new(1);
    case.origin = name("other.test.");
    let verdict = case.judge(&zone_with_api(&[1]), &zone_with_api(&[1]));
    assert!(
        verdict.reasons().iter().any(
            |r| matches!(r, Reason::InvalidData { problem } if problem.contains("other.test."))
        ),
        "{verdict}"
    );
}

#[test]
fn the_first_version_of_a_zone_is_judged_without_change_limits() {
    let case = Case::new(3);
    let proposed = zone_with_api(&[1, 2, 3]);
    let verdict = judge(
        &GuardInput {
            origin: &case.origin,
            base: None,
            active: None,
            proposed: &proposed,
            proposed_base: None,
            proposed_generation: Some(Generation::FIRST),
            endpoints: &case.endpoints,
            recent_removals: &[],
            policy: &case.policy,
            operator_override: None,
        },
        0,
    );
    assert_eq!(verdict, Verdict::Accept);
}

#[test]
fn a_refusal_lists_every_reason_for_the_audit_log() {
    let case = Case::new(4);
    let mut proposed = zone_with_api(&[]);
    proposed.put_rrset(RecordSet::new(name("x.example.test."), RecordType::A, 1));
    let verdict = case.judge(&zone_with_api(&[1, 2, 3, 4]), &proposed);
    let text = verdict.to_string();
    assert!(text.starts_with("refused: "), "{text}");
    assert!(text.contains("below floor"), "{text}");
    assert!(text.contains("removes too much"), "{text}");
    assert!(text.contains("velocity exceeded") || text.contains("changes too much"));
}

// ---- the planner's output always passes the guard ----

/// A random endpoint: 1..=5 backends out of a shared pool (v4 and v6), a floor within the
/// backend count, a random all-down policy, some drained backends.
fn endpoint_strategy(label: &'static str) -> impl Strategy<Value = EndpointConfig> {
    (
        proptest::sample::subsequence((0u8..12).collect::<Vec<_>>(), 1..=5),
        any::<bool>(),
        proptest::collection::vec(0u32..3, 5),
        0usize..3,
    )
        .prop_map(move |(lasts, keep_last, weights, floor_extra)| {
            let backends: Vec<BackendConfig> = lasts
                .iter()
                .zip(&weights)
                .map(|(&last, &weight)| BackendConfig {
                    address: pool_address(last),
                    check: if last % 3 == 0 {
                        Check::None
                    } else {
                        Check::Tcp(std::net::SocketAddr::new(pool_address(last), 80))
                    },
                    weight,
                })
                .collect();
            let mut endpoint =
                EndpointConfig::new(name(&format!("{label}.example.test.")), backends);
            endpoint.min_answers = (1 + floor_extra).min(endpoint.backends.len());
            if keep_last {
                endpoint.all_down = AllDownPolicy::KeepLast;
            }
            endpoint
        })
}

fn pool_address(last: u8) -> IpAddr {
    if last < 8 {
        IpAddr::from([10, 0, 0, last + 1])
    } else {
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(last)])
    }
}

/// For each pool address: no verdict, healthy or unhealthy.
fn health_strategy() -> impl Strategy<Value = HealthView> {
    proptest::collection::vec(proptest::option::of(any::<bool>()), 12).prop_map(|states| {
        let mut view = HealthView::new();
        for (last, state) in states.into_iter().enumerate() {
            if let Some(healthy) = state {
                // `last` is below 12, so it fits in u8.
                let last = u8::try_from(last).expect("the pool has 12 addresses");
                view.set(
                    pool_address(last),
                    BackendState {
                        healthy,
                        since_ms: 0,
                    },
                );
            }
        }
        view
    })
}

fn policy_strategy() -> impl Strategy<Value = GuardPolicy> {
    (1u64..6, 0.1f64..=1.0, 0.1f64..=1.0).prop_map(|(max_removals, remove, change)| GuardPolicy {
        max_remove_fraction: remove,
        max_change_fraction: change,
        velocity_window_ms: 60_000,
        max_removals_per_window: max_removals,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Plans over a changing health history and config reloads that change backends and
    /// floors, each applied as an enactor would, are always accepted by the guard, and no
    /// protected name is ever below its floor.
    #[test]
    fn the_planner_never_proposes_what_the_guard_refuses(
        configs in proptest::collection::vec(
            (endpoint_strategy("api"), endpoint_strategy("web"), endpoint_strategy("db")),
            8,
        ),
        config_changes in proptest::collection::vec(any::<bool>(), 8),
        healths in proptest::collection::vec(health_strategy(), 1..8),
        steps_ms in proptest::collection::vec(0u64..90_000, 8),
        policy in policy_strategy(),
    ) {
        let origin = origin();
        let static_content = static_zone();
        let mut active: Option<ZoneContent> = None;
        let mut base: Option<Generation> = None;
        let mut recent: Vec<Removal> = Vec::new();
        let mut now_ms = 0;
        let mut config = 0;
        for (step, (health, step_ms)) in healths.iter().zip(&steps_ms).enumerate() {
            now_ms += step_ms;
            // Sometimes the operator reloads a config with other backends and floors.
            if config_changes[step] {
                config = step;
            }
            let (api, web, db) = configs[config].clone();
            let endpoints = vec![api, web, db];
            let planned = planner::plan(
                &planner::PlanInput {
                    zone_origin: &origin,
                    static_content: &static_content,
                    endpoints: &endpoints,
                    health,
                    active: active.as_ref(),
                    recent_removals: &recent,
                    policy: &policy,
                },
                now_ms,
            );
            prop_assert_eq!(
                never_empty_violations(&planned.content, &endpoints),
                vec![],
                "floor: {:?}",
                planned.notes
            );
            let next = base.map_or(Generation::FIRST, Generation::next);
            let verdict = judge(
                &GuardInput {
                    origin: &origin,
                    base,
                    active: active.as_ref(),
                    proposed: &planned.content,
                    proposed_base: base,
                    proposed_generation: Some(next),
                    endpoints: &endpoints,
                    recent_removals: &recent,
                    policy: &policy,
                    operator_override: None,
                },
                now_ms,
            );
            prop_assert_eq!(&verdict, &Verdict::Accept, "notes: {:?}", planned.notes);
            if let Some(old) = &active {
                recent.extend(ZoneDiff::between(old, &planned.content).removals(now_ms));
            }
            active = Some(planned.content);
            base = Some(next);
        }
    }
}

/// One change an automated or hand-made plan could make to a zone.
#[derive(Debug, Clone)]
enum Edit {
    /// `host<n>` answers these addresses (none: its A set goes).
    Addresses(u8, Vec<u8>),
    /// `host<n>` becomes a CNAME to `www` (beside whatever it has).
    Cname(u8),
    /// `host<n>` gets a TXT with this TTL (above the week when large).
    Txt(u8, u32),
    /// The apex NS set goes.
    DropApexNs,
    /// An SOA below the apex.
    SoaBelowApex(u8),
    /// Every set of `host<n>` goes.
    DropName(u8),
}

fn host(n: u8) -> Name {
    name(&format!("host{n}.example.test."))
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (0u8..12, proptest::collection::vec(1u8..8, 0..4))
            .prop_map(|(n, lasts)| Edit::Addresses(n, lasts)),
        1 => (0u8..12).prop_map(Edit::Cname),
        1 => (0u8..12, prop_oneof![Just(300u32), Just(700_000u32)])
            .prop_map(|(n, ttl)| Edit::Txt(n, ttl)),
        1 => Just(Edit::DropApexNs),
        1 => (0u8..12).prop_map(Edit::SoaBelowApex),
        2 => (0u8..12).prop_map(Edit::DropName),
    ]
}

fn apply_edit(content: &mut ZoneContent, edit: &Edit) {
    match edit {
        Edit::Addresses(n, lasts) => {
            let addresses: BTreeSet<IpAddr> = lasts.iter().map(|&last| ip(last)).collect();
            content.remove_rrset(&host(*n), RecordType::A);
            for set in address_record_sets(&host(*n), 30, &addresses) {
                content.put_rrset(set);
            }
        }
        Edit::Cname(n) => {
            let mut set = RecordSet::new(host(*n), RecordType::CNAME, 60);
            set.insert(RData::CNAME(CNAME(name("www.example.test."))));
            content.put_rrset(set);
        }
        Edit::Txt(n, ttl) => {
            let mut set = RecordSet::new(host(*n), RecordType::TXT, *ttl);
            set.insert(RData::TXT(TXT::new(vec![format!("t{n}")])));
            content.put_rrset(set);
        }
        Edit::DropApexNs => {
            content.remove_rrset(&origin(), RecordType::NS);
        }
        Edit::SoaBelowApex(n) => {
            let soa = content.get(&origin(), RecordType::SOA).unwrap().clone();
            content.put_rrset(RecordSet {
                name: host(*n),
                ..soa
            });
        }
        Edit::DropName(n) => {
            let types: Vec<RecordType> = content.sets_at(&host(*n)).map(|s| s.rtype).collect();
            for rtype in types {
                content.remove_rrset(&host(*n), rtype);
            }
        }
    }
}

/// The same records, built anew: nothing shared with the content it came from.
fn unshared(content: &ZoneContent) -> ZoneContent {
    ZoneContent::from_normalized_sets(content.origin().clone(), content.rrsets().cloned())
}

/// The verdict on the whole resulting zone: every invariant over every record, on contents
/// that share no structure (so nothing can be skipped).
fn whole_zone_reasons(case: &GuardInput<'_>, now_ms: u64) -> Vec<String> {
    let active = unshared(case.active.unwrap());
    let proposed = unshared(case.proposed);
    let max_ttl = u32::try_from(limits::RECORD_TTL_SECS.max).unwrap();
    let mut violations = Vec::new();
    violations.extend(check_content_valid(&proposed, limits::ZONE_RECORDS.default).err());
    violations.extend(ttl_violations(&proposed, max_ttl));
    violations.extend(never_empty_violations(&proposed, case.endpoints));
    let diff = ZoneDiff::between(&active, &proposed);
    violations.extend(bounded_change_violations(&diff, case.policy));
    violations.extend(velocity_violations(
        case.recent_removals,
        &diff.removals(now_ms),
        case.policy,
        now_ms,
    ));
    let mut reasons: Vec<String> = violations
        .into_iter()
        .map(|violation| Reason::from_violation(violation, case.policy).to_string())
        .collect();
    reasons.sort();
    reasons
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Safety contract 12: the guard judges what a plan changes; its verdict must be the one
    /// judging the whole resulting zone gives.
    #[test]
    fn judging_a_change_gives_the_verdict_of_judging_the_whole_zone(
        hosts in proptest::collection::vec(proptest::collection::vec(1u8..8, 1..4), 12),
        edits in proptest::collection::vec(edit_strategy(), 0..5),
        recent in proptest::collection::vec((0u8..12, 1u64..4), 0..4),
        floors in proptest::collection::vec(0usize..3, 12),
    ) {
        let mut active = zone_with_api(&[1, 2]);
        for (n, lasts) in hosts.iter().enumerate() {
            apply_edit(&mut active, &Edit::Addresses(n as u8, lasts.clone()));
        }
        prop_assume!(active.validate(limits::ZONE_RECORDS.default).is_empty());
        let mut proposed = active.clone();
        for edit in &edits {
            apply_edit(&mut proposed, edit);
        }
        let endpoints: Vec<EndpointConfig> = floors
            .iter()
            .enumerate()
            .map(|(n, &floor)| {
                let mut endpoint = api(3);
                endpoint.name = host(n as u8);
                endpoint.min_answers = floor;
                endpoint
            })
            .collect();
        let now_ms = 100_000;
        let recent: Vec<Removal> = recent
            .iter()
            .map(|&(n, records)| Removal { name: host(n), records, at_ms: now_ms - 1_000 })
            .collect();
        let policy = GuardPolicy::default();
        let input = GuardInput {
            origin: &origin(),
            base: Some(Generation(3)),
            active: Some(&active),
            proposed: &proposed,
            proposed_base: Some(Generation(3)),
            proposed_generation: None,
            endpoints: &endpoints,
            recent_removals: &recent,
            policy: &policy,
            operator_override: None,
        };
        let mut judged: Vec<String> =
            judge(&input, now_ms).reasons().iter().map(ToString::to_string).collect();
        judged.sort();
        prop_assert_eq!(judged, whole_zone_reasons(&input, now_ms));
    }
}
