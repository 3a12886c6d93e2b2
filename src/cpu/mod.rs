//! The CPU path: every operation on arrow-rs's own kernels. It gives the answers the GPU
//! path is held to, and runs wherever there is no GPU.

pub(crate) mod distinct;
pub(crate) mod filter;
pub(crate) mod group_by;
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

    /// How many contiguous pieces `rows` rows are cut into: one per thread, each of at
    /// least `min_rows` rows (always at least one piece).
    pub(crate) fn pieces(&self, rows: usize) -> usize {
        self.threads.min(rows / self.min_rows).max(1)
    }
}
