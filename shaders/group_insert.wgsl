// Group-by, stage 1 (insert): every row finds its group's slot in an open-addressing hash
// table. A slot's owner is the row that claimed it (compare-and-swap from empty); rows are
// equal when their keys are (the KEYS definition: key words, arrow's row-format equality
// since the words are an injective encoding, from group_keys_words.wgsl; or one string
// column's bytes and validity, from group_keys_strings.wgsl), compared against the owner's
// key, which an earlier dispatch wrote, so no row waits on another. Each slot also keeps
// its group's first row (as rows - row, by max).
// A table that fills past its limit sets the overflow flag; the host then grows it and
// inserts again, so no row is ever dropped.
#import dispatch
#import strings
#import hash

@group(0) @binding(2) var<storage, read_write> owner: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> first: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> slot_of_row: array<u32>;
// [0]: slots claimed; [1]: overflow.
@group(0) @binding(5) var<storage, read_write> state: array<atomic<u32>>;

${KEYS}

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
    let mask = params.capacity - 1u;
    let start = hash_row(row) & mask;
    var slot = 0xffffffffu;
    var probe = 0u;
    loop {
        // A full table, or one already known to overflow: stop (the host grows it and
        // inserts again), rather than probe every slot.
        if (probe >= params.capacity || atomicLoad(&state[1]) != 0u) {
            break;
        }
        let s = (start + probe) & mask;
        var holder = atomicLoad(&owner[s]);
        if (holder == 0u) {
            let r = atomicCompareExchangeWeak(&owner[s], 0u, row + 1u);
            if (r.exchanged) {
                slot = s;
                let claimed = atomicAdd(&state[0], 1u) + 1u;
                if (claimed > params.limit) {
                    atomicOr(&state[1], 1u);
                }
                break;
            }
            holder = r.old_value;
            if (holder == 0u) {
                continue; // a spurious failure: try this slot again
            }
        }
        if (same_keys(holder - 1u, row)) {
            slot = s;
            break;
        }
        probe += 1u;
    }
    if (slot == 0xffffffffu) {
        // Full: the host grows the table and inserts again; this pass's result is unused.
        atomicOr(&state[1], 1u);
        slot = 0u;
    }
    slot_of_row[row] = slot;
    atomicMax(&first[slot], params.rows - row);
}
