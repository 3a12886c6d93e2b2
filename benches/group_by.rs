//! Group-by throughput: `Engine::group_by` with `count(*), sum(v), avg(v)` on an i32 key, an
//! i64 key and two keys (i32, i64), at 10, 1k and 1M groups (capped at the row count).
//! Rows/s are criterion's throughput.
//!
//! Variants:
//! - `gpu_transfers`: `Backend::Gpu` (upload of the columns read, GPU hash group-by,
//!   download of the groups), `v` Int64 (an exact 96-bit integer sum per group);
//! - `gpu_resident`: the same on a `GpuBatch` uploaded before timing (`GpuBatch::group_by`:
//!   nothing uploaded; the groups' keys gathered on the GPU and downloaded);
//! - `cpu`: `Backend::Cpu`, the same query, on every core the OS reports (contiguous
//!   pieces of at least 64k rows grouped on their own threads, merged exactly);
//! - `cpu_1t`: the same on one thread (`EngineOptions::cpu_threads = Some(1)`);
//! - `auto_f64` (i32 key only): `Backend::Auto` with a Float64 `v`, which runs where `Auto`
//!   puts it: the CPU (a fall back) before float sums came to the GPU, the GPU (exact
//!   fixed-point digits, `shaders/group_fsum.wgsl`) since. Each case prints where it ran
//!   (from the engine's profile) before timing; `cpu_f64` is the same query on
//!   `Backend::Cpu`.
//!
//! Keys are drawn uniformly from `groups` values (so 1M groups over 1M rows gives about
//! 632k distinct groups); the two-key case splits each drawn value into (value % 97 as i32,
//! value / 97 as i64), so it has the same groups as the single keys. Before timing, each
//! `gpu_transfers` and `auto_f64` case checks once that its answer equals the CPU's (float
//! results are correctly rounded on every backend, so they are compared exactly too).
//!
//! `cargo bench --bench group_by`; sizes from `ARROW_WGPU_BENCH_ROWS` (comma-separated,
//! default `1000000,16000000`). (Before commit 0431eb1 a GPU group-by of ~632k groups took
//! minutes on llvmpipe: rows kept probing a table known to overflow. Fixed.)

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Backend, Engine, EngineOptions};
mod common;

use common::sizes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Columns: `k32` (i32), `k64` (i64), `ka` (i32) + `kb` (i64) for the two-key case, each
/// with `groups` distinct values at most; `v` (i64 in ±5e5) and `vf` (f64 in ±1e6).
fn batch(rows: usize, groups: usize) -> RecordBatch {
    let mut s = 0x9e3779b97f4a7c15u64 ^ groups as u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let draws: Vec<u64> = (0..rows).map(|_| next() % groups as u64).collect();
    // Odd multipliers are bijections modulo 2^32 / 2^64: the keys spread over the range
    // (and take both signs) with exactly as many distinct values as draws.
    let k32 = Int32Array::from_iter_values(
        draws
            .iter()
            .map(|&d| (d as u32).wrapping_mul(0x9e37_79b1) as i32),
    );
    let k64 = Int64Array::from_iter_values(
        draws
            .iter()
            .map(|&d| d.wrapping_mul(0xbf58_476d_1ce4_e5b9) as i64),
    );
    let ka = Int32Array::from_iter_values(draws.iter().map(|&d| (d % 97) as i32));
    let kb = Int64Array::from_iter_values(
        draws
            .iter()
            .map(|&d| (d / 97).wrapping_mul(0x94d0_49bb_1331_11eb) as i64),
    );
    let v = Int64Array::from_iter_values((0..rows).map(|_| (next() % 1_000_000) as i64 - 500_000));
    let vf = Float64Array::from_iter_values(
        (0..rows).map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6),
    );
    RecordBatch::try_from_iter([
        ("k32", Arc::new(k32) as ArrayRef),
        ("k64", Arc::new(k64)),
        ("ka", Arc::new(ka)),
        ("kb", Arc::new(kb)),
        ("v", Arc::new(v)),
        ("vf", Arc::new(vf)),
    ])
    .unwrap()
}

fn aggs(value: &str) -> [Agg; 3] {
    [
        Agg::count_star(),
        Agg::sum(col(value)),
        Agg::mean(col(value)),
    ]
}

fn label(groups: usize) -> String {
    match groups {
        g if g >= 1_000_000 && g % 1_000_000 == 0 => format!("{}M", g / 1_000_000),
        g if g >= 1_000 && g % 1_000 == 0 => format!("{}k", g / 1_000),
        g => g.to_string(),
    }
}

fn bench(c: &mut Criterion) {
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let cpu_1t = Engine::with_options(EngineOptions {
        backend: Backend::Cpu,
        cpu_threads: Some(1),
        ..Default::default()
    })
    .unwrap();
    eprintln!("cpu threads: {} (cpu_1t: 1)", cpu.cpu_threads());
    let auto = Engine::new(Backend::Auto).unwrap();
    let gpu = Engine::new(Backend::Gpu).ok();
    match &gpu {
        Some(g) => eprintln!("adapter: {}", g.adapter().unwrap()),
        None => eprintln!("no GPU adapter: only the CPU paths are measured"),
    }
    let key_sets: [(&str, &[&str]); 3] = [
        ("i32", &["k32"]),
        ("i64", &["k64"]),
        ("i32+i64", &["ka", "kb"]),
    ];
    for rows in sizes() {
        let mut group = c.benchmark_group(format!("group_by/{rows}"));
        group.throughput(Throughput::Elements(rows as u64));
        group.sample_size(10);
        let mut group_counts: Vec<usize> = [10, 1_000, 1_000_000]
            .iter()
            .map(|&g| g.min(rows).max(1))
            .collect();
        group_counts.dedup();
        for groups in group_counts {
            let data = batch(rows, groups);
            let int_aggs = aggs("v");
            let f64_aggs = aggs("vf");
            for (keys_label, keys) in key_sets {
                let id = format!("{keys_label}/{}", label(groups));
                group.bench_function(BenchmarkId::new("cpu", &id), |b| {
                    b.iter(|| cpu.group_by(&data, keys, &int_aggs).unwrap())
                });
                group.bench_function(BenchmarkId::new("cpu_1t", &id), |b| {
                    b.iter(|| cpu_1t.group_by(&data, keys, &int_aggs).unwrap())
                });
                if let Some(g) = &gpu {
                    let mut resident = None;
                    group.bench_function(BenchmarkId::new("gpu_resident", &id), |b| {
                        let r = resident.get_or_insert_with(|| {
                            let r = g.upload(&data).unwrap();
                            assert_eq!(
                                r.group_by(keys, &int_aggs).unwrap(),
                                cpu.group_by(&data, keys, &int_aggs).unwrap(),
                                "resident GPU and CPU disagree on {id}"
                            );
                            r
                        });
                        b.iter(|| r.group_by(keys, &int_aggs).unwrap())
                    });
                    drop(resident);
                    // Checked once, in the closure, so a case the filter skips costs nothing.
                    let mut checked = false;
                    group.bench_function(BenchmarkId::new("gpu_transfers", &id), |b| {
                        if !checked {
                            assert_eq!(
                                g.group_by(&data, keys, &int_aggs).unwrap(),
                                cpu.group_by(&data, keys, &int_aggs).unwrap(),
                                "GPU and CPU disagree on {id}"
                            );
                            checked = true;
                        }
                        b.iter(|| g.group_by(&data, keys, &int_aggs).unwrap())
                    });
                }
                if keys_label == "i32" {
                    group.bench_function(BenchmarkId::new("cpu_f64", &id), |b| {
                        b.iter(|| cpu.group_by(&data, keys, &f64_aggs).unwrap())
                    });
                    let mut checked = false;
                    group.bench_function(BenchmarkId::new("auto_f64", &id), |b| {
                        if !checked {
                            let (out, profile) = auto
                                .profiled(|e| e.group_by(&data, keys, &f64_aggs))
                                .unwrap();
                            assert_eq!(
                                out,
                                cpu.group_by(&data, keys, &f64_aggs).unwrap(),
                                "Auto and CPU disagree on {id} (f64)"
                            );
                            for step in profile.steps.iter().filter(|s| s.operation == "group_by") {
                                eprintln!(
                                    "auto_f64/{id}: group_by ran on {:?}{}",
                                    step.ran_on,
                                    step.fallback
                                        .as_ref()
                                        .map(|f| format!(" (fell back: {f})"))
                                        .unwrap_or_default()
                                );
                            }
                            checked = true;
                        }
                        b.iter(|| auto.group_by(&data, keys, &f64_aggs).unwrap())
                    });
                }
            }
        }
        group.finish();
    }
}

/// A stream of batches through `GroupByAccumulator` with min, max and count(DISTINCT),
/// every batch bringing new keys (the groups grow with the stream): the time per row stays
/// flat from 50 to 200 batches when merging is linear (it grew with the batch count when
/// each batch's merge rebuilt every group so far).
fn stream_merge(c: &mut Criterion) {
    use arrow_wgpu::GroupByOptions;
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let rows = 10_000;
    let mut group = c.benchmark_group("group_by_stream_merge");
    group.sample_size(10);
    for batches in [50usize, 100, 200] {
        let data: Vec<RecordBatch> = (0..batches)
            .map(|b| {
                let one = batch(rows, 5_000);
                // Keys of batch b: 5,000 of its own and the 5,000 every batch shares.
                let k = one.column_by_name("k64").unwrap();
                let k = k.as_any().downcast_ref::<Int64Array>().unwrap();
                let keys =
                    Int64Array::from_iter_values(k.values().iter().enumerate().map(|(i, &v)| {
                        if i % 2 == 0 {
                            v
                        } else {
                            v ^ (b as i64 + 1)
                        }
                    }));
                RecordBatch::try_from_iter([
                    ("k", Arc::new(keys) as ArrayRef),
                    ("v", one.column_by_name("v").unwrap().clone()),
                ])
                .unwrap()
            })
            .collect();
        let aggs = [
            Agg::min(col("v")),
            Agg::max(col("v")),
            Agg::count_distinct(col("v")),
        ];
        group.throughput(Throughput::Elements((batches * rows) as u64));
        group.bench_function(BenchmarkId::new("batches", batches), |b| {
            b.iter(|| {
                let mut acc = cpu
                    .group_by_accumulator(
                        data[0].schema(),
                        &["k"],
                        &aggs,
                        GroupByOptions::default(),
                    )
                    .unwrap();
                for d in &data {
                    acc.push(d).unwrap();
                }
                acc.finish().unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, stream_merge);
criterion_main!(benches);
