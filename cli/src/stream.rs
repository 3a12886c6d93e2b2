//! `arrow-wgpu stream`: event-time windows over an Arrow IPC stream, on the library's
//! [`WindowAggregator`].
//!
//! The input is read batch by batch (a file, the files of a folder in name order, or
//! standard input); each batch goes to the aggregator, and the windows it closes are
//! written at once: to standard output as an IPC stream, or to `--out DIR`, one IPC file a
//! batch of windows, numbered by the aggregator's emission count.
//!
//! **Exactly once after a crash.** With `--checkpoint`, the aggregator's state is saved
//! (atomically) after the windows of a batch are written, with the input position: the
//! file and how many of its batches were read. A run that finds a checkpoint restores it
//! and skips the input up to that position. Everything after it is computed again from
//! the same batches, so each file written after the save is written again with the same
//! name and the same bytes: the folder ends as an uninterrupted run leaves it.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Stdout, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use arrow::array::{make_array, Array, ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::StreamWriter;
use arrow::util::display::array_value_to_string;
use arrow_wgpu::{Agg, Engine, Watermark, Window, WindowAggregator, WindowOptions};
use indicatif::ProgressBar;

use crate::args::StreamArgs;
use crate::sql;
use crate::write::FileSink;

/// The checkpoint's file in `--checkpoint DIR`.
const STATE: &str = "state";

pub fn run(args: StreamArgs) -> Result<()> {
    let started = Instant::now();
    let mut input = Input::open(args.source.as_deref(), args.follow)?;
    let schema = input.schema.clone();
    let (time, window) = parse_window(&args.window, &schema)?;
    let watermark = match &args.watermark {
        Some(text) => parse_watermark(text, &time, &schema)?,
        None => Watermark::Delay(Duration::ZERO),
    };
    let mut options = WindowOptions::new(time.clone(), window).watermark(watermark);
    if args.late_out.is_some() {
        options = options.keep_late();
    }
    let keys = sql::resolve_columns(&args.group_by, &schema);
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let aggs = match &args.agg {
        Some(text) => sql::parse_aggs(text, &schema)?,
        None => vec![Agg::count_star()],
    };
    let every = parse_every(&args.checkpoint_every)?;
    let engine = Engine::new(args.backend.into())?;

    let state = args.checkpoint.as_ref().map(|dir| dir.join(STATE));
    let mut agg = match &state {
        Some(path) if path.exists() => {
            let (agg, position) = engine
                .restore_window_aggregator(path, schema.clone(), options, &key_refs, &aggs)
                .context("resuming from the checkpoint")?;
            let position = Position::parse(&position)?;
            input.skip_to(&position)?;
            if !args.quiet {
                eprintln!(
                    "stream: resuming from {} ({})",
                    path.display(),
                    position.describe()
                );
            }
            agg
        }
        _ => engine
            .window_aggregator(schema.clone(), options, &key_refs, &aggs)
            .context("--window / --group-by / --agg")?,
    };
    if let Some(dir) = &args.checkpoint {
        prepare_folder(dir, "--checkpoint")?;
    }
    if let Some(dir) = &args.late_out {
        prepare_folder(dir, "--late-out")?;
    }
    let mut out = Output::open(args.out.as_deref(), &agg.schema())?;
    let mut progress = Progress::new(
        args.quiet,
        &schema.field(schema.index_of(&time)?).data_type().clone(),
    );
    let mut saved = (agg.stats().batches, Instant::now());
    while let Some((batch, position)) = input.next()? {
        let closed = agg.push(&batch).with_context(|| position.describe())?;
        let stats = agg.stats();
        if let Some(closed) = closed {
            out.write(&closed, stats.emissions)?;
        }
        if let Some(dir) = &args.late_out {
            let late = agg.take_late();
            if !late.is_empty() {
                let target = dir.join(format!("late-{:010}.arrow", stats.batches));
                let mut sink = FileSink::create(&target, &schema)?;
                for b in &late {
                    sink.write(b)?;
                }
                sink.finish()?;
            }
        }
        progress.update(&agg, started);
        if let Some(path) = &state {
            let due = match every {
                Every::Batches(n) => stats.batches - saved.0 >= n,
                Every::Time(d) => saved.1.elapsed() >= d,
            };
            if due {
                out.sync()?;
                agg.save(path, &position.to_string())?;
                saved = (stats.batches, Instant::now());
            }
        }
    }
    if let Some(path) = &state {
        out.sync()?;
        agg.save(path, &input.position().to_string())?;
    }
    let before = agg.stats();
    if let Some(rest) = agg.finish()? {
        out.write(&rest, before.emissions + 1)?;
    }
    out.finish()?;
    progress.done(&before, started);
    Ok(())
}

/// A duration: `INTERVAL '1 minute'`, `INTERVAL '1' MINUTE`, `'90 seconds'`,
/// `1 hour 30 minutes`, `500ms`, `2s`, `5m`, `1h`, `1d` (decimals too: `1.5 seconds`).
pub fn parse_interval(text: &str) -> Result<Duration> {
    let t = text.trim();
    let t = match t.get(..8) {
        Some(head) if head.eq_ignore_ascii_case("interval") => &t[8..],
        _ => t,
    };
    // Quotes only group: INTERVAL '1' MINUTE is "1 MINUTE".
    let t = t.replace('\'', " ");
    // "5m" and "5 m" alike: split numbers from units.
    let mut tokens: Vec<String> = Vec::new();
    for word in t.split_whitespace() {
        let cut = word
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(word.len());
        let (number, unit) = word.split_at(cut);
        for part in [number, unit] {
            if !part.is_empty() {
                tokens.push(part.to_ascii_lowercase());
            }
        }
    }
    if tokens.is_empty() || !tokens.len().is_multiple_of(2) {
        bail!("`{text}` is not an interval (such as INTERVAL '1 minute' or 30s)");
    }
    let mut total: u128 = 0;
    for pair in tokens.chunks(2) {
        let nanos: u128 = match pair[1].trim_end_matches('s') {
            "n" | "nanosecond" => 1,
            "u" | "µ" | "microsecond" => 1_000,
            "m" if pair[1] == "ms" => 1_000_000,
            "millisecond" | "milli" => 1_000_000,
            "" | "sec" | "second" => 1_000_000_000,
            "m" | "min" | "minute" => 60_000_000_000,
            "h" | "hour" | "hr" => 3_600_000_000_000,
            "d" | "day" => 86_400_000_000_000,
            "w" | "week" => 7 * 86_400_000_000_000,
            _ => bail!("`{text}`: unknown unit `{}`", pair[1]),
        };
        let (whole, fraction) = pair[0].split_once('.').unwrap_or((&pair[0], ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .with_context(|| format!("`{text}`: `{}` is not a number", pair[0]))?
        };
        let mut value = whole
            .checked_mul(nanos)
            .with_context(|| format!("`{text}` is too long"))?;
        let mut scale = nanos;
        for digit in fraction.chars() {
            let d = digit
                .to_digit(10)
                .with_context(|| format!("`{text}`: `{}` is not a number", pair[0]))?;
            if !scale.is_multiple_of(10) {
                bail!("`{text}`: finer than a nanosecond");
            }
            scale /= 10;
            value += d as u128 * scale;
        }
        total = total
            .checked_add(value)
            .with_context(|| format!("`{text}` is too long"))?;
    }
    let secs = u64::try_from(total / 1_000_000_000).context("too long an interval")?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// The arguments inside `name(...)`, split at the commas outside quotes and parentheses.
fn call<'a>(text: &'a str, what: &str) -> Result<(String, Vec<&'a str>)> {
    let t = text.trim();
    let (Some(open), true) = (t.find('('), t.ends_with(')')) else {
        bail!("{what} `{text}`: expected name(column, interval, ...)");
    };
    let inner = &t[open + 1..t.len() - 1];
    let mut args = Vec::new();
    let (mut depth, mut quoted, mut from) = (0i32, false, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '\'' | '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                args.push(inner[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[from..].trim());
    Ok((t[..open].trim().to_ascii_lowercase(), args))
}

/// A column named in a flag, as SQL names it (quoted or not), that must be a Timestamp.
fn time_column(name: &str, schema: &Schema, what: &str) -> Result<String> {
    let name = sql::resolve_columns(&[name.to_string()], schema)
        .pop()
        .with_context(|| format!("{what}: no column named"))?;
    let field = schema
        .field_with_name(&name)
        .map_err(|_| anyhow::anyhow!("{what}: no column `{name}` in the input"))?;
    if !matches!(field.data_type(), DataType::Timestamp(..)) {
        bail!(
            "{what}: column `{name}` is {}, not a Timestamp",
            field.data_type()
        );
    }
    Ok(name)
}

/// `--window`: `tumble(ts, W)`, `hop(ts, SLIDE, W)`, `session(ts, GAP)`.
pub fn parse_window(text: &str, schema: &Schema) -> Result<(String, Window)> {
    let (name, args) = call(text, "--window")?;
    let want = match name.as_str() {
        "tumble" | "tumbling" => 2,
        "hop" | "hopping" | "slide" => 3,
        "session" => 2,
        other => bail!("--window `{text}`: `{other}` is not tumble, hop or session"),
    };
    if args.len() != want {
        bail!(
            "--window `{text}`: {name} takes {} arguments: the time column and {}",
            want,
            if want == 3 {
                "the slide and the width"
            } else {
                "an interval"
            }
        );
    }
    let time = time_column(args[0], schema, "--window")?;
    let interval = |i: usize| parse_interval(args[i]).with_context(|| format!("--window `{text}`"));
    let window = match name.as_str() {
        "tumble" | "tumbling" => Window::tumble(interval(1)?),
        "session" => Window::session(interval(1)?),
        _ => Window::hop(interval(1)?, interval(2)?),
    };
    Ok((time, window))
}

/// `--watermark`: `ts - INTERVAL '10 seconds'`, `ts` (no delay), or another Timestamp
/// column whose values are the watermark.
pub fn parse_watermark(text: &str, time: &str, schema: &Schema) -> Result<Watermark> {
    let what = "--watermark";
    // A column named with a hyphen (`event-time`) is a column, not a subtraction.
    let whole = sql::resolve_columns(&[text.to_string()], schema).pop();
    if let Some(column) = whole.filter(|c| schema.field_with_name(c).is_ok()) {
        let column = time_column(&column, schema, what)?;
        return Ok(if column == time {
            Watermark::Delay(Duration::ZERO)
        } else {
            Watermark::Column(column)
        });
    }
    if let Some((column, delay)) = text.rsplit_once('-') {
        let column = time_column(column, schema, what)?;
        if column != time {
            bail!("{what} `{text}`: a delay is taken from the window's time column `{time}`, not `{column}`");
        }
        return Ok(Watermark::Delay(
            parse_interval(delay).with_context(|| format!("{what} `{text}`"))?,
        ));
    }
    let column = time_column(text, schema, what)?;
    Ok(if column == time {
        Watermark::Delay(Duration::ZERO)
    } else {
        Watermark::Column(column)
    })
}

/// `--checkpoint-every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Every {
    Batches(u64),
    Time(Duration),
}

fn parse_every(text: &str) -> Result<Every> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        if n == 0 {
            bail!("--checkpoint-every 0: save every 1 batch or more");
        }
        return Ok(Every::Batches(n));
    }
    let t = t
        .strip_suffix("batches")
        .or(t.strip_suffix("batch"))
        .unwrap_or(t);
    if let Ok(n) = t.trim().parse::<u64>() {
        return parse_every(&n.to_string());
    }
    Ok(Every::Time(parse_interval(text).with_context(|| {
        format!("--checkpoint-every `{text}`: a number of batches (100) or a time (30s)")
    })?))
}

/// How far the input was read: a file (its name; `-` for standard input) and how many of
/// its batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Position {
    file: String,
    batch: u64,
}

impl Position {
    fn parse(text: &str) -> Result<Position> {
        let v: serde_json::Value =
            serde_json::from_str(text).context("the checkpoint's input position")?;
        Ok(Position {
            file: v["file"].as_str().unwrap_or_default().to_string(),
            batch: v["batch"].as_u64().unwrap_or_default(),
        })
    }

    fn describe(&self) -> String {
        format!("batch {} of {}", self.batch, self.file)
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}",
            serde_json::json!({"file": self.file, "batch": self.batch})
        )
    }
}

type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>;

/// A reader that, following, waits at the end of its input for more.
struct Follow<R> {
    inner: R,
    follow: bool,
}

impl<R: Read> Read for Follow<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n > 0 || !self.follow || buf.is_empty() {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The IPC batches of `file` (an IPC stream, or an IPC file when it starts with `ARROW1`).
fn open_ipc(path: &Path, follow: bool) -> Result<(SchemaRef, Batches)> {
    let mut file = File::open(path).with_context(|| format!("can't read {}", path.display()))?;
    let mut head = [0u8; 6];
    let n = file.read(&mut head)?;
    drop(file);
    let file = File::open(path)?;
    if n == 6 && &head == b"ARROW1" {
        let reader = FileReader::try_new(BufReader::new(file), None)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok((reader.schema(), Box::new(reader)));
    }
    let reader = StreamReader::try_new(
        BufReader::new(Follow {
            inner: file,
            follow,
        }),
        None,
    )
    .with_context(|| format!("reading {} (an Arrow IPC stream or file)", path.display()))?;
    Ok((reader.schema(), Box::new(reader)))
}

enum Source {
    Stdin,
    File(PathBuf),
    Dir(PathBuf),
}

/// The input: batches with the position after each.
struct Input {
    source: Source,
    follow: bool,
    schema: SchemaRef,
    /// The file being read, its batches, and how many were read.
    current: Option<(String, Batches, u64)>,
    /// In a folder: the last file opened.
    last: Option<String>,
}

impl Input {
    fn open(source: Option<&Path>, follow: bool) -> Result<Input> {
        let source = match source {
            None => Source::Stdin,
            Some(p) if p.as_os_str() == "-" => Source::Stdin,
            Some(p) if p.is_dir() => Source::Dir(p.to_path_buf()),
            Some(p) => Source::File(p.to_path_buf()),
        };
        let mut input = Input {
            source,
            follow,
            schema: std::sync::Arc::new(Schema::empty()),
            current: None,
            last: None,
        };
        match &input.source {
            Source::Stdin => {
                let reader = StreamReader::try_new(BufReader::new(std::io::stdin()), None)
                    .context("reading standard input (an Arrow IPC stream)")?;
                input.schema = reader.schema();
                input.current = Some(("-".into(), Box::new(reader), 0));
            }
            Source::File(path) => {
                let (schema, batches) = open_ipc(path, follow)?;
                input.schema = schema;
                input.current = Some((path.display().to_string(), batches, 0));
            }
            Source::Dir(dir) => {
                let first = loop {
                    match input.next_file()? {
                        Some(f) => break f,
                        None if follow => std::thread::sleep(Duration::from_millis(200)),
                        None => bail!("{}: no files to read", dir.display()),
                    }
                };
                let (schema, batches) = open_ipc(&dir.join(&first), false)?;
                input.schema = schema;
                input.last = Some(first.clone());
                input.current = Some((first, batches, 0));
            }
        }
        Ok(input)
    }

    /// In a folder: the first file (not hidden) named after the last one opened.
    fn next_file(&self) -> Result<Option<String>> {
        let Source::Dir(dir) = &self.source else {
            return Ok(None);
        };
        let mut names: Vec<String> = fs::read_dir(dir)
            .with_context(|| format!("reading the folder {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .filter(|n| self.last.as_ref().is_none_or(|l| n > l))
            .collect();
        names.sort();
        Ok(names.into_iter().next())
    }

    /// Where the input stands: after the last batch read.
    fn position(&self) -> Position {
        match &self.current {
            Some((file, _, batch)) => Position {
                file: file.clone(),
                batch: *batch,
            },
            None => Position {
                file: self.last.clone().unwrap_or_default(),
                batch: 0,
            },
        }
    }

    /// Skips what a checkpoint says was read.
    fn skip_to(&mut self, at: &Position) -> Result<()> {
        match &self.source {
            Source::Dir(dir) => {
                // The checkpoint's file, whatever was read before it (the files before it
                // were read whole; a file that is gone can't tell how far it was read).
                if self.current.as_ref().is_none_or(|c| c.0 != at.file) {
                    let path = dir.join(&at.file);
                    if !path.is_file() {
                        bail!(
                            "the checkpoint was taken reading {}, which is gone: put it back to resume",
                            path.display()
                        );
                    }
                    let (_, batches) = open_ipc(&path, false)?;
                    self.current = Some((at.file.clone(), batches, 0));
                }
                self.last = Some(at.file.clone());
            }
            _ => {
                if let Some(current) = &self.current {
                    if current.0 != at.file {
                        bail!(
                            "the checkpoint was taken reading {}, not {}: give the same input to resume",
                            at.file,
                            current.0
                        );
                    }
                }
            }
        }
        // The batches read in that file, and no other's.
        let (file, batches, read) = self.current.as_mut().expect("a file is open");
        while *read < at.batch {
            match batches.next() {
                Some(batch) => {
                    batch.with_context(|| format!("reading batch {} of {file}", *read + 1))?;
                    *read += 1;
                }
                None => bail!(
                    "{file} ends before the checkpoint's position ({}): give the same input to resume",
                    at.describe()
                ),
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Option<(RecordBatch, Position)>> {
        loop {
            if let Some((file, batches, read)) = &mut self.current {
                match batches.next() {
                    Some(batch) => {
                        let batch = batch
                            .with_context(|| format!("reading batch {} of {file}", *read + 1))?;
                        *read += 1;
                        return Ok(Some((
                            batch,
                            Position {
                                file: file.clone(),
                                batch: *read,
                            },
                        )));
                    }
                    None => {
                        if !matches!(self.source, Source::Dir(_)) {
                            return Ok(None);
                        }
                    }
                }
            }
            // A folder: the next file, waiting for one when following.
            let Source::Dir(dir) = &self.source else {
                return Ok(None);
            };
            let dir = dir.clone();
            match self.next_file()? {
                Some(name) => {
                    let (schema, batches) = open_ipc(&dir.join(&name), false)?;
                    if schema.fields().len() != self.schema.fields().len()
                        || schema
                            .fields()
                            .iter()
                            .zip(self.schema.fields())
                            .any(|(a, b)| a.name() != b.name() || a.data_type() != b.data_type())
                    {
                        bail!(
                            "{}: its columns differ from the first file's ({} against {})",
                            dir.join(&name).display(),
                            schema,
                            self.schema
                        );
                    }
                    self.last = Some(name.clone());
                    self.current = Some((name, batches, 0));
                }
                None if self.follow => std::thread::sleep(Duration::from_millis(200)),
                None => return Ok(None),
            }
        }
    }
}

/// Makes `dir` and removes the temporary files a killed run left there.
fn prepare_folder(dir: &Path, what: &str) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("{what} {}", dir.display()))?;
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.ends_with(".tmp") || name.contains(".tmp-")) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Where windows go: an IPC stream on standard output, or a file a batch in a folder.
enum Output {
    Stdout(Box<StreamWriter<BufWriter<Stdout>>>),
    Dir(PathBuf, SchemaRef),
}

impl Output {
    fn open(out: Option<&Path>, schema: &SchemaRef) -> Result<Output> {
        Ok(match out {
            None => Output::Stdout(Box::new(StreamWriter::try_new(
                BufWriter::new(std::io::stdout()),
                schema,
            )?)),
            Some(dir) => {
                if dir.is_file() {
                    bail!("--out {}: is a file; name a folder", dir.display());
                }
                prepare_folder(dir, "--out")?;
                Output::Dir(dir.to_path_buf(), schema.clone())
            }
        })
    }

    /// Writes the `n`th batch of windows.
    fn write(&mut self, batch: &RecordBatch, n: u64) -> Result<()> {
        match self {
            Output::Stdout(w) => {
                w.write(batch).context("writing to standard output")?;
                w.get_mut().flush().context("writing to standard output")?;
            }
            Output::Dir(dir, schema) => {
                let mut sink = FileSink::create(&dir.join(format!("{n:010}.arrow")), schema)?;
                sink.write(batch)?;
                sink.finish()?;
            }
        }
        Ok(())
    }

    /// Makes the files written so far durable (their renames, by an fsync of the folder)
    /// before a checkpoint says they were written.
    fn sync(&self) -> Result<()> {
        if let Output::Dir(dir, _) = self {
            if let Ok(folder) = File::open(dir) {
                folder
                    .sync_all()
                    .with_context(|| format!("syncing {}", dir.display()))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Output::Stdout(mut w) = self {
            w.finish().context("writing to standard output")?;
            w.get_mut().flush()?;
        }
        Ok(())
    }
}

/// The progress line on stderr: events/s, the watermark and its lag behind the clock,
/// open windows, late rows.
struct Progress {
    bar: Option<ProgressBar>,
    time_type: DataType,
    last: Instant,
}

impl Progress {
    fn new(quiet: bool, time_type: &DataType) -> Progress {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar
        });
        Progress {
            bar,
            time_type: time_type.clone(),
            last: Instant::now(),
        }
    }

    fn watermark(&self, w: Option<i64>) -> String {
        let Some(w) = w else {
            return "none".into();
        };
        let per_sec = match &self.time_type {
            DataType::Timestamp(TimeUnit::Second, _) => 1.0,
            DataType::Timestamp(TimeUnit::Millisecond, _) => 1e3,
            DataType::Timestamp(TimeUnit::Microsecond, _) => 1e6,
            _ => 1e9,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let lag = now - w as f64 / per_sec;
        let value: ArrayRef = make_array(
            Int64Array::from(vec![w])
                .into_data()
                .into_builder()
                .data_type(self.time_type.clone())
                .build()
                .expect("an i64 is a timestamp"),
        );
        let shown = array_value_to_string(value.as_ref(), 0).unwrap_or_else(|_| w.to_string());
        format!("{shown} (lag {})", human_seconds(lag))
    }

    fn update(&mut self, agg: &WindowAggregator, started: Instant) {
        let Some(bar) = &self.bar else {
            return;
        };
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let s = agg.stats();
        bar.set_message(format!(
            "{} events, {:.0}/s, watermark {}, {} open windows, {} late",
            s.rows,
            s.rows as f64 / started.elapsed().as_secs_f64().max(1e-9),
            self.watermark(s.watermark),
            s.open_windows,
            s.late_rows
        ));
        bar.tick();
    }

    fn done(self, s: &arrow_wgpu::WindowStats, started: Instant) {
        let Some(bar) = self.bar else {
            return;
        };
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "stream: {} events in {secs:.2} s ({:.0}/s), {} late; {} windows emitted",
            s.rows,
            s.rows as f64 / secs.max(1e-9),
            s.late_rows,
            s.emitted_windows + s.open_windows as u64,
        );
    }
}

fn human_seconds(s: f64) -> String {
    let a = s.abs();
    let (v, unit) = if a < 120.0 {
        (s, "s")
    } else if a < 7_200.0 {
        (s / 60.0, "min")
    } else if a < 172_800.0 {
        (s / 3_600.0, "h")
    } else {
        (s / 86_400.0, "d")
    };
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn intervals() {
        let s = Duration::from_secs;
        assert_eq!(parse_interval("INTERVAL '1 minute'").unwrap(), s(60));
        assert_eq!(parse_interval("interval '1' MINUTE").unwrap(), s(60));
        assert_eq!(parse_interval("'90 seconds'").unwrap(), s(90));
        assert_eq!(parse_interval("1 hour 30 minutes").unwrap(), s(5400));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2s").unwrap(), s(2));
        assert_eq!(parse_interval("5m").unwrap(), s(300));
        assert_eq!(parse_interval("1d").unwrap(), s(86_400));
        assert_eq!(
            parse_interval("1.5 seconds").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_interval("250 us").unwrap(),
            Duration::from_micros(250)
        );
        assert_eq!(parse_interval("3 ns").unwrap(), Duration::from_nanos(3));
        for bad in ["", "5", "minute", "5 parsecs", "1.0000000001 s", "x s"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_and_watermarks() {
        let schema = Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("wm", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("v", DataType::Int64, true),
        ]);
        let m = Duration::from_secs(60);
        assert_eq!(
            parse_window("tumble(ts, INTERVAL '1 minute')", &schema).unwrap(),
            ("ts".into(), Window::tumble(m))
        );
        assert_eq!(
            parse_window("HOP(ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)", &schema).unwrap(),
            ("ts".into(), Window::hop(m, 5 * m))
        );
        assert_eq!(
            parse_window("session(\"ts\", 30s)", &schema).unwrap(),
            ("ts".into(), Window::session(Duration::from_secs(30)))
        );
        for bad in [
            "tumble(v, 1m)",
            "tumble(x, 1m)",
            "tumble(ts)",
            "hop(ts, 1m)",
            "roll(ts, 1m)",
            "tumble ts 1m",
        ] {
            assert!(parse_window(bad, &schema).is_err(), "{bad}");
        }
        assert_eq!(
            parse_watermark("ts - INTERVAL '10 seconds'", "ts", &schema).unwrap(),
            Watermark::Delay(Duration::from_secs(10))
        );
        assert_eq!(
            parse_watermark("ts", "ts", &schema).unwrap(),
            Watermark::Delay(Duration::ZERO)
        );
        assert_eq!(
            parse_watermark("wm", "ts", &schema).unwrap(),
            Watermark::Column("wm".into())
        );
        assert!(parse_watermark("wm - 5s", "ts", &schema).is_err());
        let hyphen = Schema::new(vec![Field::new(
            "event-time",
            DataType::Timestamp(TimeUnit::Second, None),
            true,
        )]);
        assert_eq!(
            parse_watermark("event-time", "event-time", &hyphen).unwrap(),
            Watermark::Delay(Duration::ZERO)
        );
        assert_eq!(
            parse_watermark("\"event-time\" - 5s", "event-time", &hyphen).unwrap(),
            Watermark::Delay(Duration::from_secs(5))
        );
        assert!(parse_watermark("v", "ts", &schema).is_err());
        assert_eq!(parse_every("100").unwrap(), Every::Batches(100));
        assert_eq!(
            parse_every("30s").unwrap(),
            Every::Time(Duration::from_secs(30))
        );
        assert_eq!(parse_every("5 batches").unwrap(), Every::Batches(5));
        assert!(parse_every("0").is_err());
        assert!(parse_every("soon").is_err());
    }
}
