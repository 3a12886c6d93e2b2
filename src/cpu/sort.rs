//! Sort on the CPU: stable, in arrow's row-format order (`RowConverter`), which is the
//! order the GPU path reproduces word for word.

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::Result;
use crate::gpu::sort::Key;

/// Every row of `batch` encoded by the key columns, in the keys' order.
fn rows(batch: &RecordBatch, keys: &[Key]) -> Result<Rows> {
    let fields = keys
        .iter()
        .map(|k| {
            SortField::new_with_options(
                batch.schema_ref().field(k.column).data_type().clone(),
                k.options,
            )
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let columns: Vec<_> = keys
        .iter()
        .map(|k| batch.column(k.column).clone())
        .collect();
    Ok(converter.convert_columns(&columns)?)
}

/// The row indices of `batch` in key order, ties in input order; the first `limit`.
pub(crate) fn sort_to_indices(
    batch: &RecordBatch,
    keys: &[Key],
    limit: Option<usize>,
) -> Result<UInt32Array> {
    let rows = rows(batch, keys)?;
    let n = batch.num_rows();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let by_key = |a: &u32, b: &u32| {
        rows.row(*a as usize)
            .cmp(&rows.row(*b as usize))
            .then(a.cmp(b))
    };
    match limit {
        Some(k) if k < n => {
            // Top-k: partition around the k-th (ties broken by index, so the choice is the
            // stable one), then order the first k.
            if k > 0 {
                order.select_nth_unstable_by(k - 1, by_key);
            }
            order.truncate(k);
            order.sort_unstable_by(by_key);
        }
        _ => order.sort_unstable_by(by_key),
    }
    Ok(UInt32Array::from(order))
}

/// `batch` sorted by `keys` (the first `limit` rows).
pub(crate) fn sort(batch: &RecordBatch, keys: &[Key], limit: Option<usize>) -> Result<RecordBatch> {
    let indices = sort_to_indices(batch, keys, limit)?;
    Ok(take_record_batch(batch, &indices)?)
}
