//! Where an operation's time went, and which backend ran it.
//!
//! [`crate::Engine::profiled`] collects a [`Profile`] for everything run inside its closure,
//! on the calling thread. GPU phases are timed on the host around a wait for the queue, so
//! upload, kernels and download don't overlap while a profile is being taken.

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
