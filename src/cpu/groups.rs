//! Group numbers for key columns, chunk by chunk, numbers kept across chunks: every key
//! column becomes a code per row (equal codes exactly when the keys are equal, as arrow's
//! row format compares them), the codes are combined by mixed radix into one or a few
//! `u64` words per row, and the words are numbered in order of first appearance, by a
//! direct table when their range is small and by a hash table otherwise. Where string
//! columns meet other key columns, the rows are first numbered by their cell in a grid
//! of the columns' codes, grown as the strings' counts grow, until it would pass the
//! direct table's limit.
//!
//! - Fixed-width columns are coded by subtraction (order word minus the column's smallest,
//!   no hashing; found once, over the whole column).
//! - String and binary columns are numbered by a hash table over their bytes: a value of
//!   up to 16 bytes is held (and compared) in its table entry, a longer one also in an
//!   arena, never compared with a far row of the input. Beyond ~20k values the table is
//!   one flat array whose slots are fetched a block of values ahead.
//! - Keys of other types (nested, dictionary, decimal) are numbered as a whole by their
//!   row-format rows, in the same byte table.
//! - A null is a code of its own in every column.
//!
//! A chunk's buffers (codes, words, group numbers) are reused from chunk to chunk: a
//! group-by of 10M rows in one go allocated hundreds of MB afresh per call, and faulting
//! those pages in cost more than the grouping itself.

use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use hashbrown::{DefaultHashBuilder, HashTable};

use super::keys;
use crate::error::Result;

/// Rows numbered at a time by [`assign`].
pub(crate) const CHUNK_ROWS: usize = 1 << 16;

/// Every row's group and every group's first row, groups in order of first appearance.
pub(crate) fn assign(columns: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>)> {
    assign_in(columns, CHUNK_ROWS)
}

/// [`assign`], `chunk` rows at a time.
fn assign_in(columns: &[ArrayRef], chunk: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    let rows = columns.first().map_or(0, |c| c.len());
    let mut numbering = Numbering::new(columns)?;
    let mut ids = Vec::with_capacity(rows);
    for start in (0..rows).step_by(chunk) {
        let len = chunk.min(rows - start);
        let chunk: Vec<ArrayRef> = columns.iter().map(|c| c.slice(start, len)).collect();
        ids.extend_from_slice(numbering.number(&chunk, |i| (start + i) as u32)?.0);
    }
    Ok((ids, numbering.into_first()))
}

/// How one key column is coded.
enum Coder {
    /// Order word minus `lo`, plus one when `nullable` (a null is 0): below the column's
    /// range of words, plus one for a null.
    Range { lo: u64, nullable: bool },
    /// Numbered by their bytes.
    Bytes(BytesTable),
    /// Every key column at once, numbered by its row-format rows.
    Rows(RowConverter, BytesTable),
}

/// How the words of a row are numbered.
enum Table {
    /// The one coder numbers the rows itself (in order of first appearance).
    Identity,
    /// One word below the table's length: a slot a word.
    Direct(Vec<u32>),
    /// Several coders, some of them byte coders (whose counts are known only as they
    /// number): a slot a cell of their codes' grid, grown as the counts grow, and made a
    /// hash table once the grid would pass the direct table's limit.
    Grid(Grid),
    One(WordTable<1>),
    Two(WordTable<2>),
    /// More words: each group's words in `keys`, `words` a group.
    Many {
        table: HashTable<(u64, u32)>,
        keys: Vec<u64>,
        hasher: DefaultHashBuilder,
    },
}

/// Group numbers of key rows fed a chunk at a time (slices or gathers of the columns
/// [`Numbering::new`] was given), in order of first appearance across all chunks.
pub(crate) struct Numbering {
    /// Each coder, its radix (how many codes it has, bounded) and the word it goes into.
    coders: Vec<(Coder, u128, usize)>,
    words: usize,
    table: Table,
    first: Vec<u32>,
    codes: Vec<u64>,
    row_words: Vec<u64>,
    ids: Vec<u32>,
    /// 1 when group 0 is a sink for rows not selected (see [`Numbering::with_sink`]).
    offset: usize,
}

impl Numbering {
    /// [`Numbering::with_groups`] for one partition of the rows: group 0 is a sink that
    /// every row not selected goes to (its "first row" `u32::MAX`), and the keys' groups
    /// are numbered from 1, so that per-group state can be updated for every row of a
    /// chunk without a branch and the sink's dropped at the end.
    pub(crate) fn with_sink(columns: &[ArrayRef], expected: usize) -> Result<Numbering> {
        let mut numbering = Numbering::with_groups(columns, expected)?;
        numbering.offset = 1;
        numbering.first.push(u32::MAX);
        if let Table::Many { keys, .. } = &mut numbering.table {
            keys.resize(numbering.words, 0);
        }
        Ok(numbering)
    }

    /// A numbering for rows of `columns` (the whole columns: fixed-width ranges are found
    /// over them).
    pub(crate) fn new(columns: &[ArrayRef]) -> Result<Numbering> {
        Numbering::with_groups(columns, 0)
    }

    /// [`Numbering::new`] with room for `expected` groups from the start: a hash table
    /// grown step by step to 10M groups copies itself ~20 times. A hashbrown table writes
    /// only its control bytes when made; a [`WordTable`] is written in full (about 27
    /// bytes a group for one word), so the estimate should not be far above the rows.
    pub(crate) fn with_groups(columns: &[ArrayRef], expected: usize) -> Result<Numbering> {
        let rows = columns.first().map_or(0, |c| c.len());
        let codable = codable(columns);
        let mut coders: Vec<(Coder, u128)> = Vec::new();
        if codable {
            for column in columns {
                coders.push(if is_bytes(column.data_type()) {
                    (Coder::Bytes(BytesTable::new()), 1 << 32)
                } else {
                    let nullable = column.logical_null_count() > 0;
                    let (lo, hi) = word_range(column.as_ref()).unwrap_or((0, 0));
                    let card = (hi - lo) as u128 + 1 + nullable as u128;
                    (Coder::Range { lo, nullable }, card)
                });
            }
        }
        // A code beyond 64 bits (every u64 word and a null): the row format for all.
        if !codable || coders.iter().any(|(_, card)| *card > 1 << 64) {
            coders.clear();
            let fields = columns
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect();
            coders.push((
                Coder::Rows(RowConverter::new(fields)?, BytesTable::new()),
                1 << 32,
            ));
        }
        // Mixed radix into u64 words, a new word when the next code would overflow one.
        let mut placed = Vec::with_capacity(coders.len());
        let (mut words, mut product) = (0usize, u128::MAX);
        for (coder, radix) in coders {
            if product.saturating_mul(radix) > 1 << 64 {
                words += 1;
                product = 1;
            }
            product *= radix;
            placed.push((coder, radix, words - 1));
        }
        let identity = placed.len() == 1 && !matches!(placed[0].0, Coder::Range { .. });
        if identity {
            if let Coder::Bytes(t) | Coder::Rows(_, t) = &mut placed[0].0 {
                t.reserve(expected);
            }
        }
        // A grid where byte coders meet others whose fixed counts leave it room.
        let grid = (placed.len() > 1 && placed.iter().any(|c| matches!(c.0, Coder::Bytes(_))))
            .then(|| Grid::new(&placed, direct_limit(rows)))
            .flatten();
        let table = if identity {
            Table::Identity
        } else if let Some(grid) = grid {
            Table::Grid(grid)
        } else if words == 1 && product <= direct_limit(rows) as u128 {
            Table::Direct(vec![u32::MAX; product as usize])
        } else {
            hash_table(words, expected)
        };
        Ok(Numbering {
            coders: placed,
            words,
            table,
            first: Vec::with_capacity(expected),
            codes: Vec::new(),
            row_words: Vec::new(),
            ids: Vec::new(),
            offset: 0,
        })
    }

    /// Each group's first row (as the chunks' `row` gave it).
    pub(crate) fn into_first(self) -> Vec<u32> {
        self.first
    }

    /// The group of every row of `columns` (a chunk of the key columns), numbering new
    /// keys on, and the groups so far; `row(i)` is row `i`'s row in the whole input,
    /// recorded as a new group's first row.
    pub(crate) fn number(
        &mut self,
        columns: &[ArrayRef],
        row: impl Fn(usize) -> u32,
    ) -> Result<(&[u32], usize)> {
        self.number_rows(columns, row, None)
    }

    /// [`Numbering::number`] of the rows `selected` lists (ascending, within the chunk),
    /// the others in group 0 (for a numbering [`Numbering::with_sink`] made): only the
    /// listed rows are looked up, and no step branches on a row's partition.
    pub(crate) fn number_selected(
        &mut self,
        columns: &[ArrayRef],
        row: impl Fn(usize) -> u32,
        selected: &[u32],
    ) -> Result<(&[u32], usize)> {
        debug_assert_eq!(self.offset, 1, "a numbering with a sink");
        self.number_rows(columns, row, Some(selected))
    }

    fn number_rows(
        &mut self,
        columns: &[ArrayRef],
        row: impl Fn(usize) -> u32,
        selected: Option<&[u32]>,
    ) -> Result<(&[u32], usize)> {
        let rows = columns.first().map_or(0, |c| c.len());
        let Numbering {
            coders,
            words,
            table,
            first,
            codes,
            row_words,
            ids,
            offset,
        } = self;
        let offset = *offset;
        let words = *words;
        ids.clear();
        ids.resize(rows, 0);
        if let Table::Identity = table {
            // A lone byte coder numbers the rows' groups itself.
            let mut groups = Groups {
                ids: ids.as_mut_slice(),
                first,
                row: &row,
                offset: offset as u32,
            };
            code_bytes(&mut coders[0].0, columns, 0, &mut groups, selected)?;
            return Ok((ids.as_slice(), first.len()));
        }
        row_words.clear();
        // One coder of one word: its codes are the words (no pass to combine them).
        let alone = coders.len() == 1;
        if let Table::Grid(grid) = table {
            // Every coder's codes first: a byte coder's count is known once it numbered.
            for (j, (coder, _, _)) in coders.iter_mut().enumerate() {
                code_chunk(coder, columns, j, &mut grid.codes[j], selected)?;
            }
            if grid.make_room(coders) {
                grid.cells_into(row_words);
            } else {
                // Beyond the limit: the groups so far into a hash table, by their words.
                let hashed = grid.to_hash(coders, words, first.len());
                let grid = std::mem::replace(table, hashed);
                let Table::Grid(grid) = grid else {
                    unreachable!("the grid")
                };
                row_words.clear();
                row_words.resize(rows * words, 0);
                for ((_, radix, word), codes) in coders.iter().zip(&grid.codes) {
                    fold_codes(row_words, codes, (*radix as u64, *word, words));
                }
            }
        } else {
            if !alone {
                row_words.resize(rows * words, 0);
            }
            for (j, (coder, radix, word)) in coders.iter_mut().enumerate() {
                code_chunk(coder, columns, j, codes, selected)?;
                if alone {
                    std::mem::swap(codes, row_words);
                    break;
                }
                fold_codes(row_words, codes, (*radix as u64, *word, words));
            }
        }
        let n = selected.map_or(rows, |s| s.len());
        let at = |k: usize| selected.map_or(k, |s| s[k] as usize);
        let new_group = |first: &mut Vec<u32>, r: usize| {
            first.push(row(r));
            (first.len() - 1) as u32
        };
        match table {
            Table::Identity => unreachable!("numbered by its coder"),
            Table::Direct(slots) | Table::Grid(Grid { slots, .. }) if selected.is_none() => {
                // Every row, in a loop of slices (the vectors' fields are not reloaded
                // each row).
                let slots = slots.as_mut_slice();
                for (r, (&w, id)) in row_words.iter().zip(ids.iter_mut()).enumerate() {
                    let s = &mut slots[w as usize];
                    if *s == u32::MAX {
                        *s = new_group(first, r);
                    }
                    *id = *s;
                }
            }
            Table::Direct(slots) | Table::Grid(Grid { slots, .. }) => {
                for k in 0..n {
                    let r = at(k);
                    let s = &mut slots[row_words[r] as usize];
                    if *s == u32::MAX {
                        *s = new_group(first, r);
                    }
                    ids[r] = *s;
                }
            }
            Table::One(t) => t.number(row_words, first, ids, &row, (n, at)),
            Table::Two(t) => t.number(row_words, first, ids, &row, (n, at)),
            Table::Many {
                table,
                keys,
                hasher,
            } => {
                for k in 0..n {
                    let r = at(k);
                    let w = &row_words[r * words..][..words];
                    let hash = hasher.hash_one(w);
                    let found = table.find(hash, |&(h, g)| {
                        h == hash && &keys[g as usize * words..][..words] == w
                    });
                    ids[r] = match found {
                        Some(&(_, g)) => g,
                        None => {
                            let g = new_group(first, r);
                            keys.extend_from_slice(w);
                            table.insert_unique(hash, (hash, g), |&(h, _)| h);
                            g
                        }
                    };
                }
            }
        }
        Ok((ids.as_slice(), first.len()))
    }
}

/// Folds one coder's `codes` into its word of every row (`words` a row): the word so far
/// times the coder's radix plus its code.
fn fold_codes(row_words: &mut [u64], codes: &[u64], (radix, word, words): (u64, usize, usize)) {
    for (r, &c) in codes.iter().enumerate() {
        let w = &mut row_words[r * words + word];
        *w = w.wrapping_mul(radix).wrapping_add(c);
    }
}

/// An empty hash table for keys of `words` words, room for `expected` groups.
fn hash_table(words: usize, expected: usize) -> Table {
    match words {
        1 => Table::One(WordTable::with_groups(expected, seeds())),
        2 => Table::Two(WordTable::with_groups(expected, seeds())),
        _ => Table::Many {
            table: HashTable::with_capacity(expected),
            keys: Vec::with_capacity(expected * words),
            hasher: DefaultHashBuilder::default(),
        },
    }
}

/// A direct table over the cells of the coders' codes, row-major (the first coder's code
/// most significant): each coder's extent is its radix when fixed, and for a byte coder
/// the power of two at or above its count, doubled (and every group moved to its new
/// cell) as its count passes it. h2o's `id1, id2` (two columns of 100 strings) is 16,384
/// cells looked up directly, where their words were hashed.
struct Grid {
    /// Each coder's extent: its codes are below it.
    dims: Vec<u64>,
    /// Each cell's group (`u32::MAX`: none).
    slots: Vec<u32>,
    /// The most cells.
    limit: u64,
    /// Each coder's codes of the chunk.
    codes: Vec<Vec<u64>>,
}

impl Grid {
    /// A grid for `coders` of at most `limit` cells, `None` when their fixed radices alone
    /// pass it.
    fn new(coders: &[(Coder, u128, usize)], limit: u64) -> Option<Grid> {
        let dims: Vec<u64> = coders
            .iter()
            .map(|(c, radix, _)| match c {
                Coder::Range { .. } => u64::try_from(*radix).ok(),
                _ => Some(1),
            })
            .collect::<Option<_>>()?;
        let cells = Grid::cells(&dims)?;
        (cells <= limit).then(|| Grid {
            slots: vec![u32::MAX; cells as usize],
            codes: vec![Vec::new(); dims.len()],
            dims,
            limit,
        })
    }

    /// The cells of a grid of extents `dims` (`None`: beyond 64 bits).
    fn cells(dims: &[u64]) -> Option<u64> {
        dims.iter().try_fold(1u64, |p, &d| p.checked_mul(d))
    }

    /// Each byte coder's count of codes.
    fn counts(coders: &[(Coder, u128, usize)]) -> impl Iterator<Item = Option<u64>> + '_ {
        coders.iter().map(|(c, _, _)| match c {
            Coder::Bytes(t) => Some(t.spans.len() as u64),
            _ => None,
        })
    }

    /// Room for every code the coders have given (the groups moved to their cells in the
    /// wider grid); `false` (the grid unchanged) when that would pass the limit.
    fn make_room(&mut self, coders: &[(Coder, u128, usize)]) -> bool {
        let dims: Vec<u64> = Grid::counts(coders)
            .zip(&self.dims)
            .map(|(count, &d)| match count {
                Some(n) if n > d => n.next_power_of_two(),
                _ => d,
            })
            .collect();
        if dims == self.dims {
            return true;
        }
        let Some(cells) = Grid::cells(&dims) else {
            return false;
        };
        if cells > self.limit {
            return false;
        }
        let mut slots = vec![u32::MAX; cells as usize];
        for (cell, g) in self.groups() {
            let mut at = 0;
            for (c, d) in cell.iter().zip(&dims) {
                at = at * d + c;
            }
            slots[at as usize] = g;
        }
        (self.dims, self.slots) = (dims, slots);
        true
    }

    /// Every group and its codes.
    fn groups(&self) -> impl Iterator<Item = (Vec<u64>, u32)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, &g)| g != u32::MAX)
            .map(|(mut at, &g)| {
                let mut cell = vec![0; self.dims.len()];
                for (c, &d) in cell.iter_mut().zip(&self.dims).rev() {
                    *c = at as u64 % d;
                    at /= d as usize;
                }
                (cell, g)
            })
    }

    /// Every row's cell into `cells`.
    fn cells_into(&self, cells: &mut Vec<u64>) {
        cells.clear();
        cells.resize(self.codes.first().map_or(0, |c| c.len()), 0);
        for (codes, &d) in self.codes.iter().zip(&self.dims) {
            fold_codes(cells, codes, (d, 0, 1));
        }
    }

    /// The groups so far (of `groups`, group `g` at its number) in a hash table of their
    /// words as the coders place them (`words` a key).
    fn to_hash(&self, coders: &[(Coder, u128, usize)], words: usize, groups: usize) -> Table {
        let mut table = hash_table(words, groups);
        let key = |cell: &[u64]| {
            let mut key = vec![0u64; words];
            for ((_, radix, word), &c) in coders.iter().zip(cell) {
                key[*word] = key[*word].wrapping_mul(*radix as u64).wrapping_add(c);
            }
            key
        };
        match &mut table {
            Table::One(t) => self
                .groups()
                .for_each(|(c, g)| t.insert_numbered(&key(&c), g)),
            Table::Two(t) => self
                .groups()
                .for_each(|(c, g)| t.insert_numbered(&key(&c), g)),
            Table::Many {
                table,
                keys,
                hasher,
            } => {
                keys.resize(groups * words, 0);
                for (c, g) in self.groups() {
                    let k = key(&c);
                    let hash = hasher.hash_one(&k[..]);
                    keys[g as usize * words..][..words].copy_from_slice(&k);
                    table.insert_unique(hash, (hash, g), |&(h, _)| h);
                }
            }
            _ => unreachable!("a hash table"),
        }
        table
    }
}

/// Every row's partition among `count` (at most 255), by a hash of its key: equal keys
/// (as the numbering tells them) in one partition, keys spread evenly. Computed in
/// contiguous pieces on `threads`. `None` when a key column is neither bytes nor has
/// order words.
pub(crate) fn partitions(
    keys: &[ArrayRef],
    count: usize,
    threads: super::Threads,
) -> Result<Option<Vec<u8>>> {
    const NULL: u64 = 0x243f_6a88_85a3_08d3;
    const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
    if !codable(keys) {
        return Ok(None);
    }
    let rows = keys.first().map_or(0, |k| k.len());
    // One hasher state for every piece: equal bytes hash alike on every thread.
    let hasher = DefaultHashBuilder::default();
    let pieces = threads.map_pieces(rows, |start, len| {
        let mut h = vec![NULL; len];
        let mut words = Vec::new();
        for key in keys {
            let column = key.slice(start, len);
            let nulls = column.logical_nulls().filter(|n| n.null_count() > 0);
            let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
            let mut mix = |i: usize, x: u64| h[i] = fold(h[i] ^ x, MIX);
            if is_bytes(column.data_type()) {
                for_each_bytes(column.as_ref(), |i, v| {
                    mix(i, if valid(i) { hasher.hash_one(v) } else { NULL })
                });
            } else {
                words.clear();
                keys::order_words_into(column.as_ref(), &mut words).expect("order words");
                for (i, &w) in words.iter().enumerate() {
                    mix(i, if valid(i) { w } else { NULL });
                }
            }
        }
        Ok(h.into_iter()
            .map(|h| ((h as u128 * count as u128) >> 64) as u8)
            .collect::<Vec<u8>>())
    })?;
    Ok(Some(pieces.concat()))
}

/// Calls `f(i, bytes)` with every row of a string or binary column (a null's bytes are
/// whatever its slot holds).
fn for_each_bytes(column: &dyn Array, mut f: impl FnMut(usize, &[u8])) {
    use DataType as D;
    match column.data_type() {
        D::Utf8 => {
            let a = column.as_string::<i32>();
            (0..a.len()).for_each(|i| f(i, a.value(i).as_bytes()))
        }
        D::LargeUtf8 => {
            let a = column.as_string::<i64>();
            (0..a.len()).for_each(|i| f(i, a.value(i).as_bytes()))
        }
        D::Binary => {
            let a = column.as_binary::<i32>();
            (0..a.len()).for_each(|i| f(i, a.value(i)))
        }
        D::LargeBinary => {
            let a = column.as_binary::<i64>();
            (0..a.len()).for_each(|i| f(i, a.value(i)))
        }
        D::Utf8View => {
            let a = column.as_string_view();
            (0..a.len()).for_each(|i| f(i, a.value(i).as_bytes()))
        }
        D::BinaryView => {
            let a = column.as_binary_view();
            (0..a.len()).for_each(|i| f(i, a.value(i)))
        }
        other => unreachable!("not a byte column: {other}"),
    }
}

/// Tables bigger than this are probed a few rows ahead (about the size of a core's L2).
const PREFETCH_BYTES: usize = 1 << 20;

/// Two random words for a [`WordTable`]'s hash (a table's own, so that no input can be
/// chosen to collide everywhere).
fn seeds() -> [u64; 2] {
    let state = DefaultHashBuilder::default();
    [state.hash_one(1u8), state.hash_one(2u8) | 1]
}

/// The 128-bit product of `a` and `b`, its halves xor-ed: a hash step that mixes every
/// bit of `a` into the low bits.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    (p as u64) ^ (p >> 64) as u64
}

/// Keys of `W` words numbered by open addressing: linear probing in one flat array of
/// `W + 1` words a slot (the key, then its group plus one; 0: empty), at most 5/8 full;
/// probed a few rows ahead: at millions of groups every probe misses the caches, and a
/// table that knows where a row's slot is can ask for it early, so that the misses overlap
/// (hashbrown's `entry` gives no such address, and its inserts stalled on each).
struct WordTable<const W: usize> {
    slots: Vec<u64>,
    mask: usize,
    len: usize,
    seeds: [u64; 2],
}

impl<const W: usize> WordTable<W> {
    /// Rows ahead whose slots are prefetched.
    const AHEAD: usize = 16;

    /// A table with room for `groups` groups.
    fn with_groups(groups: usize, seeds: [u64; 2]) -> WordTable<W> {
        let cap = (groups.saturating_mul(8) / 5 + 1)
            .next_power_of_two()
            .max(16);
        // Written, not merely allocated zeroed: a zero page first read by a probe and then
        // written by an insert faults twice, and with other threads running the second
        // fault flushes every core's TLB.
        #[allow(clippy::slow_vector_initialization)] // the writes are the point
        let slots = {
            let mut slots = Vec::with_capacity(cap * (W + 1));
            slots.resize(cap * (W + 1), 0);
            slots
        };
        WordTable {
            slots,
            mask: cap - 1,
            len: 0,
            seeds,
        }
    }

    #[inline(always)]
    fn slot_of(&self, key: &[u64]) -> usize {
        let h = if W == 1 {
            fold(key[0] ^ self.seeds[0], self.seeds[1])
        } else {
            let mut h = key[0] ^ self.seeds[0];
            for &k in &key[1..] {
                h = fold(fold(h, 0x9e37_79b9_7f4a_7c15) ^ k, self.seeds[1]);
            }
            h
        };
        h as usize & self.mask
    }

    /// Adds `key`, new to the table, as group `g`.
    fn insert_numbered(&mut self, key: &[u64], g: u32) {
        let mut i = self.slot_of(key);
        while self.slots[i * (W + 1) + W] != 0 {
            i = (i + 1) & self.mask;
        }
        let slot = &mut self.slots[i * (W + 1)..][..W + 1];
        slot[..W].copy_from_slice(key);
        slot[W] = g as u64 + 1;
        self.len += 1;
        self.grow_if_full();
    }

    /// Twice the room, once the table is more than 5/8 full.
    fn grow_if_full(&mut self) {
        let cap = self.mask + 1;
        if self.len * 8 <= cap * 5 {
            return;
        }
        let mut bigger = WordTable::with_groups(cap, self.seeds);
        for slot in self.slots.chunks_exact(W + 1) {
            if slot[W] != 0 {
                let mut i = bigger.slot_of(&slot[..W]);
                while bigger.slots[i * (W + 1) + W] != 0 {
                    i = (i + 1) & bigger.mask;
                }
                bigger.slots[i * (W + 1)..][..W + 1].copy_from_slice(slot);
            }
        }
        bigger.len = self.len;
        *self = bigger;
    }

    /// Numbers rows of `W` words each (`row_words`), the `n` rows `at(k)` for `k < n`,
    /// new keys after the `first.len()` groups so far (this table's), writing each row's
    /// group into `ids` and appending each new group's first row (`row(r)`) to `first`.
    fn number(
        &mut self,
        row_words: &[u64],
        first: &mut Vec<u32>,
        ids: &mut [u32],
        row: &impl Fn(usize) -> u32,
        (n, at): (usize, impl Fn(usize) -> usize),
    ) {
        for k in 0..n {
            if self.slots.len() * 8 > PREFETCH_BYTES && k + Self::AHEAD < n {
                let ahead = self.slot_of(&row_words[at(k + Self::AHEAD) * W..][..W]);
                crate::prefetch(&self.slots[ahead * (W + 1)]);
            }
            let r = at(k);
            let key = &row_words[r * W..][..W];
            let mut i = self.slot_of(key);
            let g = loop {
                let slot = &mut self.slots[i * (W + 1)..][..W + 1];
                if slot[W] == 0 {
                    slot[..W].copy_from_slice(key);
                    first.push(row(r));
                    slot[W] = first.len() as u64;
                    self.len += 1;
                    break first.len() - 1;
                }
                if slot[..W] == *key {
                    break slot[W] as usize - 1;
                }
                i = (i + 1) & self.mask;
            };
            self.grow_if_full();
            ids[r] = g as u32;
        }
    }
}

/// Codes column `j` of a chunk (or, for the row coder, all of them) into `out`. With
/// `selected`, a byte column looks up only the rows listed (the others get code 0, never
/// used).
fn code_chunk(
    coder: &mut Coder,
    columns: &[ArrayRef],
    j: usize,
    out: &mut Vec<u64>,
    selected: Option<&[u32]>,
) -> Result<()> {
    out.clear();
    let column = &columns[j];
    match coder {
        Coder::Range { lo, nullable } => {
            // The order words in place, then each made its code.
            keys::order_words_into(column.as_ref(), out).expect("a fixed-width key");
            let lo = *lo;
            match column.logical_nulls().filter(|n| n.null_count() > 0) {
                None => {
                    let plus = *nullable as u64;
                    out.iter_mut().for_each(|w| *w = w.wrapping_sub(lo) + plus);
                }
                Some(n) => out.iter_mut().zip(n.iter()).for_each(|(w, valid)| {
                    *w = if valid { w.wrapping_sub(lo) + 1 } else { 0 };
                }),
            }
        }
        Coder::Bytes(_) | Coder::Rows(..) => {
            out.resize(column.len(), 0);
            code_bytes(coder, columns, j, out.as_mut_slice(), selected)?;
        }
    }
    Ok(())
}

/// [`code_chunk`] of a byte coder or the row coder, each row's code put into `out`.
fn code_bytes<O: Codes + ?Sized>(
    coder: &mut Coder,
    columns: &[ArrayRef],
    j: usize,
    out: &mut O,
    selected: Option<&[u32]>,
) -> Result<()> {
    let column = &columns[j];
    match coder {
        Coder::Range { .. } => unreachable!("a byte coder"),
        Coder::Bytes(table) => {
            let nulls = column.logical_nulls().filter(|n| n.null_count() > 0);
            table.number_column(column.as_ref(), nulls.as_ref(), out, selected)
        }
        Coder::Rows(converter, table) => {
            let rows = converter.convert_columns(columns)?;
            // Only the selected rows: a row of another partition numbered here would take
            // a code, and the partition's own codes would no longer be its groups'.
            let n = selected.map_or(rows.num_rows(), |s| s.len());
            let at = |k: usize| selected.map_or(k, |s| s[k] as usize);
            table.number((0..n).map(|k| (at(k), Some(rows.row(at(k)).data()))), out);
        }
    }
    Ok(())
}

/// Where a [`BytesTable`] puts each row's code.
trait Codes {
    fn put(&mut self, r: usize, code: u32);
}

impl Codes for [u64] {
    #[inline(always)]
    fn put(&mut self, r: usize, code: u32) {
        self[r] = code as u64;
    }
}

/// A lone byte coder's codes put as the rows' groups (after `offset` groups before the
/// keys'), with no pass of their own: its codes come in order of first appearance, so a
/// code one past the groups so far is a new group, whose first row is `row(r)`.
struct Groups<'a, F> {
    ids: &'a mut [u32],
    first: &'a mut Vec<u32>,
    row: F,
    offset: u32,
}

impl<F: Fn(usize) -> u32> Codes for Groups<'_, F> {
    #[inline(always)]
    fn put(&mut self, r: usize, code: u32) {
        let g = code + self.offset;
        if g as usize == self.first.len() {
            self.first.push((self.row)(r));
        }
        self.ids[r] = g;
    }
}

/// The smallest and largest order word among `column`'s valid values (`None`: none).
fn word_range(column: &dyn Array) -> Option<(u64, u64)> {
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let mut words = Vec::with_capacity(CHUNK_ROWS.min(column.len()));
    for start in (0..column.len()).step_by(CHUNK_ROWS) {
        let piece = column.slice(start, CHUNK_ROWS.min(column.len() - start));
        words.clear();
        keys::order_words_into(piece.as_ref(), &mut words)?;
        match piece.logical_nulls().filter(|n| n.null_count() > 0) {
            None => {
                // Eight lanes, so that no row waits on the row before.
                let (mut los, mut his) = ([u64::MAX; 8], [0u64; 8]);
                let lanes = words.chunks_exact(8);
                for &w in lanes.remainder() {
                    lo = lo.min(w);
                    hi = hi.max(w);
                }
                for lane in lanes {
                    for k in 0..8 {
                        los[k] = los[k].min(lane[k]);
                        his[k] = his[k].max(lane[k]);
                    }
                }
                lo = los.into_iter().fold(lo, u64::min);
                hi = his.into_iter().fold(hi, u64::max);
            }
            Some(n) => n.valid_indices().for_each(|i| {
                lo = lo.min(words[i]);
                hi = hi.max(words[i]);
            }),
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// The most words numbered by a direct table: no more slots than rows (the table is then
/// no bigger than the group numbers written), and never above 64 MiB of slots.
fn direct_limit(rows: usize) -> u64 {
    (rows.max(1 << 12) as u64).min(1 << 24)
}

/// Whether every column is coded on its own (bytes or order words), not as row-format rows.
fn codable(columns: &[ArrayRef]) -> bool {
    columns
        .iter()
        .all(|c| is_bytes(c.data_type()) || keys::has_order_words(c.data_type()))
}

/// Whether columns of `dt` are numbered by their bytes.
fn is_bytes(dt: &DataType) -> bool {
    use DataType as D;
    matches!(
        dt,
        D::Utf8 | D::Binary | D::LargeUtf8 | D::LargeBinary | D::Utf8View | D::BinaryView
    )
}

/// A byte string's length and two words that, with the length, are the string itself
/// up to 16 bytes (the first and last 8 bytes, overlapping; shorter ones in pieces), and
/// its first and last 8 bytes beyond.
#[inline(always)]
fn fingerprint(v: &[u8]) -> (u64, u64) {
    let n = v.len();
    let word = |at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
    let half = |at: usize| u32::from_le_bytes(v[at..at + 4].try_into().unwrap()) as u64;
    match n {
        0 => (0, 0),
        1..=3 => (
            v[0] as u64 | (v[n / 2] as u64) << 8 | (v[n - 1] as u64) << 16,
            0,
        ),
        4..=7 => (half(0) | half(n - 4) << 32, 0),
        _ => (word(0), word(n - 8)),
    }
}

/// A distinct value of a [`BytesTable`]: its hash, number plus one (0: an empty slot of
/// a flat table), length and [`fingerprint`], in the table's own slot, so that most
/// lookups read one slot (two a cache line).
#[derive(Clone, Copy, Default)]
struct Entry {
    hash: u64,
    number: u32,
    len: u32,
    head: (u64, u64),
}

/// Where a [`BytesTable`]'s entries are.
enum Slots {
    /// hashbrown's table while the values are few (its slots fit the caches): one
    /// probe of a group of tags, where linear probing's loop mispredicts at each collision.
    Near(HashTable<Entry>),
    /// Beyond: one flat array probed linearly (at most 5/8 full), whose slot of a value
    /// is known from its hash alone, so that it can be fetched early.
    Far { slots: Vec<Entry>, mask: usize },
}

/// Byte strings numbered in order of first appearance, found by their hash: a value of
/// up to 16 bytes is compared within its entry, a longer one also with its copy in an
/// arena; a null is a number of its own. Beyond the caches (100k distinct values) each
/// probe missed them, one after another: there the values are hashed a block at a time
/// and their slots fetched before the block is probed.
struct BytesTable {
    hasher: DefaultHashBuilder,
    slots: Slots,
    arena: Vec<u8>,
    /// Each number's value in `arena` (empty for a null and for values of up to 16
    /// bytes, which their entry holds).
    spans: Vec<(usize, usize)>,
    null: Option<u32>,
}

/// Whether `e` is the entry of `v`, whose hash, length and fingerprint are `key`: a value
/// of up to 16 bytes is its length and fingerprint, a longer one is compared with its
/// copy in `arena` (at its number's span).
#[inline(always)]
fn same(
    e: &Entry,
    (hash, len, head): (u64, u32, (u64, u64)),
    v: &[u8],
    arena: &[u8],
    spans: &[(usize, usize)],
) -> bool {
    e.hash == hash
        && e.len == len
        && e.head == head
        && (len <= 16 || {
            let (start, n) = spans[e.number as usize - 1];
            arena[start..start + n] == *v
        })
}

impl BytesTable {
    /// Values hashed, and their slots fetched, at a time in a flat table.
    const BLOCK: usize = 16;
    /// Values beyond which the entries move to a flat table: its slots would outgrow
    /// [`PREFETCH_BYTES`].
    const NEAR_VALUES: usize = PREFETCH_BYTES / size_of::<Entry>() * 5 / 8;

    fn new() -> BytesTable {
        BytesTable {
            hasher: DefaultHashBuilder::default(),
            slots: Slots::Near(HashTable::new()),
            arena: Vec::new(),
            spans: Vec::new(),
            null: None,
        }
    }

    /// Room for `values` distinct values without growing.
    fn reserve(&mut self, values: usize) {
        match &mut self.slots {
            Slots::Near(table) if values <= Self::NEAR_VALUES => table.reserve(values, |e| e.hash),
            _ => self.make_far(values),
        }
    }

    /// Every entry moved into a flat table of room for `values` values (if bigger).
    fn make_far(&mut self, values: usize) {
        let cap = (values.saturating_mul(8) / 5 + 1)
            .next_power_of_two()
            .max(16);
        let old = match &mut self.slots {
            Slots::Far { slots, .. } if slots.len() >= cap => return,
            Slots::Far { slots, .. } => std::mem::take(slots),
            Slots::Near(table) => std::mem::take(table).into_iter().collect(),
        };
        // Written, not merely allocated zeroed (see `WordTable::with_groups`).
        #[allow(clippy::slow_vector_initialization)] // the writes are the point
        let mut slots = {
            let mut slots = Vec::with_capacity(cap);
            slots.resize(cap, Entry::default());
            slots
        };
        let mask = cap - 1;
        for e in old.into_iter().filter(|e| e.number != 0) {
            let mut i = e.hash as usize & mask;
            while slots[i].number != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = e;
        }
        self.slots = Slots::Far { slots, mask };
    }

    /// Numbers a string or binary column's values into `out` (as long as the column):
    /// every row's, or the `selected` rows' only.
    fn number_column<O: Codes + ?Sized>(
        &mut self,
        column: &dyn Array,
        nulls: Option<&NullBuffer>,
        out: &mut O,
        selected: Option<&[u32]>,
    ) {
        let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
        let n = selected.map_or(column.len(), |s| s.len());
        let at = |k: usize| selected.map_or(k, |s| s[k] as usize);
        use DataType as D;
        match column.data_type() {
            D::Utf8 => {
                let a = column.as_string::<i32>();
                let v = |i: usize| (i, valid(i).then(|| a.value(i).as_bytes()));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            D::LargeUtf8 => {
                let a = column.as_string::<i64>();
                let v = |i: usize| (i, valid(i).then(|| a.value(i).as_bytes()));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            D::Binary => {
                let a = column.as_binary::<i32>();
                let v = |i: usize| (i, valid(i).then(|| a.value(i)));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            D::LargeBinary => {
                let a = column.as_binary::<i64>();
                let v = |i: usize| (i, valid(i).then(|| a.value(i)));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            D::Utf8View => {
                let a = column.as_string_view();
                let v = |i: usize| (i, valid(i).then(|| a.value(i).as_bytes()));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            D::BinaryView => {
                let a = column.as_binary_view();
                let v = |i: usize| (i, valid(i).then(|| a.value(i)));
                self.number((0..n).map(|k| v(at(k))), out)
            }
            other => unreachable!("not a byte column: {other}"),
        }
    }

    /// Numbers `values` (rows and their values, `None`: null) into `out` at their rows, in
    /// order. While the table is near, a value at a time; in a flat table, a block at a
    /// time (see [`BytesTable::number_far`]).
    fn number<'a, O: Codes + ?Sized>(
        &mut self,
        mut values: impl Iterator<Item = (usize, Option<&'a [u8]>)>,
        out: &mut O,
    ) {
        while let Slots::Near(table) = &mut self.slots {
            let Some((r, v)) = values.next() else {
                return;
            };
            let Some(v) = v else {
                out.put(r, self.null_number());
                continue;
            };
            let hash = self.hasher.hash_one(v);
            let (len, head) = (v.len() as u32, fingerprint(v));
            let (arena, spans) = (&self.arena, &self.spans);
            let found = table.find(hash, |e| same(e, (hash, len, head), v, arena, spans));
            let code = match found {
                Some(e) => e.number - 1,
                None => {
                    let entry = self.next_entry(v, hash);
                    let Slots::Near(table) = &mut self.slots else {
                        unreachable!()
                    };
                    table.insert_unique(hash, entry, |e| e.hash);
                    self.grown();
                    entry.number - 1
                }
            };
            out.put(r, code);
        }
        self.number_far(values, out)
    }

    /// [`BytesTable::number`] in a flat table: a block at a time, the next block's values
    /// hashed and their slots fetched before this block's are probed, so that the fetches
    /// overlap each other and the probing.
    #[inline(never)]
    fn number_far<'a, O: Codes + ?Sized>(
        &mut self,
        mut values: impl Iterator<Item = (usize, Option<&'a [u8]>)>,
        out: &mut O,
    ) {
        type Block<'a> = Vec<(usize, Option<&'a [u8]>, u64)>;
        let fill =
            |table: &BytesTable,
             block: &mut Block<'a>,
             values: &mut dyn Iterator<Item = (usize, Option<&'a [u8]>)>| {
                block.clear();
                let Slots::Far { slots, mask } = &table.slots else {
                    unreachable!("a flat table stays flat")
                };
                for (r, v) in values.take(Self::BLOCK) {
                    let hash = v.map_or(0, |v| table.hasher.hash_one(v));
                    crate::prefetch(&slots[hash as usize & mask]);
                    block.push((r, v, hash));
                }
            };
        let (mut block, mut next): (Block<'a>, Block<'a>) = Default::default();
        fill(self, &mut block, &mut values);
        while !block.is_empty() {
            fill(self, &mut next, &mut values);
            for &(r, v, hash) in &block {
                let Some(v) = v else {
                    out.put(r, self.null_number());
                    continue;
                };
                let (len, head) = (v.len() as u32, fingerprint(v));
                let Slots::Far { slots, mask } = &mut self.slots else {
                    unreachable!("a flat table stays flat")
                };
                let mut i = hash as usize & *mask;
                let mut found = None;
                while slots[i].number != 0 {
                    if same(&slots[i], (hash, len, head), v, &self.arena, &self.spans) {
                        found = Some(slots[i].number - 1);
                        break;
                    }
                    i = (i + 1) & *mask;
                }
                let code = match found {
                    Some(n) => n,
                    None => {
                        let entry = self.next_entry(v, hash);
                        let Slots::Far { slots, .. } = &mut self.slots else {
                            unreachable!("a flat table stays flat")
                        };
                        slots[i] = entry;
                        self.grown();
                        entry.number - 1
                    }
                };
                out.put(r, code);
            }
            std::mem::swap(&mut block, &mut next);
        }
    }

    /// The entry of `v` (hash `hash`) as the next number, its value kept in the arena
    /// when its entry can't hold it.
    fn next_entry(&mut self, v: &[u8], hash: u64) -> Entry {
        let number = self.spans.len() as u32;
        if v.len() > 16 {
            self.spans.push((self.arena.len(), v.len()));
            self.arena.extend_from_slice(v);
        } else {
            self.spans.push((self.arena.len(), 0));
        }
        Entry {
            hash,
            number: number + 1,
            len: v.len() as u32,
            head: fingerprint(v),
        }
    }

    /// After a value was added: twice the room beyond 5/8 of a flat table's slots (a
    /// null's number, counted too, holds no slot), and a near table made flat beyond its
    /// values.
    fn grown(&mut self) {
        let values = self.spans.len();
        match &self.slots {
            Slots::Near(_) if values > Self::NEAR_VALUES => self.make_far(values),
            Slots::Far { slots, .. } if values * 8 > slots.len() * 5 => self.make_far(values),
            _ => {}
        }
    }

    /// The number of a null, the next number when no null came before.
    fn null_number(&mut self) -> u32 {
        let BytesTable {
            arena, spans, null, ..
        } = self;
        *null.get_or_insert_with(|| {
            spans.push((arena.len(), 0));
            (spans.len() - 1) as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, LargeBinaryArray, StringArray,
        StringViewArray, UInt8Array,
    };
    use proptest::prelude::*;

    use super::*;

    /// A key column of one of several kinds, from `seed`: `kind` picks the type and the
    /// spread of values (narrow, wide, near 2^31 so that products overflow), with nulls.
    fn column(kind: u8, rows: usize, seed: u64) -> ArrayRef {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 24
        };
        let mut cells: Vec<(bool, u64)> = (0..rows).map(|_| (next() % 7 != 0, next())).collect();
        if kind.is_multiple_of(2) {
            // No nulls in every other kind.
            cells.iter_mut().for_each(|c| c.0 = true);
        }
        let pick = |v: &[(bool, u64)], f: &dyn Fn(u64) -> u64| -> Vec<Option<u64>> {
            v.iter().map(|&(ok, x)| ok.then(|| f(x))).collect()
        };
        let strings = |f: &dyn Fn(u64) -> String| -> Vec<Option<String>> {
            cells.iter().map(|&(ok, x)| ok.then(|| f(x))).collect()
        };
        match kind % 19 {
            // Words up to 2^63: with another key, just past one u64 word.
            18 => Arc::new(arrow::array::UInt64Array::from_iter(
                pick(&cells, &|x| x % 3)
                    .into_iter()
                    .map(|v| v.map(|x| [0, 1 << 62, 1 << 63][x as usize])),
            )),
            16 => Arc::new(
                pick(&cells, &|x| x % 5)
                    .into_iter()
                    .map(|v| v.map(|x| ["a", "bb", "", "a\0", "ccc"][x as usize]))
                    .collect::<arrow::array::DictionaryArray<arrow::datatypes::Int32Type>>(),
            ),
            17 => Arc::new(Int64Array::from_iter(
                pick(&cells, &|x| x % 3)
                    .into_iter()
                    .map(|v| v.map(|x| [i64::MIN, 0, i64::MAX][x as usize])),
            )),
            0 | 1 => Arc::new(Int64Array::from_iter(
                pick(&cells, &|x| x % 9)
                    .into_iter()
                    .map(|v| v.map(|x| x as i64 - 4)),
            )),
            2 | 3 => Arc::new(Int64Array::from_iter(
                pick(&cells, &|x| x)
                    .into_iter()
                    .map(|v| v.map(|x| ((x % 5) as i64 - 2) * (i64::MAX / 2))),
            )),
            4 | 5 => Arc::new(Int64Array::from_iter(
                pick(&cells, &|x| x % 3)
                    .into_iter()
                    .map(|v| v.map(|x| (x as i64) << 30)),
            )),
            6 | 7 => {
                let specials = [
                    0.0,
                    -0.0,
                    f64::NAN,
                    -f64::NAN,
                    f64::INFINITY,
                    1.5,
                    -1.5,
                    1e300,
                ];
                Arc::new(Float64Array::from_iter(
                    pick(&cells, &|x| x % 8)
                        .into_iter()
                        .map(|v| v.map(|x| specials[x as usize])),
                ))
            }
            8 | 9 => Arc::new(BooleanArray::from_iter(
                pick(&cells, &|x| x % 2)
                    .into_iter()
                    .map(|v| v.map(|x| x == 1)),
            )),
            10 | 11 => Arc::new(StringArray::from(strings(&|x| {
                // Lengths 0..=24, equal lengths differing anywhere.
                let len = (x % 25) as usize;
                (0..len)
                    .map(|i| if (x >> 5) % 25 == i as u64 { 'b' } else { 'a' })
                    .collect()
            }))),
            12 | 13 => Arc::new(StringViewArray::from(strings(&|x| format!("k{}", x % 40)))),
            14 => Arc::new(LargeBinaryArray::from_iter(
                pick(&cells, &|x| x % 4)
                    .into_iter()
                    .map(|v| v.map(|x| vec![0u8; x as usize])),
            )),
            _ => {
                let a = Date32Array::from_iter(
                    pick(&cells, &|x| x % 6)
                        .into_iter()
                        .map(|v| v.map(|x| x as i32 * 1000)),
                );
                Arc::new(UInt8Array::from_iter(
                    a.iter().map(|d| d.map(|d| (d / 1000) as u8)),
                ))
            }
        }
    }

    proptest! {
        /// Numbered by codes exactly as by row-format rows: the same group for every row
        /// and the same first rows, over every kind of key, several columns, and slices.
        #[test]
        fn codes_number_as_rows_do(
            kinds in proptest::collection::vec(any::<u8>(), 1..7),
            rows in 0usize..400,
            offset in 0usize..5,
            seed in any::<u64>(),
            chunk in 1usize..80,
        ) {
            let columns: Vec<ArrayRef> = kinds
                .iter()
                .enumerate()
                .map(|(i, &k)| column(k, rows + offset, seed ^ i as u64).slice(offset, rows))
                .collect();
            let rows = keys::rows(&keys::ascending(&columns)).unwrap();
            let expected = super::super::group_by::number_into(&mut hashbrown::HashMap::new(), rows.iter());
            prop_assert_eq!(assign_in(&columns, chunk).unwrap(), expected.clone());
            prop_assert_eq!(assign(&columns).unwrap(), expected);
        }
    }

    /// Byte coders' grid numbers as the row format does: growing as the columns' counts
    /// grow, then passing the limit (6,000 cells here) into a hash table of one, two or
    /// three words, chunk by chunk; and with a sink, numbering every third row only.
    #[test]
    fn grids_number_as_rows_do() {
        let rows = 6_000;
        // Values spread wider further on, so the counts grow chunk by chunk.
        let strings = |salt: u64, step: u64| -> ArrayRef {
            Arc::new(StringArray::from_iter((0..rows as u64).map(|r| {
                let spread = 2 + r / step;
                let x = (r * 2654435761 + salt * 97) % spread;
                (x % 11 != 3).then(|| format!("s{x}"))
            })))
        };
        let ints: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..rows as i64).map(|r| (r % 13 != 0).then_some(r % 5)),
        ));
        let sets: [Vec<ArrayRef>; 4] = [
            vec![strings(1, 40), strings(2, 40)],
            vec![ints.clone(), strings(3, 4)],
            vec![strings(4, 4), strings(5, 4), strings(6, 4)],
            (0..5).map(|salt| strings(salt, 350)).collect(),
        ];
        for columns in &sets {
            let key_rows = keys::rows(&keys::ascending(columns)).unwrap();
            let mut map = hashbrown::HashMap::new();
            let expected = super::super::group_by::number_into(&mut map, key_rows.iter());
            assert_numbered_then_hashed(columns, &expected);
            // With a sink: every third row numbered, from group 1.
            let picked: Vec<u32> = (0..rows as u32).step_by(3).collect();
            let mut map = hashbrown::HashMap::new();
            let (ids, first) = super::super::group_by::number_into(
                &mut map,
                picked.iter().map(|&r| key_rows.row(r as usize)),
            );
            let mut numbering = Numbering::with_sink(columns, 0).unwrap();
            let mut got = vec![u32::MAX; rows];
            for start in (0..rows).step_by(500) {
                let chunk: Vec<ArrayRef> = columns.iter().map(|c| c.slice(start, 500)).collect();
                let selected: Vec<u32> = (0..500u32)
                    .filter(|i| (start as u32 + i).is_multiple_of(3))
                    .collect();
                let (chunk_ids, _) = numbering
                    .number_selected(&chunk, |i| (start + i) as u32, &selected)
                    .unwrap();
                for &i in &selected {
                    got[start + i as usize] = chunk_ids[i as usize];
                }
            }
            let got: Vec<u32> = picked.iter().map(|&r| got[r as usize] - 1).collect();
            assert_eq!(got, ids, "{} columns", columns.len());
            let want: Vec<u32> = [u32::MAX]
                .into_iter()
                .chain(first.iter().map(|&f| picked[f as usize]))
                .collect();
            assert_eq!(numbering.into_first(), want);
        }
    }

    /// [`assign_in`] of `columns` in chunks of 700 rows gives `expected`, and the grid
    /// became a hash table on the way.
    fn assert_numbered_then_hashed(columns: &[ArrayRef], expected: &(Vec<u32>, Vec<u32>)) {
        assert_eq!(&assign_in(columns, 700).unwrap(), expected);
        let mut numbering = Numbering::new(columns).unwrap();
        assert!(matches!(numbering.table, Table::Grid(_)));
        numbering.number(columns, |i| i as u32).unwrap();
        assert!(
            !matches!(numbering.table, Table::Grid(_)),
            "{} columns",
            columns.len()
        );
    }

    /// Numbered as a map in order of first appearance numbers them, through the near
    /// table, its move to a flat one and the flat one's growth, fed in pieces of uneven
    /// length (blocks cut anywhere): nulls, values of 0 to 40 bytes, and long values of
    /// one length alike but for a middle byte (one fingerprint: their entries hold the
    /// same length and ends). Broken once (a flat table's entries moved to the wrong
    /// slots on growth), it failed.
    #[test]
    fn a_flat_table_numbers_as_a_map_does() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 24
        };
        let values: Vec<Option<Vec<u8>>> = (0..300_000)
            .map(|_| {
                let x = next();
                let id = (x >> 8) % 120_000;
                (x % 53 != 0).then(|| {
                    let len = (id % 41) as usize;
                    let mut v = vec![b'x'; len];
                    let digits = id.to_le_bytes();
                    // Short values carry the id from the front, long ones in the middle.
                    let at = if len > 16 { 8 } else { 0 };
                    let room = len.saturating_sub(2 * at).min(3);
                    v[at..at + room].copy_from_slice(&digits[..room]);
                    v
                })
            })
            .collect();
        let mut map = std::collections::HashMap::new();
        let expected: Vec<u64> = values
            .iter()
            .map(|v| {
                let n = map.len() as u64;
                *map.entry(v.clone()).or_insert(n)
            })
            .collect();
        assert!(
            map.len() > 2 * BytesTable::NEAR_VALUES,
            "{} values",
            map.len()
        );
        for reserved in [0, 200_000] {
            let mut t = BytesTable::new();
            t.reserve(reserved);
            let mut out = vec![u64::MAX; values.len()];
            let (mut start, mut piece) = (0, 1);
            while start < values.len() {
                let end = (start + piece).min(values.len());
                let rows = (start..end).map(|r| (r, values[r].as_deref()));
                t.number(rows, out.as_mut_slice());
                (start, piece) = (end, piece * 3 + 7);
            }
            assert!(matches!(t.slots, Slots::Far { .. }));
            assert_eq!(out, expected, "reserved {reserved}");
        }
    }

    #[test]
    fn fingerprints_tell_short_values_apart() {
        // Up to 16 bytes a value is its length and fingerprint: any one byte changed
        // changes the fingerprint.
        for n in 0..=16usize {
            let a: Vec<u8> = (0..n as u8).map(|b| b + 1).collect();
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert_ne!(fingerprint(&a), fingerprint(&b), "length {n}, byte {at}");
            }
        }
        // Beyond, equal fingerprints and lengths are compared in full.
        let mut t = BytesTable::new();
        let mut out = Vec::new();
        let long = |mid: u8| [[7u8; 8].as_slice(), &[mid], &[9u8; 8]].concat();
        let values = [long(1), long(2), long(1), b"abc".to_vec(), b"abd".to_vec()];
        out.resize(values.len() + 1, 0);
        t.number(
            values
                .iter()
                .map(|v| Some(v.as_slice()))
                .chain([None])
                .enumerate(),
            out.as_mut_slice(),
        );
        assert_eq!(out, [0, 1, 0, 2, 3, 4]);
    }
}
