//! Workloads: when each queue raises its interrupts (Poisson, constant rate, on/off bursts).
//!
//! # What is modelled
//! One arrival process per queue, each with its own random stream, so changing one queue's
//! load leaves every other queue's arrival times unchanged.
//! - **Poisson**: exponential gaps at `rate_per_s`.
//! - **Constant**: gaps of exactly `1/rate_per_s`, with a random phase per queue so that
//!   queues do not all fire at the same instant.
//! - **On/off**: Poisson at `rate_per_s` during `on`, silent during `off`, repeating with
//!   period `on + off`. All queues share the phase (bursts start at t = 0, `on + off`, …):
//!   a synchronised burst is the interrupt storm this process exists to model. The gap that
//!   would land in an off window restarts at the next on window, which is exact for a
//!   Poisson process (memorylessness).
//!
//! # What is not modelled (and why)
//! Completion coalescing (NVMe Feature 08h, NIC ITR) belongs to the device model and comes
//! with it; this module only says when a queue *wants* to interrupt.

use sim::{DurationDist, PS_PER_S, RngStream, SimDuration, SimTime};

/// How a queue's interrupts arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrivalParams {
    /// Poisson arrivals at `rate_per_s`.
    Poisson {
        /// Mean arrivals per second.
        rate_per_s: f64,
    },
    /// Evenly spaced arrivals at `rate_per_s`.
    Constant {
        /// Arrivals per second.
        rate_per_s: f64,
    },
    /// Poisson at `rate_per_s` for `on`, then nothing for `off`, repeating.
    OnOff {
        /// Mean arrivals per second while on.
        rate_per_s: f64,
        /// Length of each burst.
        on: SimDuration,
        /// Length of each silence.
        off: SimDuration,
    },
}

impl ArrivalParams {
    /// Long-run mean arrivals per second.
    pub fn mean_rate_per_s(&self) -> f64 {
        match *self {
            ArrivalParams::Poisson { rate_per_s } | ArrivalParams::Constant { rate_per_s } => rate_per_s,
            ArrivalParams::OnOff { rate_per_s, on, off } => {
                rate_per_s * on.as_ps() as f64 / (on.as_ps() + off.as_ps()) as f64
            }
        }
    }
}

/// The arrival state of one queue.
#[derive(Debug, Clone)]
pub struct Arrivals {
    kind: ArrivalKind,
    rng: RngStream,
}

#[derive(Debug, Clone)]
enum ArrivalKind {
    Poisson(DurationDist),
    Constant(SimDuration),
    OnOff { gap: DurationDist, on_ps: u64, period_ps: u64 },
}

/// Mean gap between arrivals at `rate_per_s`.
fn mean_gap(rate_per_s: f64) -> SimDuration {
    assert!(rate_per_s > 0.0 && rate_per_s.is_finite(), "arrival rate must be positive, got {rate_per_s}");
    SimDuration::from_ps_f64((PS_PER_S as f64 / rate_per_s).max(1.0))
}

impl Arrivals {
    /// The arrival state for `params`, drawing from `rng`.
    pub fn new(params: &ArrivalParams, rng: RngStream) -> Arrivals {
        let kind = match *params {
            ArrivalParams::Poisson { rate_per_s } => {
                ArrivalKind::Poisson(DurationDist::exponential(mean_gap(rate_per_s)))
            }
            ArrivalParams::Constant { rate_per_s } => ArrivalKind::Constant(mean_gap(rate_per_s)),
            ArrivalParams::OnOff { rate_per_s, on, off } => {
                assert!(on > SimDuration::ZERO, "an on/off burst needs a positive on time");
                ArrivalKind::OnOff {
                    gap: DurationDist::exponential(mean_gap(rate_per_s)),
                    on_ps: on.as_ps(),
                    period_ps: on.as_ps() + off.as_ps(),
                }
            }
        };
        Arrivals { kind, rng }
    }

    /// The time of the first arrival of a run starting at time zero.
    pub fn first(&mut self) -> SimTime {
        match &self.kind {
            ArrivalKind::Constant(gap) => SimTime::from_ps(self.rng.below(gap.as_ps().max(1))),
            _ => self.next_after(SimTime::ZERO),
        }
    }

    /// The time of the arrival following one at `now`.
    pub fn next_after(&mut self, now: SimTime) -> SimTime {
        match &self.kind {
            ArrivalKind::Poisson(gap) => now + gap.sample(&mut self.rng),
            ArrivalKind::Constant(gap) => now + *gap,
            ArrivalKind::OnOff { gap, on_ps, period_ps } => {
                let mut t = now + gap.sample(&mut self.rng);
                // Bounded: each pass moves t forward by at least one whole period.
                while t.as_ps() % period_ps >= *on_ps {
                    let next_on = (t.as_ps() / period_ps + 1) * period_ps;
                    t = SimTime::from_ps(next_on) + gap.sample(&mut self.rng);
                }
                t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_until(params: &ArrivalParams, end: SimTime) -> (u64, Vec<SimTime>) {
        let mut a = Arrivals::new(params, RngStream::new(5, "w"));
        let mut t = a.first();
        let mut times = Vec::new();
        while t <= end {
            times.push(t);
            t = a.next_after(t);
        }
        (times.len() as u64, times)
    }

    #[test]
    fn long_run_rates_match() {
        let end = SimTime::from_ps(PS_PER_S); // 1 s
        let (n, _) = count_until(&ArrivalParams::Poisson { rate_per_s: 100_000.0 }, end);
        // Poisson count sd = sqrt(1e5) ≈ 316; allow 5 sd.
        assert!((n as f64 - 100_000.0).abs() < 1_600.0, "poisson {n}");
        let (n, _) = count_until(&ArrivalParams::Constant { rate_per_s: 100_000.0 }, end);
        assert!((99_999..=100_001).contains(&n), "constant {n}");
    }

    #[test]
    fn on_off_is_silent_when_off() {
        let on = SimDuration::from_us(10);
        let off = SimDuration::from_us(30);
        let params = ArrivalParams::OnOff { rate_per_s: 10_000_000.0, on, off };
        let (n, times) = count_until(&params, SimTime::from_ps(PS_PER_S / 100));
        let period = on.as_ps() + off.as_ps();
        assert!(times.iter().all(|t| t.as_ps() % period < on.as_ps()));
        // Mean rate 10M/s × 1/4 duty × 10 ms = 25,000 arrivals; sd ≈ 158.
        assert!((n as f64 - 25_000.0).abs() < 800.0, "on/off {n}");
        assert_eq!(params.mean_rate_per_s(), 2_500_000.0);
    }
}
