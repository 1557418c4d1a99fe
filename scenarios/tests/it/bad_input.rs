//! Malformed scenario files: each must give exit code 2, no panic, and an error naming the
//! file, line, column, field path and the problem (the files are in tests/bad/).

use super::{irqsim, workspace_root};

/// (file, expected location `line:col`, expected field path, words the message must hold).
const CASES: &[(&str, &str, &str, &[&str])] = &[
    ("unknown-field", "2:1", "duraton", &["unknown field `duraton`", "expected one of name, description"]),
    ("wrong-type", "7:13", "devices[0].queues", &["expected a whole number", "found `lots`"]),
    ("missing-unit", "8:24", "devices[0].msi_write_latency", &["`500` has no unit", "ns, us"]),
    ("negative-rate", "9:40", "devices[0].arrival.rate", &["`-5k/s` is negative"]),
    ("zero-cpus", "4:9", "platform.cpus", &["0 CPUs", "at least 1"]),
    (
        "too-many-requester-ids",
        "8:12",
        "devices[0].count",
        &["300 copies need 76800 requester ids", "one PCI segment has 65280"],
    ),
    (
        "msix-over-limit",
        "7:13",
        "devices[0].queues",
        &["4096 exceeds the MSI-X table limit of 2048 entries per function"],
    ),
    ("yaml-syntax", "10:12", "devices[0].arrival", &["did not find expected ',' or '}'"]),
    ("empty", "1:1", ".", &["the file is empty"]),
    ("comment-only", "1:1", ".", &["the file is empty"]),
    (
        "unknown-variant",
        "9:25",
        "devices[0].arrival.process",
        &["unknown variant `poison`", "poisson, constant, on_off"],
    ),
    ("missing-field", "4:1", ".", &["missing field `duration`"]),
    ("duplicate-key", "5:3", "platform.cpus", &["duplicate key `cpus`"]),
    ("lognormal-without-stddev", "11:24", "devices[0].handler.service.stddev", &["required with dist: lognormal"]),
    ("affinity-out-of-range", "8:15", "devices[0].affinity", &["CPU 63", "4 CPUs (0 to 3)"]),
    ("x2apic-without-remapping", "4:9", "platform.cpus", &["512 CPUs", "interrupt_remapping: true"]),
    ("negative-count", "7:12", "devices[0].count", &["found `-1`"]),
    ("not-a-mapping", "1:1", ".", &["expected a mapping", "found `just a string`"]),
    ("on-off-without-periods", "9:25", "devices[0].arrival.on", &["required with process: on_off"]),
    ("many-errors", "1:7", "name", &["`Bad Name` is not a valid name"]),
    ("kernel-too-old", "5:22", "platform.kernel.version", &["4.19 is older than 5.11"]),
    ("kernel-not-a-version", "5:22", "platform.kernel.version", &["`six` is not a MAJOR.MINOR release"]),
    ("action-two-kinds", "13:11", "actions[0]", &["exactly one of cpu_offline, cpu_online, set_affinity"]),
    (
        "action-unknown-device",
        "13:42",
        "actions[0].set_affinity.device",
        &["no device named `nvme9`", "devices are: d"],
    ),
    ("action-after-end", "13:11", "actions[0].at", &["after the end of the run (1ms)"]),
    ("numa-node-out-of-range", "8:16", "devices[0].numa_node", &["node 2 does not exist"]),
    ("msi-over-32", "8:13", "devices[0].queues", &["64 exceeds the MSI limit of 32 vectors per function"]),
    ("ims-slots-with-msix", "7:16", "devices[0].ims_slots", &["only allowed with interrupt_store: ims_device"]),
    (
        "ims-masked-raise-with-msix",
        "7:23",
        "devices[0].ims_masked_raise",
        &["only allowed with interrupt_store: ims_device or ims_queue", "msix"],
    ),
    ("adis-with-msix", "7:16", "devices[0].siov_adis", &["ADIs take their interrupts from IMS"]),
    (
        "ims-queue-without-latency",
        "8:13",
        "devices[0].ims_update_latency",
        &["required with interrupt_store: ims_queue"],
    ),
    ("irte-update-missing", "4:9", "platform.iommu.irte_update", &["required when actions move interrupts"]),
    ("iommu-fields-out-of-range", "5:89", "platform.iommu.fault_recording_registers", &["0 is outside 1 to 256"]),
    ("arm-without-gic", "4:9", "platform.gic", &["required with arch: arm"]),
    ("arm-with-remapping", "4:9", "platform.iommu", &["the SMMU does not remap MSIs"]),
    ("gic-on-x86", "4:9", "platform.gic", &["a GIC needs arch: arm"]),
    ("its-without-costs", "4:9", "platform.gic.its_command", &["required with msi: its"]),
    ("posted-msi-old-kernel", "6:74", "platform.iommu.posted_msi", &["host posted MSI appeared in Linux 6.10"]),
    ("assigned-to-unknown-guest", "8:18", "devices[0].assigned_to", &["no guest named `vm9`"]),
    ("tenants-count", "13:14", "devices[0].tenants", &["1 names for 2 functions per copy"]),
    ("tenants-unknown-guest", "13:20", "devices[0].tenants[1]", &["no guest named `vm1`; guests are: vm0"]),
    (
        "for-tenants-not-a-tenant",
        "14:53",
        "devices[0].provisioning.for_tenants[0]",
        &["`vm2` is not a tenant of this device"],
    ),
    (
        "guest-without-remapping",
        "13:11",
        "guests[0]",
        &["posted interrupts need platform.iommu.interrupt_remapping: true"],
    ),
    ("guest-on-gicv3", "8:11", "guests[0]", &["direct vLPI injection needs GICv4"]),
    ("hotplug-of-vcpu-pcpu", "19:31", "actions[0]", &["CPU 3 runs vCPUs of guest `vm0`"]),
    ("guest-msi-without-guest", "8:16", "devices[0].guest_msi", &["guest_msi needs assigned_to"]),
    ("fallback-without-forward-cost", "15:16", "devices[0].guest_msi", &["the guest needs remapped_forward"]),
    (
        "iommu-unit-out-of-range",
        "9:17",
        "devices[0].iommu_unit",
        &["unit 2 does not exist; the platform has 2 remapping unit(s)"],
    ),
    (
        "cost-too-long",
        "8:24",
        "devices[0].msi_write_latency",
        &["`2s` exceeds 1s, the longest a single latency or cost"],
    ),
    ("run-too-long", "2:11", "duration", &["`120min` exceeds 3600s, the longest a run or period"]),
    (
        "rate-too-fast",
        "9:40",
        "devices[0].arrival.rate",
        &["faster than one per picosecond", "mean gap would be below 1ps"],
    ),
    ("rate-too-slow", "9:40", "devices[0].arrival.rate", &["slower than one per hour", "allowed 1/3600 /s to 1000G/s"]),
    ("on-off-period-wraps", "9:50", "devices[0].arrival.on", &["`120000min` exceeds 3600s"]),
    ("count-in-billions", "7:12", "devices[0].count", &["3000000000 copies need 24000000000 requester ids"]),
    ("too-many-queues", "9:16", "devices[0].siov_adis", &["= 5000000 queues", "at most 4194304 (2^22) queues"]),
    ("too-many-vcpus", "8:12", "guests[0].vcpus", &["3000000000 vCPUs", "at most 1048576 (2^20)"]),
    (
        "gicv4-doorbells-exhausted",
        "9:12",
        "guests[0].vcpus",
        &["40000 vCPUs need a block of 65536 doorbell LPIs", "the ITS has 57344 LPIs"],
    ),
    ("not-utf8", "2:18", ".", &["not UTF-8 text", "0xe9 is not valid UTF-8"]),
    (
        "exponent-rate",
        "9:40",
        "devices[0].arrival.rate",
        &["`1e30/s`: exponent notation (`e30`) is not accepted", "k/s, M/s"],
    ),
    ("two-documents", "13:1", ".", &["more than one YAML document", "remove the second `---`"]),
    ("name-without-value", "1:5", "name", &["expected a text value, found none"]),
    (
        "iommu-off-with-fields",
        "5:56",
        "platform.iommu.lookup_latency",
        &[
            "`banana` has no effect",
            "interrupt_remapping is false",
            "set interrupt_remapping: true, or remove lookup_latency",
        ],
    ),
    ("numa-nodes-on-arm", "6:15", "platform.numa_nodes", &["2 NUMA nodes have no effect on arm", "remove numa_nodes"]),
    ("irq-mode-on-arm", "10:15", "devices[0].irq_mode", &["`managed` has no effect on arm", "remove irq_mode"]),
    (
        "iommu-unit-without-remapping",
        "8:17",
        "devices[0].iommu_unit",
        &["unit 0 has no effect: interrupt remapping is off", "remove iommu_unit"],
    ),
    (
        "queueing-with-posted-msi",
        "5:13",
        "platform.queueing",
        &["`fifo` has no effect with host posted MSI", "remove queueing, or posted_msi"],
    ),
    ("lpi-id-bits-with-v2m", "6:60", "platform.gic.lpi_id_bits", &["20 has no effect with msi: v2m", "use msi: its"]),
    (
        "remapped-forward-on-arm",
        "11:23",
        "guests[0].remapped_forward",
        &["`2us` has no effect on arm", "remove remapped_forward"],
    ),
    (
        "wakeup-list-on-arm",
        "11:59",
        "guests[0].posted.wakeup_list_entry",
        &["`20ns` has no effect on arm", "there is no wake-up list to walk", "remove posted.wakeup_list_entry"],
    ),
    (
        "posted-cost-missing-on-x86",
        "7:11",
        "guests[0].posted.notify_running",
        &["guest `vm0` needs posted.notify_running on x86", "no published figure"],
    ),
    ("lpi-id-bits-out-of-range", "6:135", "platform.gic.lpi_id_bits", &["30 is outside 14 to 24"]),
    ("v2m-spis-out-of-range", "6:70", "platform.gic.v2m_spis", &["2000 is outside 1 to 988"]),
    ("too-many-cpus", "4:9", "platform.cpus", &["70000 exceeds the limit of 65536 CPUs"]),
    ("hotplug-on-arm", "8:11", "actions[0]", &["CPU hotplug is not modelled on arm yet"]),
    ("zero-vcpus", "8:12", "guests[0].vcpus", &["0 vCPUs: a guest needs at least 1"]),
    (
        "guest-msi-destinations-out-of-range",
        "19:49",
        "devices[0].guest_msi.destinations",
        &["3 destinations; the guest has 2 vCPUs (1 to 2)"],
    ),
    ("guest-msi-on-arm", "19:16", "devices[0].guest_msi", &["guest_msi applies to VT-d posting (x86)"]),
    ("zero-host-burst-length", "11:40", "guests[0].host_bursts.length", &["`0us` is zero; it must be positive"]),
    (
        "posted-msi-zero-loop-cap",
        "5:102",
        "platform.iommu.posted_msi.loop_cap",
        &["0 passes: the demux loop cap must be at least 1"],
    ),
    ("alias-bomb", "10:16", "templates.b5[1][1][3][8][7]", &["aliases (`*name`) here expand to more values"]),
    ("zero-service-mean", "11:43", "devices[0].handler.service.mean", &["`0ns` is zero; it must be positive"]),
    ("zero-lognormal-stddev", "11:54", "devices[0].handler.service.stddev", &["`0us` is zero; it must be positive"]),
    ("on-off-zero-on", "9:50", "devices[0].arrival.on", &["`0us` is zero; it must be positive"]),
    ("zero-host-burst-gap", "11:25", "guests[0].host_bursts.gap", &["`0us` is zero; it must be positive"]),
    ("numa-nodes-over-cpus", "5:15", "platform.numa_nodes", &["8 NUMA nodes for 4 CPUs; allowed 1 to 4"]),
    (
        "no-apicv-without-eoi-cost",
        "7:11",
        "guests[0].kvm.exit_costs.eoi",
        &["guest `vm0` has no APICv, so its EOIs exit", "needs kvm.exit_costs.eoi", "no published figure"],
    ),
    (
        "no-apicv-without-forward",
        "7:11",
        "guests[0].remapped_forward",
        &["without APICv nothing is posted", "the guest needs remapped_forward"],
    ),
    ("apicv-off-on-arm", "8:11", "guests[0].kvm.apicv", &["APICv is x86's", "remove kvm.apicv"]),
    ("zero-slice", "12:19", "guests[0].kvm.slice", &["`0us` is zero; it must be positive"]),
    (
        "detection-unknown-preset",
        "13:24",
        "detection.configurations[1]",
        &["`r99` is not a configuration preset", "allowed: r1, r1-old-firmware"],
    ),
    ("detection-unknown-policy", "13:14", "detection.policies[0]", &["`mainline` is not a policy", "linux_6_10"]),
    ("detection-zero-weight", "14:36", "detection.population[0].weight", &["0 is not a weight", "1 to 1000000000"]),
    ("detection-unknown-driver", "16:17", "detection.drivers[0].driver", &["`ims` is not a driver", "ims_aware"]),
    (
        "provisioning-cost-missing",
        "20:7",
        "devices[0].provisioning.costs.route_update",
        &["costs.route_update is required", "no published figure", "docs/sources.md#provision-costs"],
    ),
    (
        "ims-trapped-in-queue-memory",
        "22:13",
        "devices[0].provisioning.mode",
        &["ims_trapped needs IMS in device memory", "the VMM cannot trap it; use ims_hypercall"],
    ),
    (
        "provisioning-without-assigned-to",
        "19:7",
        "devices[0].provisioning",
        &["applies to a device assigned to a guest: add assigned_to"],
    ),
    (
        "affinity-with-masking",
        "22:23",
        "devices[0].provisioning.affinity_every",
        &["one control plane per function: give masking or affinity_every, not both"],
    ),
    ("migration-one-pcpu", "9:12", "guests[0].pcpus", &["`3` is one CPU: a migrating guest needs at least two pCPUs"]),
    (
        "ipiv-without-apicv",
        "12:32",
        "guests[0].kvm.ipiv",
        &["`true` needs APICv", "`enable_ipiv` is cleared without it"],
    ),
    (
        "ipi-without-icr-exit",
        "11:18",
        "guests[0].ipi.icr_exit",
        &["sends IPIs without IPIv, so each ICR write exits (MSR_WRITE): it needs ipi.icr_exit"],
    ),
    ("ipi-one-vcpu", "8:12", "guests[0].vcpus", &["1 vCPU: a guest that sends IPIs needs at least 2"]),
    (
        "ipi-xapic-without-ipiv",
        "12:18",
        "guests[0].ipi",
        &["in xAPIC mode the ICR write is a store to the APIC page", "use kvm.apic_mode: x2apic or kvm.ipiv: true"],
    ),
    (
        "arm-provisioning-ims",
        "21:13",
        "devices[0].provisioning.mode",
        &["ims_trapped needs IMS, which arm64 does not have", "MSI_FLAG_PCI_IMS"],
    ),
    (
        "arm-dynamic-msix",
        "22:21",
        "devices[0].provisioning.dynamic_msix",
        &[
            "an arm64 host on Linux 6.10 has no dynamic MSI-X",
            "MSI_FLAG_PCI_MSIX_ALLOC_DYN only from 7.3",
            "VFIO_IRQ_INFO_NORESIZE",
            "or set platform.kernel.version to \"7.3\" or later",
        ],
    ),
    (
        "arm-kernel-hz",
        "4:9",
        "platform.kernel.hz",
        &["hz shapes the x86 vector space", "on arm only platform.kernel.version applies", "remove hz"],
    ),
    (
        "arm-affinity",
        "21:7",
        "devices[0].provisioning.costs.mmio_exit_kernel",
        &["costs.mmio_exit_kernel is required", "a virtual ITS register access on arm64", "no published figure"],
    ),
    (
        "mmio-exit-kernel-on-x86",
        "22:123",
        "devices[0].provisioning.costs.mmio_exit_kernel",
        &["no exit of this provisioning is handled in the kernel", "arch: arm with affinity_every only"],
    ),
    ("vpe-id-bits-on-v4-0", "6:112", "platform.gic.vpe_id_bits", &["8 is not 16", "fewer need version: v4.1"]),
    (
        "mask-path-trapped",
        "22:18",
        "devices[0].provisioning.mask_path",
        &["msix_trapped masks on its trapped path; mask_path applies to mode: ims_hypercall only"],
    ),
    (
        "hot-add-without-provisioning",
        "15:17",
        "devices[0].hot_add_at",
        &["a hot-added function's driver brings its vectors up through its provisioning"],
    ),
    ("apic-mode-on-arm", "12:23", "guests[0].kvm.apic_mode", &["the local APIC mode is x86's"]),
];

#[test]
fn every_bad_file_gets_a_precise_error_and_exit_2() {
    let dir = workspace_root().join("scenarios/tests/bad");
    let files = std::fs::read_dir(&dir).expect("tests/bad exists").count();
    assert_eq!(files, CASES.len(), "every file in tests/bad needs a case here");
    for (name, at, path, words) in CASES {
        let file = dir.join(format!("{name}.yaml"));
        for command in ["validate", "run"] {
            let out = irqsim().arg(command).arg(&file).output().expect("irqsim runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} ({command}): exit code\n{stderr}");
            assert!(!stderr.contains("panicked"), "{name}: panicked\n{stderr}");
            let head = format!("{}:{at}: {path}: ", file.display());
            assert!(stderr.contains(&head), "{name} ({command}): expected `{head}` in\n{stderr}");
            for w in *words {
                assert!(stderr.contains(w), "{name} ({command}): expected `{w}` in\n{stderr}");
            }
        }
    }
}

#[test]
fn all_errors_are_collected_not_just_the_first() {
    let file = workspace_root().join("scenarios/tests/bad/many-errors.yaml");
    let out = irqsim().arg("validate").arg(&file).output().expect("irqsim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        ":1:7: name: ",
        ":2:11: duration: `1 fortnight`: unknown unit `fortnight`",
        ":7:13: devices[0].queues: 3000 exceeds the MSI-X table limit",
        ":11:43: devices[0].handler.service.mean: `0us` is zero",
        "4 errors in",
    ] {
        assert!(stderr.contains(expected), "expected `{expected}` in\n{stderr}");
    }
}

#[test]
fn a_missing_file_is_bad_input_not_a_crash() {
    let out = irqsim().args(["run", "/nonexistent/scenario.yaml"]).output().expect("irqsim runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.yaml: cannot read"));
    let out = irqsim().args(["run", "--builtin", "no-such"]).output().expect("irqsim runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the catalog has: nvme-bare-metal"));
}

#[test]
fn forty_thousand_devices_validate_in_linear_time() {
    // The unique-name check compared each function's name with every earlier one: 40,000
    // devices took about 10 s. 4,000 entries of 10 VFs each are 40,000 functions (64,000
    // requester ids, within one segment; 40,000 entries would exceed the parser's node
    // budget). The bound is generous so that it cannot flake: linear takes well under 1 s.
    let mut text = String::from("name: many\nduration: 1ms\nplatform:\n  cpus: 4\ndevices:\n");
    let entry = |name: &str, vfs: &str| {
        format!(
            "  - {{ name: {name},{vfs} queues: 1, msi_write_latency: 500ns, arrival: {{ process: poisson, rate: 1k/s }}, handler: {{ service: {{ dist: constant, mean: 1us }} }} }}\n"
        )
    };
    for i in 0..4_000 {
        text.push_str(&entry(&format!("d{i}"), " sriov_vfs: 10,"));
    }
    // A name that one of the VFs above already has is still found.
    text.push_str(&entry("d7-vf3", ""));
    let start = std::time::Instant::now();
    let Err(err) = scenarios::load("many.yaml", &text) else { panic!("d7-vf3 twice was accepted") };
    let elapsed = start.elapsed();
    let err = err.to_string();
    assert!(err.contains("device name `d7-vf3` is already used by devices[7]"), "{err}");
    assert!(elapsed < std::time::Duration::from_secs(5), "validating 40,000 devices took {elapsed:?}");
}

#[test]
fn a_scenario_over_max_memory_is_refused_with_both_numbers() {
    let out =
        irqsim().args(["run", "--builtin", "nvme-bare-metal", "--max-memory", "1M"]).output().expect("irqsim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("builtin:nvme-bare-metal: the run would need about"), "{stderr}");
    assert!(stderr.contains("more than --max-memory of 1.0 MiB (1048576 bytes)"), "{stderr}");
    let out = irqsim().args(["run", "--builtin", "nvme-bare-metal", "--max-memory", "lots"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_enormous_run_says_so_before_it_starts() {
    let dir = std::env::temp_dir().join(format!("irqsim-enormous-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("enormous.yaml");
    std::fs::write(
        &file,
        "name: enormous\nduration: 60min\nplatform:\n  cpus: 4\ndevices:\n  - name: d\n    queues: 8\n    msi_write_latency: 500ns\n    arrival: { process: poisson, rate: 1M/s }\n    handler:\n      service: { dist: constant, mean: 1us }\n",
    )
    .expect("write");
    // --max-memory stops it right after the announcement.
    let out = irqsim().arg("run").arg(&file).args(["--max-memory", "1K"]).output().expect("irqsim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // 8 queues x 1M/s x 3,600 s = 2.88e10 interrupts, three events each on the event path
    // (LAPIC queueing without remapping: the raise, the MSI write, the handler's end).
    assert!(stderr.contains("about 8.64e10 events to simulate"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn arm_dynamic_msix_is_accepted_from_linux_7_3_and_defaults_to_the_host_kernel() {
    // tests/bad/arm-dynamic-msix.yaml asks for dynamic MSI-X on the default 6.10 host; the
    // same file on a 7.3 host is valid, and without the field the host decides: 7.3 yes,
    // 7.2 no (the ITS MSI parent offers MSI_FLAG_PCI_MSIX_ALLOC_DYN from 7.3).
    let bad = std::fs::read_to_string(workspace_root().join("scenarios/tests/bad/arm-dynamic-msix.yaml")).unwrap();
    let on = |text: &str, version: &str| {
        text.replace("  cpus: 4\n", &format!("  cpus: 4\n  kernel: {{ version: \"{version}\" }}\n"))
    };
    let dynamic = |text: &str| {
        let s = scenarios::load("arm.yaml", text).unwrap_or_else(|e| panic!("{e}"));
        s.platform.devices[0].provisioning.as_ref().expect("provisioned").dynamic_msix
    };
    assert!(dynamic(&on(&bad, "7.3")));
    let unset = bad.replace("      dynamic_msix: true\n", "");
    assert!(dynamic(&on(&unset, "7.3")));
    assert!(!dynamic(&on(&unset, "7.2")));
    let Err(err) = scenarios::load("arm.yaml", &on(&bad, "7.2")) else { panic!("dynamic MSI-X on 7.2 was accepted") };
    assert!(err.to_string().contains("an arm64 host on Linux 7.2 has no dynamic MSI-X"), "{err}");
}
