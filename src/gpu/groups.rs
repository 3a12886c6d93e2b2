//! Hash grouping on the GPU, shared by group-by and distinct: a table with open addressing
//! over the keys' order words (compare-and-swap on slots, grown and rebuilt when it fills,
//! never dropping a row), groups numbered in order of first appearance by a prefix sum over
//! the bitmap of first rows.
//!
//! String keys: one string key is hashed over its bytes directly
//! (`shaders/group_keys_strings.wgsl`, a byte comparison on collision); with other keys,
//! each string key first becomes a code per row (the first row holding an equal string, by
//! the same table; `shaders/string_codes.wgsl`), and the codes are grouped as `UInt32` keys.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

use super::column::{ColumnChunk, GpuBatch, GpuColumn, Layout};
use super::compact;
use super::shader::{self, assemble};
use super::sort::{encode_interleaved, key_kind, NullWords};
use super::GpuContext;
use crate::error::{Error, Result};
use crate::keys::Key;

/// `batch` in chunks small enough for the hash grouping on `keys`: a chunk's interleaved
/// key words (per key: a null word where it has nulls, and one word, two for 64-bit keys;
/// a string key is a code word) and any per-row intermediate of `row_bytes` bytes
/// must each fit the chunk size the columns were cut for (`max_chunk_bytes`, at most one
/// storage binding). Splits chunks on the GPU only where needed (several wide keys over a
/// chunk of 8-byte columns).
pub(crate) fn fit_key_words(batch: &GpuBatch, keys: &[Key], row_bytes: u64) -> Result<GpuBatch> {
    let words: u64 = keys
        .iter()
        .map(|k| {
            let column = &batch.columns[k.column];
            let wide = column.layout() != Layout::Strings
                && key_kind(&column.data_type).is_none_or(|(_, wide)| wide);
            // The null word only where the column has nulls, as `encode_interleaved`.
            let nulls = column.chunks.iter().any(|c| c.validity.is_some());
            1 + wide as u64 + nulls as u64
        })
        .sum();
    let row_bytes = (words * 4).max(row_bytes).max(8);
    batch.rechunked((batch.ctx.summary.max_chunk_bytes / row_bytes) as usize)
}

/// What the hash table's rows are compared by.
pub(crate) enum TableKeys {
    /// Interleaved key words, this many per row.
    Words(wgpu::Buffer, u32),
    /// One string column's chunk.
    Strings(ColumnChunk),
}

impl TableKeys {
    /// The `${KEYS}` source that compares rows by these keys, and its pipeline's name.
    pub(crate) fn source(&self) -> (&'static str, &'static str) {
        match self {
            TableKeys::Words(..) => ("words", shader::GROUP_KEYS_WORDS),
            TableKeys::Strings(_) => ("strings", shader::GROUP_KEYS_STRINGS),
        }
    }

    /// The keys' bindings (from binding 1; a string key's validity is bound to the
    /// context's unread buffer where it has none) and the kernel's `words` parameter.
    pub(crate) fn bindings<'a>(&'a self, ctx: &'a GpuContext) -> (Vec<&'a wgpu::Buffer>, u32) {
        match self {
            TableKeys::Words(words, per_row) => (vec![words], *per_row),
            TableKeys::Strings(chunk) => (
                vec![&chunk.data, chunk.validity.as_ref().unwrap_or(&ctx.unread)],
                chunk.validity.is_some() as u32,
            ),
        }
    }
}

/// A table's first try at `rows` rows: sized from the input, grown fourfold and rebuilt
/// whenever the groups fill three quarters of it ([`grown`]).
fn initial_capacity(rows: u32) -> u64 {
    (rows as u64 / 2).max(256).next_power_of_two()
}

/// The capacity after a table of `capacity` slots filled.
fn grown(capacity: u64, groups: u32) -> Result<u64> {
    log::debug!("group_by: {groups} groups fill a table of {capacity} slots; growing it");
    let capacity = capacity * 4;
    if capacity > u32::MAX as u64 / 2 {
        return Err(Error::OutOfMemory(format!(
            "group_by: a hash table of {capacity} slots"
        )));
    }
    Ok(capacity)
}

/// One try at inserting the rows into a table of `capacity` slots, recorded: each slot's
/// first row (as `rows - row`), every row's slot in `slot_of_row`, and the table's state
/// (groups, and non-zero when the groups filled it: the try is then void).
struct Inserted {
    first: wgpu::Buffer,
    state: wgpu::Buffer,
}

/// Records the insert of every one of `rows` rows into a new table of `capacity` slots.
fn record_insert(
    ctx: &GpuContext,
    rows: u32,
    keys: &TableKeys,
    capacity: u64,
    slot_of_row: &wgpu::Buffer,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<Inserted> {
    let (variant, source) = keys.source();
    let insert = ctx.pipeline(&format!("group_insert:{variant}"), || {
        assemble(
            shader::GROUP_INSERT,
            &[("KEYS", source), ("KEY_VALID", "6")],
        )
    })?;
    let owner = ctx.storage_zeroed("hash owners", capacity * 4)?;
    let first = ctx.storage_zeroed("hash first rows", capacity * 4)?;
    let state = ctx.storage_zeroed("hash state", 8)?;
    let (key_buffers, per_row) = keys.bindings(ctx);
    let params = ctx.params([rows, per_row, capacity as u32, (capacity * 3 / 4) as u32])?;
    let mut buffers = vec![&params, key_buffers[0], &owner, &first, slot_of_row, &state];
    buffers.extend(&key_buffers[1..]);
    let bg = ctx.bind(&insert, &buffers);
    ctx.dispatch(encoder, &insert, &bg, rows as u64);
    Ok(Inserted { first, state })
}

/// The table's state as read back: (groups, whether they filled it).
fn filled(state: &[u8]) -> (u32, bool) {
    let state: Vec<u32> = bytemuck::pod_collect_to_vec(state);
    (state[0], state[1] != 0)
}

/// Chunk `c` of `batch` as a batch of its own in which every string column among `keys`
/// is replaced by its codes (`UInt32`, no nulls: each row's first row with an equal
/// string), so the keys group as fixed-width words.
fn with_string_codes(batch: &GpuBatch, keys: &[Key], c: usize) -> Result<GpuBatch> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let codes_stage = ctx.pipeline("string_codes", || assemble(shader::STRING_CODES, &[]))?;
    let mut fields = Vec::with_capacity(batch.columns.len());
    let mut columns = Vec::with_capacity(batch.columns.len());
    for (i, column) in batch.columns.iter().enumerate() {
        let chunk = &column.chunks[c];
        let is_key = keys.iter().any(|k| k.column == i);
        if !is_key || column.layout() != Layout::Strings {
            fields.push(batch.schema.field(i).clone());
            columns.push(GpuColumn {
                data_type: column.data_type.clone(),
                chunks: vec![chunk.clone()],
            });
            continue;
        }
        let keys = TableKeys::Strings(chunk.clone());
        let slot_of_row = ctx.storage_zeroed("slot of row", rows as u64 * 4)?;
        let codes = ctx.storage_zeroed("string codes", rows as u64 * 4)?;
        let params = ctx.params([rows, 0, 0, 0])?;
        let mut capacity = initial_capacity(rows);
        // The codes are recorded with each try and used from the try that held every group.
        loop {
            let mut encoder = ctx.encoder();
            let table = record_insert(ctx, rows, &keys, capacity, &slot_of_row, &mut encoder)?;
            let bg = ctx.bind(&codes_stage, &[&params, &slot_of_row, &table.first, &codes]);
            ctx.dispatch(&mut encoder, &codes_stage, &bg, rows as u64);
            ctx.submit(encoder)?;
            let (groups, full) = filled(&ctx.read_many(&[(&table.state, 8)])?[0]);
            if !full {
                break;
            }
            capacity = grown(capacity, groups)?;
        }
        fields.push(Field::new(
            batch.schema.field(i).name(),
            DataType::UInt32,
            false,
        ));
        columns.push(GpuColumn {
            data_type: DataType::UInt32,
            chunks: vec![ColumnChunk {
                data: codes,
                validity: None,
            }],
        });
    }
    Ok(GpuBatch {
        ctx: ctx.clone(),
        schema: Arc::new(Schema::new(fields)),
        columns,
        chunk_rows: vec![rows],
    })
}

/// The words per row of `key`'s column in chunk `c` when its values can be compared as
/// they are: integers (dates, timestamps, decimals held as i64) of 32 or 64 bits, without
/// a validity bitmap. Floats are encoded (NaN equal NaN whatever its bits).
pub(super) fn raw_words(batch: &GpuBatch, key: &Key, c: usize) -> Option<u32> {
    let column = &batch.columns[key.column];
    if column.chunks[c].validity.is_some() {
        return None;
    }
    match column.data_type {
        DataType::Int32 | DataType::UInt32 | DataType::Date32 => Some(1),
        DataType::Int64 | DataType::UInt64 | DataType::Date64 | DataType::Timestamp(..) => Some(2),
        DataType::Decimal128(p, _) if p <= super::column::MAX_GPU_DECIMAL_PRECISION => Some(2),
        _ => None,
    }
}

/// What the hash table compares the rows of chunk `c` of `batch` by for `keys`: one
/// string column as it is; one integer key of 32 or 64 bits without nulls as its values
/// (equal exactly when the values are), with no pass to encode them; otherwise the keys'
/// interleaved order words (string keys first coded, which waits for the device), their
/// encoding recorded into `encoder`. No keys at all compare as zero words: every row equal.
pub(crate) fn table_keys(
    batch: &GpuBatch,
    keys: &[Key],
    c: usize,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<TableKeys> {
    let is_string = |k: &Key| batch.columns[k.column].layout() == Layout::Strings;
    let raw = match keys {
        [key] => raw_words(batch, key, c),
        _ => None,
    };
    Ok(match (keys, raw) {
        ([], _) => TableKeys::Words(batch.ctx.unread.clone(), 0),
        ([key], _) if is_string(key) => {
            TableKeys::Strings(batch.columns[key.column].chunks[c].clone())
        }
        ([key], Some(per_row)) => {
            TableKeys::Words(batch.columns[key.column].chunks[c].data.clone(), per_row)
        }
        _ if keys.iter().any(is_string) => {
            let coded = with_string_codes(batch, keys, c)?;
            let (words, per_row) =
                encode_interleaved(&coded, keys, 0, NullWords::WhereNulls, encoder)?;
            TableKeys::Words(words, per_row)
        }
        _ => {
            let (words, per_row) =
                encode_interleaved(batch, keys, c, NullWords::WhereNulls, encoder)?;
            TableKeys::Words(words, per_row)
        }
    })
}

/// Numbers the groups of chunk `c` of `batch` by `keys`, in order of first appearance:
/// the group count, every row's group (`u32` per row of the chunk) and every group's first
/// row (local to the chunk), on the GPU. Keys are equal exactly when their order words are
/// (arrow's row-format equality: nulls equal, NaN equal NaN, -0.0 apart from 0.0), and
/// strings when their bytes are.
pub(crate) fn assign_groups(
    batch: &GpuBatch,
    keys: &[Key],
    c: usize,
) -> Result<(u32, wgpu::Buffer, wgpu::Buffer)> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let first_pass = ctx.pipeline("group_first", || assemble(shader::GROUP_FIRST, &[]))?;
    let ids = ctx.pipeline("group_ids", || assemble(shader::GROUP_IDS, &[]))?;
    let mut encoder = ctx.encoder();
    let keys = table_keys(batch, keys, c, &mut encoder)?;
    let slot_of_row = ctx.storage_zeroed("slot of row", rows as u64 * 4)?;
    let mask_words = rows.div_ceil(32) as u64;
    let params = ctx.params([rows, 0, 0, 0])?;
    let mut capacity = initial_capacity(rows);
    // Each try records the insert, the bitmap of first rows and its prefix sums, and reads
    // the table's state and the group count back together: one wait when the table holds
    // every group (the common case), one more each time it has to grow.
    let (first, is_first, offsets, groups) = loop {
        let table = record_insert(ctx, rows, &keys, capacity, &slot_of_row, &mut encoder)?;
        let is_first = ctx.storage_zeroed("first rows", mask_words * 4)?;
        let first_params = ctx.params([rows, capacity as u32, 0, 0])?;
        let bg = ctx.bind(&first_pass, &[&first_params, &table.first, &is_first]);
        ctx.dispatch(&mut encoder, &first_pass, &bg, capacity);
        let mask = [ColumnChunk {
            data: is_first.clone(),
            validity: None,
        }];
        let offsets = compact::record_offsets(ctx, &mut encoder, &mask, &[rows])?;
        ctx.submit(std::mem::replace(&mut encoder, ctx.encoder()))?;
        let read = ctx.read_many(&[(&table.state, 8), (&offsets.totals, 4)])?;
        let (groups, full) = filled(&read[0]);
        if !full {
            let total = u32::from_le_bytes(read[1][..4].try_into().expect("4 bytes"));
            break (table.first, is_first, offsets, total);
        }
        capacity = grown(capacity, groups)?;
    };
    let group_of_row = ctx.storage_zeroed("group of row", rows as u64 * 4)?;
    let first_of_group = ctx.storage_zeroed("first row of group", groups as u64 * 4)?;
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
