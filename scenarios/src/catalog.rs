//! The built-in scenario catalog: the files in `scenarios/catalog/`, compiled into the
//! binary so that `irqsim` runs with no files at hand.

/// (name, file contents) of every catalog scenario; the first is the flagship that
/// `irqsim` runs with no arguments.
pub const CATALOG: &[(&str, &str)] = &[
    ("nvme-bare-metal", include_str!("../catalog/nvme-bare-metal.yaml")),
    ("interrupt-storm", include_str!("../catalog/interrupt-storm.yaml")),
    ("vector-exhaustion", include_str!("../catalog/vector-exhaustion.yaml")),
    ("cpu-hotplug", include_str!("../catalog/cpu-hotplug.yaml")),
    ("dsa-ims-density", include_str!("../catalog/dsa-ims-density.yaml")),
    ("irte-lock-contention", include_str!("../catalog/irte-lock-contention.yaml")),
    ("arm-lpi-budget", include_str!("../catalog/arm-lpi-budget.yaml")),
    ("arm-gicv2m", include_str!("../catalog/arm-gicv2m.yaml")),
    ("posted-msi", include_str!("../catalog/posted-msi.yaml")),
    ("remappable-msi", include_str!("../catalog/remappable-msi.yaml")),
    ("posted-guest", include_str!("../catalog/posted-guest.yaml")),
    ("gicv4-guest", include_str!("../catalog/gicv4-guest.yaml")),
    ("guest-exits", include_str!("../catalog/guest-exits.yaml")),
    ("queue-scaling", include_str!("../catalog/queue-scaling.yaml")),
    ("detect-matrix", include_str!("../catalog/detect-matrix.yaml")),
    ("msix-trapped", include_str!("../catalog/msix-trapped.yaml")),
    ("msix-growth", include_str!("../catalog/msix-growth.yaml")),
    ("ims-provisioning", include_str!("../catalog/ims-provisioning.yaml")),
    ("guest-control-plane", include_str!("../catalog/guest-control-plane.yaml")),
    ("misdetect-outcome", include_str!("../catalog/misdetect-outcome.yaml")),
    ("blast-radius", include_str!("../catalog/blast-radius.yaml")),
    ("flag-timing", include_str!("../catalog/flag-timing.yaml")),
    ("detect-mc", include_str!("../catalog/detect-mc.yaml")),
    ("gicv4-provisioning", include_str!("../catalog/gicv4-provisioning.yaml")),
    ("gicv4-migration", include_str!("../catalog/gicv4-migration.yaml")),
];

/// The flagship scenario's name.
pub fn default_name() -> &'static str {
    CATALOG[0].0
}

/// A catalog scenario by name.
pub fn get(name: &str) -> Option<&'static str> {
    CATALOG.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}
