//! Where an operation's time went, and which backend ran it.
//!
//! [`crate::Engine::profiled`] collects a [`Profile`] for everything run inside its closure,
//! on the calling thread. GPU phases are timed on the host around a wait for the queue, so
//! upload, kernels and download don't overlap while a profile is being taken. Each GPU step
//! also counts its work ([`Traffic`]): dispatches, the bytes their bindings span, host
//! syncs (the profile's own waits are not counted), buffers, bytes moved each way. The
//! counts are the same on every adapter that chunks the data alike, so they can be checked
//! where the time of a software driver can't be trusted.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

/// A phase of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Copying Arrow buffers into GPU buffers.
    Upload,
    /// GPU kernels, from submission to completion.
    Kernels,
    /// Copying results back and building Arrow arrays.
    Download,
    /// Work on the CPU path.
    Cpu,
}

/// Which backend ran an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RanOn {
    /// The GPU adapter with this name and wgpu backend.
    Gpu(String),
    /// The CPU path.
    Cpu,
}

/// The work a GPU step asked of the device, counted as it was recorded.
///
/// # Example
/// ```
/// use arrow_wgpu::Traffic;
/// let t = Traffic { device_bytes: 3_000, minimal_bytes: 2_000, ..Default::default() };
/// assert_eq!(t.over_minimal(), Some(1.5));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes the buffers bound to each dispatch span, summed over the dispatches: what the
    /// kernels may read and write (a bound on their traffic, from the plan, not a measure).
    pub device_bytes: u64,
    /// The operation's inputs read once and its output written once: what no kernel plan
    /// can go below.
    pub minimal_bytes: u64,
    /// Compute dispatches.
    pub dispatches: u64,
    /// Times the host waited for the device (a download, an explicit wait); the waits a
    /// profile adds to time its phases are not counted.
    pub host_syncs: u64,
    /// Buffers allocated (storage, uniform parameters, staging).
    pub buffers: u64,
    /// Bytes copied from the host into device buffers.
    pub uploaded_bytes: u64,
    /// Bytes copied back to the host.
    pub downloaded_bytes: u64,
}

impl Traffic {
    /// `device_bytes / minimal_bytes`, where the minimum is known.
    pub fn over_minimal(&self) -> Option<f64> {
        (self.minimal_bytes > 0).then(|| self.device_bytes as f64 / self.minimal_bytes as f64)
    }

    fn add(&mut self, other: &Traffic) {
        self.device_bytes += other.device_bytes;
        self.minimal_bytes += other.minimal_bytes;
        self.dispatches += other.dispatches;
        self.host_syncs += other.host_syncs;
        self.buffers += other.buffers;
        self.uploaded_bytes += other.uploaded_bytes;
        self.downloaded_bytes += other.downloaded_bytes;
    }
}

/// One operation's record.
#[derive(Debug, Clone)]
pub struct Step {
    /// The operation (`filter`, `evaluate`, `upload`, ...).
    pub operation: &'static str,
    /// Where it ran.
    pub ran_on: RanOn,
    /// Why it ran on the CPU in `Backend::Auto`, when it fell back.
    pub fallback: Option<String>,
    /// Time per phase, in the order they happened.
    pub phases: Vec<(Phase, Duration)>,
    /// What it asked of the GPU (all zero on the CPU).
    pub traffic: Traffic,
}

impl Step {
    /// Total time spent in `phase`.
    pub fn time_in(&self, phase: Phase) -> Duration {
        self.phases
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, d)| *d)
            .sum()
    }
}

/// The steps of everything run inside [`crate::Engine::profiled`].
///
/// # Example
/// ```
/// use arrow_wgpu::{col, lit, Backend, Engine, Phase};
/// # use std::sync::Arc;
/// # use arrow::array::Int32Array;
/// # use arrow::record_batch::RecordBatch;
/// let batch = RecordBatch::try_from_iter([("a", Arc::new(Int32Array::from(vec![1, 5, 9])) as _)]).unwrap();
/// let engine = Engine::new(Backend::Cpu).unwrap();
/// let (out, profile) = engine.profiled(|e| e.filter(&batch, &col("a").gt(lit(2)))).unwrap();
/// assert_eq!(out.num_rows(), 2);
/// assert_eq!(profile.steps[0].operation, "filter");
/// println!("{profile}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// One entry per operation, in order.
    pub steps: Vec<Step>,
}

impl Profile {
    /// Total time in `phase` over all steps.
    pub fn time_in(&self, phase: Phase) -> Duration {
        self.steps.iter().map(|s| s.time_in(phase)).sum()
    }

    /// The steps' traffic, summed.
    pub fn traffic(&self) -> Traffic {
        let mut out = Traffic::default();
        for s in &self.steps {
            out.add(&s.traffic);
        }
        out
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            let on = match &s.ran_on {
                RanOn::Gpu(name) => format!("GPU ({name})"),
                RanOn::Cpu => "CPU".to_string(),
            };
            write!(f, "{:<10} on {on}:", s.operation)?;
            for phase in [Phase::Upload, Phase::Kernels, Phase::Download, Phase::Cpu] {
                let d = s.time_in(phase);
                if !d.is_zero() {
                    write!(f, " {phase:?} {:.3} ms", d.as_secs_f64() * 1e3)?;
                }
            }
            let t = &s.traffic;
            if t.dispatches > 0 || t.host_syncs > 0 {
                write!(
                    f,
                    " | {} dispatches, {} device bytes",
                    t.dispatches, t.device_bytes
                )?;
                if let Some(r) = t.over_minimal() {
                    write!(f, " ({r:.2}x minimal)")?;
                }
                write!(f, ", {} host syncs, {} buffers", t.host_syncs, t.buffers)?;
            }
            if let Some(why) = &s.fallback {
                write!(f, " (fell back: {why})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Profile>> = const { RefCell::new(None) };
}

pub(crate) fn start() -> Option<Profile> {
    CURRENT.with(|c| c.borrow_mut().replace(Profile::default()))
}

pub(crate) fn finish(previous: Option<Profile>) -> Profile {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), previous).unwrap_or_default())
}

/// Whether a profile is being taken on this thread (GPU code then waits between phases).
pub(crate) fn active() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

pub(crate) fn begin_step(operation: &'static str, ran_on: RanOn, fallback: Option<String>) {
    begin_step_with(operation, ran_on, fallback, Vec::new())
}

pub(crate) fn begin_step_with(
    operation: &'static str,
    ran_on: RanOn,
    fallback: Option<String>,
    phases: Vec<(Phase, Duration)>,
) {
    CURRENT.with(|c| {
        if let Some(p) = c.borrow_mut().as_mut() {
            p.steps.push(Step {
                operation,
                ran_on,
                fallback,
                phases,
                traffic: Traffic::default(),
            });
        }
    });
}

/// Drops the current step (a GPU attempt that is about to fall back to the CPU); its
/// phases go to the step that replaces it.
pub(crate) fn discard_step() -> Vec<(Phase, Duration)> {
    CURRENT.with(|c| {
        c.borrow_mut()
            .as_mut()
            .and_then(|p| p.steps.pop())
            .map(|s| s.phases)
            .unwrap_or_default()
    })
}

/// Adds `elapsed` since `since` to the current step's `phase`; returns now.
pub(crate) fn record(phase: Phase, since: Instant) -> Instant {
    let now = Instant::now();
    CURRENT.with(|c| {
        if let Some(step) = c.borrow_mut().as_mut().and_then(|p| p.steps.last_mut()) {
            step.phases.push((phase, now - since));
        }
    });
    now
}

/// Adds to the current step's [`Traffic`] (nothing when no profile is being taken).
pub(crate) fn count(f: impl FnOnce(&mut Traffic)) {
    CURRENT.with(|c| {
        if let Some(step) = c.borrow_mut().as_mut().and_then(|p| p.steps.last_mut()) {
            f(&mut step.traffic);
        }
    });
}

/// Adds `bytes` to the current step's minimal traffic ([`Traffic::minimal_bytes`]).
pub(crate) fn minimal(bytes: u64) {
    count(|t| t.minimal_bytes += bytes);
}

/// The bytes of `columns` of `batch` (values, offsets and validity of the rows it holds).
pub(crate) fn columns_bytes(batch: &arrow::record_batch::RecordBatch, columns: &[usize]) -> u64 {
    columns
        .iter()
        .map(|&i| {
            batch
                .column(i)
                .to_data()
                .get_slice_memory_size()
                .unwrap_or(0) as u64
        })
        .sum()
}

/// The bytes of every column of `batch`.
pub(crate) fn batch_bytes(batch: &arrow::record_batch::RecordBatch) -> u64 {
    columns_bytes(batch, &(0..batch.num_columns()).collect::<Vec<_>>())
}
