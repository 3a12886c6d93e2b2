//! Group-by on the CPU, a chunk of rows at a time: the keys of a chunk are numbered by
//! the [`Numbering`] kept across chunks (groups in order of first appearance; keys equal
//! exactly when arrow's row format says so, see `super::groups`), then every aggregate's
//! state ([`Acc`]) is grown to the groups so far and updated column-wise over the chunk's
//! group numbers.
//!
//! The output keys are a `take` of each group's first row, so Dictionary keys keep their
//! dictionary. Float sums, means and variances go through the exact accumulators of
//! `crate::exact`, so they don't depend on the order of the rows.

use std::hash::Hash;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, UInt64Type};
use arrow::row::{RowConverter, SortField};
use hashbrown::HashMap;

use super::groups::{Numbering, CHUNK_ROWS};
use super::keys;
use super::Threads;
use crate::aggregate::{add_wide, better_than, Grouped, Merger, State};
use crate::aggregate::{AggFunc, Plan, PlannedAgg};
use crate::cpu::filter::{evaluate, evaluate_value};
use crate::error::Result;
use crate::exact::{ExactSum, MomentSlots, SumSlots};
use crate::plan::{int_info, is_decimal, Typed};

/// Whether `min`/`max` can order values of `dt` (any type arrow's row format takes).
pub(crate) fn orderable(dt: &DataType) -> bool {
    RowConverter::supports_fields(&[SortField::new(dt.clone())])
}

/// Numbers `keys` in order of first appearance, after the keys already in `index` (which
/// keep their numbers): every key's number, and the positions of the keys new to `index`.
/// Over an empty index: every row's group and every group's first row.
pub(crate) fn number_into<K: Hash + Eq>(
    index: &mut HashMap<K, u32>,
    keys: impl Iterator<Item = K>,
) -> (Vec<u32>, Vec<u32>) {
    let mut ids = Vec::with_capacity(keys.size_hint().0);
    let mut new = Vec::new();
    for (i, k) in keys.enumerate() {
        let next = index.len() as u32;
        let id = *index.entry(k).or_insert_with(|| {
            new.push(i as u32);
            next
        });
        ids.push(id);
    }
    (ids, new)
}

/// Every row's group number and every group's first row, for one or more key columns.
pub(crate) fn assign_groups(columns: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>)> {
    super::groups::assign(columns)
}

/// The rows an aggregate takes: its filter is true and (except for `count(*)`) its value
/// is not null. `None`: every row.
fn kept_rows(
    batch: &RecordBatch,
    agg: &PlannedAgg,
    values: Option<&ArrayRef>,
) -> Result<Option<NullBuffer>> {
    let filter = match &agg.filter {
        None => None,
        Some(p) => {
            let mask = evaluate(batch, p)?;
            let bits = match mask.nulls() {
                Some(n) => mask.values() & n.inner(),
                None => mask.values().clone(),
            };
            Some(NullBuffer::new(bits))
        }
    };
    Ok(NullBuffer::union(
        filter.as_ref(),
        values.and_then(|v| v.logical_nulls()).as_ref(),
    ))
}

/// Calls `f` with every kept row.
fn for_each_kept(kept: &Option<NullBuffer>, rows: usize, mut f: impl FnMut(usize)) {
    match kept {
        None => (0..rows).for_each(f),
        Some(k) if k.null_count() == 0 => (0..rows).for_each(f),
        Some(k) => k.valid_indices().for_each(&mut f),
    }
}

/// A numeric value column for exact accumulation: floats widened to f64, integers to i64
/// or u64 (exactly).
enum Numbers {
    Float(Float64Array),
    Signed(Int64Array),
    Unsigned(UInt64Array),
}

impl Numbers {
    fn of(values: &ArrayRef) -> Result<Numbers> {
        Ok(match int_info(values.data_type()) {
            Some((true, _)) => Numbers::Signed(
                cast(values, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            Some((false, _)) => Numbers::Unsigned(
                cast(values, &DataType::UInt64)?
                    .as_primitive::<UInt64Type>()
                    .clone(),
            ),
            None => Numbers::Float(
                cast(values, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
        })
    }
}

/// An aggregate's state over the chunks of a batch so far, grown as groups appear.
enum Acc {
    /// `count(*)` and `count(x)`.
    Count(KeptCount),
    /// `sum` of integers (not decimals): the wrapping 64-bit sums, which are all of the
    /// output (the low 64 bits of [`State::IntSum`]'s exact sum), in half its memory.
    WrapSum { sums: Vec<u64>, n: KeptCount },
    /// `avg` of integers, `sum` and `avg` of decimals (see [`State::IntSum`]).
    IntSum {
        sums: Vec<i128>,
        high: Vec<i64>,
        n: KeptCount,
    },
    /// `sum` and `avg` of floats: one 128-bit window a group.
    Sums { slots: SumSlots, n: KeptCount },
    /// `var` and `stddev` of integers: exact Σx and Σx² and n per group.
    Moments {
        sum: Vec<ExactSum>,
        squares: Vec<ExactSum>,
        n: KeptCount,
    },
    /// `var` and `stddev` of floats: three 128-bit windows a group ([`MomentSlots`]).
    FloatMoments { slots: MomentSlots, n: KeptCount },
    /// `min`/`max` of values with order words: each group's best word so far (the worst
    /// word, 0 or all ones, until it has one) and which groups have had a value; the
    /// values are decoded from the words, which keep every bit of them.
    ExtremeWords {
        best: Vec<u64>,
        seen: Seen,
        /// A chunk's order words (reused).
        words: Vec<u64>,
    },
    /// `min`/`max` of other values: the whole batch's values, compared by
    /// [`better_than`] (their row format), and each group's first best row.
    ExtremeRows {
        values: ArrayRef,
        better: Box<dyn Fn(usize, usize) -> bool>,
        best: Vec<u32>,
    },
    /// `count(DISTINCT x)`: every kept row (in the whole batch) and its group.
    Distinct { rows: Vec<u32>, groups: Vec<u32> },
}

impl Acc {
    fn new(batch: &RecordBatch, agg: &PlannedAgg) -> Result<Acc> {
        let value_type = agg.value.as_ref().map(|v| v.data_type());
        let integer = value_type
            .as_ref()
            .is_some_and(|t| int_info(t).is_some() || is_decimal(t));
        Ok(match agg.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(KeptCount::default()),
            AggFunc::Sum if integer && !value_type.as_ref().is_some_and(is_decimal) => {
                Acc::WrapSum {
                    sums: Vec::new(),
                    n: KeptCount::default(),
                }
            }
            AggFunc::Sum | AggFunc::Mean if integer => Acc::IntSum {
                sums: Vec::new(),
                high: Vec::new(),
                n: KeptCount::default(),
            },
            AggFunc::Sum | AggFunc::Mean => Acc::Sums {
                slots: SumSlots::default(),
                n: KeptCount::default(),
            },
            AggFunc::CountDistinct => Acc::Distinct {
                rows: Vec::new(),
                groups: Vec::new(),
            },
            AggFunc::Min | AggFunc::Max => {
                let value_type = value_type.expect("min and max have a value");
                if keys::has_order_words(&value_type) {
                    Acc::ExtremeWords {
                        best: Vec::new(),
                        seen: Seen::default(),
                        words: Vec::new(),
                    }
                } else {
                    let values = evaluate_value(batch, agg.value.as_ref().expect("a value"))?;
                    let better = better_than(&values, agg.func == AggFunc::Max)?;
                    Acc::ExtremeRows {
                        values,
                        better,
                        best: Vec::new(),
                    }
                }
            }
            _ if value_type.as_ref().and_then(int_info).is_some() => Acc::Moments {
                sum: Vec::new(),
                squares: Vec::new(),
                n: KeptCount::default(),
            },
            _ => Acc::FloatMoments {
                slots: MomentSlots::default(),
                n: KeptCount::default(),
            },
        })
    }

    /// Whether the state keeps each group's count of rows (from the grouping's own count
    /// of them while every row is kept, see [`KeptCount`]).
    fn counts_rows(&self) -> bool {
        matches!(
            self,
            Acc::Count(_)
                | Acc::WrapSum { .. }
                | Acc::IntSum { .. }
                | Acc::Sums { .. }
                | Acc::Moments { .. }
                | Acc::FloatMoments { .. }
        )
    }

    /// Adds the rows of `chunk` (row `i` being row `row(i)` of the whole batch, in group
    /// `ids[i]`), with `groups` groups so far, of `group_rows` rows each before this chunk.
    fn push(
        &mut self,
        chunk: &RecordBatch,
        agg: &PlannedAgg,
        ids: &[u32],
        (groups, group_rows): (usize, &[u64]),
        row: impl Fn(usize) -> u32,
        sink: bool,
    ) -> Result<()> {
        let rows = ids.len();
        let values = agg
            .value
            .as_ref()
            .map(|v| evaluate_value(chunk, v))
            .transpose()?;
        let kept = kept_rows(
            chunk,
            agg,
            values.as_ref().filter(|_| agg.func != AggFunc::CountStar),
        )?;
        let max = agg.func == AggFunc::Max;
        match self {
            Acc::Count(counts) => counts.count(&kept, ids, groups, group_rows),
            Acc::WrapSum { sums, n } => {
                sums.resize(groups, 0);
                n.count(&kept, ids, groups, group_rows);
                let add = |s: u64, v: u64| s.wrapping_add(v);
                match Numbers::of(values.as_ref().expect("sum has a value"))? {
                    Numbers::Signed(a) => {
                        add_ints(&kept, ids, a.values(), sums, |s, v: i64| add(s, v as u64))
                    }
                    Numbers::Unsigned(a) => add_ints(&kept, ids, a.values(), sums, add),
                    Numbers::Float(_) => unreachable!("an integer"),
                }
            }
            Acc::IntSum { sums, high, n } => {
                sums.resize(groups, 0);
                high.resize(groups, 0);
                n.count(&kept, ids, groups, group_rows);
                let values = values.expect("sum has a value");
                // Integers sum exactly in an i128 (their wrapping 64-bit sums are its low
                // bits), decimals with the bits above it too (`add_wide`), so that an
                // overflow of the decimal's 38 digits is found whatever the order.
                if is_decimal(values.data_type()) {
                    let a = values.as_primitive::<Decimal128Type>();
                    for_each_kept(&kept, rows, |i| {
                        let g = ids[i] as usize;
                        add_wide(&mut sums[g], &mut high[g], a.value(i));
                    });
                } else {
                    match Numbers::of(&values)? {
                        Numbers::Signed(a) => add_ints(&kept, ids, a.values(), sums, |s, v| {
                            s.wrapping_add(v.into())
                        }),
                        Numbers::Unsigned(a) => add_ints(&kept, ids, a.values(), sums, |s, v| {
                            s.wrapping_add(v.into())
                        }),
                        Numbers::Float(_) => unreachable!("an integer"),
                    }
                }
            }
            Acc::Sums { slots, n } => {
                slots.resize(groups);
                n.count(&kept, ids, groups, group_rows);
                let Numbers::Float(a) = Numbers::of(values.as_ref().expect("a value"))? else {
                    unreachable!("a float sum")
                };
                let v = a.values();
                let group = |i: usize| ids[i] as usize;
                match kept.as_ref().filter(|k| k.null_count() > 0) {
                    None => slots.add_rows(rows, group, v, |_| true, |_| ()),
                    Some(k) => slots.add_rows(rows, group, v, |i| k.is_valid(i), |_| ()),
                }
            }
            Acc::FloatMoments { slots, n } => {
                slots.resize(groups);
                n.count(&kept, ids, groups, group_rows);
                let Numbers::Float(a) = Numbers::of(values.as_ref().expect("a value"))? else {
                    unreachable!("a float variance")
                };
                let v = a.values();
                let group = |i: usize| ids[i] as usize;
                match kept.as_ref().filter(|k| k.null_count() > 0) {
                    None => slots.add_rows(rows, group, v, |_| true, |_| ()),
                    Some(k) => slots.add_rows(rows, group, v, |i| k.is_valid(i), |_| ()),
                }
            }
            Acc::Moments { sum, squares, n } => {
                sum.resize(groups, ExactSum::default());
                squares.resize(groups, ExactSum::default());
                n.count(&kept, ids, groups, group_rows);
                match Numbers::of(values.as_ref().expect("a numeric value"))? {
                    Numbers::Signed(a) => {
                        let v = a.values();
                        for_each_kept(&kept, rows, |i| {
                            let g = ids[i] as usize;
                            sum[g].add_i128(v[i] as i128);
                            squares[g].add_square_of(v[i].unsigned_abs());
                        })
                    }
                    Numbers::Unsigned(a) => {
                        let v = a.values();
                        for_each_kept(&kept, rows, |i| {
                            let g = ids[i] as usize;
                            sum[g].add_i128(v[i] as i128);
                            squares[g].add_square_of(v[i]);
                        })
                    }
                    Numbers::Float(_) => unreachable!("an integer variance"),
                }
            }
            Acc::ExtremeWords { best, seen, words } => {
                best.resize(groups, worst_word(max));
                seen.mark(&kept, ids, groups);
                let values = values.expect("min and max have a value");
                words.clear();
                keys::order_words_into(values.as_ref(), words).expect("order words");
                if max {
                    best_words::<true>(best, ids, words, &kept);
                } else {
                    best_words::<false>(best, ids, words, &kept);
                }
            }
            Acc::ExtremeRows { better, best, .. } => {
                best.resize(groups, u32::MAX);
                for_each_kept(&kept, rows, |i| {
                    let g = ids[i] as usize;
                    let at = row(i);
                    if best[g] == u32::MAX || better(at as usize, best[g] as usize) {
                        best[g] = at;
                    }
                });
            }
            Acc::Distinct { rows: r, groups: g } => {
                for_each_kept(&kept, rows, |i| {
                    if ids[i] == SINK && sink {
                        return;
                    }
                    r.push(row(i));
                    g.push(ids[i]);
                });
            }
        }
        Ok(())
    }

    /// The state over all the chunks pushed, of `groups` groups.
    fn finish(
        self,
        batch: &RecordBatch,
        agg: &PlannedAgg,
        groups: usize,
        group_rows: &[u64],
    ) -> Result<State> {
        Ok(match self {
            Acc::Count(counts) => State::Count(counts.finish(groups, group_rows)),
            Acc::WrapSum { mut sums, n } => {
                // The wrapping sums as the exact sum's low 64 bits (all the output reads).
                sums.resize(groups, 0);
                State::IntSum {
                    sums: sums.iter().map(|&s| s as i64 as i128).collect(),
                    high: vec![0; groups],
                    n: n.finish(groups, group_rows),
                }
            }
            Acc::IntSum {
                mut sums,
                mut high,
                n,
            } => {
                sums.resize(groups, 0);
                high.resize(groups, 0);
                let n = n.finish(groups, group_rows);
                State::IntSum { sums, high, n }
            }
            Acc::Sums { mut slots, n } => {
                slots.resize(groups);
                State::Sums {
                    slots,
                    n: n.finish(groups, group_rows),
                }
            }
            Acc::FloatMoments { mut slots, n } => {
                slots.resize(groups);
                let n = n.finish(groups, group_rows);
                State::Moments {
                    sum: (0..groups).map(|g| slots.sum(g)).collect(),
                    squares: (0..groups).map(|g| slots.squares(g)).collect(),
                    n,
                }
            }
            Acc::Moments {
                mut sum,
                mut squares,
                n,
            } => {
                sum.resize(groups, ExactSum::default());
                squares.resize(groups, ExactSum::default());
                let n = n.finish(groups, group_rows);
                State::Moments { sum, squares, n }
            }
            Acc::ExtremeWords { mut best, seen, .. } => {
                best.resize(groups, worst_word(agg.func == AggFunc::Max));
                let value_type = agg.value.as_ref().expect("a value").data_type();
                let values = keys::from_order_words(&best, seen.finish(groups), &value_type);
                State::Extreme(values.expect("a type with order words"))
            }
            Acc::ExtremeRows {
                values, mut best, ..
            } => {
                best.resize(groups, u32::MAX);
                let at = UInt32Array::from_iter(best.iter().map(|&b| (b != u32::MAX).then_some(b)));
                State::Extreme(take(values.as_ref(), &at, None)?)
            }
            Acc::Distinct { rows, groups: g } => {
                let values = values_at(batch, agg.value.as_ref().expect("a value"), &rows)?;
                State::distinct(groups, g, values)?
            }
        })
    }
}

/// Groups beyond which per-group state outgrows the caches (256 KiB of 16-byte slots).
const PREFETCH_GROUPS: usize = 1 << 14;

/// The word a group's best `min`/`max` starts from, before its first value: the lowest for
/// `max`, the highest for `min`.
fn worst_word(max: bool) -> u64 {
    if max {
        0
    } else {
        u64::MAX
    }
}

/// Each kept row's order word into its group's best (the largest when `MAX`, else the
/// smallest); beyond the caches each row's group is fetched a few rows ahead. One loop per
/// case, without a branch.
fn best_words<const MAX: bool>(
    best: &mut [u64],
    ids: &[u32],
    words: &[u64],
    kept: &Option<NullBuffer>,
) {
    let at = (best.as_ptr(), best.len());
    for_each_kept_ahead(kept, ids, at, |i| {
        let slot = &mut best[ids[i] as usize];
        *slot = if MAX {
            (*slot).max(words[i])
        } else {
            (*slot).min(words[i])
        };
    });
}

/// Which groups have had a kept row, known without a pass of its own while every row is
/// kept: until the first chunk that drops a row (an aggregate's FILTER, a null value),
/// every group numbered so far had one, since a row of a pushed chunk numbered it (all
/// but the one group of a grouping without keys, before its first row).
#[derive(Debug, Default)]
struct Seen {
    /// Groups `..all` have had a kept row (while `each` is `None`).
    all: usize,
    /// Each group's flag, from the first chunk that drops a row on.
    each: Option<Vec<bool>>,
}

impl Seen {
    /// Marks the groups (`ids`, of `groups`) of a chunk's kept rows (`kept`; `None`: all).
    fn mark(&mut self, kept: &Option<NullBuffer>, ids: &[u32], groups: usize) {
        let drops = kept.as_ref().is_some_and(|k| k.null_count() > 0);
        if self.each.is_none() && !drops {
            if !ids.is_empty() {
                self.all = groups;
            }
            return;
        }
        let all = self.all;
        let each = self.each.get_or_insert_with(|| vec![true; all]);
        each.resize(groups, false);
        for_each_kept(kept, ids.len(), |i| each[ids[i] as usize] = true);
    }

    /// The validity of `groups` groups' values: null where a group had no kept row.
    fn finish(self, groups: usize) -> Option<NullBuffer> {
        let mut each = match self.each {
            Some(each) => each,
            None if self.all >= groups => return None,
            None => vec![true; self.all],
        };
        each.resize(groups, false);
        Some(NullBuffer::from(each))
    }
}

/// [`for_each_kept`] of an update of each row's group slot in `slots` (its address and
/// length): beyond the caches the slot of the row a few rows on is fetched first.
#[inline(always)]
fn for_each_kept_ahead<S>(
    kept: &Option<NullBuffer>,
    ids: &[u32],
    (slots, groups): (*const S, usize),
    mut f: impl FnMut(usize),
) {
    const AHEAD: usize = 16;
    if groups <= PREFETCH_GROUPS {
        return for_each_kept(kept, ids.len(), f);
    }
    let ahead = |i: usize| {
        if let Some(&g) = ids.get(i + AHEAD) {
            crate::prefetch_at(slots.wrapping_add(g as usize));
        }
    };
    match kept.as_ref().filter(|k| k.null_count() > 0) {
        None => (0..ids.len()).for_each(|i| {
            ahead(i);
            f(i)
        }),
        Some(k) => k.valid_indices().for_each(|i| {
            ahead(i);
            f(i)
        }),
    }
}

/// Adds each kept row's integer into its group's sum by `add` (beyond the caches, fetched
/// a few rows ahead).
fn add_ints<T: Copy, S: Copy>(
    kept: &Option<NullBuffer>,
    ids: &[u32],
    v: &[T],
    sums: &mut [S],
    add: impl Fn(S, T) -> S,
) {
    let at = (sums.as_ptr(), sums.len());
    for_each_kept_ahead(kept, ids, at, |i| {
        let g = ids[i] as usize;
        sums[g] = add(sums[g], v[i]);
    })
}

/// The kept rows of each group, counted without a pass of its own while every row is
/// kept: until the first chunk that drops a row (an aggregate's FILTER, a null value),
/// each group's count is the grouping's own row count, kept once for all aggregates;
/// from then on its own copy is counted row by row.
#[derive(Debug, Default)]
struct KeptCount {
    own: Option<Vec<u64>>,
}

impl KeptCount {
    /// Counts a chunk's kept rows (`kept`; `None`: all), in groups `ids` of `groups`,
    /// `group_rows` being every group's rows before this chunk.
    fn count(&mut self, kept: &Option<NullBuffer>, ids: &[u32], groups: usize, group_rows: &[u64]) {
        let drops = kept.as_ref().is_some_and(|k| k.null_count() > 0);
        if self.own.is_none() && !drops {
            return;
        }
        let own = self.own.get_or_insert_with(|| group_rows.to_vec());
        own.resize(groups, 0);
        for_each_kept(kept, ids.len(), |i| own[ids[i] as usize] += 1);
    }

    /// Every group's count, `group_rows` being every group's rows over all the chunks.
    fn finish(self, groups: usize, group_rows: &[u64]) -> Vec<u64> {
        let mut n = self.own.unwrap_or_else(|| group_rows.to_vec());
        n.resize(groups, 0);
        n
    }
}

/// Each column's rows `at`, on up to `threads` threads (a column at a time, the costliest
/// first). Where `at` ascends (groups' first rows do) and picks most rows, the columns are
/// filtered by a mask of those rows, which copies each run of picked rows whole (at 10M
/// groups of 10M rows nearly every row is one); otherwise the rows are taken one by one.
/// The same arrays either way.
pub(crate) fn rows_at(columns: &[ArrayRef], at: &[u32], threads: usize) -> Result<Vec<ArrayRef>> {
    let len = columns.first().map_or(0, |c| c.len());
    let ascending =
        at.windows(2).all(|w| w[0] < w[1]) && at.last().is_none_or(|&r| (r as usize) < len);
    // Arrow's filter copies runs above 80% of the rows picked, and row by row below.
    if ascending && at.len() * 5 > len * 4 {
        let mut mask = arrow::array::BooleanBufferBuilder::new(len);
        mask.append_n(len, false);
        for &r in at {
            mask.set_bit(r as usize, true);
        }
        let mask = arrow::array::BooleanArray::new(mask.finish(), None);
        let prepared = arrow::compute::FilterBuilder::new(&mask).optimize().build();
        return Threads::map_columns(columns, threads, |c| Ok(prepared.filter(c)?));
    }
    let at = UInt32Array::from(at.to_vec());
    Threads::map_columns(columns, threads, |c| Ok(take(c, &at, None)?))
}

/// `expr` evaluated at `rows` of `batch` (the columns it reads gathered, the others a
/// zero-copy slice of the right length, never read).
fn values_at(batch: &RecordBatch, expr: &Typed, rows: &[u32]) -> Result<ArrayRef> {
    let used = expr.column_indices();
    let at = UInt32Array::from(rows.to_vec());
    let columns = batch
        .columns()
        .iter()
        .enumerate()
        .map(|(c, column)| {
            Ok(if used.contains(&c) {
                take(column.as_ref(), &at, None)?
            } else {
                column.slice(0, rows.len().min(column.len()))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    let gathered = RecordBatch::try_new_with_options(batch.schema(), columns, &options)?;
    evaluate_value(&gathered, expr)
}

/// Groups a batch chunk by chunk: one [`Numbering`] of the keys kept across chunks, and
/// each aggregate's [`Acc`] updated column by column over a chunk's group numbers.
struct Grouper<'a> {
    batch: &'a RecordBatch,
    plan: &'a Plan,
    keys: Vec<ArrayRef>,
    numbering: Option<Numbering>,
    accs: Vec<Acc>,
    zeros: Vec<u32>,
    /// Every group's rows so far.
    group_rows: Vec<u64>,
    /// Every row's partition and the one this grouper numbers (the others go to the
    /// sink, group [`SINK`]); `None`: every row.
    select: Option<(&'a [u8], u8)>,
    /// A chunk's rows of the partition (reused).
    selected: Vec<u32>,
}

impl<'a> Grouper<'a> {
    fn new(
        batch: &'a RecordBatch,
        plan: &'a Plan,
        expected: usize,
        select: Option<(&'a [u8], u8)>,
    ) -> Result<Grouper<'a>> {
        let keys: Vec<ArrayRef> = plan.keys.iter().map(|k| batch.column(*k).clone()).collect();
        let numbering = if keys.is_empty() {
            None
        } else if select.is_some() {
            Some(Numbering::with_sink(&keys, expected)?)
        } else {
            Some(Numbering::with_groups(&keys, expected)?)
        };
        let accs = plan
            .aggs
            .iter()
            .map(|agg| Acc::new(batch, agg))
            .collect::<Result<_>>()?;
        Ok(Grouper {
            batch,
            plan,
            keys,
            numbering,
            accs,
            zeros: Vec::new(),
            group_rows: Vec::new(),
            select,
            selected: Vec::new(),
        })
    }

    /// Groups rows `start..start + len` of the batch.
    fn push(&mut self, start: usize, len: usize) -> Result<()> {
        let chunk = self.batch.slice(start, len);
        let row = |i: usize| (start + i) as u32;
        let (ids, groups) = match &mut self.numbering {
            Some(numbering) => {
                let keys: Vec<ArrayRef> = self.keys.iter().map(|k| k.slice(start, len)).collect();
                match self.select {
                    Some((parts, part)) => {
                        // The chunk's rows of this partition, listed without a branch.
                        let selected = &mut self.selected;
                        selected.resize(len, 0);
                        let mut n = 0;
                        for (i, &p) in parts[start..start + len].iter().enumerate() {
                            selected[n] = i as u32;
                            n += (p == part) as usize;
                        }
                        selected.truncate(n);
                        numbering.number_selected(&keys, row, selected)?
                    }
                    None => numbering.number(&keys, row)?,
                }
            }
            None => {
                self.zeros.resize(len, 0);
                (&self.zeros[..len], 1)
            }
        };
        for (acc, agg) in self.accs.iter_mut().zip(&self.plan.aggs) {
            acc.push(
                &chunk,
                agg,
                ids,
                (groups, &self.group_rows),
                row,
                self.select.is_some(),
            )?;
        }
        // Every group's rows, for the aggregates that count them (min/max and
        // count(DISTINCT) don't): beyond the caches a scattered add of its own.
        if self.accs.iter().any(Acc::counts_rows) {
            self.group_rows.resize(groups, 0);
            // Over a slice: the vector's fields are not reloaded after every add.
            let counts = self.group_rows.as_mut_slice();
            let at = (counts.as_ptr(), counts.len());
            for_each_kept_ahead(&None, ids, at, |i| counts[ids[i] as usize] += 1);
        }
        Ok(())
    }

    /// The groups, in order of first appearance.
    fn finish(self) -> Result<Grouped> {
        let (first, states, key_columns) = self.finish_states()?;
        let keys = rows_at(&key_columns, &first, 1)?;
        Ok(Grouped {
            // Without keys, one global group.
            groups: if key_columns.is_empty() {
                1
            } else {
                first.len()
            },
            keys,
            states,
        })
    }

    /// Every group's first row (none without keys), every aggregate's state, and the
    /// key columns.
    fn finish_states(self) -> Result<(Vec<u32>, Vec<State>, Vec<ArrayRef>)> {
        let (groups, first) = match self.numbering {
            Some(n) => {
                let first = n.into_first();
                (first.len(), first)
            }
            None => (1, Vec::new()),
        };
        let states = self
            .accs
            .into_iter()
            .zip(&self.plan.aggs)
            .map(|(acc, agg)| acc.finish(self.batch, agg, groups, &self.group_rows))
            .collect::<Result<_>>()?;
        Ok((first, states, self.keys))
    }
}

/// The group of rows another partition's grouper numbers.
const SINK: u32 = 0;

/// [`partial`] of many groups (`keys`: the batch's key columns) on a thread a piece:
/// every row's key hashed to a partition (`groups::partitions`, on every core), then
/// each thread numbers and adds up the rows of its own partition only (the others go to a sink group, dropped), so no
/// key is numbered twice and no group is merged. The partitions' groups are interleaved
/// by first row: the order of first appearance one thread gives, and each group's
/// state is its rows' state, so the bits are one thread's. `None` where a key column
/// has no partition hash (dictionaries, decimals, nested types).
fn partial_partitioned(
    batch: &RecordBatch,
    plan: &Plan,
    keys: &[ArrayRef],
    threads: Threads,
    chunk: usize,
    expected: usize,
) -> Result<Option<Grouped>> {
    let rows = batch.num_rows();
    // A partition a piece: every partition's thread reads every row (its aggregates
    // update the sink for the others'), so no more threads than the rows are worth.
    let count = threads.pieces(rows).min(u8::MAX as usize);
    let Some(parts) = super::groups::partitions(keys, count, threads)? else {
        return Ok(None);
    };
    let results = Threads::map_ranges(count, count, |p, _| {
        let select = Some((parts.as_slice(), p as u8));
        let mut grouper = Grouper::new(batch, plan, expected / count + 1, select)?;
        for start in (0..rows).step_by(chunk) {
            grouper.push(start, chunk.min(rows - start))?;
        }
        grouper.finish_states()
    })?;
    // Each partition's groups ascend by first row (after its sink, group 0): merged.
    let firsts: Vec<&[u32]> = results.iter().map(|(f, _, _)| &f[1..]).collect();
    let groups: usize = firsts.iter().map(|f| f.len()).sum();
    let mut heads = vec![0usize; count];
    let mut order = Vec::with_capacity(groups);
    let mut first_rows = Vec::with_capacity(groups);
    for _ in 0..groups {
        let (mut best, mut from) = (u32::MAX, 0);
        for (p, f) in firsts.iter().enumerate() {
            if let Some(&r) = f.get(heads[p]) {
                if r < best {
                    (best, from) = (r, p);
                }
            }
        }
        heads[from] += 1;
        order.push((from as u32, heads[from] as u32));
        first_rows.push(best);
    }
    // The keys at the groups' first rows.
    let keys = rows_at(keys, &first_rows, count)?;
    let states = (0..plan.aggs.len())
        .map(|a| {
            let parts: Vec<&State> = results.iter().map(|(_, s, _)| &s[a]).collect();
            State::gather(&parts, &order, threads.threads)
        })
        .collect::<Result<_>>()?;
    Ok(Some(Grouped {
        groups,
        keys,
        states,
    }))
}

/// Groups `batch` as `plan` says, into per-group states; groups in order of first
/// appearance, one thread's bits whatever the threads.
///
/// With more than one thread and few enough groups (at most one in 16 rows a piece, as
/// [`estimate_groups`] estimates them from a sample), contiguous pieces of the batch are
/// grouped each on its own thread and merged in order: states merge exactly and the
/// merge keeps first appearances and ties in row order. With more groups, merging would
/// cost about what grouping the merged groups' keys again does, so the rows are split
/// by a hash of their key instead, a partition a thread ([`partial_partitioned`]), and
/// only keys of other types (dictionaries, decimals, nested) go to one thread. Either
/// way a batch is grouped [`CHUNK_ROWS`] rows at a time, so that each step's buffers
/// stay small and are reused (grouping 10M rows in one go allocated
/// hundreds of MB afresh per call, and faulting those pages in cost more than the
/// grouping itself), into a key table sized once for the estimated groups (growing it
/// step by step to 10M groups copied it ~20 times). An error is the first piece's that
/// has one.
pub(crate) fn partial(batch: &RecordBatch, plan: &Plan, threads: Threads) -> Result<Grouped> {
    let rows = batch.num_rows();
    // Chunks of at most CHUNK_ROWS, fewer with fewer rows a thread (tests cut them small).
    let chunk = CHUNK_ROWS.min(threads.chunk_rows());
    if rows <= threads.chunk_rows() {
        return partial_serial(batch, plan, chunk, 0);
    }
    let pieces = threads.pieces(rows);
    let keys: Vec<ArrayRef> = plan.keys.iter().map(|k| batch.column(*k).clone()).collect();
    let estimate = estimate_groups(&keys)?;
    let expected = estimate.groups();
    if pieces == 1 || !estimate.few(pieces, rows) {
        if pieces > 1 {
            if let Some(grouped) =
                partial_partitioned(batch, plan, &keys, threads, chunk, expected)?
            {
                return Ok(grouped);
            }
        }
        return partial_serial(batch, plan, chunk, expected.min(rows));
    }
    let parts = threads.map_pieces(rows, |start, len| {
        partial_serial(&batch.slice(start, len), plan, chunk, expected.min(len))
    })?;
    let mut merger = Merger::new();
    for part in parts {
        merger.push(plan, part)?;
    }
    Ok(merger.finish(plan)?.expect("a piece was pushed"))
}

/// Rows in the sample that [`estimate_groups`] judges by.
const SAMPLE_ROWS: usize = 8192;

/// How many groups a batch has, as a sample tells.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Estimate {
    /// Repeats in most sampled rows: about this many groups, and few whatever the rows.
    Few(usize),
    /// About this many groups.
    About(usize),
}

impl Estimate {
    /// About how many groups.
    pub(crate) fn groups(self) -> usize {
        match self {
            Estimate::Few(g) | Estimate::About(g) => g,
        }
    }

    /// Whether merging `pieces` pieces' groups costs little beside grouping `rows` rows:
    /// at most one group per 16 rows a piece (merging costs about regrouping the pieces'
    /// groups).
    pub(crate) fn few(self, pieces: usize, rows: usize) -> bool {
        match self {
            Estimate::Few(_) => true,
            Estimate::About(g) => g.saturating_mul(16 * pieces) <= rows,
        }
    }
}

/// How many groups the rows of `keys` (columns of equal length) make, estimated from an
/// evenly spread sample of the rows. Of `n` sampled rows with `d` distinct keys, `n - d`
/// repeat an earlier key; keys spread over `G` groups repeat about `n² / 2G` times, so
/// `G ≈ n² / 2(n - d)` (at least `d`; a sample without a repeat is as many groups as
/// rows). No keys: one group.
pub(crate) fn estimate_groups(keys: &[ArrayRef]) -> Result<Estimate> {
    let Some(rows) = keys.first().map(|k| k.len()) else {
        return Ok(Estimate::Few(1));
    };
    let step = (rows / SAMPLE_ROWS).max(1);
    let sample = UInt32Array::from_iter_values((0..rows).step_by(step).map(|i| i as u32));
    let keys = keys
        .iter()
        .map(|k| take(k.as_ref(), &sample, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (_, first) = assign_groups(&keys)?;
    let (n, d) = (sample.len(), first.len());
    Ok(if d * 8 <= n {
        // Repeats everywhere: few groups whatever the estimate (which, at many repeats,
        // is never below n / 2), most of them seen.
        Estimate::Few(d)
    } else if n == d {
        Estimate::About(rows)
    } else {
        Estimate::About(((n * n) / (2 * (n - d))).max(d))
    })
}

/// [`partial`] on the calling thread, `chunk` rows at a time, into a key table sized
/// for `expected` groups.
fn partial_serial(
    batch: &RecordBatch,
    plan: &Plan,
    chunk: usize,
    expected: usize,
) -> Result<Grouped> {
    let mut grouper = Grouper::new(batch, plan, expected, None)?;
    let rows = batch.num_rows();
    for start in (0..rows).step_by(chunk) {
        grouper.push(start, chunk.min(rows - start))?;
    }
    grouper.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, Int64Array, StringArray, UInt32Array};
    use arrow::compute::take;

    use super::rows_at;

    /// `rows_at` gives what `take` gives: picked rows ascending or not, few or nearly all
    /// (the mask's run copies), every row, none, of columns with nulls and of slices.
    #[test]
    fn rows_at_is_take() {
        let n = 5_000usize;
        let ints = Int64Array::from_iter((0..n).map(|i| (i % 7 != 0).then_some(i as i64 * 3)));
        let strings =
            StringArray::from_iter((0..n).map(|i| (i % 5 != 0).then(|| format!("s{}", i * 31))));
        let whole: Vec<ArrayRef> = vec![Arc::new(ints), Arc::new(strings)];
        let sliced: Vec<ArrayRef> = whole.iter().map(|c| c.slice(13, n - 20)).collect();
        for columns in [&whole, &sliced] {
            let len = columns[0].len();
            let picks: Vec<Vec<u32>> = vec![
                Vec::new(),
                (0..len as u32).collect(),
                (0..len as u32).filter(|r| r % 10 != 3).collect(),
                (0..len as u32).filter(|r| r % 97 < 80).collect(),
                (0..len as u32).filter(|r| r % 3 == 0).collect(),
                (0..len as u32).rev().filter(|r| r % 10 != 3).collect(),
                vec![4, 4, 9, 2],
            ];
            for at in &picks {
                for threads in [1, 2, 3] {
                    let got = rows_at(columns, at, threads).unwrap();
                    let indices = UInt32Array::from(at.clone());
                    for (c, column) in columns.iter().enumerate() {
                        let want = take(column.as_ref(), &indices, None).unwrap();
                        assert_eq!(got[c].to_data(), want.to_data(), "{} rows", at.len());
                    }
                }
            }
        }
    }
}
