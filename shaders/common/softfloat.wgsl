// IEEE-754 binary32 and binary64 arithmetic in software, on bit patterns: an f32 is a u32,
// an f64 is vec2<u32>(low word, high word). Native WGSL floats may flush subnormals and
// divide within 2.5 ULP; these functions give the exact IEEE-754 results that a CPU gives
// (round to nearest, ties to even; subnormals in and out; signed zeros; infinities), so the
// GPU and CPU paths agree bit for bit.
//
// NaN rule: every NaN result is the canonical quiet NaN with positive sign (F32_NAN,
// f64_nan()), whatever NaNs went in (CPUs disagree on NaN sign and payload, so the CPU path
// canonicalises its results the same way; see src/expr.rs).
//
// The structure follows Berkeley SoftFloat: an operation works out the sign, an exponent
// and a significand with its leading one at bit 30 (f32) or bit 62 (f64) and the bits
// below the result's last place "jammed" into a sticky bit, then round-and-pack rounds once.
// Shift amounts of 32 or more are avoided explicitly (WGSL takes them modulo 32).
#import int64

const F32_NAN: u32 = 0x7fc00000u;
const F32_SIGN: u32 = 0x80000000u;
const F32_INF: u32 = 0x7f800000u;
const F64_INF_HI: u32 = 0x7ff00000u;

fn f64_nan() -> vec2<u32> {
    return vec2<u32>(0u, 0x7ff80000u);
}

// ---- 64-bit helpers (vec2<u32>(lo, hi)) ----

fn sf_is_zero64(a: vec2<u32>) -> bool {
    return (a.x | a.y) == 0u;
}

// a << n for n < 64.
fn sf_shl64(a: vec2<u32>, n: u32) -> vec2<u32> {
    if (n == 0u) {
        return a;
    }
    if (n >= 32u) {
        return vec2<u32>(0u, a.x << (n - 32u));
    }
    return vec2<u32>(a.x << n, (a.y << n) | (a.x >> (32u - n)));
}

// a >> n for n < 64.
fn sf_shr64(a: vec2<u32>, n: u32) -> vec2<u32> {
    if (n == 0u) {
        return a;
    }
    if (n >= 32u) {
        return vec2<u32>(a.y >> (n - 32u), 0u);
    }
    return vec2<u32>((a.x >> n) | (a.y << (32u - n)), a.y >> n);
}

// a >> n (any n) with every bit shifted out ORed into bit 0 ("jamming").
fn sf_shr_jam64(a: vec2<u32>, n: u32) -> vec2<u32> {
    if (n == 0u) {
        return a;
    }
    if (n >= 64u) {
        return vec2<u32>(select(0u, 1u, !sf_is_zero64(a)), 0u);
    }
    let q = sf_shr64(a, n);
    let lost = any(sf_shl64(q, n) != a);
    return vec2<u32>(q.x | select(0u, 1u, lost), q.y);
}

// a >> n (any n), jamming.
fn sf_shr_jam32(a: u32, n: u32) -> u32 {
    if (n == 0u) {
        return a;
    }
    if (n >= 32u) {
        return select(0u, 1u, a != 0u);
    }
    return (a >> n) | select(0u, 1u, (a << (32u - n)) != 0u);
}

// Leading zeros of a 64-bit value (64 for zero).
fn sf_clz64(a: vec2<u32>) -> u32 {
    if (a.y != 0u) {
        return countLeadingZeros(a.y);
    }
    return 32u + countLeadingZeros(a.x);
}

// The high 64 bits of the 128-bit product a * b, with the low 64 bits jammed into bit 0.
fn sf_mul128_hi_jam(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p00 = mul_wide(a.x, b.x);
    let p01 = mul_wide(a.x, b.y);
    let p10 = mul_wide(a.y, b.x);
    let p11 = mul_wide(a.y, b.y);
    let t1 = u64_add(u64_add(vec2<u32>(p00.y, 0u), vec2<u32>(p01.x, 0u)), vec2<u32>(p10.x, 0u));
    let t2 = u64_add(
        u64_add(vec2<u32>(p11.x, 0u), vec2<u32>(p01.y, 0u)),
        u64_add(vec2<u32>(p10.y, 0u), vec2<u32>(t1.y, 0u)),
    );
    let sticky = select(0u, 1u, (p00.x | t1.x) != 0u);
    return vec2<u32>(t2.x | sticky, p11.y + t2.y);
}

// ---- binary32 ----

fn f32_is_nan(a: u32) -> bool {
    return (a & 0x7fffffffu) > F32_INF;
}

// Rounds and packs sign | sig * 2^(exp - 156), where sig's leading one is at bit 30 (or
// below, for results that end up subnormal or zero) and bit 0 is sticky.
fn f32_round_pack(sign: u32, exp_in: i32, sig_in: u32) -> u32 {
    var exp = exp_in;
    var sig = sig_in;
    var round_bits = sig & 0x7fu;
    if (bitcast<u32>(exp) >= 0xfdu) {
        if (exp < 0) {
            sig = sf_shr_jam32(sig, u32(-exp));
            exp = 0;
            round_bits = sig & 0x7fu;
        } else if (exp > 0xfd || sig + 0x40u >= 0x80000000u) {
            return sign | F32_INF;
        }
    }
    sig = (sig + 0x40u) >> 7u;
    if (round_bits == 0x40u) {
        sig = sig & ~1u; // a tie: to even
    }
    if (sig == 0u) {
        exp = 0;
    }
    // Adding (not ORing) lets a significand that rounded up to 2^24 carry into the exponent.
    return sign + (u32(exp) << 23u) + sig;
}

// The significand of a finite nonzero f32 with its hidden bit (bit 23 set) and its
// exponent, subnormals normalised: the value is sig * 2^(exp - 150).
fn f32_unpack(a: u32) -> vec2<i32> {
    let e = i32((a >> 23u) & 0xffu);
    let m = a & 0x7fffffu;
    if (e == 0) {
        let s = countLeadingZeros(m) - 8u;
        return vec2<i32>(i32(m << s), 1 - i32(s));
    }
    return vec2<i32>(i32(m | 0x800000u), e);
}

fn f32_add(a: u32, b: u32) -> u32 {
    let ea = (a >> 23u) & 0xffu;
    let eb = (b >> 23u) & 0xffu;
    if (ea == 0xffu || eb == 0xffu) {
        if (f32_is_nan(a) || f32_is_nan(b)) {
            return F32_NAN;
        }
        if (ea == 0xffu && eb == 0xffu && ((a ^ b) & F32_SIGN) != 0u) {
            return F32_NAN; // inf - inf
        }
        return select(b, a, ea == 0xffu);
    }
    // x is the operand of larger magnitude.
    var x = a;
    var y = b;
    if ((b & 0x7fffffffu) > (a & 0x7fffffffu)) {
        x = b;
        y = a;
    }
    let sx = x & F32_SIGN;
    let sy = y & F32_SIGN;
    let ex = (x >> 23u) & 0xffu;
    let ey = (y >> 23u) & 0xffu;
    // Six guard bits: the leading one at bit 29, so a sum can't reach bit 31.
    let mx = ((x & 0x7fffffu) | select(0u, 0x800000u, ex != 0u)) << 6u;
    let my = ((y & 0x7fffffu) | select(0u, 0x800000u, ey != 0u)) << 6u;
    let ex1 = max(ex, 1u);
    let my_aligned = sf_shr_jam32(my, ex1 - max(ey, 1u));
    var s: u32;
    if (sx == sy) {
        s = mx + my_aligned;
    } else {
        s = mx - my_aligned;
    }
    if (s == 0u) {
        // Exact zero: -0 only for (-0) + (-0); x - x is +0 in round to nearest.
        return select(0u, sx, sx == sy);
    }
    let shift = countLeadingZeros(s) - 1u;
    return f32_round_pack(sx, i32(ex1) - i32(shift), s << shift);
}

fn f32_sub(a: u32, b: u32) -> u32 {
    return f32_add(a, b ^ F32_SIGN);
}

fn f32_mul(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) & F32_SIGN;
    let ma = a & 0x7fffffffu;
    let mb = b & 0x7fffffffu;
    if (ma >= F32_INF || mb >= F32_INF) {
        if (f32_is_nan(a) || f32_is_nan(b) || ma == 0u || mb == 0u) {
            return F32_NAN; // NaN in, or inf * 0
        }
        return sign | F32_INF;
    }
    if (ma == 0u || mb == 0u) {
        return sign;
    }
    let ua = f32_unpack(a);
    let ub = f32_unpack(b);
    let p = mul_wide(u32(ua.x) << 7u, u32(ub.x) << 8u);
    var sig = p.y | select(0u, 1u, p.x != 0u);
    var exp = ua.y + ub.y - 0x7f;
    if (sig < 0x40000000u) {
        exp -= 1;
        sig = sig << 1u;
    }
    return f32_round_pack(sign, exp, sig);
}

fn f32_div(a: u32, b: u32) -> u32 {
    let sign = (a ^ b) & F32_SIGN;
    let ma = a & 0x7fffffffu;
    let mb = b & 0x7fffffffu;
    if (f32_is_nan(a) || f32_is_nan(b)) {
        return F32_NAN;
    }
    if (ma == F32_INF) {
        return select(sign | F32_INF, F32_NAN, mb == F32_INF);
    }
    if (mb == F32_INF) {
        return sign;
    }
    if (mb == 0u) {
        return select(sign | F32_INF, F32_NAN, ma == 0u);
    }
    if (ma == 0u) {
        return sign;
    }
    let ua = f32_unpack(a);
    let ub = f32_unpack(b);
    let d = u32(ub.x);
    var r = u32(ua.x);
    var exp = ua.y - ub.y + 126;
    if (r < d) {
        r = r << 1u;
        exp -= 1;
    }
    // Restoring division: 31 quotient bits, the first one set (r / d in [1, 2)).
    var q = 0u;
    for (var i = 0u; i < 31u; i++) {
        q = q << 1u;
        if (r >= d) {
            r -= d;
            q |= 1u;
        }
        r = r << 1u;
    }
    return f32_round_pack(sign, exp, q | select(0u, 1u, r != 0u));
}

// sign | (a 64-bit magnitude rounded to f32).
fn f32_from_mag64(sign: u32, v: vec2<u32>) -> u32 {
    if (sf_is_zero64(v)) {
        return 0u;
    }
    let lz = sf_clz64(v);
    var sig: u32;
    if (lz >= 33u) {
        sig = v.x << (lz - 33u);
    } else {
        sig = sf_shr_jam64(v, 33u - lz).x;
    }
    return f32_round_pack(sign, 189 - i32(lz), sig);
}

fn f32_from_u32(v: u32) -> u32 {
    return f32_from_mag64(0u, vec2<u32>(v, 0u));
}

fn f32_from_i32(v: i32) -> u32 {
    let bits = bitcast<u32>(v);
    return f32_from_mag64(bits & F32_SIGN, vec2<u32>(select(bits, 0u - bits, v < 0), 0u));
}

fn f32_from_u64(v: vec2<u32>) -> u32 {
    return f32_from_mag64(0u, v);
}

fn f32_from_i64(v: vec2<u32>) -> u32 {
    let neg = (v.y & F32_SIGN) != 0u;
    return f32_from_mag64(v.y & F32_SIGN, select(v, u64_neg(v), neg));
}

// ---- binary64 ----

fn f64_is_nan(a: vec2<u32>) -> bool {
    let h = a.y & 0x7fffffffu;
    return h > F64_INF_HI || (h == F64_INF_HI && a.x != 0u);
}

// Rounds and packs sign | sig * 2^(exp - 1084) (sign in the high word's bit 31), where
// sig's leading one is at bit 62 (or below, for subnormal or zero results), bit 0 sticky.
fn f64_round_pack(sign: u32, exp_in: i32, sig_in: vec2<u32>) -> vec2<u32> {
    var exp = exp_in;
    var sig = sig_in;
    var round_bits = sig.x & 0x3ffu;
    if (bitcast<u32>(exp) >= 0x7fdu) {
        if (exp < 0) {
            sig = sf_shr_jam64(sig, u32(-exp));
            exp = 0;
            round_bits = sig.x & 0x3ffu;
        } else if (exp > 0x7fd || u64_add(sig, vec2<u32>(0x200u, 0u)).y >= 0x80000000u) {
            return vec2<u32>(0u, sign | F64_INF_HI);
        }
    }
    sig = sf_shr64(u64_add(sig, vec2<u32>(0x200u, 0u)), 10u);
    if (round_bits == 0x200u) {
        sig.x = sig.x & ~1u; // a tie: to even
    }
    if (sf_is_zero64(sig)) {
        exp = 0;
    }
    return u64_add(vec2<u32>(0u, sign | (u32(exp) << 20u)), sig);
}

// The 53-bit significand of a finite nonzero f64 (bit 52 set) and its exponent,
// subnormals normalised: the value is sig * 2^(exp - 1075).
struct F64Parts {
    sig: vec2<u32>,
    exp: i32,
}

fn f64_unpack(a: vec2<u32>) -> F64Parts {
    let e = i32((a.y >> 20u) & 0x7ffu);
    let m = vec2<u32>(a.x, a.y & 0xfffffu);
    if (e == 0) {
        let s = sf_clz64(m) - 11u;
        return F64Parts(sf_shl64(m, s), 1 - i32(s));
    }
    return F64Parts(vec2<u32>(m.x, m.y | 0x100000u), e);
}

fn f64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let ea = (a.y >> 20u) & 0x7ffu;
    let eb = (b.y >> 20u) & 0x7ffu;
    if (ea == 0x7ffu || eb == 0x7ffu) {
        if (f64_is_nan(a) || f64_is_nan(b)) {
            return f64_nan();
        }
        if (ea == 0x7ffu && eb == 0x7ffu && ((a.y ^ b.y) & F32_SIGN) != 0u) {
            return f64_nan(); // inf - inf
        }
        return select(b, a, ea == 0x7ffu);
    }
    // x is the operand of larger magnitude.
    var x = a;
    var y = b;
    if (u64_cmp(vec2<u32>(b.x, b.y & 0x7fffffffu), vec2<u32>(a.x, a.y & 0x7fffffffu)) > 0) {
        x = b;
        y = a;
    }
    let sx = x.y & F32_SIGN;
    let sy = y.y & F32_SIGN;
    let ex = (x.y >> 20u) & 0x7ffu;
    let ey = (y.y >> 20u) & 0x7ffu;
    // Nine guard bits: the leading one at bit 61, so a sum can't reach bit 63.
    let mx = sf_shl64(vec2<u32>(x.x, (x.y & 0xfffffu) | select(0u, 0x100000u, ex != 0u)), 9u);
    let my = sf_shl64(vec2<u32>(y.x, (y.y & 0xfffffu) | select(0u, 0x100000u, ey != 0u)), 9u);
    let ex1 = max(ex, 1u);
    let my_aligned = sf_shr_jam64(my, ex1 - max(ey, 1u));
    var s: vec2<u32>;
    if (sx == sy) {
        s = u64_add(mx, my_aligned);
    } else {
        s = u64_sub(mx, my_aligned);
    }
    if (sf_is_zero64(s)) {
        // Exact zero: -0 only for (-0) + (-0); x - x is +0 in round to nearest.
        return vec2<u32>(0u, select(0u, sx, sx == sy));
    }
    let shift = sf_clz64(s) - 1u;
    return f64_round_pack(sx, i32(ex1) - i32(shift), sf_shl64(s, shift));
}

fn f64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return f64_add(a, vec2<u32>(b.x, b.y ^ F32_SIGN));
}

fn f64_mul(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let sign = (a.y ^ b.y) & F32_SIGN;
    let ha = a.y & 0x7fffffffu;
    let hb = b.y & 0x7fffffffu;
    let za = (ha | a.x) == 0u;
    let zb = (hb | b.x) == 0u;
    if (ha >= F64_INF_HI || hb >= F64_INF_HI) {
        if (f64_is_nan(a) || f64_is_nan(b) || za || zb) {
            return f64_nan(); // NaN in, or inf * 0
        }
        return vec2<u32>(0u, sign | F64_INF_HI);
    }
    if (za || zb) {
        return vec2<u32>(0u, sign);
    }
    let ua = f64_unpack(a);
    let ub = f64_unpack(b);
    var sig = sf_mul128_hi_jam(sf_shl64(ua.sig, 10u), sf_shl64(ub.sig, 11u));
    var exp = ua.exp + ub.exp - 0x3ff;
    if (sig.y < 0x40000000u) {
        exp -= 1;
        sig = sf_shl64(sig, 1u);
    }
    return f64_round_pack(sign, exp, sig);
}

fn f64_div(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let sign = (a.y ^ b.y) & F32_SIGN;
    if (f64_is_nan(a) || f64_is_nan(b)) {
        return f64_nan();
    }
    let ha = a.y & 0x7fffffffu;
    let hb = b.y & 0x7fffffffu;
    let ia = ha == F64_INF_HI;
    let ib = hb == F64_INF_HI;
    let za = (ha | a.x) == 0u;
    let zb = (hb | b.x) == 0u;
    if (ia) {
        return select(vec2<u32>(0u, sign | F64_INF_HI), f64_nan(), ib);
    }
    if (ib) {
        return vec2<u32>(0u, sign);
    }
    if (zb) {
        return select(vec2<u32>(0u, sign | F64_INF_HI), f64_nan(), za);
    }
    if (za) {
        return vec2<u32>(0u, sign);
    }
    let ua = f64_unpack(a);
    let ub = f64_unpack(b);
    let d = ub.sig;
    var r = ua.sig;
    var exp = ua.exp - ub.exp + 1022;
    if (u64_cmp(r, d) < 0) {
        r = sf_shl64(r, 1u);
        exp -= 1;
    }
    // Restoring division: 63 quotient bits, the first one set (r / d in [1, 2)).
    var q = vec2<u32>(0u, 0u);
    for (var i = 0u; i < 63u; i++) {
        q = sf_shl64(q, 1u);
        if (u64_cmp(r, d) >= 0) {
            r = u64_sub(r, d);
            q.x = q.x | 1u;
        }
        r = sf_shl64(r, 1u);
    }
    q.x = q.x | select(0u, 1u, !sf_is_zero64(r));
    return f64_round_pack(sign, exp, q);
}

// sign | (a 64-bit magnitude rounded to f64).
fn f64_from_mag64(sign: u32, v: vec2<u32>) -> vec2<u32> {
    if (sf_is_zero64(v)) {
        return vec2<u32>(0u, 0u);
    }
    let lz = sf_clz64(v);
    var sig: vec2<u32>;
    if (lz >= 1u) {
        sig = sf_shl64(v, lz - 1u);
    } else {
        sig = sf_shr_jam64(v, 1u);
    }
    return f64_round_pack(sign, 1085 - i32(lz), sig);
}

fn f64_from_u32(v: u32) -> vec2<u32> {
    return f64_from_mag64(0u, vec2<u32>(v, 0u));
}

fn f64_from_i32(v: i32) -> vec2<u32> {
    let bits = bitcast<u32>(v);
    return f64_from_mag64(bits & F32_SIGN, vec2<u32>(select(bits, 0u - bits, v < 0), 0u));
}

fn f64_from_u64(v: vec2<u32>) -> vec2<u32> {
    return f64_from_mag64(0u, v);
}

fn f64_from_i64(v: vec2<u32>) -> vec2<u32> {
    let neg = (v.y & F32_SIGN) != 0u;
    return f64_from_mag64(v.y & F32_SIGN, select(v, u64_neg(v), neg));
}

// Exact: every f32 is an f64.
fn f64_from_f32(a: u32) -> vec2<u32> {
    let sign = a & F32_SIGN;
    let e = (a >> 23u) & 0xffu;
    let m = a & 0x7fffffu;
    if (e == 0xffu) {
        return select(vec2<u32>(0u, sign | F64_INF_HI), f64_nan(), m != 0u);
    }
    if (e == 0u && m == 0u) {
        return vec2<u32>(0u, sign);
    }
    let u = f32_unpack(a);
    let frac = u32(u.x) & 0x7fffffu;
    let e64 = u32(u.y + 896);
    return vec2<u32>(frac << 29u, sign | (e64 << 20u) | (frac >> 3u));
}
