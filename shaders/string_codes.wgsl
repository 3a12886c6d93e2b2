// String keys as codes: after group_insert over one string column, every row's code is
// the first row holding an equal string (all nulls one code), so that several keys group
// on fixed-width words: equal codes exactly when equal strings.
#import dispatch

struct CodesParams {
    rows: u32,
    unused0: u32,
    unused1: u32,
    unused2: u32,
}

@group(0) @binding(0) var<uniform> params: CodesParams;
@group(0) @binding(1) var<storage, read> slot_of_row: array<u32>;
@group(0) @binding(2) var<storage, read> first: array<u32>;
@group(0) @binding(3) var<storage, read_write> codes: array<u32>;

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
    codes[row] = params.rows - first[slot_of_row[row]];
}
