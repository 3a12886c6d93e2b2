// Group-by, stage 4: one aggregate's per-group state, by atomics on 32-bit words.
//   MODE_COUNT: count[g] += 1 for each valid row.
//   MODE_SUM:   a 96-bit two's-complement sum per group (three words, carries propagated
//               by the adder itself): exact for up to 2^32 values of 64 bits, so the
//               wrapping 64-bit sum is its low words and the mean its exact value.
//   MODE_MAX_HI, MODE_MAX_LO, MODE_MAX_ROW: the largest order word (high, then low among
//               rows whose high word is the largest), then the first row holding it (as
//               rows - row, by max). The minimum is the maximum of inverted words.
#import dispatch
#import group_rows

const MODE_COUNT: u32 = 0u;
const MODE_SUM: u32 = 1u;
const MODE_MAX_HI: u32 = 2u;
const MODE_MAX_LO: u32 = 3u;
const MODE_MAX_ROW: u32 = 4u;

struct AggParams {
    rows: u32,
    mode: u32,
    // MODE_SUM: bits 0-6 the value's width (8, 16, 32, 64), bit 7 signed.
    // MODE_MAX_*: order words per row (1 or 2).
    kind: u32,
    // Bit 0: the input has a validity bitmap.
    flags: u32,
}

@group(0) @binding(0) var<uniform> params: AggParams;

fn add96(base: u32, v0: u32, v1: u32, v2: u32) {
    let o0 = atomicAdd(&state[base], v0);
    var carry = select(0u, 1u, o0 + v0 < o0);
    let add1 = v1 + carry;
    carry = select(0u, 1u, add1 < v1);
    if (add1 != 0u) {
        let o1 = atomicAdd(&state[base + 1u], add1);
        carry += select(0u, 1u, o1 + add1 < o1);
    }
    let add2 = v2 + carry;
    if (add2 != 0u) {
        atomicAdd(&state[base + 2u], add2);
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = flat_workgroup(wg, nwg) * WG + lid;
    if (row >= params.rows) {
        return;
    }
    if (!row_valid(row, (params.flags & 1u) != 0u)) {
        return;
    }
    let g = group_of_row[row];
    switch params.mode {
        case 0u: { // MODE_COUNT
            atomicAdd(&state[g], 1u);
        }
        case 1u: { // MODE_SUM
            let width = params.kind & 127u;
            let signed = (params.kind & 128u) != 0u;
            var lo = 0u;
            var hi = 0u;
            if (width == 64u) {
                lo = values[row * 2u];
                hi = values[row * 2u + 1u];
            } else {
                let per = 32u / width;
                let raw = extractBits(values[row / per], (row % per) * width, width);
                if (signed) {
                    lo = bitcast<u32>(extractBits(bitcast<i32>(raw), 0u, width));
                    hi = select(0u, 0xffffffffu, (lo & 0x80000000u) != 0u);
                } else {
                    lo = raw;
                }
            }
            let top = select(0u, 0xffffffffu, signed && (hi & 0x80000000u) != 0u);
            add96(g * 3u, lo, hi, top);
        }
        case 2u: { // MODE_MAX_HI
            atomicMax(&state[g * 3u], values[row * params.kind]);
        }
        case 3u: { // MODE_MAX_LO
            if (values[row * 2u] == atomicLoad(&state[g * 3u])) {
                atomicMax(&state[g * 3u + 1u], values[row * 2u + 1u]);
            }
        }
        default: { // MODE_MAX_ROW
            var best = values[row * params.kind] == atomicLoad(&state[g * 3u]);
            if (params.kind == 2u) {
                best = best && values[row * 2u + 1u] == atomicLoad(&state[g * 3u + 1u]);
            }
            if (best) {
                atomicMax(&state[g * 3u + 2u], params.rows - row);
            }
        }
    }
}
