//! A scenario's detection section, built: the configurations and policy columns of its
//! matrix and its population, and the report tables they make.

use super::matrix::{self, Column};
use super::population::Population;
use super::presets::Preset;

/// A table for the report: its name, its text (at most 72 columns wide), its column names
/// and its rows as data.
pub type Table = (String, String, Vec<String>, Vec<Vec<String>>);

/// The detection section of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The matrix's rows.
    pub presets: Vec<Preset>,
    /// The matrix's columns.
    pub columns: Vec<Column>,
    /// The population whose outcome shares are reported, if any.
    pub population: Option<Population>,
}

impl Detection {
    /// The matrix (configurations × policies, outcome and reason per cell) and, with a
    /// population, the share of guests in each outcome per policy.
    pub fn tables(&self) -> Vec<Table> {
        let (columns, rows) = matrix::rows(&self.presets, &self.columns);
        let mut out = vec![(
            "Guest IMS detection: the decision matrix".to_owned(),
            matrix::text_table(&self.presets, &self.columns),
            columns,
            rows,
        )];
        if let Some(p) = &self.population {
            let (columns, rows) = p.rows(&self.columns);
            out.push((
                "Guest IMS detection: outcome shares of the population (%)".to_owned(),
                p.text_table(&self.columns),
                columns,
                rows,
            ));
        }
        out
    }
}
