//! arrow-wgpu's operators inside DataFusion's plans.
//!
//! - [`exact`]: DataFusion's float aggregates (`sum`, `avg`, `var`, `stddev` and their
//!   population forms) on the library's exact accumulators, so a query's float aggregates
//!   give the same bits whatever the partitioning, batch size or backend.
//! - [`rule`]: a physical optimizer rule that puts the library's GPU operators
//!   ([`exec`]) in place of DataFusion's filter, aggregate and sort where the engine has
//!   a GPU that runs them, and leaves DataFusion's node (saying why) where it can't.
//! - [`translate`]: DataFusion's typed physical expressions into the library's.
//!
//! One call adds all of it to a session: [`with_arrow_wgpu`] (the engine from
//! `ARROW_WGPU_BACKEND`) or [`with_options`]. With the `distributed` feature,
//! `distributed` runs the plans over datafusion-distributed workers, each on its own
//! engine.

#![warn(missing_docs)]

#[cfg(feature = "distributed")]
pub mod distributed;
pub mod exact;
pub mod exec;
pub mod minmax;
pub mod rule;
pub mod translate;

use std::sync::Arc;

use arrow_wgpu::Engine;
use datafusion::execution::SessionStateBuilder;

pub use rule::{ArrowWgpuRule, PlanNotes};

/// What [`with_options`] adds to a session: the engine the operators run on, how many
/// rows they gather per engine call, and where the rule writes what it did.
#[derive(Debug, Clone)]
pub struct ArrowWgpuOptions {
    /// The engine (its backend decides: with a GPU, the rule puts GPU operators in the
    /// plan; without one, only the exact aggregate functions are added).
    pub engine: Arc<Engine>,
    /// Rows gathered before each engine call ([`exec::DEFAULT_BATCH_ROWS`]).
    pub batch_rows: usize,
    notes: PlanNotes,
}

impl ArrowWgpuOptions {
    /// Options for `engine`, with the default batch size.
    pub fn new(engine: Arc<Engine>) -> ArrowWgpuOptions {
        ArrowWgpuOptions {
            engine,
            batch_rows: exec::DEFAULT_BATCH_ROWS,
            notes: PlanNotes::default(),
        }
    }

    /// A handle on the notes the rule writes as it plans (what it replaced, what it left
    /// and why).
    pub fn notes(&self) -> PlanNotes {
        self.notes.clone()
    }
}

/// Adds arrow-wgpu to a DataFusion session being built, on the engine
/// [`Engine::from_env`] opens (`ARROW_WGPU_BACKEND`: auto, gpu or cpu): the exact
/// aggregate functions (replacing DataFusion's `sum`, `avg`, `var`, `var_pop`, `stddev`,
/// `stddev_pop`) and the rule that runs filters, aggregates and sorts on the GPU where
/// there is one. Call it after `with_default_features()`, whose functions it overrides.
///
/// # Example
/// ```
/// use datafusion::execution::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
/// use arrow_wgpu_datafusion::with_arrow_wgpu;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let state = with_arrow_wgpu(SessionStateBuilder::new().with_default_features()).unwrap().build();
/// let ctx = SessionContext::new_with_state(state);
/// let df = ctx.sql("SELECT sum(x) AS s FROM (VALUES (1e16), (1.0), (-1e16), (1.0)) AS t(x)").await.unwrap();
/// let batches = df.collect().await.unwrap();
/// let s = batches[0].column(0).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
/// assert_eq!(s.value(0), 2.0); // exact: a left-to-right f64 sum gives 0.0
/// # });
/// ```
pub fn with_arrow_wgpu(
    builder: SessionStateBuilder,
) -> Result<SessionStateBuilder, arrow_wgpu::Error> {
    let engine = Arc::new(Engine::from_env()?);
    Ok(with_options(builder, ArrowWgpuOptions::new(engine)))
}

/// [`with_arrow_wgpu`] with the engine and settings given.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow_wgpu::{Backend, Engine};
/// use arrow_wgpu_datafusion::{with_options, ArrowWgpuOptions};
/// use datafusion::execution::SessionStateBuilder;
///
/// let engine = Arc::new(Engine::new(Backend::Cpu).unwrap());
/// let options = ArrowWgpuOptions::new(engine);
/// let notes = options.notes();
/// let state = with_options(SessionStateBuilder::new().with_default_features(), options).build();
/// assert!(state.aggregate_functions().contains_key("sum"));
/// # let _ = notes;
/// ```
pub fn with_options(
    builder: SessionStateBuilder,
    options: ArrowWgpuOptions,
) -> SessionStateBuilder {
    add(builder, options, false)
}

/// [`with_options`], with the rule for plans that run on one machine or, with
/// `distributed`, over workers ([`ArrowWgpuRule::for_distributed_plans`]).
pub(crate) fn add(
    mut builder: SessionStateBuilder,
    options: ArrowWgpuOptions,
    distributed: bool,
) -> SessionStateBuilder {
    builder
        .aggregate_functions()
        .get_or_insert_with(Vec::new)
        .extend(
            exact::exact_functions()
                .into_iter()
                .chain(minmax::min_max_functions()),
        );
    let mut rule = ArrowWgpuRule::new(
        options.engine.clone(),
        options.batch_rows,
        options.notes.clone(),
    );
    if distributed {
        rule = rule.for_distributed_plans();
    }
    builder.with_physical_optimizer_rule(Arc::new(rule))
}
