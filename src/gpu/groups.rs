//! Hash grouping on the GPU, shared by group-by and distinct: a table with open addressing
//! over the keys' order words (compare-and-swap on slots, grown and rebuilt when it fills,
//! never dropping a row), groups numbered in order of first appearance by a prefix sum over
//! the bitmap of first rows.

use super::column::{ColumnChunk, GpuBatch};
use super::compact;
use super::shader::{self, assemble};
use super::sort::{encode_interleaved, key_kind, Key};
use crate::error::{Error, Result};

/// `batch` in chunks small enough for the hash grouping on `keys`: a chunk's interleaved
/// key words (up to three words per key: a null word, and two for 64-bit keys) and any
/// per-row intermediate of `row_bytes` bytes must each fit the chunk size the columns were
/// cut for (`max_chunk_bytes`, at most one storage binding). Splits chunks on the GPU
/// only where needed (several wide keys over a chunk of 8-byte columns).
pub(crate) fn fit_key_words(batch: &GpuBatch, keys: &[Key], row_bytes: u64) -> Result<GpuBatch> {
    let words: u64 = keys
        .iter()
        .map(|k| {
            2 + key_kind(&batch.columns[k.column].data_type).map_or(1, |(_, wide)| wide as u64)
        })
        .sum();
    let row_bytes = (words * 4).max(row_bytes).max(8);
    batch.rechunked((batch.ctx.summary.max_chunk_bytes / row_bytes) as usize)
}

/// Numbers the groups of chunk `c` of `batch` by `keys`, in order of first appearance:
/// the group count, every row's group (`u32` per row of the chunk) and every group's first
/// row (local to the chunk), on the GPU. Keys are equal exactly when their order words are
/// (arrow's row-format equality: nulls equal, NaN equal NaN, -0.0 apart from 0.0).
pub(crate) fn assign_groups(
    batch: &GpuBatch,
    keys: &[Key],
    c: usize,
) -> Result<(u32, wgpu::Buffer, wgpu::Buffer)> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let insert = ctx.pipeline("group_insert", || assemble(shader::GROUP_INSERT, &[]))?;
    let first_pass = ctx.pipeline("group_first", || assemble(shader::GROUP_FIRST, &[]))?;
    let ids = ctx.pipeline("group_ids", || assemble(shader::GROUP_IDS, &[]))?;
    let mut encoder = ctx.encoder();
    let (words, per_row) = encode_interleaved(batch, keys, c, true, &mut encoder)?;
    // Sized from the input; grown fourfold and rebuilt whenever the groups fill three
    // quarters of it.
    let mut capacity = (rows as u64 / 2).max(256).next_power_of_two();
    let slot_of_row = ctx.storage_zeroed("slot of row", rows as u64 * 4)?;
    let (first, capacity) = loop {
        let owner = ctx.storage_zeroed("hash owners", capacity * 4)?;
        let first = ctx.storage_zeroed("hash first rows", capacity * 4)?;
        let state = ctx.storage_zeroed("hash state", 8)?;
        let params = ctx.params([rows, per_row, capacity as u32, (capacity * 3 / 4) as u32])?;
        let bg = ctx.bind(
            &insert,
            &[&params, &words, &owner, &first, &slot_of_row, &state],
        );
        ctx.dispatch(&mut encoder, &insert, &bg, rows as u64);
        ctx.submit(std::mem::replace(&mut encoder, ctx.encoder()))?;
        let read = ctx.read_many(&[(&state, 8)])?;
        let state: Vec<u32> = bytemuck::pod_collect_to_vec(&read[0]);
        if state[1] == 0 {
            break (first, capacity);
        }
        log::debug!(
            "group_by: {} groups fill a table of {capacity} slots; growing it",
            state[0]
        );
        capacity *= 4;
        if capacity > u32::MAX as u64 / 2 {
            return Err(Error::OutOfMemory(format!(
                "group_by: a hash table of {capacity} slots"
            )));
        }
    };
    let mask_words = rows.div_ceil(32) as u64;
    let is_first = ctx.storage_zeroed("first rows", mask_words * 4)?;
    let params = ctx.params([rows, capacity as u32, 0, 0])?;
    let bg = ctx.bind(&first_pass, &[&params, &first, &is_first]);
    ctx.dispatch(&mut encoder, &first_pass, &bg, capacity);
    let mask = [ColumnChunk {
        data: is_first.clone(),
        validity: None,
    }];
    let offsets = compact::record_offsets(ctx, &mut encoder, &mask, &[rows])?;
    ctx.submit(encoder)?;
    let total = ctx.read_many(&[(&offsets.totals, 4)])?;
    let groups = u32::from_le_bytes(total[0][..4].try_into().expect("4 bytes"));
    let group_of_row = ctx.storage_zeroed("group of row", rows as u64 * 4)?;
    let first_of_group = ctx.storage_zeroed("first row of group", groups as u64 * 4)?;
    let mut encoder = ctx.encoder();
    let params = ctx.params([rows, 0, 0, 0])?;
    let bg = ctx.bind(
        &ids,
        &[
            &params,
            &slot_of_row,
            &first,
            &is_first,
            &offsets.word_offsets[0],
            &group_of_row,
            &first_of_group,
        ],
    );
    ctx.dispatch(&mut encoder, &ids, &bg, rows as u64);
    ctx.submit(encoder)?;
    Ok((groups, group_of_row, first_of_group))
}
