// A predicate or an aggregate's input, generated from an expression's shape
// (src/gpu/predicate.rs): each row's value and validity under three-valued logic, written
// as Arrow bitmaps (a predicate, a boolean value) or as values plus a validity bitmap.
// Every column is read once per row; literals come from `lits`, so one pipeline serves
// every value.
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
        ${STORE}
    }
    workgroupBarrier();
    if (lid < WG / 32u && base + lid * 32u < params.rows) {
        let w = base / 32u + lid;
        ${FLUSH}
    }
}
