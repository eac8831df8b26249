//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, one connection per
//! instance behind a mutex, every write in a `BEGIN IMMEDIATE` transaction. Several
//! instances, in one or several processes, may open the same file.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use model::invariants;
use model::{
    limits, AuditEntry, Breaker, ContentHash, Generation, Name, Provenance, RecordSet, RefName,
    Refs, Version, ZoneContent,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::buckets::{self, BucketHash};
use crate::changes::NameChanges;
use crate::{
    actions, rules, zone_key, AuditQuery, BreakerChange, Commit, ContentChanges, MoveRef,
    NewAuditEntry, SetPinned, Store, StoreError,
};

/// Version of the schema below; a file with another version is refused.
const SCHEMA_VERSION: i64 = 4;

/// A store file that exists but is empty (0 bytes, and no write-ahead log beside it) is
/// not a new store: it is one that lost its content (truncated, a failed copy). Opening it
/// would start over at generation 1 and the served serial would drop; it is refused.
fn refuse_empty_file(path: &Path) -> Result<(), StoreError> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(()); // missing: a new store is created
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(std::path::PathBuf::from(wal)).map_or(0, |m| m.len());
    if metadata.is_file() && metadata.len() == 0 && wal_bytes == 0 {
        return Err(StoreError::Backend {
            location: path.display().to_string(),
            operation: "opening the store".to_string(),
            detail: "the file is empty (0 bytes): a store that lost its content, not a new \
                     one; restore it from a backup, or remove the file to start a new store \
                     (generations and serials start over)"
                .to_string(),
        });
    }
    Ok(())
}

/// A database with tables but none of ours belongs to something else: turning it into a
/// store (WAL mode, our tables) would be silent and wrong. Checked before anything is
/// written to it.
fn refuse_foreign_database(path: &Path, connection: &Connection) -> Result<(), StoreError> {
    let count = |sql: &str| -> Result<i64, StoreError> {
        connection
            .query_row(sql, [], |row| row.get(0))
            .map_err(|error| backend(path, "reading the file's tables", error))
    };
    let tables = count("SELECT count(*) FROM sqlite_master WHERE type = 'table'")?;
    let ours = count(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    )?;
    if tables > 0 && ours == 0 {
        return Err(StoreError::Backend {
            location: path.display().to_string(),
            operation: "opening the store".to_string(),
            detail: format!(
                "the file is an SQLite database with {tables} tables and no dnsward schema: \
                 not a dnsward store; give store.path a file of its own"
            ),
        });
    }
    Ok(())
}

/// Brings a file of schema version 1 to version 2: the zone breaker's columns.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE zones ADD COLUMN breaker_state TEXT NOT NULL DEFAULT 'closed';
ALTER TABLE zones ADD COLUMN breaker_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE zones ADD COLUMN breaker_actor TEXT NOT NULL DEFAULT '';
ALTER TABLE zones ADD COLUMN breaker_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE schema_version SET version = 2;
";

/// Brings a file of schema version 2 to version 3: recorded changes. Versions written
/// before have none; a follower loads their whole content.
const MIGRATE_2_TO_3: &str = "
ALTER TABLE versions ADD COLUMN changes BLOB;
UPDATE schema_version SET version = 3;
";

/// Brings a file of schema version 3 to version 4: a version may be stored as its change
/// from a checkpoint version, with an empty manifest.
const MIGRATE_3_TO_4: &str = "
ALTER TABLE versions ADD COLUMN checkpoint INTEGER;
ALTER TABLE versions ADD COLUMN since_checkpoint BLOB;
UPDATE schema_version SET version = 4;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('change_counter', 0);
CREATE TABLE IF NOT EXISTS zones (
    name TEXT PRIMARY KEY,              -- lower-cased, fully qualified
    display_name TEXT NOT NULL,         -- as first written
    next_generation INTEGER NOT NULL,   -- never decreases: generations are never reused
    last_serial INTEGER,                -- last SOA serial ever stored for the zone
    active INTEGER,
    canary INTEGER,
    -- the zone breaker (model::Breaker), replayable from the audit log
    breaker_state TEXT NOT NULL DEFAULT 'closed',  -- closed | tripped | thawed
    breaker_reason TEXT NOT NULL DEFAULT '',
    breaker_actor TEXT NOT NULL DEFAULT '',
    breaker_at_ms INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (name, active) REFERENCES versions (zone, generation),
    FOREIGN KEY (name, canary) REFERENCES versions (zone, generation)
);
CREATE TABLE IF NOT EXISTS versions (
    zone TEXT NOT NULL REFERENCES zones (name),
    generation INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    manifest BLOB NOT NULL,             -- bucket keys, see buckets.rs; empty: see checkpoint
    parent INTEGER,
    provenance TEXT NOT NULL,
    rollback_to INTEGER,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    serial INTEGER NOT NULL,
    records INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    activated INTEGER NOT NULL DEFAULT 0, -- was ever the target of the active ref
    changes BLOB,                       -- the names changed from parent, see changes.rs
    checkpoint INTEGER,                 -- with an empty manifest: the version read first
    since_checkpoint BLOB,              -- and the names changed since it, see changes.rs
    PRIMARY KEY (zone, generation)
);
-- Buckets are keyed by zone and hash: content never crosses zones, so clean-up decides
-- reachability from one zone's manifests.
CREATE TABLE IF NOT EXISTS blobs (
    zone TEXT NOT NULL,
    hash BLOB NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (zone, hash)
);
-- what each zone's static records were last loaded from (Store::zone_source)
CREATE TABLE IF NOT EXISTS zone_sources (
    zone TEXT PRIMARY KEY REFERENCES zones (name),
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    zone_key TEXT NOT NULL,
    zone TEXT NOT NULL,
    action TEXT NOT NULL,
    from_gen INTEGER,
    to_gen INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_zone ON audit (zone_key, sequence);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// A [`Store`] in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    connection: Mutex<Connection>,
}

/// A zone's row.
#[derive(Debug, Clone, Copy)]
struct ZoneRow {
    next_generation: Generation,
    last_serial: Option<u32>,
    refs: Refs,
}

impl ZoneRow {
    /// What the rules need to know of the zone before a commit.
    fn facts(&self) -> rules::ZoneFacts {
        rules::ZoneFacts {
            refs: self.refs,
            next_generation: Some(self.next_generation),
            last_serial: self.last_serial,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        refuse_empty_file(&path)?;
        let fail = |operation: &str, error: rusqlite::Error| backend(&path, operation, error);
        let connection = Connection::open(&path).map_err(|e| fail("opening", e))?;
        connection
            .busy_timeout(Duration::from_millis(limits::STORE_BUSY_TIMEOUT_MS.default))
            .map_err(|e| fail("setting busy_timeout", e))?;
        refuse_foreign_database(&path, &connection)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| fail("switching to WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend {
                location: path.display().to_string(),
                operation: "switching to WAL".to_string(),
                detail: format!("journal mode stayed {mode}"),
            });
        }
        // FULL: a commit is on disk when it returns (contract 11), also in WAL mode.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| fail("setting synchronous=FULL", e))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| fail("enabling foreign keys", e))?;
        let store = SqliteStore {
            path,
            connection: Mutex::new(connection),
        };
        store.create_schema()?;
        Ok(store)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every stored generation of `zone`, oldest first, whatever state its row is in (for
    /// [`crate::repair`]).
    pub fn generations(&self, zone: &Name) -> Result<Vec<Generation>, StoreError> {
        let key = zone_key(zone);
        self.read("listing generations", |tx| {
            Ok(Ok(generations(
                tx,
                "SELECT generation FROM versions WHERE zone = ?1 ORDER BY generation",
                [&key],
            )?))
        })
    }

    fn create_schema(&self) -> Result<(), StoreError> {
        self.write("creating the schema", |tx| {
            tx.execute_batch(SCHEMA)?;
            let version: Option<i64> = tx
                .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
                .optional()?;
            match version {
                None => {
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES (?1)",
                        [SCHEMA_VERSION],
                    )?;
                    Ok(Ok(()))
                }
                Some(SCHEMA_VERSION) => Ok(Ok(())),
                Some(1) => {
                    tx.execute_batch(MIGRATE_1_TO_2)?;
                    tx.execute_batch(MIGRATE_2_TO_3)?;
                    tx.execute_batch(MIGRATE_3_TO_4)?;
                    Ok(Ok(()))
                }
                Some(2) => {
                    tx.execute_batch(MIGRATE_2_TO_3)?;
                    tx.execute_batch(MIGRATE_3_TO_4)?;
                    Ok(Ok(()))
                }
                Some(3) => {
                    tx.execute_batch(MIGRATE_3_TO_4)?;
                    Ok(Ok(()))
                }
                Some(other) => Ok(Err(StoreError::Backend {
                    location: self.path.display().to_string(),
                    operation: "checking the schema version".to_string(),
                    detail: format!(
                        "the file has schema version {other}, this dnsward knows \
                         {SCHEMA_VERSION}; use the dnsward release that wrote it"
                    ),
                })),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock dropped its transaction, which rolled back, so the
        // connection is in a clean state.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction and commits it when `work` returns
    /// `Ok(Ok(_))`. The outer result carries SQLite errors, the inner one refusals; both roll
    /// back.
    fn write<T>(
        &self,
        operation: &str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| backend(&self.path, operation, e))?;
        match work(&tx).map_err(|e| backend(&self.path, operation, e))? {
            Ok(value) => {
                tx.commit().map_err(|e| backend(&self.path, operation, e))?;
                Ok(value)
            }
            // Dropping the transaction rolls it back.
            Err(refusal) => Err(refusal),
        }
    }

    /// Runs `work` in a read transaction: one consistent snapshot.
    fn read<T>(
        &self,
        operation: &str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| backend(&self.path, operation, e))?;
        work(&tx).map_err(|e| backend(&self.path, operation, e))?
    }

    /// Total bytes of bucket blobs and manifests: what storing versions costs.
    #[cfg(test)]
    fn stored_bytes(&self) -> u64 {
        let connection = self.lock();
        let blobs: i64 = connection
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM blobs",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let manifests: i64 = connection
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(manifest)), 0) FROM versions",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let changes: i64 = connection
            .query_row(
                "SELECT COALESCE(SUM(LENGTH(changes)), 0) FROM versions",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (blobs + manifests + changes) as u64
    }
}

impl SqliteStore {
    /// [`Store::commit`], and [`Store::commit_from`] when `base_content` is given: checked
    /// against the base's stored hash in the transaction, it lets validation, buckets and
    /// recorded changes cost the change instead of the zone.
    fn commit_with(
        &self,
        commit: Commit<'_>,
        base_content: Option<&ZoneContent>,
    ) -> Result<Version, StoreError> {
        let content = commit.content;
        let origin = content.origin().clone();
        let key = zone_key(&origin);
        let invalid = |violation| rules::invalid(&origin, violation);
        let content_serial = rules::content_serial(content)?;
        self.write("committing a version", |tx| {
            let row = zone_row(tx, &key)?;
            let facts = row.map(|row| row.facts()).unwrap_or_default();
            let breaker = read_breaker(tx, &key)?;
            let admitted = match rules::admit_commit(
                &origin,
                &facts,
                &breaker,
                commit.base,
                commit.automation,
                content_serial,
            ) {
                Ok(admitted) => admitted,
                Err(refused) => return Ok(Err(refused)),
            };
            let (generation, served_serial) = (admitted.generation, admitted.serial);
            let stored = content.with_serial(served_serial);
            let content_hash = stored.hash();
            let verified_base = match (commit.base, base_content) {
                (Some(base), Some(base_content)) => {
                    verified_base(tx, &key, base, base_content)?.map(|manifest| (base, manifest))
                }
                _ => None,
            };
            let valid = match (&verified_base, base_content) {
                (Some(_), Some(base_content)) => invariants::check_change_valid(
                    base_content,
                    &stored,
                    limits::ZONE_RECORDS.default,
                ),
                _ => invariants::check_content_valid(&stored, limits::ZONE_RECORDS.default),
            };
            if let Err(violation) = valid {
                return Ok(Err(invalid(violation)));
            }
            let delta = match (verified_base, base_content) {
                (Some((base, _)), Some(base_content)) => {
                    layout_change(tx, &key, base, generation, base_content, &stored)?
                }
                _ => None,
            };
            let layout = match delta {
                Some(layout) => layout,
                None => layout_whole(tx, &key, commit.base, &stored)?,
            };
            let manifest = store_buckets(tx, &key, &layout)?;
            let display = match row {
                Some(_) => {
                    tx.execute(
                        "UPDATE zones SET next_generation = ?2, last_serial = ?3 WHERE name = ?1",
                        params![key, sql(generation.next().0), served_serial],
                    )?;
                    display_name(tx, &key)?
                }
                None => {
                    let display = origin.to_ascii();
                    tx.execute(
                        "INSERT INTO zones (name, display_name, next_generation, last_serial) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![key, display, sql(generation.next().0), served_serial],
                    )?;
                    display
                }
            };
            let version = Version {
                zone: parse_name(&display).unwrap_or_else(|_| origin.clone()),
                generation,
                content_hash,
                parent: commit.base,
                provenance: commit.provenance.clone(),
                actor: commit.actor.to_string(),
                reason: commit.reason.to_string(),
                serial: served_serial,
                records: stored.record_count(),
                created_at_ms: commit.now_ms,
                pinned: false,
            };
            insert_version(tx, &key, &version, &manifest, &layout)?;
            let changes =
                rules::commit_writes(facts.refs, commit.target, generation, commit.reason);
            write_refs(tx, &key, &display, &changes, commit.actor, commit.now_ms)?;
            Ok(Ok(version))
        })
    }
}

impl Store for SqliteStore {
    fn commit(&self, commit: Commit<'_>) -> Result<Version, StoreError> {
        self.commit_with(commit, None)
    }

    fn commit_from(
        &self,
        commit: Commit<'_>,
        base_content: &ZoneContent,
    ) -> Result<Version, StoreError> {
        self.commit_with(commit, Some(base_content))
    }

    fn move_ref(&self, request: MoveRef<'_>) -> Result<(), StoreError> {
        let key = zone_key(request.zone);
        self.write("moving a ref", |tx| {
            let refs = zone_row(tx, &key)?.map(|row| row.refs).unwrap_or_default();
            let breaker = read_breaker(tx, &key)?;
            let exists = match request.to {
                Some(to) => version_exists(tx, &key, to)?,
                None => false,
            };
            let changes = match rules::admit_move(&request, refs, &breaker, exists) {
                Ok(changes) => changes,
                Err(refused) => return Ok(Err(refused)),
            };
            let display = display_name(tx, &key)?;
            write_refs(tx, &key, &display, &changes, request.actor, request.now_ms)?;
            Ok(Ok(()))
        })
    }

    fn refs(&self, zone: &Name) -> Result<Refs, StoreError> {
        let key = zone_key(zone);
        self.read("reading refs", |tx| {
            Ok(Ok(zone_row(tx, &key)?
                .map(|row| row.refs)
                .unwrap_or_default()))
        })
    }

    fn zones(&self) -> Result<Vec<(Name, Refs)>, StoreError> {
        self.read("listing zones", |tx| {
            let mut statement =
                tx.prepare("SELECT display_name, active, canary FROM zones ORDER BY name")?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Refs {
                        active: generation_column(row, 1)?,
                        canary: generation_column(row, 2)?,
                    },
                ))
            })?;
            let mut zones = Vec::new();
            for row in rows {
                let (display, refs) = row?;
                match parse_name(&display) {
                    Ok(name) => zones.push((name, refs)),
                    Err(error) => return Ok(Err(error)),
                }
            }
            Ok(Ok(zones))
        })
    }

    fn version(&self, zone: &Name, generation: Generation) -> Result<Version, StoreError> {
        let key = zone_key(zone);
        self.read("reading a version", |tx| {
            Ok(match read_version(tx, &key, generation)? {
                None => Err(StoreError::NotFound {
                    zone: zone.clone(),
                    generation,
                }),
                Some(row) => row.map(|(version, _)| version),
            })
        })
    }

    fn content(&self, zone: &Name, generation: Generation) -> Result<ZoneContent, StoreError> {
        let key = zone_key(zone);
        self.read("reading content", |tx| {
            read_content(tx, &key, zone, generation)
        })
    }

    fn content_changes(
        &self,
        zone: &Name,
        from: Generation,
        to: Generation,
    ) -> Result<Option<ContentChanges>, StoreError> {
        let key = zone_key(zone);
        self.read("reading content changes", |tx| {
            read_changes(tx, &key, zone, from, to)
        })
    }

    fn history(&self, zone: &Name, limit: usize) -> Result<Vec<Version>, StoreError> {
        let key = zone_key(zone);
        self.read("reading history", |tx| {
            let mut statement = tx.prepare(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions JOIN zones ON zones.name = versions.zone \
                 WHERE zone = ?1 ORDER BY generation DESC LIMIT ?2"
            ))?;
            let rows = statement.query_map(
                params![key, i64::try_from(limit).unwrap_or(i64::MAX)],
                version_from_row,
            )?;
            let mut versions = Vec::new();
            for row in rows {
                match row? {
                    Ok((version, _)) => versions.push(version),
                    Err(error) => return Ok(Err(error)),
                }
            }
            Ok(Ok(versions))
        })
    }

    fn set_pinned(&self, request: SetPinned<'_>) -> Result<(), StoreError> {
        let key = zone_key(request.zone);
        self.write("pinning a version", |tx| {
            let updated = tx.execute(
                "UPDATE versions SET pinned = ?3 WHERE zone = ?1 AND generation = ?2",
                params![key, sql(request.generation.0), request.pinned],
            )?;
            if updated == 0 {
                return Ok(Err(StoreError::NotFound {
                    zone: request.zone.clone(),
                    generation: request.generation,
                }));
            }
            let display = display_name(tx, &key)?;
            append(
                tx,
                &key,
                &display,
                &NewAuditEntry {
                    at_ms: request.now_ms,
                    actor: request.actor.to_string(),
                    zone: request.zone.clone(),
                    action: if request.pinned {
                        actions::PIN
                    } else {
                        actions::UNPIN
                    }
                    .to_string(),
                    from: None,
                    to: Some(request.generation),
                    reason: request.reason.to_string(),
                },
            )?;
            Ok(Ok(()))
        })
    }

    fn append_audit(&self, entry: NewAuditEntry) -> Result<u64, StoreError> {
        rules::refuse_breaker_entry(&entry)?;
        let key = zone_key(&entry.zone);
        let display = entry.zone.to_ascii();
        self.write("appending to the audit log", |tx| {
            Ok(Ok(append(tx, &key, &display, &entry)?))
        })
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let key = query.zone.as_ref().map(zone_key);
        let limit = limits::AUDIT_PAGE.clamp(query.limit.map(|limit| limit as u64));
        self.read("reading the audit log", |tx| {
            let mut statement = tx.prepare(
                "SELECT sequence, at_ms, actor, zone, action, from_gen, to_gen, reason FROM audit \
                 WHERE (?1 IS NULL OR zone_key = ?1) AND (?2 IS NULL OR at_ms >= ?2) \
                 AND sequence > ?3 ORDER BY sequence LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![
                    key,
                    query.since_ms.map(sql),
                    sql(query.after_sequence.unwrap_or(0)),
                    sql(limit)
                ],
                |row| {
                    Ok((
                        AuditEntry {
                            sequence: unsigned(row.get(0)?),
                            at_ms: unsigned(row.get(1)?),
                            actor: row.get(2)?,
                            zone: Name::root(),
                            action: row.get(4)?,
                            from: generation_column(row, 5)?,
                            to: generation_column(row, 6)?,
                            reason: row.get(7)?,
                        },
                        row.get::<_, String>(3)?,
                    ))
                },
            )?;
            let mut entries = Vec::new();
            for row in rows {
                let (mut entry, zone) = row?;
                match parse_name(&zone) {
                    Ok(zone) => entry.zone = zone,
                    Err(error) => return Ok(Err(error)),
                }
                entries.push(entry);
            }
            Ok(Ok(entries))
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
        self.write("cleaning up", |tx| {
            let Some(row) = zone_row(tx, &key)? else {
                return Ok(Ok(Vec::new()));
            };
            let versions = version_facts(tx, &key)?;
            let Some(clean_up) = rules::select_clean_up(&versions, row.refs, keep_last) else {
                return Ok(Ok(Vec::new()));
            };
            delete_versions(tx, &key, &clean_up.delete)?;
            let display = display_name(tx, &key)?;
            append(
                tx,
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
            )?;
            Ok(Ok(clean_up.delete))
        })
    }

    fn zone_source(&self, zone: &Name) -> Result<Option<String>, StoreError> {
        let key = zone_key(zone);
        self.read("reading the zone's source", |tx| {
            Ok(Ok(tx
                .query_row(
                    "SELECT source FROM zone_sources WHERE zone = ?1",
                    [&key],
                    |row| row.get(0),
                )
                .optional()?))
        })
    }

    fn set_zone_source(&self, zone: &Name, source: &str) -> Result<(), StoreError> {
        let key = zone_key(zone);
        self.write("recording the zone's source", |tx| {
            match zone_row(tx, &key)? {
                Some(row) if row.next_generation > Generation::FIRST => {}
                _ => return Ok(Err(crate::unknown_zone_source(zone))),
            }
            tx.execute(
                "INSERT INTO zone_sources (zone, source) VALUES (?1, ?2) \
                 ON CONFLICT (zone) DO UPDATE SET source = excluded.source",
                params![key, source],
            )?;
            Ok(Ok(()))
        })
    }

    fn breaker(&self, zone: &Name) -> Result<Breaker, StoreError> {
        let key = zone_key(zone);
        self.read("reading the breaker", |tx| Ok(Ok(read_breaker(tx, &key)?)))
    }

    fn trip_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        let key = zone_key(request.zone);
        self.write("tripping the breaker", |tx| {
            if zone_row(tx, &key)?.is_none() {
                tx.execute(
                    "INSERT INTO zones (name, display_name, next_generation) VALUES (?1, ?2, ?3)",
                    params![key, request.zone.to_ascii(), sql(Generation::FIRST.0)],
                )?;
            }
            let tripped =
                read_breaker(tx, &key)?.trip(request.reason, request.actor, request.now_ms);
            write_breaker(tx, &key, &tripped, actions::BREAKER_TRIP, &request)?;
            Ok(Ok(tripped))
        })
    }

    fn thaw_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        let key = zone_key(request.zone);
        self.write("thawing the breaker", |tx| {
            let thawed = match rules::thaw(
                request.zone,
                read_breaker(tx, &key)?,
                request.reason,
                request.actor,
                request.now_ms,
            ) {
                Ok(thawed) => thawed,
                Err(refused) => return Ok(Err(refused)),
            };
            write_breaker(tx, &key, &thawed, actions::BREAKER_THAW, &request)?;
            Ok(Ok(thawed))
        })
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        let connection = self.lock();
        // Asked every few milliseconds by a follower: the statement is prepared once.
        connection
            .prepare_cached("SELECT value FROM meta WHERE key = 'change_counter'")
            .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
            .map(unsigned)
            .map_err(|e| backend(&self.path, "reading the change counter", e))
    }

    fn check_integrity(&self) -> Result<(), StoreError> {
        self.read("checking integrity", |tx| check_all(tx))
    }
}

/// The columns [`version_from_row`] reads, for a join of versions with zones.
const VERSION_COLUMNS: &str = "zones.display_name, generation, content_hash, parent, provenance, \
     rollback_to, actor, reason, serial, records, created_at_ms, pinned, manifest";

/// [`VERSION_COLUMNS`] with an empty manifest, for reads that do not need it.
const VERSION_METADATA_COLUMNS: &str = "zones.display_name, generation, content_hash, parent, \
     provenance, rollback_to, actor, reason, serial, records, created_at_ms, pinned, x''";

/// A version and its manifest, or why the row is not one.
type VersionRow = Result<(Version, Vec<u8>), StoreError>;

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<VersionRow> {
    let display: String = row.get(0)?;
    let generation = Generation(unsigned(row.get(1)?));
    let hash: Vec<u8> = row.get(2)?;
    let kind: String = row.get(4)?;
    let rollback_to = generation_column(row, 5)?;
    let serial: i64 = row.get(8)?;
    let corrupt = |what: &str| StoreError::Corrupt {
        detail: format!("zone {display} generation {generation}: {what}"),
    };
    let zone = match parse_name(&display) {
        Ok(zone) => zone,
        Err(error) => return Ok(Err(error)),
    };
    let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else {
        return Ok(Err(corrupt("the content hash is not 32 bytes")));
    };
    let Some(provenance) = Provenance::from_kind(&kind, rollback_to) else {
        return Ok(Err(corrupt(&format!("unknown provenance {kind:?}"))));
    };
    let Ok(serial) = u32::try_from(serial) else {
        return Ok(Err(corrupt(&format!("serial {serial} is out of range"))));
    };
    Ok(Ok((
        Version {
            zone,
            generation,
            content_hash: ContentHash(hash),
            parent: generation_column(row, 3)?,
            provenance,
            actor: row.get(6)?,
            reason: row.get(7)?,
            serial,
            records: unsigned(row.get(9)?),
            created_at_ms: unsigned(row.get(10)?),
            pinned: row.get(11)?,
        },
        row.get(12)?,
    )))
}

fn read_version(
    tx: &Connection,
    key: &str,
    generation: Generation,
) -> rusqlite::Result<Option<VersionRow>> {
    tx.query_row(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM versions JOIN zones ON zones.name = versions.zone \
             WHERE zone = ?1 AND generation = ?2"
        ),
        params![key, sql(generation.0)],
        version_from_row,
    )
    .optional()
}

fn read_content(
    tx: &Connection,
    key: &str,
    zone: &Name,
    generation: Generation,
) -> rusqlite::Result<Result<ZoneContent, StoreError>> {
    let (version, manifest) = match read_version(tx, key, generation)? {
        None => {
            return Ok(Err(StoreError::NotFound {
                zone: zone.clone(),
                generation,
            }))
        }
        Some(Err(error)) => return Ok(Err(error)),
        Some(Ok(found)) => found,
    };
    let corrupt = |what: String| {
        Ok(Err(StoreError::Corrupt {
            detail: format!("zone {key} generation {generation}: {what}"),
        }))
    };
    if manifest.is_empty() {
        return read_delta_content(tx, key, zone, &version);
    }
    let Some(hashes) = buckets::decode_manifest(&manifest) else {
        return corrupt("the bucket manifest is torn".to_string());
    };
    let mut statement =
        tx.prepare_cached("SELECT bytes FROM blobs WHERE zone = ?1 AND hash = ?2")?;
    let mut bucket_bytes = Vec::with_capacity(hashes.len());
    for (index, hash) in hashes.iter().enumerate() {
        let bytes: Option<Vec<u8>> = statement
            .query_row(params![key, hash.as_slice()], |row| row.get(0))
            .optional()?;
        match bytes {
            None => return corrupt(format!("bucket {index} is missing")),
            Some(bytes) if buckets::hash(&bytes) != *hash => {
                return corrupt(format!("bucket {index} does not match its hash"))
            }
            Some(bytes) => bucket_bytes.push(bytes),
        }
    }
    let content =
        match buckets::assemble(version.zone.clone(), bucket_bytes.iter().map(Vec::as_slice)) {
            Ok(content) => content,
            Err(error) => return corrupt(format!("the content does not decode: {error}")),
        };
    if !content.has_hash(&version.content_hash) {
        return corrupt(format!(
            "the content hashes to {} but the version says {}",
            content.hash(),
            version.content_hash
        ));
    }
    Ok(Ok(content))
}

/// The content of a version stored as a change: its checkpoint's content with the changes
/// since applied, verified against the version's hash.
fn read_delta_content(
    tx: &Connection,
    key: &str,
    zone: &Name,
    version: &Version,
) -> rusqlite::Result<Result<ZoneContent, StoreError>> {
    let generation = version.generation;
    let corrupt = |what: String| {
        Ok(Err(StoreError::Corrupt {
            detail: format!("zone {key} generation {generation}: {what}"),
        }))
    };
    let Some(StoredAs::Change { checkpoint, since }) = stored_as(tx, key, generation)? else {
        return corrupt(
            "it has no manifest, and no readable checkpoint and changes either".to_string(),
        );
    };
    match stored_as(tx, key, checkpoint)? {
        Some(StoredAs::Checkpoint) => {}
        _ => return corrupt(format!("its checkpoint {checkpoint} is missing or not one")),
    }
    let mut content = match read_content(tx, key, zone, checkpoint)? {
        Ok(content) => content,
        Err(error) => return Ok(Err(error)),
    };
    content.replace_sets(&since.removed, since.added);
    if !content.has_hash(&version.content_hash) {
        return corrupt(format!(
            "the content hashes to {} but the version says {}",
            content.hash(),
            version.content_hash
        ));
    }
    Ok(Ok(content))
}

/// The sets of the buckets whose keys differ between two versions with the same number of
/// buckets; `None` when the layouts differ.
fn read_changes(
    tx: &Connection,
    key: &str,
    zone: &Name,
    from: Generation,
    to: Generation,
) -> rusqlite::Result<Result<Option<ContentChanges>, StoreError>> {
    // Recorded changes first: they need neither manifest (a megabyte each at 1M names), nor
    // `from` itself (a version's own changes outlive its cleaned-up parent).
    let metadata = tx
        .query_row(
            &format!(
                "SELECT {VERSION_METADATA_COLUMNS} FROM versions JOIN zones \
                 ON zones.name = versions.zone WHERE zone = ?1 AND generation = ?2"
            ),
            params![key, sql(to.0)],
            version_from_row,
        )
        .optional()?;
    let version = match metadata {
        None => {
            return Ok(Err(StoreError::NotFound {
                zone: zone.clone(),
                generation: to,
            }))
        }
        Some(Err(error)) => return Ok(Err(error)),
        Some(Ok((version, _))) => version,
    };
    match recorded_changes(tx, key, from, to)? {
        Ok(Some(changes)) => {
            return Ok(Ok(Some(ContentChanges {
                version,
                removed: changes.removed,
                added: changes.added,
            })))
        }
        Ok(None) => {}
        Err(error) => return Ok(Err(error)),
    }
    if !version_exists(tx, key, from)? {
        return Ok(Err(StoreError::NotFound {
            zone: zone.clone(),
            generation: from,
        }));
    }
    let mut manifests = Vec::new();
    let mut to_version = None;
    for generation in [from, to] {
        match read_version(tx, key, generation)? {
            None => {
                return Ok(Err(StoreError::NotFound {
                    zone: zone.clone(),
                    generation,
                }))
            }
            Some(Err(error)) => return Ok(Err(error)),
            Some(Ok((_, manifest))) if manifest.is_empty() => return Ok(Ok(None)),
            Some(Ok((version, manifest))) => {
                let Some(hashes) = buckets::decode_manifest(&manifest) else {
                    return Ok(Err(StoreError::Corrupt {
                        detail: format!(
                            "zone {key} generation {generation}: the bucket manifest is torn"
                        ),
                    }));
                };
                manifests.push(hashes);
                to_version = Some(version);
            }
        }
    }
    let (Some(version), [old, new]) = (to_version, manifests.as_slice()) else {
        return Ok(Ok(None));
    };
    // Reading most buckets of both versions costs more than reading one version whole.
    let changed = old.iter().zip(new).filter(|(a, b)| a != b).count();
    if old.len() != new.len() || changed * 2 > old.len() {
        return Ok(Ok(None));
    }
    let mut statement =
        tx.prepare_cached("SELECT bytes FROM blobs WHERE zone = ?1 AND hash = ?2")?;
    let mut sides = [Vec::new(), Vec::new()];
    for (index, (old_hash, new_hash)) in old.iter().zip(new).enumerate() {
        if old_hash == new_hash {
            continue;
        }
        for (side, hash) in sides.iter_mut().zip([old_hash, new_hash]) {
            let bytes: Option<Vec<u8>> = statement
                .query_row(params![key, hash.as_slice()], |row| row.get(0))
                .optional()?;
            let sets = match bytes {
                Some(bytes) if buckets::hash(&bytes) == *hash => model::decode_record_sets(&bytes),
                _ => {
                    return Ok(Err(StoreError::Corrupt {
                        detail: format!(
                            "zone {key}: bucket {index} is missing or does not match its hash"
                        ),
                    }))
                }
            };
            match sets {
                Ok(sets) => side.extend(sets),
                Err(error) => {
                    return Ok(Err(StoreError::Corrupt {
                        detail: format!("zone {key}: bucket {index} does not decode: {error}"),
                    }))
                }
            }
        }
    }
    let [removed, added] = sides;
    Ok(Ok(Some(ContentChanges {
        version,
        removed,
        added,
    })))
}

/// The recorded changes from `from` to `to`, composed along `to`'s parents; `None` when a
/// version on the way has none, `from` is not among its ancestors, or it lies more than
/// [`limits::STORE_CHANGES_CHAIN`] versions back.
fn recorded_changes(
    tx: &Connection,
    key: &str,
    from: Generation,
    to: Generation,
) -> rusqlite::Result<Result<Option<NameChanges>, StoreError>> {
    let chain = usize::try_from(limits::STORE_CHANGES_CHAIN.default).unwrap_or(usize::MAX);
    let mut statement = tx.prepare_cached(
        "SELECT parent, changes FROM versions WHERE zone = ?1 AND generation = ?2",
    )?;
    let mut steps = Vec::new();
    let mut generation = to;
    while generation != from {
        if steps.len() >= chain {
            return Ok(Ok(None));
        }
        let row: Option<(Option<i64>, Option<Vec<u8>>)> = statement
            .query_row(params![key, sql(generation.0)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((Some(parent), Some(bytes))) = row else {
            return Ok(Ok(None));
        };
        let parent = Generation(unsigned(parent));
        if parent < from {
            return Ok(Ok(None));
        }
        match NameChanges::decode(&bytes) {
            Ok(changes) => steps.push(changes),
            Err(error) => {
                return Ok(Err(StoreError::Corrupt {
                    detail: format!("zone {key} generation {generation}: {error}"),
                }))
            }
        }
        generation = parent;
    }
    steps.reverse();
    Ok(Ok(Some(if steps.len() == 1 {
        steps.remove(0)
    } else {
        NameChanges::compose(steps)
    })))
}

/// How a new version is stored: its manifest, the buckets it needs that may be new, and its
/// recorded changes.
struct Layout {
    hashes: Vec<BucketHash>,
    /// Indexes into `hashes` of the buckets to write (deduplicated by the store).
    written: Vec<(usize, Vec<u8>)>,
    changes: Option<Vec<u8>>,
    /// Stored as a change: the checkpoint and the changes since it (`hashes` is empty).
    delta: Option<(Generation, Vec<u8>)>,
}

/// Stores the layout's buckets (deduplicated) and returns the version's manifest.
fn store_buckets(tx: &Connection, key: &str, layout: &Layout) -> rusqlite::Result<Vec<u8>> {
    let mut statement =
        tx.prepare_cached("INSERT OR IGNORE INTO blobs (zone, hash, bytes) VALUES (?1, ?2, ?3)")?;
    for (index, bytes) in &layout.written {
        statement.execute(params![key, layout.hashes[*index].as_slice(), bytes])?;
    }
    Ok(buckets::encode_manifest(&layout.hashes))
}

/// Every bucket of the content, and the changes found by comparing the changed buckets with
/// the base's: the whole-zone path (import, rollback, full replace, an unverified base).
fn layout_whole(
    tx: &Connection,
    key: &str,
    base: Option<Generation>,
    stored: &ZoneContent,
) -> rusqlite::Result<Layout> {
    let (buckets, sets) = buckets::split_with_sets(stored);
    let hashes: Vec<BucketHash> = buckets.iter().map(|bytes| buckets::hash(bytes)).collect();
    let changes = match base {
        Some(base) => record_changes(tx, key, base, &hashes, &sets)?,
        None => None,
    };
    Ok(Layout {
        hashes,
        written: buckets.into_iter().enumerate().collect(),
        changes,
        delta: None,
    })
}

/// The base's manifest when `base_content` is the stored content of `base` (same hash,
/// scheme 2): then the new version can be stored as a change of it.
fn verified_base(
    tx: &Connection,
    key: &str,
    base: Generation,
    base_content: &ZoneContent,
) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(match read_version(tx, key, base)? {
        Some(Ok((version, manifest))) if version.content_hash == base_content.hash() => {
            Some(manifest)
        }
        _ => None,
    })
}

/// The new version (`generation`) as a change of its verified base, at the cost of the
/// change: stored as its changes since the base's checkpoint (an empty manifest; a read
/// starts from the checkpoint and applies them), or, once the checkpoint is
/// [`limits::STORE_DELTA_CHAIN`] generations back or the changes since it outgrow
/// [`limits::STORE_RECORDED_CHANGE_RRSETS`], as a new checkpoint: the old one's buckets
/// with those holding a name changed since rebuilt. A version stored as a change needs only
/// its checkpoint, so clean-up may delete the versions in between. `None` (store it whole)
/// when the change is too large to record, the checkpoint cannot be read, or the bucket
/// count changes.
fn layout_change(
    tx: &Connection,
    key: &str,
    base: Generation,
    generation: Generation,
    base_content: &ZoneContent,
    stored: &ZoneContent,
) -> rusqlite::Result<Option<Layout>> {
    let limit = usize::try_from(limits::STORE_RECORDED_CHANGE_RRSETS.default).unwrap_or(usize::MAX);
    let changed = base_content.changed_sets(stored);
    if changed.len() > limit {
        return Ok(None);
    }
    let names: BTreeSet<Name> = changed
        .iter()
        .map(|set| set.key.name.to_lowercase())
        .collect();
    let before: Vec<RecordSet> = names
        .iter()
        .flat_map(|name| base_content.sets_at(name).cloned())
        .collect();
    let after: Vec<&RecordSet> = names.iter().flat_map(|name| stored.sets_at(name)).collect();
    let changes = NameChanges::between(before, after);
    let Some(stored_as) = stored_as(tx, key, base)? else {
        return Ok(None);
    };
    let (checkpoint, since) = match stored_as {
        StoredAs::Checkpoint => (base, changes.clone()),
        StoredAs::Change { checkpoint, since } => {
            (checkpoint, NameChanges::compose([since, changes.clone()]))
        }
    };
    let chain = limits::STORE_DELTA_CHAIN.default;
    if generation.0.saturating_sub(checkpoint.0) < chain && since.len() <= limit {
        return Ok(Some(Layout {
            hashes: Vec::new(),
            written: Vec::new(),
            changes: Some(changes.encode()),
            delta: Some((checkpoint, since.encode())),
        }));
    }
    let Some(Ok((_, manifest))) = read_version(tx, key, checkpoint)? else {
        return Ok(None);
    };
    let touched: BTreeSet<Name> = since
        .removed
        .iter()
        .chain(&since.added)
        .map(|set| set.name.to_lowercase())
        .collect();
    let Some((hashes, written)) = rebuild_buckets(tx, key, &manifest, &touched, stored)? else {
        return Ok(None);
    };
    Ok(Some(Layout {
        hashes,
        written,
        changes: Some(changes.encode()),
        delta: None,
    }))
}

/// How a version is stored.
enum StoredAs {
    /// With a manifest of its own.
    Checkpoint,
    /// As its changes since a checkpoint.
    Change {
        checkpoint: Generation,
        since: NameChanges,
    },
}

/// How `generation` is stored; `None` when it is missing or its stored change is damaged.
fn stored_as(
    tx: &Connection,
    key: &str,
    generation: Generation,
) -> rusqlite::Result<Option<StoredAs>> {
    /// The manifest, the checkpoint and the changes since it.
    type StoredRow = (Vec<u8>, Option<i64>, Option<Vec<u8>>);
    let row: Option<StoredRow> = tx
        .prepare_cached(
            "SELECT manifest, checkpoint, since_checkpoint FROM versions \
             WHERE zone = ?1 AND generation = ?2",
        )?
        .query_row(params![key, sql(generation.0)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    Ok(match row {
        Some((manifest, _, _)) if !manifest.is_empty() => Some(StoredAs::Checkpoint),
        Some((_, Some(checkpoint), Some(since))) => {
            NameChanges::decode(&since)
                .ok()
                .map(|since| StoredAs::Change {
                    checkpoint: Generation(unsigned(checkpoint)),
                    since,
                })
        }
        _ => None,
    })
}

/// A manifest's keys and the buckets rebuilt for it, by index.
type RebuiltBuckets = (Vec<BucketHash>, Vec<(usize, Vec<u8>)>);

/// The buckets of `manifest` with every bucket holding one of `names` rebuilt from `stored`:
/// the new manifest's keys and the rebuilt buckets. `None` when the bucket count of
/// `stored` differs or a bucket cannot be read.
#[allow(clippy::type_complexity)]
fn rebuild_buckets(
    tx: &Connection,
    key: &str,
    manifest: &[u8],
    names: &BTreeSet<Name>,
    stored: &ZoneContent,
) -> rusqlite::Result<Option<RebuiltBuckets>> {
    let Some(mut hashes) = buckets::decode_manifest(manifest) else {
        return Ok(None);
    };
    let count = buckets::bucket_count(stored.rrset_count());
    if hashes.len() != count {
        return Ok(None);
    }
    let per_bucket = buckets::by_bucket(names, count);
    let mut statement =
        tx.prepare_cached("SELECT bytes FROM blobs WHERE zone = ?1 AND hash = ?2")?;
    let mut written = Vec::with_capacity(per_bucket.len());
    for (index, bucket_names) in &per_bucket {
        let bytes: Option<Vec<u8>> = statement
            .query_row(params![key, hashes[*index].as_slice()], |row| row.get(0))
            .optional()?;
        let Some(bytes) = bytes.filter(|bytes| buckets::hash(bytes) == hashes[*index]) else {
            return Ok(None);
        };
        let Some(rebuilt) = buckets::rebuild(&bytes, bucket_names, stored) else {
            return Ok(None);
        };
        hashes[*index] = buckets::hash(&rebuilt);
        written.push((*index, rebuilt));
    }
    Ok(Some((hashes, written)))
}

/// The stored changes of a new version from its base: the names whose sets differ, found
/// by comparing the sets of the buckets whose keys differ. `None` (a follower then loads the
/// whole content) when the bucket layouts differ, the base's buckets cannot be read, more
/// than three quarters of the buckets changed, or more sets changed than
/// [`limits::STORE_RECORDED_CHANGE_RRSETS`].
fn record_changes(
    tx: &Connection,
    key: &str,
    base: Generation,
    hashes: &[BucketHash],
    sets: &[Vec<&RecordSet>],
) -> rusqlite::Result<Option<Vec<u8>>> {
    let limit = usize::try_from(limits::STORE_RECORDED_CHANGE_RRSETS.default).unwrap_or(usize::MAX);
    let Some(Ok((_, manifest))) = read_version(tx, key, base)? else {
        return Ok(None);
    };
    let Some(old) = buckets::decode_manifest(&manifest) else {
        return Ok(None);
    };
    if old.len() != hashes.len() {
        return Ok(None);
    }
    let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != hashes[i]).collect();
    // Reading almost every bucket again is a full replace: not worth recording.
    if changed.len() * 4 > old.len() * 3 {
        return Ok(None);
    }
    let mut statement =
        tx.prepare_cached("SELECT bytes FROM blobs WHERE zone = ?1 AND hash = ?2")?;
    let mut before = Vec::new();
    for &index in &changed {
        let bytes: Option<Vec<u8>> = statement
            .query_row(params![key, old[index].as_slice()], |row| row.get(0))
            .optional()?;
        match bytes.filter(|bytes| buckets::hash(bytes) == old[index]) {
            Some(bytes) => match model::decode_record_sets(&bytes) {
                Ok(decoded) => before.extend(decoded),
                Err(_) => return Ok(None),
            },
            None => return Ok(None),
        }
    }
    let after = changed
        .iter()
        .flat_map(|&index| sets[index].iter().copied());
    let changes = NameChanges::between(before, after);
    Ok((changes.len() <= limit).then(|| changes.encode()))
}

fn insert_version(
    tx: &Connection,
    key: &str,
    version: &Version,
    manifest: &[u8],
    layout: &Layout,
) -> rusqlite::Result<()> {
    let rollback_to = match version.provenance {
        Provenance::Rollback { to } => Some(sql(to.0)),
        _ => None,
    };
    tx.execute(
        "INSERT INTO versions (zone, generation, content_hash, manifest, parent, provenance, \
         rollback_to, actor, reason, serial, records, created_at_ms, changes, checkpoint, \
         since_checkpoint) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            key,
            sql(version.generation.0),
            version.content_hash.0.as_slice(),
            manifest,
            version.parent.map(|parent| sql(parent.0)),
            version.provenance.kind(),
            rollback_to,
            version.actor,
            version.reason,
            version.serial,
            sql(version.records),
            sql(version.created_at_ms),
            layout.changes.as_deref(),
            layout
                .delta
                .as_ref()
                .map(|(checkpoint, _)| sql(checkpoint.0)),
            layout.delta.as_ref().map(|(_, since)| since.as_slice()),
        ],
    )?;
    Ok(())
}

/// Carries out what the rules decided: the refs, ever-active, one audit entry and one
/// change-counter step per write.
fn write_refs(
    tx: &Connection,
    key: &str,
    display: &str,
    changes: &rules::RefChanges,
    actor: &str,
    now_ms: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE zones SET active = ?2, canary = ?3 WHERE name = ?1",
        params![
            key,
            changes.refs.active.map(|active| sql(active.0)),
            changes.refs.canary.map(|canary| sql(canary.0))
        ],
    )?;
    if let Some(active) = changes.activated() {
        tx.execute(
            "UPDATE versions SET activated = 1 WHERE zone = ?1 AND generation = ?2",
            params![key, sql(active.0)],
        )?;
    }
    for write in &changes.writes {
        let entry = NewAuditEntry {
            at_ms: now_ms,
            actor: actor.to_string(),
            zone: Name::root(),
            action: write.action().to_string(),
            from: write.from,
            to: write.to,
            reason: write.reason.clone(),
        };
        append(tx, key, display, &entry)?;
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'change_counter'",
            [],
        )?;
    }
    Ok(())
}

/// Appends an audit entry; `display` is the zone as written in the entry (`entry.zone` is
/// not read).
fn append(
    tx: &Connection,
    key: &str,
    display: &str,
    entry: &NewAuditEntry,
) -> rusqlite::Result<u64> {
    tx.execute(
        "INSERT INTO audit (at_ms, actor, zone_key, zone, action, from_gen, to_gen, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            sql(entry.at_ms),
            entry.actor,
            key,
            display,
            entry.action,
            entry.from.map(|g| sql(g.0)),
            entry.to.map(|g| sql(g.0)),
            entry.reason,
        ],
    )?;
    Ok(unsigned(tx.last_insert_rowid()))
}

/// Every version of the zone as clean-up sees it.
fn version_facts(tx: &Connection, key: &str) -> rusqlite::Result<Vec<rules::VersionFacts>> {
    let mut statement = tx.prepare_cached(
        "SELECT generation, pinned, activated, checkpoint FROM versions WHERE zone = ?1",
    )?;
    let rows = statement.query_map([key], |row| {
        Ok(rules::VersionFacts {
            generation: Generation(unsigned(row.get(0)?)),
            pinned: row.get::<_, i64>(1)? != 0,
            activated: row.get::<_, i64>(2)? != 0,
            read_from: row
                .get::<_, Option<i64>>(3)?
                .map(|checkpoint| Generation(unsigned(checkpoint))),
        })
    })?;
    rows.collect()
}

/// Deletes versions, then the buckets no remaining version of the zone uses.
fn delete_versions(tx: &Connection, key: &str, delete: &[Generation]) -> rusqlite::Result<()> {
    let doomed: HashSet<Generation> = delete.iter().copied().collect();
    let mut used: HashSet<BucketHash> = HashSet::new();
    let mut orphaned: HashSet<BucketHash> = HashSet::new();
    {
        let mut statement =
            tx.prepare("SELECT generation, manifest FROM versions WHERE zone = ?1")?;
        let rows = statement.query_map([key], |row| {
            Ok((Generation(unsigned(row.get(0)?)), row.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (generation, manifest) = row?;
            // A torn manifest names no buckets; check_integrity reports it.
            let hashes = buckets::decode_manifest(&manifest).unwrap_or_default();
            if doomed.contains(&generation) {
                orphaned.extend(hashes);
            } else {
                used.extend(hashes);
            }
        }
    }
    let mut remove_version =
        tx.prepare_cached("DELETE FROM versions WHERE zone = ?1 AND generation = ?2")?;
    for generation in delete {
        remove_version.execute(params![key, sql(generation.0)])?;
    }
    let mut remove_blob = tx.prepare_cached("DELETE FROM blobs WHERE zone = ?1 AND hash = ?2")?;
    for hash in orphaned.difference(&used) {
        remove_blob.execute(params![key, hash.as_slice()])?;
    }
    Ok(())
}

fn check_all(tx: &Connection) -> rusqlite::Result<Result<(), StoreError>> {
    let corrupt = |detail: String| Ok(Err(StoreError::Corrupt { detail }));
    let verdict: String = tx.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return corrupt(format!("SQLite integrity check: {verdict}"));
    }
    let dangling: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .optional()?;
    if let Some(table) = dangling {
        return corrupt(format!("a row of table {table} points at a missing row"));
    }
    let mut statement = tx.prepare(
        "SELECT name, display_name, next_generation, active, canary, \
         (SELECT MAX(generation) FROM versions WHERE zone = zones.name) FROM zones ORDER BY name",
    )?;
    let zones = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                Generation(unsigned(row.get(2)?)),
                generation_column(row, 3)?,
                generation_column(row, 4)?,
                generation_column(row, 5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (key, display, next_generation, active, canary, newest) in zones {
        if newest.is_some_and(|newest| newest >= next_generation) {
            return corrupt(format!(
                "zone {display}: generation {} exists but the next generation is {next_generation}",
                newest.unwrap_or(next_generation)
            ));
        }
        for (reference, target) in [(RefName::Active, active), (RefName::Canary, canary)] {
            if let Some(target) = target {
                if !version_exists(tx, &key, target)? {
                    return corrupt(format!(
                        "zone {display}: the {reference} ref points at missing generation {target}"
                    ));
                }
            }
        }
        let stored = read_breaker(tx, &key)?;
        let replayed = breaker_from_log(tx, &key)?;
        if stored != replayed {
            return corrupt(format!(
                "zone {display}: the breaker is stored as {stored} but the audit log replays \
                 to {replayed}"
            ));
        }
        let zone = match parse_name(&display) {
            Ok(zone) => zone,
            Err(error) => return Ok(Err(error)),
        };
        let all = generations(
            tx,
            "SELECT generation FROM versions WHERE zone = ?1 ORDER BY generation",
            [&key],
        )?;
        for generation in all {
            if let Err(error) = read_content(tx, &key, &zone, generation)? {
                return Ok(Err(error));
            }
            let changes: Option<Vec<u8>> = tx.query_row(
                "SELECT changes FROM versions WHERE zone = ?1 AND generation = ?2",
                params![key, sql(generation.0)],
                |row| row.get(0),
            )?;
            if let Some(Err(error)) = changes.map(|bytes| NameChanges::decode(&bytes)) {
                return corrupt(format!("zone {display} generation {generation}: {error}"));
            }
        }
    }
    Ok(Ok(()))
}

fn zone_row(tx: &Connection, key: &str) -> rusqlite::Result<Option<ZoneRow>> {
    tx.query_row(
        "SELECT next_generation, last_serial, active, canary FROM zones WHERE name = ?1",
        [key],
        |row| {
            Ok(ZoneRow {
                next_generation: Generation(unsigned(row.get(0)?)),
                last_serial: row
                    .get::<_, Option<i64>>(1)?
                    .and_then(|serial| u32::try_from(serial).ok()),
                refs: Refs {
                    active: generation_column(row, 2)?,
                    canary: generation_column(row, 3)?,
                },
            })
        },
    )
    .optional()
}

/// The zone's breaker as stored with its refs; closed for an unknown zone.
fn read_breaker(tx: &Connection, key: &str) -> rusqlite::Result<Breaker> {
    let row = tx
        .query_row(
            "SELECT breaker_state, breaker_reason, breaker_actor, breaker_at_ms FROM zones \
             WHERE name = ?1",
            [key],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    unsigned(row.get(3)?),
                ))
            },
        )
        .optional()?;
    Ok(match row {
        None => Breaker::Closed,
        Some((state, reason, actor, at_ms)) => match state.as_str() {
            "tripped" => Breaker::Tripped {
                reason,
                at_ms,
                actor,
            },
            "thawed" => Breaker::Thawed {
                at_ms,
                actor,
                reason,
            },
            // Only the three names are ever written; anything else reads as closed, and
            // check_integrity reports the mismatch with the audit log.
            _ => Breaker::Closed,
        },
    })
}

/// Stores `breaker` as the zone's breaker and appends the audit entry of the change.
fn write_breaker(
    tx: &Connection,
    key: &str,
    breaker: &Breaker,
    action: &str,
    request: &BreakerChange<'_>,
) -> rusqlite::Result<()> {
    let (reason, actor, at_ms) = match breaker {
        Breaker::Closed => ("", "", 0),
        Breaker::Tripped {
            reason,
            at_ms,
            actor,
        }
        | Breaker::Thawed {
            at_ms,
            actor,
            reason,
        } => (reason.as_str(), actor.as_str(), *at_ms),
    };
    tx.execute(
        "UPDATE zones SET breaker_state = ?2, breaker_reason = ?3, breaker_actor = ?4, \
         breaker_at_ms = ?5 WHERE name = ?1",
        params![key, breaker.state_name(), reason, actor, sql(at_ms)],
    )?;
    let display = display_name(tx, key)?;
    append(
        tx,
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
    )?;
    // Followers re-read the zone: its breaker is part of what they show.
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'change_counter'",
        [],
    )?;
    Ok(())
}

/// Replays the zone's breaker entries from the audit log (contract 7 and 10 agree).
fn breaker_from_log(tx: &Connection, key: &str) -> rusqlite::Result<Breaker> {
    let mut statement = tx.prepare(
        "SELECT sequence, at_ms, actor, action, reason FROM audit \
         WHERE zone_key = ?1 AND action IN (?2, ?3) ORDER BY sequence",
    )?;
    let entries = statement
        .query_map(
            params![key, actions::BREAKER_TRIP, actions::BREAKER_THAW],
            |row| {
                Ok(AuditEntry {
                    sequence: unsigned(row.get(0)?),
                    at_ms: unsigned(row.get(1)?),
                    actor: row.get(2)?,
                    zone: Name::root(),
                    action: row.get(3)?,
                    from: None,
                    to: None,
                    reason: row.get(4)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Breaker::from_audit(&entries))
}

fn display_name(tx: &Connection, key: &str) -> rusqlite::Result<String> {
    tx.query_row(
        "SELECT display_name FROM zones WHERE name = ?1",
        [key],
        |row| row.get(0),
    )
}

fn version_exists(tx: &Connection, key: &str, generation: Generation) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM versions WHERE zone = ?1 AND generation = ?2)",
        params![key, sql(generation.0)],
        |row| row.get(0),
    )
}

fn generations(
    tx: &Connection,
    query: &str,
    parameters: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Generation>> {
    let mut statement = tx.prepare(query)?;
    let rows = statement.query_map(parameters, |row| Ok(Generation(unsigned(row.get(0)?))))?;
    rows.collect()
}

fn generation_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Generation>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .map(|value| Generation(unsigned(value))))
}

fn parse_name(text: &str) -> Result<Name, StoreError> {
    Name::from_ascii(text).map_err(|error| StoreError::Corrupt {
        detail: format!("stored zone name {text:?} does not parse: {error}"),
    })
}

/// SQLite integers are signed; counters and times above 2^63 do not occur, saturate if so.
fn sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Inverse of [`sql`]; the store never writes negative values.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn backend(path: &Path, operation: &str, error: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        location: path.display().to_string(),
        operation: operation.to_string(),
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fixtures;
    use model::RecordType;

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        (dir, store)
    }

    fn commit(store: &SqliteStore, content: &ZoneContent) -> Version {
        let base = store.refs(content.origin()).unwrap().active;
        store
            .commit(fixtures::commit(content, base, RefName::Active))
            .unwrap()
    }

    #[test]
    fn a_one_percent_change_of_a_large_zone_stores_a_small_fraction_of_it() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 20_000, 0);
        assert!(zone.rrset_count() >= 20_000);
        commit(&store, &zone);
        let first = store.stored_bytes();
        let mut changed = zone.clone();
        for host in (0..20_000).step_by(100) {
            changed.put_rrset(fixtures::host_set("big.test.", host, 99));
        }
        commit(&store, &changed);
        let added = store.stored_bytes() - first;
        assert!(
            added * 4 < first,
            "a 1 % change added {added} bytes to a zone stored in {first}"
        );
    }

    fn manifest_of(store: &SqliteStore, generation: Generation) -> Vec<u8> {
        store
            .lock()
            .query_row(
                "SELECT manifest FROM versions WHERE generation = ?1",
                [sql(generation.0)],
                |row| row.get(0),
            )
            .unwrap()
    }

    /// Commits `content` derived from the active content, handing the store that base.
    fn commit_change(store: &SqliteStore, base: &Version, content: &ZoneContent) -> Version {
        let base_content = store.content(content.origin(), base.generation).unwrap();
        store
            .commit_from(
                fixtures::commit(content, Some(base.generation), RefName::Active),
                &base_content,
            )
            .unwrap()
    }

    /// `zone` with host `step` readdressed (variant `step`).
    fn readdressed(zone: &ZoneContent, step: u32) -> ZoneContent {
        let mut changed = zone.clone();
        let origin = zone.origin().to_ascii();
        changed.put_rrset(fixtures::host_set(&origin, step, (step % 200) as u8 + 1));
        changed
    }

    #[test]
    fn a_change_committed_from_its_base_reads_back_as_a_whole_commit_does() {
        let (_whole_dir, whole) = open();
        let (_delta_dir, delta) = open();
        let zone = fixtures::content("big.test.", 1, 5_000, 0);
        let base = commit(&whole, &zone);
        assert_eq!(commit(&delta, &zone), base);
        let base_content = delta.content(zone.origin(), base.generation).unwrap();
        let mut changed = one_percent_changed(&base_content);
        changed.remove_rrset(&fixtures::host_set("big.test.", 7, 0).name, RecordType::A);
        let request = |content| fixtures::commit(content, Some(base.generation), RefName::Active);
        let by_whole = whole.commit(request(&changed)).unwrap();
        let by_delta = delta.commit_from(request(&changed), &base_content).unwrap();
        assert_eq!(by_delta, by_whole);
        assert!(
            manifest_of(&delta, by_delta.generation).is_empty(),
            "stored as a change"
        );
        let read = |store: &SqliteStore| {
            let content = store.content(zone.origin(), by_whole.generation).unwrap();
            let changes = store
                .content_changes(zone.origin(), base.generation, by_whole.generation)
                .unwrap()
                .expect("recorded changes");
            (content, changed_names(&changes))
        };
        assert_eq!(read(&delta), read(&whole));
        delta.check_integrity().unwrap();
    }

    #[test]
    fn every_delta_chain_ends_in_a_checkpoint_stored_as_a_whole_commit_stores_it() {
        let (_whole_dir, whole) = open();
        let (_delta_dir, delta) = open();
        let mut zone = fixtures::content("chain.test.", 1, 2_000, 0);
        let chain = limits::STORE_DELTA_CHAIN.default as u32;
        commit(&whole, &zone);
        let mut delta_base = commit(&delta, &zone);
        for step in 0..chain * 2 + 3 {
            zone = readdressed(&zone, step);
            let whole_base = commit(&whole, &zone);
            delta_base = commit_change(&delta, &delta_base, &zone);
            assert_eq!(delta_base, whole_base);
            let manifest = manifest_of(&delta, delta_base.generation);
            let is_checkpoint = (step + 1) % chain == 0;
            assert_eq!(
                !manifest.is_empty(),
                is_checkpoint,
                "step {step}: a checkpoint every {chain} versions"
            );
            if is_checkpoint {
                assert_eq!(manifest, manifest_of(&whole, whole_base.generation));
            }
            assert_eq!(
                delta.content(zone.origin(), delta_base.generation).unwrap(),
                zone.with_serial(delta_base.serial)
            );
        }
        delta.check_integrity().unwrap();
    }

    #[test]
    fn clean_up_keeps_the_checkpoint_a_kept_version_is_read_from_and_nothing_between() {
        let (_dir, store) = open();
        let mut zone = fixtures::content("chain.test.", 1, 500, 0);
        let checkpoint = commit(&store, &zone);
        let mut base = checkpoint.clone();
        for step in 0..10 {
            zone = readdressed(&zone, step);
            base = commit_change(&store, &base, &zone);
        }
        assert!(manifest_of(&store, base.generation).is_empty(), "a change");
        let deleted = store.clean_up(zone.origin(), 2, "test", 3).unwrap();
        assert!(
            !deleted.is_empty() && !deleted.contains(&checkpoint.generation),
            "the versions in between go, the checkpoint stays: {deleted:?}"
        );
        assert_eq!(
            store.content(zone.origin(), base.generation).unwrap(),
            zone.with_serial(base.serial)
        );
        // Once a newer checkpoint is all that kept versions are read from, the old one goes.
        for step in 10..(limits::STORE_DELTA_CHAIN.default as u32 + 12) {
            zone = readdressed(&zone, step);
            base = commit_change(&store, &base, &zone);
        }
        let deleted = store.clean_up(zone.origin(), 2, "test", 4).unwrap();
        assert!(deleted.contains(&checkpoint.generation), "{deleted:?}");
        assert_eq!(
            store.content(zone.origin(), base.generation).unwrap(),
            zone.with_serial(base.serial)
        );
        store.check_integrity().unwrap();
    }

    /// Safety contract 12 in bytes: a 1 % change of a 1,000,000-name zone writes a small
    /// multiple of the changed records' bytes (their sets before and after, recorded as the
    /// version's change), not the buckets and the manifest of the zone.
    #[test]
    fn a_one_percent_change_of_a_million_names_writes_a_small_multiple_of_the_change() {
        let (_dir, store) = open();
        let hosts = 1_000_000;
        let zone = fixtures::content("million.test.", 1, hosts, 0);
        let base = commit(&store, &zone);
        let before = store.stored_bytes();
        let mut changed = store.content(zone.origin(), base.generation).unwrap();
        let mut changed_bytes = 0;
        for host in (0..hosts).step_by(100) {
            let set = fixtures::host_set("million.test.", host, 99);
            let mut encoded = Vec::new();
            set.encode(&mut encoded);
            changed_bytes += encoded.len() as u64;
            changed.put_rrset(set);
        }
        commit_change(&store, &base, &changed);
        let written = store.stored_bytes() - before;
        println!(
            "1 % of {hosts} names: {changed_bytes} bytes of changed records, {written} bytes \
             written ({:.2}x)",
            written as f64 / changed_bytes as f64
        );
        assert!(
            written <= 3 * changed_bytes,
            "a 1 % change wrote {written} bytes for {changed_bytes} bytes of changed records"
        );
    }

    #[test]
    fn a_change_committed_from_a_base_that_is_not_the_stored_one_is_stored_whole_and_right() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 1_000, 0);
        let base = commit(&store, &zone);
        // What the caller claims is the base's content is not: the store must not trust it.
        let wrong_base = fixtures::content("big.test.", 1, 1_000, 5);
        let changed = one_percent_changed(&zone);
        let version = store
            .commit_from(
                Commit {
                    content: &changed,
                    base: Some(base.generation),
                    target: RefName::Active,
                    provenance: Provenance::Planner,
                    actor: "test",
                    reason: "a change",
                    now_ms: 2,
                    automation: true,
                },
                &wrong_base,
            )
            .unwrap();
        let stored = store.content(zone.origin(), version.generation).unwrap();
        assert_eq!(stored, changed.with_serial(version.serial));
        store.check_integrity().unwrap();
    }

    #[test]
    fn an_invalid_change_from_a_verified_base_is_refused() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 1_000, 0);
        let base = commit(&store, &zone);
        let mut broken = zone.clone();
        broken.remove_rrset(zone.origin(), RecordType::NS);
        let refused = store.commit_from(
            Commit {
                content: &broken,
                base: Some(base.generation),
                target: RefName::Active,
                provenance: Provenance::Planner,
                actor: "test",
                reason: "no apex NS",
                now_ms: 2,
                automation: true,
            },
            &zone,
        );
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "{refused:?}"
        );
        assert_eq!(
            store.refs(zone.origin()).unwrap().active,
            Some(base.generation)
        );
    }

    /// The 5,000-host test zone with every hundredth host readdressed (variant 99).
    fn one_percent_changed(zone: &ZoneContent) -> ZoneContent {
        let mut changed = zone.clone();
        for host in (0..5_000).step_by(100) {
            changed.put_rrset(fixtures::host_set("big.test.", host, 99));
        }
        changed
    }

    /// The names changed by a 1 % change, and the apex (whose serial the store raised).
    fn changed_names(changes: &ContentChanges) -> Vec<String> {
        let mut names: Vec<String> = changes
            .added
            .iter()
            .chain(&changes.removed)
            .map(|set| set.name.to_ascii())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn a_commit_records_exactly_the_names_it_changed() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 5_000, 0);
        let first = commit(&store, &zone).generation;
        let mut changed = one_percent_changed(&zone);
        changed.remove_rrset(&fixtures::name("host1.big.test."), model::RecordType::A);
        changed.put_rrset(fixtures::host_set("big.test.", 9_999, 1));
        let second = commit(&store, &changed).generation;
        let changes = store
            .content_changes(zone.origin(), first, second)
            .unwrap()
            .expect("recorded at commit");
        let mut expected: Vec<String> = (0..5_000)
            .step_by(100)
            .chain([1, 9_999])
            .map(|host| format!("host{host}.big.test."))
            .chain(["big.test.".to_string()])
            .collect();
        expected.sort();
        assert_eq!(changed_names(&changes), expected);
        let stored = store.content(zone.origin(), second).unwrap();
        for set in &changes.added {
            assert_eq!(
                stored.get(&set.name, set.rtype),
                Some(set),
                "added is the new state"
            );
        }
        assert!(!changes
            .added
            .iter()
            .any(|set| set.name.to_ascii() == "host1.big.test."));
    }

    #[test]
    fn changes_across_several_commits_are_composed_and_a_rollback_falls_back_to_buckets() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 2_000, 0);
        let first = commit(&store, &zone).generation;
        let mut changed = zone.clone();
        changed.put_rrset(fixtures::host_set("big.test.", 5, 1));
        commit(&store, &changed);
        changed.put_rrset(fixtures::host_set("big.test.", 5, 2));
        changed.put_rrset(fixtures::host_set("big.test.", 6, 2));
        let third = commit(&store, &changed).generation;
        let changes = store
            .content_changes(zone.origin(), first, third)
            .unwrap()
            .expect("recorded at commit");
        assert_eq!(
            changed_names(&changes),
            ["big.test.", "host5.big.test.", "host6.big.test."]
        );
        assert!(changes
            .removed
            .contains(&fixtures::host_set("big.test.", 5, 0)));
        assert!(changes
            .added
            .contains(&fixtures::host_set("big.test.", 5, 2)));
        // Backwards is no chain of parents: the changed buckets are read instead.
        let back = store
            .content_changes(zone.origin(), third, first)
            .unwrap()
            .expect("same bucket layout");
        assert!(back.added.contains(&fixtures::host_set("big.test.", 5, 0)));
        assert!(back.added.len() > 3);
    }

    #[test]
    fn a_full_replace_has_no_cheap_changes_either_way() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 2_000, 0);
        let first = commit(&store, &zone).generation;
        let second = commit(&store, &fixtures::content("big.test.", 1, 2_000, 7)).generation;
        assert_eq!(
            store.content_changes(zone.origin(), first, second).unwrap(),
            None
        );
        assert_eq!(
            store.content_changes(zone.origin(), second, first).unwrap(),
            None
        );
    }

    #[test]
    fn content_changes_hold_exactly_the_sets_of_changed_buckets() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 5_000, 0);
        let first = commit(&store, &zone).generation;
        let changed = one_percent_changed(&zone);
        let second = commit(&store, &changed).generation;
        let changes = store
            .content_changes(zone.origin(), first, second)
            .unwrap()
            .expect("same bucket layout");
        assert_eq!(changes.version.generation, second);
        assert!(changes.added.len() < zone.rrset_count() / 2);
        for host in (0..5_000).step_by(100) {
            let new = fixtures::host_set("big.test.", host, 99);
            assert!(
                changes.added.contains(&new),
                "host{host} is among the added sets"
            );
            assert!(changes
                .removed
                .contains(&fixtures::host_set("big.test.", host, 0)));
        }
        // Every set of the new version is either unchanged or among the added sets.
        for set in changed.rrsets() {
            assert!(zone.rrsets().any(|old| old == set) || changes.added.contains(set));
        }
    }

    #[test]
    fn identical_content_is_stored_once() {
        let (_dir, store) = open();
        let zone = fixtures::content("big.test.", 1, 5_000, 0);
        commit(&store, &zone);
        let first = store.stored_bytes();
        // Same records again: only the bucket holding the SOA (its serial rises) and the
        // manifest are new.
        commit(&store, &zone);
        let added = store.stored_bytes() - first;
        let manifest = 32 * buckets::bucket_count(zone.rrset_count()) as u64;
        assert!(
            added < manifest + first / 50,
            "re-committing identical content added {added} bytes to {first}"
        );
    }

    #[test]
    fn the_connection_is_durable_write_ahead_and_checks_foreign_keys() {
        let (_dir, store) = open();
        let connection = store.lock();
        let pragma = |name: &str| -> String {
            connection
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|value| format!("{value:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("synchronous"), "Integer(2)", "FULL");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(
            pragma("busy_timeout"),
            format!("Integer({})", limits::STORE_BUSY_TIMEOUT_MS.default)
        );
    }

    #[test]
    fn a_ref_to_a_missing_version_is_refused_by_the_schema_too() {
        let (_dir, store) = open();
        commit(&store, &fixtures::content("example.test.", 1, 3, 0));
        let connection = store.lock();
        assert!(connection
            .execute("UPDATE zones SET active = 99", [])
            .is_err());
        assert!(connection
            .execute("DELETE FROM versions WHERE generation = 1", [])
            .is_err());
    }

    #[test]
    fn the_audit_table_refuses_updates_and_deletes() {
        let (_dir, store) = open();
        commit(&store, &fixtures::content("example.test.", 1, 3, 0));
        let connection = store.lock();
        assert!(connection
            .execute("UPDATE audit SET reason = 'rewritten'", [])
            .is_err());
        assert!(connection.execute("DELETE FROM audit", []).is_err());
    }

    #[test]
    fn blobs_of_deleted_versions_are_gone_unless_shared() {
        let (_dir, store) = open();
        let origin = fixtures::name("example.test.");
        for variant in 0..6u8 {
            commit(&store, &fixtures::content("example.test.", 1, 100, variant));
        }
        let deleted = store.clean_up(&origin, 2, "test", 1).unwrap();
        assert_eq!(
            deleted,
            vec![Generation(1), Generation(2), Generation(3), Generation(4)]
        );
        let connection = store.lock();
        let mut statement = connection.prepare("SELECT manifest FROM versions").unwrap();
        let mut used: HashSet<BucketHash> = HashSet::new();
        for manifest in statement
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .unwrap()
        {
            used.extend(buckets::decode_manifest(&manifest.unwrap()).unwrap());
        }
        let blobs: i64 = connection
            .query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0))
            .unwrap();
        assert_eq!(blobs as usize, used.len(), "every remaining blob is in use");
    }

    #[test]
    fn a_damaged_bucket_is_reported_as_corrupt() {
        let (_dir, store) = open();
        let origin = fixtures::name("example.test.");
        commit(&store, &fixtures::content("example.test.", 1, 10, 0));
        store
            .lock()
            .execute("UPDATE blobs SET bytes = X'00'", [])
            .unwrap();
        assert!(matches!(
            store.content(&origin, Generation(1)),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            store.check_integrity(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn an_empty_or_foreign_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let Err(error) = SqliteStore::open(&empty) else {
            panic!("an empty file is refused");
        };
        assert!(error.to_string().contains("the file is empty"), "{error}");
        assert_eq!(
            std::fs::metadata(&empty).unwrap().len(),
            0,
            "left as it was"
        );

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
            .unwrap();
        let Err(error) = SqliteStore::open(&foreign) else {
            panic!("a foreign database is refused");
        };
        assert!(error.to_string().contains("not a dnsward store"), "{error}");
        let tables: i64 = Connection::open(&foreign)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1, "nothing added to it");
        let mode: String = Connection::open(&foreign)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "its journal mode untouched");

        let not_sqlite = dir.path().join("text.db");
        std::fs::write(&not_sqlite, b"this is a zone file, not a store\n").unwrap();
        assert!(SqliteStore::open(&not_sqlite).is_err());

        let new = dir.path().join("new.db");
        SqliteStore::open(&new).expect("a missing file is a new store");
        SqliteStore::open(&new).expect("and opens again");
    }

    #[test]
    fn a_version_1_file_gains_a_closed_breaker_per_zone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            commit(&store, &fixtures::content("example.test.", 1, 3, 0));
        }
        let connection = Connection::open(&path).unwrap();
        for column in [
            "breaker_state",
            "breaker_reason",
            "breaker_actor",
            "breaker_at_ms",
        ] {
            connection
                .execute(&format!("ALTER TABLE zones DROP COLUMN {column}"), [])
                .unwrap();
        }
        for column in ["changes", "checkpoint", "since_checkpoint"] {
            connection
                .execute(&format!("ALTER TABLE versions DROP COLUMN {column}"), [])
                .unwrap();
        }
        connection
            .execute("UPDATE schema_version SET version = 1", [])
            .unwrap();
        drop(connection);
        let store = SqliteStore::open(&path).unwrap();
        let zone = fixtures::name("example.test.");
        assert_eq!(store.breaker(&zone).unwrap(), Breaker::Closed);
        let request = BreakerChange {
            zone: &zone,
            reason: "test",
            actor: "test",
            now_ms: 1,
        };
        assert!(!store.trip_breaker(request).unwrap().allows_automation());
        store.check_integrity().unwrap();
    }

    #[test]
    fn a_version_2_file_keeps_its_versions_and_records_changes_from_then_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let zone = fixtures::content("example.test.", 1, 300, 0);
        let first = {
            let store = SqliteStore::open(&path).unwrap();
            commit(&store, &zone).generation
        };
        let connection = Connection::open(&path).unwrap();
        for column in ["changes", "checkpoint", "since_checkpoint"] {
            connection
                .execute(&format!("ALTER TABLE versions DROP COLUMN {column}"), [])
                .unwrap();
        }
        connection
            .execute("UPDATE schema_version SET version = 2", [])
            .unwrap();
        drop(connection);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.content(zone.origin(), first).unwrap(), zone);
        let mut changed = zone.clone();
        changed.put_rrset(fixtures::host_set("example.test.", 7, 99));
        let second = commit(&store, &changed).generation;
        let changes = store
            .content_changes(zone.origin(), first, second)
            .unwrap()
            .expect("recorded");
        assert!(changes
            .added
            .contains(&fixtures::host_set("example.test.", 7, 99)));
        assert_eq!(changes.added.len(), 3, "host7 and the apex: {changes:?}");
        store.check_integrity().unwrap();
    }

    #[test]
    fn an_unknown_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        let error = SqliteStore::open(&path).unwrap_err();
        assert!(error.to_string().contains("schema version 99"), "{error}");
    }
}
