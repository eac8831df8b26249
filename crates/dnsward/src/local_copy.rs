//! A node's local copy of what it serves (`[node] local_copy`, static stability): on a node
//! whose store is shared (etcd), every zone version the node serves is written to local disk,
//! and a node that starts while the store is unreachable serves those copies instead of
//! nothing, until the store answers again.
//!
//! One file per zone, `ZONE.copy` (ZONE lower-cased, fully qualified): a first line
//! `dnsward-local-copy 1`, a JSON header line (zone, generation, serial, content hash), then
//! the zone's record sets as the store encodes them. Written to a temporary file, synced and
//! renamed over the old one, so a crash leaves the old copy or the new one, never half of
//! one; a copy whose sets do not hash to its header is skipped, loudly.
//!
//! Writing costs the whole zone, so it runs off the serving path and at most once every
//! [`LOCAL_COPY_INTERVAL_MS`] per zone: the copy may lag the served version by that much.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use model::limits::Limit;
use model::{ContentHash, Generation, Name, ZoneContent};
use serde::{Deserialize, Serialize};
use server::{Catalog, ZoneSnapshot};

/// How often at most the node rewrites a zone's local copy.
pub const LOCAL_COPY_INTERVAL_MS: Limit = Limit {
    name: "node.local_copy_interval_ms",
    default: 2_000,
    min: 100,
    max: 600_000,
};

const MAGIC: &str = "dnsward-local-copy 1";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    zone: String,
    generation: u64,
    serial: u32,
    content_hash: String,
}

/// A zone read back from its local copy.
#[derive(Debug)]
pub struct Copy {
    pub content: ZoneContent,
    pub generation: Generation,
}

fn file_of(dir: &Path, zone: &Name) -> PathBuf {
    dir.join(format!("{}copy", store::zone_key(zone)))
}

/// Writes `snapshot`'s content as the local copy of its zone.
pub fn save(dir: &Path, snapshot: &ZoneSnapshot) -> Result<(), String> {
    let origin = snapshot.origin().clone();
    let content = ZoneContent::from_records(origin.clone(), snapshot.records().cloned())
        .map_err(|error| format!("zone {origin}: {error}"))?;
    let header = Header {
        zone: origin.to_ascii(),
        generation: snapshot.generation().0,
        serial: snapshot.serial(),
        content_hash: content.hash().to_hex(),
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC.as_bytes());
    bytes.push(b'\n');
    bytes.extend(serde_json::to_vec(&header).map_err(|error| error.to_string())?);
    bytes.push(b'\n');
    for set in content.rrsets() {
        set.encode(&mut bytes);
    }
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let path = file_of(dir, &origin);
    let temporary = path.with_extension("copy.new");
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    written.map_err(|error| format!("{}: {error}", path.display()))
}

/// Every readable local copy in `dir`; a damaged one is skipped with a warning naming it.
pub fn load(dir: &Path) -> Vec<Copy> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut copies = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("copy") {
            continue;
        }
        match read(&path) {
            Ok(copy) => copies.push(copy),
            Err(error) => tracing::warn!(file = %path.display(), %error, "local copy skipped"),
        }
    }
    copies
}

fn read(path: &Path) -> Result<Copy, String> {
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    let mut parts = bytes.splitn(3, |byte| *byte == b'\n');
    let (Some(magic), Some(header), Some(sets)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a local copy (truncated)".to_string());
    };
    if magic != MAGIC.as_bytes() {
        return Err(format!("not a local copy (first line is not {MAGIC:?})"));
    }
    let header: Header = serde_json::from_slice(header).map_err(|error| error.to_string())?;
    let origin = Name::from_ascii(&header.zone).map_err(|error| error.to_string())?;
    let sets = model::decode_record_sets(sets).map_err(|error| error.to_string())?;
    let content = ZoneContent::from_normalized_sets(origin, sets);
    if Some(content.hash()) != ContentHash::from_hex(&header.content_hash) {
        return Err("its record sets do not hash to its header's content hash".to_string());
    }
    Ok(Copy {
        content,
        generation: Generation(header.generation),
    })
}

/// Serves every local copy in `dir` that the catalog does not serve yet; returns the zones
/// it put in.
pub fn serve(dir: &Path, catalog: &Catalog) -> Vec<(Name, Generation, u32)> {
    let mut served = Vec::new();
    for copy in load(dir) {
        let origin = copy.content.origin().clone();
        if catalog.snapshot().get(&origin).is_some() {
            continue;
        }
        let snapshot = ZoneSnapshot::build(&copy.content, copy.generation);
        served.push((origin, copy.generation, snapshot.serial()));
        catalog.replace_zone(Arc::new(snapshot));
    }
    served
}

/// Keeps `dir` up to date with what `catalog` serves, until the catalog is dropped.
pub fn keep(dir: PathBuf, catalog: Arc<Catalog>) -> tokio::task::JoinHandle<()> {
    let interval = Duration::from_millis(LOCAL_COPY_INTERVAL_MS.default);
    let mut changes = catalog.subscribe();
    tokio::spawn(async move {
        let mut saved: BTreeMap<Name, Generation> = BTreeMap::new();
        loop {
            let zones = catalog.snapshot();
            for (origin, generation) in zones.list() {
                if saved.get(&origin) == Some(&generation) {
                    continue;
                }
                let Some(snapshot) = zones.get(&origin).cloned() else {
                    continue;
                };
                let dir = dir.clone();
                let written = tokio::task::spawn_blocking(move || save(&dir, &snapshot)).await;
                match written {
                    Ok(Ok(())) => {
                        saved.insert(origin, generation);
                    }
                    Ok(Err(error)) => {
                        tracing::error!(%error, "local copy not written; the previous one stays")
                    }
                    Err(error) => tracing::error!(%error, "local copy writer failed"),
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> ZoneContent {
        let text = "$ORIGIN copy.test.\n$TTL 300\n@ IN SOA ns hostmaster 7 3600 600 86400 60\n\
                    @ IN NS ns\nns IN A 192.0.2.1\nwww IN A 192.0.2.2\nwww IN A 192.0.2.3\n";
        zonefile::parse_str(
            text,
            Path::new("copy.test.zone"),
            Some(&Name::from_ascii("copy.test.").unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn a_saved_copy_loads_back_with_its_generation_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let content = zone();
        save(dir.path(), &ZoneSnapshot::build(&content, Generation(42))).unwrap();
        let copies = load(dir.path());
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].generation, Generation(42));
        assert_eq!(copies[0].content.hash(), content.hash());
    }

    #[test]
    fn a_damaged_copy_is_skipped_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &ZoneSnapshot::build(&zone(), Generation(1))).unwrap();
        let path = file_of(dir.path(), &Name::from_ascii("copy.test.").unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(dir.path().join("other.copy"), &bytes).unwrap();
        let copies = load(dir.path());
        assert_eq!(copies.len(), 1, "the damaged copy is skipped");
    }

    #[test]
    fn copies_are_served_only_for_zones_the_catalog_lacks() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &ZoneSnapshot::build(&zone(), Generation(3))).unwrap();
        let catalog = Catalog::new();
        let served = serve(dir.path(), &catalog);
        assert_eq!(served.len(), 1);
        assert_eq!(catalog.zones(), vec![(served[0].0.clone(), Generation(3))]);
        assert!(serve(dir.path(), &catalog).is_empty());
    }
}
