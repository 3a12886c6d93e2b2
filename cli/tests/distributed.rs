//! `arrow-wgpu sql --workers` over `arrow-wgpu worker` processes on 127.0.0.1: TPC-H Q1
//! and Q6 (at scale factor 0.01, lineitem in several Parquet files, its decimal columns
//! as Float64 so that the sums and means are float ones) and a group-by of floats whose
//! naive sums depend on the order of addition (nulls, NaN, ±0, magnitudes 1e-300 to
//! 1e300) must give the single-process answer bit for bit on 1, 2 and 3 workers, on the
//! GPU backend and with one worker on the CPU. A worker killed during a query, or one
//! that can't be reached, must fail the query with an error naming it and no output file.
//! Every worker is a child process on a port the system picks, killed by the test.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::FileReader;
use common::gen::{order_sensitive_floats, Rng};
use common::{rows_by_bits, Scratch};
use parquet::arrow::ArrowWriter;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

const BIN: &str = env!("CARGO_BIN_EXE_arrow-wgpu");

/// Lineitem in this many Parquet files.
const FILES: i32 = 4;

/// A worker process, killed when dropped.
struct Worker {
    child: Child,
    url: String,
}

impl Worker {
    /// `arrow-wgpu worker --backend BACKEND` on 127.0.0.1, on the wgpu backend `wgpu`
    /// (for `--backend gpu`), once it says where it listens.
    fn start(backend: &str, wgpu: Option<&str>) -> Worker {
        let mut cmd = Command::new(BIN);
        cmd.args(["worker", "--listen", "127.0.0.1:0", "--backend", backend])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(w) = wgpu {
            cmd.env("WGPU_BACKEND", w);
        }
        let mut child = cmd.spawn().expect("the worker starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("the worker said {line:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Worker {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urls(workers: &[&Worker]) -> String {
    workers
        .iter()
        .map(|w| w.url.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Lineitem at SF 0.01 in [`FILES`] Parquet files, the decimals as Float64; and `floats`:
/// 3 files of keys and floats whose sums are order-sensitive.
fn write_tables(dir: &Scratch) -> (PathBuf, PathBuf) {
    let lineitem = dir.path("lineitem");
    fs::create_dir_all(&lineitem).unwrap();
    for part in 1..=FILES {
        let gen = LineItemArrow::new(LineItemGenerator::new(0.01, part, FILES));
        let batches: Vec<RecordBatch> = gen.map(as_floats).collect();
        write_parquet(&lineitem.join(format!("part-{part}.parquet")), &batches);
    }
    let floats = dir.path("floats");
    fs::create_dir_all(&floats).unwrap();
    let mut rng = Rng(0x5eed_d157);
    for part in 0..3 {
        let batch = order_sensitive_floats(&mut rng, 20_000, 7);
        // Several row groups and batches per file.
        let batches: Vec<RecordBatch> = (0..4).map(|i| batch.slice(i * 5000, 5000)).collect();
        write_parquet(&floats.join(format!("part-{part}.parquet")), &batches);
    }
    (lineitem, floats)
}

/// `batch` with its decimal columns cast to Float64.
fn as_floats(batch: Result<RecordBatch, arrow::error::ArrowError>) -> RecordBatch {
    let batch = batch.unwrap();
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| match f.data_type() {
            DataType::Decimal128(..) => (
                Field::new(f.name(), DataType::Float64, f.is_nullable()),
                cast(c, &DataType::Float64).unwrap(),
            ),
            _ => (f.as_ref().clone(), c.clone()),
        })
        .unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) {
    let file = fs::File::create(path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4096))
        .build();
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the arrow-wgpu binary runs")
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(args, env);
    assert!(
        out.status.success(),
        "arrow-wgpu {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of an Arrow IPC file, floats by their bits.
fn cells(path: &Path) -> Vec<Vec<String>> {
    let reader = FileReader::try_new(fs::File::open(path).unwrap(), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    rows_by_bits(&batches)
}

/// The queries, each over the tables in `lineitem` and `floats`, with the partitions to
/// plan them for and whether their plan must be split into stages.
fn queries() -> Vec<(&'static str, String, &'static str, bool)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../queries/tpch");
    let read = |q: &str| fs::read_to_string(root.join(q)).unwrap();
    vec![
        ("q1", read("q01.sql"), "3", true),
        ("q6", read("q06.sql"), "3", true),
        (
            "floats",
            "SELECT k, sum(v) AS s, avg(v) AS a, var(v) AS va, stddev_pop(v) AS sd, count(v) AS n \
             FROM floats WHERE k <> 3 GROUP BY k ORDER BY k"
                .to_string(),
            "3",
            true,
        ),
        // One partition: single-step aggregates under a union, whose branches must each
        // stay whole (on one task), split or not.
        (
            "union",
            "SELECT k, sum(v) AS s, count(*) AS n FROM floats WHERE k < 3 GROUP BY k \
             UNION ALL SELECT k, sum(v) AS s, count(*) AS n FROM floats WHERE k >= 3 GROUP BY k \
             ORDER BY k"
                .to_string(),
            "1",
            false,
        ),
    ]
}

/// The wgpu backends the GPU workers use (the first for "the GPU", all for a mixed
/// cluster); empty where there is no adapter and none is required.
fn gpu_backends() -> Vec<String> {
    common::gpu_engines(None)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn workers_give_the_single_process_answer_bit_for_bit() {
    let dir = Scratch::new("answers");
    let (lineitem, floats) = write_tables(&dir);
    let tables = [
        "--table".to_string(),
        format!("lineitem={}", lineitem.display()),
        "--table".to_string(),
        format!("floats={}", floats.display()),
    ];
    let gpus = gpu_backends();
    // GPU workers on the first backend; where there is no GPU (and none is required),
    // CPU workers, so that the distribution is still checked.
    let (gpu_backend, gpu_wgpu) = match gpus.first() {
        Some(b) => ("gpu", Some(b.as_str())),
        None => ("cpu", None),
    };
    let gpu_workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start(gpu_backend, gpu_wgpu))
        .collect();
    // A mixed cluster: one worker on the CPU, the others on every GPU backend in turn.
    let mut mixed = vec![Worker::start("cpu", None)];
    for i in 0..2 {
        match gpus.get(i).or(gpus.first()) {
            Some(b) => mixed.push(Worker::start("gpu", Some(b))),
            None => mixed.push(Worker::start("cpu", None)),
        }
    }
    let coordinator_env: Vec<(&str, &str)> =
        gpu_wgpu.map(|w| ("WGPU_BACKEND", w)).into_iter().collect();

    for (name, sql, partitions, split) in queries() {
        let reference = dir.path(&format!("{name}-local.arrow"));
        let mut args: Vec<&str> = vec!["sql", "-q", &sql, "--backend", "cpu"];
        args.extend(tables.iter().map(String::as_str));
        let reference_s = reference.to_str().unwrap();
        args.extend(["--out", reference_s]);
        ok(&args, &[]);
        let expected = cells(&reference);
        assert!(!expected.is_empty(), "{name}: no rows");

        let clusters: Vec<(String, Vec<&Worker>)> = (1..=3)
            .map(|n| {
                (
                    format!("{n} {gpu_backend} worker(s)"),
                    gpu_workers.iter().take(n).collect(),
                )
            })
            .chain(std::iter::once((
                "cpu + gpu workers".to_string(),
                mixed.iter().collect(),
            )))
            .collect();
        for (label, cluster) in clusters {
            let list = urls(&cluster);
            let mut base: Vec<&str> = vec![
                "sql",
                "-q",
                &sql,
                "--backend",
                gpu_backend,
                "--workers",
                &list,
                // Every file split among the workers, however small.
                "--task-bytes",
                "1",
                "--partitions",
                partitions,
            ];
            base.extend(tables.iter().map(String::as_str));

            // The plan is distributed, over these workers, with our operators in the
            // stages where the coordinator has a GPU.
            let mut explain = base.clone();
            explain.push("--explain");
            let plan = ok(&explain, &coordinator_env);
            if split {
                assert!(
                    plan.contains("Stage 1") && plan.contains("where each stage runs"),
                    "{name} on {label}: not distributed:\n{plan}"
                );
                for w in &cluster {
                    assert!(
                        plan.contains(&w.url),
                        "{name} on {label}: {} unused:\n{plan}",
                        w.url
                    );
                }
                if gpu_backend == "gpu" {
                    assert!(
                        plan.contains("WgpuFilterExec"),
                        "{name} on {label}: no GPU filter shipped:\n{plan}"
                    );
                }
            }

            let out = dir.path(&format!("{name}-{}.arrow", cluster.len()));
            let out_s = out.to_str().unwrap();
            let mut args = base.clone();
            args.extend(["--out", out_s]);
            ok(&args, &coordinator_env);
            assert_eq!(cells(&out), expected, "{name} on {label}");
            fs::remove_file(&out).unwrap();

            // --profile says what crossed the network: data between the stages, plans.
            if split && cluster.len() == 2 {
                let mut args = base.clone();
                args.push("--profile");
                let out = run(&args, &coordinator_env);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let moved: Vec<u64> = stderr
                    .lines()
                    .find_map(|l| l.strip_prefix("network: "))
                    .map(|l| {
                        l.split(|c: char| !c.is_ascii_digit())
                            .filter(|w| !w.is_empty())
                            .map(|w| w.parse().unwrap())
                            .collect()
                    })
                    .unwrap_or_else(|| panic!("{name}: no network line:\n{stderr}"));
                assert!(
                    moved.len() == 2 && moved.iter().all(|&b| b > 0),
                    "{name} on {label}: {moved:?}\n{stderr}"
                );
            }
        }
    }
}

/// A query over the workers long enough to kill one in the middle (about 10 s on two
/// workers here, against a kill at 1.5 s): a join of lineitem with 20,000 of its rows.
const SLOW: &str = "SELECT count(*) AS n FROM lineitem a CROSS JOIN \
    (SELECT l_quantity FROM lineitem ORDER BY l_orderkey, l_linenumber LIMIT 20000) b \
    WHERE a.l_quantity * 0.5 > b.l_quantity * 0.25 + a.l_discount";

/// `arrow-wgpu sql` of `sql` over `table` (NAME=PATH) on the CPU, its files split among
/// `workers` however small, the answer to `out`.
fn over_workers<'a>(sql: &'a str, table: &'a str, workers: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "sql",
        "-q",
        sql,
        "--backend",
        "cpu",
        "--table",
        table,
        "--workers",
        workers,
        "--task-bytes",
        "1",
        "--out",
        out,
    ]
}

#[test]
fn a_worker_killed_mid_query_is_named_and_nothing_is_written() {
    let dir = Scratch::new("killed");
    let (lineitem, _) = write_tables(&dir);
    let table = format!("lineitem={}", lineitem.display());
    let first = Worker::start("cpu", None);
    let mut second = Worker::start("cpu", None);
    let list = urls(&[&first, &second]);
    let out = dir.path("out.parquet");
    let out_s = out.to_str().unwrap().to_string();
    let args = over_workers(SLOW, &table, &list, &out_s);
    let started = Instant::now();
    let coordinator = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let done = coordinator.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        !done.status.success(),
        "the query survived its worker's death ({:?}); is it too quick to kill?",
        started.elapsed()
    );
    assert!(
        stderr.contains(&second.url) && stderr.contains("can't be reached"),
        "the error names the dead worker {}:\n{stderr}",
        second.url
    );
    assert!(
        !stderr.contains(&first.url),
        "the live worker is not blamed:\n{stderr}"
    );
    let left: Vec<_> = dir
        .files()
        .into_iter()
        .filter(|n| n != "lineitem" && n != "floats")
        .collect();
    assert!(left.is_empty(), "a failed query left {left:?}");
}

#[test]
fn an_unreachable_worker_is_named_before_anything_runs() {
    let dir = Scratch::new("unreachable");
    let (lineitem, _) = write_tables(&dir);
    let table = format!("lineitem={}", lineitem.display());
    let live = Worker::start("cpu", None);
    // A port nothing listens on: bound, then closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let list = format!("{},{dead}", live.url);
    let out = dir.path("out.csv");
    let args = over_workers(
        "SELECT count(*) FROM lineitem",
        &table,
        &list,
        out.to_str().unwrap(),
    );
    let done = run(&args, &[]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success());
    assert!(
        stderr.contains(&dead) && stderr.contains("can't be reached"),
        "{stderr}"
    );
    assert!(!out.exists());

    // Bad lists are refused before any connection.
    for bad in ["", "127.0.0.1", "ftp://127.0.0.1:1", "127.0.0.1:notaport"] {
        let done = run(&["sql", "SELECT 1", "--workers", bad], &[]);
        assert!(!done.status.success(), "--workers {bad:?} accepted");
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(stderr.contains("worker"), "--workers {bad:?}: {stderr}");
    }
}
