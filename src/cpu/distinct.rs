//! Distinct on the CPU: the rows' keys numbered in order of first appearance
//! (`group_by::assign_groups`, the column-by-column numbering of `super::groups`), then
//! the kept row of each key picked from the numbering, in input order.
//!
//! With more than one thread and few enough distinct keys (as `group_by::partial`
//! judges groups), contiguous pieces of the rows are numbered each on its own thread,
//! and each piece's candidates (its first rows; its last rows for [`Keep::Last`]) are
//! numbered again in row order: the first (last) candidate of a key is its first (last)
//! row overall, and for [`Keep::None`] a key is unique when its candidates' repeat counts
//! add up to one. One thread's answer, whatever the threads.

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{take, take_record_batch};

use super::group_by;
use super::Threads;
use crate::error::Result;
use crate::keys::Keep;

/// The kept rows of `batch` (one per distinct key of the `keys` columns, or for
/// [`Keep::None`] the rows whose key is unique), ascending.
pub(crate) fn distinct_indices(
    batch: &RecordBatch,
    keys: &[usize],
    keep: Keep,
    threads: Threads,
) -> Result<Vec<u32>> {
    let columns: Vec<ArrayRef> = keys.iter().map(|&k| batch.column(k).clone()).collect();
    let rows = batch.num_rows();
    let pieces = threads.pieces(rows);
    if rows <= threads.chunk_rows()
        || pieces == 1
        || !group_by::estimate_groups(&columns)?.few(pieces, rows)
    {
        let (ids, first) = group_by::assign_groups(&columns)?;
        return Ok(pick(&ids, first, keep));
    }
    let parts = threads.map_pieces(rows, |start, len| {
        let piece: Vec<ArrayRef> = columns.iter().map(|c| c.slice(start, len)).collect();
        let (ids, first) = group_by::assign_groups(&piece)?;
        let repeats = (keep == Keep::None).then(|| repeats(&ids, first.len()));
        let kept = match keep {
            Keep::Last => pick(&ids, first, Keep::Last),
            _ => first,
        };
        let kept: Vec<u32> = kept.into_iter().map(|r| r + start as u32).collect();
        Ok((kept, repeats))
    })?;
    let mut candidates = Vec::new();
    let mut counts = Vec::new();
    for (kept, repeats) in parts {
        candidates.extend(kept);
        counts.extend(repeats.unwrap_or_default());
    }
    let at = UInt32Array::from(candidates);
    let gathered = columns
        .iter()
        .map(|c| take(c.as_ref(), &at, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (ids, first) = group_by::assign_groups(&gathered)?;
    let candidates = at.values();
    Ok(match keep {
        Keep::None => {
            let mut total = vec![0u8; first.len()];
            for (&g, &n) in ids.iter().zip(&counts) {
                total[g as usize] = total[g as usize].saturating_add(n);
            }
            first
                .into_iter()
                .filter(|&f| total[ids[f as usize] as usize] == 1)
                .map(|f| candidates[f as usize])
                .collect()
        }
        _ => pick(&ids, first, keep)
            .into_iter()
            .map(|i| candidates[i as usize])
            .collect(),
    })
}

/// How many rows each of `groups` groups has (of rows in groups `ids`), counted up to 2.
fn repeats(ids: &[u32], groups: usize) -> Vec<u8> {
    let mut seen = vec![0u8; groups];
    for &g in ids {
        let s = &mut seen[g as usize];
        *s = (*s + 1).min(2);
    }
    seen
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
            let seen = repeats(ids, first.len());
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
pub(crate) fn distinct(
    batch: &RecordBatch,
    keys: &[usize],
    keep: Keep,
    threads: Threads,
) -> Result<RecordBatch> {
    let indices = UInt32Array::from(distinct_indices(batch, keys, keep, threads)?);
    Ok(take_record_batch(batch, &indices)?)
}

/// The number of distinct keys.
pub(crate) fn distinct_count(
    batch: &RecordBatch,
    keys: &[usize],
    threads: Threads,
) -> Result<usize> {
    Ok(distinct_indices(batch, keys, Keep::First, threads)?.len())
}
