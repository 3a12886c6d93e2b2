//! The query's output: a Parquet, IPC or CSV file by the extension of `--out`, or a table
//! on stdout.
//!
//! A file is written under a temporary name beside the target and renamed over it only when
//! complete, so a run that fails (or is killed) never leaves a half-written file where the
//! output should be; the temporary file is removed on failure.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{FileWriter, StreamWriter};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::read::FileFormat;

/// Rows the table shows when no `--limit` is given.
pub const TABLE_ROWS: usize = 100;

enum Writer {
    Parquet(ArrowWriter<File>),
    Ipc(FileWriter<BufWriter<File>>),
    IpcStream(StreamWriter<BufWriter<File>>),
    Csv(CsvWriter),
}

/// CSV as DuckDB and Polars write and read it: a header line always (a result of no rows
/// too), NULL as an empty field, an empty string as a quoted empty field (`""`), a field
/// quoted where it holds the delimiter, a quote or a line break (quotes doubled). arrow's
/// CSV writer writes NULL and `''` the same way and no header for no rows.
struct CsvWriter {
    out: BufWriter<File>,
    delimiter: u8,
    schema: SchemaRef,
    header_written: bool,
}

impl CsvWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if !self.header_written {
            let names: Vec<String> = self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    self.out.write_all(&[self.delimiter])?;
                }
                self.field(name.as_bytes(), true)?;
            }
            self.out.write_all(b"\n")?;
            self.header_written = true;
        }
        let options = arrow::util::display::FormatOptions::default().with_null("");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            for (i, (column, formatter)) in batch.columns().iter().zip(&formatters).enumerate() {
                if i > 0 {
                    self.out.write_all(&[self.delimiter])?;
                }
                if column.is_null(row) {
                    continue;
                }
                text.clear();
                std::fmt::Write::write_fmt(&mut text, format_args!("{}", formatter.value(row)))?;
                self.field(text.as_bytes(), true)?;
            }
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes one non-null field, quoted where needed (`quote_empty`: an empty value is
    /// written `""`, so it reads back as an empty string, not NULL).
    fn field(&mut self, value: &[u8], quote_empty: bool) -> Result<()> {
        let needs = (quote_empty && value.is_empty())
            || value
                .iter()
                .any(|b| *b == self.delimiter || matches!(b, b'"' | b'\n' | b'\r'));
        if !needs {
            self.out.write_all(value)?;
            return Ok(());
        }
        self.out.write_all(b"\"")?;
        for part in value.split_inclusive(|b| *b == b'"') {
            self.out.write_all(part)?;
            if part.last() == Some(&b'"') {
                self.out.write_all(b"\"")?;
            }
        }
        self.out.write_all(b"\"")?;
        Ok(())
    }
}

/// A file being written under a temporary name.
pub struct FileSink {
    target: PathBuf,
    temporary: PathBuf,
    writer: Option<Writer>,
    /// Renamed into place: nothing to remove.
    done: bool,
    pub rows: u64,
}

/// Temporary files being written now, removed by [`remove_temporaries`] when the process
/// is interrupted (SIGINT, SIGTERM) before they are renamed into place.
static TEMPORARIES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every temporary output file still being written: called from the handler of
/// SIGINT and SIGTERM, so an interrupted run leaves nothing behind.
pub fn remove_temporaries() {
    if let Ok(files) = TEMPORARIES.lock() {
        for f in files.iter() {
            let _ = fs::remove_file(f);
        }
    }
}

fn forget_temporary(path: &Path) {
    if let Ok(mut files) = TEMPORARIES.lock() {
        files.retain(|f| f != path);
    }
}

impl FileSink {
    /// Creates the temporary file for `target` (an unwritable place fails here, before any
    /// input is read) and a writer of the format the extension names.
    pub fn create(target: &Path, schema: &SchemaRef) -> Result<FileSink> {
        let format = FileFormat::for_output(target)?;
        if target.is_dir() {
            anyhow::bail!("--out {}: is a directory; name a file", target.display());
        }
        let name = target
            .file_name()
            .with_context(|| format!("--out {}: not a file name", target.display()))?;
        let temporary = target.with_file_name(format!(
            ".{}.arrow-wgpu-{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        if let Ok(mut files) = TEMPORARIES.lock() {
            files.push(temporary.clone());
        }
        let mut sink = FileSink {
            target: target.to_path_buf(),
            temporary: temporary.clone(),
            writer: None,
            done: false,
            rows: 0,
        };
        let file = File::create(&temporary)
            .with_context(|| format!("can't write {}", target.display()))?;
        let writer = (|| -> Result<Writer> {
            Ok(match format {
                FileFormat::Parquet => {
                    // Coerced to Parquet's own types where arrow's differ (Date64 to DATE,
                    // not a bare INT64 that only arrow readers know for a date).
                    let props = WriterProperties::builder()
                        .set_compression(Compression::SNAPPY)
                        .set_coerce_types(true)
                        .build();
                    Writer::Parquet(ArrowWriter::try_new(file, schema.clone(), Some(props))?)
                }
                FileFormat::IpcFile => {
                    Writer::Ipc(FileWriter::try_new(BufWriter::new(file), schema)?)
                }
                FileFormat::IpcStream => {
                    Writer::IpcStream(StreamWriter::try_new(BufWriter::new(file), schema)?)
                }
                FileFormat::Csv { delimiter } => Writer::Csv(CsvWriter {
                    out: BufWriter::new(file),
                    delimiter,
                    schema: schema.clone(),
                    header_written: false,
                }),
            })
        })()
        .with_context(|| format!("writing {}", target.display()))?;
        sink.writer = Some(writer);
        Ok(sink)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let writer = self.writer.as_mut().expect("open until finish");
        match writer {
            Writer::Parquet(w) => w.write(batch)?,
            Writer::Ipc(w) => w.write(batch)?,
            Writer::IpcStream(w) => w.write(batch)?,
            Writer::Csv(w) => w.write(batch)?,
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Finishes the file and renames it into place.
    pub fn finish(mut self) -> Result<()> {
        let context = format!("writing {}", self.target.display());
        let file = match self.writer.take().expect("open until finish") {
            Writer::Parquet(w) => w.into_inner().context(context.clone())?,
            Writer::Ipc(mut w) => {
                w.finish().context(context.clone())?;
                w.into_inner()?.into_inner()?
            }
            Writer::IpcStream(mut w) => {
                w.finish().context(context.clone())?;
                w.into_inner()?.into_inner()?
            }
            Writer::Csv(mut w) => {
                // The header, for a result of no rows.
                w.write(&RecordBatch::new_empty(w.schema.clone()))
                    .context(context.clone())?;
                w.out.flush().context(context.clone())?;
                w.out.into_inner()?
            }
        };
        file.sync_all().context(context.clone())?;
        fs::rename(&self.temporary, &self.target).context(context)?;
        self.done = true;
        forget_temporary(&self.temporary);
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Not renamed into place: a failed run (while writing, finishing or renaming).
        // Leave nothing behind.
        if !self.done {
            self.writer = None;
            let _ = fs::remove_file(&self.temporary);
            forget_temporary(&self.temporary);
        }
    }
}

/// Batches kept for printing as a table: the first `max_rows`, and a count of the rest.
pub struct TableSink {
    batches: Vec<RecordBatch>,
    kept: usize,
    max_rows: usize,
    pub rows: u64,
}

impl TableSink {
    pub fn new(max_rows: usize) -> TableSink {
        TableSink {
            batches: Vec::new(),
            kept: 0,
            max_rows,
            rows: 0,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        let take = batch.num_rows().min(self.max_rows - self.kept);
        if take > 0 {
            self.batches.push(batch.slice(0, take));
            self.kept += take;
        }
    }

    pub fn finish(self, schema: &SchemaRef) -> Result<()> {
        let batches = if self.batches.is_empty() {
            vec![RecordBatch::new_empty(schema.clone())]
        } else {
            self.batches
        };
        let table = arrow::util::pretty::pretty_format_batches(&batches)?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{table}")?;
        stdout.flush()?;
        if self.rows as usize > self.kept {
            eprintln!(
                "{} rows; the first {} shown (--limit N shows N, --out FILE writes all)",
                self.rows, self.kept
            );
        } else {
            eprintln!("{} rows", self.rows);
        }
        Ok(())
    }
}

/// Where the result goes.
pub enum Sink {
    File(Box<FileSink>),
    Table(TableSink),
}

impl Sink {
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Sink::File(f) => f.write(batch),
            Sink::Table(t) => {
                t.write(batch);
                Ok(())
            }
        }
    }

    pub fn finish(self, schema: &SchemaRef) -> Result<()> {
        match self {
            Sink::File(f) => f.finish(),
            Sink::Table(t) => t.finish(schema),
        }
    }
}
