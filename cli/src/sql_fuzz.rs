//! A fuzz target over the expression grammar of `--filter` (a proptest with a fixed budget
//! of cases, run in CI; failures are kept in `sql_fuzz.proptest-regressions` beside this
//! file, the corpus proptest replays first).
//!
//! Random predicates in the SQL the command takes (comparisons, arithmetic, `AND`/`OR`/
//! `NOT`, `IS [NOT] NULL`, `[NOT] BETWEEN`, `[NOT] IN`, dates, strings, decimals) over a
//! table with nulls, NaN and empty strings are parsed by [`parse_predicate`] and
//! evaluated by the library on the CPU and on every GPU adapter, and their answers held
//! against DataFusion's own evaluation of the same SQL text (an engine that shares none of
//! our parser, planner or kernels). The grammar stays inside what both define alike: no
//! integer overflow, no division, no NaN computed from infinities (the sign of such a NaN
//! is the CPU's, and our NaN rule makes it positive), and no signed zero anywhere (no zero
//! in a float column or literal, no integer zero that a float could be multiplied by):
//! DataFusion 55 compares -0.0 = 0.0, the library in IEEE total order (-0.0 < 0.0), by
//! design; `tests/filter_edges.rs` holds -0.0 against the library's own oracle.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow_wgpu::{Backend, Engine};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use super::parse_predicate;

#[path = "../../tests/common/mod.rs"]
mod common;

const ROWS: usize = 700;

/// The table: every column has nulls; `f` has NaN, `s` the empty string; no number is
/// zero (see the module's comment).
fn table() -> RecordBatch {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let null = |x: u64| x.is_multiple_of(9);
    let mut i = Vec::new();
    let mut j = Vec::new();
    let mut f = Vec::new();
    let mut s = Vec::new();
    let mut d = Vec::new();
    let mut m = Vec::new();
    let words = ["", "a", "b", "ab", "ba", "é", "zz"];
    for _ in 0..ROWS {
        let nonzero = |v: i64| if v == 0 { 1 } else { v };
        i.push((!null(next())).then(|| nonzero((next() % 41) as i64 - 20) as i32));
        j.push((!null(next())).then(|| nonzero((next() % 20_001) as i64 - 10_000)));
        f.push((!null(next())).then(|| match next() % 12 {
            0 => f64::NAN,
            _ => nonzero((next() % 4001) as i64 - 2000) as f64 / 8.0,
        }));
        s.push((!null(next())).then(|| words[(next() % words.len() as u64) as usize]));
        d.push((!null(next())).then(|| 18_000 + (next() % 60) as i32));
        m.push((!null(next())).then(|| (next() % 20_001) as i128 - 10_000));
    }
    RecordBatch::try_from_iter([
        ("i", Arc::new(Int32Array::from(i)) as ArrayRef),
        ("j", Arc::new(Int64Array::from(j)) as ArrayRef),
        ("f", Arc::new(Float64Array::from(f)) as ArrayRef),
        ("s", Arc::new(StringArray::from(s)) as ArrayRef),
        ("d", Arc::new(Date32Array::from(d)) as ArrayRef),
        (
            "m",
            Arc::new(
                Decimal128Array::from(m)
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn cmp_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["=", "!=", "<>", "<", "<=", ">", ">="])
}

fn int_lit() -> impl Strategy<Value = String> {
    (-25i64..25).prop_map(|v| if v == 0 { 3 } else { v }.to_string())
}

fn float_lit() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1.5", "-2.25", "100.125", "-250.0", "0.375", "1e2", "2.5e-1",
    ])
    .prop_map(str::to_string)
}

/// A numeric expression: columns, literals and `+ - *`, at most two operators deep
/// (values stay far from overflow, even as Int32: |i| ≤ 25, |j| ≤ 1e4, |f| ≤ 250,
/// |m| ≤ 100, at most four factors). Decimals meet integers only: where a decimal meets a
/// float, DataFusion casts the float to a decimal (an error on NaN) and the library the
/// decimal to Float64, a difference by design (README, Decimals).
fn numeric(decimal: bool) -> BoxedStrategy<String> {
    let leaf = if decimal {
        prop_oneof![Just("m".to_string()), int_lit()].boxed()
    } else {
        prop_oneof![
            Just("i".to_string()),
            Just("j".to_string()),
            Just("f".to_string()),
            int_lit(),
            float_lit(),
        ]
        .boxed()
    };
    leaf.prop_recursive(2, 4, 2, |inner| {
        (
            inner.clone(),
            prop::sample::select(vec!["+", "-", "*"]),
            inner,
        )
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
    .boxed()
}

/// A comparison between two numeric expressions of one family.
fn comparison() -> impl Strategy<Value = String> {
    any::<bool>().prop_flat_map(|decimal| {
        (numeric(decimal), cmp_op(), numeric(decimal))
            .prop_map(|(a, op, b)| format!("{a} {op} {b}"))
    })
}

/// `e [NOT] BETWEEN lo AND hi` within one family.
fn between() -> impl Strategy<Value = String> {
    any::<bool>().prop_flat_map(|decimal| {
        let bound = if decimal {
            int_lit().boxed()
        } else {
            float_lit().boxed()
        };
        (numeric(decimal), any::<bool>(), bound.clone(), bound).prop_map(|(e, not, lo, hi)| {
            format!("{e} {}BETWEEN {lo} AND {hi}", if not { "NOT " } else { "" })
        })
    })
}

fn string_lit() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["''", "'a'", "'ab'", "'b'", "'é'", "'zz'", "'c'"])
        .prop_map(str::to_string)
}

fn date_lit() -> impl Strategy<Value = String> {
    (0u32..60).prop_map(|k| {
        let day = chrono_like(18_000 + k as i32);
        format!("DATE '{day}'")
    })
}

/// yyyy-mm-dd of days since 1970-01-01 (civil-from-days).
fn chrono_like(days: i32) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

/// A boolean atom.
fn atom() -> impl Strategy<Value = String> {
    let column = prop::sample::select(vec!["i", "j", "f", "s", "d", "m"]);
    prop_oneof![
        comparison(),
        (cmp_op(), string_lit()).prop_map(|(op, s)| format!("s {op} {s}")),
        (cmp_op(), date_lit()).prop_map(|(op, d)| format!("d {op} {d}")),
        (column, any::<bool>())
            .prop_map(|(c, not)| { format!("{c} IS {}NULL", if not { "NOT " } else { "" }) }),
        between(),
        (any::<bool>(), prop::collection::vec(-22i32..22, 0..6)).prop_map(|(not, items)| {
            let list: Vec<String> = items.iter().map(|v| v.to_string()).collect();
            if list.is_empty() {
                "i IN (7)".to_string()
            } else {
                format!(
                    "i {}IN ({})",
                    if not { "NOT " } else { "" },
                    list.join(", ")
                )
            }
        }),
        (any::<bool>(), prop::collection::vec(string_lit(), 1..5)).prop_map(|(not, items)| {
            format!(
                "s {}IN ({})",
                if not { "NOT " } else { "" },
                items.join(", ")
            )
        }),
        (prop::collection::vec(float_lit(), 1..5))
            .prop_map(|items| { format!("f IN ({})", items.join(", ")) }),
    ]
}

/// A predicate: atoms under NOT, AND and OR.
fn predicate() -> impl Strategy<Value = String> {
    atom().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|p| format!("NOT ({p})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) AND ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) OR ({b})")),
        ]
    })
}

/// DataFusion's answer to `SELECT <text> FROM t`.
fn datafusion_answer(
    runtime: &tokio::runtime::Runtime,
    batch: &RecordBatch,
    text: &str,
) -> BooleanArray {
    runtime.block_on(async {
        // Without DataFusion's logical optimizer: the SQL as written, evaluated. (Its
        // simplifier rewrites `f IN (1.5) AND f IN (-2.25)` to false, which is wrong where
        // f is null: NULL AND NULL is NULL.)
        let config = datafusion::prelude::SessionConfig::new()
            .set_usize("datafusion.optimizer.max_passes", 0);
        let ctx = SessionContext::new_with_config(config);
        let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let df = ctx
            .sql(&format!("SELECT {text} AS p FROM t"))
            .await
            .unwrap_or_else(|e| panic!("DataFusion on {text}: {e}"));
        let out = df
            .collect()
            .await
            .unwrap_or_else(|e| panic!("DataFusion on {text}: {e}"));
        let out = arrow::compute::concat_batches(&out[0].schema(), &out).unwrap();
        out.column(0)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap_or_else(|| panic!("{text}: DataFusion's answer is not boolean"))
            .clone()
    })
}

#[test]
fn filter_grammar_agrees_with_datafusion_on_every_backend() {
    let batch = table();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cpu = Engine::new(Backend::Cpu).unwrap();
    let gpus = common::gpu_engines(None);
    let config = Config {
        cases: 96,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    proptest!(config, |(text in predicate())| {
        let expr = parse_predicate(&text, &batch.schema())
            .unwrap_or_else(|e| panic!("the grammar's `{text}` doesn't parse: {e:#}"));
        let want = datafusion_answer(&runtime, &batch, &text);
        let got = cpu
            .evaluate(&batch, &expr)
            .unwrap_or_else(|e| panic!("CPU on `{text}`: {e}"));
        prop_assert_eq!(&got, &want, "the CPU path and DataFusion differ on `{}`", text);
        for (name, gpu) in &gpus {
            match gpu.evaluate(&batch, &expr) {
                Ok(mask) => prop_assert_eq!(&mask, &want, "{} differs on `{}`", name, text),
                Err(e) => prop_assert!(e.is_gpu_side(), "{} on `{}`: {}", name, text, e),
            }
        }
    });
}
