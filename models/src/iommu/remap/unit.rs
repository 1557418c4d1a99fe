//! The remapping unit ([`RemapUnit`]): one table, cache and set of fault registers per IOMMU
//! ([`IommuId`]), the hardware lookup of a request (`translate`: decode, cache, table read,
//! present, reserved fields and source-id checks, fault recording), the timed IRTE updates,
//! allocations and frees on the global `irq_2_ir_lock`, and the fault handler. Its tests are
//! in `unit/tests.rs`.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use sim::{SimDuration, SimTime};

use super::cache::{IecScope, InterruptEntryCache};
use super::faults::{FaultRecord, FaultRecordingRegisters, KernelRateLimit, RecordOutcome, RemapFault, ServiceReport};
use super::irte::{IrteEntry, IrteMode, SourceValidation};
use super::params::{InvalidRemapParams, RemapParams};
use super::request::{InterruptMessage, RemapRequest, RemapTarget, irte_index};
use super::table::{IrteAllocError, IrteBlock, IrteOpError, IrteTable};
use crate::ids::CpuId;

/// One IOMMU (DMAR hardware unit) of a [`RemapUnit`], numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IommuId(pub u16);

/// When one holder of `irq_2_ir_lock` waited, got it and let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateTiming {
    /// Time spent queued behind earlier holders.
    pub lock_wait: SimDuration,
    /// When the lock was taken.
    pub start: SimTime,
    /// When the operation finished and the lock was released.
    pub done: SimTime,
}

/// Contention totals of `irq_2_ir_lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockStats {
    /// Times the lock was taken.
    pub acquisitions: u64,
    /// Of which IRTE updates (`modify_irte`).
    pub updates: u64,
    /// Of which allocations (`alloc_irte`).
    pub allocs: u64,
    /// Of which frees (`clear_entries`).
    pub frees: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Sum of all waits.
    pub total_wait: SimDuration,
    /// Longest wait.
    pub max_wait: SimDuration,
    /// Sum of all hold times.
    pub busy: SimDuration,
}

/// Request and fault counts of a [`RemapUnit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemapCounters {
    /// Requests looked up.
    pub requests: u64,
    /// Requests remapped to a CPU.
    pub remapped: u64,
    /// Requests posted.
    pub posted: u64,
    /// Compatibility-format requests let through.
    pub compat_passed: u64,
    /// Requests blocked, by reason (index = code − 0x20).
    pub blocked: [u64; 7],
    /// Faults stored in a fault recording register.
    pub recorded: u64,
    /// Faults not recorded because the IRTE had FPD set.
    pub fpd_unrecorded: u64,
    /// Faults not recorded because a record from the same requester was pending.
    pub collapsed: u64,
    /// Faults lost to a full set of registers (PFO).
    pub overflow_lost: u64,
    /// Fault handler runs.
    pub services: u64,
    /// Records the handler cleared.
    pub drained: u64,
    /// "handling fault status reg" lines printed.
    pub logged_status: u64,
    /// Fault record lines printed.
    pub logged_records: u64,
    /// Rate-limited calls (the kernel's "callbacks suppressed" total).
    pub suppressed: u64,
    /// "N callbacks suppressed" lines printed.
    pub suppression_reports: u64,
}

impl RemapCounters {
    /// Lines the fault handler printed (status and records).
    pub fn logged(&self) -> u64 {
        self.logged_status + self.logged_records
    }

    /// Requests blocked for any reason.
    pub fn blocked_total(&self) -> u64 {
        self.blocked.iter().sum()
    }
}

/// Whether a lookup used the interrupt entry cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The entry came from the cache.
    Hit,
    /// The entry was read from the table.
    Miss,
    /// The request was decided before any entry was needed.
    NotLooked,
}

/// What became of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDisposition {
    /// Stored in a fault recording register.
    Recorded {
        /// Raise the IOMMU's fault event: schedule [`RemapUnit::service_faults`].
        raise_fault_event: bool,
    },
    /// Not recorded: FPD was set in the IRTE.
    NotRecordedFpd,
    /// Not recorded: collapsed into a pending record of the same requester.
    Collapsed,
    /// Lost: no free fault recording register (PFO).
    LostOverflow,
}

/// The result of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Where the interrupt goes, or why it was blocked.
    pub result: Result<RemapTarget, RemapFault>,
    /// Time the lookup took.
    pub latency: SimDuration,
    /// Whether the cache served it.
    pub cache: CacheOutcome,
    /// For a blocked request, whether its fault was recorded.
    pub fault: Option<FaultDisposition>,
}

/// The result of a timed allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocOutcome {
    /// The block, or why there is none.
    pub result: Result<IrteBlock, IrteAllocError>,
    /// The lock hold, absent when the request was refused before taking it (zero count, mask
    /// above MHMV).
    pub timing: Option<UpdateTiming>,
}

#[derive(Debug, Clone)]
struct Iommu {
    table: IrteTable,
    cache: InterruptEntryCache,
    faults: FaultRecordingRegisters,
}

#[derive(Debug, Clone, Copy)]
enum Effect {
    Write { index: u32, entry: IrteEntry, seq: u64 },
    Clear { block: IrteBlock, seq: u64 },
    Invalidate(IecScope),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    at: SimTime,
    iommu: usize,
    effect: Effect,
}

/// The system's interrupt-remapping hardware and the Linux driver state around it: one table,
/// cache and set of fault registers per IOMMU, the global update lock and the fault handler's
/// rate limit.
///
/// Every method taking `now` requires `now` to be no earlier than the previous call's, and an
/// [`IommuId`] below `iommu_count`; otherwise it panics (a caller bug).
#[derive(Debug, Clone)]
pub struct RemapUnit {
    params: RemapParams,
    iommus: Vec<Iommu>,
    lock_free_at: SimTime,
    lock: LockStats,
    ratelimit: KernelRateLimit,
    pending: VecDeque<Pending>,
    /// Latest scheduled, not yet landed, write per (iommu, index): the entry the next
    /// `modify_irte` will find.
    scheduled: BTreeMap<(usize, u32), (u64, IrteEntry)>,
    seq: u64,
    counters: RemapCounters,
    now: SimTime,
}

impl RemapUnit {
    /// A unit with empty tables and caches.
    pub fn new(params: RemapParams) -> Result<RemapUnit, InvalidRemapParams> {
        params.validate()?;
        let iommu = Iommu {
            table: IrteTable::with_max_handle_mask(params.table_entries, params.max_handle_mask),
            cache: InterruptEntryCache::new(params.iec_entries),
            faults: FaultRecordingRegisters::new(params.fault_recording_registers),
        };
        Ok(RemapUnit {
            params,
            iommus: vec![iommu; usize::from(params.iommu_count)],
            lock_free_at: SimTime::ZERO,
            lock: LockStats::default(),
            ratelimit: KernelRateLimit::new(params.ratelimit_interval, params.ratelimit_burst),
            pending: VecDeque::new(),
            scheduled: BTreeMap::new(),
            seq: 0,
            counters: RemapCounters::default(),
            now: SimTime::ZERO,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &RemapParams {
        &self.params
    }

    /// An IOMMU's table, as of the last call (writes land at their scheduled time).
    pub fn table(&self, iommu: IommuId) -> &IrteTable {
        &self.iommus[self.slot(iommu)].table
    }

    /// An IOMMU's table for untimed set-up. Writes made here skip the lock and do not
    /// invalidate the cache: call [`RemapUnit::invalidate_iec`] as software would.
    pub fn table_mut(&mut self, iommu: IommuId) -> &mut IrteTable {
        let i = self.slot(iommu);
        &mut self.iommus[i].table
    }

    /// An IOMMU's interrupt entry cache.
    pub fn cache(&self, iommu: IommuId) -> &InterruptEntryCache {
        &self.iommus[self.slot(iommu)].cache
    }

    /// An IOMMU's fault recording registers.
    pub fn fault_registers(&self, iommu: IommuId) -> &FaultRecordingRegisters {
        &self.iommus[self.slot(iommu)].faults
    }

    /// Request and fault counts.
    pub fn counters(&self) -> &RemapCounters {
        &self.counters
    }

    /// Contention totals of the update lock.
    pub fn lock_stats(&self) -> LockStats {
        self.lock
    }

    /// When the update lock becomes free (after every queued operation).
    pub fn lock_idle_at(&self) -> SimTime {
        self.lock_free_at
    }

    /// The fault handler's rate-limit state.
    pub fn ratelimit(&self) -> &KernelRateLimit {
        &self.ratelimit
    }

    /// Moves the unit's clock to `now`, landing scheduled writes and invalidations.
    pub fn advance_to(&mut self, now: SimTime) {
        assert!(now >= self.now, "time went backwards: {now} < {}", self.now);
        self.now = now;
        while self.pending.front().is_some_and(|p| p.at <= now) {
            let Some(p) = self.pending.pop_front() else { break };
            let iommu = &mut self.iommus[p.iommu];
            match p.effect {
                Effect::Write { index, entry, seq } => {
                    iommu.table.write_raw(index, entry);
                    if self.scheduled.get(&(p.iommu, index)).is_some_and(|(s, _)| *s == seq) {
                        self.scheduled.remove(&(p.iommu, index));
                    }
                }
                Effect::Clear { block, seq } => {
                    iommu.table.clear_entries(block);
                    for index in block.base..block.base + block.count() {
                        if self.scheduled.get(&(p.iommu, index)).is_some_and(|(s, _)| *s == seq) {
                            self.scheduled.remove(&(p.iommu, index));
                        }
                    }
                }
                Effect::Invalidate(scope) => {
                    iommu.cache.invalidate(scope);
                }
            }
        }
    }

    /// Allocates IRTEs for `count` vectors under the lock (`alloc_irte`). The entries stay not
    /// present until [`RemapUnit::request_update`] activates them.
    pub fn alloc_block(&mut self, now: SimTime, iommu: IommuId, count: u32) -> AllocOutcome {
        self.advance_to(now);
        let i = self.slot(iommu);
        let table = &self.iommus[i].table;
        let refused = match IrteTable::mask_for(count) {
            Err(e) => Some(e),
            Ok(mask) if mask > u32::from(table.max_handle_mask) => {
                Some(IrteAllocError::MaskTooLarge { mask, max: table.max_handle_mask })
            }
            Ok(_) => None,
        };
        if let Some(error) = refused {
            return AllocOutcome { result: Err(error), timing: None };
        }
        let timing = self.acquire(now, self.params.irte_alloc);
        self.lock.allocs += 1;
        let result = self.iommus[i].table.alloc_block(count);
        self.advance_to(now);
        AllocOutcome { result, timing: Some(timing) }
    }

    /// Frees a block under the lock (`clear_entries`): the entries are zeroed after one write
    /// per entry and the block's cached entries dropped by a masked IEC invalidation.
    pub fn free_block(&mut self, now: SimTime, iommu: IommuId, block: IrteBlock) -> Result<UpdateTiming, IrteOpError> {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].table.release_block(block)?;
        let writes = SimDuration::from_ps(
            self.params.irte_write.as_ps().checked_mul(u64::from(block.count())).expect("write time overflows"),
        );
        let timing = self.acquire(now, writes + self.params.iec_invalidation);
        self.lock.frees += 1;
        let seq = self.next_seq();
        for index in block.base..block.base + block.count() {
            self.scheduled.insert((i, index), (seq, IrteEntry::NOT_PRESENT));
        }
        self.schedule(timing.start + writes, i, Effect::Clear { block, seq });
        let scope = IecScope::Index { index: block.base, mask: block.mask };
        self.schedule(timing.done, i, Effect::Invalidate(scope));
        self.advance_to(now);
        Ok(timing)
    }

    /// `modify_irte`: queues for the lock, writes `entry` at `index` (lands at `start` plus the
    /// write time, the posted write if the entry there or the new one is posted), then
    /// invalidates the cached copy with `qi_flush_iec` (at `done`).
    pub fn request_update(
        &mut self,
        now: SimTime,
        iommu: IommuId,
        index: u32,
        entry: IrteEntry,
    ) -> Result<UpdateTiming, IrteOpError> {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].table.check_allocated(index)?;
        let old = match self.scheduled.get(&(i, index)) {
            Some((_, e)) => *e,
            None => self.iommus[i].table.read(index),
        };
        let write =
            if old.is_posted() || entry.is_posted() { self.params.irte_write_posted } else { self.params.irte_write };
        let timing = self.acquire(now, write + self.params.iec_invalidation);
        self.lock.updates += 1;
        let seq = self.next_seq();
        self.scheduled.insert((i, index), (seq, entry));
        self.schedule(timing.start + write, i, Effect::Write { index, entry, seq });
        self.schedule(timing.done, i, Effect::Invalidate(IecScope::Index { index, mask: 0 }));
        self.advance_to(now);
        Ok(timing)
    }

    /// Executes an IEC invalidation at once, outside the lock (e.g. the global flush when the
    /// table pointer is set); returns the entries dropped.
    pub fn invalidate_iec(&mut self, now: SimTime, iommu: IommuId, scope: IecScope) -> u32 {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.iommus[i].cache.invalidate(scope)
    }

    /// What the hardware does with `request` at `now`.
    // Long (78 lines): the lookup's checks in hardware order, each an early return; one body keeps that order.
    pub fn translate(&mut self, now: SimTime, iommu: IommuId, request: &RemapRequest) -> Translation {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.counters.requests += 1;
        let p = self.params;
        let rid = request.requester_id;
        let (handle, subhandle) = match request.message {
            InterruptMessage::Compatibility { dest_apic_id, vector } => {
                if p.compat_format_allowed && !p.x2apic_mode {
                    self.counters.compat_passed += 1;
                    return Translation {
                        result: Ok(RemapTarget::Compatibility { dest: CpuId(u32::from(dest_apic_id)), vector }),
                        latency: p.iec_hit_latency,
                        cache: CacheOutcome::NotLooked,
                        fault: None,
                    };
                }
                let fault = RemapFault::CompatBlocked;
                return self.block(i, now, fault, rid, 0, false, p.iec_hit_latency, CacheOutcome::NotLooked);
            }
            InterruptMessage::Remappable { handle, subhandle, reserved_bits_set } => {
                if reserved_bits_set {
                    let fault = RemapFault::ReservedFieldsInRequest;
                    let index = u32::from(handle);
                    return self.block(i, now, fault, rid, index, false, p.iec_hit_latency, CacheOutcome::NotLooked);
                }
                (handle, subhandle)
            }
        };
        let index = irte_index(handle, subhandle);
        let unit = &mut self.iommus[i];
        if index >= unit.table.capacity() {
            let fault = RemapFault::IndexBeyondTable;
            return self.block(i, now, fault, rid, index, false, p.iec_hit_latency, CacheOutcome::NotLooked);
        }
        let (entry, cache, latency) = match unit.cache.get(index) {
            Some(entry) => (entry, CacheOutcome::Hit, p.iec_hit_latency),
            None => {
                if unit.table.has_access_error(index) {
                    let fault = RemapFault::TableAccessError;
                    return self.block(i, now, fault, rid, index, false, p.iec_miss_latency, CacheOutcome::Miss);
                }
                (unit.table.read(index), CacheOutcome::Miss, p.iec_miss_latency)
            }
        };
        if !entry.present {
            let fault = RemapFault::EntryNotPresent;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        let reserved = entry.reserved_bits_set
            || entry.source == SourceValidation::Reserved
            || match entry.mode {
                IrteMode::Posted { .. } => !p.posting_supported,
                IrteMode::Remapped { dest, .. } => !p.x2apic_mode && dest.0 > 0xff,
            };
        if reserved {
            let fault = RemapFault::ReservedFieldsInIrte;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        if cache == CacheOutcome::Miss {
            unit.cache.insert(index, entry);
        }
        // Hypothetical PASID-granular checking extends the source check: the same fault.
        if !entry.source.accepts(rid) || (p.pasid_checking && entry.pasid != request.pasid) {
            let fault = RemapFault::SourceIdVerification;
            return self.block(i, now, fault, rid, index, entry.fpd, latency, cache);
        }
        let target = match entry.mode {
            IrteMode::Remapped { dest, vector } => {
                self.counters.remapped += 1;
                RemapTarget::Remapped { dest, vector }
            }
            IrteMode::Posted { descriptor, vector, urgent } => {
                self.counters.posted += 1;
                RemapTarget::Posted { descriptor, vector, urgent }
            }
        };
        Translation { result: Ok(target), latency, cache, fault: None }
    }

    /// The kernel's `dmar_fault()` for one IOMMU at `now`: drains every pending record,
    /// printing under the shared rate limit, and clears PFO.
    pub fn service_faults(&mut self, now: SimTime, iommu: IommuId) -> ServiceReport {
        self.advance_to(now);
        let i = self.slot(iommu);
        self.counters.services += 1;
        let mut report = ServiceReport::default();
        let faults = &mut self.iommus[i].faults;
        faults.event_pending = false;
        let mut ratelimit = |counters: &mut RemapCounters, report: &mut ServiceReport| {
            let d = self.ratelimit.check(now);
            if d.reported_suppressed.is_some() {
                counters.suppression_reports += 1;
            }
            if !d.allowed {
                counters.suppressed += 1;
                report.suppressed += 1;
            }
            d.allowed
        };
        if (faults.ppf() || faults.pfo()) && ratelimit(&mut self.counters, &mut report) {
            self.counters.logged_status += 1;
            report.status_logged = true;
        }
        let Some(mut index) = faults.fault_record_index() else {
            return report;
        };
        loop {
            let allowed = ratelimit(&mut self.counters, &mut report);
            let Some(record) = faults.take(index) else { break };
            if allowed {
                self.counters.logged_records += 1;
                report.records_logged += 1;
            }
            self.counters.drained += 1;
            report.records.push(record);
            index = (index + 1) % faults.count();
        }
        report.overflow_cleared = faults.pfo;
        faults.pfo = false;
        report
    }

    /// Checks every internal invariant; the random test calls it after each operation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut pending_records = 0u64;
        for (i, iommu) in self.iommus.iter().enumerate() {
            let at = |e: String| format!("iommu {i}: {e}");
            iommu.table.check_invariants().map_err(at)?;
            iommu.cache.check_invariants().map_err(at)?;
            iommu.faults.check_invariants().map_err(at)?;
            pending_records += iommu.faults.pending() as u64;
        }
        let c = &self.counters;
        if c.recorded != c.drained + pending_records {
            return Err(format!("recorded {} != drained {} + pending {pending_records}", c.recorded, c.drained));
        }
        if c.blocked_total() != c.recorded + c.fpd_unrecorded + c.collapsed + c.overflow_lost {
            return Err("blocked requests do not add up to fault dispositions".into());
        }
        if c.requests != c.remapped + c.posted + c.compat_passed + c.blocked_total() {
            return Err("requests do not add up to outcomes".into());
        }
        if c.suppressed != self.ratelimit.missed_total() || c.suppression_reports != self.ratelimit.reports() {
            return Err("rate-limit counters disagree".into());
        }
        let l = &self.lock;
        if l.acquisitions != l.updates + l.allocs + l.frees || l.max_wait > l.total_wait {
            return Err("lock statistics are inconsistent".into());
        }
        let mut last = self.now;
        for p in &self.pending {
            if p.at < last || p.at > self.lock_free_at {
                return Err(format!("pending effect at {} out of order", p.at));
            }
            last = p.at;
        }
        if self.pending.front().is_some_and(|p| p.at <= self.now) {
            return Err("a due effect was not applied".into());
        }
        Ok(())
    }

    fn slot(&self, iommu: IommuId) -> usize {
        let i = usize::from(iommu.0);
        assert!(i < self.iommus.len(), "no IOMMU {}", iommu.0);
        i
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn schedule(&mut self, at: SimTime, iommu: usize, effect: Effect) {
        self.pending.push_back(Pending { at, iommu, effect });
    }

    /// FIFO acquisition of `irq_2_ir_lock` for `hold`.
    fn acquire(&mut self, now: SimTime, hold: SimDuration) -> UpdateTiming {
        let start = now.max(self.lock_free_at);
        let lock_wait = start.since(now);
        let done = start + hold;
        self.lock_free_at = done;
        let l = &mut self.lock;
        l.acquisitions += 1;
        if lock_wait > SimDuration::ZERO {
            l.contended += 1;
        }
        l.total_wait = l.total_wait + lock_wait;
        l.max_wait = l.max_wait.max(lock_wait);
        l.busy = l.busy + hold;
        UpdateTiming { lock_wait, start, done }
    }

    /// Blocks a request with `fault`, recording it unless `fpd`.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        i: usize,
        now: SimTime,
        fault: RemapFault,
        source_id: u16,
        index: u32,
        fpd: bool,
        latency: SimDuration,
        cache: CacheOutcome,
    ) -> Translation {
        self.counters.blocked[fault.index()] += 1;
        let disposition = if fpd {
            self.counters.fpd_unrecorded += 1;
            FaultDisposition::NotRecordedFpd
        } else {
            let record = FaultRecord { reason: fault, source_id, index, at: now };
            match self.iommus[i].faults.record(record, self.params.collapse_same_source) {
                RecordOutcome::Recorded { raise_event } => {
                    self.counters.recorded += 1;
                    FaultDisposition::Recorded { raise_fault_event: raise_event }
                }
                RecordOutcome::Collapsed => {
                    self.counters.collapsed += 1;
                    FaultDisposition::Collapsed
                }
                RecordOutcome::Lost => {
                    self.counters.overflow_lost += 1;
                    FaultDisposition::LostOverflow
                }
            }
        };
        Translation { result: Err(fault), latency, cache, fault: Some(disposition) }
    }
}
