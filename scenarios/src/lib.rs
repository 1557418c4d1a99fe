//! `scenarios`: scenario files — the YAML schema, validation into typed parameters, the
//! built-in catalog, running a scenario into a report — and the `irqsim` command.
//!
//! # Brief overview
//! Text goes through stages (ripgrep's low-args/high-args split): [`schema`] mirrors the
//! YAML one-to-one (serde, `deny_unknown_fields`, quantities as text); [`mod@load`] parses
//! it, applies overrides to the parsed document (`overrides`, the seam a sweep calls per
//! point: [`load_with_overrides`]), has `validate` check every section and collect *all*
//! problems as [`Diagnostic`]s with file, line, column and field path, and has `build`
//! expand the validated sections into a [`Scenario`] whose platform parameters are valid by
//! construction; [`runner`] builds the models, runs the engine and assembles a
//! `reports::RunReport`.
//!
//! **API boundary:** only [`schema`] is serde types; nothing below `validate` sees text.

#![warn(missing_docs)]

mod build;
pub mod catalog;
pub mod diagnostic;
pub mod estimate;
pub mod load;
mod overrides;
pub mod quantity;
pub mod runner;
pub mod schema;
pub mod shell;
pub mod sweep;
mod validate;
mod vmexit;

/// The irqsim version and the git commit it was built from: `0.1.0 (commit 0123456789ab)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("IRQSIM_COMMIT"), ")");

pub use diagnostic::{Diagnostic, Override, ScenarioError};
pub use load::{Scenario, load, load_with_overrides};
