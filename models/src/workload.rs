//! Workloads: when each queue raises its interrupts (Poisson, constant rate, on/off bursts).
//!
//! # What is modelled
//! One arrival process per queue. Constant and on/off queues each draw from their own random
//! stream. A device's Poisson queues (all at the device's rate) are drawn together as one
//! superposed stream ([`Superposed`]): the union of n independent Poisson processes at rate
//! λ is a Poisson process at n·λ in which each arrival belongs to a queue chosen uniformly
//! and independently of everything before (the superposition and thinning theorems), so
//! the device needs one pending event instead of n. Changing one device's load or queue
//! count leaves every other device's arrival times unchanged.
//! - **Poisson**: exponential gaps at `rate_per_s` per queue (the device's stream: gaps at
//!   n × `rate_per_s`, then the queue).
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

/// The Poisson queues of one device as one stream: exponential gaps at the sum of their
/// rates, each arrival's queue drawn uniformly (all queues of a device share its rate). Each
/// arrival draws its gap, then its queue (no draw with one queue). Queues that do not raise
/// (not routed at setup) are thinned out: their draws are made and skipped, so the queues
/// that do raise see the same times whichever others are routed.
#[derive(Debug, Clone)]
pub struct Superposed {
    gap: DurationDist,
    queue_count: u32,
    rng: RngStream,
}

impl Superposed {
    /// `queue_count` queues, each Poisson at `rate_per_s`, drawing from `rng`.
    pub fn new(rate_per_s: f64, queue_count: u32, rng: RngStream) -> Superposed {
        assert!(queue_count > 0, "a superposed stream needs a queue");
        let gap = DurationDist::exponential(mean_gap(rate_per_s * f64::from(queue_count)));
        Superposed { gap, queue_count, rng }
    }

    /// The first arrival after `now` of a queue `raises` accepts: its time and the queue's
    /// index (`0..queue_count`). `raises` must accept at least one index (else this never
    /// returns); a queue accepted with probability p stays Poisson at p × the rate.
    #[inline]
    pub fn next_after(&mut self, now: SimTime, raises: impl Fn(u32) -> bool) -> (SimTime, u32) {
        let mut t = now;
        // Bounded in probability: each pass ends with chance (queues raising) / queue_count.
        loop {
            t += self.gap.sample(&mut self.rng);
            let index = if self.queue_count == 1 { 0 } else { self.rng.below(u64::from(self.queue_count)) as u32 };
            if raises(index) {
                return (t, index);
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
    fn a_superposed_stream_is_each_queue_at_its_rate_and_thinning_keeps_the_others() {
        // 4 queues at 25,000/s each for 1 s: each count Poisson with mean 25,000 (sd 158);
        // allow 5 sd.
        let end = SimTime::from_ps(PS_PER_S);
        let times = |raises: &dyn Fn(u32) -> bool| {
            let mut stream = Superposed::new(25_000.0, 4, RngStream::new(5, "d"));
            let mut out = vec![Vec::new(); 4];
            let mut t = SimTime::ZERO;
            loop {
                let (next, queue) = stream.next_after(t, raises);
                if next > end {
                    break out;
                }
                out[queue as usize].push(next);
                t = next;
            }
        };
        let all = times(&|_| true);
        for queue in &all {
            assert!((queue.len() as f64 - 25_000.0).abs() < 5.0 * 158.0, "{}", queue.len());
        }
        // Without queue 1 (not routed), the others raise at exactly the same times.
        let thinned = times(&|q| q != 1);
        assert!(thinned[1].is_empty());
        assert_eq!([&thinned[0], &thinned[2], &thinned[3]], [&all[0], &all[2], &all[3]]);
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
