//! Filter throughput: GPU with the batch resident, GPU with upload and download, and the
//! CPU path (arrow-rs's `cmp` + `filter_record_batch`), at selectivities 1%, 50%, 99%, with
//! one- and three-column predicates. Rows/s are criterion's throughput.
//!
//! `cargo bench --bench filter`; sizes from `ARROW_WGPU_BENCH_ROWS` (comma-separated,
//! default `1000000,16000000`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, UInt32Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, Expr};
mod common;

use common::sizes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn batch(rows: usize) -> RecordBatch {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let a: UInt32Array = (0..rows)
        .map(|_| Some((next() % 1_000_000) as u32))
        .collect();
    let b: Int64Array = (0..rows).map(|_| Some((next() % 1000) as i64)).collect();
    let c: Float64Array = (0..rows)
        .map(|_| Some((next() % 1000) as f64 / 1000.0))
        .collect();
    RecordBatch::try_from_iter([
        ("a", Arc::new(a) as ArrayRef),
        ("b", Arc::new(b)),
        ("c", Arc::new(c)),
    ])
    .unwrap()
}

fn predicates(selectivity: f64) -> [(&'static str, Expr); 2] {
    let cut = (selectivity * 1_000_000.0) as u32;
    [
        ("1col", col("a").lt(lit(cut))),
        // b >= 0 and c < 2.0 hold for every row: same selectivity, three columns read.
        (
            "3col",
            col("a")
                .lt(lit(cut))
                .and(col("b").gt_eq(lit(0i64)))
                .and(col("c").lt(lit(2.0))),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let gpu = Engine::new(Backend::Gpu).ok();
    if let Some(g) = &gpu {
        eprintln!("adapter: {}", g.adapter().unwrap());
    } else {
        eprintln!("no GPU adapter: only the CPU path is measured");
    }
    for rows in sizes() {
        let data = batch(rows);
        let resident = gpu.as_ref().map(|g| g.upload(&data).unwrap());
        let mut group = c.benchmark_group(format!("filter/{rows}"));
        group.throughput(Throughput::Elements(rows as u64));
        group.sample_size(10);
        for selectivity in [0.01, 0.5, 0.99] {
            for (shape, p) in predicates(selectivity) {
                let id = format!("{shape}/{}%", (selectivity * 100.0) as u32);
                group.bench_function(BenchmarkId::new("cpu", &id), |b| {
                    b.iter(|| cpu.filter(&data, &p).unwrap())
                });
                if let (Some(g), Some(r)) = (&gpu, &resident) {
                    group.bench_function(BenchmarkId::new("gpu_resident", &id), |b| {
                        b.iter(|| {
                            let out = r.filter(&p).unwrap();
                            out.wait().unwrap();
                            out
                        })
                    });
                    group.bench_function(BenchmarkId::new("gpu_transfers", &id), |b| {
                        b.iter(|| g.filter(&data, &p).unwrap())
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
