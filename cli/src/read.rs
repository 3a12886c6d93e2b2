//! Input files: Parquet, Arrow IPC (file and stream) and CSV, read as a stream of record
//! batches with the arrow and parquet crates.
//!
//! Every file is opened (and its schema read) before any data is, so a missing file, a
//! corrupt footer or a schema that differs between files fails before any output exists.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::csv::reader::Format as CsvFormat;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Rows read to infer a CSV file's column types.
const CSV_INFER_ROWS: usize = 10_000;

/// A file format, told by the file's first bytes or its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    IpcFile,
    IpcStream,
    Csv { delimiter: u8 },
}

impl FileFormat {
    /// The format for an output path, by its extension.
    pub fn for_output(path: &Path) -> Result<FileFormat> {
        Ok(match extension(path).as_deref() {
            Some("parquet" | "pq") => FileFormat::Parquet,
            Some("arrow" | "feather" | "ipc") => FileFormat::IpcFile,
            Some("arrows") => FileFormat::IpcStream,
            Some("csv") => FileFormat::Csv { delimiter: b',' },
            Some("tsv") => FileFormat::Csv { delimiter: b'\t' },
            _ => bail!(
                "--out {}: unknown extension (use .parquet, .arrow, .feather, .ipc, .arrows, .csv or .tsv)",
                path.display()
            ),
        })
    }

    /// The format of an input file: by magic bytes (Parquet's `PAR1`, IPC's `ARROW1` or a
    /// stream's continuation marker), else `.tsv` or CSV.
    fn sniff(path: &Path, file: &mut File) -> Result<FileFormat> {
        let mut head = [0u8; 8];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        file.seek(SeekFrom::Start(0))?;
        let head = &head[..n];
        let ext = extension(path);
        Ok(if head.starts_with(b"PAR1") {
            FileFormat::Parquet
        } else if head.starts_with(b"ARROW1") {
            FileFormat::IpcFile
        } else if head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
            FileFormat::IpcStream
        } else {
            match ext.as_deref() {
                Some("parquet" | "pq") => FileFormat::Parquet,
                Some("arrow" | "feather" | "ipc") => FileFormat::IpcFile,
                Some("arrows") => FileFormat::IpcStream,
                Some("tsv") => FileFormat::Csv { delimiter: b'\t' },
                _ => FileFormat::Csv { delimiter: b',' },
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            FileFormat::Parquet => "Parquet",
            FileFormat::IpcFile => "Arrow IPC file",
            FileFormat::IpcStream => "Arrow IPC stream",
            FileFormat::Csv { .. } => "CSV",
        }
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// One opened input file.
struct Opened {
    path: PathBuf,
    batches: BatchIter,
}

/// The input files, opened, with their one schema; an iterator over all their batches in
/// order.
pub struct Input {
    schema: SchemaRef,
    files: std::vec::IntoIter<Opened>,
    current: Option<Opened>,
    /// Total rows when every file's metadata says (Parquet, IPC files), for the progress bar.
    pub total_rows: Option<u64>,
}

impl Input {
    /// Opens every file and checks that they share one schema.
    pub fn open(paths: &[PathBuf], batch_rows: usize) -> Result<Input> {
        let mut opened = Vec::with_capacity(paths.len());
        let mut schema: Option<(SchemaRef, &Path)> = None;
        // Columns nullable in any file are nullable in the one schema every batch gets.
        let mut nullable: Vec<bool> = Vec::new();
        let mut total_rows = Some(0u64);
        for path in paths {
            let (file_schema, batches, rows) = open_one(path, batch_rows.max(1))
                .with_context(|| format!("reading {}", path.display()))?;
            match &schema {
                None => schema = Some((file_schema.clone(), path)),
                Some((first, first_path)) => {
                    if !same_columns(first, &file_schema) {
                        bail!(
                            "{} has other columns than {}:\n  {}\n  {}",
                            path.display(),
                            first_path.display(),
                            describe(&file_schema),
                            describe(first)
                        );
                    }
                }
            }
            nullable.resize(file_schema.fields().len(), false);
            for (n, f) in nullable.iter_mut().zip(file_schema.fields()) {
                *n |= f.is_nullable();
            }
            total_rows = total_rows.zip(rows).map(|(a, b)| a + b);
            opened.push(Opened {
                path: path.clone(),
                batches,
            });
        }
        let (first, _) = schema.context("no input files")?;
        let fields: Vec<Field> = first
            .fields()
            .iter()
            .zip(&nullable)
            .map(|(f, &n)| f.as_ref().clone().with_nullable(n))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, first.metadata().clone()));
        Ok(Input {
            schema,
            files: opened.into_iter(),
            current: None,
            total_rows,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for Input {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if self.current.is_none() {
                self.current = Some(self.files.next()?);
            }
            let current = self.current.as_mut().expect("set above");
            match current.batches.next() {
                None => self.current = None,
                Some(Ok(batch)) => {
                    // Files agree on names and types; every batch gets the one schema
                    // (the first file's metadata, nullable where any file's column is),
                    // so batches from different files concatenate and write as one.
                    let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec());
                    return Some(batch.map_err(Into::into));
                }
                Some(Err(e)) => {
                    let path = current.path.display().to_string();
                    return Some(Err(anyhow::Error::new(e).context(format!("reading {path}"))));
                }
            }
        }
    }
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn describe(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

thread_local! {
    /// Set while a reader runs under [`guarded`]: the panic hook stays quiet then, since the
    /// panic becomes an error that says the file is corrupt.
    static IN_READER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs a panic hook that is quiet for panics [`guarded`] turns into errors (arrow's
/// readers panic on some corrupt files instead of returning an error) and as before for
/// everything else.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let quiet =
            IN_READER.with(|f| f.get()) || QUIET_PANICS.load(std::sync::atomic::Ordering::Relaxed);
        if !quiet {
            default(info);
        }
    }));
}

/// Set while `arrow-wgpu sql` runs a query: a panic on one of DataFusion's threads (a
/// reader meeting a corrupt file) is caught there and reported as an error, so the hook
/// stays quiet.
pub static QUIET_PANICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f`, a call into a file reader; a panic inside it (a corrupt file that arrow's
/// reader does not check) becomes an error instead of aborting the command.
fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, ArrowError> {
    IN_READER.with(|flag| flag.set(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_READER.with(|flag| flag.set(false));
    out.map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the reader failed".into());
        ArrowError::ParseError(format!("the file is corrupt ({why})"))
    })
}

/// A reader whose every batch is read under [`guarded`].
struct Guarded(BatchIter);

impl Iterator for Guarded {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match guarded(|| self.0.next()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }
}

fn open_one(path: &Path, batch_rows: usize) -> Result<(SchemaRef, BatchIter, Option<u64>)> {
    let (schema, batches, rows) =
        guarded(|| open_unguarded(path, batch_rows)).map_err(anyhow::Error::new)??;
    Ok((schema, Box::new(Guarded(batches)), rows))
}

fn open_unguarded(path: &Path, batch_rows: usize) -> Result<(SchemaRef, BatchIter, Option<u64>)> {
    let mut file = File::open(path)?;
    let format = FileFormat::sniff(path, &mut file)?;
    let context = || format!("not a valid {} file", format.name());
    Ok(match format {
        FileFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).with_context(context)?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
            // Never a batch larger than the file: the reader sizes buffers by it.
            let batch_rows = batch_rows.min(rows.max(1).try_into().unwrap_or(usize::MAX));
            let reader = builder
                .with_batch_size(batch_rows)
                .build()
                .with_context(context)?;
            let schema = reader.schema();
            (schema, Box::new(reader), Some(rows))
        }
        FileFormat::IpcFile => {
            let reader = FileReader::try_new(BufReader::new(file), None).with_context(context)?;
            (reader.schema(), Box::new(reader), None)
        }
        FileFormat::IpcStream => {
            let reader = StreamReader::try_new(BufReader::new(file), None).with_context(context)?;
            (reader.schema(), Box::new(reader), None)
        }
        FileFormat::Csv { delimiter } => {
            let format = CsvFormat::default()
                .with_header(true)
                .with_delimiter(delimiter);
            let (schema, _) = format
                .infer_schema(BufReader::new(&mut file), Some(CSV_INFER_ROWS))
                .context("can't read a CSV header and rows")?;
            if schema.fields().is_empty() {
                bail!("empty CSV file (a header row is needed)");
            }
            file.seek(SeekFrom::Start(0))?;
            // A CSV row takes at least a byte a column (its delimiters and newline): no
            // batch holds more rows than the file could, and the reader allocates offsets
            // for a whole batch up front (--batch-rows 2^26 of a 10-column file would be
            // 5 GB for a file of a few bytes).
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            let most_rows = bytes / schema.fields().len() as u64 + 1;
            let batch_rows = batch_rows.min(most_rows.try_into().unwrap_or(usize::MAX));
            let schema = Arc::new(schema);
            let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(format)
                .with_batch_size(batch_rows)
                .build(file)?;
            (schema, Box::new(reader), None)
        }
    })
}
