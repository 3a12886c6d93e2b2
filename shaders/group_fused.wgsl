// Group-by in one pass over the rows, for few groups (src/gpu/group_fused.rs): each row
// finds its group's slot and adds to the slot's aggregates in the same invocation, so no
// per-row intermediate (slot, group number) is written or read again.
//
// The table is one buffer: a header ([0] slots claimed, [1] overflow), then per slot a
// record of REC words: [owner row + 1, first row as rows - row (by max), rows, then each
// aggregate's words] (KEYS compares a row with a slot's owner row, as group_insert.wgsl).
// Groups are numbered afterwards, on the host, by their slots' first rows. A table kept
// across chunks (src/gpu/group_resident.rs) marks the slots of earlier chunks PERSISTED,
// and SAME_SLOT compares a row with the key words stored for them.
//
// Each workgroup first pre-aggregates in workgroup memory: a table of LOCAL_SLOTS records
// laid out as the global ones, probed at most LOCAL_PROBES times; a row that finds no local
// slot adds to the global table directly. At the end each local record is added into its
// global slot once (one global insert per group per workgroup). A table that fills past
// `limit` sets the overflow word: the host then groups the chunk by the multi-pass path.
#import dispatch
#import strings
#import hash
#import carry
#import int64
#import int_sums
#import float_digits

@group(0) @binding(2) var<storage, read_write> table: array<atomic<u32>>;
${BINDINGS}

const HEADER: u32 = 4u;
const REC: u32 = ${REC}u;
const LOCAL_SLOTS: u32 = ${LOCAL_SLOTS}u;
const LOCAL_PROBES: u32 = 8u;
const NONE: u32 = 0xffffffffu;
// The owner word of a slot claimed in an earlier chunk (group_persist.wgsl).
const PERSISTED: u32 = 0xffffffffu;

var<workgroup> local_rec: array<atomic<u32>, ${LOCAL_WORDS}>;
// Whether `state_add` and `state_max` go to the workgroup's records or the global ones.
var<private> in_local: bool;
// Whether the global slot `global_slot` found was claimed in an earlier chunk (a kept
// table): its first row is known, and no row of this chunk updates it.
var<private> found_persisted: bool;

${KEYS}

// Whether `row` has the keys of the global slot at `at`, owned by `holder`.
${SAME_SLOT}

fn state_add(i: u32, v: u32) -> u32 {
    if (in_local) {
        return atomicAdd(&local_rec[i], v);
    }
    return atomicAdd(&table[HEADER + i], v);
}

fn state_or(i: u32, v: u32) {
    if (in_local) {
        atomicOr(&local_rec[i], v);
    } else {
        atomicOr(&table[HEADER + i], v);
    }
}

fn state_max(i: u32, v: u32) {
    if (in_local) {
        atomicMax(&local_rec[i], v);
    } else {
        atomicMax(&table[HEADER + i], v);
    }
}

// Whether bit `row` of a validity bitmap is set.
fn bit(word: u32, row: u32) -> bool {
    return ((word >> (row & 31u)) & 1u) != 0u;
}

// The first word of `row`'s record in the workgroup's table, or NONE when its probes are
// spent (the row then goes to the global table).
fn local_slot(row: u32, h: u32) -> u32 {
    var found = NONE;
    var probe = 0u;
    loop {
        if (probe >= LOCAL_PROBES) {
            break;
        }
        let at = ((h + probe) & (max(LOCAL_SLOTS, 1u) - 1u)) * REC;
        var holder = atomicLoad(&local_rec[at]);
        if (holder == 0u) {
            let r = atomicCompareExchangeWeak(&local_rec[at], 0u, row + 1u);
            if (r.exchanged) {
                found = at;
                break;
            }
            holder = r.old_value;
            if (holder == 0u) {
                break; // a spurious failure: the row goes to the global table
            }
        }
        if (same_keys(holder - 1u, row)) {
            found = at;
            break;
        }
        probe += 1u;
    }
    return found;
}

// The first word (after the header) of `row`'s record in the global table, or NONE once
// the table overflowed (the host then discards this pass).
fn global_slot(row: u32, h: u32) -> u32 {
    let mask = params.capacity - 1u;
    var found = NONE;
    found_persisted = false;
    var probe = 0u;
    loop {
        if (probe >= params.capacity || atomicLoad(&table[1]) != 0u) {
            atomicOr(&table[1], 1u);
            break;
        }
        let at = ((h + probe) & mask) * REC;
        var holder = atomicLoad(&table[HEADER + at]);
        if (holder == 0u) {
            let r = atomicCompareExchangeWeak(&table[HEADER + at], 0u, row + 1u);
            if (r.exchanged) {
                if (atomicAdd(&table[0], 1u) + 1u > params.limit) {
                    atomicOr(&table[1], 1u);
                }
                found = at;
                break;
            }
            holder = r.old_value;
            if (holder == 0u) {
                continue;
            }
        }
        if (same_slot(holder, at, row)) {
            found = at;
            found_persisted = holder == PERSISTED;
            break;
        }
        probe += 1u;
    }
    return found;
}

// Row `row`'s aggregates added to the record at `base` (generated per plan).
fn accumulate(row: u32, base: u32) {
${ACCUMULATE}
}

// The workgroup record at `l` added into the global record at `base`: each of its numbers
// (the row count, each aggregate's words) with its carries (generated per plan).
fn flush(l: u32, base: u32) {
    in_local = false;
    if (!found_persisted) {
        atomicMax(&table[HEADER + base + 1u], atomicLoad(&local_rec[l + 1u]));
    }
${FLUSH}
}

// The digits [at, at + n) of the workgroup record at `l` added into the global record at
// `base` as one number, carries and all (an exact float sum's digit array).
fn flush_digits(l: u32, base: u32, at: u32, n: u32) {
    var carry = 0u;
    for (var i = 0u; i < n; i++) {
        carry = add_at(base + at, i, atomicLoad(&local_rec[l + at + i]), carry);
    }
}

// Word `at` of the workgroup record at `l` or-ed into the global record at `base` (flags).
fn flush_or(l: u32, base: u32, at: u32) {
    let flags = atomicLoad(&local_rec[l + at]);
    if (flags != 0u) {
        atomicOr(&table[HEADER + base + at], flags);
    }
}

// Where a kept table has 64-bit extremes: each row's global record (NONE where the table
// overflowed), for the pass that maxes their low words (src/gpu/group_fused.rs).
${ROW_SLOTS}

// The words [l + at, l + at + n) of a workgroup record as a number to add.
fn local_number(l: u32, at: u32, n: u32) -> array<u32, 5> {
    var w = array<u32, 5>(0u, 0u, 0u, 0u, 0u);
    for (var i = 0u; i < n; i++) {
        w[i] = atomicLoad(&local_rec[l + at + i]);
    }
    return w;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    for (var i = lid; i < LOCAL_SLOTS * REC; i += WG) {
        atomicStore(&local_rec[i], 0u);
    }
    workgroupBarrier();
    let stride = nwg.x * nwg.y * WG;
    for (var row = flat_workgroup(wg, nwg) * WG + lid; row < params.rows; row += stride) {
        let h = hash_row(row);
        var base = NONE;
        if (LOCAL_SLOTS > 0u) {
            base = local_slot(row, h);
        }
        in_local = base != NONE;
        if (!in_local) {
            base = global_slot(row, h);
            if (base == NONE) {
                keep_slot(row, NONE);
                continue;
            }
        }
        keep_slot(row, base);
        if (in_local || !found_persisted) {
            state_max(base + 1u, params.rows - row);
        }
        state_add(base + 2u, 1u);
        accumulate(row, base);
    }
    workgroupBarrier();
    for (var l = lid * REC; l < LOCAL_SLOTS * REC; l += WG * REC) {
        let holder = atomicLoad(&local_rec[l]);
        if (holder != 0u) {
            let base = global_slot(holder - 1u, hash_row(holder - 1u));
            if (base != NONE) {
                flush(l, base);
            }
        }
    }
}
