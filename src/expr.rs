//! Expressions: column references, literals, arithmetic, comparisons, boolean logic.
//!
//! Build them with [`col`] and [`lit`] and the methods on [`Expr`] (`+ - * /` through the
//! std operators, [`Expr::gt`], [`Expr::between`], [`Expr::in_list`], [`Expr::and`] ...).
//! Logic is SQL's three-valued logic: `NULL AND false` is false, `NULL OR true` is true,
//! anything else with a NULL is NULL. Integer `+ - *` wrap on overflow, as DataFusion's
//! arithmetic does; integer `/` by zero is [`crate::Error::DivideByZero`], as arrow's `div`.
//! Float arithmetic is IEEE-754 (round to nearest even, subnormals kept) on both backends,
//! and a NaN it computes is always the canonical NaN: see [`ArithOp`].

use std::fmt;
use std::sync::Arc;

use arrow::array::StringArray;
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Date64Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, TimeUnit};

/// A literal value in an expression.
///
/// # Example
/// ```
/// use arrow_wgpu::ScalarValue;
/// use arrow::datatypes::DataType;
/// assert_eq!(ScalarValue::from(3i64).data_type(), DataType::Int64);
/// assert_eq!(ScalarValue::Date32(18_628).data_type(), DataType::Date32);
/// // 0.06 as a Decimal128(15, 2), as TPC-H's `l_discount`:
/// let d = ScalarValue::Decimal128(6, 15, 2);
/// assert_eq!(d.data_type(), DataType::Decimal128(15, 2));
/// assert_eq!(d.to_string(), "decimal128(0.06, 15, 2)");
/// assert_eq!(ScalarValue::from("chr1").to_string(), "'chr1'");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum ScalarValue {
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    UInt8(u8),
    UInt16(u16),
    UInt32(u32),
    UInt64(u64),
    Float32(f32),
    Float64(f64),
    /// Days since the UNIX epoch.
    Date32(i32),
    /// Milliseconds since the UNIX epoch.
    Date64(i64),
    /// A timestamp in the given unit, with an optional time zone.
    Timestamp(i64, TimeUnit, Option<Arc<str>>),
    /// A decimal: the unscaled value, the precision (1 to 38) and the scale, as arrow's
    /// `Decimal128(precision, scale)`: `Decimal128(1234, 15, 2)` is 12.34.
    Decimal128(i128, u8, i8),
    /// A UTF-8 string. Compared with a `Utf8`, `LargeUtf8` or `Utf8View` column it takes
    /// the column's type; it never meets a number. Displayed as SQL quotes it (`'it''s'`).
    Utf8(String),
}

impl From<&str> for ScalarValue {
    fn from(v: &str) -> Self {
        ScalarValue::Utf8(v.to_string())
    }
}

impl From<String> for ScalarValue {
    fn from(v: String) -> Self {
        ScalarValue::Utf8(v)
    }
}

macro_rules! scalar_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for ScalarValue {
            fn from(v: $t) -> Self { ScalarValue::$v(v) }
        }
    )*};
}
scalar_from!(bool => Boolean, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64, f32 => Float32, f64 => Float64);

impl ScalarValue {
    /// The Arrow type of this value.
    pub fn data_type(&self) -> DataType {
        match self {
            ScalarValue::Boolean(_) => DataType::Boolean,
            ScalarValue::Int8(_) => DataType::Int8,
            ScalarValue::Int16(_) => DataType::Int16,
            ScalarValue::Int32(_) => DataType::Int32,
            ScalarValue::Int64(_) => DataType::Int64,
            ScalarValue::UInt8(_) => DataType::UInt8,
            ScalarValue::UInt16(_) => DataType::UInt16,
            ScalarValue::UInt32(_) => DataType::UInt32,
            ScalarValue::UInt64(_) => DataType::UInt64,
            ScalarValue::Float32(_) => DataType::Float32,
            ScalarValue::Float64(_) => DataType::Float64,
            ScalarValue::Date32(_) => DataType::Date32,
            ScalarValue::Date64(_) => DataType::Date64,
            ScalarValue::Timestamp(_, unit, tz) => DataType::Timestamp(*unit, tz.clone()),
            ScalarValue::Decimal128(_, p, s) => DataType::Decimal128(*p, *s),
            ScalarValue::Utf8(_) => DataType::Utf8,
        }
    }

    /// A one-row array holding this value.
    ///
    /// # Example
    /// ```
    /// use arrow::array::{Array, StringArray};
    /// use arrow_wgpu::ScalarValue;
    /// let a = ScalarValue::from("chr1").to_array();
    /// assert_eq!(a.as_any().downcast_ref::<StringArray>().unwrap().value(0), "chr1");
    /// ```
    pub fn to_array(&self) -> ArrayRef {
        match self {
            ScalarValue::Boolean(v) => Arc::new(BooleanArray::from(vec![*v])),
            ScalarValue::Int8(v) => Arc::new(Int8Array::from(vec![*v])),
            ScalarValue::Int16(v) => Arc::new(Int16Array::from(vec![*v])),
            ScalarValue::Int32(v) => Arc::new(Int32Array::from(vec![*v])),
            ScalarValue::Int64(v) => Arc::new(Int64Array::from(vec![*v])),
            ScalarValue::UInt8(v) => Arc::new(UInt8Array::from(vec![*v])),
            ScalarValue::UInt16(v) => Arc::new(UInt16Array::from(vec![*v])),
            ScalarValue::UInt32(v) => Arc::new(UInt32Array::from(vec![*v])),
            ScalarValue::UInt64(v) => Arc::new(UInt64Array::from(vec![*v])),
            ScalarValue::Float32(v) => Arc::new(Float32Array::from(vec![*v])),
            ScalarValue::Float64(v) => Arc::new(Float64Array::from(vec![*v])),
            ScalarValue::Date32(v) => Arc::new(Date32Array::from(vec![*v])),
            ScalarValue::Date64(v) => Arc::new(Date64Array::from(vec![*v])),
            ScalarValue::Timestamp(v, unit, tz) => match unit {
                TimeUnit::Second => {
                    Arc::new(TimestampSecondArray::from(vec![*v]).with_timezone_opt(tz.clone()))
                }
                TimeUnit::Millisecond => Arc::new(
                    TimestampMillisecondArray::from(vec![*v]).with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Microsecond => Arc::new(
                    TimestampMicrosecondArray::from(vec![*v]).with_timezone_opt(tz.clone()),
                ),
                TimeUnit::Nanosecond => {
                    Arc::new(TimestampNanosecondArray::from(vec![*v]).with_timezone_opt(tz.clone()))
                }
            },
            ScalarValue::Decimal128(v, p, s) => Arc::new(
                Decimal128Array::from(vec![*v])
                    .with_precision_and_scale(*p, *s)
                    .expect("a decimal literal's precision and scale are arrow's"),
            ),
            ScalarValue::Utf8(v) => Arc::new(StringArray::from(vec![v.as_str()])),
        }
    }

    /// The value's bits as the GPU stores them: integers sign- or zero-extended to 64 bits,
    /// floats as their IEEE bits (f32 in the low word), booleans as 0 or 1.
    pub(crate) fn gpu_bits(&self) -> u64 {
        match self {
            ScalarValue::Boolean(v) => *v as u64,
            ScalarValue::Int8(v) => *v as i64 as u64,
            ScalarValue::Int16(v) => *v as i64 as u64,
            ScalarValue::Int32(v) | ScalarValue::Date32(v) => *v as i64 as u64,
            ScalarValue::Int64(v) | ScalarValue::Date64(v) | ScalarValue::Timestamp(v, _, _) => {
                *v as u64
            }
            ScalarValue::UInt8(v) => *v as u64,
            ScalarValue::UInt16(v) => *v as u64,
            ScalarValue::UInt32(v) => *v as u64,
            ScalarValue::UInt64(v) => *v,
            ScalarValue::Float32(v) => v.to_bits() as u64,
            ScalarValue::Float64(v) => v.to_bits(),
            // The low 64 bits; kernels read decimals as four words (see gpu::predicate).
            ScalarValue::Decimal128(v, _, _) => *v as u64,
            // Strings travel as their bytes (`gpu::predicate`), never as one word.
            ScalarValue::Utf8(_) => 0,
        }
    }

    /// This value as `to`, when `to` holds it exactly (an integer that fits, a float that
    /// round-trips, a timestamp of the same unit, a decimal or integer whose digits fit the
    /// decimal's precision and scale); `None` otherwise.
    pub(crate) fn cast_exact(&self, to: &DataType) -> Option<ScalarValue> {
        use ScalarValue as S;
        if &self.data_type() == to {
            return Some(self.clone());
        }
        let int: Option<i128> = match self {
            S::Int8(v) => Some(*v as i128),
            S::Int16(v) => Some(*v as i128),
            S::Int32(v) => Some(*v as i128),
            S::Int64(v) => Some(*v as i128),
            S::UInt8(v) => Some(*v as i128),
            S::UInt16(v) => Some(*v as i128),
            S::UInt32(v) => Some(*v as i128),
            S::UInt64(v) => Some(*v as i128),
            _ => None,
        };
        // Decimals (and integers) to a decimal: the same number with `to`'s scale, when it
        // has no digits beyond that scale and fits the precision.
        let unscaled = match self {
            S::Decimal128(v, _, s) => Some((*v, *s)),
            _ => int.map(|i| (i, 0)),
        };
        if let (Some((v, from)), DataType::Decimal128(p, s)) = (unscaled, to) {
            let v = rescale(v, from, *s)?;
            return (v.unsigned_abs() < 10u128.checked_pow(*p as u32)?)
                .then_some(S::Decimal128(v, *p, *s));
        }
        if let (S::Decimal128(v, _, s), Some(_)) = (self, crate::plan::int_info(to)) {
            // An integral decimal to an integer type, as the integer it is.
            return S::Int64(i64::try_from(rescale(*v, *s, 0)?).ok()?).cast_exact(to);
        }
        if let Some(i) = int {
            return match to {
                DataType::Int8 => i8::try_from(i).ok().map(S::Int8),
                DataType::Int16 => i16::try_from(i).ok().map(S::Int16),
                DataType::Int32 => i32::try_from(i).ok().map(S::Int32),
                DataType::Int64 => i64::try_from(i).ok().map(S::Int64),
                DataType::UInt8 => u8::try_from(i).ok().map(S::UInt8),
                DataType::UInt16 => u16::try_from(i).ok().map(S::UInt16),
                DataType::UInt32 => u32::try_from(i).ok().map(S::UInt32),
                DataType::UInt64 => u64::try_from(i).ok().map(S::UInt64),
                DataType::Float32 => {
                    let f = i as f32;
                    (f as i128 == i && f.is_finite()).then_some(S::Float32(f))
                }
                DataType::Float64 => {
                    let f = i as f64;
                    (f as i128 == i && f.is_finite()).then_some(S::Float64(f))
                }
                _ => None,
            };
        }
        match (self, to) {
            (S::Float64(v), DataType::Float32) => {
                let f = *v as f32;
                (f as f64)
                    .to_bits()
                    .eq(&v.to_bits())
                    .then_some(S::Float32(f))
            }
            (S::Float32(v), DataType::Float64) => Some(S::Float64(*v as f64)),
            (S::Timestamp(v, unit, _), DataType::Timestamp(to_unit, tz)) if unit == to_unit => {
                Some(S::Timestamp(*v, *unit, tz.clone()))
            }
            _ => None,
        }
    }
}

/// `v` (at scale `from`) at scale `to`, when that is exact and fits an i128.
fn rescale(v: i128, from: i8, to: i8) -> Option<i128> {
    let k = (to as i32 - from as i32).unsigned_abs();
    let pow = 10i128.checked_pow(k)?;
    if to >= from {
        v.checked_mul(pow)
    } else {
        (v % pow == 0).then_some(v / pow)
    }
}

impl fmt::Display for ScalarValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarValue::Boolean(v) => write!(f, "{v}"),
            ScalarValue::Int8(v) => write!(f, "{v}i8"),
            ScalarValue::Int16(v) => write!(f, "{v}i16"),
            ScalarValue::Int32(v) => write!(f, "{v}"),
            ScalarValue::Int64(v) => write!(f, "{v}i64"),
            ScalarValue::UInt8(v) => write!(f, "{v}u8"),
            ScalarValue::UInt16(v) => write!(f, "{v}u16"),
            ScalarValue::UInt32(v) => write!(f, "{v}u32"),
            ScalarValue::UInt64(v) => write!(f, "{v}u64"),
            ScalarValue::Float32(v) => write!(f, "{v:?}f32"),
            ScalarValue::Float64(v) => write!(f, "{v:?}"),
            ScalarValue::Date32(v) => write!(f, "date32({v})"),
            ScalarValue::Date64(v) => write!(f, "date64({v})"),
            ScalarValue::Timestamp(v, u, _) => write!(f, "timestamp({v}, {u:?})"),
            ScalarValue::Decimal128(v, p, s) => {
                let digits = v.unsigned_abs().to_string();
                let sign = if *v < 0 { "-" } else { "" };
                let text = match usize::try_from(*s) {
                    Ok(0) => digits,
                    Ok(s) if digits.len() > s => {
                        let (int, frac) = digits.split_at(digits.len() - s);
                        format!("{int}.{frac}")
                    }
                    Ok(s) => format!("0.{}{digits}", "0".repeat(s - digits.len())),
                    // A negative scale: trailing zeros.
                    Err(_) => format!("{digits}{}", "0".repeat(s.unsigned_abs() as usize)),
                };
                write!(f, "decimal128({sign}{text}, {p}, {s})")
            }
            ScalarValue::Utf8(v) => write!(f, "'{}'", v.replace('\'', "''")),
        }
    }
}

/// Arithmetic operators (`+ - * /` on [`Expr`]). Both operands are first brought to one
/// type (see [`lit`] and the widening rules: integers meeting floats become floats).
///
/// **Integers** (every width, signed and unsigned): `+ - *` wrap on overflow, as
/// DataFusion; `/` truncates toward zero, and a zero divisor is
/// [`crate::Error::DivideByZero`] and `MIN / -1` [`crate::Error::ArithmeticOverflow`], as
/// arrow's `div`.
///
/// **Floats** (Float32, Float64): IEEE-754 arithmetic with round to nearest, ties to even,
/// subnormals kept (never flushed to zero) and IEEE signed zeros (`-0 + -0 = -0`,
/// `x - x = +0`); `x / 0` is ±inf, or NaN for `0 / 0`, never an error (as arrow's float
/// `div`). Integers widened to a float round as Rust's `as` does; Float32 widens to Float64
/// exactly. The GPU computes all of this in software on the values' bits, so both backends
/// give the same bits.
///
/// **The NaN rule**: every float value an expression *computes* (the result of `+ - * /`,
/// or of a widening cast to a float) that is NaN is the canonical quiet NaN with positive
/// sign: `f32::from_bits(0x7fc0_0000)` / `f64::from_bits(0x7ff8_0000_0000_0000)`. The
/// NaN a CPU produces is not portable (x86's
/// default NaN is negative, ARM's positive, and a compiler may swap operands, which
/// changes which input NaN's payload survives), and comparisons order floats in IEEE
/// total order, where a NaN's sign matters; so neither backend keeps it. Values read from
/// columns and literals keep their bits: `col("x").eq(lit(-f64::NAN))` still matches a
/// negative NaN in `x`, while `(col("x") + lit(0.0)).eq(lit(canonical_nan))` is true for
/// every NaN in `x`.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow::array::Float64Array;
/// use arrow::record_batch::RecordBatch;
/// use arrow_wgpu::{col, lit, Engine};
///
/// let batch = RecordBatch::try_from_iter([
///     ("x", Arc::new(Float64Array::from(vec![-f64::NAN, 1.0, 0.0])) as _),
/// ]).unwrap();
/// let engine = Engine::from_env().unwrap();
/// let canonical_nan = f64::from_bits(0x7ff8_0000_0000_0000);
/// // -NaN * 2 and 0 / 0 are the positive canonical NaN; 1 / 0 is inf, not an error.
/// let nan = engine.evaluate(&batch, &(col("x") * lit(2.0)).eq(lit(canonical_nan))).unwrap();
/// assert_eq!(nan.values().iter().collect::<Vec<_>>(), vec![true, false, false]);
/// let quotient_is_nan = engine.evaluate(&batch, &(col("x") / lit(0.0)).eq(lit(canonical_nan))).unwrap();
/// assert_eq!(quotient_is_nan.values().iter().collect::<Vec<_>>(), vec![true, false, true]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`: wraps for integers; IEEE-754 for floats.
    Add,
    /// `-`: wraps for integers; IEEE-754 for floats.
    Sub,
    /// `*`: wraps for integers; IEEE-754 for floats.
    Mul,
    /// `/`: truncates for integers (zero divisor and `MIN / -1` are errors); IEEE-754 for
    /// floats (`x / 0` is ±inf or NaN).
    Div,
}

/// Comparison operators, with arrow-rs's `cmp` semantics (floats in total order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// An expression over the columns of a batch.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit};
/// let e = (col("price") * lit(2)).gt(lit(100)).and(col("qty").between(lit(1), lit(10)));
/// assert_eq!(e.to_string(), "(((price * 2) > 100) AND (qty BETWEEN 1 AND 10))");
/// ```
///
/// Every traversal of an expression (planning, evaluating, `Display`, `Debug`, `Clone`,
/// `==`, [`Expr::columns`] and `Drop`) keeps its own stack on the heap, so an expression
/// of any depth (a chain of 100,000 `AND`s built by `a.and(b).and(c)...`, or of `+`) is
/// fine on any thread's stack.
pub enum Expr {
    /// A column of the batch, by name.
    Column(String),
    /// A literal value.
    Literal(ScalarValue),
    /// `left op right` on numbers: see [`ArithOp`] for overflow, division by zero and the
    /// NaN rule of float results.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `left op right` comparing two values.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Three-valued AND.
    And(Box<Expr>, Box<Expr>),
    /// Three-valued OR.
    Or(Box<Expr>, Box<Expr>),
    /// Three-valued NOT.
    Not(Box<Expr>),
    /// `IS NULL` (never null itself).
    IsNull(Box<Expr>),
    /// `IS NOT NULL` (never null itself).
    IsNotNull(Box<Expr>),
    /// `expr BETWEEN low AND high`, both ends included.
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `expr IN (list)`.
    InList(Box<Expr>, Vec<Expr>),
    /// `CAST(expr AS type)`: a cast that never loses or rounds away a value's meaning on
    /// either backend (an integer to a wider integer or to a float, `Float32` to
    /// `Float64`, an integer or decimal to a decimal that holds it, a decimal to
    /// `Float64`, one string type to another); others are an invalid expression.
    Cast(Box<Expr>, DataType),
}

/// A reference to the column named `name`.
///
/// # Example
/// ```
/// use arrow_wgpu::col;
/// assert_eq!(col("a").to_string(), "a");
/// ```
pub fn col(name: impl Into<String>) -> Expr {
    Expr::Column(name.into())
}

/// A literal: `lit(5)` is an Int32, `lit(5i64)` an Int64, `lit(1.5)` a Float64,
/// `lit("chr1")` a string, `lit(ScalarValue::Date32(..))` a date. An integer literal
/// compared with or added to a column takes the column's type when it fits there; a string
/// literal compared with a string column takes the column's string type.
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit};
/// let e = col("x").lt_eq(lit(7u8));
/// assert_eq!(e.to_string(), "(x <= 7u8)");
/// let e = col("chrom").in_list(vec![lit("chr1"), lit("chrX")]);
/// assert_eq!(e.to_string(), "(chrom IN ('chr1', 'chrX'))");
/// ```
pub fn lit(value: impl Into<ScalarValue>) -> Expr {
    Expr::Literal(value.into())
}

impl Expr {
    fn cmp(self, op: CmpOp, other: Expr) -> Expr {
        Expr::Cmp(op, Box::new(self), Box::new(other))
    }
    /// `self = other`.
    pub fn eq(self, other: Expr) -> Expr {
        self.cmp(CmpOp::Eq, other)
    }
    /// `self != other`.
    pub fn not_eq(self, other: Expr) -> Expr {
        self.cmp(CmpOp::NotEq, other)
    }
    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        self.cmp(CmpOp::Lt, other)
    }
    /// `self <= other`.
    pub fn lt_eq(self, other: Expr) -> Expr {
        self.cmp(CmpOp::LtEq, other)
    }
    /// `self > other`.
    pub fn gt(self, other: Expr) -> Expr {
        self.cmp(CmpOp::Gt, other)
    }
    /// `self >= other`.
    pub fn gt_eq(self, other: Expr) -> Expr {
        self.cmp(CmpOp::GtEq, other)
    }
    /// `self AND other` (three-valued).
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }
    /// `self OR other` (three-valued).
    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }
    /// `NOT self` (three-valued). Also available as the `!` operator; this inherent method
    /// saves importing `std::ops::Not` to write `.not()`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
    /// `self IS NULL`.
    pub fn is_null(self) -> Expr {
        Expr::IsNull(Box::new(self))
    }
    /// `self IS NOT NULL`.
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }
    /// `self BETWEEN low AND high` (both ends included): `self >= low AND self <= high`.
    pub fn between(self, low: Expr, high: Expr) -> Expr {
        Expr::Between(Box::new(self), Box::new(low), Box::new(high))
    }
    /// `self IN (list)`: true when `self` equals an item, false when it equals none, null
    /// when `self` is null. An empty list is false.
    pub fn in_list(self, list: Vec<Expr>) -> Expr {
        Expr::InList(Box::new(self), list)
    }

    /// `CAST(self AS to)`: see [`Expr::Cast`] for the casts allowed.
    ///
    /// # Example
    /// ```
    /// use arrow::datatypes::DataType;
    /// use arrow_wgpu::{col, lit};
    /// let e = col("qty").cast(DataType::Int64) * lit(1_000_000_000i64);
    /// assert_eq!(e.to_string(), "(CAST(qty AS Int64) * 1000000000i64)");
    /// ```
    pub fn cast(self, to: DataType) -> Expr {
        Expr::Cast(Box::new(self), to)
    }

    /// The names of the columns this expression reads, in order of first mention.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Column(name) = e {
                if !out.contains(&name.as_str()) {
                    out.push(name.as_str());
                }
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        walk(self, f);
    }
}

macro_rules! arith_operator {
    ($tr:ident, $method:ident, $op:ident) => {
        impl std::ops::$tr for Expr {
            type Output = Expr;
            /// The arithmetic expression `self op rhs`: integers wrap (`/` errors on zero),
            /// floats are IEEE-754 and a computed NaN is the canonical NaN ([`ArithOp`]).
            fn $method(self, rhs: Expr) -> Expr {
                Expr::Arith(ArithOp::$op, Box::new(self), Box::new(rhs))
            }
        }
    };
}
arith_operator!(Add, add, Add);
arith_operator!(Sub, sub, Sub);
arith_operator!(Mul, mul, Mul);
arith_operator!(Div, div, Div);

impl std::ops::Not for Expr {
    type Output = Expr;
    fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }
}

impl fmt::Display for ArithOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl ArithOp {
    fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::NotEq => "!=",
            CmpOp::Lt => "<",
            CmpOp::LtEq => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtEq => ">=",
        }
    }
}

impl fmt::Display for Expr {
    /// SQL-like text, fully parenthesized. Written with a stack on the heap: any depth.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        enum Piece<'a> {
            Text(&'static str),
            /// A binary operator, written with a space either side.
            Op(&'static str),
            Node(&'a Expr),
            As(&'a DataType),
        }
        let mut stack = vec![Piece::Node(self)];
        while let Some(piece) = stack.pop() {
            let e = match piece {
                Piece::Text(t) => {
                    f.write_str(t)?;
                    continue;
                }
                Piece::Op(op) => {
                    write!(f, " {op} ")?;
                    continue;
                }
                Piece::As(dt) => {
                    write!(f, " AS {dt})")?;
                    continue;
                }
                Piece::Node(e) => e,
            };
            // Pieces go on the stack last first.
            match e {
                Expr::Column(n) => f.write_str(n)?,
                Expr::Literal(v) => write!(f, "{v}")?,
                Expr::Arith(_, l, r) | Expr::Cmp(_, l, r) | Expr::And(l, r) | Expr::Or(l, r) => {
                    let op = match e {
                        Expr::Arith(op, ..) => op.symbol(),
                        Expr::Cmp(op, ..) => op.symbol(),
                        Expr::And(..) => "AND",
                        _ => "OR",
                    };
                    f.write_str("(")?;
                    stack.extend([
                        Piece::Text(")"),
                        Piece::Node(r),
                        Piece::Op(op),
                        Piece::Node(l),
                    ]);
                }
                Expr::Not(inner) => {
                    f.write_str("(NOT ")?;
                    stack.extend([Piece::Text(")"), Piece::Node(inner)]);
                }
                Expr::IsNull(inner) => {
                    f.write_str("(")?;
                    stack.extend([Piece::Text(" IS NULL)"), Piece::Node(inner)]);
                }
                Expr::IsNotNull(inner) => {
                    f.write_str("(")?;
                    stack.extend([Piece::Text(" IS NOT NULL)"), Piece::Node(inner)]);
                }
                Expr::Between(inner, lo, hi) => {
                    f.write_str("(")?;
                    stack.extend([
                        Piece::Text(")"),
                        Piece::Node(hi),
                        Piece::Text(" AND "),
                        Piece::Node(lo),
                        Piece::Text(" BETWEEN "),
                        Piece::Node(inner),
                    ]);
                }
                Expr::Cast(inner, dt) => {
                    f.write_str("CAST(")?;
                    stack.extend([Piece::As(dt), Piece::Node(inner)]);
                }
                Expr::InList(inner, list) => {
                    f.write_str("(")?;
                    stack.push(Piece::Text("))"));
                    for (i, x) in list.iter().enumerate().rev() {
                        stack.push(Piece::Node(x));
                        if i > 0 {
                            stack.push(Piece::Text(", "));
                        }
                    }
                    stack.extend([Piece::Text(" IN ("), Piece::Node(inner)]);
                }
            }
        }
        Ok(())
    }
}

/// A placeholder leaf, left where `Drop` moved a child out.
fn placeholder() -> Expr {
    Expr::Literal(ScalarValue::Boolean(false))
}

impl Tree for Expr {
    fn children(&self) -> Children<'_, Self> {
        match self {
            Expr::Column(_) | Expr::Literal(_) => children([None, None, None], &[]),
            Expr::Arith(_, l, r) | Expr::Cmp(_, l, r) | Expr::And(l, r) | Expr::Or(l, r) => {
                children([Some(&**l), Some(&**r), None], &[])
            }
            Expr::Not(e) | Expr::IsNull(e) | Expr::IsNotNull(e) | Expr::Cast(e, _) => {
                children([Some(&**e), None, None], &[])
            }
            Expr::Between(e, lo, hi) => children([Some(&**e), Some(&**lo), Some(&**hi)], &[]),
            Expr::InList(e, list) => children([Some(&**e), None, None], list),
        }
    }

    fn take_deep_children(&mut self, out: &mut Vec<Self>) {
        let mut take = |b: &mut Box<Expr>| {
            if !b.is_leaf() {
                out.push(std::mem::replace(&mut **b, placeholder()));
            }
        };
        match self {
            Expr::Column(_) | Expr::Literal(_) => {}
            Expr::Arith(_, l, r) | Expr::Cmp(_, l, r) | Expr::And(l, r) | Expr::Or(l, r) => {
                take(l);
                take(r);
            }
            Expr::Not(e) | Expr::IsNull(e) | Expr::IsNotNull(e) | Expr::Cast(e, _) => take(e),
            Expr::Between(e, lo, hi) => {
                take(e);
                take(lo);
                take(hi);
            }
            Expr::InList(e, list) => {
                take(e);
                if list.iter().any(|x| !x.is_leaf()) {
                    out.append(list);
                }
            }
        }
    }

    fn with_children(&self, kids: Vec<Self>) -> Self {
        let mut kids = kids.into_iter();
        let k = &mut kids;
        let next = |k: &mut std::vec::IntoIter<Expr>| {
            Box::new(k.next().expect("as many children as the node had"))
        };
        match self {
            Expr::Column(n) => Expr::Column(n.clone()),
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Arith(op, ..) => Expr::Arith(*op, next(k), next(k)),
            Expr::Cmp(op, ..) => Expr::Cmp(*op, next(k), next(k)),
            Expr::And(..) => Expr::And(next(k), next(k)),
            Expr::Or(..) => Expr::Or(next(k), next(k)),
            Expr::Not(_) => Expr::Not(next(k)),
            Expr::IsNull(_) => Expr::IsNull(next(k)),
            Expr::IsNotNull(_) => Expr::IsNotNull(next(k)),
            Expr::Between(..) => Expr::Between(next(k), next(k), next(k)),
            Expr::Cast(_, dt) => Expr::Cast(next(k), dt.clone()),
            Expr::InList(..) => {
                let e = next(k);
                Expr::InList(e, k.collect())
            }
        }
    }

    fn same_node(&self, other: &Self) -> bool {
        match (self, other) {
            (Expr::Column(a), Expr::Column(b)) => a == b,
            (Expr::Literal(a), Expr::Literal(b)) => a == b,
            (Expr::Arith(a, ..), Expr::Arith(b, ..)) => a == b,
            (Expr::Cmp(a, ..), Expr::Cmp(b, ..)) => a == b,
            (Expr::And(..), Expr::And(..))
            | (Expr::Or(..), Expr::Or(..))
            | (Expr::Not(_), Expr::Not(_))
            | (Expr::IsNull(_), Expr::IsNull(_))
            | (Expr::IsNotNull(_), Expr::IsNotNull(_))
            | (Expr::Between(..), Expr::Between(..)) => true,
            (Expr::Cast(_, a), Expr::Cast(_, b)) => a == b,
            (Expr::InList(_, a), Expr::InList(_, b)) => a.len() == b.len(),
            _ => false,
        }
    }

    fn debug_fields(&self) -> (&'static str, Vec<DebugField<'_, Self>>) {
        use DebugField::{Node, Nodes, Value};
        match self {
            Expr::Column(n) => ("Column", vec![Value(n)]),
            Expr::Literal(v) => ("Literal", vec![Value(v)]),
            Expr::Arith(op, l, r) => ("Arith", vec![Value(op), Node(l), Node(r)]),
            Expr::Cmp(op, l, r) => ("Cmp", vec![Value(op), Node(l), Node(r)]),
            Expr::And(l, r) => ("And", vec![Node(l), Node(r)]),
            Expr::Or(l, r) => ("Or", vec![Node(l), Node(r)]),
            Expr::Not(e) => ("Not", vec![Node(e)]),
            Expr::IsNull(e) => ("IsNull", vec![Node(e)]),
            Expr::IsNotNull(e) => ("IsNotNull", vec![Node(e)]),
            Expr::Between(e, lo, hi) => ("Between", vec![Node(e), Node(lo), Node(hi)]),
            Expr::InList(e, list) => ("InList", vec![Node(e), Nodes(list)]),
            Expr::Cast(e, dt) => ("Cast", vec![Node(e), Value(dt)]),
        }
    }
}

impl Drop for Expr {
    /// Drops the children with a stack on the heap, so that dropping a deep expression
    /// doesn't recurse once per level.
    fn drop(&mut self) {
        drop_tree(self);
    }
}

impl Clone for Expr {
    fn clone(&self) -> Self {
        clone_tree(self)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        eq_tree(self, other)
    }
}

impl fmt::Debug for Expr {
    /// As `#[derive(Debug)]` would write it (`{:?}` and `{:#?}`), without recursion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_tree(self, f)
    }
}

// Trees without recursion: the traversals that `Expr` and the planner's typed tree share.
// Each keeps its stack in a `Vec`, so the depth of an expression costs heap, never the
// thread's stack (a left-deep chain of 100,000 `AND`s or `+`s is as safe as a flat one).

/// A node's children in order: up to three single ones, then a list.
pub(crate) type Children<'a, T> = std::iter::Chain<
    std::iter::Flatten<std::array::IntoIter<Option<&'a T>, 3>>,
    std::slice::Iter<'a, T>,
>;

/// [`Children`] from up to three single children and a list.
pub(crate) fn children<'a, T>(single: [Option<&'a T>; 3], list: &'a [T]) -> Children<'a, T> {
    single.into_iter().flatten().chain(list.iter())
}

/// One field of a node as `Debug` writes it.
pub(crate) enum DebugField<'a, T> {
    /// A value that is not a node (an operator, a type, a literal).
    Value(&'a dyn fmt::Debug),
    /// A child.
    Node(&'a T),
    /// A list of children.
    Nodes(&'a [T]),
}

/// An expression tree whose traversals run on a heap stack ([`walk`], [`clone_tree`],
/// [`eq_tree`], [`drop_tree`], [`debug_tree`]).
pub(crate) trait Tree: Sized {
    /// The node's children, in order.
    fn children(&self) -> Children<'_, Self>;
    /// Whether the node has no children.
    fn is_leaf(&self) -> bool {
        self.children().next().is_none()
    }
    /// Moves every child that has children of its own into `out`, leaving a leaf in its
    /// place (what [`drop_tree`] needs).
    fn take_deep_children(&mut self, out: &mut Vec<Self>);
    /// A copy of this node with `kids` (as many as it has, in order) as its children.
    fn with_children(&self, kids: Vec<Self>) -> Self;
    /// Whether the two nodes are equal but for their children (same variant, same values,
    /// as many children).
    fn same_node(&self, other: &Self) -> bool;
    /// The variant's name and its fields, as `#[derive(Debug)]` shows them.
    fn debug_fields(&self) -> (&'static str, Vec<DebugField<'_, Self>>);
}

/// Calls `f` on every node, parents before children, left to right.
pub(crate) fn walk<'a, T: Tree>(root: &'a T, f: &mut impl FnMut(&'a T)) {
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        f(e);
        stack.extend(e.children().rev());
    }
}

/// A deep copy.
pub(crate) fn clone_tree<T: Tree>(root: &T) -> T {
    if root.is_leaf() {
        return root.with_children(Vec::new());
    }
    enum Step<'a, T> {
        Enter(&'a T),
        Build(&'a T, usize),
    }
    let mut steps = vec![Step::Enter(root)];
    let mut done: Vec<T> = Vec::new();
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter(e) if e.is_leaf() => done.push(e.with_children(Vec::new())),
            Step::Enter(e) => {
                let at = steps.len();
                steps.extend(e.children().rev().map(Step::Enter));
                let n = steps.len() - at;
                steps.insert(at, Step::Build(e, n));
            }
            Step::Build(e, n) => {
                let kids = done.split_off(done.len() - n);
                done.push(e.with_children(kids));
            }
        }
    }
    done.pop().expect("the root")
}

/// Structural equality.
pub(crate) fn eq_tree<T: Tree>(a: &T, b: &T) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        if !a.same_node(b) {
            return false;
        }
        if a.children().count() != b.children().count() {
            return false;
        }
        stack.extend(a.children().zip(b.children()));
    }
    true
}

/// Empties `root` of its deep children one level at a time, so that each node is dropped
/// with leaves only under it: what a recursive `Drop` does, without the recursion.
pub(crate) fn drop_tree<T: Tree>(root: &mut T) {
    let mut stack = Vec::new();
    root.take_deep_children(&mut stack);
    while let Some(mut e) = stack.pop() {
        e.take_deep_children(&mut stack);
        // `e` goes here, with leaves only under it.
    }
}

/// Writes `root` as `#[derive(Debug)]` would (`{:?}`, and `{:#?}` with its indentation).
pub(crate) fn debug_tree<T: Tree>(root: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    enum Piece<'a, T> {
        Text(&'static str),
        Indent(usize),
        Value(&'a dyn fmt::Debug, usize),
        Node(&'a T, usize),
        Nodes(&'a [T], usize),
    }
    let pretty = f.alternate();
    let indent = |f: &mut fmt::Formatter<'_>, depth: usize| -> fmt::Result {
        for _ in 0..depth {
            f.write_str("    ")?;
        }
        Ok(())
    };
    let mut stack = vec![Piece::Node(root, 0)];
    // Pushes the pieces of a parenthesized or bracketed list of `items` at `depth`.
    fn list<'a, T>(
        stack: &mut Vec<Piece<'a, T>>,
        items: Vec<Piece<'a, T>>,
        close: &'static str,
        depth: usize,
        pretty: bool,
    ) {
        let n = items.len();
        stack.push(Piece::Text(close));
        if pretty && n > 0 {
            stack.push(Piece::Indent(depth));
        }
        for (i, item) in items.into_iter().enumerate().rev() {
            if pretty {
                stack.push(Piece::Text(",\n"));
                stack.push(item);
                stack.push(Piece::Indent(depth + 1));
            } else {
                stack.push(item);
                if i > 0 {
                    stack.push(Piece::Text(", "));
                }
            }
        }
        if pretty && n > 0 {
            stack.push(Piece::Text("\n"));
        }
    }
    while let Some(piece) = stack.pop() {
        match piece {
            Piece::Text(t) => f.write_str(t)?,
            Piece::Indent(depth) => indent(f, depth)?,
            Piece::Value(v, depth) => {
                if pretty {
                    let text = format!("{v:#?}");
                    for (i, line) in text.split('\n').enumerate() {
                        if i > 0 {
                            f.write_str("\n")?;
                            indent(f, depth)?;
                        }
                        f.write_str(line)?;
                    }
                } else {
                    write!(f, "{v:?}")?;
                }
            }
            Piece::Node(e, depth) => {
                let (name, fields) = e.debug_fields();
                f.write_str(name)?;
                if fields.is_empty() {
                    continue;
                }
                f.write_str("(")?;
                let items = fields
                    .into_iter()
                    .map(|field| match field {
                        DebugField::Value(v) => Piece::Value(v, depth + 1),
                        DebugField::Node(n) => Piece::Node(n, depth + 1),
                        DebugField::Nodes(ns) => Piece::Nodes(ns, depth + 1),
                    })
                    .collect();
                list(&mut stack, items, ")", depth, pretty);
            }
            Piece::Nodes(ns, depth) => {
                f.write_str("[")?;
                let items = ns.iter().map(|n| Piece::Node(n, depth + 1)).collect();
                list(&mut stack, items, "]", depth, pretty);
            }
        }
    }
    Ok(())
}
