//! The validator in the simulation: a small actor around the validator crate's real decision
//! code, and the simulated servers it asks.
//!
//! The validator's async shell asks real sockets and runs store calls on blocking threads,
//! so it cannot be driven step by step. This actor calls its pieces instead, in the order the
//! shell does: [`validator::check`] on what is served, [`GoodTracker`] for the last known
//! good (persisted with [`validator::record_good`], replayed with
//! [`validator::replay_good`] after a restart), and on a violation [`validator::repair`] —
//! the very function the shell calls to decide a rollback, do it and pin what it restored;
//! in canary mode, [`enactor::refuse_canary`] or [`enactor::promote_canary`].
//!
//! What it believes is the wire: [`Servers`] holds the catalogs a main server and a canary
//! listener answer from, loaded by the real follower ([`follow::sync`]: patches, carried
//! answers, whole encodings when the scheduler runs the encoder; a version the store cannot
//! show leaves the last loaded snapshot serving), and the actor asks them real DNS messages
//! through the server's own handler ([`validator::client::observe_in_process`]). Every
//! snapshot they serve is also compared, answer by answer, with a whole build of its
//! version ([`Servers::wrong_answer`], the `served-answers` checker).
//! The store supplies only the expectation (which generation should be served) and the
//! content to restore. Its health view is its own, probed from the backends' true state at
//! each round, never the planner's.
//!
//! Timing: the servers load a new version at the end of the step that made it (propagation
//! is milliseconds; validator rounds are seconds). The validator takes a round when the
//! scheduler picks it (a store change wakes the real one) and at the latest every
//! [`VALIDATOR_INTERVAL_STEPS`] steps (its interval timer).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use enactor::{PromotionDecision, ZonePlan};
use model::{BackendState, Generation, HealthView, Name, Provenance, Refs, ZoneContent};
use server::{Catalog, ServerConfig, ZoneSnapshot};
use store::{MemoryStore, Store};
use validator::client::observe_in_process;
use validator::round::{
    judge_active, judge_canary, write_active, write_canary, ActiveNext, ActiveRound, Bounds,
    CanaryNext, CanaryRound, CanaryWrites, ZoneMemory,
};
use validator::{limits, replay_good, rollback, GoodTracker, Observation, Repair, Transport};

use crate::world::{first_clause, show};

/// Steps the validator may go without a round: its interval timer, in steps.
pub const VALIDATOR_INTERVAL_STEPS: u64 = 8;
/// Steps a bad state written by a fault may last before the checkers fail: one validator
/// interval and the round that repairs it.
pub const REPAIR_BOUND_STEPS: u64 = VALIDATOR_INTERVAL_STEPS + 1;

/// The simulated servers' settings, made once: `ServerConfig::new` asks the operating system
/// for the CPU count, which costs more than a whole validator round.
fn server_config(listen: SocketAddr) -> &'static ServerConfig {
    static MAIN: OnceLock<ServerConfig> = OnceLock::new();
    static CANARY: OnceLock<ServerConfig> = OnceLock::new();
    let slot = if listen == MAIN_SERVER {
        &MAIN
    } else {
        &CANARY
    };
    slot.get_or_init(|| ServerConfig::new(listen))
}

/// The address the main server's observations are labelled with.
const MAIN_SERVER: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 9, 53)), 53);
/// The address the canary listener's observations are labelled with.
const CANARY_LISTENER: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 9, 54)), 53);

/// What the simulated servers serve: the main server (the active version) and the canary
/// listener (the canary, or active when none is pending), each following the store with the
/// real follower ([`follow::sync`]: patches, carried answers, whole loads) and its own
/// [`follow::Encoder`], whose encodings the scheduler runs ([`Servers::encode`]).
pub(crate) struct Servers {
    pub(crate) main: Catalog,
    pub(crate) canary: Catalog,
    sources: follow::Sources,
    main_encoder: follow::Encoder,
    canary_encoder: follow::Encoder,
    /// The last observation of each, with the generation it was loaded with. A snapshot is
    /// immutable and the answer a pure function of it, so asking again before the server
    /// loads another version would get the same messages back: the round reuses them (this
    /// keeps the simulation's speed; the first round after every load asks for real).
    main_observed: Option<(Option<Generation>, Vec<Observation>)>,
    canary_observed: Option<(Option<Generation>, Vec<Observation>)>,
    /// The snapshots last compared with a whole build of their version.
    checked: [Option<Arc<ZoneSnapshot>>; 2],
    /// The last whole build compared with, and the questions asked of it.
    whole: Option<(Generation, Arc<server::Zones>, Arc<Questions>)>,
}

impl Servers {
    /// Servers following `store` (a client no fault touches: a server's reads are not the
    /// actors' calls).
    pub(crate) fn new(store: MemoryStore) -> Servers {
        let bound = server::default_cname_chain_length();
        Servers {
            main: Catalog::new(),
            canary: Catalog::new(),
            sources: follow::Sources::store(Arc::new(store)),
            main_encoder: follow::Encoder::new(bound),
            canary_encoder: follow::Encoder::new(bound),
            main_observed: None,
            canary_observed: None,
            checked: [None, None],
            whole: None,
        }
    }

    /// What the main server answers now, over UDP and TCP.
    fn observe_main(&mut self, zone: &ZonePlan) -> Vec<Observation> {
        let loaded = served_generation(&self.main, &zone.origin);
        observe_cached(
            &self.main,
            loaded,
            &mut self.main_observed,
            MAIN_SERVER,
            zone,
        )
    }

    /// What the canary listener answers now, over UDP and TCP.
    fn observe_canary(&mut self, zone: &ZonePlan) -> Vec<Observation> {
        let loaded = served_generation(&self.canary, &zone.origin);
        observe_cached(
            &self.canary,
            loaded,
            &mut self.canary_observed,
            CANARY_LISTENER,
            zone,
        )
    }

    /// Follows the store like the real followers (they are the real follower): loads a
    /// ref's version when it moved and can be read, brings finished encodings forward;
    /// otherwise the last loaded snapshot keeps serving.
    pub(crate) fn follow(&mut self, canary_mode: bool) {
        // A store call that fails leaves what is served as it is, as in a node.
        let _ = follow::sync(
            &self.sources,
            &self.main,
            &self.main_encoder,
            follow::Target::Active,
        );
        if canary_mode {
            let _ = follow::sync(
                &self.sources,
                &self.canary,
                &self.canary_encoder,
                follow::Target::CanaryElseActive,
            );
        }
    }

    /// Runs the encodings waiting (the encoder thread's work, at a moment the scheduler
    /// picked); the next [`Servers::follow`] serves or brings them forward.
    pub(crate) fn encode(&mut self) {
        while self.main_encoder.encode_next() {}
        while self.canary_encoder.encode_next() {}
    }

    /// Compares every answer each server gives for the zone with the library path's answer
    /// from a whole build of the version it serves (patches, carried answers and the hot
    /// path against the reference); the first difference, if any. Each snapshot is checked
    /// once.
    pub(crate) fn wrong_answer(&mut self, zone: &Name) -> Option<String> {
        for (index, (catalog, server)) in
            [(&self.main, MAIN_SERVER), (&self.canary, CANARY_LISTENER)]
                .into_iter()
                .enumerate()
        {
            let Some(served) = catalog.find(zone).filter(|served| served.origin() == zone) else {
                continue;
            };
            if self.checked[index]
                .as_ref()
                .is_some_and(|checked| Arc::ptr_eq(checked, &served))
            {
                continue;
            }
            self.checked[index] = Some(Arc::clone(&served));
            let generation = served.generation();
            if self
                .whole
                .as_ref()
                .is_none_or(|(built, _, _)| *built != generation)
            {
                // A version the store no longer has (a buggy clean-up) cannot be rebuilt.
                let Ok(content) = self.sources.store.content(zone, generation) else {
                    continue;
                };
                let whole = Catalog::new();
                whole.replace_zone(Arc::new(ZoneSnapshot::build_lookup(&content, generation)));
                self.whole = Some((generation, whole.snapshot(), Arc::new(questions(&content))));
            }
            let Some((_, whole, questions)) = self.whole.clone() else {
                continue;
            };
            let now = catalog.snapshot();
            let config = server_config(server);
            for question in questions.iter() {
                for transport in [server::Transport::Udp, server::Transport::Tcp] {
                    let expected = server::answer_library(&question.1, transport, &whole, config);
                    let got = server::handle_with(&question.1, transport, &now, config);
                    if got != expected {
                        return Some(format!(
                            "{server} serving g{} ({}) answers {} over {transport:?} unlike a whole build of g{}",
                            generation,
                            served
                                .stale_names()
                                .map_or("own or no pre-encoded answers".to_string(), |stale| format!(
                                    "carried answers, {stale} stale names"
                                )),
                            question.0,
                            generation,
                        ));
                    }
                }
            }
        }
        None
    }
}

/// Questions as (what they ask, the query message).
type Questions = Vec<(String, Vec<u8>)>;

/// The generation a catalog serves for `zone`.
fn served_generation(catalog: &Catalog, zone: &Name) -> Option<Generation> {
    catalog
        .find(zone)
        .filter(|served| served.origin() == zone)
        .map(|served| served.generation())
}

/// The questions [`Servers::wrong_answer`] asks: A of each name of the content and of a name
/// below the apex that does not exist (answers, CNAME chains, NXDOMAIN, NODATA), and the
/// apex's SOA, NS and TXT.
fn questions(content: &ZoneContent) -> Questions {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use model::RecordType;
    let origin = content.origin();
    let missing = Name::from_ascii("no-such-name")
        .ok()
        .and_then(|label| label.append_domain(origin).ok());
    let names: BTreeSet<Name> = content
        .names()
        .map(Name::to_lowercase)
        .chain(missing)
        .collect();
    let mut questions = Vec::new();
    let apex = origin.to_lowercase();
    for name in names {
        let types: &[RecordType] = if name == apex {
            &[
                RecordType::A,
                RecordType::SOA,
                RecordType::NS,
                RecordType::TXT,
            ]
        } else {
            &[RecordType::A]
        };
        for &rtype in types {
            let mut message = Message::new(0x5eed, MessageType::Query, OpCode::Query);
            message.add_query(Query::query(name.clone(), rtype));
            if let Ok(bytes) = message.to_vec() {
                questions.push((format!("{name} {rtype}"), bytes));
            }
        }
    }
    questions
}

fn observe_cached(
    catalog: &Catalog,
    loaded: Option<Generation>,
    observed: &mut Option<(Option<Generation>, Vec<Observation>)>,
    server: SocketAddr,
    zone: &ZonePlan,
) -> Vec<Observation> {
    match observed {
        Some((generation, observations)) if *generation == loaded => observations.clone(),
        _ => {
            let observations = ask(catalog, server, zone);
            *observed = Some((loaded, observations.clone()));
            observations
        }
    }
}

/// What the validator did in a round, for the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoundOutcome {
    pub(crate) rolled_back: bool,
    pub(crate) canary_refused: bool,
    pub(crate) canary_promoted: bool,
}

/// The validator's memory between rounds (what the shell keeps per zone).
pub(crate) struct SimValidator {
    /// Its own client of the store: the faults injected on the actors' handle miss it.
    store: MemoryStore,
    /// What the shell keeps per zone between rounds (its last known good is always
    /// replayed at start).
    memory: ZoneMemory,
    /// Its own view of the backends, probed at each round.
    health: HealthView,
    /// Steps since its last round.
    pub(crate) idle_steps: u64,
}

impl SimValidator {
    /// A validator starting (or restarting): its last known good replayed from the audit log.
    pub(crate) fn start(store: MemoryStore, zone: &Name) -> SimValidator {
        // An unreadable audit log starts it with nothing known good, as the shell would.
        let replayed = replay_good(&store, zone).unwrap_or_default();
        SimValidator {
            store,
            memory: ZoneMemory {
                good: Some(GoodTracker::new(limits::GOOD_AFTER_MS.default, replayed)),
                ..ZoneMemory::default()
            },
            health: HealthView::new(),
            idle_steps: 0,
        }
    }

    /// The generation this validator pinned as its last known good (an operator leaves it).
    pub(crate) fn pinned(&self) -> Option<Generation> {
        self.memory.repair.pinned_by_us
    }

    /// Whether a bad `active` would be repaired: a rollback is due, and the version this
    /// validator pinned as its last known good is a candidate and readable (clean-up keeps
    /// it). The faults write bad states only then, as the self-heal tests do: with nothing
    /// pinned to fall back on, older good versions may be cleaned up before the repair and
    /// the repair path can only freeze (the validator's unit tests cover that).
    pub(crate) fn can_repair(
        &self,
        zone: &Name,
        active: Generation,
        provenance: Option<&Provenance>,
        now_ms: u64,
    ) -> bool {
        let Some(pinned) = self.memory.repair.pinned_by_us else {
            return false;
        };
        let Some(good) = &self.memory.good else {
            return false;
        };
        let due = rollback::rollback_due(
            self.memory.repair.last_rollback,
            active,
            now_ms,
            limits::SERIAL_LAG_MS.default,
        );
        due && rollback::candidates(good.good(), Some(active), provenance).contains(&pinned)
            && self.store.content(zone, pinned).is_ok()
    }

    /// One round: probe, ask the servers, judge, act. Returns the trace line.
    pub(crate) fn round(
        &mut self,
        zone: &ZonePlan,
        servers: &mut Servers,
        truth: &BTreeMap<IpAddr, bool>,
        canary_mode: bool,
        now_ms: u64,
    ) -> (String, RoundOutcome) {
        self.idle_steps = 0;
        self.probe(truth, now_ms);
        let origin = &zone.origin;
        let refs = match self.store.refs(origin) {
            Ok(refs) => refs,
            Err(error) => {
                let line = format!(
                    "validator: store unreadable ({})",
                    first_clause(&error.to_string())
                );
                return (line, RoundOutcome::default());
            }
        };
        let Some(active) = refs.active else {
            // A zone's first version can only be a canary: check it before anything serves.
            if canary_mode {
                if let Some(canary) = refs.canary {
                    return self.canary_round(zone, servers, refs, canary, now_ms);
                }
            }
            return (
                "validator: nothing active".to_string(),
                RoundOutcome::default(),
            );
        };
        let version = self.store.version(origin, active);
        let observations = servers.observe_main(zone);
        let health = self.health.clone();
        let verdict = judge_active(
            &mut self.memory,
            ActiveRound {
                zone: origin,
                active,
                version: Some(&version),
                observations: &observations,
                endpoints: &zone.endpoints,
                our_server: MAIN_SERVER,
                health: &health,
                bounds: bounds(),
                now_ms,
            },
        );
        let writes = write_active(
            &self.store,
            origin,
            &mut self.memory,
            active,
            &verdict,
            (limits::SERIAL_LAG_MS.default, limits::GOOD_AFTER_MS.default),
            now_ms,
        );
        let audit_note = writes.audited.map_or_else(
            |error| format!(" (audit failed: {})", first_clause(&error.to_string())),
            |()| String::new(),
        );
        if let ActiveNext::Repair { reason, .. } = &verdict.next {
            return match writes.repair {
                Some(Repair::RolledBack { done, pinned }) => {
                    let pin_note = pinned.map_or_else(
                        |error| {
                            format!(" (pinning it failed: {})", first_clause(&error.to_string()))
                        },
                        |()| String::new(),
                    );
                    (
                        format!(
                            "validator: {reason}; rolled back {} to g{}'s content as g{}, breaker \
                         tripped{audit_note}{pin_note}",
                            show(done.from),
                            done.restored,
                            done.generation
                        ),
                        RoundOutcome {
                            rolled_back: true,
                            ..RoundOutcome::default()
                        },
                    )
                }
                Some(Repair::Impossible(error)) => (
                    format!(
                        "validator: {reason}; {}{audit_note}",
                        first_clause(&error.to_string())
                    ),
                    RoundOutcome::default(),
                ),
                Some(Repair::CoolingDown) | None => (
                    format!(
                        "validator: {reason}; cooling down after the last rollback{audit_note}"
                    ),
                    RoundOutcome::default(),
                ),
            };
        }

        let mut line = format!("validator: g{active} clean{audit_note}");
        match writes.recorded {
            Some((newly, Ok(()))) => line.push_str(&format!(", g{newly} is the last known good")),
            Some((newly, Err(error))) => line.push_str(&format!(
                ", recording g{newly} as good failed ({})",
                first_clause(&error.to_string())
            )),
            None => {}
        }
        let mut outcome = RoundOutcome::default();
        if canary_mode {
            if let Some(canary) = refs.canary {
                let (canary_line, canary_outcome) =
                    self.canary_round(zone, servers, refs, canary, now_ms);
                line.push_str(&canary_line.replacen("validator:", ";", 1));
                outcome = canary_outcome;
            }
        }
        (line, outcome)
    }

    /// A pending canary, checked on the canary listener against its own generation: refused
    /// (breaker trips) or promoted.
    fn canary_round(
        &mut self,
        zone: &ZonePlan,
        servers: &mut Servers,
        refs: Refs,
        canary: Generation,
        now_ms: u64,
    ) -> (String, RoundOutcome) {
        let origin = &zone.origin;
        if self.memory.refused_canary == Some(canary) {
            return (
                format!("validator: canary g{canary} stays refused"),
                RoundOutcome::default(),
            );
        }
        let version = self.store.version(origin, canary);
        let observations = servers.observe_canary(zone);
        let health = self.health.clone();
        let verdict = judge_canary(
            &mut self.memory,
            CanaryRound {
                zone: origin,
                canary,
                version: Some(&version),
                observations: &observations,
                endpoints: &zone.endpoints,
                health: &health,
                bounds: bounds(),
                now_ms,
            },
        );
        let writes = write_canary(
            &self.store,
            origin,
            &mut self.memory,
            canary,
            &verdict.next,
            (
                "served on the simulated canary listener over UDP and TCP with every check clean",
                now_ms,
            ),
        );
        match (&verdict.next, writes) {
            (CanaryNext::Refuse { reason }, CanaryWrites::Refused(Ok(()))) => (
                format!("validator: canary g{canary} refused ({reason}), breaker tripped"),
                RoundOutcome {
                    canary_refused: true,
                    ..RoundOutcome::default()
                },
            ),
            (_, CanaryWrites::Refused(Err(error))) => (
                format!(
                    "validator: refusing canary g{canary} failed ({})",
                    first_clause(&error.to_string())
                ),
                RoundOutcome::default(),
            ),
            (_, CanaryWrites::Promoted(Ok(PromotionDecision::Promote))) => (
                format!(
                    "validator: canary g{canary} promoted over {}",
                    show(refs.active)
                ),
                RoundOutcome {
                    canary_promoted: true,
                    ..RoundOutcome::default()
                },
            ),
            (_, CanaryWrites::Promoted(Ok(other))) => (
                format!("validator: canary g{canary} not promoted ({other:?})"),
                RoundOutcome::default(),
            ),
            (_, CanaryWrites::Promoted(Err(error))) => (
                format!(
                    "validator: canary g{canary} not promoted ({})",
                    first_clause(&error.to_string())
                ),
                RoundOutcome::default(),
            ),
            (CanaryNext::Recheck, _) => (
                format!("validator: canary g{canary} not on the listener yet"),
                RoundOutcome::default(),
            ),
            (_, _) => (
                format!("validator: canary g{canary} unreadable"),
                RoundOutcome::default(),
            ),
        }
    }

    /// Its own probes: every backend's true state now; a verdict that changed dates from now.
    fn probe(&mut self, truth: &BTreeMap<IpAddr, bool>, now_ms: u64) {
        for (address, healthy) in truth {
            if self.health.healthy(address) != Some(*healthy) {
                self.health.set(
                    *address,
                    BackendState {
                        healthy: *healthy,
                        since_ms: now_ms,
                    },
                );
            }
        }
    }
}

/// The bounds the simulated validator checks with: the defaults.
fn bounds() -> Bounds {
    Bounds {
        serial_lag_ms: limits::SERIAL_LAG_MS.default,
        good_after_ms: limits::GOOD_AFTER_MS.default,
        health_grace_ms: limits::HEALTH_GRACE_MS.default,
        health_tolerance: limits::HEALTH_TOLERANCE.default,
    }
}

/// Both transports of one server.
fn ask(catalog: &Catalog, server: SocketAddr, zone: &ZonePlan) -> Vec<Observation> {
    let config = server_config(server);
    [Transport::Udp, Transport::Tcp]
        .into_iter()
        .map(|transport| {
            observe_in_process(catalog, config, transport, &zone.origin, &zone.endpoints)
        })
        .collect()
}
