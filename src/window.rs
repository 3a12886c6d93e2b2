//! Event-time windows over a stream of record batches: [`Window`], [`Watermark`],
//! [`WindowOptions`] and [`Engine::window_aggregator`].
//!
//! Push batches of events in arrival order into a [`WindowAggregator`]. Each event falls
//! into windows by the value of a timestamp column (any unit, any time zone):
//!
//! - **tumbling** ([`Window::Tumble`]): `[k·width, (k+1)·width)` from the Unix epoch, one
//!   window a row;
//! - **hopping** ([`Window::Hop`]): `[k·slide, k·slide + width)`, `0 < slide ≤ width`; a row
//!   is in every window that covers it;
//! - **session** ([`Window::Session`]): per key, rows less than `gap` apart form one session
//!   `[first, last + gap)`; a row that bridges two sessions merges them.
//!
//! The **watermark** is the event time before which the input is taken to be complete: the
//! largest event time seen, less an allowed delay ([`Watermark::Delay`]), or the largest
//! value seen of a watermark column ([`Watermark::Column`]). It is moved after each batch,
//! and never back. A window is **emitted** once the watermark reaches its end, and never
//! again: [`WindowAggregator::push`] returns the windows that batch closed, as one record
//! batch of `window_start`, `window_end` (the time column's type), the keys and the
//! aggregates, ordered by `window_end`, `window_start`, then key (ascending, nulls first, as
//! [`GroupByOptions::sorted`](crate::GroupByOptions::sorted)). [`WindowAggregator::finish`]
//! emits every window still open, as a bounded source's end does in Flink.
//!
//! **Late rows**, those that arrive when every window they belong to has been emitted
//! (for sessions: any row behind the watermark, since it may belong to a session already
//! emitted), are dropped and counted ([`WindowStats::late_rows`]), or kept for a side
//! output ([`WindowOptions::keep_late`], [`WindowAggregator::take_late`]). A row with a null
//! event time, or whose windows would end beyond the range of an i64, belongs to no window
//! and counts as late.
//!
//! # One answer whatever the arrival order
//!
//! Each batch is grouped by window and key on the engine's backend (the GPU where there is
//! one; the window is one more key) into partial aggregates, which merge exactly into each
//! open window's (see [`crate::group_by`]: float sums are exact and rounded once). So the
//! same events, in any order and any split into batches in which no row is late, give the
//! same windows with the same bits; and since windows come out in order of their end,
//! concatenating everything emitted gives one and the same sequence of rows too.
//!
//! Tumbling and hopping windows hold a partial aggregate per group (memory grows with the
//! groups of the open windows, not the rows). A session holds its batches' partial
//! aggregates, merged when the watermark closes a session.
//!
//! [`WindowAggregator::save`] writes the whole state to a file atomically (a temporary file,
//! fsync, rename); [`Engine::restore_window_aggregator`] reads it back: pushing the rest of
//! the input then gives what an uninterrupted run gives.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use arrow::array::{Float64Array, Int64Array, StringArray, TimestampSecondArray};
//! use arrow::record_batch::RecordBatch;
//! use arrow_wgpu::{col, Agg, Backend, Engine, Watermark, Window, WindowOptions};
//!
//! let events = |ts: Vec<i64>, sensor: Vec<&str>, temp: Vec<f64>| RecordBatch::try_from_iter([
//!     ("ts", Arc::new(TimestampSecondArray::from(ts)) as _),
//!     ("sensor", Arc::new(StringArray::from(sensor)) as _),
//!     ("temp", Arc::new(Float64Array::from(temp)) as _),
//! ]).unwrap();
//! let first = events(vec![0, 30, 59], vec!["a", "b", "a"], vec![20.0, 15.0, 22.0]);
//! let engine = Engine::new(Backend::Cpu).unwrap();
//! let options = WindowOptions::new("ts", Window::tumble(Duration::from_secs(60)))
//!     .watermark(Watermark::Delay(Duration::from_secs(10)));
//! let mut windows = engine
//!     .window_aggregator(first.schema(), options, &["sensor"], &[Agg::mean(col("temp"))])
//!     .unwrap();
//! assert!(windows.push(&first).unwrap().is_none()); // watermark 49 s: nothing closed
//! // 65 s - 10 s = 55 s: still open; a row at 50 s arrives late but in time.
//! assert!(windows.push(&events(vec![65, 50], vec!["a", "b"], vec![30.0, 17.0])).unwrap().is_none());
//! // 75 s - 10 s = 65 s: the first minute closes.
//! let closed = windows.push(&events(vec![75], vec!["b"], vec![16.0])).unwrap().unwrap();
//! assert_eq!(closed.column(0).as_ref(), &TimestampSecondArray::from(vec![0, 0]));
//! assert_eq!(closed.column(1).as_ref(), &TimestampSecondArray::from(vec![60, 60]));
//! assert_eq!(closed.column(2).as_ref(), &StringArray::from(vec!["a", "b"]));
//! assert_eq!(closed.column(3).as_ref(), &Float64Array::from(vec![21.0, 16.0]));
//! // A row for the closed minute is late: dropped and counted.
//! assert!(windows.push(&events(vec![10], vec!["a"], vec![99.0])).unwrap().is_none());
//! assert_eq!(windows.stats().late_rows, 1);
//! let rest = windows.finish().unwrap().unwrap(); // the end of the input closes the rest
//! assert_eq!(rest.column(3).as_ref(), &Float64Array::from(vec![30.0, 16.0]));
//! ```

use std::collections::BTreeMap;

use hashbrown::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    make_array, Array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions, UInt32Array,
};
use arrow::compute::{cast, take, take_record_batch, SortOptions};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::row::{RowConverter, SortField};

use crate::aggregate::{Grouped, Merger, Plan, State};
use crate::cpu;
use crate::engine::{check_rows, Engine};
use crate::error::{Error, Result};
use crate::gpu;
use crate::group_by::{plan_group_by, Agg};
use crate::keys::Key;

mod checkpoint;

/// Session parts (one a batch) merged into one when this many are held.
const COMPACT_PARTS: usize = 64;

/// The most windows of a hop a row may be in (width / slide): each row is repeated for
/// each, so a day's windows every second (86,400) would make a batch 86,400 times longer.
const MAX_HOPS: i64 = 10_000;

/// The name of the window (or session) column prepended to a batch's key columns.
const WINDOW_KEY: &str = "\u{0}arrow_wgpu_window";

/// How events fall into windows by event time. See the [module docs](crate::window).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use arrow_wgpu::Window;
/// let minute = Duration::from_secs(60);
/// assert_eq!(Window::tumble(minute), Window::Tumble { width: minute });
/// assert_eq!(Window::hop(minute, 5 * minute), Window::Hop { slide: minute, width: 5 * minute });
/// assert_eq!(Window::session(minute), Window::Session { gap: minute });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Windows `[k·width, (k+1)·width)` from the Unix epoch, one after another.
    Tumble {
        /// The length of a window.
        width: Duration,
    },
    /// Windows `[k·slide, k·slide + width)`: a new window every `slide`
    /// (`0 < slide ≤ width`), a row in every window that covers it.
    Hop {
        /// The time between the starts of two windows.
        slide: Duration,
        /// The length of a window.
        width: Duration,
    },
    /// Per key, rows less than `gap` apart in event time are one session, `[first, last +
    /// gap)`.
    Session {
        /// The longest time without a row inside a session.
        gap: Duration,
    },
}

impl Window {
    /// Tumbling windows of `width`.
    pub fn tumble(width: Duration) -> Window {
        Window::Tumble { width }
    }

    /// Hopping windows of `width`, one starting every `slide` (as Flink's `HOP(slide,
    /// size)`).
    pub fn hop(slide: Duration, width: Duration) -> Window {
        Window::Hop { slide, width }
    }

    /// Session windows that close after `gap` without a row.
    pub fn session(gap: Duration) -> Window {
        Window::Session { gap }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Tumble { width } => write!(f, "tumble({width:?})"),
            Window::Hop { slide, width } => write!(f, "hop({slide:?}, {width:?})"),
            Window::Session { gap } => write!(f, "session({gap:?})"),
        }
    }
}

/// Where the watermark comes from. See the [module docs](crate::window).
///
/// # Example
/// ```
/// use std::time::Duration;
/// use arrow_wgpu::Watermark;
/// let w = Watermark::Delay(Duration::from_secs(5)); // Flink's `ts - INTERVAL '5' SECOND`
/// assert_ne!(w, Watermark::Column("wm".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watermark {
    /// The largest event time seen so far, less this delay (the out-of-order arrival
    /// tolerated).
    Delay(Duration),
    /// The largest value seen so far of this timestamp column (the source's own word on
    /// how far its input is complete).
    Column(String),
}

/// A windowed aggregation: the time column, the windows, the watermark and what becomes of
/// late rows.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use arrow_wgpu::{Watermark, Window, WindowOptions};
/// let o = WindowOptions::new("ts", Window::tumble(Duration::from_secs(60)));
/// assert_eq!(o.watermark, Watermark::Delay(Duration::ZERO));
/// assert!(!o.keep_late);
/// let o = o.watermark(Watermark::Column("wm".into())).keep_late();
/// assert!(o.keep_late);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowOptions {
    /// The event-time column: a `Timestamp` of any unit and time zone.
    pub time: String,
    /// The windows.
    pub window: Window,
    /// The watermark (default: the largest event time seen, no delay).
    pub watermark: Watermark,
    /// Keep late rows for [`WindowAggregator::take_late`] (default: drop them, counted).
    pub keep_late: bool,
}

impl WindowOptions {
    /// `window` over the time column `time`, the watermark the largest event time seen.
    pub fn new(time: impl Into<String>, window: Window) -> WindowOptions {
        WindowOptions {
            time: time.into(),
            window,
            watermark: Watermark::Delay(Duration::ZERO),
            keep_late: false,
        }
    }

    /// With this watermark.
    pub fn watermark(mut self, watermark: Watermark) -> WindowOptions {
        self.watermark = watermark;
        self
    }

    /// Keeping late rows for [`WindowAggregator::take_late`].
    pub fn keep_late(mut self) -> WindowOptions {
        self.keep_late = true;
        self
    }
}

/// Counters of a [`WindowAggregator`].
///
/// # Example
/// ```
/// use arrow_wgpu::WindowStats;
/// let s = WindowStats::default();
/// assert_eq!((s.rows, s.late_rows, s.open_windows, s.emitted_windows), (0, 0, 0, 0));
/// assert_eq!(s.watermark, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Batches pushed.
    pub batches: u64,
    /// Rows pushed, late ones included.
    pub rows: u64,
    /// Rows dropped (or kept for the side output) as late, null event times included.
    pub late_rows: u64,
    /// Windows open now (for sessions: sessions open, every key's).
    pub open_windows: usize,
    /// Windows emitted so far (a window of each key counts once per key for sessions; for
    /// tumbling and hopping windows, once whatever its keys).
    pub emitted_windows: u64,
    /// Batches of windows emitted so far (pushes and finishes that returned a batch).
    pub emissions: u64,
    /// The watermark, in the time column's unit (`None` before any row).
    pub watermark: Option<i64>,
}

/// The window kinds, in the time column's unit.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Tumble { width: i64 },
    Hop { slide: i64, width: i64 },
    Session { gap: i64 },
}

impl Kind {
    /// The starts of the fixed windows `ts` is in, latest first, with the window width.
    /// Windows not representable in i64 are left out.
    fn starts(self, ts: i64, mut each: impl FnMut(i64, i64)) {
        match self {
            // A window whose start or end is not an i64 (within a width of either end of
            // the range) takes no row.
            Kind::Tumble { width } => {
                if let Some(start) = ts.div_euclid(width).checked_mul(width) {
                    if start.checked_add(width).is_some() {
                        each(start, width)
                    }
                }
            }
            Kind::Hop { slide, width } => {
                let mut start = ts.div_euclid(slide) as i128 * slide as i128;
                while start + width as i128 > ts as i128 {
                    if start < i64::MIN as i128 {
                        break;
                    }
                    if start + (width as i128) <= i64::MAX as i128 {
                        each(start as i64, width);
                    }
                    start -= slide as i128;
                }
            }
            Kind::Session { .. } => unreachable!("sessions have no fixed starts"),
        }
    }
}

/// `d` in `unit`s: an error unless it is a positive whole number of them (or zero where
/// `zero` allows).
fn in_units(d: Duration, unit: &TimeUnit, what: &str, zero: bool) -> Result<i64> {
    let per = match unit {
        TimeUnit::Second => 1_000_000_000u128,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    let nanos = d.as_nanos();
    if !nanos.is_multiple_of(per) {
        return Err(Error::InvalidExpression(format!(
            "window: the {what} {d:?} is not a whole number of the time column's unit ({unit:?})"
        )));
    }
    let n = i64::try_from(nanos / per)
        .map_err(|_| Error::InvalidExpression(format!("window: the {what} {d:?} is too long")))?;
    if n == 0 && !zero {
        return Err(Error::InvalidExpression(format!(
            "window: the {what} must be longer than zero"
        )));
    }
    Ok(n)
}

/// The watermark's source, resolved.
#[derive(Debug, Clone, Copy)]
enum Mark {
    Delay(i64),
    Column(usize),
}

/// Open windows: the fixed ones by `(end, start)`, each with its groups merged; or the
/// sessions.
enum Store {
    Fixed(BTreeMap<(i64, i64), Merger>),
    Sessions(Sessions),
}

/// Open sessions, every key's, and their batches' partial aggregates.
struct Sessions {
    gap: i64,
    /// The key columns' row format (`None`: no keys, one session stream).
    converter: Option<RowConverter>,
    /// Each key's open sessions, ordered by start, disjoint.
    open: HashMap<Box<[u8]>, Vec<Session>>,
    /// Sessions merged into later ones since the last scan: old id -> new id.
    forward: HashMap<i64, i64>,
    /// Partial aggregates of the batches since the last scan (and the scan's merged ones),
    /// grouped by session id and key.
    parts: Vec<Grouped>,
    next_id: i64,
    /// No open session ends before this (it may end later: a bound, tightened by scans).
    earliest_end: i64,
}

/// What [`Sessions::add`] changed: the sessions it merged away and the one it made.
struct Undo {
    key: Box<[u8]>,
    removed: Vec<Session>,
    id: i64,
}

/// One open session of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    start: i64,
    end: i64,
    id: i64,
}

impl Sessions {
    fn open_count(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }

    /// The session `id` now belongs to.
    fn resolve(&self, mut id: i64) -> i64 {
        while let Some(&next) = self.forward.get(&id) {
            id = next;
        }
        id
    }

    /// Adds the session `[start, end)` of `key`, merging it with the open sessions it
    /// overlaps: the id its rows get. What it changed goes to `undo`.
    fn add(&mut self, key: &[u8], start: i64, end: i64, undo: &mut Vec<Undo>) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let list = self.open.entry_ref(key).or_default();
        let (mut s, mut e) = (start, end);
        let mut removed = Vec::new();
        list.retain(|o| {
            if o.start < end && o.end > start {
                s = s.min(o.start);
                e = e.max(o.end);
                self.forward.insert(o.id, id);
                removed.push(*o);
                false
            } else {
                true
            }
        });
        let at = list.partition_point(|o| o.start < s);
        list.insert(
            at,
            Session {
                start: s,
                end: e,
                id,
            },
        );
        self.earliest_end = self.earliest_end.min(e);
        undo.push(Undo {
            key: key.into(),
            removed,
            id,
        });
        id
    }

    /// Takes back the adds of `undo` (a batch whose group-by failed), latest first.
    fn revert(&mut self, undo: Vec<Undo>, next_id: i64, earliest_end: i64) {
        for u in undo.into_iter().rev() {
            if let Some(list) = self.open.get_mut(&u.key) {
                list.retain(|o| o.id != u.id);
                for o in &u.removed {
                    self.forward.remove(&o.id);
                }
                list.extend(u.removed);
                list.sort_by_key(|o| o.start);
                if list.is_empty() {
                    self.open.remove(&u.key);
                }
            }
        }
        self.next_id = next_id;
        self.earliest_end = earliest_end;
    }
}

/// A windowed group-by over a stream of batches: see [`Engine::window_aggregator`] and the
/// [module docs](crate::window).
pub struct WindowAggregator {
    engine: Engine,
    input: SchemaRef,
    options: WindowOptions,
    keys: Vec<String>,
    aggs: Vec<Agg>,
    time: usize,
    time_type: DataType,
    kind: Kind,
    mark: Mark,
    /// The input columns a batch's group-by reads (keys first).
    projection: Vec<usize>,
    /// The group-by of a batch: the window (or session) id, then the keys.
    plan: Plan,
    grouped_schema: SchemaRef,
    output: SchemaRef,
    store: Store,
    late: Vec<RecordBatch>,
    stats: WindowStats,
}

impl fmt::Debug for WindowAggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowAggregator")
            .field("options", &self.options)
            .field("output", &self.output)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A group-by of a stream of events by event-time window and `keys`, computing `aggs`
    /// (every aggregate [`Engine::group_by`] takes, exact as there) per window and key:
    /// push batches in arrival order ([`WindowAggregator::push`]), and each returns the
    /// windows the watermark closed. See the [module docs](crate::window) for windows,
    /// watermarks, late rows and the output.
    ///
    /// Errors: an unknown column; a time column that is not a `Timestamp`, or a watermark
    /// column of another type than it; a width, slide, gap or delay that is not a whole
    /// number of the time column's unit (or is zero, or a slide longer than the width); a
    /// key named `window_start` or `window_end`; and every error of [`Engine::group_by`].
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use arrow::array::{Int64Array, TimestampMillisecondArray};
    /// use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, Agg, Backend, Engine, Window, WindowOptions};
    /// let batch = RecordBatch::try_from_iter([
    ///     ("ts", Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_500, 9_000])) as _),
    ///     ("v", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
    /// ]).unwrap();
    /// let engine = Engine::new(Backend::Cpu).unwrap();
    /// // Two-second windows every second; sessions that end after three idle seconds.
    /// let hop = WindowOptions::new("ts", Window::hop(Duration::from_secs(1), Duration::from_secs(2)));
    /// let mut hops = engine.window_aggregator(batch.schema(), hop, &[], &[Agg::sum(col("v"))]).unwrap();
    /// let closed = hops.push(&batch).unwrap().unwrap();
    /// assert_eq!(closed.column(0).as_ref(), &TimestampMillisecondArray::from(vec![0, 1_000, 2_000]));
    /// assert_eq!(closed.column(2).as_ref(), &Int64Array::from(vec![1, 3, 2]));
    /// let session = WindowOptions::new("ts", Window::session(Duration::from_secs(3)));
    /// let mut sessions = engine.window_aggregator(batch.schema(), session, &[], &[Agg::sum(col("v"))]).unwrap();
    /// let closed = sessions.push(&batch).unwrap().unwrap();
    /// assert_eq!(closed.column(0).as_ref(), &TimestampMillisecondArray::from(vec![1_000]));
    /// assert_eq!(closed.column(1).as_ref(), &TimestampMillisecondArray::from(vec![5_500]));
    /// assert_eq!(closed.column(2).as_ref(), &Int64Array::from(vec![3]));
    /// ```
    pub fn window_aggregator(
        &self,
        schema: SchemaRef,
        options: WindowOptions,
        keys: &[&str],
        aggs: &[Agg],
    ) -> Result<WindowAggregator> {
        let time = schema
            .index_of(&options.time)
            .map_err(|_| Error::unknown_column(&options.time, &schema))?;
        let time_type = schema.field(time).data_type().clone();
        let DataType::Timestamp(unit, _) = &time_type else {
            return Err(Error::UnsupportedType {
                operation: "window",
                column: options.time.clone(),
                data_type: time_type,
                where_: " as an event time (a Timestamp is)".into(),
            }
            .not_gpu_side());
        };
        let kind = match options.window {
            Window::Tumble { width } => Kind::Tumble {
                width: in_units(width, unit, "width", false)?,
            },
            Window::Hop { slide, width } => {
                let slide = in_units(slide, unit, "slide", false)?;
                let width = in_units(width, unit, "width", false)?;
                if slide > width {
                    return Err(Error::InvalidExpression(
                        "window: a hop's slide must not be longer than its width".into(),
                    ));
                }
                // Each row is repeated for each window it is in.
                if width / slide > MAX_HOPS {
                    return Err(Error::InvalidExpression(format!(
                        "window: a hop of width {width} every {slide} puts each row in {} windows; at most {MAX_HOPS} are taken",
                        width / slide
                    )));
                }
                Kind::Hop { slide, width }
            }
            Window::Session { gap } => Kind::Session {
                gap: in_units(gap, unit, "gap", false)?,
            },
        };
        let mark = match &options.watermark {
            Watermark::Delay(d) => Mark::Delay(in_units(*d, unit, "delay", true)?),
            Watermark::Column(name) => {
                let i = schema
                    .index_of(name)
                    .map_err(|_| Error::unknown_column(name, &schema))?;
                let dt = schema.field(i).data_type();
                if !matches!(dt, DataType::Timestamp(u, _) if u == unit) {
                    return Err(Error::UnsupportedType {
                        operation: "window",
                        column: name.clone(),
                        data_type: dt.clone(),
                        where_: format!(" as the watermark of a {time_type} event time"),
                    }
                    .not_gpu_side());
                }
                Mark::Column(i)
            }
        };
        for k in keys {
            if *k == "window_start" || *k == "window_end" {
                return Err(Error::InvalidExpression(format!(
                    "window: a key can't be named {k}: the output's window columns are"
                )));
            }
        }
        // The batch's group-by reads only the columns it needs, behind the window id.
        let direct = plan_group_by(&schema, keys, aggs)?;
        let projection = direct.used_columns();
        let mut fields = vec![Field::new(WINDOW_KEY, DataType::Int64, false)];
        // Nullable: a batch may hold nulls where the schema it was planned for held none.
        fields.extend(
            projection
                .iter()
                .map(|&i| schema.field(i).clone().with_nullable(true)),
        );
        let grouped_schema = Arc::new(Schema::new(fields));
        let mut grouped_keys = vec![WINDOW_KEY];
        grouped_keys.extend_from_slice(keys);
        let plan = plan_group_by(&grouped_schema, &grouped_keys, aggs)?;
        let mut out = vec![
            Field::new("window_start", time_type.clone(), false),
            Field::new("window_end", time_type.clone(), false),
        ];
        out.extend(
            plan.schema
                .fields()
                .iter()
                .skip(1)
                .map(|f| f.as_ref().clone()),
        );
        let store = match kind {
            Kind::Session { gap } => Store::Sessions(Sessions {
                gap,
                converter: if keys.is_empty() {
                    None
                } else {
                    Some(RowConverter::new(
                        direct
                            .keys
                            .iter()
                            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
                            .collect(),
                    )?)
                },
                open: HashMap::new(),
                forward: HashMap::new(),
                parts: Vec::new(),
                next_id: 0,
                earliest_end: i64::MAX,
            }),
            _ => Store::Fixed(BTreeMap::new()),
        };
        Ok(WindowAggregator {
            engine: self.clone(),
            input: schema,
            options,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            aggs: aggs.to_vec(),
            time,
            time_type,
            kind,
            mark,
            projection,
            plan,
            grouped_schema,
            output: Arc::new(Schema::new(out)),
            store,
            late: Vec::new(),
            stats: WindowStats::default(),
        })
    }
}

impl Error {
    /// `self`, an [`Error::UnsupportedType`] no backend runs (an empty `where_` would say
    /// so, but here it says why).
    fn not_gpu_side(self) -> Error {
        match self {
            Error::UnsupportedType {
                operation,
                column,
                data_type,
                where_,
            } => Error::InvalidExpression(format!(
                "{operation}: column '{column}' has type {data_type}, which is not supported{where_}"
            )),
            other => other,
        }
    }
}

impl WindowAggregator {
    /// The output's schema: `window_start`, `window_end` (the time column's type), the
    /// keys, then one column per aggregate.
    pub fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// The counters: rows, late rows, open and emitted windows, the watermark.
    pub fn stats(&self) -> WindowStats {
        let mut s = self.stats;
        s.open_windows = match &self.store {
            Store::Fixed(open) => open.len(),
            Store::Sessions(sessions) => sessions.open_count(),
        };
        s
    }

    /// The late rows kept since the last call (with [`WindowOptions::keep_late`]; none
    /// otherwise), in the input's schema, in arrival order.
    pub fn take_late(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.late)
    }

    /// Adds `batch`'s events to their windows, moves the watermark, and returns the windows
    /// it closed (`None` if none). The batch has the columns (names and types) of the
    /// schema the aggregator was made for; nullability may differ.
    ///
    /// On an error in reading or grouping the batch, nothing of it is added. An error in
    /// finishing the windows it closes (a decimal sum beyond 38 digits) comes after the
    /// batch was added: those windows stay open, nothing is emitted, and each later push
    /// that closes them (and [`WindowAggregator::finish`]) returns the error again.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        // Names and types; nullability may differ from batch to batch.
        let same = |a: &Field, b: &Field| a.name() == b.name() && a.data_type() == b.data_type();
        let fields = batch.schema_ref().fields();
        if fields.len() != self.input.fields().len()
            || !fields
                .iter()
                .zip(self.input.fields())
                .all(|(a, b)| same(a, b))
        {
            return Err(Error::SchemaMismatch(format!(
                "window_aggregator: the batch's schema ({}) is not the one planned for ({})",
                batch.schema(),
                self.input
            )));
        }
        check_rows("window", batch.num_rows())?;
        let times = cast(batch.column(self.time), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let late = match self.kind {
            Kind::Session { .. } => self.push_sessions(batch, times)?,
            kind => self.push_fixed(batch, times, kind)?,
        };
        self.stats.batches += 1;
        self.stats.rows += batch.num_rows() as u64;
        self.stats.late_rows += late.len() as u64;
        if self.options.keep_late && !late.is_empty() {
            self.late
                .push(take_record_batch(batch, &UInt32Array::from(late))?);
        }
        let seen = match self.mark {
            Mark::Delay(delay) => arrow::compute::max(times).map(|t| t.saturating_sub(delay)),
            Mark::Column(i) => {
                let marks = cast(batch.column(i), &DataType::Int64)?;
                arrow::compute::max(marks.as_primitive::<Int64Type>())
            }
        };
        if let Some(seen) = seen {
            self.stats.watermark = Some(self.stats.watermark.map_or(seen, |w| w.max(seen)));
        }
        match self.stats.watermark {
            Some(w) => self.emit(Some(w)),
            None => Ok(None),
        }
    }

    /// Emits every window still open, as at the end of a bounded input (`None` if none
    /// is).
    pub fn finish(mut self) -> Result<Option<RecordBatch>> {
        self.emit(None)
    }

    /// The rows of `batch` (whose event times are `times`) with each row's window start
    /// (rows repeated for every window of a hop), grouped by window and key into the open
    /// windows: returns the late rows.
    fn push_fixed(
        &mut self,
        batch: &RecordBatch,
        times: &Int64Array,
        kind: Kind,
    ) -> Result<Vec<u32>> {
        let watermark = self.stats.watermark;
        let rows = batch.num_rows();
        // Tumbling windows, no null time: each row's window in one pass, and if none is
        // emitted yet (the usual batch), every row once.
        if let (Kind::Tumble { width }, 0) = (kind, times.null_count()) {
            let starts: Option<Vec<i64>> = times
                .values()
                .iter()
                .map(|t| {
                    let start = t.div_euclid(width).checked_mul(width)?;
                    start.checked_add(width).map(|_| start)
                })
                .collect();
            let open = |start: &i64| watermark.is_none_or(|w| start.saturating_add(width) > w);
            if let Some(starts) = starts.filter(|s| s.iter().all(open)) {
                if rows > 0 {
                    let grouped = self.group(batch, starts, None)?;
                    self.add_fixed(grouped, width)?;
                }
                return Ok(Vec::new());
            }
        }
        // A hop repeats each row for each of its windows: the batch grouped is that long.
        if let Kind::Hop { slide, width } = kind {
            let per_row = (width as u128).div_ceil(slide as u128);
            check_rows(
                "window",
                (rows as u128 * per_row).min(usize::MAX as u128) as usize,
            )?;
        }
        let mut picked: Vec<u32> = Vec::with_capacity(rows);
        let mut starts: Vec<i64> = Vec::with_capacity(rows);
        let mut late = Vec::new();
        for i in 0..rows {
            if times.is_null(i) {
                late.push(i as u32);
                continue;
            }
            let before = starts.len();
            kind.starts(times.value(i), |start, width| {
                // A window the watermark has reached is emitted: the row is late for it.
                if watermark.is_none_or(|w| start.saturating_add(width) > w) {
                    picked.push(i as u32);
                    starts.push(start);
                }
            });
            if starts.len() == before {
                late.push(i as u32);
            }
        }
        if starts.is_empty() {
            return Ok(late);
        }
        // Each row in exactly one window, in order (a hop's row in two windows and a late
        // row would also make as many picks as rows).
        let every_row_once = late.is_empty() && picked.len() == rows;
        let grouped = self.group(batch, starts, (!every_row_once).then_some(picked))?;
        let width = match kind {
            Kind::Tumble { width } | Kind::Hop { width, .. } => width,
            Kind::Session { .. } => unreachable!("fixed windows"),
        };
        self.add_fixed(grouped, width)?;
        Ok(late)
    }

    /// Merges a batch's groups (window start first among their keys) into their open
    /// windows of `width`.
    fn add_fixed(&mut self, grouped: Grouped, width: i64) -> Result<()> {
        let Store::Fixed(open) = &mut self.store else {
            unreachable!("fixed windows have a fixed store")
        };
        for (start, part) in split_by_window(grouped)? {
            let end = start.saturating_add(width);
            let merger = open.entry((end, start)).or_insert_with(Merger::new);
            merger.push(&self.plan, part)?;
        }
        Ok(())
    }

    /// Groups the rows `picked` of `batch` (all, in order, when `None`), each with its
    /// window id `ids[i]`, by window id and key.
    fn group(
        &self,
        batch: &RecordBatch,
        ids: Vec<i64>,
        picked: Option<Vec<u32>>,
    ) -> Result<Grouped> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(ids))];
        let picked = picked.map(UInt32Array::from);
        for &i in &self.projection {
            columns.push(match &picked {
                Some(p) => take(batch.column(i).as_ref(), p, None)?,
                None => batch.column(i).clone(),
            });
        }
        let rows = columns[0].len();
        let input = RecordBatch::try_new_with_options(
            self.grouped_schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let plan = &self.plan;
        self.engine.run(
            "window",
            |ctx| gpu::group_by::partial(ctx, gpu::group_by::Input::Host(&input), plan),
            || cpu::group_by::partial(&input, plan, self.engine.cpu),
        )
    }

    /// Sessions: rows behind the watermark are late; the others, per key in event-time
    /// order, form sessions that merge with the key's open ones.
    fn push_sessions(&mut self, batch: &RecordBatch, times: &Int64Array) -> Result<Vec<u32>> {
        let watermark = self.stats.watermark;
        let Store::Sessions(sessions) = &mut self.store else {
            unreachable!("sessions have a session store")
        };
        let rows = batch.num_rows();
        let mut late = Vec::new();
        let mut accepted: Vec<u32> = Vec::with_capacity(rows);
        let gap = sessions.gap;
        for i in 0..rows {
            // A session ending beyond i64 can't be told: such a row is late too.
            if times.is_null(i)
                || watermark.is_some_and(|w| times.value(i) < w)
                || times.value(i).checked_add(gap).is_none()
            {
                late.push(i as u32);
            } else {
                accepted.push(i as u32);
            }
        }
        if accepted.is_empty() {
            return Ok(late);
        }
        let encoded = match &sessions.converter {
            Some(converter) => {
                let keys: Vec<ArrayRef> = self
                    .plan
                    .keys
                    .iter()
                    .skip(1)
                    .map(|&k| batch.column(self.projection[k - 1]).clone())
                    .collect();
                Some(converter.convert_columns(&keys)?)
            }
            None => None,
        };
        let key_of = |row: u32| -> &[u8] {
            match &encoded {
                Some(rows) => rows.row(row as usize).data(),
                None => &[],
            }
        };
        // Each key's rows in event-time order (stable: ties keep arrival order).
        let mut order = accepted.clone();
        order.sort_by(|&a, &b| {
            key_of(a)
                .cmp(key_of(b))
                .then(times.value(a as usize).cmp(&times.value(b as usize)))
        });
        let (next_id, earliest_end) = (sessions.next_id, sessions.earliest_end);
        let mut undo = Vec::new();
        let mut ids = vec![0i64; rows];
        let mut i = 0;
        while i < order.len() {
            let key = key_of(order[i]);
            let first = times.value(order[i] as usize);
            let mut last = first;
            let mut j = i + 1;
            while j < order.len()
                && key_of(order[j]) == key
                && (times.value(order[j] as usize) as i128) < last as i128 + gap as i128
            {
                last = times.value(order[j] as usize);
                j += 1;
            }
            let id = sessions.add(key, first, last.saturating_add(gap), &mut undo);
            for &row in &order[i..j] {
                ids[row as usize] = id;
            }
            i = j;
        }
        let ids = accepted.iter().map(|&r| ids[r as usize]).collect();
        let every_row = accepted.len() == rows;
        let grouped = self.group(batch, ids, (!every_row).then_some(accepted));
        let Store::Sessions(sessions) = &mut self.store else {
            unreachable!("sessions have a session store")
        };
        match grouped {
            Ok(grouped) => sessions.parts.push(grouped),
            Err(e) => {
                // Nothing of a batch that failed stays.
                sessions.revert(undo, next_id, earliest_end);
                return Err(e);
            }
        }
        // Sessions that stay open for many batches: their parts merged into one, so that
        // memory and checkpoints grow with the open sessions, not the batches.
        if sessions.parts.len() >= COMPACT_PARTS {
            let scan = scan_sessions(sessions, &self.plan, &self.grouped_schema, Some(i64::MIN))?;
            let Store::Sessions(sessions) = &mut self.store else {
                unreachable!("sessions have a session store")
            };
            scan.commit(sessions);
        }
        Ok(late)
    }

    /// Emits the windows whose end the watermark `upto` has reached (every open window
    /// when `None`).
    fn emit(&mut self, upto: Option<i64>) -> Result<Option<RecordBatch>> {
        let closes = |end: i64| upto.is_none_or(|w| end <= w);
        match &mut self.store {
            Store::Fixed(open) => {
                // The closing windows are taken out, and put back if their output fails
                // (a decimal sum beyond 38 digits): they stay open, nothing is emitted.
                let mut taken: Vec<((i64, i64), Grouped)> = Vec::new();
                let mut failed = None;
                while let Some(entry) = open.first_entry() {
                    let (end, start) = *entry.key();
                    if !closes(end) {
                        break;
                    }
                    match entry.remove().finish(&self.plan) {
                        Ok(Some(g)) => taken.push(((end, start), g)),
                        Ok(None) => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let closed: Vec<(Vec<i64>, Vec<i64>, &Grouped)> = taken
                    .iter()
                    .map(|((end, start), g)| (vec![*start; g.groups], vec![*end; g.groups], g))
                    .collect();
                let out = match failed {
                    Some(e) => Err(e),
                    None => self.output(closed),
                };
                match out {
                    Ok(out) => {
                        self.stats.emitted_windows += taken.len() as u64;
                        self.stats.emissions += u64::from(out.is_some());
                        Ok(out)
                    }
                    Err(e) => {
                        let Store::Fixed(open) = &mut self.store else {
                            unreachable!("fixed windows have a fixed store")
                        };
                        for (key, g) in taken {
                            let mut merger = Merger::new();
                            merger.push(&self.plan, g)?;
                            open.insert(key, merger);
                        }
                        Err(e)
                    }
                }
            }
            Store::Sessions(sessions) => {
                if !closes(sessions.earliest_end) {
                    return Ok(None);
                }
                let scan = scan_sessions(sessions, &self.plan, &self.grouped_schema, upto)?;
                let closed: Vec<(Vec<i64>, Vec<i64>, &Grouped)> = scan
                    .emitted
                    .iter()
                    .map(|g| {
                        let (starts, ends) = scan.bounds().into_iter().unzip();
                        (starts, ends, g)
                    })
                    .collect();
                let out = self.output(closed)?;
                let emitted = scan.emitted.as_ref().map_or(0, |g| g.groups as u64);
                let Store::Sessions(sessions) = &mut self.store else {
                    unreachable!("sessions have a session store")
                };
                scan.commit(sessions);
                self.stats.emitted_windows += emitted;
                self.stats.emissions += u64::from(out.is_some());
                Ok(out)
            }
        }
    }

    /// The output batch of closed windows: each one's starts, ends and groups (for
    /// sessions, the session id first among the keys), ordered by end, start and key.
    /// `None` when there are none.
    fn output(&self, closed: Vec<(Vec<i64>, Vec<i64>, &Grouped)>) -> Result<Option<RecordBatch>> {
        if closed.is_empty() {
            return Ok(None);
        }
        let session = matches!(self.kind, Kind::Session { .. });
        let keys = self.keys.len();
        let by = |columns: std::ops::Range<usize>| -> Vec<Key> {
            columns
                .map(|column| Key {
                    column,
                    options: SortOptions::default(),
                })
                .collect()
        };
        let row_count = |rows: usize| RecordBatchOptions::new().with_row_count(Some(rows));
        let mut parts: Vec<RecordBatch> = Vec::with_capacity(closed.len());
        for (starts, ends, g) in closed {
            let rows = starts.len();
            let mut columns = vec![
                self.times(Int64Array::from(starts))?,
                self.times(Int64Array::from(ends))?,
            ];
            let mut finished = g.finish(&self.plan, 1)?;
            if session {
                finished.remove(0); // the session id
            }
            columns.extend(finished);
            let part =
                RecordBatch::try_new_with_options(self.output.clone(), columns, &row_count(rows))?;
            // A fixed window's groups by key (the windows are in (end, start) order).
            parts.push(if keys > 0 && !session {
                let indices =
                    cpu::sort::sort_to_indices(&part, &by(2..2 + keys), None, cpu::Threads::ONE)?;
                take_record_batch(&part, &indices)?
            } else {
                part
            });
        }
        let out = arrow::compute::concat_batches(&self.output, &parts)?;
        if !session {
            return Ok(Some(out));
        }
        // Sessions by end, start, then key.
        let mut order = by(1..2);
        order.extend(by(0..1));
        order.extend(by(2..2 + keys));
        let indices = cpu::sort::sort_to_indices(&out, &order, None, cpu::Threads::ONE)?;
        Ok(Some(take_record_batch(&out, &indices)?))
    }

    /// `values` as the time column's type.
    fn times(&self, values: Int64Array) -> Result<ArrayRef> {
        let data = values
            .into_data()
            .into_builder()
            .data_type(self.time_type.clone())
            .build()?;
        Ok(make_array(data))
    }

    /// Writes the whole state (open windows' partial aggregates, the watermark, the
    /// counters, the late rows kept and not yet taken) and `position` (the caller's word
    /// for how far the input was read) to `path` atomically: a temporary file beside it,
    /// fsync, rename, so a crash leaves the previous checkpoint or this one, never a part.
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use arrow::array::{Int64Array, TimestampSecondArray};
    /// use arrow::record_batch::RecordBatch;
    /// use arrow_wgpu::{col, Agg, Backend, Engine, Window, WindowOptions};
    /// let part = |ts: Vec<i64>| RecordBatch::try_from_iter([
    ///     ("ts", Arc::new(TimestampSecondArray::from(ts.clone())) as _),
    ///     ("v", Arc::new(Int64Array::from(ts)) as _),
    /// ]).unwrap();
    /// let engine = Engine::new(Backend::Cpu).unwrap();
    /// let options = WindowOptions::new("ts", Window::tumble(Duration::from_secs(10)));
    /// let aggs = [Agg::sum(col("v"))];
    /// let mut first = engine.window_aggregator(part(vec![]).schema(), options.clone(), &[], &aggs).unwrap();
    /// first.push(&part(vec![1, 2])).unwrap();
    /// let path = std::env::temp_dir().join(format!("window-doc-{}.ckpt", std::process::id()));
    /// first.save(&path, "batch 1").unwrap();
    /// let (mut resumed, position) = engine
    ///     .restore_window_aggregator(&path, part(vec![]).schema(), options, &[], &aggs)
    ///     .unwrap();
    /// assert_eq!(position, "batch 1");
    /// resumed.push(&part(vec![3])).unwrap();
    /// let out = resumed.finish().unwrap().unwrap();
    /// assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![6]));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn save(&mut self, path: impl AsRef<Path>, position: &str) -> Result<()> {
        checkpoint::save(self, path.as_ref(), position)
    }
}

impl Engine {
    /// A [`WindowAggregator`] restored from a file [`WindowAggregator::save`] wrote, with
    /// the `position` saved with it. The schema, options, keys and aggregates must be those
    /// it was made with (the file records them, and another set is refused with
    /// [`Error::Checkpoint`]); the backend may differ.
    ///
    /// Errors: [`Error::Checkpoint`] for a file that can't be read, isn't a checkpoint,
    /// is of another version or another aggregation; those of
    /// [`Engine::window_aggregator`].
    pub fn restore_window_aggregator(
        &self,
        path: impl AsRef<Path>,
        schema: SchemaRef,
        options: WindowOptions,
        keys: &[&str],
        aggs: &[Agg],
    ) -> Result<(WindowAggregator, String)> {
        let mut fresh = self.window_aggregator(schema, options, keys, aggs)?;
        let position = checkpoint::restore(&mut fresh, path.as_ref())?;
        Ok((fresh, position))
    }
}

/// The groups of `grouped` (window id first among its keys) split by window: each window
/// start and its groups, keys without the window id.
fn split_by_window(grouped: Grouped) -> Result<Vec<(i64, Grouped)>> {
    let Grouped {
        groups,
        mut keys,
        states,
    } = grouped;
    let window = keys.remove(0);
    let window = window.as_primitive::<Int64Type>().values();
    if groups == 0 {
        return Ok(Vec::new());
    }
    if window.iter().all(|&w| w == window[0]) {
        return Ok(vec![(
            window[0],
            Grouped {
                groups,
                keys,
                states,
            },
        )]);
    }
    let mut by_window: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (g, &w) in window.iter().enumerate() {
        by_window.entry(w).or_default().push(g as u32);
    }
    let state_refs: Vec<&State> = states.iter().collect();
    by_window
        .into_iter()
        .map(|(start, picked)| {
            let order: Vec<(u32, u32)> = picked.iter().map(|&g| (0, g)).collect();
            let picked = UInt32Array::from(picked);
            Ok((
                start,
                Grouped {
                    groups: order.len(),
                    keys: keys
                        .iter()
                        .map(|k| Ok(take(k.as_ref(), &picked, None)?))
                        .collect::<Result<_>>()?,
                    states: state_refs
                        .iter()
                        .map(|s| State::gather(&[*s], &order, 1))
                        .collect::<Result<_>>()?,
                },
            ))
        })
        .collect()
}

/// The groups of `grouped` picked by `picked`, with their session ids replaced by
/// `ids[g]`.
fn pick_groups(grouped: &Grouped, picked: &[u32], ids: &[i64]) -> Result<Grouped> {
    let order: Vec<(u32, u32)> = picked.iter().map(|&g| (0, g)).collect();
    let rows = UInt32Array::from(picked.to_vec());
    let mut keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(
        picked.iter().map(|&g| ids[g as usize]).collect::<Vec<_>>(),
    ))];
    for k in &grouped.keys[1..] {
        keys.push(take(k.as_ref(), &rows, None)?);
    }
    Ok(Grouped {
        groups: picked.len(),
        keys,
        states: grouped
            .states
            .iter()
            .map(|s| State::gather(&[s], &order, 1))
            .collect::<Result<_>>()?,
    })
}

/// A merger of session parts: it starts from no groups, so that a first part whose
/// groups share a session id (sessions merged since) merges them too.
fn session_merger(plan: &Plan, schema: &SchemaRef) -> Result<Merger> {
    let mut merger = Merger::new();
    let empty = RecordBatch::new_empty(schema.clone());
    merger.push(
        plan,
        cpu::group_by::partial(&empty, plan, cpu::Threads::ONE)?,
    )?;
    Ok(merger)
}

/// The sessions that end by a watermark, worked out without changing the open ones:
/// [`Scan::commit`] applies it once everything that can fail has succeeded.
struct Scan {
    /// The closing sessions' ids, and each one's (start, end).
    closing: HashMap<i64, (i64, i64)>,
    /// Their groups merged by session and key (session id first among the keys).
    emitted: Option<Grouped>,
    /// The open sessions' groups, merged into one part.
    kept: Option<Grouped>,
    /// The earliest end among the sessions left open.
    earliest: i64,
}

impl Scan {
    /// Closes the scanned sessions: the open ones keep only their merged part.
    fn commit(self, sessions: &mut Sessions) {
        let closing = &self.closing;
        sessions.open.retain(|_, list| {
            list.retain(|s| !closing.contains_key(&s.id));
            !list.is_empty()
        });
        sessions.parts = self.kept.into_iter().collect();
        // Every part kept is now labelled by its open session's own id.
        sessions.forward.clear();
        sessions.earliest_end = self.earliest;
    }

    /// Each emitted group's (start, end).
    fn bounds(&self) -> Vec<(i64, i64)> {
        self.emitted.as_ref().map_or_else(Vec::new, |g| {
            let ids = g.keys[0].as_primitive::<Int64Type>();
            ids.values().iter().map(|id| self.closing[id]).collect()
        })
    }
}

/// The sessions that end by `upto` (all when `None`) and their groups, and the open
/// sessions' parts merged into one (compacting them when nothing closes).
fn scan_sessions(
    sessions: &Sessions,
    plan: &Plan,
    schema: &SchemaRef,
    upto: Option<i64>,
) -> Result<Scan> {
    let mut closing: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut earliest = i64::MAX;
    for s in sessions.open.values().flatten() {
        if upto.is_none_or(|w| s.end <= w) {
            closing.insert(s.id, (s.start, s.end));
        } else {
            earliest = earliest.min(s.end);
        }
    }
    let mut emit = session_merger(plan, schema)?;
    let mut keep = session_merger(plan, schema)?;
    let (mut emitted_any, mut kept_any) = (false, false);
    for part in &sessions.parts {
        let labels = part.keys[0].as_primitive::<Int64Type>().values();
        let ids: Vec<i64> = labels.iter().map(|&l| sessions.resolve(l)).collect();
        let (closed, open): (Vec<u32>, Vec<u32>) =
            (0..part.groups as u32).partition(|&g| closing.contains_key(&ids[g as usize]));
        if !closed.is_empty() {
            emit.push(plan, pick_groups(part, &closed, &ids)?)?;
            emitted_any = true;
        }
        if !open.is_empty() {
            keep.push(plan, pick_groups(part, &open, &ids)?)?;
            kept_any = true;
        }
    }
    Ok(Scan {
        closing,
        emitted: if emitted_any {
            emit.finish(plan)?
        } else {
            None
        },
        kept: if kept_any { keep.finish(plan)? } else { None },
        earliest,
    })
}
