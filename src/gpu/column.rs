//! Arrow columns on the GPU: [`GpuBatch`] and [`GpuColumn`], upload and download.
//!
//! A batch is split into chunks of rows, the same for every column, each small enough that
//! its widest column fits one storage binding (see `GpuContext::rows_per_chunk`). In a chunk
//! a column is one buffer in Arrow's own layout from the chunk's first row (fixed-width
//! values; booleans as bits) plus, when it has nulls, a validity bitmap in Arrow's bit
//! layout. Sliced arrays are re-based to bit 0 on upload.

use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::compute::concat;
use arrow::datatypes::{DataType, SchemaRef};

use super::GpuContext;
use crate::error::{Error, Result};

/// How a type's values lie in a GPU buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One bit per value (Boolean).
    Bits,
    /// Fixed-width values of this many bytes.
    Bytes(u32),
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
            _ => return None,
        })
    }

    /// Bytes that `rows` values occupy.
    pub(crate) fn bytes(self, rows: usize) -> u64 {
        match self {
            Layout::Bits => rows.div_ceil(8) as u64,
            Layout::Bytes(w) => rows as u64 * w as u64,
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
        let per_chunk = ctx.rows_per_chunk();
        let rows = batch.num_rows();
        let chunk_rows: Vec<u32> = (0..rows)
            .step_by(per_chunk.max(1))
            .map(|start| (rows - start).min(per_chunk) as u32)
            .collect();
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

    /// Downloads the batch into a `RecordBatch`.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let _op = super::OperationScope::enter();
        let columns = self
            .columns
            .iter()
            .map(|c| download_column(&self.ctx, c, &self.chunk_rows))
            .collect::<Result<Vec<_>>>()?;
        let options =
            arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(self.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
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
                Layout::Bits => {
                    let bits =
                        BooleanBuffer::new(data.buffers()[0].clone(), data.offset(), data.len());
                    rebase_bits(&bits, start, len)
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

fn download_column(ctx: &GpuContext, column: &GpuColumn, chunk_rows: &[u32]) -> Result<ArrayRef> {
    let layout = column.layout();
    let mut parts: Vec<(&wgpu::Buffer, u64)> = Vec::new();
    for (chunk, &rows) in column.chunks.iter().zip(chunk_rows) {
        parts.push((&chunk.data, layout.bytes(rows as usize)));
        if let Some(v) = &chunk.validity {
            parts.push((v, Layout::Bits.bytes(rows as usize)));
        }
    }
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    let arrays = column
        .chunks
        .iter()
        .zip(chunk_rows)
        .map(|(chunk, &rows)| {
            let values = Buffer::from_vec(bytes.next().unwrap_or_default());
            let validity = chunk
                .validity
                .as_ref()
                .map(|_| Buffer::from_vec(bytes.next().unwrap_or_default()));
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
    let array = download_column(ctx, &column, chunk_rows)?;
    Ok(array
        .as_any()
        .downcast_ref::<BooleanArray>()
        .expect("boolean")
        .clone())
}
