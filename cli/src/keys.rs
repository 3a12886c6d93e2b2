//! A set of row-format keys, for the streamed distinct: the keys' bytes back to back in one
//! buffer and a hash table of their numbers. A key costs its bytes and about 17 more (a
//! `HashSet<Box<[u8]>>` spends some 50 on allocation headers and fat pointers), which is
//! what bounds memory when nearly every row is distinct.

use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};

#[derive(Default)]
pub struct KeySet {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`; it starts where the one before it ends.
    ends: Vec<usize>,
    /// Key numbers, hashed by their bytes.
    table: HashTable<usize>,
    hasher: DefaultHashBuilder,
}

fn key_at<'a>(bytes: &'a [u8], ends: &[usize], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &bytes[start..ends[i]]
}

impl KeySet {
    /// The number of keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The number of `key` (keys are numbered from 0 as they are first inserted), and
    /// whether it is new.
    pub fn insert(&mut self, key: &[u8]) -> (usize, bool) {
        let hash = self.hasher.hash_one(key);
        let KeySet {
            bytes,
            ends,
            table,
            hasher,
        } = self;
        let entry = table.entry(
            hash,
            |&i| key_at(bytes, ends, i) == key,
            |&i| hasher.hash_one(key_at(bytes, ends, i)),
        );
        match entry {
            Entry::Occupied(o) => (*o.get(), false),
            Entry::Vacant(v) => {
                let number = ends.len();
                v.insert(number);
                bytes.extend_from_slice(key);
                ends.push(bytes.len());
                (number, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keys_in_order_of_first_insertion() {
        let mut set = KeySet::default();
        let mut reference: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        for i in 0..5000u32 {
            // Keys of 1 to 3 bytes, many repeated, some prefixes of others.
            let key = (i % 1234).to_le_bytes()[..(i % 3 + 1) as usize].to_vec();
            let new = !reference.contains_key(&key);
            let next = reference.len();
            let want = *reference.entry(key.clone()).or_insert(next);
            assert_eq!(set.insert(&key), (want, new));
        }
        assert_eq!(set.len(), reference.len());
        assert!(set.insert(b"").1);
        assert_eq!(set.insert(b""), (reference.len(), false));
    }
}
