//! The kernel's views of a run (`Platform::tables`): `/proc/interrupts` of the host and of
//! each guest, and the rtla `timerlat hist` of end-to-end latency, checked against exact
//! counts: closed forms for constant-rate sources, and the counters that count the same
//! handler runs and deliveries independently (delivered, merged IRR raises, the handler and
//! entry stages, wake-ups, doorbells, VFIO's forwards).

mod common;
use common::{arm_its, counter, one_device, run_to};

use models::arm::its::GicVersion;
use models::ids::CpuId;
use models::iommu::posted::MsiDeliveryMode;
use models::kernel::KernelVersion;
use models::pci::store::StoreKind;
use models::platform::*;
use models::workload::ArrivalParams;
use sim::{EventQueue, SimDuration};

/// One guest of `vcpus` vCPUs on pCPUs `pcpus`, with the device assigned to it.
fn with_guest(mut params: PlatformParams, vcpus: u32, pcpus: &[u32]) -> PlatformParams {
    params.guests = vec![GuestParams {
        name: "vm0".into(),
        vcpu_count: vcpus,
        pcpus: pcpus.iter().map(|&c| CpuId(c)).collect(),
        host_bursts: None,
        posted: common::posted_costs(),
        remapped_forward: SimDuration::from_ns(1_500),
        kvm: common::kvm_free_exits(),
        migration: None,
        ipi: None,
    }];
    params.devices[0].assigned_to = Some(0);
    params
}

/// [`common::arm_its`] on kernel `version` (the chip names change with it).
fn arm_its_on(queue_count: u32, cpus: u32, version: KernelVersion) -> PlatformParams {
    let mut params = arm_its(queue_count, cpus);
    params.kernel.version = version;
    params
}

fn stage_count(p: &Platform, name: &str) -> u64 {
    p.metrics().snapshot().histograms.into_iter().find(|h| h.info.name == name).unwrap().count
}

/// The text of the table whose name starts with `prefix`.
fn table(p: &Platform, prefix: &str) -> String {
    let tables = p.tables();
    let found = tables.iter().find(|(name, _)| name.starts_with(prefix));
    found
        .unwrap_or_else(|| panic!("no table {prefix}: {:?}", tables.iter().map(|t| &t.0).collect::<Vec<_>>()))
        .1
        .clone()
}

fn host_table(p: &Platform) -> String {
    table(p, "/proc/interrupts at the end")
}

fn histogram_table(p: &Platform) -> String {
    table(p, "End-to-end latency per CPU")
}

/// A `/proc/interrupts` read back: the CPU columns, and each line's label (IRQ number or
/// summary symbol), counts and the rest of the line.
struct Proc {
    cpus: Vec<u32>,
    lines: Vec<(String, Vec<u64>, String)>,
    comments: Vec<String>,
}

fn parse_proc(text: &str) -> Proc {
    let mut rows = text.lines();
    let cpus: Vec<u32> =
        rows.next().unwrap().split_whitespace().map(|c| c.strip_prefix("CPU").unwrap().parse().unwrap()).collect();
    let (mut lines, mut comments) = (Vec::new(), Vec::new());
    for row in rows {
        if let Some(comment) = row.strip_prefix("# ") {
            comments.push(comment.to_owned());
            continue;
        }
        let (label, rest) = row.split_once(':').unwrap();
        let mut words = rest.split_whitespace();
        let counts: Vec<u64> = words.by_ref().take(cpus.len()).map(|w| w.parse().unwrap()).collect();
        lines.push((label.trim().to_owned(), counts, words.collect::<Vec<_>>().join(" ")));
    }
    Proc { cpus, lines, comments }
}

impl Proc {
    /// The lines of interrupts (not the summary lines).
    fn irqs(&self) -> impl Iterator<Item = &(String, Vec<u64>, String)> {
        self.lines.iter().filter(|(label, _, _)| label.parse::<u32>().is_ok())
    }

    /// Every count of the interrupts' lines.
    fn irq_total(&self) -> u64 {
        self.irqs().flat_map(|(_, c, _)| c).sum()
    }

    fn summary(&self, symbol: &str) -> Option<&Vec<u64>> {
        self.lines.iter().find(|(label, _, _)| label == symbol).map(|(_, c, _)| c)
    }
}

/// The `count:` of the histogram's `ALL:` section, and of its CPU columns.
fn histogram_counts(text: &str) -> (u64, Vec<u64>) {
    let lines: Vec<&str> = text.lines().collect();
    let all = lines.iter().position(|l| l.starts_with("ALL:")).unwrap();
    let count = |line: &str| -> Vec<u64> {
        line.strip_prefix("count:").unwrap().split_whitespace().map(|w| w.parse().unwrap()).collect()
    };
    let per_cpu = count(lines.iter().find(|l| l.starts_with("count:")).unwrap());
    (count(lines[all + 1])[0], per_cpu)
}

/// How many of the instants φ + k·gap + after lie at or before `end`.
fn count_by(phase: u64, gap: u64, after: u64, end: u64) -> u64 {
    if end < phase + after { 0 } else { (end - phase - after) / gap + 1 }
}

fn first_raise(q: &EventQueue<Event>) -> u64 {
    q.iter().find_map(|(t, e)| matches!(e, Event::Raise { .. }).then(|| t.as_ps())).unwrap()
}

#[test]
fn a_constant_source_pinned_to_one_cpu_is_counted_there_exactly() {
    // One queue at 1 kHz on CPU 1 of 2, remapped: each interrupt is done 500 + 100 + 1,000
    // + 50 ns after its raise, alone on its CPU (no merging): one handler run each.
    let mut params = one_device(1, 2, true);
    params.devices[0].affinity = vec![CpuId(1)];
    let (mut p, mut q) = Platform::new(&params, 1);
    let phase = first_raise(&q);
    let end = sim::PS_PER_S / 100;
    run_to(&mut p, &mut q, end);
    let n = count_by(phase, 1_000_000_000, 1_650_000, end);
    assert_eq!(n, counter(&p, "interrupt.delivered_count"));
    assert_eq!(n, 10);
    let expected = concat!(
        "           CPU0       CPU1       \n",
        " 24:          0         10 IR-PCI-MSIX-0000:01:00.0   0-edge      dq0\n",
    );
    assert_eq!(host_table(&p), expected);
    // 1.65 us, truncated to whole microseconds as rtla prints them.
    let expected = concat!(
        "# RTLA timerlat histogram layout: end-to-end latency of each delivered interrupt (device raise to EOI done), by the CPU whose handler delivered it (a guest's interrupt: the pCPU of its vCPU)\n",
        "# Time unit is microseconds (us)\n",
        "Index   IRQ-001\n",
        "1            10 \n",
        "over:         0 \n",
        "count:       10 \n",
        "min:          1 \n",
        "avg:          1 \n",
        "max:          1 \n",
        "ALL:        IRQ\n",
        "count:       10 \n",
        "min:          1 \n",
        "avg:          1 \n",
        "max:          1 \n",
    );
    assert_eq!(histogram_table(&p), expected);
}

/// Bursts heavy enough for raises to merge in the LAPIC's IRR, then a silence long enough
/// for everything to drain: 8 queues on 2 CPUs at 1 M/s each for 100 us of every ms (about
/// 400 interrupts of 1.05 us per CPU and burst, four times what the CPU can take while it
/// lasts).
fn bursts(queueing: HostQueueing) -> (Platform, EventQueue<Event>) {
    let mut params = one_device(8, 2, false);
    params.queueing = queueing;
    params.devices[0].arrival =
        ArrivalParams::OnOff { rate_per_s: 1e6, on: SimDuration::from_us(100), off: SimDuration::from_us(900) };
    let (mut p, mut q) = Platform::new(&params, 3);
    run_to(&mut p, &mut q, 2_950_000_000); // late in the third silence
    let c = p.conservation(&q);
    assert!(c.holds(), "{c:?}");
    assert_eq!((c.in_transit, c.at_cpu, c.lost), (0, 0, 0), "drained: every raise is done");
    (p, q)
}

#[test]
fn merged_irr_raises_count_once_per_handler_run() {
    let (p, _) = bursts(HostQueueing::Lapic);
    let delivered = counter(&p, "interrupt.delivered_count");
    let merged = counter(&p, "interrupt.merged_irr_count");
    assert!(merged > 1_000, "the bursts merge raises: {merged}");
    let table = parse_proc(&host_table(&p));
    assert_eq!(table.cpus, [0, 1]);
    assert_eq!(table.irqs().count(), 8);
    // One count per handler run: every run started has finished, and served one raise and
    // the raises merged into its bit.
    assert_eq!(table.irq_total(), stage_count(&p, "latency.handler_ps"));
    assert_eq!(table.irq_total(), delivered - merged);
    // Each interrupt on the CPU it targets, nowhere else.
    for (q, (label, counts, rest)) in table.irqs().enumerate() {
        assert_eq!(label, &(24 + q).to_string());
        assert!(rest.ends_with(&format!("-edge dq{q}")), "{rest}");
        let cpu = p.queue_target(models::ids::QueueId(q as u32)).unwrap().0.0 as usize;
        assert!(counts[cpu] > 0 && counts[1 - cpu] == 0, "{label}: {counts:?}");
    }
    // The histogram counts raises, not runs: every delivered interrupt.
    let (all, per_cpu) = histogram_counts(&histogram_table(&p));
    assert_eq!(all, delivered);
    assert_eq!(per_cpu.iter().sum::<u64>(), delivered);
}

#[test]
fn fifo_cpus_run_one_handler_per_raise() {
    let (p, _) = bursts(HostQueueing::Fifo);
    let delivered = counter(&p, "interrupt.delivered_count");
    let table = parse_proc(&host_table(&p));
    assert_eq!(table.irq_total(), delivered);
    assert_eq!(histogram_counts(&histogram_table(&p)).0, delivered);
}

#[test]
fn posted_msi_counts_each_demuxed_handler_and_each_notification() {
    let mut params = one_device(4, 1, true);
    params.remapping.as_mut().unwrap().posted_msi =
        Some(PostedMsiConfig { loop_cap: 3, pir_scan: SimDuration::from_ns(10) });
    params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 300_000.0 };
    let (mut p, mut q) = Platform::new(&params, 5);
    run_to(&mut p, &mut q, sim::PS_PER_S / 100);
    let table = parse_proc(&host_table(&p));
    // Raises merged in the PIR never reach a handler; every other one is one handler call.
    assert!(counter(&p, "interrupt.merged_pir_count") > 0);
    assert_eq!(table.irq_total(), counter(&p, "interrupt.delivered_count"));
    // PMN: one per notification taken (each one's entry is recorded once).
    let pmn = table.summary("PMN").unwrap();
    assert_eq!(pmn.iter().sum::<u64>(), stage_count(&p, "latency.irq_entry_ps"));
    assert!(host_table(&p).contains("  Posted MSI notification event\n"));
    assert!(table.summary("PIW").is_none(), "no guests, no wake-up line");
}

#[test]
fn posted_guest_interrupts_show_in_the_guest_and_wakeups_on_the_host() {
    // Two queues of a device assigned to a 2-vCPU guest on pCPUs 1 and 2 of 3.
    let (mut p, mut q) = Platform::new(&with_guest(one_device(2, 3, true), 2, &[1, 2]), 1);
    run_to(&mut p, &mut q, sim::PS_PER_S / 100);
    let delivered = counter(&p, "interrupt.delivered_count");
    assert_eq!(delivered, 20);
    let host = parse_proc(&host_table(&p));
    // VFIO's host interrupts exist but run no handler: they were posted.
    let actions: Vec<&str> = host.irqs().map(|(_, _, rest)| rest.as_str()).collect();
    assert_eq!(
        actions,
        [
            "IR-PCI-MSIX-0000:01:00.0 0-edge vfio-msix[0](0000:01:00.0)",
            "IR-PCI-MSIX-0000:01:00.0 1-edge vfio-msix[1](0000:01:00.0)"
        ]
    );
    assert_eq!(host.irq_total(), 0);
    // PIW: a wake-up on the vCPU's pCPU for every interrupt (the vCPU halts in between).
    let piw = host.summary("PIW").unwrap();
    assert_eq!(piw.iter().sum::<u64>(), counter(&p, "kvm.posted_wakeup_count"));
    assert_eq!(piw[0], 0);
    assert!(piw[1] > 0 && piw[2] > 0);
    // The guest ran every handler, each queue on its own vCPU.
    let guest = parse_proc(&table(&p, "/proc/interrupts inside guest vm0"));
    assert_eq!(guest.cpus, [0, 1]);
    let lines: Vec<(&str, &[u64], &str)> = guest.irqs().map(|(l, c, r)| (l.as_str(), &c[..], r.as_str())).collect();
    assert_eq!(
        lines,
        [
            ("24", &[10, 0][..], "PCI-MSIX-0000:01:00.0 0-edge dq0"),
            ("25", &[0, 10][..], "PCI-MSIX-0000:01:00.0 1-edge dq1")
        ]
    );
    // The latency of a guest's interrupt counts on the pCPU of its vCPU.
    let (all, per_cpu) = histogram_counts(&histogram_table(&p));
    assert_eq!((all, per_cpu), (delivered, vec![10, 10]));
    assert!(histogram_table(&p).contains("Index   IRQ-001   IRQ-002\n"));
}

#[test]
fn forwarded_guest_interrupts_run_vfio_on_the_host() {
    let mut params = with_guest(one_device(1, 2, true), 1, &[1]);
    params.devices[0].guest_msi =
        GuestMsiParams { mode: MsiDeliveryMode::Fixed, destinations: 2, vector_hashing: false };
    let (mut p, mut q) = Platform::new(&params, 1);
    run_to(&mut p, &mut q, sim::PS_PER_S / 100);
    let host = parse_proc(&host_table(&p));
    let forwarded = counter(&p, "kvm.remapped_fallback_count");
    assert_eq!(forwarded, 10);
    assert_eq!(host.irq_total(), forwarded);
    assert_eq!(host.irqs().next().unwrap().1, [0, 10], "VFIO's handler on the vCPU's pCPU");
    let guest = parse_proc(&table(&p, "/proc/interrupts inside guest vm0"));
    assert_eq!(guest.irq_total(), counter(&p, "interrupt.delivered_count"));
    // No wake-up vector: KVM's software injection wakes the vCPU directly.
    assert_eq!(host.summary("PIW").unwrap(), &[0, 0]);
}

#[test]
fn gicv4_doorbells_are_host_interrupts_of_their_own() {
    for (version, chip) in [(GicVersion::V4_0, "GICv4-vpe"), (GicVersion::V4_1, "GICv4.1-vpe")] {
        let mut params = with_guest(arm_its_on(1, 2, KernelVersion::new(6, 11)), 1, &[1]);
        params.gic.as_mut().unwrap().version = version;
        let (mut p, mut q) = Platform::new(&params, 1);
        run_to(&mut p, &mut q, sim::PS_PER_S / 100);
        let host = parse_proc(&host_table(&p));
        let lines: Vec<(&str, &[u64], &str)> = host.irqs().map(|(l, c, r)| (l.as_str(), &c[..], r.as_str())).collect();
        // The VM's doorbell (allocated at its vgic init) before VFIO's vector (allocated when
        // the guest enables it); a vLPI runs no host handler.
        let doorbells = counter(&p, "kvm.vlpi_doorbell_count");
        assert_eq!(doorbells, 10, "{version:?}: the vCPU halts between interrupts");
        assert_eq!(
            lines,
            [
                ("24", &[0, doorbells][..], format!("{chip} 0 Edge vcpu").as_str()),
                ("25", &[0, 0][..], "ITS-PCI-MSIX-0000:01:00.0 0 Edge vfio-msix[0](0000:01:00.0)"),
            ]
        );
        let guest = parse_proc(&table(&p, "/proc/interrupts inside guest vm0"));
        assert_eq!(guest.irq_total(), counter(&p, "interrupt.delivered_count"));
        assert!(host.summary("PIW").is_none(), "no x86 summary lines on ARM");
    }
}

#[test]
fn chip_names_and_hwirqs_follow_the_kernel_release() {
    let line = |params: &PlatformParams| {
        let (p, _) = Platform::new(params, 1);
        let table = host_table(&p);
        table.lines().nth(1).unwrap().split_once(':').unwrap().1.trim_start_matches([' ', '0']).to_owned()
    };
    let with = |mut params: PlatformParams, version: (u16, u16)| {
        params.kernel.version = KernelVersion::new(version.0, version.1);
        params
    };
    // x86: one chip per device from 6.2 (hwirq: the MSI-X index); before, one PCI-MSI
    // domain (hwirq: the index | requester id 0x100 << 11).
    assert_eq!(line(&with(one_device(1, 1, true), (6, 2))), "IR-PCI-MSIX-0000:01:00.0   0-edge      dq0");
    assert_eq!(line(&with(one_device(1, 1, true), (6, 1))), "IR-PCI-MSI 524288-edge      dq0");
    assert_eq!(line(&with(one_device(1, 1, false), (6, 10))), "PCI-MSIX-0000:01:00.0   0-edge      dq0");
    // ARM: the ITS's per-device domains from 6.11; arm64 prints the trigger.
    assert_eq!(line(&arm_its_on(1, 1, KernelVersion::new(6, 11))), "ITS-PCI-MSIX-0000:01:00.0   0 Edge      dq0");
    assert_eq!(line(&arm_its_on(1, 1, KernelVersion::new(6, 10))), "ITS-MSI 524288 Edge      dq0");
    // Multi-MSI without remapping: one vector shared by every queue, one line, each action.
    let mut shared = one_device(6, 1, false);
    shared.devices[0].store = StoreKind::Msi;
    assert_eq!(line(&shared), "PCI-MSI-0000:01:00.0   0-edge      dq0, dq1, dq2, dq3, … (2 more)");
}

#[test]
fn large_platforms_show_the_busiest_lines_and_columns_and_account_for_the_rest() {
    // 200 queues on 50 CPUs, each CPU's queues at different rates: 64 lines, the busiest.
    let mut params = one_device(200, 50, false);
    params.queueing = HostQueueing::Fifo;
    params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 20_000.0 };
    let (mut p, mut q) = Platform::new(&params, 9);
    run_to(&mut p, &mut q, sim::PS_PER_S / 100);
    let delivered = counter(&p, "interrupt.delivered_count");
    let text = host_table(&p);
    let table = parse_proc(&text);
    assert_eq!((table.cpus.len(), table.irqs().count()), (50, 64));
    let [left_out] = &table.comments[..] else { panic!("{:?}", table.comments) };
    let (head, tail) = left_out.split_once(": ").unwrap();
    assert_eq!(head, "136 IRQs left out (only the 64 busiest are shown)");
    let hidden: u64 = tail.strip_suffix(" interrupts in all").unwrap().parse().unwrap();
    assert_eq!(table.irq_total() + hidden, delivered, "FIFO: one run per delivered interrupt");
    // The lines shown are at least as busy as any left out.
    let least_shown = table.irqs().map(|(_, c, _)| c.iter().sum::<u64>()).min().unwrap();
    assert!(hidden <= 136 * least_shown);

    // 100 queues on 100 CPUs: 64 CPU columns, the busiest; rtla shows the same 64 and its
    // ALL section covers all 100.
    let mut params = one_device(100, 100, false);
    params.queueing = HostQueueing::Fifo;
    params.devices[0].arrival = ArrivalParams::Poisson { rate_per_s: 20_000.0 };
    let (mut p, mut q) = Platform::new(&params, 9);
    run_to(&mut p, &mut q, sim::PS_PER_S / 100);
    let delivered = counter(&p, "interrupt.delivered_count");
    let table = parse_proc(&host_table(&p));
    assert_eq!((table.cpus.len(), table.irqs().count()), (64, 64));
    let hidden_of = |comment: &str| -> u64 {
        comment.rsplit_once(": ").unwrap().1.split_whitespace().next().unwrap().parse().unwrap()
    };
    let [rows, columns] = &table.comments[..] else { panic!("{:?}", table.comments) };
    assert!(rows.starts_with("36 IRQs left out") && columns.starts_with("36 CPUs left out"), "{rows} / {columns}");
    let hist = histogram_table(&p);
    let (all, per_cpu) = histogram_counts(&hist);
    assert_eq!(all, delivered);
    assert_eq!(per_cpu.len(), 64);
    let comment = hist.lines().last().unwrap().strip_prefix("# ").unwrap();
    assert!(comment.starts_with("36 CPUs with samples left out"), "{comment}");
    assert_eq!(per_cpu.iter().sum::<u64>() + hidden_of(comment), delivered);
    // Each queue on its own CPU: the shown columns are the busiest CPUs, the busiest queues.
    assert_eq!(table.irq_total() + hidden_of(columns), delivered);
}
