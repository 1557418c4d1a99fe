//! Overrides (`scenarios::load_with_overrides`), the seam a sweep uses to set fields before
//! validation: an overridden value is checked like one in the file, and every problem names
//! the override's path and value.

use models::workload::ArrivalParams;
use scenarios::{Override, ScenarioError, catalog, load_with_overrides};

fn with(name: &str, overrides: &[(&str, &str)]) -> Result<scenarios::Scenario, ScenarioError> {
    let overrides: Vec<(String, String)> = overrides.iter().map(|(p, v)| (p.to_string(), v.to_string())).collect();
    load_with_overrides(&format!("{name}.yaml"), catalog::get(name).unwrap(), &overrides)
}

fn expect_err(name: &str, overrides: &[(&str, &str)]) -> ScenarioError {
    match with(name, overrides) {
        Ok(_) => panic!("{overrides:?} should make {name} invalid"),
        Err(e) => e,
    }
}

#[test]
fn an_overridden_rate_is_the_scenarios_rate() {
    let s = with("nvme-bare-metal", &[("devices[0].arrival.rate", "120k/s")]).unwrap();
    // One entry with count: 4 expands into four controllers; all take the new rate.
    assert_eq!(s.platform.devices.len(), 4);
    for d in &s.platform.devices {
        assert!(matches!(d.arrival, ArrivalParams::Poisson { rate_per_s } if rate_per_s == 120_000.0), "{d:?}");
    }
    // Everything else is as in the file.
    let plain = scenarios::load("nvme-bare-metal.yaml", catalog::get("nvme-bare-metal").unwrap()).unwrap();
    assert_eq!(s.platform.devices[0].queue_count, plain.platform.devices[0].queue_count);
    assert_eq!(format!("{:?}", s.platform.kernel), format!("{:?}", plain.platform.kernel));
    assert_eq!(s.duration, plain.duration);
}

#[test]
fn overrides_reach_every_kind_of_field() {
    let s = with(
        "nvme-bare-metal",
        &[
            ("seed", "7"),
            ("platform.cpus", "16"),
            ("devices[0].arrival", "{ process: constant, rate: 1k/s }"),
            ("devices[0].count", "2"),
            ("platform.iommu.irte_cache", "~"),
            ("platform.kernel", "{ version: \"6.8\" }"),
        ],
    )
    .unwrap();
    assert_eq!(s.seed, 7);
    assert_eq!(s.platform.cpu_count, 16);
    assert_eq!(s.platform.devices.len(), 2);
    assert_eq!(s.platform.devices[1].name, "nvme1");
    assert_eq!(s.platform.devices[0].affinity.len(), 16, "`affinity: all` follows the overridden CPU count");
    assert!(matches!(s.platform.devices[0].arrival, ArrivalParams::Constant { rate_per_s } if rate_per_s == 1000.0));
    assert_eq!(s.platform.remapping.as_ref().unwrap().remap.iec_entries, 0, "no entry cache");
    assert_eq!(s.platform.kernel.version.to_string(), "6.8");
}

#[test]
fn an_invalid_value_names_the_override_path_and_value() {
    let e = expect_err("nvme-bare-metal", &[("devices[0].arrival.rate", "-5k/s")]);
    assert_eq!(e.diagnostics.len(), 1);
    let d = &e.diagnostics[0];
    assert_eq!(d.path, "devices[0].arrival.rate");
    let o = Override { path: "devices[0].arrival.rate".into(), value: "-5k/s".into() };
    assert_eq!(d.from_override.as_ref(), Some(&o));
    assert_eq!((d.line, d.column), (1, 1), "located in the override's value");
    let text = e.to_string();
    for expected in [
        "error: nvme-bare-metal.yaml: override `devices[0].arrival.rate=-5k/s`: devices[0].arrival.rate: `-5k/s` is negative",
        " | devices[0].arrival.rate=-5k/s\n",
        "1 error in nvme-bare-metal.yaml with overrides devices[0].arrival.rate=-5k/s; nothing was run",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_the_override() {
    let e = expect_err("nvme-bare-metal", &[("devices[0].queues", "lots")]);
    let text = e.to_string();
    assert!(
        text.contains("override `devices[0].queues=lots`: devices[0].queues: expected a whole number from 0 to 4294967295, found `lots`"),
        "{text}"
    );
    // Inside a mapping value, the field path goes down to the wrong field.
    let e = expect_err("nvme-bare-metal", &[("devices[0].arrival", "{ process: poison, rate: 5k/s }")]);
    let d = &e.diagnostics[0];
    assert_eq!(d.path, "devices[0].arrival.process");
    assert!(d.message.contains("unknown variant `poison`"), "{}", d.message);
    assert!(d.from_override.is_some());
}

#[test]
fn an_unknown_path_is_an_error_naming_it() {
    let e = expect_err("nvme-bare-metal", &[("devices[0].arival.rate", "5k/s")]);
    let d = &e.diagnostics[0];
    assert_eq!(d.path, "devices[0].arival.rate");
    assert!(d.message.starts_with("`devices[0]` has no field `arival`; its fields are: name, count,"), "{}", d.message);
    let text = e.to_string();
    assert!(text.contains("override `devices[0].arival.rate=5k/s`"), "{text}");
    assert!(text.contains(" | devices[0].arival.rate=5k/s\n | ~~~~~~~~~~~^".replace('~', " ").as_str()), "{text}");

    for (path, words) in [
        ("sed", "the scenario has no field `sed`"),
        (
            "devices[4].queues",
            "`devices[4]` does not exist: the scenario has 1 (0 to 0); an override cannot add entries",
        ),
        ("guests[0].vcpus", "`guests[0]` does not exist: the scenario has none"),
        ("devices.queues", "`devices` is a list; name an entry, e.g. `devices[0].queues`"),
        ("platform[0]", "`platform` is a mapping, not a list"),
        ("devices[0].queues.max", "`devices[0].queues` is a single value; it has no field `max`"),
        ("platform.kernel.version", "`platform.kernel` is not set in the scenario"),
        ("templates", "templates are merged into the fields that use them"),
        ("devices[0]..rate", "is not a field path (expected a field name)"),
    ] {
        let e = expect_err("nvme-bare-metal", &[(path, "1")]);
        let d = &e.diagnostics[0];
        assert_eq!(d.path, path);
        assert!(d.message.contains(words), "{path}: expected `{words}` in `{}`", d.message);
        assert!(e.to_string().contains(&format!("override `{path}=1`")), "{e}");
    }
}

#[test]
fn every_bad_override_is_reported_at_once() {
    let e = expect_err("nvme-bare-metal", &[("nope", "1"), ("devices[0].queues", "x"), ("seed", "2")]);
    let paths: Vec<&str> = e.diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["nope", "devices[0].queues"]);
    // Validation problems in overridden values come after the file's, in override order.
    let e = expect_err(
        "nvme-bare-metal",
        &[("devices[0].queues", "4096"), ("name", "Bad Name"), ("devices[0].handler.service.mean", "0us")],
    );
    let paths: Vec<&str> = e.diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["devices[0].queues", "name", "devices[0].handler.service.mean"]);
    assert!(e.diagnostics.iter().all(|d| d.from_override.is_some()));
    assert!(e.to_string().contains("3 errors in nvme-bare-metal.yaml with overrides devices[0].queues=4096, name=Bad Name, devices[0].handler.service.mean=0us; nothing was run"));
}

#[test]
fn a_problem_the_override_causes_elsewhere_is_in_the_file_and_the_summary_names_the_override() {
    // Host posted MSI needs 6.10: the error is at posted_msi in the file; the summary says
    // which override made the point invalid.
    let e = expect_err("posted-msi", &[("platform.kernel.version", "6.8")]);
    assert_eq!(e.diagnostics.len(), 1);
    let d = &e.diagnostics[0];
    assert_eq!(d.path, "platform.iommu.posted_msi");
    assert!(d.from_override.is_none());
    let text = e.to_string();
    assert!(text.contains("error: posted-msi.yaml:"), "{text}");
    assert!(text.contains("with overrides platform.kernel.version=6.8; nothing was run"), "{text}");
}

#[test]
fn fields_under_a_block_an_override_switches_off_are_warned_about_not_refused() {
    // The file turns remapping on with a lookup latency; a sweep axis turns it off: the
    // latency no longer applies, which is a warning, and the point still runs.
    let s = with("nvme-bare-metal", &[("platform.iommu.interrupt_remapping", "false"), ("duration", "1ms")]).unwrap();
    assert!(s.platform.remapping.is_none());
    let w = s.warnings.iter().find(|w| w.contains("platform.iommu.lookup_latency")).expect("a warning");
    assert!(
        w.starts_with("nvme-bare-metal.yaml:29:21: platform.iommu.lookup_latency: ignored: `100ns` has no effect"),
        "{w}"
    );
    assert!(w.contains("interrupt_remapping is false"), "{w}");
    // The report carries it among the point's warnings.
    let (point, _, _) = scenarios::runner::run_point(&s, 1, 0).unwrap();
    assert!(point.run.warnings.contains(w), "{:?}", point.run.warnings);
    // Written in the file, the same contradiction is an error.
    let text =
        catalog::get("nvme-bare-metal").unwrap().replace("interrupt_remapping: true", "interrupt_remapping: false");
    let e = scenarios::load("off.yaml", &text).unwrap_err().to_string();
    assert!(e.contains("off.yaml:29:21: platform.iommu.lookup_latency: `100ns` has no effect"), "{e}");
    // A catalog scenario loads without warnings.
    for (name, text) in catalog::CATALOG {
        assert_eq!(scenarios::load(name, text).unwrap().warnings, Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_value_overridden_under_a_switch_the_file_turns_off_is_an_error_naming_the_override() {
    let e = expect_err("posted-msi", &[("platform.queueing", "fifo")]);
    let d = &e.diagnostics[0];
    assert_eq!(d.path, "platform.queueing");
    assert!(d.message.contains("`fifo` has no effect with host posted MSI"), "{}", d.message);
    assert_eq!(d.from_override.as_ref().map(|o| o.path.as_str()), Some("platform.queueing"));
    // The other way round, the switch in the override: a warning.
    let text = catalog::get("posted-msi").unwrap().replace("    posted_msi: { loop_cap: 3, pir_scan: 10ns }\n", "");
    let text = text.replace("platform:\n", "platform:\n  queueing: fifo\n");
    let overrides = [("platform.iommu.posted_msi".to_owned(), "{ pir_scan: 10ns }".to_owned())];
    let s = load_with_overrides("p.yaml", &text, &overrides).unwrap();
    assert!(s.warnings.iter().any(|w| w.contains("platform.queueing: ignored: `fifo`")), "{:?}", s.warnings);
}
