//! Query counters: answers by zone and response code, silences, and an answer-latency
//! histogram per transport, read by `/metrics`.
//!
//! Counting sits on the hot path, so it is a handful of relaxed atomic additions per query
//! and no allocation. Every counter is split into [`STATS_SHARDS`] cache-line-aligned
//! shards; each UDP worker adds to its own shard (worker index modulo the shard count) so
//! two workers never write the same cache line, and a scrape sums the shards.
//!
//! A zone's counters live in the [`crate::Catalog`] beside its snapshot and are carried
//! over when a new version of the zone replaces the old one, so they count from the moment
//! the zone was first served, not from the last version.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Shards per counter: more than the UDP workers of a typical server; workers beyond it
/// share a shard (still correct, only slower under contention).
pub const STATS_SHARDS: usize = 4;

/// Response codes counted separately: the sixteen of the header (RFC 1035, RFC 2136), and
/// BADVERS (16, RFC 6891), which only the OPT record can carry.
pub const RCODE_SLOTS: usize = 17;

/// Upper bounds of the latency histogram's buckets, in microseconds; a last bucket holds
/// everything slower. Latency is from the moment a query's batch was received (or its TCP
/// message read) to the moment its answer was ready to send.
pub const LATENCY_BOUNDS_MICROS: [u64; 11] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000, 100_000];

const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MICROS.len() + 1;

/// The response code in the header of `reply` (its four low bits; BADVERS needs the OPT
/// record and is reported by the library path itself).
pub fn reply_rcode(reply: &[u8]) -> u16 {
    reply.get(3).map_or(0, |flags2| u16::from(flags2 & 0x0f))
}

/// The usual mnemonic of a response code, for labels.
pub fn rcode_name(rcode: usize) -> &'static str {
    const NAMES: [&str; RCODE_SLOTS] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
        "BADVERS",
    ];
    NAMES.get(rcode).copied().unwrap_or("OTHER")
}

/// The transports latency is kept apart for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsTransport {
    Udp = 0,
    Tcp = 1,
}

impl StatsTransport {
    pub const ALL: [StatsTransport; 2] = [StatsTransport::Udp, StatsTransport::Tcp];

    pub fn label(self) -> &'static str {
        match self {
            StatsTransport::Udp => "udp",
            StatsTransport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct RcodeShard([AtomicU64; RCODE_SLOTS]);

/// Answers of one zone (or of no zone) by response code.
#[derive(Debug, Default)]
pub struct RcodeCounters {
    shards: [RcodeShard; STATS_SHARDS],
}

impl RcodeCounters {
    /// Counts one answer with `rcode`; codes above BADVERS (which no answer of ours
    /// carries) are clamped into the last slot.
    pub fn count(&self, shard: usize, rcode: u16) {
        let slot = usize::from(rcode).min(RCODE_SLOTS - 1);
        self.shards[shard % STATS_SHARDS].0[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Totals by response code, summed over the shards.
    pub fn totals(&self) -> [u64; RCODE_SLOTS] {
        let mut totals = [0; RCODE_SLOTS];
        for shard in &self.shards {
            for (total, counter) in totals.iter_mut().zip(&shard.0) {
                *total += counter.load(Ordering::Relaxed);
            }
        }
        totals
    }
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct LatencyShard {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    sum_nanos: AtomicU64,
}

/// A histogram of answer latencies with the fixed bounds [`LATENCY_BOUNDS_MICROS`].
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    shards: [LatencyShard; STATS_SHARDS],
}

/// A histogram as read at one moment: counts per bucket (not cumulative; the last is the
/// overflow bucket), and the sum of all observations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatencyTotals {
    pub buckets: [u64; LATENCY_BUCKETS],
    pub sum_nanos: u64,
}

impl LatencyTotals {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl LatencyHistogram {
    pub fn observe(&self, shard: usize, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let micros = nanos / 1_000;
        let bucket = LATENCY_BOUNDS_MICROS
            .iter()
            .position(|bound| micros < *bound)
            .unwrap_or(LATENCY_BUCKETS - 1);
        let shard = &self.shards[shard % STATS_SHARDS];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn totals(&self) -> LatencyTotals {
        let mut totals = LatencyTotals::default();
        for shard in &self.shards {
            for (total, counter) in totals.buckets.iter_mut().zip(&shard.buckets) {
                *total += counter.load(Ordering::Relaxed);
            }
            totals.sum_nanos = totals
                .sum_nanos
                .wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        totals
    }
}

/// Counters that belong to the server rather than to one zone.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Answers to queries no served zone matched (REFUSED, FORMERR before the question
    /// could be read, NOTIMP, BADVERS, ...).
    pub unmatched: RcodeCounters,
    /// Queries that got no answer at all: not a query (QR set), shorter than a header, or
    /// an answer that could not be sent.
    dropped: [RcodeShard; STATS_SHARDS],
    /// Response rate limiting: [dropped, slipped, would have been limited (log-only)].
    rrl: [RcodeShard; STATS_SHARDS],
    latency: [LatencyHistogram; 2],
}

/// What response rate limiting did to an answer, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RrlCount {
    Dropped = 0,
    Slipped = 1,
    /// Log-only mode sent an answer that would have been limited.
    WouldLimit = 2,
}

impl ServerCounters {
    pub fn count_dropped(&self, shard: usize) {
        self.dropped[shard % STATS_SHARDS].0[0].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
            .iter()
            .map(|shard| shard.0[0].load(Ordering::Relaxed))
            .sum()
    }

    pub fn count_rrl(&self, shard: usize, what: RrlCount) {
        self.rrl[shard % STATS_SHARDS].0[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Totals of [`RrlCount`]: dropped, slipped, would have been limited.
    pub fn rrl(&self) -> [u64; 3] {
        let mut totals = [0; 3];
        for shard in &self.rrl {
            for (total, counter) in totals.iter_mut().zip(&shard.0) {
                *total += counter.load(Ordering::Relaxed);
            }
        }
        totals
    }

    pub fn observe_latency(&self, transport: StatsTransport, shard: usize, latency: Duration) {
        self.latency[transport as usize].observe(shard, latency);
    }

    pub fn latency(&self, transport: StatsTransport) -> LatencyTotals {
        self.latency[transport as usize].totals()
    }
}

/// Everything `/metrics` shows of the server, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct QueryTotals {
    /// Per served zone (canonical order): origin and answers by response code.
    pub zones: Vec<(String, [u64; RCODE_SLOTS])>,
    /// Answers to queries outside every served zone, by response code.
    pub unmatched: [u64; RCODE_SLOTS],
    /// Queries that got no answer.
    pub dropped: u64,
    /// Response rate limiting: answers dropped, sent truncated (slipped), and sent in
    /// log-only mode although they would have been limited.
    pub rrl_dropped: u64,
    pub rrl_slipped: u64,
    pub rrl_would_limit: u64,
    /// Answer latency per transport.
    pub latency: Vec<(StatsTransport, LatencyTotals)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_exceeds_it() {
        let histogram = LatencyHistogram::default();
        histogram.observe(0, Duration::from_nanos(4_999));
        histogram.observe(1, Duration::from_micros(5));
        histogram.observe(2, Duration::from_micros(99));
        histogram.observe(7, Duration::from_secs(3));
        let totals = histogram.totals();
        assert_eq!(totals.buckets[0], 1, "4.999 µs is below 5 µs");
        assert_eq!(totals.buckets[1], 1, "5 µs is in the 10 µs bucket");
        assert_eq!(totals.buckets[4], 1, "99 µs is in the 100 µs bucket");
        assert_eq!(totals.buckets[LATENCY_BUCKETS - 1], 1, "3 s overflows");
        assert_eq!(totals.count(), 4);
        assert_eq!(totals.sum_nanos, 4_999 + 5_000 + 99_000 + 3_000_000_000);
    }

    #[test]
    fn counts_from_every_shard_are_summed_and_unknown_rcodes_are_clamped() {
        let counters = RcodeCounters::default();
        for shard in 0..10 {
            counters.count(shard, 3);
        }
        counters.count(0, 200);
        let totals = counters.totals();
        assert_eq!(totals[3], 10);
        assert_eq!(totals[RCODE_SLOTS - 1], 1);
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(16), "BADVERS");
    }
}
