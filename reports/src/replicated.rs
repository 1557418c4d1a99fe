//! The models' tables of numbers summarised over a sweep's replications: a table whose
//! columns carry roles (`TextTable::roles`: `key`, `detail`, `share`, `mean`) is shown,
//! for each cell (a point in a variant), with each `mean` column as the mean ± the half
//! width of its 95% Student-t interval over the cell's replications (the interval the
//! sweep tables use, [`Estimate`]) and each `share` column exact, as a percentage. A sweep's
//! text, mail, `summary.md` and `index.html` show these instead of the first run's copy.
//!
//! Rows of different runs are matched by their `key` cells; a value a run does not have
//! (`-`, or no such row) is left out of the mean, and a row with no value at all reads `-`.
//! When every cell gives the same rows and values (a swept parameter that does not touch
//! the table), the table is shown once, said to be the same in every cell.
//!
//! Like the rest of the crate this names no model type: what a table means is in its name,
//! its column names and their roles.

use std::fmt::Write as _;

use crate::plain::{MAIL_WIDTH, Table, wrap};
use crate::schema::{RunReport, SweepInfo, TextTable};
use crate::stats::{Cell, Estimate, cells};
use crate::sweep::{Lead, axis_headers};

/// What a column of a summarised table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Text naming the row.
    Key,
    /// Text that goes with the key, for the wide renderings only.
    Detail,
    /// An exact fraction, the same in every replication.
    Share,
    /// A number per run, estimated over the replications.
    Mean,
}

impl Role {
    fn of(name: &str) -> Option<Self> {
        match name {
            "key" => Some(Self::Key),
            "detail" => Some(Self::Detail),
            "share" => Some(Self::Share),
            "mean" => Some(Self::Mean),
            _ => None,
        }
    }
}

/// A value of a summarised row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// An exact share: the fraction (`None` where the run had none) and its percentage with
    /// two decimals, rounded half up in integers.
    Share(Option<(f64, String)>),
    /// The estimate over the replications; `None` where no run had a value.
    Mean(Option<Estimate>),
}

/// A row of a summarised table: its key and detail cells and its values, in column order
/// within each kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) keys: Vec<String>,
    pub(crate) details: Vec<String>,
    pub(crate) values: Vec<Value>,
}

/// The rows of one cell.
#[derive(Debug, Clone)]
pub(crate) struct Block<'a> {
    pub(crate) cell: Cell<'a>,
    pub(crate) rows: Vec<Row>,
}

/// A table summarised over the replications of every cell.
#[derive(Debug, Clone)]
pub(crate) struct Summary<'a> {
    /// The table's name.
    pub(crate) name: &'a str,
    /// The columns with their roles.
    pub(crate) columns: Vec<(&'a str, Role)>,
    /// One block per cell, in report order; a single block when `same` holds.
    pub(crate) blocks: Vec<Block<'a>>,
    /// Every cell gave the same rows and values (and there is more than one cell).
    pub(crate) same: bool,
}

impl Summary<'_> {
    fn names(&self, role: Role) -> Vec<&str> {
        self.columns.iter().filter(|c| c.1 == role).map(|c| c.0).collect()
    }

    /// Whether any mean has an interval.
    fn intervals(&self) -> bool {
        self.blocks.iter().flat_map(|b| &b.rows).flat_map(|r| &r.values).any(|v| match v {
            Value::Mean(Some(e)) => e.half_width.is_some(),
            _ => false,
        })
    }
}

/// A fraction `n/d` (or a plain number) as a real; `None` for `-` or anything else.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    match text.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
            (d != 0.0).then(|| n / d)
        }
        None => text.trim().parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// An exact fraction `n/d` as (its value, its percentage with two decimals rounded half up:
/// (20000 n + d) / (2 d) hundredths, in integers); `None` for anything else.
pub(crate) fn parse_share(text: &str) -> Option<(f64, String)> {
    let (n, d) = text.split_once('/')?;
    let (n, d): (u128, u128) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    if d == 0 {
        return None;
    }
    let hundredths = (20_000 * n + d) / (2 * d);
    Some((n as f64 / d as f64, format!("{}.{:02}", hundredths / 100, hundredths % 100)))
}

/// The summary of the table named `name` over `cells`, with the roles of `first` (its
/// first appearance).
fn summary<'a>(report_cells: &[Cell<'a>], first: &'a TextTable) -> Option<Summary<'a>> {
    let roles: Vec<Role> = first.roles.iter().map(|r| Role::of(r)).collect::<Option<_>>()?;
    if roles.len() != first.columns.len() {
        return None;
    }
    let columns: Vec<(&str, Role)> = first.columns.iter().map(String::as_str).zip(roles.iter().copied()).collect();
    let pick = |row: &[String], role: Role| -> Vec<String> {
        row.iter().zip(&roles).filter(|(_, r)| **r == role).map(|(c, _)| c.clone()).collect()
    };
    let mut blocks = Vec::new();
    for cell in report_cells {
        let tables: Vec<Option<&TextTable>> =
            cell.runs.iter().map(|p| p.tables.iter().find(|t| t.name == first.name)).collect();
        let Some(shape) = tables.iter().flatten().next() else { continue };
        let rows = shape
            .rows
            .iter()
            .map(|row| {
                let keys = pick(row, Role::Key);
                // The same row in each run: the one with the same key cells.
                let runs: Vec<Option<&Vec<String>>> =
                    tables.iter().map(|t| t.and_then(|t| t.rows.iter().find(|r| pick(r, Role::Key) == keys))).collect();
                let values = roles
                    .iter()
                    .enumerate()
                    .filter_map(|(k, role)| match role {
                        Role::Share => Some(Value::Share(row.get(k).and_then(|v| parse_share(v)))),
                        Role::Mean => Some(Value::Mean(Estimate::of(
                            runs.iter()
                                .map(|r| r.and_then(|r| r.get(k)).and_then(|v| parse_number(v)).unwrap_or(f64::NAN)),
                        ))),
                        Role::Key | Role::Detail => None,
                    })
                    .collect();
                Row { keys, details: pick(row, Role::Detail), values }
            })
            .collect();
        blocks.push(Block { cell: cell.clone(), rows });
    }
    let same = blocks.len() > 1 && blocks.iter().all(|b| b.rows == blocks[0].rows);
    if same {
        blocks.truncate(1);
    }
    (!blocks.is_empty()).then_some(Summary { name: &first.name, columns, blocks, same })
}

/// Every table with roles in the report, summarised over the replications of each cell, in
/// the order the runs list them. Empty without a sweep.
pub(crate) fn summaries(report: &RunReport) -> Vec<Summary<'_>> {
    if report.sweep.is_none() {
        return Vec::new();
    }
    let cells = cells(report);
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for p in &report.points {
        for t in p.tables.iter().filter(|t| !t.roles.is_empty()) {
            if seen.contains(&t.name.as_str()) {
                continue;
            }
            seen.push(&t.name);
            out.extend(summary(&cells, t));
        }
    }
    out
}

/// A mean ± half width with one decimal, joined by `sep`; the mean alone with one run; `-`
/// without a value.
pub(crate) fn fmt_mean(e: Option<Estimate>, sep: &str) -> String {
    match e {
        None => "-".to_owned(),
        Some(Estimate { mean, half_width: Some(h), .. }) => format!("{mean:.1}{sep}{h:.1}"),
        Some(e) => format!("{:.1}", e.mean),
    }
}

fn fmt_value(v: &Value, sep: &str) -> String {
    match v {
        Value::Share(s) => s.as_ref().map_or_else(|| "-".to_owned(), |s| s.1.clone()),
        Value::Mean(e) => fmt_mean(*e, sep),
    }
}

/// `over the 5 replications` (every cell the same number of runs), else `over each cell's
/// runs`.
fn over(report: &RunReport) -> String {
    let c = cells(report);
    let n = c.first().map_or(0, |c| c.runs.len());
    match n {
        _ if c.iter().any(|c| c.runs.len() != n) => "over each cell's runs".to_owned(),
        1 => "of one replication".to_owned(),
        n => format!("over the {n} replications"),
    }
}

/// What the numbers are, for a title: `mean +- 95% half width over the 5 replications;
/// BRK: percent, exact; the same at every point`.
fn explanation(report: &RunReport, s: &Summary<'_>, pm: &str) -> String {
    let mut t = if s.intervals() { format!("mean {pm} 95% half width {}", over(report)) } else { over(report) };
    let shares = s.names(Role::Share);
    if !shares.is_empty() {
        let _ = write!(t, "; {}: percent, exact", shares.join(", "));
    }
    if s.same {
        let every = match report.sweep.as_ref() {
            Some(sw) if sw.point_count > 1 && sw.variants.len() > 1 => "at every point and in every variant",
            Some(sw) if sw.variants.len() > 1 => "in every variant",
            _ => "at every point",
        };
        let _ = write!(t, "; the same {every}");
    }
    t
}

/// The summaries in the plain text and the mail (72 columns), each after a blank line;
/// empty when there are none.
pub(crate) fn text(report: &RunReport, sweep: &SweepInfo) -> String {
    let mut out = String::new();
    for s in summaries(report) {
        let title = format!("{} ({}):", s.name, explanation(report, &s, "+-"));
        out.push('\n');
        out.push_str(&wrap(&title, MAIL_WIDTH, ""));
        let table = |axes: bool| {
            let lead = (!s.same)
                .then(|| Lead::new(sweep, axes.then(|| axis_headers(sweep)), !sweep.variants.is_empty(), false));
            let mut more: Vec<(&str, bool)> = s.names(Role::Key).into_iter().map(|k| (k, false)).collect();
            more.extend(s.columns.iter().filter(|c| matches!(c.1, Role::Share | Role::Mean)).map(|c| (c.0, true)));
            let mut t = match &lead {
                Some(lead) => lead.table(&more),
                None => Table::new(more.iter().map(|m| m.0.to_owned()).collect(), more.iter().map(|m| m.1).collect()),
            };
            for b in &s.blocks {
                for (i, r) in b.rows.iter().enumerate() {
                    let mut cells = match &lead {
                        Some(lead) => {
                            let c = lead.cells(b.cell.index, b.cell.parameters, b.cell.variant, 0);
                            if i == 0 { c } else { vec![String::new(); c.len()] }
                        }
                        None => Vec::new(),
                    };
                    cells.extend(r.keys.iter().cloned());
                    cells.extend(r.values.iter().map(|v| fmt_value(v, "+-")));
                    t.row(cells);
                }
            }
            t
        };
        let rendered = table(true).render(MAIL_WIDTH).unwrap_or_else(|| table(false).render_or_records(MAIL_WIDTH));
        out.push_str(&rendered);
    }
    out
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut c = text.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// `|` escaped for a Markdown table cell.
fn md(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The lead cells of a block's first row in the wide renderings: point, each axis value,
/// the variant; empty when the table is the same in every cell.
fn wide_lead(report: &RunReport, s: &Summary<'_>, b: &Block<'_>) -> Vec<String> {
    let Some(sweep) = report.sweep.as_ref().filter(|_| !s.same) else { return Vec::new() };
    let mut c = vec![b.cell.index.to_string()];
    c.extend((0..sweep.axes.len()).map(|k| b.cell.parameters.get(k).map_or(String::new(), |(_, v)| v.clone())));
    if !sweep.variants.is_empty() {
        c.push(b.cell.variant.unwrap_or_default().to_owned());
    }
    c
}

/// The lead headers of the wide renderings.
fn wide_head(report: &RunReport, s: &Summary<'_>) -> Vec<String> {
    let Some(sweep) = report.sweep.as_ref().filter(|_| !s.same) else { return Vec::new() };
    let mut h = vec!["point".to_owned()];
    h.extend(sweep.axes.iter().map(|a| a.path.clone()));
    if !sweep.variants.is_empty() {
        h.push("variant".to_owned());
    }
    h
}

/// A row's cells in the wide renderings, in the table's own column order.
fn wide_cells(s: &Summary<'_>, r: &Row, sep: &str) -> Vec<String> {
    let (mut keys, mut details, mut values) = (r.keys.iter(), r.details.iter(), r.values.iter());
    s.columns
        .iter()
        .map(|(_, role)| match role {
            Role::Key => keys.next().cloned().unwrap_or_default(),
            Role::Detail => details.next().cloned().unwrap_or_default(),
            Role::Share | Role::Mean => values.next().map_or_else(String::new, |v| fmt_value(v, sep)),
        })
        .collect()
}

/// The summaries as a `summary.md` section; empty when there are none.
pub(crate) fn markdown(report: &RunReport) -> String {
    let summaries = summaries(report);
    if summaries.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Tables over the replications\n\n");
    for s in &summaries {
        let _ = writeln!(out, "### {}\n", s.name);
        let _ = writeln!(out, "{}.\n", capitalized(&explanation(report, s, "±")));
        let mut head = wide_head(report, s);
        let lead = head.len();
        head.extend(s.columns.iter().map(|c| c.0.to_owned()));
        let mut right = vec![false; lead];
        right.extend(s.columns.iter().map(|c| matches!(c.1, Role::Share | Role::Mean)));
        let _ = writeln!(out, "| {} |", head.iter().map(|h| md(h)).collect::<Vec<_>>().join(" | "));
        let rules: Vec<&str> = right.iter().map(|&r| if r { "---:" } else { "---" }).collect();
        let _ = writeln!(out, "|{}|", rules.join("|"));
        for b in &s.blocks {
            let first = wide_lead(report, s, b);
            for (i, r) in b.rows.iter().enumerate() {
                let mut cells = if i == 0 { first.clone() } else { vec![String::new(); first.len()] };
                cells.extend(wide_cells(s, r, " ± "));
                let _ = writeln!(out, "| {} |", cells.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | "));
            }
        }
        out.push('\n');
    }
    out
}

/// The summaries as a section of `index.html`; empty when there are none.
pub(crate) fn html(report: &RunReport) -> String {
    use crate::html::escape;
    let summaries = summaries(report);
    if summaries.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h2 id=\"replicated\">Tables over the replications</h2>\n");
    for s in &summaries {
        let e = capitalized(&explanation(report, s, "±"));
        let _ = writeln!(out, "<h3>{}</h3>\n<p>{}.</p>", escape(s.name), escape(&e));
        let mut head = wide_head(report, s);
        let lead = head.len();
        head.extend(s.columns.iter().map(|c| c.0.to_owned()));
        let numeric: Vec<bool> = vec![false; lead]
            .into_iter()
            .chain(s.columns.iter().map(|c| matches!(c.1, Role::Share | Role::Mean)))
            .collect();
        let th: String = head.iter().map(|h| format!("<th>{}</th>", escape(h))).collect();
        let _ = writeln!(out, "<table>\n<thead><tr>{th}</tr></thead>\n<tbody>");
        for b in &s.blocks {
            let first = wide_lead(report, s, b);
            for (i, r) in b.rows.iter().enumerate() {
                let mut cells = if i == 0 { first.clone() } else { vec![String::new(); first.len()] };
                cells.extend(wide_cells(s, r, " ± "));
                let td: String = cells
                    .iter()
                    .zip(&numeric)
                    .map(|(c, &n)| {
                        let class = if n { " class=\"num\"" } else { "" };
                        format!("<td{class}>{}</td>", escape(&c.replace(" ± ", " ±\u{a0}")))
                    })
                    .collect();
                let _ = writeln!(out, "<tr>{td}</tr>");
            }
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TextTable;

    fn sweep() -> RunReport {
        serde_json::from_str(include_str!("../tests/fixtures/sweep.json")).expect("the fixture is a report")
    }

    /// A table of two rows: `a` with the share 1/800 and a value per run, `b` with the share
    /// 1/3 and no value (`-`).
    fn table(value: &str) -> TextTable {
        TextTable {
            name: "costs".into(),
            text: "costs of this run\n".into(),
            columns: ["row", "what", "BRK", "lost"].map(str::to_owned).to_vec(),
            rows: vec![
                ["a", "the first row", "1/800", value].map(str::to_owned).to_vec(),
                ["b", "the second row", "1/3", "-"].map(str::to_owned).to_vec(),
            ],
            narrow: true,
            roles: ["key", "detail", "share", "mean"].map(str::to_owned).to_vec(),
            plot_row: vec!["a".to_owned()],
        }
    }

    #[test]
    fn shares_round_half_up_and_fractions_parse() {
        // 1/800 = 0.125%: half up to 0.13 (a float format would give 0.12).
        assert_eq!(parse_share("1/800"), Some((0.00125, "0.13".to_owned())));
        assert_eq!(parse_share("10/219").unwrap().1, "4.57");
        assert_eq!(parse_share("0/1").unwrap().1, "0.00");
        assert_eq!(parse_share("-"), None);
        assert_eq!(parse_number("25/2"), Some(12.5));
        assert_eq!(parse_number("7"), Some(7.0));
        assert_eq!(parse_number("-"), None);
    }

    /// Replication 0 has 10, replication 1 has 14 in every cell: mean 12, s = 2√2, s/√2 =
    /// 2, t(1) = 12.706: 12.0 +- 25.4. Every cell the same: one table, said so.
    #[test]
    fn a_table_the_same_in_every_cell_is_shown_once_with_its_interval() {
        let mut r = sweep();
        for p in &mut r.points {
            p.tables = vec![table(if p.replication == 0 { "10" } else { "14" })];
        }
        let sweep = r.sweep.clone().unwrap();
        assert_eq!(
            text(&r, &sweep),
            "\ncosts (mean +- 95% half width over the 2 replications; BRK: percent,
exact; the same at every point and in every variant):
row    BRK        lost
a     0.13  12.0+-25.4
b    33.33           -
"
        );
        let md = markdown(&r);
        assert!(md.contains("| row | what | BRK | lost |\n|---|---|---:|---:|\n| a | the first row | 0.13 | 12.0 ± 25.4 |\n| b | the second row | 33.33 | - |\n"), "{md}");
        let page = html(&r);
        assert!(page.contains("<tr><td>a</td><td>the first row</td><td class=\"num\">0.13</td><td class=\"num\">12.0 ±\u{a0}25.4</td></tr>"), "{page}");
    }

    /// A value that differs by cell: a block per cell, the lead cells on its first row; a
    /// run without the table is left out of its cell's mean (one value: no interval).
    #[test]
    fn a_table_that_changes_with_the_cell_gets_a_block_per_cell() {
        let mut r = sweep();
        for p in &mut r.points {
            let v = 10 * (p.index + 1) + if p.variant.as_deref() == Some("fifo") { 1 } else { 0 };
            p.tables = vec![table(&v.to_string())];
        }
        r.points[1].tables.clear();
        let sweep = r.sweep.clone().unwrap();
        let t = text(&r, &sweep);
        assert!(
            t.starts_with("\ncosts (mean +- 95% half width over the 2 replications; BRK: percent,\nexact):\n"),
            "{t}"
        );
        assert!(t.contains("\npt  rate    variant  row    BRK       lost\n 0  20k/s   lapic    a     0.13       10.0\n                     b    33.33          -\n 0  20k/s   fifo     a     0.13  11.0+-0.0\n"), "{t}");
        assert!(
            t.ends_with(" 2  120k/s  fifo     a     0.13  31.0+-0.0\n                     b    33.33          -\n"),
            "{t}"
        );
    }
}
