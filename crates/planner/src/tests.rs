use super::*;
use model::invariants::{check_bounded_change, check_never_empty, check_velocity};
use model::rdata::{A, CNAME, NS, SOA};
use model::{BackendConfig, BackendState, RData, Record};

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn origin() -> Name {
    name("example.test.")
}

fn static_zone() -> ZoneContent {
    let soa = SOA::new(
        name("ns1.example.test."),
        name("hostmaster.example.test."),
        7,
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
                RData::A(A::new(192, 0, 2, 80)),
            ),
            Record::from_rdata(
                name("api.example.test."),
                300,
                RData::A(A::new(192, 0, 2, 99)),
            ),
        ],
    )
    .unwrap()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

fn api(backends: u8) -> EndpointConfig {
    EndpointConfig::new(
        name("api.example.test."),
        (1..=backends)
            .map(|i| BackendConfig {
                address: ip(i),
                check: Check::Tcp(std::net::SocketAddr::new(ip(i), 8080)),
                weight: 1,
            })
            .collect(),
    )
}

fn health(states: &[(u8, bool)]) -> HealthView {
    let mut view = HealthView::new();
    for &(last, healthy) in states {
        view.set(
            ip(last),
            BackendState {
                healthy,
                since_ms: 0,
            },
        );
    }
    view
}

fn ips(lasts: &[u8]) -> BTreeSet<IpAddr> {
    lasts.iter().map(|&last| ip(last)).collect()
}

struct Scenario {
    static_content: ZoneContent,
    endpoints: Vec<EndpointConfig>,
    policy: GuardPolicy,
    recent: Vec<Removal>,
}

impl Scenario {
    fn new(endpoint: EndpointConfig) -> Scenario {
        Scenario {
            static_content: static_zone(),
            endpoints: vec![endpoint],
            policy: GuardPolicy::default(),
            recent: Vec::new(),
        }
    }

    fn plan(&self, health: &HealthView, active: Option<&ZoneContent>, now_ms: u64) -> Plan {
        let origin = origin();
        let input = PlanInput {
            zone_origin: &origin,
            static_content: &self.static_content,
            endpoints: &self.endpoints,
            health,
            active,
            recent_removals: &self.recent,
            policy: &self.policy,
        };
        plan(&input, now_ms)
    }

    fn answer(&self, content: &ZoneContent) -> BTreeSet<IpAddr> {
        self.endpoints[0].answers_in(content)
    }

    /// Applies a plan as an enactor would: records its removals.
    fn apply(&mut self, active: &ZoneContent, planned: &Plan, now_ms: u64) -> ZoneContent {
        let diff = ZoneDiff::between(active, &planned.content);
        self.recent.extend(diff.removals(now_ms));
        planned.content.clone()
    }
}

#[test]
fn every_healthy_backend_is_answered_at_first_load() {
    let scenario = Scenario::new(api(3));
    let planned = scenario.plan(&health(&[]), None, 0);
    assert_eq!(scenario.answer(&planned.content), ips(&[1, 2, 3]));
    assert!(!planned.staged);
    assert_eq!(
        check_content_valid(&planned.content, limits::ZONE_RECORDS.default),
        Ok(())
    );
}

#[test]
fn removing_one_unhealthy_backend_of_two_is_planned_at_once() {
    let scenario = Scenario::new(api(2));
    let active = scenario.plan(&health(&[]), None, 0).content;
    let planned = scenario.plan(&health(&[(1, true), (2, false)]), Some(&active), 1_000);
    assert_eq!(scenario.answer(&planned.content), ips(&[1]));
    assert!(!planned.staged, "{:?}", planned.notes);
    assert!(
        planned.notes[0].contains("1 of 2 serving backends healthy"),
        "{:?}",
        planned.notes
    );
}

#[test]
fn all_backends_down_with_serve_all_answers_every_backend() {
    let scenario = Scenario::new(api(3));
    let active = scenario.plan(&health(&[(1, true)]), None, 0).content;
    let planned = scenario.plan(
        &health(&[(1, false), (2, false), (3, false)]),
        Some(&active),
        1_000,
    );
    assert_eq!(scenario.answer(&planned.content), ips(&[1, 2, 3]));
    assert!(
        planned.notes[0].contains("serve-all"),
        "{:?}",
        planned.notes
    );
}

#[test]
fn keep_last_keeps_the_previous_answer_when_all_are_down() {
    let mut endpoint = api(3);
    endpoint.all_down = AllDownPolicy::KeepLast;
    let scenario = Scenario::new(endpoint);
    let active = scenario
        .plan(&health(&[(1, true), (2, false), (3, false)]), None, 0)
        .content;
    assert_eq!(scenario.answer(&active), ips(&[1]));
    let planned = scenario.plan(
        &health(&[(1, false), (2, false), (3, false)]),
        Some(&active),
        1_000,
    );
    assert_eq!(scenario.answer(&planned.content), ips(&[1]));
    assert!(
        planned.notes[0].contains("keep-last"),
        "{:?}",
        planned.notes
    );
}

#[test]
fn keep_last_with_nothing_served_yet_serves_every_backend() {
    let mut endpoint = api(2);
    endpoint.all_down = AllDownPolicy::KeepLast;
    let scenario = Scenario::new(endpoint);
    let planned = scenario.plan(&health(&[(1, false), (2, false)]), None, 0);
    assert_eq!(scenario.answer(&planned.content), ips(&[1, 2]));
}

#[test]
fn a_drained_backend_is_not_answered_while_others_carry_the_floor() {
    let mut endpoint = api(2);
    endpoint.backends[1].weight = 0;
    let scenario = Scenario::new(endpoint);
    assert_eq!(
        scenario.answer(&scenario.plan(&health(&[]), None, 0).content),
        ips(&[1])
    );
    let all_down = scenario.plan(&health(&[(1, false), (2, false)]), None, 0);
    assert_eq!(
        scenario.answer(&all_down.content),
        ips(&[1]),
        "serve-all serves weight > 0 only"
    );
}

#[test]
fn a_drained_backend_is_answered_when_the_floor_needs_it() {
    let mut endpoint = api(2);
    endpoint.backends[0].weight = 0;
    endpoint.backends[1].weight = 0;
    let scenario = Scenario::new(endpoint);
    let planned = scenario.plan(&health(&[]), None, 0);
    assert_eq!(scenario.answer(&planned.content), ips(&[1]));
}

#[test]
fn a_new_backend_without_a_verdict_waits_for_its_probes() {
    let mut scenario = Scenario::new(api(2));
    let active = scenario.plan(&health(&[]), None, 0).content;
    scenario.endpoints[0] = api(3);
    let planned = scenario.plan(&health(&[]), Some(&active), 1_000);
    assert_eq!(
        scenario.answer(&planned.content),
        ips(&[1, 2]),
        "served stay, new waits"
    );
    let planned = scenario.plan(&health(&[(3, true)]), Some(&active), 2_000);
    assert_eq!(scenario.answer(&planned.content), ips(&[1, 2, 3]));
}

#[test]
fn static_records_are_carried_and_the_endpoint_replaces_its_static_addresses() {
    let mut scenario = Scenario::new(api(1));
    scenario
        .static_content
        .insert(Record::from_rdata(
            name("api.example.test."),
            300,
            RData::CNAME(CNAME(name("www.example.test."))),
        ))
        .unwrap();
    let planned = scenario.plan(&health(&[]), None, 0);
    let content = &planned.content;
    assert_eq!(scenario.answer(content), ips(&[1]));
    assert_eq!(
        content
            .get(&name("api.example.test."), RecordType::A)
            .unwrap()
            .ttl,
        30
    );
    assert!(content
        .get(&name("api.example.test."), RecordType::CNAME)
        .is_none());
    assert!(content
        .get(&name("www.example.test."), RecordType::A)
        .is_some());
    assert_eq!(
        content.serial(),
        Some(7),
        "the serial is the store's business"
    );
    assert!(planned.notes.iter().any(|note| note.contains("CNAME")));
    assert_eq!(
        check_content_valid(content, limits::ZONE_RECORDS.default),
        Ok(())
    );
}

#[test]
fn a_large_removal_is_staged_over_windows() {
    let mut scenario = Scenario::new(api(8));
    let window = scenario.policy.velocity_window_ms;
    let mut active = scenario.plan(&health(&[]), None, 0).content;
    let down = health(&[
        (1, true),
        (2, true),
        (3, false),
        (4, false),
        (5, false),
        (6, false),
        (7, false),
        (8, false),
    ]);
    let mut now_ms = 1_000;
    let mut answers = Vec::new();
    for _ in 0..6 {
        let planned = scenario.plan(&down, Some(&active), now_ms);
        let endpoints = scenario.endpoints.clone();
        assert_eq!(check_never_empty(&planned.content, &endpoints), Ok(()));
        assert_eq!(
            check_bounded_change(&active, &planned.content, &scenario.policy),
            Ok(())
        );
        let proposed = ZoneDiff::between(&active, &planned.content).removals(now_ms);
        assert_eq!(
            check_velocity(&scenario.recent, &proposed, &scenario.policy, now_ms),
            Ok(())
        );
        active = scenario.apply(&active, &planned, now_ms);
        answers.push((scenario.answer(&active).len(), planned.staged));
        now_ms += window / 2;
    }
    // 8 → 4 (velocity allows 4 per window) → 4 (window spent) → 2 (next window) → done.
    assert_eq!(
        answers,
        vec![
            (4, true),
            (4, true),
            (2, false),
            (2, false),
            (2, false),
            (2, false)
        ]
    );
    assert_eq!(scenario.answer(&active), ips(&[1, 2]));
}

#[test]
fn unhealthy_backends_are_removed_before_unconfigured_ones() {
    let mut scenario = Scenario::new(api(4));
    let active = scenario.plan(&health(&[]), None, 0).content;
    // Backend 4 leaves the config; 3 is down; only one removal may happen now.
    scenario.endpoints[0].backends.truncate(3);
    scenario.policy.max_removals_per_window = 1;
    let planned = scenario.plan(&health(&[(3, false)]), Some(&active), 1_000);
    assert!(planned.staged);
    assert_eq!(scenario.answer(&planned.content), ips(&[1, 2, 4]));
}

#[test]
fn a_backend_replacing_the_only_served_one_is_planned_at_once() {
    let mut endpoint = api(2);
    endpoint.min_answers = 1;
    let scenario = Scenario::new(endpoint);
    let active = scenario
        .plan(&health(&[(1, true), (2, false)]), None, 0)
        .content;
    let planned = scenario.plan(&health(&[(1, false), (2, true)]), Some(&active), 1_000);
    assert_eq!(scenario.answer(&planned.content), ips(&[2]));
    assert!(!planned.staged);
}

#[test]
fn the_same_input_gives_the_same_plan() {
    let scenario = Scenario::new(api(5));
    let view = health(&[(2, false), (4, false)]);
    assert_eq!(scenario.plan(&view, None, 9), scenario.plan(&view, None, 9));
}

mod incremental {
    //! [`Planner`] remembers its last plan and works out only what changed; these rounds
    //! hold it to [`plan`], which plans the zone whole every time.
    use super::*;
    use proptest::prelude::*;

    /// One round's change of input before planning.
    #[derive(Debug, Clone)]
    enum Step {
        /// A backend's verdict changes (`None`: forgotten).
        Verdict(u8, Option<bool>),
        /// The last plan is applied: it becomes the active content.
        Apply,
        /// Someone else changed the active answer at an endpoint's name.
        ActiveAnswer(usize, Vec<u8>),
        /// The zone file is read again: equal content, not the same value.
        ZoneFileReread,
        /// An endpoint's floor changes in the config.
        Floor(usize, usize),
        /// Time passes (staging and velocity windows).
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1u8..=8, prop::option::of(any::<bool>())).prop_map(|(b, v)| Step::Verdict(b, v)),
            3 => Just(Step::Apply),
            1 => (0usize..4, prop::collection::vec(1u8..=8, 0..4))
                .prop_map(|(e, lasts)| Step::ActiveAnswer(e, lasts)),
            1 => Just(Step::ZoneFileReread),
            1 => (0usize..4, 1usize..=3).prop_map(|(e, floor)| Step::Floor(e, floor)),
            1 => (0u64..120_000).prop_map(Step::Wait),
        ]
    }

    /// Four endpoints sharing backends 1-8, one on a name with static records, checks and
    /// all-down policies mixed.
    fn endpoints() -> Vec<EndpointConfig> {
        let backends = |lasts: &[u8], none: bool| -> Vec<BackendConfig> {
            lasts
                .iter()
                .map(|&last| BackendConfig {
                    address: ip(last),
                    check: if none {
                        Check::None
                    } else {
                        Check::Tcp(std::net::SocketAddr::new(ip(last), 80))
                    },
                    weight: u32::from(last != 8),
                })
                .collect()
        };
        let mut list = vec![
            EndpointConfig::new(name("api.example.test."), backends(&[1, 2, 3], false)),
            EndpointConfig::new(name("app.example.test."), backends(&[3, 4, 5, 8], true)),
            EndpointConfig::new(name("www.example.test."), backends(&[5, 6], false)),
            EndpointConfig::new(name("db.example.test."), backends(&[6, 7, 1], false)),
        ];
        list[2].all_down = AllDownPolicy::KeepLast;
        list[3].min_answers = 2;
        list
    }

    fn answer_sets(endpoint: &EndpointConfig, lasts: &[u8]) -> Vec<model::RecordSet> {
        endpoint.record_sets(&ips(lasts))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn planning_round_after_round_gives_the_plan_of_the_whole_zone(
            steps in prop::collection::vec(step(), 1..40),
        ) {
            let origin = origin();
            let policy = GuardPolicy::default();
            let mut static_content = static_zone();
            let mut configs = endpoints();
            let mut view = HealthView::new();
            let mut active: Option<ZoneContent> = None;
            let mut recent: Vec<Removal> = Vec::new();
            let mut now_ms = 1_000;
            let mut planner = Planner::new();
            let mut last: Option<Plan> = None;
            for step in steps {
                match step {
                    Step::Verdict(last_octet, Some(healthy)) => view.set(
                        ip(last_octet),
                        BackendState { healthy, since_ms: now_ms },
                    ),
                    Step::Verdict(last_octet, None) => {
                        view.backends.remove(&ip(last_octet));
                    }
                    Step::Apply => {
                        if let Some(planned) = &last {
                            if let Some(before) = &active {
                                recent.extend(ZoneDiff::between(before, &planned.content).removals(now_ms));
                            }
                            active = Some(planned.content.clone());
                        }
                    }
                    Step::ActiveAnswer(at, lasts) => {
                        if let Some(content) = active.as_mut() {
                            let endpoint = &configs[at];
                            content.remove_rrset(&endpoint.name, RecordType::A);
                            for set in answer_sets(endpoint, &lasts) {
                                content.put_rrset(set);
                            }
                        }
                    }
                    Step::ZoneFileReread => static_content = static_zone(),
                    Step::Floor(at, floor) => configs[at].min_answers = floor,
                    Step::Wait(ms) => now_ms += ms,
                }
                let input = PlanInput {
                    zone_origin: &origin,
                    static_content: &static_content,
                    endpoints: &configs,
                    health: &view,
                    active: active.as_ref(),
                    recent_removals: &recent,
                    policy: &policy,
                };
                let remembered = planner.plan(&input, now_ms);
                let whole = plan(&input, now_ms);
                prop_assert_eq!(&remembered, &whole);
                last = Some(remembered);
            }
        }
    }

    #[test]
    fn a_verdict_changes_only_the_endpoints_that_serve_the_backend() {
        let origin = origin();
        let policy = GuardPolicy::default();
        let static_content = static_zone();
        let configs = endpoints();
        let mut view = health(&[
            (1, true),
            (2, true),
            (3, true),
            (5, true),
            (6, true),
            (7, true),
        ]);
        let mut planner = Planner::new();
        let first = planner_input_plan(
            &mut planner,
            &origin,
            &static_content,
            &configs,
            &view,
            None,
            &policy,
        );
        view.set(
            ip(7),
            BackendState {
                healthy: false,
                since_ms: 5,
            },
        );
        let second = planner_input_plan(
            &mut planner,
            &origin,
            &static_content,
            &configs,
            &view,
            Some(&first.content),
            &policy,
        );
        let changed: Vec<_> = first
            .content
            .changed_sets(&second.content)
            .iter()
            .map(|set| set.key.name.to_string())
            .collect();
        assert_eq!(changed, vec!["db.example.test."]);
        assert_eq!(second.summary.len(), 1, "{:?}", second.summary);
        assert!(
            second.summary[0].starts_with("db.example.test.: 2 of 3"),
            "{:?}",
            second.summary
        );
        assert_eq!(
            second.notes.len(),
            4,
            "every endpoint's note: {:?}",
            second.notes
        );
    }

    fn planner_input_plan(
        planner: &mut Planner,
        origin: &Name,
        static_content: &ZoneContent,
        configs: &[EndpointConfig],
        view: &HealthView,
        active: Option<&ZoneContent>,
        policy: &GuardPolicy,
    ) -> Plan {
        planner.plan(
            &PlanInput {
                zone_origin: origin,
                static_content,
                endpoints: configs,
                health: view,
                active,
                recent_removals: &[],
                policy,
            },
            10,
        )
    }
}
