// A predicate, generated from an expression's shape (src/gpu/predicate.rs): each row's
// value and validity under three-valued logic, written as Arrow bitmaps. Every column is
// read once per row; literals come from `lits`, so one pipeline serves every value.
#import dispatch
#import order
#import int64

struct PredicateParams {
    rows: u32,
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> params: PredicateParams;
@group(0) @binding(1) var<storage, read_write> out_values: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_valid: array<u32>;
${BINDINGS}
var<workgroup> word_values: array<atomic<u32>, 8>;
var<workgroup> word_valid: array<atomic<u32>, 8>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    if (lid < WG / 32u) {
        atomicStore(&word_values[lid], 0u);
        atomicStore(&word_valid[lid], 0u);
    }
    workgroupBarrier();
    let base = flat_workgroup(wg, nwg) * WG;
    let row = base + lid;
    if (row < params.rows) {
${BODY}
        let bit = 1u << (lid & 31u);
        if (${OK}) {
            atomicOr(&word_valid[lid >> 5u], bit);
        }
        if (${VALUE}) {
            atomicOr(&word_values[lid >> 5u], bit);
        }
    }
    workgroupBarrier();
    if (lid < WG / 32u && base + lid * 32u < params.rows) {
        let w = base / 32u + lid;
        out_values[w] = atomicLoad(&word_values[lid]);
        out_valid[w] = atomicLoad(&word_valid[lid]);
    }
}
