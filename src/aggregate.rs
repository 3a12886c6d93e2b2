//! Partial aggregates: the per-group states that both group-by paths produce, that merge
//! exactly across chunks and batches, and that finish into the output columns.
//!
//! A state holds what the result needs and nothing rounded: counts, exact integer sums,
//! exact float sums (and sums of squares), or the best value so far for `min`/`max`. So a
//! batch split into chunks (on the GPU) or a file streamed in batches
//! ([`crate::group_by::GroupByAccumulator`]) gives the same bits as one batch would.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, Decimal128Array, Float64Array, Int64Array, UInt32Array,
    UInt64Array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{concat, take, SortOptions};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use hashbrown::HashMap;

use crate::cpu::group_by::number_into;
use crate::cpu::keys;
use crate::error::{Error, Result};
use crate::exact::{self, ExactSum, SumSlots};
use crate::plan::Typed;

/// An aggregate function.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, Agg, AggFunc};
/// assert_eq!(Agg::stddev_pop(col("x")).func(), AggFunc::StddevPop);
/// assert_eq!(AggFunc::Mean.to_string(), "avg");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `count(*)`: the rows (that pass the aggregate's filter).
    CountStar,
    /// `count(x)`: the non-null values.
    Count,
    /// `count(DISTINCT x)`: the distinct non-null values (equal as arrow's row format
    /// says: NaN equals NaN, -0.0 differs from 0.0).
    CountDistinct,
    /// `sum(x)`: integers wrap, floats are exact and rounded once.
    Sum,
    /// `min(x)`, in the row format's order (floats in IEEE total order).
    Min,
    /// `max(x)`, in the row format's order (floats in IEEE total order).
    Max,
    /// `avg(x)`: the exact sum over the count, rounded once.
    Mean,
    /// `var(x)`: the sample variance (null for fewer than two values).
    VarSamp,
    /// `var_pop(x)`: the population variance.
    VarPop,
    /// `stddev(x)`: the sample standard deviation (null for fewer than two values).
    StddevSamp,
    /// `stddev_pop(x)`: the population standard deviation.
    StddevPop,
}

impl fmt::Display for AggFunc {
    /// DataFusion's names: `count`, `sum`, `min`, `max`, `avg`, `var`, `var_pop`,
    /// `stddev`, `stddev_pop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Mean => "avg",
            AggFunc::VarSamp => "var",
            AggFunc::VarPop => "var_pop",
            AggFunc::StddevSamp => "stddev",
            AggFunc::StddevPop => "stddev_pop",
        })
    }
}

/// An aggregate resolved against a batch: its value and filter type-checked, its result
/// type fixed.
#[derive(Debug, Clone)]
pub(crate) struct PlannedAgg {
    pub(crate) func: AggFunc,
    /// The value expression (`None` for `count(*)`).
    pub(crate) value: Option<Typed>,
    pub(crate) filter: Option<Typed>,
    /// The result type.
    pub(crate) output: DataType,
    /// The output column's name (`sum(price)`), for errors that name the aggregate.
    pub(crate) name: String,
}

/// A group-by resolved against a batch.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) keys: Vec<usize>,
    pub(crate) aggs: Vec<PlannedAgg>,
    pub(crate) schema: SchemaRef,
}

impl Plan {
    /// The input columns it reads: the keys, then those the aggregates' values and filters
    /// name, each once.
    pub(crate) fn used_columns(&self) -> Vec<usize> {
        let mut out = self.keys.clone();
        for a in &self.aggs {
            for e in a.value.iter().chain(&a.filter) {
                for c in e.column_indices() {
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
        }
        out
    }
}

/// One aggregate's state for every group.
#[derive(Debug, Clone)]
pub(crate) enum State {
    /// `count(*)` and `count(x)`: rows counted per group.
    Count(Vec<u64>),
    /// `sum` and `avg` of integers and decimals: the exact sum, `high[g] * 2^128 +
    /// sums[g]` (integers never leave the i128, where 2^63 values of 64 bits fit; decimals
    /// of 38 digits may, and their `high` keeps the sum exact whatever the order of the
    /// values, so an overflow is one error on every backend), and the number of values.
    /// A CPU `sum` of integers (not decimals) keeps only the low 64 bits exact, sign
    /// extended: all a wrapping 64-bit sum reads, and what merges with any other state of
    /// the same sum to the same low bits.
    IntSum {
        sums: Vec<i128>,
        high: Vec<i64>,
        n: Vec<u64>,
    },
    /// Float `sum`/`avg` on the CPU: one 128-bit window a group ([`SumSlots`]) and the
    /// number of values, kept compact to the end (an [`ExactSum`] a group is 80 bytes).
    Sums { slots: SumSlots, n: Vec<u64> },
    /// Exact sums (and, for `var`/`stddev`, sums of squares; empty otherwise) and the
    /// number of values: float `sum`/`avg` on the GPU, and `var`/`stddev` of any number.
    Moments {
        sum: Vec<ExactSum>,
        squares: Vec<ExactSum>,
        n: Vec<u64>,
    },
    /// `min`/`max`: the best value of each group (null where it has none), in the
    /// aggregate's output type.
    Extreme(ArrayRef),
    /// `count(DISTINCT x)`: every distinct (group, value) pair, values non-null, over
    /// `groups` groups.
    Distinct {
        groups: usize,
        pair_group: Vec<u32>,
        values: ArrayRef,
    },
}

impl State {
    /// The distinct (group, value) pairs among `pair_group[i]`, `values[i]` (no nulls), the
    /// first of each kept, in order.
    pub(crate) fn distinct(groups: usize, pair_group: Vec<u32>, values: ArrayRef) -> Result<State> {
        let gid: ArrayRef = Arc::new(UInt32Array::from(pair_group));
        let (_, first) = crate::cpu::group_by::assign_groups(&[gid.clone(), values.clone()])?;
        let first = UInt32Array::from(first);
        let gid = take(gid.as_ref(), &first, None)?;
        Ok(State::Distinct {
            groups,
            pair_group: gid
                .as_any()
                .downcast_ref::<UInt32Array>()
                .expect("u32")
                .values()
                .to_vec(),
            values: take(values.as_ref(), &first, None)?,
        })
    }
}

/// Grows `v` to `groups` entries with defaults.
/// Adds `v` to the exact sum `high * 2^128 + sum`.
#[inline]
pub(crate) fn add_wide(sum: &mut i128, high: &mut i64, v: i128) {
    let (wrapped, overflow) = sum.overflowing_add(v);
    *sum = wrapped;
    if overflow {
        *high += if v < 0 { -1 } else { 1 };
    }
}

/// The largest magnitude of a Decimal128 of 38 digits.
const MAX_DECIMAL38: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// An error when a group's exact decimal sum does not fit the 38 digits of the sum's type
/// (as DuckDB's, not a wrapped value): the aggregate is named, the sum told as far as
/// 128 bits tell it.
fn check_decimal_sums(
    agg: &PlannedAgg,
    sums: &[i128],
    high: &[i64],
    scale: i8,
    limit: i128,
) -> Result<()> {
    for (g, (sum, high)) in sums.iter().zip(high).enumerate() {
        if *high != 0 || !(-limit..=limit).contains(sum) {
            let size = if *high != 0 {
                "beyond 128 bits".to_string()
            } else {
                format!("{} digits", sum.unsigned_abs().to_string().len())
            };
            return Err(Error::ArithmeticOverflow(format!(
                "{}: the sum of group {g} is {size}, more than {} holds",
                agg.name,
                if limit == MAX_DECIMAL38 {
                    format!("the 38 digits of Decimal128(38, {scale})")
                } else {
                    "128 bits".to_string()
                }
            )));
        }
    }
    Ok(())
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, groups: usize) {
    if v.len() < groups {
        v.resize(groups, T::default());
    }
}

impl State {
    /// Adds `other` into `self`: `other`'s group `g` is `self`'s group `map[g]`, and `self`
    /// grows to `groups` groups. `max`: whether an `Extreme` keeps the largest value (else
    /// the smallest); on a tie the value already in `self` (the earlier row) stays.
    /// Merges every part of `parts` (a min/max or count(DISTINCT) state and its groups'
    /// places among the merged `groups`) into this one at once, in their order: what
    /// merging them one by one gives (a tie keeps the earlier value), in one pass over
    /// all of them.
    pub(crate) fn merge_all(
        &mut self,
        parts: &[(&[u32], &State)],
        groups: usize,
        max: bool,
    ) -> Result<()> {
        match self {
            State::Extreme(a) => {
                let mut arrays: Vec<&dyn Array> = vec![a.as_ref()];
                for (_, s) in parts {
                    let State::Extreme(b) = s else {
                        unreachable!("states of one aggregate differ")
                    };
                    arrays.push(b.as_ref());
                }
                let all = concat(&arrays)?;
                let better = better_than(&all, max)?;
                let mut pick: Vec<Option<u32>> = (0..groups)
                    .map(|g| (g < a.len() && a.is_valid(g)).then_some(g as u32))
                    .collect();
                let mut offset = a.len();
                for (map, s) in parts {
                    let State::Extreme(b) = s else {
                        unreachable!("states of one aggregate differ")
                    };
                    for (g, &to) in map.iter().enumerate().take(b.len()) {
                        let from = offset + g;
                        let to = to as usize;
                        if all.is_valid(from) && pick[to].is_none_or(|p| better(from, p as usize)) {
                            pick[to] = Some(from as u32);
                        }
                    }
                    offset += b.len();
                }
                *a = take(all.as_ref(), &UInt32Array::from(pick), None)?;
            }
            State::Distinct {
                pair_group, values, ..
            } => {
                let mut all_groups = pair_group.clone();
                let mut arrays: Vec<&dyn Array> = vec![values.as_ref()];
                for (map, s) in parts {
                    let State::Distinct {
                        pair_group: g2,
                        values: v2,
                        ..
                    } = s
                    else {
                        unreachable!("states of one aggregate differ")
                    };
                    all_groups.extend(g2.iter().map(|g| map[*g as usize]));
                    arrays.push(v2.as_ref());
                }
                let all = concat(&arrays)?;
                *self = State::distinct(groups, all_groups, all)?;
            }
            other => unreachable!("only min/max and count(DISTINCT) are merged at once: {other:?}"),
        }
        Ok(())
    }

    /// The states of groups picked from `parts` (states of one aggregate over disjoint
    /// groups): output group `i` is group `order[i].1` of part `order[i].0`. Groups not
    /// picked are dropped (with their count(DISTINCT) pairs). Counts and sums are gathered
    /// on up to `threads` threads, a range of the output each.
    pub(crate) fn gather(parts: &[&State], order: &[(u32, u32)], threads: usize) -> Result<State> {
        fn each<'a, T>(parts: &[&'a State], f: impl Fn(&'a State) -> T) -> Vec<T> {
            parts.iter().map(|s| f(s)).collect()
        }
        fn each_of<A, T>(all: &[A], f: impl Fn(&A) -> T) -> Vec<T> {
            all.iter().map(f).collect()
        }
        // Output group `i`'s value of `v` (a vector a part), on the threads.
        fn pick<T: Clone + Send + Sync>(
            v: &[&Vec<T>],
            order: &[(u32, u32)],
            threads: usize,
        ) -> Vec<T> {
            crate::collect_on_threads(order.len(), threads, |i| {
                let (p, g) = order[i];
                v[p as usize][g as usize].clone()
            })
        }
        Ok(match parts[0] {
            State::Count(_) => State::Count(pick(
                &each(parts, |s| match s {
                    State::Count(c) => c,
                    _ => unreachable!("states of one aggregate differ"),
                }),
                order,
                threads,
            )),
            State::IntSum { .. } => {
                let all = each(parts, |s| match s {
                    State::IntSum { sums, high, n } => (sums, high, n),
                    _ => unreachable!("states of one aggregate differ"),
                });
                State::IntSum {
                    sums: pick(&each_of(&all, |a| a.0), order, threads),
                    high: pick(&each_of(&all, |a| a.1), order, threads),
                    n: pick(&each_of(&all, |a| a.2), order, threads),
                }
            }
            State::Sums { .. } => {
                let all = each(parts, |s| match s {
                    State::Sums { slots, n } => (slots, n),
                    _ => unreachable!("states of one aggregate differ"),
                });
                State::Sums {
                    slots: SumSlots::gather(&each_of(&all, |a| a.0), order, threads),
                    n: pick(&each_of(&all, |a| a.1), order, threads),
                }
            }
            State::Moments { .. } => {
                let all = each(parts, |s| match s {
                    State::Moments { sum, squares, n } => (sum, squares, n),
                    _ => unreachable!("states of one aggregate differ"),
                });
                // A part's sums may be shorter than its groups (none added yet): zero.
                let take_sums = |v: Vec<&Vec<ExactSum>>| -> Vec<ExactSum> {
                    crate::collect_on_threads(order.len(), threads, |i| {
                        let (p, g) = order[i];
                        v[p as usize].get(g as usize).cloned().unwrap_or_default()
                    })
                };
                State::Moments {
                    sum: take_sums(each_of(&all, |a| a.0)),
                    squares: if all[0].1.is_empty() {
                        Vec::new()
                    } else {
                        take_sums(each_of(&all, |a| a.1))
                    },
                    n: pick(&each_of(&all, |a| a.2), order, threads),
                }
            }
            State::Extreme(_) => {
                let arrays: Vec<&dyn Array> = each(parts, |s| match s {
                    State::Extreme(a) => a.as_ref(),
                    _ => unreachable!("states of one aggregate differ"),
                });
                let at: Vec<(usize, usize)> = order
                    .iter()
                    .map(|&(p, g)| (p as usize, g as usize))
                    .collect();
                State::Extreme(arrow::compute::interleave(&arrays, &at)?)
            }
            State::Distinct { .. } => {
                // Each part's groups' places in the output (u32::MAX: dropped).
                let mut place: Vec<Vec<u32>> = each(parts, |s| match s {
                    State::Distinct { groups, .. } => vec![u32::MAX; *groups],
                    _ => unreachable!("states of one aggregate differ"),
                });
                for (i, &(p, g)) in order.iter().enumerate() {
                    place[p as usize][g as usize] = i as u32;
                }
                let mut pair_group = Vec::new();
                let mut at = Vec::new();
                let mut arrays: Vec<&dyn Array> = Vec::new();
                for (p, s) in parts.iter().enumerate() {
                    let State::Distinct {
                        pair_group: pg,
                        values,
                        ..
                    } = s
                    else {
                        unreachable!("states of one aggregate differ")
                    };
                    arrays.push(values.as_ref());
                    for (j, &g) in pg.iter().enumerate() {
                        let to = place[p][g as usize];
                        if to != u32::MAX {
                            pair_group.push(to);
                            at.push((p, j));
                        }
                    }
                }
                State::Distinct {
                    groups: order.len(),
                    pair_group,
                    values: arrow::compute::interleave(&arrays, &at)?,
                }
            }
        })
    }

    pub(crate) fn merge(
        &mut self,
        other: &State,
        map: &[u32],
        groups: usize,
        max: bool,
    ) -> Result<()> {
        match (self, other) {
            (State::Count(a), State::Count(b)) => {
                grow(a, groups);
                for (g, c) in b.iter().enumerate() {
                    a[map[g] as usize] += c;
                }
            }
            (
                State::IntSum { sums, high, n },
                State::IntSum {
                    sums: s2,
                    high: h2,
                    n: n2,
                },
            ) => {
                grow(sums, groups);
                grow(high, groups);
                grow(n, groups);
                for g in 0..s2.len() {
                    let to = map[g] as usize;
                    add_wide(&mut sums[to], &mut high[to], s2[g]);
                    high[to] = high[to].wrapping_add(h2[g]);
                    n[to] += n2[g];
                }
            }
            (
                State::Moments { sum, squares, n },
                State::Moments {
                    sum: sum2,
                    squares: sq2,
                    n: n2,
                },
            ) => {
                grow(sum, groups);
                grow(n, groups);
                if !sq2.is_empty() {
                    grow(squares, groups);
                }
                for g in 0..sum2.len() {
                    let to = map[g] as usize;
                    sum[to].merge(&sum2[g]);
                    if !sq2.is_empty() {
                        squares[to].merge(&sq2[g]);
                    }
                    n[to] += n2[g];
                }
            }
            (State::Sums { slots, n }, State::Sums { slots: s2, n: n2 }) => {
                slots.resize(groups);
                grow(n, groups);
                for g in 0..n2.len() {
                    let to = map[g] as usize;
                    slots.merge(to, &s2.get(g));
                    n[to] += n2[g];
                }
            }
            (State::Sums { slots, n }, State::Moments { sum, n: n2, .. }) => {
                slots.resize(groups);
                grow(n, groups);
                for g in 0..n2.len() {
                    let to = map[g] as usize;
                    slots.merge(to, &sum[g]);
                    n[to] += n2[g];
                }
            }
            (State::Moments { sum, n, .. }, State::Sums { slots, n: n2 }) => {
                grow(sum, groups);
                grow(n, groups);
                for g in 0..n2.len() {
                    let to = map[g] as usize;
                    sum[to].merge(&slots.get(g));
                    n[to] += n2[g];
                }
            }
            (State::Extreme(a), State::Extreme(b)) => {
                let mut parts = vec![a.clone()];
                if a.len() < groups {
                    parts.push(new_null_array(a.data_type(), groups - a.len()));
                }
                parts.push(b.clone());
                let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
                let all = concat(&refs)?;
                let offset = groups;
                let better = better_than(&all, max)?;
                let mut pick: Vec<u32> = (0..groups as u32).collect();
                for (g, to) in map.iter().enumerate().take(b.len()) {
                    let (to, from) = (*to as usize, offset + g);
                    if all.is_valid(from)
                        && (all.is_null(pick[to] as usize) || better(from, pick[to] as usize))
                    {
                        pick[to] = from as u32;
                    }
                }
                *a = take(all.as_ref(), &UInt32Array::from(pick), None)?;
            }
            (
                a @ State::Distinct { .. },
                State::Distinct {
                    pair_group: g2,
                    values: v2,
                    ..
                },
            ) => {
                let State::Distinct {
                    pair_group, values, ..
                } = &*a
                else {
                    unreachable!("matched above")
                };
                let mut all_groups = pair_group.clone();
                all_groups.extend(g2.iter().map(|g| map[*g as usize]));
                let all = concat(&[values.as_ref(), v2.as_ref()])?;
                *a = State::distinct(groups, all_groups, all)?;
            }
            (a, b) => unreachable!("states of one aggregate differ: {a:?} and {b:?}"),
        }
        Ok(())
    }

    /// The aggregate's output column; counts and float results computed on up to
    /// `threads` threads, a range of the groups each.
    pub(crate) fn finish(&self, agg: &PlannedAgg, threads: usize) -> Result<ArrayRef> {
        let ddof = matches!(agg.func, AggFunc::VarSamp | AggFunc::StddevSamp) as u64;
        Ok(match self {
            State::Count(c) => Arc::new(Int64Array::from(crate::collect_on_threads(
                c.len(),
                threads,
                |g| c[g] as i64,
            ))),
            State::IntSum { sums, high, n } => {
                if let DataType::Decimal128(_, s) = agg.output {
                    // A sum must fit its 38 digits; a mean only needs its sum in 128 bits
                    // (to scale it, checked below): the mean itself fits its type.
                    let limit = match agg.func {
                        AggFunc::Sum => MAX_DECIMAL38,
                        _ => i128::MAX,
                    };
                    check_decimal_sums(agg, sums, high, s, limit)?;
                }
                let groups = sums.iter().zip(n);
                match (agg.func, &agg.output) {
                    // A decimal's mean (DataFusion's): the sum at the output's scale, divided
                    // by the count, truncated toward zero; an overflow of that scaling is an
                    // error, as there.
                    (AggFunc::Mean, DataType::Decimal128(p, s)) => {
                        let from = match agg.value.as_ref().map(|v| v.data_type()) {
                            Some(DataType::Decimal128(_, from)) => from,
                            other => unreachable!("a decimal mean of {other:?}"),
                        };
                        let scale = 10i128.pow((*s - from) as u32);
                        let means = groups
                            .map(|(sum, n)| {
                                if *n == 0 {
                                    return Ok(None);
                                }
                                sum.checked_mul(scale)
                                    .map(|v| Some(v / *n as i128))
                                    .ok_or_else(|| {
                                        Error::ArithmeticOverflow(format!(
                                            "{}: the mean's sum {sum} at scale {s} exceeds 128 bits",
                                            agg.name
                                        ))
                                    })
                            })
                            .collect::<Result<Decimal128Array>>()?;
                        Arc::new(means.with_precision_and_scale(*p, *s)?)
                    }
                    // The exact sum, checked above to fit 38 digits.
                    (_, DataType::Decimal128(p, s)) => Arc::new(
                        Decimal128Array::from_iter(groups.map(|(sum, n)| (*n > 0).then_some(*sum)))
                            .with_precision_and_scale(*p, *s)?,
                    ),
                    (AggFunc::Mean, _) => Arc::new(Float64Array::from_iter(
                        groups.map(|(s, n)| (*n > 0).then(|| exact::int_mean(*s, *n))),
                    )),
                    // The wrapping sum is the exact sum's low 64 bits.
                    (_, DataType::UInt64) => Arc::new(UInt64Array::from_iter(
                        groups.map(|(s, n)| (*n > 0).then_some(*s as u64)),
                    )),
                    _ => Arc::new(Int64Array::from_iter(
                        groups.map(|(s, n)| (*n > 0).then_some(*s as i64)),
                    )),
                }
            }
            State::Sums { slots, n } => Arc::new(floats_on_threads(n.len(), threads, |g| {
                let n = n[g];
                (n > 0).then(|| slots.mean(g, if agg.func == AggFunc::Mean { n } else { 1 }))
            })),
            State::Moments { sum, squares, n } => {
                Arc::new(floats_on_threads(sum.len(), threads, |g| {
                    let n = n[g];
                    match agg.func {
                        AggFunc::Sum => (n > 0).then(|| sum[g].sum()),
                        AggFunc::Mean => (n > 0).then(|| sum[g].mean(n)),
                        AggFunc::VarSamp | AggFunc::VarPop => {
                            exact::variance(&sum[g], &squares[g], n, ddof)
                        }
                        _ => exact::std_dev(&sum[g], &squares[g], n, ddof).map(exact::canonical),
                    }
                }))
            }
            State::Extreme(values) => {
                debug_assert_eq!(values.data_type(), &agg.output);
                values.clone()
            }
            State::Distinct {
                groups, pair_group, ..
            } => {
                let mut counts = vec![0i64; *groups];
                for g in pair_group {
                    counts[*g as usize] += 1;
                }
                Arc::new(Int64Array::from(counts))
            }
        })
    }
}

/// `better(i, j)`: whether value `i` of `values` orders after (`max`) or before value `j`.
pub(crate) fn better_than(
    values: &ArrayRef,
    max: bool,
) -> Result<Box<dyn Fn(usize, usize) -> bool>> {
    Ok(match keys::order_words(values.as_ref()) {
        Some((words, _)) => Box::new(move |i, j| {
            if max {
                words[i] > words[j]
            } else {
                words[i] < words[j]
            }
        }),
        None => {
            let rows = keys::rows(&[(values, SortOptions::default())])?;
            Box::new(move |i, j| {
                let (x, y) = (rows.row(i), rows.row(j));
                if max {
                    x > y
                } else {
                    x < y
                }
            })
        }
    })
}

/// One batch (or chunk) grouped: every group's key values (a column per key, groups in
/// order of first appearance) and every aggregate's state.
#[derive(Debug, Clone)]
pub(crate) struct Grouped {
    pub(crate) groups: usize,
    pub(crate) keys: Vec<ArrayRef>,
    pub(crate) states: Vec<State>,
}

impl Grouped {
    /// The output columns: the keys, then each aggregate finished (on up to `threads`
    /// threads).
    pub(crate) fn finish(&self, plan: &Plan, threads: usize) -> Result<Vec<ArrayRef>> {
        let mut columns = self.keys.clone();
        for (agg, state) in plan.aggs.iter().zip(&self.states) {
            columns.push(state.finish(agg, threads)?);
        }
        Ok(columns)
    }
}

/// A float column of `f(g)` for every `g < len` (`None`: null), computed on up to
/// `threads` threads.
fn floats_on_threads(
    len: usize,
    threads: usize,
    f: impl Fn(usize) -> Option<f64> + Sync,
) -> Float64Array {
    let values = crate::collect_on_threads(len, threads, f);
    let nulls = values
        .iter()
        .any(Option::is_none)
        .then(|| BooleanBuffer::collect_bool(len, |g| values[g].is_some()).into());
    let values = crate::collect_on_threads(len, threads, |g| values[g].unwrap_or(0.0));
    Float64Array::new(values.into(), nulls)
}

/// Merges [`Grouped`] parts in order: a group's number is its first appearance across the
/// parts, keys compared by an encoding equal exactly when the keys are: fixed-width keys
/// packed into a u128 (with a null bit per key), others by their row-format rows.
pub(crate) struct Merger {
    merged: Option<Grouped>,
    index: Index,
    key_parts: Vec<Vec<ArrayRef>>,
    /// The min/max and count(DISTINCT) states of the parts after the first (per
    /// aggregate, `None` for the others), with each part's map into the merged groups:
    /// merged once, in `finish`, so that N parts cost their total size, not N times the
    /// groups so far (merging them part by part rebuilt every group each time).
    deferred: Vec<(Vec<u32>, Vec<Option<State>>)>,
    /// Rows of the deferred states, and of the merged ones when last merged: once the
    /// deferred outgrow the merged (and 64k rows), they are merged then, so that memory
    /// stays within twice what part-by-part merging held, and time stays linear.
    deferred_rows: usize,
    merged_rows: usize,
}

/// The rows a min/max or count(DISTINCT) state holds (0 for the others).
fn deferred_len(state: &State) -> usize {
    match state {
        State::Extreme(a) => a.len(),
        State::Distinct { pair_group, .. } => pair_group.len(),
        _ => 0,
    }
}

/// The groups merged so far, by key.
enum Index {
    /// No keys: one global group.
    Global,
    Packed(HashMap<u128, u32>),
    Rows(RowConverter, HashMap<Box<[u8]>, u32>),
}

impl Index {
    /// The index for keys like `keys`.
    fn for_keys(keys: &[ArrayRef]) -> Result<Index> {
        if keys.is_empty() {
            return Ok(Index::Global);
        }
        if keys::packed_nullable(&keys::ascending(keys)).is_some() {
            return Ok(Index::Packed(HashMap::new()));
        }
        let fields = keys
            .iter()
            .map(|k| SortField::new(k.data_type().clone()))
            .collect();
        Ok(Index::Rows(RowConverter::new(fields)?, HashMap::new()))
    }

    /// The merged group of each of a part's groups (`keys`, one row per group, distinct),
    /// numbering new keys from the merged groups' count, and the part's groups that are new.
    fn map(&mut self, keys: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>)> {
        Ok(match self {
            // One global group.
            Index::Global => (vec![0], Vec::new()),
            Index::Packed(index) => {
                let (packed, _) =
                    keys::packed_nullable(&keys::ascending(keys)).ok_or_else(|| {
                        Error::SchemaMismatch("group_by: partial keys of another type".into())
                    })?;
                number_into(index, packed.into_iter())
            }
            Index::Rows(converter, index) => {
                let rows = converter.convert_columns(keys)?;
                let mut new = Vec::new();
                let map = rows
                    .iter()
                    .enumerate()
                    .map(|(g, row)| {
                        let next = index.len() as u32;
                        // `entry_ref`: a key is boxed only when it is new.
                        *index.entry_ref(row.as_ref()).or_insert_with(|| {
                            new.push(g as u32);
                            next
                        })
                    })
                    .collect();
                (map, new)
            }
        })
    }

    /// How many groups are merged.
    fn groups(&self) -> usize {
        match self {
            Index::Global => 1,
            Index::Packed(index) => index.len(),
            Index::Rows(_, index) => index.len(),
        }
    }
}

impl Merger {
    pub(crate) fn new() -> Merger {
        Merger {
            merged: None,
            index: Index::Global,
            key_parts: Vec::new(),
            deferred: Vec::new(),
            deferred_rows: 0,
            merged_rows: 0,
        }
    }

    /// Adds `part`'s groups: new keys become new groups after the ones seen before.
    pub(crate) fn push(&mut self, plan: &Plan, part: Grouped) -> Result<()> {
        let Some(merged) = &mut self.merged else {
            self.index = Index::for_keys(&part.keys)?;
            self.index.map(&part.keys)?;
            self.key_parts = part.keys.iter().map(|k| vec![k.clone()]).collect();
            self.merged_rows = part.states.iter().map(deferred_len).sum();
            self.merged = Some(part);
            return Ok(());
        };
        let (map, new) = self.index.map(&part.keys)?;
        if !new.is_empty() {
            let new = UInt32Array::from(new);
            for (parts, k) in self.key_parts.iter_mut().zip(&part.keys) {
                parts.push(take(k.as_ref(), &new, None)?);
            }
        }
        let groups = self.index.groups();
        let mut later = Vec::with_capacity(plan.aggs.len());
        for ((state, other), agg) in merged.states.iter_mut().zip(part.states).zip(&plan.aggs) {
            if matches!(other, State::Extreme(_) | State::Distinct { .. }) {
                later.push(Some(other));
            } else {
                state.merge(&other, &map, groups, agg.func == AggFunc::Max)?;
                later.push(None);
            }
        }
        if later.iter().any(Option::is_some) {
            self.deferred_rows += later.iter().flatten().map(deferred_len).sum::<usize>();
            self.deferred.push((map, later));
        }
        merged.groups = groups;
        if self.deferred_rows > self.merged_rows.max(1 << 16) {
            self.merge_deferred(plan)?;
        }
        Ok(())
    }

    /// Merges the deferred min/max and count(DISTINCT) states into the merged ones.
    fn merge_deferred(&mut self, plan: &Plan) -> Result<()> {
        let Some(merged) = &mut self.merged else {
            return Ok(());
        };
        let groups = merged.groups;
        for (i, (state, agg)) in merged.states.iter_mut().zip(&plan.aggs).enumerate() {
            let parts: Vec<(&[u32], &State)> = self
                .deferred
                .iter()
                .filter_map(|(map, states)| states[i].as_ref().map(|s| (map.as_slice(), s)))
                .collect();
            if !parts.is_empty() {
                state.merge_all(&parts, groups, agg.func == AggFunc::Max)?;
            }
        }
        self.deferred.clear();
        self.deferred_rows = 0;
        self.merged_rows = merged.states.iter().map(deferred_len).sum();
        Ok(())
    }

    /// Everything pushed so far, merged (`None` when nothing was), the merger kept: its
    /// parts are merged into one, so that a checkpoint holds each group once.
    pub(crate) fn snapshot(&mut self, plan: &Plan) -> Result<Option<Grouped>> {
        self.merge_deferred(plan)?;
        let Some(merged) = &mut self.merged else {
            return Ok(None);
        };
        for parts in &mut self.key_parts {
            if parts.len() > 1 {
                let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
                *parts = vec![concat(&refs)?];
            }
        }
        merged.keys = self.key_parts.iter().map(|p| p[0].clone()).collect();
        Ok(Some(merged.clone()))
    }

    /// Everything pushed, merged (`None` when nothing was).
    pub(crate) fn finish(mut self, plan: &Plan) -> Result<Option<Grouped>> {
        self.merge_deferred(plan)?;
        let Some(mut merged) = self.merged else {
            return Ok(None);
        };
        merged.keys = self
            .key_parts
            .iter()
            .map(|parts| {
                let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
                Ok(concat(&refs)?)
            })
            .collect::<Result<_>>()?;
        Ok(Some(merged))
    }
}
