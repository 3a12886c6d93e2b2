//! DataFusion's typed physical expressions, aggregates and sort keys into the library's
//! [`Expr`], [`Agg`] and [`SortKey`].
//!
//! Columns are taken by their index in the operator's input, never re-resolved by name:
//! the operator renames its input's columns to `c0, c1, ...` ([`column_name`]) before the
//! engine sees a batch, and the translated expressions name those. Everything else is a
//! [`Refusal`] that says why, and the rule leaves DataFusion's node in place.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_wgpu::{col, Agg, Expr, ScalarValue, SortKey, SortOptions};
use datafusion::common::ScalarValue as DfScalar;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
    TryCastExpr,
};
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};

/// Why an expression, aggregate or key stays on DataFusion.
pub type Refusal = String;

/// The name the library sees for input column `index`.
pub fn column_name(index: usize) -> String {
    format!("c{index}")
}

/// `schema` with its columns named as [`column_name`] says (types and nullability kept).
pub fn renamed_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(column_name(i), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

/// A DataFusion scalar as the library's literal.
pub fn scalar(v: &DfScalar) -> Result<ScalarValue, Refusal> {
    let null = || format!("a NULL literal ({})", v.data_type());
    Ok(match v {
        DfScalar::Boolean(Some(b)) => ScalarValue::Boolean(*b),
        DfScalar::Int8(Some(x)) => ScalarValue::Int8(*x),
        DfScalar::Int16(Some(x)) => ScalarValue::Int16(*x),
        DfScalar::Int32(Some(x)) => ScalarValue::Int32(*x),
        DfScalar::Int64(Some(x)) => ScalarValue::Int64(*x),
        DfScalar::UInt8(Some(x)) => ScalarValue::UInt8(*x),
        DfScalar::UInt16(Some(x)) => ScalarValue::UInt16(*x),
        DfScalar::UInt32(Some(x)) => ScalarValue::UInt32(*x),
        DfScalar::UInt64(Some(x)) => ScalarValue::UInt64(*x),
        DfScalar::Float32(Some(x)) => ScalarValue::Float32(*x),
        DfScalar::Float64(Some(x)) => ScalarValue::Float64(*x),
        DfScalar::Date32(Some(x)) => ScalarValue::Date32(*x),
        DfScalar::Date64(Some(x)) => ScalarValue::Date64(*x),
        DfScalar::TimestampSecond(Some(x), tz) => {
            ScalarValue::Timestamp(*x, TimeUnit::Second, tz.clone())
        }
        DfScalar::TimestampMillisecond(Some(x), tz) => {
            ScalarValue::Timestamp(*x, TimeUnit::Millisecond, tz.clone())
        }
        DfScalar::TimestampMicrosecond(Some(x), tz) => {
            ScalarValue::Timestamp(*x, TimeUnit::Microsecond, tz.clone())
        }
        DfScalar::TimestampNanosecond(Some(x), tz) => {
            ScalarValue::Timestamp(*x, TimeUnit::Nanosecond, tz.clone())
        }
        DfScalar::Decimal128(Some(x), p, s) => ScalarValue::Decimal128(*x, *p, *s),
        DfScalar::Utf8(Some(s)) | DfScalar::LargeUtf8(Some(s)) | DfScalar::Utf8View(Some(s)) => {
            ScalarValue::Utf8(s.clone())
        }
        other if other.is_null() => return Err(null()),
        other => return Err(format!("a literal of type {}", other.data_type())),
    })
}

/// `e` as the library's expression over the input's columns by index.
pub fn expr(e: &Arc<dyn PhysicalExpr>) -> Result<Expr, Refusal> {
    let any: &dyn PhysicalExpr = e.as_ref();
    if let Some(c) = any.downcast_ref::<Column>() {
        return Ok(col(column_name(c.index())));
    }
    if let Some(l) = any.downcast_ref::<Literal>() {
        return Ok(Expr::Literal(scalar(l.value())?));
    }
    if let Some(b) = any.downcast_ref::<BinaryExpr>() {
        let (l, r) = (expr(b.left())?, expr(b.right())?);
        return Ok(match b.op() {
            Operator::Eq => l.eq(r),
            Operator::NotEq => l.not_eq(r),
            Operator::Lt => l.lt(r),
            Operator::LtEq => l.lt_eq(r),
            Operator::Gt => l.gt(r),
            Operator::GtEq => l.gt_eq(r),
            Operator::And => l.and(r),
            Operator::Or => l.or(r),
            Operator::Plus => l + r,
            Operator::Minus => l - r,
            Operator::Multiply => l * r,
            Operator::Divide => l / r,
            other => return Err(format!("the operator {other}")),
        });
    }
    if let Some(c) = any.downcast_ref::<CastExpr>() {
        return cast(expr(c.expr())?, c.cast_type());
    }
    if let Some(c) = any.downcast_ref::<TryCastExpr>() {
        // A lossless cast never fails, so TRY_CAST of one is the cast.
        return cast(expr(c.expr())?, c.cast_type());
    }
    if let Some(n) = any.downcast_ref::<NotExpr>() {
        return Ok(expr(n.arg())?.not());
    }
    if let Some(n) = any.downcast_ref::<IsNullExpr>() {
        return Ok(expr(n.arg())?.is_null());
    }
    if let Some(n) = any.downcast_ref::<IsNotNullExpr>() {
        return Ok(expr(n.arg())?.is_not_null());
    }
    if let Some(i) = any.downcast_ref::<InListExpr>() {
        let probe = expr(i.expr())?;
        let list = i.list().iter().map(expr).collect::<Result<Vec<_>, _>>()?;
        let e = probe.in_list(list);
        return Ok(if i.negated() { e.not() } else { e });
    }
    Err(format!("the expression {e}"))
}

fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

/// A literal (under casts) that is a finite, non-zero number: where one side of a
/// comparison is one, DataFusion's and the library's float comparisons agree.
fn nonzero_literal(e: &Arc<dyn PhysicalExpr>) -> bool {
    let any: &dyn PhysicalExpr = e.as_ref();
    if let Some(c) = any.downcast_ref::<CastExpr>() {
        return nonzero_literal(c.expr());
    }
    let Some(l) = any.downcast_ref::<Literal>() else {
        return false;
    };
    match l.value() {
        DfScalar::Float64(Some(v)) => v.is_finite() && *v != 0.0,
        DfScalar::Float32(Some(v)) => v.is_finite() && *v != 0.0,
        // Other numbers (a side of a float comparison is cast to float above them).
        v => match v.cast_to(&DataType::Float64) {
            Ok(DfScalar::Float64(Some(x))) => x.is_finite() && x != 0.0,
            _ => false,
        },
    }
}

/// Whether `e` computes a float by arithmetic (whose NaN the library makes canonical
/// and DataFusion leaves as the CPU's, with its sign).
fn float_arithmetic(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    let any: &dyn PhysicalExpr = e.as_ref();
    if let Some(b) = any.downcast_ref::<BinaryExpr>() {
        if matches!(
            b.op(),
            Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
        ) && e.data_type(schema).is_ok_and(|dt| is_float(&dt))
        {
            return true;
        }
    }
    e.children().iter().any(|c| float_arithmetic(c, schema))
}

/// Whether the library answers `e` (over `schema`) as DataFusion does. Where floats are
/// compared they may not: DataFusion 55 compares -0.0 = 0.0 (and hashes IN lists of more
/// than a few items by bits), and keeps the sign of a NaN that arithmetic computes; the
/// library compares in IEEE total order (-0.0 < 0.0) and makes computed NaNs canonical. A
/// float comparison agrees on every value when one side is a finite non-zero literal and
/// the other computes no float arithmetic; any other stays on DataFusion.
pub fn same_answer(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<(), Refusal> {
    let any: &dyn PhysicalExpr = e.as_ref();
    let float = |x: &Arc<dyn PhysicalExpr>| x.data_type(schema).is_ok_and(|dt| is_float(&dt));
    let refuse = || {
        Err(format!(
            "{e}: floats compared where a side may be zero or a computed NaN (DataFusion's -0.0 = 0.0; the library's total order)"
        ))
    };
    if let Some(b) = any.downcast_ref::<BinaryExpr>() {
        let comparison = matches!(
            b.op(),
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
        );
        if comparison && (float(b.left()) || float(b.right())) {
            let agrees = (nonzero_literal(b.left()) && !float_arithmetic(b.right(), schema))
                || (nonzero_literal(b.right()) && !float_arithmetic(b.left(), schema));
            if !agrees {
                return refuse();
            }
        }
    }
    if let Some(i) = any.downcast_ref::<InListExpr>() {
        if float(i.expr())
            && (float_arithmetic(i.expr(), schema) || !i.list().iter().all(nonzero_literal))
        {
            return refuse();
        }
    }
    for c in e.children() {
        same_answer(c, schema)?;
    }
    Ok(())
}

fn cast(inner: Expr, to: &DataType) -> Result<Expr, Refusal> {
    Ok(inner.cast(to.clone()))
}

/// An aggregate as the library's [`Agg`] (named `a{index}`), with its filter.
pub fn aggregate(
    index: usize,
    a: &AggregateFunctionExpr,
    filter: Option<&Arc<dyn PhysicalExpr>>,
    schema: &Schema,
) -> Result<Agg, Refusal> {
    let name = a.fun().name().to_string();
    if !a.order_bys().is_empty() {
        return Err(format!("{name} with ORDER BY"));
    }
    let args = a.expressions();
    let arg = || -> Result<Expr, Refusal> {
        match args.as_slice() {
            [one] => expr(one),
            _ => Err(format!("{name} of {} arguments", args.len())),
        }
    };
    let distinct = a.is_distinct();
    // count(DISTINCT) of floats: DataFusion's counts -0.0 and 0.0 as one value, the
    // library as two; it stays there. (min/max of floats are the session's total-order
    // functions, `crate::minmax`, which answer as the library.)
    let float_arg = args
        .first()
        .is_some_and(|x| x.data_type(schema).is_ok_and(|dt| is_float(&dt)));
    if float_arg && distinct {
        return Err(format!(
            "{name}(DISTINCT) of a float (DataFusion counts -0.0 and 0.0 as one value)"
        ));
    }
    for x in args.iter().chain(filter) {
        same_answer(x, schema)?;
    }
    let agg = match (name.as_str(), distinct) {
        ("count", false) => match args.as_slice() {
            // COUNT(*) is planned as count of a non-null literal.
            [one]
                if one
                    .downcast_ref::<Literal>()
                    .is_some_and(|l| !l.value().is_null()) =>
            {
                Agg::count_star()
            }
            _ => Agg::count(arg()?),
        },
        ("count", true) => Agg::count_distinct(arg()?),
        ("sum", false) => Agg::sum(arg()?),
        ("avg", false) => Agg::mean(arg()?),
        ("min", _) => Agg::min(arg()?),
        ("max", _) => Agg::max(arg()?),
        ("var", false) => Agg::var_samp(arg()?),
        ("var_pop", false) => Agg::var_pop(arg()?),
        ("stddev", false) => Agg::stddev_samp(arg()?),
        ("stddev_pop", false) => Agg::stddev_pop(arg()?),
        (other, true) => return Err(format!("{other}(DISTINCT ...)")),
        (other, false) => return Err(format!("the aggregate {other}")),
    };
    let agg = match filter {
        Some(f) => agg.filter(expr(f)?),
        None => agg,
    };
    Ok(agg.alias(format!("a{index}")))
}

/// A sort expression over a column as the library's [`SortKey`].
pub fn sort_key(s: &PhysicalSortExpr) -> Result<SortKey, Refusal> {
    let c = s
        .expr
        .downcast_ref::<Column>()
        .ok_or_else(|| format!("the sort key {} (only columns)", s.expr))?;
    let options: SortOptions = s.options;
    Ok(SortKey::new(column_name(c.index()), options))
}
