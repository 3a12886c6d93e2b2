//! Predicate evaluation and filtering on the CPU, with arrow-rs's `cmp`, `boolean`,
//! `numeric`, `cast` and `filter_record_batch` kernels.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Datum, Scalar};
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::expr::{ArithOp, CmpOp};
use crate::plan::Typed;

/// A value during evaluation: a whole column, or one value standing for every row.
enum Value {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Value {
    fn datum(&self) -> Box<dyn Datum + '_> {
        match self {
            Value::Array(a) => Box::new(a),
            Value::Scalar(s) => Box::new(Scalar::new(s)),
        }
    }

    fn into_array(self, rows: usize) -> Result<ArrayRef> {
        Ok(match self {
            Value::Array(a) => a,
            Value::Scalar(s) => {
                let indices = arrow::array::UInt32Array::from(vec![0u32; rows]);
                arrow::compute::take(&s, &indices, None)?
            }
        })
    }
}

fn boolean_array(v: Value, rows: usize) -> Result<BooleanArray> {
    let a = v.into_array(rows)?;
    Ok(a.as_any()
        .downcast_ref::<BooleanArray>()
        .expect("the planner types this node as boolean")
        .clone())
}

/// The canonical quiet NaN that every computed f32 NaN becomes (positive sign).
const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The canonical quiet NaN that every computed f64 NaN becomes (positive sign).
const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The NaN rule (see [`crate::expr::ArithOp`]): a float computed by an expression that is
/// NaN becomes the canonical quiet NaN, since the NaN bits hardware produces differ between
/// CPUs (x86's default NaN is negative, ARM's positive) and compilers may swap operands.
/// Nulls stay null; other values and other types pass through unchanged.
fn canonical_nans(a: ArrayRef) -> ArrayRef {
    match a.data_type() {
        DataType::Float32 => {
            let p = a.as_primitive::<Float32Type>();
            if !p.values().iter().any(|v| v.is_nan()) {
                return a;
            }
            Arc::new(p.unary::<_, Float32Type>(|v| {
                if v.is_nan() {
                    f32::from_bits(F32_CANONICAL_NAN)
                } else {
                    v
                }
            }))
        }
        DataType::Float64 => {
            let p = a.as_primitive::<Float64Type>();
            if !p.values().iter().any(|v| v.is_nan()) {
                return a;
            }
            Arc::new(p.unary::<_, Float64Type>(|v| {
                if v.is_nan() {
                    f64::from_bits(F64_CANONICAL_NAN)
                } else {
                    v
                }
            }))
        }
        _ => a,
    }
}

fn eval(batch: &RecordBatch, e: &Typed) -> Result<Value> {
    let rows = batch.num_rows();
    Ok(match e {
        Typed::Column(i, _) => Value::Array(batch.column(*i).clone()),
        Typed::Literal(v) => Value::Scalar(v.to_array()),
        Typed::Cast(inner, to) => match eval(batch, inner)? {
            Value::Array(a) => Value::Array(canonical_nans(cast(&a, to)?)),
            Value::Scalar(s) => Value::Scalar(canonical_nans(cast(&s, to)?)),
        },
        Typed::Arith(op, l, r, _) => {
            let (l, r) = (eval(batch, l)?, eval(batch, r)?);
            let both_scalar = matches!((&l, &r), (Value::Scalar(_), Value::Scalar(_)));
            let (l, r) = (l.datum(), r.datum());
            // Float `div` by zero is inf or NaN, never an error (arrow's `div_wrapping` on
            // floats); integer `div` errors on zero and MIN / -1.
            let out = canonical_nans(match op {
                ArithOp::Add => numeric::add_wrapping(l.as_ref(), r.as_ref())?,
                ArithOp::Sub => numeric::sub_wrapping(l.as_ref(), r.as_ref())?,
                ArithOp::Mul => numeric::mul_wrapping(l.as_ref(), r.as_ref())?,
                ArithOp::Div => numeric::div(l.as_ref(), r.as_ref())?,
            });
            if both_scalar {
                Value::Scalar(out)
            } else {
                Value::Array(out)
            }
        }
        Typed::Cmp(op, l, r) => {
            let (l, r) = (eval(batch, l)?, eval(batch, r)?);
            let both_scalar = matches!((&l, &r), (Value::Scalar(_), Value::Scalar(_)));
            let (l, r) = (l.datum(), r.datum());
            let f = match op {
                CmpOp::Eq => cmp::eq,
                CmpOp::NotEq => cmp::neq,
                CmpOp::Lt => cmp::lt,
                CmpOp::LtEq => cmp::lt_eq,
                CmpOp::Gt => cmp::gt,
                CmpOp::GtEq => cmp::gt_eq,
            };
            let out: ArrayRef = Arc::new(f(l.as_ref(), r.as_ref())?);
            if both_scalar {
                Value::Scalar(out)
            } else {
                Value::Array(out)
            }
        }
        Typed::And(l, r) | Typed::Or(l, r) => {
            let l = boolean_array(eval(batch, l)?, rows)?;
            let r = boolean_array(eval(batch, r)?, rows)?;
            let out = if matches!(e, Typed::And(..)) {
                boolean::and_kleene(&l, &r)?
            } else {
                boolean::or_kleene(&l, &r)?
            };
            Value::Array(Arc::new(out))
        }
        Typed::Not(inner) => match eval(batch, inner)? {
            Value::Scalar(s) => Value::Scalar(Arc::new(boolean::not(
                s.as_any().downcast_ref().expect("boolean"),
            )?)),
            v => Value::Array(Arc::new(boolean::not(&boolean_array(v, rows)?)?)),
        },
        Typed::IsNull(inner) | Typed::IsNotNull(inner) => {
            let null = matches!(e, Typed::IsNull(_));
            let f = if null {
                boolean::is_null
            } else {
                boolean::is_not_null
            };
            match eval(batch, inner)? {
                Value::Scalar(s) => Value::Scalar(Arc::new(f(&s)?)),
                Value::Array(a) => Value::Array(Arc::new(f(&a)?)),
            }
        }
    })
}

/// Evaluates a type-checked predicate over every row of `batch`.
pub(crate) fn evaluate(batch: &RecordBatch, predicate: &Typed) -> Result<BooleanArray> {
    boolean_array(eval(batch, predicate)?, batch.num_rows())
}

/// Evaluates a type-checked value expression over every row of `batch` (a literal becomes
/// a column of `batch.num_rows()` copies).
pub(crate) fn evaluate_value(batch: &RecordBatch, expr: &Typed) -> Result<ArrayRef> {
    eval(batch, expr)?.into_array(batch.num_rows())
}

/// Keeps the rows where `mask` is true (null counts as false), as arrow's `filter`.
pub(crate) fn filter_by_mask(batch: &RecordBatch, mask: &BooleanArray) -> Result<RecordBatch> {
    Ok(filter_record_batch(batch, mask)?)
}
