//! The hold model on NeXosim 1.0 (`--features nexosim`): one model that schedules itself,
//! the same increments as [`crate::hold_engine`], so both pop the same sequence.
//!
//! How it maps: NeXosim's clock is a `MonotonicTime` with nanosecond resolution; the hold
//! model's times are integer picoseconds, so one NeXosim nanosecond stands for one
//! picosecond here (the pending times and every increment are the same integers, so the
//! order of events is the same). The model's events are `#[nexosim(schedulable)]` inputs
//! scheduled through its `Context` (NeXosim's scheduler queue, keyed by time and origin,
//! ties in insertion order, as the engine's sequence numbers order them). The simulation
//! runs on one executor thread (`SimInit::with_num_threads(1)`), as the engine does, and is
//! advanced by `Simulation::step` (all events at the next time) until `ops` events ran; the
//! last step also runs the events that share its time, which the engine would run next, so
//! those are neither counted nor mixed into the checksum.
//!
//! What is not the same: NeXosim refuses to schedule at the current time (`now >= deadline`
//! is an error), where the engine queues an event at `now` behind those already there. An
//! increment that rounds to 0 ps (about one draw in 2 million at a 1 us mean) is therefore
//! handled at once, inside the handler that drew it: the same order unless another
//! pending event has that very picosecond. The model's count and checksum are published
//! through atomics in its environment (a model's state stays inside the simulation); a
//! relaxed store per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexosim::model::{BuildContext, Context, Model, ProtoModel, schedulable};
use nexosim::simulation::{Mailbox, SimInit};
use nexosim::time::MonotonicTime;
use serde::{Deserialize, Serialize};
use sim::{DurationDist, RngStream, SimDuration, mix64};

use crate::{BenchResult, increments};

/// What the model publishes: events handled and the checksum, as `hold_engine` mixes it.
#[derive(Debug, Default)]
struct Published {
    handled: AtomicU64,
    checksum: AtomicU64,
}

/// The model's state that is not serialisable: the random stream and the increments.
#[derive(Debug)]
struct HoldEnv {
    rng: RngStream,
    exp: DurationDist,
    pending: u64,
    /// Events to count; those after (in the last step) run uncounted.
    ops: u64,
    handled: u64,
    checksum: u64,
    published: Arc<Published>,
}

/// The hold model (no serialisable state of its own).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Hold {}

#[Model(type Env = HoldEnv)]
impl Hold {
    /// Schedules the `pending` initial events at time 0 + Exp(mean), payload = index.
    #[nexosim(init)]
    async fn init(&mut self, cx: &Context<Self>, env: &mut HoldEnv) {
        for i in 0..env.pending {
            let increment = env.exp.sample(&mut env.rng);
            assert!(increment > SimDuration::ZERO, "an initial event at time 0 (NeXosim cannot schedule at now)");
            cx.schedule_event(Duration::from_nanos(increment.as_ps()), schedulable!(Self::event), i as u32)
                .expect("a future time");
        }
    }

    /// One hold operation: mix (now, payload) into the checksum, schedule one successor.
    #[nexosim(schedulable)]
    async fn event(&mut self, payload: u32, cx: &Context<Self>, env: &mut HoldEnv) {
        let now = u64::try_from(cx.time().duration_since(MonotonicTime::EPOCH).as_nanos()).expect("in range");
        loop {
            if env.handled < env.ops {
                env.checksum = mix64(env.checksum ^ now ^ u64::from(payload));
                env.handled += 1;
            }
            let increment = env.exp.sample(&mut env.rng);
            if increment > SimDuration::ZERO {
                cx.schedule_event(Duration::from_nanos(increment.as_ps()), schedulable!(Self::event), payload)
                    .expect("a future time");
                break;
            }
        }
        env.published.handled.store(env.handled, Ordering::Relaxed);
        env.published.checksum.store(env.checksum, Ordering::Relaxed);
    }
}

/// The prototype that hands the model its environment.
struct ProtoHold {
    pending: u64,
    ops: u64,
    published: Arc<Published>,
}

impl ProtoModel for ProtoHold {
    type Model = Hold;

    fn build(self, _: &mut BuildContext<Self>) -> (Hold, HoldEnv) {
        let (rng, exp) = increments();
        let env = HoldEnv {
            rng,
            exp,
            pending: self.pending,
            ops: self.ops,
            handled: 0,
            checksum: 0,
            published: self.published,
        };
        (Hold {}, env)
    }
}

/// The hold model on NeXosim: `pending` events, `ops` events handled (and the events that
/// share the last one's time, uncounted).
pub fn hold_nexosim(pending: u64, ops: u64) -> BenchResult {
    let published = Arc::new(Published::default());
    let proto = ProtoHold { pending, ops, published: Arc::clone(&published) };
    let mut simulation = SimInit::with_num_threads(1)
        .add_model(proto, Mailbox::new(), "hold")
        .init(MonotonicTime::EPOCH)
        .expect("the hold model initialises");
    let started = Instant::now();
    while published.handled.load(Ordering::Relaxed) < ops {
        simulation.step().expect("a step runs");
    }
    let wall_s = started.elapsed().as_secs_f64();
    BenchResult::hold(published.handled.load(Ordering::Relaxed), wall_s, published.checksum.load(Ordering::Relaxed))
}
