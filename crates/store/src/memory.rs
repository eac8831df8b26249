//! The in-memory store: the same contract as SQLite (it passes the same suite), kept in one
//! mutex-protected map, with a fault hook for the simulation.
//!
//! Every trait method takes the mutex once, so each call is one atomic transaction exactly
//! like a SQLite `BEGIN IMMEDIATE`. Handles made with [`MemoryStore::client`] share the data
//! (they are other clients of the same store) but each has its own fault slot, so the
//! simulation can make one actor's calls time out while its checkers read undisturbed.
//!
//! Nothing here is durable: a process that dies loses the store. It is for tests and the
//! simulation, where "the store" outlives every actor but not the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use model::invariants;
use model::{limits, AuditEntry, Breaker, Generation, Name, RefName, Refs, Version, ZoneContent};

use crate::changes::NameChanges;
use crate::{
    actions, rules, zone_key, AuditQuery, BreakerChange, Commit, ContentChanges, MoveRef,
    NewAuditEntry, SetPinned, Store, StoreError,
};

/// What an injected fault does to the next call of a handle (see [`MemoryStore::inject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call times out before it reaches the store: nothing changes, the caller gets
    /// [`StoreError::Backend`].
    Lost,
    /// The call happens (and commits, if it would have) but the answer is lost: the caller
    /// gets [`StoreError::Backend`] and cannot tell whether anything changed.
    Unacknowledged,
}

/// A [`Store`] in memory. `Clone` gives the same handle (same fault slot);
/// [`MemoryStore::client`] gives another client of the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    fault: Arc<Mutex<Option<Fault>>>,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by [`zone_key`], so iteration is in the order of lower-cased names.
    zones: BTreeMap<String, ZoneState>,
    audit: Vec<StoredAudit>,
    change_counter: u64,
    /// See [`MemoryStore::break_changes`].
    wrong_changes: bool,
}

#[derive(Debug)]
struct ZoneState {
    /// The zone as first written.
    display: Name,
    next_generation: Generation,
    last_serial: Option<u32>,
    refs: Refs,
    breaker: Breaker,
    versions: BTreeMap<Generation, StoredVersion>,
    /// See [`Store::zone_source`].
    source: Option<String>,
}

#[derive(Debug, Clone)]
struct StoredVersion {
    version: Version,
    content: Arc<ZoneContent>,
    /// Was ever the target of the active ref (clean-up keeps the last K of these).
    activated: bool,
    /// What it changed from its parent, recorded at commit: known after the parent is gone.
    changes: Option<Arc<NameChanges>>,
}

#[derive(Debug, Clone)]
struct StoredAudit {
    key: String,
    entry: AuditEntry,
}

impl MemoryStore {
    /// Makes every [`Store::content_changes`] answer wrong on purpose from now on (for every
    /// client of this store): the last set it would add is left out, as a store whose
    /// change record lost a write would. A follower that patches from it serves a wrong
    /// answer; the simulation's checkers must catch that.
    pub fn break_changes(&self) {
        lock(&self.state).wrong_changes = true;
    }

    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Another client of the same store, with its own (empty) fault slot.
    pub fn client(&self) -> MemoryStore {
        MemoryStore {
            state: Arc::clone(&self.state),
            fault: Arc::default(),
        }
    }

    /// Makes the next call through this handle (any method) fail with `fault`. One-shot.
    pub fn inject(&self, fault: Fault) {
        *lock(&self.fault) = Some(fault);
    }

    /// Whether a fault is waiting for the next call.
    pub fn fault_pending(&self) -> bool {
        lock(&self.fault).is_some()
    }

    /// Deletes a version with no reachability check and no audit entry, leaving every ref
    /// where it is (so a ref may point at nothing). This is what clean-up by age could do in
    /// the October 2025 design; it exists only so the simulation's naive mode can model that
    /// design. Nothing in dnsward calls it. Returns whether the version existed.
    pub fn delete_version_unchecked(&self, zone: &Name, generation: Generation) -> bool {
        let mut state = lock(&self.state);
        state
            .zones
            .get_mut(&zone_key(zone))
            .is_some_and(|zone| zone.versions.remove(&generation).is_some())
    }

    /// Runs `work` under the store's lock, applying the pending fault of this handle.
    fn call<T>(
        &self,
        operation: &str,
        work: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let fault = lock(&self.fault).take();
        if fault == Some(Fault::Lost) {
            return Err(timed_out(operation, "nothing was done"));
        }
        let mut state = lock(&self.state);
        // Every method checks before it changes anything, so a refusal leaves the state as
        // it was: one call is one transaction.
        let result = work(&mut state);
        match fault {
            Some(Fault::Unacknowledged) => Err(timed_out(
                operation,
                "the outcome is unknown, re-read before acting",
            )),
            _ => result,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every method leaves the state consistent before it can panic (checks come first).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn timed_out(operation: &str, outcome: &str) -> StoreError {
    StoreError::Backend {
        location: "memory".to_string(),
        operation: operation.to_string(),
        detail: format!("timed out ({outcome})"),
    }
}

impl State {
    fn append(&mut self, key: &str, zone: &Name, entry: &NewAuditEntry) -> u64 {
        let sequence = self.audit.len() as u64 + 1;
        self.audit.push(StoredAudit {
            key: key.to_string(),
            entry: AuditEntry {
                sequence,
                at_ms: entry.at_ms,
                actor: entry.actor.clone(),
                zone: zone.clone(),
                action: entry.action.clone(),
                from: entry.from,
                to: entry.to,
                reason: entry.reason.clone(),
            },
        });
        sequence
    }

    /// Appends a ref change's audit entry and moves the change counter.
    #[allow(clippy::too_many_arguments)]
    fn audit_ref(
        &mut self,
        key: &str,
        action: &str,
        from: Option<Generation>,
        to: Option<Generation>,
        actor: &str,
        reason: &str,
        now_ms: u64,
    ) {
        let display = self.zones[key].display.clone();
        self.append(
            key,
            &display,
            &NewAuditEntry {
                at_ms: now_ms,
                actor: actor.to_string(),
                zone: display.clone(),
                action: action.to_string(),
                from,
                to,
                reason: reason.to_string(),
            },
        );
        self.change_counter += 1;
    }

    /// Carries out what the rules decided: the refs, ever-active, one audit entry and one
    /// change-counter step per write.
    fn write_refs(&mut self, key: &str, changes: &rules::RefChanges, actor: &str, now_ms: u64) {
        let zone = self.zone_mut(key);
        zone.refs = changes.refs;
        if let Some(stored) = changes
            .activated()
            .and_then(|active| zone.versions.get_mut(&active))
        {
            stored.activated = true;
        }
        for write in &changes.writes {
            self.audit_ref(
                key,
                write.action(),
                write.from,
                write.to,
                actor,
                &write.reason,
                now_ms,
            );
        }
    }

    fn zone_mut(&mut self, key: &str) -> &mut ZoneState {
        self.zones
            .get_mut(key)
            .expect("callers create or find the zone first")
    }

    fn write_breaker(
        &mut self,
        key: &str,
        breaker: Breaker,
        action: &str,
        request: &BreakerChange<'_>,
    ) {
        self.zone_mut(key).breaker = breaker;
        let display = self.zones[key].display.clone();
        self.append(
            key,
            &display,
            &NewAuditEntry {
                at_ms: request.now_ms,
                actor: request.actor.to_string(),
                zone: request.zone.clone(),
                action: action.to_string(),
                from: None,
                to: None,
                reason: request.reason.to_string(),
            },
        );
        // Followers re-read the zone: its breaker is part of what they show.
        self.change_counter += 1;
    }
}

impl ZoneState {
    /// What the rules need to know of the zone before a commit.
    fn facts(&self) -> rules::ZoneFacts {
        rules::ZoneFacts {
            refs: self.refs,
            next_generation: Some(self.next_generation),
            last_serial: self.last_serial,
        }
    }
}

fn new_zone(display: &Name) -> ZoneState {
    ZoneState {
        display: display.clone(),
        next_generation: Generation::FIRST,
        last_serial: None,
        refs: Refs::default(),
        breaker: Breaker::Closed,
        versions: BTreeMap::new(),
        source: None,
    }
}

impl Store for MemoryStore {
    fn commit(&self, commit: Commit<'_>) -> Result<Version, StoreError> {
        let content = commit.content;
        let origin = content.origin().clone();
        let key = zone_key(&origin);
        self.call("committing a version", |state| {
            invariants::check_content_valid(content, limits::ZONE_RECORDS.default)
                .map_err(|violation| rules::invalid(&origin, violation))?;
            let content_serial = rules::content_serial(content)?;
            let existing = state.zones.get(&key);
            let facts = existing.map(ZoneState::facts).unwrap_or_default();
            let breaker = existing
                .map(|zone| zone.breaker.clone())
                .unwrap_or_default();
            let admitted = rules::admit_commit(
                &origin,
                &facts,
                &breaker,
                commit.base,
                commit.automation,
                content_serial,
            )?;
            let stored = if admitted.serial == content_serial {
                content.clone()
            } else {
                content.with_serial(admitted.serial)
            };
            let zone = state
                .zones
                .entry(key.clone())
                .or_insert_with(|| new_zone(&origin));
            let recorded = commit
                .base
                .and_then(|base| zone.versions.get(&base))
                .map(|base| Arc::new(changes_between(&base.content, &stored)));
            zone.next_generation = admitted.generation.next();
            zone.last_serial = Some(admitted.serial);
            let version = Version {
                zone: zone.display.clone(),
                generation: admitted.generation,
                content_hash: stored.hash(),
                parent: commit.base,
                provenance: commit.provenance.clone(),
                actor: commit.actor.to_string(),
                reason: commit.reason.to_string(),
                serial: admitted.serial,
                records: stored.record_count(),
                created_at_ms: commit.now_ms,
                pinned: false,
            };
            zone.versions.insert(
                admitted.generation,
                StoredVersion {
                    version: version.clone(),
                    content: Arc::new(stored),
                    activated: false,
                    changes: recorded,
                },
            );
            let changes = rules::commit_writes(
                facts.refs,
                commit.target,
                admitted.generation,
                commit.reason,
            );
            state.write_refs(&key, &changes, commit.actor, commit.now_ms);
            Ok(version)
        })
    }

    fn move_ref(&self, request: MoveRef<'_>) -> Result<(), StoreError> {
        let key = zone_key(request.zone);
        self.call("moving a ref", |state| {
            let zone = state.zones.get(&key);
            let refs = zone.map(|z| z.refs).unwrap_or_default();
            let breaker = zone.map(|z| z.breaker.clone()).unwrap_or_default();
            let exists = request
                .to
                .is_some_and(|to| zone.is_some_and(|z| z.versions.contains_key(&to)));
            let changes = rules::admit_move(&request, refs, &breaker, exists)?;
            state.write_refs(&key, &changes, request.actor, request.now_ms);
            Ok(())
        })
    }

    fn refs(&self, zone: &Name) -> Result<Refs, StoreError> {
        let key = zone_key(zone);
        self.call("reading refs", |state| {
            Ok(state.zones.get(&key).map(|z| z.refs).unwrap_or_default())
        })
    }

    fn zones(&self) -> Result<Vec<(Name, Refs)>, StoreError> {
        self.call("listing zones", |state| {
            Ok(state
                .zones
                .values()
                .map(|zone| (zone.display.clone(), zone.refs))
                .collect())
        })
    }

    fn version(&self, zone: &Name, generation: Generation) -> Result<Version, StoreError> {
        let key = zone_key(zone);
        self.call("reading a version", |state| {
            state
                .zones
                .get(&key)
                .and_then(|z| z.versions.get(&generation))
                .map(|stored| stored.version.clone())
                .ok_or_else(|| StoreError::NotFound {
                    zone: zone.clone(),
                    generation,
                })
        })
    }

    fn content(&self, zone: &Name, generation: Generation) -> Result<ZoneContent, StoreError> {
        let key = zone_key(zone);
        let stored = self.call("reading content", |state| {
            state
                .zones
                .get(&key)
                .and_then(|z| z.versions.get(&generation))
                .map(|stored| Arc::clone(&stored.content))
                .ok_or_else(|| StoreError::NotFound {
                    zone: zone.clone(),
                    generation,
                })
        })?;
        // Content is kept as the immutable value that was hashed at commit: no bytes to
        // verify here (check_integrity re-hashes everything).
        Ok((*stored).clone())
    }

    /// The sets of every name whose sets differ between the two versions (a diff of the
    /// whole contents: this store keeps no change record); `None` when either version is
    /// gone.
    fn content_changes(
        &self,
        zone: &Name,
        from: Generation,
        to: Generation,
    ) -> Result<Option<ContentChanges>, StoreError> {
        let key = zone_key(zone);
        self.call("reading changes", |state| {
            let Some(zone_state) = state.zones.get(&key) else {
                return Ok(None);
            };
            let Some(new) = zone_state.versions.get(&to) else {
                return Ok(None);
            };
            let changed = match zone_state.versions.get(&from) {
                Some(old) => {
                    NameChanges::between(old.content.rrsets().cloned(), new.content.rrsets())
                }
                None => match recorded_chain(zone_state, from, to) {
                    Some(changed) => changed,
                    None => return Ok(None),
                },
            };
            let mut changes = ContentChanges {
                version: new.version.clone(),
                removed: changed.removed,
                added: changed.added,
            };
            if state.wrong_changes {
                changes.added.pop();
            }
            Ok(Some(changes))
        })
    }

    fn history(&self, zone: &Name, limit: usize) -> Result<Vec<Version>, StoreError> {
        let key = zone_key(zone);
        self.call("reading history", |state| {
            Ok(state
                .zones
                .get(&key)
                .map(|z| {
                    z.versions
                        .values()
                        .rev()
                        .take(limit)
                        .map(|stored| stored.version.clone())
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn set_pinned(&self, request: SetPinned<'_>) -> Result<(), StoreError> {
        let key = zone_key(request.zone);
        self.call("pinning a version", |state| {
            let stored = state
                .zones
                .get_mut(&key)
                .and_then(|z| z.versions.get_mut(&request.generation))
                .ok_or_else(|| StoreError::NotFound {
                    zone: request.zone.clone(),
                    generation: request.generation,
                })?;
            stored.version.pinned = request.pinned;
            let display = state.zones[&key].display.clone();
            let action = if request.pinned {
                actions::PIN
            } else {
                actions::UNPIN
            };
            state.append(
                &key,
                &display,
                &NewAuditEntry {
                    at_ms: request.now_ms,
                    actor: request.actor.to_string(),
                    zone: request.zone.clone(),
                    action: action.to_string(),
                    from: None,
                    to: Some(request.generation),
                    reason: request.reason.to_string(),
                },
            );
            Ok(())
        })
    }

    fn append_audit(&self, entry: NewAuditEntry) -> Result<u64, StoreError> {
        self.call("appending to the audit log", |state| {
            rules::refuse_breaker_entry(&entry)?;
            let key = zone_key(&entry.zone);
            Ok(state.append(&key, &entry.zone, &entry))
        })
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let key = query.zone.as_ref().map(zone_key);
        let limit = limits::AUDIT_PAGE.clamp(query.limit.map(|limit| limit as u64));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let after = query.after_sequence.unwrap_or(0);
        self.call("reading the audit log", |state| {
            // Sequences are positions + 1, so paging starts at the right index directly.
            let start = usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(state.audit.len());
            Ok(state.audit[start..]
                .iter()
                .filter(|stored| key.as_ref().is_none_or(|key| stored.key == *key))
                .filter(|stored| {
                    query
                        .since_ms
                        .is_none_or(|since| stored.entry.at_ms >= since)
                })
                .take(limit)
                .map(|stored| stored.entry.clone())
                .collect())
        })
    }

    fn clean_up(
        &self,
        zone: &Name,
        keep_last: usize,
        actor: &str,
        now_ms: u64,
    ) -> Result<Vec<Generation>, StoreError> {
        let key = zone_key(zone);
        self.call("cleaning up", |state| {
            let Some(zone_state) = state.zones.get_mut(&key) else {
                return Ok(Vec::new());
            };
            let versions: Vec<rules::VersionFacts> = zone_state
                .versions
                .values()
                .map(|stored| rules::VersionFacts {
                    generation: stored.version.generation,
                    pinned: stored.version.pinned,
                    activated: stored.activated,
                    read_from: None,
                })
                .collect();
            let Some(clean_up) = rules::select_clean_up(&versions, zone_state.refs, keep_last)
            else {
                return Ok(Vec::new());
            };
            for generation in &clean_up.delete {
                zone_state.versions.remove(generation);
            }
            let display = zone_state.display.clone();
            state.append(
                &key,
                &display,
                &NewAuditEntry {
                    at_ms: now_ms,
                    actor: actor.to_string(),
                    zone: zone.clone(),
                    action: actions::CLEAN_UP.to_string(),
                    from: None,
                    to: None,
                    reason: clean_up.reason,
                },
            );
            Ok(clean_up.delete)
        })
    }

    fn zone_source(&self, zone: &Name) -> Result<Option<String>, StoreError> {
        let key = zone_key(zone);
        self.call("reading the zone's source", |state| {
            Ok(state.zones.get(&key).and_then(|zone| zone.source.clone()))
        })
    }

    fn set_zone_source(&self, zone: &Name, source: &str) -> Result<(), StoreError> {
        let key = zone_key(zone);
        self.call("recording the zone's source", |state| {
            match state.zones.get_mut(&key) {
                Some(state) if state.next_generation > Generation::FIRST => {
                    state.source = Some(source.to_string());
                    Ok(())
                }
                _ => Err(crate::unknown_zone_source(zone)),
            }
        })
    }

    fn breaker(&self, zone: &Name) -> Result<Breaker, StoreError> {
        let key = zone_key(zone);
        self.call("reading the breaker", |state| {
            Ok(state
                .zones
                .get(&key)
                .map(|zone| zone.breaker.clone())
                .unwrap_or_default())
        })
    }

    fn trip_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        let key = zone_key(request.zone);
        self.call("tripping the breaker", |state| {
            let zone = state
                .zones
                .entry(key.clone())
                .or_insert_with(|| new_zone(request.zone));
            let tripped = zone
                .breaker
                .clone()
                .trip(request.reason, request.actor, request.now_ms);
            state.write_breaker(&key, tripped.clone(), actions::BREAKER_TRIP, &request);
            Ok(tripped)
        })
    }

    fn thaw_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        let key = zone_key(request.zone);
        self.call("thawing the breaker", |state| {
            let current = state
                .zones
                .get(&key)
                .map(|zone| zone.breaker.clone())
                .unwrap_or_default();
            let thawed = rules::thaw(
                request.zone,
                current,
                request.reason,
                request.actor,
                request.now_ms,
            )?;
            state.write_breaker(&key, thawed.clone(), actions::BREAKER_THAW, &request);
            Ok(thawed)
        })
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        self.call("reading the change counter", |state| {
            Ok(state.change_counter)
        })
    }

    fn check_integrity(&self) -> Result<(), StoreError> {
        self.call("checking integrity", |state| {
            let corrupt = |detail: String| Err(StoreError::Corrupt { detail });
            for (key, zone) in &state.zones {
                let display = &zone.display;
                if let Some((newest, _)) = zone.versions.last_key_value() {
                    if *newest >= zone.next_generation {
                        return corrupt(format!(
                            "zone {display}: generation {newest} exists but the next \
                             generation is {}",
                            zone.next_generation
                        ));
                    }
                }
                for (reference, target) in [
                    (RefName::Active, zone.refs.active),
                    (RefName::Canary, zone.refs.canary),
                ] {
                    if let Some(target) = target {
                        if !zone.versions.contains_key(&target) {
                            return corrupt(format!(
                                "zone {display}: the {reference} ref points at missing \
                                 generation {target}"
                            ));
                        }
                    }
                }
                let entries: Vec<AuditEntry> = state
                    .audit
                    .iter()
                    .filter(|stored| stored.key == *key)
                    .map(|stored| stored.entry.clone())
                    .collect();
                let replayed = Breaker::from_audit(&entries);
                if zone.breaker != replayed {
                    return corrupt(format!(
                        "zone {display}: the breaker is stored as {} but the audit log \
                         replays to {replayed}",
                        zone.breaker
                    ));
                }
                for (generation, stored) in &zone.versions {
                    if stored.content.hash() != stored.version.content_hash {
                        return corrupt(format!(
                            "zone {display} generation {generation}: the content hashes to {} \
                             but the version says {}",
                            stored.content.hash(),
                            stored.version.content_hash
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

/// The changes from `base` to `stored` (content derived from it), at the cost of the change.
fn changes_between(base: &ZoneContent, stored: &ZoneContent) -> NameChanges {
    let names: std::collections::BTreeSet<Name> = base
        .changed_sets(stored)
        .iter()
        .map(|set| set.key.name.to_lowercase())
        .collect();
    let before: Vec<model::RecordSet> = names
        .iter()
        .flat_map(|name| base.sets_at(name).cloned())
        .collect();
    NameChanges::between(before, names.iter().flat_map(|name| stored.sets_at(name)))
}

/// The recorded changes from `from` (gone) to `to`, composed along parents, at most
/// [`limits::STORE_CHANGES_CHAIN`] of them.
fn recorded_chain(zone: &ZoneState, from: Generation, to: Generation) -> Option<NameChanges> {
    let mut steps = Vec::new();
    let mut at = zone.versions.get(&to)?;
    for _ in 0..limits::STORE_CHANGES_CHAIN.default {
        let parent = at.version.parent?;
        steps.push(NameChanges::clone(at.changes.as_ref()?));
        if parent == from {
            steps.reverse();
            return Some(NameChanges::compose(steps));
        }
        at = zone.versions.get(&parent)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fixtures;

    fn commit_on_top(store: &MemoryStore, variant: u8) -> Result<Version, StoreError> {
        let content = fixtures::content("example.test.", 1, 3, variant);
        let base = store.refs(content.origin())?.active;
        store.commit(fixtures::commit(&content, base, RefName::Active))
    }

    #[test]
    fn a_lost_call_changes_nothing_and_fails() {
        let store = MemoryStore::new();
        let zone = fixtures::name("example.test.");
        commit_on_top(&store, 0).unwrap();
        let content = fixtures::content("example.test.", 1, 3, 1);
        store.inject(Fault::Lost);
        let error = store
            .commit(fixtures::commit(
                &content,
                Some(Generation(1)),
                RefName::Active,
            ))
            .unwrap_err();
        assert!(error.to_string().contains("nothing was done"), "{error}");
        assert_eq!(store.refs(&zone).unwrap().active, Some(Generation(1)));
    }

    #[test]
    fn an_unacknowledged_commit_happens_but_the_caller_hears_an_error() {
        let store = MemoryStore::new();
        let zone = fixtures::name("example.test.");
        commit_on_top(&store, 0).unwrap();
        let content = fixtures::content("example.test.", 1, 3, 1);
        store.inject(Fault::Unacknowledged);
        let error = store
            .commit(fixtures::commit(
                &content,
                Some(Generation(1)),
                RefName::Active,
            ))
            .unwrap_err();
        assert!(error.to_string().contains("outcome is unknown"), "{error}");
        assert_eq!(store.refs(&zone).unwrap().active, Some(Generation(2)));
        assert!(!store.fault_pending(), "a fault fires once");
    }

    #[test]
    fn a_fault_on_one_client_leaves_other_clients_alone() {
        let store = MemoryStore::new();
        let checker = store.client();
        store.inject(Fault::Lost);
        assert!(checker.refs(&fixtures::name("example.test.")).is_ok());
        assert!(store.fault_pending());
    }

    #[test]
    fn an_unchecked_delete_can_leave_the_active_ref_dangling() {
        let store = MemoryStore::new();
        let zone = fixtures::name("example.test.");
        commit_on_top(&store, 0).unwrap();
        assert!(store.delete_version_unchecked(&zone, Generation(1)));
        assert!(matches!(
            store.check_integrity(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
