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
//! both sides). `BETWEEN` becomes `>= AND <=`, SQL's three-valued meaning of it; `IN` one
//! node over its literals brought to the probe's type ([`Typed::InList`]), which means
//! what an OR of `=` means, typed as each `=` would be.
//!
//! Nothing here recurses once per level of an expression: planning is a loop over a heap
//! stack, chains of `AND`s or `OR`s become one n-ary node, and the typed tree's `Clone`,
//! `==`, `Debug` and `Drop` are loops too ([`crate::expr`]'s tree functions).

use std::cmp::Ordering;
use std::fmt;

use arrow::datatypes::{DataType, Schema};

use crate::error::{Error, Result};
use crate::expr::{self, ArithOp, Children, CmpOp, DebugField, Expr, ScalarValue, Tree};

/// A type-checked expression; columns are indices into the batch.
///
/// Like [`Expr`], every traversal (planning, both backends, `Clone`, `==`, `Debug`, `Drop`)
/// runs on a heap stack: a tree of any depth is safe.
pub(crate) enum Typed {
    Column(usize, DataType),
    Literal(ScalarValue),
    /// A widening cast (integer to wider integer, integer to float, f32 to f64, integer to
    /// decimal, decimal to a decimal of a larger scale, decimal to Float64), or a cast
    /// between string types (same values).
    Cast(Box<Typed>, DataType),
    Arith(ArithOp, Box<Typed>, Box<Typed>, DataType),
    Cmp(CmpOp, Box<Typed>, Box<Typed>),
    /// Three-valued AND of two or more booleans (a chain of `AND`s, flattened).
    And(Vec<Typed>),
    /// Three-valued OR of two or more booleans.
    Or(Vec<Typed>),
    Not(Box<Typed>),
    IsNull(Box<Typed>),
    IsNotNull(Box<Typed>),
    /// `probe IN (values)`: null where the probe is null, else whether it equals one of
    /// the values, with arrow's `eq` (floats by their bits: IEEE total order, so `-0.0`
    /// is not `0.0` and a NaN equals a NaN of the same bits). The values are literals of
    /// the probe's type (a string type's as `Utf8`), distinct, ordered by
    /// [`in_list_order`]: at least one.
    InList(Box<Typed>, Vec<ScalarValue>),
}

/// The bits of a non-string literal as an IN list orders them: its GPU bits (integers
/// sign- or zero-extended, floats' IEEE bits), a decimal's 128 bits. Within one type two
/// values have the same bits exactly when arrow's `eq` says they are equal.
pub(crate) fn in_list_bits(v: &ScalarValue) -> u128 {
    match v {
        ScalarValue::Decimal128(x, _, _) => *x as u128,
        v => v.gpu_bits() as u128,
    }
}

/// The order of an IN list's values: strings by their bytes, everything else by
/// [`in_list_bits`] as an unsigned number.
pub(crate) fn in_list_order(a: &ScalarValue, b: &ScalarValue) -> Ordering {
    match (a, b) {
        (ScalarValue::Utf8(a), ScalarValue::Utf8(b)) => a.as_bytes().cmp(b.as_bytes()),
        _ => in_list_bits(a).cmp(&in_list_bits(b)),
    }
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
        expr::walk(self, f);
    }

    /// Calls `f` on every node, parents before children (which `f` may change).
    fn walk_mut(&mut self, f: &mut impl FnMut(&mut Typed)) {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            f(e);
            match e {
                Typed::Column(..) | Typed::Literal(_) => {}
                Typed::Cast(x, _)
                | Typed::Not(x)
                | Typed::IsNull(x)
                | Typed::IsNotNull(x)
                | Typed::InList(x, _) => stack.push(x),
                Typed::Arith(_, l, r, _) | Typed::Cmp(_, l, r) => {
                    stack.push(r);
                    stack.push(l);
                }
                Typed::And(list) | Typed::Or(list) => stack.extend(list.iter_mut().rev()),
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
        let mut out = self.clone();
        out.walk_mut(&mut |e| {
            if let Typed::Column(i, _) = e {
                *i = map(*i);
            }
        });
        out
    }

    /// How many nodes the tree has (an IN list counts as one, whatever its length).
    pub(crate) fn node_count(&self) -> usize {
        let mut n = 0;
        self.walk(&mut |_| n += 1);
        n
    }
}

/// A placeholder leaf, left where `Drop` moved a child out.
fn placeholder() -> Typed {
    Typed::Literal(ScalarValue::Boolean(false))
}

impl Tree for Typed {
    fn children(&self) -> Children<'_, Self> {
        match self {
            Typed::Column(..) | Typed::Literal(_) => expr::children([None, None, None], &[]),
            Typed::Cast(e, _)
            | Typed::Not(e)
            | Typed::IsNull(e)
            | Typed::IsNotNull(e)
            | Typed::InList(e, _) => expr::children([Some(&**e), None, None], &[]),
            Typed::Arith(_, l, r, _) | Typed::Cmp(_, l, r) => {
                expr::children([Some(&**l), Some(&**r), None], &[])
            }
            Typed::And(list) | Typed::Or(list) => expr::children([None, None, None], list),
        }
    }

    fn take_deep_children(&mut self, out: &mut Vec<Self>) {
        let mut take = |b: &mut Box<Typed>| {
            if !b.is_leaf() {
                out.push(std::mem::replace(&mut **b, placeholder()));
            }
        };
        match self {
            Typed::Column(..) | Typed::Literal(_) => {}
            Typed::Cast(e, _)
            | Typed::Not(e)
            | Typed::IsNull(e)
            | Typed::IsNotNull(e)
            | Typed::InList(e, _) => take(e),
            Typed::Arith(_, l, r, _) | Typed::Cmp(_, l, r) => {
                take(l);
                take(r);
            }
            Typed::And(list) | Typed::Or(list) => {
                if list.iter().any(|x| !x.is_leaf()) {
                    out.append(list);
                }
            }
        }
    }

    fn with_children(&self, kids: Vec<Self>) -> Self {
        let mut kids = kids.into_iter();
        let k = &mut kids;
        let next = |k: &mut std::vec::IntoIter<Typed>| {
            Box::new(k.next().expect("as many children as the node had"))
        };
        match self {
            Typed::Column(i, dt) => Typed::Column(*i, dt.clone()),
            Typed::Literal(v) => Typed::Literal(v.clone()),
            Typed::Cast(_, dt) => Typed::Cast(next(k), dt.clone()),
            Typed::Arith(op, _, _, dt) => Typed::Arith(*op, next(k), next(k), dt.clone()),
            Typed::Cmp(op, _, _) => Typed::Cmp(*op, next(k), next(k)),
            Typed::And(_) => Typed::And(k.collect()),
            Typed::Or(_) => Typed::Or(k.collect()),
            Typed::Not(_) => Typed::Not(next(k)),
            Typed::IsNull(_) => Typed::IsNull(next(k)),
            Typed::IsNotNull(_) => Typed::IsNotNull(next(k)),
            Typed::InList(_, values) => Typed::InList(next(k), values.clone()),
        }
    }

    fn same_node(&self, other: &Self) -> bool {
        match (self, other) {
            (Typed::Column(a, x), Typed::Column(b, y)) => a == b && x == y,
            (Typed::Literal(a), Typed::Literal(b)) => a == b,
            (Typed::Cast(_, a), Typed::Cast(_, b)) => a == b,
            (Typed::Arith(a, _, _, x), Typed::Arith(b, _, _, y)) => a == b && x == y,
            (Typed::Cmp(a, ..), Typed::Cmp(b, ..)) => a == b,
            (Typed::And(a), Typed::And(b)) | (Typed::Or(a), Typed::Or(b)) => a.len() == b.len(),
            (Typed::Not(_), Typed::Not(_))
            | (Typed::IsNull(_), Typed::IsNull(_))
            | (Typed::IsNotNull(_), Typed::IsNotNull(_)) => true,
            (Typed::InList(_, a), Typed::InList(_, b)) => a == b,
            _ => false,
        }
    }

    fn debug_fields(&self) -> (&'static str, Vec<DebugField<'_, Self>>) {
        use DebugField::{Node, Nodes, Value};
        match self {
            Typed::Column(i, dt) => ("Column", vec![Value(i), Value(dt)]),
            Typed::Literal(v) => ("Literal", vec![Value(v)]),
            Typed::Cast(e, dt) => ("Cast", vec![Node(e), Value(dt)]),
            Typed::Arith(op, l, r, dt) => ("Arith", vec![Value(op), Node(l), Node(r), Value(dt)]),
            Typed::Cmp(op, l, r) => ("Cmp", vec![Value(op), Node(l), Node(r)]),
            Typed::And(list) => ("And", vec![Nodes(list)]),
            Typed::Or(list) => ("Or", vec![Nodes(list)]),
            Typed::Not(e) => ("Not", vec![Node(e)]),
            Typed::IsNull(e) => ("IsNull", vec![Node(e)]),
            Typed::IsNotNull(e) => ("IsNotNull", vec![Node(e)]),
            Typed::InList(e, values) => ("InList", vec![Node(e), Value(values)]),
        }
    }
}

impl Drop for Typed {
    fn drop(&mut self) {
        expr::drop_tree(self);
    }
}

impl Clone for Typed {
    fn clone(&self) -> Self {
        expr::clone_tree(self)
    }
}

impl PartialEq for Typed {
    fn eq(&self, other: &Self) -> bool {
        expr::eq_tree(self, other)
    }
}

impl fmt::Debug for Typed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        expr::debug_tree(self, f)
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

/// `(l op r)` as an error message shows it, for a comparison the planner makes (from
/// `BETWEEN` or `IN`) that is no node of the user's expression.
struct CmpText<'a>(CmpOp, &'a Expr, &'a Expr);

impl fmt::Display for CmpText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({} {} {})", self.1, self.0, self.2)
    }
}

/// Resolves and type-checks any expression.
///
/// Without recursion: a post-order walk over a heap stack, planned operands waiting on
/// another stack. A chain of `AND`s (or of `OR`s) becomes one n-ary node; `IN` one
/// [`Typed::InList`] over its literals (see [`plan_in_list`]); `BETWEEN` an `AND` of two
/// comparisons.
pub(crate) fn plan(expr: &Expr, schema: &Schema) -> Result<Typed> {
    enum Step<'a> {
        Enter(&'a Expr),
        /// Combine the last `parents.len()` planned operands of a flattened AND (`true`)
        /// or OR chain; each operand's parent node names it in an error.
        Logic(bool, Vec<&'a Expr>),
        Exit(&'a Expr),
    }
    let mut steps = vec![Step::Enter(expr)];
    let mut done: Vec<Typed> = Vec::new();
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter(Expr::Column(name)) => {
                let (index, field) = schema
                    .column_with_name(name)
                    .ok_or_else(|| Error::unknown_column(name, schema))?;
                done.push(Typed::Column(index, field.data_type().clone()));
            }
            Step::Enter(Expr::Literal(v)) => done.push(Typed::Literal(v.clone())),
            Step::Enter(e @ (Expr::And(..) | Expr::Or(..))) => {
                let and = matches!(e, Expr::And(..));
                let operands = flatten_logic(e, and);
                steps.push(Step::Logic(and, operands.iter().map(|(_, p)| *p).collect()));
                steps.extend(operands.iter().rev().map(|(o, _)| Step::Enter(o)));
            }
            Step::Enter(e) => {
                steps.push(Step::Exit(e));
                steps.extend(e.children().rev().map(Step::Enter));
            }
            Step::Logic(and, parents) => {
                let operands = done.split_off(done.len() - parents.len());
                let mut flat = Vec::with_capacity(operands.len());
                for (t, parent) in operands.into_iter().zip(parents) {
                    let mut t = boolean(t, parent)?;
                    match &mut t {
                        Typed::And(nested) if and => flat.append(nested),
                        Typed::Or(nested) if !and => flat.append(nested),
                        _ => flat.push(t),
                    }
                }
                done.push(if and {
                    Typed::And(flat)
                } else {
                    Typed::Or(flat)
                });
            }
            Step::Exit(e) => {
                let n = e.children().count();
                let kids = done.split_off(done.len() - n);
                done.push(plan_node(e, kids)?);
            }
        }
    }
    Ok(done.pop().expect("the root"))
}

/// The operands of the chain of `AND`s (or `OR`s) at `e`, left to right, each with its
/// parent node.
fn flatten_logic(e: &Expr, and: bool) -> Vec<(&Expr, &Expr)> {
    fn same(x: &Expr, and: bool) -> Option<(&Expr, &Expr)> {
        match x {
            Expr::And(l, r) if and => Some((l, r)),
            Expr::Or(l, r) if !and => Some((l, r)),
            _ => None,
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![(e, e)];
    while let Some((x, parent)) = stack.pop() {
        match same(x, and) {
            Some((l, r)) => {
                stack.push((r, x));
                stack.push((l, x));
            }
            None => out.push((x, parent)),
        }
    }
    out
}

/// Plans `expr` (not a column, literal, AND or OR) from its planned children `kids`.
fn plan_node(expr: &Expr, kids: Vec<Typed>) -> Result<Typed> {
    let mut kids = kids.into_iter();
    let mut next = || kids.next().expect("a planned child");
    Ok(match expr {
        Expr::Column(_) | Expr::Literal(_) | Expr::And(..) | Expr::Or(..) => {
            unreachable!("planned in `plan`")
        }
        Expr::Arith(op, _, _) => {
            let (l, r) = (next(), next());
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
        Expr::Cmp(op, _, _) => {
            let (l, r, _) = coerce(next(), next(), expr, true)?;
            Typed::Cmp(*op, Box::new(l), Box::new(r))
        }
        Expr::Not(_) => Typed::Not(Box::new(boolean(next(), expr)?)),
        Expr::IsNull(_) => Typed::IsNull(Box::new(next())),
        Expr::IsNotNull(_) => Typed::IsNotNull(Box::new(next())),
        Expr::Between(e, lo, hi) => {
            // `e >= lo AND e <= hi`, SQL's meaning of BETWEEN.
            let (v, low, high) = (next(), next(), next());
            let ge = coerce(v.clone(), low, &CmpText(CmpOp::GtEq, e, lo), true)?;
            let le = coerce(v, high, &CmpText(CmpOp::LtEq, e, hi), true)?;
            Typed::And(vec![
                Typed::Cmp(CmpOp::GtEq, Box::new(ge.0), Box::new(ge.1)),
                Typed::Cmp(CmpOp::LtEq, Box::new(le.0), Box::new(le.1)),
            ])
        }
        Expr::Cast(_, to) => {
            let inner = next();
            let from = inner.data_type();
            if !is_lossless_cast(&from, to) {
                return Err(Error::InvalidExpression(format!(
                    "{expr}: a cast from {from} to {to} is not one the engine runs (only casts that keep every value)"
                )));
            }
            cast_to(inner, to)
        }
        Expr::InList(e, list) => {
            let probe = next();
            plan_in_list(e, list, probe, kids.collect())?
        }
    })
}

/// `probe IN (items)`: SQL's `probe = item1 OR probe = item2 OR ...`, each equality typed
/// as `=` types it, planned as one [`Typed::InList`] over the literal items (per type the
/// probe is brought to: one, but for lists that mix types) with the other items as
/// equalities beside it. An empty list is false (the probe is still type-checked).
fn plan_in_list(e: &Expr, list: &[Expr], probe: Typed, items: Vec<Typed>) -> Result<Typed> {
    if items.is_empty() {
        return Ok(Typed::Literal(ScalarValue::Boolean(false)));
    }
    let probe_type = probe.data_type();
    // The probe's type stands in for the probe in the typing of each literal's equality
    // (it is never a literal here, so it adopts the same types a non-literal probe would).
    let stand_in = Typed::Column(usize::MAX, probe_type.clone());
    let literal_probe = matches!(probe, Typed::Literal(_));
    let mut sets: Vec<(DataType, Vec<ScalarValue>)> = Vec::new();
    let mut others: Vec<(Typed, &Expr)> = Vec::new();
    for (item, item_expr) in items.into_iter().zip(list) {
        if let (false, Typed::Literal(v)) = (literal_probe, &item) {
            let ctx = CmpText(CmpOp::Eq, e, item_expr);
            let (l, r, common) = coerce(stand_in.clone(), Typed::Literal(v.clone()), &ctx, true)?;
            if let Some(v) = in_list_value(&l, &r, &common) {
                match sets.iter_mut().find(|(dt, _)| *dt == common) {
                    Some((_, values)) => values.push(v),
                    None => sets.push((common, vec![v])),
                }
                continue;
            }
        }
        others.push((item, item_expr));
    }
    let mut nodes = Vec::with_capacity(sets.len() + others.len());
    let count = sets.len() + others.len();
    let mut probe = Some(probe);
    let mut probe_copy = |i: usize| {
        if i + 1 == count {
            probe.take().expect("the probe")
        } else {
            probe.as_ref().expect("the probe").clone()
        }
    };
    for (i, (dt, mut values)) in sets.into_iter().enumerate() {
        values.sort_by(in_list_order);
        values.dedup_by(|a, b| in_list_order(a, b) == Ordering::Equal);
        nodes.push(Typed::InList(Box::new(cast_to(probe_copy(i), &dt)), values));
    }
    let first_other = nodes.len();
    for (i, (item, item_expr)) in others.into_iter().enumerate() {
        let ctx = CmpText(CmpOp::Eq, e, item_expr);
        let (l, r, _) = coerce(probe_copy(first_other + i), item, &ctx, true)?;
        nodes.push(Typed::Cmp(CmpOp::Eq, Box::new(l), Box::new(r)));
    }
    Ok(if nodes.len() == 1 {
        nodes.pop().expect("one node")
    } else {
        Typed::Or(nodes)
    })
}

/// The literal an IN list's set holds for one typed equality `l = r` of type `common`
/// (`l` being the probe's stand-in, cast or not; `r` the literal, cast or not), if it is
/// a literal of that type; `None` leaves the equality as it is.
fn in_list_value(l: &Typed, r: &Typed, common: &DataType) -> Option<ScalarValue> {
    match l {
        Typed::Column(usize::MAX, _) => {}
        Typed::Cast(inner, _) if matches!(**inner, Typed::Column(usize::MAX, _)) => {}
        _ => return None,
    }
    if &l.data_type() != common {
        return None;
    }
    match r {
        Typed::Literal(v) if &v.data_type() == common => Some(v.clone()),
        Typed::Literal(v @ ScalarValue::Utf8(_)) if is_string(common) => Some(v.clone()),
        Typed::Cast(inner, _) => match &**inner {
            Typed::Literal(v @ ScalarValue::Utf8(_)) if is_string(common) => Some(v.clone()),
            // A literal that the float type holds only rounded: rounded here as the CPU
            // path's `cast` rounds it (the same on both backends).
            Typed::Literal(v) => fold_float_cast(v, common),
            _ => None,
        },
        _ => None,
    }
}

/// `v` cast to the float type `to` by arrow's `cast` (a computed NaN canonical, as
/// [`ArithOp`] says); `None` for other types.
fn fold_float_cast(v: &ScalarValue, to: &DataType) -> Option<ScalarValue> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float32Type, Float64Type};
    let a = arrow::compute::cast(&v.to_array(), to).ok()?;
    if a.null_count() > 0 {
        return None;
    }
    match to {
        DataType::Float32 => {
            let x = a.as_primitive::<Float32Type>().value(0);
            Some(ScalarValue::Float32(if x.is_nan() {
                f32::from_bits(0x7fc0_0000)
            } else {
                x
            }))
        }
        DataType::Float64 => {
            let x = a.as_primitive::<Float64Type>().value(0);
            Some(ScalarValue::Float64(if x.is_nan() {
                f64::from_bits(0x7ff8_0000_0000_0000)
            } else {
                x
            }))
        }
        _ => None,
    }
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

fn boolean(t: Typed, ctx: &dyn fmt::Display) -> Result<Typed> {
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
fn decimal_arith_type(
    op: ArithOp,
    l: &DataType,
    r: &DataType,
    ctx: &dyn fmt::Display,
) -> Result<DataType> {
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
    if let Typed::Literal(v) = &t {
        if let Some(v) = v.cast_exact(to) {
            return Typed::Literal(v);
        }
    }
    Typed::Cast(Box::new(t), to.clone())
}

/// Brings two operands to one type; returns them and the type. With decimals: a decimal
/// meets a float as Float64 and an integer as a decimal (see [`int_as_decimal`]); two
/// decimals are brought to one type when `same_type` (comparisons), and left as they are
/// for arithmetic, whose kernels rescale (the returned type is then the left one's).
fn coerce(
    l: Typed,
    r: Typed,
    ctx: &dyn fmt::Display,
    same_type: bool,
) -> Result<(Typed, Typed, DataType)> {
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
        let Typed::Cmp(_, l, _) = &t else { panic!() };
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
        let t = plan(&col("v").eq(col("l")), &schema).unwrap();
        let Typed::Cmp(_, l, r) = &t else { panic!() };
        assert_eq!(
            (l.data_type(), r.data_type()),
            (DataType::LargeUtf8, DataType::LargeUtf8)
        );
        let t = plan(&col("v").eq(col("s")), &schema).unwrap();
        let Typed::Cmp(_, l, r) = &t else { panic!() };
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
