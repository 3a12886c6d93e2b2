//! The exact aggregate functions inside DataFusion's own plans: the same bits whatever the
//! partition count (1, 2, 7), batch size and partitioning of the data, with and without
//! GROUP BY, and equal to the library's own group-by (which its property tests hold to
//! exact rational answers).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_wgpu::{col, Agg, Backend, Engine, GroupByOptions};
use arrow_wgpu_datafusion::{with_options, ArrowWgpuOptions};

#[path = "../../tests/common/mod.rs"]
mod common;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Keys from a few groups, float values with nulls, NaN, infinities, -0.0, wide exponent
/// spreads and cancellations.
fn data(seed: u64, rows: usize) -> RecordBatch {
    let mut rng = Rng(seed);
    let groups = 1 + rng.next() % 9;
    let keys: Vec<i64> = (0..rows).map(|_| (rng.next() % groups) as i64).collect();
    let values: Vec<Option<f64>> = (0..rows)
        .map(|_| match rng.next() % 40 {
            0 => None,
            1 => Some(f64::NAN),
            2 if seed.is_multiple_of(3) => Some(f64::INFINITY),
            3 => Some(-0.0),
            4 => Some(1e300),
            5 => Some(-1e300),
            6 => Some(f64::from_bits(rng.next() >> 2)),
            _ => {
                let e = (rng.next() % 80) as i32 - 40;
                let m = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                Some(if rng.next().is_multiple_of(2) { m } else { -m } * 2f64.powi(e))
            }
        })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Int64Array::from(keys)) as ArrayRef,
            Arc::new(Float64Array::from(values)) as ArrayRef,
        ],
    )
    .unwrap()
}

const FUNCTIONS: [&str; 6] = ["sum", "avg", "var", "var_pop", "stddev", "stddev_pop"];

async fn run(
    engine: &Arc<Engine>,
    batch: &RecordBatch,
    partitions: usize,
    batch_size: usize,
    pieces: usize,
    sql: &str,
) -> Vec<RecordBatch> {
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    let mut options = ArrowWgpuOptions::new(engine.clone());
    options.batch_rows = 500;
    let state = with_options(
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config),
        options,
    )
    .build();
    let ctx = SessionContext::new_with_state(state);
    // The data split into `pieces` partitions of the table, each a few batches.
    let rows = batch.num_rows();
    let per = rows.div_ceil(pieces.max(1)).max(1);
    let parts: Vec<Vec<RecordBatch>> = (0..pieces)
        .map(|p| {
            let start = (p * per).min(rows);
            let len = per.min(rows - start);
            let part = batch.slice(start, len);
            (0..len.div_ceil(97).max(1))
                .map(|b| part.slice((b * 97).min(len), 97.min(len - (b * 97).min(len))))
                .collect()
        })
        .collect();
    let table = MemTable::try_new(batch.schema(), parts).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let df = ctx.sql(sql).await.unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    // On a GPU the whole aggregation is the rule's operator.
    assert_eq!(
        engine.adapter().is_some(),
        shown.contains("WgpuAggregateExec"),
        "{shown}"
    );
    df.collect().await.unwrap()
}

fn bits(batches: &[RecordBatch]) -> Vec<Vec<Option<u64>>> {
    if batches.is_empty() {
        return Vec::new();
    }
    let batch = arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    (0..batch.num_columns())
        .map(|c| {
            let a = arrow::compute::cast(batch.column(c), &DataType::Float64).unwrap();
            a.as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .iter()
                .map(|v| v.map(f64::to_bits))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn float_aggregates_have_one_answer_whatever_the_plan() {
    let aggs = FUNCTIONS.map(|f| format!("{f}(x)")).join(", ");
    let engines = common::all_engines();
    for seed in 0..12u64 {
        let rows = [0usize, 1, 5, 300, 4000][seed as usize % 5];
        let batch = data(seed, rows);
        let grouped = format!("SELECT k, {aggs} FROM t GROUP BY k ORDER BY k");
        let global = format!("SELECT {aggs} FROM t");
        for sql in [&grouped, &global] {
            let mut answers = Vec::new();
            for (name, engine) in &engines {
                for (partitions, batch_size, pieces) in
                    [(1, 8192, 1), (2, 64, 3), (7, 13, 7), (7, 1000, 2)]
                {
                    let got = bits(&run(engine, &batch, partitions, batch_size, pieces, sql).await);
                    answers.push((format!("{name}, {partitions} partitions"), got));
                }
            }
            for (how, a) in &answers[1..] {
                assert_eq!(a, &answers[0].1, "seed {seed}, {sql}: {how}");
            }
            let answers: Vec<_> = answers.into_iter().map(|(_, a)| a).collect();
            if sql == &grouped && rows > 0 {
                // The library's group-by of the same data, sorted by key: the same bits.
                let engine = Engine::new(Backend::Cpu).unwrap();
                let lib = engine
                    .group_by_with(
                        &batch,
                        &["k"],
                        &[
                            Agg::sum(col("x")),
                            Agg::mean(col("x")),
                            Agg::var_samp(col("x")),
                            Agg::var_pop(col("x")),
                            Agg::stddev_samp(col("x")),
                            Agg::stddev_pop(col("x")),
                        ],
                        GroupByOptions::sorted(),
                    )
                    .unwrap();
                assert_eq!(bits(&[lib]), answers[0], "seed {seed}: library vs SQL");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_that_a_plain_float_sum_gets_wrong() {
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1, 1, 1, 1])) as ArrayRef,
            Arc::new(Float64Array::from(vec![1e16, 1.0, -1e16, 1.0])) as ArrayRef,
        ],
    )
    .unwrap();
    for (name, engine) in common::all_engines() {
        let out = run(
            &engine,
            &batch,
            2,
            1,
            4,
            "SELECT sum(x), avg(x), var_pop(x) FROM t",
        )
        .await;
        let b = bits(&out);
        assert_eq!(b[0], vec![Some(2.0f64.to_bits())], "{name}");
        assert_eq!(b[1], vec![Some(0.5f64.to_bits())], "{name}");
        // var_pop: (1e32 + 1 + 1e32 + 1)/4 - 0.25 = 5e31 + 0.25, rounded once.
        assert_eq!(b[2], vec![Some((5e31f64).to_bits())], "{name}");
    }
}
