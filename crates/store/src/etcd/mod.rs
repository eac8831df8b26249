//! The etcd store: the same contract as SQLite (it passes the same suite), on an etcd
//! cluster that several dnsward nodes share.
//!
//! Each zone has one record (`zones/ZONE`: refs, breaker, counters, see [`keys`]); every
//! write to the zone is one etcd transaction that compares that record's mod revision with
//! the one the call read, so any other writer in between (another node's enactor, a
//! clean-up, a breaker trip) makes the transaction fail and the call re-reads and decides
//! again with the same [`rules`] every backend uses. A transaction that appends to the audit
//! log also compares `audit-next`, so sequence numbers are dense and strictly rising.
//!
//! Content is written first, the ref last: a version's buckets (content-addressed, idempotent
//! puts, only those its base does not already hold) go in batches below etcd's request and
//! operation limits, then one transaction writes the version and moves the ref. Clean-up
//! deletes versions in a transaction that compares the zone record, then sweeps buckets no
//! remaining version uses in batches that each compare and move the zone record again, so a
//! commit that read the zone before a sweep batch fails its compare and writes its buckets
//! again instead of referring to a deleted one.
//!
//! A call etcd does not answer within the timeout has an unknown outcome: the transaction is
//! sent once more (its compares make that safe: it cannot apply twice); if that one fails its
//! compare, a commit reads its version back to see whether the first one applied (the version
//! carries the call's token); anything else reports the outcome as unknown, never as failed.
//!
//! Followers do not poll: [`Store::change_feed`] is a watch on the zone records, resumed
//! from the revision it last read and re-read whole when etcd has compacted that history
//! ([`feed`]).
//!
//! The trait is synchronous and etcd's client is async: the store owns a small tokio runtime
//! and blocks the calling thread on it (from a thread of its own when the caller is itself
//! inside a runtime).

mod feed;
mod keys;
mod records;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, KvClient, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse,
};
use model::invariants;
use model::{
    limits, AuditEntry, Breaker, Generation, Name, RecordSet, RefName, Refs, Version, ZoneContent,
};

use crate::buckets::{self, BucketHash};
use crate::changes::NameChanges;
use crate::{
    actions, rules, zone_key, AuditQuery, BreakerChange, Commit, ContentChanges, MoveRef,
    NewAuditEntry, SetPinned, Store, StoreError,
};
use keys::{prefix_end, Keys};
use records::{AuditRecord, BreakerRecord, VersionRecord, ZoneRecord};

/// Bucket hashes per manifest chunk: 512 KiB, so a 65,536-bucket manifest is four values
/// each well below etcd's request limit.
const MANIFEST_CHUNK_HASHES: usize = 16_384;
/// Keys read per range request when the store pages through a prefix.
const PAGE: i64 = 1_000;
/// Gets per read transaction when the store reads many buckets.
const READ_BATCH: usize = 64;
/// How long a call waits before it tries another member after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Batches of buckets read or written at once.
const IN_FLIGHT: usize = 8;

/// Where the etcd store is: `[store] etcd = { endpoints, prefix, timeout_ms }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `host:port` (or `http://host:port`) of the cluster's members.
    pub endpoints: Vec<String>,
    /// Every key of this store starts with it (several stores can share a cluster).
    pub prefix: String,
    /// How long one call may take before its outcome counts as unknown
    /// ([`limits::STORE_ETCD_TIMEOUT_MS`]).
    pub timeout: Duration,
}

impl EtcdConfig {
    /// The default prefix.
    pub const DEFAULT_PREFIX: &'static str = "/dnsward/";

    /// `endpoints` with the default prefix and timeout.
    pub fn new(endpoints: Vec<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            prefix: EtcdConfig::DEFAULT_PREFIX.to_string(),
            timeout: Duration::from_millis(limits::STORE_ETCD_TIMEOUT_MS.default),
        }
    }
}

/// A [`Store`] on etcd. Opening never waits for the cluster: a store whose cluster is down
/// opens, and each call fails with [`StoreError::Backend`] until the cluster answers.
pub struct EtcdStore {
    runtime: Option<tokio::runtime::Runtime>,
    kv: KvClient,
    lease: etcd_client::LeaseClient,
    keys: Keys,
    timeout: Duration,
    location: String,
    /// The connection change feeds watch on ([`feed`]).
    watching: Client,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        // A runtime dropped inside another runtime's task would panic; this one's tasks are
        // all finished (every call blocks until its future completes).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What one write transaction does: compares, then writes.
#[derive(Debug, Default)]
struct Write {
    /// The zone record: its key, the mod revision the call read (0: absent), its new value.
    zone: Option<(String, i64, Vec<u8>)>,
    puts: Vec<(String, Vec<u8>)>,
    deletes: Vec<String>,
    /// Audit entries with their sequence numbers and zone keys, and the `audit-next` head
    /// they were numbered from.
    audit: Vec<(u64, String, AuditRecord)>,
    audit_head: Option<AuditHead>,
}

/// The `audit-next` key as read: the next sequence number and its mod revision.
#[derive(Debug, Clone, Copy)]
struct AuditHead {
    next: u64,
    revision: i64,
}

/// How a write transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It applied, at this store revision.
    Applied(i64),
    /// A compare failed: someone else wrote what the call read. Re-read and decide again.
    Lost,
}

/// A zone's record as read, with its mod revision (0 when absent).
type ZoneRead = (Option<ZoneRecord>, i64);

impl EtcdStore {
    /// A store on the cluster at `config.endpoints`, under `config.prefix`. Fails only when
    /// the configuration is unusable (no endpoint, a malformed endpoint) or the runtime
    /// cannot start; an unreachable cluster is not an error here.
    pub fn open(config: &EtcdConfig) -> Result<EtcdStore, StoreError> {
        let location = format!("etcd {}", config.endpoints.join(","));
        let backend = |detail: String| StoreError::Backend {
            location: location.clone(),
            operation: "connecting".to_string(),
            detail,
        };
        if config.endpoints.is_empty() {
            return Err(backend(
                "no endpoint is configured; list the cluster's members in \
                 [store] etcd = { endpoints = [\"127.0.0.1:2379\"] }"
                    .to_string(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("etcd-store")
            .enable_all()
            .build()
            .map_err(|error| backend(format!("cannot start its runtime: {error}")))?;
        let options = ConnectOptions::new()
            .with_connect_timeout(config.timeout)
            .with_timeout(config.timeout)
            .with_keep_alive(Duration::from_secs(2), config.timeout);
        let client = runtime
            .block_on(Client::connect(
                config.endpoints.clone(),
                Some(options.clone()),
            ))
            .map_err(|error| backend(error.to_string()))?;
        // The feed's own connection asks for a leader: etcd cancels a watch on a member
        // that has none instead of leaving it silent.
        let watching = runtime
            .block_on(Client::connect(
                config.endpoints.clone(),
                Some(options.with_require_leader(true)),
            ))
            .map_err(|error| backend(error.to_string()))?;
        Ok(EtcdStore {
            runtime: Some(runtime),
            kv: client.kv_client(),
            lease: client.lease_client(),
            keys: Keys::new(&config.prefix),
            timeout: config.timeout,
            location,
            watching,
        })
    }

    /// Runs `future` to completion on the store's runtime, blocking the calling thread.
    fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            unreachable!("the runtime is taken only when the store is dropped");
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        // Inside a runtime (an async caller): block another thread, not this one's runtime.
        std::thread::scope(
            |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }

    fn backend(&self, operation: &str, detail: impl Into<String>) -> StoreError {
        StoreError::Backend {
            location: self.location.clone(),
            operation: operation.to_string(),
            detail: detail.into(),
        }
    }

    fn unknown_outcome(&self, operation: &str) -> StoreError {
        self.backend(
            operation,
            format!(
                "etcd did not confirm the write within {} ms; the outcome is unknown, \
                 re-read before acting",
                (self.timeout * 2).as_millis()
            ),
        )
    }

    /// One etcd call, made by `attempt`, retried while it fails and the store's timeout has
    /// not passed: a member that is down answers a connection error at once, and the next
    /// attempt goes to another member. Only for calls that are safe to repeat (reads, and
    /// idempotent puts of content-addressed blobs); a timeout or failure is a backend error.
    async fn call<T, F, Fut>(&self, operation: &str, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let error = match tokio::time::timeout(left, attempt(self.kv.clone())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!(
                    "no answer within {} ms; check that the cluster has a leader \
                     (`etcdctl endpoint status`)",
                    self.timeout.as_millis()
                ),
            };
            if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                return Err(self.backend(operation, error));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn get_response(
        &self,
        operation: &str,
        key: Vec<u8>,
        options: Option<GetOptions>,
    ) -> Result<etcd_client::GetResponse, StoreError> {
        self.call(operation, |mut kv| {
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, options).await }
        })
        .await
    }

    async fn txn_response(
        &self,
        operation: &str,
        txn: Txn,
    ) -> Result<etcd_client::TxnResponse, StoreError> {
        self.call(operation, |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
    }

    async fn get(&self, operation: &str, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .get_response(operation, key.as_bytes().to_vec(), None)
            .await?;
        Ok(response.kvs().first().cloned())
    }

    /// Every key from `start` up to the end of `prefix`, in key order (or reverse), at most
    /// `limit` of them, read page by page.
    async fn range(
        &self,
        operation: &str,
        prefix: &str,
        start: Option<String>,
        limit: Option<usize>,
        descending: bool,
        keys_only: bool,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let mut out: Vec<KeyValue> = Vec::new();
        let mut low = start.unwrap_or_else(|| prefix.to_string()).into_bytes();
        let mut high = prefix_end(prefix);
        loop {
            let wanted = limit.map_or(PAGE, |limit| PAGE.min((limit - out.len()) as i64));
            let mut options = GetOptions::new()
                .with_range(high.clone())
                .with_limit(wanted)
                .with_sort(
                    SortTarget::Key,
                    if descending {
                        SortOrder::Descend
                    } else {
                        SortOrder::Ascend
                    },
                );
            if keys_only {
                options = options.with_keys_only();
            }
            let response = self
                .get_response(operation, low.clone(), Some(options))
                .await?;
            let page = response.kvs();
            let full = page.len() as i64 == wanted;
            if let Some(last) = page.last() {
                if descending {
                    high = last.key().to_vec();
                } else {
                    low = last.key().to_vec();
                    low.push(0);
                }
            }
            out.extend_from_slice(page);
            if !full || limit.is_some_and(|limit| out.len() >= limit) || !response.more() {
                return Ok(out);
            }
        }
    }

    /// Every key under `prefix` with its value, in key order.
    async fn all_under(&self, operation: &str, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        self.range(operation, prefix, None, None, false, false)
            .await
    }

    async fn read_zone(&self, key: &str) -> Result<ZoneRead, StoreError> {
        let zone_key = self.keys.zone(key);
        match self.get("reading the zone", &zone_key).await? {
            None => Ok((None, 0)),
            Some(found) => Ok((
                Some(records::decode(found.key(), found.value())?),
                found.mod_revision(),
            )),
        }
    }

    async fn read_audit_head(&self) -> Result<AuditHead, StoreError> {
        let key = self.keys.audit_next();
        match self.get("reading the audit log's head", &key).await? {
            None => Ok(AuditHead {
                next: 1,
                revision: 0,
            }),
            Some(found) => {
                let next = std::str::from_utf8(found.value())
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        detail: format!("etcd key {key} does not hold a sequence number"),
                    })?;
                Ok(AuditHead {
                    next,
                    revision: found.mod_revision(),
                })
            }
        }
    }

    async fn read_version_record(
        &self,
        zone_key: &str,
        generation: Generation,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let key = self.keys.version(zone_key, generation);
        match self.get("reading a version", &key).await? {
            None => Ok(None),
            Some(found) => Ok(Some(records::decode(found.key(), found.value())?)),
        }
    }

    async fn version_records(&self, zone_key: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let found = self
            .all_under("listing versions", &self.keys.versions(zone_key))
            .await?;
        found
            .iter()
            .map(|kv| records::decode(kv.key(), kv.value()))
            .collect()
    }

    /// The values of `keys` (`None` where a key is absent), in order.
    async fn get_many(
        &self,
        operation: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for group in keys.chunks(READ_BATCH * IN_FLIGHT) {
            let batches = group.chunks(READ_BATCH).map(|batch| {
                let txn = Txn::new().and_then(
                    batch
                        .iter()
                        .map(|key| TxnOp::get(key.as_str(), None))
                        .collect::<Vec<_>>(),
                );
                async move { self.txn_response(operation, txn).await }
            });
            for response in join_all(batches).await {
                for op in response?.op_responses() {
                    match op {
                        TxnOpResponse::Get(get) => {
                            out.push(get.kvs().first().map(|kv| kv.value().to_vec()))
                        }
                        _ => {
                            return Err(self.backend(operation, "etcd answered a get with a write"))
                        }
                    }
                }
            }
        }
        if out.len() != keys.len() {
            return Err(self.backend(operation, "etcd answered fewer gets than asked"));
        }
        Ok(out)
    }

    /// Puts every blob (content-addressed: a put of an existing key writes the same bytes) in
    /// batches below etcd's request limits.
    async fn put_blobs(&self, blobs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let max_ops = limits::STORE_ETCD_TXN_OPS.default as usize;
        let max_bytes = limits::STORE_ETCD_TXN_BYTES.default as usize;
        let mut batches: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
        let mut bytes = 0;
        for blob in blobs {
            let size = blob.0.len() + blob.1.len();
            match batches.last_mut() {
                Some(batch) if batch.len() < max_ops && bytes + size <= max_bytes => {
                    batch.push(blob);
                    bytes += size;
                }
                _ => {
                    batches.push(vec![blob]);
                    bytes = size;
                }
            }
        }
        for group in batches.chunks(IN_FLIGHT) {
            let writes = group.iter().map(|batch| {
                let txn = Txn::new().and_then(
                    batch
                        .iter()
                        .map(|(key, value)| TxnOp::put(key.as_str(), value.clone(), None))
                        .collect::<Vec<_>>(),
                );
                async move { self.txn_response("writing content", txn).await }
            });
            for written in join_all(writes).await {
                written?;
            }
        }
        Ok(())
    }

    fn transaction(&self, write: &Write) -> Txn {
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        for (key, value) in &write.puts {
            ops.push(TxnOp::put(key.as_str(), value.clone(), None));
        }
        for key in &write.deletes {
            ops.push(TxnOp::delete(key.as_str(), None));
        }
        if let Some((key, revision, value)) = &write.zone {
            compares.push(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                *revision,
            ));
            ops.push(TxnOp::put(key.as_str(), value.clone(), None));
        }
        if let Some(head) = write.audit_head {
            let key = self.keys.audit_next();
            compares.push(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                head.revision,
            ));
            for (sequence, zone, record) in &write.audit {
                let value = records::encode(record);
                ops.push(TxnOp::put(self.keys.audit(*sequence), value.clone(), None));
                ops.push(TxnOp::put(
                    self.keys.zone_audit(zone, *sequence),
                    value,
                    None,
                ));
            }
            let next = head.next + write.audit.len() as u64;
            ops.push(TxnOp::put(key, next.to_string(), None));
        }
        Txn::new().when(compares).and_then(ops)
    }

    /// Runs one write transaction. A write etcd does not confirm (no answer, or an error: a
    /// member down, no leader) is sent again until the store's timeout has passed twice; its
    /// compares keep it from applying twice. When a re-sent one loses its compare, `proof`
    /// (a key and the token the call wrote there) tells whether an earlier one applied;
    /// without a proof, the outcome is reported unknown.
    async fn execute(
        &self,
        operation: &str,
        write: &Write,
        proof: Option<(&str, &str)>,
    ) -> Result<Outcome, StoreError> {
        let txn = self.transaction(write);
        let deadline = tokio::time::Instant::now() + self.timeout * 2;
        let mut uncertain = false;
        loop {
            let mut kv = self.kv.clone();
            let sent = tokio::time::timeout(self.timeout, kv.txn(txn.clone())).await;
            match sent {
                Ok(Ok(response)) if response.succeeded() => {
                    let revision = response.header().map_or(0, |header| header.revision());
                    return Ok(Outcome::Applied(revision));
                }
                Ok(Ok(_)) if !uncertain => return Ok(Outcome::Lost),
                Ok(Ok(_)) => {
                    let Some((key, token)) = proof else {
                        return Err(self.unknown_outcome(operation));
                    };
                    let found = self.get(operation, key).await?;
                    let ours = found
                        .as_ref()
                        .and_then(|kv| records::decode::<VersionRecord>(kv.key(), kv.value()).ok())
                        .is_some_and(|record| record.token == token);
                    return Ok(if ours {
                        Outcome::Applied(found.map_or(0, |kv| kv.mod_revision()))
                    } else {
                        Outcome::Lost
                    });
                }
                Ok(Err(_)) | Err(_) => {
                    uncertain = true;
                    if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(self.unknown_outcome(operation));
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    fn contention(&self, operation: &str) -> StoreError {
        self.backend(
            operation,
            format!(
                "other writers changed the zone {} times in a row while this call decided; \
                 retry later",
                limits::STORE_ETCD_RETRIES.default
            ),
        )
    }

    /// Audit records numbered from `head`.
    fn number(
        head: AuditHead,
        entries: Vec<(String, AuditRecord)>,
    ) -> Vec<(u64, String, AuditRecord)> {
        entries
            .into_iter()
            .enumerate()
            .map(|(index, (zone, record))| (head.next + index as u64, zone, record))
            .collect()
    }

    /// The audit records of a ref change (one per write), as [`rules::RefChanges`] says.
    fn ref_audit(
        zone_key: &str,
        display: &str,
        changes: &rules::RefChanges,
        actor: &str,
        now_ms: u64,
    ) -> Vec<(String, AuditRecord)> {
        changes
            .writes
            .iter()
            .map(|write| {
                (
                    zone_key.to_string(),
                    AuditRecord {
                        zone: display.to_string(),
                        at_ms: now_ms,
                        actor: actor.to_string(),
                        action: write.action().to_string(),
                        from: write.from.map(|g| g.0),
                        to: write.to.map(|g| g.0),
                        reason: write.reason.clone(),
                    },
                )
            })
            .collect()
    }

    /// The blobs a version uses: its manifest chunks and the buckets they list.
    async fn blobs_of(
        &self,
        zone_key: &str,
        record: &VersionRecord,
    ) -> Result<Vec<BucketHash>, StoreError> {
        let chunks = self.manifest_chunks(zone_key, record).await?;
        let mut used: Vec<BucketHash> = Vec::new();
        for (hash, bytes) in chunks {
            used.push(hash);
            used.extend(decode_chunk(zone_key, record.generation, &bytes)?);
        }
        used.extend(record.changes.as_deref().and_then(parse_hash));
        Ok(used)
    }

    /// The manifest chunks of a version, verified against their hashes.
    async fn manifest_chunks(
        &self,
        zone_key: &str,
        record: &VersionRecord,
    ) -> Result<Vec<(BucketHash, Vec<u8>)>, StoreError> {
        let hashes: Vec<BucketHash> = record
            .manifest
            .iter()
            .map(|hex| parse_hash(hex))
            .collect::<Option<_>>()
            .ok_or_else(|| StoreError::Corrupt {
                detail: format!(
                    "zone {zone_key} generation {}: a manifest chunk key is not a SHA-256",
                    record.generation
                ),
            })?;
        let keys = hashes
            .iter()
            .map(|hash| self.keys.blob(zone_key, hash))
            .collect();
        let values = self.get_many("reading a manifest", keys).await?;
        hashes
            .into_iter()
            .zip(values)
            .map(|(hash, value)| match value {
                Some(bytes) if buckets::hash(&bytes) == hash => Ok((hash, bytes)),
                _ => Err(StoreError::Corrupt {
                    detail: format!(
                        "zone {zone_key} generation {}: a manifest chunk is missing or does not \
                         match its hash",
                        record.generation
                    ),
                }),
            })
            .collect()
    }

    /// The bucket keys of a version, in bucket order.
    async fn manifest(
        &self,
        zone_key: &str,
        record: &VersionRecord,
    ) -> Result<Vec<BucketHash>, StoreError> {
        let mut hashes = Vec::new();
        for (_, bytes) in self.manifest_chunks(zone_key, record).await? {
            hashes.extend(decode_chunk(zone_key, record.generation, &bytes)?);
        }
        Ok(hashes)
    }

    /// The record sets of the buckets `hashes`, each verified against its hash.
    async fn bucket_sets(
        &self,
        zone_key: &str,
        generation: u64,
        hashes: &[BucketHash],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let keys = hashes
            .iter()
            .map(|hash| self.keys.blob(zone_key, hash))
            .collect();
        let values = self.get_many("reading content", keys).await?;
        hashes
            .iter()
            .zip(values)
            .enumerate()
            .map(|(index, (hash, value))| match value {
                Some(bytes) if buckets::hash(&bytes) == *hash => Ok(bytes),
                _ => Err(StoreError::Corrupt {
                    detail: format!(
                        "zone {zone_key} generation {generation}: bucket {index} is missing or \
                         does not match its hash"
                    ),
                }),
            })
            .collect()
    }

    async fn read_content(
        &self,
        zone: &Name,
        generation: Generation,
    ) -> Result<ZoneContent, StoreError> {
        let key = zone_key(zone);
        let record = self
            .read_version_record(&key, generation)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                zone: zone.clone(),
                generation,
            })?;
        let version = record.version()?;
        let manifest = self.manifest(&key, &record).await?;
        let bytes = self.bucket_sets(&key, generation.0, &manifest).await?;
        let content = buckets::assemble(version.zone.clone(), bytes.iter().map(Vec::as_slice))
            .map_err(|error| StoreError::Corrupt {
                detail: format!("zone {zone} generation {generation}: {error}"),
            })?;
        if content.hash() != version.content_hash {
            return Err(StoreError::Corrupt {
                detail: format!(
                    "zone {zone} generation {generation}: the content hashes to {} but the \
                     version says {}",
                    content.hash(),
                    version.content_hash
                ),
            });
        }
        Ok(content)
    }

    /// What `commit` stores at `serial`: as a change of its base when `base_content` is the
    /// base's stored content (checked against its hash) and the bucket layout is the same
    /// (validated and stored at the cost of the change), else whole. A whole store of
    /// content from `commit_from` is validated here; [`Store::commit`] validated it before.
    async fn prepare(
        &self,
        key: &str,
        commit: &Commit<'_>,
        base_content: Option<&ZoneContent>,
        serial: u32,
    ) -> Result<Prepared, StoreError> {
        let origin = commit.content.origin();
        let stored = commit.content.with_serial(serial);
        if let (Some(base), Some(base_content)) = (commit.base, base_content) {
            if let Some(record) = self.read_version_record(key, base).await? {
                if record.version()?.content_hash == base_content.hash() {
                    invariants::check_change_valid(
                        base_content,
                        &stored,
                        limits::ZONE_RECORDS.default,
                    )
                    .map_err(|violation| rules::invalid(origin, violation))?;
                    if let Some(ready) = self
                        .prepare_change(key, &record, base_content, &stored, serial)
                        .await?
                    {
                        return Ok(ready);
                    }
                    return Ok(Prepared::new(&stored, serial));
                }
            }
        }
        if base_content.is_some() {
            invariants::check_content_valid(&stored, limits::ZONE_RECORDS.default)
                .map_err(|violation| rules::invalid(origin, violation))?;
        }
        Ok(Prepared::new(&stored, serial))
    }

    /// `stored` as a change of the version `base` (whose content is `base_content`): the
    /// base's manifest with the buckets holding a changed name rebuilt, and the manifest
    /// chunks holding those. `None` when the bucket count differs or a bucket cannot be
    /// read back (then the content is stored whole).
    async fn prepare_change(
        &self,
        key: &str,
        base: &VersionRecord,
        base_content: &ZoneContent,
        stored: &ZoneContent,
        serial: u32,
    ) -> Result<Option<Prepared>, StoreError> {
        let count = buckets::bucket_count(stored.rrset_count());
        let old_chunks = self.manifest_chunks(key, base).await?;
        let mut hashes = Vec::with_capacity(count);
        for (_, bytes) in &old_chunks {
            hashes.extend(decode_chunk(key, base.generation, bytes)?);
        }
        if hashes.len() != count {
            return Ok(None);
        }
        let names: BTreeSet<Name> = base_content
            .changed_sets(stored)
            .iter()
            .map(|set| set.key.name.to_lowercase())
            .collect();
        let per_bucket = buckets::by_bucket(&names, count);
        let indexes: Vec<usize> = per_bucket.keys().copied().collect();
        let old: Vec<BucketHash> = indexes.iter().map(|index| hashes[*index]).collect();
        let bytes = self.bucket_sets(key, base.generation, &old).await?;
        let mut blobs = Vec::with_capacity(indexes.len() + 1);
        for ((index, bucket_names), bytes) in per_bucket.iter().zip(bytes) {
            let Some(rebuilt) = buckets::rebuild(&bytes, bucket_names, stored) else {
                return Ok(None);
            };
            hashes[*index] = buckets::hash(&rebuilt);
            blobs.push((hashes[*index], rebuilt));
        }
        let touched: BTreeSet<usize> = indexes
            .iter()
            .map(|index| index / MANIFEST_CHUNK_HASHES)
            .collect();
        let mut chunks: Vec<BucketHash> = old_chunks.iter().map(|(hash, _)| *hash).collect();
        for chunk in touched {
            let part = &hashes[chunk * MANIFEST_CHUNK_HASHES
                ..((chunk + 1) * MANIFEST_CHUNK_HASHES).min(hashes.len())];
            let bytes = buckets::encode_manifest(part);
            chunks[chunk] = buckets::hash(&bytes);
            blobs.push((chunks[chunk], bytes));
        }
        // What changed, kept with the version (small changes only): it outlives the parent.
        let limit =
            usize::try_from(limits::STORE_RECORDED_CHANGE_RRSETS.default).unwrap_or(usize::MAX);
        let before: Vec<RecordSet> = names
            .iter()
            .flat_map(|name| base_content.sets_at(name).cloned())
            .collect();
        let after: Vec<&RecordSet> = names.iter().flat_map(|name| stored.sets_at(name)).collect();
        let changes = NameChanges::between(before, after);
        // One blob goes in one request: larger changes are not recorded (a follower then
        // compares the two versions' buckets, or loads the zone).
        let max_bytes = limits::STORE_ETCD_TXN_BYTES.default as usize;
        let changes = (changes.len() <= limit)
            .then(|| changes.encode())
            .filter(|bytes| bytes.len() <= max_bytes)
            .map(|bytes| {
                let hash = buckets::hash(&bytes);
                blobs.push((hash, bytes));
                hash
            });
        let mut seen = HashSet::new();
        blobs.retain(|(hash, _)| seen.insert(*hash));
        Ok(Some(Prepared {
            serial,
            content_hash: stored.hash(),
            records: stored.record_count(),
            blobs,
            chunks,
            whole: false,
            changes,
        }))
    }

    async fn commit_async(
        &self,
        commit: &Commit<'_>,
        content_serial: u32,
        base_content: Option<&ZoneContent>,
    ) -> Result<Version, StoreError> {
        const OPERATION: &str = "committing a version";
        let content = commit.content;
        let origin = content.origin();
        let key = zone_key(origin);
        let token = token();
        let mut prepared: Option<Prepared> = None;
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let (record, revision) = self.read_zone(&key).await?;
            let facts = record.as_ref().map(ZoneRecord::facts).unwrap_or_default();
            let breaker = record
                .as_ref()
                .map(|record| Breaker::from(&record.breaker))
                .unwrap_or_default();
            let admitted = rules::admit_commit(
                origin,
                &facts,
                &breaker,
                commit.base,
                commit.automation,
                content_serial,
            )?;
            let ready = match prepared.take() {
                Some(ready) if ready.serial == admitted.serial => ready,
                _ => {
                    self.prepare(&key, commit, base_content, admitted.serial)
                        .await?
                }
            };
            // Blobs the active version holds stay while this call's compare holds: clean-up
            // keeps the active version and moves the zone record when it deletes anything.
            // A change holds only new blobs (the rest is its base's, the active version).
            let held: HashSet<BucketHash> = match facts.refs.active {
                Some(active) if ready.whole => {
                    match self.read_version_record(&key, active).await? {
                        Some(base) => self.blobs_of(&key, &base).await?.into_iter().collect(),
                        None => HashSet::new(),
                    }
                }
                _ => HashSet::new(),
            };
            let missing: Vec<(String, Vec<u8>)> = ready
                .blobs
                .iter()
                .filter(|(hash, _)| !held.contains(hash))
                .map(|(hash, bytes)| (self.keys.blob(&key, hash), bytes.clone()))
                .collect();
            self.put_blobs(missing).await?;

            let mut zone = record.unwrap_or_else(|| ZoneRecord::new(origin));
            zone.next_generation = admitted.generation.next().0;
            zone.last_serial = Some(admitted.serial);
            let version = Version {
                zone: zone.display_name()?,
                generation: admitted.generation,
                content_hash: ready.content_hash,
                parent: commit.base,
                provenance: commit.provenance.clone(),
                actor: commit.actor.to_string(),
                reason: commit.reason.to_string(),
                serial: admitted.serial,
                records: ready.records,
                created_at_ms: commit.now_ms,
                pinned: false,
            };
            let changes = rules::commit_writes(
                facts.refs,
                commit.target,
                admitted.generation,
                commit.reason,
            );
            zone.set_refs(changes.refs);
            let mut version_record =
                VersionRecord::new(&version, ready.manifest_keys(), token.clone());
            version_record.changes = ready.changes.as_ref().map(keys::hex);
            version_record.activated = changes.activated() == Some(admitted.generation);
            let version_key = self.keys.version(&key, admitted.generation);
            let head = self.read_audit_head().await?;
            let audit = Self::ref_audit(&key, &zone.display, &changes, commit.actor, commit.now_ms);
            let write = Write {
                zone: Some((self.keys.zone(&key), revision, records::encode(&zone))),
                puts: vec![(version_key.clone(), records::encode(&version_record))],
                deletes: Vec::new(),
                audit: Self::number(head, audit),
                audit_head: Some(head),
            };
            match self
                .execute(OPERATION, &write, Some((&version_key, &token)))
                .await?
            {
                Outcome::Applied(_) => return Ok(version),
                Outcome::Lost => prepared = Some(ready),
            }
        }
        Err(self.contention(OPERATION))
    }

    async fn move_ref_async(&self, request: &MoveRef<'_>) -> Result<(), StoreError> {
        const OPERATION: &str = "moving a ref";
        let key = zone_key(request.zone);
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let (record, revision) = self.read_zone(&key).await?;
            let refs = record.as_ref().map(ZoneRecord::refs).unwrap_or_default();
            let breaker = record
                .as_ref()
                .map(|record| Breaker::from(&record.breaker))
                .unwrap_or_default();
            let target = match request.to {
                Some(to) => self.read_version_record(&key, to).await?,
                None => None,
            };
            let changes = rules::admit_move(request, refs, &breaker, target.is_some())?;
            let Some(mut zone) = record else {
                // The rules refuse every move of a zone without versions.
                return Err(StoreError::Refused {
                    zone: request.zone.clone(),
                    reason: "the zone has no version".to_string(),
                });
            };
            zone.set_refs(changes.refs);
            let mut puts = Vec::new();
            if let (Some(activated), Some(mut target)) = (changes.activated(), target) {
                if target.generation == activated.0 && !target.activated {
                    target.activated = true;
                    puts.push((self.keys.version(&key, activated), records::encode(&target)));
                }
            }
            let head = self.read_audit_head().await?;
            let audit =
                Self::ref_audit(&key, &zone.display, &changes, request.actor, request.now_ms);
            let write = Write {
                zone: Some((self.keys.zone(&key), revision, records::encode(&zone))),
                puts,
                deletes: Vec::new(),
                audit: Self::number(head, audit),
                audit_head: Some(head),
            };
            if let Outcome::Applied(_) = self.execute(OPERATION, &write, None).await? {
                return Ok(());
            }
        }
        Err(self.contention(OPERATION))
    }

    /// Changes the zone's record (and writes `puts`, appends `audit`) in one transaction that
    /// compares it, re-reading until it holds. `change` decides from the record as read
    /// (`None`: the zone is unknown) and returns the new record, extra puts, audit records
    /// and the call's result.
    async fn update_zone<T>(
        &self,
        operation: &str,
        zone: &Name,
        mut change: impl FnMut(
            Option<ZoneRecord>,
        ) -> Result<(ZoneRecord, Vec<AuditRecord>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let key = zone_key(zone);
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let (record, revision) = self.read_zone(&key).await?;
            let (record, audit, result) = change(record)?;
            let head = self.read_audit_head().await?;
            let audit = audit
                .into_iter()
                .map(|entry| (key.clone(), entry))
                .collect();
            let write = Write {
                zone: Some((self.keys.zone(&key), revision, records::encode(&record))),
                puts: Vec::new(),
                deletes: Vec::new(),
                audit: Self::number(head, audit),
                audit_head: Some(head),
            };
            if let Outcome::Applied(_) = self.execute(operation, &write, None).await? {
                return Ok(result);
            }
        }
        Err(self.contention(operation))
    }

    async fn set_pinned_async(&self, request: &SetPinned<'_>) -> Result<(), StoreError> {
        const OPERATION: &str = "pinning a version";
        let key = zone_key(request.zone);
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let (record, revision) = self.read_zone(&key).await?;
            let not_found = || StoreError::NotFound {
                zone: request.zone.clone(),
                generation: request.generation,
            };
            let zone = record.ok_or_else(not_found)?;
            let mut version = self
                .read_version_record(&key, request.generation)
                .await?
                .ok_or_else(not_found)?;
            version.pinned = request.pinned;
            let head = self.read_audit_head().await?;
            let action = if request.pinned {
                actions::PIN
            } else {
                actions::UNPIN
            };
            let audit = vec![(
                key.clone(),
                AuditRecord {
                    zone: zone.display.clone(),
                    at_ms: request.now_ms,
                    actor: request.actor.to_string(),
                    action: action.to_string(),
                    from: None,
                    to: Some(request.generation.0),
                    reason: request.reason.to_string(),
                },
            )];
            let write = Write {
                // Clean-up decides from pins: moving the zone record fences it.
                zone: Some((self.keys.zone(&key), revision, records::encode(&zone))),
                puts: vec![(
                    self.keys.version(&key, request.generation),
                    records::encode(&version),
                )],
                deletes: Vec::new(),
                audit: Self::number(head, audit),
                audit_head: Some(head),
            };
            if let Outcome::Applied(_) = self.execute(OPERATION, &write, None).await? {
                return Ok(());
            }
        }
        Err(self.contention(OPERATION))
    }

    async fn append_audit_async(&self, entry: &NewAuditEntry) -> Result<u64, StoreError> {
        const OPERATION: &str = "appending to the audit log";
        let key = zone_key(&entry.zone);
        let record = AuditRecord {
            zone: entry.zone.to_ascii(),
            at_ms: entry.at_ms,
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            from: entry.from.map(|g| g.0),
            to: entry.to.map(|g| g.0),
            reason: entry.reason.clone(),
        };
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let head = self.read_audit_head().await?;
            let write = Write {
                audit: Self::number(head, vec![(key.clone(), record.clone())]),
                audit_head: Some(head),
                ..Write::default()
            };
            if let Outcome::Applied(_) = self.execute(OPERATION, &write, None).await? {
                return Ok(head.next);
            }
        }
        Err(self.contention(OPERATION))
    }

    async fn audit_async(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = limits::AUDIT_PAGE.clamp(query.limit.map(|limit| limit as u64));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let first = query.after_sequence.unwrap_or(0).saturating_add(1);
        let (prefix, start) = match &query.zone {
            Some(zone) => {
                let key = zone_key(zone);
                (
                    self.keys.zone_audits(&key),
                    self.keys.zone_audit(&key, first),
                )
            }
            None => (self.keys.audits(), self.keys.audit(first)),
        };
        let mut out = Vec::new();
        let mut start = Some(start);
        while out.len() < limit {
            let page = self
                .range(
                    "reading the audit log",
                    &prefix,
                    start.take(),
                    Some(PAGE as usize),
                    false,
                    false,
                )
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            let mut next = last.key().to_vec();
            next.push(0);
            for kv in &page {
                let record: AuditRecord = records::decode(kv.key(), kv.value())?;
                if query.since_ms.is_some_and(|since| record.at_ms < since) {
                    continue;
                }
                out.push(audit_entry(kv.key(), record)?);
                if out.len() == limit {
                    break;
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
            start = Some(String::from_utf8_lossy(&next).into_owned());
        }
        Ok(out)
    }

    async fn clean_up_async(
        &self,
        zone: &Name,
        keep_last: usize,
        actor: &str,
        now_ms: u64,
    ) -> Result<Vec<Generation>, StoreError> {
        const OPERATION: &str = "cleaning up";
        let key = zone_key(zone);
        let most = limits::STORE_ETCD_TXN_OPS.default as usize - 8;
        for _ in 0..limits::STORE_ETCD_RETRIES.default {
            let (Some(record), revision) = self.read_zone(&key).await? else {
                return Ok(Vec::new());
            };
            let versions = self.version_records(&key).await?;
            let facts: Vec<rules::VersionFacts> = versions
                .iter()
                .map(|version| rules::VersionFacts {
                    generation: Generation(version.generation),
                    pinned: version.pinned,
                    activated: version.activated,
                    read_from: None,
                })
                .collect();
            let Some(mut clean_up) = rules::select_clean_up(&facts, record.refs(), keep_last)
            else {
                return Ok(Vec::new());
            };
            if clean_up.delete.len() > most {
                let all = clean_up.delete.len();
                clean_up.delete.truncate(most);
                clean_up.reason = format!(
                    "{}; the oldest {most} of {all} now (a transaction's limit), the rest at the \
                     next clean-up",
                    clean_up.reason
                );
            }
            let head = self.read_audit_head().await?;
            let audit = vec![(
                key.clone(),
                AuditRecord {
                    zone: record.display.clone(),
                    at_ms: now_ms,
                    actor: actor.to_string(),
                    action: actions::CLEAN_UP.to_string(),
                    from: None,
                    to: None,
                    reason: clean_up.reason.clone(),
                },
            )];
            let zone_value = records::encode(&record);
            let write = Write {
                zone: Some((self.keys.zone(&key), revision, zone_value.clone())),
                puts: Vec::new(),
                deletes: clean_up
                    .delete
                    .iter()
                    .map(|generation| self.keys.version(&key, *generation))
                    .collect(),
                audit: Self::number(head, audit),
                audit_head: Some(head),
            };
            if let Outcome::Applied(revision) = self.execute(OPERATION, &write, None).await? {
                // The versions are gone; their buckets go now or at a later clean-up (every
                // few generations: see the limit).
                let every = limits::STORE_ETCD_SWEEP_EVERY.default;
                if clean_up.delete.iter().any(|g| g.0.is_multiple_of(every)) {
                    let _ = self.sweep_blobs(&key, revision, zone_value).await;
                }
                return Ok(clean_up.delete);
            }
        }
        Err(self.contention(OPERATION))
    }

    /// Deletes the blobs of the zone that no version uses, in batches that each compare the
    /// zone record with `revision` (what the versions were read at) and move it. Stops at the
    /// first batch that loses (a writer came: what is left goes at a later clean-up).
    async fn sweep_blobs(
        &self,
        key: &str,
        mut revision: i64,
        zone_value: Vec<u8>,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "deleting unused content";
        let mut used: HashSet<String> = HashSet::new();
        for version in self.version_records(key).await? {
            used.extend(self.blobs_of(key, &version).await?.iter().map(keys::hex));
        }
        let (_, now) = self.read_zone(key).await?;
        if now != revision {
            return Ok(());
        }
        let stored = self
            .range(OPERATION, &self.keys.blobs(key), None, None, false, true)
            .await?;
        let unused: Vec<String> = stored
            .iter()
            .filter(|kv| keys::trailing_text(kv.key()).is_some_and(|hash| !used.contains(hash)))
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect();
        let per_batch = limits::STORE_ETCD_TXN_OPS.default as usize - 1;
        for batch in unused.chunks(per_batch) {
            let write = Write {
                zone: Some((self.keys.zone(key), revision, zone_value.clone())),
                deletes: batch.to_vec(),
                ..Write::default()
            };
            match self.execute(OPERATION, &write, None).await? {
                Outcome::Applied(next) => revision = next,
                Outcome::Lost => return Ok(()),
            }
        }
        Ok(())
    }

    async fn content_changes_async(
        &self,
        zone: &Name,
        from: Generation,
        to: Generation,
    ) -> Result<Option<ContentChanges>, StoreError> {
        let key = zone_key(zone);
        let new =
            self.read_version_record(&key, to)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    zone: zone.clone(),
                    generation: to,
                })?;
        if let Some(changes) = self.recorded_changes(&key, &new, from).await? {
            return Ok(Some(ContentChanges {
                version: new.version()?,
                removed: changes.removed,
                added: changes.added,
            }));
        }
        let Some(old) = self.read_version_record(&key, from).await? else {
            return Ok(None);
        };
        let old_manifest = self.manifest(&key, &old).await?;
        let new_manifest = self.manifest(&key, &new).await?;
        let changed: Vec<usize> = (0..old_manifest.len().min(new_manifest.len()))
            .filter(|index| old_manifest[*index] != new_manifest[*index])
            .collect();
        // Reading most buckets of both versions costs more than reading one version whole.
        if old_manifest.len() != new_manifest.len() || changed.len() * 2 > old_manifest.len() {
            return Ok(None);
        }
        let pick = |manifest: &[BucketHash]| -> Vec<BucketHash> {
            changed.iter().map(|index| manifest[*index]).collect()
        };
        let mut sides = Vec::new();
        for (generation, hashes) in [(from, pick(&old_manifest)), (to, pick(&new_manifest))] {
            let mut sets = Vec::new();
            for bytes in self.bucket_sets(&key, generation.0, &hashes).await? {
                sets.extend(model::decode_record_sets(&bytes).map_err(|error| {
                    StoreError::Corrupt {
                        detail: format!(
                            "zone {zone} generation {generation}: a bucket does not decode: \
                             {error}"
                        ),
                    }
                })?);
            }
            sides.push(sets);
        }
        let added = sides.pop().unwrap_or_default();
        let removed = sides.pop().unwrap_or_default();
        // Bucket sides hold every set of each name in them; keep only the names that changed.
        let changes = NameChanges::between(removed, added.iter());
        Ok(Some(ContentChanges {
            version: new.version()?,
            removed: changes.removed,
            added: changes.added,
        }))
    }

    /// The changes from `from` to `to` composed from the changes each version on the way
    /// recorded (at most [`limits::STORE_CHANGES_CHAIN`] of them); `None` when one of them
    /// recorded none or is gone, or `from` is not an ancestor within reach. `from` itself
    /// need not exist any more.
    async fn recorded_changes(
        &self,
        key: &str,
        to: &VersionRecord,
        from: Generation,
    ) -> Result<Option<NameChanges>, StoreError> {
        let mut steps = Vec::new();
        let mut at = to.clone();
        for _ in 0..limits::STORE_CHANGES_CHAIN.default {
            let (Some(parent), Some(hash)) = (at.parent, at.changes.as_deref()) else {
                return Ok(None);
            };
            let Some(hash) = parse_hash(hash) else {
                return Ok(None);
            };
            let Some(bytes) = self
                .get_many("reading recorded changes", vec![self.keys.blob(key, &hash)])
                .await?
                .pop()
                .flatten()
                .filter(|bytes| buckets::hash(bytes) == hash)
            else {
                return Ok(None);
            };
            let changes = NameChanges::decode(&bytes).map_err(|error| StoreError::Corrupt {
                detail: format!(
                    "zone {key} generation {}: its recorded changes do not decode: {error}",
                    at.generation
                ),
            })?;
            steps.push(changes);
            if parent == from.0 {
                steps.reverse();
                return Ok(Some(NameChanges::compose(steps)));
            }
            if parent < from.0 {
                return Ok(None);
            }
            match self.read_version_record(key, Generation(parent)).await? {
                Some(record) => at = record,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn check_integrity_async(&self) -> Result<(), StoreError> {
        let corrupt = |detail: String| Err(StoreError::Corrupt { detail });
        let zones = self
            .all_under("checking integrity", &self.keys.zones())
            .await?;
        for kv in zones {
            let record: ZoneRecord = records::decode(kv.key(), kv.value())?;
            let key = zone_key(&record.display_name()?);
            let display = &record.display;
            let versions = self.version_records(&key).await?;
            let generations: BTreeSet<u64> = versions.iter().map(|v| v.generation).collect();
            if let Some(newest) = generations.last() {
                if *newest >= record.next_generation {
                    return corrupt(format!(
                        "zone {display}: generation {newest} exists but the next generation is {}",
                        record.next_generation
                    ));
                }
            }
            for (reference, target) in [
                (RefName::Active, record.active),
                (RefName::Canary, record.canary),
            ] {
                if let Some(target) = target {
                    if !generations.contains(&target) {
                        return corrupt(format!(
                            "zone {display}: the {reference} ref points at missing generation \
                             {target}"
                        ));
                    }
                }
            }
            let entries = self.zone_audit_all(&key).await?;
            let replayed = Breaker::from_audit(&entries);
            let stored = Breaker::from(&record.breaker);
            if stored != replayed {
                return corrupt(format!(
                    "zone {display}: the breaker is stored as {stored} but the audit log replays \
                     to {replayed}"
                ));
            }
            let name = record.display_name()?;
            for version in &versions {
                self.read_content(&name, Generation(version.generation))
                    .await?;
            }
        }
        Ok(())
    }

    async fn zone_audit_all(&self, key: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let found = self
            .all_under("reading the audit log", &self.keys.zone_audits(key))
            .await?;
        found
            .iter()
            .map(|kv| audit_entry(kv.key(), records::decode(kv.key(), kv.value())?))
            .collect()
    }
}

/// What a commit writes for its content, computed once per served serial.
struct Prepared {
    serial: u32,
    content_hash: model::ContentHash,
    records: u64,
    /// Buckets and manifest chunks, each with its hash.
    blobs: Vec<(BucketHash, Vec<u8>)>,
    /// The hashes of the manifest chunks, in order.
    chunks: Vec<BucketHash>,
    /// Whether `blobs` are every blob of the content (else only those its base lacks).
    whole: bool,
    /// The blob (among `blobs`) of the changes from the base, when committed as a change.
    changes: Option<BucketHash>,
}

impl Prepared {
    /// Every blob of `stored` (content whose SOA serial is `serial`).
    fn new(stored: &ZoneContent, serial: u32) -> Prepared {
        let mut blobs: Vec<(BucketHash, Vec<u8>)> = buckets::split(stored)
            .into_iter()
            .map(|bytes| (buckets::hash(&bytes), bytes))
            .collect();
        let hashes: Vec<BucketHash> = blobs.iter().map(|(hash, _)| *hash).collect();
        let mut chunks = Vec::new();
        for part in hashes.chunks(MANIFEST_CHUNK_HASHES) {
            let bytes = buckets::encode_manifest(part);
            let hash = buckets::hash(&bytes);
            chunks.push(hash);
            blobs.push((hash, bytes));
        }
        // The same bucket twice (two empty buckets) is written once.
        let mut seen = HashSet::new();
        blobs.retain(|(hash, _)| seen.insert(*hash));
        Prepared {
            serial,
            content_hash: stored.hash(),
            records: stored.record_count(),
            blobs,
            chunks,
            whole: true,
            changes: None,
        }
    }

    fn manifest_keys(&self) -> Vec<String> {
        self.chunks.iter().map(keys::hex).collect()
    }
}

fn decode_chunk(
    zone_key: &str,
    generation: u64,
    bytes: &[u8],
) -> Result<Vec<BucketHash>, StoreError> {
    buckets::decode_manifest(bytes).ok_or_else(|| StoreError::Corrupt {
        detail: format!("zone {zone_key} generation {generation}: a manifest chunk is torn"),
    })
}

fn parse_hash(hex: &str) -> Option<BucketHash> {
    model::ContentHash::from_hex(hex).map(|hash| hash.0)
}

fn audit_entry(key: &[u8], record: AuditRecord) -> Result<AuditEntry, StoreError> {
    let sequence = keys::trailing_number(key).ok_or_else(|| StoreError::Corrupt {
        detail: format!(
            "etcd key {} does not end in a sequence number",
            String::from_utf8_lossy(key)
        ),
    })?;
    Ok(AuditEntry {
        sequence,
        at_ms: record.at_ms,
        actor: record.actor,
        zone: records::parse_name(&record.zone)?,
        action: record.action,
        from: record.from.map(Generation),
        to: record.to.map(Generation),
        reason: record.reason,
    })
}

/// A token no other call of any process writes: the process, a counter and random bits.
fn token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!(
        "{}-{}-{random:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Awaits every future of `futures` concurrently, results in order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut done = true;
        for (slot, future) in out.iter_mut().zip(pending.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

impl Store for EtcdStore {
    fn commit(&self, commit: Commit<'_>) -> Result<Version, StoreError> {
        let content = commit.content;
        let origin = content.origin().clone();
        invariants::check_content_valid(content, limits::ZONE_RECORDS.default)
            .map_err(|violation| rules::invalid(&origin, violation))?;
        let content_serial = rules::content_serial(content)?;
        self.run(self.commit_async(&commit, content_serial, None))
    }

    fn commit_from(
        &self,
        commit: Commit<'_>,
        base_content: &ZoneContent,
    ) -> Result<Version, StoreError> {
        let content_serial = rules::content_serial(commit.content)?;
        self.run(self.commit_async(&commit, content_serial, Some(base_content)))
    }

    fn move_ref(&self, request: MoveRef<'_>) -> Result<(), StoreError> {
        self.run(self.move_ref_async(&request))
    }

    fn refs(&self, zone: &Name) -> Result<Refs, StoreError> {
        let key = zone_key(zone);
        let (record, _) = self.run(self.read_zone(&key))?;
        Ok(record.as_ref().map(ZoneRecord::refs).unwrap_or_default())
    }

    fn zones(&self) -> Result<Vec<(Name, Refs)>, StoreError> {
        let found = self.run(self.all_under("listing zones", &self.keys.zones()))?;
        found
            .iter()
            .map(|kv| {
                let record: ZoneRecord = records::decode(kv.key(), kv.value())?;
                Ok((record.display_name()?, record.refs()))
            })
            .collect()
    }

    fn version(&self, zone: &Name, generation: Generation) -> Result<Version, StoreError> {
        let key = zone_key(zone);
        self.run(self.read_version_record(&key, generation))?
            .ok_or_else(|| StoreError::NotFound {
                zone: zone.clone(),
                generation,
            })?
            .version()
    }

    fn content(&self, zone: &Name, generation: Generation) -> Result<ZoneContent, StoreError> {
        self.run(self.read_content(zone, generation))
    }

    fn content_changes(
        &self,
        zone: &Name,
        from: Generation,
        to: Generation,
    ) -> Result<Option<ContentChanges>, StoreError> {
        self.run(self.content_changes_async(zone, from, to))
    }

    fn history(&self, zone: &Name, limit: usize) -> Result<Vec<Version>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = zone_key(zone);
        let found = self.run(self.range(
            "reading history",
            &self.keys.versions(&key),
            None,
            Some(limit),
            true,
            false,
        ))?;
        found
            .iter()
            .map(|kv| records::decode::<VersionRecord>(kv.key(), kv.value())?.version())
            .collect()
    }

    fn set_pinned(&self, request: SetPinned<'_>) -> Result<(), StoreError> {
        self.run(self.set_pinned_async(&request))
    }

    fn append_audit(&self, entry: NewAuditEntry) -> Result<u64, StoreError> {
        rules::refuse_breaker_entry(&entry)?;
        self.run(self.append_audit_async(&entry))
    }

    fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(self.audit_async(query))
    }

    fn clean_up(
        &self,
        zone: &Name,
        keep_last: usize,
        actor: &str,
        now_ms: u64,
    ) -> Result<Vec<Generation>, StoreError> {
        self.run(self.clean_up_async(zone, keep_last, actor, now_ms))
    }

    fn breaker(&self, zone: &Name) -> Result<Breaker, StoreError> {
        let key = zone_key(zone);
        let (record, _) = self.run(self.read_zone(&key))?;
        Ok(record
            .map(|record| Breaker::from(&record.breaker))
            .unwrap_or_default())
    }

    fn trip_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        self.run(
            self.update_zone("tripping the breaker", request.zone, |record| {
                let mut record = record.unwrap_or_else(|| ZoneRecord::new(request.zone));
                let tripped = Breaker::from(&record.breaker).trip(
                    request.reason,
                    request.actor,
                    request.now_ms,
                );
                record.breaker = BreakerRecord::from(&tripped);
                let audit = breaker_audit(&request, actions::BREAKER_TRIP);
                Ok((record, vec![audit], tripped))
            }),
        )
    }

    fn thaw_breaker(&self, request: BreakerChange<'_>) -> Result<Breaker, StoreError> {
        self.run(
            self.update_zone("thawing the breaker", request.zone, |record| {
                let current = record
                    .as_ref()
                    .map(|record| Breaker::from(&record.breaker))
                    .unwrap_or_default();
                let thawed = rules::thaw(
                    request.zone,
                    current,
                    request.reason,
                    request.actor,
                    request.now_ms,
                )?;
                let mut record = record.unwrap_or_else(|| ZoneRecord::new(request.zone));
                record.breaker = BreakerRecord::from(&thawed);
                let audit = breaker_audit(&request, actions::BREAKER_THAW);
                Ok((record, vec![audit], thawed))
            }),
        )
    }

    fn zone_source(&self, zone: &Name) -> Result<Option<String>, StoreError> {
        let key = zone_key(zone);
        let (record, _) = self.run(self.read_zone(&key))?;
        Ok(record.and_then(|record| record.source))
    }

    fn set_zone_source(&self, zone: &Name, source: &str) -> Result<(), StoreError> {
        self.run(
            self.update_zone("recording the zone's source", zone, |record| match record {
                Some(mut record) if record.next_generation > Generation::FIRST.0 => {
                    record.source = Some(source.to_string());
                    Ok((record, Vec::new(), ()))
                }
                _ => Err(crate::unknown_zone_source(zone)),
            }),
        )
    }

    fn change_counter(&self) -> Result<u64, StoreError> {
        let prefix = self.keys.zones();
        let options = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_sort(SortTarget::Mod, SortOrder::Descend)
            .with_limit(1);
        let response = self.run(self.get_response(
            "reading the change counter",
            prefix.into_bytes(),
            Some(options),
        ))?;
        Ok(response
            .kvs()
            .first()
            .map_or(0, |kv| u64::try_from(kv.mod_revision()).unwrap_or(0)))
    }

    fn change_feed(&self) -> Option<crate::ChangeFeed> {
        let runtime = self.runtime.as_ref()?.handle();
        let initial = self.change_counter().unwrap_or(0);
        let (receiver, task) =
            feed::start(runtime, self.watching.clone(), self.keys.zones(), initial);
        Some(crate::ChangeFeed {
            receiver,
            stop: Box::new(move || task.abort()),
        })
    }

    fn health_feed(&self) -> Option<crate::ChangeFeed> {
        let runtime = self.runtime.as_ref()?.handle();
        let (receiver, task) = feed::start(runtime, self.watching.clone(), self.keys.healths(), 0);
        Some(crate::ChangeFeed {
            receiver,
            stop: Box::new(move || task.abort()),
        })
    }

    fn check_integrity(&self) -> Result<(), StoreError> {
        self.run(self.check_integrity_async())
    }

    fn publish_health(
        &self,
        node: &str,
        view: &model::HealthView,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        const OPERATION: &str = "publishing health verdicts";
        let key = self.keys.health(node);
        let value = records::encode(&records::HealthRecord::new(view));
        // etcd leases count whole seconds; a new lease per publication, the old one expires.
        let ttl = i64::try_from(ttl_ms.div_ceil(1000).max(2)).unwrap_or(i64::MAX);
        self.run(async {
            let mut lease = self.lease.clone();
            let granted = tokio::time::timeout(self.timeout, lease.grant(ttl, None))
                .await
                .map_err(|_| self.backend(OPERATION, "no answer to the lease grant"))?
                .map_err(|error| self.backend(OPERATION, error.to_string()))?;
            let options = etcd_client::PutOptions::new().with_lease(granted.id());
            self.call(OPERATION, |mut kv| {
                let (key, value, options) = (key.clone(), value.clone(), options.clone());
                async move { kv.put(key, value, Some(options)).await }
            })
            .await
            .map(|_| ())
        })
    }

    fn health_verdicts(&self) -> Result<Vec<(String, model::HealthView)>, StoreError> {
        let prefix = self.keys.healths();
        let found = self.run(self.all_under("reading health verdicts", &prefix))?;
        found
            .iter()
            .map(|kv| {
                let record: records::HealthRecord = records::decode(kv.key(), kv.value())?;
                let node = keys::trailing_text(kv.key())
                    .unwrap_or_default()
                    .to_string();
                Ok((node, record.view()))
            })
            .collect()
    }
}

fn breaker_audit(request: &BreakerChange<'_>, action: &str) -> AuditRecord {
    AuditRecord {
        zone: request.zone.to_ascii(),
        at_ms: request.now_ms,
        actor: request.actor.to_string(),
        action: action.to_string(),
        from: None,
        to: None,
        reason: request.reason.to_string(),
    }
}
