//! Property tests of the SQL path: random tables (integers, floats with NaN and -0.0,
//! strings, dates, decimals, nulls everywhere, split into random partitions and batches)
//! and random queries (grouped and global aggregates with filters and FILTER clauses, a
//! filter with a top-k, DISTINCT) through DataFusion with arrow-wgpu added: on the CPU
//! with 1, 2 and 7 partitions and on every GPU adapter (where the rule's GPU operators run
//! them), the same bits; and a grouped query equals the library's own `group_by` of the
//! same table.

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema};
use arrow_wgpu::{col, lit, Agg, Backend, Engine, Expr, GroupByOptions};
use arrow_wgpu_datafusion::ArrowWgpuOptions;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionConfig;

use crate::common;
use crate::session_with;
use common::gen::Rng;

/// A random table: keys `k1` (Int32, few values), `k2` (Utf8, few values), values `i`
/// (Int64), `f` (Float64 with specials), `d` (Decimal128(12, 2)), `dt` (Date32).
fn table(rng: &mut Rng, rows: usize) -> RecordBatch {
    let null = |rng: &mut Rng| rng.chance(0.1);
    let k1: Int32Array = (0..rows)
        .map(|_| (!null(rng)).then(|| rng.below(5) as i32 - 2))
        .collect();
    let words = ["a", "b", "", "cc"];
    let k2: StringArray = (0..rows)
        .map(|_| (!null(rng)).then(|| *rng.pick(&words)))
        .collect();
    let i: Int64Array = (0..rows)
        .map(|_| (!null(rng)).then(|| rng.next() as i64 >> rng.below(60)))
        .collect();
    let f: Float64Array = (0..rows)
        .map(|_| {
            (!null(rng)).then(|| match rng.below(13) {
                0 => f64::NAN,
                // x86's default NaN (0.0 / 0.0): negative, first in total order.
                12 => f64::from_bits(0xfff8_0000_0000_0000),
                1 => -0.0,
                2 => 0.0,
                3 => 1e300,
                4 => -1e300,
                _ => {
                    (rng.below(2_000_001) as f64 - 1e6) / 1e3 * 2f64.powi(rng.below(40) as i32 - 20)
                }
            })
        })
        .collect();
    let d = Decimal128Array::from(
        (0..rows)
            .map(|_| (!null(rng)).then(|| rng.below(2_000_000) as i128 - 1_000_000))
            .collect::<Vec<_>>(),
    )
    .with_precision_and_scale(12, 2)
    .unwrap();
    let dt: Date32Array = (0..rows)
        .map(|_| (!null(rng)).then(|| 18_000 + rng.below(30) as i32))
        .collect();
    let schema = Schema::new(vec![
        Field::new("k1", DataType::Int32, true),
        Field::new("k2", DataType::Utf8, true),
        Field::new("i", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("d", DataType::Decimal128(12, 2), true),
        Field::new("dt", DataType::Date32, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(k1),
            Arc::new(k2),
            Arc::new(i),
            Arc::new(f),
            Arc::new(d),
            Arc::new(dt),
        ],
    )
    .unwrap()
}

/// A predicate as SQL text and as the library's expression.
fn predicate(rng: &mut Rng) -> (String, Expr) {
    let leaf = |rng: &mut Rng| -> (String, Expr) {
        match rng.below(8) {
            // DataFusion compares -0.0 = 0.0, the library in total order: the rule keeps
            // such comparisons on DataFusion; the library's equivalent is spelled out.
            6 => (
                "f = 0.0".into(),
                col("f").eq(lit(0.0)).or(col("f").eq(lit(-0.0))),
            ),
            7 => ("f > -0.0".into(), col("f").gt(lit(0.0))),
            0 => {
                let v = rng.below(5) as i32 - 2;
                (format!("k1 >= {v}"), col("k1").gt_eq(lit(v)))
            }
            1 => ("f > 0.5".into(), col("f").gt(lit(0.5))),
            2 => ("k2 = 'a'".into(), col("k2").eq(lit("a"))),
            3 => ("i IS NOT NULL".into(), col("i").is_not_null()),
            4 => (
                "k1 IN (0, 1, -2)".into(),
                col("k1").in_list(vec![lit(0), lit(1), lit(-2)]),
            ),
            _ => (
                "dt < DATE '2019-04-20'".into(),
                col("dt").lt(lit(arrow_wgpu::ScalarValue::Date32(18_006))),
            ),
        }
    };
    let (a, ea) = leaf(rng);
    if rng.chance(0.5) {
        return (a, ea);
    }
    let (b, eb) = leaf(rng);
    if rng.chance(0.5) {
        (format!("({a} AND {b})"), ea.and(eb))
    } else {
        (format!("({a} OR {b})"), ea.or(eb))
    }
}

/// An aggregate as SQL and as the library's [`Agg`].
fn aggregate(rng: &mut Rng) -> (String, Agg) {
    let (sql, agg) = match rng.below(9) {
        0 => ("count(*)".to_string(), Agg::count_star()),
        1 => ("count(f)".into(), Agg::count(col("f"))),
        2 => ("sum(f)".into(), Agg::sum(col("f"))),
        3 => ("avg(f)".into(), Agg::mean(col("f"))),
        4 => ("sum(i)".into(), Agg::sum(col("i"))),
        5 => ("var_pop(f)".into(), Agg::var_pop(col("f"))),
        6 => ("stddev(f)".into(), Agg::stddev_samp(col("f"))),
        7 => ("sum(d)".into(), Agg::sum(col("d"))),
        _ => ("count(DISTINCT k2)".into(), Agg::count_distinct(col("k2"))),
    };
    if rng.chance(0.3) {
        let (p, e) = predicate(rng);
        (format!("{sql} FILTER (WHERE {p})"), agg.filter(e))
    } else {
        (sql, agg)
    }
}

async fn run(
    engine: &Arc<Engine>,
    batch: &RecordBatch,
    partitions: usize,
    rng_seed: u64,
    sql: &str,
) -> Vec<RecordBatch> {
    let mut rng = Rng(rng_seed);
    let batch_size = 1 + rng.below(500) as usize;
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    let mut options = ArrowWgpuOptions::new(engine.clone());
    options.batch_rows = 1 + rng.below(3000) as usize;
    let ctx = session_with(config, options);
    // The table in random pieces: partitions of a few batches.
    let pieces = 1 + rng.below(5) as usize;
    let rows = batch.num_rows();
    let per = rows.div_ceil(pieces).max(1);
    let parts: Vec<Vec<RecordBatch>> = (0..pieces)
        .map(|p| {
            let start = (p * per).min(rows);
            let len = per.min(rows - start);
            vec![batch.slice(start, len)]
        })
        .collect();
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(batch.schema(), parts).unwrap()),
    )
    .unwrap();
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn one(batches: &[RecordBatch]) -> Option<RecordBatch> {
    let first = batches.first()?;
    Some(arrow::compute::concat_batches(&first.schema(), batches).unwrap())
}

/// Column values only (names and nullability differ between engines' schemas).
fn columns(b: &Option<RecordBatch>) -> Vec<ArrayRef> {
    b.as_ref().map(|b| b.columns().to_vec()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_path_has_one_answer_and_equals_the_library() {
    let engines = common::all_engines();
    for seed in 0..40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let rows = [0usize, 1, 17, 400, 3000][seed as usize % 5];
        let batch = table(&mut rng, rows);
        let naggs = 1 + rng.below(3) as usize;
        let aggs: Vec<(String, Agg)> = (0..naggs).map(|_| aggregate(&mut rng)).collect();
        // Aliased: the same aggregate may be drawn twice, and SQL wants unique names.
        let agg_sql = aggs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{} AS a{i}", a.0))
            .collect::<Vec<_>>()
            .join(", ");
        let (where_sql, where_expr) = predicate(&mut rng);
        let keys: &[&str] = match rng.below(3) {
            0 => &["k1"],
            1 => &["k2"],
            _ => &["k1", "k2"],
        };
        let key_sql = keys.join(", ");
        let order_sql = keys
            .iter()
            .map(|k| format!("{k} NULLS FIRST"))
            .collect::<Vec<_>>()
            .join(", ");
        let queries = [
            format!("SELECT {key_sql}, {agg_sql} FROM t GROUP BY {key_sql} ORDER BY {order_sql}"),
            format!("SELECT {key_sql}, {agg_sql} FROM t WHERE {where_sql} GROUP BY {key_sql} ORDER BY {order_sql}"),
            format!("SELECT {agg_sql} FROM t WHERE {where_sql}"),
            // `f` last: DataFusion 55 sorts -0.0 and 0.0 as equal within a partition and
            // apart when it merges partitions, so ties on f alone have no one order there.
            format!("SELECT * FROM t WHERE {where_sql} ORDER BY i DESC NULLS LAST, k1, k2, d, dt, f LIMIT 7"),
            format!("SELECT DISTINCT {key_sql} FROM t ORDER BY {order_sql}"),
            // Floats as keys and in min/max, where DataFusion's rules for -0.0 and NaN
            // aren't the library's: one answer on every backend all the same.
            format!("SELECT f, count(*) AS n FROM t WHERE {where_sql} GROUP BY f ORDER BY f NULLS FIRST"),
            format!("SELECT min(f) AS lo, max(f) AS hi, count(DISTINCT f) AS n FROM t WHERE {where_sql}"),
            "SELECT k1, min(f) AS lo, max(f) AS hi FROM t GROUP BY k1 ORDER BY k1 NULLS FIRST".to_string(),
            "SELECT count(*) AS n FROM t WHERE f < 0.0 OR f * 2.0 >= 3.0 OR f IN (0.0, 1.5, 2.5, 3.5, 4.5)".to_string(),
        ];
        for (qi, sql) in queries.iter().enumerate() {
            let mut first: Option<(String, Vec<ArrayRef>)> = None;
            for (name, engine) in &engines {
                let partitions: &[usize] = if name == "cpu" { &[1, 2, 7] } else { &[2] };
                for &p in partitions {
                    let got = columns(&one(&run(engine, &batch, p, seed ^ p as u64, sql).await));
                    match &first {
                        None => first = Some((format!("{name}/{p}"), got)),
                        Some((how, want)) => assert_eq!(
                            &got, want,
                            "seed {seed}: {sql}\n{name} with {p} partitions vs {how}"
                        ),
                    }
                }
            }
            // The grouped queries against the library's own group-by, sorted by key.
            if qi < 2 && rows > 0 {
                let cpu = Engine::new(Backend::Cpu).unwrap();
                let input = if qi == 1 {
                    cpu.filter(&batch, &where_expr).unwrap()
                } else {
                    batch.clone()
                };
                let lib_aggs: Vec<Agg> = aggs.iter().map(|a| a.1.clone()).collect();
                let lib = cpu
                    .group_by_with(&input, keys, &lib_aggs, GroupByOptions::sorted())
                    .unwrap();
                let want = first.unwrap().1;
                for (c, (g, w)) in lib.columns().iter().zip(&want).enumerate() {
                    // DataFusion types a decimal sum with p + 10 digits, the library 38.
                    let g = arrow::compute::cast(g, w.data_type()).unwrap();
                    assert_eq!(&g, w, "seed {seed}: {sql}\ncolumn {c}: library vs SQL");
                }
            }
        }
    }
}

/// A LIMIT that DataFusion pushes into a filter (a filter alone, and one under an
/// aggregate) holds on every engine and partition count: the GPU rule must not drop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_pushed_into_a_filter_holds() {
    let engines = common::all_engines();
    let mut rng = Rng(0x11_3175);
    let batch = table(&mut rng, 3000);
    let queries = [
        (
            "SELECT count(*) AS n FROM (SELECT i FROM t WHERE i > 0 LIMIT 7)",
            7,
        ),
        (
            "SELECT CAST(sum(c) AS BIGINT) AS n FROM \
             (SELECT k1, count(*) AS c FROM (SELECT k1, i FROM t WHERE i > 0 LIMIT 7) GROUP BY k1)",
            7,
        ),
        (
            "SELECT count(*) AS n FROM (SELECT i, f FROM t WHERE i > 0 LIMIT 1000)",
            1000,
        ),
    ];
    for (sql, want) in queries {
        for (name, engine) in &engines {
            for p in [1usize, 3] {
                // One piece: the pushed limit is then the plan's only one.
                let ctx = session_with(
                    SessionConfig::new().with_target_partitions(p),
                    ArrowWgpuOptions::new(engine.clone()),
                );
                let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap();
                ctx.register_table("t", Arc::new(table)).unwrap();
                let got = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                let got = one(&got).unwrap();
                let n = got
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .unwrap()
                    .value(0);
                assert_eq!(n, want, "{sql} on {name} with {p} partitions");
            }
        }
    }
}
