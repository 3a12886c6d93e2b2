//! Arrow columns on the GPU: [`GpuBatch`] and [`GpuColumn`], upload and download.
//!
//! A batch is split into chunks of rows, the same for every column, each small enough that
//! its widest column fits one storage binding (see `GpuContext::rows_per_chunk`). In a chunk
//! a column is one buffer in Arrow's own layout from the chunk's first row (fixed-width
//! values; booleans as bits) plus, when it has nulls, a validity bitmap in Arrow's bit
//! layout. Sliced arrays are re-based to bit 0 on upload.
//!
//! Strings (`Utf8`, `LargeUtf8`, `Utf8View`) lie in one buffer per chunk: the chunk's
//! `rows + 1` offsets (u32, from 0), then its bytes packed in u32 words, then one spare
//! zero word (so a kernel may read the word after a string's last one). `LargeUtf8` and
//! `Utf8View` are gathered into that layout on upload, and come back as their own type on
//! download. A chunk's rows are cut so that every string column's buffer fits one binding;
//! one string larger than that is [`Error::UnsupportedOnGpu`].

use std::sync::Arc;

use arrow::array::{
    make_array, Array, ArrayRef, AsArray, BooleanArray, GenericStringArray, LargeStringArray,
    OffsetSizeTrait, RecordBatch, StringArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::compute::{cast, concat};
use arrow::datatypes::{DataType, Decimal128Type, SchemaRef};

use super::GpuContext;
use crate::error::{Error, Result};

/// The largest decimal precision the GPU holds: 18 digits fit an i64.
pub(crate) const MAX_GPU_DECIMAL_PRECISION: u8 = 18;

/// How a type's values lie in a GPU buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One bit per value (Boolean).
    Bits,
    /// Fixed-width values of this many bytes.
    Bytes(u32),
    /// Strings: offsets, then bytes, in one buffer (see the module docs).
    Strings,
}

impl Layout {
    /// The layout of `dt`, or `None` for types the GPU path doesn't hold.
    pub(crate) fn of(dt: &DataType) -> Option<Layout> {
        Some(match dt {
            DataType::Boolean => Layout::Bits,
            DataType::Int8 | DataType::UInt8 => Layout::Bytes(1),
            DataType::Int16 | DataType::UInt16 => Layout::Bytes(2),
            DataType::Int32 | DataType::UInt32 | DataType::Float32 | DataType::Date32 => {
                Layout::Bytes(4)
            }
            DataType::Int64
            | DataType::UInt64
            | DataType::Float64
            | DataType::Date64
            | DataType::Timestamp(..) => Layout::Bytes(8),
            // Up to 18 digits, a decimal's unscaled value is an i64: held as one (its scale
            // stays in the type). Wider decimals stay on the CPU.
            DataType::Decimal128(p, _) if *p <= MAX_GPU_DECIMAL_PRECISION => Layout::Bytes(8),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Layout::Strings,
            _ => return None,
        })
    }

    /// Bytes that `rows` values occupy; for strings, with `string_bytes` bytes of values.
    pub(crate) fn bytes(self, rows: usize) -> u64 {
        self.bytes_with(rows, 0)
    }

    /// Bytes that `rows` values occupy, strings holding `string_bytes` bytes in all: the
    /// offsets, the words of bytes and the spare word.
    pub(crate) fn bytes_with(self, rows: usize, string_bytes: u64) -> u64 {
        match self {
            Layout::Bits => rows.div_ceil(8) as u64,
            Layout::Bytes(w) => rows as u64 * w as u64,
            Layout::Strings => (rows as u64 + 1) * 4 + string_bytes.div_ceil(4) * 4 + 4,
        }
    }
}

/// One column's buffers for one chunk.
#[derive(Debug, Clone)]
pub(crate) struct ColumnChunk {
    pub data: wgpu::Buffer,
    pub validity: Option<wgpu::Buffer>,
}

/// A column on the GPU: its type and, per chunk of its batch, a values buffer and (when the
/// chunk has nulls) a validity bitmap.
#[derive(Debug, Clone)]
pub struct GpuColumn {
    pub(crate) data_type: DataType,
    pub(crate) chunks: Vec<ColumnChunk>,
}

impl GpuColumn {
    /// The bytes its chunks' buffers hold on the device (values or offsets and bytes,
    /// validity).
    pub(crate) fn device_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .map(|c| c.data.size() + c.validity.as_ref().map_or(0, |v| v.size()))
            .sum()
    }

    /// The column's Arrow type.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    pub(crate) fn layout(&self) -> Layout {
        Layout::of(&self.data_type).expect("only supported types are uploaded")
    }
}

/// A record batch held on the GPU, so that chained operations upload nothing.
///
/// Make one with [`crate::Engine::upload`]; [`GpuBatch::filter`] returns another
/// `GpuBatch`; [`GpuBatch::to_record_batch`] downloads it.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit, Backend, Engine};
/// # use std::sync::Arc;
/// # use arrow::array::Int64Array;
/// # use arrow::record_batch::RecordBatch;
/// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>())) as _)]).unwrap();
/// if let Ok(engine) = Engine::new(Backend::Gpu) {
///     let resident = engine.upload(&batch).unwrap();
///     let small = resident.filter(&col("x").lt(lit(500))).unwrap();
///     let smaller = small.filter(&col("x").gt_eq(lit(490))).unwrap(); // nothing uploaded
///     assert_eq!(smaller.to_record_batch().unwrap().num_rows(), 10);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct GpuBatch {
    pub(crate) ctx: Arc<GpuContext>,
    pub(crate) schema: SchemaRef,
    pub(crate) columns: Vec<GpuColumn>,
    /// Rows in each chunk.
    pub(crate) chunk_rows: Vec<u32>,
}

impl GpuBatch {
    /// The bytes its buffers hold on the device (values, offsets, validity).
    pub(crate) fn device_bytes(&self) -> u64 {
        self.columns.iter().map(GpuColumn::device_bytes).sum()
    }

    /// The batch's schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.chunk_rows.iter().map(|r| *r as usize).sum()
    }

    /// The number of columns.
    pub fn num_columns(&self) -> usize {
        self.columns.len()
    }

    /// The columns, in schema order.
    pub fn columns(&self) -> &[GpuColumn] {
        &self.columns
    }

    /// How many chunks the rows are split into.
    pub fn num_chunks(&self) -> usize {
        self.chunk_rows.len()
    }

    /// Uploads `batch`, checking every column's type first.
    pub(crate) fn upload(ctx: &Arc<GpuContext>, batch: &RecordBatch) -> Result<GpuBatch> {
        for (field, _) in batch.schema().fields().iter().zip(batch.columns()) {
            if Layout::of(field.data_type()).is_none() {
                return Err(Error::UnsupportedType {
                    operation: "upload",
                    column: field.name().clone(),
                    data_type: field.data_type().clone(),
                    where_: format!(" on the GPU ({})", ctx.summary.name),
                });
            }
        }
        let chunk_rows = chunk_bounds(ctx, batch)?;
        ctx.scoped(|| {
            let columns = batch
                .columns()
                .iter()
                .map(|array| upload_column(ctx, array, &chunk_rows))
                .collect::<Result<Vec<_>>>()?;
            Ok(GpuBatch {
                ctx: ctx.clone(),
                schema: batch.schema(),
                columns,
                chunk_rows: chunk_rows.clone(),
            })
        })
    }

    /// The same batch in chunks of at most `max_rows` rows (rounded down to a multiple of
    /// 32, so every piece starts on a validity word): larger chunks are split by copies on
    /// the GPU, others shared. For kernels whose per-row intermediates (interleaved key
    /// words, 128-bit values) are wider than the columns the chunks were sized for.
    pub(crate) fn rechunked(&self, max_rows: usize) -> Result<GpuBatch> {
        let max_rows = (max_rows / 32 * 32).max(32);
        if self.chunk_rows.iter().all(|&r| r as usize <= max_rows) {
            return Ok(self.clone());
        }
        let ctx = &self.ctx;
        // (source chunk, first row, rows) of each new chunk.
        let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
        for (c, &rows) in self.chunk_rows.iter().enumerate() {
            let rows = rows as usize;
            for start in (0..rows.max(1)).step_by(max_rows) {
                pieces.push((c, start, (rows - start).min(max_rows)));
            }
        }
        let mut encoder = ctx.encoder();
        let mut copy = |src: &wgpu::Buffer, layout: Layout, start: usize, rows: usize| {
            let offset = layout.bytes(start);
            let bytes = layout.bytes(rows).div_ceil(4) * 4;
            let dst = ctx.storage_zeroed("rechunked column", bytes)?;
            let bytes = bytes.min(src.size() - offset);
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(src, offset, &dst, 0, bytes);
            }
            Ok::<_, Error>(dst)
        };
        let mut columns = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let layout = column.layout();
            let mut chunks = Vec::with_capacity(pieces.len());
            for &(c, start, rows) in &pieces {
                let chunk = &column.chunks[c];
                if start == 0 && rows == self.chunk_rows[c] as usize {
                    chunks.push(chunk.clone());
                    continue;
                }
                let data = if layout == Layout::Strings {
                    // Offsets must be rebased: a GPU gather of the piece's rows.
                    let idx: Vec<u32> = (start as u32..(start + rows) as u32).collect();
                    let idx =
                        ctx.storage_from_bytes("rechunked rows", bytemuck::cast_slice(&idx))?;
                    let source = super::strings::Source {
                        data: &chunk.data,
                        base: 0,
                        rows: self.chunk_rows[c],
                    };
                    super::strings::take_strings(ctx, &[source], &idx, rows as u32)?
                } else {
                    copy(&chunk.data, layout, start, rows)?
                };
                chunks.push(ColumnChunk {
                    data,
                    validity: match &chunk.validity {
                        Some(v) => Some(copy(v, Layout::Bits, start, rows)?),
                        None => None,
                    },
                });
            }
            columns.push(GpuColumn {
                data_type: column.data_type.clone(),
                chunks,
            });
        }
        ctx.submit(encoder)?;
        Ok(GpuBatch {
            ctx: ctx.clone(),
            schema: self.schema.clone(),
            columns,
            chunk_rows: pieces.iter().map(|p| p.2 as u32).collect(),
        })
    }

    /// Chunk `c` as a batch of its own, with only `columns` (the buffers are shared, not
    /// copied).
    pub(crate) fn chunk_view(&self, c: usize, columns: &[usize]) -> Result<GpuBatch> {
        Ok(GpuBatch {
            ctx: self.ctx.clone(),
            schema: Arc::new(self.schema.project(columns)?),
            columns: columns
                .iter()
                .map(|&i| GpuColumn {
                    data_type: self.columns[i].data_type.clone(),
                    chunks: vec![self.columns[i].chunks[c].clone()],
                })
                .collect(),
            chunk_rows: vec![self.chunk_rows[c]],
        })
    }

    /// Downloads the batch into a `RecordBatch`.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let columns = self
            .ctx
            .operation(|| download_columns(&self.ctx, &self.columns, &self.chunk_rows))?;
        let options =
            arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(self.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
}

/// The largest buffer a string chunk may take: one binding, and u32 byte positions.
pub(crate) fn max_string_chunk_bytes(ctx: &GpuContext) -> u64 {
    ctx.summary.max_chunk_bytes.min(u32::MAX as u64 & !3)
}

/// Each row's string length in bytes (0 for nulls of a view array), or `None` for
/// non-string arrays.
fn string_lengths(array: &dyn Array) -> Option<Vec<u64>> {
    Some(match array.data_type() {
        DataType::Utf8 => {
            let o = array.as_string::<i32>().value_offsets();
            o.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
        }
        DataType::LargeUtf8 => {
            let o = array.as_string::<i64>().value_offsets();
            o.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
        }
        DataType::Utf8View => {
            let v = array.as_string_view();
            (0..v.len())
                .map(|i| {
                    if v.is_null(i) {
                        0
                    } else {
                        v.value(i).len() as u64
                    }
                })
                .collect()
        }
        _ => return None,
    })
}

/// Rows per chunk for `batch`: `ctx.rows_per_chunk()` rows, fewer where a string column's
/// offsets and bytes would not fit one binding.
fn chunk_bounds(ctx: &GpuContext, batch: &RecordBatch) -> Result<Vec<u32>> {
    let lengths: Vec<(String, Vec<u64>)> = batch
        .columns()
        .iter()
        .zip(batch.schema_ref().fields())
        .filter_map(|(a, f)| string_lengths(a.as_ref()).map(|l| (f.name().clone(), l)))
        .collect();
    cut_chunks(ctx, "upload", batch.num_rows(), &lengths)
}

/// Rows per chunk for `rows` rows: `ctx.rows_per_chunk()` rows, fewer where a string
/// column's offsets and bytes would not fit one binding; `lengths` holds each string
/// column's name and every row's string length. One string too long for a chunk is
/// [`Error::UnsupportedOnGpu`].
pub(crate) fn cut_chunks(
    ctx: &GpuContext,
    operation: &'static str,
    rows: usize,
    lengths: &[(String, Vec<u64>)],
) -> Result<Vec<u32>> {
    let per_chunk = ctx.rows_per_chunk().max(1);
    if lengths.is_empty() {
        return Ok((0..rows)
            .step_by(per_chunk)
            .map(|start| (rows - start).min(per_chunk) as u32)
            .collect());
    }
    let limit = max_string_chunk_bytes(ctx);
    let mut out = Vec::new();
    let mut bytes = vec![0u64; lengths.len()];
    let mut in_chunk = 0usize;
    // Whether the chunk so far (`rows` rows of `bytes` per column) can take row `row`.
    let fits = |rows: usize, bytes: &[u64], row: usize| {
        lengths
            .iter()
            .zip(bytes)
            .all(|((_, l), b)| Layout::Strings.bytes_with(rows + 1, b + l[row]) <= limit)
    };
    for row in 0..rows {
        if in_chunk == per_chunk || (in_chunk > 0 && !fits(in_chunk, &bytes, row)) {
            out.push(in_chunk as u32);
            in_chunk = 0;
            bytes.iter_mut().for_each(|b| *b = 0);
        }
        if in_chunk == 0 && !fits(0, &bytes, row) {
            let (column, l) = lengths
                .iter()
                .find(|(_, l)| Layout::Strings.bytes_with(1, l[row]) > limit)
                .expect("one column does not fit");
            return Err(Error::UnsupportedOnGpu {
                operation,
                reason: format!(
                    "row {row} of column '{column}' holds a string of {} bytes, more than one storage binding ({limit} bytes) holds",
                    l[row]
                ),
            });
        }
        for (b, (_, l)) in bytes.iter_mut().zip(lengths) {
            *b += l[row];
        }
        in_chunk += 1;
    }
    if in_chunk > 0 {
        out.push(in_chunk as u32);
    }
    Ok(out)
}

/// Rows `[start, start + len)` of an offset-based string array: offsets from 0 and bytes.
fn contiguous<O: OffsetSizeTrait>(
    array: &GenericStringArray<O>,
    start: usize,
    len: usize,
    offsets: &mut Vec<u32>,
    bytes: &mut Vec<u8>,
) {
    let o = &array.value_offsets()[start..=start + len];
    let first = o[0].as_usize();
    offsets.extend(o.iter().map(|x| (x.as_usize() - first) as u32));
    bytes.extend_from_slice(&array.value_data()[first..o[len].as_usize()]);
}

/// Rows `[start, start + len)` of a string array in the GPU layout: offsets from 0, the
/// bytes, padded to a word, and the spare word.
fn string_chunk(array: &dyn Array, start: usize, len: usize) -> Vec<u8> {
    let mut offsets: Vec<u32> = Vec::with_capacity(len + 1);
    let mut bytes: Vec<u8> = Vec::new();
    match array.data_type() {
        DataType::Utf8 => contiguous(
            array.as_string::<i32>(),
            start,
            len,
            &mut offsets,
            &mut bytes,
        ),
        DataType::LargeUtf8 => contiguous(
            array.as_string::<i64>(),
            start,
            len,
            &mut offsets,
            &mut bytes,
        ),
        _ => {
            let a = array.as_string_view();
            offsets.push(0);
            for i in start..start + len {
                if a.is_valid(i) {
                    bytes.extend_from_slice(a.value(i).as_bytes());
                }
                offsets.push(bytes.len() as u32);
            }
        }
    }
    let mut out: Vec<u8> =
        Vec::with_capacity(Layout::Strings.bytes_with(len, bytes.len() as u64) as usize);
    out.extend_from_slice(bytemuck::cast_slice(&offsets));
    out.extend_from_slice(&bytes);
    out.resize(
        Layout::Strings.bytes_with(len, bytes.len() as u64) as usize,
        0,
    );
    out
}

/// The `rows + 1` offsets (u32, from 0) of a downloaded string chunk as Arrow's: i32 while
/// the chunk's bytes fit one (`Utf8`), else i64. A chunk of 2 GiB or more of strings, which
/// real adapters' 4 GiB bindings hold, would otherwise wrap to negative i32 offsets.
enum StringOffsets {
    Small(OffsetBuffer<i32>),
    Large(OffsetBuffer<i64>),
}

fn string_offsets(words: &[u8]) -> StringOffsets {
    let raw = words
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    // Offsets never decrease: the last is the largest.
    if raw.clone().next_back().unwrap_or(0) <= i32::MAX as u32 {
        StringOffsets::Small(OffsetBuffer::new(ScalarBuffer::from(
            raw.map(|o| o as i32).collect::<Vec<i32>>(),
        )))
    } else {
        StringOffsets::Large(OffsetBuffer::new(ScalarBuffer::from(
            raw.map(i64::from).collect::<Vec<i64>>(),
        )))
    }
}

/// A string chunk's buffer as downloaded (`rows + 1` offsets, then the bytes) back into an
/// array of type `dt` (an error, not a wrapped offset, where `dt` can't hold its bytes).
fn strings_from_gpu(
    dt: &DataType,
    rows: usize,
    bytes: &[u8],
    validity: Option<Buffer>,
) -> Result<ArrayRef> {
    let start = (rows + 1) * 4;
    let nulls = validity.map(|v| NullBuffer::new(BooleanBuffer::new(v, 0, rows)));
    let strings: ArrayRef = match string_offsets(&bytes[..start]) {
        StringOffsets::Small(offsets) => {
            let end = start + *offsets.last().unwrap_or(&0) as usize;
            let values = Buffer::from(&bytes[start..end]);
            Arc::new(StringArray::try_new(offsets, values, nulls)?)
        }
        StringOffsets::Large(offsets) => {
            let end = start + *offsets.last().unwrap_or(&0) as usize;
            let values = Buffer::from(&bytes[start..end]);
            Arc::new(LargeStringArray::try_new(offsets, values, nulls)?)
        }
    };
    Ok(if strings.data_type() == dt {
        strings
    } else {
        cast(&strings, dt)?
    })
}

/// Bits `[offset, offset + len)` of `bits`, re-based to bit 0.
fn rebase_bits(bits: &BooleanBuffer, start: usize, len: usize) -> Buffer {
    bits.slice(start, len).sliced()
}

fn upload_column(ctx: &GpuContext, array: &ArrayRef, chunk_rows: &[u32]) -> Result<GpuColumn> {
    let data = array.to_data();
    let layout = Layout::of(array.data_type()).expect("checked by the caller");
    let mut start = 0usize;
    let chunks = chunk_rows
        .iter()
        .map(|&len| {
            let len = len as usize;
            let values: Buffer = match layout {
                Layout::Strings => Buffer::from_vec(string_chunk(array.as_ref(), start, len)),
                Layout::Bits => {
                    let bits =
                        BooleanBuffer::new(data.buffers()[0].clone(), data.offset(), data.len());
                    rebase_bits(&bits, start, len)
                }
                Layout::Bytes(_) if matches!(array.data_type(), DataType::Decimal128(..)) => {
                    decimal_as_i64(array, start, len)?
                }
                Layout::Bytes(w) => {
                    let w = w as usize;
                    data.buffers()[0].slice_with_length((data.offset() + start) * w, len * w)
                }
            };
            let validity = array.nulls().and_then(|nulls| {
                let slice = nulls.inner().slice(start, len);
                (slice.count_set_bits() != len).then(|| rebase_bits(nulls.inner(), start, len))
            });
            let chunk = ColumnChunk {
                data: ctx.storage_from_bytes("column", values.as_slice())?,
                validity: validity
                    .map(|v| ctx.storage_from_bytes("validity", v.as_slice()))
                    .transpose()?,
            };
            start += len;
            Ok(chunk)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(GpuColumn {
        data_type: array.data_type().clone(),
        chunks,
    })
}

/// Rows `[start, start + len)` of a Decimal128 column as i64 values: exact for every value
/// its precision (at most 18 digits) allows; a value beyond 64 bits (arrow doesn't check
/// values against the precision) can't go to the GPU.
fn decimal_as_i64(array: &ArrayRef, start: usize, len: usize) -> Result<Buffer> {
    let values = array.as_primitive::<Decimal128Type>().values();
    let mut out = Vec::with_capacity(len);
    for (i, v) in values[start..start + len].iter().enumerate() {
        match i64::try_from(*v) {
            Ok(v) => out.push(v),
            // A null slot's value is anything: it is never read.
            Err(_) if array.is_null(start + i) => out.push(0),
            Err(_) => {
                return Err(Error::UnsupportedOnGpu {
                    operation: "upload",
                    reason: format!(
                        "decimal value {v} of a {} column needs more than 64 bits",
                        array.data_type()
                    ),
                })
            }
        }
    }
    Ok(Buffer::from_vec(out))
}

/// Downloads `columns` (chunked as `chunk_rows`) with one read of every buffer: one host sync
/// for the whole batch (more only where the buffers outgrow the largest staging buffer).
fn download_columns(
    ctx: &GpuContext,
    columns: &[GpuColumn],
    chunk_rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    let parts: Vec<(&wgpu::Buffer, u64)> = columns
        .iter()
        .flat_map(|c| column_parts(c, chunk_rows))
        .collect();
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    columns
        .iter()
        .map(|c| column_from_bytes(c, chunk_rows, &mut bytes))
        .collect()
}

/// The buffers of `column` to read back, with the bytes of each that hold its rows: per
/// chunk, the values, then the validity bitmap where there is one.
pub(crate) fn column_parts<'a>(
    column: &'a GpuColumn,
    chunk_rows: &[u32],
) -> Vec<(&'a wgpu::Buffer, u64)> {
    let layout = column.layout();
    let mut parts = Vec::new();
    for (chunk, &rows) in column.chunks.iter().zip(chunk_rows) {
        let bytes = match layout {
            // Offsets and bytes: the whole buffer, read as its offsets say.
            Layout::Strings => chunk.data.size(),
            _ => layout.bytes(rows as usize),
        };
        parts.push((&chunk.data, bytes));
        if let Some(v) = &chunk.validity {
            parts.push((v, Layout::Bits.bytes(rows as usize)));
        }
    }
    parts
}

/// `column` as an Arrow array, from its buffers as read back (in [`column_parts`]' order).
pub(crate) fn column_from_bytes(
    column: &GpuColumn,
    chunk_rows: &[u32],
    bytes: &mut impl Iterator<Item = Vec<u8>>,
) -> Result<ArrayRef> {
    let layout = column.layout();
    let arrays = column
        .chunks
        .iter()
        .zip(chunk_rows)
        .map(|(chunk, &rows)| {
            let values = bytes.next().unwrap_or_default();
            let validity = chunk
                .validity
                .as_ref()
                .map(|_| Buffer::from_vec(bytes.next().unwrap_or_default()));
            if layout == Layout::Strings {
                return strings_from_gpu(&column.data_type, rows as usize, &values, validity);
            }
            let values = match column.data_type {
                // Held as i64: widened back to arrow's i128 values.
                DataType::Decimal128(..) => Buffer::from_vec(
                    bytemuck::pod_collect_to_vec::<u8, i64>(&values)
                        .into_iter()
                        .map(i128::from)
                        .collect::<Vec<_>>(),
                ),
                _ => Buffer::from_vec(values),
            };
            let data = arrow::array::ArrayData::builder(column.data_type.clone())
                .len(rows as usize)
                .add_buffer(values)
                .null_bit_buffer(validity)
                .align_buffers(true)
                .build()?;
            Ok(make_array(data))
        })
        .collect::<Result<Vec<_>>>()?;
    match arrays.len() {
        0 => Ok(arrow::array::new_empty_array(&column.data_type)),
        1 => Ok(arrays.into_iter().next().expect("one array")),
        _ => {
            let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            Ok(concat(&refs)?)
        }
    }
}

/// Uploads a boolean mask split like a batch's chunks: (values, validity) per chunk.
pub(crate) fn upload_mask(
    ctx: &GpuContext,
    mask: &BooleanArray,
    chunk_rows: &[u32],
) -> Result<Vec<ColumnChunk>> {
    let array: ArrayRef = Arc::new(mask.clone());
    Ok(upload_column(ctx, &array, chunk_rows)?.chunks)
}

/// Downloads per-chunk masks into one `BooleanArray`.
pub(crate) fn download_mask(
    ctx: &GpuContext,
    masks: &[ColumnChunk],
    chunk_rows: &[u32],
) -> Result<BooleanArray> {
    let column = GpuColumn {
        data_type: DataType::Boolean,
        chunks: masks.to_vec(),
    };
    let array = download_columns(ctx, std::slice::from_ref(&column), chunk_rows)?
        .pop()
        .expect("one column");
    Ok(array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("boolean")
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(offsets: &[u32]) -> Vec<u8> {
        offsets.iter().flat_map(|o| o.to_le_bytes()).collect()
    }

    /// Offsets past i32::MAX (a string chunk of 2 GiB or more) become i64 offsets, not
    /// negative i32 ones; below it they stay i32.
    #[test]
    fn string_offsets_past_two_gib_are_large() {
        let big = [0, 5, 1 << 31, u32::MAX];
        match string_offsets(&words(&big)) {
            StringOffsets::Large(o) => {
                assert_eq!(o.as_ref(), &[0i64, 5, 1 << 31, u32::MAX as i64]);
            }
            StringOffsets::Small(o) => panic!("wrapped to i32: {o:?}"),
        }
        let edge = [0, 7, i32::MAX as u32];
        match string_offsets(&words(&edge)) {
            StringOffsets::Small(o) => assert_eq!(o.as_ref(), &[0, 7, i32::MAX]),
            StringOffsets::Large(_) => panic!("i32::MAX fits an i32 offset"),
        }
    }

    /// A chunk whose offsets need i64, downloaded as `Utf8`, is an error, never a panic or
    /// a wrapped array; as `LargeUtf8` it is the strings. (The offsets are real; the bytes
    /// are 2 GiB + 3 of zeros in a sparse allocation.)
    #[test]
    fn a_two_gib_string_chunk_downloads_or_errs() {
        let len = (1usize << 31) + 3;
        let mut bytes = vec![0u8; 4 * 3 + len];
        bytes[..12].copy_from_slice(&words(&[0, 3, len as u32]));
        let large = strings_from_gpu(&DataType::LargeUtf8, 2, &bytes, None).unwrap();
        let large = large.as_string::<i64>();
        assert_eq!(large.value_length(0), 3);
        assert_eq!(large.value_length(1), len as i64 - 3);
        assert!(strings_from_gpu(&DataType::Utf8, 2, &bytes, None).is_err());
    }
}
