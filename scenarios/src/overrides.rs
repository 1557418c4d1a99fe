//! Overrides of the raw document: the seam where a sweep sets fields of a scenario before
//! validation. An override is a dotted field path into the document as parsed
//! ([`ScenarioFile`]; `devices[0].arrival.rate`) and a YAML value, deserialized into the
//! type of the field it replaces, so every check that applies to the file applies to it.
//!
//! Each override's value is parsed as if it stood after the end of the file (on lines past
//! the file's last), so every location inside it is known to be the override's: diagnostics
//! there are given back naming the override (its path and value) instead of a line of the
//! file ([`Placement::attribute`]).

use serde::de::{DeserializeOwned, IgnoredAny};
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, Override};
use crate::load::deserialize;
use crate::schema::{
    ActionSpec, ApicModeSpec, Arch, ArrivalSpec, CpuCostsSpec, DetectionSpec, DeviceSpec, Dist, DriverWeightSpec,
    ExitCostsFromSpec, ExitCostsSpec, ExpectMap, FlagTimingSpec, GicMsiSpec, GicSpec, GicVersionSpec,
    GuestDeliverySpec, GuestImsSpec, GuestMessageSpec, GuestMsiSpec, GuestOrderSpec, GuestSpec, HandlerSpec,
    HostBurstSpec, ImsMaskPathSpec, ImsMaskedRaiseSpec, InterruptStore, IommuSpec, IpiSpec, IrqModeSpec, IrteCacheSpec,
    IrteUpdateSpec, KernelSpec, KvmSpec, MaskingSpec, MigrationSpec, PlatformSpec, PopulationSpec, PostedCostsSpec,
    PostedMsiSpec, Process, ProvisionCostsSpec, ProvisionModeSpec, ProvisioningSpec, QueueingSpec, RoutesPerSpec,
    ScenarioFile, ServiceSpec, SetAffinitySpec, SweepSpec,
};

/// Where each override's value was placed in the line numbering shared with the file.
#[derive(Debug)]
pub(crate) struct Placement {
    /// (first line, last line, the override), in override order.
    spans: Vec<(u64, u64, Override)>,
}

impl Placement {
    /// Gives every diagnostic located in an override's value to that override, with its
    /// line counted within the value.
    pub(crate) fn attribute(&self, diagnostics: &mut [Diagnostic]) {
        for d in diagnostics {
            if let Some((first, _, o)) = self.spans.iter().find(|(first, last, _)| (*first..=*last).contains(&d.line)) {
                d.line -= first - 1;
                d.from_override = Some(o.clone());
            }
        }
    }
}

/// Applies `overrides` in order to `raw`, the document parsed from `source`. Every
/// override is tried; the problems of those that could not be applied (a path that names
/// no field, a value of the wrong type) come back together.
pub(crate) fn apply(
    raw: &mut ScenarioFile,
    source: &str,
    overrides: &[Override],
) -> Result<Placement, Vec<Diagnostic>> {
    // A gap of one line after the file: no location of the file's own can fall inside.
    let mut next_line = source.lines().count() as u64 + 2;
    let mut spans = Vec::new();
    let mut problems = Vec::new();
    for o in overrides {
        let first = next_line;
        // Every line of the value, and one more where the parser may report its end.
        let lines = o.value.split('\n').count() as u64 + 1;
        let last = first + lines - 1;
        next_line += lines;
        spans.push((first, last, o.clone()));
        let value = Value { text: format!("{}{}", "\n".repeat(first as usize - 1), o.value), path: &o.path };
        let result = match parse_path(&o.path) {
            Ok(path) => set(raw, &path, 0, &value),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(Problem::Path { column, message }) => problems.push(Diagnostic {
                line: 0,
                column,
                path: o.path.clone(),
                message,
                from_override: Some(o.clone()),
            }),
            // An error the parser could not locate is put at the value's start.
            Err(Problem::Value(d)) if !(first..=last).contains(&d.line) => {
                problems.push(Diagnostic { line: first, column: 1, ..d })
            }
            Err(Problem::Value(d)) => problems.push(d),
        }
    }
    let placement = Placement { spans };
    if problems.is_empty() {
        Ok(placement)
    } else {
        placement.attribute(&mut problems);
        Err(problems)
    }
}

/// One step of a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    /// `.name` (or the first name).
    Field(&'a str),
    /// `[i]`.
    Index(usize),
}

/// A step and the byte offset in the path where it starts (for the caret).
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    step: Step<'a>,
    at: usize,
}

/// Why an override could not be applied.
#[derive(Debug)]
enum Problem {
    /// The path is malformed or names no field: the message, and the 1-based column in the
    /// path where the trouble starts.
    Path { column: u64, message: String },
    /// The value does not deserialize into the field's type.
    Value(Diagnostic),
}

/// An override's value, ready to deserialize.
#[derive(Debug)]
struct Value<'a> {
    /// The value after blank lines that place it past the file.
    text: String,
    /// The override's path (the root of the value's field paths).
    path: &'a str,
}

impl Value<'_> {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        deserialize(&self.text, self.path).map_err(Problem::Value)
    }
}

/// Splits `devices[0].arrival.rate` into its steps: field names (a-z, 0-9, `_`) joined by
/// `.`, each followed by any number of `[index]`.
fn parse_path(path: &str) -> Result<Vec<Segment<'_>>, Problem> {
    let bad = |at: usize, what: &str| Problem::Path {
        column: at as u64 + 1,
        message: format!("`{path}` is not a field path ({what}); write one like `devices[0].arrival.rate`"),
    };
    let bytes = path.as_bytes();
    let mut segments = Vec::new();
    let mut at = 0;
    loop {
        let start = at;
        while bytes.get(at).is_some_and(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            at += 1;
        }
        if at == start {
            return Err(bad(at, "expected a field name"));
        }
        segments.push(Segment { step: Step::Field(&path[start..at]), at: start });
        while bytes.get(at) == Some(&b'[') {
            let end = path[at..].find(']').map(|e| at + e).ok_or_else(|| bad(at, "an unclosed `[`"))?;
            let index = path[at + 1..end].parse().map_err(|_| bad(at + 1, "a list index is a whole number"))?;
            segments.push(Segment { step: Step::Index(index), at });
            at = end + 1;
        }
        match bytes.get(at) {
            None => return Ok(segments),
            Some(b'.') => at += 1,
            Some(_) => return Err(bad(at, "expected `.` or `[` after a field name")),
        }
    }
}

/// `path`'s steps in a normal form (`devices[00].queues` and `devices[0].queues` are the
/// same field): field names, and indices as `[n]`; `None` when it is not a path. Two
/// overrides touch the same value when the steps of one begin with those of the other.
pub(crate) fn normal_steps(path: &str) -> Option<Vec<String>> {
    let segments = parse_path(path.trim()).ok()?;
    Some(
        segments
            .iter()
            .map(|s| match s.step {
                Step::Field(name) => name.to_owned(),
                Step::Index(i) => format!("[{i}]"),
            })
            .collect(),
    )
}

/// The path up to (not including) step `at`, for messages.
fn prefix(path: &[Segment<'_>], at: usize, full: &str) -> String {
    match path.get(at) {
        Some(s) => full[..s.at].trim_end_matches('.').to_owned(),
        None => full.to_owned(),
    }
}

/// A problem with step `at` of the path.
fn path_problem(path: &[Segment<'_>], at: usize, message: String) -> Problem {
    Problem::Path { column: path[at].at as u64 + 1, message }
}

/// Sets the part of `target` that `path[at..]` names.
fn set<T: Overridable>(target: &mut T, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
    T::refuse(value)?;
    if at == path.len() { target.replace(value) } else { target.descend(path, at, value) }
}

/// A part of the raw document an override can reach: a whole value is replaced by
/// deserializing the override's value into its type; a mapping or list is descended into.
trait Overridable: DeserializeOwned {
    /// A mapping's field names, in schema order (none for a single value or a list).
    const FIELDS: &'static [&'static str] = &[];

    /// Refuses any override of this part or its parts, saying why (most parts take them).
    fn refuse(_value: &Value<'_>) -> Result<(), Problem> {
        Ok(())
    }

    /// Replaces the whole value.
    fn replace(&mut self, value: &Value<'_>) -> Result<(), Problem> {
        *self = value.parse()?;
        Ok(())
    }

    /// Sets the part at `path[at..]` (not empty); a single value has no parts.
    fn descend(&mut self, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
        let whole = prefix(path, at, value.path);
        let what = match path[at].step {
            Step::Field(name) => format!("`{whole}` is a single value; it has no field `{name}`"),
            Step::Index(_) => format!("`{whole}` is a single value, not a list"),
        };
        Err(path_problem(path, at, what))
    }
}

impl<T: Overridable> Overridable for Option<T> {
    fn refuse(value: &Value<'_>) -> Result<(), Problem> {
        T::refuse(value)
    }

    fn descend(&mut self, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
        match self {
            Some(inner) => inner.descend(path, at, value),
            None => {
                let whole = prefix(path, at, value.path);
                let message = format!(
                    "`{whole}` is not set in the scenario, so it has no parts to change; override `{whole}` as a whole"
                );
                Err(path_problem(path, at, message))
            }
        }
    }
}

impl<T: Overridable> Overridable for Spanned<T> {
    fn refuse(value: &Value<'_>) -> Result<(), Problem> {
        T::refuse(value)
    }

    fn descend(&mut self, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
        self.value.descend(path, at, value)
    }
}

impl<T: Overridable> Overridable for Vec<T> {
    fn descend(&mut self, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
        let whole = prefix(path, at, value.path);
        match path[at].step {
            Step::Index(i) if i < self.len() => set(&mut self[i], path, at + 1, value),
            Step::Index(i) => {
                let has = match self.len() {
                    0 => "none".to_owned(),
                    n => format!("{n} (0 to {})", n - 1),
                };
                let message =
                    format!("`{whole}[{i}]` does not exist: the scenario has {has}; an override cannot add entries");
                Err(path_problem(path, at, message))
            }
            Step::Field(name) => {
                Err(path_problem(path, at, format!("`{whole}` is a list; name an entry, e.g. `{whole}[0].{name}`")))
            }
        }
    }
}

/// `templates` only hold YAML anchors, merged into the fields that use them when the file
/// is read: overriding them would change nothing.
impl Overridable for IgnoredAny {
    fn refuse(_: &Value<'_>) -> Result<(), Problem> {
        let message =
            "templates are merged into the fields that use them when the file is read; override those fields instead";
        Err(Problem::Path { column: 1, message: message.to_owned() })
    }
}

/// A sweep sets fields of the scenario; it cannot set itself.
impl Overridable for SweepSpec {
    fn refuse(_: &Value<'_>) -> Result<(), Problem> {
        let message = "a sweep's axes and variants set the scenario's fields; they cannot set the sweep itself";
        Err(Problem::Path { column: 1, message: message.to_owned() })
    }
}

/// Expectations judge the results; sweeping them would judge each point by another rule.
impl Overridable for ExpectMap {
    fn refuse(_: &Value<'_>) -> Result<(), Problem> {
        let message = "expectations judge every point by the same rule; a sweep cannot set them";
        Err(Problem::Path { column: 1, message: message.to_owned() })
    }
}

/// Single values: replaced whole.
macro_rules! single_values {
    ($($ty:ty),* $(,)?) => { $(impl Overridable for $ty {})* };
}

single_values!(
    String,
    bool,
    f64,
    u8,
    u16,
    u32,
    u64,
    Arch,
    GicVersionSpec,
    GicMsiSpec,
    GuestDeliverySpec,
    InterruptStore,
    IrqModeSpec,
    Process,
    Dist,
    QueueingSpec,
    ProvisionModeSpec,
    RoutesPerSpec,
    GuestImsSpec,
    GuestMessageSpec,
    ImsMaskPathSpec,
    ImsMaskedRaiseSpec,
    GuestOrderSpec,
    FlagTimingSpec,
    ApicModeSpec
);

/// Mappings: each listed field can be descended into. The lists must name every field of
/// the schema type (a test compares them with the JSON Schema).
macro_rules! mappings {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {$(
        impl Overridable for $ty {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn descend(&mut self, path: &[Segment<'_>], at: usize, value: &Value<'_>) -> Result<(), Problem> {
                let whole = prefix(path, at, value.path);
                match path[at].step {
                    $(Step::Field(stringify!($field)) => set(&mut self.$field, path, at + 1, value),)*
                    Step::Field(name) => {
                        let fields = Self::FIELDS.join(", ");
                        let owner = if whole.is_empty() { "the scenario".to_owned() } else { format!("`{whole}`") };
                        let message = format!("{owner} has no field `{name}`; its fields are: {fields}");
                        Err(path_problem(path, at, message))
                    }
                    Step::Index(_) => {
                        Err(path_problem(path, at, format!("`{whole}` is a mapping, not a list; name a field with `.`")))
                    }
                }
            }
        }
    )*};
}

mappings! {
    ScenarioFile {
        name, description, seed, duration, event_limit, platform, devices, actions, guests, templates, expect, sweep,
        detection, exit_costs_from
    }
    ExitCostsFromSpec { file, tsc_ghz }
    DetectionSpec { configurations, policies, population, drivers, acpi_flag_timing }
    PopulationSpec { configuration, weight }
    DriverWeightSpec { driver, weight }
    GuestSpec { name, vcpus, pcpus, host_bursts, posted, remapped_forward, kvm, migration, ipi }
    KvmSpec { apicv, pv_eoi, slice, wakeup_preemption, exit_costs, apic_mode, ipiv }
    ExitCostsSpec { external_interrupt, hlt, eoi, preemption }
    GuestMsiSpec { delivery, destinations, vector_hashing }
    HostBurstSpec { gap, length }
    MigrationSpec { every, cost }
    IpiSpec { rate, icr_exit }
    PostedCostsSpec { notify_running, wakeup_irq_entry, wakeup_list_entry, kick, wake_to_vm_entry }
    PlatformSpec { arch, cpus, iommu, numa_nodes, kernel, gic, cpu_costs, queueing }
    CpuCostsSpec { irq_entry_exit, notification }
    GicSpec { version, msi, translation_latency, its_command, its_sync, its_direct_inv, lpi_id_bits, v2m_spis, vpe_id_bits }
    KernelSpec { version, legacy_pic, ia32_emulation, hz }
    ActionSpec { at, cpu_offline, cpu_online, set_affinity }
    SetAffinitySpec { device, cpus }
    IommuSpec {
        interrupt_remapping, lookup_latency, units, irte_entries, irte_cache, irte_update,
        fault_recording_registers, max_handle_mask, posted_msi, pasid_checking
    }
    PostedMsiSpec { loop_cap, pir_scan }
    IrteCacheSpec { entries, hit_latency }
    IrteUpdateSpec { irte_write, iec_invalidation }
    DeviceSpec {
        name, count, interrupt_store, ims_slots, ims_update_latency, ims_masked_raise, sriov_vfs, siov_adis, queues,
        msi_write_latency, affinity, irq_mode, assigned_to, tenants, guest_msi, iommu_unit, provisioning, hot_add_at, numa_node, arrival,
        handler
    }
    ProvisioningSpec { mode, dynamic_msix, guest_ims, for_tenants, guest_message, guest_order, qemu_batch_enable, masking, mask_path, affinity_every, guest_kernel, start, message_exits, gsi_routes, routes_per, costs }
    MaskingSpec { every, hold }
    ProvisionCostsSpec { mmio_exit_user, route_update, set_irqs, request_irq, free_irq, vmcall, mmio_exit_kernel }
    ArrivalSpec { process, rate, on, off }
    HandlerSpec { service, eoi }
    ServiceSpec { dist, mean, stddev }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names the JSON Schema gives the type.
    fn schema_fields<T: schemars::JsonSchema>() -> Vec<String> {
        let schema = schemars::schema_for!(T);
        let properties = schema.as_value()["properties"].as_object().expect("a mapping has properties");
        let mut fields: Vec<String> = properties.keys().cloned().collect();
        fields.sort();
        fields
    }

    #[test]
    fn paths_parse_into_steps() {
        fn steps(p: &str) -> Result<Vec<Step<'_>>, Problem> {
            parse_path(p).map(|s| s.iter().map(|s| s.step).collect())
        }
        assert_eq!(
            steps("devices[0].arrival.rate").ok(),
            Some(vec![Step::Field("devices"), Step::Index(0), Step::Field("arrival"), Step::Field("rate")])
        );
        assert_eq!(steps("seed").ok(), Some(vec![Step::Field("seed")]));
        assert_eq!(steps("devices[12]").ok(), Some(vec![Step::Field("devices"), Step::Index(12)]));
        for bad in ["", ".seed", "devices[", "devices[x]", "devices..rate", "[0]", "Seed", "seed.", "a b"] {
            assert!(steps(bad).is_err(), "`{bad}` should be refused");
        }
    }

    #[test]
    fn every_schema_field_can_be_overridden() {
        macro_rules! same {
            ($($ty:ty),*) => {$(
                let mut fields: Vec<String> = <$ty as Overridable>::FIELDS.iter().map(|f| f.to_string()).collect();
                fields.sort();
                assert_eq!(fields, schema_fields::<$ty>(), "{}: the override list and the schema differ", stringify!($ty));
            )*};
        }
        same!(
            ScenarioFile,
            DetectionSpec,
            PopulationSpec,
            DriverWeightSpec,
            GuestSpec,
            KvmSpec,
            ExitCostsSpec,
            GuestMsiSpec,
            HostBurstSpec,
            PostedCostsSpec,
            PlatformSpec,
            CpuCostsSpec,
            GicSpec,
            KernelSpec,
            ActionSpec,
            SetAffinitySpec,
            IommuSpec,
            PostedMsiSpec,
            IrteCacheSpec,
            IrteUpdateSpec,
            DeviceSpec,
            ProvisioningSpec,
            MaskingSpec,
            ProvisionCostsSpec,
            ArrivalSpec,
            HandlerSpec,
            ServiceSpec
        );
    }
}
