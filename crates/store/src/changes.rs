//! A version's recorded changes: for every owner name whose record sets differ from the
//! parent version's, all of its sets before and after.
//!
//! The store records them when it commits a version on top of its base (it compares only the
//! buckets whose keys changed), so a follower that serves the parent can load the new
//! version by reading a few sets instead of the whole zone. A name that appears on neither
//! side is the same in both versions; a name that appears has, in the new version, exactly
//! its sets on the `added` side (none when it was deleted).
//!
//! Stored bytes: the SHA-256 of the rest, the length of the removed part (u64, big-endian),
//! then the removed and the added sets, each as [`RecordSet::encode`] back to back.

use std::collections::BTreeMap;

use model::{decode_record_sets, ContentError, Name, RecordSet};
use sha2::{Digest, Sha256};

/// The sets of the names that changed between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameChanges {
    /// Every set the changed names had before.
    pub removed: Vec<RecordSet>,
    /// Every set the changed names have after.
    pub added: Vec<RecordSet>,
}

impl NameChanges {
    /// Record sets on both sides.
    pub fn len(&self) -> usize {
        self.removed.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The changes from the old to the new sets of some buckets: each owner name (compared
    /// lower-cased) whose sets differ in any byte (case included) is kept with all of its
    /// sets on both sides.
    pub fn between<'a>(
        old: impl IntoIterator<Item = RecordSet>,
        new: impl IntoIterator<Item = &'a RecordSet>,
    ) -> NameChanges {
        let mut names: BTreeMap<Name, (Vec<RecordSet>, Vec<RecordSet>)> = BTreeMap::new();
        for set in old {
            names
                .entry(set.name.to_lowercase())
                .or_default()
                .0
                .push(set);
        }
        for set in new {
            names
                .entry(set.name.to_lowercase())
                .or_default()
                .1
                .push(set.clone());
        }
        let mut changes = NameChanges::default();
        for (_, (before, after)) in names {
            if encoded(&before) != encoded(&after) {
                changes.removed.extend(before);
                changes.added.extend(after);
            }
        }
        changes
    }

    /// The changes of consecutive steps (oldest first) as one: per name, its sets before the
    /// first step that changed it and after the last one.
    pub fn compose(steps: impl IntoIterator<Item = NameChanges>) -> NameChanges {
        let mut names: BTreeMap<Name, (Vec<RecordSet>, Vec<RecordSet>)> = BTreeMap::new();
        for step in steps {
            let mut after: BTreeMap<Name, Vec<RecordSet>> = BTreeMap::new();
            for set in step.added {
                after.entry(set.name.to_lowercase()).or_default().push(set);
            }
            let mut before: BTreeMap<Name, Vec<RecordSet>> = BTreeMap::new();
            for set in step.removed {
                before.entry(set.name.to_lowercase()).or_default().push(set);
            }
            for name in before.keys().chain(after.keys()) {
                if !names.contains_key(name) {
                    let first = before.get(name).cloned().unwrap_or_default();
                    names.insert(name.clone(), (first, Vec::new()));
                }
            }
            for name in before.keys() {
                if let Some(entry) = names.get_mut(name) {
                    entry.1 = after.get(name).cloned().unwrap_or_default();
                }
            }
            for (name, sets) in after {
                if let Some(entry) = names.get_mut(&name) {
                    entry.1 = sets;
                }
            }
        }
        let mut changes = NameChanges::default();
        for (_, (before, after)) in names {
            changes.removed.extend(before);
            changes.added.extend(after);
        }
        changes
    }

    /// The stored bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let removed = encoded(&self.removed);
        let mut body = Vec::with_capacity(8 + removed.len());
        body.extend_from_slice(&(removed.len() as u64).to_be_bytes());
        body.extend_from_slice(&removed);
        for set in &self.added {
            set.encode(&mut body);
        }
        let mut bytes = Sha256::digest(&body).to_vec();
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Inverse of [`NameChanges::encode`]; an error when the bytes do not match their hash
    /// or do not decode.
    pub fn decode(bytes: &[u8]) -> Result<NameChanges, ContentError> {
        let corrupt = |reason: &str| ContentError::Corrupt {
            reason: format!("recorded changes: {reason}"),
        };
        let (hash, body) = bytes
            .split_at_checked(32)
            .ok_or_else(|| corrupt("shorter than their hash"))?;
        if Sha256::digest(body).as_slice() != hash {
            return Err(corrupt("they do not match their hash"));
        }
        let (length, sets) = body
            .split_at_checked(8)
            .ok_or_else(|| corrupt("the length of the removed sets is torn"))?;
        let mut removed_length = [0u8; 8];
        removed_length.copy_from_slice(length);
        let (removed, added) = usize::try_from(u64::from_be_bytes(removed_length))
            .ok()
            .and_then(|at| sets.split_at_checked(at))
            .ok_or_else(|| corrupt("the removed sets are longer than the bytes"))?;
        Ok(NameChanges {
            removed: decode_record_sets(removed)?,
            added: decode_record_sets(added)?,
        })
    }
}

fn encoded(sets: &[RecordSet]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for set in sets {
        set.encode(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fixtures;

    fn host(number: u32, last: u8) -> RecordSet {
        fixtures::host_set("big.test.", number, last)
    }

    #[test]
    fn only_names_whose_sets_differ_are_recorded() {
        let old = vec![host(1, 0), host(2, 0), host(3, 0)];
        let new = [host(1, 0), host(2, 9), host(4, 0)];
        let changes = NameChanges::between(old, new.iter());
        assert_eq!(changes.removed, vec![host(2, 0), host(3, 0)]);
        assert_eq!(changes.added, vec![host(2, 9), host(4, 0)]);
    }

    #[test]
    fn recorded_changes_round_trip_and_refuse_damaged_bytes() {
        let changes = NameChanges {
            removed: vec![host(2, 0), host(3, 0)],
            added: vec![host(2, 9)],
        };
        let bytes = changes.encode();
        assert_eq!(NameChanges::decode(&bytes), Ok(changes));
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(NameChanges::decode(&damaged).is_err());
        assert!(NameChanges::decode(&bytes[..20]).is_err());
    }

    #[test]
    fn composed_steps_keep_the_first_before_and_the_last_after() {
        let first = NameChanges {
            removed: vec![host(1, 0), host(2, 0)],
            added: vec![host(1, 1)],
        };
        let second = NameChanges {
            removed: vec![host(1, 1)],
            added: vec![host(1, 2), host(3, 2)],
        };
        let composed = NameChanges::compose([first, second]);
        assert_eq!(composed.removed, vec![host(1, 0), host(2, 0)]);
        assert_eq!(composed.added, vec![host(1, 2), host(3, 2)]);
    }
}
