//! Exact float sums: the accumulator behind `sum`, `mean`, `var` and `stddev` of floats,
//! public so that other engines' aggregates (the DataFusion integration's exact `sum`,
//! `avg`, `var` and `stddev`) give the same bits: partial sums merge exactly and travel as
//! bytes ([`ExactSum::encode`]).
//!
//! ```
//! use arrow_wgpu::exact::{variance, ExactSum};
//! let (mut a, mut b) = (ExactSum::new(), ExactSum::new());
//! for x in [1e16, 1.0] { a.add_f64(x); }
//! for x in [-1e16, 1.0] { b.add_f64(x); }
//! a.merge(&b);
//! assert_eq!(a.sum(), 2.0); // a left-to-right f64 sum gives 0.0 or 1.0 by order
//! let mut bytes = Vec::new();
//! a.encode(&mut bytes);
//! assert_eq!(ExactSum::decode(&bytes).unwrap().sum(), 2.0);
//! let (mut s, mut q) = (ExactSum::new(), ExactSum::new());
//! for x in [1.0, 2.0, 4.0] { s.add_f64(x); q.add_f64_squared(x); }
//! assert_eq!(variance(&s, &q, 3, 1), Some(7.0 / 3.0));
//! ```
//!
//! Every finite f64 is an integer multiple of 2^-1074 below 2^1024, so a sum of f64 values
//! is an integer `S` times 2^-1074, and a sum of their squares an integer times 2^-2148. An
//! [`ExactSum`] holds that integer exactly, as 32-bit digits (the words a GPU can add with
//! 32-bit atomics and a carry), with ±inf and NaN tracked apart. Nothing is rounded until the
//! end, where one conversion rounds to nearest, ties to even:
//!
//! - `sum` is the exact sum correctly rounded: error ≤ 0.5 ulp of the exact sum, whatever
//!   the order of the rows (so threads and the GPU give the same bits);
//! - `mean` is the exact sum divided by the count, rounded once: error ≤ 0.5 ulp of the
//!   exact mean;
//! - `var_pop` / `var_samp` are `(n·Σx² − (Σx)²) / (n·n)` or `/ (n·(n−1))`, computed on exact
//!   integers and rounded once: error ≤ 0.5 ulp of the exact variance;
//! - `stddev` is IEEE `sqrt` of that correctly rounded variance: error < 1 ulp of the exact
//!   standard deviation (0.5 ulp from `sqrt`'s rounding plus at most 0.25 ulp carried from
//!   the variance's, for a normal variance).
//!
//! Each is at least as accurate as a left-to-right f64 sum, and a pure function of the
//! multiset of values. Special values: a NaN, or both +inf and −inf, give NaN (the canonical
//! positive NaN); otherwise an infinity gives that infinity for `sum`/`mean`, and `var` /
//! `stddev` of a group holding any infinity is NaN. An exact sum of zero is `+0.0`; an exact
//! result beyond f64's range rounds to ±inf, as IEEE's overflow rule says.
//!
//! Integer inputs to `mean`/`var` go into the same accumulators, exactly (an i64 or u64 is an
//! integer multiple of 2^-1074 too), so their results are correctly rounded as well.

use smallvec::{smallvec, SmallVec};

/// The scale of a sum of values: units of 2^-1074.
pub(crate) const BIAS_SUM: u32 = 1074;
/// The scale of a sum of squares: units of 2^-2148.
pub(crate) const BIAS_SQUARES: u32 = 2 * BIAS_SUM;

/// The canonical quiet NaN every NaN result becomes.
pub(crate) const CANONICAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0000);

/// `x`, or the canonical NaN when `x` is a NaN (`sqrt` may keep a payload).
pub(crate) fn canonical(x: f64) -> f64 {
    if x.is_nan() {
        CANONICAL_NAN
    } else {
        x
    }
}

/// After this many additions the carry-save digits are normalized (each addition moves a
/// digit by less than 2^32, so an i64 digit takes 2^30 of them with room to spare).
const NORMALIZE_EVERY: u32 = 1 << 30;

/// An exact sum of scaled integers: a fixed-point window, a 256-bit two's-complement
/// integer `win` times 2^`win_base` (units of 2^-bias), plus Σ limbs[i] · 2^(32·(base+i)),
/// plus flags for the special values seen.
///
/// The window is the fast path, in the style of Neal's small superaccumulator: its base is
/// set from the first value added after it was last emptied, [`SLACK_SUM`] (or
/// [`SLACK_SQUARES`]) binades below that value, and a later value whose bits land inside
/// its [`WINDOW_BITS`] is one shifted two-word add, with no allocation. A value outside
/// (far smaller or larger) goes to the limbs, which cover only the range of digits
/// touched; every [`FLUSH_EVERY`] adds the window is moved into the limbs so it never
/// overflows. Both parts are exact, so the order of the values never changes the result.
///
/// # Example
/// ```
/// use arrow_wgpu::exact::ExactSum;
/// let mut s = ExactSum::new();
/// for x in [0.1, 0.2, 0.3, -0.6] {
///     s.add_f64(x);
/// }
/// assert_eq!(s.sum(), 2.7755575615628914e-17); // the exact sum of those doubles, rounded once
/// assert_eq!(s.mean(4), 2.7755575615628914e-17 / 4.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    win_lo: u128,
    win_hi: i128,
    win_base: u32,
    /// Adds into the window since it was last emptied (0: no base chosen yet).
    win_adds: u32,
    base: u32,
    limbs: Vec<i64>,
    pending: u32,
    nan: bool,
    pos_inf: bool,
    neg_inf: bool,
}

/// The bits of the window a value may reach (of its 256): adding [`FLUSH_EVERY`] values
/// below 2^240 stays below 2^254, inside the signed 256-bit window.
const WINDOW_BITS: u32 = 240;
/// Adds between two flushes of the window into the limbs.
const FLUSH_EVERY: u32 = 1 << 14;
/// How far below the first value of a sum the window starts, in binades: values down to
/// 2^-90 times the first one, and up to 2^97 times it (53-bit mantissas in 240 bits), stay
/// on the fast path. Wide enough for the data people sum; wider costs nothing per value.
pub(crate) const SLACK_SUM: u32 = 90;
/// The same for sums of squares (106-bit products): from 2^-64 to 2^70 times the first.
pub(crate) const SLACK_SQUARES: u32 = 64;

/// A finite f64 as (negative, 53-bit integer mantissa, bit position at scale 2^-1074), or
/// `None` for a zero.
#[inline]
fn decompose(x: f64) -> Option<(bool, u64, u32)> {
    let bits = x.to_bits();
    let neg = bits >> 63 == 1;
    let field = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1 << 52) - 1);
    let mantissa = if field == 0 { frac } else { frac | (1 << 52) };
    if mantissa == 0 {
        return None;
    }
    Some((neg, mantissa, field.max(1) - 1))
}

/// How far below the first value of a [`SumSlots`] its window starts, in binades.
const SLOT_SLACK: u32 = 20;
/// The highest shift a value may take in a [`SumSlots`] window: values below 2^(53 + 50).
const SLOT_SHIFT: u32 = 50;
/// How far below the base of the first partial sum merged into empty [`SumSlots`] their
/// base goes, in binades: room for other partitions' partial sums, whose bases follow their
/// own first values.
const SLOT_MERGE_SLACK: u32 = 16;
/// Adds into the windows (all groups together) before they are looked at: 2^24 values
/// below 2^103 stay below 2^127 in any one group.
const SLOT_ADDS: u64 = 1 << 24;
/// A window below this (one value's largest) stays a window through a flush.
const SLOT_KEEP: u128 = 1 << (SLOT_SHIFT + 53);

/// Exact sums of f64 values for many groups, compact: each group's hot state is one
/// `i128`, a fixed-point window whose base all groups share (set 20 binades below the
/// first value added), so a value within 20 binades below and 30 above that first value
/// is one shifted 128-bit add. A value outside the window, an infinity or a NaN goes to
/// an [`ExactSum`] kept beside its group only when needed (the list of those is made at
/// the first such value). What a grouped `sum`/`avg` of floats runs on: the same exact
/// sums as [`ExactSum`], at twice a plain f64 sum's memory per group.
///
/// # Example
/// ```
/// use arrow_wgpu::exact::SumSlots;
/// let mut sums = SumSlots::default();
/// sums.resize(2);
/// for (g, x) in [(0, 1e16), (1, 0.25), (0, 1.0), (0, -1e16), (1, 1e-300)] {
///     sums.add(g, x);
/// }
/// assert_eq!(sums.get(0).sum(), 1.0);
/// assert_eq!(sums.get(1).sum(), 0.25);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SumSlots {
    win: Vec<i128>,
    /// Digits beside the windows: empty until a group needs them, then one entry a group.
    spills: Vec<Option<Box<ExactSum>>>,
    /// The windows' base (bit position at 2^-1074), once a value has set it.
    base: Option<u32>,
    /// Adds into the windows since they were last moved into the digits.
    adds: u64,
    /// Groups with digits beside their window.
    spilled: usize,
}

/// Group `g`'s sum beside its window in `spills` (one entry a group of `groups` once any
/// group has one, `spilled` of them taken), made where it has none.
fn spill_at<'a>(
    spills: &'a mut Vec<Option<Box<ExactSum>>>,
    spilled: &mut usize,
    groups: usize,
    g: usize,
) -> &'a mut ExactSum {
    if spills.len() < groups {
        spills.resize_with(groups, || None);
    }
    let s = &mut spills[g];
    if s.is_none() {
        *spilled += 1;
    }
    s.get_or_insert_with(Box::default)
}

/// The first `n` groups' entries of `spills` taken out, and how many of them are sums
/// (taken from `spilled`).
fn take_spills(
    spills: &mut Vec<Option<Box<ExactSum>>>,
    spilled: &mut usize,
    n: usize,
) -> (Vec<Option<Box<ExactSum>>>, usize) {
    let taken: Vec<_> = spills.drain(..n.min(spills.len())).collect();
    let moved = taken.iter().filter(|s| s.is_some()).count();
    *spilled -= moved;
    (taken, moved)
}

/// `x` as an addend of a [`SumSlots`] window of base `base`, and whether it is one: a
/// value outside the window (too far above or below it, an infinity, a NaN) gives 0 and
/// `false`, without a branch.
#[inline(always)]
fn window_value(x: f64, base: u32) -> (i128, bool) {
    let bits = x.to_bits();
    let field = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1u64 << 52) - 1);
    let m = if field == 0 { frac } else { frac | (1 << 52) };
    let shift = (field.max(1) - 1).wrapping_sub(base);
    let inside = shift <= SLOT_SHIFT && field != 0x7ff;
    // m · 2^shift as two words (shift below 64; the high word's shift in two steps so
    // that a shift of 0 is no shift by 64).
    let s = shift & 63;
    let (lo, hi) = (m << s, (m >> 1) >> (63 - s));
    let v = ((hi as u128) << 64 | lo as u128) as i128;
    let sign = ((bits as i64) >> 63) as i128;
    (if inside { (v ^ sign) - sign } else { 0 }, inside)
}

/// Rows a [`SumSlots`] places in its window at a time ([`Placing::block`]): its two words
/// a row, 4 KiB, stay in the first-level cache beside the values (2,048 rows ran at
/// half the speed of 64-512, which were alike within the machine's noise).
const PLACE_BLOCK: usize = 256;
/// 1.5 · 2^52: a float below 2^51 in magnitude plus this is rounded to an integer, which
/// is then the float's bits less this one's.
const ROUND_UNITS: f64 = 6_755_399_441_055_744.0;
/// 1.5 · 2^104: a float below 2^103 in magnitude plus this, less this, is rounded to a
/// multiple of 2^52.
const ROUND_HIGH: f64 = 1.5 * (1u128 << 104) as f64;
/// A window value's bound, 2^(53 + [`SLOT_SHIFT`]).
const SLOT_TOP: f64 = (1u128 << (SLOT_SHIFT + 53)) as f64;

/// How a [`SumSlots`] turns values into addends of windows of one base.
#[derive(Debug, Clone, Copy)]
enum Placing {
    /// By scaling, where the window's unit 2^(base - 1074) has a normal reciprocal (the
    /// scale, 2^(1074 - base)): a value is inside when its scaled value is an integer
    /// below 2^103, and then that integer is the addend. Plain float arithmetic, the same
    /// in vector registers of any width: no branch, no shift by a varying count.
    Scaled(f64),
    /// From the value's bits ([`window_value`]): windows based within 2^51 of the
    /// smallest subnormal, whose unit has no reciprocal in f64.
    Bits(u32),
}

impl Placing {
    /// The placing for windows of base `base`.
    fn of(base: u32) -> Placing {
        // The scale's exponent field, 1023 + 1074 - base, must be a normal one.
        match 2097u32.checked_sub(base) {
            Some(field @ 1..=2046) => Placing::Scaled(f64::from_bits((field as u64) << 52)),
            _ => Placing::Bits(base),
        }
    }

    /// `x` as an addend (its low and high 64-bit words) and whether it is inside the
    /// window; a value outside gives 0.
    #[inline(always)]
    fn place(self, x: f64) -> (u64, u64, bool) {
        match self {
            Placing::Scaled(scale) => scaled_value(x, scale),
            Placing::Bits(base) => {
                let (v, inside) = window_value(x, base);
                (v as u64, (v >> 64) as u64, inside)
            }
        }
    }

    /// Whether `x` is inside the window.
    fn inside(self, x: f64) -> bool {
        self.place(x).2
    }

    /// Places every value of `values` (at most [`PLACE_BLOCK`]): addend `k` is
    /// `high[k] · 2^64 + low[k]`, 0 for a value outside the window. Returns whether one
    /// was. Scaled, on x86-64 where the CPU has them, with AVX-512 or AVX2: the same
    /// arithmetic in wider registers, so the same words.
    fn block(self, values: &[f64], low: &mut [u64], high: &mut [u64]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Placing::Scaled(scale) = self {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { place_scaled_avx512(values, scale, low, high) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { place_scaled_avx2(values, scale, low, high) };
            }
        }
        place_each(values, low, high, |x| self.place(x))
    }
}

/// [`Placing::Scaled`]'s addend of `x` at scale `scale`: its low and high words and
/// whether it is inside the window (0 if not).
///
/// `s = x · scale` is exact unless it overflows (then it is not below 2^103) or falls
/// below the normal range (then it is not a nonzero integer: a nonzero `x` whose `s` is 0
/// is outside). Rounded to a multiple of 2^52, `s` splits into `high`, and `s - high`,
/// exact and at most 2^51 in magnitude; each of those, as a float below 2^51 plus 1.5 ·
/// 2^52, has its integer in its bits, and the second is `s`'s fraction's test.
#[inline(always)]
fn scaled_value(x: f64, scale: f64) -> (u64, u64, bool) {
    let s = x * scale;
    let high = (s + ROUND_HIGH) - ROUND_HIGH;
    let low = s - high;
    let units = low + ROUND_UNITS;
    let inside = s.abs() < SLOT_TOP && units - ROUND_UNITS == low && (s != 0.0 || x == 0.0);
    let magic = ROUND_UNITS.to_bits() as i64;
    let lo = (units.to_bits() as i64).wrapping_sub(magic);
    let hi =
        ((high * (1.0 / (1u64 << 52) as f64) + ROUND_UNITS).to_bits() as i64).wrapping_sub(magic);
    // hi · 2^52 + lo as two words of a two's complement i128.
    let shifted = (hi as u64) << 52;
    let w0 = shifted.wrapping_add(lo as u64);
    let carry = (w0 < shifted) as u64;
    let w1 = ((hi >> 12) as u64)
        .wrapping_add((lo >> 63) as u64)
        .wrapping_add(carry);
    let mask = (inside as u64).wrapping_neg();
    (w0 & mask, w1 & mask, inside)
}

/// [`Placing::block`]'s loop, placing each value with `place`.
#[inline(always)]
fn place_each(
    values: &[f64],
    low: &mut [u64],
    high: &mut [u64],
    place: impl Fn(f64) -> (u64, u64, bool),
) -> bool {
    let mut outside = false;
    for ((&x, lo), hi) in values.iter().zip(low).zip(high) {
        let (w0, w1, inside) = place(x);
        (*lo, *hi) = (w0, w1);
        outside |= !inside;
    }
    outside
}

/// [`place_each`] of [`scaled_value`], compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn place_scaled_avx512(values: &[f64], scale: f64, low: &mut [u64], high: &mut [u64]) -> bool {
    place_each(values, low, high, |x| scaled_value(x, scale))
}

/// [`place_each`] of [`scaled_value`], compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn place_scaled_avx2(values: &[f64], scale: f64, low: &mut [u64], high: &mut [u64]) -> bool {
    place_each(values, low, high, |x| scaled_value(x, scale))
}

/// An `ahead` for [`add_lanes`] that fetches a group's count in `counts` with its windows
/// (it holds the slice's address, not a borrow, so the counts can be added to meanwhile).
fn counts_ahead(counts: &[u64]) -> impl Fn(usize) {
    let (at, len) = (counts.as_ptr(), counts.len());
    move |g: usize| {
        if g < len {
            crate::prefetch_at(at.wrapping_add(g));
        }
    }
}

/// The values each row adds to the `K` lanes of [`add_lanes`].
trait LaneValues<const K: usize> {
    /// Rows held.
    fn len(&self) -> usize;

    /// Row `j`'s value for each lane.
    fn row(&self, j: usize) -> [f64; K];

    /// Places the values of rows `rows` (at most [`PLACE_BLOCK`]) in each lane's window
    /// ([`Placing::block`]), and says for each lane whether one was outside it.
    fn block(
        &self,
        placings: &[Placing; K],
        rows: std::ops::Range<usize>,
        low: &mut [[u64; PLACE_BLOCK]; K],
        high: &mut [[u64; PLACE_BLOCK]; K],
    ) -> [bool; K];
}

/// One lane: the values as they are (a sum).
struct Values<'a>(&'a [f64]);

impl LaneValues<1> for Values<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn row(&self, j: usize) -> [f64; 1] {
        [self.0[j]]
    }

    #[inline(always)]
    fn block(
        &self,
        placings: &[Placing; 1],
        rows: std::ops::Range<usize>,
        low: &mut [[u64; PLACE_BLOCK]; 1],
        high: &mut [[u64; PLACE_BLOCK]; 1],
    ) -> [bool; 1] {
        [placings[0].block(&self.0[rows], &mut low[0], &mut high[0])]
    }
}

/// Three lanes: the values, and their squares' rounded values and rounding errors
/// ([`split_square`]; 0 where it declines, which the caller adds apart).
struct WithSquares<'a>(&'a [f64]);

impl LaneValues<3> for WithSquares<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn row(&self, j: usize) -> [f64; 3] {
        let x = self.0[j];
        let (p, e, _) = split_square(x);
        [x, p, e]
    }

    /// With all three placings scaled (the windows' usual bases), in one pass: each
    /// value is split and its three addends placed while it is in registers, on x86-64
    /// with AVX-512 or AVX2 where the CPU has them.
    #[inline(always)]
    fn block(
        &self,
        placings: &[Placing; 3],
        rows: std::ops::Range<usize>,
        low: &mut [[u64; PLACE_BLOCK]; 3],
        high: &mut [[u64; PLACE_BLOCK]; 3],
    ) -> [bool; 3] {
        let values = &self.0[rows];
        if let [Placing::Scaled(a), Placing::Scaled(b), Placing::Scaled(c)] = *placings {
            let scales = [a, b, c];
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { place_moments_avx512(values, scales, low, high) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above.
                    return unsafe { place_moments_avx2(values, scales, low, high) };
                }
            }
            return place_moments(values, low, high, |k, v| scaled_value(v, scales[k]));
        }
        place_moments(values, low, high, |k, v| placings[k].place(v))
    }
}

/// [`WithSquares`]' block: for each value, its addend and its square's two parts' in
/// lane `k`'s window by `place(k, v)`, and for each lane whether one was outside.
#[inline(always)]
fn place_moments(
    values: &[f64],
    low: &mut [[u64; PLACE_BLOCK]; 3],
    high: &mut [[u64; PLACE_BLOCK]; 3],
    place: impl Fn(usize, f64) -> (u64, u64, bool),
) -> [bool; 3] {
    let mut outside = [false; 3];
    let [l0, l1, l2] = low.each_mut();
    let [h0, h1, h2] = high.each_mut();
    let words = l0
        .iter_mut()
        .zip(h0)
        .zip(l1.iter_mut().zip(h1))
        .zip(l2.iter_mut().zip(h2));
    for (&x, ((a, b), c)) in values.iter().zip(words) {
        let (p, e, _) = split_square(x);
        for (k, (v, (lo, hi))) in [(x, a), (p, b), (e, c)].into_iter().enumerate() {
            let (w0, w1, inside) = place(k, v);
            (*lo, *hi) = (w0, w1);
            outside[k] |= !inside;
        }
    }
    outside
}

/// [`place_moments`] of [`scaled_value`] at `scales[k]`, compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn place_moments_avx512(
    values: &[f64],
    scales: [f64; 3],
    low: &mut [[u64; PLACE_BLOCK]; 3],
    high: &mut [[u64; PLACE_BLOCK]; 3],
) -> [bool; 3] {
    place_moments(values, low, high, |k, v| scaled_value(v, scales[k]))
}

/// [`place_moments`] of [`scaled_value`] at `scales[k]`, compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn place_moments_avx2(
    values: &[f64],
    scales: [f64; 3],
    low: &mut [[u64; PLACE_BLOCK]; 3],
    high: &mut [[u64; PLACE_BLOCK]; 3],
) -> [bool; 3] {
    place_moments(values, low, high, |k, v| scaled_value(v, scales[k]))
}

/// Adds, for every row `j < rows` where `keep(j)`, `values.row(j)[k]` to group `group(j)`
/// of `lanes[k]`, for each of the `K` lanes (slots of as many groups each: a sum, or the
/// parts of a sum of squares beside it), and calls `each` with the group; `ahead` gets the
/// group of the row a few rows ahead wherever that row's windows are fetched ahead.
///
/// A block of rows at a time. With few groups (their windows in the caches) every value
/// of the block is first placed in its lane's window ([`Placing::block`]: a loop without
/// branches, in vector registers), then each kept row's addends go to its group's windows
/// (a 128-bit add each), the group read once for all lanes. With many, each row is placed
/// as its windows, fetched ahead, come. Last, only where the block had one, the values
/// outside a lane's window go to their groups' digits in that lane.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // rows index the lanes' values and blocks alike
fn add_lanes<const K: usize>(
    mut lanes: [&mut SumSlots; K],
    rows: usize,
    group: impl Fn(usize) -> usize,
    values: impl LaneValues<K>,
    keep: impl Fn(usize) -> bool,
    mut each: impl FnMut(usize),
    ahead: impl Fn(usize),
) {
    const AHEAD: usize = 16;
    /// Below this many groups (256 KiB of windows a lane) the windows stay in the caches.
    const PREFETCH_GROUPS: usize = 1 << 14;
    assert!(values.len() >= rows, "a value for every row");
    let mut i = 0;
    // Until a value has set each lane's base, a row at a time.
    while lanes.iter().any(|l| l.base.is_none()) && i < rows {
        if keep(i) {
            let g = group(i);
            for (lane, v) in lanes.iter_mut().zip(values.row(i)) {
                lane.add(g, v);
            }
            each(g);
        }
        i += 1;
    }
    if i == rows {
        return;
    }
    let bases: [u32; K] = std::array::from_fn(|k| lanes[k].base.expect("set above"));
    let prefetch = lanes.iter().any(|l| l.win.len() > PREFETCH_GROUPS);
    // With many groups each row is placed from its bits as its window comes (the scaled
    // placing's float operations, one row at a time, measured slower there).
    let placings = bases.map(|b| {
        if prefetch {
            Placing::Bits(b)
        } else {
            Placing::of(b)
        }
    });
    let (mut low, mut high) = ([[0u64; PLACE_BLOCK]; K], [[0u64; PLACE_BLOCK]; K]);
    while i < rows {
        // Count the adds once per stretch (an upper bound: values that go to the digits,
        // and rows not kept, are counted too), never more than a lane's windows take
        // before a flush.
        let room = lanes.iter().map(|l| SLOT_ADDS - l.adds).min().unwrap_or(0);
        let end = rows.min(i + room as usize);
        for lane in lanes.iter_mut() {
            lane.adds += (end - i) as u64;
        }
        for from in (i..end).step_by(PLACE_BLOCK) {
            let to = end.min(from + PLACE_BLOCK);
            let mut outside = [false; K];
            if prefetch {
                // Each row's windows are cache misses, fetched ahead: the placing (from
                // the bits) is done while they come, a row at a time.
                for j in from..to {
                    if j + AHEAD < rows {
                        let g = group(j + AHEAD);
                        for lane in &lanes {
                            crate::prefetch_at(lane.win.as_ptr().wrapping_add(g));
                        }
                        ahead(g);
                    }
                    if keep(j) {
                        let (g, row) = (group(j), values.row(j));
                        for k in 0..K {
                            let (v, inside) = window_value(row[k], bases[k]);
                            lanes[k].win[g] += v;
                            outside[k] |= !inside;
                        }
                        each(g);
                    }
                }
            } else {
                outside = values.block(&placings, from..to, &mut low, &mut high);
                // The lanes' windows as slices of one length: one bounds check a row.
                let groups = lanes[0].win.len();
                let wins = lanes.each_mut().map(|l| &mut l.win[..groups]);
                for j in from..to {
                    if keep(j) {
                        let (g, r) = (group(j), j - from);
                        for k in 0..K {
                            wins[k][g] += ((high[k][r] as u128) << 64 | low[k][r] as u128) as i128;
                        }
                        each(g);
                    }
                }
            }
            for k in (0..K).filter(|&k| outside[k]) {
                // The rows the placing left out (the two placings' windows differ: the
                // scaled one also takes values below the base whose bits end above it).
                for j in from..to {
                    let x = values.row(j)[k];
                    if keep(j) && !placings[k].inside(x) {
                        lanes[k].add_outside(group(j), x);
                    }
                }
            }
        }
        for lane in lanes.iter_mut() {
            if lane.adds >= SLOT_ADDS {
                lane.flush_all();
            }
        }
        i = end;
    }
}

impl SumSlots {
    /// Groups held.
    pub fn len(&self) -> usize {
        self.win.len()
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.win.is_empty()
    }

    /// Holds at least `groups` groups (new ones zero).
    pub fn resize(&mut self, groups: usize) {
        if self.win.len() < groups {
            self.win.resize(groups, 0);
            if !self.spills.is_empty() {
                self.spills.resize_with(groups, || None);
            }
        }
    }

    /// Adds `x` to group `g`'s sum.
    #[inline]
    pub fn add(&mut self, g: usize, x: f64) {
        let base = match self.base {
            Some(b) => b,
            None => {
                let field = ((x.to_bits() >> 52) & 0x7ff) as u32;
                if field == 0x7ff {
                    return self.spill(g).add_f64(x);
                }
                if x == 0.0 {
                    return;
                }
                // The first finite non-zero value sets the base, below its lowest bit.
                *self
                    .base
                    .insert((field.max(1) - 1).saturating_sub(SLOT_SLACK))
            }
        };
        self.add_at(g, x, base);
        // Counted whether it went to the window or the digits: an upper bound, as
        // `add_all` counts.
        self.adds += 1;
        if self.adds >= SLOT_ADDS {
            self.flush_all();
        }
    }

    /// Adds `values[i]` to group `groups[i]` for every row. With many groups (more than
    /// fit the caches) each row's window is fetched a few rows ahead: the load of a random
    /// group's window is then most of an add's time.
    pub fn add_all(&mut self, groups: &[usize], values: &[f64]) {
        let n = groups.len().min(values.len());
        self.add_rows(n, |j| groups[j], values, |_| true, |_| ());
    }

    /// [`SumSlots::add_all`], counting each row in `counts[groups[i]]` in the same pass (a
    /// mean's count), which must hold every group.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::SumSlots;
    /// let mut slots = SumSlots::default();
    /// slots.resize(2);
    /// let mut counts = vec![0u64; 2];
    /// slots.add_all_counting(&[0, 1, 0], &[0.5, 5.0, 0.25], &mut counts);
    /// assert_eq!(counts, [2, 1]);
    /// assert_eq!(slots.get(0).mean(counts[0]), 0.375);
    /// assert_eq!(slots.get(1).sum(), 5.0);
    /// ```
    pub fn add_all_counting(&mut self, groups: &[usize], values: &[f64], counts: &mut [u64]) {
        let n = groups.len().min(values.len());
        self.add_rows_counting(n, |j| groups[j], values, |_| true, counts);
    }

    /// [`SumSlots::add_rows`], counting each kept row in `counts[group(j)]`, which must
    /// hold every group. With many groups a row's count is fetched ahead with its window:
    /// a count left to its own miss cost more than the add (three quarters of the time of
    /// a grouped sum of 10M rows into 100k groups went to waiting on it).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::SumSlots;
    /// let (groups, values) = ([1u32, 0, 1], [2.0, 7.0, 0.5]);
    /// let mut slots = SumSlots::default();
    /// slots.resize(2);
    /// let mut n = [0u64; 2];
    /// slots.add_rows_counting(3, |j| groups[j] as usize, &values, |j| j != 1, &mut n);
    /// assert_eq!((slots.get(1).sum(), n), (2.5, [0, 2]));
    /// ```
    #[inline(always)]
    pub fn add_rows_counting(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        counts: &mut [u64],
    ) {
        let ahead = counts_ahead(counts);
        self.add_rows_ahead(rows, group, values, keep, |g| counts[g] += 1, ahead);
    }

    /// Adds `values[j]` to group `group(j)` for every row `j < rows` where `keep(j)`, and
    /// calls `each` with its group: [`SumSlots::add_all_counting`] over group numbers of
    /// any form and a selection of rows (an aggregate's FILTER and the values' nulls).
    /// `group(j)` must be a held group for every `j < rows`, kept or not (groups a few
    /// rows ahead are prefetched), and `values` must hold `rows` values (those of rows
    /// not kept are read and ignored).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::SumSlots;
    /// let (groups, values) = ([1u32, 0, 1], [2.0, 7.0, 0.5]);
    /// let mut slots = SumSlots::default();
    /// slots.resize(2);
    /// let mut n = [0u64; 2];
    /// slots.add_rows(3, |j| groups[j] as usize, &values, |j| j != 1, |g| n[g] += 1);
    /// assert_eq!((slots.get(1).sum(), n), (2.5, [0, 2]));
    /// ```
    #[inline(always)]
    pub fn add_rows(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        each: impl FnMut(usize),
    ) {
        self.add_rows_ahead(rows, group, values, keep, each, |_| ());
    }

    /// [`SumSlots::add_rows`], calling `ahead` with the group of the row a few rows ahead
    /// wherever that row's window is fetched ahead (so `each` can have its state fetched
    /// too): [`add_lanes`] with this one lane.
    #[inline(always)]
    fn add_rows_ahead(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        each: impl FnMut(usize),
        ahead: impl Fn(usize),
    ) {
        add_lanes([self], rows, group, Values(values), keep, each, ahead);
    }

    /// Adds `x` to group `g` with the windows' base `base` set; the caller counts the add.
    #[inline(always)]
    fn add_at(&mut self, g: usize, x: f64, base: u32) {
        match window_value(x, base) {
            (v, true) => self.win[g] += v,
            _ => self.add_outside(g, x),
        }
    }

    /// Adds `x`, a value outside the window, to group `g`'s digits: a zero below the
    /// window adds nothing (a NaN is not zero).
    fn add_outside(&mut self, g: usize, x: f64) {
        if x != 0.0 {
            self.spill(g).add_f64(x);
        }
    }

    fn spill(&mut self, g: usize) -> &mut ExactSum {
        spill_at(&mut self.spills, &mut self.spilled, self.win.len(), g)
    }

    /// Moves every window as large as one value may be into its group's digits, so that
    /// every window left is below one value's bound: the next adds start from one.
    /// Windows of sums far from overflow (all of them, most often) stay where they are:
    /// no group gets digits for having had many rows.
    pub(crate) fn flush_all(&mut self) {
        let base = self.base.unwrap_or(0);
        for g in 0..self.win.len() {
            let w = self.win[g];
            if w.unsigned_abs() >= SLOT_KEEP {
                self.win[g] = 0;
                self.spill(g)
                    .add_at(w < 0, w.unsigned_abs(), base, SLACK_SUM);
            }
        }
        self.adds = 1;
    }

    /// Adds everything `other` holds into group `g`: merging partial sums. A partial sum
    /// that is one 128-bit window near this one's base lands in the group's window like a
    /// value; others in its digits.
    pub fn merge(&mut self, g: usize, other: &ExactSum) {
        if !other.has_special() {
            if let Some((neg, mag)) = other.window_only() {
                if mag == 0 {
                    return;
                }
                // A first merge sets the base a little below its own: the partial sums of
                // other partitions have bases of their own first values, a few binades
                // either side, and one below ours would go to the digits.
                let base = *self
                    .base
                    .get_or_insert(other.win_base.saturating_sub(SLOT_MERGE_SLACK));
                // A window based below ours whose low bits are zero down to our base (a
                // partial sum of values no finer than ours) is the same sum at our base.
                let (mag, at) = match base.checked_sub(other.win_base) {
                    Some(d) if d > 0 && d < 128 && mag.trailing_zeros() >= d => (mag >> d, base),
                    _ => (mag, other.win_base),
                };
                let bits = 128 - mag.leading_zeros();
                let shift = at.wrapping_sub(base);
                if shift <= SLOT_SHIFT && shift + bits <= SLOT_SHIFT + 53 {
                    let v = (mag as i128) << (shift & 63);
                    self.win[g] += if neg { -v } else { v };
                    self.adds += 1;
                    if self.adds >= SLOT_ADDS {
                        self.flush_all();
                    }
                    return;
                }
            }
        }
        self.spill(g).merge(other);
    }

    /// Group `g`'s sum as an [`ExactSum`] (no allocation unless it spilled). A group that
    /// never spilled is its window as it is, at the slots' base: one 128-bit window, which
    /// encodes in 22 bytes, merges into other slots as one add and rounds without big
    /// numbers.
    pub fn get(&self, g: usize) -> ExactSum {
        let w = self.win[g];
        let mut out = match self.spills.get(g) {
            Some(Some(s)) => (**s).clone(),
            _ => return ExactSum::from_window(w, self.base.unwrap_or(0)),
        };
        out.add_at(w < 0, w.unsigned_abs(), self.base.unwrap_or(0), SLACK_SUM);
        out
    }

    /// Group `g`'s sum divided by `n` (n ≥ 1; 1 for the sum itself), rounded once: what
    /// `self.get(g).mean(n)` gives, straight from the window where the group never
    /// spilled (no [`ExactSum`] made).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::SumSlots;
    /// let mut slots = SumSlots::default();
    /// slots.resize(1);
    /// slots.add_all(&[0, 0, 0], &[0.1, 0.2, 0.3]);
    /// assert_eq!(slots.mean(0, 1), slots.get(0).sum());
    /// assert_eq!(slots.mean(0, 3), 0.2);
    /// ```
    pub fn mean(&self, g: usize, n: u64) -> f64 {
        if let (Some(base), None | Some(None)) = (self.base, self.spills.get(g)) {
            let w = self.win[g];
            let exp = base as i64 - BIAS_SUM as i64;
            if let Some(x) = round_small_ratio(w < 0, w.unsigned_abs(), exp, n) {
                return x;
            }
        }
        self.get(g).mean(n)
    }

    /// The groups `order` picks from `parts` (output group `i` is group `order[i].1` of
    /// part `order[i].0`), as [`SumSlots::merge`] of each into empty slots gives them,
    /// without the per-group round trip where it can: every part's windows are moved to
    /// the lowest base among the parts by a left shift, when no picked window would
    /// lose a bit to it, and a group's digits (where it spilled) go with its window.
    pub(crate) fn gather(parts: &[&SumSlots], order: &[(u32, u32)], threads: usize) -> SumSlots {
        use std::sync::atomic::{AtomicBool, Ordering};
        let base = parts.iter().filter_map(|p| p.base).min();
        let mut out = SumSlots::default();
        {
            // Every window shifted to the lowest base, on the threads; one that would not
            // fit (a window of at most 103 bits shifted stays below 2^126) says so.
            let lossy = AtomicBool::new(false);
            let win = crate::collect_on_threads(order.len(), threads, |i| {
                let (p, g) = order[i];
                let part = parts[p as usize];
                let d = part.base.zip(base).map_or(0, |(b, lo)| b - lo);
                match part.win[g as usize] {
                    0 => 0,
                    w if (128 - w.unsigned_abs().leading_zeros()) + d <= SLOT_SHIFT + 53 => w << d,
                    _ => {
                        lossy.store(true, Ordering::Relaxed);
                        0
                    }
                }
            });
            if !lossy.into_inner() {
                out.base = base;
                out.win = win;
                // Each window is now below 2^103, as one value is: one add so far.
                out.adds = 1;
                // A group's digits beside its window (a few values far from the others')
                // go with it: its sum is theirs plus the window, whatever the base.
                if parts.iter().any(|p| p.spilled > 0) {
                    out.spills = order
                        .iter()
                        .map(|&(p, g)| parts[p as usize].spills.get(g as usize).cloned().flatten())
                        .collect();
                    out.spilled = out.spills.iter().filter(|s| s.is_some()).count();
                }
                return out;
            }
        }
        out.resize(order.len());
        for (i, &(p, g)) in order.iter().enumerate() {
            out.merge(i, &parts[p as usize].get(g as usize));
        }
        out
    }

    /// Removes the first `n` groups (the others move down by `n`) and returns them.
    pub fn take_first(&mut self, n: usize) -> SumSlots {
        let n = n.min(self.win.len());
        let (spills, moved) = take_spills(&mut self.spills, &mut self.spilled, n);
        SumSlots {
            win: self.win.drain(..n).collect(),
            spills,
            base: self.base,
            adds: self.adds,
            spilled: moved,
        }
    }

    /// Bytes held, roughly (constant time).
    pub fn size(&self) -> usize {
        self.win.capacity() * 16
            + self.spills.capacity() * std::mem::size_of::<Option<Box<ExactSum>>>()
            + self.spilled * (std::mem::size_of::<ExactSum>() + 64)
    }
}

/// Rows of one pass of [`GroupedAdder::add`]: they share the bases their largest value
/// sets.
const ADDER_ROWS: usize = 1 << 12;
/// The most values [`GroupedAdder::add`] adds far below (more than [`ADDER_NEAR`] binades
/// under) its passes' largest value before it moves its per-group integers into the
/// groups' sums. Such a value is below 2^(53 + 50) at the far base, so 2^20 of them stay
/// below 2^123 in a group's `i128` (their squares below 2^226 in its 256 bits).
const ADDER_FAR: usize = 1 << 20;
/// How far below the largest value of a pass a value may lie and still take the fast
/// path, in binades (53 + 61 = 114 bits per value).
const ADDER_SPAN: u64 = 61;

/// Adds a batch of f64 values into per-group exact sums (and sums of squares) a pass at a
/// time: each pass of [`ADDER_ROWS`] rows finds its largest exponent, adds every value as
/// one shifted integer into a per-group `i128` (squares into a per-group 256-bit integer;
/// a value within 10 binades of the largest as a `u64`, squared by one multiply), and
/// moves each touched group's integers into its [`ExactSum`] once the next pass's largest
/// binade differs, after [`ADDER_FAR`] values far below it, and at the end. A value far
/// below the pass's largest one, an infinity or a NaN goes to its group's sum directly.
/// The result is the same exact sums as adding every value one by one, at a fraction of
/// the cost: what [`MomentSlots`] runs on while it holds few groups.
#[derive(Debug, Default, Clone)]
struct GroupedAdder {
    acc: Vec<i128>,
    acc_squares: Vec<(u128, u128)>,
    /// Per group, the values of a pass within [`ADDER_NEAR`] binades of its largest.
    near: Vec<Near>,
    touched: Vec<usize>,
    marked: Vec<bool>,
}

/// A group's values of one pass that lie within [`ADDER_NEAR`] binades below the pass's
/// largest: each is a `u64` at the pass's near base, so its square is one 64-bit
/// multiply (the far values' squares are 256-bit shifts).
#[derive(Debug, Default, Clone, Copy)]
struct Near {
    sum: i128,
    squares: u128,
    /// How many times `squares` wrapped past 2^128.
    squares_high: u64,
    /// The group's rows (near, far and special values) since its integers were moved.
    rows: u64,
}

/// Binades below a pass's largest value within which a value is [`Near`]: shifted by at
/// most this much, a mantissa of 53 bits stays below 2^63.
const ADDER_NEAR: u64 = 10;

impl GroupedAdder {
    /// Adds `values[i]` to `sums[group_of(i)]` (and its square to `squares[...]`) for every
    /// row `i` where `selected(i)`. `sums` (and `squares`) must cover every group named.
    #[inline]
    fn add(
        &mut self,
        sums: &mut [ExactSum],
        squares: Option<&mut [ExactSum]>,
        values: &[f64],
        group_of: impl Fn(usize) -> usize,
        selected: impl Fn(usize) -> bool,
    ) {
        self.add_rows(sums, squares, None, values, group_of, selected);
    }

    /// [`GroupedAdder::add`], counting each selected row in `counts[group_of(i)]` in the
    /// same pass (a variance's or a mean's count), which must hold every group named.
    #[inline]
    fn add_counting(
        &mut self,
        sums: &mut [ExactSum],
        squares: Option<&mut [ExactSum]>,
        values: &[f64],
        group_of: impl Fn(usize) -> usize,
        selected: impl Fn(usize) -> bool,
        counts: &mut [u64],
    ) {
        self.add_rows(sums, squares, Some(counts), values, group_of, selected);
    }

    #[inline]
    fn add_rows(
        &mut self,
        sums: &mut [ExactSum],
        mut squares: Option<&mut [ExactSum]>,
        mut counts: Option<&mut [u64]>,
        values: &[f64],
        group_of: impl Fn(usize) -> usize,
        selected: impl Fn(usize) -> bool,
    ) {
        let groups = sums.len();
        if self.acc.len() < groups {
            self.acc.resize(groups, 0);
            self.marked.resize(groups, false);
        }
        let with_squares = squares.is_some();
        if with_squares && self.acc_squares.len() < groups {
            self.acc_squares.resize(groups, (0, 0));
        }
        if self.near.len() < groups {
            self.near.resize(groups, Near::default());
        }
        // With few groups against the rows (and against a pass's, since the bases may
        // change every pass), every group is looked at when the integers are moved, and
        // no row marks its group.
        let dense = groups.saturating_mul(8) <= values.len().min(ADDER_ROWS);
        // The near and far bases the held integers are at, and the rows added since they
        // were last moved (a bound on the far adds): a pass whose largest value sets the
        // same bases adds on top.
        let mut held: Option<(u64, u64)> = None;
        let mut held_rows = 0usize;
        let mut start = 0;
        while start < values.len() {
            let end = (start + ADDER_ROWS).min(values.len());
            let part = &values[start..end];
            // The largest exponent field among the finite values of this pass.
            let mut top = 0u64;
            for (k, x) in part.iter().enumerate() {
                let field = (x.to_bits() >> 52) & 0x7ff;
                if field != 0x7ff && field > top && selected(start + k) {
                    top = field;
                }
            }
            let base = top.max(1).saturating_sub(1).saturating_sub(ADDER_SPAN);
            let near = top.max(1).saturating_sub(1).saturating_sub(ADDER_NEAR);
            // The integers are moved when this pass's bases differ from theirs, or when
            // its rows could take the far integers past ADDER_FAR adds: rows are counted a
            // pass at a time, so that the pass's loop holds the state as slices.
            if let Some((n, b)) =
                held.filter(|&h| h != (near, base) || held_rows + part.len() > ADDER_FAR)
            {
                self.flush(
                    sums,
                    squares.as_deref_mut(),
                    counts.as_deref_mut(),
                    n,
                    b,
                    dense,
                );
                held_rows = 0;
            }
            held = Some((near, base));
            held_rows += part.len();
            let GroupedAdder {
                acc,
                acc_squares,
                near: slots,
                touched,
                marked,
            } = &mut *self;
            for (k, x) in part.iter().enumerate() {
                let i = start + k;
                if !selected(i) {
                    continue;
                }
                let g = group_of(i);
                if !dense && !marked[g] {
                    marked[g] = true;
                    touched.push(g);
                }
                let a = &mut slots[g];
                a.rows += 1;
                let bits = x.to_bits();
                let field = (bits >> 52) & 0x7ff;
                let pos = field.max(1) - 1;
                if field == 0x7ff || pos < base {
                    // A special value, or one below this pass's window: directly.
                    sums[g].add_f64(*x);
                    if let Some(sq) = squares.as_deref_mut() {
                        sq[g].add_f64_squared(*x);
                    }
                    continue;
                }
                let frac = bits & ((1u64 << 52) - 1);
                let m = if field == 0 { frac } else { frac | (1 << 52) };
                if pos >= near {
                    let w = m << (pos - near);
                    a.sum += if bits >> 63 == 1 {
                        -(w as i128)
                    } else {
                        w as i128
                    };
                    if with_squares {
                        let (l, wrapped) = a.squares.overflowing_add(w as u128 * w as u128);
                        a.squares = l;
                        a.squares_high += wrapped as u64;
                    }
                    continue;
                }
                let shift = (pos - base) as u32;
                let v = (m as i128) << shift;
                acc[g] += if bits >> 63 == 1 { -v } else { v };
                if with_squares {
                    let m2 = m as u128 * m as u128;
                    let s2 = 2 * shift;
                    let (lo, hi) = if s2 == 0 {
                        (m2, 0)
                    } else if s2 < 128 {
                        (m2 << s2, m2 >> (128 - s2))
                    } else {
                        (0, m2 << (s2 - 128))
                    };
                    let a = &mut acc_squares[g];
                    let (l, carry) = a.0.overflowing_add(lo);
                    a.0 = l;
                    a.1 = a.1.wrapping_add(hi).wrapping_add(carry as u128);
                }
            }
            start = end;
        }
        if let Some((near, base)) = held {
            self.flush(sums, squares, counts, near, base, dense);
        }
    }

    /// Moves each touched group's integers (near ones at `near`, far ones at `base`) into
    /// its sums, and its row count into `counts`, once. `dense`: every group is looked at
    /// (no row marked its group).
    fn flush(
        &mut self,
        sums: &mut [ExactSum],
        mut squares: Option<&mut [ExactSum]>,
        mut counts: Option<&mut [u64]>,
        near: u64,
        base: u64,
        dense: bool,
    ) {
        let groups = sums.len();
        let mut one = |g: usize| {
            if self.near[g].rows == 0 {
                return;
            }
            let Near {
                sum,
                squares: sq_lo,
                squares_high,
                rows,
            } = std::mem::take(&mut self.near[g]);
            if let Some(c) = counts.as_deref_mut() {
                c[g] += rows;
            }
            let far = std::mem::take(&mut self.acc[g]);
            for (v, pos) in [(sum, near), (far, base)] {
                sums[g].add_at(v < 0, v.unsigned_abs(), pos as u32, SLACK_SUM);
            }
            if let Some(sq) = squares.as_deref_mut() {
                // Sized only when squares are kept.
                let (lo, hi) = std::mem::take(&mut self.acc_squares[g]);
                for (m, pos) in [
                    (sq_lo, 2 * near as u32),
                    (squares_high as u128, 2 * near as u32 + 128),
                    (lo, 2 * base as u32),
                    (hi, 2 * base as u32 + 128),
                ] {
                    sq[g].add_at(false, m, pos, SLACK_SQUARES);
                }
            }
        };
        let mut touched = std::mem::take(&mut self.touched);
        if dense {
            (0..groups).for_each(&mut one);
        } else {
            touched.iter().for_each(|&g| one(g));
        }
        for &g in &touched {
            self.marked[g] = false;
        }
        touched.clear();
        self.touched = touched;
    }
}

/// 2^27 + 1: multiplying by it splits a float's 53 bits into two halves of 26 and 27
/// (Veltkamp), whose products are exact.
const SPLITTER: f64 = 134_217_729.0;
/// The smallest magnitude whose square [`split_square`] splits exactly: x · x is then a
/// multiple of 2^-1074, so its rounding error, and every partial product, is a float.
const SPLIT_LOW: f64 = f64::from_bits((1023 - 485) << 52);
/// The magnitude from which [`split_square`] declines: a square below 2^1022 is finite,
/// with room for the split's own products.
const SPLIT_HIGH: f64 = f64::from_bits((1023 + 511) << 52);
/// How far below the high part's window a [`MomentSlots`] sets the low part's, in
/// binades: the rounding error of a square whose last bit is at `b` lies between
/// 2^(b - 53) and 2^(b - 1).
const SPLIT_GAP: u32 = 53;

/// `x * x` as `p + e` exactly, `p` the rounded square and `e` its rounding error (both
/// floats, by Dekker's product of the two halves), and whether it is: for a zero and for
/// magnitudes in [2^-485, 2^511). Others (too small for the error to be a float, too
/// large for the square to be finite, infinities, NaN) give `(0, 0, false)`. Plain float
/// arithmetic, no fused multiply-add: the same bits on every CPU, vectorised.
#[inline(always)]
fn split_square(x: f64) -> (f64, f64, bool) {
    let ok = split_takes(x);
    let p = x * x;
    let c = SPLITTER * x;
    let hi = c - (c - x);
    let lo = x - hi;
    let e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
    let mask = (ok as u64).wrapping_neg();
    (
        f64::from_bits(p.to_bits() & mask),
        f64::from_bits(e.to_bits() & mask),
        ok,
    )
}

/// Whether [`split_square`] splits `x`: a zero, or a magnitude in [2^-485, 2^511).
#[inline(always)]
fn split_takes(x: f64) -> bool {
    let a = x.abs();
    // Without branches (`&`, `|`), so that a loop of it is vectorised.
    #[allow(clippy::manual_range_contains)]
    let ok = (a >= SPLIT_LOW) & (a < SPLIT_HIGH) | (a == 0.0);
    ok
}

/// Exact sums and sums of squares of f64 values for any number of groups: what a grouped
/// `var`/`stddev` of floats runs on. The sums are the same exact ones as adding every
/// value and square to an [`ExactSum`] one by one.
///
/// With many groups (more than 2^15), each group's sum is a [`SumSlots`] window. Each
/// square `x · x` is split exactly into its rounded value `p` and its rounding error `e`,
/// two floats. Each goes to a window of its own (the error's 53 binades below the
/// square's), so a row is three 128-bit adds, placed a block at a time like a sum's. A
/// square the split can't take (a value below 2^-485 or from 2^511, an infinity, a NaN)
/// goes to an [`ExactSum`] beside its group. With few groups, every group's state fits
/// the first-level cache, and each group's sums are kept whole, added a pass of rows at
/// a time (fewer stores a row than three windows take). The slots move from that form to
/// the windows, once, when they grow past 2^15 groups.
///
/// # Example
/// ```
/// use arrow_wgpu::exact::{variance, MomentSlots};
/// let mut slots = MomentSlots::default();
/// slots.resize(2);
/// let (groups, values) = ([0u32, 1, 0, 0], [1.0, 2.0, 2.0, 4.0]);
/// let mut n = [0u64; 2];
/// slots.add_rows(4, |j| groups[j] as usize, &values, |_| true, |g| n[g] += 1);
/// assert_eq!(slots.sum(0).sum(), 7.0);
/// assert_eq!(variance(&slots.sum(0), &slots.squares(0), n[0], 1), Some(7.0 / 3.0));
/// ```
#[derive(Debug, Clone)]
pub struct MomentSlots {
    /// While the slots hold at most [`FEW_GROUPS`] groups: each group's sums whole, added
    /// a pass at a time (all groups' state in the first-level cache, a row is fewer
    /// stores than three windows'). `None` once more groups came; the windows below are
    /// then the sums.
    few: Option<Box<Few>>,
    sum: SumSlots,
    /// The squares' rounded values.
    high: SumSlots,
    /// Their rounding errors.
    low: SumSlots,
    /// Squares beside the windows (at scale [`BIAS_SQUARES`]): those the split declines,
    /// and merged sums of squares that are no window of the high part's units. Empty
    /// until a group needs one, then one entry a group.
    squares: Vec<Option<Box<ExactSum>>>,
    /// Groups with a sum of squares beside their windows.
    spilled: usize,
}

/// The most groups [`MomentSlots`] holds as whole sums (its few-groups form): about where
/// the windows overtook them (10M values, `exact_sum` bench: 44 against 76 ms at 100
/// groups, 69 against 90 at 10k, alike at 40k, 291 against 130 at 100k).
const FEW_GROUPS: usize = 1 << 15;

/// [`MomentSlots`]' few-groups form: each group's sum and sum of squares, and the adder.
#[derive(Debug, Clone, Default)]
struct Few {
    sums: Vec<ExactSum>,
    squares: Vec<ExactSum>,
    adder: GroupedAdder,
}

/// Rows [`MomentSlots`] adds at a time before it looks for squares the split declined.
const SPLIT_ROWS: usize = 1 << 12;

impl Default for MomentSlots {
    fn default() -> MomentSlots {
        MomentSlots::of(Few::default())
    }
}

impl MomentSlots {
    /// Empty slots (no group held).
    pub fn new() -> MomentSlots {
        MomentSlots::default()
    }

    /// Empty slots in the windows' form from the start, whatever the groups.
    #[cfg(test)]
    fn with_windows() -> MomentSlots {
        MomentSlots {
            few: None,
            ..MomentSlots::default()
        }
    }

    /// The slots of the whole sums `few`.
    fn of(few: Few) -> MomentSlots {
        MomentSlots {
            few: Some(Box::new(few)),
            sum: SumSlots::default(),
            high: SumSlots::default(),
            low: SumSlots::default(),
            squares: Vec::new(),
            spilled: 0,
        }
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        match &self.few {
            Some(f) => f.sums.len(),
            None => self.sum.len(),
        }
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds at least `groups` groups (new ones zero). Past [`FEW_GROUPS`] groups the
    /// sums held whole move into the windows, once.
    pub fn resize(&mut self, groups: usize) {
        if let Some(f) = &mut self.few {
            if groups <= FEW_GROUPS {
                if f.sums.len() < groups {
                    f.sums.resize_with(groups, ExactSum::new);
                    f.squares.resize_with(groups, ExactSum::new);
                }
                return;
            }
            let f = *self.few.take().expect("held");
            self.resize(groups);
            for (g, (s, q)) in f.sums.iter().zip(&f.squares).enumerate() {
                self.merge(g, s, q);
            }
            return;
        }
        for lane in [&mut self.sum, &mut self.high, &mut self.low] {
            lane.resize(groups);
        }
        if !self.squares.is_empty() && self.squares.len() < groups {
            self.squares.resize_with(groups, || None);
        }
    }

    /// Adds `values[j]` (and its square) to group `group(j)` for every row `j < rows`
    /// where `keep(j)`, and calls `each` with its group. As [`SumSlots::add_rows`]:
    /// `group(j)` must be a held group for every `j < rows`, and `values` must hold `rows`
    /// values.
    #[inline(always)]
    pub fn add_rows(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        each: impl FnMut(usize),
    ) {
        self.add_rows_ahead(rows, group, values, keep, each, |_| ());
    }

    /// [`MomentSlots::add_rows`], counting each kept row in `counts[group(j)]`, which must
    /// hold every group (fetched ahead with the windows, as [`SumSlots::add_rows_counting`]
    /// does).
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::{std_dev, MomentSlots};
    /// let mut slots = MomentSlots::default();
    /// slots.resize(1);
    /// let mut n = [0u64; 1];
    /// let values = [2.0, 4.0, f64::NAN, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    /// slots.add_rows_counting(9, |_| 0, &values, |j| j != 2, &mut n);
    /// assert_eq!(std_dev(&slots.sum(0), &slots.squares(0), n[0], 0), Some(2.0));
    /// ```
    #[inline(always)]
    pub fn add_rows_counting(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        counts: &mut [u64],
    ) {
        if let Some(f) = &mut self.few {
            let (sums, squares) = (&mut f.sums, Some(&mut f.squares[..]));
            return f
                .adder
                .add_counting(sums, squares, &values[..rows], group, keep, counts);
        }
        let ahead = counts_ahead(counts);
        self.add_rows_ahead(rows, group, values, keep, |g| counts[g] += 1, ahead);
    }

    /// [`MomentSlots::add_rows`] with [`add_lanes`]'s `ahead`: the values, and their
    /// squares split in two, go to their windows in one pass over the rows.
    #[inline(always)]
    fn add_rows_ahead(
        &mut self,
        rows: usize,
        group: impl Fn(usize) -> usize,
        values: &[f64],
        keep: impl Fn(usize) -> bool,
        mut each: impl FnMut(usize),
        ahead: impl Fn(usize),
    ) {
        let values = &values[..rows];
        if let Some(f) = &mut self.few {
            let (sums, squares) = (&mut f.sums, Some(&mut f.squares[..]));
            f.adder.add(sums, squares, values, &group, &keep);
            (0..rows).filter(|&j| keep(j)).for_each(|j| each(group(j)));
            return;
        }
        let mut i = 0;
        // Until a value sets the sum's and the squares' bases, a row at a time (the low
        // part's base follows the high part's).
        while (self.sum.base.is_none() || self.high.base.is_none()) && i < rows {
            if keep(i) {
                let g = group(i);
                self.add(g, values[i]);
                each(g);
            }
            i += 1;
        }
        while i < rows {
            let end = rows.min(i + SPLIT_ROWS);
            let part = &values[i..end];
            add_lanes(
                [&mut self.sum, &mut self.high, &mut self.low],
                part.len(),
                |k| group(i + k),
                WithSquares(part),
                |k| keep(i + k),
                &mut each,
                &ahead,
            );
            // The squares the split declined (added to the windows as zeros), apart: the
            // part is in the caches still.
            if !part.iter().all(|&x| split_takes(x)) {
                for (j, &x) in (i..end).zip(part) {
                    if keep(j) && !split_takes(x) {
                        self.square(group(j)).add_f64_squared(x);
                    }
                }
            }
            i = end;
        }
    }

    /// Adds `x` and its square to group `g`.
    fn add(&mut self, g: usize, x: f64) {
        self.sum.add(g, x);
        match split_square(x) {
            (p, e, true) => {
                self.high.add(g, p);
                self.follow_high();
                self.low.add(g, e);
            }
            _ => self.square(g).add_f64_squared(x),
        }
    }

    /// Sets the low part's base, once the high part's is set, [`SPLIT_GAP`] binades below.
    fn follow_high(&mut self) {
        if let (None, Some(b)) = (self.low.base, self.high.base) {
            self.low.base = Some(b.saturating_sub(SPLIT_GAP));
        }
    }

    fn square(&mut self, g: usize) -> &mut ExactSum {
        spill_at(&mut self.squares, &mut self.spilled, self.sum.len(), g)
    }

    /// Adds a partial state into group `g`: `sum` (scale [`BIAS_SUM`]) and `squares`
    /// (scale [`BIAS_SQUARES`], as [`MomentSlots::squares`] gives it). A sum of squares
    /// held in 128 bits at units no finer than 2^-1074 lands in the high part's window
    /// like a value; others beside it.
    ///
    /// # Example
    /// ```
    /// use arrow_wgpu::exact::{variance, MomentSlots};
    /// let (mut a, mut b) = (MomentSlots::default(), MomentSlots::default());
    /// a.resize(1);
    /// b.resize(1);
    /// a.add_rows(2, |_| 0, &[1.0, 2.0], |_| true, |_| ());
    /// b.add_rows(2, |_| 0, &[3.0, 1e-200], |_| true, |_| ());
    /// a.merge(0, &b.sum(0), &b.squares(0));
    /// assert_eq!(a.sum(0).sum(), 6.0);
    /// assert_eq!(variance(&a.sum(0), &a.squares(0), 4, 0), Some(1.25));
    /// ```
    pub fn merge(&mut self, g: usize, sum: &ExactSum, squares: &ExactSum) {
        if let Some(f) = &mut self.few {
            f.sums[g].merge(sum);
            f.squares[g].merge(squares);
            return;
        }
        self.sum.merge(g, sum);
        if !squares.has_special() {
            if let Some((neg, mag)) = squares.window_only() {
                if let Some(base) = squares.win_base.checked_sub(BIAS_SUM) {
                    let v = mag as i128;
                    self.high
                        .merge(g, &ExactSum::from_window(if neg { -v } else { v }, base));
                    self.follow_high();
                    return;
                }
            }
        }
        self.square(g).merge(squares);
    }

    /// Group `g`'s exact sum (scale [`BIAS_SUM`]).
    pub fn sum(&self, g: usize) -> ExactSum {
        match &self.few {
            Some(f) => f.sums[g].clone(),
            None => self.sum.get(g),
        }
    }

    /// Group `g`'s exact sum of squares (scale [`BIAS_SQUARES`]): the two parts' windows
    /// (their units 2^1074 times finer at this scale) and whatever is beside them.
    pub fn squares(&self, g: usize) -> ExactSum {
        if let Some(f) = &self.few {
            return f.squares[g].clone();
        }
        let mut out = match self.squares.get(g) {
            Some(Some(s)) => (**s).clone(),
            _ => ExactSum::new(),
        };
        for part in [&self.high, &self.low] {
            out.merge_shifted(&part.get(g), BIAS_SUM, SLACK_SQUARES);
        }
        out
    }

    /// Removes the first `n` groups (the others move down by `n`) and returns them.
    pub fn take_first(&mut self, n: usize) -> MomentSlots {
        if let Some(f) = &mut self.few {
            let n = n.min(f.sums.len());
            return MomentSlots::of(Few {
                sums: f.sums.drain(..n).collect(),
                squares: f.squares.drain(..n).collect(),
                adder: GroupedAdder::default(),
            });
        }
        let (squares, moved) = take_spills(&mut self.squares, &mut self.spilled, n);
        MomentSlots {
            few: None,
            sum: self.sum.take_first(n),
            high: self.high.take_first(n),
            low: self.low.take_first(n),
            squares,
            spilled: moved,
        }
    }

    /// Bytes held, roughly (constant time).
    pub fn size(&self) -> usize {
        if let Some(f) = &self.few {
            return (f.sums.capacity() + f.squares.capacity()) * std::mem::size_of::<ExactSum>();
        }
        self.sum.size()
            + self.high.size()
            + self.low.size()
            + self.squares.capacity() * std::mem::size_of::<Option<Box<ExactSum>>>()
            + self.spilled * (std::mem::size_of::<ExactSum>() + 64)
    }
}

/// Why bytes are not an [`ExactSum`] that [`ExactSum::encode`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an encoded exact sum: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Encoding tags: a window that fits 128 bits, or limbs.
const TAG_WINDOW: u8 = 1;
const TAG_LIMBS: u8 = 2;

/// Appends a sum held in a 128-bit window: `v` · 2^`base` with the special values'
/// `flags`, 22 bytes.
#[inline]
fn encode_window(flags: u8, base: u32, v: i128, out: &mut Vec<u8>) {
    out.push(TAG_WINDOW);
    out.push(flags);
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&v.to_le_bytes());
}

impl ExactSum {
    /// An empty sum (zero).
    pub fn new() -> ExactSum {
        ExactSum::default()
    }

    /// Appends this sum to `out` as bytes that [`ExactSum::decode`] reads back (a partial
    /// aggregate's state between processes or partitions): 22 bytes for a sum whose window
    /// fits 128 bits, else its digits.
    ///
    /// ```
    /// use arrow_wgpu::exact::ExactSum;
    /// let mut s = ExactSum::new();
    /// s.add_f64(1e300);
    /// s.add_f64(1e-300); // far outside one window: digits
    /// let mut bytes = Vec::new();
    /// s.encode(&mut bytes);
    /// assert_eq!(ExactSum::decode(&bytes).unwrap().sum(), 1e300);
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = self.nan as u8 | (self.pos_inf as u8) << 1 | (self.neg_inf as u8) << 2;
        if let Some((neg, mag)) = self.window_only() {
            let v = if neg {
                (mag as i128).wrapping_neg()
            } else {
                mag as i128
            };
            encode_window(flags, self.win_base, v, out);
            return;
        }
        let mut s = self.clone();
        s.flush();
        s.normalize();
        out.push(TAG_LIMBS);
        out.push(flags);
        out.extend_from_slice(&s.base.to_le_bytes());
        for limb in &s.limbs {
            out.extend_from_slice(&limb.to_le_bytes());
        }
    }

    /// Appends the encoding of the sum of the one value `x` (of `x * x` when `squared`):
    /// what [`ExactSum::encode`] writes for a sum that was given only `x`, up to where its
    /// window starts, written without building the sum. A partial aggregate that hands its
    /// rows on as states (one a row) writes them this way.
    ///
    /// ```
    /// use arrow_wgpu::exact::ExactSum;
    /// for x in [0.1, -3e300, 5e-324, f64::NAN, f64::NEG_INFINITY, -0.0] {
    ///     for squared in [false, true] {
    ///         let mut bytes = Vec::new();
    ///         ExactSum::encode_value(x, squared, &mut bytes);
    ///         let mut s = ExactSum::new();
    ///         if squared { s.add_f64_squared(x) } else { s.add_f64(x) }
    ///         let back = ExactSum::decode(&bytes).unwrap();
    ///         assert_eq!(back.mean(1).to_bits(), s.mean(1).to_bits());
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn encode_value(x: f64, squared: bool, out: &mut Vec<u8>) {
        let bits = x.to_bits();
        let field = ((bits >> 52) & 0x7ff) as u32;
        if field == 0x7ff {
            let mut s = ExactSum::new();
            s.special(x);
            return s.encode(out);
        }
        let frac = bits & ((1u64 << 52) - 1);
        let m = if field == 0 { frac } else { frac | (1 << 52) };
        let pos = field.max(1) - 1;
        let (v, base) = match (m, squared) {
            (0, _) => (0, 0),
            (m, true) => ((m as u128 * m as u128) as i128, 2 * pos),
            (m, false) if bits >> 63 == 1 => (-(m as i128), pos),
            (m, false) => (m as i128, pos),
        };
        encode_window(0, base, v, out);
    }

    /// The sum `v` · 2^(`base` - [`BIAS_SUM`]) held in the window alone, as
    /// [`ExactSum::decode`] builds a window.
    pub(crate) fn from_window(v: i128, base: u32) -> ExactSum {
        ExactSum {
            win_lo: v as u128,
            win_hi: v >> 127,
            win_base: base,
            win_adds: (v != 0) as u32,
            ..ExactSum::default()
        }
    }

    /// The integer `v` as an exact sum: one 128-bit window at the units of 1, the form a
    /// partial integer sum travels in (it encodes in 22 bytes and merges as one add).
    ///
    /// ```
    /// use arrow_wgpu::exact::ExactSum;
    /// let s = ExactSum::from_i128(-(1i128 << 100) - 3);
    /// assert_eq!(s.to_i128(), Some(-(1i128 << 100) - 3));
    /// assert_eq!(s.mean(2), -(2f64.powi(99)) - 1.5);
    /// ```
    pub fn from_i128(v: i128) -> ExactSum {
        ExactSum::from_window(v, BIAS_SUM)
    }

    /// The sum as an `i128`, when it is an integer that fits one (no NaN or infinity).
    ///
    /// ```
    /// use arrow_wgpu::exact::ExactSum;
    /// let mut s = ExactSum::new();
    /// s.add_f64(2.5);
    /// assert_eq!(s.to_i128(), None);
    /// s.add_f64(0.5);
    /// assert_eq!(s.to_i128(), Some(3));
    /// ```
    pub fn to_i128(&self) -> Option<i128> {
        if self.has_special() {
            return None;
        }
        let (neg, mag, base) = match self.window_only() {
            Some((neg, mag)) => (neg, mag, self.win_base),
            None => {
                let (neg, big, exp) = self.exact();
                if big.is_zero() {
                    return Some(0);
                }
                // The value is big · 2^(exp - BIAS_SUM): an integer when no bit below 2^0
                // is set; it fits when what's left has at most 127 bits.
                let below = (i64::from(BIAS_SUM) - exp).max(0) as u64;
                if big.any_below(below) || big.bits() > below + 127 {
                    return None;
                }
                let mag = u128::from(big.bits_from(below))
                    | (u128::from(big.bits_from(below + 64)) << 64);
                return signed(neg, mag, (exp - i64::from(BIAS_SUM)).max(0));
            }
        };
        if mag == 0 {
            return Some(0);
        }
        signed(neg, mag, i64::from(base) - i64::from(BIAS_SUM))
    }

    /// The sum [`ExactSum::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<ExactSum, DecodeError> {
        let (&tag, rest) = bytes.split_first().ok_or(DecodeError("empty"))?;
        let (&flags, rest) = rest.split_first().ok_or(DecodeError("no flags"))?;
        if flags > 7 {
            return Err(DecodeError("unknown flags"));
        }
        let base = u32::from_le_bytes(
            rest.get(..4)
                .ok_or(DecodeError("no base"))?
                .try_into()
                .expect("4 bytes"),
        );
        let rest = &rest[4..];
        let mut s = ExactSum {
            nan: flags & 1 != 0,
            pos_inf: flags & 2 != 0,
            neg_inf: flags & 4 != 0,
            ..ExactSum::default()
        };
        match tag {
            TAG_WINDOW => {
                let v = i128::from_le_bytes(
                    rest.try_into()
                        .map_err(|_| DecodeError("a window is 16 bytes"))?,
                );
                if base > 2 * BIAS_SQUARES + 256 {
                    return Err(DecodeError("window base out of range"));
                }
                s.win_lo = v as u128;
                s.win_hi = v >> 127;
                s.win_base = base;
                s.win_adds = (v != 0) as u32;
            }
            TAG_LIMBS => {
                if rest.len() % 8 != 0 || rest.len() / 8 > 1 << 16 {
                    return Err(DecodeError("limbs are 8 bytes each"));
                }
                s.base = base;
                s.limbs = rest
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                if (s.base as u64 + s.limbs.len() as u64) > u32::MAX as u64 / 32 {
                    return Err(DecodeError("limbs out of range"));
                }
            }
            _ => return Err(DecodeError("unknown tag")),
        }
        Ok(s)
    }

    /// Whether a NaN, or both infinities, were added: the result is NaN.
    pub fn is_nan(&self) -> bool {
        self.nan || (self.pos_inf && self.neg_inf)
    }

    /// Whether any non-finite value was added.
    pub fn has_special(&self) -> bool {
        self.nan || self.pos_inf || self.neg_inf
    }

    #[inline]
    fn special(&mut self, x: f64) -> bool {
        if x.is_nan() {
            self.nan = true;
        } else if x == f64::INFINITY {
            self.pos_inf = true;
        } else if x == f64::NEG_INFINITY {
            self.neg_inf = true;
        } else {
            return false;
        }
        true
    }

    /// Adds `x` (an accumulator at scale [`BIAS_SUM`]).
    #[inline]
    pub fn add_f64(&mut self, x: f64) {
        if self.special(x) {
            return;
        }
        if let Some((neg, m, pos)) = decompose(x) {
            self.add_fast(neg, m as u128, 53, pos, SLACK_SUM);
        }
    }

    /// Adds `x * x` (an accumulator at scale [`BIAS_SQUARES`]); a special `x` is recorded
    /// as NaN or +inf.
    #[inline]
    pub fn add_f64_squared(&mut self, x: f64) {
        if self.special(x) {
            return;
        }
        if let Some((_, m, pos)) = decompose(x) {
            self.add_fast(
                false,
                (m as u128) * (m as u128),
                106,
                2 * pos,
                SLACK_SQUARES,
            );
        }
    }

    /// Adds an integer (at scale [`BIAS_SUM`]).
    pub fn add_i128(&mut self, v: i128) {
        self.add_at(v < 0, v.unsigned_abs(), BIAS_SUM, SLACK_SUM);
    }

    /// Adds the square of an integer of at most 64 bits of magnitude (at scale
    /// [`BIAS_SQUARES`]).
    pub(crate) fn add_square_of(&mut self, magnitude: u64) {
        let m = magnitude as u128 * magnitude as u128;
        self.add_at(false, m, BIAS_SQUARES, SLACK_SQUARES);
    }

    /// Adds ±`m` · 2^`pos` (nothing when `m` is 0) through [`ExactSum::add_fast`], its
    /// bit length counted here.
    #[inline]
    fn add_at(&mut self, neg: bool, m: u128, pos: u32, slack: u32) {
        if m != 0 {
            self.add_fast(neg, m, 128 - m.leading_zeros(), pos, slack);
        }
    }

    /// Adds ±`m` · 2^`pos` (`m` below 2^`bits`) into the window where it fits, else into
    /// the limbs. `slack`: where a new window starts below this value.
    #[inline]
    fn add_fast(&mut self, neg: bool, m: u128, bits: u32, pos: u32, slack: u32) {
        if self.win_adds == 0 {
            self.win_base = pos.saturating_sub(slack);
        }
        let shift = pos.wrapping_sub(self.win_base);
        if pos < self.win_base || shift + bits > WINDOW_BITS {
            self.add(neg, m, pos);
            return;
        }
        let (lo, hi) = if shift == 0 {
            (m, 0)
        } else if shift < 128 {
            (m << shift, m >> (128 - shift))
        } else {
            (0, m << (shift - 128))
        };
        if neg {
            let (l, borrow) = self.win_lo.overflowing_sub(lo);
            self.win_lo = l;
            self.win_hi = self
                .win_hi
                .wrapping_sub(hi as i128)
                .wrapping_sub(borrow as i128);
        } else {
            let (l, carry) = self.win_lo.overflowing_add(lo);
            self.win_lo = l;
            self.win_hi = self
                .win_hi
                .wrapping_add(hi as i128)
                .wrapping_add(carry as i128);
        }
        self.win_adds += 1;
        if self.win_adds >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// Moves the window into the limbs and empties it.
    fn flush(&mut self) {
        let (neg, lo, hi) = self.window_parts();
        if lo != 0 {
            self.add(neg, lo, self.win_base);
        }
        if hi != 0 {
            self.add(neg, hi, self.win_base + 128);
        }
        self.win_lo = 0;
        self.win_hi = 0;
        self.win_adds = 0;
    }

    /// The window's value as (negative, the low and high 128 bits of its magnitude).
    fn window_parts(&self) -> (bool, u128, u128) {
        if self.win_hi < 0 {
            // Two's complement negation of the 256-bit value.
            let (lo, borrow) = 0u128.overflowing_sub(self.win_lo);
            let hi = (!(self.win_hi as u128)).wrapping_add((!borrow) as u128);
            (true, lo, hi)
        } else {
            (false, self.win_lo, self.win_hi as u128)
        }
    }

    /// The window as (negative, magnitude), when the limbs are empty and the window's value
    /// fits 128 bits: the case a fast rounding serves.
    fn window_only(&self) -> Option<(bool, u128)> {
        if !self.limbs.is_empty() {
            return None;
        }
        let v = self.win_lo as i128;
        // The 256-bit value fits an i128 when its high half is the low half's sign.
        (self.win_hi == (v >> 127)).then(|| (v < 0, v.unsigned_abs()))
    }

    /// The sum of a GPU group's digit arrays: `pos[i]` and `neg[i]` are 32-bit digits of
    /// the positive and negative parts at bit `32 · (lowest + i)` (in the accumulator's
    /// units), `flags` its NaN and infinity bits. Where the difference fits 127 bits (every
    /// sum of values within 2^70 of each other's magnitude, about) it is held as one window
    /// and rounds without big numbers; a group of ten million sums spent most of its host
    /// time digit by digit otherwise.
    pub(crate) fn from_digits(pos: &[u32], neg: &[u32], lowest: u32, flags: u32) -> ExactSum {
        let fits =
            |d: &[u32]| d.iter().skip(4).all(|&w| w == 0) && d.get(3).is_none_or(|&w| w < 1 << 31);
        let mut out = if fits(pos) && fits(neg) {
            let part = |d: &[u32]| {
                d.iter()
                    .take(4)
                    .enumerate()
                    .fold(0u128, |acc, (i, &w)| acc | (w as u128) << (32 * i))
            };
            // Each part is below 2^127: the difference is an i128.
            ExactSum::from_window(part(pos) as i128 - part(neg) as i128, 32 * lowest)
        } else {
            let mut e = ExactSum::default();
            for (i, (&p, &n)) in pos
                .iter()
                .zip(neg.iter().chain(std::iter::repeat(&0)))
                .enumerate()
            {
                e.add_digit(false, p, 32 * (lowest + i as u32));
                e.add_digit(true, n, 32 * (lowest + i as u32));
            }
            e
        };
        out.add_flags(flags);
        out
    }

    /// Adds ±`digit` · 2^`pos` (in the accumulator's units): how the GPU's digit arrays
    /// come back in.
    pub(crate) fn add_digit(&mut self, neg: bool, digit: u32, pos: u32) {
        if digit != 0 {
            self.add(neg, digit as u128, pos);
        }
    }

    /// Adds everything `other` holds (an accumulator at the same scale): merging partial
    /// sums, exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        self.merge_shifted(other, 0, SLACK_SUM);
    }

    /// Adds everything `other` holds times 2^`shift` (its units are 2^`shift` of ours: a
    /// sum at scale [`BIAS_SUM`] of the parts of squares, shifted by [`BIAS_SUM`], is at
    /// [`BIAS_SQUARES`]). `slack`: where a new window starts below the first part.
    pub(crate) fn merge_shifted(&mut self, other: &ExactSum, shift: u32, slack: u32) {
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
        if other.limbs.is_empty() {
            // The window alone: its two 128-bit halves, each one add.
            let (neg, lo, hi) = other.window_parts();
            let at = other.win_base + shift;
            self.add_at(neg, lo, at, slack);
            self.add_at(neg, hi, at + 128, slack);
            return;
        }
        let (neg, magnitude, exp) = other.exact();
        for (i, d) in magnitude.0.iter().enumerate() {
            self.add_digit(neg, *d, exp as u32 + shift + 32 * i as u32);
        }
    }

    /// Records the special values the GPU saw: bit 0 NaN, bit 1 +inf, bit 2 -inf.
    pub(crate) fn add_flags(&mut self, flags: u32) {
        self.nan |= flags & 1 != 0;
        self.pos_inf |= flags & 2 != 0;
        self.neg_inf |= flags & 4 != 0;
    }

    /// Adds ±`magnitude` · 2^`pos` (in the accumulator's units).
    fn add(&mut self, neg: bool, magnitude: u128, pos: u32) {
        let shift = pos % 32;
        let first = pos / 32;
        let words = [
            magnitude as u32,
            (magnitude >> 32) as u32,
            (magnitude >> 64) as u32,
            (magnitude >> 96) as u32,
        ];
        let mut digits = [0u32; 5];
        for (j, digit) in digits.iter_mut().enumerate() {
            let here = if j < 4 { (words[j] as u64) << shift } else { 0 };
            let below = if j > 0 && shift > 0 {
                (words[j - 1] as u64) >> (32 - shift)
            } else {
                0
            };
            *digit = (here | below) as u32;
        }
        let Some(lo) = digits.iter().position(|d| *d != 0) else {
            return;
        };
        let hi = digits.iter().rposition(|d| *d != 0).expect("non-zero");
        self.cover(first + lo as u32, first + hi as u32);
        let offset = (first + lo as u32 - self.base) as usize;
        for (j, d) in digits[lo..=hi].iter().enumerate() {
            let limb = &mut self.limbs[offset + j];
            if neg {
                *limb -= *d as i64;
            } else {
                *limb += *d as i64;
            }
        }
        self.pending += 1;
        if self.pending >= NORMALIZE_EVERY {
            self.normalize();
        }
    }

    /// Makes the limbs cover digit positions `lo..=hi`.
    fn cover(&mut self, lo: u32, hi: u32) {
        if self.limbs.is_empty() {
            self.base = lo;
            self.limbs = vec![0; (hi - lo + 1) as usize];
            return;
        }
        if lo < self.base {
            let extra = (self.base - lo) as usize;
            self.limbs.splice(0..0, std::iter::repeat_n(0, extra));
            self.base = lo;
        }
        let end = self.base as usize + self.limbs.len();
        if hi as usize >= end {
            self.limbs.resize(hi as usize + 1 - self.base as usize, 0);
        }
    }

    /// Propagates carries: every limb but the last in `0..2^32`; the last holds the sign
    /// (0 or -1 after the loop) unless the number needs another limb.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        for limb in self.limbs.iter_mut() {
            let v = *limb + carry;
            *limb = v & 0xffff_ffff;
            carry = v >> 32;
        }
        while carry != 0 && carry != -1 {
            self.limbs.push(carry & 0xffff_ffff);
            carry >>= 32;
        }
        if carry == -1 {
            self.limbs.push(-1);
        }
        self.pending = 0;
    }

    /// The exact finite part: (negative, magnitude, exponent) with value
    /// ±magnitude · 2^exponent · 2^-bias.
    pub(crate) fn exact(&self) -> (bool, Big, i64) {
        if self.limbs.is_empty() {
            return self.window_exact();
        }
        self.digits_exact()
    }

    /// [`ExactSum::exact`] through the digits: the window moved into a copy's digits.
    fn digits_exact(&self) -> (bool, Big, i64) {
        let mut s = self.clone();
        s.flush();
        s.normalize();
        let neg = s.limbs.last().is_some_and(|l| *l < 0);
        let mut digits: Digits = s.limbs.iter().map(|l| *l as u32).collect();
        if neg {
            // Two's complement over the limbs (the top limb is all ones).
            let mut carry = 1u64;
            for d in digits.iter_mut() {
                let v = (!*d) as u64 + carry;
                *d = v as u32;
                carry = v >> 32;
            }
        }
        let mut big = Big(digits);
        big.trim();
        (neg, big, 32 * s.base as i64)
    }

    /// [`ExactSum::exact`] of a sum held in its window alone, read from the window's
    /// words (no copy of the sum, no digits of its own): the same magnitude, from its
    /// lowest non-zero 32-bit digit.
    fn window_exact(&self) -> (bool, Big, i64) {
        let (neg, lo, hi) = self.window_parts();
        if lo == 0 && hi == 0 {
            return (false, Big(Digits::new()), 32 * self.base as i64);
        }
        // The 256-bit magnitude shifted to a digit boundary: 288 bits as nine digits.
        let (first, r) = (self.win_base / 32, self.win_base % 32);
        let words = [
            lo as u64,
            (lo >> 64) as u64,
            hi as u64,
            (hi >> 64) as u64,
            0,
        ];
        let mut digits = Digits::new();
        for i in 0..5 {
            let below = if i > 0 && r > 0 {
                words[i - 1] >> (64 - r)
            } else {
                0
            };
            let w = words[i] << r | below;
            digits.extend([w as u32, (w >> 32) as u32]);
        }
        let zeros = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..zeros);
        let mut big = Big(digits);
        big.trim();
        (neg, big, 32 * (first as i64 + zeros as i64))
    }

    /// The correctly rounded sum of an accumulator at scale [`BIAS_SUM`].
    pub fn sum(&self) -> f64 {
        self.mean(1)
    }

    /// The exact sum divided by `n` (n ≥ 1), rounded once (scale [`BIAS_SUM`]).
    pub fn mean(&self, n: u64) -> f64 {
        if self.is_nan() {
            return CANONICAL_NAN;
        }
        if self.pos_inf {
            return f64::INFINITY;
        }
        if self.neg_inf {
            return f64::NEG_INFINITY;
        }
        if let Some((neg, mag)) = self.window_only() {
            let exp = self.win_base as i64 - BIAS_SUM as i64;
            if let Some(x) = round_small_ratio(neg, mag, exp, n) {
                return x;
            }
        }
        let (neg, mag, exp) = self.exact();
        round_ratio(neg, &mag, exp - BIAS_SUM as i64, n)
    }
}

/// ±`mag` · 2^`exp` / `n`, rounded once to nearest (ties to even), without big numbers:
/// the quotient is taken on `mag` shifted to 127 or 128 bits, so that it has at least 63
/// significant bits, with a sticky bit for a non-zero remainder, and converted (which
/// rounds once); scaling by a power of two is then exact. `None` where the result would
/// be subnormal or beyond f64's range (the big-number path rounds those).
fn round_small_ratio(neg: bool, mag: u128, exp: i64, n: u64) -> Option<f64> {
    if mag == 0 {
        return Some(0.0);
    }
    let shift = mag.leading_zeros().saturating_sub(1);
    let a = mag << shift;
    // A sum (n = 1) needs no division: a 128-bit one is a library call of tens of
    // nanoseconds, which a group-by of millions of sums paid for each. Nor a conversion:
    // `a` below 2^127 has its top bit at 126, so its 53 bits below that, rounded to nearest even by
    // the 74 bits under them, are the result's significand (u128 to f64 is a library
    // call too).
    if n == 1 && a >> 127 == 0 {
        const LOW: u32 = 126 - 52;
        let (mut m, rest) = ((a >> LOW) as u64, a & ((1 << LOW) - 1));
        let half = 1u128 << (LOW - 1);
        m += (rest > half || (rest == half && m & 1 == 1)) as u64;
        // m = 1.x · 2^52 (2^53 when rounded up to the next binade); the result is
        // m · 2^(LOW + exp - shift).
        let e = 1023 + 52 + LOW as i64 + exp - shift as i64 + (m >> 53) as i64;
        if !(1..=2046).contains(&e) {
            return None;
        }
        let out = f64::from_bits((m & ((1 << 52) - 1)) | ((e as u64) << 52));
        return Some(if neg { -out } else { out });
    }
    let q = if n == 1 {
        a
    } else {
        let (q, r) = (a / n as u128, a % n as u128);
        q | (r != 0) as u128
    };
    let f = q as f64;
    // f = 1.x · 2^e; the result is f · 2^(exp - shift).
    let bits = f.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 + exp - shift as i64;
    if !(1..=2046).contains(&e) {
        return None;
    }
    let out = f64::from_bits((bits & !(0x7ff << 52)) | ((e as u64) << 52));
    Some(if neg { -out } else { out })
}

/// The integer `sum` divided by `n` (n ≥ 1), rounded once, as [`ExactSum::mean`] gives
/// it. Where both are exact f64 values (at most 2^53 in magnitude), IEEE division of the
/// two is that one rounding already, with no big-number arithmetic (a group-by of a million
/// groups spent most of its time here).
pub fn int_mean(sum: i128, n: u64) -> f64 {
    const EXACT: u128 = 1 << 53;
    if sum.unsigned_abs() <= EXACT && u128::from(n) <= EXACT {
        return sum as f64 / n as f64;
    }
    let mut e = ExactSum::default();
    e.add_i128(sum);
    e.mean(n)
}

/// ±`mag` · 2^`shift` as an `i128` (`shift` may be negative: then the bits shifted out
/// must be zero), when it fits.
fn signed(neg: bool, mag: u128, shift: i64) -> Option<i128> {
    let mag = if shift >= 0 {
        let shift = u32::try_from(shift).ok().filter(|s| *s < 128)?;
        (mag.leading_zeros() >= shift).then(|| mag << shift)?
    } else {
        let shift = u32::try_from(-shift).ok()?;
        if shift >= 128 || mag.trailing_zeros() < shift {
            return None;
        }
        mag >> shift
    };
    if neg {
        0i128.checked_sub_unsigned(mag)
    } else {
        i128::try_from(mag).ok()
    }
}

/// The variance of `n` values from the exact sum of the values (`sum`, scale
/// [`BIAS_SUM`]) and of their squares (`squares`, scale [`BIAS_SQUARES`]):
/// `(n·Σx² − (Σx)²) / (n·(n − ddof))`, rounded once. `None` when `n <= ddof`.
pub fn variance(sum: &ExactSum, squares: &ExactSum, n: u64, ddof: u64) -> Option<f64> {
    Some(match variance_parts(sum, squares, n, ddof)? {
        Err(special) => special,
        Ok((numerator, exp, d)) => round_ratio(false, &numerator, exp, d),
    })
}

/// The standard deviation: `sqrt` of the variance, taken on the variance scaled by an even
/// power of two into `[1/4, 8)` (rounded once there, always a normal number) and scaled back
/// exactly, so that a variance beyond f64's range or a subnormal one loses nothing: error
/// < 1 ulp of the exact standard deviation.
pub fn std_dev(sum: &ExactSum, squares: &ExactSum, n: u64, ddof: u64) -> Option<f64> {
    let (numerator, exp, d) = match variance_parts(sum, squares, n, ddof)? {
        Err(special) => return Some(special),
        Ok(parts) => parts,
    };
    if numerator.is_zero() {
        return Some(0.0);
    }
    // log2 of the variance, within one.
    let log2 = numerator.bits() as i64 + exp - (64 - d.leading_zeros()) as i64;
    let k = log2.div_euclid(2);
    let scaled = round_ratio(false, &numerator, exp - 2 * k, d);
    let root = scaled.sqrt();
    // Exact unless the result overflows or is subnormal (then that multiply rounds it).
    let half = k / 2;
    let out = root * 2f64.powi(half as i32) * 2f64.powi((k - half) as i32);
    Some(out)
}

/// `(n·Σx² − (Σx)²)` as an exact integer with its exponent, and the divisor
/// `n·(n − ddof)`; or the NaN of a group with special values; `None` when `n <= ddof`.
#[allow(clippy::type_complexity)]
fn variance_parts(
    sum: &ExactSum,
    squares: &ExactSum,
    n: u64,
    ddof: u64,
) -> Option<Result<(Big, i64, u64), f64>> {
    if n <= ddof {
        return None;
    }
    if sum.has_special() || squares.has_special() {
        return Some(Err(CANONICAL_NAN));
    }
    let (_, s1, e1) = sum.exact();
    let (_, s2, e2) = squares.exact();
    // n·S2·2^e2 − S1²·2^(2·e1), both in units of 2^-2148: bring them to the lower exponent.
    let a = s2.mul_small(n);
    let b = s1.mul(&s1);
    let (ea, eb) = (e2, 2 * e1);
    let low = ea.min(eb);
    let a = a.shl((ea - low) as u32);
    let b = b.shl((eb - low) as u32);
    // n·Σx² ≥ (Σx)² (Cauchy–Schwarz), exactly.
    let mut numerator = a.sub(&b);
    numerator.trim();
    let d = n as u128 * (n - ddof) as u128;
    // n < 2^32 rows per batch keeps d below 2^64; beyond that, divide by n first (the
    // result is then not always correctly rounded).
    let (numerator, d) = if d <= u64::MAX as u128 {
        (numerator, d as u64)
    } else {
        (numerator.div_small(n).0, n - ddof)
    };
    Some(Ok((numerator, low - BIAS_SQUARES as i64, d)))
}

/// A big integer's digits: held inline up to 512 bits (every variance's and mean's numbers
/// of values within ~2^150 of each other), so that rounding millions of groups' variances
/// allocates nothing; on the heap beyond.
type Digits = SmallVec<[u32; 16]>;

/// An unsigned big integer, 32-bit digits, least significant first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Big(pub(crate) Digits);

impl Big {
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|d| *d == 0)
    }

    fn bits(&self) -> u64 {
        match self.0.iter().rposition(|d| *d != 0) {
            None => 0,
            Some(i) => i as u64 * 32 + (32 - self.0[i].leading_zeros()) as u64,
        }
    }

    fn bit(&self, i: u64) -> bool {
        let w = (i / 32) as usize;
        w < self.0.len() && (self.0[w] >> (i % 32)) & 1 == 1
    }

    /// Whether any bit below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let w = (i / 32) as usize;
        if self.0[..w.min(self.0.len())].iter().any(|d| *d != 0) {
            return true;
        }
        w < self.0.len() && !i.is_multiple_of(32) && self.0[w] & ((1u32 << (i % 32)) - 1) != 0
    }

    /// Bits `from..from + 64` as a u64.
    fn bits_from(&self, from: u64) -> u64 {
        let mut out = 0u64;
        for k in 0..64 {
            if self.bit(from + k) {
                out |= 1 << k;
            }
        }
        out
    }

    fn shl(&self, n: u32) -> Big {
        let (words, bits) = ((n / 32) as usize, n % 32);
        let mut out: Digits = smallvec![0u32; words];
        let mut carry = 0u32;
        for d in &self.0 {
            if bits == 0 {
                out.push(*d);
            } else {
                out.push((d << bits) | carry);
                carry = d >> (32 - bits);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }

    fn mul_small(&self, m: u64) -> Big {
        let (lo, hi) = (m as u32 as u64, m >> 32);
        let part = |f: u64| {
            let mut out = Digits::with_capacity(self.0.len() + 1);
            let mut carry = 0u64;
            for d in &self.0 {
                let v = *d as u64 * f + carry;
                out.push(v as u32);
                carry = v >> 32;
            }
            out.push(carry as u32);
            Big(out)
        };
        part(lo).add(&part(hi).shl(32))
    }

    fn add(&self, other: &Big) -> Big {
        let n = self.0.len().max(other.0.len());
        let mut out = Digits::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v =
                *self.0.get(i).unwrap_or(&0) as u64 + *other.0.get(i).unwrap_or(&0) as u64 + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        Big(out)
    }

    /// `self - other`; `other` must not be larger.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Digits::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = self.0[i] as i64 - *other.0.get(i).unwrap_or(&0) as i64 - borrow;
            out.push(v as u32);
            borrow = (v < 0) as i64;
        }
        debug_assert!(borrow == 0 && other.bits() <= self.bits());
        Big(out)
    }

    fn mul(&self, other: &Big) -> Big {
        let mut out: Digits = smallvec![0u32; self.0.len() + other.0.len() + 1];
        for (i, a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, b) in other.0.iter().enumerate() {
                let v = *a as u64 * *b as u64 + out[i + j] as u64 + carry;
                out[i + j] = v as u32;
                carry = v >> 32;
            }
            let mut k = i + other.0.len();
            while carry != 0 {
                let v = out[k] as u64 + carry;
                out[k] = v as u32;
                carry = v >> 32;
                k += 1;
            }
        }
        Big(out)
    }

    /// (quotient, remainder) of a division by `d` > 0.
    fn div_small(&self, d: u64) -> (Big, u64) {
        let mut out: Digits = smallvec![0u32; self.0.len()];
        let mut rem = 0u128;
        for i in (0..self.0.len()).rev() {
            let cur = (rem << 32) | self.0[i] as u128;
            out[i] = (cur / d as u128) as u32;
            rem = cur % d as u128;
        }
        (Big(out), rem as u64)
    }
}

/// ±`magnitude` · 2^`exp` / `d`, rounded to the nearest f64, ties to even; `+0.0` for zero.
pub(crate) fn round_ratio(neg: bool, magnitude: &Big, exp: i64, d: u64) -> f64 {
    if magnitude.is_zero() {
        return 0.0;
    }
    // Scale up so that the quotient has at least 55 bits (a 53-bit mantissa, a rounding bit
    // and one more); the remainder becomes a sticky bit.
    let b = magnitude.bits() as i64;
    let s = (55 + 64 - b).max(0);
    let (q, r) = magnitude.shl(s as u32).div_small(d);
    let e0 = exp - s;
    let qb = q.bits() as i64;
    // Keep 53 bits, or fewer where the result is subnormal (lowest bit 2^-1074).
    let shift = (qb - 53).max(-1074 - e0);
    debug_assert!(shift >= 2);
    let shift = shift as u64;
    let mut m = if shift >= q.bits() {
        0
    } else {
        q.bits_from(shift)
    };
    let half = q.bit(shift - 1);
    let rest = r != 0 || q.any_below(shift - 1);
    if half && (rest || m & 1 == 1) {
        m += 1;
    }
    let mut e = e0 + shift as i64;
    if m == 1 << 53 {
        m = 1 << 52;
        e += 1;
    }
    let bits = if m == 0 {
        0
    } else if m < 1 << 52 {
        debug_assert_eq!(e, -1074);
        m
    } else {
        let field = e + 1075;
        if field >= 2047 {
            0x7ff0_0000_0000_0000
        } else {
            ((field as u64) << 52) | (m - (1 << 52))
        }
    };
    f64::from_bits(bits | ((neg as u64) << 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift64 generator of test data from `seed` (not zero).
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The reference: every value straight into the limbs (no window), rounded by the
    /// big-number path.
    fn slow(xs: &[f64], squares: bool) -> ExactSum {
        let mut s = ExactSum::default();
        for x in xs {
            if s.special(*x) {
                continue;
            }
            if let Some((neg, m, pos)) = decompose(*x) {
                if squares {
                    s.add(false, m as u128 * m as u128, 2 * pos);
                } else {
                    s.add(neg, m as u128, pos);
                }
            }
        }
        s
    }

    fn fast(xs: &[f64], squares: bool) -> ExactSum {
        let mut s = ExactSum::default();
        for x in xs {
            if squares {
                s.add_f64_squared(*x);
            } else {
                s.add_f64(*x);
            }
        }
        s
    }

    /// An exact value in one form: no low zero digits; zero as (false, [], 0).
    fn canon(s: &ExactSum) -> (bool, Vec<u32>, i64) {
        let (neg, mut big, mut exp) = s.exact();
        big.trim();
        while big.0.first() == Some(&0) {
            big.0.remove(0);
            exp += 32;
        }
        if big.0.is_empty() {
            return (false, Vec::new(), 0);
        }
        (neg, big.0.to_vec(), exp)
    }

    /// The window gives the limbs' exact value and the same rounded sum, mean, variance.
    fn same_as_slow(xs: &[f64]) {
        let (f, s) = (fast(xs, false), slow(xs, false));
        assert_eq!(canon(&f), canon(&s), "{xs:?}");
        let slow_sum = {
            let (neg, mag, exp) = s.exact();
            if s.is_nan() || s.has_special() {
                s.sum()
            } else {
                round_ratio(neg, &mag, exp - BIAS_SUM as i64, 1)
            }
        };
        assert_eq!(f.sum().to_bits(), slow_sum.to_bits(), "sum {xs:?}");
        for n in [1u64, 3, 7, 1 << 40, u64::MAX] {
            let want = if s.has_special() {
                s.mean(n)
            } else {
                let (neg, mag, exp) = s.exact();
                round_ratio(neg, &mag, exp - BIAS_SUM as i64, n)
            };
            assert_eq!(f.mean(n).to_bits(), want.to_bits(), "mean /{n} {xs:?}");
        }
        let (fq, sq) = (fast(xs, true), slow(xs, true));
        assert_eq!(canon(&fq), canon(&sq), "squares {xs:?}");
        let n = xs.len() as u64;
        assert_eq!(
            variance(&f, &fq, n, 1).map(f64::to_bits),
            variance(&s, &sq, n, 1).map(f64::to_bits),
            "variance {xs:?}"
        );
    }

    #[test]
    fn window_edges_match_the_limbs() {
        let first = 1.0f64;
        // The first value sets the window; values SLACK_SUM binades below it are the
        // lowest inside, one binade lower is outside; 240 - 53 - SLACK_SUM above, inside.
        let low_in = first * 2f64.powi(-(SLACK_SUM as i32));
        let low_out = first * 2f64.powi(-(SLACK_SUM as i32) - 1);
        let high_in = first * 2f64.powi((WINDOW_BITS - 53 - SLACK_SUM) as i32);
        let high_out = high_in * 2.0;
        for xs in [
            vec![first, low_in, -low_in, low_in * 1.5],
            vec![first, low_out, low_in, -first],
            vec![first, high_in, -high_in, 3.0],
            vec![first, high_out, -high_out, 0.1],
            vec![0.1, 0.2, 0.3, -0.6],          // cancellation
            vec![1e308, 1e308, -1e308, -1e308], // to zero, near the top
            vec![5e-324, 5e-324, -1e-323, 2.2e-308, -2.2e-308], // subnormals
            vec![-0.0, 0.0, -0.0],
            vec![1.0, f64::NAN, 2.0],
            vec![f64::INFINITY, 1.0],
            vec![f64::INFINITY, f64::NEG_INFINITY],
            vec![f64::MAX, f64::MAX, -f64::MAX],
            vec![2f64.powi(40), -2f64.powi(40), 1e-300, 1e300],
            vec![1e-300, 1e300, -1e300],
        ] {
            same_as_slow(&xs);
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn moment_slots_give_the_one_by_one_sums() {
        let mut next = xorshift(0x1234_5678);
        for case in 0..72 {
            let rows = [0usize, 1, 7, 5000, 9000, 20000][case % 6];
            // Few groups (placed a block at a time) and more than the caches hold (placed
            // a row at a time from the bits).
            let groups = 1 + (next() % [40, 4000, 40_000][case % 3]) as usize;
            let spread = [8i32, 70, 300, 2100][case % 4];
            let values: Vec<f64> = (0..rows)
                .map(|_| match next() % 50 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => -0.0,
                    3 => 5e-324,
                    4 => f64::NEG_INFINITY,
                    // Either side of where the squares' split starts and stops.
                    5 => [SPLIT_LOW, SPLIT_HIGH][next() as usize % 2] * (1.0 + 1e-15),
                    6 => f64::from_bits([SPLIT_LOW, SPLIT_HIGH][next() as usize % 2].to_bits() - 1),
                    _ => {
                        let e = (next() % spread as u64) as i32 - spread / 2;
                        let m = (next() >> 11) as f64 / (1u64 << 53) as f64;
                        let x = m * 2f64.powi(e.clamp(-1074, 1023));
                        if next().is_multiple_of(2) {
                            -x
                        } else {
                            x
                        }
                    }
                })
                .collect();
            let ids: Vec<usize> = (0..rows)
                .map(|_| (next() % groups as u64) as usize)
                .collect();
            let keep: Vec<bool> = (0..rows).map(|_| !next().is_multiple_of(7)).collect();
            let mut want_s = vec![ExactSum::new(); groups];
            let mut want_q = vec![ExactSum::new(); groups];
            let mut want_n = vec![0u64; groups];
            for i in 0..rows {
                if keep[i] {
                    want_s[ids[i]].add_f64(values[i]);
                    want_q[ids[i]].add_f64_squared(values[i]);
                    want_n[ids[i]] += 1;
                }
            }
            // Whole sums while the groups are few, or windows from the start.
            let windows = case % 4 >= 2;
            let mut slots = if windows {
                MomentSlots::with_windows()
            } else {
                MomentSlots::default()
            };
            slots.resize(groups);
            let mut counts = vec![0u64; groups];
            let (group, kept) = (|i| ids[i], |i| keep[i]);
            if case % 2 == 0 {
                slots.add_rows(rows, group, &values, kept, |g| counts[g] += 1);
            } else {
                // In two calls: nothing is held between them, and whole sums move into
                // windows between them.
                let (head, tail) = values.split_at(rows / 3);
                slots.add_rows_counting(head.len(), group, head, kept, &mut counts);
                slots.resize(groups.max(FEW_GROUPS + 1));
                assert!(slots.few.is_none());
                let (group, kept) = (|i| ids[head.len() + i], |i| keep[head.len() + i]);
                slots.add_rows_counting(tail.len(), group, tail, kept, &mut counts);
            }
            assert_eq!(counts, want_n, "case {case}");
            for g in 0..groups {
                let (got_s, got_q) = (slots.sum(g), slots.squares(g));
                assert_eq!(canon(&got_s), canon(&want_s[g]), "case {case} group {g}");
                assert_eq!(canon(&got_q), canon(&want_q[g]), "case {case} group {g} ²");
                assert_eq!(got_s.sum().to_bits(), want_s[g].sum().to_bits());
                assert_eq!(
                    (got_q.is_nan(), got_q.has_special()),
                    (want_q[g].is_nan(), want_q[g].has_special())
                );
                let n = want_n[g];
                assert_eq!(
                    variance(&got_s, &got_q, n, 1).map(f64::to_bits),
                    variance(&want_s[g], &want_q[g], n, 1).map(f64::to_bits),
                    "case {case} group {g}"
                );
            }
        }
    }

    /// A window read as a big number directly gives what moving it into digits gives.
    #[test]
    fn window_exact_is_the_digits_exact() {
        let mut next = xorshift(0x99);
        let mut wide = || ((next() as u128) << 64 | next() as u128) >> (next() % 128);
        for case in 0..3000 {
            let mut s = ExactSum::new();
            s.win_lo = wide();
            s.win_hi = match case % 4 {
                0 => 0,
                1 => -1,
                2 => (wide() >> 2) as i128,
                _ => -((wide() >> 2) as i128),
            };
            if case % 7 == 0 {
                s.win_lo = 0;
            }
            s.win_base = (wide() % 4400) as u32;
            s.win_adds = 1;
            assert_eq!(s.window_exact(), s.digits_exact(), "case {case}");
        }
        assert_eq!(
            ExactSum::new().window_exact(),
            ExactSum::new().digits_exact()
        );
    }

    /// The square's split against the square computed on integers: `p + e` is `x · x`
    /// exactly wherever the split takes `x`, down to 2^-485 and up to 2^511, and it
    /// declines every value outside.
    #[test]
    fn squares_split_exactly() {
        let mut next = xorshift(0xabcd);
        let mut values = vec![0.0, -0.0, 1.0, 3.0, f64::NAN, f64::INFINITY, 5e-324];
        for edge in [SPLIT_LOW, SPLIT_HIGH] {
            for d in -3i64..3 {
                values.push(f64::from_bits((edge.to_bits() as i64 + d) as u64));
            }
        }
        for _ in 0..20_000 {
            let bits = next();
            values.push(f64::from_bits(bits));
            // Mostly inside the split's range, every mantissa.
            let field = 1023 - 490 + (next() % 1010);
            values.push(f64::from_bits(bits & !(0x7ff << 52) | (field << 52)));
        }
        for x in values {
            let (p, e, ok) = split_square(x);
            let a = x.abs();
            let inside = a == 0.0 || (a >= 2f64.powi(-485) && a < 2f64.powi(511));
            assert_eq!(ok, inside, "{x:e}");
            if !ok {
                assert_eq!((p.to_bits(), e.to_bits()), (0, 0), "{x:e}");
                continue;
            }
            if x == 0.0 {
                assert_eq!((p, e), (0.0, 0.0));
                continue;
            }
            // x = m · 2^(q - 1074); x² = m² · 2^(2q - 2148), and p and e are multiples
            // of that unit.
            let (_, m, q) = decompose(x).expect("not zero");
            let at = |y: f64| -> i128 {
                match decompose(y) {
                    None => 0,
                    Some((neg, my, qy)) => {
                        // A part's mantissa may end below the unit, on zero bits.
                        let shift = qy as i64 + 1074 - 2 * q as i64;
                        let v = if shift >= 0 {
                            (my as i128) << shift
                        } else {
                            assert!(my.trailing_zeros() as i64 >= -shift, "{x:e}: {y:e}");
                            (my >> -shift) as i128
                        };
                        if neg {
                            -v
                        } else {
                            v
                        }
                    }
                }
            };
            assert_eq!(at(p) + at(e), (m as i128) * (m as i128), "{x:e}");
            assert_eq!(p, x * x);
        }
    }

    /// Partial states merged into moment slots give the sums of all their values: states
    /// from other slots (windows of other bases), from sums built one value at a time
    /// (digits), and special values.
    #[test]
    fn moment_slots_merge_exactly() {
        let mut next = xorshift(0x77);
        for case in 0..40 {
            let groups = 1 + (next() % 50) as usize;
            let spread = [4i32, 60, 600][case % 3];
            let value = |next: &mut dyn FnMut() -> u64| {
                let e = (next() % spread as u64) as i32 - spread / 2;
                let x = (next() >> 11) as f64 * 2f64.powi(e - 53);
                match next() % 97 {
                    0 => f64::NAN,
                    1 => f64::NEG_INFINITY,
                    _ if next().is_multiple_of(2) => -x,
                    _ => x,
                }
            };
            let mut whole = (vec![ExactSum::new(); groups], vec![ExactSum::new(); groups]);
            let form = |case: usize| match case % 2 {
                0 => MomentSlots::default(),
                _ => MomentSlots::with_windows(),
            };
            let mut into = form(case);
            into.resize(groups);
            for part in 0..6 {
                let rows = (next() % 3000) as usize;
                let xs: Vec<f64> = (0..rows).map(|_| value(&mut next)).collect();
                let ids: Vec<usize> = (0..rows)
                    .map(|_| (next() % groups as u64) as usize)
                    .collect();
                for (&g, &x) in ids.iter().zip(&xs) {
                    whole.0[g].add_f64(x);
                    whole.1[g].add_f64_squared(x);
                }
                match part % 3 {
                    0 => {
                        let mut other = form(case / 2 + part);
                        other.resize(groups);
                        other.add_rows(rows, |i| ids[i], &xs, |_| true, |_| ());
                        for g in 0..groups {
                            into.merge(g, &other.sum(g), &other.squares(g));
                        }
                    }
                    1 => {
                        let mut sums = vec![(ExactSum::new(), ExactSum::new()); groups];
                        for (&g, &x) in ids.iter().zip(&xs) {
                            sums[g].0.add_f64(x);
                            sums[g].1.add_f64_squared(x);
                        }
                        for (g, (s, q)) in sums.iter().enumerate() {
                            into.merge(g, s, q);
                        }
                    }
                    _ => {
                        // A state a row, as a partial aggregate hands rows on: each square
                        // one 128-bit window.
                        for (&g, &x) in ids.iter().zip(&xs) {
                            let (mut s, mut q) = (Vec::new(), Vec::new());
                            ExactSum::encode_value(x, false, &mut s);
                            ExactSum::encode_value(x, true, &mut q);
                            let (s, q) = (ExactSum::decode(&s), ExactSum::decode(&q));
                            into.merge(g, &s.expect("a sum"), &q.expect("a sum"));
                        }
                    }
                }
            }
            for g in 0..groups {
                assert_eq!(canon(&into.sum(g)), canon(&whole.0[g]), "case {case} {g}");
                assert_eq!(
                    canon(&into.squares(g)),
                    canon(&whole.1[g]),
                    "case {case} {g}"
                );
                assert_eq!(into.squares(g).is_nan(), whole.1[g].is_nan());
            }
            // Taking the first groups out leaves the others' sums.
            let first = into.take_first(groups / 2);
            for g in 0..groups {
                let (s, q) = if g < groups / 2 {
                    (first.sum(g), first.squares(g))
                } else {
                    (into.sum(g - groups / 2), into.squares(g - groups / 2))
                };
                assert_eq!(
                    (canon(&s), canon(&q)),
                    (canon(&whole.0[g]), canon(&whole.1[g]))
                );
            }
        }
    }

    /// More values far below the passes' largest than one group's `i128` could hold at
    /// the largest shift (2^24 of nearly 2^103), into slots of few groups (whole sums,
    /// [`GroupedAdder`]): the adder moves them out in time.
    #[test]
    fn few_groups_move_far_values_before_they_overflow() {
        let far = f64::from_bits(0x433f_ffff_ffff_ffff); // (2^53 - 1) · 2^0
        let top = 2f64.powi(63); // 11 binades above: `far` is just outside the near ones
        let rows = (1usize << 24) + (1 << 22);
        let values: Vec<f64> = (0..rows)
            .map(|i| if i % ADDER_ROWS == 0 { top } else { far })
            .collect();
        let tops = rows.div_ceil(ADDER_ROWS);
        let mut slots = MomentSlots::default();
        slots.resize(1);
        let mut counts = vec![0u64];
        slots.add_rows_counting(rows, |_| 0, &values, |_| true, &mut counts);
        assert!(slots.few.is_some());
        // Both values are integers.
        let mut want = ExactSum::new();
        want.add_i128(((1i128 << 53) - 1) * (rows - tops) as i128);
        want.add_i128((1i128 << 63) * tops as i128);
        assert_eq!(canon(&slots.sum(0)), canon(&want));
        assert_eq!(counts, [rows as u64]);
    }

    /// More than 2^24 squares at the top of both parts' windows into one group: the
    /// windows move into the digits before they could overflow.
    #[test]
    fn moment_slots_move_squares_before_they_overflow() {
        // The first value, 1, sets the squares' base 20 binades below 1's last bit; a
        // value just below 2^15.5 has its square's last bit 50 binades above that base and
        // its square's rounding error's 50 above the low part's.
        let x = f64::from_bits(2f64.powf(15.5).to_bits() - 12345);
        let rows = (1usize << 24) + (1 << 22);
        let mut slots = MomentSlots::with_windows();
        slots.resize(1);
        let chunk = 1 << 20;
        let xs = vec![x; chunk];
        slots.add_rows(1, |_| 0, &[1.0], |_| true, |_| ());
        for _ in (0..rows).step_by(chunk) {
            slots.add_rows(chunk, |_| 0, &xs, |_| true, |_| ());
        }
        let (p, e, _) = split_square(x);
        assert_ne!(e, 0.0);
        let mut want = ExactSum::new();
        want.add_f64_squared(1.0);
        let mut one = ExactSum::new();
        one.add_f64_squared(x);
        let (_, big, exp) = one.exact();
        // rows · x², as digits: x² times the count, added digit by digit.
        for (i, d) in big.0.iter().enumerate() {
            let v = *d as u128 * rows as u128;
            want.add_at(false, v, exp as u32 + 32 * i as u32, SLACK_SQUARES);
        }
        assert_eq!(canon(&slots.squares(0)), canon(&want));
        assert!(
            slots.high.spilled + slots.low.spilled > 0,
            "{p} {e}: the windows moved"
        );
    }

    /// Past 2^24 adds the slots move a window that may overflow into its digits and leave
    /// the others as windows: one group of the largest values a window takes, one of small
    /// ones, 2^24 + 2^22 rows through `add_all`.
    #[test]
    fn sum_slots_move_only_windows_near_overflow() {
        let big = f64::from_bits(0x433f_ffff_ffff_ffff); // 2^53 - 1
        let first = 2f64.powi(22); // sets the base 20 binades below it: `big` is the top
        let rows = (1usize << 24) + (1 << 22);
        let group = |i: usize| usize::from(i.is_multiple_of(1024));
        let mut slots = SumSlots::default();
        slots.resize(2);
        let chunk = 1 << 20;
        for start in (0..rows).step_by(chunk) {
            let ids: Vec<usize> = (start..start + chunk).map(group).collect();
            let xs: Vec<f64> = ids.iter().map(|&g| [big, first][g]).collect();
            slots.add_all(&ids, &xs);
        }
        let small = rows.div_ceil(1024);
        let mut want = [ExactSum::new(), ExactSum::new()];
        want[0].add_i128(((1i128 << 53) - 1) * (rows - small) as i128);
        want[1].add_i128((1i128 << 22) * small as i128);
        for (g, want) in want.iter().enumerate() {
            assert_eq!(canon(&slots.get(g)), canon(want), "group {g}");
        }
        assert_eq!(slots.spilled, 1, "only the large window moved");
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn sum_slots_give_the_exact_sums() {
        let mut state = 0x5555u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for case in 0..80 {
            let rows = [0usize, 3, 50, 3000][case % 4];
            let groups = 1 + (next() % 20) as usize;
            let spread = [4i32, 40, 70, 300, 2100][case % 5];
            let mut slots = SumSlots::default();
            slots.resize(groups);
            let mut want = vec![ExactSum::new(); groups];
            for _ in 0..rows {
                let g = (next() % groups as u64) as usize;
                let x = match next() % 40 {
                    0 => f64::NAN,
                    1 => f64::NEG_INFINITY,
                    2 => -0.0,
                    3 => -5e-324,
                    _ => {
                        let e = (next() % spread as u64) as i32 - spread / 2;
                        let m = (next() >> 11) as f64 / (1u64 << 53) as f64;
                        let x = m * 2f64.powi(e.clamp(-1074, 1023));
                        if next() % 2 == 0 {
                            -x
                        } else {
                            x
                        }
                    }
                };
                if next() % 3 == 0 {
                    // A partial sum merged in: one value's, or a few values'.
                    let mut part = ExactSum::new();
                    part.add_f64(x);
                    if next() % 2 == 0 {
                        part.add_f64(x * 3.0);
                        want[g].add_f64(x * 3.0);
                    }
                    slots.merge(g, &part);
                } else {
                    slots.add(g, x);
                }
                if next() % 500 == 0 {
                    slots.flush_all();
                }
                want[g].add_f64(x);
            }
            // A batch through `add_all` too (with prefetching and counting per stretch).
            let batch: Vec<(usize, f64)> = (0..next() % 300)
                .map(|_| {
                    (
                        (next() % groups as u64) as usize,
                        f64::from_bits(next() >> 2),
                    )
                })
                .collect();
            let (ids, xs): (Vec<usize>, Vec<f64>) = batch.into_iter().unzip();
            slots.add_all(&ids, &xs);
            for (g, x) in ids.iter().zip(&xs) {
                want[*g].add_f64(*x);
            }
            // Half the groups emitted first, as EmitTo::First does.
            let first = slots.take_first(groups / 2);
            for g in 0..groups {
                let got = if g < groups / 2 {
                    first.get(g)
                } else {
                    slots.get(g - groups / 2)
                };
                assert_eq!(canon(&got), canon(&want[g]), "case {case} group {g}");
                assert_eq!(got.sum().to_bits(), want[g].sum().to_bits(), "case {case}");
                assert_eq!(
                    got.mean(3).to_bits(),
                    want[g].mean(3).to_bits(),
                    "case {case}"
                );
                let held = if g < groups / 2 {
                    (&first, g)
                } else {
                    (&slots, g - groups / 2)
                };
                for n in [1, 3] {
                    let direct = held.0.mean(held.1, n);
                    assert_eq!(direct.to_bits(), want[g].mean(n).to_bits(), "case {case}");
                }
            }
            // Partial states, encoded and decoded as DataFusion moves them, merged into
            // fresh slots (a final aggregate) two groups to one, in an order that puts
            // windows of different bases in first: the one-by-one sums.
            let mut fin = SumSlots::default();
            fin.resize(2);
            let mut fin_want = vec![ExactSum::new(); 2];
            for g in (0..groups).rev() {
                let got = if g < groups / 2 {
                    first.get(g)
                } else {
                    slots.get(g - groups / 2)
                };
                let mut bytes = Vec::new();
                got.encode(&mut bytes);
                fin.merge(g % 2, &ExactSum::decode(&bytes).unwrap());
                fin_want[g % 2].merge(&want[g]);
            }
            for g in 0..2 {
                assert_eq!(canon(&fin.get(g)), canon(&fin_want[g]), "case {case}");
                assert_eq!(
                    fin.get(g).sum().to_bits(),
                    fin_want[g].sum().to_bits(),
                    "case {case}"
                );
            }
        }
    }

    /// Many groups (past the prefetching threshold) and few, with counting: the sums and
    /// counts of one add at a time.
    #[test]
    fn add_all_counting_matches_one_by_one() {
        let mut next = xorshift(0x1234_5678u64);
        for groups in [3usize, 20_000] {
            let rows = 100_000;
            let ids: Vec<usize> = (0..rows)
                .map(|_| (next() % groups as u64) as usize)
                .collect();
            let xs: Vec<f64> = (0..rows)
                .map(|_| (next() % 1_000_000) as f64 / 1024.0 - 400.0)
                .collect();
            let mut slots = SumSlots::default();
            slots.resize(groups);
            let mut counts = vec![0u64; groups];
            slots.add_all_counting(&ids, &xs, &mut counts);
            let mut want = vec![ExactSum::new(); groups];
            let mut want_counts = vec![0u64; groups];
            for (&g, &x) in ids.iter().zip(&xs) {
                want[g].add_f64(x);
                want_counts[g] += 1;
            }
            assert_eq!(counts, want_counts);
            for (g, w) in want.iter().enumerate() {
                assert_eq!(slots.get(g).sum().to_bits(), w.sum().to_bits(), "{groups}");
            }
        }
    }

    /// Rows outside the window (far above or below it, ±inf, NaN, zeros of both signs,
    /// subnormals), scattered and in a block of their own, across several of
    /// `add_rows`' blocks of rows, with rows not kept, with many groups (prefetched) and
    /// few: the sums and counts of one add at a time.
    #[test]
    fn add_rows_across_blocks_with_values_outside_the_window() {
        let mut next = xorshift(0xfeed_beefu64);
        // First values setting the windows' base: near 1 (scaled placing), far above
        // (scaled by 2^-924: tiny values scale to 0), at the lowest base the scaled
        // placing takes (51) and just below it, and subnormal (the bits' placing).
        for first in [1.5, 1e300, 2f64.powi(-951), 2f64.powi(-952), 5e-320] {
            let field = ((first.to_bits() >> 52) & 0x7ff) as u32;
            let base = (field.max(1) - 1).saturating_sub(SLOT_SLACK);
            // The window's top, 2^103 units of 2^(base - 1074), as a float (for base
            // 1998, 2^1027: then no finite value reaches it).
            let top = 2f64.powi(103 + base as i32 - 1074);
            for groups in [2usize, 30, 20_000] {
                let rows = 5_000;
                let ids: Vec<usize> = (0..rows)
                    .map(|_| (next() % groups as u64) as usize)
                    .collect();
                let xs: Vec<f64> = (0..rows)
                    .map(|i| {
                        let r = next();
                        // Rows 2048..3072 are whole blocks of add_rows, all outside.
                        let outside = (2048..3072).contains(&i) || r.is_multiple_of(7);
                        let x = if !outside {
                            first * ((r % 1_000_000) as f64 / 64.0 - 7000.0)
                        } else {
                            match (r >> 8) % 14 {
                                0 => f64::NAN,
                                1 => f64::INFINITY,
                                2 => f64::NEG_INFINITY,
                                3 => -0.0,
                                4 => 0.0,
                                5 => 5e-324,
                                6 => -1e-300,
                                7 => 3e290,
                                8 => -((1u64 << 60) as f64) * 1e20,
                                // Below the bits' window but whole in its units: inside
                                // the scaled one.
                                9 => first * 2f64.powi(-23),
                                // The window's top (outside) and the largest value
                                // below it (inside).
                                10 => top,
                                11 => -top * (1.0 - f64::EPSILON / 2.0),
                                // One unit, and half of one (outside).
                                12 => -2f64.powi(base as i32 - 1074),
                                _ => 2f64.powi(base as i32 - 1075),
                            }
                        };
                        // The first row sets the base: a value in the window.
                        if i == 0 {
                            first
                        } else {
                            x
                        }
                    })
                    .collect();
                let keep = |j: usize| j % 11 != 5;
                let mut slots = SumSlots::default();
                slots.resize(groups);
                let mut counts = vec![0u64; groups];
                slots.add_rows(rows, |j| ids[j], &xs, keep, |g| counts[g] += 1);
                assert_eq!(slots.base, Some(base), "{first}");
                let mut want = vec![ExactSum::new(); groups];
                let mut want_counts = vec![0u64; groups];
                for j in (0..rows).filter(|&j| keep(j)) {
                    want[ids[j]].add_f64(xs[j]);
                    want_counts[ids[j]] += 1;
                }
                let case = format!("first {first:e}, {groups} groups");
                assert_eq!(counts, want_counts, "{case}");
                for (g, w) in want.iter().enumerate() {
                    let got = slots.get(g);
                    assert_eq!(canon(&got), canon(w), "{case}, group {g}");
                    assert_eq!(got.sum().to_bits(), w.sum().to_bits(), "{case}, {g}");
                }
            }
        }
    }

    /// Both placings of a value in a window against one worked out from the value's
    /// significand and exponent: the scaled placing takes exactly the values that are
    /// whole numbers of the window's units below 2^103 of them, at every base it serves,
    /// whatever the registers' width; the bits' placing a part of them, with the same
    /// addends.
    #[test]
    fn placings_give_the_window_integer() {
        let mut next = xorshift(0x0dd_ba11u64);
        // `x` in units of 2^(base - 1074), where a whole number below 2^103.
        let reference = |x: f64, base: u32| -> Option<i128> {
            let bits = x.to_bits();
            let field = ((bits >> 52) & 0x7ff) as i64;
            if field == 0x7ff {
                return None;
            }
            let frac = bits & ((1 << 52) - 1);
            let m = if field == 0 { frac } else { frac | 1 << 52 };
            if m == 0 {
                return Some(0);
            }
            let tz = m.trailing_zeros();
            let exp = field.max(1) - 1 - base as i64 + tz as i64;
            let m = (m >> tz) as i128;
            let len = 128 - m.leading_zeros() as i64;
            if exp < 0 || exp + len > 103 {
                return None;
            }
            let v = m << exp;
            Some(if x < 0.0 { -v } else { v })
        };
        let word = |lo: u64, hi: u64| ((hi as u128) << 64 | lo as u128) as i128;
        let mut scaled_only = 0;
        for round in 0..400 {
            let base = match round % 4 {
                0 => 51,
                1 => 2046,
                _ => 51 + (next() % 1996) as u32,
            };
            let Placing::Scaled(scale) = Placing::of(base) else {
                panic!("base {base} is scaled")
            };
            assert!(matches!(Placing::of(base - 1), Placing::Bits(_)) == (base == 51));
            let unit = |k: i32| 2f64.powi(base as i32 - 1074 + k);
            let xs: Vec<f64> = (0..PLACE_BLOCK)
                .map(|k| {
                    let r = next();
                    let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
                    match k % 8 {
                        // Any bits at all.
                        0 | 1 => f64::from_bits(r),
                        // Whole units near the top and at the bottom, and halves.
                        2 => sign * unit(103) * (1.0 - (r % 4) as f64 * f64::EPSILON / 2.0),
                        3 => sign * unit((r % 4) as i32 - 1) * (1 + (r >> 8) % 8) as f64,
                        // Values near the window's base with random significands.
                        4 | 5 => {
                            sign * f64::from_bits((r >> 12) | 0x3ff << 52)
                                * unit(-54 + (r % 160) as i32)
                        }
                        6 => [0.0, -0.0, f64::NAN, f64::INFINITY, 5e-324, -f64::MAX]
                            [(r % 6) as usize],
                        _ => sign * 2f64.powi((r % 2100) as i32 - 1074),
                    }
                })
                .collect();
            let (mut low, mut high) = ([0u64; PLACE_BLOCK], [0u64; PLACE_BLOCK]);
            let outside = Placing::Scaled(scale).block(&xs, &mut low, &mut high);
            assert_eq!(outside, xs.iter().any(|&x| reference(x, base).is_none()));
            // Every width this CPU has gives the same words: plain registers, and AVX2
            // where the block went to AVX-512.
            let mut each = [[0u64; PLACE_BLOCK]; 2];
            let [each_low, each_high] = &mut each;
            let each_outside = place_each(&xs, each_low, each_high, |x| scaled_value(x, scale));
            assert_eq!((each_outside, each), (outside, [low, high]));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let [avx_low, avx_high] = &mut each;
                // SAFETY: the CPU has AVX2.
                let avx_outside = unsafe { place_scaled_avx2(&xs, scale, avx_low, avx_high) };
                assert_eq!((avx_outside, each), (outside, [low, high]));
            }
            for (k, &x) in xs.iter().enumerate() {
                let want = reference(x, base);
                let (lo, hi, inside) = scaled_value(x, scale);
                assert_eq!(
                    (inside, word(lo, hi)),
                    (want.is_some(), want.unwrap_or(0)),
                    "{x:e} at base {base}"
                );
                assert_eq!(
                    (low[k], high[k]),
                    (lo, hi),
                    "{x:e} in a block, at base {base}"
                );
                let (v, bits_inside) = window_value(x, base);
                if bits_inside {
                    assert_eq!(Some(v), want, "{x:e} by its bits at base {base}");
                } else {
                    assert_eq!(v, 0);
                    scaled_only += want.is_some_and(|v| v != 0) as usize;
                }
            }
        }
        assert!(
            scaled_only > 100,
            "{scaled_only} values only the scaled placing takes"
        );
    }

    /// Partial sums of two partitions whose first values differ in scale (so do their
    /// slots' bases) merge into a final's slots exactly, as windows where they fit; a
    /// group that never spilled comes out as one window (22 encoded bytes).
    #[test]
    fn slots_of_different_bases_merge_exactly() {
        for (a, b) in [
            (37.5, 81.25),
            (81.25, 37.5),
            (1.0, 1e-9),
            (1e-9, 1e12),
            (3.0, -3.0),
        ] {
            let mut p1 = SumSlots::default();
            let mut p2 = SumSlots::default();
            p1.resize(3);
            p2.resize(3);
            let mut want = vec![ExactSum::new(); 3];
            for i in 0..200u32 {
                let g = (i % 3) as usize;
                let (x, y) = (a * (1.0 + i as f64 / 7.0), b * (1.0 - i as f64 / 11.0));
                p1.add(g, x);
                p2.add(g, y);
                want[g].add_f64(x);
                want[g].add_f64(y);
            }
            let mut bytes = Vec::new();
            p1.get(0).encode(&mut bytes);
            assert_eq!(bytes.len(), 22, "one window");
            let mut fin = SumSlots::default();
            fin.resize(3);
            for (g, want) in want.iter().enumerate() {
                fin.merge(g, &p1.get(g));
                fin.merge(g, &p2.get(g));
                assert_eq!(canon(&fin.get(g)), canon(want), "{a} {b}");
                assert_eq!(fin.get(g).sum().to_bits(), want.sum().to_bits());
            }
            if a > 10.0 && b > 10.0 {
                assert_eq!(
                    fin.spilled, 0,
                    "{a} {b}: partial sums of one scale stay windows"
                );
            }
        }
    }

    /// A partial sum whose slots' base lies below the merging slots' own (its first value
    /// was smaller), but which holds no bit below that base, lands in the window, not in
    /// an exact sum of its own; one with finer bits still merges exactly.
    #[test]
    fn a_lower_base_without_finer_bits_stays_a_window() {
        for (first, later, fine) in [(64.0, 0.5, false), (96.5, 1.25, false), (64.0, 1e-12, true)] {
            let mut own = SumSlots::default();
            let mut part = SumSlots::default();
            own.resize(2);
            part.resize(2);
            let mut want = vec![ExactSum::new(); 2];
            for i in 0..100u32 {
                let g = (i % 2) as usize;
                let (x, y) = (first + i as f64 * 0.75, later * (1.0 + i as f64 / 8.0));
                own.add(g, x);
                part.add(g, y);
                want[g].add_f64(x);
                want[g].add_f64(y);
            }
            assert!(part.base < own.base, "{first} {later}");
            for (g, want) in want.iter().enumerate() {
                own.merge(g, &part.get(g));
                assert_eq!(canon(&own.get(g)), canon(want), "{first} {later}");
            }
            assert_eq!(own.spilled > 0, fine, "{first} {later}");
        }
    }

    /// Gathering picked groups of several parts on two threads (more than 2^16 groups a
    /// thread) gives every group the exact sum of its values: where the windows shift to
    /// one base, where one part's base is too far from another's for that (the pass
    /// finds out midway and starts again group by group), and where a part has digits.
    #[test]
    fn gather_on_threads_gives_exact_sums() {
        const N: usize = 70_000;
        // (scale of part 0, scale of part 1, a value far below part 1's window in one
        // group, whether the windows move as they are)
        for (a, b, spill, direct) in [
            (1.0, 3.0, false, true),
            (1e-300, 1e300, false, false),
            (1.0, 5.0, true, true),
            (1e-300, 1e300, true, false),
        ] {
            let mut parts = [SumSlots::default(), SumSlots::default()];
            let mut want = [vec![ExactSum::new(); N], vec![ExactSum::new(); N]];
            for (p, scale) in [(0, a), (1, b)] {
                parts[p].resize(N);
                for (g, want) in want[p].iter_mut().enumerate() {
                    for k in 0..3u32 {
                        let x = scale * (1.0 + ((g as u32 * 7 + k) % 101) as f64 / 64.0);
                        let x = if k == 1 { -x } else { x };
                        parts[p].add(g, x);
                        want.add_f64(x);
                    }
                }
            }
            if spill {
                parts[1].add(N / 2, 1e-200);
                want[1][N / 2].add_f64(1e-200);
            }
            // Every group of both parts, interleaved, back to front in part 1.
            let order: Vec<(u32, u32)> = (0..N as u32)
                .flat_map(|g| [(0, g), (1, N as u32 - 1 - g)])
                .collect();
            let out = SumSlots::gather(&[&parts[0], &parts[1]], &order, 2);
            assert_eq!(out.len(), order.len());
            // Shifted windows where they fit, with a spilled group's digits beside its
            // window; merged one by one where they don't.
            assert_eq!(out.adds == 1, direct, "{a} {b}");
            if direct {
                assert_eq!(out.spilled, usize::from(spill), "{a} {b}");
            }
            for (i, &(p, g)) in order.iter().enumerate() {
                let want = &want[p as usize][g as usize];
                assert_eq!(canon(&out.get(i)), canon(want), "{a} {b}: group {i}");
                assert_eq!(out.get(i).sum().to_bits(), want.sum().to_bits());
            }
        }
    }

    #[test]
    fn encoding_round_trips_and_bad_bytes_are_errors() {
        for xs in [
            vec![],
            vec![1.5, -2.25],
            vec![1e300, 1e-300, -1e300],
            vec![f64::NAN, 1.0],
            vec![f64::INFINITY, -0.0],
            vec![f64::MAX, f64::MAX],
        ] {
            for squares in [false, true] {
                let s = fast(&xs, squares);
                let mut bytes = Vec::new();
                s.encode(&mut bytes);
                let back = ExactSum::decode(&bytes).unwrap();
                assert_eq!(canon(&back), canon(&s), "{xs:?}");
                assert_eq!(back.sum().to_bits(), s.sum().to_bits(), "{xs:?}");
                assert_eq!(back.is_nan(), s.is_nan());
                // Every truncation is an error, never a panic.
                for cut in 0..bytes.len() {
                    let _ = ExactSum::decode(&bytes[..cut]);
                }
            }
        }
        for bad in [
            &[][..],
            &[9, 0, 0, 0, 0, 0],
            &[1, 8, 0, 0, 0, 0],
            &[2, 0, 0, 0, 0, 0, 1],
        ] {
            assert!(ExactSum::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_flushes_keep_the_sum_exact() {
        // More adds than FLUSH_EVERY, of values that carry into the window's top bits.
        let big = 2f64.powi(((WINDOW_BITS - 53 - SLACK_SUM) as i32) - 1) * (1.0 + f64::EPSILON);
        let mut xs = vec![1.0];
        xs.extend(std::iter::repeat_n(big, 3 * FLUSH_EVERY as usize + 5));
        xs.extend(std::iter::repeat_n(-big, 2 * FLUSH_EVERY as usize));
        same_as_slow(&xs);
    }

    #[test]
    fn from_digits_is_the_digits_sum() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        // The top digit's edge (below 2^31 the fast path takes it, from 2^31 not), all
        // ones, zero, and random words; digit arrays of 1 to 7 words, with high digits
        // zero or not; a negative part larger, smaller or equal.
        let edges = [0u32, 1, (1 << 31) - 1, 1 << 31, u32::MAX];
        for case in 0..3000 {
            let d = 1 + case % 7;
            let word = |next: &mut dyn FnMut() -> u64, i: usize| -> u32 {
                match next() % 6 {
                    0..=1 => edges[(next() % edges.len() as u64) as usize],
                    2 if i >= 3 => 0,
                    _ => next() as u32,
                }
            };
            let pos: Vec<u32> = (0..d).map(|i| word(&mut next, i)).collect();
            let neg: Vec<u32> = match case % 5 {
                0 => pos.clone(),
                1 => Vec::new(),
                _ => (0..d).map(|i| word(&mut next, i)).collect(),
            };
            let lowest = (next() % 60) as u32;
            let flags = if case % 97 == 0 {
                (next() % 8) as u32
            } else {
                0
            };
            let got = ExactSum::from_digits(&pos, &neg, lowest, flags);
            let mut want = ExactSum::default();
            for (i, &p) in pos.iter().enumerate() {
                want.add_digit(false, p, 32 * (lowest + i as u32));
                want.add_digit(
                    true,
                    neg.get(i).copied().unwrap_or(0),
                    32 * (lowest + i as u32),
                );
            }
            want.add_flags(flags);
            let what = format!("{pos:?} - {neg:?} at {lowest}, flags {flags}");
            assert_eq!(canon(&got), canon(&want), "{what}");
            for n in [1u64, 3, 10, 1 << 40] {
                assert_eq!(
                    got.mean(n).to_bits(),
                    want.mean(n).to_bits(),
                    "{what} / {n}"
                );
            }
        }
    }

    #[test]
    fn window_matches_the_limbs_on_random_values() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for case in 0..400 {
            let len = 1 + (next() % 60) as usize;
            // Exponent spread: narrow (inside the window), wide, or any bit pattern.
            let spread = [4i32, 60, 200, 2000][case % 4];
            let xs: Vec<f64> = (0..len)
                .map(|_| {
                    if spread == 2000 {
                        return f64::from_bits(next());
                    }
                    let e = (next() % spread as u64) as i32 - spread / 2;
                    let m = (next() >> 11) as f64 / (1u64 << 53) as f64 + 0.5;
                    let x = m * 2f64.powi(e);
                    if next() % 2 == 0 {
                        -x
                    } else {
                        x
                    }
                })
                .collect();
            same_as_slow(&xs);
        }
    }

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        xs.iter().for_each(|x| s.add_f64(*x));
        s.sum()
    }

    #[test]
    fn integers_come_back_out_of_every_form() {
        // A window, digits (far apart values), cancellations, the i128 extremes.
        for v in [0i128, 1, -1, 3 << 70, i128::MAX, i128::MIN, -(1 << 100) + 7] {
            assert_eq!(ExactSum::from_i128(v).to_i128(), Some(v), "{v}");
            let mut s = ExactSum::new();
            s.add_i128(v);
            assert_eq!(s.to_i128(), Some(v), "{v} added");
            let mut s = ExactSum::new();
            s.add_f64(1e-300);
            s.add_i128(v);
            s.add_f64(-1e-300);
            assert_eq!(s.to_i128(), Some(v), "{v} with digits");
        }
        let mut s = ExactSum::new();
        s.add_f64(1e300);
        assert_eq!(s.to_i128(), None, "beyond 128 bits");
        s.add_f64(-1e300);
        s.add_f64(0.75);
        assert_eq!(s.to_i128(), None, "a fraction");
        s.add_f64(0.25);
        assert_eq!(s.to_i128(), Some(1));
        s.add_f64(f64::INFINITY);
        assert_eq!(s.to_i128(), None, "an infinity");
        let mut s = ExactSum::from_i128(i128::MAX);
        s.add_i128(1);
        assert_eq!(s.to_i128(), None, "one past i128::MAX");
    }

    #[test]
    fn int_mean_fast_path_is_the_exact_rounding() {
        let slow = |s: i128, n: u64| {
            let mut e = ExactSum::default();
            e.add_i128(s);
            e.mean(n)
        };
        let edge = [
            0i128,
            1,
            2,
            3,
            7,
            10,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            1 << 60,
        ];
        let counts = [
            1u64,
            2,
            3,
            7,
            10,
            1_000_003,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut sums: Vec<i128> = edge.iter().flat_map(|&s| [s, -s]).collect();
        let mut ns = counts.to_vec();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sums.push((x >> (x % 64)) as i128 * if x & 1 == 0 { 1 } else { -1 });
            ns.push(1 + (x >> (x % 63 + 1)));
        }
        for (i, &s) in sums.iter().enumerate() {
            for &n in ns.iter().skip(i % 7).step_by(97).chain(&counts) {
                assert_eq!(int_mean(s, n).to_bits(), slow(s, n).to_bits(), "{s} / {n}");
            }
        }
    }

    /// A sum's rounding without a conversion (n = 1) is the conversion's: u128 to f64
    /// rounds to nearest even, and scaling by a power of two is exact. Ties of both
    /// parities, one below and above them, carries into the next binade, the edges of the
    /// normal range and random magnitudes.
    #[test]
    fn sums_round_as_the_conversion_does() {
        let converted = |neg: bool, mag: u128, exp: i64| -> Option<f64> {
            let shift = mag.leading_zeros().saturating_sub(1);
            let f = (mag << shift) as f64;
            let e = ((f.to_bits() >> 52) & 0x7ff) as i64 + exp - shift as i64;
            (1..=2046).contains(&e).then(|| {
                let out = f64::from_bits((f.to_bits() & !(0x7ff << 52)) | ((e as u64) << 52));
                if neg {
                    -out
                } else {
                    out
                }
            })
        };
        let mut mags: Vec<u128> = Vec::new();
        for top in [53u32, 60, 100, 126, 127] {
            // A significand of 53 bits at `top`, then the bits below it: a tie, one less,
            // one more.
            for m in [(1u128 << 52) | 1, 1 << 52, (1 << 53) - 1, (1 << 52) | 2] {
                let low = top + 1 - 53;
                let half = if low == 0 { 0 } else { 1u128 << (low - 1) };
                for rest in [
                    0,
                    half,
                    half.saturating_sub(1),
                    half + 1,
                    (1u128 << low) - 1,
                ] {
                    mags.push((m << low) | (rest & ((1u128 << low) - 1)));
                }
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hi = x;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            mags.push((((hi as u128) << 64) | x as u128) >> (hi % 128));
        }
        mags.extend([1, 2, 3, u128::MAX, 1 << 127, (1 << 127) - 1]);
        // (Zero is 0.0 before either path.)
        for &mag in mags.iter().filter(|&&m| m != 0) {
            for exp in [-1200i64, -1100, -1074, -300, 0, 100, 897, 898, 1000] {
                for neg in [false, true] {
                    let got = round_small_ratio(neg, mag, exp, 1).map(f64::to_bits);
                    let want = converted(neg, mag, exp).map(f64::to_bits);
                    assert_eq!(got, want, "{mag:#x} at 2^{exp}");
                }
            }
        }
    }

    #[test]
    fn sums_exactly() {
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        // Left to right gives 0.6000000000000001; the exact sum is nearest to 0.6.
        assert_eq!(sum(&[0.1, 0.2, 0.3]), 0.6);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[-0.0]).to_bits(), 0);
        assert_eq!(sum(&[5e-324, 5e-324]), 1e-323);
        assert_eq!(sum(&[-5e-324]), -5e-324);
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[f64::MAX, f64::MAX, -f64::MAX]), f64::MAX);
        assert_eq!(sum(&[-f64::MAX, -f64::MAX]), f64::NEG_INFINITY);
        assert_eq!(sum(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert_eq!(
            sum(&[f64::INFINITY, f64::NEG_INFINITY]).to_bits(),
            CANONICAL_NAN.to_bits()
        );
        assert_eq!(sum(&[-f64::NAN, 1.0]).to_bits(), CANONICAL_NAN.to_bits());
        // 2^53 + 1 + 1: left to right gives 2^53, exactly it is 2^53 + 2.
        assert_eq!(sum(&[9007199254740992.0, 1.0, 1.0]), 9007199254740994.0);
        // A tie: 2^53 + 1 rounds to even (2^53).
        assert_eq!(sum(&[9007199254740992.0, 1.0]), 9007199254740992.0);
        assert_eq!(sum(&[9007199254740992.0, 3.0]), 9007199254740996.0);
    }

    #[test]
    fn many_additions_normalize() {
        let mut s = ExactSum::default();
        for i in 0..3_000_000u64 {
            s.add_f64(if i % 2 == 0 { 1.5 } else { -0.25 });
        }
        assert_eq!(s.sum(), 1_500_000.0 * 1.5 - 1_500_000.0 * 0.25);
        assert_eq!(s.mean(3_000_000), (1.5 - 0.25) / 2.0);
    }

    #[test]
    fn variance_exact() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        let (mut a, mut b) = (ExactSum::default(), ExactSum::default());
        for x in xs {
            a.add_f64(x);
            b.add_f64_squared(x);
        }
        assert_eq!(variance(&a, &b, 4, 0), Some(1.25));
        assert_eq!(variance(&a, &b, 4, 1), Some(5.0 / 3.0));
        assert_eq!(variance(&a, &b, 1, 1), None);
        let (mut a, mut b) = (ExactSum::default(), ExactSum::default());
        for v in [i64::MIN, i64::MAX] {
            a.add_i128(v as i128);
            b.add_square_of(v.unsigned_abs());
        }
        // mean -0.5; deviations ±(2^63 - 0.5): variance (2^63 - 0.5)^2 rounds to 2^126.
        assert_eq!(variance(&a, &b, 2, 0), Some(2f64.powi(126)));
        assert_eq!(a.mean(2), -0.5);
    }
}
