//! Expressions of any size: `IN` lists of 100,000 literals and chains of 50,000 `AND`s,
//! `OR`s and arithmetic operators are planned, evaluated, displayed, cloned and dropped
//! without recursion (no stack overflow), answer as SQL says on the CPU (checked against
//! answers computed here), and give the same answer on every GPU adapter, or a documented
//! `UnsupportedOnGpu` where the kernel would be too large (an expression of more than
//! 2,000 nodes), which `Backend::Auto` runs on the CPU.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Backend, Engine, EngineOptions, Error, Expr, RanOn, ScalarValue};
use common::gen::Rng;

/// Rows of the test batches: enough to cross workgroups, few enough for llvmpipe.
const ROWS: usize = 3_000;

/// What the GPU must do with an expression.
#[derive(Clone, Copy, PartialEq)]
enum Gpu {
    /// Run it and answer as the CPU.
    Runs,
    /// Decline it with `UnsupportedOnGpu` (too many nodes for one kernel).
    Declines,
    /// Decline it with `UnsupportedType` (a column type the GPU doesn't hold, such as a
    /// 38-digit decimal).
    DeclinesType,
}

/// The CPU's answer to `expr` over `batch`, which must be `want`; then every GPU engine's
/// (as `gpu` says), and `Backend::Auto` named to each adapter: the CPU's answer, on the
/// GPU when it runs there and on the CPU (logged as a fall back) when it declines.
fn check(batch: &RecordBatch, expr: &Expr, want: &BooleanArray, gpu: Gpu) {
    let cpu = common::cpu().evaluate(batch, expr).unwrap();
    assert_eq!(&cpu, want, "the CPU's answer");
    for (name, engine) in common::gpu_engines(None) {
        match (engine.evaluate(batch, expr), gpu) {
            (Ok(mask), Gpu::Runs) => assert_eq!(mask, cpu, "{name}"),
            (Err(Error::UnsupportedOnGpu { reason, .. }), Gpu::Declines) => {
                assert!(reason.contains("nodes"), "{name}: {reason}")
            }
            (Err(Error::UnsupportedType { .. }), Gpu::DeclinesType) => {}
            (other, _) => panic!("{name}: {:?}", other.map(|_| "an answer")),
        }
    }
    let auto = common::gpu_engines_with(|o| EngineOptions {
        backend: Backend::Auto,
        ..o
    });
    for (name, engine) in auto {
        let (mask, profile) = engine.profiled(|e| e.evaluate(batch, expr)).unwrap();
        assert_eq!(mask, cpu, "Auto on {name}");
        let step = profile.steps.last().expect("a step");
        match gpu {
            Gpu::Runs => assert!(matches!(step.ran_on, RanOn::Gpu(_)), "{name}: {step:?}"),
            Gpu::Declines | Gpu::DeclinesType => {
                assert_eq!(step.ran_on, RanOn::Cpu, "{name}");
                assert!(step.fallback.is_some(), "{name}: {step:?}");
            }
        }
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

/// `probe IN (list)` per row from a membership test: null where the probe is null.
fn membership<T>(values: &[Option<T>], mut is_in: impl FnMut(&T) -> bool) -> BooleanArray {
    values.iter().map(|v| v.as_ref().map(&mut is_in)).collect()
}

fn ints(rng: &mut Rng, rows: usize, span: i64) -> Vec<Option<i32>> {
    (0..rows)
        .map(|i| match i {
            0 => Some(i32::MIN),
            1 => Some(i32::MAX),
            2 => Some(42),
            _ if rng.chance(0.1) => None,
            _ => Some((rng.below(2 * span as u64) as i64 - span) as i32),
        })
        .collect()
}

#[test]
fn in_list_of_100k_ints_with_mixed_literal_types() {
    let mut rng = Rng(0x1234_5678);
    let values = ints(&mut rng, ROWS, 200_000);
    let b = batch(vec![("i", Arc::new(Int32Array::from(values.clone())) as _)]);
    let mut list: Vec<Expr> = Vec::new();
    let mut set: HashSet<i64> = HashSet::new();
    for _ in 0..100_000 {
        let v = rng.below(400_000) as i64 - 200_000;
        set.insert(v);
        list.push(lit(v as i32));
    }
    // Literals of other types: an Int64 beyond Int32 (the probe widens for it: never
    // equal), an Int64 that fits, and floats (the probe is compared as a Float64: 42.0
    // matches 42, 0.5 matches nothing), and i32::MIN as a UInt8-free Int64.
    list.extend([
        lit(5_000_000_000i64),
        lit(7i64),
        lit(42.0),
        lit(0.5),
        lit(i32::MIN as i64),
    ]);
    set.extend([7, 42, i32::MIN as i64]);
    assert_eq!(list.len(), 100_005);
    let want = membership(&values, |v| set.contains(&(*v as i64)));
    assert!(want.true_count() > 100 && want.false_count() > 100);
    check(&b, &col("i").in_list(list.clone()), &want, Gpu::Runs);
    // NOT IN: null stays null.
    let not_want = arrow::compute::not(&want).unwrap();
    check(&b, &col("i").in_list(list).not(), &not_want, Gpu::Runs);
}

#[test]
fn in_list_of_100k_floats_compares_bits() {
    let mut rng = Rng(0xf10a7);
    let canonical = f64::from_bits(0x7ff8_0000_0000_0000);
    let negative_nan = f64::from_bits(0xfff8_0000_0000_0000);
    let payload_nan = f64::from_bits(0x7ff0_0000_0000_0001);
    let specials = [
        0.0,
        -0.0,
        canonical,
        negative_nan,
        payload_nan,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 4.0, // subnormal
    ];
    let values: Vec<Option<f64>> = (0..ROWS)
        .map(|i| match i {
            _ if i < specials.len() => Some(specials[i]),
            _ if rng.chance(0.1) => None,
            _ if rng.chance(0.2) => Some(*rng.pick(&specials)),
            _ => Some((rng.below(400_000) as f64 - 200_000.0) * 0.25),
        })
        .collect();
    let f32_values: Vec<Option<f32>> = values.iter().map(|v| v.map(|v| v as f32)).collect();
    let b = batch(vec![
        ("f", Arc::new(Float64Array::from(values.clone())) as _),
        ("g", Arc::new(Float32Array::from(f32_values.clone())) as _),
    ]);
    // -0.0 but not 0.0, the canonical NaN but no other NaN, infinity but not -infinity.
    let mut literals = vec![-0.0, canonical, f64::INFINITY];
    while literals.len() < 100_000 {
        literals.push((rng.below(400_000) as f64 - 200_000.0) * 0.25);
    }
    let bits: HashSet<u64> = literals.iter().map(|v| v.to_bits()).collect();
    let want = membership(&values, |v| bits.contains(&v.to_bits()));
    assert!(!want.value(0), "0.0 is not -0.0");
    assert!(want.value(1) && want.value(2) && !want.value(3) && !want.value(4));
    let list: Vec<Expr> = literals.iter().map(|&v| lit(v)).collect();
    check(&b, &col("f").in_list(list), &want, Gpu::Runs);
    // Float32: the list's own f32 values.
    let literals32: Vec<f32> = literals.iter().map(|&v| v as f32).collect();
    let bits32: HashSet<u32> = literals32.iter().map(|v| v.to_bits()).collect();
    let want32 = membership(&f32_values, |v| bits32.contains(&v.to_bits()));
    let list: Vec<Expr> = literals32.iter().map(|&v| lit(v)).collect();
    check(&b, &col("g").in_list(list), &want32, Gpu::Runs);
}

/// Strings of 0 to 24 bytes, some multi-byte, from a small alphabet so that many share
/// prefixes and lengths.
fn word(rng: &mut Rng) -> String {
    const PARTS: [&str; 6] = ["a", "b", "é", "日本", "zz", "\0"];
    let n = rng.below(9) as usize;
    (0..n).map(|_| *rng.pick(&PARTS)).collect()
}

#[test]
fn in_list_of_100k_strings() {
    let mut rng = Rng(0x5717);
    let values: Vec<Option<String>> = (0..ROWS)
        .map(|_| (!rng.chance(0.1)).then(|| word(&mut rng)))
        .collect();
    let utf8 = Arc::new(StringArray::from(values.clone())) as ArrayRef;
    let b = batch(vec![
        ("s", utf8.clone()),
        (
            "l",
            arrow::compute::cast(&utf8, &DataType::LargeUtf8).unwrap(),
        ),
        (
            "v",
            arrow::compute::cast(&utf8, &DataType::Utf8View).unwrap(),
        ),
    ]);
    let mut set: HashSet<String> = HashSet::new();
    let mut list = Vec::new();
    while list.len() < 100_000 {
        // Near misses of the column's words too: one more, one less, one other byte.
        let mut w = word(&mut rng);
        match rng.below(4) {
            0 => w.push('a'),
            1 => {
                w.pop();
            }
            _ => {}
        }
        set.insert(w.clone());
        list.push(lit(w));
    }
    let want = membership(&values, |v| set.contains(v));
    assert!(
        want.true_count() > 100 && want.false_count() > 10,
        "{want:?}"
    );
    for c in ["s", "l", "v"] {
        check(&b, &col(c).in_list(list.clone()), &want, Gpu::Runs);
    }
}

#[test]
fn in_list_of_100k_decimals_of_two_scales() {
    let mut rng = Rng(0xdec);
    let values: Vec<Option<i128>> = (0..ROWS)
        .map(|_| (!rng.chance(0.1)).then(|| rng.below(400_000) as i128 - 200_000))
        .collect();
    let d = Decimal128Array::from(values.clone())
        .with_precision_and_scale(12, 2)
        .unwrap();
    let b = batch(vec![("d", Arc::new(d) as _)]);
    // Thousandths (a Decimal128(14, 3): the probe is compared at scale 3, where only
    // multiples of 10 can match), hundredths, and the integer 7 (700 hundredths).
    let mut hundredths: HashSet<i128> = HashSet::new();
    let mut list = Vec::new();
    for i in 0..100_000 {
        let v = rng.below(400_000) as i128 - 200_000;
        if i % 10 == 0 {
            let thousandths = v * 10 + (rng.below(2) as i128) * 5;
            if thousandths % 10 == 0 {
                hundredths.insert(thousandths / 10);
            }
            list.push(lit(ScalarValue::Decimal128(thousandths, 14, 3)));
        } else {
            hundredths.insert(v);
            list.push(lit(ScalarValue::Decimal128(v, 12, 2)));
        }
    }
    list.push(lit(7));
    hundredths.insert(700);
    let want = membership(&values, |v| hundredths.contains(v));
    assert!(want.true_count() > 100 && want.false_count() > 100);
    check(&b, &col("d").in_list(list), &want, Gpu::Runs);
}

/// The GPU's IN-list kernel is one binary search whatever the list's length: 1,000 and
/// 20,000 literals of every type the GPU holds build and run (the same answer as the CPU,
/// which is checked against the OR of equalities arrow's `eq` computes).
#[test]
fn gpu_in_list_kernel_builds_for_long_lists_of_every_type() {
    let mut rng = Rng(0x9e3779b9);
    let n = ROWS;
    let raw: Vec<u64> = (0..n).map(|_| rng.below(64)).collect();
    let valid: Vec<bool> = (0..n).map(|_| !rng.chance(0.1)).collect();
    let opt = |f: &dyn Fn(u64) -> ScalarValue| -> Vec<Option<ScalarValue>> {
        raw.iter()
            .zip(&valid)
            .map(|(&r, &ok)| ok.then(|| f(r)))
            .collect()
    };
    type Make = Box<dyn Fn(u64) -> ScalarValue>;
    let cases: Vec<(&str, Make)> = vec![
        ("i8", Box::new(|r| ScalarValue::Int8(r as i8 - 32))),
        ("u8", Box::new(|r| ScalarValue::UInt8(r as u8 * 4))),
        ("i16", Box::new(|r| ScalarValue::Int16(r as i16 * -500))),
        ("u16", Box::new(|r| ScalarValue::UInt16(r as u16 * 1000))),
        (
            "i64",
            Box::new(|r| ScalarValue::Int64((r as i64 - 32) << 40)),
        ),
        ("u64", Box::new(|r| ScalarValue::UInt64(u64::MAX - r))),
        (
            "f32",
            Box::new(|r| ScalarValue::Float32(if r == 0 { -0.0 } else { r as f32 - 32.5 })),
        ),
        (
            "date",
            Box::new(|r| ScalarValue::Date32(r as i32 * 365 - 10_000)),
        ),
        (
            "ts",
            Box::new(|r| {
                ScalarValue::Timestamp(r as i64 * 1_000_000_007, TimeUnit::Nanosecond, None)
            }),
        ),
        ("bool", Box::new(|r| ScalarValue::Boolean(r % 2 == 0))),
        (
            "dec",
            Box::new(|r| ScalarValue::Decimal128(r as i128 * 3 - 90, 18, 4)),
        ),
    ];
    let engines = common::gpu_engines(None);
    for (name, make) in &cases {
        let column: Vec<Option<ScalarValue>> = opt(make.as_ref());
        let array = arrow::compute::concat(
            &column
                .iter()
                .map(|v| match v {
                    Some(v) => v.to_array(),
                    None => arrow::array::new_null_array(&make(0).data_type(), 1),
                })
                .collect::<Vec<_>>()
                .iter()
                .map(|a| a.as_ref())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let b = batch(vec![("x", array)]);
        for len in [0usize, 1, 2, 8, 9, 1_000, 20_000] {
            let list: Vec<Expr> = (0..len as u64)
                .map(|i| lit(make((i * 7 + rng.below(3)) % 64 / 2 * 2)))
                .collect();
            let expr = col("x").in_list(list.clone());
            let cpu = common::cpu().evaluate(&b, &expr).unwrap();
            if len <= 9 {
                // The oracle: SQL's OR of equalities, each through arrow's `eq`.
                let or = list
                    .iter()
                    .map(|l| col("x").eq(l.clone()))
                    .reduce(|a, e| a.or(e))
                    .unwrap_or(lit(false));
                let oracle = common::cpu().evaluate(&b, &or).unwrap();
                let oracle = if len == 0 {
                    // An empty list is false even for a null probe.
                    BooleanArray::from(vec![false; n])
                } else {
                    oracle
                };
                assert_eq!(cpu, oracle, "{name} IN {len} literals");
            }
            for (engine_name, engine) in &engines {
                let gpu = engine.evaluate(&b, &expr).unwrap();
                assert_eq!(gpu, cpu, "{engine_name}: {name} IN {len} literals");
            }
        }
    }
}

/// Small random lists over floats with every kind of NaN and zero, against the OR of
/// equalities (arrow's `eq`: total order), on the CPU and every GPU.
#[test]
fn in_list_equals_or_of_equalities_for_special_floats() {
    let specials: Vec<f64> = vec![
        0.0,
        -0.0,
        f64::from_bits(0x7ff8_0000_0000_0000),
        f64::from_bits(0xfff8_0000_0000_0000),
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
        5e-324,
    ];
    let mut rng = Rng(77);
    let values: Vec<Option<f64>> = (0..ROWS)
        .map(|_| (!rng.chance(0.1)).then(|| *rng.pick(&specials)))
        .collect();
    let b = batch(vec![
        ("f", Arc::new(Float64Array::from(values.clone())) as _),
        (
            "g",
            Arc::new(Float32Array::from(
                values
                    .iter()
                    .map(|v| v.map(|v| v as f32))
                    .collect::<Vec<_>>(),
            )) as _,
        ),
    ]);
    let engines = common::gpu_engines(None);
    for round in 0..40 {
        let c = if round % 2 == 0 { "f" } else { "g" };
        let n = 1 + rng.below(12) as usize;
        let list: Vec<Expr> = (0..n)
            .map(|_| {
                let v = *rng.pick(&specials);
                if c == "g" && rng.chance(0.5) {
                    lit(v as f32)
                } else {
                    lit(v)
                }
            })
            .collect();
        let expr = col(c).in_list(list.clone());
        let or = list
            .iter()
            .map(|l| col(c).eq(l.clone()))
            .reduce(|a, e| a.or(e))
            .unwrap();
        let cpu = common::cpu().evaluate(&b, &expr).unwrap();
        assert_eq!(cpu, common::cpu().evaluate(&b, &or).unwrap(), "{expr}");
        for (name, engine) in &engines {
            assert_eq!(engine.evaluate(&b, &expr).unwrap(), cpu, "{name}: {expr}");
        }
    }
}

/// The chain's operands: `i != v` (AND) or `i = v` (OR) for 50,000 distinct values.
fn chain_values(rng: &mut Rng) -> Vec<i32> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < 50_000 {
        let v = rng.below(400_000) as i32 - 200_000;
        if seen.insert(v) {
            out.push(v);
        }
    }
    out
}

#[test]
fn and_chain_of_50k_terms() {
    let mut rng = Rng(0xa4d);
    let values = ints(&mut rng, ROWS, 200_000);
    let b = batch(vec![("i", Arc::new(Int32Array::from(values.clone())) as _)]);
    let terms = chain_values(&mut rng);
    let set: HashSet<i32> = terms.iter().copied().collect();
    let want = membership(&values, |v| !set.contains(v));
    // Left-deep, as `a.and(b).and(c)...` builds it, and right-deep.
    let left = terms
        .iter()
        .map(|&v| col("i").not_eq(lit(v)))
        .reduce(|a, e| a.and(e))
        .unwrap();
    check(&b, &left, &want, Gpu::Declines);
    let right = terms
        .iter()
        .rev()
        .map(|&v| col("i").not_eq(lit(v)))
        .reduce(|a, e| e.and(a))
        .unwrap();
    check(&b, &right, &want, Gpu::Declines);
}

#[test]
fn or_chain_of_50k_terms() {
    let mut rng = Rng(0x0f);
    let values = ints(&mut rng, ROWS, 200_000);
    let b = batch(vec![("i", Arc::new(Int32Array::from(values.clone())) as _)]);
    let terms = chain_values(&mut rng);
    let set: HashSet<i32> = terms.iter().copied().collect();
    let want = membership(&values, |v| set.contains(v));
    assert!(want.true_count() > 100);
    let chain = terms
        .iter()
        .map(|&v| col("i").eq(lit(v)))
        .reduce(|a, e| a.or(e))
        .unwrap();
    check(&b, &chain, &want, Gpu::Declines);
}

/// `i op c1 op c2 ...` of 50,000 operators, left to right, each with its own semantics:
/// integers wrap (and `/` truncates), floats are IEEE with a computed NaN canonical,
/// decimals keep their scale.
#[test]
fn arithmetic_chains_of_50k_terms() {
    let mut rng = Rng(0xadd);
    let values = ints(&mut rng, ROWS, 1_000_000);
    let floats: Vec<Option<f64>> = (0..ROWS)
        .map(|i| match i {
            0 => Some(f64::from_bits(0xfff8_0000_0000_0001)), // a negative NaN with payload
            1 => Some(f64::INFINITY),
            2 => Some(-0.0),
            _ if rng.chance(0.1) => None,
            _ => Some(rng.below(1 << 20) as f64 / 1024.0 - 512.0),
        })
        .collect();
    let cents: Vec<Option<i128>> = values.iter().map(|v| v.map(|v| v as i128)).collect();
    // Integers: + - * and an occasional / of constants.
    let ops: Vec<(u64, i32)> = (0..50_000)
        .map(|k| {
            let op = if k % 97 == 0 { 3 } else { rng.below(3) };
            let c = match op {
                2 => 3 + rng.below(5) as i32,
                3 => 2 + rng.below(3) as i32,
                _ => rng.below(2_000_000_000) as i32 - 1_000_000_000,
            };
            (op, c)
        })
        .collect();
    let mut int_chain = col("i");
    for &(op, c) in &ops {
        int_chain = match op {
            0 => int_chain + lit(c),
            1 => int_chain - lit(c),
            2 => int_chain * lit(c),
            _ => int_chain / lit(c),
        };
    }
    let int_want: Vec<Option<i32>> = values
        .iter()
        .map(|v| {
            v.map(|mut x| {
                for &(op, c) in &ops {
                    x = match op {
                        0 => x.wrapping_add(c),
                        1 => x.wrapping_sub(c),
                        2 => x.wrapping_mul(c),
                        _ => x / c,
                    };
                }
                x
            })
        })
        .collect();
    // Floats: + and - of values that round, so that the order matters.
    let float_ops: Vec<(bool, f64)> = (0..50_000)
        .map(|_| {
            (
                rng.chance(0.5),
                (rng.below(1 << 30) as f64) * if rng.chance(0.5) { 1e-3 } else { 1e9 },
            )
        })
        .collect();
    let mut float_chain = col("f");
    for &(add, c) in &float_ops {
        float_chain = if add {
            float_chain + lit(c)
        } else {
            float_chain - lit(c)
        };
    }
    let canonical = |x: f64| {
        if x.is_nan() {
            f64::from_bits(0x7ff8_0000_0000_0000)
        } else {
            x
        }
    };
    let float_want: Vec<Option<f64>> = floats
        .iter()
        .map(|v| {
            v.map(|mut x| {
                for &(add, c) in &float_ops {
                    x = canonical(if add { x + c } else { x - c });
                }
                x
            })
        })
        .collect();
    assert!(float_want[0].unwrap().to_bits() == 0x7ff8_0000_0000_0000);
    // Decimals: + 0.01, 50,000 times (the type's precision grows to 38 and stays).
    let mut dec_chain = col("d");
    for _ in 0..50_000 {
        dec_chain = dec_chain + lit(ScalarValue::Decimal128(1, 12, 2));
    }
    let dec_want: Vec<Option<i128>> = cents.iter().map(|v| v.map(|v| v + 50_000)).collect();
    let b = batch(vec![
        ("i", Arc::new(Int32Array::from(values.clone())) as _),
        ("f", Arc::new(Float64Array::from(floats)) as _),
        (
            "d",
            Arc::new(
                Decimal128Array::from(cents)
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ) as _,
        ),
        ("want_i", Arc::new(Int32Array::from(int_want)) as _),
        ("want_f", Arc::new(Float64Array::from(float_want)) as _),
        (
            "want_d",
            Arc::new(
                Decimal128Array::from(dec_want)
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
            ) as _,
        ),
    ]);
    let valid: Vec<Option<bool>> = values.iter().map(|v| v.map(|_| true)).collect();
    let want = BooleanArray::from(valid.clone());
    check(&b, &int_chain.eq(col("want_i")), &want, Gpu::Declines);
    check(&b, &dec_chain.eq(col("want_d")), &want, Gpu::DeclinesType);
    let float_valid: BooleanArray = b
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .map(|v| v.map(|_| true))
        .collect();
    check(
        &b,
        &float_chain.eq(col("want_f")),
        &float_valid,
        Gpu::Declines,
    );
}

/// Chains a little under the GPU's limit of 2,000 nodes run there (one statement per
/// operand), and the same answer as the CPU's.
#[test]
fn chains_under_the_node_limit_run_on_the_gpu() {
    let mut rng = Rng(0x600d);
    let values = ints(&mut rng, ROWS, 300);
    let b = batch(vec![("i", Arc::new(Int32Array::from(values.clone())) as _)]);
    // 3 nodes a term: 200 terms, 600 nodes.
    let terms: Vec<i32> = (0..200).map(|k| k * 3 - 300).collect();
    let set: HashSet<i32> = terms.iter().copied().collect();
    let and = terms
        .iter()
        .map(|&v| col("i").not_eq(lit(v)))
        .reduce(|a, e| a.and(e))
        .unwrap();
    check(
        &b,
        &and,
        &membership(&values, |v| !set.contains(v)),
        Gpu::Runs,
    );
    let or = terms
        .iter()
        .map(|&v| col("i").eq(lit(v)))
        .reduce(|a, e| a.or(e))
        .unwrap();
    check(
        &b,
        &or,
        &membership(&values, |v| set.contains(v)),
        Gpu::Runs,
    );
    let mut sum = col("i");
    let mut total = 0i32;
    for k in 0..300 {
        sum = sum + lit(k * 1_000_003);
        total = total.wrapping_add(k * 1_000_003);
    }
    let want = membership(&values, |v| v.wrapping_add(total) > 0);
    check(&b, &sum.gt(lit(0)), &want, Gpu::Runs);
}

/// Building, displaying, `Debug`, cloning, comparing, listing the columns of, planning,
/// evaluating and dropping expressions 100,000 levels deep, on a thread with a 256 KiB
/// stack: nothing recurses once per level.
#[test]
fn deep_expressions_need_no_stack() {
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let depth = 100_000;
            let b = batch(vec![(
                "i",
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])) as _,
            )]);
            let engine = Engine::new(Backend::Cpu).unwrap();
            // Left-deep AND, right-deep OR, NOT of NOT ..., and a `+` chain.
            let mut and = col("i").gt(lit(0));
            let mut or = col("i").gt(lit(0));
            let mut not = col("i").gt(lit(0));
            let mut sum = col("i");
            for k in 0..depth {
                and = and.and(col("i").not_eq(lit(k + 10)));
                or = col("i").eq(lit(k + 10)).or(or);
                not = not.not();
                sum = sum + lit(1);
            }
            let text = and.to_string();
            assert!(text.starts_with(&"(".repeat(100)) && text.ends_with("100009))"));
            assert!(format!("{or:?}")
                .starts_with("Or(Cmp(Eq, Column(\"i\"), Literal(Int32(100009))), Or("));
            assert!(format!("{sum}").len() > 4 * depth as usize);
            let copy = and.clone();
            assert!(copy == and);
            assert!(copy != or);
            assert_eq!(and.columns(), vec!["i"]);
            let mask = |e: &Expr| engine.evaluate(&b, e).unwrap();
            assert_eq!(
                mask(&and),
                BooleanArray::from(vec![Some(true), None, Some(false)])
            );
            assert_eq!(
                mask(&or),
                BooleanArray::from(vec![Some(true), None, Some(false)])
            );
            // An even number of NOTs.
            assert_eq!(
                mask(&not),
                BooleanArray::from(vec![Some(true), None, Some(false)])
            );
            let plus = sum.gt(lit(depth));
            assert_eq!(
                mask(&plus),
                BooleanArray::from(vec![Some(true), None, Some(false)])
            );
            // The errors name the expression: displayed without recursion.
            let bad = and.clone().and(col("i") + lit(1));
            let err = engine.evaluate(&b, &bad).unwrap_err();
            assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
            drop((and, or, not, plus, copy, bad));
        })
        .unwrap()
        .join()
        .unwrap();
}
