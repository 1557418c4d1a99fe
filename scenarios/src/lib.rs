//! `scenarios`: scenario files — the YAML schema, validation into typed parameters, the
//! built-in catalog, running a scenario into a report — and the `irqsim` command.
//!
//! # Brief overview
//! Text goes through three stages (ripgrep's low-args/high-args split): [`schema`] mirrors
//! the YAML one-to-one (serde, `deny_unknown_fields`, quantities as text); [`mod@load`] checks
//! everything and collects *all* problems as [`Diagnostic`]s with file, line, column and
//! field path, producing a [`Scenario`] whose platform parameters are valid by
//! construction; [`runner`] builds the models, runs the engine and assembles a
//! `reports::RunReport`.
//!
//! **API boundary:** only [`schema`] is serde; nothing below [`mod@load`] sees text.

#![warn(missing_docs)]

pub mod catalog;
pub mod diagnostic;
pub mod load;
pub mod quantity;
pub mod runner;
pub mod schema;

pub use diagnostic::{Diagnostic, ScenarioError};
pub use load::{Scenario, load};
