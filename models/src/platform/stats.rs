//! What the kernel would have counted per CPU by the end of a run: handler runs per
//! interrupt and CPU (the numbers of `/proc/interrupts`) and each delivered interrupt's
//! end-to-end latency by the CPU that handled it (the numbers of an rtla `timerlat hist`).
//!
//! # What is modelled
//! - **Handler runs, not raises.** The kernel counts an interrupt once per flow-handler
//!   call (`handle_edge_irq` → `kstat_incr_irqs_this_cpu`), so raises merged into one LAPIC
//!   IRR bit and served by one handler run count once, and a raise merged into a pending
//!   bit (MSI-X PBA, PIR) adds nothing to the run already due (docs/sources.md#proc-interrupts).
//!   A run is counted when it
//!   *completes* (the kernel counts it on entry): a run still in service at the end of the
//!   run is not counted, so the counts sum exactly to the handler runs that finished.
//! - Runs are counted for the queue whose interrupt the handler served (the owner of a
//!   shared vector) and the CPU it ran on: host CPUs for the host's handlers (the driver's,
//!   or VFIO's forward of a guest interrupt), and separately the vCPU for a guest's handler.
//! - **Latency** is counted per delivered interrupt (raise to EOI done, what
//!   `latency.end_to_end_ps` records), in whole microseconds as rtla prints them (each
//!   value truncated, then bucketed, summed and compared), on the host CPU whose handler
//!   delivered it; an interrupt a guest handled counts on the pCPU its vCPU runs on.
//!
//! # What is not modelled (and why)
//! The kernel's per-CPU counters are `unsigned int` and wrap; these are `u64`.
//!
//! # Memory
//! An interrupt's CPU rarely changes (a move, a hotplug), so each keeps one (CPU, count)
//! pair and the rare earlier CPUs (and runs past what the pair holds on one CPU) go to a
//! side map: O(queues + CPUs), no queue × CPU matrix. A host handler run on events counts
//! in a 4-byte pair ([`LineRuns`]) in the queue's own cache line (`devices::Queue`, which
//! the interrupt's raise and handler have just read: at a million queues a separate record
//! was a cache miss per run), and so does a run on Lindley's recursion; the guests'
//! handlers count in [`RunCounts`]' own 8-byte pairs, allocated at their first run. A
//! queue's runs are the sum of the three (line, own pair, side map).
//! The latency histograms are one fixed array of [`LATENCY_BUCKETS`] counts per CPU, with
//! the count, sum, least and most of the longer latencies.

use std::collections::BTreeMap;

use super::devices::Devices;
use crate::ids::QueueId;

/// One-microsecond latency buckets per CPU; longer latencies count in the `over` bucket
/// (rtla's default is 256 entries; the report prints at most this many rows).
pub(super) const LATENCY_BUCKETS: usize = 64;

/// No run yet.
const NO_CPU: u32 = u32::MAX;

/// A key's latest CPU and its runs there, for the keys whose runs [`RunCounts`] keeps itself
/// (the guests' handler runs, by vCPU): one 8-byte record. Runs past `u32::MAX` on one CPU go to
/// the side map.
#[derive(Debug, Clone, Copy)]
struct Latest {
    /// Runs of the key on `cpu` not in the side map.
    count: u32,
    /// The CPU of the key's latest run (`NO_CPU`: none yet).
    cpu: u32,
}

/// A queue's latest host CPU and its runs there, in the queue's cache line: 4 bytes, so
/// that it fits there (`devices::Queue`). No run yet while the count is 0. Runs past
/// `u16::MAX` on one CPU, and runs on a CPU above `u16::MAX` (none: at most 65,536 CPUs), go
/// to [`RunCounts`]' side map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LineRuns {
    count: u16,
    cpu: u16,
}

impl LineRuns {
    /// No run yet.
    pub const NONE: LineRuns = LineRuns { count: 0, cpu: 0 };

    /// The CPU and its runs, `None` before the first run.
    fn latest(self) -> Option<(u32, u64)> {
        (self.count > 0).then_some((u32::from(self.cpu), u64::from(self.count)))
    }
}

/// Handler runs per key (an interrupt: a queue id) and CPU.
#[derive(Debug, Clone)]
pub(super) struct RunCounts {
    /// Each key's latest CPU and its runs there, for the runs counted by [`RunCounts::record`]
    /// (empty until its first call: the host's runs, on events and on Lindley's recursion,
    /// count in the queues' lines).
    latest: Vec<Latest>,
    /// Keys are below this.
    keys: usize,
    /// Runs of a key on the CPUs it ran on before its latest one, by (key, CPU), and on its
    /// latest CPU those beyond what its record holds.
    earlier: BTreeMap<(u32, u32), u64>,
    /// CPU ids are below this.
    cpus: usize,
}

/// A key's pair (its latest CPU and runs there) moves to `cpu`: the pair's runs `previous`
/// go to the side map `earlier` and `cpu`'s runs come back from it with this one, unless
/// they are more than the pair holds (`max`: they then stay in the map). Returns the pair's
/// new count.
fn rehome(earlier: &mut BTreeMap<(u32, u32), u64>, key: u32, previous: Option<(u32, u64)>, cpu: u32, max: u64) -> u64 {
    if let Some((last, count)) = previous {
        *earlier.entry((key, last)).or_insert(0) += count;
    }
    let runs = 1 + earlier.remove(&(key, cpu)).unwrap_or(0);
    if runs <= max {
        runs
    } else {
        earlier.insert((key, cpu), runs - 1);
        1
    }
}

impl RunCounts {
    /// No runs yet, for keys `0..keys` on CPUs `0..cpus`.
    pub fn new(keys: usize, cpus: usize) -> RunCounts {
        RunCounts { latest: Vec::new(), keys, earlier: BTreeMap::new(), cpus }
    }

    /// One handler run of `key` finished on `cpu`, counted in this record's own pairs.
    #[inline]
    pub fn record(&mut self, key: u32, cpu: u32) {
        let k = key as usize;
        if self.latest.is_empty() {
            self.latest = vec![Latest { count: 0, cpu: NO_CPU }; self.keys];
        }
        let latest = &mut self.latest[k];
        if latest.cpu == cpu && latest.count < u32::MAX {
            latest.count += 1;
        } else {
            self.moved(k, cpu);
        }
    }

    /// One handler run of `key` finished on `cpu`, counted in `line`, the pair in the key's
    /// queue line.
    #[inline]
    pub fn record_in(&mut self, line: &mut LineRuns, key: u32, cpu: u32) {
        if line.count > 0 && u32::from(line.cpu) == cpu && line.count < u16::MAX {
            line.count += 1;
        } else {
            self.moved_line(line, key, cpu);
        }
    }

    /// `key` runs on a CPU other than its line's latest (or its line is full or empty): as
    /// [`RunCounts::moved`], for the line's pair.
    #[cold]
    fn moved_line(&mut self, line: &mut LineRuns, key: u32, cpu: u32) {
        let Ok(cpu16) = u16::try_from(cpu) else {
            *self.earlier.entry((key, cpu)).or_insert(0) += 1;
            return;
        };
        let count = rehome(&mut self.earlier, key, line.latest(), cpu, u64::from(u16::MAX));
        *line = LineRuns { count: count as u16, cpu: cpu16 };
    }

    /// `key` runs on a CPU other than its latest (or its record is full): the latest's count
    /// goes to the side map and the new CPU's count (if it ran there before) comes back from
    /// it, unless that is more than the record holds (it then stays in the map).
    #[cold]
    fn moved(&mut self, k: usize, cpu: u32) {
        let previous = self.own(k as u32);
        let count = rehome(&mut self.earlier, k as u32, previous, cpu, u64::from(u32::MAX));
        self.latest[k] = Latest { count: count as u32, cpu };
    }

    /// The key's own latest pair, if it has one.
    fn own(&self, key: u32) -> Option<(u32, u64)> {
        let Latest { count, cpu } = *self.latest.get(key as usize)?;
        (cpu != NO_CPU).then_some((cpu, u64::from(count)))
    }

    /// Runs of `key` on every CPU it ran on, ascending by CPU; `line` is its queue line's
    /// pair ([`LineRuns::NONE`] where it has none).
    pub fn of(&self, key: u32, line: LineRuns) -> Vec<(u32, u64)> {
        let mut out: Vec<(u32, u64)> =
            self.earlier.range((key, 0)..=(key, u32::MAX)).map(|(&(_, cpu), &n)| (cpu, n)).collect();
        for (cpu, count) in [self.own(key), line.latest()].into_iter().flatten() {
            let at = out.partition_point(|&(c, _)| c < cpu);
            match out.get_mut(at) {
                Some((c, n)) if *c == cpu => *n += count,
                _ => out.insert(at, (cpu, count)),
            }
        }
        out
    }

    /// Runs of `key`, all CPUs (`line` as for [`RunCounts::of`]).
    pub fn total(&self, key: u32, line: LineRuns) -> u64 {
        let earlier: u64 = self.earlier.range((key, 0)..=(key, u32::MAX)).map(|(_, &n)| n).sum();
        [self.own(key), line.latest()].into_iter().flatten().map(|(_, n)| n).sum::<u64>() + earlier
    }

    /// Runs on each CPU, all keys, with the queue lines' pairs `lines` (summed when asked:
    /// O(keys), off the hot path).
    pub fn per_cpu(&self, lines: impl Iterator<Item = LineRuns>) -> Vec<u64> {
        let mut out = vec![0; self.cpus];
        let own = self.latest.iter().filter(|l| l.cpu != NO_CPU).map(|l| (l.cpu, u64::from(l.count)));
        for (cpu, count) in own.chain(lines.filter_map(LineRuns::latest)) {
            out[cpu as usize] += count;
        }
        for (&(_, cpu), &n) in &self.earlier {
            out[cpu as usize] += n;
        }
        out
    }
}

/// One CPU's latency histogram, in whole microseconds. A value below [`LATENCY_BUCKETS`] is
/// its bucket's index, so the sum, least and most come from the buckets; only the values
/// of the `over` bucket are kept apart (rare, off the hot path). Aligned to a cache line,
/// so that its first line holds the 0–7 µs buckets, where an interrupt of a few
/// microseconds counts, and one prefetch ([`IrqStats::prefetch_latency`]) brings them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
pub(super) struct CpuLatency {
    /// Interrupts per 1 µs bucket.
    pub buckets: [u64; LATENCY_BUCKETS],
    /// Interrupts of [`LATENCY_BUCKETS`] µs and more.
    pub over: u64,
    /// The sum, least and most of the `over` values.
    over_sum_us: u64,
    over_min_us: u64,
    over_max_us: u64,
}

impl CpuLatency {
    /// No samples.
    pub const EMPTY: CpuLatency =
        CpuLatency { buckets: [0; LATENCY_BUCKETS], over: 0, over_sum_us: 0, over_min_us: u64::MAX, over_max_us: 0 };

    /// Counts one interrupt of `us` whole microseconds.
    #[inline]
    pub fn add(&mut self, us: u64) {
        if us < LATENCY_BUCKETS as u64 {
            self.buckets[us as usize] += 1;
        } else {
            self.add_over(us);
        }
    }

    #[cold]
    fn add_over(&mut self, us: u64) {
        self.over += 1;
        self.over_sum_us += us;
        self.over_min_us = self.over_min_us.min(us);
        self.over_max_us = self.over_max_us.max(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &CpuLatency) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.over += other.over;
        self.over_sum_us += other.over_sum_us;
        self.over_min_us = self.over_min_us.min(other.over_min_us);
        self.over_max_us = self.over_max_us.max(other.over_max_us);
    }

    /// Interrupts counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum::<u64>() + self.over
    }

    /// The sum of their microseconds.
    pub fn sum_us(&self) -> u64 {
        self.buckets.iter().enumerate().map(|(us, &n)| us as u64 * n).sum::<u64>() + self.over_sum_us
    }

    /// The least (`None` without samples).
    pub fn min_us(&self) -> Option<u64> {
        match self.buckets.iter().position(|&n| n > 0) {
            Some(us) => Some(us as u64),
            None => (self.over > 0).then_some(self.over_min_us),
        }
    }

    /// The most (`None` without samples).
    pub fn max_us(&self) -> Option<u64> {
        if self.over > 0 {
            return Some(self.over_max_us);
        }
        self.buckets.iter().rposition(|&n| n > 0).map(|us| us as u64)
    }
}

/// Everything counted per CPU during the run.
#[derive(Debug, Clone)]
pub(super) struct IrqStats {
    /// Host handler runs by queue and host CPU.
    pub host: RunCounts,
    /// Guest handler runs by queue and vCPU (`None` without guests).
    pub guest: Option<RunCounts>,
    /// End-to-end latency by host CPU.
    latency: Vec<CpuLatency>,
    /// The queues whose interrupt was requested at setup (a working interrupt: the kernel
    /// shows its line even while its counts are zero), one bit each.
    requested: Vec<u64>,
}

impl IrqStats {
    /// Nothing counted, for `queues` queues on `cpus` host CPUs and `vcpus` vCPUs.
    pub fn new(queues: usize, cpus: usize, vcpus: usize) -> IrqStats {
        IrqStats {
            host: RunCounts::new(queues, cpus),
            guest: (vcpus > 0).then(|| RunCounts::new(queues, vcpus)),
            latency: vec![CpuLatency::EMPTY; cpus],
            requested: vec![0; queues.div_ceil(64)],
        }
    }

    /// The interrupt of `queue` works at the end of setup.
    pub fn set_requested(&mut self, queue: u32) {
        self.requested[queue as usize / 64] |= 1 << (queue % 64);
    }

    /// Whether the interrupt of `queue` worked at the end of setup.
    pub fn requested(&self, queue: u32) -> bool {
        self.requested[queue as usize / 64] & (1 << (queue % 64)) != 0
    }

    /// `queue`'s host handler ran once more on `cpu`: counted in the queue's line in
    /// `devices`, as every host run is (on events and on Lindley's recursion).
    #[inline(always)]
    pub fn host_ran(&mut self, devices: &mut Devices, queue: QueueId, cpu: u32) {
        self.host.record_in(devices.runs_mut(queue), queue.0, cpu);
    }

    /// An interrupt was delivered `latency_ps` after its raise by a handler on host CPU `cpu`
    /// (or on a vCPU running there).
    #[inline]
    pub fn delivered(&mut self, cpu: u32, latency_ps: u64) {
        self.latency[cpu as usize].add(latency_ps / 1_000_000);
    }

    /// Prefetches the first line of `cpu`'s latency histogram (buckets 0–7 µs), which
    /// [`IrqStats::delivered`] is about to count in.
    #[inline(always)]
    pub fn prefetch_latency(&self, cpu: u32) {
        prefetch_index::prefetch_index(&self.latency, cpu as usize);
    }

    /// The latency histogram of each host CPU.
    pub fn latency(&self) -> &[CpuLatency] {
        &self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_an_interrupt_across_cpus_without_a_matrix() {
        let mut runs = RunCounts::new(3, 4);
        for cpu in [2, 2, 1, 1, 1, 2, 3, 2] {
            runs.record(0, cpu);
        }
        runs.record(2, 0);
        let none = LineRuns::NONE;
        assert_eq!(runs.of(0, none), [(1, 3), (2, 4), (3, 1)]);
        assert_eq!((runs.total(0, none), runs.total(1, none), runs.total(2, none)), (8, 0, 1));
        assert_eq!(runs.of(1, none), []);
        assert_eq!(runs.per_cpu(std::iter::empty()), [1, 3, 4, 1]);
        // Only the CPUs queue 0 left are in the side map: (0, 1) and (0, 3).
        assert_eq!(runs.earlier.len(), 2);
    }

    #[test]
    fn runs_past_what_a_record_holds_go_to_the_side_map() {
        let mut runs = RunCounts::new(1, 2);
        runs.record(0, 1);
        // Two runs short of full: u32::MAX − 2 + 2 = u32::MAX runs fit in the record.
        runs.latest[0].count = u32::MAX - 2;
        runs.record(0, 1);
        runs.record(0, 1);
        assert_eq!((runs.latest[0].count, runs.earlier.len()), (u32::MAX, 0));
        // The next run spills the full record into the side map and counts on from 1.
        runs.record(0, 1);
        let max = u64::from(u32::MAX);
        assert_eq!((runs.latest[0].count, runs.earlier.get(&(0, 1)).copied()), (1, Some(max)));
        let none = LineRuns::NONE;
        assert_eq!(
            (runs.of(0, none), runs.total(0, none), runs.per_cpu(std::iter::empty())),
            (vec![(1, max + 1)], max + 1, vec![0, max + 1])
        );
        // Away to CPU 0 and back: CPU 1's max + 1 runs do not fit the record, so they stay
        // in the map and the record counts the new run.
        runs.record(0, 0);
        runs.record(0, 1);
        assert_eq!(runs.latest[0].count, 1);
        assert_eq!(runs.of(0, none), [(0, 1), (1, max + 2)]);
        assert_eq!((runs.total(0, none), runs.per_cpu(std::iter::empty())), (max + 3, vec![1, max + 2]));
    }

    #[test]
    fn runs_in_a_queue_line_add_to_the_records_own() {
        let mut runs = RunCounts::new(2, 4);
        let mut line = LineRuns::NONE;
        // Key 0 on events: 2, 2, 1, 2 (its line), and twice on CPU 2 through the record's
        // own pairs (as a guest's runs count).
        for cpu in [2, 2, 1, 2] {
            runs.record_in(&mut line, 0, cpu);
        }
        runs.record(0, 2);
        runs.record(0, 2);
        // The line took CPU 2's first two runs back from the map when the key came back to
        // CPU 2 (3 there); CPU 1's run is in the map; the own pair counts its two.
        assert_eq!(line, LineRuns { count: 3, cpu: 2 });
        assert_eq!(runs.earlier.iter().map(|(&k, &n)| (k, n)).collect::<Vec<_>>(), [((0, 1), 1)]);
        assert_eq!(runs.of(0, line), [(1, 1), (2, 5)]);
        assert_eq!((runs.total(0, line), runs.total(1, LineRuns::NONE)), (6, 0));
        assert_eq!(runs.per_cpu([line, LineRuns::NONE].into_iter()), [0, 1, 5, 0]);
        // Full: u16::MAX runs fit in the line; the next spills them into the map.
        let mut full = LineRuns { count: u16::MAX - 1, cpu: 3 };
        runs.record_in(&mut full, 1, 3);
        assert_eq!((full.count, runs.earlier.get(&(1, 3))), (u16::MAX, None));
        runs.record_in(&mut full, 1, 3);
        assert_eq!((full, runs.earlier.get(&(1, 3)).copied()), (LineRuns { count: 1, cpu: 3 }, Some(65_535)));
        assert_eq!(runs.of(1, full), [(3, 65_536)]);
        // A CPU id beyond 16 bits counts in the map alone.
        let mut big = LineRuns::NONE;
        let mut wide = RunCounts::new(1, 70_000);
        wide.record_in(&mut big, 0, 69_999);
        assert_eq!((big, wide.of(0, big)), (LineRuns::NONE, vec![(69_999, 1)]));
    }

    #[test]
    fn latency_is_bucketed_in_truncated_microseconds() {
        let mut stats = IrqStats::new(1, 2, 0);
        for ps in [999_999, 1_000_000, 2_500_000, 64_000_000, 1_000_000_000] {
            stats.delivered(1, ps);
        }
        let h = stats.latency()[1];
        assert_eq!((h.buckets[0], h.buckets[1], h.buckets[2], h.over), (1, 1, 1, 2));
        assert_eq!((h.count(), h.min_us(), h.max_us(), h.sum_us()), (5, Some(0), Some(1000), 1067));
        let empty = stats.latency()[0];
        assert_eq!((empty.count(), empty.min_us(), empty.max_us(), empty.sum_us()), (0, None, None, 0));
        // Only over-bucket values: the least and most come from them.
        let mut slow = CpuLatency::EMPTY;
        slow.add(70);
        slow.add(65);
        assert_eq!((slow.min_us(), slow.max_us(), slow.sum_us()), (Some(65), Some(70), 135));
        let mut merged = h;
        merged.merge(&slow);
        assert_eq!((merged.count(), merged.min_us(), merged.max_us(), merged.sum_us()), (7, Some(0), Some(1000), 1202));
    }
}
