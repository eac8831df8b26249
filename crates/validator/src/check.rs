//! The checks: pure functions of (observations, expectation, now) returning findings. The
//! async shell asks the servers and reads the store; nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use model::{serial, EndpointConfig, Generation, HealthView, Name};

/// How a question was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// What a server said to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    /// NOERROR (or NXDOMAIN, which answers nothing) with this data.
    Answer(T),
    /// An error code other than NXDOMAIN (REFUSED: the zone is not served; SERVFAIL, ...).
    Error { rcode: String },
    /// No usable reply within the timeout.
    Silent { detail: String },
}

/// What one server answered for one zone over one transport, in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub server: SocketAddr,
    pub transport: Transport,
    /// The SOA serial at the zone's apex.
    pub serial: Reply<u32>,
    /// The A and AAAA addresses at each protected name.
    pub endpoints: BTreeMap<Name, Reply<BTreeSet<IpAddr>>>,
}

/// The generation a server should serve and its SOA serial, as the store shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub generation: Generation,
    pub serial: u32,
}

/// What the served zone is judged against: policy from the configuration, the validator's
/// own health view, and the generation that should be served.
#[derive(Debug, Clone)]
pub struct Expectation<'a> {
    pub zone: &'a Name,
    /// The generation to serve; `Err` when the store cannot show it (a ref to a missing
    /// version, unreadable metadata): an impossible state, itself a violation.
    pub target: Result<Target, String>,
    /// When the validator first saw `target` as the one to serve.
    pub target_since_ms: u64,
    pub endpoints: &'a [EndpointConfig],
    pub health: &'a HealthView,
    pub serial_lag_ms: u64,
    /// Whether the validator has seen our server serve the zone since it started. Until it
    /// has, a zone not served at all is a server still loading it (a whole load of a large
    /// zone takes seconds): a warning, since rolling back would only start another load.
    pub served_before: bool,
    pub health_grace_ms: u64,
    pub health_tolerance: f64,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth recording; restoring older content would not help (a silent server, a health
    /// view the planner has not caught up with).
    Warning,
    /// What is served breaks the policy or the state is impossible: repair.
    Violation,
}

/// The findings of a round whose active version was forced below a floor by an operator
/// (`apply --force`, [`model::Provenance::Forced`]): what the override allowed (a name
/// below its floor, an answer that disagrees with health) is reported as a warning, not
/// repaired; everything else stays as found.
pub fn under_override(findings: Vec<Finding>) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut finding| {
            if matches!(
                finding.kind,
                FindingKind::BelowFloor { .. } | FindingKind::DisagreesWithHealth { .. }
            ) {
                finding.severity = Severity::Warning;
            }
            finding
        })
        .collect()
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// The store cannot show the generation that should be served.
    TargetUnreadable { detail: String },
    /// The server serves an older serial than it should, for longer than the lag bound
    /// (`served = None`: it does not serve the zone at all).
    SerialBehind {
        served: Option<u32>,
        expected: u32,
        generation: Generation,
        behind_ms: u64,
    },
    /// A protected name answers fewer addresses than its floor (`rcode` when it errs).
    BelowFloor {
        name: Name,
        answered: usize,
        floor: usize,
        rcode: Option<String>,
    },
    /// A protected name answers addresses that are not among its configured backends.
    ForeignAddress { name: Name, addresses: Vec<IpAddr> },
    /// The answer disagrees with the validator's health view on more backends than the
    /// tolerance allows.
    DisagreesWithHealth {
        name: Name,
        unhealthy_answered: Vec<IpAddr>,
        healthy_missing: Vec<IpAddr>,
    },
    /// The server did not answer.
    Silent { detail: String },
}

/// One finding: what, where, how bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub zone: Name,
    /// `None` for findings about the store's state rather than a server.
    pub server: Option<(SocketAddr, Transport)>,
    pub severity: Severity,
    pub kind: FindingKind,
}

impl Finding {
    /// Stable identity while the finding persists (no counters or times): used to audit a
    /// finding once, not every round.
    pub fn key(&self) -> String {
        let place = match self.server {
            Some((server, transport)) => format!("{server}/{transport}"),
            None => "store".to_string(),
        };
        let what = match &self.kind {
            FindingKind::TargetUnreadable { detail } => format!("unreadable {detail}"),
            FindingKind::SerialBehind { generation, .. } => format!("behind {generation}"),
            FindingKind::BelowFloor { name, .. } => format!("floor {name}"),
            FindingKind::ForeignAddress { name, addresses } => {
                format!("foreign {name} {addresses:?}")
            }
            FindingKind::DisagreesWithHealth { name, .. } => format!("health {name}"),
            FindingKind::Silent { .. } => "silent".to_string(),
        };
        format!("{} {place} {what}", self.zone)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((server, transport)) = self.server {
            write!(f, "{server} over {transport}: ")?;
        }
        match &self.kind {
            FindingKind::TargetUnreadable { detail } => {
                write!(f, "zone {}: the store cannot show what should be served: {detail}", self.zone)
            }
            FindingKind::SerialBehind {
                served,
                expected,
                generation,
                behind_ms,
            } => match served {
                Some(served) => write!(
                    f,
                    "zone {} serves serial {served}, generation {generation} has {expected}; behind for {behind_ms} ms",
                    self.zone
                ),
                None => write!(
                    f,
                    "zone {} is not served; generation {generation} (serial {expected}) should be, for {behind_ms} ms",
                    self.zone
                ),
            },
            FindingKind::BelowFloor {
                name,
                answered,
                floor,
                rcode,
            } => match rcode {
                Some(rcode) => write!(f, "{name} answers {rcode}, below its floor of {floor}"),
                None => write!(f, "{name} answers {answered} addresses, below its floor of {floor}"),
            },
            FindingKind::ForeignAddress { name, addresses } => write!(
                f,
                "{name} answers {} not configured as its backends",
                list(addresses)
            ),
            FindingKind::DisagreesWithHealth {
                name,
                unhealthy_answered,
                healthy_missing,
            } => write!(
                f,
                "{name} disagrees with the validator's health view: answers unhealthy [{}], misses healthy [{}]",
                list(unhealthy_answered),
                list(healthy_missing)
            ),
            FindingKind::Silent { detail } => write!(f, "no answer for zone {}: {detail}", self.zone),
        }
    }
}

fn list(addresses: &[IpAddr]) -> String {
    let texts: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    texts.join(", ")
}

/// Every finding about `observations` (one per server and transport) against `expectation`.
pub fn check(
    observations: &[Observation],
    expectation: &Expectation<'_>,
    now_ms: u64,
) -> Vec<Finding> {
    let zone = expectation.zone;
    let mut findings = Vec::new();
    if let Err(detail) = &expectation.target {
        findings.push(Finding {
            zone: zone.clone(),
            server: None,
            severity: Severity::Violation,
            kind: FindingKind::TargetUnreadable {
                detail: detail.clone(),
            },
        });
    }
    for observation in observations {
        let at = Some((observation.server, observation.transport));
        let mut push = |severity, kind| {
            findings.push(Finding {
                zone: zone.clone(),
                server: at,
                severity,
                kind,
            })
        };
        if let Some(kind) = check_serial(observation, expectation, now_ms) {
            let loading = matches!(kind, FindingKind::SerialBehind { served: None, .. })
                && !expectation.served_before;
            push(
                if loading {
                    Severity::Warning
                } else {
                    Severity::Violation
                },
                kind,
            );
        }
        if let Reply::Silent { detail } = &observation.serial {
            push(
                Severity::Warning,
                FindingKind::Silent {
                    detail: detail.clone(),
                },
            );
        }
        // What a server answers before it serves the target belongs to an older version
        // (or none): only the serial check, with its lag bound, judges that.
        let on_target = match (&expectation.target, &observation.serial) {
            (Err(_), _) => true,
            (Ok(target), Reply::Answer(served)) => {
                *served == target.serial || serial::is_after(*served, target.serial)
            }
            (Ok(_), _) => false,
        };
        if !on_target {
            continue;
        }
        for endpoint in expectation.endpoints {
            for (severity, kind) in check_endpoint(observation, endpoint, expectation, now_ms) {
                push(severity, kind);
            }
        }
    }
    findings
}

/// The served serial keeps up with the target's within the lag bound.
fn check_serial(
    observation: &Observation,
    expectation: &Expectation<'_>,
    now_ms: u64,
) -> Option<FindingKind> {
    let target = expectation.target.as_ref().ok()?;
    let served = match &observation.serial {
        Reply::Answer(served) => Some(*served),
        Reply::Error { .. } => None,
        Reply::Silent { .. } => return None,
    };
    let caught_up = served
        .is_some_and(|served| served == target.serial || serial::is_after(served, target.serial));
    let behind_ms = now_ms.saturating_sub(expectation.target_since_ms);
    if caught_up || behind_ms < expectation.serial_lag_ms {
        return None;
    }
    Some(FindingKind::SerialBehind {
        served,
        expected: target.serial,
        generation: target.generation,
        behind_ms,
    })
}

/// Floor, foreign addresses and agreement with health for one protected name.
fn check_endpoint(
    observation: &Observation,
    endpoint: &EndpointConfig,
    expectation: &Expectation<'_>,
    now_ms: u64,
) -> Vec<(Severity, FindingKind)> {
    let name = &endpoint.name;
    let floor = endpoint.min_answers;
    let answered = match observation.endpoints.get(name) {
        None | Some(Reply::Silent { .. }) => return Vec::new(),
        Some(Reply::Error { rcode }) => {
            return vec![(
                Severity::Violation,
                FindingKind::BelowFloor {
                    name: name.clone(),
                    answered: 0,
                    floor,
                    rcode: Some(rcode.clone()),
                },
            )]
        }
        Some(Reply::Answer(addresses)) => addresses,
    };
    let mut findings = Vec::new();
    if answered.len() < floor {
        findings.push((
            Severity::Violation,
            FindingKind::BelowFloor {
                name: name.clone(),
                answered: answered.len(),
                floor,
                rcode: None,
            },
        ));
    }
    // A protected name without backends (a secondary zone's `protect`: its addresses come
    // from the primary) is held to its floor only.
    let configured: BTreeSet<IpAddr> = endpoint.backends.iter().map(|b| b.address).collect();
    let foreign: Vec<IpAddr> = answered.difference(&configured).copied().collect();
    if !endpoint.backends.is_empty() && !foreign.is_empty() {
        findings.push((
            Severity::Violation,
            FindingKind::ForeignAddress {
                name: name.clone(),
                addresses: foreign,
            },
        ));
    }
    if let Some(kind) = check_health(answered, endpoint, expectation, now_ms) {
        findings.push((Severity::Warning, kind));
    }
    findings
}

/// Agreement with the validator's own health view. Only verdicts that have held for the
/// grace time count, and only while enough backends are healthy for the planner to serve
/// healthy ones only (below that, the all-down policy may answer anything configured).
fn check_health(
    answered: &BTreeSet<IpAddr>,
    endpoint: &EndpointConfig,
    expectation: &Expectation<'_>,
    now_ms: u64,
) -> Option<FindingKind> {
    let settled =
        |address: &IpAddr| {
            expectation.health.backends.get(address).filter(|state| {
                now_ms.saturating_sub(state.since_ms) >= expectation.health_grace_ms
            })
        };
    let healthy: Vec<IpAddr> = endpoint
        .serving_backends()
        .filter(|b| expectation.health.healthy(&b.address) == Some(true))
        .map(|b| b.address)
        .collect();
    if healthy.len() < endpoint.min_answers {
        return None;
    }
    let unhealthy_answered: Vec<IpAddr> = answered
        .iter()
        .filter(|a| settled(a).is_some_and(|state| !state.healthy))
        .copied()
        .collect();
    let healthy_missing: Vec<IpAddr> = healthy
        .iter()
        .filter(|a| !answered.contains(a) && settled(a).is_some())
        .copied()
        .collect();
    let disagreeing = unhealthy_answered.len() + healthy_missing.len();
    let allowed = (expectation.health_tolerance * endpoint.backends.len() as f64).floor() as usize;
    (disagreeing > allowed).then(|| FindingKind::DisagreesWithHealth {
        name: endpoint.name.clone(),
        unhealthy_answered,
        healthy_missing,
    })
}

/// Whether any finding calls for repair.
pub fn has_violation(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Violation)
}

/// Whether every observation serves the target's serial (or newer): the target is on the
/// wire, so a clean round says something about it.
pub fn serves_target(observations: &[Observation], target: Target) -> bool {
    !observations.is_empty()
        && observations
            .iter()
            .all(|observation| match observation.serial {
                Reply::Answer(served) => {
                    served == target.serial || serial::is_after(served, target.serial)
                }
                _ => false,
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{BackendConfig, BackendState, Check};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn endpoint() -> EndpointConfig {
        let backends = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
            .iter()
            .map(|a| BackendConfig {
                address: ip(a),
                check: Check::None,
                weight: 1,
            })
            .collect();
        EndpointConfig::new(name("app.example.test."), backends)
    }

    fn observation(serial: Reply<u32>, answer: Reply<BTreeSet<IpAddr>>) -> Observation {
        Observation {
            server: "127.0.0.1:53".parse().unwrap(),
            transport: Transport::Udp,
            serial,
            endpoints: BTreeMap::from([(name("app.example.test."), answer)]),
        }
    }

    fn addresses(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|a| ip(a)).collect()
    }

    fn judge(observation: Observation, health: &HealthView, now_ms: u64) -> Vec<Finding> {
        judge_with(observation, &[endpoint()], health, now_ms)
    }

    /// [`judge`] with other protected names.
    fn judge_with(
        observation: Observation,
        endpoints: &[EndpointConfig],
        health: &HealthView,
        now_ms: u64,
    ) -> Vec<Finding> {
        let zone = name("example.test.");
        let expectation = Expectation {
            zone: &zone,
            target: Ok(Target {
                generation: Generation(7),
                serial: 70,
            }),
            target_since_ms: 1_000,
            endpoints,
            health,
            serial_lag_ms: 3_000,
            served_before: true,
            health_grace_ms: 5_000,
            health_tolerance: 0.0,
        };
        check(&[observation], &expectation, now_ms)
    }

    #[test]
    fn a_zone_not_served_yet_is_a_warning_until_the_server_was_seen_serving_it() {
        let refused = || {
            observation(
                Reply::Error {
                    rcode: "REFUSED".to_string(),
                },
                Reply::Answer(addresses(&["127.0.0.11"])),
            )
        };
        let zone = name("example.test.");
        let endpoints = [endpoint()];
        let health = HealthView::new();
        let mut expectation = Expectation {
            zone: &zone,
            target: Ok(Target {
                generation: Generation(1),
                serial: 1,
            }),
            target_since_ms: 0,
            endpoints: &endpoints,
            health: &health,
            serial_lag_ms: 3_000,
            served_before: false,
            health_grace_ms: 5_000,
            health_tolerance: 0.0,
        };
        let loading = check(&[refused()], &expectation, 10_000);
        assert!(
            !loading.is_empty() && !has_violation(&loading),
            "still loading: {loading:?}"
        );
        expectation.served_before = true;
        let lost = check(&[refused()], &expectation, 10_000);
        assert!(has_violation(&lost), "stopped serving: {lost:?}");
    }

    fn kinds(findings: &[Finding]) -> Vec<&FindingKind> {
        findings.iter().map(|f| &f.kind).collect()
    }

    #[test]
    fn a_served_target_with_configured_addresses_is_clean() {
        let seen = observation(Reply::Answer(70), Reply::Answer(addresses(&["127.0.0.11"])));
        assert_eq!(judge(seen, &HealthView::new(), 2_000), vec![]);
    }

    #[test]
    fn an_empty_answer_is_below_the_floor() {
        let seen = observation(Reply::Answer(70), Reply::Answer(BTreeSet::new()));
        let findings = judge(seen, &HealthView::new(), 2_000);
        assert!(has_violation(&findings));
        assert!(matches!(
            kinds(&findings)[..],
            [FindingKind::BelowFloor {
                answered: 0,
                floor: 1,
                ..
            }]
        ));
    }

    #[test]
    fn a_refused_protected_name_is_below_the_floor() {
        fn refused<T>() -> Reply<T> {
            Reply::Error {
                rcode: "REFUSED".into(),
            }
        }
        let findings = judge(
            observation(Reply::Answer(70), refused()),
            &HealthView::new(),
            2_000,
        );
        assert!(matches!(
            kinds(&findings)[..],
            [FindingKind::BelowFloor { rcode: Some(_), .. }]
        ));
    }

    #[test]
    fn a_zone_not_served_yet_is_judged_by_the_lag_bound_only() {
        fn refused<T>() -> Reply<T> {
            Reply::Error {
                rcode: "REFUSED".into(),
            }
        }
        assert_eq!(
            judge(observation(refused(), refused()), &HealthView::new(), 2_000),
            vec![]
        );
        let findings = judge(observation(refused(), refused()), &HealthView::new(), 9_000);
        assert!(matches!(
            kinds(&findings)[..],
            [FindingKind::SerialBehind { served: None, .. }]
        ));
        // An older version's empty answer is not blamed on the target either.
        let older = observation(Reply::Answer(69), Reply::Answer(BTreeSet::new()));
        assert_eq!(judge(older, &HealthView::new(), 2_000), vec![]);
    }

    #[test]
    fn an_address_that_is_no_backend_is_foreign() {
        let seen = observation(
            Reply::Answer(70),
            Reply::Answer(addresses(&["127.0.0.11", "192.0.2.1"])),
        );
        let findings = judge(seen, &HealthView::new(), 2_000);
        assert!(
            matches!(&kinds(&findings)[..], [FindingKind::ForeignAddress { addresses, .. }] if addresses == &vec![ip("192.0.2.1")])
        );
    }

    #[test]
    fn a_protected_name_without_backends_is_held_to_its_floor_only() {
        let mut protected = EndpointConfig::new(name("app.example.test."), Vec::new());
        protected.min_answers = 2;
        let endpoints = [protected];
        let health = HealthView::new();
        let two = observation(
            Reply::Answer(70),
            Reply::Answer(addresses(&["192.0.2.1", "192.0.2.2"])),
        );
        assert_eq!(
            judge_with(two, &endpoints, &health, 2_000),
            vec![],
            "any addresses, none foreign"
        );
        let one = observation(Reply::Answer(70), Reply::Answer(addresses(&["192.0.2.1"])));
        assert!(matches!(
            &kinds(&judge_with(one, &endpoints, &health, 2_000))[..],
            [FindingKind::BelowFloor {
                answered: 1,
                floor: 2,
                ..
            }]
        ));
    }

    #[test]
    fn an_older_serial_is_a_violation_only_after_the_lag_bound() {
        let seen = || observation(Reply::Answer(69), Reply::Answer(addresses(&["127.0.0.11"])));
        assert_eq!(judge(seen(), &HealthView::new(), 3_999), vec![]);
        let findings = judge(seen(), &HealthView::new(), 4_000);
        assert!(matches!(
            kinds(&findings)[..],
            [FindingKind::SerialBehind {
                served: Some(69),
                expected: 70,
                ..
            }]
        ));
        // A newer serial than the store showed means the store moved since: fine.
        let newer = observation(Reply::Answer(71), Reply::Answer(addresses(&["127.0.0.11"])));
        assert_eq!(judge(newer, &HealthView::new(), 9_000), vec![]);
    }

    #[test]
    fn a_silent_server_is_a_warning_not_a_violation() {
        fn silent<T>() -> Reply<T> {
            Reply::Silent {
                detail: "timed out".into(),
            }
        }
        let findings = judge(observation(silent(), silent()), &HealthView::new(), 9_000);
        assert!(!has_violation(&findings));
        assert_eq!(findings.len(), 1);
    }

    #[test]
    fn an_unreadable_target_is_a_violation() {
        let zone = name("example.test.");
        let expectation = Expectation {
            zone: &zone,
            target: Err("zone example.test. has no generation 9".into()),
            target_since_ms: 0,
            endpoints: &[],
            health: &HealthView::new(),
            serial_lag_ms: 3_000,
            served_before: true,
            health_grace_ms: 0,
            health_tolerance: 0.5,
        };
        let findings = check(&[], &expectation, 0);
        assert!(matches!(
            kinds(&findings)[..],
            [FindingKind::TargetUnreadable { .. }]
        ));
    }

    #[test]
    fn settled_disagreement_with_health_is_a_warning() {
        let mut health = HealthView::new();
        for (address, healthy) in [
            ("127.0.0.11", false),
            ("127.0.0.12", true),
            ("127.0.0.13", true),
        ] {
            health.set(
                ip(address),
                BackendState {
                    healthy,
                    since_ms: 0,
                },
            );
        }
        let seen = || {
            observation(
                Reply::Answer(70),
                Reply::Answer(addresses(&["127.0.0.11", "127.0.0.12"])),
            )
        };
        let findings = judge(seen(), &health, 10_000);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        // Verdicts younger than the grace time do not count yet.
        assert_eq!(judge(seen(), &health, 4_000), vec![]);
    }

    #[test]
    fn when_too_few_backends_are_healthy_any_configured_answer_agrees() {
        let mut health = HealthView::new();
        for address in ["127.0.0.11", "127.0.0.12", "127.0.0.13"] {
            health.set(
                ip(address),
                BackendState {
                    healthy: false,
                    since_ms: 0,
                },
            );
        }
        let seen = observation(
            Reply::Answer(70),
            Reply::Answer(addresses(&["127.0.0.11", "127.0.0.12", "127.0.0.13"])),
        );
        assert_eq!(judge(seen, &health, 10_000), vec![]);
    }
}
