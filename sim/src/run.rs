//! The run loop: pops events in order and hands them to the [`World`] until a limit is hit;
//! [`Observed`] shows each event to an observer on the way.
//!
//! TigerStyle: every loop has a bound. A run stops when the queue is empty, when the next
//! event lies after the end time, or after a maximum number of events, and says which.

use crate::queue::EventQueue;
use crate::time::SimTime;

/// The system being simulated: one closed event type, handled in one place.
pub trait World {
    /// The events this world schedules. Kept small and `Copy`: millions sit in the queue.
    type Event: Copy;

    /// Handles one event at `queue.now()`. May schedule more events, never into the past.
    fn handle(&mut self, event: Self::Event, queue: &mut EventQueue<Self::Event>);

    /// Called when [`run`] stops, with the clock where it stopped: a world that computes
    /// ahead of the clock (what will happen at a known future instant, without an event for
    /// it) records here what happened up to `now`, so that its state is read as of the stop.
    /// Nothing by default.
    fn settle(&mut self, _now: SimTime) {}
}

/// When a run must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Events after this time are not run; the clock stops here.
    pub time_end: SimTime,
    /// At most this many events are run.
    pub event_count_max: u64,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Nothing was left to do.
    QueueEmpty,
    /// The next event lies after `time_end`.
    TimeEnd,
    /// `event_count_max` events were run.
    EventCountMax,
}

impl StopReason {
    /// A stable name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::QueueEmpty => "queue_empty",
            StopReason::TimeEnd => "time_end",
            StopReason::EventCountMax => "event_count_max",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// How many events were handled.
    pub event_count: u64,
    /// The simulated time when it stopped.
    pub time_stop: SimTime,
}

/// Runs `world` from the queue's current time until a limit is reached.
pub fn run<W: World>(world: &mut W, queue: &mut EventQueue<W::Event>, limits: RunLimits) -> RunOutcome {
    let mut event_count = 0u64;
    let stop_reason = loop {
        if event_count >= limits.event_count_max {
            break StopReason::EventCountMax;
        }
        match queue.pop_until(limits.time_end) {
            Some((_, event)) => {
                world.handle(event, queue);
                event_count += 1;
            }
            None if queue.is_empty() => break StopReason::QueueEmpty,
            None => {
                queue.advance_to(limits.time_end);
                break StopReason::TimeEnd;
            }
        }
    };
    world.settle(queue.now());
    RunOutcome { stop_reason, event_count, time_stop: queue.now() }
}

/// A world that shows each event, with its time, to `observe` before `world` handles it:
/// for tests and traces that need a run's events without the world keeping them.
pub struct Observed<'a, W, F> {
    world: &'a mut W,
    observe: F,
}

impl<'a, W, F> Observed<'a, W, F> {
    /// `world`, observed by `observe(time, event)`.
    pub fn new(world: &'a mut W, observe: F) -> Self {
        Observed { world, observe }
    }
}

impl<W: World, F: FnMut(SimTime, W::Event)> World for Observed<'_, W, F> {
    type Event = W::Event;

    fn handle(&mut self, event: W::Event, queue: &mut EventQueue<W::Event>) {
        (self.observe)(queue.now(), event);
        self.world.handle(event, queue);
    }

    fn settle(&mut self, now: SimTime) {
        self.world.settle(now);
    }
}

impl<W, F> std::fmt::Debug for Observed<'_, W, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    /// A ticker that reschedules itself every 10 ps, `remaining` times.
    struct Ticker {
        remaining: u32,
        seen: Vec<u64>,
    }

    impl World for Ticker {
        type Event = ();
        fn handle(&mut self, (): (), queue: &mut EventQueue<()>) {
            self.seen.push(queue.now().as_ps());
            if self.remaining > 0 {
                self.remaining -= 1;
                queue.schedule_in(SimDuration::from_ps(10), ());
            }
        }
    }

    fn start(remaining: u32) -> (Ticker, EventQueue<()>) {
        let mut q = EventQueue::new();
        q.schedule_at(SimTime::ZERO, ());
        (Ticker { remaining, seen: Vec::new() }, q)
    }

    #[test]
    fn stops_for_each_reason() {
        let unlimited = RunLimits { time_end: SimTime::MAX, event_count_max: u64::MAX };
        let (mut w, mut q) = start(3);
        let out = run(&mut w, &mut q, unlimited);
        assert_eq!((out.stop_reason, out.event_count), (StopReason::QueueEmpty, 4));
        assert_eq!(w.seen, [0, 10, 20, 30]);

        let (mut w, mut q) = start(100);
        let out = run(&mut w, &mut q, RunLimits { time_end: SimTime::from_ps(25), ..unlimited });
        assert_eq!((out.stop_reason, out.event_count, out.time_stop), (StopReason::TimeEnd, 3, SimTime::from_ps(25)));
        // Events exactly at the end time still run.
        let (mut w, mut q) = start(100);
        let out = run(&mut w, &mut q, RunLimits { time_end: SimTime::from_ps(20), ..unlimited });
        assert_eq!(out.event_count, 3);

        let (mut w, mut q) = start(100);
        let out = run(&mut w, &mut q, RunLimits { event_count_max: 5, ..unlimited });
        assert_eq!((out.stop_reason, out.event_count), (StopReason::EventCountMax, 5));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn an_observer_sees_each_event_before_the_world_handles_it() {
        let (mut w, mut q) = start(3);
        let mut times = Vec::new();
        let limits = RunLimits { time_end: SimTime::from_ps(25), event_count_max: u64::MAX };
        let out = run(&mut Observed::new(&mut w, |t: SimTime, ()| times.push(t.as_ps())), &mut q, limits);
        assert_eq!(out.event_count, 3);
        assert_eq!((times, w.seen), (vec![0, 10, 20], vec![0, 10, 20]));
    }
}
