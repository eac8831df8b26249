use model::{Breaker, Generation, Name, RefName, Refs};

use super::*;
use crate::{MoveRef, NewAuditEntry, StoreError};

fn zone() -> Name {
    Name::from_ascii("rules.test.").expect("name")
}

fn g(generation: u64) -> Generation {
    Generation(generation)
}

fn refs(active: Option<u64>, canary: Option<u64>) -> Refs {
    Refs {
        active: active.map(Generation),
        canary: canary.map(Generation),
    }
}

fn tripped() -> Breaker {
    Breaker::Closed.trip("too many changes", "guard", 5)
}

fn request<'a>(
    zone: &'a Name,
    reference: RefName,
    expected: Option<u64>,
    to: Option<u64>,
) -> MoveRef<'a> {
    MoveRef {
        zone,
        reference,
        expected: expected.map(Generation),
        to: to.map(Generation),
        actor: "operator",
        reason: "because",
        now_ms: 10,
        automation: false,
    }
}

fn version(generation: u64) -> VersionFacts {
    VersionFacts {
        generation: g(generation),
        pinned: false,
        activated: true,
        read_from: None,
    }
}

#[test]
fn a_tripped_breaker_refuses_automation_and_lets_operators_through() {
    let zone = zone();
    assert!(matches!(
        refuse_frozen(&zone, &tripped(), true),
        Err(StoreError::Frozen { since_ms: 5, .. })
    ));
    assert!(refuse_frozen(&zone, &tripped(), false).is_ok());
    assert!(refuse_frozen(&zone, &Breaker::Closed, true).is_ok());
    let thawed = thaw(&zone, tripped(), "checked", "operator", 9).expect("thaws");
    assert!(refuse_frozen(&zone, &thawed, true).is_ok());
}

#[test]
fn thawing_a_breaker_that_is_not_tripped_is_refused() {
    assert!(matches!(
        thaw(&zone(), Breaker::Closed, "why", "operator", 1),
        Err(StoreError::Refused { .. })
    ));
}

#[test]
fn a_commit_on_a_stale_base_is_a_conflict_naming_both_generations() {
    let facts = ZoneFacts {
        refs: refs(Some(4), None),
        next_generation: Some(g(6)),
        last_serial: Some(100),
    };
    let refused = admit_commit(&zone(), &facts, &Breaker::Closed, Some(g(3)), true, 1);
    assert!(matches!(
        refused,
        Err(StoreError::Conflict {
            reference: RefName::Active,
            expected: Some(Generation(3)),
            actual: Some(Generation(4)),
            ..
        })
    ));
}

#[test]
fn a_frozen_zone_refuses_an_automated_commit_before_looking_at_its_base() {
    let facts = ZoneFacts::default();
    let refused = admit_commit(&zone(), &facts, &tripped(), Some(g(3)), true, 1);
    assert!(matches!(refused, Err(StoreError::Frozen { .. })));
}

#[test]
fn a_commit_gets_the_next_generation_never_reused_and_a_rising_serial() {
    let first = admit_commit(
        &zone(),
        &ZoneFacts::default(),
        &Breaker::Closed,
        None,
        true,
        7,
    )
    .expect("first commit");
    assert_eq!(
        first,
        AdmittedCommit {
            generation: Generation::FIRST,
            serial: 7
        }
    );
    // Generations 1..=5 existed, 5 was cleaned up: the next one is still 6.
    let facts = ZoneFacts {
        refs: refs(Some(4), None),
        next_generation: Some(g(6)),
        last_serial: Some(100),
    };
    let next = admit_commit(&zone(), &facts, &Breaker::Closed, Some(g(4)), false, 100)
        .expect("commit on the active base");
    assert_eq!(next.generation, g(6));
    assert!(next.serial > 100, "{next:?}");
}

#[test]
fn a_commit_to_active_promotes_an_older_canary_away() {
    let changes = commit_writes(refs(Some(4), Some(5)), RefName::Active, g(6), "plan");
    assert_eq!(changes.refs, refs(Some(6), None));
    assert_eq!(changes.activated(), Some(g(6)));
    assert_eq!(changes.writes.len(), 2);
    assert_eq!(
        changes.writes[1].reason,
        "superseded by active generation 6"
    );
    assert_eq!(changes.writes[1].action(), crate::actions::CANARY_MOVE);
}

#[test]
fn a_commit_to_canary_leaves_active_alone() {
    let changes = commit_writes(refs(Some(4), None), RefName::Canary, g(6), "try it");
    assert_eq!(changes.refs, refs(Some(4), Some(6)));
    assert_eq!(changes.activated(), None);
    assert_eq!(changes.writes.len(), 1);
}

#[test]
fn moving_active_to_the_canary_promotes_it() {
    let zone = zone();
    let move_ref = request(&zone, RefName::Active, Some(4), Some(5));
    let changes =
        admit_move(&move_ref, refs(Some(4), Some(5)), &Breaker::Closed, true).expect("promotion");
    assert_eq!(changes.refs, refs(Some(5), None));
    assert_eq!(changes.writes[0].action(), crate::actions::REF_MOVE);
    assert_eq!(changes.writes[1].reason, "promoted to active: because");
}

#[test]
fn a_ref_that_moved_since_it_was_read_is_a_conflict() {
    let zone = zone();
    let move_ref = request(&zone, RefName::Active, Some(3), Some(5));
    assert!(matches!(
        admit_move(&move_ref, refs(Some(4), None), &Breaker::Closed, true),
        Err(StoreError::Conflict { .. })
    ));
}

#[test]
fn the_active_ref_is_never_cleared_and_a_clear_canary_not_cleared_again() {
    let zone = zone();
    let clear_active = request(&zone, RefName::Active, Some(4), None);
    assert!(matches!(
        admit_move(&clear_active, refs(Some(4), None), &Breaker::Closed, false),
        Err(StoreError::Refused { reason, .. }) if reason.contains("cannot be cleared")
    ));
    let clear_canary = request(&zone, RefName::Canary, None, None);
    assert!(matches!(
        admit_move(&clear_canary, refs(Some(4), None), &Breaker::Closed, false),
        Err(StoreError::Refused { reason, .. }) if reason.contains("already clear")
    ));
    let clear_set_canary = request(&zone, RefName::Canary, Some(5), None);
    let changes = admit_move(
        &clear_set_canary,
        refs(Some(4), Some(5)),
        &Breaker::Closed,
        false,
    )
    .expect("clears the canary");
    assert_eq!(changes.refs, refs(Some(4), None));
}

#[test]
fn a_move_to_a_missing_version_is_not_found_even_when_it_is_older() {
    let zone = zone();
    let move_ref = request(&zone, RefName::Active, Some(4), Some(2));
    assert!(matches!(
        admit_move(&move_ref, refs(Some(4), None), &Breaker::Closed, false),
        Err(StoreError::NotFound {
            generation: Generation(2),
            ..
        })
    ));
}

#[test]
fn a_canary_must_be_newer_than_active() {
    let zone = zone();
    let move_ref = request(&zone, RefName::Canary, None, Some(3));
    assert!(matches!(
        admit_move(&move_ref, refs(Some(4), None), &Breaker::Closed, true),
        Err(StoreError::Invalid { .. })
    ));
}

#[test]
fn an_automated_move_on_a_frozen_zone_is_refused() {
    let zone = zone();
    let mut move_ref = request(&zone, RefName::Active, Some(4), Some(5));
    move_ref.automation = true;
    assert!(matches!(
        admit_move(&move_ref, refs(Some(4), None), &tripped(), true),
        Err(StoreError::Frozen { .. })
    ));
}

#[test]
fn clean_up_keeps_refs_pins_the_last_ever_active_and_everything_in_flight() {
    let mut versions: Vec<VersionFacts> = (1..=10).map(version).collect();
    versions[1].pinned = true; // 2
    versions[6].activated = false; // 7: never active, older than active
    versions[8].activated = false; // 9: the canary, never active
    versions[9].activated = false; // 10: in flight
    let clean_up = select_clean_up(&versions, refs(Some(8), Some(9)), 2).expect("deletes");
    // Kept: 8 and 6 (the last two ever-active; 8 is also active), 9 (canary), 2 (pinned),
    // 10 (in flight).
    assert_eq!(
        clean_up.delete,
        [1, 3, 4, 5, 7].map(Generation).to_vec(),
        "{clean_up:?}"
    );
    assert!(clean_up
        .reason
        .starts_with("deleted generations 1, 3, 4, 5, 7; kept active 8, canary 9"));
}

#[test]
fn clean_up_keeps_the_version_a_kept_one_is_read_from() {
    let mut versions: Vec<VersionFacts> = (1..=6).map(version).collect();
    versions[5].read_from = Some(g(2)); // 6 is stored as a change of 2
    versions[3].read_from = Some(g(1)); // 4 is deleted: 1 goes with it
    let clean_up = select_clean_up(&versions, refs(Some(6), None), 2).expect("deletes");
    // Kept: 6 and 5 (the last two ever-active: 1 is below the minimum), 2 (6 is read from it).
    assert_eq!(clean_up.delete, [1, 3, 4].map(Generation).to_vec());
}

#[test]
fn clean_up_deletes_nothing_without_an_active_version_or_when_all_is_kept() {
    let versions: Vec<VersionFacts> = (1..=3).map(version).collect();
    assert_eq!(select_clean_up(&versions, refs(None, Some(3)), 1), None);
    assert_eq!(select_clean_up(&versions, refs(Some(3), None), 5), None);
}

#[test]
fn clean_up_clamps_keep_last_to_its_bounds() {
    let versions: Vec<VersionFacts> = (1..=3).map(version).collect();
    let clean_up = select_clean_up(&versions, refs(Some(3), None), 0).expect("deletes");
    let minimum = model::limits::KEEP_LAST_VERSIONS.min;
    assert!(
        clean_up
            .reason
            .contains(&format!("the last {minimum} ever-active")),
        "{clean_up:?}"
    );
}

#[test]
fn breaker_entries_go_through_the_breaker_not_the_audit_log() {
    let entry = |action: &str| NewAuditEntry {
        at_ms: 1,
        actor: "operator".to_string(),
        zone: zone(),
        action: action.to_string(),
        from: None,
        to: None,
        reason: "why".to_string(),
    };
    assert!(refuse_breaker_entry(&entry(crate::actions::BREAKER_TRIP)).is_err());
    assert!(refuse_breaker_entry(&entry(crate::actions::BREAKER_THAW)).is_err());
    assert!(refuse_breaker_entry(&entry(crate::actions::REFUSED)).is_ok());
}
