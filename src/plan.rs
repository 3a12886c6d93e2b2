//! Type-checking: an [`Expr`] resolved against a schema into a [`Typed`] tree that both
//! backends run. Coercion happens here once, so the CPU and GPU paths can't disagree on it.
//!
//! Rules (DataFusion's, simplified): an integer or float literal next to a numeric column
//! takes the column's type when it holds the value exactly; otherwise both sides widen to a
//! common type (signed with signed to the wider; signed with unsigned to a signed type wide
//! enough for both; integers with floats to Float64, or Float32 for 8/16-bit integers).
//! Decimals (Decimal128) meet integers as decimals of scale 0 and floats as Float64; two
//! decimals compare at the larger scale, and their `+ - * /` follow arrow's kernels (whose
//! types the planner asks arrow for). Temporal values compare only with the same type.
//! Strings compare only with strings: a string literal takes the other side's string type
//! (`Utf8`, `LargeUtf8`, `Utf8View`), and two string columns of different types meet at
//! `LargeUtf8` when either is large, else `Utf8` (arrow's `cmp` kernels need one type on
//! both sides). `BETWEEN` becomes `>= AND <=` and `IN` an OR of `=`, which is exactly SQL's
//! three-valued meaning of both.

use arrow::datatypes::{DataType, Schema};

use crate::error::{Error, Result};
use crate::expr::{ArithOp, CmpOp, Expr, ScalarValue};

/// A type-checked expression; columns are indices into the batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed {
    Column(usize, DataType),
    Literal(ScalarValue),
    /// A widening cast (integer to wider integer, integer to float, f32 to f64, integer to
    /// decimal, decimal to a decimal of a larger scale, decimal to Float64), or a cast
    /// between string types (same values).
    Cast(Box<Typed>, DataType),
    Arith(ArithOp, Box<Typed>, Box<Typed>, DataType),
    Cmp(CmpOp, Box<Typed>, Box<Typed>),
    And(Box<Typed>, Box<Typed>),
    Or(Box<Typed>, Box<Typed>),
    Not(Box<Typed>),
    IsNull(Box<Typed>),
    IsNotNull(Box<Typed>),
}

impl Typed {
    pub(crate) fn data_type(&self) -> DataType {
        match self {
            Typed::Column(_, dt) | Typed::Cast(_, dt) | Typed::Arith(_, _, _, dt) => dt.clone(),
            Typed::Literal(v) => v.data_type(),
            _ => DataType::Boolean,
        }
    }

    /// Every node, parents before children.
    pub(crate) fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Typed)) {
        f(self);
        match self {
            Typed::Column(..) | Typed::Literal(_) => {}
            Typed::Cast(e, _) | Typed::Not(e) | Typed::IsNull(e) | Typed::IsNotNull(e) => e.walk(f),
            Typed::Arith(_, l, r, _) | Typed::Cmp(_, l, r) | Typed::And(l, r) | Typed::Or(l, r) => {
                l.walk(f);
                r.walk(f);
            }
        }
    }

    /// The batch columns read, ascending.
    pub(crate) fn column_indices(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Typed::Column(i, _) = e {
                out.push(*i);
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The same expression with column `i` renamed to `map(i)`.
    pub(crate) fn remap_columns(&self, map: &impl Fn(usize) -> usize) -> Typed {
        let b = |e: &Typed| Box::new(e.remap_columns(map));
        match self {
            Typed::Column(i, dt) => Typed::Column(map(*i), dt.clone()),
            Typed::Literal(v) => Typed::Literal(v.clone()),
            Typed::Cast(e, dt) => Typed::Cast(b(e), dt.clone()),
            Typed::Arith(op, l, r, dt) => Typed::Arith(*op, b(l), b(r), dt.clone()),
            Typed::Cmp(op, l, r) => Typed::Cmp(*op, b(l), b(r)),
            Typed::And(l, r) => Typed::And(b(l), b(r)),
            Typed::Or(l, r) => Typed::Or(b(l), b(r)),
            Typed::Not(e) => Typed::Not(b(e)),
            Typed::IsNull(e) => Typed::IsNull(b(e)),
            Typed::IsNotNull(e) => Typed::IsNotNull(b(e)),
        }
    }
}

/// Resolves and type-checks a predicate: it must be boolean.
pub(crate) fn plan_predicate(expr: &Expr, schema: &Schema) -> Result<Typed> {
    let typed = plan(expr, schema)?;
    match typed.data_type() {
        DataType::Boolean => Ok(typed),
        other => Err(Error::InvalidExpression(format!(
            "a predicate must be boolean, but {expr} is {other}"
        ))),
    }
}

/// Resolves and type-checks any expression.
pub(crate) fn plan(expr: &Expr, schema: &Schema) -> Result<Typed> {
    Ok(match expr {
        Expr::Column(name) => {
            let (index, field) = schema
                .column_with_name(name)
                .ok_or_else(|| Error::unknown_column(name, schema))?;
            Typed::Column(index, field.data_type().clone())
        }
        Expr::Literal(v) => Typed::Literal(v.clone()),
        Expr::Arith(op, l, r) => {
            let (l, r) = (plan(l, schema)?, plan(r, schema)?);
            for side in [&l, &r] {
                let dt = side.data_type();
                if !is_numeric(&dt) && !is_decimal(&dt) {
                    return Err(Error::InvalidExpression(format!(
                        "arithmetic ({op}) needs numbers, got {dt} in {expr}"
                    )));
                }
            }
            let (l, r, dt) = coerce(l, r, expr, false)?;
            let dt = if is_decimal(&dt) {
                decimal_arith_type(*op, &l.data_type(), &r.data_type(), expr)?
            } else {
                dt
            };
            Typed::Arith(*op, Box::new(l), Box::new(r), dt)
        }
        Expr::Cmp(op, l, r) => {
            let (l, r, _) = coerce(plan(l, schema)?, plan(r, schema)?, expr, true)?;
            Typed::Cmp(*op, Box::new(l), Box::new(r))
        }
        Expr::And(l, r) => Typed::And(
            Box::new(boolean(plan(l, schema)?, expr)?),
            Box::new(boolean(plan(r, schema)?, expr)?),
        ),
        Expr::Or(l, r) => Typed::Or(
            Box::new(boolean(plan(l, schema)?, expr)?),
            Box::new(boolean(plan(r, schema)?, expr)?),
        ),
        Expr::Not(e) => Typed::Not(Box::new(boolean(plan(e, schema)?, expr)?)),
        Expr::IsNull(e) => Typed::IsNull(Box::new(plan(e, schema)?)),
        Expr::IsNotNull(e) => Typed::IsNotNull(Box::new(plan(e, schema)?)),
        Expr::Between(e, lo, hi) => {
            let ge = Expr::Cmp(CmpOp::GtEq, e.clone(), lo.clone());
            let le = Expr::Cmp(CmpOp::LtEq, e.clone(), hi.clone());
            plan(&Expr::And(Box::new(ge), Box::new(le)), schema)?
        }
        Expr::Cast(e, to) => {
            let inner = plan(e, schema)?;
            let from = inner.data_type();
            if !is_lossless_cast(&from, to) {
                return Err(Error::InvalidExpression(format!(
                    "{expr}: a cast from {from} to {to} is not one the engine runs (only casts that keep every value)"
                )));
            }
            cast_to(inner, to)
        }
        Expr::InList(e, list) => {
            let mut items = list.iter();
            match items.next() {
                None => {
                    // Still type-check the probe, so a bad column is reported.
                    plan(e, schema)?;
                    Typed::Literal(ScalarValue::Boolean(false))
                }
                Some(first) => {
                    let mut acc = plan(
                        &Expr::Cmp(CmpOp::Eq, e.clone(), Box::new(first.clone())),
                        schema,
                    )?;
                    for item in items {
                        let eq = plan(
                            &Expr::Cmp(CmpOp::Eq, e.clone(), Box::new(item.clone())),
                            schema,
                        )?;
                        acc = Typed::Or(Box::new(acc), Box::new(eq));
                    }
                    acc
                }
            }
        }
    })
}

/// Whether a cast from `from` to `to` keeps every value (integers to floats round as
/// arrow and Rust do, the same on both backends): the casts [`Expr::Cast`] accepts.
pub(crate) fn is_lossless_cast(from: &DataType, to: &DataType) -> bool {
    if from == to {
        return true;
    }
    match (int_info(from), int_info(to)) {
        (Some((s1, b1)), Some((s2, b2))) => {
            return (s1 == s2 && b2 >= b1) || (!s1 && s2 && b2 > b1)
        }
        (Some(_), None) if matches!(to, DataType::Float32 | DataType::Float64) => return true,
        _ => {}
    }
    match (from, to) {
        (DataType::Float32, DataType::Float64) => true,
        (DataType::Decimal128(..), DataType::Float64) => true,
        (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
            s2 >= s1 && (*p2 as i16 - *s2 as i16) >= (*p1 as i16 - *s1 as i16)
        }
        (_, DataType::Decimal128(p2, s2)) => match int_as_decimal(from) {
            Some(DataType::Decimal128(digits, _)) => *p2 as i16 - *s2 as i16 >= digits as i16,
            _ => false,
        },
        (a, b) => is_string(a) && is_string(b),
    }
}

fn boolean(t: Typed, ctx: &Expr) -> Result<Typed> {
    match t.data_type() {
        DataType::Boolean => Ok(t),
        other => Err(Error::InvalidExpression(format!(
            "AND/OR/NOT need booleans, got {other} in {ctx}"
        ))),
    }
}

/// Whether `dt` is a decimal (only `Decimal128` is planned).
pub(crate) fn is_decimal(dt: &DataType) -> bool {
    matches!(dt, DataType::Decimal128(..))
}

/// The decimal type an integer type converts to exactly: as many digits as its largest
/// value has, scale 0 (DataFusion's rule).
pub(crate) fn int_as_decimal(dt: &DataType) -> Option<DataType> {
    let (_, bits) = int_info(dt)?;
    let digits = match bits {
        8 => 3,
        16 => 5,
        32 => 10,
        _ => 20,
    };
    Some(DataType::Decimal128(digits, 0))
}

/// The result type of `l op r` on two decimals: arrow's own (`numeric` kernels, Hive's
/// rules: `+ -` at the larger scale with one more digit, `*` adding precisions and scales),
/// found by running the kernel on empty arrays, so both backends agree with arrow by
/// construction; an error (a scale beyond 38, ...) is arrow's.
fn decimal_arith_type(op: ArithOp, l: &DataType, r: &DataType, ctx: &Expr) -> Result<DataType> {
    use arrow::array::new_empty_array;
    use arrow::compute::kernels::numeric;
    let (a, b) = (new_empty_array(l), new_empty_array(r));
    let out = match op {
        ArithOp::Add => numeric::add_wrapping(&a, &b),
        ArithOp::Sub => numeric::sub_wrapping(&a, &b),
        ArithOp::Mul => numeric::mul_wrapping(&a, &b),
        ArithOp::Div => numeric::div(&a, &b),
    };
    out.map(|a| a.data_type().clone())
        .map_err(|e| Error::InvalidExpression(format!("{ctx}: {e}")))
}

/// The one decimal type two decimals compare in: the larger scale, and digits enough for
/// both integer parts (DataFusion's rule; at most 38).
fn common_decimal(a: &DataType, b: &DataType) -> DataType {
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) = (a, b) else {
        unreachable!("two decimals")
    };
    let scale = (*s1).max(*s2);
    let int_digits = (*p1 as i16 - *s1 as i16).max(*p2 as i16 - *s2 as i16);
    let precision = (int_digits + scale as i16).clamp(1, 38) as u8;
    DataType::Decimal128(precision, scale)
}

/// Whether `dt` is a string type (`Utf8`, `LargeUtf8`, `Utf8View`).
pub(crate) fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// The type two different string types meet at.
fn common_string(a: &DataType, b: &DataType) -> DataType {
    if a == &DataType::LargeUtf8 || b == &DataType::LargeUtf8 {
        DataType::LargeUtf8
    } else {
        DataType::Utf8
    }
}

pub(crate) fn is_numeric(dt: &DataType) -> bool {
    int_info(dt).is_some() || matches!(dt, DataType::Float32 | DataType::Float64)
}

/// (signed, bits) of an integer type.
pub(crate) fn int_info(dt: &DataType) -> Option<(bool, u32)> {
    Some(match dt {
        DataType::Int8 => (true, 8),
        DataType::Int16 => (true, 16),
        DataType::Int32 => (true, 32),
        DataType::Int64 => (true, 64),
        DataType::UInt8 => (false, 8),
        DataType::UInt16 => (false, 16),
        DataType::UInt32 => (false, 32),
        DataType::UInt64 => (false, 64),
        _ => return None,
    })
}

fn int_type(signed: bool, bits: u32) -> DataType {
    match (signed, bits) {
        (true, 8) => DataType::Int8,
        (true, 16) => DataType::Int16,
        (true, 32) => DataType::Int32,
        (true, _) => DataType::Int64,
        (false, 8) => DataType::UInt8,
        (false, 16) => DataType::UInt16,
        (false, 32) => DataType::UInt32,
        (false, _) => DataType::UInt64,
    }
}

/// The type two numeric types meet at, or `None` (Int64 with UInt64).
fn common_numeric(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (int_info(a), int_info(b)) {
        (Some((sa, ba)), Some((sb, bb))) => {
            if sa == sb {
                return Some(int_type(sa, ba.max(bb)));
            }
            let (signed_bits, unsigned_bits) = if sa { (ba, bb) } else { (bb, ba) };
            if signed_bits > unsigned_bits {
                Some(int_type(true, signed_bits))
            } else if unsigned_bits < 64 {
                Some(int_type(true, unsigned_bits * 2))
            } else {
                None
            }
        }
        (Some((_, bits)), None) | (None, Some((_, bits))) => {
            let float = if int_info(a).is_some() { b } else { a };
            Some(if float == &DataType::Float32 && bits <= 16 {
                DataType::Float32
            } else {
                DataType::Float64
            })
        }
        (None, None) => Some(DataType::Float64),
    }
}

fn cast_to(t: Typed, to: &DataType) -> Typed {
    if &t.data_type() == to {
        return t;
    }
    match t {
        Typed::Literal(v) => match v.cast_exact(to) {
            Some(v) => Typed::Literal(v),
            None => Typed::Cast(Box::new(Typed::Literal(v)), to.clone()),
        },
        other => Typed::Cast(Box::new(other), to.clone()),
    }
}

/// Brings two operands to one type; returns them and the type. With decimals: a decimal
/// meets a float as Float64 and an integer as a decimal (see [`int_as_decimal`]); two
/// decimals are brought to one type when `same_type` (comparisons), and left as they are
/// for arithmetic, whose kernels rescale (the returned type is then the left one's).
fn coerce(l: Typed, r: Typed, ctx: &Expr, same_type: bool) -> Result<(Typed, Typed, DataType)> {
    let (lt, rt) = (l.data_type(), r.data_type());
    if lt == rt {
        return Ok((l, r, lt));
    }
    let decimal = is_decimal(&lt) || is_decimal(&rt);
    // A literal adopts the other side's type when it holds the value exactly; not in
    // decimal arithmetic, where a type is a scale and the result's scale is arrow's rule
    // over the operands' own (`price * 2` keeps the price's scale).
    if !decimal || same_type {
        if let (Typed::Literal(v), false) = (&r, matches!(l, Typed::Literal(_))) {
            if let Some(v) = v.cast_exact(&lt) {
                return Ok((l, Typed::Literal(v), lt));
            }
        }
        if let (Typed::Literal(v), false) = (&l, matches!(r, Typed::Literal(_))) {
            if let Some(v) = v.cast_exact(&rt) {
                return Ok((Typed::Literal(v), r, rt));
            }
        }
    }
    if decimal {
        let float = |dt: &DataType| matches!(dt, DataType::Float32 | DataType::Float64);
        if float(&lt) || float(&rt) {
            let f = DataType::Float64;
            return Ok((cast_to(l, &f), cast_to(r, &f), f));
        }
        let as_decimal = |t: Typed| -> Result<Typed> {
            let dt = t.data_type();
            if is_decimal(&dt) {
                return Ok(t);
            }
            match int_as_decimal(&dt) {
                Some(d) => Ok(cast_to(t, &d)),
                None => Err(Error::InvalidExpression(format!(
                    "cannot combine {lt} with {rt} in {ctx}"
                ))),
            }
        };
        let (l, r) = (as_decimal(l)?, as_decimal(r)?);
        let (lt, rt) = (l.data_type(), r.data_type());
        if !same_type || lt == rt {
            return Ok((l, r, lt));
        }
        let common = common_decimal(&lt, &rt);
        return Ok((cast_to(l, &common), cast_to(r, &common), common));
    }
    if is_string(&lt) && is_string(&rt) {
        // A string literal is a Utf8 value: it takes the column's string type.
        let common = match (&l, &r) {
            (Typed::Literal(_), Typed::Literal(_)) => common_string(&lt, &rt),
            (Typed::Literal(_), _) => rt.clone(),
            (_, Typed::Literal(_)) => lt.clone(),
            _ => common_string(&lt, &rt),
        };
        return Ok((cast_to(l, &common), cast_to(r, &common), common));
    }
    if is_numeric(&lt) && is_numeric(&rt) {
        if let Some(common) = common_numeric(&lt, &rt) {
            return Ok((cast_to(l, &common), cast_to(r, &common), common));
        }
    }
    Err(Error::InvalidExpression(format!(
        "cannot combine {lt} with {rt} in {ctx}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{col, lit};
    use arrow::datatypes::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("i8", DataType::Int8, true),
            Field::new("u32", DataType::UInt32, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("d", DataType::Date32, true),
            Field::new("p", DataType::Decimal128(15, 2), true),
            Field::new("q", DataType::Decimal128(10, 4), true),
        ])
    }

    #[test]
    fn decimals_follow_arrow_and_datafusion_types() {
        // An integer column meets a decimal as Decimal128(10, 0); `+` then follows arrow.
        let t = plan(&(col("p") + col("u32")), &schema()).unwrap();
        let Typed::Arith(_, _, r, dt) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(r.data_type(), DataType::Decimal128(10, 0));
        assert_eq!(dt, &DataType::Decimal128(16, 2));
        // `*` adds scales; an integer literal keeps scale 0 (no adoption in arithmetic).
        let t = plan(&(col("p") * lit(2)), &schema()).unwrap();
        assert_eq!(t.data_type(), DataType::Decimal128(26, 2));
        // A comparison brings both sides to the larger scale with digits for both.
        let t = plan(&col("p").lt(col("q")), &schema()).unwrap();
        let Typed::Cmp(_, l, r) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(l.data_type(), DataType::Decimal128(17, 4));
        assert_eq!(r.data_type(), DataType::Decimal128(17, 4));
        // A float makes it Float64; a literal that fits adopts the column's type.
        assert!(matches!(
            plan(&(col("p") + col("f32")), &schema())
                .unwrap()
                .data_type(),
            DataType::Float64
        ));
        let t = plan(&col("p").eq(lit(3)), &schema()).unwrap();
        let Typed::Cmp(_, _, r) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(**r, Typed::Literal(ScalarValue::Decimal128(300, 15, 2)));
    }

    #[test]
    fn literal_takes_column_type_when_it_fits() {
        let t = plan(&col("i8").gt(lit(5)), &schema()).unwrap();
        assert_eq!(
            t,
            Typed::Cmp(
                CmpOp::Gt,
                Box::new(Typed::Column(0, DataType::Int8)),
                Box::new(Typed::Literal(ScalarValue::Int8(5)))
            )
        );
    }

    #[test]
    fn literal_too_big_widens_column() {
        let t = plan(&col("i8").gt(lit(500)), &schema()).unwrap();
        let Typed::Cmp(_, l, _) = t else { panic!() };
        assert_eq!(l.data_type(), DataType::Int32);
    }

    #[test]
    fn signed_with_unsigned_widens() {
        let t = plan(&(col("i8") + col("u32")), &schema()).unwrap();
        assert_eq!(t.data_type(), DataType::Int64);
    }

    #[test]
    fn date_with_number_is_invalid() {
        let err = plan(&col("d").gt(lit(1)), &schema()).unwrap_err();
        assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
    }

    #[test]
    fn string_literal_takes_the_column_string_type() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("l", DataType::LargeUtf8, true),
            Field::new("v", DataType::Utf8View, true),
        ]);
        let lit_s = || Box::new(Typed::Literal(ScalarValue::from("a")));
        let t = plan(&col("s").eq(lit("a")), &schema).unwrap();
        assert_eq!(
            t,
            Typed::Cmp(
                CmpOp::Eq,
                Box::new(Typed::Column(0, DataType::Utf8)),
                lit_s()
            )
        );
        let t = plan(&lit("a").not_eq(col("v")), &schema).unwrap();
        assert_eq!(
            t,
            Typed::Cmp(
                CmpOp::NotEq,
                Box::new(Typed::Cast(lit_s(), DataType::Utf8View)),
                Box::new(Typed::Column(2, DataType::Utf8View))
            )
        );
        let Typed::Cmp(_, l, r) = plan(&col("v").eq(col("l")), &schema).unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.data_type(), r.data_type()),
            (DataType::LargeUtf8, DataType::LargeUtf8)
        );
        let Typed::Cmp(_, l, r) = plan(&col("v").eq(col("s")), &schema).unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.data_type(), r.data_type()),
            (DataType::Utf8, DataType::Utf8)
        );
    }

    #[test]
    fn strings_never_meet_numbers() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("i", DataType::Int32, true),
        ]);
        for e in [
            col("s").eq(lit(1)),
            col("i").eq(lit("1")),
            col("s").eq(col("i")),
            col("s") + lit("x"),
            col("s").in_list(vec![lit("a"), lit(2)]),
        ] {
            let err = plan(&e, &schema).unwrap_err();
            assert!(matches!(err, Error::InvalidExpression(_)), "{e}: {err}");
        }
    }

    #[test]
    fn non_boolean_predicate_is_invalid() {
        let err = plan_predicate(&(col("i8") + lit(1)), &schema()).unwrap_err();
        assert!(matches!(err, Error::InvalidExpression(_)), "{err}");
    }
}
