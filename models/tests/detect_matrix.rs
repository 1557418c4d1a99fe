//! The decision matrix reproduced by the detection engine: every preset (R1–R17 and one
//! variant per condition of a conditional cell) × every policy column, one assertion per
//! cell on the exact outcome and the reason behind it. docs/detection.md argues each cell
//! and where it departs from the 2020 thread's matrix.

use models::detect::matrix::{COLUMNS, Column};
use models::detect::presets::{PRESETS, by_name};
use models::detect::{
    Driver, FlagTiming, GuestKernel, ImsFlag, Outcome, Policy, Provisioning, Reason, evaluate, provisioning,
};
use models::kernel::KernelVersion;

/// Each cell as the narrow table writes it: the outcome's short name, then the key of the
/// reason (docs/detection.md lists both). Columns: Opt1 opt-in, Opt1 opt-out, Opt2,
/// Opt3, Opt3 + IR parent, Opt4, Linux 6.2-6.9, Linux 6.10+, ims=auto.
const EXPECTED: [(&str, [&str; 9]); 33] = [
    ("R1", ["IMSd", "IMSd", "IMSd", "IMSl", "IMSl", "IMSo", "IMSp", "FB*u", "IMSo"]),
    ("R1b", ["FB*g", "IMSh", "FB*j", "IMSl", "IMSl", "IMSo", "IMSp", "FB*u", "IMSo"]),
    ("R2", ["IMSd", "IMSd", "FB*i", "IMSl", "FB*r", "IMSo", "FB*r", "FB*u", "IMSo"]),
    ("R3", ["FBf", "FBf", "FBi", "BRKl", "FBr", "FBm", "FBr", "FBu", "FBm"]),
    ("R4", ["FBf", "FBf", "FBf", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R4b", ["FBf", "FBf", "FBj", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R5", ["FBf", "FBf", "FBf", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R6", ["FBg", "BRKh", "FBi", "BRKl", "FBr", "BRKo", "FBr", "FBu", "BRKo"]),
    ("R7", ["FBg", "BRKh", "FBf", "FBk", "FBk", "BRKo", "FBq", "FBu", "FBk"]),
    ("R7b", ["FBg", "BRKh", "FBj", "FBk", "FBk", "BRKo", "FBq", "FBu", "FBk"]),
    ("R7c", ["FBg", "BRKh", "BRKd", "FBk", "FBk", "BRKo", "FBq", "FBu", "FBk"]),
    ("R8", ["FBf", "FBf", "FBf", "BRKl", "BRKl", "FBm", "BRKp", "FBu", "FBm"]),
    ("R8b", ["FBf", "FBf", "FBj", "BRKl", "BRKl", "FBm", "BRKp", "FBu", "FBm"]),
    ("R8c", ["FBf", "FBf", "BRKd", "BRKl", "BRKl", "FBm", "BRKp", "FBu", "FBm"]),
    ("R8d", ["FBf", "FBf", "FBf", "BRKl", "BRKl", "BRKo", "BRKp", "FBu", "BRKo"]),
    ("R9", ["FBg", "BRKh", "FBi", "BRKl", "FBr", "FBm", "FBr", "FBu", "FBm"]),
    ("R10", ["FBg", "BRKh", "FBi", "BRKl", "FBr", "BRKo", "FBr", "FBu", "BRKo"]),
    ("R10b", ["FBg", "BRKh", "FBj", "FBk", "FBk", "BRKo", "FBq", "FBu", "FBk"]),
    ("R11", ["IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "FB*q", "FB*u", "IMS-hc"]),
    ("R11b", ["IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "IMS-hc", "FB*q", "FB*u", "IMS-hc"]),
    ("R11c", ["FB*f", "FB*f", "FB*f", "IMS-hc", "IMS-hc", "IMS-hc", "FB*q", "FB*u", "IMS-hc"]),
    ("R12", ["BRKd", "BRKd", "BRKd", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R12b", ["FBf", "FBf", "FBf", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R12c", ["FBe", "FBe", "FBe", "FBk", "FBk", "FBm", "FBq", "FBu", "FBm"]),
    ("R13", ["IMS-td", "IMS-td", "IMS-td", "FB*k", "FB*k", "FB*m", "FB*q", "FB*u", "FB*m"]),
    ("R13b", ["FB*f", "FB*f", "FB*f", "FB*k", "FB*k", "FB*m", "FB*q", "FB*u", "FB*m"]),
    ("R14", ["IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb", "IMS-tb"]),
    ("R15", ["IMS-td", "IMS-td", "IMS-td", "FB*k", "FB*k", "FB*m", "FB*q", "FB*u", "FB*m"]),
    ("R15b", ["FB*f", "FB*f", "FB*f", "FB*k", "FB*k", "FB*m", "FB*q", "FB*u", "FB*m"]),
    ("R16", ["FBf", "FBf", "FBi", "FBs", "FBs", "FBm", "FBs", "FBu", "FBm"]),
    ("R17", ["IMSd", "IMSd", "IMSd", "IMSl", "FB*t", "IMSo", "FB*t", "FB*u", "IMSo"]),
    ("R17b", ["FBf", "FBf", "FBj", "BRKl", "FBt", "FBn", "FBt", "FBu", "FBn"]),
    ("R17c", ["FBf", "FBf", "BRKd", "BRKl", "FBt", "FBn", "FBt", "FBu", "FBn"]),
];

#[test]
fn every_cell_of_the_matrix() {
    assert_eq!(EXPECTED.len(), PRESETS.len());
    for ((id, row), preset) in EXPECTED.iter().zip(PRESETS.iter()) {
        assert_eq!(*id, preset.id, "the presets are in the matrix's row order");
        for (want, column) in row.iter().zip(COLUMNS.iter()) {
            let v = column.cell(preset);
            let got = format!("{}{}", v.outcome.short(), v.reason.key());
            assert_eq!(&got, want, "{id} ({}) under {}: {}", preset.name, column.title, v.reason.words());
        }
    }
}

/// The reason keys the grid uses, spelled out, so the grid reads without the table.
#[test]
fn reason_keys_are_stable() {
    let keys: String = Reason::ALL.iter().map(|r| r.key()).collect();
    assert_eq!(keys, "abcdefghijklmnopqrstu");
    assert_eq!(Reason::NoCachingMode.key(), 'l');
    assert_eq!(Reason::RemapParent.key(), 'p');
    assert_eq!(Reason::NoImsApi.key(), 'u');
}

/// Mainline follows the guest's release: no IMS API in 6.1, the merged rule in 6.2 to 6.9,
/// none again from 6.10 (R8: the one row where the merged rule breaks).
#[test]
fn mainline_by_release() {
    let r8 = by_name("r8").unwrap();
    let at = |minor| {
        let k = GuestKernel { version: KernelVersion::new(6, minor), ..r8.kernel };
        evaluate(&r8.view, &k, Policy::Mainline)
    };
    assert_eq!((at(1).outcome, at(1).reason), (Outcome::Fallback, Reason::NoImsApi));
    assert_eq!((at(2).outcome, at(2).reason), (Outcome::Broken, Reason::RemapParent));
    assert_eq!((at(9).outcome, at(9).reason), (Outcome::Broken, Reason::RemapParent));
    assert_eq!((at(10).outcome, at(10).reason), (Outcome::Fallback, Reason::NoImsApi));
}

/// A driver that does not use IMS falls back under every policy, on every preset but an
/// ADI (whose guest MSI-X the host backs with IMS whatever the guest runs): 32 presets × 9
/// columns FB, R14's 9 cells IMS-t.
#[test]
fn an_unaware_driver_never_breaks() {
    let mut fb = 0;
    let mut trapped = 0;
    for p in &PRESETS {
        for c in &COLUMNS {
            let k = GuestKernel { driver: Driver::Unaware, ..c.kernel(p.kernel) };
            match evaluate(&p.view, &k, c.policy).outcome {
                Outcome::Fallback => fb += 1,
                Outcome::Ims(models::detect::ImsPath::Trapped) => trapped += 1,
                other => panic!("{} under {}: {other:?}", p.name, c.title),
            }
        }
    }
    assert_eq!((fb, trapped), (32 * 9, 9));
}

/// Kevin Tian's objection (R11/R12): a flag fixed at VM creation cannot serve both guests.
/// Were it set knowing the guest, R12 ("allowed" for R11's sake) falls back instead of
/// breaking, and R11 keeps the hypercall even where "disallowed" was chosen at creation.
#[test]
fn flag_set_knowing_the_guest() {
    let known = |name: &str| {
        let p = by_name(name).unwrap();
        let view = models::detect::PlatformView { acpi_timing: FlagTiming::KnownGuest, ..p.view };
        evaluate(&view, &p.kernel, Policy::AcpiOptIn)
    };
    assert_eq!(known("r12").outcome, Outcome::Fallback);
    assert_eq!(known("r12").reason, Reason::FlagDisallowed);
    assert_eq!(known("r11-disallowed").outcome, Outcome::Ims(models::detect::ImsPath::Hypercall));
    assert_eq!(known("r13-disallowed").outcome, Outcome::Ims(models::detect::ImsPath::Trapped));
    // At creation the given value stands: "allowed", and the IMS-aware guest breaks.
    let r12 = by_name("r12").unwrap();
    assert_eq!(r12.view.acpi_flag, ImsFlag::Allowed);
    assert_eq!(evaluate(&r12.view, &r12.kernel, Policy::AcpiOptIn).outcome, Outcome::Broken);
}

/// The seam: guest-composed IMS into an untrappable store exactly where a cell is BRK;
/// MSI-X exactly where it is FB or FB*. Counted row by row from the grid: BRK 1 (R3) + 4
/// (R6) + 2 + 2 + 3 (R7) + 3 + 3 + 4 + 5 (R8) + 2 (R9) + 4 + 2 (R10) + 3 (R12) + 1 + 2
/// (R17) = 41; IMS-h 7 + 7 + 4 (R11) = 18; IMS-t 3 (R13) + 9 (R14) + 3 (R15) = 15; native
/// IMS 8 + 6 (R1) + 5 (R2) + 6 (R17) = 25; FB or FB* the rest, 297 − 99 = 198 (33 × 9 = 297).
#[test]
fn provisioning_follows_the_cells() {
    let (mut direct, mut hcall, mut trapped, mut native, mut msix) = (0, 0, 0, 0, 0);
    for p in &PRESETS {
        for c in &COLUMNS {
            let k = c.kernel(p.kernel);
            let outcome = evaluate(&p.view, &k, c.policy).outcome;
            let prov = provisioning(&p.view, &k, c.policy);
            match prov {
                Provisioning::ImsDirect => {
                    assert_eq!(outcome, Outcome::Broken);
                    direct += 1
                }
                Provisioning::ImsHypercall => hcall += 1,
                Provisioning::ImsTrapped => trapped += 1,
                Provisioning::ImsNative => native += 1,
                Provisioning::Msix => {
                    assert!(matches!(outcome, Outcome::Fallback | Outcome::ScaleLost));
                    msix += 1
                }
                Provisioning::None => panic!("no policy leaves a device without interrupts"),
            }
        }
    }
    let count = |s: &str| EXPECTED.iter().flat_map(|(_, r)| r.iter()).filter(|c| c.starts_with(s)).count();
    assert_eq!(direct, count("BRK"));
    assert_eq!(hcall, count("IMS-h"));
    assert_eq!(trapped, count("IMS-t"));
    assert_eq!(native + hcall + trapped, count("IMS"));
    assert_eq!(msix, count("FB"));
    assert_eq!((direct, hcall, trapped, native, msix), (41, 18, 15, 25, 198));
}

#[test]
fn column_of_each_policy() {
    for p in Policy::ALL {
        assert_eq!(Column::of(p).policy, p);
        assert_eq!(Policy::from_name(p.name()), Some(p));
    }
    assert_eq!(Column::of(Policy::Mainline).version, KernelVersion::new(6, 9));
}

/// The narrow table fits a mail: every line at most 72 characters.
#[test]
fn narrow_table_fits_72_columns() {
    let t = models::detect::matrix::text_table(&PRESETS, &COLUMNS);
    for line in t.lines() {
        assert!(line.chars().count() <= 72, "{line}");
    }
    assert!(t.starts_with("row   1in    1out   2      3      3+IR   4      6.9    6.10   auto\nR1    IMSd"));
}

/// The cost tables weigh what a run's broken guests saw by the population's broken pairs.
/// R8 (a vIOMMU doing remapping: remappable messages) and R3 (none: compatibility format),
/// weight 1 each, every driver IMS-aware. Option 3 as worded breaks both: per broken guest
/// lost (10 + 40) / 2 = 25, misrouted 30 / 2 = 15, cross-tenant 20 / 2 = 10; the merged
/// policy breaks R8 only: 10, 30, 20; 6.10 breaks none: 0. Without a compatibility-format
/// guest in the run, option 3's row cannot be weighed ("-"), the merged policy's still can.
#[test]
fn cost_tables_weigh_each_format_by_the_broken_pairs() {
    use models::detect::population::Population;
    use models::detect::section::{Detection, DirectCost};
    let (r8, r3) = (*by_name("r8").unwrap(), *by_name("r3").unwrap());
    assert!(models::detect::composes_remappable(&r8.view) && !models::detect::composes_remappable(&r3.view));
    let column = |name: &str| *COLUMNS.iter().find(|c| c.name == name).unwrap();
    let d = Detection {
        presets: vec![r8, r3],
        columns: vec![column("caching_mode"), column("linux_6_2_to_6_9"), column("linux_6_10")],
        population: Some(Population { configurations: vec![(r8, 1), (r3, 1)], drivers: vec![(Driver::ImsAware, 1)] }),
    };
    let remappable = DirectCost { lost: 10, misrouted: 30, cross_tenant: 20 };
    let compat = DirectCost { lost: 40, misrouted: 0, cross_tenant: 0 };
    let tables = d.cost_tables(Some(remappable), Some(compat));
    assert_eq!(tables.len(), 2);
    let rows = &tables[0].rows;
    assert_eq!(rows.iter().map(|r| r[3].as_str()).collect::<Vec<_>>(), ["remappable", "compatibility"]);
    assert_eq!(rows[0][4..], ["10", "30", "20"]);
    assert_eq!(tables[1].rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["3", "6.9", "6.10"]);
    let per_policy: Vec<Vec<String>> = tables[1].rows.iter().map(|r| r[2..].to_vec()).collect();
    assert_eq!(
        per_policy,
        [["1/1", "25/1", "15/1", "10/1"], ["1/2", "10/1", "30/1", "20/1"], ["0/1", "0/1", "0/1", "0/1"]]
    );
    let partial: Vec<Vec<String>> =
        d.cost_tables(Some(remappable), None)[1].rows.iter().map(|r| r[3..].to_vec()).collect();
    assert_eq!(partial, [["-", "-", "-"], ["10/1", "30/1", "20/1"], ["0/1", "0/1", "0/1"]]);
    assert!(d.cost_tables(None, None).is_empty());
}
