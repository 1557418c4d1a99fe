//! `sim`: the discrete-event engine of irqsim — time, event queue, run loop, seeded random
//! streams and metrics. It knows nothing about interrupts and does no I/O.
//!
//! # A practical overview
//!
//! A model is a [`World`]: a struct with one closed `Event` type and one `handle` function.
//! The engine pops events in (time, sequence) order and calls `handle`, which may schedule
//! more events through the [`EventQueue`]. Time is integer picoseconds ([`SimTime`],
//! [`SimDuration`]); randomness comes from [`RngStream`]s derived from the run seed and a
//! component path; measurements go into a [`Metrics`] registry through typed ids.
//!
//! ```text
//!   ┌────────────┐  pop (earliest time, FIFO on ties)  ┌─────────────┐
//!   │ EventQueue │ ───────────────────────────────────▶│ World::handle│
//!   │ 4-ary heap │ ◀─────────────────────────────────── │  (models)   │
//!   └────────────┘       schedule_in / schedule_at      └─────────────┘
//! ```
//!
//! A single server with exponential service, fed by Poisson arrivals (an M/M/1 queue):
//!
//! ```
//! use sim::{run, DurationDist, EventQueue, Metrics, RngStream, RunLimits, SimDuration, SimTime, Unit, World};
//!
//! #[derive(Clone, Copy)]
//! enum Ev { Arrive, Depart }
//!
//! struct Server {
//!     gap: DurationDist, service: DurationDist, rng: RngStream,
//!     waiting: std::collections::VecDeque<SimTime>, busy: bool,
//!     metrics: Metrics, sojourn: sim::HistogramId,
//! }
//!
//! impl World for Server {
//!     type Event = Ev;
//!     fn handle(&mut self, ev: Ev, q: &mut EventQueue<Ev>) {
//!         match ev {
//!             Ev::Arrive => {
//!                 self.waiting.push_back(q.now());
//!                 q.schedule_in(self.gap.sample(&mut self.rng), Ev::Arrive);
//!                 if !self.busy { self.busy = true; q.schedule_in(self.service.sample(&mut self.rng), Ev::Depart); }
//!             }
//!             Ev::Depart => {
//!                 let arrived = self.waiting.pop_front().unwrap();
//!                 self.metrics.record(self.sojourn, q.now().since(arrived).as_ps());
//!                 self.busy = !self.waiting.is_empty();
//!                 if self.busy { q.schedule_in(self.service.sample(&mut self.rng), Ev::Depart); }
//!             }
//!         }
//!     }
//! }
//!
//! let mut metrics = Metrics::new();
//! let sojourn = metrics.histogram("sojourn_ps", Unit::Picoseconds, "arrival to departure");
//! let mut server = Server {
//!     gap: DurationDist::exponential(SimDuration::from_ns(2)),
//!     service: DurationDist::exponential(SimDuration::from_ns(1)),
//!     rng: RngStream::new(1, "server"), waiting: Default::default(), busy: false, metrics, sojourn,
//! };
//! let mut queue = EventQueue::new();
//! queue.schedule_at(SimTime::ZERO, Ev::Arrive);
//! let limits = RunLimits { time_end: SimTime::from_ps(200_000_000), event_count_max: u64::MAX };
//! let outcome = run(&mut server, &mut queue, limits);
//! assert_eq!(outcome.stop_reason, sim::StopReason::TimeEnd);
//! // M/M/1 with rho = 0.5: mean sojourn 1/(mu - lambda) = 2 ns.
//! let mean_ns = server.metrics.snapshot().histograms[0].mean() / 1000.0;
//! assert!((mean_ns - 2.0).abs() < 0.1, "{mean_ns}");
//! ```
//!
//! # Guarantees
//! - A run is a pure function of the world's initial state and the seeds of its streams.
//! - Events at the same time run in the order they were scheduled.
//! - Scheduling into the past panics: it is always a bug in a model.

#![warn(missing_docs)]

mod dist;
mod metrics;
mod queue;
mod rng;
mod run;
mod time;

pub use dist::DurationDist;
pub use metrics::{
    CounterId, FailureExample, FailureExamples, HistogramId, HistogramSummary, MetricInfo, Metrics, MetricsSnapshot,
    SUMMARY_QUANTILES, Tally, Unit,
};
pub use queue::EventQueue;
pub use rng::{RngStream, SplitMix64, fnv1a64, fnv1a64_extend, fnv1a64_extend_u32, mix64};
pub use run::{Observed, RunLimits, RunOutcome, StopReason, World, run};
pub use time::{PS_PER_MS, PS_PER_NS, PS_PER_S, PS_PER_US, SimDuration, SimTime};
