//! Event-time windows at their edges: late rows (dropped and counted, or kept), windows
//! with no rows, sessions extended and bridged by rows that arrive late but in time, a
//! watermark that never moves, a watermark column, every time unit and time zones, bad
//! arguments, and checkpoints that are not what they should be.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::*;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Error, Watermark, Window, WindowAggregator, WindowOptions};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Events with second timestamps: (ts, key, v).
fn events(rows: &[(Option<i64>, &str, i64)]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(TimestampSecondArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "k",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ),
        (
            "v",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ),
    ])
    .unwrap()
}

fn aggregator(options: WindowOptions) -> WindowAggregator {
    common::cpu()
        .window_aggregator(events(&[]).schema(), options, &["k"], &[Agg::sum(col("v"))])
        .unwrap()
}

/// (start, end, key, sum) of each row emitted.
fn rows(b: &RecordBatch) -> Vec<(i64, i64, String, i64)> {
    let t = |i: usize| {
        b.column(i)
            .as_any()
            .downcast_ref::<TimestampSecondArray>()
            .unwrap()
            .values()
            .to_vec()
    };
    let (s, e) = (t(0), t(1));
    let k = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
    let v = b.column(3).as_any().downcast_ref::<Int64Array>().unwrap();
    (0..b.num_rows())
        .map(|i| (s[i], e[i], k.value(i).to_string(), v.value(i)))
        .collect()
}

#[test]
fn late_rows_are_dropped_and_counted_or_kept() {
    for keep in [false, true] {
        let mut options = WindowOptions::new("ts", Window::tumble(secs(10)));
        if keep {
            options = options.keep_late();
        }
        let mut w = aggregator(options.clone());
        assert_eq!(
            w.push(&events(&[(Some(3), "a", 1), (Some(12), "a", 2)]))
                .unwrap()
                .map(|b| rows(&b)),
            Some(vec![(0, 10, "a".into(), 1)])
        );
        // Watermark 12: the window [0, 10) is emitted; [10, 20) is open.
        let late = events(&[
            (Some(9), "a", 100),
            (Some(11), "b", 5),
            (None, "a", 7),
            (Some(0), "c", 8),
        ]);
        assert!(w.push(&late).unwrap().is_none());
        if keep {
            // Late rows kept and not yet taken survive a restart.
            let path = std::env::temp_dir().join(format!("window-late-{}", std::process::id()));
            w.save(&path, "").unwrap();
            let schema = events(&[]).schema();
            w = common::cpu()
                .restore_window_aggregator(&path, schema, options, &["k"], &[Agg::sum(col("v"))])
                .unwrap()
                .0;
            std::fs::remove_file(&path).unwrap();
        }
        let stats = w.stats();
        assert_eq!((stats.rows, stats.late_rows, stats.open_windows), (6, 3, 1));
        assert_eq!(stats.watermark, Some(12));
        let kept = w.take_late();
        if keep {
            assert_eq!(
                kept,
                vec![events(&[
                    (Some(9), "a", 100),
                    (None, "a", 7),
                    (Some(0), "c", 8)
                ])]
            );
        } else {
            assert!(kept.is_empty());
        }
        assert!(w.take_late().is_empty(), "taken once");
        let rest = w.finish().unwrap().unwrap();
        assert_eq!(
            rows(&rest),
            vec![(10, 20, "a".into(), 2), (10, 20, "b".into(), 5)]
        );
    }
}

#[test]
fn a_hop_row_late_for_some_windows_goes_to_the_others() {
    // Windows of 10 s every 5 s: a row at 13 is in [5, 15) and [10, 20).
    let mut w = aggregator(WindowOptions::new("ts", Window::hop(secs(5), secs(10))));
    let first = w
        .push(&events(&[(Some(1), "a", 1), (Some(13), "a", 2)]))
        .unwrap()
        .unwrap();
    assert_eq!(
        rows(&first),
        vec![(-5, 5, "a".into(), 1), (0, 10, "a".into(), 1)]
    );
    assert!(w.push(&events(&[(Some(12), "a", 10)])).unwrap().is_none());
    assert_eq!(w.stats().late_rows, 0, "[5, 15) and [10, 20) are open");
    assert!(w.push(&events(&[(Some(7), "a", 1000)])).unwrap().is_none());
    assert_eq!(w.stats().late_rows, 0, "7 is late for [0, 10) only");
    assert!(w.push(&events(&[(Some(2), "a", 1)])).unwrap().is_none());
    assert_eq!(w.stats().late_rows, 1, "2 is late for [-5, 5) and [0, 10)");
    let rest = w.finish().unwrap().unwrap();
    assert_eq!(
        rows(&rest),
        vec![(5, 15, "a".into(), 1012), (10, 20, "a".into(), 12)]
    );
}

#[test]
fn a_window_with_no_rows_is_not_emitted() {
    let mut w = aggregator(WindowOptions::new("ts", Window::tumble(secs(10))));
    let out = w
        .push(&events(&[(Some(5), "a", 1), (Some(45), "a", 2)]))
        .unwrap()
        .unwrap();
    assert_eq!(rows(&out), vec![(0, 10, "a".into(), 1)]);
    assert_eq!(w.stats().emitted_windows, 1);
    // No keys either: an empty window is no row, not a row of empty aggregates.
    let mut global = common::cpu()
        .window_aggregator(
            events(&[]).schema(),
            WindowOptions::new("ts", Window::tumble(secs(10))),
            &[],
            &[Agg::count_star()],
        )
        .unwrap();
    let out = global
        .push(&events(&[(Some(5), "a", 1), (Some(45), "a", 2)]))
        .unwrap()
        .unwrap();
    assert_eq!(out.num_rows(), 1);
    assert!(global.push(&events(&[])).unwrap().is_none());
    assert_eq!(global.finish().unwrap().unwrap().num_rows(), 1);
}

#[test]
fn sessions_grow_and_merge_with_rows_late_but_in_time() {
    let options =
        WindowOptions::new("ts", Window::session(secs(10))).watermark(Watermark::Delay(secs(25)));
    let mut w = aggregator(options);
    // a: sessions [0, 10) and [15, 25); b: [0, 10).
    assert!(w
        .push(&events(&[
            (Some(0), "a", 1),
            (Some(15), "a", 2),
            (Some(0), "b", 3)
        ]))
        .unwrap()
        .is_none());
    assert_eq!(w.stats().open_windows, 3);
    // 30 moves the watermark to 5; b's session is extended by 8 (behind 30, not behind 5).
    assert!(w
        .push(&events(&[(Some(30), "c", 4), (Some(8), "b", 5)]))
        .unwrap()
        .is_none());
    assert_eq!(w.stats().open_windows, 4);
    // 7 bridges a's two sessions: [0, 25).
    assert!(w.push(&events(&[(Some(7), "a", 10)])).unwrap().is_none());
    assert_eq!(w.stats().open_windows, 3);
    // 43 moves the watermark to 18: b's [0, 18) closes.
    let out = w.push(&events(&[(Some(43), "c", 0)])).unwrap().unwrap();
    assert_eq!(rows(&out), vec![(0, 18, "b".into(), 8)]);
    // Behind the watermark, a session row is late even where no session was emitted.
    assert!(w.push(&events(&[(Some(17), "z", 99)])).unwrap().is_none());
    assert_eq!(w.stats().late_rows, 1);
    let rest = w.finish().unwrap().unwrap();
    assert_eq!(
        rows(&rest),
        vec![
            (0, 25, "a".into(), 13),
            (30, 40, "c".into(), 4),
            (43, 53, "c".into(), 0)
        ]
    );
}

#[test]
fn a_watermark_that_never_moves_emits_at_the_end_only() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("wm", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("v", DataType::Int64, true),
    ]));
    let batch = |ts: Vec<i64>, wm: Vec<Option<i64>>| {
        let v: Vec<i64> = ts.clone();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampSecondArray::from(ts)),
                Arc::new(TimestampSecondArray::from(wm)),
                Arc::new(Int64Array::from(v)),
            ],
        )
        .unwrap()
    };
    let engine = common::cpu();
    let options = WindowOptions::new("ts", Window::tumble(secs(10)))
        .watermark(Watermark::Column("wm".into()));
    let mut w = engine
        .window_aggregator(schema.clone(), options.clone(), &[], &[Agg::sum(col("v"))])
        .unwrap();
    for n in 0..20 {
        assert!(w
            .push(&batch(vec![n * 10, n * 10 + 5], vec![Some(-100), None]))
            .unwrap()
            .is_none());
    }
    assert_eq!(w.stats().open_windows, 20);
    assert_eq!(w.stats().watermark, Some(-100));
    let all = w.finish().unwrap().unwrap();
    assert_eq!(all.num_rows(), 20);
    // The column moves it: windows ending by 35 close, whatever the event times say.
    let mut w = engine
        .window_aggregator(schema.clone(), options, &[], &[Agg::sum(col("v"))])
        .unwrap();
    assert!(w
        .push(&batch(vec![0, 100], vec![None, Some(9)]))
        .unwrap()
        .is_none());
    let out = w.push(&batch(vec![31], vec![Some(35)])).unwrap().unwrap();
    assert_eq!(out.column(2).as_ref(), &Int64Array::from(vec![0]));
    assert!(w.push(&batch(vec![19], vec![Some(30)])).unwrap().is_none());
    assert_eq!(w.stats().late_rows, 1);
    assert_eq!(w.stats().watermark, Some(35), "never back");
}

#[test]
fn every_unit_and_time_zones() {
    let engine = common::cpu();
    for (unit, per_sec) in [
        (TimeUnit::Second, 1i64),
        (TimeUnit::Millisecond, 1_000),
        (TimeUnit::Microsecond, 1_000_000),
        (TimeUnit::Nanosecond, 1_000_000_000),
    ] {
        for tz in [None, Some("America/New_York"), Some("+05:30")] {
            let dt = DataType::Timestamp(unit, tz.map(Into::into));
            let ts = arrow::compute::cast(
                &Int64Array::from(vec![-1, 0, 59 * per_sec, 60 * per_sec, 61 * per_sec + 1]),
                &dt,
            )
            .unwrap();
            let batch = RecordBatch::try_from_iter([
                ("t", ts),
                (
                    "v",
                    Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5])) as ArrayRef,
                ),
            ])
            .unwrap();
            let mut w = engine
                .window_aggregator(
                    batch.schema(),
                    WindowOptions::new("t", Window::tumble(secs(60))),
                    &[],
                    &[Agg::sum(col("v"))],
                )
                .unwrap();
            assert!(w.push(&batch).unwrap().is_some());
            let out = w.finish().unwrap().unwrap();
            assert_eq!(out.schema().field(0).data_type(), &dt);
            assert_eq!(out.schema().field(1).data_type(), &dt);
            let starts = arrow::compute::cast(out.column(0), &DataType::Int64).unwrap();
            assert_eq!(starts.as_ref(), &Int64Array::from(vec![60 * per_sec]));
            // A window of 1.5 s is no whole number of seconds.
            let half = engine.window_aggregator(
                batch.schema(),
                WindowOptions::new("t", Window::tumble(Duration::from_millis(1_500))),
                &[],
                &[Agg::count_star()],
            );
            assert_eq!(half.is_err(), unit == TimeUnit::Second);
        }
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let engine = common::cpu();
    let schema = events(&[]).schema();
    let make = |options: WindowOptions, keys: &[&str]| {
        engine
            .window_aggregator(schema.clone(), options, keys, &[Agg::count_star()])
            .map(|_| ())
    };
    let tumble = |w: u64| WindowOptions::new("ts", Window::tumble(Duration::from_secs(w)));
    assert!(matches!(
        make(WindowOptions::new("nope", Window::tumble(secs(1))), &[]),
        Err(Error::UnknownColumn { .. })
    ));
    let e = make(WindowOptions::new("v", Window::tumble(secs(1))), &[]).unwrap_err();
    assert!(e.to_string().contains("event time"), "{e}");
    assert!(!e.is_gpu_side());
    assert!(make(tumble(0), &[])
        .unwrap_err()
        .to_string()
        .contains("longer than zero"));
    assert!(
        make(WindowOptions::new("ts", Window::hop(secs(2), secs(1))), &[])
            .unwrap_err()
            .to_string()
            .contains("slide")
    );
    assert!(make(
        WindowOptions::new("ts", Window::session(Duration::ZERO)),
        &[]
    )
    .is_err());
    assert!(
        make(tumble(1).watermark(Watermark::Column("v".into())), &[])
            .unwrap_err()
            .to_string()
            .contains("watermark")
    );
    assert!(make(tumble(1).watermark(Watermark::Column("x".into())), &[]).is_err());
    assert!(make(tumble(1), &["window_start"]).is_err());
    assert!(make(tumble(1), &["missing"]).is_err());
    let mut w = aggregator(tumble(1));
    let other =
        RecordBatch::try_from_iter([("ts", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    assert!(matches!(w.push(&other), Err(Error::SchemaMismatch(_))));
    assert_eq!(w.stats().batches, 0, "nothing of a refused batch is taken");
}

#[test]
fn checkpoints_refuse_what_they_are_not() {
    let dir = std::env::temp_dir().join(format!("window-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state");
    let engine = common::cpu();
    let schema = events(&[]).schema();
    let options = WindowOptions::new("ts", Window::session(secs(10)));
    let aggs = [
        Agg::sum(col("v")),
        Agg::max(col("k")),
        Agg::count_distinct(col("k")),
    ];
    let mut w = engine
        .window_aggregator(schema.clone(), options.clone(), &["k"], &aggs)
        .unwrap();
    w.push(&events(&[(Some(1), "a", 1), (Some(30), "b", 2)]))
        .unwrap();
    w.save(&path, "here").unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("state")],
        "no temporary file is left"
    );
    let restore = |options: WindowOptions, keys: &[&str]| {
        engine.restore_window_aggregator(&path, schema.clone(), options, keys, &aggs)
    };
    let (back, position) = restore(options.clone(), &["k"]).unwrap();
    assert_eq!(position, "here");
    assert_eq!(back.stats(), w.stats());
    assert_eq!(back.finish().unwrap(), w.finish().unwrap());
    // Another aggregation.
    let other = restore(WindowOptions::new("ts", Window::session(secs(11))), &["k"]).unwrap_err();
    assert!(matches!(other, Error::Checkpoint { .. }), "{other}");
    assert!(other.to_string().contains("another aggregation"), "{other}");
    // Cut short, or not a checkpoint, or missing.
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() / 2, 40, 3] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = restore(options.clone(), &["k"]).unwrap_err();
        assert!(matches!(e, Error::Checkpoint { .. }), "cut at {cut}: {e}");
    }
    std::fs::write(&path, b"PAR1 not a checkpoint").unwrap();
    assert!(restore(options.clone(), &["k"])
        .unwrap_err()
        .to_string()
        .contains("not an arrow-wgpu window checkpoint"));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        restore(options.clone(), &["k"]),
        Err(Error::Checkpoint { .. })
    ));
    // A folder that isn't there: an error, and nothing written.
    let mut w = engine
        .window_aggregator(schema, options, &["k"], &aggs)
        .unwrap();
    assert!(matches!(
        w.save(dir.join("no/such/dir/state"), ""),
        Err(Error::Checkpoint { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_push_leaves_nothing_behind() {
    // `v / d` divides by zero in the second batch: its group-by fails after the batch's
    // sessions were formed, and nothing of it may stay.
    let batch = |rows: &[(i64, &str, i64, i64)]| {
        RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampSecondArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            (
                "k",
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
            ),
            (
                "v",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ),
            (
                "d",
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
            ),
        ])
        .unwrap()
    };
    let a = batch(&[(0, "a", 10, 2), (30, "b", 8, 4), (31, "a", 6, 3)]);
    let bad = batch(&[(12, "a", 1, 0), (35, "b", 1, 1), (24, "a", 1, 1)]);
    let c = batch(&[(40, "a", 9, 3), (70, "b", 2, 2)]);
    let engine = common::cpu();
    for window in [
        Window::tumble(secs(10)),
        Window::hop(secs(5), secs(20)),
        Window::session(secs(15)),
    ] {
        let make = || {
            let options = WindowOptions::new("ts", window).watermark(Watermark::Delay(secs(100)));
            engine
                .window_aggregator(
                    a.schema(),
                    options,
                    &["k"],
                    &[Agg::sum(col("v") / col("d")), Agg::count_star()],
                )
                .unwrap()
        };
        let mut failed = make();
        assert!(failed.push(&a).unwrap().is_none());
        let before = failed.stats();
        assert!(
            matches!(failed.push(&bad), Err(Error::DivideByZero)),
            "{window}"
        );
        assert_eq!(failed.stats(), before, "{window}");
        failed.push(&c).unwrap();
        let mut clean = make();
        clean.push(&a).unwrap();
        clean.push(&c).unwrap();
        assert_eq!(failed.stats(), clean.stats(), "{window}");
        assert_eq!(
            failed.finish().unwrap(),
            clean.finish().unwrap(),
            "{window}"
        );
    }
}

#[test]
fn hop_rows_stay_with_their_values_beside_late_and_null_rows() {
    // A row in two windows beside a row in none makes as many picks as rows: the values
    // must still go with their own rows.
    let options = || WindowOptions::new("ts", Window::hop(secs(5), secs(10)));
    let mut w = aggregator(options());
    assert!(w
        .push(&events(&[(Some(14), "a", 5), (None, "b", 1000)]))
        .unwrap()
        .is_none());
    let rest = w.finish().unwrap().unwrap();
    assert_eq!(
        rows(&rest),
        vec![(5, 15, "a".into(), 5), (10, 20, "a".into(), 5)]
    );
    let mut w = aggregator(options());
    let first = w
        .push(&events(&[(Some(1), "a", 1), (Some(13), "a", 2)]))
        .unwrap()
        .unwrap();
    assert_eq!(first.num_rows(), 2);
    // Watermark 13: a row at 14 is in [5, 15) and [10, 20); one at 2 is late for both of
    // its windows.
    assert!(w
        .push(&events(&[(Some(14), "a", 5), (Some(2), "b", 1000)]))
        .unwrap()
        .is_none());
    assert_eq!(w.stats().late_rows, 1);
    let rest = w.finish().unwrap().unwrap();
    assert_eq!(
        rows(&rest),
        vec![(5, 15, "a".into(), 7), (10, 20, "a".into(), 7)]
    );
}

#[test]
fn windows_beyond_the_range_of_i64_take_no_row() {
    let t = |v: i64| Some(v);
    for window in [
        Window::tumble(secs(10)),
        Window::hop(secs(5), secs(10)),
        Window::session(secs(10)),
    ] {
        let mut w = aggregator(
            WindowOptions::new("ts", window).watermark(Watermark::Delay(secs(u32::MAX as u64))),
        );
        let batch = events(&[
            (t(i64::MAX), "a", 1),
            (t(i64::MAX - 3), "a", 2),
            (t(i64::MIN), "a", 4),
            (t(0), "a", 8),
        ]);
        let mut out: Vec<_> = w.push(&batch).unwrap().iter().flat_map(rows).collect();
        let late = w.stats().late_rows;
        out.extend(w.finish().unwrap().iter().flat_map(rows));
        // Every row is in a window or counted late; windows end within i64.
        assert!(late >= 2, "{window}: {late}");
        let at_zero: Vec<i64> = out
            .iter()
            .filter(|r| r.0 <= 0 && 0 < r.1)
            .map(|r| r.3)
            .collect();
        let windows = if matches!(window, Window::Hop { .. }) {
            2
        } else {
            1
        };
        assert_eq!(
            at_zero,
            vec![8; windows],
            "{window}: the row at 0 in each of its windows"
        );
        assert!(out.iter().all(|r| r.0 < r.1), "{window}");
    }
    // A hop whose every row would be in more than 10,000 windows is refused.
    let e = common::cpu()
        .window_aggregator(
            events(&[]).schema(),
            WindowOptions::new("ts", Window::hop(secs(1), secs(86_400))),
            &[],
            &[Agg::count_star()],
        )
        .unwrap_err();
    assert!(e.to_string().contains("windows"), "{e}");
}

#[test]
fn a_window_that_fails_to_finish_stays_open() {
    // Two values of 6e37 fit the i128 sum, not the 38 digits of its Decimal128(38, 0).
    let batch = |ts: Vec<i64>, v: Vec<i128>| {
        RecordBatch::try_from_iter([
            ("ts", Arc::new(TimestampSecondArray::from(ts)) as ArrayRef),
            (
                "v",
                Arc::new(
                    Decimal128Array::from(v)
                        .with_precision_and_scale(38, 0)
                        .unwrap(),
                ) as ArrayRef,
            ),
        ])
        .unwrap()
    };
    let big = 60_000_000_000_000_000_000_000_000_000_000_000_000i128;
    for window in [Window::tumble(secs(10)), Window::session(secs(5))] {
        let mut w = common::cpu()
            .window_aggregator(
                batch(vec![], vec![]).schema(),
                WindowOptions::new("ts", window),
                &[],
                &[Agg::sum(col("v"))],
            )
            .unwrap();
        assert!(w
            .push(&batch(vec![1, 2], vec![big, big]))
            .unwrap()
            .is_none());
        let e = w.push(&batch(vec![20], vec![1])).unwrap_err();
        assert!(matches!(e, Error::ArithmeticOverflow(_)), "{window}: {e}");
        let s = w.stats();
        assert_eq!(
            (s.emitted_windows, s.emissions, s.open_windows),
            (0, 0, 2),
            "{window}"
        );
        // It is reported again, and nothing else is lost: a checkpoint still saves it.
        assert!(matches!(
            w.push(&batch(vec![30], vec![1])),
            Err(Error::ArithmeticOverflow(_))
        ));
        let path = std::env::temp_dir().join(format!("window-overflow-{}", std::process::id()));
        w.save(&path, "").unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(w.finish(), Err(Error::ArithmeticOverflow(_))));
    }
}
