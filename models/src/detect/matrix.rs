//! The decision matrix: configurations (presets) × policy columns, each cell
//! [`super::evaluate`]d, and its renderings — a 72-column text table with a legend (for
//! every output, mail included) and the same cells as data with the reasons in words.

use std::fmt::Write;

use super::presets::Preset;
use super::{GuestKernel, Policy, Reason, Verdict, evaluate};
use crate::kernel::KernelVersion;

/// A column of the matrix: a policy, evaluated with a given guest release where the policy
/// is [`Policy::Mainline`] (6.2–6.9 vs 6.10+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The name scenario files use (`acpi_opt_in`, `linux_6_2_to_6_9`, …).
    pub name: &'static str,
    /// The header in the narrow table (at most 6 characters).
    pub key: &'static str,
    /// What it is, in words.
    pub title: &'static str,
    /// The policy.
    pub policy: Policy,
    /// The guest release the column assumes, replacing the preset's.
    pub version: KernelVersion,
}

impl Column {
    /// The column of `policy` (for [`Policy::Mainline`], the 6.2–6.9 one).
    pub fn of(policy: Policy) -> Column {
        *COLUMNS.iter().find(|c| c.policy == policy).expect("every policy has a column")
    }

    /// The column of a scenario file's name.
    pub fn by_name(name: &str) -> Option<Column> {
        COLUMNS.iter().find(|c| c.name == name).copied()
    }

    /// The guest kernel this column evaluates `kernel` as.
    pub const fn kernel(&self, kernel: GuestKernel) -> GuestKernel {
        GuestKernel { version: self.version, ..kernel }
    }

    /// The cell of `preset` in this column.
    pub fn cell(&self, preset: &Preset) -> Verdict {
        evaluate(&preset.view, &self.kernel(preset.kernel), self.policy)
    }
}

const WITH_IMS: KernelVersion = KernelVersion::new(6, 9);

/// The matrix's columns: Kevin Tian's options 1–4 (option 1 read opt-in and opt-out,
/// option 3 with and without the IR-parent rule), mainline 6.2–6.9 and 6.10+, and the
/// `ims=auto` hybrid. The proposals are evaluated on a release with the IMS API (6.9).
pub const COLUMNS: [Column; 9] = [
    Column {
        name: "acpi_opt_in",
        key: "1in",
        title: "Opt1 ACPI flag, opt-in",
        policy: Policy::AcpiOptIn,
        version: WITH_IMS,
    },
    Column {
        name: "acpi_opt_out",
        key: "1out",
        title: "Opt1 ACPI flag, opt-out",
        policy: Policy::AcpiOptOut,
        version: WITH_IMS,
    },
    Column { name: "dmar_iort", key: "2", title: "Opt2 DMAR/IORT flag", policy: Policy::DmarIort, version: WITH_IMS },
    Column {
        name: "caching_mode",
        key: "3",
        title: "Opt3 caching mode",
        policy: Policy::CachingMode,
        version: WITH_IMS,
    },
    Column {
        name: "caching_mode_ir_parent",
        key: "3+IR",
        title: "Opt3 + IR parent required",
        policy: Policy::CachingModeIrParent,
        version: WITH_IMS,
    },
    Column { name: "cpuid_dmi", key: "4", title: "Opt4 CPUID + DMI", policy: Policy::CpuidDmi, version: WITH_IMS },
    Column {
        name: "linux_6_2_to_6_9",
        key: "6.9",
        title: "Linux 6.2-6.9 as merged",
        policy: Policy::Mainline,
        version: WITH_IMS,
    },
    Column {
        name: "linux_6_10",
        key: "6.10",
        title: "Linux 6.10+ (IMS removed)",
        policy: Policy::Mainline,
        version: KernelVersion::new(6, 10),
    },
    Column {
        name: "hybrid_auto",
        key: "auto",
        title: "hybrid ims=auto",
        policy: Policy::HybridAuto,
        version: WITH_IMS,
    },
];

/// The cells of `presets` × `columns`, row by row.
pub fn cells(presets: &[Preset], columns: &[Column]) -> Vec<Vec<Verdict>> {
    presets.iter().map(|p| columns.iter().map(|c| c.cell(p)).collect()).collect()
}

/// The legend of the outcomes, one line each.
pub const OUTCOME_LEGEND: [&str; 6] = [
    "IMS    IMS composed by the kernel on bare metal, works",
    "IMS-h  IMS composed by the hypervisor (hypercall), works",
    "IMS-t  IMS written by the guest, trapped by the VMM, works",
    "FB     MSI-X fallback, the right answer",
    "FB*    MSI-X fallback, safe, but IMS would have worked (scale lost)",
    "BRK    guest-composed messages into an untrappable store (broken)",
];

/// The matrix as a text table at most 72 columns wide: a row per preset (its short id),
/// a column per policy, each cell the outcome and the key of its reason, then the legend
/// of the columns, the outcomes, the reasons that occur and the rows.
pub fn text_table(presets: &[Preset], columns: &[Column]) -> String {
    let cells = cells(presets, columns);
    let mut s = format!("{:<5}", "row");
    for c in columns {
        let _ = write!(s, " {:<6}", c.key);
    }
    s = s.trim_end().to_owned();
    s.push('\n');
    let mut used: Vec<Reason> = Vec::new();
    for (p, row) in presets.iter().zip(&cells) {
        let mut line = format!("{:<5}", p.id);
        for v in row {
            let _ = write!(line, " {:<6}", format!("{}{}", v.outcome.short(), v.reason.key()));
            if !used.contains(&v.reason) {
                used.push(v.reason);
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    used.sort();
    s.push_str("\ncolumns:\n");
    for c in columns {
        let _ = writeln!(s, "  {:<6} {}", c.key, c.title);
    }
    s.push_str("outcomes (the letter after each is its reason):\n");
    for l in OUTCOME_LEGEND {
        let _ = writeln!(s, "  {l}");
    }
    s.push_str("reasons:\n");
    for r in used {
        let _ = writeln!(s, "  {}  {}", r.key(), r.words());
    }
    s.push_str("rows:\n");
    for p in presets {
        let _ = writeln!(s, "  {:<5}{}", p.id, p.title);
    }
    s
}

/// The matrix as data: column names (`row`, `configuration`, then each column's title)
/// and, per preset, its id, name and each cell as `outcome: reason in words`.
pub fn rows(presets: &[Preset], columns: &[Column]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut names = vec!["row".to_owned(), "configuration".to_owned()];
    names.extend(columns.iter().map(|c| c.title.to_owned()));
    let rows = presets
        .iter()
        .zip(cells(presets, columns))
        .map(|(p, row)| {
            let mut r = vec![p.id.to_owned(), p.name.to_owned()];
            r.extend(row.iter().map(|v| format!("{}: {}", v.outcome.short(), v.reason.words())));
            r
        })
        .collect();
    (names, rows)
}
