//! File formats: an input's told by its first bytes (else its extension), an output's by its
//! extension; and the panic hook that keeps a reader's panic inside a query quiet (the query
//! reports it as an error).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Result};

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
    pub fn sniff(path: &Path, file: &mut File) -> Result<FileFormat> {
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

/// Installs a panic hook that is quiet while a query runs (a panic there, such as arrow's
/// readers meeting some corrupt files, becomes an error that says so) and as before for
/// everything else.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET_PANICS.load(std::sync::atomic::Ordering::Relaxed) {
            default(info);
        }
    }));
}

/// Set while `arrow-wgpu sql` or `query` runs a query: a panic on one of DataFusion's threads (a
/// reader meeting a corrupt file) is caught there and reported as an error, so the hook
/// stays quiet.
pub static QUIET_PANICS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
