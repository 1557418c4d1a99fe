//! The `detection` section: configuration presets, policy columns, the population's
//! weights and its driver mix, each name checked against what exists and each weight
//! against its bounds, and when the ACPI flag is set (at creation, or knowing the guest), into a [`models::detect::section::Detection`].

use models::detect::matrix::{COLUMNS, Column};
use models::detect::population::Population;
use models::detect::presets::{self, PRESETS, Preset};
use models::detect::section::Detection;
use models::detect::{Driver, FlagTiming};
use serde_saphyr::Spanned;

use super::Checker;
use crate::schema::{DetectionSpec, FlagTimingSpec};

/// The largest weight (so that a population's total, a sum of at most
/// [`POPULATION_MAX`] products of two weights, stays far inside `u128`).
pub(crate) const WEIGHT_MAX: u64 = 1_000_000_000;
/// The most configurations (or drivers) a population may list.
pub(crate) const POPULATION_MAX: usize = 1_000;

const DRIVERS: [(&str, Driver); 3] =
    [("unaware", Driver::Unaware), ("ims_aware", Driver::ImsAware), ("ims_hypercall", Driver::ImsHypercall)];

fn preset_names() -> String {
    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

fn preset(name: &Spanned<String>, path: &str, c: &mut Checker) -> Option<Preset> {
    let found = presets::by_name(name.value.trim()).copied();
    if found.is_none() {
        c.error(name, path, format!("`{}` is not a configuration preset; allowed: {}", name.value, preset_names()));
    }
    found
}

fn weight(w: &Spanned<u64>, path: &str, c: &mut Checker) -> Option<u64> {
    if w.value == 0 || w.value > WEIGHT_MAX {
        c.error(w, path, format!("{} is not a weight; give an integer from 1 to {WEIGHT_MAX}", w.value));
        return None;
    }
    Some(w.value)
}

/// Checks the section; `None` when it is absent or wrong (the errors are in `c`).
pub(crate) fn check_detection(raw: &Option<DetectionSpec>, c: &mut Checker) -> Option<Option<Detection>> {
    let Some(raw) = raw else { return Some(None) };
    let errors_before = c.diagnostics.len();
    let presets: Vec<Preset> = match &raw.configurations {
        None => PRESETS.to_vec(),
        Some(list) => {
            if list.value.is_empty() {
                c.error(
                    list,
                    "detection.configurations",
                    "an empty list shows nothing; name presets or leave it out for all",
                );
            }
            list.value
                .iter()
                .enumerate()
                .filter_map(|(i, n)| preset(n, &format!("detection.configurations[{i}]"), c))
                .collect()
        }
    };
    let columns: Vec<Column> = match &raw.policies {
        None => COLUMNS.to_vec(),
        Some(list) => {
            if list.value.is_empty() {
                c.error(
                    list,
                    "detection.policies",
                    "an empty list shows nothing; name policies or leave it out for all",
                );
            }
            let allowed = COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
            list.value
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let found = Column::by_name(n.value.trim());
                    if found.is_none() {
                        c.error(
                            n,
                            format!("detection.policies[{i}]"),
                            format!("`{}` is not a policy; allowed: {allowed}", n.value),
                        );
                    }
                    found
                })
                .collect()
        }
    };
    let population = if raw.population.is_empty() {
        if let Some(d) = raw.drivers.first() {
            c.error(&d.driver, "detection.drivers", "a driver mix needs a `population` to weigh it with");
        }
        None
    } else {
        if raw.population.len() > POPULATION_MAX || raw.drivers.len() > POPULATION_MAX {
            let at = &raw.population[0].configuration;
            c.error(at, "detection.population", format!("at most {POPULATION_MAX} configurations and drivers"));
        }
        let mut configurations = Vec::new();
        for (i, e) in raw.population.iter().enumerate() {
            let path = format!("detection.population[{i}]");
            let p = preset(&e.configuration, &format!("{path}.configuration"), c);
            if raw.population[..i].iter().any(|o| o.configuration.value.trim() == e.configuration.value.trim()) {
                c.error(
                    &e.configuration,
                    format!("{path}.configuration"),
                    format!("`{}` is listed twice; give it one weight", e.configuration.value),
                );
            }
            if let (Some(p), Some(w)) = (p, weight(&e.weight, &format!("{path}.weight"), c)) {
                configurations.push((p, w));
            }
        }
        let mut drivers = Vec::new();
        for (i, e) in raw.drivers.iter().enumerate() {
            let path = format!("detection.drivers[{i}]");
            let d = DRIVERS.iter().find(|(n, _)| *n == e.driver.value.trim()).map(|&(_, d)| d);
            if d.is_none() {
                c.error(
                    &e.driver,
                    format!("{path}.driver"),
                    format!("`{}` is not a driver; allowed: unaware, ims_aware, ims_hypercall", e.driver.value),
                );
            }
            if raw.drivers[..i].iter().any(|o| o.driver.value.trim() == e.driver.value.trim()) {
                c.error(
                    &e.driver,
                    format!("{path}.driver"),
                    format!("`{}` is listed twice; give it one weight", e.driver.value),
                );
            }
            if let (Some(d), Some(w)) = (d, weight(&e.weight, &format!("{path}.weight"), c)) {
                drivers.push((d, w));
            }
        }
        if drivers.is_empty() && raw.drivers.is_empty() {
            drivers.push((Driver::ImsAware, 1));
        }
        Some(Population { configurations, drivers })
    };
    let (mut presets, mut population) = (presets, population);
    if raw.acpi_flag_timing.as_ref().is_some_and(|t| t.value == FlagTimingSpec::KnownGuest) {
        let known = |p: &mut Preset| p.view.acpi_timing = FlagTiming::KnownGuest;
        presets.iter_mut().for_each(known);
        if let Some(pop) = population.as_mut() {
            pop.configurations.iter_mut().for_each(|(p, _)| known(p));
        }
    }
    (c.diagnostics.len() == errors_before).then_some(Some(Detection { presets, columns, population }))
}
