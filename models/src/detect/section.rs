//! A scenario's detection section, built: the configurations and policy columns of its
//! matrix and its population, and the report tables they make.

use std::fmt::Write as _;

use super::matrix::{self, Column};
use super::population::{Population, Share};
use super::presets::Preset;
use super::{Outcome, Policy, composes_remappable, evaluate};

/// A table for the report: its name, its text (at most 72 columns wide), its column names,
/// its rows as data and, for a table of numbers a sweep summarises over its replications,
/// each column's role (`key`, `detail`, `share`, `mean`: docs/report-format.md; empty for
/// a table shown run by run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// What it is.
    pub name: String,
    /// The table as text.
    pub text: String,
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, a text value per column.
    pub rows: Vec<Vec<String>>,
    /// Each column's role, or empty.
    pub roles: Vec<&'static str>,
    /// The key cells of the row a sweep plots against its axis, or empty.
    pub plot_row: Vec<String>,
}

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
        let mut out = vec![Table {
            name: "Guest IMS detection: the decision matrix".to_owned(),
            text: matrix::text_table(&self.presets, &self.columns),
            columns,
            rows,
            roles: Vec::new(),
            plot_row: Vec::new(),
        }];
        if let Some(p) = &self.population {
            let (columns, rows) = p.rows(&self.columns);
            out.push(Table {
                name: "Guest IMS detection: outcome shares of the population (%)".to_owned(),
                text: p.text_table(&self.columns),
                columns,
                rows,
                roles: Vec::new(),
                plot_row: Vec::new(),
            });
        }
        out
    }

    /// What the broken cells cost in a run in which guests wrote their own messages:
    /// `remappable` and `compat` are what one such guest of each message format saw
    /// (`None`: no guest of that format ran). A table of the configurations that are BRK
    /// under some column (the format each composes, and its guest's lost, misrouted and
    /// cross-tenant counts) and, with a population, one of each column's broken guests
    /// (their share) and their expected lost, misrouted and cross-tenant interrupts per
    /// broken guest (Σ w × the format's count / Σ w over the BRK pairs). Empty when neither
    /// format ran. Both carry roles, so a sweep shows them as means with 95% intervals over
    /// its replications, the shares exact.
    pub fn cost_tables(&self, remappable: Option<DirectCost>, compat: Option<DirectCost>) -> Vec<Table> {
        if remappable.is_none() && compat.is_none() {
            return Vec::new();
        }
        let cost = |p: &Preset| if composes_remappable(&p.view) { remappable } else { compat };
        let num = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
        let names: Vec<String> =
            ["row", "configuration", "broken under", "message", "lost", "misrouted", "cross-tenant"]
                .map(str::to_owned)
                .into();
        let mut rows = Vec::new();
        let mut text = format!("{:<6}{:<22}{:>8}{:>10}{:>8}\n", "row", "message", "lost", "misrouted", "tenant");
        for p in &self.presets {
            let under: Vec<&str> = self
                .columns
                .iter()
                .filter(|c| evaluate(&p.view, &c.kernel(p.kernel), c.policy).outcome == Outcome::Broken)
                .map(|c| c.key)
                .collect();
            if under.is_empty() {
                continue;
            }
            let format = if composes_remappable(&p.view) { "remappable" } else { "compatibility" };
            let c = cost(p);
            let (lost, misrouted, tenant) =
                (num(c.map(|c| c.lost)), num(c.map(|c| c.misrouted)), num(c.map(|c| c.cross_tenant)));
            let _ = writeln!(text, "{:<6}{:<22}{lost:>8}{misrouted:>10}{tenant:>8}", p.id, format);
            rows.push(vec![
                p.id.to_owned(),
                p.name.to_owned(),
                under.join(" "),
                format.to_owned(),
                lost,
                misrouted,
                tenant,
            ]);
        }
        text.push_str("\nper broken guest of this run, by the message it composes; a guest\nwith a (v)IOMMU doing remapping composes remappable messages.\n");
        let mut out = vec![Table {
            name: "Guest IMS detection: what a broken configuration costs".to_owned(),
            text,
            columns: names,
            rows,
            roles: vec!["key", "detail", "detail", "key", "mean", "mean", "mean"],
            plot_row: Vec::new(),
        }];
        if let Some(pop) = &self.population {
            let names: Vec<String> =
                ["key", "policy", "BRK", "lost", "misrouted", "cross-tenant"].map(str::to_owned).into();
            let mut rows = Vec::new();
            let mut text = format!("{:<8}{:>8}{:>10}{:>11}{:>9}\n", "policy", "BRK %", "lost", "misrouted", "tenant");
            for col in &self.columns {
                let (wr, wc, total) = pop.broken_weights(col);
                let per = |f: fn(&DirectCost) -> u64| -> Option<Share> {
                    if wr + wc == 0 {
                        return Some(Share::new(0, 1));
                    }
                    let r = if wr == 0 { Some(0) } else { remappable.map(|c| u128::from(f(&c))) }?;
                    let k = if wc == 0 { Some(0) } else { compat.map(|c| u128::from(f(&c))) }?;
                    Some(Share::new(wr * r + wc * k, wr + wc))
                };
                let shares = [per(|c| c.lost), per(|c| c.misrouted), per(|c| c.cross_tenant)];
                let decimal =
                    |s: &Option<Share>| s.map_or("-".to_owned(), |s| format!("{:.1}", s.num as f64 / s.den as f64));
                let _ = writeln!(
                    text,
                    "{:<8}{:>8}{:>10}{:>11}{:>9}",
                    col.key,
                    Share::new(wr + wc, total).percent(),
                    decimal(&shares[0]),
                    decimal(&shares[1]),
                    decimal(&shares[2])
                );
                let mut r = vec![col.key.to_owned(), col.title.to_owned(), Share::new(wr + wc, total).to_string()];
                r.extend(shares.iter().map(|s| s.map_or("-".to_owned(), |s| s.to_string())));
                rows.push(r);
            }
            text.push_str("\nBRK: percent of the population; the rest per broken guest, the\nbroken pairs' weights times this run's count for their message;\nexact fractions in report.json.\n");
            out.push(Table {
                name: "Guest IMS detection: what the broken guests cost per policy".to_owned(),
                text,
                columns: names,
                rows,
                roles: vec!["key", "detail", "share", "mean", "mean", "mean"],
                // The policy Linux merged, where the section has it: the one a sweep of the
                // population's weights is usually about.
                plot_row: self
                    .columns
                    .iter()
                    .find(|c| c.name == Column::of(Policy::Mainline).name)
                    .map(|c| vec![c.key.to_owned()])
                    .unwrap_or_default(),
            });
        }
        out
    }
}

/// What a guest that wrote its own messages saw in a run: interrupts blocked, delivered
/// elsewhere, and of those, to another guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectCost {
    /// Blocked by the remapping unit.
    pub lost: u64,
    /// Delivered to another IRTE's target.
    pub misrouted: u64,
    /// Of those, to another guest's vector.
    pub cross_tenant: u64,
}
