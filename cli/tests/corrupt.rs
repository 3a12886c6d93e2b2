//! Corrupted and truncated input files, a fixed budget of them: every run of `arrow-wgpu
//! query` and `arrow-wgpu sql` over a damaged Parquet, Arrow IPC (file and stream) or CSV
//! file ends with an answer or a clear error (exit status 0 or 1), never a panic (101) or a
//! signal, and a failed run leaves no output file. The damage is deterministic (a seeded
//! generator), so a failure names the seed, the file and the offset that reproduce it.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::Scratch;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};

const BIN: &str = env!("CARGO_BIN_EXE_arrow-wgpu");

/// Damaged copies of each input, by format.
const CASES_PER_FORMAT: usize = 30;

fn sample() -> RecordBatch {
    let n = 300;
    let ids: Vec<i64> = (0..n).map(|i| i * 7 % 23).collect();
    let values: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 11 != 0).then(|| i as f64 / 3.0))
        .collect();
    let names: Vec<Option<&str>> = (0..n)
        .map(|i| (i % 5 != 0).then(|| ["a", "bb", ""][i as usize % 3]))
        .collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("v", Arc::new(Float64Array::from(values)) as ArrayRef),
        ("s", Arc::new(StringArray::from(names)) as ArrayRef),
    ])
    .unwrap()
}

fn write(path: &Path, batch: &RecordBatch) {
    let file = fs::File::create(path).unwrap();
    match path.extension().unwrap().to_str().unwrap() {
        "parquet" => {
            let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
            for at in (0..batch.num_rows()).step_by(100) {
                w.write(&batch.slice(at, 100)).unwrap();
                w.flush().unwrap();
            }
            w.close().unwrap();
        }
        "arrow" => {
            let mut w = arrow::ipc::writer::FileWriter::try_new(file, &batch.schema()).unwrap();
            w.write(&batch.slice(0, 150)).unwrap();
            w.write(&batch.slice(150, 150)).unwrap();
            w.finish().unwrap();
        }
        "arrows" => {
            let mut w = arrow::ipc::writer::StreamWriter::try_new(file, &batch.schema()).unwrap();
            w.write(batch).unwrap();
            w.finish().unwrap();
        }
        _ => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(file);
            w.write(batch).unwrap();
        }
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// `bytes` damaged one of three ways: a run of flipped bytes, a truncation, or a run of
/// bytes set to 0xff (lengths and offsets read as huge).
fn damage(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut out = bytes.to_vec();
    let at = rng.below(bytes.len() as u64) as usize;
    match rng.below(3) {
        0 => {
            let len = 1 + rng.below(8) as usize;
            for b in out.iter_mut().skip(at).take(len) {
                *b ^= 1 << rng.below(8);
            }
            (out, format!("{len} bytes flipped at {at}"))
        }
        1 => {
            out.truncate(at);
            (out, format!("truncated at {at}"))
        }
        _ => {
            let len = 1 + rng.below(4) as usize;
            for b in out.iter_mut().skip(at).take(len) {
                *b = 0xff;
            }
            (out, format!("{len} bytes set to 0xff at {at}"))
        }
    }
}

#[test]
fn damaged_files_give_an_answer_or_an_error_never_a_panic() {
    let dir = Scratch::new("files");
    let batch = sample();
    let mut rng = Rng(0xdead_beef);
    for ext in ["parquet", "arrow", "arrows", "csv"] {
        let clean = dir.0.join(format!("clean.{ext}"));
        write(&clean, &batch);
        let bytes = fs::read(&clean).unwrap();
        for case in 0..CASES_PER_FORMAT {
            let (damaged, how) = damage(&bytes, &mut rng);
            let input = dir.0.join(format!("damaged.{ext}"));
            fs::write(&input, &damaged).unwrap();
            let out = dir.0.join("out.parquet");
            let _ = fs::remove_file(&out);
            let table = format!("t={}", input.display());
            let runs: [Vec<&str>; 2] = [
                vec![
                    "query",
                    input.to_str().unwrap(),
                    "--group-by",
                    "id",
                    "--agg",
                    "sum(v), count(s)",
                    "--out",
                    out.to_str().unwrap(),
                    "-q",
                ],
                vec![
                    "sql",
                    "--table",
                    &table,
                    "SELECT id, sum(v), count(s) FROM t GROUP BY id",
                    "--out",
                    out.to_str().unwrap(),
                    "-q",
                    "--backend",
                    "cpu",
                ],
            ];
            for args in runs {
                let run = Command::new(BIN)
                    .args(&args)
                    .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&run.stderr);
                let code = run.status.code();
                assert!(
                    matches!(code, Some(0 | 1)),
                    "{ext} case {case} ({how}), {}: exit {code:?}\n{stderr}",
                    args[0]
                );
                assert!(
                    !stderr.contains("panicked"),
                    "{ext} case {case} ({how}), {}: {stderr}",
                    args[0]
                );
                if code == Some(1) {
                    assert!(
                        stderr.starts_with("error: "),
                        "{ext} case {case} ({how}): {stderr}"
                    );
                    assert!(
                        !out.exists(),
                        "{ext} case {case} ({how}): an output after a failure"
                    );
                }
                // No temporary file is left either way.
                let left: Vec<_> = fs::read_dir(&dir.0)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".tmp"))
                    .collect();
                assert!(left.is_empty(), "{ext} case {case}: {left:?}");
                let _ = fs::remove_file(&out);
            }
        }
    }
}
