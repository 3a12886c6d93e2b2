// Order keys: unsigned integers whose order is the IEEE 754 total order of the floats they
// come from (-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < NaN), as arrow-rs's `total_cmp`.
// Negative floats have every bit flipped; positive ones only the sign bit.

fn f32_key(bits: u32) -> u32 {
    return select(bits ^ 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

fn f64_key(bits: vec2<u32>) -> vec2<u32> {
    if ((bits.y & 0x80000000u) != 0u) {
        return ~bits;
    }
    return vec2<u32>(bits.x, bits.y ^ 0x80000000u);
}
