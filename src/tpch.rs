//! TPC-H Q1 and Q6 over a `lineitem` batch, and their published answers at scale factor 1.
//!
//! Q1 (the pricing summary report) filters on a ship date, groups by two one-letter flags
//! and computes eight aggregates over decimal expressions; Q6 (the forecasting revenue
//! change) is a range filter and one sum. They are the classic shapes of the aggregations
//! this crate offloads. The queries take `lineitem` as the TPC-H schema has it (and as the
//! `tpchgen-arrow` crate generates it): `l_quantity`, `l_extendedprice`, `l_discount`,
//! `l_tax` Decimal128(15, 2), `l_returnflag`, `l_linestatus` strings, `l_shipdate` Date32.
//!
//! Each query is one group-by: the `WHERE` clause becomes every aggregate's filter
//! (`FILTER (WHERE ...)`), which gives the same answer as filtering first (a group exists
//! where at least one row passes; Q1 then drops the groups whose `count_order` is 0) and
//! reads the batch once, with no compaction. Results follow DataFusion's types: sums of
//! Decimal128(15, 2) values are Decimal128(38, s), averages Decimal128(19, 6).
//!
//! ```sql
//! -- Q1 (DELTA = 90 days, the validation value)
//! SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
//!        sum(l_extendedprice) AS sum_base_price,
//!        sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
//!        sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
//!        avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
//!        avg(l_discount) AS avg_disc, count(*) AS count_order
//! FROM lineitem WHERE l_shipdate <= date '1998-12-01' - interval '90' day
//! GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus;
//! -- Q6 (DATE = 1994-01-01, DISCOUNT = 0.06, QUANTITY = 24)
//! SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
//! WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01'
//!   AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24;
//! ```
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, Date32Array, Decimal128Array, StringArray};
//! use arrow::record_batch::RecordBatch;
//! use arrow_wgpu::{tpch, Engine};
//!
//! let dec = |v: Vec<i128>| -> ArrayRef {
//!     Arc::new(Decimal128Array::from(v).with_precision_and_scale(15, 2).unwrap())
//! };
//! let lineitem = RecordBatch::try_from_iter([
//!     ("l_quantity", dec(vec![1700, 3600])),
//!     ("l_extendedprice", dec(vec![2116823, 4598316])),
//!     ("l_discount", dec(vec![4, 9])),
//!     ("l_tax", dec(vec![2, 6])),
//!     ("l_returnflag", Arc::new(StringArray::from(vec!["N", "N"])) as ArrayRef),
//!     ("l_linestatus", Arc::new(StringArray::from(vec!["O", "O"])) as ArrayRef),
//!     ("l_shipdate", Arc::new(Date32Array::from(vec![9568, 9598])) as ArrayRef),
//! ]).unwrap();
//! let engine = Engine::from_env().unwrap();
//! let q1 = tpch::q1(&engine, &lineitem).unwrap();
//! assert_eq!(q1.num_rows(), 1);
//! assert_eq!(q1.schema().field(2).name(), "sum_qty");
//! ```

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Decimal128Type, Int64Type};

use crate::engine::Engine;
use crate::error::Result;
use crate::expr::{col, lit, Expr, ScalarValue};
use crate::gpu::column::GpuBatch;
use crate::group_by::{Agg, GroupByOptions};

/// Days from 1970-01-01 to 1998-09-02 (1998-12-01 minus Q1's 90 days).
pub const Q1_SHIPDATE_MAX: i32 = 10_471;
/// Days from 1970-01-01 to 1994-01-01 and to 1995-01-01: Q6's ship-date range.
pub const Q6_SHIPDATE_RANGE: (i32, i32) = (8_766, 9_131);

/// The `lineitem` columns Q1 reads.
pub const Q1_COLUMNS: [&str; 7] = [
    "l_quantity",
    "l_extendedprice",
    "l_discount",
    "l_tax",
    "l_returnflag",
    "l_linestatus",
    "l_shipdate",
];
/// The `lineitem` columns Q6 reads.
pub const Q6_COLUMNS: [&str; 4] = ["l_quantity", "l_extendedprice", "l_discount", "l_shipdate"];

/// Q1's group keys.
pub const Q1_KEYS: [&str; 2] = ["l_returnflag", "l_linestatus"];

fn decimal(unscaled: i128) -> Expr {
    lit(ScalarValue::Decimal128(unscaled, 15, 2))
}

/// Q1's `WHERE`: `l_shipdate <= date '1998-09-02'`.
pub fn q1_predicate() -> Expr {
    col("l_shipdate").lt_eq(lit(ScalarValue::Date32(Q1_SHIPDATE_MAX)))
}

/// Q1's eight aggregates, named as the query names them, each filtered by
/// [`q1_predicate`].
///
/// # Example
/// ```
/// let names: Vec<String> = arrow_wgpu::tpch::q1_aggregates().iter().map(|a| a.name()).collect();
/// assert_eq!(names[0], "sum_qty");
/// assert_eq!(names[7], "count_order");
/// ```
pub fn q1_aggregates() -> Vec<Agg> {
    let price = || col("l_extendedprice");
    let disc_price = || price() * (lit(1) - col("l_discount"));
    let p = q1_predicate();
    [
        Agg::sum(col("l_quantity")).alias("sum_qty"),
        Agg::sum(price()).alias("sum_base_price"),
        Agg::sum(disc_price()).alias("sum_disc_price"),
        Agg::sum(disc_price() * (lit(1) + col("l_tax"))).alias("sum_charge"),
        Agg::mean(col("l_quantity")).alias("avg_qty"),
        Agg::mean(price()).alias("avg_price"),
        Agg::mean(col("l_discount")).alias("avg_disc"),
        Agg::count_star().alias("count_order"),
    ]
    .into_iter()
    .map(|a| a.filter(p.clone()))
    .collect()
}

/// Q6's `WHERE`.
pub fn q6_predicate() -> Expr {
    let (from, to) = Q6_SHIPDATE_RANGE;
    col("l_shipdate")
        .gt_eq(lit(ScalarValue::Date32(from)))
        .and(col("l_shipdate").lt(lit(ScalarValue::Date32(to))))
        .and(col("l_discount").between(decimal(5), decimal(7)))
        .and(col("l_quantity").lt(lit(24)))
}

/// Q6's one aggregate: `sum(l_extendedprice * l_discount) AS revenue`, filtered by
/// [`q6_predicate`].
pub fn q6_aggregate() -> Agg {
    Agg::sum(col("l_extendedprice") * col("l_discount"))
        .alias("revenue")
        .filter(q6_predicate())
}

/// Drops the groups no row passed the filter in (`count_order` 0).
fn passed(out: RecordBatch) -> Result<RecordBatch> {
    let counts = out.column(9).as_primitive::<Int64Type>();
    let keep = arrow::compute::kernels::cmp::gt(counts, &arrow::array::Int64Array::new_scalar(0))?;
    Ok(filter_record_batch(&out, &keep)?)
}

/// Q1 over `lineitem` on `engine`: one row per (returnflag, linestatus), sorted by them.
pub fn q1(engine: &Engine, lineitem: &RecordBatch) -> Result<RecordBatch> {
    let out = engine.group_by_with(
        lineitem,
        &Q1_KEYS,
        &q1_aggregates(),
        GroupByOptions::sorted(),
    )?;
    passed(out)
}

/// Q1 over a `lineitem` batch already on the GPU.
pub fn q1_resident(lineitem: &GpuBatch) -> Result<RecordBatch> {
    passed(lineitem.group_by_with(&Q1_KEYS, &q1_aggregates(), GroupByOptions::sorted())?)
}

/// Q6 over `lineitem` on `engine`: one row, `revenue` (Decimal128(38, 4)).
pub fn q6(engine: &Engine, lineitem: &RecordBatch) -> Result<RecordBatch> {
    engine.group_by(lineitem, &[], &[q6_aggregate()])
}

/// Q6 over a `lineitem` batch already on the GPU.
pub fn q6_resident(lineitem: &GpuBatch) -> Result<RecordBatch> {
    lineitem.group_by(&[], &[q6_aggregate()])
}

/// One row of Q1's answer: the keys, the exact sums (unscaled, at the result's scale:
/// quantities and prices at 2, `sum_disc_price` at 4, `sum_charge` at 6), the averages to
/// two places as the published answer gives them (unscaled at 2), and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Q1Row {
    /// `l_returnflag`.
    pub returnflag: &'static str,
    /// `l_linestatus`.
    pub linestatus: &'static str,
    /// `sum_qty`, scale 2.
    pub sum_qty: i128,
    /// `sum_base_price`, scale 2.
    pub sum_base_price: i128,
    /// `sum_disc_price`, scale 4.
    pub sum_disc_price: i128,
    /// `sum_charge`, scale 6.
    pub sum_charge: i128,
    /// `avg_qty` rounded to two places (half away from zero), scale 2.
    pub avg_qty: i128,
    /// `avg_price` rounded to two places, scale 2.
    pub avg_price: i128,
    /// `avg_disc` rounded to two places, scale 2.
    pub avg_disc: i128,
    /// `count_order`.
    pub count_order: i64,
}

/// Q1's answer at scale factor 1 (the TPC-H answer set, `answers/q1.out`, whose sums other
/// engines print exactly: `53758257134.8700`, `55909065222.827692`, ...).
pub const SF1_Q1: [Q1Row; 4] = [
    Q1Row {
        returnflag: "A",
        linestatus: "F",
        sum_qty: 3_773_410_700,
        sum_base_price: 5_658_655_440_073,
        sum_disc_price: 537_582_571_348_700,
        sum_charge: 55_909_065_222_827_692,
        avg_qty: 2552,
        avg_price: 3_827_313,
        avg_disc: 5,
        count_order: 1_478_493,
    },
    Q1Row {
        returnflag: "N",
        linestatus: "F",
        sum_qty: 99_141_700,
        sum_base_price: 148_750_471_038,
        sum_disc_price: 14_130_821_680_541,
        sum_charge: 1_469_649_223_194_375,
        avg_qty: 2552,
        avg_price: 3_828_447,
        avg_disc: 5,
        count_order: 38_854,
    },
    Q1Row {
        returnflag: "N",
        linestatus: "O",
        sum_qty: 7_447_604_000,
        sum_base_price: 11_170_172_969_774,
        sum_disc_price: 1_061_182_303_076_056,
        sum_charge: 110_367_043_872_497_010,
        avg_qty: 2550,
        avg_price: 3_824_912,
        avg_disc: 5,
        count_order: 2_920_374,
    },
    Q1Row {
        returnflag: "R",
        linestatus: "F",
        sum_qty: 3_771_975_300,
        sum_base_price: 5_656_804_138_090,
        sum_disc_price: 537_412_926_846_040,
        sum_charge: 55_889_619_119_831_932,
        avg_qty: 2551,
        avg_price: 3_825_085,
        avg_disc: 5,
        count_order: 1_478_870,
    },
];

/// Q6's answer at scale factor 1: `revenue` 123141078.2283 (unscaled, scale 4).
pub const SF1_Q6_REVENUE: i128 = 1_231_410_782_283;

/// `v` (unscaled at `scale`) rounded half away from zero to two places.
fn round_to_cents(v: i128, scale: i8) -> i128 {
    let k = 10i128.pow((scale - 2).max(0) as u32);
    let half = k / 2;
    if v >= 0 {
        (v + half) / k
    } else {
        (v - half) / k
    }
}

/// Checks a Q1 result against [`SF1_Q1`]: the same keys in order, the sums and counts
/// exactly, the averages to two places. `Err` says what differs.
///
/// # Example
/// ```
/// # use arrow_wgpu::tpch;
/// let empty = arrow::record_batch::RecordBatch::new_empty(std::sync::Arc::new(
///     arrow::datatypes::Schema::empty(),
/// ));
/// assert!(tpch::check_q1_sf1(&empty).is_err());
/// ```
pub fn check_q1_sf1(result: &RecordBatch) -> std::result::Result<(), String> {
    if result.num_columns() != 10 || result.num_rows() != SF1_Q1.len() {
        return Err(format!(
            "Q1 has {} rows of {} columns; the answer has 4 rows of 10",
            result.num_rows(),
            result.num_columns()
        ));
    }
    let text = |c: usize, r: usize| -> std::result::Result<String, String> {
        let a = result.column(c);
        arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8)
            .map_err(|e| e.to_string())
            .map(|s| s.as_string::<i32>().value(r).to_string())
    };
    let dec = |c: usize, r: usize| -> std::result::Result<(i128, i8), String> {
        let a = result
            .column(c)
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(|| {
                format!(
                    "Q1 column {c} is {}, not a decimal",
                    result.column(c).data_type()
                )
            })?;
        Ok((a.value(r), a.scale()))
    };
    let counts = result
        .column(9)
        .as_primitive_opt::<Int64Type>()
        .ok_or("count_order is not Int64")?;
    for (r, want) in SF1_Q1.iter().enumerate() {
        let keys = (text(0, r)?, text(1, r)?);
        if keys != (want.returnflag.to_string(), want.linestatus.to_string()) {
            return Err(format!("Q1 row {r} has keys {keys:?}, the answer {want:?}"));
        }
        let exact = [
            ("sum_qty", 2, want.sum_qty, 2),
            ("sum_base_price", 3, want.sum_base_price, 2),
            ("sum_disc_price", 4, want.sum_disc_price, 4),
            ("sum_charge", 5, want.sum_charge, 6),
        ];
        for (name, c, value, scale) in exact {
            if dec(c, r)? != (value, scale) {
                return Err(format!(
                    "Q1 {keys:?} {name}: {:?}, the answer {value} at scale {scale}",
                    dec(c, r)?
                ));
            }
        }
        for (name, c, value) in [
            ("avg_qty", 6, want.avg_qty),
            ("avg_price", 7, want.avg_price),
            ("avg_disc", 8, want.avg_disc),
        ] {
            let (v, scale) = dec(c, r)?;
            if round_to_cents(v, scale) != value {
                return Err(format!(
                    "Q1 {keys:?} {name}: {v} at scale {scale}, the answer {value} at scale 2"
                ));
            }
        }
        if counts.value(r) != want.count_order || counts.is_null(r) {
            return Err(format!(
                "Q1 {keys:?} count_order: {}, the answer {}",
                counts.value(r),
                want.count_order
            ));
        }
    }
    Ok(())
}

/// Checks a Q6 result against [`SF1_Q6_REVENUE`], exactly.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use arrow::array::Decimal128Array;
/// use arrow::record_batch::RecordBatch;
/// use arrow_wgpu::tpch;
/// let revenue = Decimal128Array::from(vec![tpch::SF1_Q6_REVENUE]).with_precision_and_scale(38, 4).unwrap();
/// let result = RecordBatch::try_from_iter([("revenue", Arc::new(revenue) as _)]).unwrap();
/// assert_eq!(tpch::check_q6_sf1(&result), Ok(()));
/// ```
pub fn check_q6_sf1(result: &RecordBatch) -> std::result::Result<(), String> {
    let got = (result.num_rows() == 1 && result.num_columns() == 1)
        .then(|| result.column(0).as_primitive_opt::<Decimal128Type>())
        .flatten()
        .filter(|a| a.is_valid(0))
        .map(|a| (a.value(0), a.scale()));
    match got {
        Some((v, 4)) if v == SF1_Q6_REVENUE => Ok(()),
        other => Err(format!(
            "Q6 revenue {other:?}, the answer {SF1_Q6_REVENUE} at scale 4"
        )),
    }
}
