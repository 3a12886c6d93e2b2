//! Random batches and random expression trees for the property tests, from one seed (so a
//! failure names the seed that reproduces it).

#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Expr, ScalarValue};

/// splitmix64: small, fast, and good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn all_types() -> Vec<DataType> {
    vec![
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
        DataType::Boolean,
        DataType::Date32,
        DataType::Date64,
        DataType::Timestamp(TimeUnit::Second, None),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("+01:00".into())),
    ]
}

/// Special values for float columns and literals; the first, 2^53 (2^24 for f32), plus or
/// minus a small odd integer lies halfway between two floats: round-to-nearest-even decides.
const F64_SPECIAL: [f64; 11] = [
    9_007_199_254_740_992.0,
    f64::NAN,
    -f64::NAN,
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1.5,
    -1.5,
    5e-324,
    f64::MAX,
];
const F32_SPECIAL: [f32; 11] = [
    16_777_216.0,
    f32::NAN,
    -f32::NAN,
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1.5,
    -1.5,
    1e-45,
    f32::MAX,
];

/// A raw value: small (so that equal values and matches are common) or anything.
fn raw(rng: &mut Rng, wide: bool) -> i64 {
    if wide && rng.chance(0.5) {
        rng.next() as i64
    } else {
        rng.below(11) as i64 - 5
    }
}

/// A random scalar of `dt` (used for literals, so it leans to the same small domain).
pub fn scalar(rng: &mut Rng, dt: &DataType, wide: bool) -> ScalarValue {
    let v = raw(rng, wide);
    match dt {
        DataType::Int8 => ScalarValue::Int8(v as i8),
        DataType::Int16 => ScalarValue::Int16(v as i16),
        DataType::Int32 => ScalarValue::Int32(v as i32),
        DataType::Int64 => ScalarValue::Int64(v),
        DataType::UInt8 => ScalarValue::UInt8(v as u8),
        DataType::UInt16 => ScalarValue::UInt16(v as u16),
        DataType::UInt32 => ScalarValue::UInt32(v as u32),
        DataType::UInt64 => ScalarValue::UInt64(v as u64),
        DataType::Float32 => ScalarValue::Float32(match rng.below(10) {
            0..=3 => *rng.pick(&F32_SPECIAL),
            // Any bit pattern: NaN payloads, subnormals, every exponent.
            4 => f32::from_bits(rng.next() as u32),
            // An inexact fraction, so that arithmetic rounds.
            5 => v as f32 / 3.0,
            _ => v as f32,
        }),
        DataType::Float64 => ScalarValue::Float64(match rng.below(10) {
            0..=3 => *rng.pick(&F64_SPECIAL),
            4 => f64::from_bits(rng.next()),
            5 => v as f64 / 3.0,
            _ => v as f64,
        }),
        DataType::Boolean => ScalarValue::Boolean(v > 0),
        DataType::Date32 => ScalarValue::Date32(v as i32),
        DataType::Date64 => ScalarValue::Date64(v),
        DataType::Timestamp(u, tz) => ScalarValue::Timestamp(v, *u, tz.clone()),
        other => panic!("no scalar for {other}"),
    }
}

/// A random column of `dt` with `rows` rows; `null_p` of them null.
pub fn column(rng: &mut Rng, dt: &DataType, rows: usize, null_p: f64) -> ArrayRef {
    let wide = rng.chance(0.3);
    let valid: Vec<bool> = (0..rows).map(|_| !rng.chance(null_p)).collect();
    let values: Vec<ScalarValue> = (0..rows).map(|_| scalar(rng, dt, wide)).collect();
    macro_rules! build {
        ($arr:ty, $variant:ident) => {
            Arc::new(<$arr>::from_iter(values.iter().zip(&valid).map(
                |(v, ok)| match v {
                    ScalarValue::$variant(x) if *ok => Some(*x),
                    _ => None,
                },
            ))) as ArrayRef
        };
    }
    match dt {
        DataType::Int8 => build!(Int8Array, Int8),
        DataType::Int16 => build!(Int16Array, Int16),
        DataType::Int32 => build!(Int32Array, Int32),
        DataType::Int64 => build!(Int64Array, Int64),
        DataType::UInt8 => build!(UInt8Array, UInt8),
        DataType::UInt16 => build!(UInt16Array, UInt16),
        DataType::UInt32 => build!(UInt32Array, UInt32),
        DataType::UInt64 => build!(UInt64Array, UInt64),
        DataType::Float32 => build!(Float32Array, Float32),
        DataType::Float64 => build!(Float64Array, Float64),
        DataType::Boolean => build!(BooleanArray, Boolean),
        DataType::Date32 => build!(Date32Array, Date32),
        DataType::Date64 => build!(Date64Array, Date64),
        DataType::Timestamp(..) => {
            let raw: Vec<Option<i64>> = values
                .iter()
                .zip(&valid)
                .map(|(v, ok)| match v {
                    ScalarValue::Timestamp(x, _, _) if *ok => Some(*x),
                    _ => None,
                })
                .collect();
            let a: ArrayRef = Arc::new(Int64Array::from(raw));
            arrow::compute::cast(&a, dt).unwrap()
        }
        other => panic!("no column for {other}"),
    }
}

/// A random batch: 1 to 5 columns of random types, random nulls, and a random slice (so
/// arrays have non-zero offsets).
pub fn batch(rng: &mut Rng, rows: usize) -> RecordBatch {
    let types = all_types();
    let ncols = 1 + rng.below(5) as usize;
    let pad = if rng.chance(0.5) {
        rng.below(70) as usize
    } else {
        0
    };
    let total = rows + pad;
    let columns: Vec<(String, ArrayRef)> = (0..ncols)
        .map(|i| {
            let dt = rng.pick(&types).clone();
            let null_p = *rng.pick(&[0.0, 0.0, 0.1, 0.5, 1.0]);
            (format!("c{i}"), column(rng, &dt, total, null_p))
        })
        .collect();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let offset = rng.below(pad as u64 + 1) as usize;
    batch.slice(offset, rows)
}

fn is_int(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}

/// A numeric type to combine with `dt` so that the planner inserts casts (integers to
/// floats, Float32 to Float64) and the result is still comparable with anything numeric:
/// floats for an integer `dt`, any other number for a float `dt`. Leans to the types of
/// the batch's columns, so that casts apply to columns and not only to literals.
fn partner(rng: &mut Rng, batch: &RecordBatch, dt: &DataType) -> DataType {
    let fits = |t: &DataType| {
        t != dt
            && if is_int(dt) {
                is_float(t)
            } else {
                is_int(t) || is_float(t)
            }
    };
    let in_batch: Vec<DataType> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .filter(|t| fits(t))
        .collect();
    if !in_batch.is_empty() && rng.chance(0.7) {
        return rng.pick(&in_batch).clone();
    }
    let any: Vec<DataType> = all_types().into_iter().filter(|t| fits(t)).collect();
    rng.pick(&any).clone()
}

/// A value-typed expression of `dt` over the batch's columns of that type. Numeric values
/// may be arithmetic, sometimes with an operand of another numeric type (then the value is
/// a float: casts and float arithmetic, which the GPU runs in software, bit-exact).
fn value(rng: &mut Rng, batch: &RecordBatch, dt: &DataType, depth: u32) -> Expr {
    let cols: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .filter(|f| f.data_type() == dt)
        .map(|f| f.name().clone())
        .collect();
    let arith_p = if is_float(dt) { 0.45 } else { 0.3 };
    if (is_int(dt) || is_float(dt)) && depth > 0 && rng.chance(arith_p) {
        let other = if rng.chance(0.4) {
            partner(rng, batch, dt)
        } else {
            dt.clone()
        };
        let l = value(rng, batch, dt, depth - 1);
        let r = value(rng, batch, &other, depth - 1);
        let (l, r) = if rng.chance(0.5) { (l, r) } else { (r, l) };
        return match rng.below(4) {
            0 => l + r,
            1 => l - r,
            2 => l * r,
            // Float division never fails (x / 0 is inf or NaN).
            _ if is_float(dt) || is_float(&other) => l / r,
            // Mostly a non-zero literal divisor; sometimes anything, to pin the errors.
            _ if rng.chance(0.8) => l / Expr::Literal(nonzero(rng, dt)),
            _ => l / r,
        };
    }
    if !cols.is_empty() && rng.chance(0.7) {
        col(rng.pick(&cols).clone())
    } else {
        let wide = rng.chance(0.2);
        Expr::Literal(scalar(rng, dt, wide))
    }
}

fn nonzero(rng: &mut Rng, dt: &DataType) -> ScalarValue {
    loop {
        let s = scalar(rng, dt, false);
        if !matches!(
            s,
            ScalarValue::Int8(0)
                | ScalarValue::Int16(0)
                | ScalarValue::Int32(0)
                | ScalarValue::Int64(0)
                | ScalarValue::UInt8(0)
                | ScalarValue::UInt16(0)
                | ScalarValue::UInt32(0)
                | ScalarValue::UInt64(0)
        ) {
            return s;
        }
    }
}

/// A random boolean expression over `batch`'s columns: comparisons (numbers sometimes
/// against another numeric type, through casts), arithmetic of every numeric type, null
/// tests, BETWEEN, IN, and AND / OR / NOT over those.
pub fn predicate(rng: &mut Rng, batch: &RecordBatch, depth: u32) -> Expr {
    let fields: Vec<DataType> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    // Lean to float columns where there are some: their arithmetic and casts are the
    // GPU's soft-float, the most intricate code a predicate reaches.
    let floats: Vec<DataType> = fields.iter().filter(|t| is_float(t)).cloned().collect();
    let dt = if !floats.is_empty() && rng.chance(0.3) {
        rng.pick(&floats).clone()
    } else {
        rng.pick(&fields).clone()
    };
    let choice = if depth == 0 {
        rng.below(4)
    } else {
        rng.below(10)
    };
    // Strings, decimals and dictionaries (see `with_mask_columns`): null tests (the
    // column read only for its mask) and string equality with a literal.
    if choice < 4 && !all_types().contains(&dt) {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .filter(|f| *f.data_type() == dt)
            .map(|f| f.name().clone())
            .collect();
        let c = col(rng.pick(&names).clone());
        let is_string = matches!(
            dt,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        return match rng.below(3) {
            0 => c.is_null(),
            1 if is_string => {
                let word = *rng.pick(&WORDS);
                if rng.chance(0.5) {
                    c.eq(lit(word))
                } else {
                    c.not_eq(lit(word))
                }
            }
            _ => c.is_not_null(),
        };
    }
    match choice {
        0 | 1 => {
            let l = value(rng, batch, &dt, depth.min(2));
            let other = if (is_int(&dt) || is_float(&dt)) && rng.chance(0.35) {
                partner(rng, batch, &dt)
            } else {
                dt.clone()
            };
            let r = value(rng, batch, &other, depth.min(2));
            match rng.below(6) {
                0 => l.eq(r),
                1 => l.not_eq(r),
                2 => l.lt(r),
                3 => l.lt_eq(r),
                4 => l.gt(r),
                _ => l.gt_eq(r),
            }
        }
        2 => {
            let v = value(rng, batch, &dt, 1);
            if rng.chance(0.5) {
                v.is_null()
            } else {
                v.is_not_null()
            }
        }
        3 => {
            let v = value(rng, batch, &dt, 1);
            if rng.chance(0.5) {
                v.between(
                    Expr::Literal(scalar(rng, &dt, false)),
                    Expr::Literal(scalar(rng, &dt, false)),
                )
            } else {
                let n = rng.below(4);
                v.in_list(
                    (0..n)
                        .map(|_| Expr::Literal(scalar(rng, &dt, false)))
                        .collect(),
                )
            }
        }
        4..=6 => predicate(rng, batch, depth - 1).and(predicate(rng, batch, depth - 1)),
        7 | 8 => predicate(rng, batch, depth - 1).or(predicate(rng, batch, depth - 1)),
        _ => predicate(rng, batch, depth - 1).not(),
    }
}

/// A literal `true`, for tests that need some predicate.
pub fn always() -> Expr {
    lit(true)
}

/// A value expression of type `dt` over the batch's columns (arithmetic, casts, literals),
/// for aggregates over expressions.
pub fn value_expr(rng: &mut Rng, batch: &RecordBatch, dt: &DataType, depth: u32) -> Expr {
    value(rng, batch, dt, depth)
}

/// The words string columns draw from (with the empty string, which is not null).
pub const WORDS: [&str; 5] = ["a", "b", "", "a", "ccc"];

/// A string column of `dt` (Utf8, LargeUtf8 or Utf8View) of `rows` rows, `null_p` null.
pub fn string_column(rng: &mut Rng, dt: &DataType, rows: usize, null_p: f64) -> ArrayRef {
    let values: Vec<Option<&str>> = (0..rows)
        .map(|_| (!rng.chance(null_p)).then(|| *rng.pick(&WORDS)))
        .collect();
    let utf8: ArrayRef = Arc::new(StringArray::from(values));
    arrow::compute::cast(&utf8, dt).unwrap()
}

/// A Decimal128(precision, scale) column of up to 18 digits, `null_p` null.
pub fn decimal_column(rng: &mut Rng, rows: usize, null_p: f64) -> ArrayRef {
    let precision = 1 + rng.below(18) as u8;
    let scale = rng.below(precision as u64 + 1) as i8;
    let max = 10i128.pow(precision as u32) - 1;
    let values: Vec<Option<i128>> = (0..rows)
        .map(|_| {
            (!rng.chance(null_p)).then(|| {
                let v = if rng.chance(0.5) {
                    rng.below(11) as i128 - 5
                } else {
                    (rng.next() as i128) % (max + 1)
                };
                v.clamp(-max, max)
            })
        })
        .collect();
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(precision, scale)
            .unwrap(),
    )
}

/// `batch` with columns the expression generators read only for their null masks (or
/// compare with string literals): a string column of a random string type, a decimal
/// and (when `dictionary`) a dictionary, named `s`, `d` and `dict_m`, each with random
/// nulls.
pub fn with_mask_columns(rng: &mut Rng, batch: &RecordBatch, dictionary: bool) -> RecordBatch {
    let rows = batch.num_rows();
    let string_type = rng
        .pick(&[DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View])
        .clone();
    let mut null_p = || *rng.pick(&[0.0, 0.2, 0.5, 1.0]);
    let (p1, p2, p3) = (null_p(), null_p(), null_p());
    let mut fields: Vec<(String, ArrayRef)> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().clone(), c.clone()))
        .collect();
    fields.push(("s".into(), string_column(rng, &string_type, rows, p1)));
    fields.push(("d".into(), decimal_column(rng, rows, p2)));
    if dictionary {
        fields.push(("dict_m".into(), dictionary_column(rng, rows, p3)));
    }
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    let schema = arrow::datatypes::Schema::new(
        fields
            .iter()
            .map(|(n, c)| arrow::datatypes::Field::new(n, c.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new_with_options(
        Arc::new(schema),
        fields.into_iter().map(|(_, c)| c).collect(),
        &options,
    )
    .unwrap()
}

/// A Dictionary(Int16, Utf8) column of `rows` rows: a small dictionary that may repeat a
/// value and hold a null value (both group as their value does), random codes, `null_p`
/// of the rows null.
pub fn dictionary_column(rng: &mut Rng, rows: usize, null_p: f64) -> ArrayRef {
    let words = WORDS;
    let n = 1 + rng.below(words.len() as u64) as usize;
    let values: Vec<Option<&str>> = (0..n)
        .map(|i| {
            if rng.chance(0.15) {
                None
            } else {
                Some(words[i])
            }
        })
        .collect();
    let keys: Vec<Option<i16>> = (0..rows)
        .map(|_| (!rng.chance(null_p)).then(|| rng.below(n as u64) as i16))
        .collect();
    Arc::new(
        DictionaryArray::<arrow::datatypes::Int16Type>::try_new(
            Int16Array::from(keys),
            Arc::new(StringArray::from(values)),
        )
        .unwrap(),
    )
}

/// `rows` keys below `keys` and floats whose sums depend on the order of addition: nulls,
/// NaN, -0.0, ±1e300, 1e-300, multiples of 1e16 that cancel, and small values beside them.
pub fn order_sensitive_floats(rng: &mut Rng, rows: usize, keys: u64) -> RecordBatch {
    let k = Int64Array::from_iter((0..rows).map(|_| Some(rng.below(keys) as i64)));
    let v = Float64Array::from_iter((0..rows).map(|_| {
        if rng.chance(0.02) {
            return None;
        }
        Some(match rng.below(40) {
            0 => f64::NAN,
            1 => -0.0,
            2 => 1e300,
            3 => -1e300,
            4 => 1e-300,
            5..=14 => (rng.below(1 << 20) as f64 - 524288.0) * 1e16,
            _ => (rng.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5,
        })
    }));
    RecordBatch::try_from_iter_with_nullable([
        ("k", Arc::new(k) as ArrayRef, false),
        ("v", Arc::new(v) as ArrayRef, true),
    ])
    .unwrap()
}
