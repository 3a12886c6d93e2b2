// Distinct, stage 2: the bitmap of kept rows, one thread per group. Keep last marks the
// group's last row; keep none marks its first row when that is also its last (the key
// appears once), and nothing otherwise.
#import dispatch

const MODE_LAST: u32 = 0u;
const MODE_NONE: u32 = 1u;

struct MarkParams {
    groups: u32,
    mode: u32,
    unused0: u32,
    unused1: u32,
}

@group(0) @binding(0) var<uniform> params: MarkParams;
@group(0) @binding(1) var<storage, read> first_of_group: array<u32>;
@group(0) @binding(2) var<storage, read> last_of_group: array<u32>;
@group(0) @binding(3) var<storage, read_write> kept: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = flat_workgroup(wg, nwg) * WG + lid;
    if (g >= params.groups) {
        return;
    }
    let last = last_of_group[g];
    if (params.mode == MODE_NONE && first_of_group[g] != last) {
        return;
    }
    // Neighbouring rows share a word, and their groups run in other threads.
    atomicOr(&kept[last >> 5u], 1u << (last & 31u));
}
