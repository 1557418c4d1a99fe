//! ITS commands as values, and the command queue as a resource over simulated time.
//!
//! Linux's `its_send_single_command` takes the ITS lock, allocates a slot for the command
//! (polling while the ring is full), allocates a slot for the SYNC that follows it, writes
//! `GITS_CWRITER`, drops the lock and polls `GITS_CREADR` until the ITS has consumed both.
//! The ITS executes commands in ring order, one at a time.

use std::collections::VecDeque;

use sim::{SimDuration, SimTime};

use super::{CollectionId, EventId, ItsDeviceId, Lpi, VintId, VpeId};
use crate::ids::CpuId;

/// One ITS command, as the value Linux builds into a 32-byte `its_cmd_block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItsCommand {
    /// MAPD: map a DeviceID to an ITT of `itt_entries` entries (or unmap it).
    Mapd {
        /// The device.
        device: ItsDeviceId,
        /// ITT entries (a power of two).
        itt_entries: u32,
        /// Map (true) or unmap.
        valid: bool,
    },
    /// MAPC: map a collection to a redistributor (a CPU), or unmap it.
    Mapc {
        /// The collection.
        collection: CollectionId,
        /// The target CPU's redistributor.
        target: CpuId,
        /// Map (true) or unmap.
        valid: bool,
    },
    /// MAPTI: map (DeviceID, EventID) to a physical LPI in a collection.
    Mapti {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
        /// The LPI.
        lpi: Lpi,
        /// The collection.
        collection: CollectionId,
    },
    /// MOVI: move an event's LPI to another collection.
    Movi {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
        /// The new collection.
        collection: CollectionId,
    },
    /// INV: make the redistributor re-read the event's LPI configuration.
    Inv {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// DISCARD: remove the event's mapping (and any pending state).
    Discard {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// CLEAR: clear the pending state of the event's LPI.
    Clear {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
    },
    /// INVALL: re-read the configuration of every LPI in a collection.
    Invall {
        /// The collection.
        collection: CollectionId,
    },
    /// SYNC: wait until the effects of earlier commands are visible at a redistributor.
    Sync {
        /// The collection whose redistributor is synchronised.
        collection: CollectionId,
    },
    /// VMAPP: map a vPE to a redistributor (or unmap it).
    Vmapp {
        /// The vPE.
        vpe: VpeId,
        /// The redistributor's CPU.
        target: CpuId,
        /// Map (true) or unmap.
        valid: bool,
    },
    /// VMAPTI: map (DeviceID, EventID) to a vLPI of a vPE, with an optional per-vLPI doorbell
    /// (GICv4.0; Linux passes 1023, "no doorbell", on GICv4.1).
    Vmapti {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
        /// The vPE.
        vpe: VpeId,
        /// The virtual INTID.
        vintid: VintId,
        /// The doorbell LPI (`None` is 1023).
        doorbell: Option<Lpi>,
    },
    /// VMOVI: move a vLPI to another vPE and/or change its doorbell.
    Vmovi {
        /// The device.
        device: ItsDeviceId,
        /// The event.
        event: EventId,
        /// The (new) vPE.
        vpe: VpeId,
        /// The doorbell LPI (`None` is 1023).
        doorbell: Option<Lpi>,
    },
    /// VMOVP: retarget a vPE to another redistributor.
    Vmovp {
        /// The vPE.
        vpe: VpeId,
        /// The new redistributor's CPU.
        target: CpuId,
    },
    /// VINVALL: re-read the configuration of every vLPI of a vPE.
    Vinvall {
        /// The vPE.
        vpe: VpeId,
    },
    /// INVDB (GICv4.1): re-read the configuration of a vPE's doorbell.
    Invdb {
        /// The vPE.
        vpe: VpeId,
    },
    /// VSYNC: SYNC for a vPE.
    Vsync {
        /// The vPE.
        vpe: VpeId,
    },
}

impl ItsCommand {
    /// True for SYNC and VSYNC.
    pub fn is_sync(&self) -> bool {
        matches!(self, ItsCommand::Sync { .. } | ItsCommand::Vsync { .. })
    }
}

/// How a submission ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Every command completed and the caller saw it.
    Completed,
    /// The caller stopped polling before its commands completed (they still run).
    QueueTimeout,
    /// The ring stayed full for the whole poll budget: a command was dropped.
    QueueNotDraining,
}

impl CommandOutcome {
    /// The kernel's message for this outcome (`pr_err_ratelimited`).
    pub fn kernel_message(self) -> Option<&'static str> {
        match self {
            CommandOutcome::Completed => None,
            CommandOutcome::QueueTimeout => Some("ITS queue timeout (%llu %llu)"),
            CommandOutcome::QueueNotDraining => Some("ITS queue not draining"),
        }
    }
}

/// What one submission (one or more synchronous round trips) cost the submitting CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandTiming {
    /// When the caller started.
    pub submitted: SimTime,
    /// Time spent waiting for the ITS lock and for free queue slots, over all round trips.
    pub queue_wait: SimDuration,
    /// When the caller returns: completion observed by polling, or the give-up time.
    pub done: SimTime,
    /// Synchronous round trips (one per command, as `its_send_single_command`).
    pub round_trips: u32,
    /// Queue slots written, SYNC/VSYNC included.
    pub slots_used: u32,
    /// Direct redistributor invalidations (no queue involved).
    pub direct_invalidations: u32,
    /// Round trips that ended in "ITS queue timeout".
    pub timeouts: u32,
    /// Commands dropped after "ITS queue not draining".
    pub dropped: u32,
}

impl CommandTiming {
    /// A submission that issued nothing.
    pub fn none(now: SimTime) -> CommandTiming {
        CommandTiming {
            submitted: now,
            queue_wait: SimDuration::ZERO,
            done: now,
            round_trips: 0,
            slots_used: 0,
            direct_invalidations: 0,
            timeouts: 0,
            dropped: 0,
        }
    }

    /// From start to return.
    pub fn latency(&self) -> SimDuration {
        self.done.since(self.submitted)
    }

    /// The worst outcome of the round trips.
    pub fn outcome(&self) -> CommandOutcome {
        if self.dropped > 0 {
            CommandOutcome::QueueNotDraining
        } else if self.timeouts > 0 {
            CommandOutcome::QueueTimeout
        } else {
            CommandOutcome::Completed
        }
    }
}

/// Totals over the life of a command queue, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandQueueStats {
    /// Synchronous round trips.
    pub round_trips: u64,
    /// Commands posted, SYNC/VSYNC excluded.
    pub commands: u64,
    /// SYNC/VSYNC posted.
    pub syncs: u64,
    /// Slot allocations that had to poll for a free slot.
    pub slot_waits: u64,
    /// Sum of lock and slot waits.
    pub total_queue_wait: SimDuration,
    /// Longest lock and slot wait of one round trip.
    pub max_queue_wait: SimDuration,
    /// Longest round trip (start to return).
    pub max_round_trip: SimDuration,
    /// Round trips that ended in "ITS queue timeout".
    pub timeouts: u64,
    /// Commands dropped after "ITS queue not draining".
    pub dropped: u64,
    /// SYNCs skipped because no slot freed up (the kernel then posts the command alone).
    pub syncs_skipped: u64,
    /// Most slots outstanding at once (posted or written, not yet consumed by the ITS).
    pub high_water: u32,
    /// Direct redistributor invalidations (`GICR_INVLPIR`/`GICR_CLRLPIR` + `GICR_SYNCR`).
    pub direct_invalidations: u64,
}

/// One round trip's result, before aggregation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoundTrip {
    pub done: SimTime,
    pub queue_wait: SimDuration,
    pub slots: u32,
    pub outcome: CommandOutcome,
}

/// The ring, the ITS's execution timeline and the ITS lock.
#[derive(Clone, Debug)]
pub(crate) struct CommandQueue {
    slots: u32,
    cmd_cost: SimDuration,
    sync_cost: SimDuration,
    poll: SimDuration,
    poll_count: u32,
    /// Completion times of posted commands not yet known to be consumed, oldest first.
    inflight: VecDeque<SimTime>,
    /// When the ITS finishes everything posted so far.
    busy_until: SimTime,
    /// When the ITS lock is next free.
    lock_free_at: SimTime,
    pub stats: CommandQueueStats,
}

impl CommandQueue {
    pub fn new(slots: u32, cmd_cost: SimDuration, sync_cost: SimDuration, poll: SimDuration, poll_count: u32) -> Self {
        assert!(slots >= 3 && poll > SimDuration::ZERO && poll_count > 0, "parameters not validated");
        CommandQueue {
            slots,
            cmd_cost,
            sync_cost,
            poll,
            poll_count,
            inflight: VecDeque::new(),
            busy_until: SimTime::ZERO,
            lock_free_at: SimTime::ZERO,
            stats: CommandQueueStats::default(),
        }
    }

    /// Everything posted so far has been consumed and the lock is free, as of `at`: the
    /// platform's setup (boot, device and VM creation) happened before the measured run.
    pub fn settle(&mut self, at: SimTime) {
        self.inflight.clear();
        self.busy_until = at;
        self.lock_free_at = at;
    }

    /// Linux's polling loop: reads at `start + i * poll` for i in 0..poll_count. `Ok` with the
    /// first read at or after `ready`, or `Err` with the time of the last read.
    fn poll_until(&self, start: SimTime, ready: SimTime) -> Result<SimTime, SimTime> {
        let poll = self.poll.as_ps();
        let reads = if ready <= start { 0 } else { ready.since(start).as_ps().div_ceil(poll) };
        if reads < u64::from(self.poll_count) {
            Ok(start + SimDuration::from_ps(reads * poll))
        } else {
            Err(start + SimDuration::from_ps((u64::from(self.poll_count) - 1) * poll))
        }
    }

    /// Forgets commands the ITS has consumed by `t`.
    fn retire(&mut self, t: SimTime) {
        while self.inflight.front().is_some_and(|&f| f <= t) {
            self.inflight.pop_front();
        }
    }

    /// `its_allocate_entry` at `t` with `unposted` slots already written but not posted.
    fn alloc_slot(&mut self, t: SimTime, unposted: usize) -> Result<SimTime, SimTime> {
        self.retire(t);
        // One slot always stays empty: at most slots - 1 outstanding.
        let cap = self.slots as usize - 1;
        let mut at = t;
        if self.inflight.len() + unposted + 1 > cap {
            let allowed_unfinished = cap - unposted - 1;
            let must_finish = self.inflight.len() - allowed_unfinished - 1;
            let ready = self.inflight[must_finish];
            at = self.poll_until(t, ready)?;
            self.retire(at);
            self.stats.slot_waits += 1;
        }
        let outstanding = (self.inflight.len() + unposted + 1) as u32;
        self.stats.high_water = self.stats.high_water.max(outstanding);
        Ok(at)
    }

    /// One `its_send_single_command` starting at `t`: a command, then a SYNC if `with_sync`.
    pub fn round_trip(&mut self, t: SimTime, with_sync: bool) -> RoundTrip {
        let start = t.max(self.lock_free_at);
        let t_cmd = match self.alloc_slot(start, 0) {
            Ok(at) => at,
            Err(gave_up) => {
                // "ITS queue not draining": the lock is dropped and the command is lost.
                self.lock_free_at = gave_up;
                self.stats.dropped += 1;
                return self.finish(t, gave_up, gave_up, 0, CommandOutcome::QueueNotDraining);
            }
        };
        let (t_post, sync) = if with_sync {
            match self.alloc_slot(t_cmd, 1) {
                Ok(at) => (at, true),
                Err(gave_up) => {
                    // The kernel posts the command without its SYNC ("goto post").
                    self.stats.syncs_skipped += 1;
                    (gave_up, false)
                }
            }
        } else {
            (t_cmd, false)
        };
        let mut costs = vec![self.cmd_cost];
        if sync {
            costs.push(self.sync_cost);
        }
        for cost in &costs {
            let begin = t_post.max(self.busy_until);
            self.busy_until = begin + *cost;
            self.inflight.push_back(self.busy_until);
        }
        self.stats.commands += 1;
        self.stats.syncs += u64::from(sync);
        self.lock_free_at = t_post;
        let slots = costs.len() as u32;
        match self.poll_until(t_post, self.busy_until) {
            Ok(seen) => self.finish(t, t_post, seen, slots, CommandOutcome::Completed),
            Err(gave_up) => {
                self.stats.timeouts += 1;
                self.finish(t, t_post, gave_up, slots, CommandOutcome::QueueTimeout)
            }
        }
    }

    fn finish(&mut self, t: SimTime, posted: SimTime, done: SimTime, slots: u32, outcome: CommandOutcome) -> RoundTrip {
        let queue_wait = posted.since(t);
        self.stats.round_trips += 1;
        // A statistic summed over every command ever issued: with thousands of setup commands
        // queued at once and second-long costs it can pass u64 picoseconds, so it saturates.
        self.stats.total_queue_wait =
            SimDuration::from_ps(self.stats.total_queue_wait.as_ps().saturating_add(queue_wait.as_ps()));
        self.stats.max_queue_wait = self.stats.max_queue_wait.max(queue_wait);
        self.stats.max_round_trip = self.stats.max_round_trip.max(done.since(t));
        RoundTrip { done, queue_wait, slots, outcome }
    }

    /// Panics if the timeline is inconsistent.
    pub fn check_invariants(&self) {
        let mut prev = SimTime::ZERO;
        for &f in &self.inflight {
            assert!(f >= prev, "ITS completion times out of order");
            prev = f;
        }
        assert!(self.inflight.len() < self.slots as usize, "more commands outstanding than slots");
        if let Some(&last) = self.inflight.back() {
            assert_eq!(last, self.busy_until, "last in-flight command does not end the ITS timeline");
        }
    }
}
