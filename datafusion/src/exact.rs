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
use arrow_wgpu::exact::{self, ExactSum, MomentSlots, SumSlots};
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

/// Exact sums for every group: compact slots for `sum`/`avg` of floats (one 128-bit window
/// a group, [`SumSlots`]), an `i128` a group for `avg` of integers, and sums with sums of
/// squares for `var`/`stddev` (three windows a group, [`MomentSlots`]).
#[derive(Debug)]
enum Store {
    Sums(SumSlots),
    /// Exact integer sums: at most 2^64 values below 2^64 each stay inside 128 bits.
    Ints(Vec<i128>),
    Moments(MomentSlots),
}

/// Exact sums (and sums of squares) and counts for every group.
#[derive(Debug)]
struct ExactGroups {
    kind: ExactKind,
    store: Store,
    counts: Counts,
}

/// What each group keeps of its rows' number: `avg`, `var` and `stddev` divide by it;
/// `sum` needs only whether a row came (a group of none is NULL), one byte a group where a
/// count takes eight, and a store beside the window where a count is a load, an add and a
/// store. A `sum`'s partial state says 1 for a group with rows, 0 for one without.
#[derive(Debug)]
enum Counts {
    Rows(Vec<u64>),
    Seen(Vec<bool>),
}

impl Counts {
    fn len(&self) -> usize {
        match self {
            Counts::Rows(n) => n.len(),
            Counts::Seen(seen) => seen.len(),
        }
    }

    fn resize(&mut self, groups: usize) {
        match self {
            Counts::Rows(n) => n.resize(groups, 0),
            Counts::Seen(seen) => seen.resize(groups, false),
        }
    }

    /// The counts of the aggregates that keep them.
    fn rows(&mut self) -> &mut Vec<u64> {
        match self {
            Counts::Rows(n) => n,
            Counts::Seen(_) => unreachable!("only `sum` keeps no counts, and it sums floats"),
        }
    }

    /// Adds `count` rows to group `g`.
    fn add(&mut self, g: usize, count: u64) {
        match self {
            Counts::Rows(n) => n[g] += count,
            Counts::Seen(seen) => seen[g] |= count > 0,
        }
    }

    /// The groups `emit_to` names, taken out, as counts.
    fn take(&mut self, emit_to: EmitTo) -> Vec<u64> {
        match self {
            Counts::Rows(n) => emit_to.take_needed(n),
            Counts::Seen(seen) => Self::of_seen(&emit_to.take_needed(seen)),
        }
    }

    /// Every group's count, left in place.
    fn peek(&self) -> Vec<u64> {
        match self {
            Counts::Rows(n) => n.clone(),
            Counts::Seen(seen) => Self::of_seen(seen),
        }
    }

    fn of_seen(seen: &[bool]) -> Vec<u64> {
        seen.iter().map(|&s| u64::from(s)).collect()
    }

    fn size(&self) -> usize {
        match self {
            Counts::Rows(n) => n.capacity() * 8,
            Counts::Seen(seen) => seen.capacity(),
        }
    }
}

impl ExactGroups {
    /// The groups for `kind` of an argument of type `input`.
    fn new(kind: ExactKind, input: &DataType) -> ExactGroups {
        let store = if kind == ExactKind::Avg && input.is_integer() {
            Store::Ints(Vec::new())
        } else if kind.squares() {
            Store::Moments(MomentSlots::default())
        } else {
            Store::Sums(SumSlots::default())
        };
        let counts = if kind == ExactKind::Sum {
            Counts::Seen(Vec::new())
        } else {
            Counts::Rows(Vec::new())
        };
        ExactGroups {
            kind,
            store,
            counts,
        }
    }

    fn resize(&mut self, groups: usize) {
        if self.counts.len() >= groups {
            return;
        }
        self.counts.resize(groups);
        match &mut self.store {
            Store::Sums(slots) => slots.resize(groups),
            Store::Ints(sums) => sums.resize(groups, 0),
            Store::Moments(slots) => slots.resize(groups),
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
                let rows = group_indices.len().min(values.len());
                let group = |i| group_indices[i];
                match (&mut self.counts, all) {
                    (Counts::Rows(n), true) => {
                        slots.add_rows_counting(rows, group, values, |_| true, n)
                    }
                    (Counts::Rows(n), false) => {
                        slots.add_rows_counting(rows, group, values, selected, n)
                    }
                    (Counts::Seen(seen), true) => {
                        slots.add_rows(rows, group, values, |_| true, |g| seen[g] = true)
                    }
                    (Counts::Seen(seen), false) => {
                        slots.add_rows(rows, group, values, selected, |g| seen[g] = true)
                    }
                }
            }
            Store::Ints(_) => unreachable!("integers are added by update_batch"),
            Store::Moments(slots) => {
                let rows = group_indices.len().min(values.len());
                let group = |i| group_indices[i];
                let counts = self.counts.rows();
                if all {
                    slots.add_rows_counting(rows, group, values, |_| true, counts);
                } else {
                    slots.add_rows_counting(rows, group, values, selected, counts);
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
            Store::Moments(slots) => {
                let square = square.ok_or_else(|| {
                    exec_datafusion_err!("exact aggregate state: a variance without squares")
                })?;
                slots.merge(g, sum, square);
            }
        }
        self.counts.add(g, count);
        Ok(())
    }

    /// The result of each group of `taken`.
    fn results(&self, taken: &Store, counts: &[u64]) -> Float64Array {
        if let Store::Ints(sums) = taken {
            return sums
                .iter()
                .zip(counts)
                .map(|(&s, &n)| (n > 0).then(|| exact::int_mean(s, n)))
                .collect();
        }
        (0..taken.len())
            .map(|g| {
                let n = counts[g];
                taken.with(g, |sum, squares| match (self.kind, squares) {
                    (ExactKind::Sum, _) => (n > 0).then(|| sum.sum()),
                    (ExactKind::Avg, _) => (n > 0).then(|| sum.mean(n)),
                    (ExactKind::Var { ddof }, Some(sq)) => exact::variance(sum, sq, n, ddof),
                    (ExactKind::Stddev { ddof }, Some(sq)) => exact::std_dev(sum, sq, n, ddof),
                    (_, None) => unreachable!("variances keep their squares"),
                })
            })
            .collect()
    }

    /// The partial state of each group of `taken` as arrays: its exact sum (and sum of
    /// squares) encoded, and its count.
    fn state_arrays(taken: &Store, counts: Vec<u64>, with_squares: bool) -> Vec<ArrayRef> {
        let mut columns = StateColumns::new(taken.len(), with_squares);
        for g in 0..taken.len() {
            taken.with(g, |sum, sq| {
                columns.push(
                    |out| sum.encode(out),
                    |out| sq.unwrap_or(&ExactSum::new()).encode(out),
                )
            });
        }
        columns.finish(counts)
    }

    /// The groups `emit_to` names, taken out (in the store's form), and their counts.
    fn emit(&mut self, emit_to: EmitTo) -> (Store, Vec<u64>) {
        let counts = self.counts.take(emit_to);
        let taken = match &mut self.store {
            Store::Sums(slots) => {
                let n = match emit_to {
                    EmitTo::All => slots.len(),
                    EmitTo::First(n) => n,
                };
                Store::Sums(slots.take_first(n))
            }
            Store::Ints(sums) => Store::Ints(emit_to.take_needed(sums)),
            Store::Moments(slots) => {
                let n = match emit_to {
                    EmitTo::All => slots.len(),
                    EmitTo::First(n) => n,
                };
                Store::Moments(slots.take_first(n))
            }
        };
        (taken, counts)
    }

    /// Every group's state without taking it (for the one-group accumulator).
    fn peek(&self) -> (Store, Vec<u64>) {
        let taken = match &self.store {
            Store::Sums(slots) => Store::Sums(slots.clone()),
            Store::Ints(sums) => Store::Ints(sums.clone()),
            Store::Moments(slots) => Store::Moments(slots.clone()),
        };
        (taken, self.counts.peek())
    }
}

impl Store {
    /// Groups held.
    fn len(&self) -> usize {
        match self {
            Store::Sums(slots) => slots.len(),
            Store::Ints(sums) => sums.len(),
            Store::Moments(slots) => slots.len(),
        }
    }

    /// `f` of group `g`'s exact sum and (for variances) its exact sum of squares, built
    /// only as it is read: emitting millions of groups allocates no sum a group.
    #[inline]
    fn with<R>(&self, g: usize, f: impl FnOnce(&ExactSum, Option<&ExactSum>) -> R) -> R {
        match self {
            Store::Sums(slots) => f(&slots.get(g), None),
            Store::Ints(sums) => f(&ExactSum::from_i128(sums[g]), None),
            Store::Moments(slots) => f(&slots.sum(g), Some(&slots.squares(g))),
        }
    }
}

/// The state columns of groups being built: each group's exact sum (and sum of squares)
/// as encoded bytes, then the counts.
struct StateColumns {
    sums: BinaryBuilder,
    squares: Option<BinaryBuilder>,
    bytes: Vec<u8>,
}

impl StateColumns {
    fn new(groups: usize, with_squares: bool) -> StateColumns {
        StateColumns {
            sums: BinaryBuilder::with_capacity(groups, groups * 22),
            squares: with_squares.then(|| BinaryBuilder::with_capacity(groups, groups * 22)),
            bytes: Vec::with_capacity(32),
        }
    }

    /// Appends a group: `sum` writes its sum's bytes, `square` its squares' (called only
    /// when squares are kept).
    #[inline]
    fn push(&mut self, sum: impl FnOnce(&mut Vec<u8>), square: impl FnOnce(&mut Vec<u8>)) {
        self.bytes.clear();
        sum(&mut self.bytes);
        self.sums.append_value(&self.bytes);
        if let Some(squares) = &mut self.squares {
            self.bytes.clear();
            square(&mut self.bytes);
            squares.append_value(&self.bytes);
        }
    }

    fn finish(mut self, counts: Vec<u64>) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = vec![Arc::new(self.sums.finish())];
        if let Some(mut squares) = self.squares {
            out.push(Arc::new(squares.finish()));
        }
        out.push(Arc::new(UInt64Array::from(counts)));
        out
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

/// Adds every row of the integers `values[0]` to its group's sum and count, when no row
/// is null, there are no more groups than rows, and no group's part of the batch can
/// leave 63 bits (the batch's largest magnitude times its rows): each group's part is then
/// summed in an `i64` (an 8-byte add a row, as a plain sum's, where the 16-byte add to
/// memory stalled on the groups' repeats) and added to its `i128` once. `false` (nothing
/// added) otherwise.
fn add_narrow_integers(
    sums: &mut [i128],
    counts: &mut [u64],
    values: &[ArrayRef],
    group_indices: &[usize],
) -> Result<bool> {
    let rows = group_indices.len();
    if values[0].null_count() > 0 || sums.len() > rows {
        return Ok(false);
    }
    // A value beyond i64 becomes a null here (a safe cast), and takes the wide path.
    let narrow = arrow::compute::cast(&values[0], &DataType::Int64)?;
    let narrow = narrow.as_primitive::<Int64Type>();
    let bound = match (arrow::compute::min(narrow), arrow::compute::max(narrow)) {
        (Some(lo), Some(hi)) if narrow.null_count() == 0 => {
            lo.unsigned_abs().max(hi.unsigned_abs()) as u128
        }
        _ => return Ok(rows == 0),
    };
    if bound * rows as u128 >= 1 << 63 {
        return Ok(false);
    }
    let mut part = vec![0i64; sums.len()];
    for (&g, &v) in group_indices.iter().zip(narrow.values().iter()) {
        part[g] += v;
        counts[g] += 1;
    }
    for (sum, p) in sums.iter_mut().zip(part) {
        *sum += i128::from(p);
    }
    Ok(true)
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
            let counts = self.counts.rows();
            if opt_filter.is_none() && add_narrow_integers(sums, counts, values, group_indices)? {
                return Ok(());
            }
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
        let (taken, counts) = self.emit(emit_to);
        Ok(Arc::new(self.results(&taken, &counts)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (taken, counts) = self.emit(emit_to);
        Ok(Self::state_arrays(&taken, counts, self.kind.squares()))
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
        // A row is its own group: its state is its value's exact sum (and square), written
        // straight into the arrays. A row left out (null, filtered) is an empty sum and a
        // count of 0, as its group would be.
        let n = values[0].len();
        let mut counts = vec![0u64; n];
        if let Store::Ints(_) = self.store {
            let mut sums = vec![0i128; n];
            for_each_integer(values[0].as_ref(), opt_filter, |i, v| {
                sums[i] = v;
                counts[i] = 1;
            })?;
            return Ok(Self::state_arrays(&Store::Ints(sums), counts, false));
        }
        let values = values[0].as_primitive::<Float64Type>();
        let mut columns = StateColumns::new(n, self.kind.squares());
        let mut append = |x: Option<f64>| {
            let x = x.unwrap_or(0.0);
            columns.push(
                |out| ExactSum::encode_value(x, false, out),
                |out| ExactSum::encode_value(x, true, out),
            )
        };
        let raw = values.values();
        if values.nulls().is_none() && opt_filter.is_none() {
            raw.iter().for_each(|&x| append(Some(x)));
            counts.fill(1);
        } else {
            let mut kept = vec![false; n];
            for_each_selected(n, opt_filter, |i| kept[i] = values.is_valid(i));
            for (i, &keep) in kept.iter().enumerate() {
                append(keep.then_some(raw[i]));
                counts[i] = keep as u64;
            }
        }
        Ok(columns.finish(counts))
    }

    fn size(&self) -> usize {
        let store = match &self.store {
            Store::Sums(slots) => slots.size(),
            Store::Ints(sums) => sums.capacity() * 16,
            Store::Moments(slots) => slots.size(),
        };
        store + self.counts.size()
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
        let (taken, counts) = self.0.peek();
        let out = self.0.results(&taken, &counts);
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.resize(1);
        let (taken, counts) = self.0.peek();
        let arrays = ExactGroups::state_arrays(&taken, counts, self.0.kind.squares());
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
