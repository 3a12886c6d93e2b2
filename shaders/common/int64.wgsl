// 64-bit integers as vec2<u32>(low word, high word), two's complement, so that every
// adapter runs the same code (WGSL has no 64-bit integers without SHADER_INT64).

fn u64_cmp(a: vec2<u32>, b: vec2<u32>) -> i32 {
    if (a.y != b.y) {
        return select(-1, 1, a.y > b.y);
    }
    if (a.x != b.x) {
        return select(-1, 1, a.x > b.x);
    }
    return 0;
}

fn i64_cmp(a: vec2<u32>, b: vec2<u32>) -> i32 {
    // Flipping the sign bit maps two's complement order onto unsigned order.
    return u64_cmp(vec2<u32>(a.x, a.y ^ 0x80000000u), vec2<u32>(b.x, b.y ^ 0x80000000u));
}

fn u64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn u64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn u64_neg(a: vec2<u32>) -> vec2<u32> {
    return u64_sub(vec2<u32>(0u, 0u), a);
}

// The full 64-bit product of two u32, from 16-bit halves.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>((p00 & 0xffffu) | (mid << 16u), p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u));
}

// The low 64 bits of the product: the same for signed and unsigned operands (wrapping).
fn u64_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p = mul_wide(a.x, b.x);
    return vec2<u32>(p.x, p.y + a.x * b.y + a.y * b.x);
}

// n / d for d != 0, by restoring division, one quotient bit per step.
fn u64_div(n: vec2<u32>, d: vec2<u32>) -> vec2<u32> {
    var q = vec2<u32>(0u, 0u);
    var r = vec2<u32>(0u, 0u);
    for (var i = 63i; i >= 0; i--) {
        let bit = select((n.x >> u32(i)) & 1u, (n.y >> u32(i - 32)) & 1u, i >= 32);
        r = vec2<u32>((r.x << 1u) | bit, (r.y << 1u) | (r.x >> 31u));
        if (u64_cmp(r, d) >= 0) {
            r = u64_sub(r, d);
            if (i >= 32) {
                q.y |= 1u << u32(i - 32);
            } else {
                q.x |= 1u << u32(i);
            }
        }
    }
    return q;
}

// Truncating signed division for d != 0 (i64::MIN / -1 wraps; callers flag it first).
fn i64_div(n: vec2<u32>, d: vec2<u32>) -> vec2<u32> {
    let n_neg = (n.y & 0x80000000u) != 0u;
    let d_neg = (d.y & 0x80000000u) != 0u;
    let q = u64_div(select(n, u64_neg(n), n_neg), select(d, u64_neg(d), d_neg));
    return select(q, u64_neg(q), n_neg != d_neg);
}

fn i64_from_i32(v: i32) -> vec2<u32> {
    return vec2<u32>(bitcast<u32>(v), select(0u, 0xffffffffu, v < 0));
}
