// 128-bit two's-complement integers in four 32-bit words (low word first), for decimals:
// arrow's Decimal128 values, whose `+ - *` are checked (an overflow of 128 bits is an
// error, never a wrapped value).
#import int64

fn i128_from_i64(v: vec2<u32>) -> vec4<u32> {
    let sign = select(0u, 0xffffffffu, (v.y & 0x80000000u) != 0u);
    return vec4<u32>(v.x, v.y, sign, sign);
}

fn i128_from_i32(v: i32) -> vec4<u32> {
    let sign = select(0u, 0xffffffffu, v < 0);
    return vec4<u32>(bitcast<u32>(v), sign, sign, sign);
}

fn i128_negative(a: vec4<u32>) -> bool {
    return (a.w & 0x80000000u) != 0u;
}

// Wrapping a + b.
fn i128_add(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    var out: vec4<u32>;
    var carry = 0u;
    for (var i = 0u; i < 4u; i++) {
        let s = a[i] + b[i];
        let c1 = select(0u, 1u, s < a[i]);
        let t = s + carry;
        let c2 = select(0u, 1u, t < s);
        out[i] = t;
        carry = c1 + c2;
    }
    return out;
}

// Wrapping -a.
fn i128_neg(a: vec4<u32>) -> vec4<u32> {
    return i128_add(~a, vec4<u32>(1u, 0u, 0u, 0u));
}

fn i128_cmp(a: vec4<u32>, b: vec4<u32>) -> i32 {
    let an = i128_negative(a);
    if (an != i128_negative(b)) {
        return select(1, -1, an);
    }
    for (var i = 3; i >= 0; i--) {
        if (a[i] != b[i]) {
            return select(-1, 1, a[i] > b[i]);
        }
    }
    return 0;
}

// A checked result: the value (wrapped) and whether it overflowed 128 bits.
struct I128 {
    v: vec4<u32>,
    overflow: bool,
}

fn i128_add_checked(a: vec4<u32>, b: vec4<u32>) -> I128 {
    let r = i128_add(a, b);
    let an = i128_negative(a);
    return I128(r, an == i128_negative(b) && an != i128_negative(r));
}

fn i128_sub_checked(a: vec4<u32>, b: vec4<u32>) -> I128 {
    let r = i128_add(a, i128_neg(b));
    let an = i128_negative(a);
    return I128(r, an != i128_negative(b) && an != i128_negative(r));
}

// a * b, checked: the magnitudes' full product must fit 127 bits (or be 2^127 exactly when
// the result is negative).
fn i128_mul_checked(a: vec4<u32>, b: vec4<u32>) -> I128 {
    let neg = i128_negative(a) != i128_negative(b);
    let x = select(a, i128_neg(a), i128_negative(a));
    let y = select(b, i128_neg(b), i128_negative(b));
    // The 256-bit product of x and y (magnitudes up to 2^127) by 32-bit words.
    var p: array<u32, 8>;
    for (var i = 0u; i < 4u; i++) {
        var carry = 0u;
        for (var j = 0u; j < 4u; j++) {
            let m = mul_wide(x[i], y[j]);
            // p[i + j] + m.x + carry, and the carry into the next word.
            let s = p[i + j] + m.x;
            var c = m.y + select(0u, 1u, s < p[i + j]);
            let t = s + carry;
            c += select(0u, 1u, t < s);
            p[i + j] = t;
            carry = c;
        }
        p[i + 4u] = carry;
    }
    let m = vec4<u32>(p[0], p[1], p[2], p[3]);
    let high = (p[4] | p[5] | p[6] | p[7]) != 0u;
    let top = (m.w & 0x80000000u) != 0u;
    // 2^127 exactly is representable only as a negative result.
    let min_only = all(m == vec4<u32>(0u, 0u, 0u, 0x80000000u)) && neg;
    let overflow = high || (top && !min_only);
    return I128(select(m, i128_neg(m), neg), overflow);
}
