//! The pending-event set: a 4-ary min-heap ordered by (time, sequence number), with entries
//! of 8 bytes of time, 4 of sequence and the event.
//!
//! # Ordering contract
//! Events run in order of their time; events scheduled for the same time run in the
//! order they were scheduled (FIFO), because each one gets the next value of a sequence
//! counter and entries compare by `(time, seq)`. Keys are unique, so the order never depends
//! on the heap's layout.
//!
//! # A 32-bit sequence number
//! The sequence number only orders events of equal time, so it needs only to be increasing
//! among the pending ones. It is 32 bits (an entry with a `u32` event is 16 bytes, four to a
//! cache line, where `(u64 time, u64 seq, u32)` takes 24). When the counter would wrap, the
//! pending entries are renumbered 0, 1, 2, … in their `(time, seq)` order: a map that keeps
//! the order keeps the heap valid, so nothing moves. That happens once per 2^32 schedules.
//!
//! # Why the root is removed lazily
//! A discrete-event loop nearly always pops the earliest event and then schedules a
//! successor. The popped root therefore stays in place: the next `schedule_*` call
//! overwrites it and sifts it down once, instead of a sift-down for the pop plus a sift-up
//! for the push (crates.md §7 measured the pattern at 1.6–1.7× the plain pop+push rate).
//!
//! # Why a 4-ary heap, sifted to the bottom
//! A successor is usually later than most pending events, so it sinks nearly to the leaves.
//! The sift therefore moves the smallest child up at every level without comparing it to the
//! sinking entry, and compares only on the way back up from the leaf (Floyd's trick, as
//! `std`'s `BinaryHeap::pop` does). Four children per node halve the depth of a binary heap,
//! and four 16-byte entries share a cache line. The four children are read as one array
//! (one bounds check per level, no `unsafe`).
//!
//! # Why the last node is padded
//! The heap's storage is the root and whole groups of four children: past the last entry,
//! the last group is filled with padding that compares after every event (time and
//! sequence number at their maximum). So every node with a child has four, read and
//! compared the same way, and the sift needs no second loop for a last node with one to
//! three children (at 16 pending, one interrupt in four on Lindley's path reached one).
//! The padding is never handed out: the sift moves a child up only from a group holding
//! an entry, whose smallest is that entry, and entries stay in the first `count` places.
//! benches/runs/2026-11-30-rust-2core.md has the measurements against `std`'s heap.

use crate::time::{SimDuration, SimTime};

/// Children per node.
const ARITY: usize = 4;

#[derive(Clone, Copy, Debug)]
struct Entry<E> {
    /// Picoseconds.
    time: u64,
    /// Orders equal times: scheduling order among the pending entries.
    seq: u32,
    event: E,
}

impl<E> Entry<E> {
    /// Padding past the last entry ("Why the last node is padded"): it compares after every
    /// entry, whose sequence number is below `u32::MAX`. `event` is any value; never read.
    #[inline]
    fn padding(event: E) -> Entry<E> {
        Entry { time: u64::MAX, seq: u32::MAX, event }
    }

    /// `(time, seq)` as one integer: time in the high word, so no shift is needed and two
    /// keys compare with two instructions, no branch.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }
}

/// Pending events ordered by time, FIFO among equal times. Scheduling into the past is a
/// bug in the caller and panics.
#[derive(Debug, Clone)]
pub struct EventQueue<E: Copy> {
    now: SimTime,
    seq_next: u32,
    /// The value of `seq_next` at which the pending entries are renumbered (`u32::MAX`; tests
    /// lower it).
    seq_limit: u32,
    /// The entries in `heap[..count]`, padding after them up to the end of the last group
    /// of `ARITY` ([`padded_len`]).
    heap: Vec<Entry<E>>,
    /// How many entries the heap holds (a taken root included).
    count: usize,
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
            seq_limit: u32::MAX,
            heap: Vec::with_capacity(capacity),
            count: 0,
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
        self.count - usize::from(self.root_taken)
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

    /// Schedules `event` at `time`, which must not be in the past. Always inlined, with its
    /// sift: two nested calls that saved and restored registers cost Lindley's path about 26
    /// of its ~930 instructions an interrupt (benches/peers/README.md).
    #[inline(always)]
    pub fn schedule_at(&mut self, time: SimTime, event: E) {
        assert!(time >= self.now, "event scheduled into the past: {time} < now {}", self.now);
        if self.seq_next == self.seq_limit {
            self.renumber();
        }
        let entry = Entry { time: time.as_ps(), seq: self.seq_next, event };
        self.seq_next += 1;
        self.scheduled_count += 1;
        if self.root_taken {
            self.root_taken = false;
            self.sift_down_from_root(entry);
        } else {
            let at = self.count;
            if at == self.heap.len() {
                // Full: the root's place, or a new group of children, padded.
                self.heap.resize(padded_len(at + 1), Entry::padding(entry.event));
            }
            self.count = at + 1;
            self.sift_up(at, entry);
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
        let root = self.heap.first()?;
        let time = SimTime::from_ps(root.time);
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
        self.heap.first().map(|e| SimTime::from_ps(e.time))
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
        // The taken root is at index 0.
        let skip = usize::from(self.root_taken);
        self.heap[skip..self.count].iter().map(|e| (SimTime::from_ps(e.time), &e.event))
    }

    /// The pending events among which the next to run is, for a caller that prepares for it
    /// (a model prefetching what that event will read): after a pop, while nothing has been
    /// scheduled since, the root's children (at most four: the earliest of them is the
    /// earliest pending); otherwise the earliest pending event alone. In no particular
    /// order; they are the same events whatever the caller does with them.
    pub fn next_candidates(&self) -> impl Iterator<Item = (SimTime, &E)> {
        let len = self.count;
        let range = if self.root_taken { 1..len.min(1 + ARITY) } else { 0..len.min(1) };
        self.heap[range].iter().map(|e| (SimTime::from_ps(e.time), &e.event))
    }

    /// Physically removes a root that a pop handed out. Always inlined, the removal not: a
    /// hold (pop, then a schedule that overwrites the root) finds nothing to remove, and an
    /// out-of-line call for that test cost Lindley's path 17 instructions an interrupt.
    #[inline(always)]
    fn settle_root(&mut self) {
        if self.root_taken {
            self.remove_root();
        }
    }

    /// Removes the taken root: the last entry takes its place, padding its old one.
    #[inline(never)]
    fn remove_root(&mut self) {
        self.root_taken = false;
        let last_at = self.count.checked_sub(1).expect("a taken root implies a non-empty heap");
        let last = self.heap[last_at];
        self.heap[last_at] = Entry::padding(last.event);
        self.count = last_at;
        self.heap.truncate(padded_len(last_at));
        if last_at > 0 {
            self.sift_down_from_root(last);
        }
    }

    /// Puts `entry` at the root's place (whose old content is gone) and restores the heap:
    /// the hole at the root moves down along the smallest children to a leaf, then `entry`
    /// moves up from there to its place.
    #[inline(always)]
    fn sift_down_from_root(&mut self, entry: Entry<E>) {
        let count = self.count;
        let heap = self.heap.as_mut_slice();
        let mut hole = 0usize;
        loop {
            let first = ARITY * hole + 1;
            // A group holding an entry: its smallest is an entry (padding compares last).
            if first >= count {
                break;
            }
            let kids: &[Entry<E>; ARITY] = heap[first..first + ARITY].try_into().expect("groups are padded");
            let (k0, k1, k2, k3) = (kids[0].key(), kids[1].key(), kids[2].key(), kids[3].key());
            let (i01, m01) = if k1 < k0 { (1, k1) } else { (0, k0) };
            let (i23, m23) = if k3 < k2 { (3, k3) } else { (2, k2) };
            let child = first + if m23 < m01 { i23 } else { i01 };
            heap[hole] = heap[child];
            hole = child;
        }
        self.sift_up(hole, entry);
    }

    /// Writes `entry` into the hole at `hole`, moving it up past larger parents first.
    #[inline]
    fn sift_up(&mut self, mut hole: usize, entry: Entry<E>) {
        let heap = self.heap.as_mut_slice();
        let key = entry.key();
        while hole > 0 {
            let parent = (hole - 1) / ARITY;
            if key >= heap[parent].key() {
                break;
            }
            heap[hole] = heap[parent];
            hole = parent;
        }
        heap[hole] = entry;
    }

    /// Renumbers the pending entries' sequence numbers 0, 1, 2, … in `(time, seq)` order,
    /// so that the counter can go on from their count. The order is kept, so the heap stays
    /// valid.
    #[cold]
    fn renumber(&mut self) {
        self.settle_root();
        let mut order: Vec<usize> = (0..self.count).collect();
        order.sort_unstable_by_key(|&i| self.heap[i].key());
        for (seq, &i) in order.iter().enumerate() {
            self.heap[i].seq = u32::try_from(seq).expect("fewer than 2^32 pending events");
        }
        self.seq_next = u32::try_from(order.len()).expect("fewer than 2^32 pending events");
        assert!(self.seq_next < self.seq_limit, "more pending events than sequence numbers");
    }
}

/// The storage for `count` entries: none, the root alone, or the root and whole groups of
/// `ARITY` children.
const fn padded_len(count: usize) -> usize {
    if count == 0 { 0 } else { 1 + ARITY * (count - 1).div_ceil(ARITY) }
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

    /// After each pop of a hold (pop, schedule a successor) and of a drain, the next event
    /// to pop is among `next_candidates`, and there are at most four of them.
    #[test]
    fn the_next_event_is_among_the_candidates() {
        let mut rng = RngStream::new(7, "next_candidates");
        let mut q = EventQueue::new();
        for i in 0..200u32 {
            q.schedule_at(SimTime::from_ps(rng.next_u64() % 10_000), i);
        }
        let check = |q: &mut EventQueue<u32>| {
            let candidates: Vec<(SimTime, u32)> = q.next_candidates().map(|(t, &e)| (t, e)).collect();
            assert!(candidates.len() <= ARITY);
            let next = q.clone().pop();
            assert!(next.is_none_or(|n| candidates.contains(&n)), "{next:?} not in {candidates:?}");
        };
        for i in 0..1_000u32 {
            q.pop();
            check(&mut q);
            let at = q.now() + SimDuration::from_ps(rng.next_u64() % 10_000);
            q.schedule_at(at, 1_000 + i);
            check(&mut q);
        }
        while q.pop().is_some() {
            check(&mut q);
        }
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
            let result = std::panic::catch_unwind(|| check_against_reference(seed, u32::MAX, 5));
            if result.is_err() {
                panic!("event queue diverged from the reference; replay with SEED={seed}");
            }
        }
    }

    /// The same property when the 32-bit sequence counter wraps every few hundred
    /// schedules (the renumbering of the pending entries), with ties common.
    #[test]
    fn matches_reference_across_sequence_renumbering() {
        for seed in 0..200 {
            let result = std::panic::catch_unwind(|| check_against_reference(seed, 97, 4));
            if result.is_err() {
                panic!("event queue diverged from the reference across a renumbering; seed {seed}");
            }
        }
    }

    /// Renumbering keeps the order of equal times scheduled on either side of it.
    #[test]
    fn equal_times_keep_schedule_order_across_a_renumbering() {
        let mut q = EventQueue::new();
        q.seq_limit = 12;
        // Sequence numbers 0..5 at time 7, then 5..12 scheduled and run at time 1.
        for i in 0..5 {
            q.schedule_at(SimTime::from_ps(7), i);
        }
        for i in 0..7 {
            q.schedule_at(SimTime::from_ps(1), 100 + i);
            assert_eq!(q.pop(), Some((SimTime::from_ps(1), 100 + i)));
        }
        // The next schedule renumbers the five pending entries 0..5 and takes 5.
        for i in 5..10 {
            q.schedule_at(SimTime::from_ps(7), i);
        }
        assert_eq!(q.seq_next, 10);
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    /// Random schedules (`schedule_in_10` out of 10 operations), pops and bounded pops
    /// against the reference, the sequence counter renumbered at `seq_limit`.
    fn check_against_reference(seed: u64, seq_limit: u32, schedule_in_10: u64) {
        let mut rng = RngStream::new(seed, "queue-property-test");
        let mut q: EventQueue<u64> = EventQueue::new();
        q.seq_limit = seq_limit;
        let mut reference: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut seq = 0u64;
        let ops = 200 + rng.below(800);
        // Small time ranges make ties (the FIFO rule) common.
        let spread = 1 + rng.below(50);
        for _ in 0..ops {
            let op = rng.below(10);
            if op < schedule_in_10 {
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
            // The storage: the entries, then padding to the end of the last group.
            assert_eq!(q.heap.len(), padded_len(q.count));
            assert!(q.heap[q.count..].iter().all(|e| (e.time, e.seq) == (u64::MAX, u32::MAX)));
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
