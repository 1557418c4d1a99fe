//! The kernel's views of a run, filled from the components at its end: the host's
//! `/proc/interrupts`, each guest's, and an rtla `timerlat hist` of the end-to-end latency
//! per CPU (the layouts are in `tables`, the counts in `stats`).
//!
//! # IRQ numbers (our choice, Linux-like)
//! Linux numbers interrupts in the order it allocates their descriptors, from the lowest free
//! number at or above `arch_dynirq_lower_bound`, which on x86 is `gsi_top`, one past the
//! IOAPIC pins: with one 24-pin IOAPIC the first MSI is IRQ 24 ([`FIRST_IRQ`]). We start at
//! 24 on ARM too, where the GIC's IPIs and per-CPU interrupts take the first numbers at
//! boot (we do not model them). The order is the kernel's: the host's own devices in
//! topology order (probed at boot; `pci_alloc_irq_vectors` takes one number per store
//! entry, consecutively), then each VM's vPE doorbells (ARM GICv4, at the VM's vgic init),
//! then the devices assigned to guests (VFIO allocates when the guest enables its vectors).
//! A function none of whose interrupts works at the end of setup (its allocation refused)
//! takes no numbers; a line is shown for every interrupt that worked then, or was handled.
//! Interrupts the model does not have (the IOAPIC's, the timer, IPIs, the IOMMU's own)
//! have no line. Inside a guest, numbers start at 24 too, over its assigned devices
//! (docs/sources.md#irq-numbers, docs/sources.md#default-irq-numbers).
//!
//! # Chip names and hwirqs
//! Since the per-device MSI domains (x86 from 6.2, [`KernelVersion::has_dynamic_msix`]; arm64
//! from 6.11, [`KernelVersion::arm_per_device_msi_domains`]) the chip is named
//! `<parent prefix><template>-<device>` (`msi_create_device_irq_domain` in
//! kernel/irq/msi.c) and the hwirq is the MSI or MSI-X index:
//!
//! | interrupt | per-device domains | before |
//! |---|---|---|
//! | x86 MSI-X, MSI with remapping | `IR-PCI-MSIX-0000:01:00.0`, `IR-PCI-MSI-0000:01:00.0` | `IR-PCI-MSI` |
//! | x86 without remapping (no prefix) | `PCI-MSIX-0000:01:00.0`, `PCI-MSI-0000:01:00.0` | `PCI-MSI` |
//! | ARM ITS | `ITS-PCI-MSIX-0000:01:00.0`, `ITS-PCI-MSI-…` | `ITS-MSI` |
//! | ARM GICv2m | `GICv2m-PCI-MSIX-0000:01:00.0`, `GICv2m-PCI-MSI-…` | `MSI` |
//! | IMS (ours: its chip is the driver's) | `IR-IMS-0000:01:00.0`, `ITS-IMS-…`, `IMS-…` | the same |
//! | a GICv4 vPE's doorbell | `GICv4-vpe` (v4.0), `GICv4.1-vpe` (v4.1) | the same |
//!
//! Before the per-device domains the hwirq is `pci_msi_domain_calc_hwirq`'s: the index | the
//! requester id << 11 (PCI domain 0). An IMS hwirq is the slot in the device's pool (the
//! functions and ADIs sharing a pool take slots in topology order); a doorbell's is the
//! vPE's number. The device is named by its requester id (`0000:BB:DD.F`), which the
//! ADIs of a function share. GICv2m moved to per-device domains after the ITS; we take the
//! same release for both. A guest (no vIOMMU; ARM with a vITS) names its chips the same way
//! at the host's kernel release and sees a device at its host requester id
//! (docs/sources.md#msi-chip-names).
//!
//! # Actions
//! A driver names each queue's action `<device>q<N>`, N the queue's index in its function
//! from 0, which is also its MSI-X index (NVMe names its I/O queues from 1, q0 being the
//! admin queue; no admin queue is modelled, so here q0 is the first I/O queue). Queues that
//! share a vector (more queues than store entries) are the actions of one line: four names,
//! then how many more. VFIO's host action for an assigned vector is `vfio-msix[N](0000:BB:DD.F)`
//! (`vfio-msi[N]` for MSI; drivers/vfio/pci/vfio_pci_intrs.c); `vfio-ims[N]` is ours. KVM's
//! GICv4 doorbell is `vcpu` (`vgic_v4_request_vpe_irq`; docs/sources.md#irq-action-names).
//!
//! # Counts
//! Handler runs that completed, by the CPU they ran on (see `stats`): on the host, the
//! driver's handlers and VFIO's forwards (an interrupt posted into a guest never runs a host
//! handler: its line stays at zero, as on a real host); in a guest, its handler runs by
//! vCPU. x86 summary lines for what the model has: `PIW:` (KVM's posted-interrupt wake-up
//! vector, one per wake-up of a blocked vCPU, on its pCPU) when guests run, and `PMN:` (host
//! posted-MSI notifications) with posted MSI. `PIN:` is left out: a notification to a
//! running vCPU is taken in guest mode and never reaches the host's handler in the model.
//! Up to [`COLUMNS_MAX`] CPUs are shown (all of them up to that many, else the busiest) and
//! [`ROWS_MAX`] interrupts, the busiest.

use super::Platform;
use super::cpu::Cpus;
use super::params::{GicMsiParams, PlatformParams};
use super::stats::{CpuLatency, LineRuns, RunCounts};
use super::tables::{self, ArchLine, COLUMNS_MAX, IrqLine, ProcInterrupts, ROWS_MAX, Timerlat};
use crate::arm::its::GicVersion;
use crate::kernel::KernelVersion;
use crate::pci::store::StoreKind;

/// The first IRQ number a device gets (one past a 24-pin IOAPIC's GSIs on x86).
pub(super) const FIRST_IRQ: u32 = 24;

/// Who the devices' MSI domains' parent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsiParent {
    /// The x86 vector domain, through the remapping unit if `remapping`.
    X86 { remapping: bool },
    /// A GICv3/v4 ITS.
    Its,
    /// A GICv2m frame.
    V2m,
}

/// What the kernel's views need to know of the platform.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    version: KernelVersion,
    legacy_pic: bool,
    parent: MsiParent,
    gic: Option<GicVersion>,
}

impl View {
    /// The view of a platform built from `params`.
    pub fn of(params: &PlatformParams) -> View {
        let parent = match &params.gic {
            None => MsiParent::X86 { remapping: params.remapping.is_some() },
            Some(gic) => match gic.msi {
                GicMsiParams::Its { .. } => MsiParent::Its,
                GicMsiParams::V2m { .. } => MsiParent::V2m,
            },
        };
        View {
            version: params.kernel.version,
            legacy_pic: params.kernel.legacy_pic,
            parent,
            gic: params.gic.as_ref().map(|g| g.version),
        }
    }

    fn arm(&self) -> bool {
        !matches!(self.parent, MsiParent::X86 { .. })
    }

    /// The kernel's `nr_irqs` once `last_irq` is allocated, on `cpus` CPUs: x86's
    /// `arch_probe_nr_irqs` (one 24-pin IOAPIC, the PIC's 16 legacy IRQs if present, 8 per
    /// CPU and 16 per GSI for MSIs, at most 256 per CPU), arm64's `NR_IRQS` (64); grown to
    /// cover every allocated number.
    fn nr_irqs(&self, cpus: u32, last_irq: u32) -> u32 {
        let base = if self.arm() {
            64
        } else {
            let legacy = if self.legacy_pic { 16 } else { 0 };
            (256 * cpus).min(FIRST_IRQ + legacy + 8 * cpus + FIRST_IRQ * 16)
        };
        base.max(last_irq + 1)
    }

    /// Whether devices have per-device MSI domains (chip names with the device's name).
    fn per_device(&self) -> bool {
        if self.arm() { self.version.arm_per_device_msi_domains() } else { self.version.has_dynamic_msix() }
    }

    /// The chip name of a device's interrupts (`guest`: as the guest sees them).
    fn chip(&self, store: StoreKind, requester_id: u16, guest: bool) -> String {
        let prefix = match self.parent {
            MsiParent::X86 { remapping } if remapping && !guest => "IR-",
            MsiParent::X86 { .. } => "",
            MsiParent::Its => "ITS-",
            MsiParent::V2m if guest => "ITS-", // a guest's vITS
            MsiParent::V2m => "GICv2m-",
        };
        let template = match store {
            StoreKind::Msix => "PCI-MSIX",
            StoreKind::Msi => "PCI-MSI",
            StoreKind::ImsDevice | StoreKind::ImsQueue => "IMS",
        };
        let ims = matches!(store, StoreKind::ImsDevice | StoreKind::ImsQueue);
        if ims || self.per_device() {
            return format!("{prefix}{template}-{}", pci_name(requester_id));
        }
        match self.parent {
            MsiParent::X86 { .. } => format!("{prefix}PCI-MSI"),
            MsiParent::Its => "ITS-MSI".to_owned(),
            MsiParent::V2m if guest => "ITS-MSI".to_owned(),
            MsiParent::V2m => "MSI".to_owned(),
        }
    }

    /// The hwirq of store entry `index` (`ims_slot`: its slot in the device's IMS pool).
    fn hwirq(&self, store: StoreKind, requester_id: u16, index: u32, ims_slot: u32) -> u64 {
        match store {
            StoreKind::ImsDevice | StoreKind::ImsQueue => u64::from(ims_slot),
            _ if self.per_device() => u64::from(index),
            _ => u64::from(index) | u64::from(requester_id) << 11,
        }
    }
}

/// `0000:BB:DD.F`, as `pci_name` prints a requester id in PCI domain 0.
fn pci_name(rid: u16) -> String {
    format!("0000:{:02x}:{:02x}.{}", rid >> 8, (rid >> 3) & 0x1f, rid & 0x7)
}

/// A run of consecutive IRQ numbers.
#[derive(Debug, Clone, Copy)]
enum Block {
    /// The store entries of device `0`.
    Device(usize),
    /// The vPE doorbells of vCPUs `first..first + count`.
    Doorbells { first: u32, count: u32 },
}

/// The interrupts and CPUs of one `/proc/interrupts`, before the bounds are applied.
struct Source<'a> {
    /// Blocks of numbers, ascending, each with its first IRQ.
    blocks: Vec<(u32, Block)>,
    /// Handler runs by queue and CPU (host CPUs, or the guest's vCPUs).
    runs: &'a RunCounts,
    /// The CPU ids of the table's columns: host CPUs, or a guest's vCPUs (global ids).
    cpus: std::ops::Range<u32>,
    guest: bool,
}

impl Platform {
    /// Each function's first slot in its IMS pool (the functions sharing a pool take their
    /// slots in topology order).
    fn ims_slots(&self) -> Vec<u32> {
        let mut next =
            vec![0u32; self.devices.all().iter().filter_map(|d| d.params.ims_pool).max().map_or(0, |p| p as usize + 1)];
        self.devices
            .all()
            .iter()
            .map(|d| match d.params.ims_pool {
                Some(pool) => {
                    let first = next[pool as usize];
                    next[pool as usize] += d.store.len();
                    first
                }
                None => 0,
            })
            .collect()
    }

    /// The host handler runs `queue`'s line holds for `src` (none for a guest's table: its
    /// runs are all in `src.runs`).
    fn line_runs(&self, src: &Source, queue: u32) -> LineRuns {
        if src.guest { LineRuns::NONE } else { self.devices.runs(crate::ids::QueueId(queue)) }
    }

    /// Whether any of a device's interrupts worked at the end of setup (it holds numbers).
    fn device_has_irqs(&self, device: usize) -> bool {
        let d = &self.devices.all()[device];
        (0..d.store.len()).any(|e| self.stats.requested(d.first_queue + e))
    }

    /// The host's numbered interrupts: its own devices, then each VM's doorbells, then the
    /// assigned devices.
    fn host_blocks(&self) -> Vec<(u32, Block)> {
        let mut blocks = Vec::new();
        let mut next = FIRST_IRQ;
        let all = self.devices.all();
        let push_devices = |blocks: &mut Vec<(u32, Block)>, assigned: bool, next: &mut u32| {
            for (i, d) in all.iter().enumerate() {
                if d.params.assigned_to.is_some() == assigned && self.device_has_irqs(i) {
                    blocks.push((*next, Block::Device(i)));
                    *next += d.store.len();
                }
            }
        };
        push_devices(&mut blocks, false, &mut next);
        if let (Some(guests), Some(version)) = (&self.guests, self.view.gic)
            && version.has_vlpis()
        {
            // A VM that got no vPE IDs never ran: no doorbells.
            for g in (0..guests.guest_count()).filter(|&g| guests.has_vpes(g)) {
                let (first, count) = guests.vcpus_of(g);
                blocks.push((next, Block::Doorbells { first, count }));
                next += count;
            }
        }
        push_devices(&mut blocks, true, &mut next);
        blocks
    }

    /// The numbered interrupts of guest `guest`: its assigned devices.
    fn guest_blocks(&self, guest: u32) -> Vec<(u32, Block)> {
        let mut next = FIRST_IRQ;
        let mut blocks = Vec::new();
        for (i, d) in self.devices.all().iter().enumerate() {
            if d.params.assigned_to == Some(guest) && self.device_has_irqs(i) {
                blocks.push((next, Block::Device(i)));
                next += d.store.len();
            }
        }
        blocks
    }

    fn block_len(&self, block: Block) -> u32 {
        match block {
            Block::Device(i) => self.devices.all()[i].store.len(),
            Block::Doorbells { count, .. } => count,
        }
    }

    /// Doorbells rung by `vcpu`.
    fn doorbells(&self, vcpu: u32) -> u64 {
        self.guests.as_ref().map_or(0, |g| g.doorbell_irqs(vcpu))
    }

    /// An interrupt's handler runs (or doorbells), all CPUs; `None` when it has no line.
    fn line_total(&self, src: &Source, block: Block, index: u32) -> Option<u64> {
        match block {
            Block::Device(i) => {
                let queue = self.devices.all()[i].first_queue + index;
                let total = src.runs.total(queue, self.line_runs(src, queue));
                (self.stats.requested(queue) || total > 0).then_some(total)
            }
            Block::Doorbells { first, .. } => Some(self.doorbells(first + index)),
        }
    }

    /// The names of the actions of entry `index` of device `device`.
    fn actions(&self, device: usize, index: u32, guest: bool) -> String {
        let d = &self.devices.all()[device];
        let p = &d.params;
        if p.assigned_to.is_some() && !guest {
            let kind = match d.store.kind() {
                StoreKind::Msix => "msix",
                StoreKind::Msi => "msi",
                StoreKind::ImsDevice | StoreKind::ImsQueue => "ims",
            };
            return format!("vfio-{kind}[{index}]({})", pci_name(p.requester_id));
        }
        // Queue q uses entry min(q, entries − 1): the last entry serves the queues past it.
        let last = index + 1 == d.store.len();
        let queues = if last { index..p.queue_count } else { index..index + 1 };
        let shown: Vec<String> = queues.clone().take(4).map(|q| format!("{}q{q}", p.name)).collect();
        let more = queues.len().saturating_sub(4);
        let mut names = shown.join(", ");
        if more > 0 {
            names.push_str(&format!(", … ({more} more)"));
        }
        names
    }

    /// The line of IRQ `irq` (entry `index` of `block`), with counts on `columns`.
    fn irq_line(&self, src: &Source, irq: u32, block: Block, index: u32, columns: &[u32], ims: &[u32]) -> IrqLine {
        match block {
            Block::Device(i) => {
                let d = &self.devices.all()[i];
                let queue = d.first_queue + index;
                let runs = src.runs.of(queue, self.line_runs(src, queue));
                let counts =
                    columns.iter().map(|c| runs.iter().find(|(cpu, _)| cpu == c).map_or(0, |&(_, n)| n)).collect();
                let (store, rid) = (d.store.kind(), d.params.requester_id);
                IrqLine {
                    irq,
                    counts,
                    chip: self.view.chip(store, rid, src.guest),
                    hwirq: self.view.hwirq(store, rid, index, ims[i] + index),
                    actions: self.actions(i, index, src.guest),
                }
            }
            Block::Doorbells { first, .. } => {
                let vcpu = first + index;
                let guests = self.guests.as_ref().expect("doorbells belong to guests");
                let pcpu = guests.pcpu_of(vcpu).0;
                let n = self.doorbells(vcpu);
                IrqLine {
                    irq,
                    counts: columns.iter().map(|&c| if c == pcpu { n } else { 0 }).collect(),
                    chip: if self.view.gic == Some(GicVersion::V4_1) { "GICv4.1-vpe" } else { "GICv4-vpe" }.to_owned(),
                    hwirq: u64::from(guests.vpe_of(vcpu).0),
                    actions: "vcpu".to_owned(),
                }
            }
        }
    }

    /// A `/proc/interrupts` of `src` with the summary lines `arch` (symbol, text, count per
    /// CPU of `src.cpus`). The columns are chosen by everything the table counts per CPU.
    fn proc_interrupts(&self, src: &Source, arch: &[(&'static str, &'static str, Vec<u64>)]) -> String {
        let ims = self.ims_slots();
        // The lines: the busiest, found without holding them all.
        let (mut candidates, mut all_total) = (0u64, 0u64);
        let items = src.blocks.iter().flat_map(|&(first, block)| {
            (0..self.block_len(block)).filter_map(move |i| self.line_total(src, block, i).map(|t| (first + i, t)))
        });
        let shown_irqs = tables::busiest(
            ROWS_MAX,
            items.inspect(|&(_, t)| {
                candidates += 1;
                all_total += t;
            }),
        );
        // The columns: every CPU up to the bound, else the busiest.
        let base = src.cpus.start as usize;
        let runs_per_cpu =
            if src.guest { src.runs.per_cpu(std::iter::empty()) } else { src.runs.per_cpu(self.devices.all_runs()) };
        let doorbells = self.doorbells_per_cpu(src);
        let cpu_totals: Vec<u64> = (0..src.cpus.len())
            .map(|i| {
                let arch_total: u64 = arch.iter().map(|(_, _, counts)| counts[i]).sum();
                runs_per_cpu[base + i] + doorbells[i] + arch_total
            })
            .collect();
        let columns: Vec<u32> = if cpu_totals.len() <= COLUMNS_MAX {
            src.cpus.clone().collect()
        } else {
            tables::busiest(COLUMNS_MAX, cpu_totals.iter().enumerate().map(|(i, &t)| (src.cpus.start + i as u32, t)))
        };
        let mut lines = Vec::with_capacity(shown_irqs.len());
        let mut shown_total = 0;
        for irq in shown_irqs {
            let at = src.blocks.partition_point(|&(first, _)| first <= irq) - 1;
            let (first, block) = src.blocks[at];
            let line = self.irq_line(src, irq, block, irq - first, &columns, &ims);
            shown_total += self.line_total(src, block, irq - first).unwrap_or(0);
            lines.push(line);
        }
        let mut left_out = Vec::new();
        if candidates > lines.len() as u64 {
            left_out.push(format!(
                "{} IRQs left out (only the {ROWS_MAX} busiest are shown): {} interrupts in all",
                candidates - lines.len() as u64,
                all_total - shown_total
            ));
        }
        if columns.len() < cpu_totals.len() {
            let hidden: u64 =
                cpu_totals.iter().sum::<u64>() - columns.iter().map(|&c| cpu_totals[c as usize - base]).sum::<u64>();
            left_out.push(format!(
                "{} CPUs left out (only the {COLUMNS_MAX} busiest are shown): {hidden} interrupts in all",
                cpu_totals.len() - columns.len()
            ));
        }
        let last_irq = src.blocks.last().map_or(FIRST_IRQ, |&(first, b)| first + self.block_len(b).max(1) - 1);
        let cpus = src.cpus.len() as u32;
        let offset = src.cpus.start;
        tables::proc_interrupts(&ProcInterrupts {
            nr_irqs: self.view.nr_irqs(cpus, last_irq),
            cpus: columns.iter().map(|c| c - offset).collect(),
            lines,
            arch: arch
                .iter()
                .map(|(symbol, text, counts)| ArchLine {
                    symbol,
                    counts: columns.iter().map(|&c| counts[(c - offset) as usize]).collect(),
                    text,
                })
                .collect(),
            show_level: self.view.arm(),
            left_out,
        })
    }

    /// Doorbells per CPU of `src` (host tables only).
    fn doorbells_per_cpu(&self, src: &Source) -> Vec<u64> {
        let mut out = vec![0; src.cpus.len()];
        if src.guest {
            return out;
        }
        for &(_, block) in &src.blocks {
            if let (Block::Doorbells { first, count }, Some(guests)) = (block, &self.guests) {
                for vcpu in first..first + count {
                    out[guests.pcpu_of(vcpu).0 as usize] += self.doorbells(vcpu);
                }
            }
        }
        out
    }

    /// The host's `/proc/interrupts` at the end of the run (Linux 6.10 layout; see the module
    /// documentation for the numbers, names and bounds).
    pub fn interrupts_table(&self) -> String {
        let cpu_count = self.stats.latency().len() as u32;
        let src = Source { blocks: self.host_blocks(), runs: &self.stats.host, cpus: 0..cpu_count, guest: false };
        let mut arch = Vec::new();
        if !self.view.arm() {
            if let Some(guests) = &self.guests {
                let mut piw = vec![0; cpu_count as usize];
                for vcpu in 0..guests.vcpu_count() {
                    piw[guests.pcpu_of(vcpu).0 as usize] += guests.wakeup_irqs(vcpu);
                }
                arch.push(("PIW", "Posted-interrupt wakeup event", piw));
            }
            if let Cpus::PostedMsi(cpus) = &self.cpus {
                let pmn = (0..cpu_count).map(|c| cpus.notifications(crate::ids::CpuId(c))).collect();
                arch.push(("PMN", "Posted MSI notification event", pmn));
            }
        }
        self.proc_interrupts(&src, &arch)
    }

    /// Guest `guest`'s `/proc/interrupts` (its vCPUs as CPU0…), `None` without that guest.
    pub fn guest_interrupts_table(&self, guest: u32) -> Option<String> {
        let guests = self.guests.as_ref().filter(|g| guest < g.guest_count())?;
        let runs = self.stats.guest.as_ref().expect("guests have their runs counted");
        let (first, count) = guests.vcpus_of(guest);
        let src = Source { blocks: self.guest_blocks(guest), runs, cpus: first..first + count, guest: true };
        Some(self.proc_interrupts(&src, &[]))
    }

    /// The end-to-end latency of every delivered interrupt by the host CPU that handled it
    /// (a guest's on its vCPU's pCPU), in rtla's `timerlat hist` layout: CPUs with samples,
    /// the busiest 64; `ALL:` covers every CPU.
    pub fn latency_histogram_table(&self) -> String {
        let hists = self.stats.latency();
        let mut all = CpuLatency::EMPTY;
        for h in hists {
            all.merge(h);
        }
        let with_samples = hists.iter().enumerate().filter(|(_, h)| h.count() > 0).map(|(c, h)| (c as u32, h.count()));
        let shown = tables::busiest(COLUMNS_MAX, with_samples.clone());
        let mut left_out = Vec::new();
        let hidden = with_samples.clone().count() - shown.len();
        if hidden > 0 {
            let shown_count: u64 = shown.iter().map(|&c| hists[c as usize].count()).sum();
            left_out.push(format!(
                "{hidden} CPUs with samples left out (only the {COLUMNS_MAX} busiest are shown; ALL covers them): {} interrupts",
                all.count() - shown_count
            ));
        }
        tables::timerlat_hist(&Timerlat {
            what: "end-to-end latency of each delivered interrupt (device raise to EOI done), by the CPU whose handler delivered it (a guest's interrupt: the pCPU of its vCPU)",
            columns: shown.iter().map(|&c| (c, &hists[c as usize])).collect(),
            all,
            left_out,
        })
    }
}
