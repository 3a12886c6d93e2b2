//! Group-by on the CPU: a `hashbrown` hash table from each row's key to its group number,
//! groups numbered in order of first appearance, then one pass per aggregate.
//!
//! Keys are compared by an encoding that is equal exactly when arrow's row format is:
//! fixed-width keys (integers, floats by their bits, booleans, dates, timestamps, ...) are
//! packed into one u64 or u128 per row (a null bit per nullable key, then the value bits),
//! anything else (more or wider keys, strings, dictionaries) uses `RowConverter` rows. The
//! output keys are a `take` of each group's first row, so Dictionary keys keep their
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

use super::keys;
use super::Threads;
use crate::aggregate::{add_wide, better_than, Grouped, Merger, State};
use crate::aggregate::{AggFunc, Plan, PlannedAgg};
use crate::cpu::filter::{evaluate, evaluate_value};
use crate::error::Result;
use crate::exact::{ExactSum, GroupedAdder, SumSlots};
use crate::plan::{int_info, is_decimal};

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

/// [`number_into`] over an empty index.
fn number<K: Hash + Eq>(keys: impl Iterator<Item = K>) -> (Vec<u32>, Vec<u32>) {
    number_into(&mut HashMap::new(), keys)
}

/// Every row's group number and every group's first row, for one or more key columns.
pub(crate) fn assign_groups(columns: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>)> {
    if let Some(numbered) = super::groups::assign(columns) {
        return Ok(numbered);
    }
    let keyed = keys::ascending(columns);
    Ok(match keys::packed(&keyed) {
        Some((packed, bits)) if bits <= 64 => number(packed.into_iter().map(|k| k as u64)),
        Some((packed, _)) => number(packed.into_iter()),
        None => number(keys::rows(&keyed)?.iter()),
    })
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

/// Exact Σx, Σx² and n per group.
struct Moments {
    sum: Vec<ExactSum>,
    squares: Vec<ExactSum>,
    n: Vec<u64>,
}

fn moments(
    values: &ArrayRef,
    kept: &Option<NullBuffer>,
    ids: &[u32],
    groups: usize,
    squares: bool,
) -> Result<Moments> {
    let mut m = Moments {
        sum: vec![ExactSum::default(); groups],
        squares: if squares {
            vec![ExactSum::default(); groups]
        } else {
            Vec::new()
        },
        n: vec![0; groups],
    };
    let rows = ids.len();
    match Numbers::of(values)? {
        Numbers::Float(a) if !squares => {
            // One 128-bit window a group: a shifted add a value, the windows prefetched
            // when they outgrow the caches.
            let v = a.values();
            let mut slots = SumSlots::default();
            slots.resize(groups);
            let n = &mut m.n;
            let group = |i: usize| ids[i] as usize;
            match kept.as_ref().filter(|k| k.null_count() > 0) {
                None => slots.add_rows(rows, group, |i| v[i], |_| true, |g| n[g] += 1),
                Some(k) => slots.add_rows(rows, group, |i| v[i], |i| k.is_valid(i), |g| n[g] += 1),
            }
            m.sum = (0..groups).map(|g| slots.get(g)).collect();
        }
        Numbers::Float(a) => {
            let v = a.values();
            let selected = |i: usize| kept.as_ref().is_none_or(|k| k.is_valid(i));
            let sq = Some(m.squares.as_mut_slice());
            GroupedAdder::default().add(&mut m.sum, sq, v, |i| ids[i] as usize, selected);
            for_each_kept(kept, rows, |i| m.n[ids[i] as usize] += 1);
        }
        Numbers::Signed(a) => {
            let v = a.values();
            for_each_kept(kept, rows, |i| {
                let g = ids[i] as usize;
                m.sum[g].add_i128(v[i] as i128);
                if squares {
                    m.squares[g].add_square_of(v[i].unsigned_abs());
                }
                m.n[g] += 1;
            })
        }
        Numbers::Unsigned(a) => {
            let v = a.values();
            for_each_kept(kept, rows, |i| {
                let g = ids[i] as usize;
                m.sum[g].add_i128(v[i] as i128);
                if squares {
                    m.squares[g].add_square_of(v[i]);
                }
                m.n[g] += 1;
            })
        }
    }
    Ok(m)
}

/// Each group's first row with the best order word (`better(a, b)`: a beats b) among the
/// kept rows, into `best` (`u32::MAX` where a group has none).
fn best_words(
    kept: &Option<NullBuffer>,
    ids: &[u32],
    words: &[u64],
    best: &mut [u32],
    better: impl Fn(u64, u64) -> bool,
) {
    let mut word = vec![0u64; best.len()];
    for_each_kept(kept, ids.len(), |i| {
        let g = ids[i] as usize;
        let w = words[i];
        if best[g] == u32::MAX || better(w, word[g]) {
            best[g] = i as u32;
            word[g] = w;
        }
    });
}

/// One aggregate's state over `batch`.
fn aggregate(batch: &RecordBatch, agg: &PlannedAgg, ids: &[u32], groups: usize) -> Result<State> {
    let rows = ids.len();
    let values = agg
        .value
        .as_ref()
        .map(|v| evaluate_value(batch, v))
        .transpose()?;
    let kept = kept_rows(
        batch,
        agg,
        values.as_ref().filter(|_| agg.func != AggFunc::CountStar),
    )?;
    // Integers and decimals sum exactly: integers in an i128 (their wrapping 64-bit sums
    // are its low bits), decimals with the bits above it too (`add_wide`), so that an
    // overflow of the decimal's 38 digits is found whatever the order of the values.
    let integer = values
        .as_ref()
        .is_some_and(|v| int_info(v.data_type()).is_some() || is_decimal(v.data_type()));
    Ok(match agg.func {
        AggFunc::CountStar | AggFunc::Count => {
            let mut counts = vec![0u64; groups];
            for_each_kept(&kept, rows, |i| counts[ids[i] as usize] += 1);
            State::Count(counts)
        }
        AggFunc::Sum | AggFunc::Mean if integer => {
            let values = values.expect("sum has a value");
            let mut sums = vec![0i128; groups];
            let mut high = vec![0i64; groups];
            let mut n = vec![0u64; groups];
            if is_decimal(values.data_type()) {
                let a = values.as_primitive::<Decimal128Type>();
                for_each_kept(&kept, rows, |i| {
                    let g = ids[i] as usize;
                    add_wide(&mut sums[g], &mut high[g], a.value(i));
                    n[g] += 1;
                });
                return Ok(State::IntSum { sums, high, n });
            }
            fn add<T: Copy + Into<i128>>(
                kept: &Option<NullBuffer>,
                ids: &[u32],
                v: &[T],
                sums: &mut [i128],
                n: &mut [u64],
            ) {
                for_each_kept(kept, ids.len(), |i| {
                    let g = ids[i] as usize;
                    sums[g] = sums[g].wrapping_add(v[i].into());
                    n[g] += 1;
                })
            }
            match Numbers::of(&values)? {
                Numbers::Signed(a) => add(&kept, ids, a.values(), &mut sums, &mut n),
                Numbers::Unsigned(a) => add(&kept, ids, a.values(), &mut sums, &mut n),
                Numbers::Float(_) => unreachable!("an integer"),
            }
            State::IntSum { sums, high, n }
        }
        AggFunc::CountDistinct => {
            let values = values.expect("count(DISTINCT) has a value");
            let mut rows = Vec::new();
            for_each_kept(&kept, ids.len(), |i| rows.push(i as u32));
            let rows = UInt32Array::from(rows);
            let pair_group = rows.values().iter().map(|&i| ids[i as usize]).collect();
            State::distinct(groups, pair_group, take(values.as_ref(), &rows, None)?)?
        }
        AggFunc::Min | AggFunc::Max => {
            let values = values.expect("min and max have a value");
            let max = agg.func == AggFunc::Max;
            let mut best = vec![u32::MAX; groups];
            match keys::order_words(values.as_ref()) {
                // Fixed-width values: each group's best word beside its row, so a row is
                // compared with its group's slot, not with a far row of the column.
                Some((words, _)) if max => best_words(&kept, ids, &words, &mut best, |a, b| a > b),
                Some((words, _)) => best_words(&kept, ids, &words, &mut best, |a, b| a < b),
                None => {
                    let better = better_than(&values, max)?;
                    for_each_kept(&kept, rows, |i| {
                        let g = ids[i] as usize;
                        let b = best[g];
                        if b == u32::MAX || better(i, b as usize) {
                            best[g] = i as u32;
                        }
                    });
                }
            }
            let indices =
                UInt32Array::from_iter(best.into_iter().map(|b| (b != u32::MAX).then_some(b)));
            State::Extreme(take(values.as_ref(), &indices, None)?)
        }
        func => {
            let squares = !matches!(func, AggFunc::Sum | AggFunc::Mean);
            let m = moments(
                values.as_ref().expect("a numeric value"),
                &kept,
                ids,
                groups,
                squares,
            )?;
            State::Moments {
                sum: m.sum,
                squares: m.squares,
                n: m.n,
            }
        }
    })
}

/// Groups `batch` as `plan` says, into per-group states; groups in order of first
/// appearance. With more than one thread and enough rows, contiguous pieces of the batch
/// are grouped each on its own thread and merged in order; within a piece, chunks of
/// [`Threads::chunk_rows`] rows are grouped one after another and merged likewise. States
/// merge exactly and the merge keeps first appearances and ties in row order, so the
/// result is one thread's over the whole batch, bit for bit (an error is the first
/// piece's that has one).
///
/// Chunks keep each step's buffers (keys, group numbers) small and reused: grouping 10M
/// rows in one go allocated ~250 MB afresh per call, and faulting those pages in cost
/// more than the grouping itself.
///
/// Merging costs about what grouping the merged groups' keys again would, so a batch of
/// many groups (more than one in eight rows of an evenly spread sample) is grouped on one
/// thread in one go.
pub(crate) fn partial(batch: &RecordBatch, plan: &Plan, threads: Threads) -> Result<Grouped> {
    let rows = batch.num_rows();
    if rows <= threads.chunk_rows() || !few_groups(batch, plan)? {
        return partial_serial(batch, plan);
    }
    let parts = threads.map_pieces(rows, |start, len| {
        let piece = batch.slice(start, len);
        let chunk = threads.chunk_rows();
        if len <= chunk {
            return partial_serial(&piece, plan);
        }
        let mut merger = Merger::new();
        for at in (0..len).step_by(chunk) {
            merger.push(
                plan,
                partial_serial(&piece.slice(at, chunk.min(len - at)), plan)?,
            )?;
        }
        Ok(merger.finish(plan)?.expect("a chunk was pushed"))
    })?;
    let mut merger = Merger::new();
    for part in parts {
        merger.push(plan, part)?;
    }
    Ok(merger.finish(plan)?.expect("a piece was pushed"))
}

/// Rows in the sample that [`few_groups`] judges by.
const SAMPLE_ROWS: usize = 8192;

/// Whether an evenly spread sample of `batch`'s rows has at most one group per eight rows.
fn few_groups(batch: &RecordBatch, plan: &Plan) -> Result<bool> {
    if plan.keys.is_empty() {
        return Ok(true);
    }
    let rows = batch.num_rows();
    let step = (rows / SAMPLE_ROWS).max(1);
    let sample = UInt32Array::from_iter_values((0..rows).step_by(step).map(|i| i as u32));
    let keys = plan
        .keys
        .iter()
        .map(|k| take(batch.column(*k).as_ref(), &sample, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (_, first) = assign_groups(&keys)?;
    Ok(first.len() * 8 <= sample.len())
}

/// [`partial`] on the calling thread.
fn partial_serial(batch: &RecordBatch, plan: &Plan) -> Result<Grouped> {
    let key_columns: Vec<ArrayRef> = plan.keys.iter().map(|k| batch.column(*k).clone()).collect();
    let (ids, first, groups) = if key_columns.is_empty() {
        (vec![0u32; batch.num_rows()], Vec::new(), 1)
    } else {
        let (ids, first) = assign_groups(&key_columns)?;
        let groups = first.len();
        (ids, first, groups)
    };
    let first = UInt32Array::from(first);
    let keys = key_columns
        .iter()
        .map(|c| take(c.as_ref(), &first, None))
        .collect::<std::result::Result<_, _>>()?;
    let states = plan
        .aggs
        .iter()
        .map(|agg| aggregate(batch, agg, &ids, groups))
        .collect::<Result<_>>()?;
    Ok(Grouped {
        groups,
        keys,
        states,
    })
}
