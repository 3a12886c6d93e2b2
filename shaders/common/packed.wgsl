// Addressing of packed columns: values of `width` bits (1, 8, 16 or 32), 32 / width to a
// u32 word, row 0 in the low bits of word 0.

// The word holding row `l` and the bit where its value starts. Computed as l / per and
// (l % per) * width, never as l * width, which wraps in u32 once l reaches 2^32 / width
// (2^27 rows of a 32-bit column, 2^28 of a 16-bit one): chunks on real GPUs, whose
// bindings reach 4 GiB, hold that many rows.
fn packed_at(l: u32, width: u32) -> vec2<u32> {
    let per = 32u / width;
    return vec2<u32>(l / per, (l % per) * width);
}
