//! Distinct on the CPU: the rows' keys numbered in order of first appearance
//! (`group_by::assign_groups`, the column-by-column numbering of `super::groups`), then
//! the kept row of each key picked from the numbering, in input order.

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;

use super::group_by;
use crate::error::Result;
use crate::keys::Keep;

/// The kept rows of `batch` (one per distinct key of the `keys` columns, or for
/// [`Keep::None`] the rows whose key is unique), ascending.
pub(crate) fn distinct_indices(
    batch: &RecordBatch,
    keys: &[usize],
    keep: Keep,
) -> Result<Vec<u32>> {
    let columns: Vec<ArrayRef> = keys.iter().map(|&k| batch.column(k).clone()).collect();
    let (ids, first) = group_by::assign_groups(&columns)?;
    Ok(pick(&ids, first, keep))
}

/// The kept rows from a grouping (every row's group, every group's first row, groups in
/// order of first appearance), ascending.
pub(crate) fn pick(ids: &[u32], first: Vec<u32>, keep: Keep) -> Vec<u32> {
    match keep {
        // The first rows ascend: groups are numbered in order of first appearance.
        Keep::First | Keep::Any => first,
        Keep::Last => {
            let mut last = vec![0u32; first.len()];
            for (row, &g) in ids.iter().enumerate() {
                last[g as usize] = row as u32;
            }
            (0..ids.len() as u32)
                .filter(|&row| last[ids[row as usize] as usize] == row)
                .collect()
        }
        Keep::None => {
            let mut seen = vec![0u8; first.len()];
            for &g in ids {
                let s = &mut seen[g as usize];
                *s = s.saturating_add(1);
            }
            first
                .into_iter()
                .zip(seen)
                .filter(|(_, n)| *n == 1)
                .map(|(row, _)| row)
                .collect()
        }
    }
}

/// `batch`'s kept rows, every column, in input order.
pub(crate) fn distinct(batch: &RecordBatch, keys: &[usize], keep: Keep) -> Result<RecordBatch> {
    let indices = UInt32Array::from(distinct_indices(batch, keys, keep)?);
    Ok(take_record_batch(batch, &indices)?)
}

/// The number of distinct keys.
pub(crate) fn distinct_count(batch: &RecordBatch, keys: &[usize]) -> Result<usize> {
    let columns: Vec<ArrayRef> = keys.iter().map(|&k| batch.column(k).clone()).collect();
    Ok(group_by::assign_groups(&columns)?.1.len())
}
