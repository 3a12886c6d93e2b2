//! The device work each GPU operation asks for, counted in its profile ([`Traffic`]):
//! dispatches, host syncs, buffers and the bytes the kernels' bindings span against the
//! operation's minimal traffic (inputs read once, output written once). The counts are
//! pinned for a few cases on every adapter, so a change that adds a pass, a sync or a
//! buffer fails here and says so; the time of a software driver can't show that.

use crate::common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, UInt32Array};
use arrow::record_batch::RecordBatch;
use arrow_wgpu::{col, lit, Agg, Engine, Keep, SortKey, Traffic};

/// 1M rows: a u32 key with 1,000 values, an i64 and an f64 column.
fn batch() -> RecordBatch {
    let n = 1 << 20;
    RecordBatch::try_from_iter([
        (
            "k",
            Arc::new(UInt32Array::from_iter_values(
                (0..n).map(|i| ((i as u64 * 7919) % 1000) as u32),
            )) as ArrayRef,
        ),
        (
            "i",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| i as i64 * 3 - 5),
            )),
        ),
        (
            "f",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.25),
            )),
        ),
    ])
    .unwrap()
}

/// The traffic of `op` on a batch already on the device.
fn resident(engine: &Engine, batch: &RecordBatch, op: &str) -> Traffic {
    let gpu = engine.upload(batch).unwrap();
    let (_, profile) = engine
        .profiled(|_| match op {
            "filter" => gpu.filter(&col("i").gt(lit(1_000_000i64))).map(|_| ()),
            "sort" => gpu.sort(&[SortKey::asc("k")], None).map(|_| ()),
            // A top-k and the full sort it stands in for: the select reads the key's words
            // level by level and sorts only the rows that can be among the first ten.
            "sort i desc" => gpu.sort(&[SortKey::desc("i")], None).map(|_| ()),
            "top 10 by i desc" => gpu.sort(&[SortKey::desc("i")], Some(10)).map(|_| ()),
            "distinct" => gpu.distinct(&["k"], Keep::First).map(|_| ()),
            "group_by" => gpu
                .group_by(&["k"], &[Agg::count_star(), Agg::sum(col("i"))])
                .map(|_| ()),
            _ => unreachable!(),
        })
        .unwrap();
    assert_eq!(profile.steps.len(), 1, "{op}: {profile}");
    profile.traffic()
}

/// What each case asks of the device today, the same on llvmpipe's Vulkan and GL (one
/// chunk: 1M rows fit both bindings): (dispatches, host syncs, buffers, device bytes). An
/// improvement changes these on purpose; anything else that changes them is a regression.
/// The cases run in this order on one engine, which keeps the staging buffers of its
/// reads for the next ones: a read that fits one kept allocates none (the sort, top-k and
/// distinct reuse the filter's; the group-by's table needs a larger one).
const PINNED: [(&str, u64, u64, u64, u64); 6] = [
    ("filter", 7, 1, 14, 45_763_776),
    ("sort", 14, 1, 24, 121_641_312),
    ("sort i desc", 46, 1, 50, 327_181_472),
    ("top 10 by i desc", 16, 3, 34, 106_583_064),
    ("distinct", 9, 1, 21, 46_961_536),
    ("group_by", 3, 1, 8, 17_760_336),
];

#[test]
fn resident_operations_ask_for_the_pinned_work() {
    let batch = batch();
    // Every case is run before any is judged, so one run shows every count that moved.
    let mut moved = Vec::new();
    for (name, engine) in common::gpu_engines(None) {
        for (op, dispatches, syncs, buffers, device_bytes) in PINNED {
            let t = resident(&engine, &batch, op);
            let got = (t.dispatches, t.host_syncs, t.buffers, t.device_bytes);
            if got != (dispatches, syncs, buffers, device_bytes) {
                moved.push(format!(
                    "{name} {op}: (dispatches, host syncs, buffers, device bytes) {got:?}, \
                     pinned {:?}: {t:?}",
                    (dispatches, syncs, buffers, device_bytes)
                ));
            }
            // The minimum: the columns it reads once and its output once; the kernels'
            // bindings span at least that.
            assert!(t.minimal_bytes > 0, "{name} {op}: {t:?}");
            assert!(t.device_bytes >= t.minimal_bytes, "{name} {op}: {t:?}");
        }
    }
    assert!(moved.is_empty(), "{}", moved.join("\n"));
}

/// A filter from host memory: the batch goes up once (its bytes, counted), the result
/// comes down, and the host waits for the device only to read results back.
#[test]
fn a_filter_with_transfers_moves_its_batch_once() {
    let batch = batch();
    let batch_bytes: u64 = batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap() as u64)
        .sum();
    for (name, engine) in common::gpu_engines(None) {
        let (out, profile) = engine
            .profiled(|e| e.filter(&batch, &col("i").gt(lit(1_000_000i64))))
            .unwrap();
        let t = profile.traffic();
        assert!(
            t.uploaded_bytes >= batch_bytes && t.uploaded_bytes < batch_bytes + 4096,
            "{name}: uploaded {} for a batch of {batch_bytes}: {t:?}",
            t.uploaded_bytes
        );
        let out_bytes: u64 = out
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().unwrap() as u64)
            .sum();
        assert!(t.downloaded_bytes >= out_bytes, "{name}: {t:?}");
        assert_eq!(t.minimal_bytes, batch_bytes + out_bytes, "{name}: {t:?}");
        // Pinned: one wait for the kept-row count, one for the whole batch's download (it
        // was one per column: four here); one sync per operation is the goal.
        assert_eq!(t.host_syncs, 2, "{name}: {t:?}");
        // The profile says it on one line.
        assert!(profile.to_string().contains("dispatches"), "{profile}");
    }
}

/// A key whose every 8-bit digit varies sorts in four radix passes per 32-bit word (eight
/// at the 4-bit digits it had): at 1M rows a pass is five dispatches (the digit histogram,
/// the scan of its counts in three: reduce, the top level, apply; the scatter), beside the
/// encode and the gather of the one column. Pinned by the dispatch count.
#[test]
fn a_full_range_key_sorts_in_four_passes_a_word() {
    let n: u32 = 1 << 20;
    let batch = RecordBatch::try_from_iter([(
        "u",
        Arc::new(UInt32Array::from_iter_values(
            (0..n).map(|i| i.wrapping_mul(2_654_435_761)),
        )) as ArrayRef,
    )])
    .unwrap();
    for (name, engine) in common::gpu_engines(None) {
        let gpu = engine.upload(&batch).unwrap();
        let (_, profile) = engine
            .profiled(|_| gpu.sort(&[SortKey::asc("u")], None).map(|_| ()))
            .unwrap();
        let t = profile.traffic();
        assert_eq!(t.dispatches, 4 * 5 + 2, "{name}: {t:?}");
        assert_eq!(t.host_syncs, 1, "{name}: {t:?}");
    }
}

/// `batch()` pushed through a GPU `GroupByAccumulator` by `k` as `batches` batches, on
/// each GPU engine: its traffic, the answer checked against the CPU's.
fn streamed(batches: usize, aggs: &[Agg]) -> Vec<(String, Traffic)> {
    let batch = batch();
    let rows = batch.num_rows() / batches;
    let want = common::cpu().group_by(&batch, &["k"], aggs).unwrap();
    let mut out = Vec::new();
    for (name, engine) in common::gpu_engines(None) {
        let (got, profile) = engine
            .profiled(|e| {
                let options = arrow_wgpu::GroupByOptions::default();
                let mut acc = e.group_by_accumulator(batch.schema(), &["k"], aggs, options)?;
                for b in 0..batches {
                    acc.push(&batch.slice(b * rows, rows))?;
                }
                acc.finish()
            })
            .unwrap();
        assert_eq!(got, want, "{name}");
        out.push((name, profile.traffic()));
    }
    out
}

/// A group-by streamed batch by batch keeps its hash table on the device: each batch
/// reads back its overflow word and its new groups (one host sync, 8 KiB), and the
/// table comes back once, at the end. Before, each batch read back its whole table (one
/// record a slot: 6,291,840 bytes here, 16 host syncs) and the host merged the batches'
/// groups. 16 batches of 64k rows, 1,000 groups (all new in the first batch), `count(*)`
/// and `sum(i)`.
#[test]
fn a_streamed_group_by_keeps_its_table_on_the_device() {
    let batches = 16;
    for (name, t) in streamed(batches, &[Agg::count_star(), Agg::sum(col("i"))]) {
        // One sync a batch (its overflow word and new groups), one for the table at the end.
        assert_eq!(t.host_syncs, batches as u64 + 1, "{name}: {t:?}");
        // Per batch: the flags word, the table's 16-byte header and the first 1,024 new
        // groups' (slot, first row) after their count, each padded to 8 bytes: 8,224 bytes
        // (the 1,000 groups of the first batch fit). Then the table: its header and 16,384
        // slots of 7 words (owner, first row, rows, a 3-word sum and its count of values),
        // 459 KB. A whole table a batch (6 words a slot, without the kept table's count)
        // was 6.3 MB.
        let per_batch = 8 + 16 + (8 + 8 * 1024);
        let table = 16 + 16_384 * 7 * 4;
        let want_bytes = batches as u64 * per_batch + table;
        assert_eq!(t.downloaded_bytes, want_bytes, "{name}: {t:?}");
        // Two dispatches a batch (the one-pass kernel, then the one that stores the new
        // slots' keys) where there was one; the bindings' span grows by the table, its
        // stored keys and new-slot list that the second binds: 18,874,880 bytes before.
        // Two staging buffers for the 17 reads (the batches' 8 KiB reads share one).
        assert_eq!(
            (t.dispatches, t.buffers, t.device_bytes),
            (32, 86, 35_652_736),
            "{name}: {t:?}"
        );
    }
}

/// A streamed exact float sum and a 64-bit `max` keep their table on the device too: one
/// host sync a batch (its overflow word and new groups) and one at the end, where each
/// batch was grouped on its own before (a pass for the floats' bit range and its read,
/// the groups numbered, the digits sized to the batch and read back, the extremes' rows
/// gathered: 3 or more host syncs a batch). The same 16 batches of 64k rows and 1,000
/// groups as above, `sum(f)` (f64) and `max(i)` (Int64).
#[test]
fn a_streamed_float_sum_and_64_bit_max_keep_their_table_on_the_device() {
    let batches = 16;
    for (name, t) in streamed(batches, &[Agg::sum(col("f")), Agg::max(col("i"))]) {
        assert_eq!(t.host_syncs, batches as u64 + 1, "{name}: {t:?}");
        // Per batch as above. Then the table: its header and 4,096 slots of 142 words
        // (owner, first row, rows; the f64 sum's 67 positive and 67 negative digits, its
        // flags and its count of values; the max's high and low order words and its count),
        // 2.3 MB, read once.
        let per_batch = 8 + 16 + (8 + 8 * 1024);
        let table = 16 + 4096 * 142 * 4;
        assert_eq!(
            t.downloaded_bytes,
            batches as u64 * per_batch + table,
            "{name}: {t:?}"
        );
        // Three dispatches a batch: the one-pass kernel, the max's low words, the new
        // slots' keys stored.
        assert_eq!(t.dispatches, 3 * batches as u64, "{name}: {t:?}");
    }
}

/// A batch of many chunks sorts each chunk on the device and merges the sorted chunks
/// there too: nothing comes back but each chunk's key bounds (the one host sync), where
/// the CPU's merge read back every chunk's order and key words (4 bytes a row and key
/// word, and a second sync) and uploaded the merged order. 1M rows in 1 MiB chunks,
/// sorted by `k` descending (one key word) on the device.
#[test]
fn a_sort_of_many_chunks_merges_them_on_the_device() {
    let batch = batch();
    let want = common::cpu()
        .sort(&batch, &[SortKey::desc("k")], None)
        .unwrap();
    for (name, engine) in common::gpu_engines(Some(1 << 20)) {
        let gpu = engine.upload(&batch).unwrap();
        let (out, profile) = engine
            .profiled(|_| gpu.sort(&[SortKey::desc("k")], None))
            .unwrap();
        assert!(out.num_chunks() > 4, "{name}: {} chunks", out.num_chunks());
        assert_eq!(out.to_record_batch().unwrap(), want, "{name}");
        let t = profile.traffic();
        // One sync, for the eight chunks' key bounds (8 bytes each) before the radix
        // passes; with the CPU's merge: 2 syncs, 8,388,672 bytes down, 4,194,368 up.
        assert_eq!(
            (t.host_syncs, t.downloaded_bytes, t.uploaded_bytes),
            (1, 64, 64),
            "{name}: {t:?}"
        );
        // The merge's dispatches: 8 key layouts, 56 rank counts (each chunk against the
        // seven others), 64 scatters (each chunk into each output chunk); 280 before.
        assert_eq!((t.dispatches, t.buffers), (408, 513), "{name}: {t:?}");
    }
}
