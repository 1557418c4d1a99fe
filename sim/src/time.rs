//! Simulated time: integer picoseconds, as a point ([`SimTime`]) and a span ([`SimDuration`]).
//!
//! Time is never a float. A `u64` of picoseconds spans about 213 days of simulated time,
//! and every cost in docs/sources.md (nanoseconds, or TSC cycles at GHz frequencies) is an
//! exact whole number of picoseconds or is rounded up explicitly by [`SimDuration::from_cycles`].

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// Picoseconds in one nanosecond.
pub const PS_PER_NS: u64 = 1_000;
/// Picoseconds in one microsecond.
pub const PS_PER_US: u64 = 1_000_000;
/// Picoseconds in one millisecond.
pub const PS_PER_MS: u64 = 1_000_000_000;
/// Picoseconds in one second.
pub const PS_PER_S: u64 = 1_000_000_000_000;

/// A point in simulated time, in picoseconds since the start of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

/// A span of simulated time, in picoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimDuration(u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The latest representable time; used as "no end".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// A time `ps` picoseconds after the start.
    pub const fn from_ps(ps: u64) -> SimTime {
        SimTime(ps)
    }

    /// Picoseconds since the start.
    pub const fn as_ps(self) -> u64 {
        self.0
    }

    /// The span from `earlier` to `self`. Panics if `earlier` is later: that is a bug.
    #[inline]
    pub fn since(self, earlier: SimTime) -> SimDuration {
        assert!(earlier <= self, "time went backwards: {earlier} > {self}");
        SimDuration(self.0 - earlier.0)
    }

    /// Time since the start of the run, as a duration.
    pub const fn elapsed(self) -> SimDuration {
        SimDuration(self.0)
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// A span of `ps` picoseconds.
    pub const fn from_ps(ps: u64) -> SimDuration {
        SimDuration(ps)
    }

    /// A span of `ns` nanoseconds.
    pub const fn from_ns(ns: u64) -> SimDuration {
        SimDuration(ns * PS_PER_NS)
    }

    /// A span of `us` microseconds.
    pub const fn from_us(us: u64) -> SimDuration {
        SimDuration(us * PS_PER_US)
    }

    /// A span of `ms` milliseconds.
    pub const fn from_ms(ms: u64) -> SimDuration {
        SimDuration(ms * PS_PER_MS)
    }

    /// `cycles` at `frequency_hz`, rounded up so that a non-zero cost never becomes zero.
    pub fn from_cycles(cycles: u64, frequency_hz: u64) -> SimDuration {
        assert!(frequency_hz > 0, "a clock frequency must be positive");
        let ps = (u128::from(cycles) * u128::from(PS_PER_S)).div_ceil(u128::from(frequency_hz));
        SimDuration(u64::try_from(ps).expect("duration overflows u64 picoseconds"))
    }

    /// A span from a (non-negative, finite) number of picoseconds, rounded to the nearest
    /// picosecond. Used to turn samples of continuous distributions into time.
    #[inline]
    pub fn from_ps_f64(ps: f64) -> SimDuration {
        assert!(ps.is_finite() && ps >= 0.0, "invalid duration sample {ps} ps");
        // `ps.round()`, half away from zero, without its libm call (x86-64's baseline has no
        // rounding instruction; this runs twice per interrupt): `as` truncates (and saturates
        // at u64::MAX, far beyond any run length), and below 2^53 the fraction `ps − trunc`
        // is exact, so the result is the same for every non-negative input (a test compares).
        // From 2^53 on every f64 is a whole number.
        // Below 2^53 the whole part goes through `i64` (one conversion instruction each way on
        // x86-64, where `u64` ↔ `f64` takes a sequence of them): the same value, it fits.
        if ps >= (1u64 << 53) as f64 {
            return SimDuration(ps as u64);
        }
        SimDuration::from_ps_f64_below_2_53(ps)
    }

    /// [`SimDuration::from_ps_f64`] of a number known to be from 0 to below 2^53 (an
    /// exponential sample, capped), without its check and its branch for larger values.
    #[inline]
    pub(crate) fn from_ps_f64_below_2_53(ps: f64) -> SimDuration {
        debug_assert!((0.0..(1u64 << 53) as f64).contains(&ps), "{ps} ps");
        let whole = ps as i64;
        let up = ps - whole as f64 >= 0.5;
        SimDuration(whole as u64 + u64::from(up))
    }

    /// This span `n` times (a per-item cost times a count). Panics on overflow, which
    /// validation's bounds on costs and counts rule out: a wrapped product would be a
    /// silently wrong time.
    pub fn times(self, n: u64) -> SimDuration {
        SimDuration(self.0.checked_mul(n).expect("duration times a count overflows u64 picoseconds"))
    }

    /// Picoseconds in this span.
    pub const fn as_ps(self) -> u64 {
        self.0
    }

    /// This span in nanoseconds, as a float (for reporting only, never for ordering).
    pub fn as_ns_f64(self) -> f64 {
        self.0 as f64 / PS_PER_NS as f64
    }

    /// This span in seconds, as a float (for reporting and rates only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / PS_PER_S as f64
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    #[inline]
    fn add(self, rhs: SimDuration) -> SimTime {
        SimTime(self.0.checked_add(rhs.0).expect("simulated time overflows u64 picoseconds"))
    }
}

impl AddAssign<SimDuration> for SimTime {
    #[inline]
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    #[inline]
    fn add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.checked_add(rhs.0).expect("duration overflows u64 picoseconds"))
    }
}

impl Sub for SimDuration {
    type Output = SimDuration;
    #[inline]
    fn sub(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.checked_sub(rhs.0).expect("negative duration"))
    }
}

/// Writes `ps` picoseconds with the largest unit that keeps it readable (`1.5us`, `300ns`).
fn write_ps(f: &mut fmt::Formatter<'_>, ps: u64) -> fmt::Result {
    let units = [(PS_PER_S, "s"), (PS_PER_MS, "ms"), (PS_PER_US, "us"), (PS_PER_NS, "ns")];
    for (scale, name) in units {
        if ps >= scale {
            let whole = ps / scale;
            let frac = ps % scale;
            if frac == 0 {
                return write!(f, "{whole}{name}");
            }
            // Exact decimal: scale is a power of ten, so print all digits and trim zeros.
            let digits = scale.ilog10() as usize;
            let frac = format!("{frac:0digits$}");
            return write!(f, "{whole}.{}{name}", frac.trim_end_matches('0'));
        }
    }
    write!(f, "{ps}ps")
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ps(f, self.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("t=")?;
        write_ps(f, self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn from_ps_f64_rounds_as_round_does() {
        let mut rng = crate::SplitMix64::new(3);
        let mut values =
            vec![0.0, 0.49999999999999994, 0.5, 1.5, 2.5, 1e15 + 0.5, 4503599627370495.5, 9.1e15, 1.8e19, 1e30];
        for _ in 0..100_000 {
            let bits = rng.next_u64();
            // Spread over magnitudes from 2^-10 to 2^60 ps, and some halves.
            let x = f64::from_bits((bits >> 12) | ((1013 + (bits & 63)) << 52));
            values.push(x);
            values.push(x.trunc() + 0.5);
        }
        for x in values {
            assert_eq!(SimDuration::from_ps_f64(x).as_ps(), x.round() as u64, "{x}");
        }
    }
    use super::*;

    #[test]
    fn cycles_round_up_and_are_exact_at_ghz() {
        // 1 cycle at 2.5 GHz is exactly 400 ps.
        assert_eq!(SimDuration::from_cycles(1, 2_500_000_000).as_ps(), 400);
        // 1 cycle at 3 GHz is 333.33.. ps: rounded up, never down to zero.
        assert_eq!(SimDuration::from_cycles(1, 3_000_000_000).as_ps(), 334);
        assert_eq!(SimDuration::from_cycles(0, 3_000_000_000), SimDuration::ZERO);
    }

    #[test]
    fn display_uses_exact_decimals() {
        assert_eq!(SimDuration::from_ps(2_500_000).to_string(), "2.5us");
        assert_eq!(SimDuration::from_ns(300).to_string(), "300ns");
        assert_eq!(SimDuration::from_ps(1).to_string(), "1ps");
        assert_eq!(SimDuration::from_ps(1_000_001).to_string(), "1.000001us");
        assert_eq!(SimTime::from_ps(PS_PER_MS * 20).to_string(), "t=20ms");
    }

    #[test]
    #[allow(clippy::should_panic_without_expect)]
    fn since_is_never_negative() {
        let later = SimTime::from_ps(10);
        assert_eq!(later.since(SimTime::ZERO).as_ps(), 10);
        assert!(std::panic::catch_unwind(|| SimTime::ZERO.since(later)).is_err());
    }
}
