//! The pending-event set: a binary min-heap (the standard library's `BinaryHeap`) ordered by
//! (time, sequence number).
//!
//! # Ordering contract
//! Events run in order of their time; events scheduled for the same time run in the
//! order they were scheduled (FIFO), because each one gets the next value of a sequence
//! counter and the heap key is `(time << 64) | seq`, compared as one `u128`. Keys are
//! unique, so the order never depends on the heap's layout.
//!
//! # Why the root is removed lazily
//! A discrete-event loop nearly always pops the earliest event and then schedules a
//! successor. The popped root therefore stays in place: the next `schedule_*` call
//! overwrites it through `BinaryHeap::peek_mut` and sifts it down once, instead of a
//! sift-down for the pop plus a sift-up for the push. A hand-written 4-ary heap did the same
//! before (crates.md §7 measured the pattern at 1.6–1.7× the plain pop+push rate); the
//! standard library's binary heap, with its hole-based sifts, runs the engine's hold model
//! faster at every size measured (benches/runs/2026-11-30-rust-2core.md).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::{SimDuration, SimTime};

#[derive(Clone, Copy, Debug)]
struct Entry<E> {
    /// `(time_ps << 64) | seq`: the whole ordering in one integer.
    key: u128,
    event: E,
}

impl<E> Entry<E> {
    fn time(&self) -> SimTime {
        SimTime::from_ps((self.key >> 64) as u64)
    }
}

// `BinaryHeap` is a max-heap: the smallest key must compare greatest.
impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Pending events ordered by time, FIFO among equal times. Scheduling into the past is a
/// bug in the caller and panics.
#[derive(Debug, Clone)]
pub struct EventQueue<E: Copy> {
    now: SimTime,
    seq_next: u64,
    heap: BinaryHeap<Entry<E>>,
    /// The root was handed out by a pop and is logically gone; it is physically removed
    /// (or overwritten by the next schedule) later.
    root_taken: bool,
    scheduled_count: u64,
}

impl<E: Copy> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> EventQueue<E> {
    /// An empty queue at time zero.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty queue at time zero with room for `capacity` pending events.
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            now: SimTime::ZERO,
            seq_next: 0,
            heap: BinaryHeap::with_capacity(capacity),
            root_taken: false,
            scheduled_count: 0,
        }
    }

    /// The current simulated time: the time of the event last popped.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len() - usize::from(self.root_taken)
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events were ever scheduled.
    pub fn scheduled_count(&self) -> u64 {
        self.scheduled_count
    }

    /// Schedules `event` `delay` after now.
    #[inline]
    pub fn schedule_in(&mut self, delay: SimDuration, event: E) {
        self.schedule_at(self.now + delay, event);
    }

    /// Schedules `event` at `time`, which must not be in the past.
    #[inline]
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        assert!(time >= self.now, "event scheduled into the past: {time} < now {}", self.now);
        let entry = Entry { key: (u128::from(time.as_ps()) << 64) | u128::from(self.seq_next), event };
        self.seq_next += 1;
        self.scheduled_count += 1;
        if self.root_taken {
            self.root_taken = false;
            // Overwrites the taken root; dropping the guard sifts the new entry down.
            *self.heap.peek_mut().expect("a taken root implies a non-empty heap") = entry;
        } else {
            self.heap.push(entry);
        }
    }

    /// Removes and returns the earliest event, advancing `now` to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.pop_until(SimTime::MAX)
    }

    /// Like [`pop`](Self::pop), but only if the earliest event is at or before `limit`;
    /// later events stay pending.
    #[inline]
    pub fn pop_until(&mut self, limit: SimTime) -> Option<(SimTime, E)> {
        self.settle_root();
        let root = self.heap.peek()?;
        let time = root.time();
        if time > limit {
            return None;
        }
        let event = root.event;
        self.now = time;
        self.root_taken = true;
        Some((time, event))
    }

    /// The time of the earliest pending event.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.settle_root();
        self.heap.peek().map(Entry::time)
    }

    /// Advances `now` to `time` without running anything (the run loop does this when it
    /// stops at an end time). `time` must not be in the past nor after a pending event.
    pub fn advance_to(&mut self, time: SimTime) {
        assert!(time >= self.now, "cannot move time backwards");
        if let Some(next) = self.peek_time() {
            assert!(time <= next, "cannot skip over a pending event at {next}");
        }
        self.now = time;
    }

    /// Pending events in no particular order (for conservation checks and debugging).
    pub fn iter(&self) -> impl Iterator<Item = (SimTime, &E)> {
        // Keys are unique: the taken root is the one entry with the heap's top key.
        let taken = if self.root_taken { self.heap.peek().map(|e| e.key) } else { None };
        self.heap.iter().filter(move |e| Some(e.key) != taken).map(|e| (e.time(), &e.event))
    }

    /// Physically removes a root that a pop handed out.
    #[inline]
    fn settle_root(&mut self) {
        if self.root_taken {
            self.root_taken = false;
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngStream;
    use std::collections::BTreeMap;

    #[test]
    fn same_time_events_run_in_schedule_order() {
        let mut q = EventQueue::new();
        for i in 0..10 {
            q.schedule_at(SimTime::from_ps(5), i);
        }
        q.schedule_at(SimTime::from_ps(1), 100);
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, [100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn scheduling_into_the_past_panics() {
        let mut q = EventQueue::new();
        q.schedule_at(SimTime::from_ps(10), ());
        q.pop();
        let result = std::panic::catch_unwind(move || q.schedule_at(SimTime::from_ps(9), ()));
        assert!(result.is_err());
    }

    #[test]
    fn pop_until_leaves_later_events_pending() {
        let mut q = EventQueue::new();
        q.schedule_at(SimTime::from_ps(10), 'a');
        q.schedule_at(SimTime::from_ps(20), 'b');
        assert_eq!(q.pop_until(SimTime::from_ps(15)), Some((SimTime::from_ps(10), 'a')));
        assert_eq!(q.pop_until(SimTime::from_ps(15)), None);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(), Some((SimTime::from_ps(20), 'b')));
        assert!(q.is_empty());
    }

    /// Property test: random interleavings of schedule and pop against a reference model
    /// (a `BTreeMap` keyed by (time, seq)). The seed is printed on failure; `SEED=n`
    /// replays one seed.
    #[test]
    fn matches_reference_on_random_operation_sequences() {
        let seeds: Vec<u64> = match std::env::var("SEED") {
            Ok(s) => vec![s.parse().expect("SEED must be an integer")],
            Err(_) => (0..300).collect(),
        };
        for seed in seeds {
            let result = std::panic::catch_unwind(|| check_against_reference(seed));
            if result.is_err() {
                panic!("event queue diverged from the reference; replay with SEED={seed}");
            }
        }
    }

    fn check_against_reference(seed: u64) {
        let mut rng = RngStream::new(seed, "queue-property-test");
        let mut q: EventQueue<u64> = EventQueue::new();
        let mut reference: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut seq = 0u64;
        let ops = 200 + rng.below(800);
        // Small time ranges make ties (the FIFO rule) common.
        let spread = 1 + rng.below(50);
        for _ in 0..ops {
            let op = rng.below(10);
            if op < 5 {
                let time = q.now().as_ps() + rng.below(spread);
                let payload = rng.next_u64();
                q.schedule_at(SimTime::from_ps(time), payload);
                reference.insert((time, seq), payload);
                seq += 1;
            } else if op < 9 {
                let expected = reference.pop_first();
                let got = q.pop();
                assert_eq!(got.map(|(t, e)| (t.as_ps(), e)), expected.map(|((t, _), e)| (t, e)));
            } else {
                let limit = q.now().as_ps() + rng.below(spread);
                let expected = reference.first_key_value().filter(|((t, _), _)| *t <= limit);
                let expected = expected.map(|((t, _), e)| (*t, *e));
                let got = q.pop_until(SimTime::from_ps(limit));
                assert_eq!(got.map(|(t, e)| (t.as_ps(), e)), expected);
                if got.is_some() {
                    reference.pop_first();
                }
            }
            assert_eq!(q.len(), reference.len());
            let mut pending: Vec<u64> = q.iter().map(|(_, e)| *e).collect();
            let mut expected: Vec<u64> = reference.values().copied().collect();
            pending.sort_unstable();
            expected.sort_unstable();
            assert_eq!(pending, expected);
        }
        while let Some((t, e)) = q.pop() {
            let ((rt, _), re) = reference.pop_first().expect("reference ran out first");
            assert_eq!((t.as_ps(), e), (rt, re));
        }
        assert!(reference.is_empty());
    }
}
