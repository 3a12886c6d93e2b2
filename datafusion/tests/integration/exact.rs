//! The exact aggregate functions inside DataFusion's own plans: the same bits whatever the
//! partition count (1, 2, 7), batch size and partitioning of the data, with and without
//! GROUP BY, and equal to the library's own group-by (which its property tests hold to
//! exact rational answers).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch,
    StringArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_wgpu::{col, Agg, Backend, Engine, GroupByOptions};
use arrow_wgpu_datafusion::ArrowWgpuOptions;

use crate::common;
use crate::session_with;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionConfig;

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

/// Keys from a few groups, float values with nulls, -0.0, wide exponent spreads and
/// cancellations; for even seeds also NaN, infinities and values near 1e300, which decide
/// a group's result whenever they are in it (so odd seeds leave them out: there every bit
/// of every value counts).
fn data(seed: u64, rows: usize) -> RecordBatch {
    let mut rng = Rng(seed);
    let groups = 1 + rng.next() % 9;
    let keys: Vec<i64> = (0..rows).map(|_| (rng.next() % groups) as i64).collect();
    let finite = seed % 2 == 1;
    let values: Vec<Option<f64>> = (0..rows)
        .map(|_| match rng.next() % 40 {
            1 | 2 | 4..=6 if finite => Some(rng.next() as f64 * 2f64.powi(-70)),
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
    keyed(keys, Float64Array::from(values))
}

/// The table `t` of the tests: an Int64 key `k` and a Float64 value `x`.
fn keyed(keys: Vec<i64>, values: Float64Array) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Int64Array::from(keys)) as ArrayRef,
            Arc::new(values) as ArrayRef,
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
    let plan = Plan::new(partitions, batch_size, pieces);
    run_placed(engine, batch, plan, sql, true).await
}

/// How a query is planned and its table split.
#[derive(Debug, Clone, Copy)]
struct Plan {
    partitions: usize,
    batch_size: usize,
    /// The table's partitions, each a few batches.
    pieces: usize,
    /// Whether a partial aggregate hands its rows on as states from the first batch
    /// (`convert_to_state`), as DataFusion does once it sees most rows start a group.
    skip_partial: bool,
}

impl Plan {
    fn new(partitions: usize, batch_size: usize, pieces: usize) -> Plan {
        Plan {
            partitions,
            batch_size,
            pieces,
            skip_partial: false,
        }
    }

    fn skipping_partial(self) -> Plan {
        Plan {
            skip_partial: true,
            ..self
        }
    }
}

/// The plans each property test runs: 1, 2 and 7 partitions, batches of 8192 rows down
/// to 13, and partial aggregates that aggregate or pass their rows on as states.
const PLANS: [(usize, usize, usize, bool); 6] = [
    (1, 8192, 1, false),
    (2, 64, 3, false),
    (7, 13, 7, false),
    (7, 1000, 2, false),
    (2, 64, 3, true),
    (7, 13, 7, true),
];

fn plans() -> impl Iterator<Item = Plan> {
    PLANS.into_iter().map(|(p, b, n, skip)| {
        let plan = Plan::new(p, b, n);
        if skip {
            plan.skipping_partial()
        } else {
            plan
        }
    })
}

/// [`run`] with `plan`, asserting where the aggregation runs only when `check_place`.
async fn run_placed(
    engine: &Arc<Engine>,
    batch: &RecordBatch,
    plan: Plan,
    sql: &str,
    check_place: bool,
) -> Vec<RecordBatch> {
    let Plan {
        partitions,
        batch_size,
        pieces,
        skip_partial,
    } = plan;
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    if skip_partial {
        let execution = &mut config.options_mut().execution;
        execution.skip_partial_aggregation_probe_rows_threshold = 0;
        execution.skip_partial_aggregation_probe_ratio_threshold = 0.0;
    }
    let mut options = ArrowWgpuOptions::new(engine.clone());
    options.batch_rows = 500;
    let ctx = session_with(config, options);
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
    let shown = shown(&df).await;
    // On a GPU the whole aggregation is the rule's operator.
    if check_place {
        assert_eq!(
            engine.adapter().is_some(),
            shown.contains("WgpuAggregateExec"),
            "{shown}"
        );
    }
    df.collect().await.unwrap()
}

/// The physical plan of `df` as `EXPLAIN` shows it.
async fn shown(df: &datafusion::dataframe::DataFrame) -> String {
    let plan = df.clone().create_physical_plan().await.unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    shown
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
                for plan in plans() {
                    let got = bits(&run_placed(engine, &batch, plan, sql, true).await);
                    answers.push((format!("{name}, {plan:?}"), got));
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
    let batch = keyed(
        vec![1, 1, 1, 1],
        Float64Array::from(vec![1e16, 1.0, -1e16, 1.0]),
    );
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

/// A group whose every value is null, or filtered out, sums to NULL, and one whose only
/// value is its last row (in the last partition) to that value, whatever the plan: a
/// partial state of no rows merges as none, a partial state of one row as one. `sum`
/// keeps whether a group had rows (not how many), `avg` its count; both are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_without_values_are_null_whatever_the_plan() {
    let rows = 600;
    // Group 0: nulls only; 1: nulls but for its last row; 2: negative values only (the
    // FILTER keeps none); 3: 0.25 a row.
    let keys: Vec<i64> = (0..rows).map(|i| (i % 4) as i64).collect();
    let values: Vec<Option<f64>> = (0..rows)
        .map(|i| match i % 4 {
            0 => None,
            1 => (i == rows - 3).then_some(1.5),
            2 => Some(-(i as f64)),
            _ => Some(0.25),
        })
        .collect();
    let batch = keyed(keys, Float64Array::from(values));
    let sql = "SELECT k, sum(x), sum(x) FILTER (WHERE x > 0), avg(x) FILTER (WHERE x > 0) \
               FROM t GROUP BY k ORDER BY k";
    let quarter = 0.25 * (rows / 4) as f64;
    let bits_of =
        |v: &[Option<f64>]| -> Vec<Option<u64>> { v.iter().map(|x| x.map(f64::to_bits)).collect() };
    // Group 2's values: -2, -6, ..., -598.
    let sums = bits_of(&[None, Some(1.5), Some(-45000.0), Some(quarter)]);
    let kept = bits_of(&[None, Some(1.5), None, Some(quarter)]);
    let means = bits_of(&[None, Some(1.5), None, Some(0.25)]);
    for (name, engine) in common::all_engines() {
        for plan in plans() {
            let got = bits(&run_placed(&engine, &batch, plan, sql, false).await);
            assert_eq!(got[1], sums, "{name}, {plan:?}: sum");
            assert_eq!(got[2], kept, "{name}, {plan:?}: sum with FILTER");
            assert_eq!(got[3], means, "{name}, {plan:?}: avg with FILTER");
        }
    }
}

/// `s / n` (n ≥ 1) rounded once to the nearest f64, ties to even: long division on
/// integers, independent of the library's rounding.
fn rounded_quotient(s: i128, n: u64) -> f64 {
    let (mag, n) = (s.unsigned_abs(), u128::from(n));
    let (mut q, mut r) = (mag / n, mag % n);
    // 55 significant bits of the quotient (53, a rounding bit and one more), a sticky
    // bit for the rest, and the power of two they stand at.
    let mut exp = 0i32;
    if q == 0 && r == 0 {
        return if s < 0 { -0.0 } else { 0.0 };
    }
    let mut sticky = false;
    while q >= 1 << 55 {
        sticky |= q & 1 == 1;
        q >>= 1;
        exp += 1;
    }
    while q < 1 << 54 {
        r *= 2;
        q = 2 * q + u128::from(r >= n);
        if r >= n {
            r -= n;
        }
        exp -= 1;
    }
    sticky |= r != 0;
    // q has 55 bits: keep 53, round on the other two and the sticky bit.
    let (keep, low) = (q >> 2, q & 3);
    let up = low > 2 || (low == 2 && (sticky || keep & 1 == 1));
    let m = keep + u128::from(up);
    let v = m as f64 * 2f64.powi(exp + 2);
    if s < 0 {
        -v
    } else {
        v
    }
}

#[test]
fn the_reference_quotient_rounds_once() {
    assert_eq!(rounded_quotient(7, 2), 3.5);
    assert_eq!(rounded_quotient(-1, 3), -1.0 / 3.0);
    assert_eq!(rounded_quotient(1, 10), 0.1);
    // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: to even.
    assert_eq!(rounded_quotient((1 << 53) + 1, 1), 9007199254740992.0);
    assert_eq!(rounded_quotient((1 << 53) + 3, 1), 9007199254740996.0);
    // Just above the tie rounds up.
    assert_eq!(
        rounded_quotient(2 * ((1 << 53) + 1) + 1, 2),
        9007199254740994.0
    );
    assert_eq!(
        rounded_quotient(i128::from(u64::MAX) * 3, 3),
        18446744073709551616.0
    );
}

/// `avg` of every integer type: the integers' exact mean rounded once (DataFusion's own
/// `avg` rounds each value to f64 first), the same bits with 1, 2 and 7 partitions, any
/// batch size, on every backend, with and without GROUP BY, with FILTER; and
/// `avg(DISTINCT)` of integers still DataFusion's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_means_are_exact_whatever_the_plan() {
    let engines = common::all_engines();
    for seed in 0..6u64 {
        let rows = [0usize, 1, 7, 300, 2000, 4000][seed as usize];
        let mut rng = Rng(seed + 100);
        let keys: Vec<i64> = (0..rows).map(|_| (rng.next() % 5) as i64).collect();
        // Each column's raw 64 bits: random, a few extremes, nulls.
        let mut raw = |bits: u32, signed: bool| -> Vec<Option<i128>> {
            (0..rows)
                .map(|_| {
                    let r = rng.next();
                    let v = match r % 17 {
                        0 => return None,
                        1 => u64::MAX,
                        2 => 1u64 << (bits - 1),
                        3 => (1u64 << (bits - 1)) - 1,
                        _ => rng.next(),
                    } >> (64 - bits);
                    Some(if signed {
                        // Sign-extend the low `bits`.
                        i128::from(((v << (64 - bits)) as i64) >> (64 - bits))
                    } else {
                        i128::from(v)
                    })
                })
                .collect()
        };
        let columns: Vec<(&str, DataType, Vec<Option<i128>>)> = vec![
            ("i8", DataType::Int8, raw(8, true)),
            ("i16", DataType::Int16, raw(16, true)),
            ("i32", DataType::Int32, raw(32, true)),
            ("i64", DataType::Int64, raw(64, true)),
            ("u8", DataType::UInt8, raw(8, false)),
            ("u16", DataType::UInt16, raw(16, false)),
            ("u32", DataType::UInt32, raw(32, false)),
            ("u64", DataType::UInt64, raw(64, false)),
        ];
        let mut fields = vec![Field::new("k", DataType::Int64, false)];
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(keys.clone()))];
        for (name, dt, values) in &columns {
            fields.push(Field::new(*name, dt.clone(), true));
            let v = values.iter();
            arrays.push(match dt {
                DataType::Int8 => Arc::new(Int8Array::from_iter(v.map(|x| x.map(|x| x as i8)))),
                DataType::Int16 => Arc::new(Int16Array::from_iter(v.map(|x| x.map(|x| x as i16)))),
                DataType::Int32 => Arc::new(Int32Array::from_iter(v.map(|x| x.map(|x| x as i32)))),
                DataType::Int64 => Arc::new(Int64Array::from_iter(v.map(|x| x.map(|x| x as i64)))),
                DataType::UInt8 => Arc::new(UInt8Array::from_iter(v.map(|x| x.map(|x| x as u8)))),
                DataType::UInt16 => {
                    Arc::new(UInt16Array::from_iter(v.map(|x| x.map(|x| x as u16))))
                }
                DataType::UInt32 => {
                    Arc::new(UInt32Array::from_iter(v.map(|x| x.map(|x| x as u32))))
                }
                _ => Arc::new(UInt64Array::from_iter(v.map(|x| x.map(|x| x as u64)))),
            });
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        let means = columns
            .iter()
            .map(|(c, ..)| format!("avg({c})"))
            .collect::<Vec<_>>()
            .join(", ");
        let grouped = format!(
            "SELECT k, {means}, avg(i64) FILTER (WHERE u8 > 100) FROM t GROUP BY k ORDER BY k"
        );
        let global = format!("SELECT {means}, avg(i64) FILTER (WHERE u8 > 100) FROM t");
        for (sql, by_key) in [(&grouped, true), (&global, false)] {
            let mut answers = Vec::new();
            for (name, engine) in &engines {
                for plan in plans() {
                    let got = run_placed(engine, &batch, plan, sql, false).await;
                    answers.push((format!("{name}, {plan:?}"), bits(&got)));
                }
            }
            for (how, a) in &answers[1..] {
                assert_eq!(a, &answers[0].1, "seed {seed}, {sql}: {how}");
            }
            // The exact means, computed here: per key (or over all rows), each column's
            // integer sum and count, divided once.
            let groups: Vec<Option<i64>> = if by_key {
                let mut k: Vec<i64> = keys.clone();
                k.sort();
                k.dedup();
                k.into_iter().map(Some).collect()
            } else {
                vec![None]
            };
            let u8s = &columns[4].2;
            let mean = |values: &[Option<i128>], key: Option<i64>, filtered: bool| {
                let (mut s, mut n) = (0i128, 0u64);
                for (i, v) in values.iter().enumerate() {
                    let in_group = key.is_none_or(|k| keys[i] == k);
                    let passes = !filtered || u8s[i].is_some_and(|u| u > 100);
                    if let (true, true, Some(v)) = (in_group, passes, v) {
                        s += v;
                        n += 1;
                    }
                }
                (n > 0).then(|| rounded_quotient(s, n).to_bits())
            };
            let mut expected: Vec<Vec<Option<u64>>> = Vec::new();
            if by_key {
                expected.push(
                    groups
                        .iter()
                        .map(|k| Some((k.unwrap() as f64).to_bits()))
                        .collect(),
                );
            }
            for (_, _, values) in &columns {
                expected.push(groups.iter().map(|k| mean(values, *k, false)).collect());
            }
            expected.push(
                groups
                    .iter()
                    .map(|k| mean(&columns[3].2, *k, true))
                    .collect(),
            );
            let no_rows = |b: Vec<Vec<Option<u64>>>| {
                if b.iter().all(|c| c.is_empty()) {
                    Vec::new()
                } else {
                    b
                }
            };
            assert_eq!(
                no_rows(answers[0].1.clone()),
                no_rows(expected),
                "seed {seed}, {sql}"
            );
        }
        // The library's mean of the same integers: the same bits.
        if rows > 0 {
            let engine = Engine::new(Backend::Cpu).unwrap();
            let lib = engine
                .group_by_with(
                    &batch,
                    &["k"],
                    &columns
                        .iter()
                        .map(|(c, ..)| Agg::mean(col(*c)))
                        .collect::<Vec<_>>(),
                    GroupByOptions::sorted(),
                )
                .unwrap();
            let sql = format!("SELECT k, {means} FROM t GROUP BY k ORDER BY k");
            let got = run_placed(&engines[0].1, &batch, Plan::new(2, 64, 3), &sql, false).await;
            assert_eq!(bits(&[lib]), bits(&got), "seed {seed}: library vs SQL");
        }
        // avg(DISTINCT) of integers: DataFusion's, over the distinct values as Float64.
        let small: Vec<Option<i128>> = columns[0].2.clone();
        let mut distinct: Vec<i128> = small.iter().flatten().copied().collect();
        distinct.sort();
        distinct.dedup();
        let expected = (!distinct.is_empty())
            .then(|| rounded_quotient(distinct.iter().sum(), distinct.len() as u64).to_bits());
        for (name, engine) in &engines {
            let sql = "SELECT avg(DISTINCT i8) FROM t";
            let got = run_placed(engine, &batch, Plan::new(7, 13, 7), sql, false).await;
            assert_eq!(bits(&got), vec![vec![expected]], "seed {seed}, {name}");
        }
    }
}

/// `EXPLAIN` of a GPU aggregate says whether its hash table stays on the GPU across the
/// batches (integer sums and counts, exact float sums and variances, 64-bit `min`/`max`,
/// by an integer key) or why each batch is grouped on its own (a string key); and the
/// answer is the CPU's either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_whether_the_gpu_keeps_its_table() {
    let rows = 3_000usize;
    let keys: Vec<i64> = (0..rows as i64).map(|i| i % 13).collect();
    let values = Float64Array::from_iter_values((0..rows).map(|i| i as f64 * 0.125 - 99.0));
    let keyed = keyed(keys, values);
    let names = StringArray::from_iter_values((0..rows).map(|i| format!("s{}", i % 7)));
    let mut columns = keyed.columns().to_vec();
    columns.push(Arc::new(names));
    let mut fields: Vec<Field> = keyed
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("s", DataType::Utf8, false));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let kept = "hash table kept on the GPU across batches";
    let cases = [
        (
            "SELECT k, count(*), sum(k) FROM t GROUP BY k ORDER BY k",
            kept,
        ),
        (
            "SELECT k, sum(x), stddev(x) FROM t GROUP BY k ORDER BY k",
            kept,
        ),
        (
            "SELECT k, max(k), min(x) FROM t GROUP BY k ORDER BY k",
            kept,
        ),
        (
            "SELECT s, count(*) FROM t GROUP BY s ORDER BY s",
            "grouped batch by batch (a group key of type Utf8)",
        ),
    ];
    let cpu = Arc::new(Engine::new(Backend::Cpu).unwrap());
    for (sql, says) in cases {
        let want = bits(&run_placed(&cpu, &batch, Plan::new(2, 256, 3), sql, true).await);
        for (name, engine) in common::all_engines() {
            if engine.adapter().is_none() {
                continue;
            }
            let config = SessionConfig::new()
                .with_target_partitions(2)
                .with_batch_size(256);
            let ctx = session_with(config, ArrowWgpuOptions::new(engine.clone()));
            let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap();
            ctx.register_table("t", Arc::new(table)).unwrap();
            let df = ctx.sql(sql).await.unwrap();
            let shown = shown(&df).await;
            let line = shown
                .lines()
                .find(|l| l.contains("WgpuAggregateExec"))
                .unwrap_or_else(|| panic!("{name}: {shown}"));
            assert!(line.ends_with(says), "{name}: {line}");
            assert_eq!(bits(&df.collect().await.unwrap()), want, "{name}: {sql}");
        }
    }
}
