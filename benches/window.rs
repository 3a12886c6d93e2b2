//! Event-time windows: events per second through a [`WindowAggregator`] of one-minute
//! tumbling windows over 1k and 1M keys (`count(*)`, exact `avg`, `max` of a float), on
//! the CPU and on each GPU adapter found; and the time from the watermark passing a
//! window's end to its emission.
//!
//! The events: `ARROW_WGPU_BENCH_ROWS` (default 10,000,000) sensor readings over 100
//! minutes of event time, arriving up to 5 s out of order, in batches of
//! `ARROW_WGPU_BENCH_BATCH` rows (default 65,536); the watermark is the largest event
//! time seen less 5 s, so no row is late. The batches are made before the clock starts.
//!
//! A window is emitted by the `push` of the batch whose events move the watermark past its
//! end, so the time from the watermark passing the end to the window's emission is that
//! push's time: the median and the largest over the pushes that emitted are shown.
//!
//! `cargo bench --bench window`; `ARROW_WGPU_BENCH_ONLY=cpu` (or a key count, `1k`) runs
//! only the matching cases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow_wgpu::{col, Agg, Backend, Engine, EngineOptions, Watermark, Window, WindowOptions};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn events(rows: usize, keys: u64, batch: usize) -> Vec<RecordBatch> {
    let mut state = 0x5eed_2026_u64;
    let mut next = move |bound: u64| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    };
    let span_ms = 100 * 60 * 1000i64;
    let mut out = Vec::new();
    let mut at = 0;
    while at < rows {
        let n = batch.min(rows - at);
        let ts: Vec<i64> = (at..at + n)
            .map(|i| (i as i64 * span_ms) / rows as i64 - next(5_000) as i64)
            .collect();
        let key: Vec<i64> = (0..n).map(|_| next(keys) as i64).collect();
        let v: Vec<f64> = (0..n)
            .map(|_| next(1_000_000) as f64 / 1e4 - 20.0)
            .collect();
        out.push(
            RecordBatch::try_from_iter([
                (
                    "ts",
                    Arc::new(TimestampMillisecondArray::from(ts)) as ArrayRef,
                ),
                ("sensor", Arc::new(Int64Array::from(key)) as ArrayRef),
                ("v", Arc::new(Float64Array::from(v)) as ArrayRef),
            ])
            .unwrap(),
        );
        at += n;
    }
    out
}

/// (events/s, windows emitted, rows out, median and largest emitting push).
fn run(engine: &Engine, batches: &[RecordBatch]) -> (f64, u64, usize, Duration, Duration) {
    let options = WindowOptions::new("ts", Window::tumble(Duration::from_secs(60)))
        .watermark(Watermark::Delay(Duration::from_secs(5)));
    let aggs = [Agg::count_star(), Agg::mean(col("v")), Agg::max(col("v"))];
    let mut agg = engine
        .window_aggregator(batches[0].schema(), options, &["sensor"], &aggs)
        .unwrap();
    let mut emitting = Vec::new();
    let mut rows_out = 0;
    let started = Instant::now();
    for b in batches {
        let t = Instant::now();
        if let Some(out) = agg.push(b).unwrap() {
            emitting.push(t.elapsed());
            rows_out += out.num_rows();
        }
    }
    let stats = agg.stats();
    if let Some(out) = agg.finish().unwrap() {
        rows_out += out.num_rows();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(stats.late_rows, 0);
    emitting.sort();
    let median = emitting
        .get(emitting.len() / 2)
        .copied()
        .unwrap_or_default();
    let largest = emitting.last().copied().unwrap_or_default();
    (
        stats.rows as f64 / secs,
        stats.emitted_windows + stats.open_windows as u64,
        rows_out,
        median,
        largest,
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rows = env("ARROW_WGPU_BENCH_ROWS", 10_000_000);
    let batch = env("ARROW_WGPU_BENCH_BATCH", 65_536);
    let only = std::env::var("ARROW_WGPU_BENCH_ONLY").unwrap_or_default();
    let mut engines = vec![("cpu".to_string(), Engine::new(Backend::Cpu).unwrap())];
    for (name, backends) in [
        ("vulkan", arrow_wgpu::wgpu::Backends::VULKAN),
        ("gl", arrow_wgpu::wgpu::Backends::GL),
        ("metal", arrow_wgpu::wgpu::Backends::METAL),
        ("dx12", arrow_wgpu::wgpu::Backends::DX12),
    ] {
        let adapter_name = Engine::adapters(backends).into_iter().next().map(|a| a.0);
        if let Ok(e) = Engine::with_options(EngineOptions {
            backend: Backend::Gpu,
            wgpu_backends: backends,
            adapter_name: adapter_name.clone(),
            ..Default::default()
        }) {
            if e.adapter().is_some() {
                engines.push((format!("{name} ({})", adapter_name.unwrap_or_default()), e));
            }
        }
    }
    println!(
        "{rows} events, batches of {batch} rows, one-minute tumbling windows over 100 minutes"
    );
    println!(
        "| keys | backend | events/s | windows | rows out | emitting push, median | largest |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, keys) in [("1k", 1_000u64), ("1M", 1_000_000)] {
        let batches = events(rows, keys, batch);
        for (name, engine) in &engines {
            let case = format!("{label} {name}");
            if !only.is_empty() && !case.contains(&only) {
                continue;
            }
            // One warm-up pass (pages, GPU pipelines), then the median of three.
            run(engine, &batches);
            let mut runs: Vec<_> = (0..3).map(|_| run(engine, &batches)).collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (eps, windows, out, median, largest) = runs[1];
            println!(
                "| {label} | {name} | {:.2}M | {windows} | {out} | {:.1} ms | {:.1} ms |",
                eps / 1e6,
                median.as_secs_f64() * 1e3,
                largest.as_secs_f64() * 1e3
            );
        }
    }
}
