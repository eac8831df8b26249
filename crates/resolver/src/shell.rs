//! The async shell: listeners, upstream exchanges, the client response timer, prefetch and
//! probes. Every decision is a call into [`crate::policy`]; this file only does the I/O and
//! the bookkeeping around those calls.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use model::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::cache::{Cache, Entry};
use crate::config::ResolverConfig;
use crate::message::{
    self, parse_answer, parse_query, render, AnswerKind, BadAnswer, ClientQuery, Parsed, Render,
    Stored, TtlRewrite, EDE_STALE_ANSWER, MAX_KEY_BYTES,
};
use crate::policy::{self, CacheDecision, EmptyVerdict, PolicyConfig, UpstreamHealth};
use crate::upstream;
use crate::ResolverError;

/// Extra text of the EDE 3 we put on answers held by stale-on-empty. EDE 3 ("Stale
/// Answer") is the closest registered code: the records are older than what upstream now
/// says. The text tells an operator which of our two stale mechanisms produced it.
pub const STALE_ON_EMPTY_TEXT: &str = "stale-on-empty";
/// Extra text of the EDE 3 on RFC 8767 stale answers.
pub const SERVE_STALE_TEXT: &str = "serve-stale";
/// Per-attempt timeout before an upstream has been measured.
const UNMEASURED_ATTEMPT_MS: u64 = 800;
/// Per-attempt timeout bounds once it has: a multiple of the smoothed RTT.
const ATTEMPT_MS_MIN: u64 = 100;
const ATTEMPT_MS_MAX: u64 = 1_500;
const ATTEMPT_RTT_MULTIPLE: u64 = 4;
/// How often the counters are logged.
const STATS_INTERVAL: Duration = Duration::from_secs(60);
/// Largest UDP datagram we read from a client.
const UDP_RECEIVE_BYTES: usize = 65_535;

/// How a query arrived: decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Counters, read with [`Resolver::stats`] and logged when the resolver stops.
#[derive(Debug, Default)]
pub struct Stats {
    queries: AtomicU64,
    cache_answers: AtomicU64,
    upstream_answers: AtomicU64,
    stale_answers: AtomicU64,
    stale_on_empty_answers: AtomicU64,
    empty_accepted: AtomicU64,
    upstream_failures: AtomicU64,
    servfail: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub queries: u64,
    pub cache_answers: u64,
    pub upstream_answers: u64,
    /// RFC 8767 stale answers (upstreams failed or too slow).
    pub stale_answers: u64,
    /// Answers where stale-on-empty held the last good records.
    pub stale_on_empty_answers: u64,
    /// Empty answers accepted after a hold ran out.
    pub empty_accepted: u64,
    pub upstream_failures: u64,
    pub servfail: u64,
}

fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

/// The resolver: cache, upstream health and counters, shared by the listeners.
pub struct Resolver {
    config: ResolverConfig,
    policy: PolicyConfig,
    cache: Mutex<Cache>,
    health: Mutex<Vec<UpstreamHealth>>,
    /// `policy::outlook(health) == AllDead`, kept with every health change so that a cache
    /// hit never takes the health lock.
    all_dead: AtomicBool,
    /// Lower-cased wire names allowed to go empty at once.
    allow_empty: HashSet<Vec<u8>>,
    clock: Arc<dyn Clock>,
    stats: Stats,
    in_flight: Arc<Semaphore>,
    refreshing: Mutex<HashSet<Box<[u8]>>>,
    ids: RandomState,
    id_counter: AtomicU64,
}

/// What to do with one query right now.
enum Step {
    Reply(Vec<u8>),
    Drop,
    Upstream(Pending),
}

/// A query that waits for upstreams.
struct Pending {
    packet: Vec<u8>,
    key: Box<[u8]>,
    transport: Transport,
    /// Stale data exists: answer it when the client response timer fires first.
    stale_fallback: bool,
}

/// What asking upstreams produced.
enum Outcome {
    /// An answer straight from upstream (cached unless its RCODE is not cacheable).
    Answer(Arc<Stored>),
    /// Upstream said empty; stale-on-empty holds these records until `until_ms`.
    Held {
        stored: Arc<Stored>,
        until_ms: u64,
    },
    Failed,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves plain data (no invariant spans the
    // lock), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Resolver {
    /// A resolver for `config` (clamped here) reading time from `clock`.
    pub fn new(
        config: ResolverConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Resolver>, ResolverError> {
        let config = config.clamped();
        if config.upstreams.is_empty() {
            return Err(ResolverError::NoUpstream);
        }
        let mut allow_empty = HashSet::new();
        for name in &config.allow_empty {
            let parsed = hickory_proto::rr::Name::from_ascii(name).map_err(|error| {
                ResolverError::BadName {
                    name: name.clone(),
                    reason: error.to_string(),
                }
            })?;
            allow_empty.insert(message::wire_name(&parsed));
        }
        Ok(Arc::new(Resolver {
            policy: config.policy(),
            cache: Mutex::new(Cache::new(
                usize::try_from(config.cache_entries).unwrap_or(usize::MAX),
                usize::try_from(config.cache_bytes).unwrap_or(usize::MAX),
            )),
            health: Mutex::new(vec![UpstreamHealth::default(); config.upstreams.len()]),
            all_dead: AtomicBool::new(false),
            allow_empty,
            clock,
            stats: Stats::default(),
            in_flight: Arc::new(Semaphore::new(
                usize::try_from(config.upstream_in_flight).unwrap_or(1),
            )),
            refreshing: Mutex::new(HashSet::new()),
            ids: RandomState::new(),
            id_counter: AtomicU64::new(0),
            config,
        }))
    }

    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    pub fn stats(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let stats = &self.stats;
        StatsSnapshot {
            queries: read(&stats.queries),
            cache_answers: read(&stats.cache_answers),
            upstream_answers: read(&stats.upstream_answers),
            stale_answers: read(&stats.stale_answers),
            stale_on_empty_answers: read(&stats.stale_on_empty_answers),
            empty_accepted: read(&stats.empty_accepted),
            upstream_failures: read(&stats.upstream_failures),
            servfail: read(&stats.servfail),
        }
    }

    /// Answers one message: `None` means stay silent.
    pub async fn answer(self: &Arc<Self>, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match self.answer_now(packet, transport) {
            Step::Reply(reply) => Some(reply),
            Step::Drop => None,
            Step::Upstream(pending) => Some(self.answer_from_upstream(pending).await),
        }
    }

    /// The synchronous part: parse, look in the cache, decide. Cache hits end here.
    fn answer_now(self: &Arc<Self>, packet: &[u8], transport: Transport) -> Step {
        let query = match parse_query(packet) {
            Parsed::Query(query) => query,
            Parsed::Reply(reply) => return Step::Reply(reply),
            Parsed::Drop => return Step::Drop,
        };
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let mut buffer = [0u8; MAX_KEY_BYTES];
        let key = query.key(&mut buffer);
        let now_ms = self.clock.now_ms();
        let outlook = if self.all_dead.load(Ordering::Relaxed) {
            policy::UpstreamOutlook::AllDead
        } else {
            policy::UpstreamOutlook::SomeAlive
        };
        let mut cache = lock(&self.cache);
        let Some(entry) = cache.get(key) else {
            drop(cache);
            return Step::Upstream(self.pending(packet, key, transport, false));
        };
        let view = entry.view();
        let answer = Arc::clone(&entry.answer);
        drop(cache);
        let fresh = || Render {
            ttl: TtlRewrite::Age(view.age_secs(now_ms)),
            ede: None,
            keep_authoritative: false,
            limit_bytes: self.limit_bytes(&query, transport),
            payload_bytes: self.payload_bytes(),
        };
        match policy::decide(&view, now_ms, outlook, &self.policy) {
            CacheDecision::Fresh => {
                self.stats.cache_answers.fetch_add(1, Ordering::Relaxed);
                Step::Reply(render(&answer, &query, &fresh()))
            }
            CacheDecision::Prefetch => {
                self.stats.cache_answers.fetch_add(1, Ordering::Relaxed);
                self.refresh_in_background(key);
                Step::Reply(render(&answer, &query, &fresh()))
            }
            CacheDecision::Held => {
                let until_ms = view
                    .empty_since_ms
                    .unwrap_or(now_ms)
                    .saturating_add(self.policy.empty_hold_ms);
                Step::Reply(self.render_held(&answer, &query, transport, until_ms, now_ms))
            }
            CacheDecision::StaleServable { at_once: true } => {
                self.refresh_in_background(key);
                Step::Reply(self.render_stale(&answer, &query, transport))
            }
            CacheDecision::StaleServable { at_once: false } => {
                Step::Upstream(self.pending(packet, key, transport, true))
            }
            CacheDecision::Expired => Step::Upstream(self.pending(packet, key, transport, false)),
        }
    }

    fn pending(
        &self,
        packet: &[u8],
        key: &[u8],
        transport: Transport,
        stale_fallback: bool,
    ) -> Pending {
        Pending {
            packet: packet.to_vec(),
            key: key.into(),
            transport,
            stale_fallback,
        }
    }

    /// Asks upstreams for a pending query; with stale data in hand, the client response
    /// timer bounds the wait and the upstream question goes on in the background.
    async fn answer_from_upstream(self: &Arc<Self>, pending: Pending) -> Vec<u8> {
        let Parsed::Query(query) = parse_query(&pending.packet) else {
            unreachable!("the packet parsed as a query in answer_now and is unchanged");
        };
        let outcome = match Arc::clone(&self.in_flight).try_acquire_owned() {
            Err(_) => Outcome::Failed,
            Ok(permit) => {
                let resolver = Arc::clone(self);
                let key = pending.key.clone();
                let mut task = tokio::spawn(async move {
                    let outcome = resolver.resolve(&key).await;
                    drop(permit);
                    outcome
                });
                if pending.stale_fallback {
                    let timer = Duration::from_millis(self.config.client_timeout_ms);
                    tokio::select! {
                        joined = &mut task => joined.unwrap_or(Outcome::Failed),
                        () = tokio::time::sleep(timer) => Outcome::Failed,
                    }
                } else {
                    task.await.unwrap_or(Outcome::Failed)
                }
            }
        };
        let transport = pending.transport;
        let now_ms = self.clock.now_ms();
        match outcome {
            Outcome::Answer(stored) => {
                self.stats.upstream_answers.fetch_add(1, Ordering::Relaxed);
                let how = Render {
                    ttl: TtlRewrite::Age(0),
                    ede: None,
                    keep_authoritative: true,
                    limit_bytes: self.limit_bytes(&query, transport),
                    payload_bytes: self.payload_bytes(),
                };
                render(&stored, &query, &how)
            }
            Outcome::Held { stored, until_ms } => {
                self.render_held(&stored, &query, transport, until_ms, now_ms)
            }
            Outcome::Failed => self.stale_or_servfail(&query, &pending.key, transport, now_ms),
        }
    }

    /// After upstreams failed: the cached answer if serve-stale allows it, else SERVFAIL.
    fn stale_or_servfail(
        &self,
        query: &ClientQuery<'_>,
        key: &[u8],
        transport: Transport,
        now_ms: u64,
    ) -> Vec<u8> {
        let stale = lock(&self.cache).peek(key).and_then(|entry| {
            let deadline = entry
                .view()
                .expires_at_ms()
                .saturating_add(self.policy.max_stale_ms);
            (now_ms <= deadline).then(|| (Arc::clone(&entry.answer), entry.empty_since_ms))
        });
        match stale {
            Some((answer, Some(since_ms))) => {
                let until_ms = since_ms.saturating_add(self.policy.empty_hold_ms);
                self.render_held(&answer, query, transport, until_ms, now_ms)
            }
            Some((answer, None)) => self.render_stale(&answer, query, transport),
            None => {
                bump(&self.stats.servfail);
                message::servfail(query)
            }
        }
    }

    fn render_stale(
        &self,
        answer: &Stored,
        query: &ClientQuery<'_>,
        transport: Transport,
    ) -> Vec<u8> {
        bump(&self.stats.stale_answers);
        let how = Render {
            ttl: TtlRewrite::Fixed(self.stale_ttl_secs()),
            ede: Some((EDE_STALE_ANSWER, SERVE_STALE_TEXT)),
            keep_authoritative: false,
            limit_bytes: self.limit_bytes(query, transport),
            payload_bytes: self.payload_bytes(),
        };
        render(answer, query, &how)
    }

    /// A held answer's TTL never reaches past the hold, so clients re-ask when it ends.
    fn render_held(
        &self,
        answer: &Stored,
        query: &ClientQuery<'_>,
        transport: Transport,
        until_ms: u64,
        now_ms: u64,
    ) -> Vec<u8> {
        bump(&self.stats.stale_on_empty_answers);
        let left_secs =
            u32::try_from(until_ms.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(u32::MAX);
        let how = Render {
            ttl: TtlRewrite::Fixed(self.stale_ttl_secs().min(left_secs).max(1)),
            ede: Some((EDE_STALE_ANSWER, STALE_ON_EMPTY_TEXT)),
            keep_authoritative: false,
            limit_bytes: self.limit_bytes(query, transport),
            payload_bytes: self.payload_bytes(),
        };
        render(answer, query, &how)
    }

    fn stale_ttl_secs(&self) -> u32 {
        u32::try_from(self.config.stale_ttl_secs).unwrap_or(30)
    }

    fn payload_bytes(&self) -> u16 {
        u16::try_from(self.config.udp_payload_bytes).unwrap_or(1232)
    }

    fn limit_bytes(&self, query: &ClientQuery<'_>, transport: Transport) -> usize {
        match transport {
            Transport::Udp => query.udp_limit(self.payload_bytes()),
            Transport::Tcp => usize::from(u16::MAX),
        }
    }

    /// Prefetch or probe: ask upstreams about `key` without a client waiting, once at a time.
    fn refresh_in_background(self: &Arc<Self>, key: &[u8]) {
        if !lock(&self.refreshing).insert(key.into()) {
            return;
        }
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            lock(&self.refreshing).remove(key);
            return;
        };
        let resolver = Arc::clone(self);
        let key: Box<[u8]> = key.into();
        tokio::spawn(async move {
            resolver.resolve(&key).await;
            lock(&resolver.refreshing).remove(&key);
            drop(permit);
        });
    }

    fn next_id(&self) -> u16 {
        let mut hasher = self.ids.build_hasher();
        hasher.write_u64(self.id_counter.fetch_add(1, Ordering::Relaxed));
        hasher.finish() as u16
    }

    /// Asks upstreams in health order within the attempt and time budget, and files the
    /// answer in the cache.
    async fn resolve(&self, key: &[u8]) -> Outcome {
        let plan = {
            let now_ms = self.clock.now_ms();
            let mut health = lock(&self.health);
            let plan = policy::order(&health, now_ms);
            for &index in &plan {
                health[index] = health[index].claim_probe(now_ms, &self.policy);
            }
            plan
        };
        if plan.is_empty() {
            return Outcome::Failed;
        }
        let budget = Duration::from_millis(self.config.upstream_budget_ms);
        let started = Instant::now();
        for attempt in 0..self.config.upstream_attempts as usize {
            let index = plan[attempt % plan.len()];
            let Some(left) = budget
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())
            else {
                break;
            };
            let timeout = self.attempt_timeout(index).min(left);
            let sent = Instant::now();
            match self.exchange(index, key, timeout).await {
                Ok(stored) => {
                    let rtt_ms = u32::try_from(sent.elapsed().as_millis()).unwrap_or(u32::MAX);
                    let mut health = lock(&self.health);
                    health[index] = health[index].on_success(rtt_ms);
                    self.note_outlook(&health);
                    drop(health);
                    return self.file(key, stored);
                }
                Err(reason) => self.record_failure(index, &reason),
            }
        }
        Outcome::Failed
    }

    fn attempt_timeout(&self, index: usize) -> Duration {
        let srtt_ms = u64::from(lock(&self.health)[index].srtt_ms);
        let ms = if srtt_ms == 0 {
            UNMEASURED_ATTEMPT_MS
        } else {
            (srtt_ms * ATTEMPT_RTT_MULTIPLE).clamp(ATTEMPT_MS_MIN, ATTEMPT_MS_MAX)
        };
        Duration::from_millis(ms)
    }

    /// One question to one upstream: UDP, then TCP when the answer was truncated.
    async fn exchange(
        &self,
        index: usize,
        key: &[u8],
        timeout: Duration,
    ) -> Result<Stored, String> {
        let server = self.config.upstreams[index];
        let id = self.next_id();
        let query = message::upstream_query(id, key, self.payload_bytes());
        let bytes = upstream::udp(server, &query, timeout)
            .await
            .map_err(|error| error.to_string())?;
        let stored = match parse_answer(&bytes, id, key) {
            Err(BadAnswer::Truncated) => {
                let bytes = upstream::tcp(server, &query, timeout)
                    .await
                    .map_err(|error| format!("tcp: {error}"))?;
                parse_answer(&bytes, id, key).map_err(|error| format!("tcp {error:?}"))?
            }
            other => other.map_err(|error| format!("{error:?}"))?,
        };
        if stored.kind
            == (AnswerKind::Other {
                rcode: message::RCODE_SERVFAIL,
            })
        {
            return Err("SERVFAIL".into());
        }
        Ok(stored)
    }

    fn note_outlook(&self, health: &[UpstreamHealth]) {
        let all_dead = policy::outlook(health) == policy::UpstreamOutlook::AllDead;
        self.all_dead.store(all_dead, Ordering::Relaxed);
    }

    fn record_failure(&self, index: usize, reason: &str) {
        bump(&self.stats.upstream_failures);
        let now_ms = self.clock.now_ms();
        let mut health = lock(&self.health);
        let was_dead = health[index].is_dead();
        health[index] = health[index].on_failure(now_ms, &self.policy);
        self.note_outlook(&health);
        let upstream = self.config.upstreams[index];
        if health[index].is_dead() && !was_dead {
            tracing::warn!(%upstream, reason, failures = health[index].consecutive_failures, "upstream marked dead");
        } else {
            tracing::debug!(%upstream, reason, "upstream attempt failed");
        }
    }

    /// Files an upstream answer: cache it, or hold the last good records against it.
    fn file(&self, key: &[u8], mut stored: Stored) -> Outcome {
        let now_ms = self.clock.now_ms();
        let cap_secs = match stored.kind {
            AnswerKind::Positive => self.config.max_ttl_secs,
            _ => self.config.max_negative_ttl_secs,
        };
        stored.ttl_secs = stored
            .ttl_secs
            .min(u32::try_from(cap_secs).unwrap_or(u32::MAX));
        let stored = Arc::new(stored);
        if let AnswerKind::Other { .. } = stored.kind {
            return Outcome::Answer(stored);
        }
        let name = message::key_name(key);
        let mut cache = lock(&self.cache);
        let previous = cache.peek(key).map(|entry| (entry.view(), entry.shape()));
        if stored.kind.is_empty() {
            let allowed = self.allow_empty.contains(name);
            let verdict = policy::judge_empty(
                previous.as_ref().map(|(view, shape)| (view, *shape)),
                allowed,
                now_ms,
                &self.policy,
            );
            match verdict {
                EmptyVerdict::Hold { since_ms, until_ms } => {
                    // judge_empty holds only against an entry with records: it is there.
                    let entry = cache.peek_mut(key).expect("a hold needs a cached entry");
                    let first = entry.empty_since_ms.is_none();
                    entry.empty_since_ms = Some(since_ms);
                    entry.last_check_ms = now_ms;
                    let held = Arc::clone(&entry.answer);
                    drop(cache);
                    if first {
                        tracing::warn!(
                            name = %display_name(name),
                            kind = ?stored.kind,
                            hold_secs = self.config.empty_hold_secs,
                            held_total = self.stats.stale_on_empty_answers.load(Ordering::Relaxed),
                            "stale-on-empty: upstream now says this name is empty; serving its last good records while re-checking"
                        );
                    }
                    return Outcome::Held {
                        stored: held,
                        until_ms,
                    };
                }
                EmptyVerdict::Accept => {
                    if let Some((view, _)) =
                        previous.filter(|(view, _)| view.empty_since_ms.is_some())
                    {
                        let accepted = bump(&self.stats.empty_accepted);
                        tracing::warn!(
                            name = %display_name(name),
                            held_ms = now_ms.saturating_sub(view.empty_since_ms.unwrap_or(now_ms)),
                            accepted,
                            "stale-on-empty: hold over; accepting the empty answer"
                        );
                    } else if allowed
                        && previous.is_some_and(|(_, shape)| shape == policy::AnswerShape::Records)
                    {
                        tracing::info!(name = %display_name(name), "name allowed to go empty: accepted at once");
                    }
                }
            }
        } else if let Some((view, _)) = previous.filter(|(view, _)| view.empty_since_ms.is_some()) {
            tracing::info!(
                name = %display_name(name),
                held_ms = now_ms.saturating_sub(view.empty_since_ms.unwrap_or(now_ms)),
                "stale-on-empty: upstream has records again; hold ended"
            );
        }
        cache.insert(key, Entry::new(Arc::clone(&stored), now_ms));
        Outcome::Answer(stored)
    }

    /// Binds UDP and TCP on `config.listen` (port 0 picks one port for both).
    pub async fn bind(self: &Arc<Self>) -> Result<Bound, ResolverError> {
        let listen = self.config.listen;
        let bind_error = |source| ResolverError::Bind {
            address: listen,
            source,
        };
        let tcp = TcpListener::bind(listen).await.map_err(bind_error)?;
        let local_addr = tcp.local_addr().map_err(bind_error)?;
        let udp = UdpSocket::bind(local_addr).await.map_err(bind_error)?;
        Ok(Bound {
            resolver: Arc::clone(self),
            udp: Arc::new(udp),
            tcp,
            local_addr,
        })
    }
}

/// A wire name for logs.
fn display_name(wire: &[u8]) -> String {
    let mut text = String::new();
    let mut at = 0;
    while let Some(&length) = wire.get(at) {
        if length == 0 {
            break;
        }
        let label = wire
            .get(at + 1..at + 1 + usize::from(length))
            .unwrap_or_default();
        text.push_str(&String::from_utf8_lossy(label));
        text.push('.');
        at += 1 + usize::from(length);
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

/// Sockets bound and ready; [`Bound::run`] answers on them until shutdown.
pub struct Bound {
    resolver: Arc<Resolver>,
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    local_addr: SocketAddr,
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers queries until `shutdown` completes, then logs the counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let udp = tokio::spawn(serve_udp(self.udp, Arc::clone(&self.resolver)));
        let tcp = tokio::spawn(serve_tcp(self.tcp, Arc::clone(&self.resolver)));
        let report = tokio::spawn(report_stats(Arc::clone(&self.resolver)));
        shutdown.await;
        udp.abort();
        tcp.abort();
        report.abort();
        tracing::info!(stats = ?self.resolver.stats(), "resolver stopped");
    }
}

/// Logs the counters once a minute when they moved: the resolver's metrics until the HTTP
/// API carries them.
async fn report_stats(resolver: Arc<Resolver>) {
    let mut last = StatsSnapshot::default();
    let mut interval = tokio::time::interval(STATS_INTERVAL);
    loop {
        interval.tick().await;
        let stats = resolver.stats();
        if stats != last {
            tracing::info!(?stats, "resolver counters");
            last = stats;
        }
    }
}

/// Binds `resolver`'s listen address and serves until `shutdown` completes.
pub async fn serve(
    resolver: Arc<Resolver>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ResolverError> {
    let bound = resolver.bind().await?;
    tracing::info!(listen = %bound.local_addr(), upstreams = ?resolver.config().upstreams, "resolver listening");
    bound.run(shutdown).await;
    Ok(())
}

async fn serve_udp(socket: Arc<UdpSocket>, resolver: Arc<Resolver>) {
    let mut buffer = vec![0u8; UDP_RECEIVE_BYTES];
    loop {
        let (length, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "udp receive failed");
                continue;
            }
        };
        match resolver.answer_now(&buffer[..length], Transport::Udp) {
            Step::Reply(reply) => {
                if let Err(error) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%error, %peer, "udp send failed");
                }
            }
            Step::Drop => {}
            Step::Upstream(pending) => {
                let socket = Arc::clone(&socket);
                let resolver = Arc::clone(&resolver);
                tokio::spawn(async move {
                    let reply = resolver.answer_from_upstream(pending).await;
                    if let Err(error) = socket.send_to(&reply, peer).await {
                        tracing::debug!(%error, %peer, "udp send failed");
                    }
                });
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    let permits = Arc::new(Semaphore::new(
        model::limits::TCP_CONNECTIONS.default as usize,
    ));
    loop {
        // Wait for a free slot before accepting: the connection limit holds at all times.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "tcp accept failed");
                continue;
            }
        };
        let resolver = Arc::clone(&resolver);
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream, &resolver).await {
                tracing::debug!(%error, %peer, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// RFC 7766: length-prefixed messages answered in order until the client closes, goes idle
/// or reaches the per-connection query limit.
async fn serve_connection(mut stream: TcpStream, resolver: &Arc<Resolver>) -> std::io::Result<()> {
    let idle = Duration::from_millis(model::limits::TCP_IDLE_TIMEOUT_MS.default);
    let mut message = Vec::new();
    for _ in 0..model::limits::TCP_QUERIES_PER_CONNECTION.default {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut prefix)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        message.resize(usize::from(u16::from_be_bytes(prefix)), 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return Ok(()),
        }
        let Some(reply) = resolver.answer(&message, Transport::Tcp).await else {
            continue;
        };
        let length = u16::try_from(reply.len()).unwrap_or(u16::MAX);
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&reply[..usize::from(length)]);
        stream.write_all(&framed).await?;
    }
    stream.shutdown().await
}
