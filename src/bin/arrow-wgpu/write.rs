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
    Csv(arrow::csv::Writer<BufWriter<File>>),
}

/// A file being written under a temporary name.
pub struct FileSink {
    target: PathBuf,
    temporary: PathBuf,
    writer: Option<Writer>,
    pub rows: u64,
}

impl FileSink {
    /// Creates the temporary file for `target` (an unwritable place fails here, before any
    /// input is read) and a writer of the format the extension names.
    pub fn create(target: &Path, schema: &SchemaRef) -> Result<FileSink> {
        let format = FileFormat::for_output(target)?;
        let name = target
            .file_name()
            .with_context(|| format!("--out {}: not a file name", target.display()))?;
        let temporary = target.with_file_name(format!(
            ".{}.arrow-wgpu-{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = File::create(&temporary)
            .with_context(|| format!("can't write {}", target.display()))?;
        let mut sink = FileSink {
            target: target.to_path_buf(),
            temporary,
            writer: None,
            rows: 0,
        };
        let writer = (|| -> Result<Writer> {
            Ok(match format {
                FileFormat::Parquet => {
                    let props = WriterProperties::builder()
                        .set_compression(Compression::SNAPPY)
                        .build();
                    Writer::Parquet(ArrowWriter::try_new(file, schema.clone(), Some(props))?)
                }
                FileFormat::IpcFile => {
                    Writer::Ipc(FileWriter::try_new(BufWriter::new(file), schema)?)
                }
                FileFormat::IpcStream => {
                    Writer::IpcStream(StreamWriter::try_new(BufWriter::new(file), schema)?)
                }
                FileFormat::Csv { delimiter } => Writer::Csv(
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .with_delimiter(delimiter)
                        .build(BufWriter::new(file)),
                ),
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
            Writer::Csv(w) => {
                let mut out = w.into_inner();
                out.flush().context(context.clone())?;
                out.into_inner()?
            }
        };
        file.sync_all().context(context.clone())?;
        fs::rename(&self.temporary, &self.target).context(context)?;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Not finished: a failed run. Leave nothing behind.
        if self.writer.is_some() {
            self.writer = None;
            let _ = fs::remove_file(&self.temporary);
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
