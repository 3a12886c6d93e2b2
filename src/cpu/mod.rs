//! The CPU path: every operation on arrow-rs's own kernels. It gives the answers the GPU
//! path is held to, and runs wherever there is no GPU.

use crate::error::Result;

pub(crate) mod distinct;
pub(crate) mod filter;
pub(crate) mod group_by;
pub(crate) mod groups;
pub(crate) mod keys;
pub(crate) mod sort;

/// How many threads a CPU operation may use, and the fewest rows worth a thread of its
/// own (below it, spawning costs more than it saves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Threads {
    pub(crate) threads: usize,
    pub(crate) min_rows: usize,
}

impl Threads {
    /// The fewest rows per thread by default.
    pub(crate) const MIN_ROWS: usize = 1 << 16;

    /// One thread.
    pub(crate) const ONE: Threads = Threads {
        threads: 1,
        min_rows: Threads::MIN_ROWS,
    };

    /// `threads` (all the OS offers when `None`), at least `min_rows` each.
    pub(crate) fn new(threads: Option<usize>, min_rows: Option<usize>) -> Threads {
        let threads =
            threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Threads {
            threads: threads.max(1),
            min_rows: min_rows.unwrap_or(Threads::MIN_ROWS).max(1),
        }
    }

    /// The rows a thread groups at a time (four times the fewest rows a thread is given:
    /// 262,144 by default): small enough that each step's buffers are reused rather than
    /// allocated afresh.
    pub(crate) fn chunk_rows(&self) -> usize {
        4 * self.min_rows
    }

    /// How many contiguous pieces `rows` rows are cut into: one per thread, each of at
    /// least `min_rows` rows (always at least one piece).
    pub(crate) fn pieces(&self, rows: usize) -> usize {
        self.threads.min(rows / self.min_rows).max(1)
    }

    /// Runs `f(start, len)` on each of [`Threads::pieces`] contiguous, nearly equal row
    /// ranges of `rows`, each on a thread of its own (on the calling thread when there is
    /// one piece), and returns the results in row order; an error is the first piece's
    /// that has one, and a panic in a piece is raised here.
    pub(crate) fn map_pieces<T: Send>(
        &self,
        rows: usize,
        f: impl Fn(usize, usize) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        Self::map_ranges(rows, self.pieces(rows), f)
    }

    /// Runs `f(start, len)` on each of `pieces` (at least one) contiguous, nearly equal
    /// ranges of `0..total` as [`Threads::map_pieces`] does.
    pub(crate) fn map_ranges<T: Send>(
        total: usize,
        pieces: usize,
        f: impl Fn(usize, usize) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let (rows, pieces) = (total, pieces.clamp(1, total.max(1)));
        if pieces == 1 {
            return Ok(vec![f(0, rows)?]);
        }
        let bound = |i: usize| i * rows / pieces;
        let f = &f;
        let parts: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..pieces)
                .map(|i| s.spawn(move || f(bound(i), bound(i + 1) - bound(i))))
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        parts
            .into_iter()
            .map(|part| part.unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    }
}
