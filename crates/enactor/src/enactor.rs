//! The enactor tasks: take the newest guarded plan of a zone from the board and apply it
//! once, with compare-and-swap from its base; clean up by reachability after a success.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use model::{Breaker, Clock, Generation, Name, RefName};
use store::{zone_key, BreakerChange, Commit, Store, StoreError};
use tokio::sync::{watch, Notify};

use crate::board::{GuardedPlan, PlanBoard};
use crate::cache::ContentCache;
use crate::decision::{after_failure, decide, AfterFailure, Decision};

/// What happened to one plan at one enactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: `generation` is active, moved from `base` (which was active, checked by the
    /// store in the commit's transaction). `cleaned` lists what clean-up deleted after.
    Applied {
        zone: Name,
        base: Option<Generation>,
        generation: Generation,
        cleaned: Vec<Generation>,
        /// Which ref moved: `Active`, or in canary mode `Canary` — then `generation` is the
        /// zone's canary, made from `base` (still active when the store checked, in the
        /// commit's transaction), and active moves only when the validator passed it
        /// ([`crate::promote_canary`]). An enactor that finds the same answers already
        /// canaried from the same base reports that canary and commits nothing.
        target: RefName,
    },
    /// The plan's base was older than the active generation: dropped, never applied.
    DroppedStale {
        zone: Name,
        base: Option<Generation>,
        active: Option<Generation>,
    },
    /// The store's compare-and-swap refused the commit (the active ref moved after the
    /// enactor looked): dropped, and a re-plan was requested.
    Conflict {
        zone: Name,
        base: Option<Generation>,
        actual: Option<Generation>,
    },
    /// The plan's base is not a generation the zone has reached: a re-plan was requested.
    Replan {
        zone: Name,
        base: Option<Generation>,
        active: Option<Generation>,
    },
    /// The zone's breaker is tripped: the enactor left the zone alone.
    Frozen { zone: Name, reason: String },
    /// The store failed or refused; the plan was dropped (and, for a refusal of guarded
    /// content, the breaker tripped). A re-plan was requested.
    Failed { zone: Name, error: String },
}

impl Outcome {
    pub fn zone(&self) -> &Name {
        match self {
            Outcome::Applied { zone, .. }
            | Outcome::DroppedStale { zone, .. }
            | Outcome::Conflict { zone, .. }
            | Outcome::Replan { zone, .. }
            | Outcome::Frozen { zone, .. }
            | Outcome::Failed { zone, .. } => zone,
        }
    }
}

/// Called with the enactor's index and every outcome (metrics, tests).
pub type Observer = Arc<dyn Fn(usize, &Outcome) + Send + Sync>;

/// A plan the enactor looked at and decided to apply: the check half of the write. The store
/// checks again in the commit's transaction, which is what makes a stall between the two
/// harmless (this is exactly the October race).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Arc<GuardedPlan>,
    /// The active generation when the enactor looked.
    pub active: Option<Generation>,
}

/// One enactor. Several run side by side on the same board; every write is fenced.
pub struct Enactor {
    index: usize,
    actor: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keep_last: usize,
    replan: Arc<Notify>,
    observer: Option<Observer>,
    /// Which ref a plan moves: `Active` (default) or `Canary` (canary mode).
    target: RefName,
    /// Where a committed version's content is remembered for the control loop.
    cache: Option<Arc<ContentCache>>,
}

impl fmt::Debug for Enactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enactor")
            .field("actor", &self.actor)
            .field("keep_last", &self.keep_last)
            .finish_non_exhaustive()
    }
}

impl Enactor {
    /// Enactor number `index` (actor `enactor-<index>`). `replan` is notified whenever a plan
    /// is dropped for a reason a new plan can fix.
    pub fn new(
        index: usize,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keep_last: usize,
        replan: Arc<Notify>,
    ) -> Enactor {
        Enactor {
            index,
            actor: format!("enactor-{index}"),
            store,
            clock,
            keep_last,
            replan,
            observer: None,
            target: RefName::Active,
            cache: None,
        }
    }

    /// Remembers the content of every version this enactor commits in `cache`, so the
    /// control loop's next round reads it without loading the zone.
    pub fn with_cache(mut self, cache: Arc<ContentCache>) -> Enactor {
        self.cache = Some(cache);
        self
    }

    pub fn with_observer(mut self, observer: Observer) -> Enactor {
        self.observer = Some(observer);
        self
    }

    /// Canary mode with `RefName::Canary`: plans go to the canary ref and wait for the
    /// validator's promotion. `RefName::Active` (the default) applies them directly.
    /// The enactor of node `node`: actor `NODE/enactor-N` (unchanged when `node` is empty).
    pub fn on_node(mut self, node: &str) -> Enactor {
        if !node.is_empty() {
            self.actor = format!("{node}/enactor-{}", self.index);
        }
        self
    }

    pub fn with_target(mut self, target: RefName) -> Enactor {
        self.target = target;
        self
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Looks at the zone (breaker, active ref) and decides. `Err` is the final outcome when
    /// the plan is not to be applied.
    pub async fn prepare(&self, plan: Arc<GuardedPlan>) -> Result<Prepared, Outcome> {
        let zone = plan.zone.clone();
        let looked = blocking(&self.store, {
            let zone = zone.clone();
            move |store| Ok((store.breaker(&zone)?, store.refs(&zone)?.active))
        })
        .await;
        let (breaker, active) = match looked {
            Ok(looked) => looked,
            Err(error) => return Err(self.finish(self.failed(&zone, &error).await)),
        };
        if let Breaker::Tripped { reason, .. } = breaker {
            return Err(self.finish(Outcome::Frozen { zone, reason }));
        }
        match decide(active, plan.base) {
            Decision::Apply => Ok(Prepared { plan, active }),
            Decision::DropStale => Err(self.finish(Outcome::DroppedStale {
                zone,
                base: plan.base,
                active,
            })),
            Decision::Replan => Err(self.finish(Outcome::Replan {
                zone,
                base: plan.base,
                active,
            })),
        }
    }

    /// The write half: commits the prepared plan with compare-and-swap from its base, as
    /// automation, then cleans up by reachability.
    pub async fn apply(&self, prepared: Prepared) -> Outcome {
        if self.target == RefName::Canary {
            return self.apply_to_canary(prepared).await;
        }
        let plan = prepared.plan;
        let zone = plan.zone.clone();
        let actor = self.actor.clone();
        let now_ms = self.clock.now_ms();
        let keep_last = self.keep_last;
        let cache = self.cache.clone();
        let committed = blocking(&self.store, {
            let plan = Arc::clone(&plan);
            let actor = actor.clone();
            move |store| {
                if let Some(cache) = &cache {
                    cache.committing(&plan.zone, &plan.content);
                }
                let commit = Commit {
                    content: &plan.content,
                    base: plan.base,
                    target: RefName::Active,
                    provenance: plan.provenance.clone(),
                    actor: &actor,
                    reason: &plan.reason,
                    now_ms,
                    automation: true,
                };
                let version = match &plan.base_content {
                    Some(base_content) => store.commit_from(commit, base_content)?,
                    None => store.commit(commit)?,
                };
                if let Some(cache) = &cache {
                    cache.remember(&version, plan.content.with_serial(version.serial));
                }
                // Clean-up failing leaves extra versions, never a missing one: not fatal,
                // but said, so a store that keeps failing it is noticed before it fills.
                let cleaned = store
                    .clean_up(&plan.zone, keep_last, &actor, now_ms)
                    .unwrap_or_else(|error| {
                        tracing::warn!(zone = %plan.zone, %error, "clean-up failed; old versions stay until the next commit's clean-up");
                        Vec::new()
                    });
                Ok((version, cleaned))
            }
        })
        .await;
        let outcome = match committed {
            Ok((version, cleaned)) => Outcome::Applied {
                zone,
                base: plan.base,
                generation: version.generation,
                cleaned,
                target: RefName::Active,
            },
            Err(StoreError::Conflict { actual, .. }) => Outcome::Conflict {
                zone,
                base: plan.base,
                actual,
            },
            Err(error) => self.failed(&zone, &error).await,
        };
        self.finish(outcome)
    }

    /// Canary mode's write half: commits the plan to the canary ref, with compare-and-swap
    /// on active from the plan's base, as automation. No clean-up: the canary's base must
    /// stay until the promotion decides.
    async fn apply_to_canary(&self, prepared: Prepared) -> Outcome {
        let plan = prepared.plan;
        let zone = plan.zone.clone();
        let actor = self.actor.clone();
        let now_ms = self.clock.now_ms();
        let committed = blocking(&self.store, {
            let plan = Arc::clone(&plan);
            move |store| {
                if let Some(existing) = same_canary(store, &plan)? {
                    return Ok(existing);
                }
                let commit = Commit {
                    content: &plan.content,
                    base: plan.base,
                    target: RefName::Canary,
                    provenance: plan.provenance.clone(),
                    actor: &actor,
                    reason: &plan.reason,
                    now_ms,
                    automation: true,
                };
                let version = match &plan.base_content {
                    Some(base_content) => store.commit_from(commit, base_content)?,
                    None => store.commit(commit)?,
                };
                Ok(version.generation)
            }
        })
        .await;
        let outcome = match committed {
            Ok(generation) => Outcome::Applied {
                zone,
                base: plan.base,
                generation,
                cleaned: Vec::new(),
                target: RefName::Canary,
            },
            Err(StoreError::Conflict { actual, .. }) => Outcome::Conflict {
                zone,
                base: plan.base,
                actual,
            },
            Err(error) => self.failed(&zone, &error).await,
        };
        self.finish(outcome)
    }

    /// Prepares and applies one plan.
    pub async fn enact(&self, plan: Arc<GuardedPlan>) -> Outcome {
        match self.prepare(plan).await {
            Ok(prepared) => self.apply(prepared).await,
            Err(outcome) => outcome,
        }
    }

    /// Takes every new plan from the board until `shutdown` turns true (or its sender goes).
    /// Each plan is looked at once by this enactor; a plan replaced on the board before this
    /// enactor got to it is never looked at.
    pub async fn run(self, board: Arc<PlanBoard>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = board.changes();
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            changes.borrow_and_update();
            for plan in board.latest_plans() {
                let key = zone_key(&plan.zone);
                if seen.get(&key).is_some_and(|seen| *seen >= plan.sequence) {
                    continue;
                }
                seen.insert(key, plan.sequence);
                self.enact(plan).await;
                if *shutdown.borrow() {
                    return;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
            }
        }
    }

    /// The outcome of a failed store call; trips the breaker when the failure says the
    /// state is impossible.
    async fn failed(&self, zone: &Name, error: &StoreError) -> Outcome {
        match after_failure(error) {
            AfterFailure::Frozen { reason } => Outcome::Frozen {
                zone: zone.clone(),
                reason,
            },
            AfterFailure::Replan => Outcome::Failed {
                zone: zone.clone(),
                error: error.to_string(),
            },
            AfterFailure::Trip { reason } => {
                let actor = self.actor.clone();
                let now_ms = self.clock.now_ms();
                let tripped = blocking(&self.store, {
                    let zone = zone.clone();
                    let reason = reason.clone();
                    move |store| {
                        store.trip_breaker(BreakerChange {
                            zone: &zone,
                            reason: &reason,
                            actor: &actor,
                            now_ms,
                        })
                    }
                })
                .await;
                let error = match tripped {
                    Ok(_) => reason,
                    Err(trip_error) => {
                        format!("{reason}; tripping the breaker failed: {trip_error}")
                    }
                };
                Outcome::Failed {
                    zone: zone.clone(),
                    error,
                }
            }
        }
    }

    fn finish(&self, outcome: Outcome) -> Outcome {
        if matches!(
            outcome,
            Outcome::Conflict { .. } | Outcome::Replan { .. } | Outcome::Failed { .. }
        ) {
            self.replan.notify_one();
        }
        match &outcome {
            Outcome::Applied {
                generation, target, ..
            } => {
                tracing::info!(actor = %self.actor, zone = %outcome.zone(), %generation, %target, "applied")
            }
            // A store that cannot take a commit (full disk, unwritable file) must be seen in
            // the log, not only in the metrics: the served version stops moving.
            Outcome::Failed { zone, error } => {
                tracing::error!(actor = %self.actor, %zone, %error, "commit failed: the active version keeps serving; the plan is made again")
            }
            other => tracing::debug!(actor = %self.actor, outcome = ?other, "plan not applied"),
        }
        if let Some(observer) = &self.observer {
            observer(self.index, &outcome);
        }
        outcome
    }
}

/// The zone's pending canary when it was made from the plan's base and answers the same as
/// the plan (another enactor got there first). A read that fails means "no": committing a
/// duplicate canary is harmless.
fn same_canary(store: &dyn Store, plan: &GuardedPlan) -> Result<Option<Generation>, StoreError> {
    let Some(canary) = store.refs(&plan.zone)?.canary else {
        return Ok(None);
    };
    let same = store
        .version(&plan.zone, canary)
        .is_ok_and(|version| version.parent == plan.base)
        && store
            .content(&plan.zone, canary)
            .is_ok_and(|content| crate::control::same_answers(&plan.content, &content));
    Ok(same.then_some(canary))
}

/// Runs a synchronous store call on the blocking pool. A panic in the call is reported as a
/// backend failure: the caller drops its plan and moves on.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    work: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(&*store))
        .await
        .unwrap_or_else(|join| {
            Err(StoreError::Backend {
                location: "store".to_string(),
                operation: "a blocking store call".to_string(),
                detail: join.to_string(),
            })
        })
}
