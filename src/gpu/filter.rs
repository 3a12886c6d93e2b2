//! The host side of predicate evaluation and filtering on the GPU.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::BooleanArray;

use super::column::{download_mask, upload_mask, ColumnChunk, GpuBatch};
use super::predicate::{self, Outputs, PredicateKernel, FLAG_DIVIDE_BY_ZERO, FLAG_OVERFLOW};
use super::{compact, GpuContext};
use crate::error::{Error, Result};
use crate::plan::Typed;
use crate::profile::{self, Phase};

/// Checks, before any upload, that `predicate` can run on this adapter.
pub(crate) fn check_predicate(
    ctx: &GpuContext,
    predicate: &Typed,
    nullable: &dyn Fn(usize) -> bool,
) -> Result<()> {
    check_bindings(ctx, &predicate::generate(predicate, nullable)?)
}

/// Checks that `kernel`'s storage buffers fit the adapter's limit.
pub(crate) fn check_bindings(ctx: &GpuContext, kernel: &PredicateKernel) -> Result<()> {
    let outputs = match kernel.outputs {
        Outputs::Validity => 1,
        _ => 2,
    };
    let bindings = outputs
        + kernel
            .columns
            .iter()
            .map(|(_, v)| 1 + *v as u32)
            .sum::<u32>()
        + !kernel.literals.is_empty() as u32
        + kernel.has_flags as u32
        + ctx.params_storage_bindings();
    let limit = ctx.summary.limits.max_storage_buffers_per_shader_stage;
    if bindings > limit {
        return Err(Error::UnsupportedOnGpu {
            operation: "filter",
            reason: format!(
                "the expression needs {bindings} storage buffers; the adapter allows {limit}"
            ),
        });
    }
    Ok(())
}

/// Records `kernel` over chunk `c` of `batch`, writing `outputs` (as `kernel.outputs`
/// says) and OR-ing division errors into `flags`.
pub(crate) fn record_kernel(
    batch: &GpuBatch,
    c: usize,
    kernel: &PredicateKernel,
    outputs: &[&wgpu::Buffer],
    flags: &wgpu::Buffer,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<()> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let pipeline = ctx.pipeline(&kernel.key, || kernel.source.clone())?;
    let params = ctx.params([rows, 0, 0, 0])?;
    let lits = ctx.storage_from_bytes("literals", bytemuck::cast_slice(&kernel.literals))?;
    let mut buffers: Vec<&wgpu::Buffer> = vec![&params];
    buffers.extend(outputs);
    if !kernel.literals.is_empty() {
        buffers.push(&lits);
    }
    if kernel.has_flags {
        buffers.push(flags);
    }
    for (col, valid) in &kernel.columns {
        let chunk = &batch.columns[*col].chunks[c];
        buffers.push(&chunk.data);
        if *valid {
            buffers.push(
                chunk
                    .validity
                    .as_ref()
                    .expect("the kernel binds validity only where it exists"),
            );
        }
    }
    let bg = ctx.bind(&pipeline, &buffers);
    if rows > 0 {
        ctx.dispatch(encoder, &pipeline, &bg, rows as u64);
    }
    Ok(())
}

/// Records the predicate kernel for every chunk; returns the per-chunk (values, validity)
/// masks and the flags buffer, if the kernel has one.
fn record_predicate(
    batch: &GpuBatch,
    predicate: &Typed,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<(Vec<ColumnChunk>, Option<wgpu::Buffer>)> {
    let ctx = &batch.ctx;
    let flags = ctx.storage_zeroed("flags", 4)?;
    let mut masks = Vec::with_capacity(batch.num_chunks());
    for (c, &rows) in batch.chunk_rows.iter().enumerate() {
        let has_nulls = |i: usize| batch.columns[i].chunks[c].validity.is_some();
        let kernel = predicate::generate(predicate, &has_nulls)?;
        let words = rows.div_ceil(32) as u64;
        let data = ctx.storage_zeroed("mask", words * 4)?;
        let validity = ctx.storage_zeroed("mask validity", words * 4)?;
        record_kernel(batch, c, &kernel, &[&data, &validity], &flags, encoder)?;
        masks.push(ColumnChunk {
            data,
            validity: Some(validity),
        });
    }
    Ok((masks, Some(flags)))
}

/// The error a kernel's flags word reports, if any.
pub(crate) fn check_flags(flags: u32) -> Result<()> {
    if flags & FLAG_DIVIDE_BY_ZERO != 0 {
        return Err(Error::DivideByZero);
    }
    if flags & FLAG_OVERFLOW != 0 {
        return Err(Error::ArithmeticOverflow(
            "integer division of MIN by -1".into(),
        ));
    }
    Ok(())
}

pub(crate) fn read_u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}

/// Evaluates `predicate` over every row: the value and validity bitmaps per chunk.
pub(crate) fn evaluate(batch: &GpuBatch, predicate: &Typed) -> Result<BooleanArray> {
    let ctx = &batch.ctx;
    let start = Instant::now();
    let masks = ctx.scoped(|| {
        let mut encoder = ctx.encoder();
        let (masks, flags) = record_predicate(batch, predicate, &mut encoder)?;
        ctx.submit(encoder)?;
        if let Some(flags) = flags {
            check_flags(read_u32s(&ctx.read_many(&[(&flags, 4)])?[0])[0])?;
        }
        Ok(masks)
    })?;
    let start = profile::record(Phase::Kernels, start);
    let out = ctx.scoped(|| download_mask(ctx, &masks, &batch.chunk_rows))?;
    profile::record(Phase::Download, start);
    Ok(out)
}

/// Keeps the rows where `predicate` is true, every column compacted on the GPU.
pub(crate) fn filter(batch: &GpuBatch, predicate: &Typed) -> Result<GpuBatch> {
    compact_batch(batch, |encoder| record_predicate(batch, predicate, encoder))
}

/// Keeps the rows where `mask` is true (null is false), as arrow's `filter_record_batch`.
pub(crate) fn filter_by_mask(batch: &GpuBatch, mask: &BooleanArray) -> Result<GpuBatch> {
    if mask.len() != batch.num_rows() {
        return Err(Error::LengthMismatch {
            what: "filter mask".into(),
            expected: batch.num_rows(),
            actual: mask.len(),
        });
    }
    let start = Instant::now();
    let masks = batch
        .ctx
        .scoped(|| upload_mask(&batch.ctx, mask, &batch.chunk_rows))?;
    profile::record(Phase::Upload, start);
    compact_batch(batch, |_| Ok((masks, None)))
}

fn compact_batch(
    batch: &GpuBatch,
    masks: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<(Vec<ColumnChunk>, Option<wgpu::Buffer>)>,
) -> Result<GpuBatch> {
    let ctx: &Arc<GpuContext> = &batch.ctx;
    let start = Instant::now();
    let out = ctx.scoped(|| {
        let mut encoder = ctx.encoder();
        let (masks, flags) = masks(&mut encoder)?;
        let plan = compact::record_offsets(ctx, &mut encoder, &masks, &batch.chunk_rows)?;
        ctx.queue.submit([encoder.finish()]);
        let mut parts = vec![(&plan.totals, batch.num_chunks() as u64 * 4)];
        if let Some(f) = &flags {
            parts.push((f, 4));
        }
        let read = ctx.read_many(&parts)?;
        if flags.is_some() {
            check_flags(read_u32s(&read[1])[0])?;
        }
        let kept = read_u32s(&read[0]);
        let columns =
            compact::scatter(ctx, &plan, &masks, &batch.chunk_rows, &kept, &batch.columns)?;
        Ok(GpuBatch {
            ctx: ctx.clone(),
            schema: batch.schema.clone(),
            columns,
            chunk_rows: kept.into_iter().filter(|k| *k > 0).collect(),
        })
    })?;
    profile::record(Phase::Kernels, start);
    Ok(out)
}
