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

    /// Runs `f(i)` for every item `i < items` on up to `threads` threads and returns the
    /// results in item order; an error is the first item's that has one, and a panic is
    /// raised here. Items of unequal work (a string column beside integer ones) are
    /// shared out as the threads come free, the costliest (by `cost`) first, so that no
    /// thread is left with all the heavy ones.
    pub(crate) fn map_items<T: Send>(
        items: usize,
        threads: usize,
        cost: impl Fn(usize) -> usize,
        f: impl Fn(usize) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let threads = threads.clamp(1, items.max(1));
        if threads == 1 {
            return (0..items).map(f).collect();
        }
        let mut order: Vec<usize> = (0..items).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(cost(i)));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (f, order, next) = (&f, &order, &next);
        let done: Vec<Vec<(usize, Result<T>)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&i) = order.get(k) else { break out };
                            out.push((i, f(i)));
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut results: Vec<Option<Result<T>>> = (0..items).map(|_| None).collect();
        for (i, r) in done.into_iter().flatten() {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.expect("every item ran"))
            .collect()
    }

    /// `f` of each of `columns` (filtering or gathering their rows), on up to `threads`
    /// threads by [`Threads::map_items`], in column order. A column's cost is its bytes,
    /// and for values of varying width a per-row copy (an offset and a short copy) on top.
    pub(crate) fn map_columns(
        columns: &[arrow::array::ArrayRef],
        threads: usize,
        f: impl Fn(&dyn arrow::array::Array) -> Result<arrow::array::ArrayRef> + Sync,
    ) -> Result<Vec<arrow::array::ArrayRef>> {
        use arrow::datatypes::DataType;
        let cost = |c: usize| {
            let column = &columns[c];
            let per_row = match column.data_type() {
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Utf8View
                | DataType::BinaryView => 16,
                _ => 0,
            };
            column.get_buffer_memory_size() + per_row * column.len()
        };
        Self::map_items(columns.len(), threads, cost, |c| f(columns[c].as_ref()))
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

#[cfg(test)]
mod tests {
    use super::Threads;
    use crate::error::Error;

    /// Results come back in item order whatever the threads and costs, and an error is the
    /// first failing item's in that order, not the first to fail in time.
    #[test]
    fn map_items_keeps_item_order() {
        for threads in [1, 2, 3, 8] {
            for items in [0usize, 1, 2, 9, 40] {
                let got =
                    Threads::map_items(items, threads, |i| (i * 7919) % 13, |i| Ok(i * i)).unwrap();
                assert_eq!(got, (0..items).map(|i| i * i).collect::<Vec<_>>());
            }
            // Items 3 and 5 fail; the cheapest-last order runs 5 before 3.
            let err = Threads::map_items(
                9,
                threads,
                |i| i,
                |i| match i {
                    3 | 5 => Err(Error::InvalidExpression(format!("item {i}"))),
                    _ => Ok(i),
                },
            )
            .unwrap_err();
            assert!(err.to_string().contains("item 3"), "{threads}: {err}");
        }
    }
}
