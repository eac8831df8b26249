//! The checkers, run after every step against what a server would load: the active version's
//! content, read through a client of the store that no fault touches. They call the same
//! invariant functions as the guard and the store (`model::invariants`).

use std::fmt;

use model::invariants::{self, Violation as ModelViolation};
use model::{EndpointConfig, Generation, Name, ZoneContent};
use store::{actions, AuditQuery, Store, StoreError};

/// One invariant of the safety contract, as the simulation names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Contract 5: no protected name is served below its floor (an empty endpoint is the
    /// October outcome).
    NeverEmpty,
    /// Contract 2: the active generation never decreases (and the active ref never clears).
    GenerationMonotonic,
    /// Contract 4/8: the active version exists.
    ActiveExists,
    /// Contract 4: the last K versions that were active exist.
    LastKExist,
    /// Contract 1: what is served is exactly one committed version (its content hash).
    ServedIsCommitted,
    /// Contract 7: content the guard refused for a base never becomes active on that base.
    RefusedNeverActive,
    /// Contract 8: after the faults stop, the newest acceptable plan is reached within the
    /// bound, or the zone is frozen with a reason.
    Liveness,
}

impl Invariant {
    /// The short name printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::NeverEmpty => "never-empty",
            Invariant::GenerationMonotonic => "generation-monotonic",
            Invariant::ActiveExists => "active-exists",
            Invariant::LastKExist => "last-k-exist",
            Invariant::ServedIsCommitted => "served-is-committed",
            Invariant::RefusedNeverActive => "refused-never-active",
            Invariant::Liveness => "liveness",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated invariant and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }

    /// Whether this is the October outcome: a protected name with no address at all.
    pub fn is_empty_endpoint(&self) -> bool {
        self.invariant == Invariant::NeverEmpty && self.detail.contains("empty endpoint")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// What the checkers remember between steps.
#[derive(Debug)]
pub struct Checker {
    zone: Name,
    endpoints: Vec<EndpointConfig>,
    keep_last: usize,
    last_active: Option<Generation>,
    audit_cursor: u64,
    /// Generations that were ever active, in the order they became active.
    ever_active: Vec<Generation>,
    /// Content the guard refused, with the base it was judged against, and not accepted on
    /// that base since.
    refused: Vec<(Option<Generation>, ZoneContent)>,
}

impl Checker {
    pub fn new(zone: Name, endpoints: Vec<EndpointConfig>, keep_last: usize) -> Checker {
        Checker {
            zone,
            endpoints,
            keep_last,
            last_active: None,
            audit_cursor: 0,
            ever_active: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The guard refused `content` as the successor of `base`.
    pub fn refused(&mut self, base: Option<Generation>, content: ZoneContent) {
        self.refused.push((base, content));
    }

    /// The guard accepted `content` on `base`: an identical earlier refusal is history.
    pub fn accepted(&mut self, base: Option<Generation>, content: &ZoneContent) {
        self.refused
            .retain(|(refused_base, refused)| !(*refused_base == base && same(refused, content)));
    }

    /// Every invariant, checked against the store as it is now.
    pub fn check(&mut self, store: &dyn Store) -> Vec<Violation> {
        let mut found = Vec::new();
        let moves = match self.new_ref_moves(store) {
            Ok(moves) => moves,
            Err(error) => {
                return vec![Violation::new(
                    Invariant::ServedIsCommitted,
                    format!("the audit log cannot be read: {error}"),
                )]
            }
        };
        let active = match store.refs(&self.zone) {
            Ok(refs) => refs.active,
            Err(error) => {
                return vec![Violation::new(
                    Invariant::ActiveExists,
                    format!("the refs cannot be read: {error}"),
                )]
            }
        };
        self.check_monotonic(active, &mut found);
        self.check_refused(store, &moves, &mut found);
        if let Some(active) = active {
            self.check_served(store, active, &mut found);
        }
        self.check_last_k(store, &mut found);
        found
    }

    fn check_monotonic(&mut self, active: Option<Generation>, found: &mut Vec<Violation>) {
        match (self.last_active, active) {
            (Some(before), None) => found.push(Violation::new(
                Invariant::GenerationMonotonic,
                format!("the active ref was cleared (it was at generation {before})"),
            )),
            (before, Some(now)) if before != Some(now) => {
                if let Err(violation) = invariants::check_generation_monotonic(before, now) {
                    found.push(Violation::new(
                        Invariant::GenerationMonotonic,
                        violation.to_string(),
                    ));
                }
            }
            _ => {}
        }
        self.last_active = active;
    }

    /// What a server would load: the active version's content. A version that is gone
    /// leaves the server nothing to answer with.
    fn check_served(&self, store: &dyn Store, active: Generation, found: &mut Vec<Violation>) {
        let served = match (
            store.version(&self.zone, active),
            store.content(&self.zone, active),
        ) {
            (Ok(version), Ok(content)) => {
                let hash = content.hash();
                if hash != version.content_hash {
                    found.push(Violation::new(
                        Invariant::ServedIsCommitted,
                        format!(
                            "generation {active} serves content hashing to {hash}, committed \
                             as {}",
                            version.content_hash
                        ),
                    ));
                }
                content
            }
            (Err(StoreError::NotFound { .. }), _) | (_, Err(StoreError::NotFound { .. })) => {
                found.push(Violation::new(
                    Invariant::ActiveExists,
                    format!("the active ref points at generation {active}, which is gone"),
                ));
                ZoneContent::new(self.zone.clone())
            }
            (Err(error), _) | (_, Err(error)) => {
                found.push(Violation::new(
                    Invariant::ServedIsCommitted,
                    format!("generation {active} cannot be read: {error}"),
                ));
                return;
            }
        };
        for violation in invariants::never_empty_violations(&served, &self.endpoints) {
            if let ModelViolation::BelowFloor {
                name,
                answers,
                min_answers,
            } = violation
            {
                let empty = if answers == 0 {
                    " (empty endpoint)"
                } else {
                    ""
                };
                found.push(Violation::new(
                    Invariant::NeverEmpty,
                    format!(
                        "{name} is served with {answers} address records, below its floor of \
                         {min_answers}{empty}"
                    ),
                ));
            }
        }
    }

    fn check_refused(
        &self,
        store: &dyn Store,
        moves: &[(Option<Generation>, Generation)],
        found: &mut Vec<Violation>,
    ) {
        if self.refused.is_empty() {
            return;
        }
        for (from, to) in moves {
            let Ok(content) = store.content(&self.zone, *to) else {
                continue; // already gone: the other checkers say so
            };
            if self
                .refused
                .iter()
                .any(|(base, refused)| base == from && same(refused, &content))
            {
                found.push(Violation::new(
                    Invariant::RefusedNeverActive,
                    format!(
                        "generation {to} is content the guard refused on base {}",
                        show(*from)
                    ),
                ));
            }
        }
    }

    fn check_last_k(&self, store: &dyn Store, found: &mut Vec<Violation>) {
        let mut seen = Vec::new();
        for generation in self.ever_active.iter().rev() {
            if seen.len() == self.keep_last {
                break;
            }
            if seen.contains(generation) {
                continue;
            }
            seen.push(*generation);
            if let Err(StoreError::NotFound { .. }) = store.version(&self.zone, *generation) {
                found.push(Violation::new(
                    Invariant::LastKExist,
                    format!(
                        "generation {generation}, one of the last {} that were active, is gone",
                        self.keep_last
                    ),
                ));
            }
        }
    }

    /// Ref moves of the active ref since the last step, from the audit log.
    fn new_ref_moves(
        &mut self,
        store: &dyn Store,
    ) -> Result<Vec<(Option<Generation>, Generation)>, StoreError> {
        let mut moves = Vec::new();
        loop {
            let page = store.audit(&AuditQuery {
                zone: Some(self.zone.clone()),
                after_sequence: Some(self.audit_cursor),
                ..AuditQuery::default()
            })?;
            let Some(last) = page.last() else {
                return Ok(moves);
            };
            self.audit_cursor = last.sequence;
            for entry in page {
                if entry.action == actions::REF_MOVE {
                    if let Some(to) = entry.to {
                        self.ever_active.push(to);
                        moves.push((entry.from, to));
                    }
                }
            }
        }
    }
}

/// Whether two contents answer the same (the SOA serial is the store's business).
pub fn same(planned: &ZoneContent, stored: &ZoneContent) -> bool {
    match stored.serial() {
        Some(serial) => planned.with_serial(serial) == *stored,
        None => planned == stored,
    }
}

fn show(generation: Option<Generation>) -> String {
    generation.map_or_else(|| "none".to_string(), |g| format!("g{g}"))
}
