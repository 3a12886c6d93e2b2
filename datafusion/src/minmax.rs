//! `min` and `max` of floats in IEEE total order, whatever the plan.
//!
//! DataFusion 55's own `min`/`max` of `Float32`/`Float64` answer differently in different
//! plans over the same rows: ungrouped they follow total order (a negative NaN is the
//! smallest value, a positive one the largest), grouped they skip NaN in some batches and
//! not others, so the answer changes with the partition count. These replace them (under
//! the same names, types and partial state) with the library's order: IEEE 754 total
//! order, `-NaN < -inf < ... < -0.0 < +0.0 < ... < inf < NaN`, as `ORDER BY` sorts and the
//! library's `min`/`max` and GPU kernels answer. Other types keep DataFusion's accumulators.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, BooleanArray, PrimitiveArray};
use arrow::datatypes::{ArrowPrimitiveType, DataType, FieldRef, Float32Type, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
    ReversedUDAF, SetMonotonicity, Signature,
};

/// DataFusion's `min` or `max` with total-order accumulators for floats.
///
/// # Example
/// ```
/// use arrow_wgpu_datafusion::minmax::min_max_functions;
/// let names: Vec<String> = min_max_functions().iter().map(|f| f.name().to_string()).collect();
/// assert_eq!(names, ["min", "max"]);
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TotalOrderMinMax {
    max: bool,
    inner: Arc<AggregateUDF>,
}

/// `min` and `max` in total order for floats, under DataFusion's names: register them on
/// a session to replace DataFusion's ([`crate::with_arrow_wgpu`] does).
///
/// # Example
/// ```
/// use datafusion::execution::SessionStateBuilder;
/// use datafusion::prelude::SessionContext;
/// let mut builder = SessionStateBuilder::new().with_default_features();
/// builder
///     .aggregate_functions()
///     .get_or_insert_with(Vec::new)
///     .extend(arrow_wgpu_datafusion::minmax::min_max_functions());
/// let ctx = SessionContext::new_with_state(builder.build());
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let out = rt.block_on(async {
///     ctx.sql("SELECT min(x), max(x) FROM (VALUES (1.5), (CAST('NaN' AS DOUBLE)), (-0.0)) AS t(x)")
///         .await?
///         .collect()
///         .await
/// }).unwrap();
/// let batch = &out[0];
/// let lo = batch.column(0).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
/// let hi = batch.column(1).as_any().downcast_ref::<arrow::array::Float64Array>().unwrap();
/// assert_eq!(lo.value(0).to_bits(), (-0.0f64).to_bits()); // -0.0 < 1.5 < NaN
/// assert!(hi.value(0).is_nan());
/// ```
pub fn min_max_functions() -> Vec<Arc<AggregateUDF>> {
    use datafusion::functions_aggregate::min_max;
    [(false, min_max::min_udaf()), (true, min_max::max_udaf())]
        .into_iter()
        .map(|(max, inner)| Arc::new(AggregateUDF::new_from_impl(TotalOrderMinMax { max, inner })))
        .collect()
}

fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}

impl AggregateUDFImpl for TotalOrderMinMax {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // One column of the value's type, as DataFusion's: the running min or max.
        self.inner.state_fields(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match args.return_field.data_type() {
            DataType::Float64 => Ok(Box::new(One(Extremes::<Float64Type>::new(self.max)))),
            DataType::Float32 => Ok(Box::new(One(Extremes::<Float32Type>::new(self.max)))),
            _ => self.inner.accumulator(args),
        }
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        is_float(args.return_field.data_type()) || self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        match args.return_field.data_type() {
            DataType::Float64 => Ok(Box::new(Extremes::<Float64Type>::new(self.max))),
            DataType::Float32 => Ok(Box::new(Extremes::<Float32Type>::new(self.max))),
            _ => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.create_sliding_accumulator(args)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner.is_descending()
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }

    // No `value_from_stats`: a file's statistics leave NaN out, which total order doesn't.

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// The running min or max of every group, in total order.
#[derive(Debug)]
struct Extremes<T: ArrowPrimitiveType + std::fmt::Debug> {
    max: bool,
    values: Vec<T::Native>,
    seen: Vec<bool>,
}

impl<T: ArrowPrimitiveType + std::fmt::Debug> Extremes<T> {
    fn new(max: bool) -> Self {
        Extremes {
            max,
            values: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Takes `x` into group `g` where it is beyond the group's value.
    #[inline]
    fn take(&mut self, g: usize, x: T::Native) {
        let beyond = if self.max {
            x.is_gt(self.values[g])
        } else {
            x.is_lt(self.values[g])
        };
        if !self.seen[g] || beyond {
            self.values[g] = x;
            self.seen[g] = true;
        }
    }

    fn update(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) {
        if self.values.len() < total_num_groups {
            self.values.resize(total_num_groups, T::Native::default());
            self.seen.resize(total_num_groups, false);
        }
        let values = values.as_primitive::<T>();
        for (i, &g) in group_indices.iter().enumerate() {
            if values.is_valid(i) && filter.is_none_or(|f| f.is_valid(i) && f.value(i)) {
                self.take(g, values.value(i));
            }
        }
    }

    fn emit(&mut self, emit_to: EmitTo) -> ArrayRef {
        let values = emit_to.take_needed(&mut self.values);
        let seen = emit_to.take_needed(&mut self.seen);
        let array: PrimitiveArray<T> = values
            .into_iter()
            .zip(seen)
            .map(|(v, s)| s.then_some(v))
            .collect();
        Arc::new(array)
    }
}

impl<T: ArrowPrimitiveType + Send + Sync + std::fmt::Debug> GroupsAccumulator for Extremes<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(&values[0], group_indices, opt_filter, total_num_groups);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.emit(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.emit(emit_to)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        // A partial state is a running min or max: merged as values.
        self.update(&values[0], group_indices, None, total_num_groups);
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = values[0].as_primitive::<T>();
        let kept: PrimitiveArray<T> = (0..values.len())
            .map(|i| {
                (values.is_valid(i) && opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i)))
                    .then(|| values.value(i))
            })
            .collect();
        Ok(vec![Arc::new(kept)])
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T::Native>() + self.seen.capacity()
    }
}

/// The one-group accumulator (no `GROUP BY`).
#[derive(Debug)]
struct One<T: ArrowPrimitiveType + std::fmt::Debug>(Extremes<T>);

impl<T: ArrowPrimitiveType + Send + Sync + std::fmt::Debug> Accumulator for One<T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = vec![0usize; values[0].len()];
        self.0.update(&values[0], &zeros, None, 1);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.update(&values_of::<T>(), &[], None, 1);
        let v = self.0.seen[0].then_some(self.0.values[0]);
        let array: PrimitiveArray<T> = std::iter::once(v).collect();
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

/// An empty array of `T`: sizes a fresh accumulator's one group.
fn values_of<T: ArrowPrimitiveType>() -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::from_iter_values(std::iter::empty()))
}
