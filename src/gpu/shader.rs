//! WGSL sources and the small preprocessor that assembles them: `#import name` pulls in
//! `shaders/common/name.wgsl` (once), and `${KEY}` is replaced from a list of definitions.

/// Shared modules under `shaders/common/`.
fn common(name: &str) -> Option<&'static str> {
    Some(match name {
        "dispatch" => include_str!("../../shaders/common/dispatch.wgsl"),
        "int64" => include_str!("../../shaders/common/int64.wgsl"),
        "int128" => include_str!("../../shaders/common/int128.wgsl"),
        "order" => include_str!("../../shaders/common/order.wgsl"),
        "mask" => include_str!("../../shaders/common/mask.wgsl"),
        "scan" => include_str!("../../shaders/common/scan.wgsl"),
        "radix" => include_str!("../../shaders/common/radix.wgsl"),
        "carry" => include_str!("../../shaders/common/carry.wgsl"),
        "int_sums" => include_str!("../../shaders/common/int_sums.wgsl"),
        "float_digits" => include_str!("../../shaders/common/float_digits.wgsl"),
        "hash" => include_str!("../../shaders/common/hash.wgsl"),
        "group_rows" => include_str!("../../shaders/common/group_rows.wgsl"),
        "softfloat" => include_str!("../../shaders/common/softfloat.wgsl"),
        "strings" => include_str!("../../shaders/common/strings.wgsl"),
        "take" => include_str!("../../shaders/common/take.wgsl"),
        "packed" => include_str!("../../shaders/common/packed.wgsl"),
        _ => return None,
    })
}

/// Kernel stages under `shaders/`.
pub(crate) const COMPACT_COUNT: &str = include_str!("../../shaders/compact_count.wgsl");
pub(crate) const SCAN_REDUCE: &str = include_str!("../../shaders/scan_reduce.wgsl");
pub(crate) const SCAN_APPLY: &str = include_str!("../../shaders/scan_apply.wgsl");
pub(crate) const COMPACT_OFFSETS: &str = include_str!("../../shaders/compact_offsets.wgsl");
pub(crate) const COMPACT_SCATTER: &str = include_str!("../../shaders/compact_scatter.wgsl");
pub(crate) const PREDICATE: &str = include_str!("../../shaders/predicate.wgsl");
pub(crate) const SORT_ENCODE: &str = include_str!("../../shaders/sort_encode.wgsl");
pub(crate) const SORT_HISTOGRAM: &str = include_str!("../../shaders/sort_histogram.wgsl");
pub(crate) const SORT_SCATTER: &str = include_str!("../../shaders/sort_scatter.wgsl");
pub(crate) const SORT_GATHER: &str = include_str!("../../shaders/sort_gather.wgsl");
pub(crate) const SORT_SELECT: &str = include_str!("../../shaders/sort_select.wgsl");
pub(crate) const SORT_RANK: &str = include_str!("../../shaders/sort_rank.wgsl");
pub(crate) const TAKE: &str = include_str!("../../shaders/take.wgsl");
pub(crate) const STRING_TAKE_LENGTHS: &str = include_str!("../../shaders/string_take_lengths.wgsl");
pub(crate) const STRING_TAKE_COPY: &str = include_str!("../../shaders/string_take_copy.wgsl");
pub(crate) const STRING_CODES: &str = include_str!("../../shaders/string_codes.wgsl");
pub(crate) const GROUP_INSERT: &str = include_str!("../../shaders/group_insert.wgsl");
/// `${KEYS}` of `GROUP_INSERT`: key words, or one string column.
pub(crate) const GROUP_KEYS_WORDS: &str = include_str!("../../shaders/group_keys_words.wgsl");
pub(crate) const GROUP_KEYS_STRINGS: &str = include_str!("../../shaders/group_keys_strings.wgsl");
pub(crate) const GROUP_FIRST: &str = include_str!("../../shaders/group_first.wgsl");
pub(crate) const GROUP_IDS: &str = include_str!("../../shaders/group_ids.wgsl");
/// Group-by of few groups in one pass (`src/gpu/group_fused.rs` generates its aggregates).
pub(crate) const GROUP_FUSED: &str = include_str!("../../shaders/group_fused.wgsl");
pub(crate) const GROUP_SLOT_ROWS: &str = include_str!("../../shaders/group_slot_rows.wgsl");
pub(crate) const GROUP_PERSIST: &str = include_str!("../../shaders/group_persist.wgsl");
pub(crate) const SORT_MERGE_KEYS: &str = include_str!("../../shaders/sort_merge_keys.wgsl");
pub(crate) const SORT_MERGE_RANK: &str = include_str!("../../shaders/sort_merge_rank.wgsl");
pub(crate) const SORT_MERGE_SCATTER: &str = include_str!("../../shaders/sort_merge_scatter.wgsl");
pub(crate) const GROUP_AGG: &str = include_str!("../../shaders/group_agg.wgsl");
pub(crate) const GROUP_FSUM: &str = include_str!("../../shaders/group_fsum.wgsl");
pub(crate) const DISTINCT_LAST: &str = include_str!("../../shaders/distinct_last.wgsl");
pub(crate) const DISTINCT_MARK: &str = include_str!("../../shaders/distinct_mark.wgsl");
pub(crate) const DISTINCT_SCATTER: &str = include_str!("../../shaders/distinct_scatter.wgsl");

/// Expands `#import` lines and `${KEY}` definitions in `source`.
pub(crate) fn assemble(source: &str, defs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut seen = Vec::new();
    expand(source, &mut out, &mut seen);
    for (key, value) in defs {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    debug_assert!(!out.contains("${"), "undefined ${{..}} in shader:\n{out}");
    out
}

fn expand(source: &str, out: &mut String, seen: &mut Vec<String>) {
    for line in source.lines() {
        if let Some(name) = line.trim().strip_prefix("#import ") {
            let name = name.trim();
            if !seen.iter().any(|s| s == name) {
                seen.push(name.to_string());
                let module = common(name).unwrap_or_else(|| panic!("no shader module '{name}'"));
                expand(module, out, seen);
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// `source` with its uniform bindings declared as read-only storage when `in_storage`
/// (see `GpuContext::params_in_storage`); the layout is read from the declarations
/// afterwards, so it follows. Unchanged otherwise.
pub(crate) fn params_for(source: String, in_storage: bool) -> String {
    if in_storage && source.contains("var<uniform>") {
        source.replace("var<uniform>", "var<storage, read>")
    } else {
        source
    }
}

/// How a kernel declares one binding of group 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindingKind {
    /// `var<uniform>`.
    Uniform,
    /// `var<storage, read>`.
    StorageRead,
    /// `var<storage, read_write>`.
    StorageReadWrite,
}

/// The bindings of group 0 that `source` declares, by binding number (a gap is `None`).
///
/// A pipeline's layout is built from these, not derived by wgpu from what the entry point
/// uses: a derived layout drops a binding the code never reads (a string column used only
/// for its null mask), and then the host's bind group, which binds every declared buffer,
/// no longer matches it. Declarations are the ones our generators and `shaders/` write:
/// one `@group(0) @binding(N) var<...>` per line.
pub(crate) fn declared_bindings(source: &str) -> Vec<Option<BindingKind>> {
    let mut out: Vec<Option<BindingKind>> = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.trim_start().strip_prefix("@group(0) @binding(") else {
            continue;
        };
        let Some((number, decl)) = rest.split_once(')') else {
            continue;
        };
        let Ok(number) = number.trim().parse::<usize>() else {
            continue;
        };
        let decl: String = decl.chars().filter(|c| !c.is_whitespace()).collect();
        let kind = if decl.starts_with("var<uniform>") {
            BindingKind::Uniform
        } else if decl.starts_with("var<storage,read_write>") {
            BindingKind::StorageReadWrite
        } else if decl.starts_with("var<storage,read>") || decl.starts_with("var<storage>") {
            BindingKind::StorageRead
        } else {
            continue;
        };
        if out.len() <= number {
            out.resize(number + 1, None);
        }
        out[number] = Some(kind);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_bindings_read_every_declaration_used_or_not() {
        let text = "@group(0) @binding(0) var<uniform> params: Params;\n\
                    @group(0) @binding(1) var<storage, read_write> out: array<u32>;\n\
                    @group(0) @binding(3) var<storage, read> c0: array<u32>;\n\
                    // not a declaration: @group(0) @binding(7)\n\
                    fn main() { out[0] = 1u; }\n";
        assert_eq!(
            declared_bindings(text),
            vec![
                Some(BindingKind::Uniform),
                Some(BindingKind::StorageReadWrite),
                None,
                Some(BindingKind::StorageRead),
            ]
        );
    }

    const GLOBAL_DEFS: &[(&str, &str)] = &[("LOCAL", "false"), ("LOCAL_WORDS", "1")];
    const LOCAL_DEFS: &[(&str, &str)] = &[("LOCAL", "true"), ("LOCAL_WORDS", "4096")];

    #[test]
    fn every_stage_assembles_and_parses() {
        let scatter_defs: &[(&str, &str)] = &[
            ("DST", "array<u32>"),
            ("SRC", "array<u32>"),
            ("STORE", "dst[o] = src[row];"),
        ];
        for (src, defs) in [
            (COMPACT_COUNT, &[][..]),
            (SCAN_REDUCE, &[][..]),
            (SCAN_APPLY, &[][..]),
            (COMPACT_OFFSETS, &[][..]),
            (COMPACT_SCATTER, scatter_defs),
            (SORT_ENCODE, &[][..]),
            (SORT_HISTOGRAM, &[][..]),
            (SORT_SCATTER, &[][..]),
            (SORT_GATHER, &[][..]),
            (SORT_SELECT, &[][..]),
            (SORT_RANK, &[][..]),
            (TAKE, &[][..]),
            (STRING_TAKE_LENGTHS, &[][..]),
            (STRING_TAKE_COPY, &[][..]),
            (STRING_CODES, &[][..]),
            (GROUP_INSERT, &[("KEYS", GROUP_KEYS_WORDS)][..]),
            (
                GROUP_INSERT,
                &[("KEYS", GROUP_KEYS_STRINGS), ("KEY_VALID", "6")][..],
            ),
            (GROUP_FIRST, &[][..]),
            (GROUP_IDS, &[][..]),
            (GROUP_SLOT_ROWS, &[][..]),
            (GROUP_PERSIST, &[("REC", "7")][..]),
            (SORT_MERGE_KEYS, &[][..]),
            (SORT_MERGE_RANK, &[][..]),
            (SORT_MERGE_SCATTER, &[][..]),
            (GROUP_AGG, GLOBAL_DEFS),
            (GROUP_FSUM, GLOBAL_DEFS),
            (GROUP_AGG, LOCAL_DEFS),
            (GROUP_FSUM, LOCAL_DEFS),
            (DISTINCT_LAST, &[][..]),
            (DISTINCT_MARK, &[][..]),
            (DISTINCT_SCATTER, &[][..]),
        ] {
            let text = assemble(src, defs);
            naga::front::wgsl::parse_str(&text)
                .unwrap_or_else(|e| panic!("{}\n{text}", e.emit_to_string(&text)));
        }
    }

    /// Every shared module parses and validates on its own (with what it imports, and the
    /// workgroup size from `dispatch`), so a module no kernel imports yet is still checked.
    #[test]
    fn every_common_module_parses_and_validates() {
        for name in [
            "dispatch",
            "int64",
            "int128",
            "order",
            "mask",
            "scan",
            "radix",
            "group_rows",
            "carry",
            "int_sums",
            "float_digits",
            "hash",
            "softfloat",
            "strings",
            "take",
        ] {
            // group_rows walks rows with the stage's `process`: a stage supplies one.
            // carry adds through the stage's `state_add`, float_digits through its
            // `state_add` and `state_or`.
            let (defs, stage) = match name {
                "group_rows" => (LOCAL_DEFS, "fn process(row: u32) {}\n"),
                "carry" => (
                    &[][..],
                    "fn state_add(i: u32, v: u32) -> u32 { return v; }\n",
                ),
                "float_digits" => (
                    &[][..],
                    "fn state_add(i: u32, v: u32) -> u32 { return v; }\n\
                 fn state_or(i: u32, v: u32) {}\n",
                ),
                _ => (&[][..], ""),
            };
            let text = assemble(&format!("#import dispatch\n#import {name}\n{stage}"), defs);
            let module = naga::front::wgsl::parse_str(&text)
                .unwrap_or_else(|e| panic!("{name}: {}\n{text}", e.emit_to_string(&text)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&text)));
        }
    }
}
