//! The pure decisions of the resolver: what to do with a cache entry now, whether to
//! believe an answer that empties a name, and which upstream to ask. No I/O, no clock:
//! every function takes `now_ms` and returns a value.

/// The knobs the decisions read, already clamped (see [`crate::ResolverConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// RFC 8767 maximum staleness.
    pub max_stale_ms: u64,
    /// Stale-on-empty hold.
    pub empty_hold_ms: u64,
    /// While a hold lasts, upstreams are re-asked at most this often per name.
    pub recheck_interval_ms: u64,
    /// Prefetch when less than `1 / prefetch_divisor` of the TTL is left...
    pub prefetch_divisor: u64,
    /// ...and the entry was asked for at least this often (a popular name).
    pub prefetch_min_hits: u32,
    /// Consecutive failures that mark an upstream dead.
    pub dead_after_failures: u32,
    /// How often a dead upstream is probed.
    pub probe_interval_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        use model::limits;
        PolicyConfig {
            max_stale_ms: limits::RESOLVER_MAX_STALE_SECS.default * 1000,
            empty_hold_ms: limits::RESOLVER_EMPTY_HOLD_SECS.default * 1000,
            recheck_interval_ms: 1_000,
            prefetch_divisor: 10,
            prefetch_min_hits: 2,
            dead_after_failures: limits::RESOLVER_DEAD_AFTER_FAILURES.default as u32,
            probe_interval_ms: limits::RESOLVER_PROBE_INTERVAL_MS.default,
        }
    }
}

/// What the policy needs to know about one cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView {
    /// When the answer was received from upstream.
    pub stored_at_ms: u64,
    /// Its TTL (the smallest in the message, or the RFC 2308 negative TTL).
    pub ttl_secs: u32,
    /// Times it was asked for since it was stored.
    pub hits: u32,
    /// Set while stale-on-empty holds this (positive) answer against an empty one.
    pub empty_since_ms: Option<u64>,
    /// Last time upstreams were asked about this name.
    pub last_check_ms: u64,
}

impl EntryView {
    /// When the answer stops being fresh.
    pub fn expires_at_ms(&self) -> u64 {
        self.stored_at_ms
            .saturating_add(u64::from(self.ttl_secs) * 1000)
    }

    /// Whole seconds since the answer was stored, for decrementing TTLs.
    pub fn age_secs(&self, now_ms: u64) -> u32 {
        u32::try_from(now_ms.saturating_sub(self.stored_at_ms) / 1000).unwrap_or(u32::MAX)
    }
}

/// How the upstreams look right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamOutlook {
    /// At least one upstream is not known dead.
    SomeAlive,
    /// Every upstream is known dead: waiting for them only delays the client.
    AllDead,
}

/// What to do with a cached entry for a question arriving at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDecision {
    /// Answer from the cache, TTLs decremented by age.
    Fresh,
    /// Answer from the cache and refresh it in the background: a popular name close to
    /// expiry, so its next asker does not wait.
    Prefetch,
    /// Stale-on-empty is holding the last good records and upstreams were re-asked less
    /// than `recheck_interval_ms` ago: answer the held records at once.
    Held,
    /// Expired but within the maximum staleness. With `at_once` (every upstream dead) the
    /// stale answer goes out immediately; otherwise upstreams are asked and the stale
    /// answer goes out if they fail or the client response timer fires first.
    StaleServable { at_once: bool },
    /// Too old to serve in any case: ask upstreams, SERVFAIL if they fail.
    Expired,
}

/// The cache policy: a pure function of the entry, `now`, the upstreams and the config.
pub fn decide(
    entry: &EntryView,
    now_ms: u64,
    upstreams: UpstreamOutlook,
    config: &PolicyConfig,
) -> CacheDecision {
    if let Some(since_ms) = entry.empty_since_ms {
        let hold_over = now_ms >= since_ms.saturating_add(config.empty_hold_ms);
        let recheck_due = now_ms
            >= entry
                .last_check_ms
                .saturating_add(config.recheck_interval_ms);
        if !hold_over && !recheck_due {
            return CacheDecision::Held;
        }
    }
    let expires_at_ms = entry.expires_at_ms();
    if now_ms < expires_at_ms && entry.empty_since_ms.is_none() {
        let ttl_ms = u64::from(entry.ttl_secs) * 1000;
        let left_ms = expires_at_ms - now_ms;
        let near_expiry = left_ms.saturating_mul(config.prefetch_divisor.max(1)) <= ttl_ms;
        if near_expiry && entry.hits >= config.prefetch_min_hits {
            return CacheDecision::Prefetch;
        }
        return CacheDecision::Fresh;
    }
    if now_ms <= expires_at_ms.saturating_add(config.max_stale_ms) {
        return CacheDecision::StaleServable {
            at_once: upstreams == UpstreamOutlook::AllDead,
        };
    }
    CacheDecision::Expired
}

/// What upstream said about a name, as far as stale-on-empty cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerShape {
    /// At least one record in the answer section.
    Records,
    /// NOERROR with nothing in the answer section, or NXDOMAIN.
    Empty,
}

/// Stale-on-empty's verdict on an empty answer for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyVerdict {
    /// Take the empty answer (no earlier records, hold over, or the name may go empty).
    Accept,
    /// Keep serving the last good records until `until_ms`; the hold began at `since_ms`.
    Hold { since_ms: u64, until_ms: u64 },
}

/// Judges an empty answer against what the cache holds for the name. `previous` is the
/// entry in the cache and the shape of its answer; `allow_empty` is true for names listed
/// with `--allow-empty`.
pub fn judge_empty(
    previous: Option<(&EntryView, AnswerShape)>,
    allow_empty: bool,
    now_ms: u64,
    config: &PolicyConfig,
) -> EmptyVerdict {
    let Some((entry, AnswerShape::Records)) = previous else {
        return EmptyVerdict::Accept;
    };
    if allow_empty || config.empty_hold_ms == 0 {
        return EmptyVerdict::Accept;
    }
    // The last good records are only as good as serve-stale allows.
    if now_ms > entry.expires_at_ms().saturating_add(config.max_stale_ms) {
        return EmptyVerdict::Accept;
    }
    let since_ms = entry.empty_since_ms.unwrap_or(now_ms);
    let until_ms = since_ms.saturating_add(config.empty_hold_ms);
    if now_ms >= until_ms {
        EmptyVerdict::Accept
    } else {
        EmptyVerdict::Hold { since_ms, until_ms }
    }
}

/// One upstream's health, a small state machine:
///
/// ```text
///            success                          failure × dead_after_failures
///   Alive ◀───────────── Dead { next_probe } ◀──────────────────────────── Alive
///     │  ▲                 │     ▲
///     └──┘ success/failure └─────┘ probe claimed or failed: next_probe += interval
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// Smoothed round-trip time (RFC 6298 weights, 7/8 old + 1/8 new); 0 before any answer.
    pub srtt_ms: u32,
    pub consecutive_failures: u32,
    pub state: UpstreamState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    Alive,
    Dead { since_ms: u64, next_probe_ms: u64 },
}

impl Default for UpstreamHealth {
    fn default() -> UpstreamHealth {
        UpstreamHealth {
            srtt_ms: 0,
            consecutive_failures: 0,
            state: UpstreamState::Alive,
        }
    }
}

impl UpstreamHealth {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, UpstreamState::Dead { .. })
    }

    /// An answer came back after `rtt_ms`.
    pub fn on_success(self, rtt_ms: u32) -> UpstreamHealth {
        let srtt_ms = if self.srtt_ms == 0 {
            rtt_ms.max(1)
        } else {
            ((u64::from(self.srtt_ms) * 7 + u64::from(rtt_ms)) / 8).max(1) as u32
        };
        UpstreamHealth {
            srtt_ms,
            consecutive_failures: 0,
            state: UpstreamState::Alive,
        }
    }

    /// No usable answer (timeout, refused connection, SERVFAIL, garbage).
    pub fn on_failure(self, now_ms: u64, config: &PolicyConfig) -> UpstreamHealth {
        let consecutive_failures = self.consecutive_failures.saturating_add(1);
        let state = match self.state {
            UpstreamState::Alive if consecutive_failures >= config.dead_after_failures => {
                UpstreamState::Dead {
                    since_ms: now_ms,
                    next_probe_ms: now_ms.saturating_add(config.probe_interval_ms),
                }
            }
            UpstreamState::Alive => UpstreamState::Alive,
            UpstreamState::Dead { since_ms, .. } => UpstreamState::Dead {
                since_ms,
                next_probe_ms: now_ms.saturating_add(config.probe_interval_ms),
            },
        };
        UpstreamHealth {
            // A failure also makes the upstream look slower, so a flaky one sinks in order.
            srtt_ms: self.srtt_ms.saturating_add(self.srtt_ms / 2).max(1),
            consecutive_failures,
            state,
        }
    }

    /// Takes the probe slot of a dead upstream, so that one question probes it at a time.
    pub fn claim_probe(self, now_ms: u64, config: &PolicyConfig) -> UpstreamHealth {
        match self.state {
            UpstreamState::Dead { since_ms, .. } => UpstreamHealth {
                state: UpstreamState::Dead {
                    since_ms,
                    next_probe_ms: now_ms.saturating_add(config.probe_interval_ms),
                },
                ..self
            },
            UpstreamState::Alive => self,
        }
    }

    fn probe_due(&self, now_ms: u64) -> bool {
        matches!(self.state, UpstreamState::Dead { next_probe_ms, .. } if now_ms >= next_probe_ms)
    }
}

/// Whether every upstream is known dead.
pub fn outlook(upstreams: &[UpstreamHealth]) -> UpstreamOutlook {
    if !upstreams.is_empty() && upstreams.iter().all(UpstreamHealth::is_dead) {
        UpstreamOutlook::AllDead
    } else {
        UpstreamOutlook::SomeAlive
    }
}

/// The order in which to ask upstreams: live ones by smoothed RTT (untried first, so each
/// gets measured), then dead ones whose probe is due. Dead ones not due are left out.
pub fn order(upstreams: &[UpstreamHealth], now_ms: u64) -> Vec<usize> {
    let mut alive: Vec<usize> = (0..upstreams.len())
        .filter(|&i| !upstreams[i].is_dead())
        .collect();
    alive.sort_by_key(|&i| (upstreams[i].srtt_ms, i));
    alive.extend((0..upstreams.len()).filter(|&i| upstreams[i].probe_due(now_ms)));
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Clock, ManualClock};

    const TTL_SECS: u32 = 60;

    fn stored_now(clock: &ManualClock) -> EntryView {
        EntryView {
            stored_at_ms: clock.now_ms(),
            ttl_secs: TTL_SECS,
            hits: 0,
            empty_since_ms: None,
            last_check_ms: clock.now_ms(),
        }
    }

    fn config() -> PolicyConfig {
        PolicyConfig {
            max_stale_ms: 3_600_000,
            empty_hold_ms: 300_000,
            ..PolicyConfig::default()
        }
    }

    fn decide_at(
        entry: &EntryView,
        clock: &ManualClock,
        outlook: UpstreamOutlook,
    ) -> CacheDecision {
        decide(entry, clock.now_ms(), outlook, &config())
    }

    #[test]
    fn an_answer_is_fresh_until_its_ttl_runs_out() {
        let clock = ManualClock::new(1_000_000);
        let entry = stored_now(&clock);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Fresh
        );
        clock.advance(59_999);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Fresh
        );
        clock.advance(1);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::StaleServable { at_once: false }
        );
    }

    #[test]
    fn a_popular_name_is_prefetched_in_the_last_tenth_of_its_ttl() {
        let clock = ManualClock::new(1_000_000);
        let mut entry = stored_now(&clock);
        entry.hits = 5;
        clock.advance(53_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Fresh
        );
        clock.advance(1_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Prefetch
        );
    }

    #[test]
    fn a_name_asked_once_is_not_prefetched() {
        let clock = ManualClock::new(1_000_000);
        let mut entry = stored_now(&clock);
        entry.hits = 1;
        clock.advance(59_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Fresh
        );
    }

    #[test]
    fn stale_data_is_served_at_once_when_every_upstream_is_dead() {
        let clock = ManualClock::new(1_000_000);
        let entry = stored_now(&clock);
        clock.advance(61_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::AllDead),
            CacheDecision::StaleServable { at_once: true }
        );
    }

    #[test]
    fn nothing_older_than_the_maximum_staleness_is_served() {
        let clock = ManualClock::new(1_000_000);
        let entry = stored_now(&clock);
        clock.advance(60_000 + 3_600_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::AllDead),
            CacheDecision::StaleServable { at_once: true }
        );
        clock.advance(1);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::AllDead),
            CacheDecision::Expired
        );
    }

    #[test]
    fn a_held_answer_is_served_without_asking_until_the_recheck_is_due() {
        let clock = ManualClock::new(1_000_000);
        let mut entry = stored_now(&clock);
        clock.advance(61_000);
        entry.empty_since_ms = Some(clock.now_ms());
        entry.last_check_ms = clock.now_ms();
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::Held
        );
        clock.advance(1_000);
        assert_eq!(
            decide_at(&entry, &clock, UpstreamOutlook::SomeAlive),
            CacheDecision::StaleServable { at_once: false }
        );
    }

    #[test]
    fn an_empty_answer_for_a_name_that_had_records_is_held_then_accepted() {
        let clock = ManualClock::new(1_000_000);
        let mut entry = stored_now(&clock);
        clock.advance(61_000);
        let first = judge_empty(
            Some((&entry, AnswerShape::Records)),
            false,
            clock.now_ms(),
            &config(),
        );
        let started = clock.now_ms();
        assert_eq!(
            first,
            EmptyVerdict::Hold {
                since_ms: started,
                until_ms: started + 300_000
            }
        );
        entry.empty_since_ms = Some(started);
        clock.advance(299_999);
        assert!(matches!(
            judge_empty(Some((&entry, AnswerShape::Records)), false, clock.now_ms(), &config()),
            EmptyVerdict::Hold { since_ms, .. } if since_ms == started
        ));
        clock.advance(1);
        assert_eq!(
            judge_empty(
                Some((&entry, AnswerShape::Records)),
                false,
                clock.now_ms(),
                &config()
            ),
            EmptyVerdict::Accept
        );
    }

    #[test]
    fn an_empty_answer_is_accepted_for_a_name_allowed_to_go_empty() {
        let clock = ManualClock::new(1_000_000);
        let entry = stored_now(&clock);
        assert_eq!(
            judge_empty(
                Some((&entry, AnswerShape::Records)),
                true,
                clock.now_ms(),
                &config()
            ),
            EmptyVerdict::Accept
        );
    }

    #[test]
    fn an_empty_answer_is_accepted_for_a_name_never_seen_or_already_empty() {
        let clock = ManualClock::new(1_000_000);
        let entry = stored_now(&clock);
        assert_eq!(
            judge_empty(None, false, clock.now_ms(), &config()),
            EmptyVerdict::Accept
        );
        assert_eq!(
            judge_empty(
                Some((&entry, AnswerShape::Empty)),
                false,
                clock.now_ms(),
                &config()
            ),
            EmptyVerdict::Accept
        );
    }

    #[test]
    fn an_upstream_dies_after_consecutive_failures_and_is_probed_later() {
        let config = config();
        let clock = ManualClock::new(1_000_000);
        let mut health = UpstreamHealth::default().on_success(10);
        for _ in 0..config.dead_after_failures - 1 {
            health = health.on_failure(clock.now_ms(), &config);
        }
        assert!(!health.is_dead());
        health = health.on_failure(clock.now_ms(), &config);
        assert!(health.is_dead());
        assert_eq!(outlook(&[health]), UpstreamOutlook::AllDead);
        assert!(order(&[health], clock.now_ms()).is_empty());
        clock.advance(config.probe_interval_ms);
        assert_eq!(order(&[health], clock.now_ms()), vec![0]);
        let claimed = health.claim_probe(clock.now_ms(), &config);
        assert!(order(&[claimed], clock.now_ms()).is_empty());
        assert!(!claimed.on_success(5).is_dead());
    }

    #[test]
    fn live_upstreams_are_asked_fastest_first_and_dead_ones_last() {
        let config = config();
        let fast = UpstreamHealth::default().on_success(2);
        let slow = UpstreamHealth::default().on_success(40);
        let mut dead = UpstreamHealth::default();
        for _ in 0..config.dead_after_failures {
            dead = dead.on_failure(0, &config);
        }
        let upstreams = [slow, dead, fast];
        assert_eq!(order(&upstreams, 0), vec![2, 0]);
        assert_eq!(order(&upstreams, config.probe_interval_ms), vec![2, 0, 1]);
        assert_eq!(outlook(&upstreams), UpstreamOutlook::SomeAlive);
    }
}
