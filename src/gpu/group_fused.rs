//! Group-by of few groups in one pass over the rows: the host side of
//! `shaders/group_fused.wgsl`, generated per plan.
//!
//! Each row finds its group's slot in a small hash table and adds to every aggregate of the
//! slot in the same invocation (on hardware adapters first into its workgroup's own table
//! in workgroup memory); nothing per row is written. The whole table (each slot's first
//! row, row count and aggregate words) comes back in one read with the keys gathered at
//! the slots' first rows, and the host numbers the groups by first row: one host sync for
//! the chunk. `min`/`max` of values of at most 32 bits are one atomic max a row on the
//! value's order word (inverted for `min`), decoded on the host.
//!
//! The multi-pass path (`super::groups`, `super::group_by`) stays for what a chunk's table
//! doesn't take: float sums (their digits are sized from a pass over the values first),
//! min/max of 64-bit values (their order is two words, which no 32-bit atomic maxes at
//! once), count(DISTINCT), more bindings than the adapter has, and chunks whose groups
//! overflow the table.
//!
//! A table kept across batches (`super::group_resident`) takes two of those as well,
//! since no pass can size it to one batch's values:
//! - float sums (and squares) in digit arrays that hold any value of the type, 67 digits
//!   for an f64 sum and 133 for its squares (`float_digits`; the digits' adds are
//!   `shaders/common/float_digits.wgsl`, the multi-pass path's);
//! - `min`/`max` of 64-bit values in two passes: the fused kernel maxes the high order
//!   word (a row that raises it zeroes the low word) and writes each row's slot, then
//!   `low_source`'s kernel maxes the low word over the rows whose high word is their
//!   group's. The chunk's dispatches run in order, so no host sync comes between them.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, AsArray, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Decimal128Type, Int64Type};

use super::column::{column_from_bytes, column_parts, GpuBatch, Layout};
use super::filter::{check_flags, read_u32s};
use super::group_by::{
    aggregate_inputs, group_keys, input_type, int_state, is_float, same_states, sum_width,
    walking_threads, workgroup_words, KeysAt,
};
use super::groups::{table_keys, TableKeys};
use super::shader::{self, assemble};
use super::sort::key_kind;
use crate::aggregate::{AggFunc, Grouped, Plan, PlannedAgg, State};
use crate::error::Result;
use crate::exact::ExactSum;
use crate::profile::{self, Phase};

/// Slots of a fused table at most. Its records come back whole, so the table is for few
/// groups: a chunk with more groups than three quarters of its slots overflows it and is
/// grouped by the multi-pass path instead.
const MAX_SLOTS: u32 = 16384;
/// Table words at most (records of many aggregates get fewer slots).
const MAX_TABLE_WORDS: u32 = 1 << 18;
/// Table words at most of a table kept across batches (`super::group_resident`), read
/// back once at the end of the stream: room for the digit arrays of its exact float sums
/// (136 words for an f64 `sum`, 4,096 slots of them).
pub(super) const MAX_KEPT_TABLE_WORDS: u32 = 1 << 20;
/// The table's header words: slots claimed, overflow, two unused.
pub(super) const HEADER: usize = 4;
/// Words of a record before the aggregates': owner row + 1, first row (as rows - row), rows.
const ROWS_AT: u32 = 2;

/// Where one aggregate's words lie in a slot's record.
#[derive(Clone)]
enum Part {
    /// A count of values (`ROWS_AT` where every row counts).
    Count { at: u32 },
    /// An exact integer sum of `words` words (3, or 5 for 128-bit values), its count of
    /// values, and for variances the five-word sum of squares.
    Sum {
        at: u32,
        words: u32,
        count: u32,
        squares: Option<u32>,
        width: u32,
        signed: bool,
    },
    /// An exact float `sum`/`avg` (and for variances the sum of squares) in a kept table:
    /// digit arrays wide enough for any value of the type (`float_digits`), so no pass over
    /// the values sizes them first. `at`: the positive digits, then the negative ones, then
    /// the flags; `squares`: the squares' digits, then their flags. `wide`: f64 (else f32).
    FloatSum {
        at: u32,
        count: u32,
        squares: Option<u32>,
        wide: bool,
    },
    /// `min`/`max`: the largest order word (of the value's key `kind`,
    /// `super::sort::key_kind`; inverted for `min`) by atomic max, and its count of values
    /// (none: null). A value of at most 32 bits is one word, one atomic max a row. A 64-bit
    /// value (`wide`, in a kept table) is two words, high then low: the one-pass kernel
    /// maxes the high word (a row that raises it zeroes the low word, whose value was for
    /// a smaller high word), and a second pass (`low_source`) maxes the low word over the
    /// rows whose high word is the group's. Decoded on the host to the `input` type, then
    /// cast to the `output` type where an expression's value was widened.
    Extreme {
        at: u32,
        count: u32,
        kind: u32,
        min: bool,
        wide: bool,
        input: DataType,
        output: DataType,
    },
}

/// (digits per array, lowest digit) of an exact float sum in a kept table (`squares`: of
/// its squares) of f64 (`wide`) or f32 values: from the lowest bit any value (square) of
/// the type can have to the highest, with 32 bits more for the carries of the 2^32 - 1
/// rows a table takes at most. f64 sums take 67 digits, their squares 133; f32 11 and 20.
fn float_digits(wide: bool, squares: bool) -> (u32, u32) {
    // Bit positions at scale 2^-1074 (`float_parts` in shaders/common/float_digits.wgsl)
    // and mantissa bits.
    let (low, high, bits) = if wide { (0, 2045, 53) } else { (925, 1178, 24) };
    let (low, high, bits) = if squares {
        (2 * low, 2 * high, 2 * bits)
    } else {
        (low, high, bits)
    };
    let lowest = low / 32;
    ((high + bits + 32) / 32 + 1 - lowest, lowest)
}

/// The order word of row `row` of values `v` of key `kind` (as `shaders/sort_encode.wgsl`
/// makes it), as WGSL.
fn order_word(v: &str, kind: u32) -> String {
    match kind {
        0 => format!("((({v}[row >> 5u]) >> (row & 31u)) & 1u)"),
        1 => format!("((({v}[row >> 2u] >> ((row & 3u) * 8u)) & 0xffu) ^ 0x80u)"),
        2 => format!("((({v}[row >> 1u] >> ((row & 1u) * 16u)) & 0xffffu) ^ 0x8000u)"),
        3 => format!("({v}[row] ^ 0x80000000u)"),
        4 => format!("(({v}[row >> 2u] >> ((row & 3u) * 8u)) & 0xffu)"),
        5 => format!("(({v}[row >> 1u] >> ((row & 1u) * 16u)) & 0xffffu)"),
        6 => format!("{v}[row]"),
        7 => format!("select({v}[row] ^ 0x80000000u, ~{v}[row], ({v}[row] & 0x80000000u) != 0u)"),
        _ => unreachable!("a key kind of one word"),
    }
}

/// The high and low order words of row `row` of 64-bit values `v` of key `kind` (as
/// `shaders/sort_encode.wgsl` makes them), as WGSL.
fn order_words(v: &str, kind: u32) -> (String, String) {
    let (hi, lo) = (format!("{v}[row * 2u + 1u]"), format!("{v}[row * 2u]"));
    match kind {
        8 => (format!("({hi} ^ 0x80000000u)"), lo),
        9 => (hi, lo),
        10 => (
            format!("select({hi} ^ 0x80000000u, ~{hi}, ({hi} & 0x80000000u) != 0u)"),
            format!("select({lo}, ~{lo}, ({hi} & 0x80000000u) != 0u)"),
        ),
        _ => unreachable!("a key kind of two words"),
    }
}

/// Each group's value from the largest order word of an [`Part::Extreme`] (`words`, the
/// groups' counts of values `counts`: none is null), as an array of `input`: the words are
/// the CPU's order words ([`crate::cpu::keys::from_order_words`]), inverted for `min` (one
/// word's 32 bits, or a `wide` value's 64). A decimal held as i64 decodes as one.
fn decode_extremes(
    words: &[u64],
    counts: &[u64],
    min: bool,
    wide: bool,
    input: &DataType,
) -> Result<ArrayRef> {
    let words: Vec<u64> = words
        .iter()
        .map(|&w| match (min, wide) {
            (false, _) => w,
            (true, true) => !w,
            (true, false) => !w & u32::MAX as u64,
        })
        .collect();
    let nulls = NullBuffer::from_iter(counts.iter().map(|&c| c > 0));
    let held = match input {
        DataType::Decimal128(..) => &DataType::Int64,
        dt => dt,
    };
    let values = crate::cpu::keys::from_order_words(&words, Some(nulls), held)
        .unwrap_or_else(|| unreachable!("no order words of {input}"));
    Ok(match input {
        // The decimal's unscaled value, as the GPU holds it.
        DataType::Decimal128(p, s) => Arc::new(
            values
                .as_primitive::<Int64Type>()
                .unary::<_, Decimal128Type>(|v| v as i128)
                .with_precision_and_scale(*p, *s)?,
        ),
        _ => values,
    })
}

/// The fused kernel's shape for a plan: each aggregate's part (`None`: it copies an
/// earlier one's state) and input (an index into `inputs`), the inputs (the aggregate whose
/// input column each binds, whether its values are read, whether it has a validity bitmap),
/// and the record's words.
#[derive(Clone)]
pub(super) struct Shape {
    parts: Vec<Option<(Part, Option<usize>)>>,
    inputs: Vec<(usize, bool, bool)>,
    pub(super) record: u32,
}

impl Shape {
    /// Whether a part is `min`/`max` of 64-bit values (a second pass over the rows, by the
    /// slot each row found: no workgroup records).
    fn wide_extremes(&self) -> bool {
        self.parts
            .iter()
            .flatten()
            .any(|(p, _)| matches!(p, Part::Extreme { wide: true, .. }))
    }
}

/// Why the fused kernel doesn't take `agg` (its function and input type; `None`: it does):
/// what [`shape`] refuses before it looks at a batch. A `kept` table (across batches) also
/// takes float sums and `min`/`max` of 64-bit values.
pub(super) fn declines(agg: &PlannedAgg, kept: bool) -> Option<String> {
    let dt = || input_type(agg).ok_or_else(|| format!("{} of an expression", agg.func));
    let why = match agg.func {
        AggFunc::CountStar | AggFunc::Count => return None,
        AggFunc::CountDistinct => "count(DISTINCT)".to_string(),
        AggFunc::Min | AggFunc::Max => match dt() {
            Err(why) => why,
            Ok(dt) => match key_kind(&dt) {
                Some((_, wide)) if kept || !wide => return None,
                Some(_) => format!("{} of {dt} (64-bit values)", agg.func),
                None => format!("{} of {dt}", agg.func),
            },
        },
        AggFunc::Sum
        | AggFunc::Mean
        | AggFunc::VarSamp
        | AggFunc::VarPop
        | AggFunc::StddevSamp
        | AggFunc::StddevPop => match dt() {
            Err(why) => why,
            Ok(dt) => match sum_width(&dt) {
                None if kept && is_float(&dt) => return None,
                None => format!("{} of {dt}", agg.func),
                Some((_, width))
                    if width > 64 && !matches!(agg.func, AggFunc::Sum | AggFunc::Mean) =>
                {
                    format!("{} of {dt} (128-bit values)", agg.func)
                }
                Some(_) => return None,
            },
        },
    };
    Some(why)
}

/// The shape of `plan` over chunk `c` of `batch`, if the fused kernel takes it. For a
/// table `kept` across batches (`super::group_resident`), every aggregate with an input
/// counts its values in a word of its own, whether or not this chunk has nulls, so that
/// the records' layout is the same for every chunk of every batch (otherwise an input
/// without nulls counts in the slot's row count), and float sums and `min`/`max` of 64-bit
/// values are taken ([`declines`]).
pub(super) fn shape(
    batch: &GpuBatch,
    c: usize,
    plan: &Plan,
    same_as: &[Option<usize>],
    kept: bool,
) -> Option<Shape> {
    let mut shape = Shape {
        parts: Vec::with_capacity(plan.aggs.len()),
        inputs: Vec::new(),
        record: ROWS_AT + 1,
    };
    for (i, (agg, same)) in plan.aggs.iter().zip(same_as).enumerate() {
        if same.is_some() {
            shape.parts.push(None);
            continue;
        }
        if declines(agg, kept).is_some() {
            return None;
        }
        let reads_values = !matches!(agg.func, AggFunc::CountStar | AggFunc::Count);
        let input = match (&agg.value, &agg.filter) {
            (None, None) => None,
            (value, filter) => {
                // A plain column has a validity bitmap where it has nulls; what a kernel
                // writes for an expression or a filter always has one.
                let validity = match (value, filter) {
                    (Some(crate::plan::Typed::Column(k, _)), None) => {
                        batch.columns[*k].chunks[c].validity.is_some()
                    }
                    _ => true,
                };
                let same_input = |&(j, _, _): &(usize, bool, bool)| {
                    plan.aggs[j].value == *value && plan.aggs[j].filter == *filter
                };
                let at = match shape.inputs.iter().position(same_input) {
                    Some(at) => at,
                    None => {
                        shape.inputs.push((i, false, validity));
                        shape.inputs.len() - 1
                    }
                };
                if reads_values && !shape.inputs[at].1 {
                    // The values come from an aggregate that reads them.
                    shape.inputs[at].0 = i;
                    shape.inputs[at].1 = true;
                }
                Some(at)
            }
        };
        let counted = input.is_some_and(|j| kept || shape.inputs[j].2);
        let mut take_words = |n: u32| {
            let at = shape.record;
            shape.record += n;
            at
        };
        let part = match agg.func {
            AggFunc::CountStar | AggFunc::Count if counted => Part::Count { at: take_words(1) },
            AggFunc::CountStar | AggFunc::Count => Part::Count { at: ROWS_AT },
            AggFunc::Sum
            | AggFunc::Mean
            | AggFunc::VarSamp
            | AggFunc::VarPop
            | AggFunc::StddevSamp
            | AggFunc::StddevPop => {
                let dt = input_type(agg)?;
                let squares = !matches!(agg.func, AggFunc::Sum | AggFunc::Mean);
                if is_float(&dt) {
                    let wide = dt == DataType::Float64;
                    let (digits, _) = float_digits(wide, false);
                    let at = take_words(2 * digits + 1);
                    let count = if counted { take_words(1) } else { ROWS_AT };
                    let squares = squares.then(|| take_words(float_digits(wide, true).0 + 1));
                    shape.parts.push(Some((
                        Part::FloatSum {
                            at,
                            count,
                            squares,
                            wide,
                        },
                        input,
                    )));
                    continue;
                }
                let (signed, width) = sum_width(&dt)?;
                if squares && width > 64 {
                    return None;
                }
                let words = if width == 128 { 5 } else { 3 };
                Part::Sum {
                    at: take_words(words),
                    words,
                    count: if counted { take_words(1) } else { ROWS_AT },
                    squares: squares.then(|| take_words(5)),
                    width,
                    signed,
                }
            }
            AggFunc::Min | AggFunc::Max => {
                let dt = input_type(agg)?;
                let (kind, wide) = key_kind(&dt)?;
                Part::Extreme {
                    at: take_words(1 + wide as u32),
                    count: if counted { take_words(1) } else { ROWS_AT },
                    kind,
                    min: agg.func == AggFunc::Min,
                    wide,
                    input: dt,
                    output: agg.output.clone(),
                }
            }
            AggFunc::CountDistinct => return None,
        };
        shape.parts.push(Some((part, input)));
    }
    Some(shape)
}

/// The declarations of `shape`'s inputs bound from binding `first` (each input's values,
/// then its validity bitmap, where it has them), each input's names, and the next binding.
#[allow(clippy::type_complexity)]
fn input_bindings(
    shape: &Shape,
    first: u32,
) -> (String, Vec<(Option<String>, Option<String>)>, u32) {
    let mut bindings = String::new();
    let mut binding = first;
    let mut names = Vec::with_capacity(shape.inputs.len());
    for (j, &(_, values, validity)) in shape.inputs.iter().enumerate() {
        let mut declare = |name: String| {
            bindings +=
                &format!("@group(0) @binding({binding}) var<storage, read> {name}: array<u32>;\n");
            binding += 1;
            name
        };
        let v = values.then(|| declare(format!("in_{j}")));
        let m = validity.then(|| declare(format!("valid_{j}")));
        names.push((v, m));
    }
    (bindings, names, binding)
}

/// The fused kernel's source for `shape`, comparing rows by `keys` (the `${KEYS}` source),
/// its aggregate inputs bound from binding `first`, with `local_slots` workgroup records.
/// With `stored` (a binding), slots kept from earlier chunks (their owner word
/// `PERSISTED`) compare a row with the key words stored for the slot there
/// (`super::group_resident`; key words only).
fn source(shape: &Shape, keys: &str, first: u32, local_slots: u32, stored: Option<u32>) -> String {
    let (bindings, names, binding) = input_bindings(shape, first);
    let mut accumulate = String::new();
    let mut flush =
        format!("    add_words_n(base + {ROWS_AT}u, local_number(l, {ROWS_AT}u, 1u), 1u);\n");
    // A workgroup record's words `at..at + n` added into the global record, or its word
    // `at` maxed into it.
    let flush_words = |flush: &mut String, at: u32, n: u32| {
        *flush += &format!("    add_words_n(base + {at}u, local_number(l, {at}u, {n}u), {n}u);\n");
    };
    let flush_max = |flush: &mut String, at: u32| {
        *flush += &format!(
            "    atomicMax(&table[HEADER + base + {at}u], atomicLoad(&local_rec[l + {at}u]));\n"
        );
    };
    for (part, input) in shape.parts.iter().flatten() {
        let (values, validity) = input.map(|j| names[j].clone()).unwrap_or_default();
        let mut body = String::new();
        match part {
            Part::Count { at } => {
                if *at != ROWS_AT {
                    body += &format!("state_add(base + {at}u, 1u);");
                    flush_words(&mut flush, *at, 1);
                }
            }
            Part::Sum {
                at,
                words,
                count,
                squares,
                width,
                signed,
            } => {
                let v = values.expect("a sum reads its values");
                if *width == 128 {
                    body += &format!(
                        "add_words_n(base + {at}u, addend160({v}[row * 4u], {v}[row * 4u + 1u], \
                         {v}[row * 4u + 2u], {v}[row * 4u + 3u]), 5u);"
                    );
                } else {
                    let value = if *width == 64 {
                        format!("vec2<u32>({v}[row * 2u], {v}[row * 2u + 1u])")
                    } else {
                        let per = 32 / width;
                        format!(
                            "widen(extractBits({v}[row / {per}u], (row % {per}u) * {width}u, \
                             {width}u), {width}u, {signed})"
                        )
                    };
                    body += &format!(
                        "let v = {value}; add_words_n(base + {at}u, addend96(v, {signed}), 3u);"
                    );
                    if let Some(q) = squares {
                        body += &format!(" add_words_n(base + {q}u, square5(v, {signed}), 5u);");
                        flush_words(&mut flush, *q, 5);
                    }
                }
                flush_words(&mut flush, *at, *words);
                if *count != ROWS_AT {
                    body += &format!(" state_add(base + {count}u, 1u);");
                    flush_words(&mut flush, *count, 1);
                }
            }
            Part::FloatSum {
                at,
                count,
                squares,
                wide,
            } => {
                let v = values.expect("a sum reads its values");
                let (digits, lowest) = float_digits(*wide, false);
                body += &if *wide {
                    format!("let p = float_parts({v}[row * 2u], {v}[row * 2u + 1u], true);")
                } else {
                    format!("let p = float_parts({v}[row], 0u, false);")
                };
                body += &format!(" add_float(base + {at}u, {digits}u, {lowest}u, p);");
                flush += &format!(
                    "    flush_digits(l, base, {at}u, {digits}u);\n    \
                     flush_digits(l, base, {}u, {digits}u);\n    \
                     flush_or(l, base, {}u);\n",
                    at + digits,
                    at + 2 * digits
                );
                if let Some(q) = squares {
                    let (digits, lowest) = float_digits(*wide, true);
                    body += &format!(" add_float_square(base + {q}u, {digits}u, {lowest}u, p);");
                    flush += &format!(
                        "    flush_digits(l, base, {q}u, {digits}u);\n    \
                         flush_or(l, base, {}u);\n",
                        q + digits
                    );
                }
                if *count != ROWS_AT {
                    body += &format!(" state_add(base + {count}u, 1u);");
                    flush_words(&mut flush, *count, 1);
                }
            }
            Part::Extreme {
                at,
                count,
                kind,
                min,
                wide,
                ..
            } => {
                let v = values.expect("min and max read their values");
                if *wide {
                    // The high word (the low one in `low_source`); no workgroup records.
                    let (hi, _) = order_words(&v, *kind);
                    let hi = if *min { format!("~{hi}") } else { hi };
                    body += &format!(
                        "let hi = {hi}; if (atomicMax(&table[HEADER + base + {at}u], hi) < hi) \
                         {{ atomicStore(&table[HEADER + base + {}u], 0u); }}",
                        at + 1
                    );
                } else {
                    let word = order_word(&v, *kind);
                    let word = if *min { format!("~{word}") } else { word };
                    body += &format!("state_max(base + {at}u, {word});");
                    flush_max(&mut flush, *at);
                }
                if *count != ROWS_AT {
                    body += &format!(" state_add(base + {count}u, 1u);");
                    flush_words(&mut flush, *count, 1);
                }
            }
        }
        if body.is_empty() {
            continue;
        }
        accumulate += &match validity {
            Some(m) => format!("    if (bit({m}[row >> 5u], row)) {{ {body} }}\n"),
            None => format!("    {{ {body} }}\n"),
        };
    }
    let local_words = (local_slots * shape.record).max(1).to_string();
    let row_slots = if shape.wide_extremes() {
        format!(
            "@group(0) @binding({binding}) var<storage, read_write> row_slot: array<u32>;\n\
             fn keep_slot(row: u32, base: u32) {{\n    \
             row_slot[row] = select(base / REC, NONE, base == NONE);\n}}\n"
        )
    } else {
        "fn keep_slot(row: u32, base: u32) {}\n".to_string()
    };
    let same_slot = match stored {
        None => "fn same_slot(holder: u32, at: u32, row: u32) -> bool {\n    \
                 return same_keys(holder - 1u, row);\n}\n"
            .to_string(),
        Some(binding) => format!(
            "@group(0) @binding({binding}) var<storage, read> stored: array<u32>;\n\
             fn same_slot(holder: u32, at: u32, row: u32) -> bool {{\n    \
             if (holder != PERSISTED) {{\n        return same_keys(holder - 1u, row);\n    }}\n    \
             let s = at / REC;\n    \
             for (var w = 0u; w < params.words; w++) {{\n        \
             if (stored[s * params.words + w] != keys[row * params.words + w]) {{\n            \
             return false;\n        }}\n    }}\n    \
             return true;\n}}\n"
        ),
    };
    assemble(
        shader::GROUP_FUSED,
        &[
            ("KEYS", keys),
            ("SAME_SLOT", &same_slot),
            ("KEY_VALID", "3"),
            ("BINDINGS", &bindings),
            ("REC", &shape.record.to_string()),
            ("LOCAL_SLOTS", &local_slots.to_string()),
            ("LOCAL_WORDS", &local_words),
            ("ACCUMULATE", &accumulate),
            ("FLUSH", &flush),
            ("ROW_SLOTS", &row_slots),
        ],
    )
}

/// The pass after the fused kernel where `shape` has 64-bit extremes: each row whose
/// high order word is its group's (`row_slot`, from the fused kernel) maxes the low word
/// into the group's record. Binds the params, the table, the rows' slots, then the inputs
/// as the fused kernel does.
fn low_source(shape: &Shape) -> String {
    let (bindings, names, _) = input_bindings(shape, 3);
    let mut lows = String::new();
    for (part, input) in shape.parts.iter().flatten() {
        let Part::Extreme {
            at,
            kind,
            min,
            wide: true,
            ..
        } = part
        else {
            continue;
        };
        let (values, validity) = input.map(|j| names[j].clone()).unwrap_or_default();
        let v = values.expect("min and max read their values");
        let (hi, lo) = order_words(&v, *kind);
        let (hi, lo) = if *min {
            (format!("~{hi}"), format!("~{lo}"))
        } else {
            (hi, lo)
        };
        let body = format!(
            "if ({hi} == atomicLoad(&table[HEADER + base + {at}u])) \
             {{ atomicMax(&table[HEADER + base + {}u], {lo}); }}",
            at + 1
        );
        lows += &match validity {
            Some(m) => format!(
                "        if (((({m}[row >> 5u]) >> (row & 31u)) & 1u) != 0u) {{ {body} }}\n"
            ),
            None => format!("        {body}\n"),
        };
    }
    format!(
        "#import dispatch\n\
         struct LowParams {{\n    rows: u32,\n    unused_1: u32,\n    unused_2: u32,\n    unused_3: u32,\n}}\n\
         @group(0) @binding(0) var<uniform> params: LowParams;\n\
         @group(0) @binding(1) var<storage, read_write> table: array<atomic<u32>>;\n\
         @group(0) @binding(2) var<storage, read> row_slot: array<u32>;\n\
         {bindings}\
         const HEADER: u32 = {HEADER}u;\n\
         const REC: u32 = {}u;\n\
         @compute @workgroup_size(WG)\n\
         fn main(\n    \
         @builtin(workgroup_id) wg: vec3<u32>,\n    \
         @builtin(num_workgroups) nwg: vec3<u32>,\n    \
         @builtin(local_invocation_index) lid: u32,\n) {{\n    \
         let stride = nwg.x * nwg.y * WG;\n    \
         for (var row = flat_workgroup(wg, nwg) * WG + lid; row < params.rows; row += stride) {{\n        \
         let s = row_slot[row];\n        \
         if (s == 0xffffffffu) {{\n            continue;\n        }}\n        \
         let base = s * REC;\n\
         {lows}    }}\n}}\n",
        shape.record
    )
}

/// Whether the fused kernel of `shape` over `batch` fits the adapter's storage
/// bindings, its keys bound as `table_keys` binds them (`key_bindings`), and with a binding
/// for stored key words where `stored`.
pub(super) fn fits(batch: &GpuBatch, shape: &Shape, key_bindings: u32, stored: bool) -> bool {
    let ctx = &batch.ctx;
    let inputs: u32 = shape
        .inputs
        .iter()
        .map(|&(_, v, m)| v as u32 + m as u32)
        .sum();
    let row_slots = shape.wide_extremes() as u32;
    let storage =
        key_bindings + 1 + stored as u32 + ctx.params_storage_bindings() + inputs + row_slots;
    storage <= ctx.summary.limits.max_storage_buffers_per_shader_stage
}

/// The slots of a table for `rows` rows of records of `record` words: a power of two with
/// room for the rows at three quarters full, from 64 to [`MAX_SLOTS`] and within
/// `max_words` ([`MAX_TABLE_WORDS`], or [`MAX_KEPT_TABLE_WORDS`]); `None` where fewer
/// than 64 records fit.
pub(super) fn table_slots(rows: u64, record: u32, max_words: u32) -> Option<u32> {
    let slots = (rows * 4 / 3 + 1)
        .next_power_of_two()
        .clamp(64, MAX_SLOTS as u64)
        .min(((max_words / record) as u64 + 1).next_power_of_two() / 2) as u32;
    (slots >= 64).then_some(slots)
}

/// The table's words for `slots` records of `shape`: the header, then the records.
pub(super) fn table_words(slots: u32, shape: &Shape) -> u64 {
    HEADER as u64 + slots as u64 * shape.record as u64
}

/// The slots beyond which a table of `slots` overflows (three quarters).
fn limit(slots: u32) -> u32 {
    slots / 4 * 3
}

/// Records the fused kernel over chunk `c` of `batch` into `encoder`: each row's slot in
/// `table` (of `slots` records of `shape`), compared by `table_keys`, and its aggregates
/// added there; with `stored`, slots of earlier chunks compare with the key words stored
/// there. Returns the flags word the aggregates' inputs report errors to.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_pass(
    batch: &GpuBatch,
    c: usize,
    plan: &Plan,
    shape: &Shape,
    table_keys: &TableKeys,
    table: &wgpu::Buffer,
    slots: u32,
    stored: Option<&wgpu::Buffer>,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<wgpu::Buffer> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    // Workgroup records: as many as fit the workgroup memory a stage may use, none when
    // fewer than 16 do. None on a software driver: llvmpipe's compiler took 40-180 s over some plans' kernels with
    // the workgroup table (and milliseconds without it), and it has no contention to save.
    let fit = workgroup_words(ctx) / shape.record;
    let local_slots = if fit >= 16 && !ctx.summary.is_software() && !shape.wide_extremes() {
        1 << (31 - fit.leading_zeros())
    } else {
        0
    };
    let (inputs, input_slots, flags) = aggregate_inputs(batch, c, plan, encoder)?;
    let (key_buffers, per_row) = table_keys.bindings(ctx);
    let key_bindings = key_buffers.len() as u32;
    let stored_binding = stored.map(|_| key_bindings + 2);
    let first = key_bindings + 2 + stored.is_some() as u32;
    let text = source(
        shape,
        table_keys.source().1,
        first,
        local_slots,
        stored_binding,
    );
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let pipeline = ctx.pipeline(&format!("group_fused:{:016x}", hasher.finish()), || text)?;
    let params = ctx.params([rows, per_row, slots, limit(slots)])?;
    let mut input_buffers: Vec<&wgpu::Buffer> = Vec::new();
    for &(agg, values, validity) in &shape.inputs {
        let chunk = &inputs.columns[input_slots[agg].expect("an input")].chunks[0];
        if values {
            input_buffers.push(&chunk.data);
        }
        if validity {
            input_buffers.push(chunk.validity.as_ref().expect("a validity bitmap"));
        }
    }
    let row_slots = if shape.wide_extremes() {
        Some(ctx.storage_zeroed("slot of row", rows.max(1) as u64 * 4)?)
    } else {
        None
    };
    let mut buffers: Vec<&wgpu::Buffer> = vec![&params, key_buffers[0], table];
    buffers.extend(&key_buffers[1..]);
    buffers.extend(stored);
    buffers.extend(&input_buffers);
    buffers.extend(&row_slots);
    let bound = ctx.bind(&pipeline, &buffers);
    if rows > 0 {
        ctx.dispatch(encoder, &pipeline, &bound, walking_threads(rows));
    }
    if let (Some(row_slots), true) = (&row_slots, rows > 0) {
        // The low words of 64-bit extremes, once every high word is in.
        let text = assemble(&low_source(shape), &[]);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let low = ctx.pipeline(&format!("group_fused_low:{:016x}", hasher.finish()), || {
            text
        })?;
        let params = ctx.params([rows, 0, 0, 0])?;
        let mut buffers: Vec<&wgpu::Buffer> = vec![&params, table, row_slots];
        buffers.extend(&input_buffers);
        let bound = ctx.bind(&low, &buffers);
        ctx.dispatch(encoder, &low, &bound, walking_threads(rows));
    }
    Ok(flags)
}

/// The states of `groups` groups of a table read back (`records`: the records after the
/// header), group g's record that of slot `order[g]` (empty past the end of `order`: a
/// global aggregate of no rows).
pub(super) fn states_of(
    shape: &Shape,
    same_as: &[Option<usize>],
    records: &[u32],
    order: &[usize],
    groups: usize,
) -> Result<Vec<State>> {
    let record = shape.record as usize;
    let empty = vec![0u32; record];
    let at_record = |g: usize| -> &[u32] {
        match order.get(g) {
            Some(&s) => &records[s * record..(s + 1) * record],
            None => &empty,
        }
    };
    let words = |from: u32, n: u32| -> Vec<u32> {
        (0..groups)
            .flat_map(|g| at_record(g)[from as usize..(from + n) as usize].to_vec())
            .collect()
    };
    let counts = |from: u32| -> Vec<u64> {
        (0..groups)
            .map(|g| at_record(g)[from as usize] as u64)
            .collect()
    };
    let mut states: Vec<State> = Vec::with_capacity(shape.parts.len());
    for (part, same) in shape.parts.iter().zip(same_as) {
        let state = match (part, same) {
            (None, Some(earlier)) => states[*earlier].clone(),
            (Some((Part::Count { at }, _)), _) => State::Count(counts(*at)),
            (
                Some((
                    Part::Sum {
                        at,
                        words: n,
                        count,
                        squares,
                        ..
                    },
                    _,
                )),
                _,
            ) => {
                let squares = squares.map(|q| words(q, 5));
                int_state(
                    &words(*at, *n),
                    *n as usize,
                    squares.as_deref(),
                    counts(*count),
                )
            }
            (
                Some((
                    Part::FloatSum {
                        at,
                        count,
                        squares,
                        wide,
                    },
                    _,
                )),
                _,
            ) => {
                let (d, lowest) = float_digits(*wide, false);
                let (at, d) = (*at as usize, d as usize);
                let sum = (0..groups)
                    .map(|g| {
                        let r = at_record(g);
                        ExactSum::from_digits(
                            &r[at..at + d],
                            &r[at + d..at + 2 * d],
                            lowest,
                            r[at + 2 * d],
                        )
                    })
                    .collect();
                let squares = match squares {
                    Some(q) => {
                        let (d, lowest) = float_digits(*wide, true);
                        let (q, d) = (*q as usize, d as usize);
                        (0..groups)
                            .map(|g| {
                                let r = at_record(g);
                                ExactSum::from_digits(&r[q..q + d], &[], lowest, r[q + d])
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                State::Moments {
                    sum,
                    squares,
                    n: counts(*count),
                }
            }
            (
                Some((
                    Part::Extreme {
                        at,
                        count,
                        min,
                        wide,
                        input,
                        output,
                        ..
                    },
                    _,
                )),
                _,
            ) => {
                let at = *at as usize;
                let best: Vec<u64> = (0..groups)
                    .map(|g| match wide {
                        true => (at_record(g)[at] as u64) << 32 | at_record(g)[at + 1] as u64,
                        false => at_record(g)[at] as u64,
                    })
                    .collect();
                let values = decode_extremes(&best, &counts(*count), *min, *wide, input)?;
                // A widened expression value: every value fits the output type.
                State::Extreme(if values.data_type() == output {
                    values
                } else {
                    cast(&values, output)?
                })
            }
            (None, None) => unreachable!("a part or an earlier state"),
        };
        states.push(state);
    }
    Ok(states)
}

/// Chunk `c` of `batch` grouped by `plan` in one pass, as [`super::group_by`]'s chunks are
/// (`base`, `keys_at` and `gather_keys` as there); `None` where the fused kernel doesn't
/// take the plan or the chunk's groups overflowed its table (the multi-pass path then
/// groups the chunk).
pub(crate) fn chunk_partial(
    batch: &GpuBatch,
    c: usize,
    plan: &Plan,
    base: u32,
    keys_at: &KeysAt,
    gather_keys: bool,
) -> Result<Option<Grouped>> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let same_as = same_states(plan);
    let Some(shape) = shape(batch, c, plan, &same_as, false) else {
        return Ok(None);
    };
    let strings = plan.keys.len() == 1 && batch.columns[plan.keys[0]].layout() == Layout::Strings;
    if !fits(batch, &shape, 1 + strings as u32, false) {
        return Ok(None);
    }
    let Some(slots) = table_slots(rows as u64, shape.record, MAX_TABLE_WORDS) else {
        return Ok(None);
    };

    let start = Instant::now();
    let mut encoder = ctx.encoder();
    let table_keys = table_keys(batch, &group_keys(plan), c, &mut encoder)?;
    let table_words = table_words(slots, &shape);
    let table = ctx.storage_zeroed("fused group table", table_words * 4)?;
    let flags = record_pass(
        batch,
        c,
        plan,
        &shape,
        &table_keys,
        &table,
        slots,
        None,
        &mut encoder,
    )?;
    // Fixed-width keys of a batch on the GPU: gathered at every slot's first row (row 0 for
    // an empty slot) and read back with the table.
    let fixed_width = |&k: &usize| batch.columns[k].layout() != Layout::Strings;
    let gather = gather_keys && !plan.keys.is_empty() && plan.keys.iter().all(fixed_width);
    let slot_rows = if gather {
        let stage = ctx.pipeline("group_slot_rows", || assemble(shader::GROUP_SLOT_ROWS, &[]))?;
        let out = ctx.storage_zeroed("first row of slot", slots as u64 * 4)?;
        let params = ctx.params([slots, shape.record, rows, 0])?;
        let bound = ctx.bind(&stage, &[&params, &table, &out]);
        ctx.dispatch(&mut encoder, &stage, &bound, slots as u64);
        Some(out)
    } else {
        None
    };
    ctx.submit(encoder)?;
    let gathered = match slot_rows {
        Some(at) => Some(super::sort::take(
            &batch.chunk_view(c, &plan.keys)?,
            &[(at, slots)],
        )?),
        None => None,
    };
    profile::record(Phase::Kernels, start);

    let start = Instant::now();
    let mut parts: Vec<(&wgpu::Buffer, u64)> = vec![(&flags, 4), (&table, table_words * 4)];
    if let Some(taken) = &gathered {
        for column in &taken.columns {
            parts.extend(column_parts(column, &taken.chunk_rows));
        }
    }
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    let mut next = || bytes.next().unwrap_or_default();
    check_flags(read_u32s(&next())[0])?;
    let table = read_u32s(&next());
    if table[1] != 0 {
        profile::record(Phase::Download, start);
        log::debug!(
            "group_by: more than {} groups overflow the fused table",
            limit(slots)
        );
        return Ok(None);
    }
    let record = shape.record as usize;
    let records = &table[HEADER..];
    // The groups in order of first appearance: (first row, slot).
    let mut order: Vec<(u32, usize)> = (0..slots as usize)
        .filter(|&s| records[s * record + 1] != 0)
        .map(|s| (rows - records[s * record + 1], s))
        .collect();
    order.sort_unstable();
    // No keys: one group, even over no rows (its states empty).
    let groups = if plan.keys.is_empty() { 1 } else { order.len() };
    let slots_in_order: Vec<usize> = order.iter().map(|&(_, s)| s).collect();
    let states = states_of(&shape, &same_as, records, &slots_in_order, groups)?;
    let first: Vec<u32> = order.iter().map(|&(row, _)| row).collect();
    let keys = match &gathered {
        Some(taken) => {
            let slots_in_order =
                UInt32Array::from_iter_values(slots_in_order.iter().map(|&s| s as u32));
            taken
                .columns
                .iter()
                .map(|column| {
                    let all = column_from_bytes(column, &taken.chunk_rows, &mut bytes)?;
                    Ok(take(all.as_ref(), &slots_in_order, None)?)
                })
                .collect::<Result<Vec<ArrayRef>>>()?
        }
        None if plan.keys.is_empty() => Vec::new(),
        None => keys_at(&first, base)?,
    };
    profile::record(Phase::Download, start);
    Ok(Some(Grouped {
        groups,
        keys,
        states,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part of a generated kernel parses and validates: key words and a string key,
    /// with and without workgroup records; counts, 96- and 160-bit sums, squares, counts
    /// of their own and filtered inputs; with and without the kept table's float sums (f64
    /// and f32, with squares or not) and 64-bit extremes (and their second pass).
    #[test]
    fn generated_kernels_validate() {
        let sum = |at, width: u32, count, squares| Part::Sum {
            at,
            words: if width == 128 { 5 } else { 3 },
            count,
            squares,
            width,
            signed: width != 16,
        };
        let mut parts = vec![
            Some((Part::Count { at: ROWS_AT }, None)),
            Some((Part::Count { at: 3 }, Some(0))),
            Some((sum(4, 64, 7, Some(8)), Some(0))),
            Some((sum(13, 16, ROWS_AT, Some(16)), Some(1))),
            Some((sum(21, 128, 26, None), Some(2))),
            None,
        ];
        // min and max of every one-word key kind, with and without a count of their own.
        for kind in 0..8u32 {
            let extreme = Part::Extreme {
                at: 27 + 2 * kind,
                count: if kind % 2 == 0 {
                    28 + 2 * kind
                } else {
                    ROWS_AT
                },
                kind,
                min: kind % 3 == 0,
                wide: false,
                input: DataType::Int32,
                output: DataType::Int32,
            };
            parts.push(Some((extreme, Some(kind as usize % 3))));
        }
        let one_word = Shape {
            parts: parts.clone(),
            inputs: vec![(1, true, true), (3, true, false), (4, true, true)],
            record: 43,
        };
        // The kept table's parts, after those.
        let mut record = 43;
        let take = |record: &mut u32, n: u32| {
            *record += n;
            *record - n
        };
        for (wide, squares, input) in [(true, true, 0), (false, false, 1), (true, false, 2)] {
            let at = take(&mut record, 2 * float_digits(wide, false).0 + 1);
            let count = if input == 1 {
                ROWS_AT
            } else {
                take(&mut record, 1)
            };
            let squares = squares.then(|| take(&mut record, float_digits(wide, true).0 + 1));
            let float = Part::FloatSum {
                at,
                count,
                squares,
                wide,
            };
            parts.push(Some((float, Some(input))));
        }
        let floats = Shape {
            parts: parts.clone(),
            inputs: one_word.inputs.clone(),
            record,
        };
        for kind in 8..11u32 {
            for min in [false, true] {
                let extreme = Part::Extreme {
                    at: take(&mut record, 2),
                    count: if min { take(&mut record, 1) } else { ROWS_AT },
                    kind,
                    min,
                    wide: true,
                    input: DataType::Int64,
                    output: DataType::Int64,
                };
                parts.push(Some((extreme, Some(kind as usize % 3))));
            }
        }
        let kept = Shape {
            parts,
            inputs: one_word.inputs.clone(),
            record,
        };
        assert!(kept.wide_extremes() && !one_word.wide_extremes());
        let validate = |text: String| {
            let module = naga::front::wgsl::parse_str(&text)
                .unwrap_or_else(|e| panic!("{}\n{text}", e.emit_to_string(&text)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}\n{text}", e.emit_to_string(&text)));
        };
        validate(assemble(&low_source(&kept), &[]));
        let keys = [
            (shader::GROUP_KEYS_WORDS, 3),
            (shader::GROUP_KEYS_STRINGS, 4),
        ];
        for (keys, first) in keys {
            // Stored key words go with key words only (group_resident).
            let words = keys == shader::GROUP_KEYS_WORDS;
            for (local, stored) in [(0, false), (128, false), (0, words), (128, words)] {
                let stored = stored.then_some(first);
                let first = first + stored.is_some() as u32;
                validate(source(&one_word, keys, first, local, stored));
                // Kept: stored keys; 64-bit extremes take no workgroup records.
                if stored.is_some() {
                    validate(source(&floats, keys, first, local, stored));
                    validate(source(&kept, keys, first, 0, stored));
                }
            }
        }
    }
}
