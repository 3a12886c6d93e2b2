//! The library's operations as DataFusion physical operators: [`WgpuFilterExec`],
//! [`WgpuAggregateExec`] and [`WgpuSortExec`]. Each takes DataFusion's small batches,
//! coalesces them into large ones (a GPU pays per upload and per dispatch, not per row),
//! runs the library's [`Engine`] on them off the async threads, and reports the time of
//! each part (upload, kernels, download, CPU) as metrics that `EXPLAIN ANALYZE` and
//! `arrow-wgpu sql --profile` print.

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast_with_options, concat_batches, CastOptions};
use arrow::datatypes::SchemaRef;
use arrow_wgpu::{Agg, Engine, Expr, GroupByOptions, Phase, Profile, SortKey};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet, Time,
};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

use crate::translate::renamed_schema;

/// Rows an operator gathers before it hands a batch to the engine, unless told otherwise
/// ([`crate::ArrowWgpuOptions::batch_rows`]): large enough that an upload and a
/// dispatch are paid per million rows, not per DataFusion batch of 8k.
pub const DEFAULT_BATCH_ROWS: usize = 1 << 21;

/// The leaf that stands for an operator's input in its [`WgpuFilterExec::datafusion_equivalent`]
/// (and the others'): an `EmptyExec` of the input's schema, replaced by the real input
/// where the equivalent is planned again (on a distributed worker).
pub fn placeholder(schema: SchemaRef) -> Arc<dyn ExecutionPlan> {
    Arc::new(datafusion::physical_plan::empty::EmptyExec::new(schema))
}

/// The properties DataFusion's node `datafusion` (over a [`placeholder`]) has over
/// `input`: those of a node of ours that stands for it, when its input changes (the
/// partitioning follows the input's).
fn properties_over(
    datafusion: &Arc<dyn ExecutionPlan>,
    input: &Arc<dyn ExecutionPlan>,
) -> Result<Arc<PlanProperties>> {
    let node = datafusion.clone().replace_children(
        vec![input.clone()],
        ReplaceChildrenOptions::new(datafusion::physical_plan::ChildrenPropertiesMode::Recompute),
    )?;
    Ok(node.properties().clone())
}

/// Where `engine` runs the operators, as the plans show it: `GPU NAME (BACKEND)` or
/// `CPU (exact)`.
///
/// # Example
/// ```
/// use arrow_wgpu::{Backend, Engine};
/// let engine = Engine::new(Backend::Cpu).unwrap();
/// assert_eq!(arrow_wgpu_datafusion::exec::engine_place(&engine), "CPU (exact)");
/// ```
pub fn engine_place(engine: &Engine) -> String {
    match engine.adapter() {
        Some(a) => format!("GPU {} ({:?})", a.name, a.backend),
        None => "CPU (exact)".to_string(),
    }
}

/// The time metrics of one operator's partition: the engine's phases.
#[derive(Clone)]
struct PhaseTimes {
    upload: Time,
    kernels: Time,
    download: Time,
    cpu: Time,
}

impl PhaseTimes {
    fn new(metrics: &ExecutionPlanMetricsSet, partition: usize) -> PhaseTimes {
        let time = |name: &'static str| MetricBuilder::new(metrics).subset_time(name, partition);
        PhaseTimes {
            upload: time("gpu_upload"),
            kernels: time("gpu_kernels"),
            download: time("gpu_download"),
            cpu: time("engine_cpu"),
        }
    }

    fn add(&self, profile: &Profile) {
        for step in &profile.steps {
            for (phase, d) in &step.phases {
                let t = match phase {
                    Phase::Upload => &self.upload,
                    Phase::Kernels => &self.kernels,
                    Phase::Download => &self.download,
                    _ => &self.cpu,
                };
                t.add_duration(*d);
            }
        }
    }
}

fn engine_error(e: arrow_wgpu::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// `batch`'s columns under the names the translated expressions use.
fn renamed(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// `columns` as `schema` says: each cast to its field's type where the engine's result
/// type differs (a decimal sum's precision), checked (an overflow is an error).
fn conform(columns: Vec<ArrayRef>, rows: usize, schema: &SchemaRef) -> Result<RecordBatch> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                cast_with_options(&c, f.data_type(), &options)
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Reads `input` and hands it on in batches of at least `rows` rows (the last may be
/// smaller), concatenated.
async fn next_large(
    input: &mut SendableRecordBatchStream,
    schema: &SchemaRef,
    rows: usize,
) -> Result<Option<RecordBatch>> {
    let mut parts = Vec::new();
    let mut have = 0;
    while have < rows {
        match input.next().await {
            Some(batch) => {
                let batch = batch?;
                have += batch.num_rows();
                if batch.num_rows() > 0 {
                    parts.push(batch);
                }
            }
            None => break,
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(concat_batches(schema, &parts)?))
}

/// Runs `f` on a blocking thread (the engine blocks on the GPU), timing its phases.
async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    times: &PhaseTimes,
    f: impl FnOnce(&Engine) -> arrow_wgpu::Result<T> + Send + 'static,
) -> Result<T> {
    let engine = engine.clone();
    let (out, profile) = tokio::task::spawn_blocking(move || engine.profiled(|e| f(e)))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(engine_error)?;
    times.add(&profile);
    Ok(out)
}

fn display_exprs(exprs: &[String]) -> String {
    exprs.join(", ")
}

macro_rules! unary_plan_boilerplate {
    () => {
        fn properties(&self) -> &Arc<PlanProperties> {
            &self.properties
        }

        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            vec![&self.input]
        }

        fn metrics(&self) -> Option<MetricsSet> {
            Some(self.metrics.clone_inner())
        }

        #[allow(deprecated)]
        fn with_new_children(
            self: Arc<Self>,
            children: Vec<Arc<dyn ExecutionPlan>>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            self.replace_children(
                children,
                ReplaceChildrenOptions::new(
                    datafusion::physical_plan::ChildrenPropertiesMode::Recompute,
                ),
            )
        }
    };
}

/// A filter (with DataFusion's projection after it) on the library's engine.
#[derive(Debug)]
pub struct WgpuFilterExec {
    input: Arc<dyn ExecutionPlan>,
    /// DataFusion's predicate, for display and `apply_expressions`.
    predicate: Arc<dyn PhysicalExpr>,
    translated: Expr,
    projection: Option<Vec<usize>>,
    engine: Arc<Engine>,
    batch_rows: usize,
    properties: Arc<PlanProperties>,
    datafusion: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl WgpuFilterExec {
    /// A filter of `input` by `predicate` (translated: `translated`), keeping the columns
    /// `projection` names, with the properties of the DataFusion node it replaces;
    /// `datafusion` is that node over a [`placeholder`] of `input`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        predicate: Arc<dyn PhysicalExpr>,
        translated: Expr,
        projection: Option<Vec<usize>>,
        engine: Arc<Engine>,
        batch_rows: usize,
        properties: Arc<PlanProperties>,
        datafusion: Arc<dyn ExecutionPlan>,
    ) -> WgpuFilterExec {
        WgpuFilterExec {
            input,
            predicate,
            translated,
            projection,
            engine,
            batch_rows,
            properties,
            datafusion,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The DataFusion node this one stands for, over a [`placeholder`] of its input: what a
    /// distributed plan ships to a worker, which plans it again on its own engine.
    pub fn datafusion_equivalent(&self) -> &Arc<dyn ExecutionPlan> {
        &self.datafusion
    }
}

impl DisplayAs for WgpuFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WgpuFilterExec: {} on {}",
            self.predicate,
            engine_place(&self.engine)
        )?;
        if let Some(p) = &self.projection {
            write!(f, ", projection={p:?}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for WgpuFilterExec {
    fn name(&self) -> &str {
        "WgpuFilterExec"
    }

    unary_plan_boilerplate!();

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        f(&self.predicate)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        let properties = properties_over(&self.datafusion, &input)?;
        Ok(Arc::new(WgpuFilterExec::new(
            input,
            self.predicate.clone(),
            self.translated.clone(),
            self.projection.clone(),
            self.engine.clone(),
            self.batch_rows,
            properties,
            self.datafusion.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let input_schema = self.input.schema();
        let renamed_input = renamed_schema(&input_schema);
        let out_schema = self.schema();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let times = PhaseTimes::new(&self.metrics, partition);
        let (engine, predicate, projection, rows) = (
            self.engine.clone(),
            self.translated.clone(),
            self.projection.clone(),
            self.batch_rows,
        );
        let mut builder = RecordBatchReceiverStreamBuilder::new(out_schema.clone(), 2);
        let tx = builder.tx();
        builder.spawn(async move {
            while let Some(batch) = next_large(&mut input, &input_schema, rows).await? {
                let timer = baseline.elapsed_compute().timer();
                let batch = renamed(&batch, &renamed_input)?;
                let predicate = predicate.clone();
                let kept = blocking(&engine, &times, move |e| e.filter(&batch, &predicate)).await?;
                let kept = match &projection {
                    Some(p) => kept.project(p)?,
                    None => kept,
                };
                let out = conform(kept.columns().to_vec(), kept.num_rows(), &out_schema)?;
                timer.done();
                baseline.record_output(out.num_rows());
                if tx.send(Ok(out)).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

/// A whole aggregation (DataFusion's partial and final steps, or its single step) on the
/// library's engine: groups by input columns, the library's aggregates (exact float sums
/// and means), an optional filter fused in front. One output partition.
#[derive(Debug)]
pub struct WgpuAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<usize>,
    aggs: Vec<Agg>,
    filter: Option<Expr>,
    /// What DataFusion's node showed: group and aggregate expressions.
    description: String,
    engine: Arc<Engine>,
    batch_rows: usize,
    properties: Arc<PlanProperties>,
    datafusion: Arc<dyn ExecutionPlan>,
    /// Why the GPU groups batch by batch instead of keeping its hash table across them
    /// (`None`: it keeps it), as [`arrow_wgpu::GroupByAccumulator::gpu_groups_batch_by_batch`]
    /// says.
    batch_by_batch: Option<String>,
    metrics: ExecutionPlanMetricsSet,
}

impl WgpuAggregateExec {
    /// An aggregation of `input` (one partition) by the input columns `keys`, computing
    /// `aggs` (named `a0, a1, ...` and over columns named as [`crate::translate`] names
    /// them) of the rows where `filter` holds, output as `schema` (DataFusion's);
    /// `datafusion` is DataFusion's single-step aggregate (over its filter, if one is
    /// fused) of a [`placeholder`] of `input`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<usize>,
        aggs: Vec<Agg>,
        filter: Option<Expr>,
        description: String,
        engine: Arc<Engine>,
        batch_rows: usize,
        schema: SchemaRef,
        datafusion: Arc<dyn ExecutionPlan>,
    ) -> WgpuAggregateExec {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        WgpuAggregateExec {
            input,
            keys,
            aggs,
            filter,
            description,
            engine,
            batch_rows,
            properties,
            datafusion,
            batch_by_batch: None,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The node with what `EXPLAIN` says of its hash table: `why` the GPU groups batch
    /// by batch, or `None` where it keeps the table on the GPU across batches.
    pub fn with_batch_by_batch(mut self, why: Option<String>) -> WgpuAggregateExec {
        self.batch_by_batch = why;
        self
    }

    /// DataFusion's single-step aggregate this node stands for, over a [`placeholder`] of
    /// its input (see [`WgpuFilterExec::datafusion_equivalent`]).
    pub fn datafusion_equivalent(&self) -> &Arc<dyn ExecutionPlan> {
        &self.datafusion
    }
}

impl DisplayAs for WgpuAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WgpuAggregateExec: {} on {}",
            self.description,
            engine_place(&self.engine)
        )?;
        if let Some(p) = &self.filter {
            write!(f, ", fused filter {p}")?;
        }
        match &self.batch_by_batch {
            None => write!(f, ", hash table kept on the GPU across batches"),
            Some(why) => write!(f, ", grouped batch by batch ({why})"),
        }
    }
}

impl ExecutionPlan for WgpuAggregateExec {
    fn name(&self) -> &str {
        "WgpuAggregateExec"
    }

    unary_plan_boilerplate!();

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(
            WgpuAggregateExec::new(
                children.swap_remove(0),
                self.keys.clone(),
                self.aggs.clone(),
                self.filter.clone(),
                self.description.clone(),
                self.engine.clone(),
                self.batch_rows,
                self.schema(),
                self.datafusion.clone(),
            )
            .with_batch_by_batch(self.batch_by_batch.clone()),
        ))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let input_schema = self.input.schema();
        let renamed_input = renamed_schema(&input_schema);
        let out_schema = self.schema();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let times = PhaseTimes::new(&self.metrics, partition);
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| crate::translate::column_name(*k))
            .collect();
        let (engine, aggs, filter, rows) = (
            self.engine.clone(),
            self.aggs.clone(),
            self.filter.clone(),
            self.batch_rows,
        );
        let mut builder = RecordBatchReceiverStreamBuilder::new(out_schema.clone(), 1);
        let tx = builder.tx();
        builder.spawn(async move {
            let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let mut acc = Some(
                engine
                    .group_by_accumulator(
                        renamed_input.clone(),
                        &key_refs,
                        &aggs,
                        GroupByOptions::default(),
                    )
                    .map_err(engine_error)?,
            );
            while let Some(batch) = next_large(&mut input, &input_schema, rows).await? {
                let timer = baseline.elapsed_compute().timer();
                let batch = renamed(&batch, &renamed_input)?;
                let mut a = acc.take().expect("returned after each batch");
                let filter = filter.clone();
                let (a, result) = blocking(&engine, &times, move |_| {
                    let result = match &filter {
                        Some(p) => a.push_where(&batch, p),
                        None => a.push(&batch),
                    };
                    Ok((a, result))
                })
                .await?;
                result.map_err(engine_error)?;
                acc = Some(a);
                timer.done();
            }
            let timer = baseline.elapsed_compute().timer();
            let a = acc.take().expect("kept");
            let out = blocking(&engine, &times, move |_| a.finish()).await?;
            let out = conform(out.columns().to_vec(), out.num_rows(), &out_schema)?;
            timer.done();
            baseline.record_output(out.num_rows());
            let _ = tx.send(Ok(out)).await;
            Ok(())
        });
        Ok(builder.build())
    }
}

/// A sort of one partition (a top-k with `fetch`) on the library's engine: stable, keys in
/// arrow's row-format order (floats in total order), as DataFusion's.
#[derive(Debug)]
pub struct WgpuSortExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<SortKey>,
    description: Vec<String>,
    fetch: Option<usize>,
    engine: Arc<Engine>,
    properties: Arc<PlanProperties>,
    datafusion: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl WgpuSortExec {
    /// A sort of `input` by `keys` (columns named as [`crate::translate`] names them), the
    /// first `fetch` rows, with the properties of the DataFusion node it replaces;
    /// `datafusion` is that node over a [`placeholder`] of `input`.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<SortKey>,
        description: Vec<String>,
        fetch: Option<usize>,
        engine: Arc<Engine>,
        properties: Arc<PlanProperties>,
        datafusion: Arc<dyn ExecutionPlan>,
    ) -> WgpuSortExec {
        WgpuSortExec {
            input,
            keys,
            description,
            fetch,
            engine,
            properties,
            datafusion,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The DataFusion sort this node stands for, over a [`placeholder`] of its input (see
    /// [`WgpuFilterExec::datafusion_equivalent`]).
    pub fn datafusion_equivalent(&self) -> &Arc<dyn ExecutionPlan> {
        &self.datafusion
    }
}

impl DisplayAs for WgpuSortExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WgpuSortExec: [{}]{} on {}",
            display_exprs(&self.description),
            self.fetch
                .map(|n| format!(", fetch={n}"))
                .unwrap_or_default(),
            engine_place(&self.engine)
        )
    }
}

impl ExecutionPlan for WgpuSortExec {
    fn name(&self) -> &str {
        "WgpuSortExec"
    }

    unary_plan_boilerplate!();

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        let properties = properties_over(&self.datafusion, &input)?;
        Ok(Arc::new(WgpuSortExec::new(
            input,
            self.keys.clone(),
            self.description.clone(),
            self.fetch,
            self.engine.clone(),
            properties,
            self.datafusion.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let input_schema = self.input.schema();
        let renamed_input = renamed_schema(&input_schema);
        let out_schema = self.schema();
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let times = PhaseTimes::new(&self.metrics, partition);
        let (engine, keys, fetch) = (self.engine.clone(), self.keys.clone(), self.fetch);
        let mut builder = RecordBatchReceiverStreamBuilder::new(out_schema.clone(), 1);
        let tx = builder.tx();
        builder.spawn(async move {
            let Some(all) = next_large(&mut input, &input_schema, usize::MAX).await? else {
                return Ok(());
            };
            let timer = baseline.elapsed_compute().timer();
            let batch = renamed(&all, &renamed_input)?;
            let sorted = blocking(&engine, &times, move |e| e.sort(&batch, &keys, fetch)).await?;
            let out = conform(sorted.columns().to_vec(), sorted.num_rows(), &out_schema)?;
            timer.done();
            baseline.record_output(out.num_rows());
            let _ = tx.send(Ok(out)).await;
            Ok(())
        });
        Ok(builder.build())
    }
}
