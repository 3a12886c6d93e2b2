//! End-to-end tests of the `arrow-wgpu` command (`--features cli`): it runs the binary on
//! small files of each format, made here, and compares what it writes with the library's
//! answer on the same rows; streamed runs (small `--batch-rows`) must equal one-batch
//! answers; bad input must fail with a clear message, a non-zero exit and no output file.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use common::Scratch;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, RecordBatchReader,
    StringArray,
};
use arrow::compute::concat_batches;
use arrow_wgpu::{col, lit, Agg, Backend, Engine, Keep, ScalarValue, SortKey};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

const BIN: &str = env!("CARGO_BIN_EXE_arrow-wgpu");

/// 60 rows of "variants": the types CSV inference gives back (Int64, Float64, Utf8, Date32,
/// Boolean), nulls in the numbers, repeated keys for group-by and distinct.
fn variants() -> RecordBatch {
    let n = 60;
    let chrom: StringArray = (0..n)
        .map(|i| Some(["chr1", "chr2", "chrX"][i % 3]))
        .collect();
    let pos: Int64Array = (0..n).map(|i| Some(((i * 37) % 23) as i64 * 100)).collect();
    let qual: Float64Array = (0..n)
        .map(|i| (i % 7 != 3).then(|| ((i * 13) % 50) as f64 + 0.25))
        .collect();
    let day: Date32Array = (0..n).map(|i| Some(18_620 + (i % 15) as i32)).collect();
    let pass: BooleanArray = (0..n).map(|i| Some(i % 4 != 0)).collect();
    RecordBatch::try_from_iter([
        ("chrom", Arc::new(chrom) as ArrayRef),
        ("pos", Arc::new(pos)),
        ("qual", Arc::new(qual)),
        ("day", Arc::new(day)),
        ("pass", Arc::new(pass)),
    ])
    .unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let mut w =
        ArrowWriter::try_new(fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    // Several row groups and batches, so reading crosses their boundaries.
    for start in (0..batch.num_rows()).step_by(25) {
        w.write(&batch.slice(start, 25.min(batch.num_rows() - start)))
            .unwrap();
        w.flush().unwrap();
    }
    w.close().unwrap();
}

fn write_ipc(path: &Path, batch: &RecordBatch) {
    let mut w =
        arrow::ipc::writer::FileWriter::try_new(fs::File::create(path).unwrap(), &batch.schema())
            .unwrap();
    w.write(&batch.slice(0, 30)).unwrap();
    w.write(&batch.slice(30, batch.num_rows() - 30)).unwrap();
    w.finish().unwrap();
}

fn write_ipc_stream(path: &Path, batch: &RecordBatch) {
    let mut w =
        arrow::ipc::writer::StreamWriter::try_new(fs::File::create(path).unwrap(), &batch.schema())
            .unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
}

fn write_csv(path: &Path, batch: &RecordBatch) {
    let mut w = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(fs::File::create(path).unwrap());
    w.write(batch).unwrap();
}

/// The input in every format: (name, path).
fn inputs(dir: &Scratch, batch: &RecordBatch) -> Vec<(&'static str, PathBuf)> {
    let files = [
        ("parquet", dir.path("in.parquet")),
        ("arrow", dir.path("in.arrow")),
        ("arrows", dir.path("in.arrows")),
        ("csv", dir.path("in.csv")),
    ];
    write_parquet(&files[0].1, batch);
    write_ipc(&files[1].1, batch);
    write_ipc_stream(&files[2].1, batch);
    write_csv(&files[3].1, batch);
    files.to_vec()
}

/// Reads a file the command wrote, by its extension, as one batch.
fn read_back(path: &Path) -> RecordBatch {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (schema, batches): (_, Vec<RecordBatch>) = match path.extension().unwrap().to_str().unwrap()
    {
        "parquet" => {
            let r = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            (r.schema(), r.map(Result::unwrap).collect())
        }
        "arrow" => {
            let r = arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
            (r.schema(), r.map(Result::unwrap).collect())
        }
        "arrows" => {
            let r = arrow::ipc::reader::StreamReader::try_new(file, None).unwrap();
            (r.schema(), r.map(Result::unwrap).collect())
        }
        "csv" => {
            let (schema, _) = arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(fs::File::open(path).unwrap(), None)
                .unwrap();
            let r = arrow::csv::ReaderBuilder::new(Arc::new(schema))
                .with_header(true)
                .build(file)
                .unwrap();
            (r.schema(), r.map(Result::unwrap).collect())
        }
        other => panic!("no reader for .{other}"),
    };
    concat_batches(&schema, &batches).unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the arrow-wgpu binary runs")
}

fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "arrow-wgpu {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `args` (plus `--out OUT`) and returns what it wrote.
fn query_to(dir: &Scratch, out: &str, args: &[&str]) -> RecordBatch {
    let path = dir.path(out);
    let path_str = path.to_str().unwrap().to_string();
    let mut all: Vec<&str> = vec!["query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", &path_str]);
    ok(&all);
    read_back(&path)
}

/// `got` equals `want` in names, types and values; nullability may differ (CSV files and
/// inferred schemas say every column is nullable).
#[track_caller]
fn assert_same(got: &RecordBatch, want: &RecordBatch, what: &str) {
    let fields = |b: &RecordBatch| -> Vec<(String, arrow::datatypes::DataType)> {
        b.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    };
    assert_eq!(fields(got), fields(want), "{what}: columns");
    assert_eq!(got.num_rows(), want.num_rows(), "{what}: rows");
    for (i, (g, w)) in got.columns().iter().zip(want.columns()).enumerate() {
        assert_eq!(
            g.to_data(),
            w.to_data(),
            "{what}: column {}",
            want.schema().field(i).name()
        );
    }
}

fn cpu() -> Engine {
    Engine::new(Backend::Cpu).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn filter_on_every_input_format_equals_the_library() {
    let dir = Scratch::new("filter");
    let batch = variants();
    let want = cpu()
        .filter(
            &batch,
            &col("qual")
                .gt(lit(10.0))
                .and(col("day").gt_eq(lit(ScalarValue::Date32(18_625))))
                .and(
                    col("pos")
                        .in_list(vec![lit(0i64), lit(300i64), lit(1200i64)])
                        .not(),
                ),
        )
        .unwrap();
    assert!(want.num_rows() > 5 && want.num_rows() < batch.num_rows());
    for (format, input) in inputs(&dir, &batch) {
        for batch_rows in ["7", "1048576"] {
            let got = query_to(
                &dir,
                "out.parquet",
                &[
                    s(&input),
                    "--filter",
                    "qual > 10 AND day >= DATE '2020-12-29' AND pos NOT IN (0, 300, 1200)",
                    "--batch-rows",
                    batch_rows,
                ],
            );
            assert_same(&got, &want, &format!("{format}, --batch-rows {batch_rows}"));
        }
    }
}

#[test]
fn every_output_format_round_trips() {
    let dir = Scratch::new("outputs");
    let batch = variants();
    let input = dir.path("in.parquet");
    write_parquet(&input, &batch);
    for out in ["o.parquet", "o.arrow", "o.arrows", "o.csv"] {
        let got = query_to(&dir, out, &[s(&input)]);
        assert_same(&got, &batch, out);
    }
    // Every temporary file was renamed away.
    assert_eq!(
        dir.files(),
        ["in.parquet", "o.arrow", "o.arrows", "o.csv", "o.parquet"]
    );
}

#[test]
fn streamed_group_by_equals_the_one_batch_group_by() {
    let dir = Scratch::new("group");
    let batch = variants();
    let aggs = [
        Agg::count_star(),
        Agg::sum(col("qual")).alias("total"),
        Agg::mean(col("pos")),
        Agg::var_samp(col("qual")),
        Agg::stddev_pop(col("qual")),
        Agg::min(col("day")),
        Agg::max(col("qual")),
        Agg::count(col("qual")).filter(col("pass")),
        Agg::count_distinct(col("pos")),
    ];
    let want = cpu().group_by(&batch, &["chrom", "pass"], &aggs).unwrap();
    let text = "count(*), sum(qual) AS total, avg(pos), var(qual), stddev_pop(qual), min(day), max(qual), count(qual) FILTER (WHERE pass), count(DISTINCT pos)";
    for (format, input) in inputs(&dir, &batch) {
        for batch_rows in ["1", "7", "100"] {
            let got = query_to(
                &dir,
                "groups.arrow",
                &[
                    s(&input),
                    "--group-by",
                    "chrom,pass",
                    "--agg",
                    text,
                    "--batch-rows",
                    batch_rows,
                ],
            );
            assert_same(&got, &want, &format!("{format}, --batch-rows {batch_rows}"));
        }
    }
    // A global aggregate: one row.
    let input = dir.path("in.parquet");
    let got = query_to(
        &dir,
        "global.arrow",
        &[
            s(&input),
            "--agg",
            "count(*), mean(qual)",
            "--batch-rows",
            "9",
        ],
    );
    let want = cpu()
        .group_by(&batch, &[], &[Agg::count_star(), Agg::mean(col("qual"))])
        .unwrap();
    assert_same(&got, &want, "global aggregate");
}

#[test]
fn streamed_distinct_equals_the_library_for_every_keep() {
    let dir = Scratch::new("distinct");
    let batch = variants();
    let input = dir.path("in.arrow");
    write_ipc(&input, &batch);
    for (keep, flag) in [
        (Keep::First, "first"),
        (Keep::Last, "last"),
        (Keep::Any, "any"),
        (Keep::None, "none"),
    ] {
        let want = cpu().distinct(&batch, &["chrom", "pass"], keep).unwrap();
        let want_pos = cpu().distinct(&batch, &["pos"], keep).unwrap();
        for batch_rows in ["4", "1000"] {
            let got = query_to(
                &dir,
                "d.arrow",
                &[
                    s(&input),
                    "--distinct",
                    "chrom,pass",
                    "--keep",
                    flag,
                    "--batch-rows",
                    batch_rows,
                ],
            );
            assert_same(
                &got,
                &want,
                &format!("--keep {flag}, --batch-rows {batch_rows}"),
            );
            let got = query_to(
                &dir,
                "d.arrow",
                &[
                    s(&input),
                    "--distinct",
                    "pos",
                    "--keep",
                    flag,
                    "--batch-rows",
                    batch_rows,
                ],
            );
            assert_same(
                &got,
                &want_pos,
                &format!("pos, --keep {flag}, --batch-rows {batch_rows}"),
            );
        }
    }
}

#[test]
fn sort_and_limit_stream_as_top_n() {
    let dir = Scratch::new("sort");
    let batch = variants();
    let input = dir.path("in.csv");
    write_csv(&input, &batch);
    let keys = [
        SortKey::desc("qual").nulls_first(false),
        SortKey::asc("pos").nulls_first(false),
    ];
    for (limit, batch_rows) in [
        (None, "6"),
        (Some(5usize), "6"),
        (Some(17), "1"),
        (Some(1000), "13"),
    ] {
        let want = cpu().sort(&batch, &keys, limit).unwrap();
        let mut args = vec![
            s(&input),
            "--sort",
            "qual DESC NULLS LAST, pos",
            "--batch-rows",
            batch_rows,
        ];
        let limit_text = limit.map(|l| l.to_string());
        if let Some(l) = &limit_text {
            args.extend_from_slice(&["--limit", l]);
        }
        let got = query_to(&dir, "sorted.parquet", &args);
        assert_same(&got, &want, &format!("--limit {limit:?}"));
    }
    // A limit without a sort: the first rows, in input order.
    let got = query_to(
        &dir,
        "head.parquet",
        &[s(&input), "--limit", "8", "--batch-rows", "3"],
    );
    assert_same(&got, &batch.slice(0, 8), "");
}

#[test]
fn steps_run_in_sql_order() {
    let dir = Scratch::new("order");
    let batch = variants();
    let input = dir.path("in.parquet");
    write_parquet(&input, &batch);
    let engine = cpu();
    let filtered = engine.filter(&batch, &col("qual").is_not_null()).unwrap();
    let grouped = engine
        .group_by(
            &filtered,
            &["chrom", "day"],
            &[Agg::count_star().alias("n"), Agg::sum(col("qual"))],
        )
        .unwrap();
    let distinct = engine.distinct(&grouped, &["chrom"], Keep::First).unwrap();
    let want = engine
        .sort(&distinct, &[SortKey::desc("n")], Some(2))
        .unwrap();
    let got = query_to(
        &dir,
        "out.csv",
        &[
            s(&input),
            "--filter",
            "qual IS NOT NULL",
            "--group-by",
            "chrom,day",
            "--agg",
            "count(*) AS n, sum(qual)",
            "--distinct",
            "chrom",
            "--sort",
            "n desc",
            "--limit",
            "2",
            "--batch-rows",
            "8",
        ],
    );
    assert_same(&got, &want, "");
}

#[test]
fn several_input_files_are_read_in_order() {
    let dir = Scratch::new("multi");
    let batch = variants();
    // Parquet keeps the non-nullable columns; CSV says every column is nullable.
    let (a, b) = (dir.path("a.parquet"), dir.path("b.csv"));
    write_parquet(&a, &batch.slice(0, 20));
    write_csv(&b, &batch.slice(20, 40));
    let got = query_to(
        &dir,
        "all.arrow",
        &[s(&a), s(&b), "--group-by", "chrom", "--agg", "sum(pos)"],
    );
    let want = cpu()
        .group_by(&batch, &["chrom"], &[Agg::sum(col("pos"))])
        .unwrap();
    assert_same(&got, &want, "two files");
}

/// 6,000 rows whose columns need quoting or resolving ("Key", "name with space"), with
/// nulls and NaN, in three files given out of their names' order: every step keeps the
/// library's answer on the rows in the order given, across batches of 7 rows and the
/// plan's partitions.
#[test]
fn files_in_the_order_given_and_odd_names_keep_the_library_answer() {
    let dir = Scratch::new("order-given");
    let n = 6_000usize;
    let key: Int64Array = (0..n)
        .map(|i| (i % 11 != 5).then(|| ((i * 7919) % 523) as i64))
        .collect();
    let name: StringArray = (0..n)
        .map(|i| (i % 13 != 2).then(|| format!("n{}", (i * 31) % 47)))
        .collect();
    let v: Float64Array = (0..n)
        .map(|i| match i % 17 {
            0 => None,
            1 => Some(f64::NAN),
            _ => Some(((i * 104_729) % 1000) as f64 / 7.0 - 60.0),
        })
        .collect();
    let batch = RecordBatch::try_from_iter([
        ("Key", Arc::new(key) as ArrayRef),
        ("name with space", Arc::new(name)),
        ("v", Arc::new(v)),
    ])
    .unwrap();
    let (c, a, b) = (
        dir.path("c.parquet"),
        dir.path("a.arrows"),
        dir.path("b.arrow"),
    );
    write_parquet(&c, &batch.slice(0, 2_000));
    write_ipc_stream(&a, &batch.slice(2_000, 2_000));
    write_ipc(&b, &batch.slice(4_000, 2_000));
    let files = [s(&c), s(&a), s(&b)];
    let engine = cpu();
    let run = |out: &str, args: &[&str]| {
        let mut all: Vec<&str> = files.to_vec();
        all.extend_from_slice(args);
        all.extend_from_slice(&["--batch-rows", "7"]);
        query_to(&dir, out, &all)
    };

    let want = engine
        .group_by(
            &batch,
            &["Key"],
            &[
                Agg::count_star(),
                Agg::sum(col("v")),
                Agg::min(col("v")),
                Agg::max(col("v")).filter(col("name with space").is_not_null()),
            ],
        )
        .unwrap();
    let got = run(
        "g.arrow",
        &[
            "--group-by",
            "key",
            "--agg",
            "count(*), sum(v), min(v), max(v) FILTER (WHERE \"name with space\" IS NOT NULL)",
        ],
    );
    assert_same(&got, &want, "group-by");

    for (keep, flag) in [
        (Keep::First, "first"),
        (Keep::Last, "last"),
        (Keep::None, "none"),
    ] {
        let want = engine.distinct(&batch, &["name with space"], keep).unwrap();
        let got = run(
            "d.arrow",
            &["--distinct", "\"name with space\"", "--keep", flag],
        );
        assert_same(&got, &want, &format!("distinct, --keep {flag}"));
    }

    let predicate = col("v").gt(lit(0.5)).or(col("Key").is_null());
    let filtered = engine.filter(&batch, &predicate).unwrap();
    let want = engine
        .sort(
            &filtered,
            &[
                SortKey::desc("v"),
                SortKey::asc("name with space").nulls_first(false),
            ],
            Some(100),
        )
        .unwrap();
    let got = run(
        "f.arrow",
        &["--filter", "v > 0.5 OR KEY IS NULL", "--limit", "2500"],
    );
    assert_same(&got, &filtered.slice(0, 2_500), "filter, limit");
    let got = run(
        "s.arrow",
        &[
            "--filter",
            "v > 0.5 OR KEY IS NULL",
            "--sort",
            "v desc, \"name with space\"",
            "--limit",
            "100",
        ],
    );
    assert_same(&got, &want, "filter, sort, limit");
}

/// Parquet files large enough to be scanned in parallel byte ranges (over DataFusion's 1 MiB
/// minimum, many row groups each), given out of their names' order: the rows, numbered
/// by the Parquet reader within each file and offset by the rows of the files before it,
/// keep the library's answer for every order-bearing step.
#[test]
fn parquet_scanned_in_parallel_keeps_input_order() {
    let dir = Scratch::new("parallel");
    let n = 300_000usize;
    let key: Int64Array = (0..n)
        .map(|i| (i % 101 != 7).then(|| ((i as u64 * 2_654_435_761) % 20_011) as i64))
        .collect();
    let v: Float64Array = (0..n)
        .map(|i| Some(((i as u64 * 40_503) % 1_000_003) as f64 / 3.0))
        .collect();
    let batch =
        RecordBatch::try_from_iter([("key", Arc::new(key) as ArrayRef), ("v", Arc::new(v))])
            .unwrap();
    let names = ["z.parquet", "m.parquet", "a.parquet"];
    let mut files = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let path = dir.path(name);
        let part = batch.slice(k * 100_000, 100_000);
        let mut w = ArrowWriter::try_new(
            fs::File::create(&path).unwrap(),
            part.schema(),
            Some(
                parquet::file::properties::WriterProperties::builder()
                    .set_max_row_group_row_count(Some(7_000))
                    .set_compression(parquet::basic::Compression::UNCOMPRESSED)
                    .build(),
            ),
        )
        .unwrap();
        w.write(&part).unwrap();
        w.close().unwrap();
        assert!(fs::metadata(&path).unwrap().len() > 1 << 20);
        files.push(path);
    }
    let files: Vec<&str> = files.iter().map(|p| s(p)).collect();
    let engine = cpu();
    let run = |out: &str, args: &[&str]| {
        let mut all: Vec<&str> = files.clone();
        all.extend_from_slice(args);
        query_to(&dir, out, &all)
    };

    let want = engine
        .group_by(&batch, &["key"], &[Agg::count_star(), Agg::sum(col("v"))])
        .unwrap();
    let got = run(
        "g.arrow",
        &["--group-by", "key", "--agg", "count(*), sum(v)"],
    );
    assert_same(&got, &want, "group-by");
    // A filter, also handed to the reader to prune with.
    let filtered = engine
        .filter(
            &batch,
            &col("v")
                .gt(lit(300_000.5))
                .and(col("key").lt(lit(9_000i64))),
        )
        .unwrap();
    let want = engine
        .group_by(&filtered, &["key"], &[Agg::max(col("v"))])
        .unwrap();
    let got = run(
        "fg.arrow",
        &[
            "--filter",
            "v > 300000.5 AND key < 9000",
            "--group-by",
            "key",
            "--agg",
            "max(v)",
        ],
    );
    assert_same(&got, &want, "filter, group-by");
    for (keep, flag) in [
        (Keep::First, "first"),
        (Keep::Last, "last"),
        (Keep::None, "none"),
    ] {
        let want = engine.distinct(&batch, &["key"], keep).unwrap();
        let got = run("d.arrow", &["--distinct", "key", "--keep", flag]);
        assert_same(&got, &want, &format!("distinct, --keep {flag}"));
    }
    let want = engine
        .sort(
            &batch,
            &[SortKey::asc("key").nulls_first(false)],
            Some(5_000),
        )
        .unwrap();
    let got = run("s.arrow", &["--sort", "key", "--limit", "5000"]);
    assert_same(&got, &want, "sort, limit");

    // The scan really ran in parallel parts.
    let mut all = vec!["query"];
    all.extend_from_slice(&files);
    all.extend_from_slice(&["--group-by", "key", "--profile", "-q"]);
    let out = ok(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parallel parts, rows numbered by the Parquet reader"),
        "{stderr}"
    );
    assert!(!stderr.contains("in 3 parallel parts"), "{stderr}");
}

#[test]
fn prints_a_table_and_a_profile() {
    let dir = Scratch::new("table");
    let batch = variants();
    let input = dir.path("in.parquet");
    write_parquet(&input, &batch);
    let out = ok(&[
        "query",
        s(&input),
        "--group-by",
        "chrom",
        "--agg",
        "count(*) AS n",
        "--profile",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for want in ["chrom", "| n ", "chr1", "chrX", "| 20 "] {
        assert!(stdout.contains(want), "stdout lacks {want:?}:\n{stdout}");
    }
    for want in ["profile", "read", "group_by", "write", "3 rows"] {
        assert!(stderr.contains(want), "stderr lacks {want:?}:\n{stderr}");
    }
    // A long result shows its first rows and says so.
    let out = ok(&["query", s(&input), "--limit", "3"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows = stdout
        .lines()
        .filter(|l| l.starts_with("| chr") && !l.contains("chrom"))
        .count();
    assert_eq!(rows, 3, "{stdout}");
}

#[test]
fn gpu_backend_gives_the_cpu_answer_on_every_adapter() {
    let dir = Scratch::new("gpu");
    // The columns the GPU holds (no strings: --backend gpu refuses them).
    let batch = variants().project(&[1, 2, 3, 4]).unwrap();
    let input = dir.path("in.parquet");
    write_parquet(&input, &batch);
    let engine = cpu();
    let filtered = engine
        .filter(
            &batch,
            &col("pos").gt_eq(lit(300i64)).and(col("qual").lt(lit(45.0))),
        )
        .unwrap();
    let cases: [(&[&str], RecordBatch); 3] = [
        (
            &[
                "--filter",
                "pos >= 300 AND qual < 45.0",
                "--sort",
                "pos desc, qual",
            ],
            engine
                .sort(
                    &filtered,
                    &[
                        SortKey::desc("pos"),
                        SortKey::asc("qual").nulls_first(false),
                    ],
                    None,
                )
                .unwrap(),
        ),
        (
            &[
                "--group-by",
                "pass",
                "--agg",
                "count(*), sum(qual), mean(pos)",
                "--batch-rows",
                "16",
            ],
            engine
                .group_by(
                    &batch,
                    &["pass"],
                    &[
                        Agg::count_star(),
                        Agg::sum(col("qual")),
                        Agg::mean(col("pos")),
                    ],
                )
                .unwrap(),
        ),
        (
            &["--distinct", "day", "--batch-rows", "16"],
            engine.distinct(&batch, &["day"], Keep::First).unwrap(),
        ),
    ];
    for (backend, _) in common::gpu_engines(None) {
        for (i, (args, want)) in cases.iter().enumerate() {
            let out_path = dir.path(&format!("{backend}-{i}.arrow"));
            let mut all = vec!["query", s(&input), "--backend", "gpu", "--profile"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--out", s(&out_path)]);
            let out = run_with_env(&all, &[("WGPU_BACKEND", &backend)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{backend} {args:?}: {stderr}");
            assert!(
                stderr.contains("GPU ("),
                "{backend}: the profile names the GPU:\n{stderr}"
            );
            assert_same(&read_back(&out_path), want, &format!("{backend} {args:?}"));
        }
    }
}

/// Runs a query that must fail: a non-zero exit, `says` in its message, and no file left
/// in the output's directory.
fn fails(dir: &Scratch, args: &[&str], says: &str) {
    let before = dir.files();
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr.to_lowercase().contains(&says.to_lowercase()),
        "{args:?}: the message lacks {says:?}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    assert_eq!(dir.files(), before, "{args:?} left files behind");
}

#[test]
fn bad_input_fails_clearly_and_leaves_no_output() {
    let dir = Scratch::new("errors");
    let batch = variants();
    let good = dir.path("good.parquet");
    write_parquet(&good, &batch);
    let out = dir.path("out.parquet");
    let out = s(&out);

    // A missing file.
    fails(
        &dir,
        &["query", s(&dir.path("missing.parquet")), "--out", out],
        "missing.parquet",
    );
    // A corrupt Parquet file: the magic bytes, then garbage.
    let corrupt = dir.path("corrupt.parquet");
    fs::write(&corrupt, b"PAR1 this is not a parquet file at all PAR1").unwrap();
    fails(
        &dir,
        &["query", s(&corrupt), "--out", out],
        "not a valid Parquet file",
    );
    // A CSV row with the wrong field count, after enough good rows that some batches were
    // already written when it is found.
    let ragged = dir.path("ragged.csv");
    let mut text = String::from("a,b\n");
    // Past the rows read to infer the types, so that batches are written before it fails.
    for i in 0..10_050 {
        text += &format!("{i},{}\n", i * 2);
    }
    text += "10050,100,7\n";
    fs::write(&ragged, text).unwrap();
    fails(
        &dir,
        &["query", s(&ragged), "--batch-rows", "10", "--out", out],
        "fields",
    );
    // Unknown columns, in every place a column is named.
    for args in [
        ["--filter", "nope > 1"],
        ["--group-by", "nope"],
        ["--distinct", "nope"],
        ["--sort", "nope desc"],
    ] {
        let mut all = vec!["query", s(&good)];
        all.extend_from_slice(&args);
        all.extend_from_slice(&["--out", out]);
        fails(&dir, &all, "unknown column 'nope'");
    }
    fails(
        &dir,
        &["query", s(&good), "--agg", "sum(nope)", "--out", out],
        "nope",
    );
    // Expressions that don't parse, and ones that don't type-check.
    fails(
        &dir,
        &["query", s(&good), "--filter", "pos >", "--out", out],
        "can't parse",
    );
    fails(
        &dir,
        &["query", s(&good), "--filter", "pos > 1 AND", "--out", out],
        "can't parse",
    );
    fails(
        &dir,
        &["query", s(&good), "--agg", "median(pos)", "--out", out],
        "unknown aggregate",
    );
    fails(
        &dir,
        &["query", s(&good), "--filter", "pass + 1 > 2", "--out", out],
        "invalid expression",
    );
    fails(
        &dir,
        &["query", s(&good), "--filter", "pos", "--out", out],
        "invalid expression",
    );
    fails(
        &dir,
        &["query", s(&good), "--filter", "chrom = 1", "--out", out],
        "invalid expression",
    );
    fails(
        &dir,
        &["query", s(&good), "--agg", "sum(chrom)", "--out", out],
        "not supported",
    );
    // Unwritable outputs: a directory that doesn't exist, an unknown extension.
    fails(
        &dir,
        &[
            "query",
            s(&good),
            "--out",
            s(&dir.path("no/such/dir/out.parquet")),
        ],
        "can't write",
    );
    fails(
        &dir,
        &["query", s(&good), "--out", s(&dir.path("out.xlsx"))],
        "unknown extension",
    );
    // Literals that are numbers or bytes, never the text of their digits, and
    // count(DISTINCT *), which is not count(*).
    for (filter, says) in [
        ("pos = 0x10", "hex literal"),
        ("pos = X'41'", "hex literal"),
        ("pos = B'10'", "literal"),
    ] {
        fails(
            &dir,
            &["query", s(&good), "--filter", filter, "--out", out],
            says,
        );
    }
    fails(
        &dir,
        &[
            "query",
            s(&good),
            "--agg",
            "count(DISTINCT *)",
            "--out",
            out,
        ],
        "count(DISTINCT *) isn't supported",
    );
    // Sizes that no input needs: a usage error, not an allocation of terabytes or a
    // ladder that never ends.
    for args in [
        vec![
            "query",
            s(&good),
            "--batch-rows",
            "1000000000000",
            "--out",
            out,
        ],
        vec!["query", s(&good), "--batch-rows", "0", "--out", out],
        vec!["report", "--max-rows", "18446744073709551615", "--out", out],
        vec!["report", "--max-rows", "10", "--out", out],
    ] {
        fails(&dir, &args, "use 1");
    }
    // Files with different columns.
    let other = dir.path("other.csv");
    fs::write(&other, "x\n1\n").unwrap();
    fails(
        &dir,
        &["query", s(&good), s(&other), "--out", out],
        "other columns",
    );
    // A failure leaves an existing output as it was.
    fs::write(dir.path("out.parquet"), b"old").unwrap();
    fails(
        &dir,
        &["query", s(&ragged), "--batch-rows", "10", "--out", out],
        "fields",
    );
    assert_eq!(fs::read(dir.path("out.parquet")).unwrap(), b"old");
}

#[test]
fn report_writes_html_markdown_and_json() {
    let dir = Scratch::new("report");
    let out = ok(&[
        "report",
        "--max-rows",
        "3000",
        "--runs",
        "1",
        "--quiet",
        "--out",
        s(&dir.0),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("report.html"), "{stdout}");
    let html = fs::read_to_string(dir.path("report.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 8,
        "a throughput and a split chart per operation"
    );
    for want in [
        "rows per second (log scale)",
        "rows in the input (log scale)",
        "filter",
        "sort",
        "group_by",
        "distinct",
    ] {
        assert!(html.contains(want), "the page lacks {want:?}");
    }
    assert!(
        html.contains("never wins up to")
            || html.contains("starts to win at")
            || html.contains("wins at every size")
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path("report.json")).unwrap()).unwrap();
    assert_eq!(json["all_answers_agree"], true);
    assert_eq!(json["sizes"], serde_json::json!([1000, 3000]));
    let md = fs::read_to_string(dir.path("report.md")).unwrap();
    assert!(md.contains("| operation |"));
    // DataFusion's own execution is measured beside our CPU path and the GPU.
    assert!(md.contains("| DataFusion rows/s |"), "{md}");
    assert!(
        md.contains("SELECT DISTINCT ON (grp, flag) * FROM t"),
        "{md}"
    );
    assert!(
        html.contains("DataFusion (CPU)"),
        "a DataFusion line on the charts"
    );
    let datafusion_points = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["mode"] == "datafusion")
        .count();
    assert_eq!(datafusion_points, 8, "four operations at two sizes");
    if let Some(adapter) = json["adapter"].as_object() {
        if adapter["software"] == true {
            assert!(html.contains("Software driver, not a GPU"));
        }
        // Every GPU point carries its counted device work; the others carry none.
        for p in json["points"].as_array().unwrap() {
            let gpu = p["mode"].as_str().unwrap().starts_with("gpu");
            for field in ["device_bytes", "minimal_bytes", "dispatches", "host_syncs"] {
                assert_eq!(p[field].is_u64(), gpu, "{field} of {p}");
            }
            if gpu {
                assert!(p["dispatches"].as_u64().unwrap() > 0, "{p}");
                assert!(p["host_syncs"].as_u64().unwrap() > 0, "{p}");
                assert!(
                    p["device_bytes"].as_u64() >= p["minimal_bytes"].as_u64(),
                    "{p}"
                );
            }
        }
        assert!(md.contains("| device / minimal |"), "{md}");
        assert!(
            html.contains("Device work (counted)"),
            "the page lacks the device work"
        );
    }
}

#[test]
fn info_lists_adapters() {
    let out = ok(&["info"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("adapter") || stdout.contains("No GPU adapter"),
        "{stdout}"
    );
}

#[test]
fn help_says_what_needs_the_whole_input() {
    let out = ok(&["query", "--help"]);
    // Words as clap wraps them, joined again.
    let help = String::from_utf8(out.stdout).unwrap();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "--filter",
        "--group-by",
        "--agg",
        "--distinct",
        "--keep",
        "--sort",
        "--limit",
        "--out",
        "--backend",
        "--profile",
        "needs its whole input in memory",
    ] {
        assert!(help.contains(want), "--help lacks {want:?}:\n{help}");
    }
}
