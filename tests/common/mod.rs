//! Shared test set-up: one engine per GPU adapter that wgpu finds.

//!
//! `ARROW_WGPU_REQUIRE_GPU=1` (CI sets it) turns "no adapter" into a failure instead of a
//! skip; `ARROW_WGPU_TEST_BACKENDS=vulkan,gl` names the wgpu backends that must each have
//! an adapter.

#![allow(dead_code)]

pub mod gen;

use arrow_wgpu::{Backend, Engine, EngineOptions};

/// The wgpu backends the GPU tests run on, each with an engine (optionally with small
/// chunks). Panics when CI requires a backend and it has no adapter.
pub fn gpu_engines(max_chunk_bytes: Option<u64>) -> Vec<(String, Engine)> {
    gpu_engines_with(|o| EngineOptions {
        max_chunk_bytes,
        ..o
    })
}

/// [`gpu_engines`] with the options changed by `configure` (from `Backend::Gpu` on one
/// wgpu backend).
pub fn gpu_engines_with(
    configure: impl Fn(EngineOptions) -> EngineOptions,
) -> Vec<(String, Engine)> {
    let required: Vec<String> = std::env::var("ARROW_WGPU_TEST_BACKENDS")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let require_any = std::env::var("ARROW_WGPU_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let mut engines = Vec::new();
    for (name, backends) in [
        ("vulkan", arrow_wgpu::wgpu::Backends::VULKAN),
        ("gl", arrow_wgpu::wgpu::Backends::GL),
        ("metal", arrow_wgpu::wgpu::Backends::METAL),
        ("dx12", arrow_wgpu::wgpu::Backends::DX12),
    ] {
        // Named, so that `Auto` (which takes a software adapter only when named) uses it.
        let adapter_name = Engine::adapters(backends).into_iter().next().map(|a| a.0);
        let options = configure(EngineOptions {
            backend: Backend::Gpu,
            wgpu_backends: backends,
            adapter_name,
            ..Default::default()
        });
        match Engine::with_options(options) {
            // An `Auto` engine without an adapter runs on the CPU: not a GPU engine.
            Ok(engine) if engine.adapter().is_some() => engines.push((name.to_string(), engine)),
            Ok(_) => assert!(
                !required.iter().any(|r| r == name),
                "required wgpu backend {name} has no adapter"
            ),
            Err(e) => {
                assert!(
                    !required.iter().any(|r| r == name),
                    "required wgpu backend {name} has no adapter: {e}"
                );
            }
        }
    }
    assert!(
        !(require_any && engines.is_empty()),
        "ARROW_WGPU_REQUIRE_GPU=1 but no GPU adapter was found"
    );
    if engines.is_empty() {
        eprintln!(
            "no GPU adapter: GPU tests skipped (set ARROW_WGPU_REQUIRE_GPU=1 to fail instead)"
        );
    }
    engines
}

/// [`gpu_engines`] as the adapter allows, then again in chunks of `chunk_bytes` (named
/// with their size), so that small batches cross chunk boundaries.
pub fn gpu_engines_and_small_chunks(chunk_bytes: u64) -> Vec<(String, Engine)> {
    let mut all = gpu_engines(None);
    all.extend(
        gpu_engines(Some(chunk_bytes))
            .into_iter()
            .map(|(n, e)| (format!("{n}, {chunk_bytes}-byte chunks"), e)),
    );
    all
}

pub fn cpu() -> Engine {
    Engine::new(Backend::Cpu).unwrap()
}

/// The CPU engine (named "cpu"), then each GPU engine of [`gpu_engines`], shareable.
pub fn all_engines() -> Vec<(String, std::sync::Arc<Engine>)> {
    std::iter::once(("cpu".to_string(), cpu()))
        .chain(gpu_engines(None))
        .map(|(n, e)| (n, std::sync::Arc::new(e)))
        .collect()
}

/// A folder of its own under the system's temp dir (named for the process and `name`),
/// removed when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("arrow-wgpu-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, p: &str) -> std::path::PathBuf {
        self.0.join(p)
    }

    /// The names in the folder, sorted: to check that a failed run left nothing.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rows of `batches` as text, each value of a float column by its bits (so that
/// `-0.0`, `0.0` and NaNs compare as what they are), the others as arrow displays them.
pub fn rows_by_bits(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<String>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let Some(first) = batches.first() else {
        return Vec::new();
    };
    let all = arrow::compute::concat_batches(&first.schema(), batches).unwrap();
    let columns: Vec<Vec<String>> = all
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Float64 => c
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map_or("null".into(), |v| format!("{:016x}", v.to_bits())))
                .collect(),
            _ => {
                let f =
                    arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                        .unwrap();
                (0..c.len()).map(|i| f.value(i).to_string()).collect()
            }
        })
        .collect();
    (0..all.num_rows())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect()
}
