//! A genomics workflow through SQL: variant calls in their real format (VCF) read into
//! Arrow, then filtered by QUAL and region, counted and summarised per chromosome, and
//! deduplicated, all in DataFusion with arrow-wgpu added (exact `avg`/`stddev`/`sum`; with
//! `--gpu`, filters, aggregates and sorts on the GPU).
//!
//! ```text
//! cargo run --release --example genomics -- [FILE.vcf | FILE.vcf.gz] [--gpu]
//!     [--records N] [--region CHROM:START-END] [--parquet OUT.parquet]
//! ```
//!
//! - Without a file, a synthetic but realistic VCF is written to a temporary file first
//!   (`--records`, default 300,000 sites): a VCFv4.3 header with the GRCh38 contigs chr1 to
//!   chr22 and chrX, INFO `DP` and `AF`, FILTER `PASS`/`LowQual`; SNVs, indels and a few
//!   multi-allelic sites; some QUALs missing (`.`); and exact duplicate records where the
//!   calling shards overlap, as a pipeline that concatenates overlapping shards produces.
//! - The file is read with [noodles](https://github.com/zaeleus/noodles) (`noodles-vcf`):
//!   noodles parses the header (each line checked, an error names the line) and splits
//!   each record into its fields, typed by the header's INFO definitions; this example
//!   turns them into Arrow `RecordBatch`es of 64k rows: `chrom`, `pos`, `id`, `ref`,
//!   `alt`, `qual`, `filter`, `dp`, `af`. Plain and bgzip-compressed (`.vcf.gz`) files
//!   both work. A malformed record stops the run with its line number and text.
//! - The batches are registered as the table `variants` (and the header's contig order
//!   as `contigs`, to list chromosomes in genome order) in a DataFusion session with
//!   arrow-wgpu, and three queries run through SQL: a QUAL and region filter;
//!   per-chromosome counts and QUAL/position/depth statistics of the PASS calls;
//!   duplicates and per-chromosome counts after `SELECT DISTINCT chrom, pos, ref, alt`.
//!   Query 2 then runs again on sessions with 1 and with 4 target partitions, and the two
//!   answers are checked to be identical bit for bit: the float aggregates are exact, so
//!   how the rows were split between threads can't change them.
//! - `--gpu` runs on `Backend::Gpu` (the adapter is printed, and what the rule put on the
//!   GPU after each query); without it, on `Backend::Cpu`.
//! - `arrow-wgpu sql` (the command in `cli/`) runs the same SQL over Parquet, CSV and
//!   Arrow IPC files; VCF goes through this example's reader: `--parquet OUT.parquet`
//!   writes the `variants` table, and then, e.g.
//!   `arrow-wgpu sql --table variants=OUT.parquet "SELECT chrom, count(*) FROM variants WHERE qual >= 30 GROUP BY chrom"`.
//!
//! QUAL and AF are `Float` in VCF, which noodles (like htslib and BCF) reads as `f32`; the
//! `f64` columns hold the shortest decimal that `f32` prints as (`30.7`, not
//! `30.700000762939453`), which is the number as written for up to 6 or 7 significant
//! digits.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, Int32Array, Int32Builder, Int64Array,
    Int64Builder, RecordBatch, StringArray, StringBuilder, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_wgpu::{Backend, Engine};
use arrow_wgpu_datafusion::{with_options, ArrowWgpuOptions, PlanNotes};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use noodles_vcf as vcf;
use vcf::variant::record::info::field::value::Array as InfoArray;
use vcf::variant::record::info::field::Value as InfoValue;

type BoxError = Box<dyn std::error::Error>;

/// Rows per Arrow batch read from the VCF.
const BATCH_ROWS: usize = 64 * 1024;

/// GRCh38's primary assembly, chr1 to chr22 and chrX, with their lengths.
const CONTIGS: [(&str, u64); 23] = [
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr3", 198_295_559),
    ("chr4", 190_214_555),
    ("chr5", 181_538_259),
    ("chr6", 170_805_979),
    ("chr7", 159_345_973),
    ("chr8", 145_138_636),
    ("chr9", 138_394_717),
    ("chr10", 133_797_422),
    ("chr11", 135_086_622),
    ("chr12", 133_275_309),
    ("chr13", 114_364_328),
    ("chr14", 107_043_718),
    ("chr15", 101_991_189),
    ("chr16", 90_338_345),
    ("chr17", 83_257_441),
    ("chr18", 80_373_285),
    ("chr19", 58_617_616),
    ("chr20", 64_444_167),
    ("chr21", 46_709_983),
    ("chr22", 50_818_468),
    ("chrX", 156_040_895),
];

struct Args {
    vcf: Option<PathBuf>,
    gpu: bool,
    records: usize,
    region: (String, i64, i64),
    parquet: Option<String>,
}

const USAGE: &str = "usage: genomics [FILE.vcf | FILE.vcf.gz] [--gpu] [--records N] [--region CHROM:START-END] [--parquet OUT.parquet]
  FILE           a VCF to read (default: a synthetic one written to a temporary file)
  --gpu          run on the GPU engine (Backend::Gpu) instead of the CPU one
  --records N    sites in the synthetic VCF (default 300000)
  --region R     the region of query 1 (default chr1:1000000-5000000)
  --parquet OUT  also write the variants table to OUT as Parquet (for `arrow-wgpu sql`)";

fn parse_args() -> Result<Option<Args>, BoxError> {
    let mut args = Args {
        vcf: None,
        gpu: false,
        records: 300_000,
        region: ("chr1".into(), 1_000_000, 5_000_000),
        parquet: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--gpu" => args.gpu = true,
            "--records" => {
                args.records = it
                    .next()
                    .and_then(|v| v.replace('_', "").parse().ok())
                    .filter(|n: &usize| *n > 0)
                    .ok_or("--records needs a positive number")?
            }
            "--region" => {
                let text = it.next().ok_or("--region needs CHROM:START-END")?;
                args.region = parse_region(&text)
                    .ok_or_else(|| format!("--region {text}: expected CHROM:START-END"))?;
            }
            "--parquet" => args.parquet = Some(it.next().ok_or("--parquet needs a path")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            flag if flag.starts_with("--") => {
                return Err(format!("unknown option {flag}\n{USAGE}").into())
            }
            path if args.vcf.is_none() => args.vcf = Some(PathBuf::from(path)),
            extra => return Err(format!("one VCF at most (got a second: {extra})").into()),
        }
    }
    Ok(Some(args))
}

/// `chr1:1000000-5000000` (thousands separators allowed, as genome browsers print them).
fn parse_region(text: &str) -> Option<(String, i64, i64)> {
    let (chrom, range) = text.rsplit_once(':')?;
    let (start, end) = range.split_once('-')?;
    let num = |s: &str| s.replace(',', "").parse::<i64>().ok();
    let (start, end) = (num(start)?, num(end)?);
    (!chrom.is_empty() && start <= end).then(|| (chrom.to_string(), start, end))
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BoxError> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };

    // The input: the file given, or a synthetic one (removed at exit).
    let mut _synthetic = None;
    let mut expected = None;
    let path = match &args.vcf {
        Some(p) => p.clone(),
        None => {
            let file = TempFile(
                std::env::temp_dir()
                    .join(format!("arrow-wgpu-genomics-{}.vcf", std::process::id())),
            );
            let start = Instant::now();
            let written = write_synthetic_vcf(&file.0, args.records)?;
            println!(
                "synthetic VCF: {} ({} sites on {} GRCh38 contigs, {} records of which {} exact duplicates where 20 Mb calling shards overlap by 200 kb; SNVs, indels, {} multi-allelic; {} QUALs missing), {} written in {}",
                file.0.display(),
                written.sites,
                CONTIGS.len(),
                written.records,
                written.records - written.sites,
                written.multi_allelic,
                written.missing_qual,
                size(std::fs::metadata(&file.0)?.len()),
                ms(start.elapsed()),
            );
            let p = file.0.clone();
            expected = Some(written);
            _synthetic = Some(file);
            p
        }
    };
    if args.vcf.is_some() {
        println!(
            "VCF: {} ({})",
            path.display(),
            size(
                std::fs::metadata(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .len()
            )
        );
    }

    // VCF -> Arrow with noodles.
    let start = Instant::now();
    let read = read_vcf(&path)?;
    let rows: usize = read.batches.iter().map(RecordBatch::num_rows).sum();
    println!(
        "read with noodles-vcf into {} Arrow batches: {rows} rows, {} contigs, in {}",
        read.batches.len(),
        read.contigs.len(),
        ms(start.elapsed())
    );
    if rows == 0 {
        return Err(format!("{}: no records", path.display()).into());
    }

    // The engine and the tables.
    let engine = Arc::new(if args.gpu {
        Engine::new(Backend::Gpu).map_err(|e| format!("--gpu: no GPU engine: {e}"))?
    } else {
        Engine::new(Backend::Cpu)?
    });
    match engine.adapter() {
        Some(adapter) => println!("engine: GPU, {adapter}"),
        None => println!(
            "engine: CPU ({} threads; --gpu for the GPU)",
            engine.cpu_threads()
        ),
    }
    let variants = Arc::new(MemTable::try_new(
        read.schema.clone(),
        vec![read.batches.clone()],
    )?);
    let contigs = contigs_table(&read.contigs)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (ctx, notes) = session(engine.clone(), None, &variants, &contigs)?;

    // 1. Filtered by QUAL and region.
    let (chrom, from, to) = &args.region;
    let q1 = format!(
        "SELECT count(*) AS variants FROM variants\n WHERE qual >= 30 AND chrom = '{}' AND pos BETWEEN {from} AND {to}",
        chrom.replace('\'', "''")
    );
    let got = runtime.block_on(query(&ctx, &notes, "1. filtered by QUAL and region", &q1))?;
    let want = count_in_region(&read.batches, chrom, *from, *to);
    let n = scalar_u64(&got, 0)?;
    if n != want {
        return Err(format!("query 1 counted {n}, the batches hold {want}").into());
    }
    println!("  (checked against a direct count over the batches: {want})");

    // 2. Per chromosome, PASS calls with QUAL >= 30.
    let q2 = "WITH per_chrom AS (\n  SELECT chrom, count(*) AS variants, avg(qual) AS avg_qual, stddev(qual) AS stddev_qual,\n         min(pos) AS first_pos, max(pos) AS last_pos, sum(dp) AS total_dp\n  FROM variants WHERE filter = 'PASS' AND qual >= 30 GROUP BY chrom)\nSELECT p.* FROM per_chrom p JOIN contigs c ON p.chrom = c.chrom ORDER BY c.idx";
    let per_chrom = runtime.block_on(query(
        &ctx,
        &notes,
        "2. per-chromosome counts and stats of PASS calls with QUAL >= 30",
        q2,
    ))?;

    // 3. Deduplicated.
    let q3a = "SELECT (SELECT count(*) FROM variants) AS records,\n       (SELECT count(*) FROM (SELECT DISTINCT * FROM variants)) AS distinct_records,\n       (SELECT count(*) FROM (SELECT DISTINCT chrom, pos, ref, alt FROM variants)) AS distinct_variants";
    let totals = runtime.block_on(query(
        &ctx,
        &notes,
        "3a. records and distinct variants",
        q3a,
    ))?;
    let q3b = "WITH dedup AS (SELECT DISTINCT chrom, pos, ref, alt FROM variants),\n     r AS (SELECT chrom, count(*) AS records FROM variants GROUP BY chrom),\n     d AS (SELECT chrom, count(*) AS distinct_variants FROM dedup GROUP BY chrom)\nSELECT r.chrom, r.records, d.distinct_variants, r.records - d.distinct_variants AS duplicates\nFROM r JOIN d ON r.chrom = d.chrom JOIN contigs c ON r.chrom = c.chrom ORDER BY c.idx";
    runtime.block_on(query(
        &ctx,
        &notes,
        "3b. per-chromosome counts after SELECT DISTINCT chrom, pos, ref, alt",
        q3b,
    ))?;
    if let Some(written) = &expected {
        let (records, distinct) = (scalar_u64(&totals, 0)?, scalar_u64(&totals, 2)?);
        if (records, distinct) != (written.records as u64, written.sites as u64) {
            return Err(format!(
                "query 3 found {records} records and {distinct} distinct; the generator wrote {} and {}",
                written.records, written.sites
            )
            .into());
        }
        println!(
            "  (matches the generator: {} records, {} duplicates removed)",
            records,
            records - distinct
        );
    }

    // Exact float aggregates: query 2 on 1 and on 4 partitions gives the same bits (and,
    // with --gpu, the same bits as on the CPU engine).
    println!("\nquery 2 with target_partitions 1 and 4 (two sessions):");
    let mut answers = Vec::new();
    for partitions in [1, 4] {
        let (ctx, notes) = session(engine.clone(), Some(partitions), &variants, &contigs)?;
        let start = Instant::now();
        let batches = runtime.block_on(async { ctx.sql(q2).await?.collect().await })?;
        notes.take();
        println!("  {partitions} partition(s): {}", ms(start.elapsed()));
        answers.push(batches);
    }
    let (one, four) = (&answers[0], &answers[1]);
    same_bits(one, four).map_err(|e| format!("1 and 4 partitions differ: {e}"))?;
    same_bits(one, &per_chrom).map_err(|e| format!("1 partition and the default differ: {e}"))?;
    let first = arrow::compute::concat_batches(&one[0].schema(), one)?;
    let avg = first
        .column_by_name("avg_qual")
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .filter(|a| !a.is_empty() && a.is_valid(0));
    match avg {
        Some(a) => println!(
            "  identical bit for bit ({} rows; e.g. avg_qual of {} = {} = 0x{:016x} on both)",
            first.num_rows(),
            first
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .map_or("row 0", |c| c.value(0)),
            a.value(0),
            a.value(0).to_bits()
        ),
        None => println!("  identical bit for bit ({} rows)", first.num_rows()),
    }
    if engine.adapter().is_some() {
        let (cpu, _) = session(
            Arc::new(Engine::new(Backend::Cpu)?),
            None,
            &variants,
            &contigs,
        )?;
        let start = Instant::now();
        let want = runtime.block_on(async { cpu.sql(q2).await?.collect().await })?;
        same_bits(one, &want).map_err(|e| format!("the GPU and the CPU engine differ: {e}"))?;
        println!(
            "  and identical bit for bit to the CPU engine's answer ({})",
            ms(start.elapsed())
        );
    }

    if let Some(out) = &args.parquet {
        let start = Instant::now();
        runtime.block_on(async {
            ctx.table("variants")
                .await?
                .write_parquet(
                    out,
                    DataFrameWriteOptions::new().with_single_file_output(true),
                    None,
                )
                .await
        })?;
        println!(
            "\nwrote the variants table to {out} in {}: `arrow-wgpu sql --table variants={out} \"SELECT chrom, count(*) FROM variants WHERE qual >= 30 GROUP BY chrom\"`",
            ms(start.elapsed())
        );
    }
    Ok(())
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn size(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

// ---------------------------------------------------------------------------------------
// The synthetic VCF.

/// SplitMix64: a small, seeded generator, so every run writes the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn base(&mut self) -> char {
        b"ACGT"[self.below(4) as usize] as char
    }
    fn other_base(&mut self, not: char) -> char {
        loop {
            let b = self.base();
            if b != not {
                return b;
            }
        }
    }
}

/// What the generator wrote, to check the queries' answers against.
struct Written {
    /// Distinct sites (chrom, pos, ref, alt).
    sites: usize,
    /// Data lines, duplicates included.
    records: usize,
    multi_allelic: usize,
    missing_qual: usize,
}

/// Calling shard size and how far neighbouring shards overlap: records in the overlap
/// are written by both shards.
const SHARD: u64 = 20_000_000;
const OVERLAP: u64 = 200_000;

/// Writes about `sites` variant sites (uniform positions, a few coinciding) spread over the GRCh38 contigs by length, in position
/// order per contig, as a pipeline that called 20 Mb shards and concatenated them writes
/// them (the records where two shards overlap appear twice).
fn write_synthetic_vcf(path: &Path, sites: usize) -> Result<Written, BoxError> {
    let mut out =
        BufWriter::new(File::create(path).map_err(|e| format!("{}: {e}", path.display()))?);
    writeln!(out, "##fileformat=VCFv4.3")?;
    writeln!(out, "##fileDate=20240115")?;
    writeln!(
        out,
        "##source=arrow-wgpu examples/genomics.rs (synthetic calls)"
    )?;
    writeln!(out, "##reference=GRCh38")?;
    for (name, len) in CONTIGS {
        writeln!(out, "##contig=<ID={name},length={len},assembly=GRCh38>")?;
    }
    writeln!(
        out,
        "##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Combined depth across samples\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency, for each ALT allele\">"
    )?;
    writeln!(out, "##FILTER=<ID=PASS,Description=\"All filters passed\">")?;
    writeln!(
        out,
        "##FILTER=<ID=LowQual,Description=\"Low quality (QUAL < 20)\">"
    )?;
    writeln!(out, "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")?;

    let mut rng = Rng(0x005e_ed0f_9e40_6d1c);
    let genome: u64 = CONTIGS.iter().map(|(_, len)| len).sum();
    let mut written = Written {
        sites: 0,
        records: 0,
        multi_allelic: 0,
        missing_qual: 0,
    };
    let mut allotted = 0usize;
    let mut covered = 0u64;
    for (chrom, len) in CONTIGS {
        // Sites for this contig in proportion to its length (the last takes the rest).
        covered += len;
        let upto = ((sites as u128 * covered as u128) / genome as u128) as usize;
        let n = upto - allotted;
        allotted = upto;
        let mut positions: Vec<u64> = (0..n).map(|_| 1 + rng.below(len)).collect();
        positions.sort_unstable();
        positions.dedup();
        let lines: Vec<(u64, String)> = positions
            .into_iter()
            .map(|pos| (pos, synthetic_record(&mut rng, chrom, pos, &mut written)))
            .collect();
        written.sites += lines.len();
        // The shards in order; each starts OVERLAP before its own start.
        let mut shard_start = 0u64;
        let mut first = 0usize; // the first line at or after the shard's own start
        while first < lines.len() {
            let shard_end = shard_start + SHARD;
            let from = shard_start.saturating_sub(OVERLAP);
            let begin = lines.partition_point(|(p, _)| *p < from);
            let end = lines.partition_point(|(p, _)| *p < shard_end);
            for (_, line) in &lines[begin..end] {
                out.write_all(line.as_bytes())?;
                written.records += 1;
            }
            first = end;
            shard_start = shard_end;
        }
    }
    out.flush()?;
    Ok(written)
}

/// One data line: an SNV (sometimes multi-allelic) or a short indel, an rsID for some,
/// QUAL (missing for a few), FILTER from QUAL, INFO DP (missing for a few) and AF.
fn synthetic_record(rng: &mut Rng, chrom: &str, pos: u64, written: &mut Written) -> String {
    let mut line = String::with_capacity(80);
    let _ = write!(line, "{chrom}\t{pos}\t");
    if rng.chance(0.35) {
        let _ = write!(line, "rs{}", 1_000 + rng.below(1_500_000_000));
    } else {
        line.push('.');
    }
    let first = rng.base();
    let kind = rng.unit();
    let alts = if kind < 0.82 {
        // SNV
        let alt = rng.other_base(first);
        let _ = write!(line, "\t{first}\t{alt}");
        if rng.chance(0.03) {
            let mut second = rng.other_base(first);
            while second == alt {
                second = rng.other_base(first);
            }
            let _ = write!(line, ",{second}");
            written.multi_allelic += 1;
            2
        } else {
            1
        }
    } else if kind < 0.91 {
        // deletion: REF = anchor + deleted bases, ALT = anchor
        let _ = write!(line, "\t{first}");
        for _ in 0..1 + rng.below(6) {
            line.push(rng.base());
        }
        let _ = write!(line, "\t{first}");
        1
    } else {
        // insertion: REF = anchor, ALT = anchor + inserted bases
        let _ = write!(line, "\t{first}\t{first}");
        for _ in 0..1 + rng.below(6) {
            line.push(rng.base());
        }
        1
    };
    // QUAL: missing for ~4%; ~15% low (3-30); the rest spread (log-uniform) from 30 to 3000.
    let qual = if rng.chance(0.04) {
        written.missing_qual += 1;
        None
    } else if rng.chance(0.15) {
        Some(3.0 + 27.0 * rng.unit())
    } else {
        Some(30.0 * 100f64.powf(rng.unit()))
    };
    match qual {
        None => line.push_str("\t.\t."),
        Some(q) => {
            let filter = if q < 20.0 { "LowQual" } else { "PASS" };
            let _ = write!(line, "\t{q:.2}\t{filter}");
        }
    }
    // INFO
    line.push('\t');
    if rng.chance(0.97) {
        let _ = write!(line, "DP={};", 8 + rng.below(140));
    }
    line.push_str("AF=");
    for i in 0..alts {
        if i > 0 {
            line.push(',');
        }
        // germline-like: mostly het (0.5) or hom-alt (1.0), else a cohort frequency
        let af = match rng.below(10) {
            0..=4 => 0.5,
            5..=6 => 1.0,
            _ => (1 + rng.below(999)) as f64 / 1000.0,
        };
        let _ = write!(line, "{af:.3}");
    }
    line.push('\n');
    line
}

// ---------------------------------------------------------------------------------------
// VCF -> Arrow.

struct Read {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Contig names in the header's order, then any others in the order first seen.
    contigs: Vec<String>,
}

fn variants_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("chrom", DataType::Utf8, false),
        Field::new("pos", DataType::Int64, false),
        Field::new("id", DataType::Utf8, true),
        Field::new("ref", DataType::Utf8, false),
        Field::new("alt", DataType::Utf8, false),
        Field::new("qual", DataType::Float64, true),
        Field::new("filter", DataType::Utf8, false),
        Field::new("dp", DataType::Int32, true),
        Field::new("af", DataType::Float64, true),
    ]))
}

/// The columns being filled.
struct Columns {
    chrom: StringBuilder,
    pos: Int64Builder,
    id: StringBuilder,
    ref_bases: StringBuilder,
    alt: StringBuilder,
    qual: Float64Builder,
    filter: StringBuilder,
    dp: Int32Builder,
    af: Float64Builder,
    rows: usize,
}

impl Columns {
    fn new() -> Columns {
        let strings = || StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8);
        Columns {
            chrom: strings(),
            pos: Int64Builder::with_capacity(BATCH_ROWS),
            id: strings(),
            ref_bases: strings(),
            alt: strings(),
            qual: Float64Builder::with_capacity(BATCH_ROWS),
            filter: strings(),
            dp: Int32Builder::with_capacity(BATCH_ROWS),
            af: Float64Builder::with_capacity(BATCH_ROWS),
            rows: 0,
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, BoxError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.chrom.finish()),
            Arc::new(self.pos.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.ref_bases.finish()),
            Arc::new(self.alt.finish()),
            Arc::new(self.qual.finish()),
            Arc::new(self.filter.finish()),
            Arc::new(self.dp.finish()),
            Arc::new(self.af.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// Reads `path` (plain or bgzip-compressed VCF) into batches of [`BATCH_ROWS`] rows.
/// Errors name the file and line, and quote the line.
fn read_vcf(path: &Path) -> Result<Read, BoxError> {
    let shown = path.display();
    let mut reader = vcf::io::reader::Builder::default()
        .build_from_path(path)
        .map_err(|e| format!("{shown}: {e}"))?;

    // The header, line by line, so that an error names its line.
    let mut line_no = 0usize;
    let mut parser = vcf::header::Parser::default();
    {
        let mut header_reader = reader.header_reader();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = header_reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("{shown}:{}: {e}", line_no + 1))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if let Err(e) = parser.parse_partial(&line) {
                return Err(format!(
                    "{shown}:{line_no}: invalid VCF header line ({})\n  {}",
                    chain(&e),
                    quote(&line)
                )
                .into());
            }
        }
    }
    let header = parser.finish().map_err(|e| {
        format!(
            "{shown}: invalid VCF header ({}) after {line_no} lines",
            chain(&e)
        )
    })?;

    let schema = variants_schema();
    let mut contigs: Vec<String> = header.contigs().keys().cloned().collect();
    let mut known: HashSet<String> = contigs.iter().cloned().collect();
    let mut last_chrom = String::new();
    let mut batches = Vec::new();
    let mut columns = Columns::new();
    let mut record = vcf::Record::default();
    let mut number = String::new();
    loop {
        line_no += 1;
        let read = reader.read_record(&mut record);
        let fields = match read {
            Ok(0) => break,
            Ok(_) => fields(&header, &record, &mut number),
            Err(e) => Err(format!("{e}")),
        };
        let row = match fields {
            Ok(row) => row,
            Err(e) => {
                let text = line_text(path, line_no)
                    .map(|l| format!("\n  {}", quote(&l)))
                    .unwrap_or_default();
                return Err(format!("{shown}:{line_no}: invalid VCF record: {e}{text}").into());
            }
        };
        let chrom = record.reference_sequence_name();
        if chrom != last_chrom {
            last_chrom.clear();
            last_chrom.push_str(chrom);
            if known.insert(chrom.to_string()) {
                contigs.push(chrom.to_string());
            }
        }
        // noodles gives "" for a missing ("."): ID becomes null, ALT and FILTER keep the
        // text as written.
        let (ids, alts, filters) = (record.ids(), record.alternate_bases(), record.filters());
        columns.chrom.append_value(chrom);
        columns.pos.append_value(row.pos);
        columns
            .id
            .append_option(Some(ids.as_ref()).filter(|s| !s.is_empty()));
        columns.ref_bases.append_value(record.reference_bases());
        columns.alt.append_value(or_dot(alts.as_ref()));
        columns.qual.append_option(row.qual);
        columns.filter.append_value(or_dot(filters.as_ref()));
        columns.dp.append_option(row.dp);
        columns.af.append_option(row.af);
        columns.rows += 1;
        if columns.rows == BATCH_ROWS {
            batches.push(columns.finish(&schema)?);
        }
    }
    if columns.rows > 0 {
        batches.push(columns.finish(&schema)?);
    }
    Ok(Read {
        schema,
        batches,
        contigs,
    })
}

/// `s`, or "." where it is empty.
fn or_dot(s: &str) -> &str {
    if s.is_empty() {
        "."
    } else {
        s
    }
}

/// A record's parsed fields (the text fields are taken from the record as they are).
struct Row {
    pos: i64,
    qual: Option<f64>,
    dp: Option<i32>,
    af: Option<f64>,
}

/// Parses what noodles left lazy: POS, QUAL and INFO DP/AF (typed by the header).
fn fields(header: &vcf::Header, record: &vcf::Record, number: &mut String) -> Result<Row, String> {
    let pos = match record.variant_start() {
        // POS 0 is the telomere before the first base (VCF allows it).
        None => 0,
        Some(p) => usize::from(p.map_err(|e| format!("POS: {e}"))?) as i64,
    };
    let qual = record
        .quality_score()
        .transpose()
        .map_err(|e| format!("QUAL: {e}"))?
        .map(|q| widen(q, number));
    let info = record.info();
    let dp = match info
        .get(header, "DP")
        .transpose()
        .map_err(|e| format!("INFO DP: {e}"))?
    {
        None | Some(None) => None,
        Some(Some(InfoValue::Integer(n))) => Some(n),
        Some(Some(other)) => return Err(format!("INFO DP: expected an Integer, got {other:?}")),
    };
    let af = match info
        .get(header, "AF")
        .transpose()
        .map_err(|e| format!("INFO AF: {e}"))?
    {
        None | Some(None) => None,
        Some(Some(InfoValue::Float(x))) => Some(widen(x, number)),
        // Number=A: one per ALT allele; the column keeps the first ALT's (all are checked).
        Some(Some(InfoValue::Array(InfoArray::Float(values)))) => {
            let mut first = None;
            for (i, v) in values.iter().enumerate() {
                let v = v.map_err(|e| format!("INFO AF: {e}"))?;
                if i == 0 {
                    first = v.map(|x| widen(x, number));
                }
            }
            first
        }
        Some(Some(other)) => return Err(format!("INFO AF: expected a Float, got {other:?}")),
    };
    Ok(Row { pos, qual, dp, af })
}

/// An `f32` from the file as the `f64` of its shortest decimal form (the number as
/// written, to `f32`'s precision) rather than the `f32`'s binary value.
fn widen(x: f32, buf: &mut String) -> f64 {
    buf.clear();
    let _ = write!(buf, "{x}");
    buf.parse().unwrap_or(f64::from(x))
}

/// Line `n` (from 1) of the file, for an error message.
fn line_text(path: &Path, n: usize) -> Option<Vec<u8>> {
    let mut reader = vcf::io::reader::Builder::default()
        .build_from_path(path)
        .ok()?
        .into_inner();
    let mut line = Vec::new();
    for _ in 0..n {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Some(line)
}

/// A line for an error message: lossy UTF-8, tabs shown, at most 200 characters.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line).replace('\t', "\\t");
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// An error and its sources, "a: b: c".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------
// SQL.

/// `contigs (chrom, idx)`: the genome order to list chromosomes in.
fn contigs_table(names: &[String]) -> Result<Arc<MemTable>, BoxError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("chrom", DataType::Utf8, false),
        Field::new("idx", DataType::Int32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(names)),
            Arc::new(Int32Array::from_iter_values(0..names.len() as i32)),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// A session with arrow-wgpu on `engine` (and `partitions` target partitions, if given),
/// the tables registered.
fn session(
    engine: Arc<Engine>,
    partitions: Option<usize>,
    variants: &Arc<MemTable>,
    contigs: &Arc<MemTable>,
) -> Result<(SessionContext, PlanNotes), BoxError> {
    let mut config = SessionConfig::new();
    if let Some(p) = partitions {
        config = config.with_target_partitions(p);
    }
    let options = ArrowWgpuOptions::new(engine);
    let notes = options.notes();
    let state = with_options(
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config),
        options,
    )
    .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table("variants", variants.clone())?;
    ctx.register_table("contigs", contigs.clone())?;
    Ok((ctx, notes))
}

/// Runs `sql`, prints it, its time, its result as a table and what the rule did.
async fn query(
    ctx: &SessionContext,
    notes: &PlanNotes,
    title: &str,
    sql: &str,
) -> Result<Vec<RecordBatch>, BoxError> {
    println!("\n{title}\n{sql}");
    notes.take();
    let start = Instant::now();
    let batches = ctx.sql(sql).await?.collect().await?;
    let took = start.elapsed();
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!("{rows} row(s) in {}", ms(took));
    for note in notes.take() {
        println!("  rule: {note}");
    }
    Ok(batches)
}

/// Column `col` of the one-row answer as a count.
fn scalar_u64(batches: &[RecordBatch], col: usize) -> Result<u64, BoxError> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or("an empty answer")?;
    let column = batch.column(col);
    if let Some(a) = column.as_any().downcast_ref::<Int64Array>() {
        return Ok(a.value(0) as u64);
    }
    if let Some(a) = column.as_any().downcast_ref::<UInt64Array>() {
        return Ok(a.value(0));
    }
    Err(format!("column {col} is {}, not a count", column.data_type()).into())
}

/// Query 1's answer counted directly over the batches.
fn count_in_region(batches: &[RecordBatch], chrom: &str, from: i64, to: i64) -> u64 {
    let mut n = 0;
    for batch in batches {
        let chroms = batch.column(0).as_any().downcast_ref::<StringArray>();
        let pos = batch.column(1).as_any().downcast_ref::<Int64Array>();
        let qual = batch.column(5).as_any().downcast_ref::<Float64Array>();
        let (Some(chroms), Some(pos), Some(qual)) = (chroms, pos, qual) else {
            continue;
        };
        for i in 0..batch.num_rows() {
            if chroms.value(i) == chrom
                && (from..=to).contains(&pos.value(i))
                && qual.is_valid(i)
                && qual.value(i) >= 30.0
            {
                n += 1;
            }
        }
    }
    n
}

/// Whether two answers are the same: every column equal, float columns bit for bit.
fn same_bits(a: &[RecordBatch], b: &[RecordBatch]) -> Result<(), String> {
    let schema = a.first().map(|x| x.schema()).ok_or("no batches")?;
    let a = arrow::compute::concat_batches(&schema, a).map_err(|e| e.to_string())?;
    let b = arrow::compute::concat_batches(&schema, b).map_err(|e| e.to_string())?;
    if a.num_rows() != b.num_rows() {
        return Err(format!("{} rows and {} rows", a.num_rows(), b.num_rows()));
    }
    for (i, field) in schema.fields().iter().enumerate() {
        let (x, y) = (a.column(i), b.column(i));
        let same = match (
            x.as_any().downcast_ref::<Float64Array>(),
            y.as_any().downcast_ref::<Float64Array>(),
        ) {
            (Some(x), Some(y)) => (0..x.len()).all(|r| {
                x.is_valid(r) == y.is_valid(r)
                    && (x.is_null(r) || x.value(r).to_bits() == y.value(r).to_bits())
            }),
            _ => x == y,
        };
        if !same {
            return Err(format!("column {} differs", field.name()));
        }
    }
    Ok(())
}
