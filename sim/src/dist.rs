//! Service-time and gap distributions over simulated time: constant, exponential, lognormal.
//!
//! Samples are drawn as floating-point picoseconds and rounded to the nearest picosecond,
//! so a distribution's mean is kept to within half a picosecond. A sample is capped at
//! [`DurationDist::SAMPLE_MAX`] (2^50 ps, about 18.8 minutes) so that a time plus a sample
//! can never overflow: an exponential sample is at most about 37 means (the generator's
//! smallest uniform is 2^-53), and a lognormal one beyond the cap is, for means and standard
//! deviations of at most 1 s (what scenarios allow), more than 8 standard deviations of the
//! underlying normal away (probability below 10^-15 per sample). Exponential and lognormal
//! come from `rand_distr` with its `std_math` feature turned on deliberately (crates.md
//! §4: feature unification can otherwise switch the math library underneath us).

use crate::rng::RngStream;
use crate::time::SimDuration;
use rand_distr::{Distribution, Exp, Exp1, LogNormal};

/// A distribution of durations.
#[derive(Debug, Clone)]
pub enum DurationDist {
    /// Always the same duration.
    Constant(SimDuration),
    /// Exponential with the given mean (memoryless service or gaps).
    Exponential {
        /// The mean.
        mean: SimDuration,
        /// What rand_distr's `Exp` of rate 1/mean (in 1/ps) scales its unit draw by: 1/rate,
        /// computed as it does. A sample is the unit draw (`Exp1`) times this, as `Exp`
        /// samples, without `Rng::sample`'s out-of-line call (a test compares the two).
        scale: f64,
    },
    /// Lognormal with the given mean and standard deviation.
    LogNormal {
        /// The mean.
        mean: SimDuration,
        /// The standard deviation.
        stddev: SimDuration,
        /// rand_distr's sampler over picoseconds.
        sampler: LogNormal<f64>,
    },
}

impl DurationDist {
    /// The largest sample (2^50 ps, about 18.8 minutes); see the module documentation.
    pub const SAMPLE_MAX: SimDuration = SimDuration::from_ps(1 << 50);

    /// A constant duration.
    pub fn constant(value: SimDuration) -> DurationDist {
        DurationDist::Constant(value)
    }

    /// An exponential distribution with `mean` (> 0).
    pub fn exponential(mean: SimDuration) -> DurationDist {
        assert!(mean > SimDuration::ZERO, "an exponential mean must be positive");
        let rate = 1.0 / mean.as_ps() as f64;
        Exp::new(rate).expect("a positive finite rate");
        DurationDist::Exponential { mean, scale: 1.0 / rate }
    }

    /// A lognormal distribution with the given `mean` (> 0) and `stddev` (> 0):
    /// sigma² = ln(1 + (sd/mean)²), mu = ln(mean) − sigma²/2.
    pub fn lognormal(mean: SimDuration, stddev: SimDuration) -> DurationDist {
        assert!(mean > SimDuration::ZERO && stddev > SimDuration::ZERO, "lognormal needs positive mean and stddev");
        let m = mean.as_ps() as f64;
        let s = stddev.as_ps() as f64;
        let sigma2 = (1.0 + (s / m).powi(2)).ln();
        let mu = m.ln() - sigma2 / 2.0;
        let sampler = LogNormal::new(mu, sigma2.sqrt()).expect("finite lognormal parameters");
        DurationDist::LogNormal { mean, stddev, sampler }
    }

    /// The distribution's mean.
    pub fn mean(&self) -> SimDuration {
        match self {
            DurationDist::Constant(v) => *v,
            DurationDist::Exponential { mean, .. } | DurationDist::LogNormal { mean, .. } => *mean,
        }
    }

    /// The distribution's standard deviation (0 for a constant).
    pub fn stddev(&self) -> SimDuration {
        match self {
            DurationDist::Constant(_) => SimDuration::ZERO,
            DurationDist::Exponential { mean, .. } => *mean,
            DurationDist::LogNormal { stddev, .. } => *stddev,
        }
    }

    /// One sample. Inlined into its callers, the exponential's ziggurat with it (two draws per
    /// interrupt on Lindley's path: out of line, the call, its register saves and the match
    /// cost about 29 instructions a draw); the lognormal stays a call.
    #[inline(always)]
    pub fn sample(&self, rng: &mut RngStream) -> SimDuration {
        match self {
            DurationDist::Constant(v) => *v,
            DurationDist::Exponential { scale, .. } => {
                let unit: f64 = Exp1.sample(rng.generator());
                // The unit draw is finite and non-negative (the ziggurat's layers, or its tail
                // R − ln u with u in [0, 1)) and `scale` positive and finite, so the capped
                // product is a number from 0 to 2^50: rounded as `capped` rounds it, without
                // its check and its branch for values from 2^53 (a test compares the two).
                SimDuration::from_ps_f64_below_2_53((unit * scale).min(Self::SAMPLE_MAX.as_ps() as f64))
            }
            DurationDist::LogNormal { sampler, .. } => Self::sample_lognormal(sampler, rng),
        }
    }

    /// One lognormal sample.
    #[inline(never)]
    fn sample_lognormal(sampler: &LogNormal<f64>, rng: &mut RngStream) -> SimDuration {
        Self::capped(sampler.sample(rng.generator()))
    }
}

impl DurationDist {
    /// A sample of `ps` picoseconds, at most [`DurationDist::SAMPLE_MAX`].
    #[inline]
    fn capped(ps: f64) -> SimDuration {
        SimDuration::from_ps_f64(ps.min(Self::SAMPLE_MAX.as_ps() as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_mean_and_var(dist: &DurationDist, n: u32) -> (f64, f64) {
        let mut rng = RngStream::new(3, "dist-test");
        let xs: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng).as_ps() as f64).collect();
        let mean = xs.iter().sum::<f64>() / f64::from(n);
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n - 1);
        (mean, var)
    }

    #[test]
    fn exponential_samples_are_rand_distrs() {
        // The unit draw times 1/rate is `Exp::sample`, bit for bit, at every mean scenarios
        // use and some odd ones: 20,000 draws each from the same stream.
        for mean_ps in [1u64, 3, 333, 1_000, 1_000_000, 128_000_000, 7_777_777_777, 1 << 40] {
            let dist = DurationDist::exponential(SimDuration::from_ps(mean_ps));
            let exp = Exp::new(1.0 / mean_ps as f64).unwrap();
            let (mut a, mut b) = (RngStream::new(9, "exp-test"), RngStream::new(9, "exp-test"));
            for _ in 0..20_000 {
                assert_eq!(dist.sample(&mut a), DurationDist::capped(exp.sample(b.generator())), "mean {mean_ps} ps");
            }
        }
    }

    #[test]
    fn exponential_samples_round_as_capped_rounds() {
        // The same stream drawn by `sample` and by the unit draw rounded through `capped`
        // (from_ps_f64 with its check): equal at means from 1 ps to past the cap.
        for mean_ps in [1u64, 7, 1_000, 1_000_000, 1 << 40, 1 << 50, u64::MAX >> 8] {
            let dist = DurationDist::exponential(SimDuration::from_ps(mean_ps));
            let DurationDist::Exponential { scale, .. } = dist else { unreachable!() };
            let (mut a, mut b) = (RngStream::new(4, "round-test"), RngStream::new(4, "round-test"));
            for _ in 0..20_000 {
                let unit: f64 = Exp1.sample(b.generator());
                assert_eq!(dist.sample(&mut a), DurationDist::capped(unit * scale), "mean {mean_ps} ps");
            }
        }
    }

    #[test]
    fn sample_moments_match_parameters() {
        let n = 200_000;
        // Exponential: mean 1000 ps, sd 1000 ps. The standard error of the mean is
        // 1000/sqrt(n) ≈ 2.2 ps; allow 5 standard errors.
        let (m, v) = sample_mean_and_var(&DurationDist::exponential(SimDuration::from_ns(1)), n);
        assert!((m - 1000.0).abs() < 5.0 * 1000.0 / f64::from(n).sqrt(), "exp mean {m}");
        assert!((v.sqrt() - 1000.0).abs() < 20.0, "exp sd {}", v.sqrt());
        let ln = DurationDist::lognormal(SimDuration::from_ns(2), SimDuration::from_ns(1));
        let (m, v) = sample_mean_and_var(&ln, n);
        assert!((m - 2000.0).abs() < 5.0 * 1000.0 / f64::from(n).sqrt(), "lognormal mean {m}");
        assert!((v.sqrt() - 1000.0).abs() < 30.0, "lognormal sd {}", v.sqrt());
        let c = DurationDist::constant(SimDuration::from_ns(5));
        assert_eq!(sample_mean_and_var(&c, 10), (5000.0, 0.0));
    }
}
