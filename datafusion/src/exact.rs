//! Exact `sum`, `avg`, `var`, `var_pop`, `stddev` and `stddev_pop` for DataFusion: the
//! library's exact accumulators ([`arrow_wgpu::exact::ExactSum`]) behind DataFusion's
//! names, so that a float aggregate gives the same bits whatever the partition count,
//! batch size, arrival order or backend, including when DataFusion's own hash aggregate
//! runs it (partial states travel as encoded exact sums and merge exactly).
//!
//! Each function keeps DataFusion's names, result types and coercions, but one: `avg` of an
//! integer column takes the integers as they are (DataFusion casts them to `Float64`
//! first), sums them exactly in 128 bits and divides once, as the library's mean of
//! integers does: the same bits where every value is below 2^53 in magnitude (where the
//! cast is exact), the exact mean beyond, at an integer add a value. Where the argument
//! (after coercion) is `Float64` (every argument of `var`/`stddev`, and `sum`/`avg` of
//! floats) the exact accumulators run, else DataFusion's own (integer sums wrap as
//! arrow's do; decimal averages and `DISTINCT` forms are DataFusion's, `avg(DISTINCT)` of
//! integers over their Float64 values as there).
//!
//! | function | exact result |
//! |---|---|
//! | `sum(x)` | the exact sum, rounded once |
//! | `avg(x)`, `mean(x)` | the exact sum divided by the count, rounded once |
//! | `var(x)`, `var_samp`, `var_pop` | `(n·Σx² − (Σx)²) / (n·(n − ddof))` on exact integers, rounded once |
//! | `stddev(x)`, `stddev_samp`, `stddev_pop` | IEEE `sqrt` of that variance |

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BinaryBuilder, BooleanArray, Float64Array,
    PrimitiveArray, UInt64Array,
};
use arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_wgpu::exact::{self, ExactSum, GroupedAdder, SumSlots};
use datafusion::common::{exec_datafusion_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Coercion, Documentation, EmitTo,
    GroupsAccumulator, ReversedUDAF, Signature, TypeSignature, TypeSignatureClass, Volatility,
};

/// Which exact aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExactKind {
    /// `sum`.
    Sum,
    /// `avg` (`mean`).
    Avg,
    /// `var` (`var_samp`), `var_pop`: `ddof` 1 or 0.
    Var {
        /// Delta degrees of freedom: 1 for the sample form, 0 for the population's.
        ddof: u64,
    },
    /// `stddev` (`stddev_samp`), `stddev_pop`.
    Stddev {
        /// Delta degrees of freedom: 1 for the sample form, 0 for the population's.
        ddof: u64,
    },
}

impl ExactKind {
    fn squares(self) -> bool {
        matches!(self, ExactKind::Var { .. } | ExactKind::Stddev { .. })
    }
}

/// One of DataFusion's float aggregates with exact accumulators: DataFusion's function
/// `inner` (its name, aliases, signature, coercions, result type and documentation) with
/// the library's exact accumulators where its argument is `Float64`.
///
/// # Example
/// ```
/// use arrow_wgpu_datafusion::exact::exact_functions;
/// let names: Vec<String> = exact_functions().iter().map(|f| f.name().to_string()).collect();
/// assert!(names.contains(&"sum".to_string()) && names.contains(&"stddev_pop".to_string()));
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactAggregate {
    kind: ExactKind,
    inner: Arc<AggregateUDF>,
    /// The signature planned against: DataFusion's, but for `avg`, which takes integers
    /// as they are.
    signature: Signature,
}

/// The exact `sum`, `avg`, `var`, `var_pop`, `stddev` and `stddev_pop`, each under
/// DataFusion's name and aliases: register them on a session to replace DataFusion's.
pub fn exact_functions() -> Vec<Arc<AggregateUDF>> {
    use datafusion::functions_aggregate::{average, stddev, sum, variance};
    [
        (ExactKind::Sum, sum::sum_udaf()),
        (ExactKind::Avg, average::avg_udaf()),
        (ExactKind::Var { ddof: 1 }, variance::var_samp_udaf()),
        (ExactKind::Var { ddof: 0 }, variance::var_pop_udaf()),
        (ExactKind::Stddev { ddof: 1 }, stddev::stddev_udaf()),
        (ExactKind::Stddev { ddof: 0 }, stddev::stddev_pop_udaf()),
    ]
    .into_iter()
    .map(|(kind, inner)| {
        let signature = match kind {
            ExactKind::Avg => avg_signature(),
            _ => inner.signature().clone(),
        };
        Arc::new(AggregateUDF::new_from_impl(ExactAggregate {
            kind,
            inner,
            signature,
        }))
    })
    .collect()
}

/// DataFusion's `avg` signature with integers kept as they are: decimals and durations
/// exactly as there, then integers (DataFusion casts them to `Float64` here), then floats
/// cast to `Float64`.
fn avg_signature() -> Signature {
    use datafusion::common::types::{logical_float64, NativeType};
    let exact = |class| TypeSignature::Coercible(vec![Coercion::new_exact(class)]);
    Signature::one_of(
        vec![
            exact(TypeSignatureClass::Decimal),
            exact(TypeSignatureClass::Duration),
            exact(TypeSignatureClass::Integer),
            TypeSignature::Coercible(vec![Coercion::new_implicit(
                TypeSignatureClass::Native(logical_float64()),
                vec![TypeSignatureClass::Integer, TypeSignatureClass::Float],
                NativeType::Float64,
            )]),
        ],
        Volatility::Immutable,
    )
}

impl ExactAggregate {
    /// Whether the exact accumulators serve an argument of `dt` (after coercion).
    fn exact_for(&self, dt: &DataType, distinct: bool) -> bool {
        !distinct && (*dt == DataType::Float64 || self.integer_avg(dt))
    }

    /// Whether this is `avg` of integers, which DataFusion's own `avg` takes as Float64.
    fn integer_avg(&self, dt: &DataType) -> bool {
        self.kind == ExactKind::Avg && dt.is_integer()
    }

    /// `field` as DataFusion's `avg` takes its argument: Float64.
    fn as_float_field(field: &FieldRef) -> FieldRef {
        Arc::new(field.as_ref().clone().with_data_type(DataType::Float64))
    }
}

impl AggregateUDFImpl for ExactAggregate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let dt = args.expr_fields[0].data_type();
        if self.exact_for(dt, args.is_distinct) {
            return Ok(Box::new(ExactAccumulator(ExactGroups::new(self.kind, dt))));
        }
        if self.integer_avg(dt) {
            // avg(DISTINCT) of integers: DataFusion's, over the Float64 values it expects.
            let fields = [Self::as_float_field(&args.expr_fields[0])];
            let inner = self.inner.accumulator(AccumulatorArgs {
                expr_fields: &fields,
                ..args
            })?;
            return Ok(Box::new(AsFloat64(inner)));
        }
        self.inner.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let dt = args.input_fields[0].data_type();
        if !self.exact_for(dt, args.is_distinct) {
            if self.integer_avg(dt) {
                let fields = [Self::as_float_field(&args.input_fields[0])];
                return self.inner.state_fields(StateFieldsArgs {
                    input_fields: &fields,
                    ..args
                });
            }
            return self.inner.state_fields(args);
        }
        let mut fields = vec![Field::new(
            format_state_name(args.name, "exact_sum"),
            DataType::Binary,
            true,
        )];
        if self.kind.squares() {
            fields.push(Field::new(
                format_state_name(args.name, "exact_squares"),
                DataType::Binary,
                true,
            ));
        }
        fields.push(Field::new(
            format_state_name(args.name, "count"),
            DataType::UInt64,
            true,
        ));
        Ok(fields.into_iter().map(Arc::new).collect())
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        let dt = args.expr_fields[0].data_type();
        if self.exact_for(dt, args.is_distinct) {
            return true;
        }
        // avg(DISTINCT) of integers runs as a plain accumulator (DataFusion's own has no
        // groups accumulator for DISTINCT).
        !self.integer_avg(dt) && self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let dt = args.expr_fields[0].data_type();
        if self.exact_for(dt, args.is_distinct) {
            return Ok(Box::new(ExactGroups::new(self.kind, dt)));
        }
        self.inner.create_groups_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Exact sums and counts for every group: compact slots for `sum`/`avg` (one 32-byte
/// slot a group, [`SumSlots`]), an `i128` a group for `avg` of integers, full accumulators
/// with sums of squares for `var`/`stddev`.
#[derive(Debug)]
enum Store {
    Sums(SumSlots),
    /// Exact integer sums: at most 2^64 values below 2^64 each stay inside 128 bits.
    Ints(Vec<i128>),
    Moments {
        sums: Vec<ExactSum>,
        squares: Vec<ExactSum>,
        adder: GroupedAdder,
    },
}

/// Exact sums (and sums of squares) and counts for every group.
#[derive(Debug)]
struct ExactGroups {
    kind: ExactKind,
    store: Store,
    counts: Vec<u64>,
}

impl ExactGroups {
    /// The groups for `kind` of an argument of type `input`.
    fn new(kind: ExactKind, input: &DataType) -> ExactGroups {
        let store = if kind == ExactKind::Avg && input.is_integer() {
            Store::Ints(Vec::new())
        } else if kind.squares() {
            Store::Moments {
                sums: Vec::new(),
                squares: Vec::new(),
                adder: GroupedAdder::default(),
            }
        } else {
            Store::Sums(SumSlots::default())
        };
        ExactGroups {
            kind,
            store,
            counts: Vec::new(),
        }
    }

    fn resize(&mut self, groups: usize) {
        if self.counts.len() >= groups {
            return;
        }
        self.counts.resize(groups, 0);
        match &mut self.store {
            Store::Sums(slots) => slots.resize(groups),
            Store::Ints(sums) => sums.resize(groups, 0),
            Store::Moments { sums, squares, .. } => {
                sums.resize_with(groups, ExactSum::new);
                squares.resize_with(groups, ExactSum::new);
            }
        }
    }

    /// Adds the selected rows of `values` to their groups.
    fn add(
        &mut self,
        values: &[f64],
        group_indices: &[usize],
        selected: impl Fn(usize) -> bool + Copy,
        all: bool,
    ) {
        match &mut self.store {
            Store::Sums(slots) => {
                if all {
                    slots.add_all_counting(group_indices, values, &mut self.counts);
                } else {
                    for (i, (&g, &x)) in group_indices.iter().zip(values).enumerate() {
                        if selected(i) {
                            slots.add(g, x);
                            self.counts[g] += 1;
                        }
                    }
                }
            }
            Store::Ints(_) => unreachable!("integers are added by update_batch"),
            Store::Moments {
                sums,
                squares,
                adder,
            } => {
                adder.add(sums, Some(squares), values, |i| group_indices[i], selected);
                for (i, &g) in group_indices.iter().enumerate() {
                    if all || selected(i) {
                        self.counts[g] += 1;
                    }
                }
            }
        }
    }

    /// Merges a partial state into group `g`.
    fn merge(
        &mut self,
        g: usize,
        sum: &ExactSum,
        square: Option<&ExactSum>,
        count: u64,
    ) -> Result<()> {
        match &mut self.store {
            Store::Sums(slots) => slots.merge(g, sum),
            Store::Ints(sums) => {
                let v = sum.to_i128().ok_or_else(|| {
                    exec_datafusion_err!("exact aggregate state: not an integer sum")
                })?;
                sums[g] += v;
            }
            Store::Moments { sums, squares, .. } => {
                sums[g].merge(sum);
                if let Some(q) = square {
                    squares[g].merge(q);
                }
            }
        }
        self.counts[g] += count;
        Ok(())
    }

    /// The result of each of `sums`/`squares`/`counts` (the groups being emitted).
    fn results(&self, sums: &[ExactSum], squares: &[ExactSum], counts: &[u64]) -> Float64Array {
        (0..sums.len())
            .map(|g| {
                let n = counts[g];
                match self.kind {
                    ExactKind::Sum => (n > 0).then(|| sums[g].sum()),
                    ExactKind::Avg => (n > 0).then(|| sums[g].mean(n)),
                    ExactKind::Var { ddof } => exact::variance(&sums[g], &squares[g], n, ddof),
                    ExactKind::Stddev { ddof } => exact::std_dev(&sums[g], &squares[g], n, ddof),
                }
            })
            .collect()
    }

    /// The partial state of `sums`/`squares`/`counts` as arrays.
    fn state_arrays(
        sums: &[ExactSum],
        squares: &[ExactSum],
        counts: Vec<u64>,
        with_squares: bool,
    ) -> Vec<ArrayRef> {
        let encode = |values: &[ExactSum]| -> ArrayRef {
            let mut builder = BinaryBuilder::with_capacity(values.len(), values.len() * 22);
            let mut bytes = Vec::with_capacity(32);
            for v in values {
                bytes.clear();
                v.encode(&mut bytes);
                builder.append_value(&bytes);
            }
            Arc::new(builder.finish())
        };
        let mut out = vec![encode(sums)];
        if with_squares {
            out.push(encode(squares));
        }
        out.push(Arc::new(UInt64Array::from(counts)));
        out
    }

    /// The groups `emit_to` names, taken out: sums, squares (empty for sum/avg), counts.
    fn emit(&mut self, emit_to: EmitTo) -> (Vec<ExactSum>, Vec<ExactSum>, Vec<u64>) {
        let counts = emit_to.take_needed(&mut self.counts);
        match &mut self.store {
            Store::Sums(slots) => {
                let n = match emit_to {
                    EmitTo::All => slots.len(),
                    EmitTo::First(n) => n,
                };
                let taken = slots.take_first(n);
                (
                    (0..taken.len()).map(|g| taken.get(g)).collect(),
                    Vec::new(),
                    counts,
                )
            }
            Store::Ints(sums) => (
                emit_to
                    .take_needed(sums)
                    .into_iter()
                    .map(ExactSum::from_i128)
                    .collect(),
                Vec::new(),
                counts,
            ),
            Store::Moments { sums, squares, .. } => (
                emit_to.take_needed(sums),
                emit_to.take_needed(squares),
                counts,
            ),
        }
    }

    /// Every group's state without taking it (for the one-group accumulator).
    fn peek(&self) -> (Vec<ExactSum>, Vec<ExactSum>, Vec<u64>) {
        match &self.store {
            Store::Sums(slots) => (
                (0..slots.len()).map(|g| slots.get(g)).collect(),
                Vec::new(),
                self.counts.clone(),
            ),
            Store::Ints(sums) => (
                sums.iter().map(|s| ExactSum::from_i128(*s)).collect(),
                Vec::new(),
                self.counts.clone(),
            ),
            Store::Moments { sums, squares, .. } => {
                (sums.clone(), squares.clone(), self.counts.clone())
            }
        }
    }
}

/// Calls `f(row)` for each row of `len` whose filter (if any) is true.
#[inline]
fn for_each_selected(len: usize, filter: Option<&BooleanArray>, mut f: impl FnMut(usize)) {
    match filter {
        None => (0..len).for_each(f),
        Some(mask) => {
            for i in 0..len {
                if mask.is_valid(i) && mask.value(i) {
                    f(i)
                }
            }
        }
    }
}

/// Calls `f(row, value)` for each row of the integer array `values` that is valid and
/// selected by `filter` (if any).
fn for_each_integer(
    values: &dyn Array,
    filter: Option<&BooleanArray>,
    f: impl FnMut(usize, i128),
) -> Result<()> {
    fn each<T: ArrowPrimitiveType>(
        values: &PrimitiveArray<T>,
        filter: Option<&BooleanArray>,
        mut f: impl FnMut(usize, i128),
    ) where
        T::Native: Into<i128>,
    {
        let raw = values.values();
        if values.nulls().is_none() && filter.is_none() {
            for (i, v) in raw.iter().enumerate() {
                f(i, (*v).into());
            }
        } else {
            for_each_selected(values.len(), filter, |i| {
                if values.is_valid(i) {
                    f(i, raw[i].into())
                }
            });
        }
    }
    match values.data_type() {
        DataType::Int8 => each(values.as_primitive::<Int8Type>(), filter, f),
        DataType::Int16 => each(values.as_primitive::<Int16Type>(), filter, f),
        DataType::Int32 => each(values.as_primitive::<Int32Type>(), filter, f),
        DataType::Int64 => each(values.as_primitive::<Int64Type>(), filter, f),
        DataType::UInt8 => each(values.as_primitive::<UInt8Type>(), filter, f),
        DataType::UInt16 => each(values.as_primitive::<UInt16Type>(), filter, f),
        DataType::UInt32 => each(values.as_primitive::<UInt32Type>(), filter, f),
        DataType::UInt64 => each(values.as_primitive::<UInt64Type>(), filter, f),
        other => return Err(exec_datafusion_err!("exact avg of integers given {other}")),
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<ExactSum> {
    ExactSum::decode(bytes).map_err(|e| exec_datafusion_err!("exact aggregate state: {e}"))
}

impl GroupsAccumulator for ExactGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        if let Store::Ints(sums) = &mut self.store {
            let counts = &mut self.counts;
            return for_each_integer(values[0].as_ref(), opt_filter, |i, v| {
                let g = group_indices[i];
                sums[g] += v;
                counts[g] += 1;
            });
        }
        let values = values[0].as_primitive::<Float64Type>();
        let raw = values.values();
        let nulls = values.nulls();
        let all = nulls.is_none() && opt_filter.is_none();
        let selected = |i: usize| {
            nulls.is_none_or(|n| n.is_valid(i))
                && opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i))
        };
        self.add(raw, group_indices, selected, all);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (sums, squares, counts) = self.emit(emit_to);
        Ok(Arc::new(self.results(&sums, &squares, &counts)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (sums, squares, counts) = self.emit(emit_to);
        Ok(Self::state_arrays(
            &sums,
            &squares,
            counts,
            self.kind.squares(),
        ))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let sums = values[0].as_binary::<i32>();
        let (squares, counts) = if self.kind.squares() {
            (
                Some(values[1].as_binary::<i32>()),
                values[2].as_primitive::<UInt64Type>(),
            )
        } else {
            (None, values[1].as_primitive::<UInt64Type>())
        };
        for (i, &g) in group_indices.iter().enumerate() {
            if sums.is_null(i) {
                continue;
            }
            let sum = decode(sums.value(i))?;
            let square = squares.map(|sq| decode(sq.value(i))).transpose()?;
            self.merge(g, &sum, square.as_ref(), counts.value(i))?;
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        if let Store::Ints(_) = self.store {
            let n = values[0].len();
            let mut sums = vec![ExactSum::new(); n];
            let mut counts = vec![0u64; n];
            for_each_integer(values[0].as_ref(), opt_filter, |i, v| {
                sums[i] = ExactSum::from_i128(v);
                counts[i] = 1;
            })?;
            return Ok(Self::state_arrays(&sums, &[], counts, false));
        }
        let values = values[0].as_primitive::<Float64Type>();
        let n = values.len();
        let mut sums = vec![ExactSum::new(); n];
        let mut squares = if self.kind.squares() {
            vec![ExactSum::new(); n]
        } else {
            Vec::new()
        };
        let mut counts = vec![0u64; n];
        for_each_selected(n, opt_filter, |i| {
            if values.is_valid(i) {
                let x = values.value(i);
                sums[i].add_f64(x);
                if let Some(s) = squares.get_mut(i) {
                    s.add_f64_squared(x);
                }
                counts[i] = 1;
            }
        });
        Ok(Self::state_arrays(
            &sums,
            &squares,
            counts,
            self.kind.squares(),
        ))
    }

    fn size(&self) -> usize {
        let store = match &self.store {
            Store::Sums(slots) => slots.size(),
            Store::Ints(sums) => sums.capacity() * 16,
            Store::Moments { sums, squares, .. } => {
                (sums.capacity() + squares.capacity()) * std::mem::size_of::<ExactSum>()
            }
        };
        store + self.counts.capacity() * 8
    }
}

/// The exact aggregate over one group: what DataFusion uses without `GROUP BY`.
#[derive(Debug)]
struct ExactAccumulator(ExactGroups);

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zeros = vec![0usize; values[0].len()];
        self.0.update_batch(values, &zeros, None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.resize(1);
        let (sums, squares, counts) = self.0.peek();
        let out = self.0.results(&sums, &squares, &counts);
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.resize(1);
        let (sums, squares, counts) = self.0.peek();
        let arrays = ExactGroups::state_arrays(&sums, &squares, counts, self.0.kind.squares());
        arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let zeros = vec![0usize; states[0].len()];
        self.0.merge_batch(states, &zeros, 1)
    }
}

/// An accumulator of Float64 values fed integers: DataFusion's `avg(DISTINCT)`, given the
/// integers this crate's `avg` keeps as they are, over their Float64 values as there.
#[derive(Debug)]
struct AsFloat64(Box<dyn Accumulator>);

impl Accumulator for AsFloat64 {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let floats = arrow::compute::cast(&values[0], &DataType::Float64)?;
        self.0.update_batch(&[floats])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.evaluate()
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }
}
