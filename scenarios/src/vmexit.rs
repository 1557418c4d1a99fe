//! Exit costs read from a kvm-unit-tests `vmexit` run (x86/vmexit.c): the file a user
//! captured on their own hardware, one `<test> <cycles>` line per test (TSC cycles per
//! iteration), turned into the model's exit costs at the scenario's `tsc_ghz`.
//!
//! The format, as `do_test` prints it: `<name> <cycles>`; `<name> (skipped)` when a test's
//! precondition fails; after a test that measured them, `  ipi <name> <cycles>` and
//! `  eoi <name> <cycles>` (the IPI and the EOI inside the IPI tests' handler); the PCI test
//! device's tests are named `<device test>:pci-mem` and `<device test>:pci-io`. Other lines
//! (the test harness's boot messages, `pci-testdev at ...`) are not results and are skipped.
//! A line that starts with a known test name but has no whole number of cycles, and a test
//! given twice, are errors naming the file and line.
//!
//! The mapping (docs/sources.md#kvm-unit-tests-vmexit; what a field given in the scenario sets
//! wins over the file):
//! - `cpuid`: the shortest round trip through KVM (exit, a trivial handler, entry), the
//!   world switch the defaults of `exit_costs.external_interrupt`, `hlt` and `preemption`
//!   stand for;
//! - `eoi <test>` of an IPI test: `exit_costs.eoi` (the EOI write as the guest's APIC mode and
//!   the host's APICv made it when measured);
//! - `vmcall`: `provisioning.costs.vmcall` (KVM's handling of the hypercall itself; the
//!   model's route update inside it is not in the figure);
//! - `mmio-no-eventfd:pci-mem` (an MMIO write exit to QEMU), else `inl_from_qemu` (a port
//!   read exit to QEMU, the nearest the older files have): `provisioning.costs.mmio_exit_user`.
//!
//! What the file cannot give: the host-side costs of provisioning (`route_update`,
//! `set_irqs`, `request_irq`, `free_irq`: ioctls and kernel work, not exits), the posting
//! and wake-up costs, ITS and IRTE costs. Tests with no counterpart in the model
//! (`mov_to_cr8`, `inl_from_kernel`, `tscdeadline`, the self-IPI and MSR tests, `ipi`, ...)
//! are read and left unused.

use sim::SimDuration;

/// Test names x86/vmexit.c prints (current and older spellings).
const TESTS: &[&str] = &[
    "cpuid",
    "vmcall",
    "mov_from_cr8",
    "mov_to_cr8",
    "inl_from_pmtimer",
    "inl_from_qemu",
    "inl_from_kernel",
    "outl_to_kernel",
    "mov_dr",
    "tscdeadline_immed",
    "tscdeadline",
    "self_ipi_sti_nop",
    "self_ipi_sti_hlt",
    "self_ipi_tpr",
    "self_ipi_tpr_sti_nop",
    "self_ipi_tpr_sti_hlt",
    "x2apic_self_ipi_sti_nop",
    "x2apic_self_ipi_sti_hlt",
    "x2apic_self_ipi_tpr",
    "x2apic_self_ipi_tpr_sti_nop",
    "x2apic_self_ipi_tpr_sti_hlt",
    "ipi",
    "ipi_halt",
    "ipi+halt",
    "ple_round_robin",
    "ple-round-robin",
    "wr_kernel_gs_base",
    "wr_tsx_ctrl_msr",
    "wr_ibrs_msr",
    "wr_ibpb_msr",
    "wr_tsc_adjust_msr",
    "rd_tsc_adjust_msr",
    "toggle_cr0_wp",
    "toggle_cr4_pge",
    "pci-mem",
    "pci-io",
];

fn known(name: &str) -> bool {
    TESTS.contains(&name) || name.ends_with(":pci-mem") || name.ends_with(":pci-io")
}

/// The model's exit costs a vmexit file gives (each `None` when the file lacks its test).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileCosts {
    /// `cpuid`: the world switch (EXTERNAL_INTERRUPT, HLT, preemption).
    pub(crate) world_switch: Option<SimDuration>,
    /// The EOI measured in an IPI test.
    pub(crate) eoi: Option<SimDuration>,
    /// `vmcall`.
    pub(crate) vmcall: Option<SimDuration>,
    /// An MMIO (or, lacking it, port I/O) exit to the userspace VMM.
    pub(crate) mmio_exit_user: Option<SimDuration>,
}

/// One result line: the test (`eoi ipi` for a sub-measurement), its cycles, its line.
type Entry = (String, u64, usize);

/// Reads the text of a vmexit output; `name` names it in errors (`name:line: ...`).
pub(crate) fn parse(name: &str, text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = i + 1;
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let (test, cycles) = match tokens.as_slice() {
            [test, "(skipped)"] if known(test) => continue,
            [test, cycles] if known(test) => ((*test).to_owned(), *cycles),
            [sub @ ("ipi" | "eoi"), test, cycles] if known(test) => (format!("{sub} {test}"), *cycles),
            [first, ..] if known(first) && tokens.len() > 2 => {
                return Err(format!(
                    "{name}:{at}: `{}`: a result line is `<test> <cycles>` (x86/vmexit.c's printf)",
                    line.trim()
                ));
            }
            _ => continue, // boot messages and other output
        };
        let Some(value) = cycles.parse::<u64>().ok().filter(|&c| c > 0) else {
            return Err(format!(
                "{name}:{at}: `{}`: `{cycles}` is not a positive whole number of TSC cycles",
                line.trim()
            ));
        };
        if let Some((_, _, first)) = entries.iter().find(|(t, _, _)| *t == test) {
            return Err(format!("{name}:{at}: `{test}` was already given on line {first}; keep one run per file"));
        }
        entries.push((test, value, at));
    }
    Ok(entries)
}

/// The costs of `entries` at a TSC of `tsc_khz` kHz.
pub(crate) fn costs(entries: &[Entry], tsc_khz: u64) -> FileCosts {
    let get = |test: &str| {
        entries.iter().find(|(t, _, _)| t == test).map(|&(_, c, _)| SimDuration::from_cycles(c, tsc_khz * 1_000))
    };
    let eoi = entries
        .iter()
        .find(|(t, _, _)| t.starts_with("eoi "))
        .map(|&(_, c, _)| SimDuration::from_cycles(c, tsc_khz * 1_000));
    let pci_mem = entries
        .iter()
        .find(|(t, _, _)| t == "mmio-no-eventfd:pci-mem")
        .map(|&(_, c, _)| SimDuration::from_cycles(c, tsc_khz * 1_000));
    FileCosts {
        world_switch: get("cpuid"),
        eoi,
        vmcall: get("vmcall"),
        mmio_exit_user: pci_mem.or_else(|| get("inl_from_qemu")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_read_and_other_output_skipped() {
        let text = "enabling apic\npaging enabled\ncpuid 1250\nvmcall 1500\nipi (skipped)\n\
                    mmio-no-eventfd:pci-mem 9000\nipi 4000\n  ipi ipi 2500\n  eoi ipi 600\ninl_from_qemu 8000\n";
        let entries = parse("f.txt", text).unwrap();
        // At 2.5 GHz a cycle is 400 ps: cpuid 500 ns, vmcall 600 ns, the EOI 240 ns, and the
        // MMIO test (preferred over the port read) 3.6 us.
        let c = costs(&entries, 2_500_000);
        assert_eq!(c.world_switch, Some(SimDuration::from_ns(500)));
        assert_eq!(c.vmcall, Some(SimDuration::from_ns(600)));
        assert_eq!(c.eoi, Some(SimDuration::from_ns(240)));
        assert_eq!(c.mmio_exit_user, Some(SimDuration::from_ns(3_600)));
        // Without the PCI test device's results, the port read to QEMU: 8,000 cycles = 3.2 us.
        let c = costs(&parse("f", "inl_from_qemu 8000\n").unwrap(), 2_500_000);
        assert_eq!(c.mmio_exit_user, Some(SimDuration::from_ns(3_200)));
        assert_eq!(c.world_switch, None);
    }

    #[test]
    fn a_bad_or_repeated_result_names_its_line() {
        assert_eq!(
            parse("f.txt", "cpuid 12\nvmcall lots\n").unwrap_err(),
            "f.txt:2: `vmcall lots`: `lots` is not a positive whole number of TSC cycles"
        );
        assert_eq!(
            parse("f.txt", "cpuid 12\n\ncpuid 13\n").unwrap_err(),
            "f.txt:3: `cpuid` was already given on line 1; keep one run per file"
        );
        assert!(parse("f.txt", "cpuid 1 2\n").unwrap_err().starts_with("f.txt:1: `cpuid 1 2`"));
    }
}
