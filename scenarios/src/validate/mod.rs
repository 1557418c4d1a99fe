//! Validation: the raw document ([`ScenarioFile`]) → typed, in-range, consistent sections
//! ([`Validated`]), with every problem collected by one [`Checker`]. One file per scenario
//! section; [`check`] runs them in order and hands each what it needs from the others.
//! Validation checks values and fills in defaults; [`crate::build`] expands devices.

mod actions;
mod checker;
mod detection;
mod devices;
mod expect;
mod gic;
mod guests;
mod iommu;
mod platform;
mod provisioning;

use sim::SimDuration;

use models::platform::{Action, GuestParams};

pub(crate) use checker::Checker;
pub(crate) use devices::{DeviceSection, Functions};
pub(crate) use platform::PlatformSection;

use crate::load::DEFAULT_SEED;
use crate::schema::ScenarioFile;

/// A scenario whose every section is valid, before devices are expanded.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    /// Short name.
    pub(crate) name: String,
    /// Description.
    pub(crate) description: String,
    /// The scenario's seed (default [`DEFAULT_SEED`]).
    pub(crate) seed: u64,
    /// Simulated time to run.
    pub(crate) duration: SimDuration,
    /// Event cap.
    pub(crate) event_limit: Option<u64>,
    /// CPUs, kernel, IOMMU or GIC, CPU costs.
    pub(crate) platform: PlatformSection,
    /// Device entries, in file order.
    pub(crate) devices: Vec<DeviceSection>,
    /// Guests, in file order.
    pub(crate) guests: Vec<GuestParams>,
    /// Actions, in time order.
    pub(crate) actions: Vec<Action>,
    /// Expectations, in file order.
    pub(crate) expect: Vec<reports::Expectation>,
    /// The detection section, if any.
    pub(crate) detection: Option<models::detect::section::Detection>,
}

/// Checks the whole document; `Some` only when nothing was wrong. The sections run in a
/// fixed order (errors at one location keep that order): top-level fields, platform (with
/// IOMMU and GIC), guests, hotplug against guests, devices, actions.
pub(crate) fn check(raw: &ScenarioFile, c: &mut Checker) -> Option<Validated> {
    c.name(&raw.name, "name");
    let duration = c.positive_period(&raw.duration, "duration");
    if let Some(limit) = &raw.event_limit
        && limit.value == 0
    {
        c.error(limit, "event_limit", "0 events would run nothing; give a positive number or leave it out");
    }
    let platform = platform::check_platform(raw, c);
    if let Some(from) = &raw.exit_costs_from
        && platform.arm
    {
        c.error(&from.file, "exit_costs_from", "kvm-unit-tests' vmexit measures x86 exits; on arm give the costs in the scenario (remove exit_costs_from, or use arch: x86)");
    }
    let cpu_count = platform.cpu_count;
    let support = guests::guest_support(&platform);
    let guests =
        guests::check_guests(&raw.guests, cpu_count, support, guests::doorbell_lpis(&platform), platform.arm, c);
    actions::check_hotplug_of_vcpu_pcpus(&raw.actions, &raw.guests, cpu_count, c);
    let (devices, function_names) = devices::check_devices(&raw.devices, &raw.guests, &platform, c);
    let actions = actions::check_actions(&raw.actions, cpu_count, duration, &function_names, c);
    let expect = expect::check_expect(&raw.expect, c);
    let detection = detection::check_detection(&raw.detection, c);
    let validated = Validated {
        name: raw.name.value.clone(),
        description: raw.description.clone(),
        seed: raw.seed.unwrap_or(DEFAULT_SEED),
        duration: duration?,
        event_limit: raw.event_limit.as_ref().map(|l| l.value),
        platform: platform.section()?,
        devices,
        guests: guests?,
        actions: actions?,
        expect,
        detection: detection?,
    };
    c.is_clean().then_some(validated)
}
