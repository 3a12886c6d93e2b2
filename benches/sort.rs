//! Sort throughput: `sort_to_indices` on u32, i64 and f64 keys and a two-key sort (u32, i64),
//! GPU with the batch resident (`GpuBatch::sort`, the sorted batch left on the GPU), GPU with
//! upload and index download (`Engine::sort_to_indices` on `Backend::Gpu`), our CPU path
//! (stable, row format), and arrow-rs (`sort_to_indices` / `lexsort_to_indices`, not
//! stable). Rows/s are criterion's throughput.
//!
//! `cargo bench --bench sort`; sizes from `ARROW_WGPU_BENCH_ROWS` (comma-separated, default
//! `1000000,16000000`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, UInt32Array};
use arrow::compute::{lexsort_to_indices, sort_to_indices, SortColumn};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{Backend, Engine, SortKey};
mod common;

use common::sizes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn column(name: &str, rows: usize, seed: u64) -> (String, ArrayRef) {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let array: ArrayRef = match name {
        "u32" => Arc::new(UInt32Array::from_iter_values(
            (0..rows).map(|_| next() as u32),
        )),
        "i64" => Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|_| next() as i64),
        )),
        "i64_1k" => Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|_| (next() % 1000) as i64 - 500),
        )),
        _ => {
            Arc::new(Float64Array::from_iter_values((0..rows).map(|_| {
                (next() >> 11) as f64 / (1u64 << 53) as f64 * 2e6 - 1e6
            })))
        }
    };
    (name.to_string(), array)
}

fn bench(c: &mut Criterion) {
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let gpu = Engine::new(Backend::Gpu).ok();
    match &gpu {
        Some(g) => eprintln!("adapter: {}", g.adapter().unwrap()),
        None => eprintln!("no GPU adapter: only the CPU paths are measured"),
    }
    // (case, key columns): the two-key case sorts by a low-cardinality i64, then a u32.
    let cases: [(&str, &[&str]); 4] = [
        ("u32", &["u32"]),
        ("i64", &["i64"]),
        ("f64", &["f64"]),
        ("i64_1k+u32", &["i64_1k", "u32"]),
    ];
    for rows in sizes() {
        let mut group = c.benchmark_group(format!("sort/{rows}"));
        group.throughput(Throughput::Elements(rows as u64));
        group.sample_size(10);
        for (case, names) in cases {
            let data = RecordBatch::try_from_iter(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| column(n, rows, 0x9e3779b97f4a7c15 ^ i as u64)),
            )
            .unwrap();
            let keys: Vec<SortKey> = names.iter().map(|n| SortKey::asc(*n)).collect();
            group.bench_function(BenchmarkId::new("cpu", case), |b| {
                b.iter(|| cpu.sort_to_indices(&data, &keys, None).unwrap())
            });
            group.bench_function(BenchmarkId::new("arrow_rs", case), |b| {
                b.iter(|| {
                    if names.len() == 1 {
                        sort_to_indices(data.column(0), None, None).unwrap()
                    } else {
                        let columns: Vec<SortColumn> = data
                            .columns()
                            .iter()
                            .map(|c| SortColumn {
                                values: c.clone(),
                                options: None,
                            })
                            .collect();
                        lexsort_to_indices(&columns, None).unwrap()
                    }
                })
            });
            if let Some(g) = &gpu {
                let resident = g.upload(&data).unwrap();
                group.bench_function(BenchmarkId::new("gpu_resident", case), |b| {
                    b.iter(|| {
                        let out = resident.sort(&keys, None).unwrap();
                        out.wait().unwrap();
                        out
                    })
                });
                group.bench_function(BenchmarkId::new("gpu_transfers", case), |b| {
                    b.iter(|| g.sort_to_indices(&data, &keys, None).unwrap())
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
