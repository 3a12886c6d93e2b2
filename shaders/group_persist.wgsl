// A table kept across chunks (src/gpu/group_resident.rs), after the fused kernel
// (group_fused.wgsl) has run over a chunk: each slot that a row of this chunk claimed gets
// its key words stored (from its owner row), its owner word becomes PERSISTED (later chunks
// compare rows with the stored words), and it joins the list of new slots with its first
// row in the batch, for the host to number the groups and take their keys.
#import dispatch

struct PersistParams {
    slots: u32,
    // The chunk's rows (a record's word 1 holds rows - first row).
    rows: u32,
    // Key words per row.
    words: u32,
    // The chunk's first row in the batch.
    base: u32,
}

@group(0) @binding(0) var<uniform> params: PersistParams;
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> stored: array<u32>;
// [0] new slots listed, [1] unused, then (slot, first row in the batch) per new slot.
@group(0) @binding(4) var<storage, read_write> fresh: array<atomic<u32>>;

const HEADER: u32 = 4u;
const REC: u32 = ${REC}u;
const PERSISTED: u32 = 0xffffffffu;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = flat_workgroup(wg, nwg) * WG + lid;
    if (s >= params.slots) {
        return;
    }
    let at = HEADER + s * REC;
    let holder = table[at];
    if (holder == 0u || holder == PERSISTED) {
        return;
    }
    let owner = holder - 1u;
    for (var w = 0u; w < params.words; w++) {
        stored[s * params.words + w] = keys[owner * params.words + w];
    }
    table[at] = PERSISTED;
    let i = atomicAdd(&fresh[0], 1u);
    atomicStore(&fresh[2u + i * 2u], s);
    atomicStore(&fresh[3u + i * 2u], params.base + params.rows - table[at + 1u]);
}
