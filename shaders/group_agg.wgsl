// Group-by, stage 4: one aggregate's per-group state, by atomics on 32-bit words.
//   MODE_COUNT: count[g] += 1 for each valid row.
//   MODE_SUM:   a 96-bit two's-complement sum per group (three words, carries propagated
//               by the adder itself): exact for up to 2^32 values of 64 bits, so the
//               wrapping 64-bit sum is its low words and the mean its exact value. Values
//               of 128 bits (decimals written by an expression kernel) sum into 160 bits
//               (five words), whose low four are the wrapping 128-bit sum.
//   MODE_MAX_HI, MODE_MAX_LO, MODE_MAX_ROW: the largest order word (high, then low among
//               rows whose high word is the largest), then the first row holding it (as
//               rows - row, by max). The minimum is the maximum of inverted words.
//   MODE_SQUARES: the sum of the squares of integer values, exactly: 160 bits per group
//               (five words; 2^32 squares of up to 128 bits fit), for integer variances.
// MODE_COUNT, MODE_SUM and MODE_SQUARES pre-aggregate in workgroup memory when assembled
// with LOCAL (few groups; see common/group_rows.wgsl).
#import dispatch
#import group_rows
#import int64
#import int_sums

const MODE_COUNT: u32 = 0u;
const MODE_SUM: u32 = 1u;
const MODE_MAX_HI: u32 = 2u;
const MODE_MAX_LO: u32 = 3u;
const MODE_MAX_ROW: u32 = 4u;
const MODE_SQUARES: u32 = 5u;

struct AggParams {
    rows: u32,
    mode: u32,
    // MODE_SUM, MODE_SQUARES: bits 0-7 the value's width (8, 16, 32, 64; 128 for MODE_SUM),
    // bit 8 signed.
    // MODE_MAX_*: order words per row (1 or 2).
    kind: u32,
    // Bit 0: the input has a validity bitmap.
    flags: u32,
}

@group(0) @binding(0) var<uniform> params: AggParams;

// The value of `row` as a 64-bit two's-complement number (sign- or zero-extended).
fn value64(row: u32, width: u32, signed: bool) -> vec2<u32> {
    if (width == 64u) {
        return vec2<u32>(values[row * 2u], values[row * 2u + 1u]);
    }
    let per = 32u / width;
    return widen(extractBits(values[row / per], (row % per) * width, width), width, signed);
}

// One row's contribution.
fn process(row: u32) {
    if (!row_valid(row, (params.flags & 1u) != 0u)) {
        return;
    }
    let g = group_of_row[row];
    switch params.mode {
        case 0u: { // MODE_COUNT
            state_add(g, 1u);
        }
        case 1u: { // MODE_SUM
            let signed = (params.kind & 256u) != 0u;
            let width = params.kind & 255u;
            if (width == 128u) {
                let at = row * 4u;
                add_words_n(g * 5u, addend160(values[at], values[at + 1u], values[at + 2u], values[at + 3u]), 5u);
            } else {
                add_words_n(g * 3u, addend96(value64(row, width, signed), signed), 3u);
            }
        }
        case 2u: { // MODE_MAX_HI
            atomicMax(&state[g * 3u], values[row * params.kind]);
        }
        case 3u: { // MODE_MAX_LO
            if (values[row * 2u] == atomicLoad(&state[g * 3u])) {
                atomicMax(&state[g * 3u + 1u], values[row * 2u + 1u]);
            }
        }
        case 5u: { // MODE_SQUARES
            let signed = (params.kind & 256u) != 0u;
            add_words_n(g * 5u, square5(value64(row, params.kind & 255u, signed), signed), 5u);
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

// The words per group of a mode that pre-aggregates in workgroup memory.
fn words_per_group() -> u32 {
    switch params.mode {
        case 1u: { return select(3u, 5u, (params.kind & 255u) == 128u); }
        case 5u: { return 5u; }
        default: { return 1u; }
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    walk_rows(wg, nwg, lid, params.rows);
    if (LOCAL) {
        let n = words_per_group();
        for (var at = lid * n; at + n <= flushed_words(); at += WG * n) {
            flush_number(at, n);
        }
    }
}
