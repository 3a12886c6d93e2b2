//! `arrow-wgpu query`: filter, group-by, distinct, sort and limit over streamed batches.
//!
//! The steps form a push pipeline in SQL's order. Each input batch goes through the steps
//! and on to the output. Filter streams; group-by merges each batch's partial aggregates
//! exactly and holds the groups; distinct keeping first rows streams them out, with a
//! host-side set of the keys seen before; distinct keeping last or unique rows holds one
//! candidate row per key; a sort with a limit holds the best N rows. Only a full sort
//! holds its whole input, and sorts it at the end.
//!
//! Every step is checked against the input's schema (on an empty batch, by the CPU path)
//! before any output file is created or any data is read, so an unknown column or an
//! expression that doesn't type-check fails at once and leaves nothing behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use arrow_wgpu::{
    Agg, Backend, Engine, Expr, GroupByAccumulator, GroupByOptions, Keep, Phase, RanOn, SortKey,
};
use hashbrown::HashMap;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::args::{KeepArg, QueryArgs};
use crate::keys::KeySet;
use crate::read::Input;
use crate::sql;
use crate::write::{FileSink, Sink, TableSink, TABLE_ROWS};

/// How long an input may run before a progress bar appears.
const PROGRESS_AFTER: Duration = Duration::from_millis(800);

pub fn run(args: QueryArgs) -> Result<()> {
    let started = Instant::now();
    let input = Input::open(&args.files, args.batch_rows)?;
    let engine = Engine::new(args.backend.into()).context("opening the engine")?;
    let check = Engine::new(Backend::Cpu)?;
    let mut schema = input.schema();
    let mut stages: Vec<Stage> = Vec::new();

    if let Some(text) = &args.filter {
        let predicate = sql::parse_predicate(text, &schema)?;
        check
            .filter(&RecordBatch::new_empty(schema.clone()), &predicate)
            .with_context(|| format!("--filter `{text}`"))?;
        stages.push(Stage::Filter(predicate));
    }
    if !args.group_by.is_empty() || args.agg.is_some() {
        let keys = sql::resolve_columns(&args.group_by, &schema);
        let aggs = match &args.agg {
            Some(text) => sql::parse_aggs(text, &schema)?,
            None => Vec::new(),
        };
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let accumulator = engine
            .group_by_accumulator(schema.clone(), &key_refs, &aggs, GroupByOptions::default())
            .context("--group-by / --agg")?;
        let out_schema = accumulator.schema();
        stages.push(Stage::GroupBy(
            Some(accumulator),
            describe_group_by(&keys, &aggs),
        ));
        schema = out_schema;
    }
    if !args.distinct.is_empty() {
        let keys = sql::resolve_columns(&args.distinct, &schema);
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        check
            .distinct(
                &RecordBatch::new_empty(schema.clone()),
                &key_refs,
                Keep::First,
            )
            .context("--distinct")?;
        stages.push(match args.keep {
            KeepArg::First | KeepArg::Any => Stage::DistinctFirst {
                keep: if args.keep == KeepArg::Any {
                    Keep::Any
                } else {
                    Keep::First
                },
                converter: key_converter(&schema, &key_refs)?,
                seen: KeySet::default(),
                keys,
            },
            KeepArg::Last | KeepArg::None => Stage::DistinctHeld(Box::new(HeldDistinct {
                keep: if args.keep == KeepArg::Last {
                    Keep::Last
                } else {
                    Keep::None
                },
                converter: key_converter(&schema, &key_refs)?,
                keys,
                keys_seen: KeySet::default(),
                candidates: Vec::new(),
                held: Vec::new(),
                held_rows: 0,
                next_row: 0,
                slack_rows: HELD_SLACK_ROWS,
                schema: schema.clone(),
            })),
        });
    }
    if let Some(text) = &args.sort {
        let keys = sql::parse_sort(text, &schema)?;
        check
            .sort(&RecordBatch::new_empty(schema.clone()), &keys, None)
            .with_context(|| format!("--sort `{text}`"))?;
        stages.push(match args.limit {
            Some(limit) => Stage::TopN {
                keys,
                limit,
                best: None,
            },
            None => Stage::SortAll {
                keys,
                batches: Vec::new(),
                schema: schema.clone(),
            },
        });
    }
    if let Some(limit) = args.limit {
        stages.push(Stage::Limit { remaining: limit });
    }

    let sink = match &args.out {
        Some(path) => Sink::File(Box::new(FileSink::create(path, &schema)?)),
        None => Sink::Table(TableSink::new(args.limit.unwrap_or(TABLE_ROWS))),
    };
    let mut pipeline = Pipeline {
        stages,
        sink,
        ctx: Ctx {
            engine,
            profile: args.profile.then(Totals::default),
        },
    };

    let mut progress = Progress::new(input.total_rows, args.quiet);
    let mut input = input;
    loop {
        let read_start = Instant::now();
        let Some(batch) = input.next() else { break };
        let batch = batch?;
        pipeline.ctx.add_io("read", read_start.elapsed());
        progress.advance(batch.num_rows() as u64);
        pipeline.push(batch)?;
        if pipeline.done() {
            break;
        }
    }
    progress.finish();
    pipeline.finish(&schema)?;
    if let Some(totals) = &pipeline.ctx.profile {
        eprint!("{}", totals.render(started.elapsed(), args.backend));
    }
    Ok(())
}

fn describe_group_by(keys: &[String], aggs: &[Agg]) -> String {
    format!(
        "[{}] {}",
        keys.join(", "),
        aggs.iter().map(Agg::name).collect::<Vec<_>>().join(", ")
    )
}

/// A row-format converter for the key columns, whose encodings are equal exactly when the
/// library's distinct calls the keys equal.
fn key_converter(schema: &SchemaRef, keys: &[&str]) -> Result<RowConverter> {
    let fields = keys
        .iter()
        .map(|k| {
            let field = schema.field_with_name(k)?;
            Ok(SortField::new(field.data_type().clone()))
        })
        .collect::<Result<Vec<_>, arrow::error::ArrowError>>()?;
    Ok(RowConverter::new(fields)?)
}

/// A key's candidate row for [`HeldDistinct`].
#[derive(Clone, Copy)]
struct Candidate {
    /// The row's index in the whole input.
    global: u64,
    /// Where its values are held: `(batch, row)` in [`HeldDistinct::held`]; `None` once
    /// the key is known to repeat under `Keep::None`, whose rows are never output.
    at: Option<(u32, u32)>,
}

/// Distinct keeping the last row of each key (`Keep::Last`) or only the keys that occur
/// once (`Keep::None`). Nothing can be output before the input ends, but only one
/// candidate row per key is held, not the input: each batch is reduced on the engine to
/// its own last (or first) row per key, which replaces (or, seen twice, disqualifies) the
/// key's candidate from earlier batches. At the end the candidates come out in input order,
/// as the library's distinct gives them for the whole input at once.
struct HeldDistinct {
    keys: Vec<String>,
    keep: Keep,
    converter: RowConverter,
    /// The keys seen, numbered; `candidates[n]` is key `n`'s candidate.
    keys_seen: KeySet,
    candidates: Vec<Candidate>,
    /// The batches candidate rows point into (superseded rows are dropped by `compact`).
    held: Vec<RecordBatch>,
    held_rows: usize,
    /// The input index of the next batch's first row.
    next_row: u64,
    /// Held rows beyond twice the candidates that trigger a compaction.
    slack_rows: usize,
    schema: SchemaRef,
}

impl HeldDistinct {
    fn push(&mut self, batch: &RecordBatch, ctx: &mut Ctx) -> Result<()> {
        let key_refs: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        // Each key's row in this batch, and, for Keep::None, the keys this batch has once.
        let (rows, once) = match self.keep {
            Keep::Last => (
                ctx.call(|e| e.distinct_indices(batch, &key_refs, Keep::Last))?,
                None,
            ),
            _ => (
                ctx.call(|e| e.distinct_indices(batch, &key_refs, Keep::First))?,
                Some(ctx.call(|e| e.distinct_indices(batch, &key_refs, Keep::None))?),
            ),
        };
        let kept = take_record_batch(batch, &rows)?;
        let columns: Vec<_> = key_refs
            .iter()
            .map(|k| kept.column_by_name(k).expect("checked").clone())
            .collect();
        let encoded = self.converter.convert_columns(&columns)?;
        let batch_no = u32::try_from(self.held.len()).context("too many batches held")?;
        for (i, &row) in rows.values().iter().enumerate() {
            let global = self.next_row + row as u64;
            // Under Keep::None a key whose first row here isn't one of this batch's
            // single rows repeats within the batch.
            let repeats_here = once
                .as_ref()
                .is_some_and(|once| once.values().binary_search(&row).is_err());
            let at = (!repeats_here).then_some((batch_no, i as u32));
            let (key, new) = self.keys_seen.insert(encoded.row(i).as_ref());
            if new {
                self.candidates.push(Candidate { global, at });
            } else {
                let c = &mut self.candidates[key];
                match self.keep {
                    Keep::Last => *c = Candidate { global, at },
                    _ => c.at = None,
                }
            }
        }
        self.held_rows += kept.num_rows();
        self.held.push(kept);
        self.next_row += batch.num_rows() as u64;
        if self.held_rows > 2 * self.keys_seen.len() + self.slack_rows {
            self.compact()?;
        }
        Ok(())
    }

    /// The live candidates, in input order.
    fn live(&self) -> Vec<(u64, (u32, u32))> {
        let mut live: Vec<(u64, (u32, u32))> = self
            .candidates
            .iter()
            .filter_map(|c| c.at.map(|at| (c.global, at)))
            .collect();
        live.sort_unstable();
        live
    }

    fn gather(&self, live: &[(u64, (u32, u32))]) -> Result<RecordBatch> {
        if live.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let batches: Vec<&RecordBatch> = self.held.iter().collect();
        let at: Vec<(usize, usize)> = live
            .iter()
            .map(|(_, (b, r))| (*b as usize, *r as usize))
            .collect();
        Ok(arrow::compute::interleave_record_batch(&batches, &at)?)
    }

    /// Drops the held rows no candidate points to: one batch of the live ones.
    fn compact(&mut self) -> Result<()> {
        let live = self.live();
        let gathered = self.gather(&live)?;
        let new_at: HashMap<(u32, u32), u32> = live
            .iter()
            .enumerate()
            .map(|(i, (_, at))| (*at, i as u32))
            .collect();
        for c in &mut self.candidates {
            c.at = c.at.map(|at| (0, new_at[&at]));
        }
        self.held_rows = gathered.num_rows();
        self.held = vec![gathered];
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let out = self.gather(&self.live())?;
        self.held.clear();
        self.candidates = Vec::new();
        self.keys_seen = KeySet::default();
        Ok(out)
    }
}

/// Rows [`HeldDistinct`] may hold beyond twice its candidates before it compacts them.
const HELD_SLACK_ROWS: usize = 1 << 16;

/// One step of the pipeline.
enum Stage {
    Filter(Expr),
    GroupBy(Option<GroupByAccumulator>, String),
    /// Distinct keeping the first row of each key: each batch's own distinct rows (on the
    /// engine), less the keys an earlier batch had (their row-format encodings, on the host).
    DistinctFirst {
        keys: Vec<String>,
        keep: Keep,
        converter: RowConverter,
        seen: KeySet,
    },
    /// The best `limit` rows so far by `keys`: each batch is sorted with the best before it
    /// (first, so ties keep input order) and cut to `limit`.
    TopN {
        keys: Vec<SortKey>,
        limit: usize,
        best: Option<RecordBatch>,
    },
    DistinctHeld(Box<HeldDistinct>),
    /// A full sort: the whole input, sorted at the end.
    SortAll {
        keys: Vec<SortKey>,
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
    },
    Limit {
        remaining: usize,
    },
}

struct Ctx {
    engine: Engine,
    profile: Option<Totals>,
}

impl Ctx {
    /// Runs one engine call, adding its profile to the totals when profiling.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&Engine) -> arrow_wgpu::Result<T>,
    ) -> arrow_wgpu::Result<T> {
        match &mut self.profile {
            None => f(&self.engine),
            Some(totals) => {
                let (out, profile) = self.engine.profiled(f)?;
                totals.add(&profile);
                Ok(out)
            }
        }
    }

    fn add_io(&mut self, what: &'static str, d: Duration) {
        if let Some(t) = &mut self.profile {
            *t.io.entry(what).or_default() += d;
        }
    }
}

impl Stage {
    /// Feeds one batch; returns what the step passes on now.
    fn push(&mut self, batch: RecordBatch, ctx: &mut Ctx) -> Result<Vec<RecordBatch>> {
        Ok(match self {
            Stage::Filter(predicate) => vec![ctx.call(|e| e.filter(&batch, predicate))?],
            Stage::GroupBy(acc, _) => {
                let acc = acc.as_mut().expect("pushed before finish");
                ctx.call(|_| acc.push(&batch))?;
                Vec::new()
            }
            Stage::DistinctFirst {
                keys,
                keep,
                converter,
                seen,
            } => {
                let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let firsts = ctx.call(|e| e.distinct(&batch, &key_refs, *keep))?;
                let columns = key_refs
                    .iter()
                    .map(|k| firsts.column_by_name(k).expect("checked").clone())
                    .collect::<Vec<_>>();
                let rows = converter.convert_columns(&columns)?;
                let new: Vec<u32> = (0..rows.num_rows())
                    .filter(|&i| seen.insert(rows.row(i).as_ref()).1)
                    .map(|i| i as u32)
                    .collect();
                if new.len() == firsts.num_rows() {
                    vec![firsts]
                } else {
                    vec![take_record_batch(&firsts, &UInt32Array::from(new))?]
                }
            }
            Stage::TopN { keys, limit, best } => {
                let candidates = match best.take() {
                    Some(b) => concat_batches(&batch.schema(), [&b, &batch])?,
                    None => batch,
                };
                *best = Some(ctx.call(|e| e.sort(&candidates, keys, Some(*limit)))?);
                Vec::new()
            }
            Stage::DistinctHeld(held) => {
                held.push(&batch, ctx)?;
                Vec::new()
            }
            Stage::SortAll { batches, .. } => {
                batches.push(batch);
                Vec::new()
            }
            Stage::Limit { remaining } => {
                let take = batch.num_rows().min(*remaining);
                *remaining -= take;
                if take == 0 {
                    Vec::new()
                } else {
                    vec![batch.slice(0, take)]
                }
            }
        })
    }

    /// The input has ended; returns what the step still holds.
    fn finish(&mut self, ctx: &mut Ctx) -> Result<Vec<RecordBatch>> {
        Ok(match self {
            Stage::GroupBy(acc, what) => {
                let acc = acc.take().expect("finished once");
                vec![ctx
                    .call(|_| acc.finish())
                    .with_context(|| format!("group-by {what}"))?]
            }
            Stage::TopN { best, .. } => best.take().into_iter().collect(),
            Stage::DistinctHeld(held) => vec![held.finish()?],
            Stage::SortAll {
                keys,
                batches,
                schema,
            } => {
                let all = concat_batches(schema, batches.iter())?;
                batches.clear();
                vec![ctx.call(|e| e.sort(&all, keys, None))?]
            }
            Stage::Filter(_) | Stage::DistinctFirst { .. } | Stage::Limit { .. } => Vec::new(),
        })
    }
}

struct Pipeline {
    stages: Vec<Stage>,
    sink: Sink,
    ctx: Ctx,
}

impl Pipeline {
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.feed(0, batch)
    }

    /// Feeds `batch` to step `from` and what comes out to the steps after it.
    fn feed(&mut self, from: usize, batch: RecordBatch) -> Result<()> {
        if from == self.stages.len() {
            if batch.num_rows() > 0 {
                let start = Instant::now();
                self.sink.write(&batch)?;
                self.ctx.add_io("write", start.elapsed());
            }
            return Ok(());
        }
        let out = self.stages[from].push(batch, &mut self.ctx)?;
        for b in out {
            self.feed(from + 1, b)?;
        }
        Ok(())
    }

    /// Whether the output is complete (a limit reached): reading can stop.
    fn done(&self) -> bool {
        matches!(self.stages.last(), Some(Stage::Limit { remaining: 0 }))
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<()> {
        for i in 0..self.stages.len() {
            let out = self.stages[i].finish(&mut self.ctx)?;
            for b in out {
                self.feed(i + 1, b)?;
            }
        }
        let start = Instant::now();
        let sink = std::mem::replace(&mut self.sink, Sink::Table(TableSink::new(0)));
        sink.finish(schema)?;
        self.ctx.add_io("write", start.elapsed());
        Ok(())
    }
}

/// One operation on one backend, over the whole run.
#[derive(Default)]
struct StepTotal {
    calls: usize,
    /// Time in each of [`PHASES`].
    phases: [Duration; 4],
    /// Why it fell back to the CPU, each reason once.
    fallbacks: Vec<String>,
}

/// Time per phase for each operation and backend, over the whole run.
#[derive(Default)]
struct Totals {
    /// (operation, where it ran) -> its totals.
    steps: BTreeMap<(String, String), StepTotal>,
    io: BTreeMap<&'static str, Duration>,
}

const PHASES: [Phase; 4] = [Phase::Upload, Phase::Kernels, Phase::Download, Phase::Cpu];

impl Totals {
    fn add(&mut self, profile: &arrow_wgpu::Profile) {
        for step in &profile.steps {
            let on = match &step.ran_on {
                RanOn::Gpu(name) => format!("GPU ({name})"),
                RanOn::Cpu => "CPU".to_string(),
            };
            let entry = self
                .steps
                .entry((step.operation.to_string(), on))
                .or_default();
            entry.calls += 1;
            for (i, phase) in PHASES.iter().enumerate() {
                entry.phases[i] += step.time_in(*phase);
            }
            if let Some(why) = &step.fallback {
                if !entry.fallbacks.contains(why) {
                    entry.fallbacks.push(why.clone());
                }
            }
        }
    }

    fn render(&self, wall: Duration, backend: crate::args::BackendArg) -> String {
        let ms = |d: Duration| {
            if d.is_zero() {
                "-".to_string()
            } else {
                format!("{:.1} ms", d.as_secs_f64() * 1e3)
            }
        };
        let mut out = format!(
            "profile (--backend {backend:?}, wall {:.1} ms)\n{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  ran on\n",
            wall.as_secs_f64() * 1e3,
            "step",
            "calls",
            "read",
            "upload",
            "kernels",
            "download",
            "cpu",
            "write"
        )
        .to_ascii_lowercase();
        let io = |what| self.io.get(what).copied().unwrap_or_default();
        out += &format!(
            "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  host\n",
            "read",
            "",
            ms(io("read")),
            "-",
            "-",
            "-",
            "-",
            "-"
        );
        for ((op, on), total) in &self.steps {
            let (calls, t, fallbacks) = (total.calls, &total.phases, &total.fallbacks);
            out += &format!(
                "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  {on}\n",
                op,
                calls,
                "-",
                ms(t[0]),
                ms(t[1]),
                ms(t[2]),
                ms(t[3]),
                "-"
            );
            for why in fallbacks {
                out += &format!("{:<10} fell back to the CPU: {why}\n", "");
            }
        }
        out += &format!(
            "{:<10} {:>6} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}  host\n",
            "write",
            "",
            "-",
            "-",
            "-",
            "-",
            "-",
            ms(io("write"))
        );
        out
    }
}

/// A progress bar on stderr (rows, rows/s), shown once the input takes more than a
/// moment, and only on a terminal.
struct Progress {
    start: Instant,
    rows: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(total: Option<u64>, quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            rows: 0,
            total,
            bar: None,
            quiet,
        }
    }

    fn advance(&mut self, rows: u64) {
        self.rows += rows;
        if self.bar.is_none() && !self.quiet && self.start.elapsed() > PROGRESS_AFTER {
            let (bar, template) = match self.total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({rate}, eta {eta})",
                ),
                None => (
                    ProgressBar::no_length(),
                    "{spinner} [{elapsed_precise}] {human_pos} rows ({rate})",
                ),
            };
            // The mean rate since the start: indicatif's own `per_sec` is an estimate that
            // the jump to the rows read before the bar appeared throws off.
            let style = ProgressStyle::with_template(template)
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let rate = state.pos() as f64 / state.elapsed().as_secs_f64().max(1e-3);
                        let _ = write!(w, "{} rows/s", crate::report::si(rate));
                    },
                );
            self.bar = Some(bar.with_style(style).with_elapsed(self.start.elapsed()));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.rows);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int32Array, Int64Array};

    use super::*;

    /// Held distinct, compacting after every batch, equals the library's distinct over the
    /// whole input, for batches of every size.
    #[test]
    fn held_distinct_with_compaction_equals_one_batch_distinct() {
        let n = 300;
        let batch = RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(Int32Array::from_iter(
                    (0..n).map(|i| ((i * 7919) % 41 != 0).then_some((i * 31) % 97)),
                )) as ArrayRef,
            ),
            ("row", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ])
        .unwrap();
        let engine = Engine::new(Backend::Cpu).unwrap();
        for keep in [Keep::Last, Keep::None] {
            let want = engine.distinct(&batch, &["k"], keep).unwrap();
            for size in [1, 7, 64, 300] {
                for slack_rows in [0, 1 << 16] {
                    let mut held = HeldDistinct {
                        keys: vec!["k".into()],
                        keep,
                        converter: key_converter(&batch.schema(), &["k"]).unwrap(),
                        keys_seen: KeySet::default(),
                        candidates: Vec::new(),
                        held: Vec::new(),
                        held_rows: 0,
                        next_row: 0,
                        slack_rows,
                        schema: batch.schema(),
                    };
                    let mut ctx = Ctx {
                        engine: engine.clone(),
                        profile: None,
                    };
                    for start in (0..n as usize).step_by(size) {
                        let part = batch.slice(start, size.min(n as usize - start));
                        held.push(&part, &mut ctx).unwrap();
                    }
                    let got = held.finish().unwrap();
                    assert_eq!(got, want, "{keep:?}, batches of {size}, slack {slack_rows}");
                }
            }
        }
    }
}
