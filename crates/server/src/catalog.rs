//! The set of served zones, swapped atomically as a whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use model::{Generation, Name, RecordType};

use crate::snapshot::ZoneSnapshot;
use crate::stats::{QueryTotals, RcodeCounters, ServerCounters, StatsTransport};
use crate::zone::key;

/// One consistent set of zones: what a query sees from start to end.
#[derive(Debug, Default, Clone)]
pub struct Zones {
    /// Keyed by lower-cased origin; BTreeMap so listings come out in a stable order.
    by_origin: BTreeMap<Name, Served>,
}

/// A served zone: its snapshot and the query counters that outlive its versions.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) zone: Arc<ZoneSnapshot>,
    pub(crate) counters: Arc<RcodeCounters>,
}

impl Zones {
    /// The zone with the longest origin at or above `qname`.
    pub fn find(&self, qname: &Name) -> Option<&Arc<ZoneSnapshot>> {
        self.find_served(qname).map(|served| &served.zone)
    }

    fn find_served(&self, qname: &Name) -> Option<&Served> {
        let name = key(qname);
        (0..=name.num_labels())
            .rev()
            .find_map(|labels| self.by_origin.get(&name.trim_to(usize::from(labels))))
    }

    /// The zone that answers `qname`/`qtype`: like [`Zones::find`], except that DS at a zone
    /// apex is answered by the parent zone when the parent is served too (RFC 4035 §3.1.4.1).
    pub fn find_for(&self, qname: &Name, qtype: RecordType) -> Option<&Arc<ZoneSnapshot>> {
        self.find_served_for(qname, qtype)
            .map(|served| &served.zone)
    }

    pub(crate) fn find_served_for(&self, qname: &Name, qtype: RecordType) -> Option<&Served> {
        let served = self.find_served(qname)?;
        if qtype == RecordType::DS && served.zone.origin() == &key(qname) && !qname.is_root() {
            if let Some(parent) = self.find_served(&key(qname).base_name()) {
                return Some(parent);
            }
        }
        Some(served)
    }

    /// The zone whose origin is `origin` (any case), if served.
    pub fn get(&self, origin: &Name) -> Option<&Arc<ZoneSnapshot>> {
        self.by_origin.get(&key(origin)).map(|served| &served.zone)
    }

    /// Origins and generations of every served zone, in canonical order.
    pub fn list(&self) -> Vec<(Name, Generation)> {
        self.by_origin
            .iter()
            .map(|(origin, served)| (origin.clone(), served.zone.generation()))
            .collect()
    }

    /// Every served zone with its counters.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Served> {
        self.by_origin.values()
    }

    pub fn len(&self) -> usize {
        self.by_origin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }
}

/// The served zones behind an atomic pointer. Readers load once per query and never block;
/// writers copy the small map of pointers, change it, and swap it in.
#[derive(Debug)]
pub struct Catalog {
    current: ArcSwap<Zones>,
    /// Counts every change of the served zones: what NOTIFY (and anyone else who acts on
    /// a new served version) waits on.
    changed: tokio::sync::watch::Sender<u64>,
    /// Query counters that belong to no zone; the zones' own live in [`Zones`].
    counters: ServerCounters,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog {
            current: ArcSwap::default(),
            changed: tokio::sync::watch::Sender::new(0),
            counters: ServerCounters::default(),
        }
    }
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// A receiver that sees a new value after every change of the served zones (a version
    /// swapped in or a zone removed); read [`Catalog::zones`] then.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn announce_change(&self) {
        self.changed
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Serves `zone` under its origin, replacing any earlier version of it (whose query
    /// counters it takes over).
    pub fn replace_zone(&self, zone: Arc<ZoneSnapshot>) {
        self.current.rcu(|zones| {
            let mut next = Zones::clone(zones);
            let counters = next
                .by_origin
                .get(zone.origin())
                .map_or_else(Arc::default, |served| Arc::clone(&served.counters));
            next.by_origin.insert(
                zone.origin().clone(),
                Served {
                    zone: Arc::clone(&zone),
                    counters,
                },
            );
            next
        });
        self.announce_change();
    }

    /// Stops serving the zone at `origin`. Returns whether it was served.
    pub fn remove_zone(&self, origin: &Name) -> bool {
        let origin = key(origin);
        let previous = self.current.rcu(|zones| {
            let mut next = Zones::clone(zones);
            next.by_origin.remove(&origin);
            next
        });
        self.announce_change();
        previous.by_origin.contains_key(&origin)
    }

    /// One consistent view of every zone; load once per query.
    pub fn snapshot(&self) -> Arc<Zones> {
        self.current.load_full()
    }

    /// One consistent view of every zone without touching its reference count: for a
    /// worker that answers a batch of queries from one load.
    pub fn load(&self) -> arc_swap::Guard<Arc<Zones>> {
        self.current.load()
    }

    /// The zone with the longest origin at or above `qname`.
    pub fn find(&self, qname: &Name) -> Option<Arc<ZoneSnapshot>> {
        self.current.load().find(qname).cloned()
    }

    /// Origins and generations of every served zone.
    pub fn zones(&self) -> Vec<(Name, Generation)> {
        self.current.load().list()
    }

    /// Counters of answers that no served zone matched, of silences, and of latency.
    pub(crate) fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    /// Every query counter as it stands now, for `/metrics`.
    pub fn query_totals(&self) -> QueryTotals {
        let zones = self.current.load();
        let [rrl_dropped, rrl_slipped, rrl_would_limit] = self.counters.rrl();
        QueryTotals {
            rrl_dropped,
            rrl_slipped,
            rrl_would_limit,
            zones: zones
                .by_origin
                .iter()
                .map(|(origin, served)| (origin.to_ascii(), served.counters.totals()))
                .collect(),
            unmatched: self.counters.unmatched.totals(),
            dropped: self.counters.dropped(),
            latency: StatsTransport::ALL
                .iter()
                .map(|transport| (*transport, self.counters.latency(*transport)))
                .collect(),
        }
    }
}
