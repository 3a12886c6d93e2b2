//! The host side of the GPU sort: an LSD radix sort over order-preserving key words,
//! carrying row indices, and the take (gather) that moves whole columns by those indices.
//!
//! Each key becomes 32-bit words whose unsigned order is arrow's row-format order
//! (`shaders/sort_encode.wgsl`): a null word when the column has nulls, then one word (up to
//! 32-bit types) or two (64-bit types). Several keys sort as one composite key, its words
//! most significant first. The radix sort runs least significant word first, eight bits per
//! pass (at most four passes a word), each pass reduce-then-scan: a digit histogram per tile
//! of 512 keys, one multi-level scan of the counts (`super::scan`), and a stable scatter
//! that ranks each tile's keys in workgroup memory. No workgroup waits on another. Before
//! sorting, the encode stage folds every word into an
//! AND and an OR over all rows; digits that are equal in every row are skipped (a key of
//! small range costs few passes, a constant key none).
//!
//! A top-k (a sort with a limit of at most a quarter of a chunk's rows) doesn't sort every
//! row: a radix select (`shaders/sort_select.wgsl`) splits the rows still tied with the
//! k-th key by one digit a level, most significant first, until few are left; only the
//! rows that can be among the first k are compacted (in row order) and sorted, so the
//! first k are those of a stable sort of every row.
//!
//! A batch larger than one chunk (one storage binding) sorts each chunk on the GPU; the
//! sorted runs are then merged on the GPU (`merge_on_gpu`: each key's place is its place
//! in its run plus the keys of the other runs before it, counted by binary searches),
//! earlier chunks first among equal keys, so the result is the same stable order. Where a
//! run's key words don't fit one binding, the runs are merged on the CPU instead.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use arrow::datatypes::DataType;

use super::column::{ColumnChunk, GpuBatch, GpuColumn, Layout};
use super::compact;
use super::scan::record_exclusive_scan;
use super::shader::{self, assemble};
use super::strings::{take_strings, Source};
use super::{GpuContext, WORKGROUP_SIZE};
use crate::error::{Error, Result};
use crate::profile::{self, Phase};

/// Bits of the digit sorted in one pass (`RADIX` in `shaders/common/radix.wgsl`).
const DIGIT_BITS: u32 = 8;
/// Keys per tile of a pass (`TILE` there): two per invocation.
const TILE: u32 = 2 * WORKGROUP_SIZE;

const FLAG_HIGH: u32 = 1 << 4;
const FLAG_NULL_WORD: u32 = 1 << 5;
const FLAG_DESCENDING: u32 = 1 << 6;
const FLAG_NULLS_FIRST: u32 = 1 << 7;
const FLAG_HAS_VALIDITY: u32 = 1 << 8;

use crate::keys::Key;

/// The encode kernel's kind code for a key type, and whether it takes two words.
pub(crate) fn key_kind(dt: &DataType) -> Option<(u32, bool)> {
    Some(match dt {
        DataType::Boolean => (0, false),
        DataType::Int8 => (1, false),
        DataType::Int16 => (2, false),
        DataType::Int32 | DataType::Date32 => (3, false),
        DataType::UInt8 => (4, false),
        DataType::UInt16 => (5, false),
        DataType::UInt32 => (6, false),
        DataType::Float32 => (7, false),
        DataType::Int64 | DataType::Date64 | DataType::Timestamp(_, _) => (8, true),
        // Held as i64 (see `Layout::of`): ordered as one.
        DataType::Decimal128(p, _) if *p <= super::column::MAX_GPU_DECIMAL_PRECISION => (8, true),
        DataType::UInt64 => (9, true),
        DataType::Float64 => (10, true),
        _ => return None,
    })
}

/// One word of the composite key: which column, and the encode flags (without the
/// per-chunk validity bit).
#[derive(Debug, Clone, Copy)]
struct Word {
    column: usize,
    flags: u32,
}

fn words_of(batch: &GpuBatch, keys: &[Key]) -> Result<Vec<Word>> {
    words_with(batch, keys, NullWords::WhereNulls)
}

/// Which keys get a word that says whether the row's key is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NullWords {
    /// None: an aggregate that skips nulls needs only the values' words.
    Skip,
    /// Keys whose column has nulls in some chunk of the batch.
    WhereNulls,
    /// Keys whose field is nullable, nulls in this batch or not: the same words per row
    /// for every batch of a schema, as a table kept across batches compares them.
    WhereNullable,
}

/// [`words_of`], with the null words `null_words` asks for.
fn words_with(batch: &GpuBatch, keys: &[Key], null_words: NullWords) -> Result<Vec<Word>> {
    let mut words = Vec::new();
    for key in keys {
        let column = &batch.columns[key.column];
        let (kind, wide) = key_kind(&column.data_type).ok_or_else(|| Error::UnsupportedType {
            operation: "sort",
            column: batch.schema.field(key.column).name().clone(),
            data_type: column.data_type.clone(),
            where_: format!(" on the GPU ({})", batch.ctx.summary.name),
        })?;
        let mut base = kind;
        if key.options.descending {
            base |= FLAG_DESCENDING;
        }
        if key.options.nulls_first {
            base |= FLAG_NULLS_FIRST;
        }
        let nulls = match null_words {
            NullWords::Skip => false,
            NullWords::WhereNulls => column.chunks.iter().any(|c| c.validity.is_some()),
            NullWords::WhereNullable => batch.schema.field(key.column).is_nullable(),
        };
        if nulls {
            words.push(Word {
                column: key.column,
                flags: base | FLAG_NULL_WORD,
            });
        }
        if wide {
            words.push(Word {
                column: key.column,
                flags: base | FLAG_HIGH,
            });
        }
        words.push(Word {
            column: key.column,
            flags: base,
        });
    }
    Ok(words)
}

/// The key words of chunk `c` interleaved into one buffer (row r's words at
/// `r * words + i`, most significant first), recorded into `encoder`; returns the buffer
/// and the words per row, with the null words `null_words` asks for.
pub(crate) fn encode_interleaved(
    batch: &GpuBatch,
    keys: &[Key],
    c: usize,
    null_words: NullWords,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<(wgpu::Buffer, u32)> {
    let ctx = &batch.ctx;
    let words = words_with(batch, keys, null_words)?;
    let rows = batch.chunk_rows[c];
    let stride = words.len() as u32;
    // A chunk's words must fit the chunk size (one binding at most): the hash grouping
    // splits chunks first (`groups::fit_key_words`). Tests lower the chunk size, so this
    // catches a path that doesn't. A chunk is never cut below 32 rows (one validity word,
    // `GpuBatch::rechunked`), so 32 rows always pass: only a test's tiny chunk size and
    // many key words go over, and a real binding holds far more.
    debug_assert!(
        rows <= 32 || rows as u64 * stride as u64 * 4 <= ctx.summary.max_chunk_bytes,
        "{rows} rows of {stride} key words exceed a chunk of {} bytes",
        ctx.summary.max_chunk_bytes
    );
    let out = ctx.storage_zeroed("key words", rows as u64 * stride as u64 * 4)?;
    let bounds = ctx.storage_zeroed("key bounds", stride as u64 * 8)?;
    for (i, word) in words.iter().enumerate() {
        let i = i as u32;
        record_word(
            batch,
            *word,
            c,
            i,
            stride | (i << 16),
            &out,
            &bounds,
            encoder,
        )?;
    }
    Ok((out, stride))
}

/// Records the encode kernel for one key word of chunk `c`: row r's word goes to
/// `out[r * stride + offset]` (`placement` = stride | offset << 16), and its AND / OR over
/// the chunk to `bounds[slot * 2 ..]`.
#[allow(clippy::too_many_arguments)]
fn record_word(
    batch: &GpuBatch,
    word: Word,
    c: usize,
    slot: u32,
    placement: u32,
    out: &wgpu::Buffer,
    bounds: &wgpu::Buffer,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<()> {
    let ctx = &batch.ctx;
    let rows = batch.chunk_rows[c];
    let encode = ctx.pipeline("sort_encode", || assemble(shader::SORT_ENCODE, &[]))?;
    let chunk = &batch.columns[word.column].chunks[c];
    let flags = word.flags
        | if chunk.validity.is_some() {
            FLAG_HAS_VALIDITY
        } else {
            0
        };
    let params = ctx.params([rows, flags, slot, placement])?;
    let validity = chunk.validity.as_ref().unwrap_or(&ctx.unread);
    if rows > 0 {
        let bg = ctx.bind(&encode, &[&params, &chunk.data, validity, out, bounds]);
        ctx.dispatch(encoder, &encode, &bg, rows as u64);
    }
    Ok(())
}

/// One chunk sorted on the GPU: its row indices (local to the chunk) in key order, and its
/// encoded key words (in row order) for merging with other chunks. With a limit, `index`
/// holds only the first `len` rows' indices (at least the limit's, or every row).
pub(crate) struct SortedChunk {
    pub rows: u32,
    pub len: u32,
    pub index: wgpu::Buffer,
    words: Vec<wgpu::Buffer>,
}

/// Sorts every chunk of `batch` by `keys` on the GPU; with a `limit`, each chunk's first
/// `limit` rows at least (a top-k: a radix select keeps the rows that can be among them,
/// and only those are sorted).
pub(crate) fn sort_chunks(
    batch: &GpuBatch,
    keys: &[Key],
    limit: Option<usize>,
) -> Result<Vec<SortedChunk>> {
    let ctx = &batch.ctx;
    let words = words_of(batch, keys)?;
    let start = std::time::Instant::now();
    let out = ctx.scoped(|| {
        // Stage 1: every word of every chunk, and its AND / OR over the chunk; for a top-k,
        // the select's first level, whose counts are read with the bounds.
        let mut encoder = ctx.encoder();
        let mut encoded = Vec::with_capacity(batch.num_chunks());
        for (c, &rows) in batch.chunk_rows.iter().enumerate() {
            let init: Vec<u32> = words.iter().flat_map(|_| [u32::MAX, 0]).collect();
            let bounds = ctx.storage_from_bytes("sort bounds", bytemuck::cast_slice(&init))?;
            let mut buffers = Vec::with_capacity(words.len());
            for (slot, word) in words.iter().enumerate() {
                let out = ctx.storage_zeroed("sort key words", rows as u64 * 4)?;
                record_word(batch, *word, c, slot as u32, 1, &out, &bounds, &mut encoder)?;
                buffers.push(out);
            }
            let select = match limit {
                Some(k) if selects(ctx, k, rows) => {
                    let mut select = Select::new(ctx, rows, k as u32)?;
                    select.record(ctx, &buffers, Some((0, 32 - DIGIT_BITS)), &mut encoder)?;
                    Some(select)
                }
                _ => None,
            };
            encoded.push((bounds, buffers, select));
        }
        ctx.submit(encoder)?;
        let mut parts: Vec<(&wgpu::Buffer, u64)> = Vec::new();
        for (bounds, _, select) in &encoded {
            parts.push((bounds, words.len() as u64 * 8));
            if let Some((_, _, stats)) = select.as_ref().and_then(|s| s.pending.as_ref()) {
                parts.push((stats, SELECT_STATS * 4));
            }
        }
        let mut read = ctx.read_many(&parts)?.into_iter();
        let mut chunks = Vec::with_capacity(encoded.len());
        for (_, buffers, select) in encoded {
            let bounds: Vec<u32> = bytemuck::pod_collect_to_vec(&read.next().unwrap_or_default());
            // A top-k's next level, from the first level's counts.
            let select = match select {
                Some(mut select) => {
                    let stats = bytemuck::pod_collect_to_vec(&read.next().unwrap_or_default());
                    let next = select.choose(&stats, &bounds)?;
                    Some((select, next))
                }
                None => None,
            };
            chunks.push((bounds, buffers, select));
        }
        // The top-k's further levels, every chunk's in one submission and one read back.
        loop {
            let mut encoder = ctx.encoder();
            let mut levels = Vec::new();
            for (c, (_, buffers, select)) in chunks.iter_mut().enumerate() {
                if let Some((select, Some(digit))) = select {
                    select.record(ctx, buffers, Some(*digit), &mut encoder)?;
                    levels.push(c);
                }
            }
            if levels.is_empty() {
                break;
            }
            ctx.submit(encoder)?;
            let parts: Vec<(&wgpu::Buffer, u64)> = levels
                .iter()
                .filter_map(|&c| chunks[c].2.as_ref()?.0.pending.as_ref())
                .map(|(_, _, stats)| (stats, SELECT_STATS * 4))
                .collect();
            let stats = ctx.read_many(&parts)?;
            for (&c, stats) in levels.iter().zip(stats) {
                let (bounds, _, select) = &mut chunks[c];
                if let Some((select, next)) = select {
                    *next = select.choose(&bytemuck::pod_collect_to_vec(&stats), bounds)?;
                }
            }
        }
        // Stages 2-4 per chunk: the radix passes over the digits that vary.
        let mut out = Vec::with_capacity(chunks.len());
        for ((bounds, buffers, select), &rows) in chunks.into_iter().zip(&batch.chunk_rows) {
            let bounds = &bounds[..];
            let passes: Vec<(usize, Vec<u32>)> = (0..words.len())
                .rev()
                .map(|w| {
                    (
                        w,
                        varying_digits(bounds[w * 2] ^ bounds[w * 2 + 1]).collect(),
                    )
                })
                .filter(|(_, s): &(usize, Vec<u32>)| !s.is_empty())
                .collect();
            let (index, len) = match select {
                Some((select, _)) => select.finish(ctx, &buffers, &passes)?,
                None if limit == Some(0) => (ctx.storage_zeroed("sort index", 0)?, 0),
                None => (radix(ctx, rows, &buffers, &passes)?, rows),
            };
            out.push(SortedChunk {
                rows,
                len,
                index,
                words: buffers,
            });
        }
        Ok(out)
    })?;
    profile::record(Phase::Kernels, start);
    Ok(out)
}

/// The digits (their lowest bits, least significant first) in which a word varies, given
/// `varying`: the bits that differ between some of its values (their AND xor OR).
fn varying_digits(varying: u32) -> impl DoubleEndedIterator<Item = u32> {
    (0..32 / DIGIT_BITS)
        .map(|d| d * DIGIT_BITS)
        .filter(move |s| (varying >> s) & ((1 << DIGIT_BITS) - 1) != 0)
}

/// Whether a top-k of `k` rows among `rows` selects before it sorts: when the rows that
/// are left out are most of them, and the adapter binds the six storage buffers of the
/// select and rank kernels (downlevel adapters promise four: they sort every row).
fn selects(ctx: &GpuContext, k: usize, rows: u32) -> bool {
    k > 0
        && k.saturating_mul(4) < rows as usize
        && rows >= SELECT_MIN_ROWS
        && ctx.summary.limits.max_storage_buffers_per_shader_stage
            >= 6 + ctx.params_storage_bindings()
}

/// Below this many rows a chunk is sorted whole: a select's dispatches would cost more
/// than the passes they save.
const SELECT_MIN_ROWS: u32 = 4096;

/// A top-k's radix select over one chunk of `rows` rows (`shaders/sort_select.wgsl`):
/// level by level, the rows still tied with the k-th key in key order are split by one
/// 8-bit digit of the order words, most significant first, until at most `enough` rows
/// can be among the first `k`. Each level reads back its counts (one host sync; the first
/// level's with the sort's bounds), and with them which digits still vary among the rows
/// of the chosen bucket, so a digit equal in all of them is never counted.
struct Select {
    rows: u32,
    k: u32,
    enough: u64,
    /// Bit per row: still tied with the k-th key.
    live: wgpu::Buffer,
    /// Bit per row: certainly among the first `k` (after the last level: a candidate).
    below: wgpu::Buffer,
    /// The level recorded and not read yet: its word, digit shift and stats buffer.
    pending: Option<(usize, u32, wgpu::Buffer)>,
    /// The last level read: its word, digit shift and chosen bucket.
    chosen: Option<(usize, u32, u32)>,
    /// Rows certainly among the first `k`, and rows in the chosen bucket.
    certain: u64,
    tied: u64,
}

const SELECT_NONE: u32 = u32::MAX;
/// At most this many candidates are ranked in one dispatch (each compared with all the
/// others); more are radix-sorted.
const RANK_MAX: u32 = 1024;
const SELECT_HAS_NEXT: u32 = 0x100;
/// Per-bucket statistics of a level: count, NOT-AND and OR of the word, of the next word.
const SELECT_STATS: u64 = 5 * 256;

impl Select {
    fn new(ctx: &GpuContext, rows: u32, k: u32) -> Result<Select> {
        let mask_bytes = rows.div_ceil(32) as u64 * 4;
        Ok(Select {
            rows,
            k,
            // Narrowing stops at twice the limit, 1/64 of the rows or 1,024 rows: each
            // level costs a host sync and a pass over one word, one level leaves about
            // 1/256 of evenly spread keys, and a few thousand keys sort in cheap passes.
            enough: (2 * k as u64).max(rows as u64 / 64).max(1024),
            live: ctx.storage_zeroed("select live rows", mask_bytes)?,
            below: ctx.storage_zeroed("select candidates", mask_bytes)?,
            pending: None,
            chosen: None,
            certain: 0,
            tied: rows as u64,
        })
    }

    /// Records one dispatch of the select: applies the last choice, and counts digit
    /// `shift` of word `w` when given.
    fn record(
        &mut self,
        ctx: &GpuContext,
        words: &[wgpu::Buffer],
        digit: Option<(usize, u32)>,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<()> {
        let select = ctx.pipeline("sort_select", || assemble(shader::SORT_SELECT, &[]))?;
        let (pw, pshift, pbucket) = self.chosen.unwrap_or((0, SELECT_NONE, 0));
        let (w, shift) = match digit {
            Some((w, shift)) if w + 1 < words.len() => (w, shift | SELECT_HAS_NEXT),
            Some((w, shift)) => (w, shift),
            None => (pw, SELECT_NONE),
        };
        let after = &words[(w + 1).min(words.len() - 1)];
        let stats_bytes = if digit.is_some() { SELECT_STATS * 4 } else { 4 };
        let stats = ctx.storage_zeroed("select stats", stats_bytes)?;
        let params = ctx.params([self.rows, shift, pshift, pbucket])?;
        let bg = ctx.bind(
            &select,
            &[
                &params,
                &words[w],
                after,
                &words[pw],
                &self.live,
                &self.below,
                &stats,
            ],
        );
        // Each thread takes 16 rows (`PER_THREAD` there).
        ctx.dispatch(encoder, &select, &bg, (self.rows as u64).div_ceil(16));
        self.pending = digit.map(|(w, shift)| (w, shift, stats));
        Ok(())
    }

    /// Chooses the bucket of the pending level from its `stats` (read back): the one
    /// holding the k-th row. Returns the digit to count next, or None when narrowing is
    /// done: few enough rows left, or none of their digits varies.
    fn choose(&mut self, stats: &[u32], bounds: &[u32]) -> Result<Option<(usize, u32)>> {
        let (w, shift, _) = self.pending.take().expect("a level was recorded");
        let counted: u64 = stats[..256].iter().map(|&c| c as u64).sum();
        if counted != self.tied {
            return Err(Error::Gpu(format!(
                "top-k select: a level counted {counted} of {} rows",
                self.tied
            )));
        }
        let mut bucket = 0;
        while self.certain + stats[bucket] as u64 <= (self.k - 1) as u64 {
            self.certain += stats[bucket] as u64;
            bucket += 1;
        }
        self.tied = stats[bucket] as u64;
        self.chosen = Some((w, shift, bucket as u32));
        if self.certain + self.tied <= self.enough {
            return Ok(None);
        }
        // What varies among the tied rows: this word's lower digits and the next word by
        // the level's statistics, the words after by the chunk's bounds.
        let varies = |not_and: u32, or: u32| !not_and ^ or;
        let this = varies(stats[256 + bucket], stats[512 + bucket]);
        let next = varies(stats[768 + bucket], stats[1024 + bucket]);
        let below_shift = varying_digits(this)
            .rev()
            .filter(|&s| s < shift)
            .map(|s| (w, s));
        let later = (w + 1..bounds.len() / 2).flat_map(|v| {
            let vary = if v == w + 1 {
                next
            } else {
                bounds[v * 2] ^ bounds[v * 2 + 1]
            };
            varying_digits(vary).rev().map(move |s| (v, s))
        });
        Ok(below_shift.chain(later).next())
    }

    /// The candidates, sorted: the last choice applied, the candidate rows compacted in
    /// row order, their words gathered and sorted by the radix `passes` (stable). Returns
    /// their rows in the chunk in key order, and how many: the first `k` of them are a
    /// stable sort's first `k`.
    fn finish(
        mut self,
        ctx: &GpuContext,
        words: &[wgpu::Buffer],
        passes: &[(usize, Vec<u32>)],
    ) -> Result<(wgpu::Buffer, u32)> {
        let rows = self.rows;
        let candidates = (self.certain + self.tied) as u32;
        let mut encoder = ctx.encoder();
        self.record(ctx, words, None, &mut encoder)?;
        let mask = [ColumnChunk {
            data: self.below.clone(),
            validity: None,
        }];
        let offsets = compact::record_offsets(ctx, &mut encoder, &mask, &[rows])?;
        let chosen = compact::record_kept_rows(
            ctx,
            &mut encoder,
            &mask[0],
            rows,
            &offsets.word_offsets[0],
            candidates,
        )?;
        // Their words, for the words the passes sort by.
        let gather = ctx.pipeline("sort_gather", || assemble(shader::SORT_GATHER, &[]))?;
        let gather_params = ctx.params([candidates, 0, 0, 0])?;
        let mut chosen_words = Vec::with_capacity(words.len());
        let mut varying = Vec::new();
        for (w, word) in words.iter().enumerate() {
            if !passes.iter().any(|(p, _)| *p == w) {
                chosen_words.push(word.clone()); // never read
                continue;
            }
            let out = ctx.storage_zeroed("select words", candidates as u64 * 4)?;
            let bg = ctx.bind(&gather, &[&gather_params, word, &chosen, &out]);
            ctx.dispatch(&mut encoder, &gather, &bg, candidates as u64);
            varying.push(out.clone());
            chosen_words.push(out);
        }
        if candidates <= RANK_MAX && varying.len() <= 4 {
            // Few candidates: ranked in one dispatch (`shaders/sort_rank.wgsl`).
            let rank = ctx.pipeline("sort_rank", || assemble(shader::SORT_RANK, &[]))?;
            let index = ctx.storage_zeroed("sort index", candidates as u64 * 4)?;
            let params = ctx.params([candidates, varying.len() as u32, 0, 0])?;
            let mut buffers = vec![&params];
            buffers.extend(varying.iter());
            buffers.resize(5, &ctx.unread);
            buffers.extend([&chosen, &index]);
            let bg = ctx.bind(&rank, &buffers);
            ctx.dispatch(&mut encoder, &rank, &bg, candidates as u64);
            ctx.submit(encoder)?;
            return Ok((index, candidates));
        }
        ctx.submit(encoder)?;
        let order = radix(ctx, candidates, &chosen_words, passes)?;
        let index = ctx.storage_zeroed("sort index", candidates as u64 * 4)?;
        let bg = ctx.bind(&gather, &[&gather_params, &chosen, &order, &index]);
        let mut encoder = ctx.encoder();
        ctx.dispatch(&mut encoder, &gather, &bg, candidates as u64);
        ctx.submit(encoder)?;
        Ok((index, candidates))
    }
}

/// Where a pass reads its keys from.
#[derive(Clone, Copy)]
enum Src {
    Word(usize),
    Keys(usize),
}

/// Runs the radix passes (`passes`: word, digit shifts; least significant first) over one
/// chunk's words; returns the sorted row indices.
fn radix(
    ctx: &GpuContext,
    rows: u32,
    words: &[wgpu::Buffer],
    passes: &[(usize, Vec<u32>)],
) -> Result<wgpu::Buffer> {
    if passes.is_empty() || rows < 2 {
        let iota: Vec<u32> = (0..rows).collect();
        return ctx.storage_from_bytes("sort index", bytemuck::cast_slice(&iota));
    }
    let histogram = ctx.pipeline("sort_histogram", || assemble(shader::SORT_HISTOGRAM, &[]))?;
    let scatter = ctx.pipeline("sort_scatter", || assemble(shader::SORT_SCATTER, &[]))?;
    let gather = ctx.pipeline("sort_gather", || assemble(shader::SORT_GATHER, &[]))?;
    let bytes = rows as u64 * 4;
    let keys = [
        ctx.storage_zeroed("sort keys", bytes)?,
        ctx.storage_zeroed("sort keys", bytes)?,
    ];
    let index = [
        ctx.storage_zeroed("sort index", bytes)?,
        ctx.storage_zeroed("sort index", bytes)?,
    ];
    let tiles = rows.div_ceil(TILE);
    let radix = 1u32 << DIGIT_BITS;
    let counts = ctx.storage_zeroed("sort counts", tiles as u64 * radix as u64 * 4)?;
    let scan_totals = ctx.storage_zeroed("sort scan total", 4)?;
    let threads = tiles as u64 * WORKGROUP_SIZE as u64;
    let gather_params = ctx.params([rows, 0, 0, 0])?;
    let mut encoder = ctx.encoder();
    // `cur` is the index buffer holding the current order; None before the first pass
    // (the identity).
    let mut cur: Option<usize> = None;
    for (w, shifts) in passes {
        let mut src = match cur {
            None => Src::Word(*w),
            Some(i) => {
                // This word in the current order, into a free keys buffer.
                let bg = ctx.bind(&gather, &[&gather_params, &words[*w], &index[i], &keys[0]]);
                ctx.dispatch(&mut encoder, &gather, &bg, rows as u64);
                Src::Keys(0)
            }
        };
        for &shift in shifts {
            let input = match src {
                Src::Word(w) => &words[w],
                Src::Keys(k) => &keys[k],
            };
            let out_keys = match src {
                Src::Keys(k) => 1 - k,
                Src::Word(_) => 0,
            };
            let (idx_in, out_idx) = match cur {
                None => (&index[1], 0),
                Some(i) => (&index[i], 1 - i),
            };
            let params = ctx.params([rows, shift, tiles, cur.is_none() as u32])?;
            let bg = ctx.bind(&histogram, &[&params, input, &counts]);
            ctx.dispatch(&mut encoder, &histogram, &bg, threads);
            record_exclusive_scan(ctx, &mut encoder, &counts, tiles * radix, &scan_totals, 0)?;
            let bg = ctx.bind(
                &scatter,
                &[
                    &params,
                    input,
                    idx_in,
                    &counts,
                    &keys[out_keys],
                    &index[out_idx],
                ],
            );
            ctx.dispatch(&mut encoder, &scatter, &bg, threads);
            src = Src::Keys(out_keys);
            cur = Some(out_idx);
        }
    }
    ctx.submit(encoder)?;
    let [a, b] = index;
    Ok(if cur == Some(0) { a } else { b })
}

/// The sorted chunks merged on the GPU: the global row indices of the first `take` rows
/// of the merged order, in output chunks of `out_rows` rows (summing to `take`), none
/// read back. Each chunk's key words are laid out in its order (`sort_merge_keys.wgsl`);
/// each key then finds its place by counting, with a binary search in every other chunk,
/// the keys that come before it (`sort_merge_rank.wgsl`: smaller ones, and equal ones
/// of earlier chunks, so the merge is stable), and goes there
/// (`sort_merge_scatter.wgsl`). `None` where a chunk's key words in order would not fit
/// one binding (the CPU merges then).
fn merge_on_gpu(
    batch: &GpuBatch,
    sorted: &[SortedChunk],
    out_rows: &[u32],
) -> Result<Option<Vec<(wgpu::Buffer, u32)>>> {
    let ctx = &batch.ctx;
    let words = sorted.first().map_or(0, |s| s.words.len()) as u32;
    let binding = ctx.summary.limits.max_storage_buffer_binding_size;
    if words == 0
        || sorted
            .iter()
            .any(|s| s.len as u64 * words as u64 * 4 > binding)
    {
        return Ok(None);
    }
    let start = std::time::Instant::now();
    let out = ctx.scoped(|| {
        let keys_stage =
            ctx.pipeline("sort_merge_keys", || assemble(shader::SORT_MERGE_KEYS, &[]))?;
        let rank = ctx.pipeline("sort_merge_rank", || assemble(shader::SORT_MERGE_RANK, &[]))?;
        let scatter = ctx.pipeline("sort_merge_scatter", || {
            assemble(shader::SORT_MERGE_SCATTER, &[])
        })?;
        let mut recorder = Bounded::new(ctx);
        // Each chunk's key words in its order.
        let mut keys = Vec::with_capacity(sorted.len());
        for s in sorted {
            let k = ctx.storage_zeroed("merge keys", s.len as u64 * words as u64 * 4)?;
            for (w, by_row) in s.words.iter().enumerate().filter(|_| s.len > 0) {
                let params = ctx.params([s.len, words, w as u32, 0])?;
                let bound = ctx.bind(&keys_stage, &[&params, &s.index, by_row, &k]);
                recorder.dispatch(&keys_stage, &bound, s.len as u64)?;
            }
            keys.push(k);
        }
        // Each key's count of the other chunks' keys before it.
        let mut pos = Vec::with_capacity(sorted.len());
        for (r, s) in sorted.iter().enumerate() {
            let p = ctx.storage_zeroed("merge places", s.len as u64 * 4)?;
            for (j, other) in sorted.iter().enumerate() {
                if j == r || s.len == 0 || other.len == 0 {
                    continue;
                }
                let params = ctx.params([s.len, other.len, words, (j < r) as u32])?;
                let bound = ctx.bind(&rank, &[&params, &keys[r], &keys[j], &p]);
                recorder.dispatch(&rank, &bound, s.len as u64)?;
            }
            pos.push(p);
        }
        // Every row to its place, in the output chunk that holds it.
        let mut out = Vec::with_capacity(out_rows.len());
        let mut first = 0u32;
        for &rows in out_rows {
            let order = ctx.storage_zeroed("merged order", rows as u64 * 4)?;
            let mut base = 0u32;
            for (s, p) in sorted.iter().zip(&pos) {
                if s.len > 0 && rows > 0 {
                    let params = ctx.params([s.len, base, first, rows])?;
                    let bound = ctx.bind(&scatter, &[&params, &s.index, p, &order]);
                    recorder.dispatch(&scatter, &bound, s.len as u64)?;
                }
                base += s.rows;
            }
            out.push((order, rows));
            first += rows;
        }
        recorder.submit()?;
        Ok(out)
    })?;
    profile::record(Phase::Kernels, start);
    Ok(Some(out))
}

/// The global row indices of `batch` in key order, the first `limit` of them: downloaded
/// from one chunk, or from the merge of several on the GPU (on the CPU by their key words
/// where a chunk's words don't fit the GPU's merge).
pub(crate) fn sorted_indices(
    batch: &GpuBatch,
    sorted: &[SortedChunk],
    limit: Option<usize>,
) -> Result<Vec<u32>> {
    let ctx = &batch.ctx;
    let total: usize = sorted.iter().map(|s| s.rows as usize).sum();
    let take = limit.map_or(total, |l| l.min(total));
    if sorted.len() == 1 {
        let bytes = ctx.read_many(&[(&sorted[0].index, take as u64 * 4)])?;
        return Ok(bytemuck::pod_collect_to_vec(&bytes[0]));
    }
    let out_rows = super::column::cut_chunks(ctx, "sort", take, &[])?;
    if let Some(order) = merge_on_gpu(batch, sorted, &out_rows)? {
        let parts: Vec<(&wgpu::Buffer, u64)> = order
            .iter()
            .map(|(b, rows)| (b, *rows as u64 * 4))
            .collect();
        let read = ctx.read_many(&parts)?;
        return Ok(read
            .iter()
            .flat_map(|b| bytemuck::pod_collect_to_vec::<u8, u32>(b))
            .collect());
    }
    // Several runs: download each one's order and words, merge by key words.
    let mut parts: Vec<(&wgpu::Buffer, u64)> = Vec::new();
    for s in sorted {
        parts.push((&s.index, s.len as u64 * 4));
        for w in &s.words {
            parts.push((w, s.rows as u64 * 4));
        }
    }
    let mut bytes = ctx.read_many(&parts)?.into_iter();
    let mut runs = Vec::with_capacity(sorted.len());
    let mut base = 0u32;
    for s in sorted {
        let index: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes.next().unwrap_or_default());
        let words: Vec<Vec<u32>> = s
            .words
            .iter()
            .map(|_| bytemuck::pod_collect_to_vec(&bytes.next().unwrap_or_default()))
            .collect();
        runs.push(Run { base, index, words });
        base += s.rows;
    }
    Ok(merge(&runs, take))
}

/// One sorted chunk on the host: its order (local indices) and its key words by row.
struct Run {
    base: u32,
    index: Vec<u32>,
    words: Vec<Vec<u32>>,
}

impl Run {
    fn key(&self, pos: usize) -> impl Iterator<Item = u32> + '_ {
        let row = self.index[pos] as usize;
        self.words.iter().map(move |w| w[row])
    }
}

/// The head of a run in the merge heap: a min-heap on (key words, run number).
struct Head<'a> {
    runs: &'a [Run],
    run: usize,
    pos: usize,
}

impl Ord for Head<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.runs[self.run].key(self.pos);
        let b = other.runs[other.run].key(other.pos);
        // Reversed: BinaryHeap pops the largest.
        b.cmp(a).then(other.run.cmp(&self.run))
    }
}

impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head<'_> {}

/// K-way merge of sorted runs, stable: among equal keys the earlier run (earlier rows)
/// comes first.
fn merge(runs: &[Run], take: usize) -> Vec<u32> {
    let mut heap: BinaryHeap<Head> = (0..runs.len())
        .filter(|&r| !runs[r].index.is_empty())
        .map(|run| Head { runs, run, pos: 0 })
        .collect();
    let mut out = Vec::with_capacity(take);
    while out.len() < take {
        let Some(mut head) = heap.pop() else { break };
        let run = &runs[head.run];
        out.push(run.base + run.index[head.pos]);
        head.pos += 1;
        if head.pos < run.index.len() {
            heap.push(head);
        }
    }
    out
}

/// The width in bits the take kernel moves per row for a layout.
fn width_bits(layout: Layout) -> u32 {
    match layout {
        Layout::Bits => 1,
        Layout::Bytes(w) => w * 8,
        Layout::Strings => unreachable!("strings are gathered by `strings::take_strings`"),
    }
}

/// The most dispatches a take records before it runs them: a take from C chunks into C
/// chunks is C^2 dispatches a column (each output chunk takes from every input chunk), and
/// wgpu holds each one's parameters and bind group until its submission completes (a
/// 135k-row sort in 8 KiB chunks held ~600 MiB in one submission on lavapipe). Below this
/// (chunks of the adapter's binding size, a few dozen per batch) a take is one submission.
const TAKE_DISPATCHES_PER_SUBMIT: usize = 1024;

/// A command encoder that runs what it holds and waits for it after every
/// [`TAKE_DISPATCHES_PER_SUBMIT`] dispatches: for the take and the merge, whose dispatches
/// grow with the square of the chunks.
struct Bounded<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
    recorded: usize,
}

impl<'a> Bounded<'a> {
    fn new(ctx: &'a GpuContext) -> Bounded<'a> {
        Bounded {
            ctx,
            encoder: ctx.encoder(),
            recorded: 0,
        }
    }

    /// Records a dispatch (as [`GpuContext::dispatch`]): past the bound, everything
    /// recorded so far runs and the device frees its parameters and bindings.
    fn dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        bound: &super::Bound,
        threads: u64,
    ) -> Result<()> {
        self.ctx
            .dispatch(&mut self.encoder, pipeline, bound, threads);
        self.recorded += 1;
        if self.recorded >= TAKE_DISPATCHES_PER_SUBMIT {
            let full = std::mem::replace(&mut self.encoder, self.ctx.encoder());
            self.ctx.submit(full)?;
            self.ctx.wait()?;
            self.recorded = 0;
        }
        Ok(())
    }

    /// Submits what is left.
    fn submit(self) -> Result<()> {
        self.ctx.submit(self.encoder)
    }
}

/// Rows `idx` (global indices into `batch`) of every column of `batch`, as a new batch on
/// the GPU; `idx` is given per output chunk, on the GPU.
pub(crate) fn take(batch: &GpuBatch, out_chunks: &[(wgpu::Buffer, u32)]) -> Result<GpuBatch> {
    let ctx = &batch.ctx;
    let start = std::time::Instant::now();
    let out = ctx.scoped(|| {
        let pipeline = ctx.pipeline("take", || assemble(shader::TAKE, &[]))?;
        let mut recorder = Bounded::new(ctx);
        let mut bases = Vec::with_capacity(batch.num_chunks());
        let mut base = 0u32;
        for &rows in &batch.chunk_rows {
            bases.push(base);
            base += rows;
        }
        let take_one = |recorder: &mut Bounded,
                        src: Option<&wgpu::Buffer>,
                        dst: &wgpu::Buffer,
                        idx: &wgpu::Buffer,
                        out_rows: u32,
                        c: usize,
                        width: u32|
         -> Result<()> {
            let flags = width | if src.is_none() { 256 } else { 0 };
            let params = ctx.params([out_rows, bases[c], batch.chunk_rows[c], flags])?;
            let src = src.unwrap_or(idx); // not read when absent
            let bg = ctx.bind(&pipeline, &[&params, src, idx, dst]);
            let threads = if width == 64 {
                out_rows as u64 * 2
            } else {
                (out_rows as u64 * width as u64).div_ceil(32)
            };
            recorder.dispatch(&pipeline, &bg, threads)
        };
        let mut columns = Vec::with_capacity(batch.columns.len());
        for column in &batch.columns {
            let layout = column.layout();
            let nullable = column.chunks.iter().any(|c| c.validity.is_some());
            let mut chunks = Vec::with_capacity(out_chunks.len());
            for (idx, out_rows) in out_chunks {
                let data = if layout == Layout::Strings {
                    let sources: Vec<Source> = column
                        .chunks
                        .iter()
                        .zip(bases.iter().zip(&batch.chunk_rows))
                        .map(|(chunk, (&base, &rows))| Source {
                            data: &chunk.data,
                            base,
                            rows,
                        })
                        .collect();
                    take_strings(ctx, &sources, idx, *out_rows)?
                } else {
                    ctx.storage_zeroed("sorted column", layout.bytes(*out_rows as usize))?
                };
                let validity = if nullable {
                    Some(ctx.storage_zeroed(
                        "sorted validity",
                        Layout::Bits.bytes(*out_rows as usize),
                    )?)
                } else {
                    None
                };
                for (c, chunk) in column.chunks.iter().enumerate() {
                    if *out_rows == 0 || batch.chunk_rows[c] == 0 {
                        continue;
                    }
                    if layout != Layout::Strings {
                        let width = width_bits(layout);
                        take_one(
                            &mut recorder,
                            Some(&chunk.data),
                            &data,
                            idx,
                            *out_rows,
                            c,
                            width,
                        )?;
                    }
                    if let Some(v) = &validity {
                        take_one(
                            &mut recorder,
                            chunk.validity.as_ref(),
                            v,
                            idx,
                            *out_rows,
                            c,
                            1,
                        )?;
                    }
                }
                chunks.push(ColumnChunk { data, validity });
            }
            columns.push(GpuColumn {
                data_type: column.data_type.clone(),
                chunks,
            });
        }
        recorder.submit()?;
        Ok(GpuBatch {
            ctx: ctx.clone(),
            schema: batch.schema.clone(),
            columns,
            chunk_rows: out_chunks.iter().map(|(_, r)| *r).collect(),
        })
    })?;
    profile::record(Phase::Kernels, start);
    Ok(out)
}

/// `batch` sorted by `keys` (the first `limit` rows), on the GPU.
pub(crate) fn sort_batch(batch: &GpuBatch, keys: &[Key], limit: Option<usize>) -> Result<GpuBatch> {
    let ctx = &batch.ctx;
    let sorted = sort_chunks(batch, keys, limit)?;
    let total = batch.num_rows();
    let take_rows = limit.map_or(total, |l| l.min(total));
    let strings = batch.columns.iter().any(|c| c.layout() == Layout::Strings);
    let merged = if sorted.len() > 1 && !strings {
        let out_rows = super::column::cut_chunks(ctx, "sort", take_rows, &[])?;
        merge_on_gpu(batch, &sorted, &out_rows)?
    } else {
        None
    };
    let out_chunks: Vec<(wgpu::Buffer, u32)> = if sorted.len() == 1 {
        // The order never leaves the GPU.
        let s = sorted.into_iter().next().expect("one chunk");
        vec![(s.index, take_rows as u32)]
    } else if let Some(merged) = merged {
        // Merged on the GPU: the order never leaves it either.
        merged
    } else {
        let order = sorted_indices(batch, &sorted, limit)?;
        let mut rest = &order[..];
        output_chunks(batch, &order)?
            .into_iter()
            .map(|rows| {
                let (part, later) = rest.split_at(rows as usize);
                rest = later;
                Ok((
                    ctx.storage_from_bytes("sort order", bytemuck::cast_slice(part))?,
                    rows,
                ))
            })
            .collect::<Result<_>>()?
    };
    take(batch, &out_chunks)
}

/// Rows per output chunk for `batch`'s rows taken in `order`: string columns' bytes cut
/// chunks as on upload (from each chunk's offsets, downloaded), since a sorted chunk draws
/// strings from every input chunk.
fn output_chunks(batch: &GpuBatch, order: &[u32]) -> Result<Vec<u32>> {
    let ctx = &batch.ctx;
    let strings: Vec<usize> = (0..batch.columns.len())
        .filter(|&i| batch.columns[i].layout() == Layout::Strings)
        .collect();
    let mut parts: Vec<(&wgpu::Buffer, u64)> = Vec::new();
    for &i in &strings {
        for (chunk, &rows) in batch.columns[i].chunks.iter().zip(&batch.chunk_rows) {
            parts.push((&chunk.data, (rows as u64 + 1) * 4));
        }
    }
    let mut read = ctx.read_many(&parts)?.into_iter();
    let lengths: Vec<(String, Vec<u64>)> = strings
        .iter()
        .map(|&i| {
            let mut by_row: Vec<u64> = Vec::with_capacity(batch.num_rows());
            for _ in &batch.chunk_rows {
                let offsets: Vec<u32> =
                    bytemuck::pod_collect_to_vec(&read.next().unwrap_or_default());
                by_row.extend(offsets.windows(2).map(|w| (w[1] - w[0]) as u64));
            }
            let in_order = order.iter().map(|&r| by_row[r as usize]).collect();
            (batch.schema.field(i).name().clone(), in_order)
        })
        .collect();
    super::column::cut_chunks(ctx, "sort", order.len(), &lengths)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
    use arrow::compute::SortOptions;

    use super::*;
    use crate::gpu::tests::{spilling_contexts, test_contexts};

    /// A top-k selects before it sorts (fewer rows sorted than the chunk holds) and gives the
    /// first k rows of a stable sort of every row: keys with many ties, a 64-bit key
    /// descending with nulls first (a null word, then two value words), and floats with
    /// NaN, -0.0 and infinities, each at limits from 1 to a quarter of the rows.
    #[test]
    fn a_top_k_selects_the_first_rows_of_a_stable_sort() {
        use arrow::array::{Float64Array, Int64Array};
        // Not a multiple of 32: the last mask word is partial.
        let rows = 60_001u32;
        let hash = |i: u32, m: u64| ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) & m;
        let ties = UInt32Array::from_iter_values((0..rows).map(|i| hash(i, 1023) as u32));
        let wide = Int64Array::from_iter(
            (0..rows).map(|i| (i % 97 != 0).then(|| (hash(i, u64::MAX) as i64) << 16)),
        );
        let floats = Float64Array::from_iter_values((0..rows).map(|i| match i % 1000 {
            0 => f64::NAN,
            1 => -0.0,
            2 => 0.0,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            _ => (hash(i, 0xffff) as f64 - 30_000.0) / 7.0,
        }));
        let batch = RecordBatch::try_from_iter([
            ("ties", Arc::new(ties) as ArrayRef),
            ("wide", Arc::new(wide) as ArrayRef),
            ("floats", Arc::new(floats) as ArrayRef),
        ])
        .unwrap();
        let key = |column, descending, nulls_first| Key {
            column,
            options: SortOptions {
                descending,
                nulls_first,
            },
        };
        let cases = [
            vec![key(0, false, false)],
            vec![key(1, true, true)],
            vec![key(2, false, false)],
            vec![key(2, true, false), key(0, false, false)],
            // Five words (a null word and two for the i64, two for the f64): more than
            // the rank kernel binds, so even a few candidates are radix-sorted.
            vec![key(1, false, false), key(2, true, true)],
        ];
        // The select's 15 workgroups spill into y on the capped contexts (one case there).
        let spilling = spilling_contexts().into_iter().map(|(n, c)| (n, c, true));
        let plain = test_contexts().into_iter().map(|(n, c)| (n, c, false));
        for (name, ctx, spills) in plain.chain(spilling) {
            let whole = GpuBatch::upload(&ctx, &batch).unwrap();
            // Four chunks of 16,384 rows and less, each selected (or, for the largest
            // limit, sorted whole) and merged.
            let chunked = whole.rechunked(16_384).unwrap();
            assert_eq!(chunked.num_chunks(), 4);
            let (cases, limits) = match spills {
                true => (&cases[1..2], &[1_000usize][..]),
                false => (
                    &cases[..],
                    &[0usize, 1, 7, 1_000, rows as usize / 4 - 1][..],
                ),
            };
            for keys in cases {
                for &k in limits {
                    let want = crate::cpu::sort::sort_to_indices(
                        &batch,
                        keys,
                        Some(k),
                        crate::cpu::Threads::ONE,
                    )
                    .unwrap();
                    let sorted = sort_chunks(&whole, keys, Some(k)).unwrap();
                    assert!(
                        (sorted[0].len as usize) >= k && sorted[0].len < rows,
                        "{name} {keys:?} k={k}: sorted {} of {rows} rows",
                        sorted[0].len
                    );
                    let got = sorted_indices(&whole, &sorted, Some(k)).unwrap();
                    assert_eq!(got, want.values().to_vec(), "{name} {keys:?} k={k}");
                    let sorted = sort_chunks(&chunked, keys, Some(k)).unwrap();
                    let got = sorted_indices(&chunked, &sorted, Some(k)).unwrap();
                    assert_eq!(got, want.values().to_vec(), "{name} {keys:?} k={k} chunked");
                }
            }
        }
    }

    /// The histogram and scatter of every pass with their tiles spread over the grid's y
    /// dimension (586 tiles, at most 7 workgroups a row): the same stable order as the
    /// host's.
    #[test]
    fn radix_passes_hold_when_workgroups_spill_into_y() {
        let rows = 300_000u32;
        // Few distinct values, so ties show whether the order is stable.
        let keys: Vec<u32> = (0..rows)
            .map(|i| i.wrapping_mul(2_654_435_761) >> 20)
            .collect();
        let batch = RecordBatch::try_from_iter([(
            "k",
            Arc::new(UInt32Array::from(keys.clone())) as ArrayRef,
        )])
        .unwrap();
        let mut want: Vec<u32> = (0..rows).collect();
        want.sort_by_key(|&i| keys[i as usize]);
        for (name, ctx) in spilling_contexts() {
            let gpu = GpuBatch::upload(&ctx, &batch).unwrap();
            let key = Key {
                column: 0,
                options: SortOptions::default(),
            };
            let sorted = sort_chunks(&gpu, &[key], None).unwrap();
            let got = sorted_indices(&gpu, &sorted, None).unwrap();
            if let Some(at) = (0..want.len()).find(|&i| got[i] != want[i]) {
                panic!(
                    "{name}: position {at} holds row {}, not {}",
                    got[at], want[at]
                );
            }
        }
    }
}
