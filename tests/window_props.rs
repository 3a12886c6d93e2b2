//! Event-time windows against answers computed here: random event streams (out of order
//! within the allowed delay, repeated timestamps, nulls in keys and values, NaN, -0.0,
//! floats over a wide range of exponents), random tumbling, hopping and session windows,
//! random splits into batches. Everything emitted equals a batch group-by of the same
//! events bucketed into windows by this file's own arithmetic (and, for counts and integer
//! sums, sums taken row by row here), for every arrival order and split tried, on the CPU
//! and on every GPU adapter, to the bit; and a run saved to a checkpoint and restored
//! midway gives the same as one that never stopped.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::*;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Engine, GroupByOptions, Watermark, Window, WindowOptions};
use common::gen::Rng;
use proptest::prelude::*;

/// One event: its time (ms), key, integer and float value.
#[derive(Debug, Clone, Copy)]
struct Event {
    ts: i64,
    key: Option<i64>,
    i: Option<i64>,
    x: Option<f64>,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
            true,
        ),
        Field::new("key", DataType::Int64, true),
        Field::new("i", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
    ]))
}

fn to_batch(events: &[Event]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(
                TimestampMillisecondArray::from(events.iter().map(|e| e.ts).collect::<Vec<_>>())
                    .with_timezone("+02:00"),
            ),
            Arc::new(Int64Array::from(
                events.iter().map(|e| e.key).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                events.iter().map(|e| e.i).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                events.iter().map(|e| e.x).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn float(rng: &mut Rng) -> f64 {
    match rng.below(12) {
        0 => f64::NAN,
        1 => -0.0,
        2 => 0.0,
        3 => f64::from_bits(rng.below(1 << 52)), // subnormal
        4 => (rng.below(2001) as f64 - 1000.0) * 2f64.powi(rng.below(200) as i32 - 100),
        _ => rng.below(10_000) as f64 / 16.0 - 300.0,
    }
}

/// Events in time order, `delay` the out-of-order tolerance; returned in an arrival order
/// that the watermark `max seen - delay` never makes late: each event arrives at its time
/// plus a random wait of at most `delay`.
fn events(rng: &mut Rng, rows: usize, delay: i64) -> (Vec<Event>, Vec<Event>) {
    let keys = 1 + rng.below(6) as i64;
    let mut t = rng.below(5_000) as i64 - 2_500; // before and after the epoch
    let mut all = Vec::with_capacity(rows);
    for _ in 0..rows {
        // Bursts (equal times) and quiet spells (sessions end).
        t += match rng.below(10) {
            0..=2 => 0,
            3 => 500 + rng.below(3_000) as i64,
            _ => rng.below(200) as i64,
        };
        all.push(Event {
            ts: t,
            key: (!rng.chance(0.1)).then(|| rng.below(keys as u64) as i64),
            i: (!rng.chance(0.1)).then(|| rng.below(1_000) as i64 - 500),
            x: (!rng.chance(0.1)).then(|| float(rng)),
        });
    }
    let arrival = arrival_order(rng, &all, delay);
    (all, arrival)
}

fn arrival_order(rng: &mut Rng, events: &[Event], delay: i64) -> Vec<Event> {
    let mut arriving: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(n, e)| (e.ts + rng.below(delay as u64 + 1) as i64, n))
        .collect();
    arriving.sort();
    arriving.into_iter().map(|(_, n)| events[n]).collect()
}

/// `events` cut into batches at random points (empty batches too).
fn split(rng: &mut Rng, events: &[Event]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < events.len() {
        let n = match rng.below(4) {
            0 => 0,
            1 => 1,
            _ => 1 + rng.below(events.len() as u64 / 3 + 1) as usize,
        };
        let end = (at + n).min(events.len());
        out.push(to_batch(&events[at..end]));
        at = end;
    }
    out.push(to_batch(&[]));
    out
}

fn random_window(rng: &mut Rng) -> Window {
    let ms = |n: u64| Duration::from_millis(n);
    match rng.below(3) {
        0 => Window::tumble(ms(1 + rng.below(2_000))),
        1 => {
            let slide = 1 + rng.below(800);
            Window::hop(ms(slide), ms(slide * (1 + rng.below(3)) + rng.below(slide)))
        }
        _ => Window::session(ms(1 + rng.below(1_500))),
    }
}

fn aggs() -> Vec<Agg> {
    vec![
        Agg::count_star(),
        Agg::count(col("x")),
        Agg::sum(col("i")),
        Agg::sum(col("x")),
        Agg::mean(col("x")),
        Agg::min(col("x")),
        Agg::max(col("i")),
        Agg::var_samp(col("x")),
        Agg::stddev_pop(col("x")),
        Agg::count_distinct(col("i")),
    ]
}

/// Every window of the events, computed here: (start, end) and the event's index, for
/// every window the event belongs to.
fn bucket(events: &[Event], window: Window) -> Vec<(i64, i64, usize)> {
    let ms = |d: Duration| d.as_millis() as i64;
    let mut out = Vec::new();
    match window {
        Window::Tumble { width } => {
            let w = ms(width);
            for (n, e) in events.iter().enumerate() {
                let start = e.ts.div_euclid(w) * w;
                out.push((start, start + w, n));
            }
        }
        Window::Hop { slide, width } => {
            let (s, w) = (ms(slide), ms(width));
            for (n, e) in events.iter().enumerate() {
                // Every k with k·s <= ts < k·s + w.
                let last = e.ts.div_euclid(s);
                let mut k = last;
                while k * s + w > e.ts {
                    out.push((k * s, k * s + w, n));
                    k -= 1;
                }
            }
        }
        Window::Session { gap } => {
            let g = ms(gap);
            let mut by_key: BTreeMap<Option<i64>, Vec<usize>> = BTreeMap::new();
            for (n, e) in events.iter().enumerate() {
                by_key.entry(e.key).or_default().push(n);
            }
            for rows in by_key.values_mut() {
                rows.sort_by_key(|&n| events[n].ts);
                let mut i = 0;
                while i < rows.len() {
                    let mut j = i + 1;
                    while j < rows.len() && events[rows[j]].ts - events[rows[j - 1]].ts < g {
                        j += 1;
                    }
                    let (start, end) = (events[rows[i]].ts, events[rows[j - 1]].ts + g);
                    for &n in &rows[i..j] {
                        out.push((start, end, n));
                    }
                    i = j;
                }
            }
        }
    }
    out
}

/// The batch group-by of the bucketed events, ordered as windows are emitted: by end,
/// start, key; with `window_start`, `window_end` first.
fn expected(engine: &Engine, events: &[Event], window: Window) -> RecordBatch {
    let rows = bucket(events, window);
    let picked: Vec<Event> = rows.iter().map(|r| events[r.2]).collect();
    let b = to_batch(&picked);
    let ends = Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
    let starts = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let input = RecordBatch::try_from_iter([
        ("window_end", Arc::new(ends) as ArrayRef),
        ("window_start", Arc::new(starts) as ArrayRef),
        ("key", b.column(1).clone()),
        ("i", b.column(2).clone()),
        ("x", b.column(3).clone()),
    ])
    .unwrap();
    let out = engine
        .group_by_with(
            &input,
            &["window_end", "window_start", "key"],
            &aggs(),
            GroupByOptions::sorted(),
        )
        .unwrap();
    let mut columns = out.columns().to_vec();
    columns.swap(0, 1);
    RecordBatch::try_from_iter(
        ["window_start", "window_end"]
            .iter()
            .map(|s| s.to_string())
            .chain(
                out.schema()
                    .fields()
                    .iter()
                    .skip(2)
                    .map(|f| f.name().clone()),
            )
            .zip(columns),
    )
    .unwrap()
}

/// (end, start, key) -> (count(*), sum(i)).
type Counted = BTreeMap<(i64, i64, Option<i64>), (i64, Option<i64>)>;

/// Counts and integer sums per window and key, row by row: (end, start, key) ->
/// (count(*), sum(i) or None).
fn counted(events: &[Event], window: Window) -> Counted {
    let mut out: BTreeMap<_, (i64, Option<i64>)> = BTreeMap::new();
    for (start, end, n) in bucket(events, window) {
        let e = events[n];
        let slot = out.entry((end, start, e.key)).or_default();
        slot.0 += 1;
        if let Some(i) = e.i {
            slot.1 = Some(slot.1.unwrap_or(0) + i);
        }
    }
    out
}

/// Runs the batches through a window aggregator: everything emitted, in order. With
/// `save_at`, the aggregator is saved after that many batches and restored by `restorer`
/// (a fresh one: the run goes on from the file).
fn run(
    engine: &Engine,
    restorer: &Engine,
    batches: &[RecordBatch],
    options: &WindowOptions,
    save_at: Option<usize>,
) -> RecordBatch {
    let keys = ["key"];
    let aggs = aggs();
    let mut agg = engine
        .window_aggregator(schema(), options.clone(), &keys, &aggs)
        .unwrap();
    let mut out = Vec::new();
    for (n, b) in batches.iter().enumerate() {
        if save_at == Some(n) {
            let path = std::env::temp_dir().join(format!(
                "window-props-{}-{:?}.ckpt",
                std::process::id(),
                std::thread::current().id()
            ));
            agg.save(&path, &n.to_string()).unwrap();
            drop(agg);
            let (restored, position) = restorer
                .restore_window_aggregator(&path, schema(), options.clone(), &keys, &aggs)
                .unwrap();
            assert_eq!(position, n.to_string());
            std::fs::remove_file(&path).unwrap();
            agg = restored;
        }
        if let Some(closed) = agg.push(b).unwrap() {
            assert!(closed.num_rows() > 0);
            out.push(closed);
        }
    }
    assert_eq!(agg.stats().late_rows, 0, "no event arrives late");
    if let Some(rest) = agg.finish().unwrap() {
        out.push(rest);
    }
    let schema = out.first().map(|b| b.schema());
    match schema {
        Some(s) => concat_batches(&s, &out).unwrap(),
        None => RecordBatch::new_empty(
            engine
                .window_aggregator(self::schema(), options.clone(), &keys, &aggs)
                .unwrap()
                .schema(),
        ),
    }
}

/// A batch's columns as comparable values: times and integers as i64, floats as their
/// bits (so NaN equals NaN and -0.0 differs from 0.0).
fn bits(b: &RecordBatch) -> Vec<Vec<Option<u64>>> {
    b.columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Float64 => c
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .iter()
                .map(|v| v.map(f64::to_bits))
                .collect(),
            _ => {
                let c = cast(c, &DataType::Int64).unwrap();
                c.as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .iter()
                    .map(|v| v.map(|v| v as u64))
                    .collect()
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn windows_equal_a_group_by_of_the_bucketed_events(seed in any::<u64>(), rows in 0usize..600) {
        let mut rng = Rng(seed);
        let delay = rng.below(3_000) as i64;
        let (all, arrival) = events(&mut rng, rows, delay);
        let window = random_window(&mut rng);
        let options = WindowOptions::new("ts", window)
            .watermark(Watermark::Delay(Duration::from_millis(delay as u64)));
        let cpu = common::cpu();
        let want = expected(&cpu, &all, window);
        // Counts and integer sums, row by row.
        let counts = counted(&all, window);
        let direct: Vec<Option<u64>> = counts.values().map(|c| Some(c.0 as u64)).collect();
        let int_sums: Vec<Option<u64>> = counts.values().map(|c| c.1.map(|v| v as u64)).collect();
        let want_bits = bits(&want);
        prop_assert_eq!(&want_bits[3], &direct);
        prop_assert_eq!(&want_bits[5], &int_sums);

        let batches = split(&mut rng, &arrival);
        let got = run(&cpu, &cpu, &batches, &options, None);
        prop_assert_eq!(got.schema().field(0).data_type().clone(), schema().field(0).data_type().clone());
        prop_assert_eq!(bits(&got), want_bits.clone(), "window {}", window);

        // Another arrival order and split, saved and restored midway.
        let arrival2 = arrival_order(&mut rng, &all, delay);
        let batches2 = split(&mut rng, &arrival2);
        let save_at = rng.below(batches2.len() as u64) as usize;
        let got2 = run(&cpu, &cpu, &batches2, &options, Some(save_at));
        prop_assert_eq!(bits(&got2), want_bits.clone(), "window {} restored at {}", window, save_at);

        // Every GPU adapter, and a CPU checkpoint restored on it.
        for (name, gpu) in common::gpu_engines(None) {
            let on_gpu = run(&gpu, &gpu, &batches, &options, None);
            prop_assert_eq!(bits(&on_gpu), want_bits.clone(), "{}: window {}", name, window);
            let moved = run(&cpu, &gpu, &batches2, &options, Some(save_at));
            prop_assert_eq!(bits(&moved), want_bits.clone(), "cpu then {}: window {}", name, window);
            let back = run(&gpu, &cpu, &batches2, &options, Some(save_at));
            prop_assert_eq!(
                bits(&back),
                want_bits.clone(),
                "{} then cpu: window {}",
                name,
                window
            );
        }
    }
}

/// Many keys and windows in big batches: every row's windows agree with the bucketing,
/// whatever the split (the batch group-by runs on several threads here).
#[test]
fn many_keys_in_big_batches() {
    let mut rng = Rng(0x3e1d_2026);
    let mut all = Vec::new();
    for n in 0..60_000i64 {
        all.push(Event {
            ts: n / 3 + rng.below(50) as i64,
            key: Some(rng.below(5_000) as i64),
            i: Some(rng.below(100) as i64),
            x: Some(float(&mut rng)),
        });
    }
    let mut by_time = all.clone();
    by_time.sort_by_key(|e| e.ts);
    let cpu = common::cpu();
    for window in [
        Window::tumble(Duration::from_millis(1_000)),
        Window::hop(Duration::from_millis(700), Duration::from_millis(2_000)),
        Window::session(Duration::from_millis(900)),
    ] {
        let want = bits(&expected(&cpu, &by_time, window));
        let options =
            WindowOptions::new("ts", window).watermark(Watermark::Delay(Duration::from_millis(50)));
        // Small batches: sessions open over more than 64 of them have their parts merged
        // as they go; a checkpoint midway holds the merged ones.
        let small: Vec<RecordBatch> = all.chunks(400).map(to_batch).collect();
        assert_eq!(
            bits(&run(&cpu, &cpu, &small, &options, Some(97))),
            want,
            "{window}, small batches"
        );
        let batches: Vec<RecordBatch> = all.chunks(7_000).map(to_batch).collect();
        assert_eq!(
            bits(&run(&cpu, &cpu, &batches, &options, None)),
            want,
            "{window}"
        );
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for b in &batches {
            *counts.entry(b.num_rows()).or_default() += 1;
        }
        assert!(counts.len() > 1, "the last batch is shorter");
    }
}
