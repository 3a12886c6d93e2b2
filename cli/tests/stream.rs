//! `arrow-wgpu stream` end to end: windows written to a folder equal the library's, a
//! stream on stdin gives a stream on stdout, bad flags fail before anything is written,
//! and runs killed with SIGKILL at random points, run again, leave the folder an
//! uninterrupted run leaves: no window lost, none written twice.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Scratch;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, Agg, Backend, Engine, Watermark, Window, WindowOptions};

const BIN: &str = env!("CARGO_BIN_EXE_arrow-wgpu");

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("sensor", DataType::Utf8, true),
        Field::new("temp", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

/// `batches` batches of `rows` sensor readings, out of order by up to 2 s.
fn readings(batches: usize, rows: usize, sensors: u64) -> Vec<RecordBatch> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut t = 1_700_000_000_000i64;
    (0..batches)
        .map(|_| {
            let mut ts = Vec::with_capacity(rows);
            let mut sensor = Vec::with_capacity(rows);
            let mut temp = Vec::with_capacity(rows);
            let mut n = Vec::with_capacity(rows);
            for _ in 0..rows {
                t += (next() % 40) as i64;
                ts.push(t - (next() % 2_000) as i64);
                sensor.push((next() % 10 != 0).then(|| format!("s{}", next() % sensors)));
                temp.push((next() % 20 != 0).then(|| (next() % 4_000) as f64 / 100.0 - 5.0));
                n.push(Some((next() % 100) as i64));
            }
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(TimestampMillisecondArray::from(ts)) as ArrayRef,
                    Arc::new(StringArray::from(sensor)),
                    Arc::new(Float64Array::from(temp)),
                    Arc::new(Int64Array::from(n)),
                ],
            )
            .unwrap()
        })
        .collect()
}

fn write_stream(path: &Path, batches: &[RecordBatch]) {
    let mut w = StreamWriter::try_new(fs::File::create(path).unwrap(), &schema()).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
}

const WINDOW: &str = "hop(ts, INTERVAL '10 seconds', INTERVAL '30 seconds')";
const AGGS: &str = "count(*), avg(temp), max(temp), sum(n), count(DISTINCT n), stddev(temp)";

fn aggs() -> Vec<Agg> {
    vec![
        Agg::count_star(),
        Agg::mean(col("temp")),
        Agg::max(col("temp")),
        Agg::sum(col("n")),
        Agg::count_distinct(col("n")),
        Agg::stddev_samp(col("temp")),
    ]
}

/// The files of a folder: (name, the batches in it).
fn read_out(dir: &Path) -> Vec<(String, Vec<RecordBatch>)> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let r = FileReader::try_new(fs::File::open(dir.join(&n)).unwrap(), None).unwrap();
            (n, r.collect::<Result<Vec<_>, _>>().unwrap())
        })
        .collect()
}

fn stream_args(input: &Path, out: &Path) -> Vec<String> {
    [
        "stream",
        input.to_str().unwrap(),
        "--window",
        WINDOW,
        "--watermark",
        "ts - INTERVAL '2 seconds'",
        "--group-by",
        "sensor",
        "--agg",
        AGGS,
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn windows_in_a_folder_equal_the_library_s() {
    let s = Scratch::new("folder");
    let batches = readings(40, 500, 7);
    write_stream(&s.path("in.arrows"), &batches);
    let out = s.path("out");
    let run = Command::new(BIN)
        .args(stream_args(&s.path("in.arrows"), &out))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = read_out(&out);
    // The library, batch by batch.
    let engine = Engine::new(Backend::Cpu).unwrap();
    let options = WindowOptions::new(
        "ts",
        Window::hop(Duration::from_secs(10), Duration::from_secs(30)),
    )
    .watermark(Watermark::Delay(Duration::from_secs(2)));
    let mut agg = engine
        .window_aggregator(schema(), options, &["sensor"], &aggs())
        .unwrap();
    let mut want = Vec::new();
    for b in &batches {
        want.extend(agg.push(b).unwrap());
    }
    want.extend(agg.finish().unwrap());
    assert_eq!(written.len(), want.len());
    for (n, ((name, got), want)) in written.iter().zip(&want).enumerate() {
        assert_eq!(name, &format!("{:010}.arrow", n + 1));
        assert_eq!(got, &vec![want.clone()], "{name}");
    }
    // The same from standard input to standard output.
    let mut child = Command::new(BIN)
        .args([
            "stream",
            "-",
            "--window",
            WINDOW,
            "--watermark",
            "ts - INTERVAL '2 seconds'",
            "--group-by",
            "sensor",
            "--agg",
            AGGS,
            "--backend",
            "cpu",
            "--quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = fs::read(s.path("in.arrows")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let done = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(done.status.success());
    let streamed: Vec<RecordBatch> = StreamReader::try_new(std::io::Cursor::new(done.stdout), None)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, want);
}

#[test]
fn a_folder_of_files_is_read_in_name_order() {
    let s = Scratch::new("input-folder");
    let batches = readings(12, 300, 5);
    fs::create_dir_all(s.path("in")).unwrap();
    for (i, part) in batches.chunks(4).enumerate() {
        write_stream(&s.path(&format!("in/part-{i}.arrows")), part);
    }
    fs::write(s.path("in/.hidden.tmp"), b"not arrow").unwrap();
    write_stream(&s.path("whole.arrows"), &batches);
    let a = Command::new(BIN)
        .args(stream_args(&s.path("in"), &s.path("a")))
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = Command::new(BIN)
        .args(stream_args(&s.path("whole.arrows"), &s.path("b")))
        .output()
        .unwrap();
    assert!(b.status.success());
    assert_eq!(read_out(&s.path("a")), read_out(&s.path("b")));
}

#[test]
fn bad_flags_fail_before_anything_is_written() {
    let s = Scratch::new("bad");
    write_stream(&s.path("in.arrows"), &readings(2, 10, 2));
    let input = s.path("in.arrows");
    for (flag, value, says) in [
        ("--window", "tumble(sensor, 1m)", "not a Timestamp"),
        ("--window", "tumble(ts, 1 parsec)", "unknown unit"),
        ("--window", "hop(ts, 5m, 1m)", "slide"),
        ("--watermark", "temp", "not a Timestamp"),
        ("--agg", "sum(sensor)", "sum"),
        ("--group-by", "nope", "nope"),
    ] {
        let mut args = stream_args(&input, &s.path("out"));
        match args.iter().position(|a| a == flag) {
            Some(i) => args[i + 1] = value.to_string(),
            None => args.extend([flag.to_string(), value.to_string()]),
        }
        let run = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{flag} {value}");
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(!s.path("out").exists(), "{flag} {value}: nothing written");
    }
    let run = Command::new(BIN)
        .args(stream_args(&s.path("missing.arrows"), &s.path("out")))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("missing.arrows"));
    // A checkpoint of another aggregation is refused.
    let mut args = stream_args(&input, &s.path("out"));
    args.extend(["--checkpoint".into(), s.path("ck").to_str().unwrap().into()]);
    assert!(Command::new(BIN)
        .args(&args)
        .output()
        .unwrap()
        .status
        .success());
    let i = args.iter().position(|a| a == "--agg").unwrap();
    args[i + 1] = "count(*)".into();
    let run = Command::new(BIN).args(&args).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("another aggregation"));
}

/// Kills runs with SIGKILL at random points and runs again until one finishes: the folder
/// then holds exactly what an uninterrupted run writes.
#[test]
fn killed_runs_resume_exactly_once() {
    let s = Scratch::new("kill");
    write_stream(&s.path("in.arrows"), &readings(600, 400, 500));
    let reference = s.path("reference");
    let started = Instant::now();
    let run = Command::new(BIN)
        .args(stream_args(&s.path("in.arrows"), &reference))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let whole = started.elapsed();
    let want = read_out(&reference);
    assert!(want.len() > 100);

    let mut rng = 0x9e37_79b9_u64;
    let mut total_kills = 0;
    for attempt in 0..4 {
        let (out, ck) = (
            s.path(&format!("out-{attempt}")),
            s.path(&format!("ck-{attempt}")),
        );
        let mut args = stream_args(&s.path("in.arrows"), &out);
        let every = ["1", "7", "0.05s"][attempt % 3];
        args.extend([
            "--checkpoint".into(),
            ck.to_str().unwrap().into(),
            "--checkpoint-every".into(),
            every.into(),
        ]);
        let mut kills = 0;
        loop {
            let mut child = Command::new(BIN)
                .args(&args)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Somewhere in the run (one with checkpoints is no faster than one without).
            let wait = whole.mul_f64(0.05 + 0.9 * ((rng >> 33) % 1000) as f64 / 1000.0);
            let deadline = Instant::now() + wait;
            let finished = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            match finished {
                Some(status) => {
                    let mut err = String::new();
                    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err)
                        .unwrap();
                    assert!(status.success(), "attempt {attempt}: {err}");
                    break;
                }
                None => {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    kills += 1;
                    assert!(kills < 60, "never finished");
                }
            }
        }
        total_kills += kills;
        let got = read_out(&out);
        assert_eq!(
            got.len(),
            want.len(),
            "attempt {attempt} ({kills} kills, every {every})"
        );
        for ((a, x), (b, y)) in got.iter().zip(&want) {
            assert_eq!(a, b);
            assert_eq!(
                x, y,
                "attempt {attempt}: {a} ({kills} kills, every {every})"
            );
        }
    }
    assert!(
        total_kills >= 4,
        "{total_kills} kills: the runs were killed"
    );
}

/// `--follow` on a folder: files renamed in while it runs are read in turn, and what it
/// writes is what a run over all of them writes, but for the windows still open (a
/// followed input never ends).
#[test]
fn following_a_folder_reads_files_as_they_land() {
    let s = Scratch::new("follow");
    let batches = readings(30, 400, 9);
    let (first, second) = batches.split_at(12);
    fs::create_dir_all(s.path("in")).unwrap();
    write_stream(&s.path("in/a.arrows"), first);
    write_stream(&s.path("whole.arrows"), &batches);
    let reference = s.path("reference");
    let run = Command::new(BIN)
        .args(stream_args(&s.path("whole.arrows"), &reference))
        .output()
        .unwrap();
    assert!(run.status.success());
    let want = read_out(&reference);
    let out = s.path("out");
    let mut args = stream_args(&s.path("in"), &out);
    args.push("--follow".into());
    let mut child = Command::new(BIN)
        .args(&args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let files = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let have = fs::read_dir(&out)
                .map(|d| {
                    d.filter(|e| {
                        e.as_ref()
                            .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    })
                    .count()
                })
                .unwrap_or(0);
            if have >= n || Instant::now() > deadline {
                return have;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(
        files(1) >= 1,
        "the first file's windows are written while following"
    );
    // The second file lands whole: written beside, renamed in.
    write_stream(&s.path("in/.b.partial"), second);
    fs::rename(s.path("in/.b.partial"), s.path("in/b.arrows")).unwrap();
    let have = files(want.len() - 1);
    assert!(child.try_wait().unwrap().is_none(), "still following");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(have, want.len() - 1, "every window but those still open");
    assert_eq!(read_out(&out)[..], want[..want.len() - 1]);
}

/// A checkpoint taken reading a file of a folder that is gone on resume: an error naming
/// it, not batches of another file skipped.
#[test]
fn resuming_without_the_checkpoint_s_file_is_an_error() {
    let s = Scratch::new("gone");
    let batches = readings(8, 100, 3);
    fs::create_dir_all(s.path("in")).unwrap();
    write_stream(&s.path("in/a.arrows"), &batches[..3]);
    let mut args = stream_args(&s.path("in"), &s.path("out"));
    args.extend([
        "--checkpoint".into(),
        s.path("ck").to_str().unwrap().into(),
        "--checkpoint-every".into(),
        "1".into(),
    ]);
    assert!(Command::new(BIN)
        .args(&args)
        .output()
        .unwrap()
        .status
        .success());
    fs::remove_file(s.path("in/a.arrows")).unwrap();
    write_stream(&s.path("in/b.arrows"), &batches[3..]);
    let run = Command::new(BIN).args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("a.arrows") && err.contains("gone"), "{err}");
}
