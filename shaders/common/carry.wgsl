// Exact multi-word adds by 32-bit atomics, on whatever words the including shader's
// `state_add(i, v) -> old` adds to (global or workgroup memory).

// Adds `word` plus a carry in to word `i` from `base`; returns the carry out. Whoever
// makes a word overflow sees it in the old value and carries it on, so the total is exact
// whatever the order of the adds.
fn add_at(base: u32, i: u32, word: u32, carry_in: u32) -> u32 {
    let add = word + carry_in;
    var carry = select(0u, 1u, add < word);
    if (add != 0u) {
        let old = state_add(base + i, add);
        carry += select(0u, 1u, old + add < old);
    }
    return carry;
}

// Adds the `n`-word number `v` (least significant word first, n <= 5) to the words from
// `base`, a carry out of the top word dropped (two's complement). Written out word by word:
// constant indices keep `v` in registers (a loop's dynamic index spills it to memory on
// some drivers).
fn add_words_n(base: u32, v: array<u32, 5>, n: u32) {
    var carry = add_at(base, 0u, v[0], 0u);
    if (n > 1u) {
        carry = add_at(base, 1u, v[1], carry);
    }
    if (n > 2u) {
        carry = add_at(base, 2u, v[2], carry);
    }
    if (n > 3u) {
        carry = add_at(base, 3u, v[3], carry);
    }
    if (n > 4u) {
        add_at(base, 4u, v[4], carry);
    }
}
