// Integer values as the exact sums of a group-by add them (needs int64): a value of up to
// 64 bits widened to two's complement, and its square as a five-word number.
#import int64

// `w += v << (32 * at)` on a local five-word number (carries kept inside it).
fn add_wide(w: ptr<function, array<u32, 5>>, at: u32, v: vec2<u32>) {
    var carry = 0u;
    for (var i = at; i < 5u; i++) {
        var add = carry;
        carry = 0u;
        if (i == at) {
            add = v.x;
        }
        if (i == at + 1u) {
            add = v.y + add;
            carry = select(0u, 1u, add < v.y);
        }
        let old = (*w)[i];
        (*w)[i] = old + add;
        carry += select(0u, 1u, old + add < old);
        if (i > at && carry == 0u) {
            break;
        }
    }
}

// The `width`-bit value in the low bits of `raw` (width < 64) as a 64-bit two's-complement
// number, sign- or zero-extended.
fn widen(raw: u32, width: u32, signed: bool) -> vec2<u32> {
    if (signed) {
        let lo = bitcast<u32>(extractBits(bitcast<i32>(raw), 0u, width));
        return vec2<u32>(lo, select(0u, 0xffffffffu, (lo & 0x80000000u) != 0u));
    }
    return vec2<u32>(raw, 0u);
}

// A 64-bit value as the three words of a 96-bit sum's addend (sign-extended when signed).
fn addend96(v: vec2<u32>, signed: bool) -> array<u32, 5> {
    let top = select(0u, 0xffffffffu, signed && (v.y & 0x80000000u) != 0u);
    return array<u32, 5>(v.x, v.y, top, 0u, 0u);
}

// A 128-bit value (four words) as the five words of a 160-bit sum's addend.
fn addend160(w0: u32, w1: u32, w2: u32, w3: u32) -> array<u32, 5> {
    let top = select(0u, 0xffffffffu, (w3 & 0x80000000u) != 0u);
    return array<u32, 5>(w0, w1, w2, w3, top);
}

// The square of a 64-bit value (two's complement when signed) as a five-word number.
fn square5(value: vec2<u32>, signed: bool) -> array<u32, 5> {
    var v = value;
    if (signed && (v.y & 0x80000000u) != 0u) {
        v = u64_neg(v);
    }
    // (hi·2^32 + lo)² = lo² + 2·hi·lo·2^32 + hi²·2^64.
    let cross = mul_wide(v.x, v.y);
    let low = mul_wide(v.x, v.x);
    var w = array<u32, 5>(low.x, low.y, 0u, 0u, 0u);
    add_wide(&w, 1u, cross);
    add_wide(&w, 1u, cross);
    add_wide(&w, 2u, mul_wide(v.y, v.y));
    return w;
}
