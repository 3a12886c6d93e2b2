//! What the backends share about keys, in a place neither owns: a resolved sort key, and
//! which row of each distinct key to keep. The CPU and GPU paths both take them; the API
//! modules (`sort`, `distinct`) resolve names into them.

use arrow::compute::SortOptions;

/// A resolved sort key: a column of the batch and its options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub column: usize,
    pub options: SortOptions,
}

/// Which row of each distinct key [`Engine::distinct`](crate::Engine::distinct) keeps, as libcudf's
/// `duplicate_keep_option`.
///
/// # Example
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::{UInt32Array, UInt8Array};
/// # use arrow::record_batch::RecordBatch;
/// use arrow_wgpu::{Engine, Keep};
/// let batch = RecordBatch::try_from_iter([("k", Arc::new(UInt8Array::from(vec![1, 2, 1, 3, 2])) as _)]).unwrap();
/// let engine = Engine::from_env().unwrap();
/// let rows = |keep| engine.distinct_indices(&batch, &["k"], keep).unwrap();
/// assert_eq!(Keep::default(), Keep::First);
/// assert_eq!(rows(Keep::First), UInt32Array::from(vec![0, 1, 3]));
/// assert_eq!(rows(Keep::Last), UInt32Array::from(vec![2, 3, 4]));
/// assert_eq!(rows(Keep::Any), rows(Keep::First));
/// assert_eq!(rows(Keep::None), UInt32Array::from(vec![3]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Keep {
    /// The first row of each key (the default).
    #[default]
    First,
    /// The last row of each key.
    Last,
    /// One row of each key, whichever is cheapest to find. In this crate that is the first
    /// row on every backend, so `Any` gives the same answer as [`Keep::First`] (the answer
    /// never depends on the backend); ask for `First` when the first row matters, since a
    /// later version may pick another row.
    Any,
    /// Only the rows whose key appears once; every row of a duplicated key is dropped.
    None,
}
