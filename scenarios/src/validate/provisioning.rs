//! Validation of an assigned device's `provisioning` section: the mode and where it
//! applies (an assigned device, x86, an MSI-X store), its defaults (`dynamic_msix` true,
//! `start` 0, 4 exits per message, 4,096 KVM routes per enabled vector), and its costs, each
//! required (no published L1 figure).

use serde_saphyr::Spanned;
use sim::SimTime;

use models::pci::store::StoreKind;
use models::platform::{
    KVM_MAX_IRQ_ROUTES, MSIX_MESSAGE_EXITS, ProvisionCosts, ProvisionMode, ProvisionParams, RoutesPer,
};

use super::checker::Checker;
use crate::schema::{ProvisionModeSpec, ProvisioningSpec, RoutesPerSpec};

/// Most KVM routes a scenario may give a guest (a hypothetical kernel built with a larger
/// `KVM_MAX_IRQ_ROUTES`; the field is a u32 index space in `kvm_irq_routing`).
const GSI_ROUTES_MAX: u32 = 1 << 20;

/// Checks `p.provisioning`: `assigned` is whether the device has `assigned_to`.
pub(super) fn check_provisioning(
    spec: &Spanned<ProvisioningSpec>,
    assigned: bool,
    arm: bool,
    store: StoreKind,
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
    if arm {
        c.error(spec, &path, "timed provisioning is modelled on x86 (VT-d) only; on arm the guest's interrupts are programmed when the VM starts: remove provisioning (or use arch: x86)");
        return None;
    }
    let ProvisionModeSpec::MsixTrapped = s.mode.value;
    if store != StoreKind::Msix {
        c.error(
            &s.mode,
            format!("{path}.mode"),
            format!(
                "msix_trapped needs an MSI-X table, and this device's interrupt_store is {}; use interrupt_store: msix",
                store.as_str()
            ),
        );
    }
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
    let mut cost = |v: &Option<Spanned<String>>, field: &str, what: &str| match v {
        Some(v) => c.duration(v, &format!("{path}.costs.{field}")),
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
    let costs = ProvisionCosts {
        mmio_exit_user: mmio_exit_user?,
        route_update: route_update?,
        set_irqs: set_irqs?,
        request_irq: request_irq?,
        free_irq: free_irq?,
    };
    let dynamic_msix = s.dynamic_msix.as_ref().is_none_or(|d| d.value);
    Some(ProvisionParams {
        mode: ProvisionMode::MsixTrapped { dynamic_msix },
        start: start?,
        message_exits,
        gsi_routes,
        routes_per,
        costs,
    })
}
