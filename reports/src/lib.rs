//! `reports`: the report file (`report.json`, schema in docs/report-format.md) and what is
//! rendered from it alone — `summary.md` tables, the plain-text summary, the mail to a
//! mailing list ([`email()`]), two reports compared for a reply ([`compare()`]),
//! `points.csv` (every number in long format), the plots (`plot-*.png`, `plot-*.svg`) and
//! `index.html`, one self-contained page with the plots inlined.
//!
//! # Brief overview
//! [`RunReport`] is the serialisable record of a run: scenario name and content hash, seed,
//! irqsim version, and one [`PointReport`] per sweep point with per-stage latency
//! summaries, counters, resource use and failures. [`point_from_metrics`] turns an engine
//! metrics snapshot into the metric parts of a point; [`markdown`] and [`text`] render (a
//! sweep as a table of its cells, point × variant, with 95% intervals over the
//! replications and each variant against the baseline, and only the first run of each
//! variant in full); [`email()`] and [`compare()`] write 72-column text for a mailing list;
//! [`plot::plots`] draws every plot the report has data for and [`html::html`] puts them
//! on one page with the tables. [`kvm_exit_table`] turns the `kvm.exit.<reason>`
//! histograms into the layout of `perf kvm stat report` (a point's table; the text
//! renderings print it in 72 columns).
//!
//! **Invariant:** this crate never names a model type. It speaks metric names, units and
//! generic resource rows; a stage is a histogram named `latency.<stage>_ps`, a VM exit
//! reason one named `kvm.exit.<reason>`.
//! **Invariant:** a report is deterministic: no wall-clock value ever enters `report.json`
//! (those go to `perf.json`, see [`PerfInfo`]).

#![warn(missing_docs)]

mod checkpoint;
mod compare;
mod csv;
mod email;
mod files;
pub mod html;
mod kvm_exits;
mod merge;
mod plain;
pub mod plot;
mod render;
mod replicated;
mod schema;
pub mod stats;
mod sweep;
mod verdicts;

pub use checkpoint::{Checkpoint, CheckpointKey, checkpoint_dir};
pub use compare::compare;
pub use csv::csv;
pub use email::email;
pub use files::{REPORT_FILES, ReportDir, io_reason, is_plot_file, read_limited, write_atomic};
pub use html::html;
pub use kvm_exits::{TABLE_NAME as KVM_EXIT_TABLE, table as kvm_exit_table};
pub use merge::{RUN_COUNT_MAX, merge, run_ordinal};
pub use plot::{Plot, plots};
pub use render::{markdown, text};
pub use schema::{
    AxisInfo, Bucket, Conservation, CounterRow, Expectation, FORMAT_NAME, FORMAT_VERSION, Failure, FailureLine,
    PerfInfo, PointReport, REPORT_SIZE_MAX, ResourceRow, RunInfo, RunReport, ScenarioInfo, ShardInfo, StageSummary,
    SweepInfo, TextTable, VariantInfo, Verdict, point_from_metrics, read_report,
};
