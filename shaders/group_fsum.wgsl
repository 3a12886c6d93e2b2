// Group-by, exact float sums: every finite float is an integer multiple of 2^-1074, so a
// group's sum is an integer, held here exactly as 32-bit digits that rows add to with
// 32-bit atomics, each adder carrying its own overflow into the next digit (the total is
// exact whatever the order). Positive and negative values go to separate digit arrays;
// NaN and the infinities set flags. The host subtracts, rounds once (src/exact.rs), and so
// gives the CPU path's bits.
//   MODE_RANGE:   the lowest and highest bit position of any finite non-zero value
//                 (state[0] by min, state[1] by max), to size the digits.
//   MODE_SUM:     per group [positive digits][negative digits][flags], at scale 2^-1074.
//   MODE_SQUARES: per group [digits][flags] of x * x, at scale 2^-2148.
// MODE_SUM and MODE_SQUARES pre-aggregate in workgroup memory when assembled with LOCAL
// (few groups; see common/group_rows.wgsl).
#import dispatch
#import group_rows
#import int64

const MODE_RANGE: u32 = 0u;
const MODE_SUM: u32 = 1u;
const MODE_SQUARES: u32 = 2u;

const FLAG_NAN: u32 = 1u;
const FLAG_POS_INF: u32 = 2u;
const FLAG_NEG_INF: u32 = 4u;

struct FsumParams {
    rows: u32,
    // Bits 0-7: the mode; bit 8: f64 values (else f32); bit 9: a validity bitmap.
    mode: u32,
    // Digits per array.
    digits: u32,
    // The first digit's index (digit i holds bits 32 * (lowest + i) ...).
    lowest: u32,
}

@group(0) @binding(0) var<uniform> params: FsumParams;

// A float as sign, integer mantissa (lo, hi) and bit position at scale 2^-1074; `special`
// holds a FLAG_* for NaN and the infinities; a zero has mantissa 0.
struct Parts {
    negative: bool,
    m: vec2<u32>,
    pos: u32,
    special: u32,
}

fn parts(row: u32) -> Parts {
    var p = Parts(false, vec2<u32>(0u, 0u), 0u, 0u);
    if ((params.mode & 256u) != 0u) {
        let lo = values[row * 2u];
        let hi = values[row * 2u + 1u];
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
        let b = values[row];
        let field = (b >> 23u) & 0xffu;
        p.negative = (b >> 31u) != 0u;
        let frac = b & 0x7fffffu;
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

// Adds the five words `w` (least significant first) times 2^(32 * k) to the digits from
// `base`, carrying each digit's overflow upward.
fn add_words(base: u32, k: u32, w: array<u32, 5>) {
    var carry = 0u;
    var j = 0u;
    loop {
        if (k + j >= params.digits) {
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

// One row's contribution.
fn process(row: u32) {
    if (!row_valid(row, (params.mode & 512u) != 0u)) {
        return;
    }
    let p = parts(row);
    let mode = params.mode & 255u;
    let zero = p.special == 0u && p.m.x == 0u && p.m.y == 0u;
    if (mode == MODE_RANGE) {
        if (p.special == 0u && !zero) {
            atomicMin(&state[0], p.pos);
            atomicMax(&state[1], p.pos);
        }
        return;
    }
    let g = group_of_row[row];
    if (mode == MODE_SUM) {
        let base = g * (2u * params.digits + 1u);
        if (p.special != 0u) {
            state_or(base + 2u * params.digits, p.special);
            return;
        }
        if (zero) {
            return;
        }
        let shift = p.pos - params.lowest * 32u;
        let w = shifted(array<u32, 4>(p.m.x, p.m.y, 0u, 0u), shift & 31u);
        add_words(base + select(0u, params.digits, p.negative), shift >> 5u, w);
        return;
    }
    // MODE_SQUARES
    let base = g * (params.digits + 1u);
    if (p.special != 0u) {
        state_or(base + params.digits, p.special);
        return;
    }
    if (zero) {
        return;
    }
    let shift = 2u * p.pos - params.lowest * 32u;
    add_words(base, shift >> 5u, shifted(square(p.m), shift & 31u));
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    walk_rows(wg, nwg, lid, params.rows);
    if (LOCAL) {
        // Per group: its digit arrays (two for sums, one for squares), then its flags.
        let arrays = select(1u, 2u, (params.mode & 255u) == MODE_SUM);
        let per_group = arrays * params.digits + 1u;
        let parts = flushed_words() / per_group * (arrays + 1u);
        for (var t = lid; t < parts; t += WG) {
            let g = t / (arrays + 1u);
            let part = t % (arrays + 1u);
            let at = g * per_group + part * params.digits;
            if (part == arrays) {
                let flags = atomicLoad(&local_state[at]);
                if (flags != 0u) {
                    atomicOr(&state[at], flags);
                }
            } else {
                flush_number(at, params.digits);
            }
        }
    }
}
