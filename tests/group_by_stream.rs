//! Many batches through `GroupByAccumulator`: 200 batches with min/max (ints, floats with
//! NaN and -0.0, strings) and count(DISTINCT), keys that keep appearing and new ones in
//! every batch, against answers computed here row by row, on the CPU and every GPU adapter.
//! The merge of min/max and count(DISTINCT) states is one pass over all the parts (see
//! `Merger` in src/aggregate.rs), so the 200 batches cost their total size.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::*;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Engine, GroupByOptions};
use common::gen::Rng;

const BATCHES: usize = 200;
const ROWS: usize = 300;

fn batches() -> Vec<RecordBatch> {
    let mut rng = Rng(0x5eed_0200);
    let words = ["", "a", "b", "ab", "zz", "é"];
    (0..BATCHES)
        .map(|b| {
            // Keys 0..40 recur in every batch; 40 + 5b.. are new in batch b.
            let k: Int64Array = (0..ROWS)
                .map(|i| {
                    if rng.chance(0.05) {
                        None
                    } else if i % 3 == 0 {
                        Some(40 + 5 * b as i64 + rng.below(5) as i64)
                    } else {
                        Some(rng.below(40) as i64)
                    }
                })
                .collect();
            let x: Int32Array = (0..ROWS)
                .map(|_| (!rng.chance(0.1)).then(|| rng.below(2001) as i32 - 1000))
                .collect();
            let f: Float64Array = (0..ROWS)
                .map(|_| {
                    (!rng.chance(0.1)).then(|| match rng.below(20) {
                        0 => f64::NAN,
                        1 => -0.0,
                        2 => 0.0,
                        _ => rng.below(1000) as f64 / 8.0 - 60.0,
                    })
                })
                .collect();
            let s: StringArray = (0..ROWS)
                .map(|_| (!rng.chance(0.1)).then(|| *rng.pick(&words)))
                .collect();
            RecordBatch::try_from_iter([
                ("k", Arc::new(k) as ArrayRef),
                ("x", Arc::new(x) as ArrayRef),
                ("f", Arc::new(f) as ArrayRef),
                ("s", Arc::new(s) as ArrayRef),
            ])
            .unwrap()
        })
        .collect()
}

/// Per key (in order of first appearance): min x, max x, min f, max f (total order), max
/// s, count(DISTINCT x), count(DISTINCT s).
type Want = (
    Vec<Option<i64>>,
    Vec<Option<i32>>,
    Vec<Option<i32>>,
    Vec<Option<u64>>,
    Vec<Option<u64>>,
    Vec<Option<String>>,
    Vec<i64>,
    Vec<i64>,
);

fn want(batches: &[RecordBatch]) -> Want {
    let mut order: Vec<Option<i64>> = Vec::new();
    let mut at: HashMap<Option<i64>, usize> = HashMap::new();
    let mut xs: Vec<Vec<i32>> = Vec::new();
    let mut fs: Vec<Vec<f64>> = Vec::new();
    let mut ss: Vec<Vec<String>> = Vec::new();
    for b in batches {
        let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let x = b.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        let f = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        let s = b.column(3).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            let key = k.is_valid(i).then(|| k.value(i));
            let g = *at.entry(key).or_insert_with(|| {
                order.push(key);
                xs.push(Vec::new());
                fs.push(Vec::new());
                ss.push(Vec::new());
                order.len() - 1
            });
            if x.is_valid(i) {
                xs[g].push(x.value(i));
            }
            if f.is_valid(i) {
                fs[g].push(f.value(i));
            }
            if s.is_valid(i) {
                ss[g].push(s.value(i).to_string());
            }
        }
    }
    let bits = |v: Option<&f64>| v.map(|v| v.to_bits());
    (
        order,
        xs.iter().map(|v| v.iter().min().copied()).collect(),
        xs.iter().map(|v| v.iter().max().copied()).collect(),
        fs.iter()
            .map(|v| bits(v.iter().min_by(|a, b| a.total_cmp(b))))
            .collect(),
        fs.iter()
            .map(|v| bits(v.iter().max_by(|a, b| a.total_cmp(b))))
            .collect(),
        ss.iter().map(|v| v.iter().max().cloned()).collect(),
        xs.iter()
            .map(|v| v.iter().collect::<HashSet<_>>().len() as i64)
            .collect(),
        ss.iter()
            .map(|v| v.iter().collect::<HashSet<_>>().len() as i64)
            .collect(),
    )
}

#[test]
fn two_hundred_batches_of_min_max_and_count_distinct() {
    let batches = batches();
    let want = want(&batches);
    for (name, engine) in common::all_engines() {
        let engine: &Engine = &engine;
        // The GPU's kernels don't take max or count(DISTINCT) of strings: the same
        // positions hold max(x) and count(DISTINCT x) again there.
        let strings = name == "cpu";
        let aggs = [
            Agg::min(col("x")),
            Agg::max(col("x")),
            Agg::min(col("f")),
            Agg::max(col("f")),
            if strings {
                Agg::max(col("s"))
            } else {
                Agg::max(col("x")).alias("again")
            },
            Agg::count_distinct(col("x")),
            if strings {
                Agg::count_distinct(col("s"))
            } else {
                Agg::count_distinct(col("x")).alias("again_n")
            },
        ];
        let mut acc = engine
            .group_by_accumulator(
                batches[0].schema(),
                &["k"],
                &aggs,
                GroupByOptions::default(),
            )
            .unwrap();
        for b in &batches {
            acc.push(b).unwrap();
        }
        let out = acc.finish().unwrap();
        let floats = |c: usize| -> Vec<Option<u64>> {
            let a = out
                .column(c)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
            a.iter().map(|v| v.map(f64::to_bits)).collect()
        };
        let ints = |c: usize| -> Vec<Option<i32>> {
            let a = out.column(c).as_any().downcast_ref::<Int32Array>().unwrap();
            a.iter().collect()
        };
        let counts = |c: usize| -> Vec<i64> {
            let a = out.column(c).as_any().downcast_ref::<Int64Array>().unwrap();
            a.values().to_vec()
        };
        let keys: Vec<Option<i64>> = out
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(keys, want.0, "{name}: keys in order of first appearance");
        assert_eq!(ints(1), want.1, "{name}: min(x)");
        assert_eq!(ints(2), want.2, "{name}: max(x)");
        assert_eq!(floats(3), want.3, "{name}: min(f)");
        assert_eq!(floats(4), want.4, "{name}: max(f)");
        if !strings {
            assert_eq!(ints(5), want.2, "{name}: max(x)");
            assert_eq!(counts(6), want.6, "{name}: count(DISTINCT x)");
            assert_eq!(counts(7), want.6, "{name}: count(DISTINCT x)");
            continue;
        }
        let smax: Vec<Option<String>> =
            arrow::compute::cast(out.column(5), &arrow::datatypes::DataType::Utf8)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect();
        assert_eq!(smax, want.5, "{name}: max(s)");
        assert_eq!(counts(6), want.6, "{name}: count(DISTINCT x)");
        assert_eq!(counts(7), want.7, "{name}: count(DISTINCT s)");
    }
}
