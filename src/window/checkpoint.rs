//! A [`WindowAggregator`]'s state in a file, written atomically.
//!
//! The file: a magic line, then sections, each a little-endian u64 length and an Arrow IPC
//! stream of one batch. The first section says what wrote it (the crate's version, and the
//! aggregation: input schema, options, keys and aggregates), where the input was, the
//! watermark and the counters; then the late rows kept and not yet taken; then each open
//! window (fixed windows: its bounds and its merged groups; sessions: the open sessions,
//! the ids merged since the last scan, and each part's groups). A group set is a batch of
//! key columns and a batch per aggregate state.

use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, FixedSizeBinaryBuilder, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type, UInt64Type};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use super::{Merger, Session, Sessions, Store, WindowAggregator};
use crate::aggregate::{Grouped, State};
use crate::error::{Error, Result};
use crate::exact::{ExactSum, SumSlots};

const MAGIC: &[u8] = b"arrow-wgpu window checkpoint\n";

/// What the file's aggregation must equal: the crate's version (key encodings and states
/// are its own), the input schema, the options, keys and aggregates.
fn fingerprint(agg: &WindowAggregator) -> String {
    format!(
        "arrow-wgpu {} | {:?} | {:?} | {:?} | {:?}",
        env!("CARGO_PKG_VERSION"),
        agg.input.fields(),
        agg.options,
        agg.keys,
        agg.aggs
    )
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// One batch of `columns` (named), `rows` rows.
fn batch(columns: Vec<(&str, ArrayRef)>, rows: usize) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn section(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut ipc = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut ipc, batch.schema_ref())?;
            w.write(batch)?;
            w.finish()?;
        }
        self.bytes
            .extend_from_slice(&(ipc.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(&ipc);
        Ok(())
    }

    /// A group set: its keys, then each state.
    fn grouped(&mut self, g: &Grouped) -> Result<()> {
        let keys = g
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("k{i}"), k.clone()))
            .collect::<Vec<_>>();
        self.section(&batch(
            keys.iter().map(|(n, k)| (n.as_str(), k.clone())).collect(),
            g.groups,
        )?)?;
        for s in &g.states {
            self.section(&state_batch(s, g.groups)?)?;
        }
        Ok(())
    }
}

fn encoded(sums: impl Iterator<Item = ExactSum>) -> ArrayRef {
    let mut buf = Vec::new();
    let values: Vec<Vec<u8>> = sums
        .map(|s| {
            buf.clear();
            s.encode(&mut buf);
            buf.clone()
        })
        .collect();
    Arc::new(BinaryArray::from_iter_values(values))
}

/// A state as a batch, named by its kind.
fn state_batch(s: &State, groups: usize) -> Result<RecordBatch> {
    let u64s = |v: &[u64]| Arc::new(UInt64Array::from(v.to_vec())) as ArrayRef;
    match s {
        State::Count(c) => batch(vec![("count", u64s(c))], groups),
        State::IntSum { sums, high, n } => batch(
            vec![
                ("int_sum", {
                    // A builder: `try_from_iter` refuses no values (a state of no groups).
                    let mut b = FixedSizeBinaryBuilder::with_capacity(sums.len(), 16);
                    for v in sums {
                        b.append_value(v.to_le_bytes())?;
                    }
                    Arc::new(b.finish()) as ArrayRef
                }),
                ("high", Arc::new(Int64Array::from(high.clone()))),
                ("n", u64s(n)),
            ],
            groups,
        ),
        State::Sums { slots, n } => batch(
            vec![
                ("sum_slots", encoded((0..n.len()).map(|g| slots.get(g)))),
                ("n", u64s(n)),
            ],
            groups,
        ),
        State::Moments { sum, squares, n } => {
            let mut columns = vec![("moments", encoded(sum.iter().cloned())), ("n", u64s(n))];
            if !squares.is_empty() {
                columns.push(("squares", encoded(squares.iter().cloned())));
            }
            batch(columns, groups)
        }
        State::Extreme(best) => batch(vec![("best", best.clone())], groups),
        State::Distinct {
            pair_group, values, ..
        } => batch(
            vec![
                (
                    "pair_group",
                    Arc::new(UInt32Array::from(pair_group.clone())) as ArrayRef,
                ),
                ("value", values.clone()),
            ],
            pair_group.len(),
        ),
    }
}

/// Writes `agg`'s state and `position` to `path` atomically.
pub(super) fn save(agg: &mut WindowAggregator, path: &Path, position: &str) -> Result<()> {
    let mut w = Writer {
        bytes: MAGIC.to_vec(),
    };
    let stats = agg.stats;
    let u64 = |v: u64| Arc::new(UInt64Array::from(vec![v])) as ArrayRef;
    // Each open window's groups, merged (a window whose only push failed holds none).
    let plan = &agg.plan;
    let mut fixed = Vec::new();
    if let Store::Fixed(open) = &mut agg.store {
        for (&(end, start), merger) in open.iter_mut() {
            if let Some(g) = merger.snapshot(plan)? {
                fixed.push((end, start, g));
            }
        }
    }
    let (windows, next_id, earliest) = match &agg.store {
        Store::Fixed(_) => (fixed.len(), 0, 0),
        Store::Sessions(s) => (s.parts.len(), s.next_id, s.earliest_end),
    };
    w.section(&batch(
        vec![
            (
                "fingerprint",
                Arc::new(StringArray::from(vec![fingerprint(agg)])),
            ),
            ("position", Arc::new(StringArray::from(vec![position]))),
            (
                "watermark",
                Arc::new(Int64Array::from(vec![stats.watermark])),
            ),
            ("batches", u64(stats.batches)),
            ("rows", u64(stats.rows)),
            ("late_rows", u64(stats.late_rows)),
            ("emitted_windows", u64(stats.emitted_windows)),
            ("emissions", u64(stats.emissions)),
            ("sections", u64(windows as u64)),
            ("next_id", Arc::new(Int64Array::from(vec![next_id]))),
            ("earliest_end", Arc::new(Int64Array::from(vec![earliest]))),
            ("late_batches", u64(agg.late.len() as u64)),
        ],
        1,
    )?)?;
    // Late rows kept and not yet taken: nothing set aside is lost by a restart.
    for late in &agg.late {
        w.section(late)?;
    }
    match &agg.store {
        Store::Fixed(_) => {
            for (end, start, g) in &fixed {
                w.section(&batch(
                    vec![
                        ("end", Arc::new(Int64Array::from(vec![*end]))),
                        ("start", Arc::new(Int64Array::from(vec![*start]))),
                    ],
                    1,
                )?)?;
                w.grouped(g)?;
            }
        }
        Store::Sessions(s) => {
            let mut keys = Vec::new();
            let (mut starts, mut ends, mut ids) = (Vec::new(), Vec::new(), Vec::new());
            for (key, list) in &s.open {
                for o in list {
                    keys.push(key.as_ref());
                    starts.push(o.start);
                    ends.push(o.end);
                    ids.push(o.id);
                }
            }
            let rows = keys.len();
            w.section(&batch(
                vec![
                    ("key", Arc::new(BinaryArray::from_vec(keys))),
                    ("start", Arc::new(Int64Array::from(starts))),
                    ("end", Arc::new(Int64Array::from(ends))),
                    ("id", Arc::new(Int64Array::from(ids))),
                ],
                rows,
            )?)?;
            let (from, to): (Vec<i64>, Vec<i64>) = s.forward.iter().map(|(a, b)| (*a, *b)).unzip();
            let rows = from.len();
            w.section(&batch(
                vec![
                    ("from", Arc::new(Int64Array::from(from))),
                    ("to", Arc::new(Int64Array::from(to))),
                ],
                rows,
            )?)?;
            for part in &s.parts {
                w.grouped(part)?;
            }
        }
    }
    write_atomically(path, &w.bytes)
}

/// Writes `bytes` to `path`: a temporary file in its folder, fsync, rename, fsync of the
/// folder. On an error the temporary file is removed and `path` is as it was.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| bad(path, e.to_string());
    let name = path
        .file_name()
        .ok_or_else(|| bad(path, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = folder.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(dir) = File::open(&folder) {
            // Makes the rename durable; not every platform opens folders.
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}

struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Reader<'_> {
    fn section(&mut self) -> Result<RecordBatch> {
        if self.bytes.len() < 8 {
            return Err(bad(self.path, "the file ends early"));
        }
        let (len, rest) = self.bytes.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        if rest.len() < len {
            return Err(bad(self.path, "the file ends early"));
        }
        let (ipc, rest) = rest.split_at(len);
        self.bytes = rest;
        let reader = StreamReader::try_new(Cursor::new(ipc), None)
            .map_err(|e| bad(self.path, e.to_string()))?;
        let mut batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(self.path, e.to_string()))?;
        if batches.len() != 1 {
            return Err(bad(self.path, "a section holds other than one batch"));
        }
        Ok(batches.remove(0))
    }

    fn column<'b>(&self, b: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
        b.column_by_name(name)
            .ok_or_else(|| bad(self.path, format!("a section has no column {name}")))
    }

    /// A group set like `like`'s: its keys of the same types, each state of the same kind
    /// and types (an exact float sum's window and digits forms stand for each other).
    fn grouped(&mut self, like: &Like) -> Result<Grouped> {
        let keys = self.section()?;
        let groups = keys.num_rows();
        let types = |b: &RecordBatch| -> Vec<DataType> {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        };
        if types(&keys) != like.keys {
            return Err(bad(self.path, "a group set's keys are of other types"));
        }
        let mut out = Vec::with_capacity(like.states.len());
        for expected in &like.states {
            let b = self.section()?;
            let fields = |b: &Schema| -> Vec<(String, DataType)> {
                b.fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().clone()))
                    .collect()
            };
            let (got, want) = (fields(&b.schema()), fields(expected));
            let kind = |f: &[(String, DataType)]| match f.first().map(|f| f.0.as_str()) {
                // An exact float sum's window and digits forms stand for each other.
                Some("sum_slots" | "moments") => "sums".to_string(),
                other => other.unwrap_or_default().to_string(),
            };
            // The same kind, and a column both have of the same type (an empty state of
            // squares leaves its column out).
            let same_types = got
                .iter()
                .all(|(n, t)| want.iter().all(|(m, u)| n != m || t == u));
            if kind(&got) != kind(&want) || !same_types {
                return Err(bad(
                    self.path,
                    "a state is of another kind than its aggregate's",
                ));
            }
            out.push(self.state(&b, groups)?);
        }
        Ok(Grouped {
            groups,
            keys: keys.columns().to_vec(),
            states: out,
        })
    }

    fn decoded(&self, a: &ArrayRef) -> Result<Vec<ExactSum>> {
        let a = a
            .as_binary_opt::<i32>()
            .ok_or_else(|| bad(self.path, "an exact sum is not binary"))?;
        a.iter()
            .map(|v| {
                ExactSum::decode(v.unwrap_or_default()).map_err(|e| bad(self.path, e.to_string()))
            })
            .collect()
    }

    fn i64s(&self, b: &RecordBatch, name: &str) -> Result<Vec<i64>> {
        Ok(self
            .column(b, name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad(self.path, format!("{name} is not Int64")))?
            .values()
            .to_vec())
    }

    fn u64s(&self, b: &RecordBatch, name: &str) -> Result<Vec<u64>> {
        Ok(self
            .column(b, name)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| bad(self.path, format!("{name} is not UInt64")))?
            .values()
            .to_vec())
    }

    fn state(&self, b: &RecordBatch, groups: usize) -> Result<State> {
        let kind = b
            .schema()
            .fields()
            .first()
            .map(|f| f.name().clone())
            .unwrap_or_default();
        let state = match kind.as_str() {
            "count" => State::Count(self.u64s(b, "count")?),
            "int_sum" => {
                let sums = self
                    .column(b, "int_sum")?
                    .as_fixed_size_binary_opt()
                    .filter(|a| a.value_length() == 16)
                    .ok_or_else(|| bad(self.path, "int_sum is not 16-byte binary"))?;
                State::IntSum {
                    sums: (0..sums.len())
                        .map(|i| i128::from_le_bytes(sums.value(i).try_into().expect("16")))
                        .collect(),
                    high: self.i64s(b, "high")?,
                    n: self.u64s(b, "n")?,
                }
            }
            "sum_slots" => {
                let sums = self.decoded(self.column(b, "sum_slots")?)?;
                let mut slots = SumSlots::default();
                slots.resize(sums.len());
                for (g, s) in sums.iter().enumerate() {
                    slots.merge(g, s);
                }
                State::Sums {
                    slots,
                    n: self.u64s(b, "n")?,
                }
            }
            "moments" => State::Moments {
                sum: self.decoded(self.column(b, "moments")?)?,
                squares: match b.column_by_name("squares") {
                    Some(a) => self.decoded(a)?,
                    None => Vec::new(),
                },
                n: self.u64s(b, "n")?,
            },
            "best" => State::Extreme(self.column(b, "best")?.clone()),
            "pair_group" => State::Distinct {
                groups,
                pair_group: self
                    .column(b, "pair_group")?
                    .as_primitive_opt::<UInt32Type>()
                    .ok_or_else(|| bad(self.path, "pair_group is not UInt32"))?
                    .values()
                    .to_vec(),
                values: self.column(b, "value")?.clone(),
            },
            other => return Err(bad(self.path, format!("an unknown state '{other}'"))),
        };
        if let State::Distinct { pair_group, .. } = &state {
            if pair_group.iter().any(|&g| g as usize >= groups) {
                return Err(bad(self.path, "a count(DISTINCT) pair names no group"));
            }
        }
        let len = match &state {
            State::Distinct { .. } => groups,
            State::Extreme(a) => a.len(),
            State::Count(n) | State::IntSum { n, .. } | State::Sums { n, .. } => n.len(),
            State::Moments { n, .. } => n.len(),
        };
        if len != groups {
            return Err(bad(self.path, "a state's groups differ from its keys'"));
        }
        Ok(state)
    }
}

fn one_i64(r: &Reader, b: &RecordBatch, name: &str) -> Result<Option<i64>> {
    if b.num_rows() != 1 {
        return Err(bad(r.path, "a one-row section holds other than one row"));
    }
    let a = r
        .column(b, name)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| bad(r.path, format!("{name} is not Int64")))?;
    Ok(a.is_valid(0).then(|| a.value(0)))
}

fn one_u64(r: &Reader, b: &RecordBatch, name: &str) -> Result<u64> {
    if b.num_rows() != 1 {
        return Err(bad(r.path, "a one-row section holds other than one row"));
    }
    Ok(r.u64s(b, name)?.first().copied().unwrap_or_default())
}

/// What a group set of `agg` looks like: its key types (window or session id first) and
/// each state's schema, from an empty batch's group-by.
struct Like {
    keys: Vec<DataType>,
    states: Vec<SchemaRef>,
}

impl Like {
    fn of(agg: &WindowAggregator) -> Result<Like> {
        let empty = RecordBatch::new_empty(agg.grouped_schema.clone());
        let g = crate::cpu::group_by::partial(&empty, &agg.plan, crate::cpu::Threads::ONE)?;
        Ok(Like {
            keys: g.keys.iter().map(|k| k.data_type().clone()).collect(),
            states: g
                .states
                .iter()
                .map(|s| Ok(state_batch(s, 0)?.schema()))
                .collect::<Result<_>>()?,
        })
    }

    /// A fixed window's group set: the window id is not among its keys.
    fn without_first_key(&self) -> Like {
        Like {
            keys: self.keys[1..].to_vec(),
            states: self.states.clone(),
        }
    }
}

/// Reads the state in `path` into `agg` (fresh, made with the same arguments): the
/// position saved with it.
pub(super) fn restore(agg: &mut WindowAggregator, path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| bad(path, e.to_string()))?;
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return Err(bad(path, "not an arrow-wgpu window checkpoint"));
    };
    let mut r = Reader { bytes: body, path };
    let meta = r.section()?;
    if meta.num_rows() != 1 {
        return Err(bad(path, "its first section holds other than one row"));
    }
    let text = |name: &str| -> Result<String> {
        Ok(r.column(&meta, name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| bad(path, format!("{name} is not text")))?
            .value(0)
            .to_string())
    };
    let theirs = text("fingerprint")?;
    let ours = fingerprint(agg);
    if theirs != ours {
        return Err(bad(
            path,
            format!(
                "it was written for another aggregation or version: {theirs}; this one is {ours}"
            ),
        ));
    }
    let position = text("position")?;
    agg.stats.watermark = one_i64(&r, &meta, "watermark")?;
    agg.stats.batches = one_u64(&r, &meta, "batches")?;
    agg.stats.rows = one_u64(&r, &meta, "rows")?;
    agg.stats.late_rows = one_u64(&r, &meta, "late_rows")?;
    agg.stats.emitted_windows = one_u64(&r, &meta, "emitted_windows")?;
    agg.stats.emissions = one_u64(&r, &meta, "emissions")?;
    let sections = one_u64(&r, &meta, "sections")? as usize;
    for _ in 0..one_u64(&r, &meta, "late_batches")? {
        agg.late.push(r.section()?);
    }
    let like = Like::of(agg)?;
    match &mut agg.store {
        Store::Fixed(open) => {
            for _ in 0..sections {
                let bounds = r.section()?;
                let end = one_i64(&r, &bounds, "end")?.ok_or_else(|| bad(path, "no end"))?;
                let start = one_i64(&r, &bounds, "start")?.ok_or_else(|| bad(path, "no start"))?;
                let mut merger = Merger::new();
                merger.push(&agg.plan, r.grouped(&like.without_first_key())?)?;
                open.insert((end, start), merger);
            }
        }
        Store::Sessions(s) => {
            s.next_id = one_i64(&r, &meta, "next_id")?.unwrap_or_default();
            s.earliest_end = one_i64(&r, &meta, "earliest_end")?.unwrap_or(i64::MAX);
            let open = r.section()?;
            let keys = r
                .column(&open, "key")?
                .as_binary_opt::<i32>()
                .ok_or_else(|| bad(path, "session keys are not binary"))?
                .clone();
            let int = |name: &str| r.i64s(&open, name);
            let (starts, ends, ids) = (int("start")?, int("end")?, int("id")?);
            for i in 0..keys.len() {
                s.open.entry_ref(keys.value(i)).or_default().push(Session {
                    start: starts[i],
                    end: ends[i],
                    id: ids[i],
                });
            }
            for list in s.open.values_mut() {
                list.sort_by_key(|o| o.start);
            }
            let forward = r.section()?;
            s.forward = r
                .i64s(&forward, "from")?
                .into_iter()
                .zip(r.i64s(&forward, "to")?)
                .collect();
            // Sessions merge into later ones: a forward to an earlier id (a cycle) is no
            // checkpoint of ours.
            if s.forward.iter().any(|(from, to)| to <= from) {
                return Err(bad(path, "a merged session points back"));
            }
            for _ in 0..sections {
                s.parts.push(r.grouped(&like)?);
            }
            restore_sessions_check(s, path)?;
        }
    }
    if !r.bytes.is_empty() {
        return Err(bad(path, "bytes after the last section"));
    }
    Ok(position)
}

/// The sessions read make sense: every part's groups belong to an open session.
fn restore_sessions_check(s: &Sessions, path: &Path) -> Result<()> {
    let open: std::collections::HashSet<i64> = s.open.values().flatten().map(|o| o.id).collect();
    for part in &s.parts {
        let ids = part
            .keys
            .first()
            .and_then(|k| k.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| bad(path, "a session part has no session ids"))?;
        if ids
            .values()
            .iter()
            .any(|&id| !open.contains(&s.resolve(id)))
        {
            return Err(bad(path, "a session part belongs to no open session"));
        }
    }
    Ok(())
}
