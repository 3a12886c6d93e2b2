//! Distinct throughput: `distinct` on an i64 key with 1%, 50% and 100% distinct keys (keep
//! first), and keep last / keep none at 50%, whole rows out (the key and an f64 payload).
//! Rows/s are criterion's throughput.
//!
//! Variants:
//! - `gpu_resident`: the batch already on the GPU, the distinct rows left there
//!   (`GpuBatch::distinct` + wait);
//! - `gpu_transfers`: `Engine::distinct` on `Backend::Gpu` (upload of the batch, GPU
//!   distinct and gather, download of the rows);
//! - `cpu`: `Engine::distinct` on `Backend::Cpu` (hashbrown over the packed key, then
//!   arrow's `take`).
//!
//! Keys: a shuffle of `0..rows` taken modulo `rows × share` (so exactly that many distinct
//! keys, each as often, in random order), times an odd constant to spread them over the i64
//! range. Before timing, each GPU case checks once that its answer equals the CPU's.
//!
//! `cargo bench --bench distinct`; sizes from `ARROW_WGPU_BENCH_ROWS` (comma-separated,
//! default `1000000,16000000`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{Backend, Engine, Keep};
mod common;

use common::sizes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Columns `k` (i64, `distinct` distinct values) and `v` (f64 in ±1e6).
fn batch(rows: usize, distinct: usize) -> RecordBatch {
    let mut s = 0x9e3779b97f4a7c15u64 ^ distinct as u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut order: Vec<u64> = (0..rows as u64).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let k = Int64Array::from_iter_values(
        order
            .iter()
            .map(|&o| (o % distinct as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9) as i64),
    );
    let v = Float64Array::from_iter_values(
        (0..rows).map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6),
    );
    RecordBatch::try_from_iter([("k", Arc::new(k) as ArrayRef), ("v", Arc::new(v))]).unwrap()
}

fn bench(c: &mut Criterion) {
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let gpu = Engine::new(Backend::Gpu).ok();
    match &gpu {
        Some(g) => eprintln!("adapter: {}", g.adapter().unwrap()),
        None => eprintln!("no GPU adapter: only the CPU path is measured"),
    }
    // (distinct share in percent, keep)
    let cases: [(usize, Keep); 5] = [
        (1, Keep::First),
        (50, Keep::First),
        (100, Keep::First),
        (50, Keep::Last),
        (50, Keep::None),
    ];
    for rows in sizes() {
        let mut group = c.benchmark_group(format!("distinct/{rows}"));
        group.throughput(Throughput::Elements(rows as u64));
        group.sample_size(10);
        for (share, keep) in cases {
            let data = batch(rows, (rows * share / 100).max(1));
            let id = format!("{}/{share}%", format!("{keep:?}").to_lowercase());
            group.bench_function(BenchmarkId::new("cpu", &id), |b| {
                b.iter(|| cpu.distinct(&data, &["k"], keep).unwrap())
            });
            if let Some(g) = &gpu {
                let want = || cpu.distinct(&data, &["k"], keep).unwrap();
                // Uploaded and checked once, in the closure, so a case the filter skips costs
                // nothing.
                let mut uploaded = None;
                group.bench_function(BenchmarkId::new("gpu_resident", &id), |b| {
                    let resident = uploaded.get_or_insert_with(|| {
                        let resident = g.upload(&data).unwrap();
                        let got = resident.distinct(&["k"], keep).unwrap();
                        assert_eq!(got.to_record_batch().unwrap(), want(), "{id}");
                        resident
                    });
                    b.iter(|| {
                        let out = resident.distinct(&["k"], keep).unwrap();
                        out.wait().unwrap();
                        out
                    })
                });
                let mut checked = false;
                group.bench_function(BenchmarkId::new("gpu_transfers", &id), |b| {
                    if !checked {
                        assert_eq!(g.distinct(&data, &["k"], keep).unwrap(), want(), "{id}");
                        checked = true;
                    }
                    b.iter(|| g.distinct(&data, &["k"], keep).unwrap())
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
