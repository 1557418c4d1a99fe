//! Faults: the interrupt-remapping fault reasons 0x20–0x26 ([`RemapFault`]), the fault
//! recording registers and their FSTS bits ([`FaultRecordingRegisters`]), the kernel's
//! `___ratelimit()` that limits the fault handler's log ([`KernelRateLimit`]), and what one
//! run of the handler did ([`ServiceReport`]).

use std::fmt;

use sim::{SimDuration, SimTime};

/// Most fault recording registers one IOMMU can have (CAP.NFR is 8 bits, plus one).
pub const FAULT_RECORDING_REGISTERS_MAX: u16 = 256;

/// Kernel log rate-limit burst (`DEFAULT_RATELIMIT_BURST`, include/linux/ratelimit_types.h).
pub const DEFAULT_RATELIMIT_BURST: u32 = 10;

/// Kernel log rate-limit interval (`DEFAULT_RATELIMIT_INTERVAL` = 5 * HZ).
pub const DEFAULT_RATELIMIT_INTERVAL: SimDuration = SimDuration::from_ms(5_000);

/// Why the remapping hardware blocked an interrupt request (VT-d fault reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemapFault {
    /// 0x20: reserved fields set in the remappable request.
    ReservedFieldsInRequest,
    /// 0x21: interrupt index exceeded the interrupt-remapping table size.
    IndexBeyondTable,
    /// 0x22: present bit in IRTE is clear.
    EntryNotPresent,
    /// 0x23: error reading the table that IRTA points to.
    TableAccessError,
    /// 0x24: reserved fields set in the IRTE.
    ReservedFieldsInIrte,
    /// 0x25: compatibility-format interrupt blocked.
    CompatBlocked,
    /// 0x26: source-id verification failed.
    SourceIdVerification,
}

impl RemapFault {
    /// Every fault reason, in code order.
    pub const ALL: [RemapFault; 7] = [
        RemapFault::ReservedFieldsInRequest,
        RemapFault::IndexBeyondTable,
        RemapFault::EntryNotPresent,
        RemapFault::TableAccessError,
        RemapFault::ReservedFieldsInIrte,
        RemapFault::CompatBlocked,
        RemapFault::SourceIdVerification,
    ];

    /// The VT-d fault reason code.
    pub fn code(self) -> u8 {
        0x20 + self.index() as u8
    }

    /// Position in [`RemapFault::ALL`] (code − 0x20), for per-reason counter arrays.
    pub fn index(self) -> usize {
        match self {
            RemapFault::ReservedFieldsInRequest => 0,
            RemapFault::IndexBeyondTable => 1,
            RemapFault::EntryNotPresent => 2,
            RemapFault::TableAccessError => 3,
            RemapFault::ReservedFieldsInIrte => 4,
            RemapFault::CompatBlocked => 5,
            RemapFault::SourceIdVerification => 6,
        }
    }

    /// The fault for a reason code, `None` outside 0x20–0x26.
    pub fn from_code(code: u8) -> Option<RemapFault> {
        code.checked_sub(0x20).and_then(|i| RemapFault::ALL.get(usize::from(i)).copied())
    }

    /// The kernel's wording (dmar.c `irq_remap_fault_reasons`).
    pub fn reason(self) -> &'static str {
        match self {
            RemapFault::ReservedFieldsInRequest => "Detected reserved fields in the decoded interrupt-remapped request",
            RemapFault::IndexBeyondTable => "Interrupt index exceeded the interrupt-remapping table size",
            RemapFault::EntryNotPresent => "Present field in the IRTE entry is clear",
            RemapFault::TableAccessError => "Error accessing interrupt-remapping table pointed by IRTA_REG",
            RemapFault::ReservedFieldsInIrte => "Detected reserved fields in the IRTE entry",
            RemapFault::CompatBlocked => "Blocked a compatibility format interrupt request",
            RemapFault::SourceIdVerification => "Blocked an interrupt request due to source-id verification failure",
        }
    }
}

impl fmt::Display for RemapFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // dmar_fault_do_one() prints the code with %02d: 0x22 reads "fault reason 34".
        write!(f, "[fault reason {:02}] {}", self.code(), self.reason())
    }
}

/// One primary fault record (FRCD register contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRecord {
    /// FR: the fault reason.
    pub reason: RemapFault,
    /// SID: the requester id.
    pub source_id: u16,
    /// FI: the interrupt index (0 where the request named none).
    pub index: u32,
    /// When the fault was recorded.
    pub at: SimTime,
}

/// What recording a fault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Stored in a register; `raise_event` when no fault event was pending before.
    Recorded {
        /// A fault event interrupt should be raised: schedule the fault handler.
        raise_event: bool,
    },
    /// Not stored: a record from the same requester is pending (only with collapsing on).
    Collapsed,
    /// Lost: the next register is occupied or PFO is already set; PFO is set.
    Lost,
}

/// An IOMMU's fault recording registers and the FSTS bits about them.
#[derive(Debug, Clone)]
pub struct FaultRecordingRegisters {
    registers: Vec<Option<FaultRecord>>,
    next: usize,
    pub(super) pfo: bool,
    pub(super) event_pending: bool,
}

impl FaultRecordingRegisters {
    /// `count` empty registers.
    ///
    /// # Panics
    /// If `count` is not in 1..=256.
    pub fn new(count: u16) -> FaultRecordingRegisters {
        assert!((1..=FAULT_RECORDING_REGISTERS_MAX).contains(&count), "1 to 256 fault recording registers");
        FaultRecordingRegisters { registers: vec![None; usize::from(count)], next: 0, pfo: false, event_pending: false }
    }

    /// Records `record` as the hardware does; with `collapse`, a fault from a requester that
    /// already has a pending record is dropped (QEMU's behaviour, optional in hardware).
    pub fn record(&mut self, record: FaultRecord, collapse: bool) -> RecordOutcome {
        if self.pfo {
            return RecordOutcome::Lost;
        }
        if collapse && self.registers.iter().flatten().any(|r| r.source_id == record.source_id) {
            return RecordOutcome::Collapsed;
        }
        if self.registers[self.next].is_some() {
            self.pfo = true;
            return RecordOutcome::Lost;
        }
        self.registers[self.next] = Some(record);
        self.next = (self.next + 1) % self.registers.len();
        let raise_event = !self.event_pending;
        self.event_pending = true;
        RecordOutcome::Recorded { raise_event }
    }

    /// PPF: some register holds a pending fault.
    pub fn ppf(&self) -> bool {
        self.registers.iter().any(Option::is_some)
    }

    /// PFO: a fault was lost for want of a free register.
    pub fn pfo(&self) -> bool {
        self.pfo
    }

    /// Whether a fault event has been raised and not yet serviced.
    pub fn event_pending(&self) -> bool {
        self.event_pending
    }

    /// Registers holding a pending fault.
    pub fn pending(&self) -> usize {
        self.registers.iter().flatten().count()
    }

    /// Number of registers.
    pub fn count(&self) -> usize {
        self.registers.len()
    }

    /// FRI: the register of the oldest pending fault, `None` when PPF is clear.
    pub fn fault_record_index(&self) -> Option<usize> {
        let n = self.registers.len();
        (0..n).map(|k| (self.next + k) % n).find(|&i| self.registers[i].is_some())
    }

    /// The registers' contents.
    pub fn registers(&self) -> &[Option<FaultRecord>] {
        &self.registers
    }

    pub(super) fn take(&mut self, index: usize) -> Option<FaultRecord> {
        self.registers[index].take()
    }

    pub(super) fn check_invariants(&self) -> Result<(), String> {
        // Pending records form one run ending just before the write index.
        let n = self.registers.len();
        let pending = self.pending();
        for k in 0..n {
            let i = (self.next + n - 1 - k) % n;
            if self.registers[i].is_some() != (k < pending) {
                return Err(format!("fault records are not one run before index {}", self.next));
            }
        }
        if pending > 0 && !self.event_pending {
            return Err("pending faults without a pending fault event".into());
        }
        if self.pfo && pending != n {
            return Err("PFO set with a free fault recording register".into());
        }
        Ok(())
    }
}

/// One call's decision of the kernel rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// The message may be printed.
    pub allowed: bool,
    /// The window restarted and "N callbacks suppressed" was printed with this N.
    pub reported_suppressed: Option<u64>,
}

/// The kernel's `___ratelimit()` state (lib/ratelimit.c), as used by `dmar_fault()`.
#[derive(Debug, Clone)]
pub struct KernelRateLimit {
    interval: SimDuration,
    burst: u32,
    begin: Option<SimTime>,
    left: i64,
    missed: u64,
    missed_total: u64,
    allowed_total: u64,
    reports: u64,
}

impl KernelRateLimit {
    /// A limit of `burst` calls per `interval`.
    pub fn new(interval: SimDuration, burst: u32) -> KernelRateLimit {
        KernelRateLimit {
            interval,
            burst,
            begin: None,
            left: 0,
            missed: 0,
            missed_total: 0,
            allowed_total: 0,
            reports: 0,
        }
    }

    /// One `__ratelimit()` call at `now`.
    pub fn check(&mut self, now: SimTime) -> RateLimitDecision {
        let mut decision = RateLimitDecision { allowed: false, reported_suppressed: None };
        if self.interval == SimDuration::ZERO || self.burst == 0 {
            decision.allowed = self.interval == SimDuration::ZERO;
        } else {
            let begin = match self.begin {
                Some(begin) => begin,
                None => {
                    self.left = i64::from(self.burst);
                    self.begin = Some(now);
                    now
                }
            };
            if now.as_ps() > begin.as_ps().saturating_add(self.interval.as_ps()) {
                self.left = i64::from(self.burst);
                self.begin = Some(now);
                if self.missed > 0 {
                    decision.reported_suppressed = Some(self.missed);
                    self.reports += 1;
                    self.missed = 0;
                }
            }
            self.left -= 1;
            decision.allowed = self.left >= 0;
        }
        if decision.allowed {
            self.allowed_total += 1;
        } else {
            self.missed += 1;
            self.missed_total += 1;
        }
        decision
    }

    /// Calls that were allowed.
    pub fn allowed_total(&self) -> u64 {
        self.allowed_total
    }

    /// Calls that were suppressed.
    pub fn missed_total(&self) -> u64 {
        self.missed_total
    }

    /// "callbacks suppressed" lines printed.
    pub fn reports(&self) -> u64 {
        self.reports
    }
}

/// What one run of the fault handler did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceReport {
    /// The records cleared, oldest first.
    pub records: Vec<FaultRecord>,
    /// "DRHD: handling fault status reg" was printed.
    pub status_logged: bool,
    /// Records printed.
    pub records_logged: u32,
    /// `__ratelimit()` calls that returned 0 (the kernel's missed count).
    pub suppressed: u32,
    /// PFO was set and the handler cleared it.
    pub overflow_cleared: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::remap::testutil::*;
    use crate::iommu::remap::{FaultDisposition, RemapRequest};

    #[test]
    fn fault_reason_codes_and_wording_match_dmar_c() {
        let expected = [
            (0x20, "Detected reserved fields in the decoded interrupt-remapped request"),
            (0x21, "Interrupt index exceeded the interrupt-remapping table size"),
            (0x22, "Present field in the IRTE entry is clear"),
            (0x23, "Error accessing interrupt-remapping table pointed by IRTA_REG"),
            (0x24, "Detected reserved fields in the IRTE entry"),
            (0x25, "Blocked a compatibility format interrupt request"),
            (0x26, "Blocked an interrupt request due to source-id verification failure"),
        ];
        for (fault, (code, reason)) in RemapFault::ALL.iter().zip(expected) {
            assert_eq!((fault.code(), fault.reason()), (code, reason));
            assert_eq!(RemapFault::from_code(code), Some(*fault));
        }
        assert_eq!(
            RemapFault::EntryNotPresent.to_string(),
            "[fault reason 34] Present field in the IRTE entry is clear"
        );
        assert_eq!(RemapFault::from_code(0x1f), None);
        assert_eq!(RemapFault::from_code(0x27), None);
    }

    #[test]
    fn fault_registers_overflow_and_pfo() {
        // 4 registers: 4 faults are recorded (only the first raises the fault event), the
        // 5th finds the next register occupied, sets PFO and is lost; so is the 6th.
        let mut p = params();
        p.fault_recording_registers = 4;
        let mut u = unit(p);
        let request = RemapRequest::remappable(0x0800, 7, None);
        let mut got = Vec::new();
        for k in 0..6 {
            got.push(u.translate(ns(k), IO, &request).fault.unwrap());
        }
        let recorded = |raise_fault_event| FaultDisposition::Recorded { raise_fault_event };
        let lost = FaultDisposition::LostOverflow;
        assert_eq!(got, [recorded(true), recorded(false), recorded(false), recorded(false), lost, lost]);
        let f = u.fault_registers(IO);
        assert!(f.ppf() && f.pfo() && f.event_pending());
        assert_eq!((f.pending(), f.fault_record_index()), (4, Some(0)));
        assert_eq!((u.counters().recorded, u.counters().overflow_lost), (4, 2));
        u.check_invariants().unwrap();

        let report = u.service_faults(ns(10), IO);
        let times: Vec<SimTime> = report.records.iter().map(|r| r.at).collect();
        assert_eq!(times, [ns(0), ns(1), ns(2), ns(3)]);
        assert!(report.overflow_cleared);
        let f = u.fault_registers(IO);
        assert!(!f.ppf() && !f.pfo() && !f.event_pending());
        // Recording resumes and raises a new event.
        assert_eq!(u.translate(ns(11), IO, &request).fault, Some(recorded(true)));
        u.check_invariants().unwrap();

        // The ring wraps: the handler starts at the oldest record.
        let mut u = unit(p);
        for k in 0..3 {
            u.translate(ns(k), IO, &request);
        }
        u.service_faults(ns(3), IO);
        for k in 4..7 {
            u.translate(ns(k), IO, &request);
        }
        assert_eq!(u.fault_registers(IO).fault_record_index(), Some(3));
        let times: Vec<SimTime> = u.service_faults(ns(8), IO).records.iter().map(|r| r.at).collect();
        assert_eq!(times, [ns(4), ns(5), ns(6)]);
        u.check_invariants().unwrap();
    }

    #[test]
    fn collapsing_same_source_faults() {
        let mut p = params();
        p.collapse_same_source = true;
        let mut u = unit(p);
        let a = RemapRequest::remappable(0x0100, 7, None);
        let b = RemapRequest::remappable(0x0200, 7, None);
        u.translate(ns(0), IO, &a);
        assert_eq!(u.translate(ns(1), IO, &a).fault, Some(FaultDisposition::Collapsed));
        assert!(matches!(u.translate(ns(2), IO, &b).fault, Some(FaultDisposition::Recorded { .. })));
        assert_eq!((u.counters().recorded, u.counters().collapsed), (2, 1));
        u.check_invariants().unwrap();
    }

    #[test]
    fn kernel_ratelimit_semantics() {
        let five_s = DEFAULT_RATELIMIT_INTERVAL;
        let mut rl = KernelRateLimit::new(five_s, 10);
        let allowed = (0..25).filter(|_| rl.check(SimTime::ZERO).allowed).count();
        assert_eq!((allowed, rl.missed_total()), (10, 15));
        // The window ends strictly after begin + interval.
        assert!(!rl.check(SimTime::ZERO + five_s).allowed);
        let d = rl.check(SimTime::ZERO + five_s + SimDuration::from_ps(1));
        assert_eq!(d, RateLimitDecision { allowed: true, reported_suppressed: Some(16) });
        assert_eq!(rl.reports(), 1);
        let mut always = KernelRateLimit::new(SimDuration::ZERO, 10);
        assert!((0..100).all(|_| always.check(SimTime::ZERO).allowed));
        let mut never = KernelRateLimit::new(five_s, 0);
        assert!(!(0..5).any(|_| never.check(SimTime::ZERO).allowed));
    }

    #[test]
    fn fault_handler_logs_ten_per_five_second_window() {
        // dmar_fault() calls __ratelimit() once for the status line and once per loop pass,
        // including the pass that finds the next register empty.
        let mut p = params();
        p.fault_recording_registers = 16;
        let mut u = unit(p);
        let request = RemapRequest::remappable(0x0100, 9, None);
        let five_s = SimTime::ZERO + DEFAULT_RATELIMIT_INTERVAL;
        let one_ps = SimDuration::from_ps(1);

        // Window 1 opens at t=0. 16 records: the status line takes token 1, records 1..9
        // tokens 2..10; records 10..16 (7) and the final pass (1) are suppressed.
        for _ in 0..16 {
            u.translate(SimTime::ZERO, IO, &request);
        }
        let r = u.service_faults(SimTime::ZERO, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (16, true, 9, 8));
        assert_eq!((u.counters().logged(), u.counters().suppressed), (10, 8));

        // At exactly 5 s the window has not ended: 3 records, status + 3 + final = 5 more
        // suppressed, nothing logged.
        for _ in 0..3 {
            u.translate(five_s, IO, &request);
        }
        let r = u.service_faults(five_s, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (3, false, 0, 5));
        assert_eq!((u.counters().logged(), u.counters().suppressed), (10, 13));

        // 1 ps later the window restarts: "13 callbacks suppressed" is reported, and status +
        // 3 records are logged (the final pass takes a 5th token).
        for _ in 0..3 {
            u.translate(five_s + one_ps, IO, &request);
        }
        let r = u.service_faults(five_s + one_ps, IO);
        assert_eq!((r.records.len(), r.status_logged, r.records_logged, r.suppressed), (3, true, 3, 0));
        let c = u.counters();
        assert_eq!((c.logged_status, c.logged_records, c.suppressed, c.suppression_reports), (2, 12, 13, 1));
        assert_eq!((u.ratelimit().allowed_total(), u.ratelimit().missed_total()), (15, 13));
        assert_eq!((c.recorded, c.drained), (22, 22));
        // A handler run with nothing pending prints nothing and uses no token.
        let r = u.service_faults(five_s + one_ps, IO);
        assert_eq!(r, ServiceReport::default());
        u.check_invariants().unwrap();
    }
}
