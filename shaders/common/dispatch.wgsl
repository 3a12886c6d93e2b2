// Workgroup size and the flat thread index of a 2-D dispatch (one grid dimension holds at
// most 65535 workgroups, so large chunks spill into y; see GpuContext::dispatch).
const WG: u32 = 256u;

fn flat_workgroup(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.y * nwg.x + wg.x;
}
