//! Predicate evaluation and filtering on the CPU, with arrow-rs's `cmp`, `boolean`,
//! `numeric`, `cast` and `filter_record_batch` kernels.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Datum, Scalar};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::{boolean, cmp, numeric};
use arrow::compute::{cast, filter_record_batch, FilterBuilder};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::Threads;
use crate::error::Result;
use crate::expr::{ArithOp, CmpOp, ScalarValue, Tree};
use crate::plan::{in_list_bits, in_list_order, Typed};

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

/// Evaluates `root` without recursion: a post-order walk over a heap stack, operands
/// waiting on another, so a tree of any depth (a chain of 50,000 `+`) is safe. An n-ary
/// AND or OR folds its operands in, left to right, one at a time.
fn eval(batch: &RecordBatch, root: &Typed) -> Result<Value> {
    enum Step<'a> {
        Enter(&'a Typed),
        Exit(&'a Typed),
        /// Fold the top operand into the one under it: AND (`true`) or OR.
        Logic(bool),
    }
    let rows = batch.num_rows();
    let mut steps = vec![Step::Enter(root)];
    let mut values: Vec<Value> = Vec::new();
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter(Typed::Column(i, _)) => values.push(Value::Array(batch.column(*i).clone())),
            Step::Enter(Typed::Literal(v)) => values.push(Value::Scalar(v.to_array())),
            Step::Enter(e @ (Typed::And(list) | Typed::Or(list))) => {
                let and = matches!(e, Typed::And(_));
                for x in list.iter().skip(1).rev() {
                    steps.push(Step::Logic(and));
                    steps.push(Step::Enter(x));
                }
                match list.first() {
                    Some(first) => steps.push(Step::Enter(first)),
                    // Never planned; the identity of each.
                    None => values.push(Value::Scalar(Arc::new(BooleanArray::from(vec![and])))),
                }
            }
            Step::Enter(e) => {
                steps.push(Step::Exit(e));
                steps.extend(e.children().rev().map(Step::Enter));
            }
            Step::Logic(and) => {
                let r = boolean_array(values.pop().expect("an operand"), rows)?;
                let l = boolean_array(values.pop().expect("an operand"), rows)?;
                let out = if and {
                    boolean::and_kleene(&l, &r)?
                } else {
                    boolean::or_kleene(&l, &r)?
                };
                values.push(Value::Array(Arc::new(out)));
            }
            Step::Exit(e) => {
                let n = e.children().count();
                let kids = values.split_off(values.len() - n);
                values.push(apply(e, kids, rows)?);
            }
        }
    }
    Ok(values.pop().expect("the root's value"))
}

/// The value of `e` (not a column, literal, AND or OR) from its children's values.
fn apply(e: &Typed, kids: Vec<Value>, rows: usize) -> Result<Value> {
    let mut kids = kids.into_iter();
    let mut next = || kids.next().expect("a child's value");
    Ok(match e {
        Typed::Column(..) | Typed::Literal(_) | Typed::And(_) | Typed::Or(_) => {
            unreachable!("evaluated in `eval`")
        }
        Typed::Cast(_, to) => match next() {
            Value::Array(a) => Value::Array(canonical_nans(cast(&a, to)?)),
            Value::Scalar(s) => Value::Scalar(canonical_nans(cast(&s, to)?)),
        },
        Typed::Arith(op, _, _, _) => {
            let (l, r) = (next(), next());
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
        Typed::Cmp(op, _, _) => {
            let (l, r) = (next(), next());
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
        Typed::Not(_) => match next() {
            Value::Scalar(s) => Value::Scalar(Arc::new(boolean::not(
                s.as_any().downcast_ref().expect("boolean"),
            )?)),
            v => Value::Array(Arc::new(boolean::not(&boolean_array(v, rows)?)?)),
        },
        Typed::IsNull(_) | Typed::IsNotNull(_) => {
            let f = if matches!(e, Typed::IsNull(_)) {
                boolean::is_null
            } else {
                boolean::is_not_null
            };
            match next() {
                Value::Scalar(s) => Value::Scalar(Arc::new(f(&s)?)),
                Value::Array(a) => Value::Array(Arc::new(f(&a)?)),
            }
        }
        Typed::InList(_, set) => match next() {
            Value::Scalar(s) => Value::Scalar(Arc::new(in_list(&s, set)?)),
            Value::Array(a) => Value::Array(Arc::new(in_list(&a, set)?)),
        },
    })
}

/// `probe IN (set)` per row: null where the probe is null, else whether its value is in
/// `set` (the planner's literals of the probe's type, distinct and in
/// [`in_list_order`]), by a binary search. Equality is arrow's `eq`: integers, decimals
/// and booleans by value, floats by their bits (total order: `-0.0 != 0.0`, a NaN equals
/// a NaN of the same bits), strings by their bytes.
fn in_list(probe: &ArrayRef, set: &[ScalarValue]) -> Result<BooleanArray> {
    use arrow::datatypes::*;
    debug_assert!(set.windows(2).all(|w| in_list_order(&w[0], &w[1]).is_lt()));
    let bits: Vec<u128> = set.iter().map(in_list_bits).collect();
    let found = |key: u128| bits.binary_search(&key).is_ok();
    let len = probe.len();
    macro_rules! primitive {
        ($t:ty, $key:expr) => {{
            let values = probe.as_primitive::<$t>().values();
            let key = $key;
            BooleanBuffer::collect_bool(len, |i| found(key(values[i])))
        }};
    }
    macro_rules! strings {
        ($array:expr) => {{
            let array = $array;
            let words: Vec<&[u8]> = set
                .iter()
                .map(|v| match v {
                    ScalarValue::Utf8(s) => s.as_bytes(),
                    other => unreachable!("a string IN list holds strings, not {other:?}"),
                })
                .collect();
            BooleanBuffer::collect_bool(len, |i| {
                let v: &[u8] = array.value(i).as_bytes();
                words.binary_search(&v).is_ok()
            })
        }};
    }
    let signed = |v: i64| v as u64 as u128;
    let values = match probe.data_type() {
        DataType::Boolean => {
            let b = probe.as_boolean();
            BooleanBuffer::collect_bool(len, |i| found(b.value(i) as u128))
        }
        DataType::Int8 => primitive!(Int8Type, |v: i8| signed(v as i64)),
        DataType::Int16 => primitive!(Int16Type, |v: i16| signed(v as i64)),
        DataType::Int32 => primitive!(Int32Type, |v: i32| signed(v as i64)),
        DataType::Int64 => primitive!(Int64Type, signed),
        DataType::UInt8 => primitive!(UInt8Type, |v: u8| v as u128),
        DataType::UInt16 => primitive!(UInt16Type, |v: u16| v as u128),
        DataType::UInt32 => primitive!(UInt32Type, |v: u32| v as u128),
        DataType::UInt64 => primitive!(UInt64Type, |v: u64| v as u128),
        DataType::Float32 => primitive!(Float32Type, |v: f32| v.to_bits() as u128),
        DataType::Float64 => primitive!(Float64Type, |v: f64| v.to_bits() as u128),
        DataType::Date32 => primitive!(Date32Type, |v: i32| signed(v as i64)),
        DataType::Date64 => primitive!(Date64Type, signed),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondType, signed),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            primitive!(TimestampMillisecondType, signed)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            primitive!(TimestampMicrosecondType, signed)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            primitive!(TimestampNanosecondType, signed)
        }
        DataType::Decimal128(..) => primitive!(Decimal128Type, |v: i128| v as u128),
        DataType::Utf8 => strings!(probe.as_string::<i32>()),
        DataType::LargeUtf8 => strings!(probe.as_string::<i64>()),
        DataType::Utf8View => strings!(probe.as_string_view()),
        other => {
            return Err(crate::error::Error::InvalidExpression(format!(
                "IN over values of type {other}"
            )))
        }
    };
    Ok(BooleanArray::new(values, probe.nulls().cloned()))
}

/// Evaluates a type-checked predicate over every row of `batch`.
///
/// A batch of no rows evaluates nothing (an empty mask): an expression that fails on every
/// row, such as an integer divided by a zero literal, fails on none, as the GPU path (which
/// runs no kernel) and SQL (no row, no evaluation) have it.
pub(crate) fn evaluate(batch: &RecordBatch, predicate: &Typed) -> Result<BooleanArray> {
    if batch.num_rows() == 0 {
        return Ok(BooleanArray::from(Vec::<bool>::new()));
    }
    boolean_array(eval(batch, predicate)?, batch.num_rows())
}

/// Evaluates a type-checked value expression over every row of `batch` (a literal becomes
/// a column of `batch.num_rows()` copies).
/// A batch of no rows evaluates nothing, as [`evaluate`].
pub(crate) fn evaluate_value(batch: &RecordBatch, expr: &Typed) -> Result<ArrayRef> {
    if batch.num_rows() == 0 {
        return Ok(arrow::array::new_empty_array(&expr.data_type()));
    }
    eval(batch, expr)?.into_array(batch.num_rows())
}

/// Keeps the rows where `mask` is true (null counts as false), as arrow's `filter`.
pub(crate) fn filter_by_mask(batch: &RecordBatch, mask: &BooleanArray) -> Result<RecordBatch> {
    Ok(filter_record_batch(batch, mask)?)
}

/// The rows of `batch` where `predicate` is true (null counts as false), on up to
/// `threads` threads: the mask in contiguous pieces of rows, then the columns shared out
/// between the threads as they come free, the costliest first, each filtered by one
/// prepared mask into its final array (no pieces to concatenate). The same arrays as
/// [`filter_by_mask`] with the one-thread mask; an error is the first piece's.
pub(crate) fn filter_on(
    batch: &RecordBatch,
    predicate: &Typed,
    threads: Threads,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let pieces = threads.pieces(rows);
    if pieces == 1 {
        return filter_by_mask(batch, &evaluate(batch, predicate)?);
    }
    let masks = threads.map_pieces(rows, |start, len| {
        evaluate(&batch.slice(start, len), predicate)
    })?;
    let masks: Vec<&dyn Array> = masks.iter().map(|m| m as &dyn Array).collect();
    let mask = arrow::compute::concat(&masks)?;
    let prepared = FilterBuilder::new(mask.as_boolean()).optimize().build();
    let filtered = Threads::map_columns(batch.columns(), pieces, |c| Ok(prepared.filter(c)?))?;
    let options = RecordBatchOptions::new().with_row_count(Some(prepared.count()));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        filtered,
        &options,
    )?)
}
