//! `--naive`: the same world built the October 2025 way. The planner's plans reach the
//! enactors unjudged (no guard); an enactor checks once that its plan is current (the real
//! [`Enactor::prepare`](enactor::Enactor::prepare)) and later writes it over whatever is active
//! (check-then-write, no compare-and-swap); clean-up deletes plans "significantly older"
//! than the newest applied one, by plan number, with no reachability check. The checkers are
//! the same; they must catch it.

use enactor::{GuardedPlan, Prepared, RemovalLedger};
use model::{Provenance, RefName};
use planner::PlanInput;
use store::{Commit, Store};

use crate::checks::same;
use crate::world::{answers, first_clause, list, show, World};

/// How many plans older than the newest applied plan a version must be for the naive
/// clean-up to delete it.
pub(crate) const NAIVE_AGE_PLANS: u64 = 8;

impl World<'_> {
    /// The real planner, published without the guard.
    pub(crate) fn naive_plan(&mut self) -> String {
        let origin = self.zone.origin.clone();
        let now_ms = self.now_ms();
        let read = (|| {
            let active = self.store.refs(&origin)?.active;
            let content = active
                .map(|generation| self.store.content(&origin, generation))
                .transpose()?;
            let removals = RemovalLedger::new().recent(
                &self.store,
                &origin,
                &self.zone.endpoints,
                &model::GuardPolicy::default(),
                now_ms,
            )?;
            Ok::<_, store::StoreError>((active, content, removals))
        })();
        let (active, content, removals) = match read {
            Ok(read) => read,
            Err(error) => return format!("plan: failed ({})", first_clause(&error.to_string())),
        };
        let health = self.health_view();
        let plan = planner::plan(
            &PlanInput {
                zone_origin: &origin,
                static_content: &self.zone.static_content,
                endpoints: &self.zone.endpoints,
                health: &health,
                active: content.as_ref(),
                recent_removals: &removals,
                policy: &model::GuardPolicy::default(),
            },
            now_ms,
        );
        if content
            .as_ref()
            .is_some_and(|active| same(&plan.content, active))
        {
            return "plan: unchanged".to_string();
        }
        if let Some(latest) = self.board().latest(&origin) {
            if latest.base == active && latest.content == plan.content {
                return "plan: unchanged".to_string();
            }
        }
        let published = self.board().publish(GuardedPlan {
            sequence: 0,
            base_content: None,
            zone: origin,
            base: active,
            content: plan.content,
            provenance: Provenance::Planner,
            reason: plan.notes.join("; "),
            planned_at_ms: now_ms,
        });
        format!(
            "plan: published #{} on {} unjudged{}",
            published.sequence,
            show(active),
            answers(&published.content)
        )
    }

    /// Writes a prepared plan over whatever is active now (the staleness check happened
    /// once, at prepare), then cleans up by age.
    pub(crate) fn naive_apply(&mut self, index: usize, prepared: Prepared) -> String {
        let plan = prepared.plan;
        let origin = self.zone.origin.clone();
        let actor = format!("naive-enactor-{index}");
        let now_ms = self.now_ms();
        let written = self.store.refs(&origin).and_then(|refs| {
            self.store.commit(Commit {
                content: &plan.content,
                // Unconditioned: whatever is active now is taken as the base.
                base: refs.active,
                target: RefName::Active,
                provenance: Provenance::Planner,
                actor: &actor,
                reason: "check-then-write",
                now_ms,
                automation: true,
            })
        });
        match written {
            Ok(version) => {
                self.stats.applied += 1;
                self.naive_plans.insert(version.generation, plan.sequence);
                let cleaned = self.naive_clean_up(&actor);
                format!(
                    "wrote g{} over whatever was active (plan base {}); {cleaned}",
                    version.generation,
                    show(plan.base)
                )
            }
            Err(error) => format!("failed ({})", first_clause(&error.to_string())),
        }
    }

    /// Deletes every version whose plan is more than [`NAIVE_AGE_PLANS`] older than the
    /// newest applied plan, active or not.
    pub(crate) fn naive_clean_up(&mut self, actor: &str) -> String {
        let Some(newest) = self.naive_plans.values().max().copied() else {
            return format!("{actor}: cleaned none");
        };
        let doomed: Vec<model::Generation> = self
            .naive_plans
            .iter()
            .filter(|(_, sequence)| **sequence + NAIVE_AGE_PLANS < newest)
            .map(|(generation, _)| *generation)
            .collect();
        let origin = self.zone.origin.clone();
        for generation in &doomed {
            self.store.delete_version_unchecked(&origin, *generation);
            self.naive_plans.remove(generation);
        }
        format!("{actor}: cleaned by age {}", list(&doomed))
    }
}
