//! WGSL generation for predicates: a type-checked expression becomes one kernel that reads
//! each column once per row. The pipeline is cached by the expression's *shape* (operators,
//! types, which columns have nulls), never by literal values, which travel in a buffer.

use std::fmt::Write;

use arrow::datatypes::DataType;

use crate::error::{Error, Result};
use crate::expr::{ArithOp, CmpOp, ScalarValue, Tree};
use crate::plan::{int_info, is_numeric, Typed};

/// The soft-float module's function for `op` on `Repr::F32` / `Repr::F64` values.
fn float_fn(op: ArithOp, r: Repr) -> &'static str {
    match (r, op) {
        (Repr::F32, ArithOp::Add) => "f32_add",
        (Repr::F32, ArithOp::Sub) => "f32_sub",
        (Repr::F32, ArithOp::Mul) => "f32_mul",
        (Repr::F32, ArithOp::Div) => "f32_div",
        (_, ArithOp::Add) => "f64_add",
        (_, ArithOp::Sub) => "f64_sub",
        (_, ArithOp::Mul) => "f64_mul",
        (_, ArithOp::Div) => "f64_div",
    }
}

/// How a value lives in a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    Bool,
    /// Signed integers up to 32 bits and Date32, sign-extended into an `i32`.
    I32,
    /// Unsigned integers up to 32 bits, zero-extended into a `u32`.
    U32,
    /// Float32 bits in a `u32`.
    F32,
    /// Int64, Date64 and timestamps as `vec2<u32>` (low, high).
    I64,
    U64,
    /// Float64 bits as `vec2<u32>`.
    F64,
    /// Decimal128 values (unscaled; the scale is in the type) as 128-bit two's complement
    /// in `vec4<u32>`, low word first; columns hold them as i64 (`Layout::of`).
    Dec,
    /// A string (`Utf8`, `LargeUtf8`, `Utf8View`): never a WGSL value; `=` and `!=` compare
    /// its length and bytes where it lies (a column chunk or the literal buffer).
    Str,
}

fn repr(dt: &DataType) -> Option<Repr> {
    Some(match dt {
        DataType::Boolean => Repr::Bool,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Date32 => Repr::I32,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Repr::U32,
        DataType::Float32 => Repr::F32,
        DataType::Int64 | DataType::Date64 | DataType::Timestamp(..) => Repr::I64,
        DataType::UInt64 => Repr::U64,
        DataType::Float64 => Repr::F64,
        DataType::Decimal128(..) => Repr::Dec,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Repr::Str,
        _ => return None,
    })
}

impl Repr {
    fn wgsl(self) -> &'static str {
        match self {
            Repr::Bool => "bool",
            Repr::I32 => "i32",
            Repr::U32 | Repr::F32 | Repr::Str => "u32",
            Repr::I64 | Repr::U64 | Repr::F64 => "vec2<u32>",
            Repr::Dec => "vec4<u32>",
        }
    }
}

/// Why `expr` can't run on the GPU, if it can't: a value of a type the kernels don't
/// represent. Float arithmetic and casts to floats run on the GPU in software
/// (`shaders/common/softfloat.wgsl`), bit-exact with the CPU path.
pub(crate) fn unsupported_reason(expr: &Typed) -> Option<String> {
    let mut reason = None;
    expr.walk(&mut |e| {
        if reason.is_some() {
            return;
        }
        if repr(&e.data_type()).is_none() {
            reason = Some(format!(
                "values of type {} are not supported in GPU expressions",
                e.data_type()
            ));
        }
    });
    reason
}

/// A generated kernel for one shape: a predicate's bitmaps, or an aggregate's input.
pub(crate) struct PredicateKernel {
    /// The cache key: the expression's shape.
    pub key: String,
    /// The WGSL source.
    pub source: String,
    /// Literal values as 32-bit words, in the order the kernel reads them; a string
    /// literal is one word holding where its length and bytes lie further on.
    pub literals: Vec<u32>,
    /// Batch columns bound after the outputs, each with whether its validity is bound.
    pub columns: Vec<(usize, bool)>,
    /// Whether the kernel reports division errors through a flags buffer.
    pub has_flags: bool,
    /// What the kernel writes, bound first (after the parameters) in this order.
    pub outputs: Outputs,
}

/// The buffers a kernel writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outputs {
    /// A value bitmap and a validity bitmap (a predicate, or a boolean value).
    Bits,
    /// Values of this type (32 or 64 bits each) and a validity bitmap.
    Values(DataType),
    /// A validity bitmap only: the rows an aggregate takes from a column read as it is.
    Validity,
}

/// Flag bits the kernel ORs into `flags[0]`.
pub(crate) const FLAG_DIVIDE_BY_ZERO: u32 = 1;
pub(crate) const FLAG_OVERFLOW: u32 = 2;

struct Gen<'a> {
    operation: &'static str,
    body: String,
    key: String,
    literals: Vec<u32>,
    next: usize,
    /// For each batch column: (binding slot in `columns`, has validity).
    has_nulls: &'a dyn Fn(usize) -> bool,
    columns: Vec<(usize, bool)>,
    has_flags: bool,
    /// Whether the kernel calls the soft-float module (imported only then, to keep other
    /// kernels small).
    softfloat: bool,
    /// Whether the kernel calls the 128-bit integer module (decimals).
    int128: bool,
    /// Whether the kernel compares strings (`shaders/common/strings.wgsl`).
    strings: bool,
    /// Literals of any length (strings, IN lists): the word in `literals` that says
    /// where they lie, and what lies there (appended after the fixed-size literals, so
    /// the kernel's shape doesn't depend on their lengths).
    tails: Vec<(usize, Tail)>,
}

/// What a literal word points at (see [`Gen::tails`]).
enum Tail {
    /// A string: its length in bytes, then its bytes in words (zero-padded).
    String(Vec<u8>),
    /// An IN list of 32-, 64- or 128-bit values: their count, then the values' words
    /// (low word first), ascending as unsigned numbers.
    Words(u32, Vec<u32>),
    /// An IN list of strings: their count, then where each one's length and bytes lie
    /// (as [`Tail::String`]), in [`string_set_order`].
    Strings(Vec<Vec<u8>>),
}

/// The most nodes (columns, literals, operators; an IN list counts as one whatever its
/// length) of an expression that the GPU runs. The generated kernel grows with the
/// expression, and a shader compiler's time with the kernel (Mesa's llvmpipe takes about
/// a minute for a thousand comparisons); a larger expression is
/// [`Error::UnsupportedOnGpu`], which `Backend::Auto` runs on the CPU.
pub(crate) const MAX_GPU_EXPRESSION_NODES: usize = 2_000;

/// The most bytes of literals a kernel binds (WebGPU's default, and many adapters',
/// largest storage binding is 128 MiB); a longer IN list is [`Error::UnsupportedOnGpu`].
pub(crate) const MAX_GPU_LITERAL_BYTES: usize = 128 << 20;

/// The order of an IN list of strings on the GPU: by length, then by their zero-padded
/// 32-bit little-endian words as unsigned numbers, first word first (what the kernel's
/// binary search compares, word by word).
fn string_set_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let words = |s: &[u8]| {
        s.chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect::<Vec<u32>>()
    };
    a.len().cmp(&b.len()).then_with(|| words(a).cmp(&words(b)))
}

/// Appends `bytes` as a string record: the length, then the bytes in zero-padded words.
fn push_string(literals: &mut Vec<u32>, bytes: &[u8]) {
    literals.push(bytes.len() as u32);
    let at = literals.len();
    literals.resize(at + bytes.len().div_ceil(4), 0);
    bytemuck::cast_slice_mut::<u32, u8>(&mut literals[at..])[..bytes.len()].copy_from_slice(bytes);
}

/// Where a string operand lies: a column binding (`c{slot}`), or the literal word at an
/// index of `lits`.
#[derive(Debug, Clone, Copy)]
enum StrSource {
    Column(usize),
    Literal(usize),
}

impl StrSource {
    /// Statements defining `p{id}` (where the bytes start) and `l{id}` (the length).
    fn define(self, id: &str) -> String {
        match self {
            StrSource::Column(c) => format!(
                "        let s{id} = c{c}[row];\n        let l{id} = c{c}[row + 1u] - s{id};\n        let p{id} = (params.rows + 1u) * 4u + s{id};\n"
            ),
            StrSource::Literal(o) => format!(
                "        let p{id} = lits[{o}] + 1u;\n        let l{id} = lits[p{id} - 1u];\n"
            ),
        }
    }

    /// The word of bytes `[k, k + 4)` of the string.
    fn word(self, id: &str) -> String {
        match self {
            StrSource::Column(c) => format!(
                "str_funnel(c{c}[(p{id} + k) >> 2u], c{c}[((p{id} + k) >> 2u) + 1u], p{id} + k)"
            ),
            StrSource::Literal(_) => format!("lits[p{id} + (k >> 2u)]"),
        }
    }
}

/// Generates the predicate kernel for `expr`; `has_nulls(i)` says whether column `i`'s
/// chunk has a validity bitmap to bind.
pub(crate) fn generate(expr: &Typed, has_nulls: &dyn Fn(usize) -> bool) -> Result<PredicateKernel> {
    build("filter", Some(expr), false, None, has_nulls)
}

/// Generates the kernel that makes an aggregate's input: `value`'s values (when
/// `write_value`; else only its validity is used, the column being read as it is) and a
/// validity bitmap that is set where the value is valid and `filter` is true.
pub(crate) fn generate_input(
    value: Option<&Typed>,
    write_value: bool,
    filter: Option<&Typed>,
    has_nulls: &dyn Fn(usize) -> bool,
) -> Result<PredicateKernel> {
    build("group_by", value, write_value, filter, has_nulls)
}

/// The column type a kernel writes for a value of type `dt`: 8- and 16-bit integers
/// widened to 32 bits (same order, same sum), decimals as 128-bit values (typed with 38
/// digits at their scale: see [`written_bytes`]), everything else as it is.
pub(crate) fn written_type(dt: &DataType) -> Option<DataType> {
    Some(match repr(dt)? {
        Repr::I32 if *dt != DataType::Date32 => DataType::Int32,
        Repr::U32 => DataType::UInt32,
        Repr::Dec => match dt {
            DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
            _ => unreachable!("a decimal"),
        },
        _ => dt.clone(),
    })
}

/// The bytes a kernel writes for `rows` values of the written type `dt`: 16 per decimal,
/// else the type's GPU layout.
pub(crate) fn written_bytes(dt: &DataType, rows: usize) -> u64 {
    match dt {
        DataType::Decimal128(..) => rows as u64 * 16,
        dt => super::column::Layout::of(dt)
            .expect("a kernel writes a GPU type")
            .bytes(rows),
    }
}

fn build(
    operation: &'static str,
    value: Option<&Typed>,
    write_value: bool,
    filter: Option<&Typed>,
    has_nulls: &dyn Fn(usize) -> bool,
) -> Result<PredicateKernel> {
    for e in value.iter().chain(filter.iter()) {
        let nodes = e.node_count();
        if nodes > MAX_GPU_EXPRESSION_NODES {
            return Err(Error::UnsupportedOnGpu {
                operation,
                reason: format!(
                    "the expression has {nodes} nodes; GPU kernels take at most {MAX_GPU_EXPRESSION_NODES}"
                ),
            });
        }
        if let Some(reason) = unsupported_reason(e) {
            return Err(Error::UnsupportedOnGpu { operation, reason });
        }
    }
    let mut g = Gen {
        operation,
        body: String::new(),
        key: String::new(),
        literals: Vec::new(),
        next: 0,
        has_nulls,
        columns: Vec::new(),
        has_flags: false,
        softfloat: false,
        int128: false,
        strings: false,
        tails: Vec::new(),
    };
    let predicate = operation == "filter";
    let mut value_repr = None;
    let (mut value_text, mut ok) = ("false".to_string(), "true".to_string());
    if let Some(v) = value {
        let (text, v_ok, r) = g.node(v)?;
        value_repr = Some(r);
        value_text = text;
        ok = v_ok;
    }
    if let Some(f) = filter {
        g.key.push_str(" where ");
        let (f_value, _, _) = g.node(f)?;
        // A boolean's value is false wherever it is null: true only where it is true.
        ok = format!("({ok}) && ({f_value})");
    }
    if !predicate {
        write!(g.key, " write:{write_value}").unwrap();
    }
    if !predicate && write_value && value_repr == Some(Repr::Str) {
        return Err(Error::UnsupportedOnGpu {
            operation,
            reason: "string values of an expression".into(),
        });
    }
    // Literals of any length go after the fixed-size ones: their slot says where.
    for (slot, tail) in std::mem::take(&mut g.tails) {
        g.literals[slot] = g.literals.len() as u32;
        match tail {
            Tail::String(bytes) => push_string(&mut g.literals, &bytes),
            Tail::Words(count, words) => {
                g.literals.push(count);
                g.literals.extend(words);
            }
            Tail::Strings(set) => {
                g.literals.push(set.len() as u32);
                let index = g.literals.len();
                g.literals.resize(index + set.len(), 0);
                for (i, bytes) in set.iter().enumerate() {
                    g.literals[index + i] = g.literals.len() as u32;
                    push_string(&mut g.literals, bytes);
                }
            }
        }
        if g.literals.len() * 4 > MAX_GPU_LITERAL_BYTES {
            return Err(Error::UnsupportedOnGpu {
                operation,
                reason: format!(
                    "the expression's literals take more than {MAX_GPU_LITERAL_BYTES} bytes"
                ),
            });
        }
    }
    let outputs = match (predicate, write_value, value_repr, value) {
        (true, ..) | (false, true, Some(Repr::Bool), _) => Outputs::Bits,
        (false, true, Some(_), Some(v)) => {
            Outputs::Values(written_type(&v.data_type()).expect("checked: a represented type"))
        }
        _ => Outputs::Validity,
    };
    let mut bindings = String::new();
    let (store, flush) = match &outputs {
        Outputs::Bits => {
            bindings.push_str("@group(0) @binding(1) var<storage, read_write> out_values: array<u32>;\n@group(0) @binding(2) var<storage, read_write> out_valid: array<u32>;\n");
            (
                format!("if ({ok}) {{ atomicOr(&word_valid[lid >> 5u], bit); }}\n        if ({value_text}) {{ atomicOr(&word_values[lid >> 5u], bit); }}"),
                "out_values[w] = atomicLoad(&word_values[lid]);\n        out_valid[w] = atomicLoad(&word_valid[lid]);".to_string(),
            )
        }
        Outputs::Values(dt) => {
            let (elem, word) = match value_repr.expect("a value") {
                Repr::I32 => ("u32", format!("bitcast<u32>({value_text})")),
                Repr::I64 | Repr::U64 | Repr::F64 => ("vec2<u32>", value_text.clone()),
                Repr::Dec => ("vec4<u32>", value_text.clone()),
                _ => ("u32", value_text.clone()),
            };
            debug_assert!(written_bytes(dt, 1) > 0);
            writeln!(bindings, "@group(0) @binding(1) var<storage, read_write> out_values: array<{elem}>;\n@group(0) @binding(2) var<storage, read_write> out_valid: array<u32>;").unwrap();
            (
                format!("if ({ok}) {{ atomicOr(&word_valid[lid >> 5u], bit); }}\n        out_values[row] = {word};"),
                "out_valid[w] = atomicLoad(&word_valid[lid]);".to_string(),
            )
        }
        Outputs::Validity => {
            bindings.push_str(
                "@group(0) @binding(1) var<storage, read_write> out_valid: array<u32>;\n",
            );
            (
                format!("if ({ok}) {{ atomicOr(&word_valid[lid >> 5u], bit); }}"),
                "out_valid[w] = atomicLoad(&word_valid[lid]);".to_string(),
            )
        }
    };
    let mut slot = if outputs == Outputs::Validity { 2 } else { 3 };
    if !g.literals.is_empty() {
        writeln!(
            bindings,
            "@group(0) @binding({slot}) var<storage, read> lits: array<u32>;"
        )
        .unwrap();
        slot += 1;
    }
    if g.has_flags {
        writeln!(
            bindings,
            "@group(0) @binding({slot}) var<storage, read_write> flags: array<atomic<u32>>;"
        )
        .unwrap();
        slot += 1;
    }
    let all: Vec<&Typed> = value.iter().chain(filter.iter()).copied().collect();
    for (i, (col, valid)) in g.columns.iter().enumerate() {
        let dt = all
            .iter()
            .map(|e| column_type(e, *col))
            .find(|dt| *dt != DataType::Null)
            .unwrap_or(DataType::Null);
        let elem = match repr(&dt) {
            Some(Repr::I64 | Repr::U64 | Repr::F64 | Repr::Dec) => "vec2<u32>",
            _ => "u32",
        };
        writeln!(
            bindings,
            "@group(0) @binding({slot}) var<storage, read> c{i}: array<{elem}>;"
        )
        .unwrap();
        slot += 1;
        if *valid {
            writeln!(
                bindings,
                "@group(0) @binding({slot}) var<storage, read> c{i}_valid: array<u32>;"
            )
            .unwrap();
            slot += 1;
        }
    }
    // Modules imported only when used, to keep other kernels small.
    let mut template = String::new();
    if g.softfloat {
        template.push_str("#import softfloat\n");
    }
    if g.int128 {
        template.push_str("#import int128\n");
    }
    if g.strings {
        template.push_str("#import strings\n");
    }
    template.push_str(super::shader::PREDICATE);
    let source = super::shader::assemble(
        &template,
        &[
            ("BINDINGS", &bindings),
            ("BODY", &g.body),
            ("STORE", &store),
            ("FLUSH", &flush),
        ],
    );
    let kind = if predicate { "predicate" } else { "agg_input" };
    Ok(PredicateKernel {
        key: format!("{kind}:{}", g.key),
        source,
        literals: g.literals,
        columns: g.columns,
        has_flags: g.has_flags,
        outputs,
    })
}

fn column_type(expr: &Typed, col: usize) -> DataType {
    let mut found = DataType::Null;
    expr.walk(&mut |e| {
        if let Typed::Column(i, dt) = e {
            if *i == col {
                found = dt.clone();
            }
        }
    });
    found
}

impl Gen<'_> {
    fn fresh(&mut self) -> usize {
        self.next += 1;
        self.next
    }

    /// Emits `let v{n}` / `let ok{n}` for `root` and every node under it (children
    /// first); returns the root's names and its value's repr. A loop over a heap stack,
    /// never recursion: the node count is bounded ([`MAX_GPU_EXPRESSION_NODES`]), the
    /// depth of that many nodes isn't a thread stack's business.
    fn node(&mut self, root: &Typed) -> Result<(String, String, Repr)> {
        enum Step<'a> {
            Enter(&'a Typed),
            Key(&'static str),
            Exit(&'a Typed),
        }
        let mut steps = vec![Step::Enter(root)];
        let mut done: Vec<(String, String, Repr)> = Vec::new();
        while let Some(step) = steps.pop() {
            match step {
                Step::Key(text) => self.key.push_str(text),
                Step::Enter(e) if e.is_leaf() => done.push(self.finish(e, Vec::new())?),
                Step::Enter(e) => {
                    self.enter_key(e);
                    steps.push(Step::Exit(e));
                    steps.push(Step::Key(")"));
                    let kids: Vec<&Typed> = e.children().collect();
                    for (i, kid) in kids.into_iter().enumerate().rev() {
                        steps.push(Step::Enter(kid));
                        if i > 0 {
                            steps.push(Step::Key(","));
                        }
                    }
                }
                Step::Exit(e) => {
                    let n = e.children().count();
                    let kids = done.split_off(done.len() - n);
                    done.push(self.finish(e, kids)?);
                }
            }
        }
        Ok(done.pop().expect("the root"))
    }

    /// The cache key's text for a node with children, before theirs.
    fn enter_key(&mut self, e: &Typed) {
        match e {
            Typed::Column(..) | Typed::Literal(_) => {}
            Typed::Cast(_, to) => write!(self.key, "cast<{to}>(").unwrap(),
            Typed::Arith(op, _, _, dt) => write!(self.key, "{op:?}<{dt}>(").unwrap(),
            Typed::Cmp(op, _, _) => write!(self.key, "{op:?}(").unwrap(),
            Typed::And(_) => self.key.push_str("and("),
            Typed::Or(_) => self.key.push_str("or("),
            Typed::Not(_) => self.key.push_str("not("),
            Typed::IsNull(_) => self.key.push_str("isnull("),
            Typed::IsNotNull(_) => self.key.push_str("isnotnull("),
            Typed::InList(..) => self.key.push_str("in("),
        }
    }

    /// Emits `let v{n}` / `let ok{n}` for `e` from its children's names (`kids`, in
    /// order); returns its own.
    fn finish(
        &mut self,
        e: &Typed,
        kids: Vec<(String, String, Repr)>,
    ) -> Result<(String, String, Repr)> {
        let dt = e.data_type();
        let r = repr(&dt).ok_or_else(|| Error::UnsupportedOnGpu {
            operation: self.operation,
            reason: format!("{dt} in an expression"),
        })?;
        let mut kids = kids.into_iter();
        let mut next = || kids.next().expect("a child's names");
        let (value, ok): (String, String) = match e {
            Typed::Column(index, dt) => {
                let slot = match self.columns.iter().position(|(c, _)| c == index) {
                    Some(s) => s,
                    None => {
                        self.columns.push((*index, (self.has_nulls)(*index)));
                        self.columns.len() - 1
                    }
                };
                let valid = self.columns[slot].1;
                write!(self.key, "c{slot}:{dt}{}", if valid { "?" } else { "" }).unwrap();
                let c = format!("c{slot}");
                let value = match dt {
                    _ if r == Repr::Str => slot.to_string(),
                    DataType::Boolean => format!("(({c}[row >> 5u] >> (row & 31u)) & 1u) != 0u"),
                    DataType::Int8 => {
                        format!("extractBits(bitcast<i32>({c}[row >> 2u]), (row & 3u) * 8u, 8u)")
                    }
                    DataType::Int16 => {
                        format!("extractBits(bitcast<i32>({c}[row >> 1u]), (row & 1u) * 16u, 16u)")
                    }
                    DataType::UInt8 => format!("extractBits({c}[row >> 2u], (row & 3u) * 8u, 8u)"),
                    DataType::UInt16 => {
                        format!("extractBits({c}[row >> 1u], (row & 1u) * 16u, 16u)")
                    }
                    DataType::Int32 | DataType::Date32 => format!("bitcast<i32>({c}[row])"),
                    DataType::Decimal128(..) => {
                        self.int128 = true;
                        format!("i128_from_i64({c}[row])")
                    }
                    _ => format!("{c}[row]"),
                };
                let ok = if valid {
                    format!("(({c}_valid[row >> 5u] >> (row & 31u)) & 1u) != 0u")
                } else {
                    "true".to_string()
                };
                // Boolean values are false wherever they are null (AND/OR rely on it).
                let value = if r == Repr::Bool && valid {
                    format!("({value}) && ({ok})")
                } else {
                    value
                };
                (value, ok)
            }
            Typed::Literal(ScalarValue::Utf8(text)) => {
                write!(self.key, "lit:{dt}").unwrap();
                let o = self.literals.len();
                self.literals.push(0); // where the string lies: filled in by `build`
                self.tails.push((o, Tail::String(text.as_bytes().to_vec())));
                (format!("lit{o}"), "true".to_string())
            }
            Typed::Literal(ScalarValue::Decimal128(x, _, _)) => {
                write!(self.key, "lit:{dt}").unwrap();
                self.int128 = true;
                (self.decimal_literal(*x), "true".to_string())
            }
            Typed::Literal(v) => {
                write!(self.key, "lit:{dt}").unwrap();
                let o = self.literals.len();
                let bits = v.gpu_bits();
                self.literals.push(bits as u32);
                let value = match r {
                    Repr::Dec => unreachable!("decimal literals are matched above"),
                    Repr::Bool => format!("lits[{o}] != 0u"),
                    Repr::I32 => format!("bitcast<i32>(lits[{o}])"),
                    Repr::U32 | Repr::F32 => format!("lits[{o}]"),
                    Repr::I64 | Repr::U64 | Repr::F64 => {
                        self.literals.push((bits >> 32) as u32);
                        format!("vec2<u32>(lits[{o}], lits[{}])", o + 1)
                    }
                    Repr::Str => unreachable!("string literals are matched above"),
                };
                (value, "true".to_string())
            }
            Typed::Cast(inner, to) => {
                let (v, ok, from) = next();
                let value = match (from, r) {
                    (Repr::Dec, Repr::Dec) | (_, Repr::Dec) | (Repr::Dec, _) => {
                        self.decimal_cast(&inner.data_type(), to, &v, from)?
                    }
                    (a, b) if a == b => v,
                    (Repr::U32, Repr::I32) => format!("bitcast<i32>({v})"),
                    (Repr::I32, Repr::I64) => format!("i64_from_i32({v})"),
                    (Repr::U32, Repr::I64 | Repr::U64) => format!("vec2<u32>({v}, 0u)"),
                    // Integers to floats, rounded as Rust's `as` (and arrow's `cast`); f32 to
                    // f64 exactly. The planner casts numbers only; the guard keeps dates
                    // and timestamps (also I64) out.
                    (from, to @ (Repr::F32 | Repr::F64)) if is_numeric(&inner.data_type()) => {
                        self.softfloat = true;
                        let src = match from {
                            Repr::I32 => "i32",
                            Repr::U32 => "u32",
                            Repr::I64 => "i64",
                            Repr::U64 => "u64",
                            _ => "f32",
                        };
                        let dst = if to == Repr::F32 { "f32" } else { "f64" };
                        format!("{dst}_from_{src}({v})")
                    }
                    (a, b) => {
                        return Err(Error::UnsupportedOnGpu {
                            operation: self.operation,
                            reason: format!("cast from {a:?} to {b:?}"),
                        })
                    }
                };
                (value, ok)
            }
            Typed::Arith(op, l, rt, dt) => {
                let (lv, lok, _) = next();
                let (rv, rok, _) = next();
                let ok = format!("({lok}) && ({rok})");
                let value = if r == Repr::Dec {
                    let types = (l.data_type(), rt.data_type());
                    self.decimal_arith(*op, dt, types, &lv, &rv, &ok)?
                } else {
                    self.arith(*op, dt, r, &lv, &rv, &ok)?
                };
                (value, ok)
            }
            Typed::Cmp(op, _, _) => {
                let (lv, lok, lr) = next();
                let (rv, rok, _) = next();
                if lr == Repr::Str {
                    let ok = format!("({lok}) && ({rok})");
                    let equal = self.string_equal(*op, &lv, &rv, &ok)?;
                    let value = if *op == CmpOp::Eq {
                        format!("({ok}) && {equal}")
                    } else {
                        format!("({ok}) && !{equal}")
                    };
                    let n = self.fresh();
                    writeln!(self.body, "        let v{n}: bool = {value};").unwrap();
                    writeln!(self.body, "        let ok{n}: bool = {ok};").unwrap();
                    return Ok((format!("v{n}"), format!("ok{n}"), Repr::Bool));
                }
                let sym = match op {
                    CmpOp::Eq => "==",
                    CmpOp::NotEq => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::LtEq => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::GtEq => ">=",
                };
                let test = match lr {
                    Repr::Bool => format!("u32({lv}) {sym} u32({rv})"),
                    Repr::I32 | Repr::U32 => format!("{lv} {sym} {rv}"),
                    Repr::F32 => format!("f32_key({lv}) {sym} f32_key({rv})"),
                    Repr::I64 => format!("i64_cmp({lv}, {rv}) {sym} 0"),
                    Repr::U64 => format!("u64_cmp({lv}, {rv}) {sym} 0"),
                    Repr::F64 => format!("u64_cmp(f64_key({lv}), f64_key({rv})) {sym} 0"),
                    // The planner brings both sides to one decimal type (one scale).
                    Repr::Dec => format!("i128_cmp({lv}, {rv}) {sym} 0"),
                    Repr::Str => unreachable!("strings compare in `string_equal`"),
                };
                let ok = format!("({lok}) && ({rok})");
                (format!("({ok}) && ({test})"), ok)
            }
            Typed::And(_) | Typed::Or(_) => {
                // Null booleans carry value false, so: AND is known when all operands are
                // or one is false; OR when all are or one is true. One statement per
                // operand: the text grows linearly with the chain.
                let n = self.fresh();
                let and = matches!(e, Typed::And(_));
                writeln!(
                    self.body,
                    "        var lv{n} = {and};\n        var lk{n} = true;\n        var lf{n} = false;"
                )
                .unwrap();
                for (v, ok, _) in kids.by_ref() {
                    if and {
                        writeln!(
                            self.body,
                            "        lv{n} = lv{n} && {v}; lk{n} = lk{n} && {ok}; lf{n} = lf{n} || ({ok} && !{v});"
                        )
                        .unwrap();
                    } else {
                        writeln!(
                            self.body,
                            "        lv{n} = lv{n} || {v}; lk{n} = lk{n} && {ok};"
                        )
                        .unwrap();
                    }
                }
                if and {
                    (format!("lv{n}"), format!("lk{n} || lf{n}"))
                } else {
                    (format!("lv{n}"), format!("lk{n} || lv{n}"))
                }
            }
            Typed::InList(_, set) => {
                let (v, ok, pr) = next();
                let found = self.in_list(set, &v, pr, &ok)?;
                (format!("({ok}) && {found}"), ok)
            }
            Typed::Not(_) => {
                let (v, ok, _) = next();
                (format!("{ok} && !{v}"), ok)
            }
            Typed::IsNull(_) | Typed::IsNotNull(_) => {
                let null = matches!(e, Typed::IsNull(_));
                let (_, ok, _) = next();
                (if null { format!("!{ok}") } else { ok }, "true".to_string())
            }
        };
        let n = self.fresh();
        if r == Repr::Str {
            // A string is not a value: its source goes up to the comparison.
            writeln!(self.body, "        let ok{n}: bool = {ok};").unwrap();
            return Ok((value, format!("ok{n}"), r));
        }
        let ty = r.wgsl();
        writeln!(self.body, "        let v{n}: {ty} = {value};").unwrap();
        writeln!(self.body, "        let ok{n}: bool = {ok};").unwrap();
        Ok((format!("v{n}"), format!("ok{n}"), r))
    }

    /// Emits a binary search for the probe `v` (of repr `r`, valid where `ok`) in the IN
    /// list `set`, and returns the name of the bool that says it is there. The values lie
    /// in the literal buffer (a [`Tail`]), sorted as the kernel compares them, so the
    /// kernel is one loop of about log2(n) steps and the same for lists of every length:
    /// 32-, 64- or 128-bit values as unsigned numbers of their bits (equal bits being
    /// arrow's equality in one type: floats in total order), strings by length and then
    /// word by word ([`string_set_order`]).
    fn in_list(&mut self, set: &[ScalarValue], v: &str, r: Repr, ok: &str) -> Result<String> {
        let o = self.literals.len();
        self.literals.push(0); // where the list lies: filled in by `build`
        let n = self.fresh();
        if r == Repr::Str {
            self.strings = true;
            let mut strings: Vec<Vec<u8>> = set
                .iter()
                .map(|x| match x {
                    ScalarValue::Utf8(s) => s.as_bytes().to_vec(),
                    other => unreachable!("a string IN list holds strings, not {other:?}"),
                })
                .collect();
            strings.sort_by(|a, b| string_set_order(a, b));
            strings.dedup();
            self.tails.push((o, Tail::Strings(strings)));
            let probe = self.string_source(v);
            let id = format!("{n}p");
            self.body.push_str(&probe.define(&id));
            write!(
                self.body,
                "        let b{n} = lits[{o}];
        var lo{n} = 0u;
        var hi{n} = lits[b{n}];
        var in{n} = false;
        while (({ok}) && lo{n} < hi{n}) {{
            let m{n} = (lo{n} + hi{n}) >> 1u;
            let pe{n} = lits[b{n} + 1u + m{n}] + 1u;
            let le{n} = lits[pe{n} - 1u];
            var c{n} = 0;
            if (l{id} != le{n}) {{
                c{n} = select(-1, 1, l{id} > le{n});
            }} else {{
                for (var k = 0u; k < le{n}; k += 4u) {{
                    let wa{n} = {word} & str_tail_mask(le{n} - k);
                    let wb{n} = lits[pe{n} + (k >> 2u)];
                    if (wa{n} != wb{n}) {{
                        c{n} = select(-1, 1, wa{n} > wb{n});
                        break;
                    }}
                }}
            }}
            if (c{n} == 0) {{
                in{n} = true;
                break;
            }}
            if (c{n} > 0) {{ lo{n} = m{n} + 1u; }} else {{ hi{n} = m{n}; }}
        }}
",
                word = probe.word(&id),
            )
            .unwrap();
            return Ok(format!("in{n}"));
        }
        let (width, key) = match r {
            Repr::Bool => (1, format!("select(0u, 1u, {v})")),
            Repr::I32 => (1, format!("bitcast<u32>({v})")),
            Repr::U32 | Repr::F32 => (1, v.to_string()),
            Repr::I64 | Repr::U64 | Repr::F64 => (2, v.to_string()),
            Repr::Dec => {
                self.int128 = true;
                (4, v.to_string())
            }
            Repr::Str => unreachable!("strings are searched above"),
        };
        // The bits as the kernel holds them: 32-bit values truncated (sign extension keeps
        // their order), the rest whole.
        let mut bits: Vec<u128> = set
            .iter()
            .map(|x| {
                let b = crate::plan::in_list_bits(x);
                match width {
                    1 => b as u32 as u128,
                    2 => b as u64 as u128,
                    _ => b,
                }
            })
            .collect();
        bits.sort_unstable();
        bits.dedup();
        let words = bits
            .iter()
            .flat_map(|b| (0..width).map(move |i| (b >> (32 * i)) as u32))
            .collect();
        self.tails.push((o, Tail::Words(bits.len() as u32, words)));
        let at = |i: u32| format!("lits[b{n} + {}u + {width}u * m{n}]", i + 1);
        let (element, equal, less) = match width {
            1 => (at(0), format!("e{n} == k{n}"), format!("e{n} < k{n}")),
            2 => (
                format!("vec2<u32>({}, {})", at(0), at(1)),
                format!("all(e{n} == k{n})"),
                format!("e{n}.y < k{n}.y || (e{n}.y == k{n}.y && e{n}.x < k{n}.x)"),
            ),
            _ => (
                format!("vec4<u32>({}, {}, {}, {})", at(0), at(1), at(2), at(3)),
                format!("all(e{n} == k{n})"),
                format!(
                    "e{n}.w < k{n}.w || (e{n}.w == k{n}.w && (e{n}.z < k{n}.z || (e{n}.z == k{n}.z && (e{n}.y < k{n}.y || (e{n}.y == k{n}.y && e{n}.x < k{n}.x)))))"
                ),
            ),
        };
        write!(
            self.body,
            "        let k{n} = {key};
        let b{n} = lits[{o}];
        var lo{n} = 0u;
        var hi{n} = lits[b{n}];
        var in{n} = false;
        while (({ok}) && lo{n} < hi{n}) {{
            let m{n} = (lo{n} + hi{n}) >> 1u;
            let e{n} = {element};
            if ({equal}) {{
                in{n} = true;
                break;
            }}
            if ({less}) {{ lo{n} = m{n} + 1u; }} else {{ hi{n} = m{n}; }}
        }}
"
        )
        .unwrap();
        Ok(format!("in{n}"))
    }

    /// A decimal constant (unscaled), read from the literals buffer.
    fn decimal_literal(&mut self, x: i128) -> String {
        let o = self.literals.len();
        self.literals.extend((0..4).map(|i| (x >> (32 * i)) as u32));
        format!(
            "vec4<u32>(lits[{o}], lits[{}], lits[{}], lits[{}])",
            o + 1,
            o + 2,
            o + 3
        )
    }

    /// Emits a checked 128-bit operation; its overflow (where `ok`) is arrow's error.
    fn checked(&mut self, call: String, ok: &str) -> String {
        self.has_flags = true;
        let n = self.fresh();
        write!(
            self.body,
            "        let q{n} = {call};\n        if (({ok}) && q{n}.overflow) {{ atomicOr(&flags[0], {FLAG_OVERFLOW}u); }}\n"
        )
        .unwrap();
        format!("q{n}.v")
    }

    /// `l op r` on decimals of types `lt`, `rt` into `dt`, as arrow's decimal kernels: `+ -`
    /// bring both to the result's scale (multiplying by a power of ten) and add; `*`
    /// multiplies (the scales add); every step checked, an overflow of 128 bits being an
    /// error. Division stays on the CPU.
    fn decimal_arith(
        &mut self,
        op: ArithOp,
        dt: &DataType,
        (lt, rt): (DataType, DataType),
        l: &str,
        r: &str,
        ok: &str,
    ) -> Result<String> {
        self.int128 = true;
        let scale = |dt: &DataType| match dt {
            DataType::Decimal128(_, s) => *s,
            _ => unreachable!("the planner makes both operands decimals"),
        };
        Ok(match op {
            ArithOp::Add | ArithOp::Sub => {
                let to = scale(dt);
                let mut side = |v: &str, from: i8| -> String {
                    if from == to {
                        return v.to_string();
                    }
                    let pow = self.decimal_literal(10i128.pow((to - from) as u32));
                    self.checked(format!("i128_mul_checked({v}, {pow})"), ok)
                };
                let (a, b) = (side(l, scale(&lt)), side(r, scale(&rt)));
                let f = if op == ArithOp::Add {
                    "i128_add_checked"
                } else {
                    "i128_sub_checked"
                };
                self.checked(format!("{f}({a}, {b})"), ok)
            }
            ArithOp::Mul => self.checked(format!("i128_mul_checked({l}, {r})"), ok),
            ArithOp::Div => {
                return Err(Error::UnsupportedOnGpu {
                    operation: self.operation,
                    reason: format!("decimal division ({lt} / {rt})"),
                })
            }
        })
    }

    /// A cast to or from a decimal, as arrow's `cast` for the casts the planner makes:
    /// an integer to a decimal of scale 0 that holds all its values (exact); a decimal to
    /// a larger scale with digits enough (arrow's infallible upscale, a wrapping multiply);
    /// a decimal of at most 15 digits to Float64 (exact integer over an exact power of ten,
    /// rounded once by the IEEE division, as arrow). Anything else stays on the CPU.
    fn decimal_cast(
        &mut self,
        from: &DataType,
        to: &DataType,
        v: &str,
        from_repr: Repr,
    ) -> Result<String> {
        self.int128 = true;
        let unsupported = || Error::UnsupportedOnGpu {
            operation: self.operation,
            reason: format!("cast from {from} to {to}"),
        };
        Ok(match (from, to) {
            (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) => {
                let delta = *s2 as i16 - *s1 as i16;
                if delta < 0 || *p1 as i16 + delta > *p2 as i16 {
                    return Err(unsupported());
                }
                if delta == 0 {
                    v.to_string()
                } else {
                    let pow = self.decimal_literal(10i128.pow(delta as u32));
                    format!("i128_mul_checked({v}, {pow}).v")
                }
            }
            (DataType::Decimal128(p, s), DataType::Float64) if *p <= 15 && (0..=22).contains(s) => {
                self.softfloat = true;
                let o = self.literals.len();
                let pow = 10f64.powi(*s as i32).to_bits();
                self.literals.extend([pow as u32, (pow >> 32) as u32]);
                format!(
                    "f64_div(f64_from_i64({v}.xy), vec2<u32>(lits[{o}], lits[{}]))",
                    o + 1
                )
            }
            (_, DataType::Decimal128(p, 0)) => {
                match crate::plan::int_as_decimal(from) {
                    Some(DataType::Decimal128(digits, 0)) if digits <= *p => {}
                    _ => return Err(unsupported()),
                }
                match from_repr {
                    Repr::I32 => format!("i128_from_i32({v})"),
                    Repr::U32 => format!("vec4<u32>({v}, 0u, 0u, 0u)"),
                    Repr::I64 => format!("i128_from_i64({v})"),
                    Repr::U64 => format!("vec4<u32>({v}, 0u, 0u)"),
                    _ => return Err(unsupported()),
                }
            }
            _ => return Err(unsupported()),
        })
    }

    /// Where a string operand lies, from the value text `node` returned for it.
    fn string_source(&self, value: &str) -> StrSource {
        match value.strip_prefix("lit") {
            Some(o) => StrSource::Literal(o.parse().expect("a literal's index")),
            None => StrSource::Column(value.parse().expect("a column's slot")),
        }
    }

    /// Emits the byte comparison of two strings (any length: lengths, then a loop over
    /// words) and returns the name of the bool that says they are equal. `op` must be `=`
    /// or `!=`: byte order (`<`, `>`) stays on the CPU.
    fn string_equal(&mut self, op: CmpOp, l: &str, r: &str, ok: &str) -> Result<String> {
        if !matches!(op, CmpOp::Eq | CmpOp::NotEq) {
            return Err(Error::UnsupportedOnGpu {
                operation: self.operation,
                reason: format!("string comparison {op} (only = and != run on the GPU)"),
            });
        }
        self.strings = true;
        let (a, b) = (self.string_source(l), self.string_source(r));
        let n = self.fresh();
        let (ia, ib) = (format!("{n}a"), format!("{n}b"));
        self.body.push_str(&a.define(&ia));
        self.body.push_str(&b.define(&ib));
        write!(
            self.body,
            "        var eq{n} = l{ia} == l{ib};\n        if (eq{n} && ({ok})) {{\n            for (var k = 0u; k < l{ia}; k += 4u) {{\n                if ((({wa} ^ {wb}) & str_tail_mask(l{ia} - k)) != 0u) {{\n                    eq{n} = false;\n                    break;\n                }}\n            }}\n        }}\n",
            wa = a.word(&ia),
            wb = b.word(&ib),
        )
        .unwrap();
        Ok(format!("eq{n}"))
    }

    /// Arithmetic in the type `dt`. Integers: `+ - *` wrap, `/` truncates and flags
    /// division by zero and MIN / -1 where both operands are valid. Floats: IEEE-754 in
    /// software, NaN results canonical (never an error, as arrow's float `div`).
    fn arith(
        &mut self,
        op: ArithOp,
        dt: &DataType,
        r: Repr,
        l: &str,
        rv: &str,
        ok: &str,
    ) -> Result<String> {
        if matches!(r, Repr::F32 | Repr::F64) {
            self.softfloat = true;
            return Ok(format!("{}({l}, {rv})", float_fn(op, r)));
        }
        let (_, bits) = int_info(dt).ok_or_else(|| Error::UnsupportedOnGpu {
            operation: self.operation,
            reason: format!("arithmetic on {dt}"),
        })?;
        let n = self.fresh();
        Ok(match (r, op) {
            (Repr::I32 | Repr::U32, ArithOp::Add | ArithOp::Sub | ArithOp::Mul) => {
                let sym = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    _ => "*",
                };
                if bits < 32 {
                    format!("extractBits({l} {sym} {rv}, 0u, {bits}u)")
                } else {
                    format!("{l} {sym} {rv}")
                }
            }
            (Repr::I32, ArithOp::Div) => {
                self.has_flags = true;
                let min = format!(
                    "extractBits(bitcast<i32>(0x80000000u), {}u, {bits}u)",
                    32 - bits
                );
                write!(
                    self.body,
                    "        let d{n} = {rv};\n        if ({ok}) {{ if (d{n} == 0) {{ atomicOr(&flags[0], {FLAG_DIVIDE_BY_ZERO}u); }} else if (d{n} == -1 && {l} == {min}) {{ atomicOr(&flags[0], {FLAG_OVERFLOW}u); }} }}\n"
                )
                .unwrap();
                format!("select({l} / select(d{n}, 1, d{n} == 0), 0, d{n} == 0)")
            }
            (Repr::U32, ArithOp::Div) => {
                self.has_flags = true;
                write!(
                    self.body,
                    "        let d{n} = {rv};\n        if (({ok}) && d{n} == 0u) {{ atomicOr(&flags[0], {FLAG_DIVIDE_BY_ZERO}u); }}\n"
                )
                .unwrap();
                format!("select({l} / select(d{n}, 1u, d{n} == 0u), 0u, d{n} == 0u)")
            }
            (Repr::I64 | Repr::U64, ArithOp::Add) => format!("u64_add({l}, {rv})"),
            (Repr::I64 | Repr::U64, ArithOp::Sub) => format!("u64_sub({l}, {rv})"),
            (Repr::I64 | Repr::U64, ArithOp::Mul) => format!("u64_mul({l}, {rv})"),
            (Repr::I64 | Repr::U64, ArithOp::Div) => {
                self.has_flags = true;
                let signed = r == Repr::I64;
                write!(self.body, "        let d{n} = {rv};\n        let z{n} = all(d{n} == vec2<u32>(0u, 0u));\n        if ({ok}) {{ if (z{n}) {{ atomicOr(&flags[0], {FLAG_DIVIDE_BY_ZERO}u); }}").unwrap();
                if signed {
                    write!(self.body, " else if (all(d{n} == vec2<u32>(0xffffffffu, 0xffffffffu)) && all({l} == vec2<u32>(0u, 0x80000000u))) {{ atomicOr(&flags[0], {FLAG_OVERFLOW}u); }}").unwrap();
                }
                self.body.push_str(" }\n");
                let f = if signed { "i64_div" } else { "u64_div" };
                format!("select({f}({l}, select(d{n}, vec2<u32>(1u, 0u), z{n})), vec2<u32>(0u, 0u), z{n})")
            }
            _ => {
                return Err(Error::UnsupportedOnGpu {
                    operation: self.operation,
                    reason: format!("{op:?} on {dt}"),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float32Array, Int32Array, Int64Array, UInt32Array, UInt64Array};
    use arrow::record_batch::RecordBatch;

    use super::*;
    use crate::gpu::column::GpuBatch;
    use crate::gpu::{DeviceRequest, GpuContext};

    fn col(i: usize, dt: DataType) -> Box<Typed> {
        Box::new(Typed::Column(i, dt))
    }

    /// `cast(c0 as to) = c1`.
    fn cast_eq(from: DataType, to: DataType) -> Typed {
        Typed::Cmp(
            CmpOp::Eq,
            Box::new(Typed::Cast(col(0, from), to.clone())),
            col(1, to),
        )
    }

    fn validate(kernel: &PredicateKernel) {
        let text = kernel.source.as_str();
        let module = naga::front::wgsl::parse_str(text)
            .unwrap_or_else(|e| panic!("{}\n{text}", e.emit_to_string(text)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}\n{text}", e.emit_to_string(text)));
    }

    /// Every float operation and every cast to a float generates a kernel that naga accepts
    /// without 64-bit capabilities (so GL runs it), importing the soft-float module only
    /// when it is used; the cache key names the operation and types.
    #[test]
    fn float_kernels_generate_and_validate() {
        let ints = [
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
        ];
        let mut shapes = Vec::new();
        for to in [DataType::Float32, DataType::Float64] {
            for from in ints.iter().chain([&DataType::Float32]) {
                if from != &to {
                    shapes.push(cast_eq(from.clone(), to.clone()));
                }
            }
            for op in [ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div] {
                let arith = Typed::Arith(op, col(0, to.clone()), col(1, to.clone()), to.clone());
                shapes.push(Typed::Cmp(CmpOp::Lt, Box::new(arith), col(2, to.clone())));
            }
        }
        for shape in &shapes {
            let kernel = generate(shape, &|i| i == 1).unwrap();
            assert!(kernel.source.contains("fn f64_div("), "{}", kernel.key);
            validate(&kernel);
        }
        let plain = generate(&cast_eq(DataType::Int8, DataType::Int64), &|_| false).unwrap();
        assert!(!plain.source.contains("fn f64_div("));
        validate(&plain);
        let key = |e: &Typed| generate(e, &|_| false).unwrap().key;
        assert_ne!(
            key(&cast_eq(DataType::Int32, DataType::Float32)),
            key(&cast_eq(DataType::UInt32, DataType::Float32))
        );
    }

    /// The casts to f32 from 32- and 64-bit integers, which the planner doesn't make today
    /// (it widens those to Float64), round as Rust's `as` on every adapter found. Skipped
    /// without one unless `ARROW_WGPU_REQUIRE_GPU=1`.
    #[test]
    fn wide_integer_to_f32_casts_round_as_rust() {
        let mut sources: Vec<u64> = vec![0, 1, u64::MAX, 1 << 63, (1 << 63) - 1];
        for base in [1u64 << 24, 1 << 25, 1 << 31, 1 << 32, 1 << 40, 1 << 63] {
            for d in 0..40u64 {
                sources.extend([
                    base + d,
                    base - d,
                    (base + d).wrapping_neg(),
                    (base - d).wrapping_neg(),
                ]);
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sources.push(x >> (i % 64));
        }
        let cases: Vec<(DataType, ArrayRef, Vec<f32>)> = vec![
            (
                DataType::Int32,
                Arc::new(Int32Array::from_iter_values(
                    sources.iter().map(|&v| v as i32),
                )),
                sources.iter().map(|&v| v as i32 as f32).collect(),
            ),
            (
                DataType::UInt32,
                Arc::new(UInt32Array::from_iter_values(
                    sources.iter().map(|&v| v as u32),
                )),
                sources.iter().map(|&v| v as u32 as f32).collect(),
            ),
            (
                DataType::Int64,
                Arc::new(Int64Array::from_iter_values(
                    sources.iter().map(|&v| v as i64),
                )),
                sources.iter().map(|&v| v as i64 as f32).collect(),
            ),
            (
                DataType::UInt64,
                Arc::new(UInt64Array::from_iter_values(sources.iter().copied())),
                sources.iter().map(|&v| v as f32).collect(),
            ),
        ];
        let required = std::env::var("ARROW_WGPU_TEST_BACKENDS").unwrap_or_default();
        let mut ran = 0;
        for (name, backends) in [
            ("vulkan", wgpu::Backends::VULKAN),
            ("gl", wgpu::Backends::GL),
        ] {
            let request = DeviceRequest {
                backends,
                adapter_name: None,
                max_chunk_bytes: None,
                memory_limit: None,
            };
            let ctx = match GpuContext::open(&request) {
                Ok(ctx) => Arc::new(ctx),
                Err(e) => {
                    assert!(!required.contains(name), "required backend {name}: {e}");
                    continue;
                }
            };
            ran += 1;
            for (from, array, want) in &cases {
                let batch = RecordBatch::try_from_iter([
                    ("x", array.clone()),
                    ("f", Arc::new(Float32Array::from(want.clone())) as ArrayRef),
                ])
                .unwrap();
                let mask = ctx
                    .operation(|| {
                        let resident = GpuBatch::upload(&ctx, &batch)?;
                        crate::gpu::filter::evaluate(
                            &resident,
                            &cast_eq(from.clone(), DataType::Float32),
                        )
                    })
                    .unwrap();
                let bad: Vec<String> = (0..mask.len())
                    .filter(|&i| !mask.value(i))
                    .take(5)
                    .map(|i| format!("{} as {from} -> {:e}", sources[i], want[i]))
                    .collect();
                assert!(bad.is_empty(), "{name}: {from} to Float32: {bad:?}");
            }
        }
        assert!(
            ran > 0 || std::env::var("ARROW_WGPU_REQUIRE_GPU").as_deref() != Ok("1"),
            "ARROW_WGPU_REQUIRE_GPU=1 but no adapter"
        );
    }
}
