//! # arrow-wgpu
//!
//! Arrow columns on the GPU: record batches are uploaded into wgpu buffers and WGSL compute
//! shaders evaluate predicates, compact the kept rows and sort, with a CPU path (arrow-rs's own
//! kernels) that gives the same answer, bit for bit, on any machine.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, UInt8Array};
//! use arrow::record_batch::RecordBatch;
//! use arrow_wgpu::{col, lit, Backend, Engine};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("qty", Arc::new(Int64Array::from(vec![5, 40, 17, 3])) as _),
//!     ("flag", Arc::new(UInt8Array::from(vec![1, 0, 1, 1])) as _),
//! ]).unwrap();
//! let predicate = col("qty").between(lit(4), lit(20)).and(col("flag").eq(lit(1)));
//!
//! let cpu = Engine::new(Backend::Cpu).unwrap().filter(&batch, &predicate).unwrap();
//! let auto = Engine::new(Backend::Auto).unwrap().filter(&batch, &predicate).unwrap();
//! assert_eq!(cpu, auto); // the GPU, where there is one, gives the CPU's answer
//! assert_eq!(cpu.num_rows(), 2);
//! ```
//!
//! ## Backends
//! [`Backend::Auto`] uses the best adapter and falls back to the CPU (logged, and shown in
//! [`Profile`]) where there is none or it can't run an operation; [`Backend::Gpu`] errors
//! instead; [`Backend::Cpu`] is the CPU path. `ARROW_WGPU_BACKEND` picks one for
//! [`Engine::from_env`]; wgpu's `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` pick the adapter.
//!
//! ## Exactness
//! Comparisons follow arrow-rs's `cmp` kernels (floats in IEEE total order: `NaN == NaN`,
//! `-0.0 < 0.0`). Integer `+ - *` wrap; integer `/` by zero is an error, as arrow's `div`.
//! Float `+ - * /` and casts to floats run on the GPU in software IEEE 754 (WGSL's native
//! floats may flush subnormals and divide within 2.5 ulp), so they give the CPU's bits; a NaN
//! computed by an expression is the canonical positive NaN on both paths (see [`ArithOp`]).
//! Sort keys order as arrow's row format: nulls first or last per key, floats in total
//! order; the sort is stable on both paths (see [`Engine::sort_to_indices`]).
//!
//! ## Strings
//! `Utf8`, `LargeUtf8` and `Utf8View` columns go to the GPU as offsets and bytes per chunk
//! (strings of any length; one longer than a storage binding runs on the CPU): `=`, `!=`
//! and `IN` against string literals (`lit("chr1")`) or other string columns, group-by and
//! distinct keys (equal exactly when their bytes are, all nulls one key), and string
//! columns carried through filter, distinct and sort. `<`/`>` on strings and string sort
//! keys run on the CPU.
//!
//! ## When the GPU wins
//! Uploading costs a pass over PCIe; a one-off filter on data just read is usually faster
//! on the CPU. Keep batches resident ([`Engine::upload`], [`GpuBatch`]) and chain
//! operations there. On a software driver (llvmpipe) the "GPU" is an emulation on the CPU.

#![warn(missing_docs)]

mod aggregate;
mod cpu;
pub mod distinct;
mod engine;
mod error;
pub mod exact;
mod expr;
mod gpu;
pub mod group_by;
mod keys;
mod plan;
mod profile;
mod sort;
pub mod tpch;
pub mod window;

pub use aggregate::AggFunc;
/// Arrow's sort options (descending, nulls first), re-exported for [`SortKey`].
pub use arrow::compute::SortOptions;
pub use distinct::Keep;
pub use engine::{Backend, Engine, EngineOptions, BACKEND_ENV};
pub use error::{Error, Result};
pub use expr::{col, lit, ArithOp, CmpOp, Expr, ScalarValue};
pub use gpu::column::{GpuBatch, GpuColumn};
pub use gpu::AdapterSummary;
pub use group_by::{Agg, GroupByAccumulator, GroupByOptions};
pub use profile::{Phase, Profile, RanOn, Step, Traffic};
pub use sort::SortKey;
pub use wgpu;
pub use window::{Watermark, Window, WindowAggregator, WindowOptions, WindowStats};

/// Asks the CPU to bring `value`'s cache line in ahead of its use (nothing where the
/// target has no prefetch instruction): a random access into a table bigger than the
/// caches is a miss, and requests made a few rows ahead overlap.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_at(value as *const T)
}

/// [`prefetch`] of an address that need not be borrowable now (an element of a slice
/// that a closure holds mutably).
#[inline(always)]
pub(crate) fn prefetch_at<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// `f(i)` for every `i < len`, in order, computed in up to `threads` contiguous ranges,
/// each on a thread of its own (below 2^16 items a range, on the calling thread alone): a
/// gather of millions of values writes, and faults in, its pages on every core rather than
/// one. A panic in `f` is raised here.
pub(crate) fn collect_on_threads<T: Send>(
    len: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    const MIN_ITEMS: usize = 1 << 16;
    let pieces = threads.min(len / MIN_ITEMS).max(1);
    if pieces == 1 {
        return (0..len).map(f).collect();
    }
    let per = len.div_ceil(pieces);
    let mut out: Vec<T> = Vec::with_capacity(len);
    let f = &f;
    std::thread::scope(|s| {
        for (k, piece) in out.spare_capacity_mut()[..len].chunks_mut(per).enumerate() {
            s.spawn(move || {
                for (j, slot) in piece.iter_mut().enumerate() {
                    slot.write(f(k * per + j));
                }
            });
        }
    });
    // SAFETY: the pieces cover `0..len` of the capacity, and each thread wrote every slot
    // of its piece before the scope ended; had one panicked, the scope would have raised
    // it above, before this point (the values written are then leaked, never read).
    unsafe { out.set_len(len) };
    out
}

/// Copies `src` to `dst` in contiguous pieces of at least 4 MiB, one a thread, up to the
/// cores the OS reports: a download or upload of gigabytes is mostly page faults and
/// copying, which then run on every core rather than one (measured at about 1 GB/s on
/// one). It only writes `dst`, so it serves write-only (write-combined) mapped memory too.
///
/// # Safety
/// `dst` is valid for writes of `src.len()` bytes, does not overlap `src`, and nothing
/// else reads or writes those bytes until this returns.
pub(crate) unsafe fn copy_on_threads(dst: *mut u8, src: &[u8]) {
    const MIN_PIECE: usize = 4 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = threads.min(src.len() / MIN_PIECE).max(1);
    if pieces == 1 {
        // SAFETY: as the caller promises.
        return unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }
    let per = src.len().div_ceil(pieces);
    let at = dst as usize;
    std::thread::scope(|s| {
        for (k, from) in src.chunks(per).enumerate() {
            s.spawn(move || {
                // SAFETY: the pieces are disjoint ranges of the `src.len()` bytes the
                // caller gave, which outlive this scope.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        from.as_ptr(),
                        (at as *mut u8).add(k * per),
                        from.len(),
                    )
                }
            });
        }
    });
}

/// `src` as a new `Vec`, copied by [`copy_on_threads`] (its pages, zero until written,
/// are faulted in by the threads that write them).
pub(crate) fn to_vec_on_threads(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; src.len()];
    // SAFETY: `out` holds `src.len()` bytes of its own.
    unsafe { copy_on_threads(out.as_mut_ptr(), src) };
    out
}

#[cfg(test)]
mod tests {
    /// A copy in pieces is the copy, at lengths of one piece, several, and pieces of
    /// unequal length.
    #[test]
    fn copies_on_threads_are_the_copy() {
        for len in [0usize, 7, 4 << 20, (9 << 20) + 13, 33 << 20] {
            let src: Vec<u8> = (0..len).map(|i| (i * 31 + i / 4099) as u8).collect();
            assert_eq!(super::to_vec_on_threads(&src), src, "{len}");
        }
    }

    /// Every item in order, at lengths where the work is one range, two, and ranges of
    /// unequal length.
    #[test]
    fn collect_on_threads_keeps_order() {
        for (len, threads) in [
            (0, 2),
            (5, 2),
            (1 << 17, 2),
            ((1 << 17) + 3, 2),
            (300_001, 4),
        ] {
            let got = super::collect_on_threads(len, threads, |i| i as u64 * 3 + 1);
            let want: Vec<u64> = (0..len as u64).map(|i| i * 3 + 1).collect();
            assert_eq!(got, want, "{len} {threads}");
        }
    }
}
