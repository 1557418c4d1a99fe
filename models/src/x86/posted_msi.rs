//! Host posted MSI (Linux 6.10+, opt-in `intremap=posted_msi`): device MSIs are posted into
//! a per-CPU descriptor and the CPU takes one notification for a burst, against remappable
//! mode where every MSI is its own interrupt. A discrete-event model on `sim` ([`MsiWorld`])
//! feeds N MSI sources into one CPU and measures the handled IRQ/s.
//!
//! # What is modelled
//!
//! * **Sources**: N devices, each with its own vector (0x30 + i) and an exponential gap
//!   between MSIs (its own [`RngStream`]). Saturation means offering far more than the CPU
//!   can take.
//! * **Remappable mode**: each MSI is remapped and sets its vector's LAPIC IRR bit (an MSI for
//!   a vector already pending in IRR merges into it, as in the APIC). The CPU takes the
//!   highest pending vector and spends `notification + irq_entry_exit + handler + eoi` on it,
//!   then takes the next. Interrupts do not nest (Linux runs handlers with IRQs off).
//! * **Posted mode**: each MSI is posted into the CPU's [`PostedDescriptor`] (SN = 0,
//!   NV = 0xeb) with [`PostedDescriptor::post`]; only the posting that turns ON 0 → 1 sends a
//!   notification, which sets LAPIC IRR bit 0xeb. The CPU takes it (`notification +
//!   irq_entry_exit`) and runs `sysvec_posted_msi_notification`: a demux pass reads and clears
//!   PIR (`pir_scan`) and calls each found vector's handler (`handler` each); passes repeat while
//!   bits are found, up to the cap; then ON is cleared, one final pass runs (it catches MSIs
//!   that raced with the clear), and one `eoi` ends the notification. A posting after the
//!   clear sends the next notification, taken after this one's EOI.
//! * **The loop cap**, in two readings ([`CapSemantics`]). In the kernel as merged,
//!   `while (++i < MAX_POSTED_MSI_COALESCING_LOOP)` runs at most cap − 1 passes before the
//!   final one (the cap counts the final pass). In the RFC that produced the published numbers
//!   (Jacob Pan, 11 Nov 2023), `while (i++ < MAX...)` ran up to cap passes, then the final one.
//! * **Accounting**: a message is *handled* when the pass or IRR acceptance that covers its
//!   bit runs, *pending* while its bit is set, and *coalesced* when it found its bit already
//!   set. Throughput is handler calls per second in a measurement window after a warm-up.
//!
//! # What is not modelled (and why)
//!
//! * Per-message work that the IOMMU/system agent does without the CPU (remapping, the posting
//!   atomic swap): it adds latency, not CPU time, and saturation throughput is CPU-bound here.
//!   The "strongly ordered notification" is charged to the receiving CPU, once per interrupt
//!   it takes (`notification`): that is the cost posted mode saves by coalescing. A message
//!   that merges into an IRR bit already pending is assumed to cost the CPU nothing. A
//!   socket-wide cost of remappable notifications, which the NVMe figures point to, is not
//!   modelled (*Out-of-sample checks*).
//! * Softirqs, other system vectors (timer), preemption of the demux loop, irq_work: the
//!   published test pins two DSA queues to one otherwise idle CPU.
//! * Cache-line contention on the descriptor between the IOMMU and the CPU: folded into
//!   `pir_scan`.
//! * Device completion semantics (DSA descriptors, NVMe queues, a drive's own IOPS limit,
//!   several completions reaped per interrupt): sources are open-loop generators. At
//!   saturation only the CPU's costs matter.
//! * Interrupt priority among device vectors in posted mode: the demux handles every found
//!   vector in ascending order, as `for_each_set_bit` does; priority matters only for which
//!   vector remappable mode starves at saturation, not for the total.
//!
//! # Parameters and their sources
//!
//! The mechanism and constants are `[src]`: `POSTED_MSI_NOTIFICATION_VECTOR` 0xeb,
//! `MAX_POSTED_MSI_COALESCING_LOOP` 3, the demux loop and the final pass
//! (`arch/x86/kernel/irq.c`, calibration.md §2). **The costs are a fit, not a measurement**:
//! no per-step timing was published.
//!
//! | constant | value | status |
//! |---|---|---|
//! | `handler` (h) | 94 ns | **fitted** to the two figures below |
//! | F = `notification` + `irq_entry_exit` + `eoi` | 100 ns | **fitted** to the two figures below (only the sum) |
//! | split of F: n, e, o | 40, 45, 15 ns | assumed; not identifiable from the figures, which see only F |
//! | `pir_scan` (s) | 10 ns | assumed before the fit (4 loads + up to 4 xchg on a line the IOMMU also writes) |
//! | `loop_cap`, `cap_semantics` | 3, [`CapSemantics::Rfc2023`] | `[src]`: the RFC's code that produced the figures |
//!
//! The two fitted constants come from exactly two numbers, the throughputs of Jacob Pan's
//! RFC cover letter ("[PATCH RFC 00/13] Coalesced Interrupt Delivery with posted MSI",
//! 11 Nov 2023; DSA memfill, two work queues with their IRQs pinned to one Sapphire Rapids
//! CPU): **5.157 M IRQ/s remappable and 8.987 M posted** with the RFC's cap of 3. Two
//! constants fitted to two numbers match them by construction (up to the rounding to whole
//! nanoseconds), so the model matching that pair, here or in the platform's demux server, is
//! not a reproduction of anything.
//!
//! Write n = `notification`, e = `irq_entry_exit`, h = `handler`, s = `pir_scan`,
//! o = `eoi`, F = n + e + o, and k = 2 vectors (two queues), both found in every pass at
//! saturation. Then:
//!
//! ```text
//! remappable: one IRQ per interrupt taken           1 / (F + h)                  = 5.157 M/s
//!             F + h = 1e9 / 5.157e6 ns                                           = 193.9 ns
//! posted:     RFC cap 3 = 3 loop passes + final = P = 4 passes, P·k = 8 calls per notification
//!             8 / (F + P·s + P·k·h) = 8.987 M/s  =>  F + 4s + 8h = 8e9 / 8.987e6 ns = 890.2 ns
//! subtract:   4s + 7h = 696.3 ns
//! assume      s = 10 ns
//!          => h = 93.8 ns, F = 100.1 ns; rounded: h = 94 ns, F = 100 ns
//! split of F (assumed; only F matters to the figures):
//!             n = 40 ns, e = 45 ns, o = 15 ns
//! check:      remappable 1e9 / 194 = 5.155 M/s (−0.04 %)
//!             posted     8e9 / (100 + 40 + 752) = 8e9 / 892 = 8.969 M/s (−0.2 %)
//! ```
//!
//! # Out-of-sample checks
//!
//! With the constants fixed, `models/tests/posted_msi_validation.rs` compares the model with
//! published figures that were not used in the fit, asserting ratios with stated tolerances:
//!
//! * **The loop-cap table** (same letter, DSA memfill, IRQ/s at MaxLoop 2..6: 6.157, 6.227,
//!   6.557, 6.630, 6.662 M). Its level (6.2 M at cap 3, against 8.987 M at cap 3 in the
//!   fitted pair) shows a different configuration, which the letter does not describe. No
//!   number of saturating sources gives that level (one source already gives 7.75 M), but a
//!   uniform slow-down of every cost (c = 1.44) does and leaves ratios unchanged; so at
//!   saturation with two sources (P = cap + 1) the model predicts caps 3..6 over cap 2:
//!   1.037, 1.061, 1.078, 1.090 against the published 1.011, 1.065, 1.077, 1.082, all within
//!   the 3 % that the table's own scatter implies (cap 3 at +2.6 % is the weakest). The merged
//!   reading (P = cap) is rejected (+4 to +7 %), and so is the other reading of the level, a
//!   non-saturating offered rate (8.6 M/s offered: caps 5 and 6 at −3.8 % and −4.0 %).
//! * **The NVMe per-disk IOPS** (FIO, PM174x, one socket; remappable 1.991 / 1.136 / 0.834 M at
//!   2 / 4 / 8 disks, posted 2.023 / 1.943 M at 4 / 8). With one vector per CPU per disk and
//!   the CPUs shared by the disks, the model predicts the posted gain at 4 disks (1.888 against
//!   1.781, +6 %) but not at 8 (1.972 against 2.330; no number of vectors gets above
//!   (F + h)/h = 2.064), and its remappable per-disk IOPS fall as 1/N, more steeply than
//!   measured (0.5 against 0.571 at 4 disks, 0.25 against 0.419 at 8). Posted per-disk IOPS
//!   that hold (0.960 from 4 to 8 disks) need a device limit the model lacks. Findings: the
//!   NVMe trend depends on a socket-wide cost of remappable notifications and on the drives'
//!   own limit, neither of which is modelled; the model cannot predict absolute IOPS.
//!
//! In the merged reading (P = cap) the same costs give 8.065 / 8.646 / 9.317 M/s at caps
//! 2 / 3 / 6, so a 6.10+ kernel at cap 3 is predicted at 1.68× remappable rather than 1.74×:
//! a prediction with no published measurement to check it against.

use sim::{DurationDist, EventQueue, RngStream, RunLimits, SimDuration, SimTime, StopReason, World, run};

use crate::ids::Vector;
use crate::iommu::posted::{PostOutcome, PostedDescriptor, pir_vectors};

/// The host notification vector for posted MSIs.
pub const POSTED_MSI_NOTIFICATION_VECTOR: Vector = Vector(0xeb);
/// The kernel's default cap on demux passes per notification.
pub const MAX_POSTED_MSI_COALESCING_LOOP: u32 = 3;
/// Source i uses vector `FIRST_SOURCE_VECTOR + i`.
pub const FIRST_SOURCE_VECTOR: u8 = 0x30;
/// At most this many sources (their vectors stay below the system vectors).
pub const SOURCES_MAX: u32 = 64;

/// How the loop cap counts passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapSemantics {
    /// Linux 6.10+: at most cap − 1 passes before clearing ON, then the final pass.
    Merged,
    /// The Nov 2023 RFC that produced the published figures: at most cap passes, then the
    /// final pass.
    Rfc2023,
}

impl CapSemantics {
    /// Demux passes allowed before ON is cleared, for a cap.
    pub fn passes_before_clear(self, cap: u32) -> u32 {
        match self {
            CapSemantics::Merged => cap.saturating_sub(1),
            CapSemantics::Rfc2023 => cap,
        }
    }
}

/// CPU costs of MSI delivery. See the module docs for where the fitted values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostedMsiParams {
    /// Taking one notification interrupt (the strongly ordered delivery), per interrupt the
    /// CPU takes: per MSI in remappable mode, per notification in posted mode.
    pub notification: SimDuration,
    /// IDT entry and exit (`irq_enter` / `irq_exit`) per interrupt taken.
    pub irq_entry_exit: SimDuration,
    /// One device handler call.
    pub handler: SimDuration,
    /// One demux pass over PIR (read four words, xchg the non-zero ones).
    pub pir_scan: SimDuration,
    /// One local APIC EOI.
    pub eoi: SimDuration,
    /// `MAX_POSTED_MSI_COALESCING_LOOP`.
    pub loop_cap: u32,
    /// How `loop_cap` counts passes.
    pub cap_semantics: CapSemantics,
}

/// The mode of interrupt remapping for device MSIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiMode {
    /// Every MSI is an interrupt of its own vector.
    Remappable,
    /// MSIs are posted; one notification vector per CPU, demuxed in software.
    Posted,
}

impl PostedMsiParams {
    /// The fit to Jacob Pan's RFC figures (module docs): `handler` h = 94 ns and the fixed
    /// per-interrupt cost F = n + e + o = 100 ns are **fitted** to 5.157 and 8.987 M IRQ/s, so
    /// the model matches those two by construction; `pir_scan` s = 10 ns and the split of F
    /// (n 40, e 45, o 15 ns) are assumed; cap 3 in the RFC reading is the RFC's code. A fit,
    /// not a measurement; `tests/posted_msi_validation.rs` checks it against other figures.
    pub fn fit_pan_2023() -> PostedMsiParams {
        PostedMsiParams {
            notification: SimDuration::from_ns(40),
            irq_entry_exit: SimDuration::from_ns(45),
            handler: SimDuration::from_ns(94),
            pir_scan: SimDuration::from_ns(10),
            eoi: SimDuration::from_ns(15),
            loop_cap: MAX_POSTED_MSI_COALESCING_LOOP,
            cap_semantics: CapSemantics::Rfc2023,
        }
    }

    /// The same costs with another cap.
    pub fn with_loop_cap(self, loop_cap: u32, cap_semantics: CapSemantics) -> PostedMsiParams {
        PostedMsiParams { loop_cap, cap_semantics, ..self }
    }

    /// The closed form of the model at saturation with `vectors` sources, every pass finding
    /// every vector: handler calls per second. The module docs derive it; tests check the
    /// discrete-event model against it.
    pub fn saturation_irq_per_s(&self, mode: MsiMode, vectors: u32) -> f64 {
        let ps = |d: SimDuration| d.as_ps() as f64;
        let fixed = ps(self.notification) + ps(self.irq_entry_exit) + ps(self.eoi);
        match mode {
            MsiMode::Remappable => 1e12 / (fixed + ps(self.handler)),
            MsiMode::Posted => {
                let passes = f64::from(self.cap_semantics.passes_before_clear(self.loop_cap) + 1);
                let k = f64::from(vectors);
                let time = fixed + passes * (ps(self.pir_scan) + k * ps(self.handler));
                1e12 * passes * k / time
            }
        }
    }
}

/// One run's set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRunConfig {
    /// Remappable or posted.
    pub mode: MsiMode,
    /// Number of MSI sources (1..=[`SOURCES_MAX`]), each with its own vector.
    pub sources: u32,
    /// Mean gap between MSIs of one source (exponential).
    pub source_gap_mean: SimDuration,
    /// Time before the measurement window.
    pub warmup: SimDuration,
    /// Length of the measurement window.
    pub window: SimDuration,
    /// Run seed.
    pub seed: u64,
    /// Stop the sources at the end of the window and run until nothing is left.
    pub drain: bool,
}

impl MsiRunConfig {
    /// Saturating load: each source offers 50 M MSI/s (mean gap 20 ns), far above what one
    /// CPU takes, so that every demux pass finds every vector; 20 µs warm-up, 1 ms window.
    pub fn saturating(mode: MsiMode, sources: u32, seed: u64) -> MsiRunConfig {
        MsiRunConfig {
            mode,
            sources,
            source_gap_mean: SimDuration::from_ns(20),
            warmup: SimDuration::from_us(20),
            window: SimDuration::from_ms(1),
            seed,
            drain: false,
        }
    }
}

/// A run that cannot be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiConfigError {
    /// `sources` is 0 or above [`SOURCES_MAX`].
    SourceCount(u32),
    /// The mean source gap is zero.
    ZeroGap,
    /// The measurement window is empty.
    ZeroWindow,
    /// The loop cap is zero (the kernel's loop needs at least the final pass).
    ZeroLoopCap,
}

impl std::fmt::Display for MsiConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MsiConfigError::SourceCount(n) => write!(f, "{n} sources: need 1..={SOURCES_MAX}"),
            MsiConfigError::ZeroGap => f.write_str("the mean source gap must be positive"),
            MsiConfigError::ZeroWindow => f.write_str("the measurement window must be positive"),
            MsiConfigError::ZeroLoopCap => f.write_str("the loop cap must be at least 1"),
        }
    }
}

impl std::error::Error for MsiConfigError {}

/// The events of [`MsiWorld`] (4 bytes, `Copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiEvent {
    /// Source `source` sends an MSI.
    Msi {
        /// The source index.
        source: u16,
    },
    /// The CPU finished its current step.
    CpuDone,
    /// The measurement window opens.
    WindowStart,
    /// The measurement window closes (and, when draining, the sources stop).
    WindowEnd,
}

/// What the CPU is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CpuPhase {
    Idle,
    /// Remappable: one whole interrupt (notification, entry/exit, handler, EOI).
    Remapped,
    /// Posted: taking the notification (notification, entry/exit).
    Entry,
    /// Posted: demux pass number `index` (1-based), which found `found` vectors.
    Pass {
        index: u32,
        found: u32,
    },
    /// Posted: the pass after clearing ON.
    FinalPass,
    /// Posted: the EOI.
    Eoi,
}

/// Monotone counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsiCounters {
    /// MSIs the sources sent.
    pub msgs_sent: u64,
    /// MSIs covered by a handler call that ran or is running.
    pub msgs_handled: u64,
    /// MSIs that found their vector's bit (IRR or PIR) already set.
    pub msgs_coalesced: u64,
    /// Device handler calls.
    pub handler_calls: u64,
    /// Notifications sent to the CPU: every MSI in remappable mode, ON 0 → 1 postings in
    /// posted mode.
    pub notifications_sent: u64,
    /// Interrupts the CPU took through the IDT.
    pub interrupts_taken: u64,
    /// Demux passes (posted), final passes included.
    pub passes: u64,
    /// Demux passes that found nothing.
    pub empty_passes: u64,
}

impl MsiCounters {
    fn minus(self, earlier: MsiCounters) -> MsiCounters {
        MsiCounters {
            msgs_sent: self.msgs_sent - earlier.msgs_sent,
            msgs_handled: self.msgs_handled - earlier.msgs_handled,
            msgs_coalesced: self.msgs_coalesced - earlier.msgs_coalesced,
            handler_calls: self.handler_calls - earlier.handler_calls,
            notifications_sent: self.notifications_sent - earlier.notifications_sent,
            interrupts_taken: self.interrupts_taken - earlier.interrupts_taken,
            passes: self.passes - earlier.passes,
            empty_passes: self.empty_passes - earlier.empty_passes,
        }
    }
}

/// What a run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MsiRunReport {
    /// The mode run.
    pub mode: MsiMode,
    /// Handler calls per second in the window: the delivered IRQ rate.
    pub irq_per_s: f64,
    /// Counter increments inside the window.
    pub window: MsiCounters,
    /// Counters over the whole run.
    pub total: MsiCounters,
    /// MSIs whose bit is still set at the end.
    pub msgs_pending: u64,
    /// At the end: CPU idle, no IRR bit, PIR empty and ON clear.
    pub quiescent: bool,
    /// Why the run stopped.
    pub stop_reason: StopReason,
    /// When it stopped.
    pub time_stop: SimTime,
}

#[derive(Debug)]
struct Source {
    gap: DurationDist,
    rng: RngStream,
    /// MSIs folded into this source's pending bit.
    pending: u64,
}

/// One CPU receiving MSIs from N sources, in remappable or posted mode.
#[derive(Debug)]
pub struct MsiWorld {
    params: PostedMsiParams,
    config: MsiRunConfig,
    sources: Vec<Source>,
    /// LAPIC IRR (device vectors in remappable mode, 0xeb in posted mode).
    irr: [u64; 4],
    desc: PostedDescriptor,
    phase: CpuPhase,
    counters: MsiCounters,
    at_window_start: MsiCounters,
    at_window_end: Option<MsiCounters>,
    sources_stopped: bool,
}

fn bit_set(bits: &mut [u64; 4], v: Vector) -> bool {
    let (word, mask) = (usize::from(v.0) / 64, 1u64 << (v.0 % 64));
    let was = bits[word] & mask != 0;
    bits[word] |= mask;
    was
}

fn bit_clear(bits: &mut [u64; 4], v: Vector) {
    bits[usize::from(v.0) / 64] &= !(1u64 << (v.0 % 64));
}

fn highest(bits: [u64; 4]) -> Option<Vector> {
    pir_vectors(bits).last()
}

impl MsiWorld {
    /// A world in its initial state; [`MsiWorld::start`] schedules its first events.
    pub fn new(params: PostedMsiParams, config: MsiRunConfig) -> Result<MsiWorld, MsiConfigError> {
        if config.sources == 0 || config.sources > SOURCES_MAX {
            return Err(MsiConfigError::SourceCount(config.sources));
        }
        if config.source_gap_mean == SimDuration::ZERO {
            return Err(MsiConfigError::ZeroGap);
        }
        if config.window == SimDuration::ZERO {
            return Err(MsiConfigError::ZeroWindow);
        }
        if params.loop_cap == 0 {
            return Err(MsiConfigError::ZeroLoopCap);
        }
        let sources = (0..config.sources)
            .map(|i| Source {
                gap: DurationDist::exponential(config.source_gap_mean),
                rng: RngStream::new(config.seed, &format!("posted_msi/source/{i}")),
                pending: 0,
            })
            .collect();
        Ok(MsiWorld {
            params,
            config,
            sources,
            irr: [0; 4],
            desc: PostedDescriptor::new(POSTED_MSI_NOTIFICATION_VECTOR, 0),
            phase: CpuPhase::Idle,
            counters: MsiCounters::default(),
            at_window_start: MsiCounters::default(),
            at_window_end: None,
            sources_stopped: false,
        })
    }

    /// Schedules each source's first MSI and the window boundaries.
    pub fn start(&mut self, queue: &mut EventQueue<MsiEvent>) {
        let start = queue.now() + self.config.warmup;
        queue.schedule_at(start, MsiEvent::WindowStart);
        queue.schedule_at(start + self.config.window, MsiEvent::WindowEnd);
        for (i, source) in self.sources.iter_mut().enumerate() {
            let source_index = u16::try_from(i).expect("at most SOURCES_MAX sources");
            let gap = source.gap.sample(&mut source.rng);
            queue.schedule_in(gap, MsiEvent::Msi { source: source_index });
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> MsiCounters {
        self.counters
    }

    /// MSIs whose vector bit is still set.
    pub fn msgs_pending(&self) -> u64 {
        self.sources.iter().map(|s| s.pending).sum()
    }

    /// CPU idle, nothing in IRR or PIR, ON clear.
    pub fn quiescent(&self) -> bool {
        self.phase == CpuPhase::Idle && self.irr == [0; 4] && self.desc.pir_is_empty() && !self.desc.on()
    }

    fn vector_of(source: usize) -> Vector {
        Vector(FIRST_SOURCE_VECTOR + u8::try_from(source).expect("at most SOURCES_MAX sources"))
    }

    fn source_of(vector: Vector) -> usize {
        usize::from(vector.0 - FIRST_SOURCE_VECTOR)
    }

    fn on_msi(&mut self, source: usize, queue: &mut EventQueue<MsiEvent>) {
        if self.sources_stopped {
            return;
        }
        let s = &mut self.sources[source];
        let gap = s.gap.sample(&mut s.rng);
        queue.schedule_in(gap, MsiEvent::Msi { source: u16::try_from(source).expect("at most SOURCES_MAX sources") });
        self.counters.msgs_sent += 1;
        if s.pending > 0 {
            self.counters.msgs_coalesced += 1;
        }
        s.pending += 1;
        let vector = Self::vector_of(source);
        match self.config.mode {
            MsiMode::Remappable => {
                self.counters.notifications_sent += 1;
                bit_set(&mut self.irr, vector);
            }
            MsiMode::Posted => match self.desc.post(vector, false) {
                PostOutcome::NotificationSent { nv, .. } => {
                    self.counters.notifications_sent += 1;
                    bit_set(&mut self.irr, nv);
                }
                PostOutcome::AlreadyPending => {}
                PostOutcome::Suppressed => unreachable!("SN is never set for host posted MSIs"),
            },
        }
        if self.phase == CpuPhase::Idle {
            self.take_interrupt(queue);
        }
    }

    /// Takes the highest IRR vector, if any; otherwise the CPU goes idle.
    fn take_interrupt(&mut self, queue: &mut EventQueue<MsiEvent>) {
        let Some(vector) = highest(self.irr) else {
            self.phase = CpuPhase::Idle;
            return;
        };
        bit_clear(&mut self.irr, vector);
        self.counters.interrupts_taken += 1;
        let p = self.params;
        if vector == POSTED_MSI_NOTIFICATION_VECTOR {
            self.phase = CpuPhase::Entry;
            queue.schedule_in(p.notification + p.irq_entry_exit, MsiEvent::CpuDone);
        } else {
            let source = &mut self.sources[Self::source_of(vector)];
            self.counters.msgs_handled += std::mem::take(&mut source.pending);
            self.counters.handler_calls += 1;
            self.phase = CpuPhase::Remapped;
            queue.schedule_in(p.notification + p.irq_entry_exit + p.handler + p.eoi, MsiEvent::CpuDone);
        }
    }

    /// One demux pass: xchg PIR, call the handler of each vector found. Returns how many.
    fn demux_pass(&mut self, queue: &mut EventQueue<MsiEvent>) -> u32 {
        let bits = self.desc.xchg_pir();
        let mut found = 0u32;
        for vector in pir_vectors(bits) {
            let source = &mut self.sources[Self::source_of(vector)];
            self.counters.msgs_handled += std::mem::take(&mut source.pending);
            self.counters.handler_calls += 1;
            found += 1;
        }
        self.counters.passes += 1;
        if found == 0 {
            self.counters.empty_passes += 1;
        }
        let handlers = SimDuration::from_ps(self.params.handler.as_ps() * u64::from(found));
        queue.schedule_in(self.params.pir_scan + handlers, MsiEvent::CpuDone);
        found
    }

    fn final_pass(&mut self, queue: &mut EventQueue<MsiEvent>) {
        self.desc.clear_on();
        self.demux_pass(queue);
        self.phase = CpuPhase::FinalPass;
    }

    fn on_cpu_done(&mut self, queue: &mut EventQueue<MsiEvent>) {
        let loop_max = self.params.cap_semantics.passes_before_clear(self.params.loop_cap);
        match self.phase {
            CpuPhase::Idle => unreachable!("CpuDone while idle"),
            CpuPhase::Remapped | CpuPhase::Eoi => self.take_interrupt(queue),
            CpuPhase::Entry if loop_max == 0 => self.final_pass(queue),
            CpuPhase::Entry => {
                let found = self.demux_pass(queue);
                self.phase = CpuPhase::Pass { index: 1, found };
            }
            CpuPhase::Pass { index, found } if found > 0 && index < loop_max => {
                let found = self.demux_pass(queue);
                self.phase = CpuPhase::Pass { index: index + 1, found };
            }
            CpuPhase::Pass { .. } => self.final_pass(queue),
            CpuPhase::FinalPass => {
                self.phase = CpuPhase::Eoi;
                queue.schedule_in(self.params.eoi, MsiEvent::CpuDone);
            }
        }
    }

    /// The report for a run that ended with `stop_reason` at `time_stop`.
    pub fn report(&self, stop_reason: StopReason, time_stop: SimTime) -> MsiRunReport {
        let window = self.at_window_end.unwrap_or(self.counters).minus(self.at_window_start);
        MsiRunReport {
            mode: self.config.mode,
            irq_per_s: window.handler_calls as f64 / self.config.window.as_secs_f64(),
            window,
            total: self.counters,
            msgs_pending: self.msgs_pending(),
            quiescent: self.quiescent(),
            stop_reason,
            time_stop,
        }
    }
}

impl World for MsiWorld {
    type Event = MsiEvent;

    fn handle(&mut self, event: MsiEvent, queue: &mut EventQueue<MsiEvent>) {
        match event {
            MsiEvent::Msi { source } => self.on_msi(usize::from(source), queue),
            MsiEvent::CpuDone => self.on_cpu_done(queue),
            MsiEvent::WindowStart => self.at_window_start = self.counters,
            MsiEvent::WindowEnd => {
                self.at_window_end = Some(self.counters);
                self.sources_stopped = self.config.drain;
            }
        }
    }
}

/// Events one run may handle before it is stopped (a bound, never reached by sane configs).
pub const RUN_EVENT_COUNT_MAX: u64 = 200_000_000;

/// Builds, runs and reports one configuration.
pub fn run_msi(params: PostedMsiParams, config: MsiRunConfig) -> Result<MsiRunReport, MsiConfigError> {
    let mut world = MsiWorld::new(params, config)?;
    let mut queue = EventQueue::with_capacity(config.sources as usize + 4);
    world.start(&mut queue);
    let time_end = if config.drain { SimTime::MAX } else { SimTime::ZERO + config.warmup + config.window };
    let limits = RunLimits { time_end, event_count_max: RUN_EVENT_COUNT_MAX };
    let outcome = run(&mut world, &mut queue, limits);
    Ok(world.report(outcome.stop_reason, outcome.time_stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saturated(params: PostedMsiParams, mode: MsiMode) -> MsiRunReport {
        run_msi(params, MsiRunConfig::saturating(mode, 2, 1)).unwrap()
    }

    #[test]
    fn event_is_small() {
        assert!(std::mem::size_of::<MsiEvent>() <= 16);
    }

    #[test]
    fn saturation_matches_the_fit_and_the_published_direction() {
        let p = PostedMsiParams::fit_pan_2023();
        let remap = saturated(p, MsiMode::Remappable);
        let posted = saturated(p, MsiMode::Posted);
        println!("remappable {:.3} M/s, posted {:.3} M/s", remap.irq_per_s / 1e6, posted.irq_per_s / 1e6);
        // The discrete-event model agrees with its closed form (every pass finds both vectors).
        for r in [remap, posted] {
            let closed = p.saturation_irq_per_s(r.mode, 2);
            assert!((r.irq_per_s / closed - 1.0).abs() < 0.01, "{:?}: {} vs {closed}", r.mode, r.irq_per_s);
        }
        // And the fit lands near the published pair, 5.157 and 8.987 M IRQ/s.
        assert!((remap.irq_per_s / 5.157e6 - 1.0).abs() < 0.02, "{}", remap.irq_per_s);
        assert!((posted.irq_per_s / 8.987e6 - 1.0).abs() < 0.02, "{}", posted.irq_per_s);
        // Direction and size: published 1.74x. The band [1.5, 2.2] admits the merged-cap
        // reading (1.68x) and the 6.10 pull request's "10% to 130%" upper end, and rejects a
        // model whose coalescing does nothing or everything.
        let ratio = posted.irq_per_s / remap.irq_per_s;
        assert!((1.5..=2.2).contains(&ratio), "posted/remappable = {ratio}");
        // Posted mode takes far fewer interrupts per handler call.
        assert!(posted.window.interrupts_taken * 7 < posted.window.handler_calls);
        assert_eq!(remap.window.interrupts_taken, remap.window.handler_calls);
    }

    #[test]
    fn throughput_rises_with_the_loop_cap() {
        let base = PostedMsiParams::fit_pan_2023();
        for semantics in [CapSemantics::Rfc2023, CapSemantics::Merged] {
            let rates: Vec<f64> = [2, 3, 6]
                .iter()
                .map(|&cap| saturated(base.with_loop_cap(cap, semantics), MsiMode::Posted).irq_per_s)
                .collect();
            println!("{semantics:?}: caps 2/3/6 -> {rates:?}");
            assert!(rates[0] < rates[1] && rates[1] < rates[2], "{semantics:?}: {rates:?}");
            let cap3_ratio = rates[1] / saturated(base, MsiMode::Remappable).irq_per_s;
            assert!((1.5..=2.2).contains(&cap3_ratio), "{semantics:?} cap 3: {cap3_ratio}");
        }
    }

    #[test]
    fn every_msi_is_handled_or_pending() {
        let p = PostedMsiParams::fit_pan_2023();
        for mode in [MsiMode::Remappable, MsiMode::Posted] {
            let mut config = MsiRunConfig::saturating(mode, 3, 9);
            config.window = SimDuration::from_us(200);
            let r = run_msi(p, config).unwrap();
            assert_eq!(r.total.msgs_sent, r.total.msgs_handled + r.msgs_pending, "{mode:?}");
            assert!(r.total.msgs_coalesced > 0, "saturation coalesces ({mode:?})");
            // Drained: the final pass leaves nothing stranded.
            config.drain = true;
            let r = run_msi(p, config).unwrap();
            assert_eq!(r.stop_reason, StopReason::QueueEmpty);
            assert_eq!((r.msgs_pending, r.quiescent), (0, true), "{mode:?}");
            assert_eq!(r.total.msgs_sent, r.total.msgs_handled, "{mode:?}");
        }
    }

    #[test]
    fn low_rate_gains_nothing() {
        // 2 x 200k MSI/s: far below saturation, nearly every MSI finds an idle CPU and ON
        // clear, so posted mode takes about one notification per MSI, like remappable mode (the RFC: "< 1
        // million/second, no performance benefits").
        let p = PostedMsiParams::fit_pan_2023();
        for mode in [MsiMode::Remappable, MsiMode::Posted] {
            let mut config = MsiRunConfig::saturating(mode, 2, 5);
            config.source_gap_mean = SimDuration::from_us(5);
            config.window = SimDuration::from_ms(5);
            let r = run_msi(p, config).unwrap();
            let w = r.window;
            // A second MSI of the same source within one ~300 ns service is rare (~1-2 %),
            // and in posted mode one within a ~220 ns notification episode (~9 %).
            assert!(w.handler_calls >= w.msgs_sent * 97 / 100, "{mode:?} {w:?}");
            assert!(w.interrupts_taken >= w.msgs_sent * 85 / 100, "{mode:?} {w:?}");
        }
    }

    #[test]
    fn same_seed_same_result() {
        let p = PostedMsiParams::fit_pan_2023();
        let mut config = MsiRunConfig::saturating(MsiMode::Posted, 2, 42);
        config.window = SimDuration::from_us(200);
        let a = run_msi(p, config).unwrap();
        assert_eq!(a, run_msi(p, config).unwrap());
        config.seed = 43;
        assert_ne!(a.total.msgs_sent, run_msi(p, config).unwrap().total.msgs_sent);
    }

    #[test]
    fn bad_configs_are_errors() {
        let p = PostedMsiParams::fit_pan_2023();
        let ok = MsiRunConfig::saturating(MsiMode::Posted, 2, 0);
        let err = |c| MsiWorld::new(p, c).err();
        assert_eq!(err(MsiRunConfig { sources: 0, ..ok }), Some(MsiConfigError::SourceCount(0)));
        assert_eq!(err(MsiRunConfig { sources: 65, ..ok }), Some(MsiConfigError::SourceCount(65)));
        assert_eq!(err(MsiRunConfig { source_gap_mean: SimDuration::ZERO, ..ok }), Some(MsiConfigError::ZeroGap));
        assert_eq!(err(MsiRunConfig { window: SimDuration::ZERO, ..ok }), Some(MsiConfigError::ZeroWindow));
        let zero_cap = p.with_loop_cap(0, CapSemantics::Merged);
        assert_eq!(MsiWorld::new(zero_cap, ok).err(), Some(MsiConfigError::ZeroLoopCap));
        // Merged cap 1: no loop pass, only the final one.
        assert!(run_msi(p.with_loop_cap(1, CapSemantics::Merged), ok).is_ok());
    }
}
