// Group-by, exact float sums: each group's sum held exactly as 32-bit digits
// (common/float_digits.wgsl), sized from a first pass over the values' bit range.
//   MODE_RANGE:   the lowest and highest bit position of any finite non-zero value
//                 (state[0] by min, state[1] by max), to size the digits.
//   MODE_SUM:     per group [positive digits][negative digits][flags], at scale 2^-1074.
//   MODE_SQUARES: per group [digits][flags] of x * x, at scale 2^-2148.
// MODE_SUM and MODE_SQUARES pre-aggregate in workgroup memory when assembled with LOCAL
// (few groups; see common/group_rows.wgsl).
#import dispatch
#import group_rows
#import int64
#import float_digits

const MODE_RANGE: u32 = 0u;
const MODE_SUM: u32 = 1u;
const MODE_SQUARES: u32 = 2u;

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

// Row `row`'s value as a float's parts.
fn parts(row: u32) -> Parts {
    if ((params.mode & 256u) != 0u) {
        return float_parts(values[row * 2u], values[row * 2u + 1u], true);
    }
    return float_parts(values[row], 0u, false);
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
        add_float(g * (2u * params.digits + 1u), params.digits, params.lowest, p);
        return;
    }
    // MODE_SQUARES
    add_float_square(g * (params.digits + 1u), params.digits, params.lowest, p);
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
