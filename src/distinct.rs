//! Distinct: [`Keep`], and `distinct` / `distinct_indices` / `distinct_count` on [`Engine`]
//! and [`GpuBatch`], as libcudf's `distinct`.
//!
//! Rows are deduplicated on their key columns: two rows are duplicates exactly when their
//! keys' arrow row-format encodings (`arrow::row::RowConverter`) are equal. So nulls equal
//! nulls, a NaN equals a NaN with the same bits (`NaN` and `-NaN`, or NaNs with different
//! payloads, are different keys), and `-0.0` is a different key from `0.0`. [`Keep`] says
//! which row of each key stays; the kept rows come out in input order.
//!
//! # Where it runs
//!
//! On the CPU: a `hashbrown` table from each row's key (packed into a u64 / u128 when the
//! keys fit, row-format rows otherwise) to its first row, the grouping the CPU group-by uses.
//!
//! On the GPU (`src/gpu/distinct.rs`): the group-by's hash table numbers the keys in order of
//! first appearance and records each key's first row; keep last takes each key's largest row
//! (`atomicMax`), keep none the keys whose first row is also their last; a bitmap of the kept
//! rows is compacted (a prefix sum) into their indices in input order, and `distinct` gathers
//! every column by those indices on the GPU. Keys of every type the engine uploads (integers,
//! floats, booleans, dates, timestamps, strings of any length) run there; string keys are
//! hashed over their bytes and compared byte by byte (`src/gpu/groups.rs`). A batch of more than one chunk groups each
//! chunk on the GPU, downloads each chunk's distinct keys (one row per key and chunk) and
//! merges them on the CPU by the same hash grouping as the CPU path, so the answer is the
//! same. `distinct_indices` and `distinct_count` upload only the key columns; `distinct`
//! uploads and gathers every column, so it needs every column's type on the GPU. Other
//! types (dictionaries, nested types, ...) run on the CPU under [`Backend::Auto`], logged and
//! shown in the [`crate::Profile`] as a fall back; [`Backend::Gpu`] returns
//! [`Error::UnsupportedType`].
//!
//! On a software driver (llvmpipe) the GPU path is an emulation on the CPU, several times
//! slower than the CPU path (BENCHMARKS.md). On any GPU, a one-off distinct of data just
//! read pays for its upload and download: keep batches resident ([`GpuBatch::distinct`]) to
//! chain operations there.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int32Array, StringArray, UInt32Array};
//! use arrow::record_batch::RecordBatch;
//! use arrow_wgpu::{Engine, Keep};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("read", Arc::new(StringArray::from(vec!["r1", "r2", "r3", "r4", "r5"])) as _),
//!     ("pos", Arc::new(Int32Array::from(vec![Some(7), None, Some(7), Some(3), None])) as _),
//! ]).unwrap();
//! let engine = Engine::from_env().unwrap();
//! let first = engine.distinct(&batch, &["pos"], Keep::First).unwrap();
//! assert_eq!(first.column(0).as_ref(), &StringArray::from(vec!["r1", "r2", "r4"]));
//! let last = engine.distinct_indices(&batch, &["pos"], Keep::Last).unwrap();
//! assert_eq!(last, UInt32Array::from(vec![2, 3, 4]));
//! let unique = engine.distinct_indices(&batch, &["pos"], Keep::None).unwrap();
//! assert_eq!(unique, UInt32Array::from(vec![3]));
//! assert_eq!(engine.distinct_count(&batch, &["pos"]).unwrap(), 3);
//! ```

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::Schema;

use crate::cpu;
use crate::engine::{check_all_gpu_types, check_rows, download, Engine};
use crate::error::{Error, Result};
use crate::gpu::check_gpu_types;
use crate::gpu::column::GpuBatch;
use crate::gpu::distinct as gpu_distinct;
pub use crate::keys::Keep;
use crate::keys::Key;
use crate::profile::{self, RanOn};

#[cfg(doc)]
use crate::engine::Backend;

/// Resolves key names against `schema`: an error for no keys or an unknown column. A column
/// named twice counts once (it can't change which rows are duplicates).
fn resolve(keys: &[&str], schema: &Schema) -> Result<Vec<usize>> {
    if keys.is_empty() {
        return Err(Error::NoKeys("distinct"));
    }
    let mut out: Vec<usize> = Vec::with_capacity(keys.len());
    for k in keys {
        let i = schema
            .index_of(k)
            .map_err(|_| Error::unknown_column(k, schema))?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Keys as the GPU's grouping takes them: equality doesn't depend on the options.
fn gpu_keys(columns: impl IntoIterator<Item = usize>) -> Vec<Key> {
    columns
        .into_iter()
        .map(|column| Key {
            column,
            options: SortOptions::default(),
        })
        .collect()
}

impl Engine {
    /// The rows of `batch` with distinct `keys`: one row per key ([`Keep::First`],
    /// [`Keep::Last`] or [`Keep::Any`]) or only the rows whose key appears once
    /// ([`Keep::None`]), every column, in input order. Keys are equal as arrow's row format
    /// says: nulls equal nulls, NaN equals the same NaN, `-0.0` differs from `0.0`. See the
    /// [module docs](crate::distinct) for what runs where.
    ///
    /// Errors: no keys ([`Error::NoKeys`]) or an unknown column.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Float64Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Engine, Keep};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("x", Arc::new(Float64Array::from(vec![0.0, -0.0, f64::NAN, 0.0, f64::NAN])) as _),
    ///     ("id", Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14])) as _),
    /// ]).unwrap();
    /// let out = Engine::from_env().unwrap().distinct(&batch, &["x"], Keep::Last).unwrap();
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![11, 13, 14]));
    /// ```
    ///
    /// See also [`Engine::distinct_indices`], [`Engine::distinct_count`],
    /// [`GpuBatch::distinct`].
    pub fn distinct(&self, batch: &RecordBatch, keys: &[&str], keep: Keep) -> Result<RecordBatch> {
        let resolved = resolve(keys, batch.schema_ref())?;
        check_rows("distinct", batch.num_rows())?;
        self.run(
            "distinct",
            |ctx| {
                check_all_gpu_types(ctx, batch, "distinct")?;
                let resident = self.upload(batch)?;
                let out = download(&gpu_distinct::distinct_batch(
                    &resident,
                    &gpu_keys(resolved.iter().copied()),
                    keep,
                )?)?;
                profile::minimal(profile::batch_bytes(batch) + profile::batch_bytes(&out));
                Ok(out)
            },
            || cpu::distinct::distinct(batch, &resolved, keep, self.cpu),
        )
    }

    /// The indices of the rows [`Engine::distinct`] keeps, ascending. On the GPU only the
    /// key columns are uploaded.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, UInt32Array, UInt8Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Engine, Keep};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("chrom", Arc::new(UInt8Array::from(vec![1, 1, 2, 1, 2])) as _),
    ///     ("pos", Arc::new(Int32Array::from(vec![100, 200, 100, 100, 100])) as _),
    /// ]).unwrap();
    /// let engine = Engine::from_env().unwrap();
    /// let kept = engine.distinct_indices(&batch, &["chrom", "pos"], Keep::First).unwrap();
    /// assert_eq!(kept, UInt32Array::from(vec![0, 1, 2]));
    /// let unique = engine.distinct_indices(&batch, &["chrom", "pos"], Keep::None).unwrap();
    /// assert_eq!(unique, UInt32Array::from(vec![1]));
    /// ```
    pub fn distinct_indices(
        &self,
        batch: &RecordBatch,
        keys: &[&str],
        keep: Keep,
    ) -> Result<UInt32Array> {
        let resolved = resolve(keys, batch.schema_ref())?;
        check_rows("distinct", batch.num_rows())?;
        self.run(
            "distinct",
            |ctx| {
                check_gpu_types(ctx, batch, &resolved, "distinct")?;
                // Upload only the key columns (in key order).
                let resident = self.upload(&batch.project(&resolved)?)?;
                let keys = gpu_keys(0..resolved.len());
                Ok(UInt32Array::from(gpu_distinct::distinct_indices(
                    &resident, &keys, keep,
                )?))
            },
            || {
                cpu::distinct::distinct_indices(batch, &resolved, keep, self.cpu)
                    .map(UInt32Array::from)
            },
        )
    }

    /// The number of distinct keys of `batch` (the rows [`Keep::First`] keeps). On the GPU
    /// only the key columns are uploaded, and only the count is read back (for a batch of
    /// one chunk).
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Float32Array;
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::Engine;
    /// let batch = RecordBatch::try_from_iter([
    ///     ("x", Arc::new(Float32Array::from(vec![Some(1.0), None, Some(-0.0), None, Some(0.0), Some(1.0)])) as _),
    /// ]).unwrap();
    /// assert_eq!(Engine::from_env().unwrap().distinct_count(&batch, &["x"]).unwrap(), 4);
    /// ```
    pub fn distinct_count(&self, batch: &RecordBatch, keys: &[&str]) -> Result<usize> {
        let resolved = resolve(keys, batch.schema_ref())?;
        check_rows("distinct", batch.num_rows())?;
        self.run(
            "distinct",
            |ctx| {
                check_gpu_types(ctx, batch, &resolved, "distinct")?;
                let resident = self.upload(&batch.project(&resolved)?)?;
                gpu_distinct::distinct_count(&resident, &gpu_keys(0..resolved.len()))
            },
            || cpu::distinct::distinct_count(batch, &resolved, self.cpu),
        )
    }
}

impl GpuBatch {
    /// The rows with distinct `keys` (see [`Engine::distinct`]), every column gathered on
    /// the GPU; the result stays there.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Backend, Engine, Keep};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(Int32Array::from(vec![4, 9, 4, 9, 1, 4])) as _),
    ///     ("v", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])) as _),
    /// ]).unwrap();
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     let out = engine.upload(&batch).unwrap()
    ///         .filter(&col("v").gt(lit(1i64))).unwrap()
    ///         .distinct(&["k"], Keep::Last).unwrap(); // nothing uploaded again
    ///     let out = out.to_record_batch().unwrap();
    ///     assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![4, 5, 6]));
    /// }
    /// ```
    pub fn distinct(&self, keys: &[&str], keep: Keep) -> Result<GpuBatch> {
        let resolved = resolve(keys, &self.schema)?;
        check_rows("distinct", self.num_rows())?;
        self.ctx.operation(|| {
            profile::begin_step("distinct", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            let out = gpu_distinct::distinct_batch(self, &gpu_keys(resolved), keep)?;
            profile::minimal(self.device_bytes() + out.device_bytes());
            Ok(out)
        })
    }

    /// The indices of the rows [`GpuBatch::distinct`] keeps, ascending, computed on the GPU
    /// and downloaded. See [`Engine::distinct_indices`].
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{BooleanArray, UInt32Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Backend, Engine, Keep};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("b", Arc::new(BooleanArray::from(vec![Some(true), None, Some(true), None])) as _),
    /// ]).unwrap();
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     let resident = engine.upload(&batch).unwrap();
    ///     assert_eq!(resident.distinct_indices(&["b"], Keep::Last).unwrap(), UInt32Array::from(vec![2, 3]));
    /// }
    /// ```
    pub fn distinct_indices(&self, keys: &[&str], keep: Keep) -> Result<UInt32Array> {
        let resolved = resolve(keys, &self.schema)?;
        check_rows("distinct", self.num_rows())?;
        self.ctx.operation(|| {
            profile::begin_step("distinct", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            Ok(UInt32Array::from(gpu_distinct::distinct_indices(
                self,
                &gpu_keys(resolved),
                keep,
            )?))
        })
    }

    /// The number of distinct keys, counted on the GPU. See [`Engine::distinct_count`].
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int64Array;
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Backend, Engine};
    /// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![3, 3, 5, 3])) as _)]).unwrap();
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     assert_eq!(engine.upload(&batch).unwrap().distinct_count(&["x"]).unwrap(), 2);
    /// }
    /// ```
    pub fn distinct_count(&self, keys: &[&str]) -> Result<usize> {
        let resolved = resolve(keys, &self.schema)?;
        check_rows("distinct", self.num_rows())?;
        self.ctx.operation(|| {
            profile::begin_step("distinct", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            gpu_distinct::distinct_count(self, &gpu_keys(resolved))
        })
    }
}
