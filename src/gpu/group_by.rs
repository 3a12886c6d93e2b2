//! The host side of group-by on the GPU: groups numbered by the shared hash table
//! (`super::groups`), each aggregate's input made by a generated kernel where it is an
//! expression or has a filter, then one atomic pass per aggregate into per-group states
//! that come back as [`crate::aggregate::State`]s, the same partial aggregates as the CPU
//! path's (so chunks, and batches streamed through a `GroupByAccumulator`, merge exactly).
//!
//! On the GPU: keys of every type the sort takes (one or more, nulls a group of their own,
//! NaN equal to NaN, -0.0 apart from 0.0) and Dictionary keys (by canonical codes, made on
//! the host from the dictionary's values, so equal values are one group whatever their
//! codes); `count(*)`, `count(x)`, `sum`/`avg` of integers (a 96-bit exact sum per group),
//! `var`/`stddev` of integers (with a 160-bit exact sum of squares), `sum`/`avg`/`var`/
//! `stddev` of floats (`shaders/group_fsum.wgsl`: exact sums and sums of squares as 32-bit
//! digits, sized from a pass over the input's bit range) and `min`/`max` of any key type
//! (the largest order word, then the first row holding it); each over a column or an
//! expression, with or without a filter. A batch of several chunks is grouped chunk by
//! chunk and the partial aggregates merged on the host.
//!
//! A chunk whose aggregates are all counts, integer sums, means and variances, and
//! `min`/`max` of values of at most 32 bits is first grouped in one pass over its rows
//! (`super::group_fused`); the passes here take the rest, and any chunk whose groups
//! overflow that pass's small table. A stream of batches of such a plan, or with float
//! sums and 64-bit `min`/`max` too (a `GroupByAccumulator`), keeps that table on the GPU
//! across batches instead (`super::group_resident`).

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::compute::{cast, take, SortOptions};
use arrow::datatypes::{DataType, Field, Schema};

use super::check_gpu_types;
use super::column::{column_from_bytes, column_parts};
use super::column::{ColumnChunk, GpuBatch, GpuColumn, Layout, MAX_GPU_DECIMAL_PRECISION};
use super::filter::{check_bindings, check_flags, read_u32s, record_kernel};
use super::predicate::{self, Outputs};
use super::shader::{self, assemble};
use super::sort::{encode_interleaved, key_kind, NullWords};
use super::{GpuContext, WORKGROUP_SIZE};
use crate::aggregate::{AggFunc, Plan, PlannedAgg};
use crate::aggregate::{Grouped, Merger, State};
use crate::error::{Error, Result};
use crate::exact::{ExactSum, BIAS_SQUARES};
use crate::keys::Key;
use crate::plan::{int_info, is_string, Typed};
use crate::profile::{self, Phase};

const MODE_COUNT: u32 = 0;
const MODE_SUM: u32 = 1;
const MODE_MAX_HI: u32 = 2;
const MODE_MAX_LO: u32 = 3;
const MODE_MAX_ROW: u32 = 4;
const MODE_SQUARES: u32 = 5;

/// What a group-by runs over: a host batch (uploaded here), or one already on the GPU.
#[derive(Clone, Copy)]
pub(crate) enum Input<'a> {
    Host(&'a RecordBatch),
    Resident(&'a GpuBatch),
}

pub(super) fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}

/// (signed, bits) of a value that sums as an integer on the GPU: integers, decimals held as
/// i64 (columns of up to 18 digits) and the 128-bit decimals an expression kernel writes.
pub(crate) fn sum_width(dt: &DataType) -> Option<(bool, u32)> {
    match dt {
        DataType::Decimal128(p, _) if *p <= MAX_GPU_DECIMAL_PRECISION => Some((true, 64)),
        DataType::Decimal128(..) => Some((true, 128)),
        dt => int_info(dt),
    }
}

/// The column an aggregate reads as it is, when its value is a plain column.
fn plain_column(agg: &PlannedAgg) -> Option<usize> {
    match &agg.value {
        Some(Typed::Column(i, _)) => Some(*i),
        _ => None,
    }
}

/// The type of an aggregate's input on the GPU: the column's own, or what the kernel
/// writes for an expression.
pub(crate) fn input_type(agg: &PlannedAgg) -> Option<DataType> {
    let value = agg.value.as_ref()?;
    match value {
        Typed::Column(_, dt) => Some(dt.clone()),
        e => predicate::written_type(&e.data_type()),
    }
}

/// Why `plan` can't run on the GPU, if it can't.
pub(crate) fn unsupported(plan: &Plan, schema: &Schema, host: bool) -> Option<String> {
    for &k in &plan.keys {
        let dt = schema.field(k).data_type();
        let dictionary = host && matches!(dt, DataType::Dictionary(..));
        if key_kind(dt).is_none() && !dictionary && !is_string(dt) {
            return Some(format!("group keys of type {dt}"));
        }
    }
    for agg in &plan.aggs {
        for e in agg.value.iter().chain(agg.filter.iter()) {
            if let Some(reason) = predicate::unsupported_reason(e) {
                if !matches!(e, Typed::Column(..)) {
                    return Some(format!("{}: {reason}", agg.func));
                }
            }
        }
        if agg.func == AggFunc::CountStar {
            continue;
        }
        let Some(dt) = input_type(agg) else {
            return Some(format!(
                "{} of an expression of type {:?}",
                agg.func, agg.value
            ));
        };
        let ok = match agg.func {
            AggFunc::CountStar => true,
            AggFunc::Count => Layout::of(&dt).is_some(),
            AggFunc::Sum | AggFunc::Mean => sum_width(&dt).is_some() || is_float(&dt),
            AggFunc::Min | AggFunc::Max | AggFunc::CountDistinct => key_kind(&dt).is_some(),
            AggFunc::VarSamp | AggFunc::VarPop | AggFunc::StddevSamp | AggFunc::StddevPop => {
                int_info(&dt).is_some() || is_float(&dt)
            }
        };
        if !ok {
            return Some(format!("{} of {dt}", agg.func));
        }
    }
    None
}

/// Dictionary keys as canonical codes: equal dictionary values (and null values) get one
/// code, so grouping by the codes is grouping by value, as the CPU path's row format does.
fn canonical_codes(array: &ArrayRef) -> Result<ArrayRef> {
    let dict = array.as_any_dictionary();
    let values = dict.values();
    // Each dictionary entry's group among the entries: its canonical code.
    let (ids, _) = crate::cpu::group_by::assign_groups(std::slice::from_ref(values))?;
    let keys = cast(dict.keys(), &DataType::UInt32)?;
    let keys = keys.as_primitive::<arrow::datatypes::UInt32Type>();
    Ok(Arc::new(UInt32Array::from_iter((0..keys.len()).map(|i| {
        if keys.is_null(i) {
            return None;
        }
        let k = keys.value(i) as usize;
        (!values.is_null(k)).then(|| ids[k])
    }))))
}

/// `plan` over `input` on the GPU, as per-group partial aggregates.
pub(crate) fn partial(ctx: &Arc<GpuContext>, input: Input, plan: &Plan) -> Result<Grouped> {
    let (schema, host) = match input {
        Input::Host(b) => (b.schema(), Some(b)),
        Input::Resident(b) => (b.schema.clone(), None),
    };
    if let Some(reason) = unsupported(plan, &schema, host.is_some()) {
        return Err(Error::UnsupportedOnGpu {
            operation: "group_by",
            reason,
        });
    }
    let rows = match input {
        Input::Host(b) => b.num_rows(),
        Input::Resident(b) => b.num_rows(),
    };
    if rows == 0 {
        // No rows, nothing to compute: no groups, or one global group of empty states.
        let empty = host
            .cloned()
            .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
        return crate::cpu::group_by::partial(&empty, plan, crate::cpu::Threads::ONE);
    }
    let (resident, remapped) = on_gpu(ctx, input, plan, 0)?;
    let keys_at = |first: &[u32], base: u32| -> Result<Vec<ArrayRef>> {
        let idx: Vec<u32> = first.iter().map(|r| r + base).collect();
        keys_at_rows(host, plan, &resident, &remapped, &idx)
    };
    let chunks = resident.num_chunks();
    let mut merger = Merger::new();
    let mut base = 0u32;
    let mut fused = true;
    for c in 0..chunks {
        let gather_keys = host.is_none();
        let part = chunk_partial(
            &resident,
            c,
            &remapped,
            base,
            &keys_at,
            gather_keys,
            &mut fused,
        )?;
        if chunks == 1 {
            return Ok(part);
        }
        base += resident.chunk_rows[c];
        merger.push(&remapped, part)?;
    }
    Ok(merger.finish(&remapped)?.expect("at least one chunk"))
}

/// `input` on the GPU for `plan`: a host batch's used columns uploaded (`upload_used`),
/// with the plan renumbered to them; then cut into chunks whose key words (`key_bytes` a
/// row at least), 128-bit decimal values or (group, value) pairs fit a binding.
pub(super) fn on_gpu(
    ctx: &Arc<GpuContext>,
    input: Input,
    plan: &Plan,
    key_bytes: u64,
) -> Result<(GpuBatch, Plan)> {
    let (resident, remapped) = match input {
        Input::Resident(b) => (b.clone(), plan.clone()),
        Input::Host(batch) => upload_used(ctx, batch, plan)?,
    };
    let keys = group_keys(&remapped);
    // Per-row intermediates beside the key words: 8 bytes (a group id, a 64-bit value),
    // 16 for a decimal expression's 128-bit values or count(DISTINCT)'s (group, value) key
    // words. Only what the plan needs: a split chunk costs copies and a merge.
    let wide = remapped.aggs.iter().any(|a| {
        a.func == AggFunc::CountDistinct
            || matches!(
                (&a.value, a.value.as_ref().map(|v| v.data_type())),
                (Some(v), Some(DataType::Decimal128(..))) if !matches!(v, Typed::Column(..))
            )
    });
    let row_bytes = if wide { 16 } else { 8 };
    let resident = super::groups::fit_key_words(&resident, &keys, row_bytes.max(key_bytes))?;
    Ok((resident, remapped))
}

/// The key values of `plan`'s groups at rows `rows` of a batch: a take of the host batch
/// `host`, or without one a gather from `resident` (its columns as `remapped` numbers them).
pub(super) fn keys_at_rows(
    host: Option<&RecordBatch>,
    plan: &Plan,
    resident: &GpuBatch,
    remapped: &Plan,
    rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    match host {
        Some(batch) => {
            let idx = UInt32Array::from(rows.to_vec());
            Ok(plan
                .keys
                .iter()
                .map(|&k| take(batch.column(k).as_ref(), &idx, None))
                .collect::<std::result::Result<_, _>>()?)
        }
        None => gather(resident, &remapped.keys, rows),
    }
}

/// Uploads the columns `plan` reads (Dictionary keys as canonical codes); the upload and
/// the plan with its columns renumbered to their place in it.
fn upload_used(
    ctx: &Arc<GpuContext>,
    batch: &RecordBatch,
    plan: &Plan,
) -> Result<(GpuBatch, Plan)> {
    let mut used: Vec<usize> = plan.keys.clone();
    for agg in &plan.aggs {
        for e in agg.value.iter().chain(agg.filter.iter()) {
            used.extend(e.column_indices());
        }
    }
    used.sort_unstable();
    used.dedup();
    let mut fields = Vec::with_capacity(used.len());
    let mut columns = Vec::with_capacity(used.len());
    for &i in &used {
        let field = batch.schema_ref().field(i);
        let column = batch.column(i);
        if matches!(field.data_type(), DataType::Dictionary(..)) && plan.keys.contains(&i) {
            fields.push(Field::new(field.name(), DataType::UInt32, true));
            columns.push(canonical_codes(column)?);
        } else {
            fields.push(field.clone());
            columns.push(column.clone());
        }
    }
    let projected = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?;
    check_gpu_types(
        ctx,
        &projected,
        &(0..used.len()).collect::<Vec<_>>(),
        "group_by",
    )?;
    let at = |i: usize| used.binary_search(&i).expect("used");
    let remapped = Plan {
        keys: plan.keys.iter().map(|&k| at(k)).collect(),
        aggs: plan
            .aggs
            .iter()
            .map(|a| PlannedAgg {
                func: a.func,
                value: a.value.as_ref().map(|v| v.remap_columns(&at)),
                filter: a.filter.as_ref().map(|f| f.remap_columns(&at)),
                output: a.output.clone(),
                name: a.name.clone(),
            })
            .collect(),
        schema: plan.schema.clone(),
    };
    let start = Instant::now();
    let resident = GpuBatch::upload(ctx, &projected)?;
    profile::record(Phase::Upload, start);
    Ok((resident, remapped))
}

/// Columns `columns` of `batch` at global rows `rows`, gathered on the GPU and downloaded.
fn gather(batch: &GpuBatch, columns: &[usize], rows: &[u32]) -> Result<Vec<ArrayRef>> {
    let ctx = &batch.ctx;
    let part = GpuBatch {
        ctx: ctx.clone(),
        schema: Arc::new(batch.schema.project(columns)?),
        columns: columns.iter().map(|&c| batch.columns[c].clone()).collect(),
        chunk_rows: batch.chunk_rows.clone(),
    };
    let idx = ctx.storage_from_bytes("gather rows", bytemuck::cast_slice(rows))?;
    let taken = super::sort::take(&part, &[(idx, rows.len() as u32)])?;
    let start = Instant::now();
    let out = taken.to_record_batch()?;
    profile::record(Phase::Download, start);
    Ok(out.columns().to_vec())
}

/// One aggregate's state on the GPU: `words` u32 per group, for sums the count of values
/// per group, for floats the digits' layout, and for integer variances the exact sums of
/// squares (five words per group).
struct AggState {
    state: wgpu::Buffer,
    words: u32,
    counts: Option<wgpu::Buffer>,
    float: Option<FloatDigits>,
    int_squares: Option<wgpu::Buffer>,
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
    let (pipeline, _) = stage(ctx, "group_fsum", shader::GROUP_FSUM, None, rows)?;
    let mut encoder = ctx.encoder();
    let mut buffers = Vec::with_capacity(columns.len());
    for &c in &columns {
        let range = ctx.storage_from_bytes("float range", bytemuck::cast_slice(&[u32::MAX, 0]))?;
        let chunk = &batch.columns[c].chunks[0];
        let params = ctx.params([rows, fsum_mode(batch, c, FSUM_RANGE), 0, 0])?;
        // The range reads only the values (and their validity, where there is one).
        let validity = chunk.validity.as_ref().unwrap_or(&ctx.unread);
        let bg = ctx.bind(
            &pipeline,
            &[&params, &chunk.data, validity, &ctx.unread, &range],
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

/// Which aggregates can share one state: counts; integer or float sums and means; the
/// variance family. (`None`: not shared.)
fn shared_state(a: &PlannedAgg) -> Option<u8> {
    match a.func {
        AggFunc::CountStar | AggFunc::Count => Some(0),
        AggFunc::Sum | AggFunc::Mean => Some(1),
        AggFunc::VarSamp | AggFunc::VarPop | AggFunc::StddevSamp | AggFunc::StddevPop => Some(2),
        AggFunc::Min | AggFunc::Max | AggFunc::CountDistinct => None,
    }
}

/// The plan's group keys as hash-table keys (the order options unused: equality only).
pub(crate) fn group_keys(plan: &Plan) -> Vec<Key> {
    plan.keys
        .iter()
        .map(|&column| Key {
            column,
            options: SortOptions::default(),
        })
        .collect()
}

/// Per aggregate, the earlier aggregate whose state it copies: aggregates over the same
/// input with the same state (`sum(x)` and `avg(x)`, two counts) share one pass.
pub(crate) fn same_states(plan: &Plan) -> Vec<Option<usize>> {
    plan.aggs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            plan.aggs[..i].iter().position(|b| {
                shared_state(a).is_some()
                    && shared_state(a) == shared_state(b)
                    && a.value == b.value
                    && a.filter == b.filter
            })
        })
        .collect()
}

/// At most this many groups pre-aggregate in workgroup memory: beyond it, each workgroup's
/// flush would cost more than the contention it saves.
const LOCAL_MAX_GROUPS: u32 = 256;
/// Workgroups a pre-aggregating stage runs (each walks its share of the rows).
const LOCAL_WORKGROUPS: u64 = 512;

/// The threads a pre-aggregating stage dispatches over `rows` rows: [`LOCAL_WORKGROUPS`]
/// workgroups at most, each walking its share of the rows.
pub(crate) fn walking_threads(rows: u32) -> u64 {
    (rows as u64).min(LOCAL_WORKGROUPS * WORKGROUP_SIZE as u64)
}

/// The 32-bit words of workgroup memory a pre-aggregating stage may use: the adapter's,
/// but at most 16 KiB, since some drivers zero-initialize it one invocation at a time.
pub(crate) fn workgroup_words(ctx: &GpuContext) -> u32 {
    (ctx.summary.limits.max_compute_workgroup_storage_size / 4).min(4096)
}

/// The workgroup words to pre-aggregate `groups` groups of `per_group` words in (a power of
/// two, so that few pipelines serve every size), if they are few enough and fit the
/// adapter's workgroup memory ([`workgroup_words`]). Sized to the need, for the drivers
/// that zero it one invocation at a time.
fn local_words(ctx: &GpuContext, groups: u32, per_group: u32) -> Option<u32> {
    let budget = workgroup_words(ctx);
    let need = (groups as u64 * per_group as u64)
        .next_power_of_two()
        .max(32);
    (groups <= LOCAL_MAX_GROUPS && need <= budget as u64).then_some(need as u32)
}

/// An aggregate stage's pipeline, adding to global atomics or (with `local` words)
/// pre-aggregating in workgroup memory, and the threads to dispatch for `rows` rows.
fn stage(
    ctx: &GpuContext,
    name: &str,
    source: &str,
    local: Option<u32>,
    rows: u32,
) -> Result<(Arc<wgpu::ComputePipeline>, u64)> {
    let words = local.unwrap_or(1).to_string();
    let flag = if local.is_some() { "true" } else { "false" };
    let pipeline = ctx.pipeline(&format!("{name}:{flag}:{words}"), || {
        assemble(source, &[("LOCAL", flag), ("LOCAL_WORDS", &words)])
    })?;
    let threads = match local {
        Some(_) => walking_threads(rows),
        None => rows as u64,
    };
    Ok((pipeline, threads))
}

#[allow(clippy::too_many_arguments)]
fn record_aggregate(
    batch: &GpuBatch,
    agg: &PlannedAgg,
    column: Option<usize>,
    range: Option<(u32, u32)>,
    groups: u32,
    group_of_row: &wgpu::Buffer,
    row_counts: &mut Option<wgpu::Buffer>,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<AggState> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[0];
    let chunk = column.map(|c| &batch.columns[c].chunks[0]);
    let validity = chunk.and_then(|c| c.validity.as_ref());
    let flags = validity.is_some() as u32;
    let dispatch = |encoder: &mut wgpu::CommandEncoder,
                    mode: u32,
                    kind: u32,
                    values: &wgpu::Buffer,
                    state: &wgpu::Buffer|
     -> Result<()> {
        let per_group = match mode {
            MODE_COUNT => Some(1),
            MODE_SUM if kind & 255 == 128 => Some(5),
            MODE_SUM => Some(3),
            MODE_SQUARES => Some(5),
            _ => None,
        };
        let local = per_group.and_then(|w| local_words(ctx, groups, w));
        let (pipeline, threads) = stage(ctx, "group_agg", shader::GROUP_AGG, local, rows)?;
        let params = ctx.params([rows, mode, kind, flags])?;
        // A count reads no values; the validity only where there is one.
        let values = if mode == MODE_COUNT {
            &ctx.unread
        } else {
            values
        };
        let v = validity.unwrap_or(&ctx.unread);
        let bg = ctx.bind(&pipeline, &[&params, values, v, group_of_row, state]);
        if rows > 0 {
            ctx.dispatch(encoder, &pipeline, &bg, threads);
        }
        Ok(())
    };
    // The count of an input's values per group. Without a validity bitmap (no nulls, no
    // filter) that is each group's row count, counted once for every such aggregate and
    // count(*) (`row_counts`).
    let mut count = |encoder: &mut wgpu::CommandEncoder| -> Result<wgpu::Buffer> {
        if validity.is_none() {
            if let Some(counts) = row_counts {
                return Ok(counts.clone());
            }
        }
        let state = ctx.storage_zeroed("group counts", groups as u64 * 4)?;
        dispatch(encoder, MODE_COUNT, 0, &ctx.unread, &state)?;
        if validity.is_none() {
            *row_counts = Some(state.clone());
        }
        Ok(state)
    };
    if let (Some((min_pos, max_pos)), Some(chunk), Some(c)) = (range, chunk, column) {
        // Exact float sums (and sums of squares for variances).
        // The binding limit itself: `max_chunk_bytes` sizes column chunks, not states.
        let limits = &ctx.summary.limits;
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
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
            let local = local_words(ctx, groups, words);
            let (fsum, threads) = stage(ctx, "group_fsum", shader::GROUP_FSUM, local, rows)?;
            let params = ctx.params([rows, fsum_mode(batch, c, mode), digits, lowest])?;
            let v = validity.unwrap_or(&ctx.unread);
            let bg = ctx.bind(&fsum, &[&params, &chunk.data, v, group_of_row, &state]);
            ctx.dispatch(encoder, &fsum, &bg, threads);
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
            counts: Some(count(encoder)?),
            float: Some(FloatDigits {
                digits,
                lowest,
                squares,
            }),
            int_squares: None,
        });
    }
    Ok(match (agg.func, chunk) {
        // count(*) has no column, so no validity is read: every row counts.
        (AggFunc::CountStar | AggFunc::Count, _) => AggState {
            state: count(encoder)?,
            words: 1,
            counts: None,
            float: None,
            int_squares: None,
        },
        (func, Some(chunk)) if func != AggFunc::Min && func != AggFunc::Max => {
            // Integers and decimals: the exact 96-bit sum (160-bit for 128-bit values), the
            // count, and for variances the exact sum of squares.
            let dt = &batch.columns[column.expect("a column")].data_type;
            let (signed, bits) = sum_width(dt).expect("checked: an integer or a decimal");
            let kind = bits | if signed { 256 } else { 0 };
            let words = if bits == 128 { 5 } else { 3 };
            let state = ctx.storage_zeroed("group sums", groups as u64 * words as u64 * 4)?;
            dispatch(encoder, MODE_SUM, kind, &chunk.data, &state)?;
            let int_squares = if matches!(func, AggFunc::Sum | AggFunc::Mean) {
                None
            } else {
                let squares = ctx.storage_zeroed("group sums of squares", groups as u64 * 20)?;
                dispatch(encoder, MODE_SQUARES, kind, &chunk.data, &squares)?;
                Some(squares)
            };
            AggState {
                state,
                words,
                counts: Some(count(encoder)?),
                float: None,
                int_squares,
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
            let (words, per_row) = encode_interleaved(batch, &[key], 0, NullWords::Skip, encoder)?;
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
                int_squares: None,
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

/// Each aggregate's input for chunk `c`, as a one-chunk batch: a column as it is, or what a
/// generated kernel writes for an expression or a filter (values where needed, and a
/// validity bitmap that is set where the value is valid and the filter true). Recorded
/// into `encoder`; division errors go to the returned flags word. Per aggregate: its
/// column in the batch (`None` for `count(*)` without a filter).
pub(crate) fn aggregate_inputs(
    batch: &GpuBatch,
    c: usize,
    plan: &Plan,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<(GpuBatch, Vec<Option<usize>>, wgpu::Buffer)> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let flags = ctx.storage_zeroed("flags", 4)?;
    let has_nulls = |i: usize| batch.columns[i].chunks[c].validity.is_some();
    let mut columns: Vec<GpuColumn> = Vec::new();
    let mut slots = Vec::with_capacity(plan.aggs.len());
    for agg in &plan.aggs {
        let plain = plain_column(agg);
        let column = match (&agg.value, &agg.filter, plain) {
            (None, None, _) => None,
            (Some(_), None, Some(i)) => Some(GpuColumn {
                data_type: batch.columns[i].data_type.clone(),
                chunks: vec![batch.columns[i].chunks[c].clone()],
            }),
            (value, filter, plain) => {
                let kernel = predicate::generate_input(
                    value.as_ref(),
                    plain.is_none(),
                    filter.as_ref(),
                    &has_nulls,
                )?;
                check_bindings(ctx, &kernel)?;
                let bitmap = Layout::Bits.bytes(rows as usize);
                let valid = ctx.storage_zeroed("aggregate input validity", bitmap)?;
                let (data_type, data) = match &kernel.outputs {
                    Outputs::Bits => {
                        let data = ctx.storage_zeroed("aggregate input bits", bitmap)?;
                        record_kernel(batch, c, &kernel, &[&data, &valid], &flags, encoder)?;
                        (DataType::Boolean, data)
                    }
                    Outputs::Values(dt) => {
                        let bytes = predicate::written_bytes(dt, rows as usize);
                        let data = ctx.storage_zeroed("aggregate input values", bytes)?;
                        record_kernel(batch, c, &kernel, &[&data, &valid], &flags, encoder)?;
                        (dt.clone(), data)
                    }
                    Outputs::Validity => {
                        record_kernel(batch, c, &kernel, &[&valid], &flags, encoder)?;
                        match plain {
                            Some(i) => (
                                batch.columns[i].data_type.clone(),
                                batch.columns[i].chunks[c].data.clone(),
                            ),
                            // count(*) with a filter: only the bitmap is read.
                            None => (DataType::Boolean, valid.clone()),
                        }
                    }
                };
                Some(GpuColumn {
                    data_type,
                    chunks: vec![ColumnChunk {
                        data,
                        validity: Some(valid),
                    }],
                })
            }
        };
        slots.push(column.map(|col| {
            columns.push(col);
            columns.len() - 1
        }));
    }
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, col)| Field::new(format!("a{i}"), col.data_type.clone(), true))
        .collect();
    let inputs = GpuBatch {
        ctx: ctx.clone(),
        schema: Arc::new(Schema::new(fields)),
        columns,
        chunk_rows: vec![rows],
    };
    Ok((inputs, slots, flags))
}

/// The key values of a chunk's groups, from their first rows (local) and the chunk's base.
pub(crate) type KeysAt<'a> = dyn Fn(&[u32], u32) -> Result<Vec<ArrayRef>> + 'a;

/// Chunk `c` of `batch` grouped by `plan` on the GPU, into partial aggregates; `base` is
/// the chunk's first row in the batch, and `keys_at` gives the key values of rows. With
/// `gather_keys` (the batch lives on the GPU), fixed-width keys are gathered at the
/// groups' first rows on the GPU instead and read back with the states: one wait for both.
/// While `fused` holds, the chunk is first tried in one pass (`super::group_fused`); a
/// chunk that pass doesn't take clears it, so later chunks go straight to the passes here.
fn chunk_partial(
    batch: &GpuBatch,
    c: usize,
    plan: &Plan,
    base: u32,
    keys_at: &KeysAt,
    gather_keys: bool,
    fused: &mut bool,
) -> Result<Grouped> {
    if *fused {
        match super::group_fused::chunk_partial(batch, c, plan, base, keys_at, gather_keys)? {
            Some(grouped) => return Ok(grouped),
            None => *fused = false,
        }
    }
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let start = Instant::now();
    let (groups, group_of_row, first_of_group) = if plan.keys.is_empty() {
        let ids = ctx.storage_zeroed("group of row", rows as u64 * 4)?;
        (1, ids, None)
    } else {
        let (g, ids, first) = super::groups::assign_groups(batch, &group_keys(plan), c)?;
        (g, ids, Some(first))
    };
    let mut encoder = ctx.encoder();
    let (inputs, slots, flags) = aggregate_inputs(batch, c, plan, &mut encoder)?;
    ctx.submit(encoder)?;
    // The bit range of every float input summed, to size its exact digits.
    let sums = |a: &PlannedAgg| {
        !matches!(
            a.func,
            AggFunc::Count
                | AggFunc::CountStar
                | AggFunc::CountDistinct
                | AggFunc::Min
                | AggFunc::Max
        )
    };
    let float_inputs: Vec<usize> = plan
        .aggs
        .iter()
        .zip(&slots)
        .filter(|(a, _)| sums(a))
        .filter_map(|(_, s)| s.filter(|&s| is_float(&inputs.columns[s].data_type)))
        .collect();
    let ranges = float_ranges(&inputs, &float_inputs)?;
    let mut encoder = ctx.encoder();
    let mut states = Vec::with_capacity(plan.aggs.len());
    let mut row_counts = None;
    let same_as = same_states(plan);
    for ((agg, slot), same) in plan.aggs.iter().zip(&slots).zip(&same_as) {
        // A shared state is copied, and count(DISTINCT x) pairs its values with the
        // groups after this pass: neither records anything here.
        if same.is_some() || agg.func == AggFunc::CountDistinct {
            states.push(None);
            continue;
        }
        let range = slot
            .filter(|_| sums(agg))
            .and_then(|s| ranges.iter().find(|(k, _)| *k == s).map(|(_, r)| *r));
        states.push(Some(record_aggregate(
            &inputs,
            agg,
            *slot,
            range,
            groups,
            &group_of_row,
            &mut row_counts,
            &mut encoder,
        )?));
    }
    ctx.submit(encoder)?;
    // Each group's key values at its first row, gathered from this chunk (local rows).
    let fixed_width = |&k: &usize| batch.columns[k].layout() != Layout::Strings;
    let gathered = match &first_of_group {
        Some(first) if gather_keys && plan.keys.iter().all(fixed_width) => {
            let part = batch.chunk_view(c, &plan.keys)?;
            Some(super::sort::take(&part, &[(first.clone(), groups)])?)
        }
        _ => None,
    };
    profile::record(Phase::Kernels, start);

    let start = Instant::now();
    let g = groups as u64;
    let mut parts: Vec<(&wgpu::Buffer, u64)> = vec![(&flags, 4)];
    if let Some(first) = &first_of_group {
        parts.push((first, g * 4));
    }
    for s in states.iter().flatten() {
        parts.push((&s.state, s.words as u64 * g * 4));
        if let Some(c) = &s.counts {
            parts.push((c, g * 4));
        }
        if let Some(q) = s.float.as_ref().and_then(|f| f.squares.as_ref()) {
            parts.push((&q.state, (q.digits as u64 + 1) * g * 4));
        }
        if let Some(q) = &s.int_squares {
            parts.push((q, 5 * g * 4));
        }
    }
    if let Some(taken) = &gathered {
        for column in &taken.columns {
            parts.extend(column_parts(column, &taken.chunk_rows));
        }
    }
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    let mut next = || -> Vec<u32> { read_u32s(&bytes.next().unwrap_or_default()) };
    check_flags(next()[0])?;
    let first: Vec<u32> = match &first_of_group {
        Some(_) => next(),
        None => Vec::new(),
    };
    let groups = groups as usize;
    let mut out: Vec<State> = Vec::with_capacity(states.len());
    // min/max: (aggregate, its input column, each group's row or none), gathered below.
    let mut extremes: Vec<(usize, usize, Vec<Option<u32>>)> = Vec::new();
    // count(DISTINCT x): (aggregate, its input column), paired with the groups below.
    let mut distincts: Vec<(usize, usize)> = Vec::new();
    for (i, (agg, s)) in plan.aggs.iter().zip(&states).enumerate() {
        let Some(s) = s else {
            let placeholder = match same_as[i] {
                Some(earlier) => out[earlier].clone(),
                None => {
                    distincts.push((i, slots[i].expect("count(DISTINCT) has a value")));
                    State::Count(Vec::new()) // replaced below
                }
            };
            out.push(placeholder);
            continue;
        };
        let state = next();
        let counts: Option<Vec<u64>> = s
            .counts
            .as_ref()
            .map(|_| next().into_iter().map(u64::from).collect());
        out.push(match (agg.func, &s.float) {
            (AggFunc::CountStar | AggFunc::Count, _) => {
                State::Count(state[..groups].iter().map(|c| *c as u64).collect())
            }
            (AggFunc::Min | AggFunc::Max, _) => {
                let at = (0..groups)
                    .map(|g| {
                        let r = state[g * 3 + 2];
                        (r != 0).then(|| rows - r)
                    })
                    .collect();
                extremes.push((i, slots[i].expect("min and max have a value"), at));
                State::Count(Vec::new()) // replaced below
            }
            (_, Some(f)) => {
                let squares = f.squares.as_ref().map(|_| next());
                float_moments(
                    f,
                    groups,
                    &state,
                    squares.as_deref(),
                    counts.expect("counted"),
                )
            }
            (func, None) => {
                let squares = (!matches!(func, AggFunc::Sum | AggFunc::Mean)).then(&mut next);
                let n = counts.expect("integer sums count their values");
                int_state(&state, s.words as usize, squares.as_deref(), n)
            }
        });
    }
    let gathered_keys = match &gathered {
        Some(taken) => Some(
            taken
                .columns
                .iter()
                .map(|column| column_from_bytes(column, &taken.chunk_rows, &mut bytes))
                .collect::<Result<Vec<ArrayRef>>>()?,
        ),
        None => None,
    };
    profile::record(Phase::Download, start);
    for (i, slot, at) in extremes {
        let rows: Vec<u32> = at.iter().map(|r| r.unwrap_or(0)).collect();
        let values = gather(&inputs, &[slot], &rows)?.remove(0);
        let present = UInt32Array::from_iter((0..groups).map(|g| at[g].map(|_| g as u32)));
        let mut values = take(values.as_ref(), &present, None)?;
        if values.data_type() != &plan.aggs[i].output {
            // A widened expression value: every value fits the output type.
            values = cast(&values, &plan.aggs[i].output)?;
        }
        out[i] = State::Extreme(values);
    }
    for (i, slot) in distincts {
        let value_type = plan.aggs[i]
            .value
            .as_ref()
            .expect("count(DISTINCT) has a value")
            .data_type();
        out[i] = distinct_pairs(&inputs, slot, &group_of_row, groups, &value_type)?;
    }
    let keys = match gathered_keys {
        Some(keys) => keys,
        None if plan.keys.is_empty() => Vec::new(),
        None => keys_at(&first, base)?,
    };
    Ok(Grouped {
        groups,
        keys,
        states: out,
    })
}

/// An integer `sum`/`avg` (without `squares`) or variance (with them) state from its words
/// in group order: each group's exact sum in `per_group` words (a 96-bit sum, or 160 bits
/// for 128-bit values), its sum of squares in five words, and its count of values.
pub(crate) fn int_state(
    state: &[u32],
    per_group: usize,
    squares: Option<&[u32]>,
    n: Vec<u64>,
) -> State {
    let groups = n.len();
    // The exact sum's low 128 bits: all of a 96-bit sum (sign-extended), the wrapping sum
    // of 128-bit values.
    let sum96 = |g: usize| -> i128 {
        let w = &state[g * per_group..g * per_group + 3];
        let low = ((w[2] as i32 as i128) << 64) | ((w[1] as i128) << 32) | w[0] as i128;
        match per_group {
            5 => (low & ((1i128 << 96) - 1)) | ((state[g * 5 + 3] as i128) << 96),
            _ => low,
        }
    };
    let Some(squares) = squares else {
        return State::IntSum {
            sums: (0..groups).map(sum96).collect(),
            // A 160-bit sum's bits above the low 128, signed, in units of 2^128 over the
            // signed low 128 (nonzero: the sum is beyond 128 bits).
            high: (0..groups)
                .map(|g| match per_group {
                    5 => state[g * 5 + 4] as i32 as i64 + (sum96(g) < 0) as i64,
                    _ => 0,
                })
                .collect(),
            n,
        };
    };
    State::Moments {
        sum: (0..groups)
            .map(|g| {
                let mut e = ExactSum::default();
                e.add_i128(sum96(g));
                e
            })
            .collect(),
        squares: (0..groups)
            .map(|g| {
                let mut e = ExactSum::default();
                for (i, w) in squares[g * 5..g * 5 + 5].iter().enumerate() {
                    e.add_digit(false, *w, BIAS_SQUARES + 32 * i as u32);
                }
                e
            })
            .collect(),
        n,
    }
}

/// `count(DISTINCT x)`'s state: the distinct (group, value) pairs of the one-chunk batch
/// `inputs`' column `slot`, found by the hash grouping on (group, value) and gathered at
/// each pair's first row on the GPU; pairs of a null value (not counted) dropped on the
/// host, values cast back to `value_type` (a kernel widens small integers).
fn distinct_pairs(
    inputs: &GpuBatch,
    slot: usize,
    group_of_row: &wgpu::Buffer,
    groups: usize,
    value_type: &DataType,
) -> Result<State> {
    let ctx = &inputs.ctx;
    let input = &inputs.columns[slot];
    let pairs = GpuBatch {
        ctx: ctx.clone(),
        schema: Arc::new(Schema::new(vec![
            Field::new("group", DataType::UInt32, false),
            Field::new("value", input.data_type.clone(), true),
        ])),
        columns: vec![
            GpuColumn {
                data_type: DataType::UInt32,
                chunks: vec![ColumnChunk {
                    data: group_of_row.clone(),
                    validity: None,
                }],
            },
            input.clone(),
        ],
        chunk_rows: inputs.chunk_rows.clone(),
    };
    let keys = [0, 1].map(|column| Key {
        column,
        options: SortOptions::default(),
    });
    let start = Instant::now();
    let (count, _, first) = super::groups::assign_groups(&pairs, &keys, 0)?;
    let first = read_u32s(&ctx.read_many(&[(&first, count as u64 * 4)])?[0]);
    profile::record(Phase::Kernels, start);
    let columns = gather(&pairs, &[0, 1], &first)?;
    let valid = UInt32Array::from_iter_values(
        (0..first.len() as u32).filter(|&p| columns[1].is_valid(p as usize)),
    );
    let pair_group = take(columns[0].as_ref(), &valid, None)?;
    let mut values = take(columns[1].as_ref(), &valid, None)?;
    if values.data_type() != value_type {
        values = cast(&values, value_type)?;
    }
    Ok(State::Distinct {
        groups,
        pair_group: pair_group
            .as_any()
            .downcast_ref::<UInt32Array>()
            .expect("u32 groups")
            .values()
            .to_vec(),
        values,
    })
}

/// Exact float sums (and sums of squares) from their downloaded digits.
fn float_moments(
    f: &FloatDigits,
    groups: usize,
    state: &[u32],
    squares: Option<&[u32]>,
    n: Vec<u64>,
) -> State {
    let d = f.digits as usize;
    let sum = |g: usize| {
        let at = g * (2 * d + 1);
        ExactSum::from_digits(
            &state[at..at + d],
            &state[at + d..at + 2 * d],
            f.lowest,
            state[at + 2 * d],
        )
    };
    let square_sum = |g: usize| {
        let q = f.squares.as_ref().expect("variance has squares");
        let words = squares.expect("variance has squares");
        let d = q.digits as usize;
        let at = g * (d + 1);
        ExactSum::from_digits(&words[at..at + d], &[], q.lowest, words[at + d])
    };
    // Ten million groups are a second of host work on one core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    State::Moments {
        sum: crate::collect_on_threads(groups, threads, sum),
        squares: if squares.is_some() {
            crate::collect_on_threads(groups, threads, square_sum)
        } else {
            Vec::new()
        },
        n,
    }
}
