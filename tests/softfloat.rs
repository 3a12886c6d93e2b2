//! The GPU's software IEEE-754 arithmetic (`shaders/common/softfloat.wgsl`) against Rust's
//! own: for tens of thousands of operand pairs per operation (random bit patterns, special
//! values, subnormals, values near overflow and underflow, cancellations, exact ties), the
//! predicate `(a op b) = c` must hold on every row, where `c` is Rust's result with a NaN
//! made the canonical NaN (the NaN rule of `arrow_wgpu::ArithOp`). `=` compares in IEEE
//! total order, so it holds only when the bits are equal (`-0.0 != 0.0`). The same for
//! every integer-to-float and f32-to-f64 cast the planner makes. The CPU path is held to
//! the same expected values, so the two paths agree with each other and with Rust.

use crate::common;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    Int8Array, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Engine, Expr};
use common::gen::Rng;

const F32_NAN: u32 = 0x7fc0_0000;
const F64_NAN: u64 = 0x7ff8_0000_0000_0000;

fn canon32(v: f32) -> f32 {
    if v.is_nan() {
        f32::from_bits(F32_NAN)
    } else {
        v
    }
}

fn canon64(v: f64) -> f64 {
    if v.is_nan() {
        f64::from_bits(F64_NAN)
    } else {
        v
    }
}

/// Every engine the tests check: one per GPU adapter, and the CPU path.
fn engines() -> Vec<(String, Engine)> {
    let mut all = common::gpu_engines(None);
    all.push(("cpu".to_string(), common::cpu()));
    all
}

/// Evaluates `predicate` over `batch` on every engine and fails, naming the rows and
/// `describe(row)`, unless it is true on every row.
fn assert_all_true(
    engines: &[(String, Engine)],
    batch: &RecordBatch,
    predicate: &Expr,
    describe: &dyn Fn(usize) -> String,
) {
    for (name, engine) in engines {
        let mask = engine
            .evaluate(batch, predicate)
            .unwrap_or_else(|e| panic!("{name}: {predicate}: {e}"));
        let bad: Vec<usize> = (0..mask.len())
            .filter(|&i| mask.is_null(i) || !mask.value(i))
            .collect();
        if !bad.is_empty() {
            let shown: Vec<String> = bad.iter().take(8).map(|&i| describe(i)).collect();
            panic!(
                "{name}: {predicate} is false on {} of {} rows, e.g.\n  {}",
                bad.len(),
                mask.len(),
                shown.join("\n  ")
            );
        }
    }
}

// ---- operands ----

fn f32_specials() -> Vec<f32> {
    let ulp_above_one = f32::from_bits(1.0f32.to_bits() + 1);
    let ulp_below_one = f32::from_bits(1.0f32.to_bits() - 1);
    let mut v = vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001), // signalling NaN
        f32::from_bits(0xffc0_1234), // negative NaN with a payload
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1), // smallest subnormal
        -f32::from_bits(1),
        f32::from_bits(3),
        f32::from_bits(0x007f_ffff), // largest subnormal
        f32::from_bits(0x0040_0000),
        f32::from_bits(0x0080_0001),
        f32::MAX,
        -f32::MAX,
        f32::from_bits(f32::MAX.to_bits() - 1),
        f32::MAX / 2.0,
        1.5 * 2f32.powi(127),
        2f32.powi(127),
        2f32.powi(-126),
        2f32.powi(-125),
        2f32.powi(-100),
        2f32.powi(64),
        2f32.powi(-64),
        1.0,
        -1.0,
        ulp_above_one,
        ulp_below_one,
        -ulp_above_one,
        2.0,
        0.5,
        3.0,
        -3.0,
        0.1,
        1.0 / 3.0,
        16_777_216.0,
        16_777_215.0,
        1.5,
        0.75,
    ];
    v.extend([
        2f32.powi(-24),
        2f32.powi(-23),
        2f32.powi(-25),
        2f32.powi(24),
    ]);
    v
}

fn f64_specials() -> Vec<f64> {
    let ulp_above_one = f64::from_bits(1.0f64.to_bits() + 1);
    let ulp_below_one = f64::from_bits(1.0f64.to_bits() - 1);
    vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        f64::from_bits(0xfff8_0000_dead_beef), // negative NaN with a payload
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(3),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::from_bits(0x0008_0000_0000_0000),
        f64::from_bits(0x0010_0000_0000_0001),
        f64::MAX,
        -f64::MAX,
        f64::from_bits(f64::MAX.to_bits() - 1),
        f64::MAX / 2.0,
        1.5 * 2f64.powi(1023),
        2f64.powi(1023),
        2f64.powi(-1022),
        2f64.powi(-1021),
        2f64.powi(-600),
        2f64.powi(512),
        2f64.powi(-512),
        1.0,
        -1.0,
        ulp_above_one,
        ulp_below_one,
        -ulp_above_one,
        2.0,
        0.5,
        3.0,
        -3.0,
        0.1,
        1.0 / 3.0,
        9_007_199_254_740_992.0,
        9_007_199_254_740_991.0,
        1.5,
        0.75,
        2f64.powi(-53),
        2f64.powi(-52),
        2f64.powi(-54),
        2f64.powi(53),
    ]
}

/// An IEEE-754 binary format, so one generator serves f32 and f64 (as raw bits in a u64).
struct Layout {
    bits: u32,
    mant: u32,
    bias: i64,
}

const L32: Layout = Layout {
    bits: 32,
    mant: 23,
    bias: 127,
};
const L64: Layout = Layout {
    bits: 64,
    mant: 52,
    bias: 1023,
};

impl Layout {
    fn mask(&self) -> u64 {
        if self.bits == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }
    fn max_exp(&self) -> u64 {
        (1u64 << (self.bits - 1 - self.mant)) - 1
    }
    /// A float with this sign, biased exponent and mantissa bits.
    fn make(&self, neg: bool, exp: u64, mant: u64) -> u64 {
        ((neg as u64) << (self.bits - 1))
            | ((exp & self.max_exp()) << self.mant)
            | (mant & ((1u64 << self.mant) - 1))
    }
    fn exp_of(&self, x: u64) -> u64 {
        (x >> self.mant) & self.max_exp()
    }
}

/// Operand pairs: every pair of specials, then random bit patterns, close magnitudes
/// (cancellation in `-`), exponents a few apart (every alignment shift), subnormal results
/// with ties (x * 2^k, x / 2^k), products and sums that are exact ties, and exponents that
/// put products and quotients near the overflow and underflow thresholds.
fn operand_pairs(rng: &mut Rng, l: &Layout, specials: &[u64], random: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &a in specials {
        for &b in specials {
            out.push((a, b));
        }
    }
    let m = l.mask();
    let max_e = l.max_exp();
    for _ in 0..random {
        let a = rng.next() & m;
        let kind = rng.below(8);
        let b = match kind {
            // Anything.
            0 | 1 => rng.next() & m,
            // Close magnitude, either sign: cancellation in a - b and a + (-b).
            2 => {
                let width = rng.below(l.mant as u64 + 2);
                let delta = rng.below(1 << width);
                let b = if rng.chance(0.5) {
                    a.wrapping_add(delta)
                } else {
                    a.wrapping_sub(delta)
                } & m;
                b ^ ((rng.below(2)) << (l.bits - 1))
            }
            // Exponent within a few of a's: alignment shifts of every size.
            3 => {
                let e = l.exp_of(a) as i64 + rng.below(2 * l.mant as u64 + 8) as i64
                    - l.mant as i64
                    - 4;
                l.make(rng.chance(0.5), e.clamp(0, max_e as i64) as u64, rng.next())
            }
            // A power of two: a * 2^k and a / 2^k round only in the subnormal range,
            // where odd mantissas make exact ties.
            4 => {
                let e = rng.below(max_e);
                l.make(rng.chance(0.5), e, 0)
            }
            // 1.5 * 2^k: products with an odd mantissa are often exact ties.
            5 => l.make(rng.chance(0.5), rng.below(max_e), 1 << (l.mant - 1)),
            // Sum ties: b is a's ulp / 2 times an odd small number, sign either.
            6 => {
                let e = l.exp_of(a) as i64 - l.mant as i64 - 1;
                if e <= 0 {
                    rng.next() & m
                } else {
                    let odd = 1 + 2 * rng.below(4);
                    let lead = 63 - odd.leading_zeros() as i64;
                    let e = (e + lead).min(max_e as i64 - 1) as u64;
                    l.make(
                        rng.chance(0.5),
                        e,
                        (odd << l.mant >> lead) & !(1u64 << l.mant),
                    )
                }
            }
            // Exponents that put products and quotients near overflow or underflow.
            _ => {
                let ea = l.exp_of(a) as i64;
                let target = if rng.chance(0.5) {
                    max_e as i64 + l.bias - 1
                } else {
                    l.bias - l.mant as i64
                };
                let e = (target - ea + rng.below(5) as i64 - 2).clamp(0, max_e as i64 - 1);
                let e = if rng.chance(0.5) {
                    e
                } else {
                    (2 * l.bias - e).clamp(0, max_e as i64 - 1)
                };
                l.make(rng.chance(0.5), e as u64, rng.next())
            }
        };
        if rng.chance(0.5) {
            out.push((a, b));
        } else {
            out.push((b, a));
        }
    }
    out
}

const RANDOM_PAIRS: usize = 40_000;

#[test]
fn f32_arithmetic_is_ieee_exact() {
    let engines = engines();
    let mut rng = Rng(0x5eed_f32a);
    let specials: Vec<u64> = f32_specials().iter().map(|v| v.to_bits() as u64).collect();
    let pairs = operand_pairs(&mut rng, &L32, &specials, RANDOM_PAIRS);
    let a: Vec<f32> = pairs.iter().map(|p| f32::from_bits(p.0 as u32)).collect();
    let b: Vec<f32> = pairs.iter().map(|p| f32::from_bits(p.1 as u32)).collect();
    type Op = (&'static str, fn(f32, f32) -> f32, fn(Expr, Expr) -> Expr);
    let ops: [Op; 4] = [
        ("+", |x, y| x + y, |x, y| x + y),
        ("-", |x, y| x - y, |x, y| x - y),
        ("*", |x, y| x * y, |x, y| x * y),
        ("/", |x, y| x / y, |x, y| x / y),
    ];
    for (sym, f, e) in ops {
        let c: Vec<f32> = a.iter().zip(&b).map(|(x, y)| canon32(f(*x, *y))).collect();
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Float32Array::from(a.clone())) as ArrayRef),
            ("b", Arc::new(Float32Array::from(b.clone())) as ArrayRef),
            ("c", Arc::new(Float32Array::from(c.clone())) as ArrayRef),
        ])
        .unwrap();
        let describe = |i: usize| {
            format!(
                "{:#010x} {sym} {:#010x} should be {:#010x} ({:e} {sym} {:e} = {:e})",
                a[i].to_bits(),
                b[i].to_bits(),
                c[i].to_bits(),
                a[i],
                b[i],
                c[i]
            )
        };
        assert_all_true(
            &engines,
            &batch,
            &e(col("a"), col("b")).eq(col("c")),
            &describe,
        );
    }
}

#[test]
fn f64_arithmetic_is_ieee_exact() {
    let engines = engines();
    let mut rng = Rng(0x5eed_f64a);
    let specials: Vec<u64> = f64_specials().iter().map(|v| v.to_bits()).collect();
    let pairs = operand_pairs(&mut rng, &L64, &specials, RANDOM_PAIRS);
    let a: Vec<f64> = pairs.iter().map(|p| f64::from_bits(p.0)).collect();
    let b: Vec<f64> = pairs.iter().map(|p| f64::from_bits(p.1)).collect();
    type Op = (&'static str, fn(f64, f64) -> f64, fn(Expr, Expr) -> Expr);
    let ops: [Op; 4] = [
        ("+", |x, y| x + y, |x, y| x + y),
        ("-", |x, y| x - y, |x, y| x - y),
        ("*", |x, y| x * y, |x, y| x * y),
        ("/", |x, y| x / y, |x, y| x / y),
    ];
    for (sym, f, e) in ops {
        let c: Vec<f64> = a.iter().zip(&b).map(|(x, y)| canon64(f(*x, *y))).collect();
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(a.clone())) as ArrayRef),
            ("b", Arc::new(Float64Array::from(b.clone())) as ArrayRef),
            ("c", Arc::new(Float64Array::from(c.clone())) as ArrayRef),
        ])
        .unwrap();
        let describe = |i: usize| {
            format!(
                "{:#018x} {sym} {:#018x} should be {:#018x} ({:e} {sym} {:e} = {:e})",
                a[i].to_bits(),
                b[i].to_bits(),
                c[i].to_bits(),
                a[i],
                b[i],
                c[i]
            )
        };
        assert_all_true(
            &engines,
            &batch,
            &e(col("a"), col("b")).eq(col("c")),
            &describe,
        );
    }
}

/// Integers for the casts: edges, values just around 2^24 and 2^53 (where f32 and f64
/// start to round, ties included), and random values of every magnitude.
fn cast_sources(rng: &mut Rng) -> Vec<u64> {
    let mut v: Vec<u64> = vec![0, 1, 2, 3, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1];
    for base in [
        1u64 << 24,
        1 << 25,
        1 << 53,
        1 << 54,
        1 << 31,
        1 << 32,
        1 << 62,
    ] {
        for d in 0..8u64 {
            v.extend([
                base + d,
                base - d,
                base.wrapping_neg() + d,
                (base - d).wrapping_neg(),
            ]);
        }
    }
    for _ in 0..20_000 {
        let x = rng.next() >> rng.below(64);
        v.push(if rng.chance(0.5) { x } else { x.wrapping_neg() });
    }
    v
}

#[test]
fn integer_and_f32_to_float_casts_are_exact() {
    let engines = engines();
    let mut rng = Rng(0xca57);
    let src = cast_sources(&mut rng);
    // (column, its values as Rust's `as` to f32 and to f64)
    macro_rules! int_case {
        ($arr:ty, $t:ty) => {{
            let vals: Vec<$t> = src.iter().map(|&x| x as $t).collect();
            let f32s: Vec<f32> = vals.iter().map(|&x| x as f32).collect();
            let f64s: Vec<f64> = vals.iter().map(|&x| x as f64).collect();
            let labels: Vec<String> = vals.iter().map(|x| format!("{x}")).collect();
            (
                stringify!($t),
                Arc::new(<$arr>::from(vals)) as ArrayRef,
                f32s,
                f64s,
                labels,
            )
        }};
    }
    let cases = vec![
        int_case!(Int8Array, i8),
        int_case!(Int16Array, i16),
        int_case!(Int32Array, i32),
        int_case!(Int64Array, i64),
        int_case!(UInt8Array, u8),
        int_case!(UInt16Array, u16),
        int_case!(UInt32Array, u32),
        int_case!(UInt64Array, u64),
    ];
    for (ty, x, f32s, f64s, labels) in cases {
        // Next to a Float64 column every integer type becomes Float64; next to a Float32
        // column 8- and 16-bit integers become Float32 (wider ones meet at Float64 again).
        let batch = RecordBatch::try_from_iter([
            ("x", x),
            (
                "f32",
                Arc::new(Float32Array::from(f32s.clone())) as ArrayRef,
            ),
            (
                "f64",
                Arc::new(Float64Array::from(f64s.clone())) as ArrayRef,
            ),
        ])
        .unwrap();
        let describe = |i: usize| format!("{ty} {} as f64 should be {:e}", labels[i], f64s[i]);
        assert_all_true(&engines, &batch, &col("x").eq(col("f64")), &describe);
        if matches!(ty, "i8" | "i16" | "u8" | "u16") {
            let describe = |i: usize| format!("{ty} {} as f32 should be {:e}", labels[i], f32s[i]);
            assert_all_true(&engines, &batch, &col("x").eq(col("f32")), &describe);
        }
    }

    // f32 to f64, NaNs canonical (a cast computes a value).
    let mut f: Vec<f32> = f32_specials();
    f.extend((0..20_000).map(|_| f32::from_bits(rng.next() as u32)));
    let want: Vec<f64> = f.iter().map(|&v| canon64(v as f64)).collect();
    let batch = RecordBatch::try_from_iter([
        ("f32", Arc::new(Float32Array::from(f.clone())) as ArrayRef),
        (
            "f64",
            Arc::new(Float64Array::from(want.clone())) as ArrayRef,
        ),
    ])
    .unwrap();
    let describe = |i: usize| {
        format!(
            "{:#010x} as f64 should be {:#018x}",
            f[i].to_bits(),
            want[i].to_bits()
        )
    };
    assert_all_true(&engines, &batch, &col("f32").eq(col("f64")), &describe);
}

/// Float division by zero is inf or NaN, never an error (arrow's float `div`); any
/// computed NaN is the positive canonical NaN, while a NaN column value keeps its bits.
#[test]
fn nan_rule_and_division_by_zero() {
    let engines = engines();
    let neg_nan = f64::from_bits(0xfff8_0000_0000_0001);
    let batch = RecordBatch::try_from_iter([
        (
            "x",
            Arc::new(Float64Array::from(vec![1.0, -1.0, 0.0, neg_nan, -0.0])) as ArrayRef,
        ),
        (
            "y",
            Arc::new(Float64Array::from(vec![0.0, 0.0, 0.0, 1.0, 0.0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let q = col("x") / col("y");
    for (name, engine) in &engines {
        let is = |v: f64| {
            engine
                .evaluate(&batch, &q.clone().eq(arrow_wgpu::lit(v)))
                .unwrap()
        };
        let want = |bits: [bool; 5]| BooleanArray::from(bits.to_vec());
        assert_eq!(
            is(f64::INFINITY),
            want([true, false, false, false, false]),
            "{name}"
        );
        assert_eq!(
            is(f64::NEG_INFINITY),
            want([false, true, false, false, false]),
            "{name}"
        );
        // 0/0, NaN/1 and -0/0 are the canonical NaN: positive, payload-free.
        assert_eq!(
            is(f64::from_bits(F64_NAN)),
            want([false, false, true, true, true]),
            "{name}"
        );
        assert_eq!(is(neg_nan), want([false; 5]), "{name}");
        // The column value itself keeps its negative NaN.
        let m = engine
            .evaluate(&batch, &col("x").eq(arrow_wgpu::lit(neg_nan)))
            .unwrap();
        assert_eq!(m, want([false, false, false, true, false]), "{name}");
    }
}
