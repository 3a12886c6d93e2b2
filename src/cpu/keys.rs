//! Key encodings shared by the CPU operations: an order-preserving fixed-width encoding
//! (the same transforms as arrow's row format and `shaders/sort_encode.wgsl`: sign bit
//! flipped for signed integers, floats in IEEE total order, descending inverted, a null bit
//! per nullable key) packed into one u128 per row when the keys fit, and arrow's
//! `RowConverter` rows for everything else. Equal encodings are exactly equal row-format
//! rows, and their unsigned order is the row format's order.

use std::sync::Arc;

use arrow::array::{make_array, Array, ArrayData, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, ScalarBuffer};
use arrow::compute::SortOptions;
use arrow::datatypes::{ArrowNativeType, DataType};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::Result;

/// The raw values of a fixed-width array as `T`, from its offset.
fn raw<T: ArrowNativeType>(array: &dyn Array) -> ScalarBuffer<T> {
    let data = array.to_data();
    ScalarBuffer::new(data.buffers()[0].clone(), data.offset(), data.len())
}

/// An order-preserving encoding of a fixed-width array's values (nulls left as whatever
/// their slot holds): unsigned order of the words is arrow's order of the values (floats
/// in IEEE total order), and equal words are equal row-format encodings. `None` for other
/// types. Returns the words and how many low bits they use.
pub(crate) fn order_words(array: &dyn Array) -> Option<(Vec<u64>, u32)> {
    let mut words = Vec::with_capacity(array.len());
    let bits = order_words_into(array, &mut words)?;
    Some((words, bits))
}

/// [`order_words`] appended to `out` (a buffer reused from call to call), returning how
/// many low bits they use; `None` (and nothing appended) for types without order words.
pub(crate) fn order_words_into(array: &dyn Array, out: &mut Vec<u64>) -> Option<u32> {
    use DataType as D;
    fn signed<T: ArrowNativeType + Into<i64>>(a: &dyn Array, bits: u32, out: &mut Vec<u64>) -> u32 {
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        let flip = 1u64 << (bits - 1);
        out.extend(
            raw::<T>(a)
                .iter()
                .map(|x| (Into::<i64>::into(*x) as u64 & mask) ^ flip),
        );
        bits
    }
    fn unsigned<T: ArrowNativeType + Into<u64>>(
        a: &dyn Array,
        bits: u32,
        out: &mut Vec<u64>,
    ) -> u32 {
        out.extend(raw::<T>(a).iter().map(|x| Into::<u64>::into(*x)));
        bits
    }
    Some(match array.data_type() {
        D::Boolean => {
            out.extend(array.as_boolean().values().iter().map(|b| b as u64));
            1
        }
        D::Int8 => signed::<i8>(array, 8, out),
        D::Int16 => signed::<i16>(array, 16, out),
        D::Int32 | D::Date32 | D::Time32(_) => signed::<i32>(array, 32, out),
        D::Int64 | D::Date64 | D::Time64(_) | D::Timestamp(..) | D::Duration(_) => {
            signed::<i64>(array, 64, out)
        }
        D::UInt8 => unsigned::<u8>(array, 8, out),
        D::UInt16 => unsigned::<u16>(array, 16, out),
        D::UInt32 => unsigned::<u32>(array, 32, out),
        D::UInt64 => unsigned::<u64>(array, 64, out),
        D::Float32 => {
            out.extend(
                raw::<u32>(array)
                    .iter()
                    .map(|b| if b >> 31 == 1 { !b } else { b ^ 0x8000_0000 } as u64),
            );
            32
        }
        D::Float64 => {
            out.extend(
                raw::<u64>(array)
                    .iter()
                    .map(|b| if b >> 63 == 1 { !b } else { b ^ (1 << 63) }),
            );
            64
        }
        _ => return None,
    })
}

/// The values whose [`order_words`] are `words`, as an array of `dt` with validity `nulls`
/// (the inverse of that encoding: every bit of every value comes back, NaN payloads and
/// the sign of zero included). Only the low bits the type's words use are read. `None`
/// for types without order words.
pub(crate) fn from_order_words(
    words: &[u64],
    nulls: Option<NullBuffer>,
    dt: &DataType,
) -> Option<ArrayRef> {
    use DataType as D;
    fn native<T: ArrowNativeType>(words: &[u64], f: impl Fn(u64) -> T) -> Buffer {
        Buffer::from_iter(words.iter().map(|&w| f(w)))
    }
    let values = match dt {
        D::Boolean => {
            let bits = BooleanBuffer::from_iter(words.iter().map(|&w| w & 1 == 1));
            return Some(Arc::new(BooleanArray::new(bits, nulls)));
        }
        D::Int8 => native(words, |w| (w ^ 0x80) as u8 as i8),
        D::Int16 => native(words, |w| (w ^ 0x8000) as u16 as i16),
        D::Int32 | D::Date32 | D::Time32(_) => native(words, |w| (w ^ 0x8000_0000) as u32 as i32),
        D::Int64 | D::Date64 | D::Time64(_) | D::Timestamp(..) | D::Duration(_) => {
            native(words, |w| (w ^ (1 << 63)) as i64)
        }
        D::UInt8 => native(words, |w| w as u8),
        D::UInt16 => native(words, |w| w as u16),
        D::UInt32 => native(words, |w| w as u32),
        D::UInt64 => native(words, |w| w),
        // A value that was positive has its word's sign bit set; a negative one's is
        // inverted.
        D::Float32 => native(words, |w| {
            let w = w as u32;
            if w >> 31 == 1 {
                w ^ 0x8000_0000
            } else {
                !w
            }
        }),
        D::Float64 => native(words, |w| if w >> 63 == 1 { w ^ (1 << 63) } else { !w }),
        _ => return None,
    };
    let data = ArrayData::builder(dt.clone())
        .len(words.len())
        .add_buffer(values)
        .nulls(nulls)
        .build()
        .expect("a buffer of the type's width, one value a word");
    Some(make_array(data))
}

/// Whether values of `dt` have order words ([`order_words`] takes their arrays).
pub(crate) fn has_order_words(dt: &DataType) -> bool {
    order_words(arrow::array::new_empty_array(dt).as_ref()).is_some()
}

/// Key columns with the default sort options (ascending, nulls first), as the encodings
/// below take them for grouping, where only equality matters.
pub(crate) fn ascending(columns: &[ArrayRef]) -> Vec<(&ArrayRef, SortOptions)> {
    columns
        .iter()
        .map(|c| (c, SortOptions::default()))
        .collect()
}

/// Every row's composite key, most significant column first, packed into a u128 with the
/// number of bits used: per column a null bit when it has nulls (0 on the side nulls sort
/// to), then its value bits (inverted when descending; 0 for nulls, so nulls are equal).
/// `None` when a column is not fixed-width or the keys need more than 128 bits.
pub(crate) fn packed(columns: &[(&ArrayRef, SortOptions)]) -> Option<(Vec<u128>, u32)> {
    packed_as(columns, false)
}

/// [`packed`] with a null bit for every column, nulls or not: the same keys give the same
/// words in every batch of one schema (the merge of partial group-bys relies on it).
pub(crate) fn packed_nullable(columns: &[(&ArrayRef, SortOptions)]) -> Option<(Vec<u128>, u32)> {
    packed_as(columns, true)
}

/// A column's order words and the bits they use.
type Encoded = (Vec<u64>, u32);

/// Each column's order words and bits, and the bits of all with their null bits (one for
/// every column when `every_null_bit`, else for a column with nulls): `None` for a column
/// that is not fixed-width.
fn encoded(
    columns: &[(&ArrayRef, SortOptions)],
    every_null_bit: bool,
) -> Option<(Vec<Encoded>, u32)> {
    let null_bit = |c: &ArrayRef| every_null_bit || c.null_count() > 0;
    let encoded: Vec<Encoded> = columns
        .iter()
        .map(|(c, _)| order_words(c.as_ref()))
        .collect::<Option<_>>()?;
    let total = encoded
        .iter()
        .zip(columns)
        .map(|((_, bits), (c, _))| bits + null_bit(c) as u32)
        .sum();
    Some((encoded, total))
}

fn packed_as(
    columns: &[(&ArrayRef, SortOptions)],
    every_null_bit: bool,
) -> Option<(Vec<u128>, u32)> {
    let (encoded, total) = encoded(columns, every_null_bit)?;
    (total <= 128).then(|| (pack(&encoded, columns, every_null_bit), total))
}

/// [`packed`] into 64 bits, when the keys fit them: without the u128 words and their
/// second pass (one column that can't be null is its order words as they are).
pub(crate) fn packed_u64(columns: &[(&ArrayRef, SortOptions)]) -> Option<Vec<u64>> {
    let (mut encoded, total) = encoded(columns, false)?;
    if total > 64 {
        return None;
    }
    if let [(column, options)] = columns {
        if column.null_count() == 0 {
            let (mut values, bits) = encoded.pop().expect("one column");
            if options.descending {
                let flip = value_mask(bits);
                values.iter_mut().for_each(|v| *v ^= flip);
            }
            return Some(values);
        }
    }
    // Every shift in `pack` is then by fewer than 64 bits: a column of 64 bits without a
    // null bit is the one column, above.
    Some(pack(&encoded, columns, false))
}

/// The bits a column's order words use, set.
fn value_mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// The words [`packed`] describes, from the columns' order words (`encoded`), in `W` (u64
/// or u128, as wide as their bits need).
fn pack<W>(
    encoded: &[Encoded],
    columns: &[(&ArrayRef, SortOptions)],
    every_null_bit: bool,
) -> Vec<W>
where
    W: Copy
        + Default
        + From<u64>
        + From<bool>
        + std::ops::Shl<u32, Output = W>
        + std::ops::BitOr<Output = W>,
{
    let rows = columns.first().map_or(0, |(c, _)| c.len());
    let mut out = vec![W::default(); rows];
    for ((values, bits), (column, options)) in encoded.iter().zip(columns) {
        let bits = *bits;
        let flip = if options.descending {
            value_mask(bits)
        } else {
            0
        };
        match column.nulls().filter(|_| column.null_count() > 0) {
            Some(nulls) => {
                for ((p, v), valid) in out.iter_mut().zip(values).zip(nulls.iter()) {
                    let bit = W::from(valid == options.nulls_first);
                    let v = W::from(if valid { v ^ flip } else { 0 });
                    *p = (((*p << 1) | bit) << bits) | v;
                }
            }
            None if every_null_bit => {
                // Valid: the bit a valid value has above.
                let bit = W::from(options.nulls_first);
                for (p, v) in out.iter_mut().zip(values) {
                    *p = (((*p << 1) | bit) << bits) | W::from(v ^ flip);
                }
            }
            None => {
                for (p, v) in out.iter_mut().zip(values) {
                    *p = (*p << bits) | W::from(v ^ flip);
                }
            }
        }
    }
    out
}

/// The row-format rows of `columns` with their options (equal exactly when the keys are
/// equal, ordered as the keys).
pub(crate) fn rows(columns: &[(&ArrayRef, SortOptions)]) -> Result<Rows> {
    let fields = columns
        .iter()
        .map(|(c, o)| SortField::new_with_options(c.data_type().clone(), *o))
        .collect();
    let arrays: Vec<ArrayRef> = columns.iter().map(|(c, _)| (*c).clone()).collect();
    Ok(RowConverter::new(fields)?.convert_columns(&arrays)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::*;
    use arrow::datatypes::DataType;

    use super::{from_order_words, order_words};

    /// Every type with order words comes back from them bit for bit (NaN payloads of both
    /// signs, -0.0, the extremes), nulls where it had them.
    #[test]
    fn order_words_decode_to_the_values() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Int8Array::from(vec![
                Some(i8::MIN),
                Some(-1),
                None,
                Some(0),
                Some(i8::MAX),
            ])),
            Arc::new(Int16Array::from(vec![i16::MIN, -7, 0, i16::MAX])),
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(-3),
                None,
                Some(i32::MAX),
            ])),
            Arc::new(Date32Array::from(vec![-719_162, 0, 19_000])),
            Arc::new(Time32SecondArray::from(vec![0, 86_399])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                None,
                Some(-1),
                Some(0),
                Some(i64::MAX),
            ])),
            Arc::new(Date64Array::from(vec![-1, 1_700_000_000_000])),
            Arc::new(Time64NanosecondArray::from(vec![0, 86_399_999_999_999])),
            Arc::new(TimestampMicrosecondArray::from(vec![i64::MIN, 0, 5]).with_timezone("+01:00")),
            Arc::new(DurationMillisecondArray::from(vec![-5, 5])),
            Arc::new(UInt8Array::from(vec![0, 1, u8::MAX])),
            Arc::new(UInt16Array::from(vec![Some(0), None, Some(u16::MAX)])),
            Arc::new(UInt32Array::from(vec![0, 7, u32::MAX])),
            Arc::new(UInt64Array::from(vec![0, 1 << 63, u64::MAX])),
            Arc::new(Float32Array::from(vec![
                Some(f32::from_bits(0x7fc0_0001)),
                Some(f32::from_bits(0xffc0_0002)),
                Some(-0.0),
                Some(0.0),
                None,
                Some(f32::NEG_INFINITY),
                Some(f32::MIN_POSITIVE / 2.0),
                Some(-1.5),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(f64::from_bits(0x7ff8_0000_0000_0003)),
                Some(f64::from_bits(0xfff8_0000_0000_0004)),
                Some(-0.0),
                Some(0.0),
                None,
                Some(f64::INFINITY),
                Some(-f64::MIN_POSITIVE / 4.0),
                Some(2.5),
            ])),
        ];
        for array in arrays {
            let (words, _) = order_words(array.as_ref()).expect("order words");
            let back = from_order_words(&words, array.logical_nulls(), array.data_type())
                .expect("a decoder");
            assert_eq!(back.data_type(), array.data_type());
            assert_eq!(back.to_data(), array.to_data(), "{}", array.data_type());
        }
        let none = from_order_words(&[1], None, &DataType::Utf8);
        assert!(none.is_none());
    }
}
