// The per-row inputs of a group-by aggregate stage: the value column, its validity bitmap
// (bound to anything when absent), every row's group, and the groups' atomic state.
@group(0) @binding(1) var<storage, read> values: array<u32>;
@group(0) @binding(2) var<storage, read> validity: array<u32>;
@group(0) @binding(3) var<storage, read> group_of_row: array<u32>;
@group(0) @binding(4) var<storage, read_write> state: array<atomic<u32>>;

// Whether `row` holds a value: its validity bit, or true without a bitmap.
fn row_valid(row: u32, has_validity: bool) -> bool {
    return !has_validity || ((validity[row >> 5u] >> (row & 31u)) & 1u) != 0u;
}

// Pre-aggregation in workgroup memory, for few groups. LOCAL and LOCAL_WORDS are assembled
// in: with LOCAL, rows add into `local_state` (laid out as `state`), a workgroup walks many
// rows (a grid-stride loop), and then adds its words into `state` once, so millions of rows
// don't fight over a few global atomics. Without it, rows add into `state` directly.
#import carry

const LOCAL: bool = ${LOCAL};
var<workgroup> local_state: array<atomic<u32>, ${LOCAL_WORDS}>;

fn state_add(i: u32, v: u32) -> u32 {
    if (LOCAL) {
        return atomicAdd(&local_state[i], v);
    }
    return atomicAdd(&state[i], v);
}

fn state_or(i: u32, v: u32) {
    if (LOCAL) {
        atomicOr(&local_state[i], v);
    } else {
        atomicOr(&state[i], v);
    }
}

// Zeroes the workgroup's words before any row adds to them (with LOCAL only).
fn local_begin(lid: u32) {
    for (var i = lid; i < ${LOCAL_WORDS}u; i += WG) {
        atomicStore(&local_state[i], 0u);
    }
    workgroupBarrier();
}

// Calls the stage's `process(row)` for each of the `rows` rows: without LOCAL, one row per
// invocation (no barrier: some drivers run barrier-free kernels faster); with it, a
// grid-stride loop over the workgroup's zeroed words, ending at a barrier so that the
// caller can flush them.
fn walk_rows(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, rows: u32) {
    let first = flat_workgroup(wg, nwg) * WG + lid;
    if (!LOCAL) {
        if (first < rows) {
            process(first);
        }
        return;
    }
    local_begin(lid);
    let stride = nwg.x * nwg.y * WG;
    for (var row = first; row < rows; row += stride) {
        process(row);
    }
    workgroupBarrier();
}

// Adds the workgroup's words [at, at + n) into `state` as one n-word number (a carry out of
// the top word dropped).
fn flush_number(at: u32, n: u32) {
    var carry = 0u;
    for (var j = 0u; j < n; j++) {
        let w = atomicLoad(&local_state[at + j]);
        let add = w + carry;
        carry = select(0u, 1u, add < w);
        if (add != 0u) {
            let old = atomicAdd(&state[at + j], add);
            carry += select(0u, 1u, old + add < old);
        }
    }
}

// The words of `state` that a flush covers: all of them, within the workgroup's words.
fn flushed_words() -> u32 {
    return min(arrayLength(&state), ${LOCAL_WORDS}u);
}
