// Fused group-by: every slot's first row (0 for an empty slot), so that the keys are
// gathered at the slots' first rows and read back with the table.
#import dispatch

struct SlotRowsParams {
    slots: u32,
    // Words per slot record (group_fused.wgsl: the first row is word 1, as rows - row).
    record: u32,
    rows: u32,
    unused: u32,
}

@group(0) @binding(0) var<uniform> params: SlotRowsParams;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read_write> first_row: array<u32>;

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
    // After the table's four header words.
    let f = table[4u + s * params.record + 1u];
    first_row[s] = select(0u, params.rows - f, f != 0u);
}
