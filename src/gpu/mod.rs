//! The GPU side: device and queue, the pipeline cache, buffers, readback, and the host side
//! of each kernel (one module per operation).

pub(crate) mod column;
pub(crate) mod compact;
pub(crate) mod distinct;
pub(crate) mod filter;
pub(crate) mod group_by;
pub(crate) mod group_fused;
pub(crate) mod group_resident;
pub(crate) mod groups;
pub(crate) mod predicate;
pub(crate) mod scan;
pub(crate) mod shader;
pub(crate) mod sort;
pub(crate) mod strings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};

/// Threads per workgroup in every kernel (`WG` in `shaders/common/dispatch.wgsl`). 256 is
/// the largest size WebGPU guarantees and a multiple of every subgroup width in use.
pub(crate) const WORKGROUP_SIZE: u32 = 256;

/// Storage-buffer bindings are sized up to at least this, so that an empty chunk still
/// binds (a binding of zero bytes is invalid).
const MIN_BUFFER_BYTES: u64 = 16;

/// What the engine knows of its adapter.
///
/// # Example
/// ```
/// use arrow_wgpu::{Backend, Engine};
/// if let Ok(engine) = Engine::new(Backend::Gpu) {
///     let info = engine.adapter().unwrap();
///     println!("{} on {:?}, f64 in shaders: {}", info.name, info.backend, info.shader_f64);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`, `NVIDIA H100 ...`).
    pub name: String,
    /// The wgpu backend (Vulkan, Gl, Metal, Dx12).
    pub backend: wgpu::Backend,
    /// Discrete, integrated, virtual, CPU (a software driver) or other.
    pub device_type: wgpu::DeviceType,
    /// The driver and its version.
    pub driver: String,
    /// The features the device was opened with.
    pub features: wgpu::Features,
    /// The limits the device was opened with.
    pub limits: wgpu::Limits,
    /// Whether WGSL may use `i64`/`u64` (SHADER_INT64).
    pub shader_int64: bool,
    /// Whether WGSL may use `f64` (SHADER_F64).
    pub shader_f64: bool,
    /// Whether subgroup operations are available.
    pub subgroups: bool,
    /// The largest column chunk in bytes: the smaller of the storage-binding and buffer
    /// limits, or the engine's `max_chunk_bytes` when that is lower.
    pub max_chunk_bytes: u64,
}

impl AdapterSummary {
    /// Whether the "GPU" is a software driver running on the CPU (llvmpipe, WARP, ...):
    /// right answers, emulated speed.
    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({:?}, {:?}{}), driver {}; int64: {}, f64: {}, subgroups: {}; max storage binding {} MiB",
            self.name,
            self.backend,
            self.device_type,
            if self.is_software() { ", software driver: speed is an emulation's" } else { "" },
            self.driver,
            self.shader_int64,
            self.shader_f64,
            self.subgroups,
            self.limits.max_storage_buffer_binding_size >> 20,
        )
    }
}

/// Options for opening a device.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRequest {
    pub backends: wgpu::Backends,
    pub adapter_name: Option<String>,
    pub max_chunk_bytes: Option<u64>,
    pub memory_limit: Option<u64>,
}

thread_local! {
    /// Bytes of GPU buffers the current operation on this thread has allocated.
    static ALLOCATED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// How deep in nested operations this thread is (an upload inside a filter, ...).
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Marks one operation on this thread: the outermost scope resets the count of bytes
/// charged against the engine's memory limit. Entered by [`GpuContext::operation`].
struct OperationScope(());

impl OperationScope {
    fn enter() -> OperationScope {
        if DEPTH.get() == 0 {
            ALLOCATED.set(0);
        }
        DEPTH.set(DEPTH.get() + 1);
        OperationScope(())
    }

    fn outermost(&self) -> bool {
        DEPTH.get() == 1
    }
}

impl Drop for OperationScope {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get().saturating_sub(1));
    }
}

/// The most compiled pipelines a device keeps. Generated kernels (one per predicate, one
/// per fused group-by plan) are keyed by their source, so a process that runs ever new
/// queries would otherwise keep every one it ever compiled for as long as the engine (on
/// llvmpipe each holds its compiled code). The fixed kernels are a few dozen.
const MAX_PIPELINES: usize = 256;

/// Compiled pipelines by key; past [`MAX_PIPELINES`] the least recently used is dropped
/// (an operation still running it holds its own `Arc`).
#[derive(Default)]
struct PipelineCache {
    by_key: HashMap<String, (Arc<wgpu::ComputePipeline>, u64)>,
    clock: u64,
}

impl PipelineCache {
    fn get(&mut self, key: &str) -> Option<Arc<wgpu::ComputePipeline>> {
        self.clock += 1;
        let (pipeline, used) = self.by_key.get_mut(key)?;
        *used = self.clock;
        Some(pipeline.clone())
    }

    fn insert(&mut self, key: String, pipeline: Arc<wgpu::ComputePipeline>) {
        self.clock += 1;
        if self.by_key.len() >= MAX_PIPELINES {
            let oldest = self
                .by_key
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.by_key.remove(&oldest);
            }
        }
        self.by_key.insert(key, (pipeline, self.clock));
    }
}

/// An open device, its queue, and the pipelines compiled on it.
pub(crate) struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pipelines: Mutex<PipelineCache>,
    /// Staging buffers of reads done, for the next reads ([`GpuContext::read_many`]).
    staging: Mutex<Vec<wgpu::Buffer>>,
    lost: Arc<Mutex<Option<String>>>,
    /// wgpu errors raised outside any error scope (by work on another thread, say), with
    /// the last one's text: an operation that sees the count change while it runs fails.
    uncaptured: Arc<Mutex<(u64, String)>>,
    memory_limit: Option<u64>,
    /// A small zeroed storage buffer for a binding that a kernel declares but, in this
    /// dispatch, doesn't read (a bind group needs a buffer in every slot): made once, so no
    /// operation allocates one for nothing.
    pub unread: wgpu::Buffer,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.summary.name)
            .finish()
    }
}

/// The adapters wgpu finds for `backends`, best first (discrete, integrated, virtual, CPU).
pub(crate) fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle().with_env()
    });
    let mut adapters: Vec<_> = pollster::block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .filter(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        })
        .collect();
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    // Vulkan before GL on the same device: GL lacks the 64-bit shader types.
    let backend_rank = |a: &wgpu::Adapter| match a.get_info().backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    adapters.sort_by_key(|a| (rank(a), backend_rank(a)));
    adapters
}

impl DeviceRequest {
    /// Whether an adapter is asked for by name (here or by `WGPU_ADAPTER_NAME`).
    pub(crate) fn names_adapter(&self) -> bool {
        self.adapter_name.is_some() || std::env::var_os("WGPU_ADAPTER_NAME").is_some()
    }
}

impl GpuContext {
    /// Opens the best adapter that matches `req` (wgpu's `WGPU_BACKEND` and
    /// `WGPU_ADAPTER_NAME` narrow the search too).
    pub(crate) fn open(req: &DeviceRequest) -> Result<GpuContext> {
        let backends = wgpu::Backends::from_env().unwrap_or(req.backends) & req.backends;
        let wanted_name = req
            .adapter_name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .map(|n| n.to_lowercase());
        let adapter = enumerate(backends)
            .into_iter()
            .find(|a| {
                wanted_name
                    .as_ref()
                    .is_none_or(|n| a.get_info().name.to_lowercase().contains(n))
            })
            .ok_or_else(|| {
                Error::NoAdapter(format!(
                    " (backends {backends:?}{})",
                    wanted_name
                        .map(|n| format!(", name containing '{n}'"))
                        .unwrap_or_default()
                ))
            })?;
        Self::from_adapter(adapter, req)
    }

    fn from_adapter(adapter: wgpu::Adapter, req: &DeviceRequest) -> Result<GpuContext> {
        let max_chunk_bytes = req.max_chunk_bytes;
        let info = adapter.get_info();
        let wanted = wgpu::Features::SHADER_INT64
            | wgpu::Features::SHADER_F64
            | wgpu::Features::SHADER_INT64_ATOMIC_MIN_MAX
            | wgpu::Features::SHADER_INT64_ATOMIC_ALL_OPS
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("arrow-wgpu"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("opening {}: {e}", info.name)))?;
        // wgpu's default handler panics. Errors are caught in scopes around each operation
        // (`operation`); one that escapes every scope is counted here, and the operation
        // running when it arrives fails rather than return what the failed work left.
        let uncaptured = Arc::new(Mutex::new((0u64, String::new())));
        let uncaptured_sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            log::error!("uncaptured wgpu error: {e}");
            if let Ok(mut u) = uncaptured_sink.lock() {
                u.0 += 1;
                u.1 = e.to_string();
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_flag.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        let binding_limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: info.backend,
            device_type: info.device_type,
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_string(),
            shader_int64: features.contains(wgpu::Features::SHADER_INT64),
            shader_f64: features.contains(wgpu::Features::SHADER_F64),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            features,
            limits,
            max_chunk_bytes: max_chunk_bytes.map_or(binding_limit, |m| m.min(binding_limit)),
        };
        let unread = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unread"),
            size: MIN_BUFFER_BYTES,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(GpuContext {
            device,
            queue,
            summary,
            pipelines: Mutex::new(PipelineCache::default()),
            staging: Mutex::new(Vec::new()),
            lost,
            uncaptured,
            memory_limit: req.memory_limit,
            unread,
        })
    }

    /// Rows per chunk: the most rows whose widest (8-byte) column fits one binding, a
    /// multiple of 32 so that every chunk's bitmaps start on a word.
    pub(crate) fn rows_per_chunk(&self) -> usize {
        let rows = (self.summary.max_chunk_bytes / 8) as usize / 32 * 32;
        rows.clamp(32, u32::MAX as usize / 64 * 32)
    }

    /// The compute pipeline cached under `key`, built from `source()` on the first call.
    pub(crate) fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?;
        if let Some(p) = cache.get(key) {
            return Ok(p);
        }
        let source = shader::params_for(source(), self.params_in_storage());
        let pipeline = self.scoped(|| {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(key),
                    source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
                });
            let layout = self.layout_for(key, &source)?;
            Ok(self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(key),
                    layout: Some(&layout),
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                }))
        })?;
        let pipeline = Arc::new(pipeline);
        cache.insert(key.to_string(), pipeline.clone());
        Ok(pipeline)
    }

    /// The pipeline layout of a kernel: every binding of group 0 that `source` declares,
    /// whether its code reads it or not (see [`shader::declared_bindings`]), so the bind
    /// groups the host builds from its list of buffers always match.
    fn layout_for(&self, key: &str, source: &str) -> Result<wgpu::PipelineLayout> {
        let declared = shader::declared_bindings(source);
        let entries = declared
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let kind = kind.ok_or_else(|| {
                    Error::Gpu(format!(
                        "kernel '{key}' leaves binding {i} of group 0 undeclared"
                    ))
                })?;
                let ty = match kind {
                    shader::BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                    shader::BindingKind::StorageRead => {
                        wgpu::BufferBindingType::Storage { read_only: true }
                    }
                    shader::BindingKind::StorageReadWrite => {
                        wgpu::BufferBindingType::Storage { read_only: false }
                    }
                };
                Ok(wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let group = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(key),
                entries: &entries,
            });
        Ok(self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(key),
                bind_group_layouts: &[Some(&group)],
                immediate_size: 0,
            }))
    }

    /// Runs one operation: every wgpu error raised while it runs (validation, internal,
    /// out of memory, a lost device, or an error outside any scope) fails it with an
    /// [`Error`], so no operation returns what failed GPU work left in its buffers.
    /// Nested operations (an upload inside a filter) run inside the outermost one's
    /// scopes; the outermost also starts the count of bytes charged against the memory
    /// limit.
    pub(crate) fn operation<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let scope = OperationScope::enter();
        if !scope.outermost() {
            return f();
        }
        let before = self.uncaptured_count();
        let out = self.scoped(f);
        let after = self.uncaptured_count();
        drop(scope);
        match out {
            Ok(_) if after.0 != before.0 => Err(self.explain(Error::Gpu(format!(
                "a wgpu error was raised while the operation ran: {}",
                after.1
            )))),
            other => other,
        }
    }

    fn uncaptured_count(&self) -> (u64, String) {
        self.uncaptured
            .lock()
            .map(|u| u.clone())
            .unwrap_or_else(|_| (u64::MAX, "the error log is poisoned".into()))
    }

    /// Runs `f`, turning any wgpu error it causes into an [`Error`].
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_lost()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let out = f();
        let errors = [
            pollster::block_on(internal.pop()),
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
        ];
        self.check_lost()?;
        if let Some(e) = errors.into_iter().flatten().next() {
            return Err(self.explain(e.into()));
        }
        out.map_err(|e| self.explain(e))
    }

    /// `e`, or [`Error::DeviceLost`] when the device turns out to be lost: wgpu reports a
    /// loss in its callback during a poll, and in between only as invalid objects.
    pub(crate) fn explain(&self, e: Error) -> Error {
        if !matches!(e, Error::Gpu(_)) {
            return e;
        }
        let _ = self.device.poll(wgpu::PollType::Poll);
        match self.check_lost() {
            Err(lost) => lost,
            Ok(()) => e,
        }
    }

    fn check_lost(&self) -> Result<()> {
        match self.lost.lock().ok().and_then(|l| l.clone()) {
            Some(why) => Err(Error::DeviceLost(why)),
            None => Ok(()),
        }
    }

    /// Counts `bytes` against the engine's memory limit for the current operation: an
    /// [`Error::OutOfMemory`] when the operation would hold more than the limit, and
    /// [`Error::DeviceLost`] once the device is gone (every allocation passes here).
    pub(crate) fn charge(&self, label: &str, bytes: u64) -> Result<()> {
        self.check_lost()?;
        let total = ALLOCATED.get().saturating_add(bytes);
        if let Some(limit) = self.memory_limit {
            if total > limit {
                return Err(Error::OutOfMemory(format!(
                    "'{label}' needs {bytes} bytes more, which would bring this operation to {total} bytes, over the engine's limit of {limit}"
                )));
            }
        }
        ALLOCATED.set(total);
        crate::profile::count(|t| t.buffers += 1);
        Ok(())
    }

    /// A storage buffer holding `bytes` (padded to 4 bytes, at least `MIN_BUFFER_BYTES`).
    pub(crate) fn storage_from_bytes(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
        let size = (bytes.len() as u64).div_ceil(4) * 4;
        let size = size.max(MIN_BUFFER_BYTES);
        self.charge(label, size)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: true,
        });
        let mut view = buffer
            .slice(..)
            .get_mapped_range_mut()
            .map_err(|e| self.explain(Error::Gpu(format!("mapping a new buffer: {e}"))))?;
        let mut dst = view.slice(..bytes.len());
        // SAFETY: the view maps `bytes.len()` bytes for writing and is held until after
        // the copy, which only writes them (the mapping may be write-combined).
        unsafe { crate::copy_on_threads(dst.as_raw_element_ptr().as_ptr(), bytes) };
        drop(view);
        buffer.unmap();
        crate::profile::count(|t| t.uploaded_bytes += bytes.len() as u64);
        Ok(buffer)
    }

    /// A zeroed storage buffer of at least `bytes` bytes.
    pub(crate) fn storage_zeroed(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let size = (bytes.div_ceil(4) * 4).max(MIN_BUFFER_BYTES);
        self.charge(label, size)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A buffer of four u32 parameters for a kernel's `params` binding: uniform, or
    /// read-only storage where [`GpuContext::params_in_storage`].
    pub(crate) fn params(&self, values: [u32; 4]) -> Result<wgpu::Buffer> {
        self.charge("params", 16)?;
        Ok(self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&values),
                usage: if self.params_in_storage() {
                    wgpu::BufferUsages::STORAGE
                } else {
                    wgpu::BufferUsages::UNIFORM
                },
            }))
    }

    /// Whether kernels read their parameters from a read-only storage buffer rather than a
    /// uniform one: on a software driver. With uniform parameters, lavapipe's memory grew
    /// by ~2 MiB for each new set of parameter values a kernel was dispatched with (and
    /// not at all for values seen before), kept as long as the pipeline, with the time of
    /// a compile each: what its uniform inlining does, compiling a variant of the kernel
    /// per set of inlined values. (A small kernel dispatched with 192 new values did not
    /// grow, so which kernels it inlines was not pinned down.) A sort of 135k rows in
    /// 8 KiB chunks grew the process by 4.5 GiB; the test binary grew to 6.8 GiB and once
    /// past the CI machine's memory. A storage buffer's contents are not inlined. Hardware
    /// drivers don't compile per value, so there the parameters stay uniform.
    pub(crate) fn params_in_storage(&self) -> bool {
        self.summary.is_software()
    }

    /// The storage bindings a kernel's `params` takes: 1 where
    /// [`GpuContext::params_in_storage`], else 0 (a uniform binding). Counted wherever a
    /// kernel's storage bindings are held to the adapter's limit.
    pub(crate) fn params_storage_bindings(&self) -> u32 {
        self.params_in_storage() as u32
    }

    /// Binds `buffers` in order to bindings 0.. of group 0 of `pipeline`.
    pub(crate) fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Bound {
        Bound {
            bytes: buffers.iter().map(|b| b.size()).sum(),
            group: self.bind_group(pipeline, buffers),
        }
    }

    fn bind_group(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Records a dispatch of at least `threads` threads (one per row or word) in a 2-D grid,
    /// since one dimension holds at most 65535 workgroups.
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bound: &Bound,
        threads: u64,
    ) {
        crate::profile::count(|t| {
            t.dispatches += 1;
            t.device_bytes += bound.bytes;
        });
        let groups = threads.div_ceil(WORKGROUP_SIZE as u64).max(1);
        let max_x = self
            .summary
            .limits
            .max_compute_workgroups_per_dimension
            .max(1) as u64;
        let x = groups.min(max_x);
        let y = groups.div_ceil(x);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bound.group, &[]);
        pass.dispatch_workgroups(x as u32, y as u32, 1);
    }

    /// Submits `encoder` and, when a profile is being taken, waits for it.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.queue.submit([encoder.finish()]);
        self.wait_for_profile()
    }

    /// Blocks until the queue is idle: a host sync, counted.
    pub(crate) fn wait(&self) -> Result<()> {
        crate::profile::count(|t| t.host_syncs += 1);
        self.wait_idle()
    }

    /// When a profile is being taken, waits for the queue so that the phase just recorded
    /// is timed alone; not counted as a host sync (the operation doesn't need it).
    pub(crate) fn wait_for_profile(&self) -> Result<()> {
        if crate::profile::active() {
            self.wait_idle()?;
        }
        Ok(())
    }

    fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::DeviceLost(e.to_string()))
    }

    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    /// Copies the first `len` bytes of each buffer back to the host: one staging buffer and
    /// one map per group of parts that fits the adapter's largest buffer.
    pub(crate) fn read_many(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        let limit = self.summary.limits.max_buffer_size.max(8);
        let mut out = Vec::with_capacity(parts.len());
        let mut begin = 0;
        while begin < parts.len() {
            let mut end = begin + 1;
            let mut total = parts[begin].1.div_ceil(8) * 8;
            while end < parts.len() && total + parts[end].1.div_ceil(8) * 8 <= limit {
                total += parts[end].1.div_ceil(8) * 8;
                end += 1;
            }
            out.extend(self.read_group(&parts[begin..end], total)?);
            begin = end;
        }
        Ok(out)
    }

    fn read_group(&self, parts: &[(&wgpu::Buffer, u64)], total: u64) -> Result<Vec<Vec<u8>>> {
        if total == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        let staging = self.staging_for(total)?;
        crate::profile::count(|t| t.downloaded_bytes += total);
        let mut encoder = self.encoder();
        let mut offsets = Vec::with_capacity(parts.len());
        let mut offset = 0u64;
        for (buffer, len) in parts {
            offsets.push(offset);
            let padded = len.div_ceil(4) * 4;
            if padded > 0 {
                encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, padded);
            }
            offset += len.div_ceil(8) * 8;
        }
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging
            .slice(..total)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::DeviceLost("readback never completed".into()))?
            .map_err(|e| self.explain(Error::Gpu(format!("mapping the readback buffer: {e}"))))?;
        let view = staging
            .slice(..total)
            .get_mapped_range()
            .map_err(|e| self.explain(Error::Gpu(format!("reading the readback buffer: {e}"))))?;
        let out = parts
            .iter()
            .zip(&offsets)
            .map(|((_, len), off)| {
                crate::to_vec_on_threads(&view[*off as usize..(*off + *len) as usize])
            })
            .collect();
        drop(view);
        staging.unmap();
        self.keep_staging(staging);
        Ok(out)
    }

    /// A staging buffer of at least `bytes` for a read: the smallest kept one that holds
    /// them, or a new one (of a power of two bytes, from 4 KiB, where it may be kept).
    fn staging_for(&self, bytes: u64) -> Result<wgpu::Buffer> {
        if let Ok(mut kept) = self.staging.lock() {
            let fits = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| b.size() >= bytes)
                .min_by_key(|(_, b)| b.size())
                .map(|(i, _)| i);
            if let Some(i) = fits {
                return Ok(kept.swap_remove(i));
            }
        }
        let size = if bytes <= STAGING_KEPT_BYTES {
            bytes.next_power_of_two().max(4096)
        } else {
            bytes
        };
        self.charge("readback", size)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Keeps `staging` (unmapped) for later reads: at most [`STAGING_KEPT`] buffers of at
    /// most [`STAGING_KEPT_BYTES`] each, the smallest given up first.
    fn keep_staging(&self, staging: wgpu::Buffer) {
        if staging.size() > STAGING_KEPT_BYTES {
            return;
        }
        if let Ok(mut kept) = self.staging.lock() {
            kept.push(staging);
            if kept.len() > STAGING_KEPT {
                let smallest = (0..kept.len())
                    .min_by_key(|&i| kept[i].size())
                    .expect("not empty");
                kept.swap_remove(smallest);
            }
        }
    }
}

/// Staging buffers a context keeps for its reads: every read made one, and a
/// mappable buffer is among the costlier allocations a driver makes; a stream reads a
/// few small parts a batch.
const STAGING_KEPT: usize = 4;
/// The largest staging buffer kept (larger reads make and drop their own).
const STAGING_KEPT_BYTES: u64 = 16 << 20;

/// A bind group and the bytes its buffers span: what a dispatch over it may read and write,
/// counted per dispatch in the profile's [`crate::Traffic`].
pub(crate) struct Bound {
    group: wgpu::BindGroup,
    bytes: u64,
}

/// An error naming the first of `columns` whose type the GPU holds no layout for (a
/// binary column, a decimal of more than 18 digits), for `operation` on `ctx`'s adapter.
pub(crate) fn check_gpu_types(
    ctx: &GpuContext,
    batch: &arrow::record_batch::RecordBatch,
    columns: &[usize],
    operation: &'static str,
) -> Result<()> {
    for &i in columns {
        let field = batch.schema_ref().field(i).clone();
        if column::Layout::of(field.data_type()).is_none() {
            return Err(Error::UnsupportedType {
                operation,
                column: field.name().clone(),
                data_type: field.data_type().clone(),
                where_: format!(" on the GPU ({})", ctx.summary.name),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A context on each of Vulkan and GL that has an adapter (each required when
    /// `ARROW_WGPU_TEST_BACKENDS` names it).
    pub(crate) fn test_contexts() -> Vec<(&'static str, Arc<GpuContext>)> {
        test_contexts_with(|_| {})
    }

    /// [`test_contexts`] that spread a dispatch of more than 7 workgroups over the grid's
    /// y dimension, as a real adapter does past 65,535 workgroups (a size llvmpipe's
    /// bindings can't hold): the kernels' flat workgroup index is checked at small sizes.
    pub(crate) fn spilling_contexts() -> Vec<(&'static str, Arc<GpuContext>)> {
        test_contexts_with(|ctx| ctx.summary.limits.max_compute_workgroups_per_dimension = 7)
    }

    fn test_contexts_with(
        change: impl Fn(&mut GpuContext),
    ) -> Vec<(&'static str, Arc<GpuContext>)> {
        let required = std::env::var("ARROW_WGPU_TEST_BACKENDS").unwrap_or_default();
        let mut out = Vec::new();
        for (name, backends) in [
            ("vulkan", wgpu::Backends::VULKAN),
            ("gl", wgpu::Backends::GL),
        ] {
            let request = DeviceRequest {
                backends,
                adapter_name: None,
                max_chunk_bytes: None,
                memory_limit: None,
            };
            match GpuContext::open(&request) {
                Ok(mut ctx) => {
                    change(&mut ctx);
                    out.push((name, Arc::new(ctx)))
                }
                Err(e) => assert!(!required.contains(name), "required backend {name}: {e}"),
            }
        }
        out
    }

    const TWO_BINDINGS: &str = "@group(0) @binding(0) var<uniform> params: vec4<u32>;\n\
        @group(0) @binding(1) var<storage, read_write> out: array<u32>;\n\
        @compute @workgroup_size(1) fn main() { out[0] = params.x; }\n";

    /// Binds one buffer more than `TWO_BINDINGS` declares: a validation error.
    fn bad_bind_group(ctx: &GpuContext) -> Result<()> {
        let pipeline = ctx.pipeline("test:two_bindings", || TWO_BINDINGS.to_string())?;
        let params = ctx.params([7, 0, 0, 0])?;
        let out = ctx.storage_zeroed("out", 16)?;
        let extra = ctx.storage_zeroed("extra", 16)?;
        let _ = ctx.bind(&pipeline, &[&params, &out, &extra]);
        Ok(())
    }

    #[test]
    fn a_wgpu_error_fails_the_operation() {
        for (name, ctx) in test_contexts() {
            let err = ctx.operation(|| bad_bind_group(&ctx)).unwrap_err();
            assert!(matches!(err, Error::Gpu(_)), "{name}: {err:?}");
            // The context still works after a failed operation.
            ctx.operation(|| ctx.pipeline("test:two_bindings", || TWO_BINDINGS.to_string()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn an_error_outside_every_scope_fails_the_operation_running() {
        for (name, ctx) in test_contexts() {
            // Another thread has no error scopes: its error reaches the uncaptured handler.
            let err = ctx
                .operation(|| {
                    std::thread::scope(|s| s.spawn(|| bad_bind_group(&ctx)).join().unwrap())
                })
                .unwrap_err();
            assert!(
                matches!(&err, Error::Gpu(m) if m.contains("while the operation ran")),
                "{name}: {err:?}"
            );
        }
    }

    /// The take kernel's addressing of packed columns (`packed_at`, run on each adapter)
    /// at row indices where `l * width` wraps in u32: 2^27 (32-bit values), 2^28 (16-bit),
    /// 2^29 (8-bit), and on to 2^32 - 1. llvmpipe's 128 MiB bindings never hold such a
    /// chunk; real adapters' 4 GiB ones do.
    #[test]
    fn packed_addressing_holds_past_u32_products() {
        let source = shader::assemble(
            "#import packed\n\
            @group(0) @binding(0) var<storage, read> ls: array<u32>;\n\
            @group(0) @binding(1) var<storage, read_write> out: array<u32>;\n\
            @compute @workgroup_size(256) fn main(@builtin(global_invocation_id) id: vec3<u32>) {\n\
                let i = id.x;\n\
                if (i >= arrayLength(&ls) / 2u) { return; }\n\
                let at = packed_at(ls[2u * i], ls[2u * i + 1u]);\n\
                out[2u * i] = at.x;\n\
                out[2u * i + 1u] = at.y;\n\
            }\n",
            &[],
        );
        let mut rows: Vec<u32> = vec![0, 1, 31, 32, 33];
        for p in [27u32, 28, 29, 30, 31] {
            let edge = 1u32 << p;
            rows.extend([edge - 1, edge, edge + 1, edge + 3, edge + 37]);
        }
        rows.extend([u32::MAX - 31, u32::MAX - 1, u32::MAX]);
        let mut input = Vec::new();
        let mut want = Vec::new();
        for &l in &rows {
            for width in [1u32, 8, 16, 32] {
                input.extend([l, width]);
                let bit = l as u64 * width as u64;
                want.extend([(bit >> 5) as u32, (bit & 31) as u32]);
            }
        }
        for (name, ctx) in test_contexts() {
            let got = ctx
                .operation(|| {
                    let pipeline = ctx.pipeline("test:packed_at", || source.clone())?;
                    let ls = ctx.storage_from_bytes("ls", bytemuck::cast_slice(&input))?;
                    let out = ctx.storage_zeroed("out", input.len() as u64 * 4)?;
                    let bg = ctx.bind(&pipeline, &[&ls, &out]);
                    let mut encoder = ctx.encoder();
                    ctx.dispatch(&mut encoder, &pipeline, &bg, (input.len() / 2) as u64);
                    ctx.submit(encoder)?;
                    ctx.read_many(&[(&out, input.len() as u64 * 4)])
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: &[u32] = bytemuck::cast_slice(&got[0]);
            for (k, pair) in input.chunks(2).enumerate() {
                assert_eq!(
                    &got[2 * k..2 * k + 2],
                    &want[2 * k..2 * k + 2],
                    "{name}: row {} of a {}-bit column",
                    pair[0],
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn a_binding_the_code_never_reads_is_still_in_the_layout() {
        // `c0` is declared and bound but never read, as a string column used only for
        // its null mask: a layout derived from the code would drop it.
        let source = "@group(0) @binding(0) var<uniform> params: vec4<u32>;\n\
            @group(0) @binding(1) var<storage, read_write> out: array<u32>;\n\
            @group(0) @binding(2) var<storage, read> c0: array<u32>;\n\
            @compute @workgroup_size(1) fn main() { out[0] = params.x; }\n";
        for (name, ctx) in test_contexts() {
            let got = ctx
                .operation(|| {
                    let pipeline = ctx.pipeline("test:unused_binding", || source.to_string())?;
                    let params = ctx.params([7, 0, 0, 0])?;
                    let out = ctx.storage_zeroed("out", 16)?;
                    let c0 = ctx.storage_zeroed("c0", 16)?;
                    let bg = ctx.bind(&pipeline, &[&params, &out, &c0]);
                    let mut encoder = ctx.encoder();
                    ctx.dispatch(&mut encoder, &pipeline, &bg, 1);
                    ctx.submit(encoder)?;
                    ctx.read_many(&[(&out, 4)])
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got[0], 7u32.to_le_bytes(), "{name}");
        }
    }

    /// Past `MAX_PIPELINES` kernels, the least recently used is dropped and the ones in use
    /// stay: a process that compiles ever new generated kernels holds a bounded number.
    #[test]
    fn the_pipeline_cache_drops_the_least_recently_used() {
        let source = |i: usize| {
            format!(
                "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
                 @compute @workgroup_size(1) fn main() {{ out[0] = {i}u; }}\n"
            )
        };
        for (name, ctx) in test_contexts() {
            ctx.pipeline("test:kept", || source(0)).unwrap();
            for i in 1..MAX_PIPELINES + 40 {
                ctx.pipeline(&format!("test:generated:{i}"), || source(i))
                    .unwrap();
                // Used all along, so never the least recently used.
                ctx.pipeline("test:kept", || {
                    unreachable!("{name}: kept pipeline was dropped")
                })
                .unwrap();
            }
            let cache = ctx.pipelines.lock().unwrap();
            assert_eq!(cache.by_key.len(), MAX_PIPELINES, "{name}");
            assert!(cache.by_key.contains_key("test:kept"), "{name}");
            assert!(!cache.by_key.contains_key("test:generated:1"), "{name}");
            assert!(
                cache
                    .by_key
                    .contains_key(&format!("test:generated:{}", MAX_PIPELINES + 39)),
                "{name}"
            );
        }
    }

    /// A sort of many chunks keeps the process's memory flat: it takes from every input
    /// chunk into every output chunk, a dispatch each with its own parameters. On lavapipe,
    /// uniform parameters were compiled into a new variant of the kernel per value, held as
    /// long as the engine (see `GpuContext::params_in_storage`), and one submission held
    /// every dispatch's bindings: 40k rows in 8 KiB chunks grew the process by ~240 MiB
    /// (135k rows: 4.5 GiB). Measured in a child process of its own, so that no other
    /// test's memory is counted.
    ///
    /// On an NVIDIA H200 (driver 580) this fails: its first such sort grew the process by
    /// 229 MiB, and a sort of 60 chunks after one of 40 by 111 MiB more, about 30 KiB for
    /// each of the 3,600 takes a sort of 60 chunks runs (the take is one dispatch per input
    /// and output chunk pair). Real adapters' chunks are gigabytes, so a sort rarely has
    /// more than a few; the test stays as it is until the take stops being quadratic.
    #[test]
    fn a_sort_of_many_chunks_keeps_memory_flat() {
        use arrow::array::{Float64Array, Int64Array, RecordBatch};
        const CHILD: &str = "ARROW_WGPU_TEST_MEMORY_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "gpu::tests::a_sort_of_many_chunks_keeps_memory_flat",
                ])
                .args(["--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            assert!(
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        // Resident pages of this process, in MiB (Linux; elsewhere nothing is measured).
        let resident = || -> Option<u64> {
            let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
            Some((statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096) >> 20)
        };
        let batch = |rows: i64| {
            RecordBatch::try_from_iter([
                (
                    "k",
                    Arc::new(Int64Array::from_iter_values(
                        (0..rows).map(|x| x * 7919 % 1000),
                    )) as _,
                ),
                (
                    "v",
                    Arc::new(Float64Array::from_iter_values(
                        (0..rows).map(|x| x as f64 / 2.0),
                    )) as _,
                ),
            ])
            .unwrap()
        };
        let keys = [crate::SortKey::asc("k")];
        let (small, big) = (batch(2_000), batch(40_000));
        let cpu = crate::Engine::new(crate::Backend::Cpu).unwrap();
        let want = cpu.sort(&big, &keys, None).unwrap();
        let required = std::env::var("ARROW_WGPU_TEST_BACKENDS").unwrap_or_default();
        for (name, backends) in [
            ("vulkan", wgpu::Backends::VULKAN),
            ("gl", wgpu::Backends::GL),
        ] {
            let adapter_name = crate::Engine::adapters(backends)
                .into_iter()
                .next()
                .map(|a| a.0);
            let engine = match crate::Engine::with_options(crate::EngineOptions {
                backend: crate::Backend::Gpu,
                wgpu_backends: backends,
                adapter_name,
                // 1,024 rows a chunk: 40 chunks in and out, 3,200 takes.
                max_chunk_bytes: Some(8192),
                ..Default::default()
            }) {
                Ok(engine) => engine,
                Err(e) => {
                    assert!(!required.contains(name), "required backend {name}: {e}");
                    continue;
                }
            };
            engine.sort(&small, &keys, None).unwrap();
            let before = resident();
            let got = engine.sort(&big, &keys, None).unwrap();
            assert_eq!(got, want, "{name}");
            let (Some(before), Some(after)) = (before, resident()) else {
                continue;
            };
            assert!(
                after < before + 96,
                "{name}: a sort of 40 chunks grew the process from {before} to {after} MiB"
            );
        }
    }
}
