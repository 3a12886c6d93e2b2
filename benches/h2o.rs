//! The exact CPU path against DataFusion's own in-memory execution, in one run: the h2o.ai
//! db-benchmark groupby questions on its data (`G1_1e7_1e2_0_0`: 10M rows, id1/id2/id4/id5
//! of 100 values, id3/id6 of 100k, v1 1..5, v2 1..15, v3 a six-decimal float in
//! [0, 100), generated here with the benchmark's distributions), plus a filter, a sort and
//! a distinct of the same rows.
//!
//! - `ours`: `Engine` on `Backend::Cpu` (every core) over the table as one `RecordBatch`;
//!   float sums, means and stddevs exact;
//! - `datafusion`: the same question as SQL on a `SessionContext` with DataFusion's own
//!   functions (plain f64 sums), over a `MemTable` of the same arrays in 8,192-row batches
//!   split into as many partitions as cores, collected.
//!
//! Both run on mimalloc, the allocator of datafusion-cli and of our command: with glibc's,
//! every big output (the filter's 1.45M rows of nine columns, a group-by's 10M groups) was
//! handed fresh pages that the kernel zeroes and faults in, a cost of the allocator and
//! not of either engine (DataFusion's 8,192-row outputs reuse freed memory).
//!
//! Both answer the same question with the same rows out (the filter and sort return every
//! column they are asked for). Before timing, each case checks that the two agree on the
//! number of rows out.
//!
//! `cargo bench --bench h2o`; `ARROW_WGPU_BENCH_ROWS` changes the row count (default
//! 10,000,000), `ARROW_WGPU_BENCH_ONLY` runs the cases whose name contains it, and
//! `ARROW_WGPU_BENCH_SIDE=ours` (or `datafusion`) times that side only (to profile one).
//! `ARROW_WGPU_BENCH_RUNS=N` runs each case N times instead of criterion's timing, and
//! prints each side's median: a fixed amount of work, for `perf stat` to count cycles.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_wgpu::{col, lit, Agg, Backend, Engine, Keep, SortKey};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rows() -> usize {
    std::env::var("ARROW_WGPU_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

/// The h2o groupby table of `n` rows with K = 100.
fn h2o(n: usize) -> RecordBatch {
    let mut state = 108u64;
    let mut next = move |bound: u64| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    };
    let k = 100u64;
    let nk = (n as u64 / k).max(1);
    let mut ids = |count: u64, width: usize| -> ArrayRef {
        let names: Vec<String> = (1..=count).map(|i| format!("id{i:0width$}")).collect();
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|_| names[next(count) as usize].clone()),
        ))
    };
    let id1 = ids(k, 3);
    let id2 = ids(k, 3);
    let id3 = ids(nk, 10);
    let mut ints = |lo: u64, count: u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            (0..n).map(|_| (lo + next(count)) as i64),
        ))
    };
    let id4 = ints(1, k);
    let id5 = ints(1, k);
    let id6 = ints(1, nk);
    let v1 = ints(1, 5);
    let v2 = ints(1, 15);
    let v3: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..n).map(|_| next(100_000_000) as f64 / 1e6),
    ));
    let mut fields = Vec::new();
    for name in ["id1", "id2", "id3"] {
        fields.push(Field::new(name, DataType::Utf8, false));
    }
    for name in ["id4", "id5", "id6", "v1", "v2"] {
        fields.push(Field::new(name, DataType::Int64, false));
    }
    fields.push(Field::new("v3", DataType::Float64, false));
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![id1, id2, id3, id4, id5, id6, v1, v2, v3],
    )
    .expect("the h2o table")
}

/// How our engine answers a case: the number of rows out.
type Ours = Box<dyn Fn(&Engine, &RecordBatch) -> usize>;

/// The cases: a name, DataFusion's SQL over table `x`, and ours.
fn cases() -> Vec<(&'static str, &'static str, Ours)> {
    fn group(keys: &'static [&'static str], aggs: fn() -> Vec<Agg>) -> Ours {
        Box::new(move |engine, batch| {
            engine
                .group_by(batch, keys, &aggs())
                .expect("group-by")
                .num_rows()
        })
    }
    vec![
        (
            "q1 sum v1 by id1 (100)",
            "SELECT id1, sum(v1) FROM x GROUP BY id1",
            group(&["id1"], || vec![Agg::sum(col("v1"))]),
        ),
        (
            "q2 sum v1 by id1, id2 (10k)",
            "SELECT id1, id2, sum(v1) FROM x GROUP BY id1, id2",
            group(&["id1", "id2"], || vec![Agg::sum(col("v1"))]),
        ),
        (
            "q3 sum v1, mean v3 by id3 (100k strings)",
            "SELECT id3, sum(v1), avg(v3) FROM x GROUP BY id3",
            group(&["id3"], || vec![Agg::sum(col("v1")), Agg::mean(col("v3"))]),
        ),
        (
            "q4 mean v1, v2, v3 by id4 (100)",
            "SELECT id4, avg(v1), avg(v2), avg(v3) FROM x GROUP BY id4",
            group(&["id4"], || {
                vec![
                    Agg::mean(col("v1")),
                    Agg::mean(col("v2")),
                    Agg::mean(col("v3")),
                ]
            }),
        ),
        (
            "q5 sum v1, v2, v3 by id6 (100k ints)",
            "SELECT id6, sum(v1), sum(v2), sum(v3) FROM x GROUP BY id6",
            group(&["id6"], || {
                vec![
                    Agg::sum(col("v1")),
                    Agg::sum(col("v2")),
                    Agg::sum(col("v3")),
                ]
            }),
        ),
        (
            "q6 stddev v3 by id4 (100)",
            "SELECT id4, stddev(v3) FROM x GROUP BY id4",
            group(&["id4"], || vec![Agg::stddev_samp(col("v3"))]),
        ),
        (
            "q7 max v1, min v2 by id3 (100k)",
            "SELECT id3, max(v1), min(v2) FROM x GROUP BY id3",
            group(&["id3"], || vec![Agg::max(col("v1")), Agg::min(col("v2"))]),
        ),
        (
            "q10 sum v3, count by id1..id6 (10M)",
            "SELECT id1, id2, id3, id4, id5, id6, sum(v3), count(*) FROM x \
             GROUP BY id1, id2, id3, id4, id5, id6",
            group(&["id1", "id2", "id3", "id4", "id5", "id6"], || {
                vec![Agg::sum(col("v3")), Agg::count_star()]
            }),
        ),
        (
            "filter v3 > 50 and id4 < 30",
            "SELECT * FROM x WHERE v3 > 50 AND id4 < 30",
            Box::new(|engine, batch| {
                let predicate = col("v3").gt(lit(50.0)).and(col("id4").lt(lit(30i64)));
                engine.filter(batch, &predicate).expect("filter").num_rows()
            }),
        ),
        (
            "sort id6, v3 by v3",
            "SELECT id6, v3 FROM x ORDER BY v3",
            Box::new(|engine, batch| {
                let two = batch.project(&[5, 8]).expect("id6, v3");
                engine
                    .sort(&two, &[SortKey::asc("v3")], None)
                    .expect("sort")
                    .num_rows()
            }),
        ),
        (
            "distinct id3 (100k)",
            "SELECT DISTINCT id3 FROM x",
            Box::new(|engine, batch| {
                let one = batch.project(&[2]).expect("id3");
                engine
                    .distinct(&one, &["id3"], Keep::Any)
                    .expect("distinct")
                    .num_rows()
            }),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let only = std::env::var("ARROW_WGPU_BENCH_ONLY").unwrap_or_default();
    let side = std::env::var("ARROW_WGPU_BENCH_SIDE").unwrap_or_default();
    let timed = |who: &str| side.is_empty() || side == who;
    let batch = h2o(n);
    let engine = Engine::new(Backend::Cpu).expect("CPU engine");
    let cores = engine.cpu_threads();
    // DataFusion's table: the same arrays in 8,192-row batches, one partition a core.
    let per = n.div_ceil(cores).max(1);
    let parts: Vec<Vec<RecordBatch>> = (0..cores)
        .map(|p| {
            let start = (p * per).min(n);
            let len = per.min(n - start);
            (0..len.div_ceil(8192))
                .map(|b| batch.slice(start + b * 8192, 8192.min(len - b * 8192)))
                .collect()
        })
        .collect();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
    let table = MemTable::try_new(batch.schema(), parts).expect("MemTable");
    ctx.register_table("x", Arc::new(table)).expect("register");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .build()
        .expect("tokio");
    let datafusion = |sql: &str| -> usize {
        runtime.block_on(async {
            let batches = ctx.sql(sql).await.expect("plan").collect().await;
            batches
                .expect("run")
                .iter()
                .map(RecordBatch::num_rows)
                .sum()
        })
    };
    let mut group = c.benchmark_group("h2o");
    group.sample_size(10);
    for (name, sql, ours) in cases() {
        if !name.contains(only.as_str()) {
            continue;
        }
        let (a, b) = (ours(&engine, &batch), datafusion(sql));
        assert_eq!(a, b, "{name}: rows out, ours vs DataFusion");
        if let Some(runs) = std::env::var("ARROW_WGPU_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            let median = |f: &dyn Fn() -> usize| {
                let mut times: Vec<f64> = (0..runs.max(1))
                    .map(|_| {
                        let start = std::time::Instant::now();
                        std::hint::black_box(f());
                        start.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                times[times.len() / 2]
            };
            for who in ["ours", "datafusion"].into_iter().filter(|w| timed(w)) {
                let ms = if who == "ours" {
                    median(&|| ours(&engine, &batch))
                } else {
                    median(&|| datafusion(sql))
                };
                println!("h2o/{who}/{name}: median of {runs} runs {ms:.1} ms");
            }
            continue;
        }
        if timed("ours") {
            group.bench_function(BenchmarkId::new("ours", name), |bench| {
                bench.iter(|| ours(&engine, &batch))
            });
        }
        if timed("datafusion") {
            group.bench_function(BenchmarkId::new("datafusion", name), |bench| {
                bench.iter(|| datafusion(sql))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
