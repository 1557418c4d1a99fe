//! Out-of-sample checks of the host posted-MSI model (`models::x86::posted_msi`) against the
//! figures of Jacob Pan's posted-MSI cover letters that its costs were *not* fitted to: the
//! loop-cap table (DSA memfill) and the FIO per-disk IOPS (Gen5 NVMe). The pair the costs were
//! fitted to (5.157 and 8.987 M IRQ/s) is matched by construction and is not a check.
//!
//! Sources, all on linux-kernel / kvm@vger:
//! * "[PATCH RFC 00/13] Coalesced Interrupt Delivery with posted MSI", 11 Nov 2023 (the RFC):
//!   the fitted pair, the loop-cap table, the NVMe table;
//! * "[PATCH v2 00/13] ...", 5 Apr 2024 (v2): the same tables plus "Random read with 4k block
//!   size. NVMe IRQ affinity is managed by the kernel with one vector per CPU", and a 4-drive
//!   table with interrupts per second;
//! * "Re: [PATCH 00/15] ...", Jacob Pan, 12 Feb 2024 (the reply): a repeat of the 4-drive run.
//!
//! Every prediction uses `PostedMsiParams::fit_pan_2023()` unchanged. Each test states the
//! configuration it models, its tolerance and why; where the model cannot reach a figure the
//! test asserts the gap, so that it is written down and a model change that closes or widens
//! it shows up.

use models::x86::posted_msi::{
    CapSemantics, MsiMode, MsiRunConfig, MsiRunReport, PostedMsiParams, SOURCES_MAX, run_msi,
};
use sim::SimDuration;

/// The RFC's loop-cap table ("Performance data (on DSA with MEMFILL)"): MaxLoop, IRQ/s.
const CAP_TABLE: [(u32, f64); 5] =
    [(2, 6_157_107.0), (3, 6_226_611.0), (4, 6_557_081.0), (5, 6_629_683.0), (6, 6_662_425.0)];

/// Tolerance on a ratio of two rows of the cap table: 3 %.
///
/// Why: the mechanism has diminishing returns in the cap (each extra pass adds the same
/// `pir_scan + k·handler` time and the same k calls to a cycle whose fixed part is already
/// shared), and the RFC says so ("coalescing more than 3 loops yields diminishing benefits").
/// Yet the table's cap-3 row lies 2.12 % below the chord of its cap-2 and cap-4 rows
/// (1.0113 against (1 + 1.0650) / 2 = 1.0325). For any concave truth t, the measured m = t·(1 + e)
/// gives e3 − (e2 + e4)/2 ≤ −0.0212, so some row is off by at least 1.06 % and a ratio of two
/// rows by up to 2.1 %: that is the table's own spread, with no repeat runs published to say
/// more. The remaining 0.9 % is for what the model leaves out that changes with the number of
/// passes (PIR cache-line contention, folded into a constant `pir_scan`; a timer tick landing
/// in a longer demux loop).
const CAP_RATIO_TOLERANCE: f64 = 0.03;

/// The RFC's NVMe table: FIO libaio 4K random read, Samsung PM174x Gen5 drives on one Sapphire
/// Rapids socket, million IOPS per disk, remappable (before) and posted (after).
const NVME_REMAPPABLE: [(u32, f64); 3] = [(2, 1.991), (4, 1.136), (8, 0.834)];
const NVME_POSTED: [(u32, f64); 2] = [(4, 2.023), (8, 1.943)];

/// Tolerance on a ratio of two NVMe figures: 10 %.
///
/// Why: the same author published what reads as one 4-drive set-up (PM174x on one x16 slot,
/// libaio 4K random read, CPUs fixed at 2.7 GHz where stated) three times: remappable 6.231 / 6.348 / 6.475 M IOPS and posted
/// 8.936 / 8.295 / 8.778 M (v2's table, the reply's table, v2's block-size table), i.e.
/// posted/remappable gains of 1.434, 1.307 and 1.356: a 9.7 % spread for one ratio of one
/// set-up. The RFC's table gives one run per cell, so its ratios can be off by that much.
const NVME_RATIO_TOLERANCE: f64 = 0.10;

fn fit() -> PostedMsiParams {
    PostedMsiParams::fit_pan_2023()
}

/// Demux passes per notification at saturation (every pass finds every vector).
fn passes(p: PostedMsiParams) -> u32 {
    p.cap_semantics.passes_before_clear(p.loop_cap) + 1
}

/// The closed form at saturation with `k` vectors, after checking the model's own simulation
/// against it: saturation makes the CPU's cycle periodic (one notification = `passes·k` handler
/// calls in posted mode, one call per interrupt in remappable mode), so the calls counted in a
/// window differ from rate × window by less than one cycle's calls.
///
/// Each source offers 200 M MSI/s (mean gap 5 ns) rather than `saturating`'s 50 M: the closed
/// form assumes every pass finds every bit set, and with one source a 104 ns pass finds its bit
/// clear with probability e^(−104/20) = 0.55 % at 50 M/s (the simulation then falls 0.15 %
/// short) but e^(−104/5) < 1e-9 at 200 M/s.
fn saturated(p: PostedMsiParams, mode: MsiMode, k: u32) -> f64 {
    let config = MsiRunConfig { source_gap_mean: SimDuration::from_ns(5), ..MsiRunConfig::saturating(mode, k, 1) };
    let r = run_msi(p, config).expect("a valid configuration");
    let closed = p.saturation_irq_per_s(mode, k);
    let per_cycle = match mode {
        MsiMode::Remappable => 1.0,
        MsiMode::Posted => f64::from(passes(p) * k),
    };
    let expected = closed * config.window.as_secs_f64();
    let calls = r.window.handler_calls as f64;
    assert!(
        (calls - expected).abs() < per_cycle,
        "{mode:?}, {k} vectors, cap {}: {calls} calls in the window, closed form {expected:.2}",
        p.loop_cap
    );
    closed
}

fn rel(predicted: f64, published: f64) -> f64 {
    predicted / published - 1.0
}

/// The cap table's trend at saturation: two sources (the DSA test pins two work queues' IRQs
/// to one CPU), the RFC's cap reading (P = cap + 1 passes), the fitted costs. The table's
/// level (6.23 M at cap 3) is not the fitted pair's 8.987 M at the same cap, so its
/// configuration differs; [`the_cap_tables_level_is_not_a_number_of_saturating_sources`]
/// shows which differences the model can represent. Under a uniform slow-down of every cost
/// (another clock, another build) the ratios below do not change, so they are predictions
/// whatever the level.
///
/// Predicted (exact, from the module docs' arithmetic: rate = 2P / (100 + 198P) per ns):
/// cap 3 / cap 2 = (8/892)/(6/694) = 1.0374, cap 4: 1.0612, cap 5: 1.0776, cap 6: 1.0897.
/// Published: 1.0113, 1.0650, 1.0768, 1.0821. Off by +2.6 %, −0.4 %, +0.1 %, +0.7 %.
#[test]
fn loop_cap_trend_matches_the_published_ratios_at_saturation() {
    let at = |cap: u32| saturated(fit().with_loop_cap(cap, CapSemantics::Rfc2023), MsiMode::Posted, 2);
    let base = at(2);
    let published_base = CAP_TABLE[0].1;
    for &(cap, published) in &CAP_TABLE[1..] {
        let p = f64::from(cap + 1);
        let exact = (2.0 * p / (100.0 + 198.0 * p)) / (6.0 / 694.0);
        let predicted = at(cap) / base;
        assert!((predicted / exact - 1.0).abs() < 1e-12, "cap {cap}: closed form {predicted} vs {exact}");
        let published = published / published_base;
        let off = rel(predicted, published);
        println!("cap {cap}/2: predicted {predicted:.4}, published {published:.4} ({:+.2} %)", off * 100.0);
        assert!(off.abs() <= CAP_RATIO_TOLERANCE, "cap {cap}: {predicted:.4} vs {published:.4}");
    }
}

/// The same table rejects the merged kernel's reading of the cap (P = cap passes): the RFC
/// code that produced it runs cap passes before the final one, and the model agrees only in
/// that reading. Merged predictions: 1.0720, 1.1121, 1.1376, 1.1553 (+6.0 %, +4.4 %, +5.6 %,
/// +6.8 %), each outside the 3 % tolerance.
#[test]
fn the_cap_table_rejects_the_merged_reading_of_the_cap() {
    let at = |cap: u32| fit().with_loop_cap(cap, CapSemantics::Merged).saturation_irq_per_s(MsiMode::Posted, 2);
    for &(cap, published) in &CAP_TABLE[1..] {
        let p = f64::from(cap);
        let exact = (2.0 * p / (100.0 + 198.0 * p)) / (4.0 / 496.0);
        let predicted = at(cap) / at(2);
        assert!((predicted / exact - 1.0).abs() < 1e-12, "cap {cap}: {predicted} vs {exact}");
        let off = rel(predicted, published / CAP_TABLE[0].1);
        assert!(off > CAP_RATIO_TOLERANCE, "cap {cap}: merged reading {predicted:.4} is {off:+.4} off");
    }
}

/// What configuration could give the table's level with the fitted costs?
///
/// * Not another number of saturating sources: at saturation the rate rises with the number
///   of vectors k (the notification is shared by more calls), so its minimum over 1..=64 is
///   one source, 4 / 516 ns = 7.752 M/s at cap 3 (RFC reading), already 24 % above the
///   table's 6.227 M.
/// * A uniform slow-down of every cost by c (a lower clock) scales every rate by 1/c and
///   leaves every ratio unchanged; c = 8.969 / 6.227 = 1.44 would give the table's level.
///   Under that reading the ratios of
///   [`loop_cap_trend_matches_the_published_ratios_at_saturation`] are the prediction.
/// * A non-saturating offered rate: see [`a_non_saturating_offered_rate_would_flatten_the_trend`].
#[test]
fn the_cap_tables_level_is_not_a_number_of_saturating_sources() {
    let p = fit().with_loop_cap(3, CapSemantics::Rfc2023);
    let rates: Vec<f64> = (1..=SOURCES_MAX).map(|k| p.saturation_irq_per_s(MsiMode::Posted, k)).collect();
    assert!(rates.windows(2).all(|w| w[0] < w[1]), "the saturated rate rises with the number of vectors");
    assert!((rates[0] / (4e12 / 516_000.0) - 1.0).abs() < 1e-12, "one source: {}", rates[0]);
    // 24.5 % above: far outside any spread the table shows (its ratios need 3 %).
    assert!(rel(rates[0], CAP_TABLE[1].1) > 0.2, "{} vs the table's {}", rates[0], CAP_TABLE[1].1);
    // Every cost × 1.44 (exact in picoseconds): same ratios, level 8.969 / 1.44 = 6.228 M.
    let scale = |d: SimDuration| SimDuration::from_ps(d.as_ps() * 144 / 100);
    let slow = |q: PostedMsiParams| PostedMsiParams {
        notification: scale(q.notification),
        irq_entry_exit: scale(q.irq_entry_exit),
        handler: scale(q.handler),
        pir_scan: scale(q.pir_scan),
        eoi: scale(q.eoi),
        ..q
    };
    let rate =
        |q: PostedMsiParams, cap| q.with_loop_cap(cap, CapSemantics::Rfc2023).saturation_irq_per_s(MsiMode::Posted, 2);
    for cap in 3..=6 {
        let (fast, slowed) = (rate(fit(), cap) / rate(fit(), 2), rate(slow(fit()), cap) / rate(slow(fit()), 2));
        assert!((fast / slowed - 1.0).abs() < 1e-12, "cap {cap}: {fast} vs {slowed}");
    }
    let slowed_cap3 = saturated(slow(fit()), MsiMode::Posted, 2);
    assert!((slowed_cap3 / (8e12 / (892_000.0 * 1.44)) - 1.0).abs() < 1e-12, "{slowed_cap3}");
}

/// The other reading of the level: the same costs and two Poisson sources whose total offered
/// rate is just what makes cap 2 handle the table's 6.157 M calls/s (found by bisection:
/// about 8.6 M/s offered; the rest merge into bits already set). The CPU then idles between
/// notifications and a longer loop has less to find, so the model predicts a flatter trend:
/// caps 3..6 / cap 2 ≈ 1.019, 1.030, 1.036, 1.039 against the published 1.011, 1.065, 1.077,
/// 1.082. Cap 3 agrees (+0.8 %), caps 5 and 6 fall outside the 3 % tolerance (−3.8 %, −4.0 %;
/// cap 4 is −3.3 %): the table's trend rejects this reading and supports saturation on a
/// slower set-up.
///
/// Sampling: each run counts about 123,000 calls in a 20 ms window; the caps share the seed
/// and thus the arrival times (each source draws from its own stream), and seeds 1 to 4 gave
/// each ratio within 0.1 % of each other. Caps 5 and 6 are asserted outside the tolerance by
/// a further 0.5 %, five times that spread.
#[test]
fn a_non_saturating_offered_rate_would_flatten_the_trend() {
    let run = |cap: u32, offered_total: f64| -> MsiRunReport {
        let mut config = MsiRunConfig::saturating(MsiMode::Posted, 2, 1);
        config.source_gap_mean = SimDuration::from_ps((2e12 / offered_total).round() as u64);
        config.window = SimDuration::from_ms(20);
        run_msi(fit().with_loop_cap(cap, CapSemantics::Rfc2023), config).expect("a valid configuration")
    };
    let (mut lo, mut hi) = (CAP_TABLE[0].1, 50e6);
    for _ in 0..25 {
        let mid = (lo * hi).sqrt();
        if run(2, mid).irq_per_s < CAP_TABLE[0].1 { lo = mid } else { hi = mid }
    }
    let offered = (lo * hi).sqrt();
    let base = run(2, offered).irq_per_s;
    assert!((base / CAP_TABLE[0].1 - 1.0).abs() < 0.001, "bisection: {base} at {offered}");
    let ratios: Vec<f64> = (3..=6).map(|cap| run(cap, offered).irq_per_s / base).collect();
    println!("offered {:.3} M/s: caps 3..6 / cap 2 = {ratios:.4?}", offered / 1e6);
    let published = |cap: u32| CAP_TABLE[(cap - 2) as usize].1 / CAP_TABLE[0].1;
    assert!(rel(ratios[0], published(3)).abs() <= CAP_RATIO_TOLERANCE, "cap 3: {}", ratios[0]);
    for cap in [5, 6] {
        let off = rel(ratios[(cap - 3) as usize], published(cap));
        assert!(off < -(CAP_RATIO_TOLERANCE + 0.005), "cap {cap}: {off:+.4} should reject this reading");
    }
}

/// The NVMe configuration the model can represent, per CPU: v2 says "NVMe IRQ affinity is
/// managed by the kernel with one vector per CPU", so each disk has one queue (one MSI-X
/// vector) on every CPU. The RFC does not say which CPUs FIO ran on or how many; the model is
/// run at the two ends:
/// * shared: all N disks complete on the same C CPUs, so each CPU holds N vectors (k = N) and
///   per-disk IOPS = C · rate(k = N) / N;
/// * per-disk CPUs: each disk's jobs run on C CPUs of their own (as in the reply's set-up, 8
///   CPUs per disk), each CPU holds its own disk's vector (k = 1) and per-disk IOPS =
///   C · rate(k = 1), the same for every N by construction.
///
/// Common to both: one MSI per IO (v2's 4-drive table measured 0.917 interrupts per IO
/// remappable, 0.828 posted; the model has no CQE batching), the fitted `handler` as the NVMe
/// handler (its cost is unpublished), and every CPU busy with interrupts: the interrupt-bound
/// limit the RFC says remappable mode hits. C is unknown and cancels in every ratio, which is
/// why only ratios are asserted: the model cannot predict an absolute IOPS figure.
fn shared_per_disk(mode: MsiMode, disks: u32) -> f64 {
    saturated(fit(), mode, disks) / f64::from(disks)
}

fn published(table: &[(u32, f64)], disks: u32) -> f64 {
    table.iter().find(|r| r.0 == disks).expect("a published row").1
}

/// Remappable per-disk IOPS against the number of disks.
///
/// Predicted: remappable capacity does not depend on how many vectors a CPU holds
/// (1 / 194 ns for any k; the simulation is checked at k = 2, 4, 8), so the shared placement
/// gives per-disk ∝ 1/N: 4 vs 2 disks 0.5, 8 vs 2 0.25, 8 vs 4 0.5; per-disk CPUs give 1.
/// Published: 0.571, 0.419, 0.734.
///
/// Finding: the direction (falls with disks) needs the shared placement, but the published
/// fall is shallower than 1/N by more than the 10 % tolerance at every step (−12 %, −40 %,
/// −32 %): the socket's total rises 3.98 → 4.54 → 6.67 M IOPS where an interrupt-bound set
/// of CPUs would hold it constant. v2's 4-drive table shows the CPUs are not the whole story
/// (55.5 % busy in remappable mode). The RFC's own explanation, a notification that "requires
/// strong ordering w.r.t DMA", is a cost outside the CPU's time; the model charges delivery
/// to the CPU only. The measured fall lies strictly between the two placements.
#[test]
fn nvme_remappable_per_disk_iops_fall_more_steeply_in_the_model_than_measured() {
    for (n, m) in [(4, 2), (8, 2), (8, 4)] {
        let shared = shared_per_disk(MsiMode::Remappable, n) / shared_per_disk(MsiMode::Remappable, m);
        let measured = published(&NVME_REMAPPABLE, n) / published(&NVME_REMAPPABLE, m);
        println!("remappable {n} vs {m} disks: shared {shared:.4}, per-disk CPUs 1, published {measured:.4}");
        assert!((shared - f64::from(m) / f64::from(n)).abs() < 1e-12, "{n}/{m}: {shared}");
        assert!(shared < measured && measured < 1.0, "{n}/{m}: the measurement lies between the placements");
        assert!(rel(shared, measured) < -NVME_RATIO_TOLERANCE, "{n}/{m}: {shared:.4} vs {measured:.4} (the gap)");
        assert!(rel(1.0, measured) > NVME_RATIO_TOLERANCE, "{n}/{m}: per-disk CPUs miss it too");
    }
}

/// Posted over remappable per-disk IOPS at the same number of disks.
///
/// Predicted (shared, k = N, RFC cap 3 so P = 4): gain = 4N·194 / (140 + 376N):
/// 4 disks 3104/1644 = 1.888, 8 disks 6208/3148 = 1.972. Published: 2.023/1.136 = 1.781 and
/// 1.943/0.834 = 2.330. Per-disk CPUs (k = 1) give 776/516 = 1.504 at any N (−16 % and
/// −35 %: rejected).
///
/// Result: at 4 disks the model is +6.0 % off, inside the 10 % tolerance. At 8 disks it is
/// −15.4 % off, and no number of vectors closes the gap: as k grows the notification is
/// shared by ever more calls and the gain tends to (F + h)/h = 194/94 = 2.064, itself 11.4 %
/// below 2.330; a heavier NVMe handler would only lower that bound. The 8-disk gain needs a
/// per-notification cost that grows with the disks on the socket, which the model has not.
#[test]
fn nvme_posted_gain_agrees_at_four_disks_and_exceeds_the_models_bound_at_eight() {
    let gain = |k: u32| saturated(fit(), MsiMode::Posted, k) / saturated(fit(), MsiMode::Remappable, k);
    let (g4, g8, own) = (gain(4), gain(8), gain(1));
    assert!((g4 / (3104.0 / 1644.0) - 1.0).abs() < 1e-12, "{g4}");
    assert!((g8 / (6208.0 / 3148.0) - 1.0).abs() < 1e-12, "{g8}");
    assert!((own / (776.0 / 516.0) - 1.0).abs() < 1e-12, "{own}");
    let measured = |n| published(&NVME_POSTED, n) / published(&NVME_REMAPPABLE, n);
    let (m4, m8) = (measured(4), measured(8));
    println!("gain at 4 disks: {g4:.4} vs {m4:.4}; at 8: {g8:.4} vs {m8:.4}; per-disk CPUs {own:.4}");
    assert!(rel(g4, m4).abs() <= NVME_RATIO_TOLERANCE, "4 disks: {g4:.4} vs {m4:.4}");
    assert!(rel(g8, m8) < -NVME_RATIO_TOLERANCE, "8 disks: {g8:.4} vs {m8:.4} (the gap)");
    assert!(rel(own, m4) < -NVME_RATIO_TOLERANCE, "per-disk CPUs at 4 disks: {own:.4} vs {m4:.4}");
    let p = fit();
    let (f, h) = ((p.notification + p.irq_entry_exit + p.eoi).as_ps() as f64, p.handler.as_ps() as f64);
    let bound = (f + h) / h;
    let g64 = p.saturation_irq_per_s(MsiMode::Posted, SOURCES_MAX) / p.saturation_irq_per_s(MsiMode::Remappable, 1);
    assert!(g8 < g64 && g64 < bound, "the gain rises towards {bound}: {g8} {g64}");
    assert!(rel(bound, m8) < -NVME_RATIO_TOLERANCE, "even unlimited vectors miss 8 disks' {m8:.4}: {bound:.4}");
}

/// Posted per-disk IOPS from 4 to 8 disks: published 1.943/2.023 = 0.960 ("posted holds").
///
/// Predicted: shared 0.5 · (32/3148) / (16/1644) = 0.522 (interrupt-bound CPUs shared by
/// twice the disks; more vectors per pass only partly make up for it); per-disk CPUs 1.000.
/// Per-disk CPUs agree (+4.1 %), but that placement predicts no fall at all in remappable
/// mode (above), and the shared one, which predicts the fall, misses by −46 %. No one
/// placement gives both trends. The published posted figures sit at about 2.0 M per disk, as
/// does remappable at 2 disks, which looks like the drive's own limit; the model has no
/// device limit. A finding, asserted as the gap.
#[test]
fn nvme_posted_per_disk_iops_hold_only_where_remappable_would_not_fall() {
    let measured = published(&NVME_POSTED, 8) / published(&NVME_POSTED, 4);
    let shared = shared_per_disk(MsiMode::Posted, 8) / shared_per_disk(MsiMode::Posted, 4);
    println!("posted 8 vs 4 disks: shared {shared:.4}, per-disk CPUs 1, published {measured:.4}");
    assert!((shared / (0.5 * (32.0 / 3148.0) / (16.0 / 1644.0)) - 1.0).abs() < 1e-12, "{shared}");
    assert!(rel(1.0, measured).abs() <= NVME_RATIO_TOLERANCE, "per-disk CPUs: 1 vs {measured:.4}");
    assert!(rel(shared, measured) < -NVME_RATIO_TOLERANCE, "{shared:.4} vs {measured:.4} (the gap)");
}
