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
            out.push(TAG_WINDOW);
            out.push(flags);
            out.extend_from_slice(&self.win_base.to_le_bytes());
            let v = if neg {
                (mag as i128).wrapping_neg()
            } else {
                mag as i128
            };
            out.extend_from_slice(&v.to_le_bytes());
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
        if v != 0 {
            let m = v.unsigned_abs();
            self.add_fast(v < 0, m, 128 - m.leading_zeros(), BIAS_SUM, SLACK_SUM);
        }
    }

    /// Adds the square of an integer of at most 64 bits of magnitude (at scale
    /// [`BIAS_SQUARES`]).
    pub(crate) fn add_square_of(&mut self, magnitude: u64) {
        if magnitude != 0 {
            let m = magnitude as u128 * magnitude as u128;
            self.add_fast(
                false,
                m,
                128 - m.leading_zeros(),
                BIAS_SQUARES,
                SLACK_SQUARES,
            );
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
        let (neg, lo, hi) = if self.win_hi < 0 {
            // Two's complement negation of the 256-bit value.
            let (lo, borrow) = 0u128.overflowing_sub(self.win_lo);
            let hi = (!(self.win_hi as u128)).wrapping_add((!borrow) as u128);
            (true, lo, hi)
        } else {
            (false, self.win_lo, self.win_hi as u128)
        };
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
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
        if other.limbs.is_empty() && other.win_adds == 0 {
            return;
        }
        let (neg, magnitude, exp) = other.exact();
        for (i, d) in magnitude.0.iter().enumerate() {
            self.add_digit(neg, *d, exp as u32 + 32 * i as u32);
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
        let mut s = self.clone();
        s.flush();
        s.normalize();
        let neg = s.limbs.last().is_some_and(|l| *l < 0);
        let mut digits: Vec<u32> = s.limbs.iter().map(|l| *l as u32).collect();
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
    let (q, r) = (a / n as u128, a % n as u128);
    let q = q | (r != 0) as u128;
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

/// An unsigned big integer, 32-bit digits, least significant first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Big(pub(crate) Vec<u32>);

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
        let mut out = vec![0u32; words];
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
            let mut out = Vec::with_capacity(self.0.len() + 1);
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
        let mut out = Vec::with_capacity(n + 1);
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
        let mut out = Vec::with_capacity(self.0.len());
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
        let mut out = vec![0u32; self.0.len() + other.0.len() + 1];
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
        let mut out = vec![0u32; self.0.len()];
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
        (neg, big.0, exp)
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
