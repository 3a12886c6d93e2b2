//! A streaming group-by's hash table kept on the GPU across batches: what a
//! `GroupByAccumulator` on the GPU does with each batch its plan and keys allow, so that
//! the groups' states are read back once, when the stream ends, not once a batch.
//!
//! The table is the one-pass kernel's (`super::group_fused`): a slot per group holding its
//! row count and every aggregate's words. Kept across chunks, a slot's keys can no longer
//! be compared through its owner row (a row of a chunk that is gone), so after each chunk
//! `shaders/group_persist.wgsl` stores the key words of the slots that chunk claimed
//! beside the table and marks them persisted; the fused kernel compares rows with the
//! stored words for those. The key words are the same for every batch of a schema: a key
//! of a nullable field has its null word whether or not the batch has nulls
//! (`NullWords::WhereNullable`), and every aggregate with an input counts
//! its values in a word of its own, so the records' layout doesn't depend on which batch
//! has nulls. The persist kernel also lists the new slots with their first rows: the host
//! numbers the groups in order of first appearance and takes their keys from the batch
//! (the host batch, or a gather from the GPU for a filtered one) as they come.
//!
//! What it takes: the plans the one-pass kernel takes for a kept table (counts; integer,
//! decimal and float sums, means and variances; `min`/`max` of every fixed-width type;
//! over columns or expressions, filtered or not) grouped by
//! fixed-width keys (no strings, no dictionaries) or by none. Per batch it costs one host
//! sync, reading the overflow word and the new slots (16 bytes and 8 a new group) where the
//! table path read the whole table and the merge ran on the host.
//!
//! When a batch would overflow the table (more groups than three quarters of its slots),
//! the table goes back to its state before the batch (a copy taken on the GPU as the batch
//! starts), is read back into the host's merge, and the stream goes on without it: that
//! batch and the rest are grouped batch by batch as before. The same happens when a batch
//! fails, so a fallback to the CPU merges after the groups before it. A table's rows are
//! kept below 2^32 (the bound its 32-bit counts and 96-bit sums are sized for, as a
//! chunk's): a batch that would pass it first sends the table to the merge and starts a
//! new one.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef};
use arrow::compute::concat;
use arrow::datatypes::Schema;

use super::column::GpuBatch;
use super::filter::{check_flags, read_u32s};
use super::group_by::{group_keys, keys_at_rows, on_gpu, same_states, unsupported, Input};
use super::group_fused::{self, Shape};
use super::groups::{raw_words, TableKeys};
use super::shader::{self, assemble};
use super::sort::{encode_interleaved, key_kind, NullWords};
use super::GpuContext;
use crate::aggregate::{Grouped, Merger, Plan};
use crate::error::{Error, Result};
use crate::keys::Key;
use crate::profile::{self, Phase};

/// New slots read back with a batch's overflow word; a batch with more reads them again.
const FRESH_READ: usize = 1024;

/// The table's share of a `GroupByAccumulator`: the table while there is one, and whether
/// the stream still tries to keep one.
pub(crate) struct Resident {
    table: Option<Table>,
    /// Rows a table takes at most: what its 32-bit counts and 96-bit sums are sized for.
    max_rows: u64,
    /// No more tables: a batch overflowed or failed, or the plan isn't one the table takes.
    off: bool,
    /// Why groups the table held never reached the merge (their read back failed): the
    /// accumulator's result would miss them, so it fails instead.
    lost: Option<String>,
}

/// A table on the GPU and what the host knows of its groups.
struct Table {
    ctx: Arc<GpuContext>,
    shape: Shape,
    same_as: Vec<Option<usize>>,
    slots: u32,
    /// Key words per row.
    words: u32,
    table: wgpu::Buffer,
    /// The table as it was before the batch being added.
    backup: wgpu::Buffer,
    /// Each persisted slot's key words.
    stored: wgpu::Buffer,
    /// The new slots of a batch: a count, then (slot, first row) pairs.
    fresh: wgpu::Buffer,
    /// The groups' slots, in order of first appearance.
    order: Vec<usize>,
    /// The groups' keys: per batch with new groups, one array per key column.
    keys: Vec<Vec<ArrayRef>>,
    /// Rows added.
    rows: u64,
}

/// The key words per row of `plan`'s keys in `schema` when every key is fixed-width:
/// a null word where the field is nullable, then one value word (two for 64-bit keys).
fn key_words(plan: &Plan, schema: &Schema) -> Option<u32> {
    plan.keys
        .iter()
        .map(|&k| {
            let field = schema.field(k);
            let (_, wide) = key_kind(field.data_type())?;
            Some(field.is_nullable() as u32 + 1 + wide as u32)
        })
        .sum()
}

/// Why a `GroupByAccumulator` of `plan` over batches of `schema` groups batch by batch on
/// the GPU instead of keeping a table there (`None`: it keeps one, as far as the plan and
/// the types say; a batch of too many groups, or a plan wider than the adapter's storage
/// bindings, still sends the stream batch by batch).
pub(crate) fn declines(plan: &Plan, schema: &Schema) -> Option<String> {
    if key_words(plan, schema).is_none() {
        let key = plan
            .keys
            .iter()
            .map(|&k| schema.field(k))
            .find(|f| key_kind(f.data_type()).is_none())
            .expect("a key without key words");
        return Some(format!("a group key of type {}", key.data_type()));
    }
    if let Some(why) = unsupported(plan, schema, true) {
        return Some(why);
    }
    plan.aggs
        .iter()
        .find_map(|agg| group_fused::declines(agg, true))
}

/// What the table compares chunk `c`'s rows by: one integer key of a field that can't be
/// null as its values (as the one-pass kernel does), otherwise the keys' order words with
/// a null word for each nullable field; the same for every batch of a schema.
fn kept_keys(
    batch: &GpuBatch,
    keys: &[Key],
    c: usize,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<TableKeys> {
    if let [key] = keys {
        if !batch.schema.field(key.column).is_nullable() {
            if let Some(per_row) = raw_words(batch, key, c) {
                let data = batch.columns[key.column].chunks[c].data.clone();
                return Ok(TableKeys::Words(data, per_row));
            }
        }
    }
    let (words, per_row) = encode_interleaved(batch, keys, c, NullWords::WhereNullable, encoder)?;
    Ok(TableKeys::Words(words, per_row))
}

impl Default for Resident {
    fn default() -> Resident {
        Resident {
            table: None,
            max_rows: u32::MAX as u64,
            off: false,
            lost: None,
        }
    }
}

impl Resident {
    /// Whether a table holds groups not yet in the merge.
    pub(crate) fn holds(&self) -> bool {
        self.table.is_some()
    }

    /// Why groups were lost, once a read back of the table failed.
    pub(crate) fn lost(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Groups `input` by `plan` on the GPU: into the table where it takes the batch,
    /// otherwise into `merger` as a batch's partial aggregates (after the table's groups).
    pub(crate) fn push(
        &mut self,
        ctx: &Arc<GpuContext>,
        input: Input,
        plan: &Plan,
        merger: &mut Merger,
    ) -> Result<()> {
        if !self.off {
            match self.absorb(ctx, input, plan, merger) {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    self.off = true;
                    self.flush(plan, merger)?;
                }
                Err(e) => {
                    self.off = true;
                    // The groups before this batch go to the merge first, so that a
                    // fallback's groups come after them; if they can't, `lost` says so.
                    let _ = self.flush(plan, merger);
                    return Err(e);
                }
            }
        }
        let grouped = super::group_by::partial(ctx, input, plan)?;
        merger.push(plan, grouped)
    }

    /// Reads the table back into `merger`, and drops it (a later batch starts a new one).
    pub(crate) fn flush(&mut self, plan: &Plan, merger: &mut Merger) -> Result<()> {
        let Some(table) = self.table.take() else {
            return Ok(());
        };
        if table.order.is_empty() {
            return Ok(());
        }
        let out = table
            .grouped(plan)
            .and_then(|grouped| merger.push(plan, grouped));
        if let Err(e) = &out {
            self.lost = Some(e.to_string());
        }
        out
    }

    /// Adds `input` to the table (made on the first batch): `false` where the table doesn't
    /// take the plan, its keys or this batch's groups (nothing of the batch added).
    fn absorb(
        &mut self,
        ctx: &Arc<GpuContext>,
        input: Input,
        plan: &Plan,
        merger: &mut Merger,
    ) -> Result<bool> {
        let (schema, host, rows) = match input {
            Input::Host(b) => (b.schema(), Some(b), b.num_rows()),
            Input::Resident(b) => (b.schema.clone(), None, b.num_rows()),
        };
        let Some(words) = key_words(plan, &schema) else {
            return Ok(false);
        };
        if unsupported(plan, &schema, host.is_some()).is_some() {
            return Ok(false);
        }
        if rows == 0 {
            return Ok(true);
        }
        if self
            .table
            .as_ref()
            .is_some_and(|t| t.rows + rows as u64 > self.max_rows)
        {
            self.flush(plan, merger)?;
        }
        let (batch, remapped) = on_gpu(ctx, input, plan, words as u64 * 4)?;
        let same_as = same_states(&remapped);
        let mut shapes = Vec::with_capacity(batch.num_chunks());
        for c in 0..batch.num_chunks() {
            match group_fused::shape(&batch, c, &remapped, &same_as, true) {
                Some(shape) if group_fused::fits(&batch, &shape, 1, true) => shapes.push(shape),
                _ => return Ok(false),
            }
        }
        if self.table.is_none() {
            match Table::new(ctx, shapes[0].clone(), same_as, words)? {
                Some(table) => self.table = Some(table),
                None => return Ok(false),
            }
        }
        let table = self.table.as_mut().expect("made above");
        if shapes[0].record != table.shape.record {
            return Ok(false);
        }
        let keys_at = |rows: &[u32]| keys_at_rows(host, plan, &batch, &remapped, rows);
        table.add(&batch, &remapped, &shapes, &keys_at)
    }
}

impl Table {
    /// An empty table for records of `shape` and keys of `words` words a row; `None`
    /// where too few records fit.
    fn new(
        ctx: &Arc<GpuContext>,
        shape: Shape,
        same_as: Vec<Option<usize>>,
        words: u32,
    ) -> Result<Option<Table>> {
        let max_words = group_fused::MAX_KEPT_TABLE_WORDS;
        let Some(slots) = group_fused::table_slots(u32::MAX as u64, shape.record, max_words) else {
            return Ok(None);
        };
        let bytes = group_fused::table_words(slots, &shape) * 4;
        Ok(Some(Table {
            ctx: ctx.clone(),
            table: ctx.storage_zeroed("kept group table", bytes)?,
            backup: ctx.storage_zeroed("kept group table, before the batch", bytes)?,
            stored: ctx.storage_zeroed("kept group keys", slots as u64 * words as u64 * 4)?,
            fresh: ctx.storage_zeroed("new groups of the batch", 8 + slots as u64 * 8)?,
            shape,
            same_as,
            slots,
            words,
            order: Vec::new(),
            keys: Vec::new(),
            rows: 0,
        }))
    }

    /// Adds every chunk of `batch` (of `shapes`) to the table; `false`, with the table as
    /// it was, where the batch's groups overflow it. On an error the table is as it was.
    fn add(
        &mut self,
        batch: &GpuBatch,
        plan: &Plan,
        shapes: &[Shape],
        keys_at: &dyn Fn(&[u32]) -> Result<Vec<ArrayRef>>,
    ) -> Result<bool> {
        let ctx = self.ctx.clone();
        let mut encoder = ctx.encoder();
        let bytes = group_fused::table_words(self.slots, &self.shape) * 4;
        encoder.copy_buffer_to_buffer(&self.table, 0, &self.backup, 0, bytes);
        encoder.clear_buffer(&self.fresh, 0, Some(8));
        ctx.submit(encoder)?;
        let mark = (self.order.len(), self.keys.len(), self.rows);
        let added = self.add_chunks(batch, plan, shapes, keys_at);
        if !matches!(added, Ok(true)) {
            std::mem::swap(&mut self.table, &mut self.backup);
            self.order.truncate(mark.0);
            self.keys.truncate(mark.1);
            self.rows = mark.2;
        }
        added
    }

    /// [`Table::add`] once the table's state before the batch is copied: each chunk's
    /// one-pass kernel and the kernel that stores its new slots' keys, then one read of
    /// the flags, the overflow word and the new slots.
    fn add_chunks(
        &mut self,
        batch: &GpuBatch,
        plan: &Plan,
        shapes: &[Shape],
        keys_at: &dyn Fn(&[u32]) -> Result<Vec<ArrayRef>>,
    ) -> Result<bool> {
        let ctx = self.ctx.clone();
        let start = Instant::now();
        let record = self.shape.record.to_string();
        let persist = ctx.pipeline(&format!("group_persist:{record}"), || {
            assemble(shader::GROUP_PERSIST, &[("REC", &record)])
        })?;
        let keys = group_keys(plan);
        let mut flags = Vec::with_capacity(shapes.len());
        let mut base = 0u32;
        for (c, shape) in shapes.iter().enumerate() {
            let rows = batch.chunk_rows[c];
            let mut encoder = ctx.encoder();
            let table_keys = kept_keys(batch, &keys, c, &mut encoder)?;
            let TableKeys::Words(words, per_row) = &table_keys else {
                unreachable!("kept keys are words")
            };
            let per_row = *per_row;
            if per_row != self.words {
                return Err(Error::Gpu(format!(
                    "group_by: {per_row} key words a row where the kept table has {}",
                    self.words
                )));
            }
            flags.push(group_fused::record_pass(
                batch,
                c,
                plan,
                shape,
                &table_keys,
                &self.table,
                self.slots,
                Some(&self.stored),
                &mut encoder,
            )?);
            let params = ctx.params([self.slots, rows, per_row, base])?;
            let bound = ctx.bind(
                &persist,
                &[&params, words, &self.table, &self.stored, &self.fresh],
            );
            ctx.dispatch(&mut encoder, &persist, &bound, self.slots as u64);
            ctx.submit(encoder)?;
            base += rows;
        }
        profile::record(Phase::Kernels, start);

        let start = Instant::now();
        let fresh_read = 8 + 8 * FRESH_READ.min(self.slots as usize) as u64;
        let mut parts: Vec<(&wgpu::Buffer, u64)> = flags.iter().map(|f| (f, 4)).collect();
        parts.push((&self.table, 16));
        parts.push((&self.fresh, fresh_read));
        let read = ctx.read_many(&parts)?;
        for f in &read[..flags.len()] {
            check_flags(read_u32s(f)[0])?;
        }
        if read_u32s(&read[flags.len()])[1] != 0 {
            profile::record(Phase::Download, start);
            log::debug!("group_by: the kept table's groups overflow it; batch by batch from here");
            return Ok(false);
        }
        let mut fresh = read_u32s(&read[flags.len() + 1]);
        let n = fresh[0] as usize;
        if n > FRESH_READ {
            let all = ctx.read_many(&[(&self.fresh, 8 + 8 * n as u64)])?;
            fresh = read_u32s(&all[0]);
        }
        // (first row in the batch, slot), in order of first appearance.
        let mut new: Vec<(u32, u32)> = (0..n)
            .map(|i| (fresh[3 + 2 * i], fresh[2 + 2 * i]))
            .collect();
        new.sort_unstable();
        self.order.extend(new.iter().map(|&(_, s)| s as usize));
        if !plan.keys.is_empty() && !new.is_empty() {
            let rows: Vec<u32> = new.iter().map(|&(row, _)| row).collect();
            self.keys.push(keys_at(&rows)?);
        }
        self.rows += batch.num_rows() as u64;
        profile::record(Phase::Download, start);
        Ok(true)
    }

    /// The table's groups as partial aggregates, read back in one read.
    fn grouped(&self, plan: &Plan) -> Result<Grouped> {
        let start = Instant::now();
        let words = group_fused::table_words(self.slots, &self.shape);
        let read = self.ctx.read_many(&[(&self.table, words * 4)])?;
        let table = read_u32s(&read[0]);
        let groups = if plan.keys.is_empty() {
            1
        } else {
            self.order.len()
        };
        let states = group_fused::states_of(
            &self.shape,
            &self.same_as,
            &table[group_fused::HEADER..],
            &self.order,
            groups,
        )?;
        let keys = (0..plan.keys.len())
            .map(|k| {
                let parts: Vec<&dyn Array> = self.keys.iter().map(|p| p[k].as_ref()).collect();
                Ok(concat(&parts)?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        profile::record(Phase::Download, start);
        Ok(Grouped {
            groups,
            keys,
            states,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, RecordBatch};

    /// A table's rows stay within its bound: a batch that would pass it sends the table to
    /// the merge first and starts a new one, and the groups (order and states) are those
    /// of all the rows at once. The bound is lowered from 2^32 - 1 to 1,000 rows here.
    #[test]
    fn a_table_at_its_row_bound_goes_to_the_merge_and_a_new_one_starts() {
        let n = 3000;
        let batch = RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(Int32Array::from_iter_values(
                    (0..n).map(|i| (i * 7 + i / 500) % 60),
                )) as ArrayRef,
            ),
            (
                "x",
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| i as i64 * 1_000_003 - 7),
                )),
            ),
        ])
        .unwrap();
        let aggs = [crate::Agg::count_star(), crate::Agg::sum(crate::col("x"))];
        let plan = crate::group_by::plan_group_by(batch.schema_ref(), &["k"], &aggs).unwrap();
        let want = crate::cpu::group_by::partial(&batch, &plan, crate::cpu::Threads::ONE)
            .unwrap()
            .finish(&plan, 1)
            .unwrap();
        for (name, ctx) in crate::gpu::tests::test_contexts() {
            let mut resident = Resident {
                max_rows: 1000,
                ..Resident::default()
            };
            let mut merger = Merger::new();
            let mut tables = 0;
            for b in 0..10 {
                let part = batch.slice(b * 300, 300);
                resident
                    .push(&ctx, Input::Host(&part), &plan, &mut merger)
                    .unwrap();
                let rows = resident.table.as_ref().expect("a table").rows;
                assert!(rows <= 1000, "{name}: {rows} rows");
                tables += (rows == 300) as usize;
            }
            // 300, 600, 900 rows, then a new table: four tables for ten batches.
            assert_eq!(tables, 4, "{name}");
            resident.flush(&plan, &mut merger).unwrap();
            let got = merger.finish(&plan).unwrap().unwrap();
            assert_eq!(got.finish(&plan, 1).unwrap(), want, "{name}");
        }
    }
}
