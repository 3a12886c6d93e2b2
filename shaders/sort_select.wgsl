// Top-k, before the sort: a radix select over the order words, so that only the rows that
// can be among the first k are sorted. One level per dispatch; each level
//   1. applies the previous level's choice to the rows still tied with the k-th key
//      (`live`): below the chosen bucket of that digit, a row is certainly among the first
//      k (its bit goes into `below`); above it, out; in it, still live;
//   2. counts the next digit of the rows still live, per value of the digit (bucket): how
//      many rows, and the AND and OR of their word and of the word after it, so the host,
//      having chosen a bucket, knows which digits still vary among its rows and counts one
//      of those next (a digit equal in every tied row splits nothing).
// The last dispatch only applies (shift = NONE), and leaves every candidate in `below`
// (below or live). A workgroup owns ROWS rows (whole mask words): it builds their bits in
// workgroup memory and writes each word once, and adds to `stats` once per bucket. A
// thread adds a run of rows in one bucket at once, so rows piling into one bucket don't
// queue on one workgroup atomic.
#import dispatch

struct SelectParams {
    rows: u32,
    // The digit counted at this level: its lowest bit, | HAS_NEXT when there is a next
    // word; or NONE: apply only, the last level.
    shift: u32,
    // The previous level's digit (its lowest bit), or NONE: the first level, every row live.
    prev_shift: u32,
    // The previous level's chosen value of its digit.
    prev_bucket: u32,
}

const NONE: u32 = 0xffffffffu;
const HAS_NEXT: u32 = 0x100u;
const PER_THREAD: u32 = 16u;
const ROWS: u32 = PER_THREAD * WG;
const WORDS: u32 = ROWS / 32u;

@group(0) @binding(0) var<uniform> params: SelectParams;
// The order word this level counts a digit of, and the word after it (`after`: the same
// buffer when there is none).
@group(0) @binding(1) var<storage, read> word: array<u32>;
@group(0) @binding(2) var<storage, read> after: array<u32>;
// The order word the previous level counted (may be the same buffer as `word`).
@group(0) @binding(3) var<storage, read> prev: array<u32>;
@group(0) @binding(4) var<storage, read_write> live: array<u32>;
@group(0) @binding(5) var<storage, read_write> below: array<u32>;
// Per bucket b: count at b, then the NOT-AND (the OR of the complements, so zero is the
// start) and OR of `word` at 256 + b and 512 + b, of `after` at 768 + b and 1024 + b.
@group(0) @binding(6) var<storage, read_write> stats: array<atomic<u32>>;

var<workgroup> local_stats: array<atomic<u32>, 1280>;
var<workgroup> live_bits: array<atomic<u32>, WORDS>;
var<workgroup> below_bits: array<atomic<u32>, WORDS>;

fn add_run(bucket: u32, count: u32, not_and: u32, ors: u32, after_not_and: u32, after_or: u32) {
    if (count == 0u) {
        return;
    }
    atomicAdd(&local_stats[bucket], count);
    atomicOr(&local_stats[256u + bucket], not_and);
    atomicOr(&local_stats[512u + bucket], ors);
    atomicOr(&local_stats[768u + bucket], after_not_and);
    atomicOr(&local_stats[1024u + bucket], after_or);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let base = flat_workgroup(wg, nwg) * ROWS;
    let counting = params.shift != NONE;
    let shift = params.shift & 31u;
    let has_next = counting && (params.shift & HAS_NEXT) != 0u;
    for (var s = lid; s < 1280u; s += WG) {
        atomicStore(&local_stats[s], 0u);
    }
    if (lid < WORDS) {
        atomicStore(&live_bits[lid], 0u);
        atomicStore(&below_bits[lid], 0u);
    }
    workgroupBarrier();
    // The run of rows in one bucket that this thread is adding up.
    var run = 0xffffffffu;
    var count = 0u;
    var not_and = 0u;
    var ors = 0u;
    var after_not_and = 0u;
    var after_or = 0u;
    for (var k = 0u; k < PER_THREAD; k++) {
        let i = base + k * WG + lid;
        if (i >= params.rows) {
            break;
        }
        let bit = 1u << (i & 31u);
        let local_word = (i - base) >> 5u;
        var is_live = true;
        if (params.prev_shift != NONE) {
            is_live = (live[i >> 5u] & bit) != 0u;
            if (is_live) {
                let d = (prev[i] >> params.prev_shift) & 255u;
                if (d < params.prev_bucket) {
                    atomicOr(&below_bits[local_word], bit);
                }
                is_live = d == params.prev_bucket;
            }
        }
        if (!is_live) {
            continue;
        }
        atomicOr(&live_bits[local_word], bit);
        if (counting) {
            let v = word[i];
            let d = (v >> shift) & 255u;
            if (d != run) {
                add_run(run & 255u, count, not_and, ors, after_not_and, after_or);
                run = d;
                count = 0u;
                not_and = 0u;
                ors = 0u;
                after_not_and = 0u;
                after_or = 0u;
            }
            count += 1u;
            not_and |= ~v;
            ors |= v;
            if (has_next) {
                let n = after[i];
                after_not_and |= ~n;
                after_or |= n;
            }
        }
    }
    add_run(run & 255u, count, not_and, ors, after_not_and, after_or);
    workgroupBarrier();
    if (counting) {
        let c = atomicLoad(&local_stats[lid]);
        if (c != 0u) {
            atomicAdd(&stats[lid], c);
            for (var s = 1u; s < 5u; s++) {
                atomicOr(&stats[s * 256u + lid], atomicLoad(&local_stats[s * 256u + lid]));
            }
        }
    }
    let w = base / 32u + lid;
    if (lid < WORDS && w < (params.rows + 31u) / 32u) {
        let l = atomicLoad(&live_bits[lid]);
        let b = below[w] | atomicLoad(&below_bits[lid]);
        live[w] = l;
        if (counting) {
            below[w] = b;
        } else {
            below[w] = b | l;
        }
    }
}
