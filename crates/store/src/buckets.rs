//! Content-addressed buckets: how a version's content is split for storage.
//!
//! A zone's record sets go into B buckets by a stable hash of the lower-cased owner name,
//! B = the next power of two of ceil(rrsets / `store.bucket_rrsets`), clamped to
//! [1, 65536]. A bucket's bytes are the [`RecordSet::encode`](model::RecordSet::encode) of its
//! sets in canonical order, and its key is the SHA-256 of those bytes. A change to a few
//! names rewrites only the buckets holding them; unchanged buckets are shared between
//! versions. A version's manifest is the list of its bucket keys, in bucket order.

use model::{decode_record_sets, limits, ContentError, Name, RecordSet, ZoneContent};
use sha2::{Digest, Sha256};

/// Largest number of buckets of one version.
pub const MAX_BUCKETS: usize = 65_536;

/// SHA-256 of a bucket's bytes: its key in the store.
pub type BucketHash = [u8; 32];

/// Number of buckets for content with `rrsets` record sets.
pub fn bucket_count(rrsets: usize) -> usize {
    // The default is a small positive constant, so the conversion cannot fail.
    let per_bucket = usize::try_from(limits::STORE_BUCKET_RRSETS.default).unwrap_or(32);
    rrsets
        .div_ceil(per_bucket)
        .next_power_of_two()
        .clamp(1, MAX_BUCKETS)
}

/// Splits content into bucket bytes, in bucket order.
pub fn split(content: &ZoneContent) -> Vec<Vec<u8>> {
    let count = bucket_count(content.rrset_count());
    let mut buckets = vec![Vec::new(); count];
    for set in content.rrsets() {
        set.encode(&mut buckets[index_of(&set.name, count)]);
    }
    buckets
}

/// [`split`], also keeping which sets went into each bucket (in bucket order): what the
/// store compares with an earlier version's changed buckets to record a version's changes.
pub fn split_with_sets(content: &ZoneContent) -> (Vec<Vec<u8>>, Vec<Vec<&RecordSet>>) {
    let count = bucket_count(content.rrset_count());
    let mut buckets = vec![Vec::new(); count];
    let mut sets: Vec<Vec<&RecordSet>> = vec![Vec::new(); count];
    for set in content.rrsets() {
        let index = index_of(&set.name, count);
        set.encode(&mut buckets[index]);
        sets[index].push(set);
    }
    (buckets, sets)
}

/// The key of a bucket's bytes.
pub fn hash(bytes: &[u8]) -> BucketHash {
    Sha256::digest(bytes).into()
}

/// A manifest: the keys of a version's buckets, back to back.
pub fn encode_manifest(hashes: &[BucketHash]) -> Vec<u8> {
    hashes.concat()
}

/// Inverse of [`encode_manifest`]; `None` when the bytes are not a whole number of keys or
/// hold more than [`MAX_BUCKETS`].
pub fn decode_manifest(bytes: &[u8]) -> Option<Vec<BucketHash>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() / 32 > MAX_BUCKETS {
        return None;
    }
    bytes
        .chunks_exact(32)
        .map(|chunk| BucketHash::try_from(chunk).ok())
        .collect()
}

/// Rebuilds content from its buckets' bytes.
pub fn assemble<'a>(
    origin: Name,
    buckets: impl IntoIterator<Item = &'a [u8]>,
) -> Result<ZoneContent, Box<ContentError>> {
    let mut sets = Vec::new();
    for bytes in buckets {
        sets.extend(decode_record_sets(bytes).map_err(Box::new)?);
    }
    // Buckets hold normalised sets; the caller verifies the content hash.
    Ok(ZoneContent::from_normalized_sets(origin, sets))
}

/// A bucket's bytes after a change: its sets at `names` (lower-cased, all of this bucket)
/// replaced by the sets `content` has at those names, in canonical order. `None` when
/// `bytes` do not decode (the caller then stores the content whole).
pub fn rebuild(bytes: &[u8], names: &[&Name], content: &ZoneContent) -> Option<Vec<u8>> {
    let mut sets = decode_record_sets(bytes).ok()?;
    sets.retain(|set| !names.contains(&&set.name));
    for name in names {
        sets.extend(content.sets_at(name).cloned());
    }
    sets.sort_by_key(RecordSet::key);
    let mut rebuilt = Vec::with_capacity(bytes.len());
    for set in &sets {
        set.encode(&mut rebuilt);
    }
    Some(rebuilt)
}

/// The names of `names` grouped by their bucket among `count`, in bucket order.
pub fn by_bucket<'a>(
    names: impl IntoIterator<Item = &'a Name>,
    count: usize,
) -> std::collections::BTreeMap<usize, Vec<&'a Name>> {
    let mut per_bucket: std::collections::BTreeMap<usize, Vec<&Name>> =
        std::collections::BTreeMap::new();
    for name in names {
        per_bucket
            .entry(index_of(name, count))
            .or_default()
            .push(name);
    }
    per_bucket
}

/// The bucket of an owner name among `count` buckets (a power of two).
pub fn index_of(name: &Name, count: usize) -> usize {
    let digest = Sha256::digest(name.to_lowercase().to_ascii().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // `count` is a power of two no larger than 65536, so the mask keeps the index in range
    // and fits any usize.
    (u64::from_be_bytes(first) & (count as u64 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::fixtures;

    #[test]
    fn bucket_count_is_a_power_of_two_sized_for_the_zone() {
        assert_eq!(bucket_count(0), 1);
        assert_eq!(bucket_count(32), 1);
        assert_eq!(bucket_count(33), 2);
        assert_eq!(bucket_count(20_000), 1024);
        assert_eq!(bucket_count(usize::MAX / 2), MAX_BUCKETS);
    }

    #[test]
    fn split_then_assemble_gives_the_same_content() {
        let content = fixtures::content("example.test.", 7, 500, 0);
        let buckets = split(&content);
        assert_eq!(buckets.len(), 16);
        let (same, sets) = split_with_sets(&content);
        assert_eq!(same, buckets);
        assert_eq!(
            sets.iter().map(Vec::len).sum::<usize>(),
            content.rrset_count()
        );
        let back = assemble(content.origin().clone(), buckets.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(back, content);
        assert_eq!(back.hash(), content.hash());
    }

    #[test]
    fn names_differing_only_in_case_share_a_bucket() {
        let lower = Name::from_ascii("www.example.test.").unwrap();
        let upper = Name::from_ascii("WWW.Example.TEST.").unwrap();
        assert_eq!(index_of(&lower, 1024), index_of(&upper, 1024));
    }

    #[test]
    fn manifest_round_trips_and_rejects_torn_bytes() {
        let hashes = vec![hash(b"one"), hash(b"two")];
        let bytes = encode_manifest(&hashes);
        assert_eq!(decode_manifest(&bytes), Some(hashes));
        assert_eq!(decode_manifest(&bytes[..40]), None);
        assert_eq!(decode_manifest(&[]), None);
    }
}
