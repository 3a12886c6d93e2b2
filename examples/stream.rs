//! Sensor readings arriving out of order, aggregated by event-time window as they come:
//! per-sensor one-minute tumbling averages and five-minute hopping maxima (a new window
//! every minute), with a watermark that tolerates 20 seconds of delay. A few readings
//! arrive later than that: they are counted and set aside, not mixed into windows that
//! were already written. Halfway through, the state is saved to a checkpoint and the
//! rest of the stream is pushed into the restored aggregator, as a restarted process
//! would: the windows are those of a run that never stopped.
//!
//! `cargo run --release --example stream` (`-- --gpu` to aggregate each batch on the GPU).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampSecondArray};
use arrow::util::pretty::pretty_format_batches;
use arrow_wgpu::{col, Agg, Backend, Engine, Watermark, Window, WindowAggregator, WindowOptions};

/// 30 minutes of readings from 4 sensors, one every ~2 s each, in arrival order: each
/// delayed by up to 15 s in the network, and one in 200 by a minute or more (late).
fn readings() -> Vec<RecordBatch> {
    let mut state = 7u64;
    let mut next = move |bound: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % bound
    };
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    let sensors = ["boiler", "cellar", "attic", "garage"];
    let mut rows: Vec<(i64, i64, &str, f64)> = Vec::new(); // (arrival, event time, sensor, °C)
    for (s, name) in sensors.iter().enumerate() {
        let mut t = start + s as i64;
        while t < start + 30 * 60 {
            let temp = 15.0 + 5.0 * s as f64 + next(1000) as f64 / 100.0;
            let delay = if next(200) == 0 {
                60 + next(60) as i64
            } else {
                next(15) as i64
            };
            rows.push((t + delay, t, name, temp));
            t += 1 + next(3) as i64;
        }
    }
    rows.sort_by_key(|r| r.0);
    // Batches as a poller would see them: what arrived in each 10-second tick.
    rows.chunk_by(|a, b| a.0 / 10 == b.0 / 10)
        .map(|tick| {
            RecordBatch::try_from_iter([
                (
                    "ts",
                    Arc::new(
                        TimestampSecondArray::from(tick.iter().map(|r| r.1).collect::<Vec<_>>())
                            .with_timezone("UTC"),
                    ) as ArrayRef,
                ),
                (
                    "sensor",
                    Arc::new(StringArray::from(
                        tick.iter().map(|r| r.2).collect::<Vec<_>>(),
                    )),
                ),
                (
                    "temp",
                    Arc::new(Float64Array::from(
                        tick.iter().map(|r| r.3).collect::<Vec<_>>(),
                    )),
                ),
            ])
            .unwrap()
        })
        .collect()
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The two aggregations: one-minute tumbling averages (late rows kept aside) and
/// five-minute maxima every minute, each as (options, keys, aggregates).
fn specs() -> [(WindowOptions, Vec<Agg>); 2] {
    let minute = Duration::from_secs(60);
    let watermark = Watermark::Delay(Duration::from_secs(20));
    [
        (
            WindowOptions::new("ts", Window::tumble(minute))
                .watermark(watermark.clone())
                .keep_late(),
            vec![
                Agg::count_star().alias("readings"),
                Agg::mean(col("temp")).alias("avg_temp"),
            ],
        ),
        (
            WindowOptions::new("ts", Window::hop(minute, 5 * minute)).watermark(watermark),
            vec![Agg::max(col("temp")).alias("max_temp")],
        ),
    ]
}

/// Every window of both aggregations over `batches`; with `restart`, each aggregator is
/// saved before that batch and restored from its file, as a restarted process would.
fn run(
    engine: &Engine,
    batches: &[RecordBatch],
    restart: Option<usize>,
) -> Result<(Vec<Vec<RecordBatch>>, u64)> {
    let schema = batches[0].schema();
    let mut aggregators: Vec<WindowAggregator> = specs()
        .into_iter()
        .map(|(options, aggs)| {
            engine.window_aggregator(schema.clone(), options, &["sensor"], &aggs)
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut windows = vec![Vec::new(), Vec::new()];
    let folder =
        std::env::temp_dir().join(format!("arrow-wgpu-stream-example-{}", std::process::id()));
    for (n, batch) in batches.iter().enumerate() {
        if restart == Some(n) {
            std::fs::create_dir_all(&folder)?;
            for (i, (agg, (options, aggs))) in aggregators.iter_mut().zip(specs()).enumerate() {
                let path = folder.join(format!("state-{i}"));
                agg.save(&path, &n.to_string())?;
                let (restored, position) = engine.restore_window_aggregator(
                    &path,
                    schema.clone(),
                    options,
                    &["sensor"],
                    &aggs,
                )?;
                assert_eq!(position, n.to_string());
                *agg = restored;
            }
            std::fs::remove_dir_all(&folder)?;
        }
        for (agg, out) in aggregators.iter_mut().zip(&mut windows) {
            out.extend(agg.push(batch)?);
        }
    }
    let late = aggregators[0].stats().late_rows;
    let set_aside: usize = aggregators[0]
        .take_late()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(set_aside as u64, late);
    for (agg, out) in aggregators.into_iter().zip(&mut windows) {
        out.extend(agg.finish()?);
    }
    Ok((windows, late))
}

fn main() -> Result<()> {
    let backend = if std::env::args().any(|a| a == "--gpu") {
        Backend::Gpu
    } else {
        Backend::Cpu
    };
    let engine = Engine::new(backend)?;
    let batches = readings();
    let events: usize = batches.iter().map(|b| b.num_rows()).sum();
    let (windows, late) = run(&engine, &batches, None)?;
    let (tumbling, hopping) = (&windows[0], &windows[1]);
    println!(
        "{events} readings in {} batches; {late} arrived too late and were set aside",
        batches.len()
    );
    println!("\nOne-minute averages (the first three minutes):");
    let first: Vec<RecordBatch> = tumbling.iter().take(3).cloned().collect();
    println!("{}", pretty_format_batches(&first)?);
    println!("\nFive-minute maxima, a window every minute (the first two):");
    let first: Vec<RecordBatch> = hopping.iter().take(2).cloned().collect();
    println!("{}", pretty_format_batches(&first)?);
    // Stopped halfway and restored from a checkpoint: the same windows, to the bit.
    let again = run(&engine, &batches, Some(batches.len() / 2))?;
    assert_eq!(again, (windows.clone(), late));
    println!("\nRestarted from a checkpoint halfway: the same windows.");
    Ok(())
}

#[test]
fn the_example_runs() {
    main().unwrap();
}
