//! Hash group-by: [`Agg`], [`GroupByOptions`] and [`Engine::group_by`].
//!
//! One output row per group: the key columns first (their input names and types), then one
//! column per aggregate. Keys are equal exactly when their arrow row-format encodings are
//! (`arrow::row::RowConverter`): a null key is a group of its own, `NaN == NaN` (the same
//! bits), `-0.0` and `+0.0` are different groups, and Dictionary keys group by value (the
//! output keeps the dictionary). Groups come out in order of first appearance, or sorted
//! by key ([`GroupByOptions::sorted`]). No keys is a global aggregate: one row, even for an
//! empty batch.
//!
//! # Aggregates and result types (as DataFusion)
//!
//! | aggregate | input | result | a group with no (non-null, kept) value |
//! |---|---|---|---|
//! | `count(*)`, `count(x)` | any | Int64 | 0 |
//! | `sum(x)` | signed ints / unsigned ints / floats | Int64 / UInt64 / Float64 | null |
//! | `sum(x)` | Decimal128(p, s) | Decimal128(38, s) | null |
//! | `min(x)`, `max(x)` | any type with a row format | the input type | null |
//! | `avg(x)` (`mean`) | numbers | Float64 | null |
//! | `avg(x)` (`mean`) | Decimal128(p, s) | Decimal128(min(p + 4, 38), min(s + 4, 38)) | null |
//! | `var`, `var_pop`, `stddev`, `stddev_pop` | numbers, decimals (as Float64) | Float64 | null (sample forms: also for one value) |
//!
//! **Decimals** sum exactly in 128 bits (wrapping there, as the integers wrap in 64); the
//! mean is that sum at four more decimal places divided by the count, truncated toward
//! zero (DataFusion's decimal average); variances are of the values cast to Float64 (as
//! arrow casts: correctly rounded).
//!
//! Aggregates skip nulls, and rows where their own filter ([`Agg::filter`]) is not true.
//! **Integer sums wrap** on overflow (in Int64 or UInt64), as arrow's `sum` does; `avg`
//! and `var` of integers are exact (see below), not computed from the wrapped sum.
//! `min`/`max` order values as arrow's `min`/`max` kernels do: floats in IEEE total order
//! (`-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < NaN`), so a NaN is the largest value
//! and `max` of `-0.0` and `0.0` is `0.0`; the value comes back with its own bits.
//!
//! # Floats: one answer, correctly rounded
//!
//! `sum`, `avg`, `var` and `stddev` of floats (Float32 widened to Float64 exactly first)
//! add the values into an exact fixed-point accumulator (every finite f64 is an integer
//! multiple of 2^-1074, so a sum of them is an integer; squares are multiples of 2^-2148)
//! and round once at the end, to nearest, ties to even. So the result does not depend on
//! the order of the rows, the number of threads or the backend, and:
//!
//! - `sum`: error ≤ 0.5 ulp of the exact sum;
//! - `avg`: the exact sum divided by the count, rounded once: error ≤ 0.5 ulp of the exact
//!   mean;
//! - `var` / `var_pop`: `(n·Σx² − (Σx)²) / (n·(n−1))` (or `/ n²`) on exact integers, rounded
//!   once: error ≤ 0.5 ulp of the exact variance;
//! - `stddev` / `stddev_pop`: `sqrt` of that variance: error < 1 ulp of the exact value.
//!
//! All are at least as accurate as a plain left-to-right f64 sum. A NaN in a group, or both
//! infinities, makes the result NaN (the canonical positive NaN, bits `0x7ff8000000000000`);
//! otherwise an infinity makes `sum`/`avg` that infinity and `var`/`stddev` NaN. An exact
//! sum of zero is `+0.0`; an exact result beyond f64's range is ±inf.
//!
//! # Where it runs
//!
//! On the GPU (`src/gpu/group_by.rs`): an open-addressing hash table over the keys' order
//! words (compare-and-swap on slots; sized from the input, grown and rebuilt when the groups
//! fill it, so no row is ever dropped), groups numbered in order of first appearance by a
//! prefix sum, then one atomic pass per aggregate. Keys of every type the engine uploads,
//! string keys (`Utf8`, `LargeUtf8`, `Utf8View`, of any length: hashed over their bytes,
//! compared byte by byte on a collision; with other keys each string key first becomes a
//! code per row, the first row holding an equal string), and Dictionary keys (grouped by
//! canonical codes that the host derives from the dictionary's values). Every aggregate, over a column or an expression (evaluated by a
//! generated kernel, the filter's code), with or without a filter: counts; integer `sum`
//! and `avg` from an exact 96-bit sum (decimals of up to 18 digits, held as i64, too;
//! decimal expressions, computed in checked 128-bit arithmetic, from a 160-bit sum);
//! integer `var`/`stddev` from that and an exact
//! 160-bit sum of squares; float `sum`/`avg`/`var`/`stddev` from the exact sums above, held
//! as 32-bit digits that rows add to with 32-bit atomics and carries; `min`/`max` by order
//! words. All of it with 32-bit atomics only, so every adapter runs it (GL included), and
//! the results are finished by the same code as the CPU path's: the same bits. A batch
//! larger than one GPU chunk is grouped chunk by chunk and the partial aggregates merged.
//! What still runs on the CPU: keys of other types the GPU doesn't hold (nested types,
//! decimals, ...), `min`/`max`/`count(DISTINCT)` of strings and aggregates over other such
//! values, a string longer than one storage binding, and a float sum whose exact digits for all groups would exceed one storage
//! binding. [`Backend::Auto`] runs those on the CPU (the hash-based path from `hashbrown`
//! over row-format encodings), logged and shown in the [`crate::Profile`] as a fall back;
//! [`Backend::Gpu`] returns [`Error::UnsupportedOnGpu`] naming what it can't run.
//!
//! Batches streamed one at a time (a file larger than memory) go through
//! [`Engine::group_by_accumulator`]: each batch becomes partial aggregates (counts, exact
//! sums, best values), which merge exactly, so the result is the one-batch result's bits.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Float64Array, Int64Array, StringArray};
//! use arrow::record_batch::RecordBatch;
//! use arrow_wgpu::{col, lit, Agg, Backend, Engine};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("flag", Arc::new(StringArray::from(vec!["A", "N", "A", "R"])) as _),
//!     ("price", Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 40.0])) as _),
//!     ("discount", Arc::new(Float64Array::from(vec![0.1, 0.0, 0.5, 0.25])) as _),
//! ]).unwrap();
//! let engine = Engine::new(Backend::Cpu).unwrap();
//! let out = engine.group_by(&batch, &["flag"], &[
//!     Agg::count_star(),
//!     Agg::sum(col("price") * (lit(1.0) - col("discount"))).alias("revenue"),
//!     Agg::mean(col("price")),
//! ]).unwrap();
//! assert_eq!(out.schema().field(1).name(), "count(*)");
//! assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![2, 1, 1]));
//! assert_eq!(out.column(2).as_ref(), &Float64Array::from(vec![24.0, 20.0, 30.0]));
//! assert_eq!(out.schema().field(3).name(), "avg(price)");
//! ```

use std::fmt;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::compute::{take_record_batch, SortOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub use crate::aggregate::AggFunc;
use crate::aggregate::{Grouped, Merger};
use crate::aggregate::{Plan, PlannedAgg};
use crate::cpu;
use crate::engine::{check_rows, Engine};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::gpu;
use crate::gpu::column::GpuBatch;
use crate::keys::Key;
use crate::plan::{self, Typed};
use crate::profile::{self, RanOn};

#[cfg(doc)]
use crate::engine::Backend;

/// One aggregate of a group-by: a function over a value expression, with an optional
/// filter and an optional output name.
///
/// The output column is named as DataFusion names it (`count(*)`, `sum(price)`,
/// `avg((price * 2))`, `sum(x) FILTER (WHERE (y > 1))`) unless [`Agg::alias`] names it.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit, Agg};
/// let a = Agg::sum(col("price") * (lit(1) - col("discount")));
/// assert_eq!(a.name(), "sum(price * (1 - discount))");
/// let b = Agg::count_star().filter(col("qty").gt(lit(10))).alias("big_orders");
/// assert_eq!(b.name(), "big_orders");
/// assert_eq!(Agg::count_star().filter(col("qty").gt(lit(10))).name(), "count(*) FILTER (WHERE qty > 10)");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Agg {
    func: AggFunc,
    expr: Option<Expr>,
    filter: Option<Expr>,
    alias: Option<String>,
}

macro_rules! agg_constructor {
    ($($(#[$doc:meta])* $name:ident => $func:ident),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(expr: Expr) -> Agg {
            Agg { func: AggFunc::$func, expr: Some(expr), filter: None, alias: None }
        }
    )*};
}

impl Agg {
    /// `count(*)`: the number of rows in the group (that pass the filter), as Int64.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::Agg;
    /// assert_eq!(Agg::count_star().name(), "count(*)");
    /// ```
    pub fn count_star() -> Agg {
        Agg {
            func: AggFunc::CountStar,
            expr: None,
            filter: None,
            alias: None,
        }
    }

    agg_constructor! {
        /// `count(expr)`: the number of non-null values, as Int64 (0 for none).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::count(col("x")).name(), "count(x)");
        /// ```
        count => Count,
        /// `count(DISTINCT expr)`: the number of distinct non-null values, as Int64 (0 for
        /// none). Values are equal when their arrow row-format encodings are (NaN equals
        /// NaN, -0.0 differs from 0.0), as group keys are.
        ///
        /// # Example
        /// ```
        /// # use std::sync::Arc;
        /// # use arrow::array::{Int32Array, Int64Array};
        /// # use arrow::record_batch::RecordBatch;
        /// use arrow_wgpu::{col, Agg, Engine};
        /// let batch = RecordBatch::try_from_iter([
        ///     ("k", Arc::new(Int32Array::from(vec![1, 1, 1, 2, 2])) as _),
        ///     ("x", Arc::new(Int32Array::from(vec![Some(7), Some(7), Some(8), None, Some(9)])) as _),
        /// ]).unwrap();
        /// let out = Engine::from_env().unwrap()
        ///     .group_by(&batch, &["k"], &[Agg::count_distinct(col("x"))])
        ///     .unwrap();
        /// assert_eq!(out.schema().field(1).name(), "count(DISTINCT x)");
        /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![2, 1]));
        /// ```
        count_distinct => CountDistinct,
        /// `sum(expr)`: Int64 for signed integers, UInt64 for unsigned (both wrap on
        /// overflow, as arrow's `sum`), Float64 for floats (exact, rounded once); null for
        /// a group without values.
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::sum(col("x")).name(), "sum(x)");
        /// ```
        sum => Sum,
        /// `min(expr)`: the smallest value, in the input type (floats in IEEE total order,
        /// as arrow's `min`: `-NaN` is the smallest, `-0.0 < 0.0`).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::min(col("x")).name(), "min(x)");
        /// ```
        min => Min,
        /// `max(expr)`: the largest value, in the input type (floats in IEEE total order,
        /// as arrow's `max`: NaN is the largest).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::max(col("x")).name(), "max(x)");
        /// ```
        max => Max,
        /// `avg(expr)` of numbers, as Float64: the exact sum divided by the count, rounded
        /// once (error ≤ 0.5 ulp).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::mean(col("x")).name(), "avg(x)");
        /// ```
        mean => Mean,
        /// The same as [`Agg::mean`].
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::avg(col("x")), Agg::mean(col("x")));
        /// ```
        avg => Mean,
        /// `var(expr)`: the sample variance (divisor n − 1), Float64, correctly rounded;
        /// null for fewer than two values (as DataFusion).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::var_samp(col("x")).name(), "var(x)");
        /// ```
        var_samp => VarSamp,
        /// `var_pop(expr)`: the population variance (divisor n), Float64, correctly
        /// rounded; 0 for one value.
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::var_pop(col("x")).name(), "var_pop(x)");
        /// ```
        var_pop => VarPop,
        /// `stddev(expr)`: the square root of [`Agg::var_samp`] (error < 1 ulp).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::stddev_samp(col("x")).name(), "stddev(x)");
        /// ```
        stddev_samp => StddevSamp,
        /// `stddev_pop(expr)`: the square root of [`Agg::var_pop`] (error < 1 ulp).
        ///
        /// # Example
        /// ```
        /// use arrow_wgpu::{col, Agg};
        /// assert_eq!(Agg::stddev_pop(col("x")).name(), "stddev_pop(x)");
        /// ```
        stddev_pop => StddevPop,
    }

    /// Only rows where `predicate` is true count for this aggregate (SQL's
    /// `agg(x) FILTER (WHERE predicate)`; a null predicate drops the row). A second call
    /// ANDs the predicates.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Agg, Backend, Engine};
    /// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![1, 5, 9])) as _)]).unwrap();
    /// let out = Engine::new(Backend::Cpu).unwrap()
    ///     .group_by(&batch, &[], &[Agg::sum(col("x")).filter(col("x").gt(lit(2)))]).unwrap();
    /// assert_eq!(out.column(0).as_ref(), &Int64Array::from(vec![14]));
    /// ```
    pub fn filter(mut self, predicate: Expr) -> Agg {
        self.filter = Some(match self.filter.take() {
            Some(previous) => previous.and(predicate),
            None => predicate,
        });
        self
    }

    /// Names the output column.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{col, Agg};
    /// assert_eq!(Agg::max(col("x")).alias("top").name(), "top");
    /// ```
    pub fn alias(mut self, name: impl Into<String>) -> Agg {
        self.alias = Some(name.into());
        self
    }

    /// The function.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{col, Agg, AggFunc};
    /// assert_eq!(Agg::sum(col("x")).func(), AggFunc::Sum);
    /// ```
    pub fn func(&self) -> AggFunc {
        self.func
    }

    /// The value expression (`None` for `count(*)`).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{col, Agg};
    /// assert_eq!(Agg::sum(col("x")).expr(), Some(&col("x")));
    /// assert_eq!(Agg::count_star().expr(), None);
    /// ```
    pub fn expr(&self) -> Option<&Expr> {
        self.expr.as_ref()
    }

    /// The filter predicate, if any.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{col, lit, Agg};
    /// assert!(Agg::count_star().filter(col("a").gt(lit(1))).predicate().is_some());
    /// ```
    pub fn predicate(&self) -> Option<&Expr> {
        self.filter.as_ref()
    }

    /// The output column's name: the alias, or DataFusion's style (`sum(x)`, `count(*)`,
    /// `avg(x) FILTER (WHERE (x > 1))`).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{col, Agg};
    /// assert_eq!(Agg::var_pop(col("x")).name(), "var_pop(x)");
    /// ```
    pub fn name(&self) -> String {
        if let Some(alias) = &self.alias {
            return alias.clone();
        }
        let arg = match &self.expr {
            None => "*".to_string(),
            Some(e) if self.func == AggFunc::CountDistinct => {
                format!("DISTINCT {}", strip_parens(e.to_string()))
            }
            Some(e) => strip_parens(e.to_string()),
        };
        match &self.filter {
            None => format!("{}({arg})", self.func),
            Some(p) => format!(
                "{}({arg}) FILTER (WHERE {})",
                self.func,
                strip_parens(p.to_string())
            ),
        }
    }
}

/// `(a + b)` -> `a + b` when the outer parentheses enclose the whole text.
fn strip_parens(s: String) -> String {
    if !(s.starts_with('(') && s.ends_with(')')) {
        return s;
    }
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 && i + 1 < s.len() {
                    return s;
                }
            }
            _ => {}
        }
    }
    s[1..s.len() - 1].to_string()
}

/// How [`Engine::group_by_with`] orders its output.
///
/// # Example
/// ```
/// use arrow_wgpu::GroupByOptions;
/// assert!(!GroupByOptions::default().sort_by_key);
/// assert!(GroupByOptions::sorted().sort_by_key);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupByOptions {
    /// `false` (the default): groups in order of first appearance. `true`: sorted by the
    /// keys, ascending in arrow's row-format order, nulls first (floats in IEEE total
    /// order), by the crate's stable sort.
    pub sort_by_key: bool,
}

impl GroupByOptions {
    /// Groups sorted by key.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::GroupByOptions;
    /// assert_eq!(GroupByOptions::sorted(), GroupByOptions { sort_by_key: true });
    /// ```
    pub fn sorted() -> GroupByOptions {
        GroupByOptions { sort_by_key: true }
    }
}

pub(crate) fn plan_group_by(schema: &Schema, keys: &[&str], aggs: &[Agg]) -> Result<Plan> {
    if keys.is_empty() && aggs.is_empty() {
        return Err(Error::InvalidExpression(
            "group_by needs at least one key column or one aggregate".into(),
        ));
    }
    let keys: Vec<usize> = keys
        .iter()
        .map(|k| {
            schema
                .index_of(k)
                .map_err(|_| Error::unknown_column(k, schema))
        })
        .collect::<Result<_>>()?;
    let mut fields: Vec<Field> = keys.iter().map(|&k| schema.field(k).clone()).collect();
    let mut planned = Vec::with_capacity(aggs.len());
    for agg in aggs {
        let name = agg.name();
        let filter = agg
            .filter
            .as_ref()
            .map(|p| plan::plan_predicate(p, schema))
            .transpose()?;
        let mut value = agg
            .expr
            .as_ref()
            .map(|e| plan::plan(e, schema))
            .transpose()?;
        // Variances of decimals are of their Float64 values (DataFusion's coercion): the
        // value is cast, as arrow casts decimals to floats (correctly rounded).
        let spread = matches!(
            agg.func,
            AggFunc::VarSamp | AggFunc::VarPop | AggFunc::StddevSamp | AggFunc::StddevPop
        );
        if let (true, Some(v)) = (spread, &value) {
            if plan::is_decimal(&v.data_type()) {
                value = Some(Typed::Cast(Box::new(v.clone()), DataType::Float64));
            }
        }
        let input = value.as_ref().map(|v| v.data_type());
        // `where_` stays empty: the type is unsupported on every backend, so
        // `Backend::Auto` has nothing to fall back to.
        let unsupported = |dt: &DataType| Error::UnsupportedType {
            operation: "group_by",
            column: name.clone(),
            data_type: dt.clone(),
            where_: String::new(),
        };
        let output = match (agg.func, &input) {
            (AggFunc::CountStar, _) | (AggFunc::Count, _) => DataType::Int64,
            (_, None) => unreachable!("every aggregate but count(*) has a value"),
            (AggFunc::Min | AggFunc::Max, Some(dt)) => {
                if !cpu::group_by::orderable(dt) {
                    return Err(unsupported(dt));
                }
                dt.clone()
            }
            (AggFunc::CountDistinct, Some(dt)) => {
                if !cpu::group_by::orderable(dt) {
                    return Err(unsupported(dt));
                }
                DataType::Int64
            }
            // DataFusion's: a decimal's sum has 38 digits at its scale; its mean four more
            // decimal places (and digits), at most 38.
            (AggFunc::Sum, Some(DataType::Decimal128(_, s))) => DataType::Decimal128(38, *s),
            (AggFunc::Mean, Some(DataType::Decimal128(p, s))) => {
                DataType::Decimal128((*p + 4).min(38), (*s + 4).min(38))
            }
            (AggFunc::Sum, Some(dt)) => match plan::int_info(dt) {
                Some((true, _)) => DataType::Int64,
                Some((false, _)) => DataType::UInt64,
                None if matches!(dt, DataType::Float32 | DataType::Float64) => DataType::Float64,
                None => return Err(unsupported(dt)),
            },
            (_, Some(dt)) => {
                if !plan::is_numeric(dt) {
                    return Err(unsupported(dt));
                }
                DataType::Float64
            }
        };
        let nullable = !matches!(
            agg.func,
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct
        );
        fields.push(Field::new(name.clone(), output.clone(), nullable));
        planned.push(PlannedAgg {
            func: agg.func,
            value,
            filter,
            output,
            name,
        });
    }
    Ok(Plan {
        keys,
        aggs: planned,
        schema: Arc::new(Schema::new(fields)),
    })
}

impl Engine {
    /// Groups the rows of `batch` by the `keys` columns and computes `aggs` per group: one
    /// row per group, the key columns first, then one column per aggregate, groups in order
    /// of first appearance. No keys is a global aggregate (one row, even for no input rows).
    /// See the [module docs](crate::group_by) for equality of keys, result types, nulls and
    /// the exactness of float aggregates.
    ///
    /// See the module docs for what runs on the GPU; the rest runs on the CPU under
    /// `Backend::Auto` (logged, and shown in the profile as a fall back), and `Backend::Gpu`
    /// returns [`Error::UnsupportedOnGpu`] for it.
    ///
    /// Errors: an unknown column, an expression that doesn't type-check, an aggregate over
    /// a type it can't take ([`Error::UnsupportedType`]), or neither keys nor aggregates.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Float64Array, Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Agg, Backend, Engine};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Int32Array::from(vec![Some(2), None, Some(2), None, Some(7)])) as _),
    ///     ("x", Arc::new(Float64Array::from(vec![Some(1.0), Some(2.0), None, Some(4.0), Some(0.5)])) as _),
    /// ]).unwrap();
    /// let engine = Engine::new(Backend::Cpu).unwrap();
    /// let out = engine.group_by(&batch, &["k"], &[Agg::count(col("x")), Agg::sum(col("x")), Agg::var_samp(col("x"))]).unwrap();
    /// assert_eq!(out.column(0).as_ref(), &Int32Array::from(vec![Some(2), None, Some(7)]));
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![1, 2, 1]));
    /// assert_eq!(out.column(2).as_ref(), &Float64Array::from(vec![1.0, 6.0, 0.5]));
    /// assert_eq!(out.column(3).as_ref(), &Float64Array::from(vec![None, Some(2.0), None]));
    /// ```
    pub fn group_by(
        &self,
        batch: &RecordBatch,
        keys: &[&str],
        aggs: &[Agg],
    ) -> Result<RecordBatch> {
        self.group_by_with(batch, keys, aggs, GroupByOptions::default())
    }

    /// [`Engine::group_by`] with options: [`GroupByOptions::sorted`] sorts the groups by
    /// key (ascending in arrow's row-format order, nulls first).
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Float64Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, Agg, Engine, GroupByOptions};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Float64Array::from(vec![Some(1.0), Some(f64::NAN), None, Some(-0.0), Some(0.0), Some(1.0)])) as _),
    /// ]).unwrap();
    /// let engine = Engine::from_env().unwrap();
    /// let out = engine.group_by_with(&batch, &["k"], &[Agg::count_star()], GroupByOptions::sorted()).unwrap();
    /// let keys: Vec<Option<u64>> = out.column(0).as_any().downcast_ref::<Float64Array>().unwrap()
    ///     .iter().map(|v| v.map(f64::to_bits)).collect();
    /// assert_eq!(keys, [None, Some((-0.0f64).to_bits()), Some(0), Some(1f64.to_bits()), Some(f64::NAN.to_bits())]);
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![1, 1, 1, 2, 1]));
    /// ```
    pub fn group_by_with(
        &self,
        batch: &RecordBatch,
        keys: &[&str],
        aggs: &[Agg],
        options: GroupByOptions,
    ) -> Result<RecordBatch> {
        let plan = plan_group_by(batch.schema_ref(), keys, aggs)?;
        check_rows("group_by", batch.num_rows())?;
        let grouped = self.run(
            "group_by",
            |ctx| gpu::group_by::partial(ctx, gpu::group_by::Input::Host(batch), &plan),
            || cpu::group_by::partial(batch, &plan, self.cpu),
        )?;
        let out = output(&plan, &grouped, options, self.cpu)?;
        profile::minimal(
            profile::columns_bytes(batch, &plan.used_columns()) + profile::batch_bytes(&out),
        );
        Ok(out)
    }

    /// A group-by over many batches (a file streamed batch by batch, a table larger than
    /// memory): [`GroupByAccumulator::push`] each batch, then
    /// [`GroupByAccumulator::finish`]. Each batch is grouped on its own (on the GPU or the
    /// CPU, as [`Engine::group_by`] would) into partial aggregates: counts, exact integer
    /// sums, exact float sums and the best value so far. These merge exactly, so the result
    /// is the one [`Engine::group_by_with`] gives for all the batches concatenated, to the
    /// bit: groups in order of first appearance across the batches (or sorted by key), the
    /// same sums, means and variances. Memory grows with the number of groups, not rows.
    ///
    /// On the GPU, a plan of counts, integer or decimal sums, means and variances, and
    /// `min`/`max` of values of at most 32 bits, grouped by fixed-width keys (or none),
    /// keeps its hash table on the device across batches: each batch adds to it and reads
    /// back only whether it overflowed and its new groups, and the states come back once,
    /// in [`GroupByAccumulator::finish`]. A batch whose groups would overflow the table
    /// (more than ~12k) sends the table's groups to the host's merge, and the stream goes
    /// on batch by batch.
    ///
    /// Errors as [`Engine::group_by`], checked against `schema` here; a pushed batch whose
    /// schema differs gives [`Error::SchemaMismatch`].
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Float64Array, Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, Agg, Engine, GroupByOptions};
    /// let part = |k: Vec<i32>, x: Vec<f64>| RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Int32Array::from(k)) as _),
    ///     ("x", Arc::new(Float64Array::from(x)) as _),
    /// ]).unwrap();
    /// let engine = Engine::from_env().unwrap();
    /// let first = part(vec![1, 2, 1], vec![0.1, 0.2, 0.3]);
    /// let mut acc = engine
    ///     .group_by_accumulator(first.schema(), &["k"], &[Agg::count_star(), Agg::sum(col("x"))], GroupByOptions::default())
    ///     .unwrap();
    /// acc.push(&first).unwrap();
    /// acc.push(&part(vec![3, 1], vec![0.4, 0.5])).unwrap();
    /// let out = acc.finish().unwrap();
    /// assert_eq!(out.column(0).as_ref(), &Int32Array::from(vec![1, 2, 3]));
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![3, 1, 1]));
    /// // The exact sum of 0.1, 0.3 and 0.5 (as f64 values), rounded once.
    /// assert_eq!(out.column(2).as_ref(), &Float64Array::from(vec![0.9, 0.2, 0.4]));
    /// ```
    pub fn group_by_accumulator(
        &self,
        schema: SchemaRef,
        keys: &[&str],
        aggs: &[Agg],
        options: GroupByOptions,
    ) -> Result<GroupByAccumulator> {
        let plan = plan_group_by(&schema, keys, aggs)?;
        Ok(GroupByAccumulator {
            engine: self.clone(),
            input: schema,
            plan,
            options,
            merger: Merger::new(),
            resident: gpu::group_resident::Resident::default(),
        })
    }
}

/// A group-by fed batch by batch: see [`Engine::group_by_accumulator`].
pub struct GroupByAccumulator {
    engine: Engine,
    input: SchemaRef,
    plan: Plan,
    options: GroupByOptions,
    merger: Merger,
    /// On the GPU, the hash table kept there across batches.
    resident: gpu::group_resident::Resident,
}

impl fmt::Debug for GroupByAccumulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupByAccumulator")
            .field("input", &self.input)
            .field("output", &self.plan.schema)
            .finish_non_exhaustive()
    }
}

impl GroupByAccumulator {
    /// Groups `batch` and merges its partial aggregates into those of the batches before.
    /// On an error nothing of `batch` is merged, so the accumulator still holds exactly the
    /// batches pushed before it.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema_ref().fields() != self.input.fields() {
            return Err(Error::SchemaMismatch(format!(
                "group_by_accumulator: the batch's schema ({}) is not the one planned for ({})",
                batch.schema(),
                self.input
            )));
        }
        check_rows("group_by", batch.num_rows())?;
        self.check_kept()?;
        let plan = &self.plan;
        let (resident, merger) = (&mut self.resident, &mut self.merger);
        let grouped = self.engine.run(
            "group_by",
            |ctx| {
                let input = gpu::group_by::Input::Host(batch);
                resident.push(ctx, input, plan, merger).map(|()| None)
            },
            || cpu::group_by::partial(batch, plan, self.engine.cpu).map(Some),
        );
        self.merge(grouped)
    }

    /// Merges a batch's groups (`None`: the GPU's table took them), unless groups the
    /// GPU's table held were lost on the way (then the result would miss them: an error).
    fn merge(&mut self, grouped: Result<Option<Grouped>>) -> Result<()> {
        self.check_kept()?;
        match grouped? {
            Some(grouped) => self.merger.push(&self.plan, grouped),
            None => Ok(()),
        }
    }

    /// An error once groups kept on the GPU could not be read back.
    fn check_kept(&self) -> Result<()> {
        match self.resident.lost() {
            Some(why) => Err(Error::DeviceLost(format!(
                "group_by_accumulator: the groups kept on the GPU could not be read back ({why})"
            ))),
            None => Ok(()),
        }
    }

    /// Groups the rows of `batch` where `predicate` is true (null is false) and merges
    /// them, as [`GroupByAccumulator::push`] of `Engine::filter(batch, predicate)` would,
    /// fused: on the GPU the batch is uploaded once, filtered there and grouped from the
    /// filtered columns where they lie (nothing downloaded in between).
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Agg, Engine, GroupByOptions};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Int32Array::from(vec![1, 2, 1, 2])) as _),
    ///     ("x", Arc::new(Int64Array::from(vec![5, 50, 7, 70])) as _),
    /// ]).unwrap();
    /// let engine = Engine::from_env().unwrap();
    /// let mut acc = engine.group_by_accumulator(batch.schema(), &["k"], &[Agg::sum(col("x"))], GroupByOptions::default()).unwrap();
    /// acc.push_where(&batch, &col("x").gt(lit(6))).unwrap();
    /// let out = acc.finish().unwrap();
    /// assert_eq!(out.column(0).as_ref(), &Int32Array::from(vec![2, 1]));
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![120, 7]));
    /// ```
    pub fn push_where(&mut self, batch: &RecordBatch, predicate: &Expr) -> Result<()> {
        if batch.schema_ref().fields() != self.input.fields() {
            return Err(Error::SchemaMismatch(format!(
                "group_by_accumulator: the batch's schema ({}) is not the one planned for ({})",
                batch.schema(),
                self.input
            )));
        }
        check_rows("group_by", batch.num_rows())?;
        self.check_kept()?;
        let typed = plan::plan_predicate(predicate, &self.input)?;
        let plan = &self.plan;
        let (table, merger) = (&mut self.resident, &mut self.merger);
        let engine = &self.engine;
        let grouped = engine.run(
            "filter + group_by",
            |ctx| {
                crate::engine::check_all_gpu_types(ctx, batch, "group_by")?;
                let nullable = |i: usize| batch.column(i).null_count() > 0;
                gpu::filter::check_predicate(ctx, &typed, &nullable)?;
                let resident = engine.upload(batch)?;
                let kept = gpu::filter::filter(&resident, &typed)?;
                let input = gpu::group_by::Input::Resident(&kept);
                table.push(ctx, input, plan, merger).map(|()| None)
            },
            || {
                let mask = cpu::filter::evaluate(batch, &typed)?;
                let kept = cpu::filter::filter_by_mask(batch, &mask)?;
                cpu::group_by::partial(&kept, plan, engine.cpu).map(Some)
            },
        );
        self.merge(grouped)
    }

    /// Why the GPU would decline this group-by (fused behind `predicate`, if given): a key,
    /// aggregate or predicate its kernels don't take, such as `count(DISTINCT s)` of a
    /// string; `None` where the kernels take it. What a planner asks before it chooses the
    /// GPU, so that `Backend::Gpu` isn't sent an operation it can only refuse. Types and
    /// expressions only: a GPU may still run out of memory.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_wgpu::{col, Agg, Backend, Engine, GroupByOptions};
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("k", DataType::Int32, true),
    ///     Field::new("s", DataType::Utf8, true),
    /// ]));
    /// let engine = Engine::new(Backend::Cpu).unwrap();
    /// let plain = engine.group_by_accumulator(schema.clone(), &["k"], &[Agg::count(col("s"))], GroupByOptions::default()).unwrap();
    /// assert_eq!(plain.gpu_declines(None).unwrap(), None);
    /// let distinct = engine.group_by_accumulator(schema, &["k"], &[Agg::count_distinct(col("s"))], GroupByOptions::default()).unwrap();
    /// assert!(distinct.gpu_declines(None).unwrap().is_some());
    /// ```
    pub fn gpu_declines(&self, predicate: Option<&Expr>) -> Result<Option<String>> {
        let Some(predicate) = predicate else {
            return Ok(gpu::group_by::unsupported(&self.plan, &self.input, true));
        };
        let typed = plan::plan_predicate(predicate, &self.input)?;
        if let Some(reason) = crate::engine::gpu_declines_predicate(&typed)? {
            return Ok(Some(reason));
        }
        // Behind a filter the group-by reads the filtered columns where they lie on the GPU.
        Ok(gpu::group_by::unsupported(&self.plan, &self.input, false))
    }

    /// Why this accumulator, on a GPU, groups each batch on its own (the host merging the
    /// batches' groups) instead of keeping its hash table on the GPU across batches; `None`
    /// where it keeps the table. The table takes counts, exact integer, decimal and float
    /// sums, means and variances, and `min`/`max` of fixed-width values, grouped by
    /// fixed-width keys or none; not `count(DISTINCT)`, `min`/`max` of strings, variances
    /// of 128-bit decimals or string keys. From the plan and the types only: a batch with
    /// more groups than the table
    /// holds, or a plan wider than the adapter's storage bindings, still sends the stream
    /// batch by batch. What `EXPLAIN` of the SQL path says of a GPU aggregate.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_wgpu::{col, Agg, Backend, Engine, GroupByOptions};
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("k", DataType::Int32, true),
    ///     Field::new("n", DataType::Int64, true),
    ///     Field::new("x", DataType::Float64, true),
    /// ]));
    /// let engine = Engine::new(Backend::Cpu).unwrap();
    /// let acc = |aggs: &[Agg]| {
    ///     engine.group_by_accumulator(schema.clone(), &["k"], aggs, GroupByOptions::default()).unwrap()
    /// };
    /// assert_eq!(acc(&[Agg::sum(col("n")), Agg::count_star()]).gpu_groups_batch_by_batch(), None);
    /// assert_eq!(acc(&[Agg::stddev_samp(col("x")), Agg::max(col("n"))]).gpu_groups_batch_by_batch(), None);
    /// assert_eq!(
    ///     acc(&[Agg::count_distinct(col("n"))]).gpu_groups_batch_by_batch().unwrap(),
    ///     "count(DISTINCT)"
    /// );
    /// ```
    pub fn gpu_groups_batch_by_batch(&self) -> Option<String> {
        gpu::group_resident::declines(&self.plan, &self.input)
    }

    /// The output's schema: the key columns, then one column per aggregate.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema.clone()
    }

    /// The groups of every batch pushed: what [`Engine::group_by_with`] gives for the
    /// batches concatenated (with no batch pushed: no groups, or for a global aggregate
    /// one row of empty aggregates).
    pub fn finish(mut self) -> Result<RecordBatch> {
        self.check_kept()?;
        if self.resident.holds() {
            let ctx = self.engine.context()?.clone();
            profile::begin_step("group_by", self.engine.ran_on_gpu(), None);
            ctx.operation(|| self.resident.flush(&self.plan, &mut self.merger))?;
        }
        let grouped = match self.merger.finish(&self.plan)? {
            Some(g) => g,
            None => {
                let empty = RecordBatch::new_empty(self.input.clone());
                cpu::group_by::partial(&empty, &self.plan, cpu::Threads::ONE)?
            }
        };
        output(&self.plan, &grouped, self.options, self.engine.cpu)
    }
}

impl GpuBatch {
    /// Groups this batch's rows on the GPU, reading the columns where they already are: no
    /// upload. The groups come back as a `RecordBatch` (key values gathered on the GPU,
    /// aggregates finished on the host from the downloaded partial states). See
    /// [`Engine::group_by`] for the semantics; what the GPU path can't run is an
    /// [`Error::UnsupportedOnGpu`] here (Dictionary keys can't be resident).
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Agg, Backend, Engine};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Int32Array::from(vec![1, 2, 1, 2, 1])) as _),
    ///     ("x", Arc::new(Int64Array::from(vec![10, 20, 30, 40, 50])) as _),
    /// ]).unwrap();
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     let resident = engine.upload(&batch).unwrap();
    ///     let out = resident
    ///         .group_by(&["k"], &[Agg::sum(col("x")), Agg::count_star().filter(col("x").gt(lit(15)))])
    ///         .unwrap();
    ///     assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![90, 60]));
    ///     assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![2, 2]));
    /// }
    /// ```
    pub fn group_by(&self, keys: &[&str], aggs: &[Agg]) -> Result<RecordBatch> {
        self.group_by_with(keys, aggs, GroupByOptions::default())
    }

    /// [`GpuBatch::group_by`] with options (see [`Engine::group_by_with`]).
    pub fn group_by_with(
        &self,
        keys: &[&str],
        aggs: &[Agg],
        options: GroupByOptions,
    ) -> Result<RecordBatch> {
        let plan = plan_group_by(&self.schema, keys, aggs)?;
        check_rows("group_by", self.num_rows())?;
        let grouped = self.ctx.operation(|| {
            profile::begin_step("group_by", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            gpu::group_by::partial(&self.ctx, gpu::group_by::Input::Resident(self), &plan)
        })?;
        // Finished on the host, on its cores.
        let out = output(&plan, &grouped, options, cpu::Threads::new(None, None))?;
        let used: u64 = plan
            .used_columns()
            .iter()
            .map(|&i| self.columns[i].device_bytes())
            .sum();
        profile::minimal(used + profile::batch_bytes(&out));
        Ok(out)
    }
}

/// The output batch of `grouped`, sorted by key if asked.
fn output(
    plan: &Plan,
    grouped: &Grouped,
    options: GroupByOptions,
    threads: cpu::Threads,
) -> Result<RecordBatch> {
    let row_count = RecordBatchOptions::new().with_row_count(Some(grouped.groups));
    let columns = grouped.finish(plan, threads.threads)?;
    let out = RecordBatch::try_new_with_options(plan.schema.clone(), columns, &row_count)?;
    if options.sort_by_key && !plan.keys.is_empty() {
        sort_by_key(&out, plan.keys.len(), threads)
    } else {
        Ok(out)
    }
}

/// `out` (key columns first) sorted by its first `keys` columns, ascending, nulls first.
fn sort_by_key(out: &RecordBatch, keys: usize, threads: cpu::Threads) -> Result<RecordBatch> {
    let key_batch = out.project(&(0..keys).collect::<Vec<_>>())?;
    let order: Vec<Key> = (0..keys)
        .map(|column| Key {
            column,
            options: SortOptions::default(),
        })
        .collect();
    let indices = cpu::sort::sort_to_indices(&key_batch, &order, None, threads)?;
    Ok(take_record_batch(out, &indices)?)
}
