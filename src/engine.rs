//! [`Engine`]: picks the backend, runs each operation there, and falls back when told.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::BooleanArray;
use arrow::record_batch::RecordBatch;

use crate::cpu;
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::gpu::column::{GpuBatch, Layout};
use crate::gpu::{self, check_gpu_types, AdapterSummary, DeviceRequest, GpuContext};
use crate::plan::{self, Typed};
use crate::profile::{self, Phase, Profile, RanOn};

/// The environment variable that picks the backend for [`Engine::from_env`]:
/// `auto`, `gpu` or `cpu`.
pub const BACKEND_ENV: &str = "ARROW_WGPU_BACKEND";

/// Where operations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The best GPU adapter; the CPU where there is none, or where the adapter can't run an
    /// operation or type. Every fall back is logged and shown in the profile. A software
    /// adapter (llvmpipe, WARP, SwiftShader: an emulation, slower than the CPU path) is
    /// used only when named ([`EngineOptions::adapter_name`] or `WGPU_ADAPTER_NAME`).
    #[default]
    Auto,
    /// The GPU or an error, never a silent CPU run.
    Gpu,
    /// The CPU path (arrow-rs kernels).
    Cpu,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Backend> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Backend::Auto),
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            other => Err(Error::InvalidExpression(format!(
                "unknown backend '{other}' (expected auto, gpu or cpu)"
            ))),
        }
    }
}

/// How to open an [`Engine`].
///
/// # Example
/// ```
/// use arrow_wgpu::{Backend, Engine, EngineOptions};
/// // Small chunks, as the tests use to cross chunk boundaries on small data.
/// let options = EngineOptions { backend: Backend::Auto, max_chunk_bytes: Some(4096), ..Default::default() };
/// let engine = Engine::with_options(options).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where operations run.
    pub backend: Backend,
    /// The wgpu backends to look for adapters on (`WGPU_BACKEND` narrows it further).
    pub wgpu_backends: wgpu::Backends,
    /// Only adapters whose name contains this (case-insensitive); `WGPU_ADAPTER_NAME` is
    /// used when this is `None`.
    pub adapter_name: Option<String>,
    /// The largest column chunk in bytes; lower than the adapter's binding limit only to
    /// test chunking on small data.
    pub max_chunk_bytes: Option<u64>,
    /// The most bytes of GPU buffers one operation may allocate (its inputs' upload, its
    /// intermediates, its results and their readback). An operation that would need more
    /// fails with [`Error::OutOfMemory`] on `Backend::Gpu` and runs on the CPU on
    /// `Backend::Auto`, logged: a budget to leave room for other work on the GPU. `None`
    /// (the default) leaves the limit to the device, whose own out-of-memory errors are
    /// handled the same way.
    pub gpu_memory_limit: Option<u64>,
    /// The most threads a CPU group-by uses (on `Backend::Cpu`, and where `Auto` runs one
    /// on the CPU): contiguous pieces of the batch are grouped on their own threads and
    /// merged exactly, so the answer is the same bits on any number of threads. `None`
    /// (the default): as many as the OS reports cores ([`std::thread::available_parallelism`]);
    /// `Some(1)`: the calling thread only.
    pub cpu_threads: Option<usize>,
    /// The fewest rows a CPU thread is given (65,536 when `None`); lower only to test the
    /// threaded path on small data.
    pub cpu_rows_per_thread: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            backend: Backend::Auto,
            wgpu_backends: wgpu::Backends::all(),
            adapter_name: None,
            max_chunk_bytes: None,
            gpu_memory_limit: None,
            cpu_threads: None,
            cpu_rows_per_thread: None,
        }
    }
}

/// Runs operations on the GPU or the CPU. `Send + Sync`: share one between threads (an
/// `Arc<Engine>`); pipelines are compiled once per engine and cached.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Float64Array, Int32Array};
/// use arrow::record_batch::RecordBatch;
/// use arrow_wgpu::{col, lit, Engine};
///
/// let batch = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int32Array::from(vec![1, 2, 3, 4])) as _),
///     ("score", Arc::new(Float64Array::from(vec![0.5, f64::NAN, -0.0, 9.0])) as _),
/// ]).unwrap();
/// let engine = Engine::from_env().unwrap(); // Auto unless ARROW_WGPU_BACKEND says otherwise
/// let kept = engine.filter(&batch, &col("score").gt(lit(0.0)).and(col("id").lt(lit(4)))).unwrap();
/// assert_eq!(kept.num_rows(), 2); // 0.5 and NaN (NaN is the largest float)
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    backend: Backend,
    gpu: Option<Arc<GpuContext>>,
    pub(crate) cpu: cpu::Threads,
}

impl Engine {
    /// An engine on `backend` with default options.
    pub fn new(backend: Backend) -> Result<Engine> {
        Engine::with_options(EngineOptions {
            backend,
            ..Default::default()
        })
    }

    /// An engine on the backend named by `ARROW_WGPU_BACKEND`, or `Auto`.
    pub fn from_env() -> Result<Engine> {
        let backend = match std::env::var(BACKEND_ENV) {
            Ok(v) => v.parse()?,
            Err(_) => Backend::Auto,
        };
        Engine::new(backend)
    }

    /// An engine with every option spelled out.
    pub fn with_options(options: EngineOptions) -> Result<Engine> {
        let request = DeviceRequest {
            backends: options.wgpu_backends,
            adapter_name: options.adapter_name.clone(),
            max_chunk_bytes: options.max_chunk_bytes,
            memory_limit: options.gpu_memory_limit,
        };
        let gpu = match options.backend {
            Backend::Cpu => None,
            Backend::Gpu => Some(Arc::new(GpuContext::open(&request)?)),
            Backend::Auto => match GpuContext::open(&request) {
                // A software driver (llvmpipe, WARP, SwiftShader) runs kernels as an
                // emulation on the CPU, many times slower than the CPU path: `Auto` takes
                // one only when it is asked for by name.
                Ok(ctx) if ctx.summary.is_software() && !request.names_adapter() => {
                    log::info!(
                        "arrow-wgpu: {} is a software driver; operations run on the CPU (name it, or ask for Backend::Gpu, to use it)",
                        ctx.summary.name
                    );
                    None
                }
                Ok(ctx) => Some(Arc::new(ctx)),
                Err(e) => {
                    log::info!("arrow-wgpu: {e}; operations run on the CPU");
                    None
                }
            },
        };
        if let Some(ctx) = &gpu {
            log::info!("arrow-wgpu: using {}", ctx.summary);
        }
        Ok(Engine {
            backend: options.backend,
            gpu,
            cpu: cpu::Threads::new(options.cpu_threads, options.cpu_rows_per_thread),
        })
    }

    /// The most threads a CPU group-by uses (see [`EngineOptions::cpu_threads`]).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{Backend, Engine, EngineOptions};
    /// let one = Engine::with_options(EngineOptions {
    ///     backend: Backend::Cpu,
    ///     cpu_threads: Some(1),
    ///     ..Default::default()
    /// })
    /// .unwrap();
    /// assert_eq!(one.cpu_threads(), 1);
    /// assert!(Engine::new(Backend::Cpu).unwrap().cpu_threads() >= 1);
    /// ```
    pub fn cpu_threads(&self) -> usize {
        self.cpu.threads
    }

    /// The GPU adapters wgpu finds on `backends`, best first.
    ///
    /// # Example
    /// ```
    /// for (name, backend) in arrow_wgpu::Engine::adapters(wgpu::Backends::all()) {
    ///     println!("{name} ({backend:?})");
    /// }
    /// ```
    pub fn adapters(backends: wgpu::Backends) -> Vec<(String, wgpu::Backend)> {
        gpu::enumerate(backends)
            .into_iter()
            .map(|a| {
                let info = a.get_info();
                (info.name, info.backend)
            })
            .collect()
    }

    /// Whether the GPU path holds columns of type `dt` (uploads them, carries them through
    /// filter, sort and distinct): what an integration checks before it hands a batch to
    /// a GPU operation. Any type runs on the CPU path.
    ///
    /// # Example
    /// ```
    /// use arrow::datatypes::DataType;
    /// use arrow_wgpu::Engine;
    /// assert!(Engine::gpu_holds(&DataType::Float64));
    /// assert!(!Engine::gpu_holds(&DataType::Binary));
    /// ```
    pub fn gpu_holds(dt: &arrow::datatypes::DataType) -> bool {
        Layout::of(dt).is_some()
    }

    /// Why the GPU would decline to filter batches of `schema` by `predicate` (an
    /// expression its kernels don't take, such as `<` between strings or one of more than
    /// 2,000 nodes), or `None` where it would run it: what a planner asks before it
    /// chooses the GPU. A predicate that doesn't plan (an unknown column, a type error) is
    /// an error.
    ///
    /// # Example
    /// ```
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow_wgpu::{col, lit, Engine};
    /// let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
    /// assert_eq!(Engine::gpu_declines_filter(&schema, &col("s").eq(lit("a"))).unwrap(), None);
    /// assert!(Engine::gpu_declines_filter(&schema, &col("s").lt(lit("a"))).unwrap().is_some());
    /// ```
    pub fn gpu_declines_filter(
        schema: &arrow::datatypes::Schema,
        predicate: &Expr,
    ) -> Result<Option<String>> {
        let typed = plan::plan_predicate(predicate, schema)?;
        gpu_declines_predicate(&typed)
    }

    /// The backend asked for.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The GPU adapter in use, if any: name, backend, features and limits.
    pub fn adapter(&self) -> Option<&AdapterSummary> {
        self.gpu.as_ref().map(|g| &g.summary)
    }

    /// The wgpu device and queue the engine runs on, if it has a GPU: to share them with
    /// other wgpu code. Destroying the device (`wgpu::Device::destroy`) makes later GPU
    /// operations fail with [`Error::DeviceLost`] (`Backend::Gpu`) or run on the CPU
    /// (`Backend::Auto`).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::{Backend, Engine};
    /// if let Ok(engine) = Engine::new(Backend::Gpu) {
    ///     let (device, _queue) = engine.wgpu_device().unwrap();
    ///     assert!(device.limits().max_storage_buffer_binding_size > 0);
    /// }
    /// ```
    pub fn wgpu_device(&self) -> Option<(&wgpu::Device, &wgpu::Queue)> {
        self.gpu.as_ref().map(|g| (&g.device, &g.queue))
    }

    pub(crate) fn ran_on_gpu(&self) -> RanOn {
        match &self.gpu {
            Some(g) => RanOn::Gpu(format!("{} / {:?}", g.summary.name, g.summary.backend)),
            None => RanOn::Cpu,
        }
    }

    /// Runs `f` and returns its result with the [`Profile`] of every operation inside it.
    pub fn profiled<T>(&self, f: impl FnOnce(&Engine) -> Result<T>) -> Result<(T, Profile)> {
        let previous = profile::start();
        let out = f(self);
        let profile = profile::finish(previous);
        out.map(|v| (v, profile))
    }

    /// Runs an operation where the backend says: `on_gpu` on the GPU, `on_cpu` on the CPU,
    /// and in `Auto` falls back from a GPU-side error to the CPU, logged.
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        on_gpu: impl FnOnce(&Arc<GpuContext>) -> Result<T>,
        on_cpu: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let cpu = |fallback: Option<String>, spent: Vec<(Phase, std::time::Duration)>| {
            profile::begin_step_with(operation, RanOn::Cpu, fallback, spent);
            let start = Instant::now();
            let out = on_cpu();
            profile::record(Phase::Cpu, start);
            out
        };
        match (self.backend, &self.gpu) {
            (Backend::Cpu, _) | (Backend::Auto, None) => cpu(None, Vec::new()),
            (Backend::Gpu, None) => Err(Error::NoAdapter(String::new())),
            (backend, Some(ctx)) => {
                profile::begin_step(operation, self.ran_on_gpu(), None);
                let gpu_result = ctx.operation(|| on_gpu(ctx));
                match gpu_result {
                    Err(e) if backend == Backend::Auto && e.is_gpu_side() => {
                        log::warn!("arrow-wgpu: {operation} falls back to the CPU: {e}");
                        let spent = profile::discard_step();
                        cpu(Some(e.to_string()), spent)
                    }
                    other => other,
                }
            }
        }
    }

    pub(crate) fn context(&self) -> Result<&Arc<GpuContext>> {
        self.gpu
            .as_ref()
            .ok_or_else(|| Error::NoAdapter(String::new()))
    }

    /// Uploads `batch` to the GPU, to run several operations on it without uploading again.
    /// An error without a GPU adapter (in every backend), or for a column type the GPU
    /// path doesn't hold.
    pub fn upload(&self, batch: &RecordBatch) -> Result<GpuBatch> {
        let ctx = self.context()?;
        ctx.operation(|| {
            let start = Instant::now();
            let out = GpuBatch::upload(ctx, batch)?;
            ctx.wait_for_profile()?;
            profile::record(Phase::Upload, start);
            Ok(out)
        })
    }

    /// Evaluates a boolean expression over every row of `batch`, with SQL's three-valued
    /// logic (a null input gives a null output, except as `AND`/`OR`/`IS NULL` decide).
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{BooleanArray, Int32Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Engine};
    /// let batch = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as _)]).unwrap();
    /// let mask = Engine::from_env().unwrap().evaluate(&batch, &col("a").gt(lit(1))).unwrap();
    /// assert_eq!(mask, BooleanArray::from(vec![Some(false), None, Some(true)]));
    /// ```
    ///
    /// See also [`Engine::filter`].
    pub fn evaluate(&self, batch: &RecordBatch, predicate: &Expr) -> Result<BooleanArray> {
        let typed = plan::plan_predicate(predicate, &batch.schema())?;
        self.run(
            "evaluate",
            |ctx| {
                // Upload only the columns the predicate reads.
                let used = typed.column_indices();
                check_gpu_types(ctx, batch, &used, "evaluate")?;
                let remapped =
                    typed.remap_columns(&|i| used.iter().position(|u| *u == i).expect("used"));
                let nullable = |i: usize| batch.column(used[i]).null_count() > 0;
                gpu::filter::check_predicate(ctx, &remapped, &nullable)?;
                let resident = self.upload(&batch.project(&used)?)?;
                gpu::filter::evaluate(&resident, &remapped)
            },
            || cpu::filter::evaluate(batch, &typed),
        )
    }

    /// Keeps the rows of `batch` where `predicate` is true (null counts as false), as
    /// arrow's `filter_record_batch` with the predicate's mask. On the GPU the predicate is
    /// one kernel and every column is compacted there (a prefix sum over the mask, then a
    /// scatter).
    ///
    /// The GPU pays for the upload and download: a one-off filter of data just read from
    /// memory is usually faster on the CPU. Keep data resident ([`Engine::upload`],
    /// [`GpuBatch::filter`]) to chain operations.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Array, Int64Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, lit, Engine};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("a", Arc::new(Int32Array::from(vec![1, 2, 3, 4])) as _),
    ///     ("b", Arc::new(Int64Array::from(vec![10, 20, 30, 40])) as _),
    /// ]).unwrap();
    /// let out = Engine::from_env().unwrap().filter(&batch, &col("a").in_list(vec![lit(2), lit(4)])).unwrap();
    /// assert_eq!(out.column(1).as_ref(), &Int64Array::from(vec![20, 40]));
    /// ```
    ///
    /// See also [`Engine::filter_by_mask`], [`Engine::evaluate`].
    pub fn filter(&self, batch: &RecordBatch, predicate: &Expr) -> Result<RecordBatch> {
        let typed = plan::plan_predicate(predicate, &batch.schema())?;
        self.run(
            "filter",
            |ctx| {
                check_all_gpu_types(ctx, batch, "filter")?;
                let nullable = |i: usize| batch.column(i).null_count() > 0;
                gpu::filter::check_predicate(ctx, &typed, &nullable)?;
                let resident = self.upload(batch)?;
                let out = download(&gpu::filter::filter(&resident, &typed)?)?;
                profile::minimal(profile::batch_bytes(batch) + profile::batch_bytes(&out));
                Ok(out)
            },
            || cpu::filter::filter_on(batch, &typed, self.cpu),
        )
    }

    /// Keeps the rows of `batch` where `mask` is true (null counts as false), as arrow's
    /// `filter_record_batch`.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{BooleanArray, Int32Array};
    /// # use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::Engine;
    /// let batch = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![1, 2, 3])) as _)]).unwrap();
    /// let mask = BooleanArray::from(vec![Some(true), None, Some(true)]);
    /// let out = Engine::from_env().unwrap().filter_by_mask(&batch, &mask).unwrap();
    /// assert_eq!(out.column(0).as_ref(), &Int32Array::from(vec![1, 3]));
    /// ```
    pub fn filter_by_mask(&self, batch: &RecordBatch, mask: &BooleanArray) -> Result<RecordBatch> {
        if mask.len() != batch.num_rows() {
            return Err(Error::LengthMismatch {
                what: "filter mask".into(),
                expected: batch.num_rows(),
                actual: mask.len(),
            });
        }
        self.run(
            "filter",
            |ctx| {
                check_all_gpu_types(ctx, batch, "filter")?;
                let resident = self.upload(batch)?;
                download(&gpu::filter::filter_by_mask(&resident, mask)?)
            },
            || cpu::filter::filter_by_mask(batch, mask),
        )
    }
}

/// An error for batches with more rows than u32 row indices can number.
pub(crate) fn check_rows(operation: &str, rows: usize) -> Result<()> {
    if rows > u32::MAX as usize {
        return Err(Error::InvalidExpression(format!(
            "{operation}: {rows} rows; row indices are u32, so a batch holds at most {} rows",
            u32::MAX
        )));
    }
    Ok(())
}

pub(crate) fn download(batch: &GpuBatch) -> Result<RecordBatch> {
    let start = Instant::now();
    let out = batch.to_record_batch()?;
    profile::record(Phase::Download, start);
    Ok(out)
}

/// [`check_gpu_types`] over every column: operations that carry the whole batch.
pub(crate) fn check_all_gpu_types(
    ctx: &GpuContext,
    batch: &RecordBatch,
    operation: &'static str,
) -> Result<()> {
    check_gpu_types(
        ctx,
        batch,
        &(0..batch.num_columns()).collect::<Vec<_>>(),
        operation,
    )
}

/// Why the GPU's predicate kernel would not be generated for `typed` (its size, a type,
/// an operator on strings), or `None` where it would: the kernel generator itself answers,
/// so the answer can't drift from what a run would do.
pub(crate) fn gpu_declines_predicate(typed: &Typed) -> Result<Option<String>> {
    match gpu::predicate::generate(typed, &|_| true) {
        Ok(_) => Ok(None),
        Err(Error::UnsupportedOnGpu { reason, .. }) => Ok(Some(reason)),
        Err(e) => Err(e),
    }
}

impl GpuBatch {
    /// Keeps the rows where `predicate` is true, on the GPU; the result stays there.
    ///
    /// See [`Engine::filter`] for the semantics and [`GpuBatch`] for an example.
    pub fn filter(&self, predicate: &Expr) -> Result<GpuBatch> {
        let typed = plan::plan_predicate(predicate, &self.schema)?;
        let ctx = &self.ctx;
        ctx.operation(|| {
            profile::begin_step("filter", RanOn::Gpu(ctx.summary.name.clone()), None);
            let out = gpu::filter::filter(self, &typed)?;
            profile::minimal(self.device_bytes() + out.device_bytes());
            Ok(out)
        })
    }

    /// Evaluates `predicate` on the GPU and downloads the mask.
    pub fn evaluate(&self, predicate: &Expr) -> Result<BooleanArray> {
        let typed: Typed = plan::plan_predicate(predicate, &self.schema)?;
        self.ctx.operation(|| {
            profile::begin_step("evaluate", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            gpu::filter::evaluate(self, &typed)
        })
    }

    /// Blocks until every GPU operation queued so far has finished (operations return
    /// once their work is queued; a download or this call waits for it). For timing.
    pub fn wait(&self) -> Result<()> {
        self.ctx.wait()
    }

    /// Keeps the rows where `mask` is true (null is false); the result stays on the GPU.
    pub fn filter_by_mask(&self, mask: &BooleanArray) -> Result<GpuBatch> {
        self.ctx.operation(|| {
            profile::begin_step("filter", RanOn::Gpu(self.ctx.summary.name.clone()), None);
            gpu::filter::filter_by_mask(self, mask)
        })
    }
}
