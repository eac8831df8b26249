//! The contract suite: behaviour every [`Store`] implementation must have, written once and
//! stamped onto each implementation with [`contract_suite!`](crate::contract_suite).
//!
//! An implementation provides a [`Backend`]: a fresh, empty store per test that can be opened
//! several times (each open is another client, with its own connection) and a command that
//! runs [`torture_loop`] against it in a child process, for the SIGKILL test.
//!
//! ```text
//! store::contract_suite!(sqlite, || SqliteBackend::new());
//! ```

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use model::{
    Breaker, Generation, Name, Provenance, RecordSet, RecordType, RefName, Refs, Version,
    ZoneContent,
};

use crate::{
    actions, AuditQuery, BreakerChange, Commit, NewAuditEntry, SetPinned, Store, StoreError,
};

/// A store implementation under test.
pub trait Backend {
    /// Opens another client of this backend's store (a new instance, its own connection).
    fn open(&self) -> Arc<dyn Store>;
    /// A command that runs [`torture_loop`] against this backend's store in a child process
    /// and prints `ACK <generation>` lines on stdout. `None` for a store that lives inside
    /// one process ([`MemoryStore`](crate::MemoryStore)): nothing of it survives the process,
    /// so the SIGKILL test does not apply and such a backend is stamped with
    /// `contract_suite!(module, factory, in_process)`, which leaves that one test out.
    fn torture_command(&self) -> Option<Command>;
}

/// Stamps the contract suite onto an implementation: `contract_suite!(module, factory)`
/// where `factory` is an expression callable with no argument that returns a fresh
/// [`Backend`]. Paths in `factory` are resolved from inside the generated module, which
/// imports `super::*`. `contract_suite!(module, factory, in_process)` stamps every test but
/// the SIGKILL durability test, for a store that lives inside one process.
#[macro_export]
macro_rules! contract_suite {
    ($module:ident, $factory:expr) => {
        $crate::contract_suite!(@module $module, $factory; acknowledged_commits_survive_sigkill);
    };
    ($module:ident, $factory:expr, in_process) => {
        $crate::contract_suite!(@module $module, $factory;);
    };
    (@module $module:ident, $factory:expr; $($extra:ident),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::contract_suite!(@tests $factory;
                commit_then_read_back_gives_identical_content_metadata_and_history,
                zone_names_differing_only_in_case_are_one_zone,
                generations_strictly_increase_and_are_never_reused_after_clean_up,
                served_serial_rises_with_every_generation_even_for_older_content,
                a_writer_with_a_stale_base_loses_with_conflict_and_changes_nothing,
                concurrent_writers_with_their_own_instances_have_one_winner_per_base,
                concurrent_writers_sharing_one_instance_have_one_winner_per_base,
                move_ref_refuses_backward_equal_and_missing_targets,
                canary_promotion_clears_the_canary,
                a_canary_commit_leaves_active_and_keeps_the_cas_on_active,
                clean_up_keeps_refs_last_k_pinned_and_in_flight_versions,
                audit_log_records_every_change_in_order_and_is_append_only,
                audit_query_filters_by_zone_time_and_sequence,
                invalid_content_is_refused_and_changes_nothing,
                a_commit_from_the_base_content_stores_what_a_whole_commit_stores,
                what_a_version_changed_stays_known_after_its_parent_is_cleaned_up,
                missing_versions_are_not_found,
                change_counter_moves_when_another_instance_moves_a_ref,
                watcher_publishes_a_ref_move_made_through_another_instance,
                a_tripped_breaker_survives_reopening_and_equals_its_audit_replay,
                an_automated_commit_on_a_frozen_zone_is_refused_and_changes_nothing,
                an_operator_commit_passes_a_frozen_zone,
                a_thaw_releases_automation_and_thawing_twice_is_refused,
                tripping_an_unknown_zone_creates_it_frozen,
                breaker_entries_cannot_be_forged_through_append_audit,
                a_zone_source_is_kept_per_zone_across_reopening_and_never_creates_a_zone,
                $($extra,)*
            );
        }
    };
    (@tests $factory:expr; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let backend = ($factory)();
                $crate::contract::$test(&backend);
            }
        )*
    };
}

/// Zone content and requests for tests. Kept in one place.
pub mod fixtures {
    use model::rdata::{A, CNAME, NS, SOA};
    use model::ZoneContent;
    use model::{Generation, Name, Provenance, RData, Record, RecordSet, RecordType, RefName};

    use crate::{Commit, MoveRef};

    /// Parses a name; fixtures use literal names that parse.
    pub fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("fixture names are valid")
    }

    /// A valid zone: SOA and NS at the apex, and `hosts` names `host<i>` with one A record
    /// each, whose addresses depend on `variant`.
    pub fn content(origin: &str, serial: u32, hosts: u32, variant: u8) -> ZoneContent {
        let apex = name(origin);
        let mut content = ZoneContent::new(apex.clone());
        let soa = SOA::new(
            name(&format!("ns1.{origin}")),
            name(&format!("hostmaster.{origin}")),
            serial,
            3600,
            600,
            86400,
            300,
        );
        let ns = NS(name(&format!("ns1.{origin}")));
        for record in [
            Record::from_rdata(apex.clone(), 3600, RData::SOA(soa)),
            Record::from_rdata(apex, 3600, RData::NS(ns)),
        ] {
            content
                .insert(record)
                .expect("apex records are in the zone");
        }
        for host in 0..hosts {
            content.put_rrset(host_set(origin, host, variant));
        }
        content
    }

    /// The A record set of `host<host>.<origin>`.
    pub fn host_set(origin: &str, host: u32, variant: u8) -> RecordSet {
        let mut set = RecordSet::new(name(&format!("host{host}.{origin}")), RecordType::A, 60);
        let [_, _, high, low] = host.to_be_bytes();
        set.insert(RData::A(A::new(10, variant, high, low)));
        set
    }

    /// Content without an SOA: not a zone.
    pub fn without_soa(origin: &str) -> ZoneContent {
        let mut content = content(origin, 1, 2, 0);
        content.remove_rrset(&name(origin), RecordType::SOA);
        content
    }

    /// Content where a name has a CNAME beside an A record.
    pub fn with_cname_beside_data(origin: &str) -> ZoneContent {
        let mut content = content(origin, 1, 2, 0);
        let mut set = RecordSet::new(name(&format!("host0.{origin}")), RecordType::CNAME, 60);
        set.insert(RData::CNAME(CNAME(name(&format!("host1.{origin}")))));
        content.put_rrset(set);
        content
    }

    /// A planner (automated) commit by actor `test` at time 1000.
    pub fn commit(content: &ZoneContent, base: Option<Generation>, target: RefName) -> Commit<'_> {
        Commit {
            content,
            base,
            target,
            provenance: Provenance::Planner,
            actor: "test",
            reason: "test commit",
            now_ms: 1000,
            automation: true,
        }
    }

    /// An automated ref move by actor `test` at time 2000.
    pub fn move_ref(
        zone: &Name,
        reference: RefName,
        expected: Option<Generation>,
        to: Option<Generation>,
    ) -> MoveRef<'_> {
        MoveRef {
            zone,
            reference,
            expected,
            to,
            actor: "test",
            reason: "test move",
            now_ms: 2000,
            automation: true,
        }
    }
}

const ZONE: &str = "example.test.";
const TORTURE_ZONE: &str = "torture.test.";
/// Upper bound of [`torture_loop`]; the test kills the child long before.
const TORTURE_COMMITS: u32 = 1_000_000;

/// Commits to `torture.test.` in a loop, writing `ACK <generation>` (flushed) after each
/// commit returns. Run by the child process of [`acknowledged_commits_survive_sigkill`].
pub fn torture_loop(store: &dyn Store, out: &mut dyn Write) -> Result<(), String> {
    let zone = fixtures::name(TORTURE_ZONE);
    for round in 0..TORTURE_COMMITS {
        let base = store.refs(&zone).map_err(|e| e.to_string())?.active;
        let content = fixtures::content(TORTURE_ZONE, round, 200, (round % 250) as u8);
        let version = store
            .commit(fixtures::commit(&content, base, RefName::Active))
            .map_err(|e| e.to_string())?;
        writeln!(out, "ACK {}", version.generation)
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Everything a failed call must leave unchanged.
#[derive(Debug, PartialEq)]
struct Snapshot {
    zones: Vec<(Name, Refs)>,
    history: Vec<Version>,
    audit: Vec<model::AuditEntry>,
    change_counter: u64,
}

fn snapshot(store: &dyn Store, zone: &Name) -> Snapshot {
    Snapshot {
        zones: store.zones().unwrap(),
        history: store.history(zone, 10_000).unwrap(),
        audit: store.audit(&AuditQuery::default()).unwrap(),
        change_counter: store.change_counter().unwrap(),
    }
}

/// Commits `content` on top of whatever is active.
fn commit_on_top(store: &dyn Store, content: &ZoneContent) -> Version {
    let base = store.refs(content.origin()).unwrap().active;
    store
        .commit(fixtures::commit(content, base, RefName::Active))
        .unwrap()
}

fn commit_variants(store: &dyn Store, variants: std::ops::Range<u8>) -> Vec<Version> {
    variants
        .map(|variant| commit_on_top(store, &fixtures::content(ZONE, 1, 5, variant)))
        .collect()
}

fn generations(versions: &[Version]) -> Vec<Generation> {
    versions.iter().map(|version| version.generation).collect()
}

pub fn commit_then_read_back_gives_identical_content_metadata_and_history(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let first = fixtures::content(ZONE, 10, 40, 0);
    let second = fixtures::content(ZONE, 11, 40, 1);
    let one = store
        .commit(fixtures::commit(&first, None, RefName::Active))
        .unwrap();
    let two = store
        .commit(Commit {
            provenance: Provenance::Operator,
            actor: "alice",
            reason: "move host7",
            now_ms: 5000,
            ..fixtures::commit(&second, Some(one.generation), RefName::Active)
        })
        .unwrap();
    assert_eq!(one.generation, Generation::FIRST);
    assert_eq!(one.parent, None);
    assert_eq!(one.serial, 10);
    assert_eq!(one.content_hash, first.hash());
    assert_eq!(one.records, first.record_count());
    assert_eq!(two.generation, Generation(2));
    assert_eq!(two.parent, Some(Generation(1)));
    assert_eq!(two.provenance, Provenance::Operator);
    assert_eq!(
        (two.actor.as_str(), two.reason.as_str()),
        ("alice", "move host7")
    );
    assert_eq!(two.created_at_ms, 5000);
    assert!(!two.pinned);

    assert_eq!(store.content(&zone, one.generation).unwrap(), first);
    assert_eq!(store.content(&zone, two.generation).unwrap(), second);
    assert_eq!(store.version(&zone, one.generation).unwrap(), one);
    assert_eq!(store.version(&zone, two.generation).unwrap(), two);
    assert_eq!(store.history(&zone, 10).unwrap(), vec![two.clone(), one]);
    assert_eq!(store.history(&zone, 1).unwrap(), vec![two]);
    let refs = Refs {
        active: Some(Generation(2)),
        canary: None,
    };
    assert_eq!(store.refs(&zone).unwrap(), refs);
    assert_eq!(store.zones().unwrap(), vec![(zone.clone(), refs)]);
    assert_eq!(
        backend.open().content(&zone, Generation(2)).unwrap(),
        second
    );
    store.check_integrity().unwrap();
}

pub fn zone_names_differing_only_in_case_are_one_zone(backend: &dyn Backend) {
    let store = backend.open();
    let one = commit_on_top(&*store, &fixtures::content("Example.TEST.", 1, 3, 0));
    let upper = fixtures::name("EXAMPLE.test.");
    let refs = store.refs(&upper).unwrap();
    assert_eq!(refs.active, Some(one.generation));
    let two = store
        .commit(fixtures::commit(
            &fixtures::content("example.test.", 2, 3, 1),
            refs.active,
            RefName::Active,
        ))
        .unwrap();
    assert_eq!(two.parent, Some(one.generation));
    let zones = store.zones().unwrap();
    assert_eq!(zones.len(), 1);
    assert_eq!(
        zones[0].0.to_ascii(),
        "Example.TEST.",
        "the first spelling is kept"
    );
}

pub fn generations_strictly_increase_and_are_never_reused_after_clean_up(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let versions = commit_variants(&*store, 0..6);
    assert_eq!(
        generations(&versions),
        (1..=6).map(Generation).collect::<Vec<_>>()
    );
    let deleted = store.clean_up(&zone, 2, "test", 3000).unwrap();
    assert_eq!(deleted, (1..=4).map(Generation).collect::<Vec<_>>());
    let next = commit_on_top(&*store, &fixtures::content(ZONE, 1, 5, 9));
    assert_eq!(next.generation, Generation(7));
    for generation in deleted {
        assert!(matches!(
            store.version(&zone, generation),
            Err(StoreError::NotFound { .. })
        ));
    }
    // A canary cleared and then superseded still used up its generation.
    let canary = store
        .commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 5, 10),
            Some(Generation(7)),
            RefName::Canary,
        ))
        .unwrap();
    store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Canary,
            Some(canary.generation),
            None,
        ))
        .unwrap();
    let after = commit_on_top(&*store, &fixtures::content(ZONE, 1, 5, 11));
    assert_eq!(after.generation, Generation(9));
}

pub fn served_serial_rises_with_every_generation_even_for_older_content(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let old = fixtures::content(ZONE, 100, 5, 0);
    let one = commit_on_top(&*store, &old);
    let two = commit_on_top(&*store, &fixtures::content(ZONE, 200, 5, 1));
    let rollback = store
        .commit(Commit {
            provenance: Provenance::Rollback { to: one.generation },
            ..fixtures::commit(&old, Some(two.generation), RefName::Active)
        })
        .unwrap();
    let same = commit_on_top(&*store, &fixtures::content(ZONE, 201, 5, 1));
    let jump = commit_on_top(&*store, &fixtures::content(ZONE, 2_024_010_100, 5, 1));
    let serials: Vec<u32> = [&one, &two, &rollback, &same, &jump]
        .iter()
        .map(|version| version.serial)
        .collect();
    assert_eq!(serials, vec![100, 200, 201, 202, 2_024_010_100]);
    assert_eq!(
        rollback.provenance,
        Provenance::Rollback { to: one.generation }
    );
    let served = store.content(&zone, rollback.generation).unwrap();
    assert_eq!(served.serial(), Some(201));
    assert_eq!(served, old.with_serial(201), "only the serial differs");
    assert_eq!(rollback.content_hash, served.hash());
}

pub fn a_writer_with_a_stale_base_loses_with_conflict_and_changes_nothing(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let versions = commit_variants(&*store, 0..2);
    let before = snapshot(&*store, &zone);
    let content = fixtures::content(ZONE, 1, 5, 7);
    for stale in [None, Some(Generation(1)), Some(Generation(5))] {
        for target in [RefName::Active, RefName::Canary] {
            let error = store
                .commit(fixtures::commit(&content, stale, target))
                .unwrap_err();
            assert_eq!(
                error,
                StoreError::Conflict {
                    zone: zone.clone(),
                    reference: RefName::Active,
                    expected: stale,
                    actual: Some(versions[1].generation),
                }
            );
        }
    }
    let error = store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Active,
            Some(Generation(1)),
            Some(Generation(2)),
        ))
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);
    // The lost generations were not used up either.
    assert_eq!(commit_on_top(&*store, &content).generation, Generation(3));
}

fn race(stores: Vec<Arc<dyn Store>>, rounds: usize) {
    let zone = fixtures::name("race.test.");
    let barrier = Arc::new(Barrier::new(stores.len()));
    let workers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(worker, store)| {
            let barrier = Arc::clone(&barrier);
            let zone = zone.clone();
            thread::spawn(move || {
                let mut outcomes = Vec::new();
                for round in 0..rounds {
                    barrier.wait();
                    let base = store.refs(&zone).unwrap().active;
                    // Everyone has read before anyone writes: all race from one base.
                    barrier.wait();
                    let variant = ((worker * rounds + round) % 250) as u8;
                    let content = fixtures::content("race.test.", 1, 3, variant);
                    let result = store.commit(fixtures::commit(&content, base, RefName::Active));
                    outcomes.push((round, base, result));
                }
                outcomes
            })
        })
        .collect();
    let mut winners: Vec<Option<(Option<Generation>, Generation)>> = vec![None; rounds];
    let mut losers = Vec::new();
    for worker in workers {
        for (round, base, result) in worker.join().expect("a racing writer panicked") {
            match result {
                Ok(version) => {
                    assert_eq!(version.parent, base);
                    let previous = winners[round].replace((base, version.generation));
                    assert!(previous.is_none(), "two winners in round {round}");
                }
                Err(StoreError::Conflict {
                    expected, actual, ..
                }) => {
                    assert_eq!(expected, base);
                    losers.push((round, actual));
                }
                Err(other) => panic!("round {round}: unexpected error {other}"),
            }
        }
    }
    let winners: Vec<(Option<Generation>, Generation)> = winners
        .into_iter()
        .enumerate()
        .map(|(round, winner)| winner.unwrap_or_else(|| panic!("no winner in round {round}")))
        .collect();
    for (round, actual) in losers {
        assert_eq!(actual, Some(winners[round].1), "a loser saw the winner");
    }
    let mut previous = None;
    for (base, generation) in &winners {
        assert_eq!(*base, previous, "each winner built on the previous winner");
        assert!(previous < Some(*generation));
        previous = Some(*generation);
    }
}

fn check_chain(store: &dyn Store, rounds: usize) {
    let zone = fixtures::name("race.test.");
    let mut history = store.history(&zone, 10_000).unwrap();
    history.reverse();
    assert_eq!(history.len(), rounds, "one version per round, no more");
    let mut previous = None;
    for version in &history {
        assert_eq!(version.parent, previous);
        previous = Some(version.generation);
    }
    assert_eq!(store.refs(&zone).unwrap().active, previous);
    store.check_integrity().unwrap();
}

pub fn concurrent_writers_with_their_own_instances_have_one_winner_per_base(backend: &dyn Backend) {
    let stores: Vec<Arc<dyn Store>> = (0..8).map(|_| backend.open()).collect();
    race(stores, 50);
    check_chain(&*backend.open(), 50);
}

pub fn concurrent_writers_sharing_one_instance_have_one_winner_per_base(backend: &dyn Backend) {
    let store = backend.open();
    race((0..8).map(|_| Arc::clone(&store)).collect(), 50);
    check_chain(&*store, 50);
}

pub fn move_ref_refuses_backward_equal_and_missing_targets(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    commit_variants(&*store, 0..3);
    let before = snapshot(&*store, &zone);
    let three = Some(Generation(3));
    for to in [Generation(3), Generation(2), Generation(1)] {
        let error = store
            .move_ref(fixtures::move_ref(&zone, RefName::Active, three, Some(to)))
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
    }
    let error = store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Active,
            three,
            Some(Generation(99)),
        ))
        .unwrap_err();
    assert_eq!(
        error,
        StoreError::NotFound {
            zone: zone.clone(),
            generation: Generation(99)
        }
    );
    let error = store
        .move_ref(fixtures::move_ref(&zone, RefName::Active, three, None))
        .unwrap_err();
    assert!(matches!(error, StoreError::Refused { .. }), "{error}");
    // A canary older than the active version makes no sense.
    let error = store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Canary,
            None,
            Some(Generation(2)),
        ))
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);
}

pub fn canary_promotion_clears_the_canary(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let one = commit_on_top(&*store, &fixtures::content(ZONE, 1, 5, 0));
    let canary = store
        .commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 5, 1),
            Some(one.generation),
            RefName::Canary,
        ))
        .unwrap();
    assert_eq!(
        store.refs(&zone).unwrap(),
        Refs {
            active: Some(one.generation),
            canary: Some(canary.generation)
        }
    );
    store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Active,
            Some(one.generation),
            Some(canary.generation),
        ))
        .unwrap();
    assert_eq!(
        store.refs(&zone).unwrap(),
        Refs {
            active: Some(canary.generation),
            canary: None
        }
    );
    let actions: Vec<String> = store
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            actions::REF_MOVE,
            actions::CANARY_MOVE,
            actions::REF_MOVE,
            actions::CANARY_MOVE
        ]
    );
}

pub fn a_canary_commit_leaves_active_and_keeps_the_cas_on_active(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let one = commit_on_top(&*store, &fixtures::content(ZONE, 1, 5, 0));
    let canary = |variant, base| {
        store.commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 5, variant),
            base,
            RefName::Canary,
        ))
    };
    let two = canary(1, Some(one.generation)).unwrap();
    // A newer canary replaces the old one; the base is still the active version.
    let three = canary(2, Some(one.generation)).unwrap();
    assert_eq!(three.parent, Some(one.generation));
    assert_eq!(
        store.refs(&zone).unwrap(),
        Refs {
            active: Some(one.generation),
            canary: Some(three.generation)
        }
    );
    assert!(matches!(
        canary(3, Some(two.generation)),
        Err(StoreError::Conflict { .. })
    ));
    // The canary moves back to an older canary only forward: refused.
    let error = store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Canary,
            Some(three.generation),
            Some(two.generation),
        ))
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
    // A direct commit to active supersedes the canary.
    let four = commit_on_top(&*store, &fixtures::content(ZONE, 1, 5, 4));
    assert_eq!(
        store.refs(&zone).unwrap(),
        Refs {
            active: Some(four.generation),
            canary: None
        }
    );
}

pub fn clean_up_keeps_refs_last_k_pinned_and_in_flight_versions(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let active = commit_variants(&*store, 0..6); // generations 1..=6, each once active
    let pin = |generation, pinned| {
        store.set_pinned(SetPinned {
            zone: &zone,
            generation: Generation(generation),
            pinned,
            actor: "alice",
            reason: "known good",
            now_ms: 3000,
        })
    };
    pin(2, true).unwrap();
    pin(3, true).unwrap();
    pin(3, false).unwrap();
    let canary_content = fixtures::content(ZONE, 1, 5, 7);
    let in_flight = store
        .commit(fixtures::commit(
            &canary_content,
            Some(Generation(6)),
            RefName::Canary,
        ))
        .unwrap();
    store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Canary,
            Some(in_flight.generation),
            None,
        ))
        .unwrap();
    let canary = store
        .commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 5, 8),
            Some(Generation(6)),
            RefName::Canary,
        ))
        .unwrap();
    assert_eq!(
        (in_flight.generation, canary.generation),
        (Generation(7), Generation(8))
    );

    let deleted = store.clean_up(&zone, 2, "cleaner", 4000).unwrap();
    assert_eq!(deleted, vec![Generation(1), Generation(3), Generation(4)]);
    let survivors: Vec<Generation> = generations(&store.history(&zone, 100).unwrap());
    assert_eq!(
        survivors,
        [8, 7, 6, 5, 2]
            .into_iter()
            .map(Generation)
            .collect::<Vec<_>>()
    );
    for version in &active {
        let content = store.content(&zone, version.generation);
        if deleted.contains(&version.generation) {
            assert!(matches!(content, Err(StoreError::NotFound { .. })));
        } else {
            assert_eq!(content.unwrap().hash(), version.content_hash);
        }
    }
    assert_eq!(
        store.content(&zone, Generation(7)).unwrap(),
        canary_content.with_serial(in_flight.serial)
    );
    assert_eq!(store.clean_up(&zone, 2, "cleaner", 4001).unwrap(), vec![]);
    store.check_integrity().unwrap();
    let last = store.audit(&AuditQuery::default()).unwrap().pop().unwrap();
    assert_eq!(last.action, actions::CLEAN_UP);
    assert!(last.reason.contains("1, 3, 4"), "{}", last.reason);
}

pub fn audit_log_records_every_change_in_order_and_is_append_only(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    commit_variants(&*store, 0..4);
    store
        .set_pinned(SetPinned {
            zone: &zone,
            generation: Generation(1),
            pinned: true,
            actor: "alice",
            reason: "keep",
            now_ms: 3000,
        })
        .unwrap();
    let sequence = store
        .append_audit(NewAuditEntry {
            at_ms: 3500,
            actor: "guard".to_string(),
            zone: zone.clone(),
            action: actions::REFUSED.to_string(),
            from: Some(Generation(4)),
            to: None,
            reason: "removes 80 % of api".to_string(),
        })
        .unwrap();
    let page = store.audit(&AuditQuery::default()).unwrap();
    store.clean_up(&zone, 2, "cleaner", 4000).unwrap();
    commit_variants(&*store, 5..6);
    let all = store.audit(&AuditQuery::default()).unwrap();
    assert_eq!(
        &all[..page.len()],
        &page[..],
        "earlier entries never change"
    );
    let lines: Vec<(&str, Option<u64>, Option<u64>, &str)> = all
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.from.map(|g| g.0),
                e.to.map(|g| g.0),
                e.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (actions::REF_MOVE, None, Some(1), "test"),
            (actions::REF_MOVE, Some(1), Some(2), "test"),
            (actions::REF_MOVE, Some(2), Some(3), "test"),
            (actions::REF_MOVE, Some(3), Some(4), "test"),
            (actions::PIN, None, Some(1), "alice"),
            (actions::REFUSED, Some(4), None, "guard"),
            (actions::CLEAN_UP, None, None, "cleaner"),
            (actions::REF_MOVE, Some(4), Some(5), "test"),
        ]
    );
    assert_eq!(all[5].sequence, sequence);
    assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert!(all.iter().all(|entry| entry.zone == zone));
    assert_eq!(all[0].reason, "test commit");
}

pub fn audit_query_filters_by_zone_time_and_sequence(backend: &dyn Backend) {
    let store = backend.open();
    let example = fixtures::name(ZONE);
    let other = fixtures::name("other.test.");
    for at_ms in [10, 20, 30] {
        for zone in [&example, &other] {
            store
                .append_audit(NewAuditEntry {
                    at_ms,
                    actor: "test".to_string(),
                    zone: zone.clone(),
                    action: "note".to_string(),
                    from: None,
                    to: None,
                    reason: format!("{at_ms}"),
                })
                .unwrap();
        }
    }
    let read = |query: AuditQuery| -> Vec<(String, u64)> {
        store
            .audit(&query)
            .unwrap()
            .into_iter()
            .map(|e| (e.zone.to_ascii(), e.at_ms))
            .collect()
    };
    let by_zone = read(AuditQuery {
        zone: Some(fixtures::name("OTHER.test.")),
        ..AuditQuery::default()
    });
    assert_eq!(by_zone.len(), 3);
    assert!(by_zone.iter().all(|(zone, _)| zone == "other.test."));
    let since = read(AuditQuery {
        since_ms: Some(20),
        ..AuditQuery::default()
    });
    assert_eq!(since.len(), 4);
    let first_two = store
        .audit(&AuditQuery {
            limit: Some(2),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(first_two.len(), 2);
    let rest = store
        .audit(&AuditQuery {
            after_sequence: Some(first_two[1].sequence),
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(rest.len(), 4);
}

pub fn a_commit_from_the_base_content_stores_what_a_whole_commit_stores(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    // 2,000 hosts: many storage buckets, so a change leaves most of them as they were.
    let one = commit_on_top(&*store, &fixtures::content(ZONE, 1, 2_000, 0));
    let base = store.content(&zone, one.generation).unwrap();

    // A changed name, a removed one and a new one, derived from the base as a planner does.
    let mut changed = base.clone();
    changed.put_rrset(fixtures::host_set(ZONE, 7, 1));
    let host8 = fixtures::name(&format!("host8.{ZONE}"));
    assert!(changed.remove_rrset(&host8, RecordType::A).is_some());
    changed.put_rrset(fixtures::host_set(ZONE, 5_000, 0));
    let two = store
        .commit_from(
            fixtures::commit(&changed, Some(one.generation), RefName::Active),
            &base,
        )
        .unwrap();
    let read = store.content(&zone, two.generation).unwrap();
    assert_eq!(read, changed.with_serial(two.serial));
    assert_eq!(read.hash(), two.content_hash);
    assert_eq!(two.records, changed.record_count());
    if let Some(changes) = store
        .content_changes(&zone, one.generation, two.generation)
        .unwrap()
    {
        let mut patched = base.clone();
        patched.replace_sets(&changes.removed, changes.added);
        assert_eq!(
            patched, read,
            "the changes lead from the base to the new version"
        );
    }

    // A change that breaks a rule at a changed name is refused and changes nothing.
    let mut broken = read.clone();
    let mut cname = RecordSet::new(
        fixtures::name(&format!("host7.{ZONE}")),
        RecordType::CNAME,
        60,
    );
    cname.insert(model::RData::CNAME(model::rdata::CNAME(fixtures::name(
        &format!("host9.{ZONE}"),
    ))));
    broken.put_rrset(cname);
    let before = snapshot(&*store, &zone);
    let error = store
        .commit_from(
            fixtures::commit(&broken, Some(two.generation), RefName::Active),
            &read,
        )
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
    assert!(error.to_string().contains("CNAME"), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);

    // Base content that is not the base's (a stale read) is not trusted: the new content
    // is stored whole, exactly.
    let other = fixtures::content(ZONE, 1, 2_000, 2);
    let three = store
        .commit_from(
            fixtures::commit(&other, Some(two.generation), RefName::Active),
            &base,
        )
        .unwrap();
    assert_eq!(
        store.content(&zone, three.generation).unwrap(),
        other.with_serial(three.serial)
    );
    // Nor can stale base content hide a broken zone.
    let error = store
        .commit_from(
            fixtures::commit(&broken, Some(three.generation), RefName::Active),
            &read,
        )
        .unwrap_err();
    assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
}

pub fn what_a_version_changed_stays_known_after_its_parent_is_cleaned_up(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let mut version = commit_on_top(&*store, &fixtures::content(ZONE, 1, 200, 0));
    for host in 0..4 {
        let base = store.content(&zone, version.generation).unwrap();
        let mut next = base.clone();
        next.put_rrset(fixtures::host_set(ZONE, host, 9));
        version = store
            .commit_from(
                fixtures::commit(&next, Some(version.generation), RefName::Active),
                &base,
            )
            .unwrap();
    }
    // Clean-up keeps the active version and the one before; the one before that goes.
    let parent = version.parent.expect("committed on a base");
    let grandparent = store
        .version(&zone, parent)
        .unwrap()
        .parent
        .expect("committed on a base");
    let deleted = store.clean_up(&zone, 1, "test", 2_000).unwrap();
    assert!(
        deleted.contains(&grandparent),
        "clean-up deleted {deleted:?}"
    );

    let changes = store
        .content_changes(&zone, grandparent, version.generation)
        .unwrap()
        .expect("what the last two versions changed is still known");
    assert_eq!(changes.version.generation, version.generation);
    for host in [2, 3] {
        assert!(changes.added.contains(&fixtures::host_set(ZONE, host, 9)));
        assert!(changes.removed.contains(&fixtures::host_set(ZONE, host, 0)));
    }
    let changed: std::collections::BTreeSet<Name> = changes
        .added
        .iter()
        .chain(&changes.removed)
        .map(|set| set.name.to_lowercase())
        .collect();
    let expected: std::collections::BTreeSet<Name> = [
        zone.clone(),
        fixtures::name(&format!("host2.{ZONE}")),
        fixtures::name(&format!("host3.{ZONE}")),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        changed, expected,
        "only the apex (its serial), host2 and host3 changed"
    );
}

pub fn invalid_content_is_refused_and_changes_nothing(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    for content in [
        fixtures::without_soa(ZONE),
        fixtures::with_cname_beside_data(ZONE),
    ] {
        let before = snapshot(&*store, &zone);
        let error = store
            .commit(fixtures::commit(&content, None, RefName::Active))
            .unwrap_err();
        assert!(matches!(error, StoreError::Invalid { .. }), "{error}");
        assert_eq!(snapshot(&*store, &zone), before);
    }
    let one = commit_on_top(&*store, &fixtures::content(ZONE, 1, 3, 0));
    let before = snapshot(&*store, &zone);
    let error = store
        .commit(fixtures::commit(
            &fixtures::with_cname_beside_data(ZONE),
            Some(one.generation),
            RefName::Active,
        ))
        .unwrap_err();
    assert!(error.to_string().contains("CNAME"), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);
}

pub fn missing_versions_are_not_found(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let not_found = StoreError::NotFound {
        zone: zone.clone(),
        generation: Generation(4),
    };
    assert_eq!(store.refs(&zone).unwrap(), Refs::default());
    assert_eq!(store.history(&zone, 10).unwrap(), vec![]);
    assert_eq!(store.version(&zone, Generation(4)).unwrap_err(), not_found);
    assert_eq!(store.content(&zone, Generation(4)).unwrap_err(), not_found);
    commit_variants(&*store, 0..1);
    let pin = store.set_pinned(SetPinned {
        zone: &zone,
        generation: Generation(4),
        pinned: true,
        actor: "alice",
        reason: "keep",
        now_ms: 1,
    });
    assert_eq!(pin.unwrap_err(), not_found);
    assert_eq!(
        store
            .clean_up(&fixtures::name("none.test."), 2, "t", 1)
            .unwrap(),
        vec![]
    );
}

pub fn change_counter_moves_when_another_instance_moves_a_ref(backend: &dyn Backend) {
    let reader = backend.open();
    let writer = backend.open();
    let start = reader.change_counter().unwrap();
    let one = commit_on_top(&*writer, &fixtures::content(ZONE, 1, 3, 0));
    let after_commit = reader.change_counter().unwrap();
    assert_ne!(after_commit, start);
    writer
        .commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 3, 1),
            Some(one.generation),
            RefName::Canary,
        ))
        .unwrap();
    let after_canary = reader.change_counter().unwrap();
    assert_ne!(after_canary, after_commit);
    // A failed move moves nothing.
    let _ = writer.commit(fixtures::commit(
        &fixtures::content(ZONE, 1, 3, 2),
        None,
        RefName::Active,
    ));
    assert_eq!(reader.change_counter().unwrap(), after_canary);
}

pub fn watcher_publishes_a_ref_move_made_through_another_instance(backend: &dyn Backend) {
    let reader = backend.open();
    let writer = backend.open();
    let (mut changes, handle) = crate::watch_changes(Arc::clone(&reader), Duration::from_millis(1));
    let start = *changes.borrow_and_update();
    commit_on_top(&*writer, &fixtures::content(ZONE, 1, 3, 0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("the watcher publishes the move within 10 s")
            .expect("the watcher is running");
    });
    assert_ne!(*changes.borrow(), start);
    assert_eq!(*changes.borrow(), reader.change_counter().unwrap());
    drop(handle); // stops and joins the thread
    runtime.block_on(async {
        assert!(
            changes.changed().await.is_err(),
            "the channel closes when the watcher stops"
        );
    });
}

/// ACK lines read from a child, with a deadline.
fn read_acks(lines: &mpsc::Receiver<String>, count: usize, deadline: Instant) -> Vec<Generation> {
    let mut acks = Vec::new();
    while acks.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => acks.push(parse_ack(&line)),
            Err(error) => panic!("waiting for ACK {}: {error}", acks.len() + 1),
        }
    }
    acks
}

fn parse_ack(line: &str) -> Generation {
    line.strip_prefix("ACK ")
        .and_then(|number| number.trim().parse().ok())
        .map(Generation)
        .unwrap_or_else(|| panic!("unexpected line from the torture child: {line:?}"))
}

pub fn acknowledged_commits_survive_sigkill(backend: &dyn Backend) {
    const ITERATIONS: u64 = 30;
    let zone = fixtures::name(TORTURE_ZONE);
    let mut seed: u64 = 0x5eed_0001;
    let mut acked: Vec<Generation> = Vec::new();
    for iteration in 0..ITERATIONS {
        // xorshift: deterministic, varies the kill point per iteration; 0 kills during open.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait_for = (seed % 12) as usize;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut child = backend
            .torture_command()
            .expect("an in-process store is stamped with `in_process`, without this test")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the torture child starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        acked.extend(read_acks(&lines, wait_for, deadline));
        child.kill().expect("SIGKILL is delivered");
        child.wait().expect("the killed child is reaped");
        reader.join().expect("the line reader ends at end of file");
        // Lines printed before the kill are acknowledgements too.
        acked.extend(lines.try_iter().map(|line| parse_ack(&line)));

        let store = backend.open();
        store
            .check_integrity()
            .unwrap_or_else(|error| panic!("iteration {iteration}: {error}"));
        for generation in &acked {
            store
                .content(&zone, *generation)
                .unwrap_or_else(|error| panic!("iteration {iteration}: ACKed {error}"));
        }
        let active = store.refs(&zone).unwrap().active;
        assert!(
            active >= acked.last().copied(),
            "iteration {iteration}: active {active:?} is behind the last ACK {:?}",
            acked.last()
        );
    }
    assert!(
        acked.len() > ITERATIONS as usize,
        "the children made progress"
    );
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "ACKs only rise");
}

fn trip<'a>(zone: &'a Name, reason: &'a str, now_ms: u64) -> BreakerChange<'a> {
    BreakerChange {
        zone,
        reason,
        actor: "guard",
        now_ms,
    }
}

fn thaw<'a>(zone: &'a Name, reason: &'a str, now_ms: u64) -> BreakerChange<'a> {
    BreakerChange {
        zone,
        reason,
        actor: "alice",
        now_ms,
    }
}

/// The breaker replayed from the zone's audit log.
fn replayed_breaker(store: &dyn Store, zone: &Name) -> Breaker {
    let entries = store
        .audit(&AuditQuery {
            zone: Some(zone.clone()),
            ..AuditQuery::default()
        })
        .unwrap();
    Breaker::from_audit(&entries)
}

pub fn a_tripped_breaker_survives_reopening_and_equals_its_audit_replay(backend: &dyn Backend) {
    let zone = fixtures::name(ZONE);
    {
        let store = backend.open();
        commit_variants(&*store, 0..2);
        assert_eq!(store.breaker(&zone).unwrap(), Breaker::Closed);
        let tripped = store
            .trip_breaker(trip(&zone, "below floor", 3000))
            .unwrap();
        assert_eq!(
            tripped,
            Breaker::Tripped {
                reason: "below floor".into(),
                at_ms: 3000,
                actor: "guard".into()
            }
        );
        // A second trip keeps the first cause, and is recorded too.
        let again = store.trip_breaker(trip(&zone, "removes too much", 3100));
        assert_eq!(again.unwrap(), tripped);
        assert_eq!(replayed_breaker(&*store, &zone), tripped);
    }
    let reopened = backend.open();
    let breaker = reopened.breaker(&zone).unwrap();
    assert_eq!(breaker.state_name(), "tripped");
    assert_eq!(breaker, replayed_breaker(&*reopened, &zone));
    let trips = reopened
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == actions::BREAKER_TRIP)
        .count();
    assert_eq!(trips, 2);
    reopened.check_integrity().unwrap();
}

pub fn an_automated_commit_on_a_frozen_zone_is_refused_and_changes_nothing(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let versions = commit_variants(&*store, 0..2);
    let active = Some(versions[1].generation);
    store
        .trip_breaker(trip(&zone, "below floor", 3000))
        .unwrap();
    let before = snapshot(&*store, &zone);
    let content = fixtures::content(ZONE, 1, 5, 9);
    for target in [RefName::Active, RefName::Canary] {
        let error = store
            .commit(fixtures::commit(&content, active, target))
            .unwrap_err();
        assert_eq!(
            error,
            StoreError::Frozen {
                zone: zone.clone(),
                reason: "below floor".into(),
                since_ms: 3000
            }
        );
        assert!(error.to_string().contains("dnsward thaw"), "{error}");
    }
    let error = store
        .move_ref(fixtures::move_ref(
            &zone,
            RefName::Active,
            active,
            Some(versions[0].generation),
        ))
        .unwrap_err();
    assert!(matches!(error, StoreError::Frozen { .. }), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);
    // Another instance sees the same freeze: it is decided in the store, not in a process.
    let other = backend.open();
    assert!(matches!(
        other.commit(fixtures::commit(&content, active, RefName::Active)),
        Err(StoreError::Frozen { .. })
    ));
    // Other zones are not frozen.
    commit_on_top(&*store, &fixtures::content("other.test.", 1, 2, 0));
}

pub fn an_operator_commit_passes_a_frozen_zone(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let versions = commit_variants(&*store, 0..2);
    store
        .trip_breaker(trip(&zone, "below floor", 3000))
        .unwrap();
    let content = fixtures::content(ZONE, 1, 5, 9);
    let operator = store
        .commit(Commit {
            provenance: Provenance::Operator,
            actor: "alice",
            reason: "break-glass fix",
            automation: false,
            ..fixtures::commit(&content, Some(versions[1].generation), RefName::Active)
        })
        .unwrap();
    assert_eq!(store.refs(&zone).unwrap().active, Some(operator.generation));
    // The operator's write does not thaw: automation still waits for a thaw.
    assert_eq!(store.breaker(&zone).unwrap().state_name(), "tripped");
    // A fenced operator write still loses a race.
    let error = store
        .commit(Commit {
            automation: false,
            ..fixtures::commit(&content, Some(versions[1].generation), RefName::Active)
        })
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
}

pub fn a_thaw_releases_automation_and_thawing_twice_is_refused(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    let versions = commit_variants(&*store, 0..1);
    let before = snapshot(&*store, &zone);
    let error = store
        .thaw_breaker(thaw(&zone, "nothing", 2500))
        .unwrap_err();
    assert!(matches!(error, StoreError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("closed"), "{error}");
    assert_eq!(snapshot(&*store, &zone), before);
    store
        .trip_breaker(trip(&zone, "below floor", 3000))
        .unwrap();
    let thawed = store
        .thaw_breaker(thaw(&zone, "backends fixed", 4000))
        .unwrap();
    assert_eq!(
        thawed,
        Breaker::Thawed {
            at_ms: 4000,
            actor: "alice".into(),
            reason: "backends fixed".into()
        }
    );
    assert!(thawed.allows_automation());
    let error = store.thaw_breaker(thaw(&zone, "again", 4100)).unwrap_err();
    assert!(error.to_string().contains("thawed"), "{error}");
    let next = store
        .commit(fixtures::commit(
            &fixtures::content(ZONE, 1, 5, 3),
            Some(versions[0].generation),
            RefName::Active,
        ))
        .unwrap();
    assert_eq!(store.refs(&zone).unwrap().active, Some(next.generation));
    assert_eq!(store.breaker(&zone).unwrap(), thawed);
    assert_eq!(replayed_breaker(&*store, &zone), thawed);
    let reopened = backend.open();
    assert_eq!(reopened.breaker(&zone).unwrap(), thawed);
    reopened.check_integrity().unwrap();
}

pub fn tripping_an_unknown_zone_creates_it_frozen(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name("new.test.");
    assert_eq!(store.breaker(&zone).unwrap(), Breaker::Closed);
    store
        .trip_breaker(trip(&zone, "frozen before first load", 10))
        .unwrap();
    assert_eq!(store.refs(&zone).unwrap(), Refs::default());
    assert!(store.zones().unwrap().iter().any(|(name, _)| *name == zone));
    let content = fixtures::content("new.test.", 1, 2, 0);
    assert!(matches!(
        store.commit(fixtures::commit(&content, None, RefName::Active)),
        Err(StoreError::Frozen { .. })
    ));
    let first = store
        .commit(Commit {
            automation: false,
            ..fixtures::commit(&content, None, RefName::Active)
        })
        .unwrap();
    assert_eq!(first.generation, Generation::FIRST);
    store.check_integrity().unwrap();
}

pub fn a_zone_source_is_kept_per_zone_across_reopening_and_never_creates_a_zone(
    backend: &dyn Backend,
) {
    let store = backend.open();
    let zone = fixtures::name("example.test.");
    let other = fixtures::name("other.test.");
    assert!(matches!(
        store.set_zone_source(&zone, "file hash 1"),
        Err(StoreError::Refused { .. })
    ));
    assert!(store.zones().unwrap().is_empty());
    assert_eq!(store.zone_source(&zone).unwrap(), None);
    store
        .commit(fixtures::commit(
            &fixtures::content("example.test.", 1, 2, 0),
            None,
            RefName::Active,
        ))
        .unwrap();
    store
        .commit(fixtures::commit(
            &fixtures::content("other.test.", 1, 2, 0),
            None,
            RefName::Active,
        ))
        .unwrap();
    store.set_zone_source(&zone, "file hash 1").unwrap();
    store.set_zone_source(&zone, "file hash 2").unwrap();
    assert_eq!(
        store.zone_source(&fixtures::name("EXAMPLE.test.")).unwrap(),
        Some("file hash 2".to_string())
    );
    assert_eq!(store.zone_source(&other).unwrap(), None);
    drop(store);
    let reopened = backend.open();
    if reopened.refs(&zone).unwrap().active.is_some() {
        assert_eq!(
            reopened.zone_source(&zone).unwrap(),
            Some("file hash 2".to_string())
        );
    }
    reopened.check_integrity().unwrap();
}

pub fn breaker_entries_cannot_be_forged_through_append_audit(backend: &dyn Backend) {
    let store = backend.open();
    let zone = fixtures::name(ZONE);
    for action in [actions::BREAKER_TRIP, actions::BREAKER_THAW] {
        let error = store
            .append_audit(NewAuditEntry {
                at_ms: 1,
                actor: "someone".to_string(),
                zone: zone.clone(),
                action: action.to_string(),
                from: None,
                to: None,
                reason: "forged".to_string(),
            })
            .unwrap_err();
        assert!(matches!(error, StoreError::Refused { .. }), "{error}");
    }
    assert_eq!(store.breaker(&zone).unwrap(), Breaker::Closed);
    assert_eq!(store.audit(&AuditQuery::default()).unwrap(), vec![]);
}
