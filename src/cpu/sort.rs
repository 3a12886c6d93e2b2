//! Sort on the CPU: stable, in arrow's row-format order, which the GPU path reproduces word
//! for word.
//!
//! Keys whose order-preserving encodings fit 128 bits together (a null bit per nullable
//! key, then 1 to 64 value bits: the same transforms as `shaders/sort_encode.wgsl` and
//! arrow's row format) sort as `(u64 or u128, row)` pairs; other keys (more or wider
//! columns, strings, ...) sort on arrow's `RowConverter` rows. Both break ties by row
//! number, so the sort is stable.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::buffer::ScalarBuffer;
use arrow::compute::{take_record_batch, SortOptions};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use crate::error::Result;
use crate::gpu::sort::Key;

/// One key column's order-preserving encoding: `bits` value bits per row (unsigned order
/// is the key order) and whether a null bit comes first.
struct Encoded {
    values: Vec<u64>,
    bits: u32,
    nullable: bool,
}

/// The raw values of a fixed-width array as `T`, from its offset.
fn raw<T: arrow::datatypes::ArrowNativeType>(array: &ArrayRef) -> ScalarBuffer<T> {
    let data = array.to_data();
    ScalarBuffer::new(data.buffers()[0].clone(), data.offset(), data.len())
}

fn encode(array: &ArrayRef, options: SortOptions) -> Option<Encoded> {
    let (values, bits): (Vec<u64>, u32) = match array.data_type() {
        DataType::Boolean => (
            array
                .as_boolean()
                .values()
                .iter()
                .map(|b| b as u64)
                .collect(),
            1,
        ),
        DataType::Int8 => (
            raw::<i8>(array)
                .iter()
                .map(|v| (*v as u8 ^ 0x80) as u64)
                .collect(),
            8,
        ),
        DataType::Int16 => (
            raw::<i16>(array)
                .iter()
                .map(|v| (*v as u16 ^ 0x8000) as u64)
                .collect(),
            16,
        ),
        DataType::Int32 | DataType::Date32 => (
            raw::<i32>(array)
                .iter()
                .map(|v| (*v as u32 ^ 0x8000_0000) as u64)
                .collect(),
            32,
        ),
        DataType::UInt8 => (raw::<u8>(array).iter().map(|v| *v as u64).collect(), 8),
        DataType::UInt16 => (raw::<u16>(array).iter().map(|v| *v as u64).collect(), 16),
        DataType::UInt32 => (raw::<u32>(array).iter().map(|v| *v as u64).collect(), 32),
        DataType::Float32 => (
            raw::<u32>(array)
                .iter()
                .map(|b| if b >> 31 == 1 { !b } else { b ^ 0x8000_0000 } as u64)
                .collect(),
            32,
        ),
        DataType::Int64 | DataType::Date64 | DataType::Timestamp(_, _) => (
            raw::<i64>(array)
                .iter()
                .map(|v| *v as u64 ^ (1 << 63))
                .collect(),
            64,
        ),
        DataType::UInt64 => (raw::<u64>(array).to_vec(), 64),
        DataType::Float64 => (
            raw::<u64>(array)
                .iter()
                .map(|b| if b >> 63 == 1 { !b } else { b ^ (1 << 63) })
                .collect(),
            64,
        ),
        _ => return None,
    };
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let mut values = values;
    if options.descending {
        values.iter_mut().for_each(|v| *v = !*v & mask);
    }
    let nullable = array.null_count() > 0;
    if let Some(nulls) = array.nulls().filter(|_| nullable) {
        // Nulls compare equal to each other: value 0 behind the null bit.
        for (v, valid) in values.iter_mut().zip(nulls.iter()) {
            if !valid {
                *v = 0;
            }
        }
    }
    Some(Encoded {
        values,
        bits,
        nullable,
    })
}

/// The composite key of every row, most significant key first, if it fits 128 bits.
fn packed_keys(batch: &RecordBatch, keys: &[Key]) -> Option<(Vec<u128>, u32)> {
    let encoded: Vec<(Encoded, &Key)> = keys
        .iter()
        .map(|k| encode(batch.column(k.column), k.options).map(|e| (e, k)))
        .collect::<Option<_>>()?;
    let total: u32 = encoded
        .iter()
        .map(|(e, _)| e.bits + e.nullable as u32)
        .sum();
    if total > 128 {
        return None;
    }
    let mut packed = vec![0u128; batch.num_rows()];
    for (e, key) in &encoded {
        let column = batch.column(key.column);
        if e.nullable {
            let nulls = column.nulls().expect("nullable");
            for (p, valid) in packed.iter_mut().zip(nulls.iter()) {
                // The side nulls go to gets 0.
                let bit = valid == key.options.nulls_first;
                *p = (*p << 1) | bit as u128;
            }
        }
        for (p, v) in packed.iter_mut().zip(&e.values) {
            *p = (*p << e.bits) | *v as u128;
        }
    }
    Some((packed, total))
}

/// Row numbers ordered by `(key, row)`: stable; only the first `limit`.
fn order_by<K: Ord + Copy>(keys: impl Iterator<Item = K>, limit: Option<usize>) -> Vec<u32> {
    let mut pairs: Vec<(K, u32)> = keys.zip(0u32..).collect();
    let n = pairs.len();
    match limit {
        Some(k) if k < n => {
            if k > 0 {
                pairs.select_nth_unstable(k - 1);
            }
            pairs.truncate(k);
            pairs.sort_unstable();
        }
        _ => pairs.sort_unstable(),
    }
    pairs.into_iter().map(|(_, i)| i).collect()
}

/// The row indices of `batch` in key order, ties in input order; the first `limit`.
pub(crate) fn sort_to_indices(
    batch: &RecordBatch,
    keys: &[Key],
    limit: Option<usize>,
) -> Result<UInt32Array> {
    if let Some((packed, bits)) = packed_keys(batch, keys) {
        let order = if bits <= 64 {
            order_by(packed.into_iter().map(|k| k as u64), limit)
        } else {
            order_by(packed.into_iter(), limit)
        };
        return Ok(UInt32Array::from(order));
    }
    let fields = keys
        .iter()
        .map(|k| {
            SortField::new_with_options(
                batch.schema_ref().field(k.column).data_type().clone(),
                k.options,
            )
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let columns: Vec<_> = keys
        .iter()
        .map(|k| batch.column(k.column).clone())
        .collect();
    let rows = converter.convert_columns(&columns)?;
    Ok(UInt32Array::from(order_by(rows.iter(), limit)))
}

/// `batch` sorted by `keys` (the first `limit` rows).
pub(crate) fn sort(batch: &RecordBatch, keys: &[Key], limit: Option<usize>) -> Result<RecordBatch> {
    let indices = sort_to_indices(batch, keys, limit)?;
    Ok(take_record_batch(batch, &indices)?)
}
