//! Group numbers for key columns, column by column: every key column becomes a dense code
//! per row (equal codes exactly when the keys are equal, as arrow's row format compares
//! them), the codes of several columns are combined by mixed radix into one `u64` per
//! row, and the combined codes are numbered in order of first appearance, by a direct
//! table when they are few and by a hash table otherwise.
//!
//! - Fixed-width columns whose order words span a small range are coded by subtraction
//!   (`word - min`, no hashing); others by a hash table of their words.
//! - String and binary columns are numbered by a hash table over their bytes, each
//!   distinct value kept once in an arena (compared there, not with a far row of the
//!   input), short values compared as two machine words.
//! - A null is a code of its own in every column.
//!
//! When the product of the columns' code counts would overflow a `u64`, the combined codes
//! so far are renumbered densely first (at most one code per row), so any number of
//! columns combines. A column of another type (nested, dictionary, decimal) sends the
//! whole key to the caller's row-format path: [`assign`] returns `None`.

use std::hash::BuildHasher;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::DataType;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use super::keys;

/// Every row's group and every group's first row, groups in order of first appearance;
/// `None` when a column is of a type coded only by the row format, or when every column
/// is fixed-width and one spans too wide a range for a code by subtraction (one hash of
/// the packed words then does better than a hash a column and one more).
pub(crate) fn assign(columns: &[ArrayRef]) -> Option<(Vec<u32>, Vec<u32>)> {
    let rows = columns.first()?.len();
    let hash_wide = columns.iter().any(|c| is_bytes(c.data_type()));
    let mut combined: Option<(Vec<u64>, u64)> = None;
    let mut codes = Vec::new();
    for column in columns {
        let coded = code(column.as_ref(), hash_wide, &mut codes)?;
        if columns.len() == 1 {
            if let Coded::Numbered(first) = coded {
                return Some((codes, first));
            }
        }
        let card = coded.card();
        combined = Some(match combined.take() {
            None => (codes.iter().map(|&c| c as u64).collect(), card),
            Some((mut acc, acc_card)) => {
                let acc_card = match acc_card.checked_mul(card) {
                    Some(_) => acc_card,
                    None => {
                        // Dense first: at most one code a row, and a column's codes fit
                        // a u32, so the product fits now.
                        let (ids, first) = number_hashed(acc.iter().copied());
                        for (a, id) in acc.iter_mut().zip(ids) {
                            *a = id as u64;
                        }
                        first.len() as u64
                    }
                };
                for (a, &c) in acc.iter_mut().zip(&codes) {
                    *a = *a * card + c as u64;
                }
                (acc, acc_card * card)
            }
        });
    }
    let (acc, card) = combined?;
    debug_assert_eq!(acc.len(), rows);
    Some(if card <= direct_limit(rows) {
        number_direct(&acc, card as usize)
    } else {
        number_hashed(acc.into_iter())
    })
}

/// The most codes numbered by a direct table: no more slots than rows (the table is then
/// no bigger than the group numbers written), and never above 64 MiB of slots.
fn direct_limit(rows: usize) -> u64 {
    (rows.max(1 << 12) as u64).min(1 << 24)
}

/// How a column was coded into its codes.
enum Coded {
    /// Codes below this bound (a range, with a code for null).
    Range(u64),
    /// Codes numbered in order of first appearance: the first row of each.
    Numbered(Vec<u32>),
}

impl Coded {
    /// How many codes there may be.
    fn card(&self) -> u64 {
        match self {
            Coded::Range(card) => *card,
            Coded::Numbered(first) => first.len() as u64,
        }
    }
}

/// Whether columns of `dt` are numbered by their bytes.
fn is_bytes(dt: &DataType) -> bool {
    use DataType as D;
    matches!(
        dt,
        D::Utf8 | D::Binary | D::LargeUtf8 | D::LargeBinary | D::Utf8View | D::BinaryView
    )
}

/// Codes `column` into `out` (cleared first), or `None` for a type it does not code (or a
/// fixed-width column too wide for a code by subtraction, unless `hash_wide`).
fn code(column: &dyn Array, hash_wide: bool, out: &mut Vec<u32>) -> Option<Coded> {
    out.clear();
    let nulls = column.logical_nulls().filter(|n| n.null_count() > 0);
    let nulls = nulls.as_ref();
    use DataType as D;
    Some(match column.data_type() {
        D::Utf8 => {
            let a = column.as_string::<i32>();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i).as_bytes(), out))
        }
        D::LargeUtf8 => {
            let a = column.as_string::<i64>();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i).as_bytes(), out))
        }
        D::Binary => {
            let a = column.as_binary::<i32>();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i), out))
        }
        D::LargeBinary => {
            let a = column.as_binary::<i64>();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i), out))
        }
        D::Utf8View => {
            let a = column.as_string_view();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i).as_bytes(), out))
        }
        D::BinaryView => {
            let a = column.as_binary_view();
            Coded::Numbered(number_bytes(a.len(), nulls, |i| a.value(i), out))
        }
        _ => {
            let (words, _) = keys::order_words(column)?;
            code_words(&words, nulls, hash_wide, out)?
        }
    })
}

/// Codes order words: by subtraction when their range (and a code for null) fits a u32,
/// else numbered by a hash table (or `None` unless `hash_wide`).
fn code_words(
    words: &[u64],
    nulls: Option<&NullBuffer>,
    hash_wide: bool,
    out: &mut Vec<u32>,
) -> Option<Coded> {
    let valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    match nulls {
        None => {
            for &w in words {
                lo = lo.min(w);
                hi = hi.max(w);
            }
        }
        Some(n) => {
            for i in n.valid_indices() {
                lo = lo.min(words[i]);
                hi = hi.max(words[i]);
            }
        }
    }
    let null_code = nulls.is_some() as u64;
    if lo > hi {
        // Every row null (or none at all): one code.
        out.resize(words.len(), 0);
        return Some(Coded::Range(1));
    }
    let span = hi - lo;
    if span < u32::MAX as u64 - null_code {
        match nulls {
            None => out.extend(words.iter().map(|&w| (w - lo) as u32)),
            Some(_) => out.extend(words.iter().enumerate().map(|(i, &w)| {
                if valid(i) {
                    (w - lo + 1) as u32
                } else {
                    0
                }
            })),
        }
        return Some(Coded::Range(span + 1 + null_code));
    }
    if !hash_wide {
        return None;
    }
    let (ids, first) = match nulls {
        // Nulls apart from every word: the word's 64 bits and a bit above.
        Some(_) => {
            number_hashed(
                words
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| if valid(i) { w as u128 } else { 1 << 64 }),
            )
        }
        None => number_hashed(words.iter().copied()),
    };
    *out = ids;
    Some(Coded::Numbered(first))
}

/// Numbers codes below `card` in order of first appearance by a table with a slot a code.
fn number_direct(codes: &[u64], card: usize) -> (Vec<u32>, Vec<u32>) {
    let mut slot = vec![u32::MAX; card];
    let mut first = Vec::new();
    let ids = codes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let s = &mut slot[c as usize];
            if *s == u32::MAX {
                *s = first.len() as u32;
                first.push(i as u32);
            }
            *s
        })
        .collect();
    (ids, first)
}

/// Numbers keys in order of first appearance by a hash table.
fn number_hashed<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> (Vec<u32>, Vec<u32>) {
    super::group_by::number_into(&mut HashMap::new(), keys)
}

/// Numbers `rows` byte strings (`value(i)`; null where `nulls` says) in order of first
/// appearance into `out`; returns each number's first row. Nulls are one number.
fn number_bytes<'a>(
    rows: usize,
    nulls: Option<&NullBuffer>,
    value: impl Fn(usize) -> &'a [u8],
    out: &mut Vec<u32>,
) -> Vec<u32> {
    let hasher = DefaultHashBuilder::default();
    // (hash, number) of every distinct value; the values themselves in `arena`.
    let mut table: HashTable<(u64, u32)> = HashTable::new();
    let mut arena: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut first: Vec<u32> = Vec::new();
    let mut null_number: Option<u32> = None;
    out.reserve(rows);
    for i in 0..rows {
        if nulls.is_some_and(|n| n.is_null(i)) {
            let n = *null_number.get_or_insert_with(|| {
                first.push(i as u32);
                spans.push((arena.len(), 0));
                (first.len() - 1) as u32
            });
            out.push(n);
            continue;
        }
        let v = value(i);
        let hash = hasher.hash_one(v);
        let found = table.find(hash, |&(h, n)| {
            let (start, len) = spans[n as usize];
            h == hash && same_bytes(&arena[start..start + len], v)
        });
        let n = match found {
            Some(&(_, n)) => n,
            None => {
                let n = first.len() as u32;
                first.push(i as u32);
                spans.push((arena.len(), v.len()));
                arena.extend_from_slice(v);
                table.insert_unique(hash, (hash, n), |&(h, _)| h);
                n
            }
        };
        out.push(n);
    }
    first
}

/// Byte equality with short values (up to 16 bytes, most keys) compared as two
/// overlapping 8-byte words, or smaller pieces, without a call.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
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
        match kind % 16 {
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
            kinds in proptest::collection::vec(any::<u8>(), 1..5),
            rows in 0usize..400,
            offset in 0usize..5,
            seed in any::<u64>(),
        ) {
            let columns: Vec<ArrayRef> = kinds
                .iter()
                .enumerate()
                .map(|(i, &k)| column(k, rows + offset, seed ^ i as u64).slice(offset, rows))
                .collect();
            let rows = keys::rows(&keys::ascending(&columns)).unwrap();
            let expected = super::super::group_by::number_into(&mut HashMap::new(), rows.iter());
            if let Some(got) = assign(&columns) {
                prop_assert_eq!(got, expected);
            } else {
                // Only all fixed-width keys with a wide one are left to the caller.
                prop_assert!(columns.iter().all(|c| !is_bytes(c.data_type())));
            }
        }
    }

    #[test]
    fn short_bytes_compare_every_position() {
        for n in 0..=20usize {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert!(!same_bytes(&a, &b), "length {n}, byte {at}");
            }
            assert!(!same_bytes(&a, &[a.as_slice(), &[0]].concat()));
        }
    }
}
