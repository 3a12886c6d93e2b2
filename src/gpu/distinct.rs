//! The host side of distinct on the GPU.
//!
//! Per chunk, the group-by's hash grouping (`groups::assign_groups`) numbers the keys in
//! order of first appearance and gives every key's first row; those ascend, so they are
//! already the answer for keep first (and any). Keep last and keep none take every key's
//! last row (`shaders/distinct_last.wgsl`, an atomicMax per row), mark the kept rows in a
//! bitmap (`distinct_mark.wgsl`: the last row, or the first row when it is also the last),
//! and compact the bitmap into row indices in input order (`compact::record_offsets`, then
//! `distinct_scatter.wgsl`). `distinct` gathers every column by those indices
//! (`sort::take`).
//!
//! A batch of more than one chunk is grouped chunk by chunk on the GPU; each chunk's distinct
//! keys (one candidate row per key and chunk, with its first and last row there) are
//! gathered on the GPU, downloaded and grouped again on the CPU by the CPU path's own hash
//! grouping. Candidates come in order of their first rows, so the merged groups are numbered
//! in order of first appearance too. The kept rows are then gathered chunk by chunk (each
//! input chunk's kept rows make one output chunk), so no gather reads more than one chunk.

use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;

use super::column::{ColumnChunk, GpuBatch, GpuColumn};
use super::compact;
use super::groups::{assign_groups, fit_key_words};
use super::shader::{self, assemble};
use super::sort::take;
use crate::cpu;
use crate::error::Result;
use crate::keys::Keep;
use crate::keys::Key;
use crate::profile::{self, Phase};

/// `shaders/distinct_mark.wgsl`'s modes.
const MODE_LAST: u32 = 0;
const MODE_NONE: u32 = 1;

/// The kept rows' global indices, ascending.
enum Kept {
    /// On the GPU (a batch of one chunk): the buffer and how many indices it holds.
    Device(wgpu::Buffer, u32),
    /// On the host (merged from several chunks).
    Host(Vec<u32>),
}

/// One chunk's groups on the GPU: how many, every group's first row and, when asked for,
/// its last row (both local to the chunk).
struct ChunkGroups {
    groups: u32,
    first: wgpu::Buffer,
    last: Option<wgpu::Buffer>,
}

/// Groups chunk `c` by `keys`, and finds every group's last row when `last` is set.
fn group_chunk(batch: &GpuBatch, keys: &[Key], c: usize, last: bool) -> Result<ChunkGroups> {
    let ctx = &batch.ctx;
    let (groups, group_of_row, first) = assign_groups(batch, keys, c)?;
    let last = if last {
        let pipeline = ctx.pipeline("distinct_last", || assemble(shader::DISTINCT_LAST, &[]))?;
        let last_of_group = ctx.storage_zeroed("last row of group", groups as u64 * 4)?;
        let params = ctx.params([batch.chunk_rows[c], 0, 0, 0])?;
        let bg = ctx.bind(&pipeline, &[&params, &group_of_row, &last_of_group]);
        let mut encoder = ctx.encoder();
        ctx.dispatch(&mut encoder, &pipeline, &bg, batch.chunk_rows[c] as u64);
        ctx.submit(encoder)?;
        Some(last_of_group)
    } else {
        None
    };
    Ok(ChunkGroups {
        groups,
        first,
        last,
    })
}

/// The kept rows of a batch of one chunk, on the GPU.
fn kept_in_one_chunk(batch: &GpuBatch, keys: &[Key], keep: Keep) -> Result<Kept> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[0];
    let mode = match keep {
        Keep::First | Keep::Any => {
            let g = group_chunk(batch, keys, 0, false)?;
            return Ok(Kept::Device(g.first, g.groups));
        }
        Keep::Last => MODE_LAST,
        Keep::None => MODE_NONE,
    };
    let g = group_chunk(batch, keys, 0, true)?;
    let last = g.last.expect("asked for");
    let mark = ctx.pipeline("distinct_mark", || assemble(shader::DISTINCT_MARK, &[]))?;
    let words = rows.div_ceil(32);
    let kept = ctx.storage_zeroed("kept rows", words as u64 * 4)?;
    let mut encoder = ctx.encoder();
    let params = ctx.params([g.groups, mode, 0, 0])?;
    let bg = ctx.bind(&mark, &[&params, &g.first, &last, &kept]);
    ctx.dispatch(&mut encoder, &mark, &bg, g.groups as u64);
    let masks = [ColumnChunk {
        data: kept.clone(),
        validity: None,
    }];
    let offsets = compact::record_offsets(ctx, &mut encoder, &masks, &[rows])?;
    ctx.submit(encoder)?;
    let total = ctx.read_many(&[(&offsets.totals, 4)])?;
    let n = u32::from_le_bytes(total[0][..4].try_into().expect("4 bytes"));
    let mut encoder = ctx.encoder();
    let indices = compact::record_kept_rows(
        ctx,
        &mut encoder,
        &masks[0],
        rows,
        &offsets.word_offsets[0],
        n,
    )?;
    ctx.submit(encoder)?;
    Ok(Kept::Device(indices, n))
}

/// Every chunk's distinct keys merged on the CPU: the kept rows (ascending) and the number
/// of distinct keys.
fn merge_chunks(batch: &GpuBatch, keys: &[Key], keep: Keep) -> Result<(Vec<u32>, usize)> {
    let ctx = &batch.ctx;
    let with_last = matches!(keep, Keep::Last | Keep::None);
    let key_columns: Vec<usize> = keys.iter().map(|k| k.column).collect();
    // Every chunk's candidates: the global first and last rows of each of its keys, and
    // the keys themselves (gathered on the GPU at the first rows).
    let mut first: Vec<u32> = Vec::new();
    let mut last: Vec<u32> = Vec::new();
    let mut candidates: Vec<RecordBatch> = Vec::with_capacity(batch.num_chunks());
    let mut base = 0u32;
    for c in 0..batch.num_chunks() {
        let g = group_chunk(batch, keys, c, with_last)?;
        let view = batch.chunk_view(c, &key_columns)?;
        candidates.push(take(&view, &[(g.first.clone(), g.groups)])?.to_record_batch()?);
        let bytes = g.groups as u64 * 4;
        let mut parts = vec![(&g.first, bytes)];
        if let Some(l) = &g.last {
            parts.push((l, bytes));
        }
        let read = ctx.read_many(&parts)?;
        let global = |b: &[u8]| -> Vec<u32> {
            bytemuck::pod_collect_to_vec::<u8, u32>(b)
                .into_iter()
                .map(|r| r + base)
                .collect()
        };
        first.extend(global(&read[0]));
        if with_last {
            last.extend(global(&read[1]));
        }
        base += batch.chunk_rows[c];
    }
    let candidates = concat_batches(&candidates[0].schema(), &candidates)?;
    let (ids, firsts) = cpu::group_by::assign_groups(candidates.columns())?;
    let distinct = firsts.len();
    let kept = match keep {
        // A key's first candidate holds its first row; the firsts ascend.
        Keep::First | Keep::Any => firsts.iter().map(|&i| first[i as usize]).collect(),
        Keep::Last => {
            // A later chunk's candidate overwrites an earlier one's.
            let mut last_of = vec![0u32; distinct];
            for (i, &g) in ids.iter().enumerate() {
                last_of[g as usize] = last[i];
            }
            last_of.sort_unstable();
            last_of
        }
        Keep::None => {
            let mut chunks_with = vec![0u8; distinct];
            for &g in &ids {
                let n = &mut chunks_with[g as usize];
                *n = n.saturating_add(1);
            }
            firsts
                .iter()
                .zip(&chunks_with)
                .filter(|&(&i, &n)| n == 1 && first[i as usize] == last[i as usize])
                .map(|(&i, _)| first[i as usize])
                .collect()
        }
    };
    Ok((kept, distinct))
}

/// Rows `kept` (global, ascending) of every column of `batch`, gathered on the GPU chunk by
/// chunk: output chunk i holds the kept rows of one input chunk, so each gather reads one
/// chunk.
fn take_by_chunk(batch: &GpuBatch, kept: &[u32]) -> Result<GpuBatch> {
    let ctx = &batch.ctx;
    let all: Vec<usize> = (0..batch.num_columns()).collect();
    let mut out = GpuBatch {
        ctx: ctx.clone(),
        schema: batch.schema.clone(),
        columns: batch
            .columns
            .iter()
            .map(|c| GpuColumn {
                data_type: c.data_type.clone(),
                chunks: Vec::new(),
            })
            .collect(),
        chunk_rows: Vec::new(),
    };
    let mut rest = kept;
    let mut base = 0u32;
    for c in 0..batch.num_chunks() {
        let end = base + batch.chunk_rows[c];
        let n = rest.partition_point(|&r| r < end);
        let (here, later) = rest.split_at(n);
        rest = later;
        if !here.is_empty() {
            let local: Vec<u32> = here.iter().map(|r| r - base).collect();
            let idx = ctx.storage_from_bytes("distinct indices", bytemuck::cast_slice(&local))?;
            let part = take(&batch.chunk_view(c, &all)?, &[(idx, here.len() as u32)])?;
            for (column, taken) in out.columns.iter_mut().zip(part.columns) {
                column.chunks.extend(taken.chunks);
            }
            out.chunk_rows.push(here.len() as u32);
        }
        base = end;
    }
    Ok(out)
}

fn kept_rows(batch: &GpuBatch, keys: &[Key], keep: Keep) -> Result<Kept> {
    let start = Instant::now();
    let out = batch.ctx.scoped(|| {
        // Several wide keys may need smaller chunks; then the rows come back as indices
        // (Kept::Host), which hold for `batch` too.
        let batch = &fit_key_words(batch, keys, 8)?;
        Ok(if batch.num_rows() == 0 {
            Kept::Host(Vec::new())
        } else if batch.num_chunks() == 1 {
            kept_in_one_chunk(batch, keys, keep)?
        } else {
            Kept::Host(merge_chunks(batch, keys, keep)?.0)
        })
    })?;
    profile::record(Phase::Kernels, start);
    Ok(out)
}

/// The rows of `batch` kept by `keep` on `keys`, every column gathered on the GPU.
pub(crate) fn distinct_batch(batch: &GpuBatch, keys: &[Key], keep: Keep) -> Result<GpuBatch> {
    let out_chunks = match kept_rows(batch, keys, keep)? {
        Kept::Device(_, 0) => Vec::new(),
        Kept::Device(indices, n) => vec![(indices, n)],
        Kept::Host(rows) => return batch.ctx.scoped(|| take_by_chunk(batch, &rows)),
    };
    take(batch, &out_chunks)
}

/// The indices of the rows of `batch` kept by `keep` on `keys`, ascending.
pub(crate) fn distinct_indices(batch: &GpuBatch, keys: &[Key], keep: Keep) -> Result<Vec<u32>> {
    match kept_rows(batch, keys, keep)? {
        Kept::Device(indices, n) => {
            let start = Instant::now();
            let bytes = batch
                .ctx
                .scoped(|| batch.ctx.read_many(&[(&indices, n as u64 * 4)]))?;
            profile::record(Phase::Download, start);
            Ok(bytemuck::pod_collect_to_vec(&bytes[0]))
        }
        Kept::Host(rows) => Ok(rows),
    }
}

/// The number of distinct keys of `batch`.
pub(crate) fn distinct_count(batch: &GpuBatch, keys: &[Key]) -> Result<usize> {
    let start = Instant::now();
    let out = batch.ctx.scoped(|| {
        let batch = &fit_key_words(batch, keys, 8)?;
        Ok(if batch.num_rows() == 0 {
            0
        } else if batch.num_chunks() == 1 {
            assign_groups(batch, keys, 0)?.0 as usize
        } else {
            merge_chunks(batch, keys, Keep::First)?.1
        })
    })?;
    profile::record(Phase::Kernels, start);
    Ok(out)
}
