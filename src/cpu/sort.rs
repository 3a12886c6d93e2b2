//! Sort on the CPU: stable, in arrow's row-format order, which the GPU path reproduces word
//! for word.
//!
//! Keys whose order-preserving encodings fit 128 bits together (`super::keys::packed`:
//! the same transforms as `shaders/sort_encode.wgsl` and arrow's row format) sort as
//! `(u64 or u128, row)` pairs; other keys (more or wider columns, strings, ...) sort on
//! arrow's `RowConverter` rows. Both break ties by row
//! number, so the sort is stable.

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{take_record_batch, SortOptions};

use super::keys;
use crate::error::Result;
use crate::keys::Key;

/// Row numbers ordered by `(key, row)`: stable; only the first `limit`.
fn order_by<K: Ord + Copy>(keys: impl Iterator<Item = K>, limit: Option<usize>) -> Vec<u32> {
    let mut pairs: Vec<(K, u32)> = keys.zip(0u32..).collect();
    let n = pairs.len();
    match limit {
        Some(k) if k < n => {
            if k > 0 {
                pairs.select_nth_unstable(k - 1);
            }
            pairs.truncate(k);
            pairs.sort_unstable();
        }
        _ => pairs.sort_unstable(),
    }
    pairs.into_iter().map(|(_, i)| i).collect()
}

/// The row indices of `batch` in key order, ties in input order; the first `limit`.
pub(crate) fn sort_to_indices(
    batch: &RecordBatch,
    keys: &[Key],
    limit: Option<usize>,
) -> Result<UInt32Array> {
    let columns: Vec<(&ArrayRef, SortOptions)> = keys
        .iter()
        .map(|k| (batch.column(k.column), k.options))
        .collect();
    let order = match keys::packed(&columns) {
        Some((packed, bits)) if bits <= 64 => order_by(packed.into_iter().map(|k| k as u64), limit),
        Some((packed, _)) => order_by(packed.into_iter(), limit),
        None => order_by(keys::rows(&columns)?.iter(), limit),
    };
    Ok(UInt32Array::from(order))
}

/// `batch` sorted by `keys` (the first `limit` rows).
pub(crate) fn sort(batch: &RecordBatch, keys: &[Key], limit: Option<usize>) -> Result<RecordBatch> {
    let indices = sort_to_indices(batch, keys, limit)?;
    Ok(take_record_batch(batch, &indices)?)
}
