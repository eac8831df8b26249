//! Who holds the server's TCP slots (RFC 7766 §6.2.3): a table of open connections with
//! their source and since when they are idle, and the rules that keep idle connections
//! from one client from denying TCP to everyone else:
//! * a source holds at most `tcp_connections_per_source` connections; a new one from a
//!   source at its cap takes the slot of that source's oldest idle connection;
//! * when the table is full, a new connection takes the slot of the oldest idle one;
//! * with no idle connection to give way, the new connection is refused (closed at once);
//! * while the table is at least half full, idle connections time out after
//!   `tcp_busy_idle_timeout_ms` instead of `tcp_idle_timeout_ms`.
//!
//! [`decide`] is the pure rule; [`TcpTable`] applies it under a lock and tells an evicted
//! connection to close.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::ServerConfig;

/// One open connection, as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub source: IpAddr,
    /// Since when it waits for a query (ms, any monotonic clock); `None` while it answers.
    pub idle_since: Option<u64>,
}

/// What to do with a new connection from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Admit,
    /// Admit it in place of this connection (closed).
    Replace(u64),
    Refuse,
}

/// The rule of the module documentation, for a new connection from `source`.
pub(crate) fn decide(
    slots: &BTreeMap<u64, Slot>,
    source: IpAddr,
    capacity: usize,
    per_source: usize,
) -> Decision {
    let oldest_idle = |filter: &dyn Fn(&Slot) -> bool| {
        slots
            .iter()
            .filter(|(_, slot)| filter(slot))
            .filter_map(|(id, slot)| slot.idle_since.map(|since| (since, *id)))
            .min()
            .map(|(_, id)| id)
    };
    let from_source = slots.values().filter(|slot| slot.source == source).count();
    let victim = if from_source >= per_source {
        oldest_idle(&|slot| slot.source == source)
    } else if slots.len() >= capacity {
        oldest_idle(&|_| true)
    } else {
        return Decision::Admit;
    };
    victim.map_or(Decision::Refuse, Decision::Replace)
}

/// The open connections of one server.
#[derive(Debug)]
pub(crate) struct TcpTable {
    capacity: usize,
    per_source: usize,
    idle: Duration,
    busy_idle: Duration,
    inner: Mutex<Inner>,
    started: std::time::Instant,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    slots: BTreeMap<u64, Slot>,
    close: BTreeMap<u64, Arc<Notify>>,
}

/// A connection's place in the table; leaves it when dropped.
pub(crate) struct Admitted {
    table: Arc<TcpTable>,
    id: u64,
    /// Notified when another connection takes this one's slot.
    pub evicted: Arc<Notify>,
}

impl TcpTable {
    pub(crate) fn new(config: &ServerConfig) -> TcpTable {
        TcpTable {
            capacity: config.tcp_connections.max(1),
            per_source: config.tcp_connections_per_source.max(1),
            idle: config.tcp_idle_timeout(),
            busy_idle: Duration::from_millis(config.tcp_busy_idle_timeout_ms),
            inner: Mutex::new(Inner::default()),
            started: std::time::Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `source`, or `None`: refused.
    pub(crate) fn admit(self: &Arc<TcpTable>, source: IpAddr) -> Option<Admitted> {
        let now = self.now();
        let mut inner = self.lock();
        match decide(&inner.slots, source, self.capacity, self.per_source) {
            Decision::Refuse => return None,
            Decision::Replace(victim) => {
                inner.slots.remove(&victim);
                if let Some(close) = inner.close.remove(&victim) {
                    // A stored permit: the victim sees it even if it is not waiting yet.
                    close.notify_one();
                }
            }
            Decision::Admit => {}
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evicted = Arc::new(Notify::new());
        inner.slots.insert(
            id,
            Slot {
                source,
                idle_since: Some(now),
            },
        );
        inner.close.insert(id, Arc::clone(&evicted));
        Some(Admitted {
            table: Arc::clone(self),
            id,
            evicted,
        })
    }

    /// How long a connection may wait for its next query now.
    pub(crate) fn idle_timeout(&self) -> Duration {
        if self.lock().slots.len() * 2 >= self.capacity {
            self.busy_idle.min(self.idle)
        } else {
            self.idle
        }
    }

    /// Open connections, and those of `source`.
    #[cfg(test)]
    pub(crate) fn counts(&self, source: IpAddr) -> (usize, usize) {
        let inner = self.lock();
        let of_source = inner.slots.values().filter(|s| s.source == source).count();
        (inner.slots.len(), of_source)
    }
}

impl Admitted {
    /// The connection waits for a query (it may give way to a new one).
    pub(crate) fn idle(&self) {
        let now = self.table.now();
        if let Some(slot) = self.table.lock().slots.get_mut(&self.id) {
            slot.idle_since = Some(now);
        }
    }

    /// The connection has a query in hand (it keeps its slot until it answered).
    pub(crate) fn busy(&self) {
        if let Some(slot) = self.table.lock().slots.get_mut(&self.id) {
            slot.idle_since = None;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        inner.slots.remove(&self.id);
        inner.close.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn table(slots: &[(u8, Option<u64>)]) -> BTreeMap<u64, Slot> {
        slots
            .iter()
            .enumerate()
            .map(|(id, (last, idle_since))| {
                (
                    id as u64,
                    Slot {
                        source: ip(*last),
                        idle_since: *idle_since,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_source_at_its_cap_replaces_its_own_oldest_idle_connection() {
        let slots = table(&[(1, Some(5)), (1, Some(2)), (1, None), (2, Some(1))]);
        assert_eq!(decide(&slots, ip(1), 100, 3), Decision::Replace(1));
        assert_eq!(decide(&slots, ip(3), 100, 3), Decision::Admit);
        let busy = table(&[(1, None), (1, None)]);
        assert_eq!(decide(&busy, ip(1), 100, 2), Decision::Refuse);
    }

    #[test]
    fn a_full_table_gives_the_oldest_idle_slot_to_a_new_connection() {
        let slots = table(&[(1, Some(9)), (2, None), (3, Some(4))]);
        assert_eq!(decide(&slots, ip(4), 3, 16), Decision::Replace(2));
        let busy = table(&[(1, None), (2, None)]);
        assert_eq!(decide(&busy, ip(4), 2, 16), Decision::Refuse);
    }

    #[tokio::test]
    async fn idle_connections_of_one_source_never_keep_another_out() {
        let config = ServerConfig {
            tcp_connections: 8,
            tcp_connections_per_source: 4,
            ..ServerConfig::default()
        };
        let table = Arc::new(TcpTable::new(&config));
        let held: Vec<Admitted> = (0..100).filter_map(|_| table.admit(ip(1))).collect();
        assert_eq!(held.len(), 100, "each new one replaces the oldest idle one");
        assert_eq!(table.counts(ip(1)), (4, 4));
        let other = table.admit(ip(2)).expect("another source is admitted");
        assert_eq!(table.counts(ip(2)), (5, 1));
        assert!(
            table.idle_timeout() < config.tcp_idle_timeout(),
            "over half full"
        );
        drop(other);
        drop(held);
        assert_eq!(table.counts(ip(1)), (0, 0));
    }
}
