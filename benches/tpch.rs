//! TPC-H Q1 and Q6 (`arrow_wgpu::tpch`) on `lineitem` from tpchgen, at scale factor 1 (or
//! `ARROW_WGPU_TPCH_SF`): the CPU path, the GPU with transfers (`Backend::Gpu` on the host
//! batch: upload of the columns read, the query, download of the result) and the GPU with
//! the batch resident (uploaded before timing). Rows/s are criterion's throughput over
//! `lineitem`'s rows. Each GPU variant is checked once against the CPU before timing. The
//! CPU runs on every core the OS reports (`cpu`) and on one thread (`cpu_1t`).
//!
//! Then all 22 queries (`queries/tpch/`) through DataFusion with arrow-wgpu at the same
//! scale factor (`tpch_sql/sfN/qNN/cpu`; with `ARROW_WGPU_TPCH_SQL_GPU=1` also `.../gpu`,
//! the rule's GPU operators: minutes per query on a software driver).
//!
//! `cargo bench --bench tpch`

#[path = "../examples/common/tpch_data.rs"]
mod data;
#[path = "../examples/common/tpch_sql.rs"]
mod sql;

use arrow::record_batch::RecordBatch;
use arrow_wgpu::{tpch, Backend, Engine, EngineOptions, GpuBatch, Result};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

type Query = fn(&Engine, &RecordBatch) -> Result<RecordBatch>;
type Resident = fn(&GpuBatch) -> Result<RecordBatch>;

fn bench(c: &mut Criterion) {
    let sf: f64 = std::env::var("ARROW_WGPU_TPCH_SF")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let lineitem = data::lineitem(sf, &data::q1_q6_columns());
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let cpu_1t = Engine::with_options(EngineOptions {
        backend: Backend::Cpu,
        cpu_threads: Some(1),
        ..Default::default()
    })
    .unwrap();
    eprintln!("cpu threads: {} (cpu_1t: 1)", cpu.cpu_threads());
    let gpu = Engine::new(Backend::Gpu).ok();
    match &gpu {
        Some(g) => eprintln!("adapter: {}", g.adapter().unwrap()),
        None => eprintln!("no GPU adapter: only the CPU path is measured"),
    }
    let resident = gpu.as_ref().map(|g| g.upload(&lineitem).unwrap());
    let queries: [(&str, Query, Resident); 2] = [
        ("q1", tpch::q1, tpch::q1_resident),
        ("q6", tpch::q6, tpch::q6_resident),
    ];
    let mut group = c.benchmark_group(format!("tpch/sf{sf}"));
    group.throughput(Throughput::Elements(lineitem.num_rows() as u64));
    group.sample_size(10);
    for (name, query, on_gpu) in queries {
        let want = query(&cpu, &lineitem).unwrap();
        group.bench_function(format!("{name}/cpu"), |b| {
            b.iter(|| query(&cpu, &lineitem).unwrap())
        });
        group.bench_function(format!("{name}/cpu_1t"), |b| {
            b.iter(|| query(&cpu_1t, &lineitem).unwrap())
        });
        if let (Some(g), Some(r)) = (&gpu, &resident) {
            assert_eq!(
                query(g, &lineitem).unwrap(),
                want,
                "{name}: GPU and CPU disagree"
            );
            assert_eq!(
                on_gpu(r).unwrap(),
                want,
                "{name}: resident GPU and CPU disagree"
            );
            group.bench_function(format!("{name}/gpu_transfers"), |b| {
                b.iter(|| query(g, &lineitem).unwrap())
            });
            group.bench_function(format!("{name}/gpu_resident"), |b| {
                b.iter(|| on_gpu(r).unwrap())
            });
        }
    }
    group.finish();
}

fn bench_sql(c: &mut Criterion) {
    use std::sync::Arc;
    let sf: f64 = std::env::var("ARROW_WGPU_TPCH_SF")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tables = sql::tables(sf, 4);
    let mut sessions = vec![(
        "cpu",
        sql::session(Arc::new(Engine::new(Backend::Cpu).unwrap()), &tables),
    )];
    if std::env::var("ARROW_WGPU_TPCH_SQL_GPU").is_ok_and(|v| v == "1") {
        if let Ok(g) = Engine::new(Backend::Gpu) {
            sessions.push(("gpu", sql::session(Arc::new(g), &tables)));
        }
    }
    let mut group = c.benchmark_group(format!("tpch_sql/sf{sf}"));
    group.sample_size(10);
    for n in 1..=22 {
        for (name, ctx) in &sessions {
            group.bench_function(format!("q{n:02}/{name}"), |b| {
                b.iter(|| runtime.block_on(sql::run(ctx, n)).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench, bench_sql);
criterion_main!(benches);
