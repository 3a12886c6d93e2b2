//! The host side of group-by on the GPU: a hash table with open addressing over the keys'
//! order words (compare-and-swap on slots, grown and rebuilt when it fills, never dropping a
//! row), groups numbered in order of first appearance by a prefix sum over the first rows,
//! then one atomic pass per aggregate.
//!
//! On the GPU today: keys of every type the sort takes (one or more, nulls a group of their
//! own, NaN equal to NaN, -0.0 apart from 0.0), and `count(*)`, `count(x)`, `sum`/`avg` of
//! integer columns (a 96-bit exact sum per group: the wrapping 64-bit sum is its low words,
//! the mean its exact value rounded once), `sum`/`avg`/`var`/`stddev` of float columns
//! (`shaders/group_fsum.wgsl`: exact sums and sums of squares as 32-bit digits, sized from a
//! pass over the column's bit range, rebuilt into `crate::exact::ExactSum` on the host and
//! rounded by the CPU path's code) and `min`/`max` of any key type (the largest order word,
//! then the first row holding it). Aggregates over expressions, with filters, integer
//! `var`/`stddev`, dictionary keys and batches of more than one chunk report
//! [`Error::UnsupportedOnGpu`], and `Backend::Auto` runs them on the CPU.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, UInt32Array, UInt64Array,
};
use arrow::compute::{take, SortOptions};
use arrow::datatypes::DataType;

use super::column::GpuBatch;
use super::shader::{self, assemble};
use super::sort::{encode_interleaved, key_kind, Key};
use super::GpuContext;
use crate::engine::{check_gpu_types, Engine};
use crate::error::{Error, Result};
use crate::exact::{self, ExactSum};
use crate::group_by::{AggFunc, Plan, PlannedAgg};
use crate::plan::{int_info, Typed};
use crate::profile::{self, Phase};

const MODE_COUNT: u32 = 0;
const MODE_SUM: u32 = 1;
const MODE_MAX_HI: u32 = 2;
const MODE_MAX_LO: u32 = 3;
const MODE_MAX_ROW: u32 = 4;

/// The column an aggregate reads, when it is a plain column.
fn value_column(agg: &PlannedAgg) -> Option<(usize, &DataType)> {
    match &agg.value {
        Some(Typed::Column(i, dt)) => Some((*i, dt)),
        _ => None,
    }
}

fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}

/// Why `plan` can't run on the GPU, if it can't.
fn unsupported(plan: &Plan, batch: &RecordBatch) -> Option<String> {
    for &k in &plan.keys {
        let dt = batch.schema_ref().field(k).data_type();
        if key_kind(dt).is_none() {
            return Some(format!("group keys of type {dt}"));
        }
    }
    for agg in &plan.aggs {
        if agg.filter.is_some() {
            return Some(format!("{} with a filter", agg.func));
        }
        if agg.func == AggFunc::CountStar {
            continue;
        }
        let Some((_, dt)) = value_column(agg) else {
            return Some(format!("{} of an expression", agg.func));
        };
        let ok = match agg.func {
            AggFunc::CountStar => true,
            AggFunc::Count => super::column::Layout::of(dt).is_some(),
            AggFunc::Sum | AggFunc::Mean => int_info(dt).is_some() || is_float(dt),
            AggFunc::Min | AggFunc::Max => key_kind(dt).is_some(),
            AggFunc::VarSamp | AggFunc::VarPop | AggFunc::StddevSamp | AggFunc::StddevPop => {
                is_float(dt)
            }
        };
        if !ok {
            return Some(format!("{} of {dt}", agg.func));
        }
    }
    None
}

/// `plan` over `batch` on the GPU; the output as the CPU path gives it.
pub(crate) fn group_by(
    engine: &Engine,
    ctx: &Arc<GpuContext>,
    batch: &RecordBatch,
    plan: &Plan,
) -> Result<RecordBatch> {
    if let Some(reason) = unsupported(plan, batch) {
        return Err(Error::UnsupportedOnGpu {
            operation: "group_by",
            reason,
        });
    }
    // Upload only the columns read, remapped to their place in the upload.
    let mut used: Vec<usize> = plan.keys.clone();
    used.extend(
        plan.aggs
            .iter()
            .filter_map(|a| value_column(a).map(|(i, _)| i)),
    );
    used.sort_unstable();
    used.dedup();
    check_gpu_types(ctx, batch, &used, "group_by")?;
    let at = |i: usize| used.binary_search(&i).expect("used");
    let resident = engine.upload(&batch.project(&used)?)?;
    if resident.num_chunks() > 1 {
        return Err(Error::UnsupportedOnGpu {
            operation: "group_by",
            reason: format!(
                "{} rows are more than one chunk ({} rows); partial aggregates are not merged yet",
                batch.num_rows(),
                ctx.rows_per_chunk()
            ),
        });
    }
    let rows = batch.num_rows() as u32;
    if rows == 0 {
        // No rows: no groups, or one empty global group (counts 0, everything else null).
        let groups = plan.keys.is_empty() as usize;
        let zeros = vec![0u32; groups * 3];
        let mut columns: Vec<ArrayRef> = plan
            .keys
            .iter()
            .map(|&k| batch.column(k).slice(0, 0))
            .collect();
        for agg in &plan.aggs {
            let float = value_column(agg).is_some_and(|(_, dt)| is_float(dt));
            columns.push(match agg.func {
                // No values: every float result is null.
                AggFunc::Sum | AggFunc::Mean if float => {
                    Arc::new(Float64Array::from(vec![None; groups]))
                }
                AggFunc::VarSamp | AggFunc::VarPop | AggFunc::StddevSamp | AggFunc::StddevPop => {
                    Arc::new(Float64Array::from(vec![None; groups]))
                }
                _ => finish(batch, agg, groups, &zeros, Some(&zeros[..groups]))?,
            });
        }
        let options = RecordBatchOptions::new().with_row_count(Some(groups));
        return Ok(RecordBatch::try_new_with_options(
            plan.schema.clone(),
            columns,
            &options,
        )?);
    }
    let start = Instant::now();
    let (groups, group_of_row, first_of_group) = if plan.keys.is_empty() {
        let ids = ctx.storage_zeroed("group of row", rows as u64 * 4)?;
        (1, ids, None)
    } else {
        let keys: Vec<Key> = plan
            .keys
            .iter()
            .map(|&k| Key {
                column: at(k),
                options: SortOptions::default(),
            })
            .collect();
        let (g, ids, first) = super::groups::assign_groups(&resident, &keys, 0)?;
        (g, ids, Some(first))
    };
    // The bit range of every float column summed, to size its exact digits.
    let float_columns: Vec<usize> = plan
        .aggs
        .iter()
        .filter(|a| a.func != AggFunc::Count && a.func != AggFunc::Min && a.func != AggFunc::Max)
        .filter_map(|a| value_column(a).filter(|(_, dt)| is_float(dt)))
        .map(|(i, _)| at(i))
        .collect();
    let ranges = float_ranges(&resident, &float_columns)?;
    // One state buffer per aggregate (and a count of values where the result needs it).
    let mut encoder = ctx.encoder();
    let mut states = Vec::with_capacity(plan.aggs.len());
    for agg in &plan.aggs {
        let column = value_column(agg).map(|(i, _)| at(i));
        let range = match agg.func {
            AggFunc::Count | AggFunc::Min | AggFunc::Max => None,
            _ => column.and_then(|c| ranges.iter().find(|(k, _)| *k == c).map(|(_, r)| *r)),
        };
        states.push(record_aggregate(
            &resident,
            agg,
            column,
            range,
            groups,
            &group_of_row,
            &mut encoder,
        )?);
    }
    ctx.submit(encoder)?;
    profile::record(Phase::Kernels, start);

    let start = Instant::now();
    let mut parts: Vec<(&wgpu::Buffer, u64)> = Vec::new();
    if let Some(first) = &first_of_group {
        parts.push((first, groups as u64 * 4));
    }
    for s in &states {
        parts.push((&s.state, s.words as u64 * groups as u64 * 4));
        if let Some(c) = &s.counts {
            parts.push((c, groups as u64 * 4));
        }
        if let Some(q) = s.float.as_ref().and_then(|f| f.squares.as_ref()) {
            parts.push((&q.state, (q.digits as u64 + 1) * groups as u64 * 4));
        }
    }
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    let mut next =
        || -> Vec<u32> { bytemuck::pod_collect_to_vec(&bytes.next().unwrap_or_default()) };
    let first: Vec<u32> = match &first_of_group {
        Some(_) => next(),
        None => Vec::new(),
    };
    let first = UInt32Array::from(first);
    let mut columns: Vec<ArrayRef> = plan
        .keys
        .iter()
        .map(|&k| take(batch.column(k).as_ref(), &first, None))
        .collect::<std::result::Result<_, _>>()?;
    for (agg, s) in plan.aggs.iter().zip(&states) {
        let state = next();
        let counts = s.counts.as_ref().map(|_| next());
        let column = match &s.float {
            Some(f) => {
                let squares = f.squares.as_ref().map(|_| next());
                let counts = counts.expect("float aggregates count their values");
                finish_float(agg, f, groups as usize, &state, squares.as_deref(), &counts)
            }
            None => finish(batch, agg, groups as usize, &state, counts.as_deref())?,
        };
        columns.push(column);
    }
    profile::record(Phase::Download, start);
    let options = RecordBatchOptions::new().with_row_count(Some(groups as usize));
    Ok(RecordBatch::try_new_with_options(
        plan.schema.clone(),
        columns,
        &options,
    )?)
}

/// One aggregate's state on the GPU: `words` u32 per group, for sums over a nullable
/// column (and every mean) the count of values per group, and for floats the digits'
/// layout.
struct AggState {
    state: wgpu::Buffer,
    words: u32,
    counts: Option<wgpu::Buffer>,
    float: Option<FloatDigits>,
}

/// Exact float accumulators: per group `digits` positive and `digits` negative digits from
/// digit `lowest`, then the special-value flags; and the squares' digits for variances.
struct FloatDigits {
    digits: u32,
    lowest: u32,
    squares: Option<Squares>,
}

struct Squares {
    state: wgpu::Buffer,
    digits: u32,
    lowest: u32,
}

const FSUM_RANGE: u32 = 0;
const FSUM_SUM: u32 = 1;
const FSUM_SQUARES: u32 = 2;

fn fsum_mode(batch: &GpuBatch, column: usize, mode: u32) -> u32 {
    let f64_bit = (batch.columns[column].data_type == DataType::Float64) as u32;
    let validity = batch.columns[column].chunks[0].validity.is_some() as u32;
    mode | f64_bit << 8 | validity << 9
}

/// The lowest and highest bit position (at scale 2^-1074) of any finite non-zero value of
/// each float column: one pass and one small readback for all of them.
fn float_ranges(batch: &GpuBatch, columns: &[usize]) -> Result<Vec<(usize, (u32, u32))>> {
    let mut columns = columns.to_vec();
    columns.sort_unstable();
    columns.dedup();
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[0];
    let pipeline = ctx.pipeline("group_fsum", || assemble(shader::GROUP_FSUM, &[]))?;
    let mut encoder = ctx.encoder();
    let mut buffers = Vec::with_capacity(columns.len());
    for &c in &columns {
        let range = ctx.storage_from_bytes("float range", bytemuck::cast_slice(&[u32::MAX, 0]))?;
        let chunk = &batch.columns[c].chunks[0];
        let params = ctx.params([rows, fsum_mode(batch, c, FSUM_RANGE), 0, 0])?;
        let validity = chunk.validity.as_ref().unwrap_or(&chunk.data);
        let bg = ctx.bind(
            &pipeline,
            &[&params, &chunk.data, validity, &chunk.data, &range],
        );
        ctx.dispatch(&mut encoder, &pipeline, &bg, rows as u64);
        buffers.push(range);
    }
    ctx.submit(encoder)?;
    let parts: Vec<(&wgpu::Buffer, u64)> = buffers.iter().map(|b| (b, 8)).collect();
    let read = ctx.read_many(&parts)?;
    Ok(columns
        .into_iter()
        .zip(read)
        .map(|(c, bytes)| {
            let r: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
            // No finite non-zero value: one digit at 0 (nothing is added to it).
            (c, if r[0] > r[1] { (0, 0) } else { (r[0], r[1]) })
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn record_aggregate(
    batch: &GpuBatch,
    agg: &PlannedAgg,
    column: Option<usize>,
    range: Option<(u32, u32)>,
    groups: u32,
    group_of_row: &wgpu::Buffer,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<AggState> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[0];
    let pipeline = ctx.pipeline("group_agg", || assemble(shader::GROUP_AGG, &[]))?;
    let chunk = column.map(|c| &batch.columns[c].chunks[0]);
    let validity = chunk.and_then(|c| c.validity.as_ref());
    let flags = validity.is_some() as u32;
    let dispatch = |encoder: &mut wgpu::CommandEncoder,
                    mode: u32,
                    kind: u32,
                    values: &wgpu::Buffer,
                    state: &wgpu::Buffer|
     -> Result<()> {
        let params = ctx.params([rows, mode, kind, flags])?;
        let v = validity.unwrap_or(values);
        let bg = ctx.bind(&pipeline, &[&params, values, v, group_of_row, state]);
        if rows > 0 {
            ctx.dispatch(encoder, &pipeline, &bg, rows as u64);
        }
        Ok(())
    };
    let count =
        |encoder: &mut wgpu::CommandEncoder, values: &wgpu::Buffer| -> Result<wgpu::Buffer> {
            let state = ctx.storage_zeroed("group counts", groups as u64 * 4)?;
            dispatch(encoder, MODE_COUNT, 0, values, &state)?;
            Ok(state)
        };
    if let (Some((min_pos, max_pos)), Some(chunk), Some(c)) = (range, chunk, column) {
        // Exact float sums (and sums of squares for variances).
        let fsum = ctx.pipeline("group_fsum", || assemble(shader::GROUP_FSUM, &[]))?;
        let limit = ctx.summary.max_chunk_bytes;
        let run = |encoder: &mut wgpu::CommandEncoder, mode: u32, digits: u32, lowest: u32| {
            let words = if mode == FSUM_SUM {
                2 * digits + 1
            } else {
                digits + 1
            };
            let bytes = groups as u64 * words as u64 * 4;
            if bytes > limit {
                return Err(Error::UnsupportedOnGpu {
                    operation: "group_by",
                    reason: format!(
                        "exact {} of {groups} groups need {bytes} bytes of digits, more than one binding",
                        agg.func
                    ),
                });
            }
            let state = ctx.storage_zeroed("exact float digits", bytes)?;
            let params = ctx.params([rows, fsum_mode(batch, c, mode), digits, lowest])?;
            let v = validity.unwrap_or(&chunk.data);
            let bg = ctx.bind(&fsum, &[&params, &chunk.data, v, group_of_row, &state]);
            ctx.dispatch(encoder, &fsum, &bg, rows as u64);
            Ok((state, words))
        };
        let lowest = min_pos / 32;
        let digits = (max_pos + 52) / 32 + 2 - lowest;
        let (state, words) = run(encoder, FSUM_SUM, digits, lowest)?;
        let squares = if matches!(agg.func, AggFunc::Sum | AggFunc::Mean) {
            None
        } else {
            let lowest = 2 * min_pos / 32;
            let digits = (2 * max_pos + 105) / 32 + 2 - lowest;
            let (state, _) = run(encoder, FSUM_SQUARES, digits, lowest)?;
            Some(Squares {
                state,
                digits,
                lowest,
            })
        };
        return Ok(AggState {
            state,
            words,
            counts: Some(count(encoder, &chunk.data)?),
            float: Some(FloatDigits {
                digits,
                lowest,
                squares,
            }),
        });
    }
    Ok(match (agg.func, chunk) {
        // count(*) has no column, so no validity is read: every row counts.
        (AggFunc::CountStar | AggFunc::Count, _) => AggState {
            state: count(encoder, chunk.map_or(group_of_row, |c| &c.data))?,
            words: 1,
            counts: None,
            float: None,
        },
        (AggFunc::Sum | AggFunc::Mean, Some(chunk)) => {
            let dt = &batch.columns[column.expect("a column")].data_type;
            let (signed, bits) = int_info(dt).expect("checked: an integer");
            let state = ctx.storage_zeroed("group sums", groups as u64 * 12)?;
            dispatch(
                encoder,
                MODE_SUM,
                bits | if signed { 128 } else { 0 },
                &chunk.data,
                &state,
            )?;
            let counts = if validity.is_some() || agg.func == AggFunc::Mean {
                Some(count(encoder, &chunk.data)?)
            } else {
                None
            };
            AggState {
                state,
                words: 3,
                counts,
                float: None,
            }
        }
        (AggFunc::Min | AggFunc::Max, Some(_)) => {
            // The minimum is the largest inverted order word.
            let key = Key {
                column: column.expect("a column"),
                options: SortOptions {
                    descending: agg.func == AggFunc::Min,
                    nulls_first: false,
                },
            };
            let (words, per_row) = encode_interleaved(batch, &[key], 0, false, encoder)?;
            let state = ctx.storage_zeroed("group extremes", groups as u64 * 12)?;
            dispatch(encoder, MODE_MAX_HI, per_row, &words, &state)?;
            if per_row == 2 {
                dispatch(encoder, MODE_MAX_LO, per_row, &words, &state)?;
            }
            dispatch(encoder, MODE_MAX_ROW, per_row, &words, &state)?;
            AggState {
                state,
                words: 3,
                counts: None,
                float: None,
            }
        }
        _ => {
            return Err(Error::UnsupportedOnGpu {
                operation: "group_by",
                reason: format!("{}", agg.func),
            })
        }
    })
}

/// One aggregate's output column from its downloaded state.
fn finish(
    batch: &RecordBatch,
    agg: &PlannedAgg,
    groups: usize,
    state: &[u32],
    counts: Option<&[u32]>,
) -> Result<ArrayRef> {
    let sum96 = |g: usize| -> i128 {
        let w = &state[g * 3..g * 3 + 3];
        ((w[2] as i32 as i128) << 64) | ((w[1] as i128) << 32) | w[0] as i128
    };
    let has_values = |g: usize| counts.is_none_or(|c| c[g] > 0);
    Ok(match agg.func {
        AggFunc::CountStar | AggFunc::Count => Arc::new(Int64Array::from_iter_values(
            state[..groups].iter().map(|c| *c as i64),
        )),
        AggFunc::Sum => match agg.output {
            DataType::UInt64 => Arc::new(UInt64Array::from_iter(
                (0..groups).map(|g| has_values(g).then(|| sum96(g) as u64)),
            )),
            _ => Arc::new(Int64Array::from_iter(
                (0..groups).map(|g| has_values(g).then(|| sum96(g) as i64)),
            )),
        },
        AggFunc::Mean => {
            let counts = counts.expect("a mean counts its values");
            Arc::new(Float64Array::from_iter((0..groups).map(|g| {
                (counts[g] > 0).then(|| {
                    let mut exact = ExactSum::default();
                    exact.add_i128(sum96(g));
                    exact.mean(counts[g] as u64)
                })
            })))
        }
        AggFunc::Min | AggFunc::Max => {
            let rows = batch.num_rows() as u32;
            let (column, _) = value_column(agg).expect("checked: a column");
            let at = UInt32Array::from_iter(
                (0..groups).map(|g| (state[g * 3 + 2] != 0).then(|| rows - state[g * 3 + 2])),
            );
            take(batch.column(column).as_ref(), &at, None)?
        }
        other => {
            return Err(Error::UnsupportedOnGpu {
                operation: "group_by",
                reason: format!("{other}"),
            })
        }
    })
}

/// A float aggregate's column from its downloaded digits: the exact sums rebuilt and
/// rounded once by the same code as the CPU path's, so the bits are the same.
fn finish_float(
    agg: &PlannedAgg,
    f: &FloatDigits,
    groups: usize,
    state: &[u32],
    squares: Option<&[u32]>,
    counts: &[u32],
) -> ArrayRef {
    let d = f.digits as usize;
    let sum = |g: usize| {
        let mut e = ExactSum::default();
        let at = g * (2 * d + 1);
        for i in 0..d {
            let pos = (f.lowest + i as u32) * 32;
            e.add_digit(false, state[at + i], pos);
            e.add_digit(true, state[at + d + i], pos);
        }
        e.add_flags(state[at + 2 * d]);
        e
    };
    let square_sum = |g: usize| {
        let q = f.squares.as_ref().expect("variance has squares");
        let words = squares.expect("variance has squares");
        let d = q.digits as usize;
        let at = g * (d + 1);
        let mut e = ExactSum::default();
        for i in 0..d {
            e.add_digit(false, words[at + i], (q.lowest + i as u32) * 32);
        }
        e.add_flags(words[at + d]);
        e
    };
    let ddof = matches!(agg.func, AggFunc::VarSamp | AggFunc::StddevSamp) as u64;
    Arc::new(Float64Array::from_iter((0..groups).map(|g| {
        let n = counts[g] as u64;
        match agg.func {
            AggFunc::Sum => (n > 0).then(|| sum(g).sum()),
            AggFunc::Mean => (n > 0).then(|| sum(g).mean(n)),
            AggFunc::VarSamp | AggFunc::VarPop => exact::variance(&sum(g), &square_sum(g), n, ddof),
            _ => exact::std_dev(&sum(g), &square_sum(g), n, ddof).map(exact::canonical),
        }
    })))
}
