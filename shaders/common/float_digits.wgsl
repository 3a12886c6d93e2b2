// Exact float sums as 32-bit digits: every finite float is an integer
// multiple of 2^-1074, so a sum of floats is an integer, held exactly as digits that rows
// add to with 32-bit atomics on whatever words the including shader's `state_add(i, v) ->
// old` and `state_or(i, v)` reach, each adder carrying its own overflow into the next
// digit (the total is exact whatever the order). Positive and negative values go to
// separate digit arrays; NaN and the infinities set flags. The host subtracts and rounds
// once (src/exact.rs), and so gives the CPU path's bits.
//   A sum:     [positive digits][negative digits][flags], at scale 2^-1074.
//   A squares: [digits][flags] of x * x, at scale 2^-2148.
// Digit i of an array holds bits 32 * (lowest + i) ... of the number.
#import int64

const FLAG_NAN: u32 = 1u;
const FLAG_POS_INF: u32 = 2u;
const FLAG_NEG_INF: u32 = 4u;

// A float as sign, integer mantissa (lo, hi) and bit position at scale 2^-1074; `special`
// holds a FLAG_* for NaN and the infinities; a zero has mantissa 0.
struct Parts {
    negative: bool,
    m: vec2<u32>,
    pos: u32,
    special: u32,
}

// The parts of an f64 (`wide`: its words `lo`, `hi`) or an f32 (its bits `lo`).
fn float_parts(lo: u32, hi: u32, wide: bool) -> Parts {
    var p = Parts(false, vec2<u32>(0u, 0u), 0u, 0u);
    if (wide) {
        let field = (hi >> 20u) & 0x7ffu;
        p.negative = (hi >> 31u) != 0u;
        let frac_hi = hi & 0xfffffu;
        if (field == 0x7ffu) {
            if (frac_hi == 0u && lo == 0u) {
                p.special = select(FLAG_POS_INF, FLAG_NEG_INF, p.negative);
            } else {
                p.special = FLAG_NAN;
            }
            return p;
        }
        p.m = vec2<u32>(lo, frac_hi | select(0u, 0x100000u, field != 0u));
        p.pos = max(field, 1u) - 1u;
    } else {
        let field = (lo >> 23u) & 0xffu;
        p.negative = (lo >> 31u) != 0u;
        let frac = lo & 0x7fffffu;
        if (field == 0xffu) {
            p.special = select(select(FLAG_POS_INF, FLAG_NEG_INF, p.negative), FLAG_NAN, frac != 0u);
            return p;
        }
        p.m = vec2<u32>(frac | select(0u, 0x800000u, field != 0u), 0u);
        // f32 = m * 2^(max(field, 1) - 150) = m * 2^(max(field, 1) + 924) * 2^-1074.
        p.pos = max(field, 1u) + 924u;
    }
    return p;
}

// Adds the five words `w` (least significant first) times 2^(32 * k) to the `digits`
// digits from `base`, carrying each digit's overflow upward.
fn add_digits(base: u32, k: u32, w: array<u32, 5>, digits: u32) {
    var carry = 0u;
    var j = 0u;
    loop {
        if (k + j >= digits) {
            break;
        }
        var v = carry;
        carry = 0u;
        if (j < 5u) {
            v = w[j] + v;
            carry = select(0u, 1u, v < w[j]);
        }
        if (v != 0u) {
            let old = state_add(base + k + j, v);
            carry += select(0u, 1u, old + v < old);
        }
        j += 1u;
        if (j >= 5u && carry == 0u) {
            break;
        }
    }
}

// The four words of a 106-bit square m * m.
fn square(m: vec2<u32>) -> array<u32, 4> {
    let p00 = mul_wide(m.x, m.x);
    let p01 = mul_wide(m.x, m.y);
    let p11 = mul_wide(m.y, m.y);
    // 2 * p01 < 2^54.
    let d = vec2<u32>(p01.x << 1u, (p01.y << 1u) | (p01.x >> 31u));
    let r1 = p00.y + d.x;
    let c1 = select(0u, 1u, r1 < d.x);
    let r2a = d.y + p11.x;
    let c2a = select(0u, 1u, r2a < p11.x);
    let r2 = r2a + c1;
    let c2 = c2a + select(0u, 1u, r2 < r2a);
    return array<u32, 4>(p00.x, r1, r2, p11.y + c2);
}

// `v` (four words) shifted left by `b` bits (< 32) into five words.
fn shifted(v: array<u32, 4>, b: u32) -> array<u32, 5> {
    if (b == 0u) {
        return array<u32, 5>(v[0], v[1], v[2], v[3], 0u);
    }
    let r = 32u - b;
    return array<u32, 5>(
        v[0] << b,
        (v[1] << b) | (v[0] >> r),
        (v[2] << b) | (v[1] >> r),
        (v[3] << b) | (v[2] >> r),
        v[3] >> r,
    );
}

// Adds the float `p` to the sum at `base` of `digits` digits per array from digit `lowest`.
fn add_float(base: u32, digits: u32, lowest: u32, p: Parts) {
    if (p.special != 0u) {
        state_or(base + 2u * digits, p.special);
        return;
    }
    if (p.m.x == 0u && p.m.y == 0u) {
        return;
    }
    let shift = p.pos - lowest * 32u;
    let w = shifted(array<u32, 4>(p.m.x, p.m.y, 0u, 0u), shift & 31u);
    add_digits(base + select(0u, digits, p.negative), shift >> 5u, w, digits);
}

// Adds the square of the float `p` to the sum of squares at `base` of `digits` digits from
// digit `lowest`.
fn add_float_square(base: u32, digits: u32, lowest: u32, p: Parts) {
    if (p.special != 0u) {
        state_or(base + digits, p.special);
        return;
    }
    if (p.m.x == 0u && p.m.y == 0u) {
        return;
    }
    let shift = 2u * p.pos - lowest * 32u;
    add_digits(base, shift >> 5u, shifted(square(p.m), shift & 31u), digits);
}
