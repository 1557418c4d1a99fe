//! Validation of an assigned device's `provisioning` section: the mode and where it
//! applies (an assigned device, the store the mode needs; on arm MSI-X trapped, with
//! dynamic MSI-X from Linux 7.3 only), its defaults
//! (`dynamic_msix` from the host kernel, a Linux guest of the host's release, `start` 0, 4
//! exits per message, 4,096 KVM routes per enabled vector), and its costs, each required (no
//! published L1 figure; `vmcall` only with `ims_hypercall`).

use serde_saphyr::Spanned;
use sim::SimTime;

use models::kernel::KernelVersion;
use models::pci::store::StoreKind;
use models::platform::{
    GuestIms, GuestOrder, ImsMaskPath, KVM_MAX_IRQ_ROUTES, MSIX_MESSAGE_EXITS, ProvisionCosts, ProvisionMode,
    ProvisionParams, RoutesPer,
};

use super::checker::Checker;
use crate::schema::{
    GuestImsSpec, GuestMessageSpec, GuestOrderSpec, ImsMaskPathSpec, ProvisionModeSpec, ProvisioningSpec, RoutesPerSpec,
};

/// Most KVM routes a scenario may give a guest (a hypothetical kernel built with a larger
/// `KVM_MAX_IRQ_ROUTES`; the field is a u32 index space in `kvm_irq_routing`).
const GSI_ROUTES_MAX: u32 = 1 << 20;

/// Checks `p.provisioning`: `assigned` is whether the device has `assigned_to`; `host` the
/// host kernel (`None` when its version was wrong).
pub(super) fn check_provisioning(
    spec: &Spanned<ProvisioningSpec>,
    assigned: bool,
    arm: bool,
    store: StoreKind,
    host: Option<KernelVersion>,
    p: &str,
    c: &mut Checker,
) -> Option<ProvisionParams> {
    let path = format!("{p}.provisioning");
    let s = &spec.value;
    if !assigned {
        c.error(
            spec,
            &path,
            "provisioning applies to a device assigned to a guest: add assigned_to (or remove provisioning)",
        );
        return None;
    }
    let (mode, name) = match s.mode.value {
        ProvisionModeSpec::MsixTrapped => (ProvisionMode::MsixTrapped, "msix_trapped"),
        ProvisionModeSpec::MsixOverIms => (ProvisionMode::MsixOverIms, "msix_over_ims"),
        ProvisionModeSpec::ImsTrapped => (ProvisionMode::ImsTrapped, "ims_trapped"),
        ProvisionModeSpec::ImsHypercall => (ProvisionMode::ImsHypercall, "ims_hypercall"),
        ProvisionModeSpec::ImsDirect => {
            let remappable = s.guest_message.as_ref().is_none_or(|g| g.value == GuestMessageSpec::Remappable);
            (ProvisionMode::ImsDirect { remappable }, "ims_direct")
        }
    };
    if arm {
        check_arm(s, mode, name, host, &path, c)?;
    }
    if let Some(g) = &s.guest_message
        && !matches!(mode, ProvisionMode::ImsDirect { .. })
    {
        c.error(
            g,
            format!("{path}.guest_message"),
            format!("{name} writes host-composed messages; guest_message applies to mode: ims_direct only (remove it)"),
        );
    }
    let store_ok = match mode {
        ProvisionMode::MsixTrapped => store == StoreKind::Msix,
        ProvisionMode::MsixOverIms | ProvisionMode::ImsTrapped => store == StoreKind::ImsDevice,
        ProvisionMode::ImsHypercall | ProvisionMode::ImsDirect { .. } => {
            matches!(store, StoreKind::ImsDevice | StoreKind::ImsQueue)
        }
    };
    if !store_ok {
        let hint = if store == StoreKind::ImsQueue {
            " (host memory written through a device command queue: the VMM cannot trap it; use ims_hypercall)"
        } else {
            ""
        };
        let needs = match mode {
            ProvisionMode::MsixTrapped => "an MSI-X table (interrupt_store: msix)",
            ProvisionMode::MsixOverIms => "the device's IMS to back the guest's MSI-X (interrupt_store: ims_device)",
            ProvisionMode::ImsTrapped => "IMS in device memory (interrupt_store: ims_device)",
            ProvisionMode::ImsHypercall | ProvisionMode::ImsDirect { .. } => {
                "an IMS store (interrupt_store: ims_device or ims_queue)"
            }
        };
        c.error(
            &s.mode,
            format!("{path}.mode"),
            format!("{name} needs {needs}; this device's interrupt_store is {}{hint}", store.as_str()),
        );
    }
    let trapped = matches!(mode, ProvisionMode::MsixTrapped | ProvisionMode::MsixOverIms | ProvisionMode::ImsTrapped);
    if let Some(o) = &s.guest_order
        && !trapped
    {
        c.error(o, format!("{path}.guest_order"), format!("{name} traps no table write; guest_order applies to the trapped modes (msix_trapped, msix_over_ims, ims_trapped): remove it"));
    }
    let guest_order = match s.guest_order.as_ref().map_or(GuestOrderSpec::PerVector, |o| o.value) {
        GuestOrderSpec::PerVector => GuestOrder::PerVector,
        GuestOrderSpec::TableFirst => GuestOrder::TableFirst,
    };
    let qemu_batch_enable = s.qemu_batch_enable.as_ref().is_none_or(|b| b.value);
    let masking = match &s.masking {
        None => Some(None),
        Some(k) if !trapped && mode != ProvisionMode::ImsHypercall => {
            c.error(&k.every, format!("{path}.masking"), format!("{name} leaves the host out of the guest's messages; masking applies to the trapped modes (msix_trapped, msix_over_ims, ims_trapped) and ims_hypercall: remove it"));
            None
        }
        Some(k) => {
            let every = c.positive_period(&k.every, &format!("{path}.masking.every"));
            let hold = c.duration(&k.hold, &format!("{path}.masking.hold"));
            every.zip(hold).map(Some)
        }
    };
    let ims_mask = match (&s.mask_path, mode, &s.masking) {
        (None, _, _) => ImsMaskPath::Device,
        (Some(m), ProvisionMode::ImsHypercall, Some(_)) => match m.value {
            ImsMaskPathSpec::Device => ImsMaskPath::Device,
            ImsMaskPathSpec::Hypercall => ImsMaskPath::Hypercall,
        },
        (Some(m), ProvisionMode::ImsHypercall, None) => {
            c.error(
                m,
                format!("{path}.mask_path"),
                "mask_path says how masking masks: add masking (or remove mask_path)",
            );
            ImsMaskPath::Device
        }
        (Some(m), _, _) => {
            c.error(
                m,
                format!("{path}.mask_path"),
                format!("{name} masks on its trapped path; mask_path applies to mode: ims_hypercall only (remove it)"),
            );
            ImsMaskPath::Device
        }
    };
    let affinity = match (&s.affinity_every, &s.masking) {
        (None, _) => Some(None),
        (Some(a), _) if !trapped && mode != ProvisionMode::ImsHypercall => {
            c.error(a, format!("{path}.affinity_every"), format!("{name} leaves the host out of the guest's messages; affinity_every applies to msix_trapped, msix_over_ims, ims_trapped and ims_hypercall: remove it"));
            None
        }
        (Some(a), Some(_)) => {
            c.error(
                a,
                format!("{path}.affinity_every"),
                "one control plane per function: give masking or affinity_every, not both".to_string(),
            );
            None
        }
        (Some(a), None) => c.positive_period(a, &format!("{path}.affinity_every")).map(Some),
    };
    let guest_kernel = match &s.guest_kernel {
        None => host,
        Some(text) => {
            let parsed = text
                .value
                .trim()
                .split_once('.')
                .and_then(|(a, b)| Some(KernelVersion::new(a.parse().ok()?, b.parse().ok()?)));
            if parsed.is_none() {
                c.error(
                    text,
                    format!("{path}.guest_kernel"),
                    format!("`{}` is not a MAJOR.MINOR release such as \"6.8\"", text.value),
                );
            }
            parsed
        }
    };
    let guest_ims = match s.guest_ims.as_ref().map_or(GuestImsSpec::Linux, |g| g.value) {
        GuestImsSpec::Hypothetical => Some(GuestIms::Hypothetical),
        GuestImsSpec::Linux => guest_kernel.map(GuestIms::Linux),
    };
    let start = s
        .start
        .as_ref()
        .map_or(Some(SimTime::ZERO), |v| c.duration(v, &format!("{path}.start")).map(|d| SimTime::ZERO + d));
    let message_exits = s.message_exits.as_ref().map_or(MSIX_MESSAGE_EXITS, |w| w.value);
    if let Some(w) = &s.message_exits
        && !(1..=4).contains(&w.value)
    {
        c.error(w, format!("{path}.message_exits"), format!("{} exits: a message is 1 to 4 trapped accesses (Linux writes address low, high and data and reads data back: 4), the unmask is counted apart", w.value));
    }
    let gsi_routes = s.gsi_routes.as_ref().map_or(KVM_MAX_IRQ_ROUTES, |g| g.value);
    if let Some(g) = &s.gsi_routes
        && !(1..=GSI_ROUTES_MAX).contains(&g.value)
    {
        c.error(
            g,
            format!("{path}.gsi_routes"),
            format!(
                "{} routes: give 1 to {GSI_ROUTES_MAX} (x86's KVM_MAX_IRQ_ROUTES is {KVM_MAX_IRQ_ROUTES})",
                g.value
            ),
        );
    }
    let routes_per = match s.routes_per.as_ref().map_or(RoutesPerSpec::EnabledVector, |r| r.value) {
        RoutesPerSpec::EnabledVector => RoutesPer::EnabledVector,
        RoutesPerSpec::AdvertisedEntry => RoutesPer::AdvertisedEntry,
    };
    let file = c.file_costs;
    let from_file = |field: &str| match field {
        "mmio_exit_user" => file.mmio_exit_user,
        "vmcall" => file.vmcall,
        _ => None,
    };
    let mut cost = |v: &Option<Spanned<String>>, field: &str, what: &str| match v {
        Some(v) => c.duration(v, &format!("{path}.costs.{field}")),
        None if from_file(field).is_some() => from_file(field),
        None => {
            c.error(spec, format!("{path}.costs.{field}"), format!("costs.{field} is required: {what} has no published figure to default to (docs/sources.md#provision-costs); measure it on the target host, e.g. 20us"));
            None
        }
    };
    let k = &s.costs;
    let mmio_exit_user =
        cost(&k.mmio_exit_user, "mmio_exit_user", "an MMIO write exit to the userspace VMM on an L1 guest");
    let route_update = cost(&k.route_update, "route_update", "KVM_SET_GSI_ROUTING");
    let set_irqs = cost(&k.set_irqs, "set_irqs", "a VFIO_DEVICE_SET_IRQS ioctl");
    let request_irq = cost(&k.request_irq, "request_irq", "the host's request_irq and irq-bypass registration");
    let free_irq = cost(&k.free_irq, "free_irq", "the host's free_irq and irq-bypass removal");
    let vmcall = match (&k.vmcall, mode) {
        (None, ProvisionMode::ImsHypercall) => {
            cost(&k.vmcall, "vmcall", "a hypercall on an L1 guest (13.2k cycles is a nested L2 figure)")
        }
        (Some(v), ProvisionMode::ImsHypercall) => c.duration(v, &format!("{path}.costs.vmcall")),
        (Some(v), _) => {
            c.error(
                v,
                format!("{path}.costs.vmcall"),
                format!("{name} makes no hypercall: vmcall applies to mode: ims_hypercall only (remove it)"),
            );
            None
        }
        (None, _) => Some(sim::SimDuration::ZERO),
    };
    // arm64 only: a guest's MOVI is written to its virtual ITS, which KVM emulates in the kernel.
    let kernel_exit = arm && s.affinity_every.is_some();
    let mmio_exit_kernel = match &k.mmio_exit_kernel {
        None if kernel_exit => {
            c.error(spec, format!("{path}.costs.mmio_exit_kernel"), "costs.mmio_exit_kernel is required: an MMIO exit KVM handles in the kernel (a virtual ITS register access on arm64) has no published figure to default to (docs/sources.md#provision-costs); measure it on the target host, e.g. 2us");
            None
        }
        None => Some(sim::SimDuration::ZERO),
        Some(v) if kernel_exit => c.duration(v, &format!("{path}.costs.mmio_exit_kernel")),
        Some(v) => {
            c.error(v, format!("{path}.costs.mmio_exit_kernel"), "no exit of this provisioning is handled in the kernel: mmio_exit_kernel applies to arch: arm with affinity_every only (the guest's MOVI on its virtual ITS); remove it");
            None
        }
    };
    let costs = ProvisionCosts {
        mmio_exit_user: mmio_exit_user?,
        route_update: route_update?,
        set_irqs: set_irqs?,
        request_irq: request_irq?,
        free_irq: free_irq?,
        vmcall: vmcall?,
        mmio_exit_kernel: mmio_exit_kernel?,
    };
    // The host kernel's VFIO decides unless the scenario says (a QEMU without Jing Liu's
    // series resizes whatever the kernel). arm64 from 7.3 only (check_arm refused `true`
    // before).
    let host_dynamic = |h: KernelVersion| if arm { h.vfio_dynamic_msix_arm64() } else { h.vfio_dynamic_msix() };
    let dynamic_msix = s.dynamic_msix.as_ref().map_or(host.is_none_or(host_dynamic), |d| d.value);
    Some(ProvisionParams {
        mode,
        dynamic_msix,
        guest_ims: guest_ims?,
        start: start?,
        message_exits,
        gsi_routes,
        routes_per,
        guest_order,
        qemu_batch_enable,
        ims_mask,
        masking: masking?,
        affinity: affinity?,
        costs,
    })
}

/// On arm (a GICv4 host) only MSI-X trapped exists, with dynamic MSI-X from Linux 7.3 only
/// (`host`: the host kernel, `None` when its version was wrong); `None` after reporting what
/// is refused.
fn check_arm(
    s: &ProvisioningSpec,
    mode: ProvisionMode,
    name: &str,
    host: Option<KernelVersion>,
    path: &str,
    c: &mut Checker,
) -> Option<()> {
    let mut ok = true;
    if mode != ProvisionMode::MsixTrapped {
        c.error(&s.mode, format!("{path}.mode"), format!("{name} needs IMS, which arm64 does not have: the GIC ITS's MSI parent does not set MSI_FLAG_PCI_IMS, so no IMS domain can be created on host or guest (docs/sources.md#arm-msi-parent); use mode: msix_trapped (or arch: x86)"));
        ok = false;
    }
    let old_host = host.filter(|h| !h.vfio_dynamic_msix_arm64());
    if let (Some(d), Some(h)) = (s.dynamic_msix.as_ref().filter(|d| d.value), old_host) {
        c.error(d, format!("{path}.dynamic_msix"), format!("an arm64 host on Linux {h} has no dynamic MSI-X: its GIC ITS MSI parent sets MSI_FLAG_PCI_MSIX_ALLOC_DYN only from 7.3 (commit 0d6a7c417983), so VFIO reports VFIO_IRQ_INFO_NORESIZE and N vectors cost N(N+1)/2 setups (docs/sources.md#arm-msi-parent); remove dynamic_msix, or set platform.kernel.version to \"7.3\" or later"));
        ok = false;
    }
    ok.then_some(())
}
