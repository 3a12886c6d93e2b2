//! [`ArrowWgpuRule`]: puts the library's operators into DataFusion's physical plans where
//! the engine has a GPU and can run the node; leaves DataFusion's node, and says why in
//! the plan's notes, where it can't.
//!
//! Without a GPU the rule changes nothing: DataFusion's own hash aggregate, sort and
//! filter, with the exact aggregate functions registered beside the rule
//! ([`crate::exact`]), are the exact CPU path, and faster than the library's own CPU
//! operators on many cores.

use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Schema};
use arrow_wgpu::Engine;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, ExecutionPlan, ExecutionPlanProperties, ReplaceChildrenOptions,
};

use crate::exec::{engine_place, placeholder, WgpuAggregateExec, WgpuFilterExec, WgpuSortExec};
use crate::translate::{self, Refusal};

/// What the rule did to a plan, node by node: the lines `arrow-wgpu sql --explain` prints
/// under the plan. Cloned handles share one list.
#[derive(Debug, Clone, Default)]
pub struct PlanNotes(Arc<Mutex<Vec<String>>>);

impl PlanNotes {
    fn push(&self, note: String) {
        if let Ok(mut n) = self.0.lock() {
            n.push(note);
        }
    }

    /// The notes so far, emptied.
    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }
}

/// The physical optimizer rule: DataFusion's filter, aggregate (partial and final, or
/// single) and sort nodes become [`WgpuFilterExec`], [`WgpuAggregateExec`] and
/// [`WgpuSortExec`] where the engine has a GPU that runs them.
#[derive(Debug)]
pub struct ArrowWgpuRule {
    engine: Arc<Engine>,
    batch_rows: usize,
    notes: PlanNotes,
    distributed: bool,
}

impl ArrowWgpuRule {
    /// The rule for `engine`, coalescing to `batch_rows` rows per engine call, writing
    /// what it does to `notes`.
    pub fn new(engine: Arc<Engine>, batch_rows: usize, notes: PlanNotes) -> ArrowWgpuRule {
        ArrowWgpuRule {
            engine,
            batch_rows,
            notes,
            distributed: false,
        }
    }

    /// The rule for a plan that runs over distributed workers: an aggregation split into
    /// partial and final steps (or into hash partitions, SinglePartitioned) stays
    /// DataFusion's, so its first step runs where the rows are and only exact states
    /// cross the network (made one node, the aggregation would pull every row to one
    /// place). Filters, sorts and single-step aggregates are replaced as on one machine,
    /// without fusing a filter into an aggregate (a worker plans each shipped node back
    /// as one node), and each worker runs them on its own engine.
    pub fn for_distributed_plans(mut self) -> ArrowWgpuRule {
        self.distributed = true;
        self
    }

    /// Why the GPU can't hold a column of `schema`, if one can't.
    fn unheld(schema: &Schema) -> Option<Refusal> {
        schema
            .fields()
            .iter()
            .find(|f| !Engine::gpu_holds(f.data_type()))
            .map(|f| {
                format!(
                    "column {} of type {} is not held on the GPU",
                    f.name(),
                    f.data_type()
                )
            })
    }

    fn filter(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        f: &FilterExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>, Refusal> {
        if let Some(r) = Self::unheld(&f.input().schema()) {
            return Err(r);
        }
        if f.fetch().is_some() {
            // DataFusion pushes a LIMIT into the filter; ours would return every match.
            return Err("a filter with a limit pushed into it".into());
        }
        translate::same_answer(f.predicate(), &f.input().schema())?;
        let translated = translate::expr(f.predicate())?;
        let schema = translate::renamed_schema(&f.input().schema());
        if let Some(reason) =
            Engine::gpu_declines_filter(&schema, &translated).map_err(|e| e.to_string())?
        {
            return Err(format!("the GPU's kernels don't take {reason}"));
        }
        Ok(Some(Arc::new(WgpuFilterExec::new(
            f.input().clone(),
            f.predicate().clone(),
            translated,
            f.projection().as_ref().map(|p| p.iter().copied().collect()),
            self.engine.clone(),
            self.batch_rows,
            f.properties().clone(),
            over_placeholder(node, f.input())?,
        ))))
    }

    /// A whole aggregation: `top` is the node that outputs final values (Single,
    /// SinglePartitioned, Final or FinalPartitioned), `raw` the node whose input is the raw
    /// rows (itself, or the Partial below the final one).
    fn aggregate(&self, top: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>, Refusal> {
        let raw: &AggregateExec = match top.mode() {
            AggregateMode::SinglePartitioned if self.distributed => {
                return Err("distributed, each task aggregates its own hash partition of the rows".into())
            }
            AggregateMode::Single | AggregateMode::SinglePartitioned => top,
            AggregateMode::Final | AggregateMode::FinalPartitioned if self.distributed => {
                return Err("distributed, its partial step runs where the rows are and only exact states cross the network".into())
            }
            AggregateMode::Final | AggregateMode::FinalPartitioned => partial_below(top)
                .ok_or("the partial aggregate under this final one was not found")?,
            _ => return Ok(None),
        };
        if raw.group_expr().has_grouping_set() {
            return Err("GROUPING SETS / ROLLUP / CUBE".into());
        }
        if raw.limit_options().is_some() {
            return Err("an aggregate with a limit".into());
        }
        let input = raw.input();
        if let Some(r) = Self::unheld(&input.schema()) {
            return Err(r);
        }
        // Keys: input columns. A filter under the aggregate is fused in front (not with a
        // limit pushed into it; not in a distributed plan, where each shipped node must
        // stay one node on a worker that plans it back on DataFusion, so that the workers'
        // metrics land on the coordinator's nodes one to one).
        let (input, filter) = match input.downcast_ref::<FilterExec>() {
            Some(f)
                if !self.distributed
                    && f.projection().is_none()
                    && f.fetch().is_none()
                    && Self::unheld(&f.input().schema()).is_none() =>
            {
                match translate::same_answer(f.predicate(), &f.input().schema())
                    .and_then(|_| translate::expr(f.predicate()))
                {
                    Ok(p) => (f.input().clone(), Some(p)),
                    Err(_) => (input.clone(), None),
                }
            }
            _ => (input.clone(), None),
        };
        // DataFusion's single step over the rows this node reads (through the fused
        // filter): what a distributed plan ships in its place.
        let equivalent_input = match filter {
            Some(_) => over_placeholder(raw.input(), &input)?,
            None => placeholder(input.schema()),
        };
        let equivalent: Arc<dyn ExecutionPlan> = Arc::new(
            AggregateExec::try_new(
                AggregateMode::Single,
                raw.group_expr().clone(),
                raw.aggr_expr().to_vec(),
                raw.filter_expr().to_vec(),
                equivalent_input,
                raw.input_schema(),
            )
            .map_err(|e| e.to_string())?,
        );
        if equivalent.schema() != top.schema() {
            return Err(
                "DataFusion's single-step form of this aggregate has another schema".into(),
            );
        }
        let keys = raw
            .group_expr()
            .expr()
            .iter()
            .map(|(e, _)| {
                // DataFusion groups -0.0 with 0.0; the library keeps them apart (row
                // format equality), so float keys stay on DataFusion.
                if e.data_type(&input.schema()).is_ok_and(|dt| {
                    matches!(
                        dt,
                        DataType::Float16 | DataType::Float32 | DataType::Float64
                    )
                }) {
                    return Err(format!(
                        "the float group key {e} (DataFusion groups -0.0 with 0.0)"
                    ));
                }
                e.downcast_ref::<Column>()
                    .map(|c| c.index())
                    .ok_or_else(|| format!("the group key {e} (only columns)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let aggs = raw
            .aggr_expr()
            .iter()
            .zip(raw.filter_expr())
            .enumerate()
            .map(|(i, (a, f))| translate::aggregate(i, a, f.as_ref(), &input.schema()))
            .collect::<Result<Vec<_>, _>>()?;
        // The GPU's kernels must take every key, aggregate and the fused filter (types and
        // expressions), or DataFusion's node stays: the engine would only refuse it there.
        let names: Vec<String> = keys.iter().map(|&k| translate::column_name(k)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let acc = self
            .engine
            .group_by_accumulator(
                translate::renamed_schema(&input.schema()),
                &names,
                &aggs,
                arrow_wgpu::GroupByOptions::default(),
            )
            .map_err(|e| e.to_string())?;
        if let Some(reason) = acc
            .gpu_declines(filter.as_ref())
            .map_err(|e| e.to_string())?
        {
            return Err(format!("the GPU's kernels don't take {reason}"));
        }
        let description = format!(
            "mode={:?}, gby=[{}], aggr=[{}]",
            top.mode(),
            raw.group_expr()
                .expr()
                .iter()
                .map(|(e, n)| format!("{e} as {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            raw.aggr_expr()
                .iter()
                .map(|a| a.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(input))
        } else {
            input
        };
        let ours: Arc<dyn ExecutionPlan> = Arc::new(
            WgpuAggregateExec::new(
                input,
                keys,
                aggs,
                filter,
                description,
                self.engine.clone(),
                self.batch_rows,
                top.schema(),
                equivalent,
            )
            .with_batch_by_batch(acc.gpu_groups_batch_by_batch()),
        );
        // Keep the partitioning the plan above expects.
        let partitioning = top.properties().output_partitioning().clone();
        if partitioning.partition_count() > 1 {
            return Ok(Some(Arc::new(
                RepartitionExec::try_new(ours, partitioning).map_err(|e| e.to_string())?,
            )));
        }
        Ok(Some(ours))
    }

    fn sort(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        s: &SortExec,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>, Refusal> {
        if s.preserve_partitioning() && s.input().output_partitioning().partition_count() > 1 {
            return Err("a sort of each partition (merged above)".into());
        }
        if let Some(r) = Self::unheld(&s.input().schema()) {
            return Err(r);
        }
        let keys = s
            .expr()
            .iter()
            .map(translate::sort_key)
            .collect::<Result<Vec<_>, _>>()?;
        let schema = translate::renamed_schema(&s.input().schema());
        if let Some(reason) =
            Engine::gpu_declines_sort(&schema, &keys).map_err(|e| e.to_string())?
        {
            return Err(format!("the GPU's radix sort doesn't take {reason}"));
        }
        let input = s.input().clone();
        let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(input))
        } else {
            input
        };
        let equivalent = over_placeholder(node, &input)?;
        Ok(Some(Arc::new(WgpuSortExec::new(
            input,
            keys,
            s.expr().iter().map(|e| e.to_string()).collect(),
            s.fetch(),
            self.engine.clone(),
            s.properties().clone(),
            equivalent,
        ))))
    }
}

impl ArrowWgpuRule {
    /// The library's operator in place of `node` alone (its inputs as they are), where the
    /// engine has a GPU that runs it: `None` where `node` is not a filter, aggregate or
    /// sort, else its name and the replacement (`Ok(None)`: nothing to replace, as a
    /// partial aggregate) or why DataFusion's node stays.
    #[allow(clippy::type_complexity)]
    pub(crate) fn attempt(
        &self,
        node: &Arc<dyn ExecutionPlan>,
    ) -> Option<(
        &'static str,
        Result<Option<Arc<dyn ExecutionPlan>>, Refusal>,
    )> {
        // Without a GPU, DataFusion's nodes are the exact CPU path.
        self.engine.adapter()?;
        if let Some(f) = node.downcast_ref::<FilterExec>() {
            Some(("FilterExec", self.filter(node, f)))
        } else if let Some(a) = node.downcast_ref::<AggregateExec>() {
            if matches!(
                a.mode(),
                AggregateMode::Partial | AggregateMode::PartialReduce
            ) {
                return Some(("AggregateExec", Ok(None)));
            }
            Some(("AggregateExec", self.aggregate(a)))
        } else if let Some(s) = node.downcast_ref::<SortExec>() {
            Some(("SortExec", self.sort(node, s)))
        } else {
            None
        }
    }
}

/// `node` (one input) over a [`placeholder`] of `input`'s schema instead of its input.
fn over_placeholder(
    node: &Arc<dyn ExecutionPlan>,
    input: &Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>, Refusal> {
    node.clone()
        .replace_children(
            vec![placeholder(input.schema())],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
        .map_err(|e| e.to_string())
}

/// The Partial aggregate under a final one, through the exchange between them.
fn partial_below(top: &AggregateExec) -> Option<&AggregateExec> {
    let mut node = top.input();
    loop {
        if let Some(a) = node.downcast_ref::<AggregateExec>() {
            return (*a.mode() == AggregateMode::Partial).then_some(a);
        }
        if node.downcast_ref::<RepartitionExec>().is_some()
            || node.downcast_ref::<CoalescePartitionsExec>().is_some()
            || node.name() == "CoalesceBatchesExec"
        {
            node = node.children()[0];
            continue;
        }
        return None;
    }
}

impl PhysicalOptimizerRule for ArrowWgpuRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.engine.adapter().is_none() {
            self.notes.push(
                "no GPU in use: every node is DataFusion's, with arrow-wgpu's exact sum/avg/var/stddev (the exact CPU path)"
                    .into(),
            );
            return Ok(plan);
        }
        let place = engine_place(&self.engine);
        let out = plan.transform_down(|node| {
            let Some((what, attempt)) = self.attempt(&node) else {
                return Ok(Transformed::no(node));
            };
            match attempt {
                Ok(Some(replaced)) => {
                    self.notes
                        .push(format!("{what} -> {} on {place}", replaced.name()));
                    Ok(Transformed::yes(replaced))
                }
                Ok(None) => Ok(Transformed::no(node)),
                Err(why) => {
                    self.notes
                        .push(format!("{what} stays on DataFusion (CPU): {why}"));
                    Ok(Transformed::no(node))
                }
            }
        })?;
        Ok(out.data)
    }

    fn name(&self) -> &str {
        "arrow_wgpu"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
