//! Tests of the remapping unit: every fault reason and the checks behind it (reserved fields,
//! compatibility format, FPD), the cache serving an entry until its invalidation completes,
//! the FIFO global lock under updates, posted writes, allocations and frees, and random
//! operation sequences against a reference.

use sim::RngStream;

use super::*;
use crate::ids::Vector;
use crate::iommu::remap::testutil::*;
use crate::iommu::remap::{PiDescId, SourceQualifier};

#[test]
fn every_fault_reason_blocks_and_is_recorded() {
    let mut p = params();
    p.table_entries = 16;
    let mut u = unit_with_entries(p, 4);
    let cases: Vec<(RemapRequest, RemapFault)> = vec![
        (
            RemapRequest {
                requester_id: 0x100,
                message: InterruptMessage::Remappable { handle: 0, subhandle: None, reserved_bits_set: true },
                pasid: None,
            },
            RemapFault::ReservedFieldsInRequest,
        ),
        (RemapRequest::remappable(0x100, 15, Some(1)), RemapFault::IndexBeyondTable),
        (RemapRequest::remappable(0x100, 3, Some(1)), RemapFault::EntryNotPresent),
        (RemapRequest::compatibility(0x100, 1, Vector(0x30)), RemapFault::CompatBlocked),
    ];
    let table = u.table_mut(IO);
    table.set_access_error(1, true);
    let rsvd = IrteEntry { reserved_bits_set: true, ..IrteEntry::remapped(CpuId(0), Vector(0x40)) };
    table.set_entry(2, rsvd).unwrap();
    let sid = SourceValidation::RequesterId { sid: 0x0300, sq: SourceQualifier::All16 };
    table.set_entry(3, IrteEntry::remapped(CpuId(0), Vector(0x43)).with_source(sid)).unwrap();
    let mut cases = cases;
    cases.push((RemapRequest::remappable(0x100, 1, None), RemapFault::TableAccessError));
    cases.push((RemapRequest::remappable(0x100, 2, None), RemapFault::ReservedFieldsInIrte));
    cases.push((RemapRequest::remappable(0x100, 3, None), RemapFault::SourceIdVerification));
    for (k, (request, fault)) in cases.iter().enumerate() {
        let t = u.translate(ns(k as u64), IO, request);
        assert_eq!(t.result, Err(*fault), "case {k}");
        let raise = k == 0;
        assert_eq!(t.fault, Some(FaultDisposition::Recorded { raise_fault_event: raise }), "case {k}");
    }
    let c = u.counters();
    assert_eq!(c.blocked, [1; 7]);
    assert_eq!((c.recorded, c.requests), (7, 7));
    let reasons: Vec<u8> = u.fault_registers(IO).registers()[..7].iter().map(|r| r.unwrap().reason.code()).collect();
    assert_eq!(reasons, [0x20, 0x21, 0x22, 0x25, 0x23, 0x24, 0x26]);
    // The right requester passes source verification.
    let ok = u.translate(ns(100), IO, &RemapRequest::remappable(0x0300, 3, None));
    assert_eq!(ok.result, Ok(RemapTarget::Remapped { dest: CpuId(0), vector: Vector(0x43) }));
    u.check_invariants().unwrap();
}

#[test]
fn other_reserved_field_conditions() {
    // SVT=3, a posted entry without CAP.PI, a destination above 255 in xAPIC mode.
    let mut p = params();
    p.posting_supported = false;
    p.x2apic_mode = false;
    let mut u = unit_with_entries(p, 3);
    let t = u.table_mut(IO);
    t.set_entry(0, IrteEntry::remapped(CpuId(1), Vector(0x40)).with_source(SourceValidation::Reserved)).unwrap();
    t.set_entry(1, IrteEntry::posted(PiDescId(9), Vector(0x41), true)).unwrap();
    t.set_entry(2, IrteEntry::remapped(CpuId(256), Vector(0x42))).unwrap();
    for h in 0..3 {
        let r = u.translate(ns(h.into()), IO, &RemapRequest::remappable(0, h, None));
        assert_eq!(fault_of(&r), RemapFault::ReservedFieldsInIrte, "handle {h}");
        // Entries with reserved-field errors are not cached.
        assert!(!u.cache(IO).contains(u32::from(h)));
    }
    // With posting and x2APIC the last two are fine.
    let mut u = unit_with_entries(params(), 3);
    u.table_mut(IO).set_entry(1, IrteEntry::posted(PiDescId(9), Vector(0x41), true)).unwrap();
    u.table_mut(IO).set_entry(2, IrteEntry::remapped(CpuId(256), Vector(0x42))).unwrap();
    let posted = u.translate(ns(0), IO, &RemapRequest::remappable(0, 1, None));
    let expected = RemapTarget::Posted { descriptor: PiDescId(9), vector: Vector(0x41), urgent: true };
    assert_eq!(posted.result, Ok(expected));
    let far = u.translate(ns(1), IO, &RemapRequest::remappable(0, 2, None));
    assert!(far.result.is_ok());
    // The subhandle is added to the handle.
    let sub = u.translate(ns(2), IO, &RemapRequest::remappable(0, 0, Some(1)));
    assert_eq!(sub.result, Ok(expected));
}

#[test]
fn compatibility_format_passes_only_with_cfi_in_xapic_mode() {
    let request = RemapRequest::compatibility(0, 7, Vector(0x33));
    for (cfi, x2apic, passes) in [(false, false, false), (false, true, false), (true, true, false), (true, false, true)]
    {
        let mut p = params();
        p.compat_format_allowed = cfi;
        p.x2apic_mode = x2apic;
        let mut u = unit(p);
        let r = u.translate(ns(0), IO, &request);
        let want = if passes {
            Ok(RemapTarget::Compatibility { dest: CpuId(7), vector: Vector(0x33) })
        } else {
            Err(RemapFault::CompatBlocked)
        };
        assert_eq!(r.result, want, "cfi {cfi} x2apic {x2apic}");
    }
}

#[test]
fn fpd_stops_recording_but_still_blocks() {
    let mut u = unit_with_entries(params(), 3);
    let t = u.table_mut(IO);
    let sid = SourceValidation::RequesterId { sid: 0x0100, sq: SourceQualifier::All16 };
    t.set_entry(0, IrteEntry { present: false, ..IrteEntry::NOT_PRESENT }.with_fpd(true)).unwrap();
    t.set_entry(1, IrteEntry { reserved_bits_set: true, ..IrteEntry::remapped(CpuId(0), Vector(0x40)) }.with_fpd(true))
        .unwrap();
    t.set_entry(2, IrteEntry::remapped(CpuId(0), Vector(0x40)).with_source(sid).with_fpd(true)).unwrap();
    let want = [RemapFault::EntryNotPresent, RemapFault::ReservedFieldsInIrte, RemapFault::SourceIdVerification];
    for (h, fault) in want.iter().enumerate() {
        let r = u.translate(ns(h as u64), IO, &RemapRequest::remappable(0x0200, h as u16, None));
        assert_eq!(r.result, Err(*fault));
        assert_eq!(r.fault, Some(FaultDisposition::NotRecordedFpd));
    }
    // FPD does not cover faults found before the entry is read.
    let beyond = u.translate(ns(9), IO, &RemapRequest::remappable(0x0200, u16::MAX, Some(1)));
    assert_eq!(fault_of(&beyond), RemapFault::IndexBeyondTable);
    assert!(matches!(beyond.fault, Some(FaultDisposition::Recorded { .. })));
    let c = u.counters();
    assert_eq!((c.fpd_unrecorded, c.recorded, c.blocked_total()), (3, 1, 4));
    assert_eq!(u.fault_registers(IO).pending(), 1);
}

#[test]
fn pasid_checking_blocks_another_pasids_entry_of_the_same_requester_id() {
    // Two ADIs of requester id 0x0100 (PASIDs 1 and 2), one IRTE each with the full-RID
    // source check. ADI 1's write naming ADI 2's entry passes the RID check: without PASID
    // checking it is delivered there (what VT-d does); with it, it is blocked as 0x26,
    // while each ADI's own entry still delivers, and a write without a PASID (the PF) is
    // blocked on either entry.
    for checking in [false, true] {
        let mut p = params();
        p.pasid_checking = checking;
        let mut u = unit_with_entries(p, 2);
        let sid = SourceValidation::RequesterId { sid: 0x0100, sq: SourceQualifier::All16 };
        for (i, pasid) in [(0u32, 1u32), (1, 2)] {
            let entry = IrteEntry::remapped(CpuId(i), Vector(0x40 + i as u8)).with_source(sid).with_pasid(Some(pasid));
            u.table_mut(IO).set_entry(i, entry).unwrap();
        }
        let req = |handle: u16, pasid: Option<u32>| RemapRequest::remappable(0x0100, handle, None).with_pasid(pasid);
        let own = u.translate(ns(1), IO, &req(0, Some(1)));
        assert_eq!(own.result, Ok(RemapTarget::Remapped { dest: CpuId(0), vector: Vector(0x40) }));
        let other = u.translate(ns(2), IO, &req(1, Some(1)));
        let pf = u.translate(ns(3), IO, &req(1, None));
        if checking {
            assert_eq!(
                (fault_of(&other), fault_of(&pf)),
                (RemapFault::SourceIdVerification, RemapFault::SourceIdVerification)
            );
        } else {
            let target = Ok(RemapTarget::Remapped { dest: CpuId(1), vector: Vector(0x41) });
            assert_eq!((other.result, pf.result), (target, target));
        }
    }
}

#[test]
fn cached_entry_stays_until_the_invalidation_completes() {
    let p = params();
    let mut u = unit_with_entries(p, 1);
    let request = RemapRequest::remappable(0, 0, None);
    let old = Ok(RemapTarget::Remapped { dest: CpuId(0), vector: Vector(0x40) });
    let new = Ok(RemapTarget::Remapped { dest: CpuId(5), vector: Vector(0x60) });
    assert_eq!(u.translate(ns(0), IO, &request).result, old);
    let timing = u.request_update(ns(10), IO, 0, IrteEntry::remapped(CpuId(5), Vector(0x60))).unwrap();
    let written = timing.start + p.irte_write;
    assert_eq!(timing.done, written + p.iec_invalidation);
    // After the write lands the cache still serves the old entry...
    let stale = u.translate(written, IO, &request);
    assert_eq!((stale.result, stale.cache), (old, CacheOutcome::Hit));
    // ...until the IEC invalidation completes.
    let fresh = u.translate(timing.done, IO, &request);
    assert_eq!((fresh.result, fresh.cache), (new, CacheOutcome::Miss));

    // Without a cached copy, a miss before the write lands reads the old entry.
    let mut u = unit_with_entries(p, 1);
    let timing = u.request_update(ns(10), IO, 0, IrteEntry::remapped(CpuId(5), Vector(0x60))).unwrap();
    let before = u.translate(timing.start + (p.irte_write - SimDuration::from_ps(1)), IO, &request);
    assert_eq!((before.result, before.cache), (old, CacheOutcome::Miss));
    u.invalidate_iec(timing.start + p.irte_write, IO, IecScope::Global);
    assert_eq!(u.translate(timing.start + p.irte_write, IO, &request).result, new);
    u.check_invariants().unwrap();
}

#[test]
fn simultaneous_updates_queue_fifo_on_the_global_lock() {
    // N updates at the same instant: the k-th waits k*c and finishes at t0 + (k+1)*c with
    // c = write + IEC invalidation; total wait c * N(N-1)/2, longest (N-1)*c.
    let mut p = params();
    p.iommu_count = 2;
    let mut u = unit_with_entries(p, 8);
    u.table_mut(IommuId(1)).alloc_block(8).unwrap();
    let c = p.irte_write + p.iec_invalidation;
    let t0 = ns(1_000);
    let n = 8u64;
    for k in 0..n {
        // Alternate IOMMUs: the lock is global, not per IOMMU.
        let io = IommuId((k % 2) as u16);
        let timing = u.request_update(t0, io, k as u32, IrteEntry::remapped(CpuId(1), Vector(0x70))).unwrap();
        let kc = SimDuration::from_ps(c.as_ps() * k);
        assert_eq!(timing.lock_wait, kc, "update {k}");
        assert_eq!(timing.start, t0 + kc);
        assert_eq!(timing.done, t0 + kc + c);
    }
    let s = u.lock_stats();
    assert_eq!((s.acquisitions, s.updates, s.contended), (n, n, n - 1));
    assert_eq!(s.total_wait, SimDuration::from_ps(c.as_ps() * n * (n - 1) / 2));
    assert_eq!(s.max_wait, SimDuration::from_ps(c.as_ps() * (n - 1)));
    assert_eq!(s.busy, SimDuration::from_ps(c.as_ps() * n));
    assert_eq!(u.lock_idle_at(), t0 + SimDuration::from_ps(c.as_ps() * n));
    // Once the lock is idle an update does not wait.
    let later = u.lock_idle_at() + SimDuration::from_ns(1);
    let timing = u.request_update(later, IO, 0, IrteEntry::NOT_PRESENT).unwrap();
    assert_eq!((timing.lock_wait, timing.start), (SimDuration::ZERO, later));
    // Updates to unallocated or out-of-range entries are refused without taking the lock.
    assert_eq!(u.request_update(later, IO, 9, IrteEntry::NOT_PRESENT), Err(IrteOpError::NotAllocated { index: 9 }));
    assert_eq!(
        u.request_update(later, IO, 1 << 16, IrteEntry::NOT_PRESENT),
        Err(IrteOpError::IndexBeyondTable { index: 1 << 16 })
    );
    assert_eq!(u.lock_stats().acquisitions, n + 1);
    u.check_invariants().unwrap();
}

#[test]
fn posted_writes_use_the_cmpxchg16b_cost() {
    let p = params();
    let mut u = unit_with_entries(p, 1);
    let remapped = IrteEntry::remapped(CpuId(2), Vector(0x41));
    let posted = IrteEntry::posted(PiDescId(3), Vector(0x51), false);
    // Old entry remapped (written directly): remapped -> posted is a posted write, and so
    // are posted -> posted and posted -> remapped (the old entry, still only scheduled,
    // is posted); remapped -> remapped is a plain write.
    let steps = [
        (posted, p.irte_write_posted),
        (posted, p.irte_write_posted),
        (remapped, p.irte_write_posted),
        (remapped, p.irte_write),
    ];
    for (k, (entry, write)) in steps.into_iter().enumerate() {
        let timing = u.request_update(ns(0), IO, 0, entry).unwrap();
        assert_eq!(timing.done, timing.start + write + p.iec_invalidation, "step {k}");
    }
    u.advance_to(u.lock_idle_at());
    assert_eq!(u.table(IO).entry(0), Some(remapped));
    u.check_invariants().unwrap();
}

#[test]
fn alloc_and_free_hold_the_lock_too() {
    let p = params();
    let mut u = unit(p);
    let a = u.alloc_block(ns(0), IO, 4);
    let block = IrteBlock { base: 0, mask: 2 };
    assert_eq!(a.result, Ok(block));
    assert_eq!(a.timing.unwrap().done, ns(0) + p.irte_alloc);
    // Refused before taking the lock.
    assert_eq!(u.alloc_block(ns(0), IO, 0).timing, None);
    assert_eq!(u.alloc_block(ns(0), IO, 64).result, Err(IrteAllocError::MaskTooLarge { mask: 6, max: 5 }));
    for i in 0..4 {
        u.request_update(ns(0), IO, i, IrteEntry::remapped(CpuId(i), Vector(0x40))).unwrap();
    }
    let idle = u.lock_idle_at();
    assert_eq!(idle, ns(50) + SimDuration::from_ps((p.irte_write + p.iec_invalidation).as_ps() * 4));
    assert!(u.translate(idle, IO, &RemapRequest::remappable(0, 1, None)).result.is_ok());
    // Freeing 4 entries: 4 writes then a masked invalidation.
    let timing = u.free_block(idle, IO, block).unwrap();
    let writes = SimDuration::from_ps(p.irte_write.as_ps() * 4);
    assert_eq!(timing.done, idle + writes + p.iec_invalidation);
    assert_eq!(u.table(IO).used(), 0);
    // Entry 1 is still cached until the invalidation and present until the writes land.
    let r = u.translate(idle + writes, IO, &RemapRequest::remappable(0, 1, None));
    assert_eq!(r.cache, CacheOutcome::Hit);
    assert_eq!(u.table(IO).entry(1), Some(IrteEntry::NOT_PRESENT));
    let r = u.translate(timing.done, IO, &RemapRequest::remappable(0, 1, None));
    assert_eq!((fault_of(&r), r.cache), (RemapFault::EntryNotPresent, CacheOutcome::Miss));
    assert_eq!(u.free_block(timing.done, IO, block), Err(IrteOpError::NotABlock { block }));
    let s = u.lock_stats();
    assert_eq!((s.allocs, s.updates, s.frees), (1, 4, 1));
    u.check_invariants().unwrap();
}

// -----------------------------------------------------------------------------------------
// Randomised operation sequences against a reference
// -----------------------------------------------------------------------------------------

/// The reference: allocated blocks in a map, entries as last written.
#[derive(Debug, Default)]
struct Reference {
    blocks: BTreeMap<u32, u8>,
    entries: BTreeMap<u32, IrteEntry>,
}

impl Reference {
    fn overlaps(&self, base: u32, size: u32) -> bool {
        // Blocks are disjoint: only the last one starting before the end can overlap.
        self.blocks.range(..base + size).next_back().is_some_and(|(&b, &m)| b + (1 << m) > base)
    }

    fn alloc(&self, cap: u32, mhmv: u8, count: u32) -> Result<IrteBlock, IrteAllocError> {
        if count == 0 {
            return Err(IrteAllocError::ZeroCount);
        }
        let mut mask = 0u32;
        while (1u64 << mask) < u64::from(count) {
            mask += 1;
        }
        if mask > u32::from(mhmv) {
            return Err(IrteAllocError::MaskTooLarge { mask, max: mhmv });
        }
        let size = 1 << mask;
        let mut base = 0;
        while base + size <= cap {
            if !self.overlaps(base, size) {
                return Ok(IrteBlock { base, mask: mask as u8 });
            }
            base += size;
        }
        Err(IrteAllocError::Full)
    }

    fn block_of(&self, index: u32) -> Option<IrteBlock> {
        self.blocks
            .range(..=index)
            .next_back()
            .map(|(&base, &mask)| IrteBlock { base, mask })
            .filter(|b| b.contains(index))
    }
}

fn random_entry(rng: &mut RngStream) -> IrteEntry {
    let vector = Vector(rng.below(256) as u8);
    let entry = if rng.below(3) == 0 {
        IrteEntry::posted(PiDescId(rng.below(100) as u32), vector, rng.below(2) == 1)
    } else {
        IrteEntry::remapped(CpuId(rng.below(64) as u32), vector)
    };
    let entry = entry.with_fpd(rng.below(4) == 0);
    IrteEntry { present: rng.below(8) != 0, ..entry }
}

/// Mostly an index inside an allocated block, sometimes any index (including beyond).
fn pick_index(rng: &mut RngStream, r: &Reference, cap: u32) -> u32 {
    if r.blocks.is_empty() || rng.below(4) == 0 {
        return rng.below(u64::from(cap) + 4) as u32;
    }
    let k = rng.below(r.blocks.len() as u64) as usize;
    let (&base, &mask) = r.blocks.iter().nth(k).expect("k < len");
    base + rng.below(1 << mask) as u32
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// How often the interesting outcomes happened in one run (to show the test bites).
#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    allocs_ok: u32,
    allocs_refused: u32,
    frees: u32,
    updates: u32,
    quiescent_checks: u32,
}

// Long (123 lines): one match arm per operation, each checked against the reference, then the tables compared.
fn run_random(seed: u64) -> Result<Coverage, String> {
    let mut cov = Coverage::default();
    let mut rng = RngStream::new(seed, "remap/random_ops");
    let mut p = params();
    p.iommu_count = 2;
    p.table_entries = [64, 256, 1000, 1024][rng.below(4) as usize];
    p.max_handle_mask = rng.below(7) as u8;
    p.fault_recording_registers = 1 + rng.below(6) as u16;
    p.iec_entries = rng.below(9) as u32;
    p.collapse_same_source = rng.below(2) == 1;
    let (cap, mhmv) = (p.table_entries, p.max_handle_mask);
    let mut u = RemapUnit::new(p).map_err(|e| e.to_string())?;
    let mut refs = [Reference::default(), Reference::default()];
    let mut now = SimTime::ZERO;
    for step in 0..300 {
        let gap = if rng.below(10) == 0 { 50_000 } else { rng.below(3_000) };
        now += SimDuration::from_ns(gap);
        let which = rng.below(2) as usize;
        let io = IommuId(which as u16);
        let r = &mut refs[which];
        let op = rng.below(100);
        match op {
            0..35 => {
                let count = match rng.below(4) {
                    0 => rng.below(3) as u32,
                    1 => 1 + rng.below(1 << (mhmv + 1)) as u32,
                    _ => 1 + rng.below(8) as u32,
                };
                let want = r.alloc(cap, mhmv, count);
                let got = u.alloc_block(now, io, count).result;
                ensure!(got == want, "step {step}: alloc {count}: got {got:?}, want {want:?}");
                match got {
                    Ok(b) => {
                        r.blocks.insert(b.base, b.mask);
                        cov.allocs_ok += 1;
                    }
                    Err(_) => cov.allocs_refused += 1,
                }
            }
            35..55 if !r.blocks.is_empty() => {
                let k = rng.below(r.blocks.len() as u64) as usize;
                let (&base, &mask) = r.blocks.iter().nth(k).expect("k < len");
                let block = IrteBlock { base, mask };
                let got = u.free_block(now, io, block);
                ensure!(got.is_ok(), "step {step}: free {block:?}: {got:?}");
                r.blocks.remove(&base);
                for i in base..base + block.count() {
                    r.entries.remove(&i);
                }
                cov.frees += 1;
            }
            35..60 => {
                let block = IrteBlock { base: rng.below(u64::from(cap) + 4) as u32, mask: rng.below(4) as u8 };
                let valid = r.blocks.get(&block.base) == Some(&block.mask);
                let got = u.free_block(now, io, block);
                ensure!(got.is_ok() == valid, "step {step}: free {block:?}: {got:?}, valid {valid}");
                if valid {
                    r.blocks.remove(&block.base);
                    for i in block.base..block.base + block.count() {
                        r.entries.remove(&i);
                    }
                }
            }
            60..80 => {
                let index = pick_index(&mut rng, r, cap);
                let entry = random_entry(&mut rng);
                let want = if index >= cap {
                    Err(IrteOpError::IndexBeyondTable { index })
                } else if r.block_of(index).is_none() {
                    Err(IrteOpError::NotAllocated { index })
                } else {
                    Ok(())
                };
                let got = u.request_update(now, io, index, entry).map(|_| ());
                ensure!(got == want, "step {step}: update {index}: got {got:?}, want {want:?}");
                if got.is_ok() {
                    r.entries.insert(index, entry);
                    cov.updates += 1;
                }
            }
            80..95 => {
                let index = pick_index(&mut rng, r, cap);
                let handle = index.min(u32::from(u16::MAX)) as u16;
                let t = u.translate(now, io, &RemapRequest::remappable(0, handle, None));
                if index >= cap {
                    ensure!(t.result == Err(RemapFault::IndexBeyondTable), "step {step}: {t:?}");
                } else if now >= u.lock_idle_at() {
                    // Quiescent: every write and invalidation has landed.
                    cov.quiescent_checks += 1;
                    let entry = r.entries.get(&index).copied().unwrap_or(IrteEntry::NOT_PRESENT);
                    let want = match (entry.present, entry.mode) {
                        (false, _) => Err(RemapFault::EntryNotPresent),
                        (true, IrteMode::Remapped { dest, vector }) => Ok(RemapTarget::Remapped { dest, vector }),
                        (true, IrteMode::Posted { descriptor, vector, urgent }) => {
                            Ok(RemapTarget::Posted { descriptor, vector, urgent })
                        }
                    };
                    ensure!(t.result == want, "step {step}: index {index}: got {t:?}, want {want:?}");
                    if t.result.is_err() && entry.fpd {
                        ensure!(t.fault == Some(FaultDisposition::NotRecordedFpd), "step {step}: {t:?}");
                    }
                }
            }
            95..98 => {
                u.service_faults(now, io);
                ensure!(!u.fault_registers(io).ppf(), "step {step}: faults left after service");
            }
            _ => {
                u.invalidate_iec(now, io, IecScope::Global);
            }
        }
        u.check_invariants().map_err(|e| format!("step {step} (op {op}): {e}"))?;
        for (k, r) in refs.iter().enumerate() {
            let table = u.table(IommuId(k as u16));
            let got: Vec<IrteBlock> = table.blocks().collect();
            let want: Vec<IrteBlock> = r.blocks.iter().map(|(&base, &mask)| IrteBlock { base, mask }).collect();
            ensure!(got == want, "step {step}: iommu {k} blocks {got:?}, want {want:?}");
            let used: u32 = want.iter().map(|b| b.count()).sum();
            ensure!(table.used() == used, "step {step}: used {} want {used}", table.used());
        }
    }
    Ok(cov)
}

#[test]
fn random_operation_sequences_match_the_reference() {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(s) => vec![s.parse().expect("SEED must be an unsigned integer")],
        Err(_) => (0..24).collect(),
    };
    let mut total = Coverage::default();
    for seed in seeds {
        eprintln!("random remap operations, seed {seed}");
        match run_random(seed) {
            Ok(c) => {
                total.allocs_ok += c.allocs_ok;
                total.allocs_refused += c.allocs_refused;
                total.frees += c.frees;
                total.updates += c.updates;
                total.quiescent_checks += c.quiescent_checks;
            }
            Err(e) => panic!("seed {seed}: {e}\nreplay: SEED={seed} cargo test random_operation_sequences"),
        }
    }
    eprintln!("coverage: {total:?}");
    let c = total;
    assert!(c.allocs_ok > 0 && c.allocs_refused > 0 && c.frees > 0 && c.updates > 0 && c.quiescent_checks > 0);
}
