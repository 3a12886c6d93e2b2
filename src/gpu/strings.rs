//! String columns on the GPU: the gather (take) that moves strings by row indices, used by
//! compaction, distinct, the group keys' values and the sort's payload columns.
//!
//! A gather is three stages: each output row's length (`shaders/string_take_lengths.wgsl`),
//! then their exclusive prefix sum in place (`super::scan`), which is the output's offsets,
//! its total coming back to size the output; then one invocation per output word copies
//! offsets and bytes (`shaders/string_take_copy.wgsl`). An output built from several input
//! chunks runs the length and copy stages once per input chunk, each for its own rows.

use super::column::{max_string_chunk_bytes, Layout};
use super::scan::record_exclusive_scan;
use super::shader::{self, assemble};
use super::GpuContext;
use crate::error::{Error, Result};

/// One input chunk of a gather: its string buffer, its first row (global, as the indices
/// count) and its row count.
pub(crate) struct Source<'a> {
    pub data: &'a wgpu::Buffer,
    pub base: u32,
    pub rows: u32,
}

/// The strings at `n` global row indices `idx` (on the GPU) of the chunks `sources`, as a
/// new string buffer. An output larger than one binding is [`Error::UnsupportedOnGpu`].
pub(crate) fn take_strings(
    ctx: &GpuContext,
    sources: &[Source],
    idx: &wgpu::Buffer,
    n: u32,
) -> Result<wgpu::Buffer> {
    if n == 0 {
        return ctx.storage_zeroed("strings", Layout::Strings.bytes_with(0, 0));
    }
    let lengths_stage = ctx.pipeline("string_take_lengths", || {
        assemble(shader::STRING_TAKE_LENGTHS, &[])
    })?;
    let copy = ctx.pipeline("string_take_copy", || {
        assemble(shader::STRING_TAKE_COPY, &[])
    })?;
    // rows + 1 lengths, the last 0: scanned in place, they are the output's offsets, the
    // last one the bytes in all.
    let count = n + 1;
    let offsets = ctx.storage_zeroed("string offsets", count as u64 * 4)?;
    let total = ctx.storage_zeroed("string total", 4)?;
    let mut encoder = ctx.encoder();
    let mut source_params = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter().enumerate() {
        let params = ctx.params([n, s.base, s.rows, (i == 0) as u32])?;
        if s.rows > 0 {
            let bg = ctx.bind(&lengths_stage, &[&params, s.data, idx, &offsets]);
            ctx.dispatch(&mut encoder, &lengths_stage, &bg, n as u64);
        }
        source_params.push(params);
    }
    record_exclusive_scan(ctx, &mut encoder, &offsets, count, &total, 0)?;
    ctx.submit(encoder)?;
    let read = ctx.read_many(&[(&total, 4)])?;
    let bytes = u32::from_le_bytes(read[0][..4].try_into().expect("4 bytes")) as u64;
    let size = Layout::Strings.bytes_with(n as usize, bytes);
    let limit = max_string_chunk_bytes(ctx);
    if size > limit {
        return Err(Error::UnsupportedOnGpu {
            operation: "take",
            reason: format!(
                "{n} strings of {bytes} bytes in all need {size} bytes, more than one storage binding ({limit} bytes)"
            ),
        });
    }
    let dst = ctx.storage_zeroed("strings", size)?;
    let mut encoder = ctx.encoder();
    for (s, params) in sources.iter().zip(&source_params) {
        // Offsets are written by the first dispatch, even from an empty chunk.
        let bg = ctx.bind(&copy, &[params, s.data, idx, &offsets, &dst]);
        ctx.dispatch(&mut encoder, &copy, &bg, size / 4);
    }
    ctx.submit(encoder)?;
    Ok(dst)
}
