//! Two text layouts kernel engineers read every day, filled from plain numbers:
//! `/proc/interrupts` and rtla's `timerlat hist`. Nothing here knows the platform; the
//! numbers, names and the choice of rows and columns come from `procfs`.
//!
//! # Sources
//! - `/proc/interrupts`: `show_interrupts` in kernel/irq/proc.c as of Linux 6.10 (the
//!   header `%*s` of width prec + 8 and `CPU%-8d` per CPU; a line `%*d:`, ` %10u` per CPU, a
//!   space, the chip name `%8s`, the hwirq ` %*lu`, the trigger ` %-8s` where
//!   `GENERIC_IRQ_SHOW_LEVEL` is set (arm64) and the flow handler's name `-%-8s` where the
//!   descriptor has one (x86: `edge`), then `  action[, action…]`; prec is 3, plus one per
//!   decade of `nr_irqs` from 1,000), and x86's `arch_show_interrupts` in
//!   arch/x86/kernel/irq.c for the summary lines (`%*s: `, `%10u ` per CPU, the text).
//! - `timerlat hist`: `timerlat_print_stats` in tools/tracing/rtla/src/timerlat_hist.c as
//!   printed with `--no-thread` (the header comments, `Index` and `   IRQ-%03d` per CPU
//!   with samples; a row `%-6d` then `%9d ` per CPU for each bucket with a sample, zero rows
//!   skipped; `over: `, `count:`, `min:  `, `avg:  `, `max:  ` with `%9llu ` or `%9c ` `-`;
//!   then the `ALL:` section over every CPU). Every line of both layouts ends as the
//!   kernel's and rtla's do, trailing spaces included (docs/sources.md#proc-interrupts,
//!   docs/sources.md#rtla-timerlat-hist).
//!
//! # Bounds (ours)
//! At most [`COLUMNS_MAX`] CPU columns and [`ROWS_MAX`] interrupt lines, the busiest, in
//! CPU and IRQ order; a `#` line at the end says what was left out and how many interrupts
//! it had. Neither the kernel nor rtla prints such a line.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write;

use super::stats::{CpuLatency, LATENCY_BUCKETS};

/// The most CPU columns a table shows.
pub(super) const COLUMNS_MAX: usize = 64;
/// The most interrupt lines `/proc/interrupts` shows.
pub(super) const ROWS_MAX: usize = 64;

/// The ids of the `k` items with the largest totals (on a tie, the lower id), ascending by
/// id. Keeps `k` items at a time, whatever the number of items.
pub(super) fn busiest(k: usize, items: impl IntoIterator<Item = (u32, u64)>) -> Vec<u32> {
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<u32>)>> = BinaryHeap::with_capacity(k + 1);
    for (id, total) in items {
        heap.push(Reverse((total, Reverse(id))));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut ids: Vec<u32> = heap.into_iter().map(|Reverse((_, Reverse(id)))| id).collect();
    ids.sort_unstable();
    ids
}

/// One interrupt's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IrqLine {
    /// The Linux IRQ number.
    pub irq: u32,
    /// Handler runs on each CPU column.
    pub counts: Vec<u64>,
    /// The irq_chip's name.
    pub chip: String,
    /// The hardware interrupt number in the top domain.
    pub hwirq: u64,
    /// The actions' names, already joined with ", ".
    pub actions: String,
}

/// One of the architecture's summary lines (x86: `PIW:`, `PMN:` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArchLine {
    /// The symbol before the colon.
    pub symbol: &'static str,
    /// The count on each CPU column.
    pub counts: Vec<u64>,
    /// The text after the counts, as the kernel prints it.
    pub text: &'static str,
}

/// A `/proc/interrupts` to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcInterrupts {
    /// The kernel's `nr_irqs`, which sets the width of the IRQ column.
    pub nr_irqs: u32,
    /// The CPUs shown, ascending.
    pub cpus: Vec<u32>,
    /// The interrupts shown, ascending by IRQ.
    pub lines: Vec<IrqLine>,
    /// The architecture's summary lines.
    pub arch: Vec<ArchLine>,
    /// arm64 (`GENERIC_IRQ_SHOW_LEVEL`): the trigger, ` Edge`. Otherwise (x86) the flow
    /// handler's name, `-edge`.
    pub show_level: bool,
    /// What was left out, one `#` line each.
    pub left_out: Vec<String>,
}

/// The width the kernel gives the IRQ column (and the hwirq): 3, plus one per decade of
/// `nr_irqs` from 1,000, at most 10.
fn irq_width(nr_irqs: u32) -> usize {
    let (mut prec, mut j) = (3, 1000u64);
    while prec < 10 && j <= u64::from(nr_irqs) {
        prec += 1;
        j *= 10;
    }
    prec
}

/// The text of `/proc/interrupts`.
pub(super) fn proc_interrupts(t: &ProcInterrupts) -> String {
    let prec = irq_width(t.nr_irqs);
    let mut s = String::new();
    let _ = write!(s, "{:w$}", "", w = prec + 8);
    for cpu in &t.cpus {
        let _ = write!(s, "CPU{cpu:<8}");
    }
    s.push('\n');
    for line in &t.lines {
        let _ = write!(s, "{:>prec$}:", line.irq);
        for count in &line.counts {
            let _ = write!(s, " {count:>10}");
        }
        let _ = write!(s, " {:>8} {:>prec$}", line.chip, line.hwirq);
        if t.show_level {
            let _ = write!(s, " {:<8}", "Edge");
        } else {
            let _ = write!(s, "-{:<8}", "edge");
        }
        let _ = writeln!(s, "  {}", line.actions);
    }
    for line in &t.arch {
        let _ = write!(s, "{:>prec$}: ", line.symbol);
        for count in &line.counts {
            let _ = write!(s, "{count:>10} ");
        }
        let _ = writeln!(s, "  {}", line.text);
    }
    for line in &t.left_out {
        let _ = writeln!(s, "# {line}");
    }
    s
}

/// An rtla `timerlat hist` to print.
#[derive(Debug, Clone)]
pub(super) struct Timerlat<'a> {
    /// What is measured, for the first comment line.
    pub what: &'a str,
    /// The CPUs shown (rtla shows only CPUs with samples), ascending, with their histograms.
    pub columns: Vec<(u32, &'a CpuLatency)>,
    /// Every CPU's histogram merged (the `ALL:` section covers CPUs left out too).
    pub all: CpuLatency,
    /// What was left out, one `#` line each.
    pub left_out: Vec<String>,
}

/// A summary line: `label`, then `%9llu ` of each CPU's value, or `%9c ` of `-` for a CPU
/// without samples.
fn summary_line(s: &mut String, label: &str, hists: &[&CpuLatency], value: impl Fn(&CpuLatency) -> Option<u64>) {
    s.push_str(label);
    for h in hists {
        let _ = match value(h) {
            Some(v) => write!(s, "{v:>9} "),
            None => write!(s, "{:>9} ", '-'),
        };
    }
    s.push('\n');
}

/// The `count:`, `min:`, `avg:` and `max:` lines of `hists`.
fn summary(s: &mut String, hists: &[&CpuLatency]) {
    summary_line(s, "count:", hists, |h| Some(h.count()));
    summary_line(s, "min:  ", hists, CpuLatency::min_us);
    summary_line(s, "avg:  ", hists, |h| (h.count() > 0).then(|| h.sum_us() / h.count()));
    summary_line(s, "max:  ", hists, CpuLatency::max_us);
}

/// The text of `timerlat hist`.
pub(super) fn timerlat_hist(t: &Timerlat) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# RTLA timerlat histogram layout: {}", t.what);
    s.push_str("# Time unit is microseconds (us)\n");
    s.push_str("Index");
    for (cpu, _) in &t.columns {
        let _ = write!(s, "   IRQ-{cpu:03}");
    }
    s.push('\n');
    for bucket in 0..LATENCY_BUCKETS {
        if t.columns.iter().all(|(_, h)| h.buckets[bucket] == 0) {
            continue;
        }
        let _ = write!(s, "{bucket:<6}");
        for (_, h) in &t.columns {
            let _ = write!(s, "{:>9} ", h.buckets[bucket]);
        }
        s.push('\n');
    }
    s.push_str("over: ");
    for (_, h) in &t.columns {
        let _ = write!(s, "{:>9} ", h.over);
    }
    s.push('\n');
    let hists: Vec<&CpuLatency> = t.columns.iter().map(|&(_, h)| h).collect();
    summary(&mut s, &hists);
    s.push_str("ALL:        IRQ\n");
    summary(&mut s, &[&t.all]);
    for line in &t.left_out {
        let _ = writeln!(s, "# {line}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busiest_keeps_the_largest_totals_in_id_order() {
        let items = [(7, 5), (3, 9), (9, 5), (1, 0), (4, 5), (5, 9)];
        assert_eq!(busiest(3, items), [3, 4, 5], "ties go to the lower id");
        assert_eq!(busiest(10, items), [1, 3, 4, 5, 7, 9]);
        assert_eq!(busiest(0, items), [] as [u32; 0]);
    }

    #[test]
    fn proc_interrupts_has_the_kernel_layout() {
        let t = ProcInterrupts {
            nr_irqs: 680,
            cpus: vec![0, 1],
            lines: vec![
                IrqLine {
                    irq: 24,
                    counts: vec![12, 0],
                    chip: "IR-PCI-MSIX-0000:01:00.0".into(),
                    hwirq: 0,
                    actions: "nvme0q0".into(),
                },
                IrqLine { irq: 25, counts: vec![0, 7], chip: "PCI-MSI".into(), hwirq: 524289, actions: "a, b".into() },
            ],
            arch: vec![ArchLine { symbol: "PMN", counts: vec![3, 4], text: "Posted MSI notification event" }],
            show_level: false,
            left_out: vec!["2 CPUs left out".into()],
        };
        let expected = concat!(
            "           CPU0       CPU1       \n",
            " 24:         12          0 IR-PCI-MSIX-0000:01:00.0   0-edge      nvme0q0\n",
            " 25:          0          7  PCI-MSI 524289-edge      a, b\n",
            "PMN:          3          4   Posted MSI notification event\n",
            "# 2 CPUs left out\n",
        );
        assert_eq!(proc_interrupts(&t), expected);
        // arm64 prints the trigger and no flow handler name; 10,000 IRQs widen the columns.
        let arm = ProcInterrupts { nr_irqs: 10_000, show_level: true, arch: vec![], left_out: vec![], ..t };
        let expected = concat!(
            "             CPU0       CPU1       \n",
            "   24:         12          0 IR-PCI-MSIX-0000:01:00.0     0 Edge      nvme0q0\n",
            "   25:          0          7  PCI-MSI 524289 Edge      a, b\n",
        );
        assert_eq!(proc_interrupts(&arm), expected);
    }

    #[test]
    fn timerlat_hist_has_the_rtla_layout() {
        let (mut a, mut b) = (CpuLatency::EMPTY, CpuLatency::EMPTY);
        for us in [1, 1, 3, 70] {
            a.add(us);
        }
        b.add(3);
        b.add(3);
        let mut all = a;
        all.merge(&b);
        let t = Timerlat { what: "test", columns: vec![(0, &a), (12, &b)], all, left_out: vec![] };
        let expected = concat!(
            "# RTLA timerlat histogram layout: test\n",
            "# Time unit is microseconds (us)\n",
            "Index   IRQ-000   IRQ-012\n",
            "1             2         0 \n",
            "3             1         2 \n",
            "over:         1         0 \n",
            "count:        4         2 \n",
            "min:          1         3 \n",
            "avg:         18         3 \n",
            "max:         70         3 \n",
            "ALL:        IRQ\n",
            "count:        6 \n",
            "min:          1 \n",
            "avg:         13 \n",
            "max:         70 \n",
        );
        assert_eq!(timerlat_hist(&t), expected);
        // No samples: rtla's `-` in the summary.
        let t = Timerlat { what: "none", columns: vec![], all: CpuLatency::EMPTY, left_out: vec!["x".into()] };
        assert!(timerlat_hist(&t).ends_with(
            "ALL:        IRQ\ncount:        0 \nmin:          - \navg:          - \nmax:          - \n# x\n"
        ));
    }
}
