//! Exit costs read from a kvm-unit-tests vmexit output (`exit_costs_from`): the example file
//! turned into the model's costs by arithmetic, the scenario's own fields winning over it,
//! and a missing file or a bad line refused with exit code 2, naming the file and line.

use super::{Scratch, irqsim, workspace_root};
use sim::SimDuration;

fn example() -> (String, String) {
    let path = workspace_root().join("scenarios/examples/exit-costs-from-file.yaml");
    let source = std::fs::read_to_string(&path).unwrap();
    (path.display().to_string(), source)
}

#[test]
fn the_example_file_gives_the_exit_costs_at_the_tsc_frequency() {
    let (path, source) = example();
    let s = scenarios::load::load(&path, &source).unwrap();
    // 2.5 GHz: 400 ps a cycle.
    let kvm = s.platform.guests[0].kvm;
    assert_eq!(kvm.exit_costs.external_interrupt, SimDuration::from_ns(600), "cpuid 1,500 cycles");
    assert_eq!(kvm.exit_costs.hlt, SimDuration::from_ns(600));
    assert_eq!(kvm.exit_costs.preemption, SimDuration::from_ns(600));
    assert_eq!(kvm.exit_costs.eoi, SimDuration::from_ns(280), "the ipi test's eoi, 700 cycles");
    let costs = s.platform.devices[0].provisioning.unwrap().costs;
    assert_eq!(costs.mmio_exit_user, SimDuration::from_us(4), "mmio-no-eventfd:pci-mem, 10,000 cycles");
    assert_eq!(costs.route_update, SimDuration::from_us(5), "not an exit: the scenario's");
    // A field the scenario gives wins over the file.
    let own = source.replace("kvm: { apicv: false }", "kvm: { apicv: false, exit_costs: { eoi: 1us } }");
    let s = scenarios::load::load(&path, &own).unwrap();
    assert_eq!(s.platform.guests[0].kvm.exit_costs.eoi, SimDuration::from_us(1));
    assert_eq!(s.platform.guests[0].kvm.exit_costs.hlt, SimDuration::from_ns(600));
}

#[test]
fn a_missing_file_or_a_bad_line_is_refused_with_its_file_and_line() {
    let dir = Scratch::new("vmexit");
    let (_, source) = example();
    let scenario = dir.0.join("s.yaml");
    std::fs::write(&scenario, &source).unwrap();
    let run = || irqsim().arg("validate").arg(&scenario).output().unwrap();
    // No vmexit-example.txt next to it.
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("s.yaml:12:26: exit_costs_from.file"), "{stderr}");
    assert!(stderr.contains("vmexit-example.txt"), "{stderr}");
    // A result line without a number of cycles: the vmexit file's name and line.
    std::fs::write(dir.0.join("vmexit-example.txt"), "enabling apic\ncpuid 1500\nvmcall fast\n").unwrap();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("vmexit-example.txt:3: `vmcall fast`: `fast` is not a positive whole number"), "{stderr}");
}
