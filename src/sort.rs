//! Sort: [`SortKey`], and `sort_to_indices` / `sort` on [`Engine`] and [`GpuBatch`].
//!
//! Keys order rows as arrow's row format does (`arrow::row::RowConverter` with each key's
//! [`SortOptions`]): nulls first or last per key, floats in IEEE 754 total order
//! (`-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < NaN`). The sort is stable: rows with
//! equal keys keep their input order, on both paths (arrow-rs's own `sort_to_indices` is not
//! stable). On the GPU it is an LSD radix sort; see `src/gpu/sort.rs`.

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::datatypes::Schema;

use crate::cpu;
use crate::engine::{check_all_gpu_types, check_rows, download, Engine};
use crate::error::{Error, Result};
use crate::gpu::check_gpu_types;
use crate::gpu::column::GpuBatch;
use crate::gpu::sort as gpu_sort;
use crate::keys::Key;
use crate::profile::{self, RanOn};

/// One sort key: a column and arrow's [`SortOptions`] (descending, nulls first).
///
/// # Example
/// ```
/// use arrow_wgpu::SortKey;
/// let keys = [SortKey::desc("score").nulls_first(false), SortKey::asc("id")];
/// assert!(keys[0].options.descending && !keys[0].options.nulls_first);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The column's name.
    pub column: String,
    /// Direction and null placement, as arrow's sort kernels take them.
    pub options: SortOptions,
}

impl SortKey {
    /// A key with the given options.
    pub fn new(column: impl Into<String>, options: SortOptions) -> SortKey {
        SortKey {
            column: column.into(),
            options,
        }
    }

    /// Ascending, nulls first (arrow's default `SortOptions`).
    pub fn asc(column: impl Into<String>) -> SortKey {
        SortKey::new(column, SortOptions::default())
    }

    /// Descending, nulls first (as arrow's `SortOptions { descending: true, .. }`).
    pub fn desc(column: impl Into<String>) -> SortKey {
        SortKey::new(
            column,
            SortOptions {
                descending: true,
                nulls_first: true,
            },
        )
    }

    /// The same key with nulls first (`true`) or last (`false`).
    pub fn nulls_first(mut self, first: bool) -> SortKey {
        self.options.nulls_first = first;
        self
    }
}

/// Resolves key names against `schema`: an error for no keys or an unknown column.
fn resolve(keys: &[SortKey], schema: &Schema) -> Result<Vec<Key>> {
    if keys.is_empty() {
        return Err(Error::NoKeys("sort"));
    }
    keys.iter()
        .map(|k| {
            let column = schema
                .index_of(&k.column)
                .map_err(|_| Error::unknown_column(&k.column, schema))?;
            Ok(Key {
                column,
                options: k.options,
            })
        })
        .collect()
}

impl Engine {
    /// Why the GPU would decline to sort batches of `schema` by `keys` (a key of a type its
    /// radix sort doesn't order, such as a string), or `None` where it would sort them:
    /// what a planner asks before it chooses the GPU. An unknown key is an error.
    ///
    /// # Example
    /// ```
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_wgpu::{Engine, SortKey};
    /// let schema = Schema::new(vec![
    ///     Field::new("k", DataType::Int64, true),
    ///     Field::new("s", DataType::Utf8, true),
    /// ]);
    /// assert_eq!(Engine::gpu_declines_sort(&schema, &[SortKey::asc("k")]).unwrap(), None);
    /// assert!(Engine::gpu_declines_sort(&schema, &[SortKey::asc("s")]).unwrap().is_some());
    /// ```
    pub fn gpu_declines_sort(schema: &Schema, keys: &[SortKey]) -> Result<Option<String>> {
        for key in resolve(keys, schema)? {
            let field = schema.field(key.column);
            if crate::gpu::sort::key_kind(field.data_type()).is_none() {
                return Ok(Some(format!(
                    "the sort key {} of type {}",
                    field.name(),
                    field.data_type()
                )));
            }
        }
        Ok(None)
    }

    /// The row indices of `batch` in the order of `keys` (the first key decides, the next
    /// breaks its ties, ...), stable, and only the first `limit` of them when given (top-k).
    /// As arrow's `lexsort_to_indices`, but ties keep their input order.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Float64Array, Int32Array, UInt32Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Engine, SortKey};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("g", Arc::new(Int32Array::from(vec![Some(2), None, Some(1), Some(2)])) as _),
    ///     ("x", Arc::new(Float64Array::from(vec![0.5, 1.0, f64::NAN, -0.0])) as _),
    /// ]).unwrap();
    /// let engine = Engine::from_env().unwrap();
    /// let keys = [SortKey::asc("g").nulls_first(false), SortKey::desc("x")];
    /// let order = engine.sort_to_indices(&batch, &keys, None).unwrap();
    /// assert_eq!(order, UInt32Array::from(vec![2, 0, 3, 1]));
    /// let top2 = engine.sort_to_indices(&batch, &keys, Some(2)).unwrap();
    /// assert_eq!(top2, UInt32Array::from(vec![2, 0]));
    /// ```
    pub fn sort_to_indices(
        &self,
        batch: &RecordBatch,
        keys: &[SortKey],
        limit: Option<usize>,
    ) -> Result<UInt32Array> {
        let resolved = resolve(keys, batch.schema_ref())?;
        check_rows("sort", batch.num_rows())?;
        self.run(
            "sort",
            |ctx| {
                // Upload only the key columns.
                let mut used: Vec<usize> = resolved.iter().map(|k| k.column).collect();
                used.sort_unstable();
                used.dedup();
                check_gpu_types(ctx, batch, &used, "sort")?;
                let remapped: Vec<Key> = resolved
                    .iter()
                    .map(|k| Key {
                        column: used.binary_search(&k.column).expect("used"),
                        options: k.options,
                    })
                    .collect();
                let resident = self.upload(&batch.project(&used)?)?;
                sort_indices_on_gpu(&resident, &remapped, limit)
            },
            || cpu::sort::sort_to_indices(batch, &resolved, limit, self.cpu),
        )
    }

    /// `batch` sorted by `keys` (stable; the first `limit` rows when given). On the GPU
    /// every column is gathered there by the sorted indices.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int64Array, UInt8Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{Engine, SortKey};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("k", Arc::new(UInt8Array::from(vec![3, 1, 2])) as _),
    ///     ("v", Arc::new(Int64Array::from(vec![30, 10, 20])) as _),
    /// ]).unwrap();
    /// let sorted = Engine::from_env().unwrap().sort(&batch, &[SortKey::asc("k")], None).unwrap();
    /// assert_eq!(sorted.column(1).as_ref(), &Int64Array::from(vec![10, 20, 30]));
    /// ```
    pub fn sort(
        &self,
        batch: &RecordBatch,
        keys: &[SortKey],
        limit: Option<usize>,
    ) -> Result<RecordBatch> {
        let resolved = resolve(keys, batch.schema_ref())?;
        check_rows("sort", batch.num_rows())?;
        self.run(
            "sort",
            |ctx| {
                check_all_gpu_types(ctx, batch, "sort")?;
                let resident = self.upload(batch)?;
                let out = download(&gpu_sort::sort_batch(&resident, &resolved, limit)?)?;
                profile::minimal(profile::batch_bytes(batch) + profile::batch_bytes(&out));
                Ok(out)
            },
            || cpu::sort::sort(batch, &resolved, limit, self.cpu),
        )
    }
}

fn sort_indices_on_gpu(
    batch: &GpuBatch,
    keys: &[Key],
    limit: Option<usize>,
) -> Result<UInt32Array> {
    let sorted = gpu_sort::sort_chunks(batch, keys, limit)?;
    let start = std::time::Instant::now();
    let out = gpu_sort::sorted_indices(batch, &sorted, limit)?;
    profile::record(profile::Phase::Download, start);
    Ok(UInt32Array::from(out))
}

impl GpuBatch {
    /// The batch sorted by `keys` (stable; the first `limit` rows), on the GPU; the result
    /// stays there. See [`Engine::sort`].
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int32Array;
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Backend, Engine, SortKey};
    /// let batch = RecordBatch::try_from_iter([("x", Arc::new(Int32Array::from(vec![5, -1, 9, 3])) as _)]).unwrap();
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     let top = engine.upload(&batch).unwrap()
    ///         .filter(&col("x").gt(lit(0))).unwrap()
    ///         .sort(&[SortKey::desc("x")], Some(2)).unwrap(); // nothing uploaded again
    ///     assert_eq!(top.to_record_batch().unwrap().column(0).as_ref(), &Int32Array::from(vec![9, 5]));
    /// }
    /// ```
    pub fn sort(&self, keys: &[SortKey], limit: Option<usize>) -> Result<GpuBatch> {
        let resolved = resolve(keys, &self.schema)?;
        check_rows("sort", self.num_rows())?;
        self.ctx.operation(|| {
            profile::begin_step("sort", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            let out = gpu_sort::sort_batch(self, &resolved, limit)?;
            profile::minimal(self.device_bytes() + out.device_bytes());
            Ok(out)
        })
    }

    /// The row indices in the order of `keys` (stable; the first `limit`), sorted on the
    /// GPU and downloaded. See [`Engine::sort_to_indices`].
    pub fn sort_to_indices(&self, keys: &[SortKey], limit: Option<usize>) -> Result<UInt32Array> {
        let resolved = resolve(keys, &self.schema)?;
        check_rows("sort", self.num_rows())?;
        self.ctx.operation(|| {
            profile::begin_step("sort", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            sort_indices_on_gpu(self, &resolved, limit)
        })
    }
}
