//! `dnsward store repair`: every version of a store file that still verifies, copied into a
//! new file; the old file is kept as it is.
//!
//! A version is copied when its whole content reads back and hashes to its recorded hash
//! (what [`Store::content`] checks); a bucket is copied when its bytes hash to its key. The
//! zones keep their generation counters and last serials (generations are never reused,
//! serials only rise), the audit log is copied whole, and a zone whose active version did
//! not verify gets the newest verified version that was ever active (audited as
//! [`REPAIR`]). The new file is checked ([`Store::check_integrity`]) before it is reported.

use std::path::Path;

use model::{Generation, Name};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{buckets, zone_key, SqliteStore, Store, StoreError};

/// The audit action of a repair that moved a zone's active ref.
pub const REPAIR: &str = "repair";

/// What a repair kept and dropped of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRepair {
    pub zone: Name,
    pub verified: Vec<Generation>,
    pub dropped: Vec<Generation>,
    pub active_before: Option<Generation>,
    pub active_after: Option<Generation>,
}

/// Copies every verifiable version of `from` into a new store file at `to` (which must
/// not exist), and returns what happened to each zone.
pub fn repair_into(from: &SqliteStore, to: &Path) -> Result<Vec<ZoneRepair>, StoreError> {
    let fail = |operation: &str, error: rusqlite::Error| StoreError::Backend {
        location: to.display().to_string(),
        operation: operation.to_string(),
        detail: error.to_string(),
    };
    if to.exists() {
        return Err(StoreError::Backend {
            location: to.display().to_string(),
            operation: "creating the repaired store".into(),
            detail: "the file exists; name a new file (the old store is never overwritten)".into(),
        });
    }
    let mut zones = Vec::new();
    for (zone, refs) in from.zones()? {
        let generations = from.generations(&zone)?;
        let (verified, dropped): (Vec<Generation>, Vec<Generation>) = generations
            .into_iter()
            .partition(|generation| from.content(&zone, *generation).is_ok());
        zones.push((zone, refs, verified, dropped));
    }
    // The new file gets the current schema; then rows are copied with the old file attached.
    drop(SqliteStore::open(to)?);
    let mut connection = Connection::open(to).map_err(|e| fail("opening", e))?;
    connection
        .execute("ATTACH DATABASE ?1 AS old", [from.path().to_string_lossy()])
        .map_err(|e| fail("attaching the old store", e))?;
    let tx = connection
        .transaction()
        .map_err(|e| fail("starting the copy", e))?;
    let mut report = Vec::new();
    let mut copy = || -> rusqlite::Result<()> {
        tx.execute_batch(
            "INSERT OR REPLACE INTO main.meta SELECT * FROM old.meta;
             INSERT INTO main.audit SELECT * FROM old.audit;",
        )?;
        let zone_columns = columns(&tx, "zones", &["active", "canary"])?;
        tx.execute(
            &format!(
                "INSERT INTO main.zones ({zone_columns}) SELECT {zone_columns} FROM old.zones"
            ),
            [],
        )?;
        let mut blobs = tx.prepare("SELECT zone, hash, bytes FROM old.blobs")?;
        let mut insert =
            tx.prepare("INSERT INTO main.blobs (zone, hash, bytes) VALUES (?1, ?2, ?3)")?;
        let mut rows = blobs.query([])?;
        while let Some(row) = rows.next()? {
            let hash: Vec<u8> = row.get(1)?;
            let bytes: Vec<u8> = row.get(2)?;
            if buckets::hash(&bytes).as_slice() == hash.as_slice() {
                insert.execute(params![row.get::<_, String>(0)?, hash, bytes])?;
            }
        }
        for (zone, refs, verified, dropped) in &zones {
            let key = zone_key(zone);
            for generation in verified {
                tx.execute(
                    "INSERT INTO main.versions SELECT * FROM old.versions \
                     WHERE zone = ?1 AND generation = ?2",
                    params![key, generation.0 as i64],
                )?;
            }
            let kept = |generation: &Option<Generation>| {
                generation.filter(|generation| verified.contains(generation))
            };
            let active = match kept(&refs.active) {
                Some(active) => Some(active),
                None => tx
                    .query_row(
                        "SELECT generation FROM main.versions WHERE zone = ?1 \
                         ORDER BY activated DESC, generation DESC LIMIT 1",
                        [&key],
                        |row| row.get::<_, i64>(0),
                    )
                    .optional()?
                    .map(|generation| Generation(generation as u64)),
            };
            tx.execute(
                "UPDATE main.zones SET active = ?2, canary = ?3 WHERE name = ?1",
                params![
                    key,
                    active.map(|g| g.0 as i64),
                    kept(&refs.canary).map(|g| g.0 as i64)
                ],
            )?;
            if active != refs.active || !dropped.is_empty() {
                tx.execute(
                    "INSERT INTO main.audit (at_ms, actor, zone_key, zone, action, from_gen, \
                     to_gen, reason) VALUES (?1, 'dnsward store repair', ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        now_ms() as i64,
                        key,
                        zone.to_ascii(),
                        REPAIR,
                        refs.active.map(|g| g.0 as i64),
                        active.map(|g| g.0 as i64),
                        format!(
                            "copied from {}: {} versions verified, dropped (failed their hash): {}",
                            from.path().display(),
                            verified.len(),
                            list(dropped)
                        ),
                    ],
                )?;
            }
            report.push(ZoneRepair {
                zone: zone.clone(),
                verified: verified.clone(),
                dropped: dropped.clone(),
                active_before: refs.active,
                active_after: active,
            });
        }
        tx.execute_batch(
            "INSERT OR REPLACE INTO main.zone_sources SELECT * FROM old.zone_sources \
             WHERE zone IN (SELECT name FROM main.zones);",
        )?;
        Ok(())
    };
    copy().map_err(|e| fail("copying the verified versions", e))?;
    tx.commit().map_err(|e| fail("committing the copy", e))?;
    drop(connection);
    let repaired = SqliteStore::open(to)?;
    repaired.check_integrity()?;
    Ok(report)
}

/// The table's columns but `except`, comma-separated.
fn columns(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    except: &[&str],
) -> rusqlite::Result<String> {
    let mut statement = tx.prepare(&format!("PRAGMA main.table_info({table})"))?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names
        .into_iter()
        .filter(|name| !except.contains(&name.as_str()))
        .collect::<Vec<_>>()
        .join(", "))
}

fn list(generations: &[Generation]) -> String {
    if generations.is_empty() {
        return "none".into();
    }
    generations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fixtures::{commit, content, name};
    use crate::AuditQuery;
    use model::RefName;

    #[test]
    fn a_repair_keeps_what_verifies_moves_a_corrupt_active_back_and_keeps_the_counters() {
        let dir = tempfile::tempdir().unwrap();
        let old_path = dir.path().join("old.db");
        let old = SqliteStore::open(&old_path).unwrap();
        let zone = name("example.test.");
        let mut base = None;
        for variant in 0..3u8 {
            let next = content("example.test.", 1, 50, variant);
            base = Some(
                old.commit(commit(&next, base, RefName::Active))
                    .unwrap()
                    .generation,
            );
        }
        assert_eq!(base, Some(Generation(3)));
        // Flip every content byte that only generation 3 owns.
        {
            let db = Connection::open(&old_path).unwrap();
            let manifest: Vec<u8> = db
                .query_row(
                    "SELECT manifest FROM versions WHERE generation = 3",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let delta: Option<Vec<u8>> = db
                .query_row(
                    "SELECT since_checkpoint FROM versions WHERE generation = 3",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            match delta {
                Some(mut bytes) => {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 1;
                    db.execute(
                        "UPDATE versions SET since_checkpoint = ?1 WHERE generation = 3",
                        [bytes],
                    )
                    .unwrap();
                }
                None => {
                    assert!(!manifest.is_empty());
                    db.execute(
                        "UPDATE versions SET content_hash = zeroblob(32) WHERE generation = 3",
                        [],
                    )
                    .unwrap();
                }
            }
        }
        assert!(old.content(&zone, Generation(3)).is_err());
        let new_path = dir.path().join("new.db");
        let report = repair_into(&old, &new_path).unwrap();
        assert_eq!(
            report,
            vec![ZoneRepair {
                zone: zone.clone(),
                verified: vec![Generation(1), Generation(2)],
                dropped: vec![Generation(3)],
                active_before: Some(Generation(3)),
                active_after: Some(Generation(2)),
            }]
        );
        let repaired = SqliteStore::open(&new_path).unwrap();
        repaired.check_integrity().unwrap();
        assert_eq!(repaired.refs(&zone).unwrap().active, Some(Generation(2)));
        assert_eq!(
            repaired.content(&zone, Generation(2)).unwrap(),
            old.content(&zone, Generation(2)).unwrap()
        );
        let next = content("example.test.", 1, 50, 9);
        let version = repaired
            .commit(commit(&next, Some(Generation(2)), RefName::Active))
            .unwrap();
        assert_eq!(
            version.generation,
            Generation(4),
            "generations are never reused"
        );
        let audit = repaired.audit(&AuditQuery::default()).unwrap();
        assert!(audit.iter().any(|entry| entry.action == REPAIR
            && entry.reason.contains("dropped (failed their hash): 3")));
        assert!(
            old_path.is_file() && repair_into(&old, &new_path).is_err(),
            "never overwrites"
        );
    }
}
