// Strings in the GPU layout (src/gpu/column.rs): a chunk's buffer holds its rows + 1
// offsets (from 0), then the bytes packed in words, then a spare word, so reading the word
// after a string's last one stays in the buffer.

// The four bytes from byte position `at`, given the word holding that byte (`lo`) and the
// next one (`hi`): bytes of a string that starts anywhere in a word, as a whole word.
fn str_funnel(lo: u32, hi: u32, at: u32) -> u32 {
    let shift = (at & 3u) * 8u;
    if (shift == 0u) {
        return lo;
    }
    return (lo >> shift) | (hi << (32u - shift));
}

// The mask of a word's first `n` bytes (all four when n >= 4).
fn str_tail_mask(n: u32) -> u32 {
    if (n >= 4u) {
        return 0xffffffffu;
    }
    return (1u << (n * 8u)) - 1u;
}
