//! arrow-wgpu's operators inside DataFusion's plans.
//!
//! - [`exact`]: DataFusion's float aggregates (`sum`, `avg`, `var`, `stddev` and their
//!   population forms) on the library's exact accumulators, so a query's float aggregates
//!   give the same bits whatever the partitioning, batch size or backend.

#![warn(missing_docs)]

pub mod exact;

use datafusion::execution::SessionStateBuilder;

/// Adds arrow-wgpu to a DataFusion session being built: the exact aggregate functions
/// (replacing DataFusion's `sum`, `avg`, `var`, `var_pop`, `stddev`, `stddev_pop`).
/// Call it after `with_default_features()`, whose functions it overrides.
///
/// # Example
/// ```
/// use datafusion::execution::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
/// use arrow_wgpu_datafusion::with_arrow_wgpu;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let state = with_arrow_wgpu(SessionStateBuilder::new().with_default_features()).build();
/// let ctx = SessionContext::new_with_state(state);
/// let df = ctx.sql("SELECT sum(x) AS s FROM (VALUES (1e16), (1.0), (-1e16), (1.0)) AS t(x)").await.unwrap();
/// let batches = df.collect().await.unwrap();
/// let s = batches[0].column(0).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
/// assert_eq!(s.value(0), 2.0); // exact: a left-to-right f64 sum gives 0.0
/// # });
/// ```
pub fn with_arrow_wgpu(mut builder: SessionStateBuilder) -> SessionStateBuilder {
    builder
        .aggregate_functions()
        .get_or_insert_with(Vec::new)
        .extend(exact::exact_functions());
    builder
}
