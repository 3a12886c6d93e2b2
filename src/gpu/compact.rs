//! Stream compaction: keep the rows whose mask bit is set, in order, in every column.
//!
//! Reduce-then-scan in four stages (`shaders/compact_*.wgsl`), per chunk: count kept rows per
//! block of mask words; scan the block counts (`super::scan`); turn them into per-word
//! output offsets; scatter each column's kept values. No workgroup waits on another, so it
//! is correct on every WebGPU adapter. Chunks are independent: chunk c of the output holds
//! the kept rows of chunk c of the input. String columns are gathered instead
//! (`super::strings`), by the kept rows' indices (`distinct_scatter.wgsl` over the mask).

use super::column::{ColumnChunk, GpuColumn, Layout};
use super::scan::record_exclusive_scan;
use super::shader::{self, assemble};
use super::{GpuContext, WORKGROUP_SIZE};
use crate::error::Result;

/// The offsets recorded for a compaction, waiting for the kept counts to be read back.
pub(crate) struct CompactPlan {
    params: Vec<wgpu::Buffer>,
    /// Per chunk: for each mask word, how many kept rows come before it.
    pub word_offsets: Vec<wgpu::Buffer>,
    /// One u32 per chunk: how many rows it keeps.
    pub totals: wgpu::Buffer,
}

/// Records stages 1 to 3 for every chunk into `encoder`.
pub(crate) fn record_offsets(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    masks: &[ColumnChunk],
    chunk_rows: &[u32],
) -> Result<CompactPlan> {
    let count = ctx.pipeline("compact_count", || assemble(shader::COMPACT_COUNT, &[]))?;
    let offsets = ctx.pipeline("compact_offsets", || assemble(shader::COMPACT_OFFSETS, &[]))?;
    let totals = ctx.storage_zeroed("totals", chunk_rows.len() as u64 * 4)?;
    let mut plan = CompactPlan {
        params: Vec::new(),
        word_offsets: Vec::new(),
        totals,
    };
    for (slot, (mask, &rows)) in masks.iter().zip(chunk_rows).enumerate() {
        let words = rows.div_ceil(32);
        let blocks = words.div_ceil(WORKGROUP_SIZE);
        let params = ctx.params([rows, words, mask.validity.is_some() as u32, 0])?;
        let valid = mask.validity.as_ref().unwrap_or(&ctx.unread);
        let block_counts = ctx.storage_zeroed("block counts", blocks as u64 * 4)?;
        let word_offsets = ctx.storage_zeroed("word offsets", words as u64 * 4)?;
        if rows > 0 {
            let bg = ctx.bind(&count, &[&params, &mask.data, valid, &block_counts]);
            ctx.dispatch(encoder, &count, &bg, words as u64);
            record_exclusive_scan(
                ctx,
                encoder,
                &block_counts,
                blocks,
                &plan.totals,
                slot as u32,
            )?;
            let bg = ctx.bind(
                &offsets,
                &[&params, &mask.data, valid, &block_counts, &word_offsets],
            );
            ctx.dispatch(encoder, &offsets, &bg, words as u64);
        }
        plan.params.push(params);
        plan.word_offsets.push(word_offsets);
    }
    Ok(plan)
}

/// Records stage 4 for row indices: the kept rows of one chunk of `rows` rows (`mask`'s
/// bits, and its validity's where it has one), in row order, into a new buffer of `kept`
/// u32s (`shaders/distinct_scatter.wgsl`), after [`record_offsets`] gave `word_offsets`.
pub(crate) fn record_kept_rows(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    mask: &ColumnChunk,
    rows: u32,
    word_offsets: &wgpu::Buffer,
    kept: u32,
) -> Result<wgpu::Buffer> {
    let pipeline = ctx.pipeline("distinct_scatter", || {
        assemble(shader::DISTINCT_SCATTER, &[])
    })?;
    let indices = ctx.storage_zeroed("kept rows", kept as u64 * 4)?;
    let params = ctx.params([rows, rows.div_ceil(32), mask.validity.is_some() as u32, 0])?;
    let valid = mask.validity.as_ref().unwrap_or(&ctx.unread);
    let bg = ctx.bind(
        &pipeline,
        &[&params, &mask.data, valid, word_offsets, &indices],
    );
    ctx.dispatch(encoder, &pipeline, &bg, rows as u64);
    Ok(indices)
}

/// The WGSL types and the store statement of stage 4 for a layout.
fn scatter_variant(layout: Layout) -> (&'static str, [(&'static str, &'static str); 3]) {
    let atomic = "array<atomic<u32>>";
    let words = "array<u32>";
    match layout {
        Layout::Bits => ("bits", [
            ("SRC", words),
            ("DST", atomic),
            ("STORE", "if (((src[row >> 5u] >> (row & 31u)) & 1u) != 0u) { atomicOr(&dst[o >> 5u], 1u << (o & 31u)); }"),
        ]),
        Layout::Bytes(1) => ("b8", [
            ("SRC", words),
            ("DST", atomic),
            ("STORE", "let v = (src[row >> 2u] >> ((row & 3u) * 8u)) & 0xffu; atomicOr(&dst[o >> 2u], v << ((o & 3u) * 8u));"),
        ]),
        Layout::Bytes(2) => ("b16", [
            ("SRC", words),
            ("DST", atomic),
            ("STORE", "let v = (src[row >> 1u] >> ((row & 1u) * 16u)) & 0xffffu; atomicOr(&dst[o >> 1u], v << ((o & 1u) * 16u));"),
        ]),
        Layout::Bytes(4) => ("b32", [("SRC", words), ("DST", words), ("STORE", "dst[o] = src[row];")]),
        Layout::Strings => unreachable!("strings are gathered, not scattered"),
        Layout::Bytes(_) => ("b64", [
            ("SRC", "array<vec2<u32>>"),
            ("DST", "array<vec2<u32>>"),
            ("STORE", "dst[o] = src[row];"),
        ]),
    }
}

/// Records stage 4 for every column and submits; `kept[c]` is chunk c's kept row count.
/// Chunks that keep nothing are left out of the result.
pub(crate) fn scatter(
    ctx: &GpuContext,
    plan: &CompactPlan,
    masks: &[ColumnChunk],
    chunk_rows: &[u32],
    kept: &[u32],
    columns: &[GpuColumn],
) -> Result<Vec<GpuColumn>> {
    let mut encoder = ctx.encoder();
    let mut scatter_one = |layout: Layout, src: &wgpu::Buffer, c: usize| -> Result<wgpu::Buffer> {
        let (name, defs) = scatter_variant(layout);
        let pipeline = ctx.pipeline(&format!("compact_scatter:{name}"), || {
            assemble(shader::COMPACT_SCATTER, &defs)
        })?;
        let dst = ctx.storage_zeroed("compacted", layout.bytes(kept[c] as usize))?;
        let mask = &masks[c];
        let valid = mask.validity.as_ref().unwrap_or(&ctx.unread);
        let bg = ctx.bind(
            &pipeline,
            &[
                &plan.params[c],
                &mask.data,
                valid,
                &plan.word_offsets[c],
                src,
                &dst,
            ],
        );
        ctx.dispatch(&mut encoder, &pipeline, &bg, chunk_rows[c] as u64);
        Ok(dst)
    };
    // Per chunk, the kept rows' indices, made for the first string column that needs them.
    let mut kept_rows: Vec<Option<wgpu::Buffer>> = vec![None; chunk_rows.len()];
    let mut kept_indices = |c: usize| -> Result<wgpu::Buffer> {
        if let Some(b) = &kept_rows[c] {
            return Ok(b.clone());
        }
        let mut encoder = ctx.encoder();
        let indices = record_kept_rows(
            ctx,
            &mut encoder,
            &masks[c],
            chunk_rows[c],
            &plan.word_offsets[c],
            kept[c],
        )?;
        ctx.submit(encoder)?;
        kept_rows[c] = Some(indices.clone());
        Ok(indices)
    };
    let mut out = Vec::with_capacity(columns.len());
    for column in columns {
        let layout = column.layout();
        let mut chunks = Vec::with_capacity(column.chunks.len());
        for (c, chunk) in column.chunks.iter().enumerate() {
            if kept[c] == 0 {
                continue; // the output drops empty chunks
            }
            if kept[c] == chunk_rows[c] {
                chunks.push(chunk.clone()); // every row kept: share the buffers
                continue;
            }
            let data = if layout == Layout::Strings {
                let source = super::strings::Source {
                    data: &chunk.data,
                    base: 0,
                    rows: chunk_rows[c],
                };
                super::strings::take_strings(ctx, &[source], &kept_indices(c)?, kept[c])?
            } else {
                scatter_one(layout, &chunk.data, c)?
            };
            let validity = match &chunk.validity {
                Some(v) => Some(scatter_one(Layout::Bits, v, c)?),
                None => None,
            };
            chunks.push(ColumnChunk { data, validity });
        }
        out.push(GpuColumn {
            data_type: column.data_type.clone(),
            chunks,
        });
    }
    ctx.submit(encoder)?;
    Ok(out)
}
