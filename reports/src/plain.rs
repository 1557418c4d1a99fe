//! Plain-text building blocks for mail: the 72-column width, word wrapping, number formats
//! (short durations, mean ± half width, signed changes, rates) and fixed-width ASCII tables
//! that fall back to one record per row when they cannot fit.

use std::fmt::Write as _;

/// The width of the mail text: 72 columns leave room for two levels of `> ` quoting in an
/// 80-column reader.
pub(crate) const MAIL_WIDTH: usize = 72;

/// The divisor, unit and decimals that show a duration of magnitude `v` nanoseconds with 4
/// significant digits in at most 7 characters.
fn ns_scale(v: f64) -> (f64, &'static str, usize) {
    let v = v.abs();
    let (divisor, unit) = if v >= 1e9 {
        (1e9, "s")
    } else if v >= 1e6 {
        (1e6, "ms")
    } else if v >= 1e3 {
        (1e3, "us")
    } else {
        (1.0, "ns")
    };
    let value = v / divisor;
    let decimals = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let decimals = if unit == "ns" { decimals.min(1) } else { decimals };
    (divisor, unit, decimals)
}

/// Nanoseconds in at most 7 characters with 4 significant digits, for the mail text's
/// narrow columns (`948.8us`, `12.75us`, `1.879ms`, `500.0ns`); a negative value gets a
/// minus sign in front.
pub(crate) fn fmt_ns_short(v: f64) -> String {
    let (divisor, unit, decimals) = ns_scale(v);
    format!("{:.decimals$}{unit}", v / divisor)
}

/// A mean in nanoseconds and its 95% half width, both in the unit that suits the larger
/// of the two and with the same decimals, joined by `sep` (`4.440+-0.102us` with `+-`);
/// the mean alone when there is no half width (one replication).
pub(crate) fn fmt_ns_pm(mean: f64, half_width: Option<f64>, sep: &str) -> String {
    match half_width {
        None => fmt_ns_short(mean),
        Some(h) => {
            let (divisor, unit, decimals) = ns_scale(mean.abs().max(h));
            format!("{:.decimals$}{sep}{:.decimals$}{unit}", mean / divisor, h / divisor)
        }
    }
}

/// A relative change as a signed percentage with one decimal (`+1.2%`); `-` when there is
/// none (a zero or missing reference).
pub(crate) fn fmt_pct(ratio: f64) -> String {
    if ratio.is_finite() { format!("{:+.1}%", 100.0 * ratio) } else { "-".to_owned() }
}

/// A count or rate with 4 significant digits and an SI prefix from 10 000 up (`2.557M`,
/// `9999`, `153.9k`); a whole number below that is written whole, a fraction with two
/// decimals (a mean over replications: `0.25`).
pub(crate) fn fmt_si(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let a = v.abs();
    if a < 1e4 {
        return if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    }
    let (divisor, prefix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else {
        (1e3, "k")
    };
    let value = v / divisor;
    let decimals = if value.abs() >= 100.0 {
        1
    } else if value.abs() >= 10.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}{prefix}")
}

/// `text` broken at spaces into lines of at most `width` columns (a longer word stands
/// alone), continuation lines starting with `indent`; each line ends with a newline.
pub(crate) fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    // The first line keeps the text's own leading spaces.
    let mut line: String = text.chars().take_while(|c| *c == ' ').collect();
    for word in text.split_whitespace() {
        let fresh = line.trim().is_empty();
        if !fresh && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_owned();
        }
        if !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `items` after `prefix`, separated by `sep` and kept whole: the line breaks between
/// items, continuation lines starting with `indent`; each line ends with a newline.
pub(crate) fn wrap_items(prefix: &str, items: &[String], sep: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = prefix.to_owned();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() { format!("{item}{sep}") } else { item.clone() };
        let gap = usize::from(!line.trim().is_empty() && !line.ends_with(' '));
        if !line.trim().is_empty() && cols(&line) + gap + cols(piece.trim_end()) > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_owned();
        } else if gap == 1 {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    if !line.trim().is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` with every line of more than [`MAIL_WIDTH`] characters broken, but the
/// `reproduce: ` line (a command, never broken): at the last space that leaves a line of
/// at most the width, else (one long word: a path) at the width; continuation lines are
/// indented by two columns. What [`wrap`] and the tables leave too long is a word longer
/// than a line, which only this breaks.
pub(crate) fn fit_mail(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        if body.starts_with("reproduce: ") || cols(body) <= MAIL_WIDTH {
            out.push_str(line);
            continue;
        }
        let mut rest: Vec<char> = body.chars().collect();
        let mut first = true;
        while !rest.is_empty() {
            let indent = if first { 0 } else { 2 };
            let room = MAIL_WIDTH - indent;
            if rest.len() <= room {
                out.extend(std::iter::repeat_n(' ', indent).chain(rest.drain(..)));
                break;
            }
            let lead = rest.iter().take_while(|c| **c == ' ').count();
            let cut = rest[..=room].iter().rposition(|c| *c == ' ').filter(|&i| i > lead).unwrap_or(room);
            let piece: String = rest.drain(..cut).collect();
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(piece.trim_end());
            out.push('\n');
            while rest.first() == Some(&' ') {
                rest.remove(0);
            }
            first = false;
        }
        out.push_str(end);
    }
    out
}

/// Columns in characters (what a terminal shows), not bytes.
fn cols(text: &str) -> usize {
    text.chars().count()
}

/// A fixed-width ASCII table: a header row and rows of cells, two spaces between columns,
/// each column left or right aligned.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    head: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers; `right` tells which columns are right aligned
    /// (numbers).
    pub(crate) fn new(head: Vec<String>, right: Vec<bool>) -> Self {
        debug_assert_eq!(head.len(), right.len());
        Self { head, right, rows: Vec::new() }
    }

    /// Adds a row (as many cells as headers).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.head.len());
        self.rows.push(cells);
    }

    fn line(&self, cells: &[String], widths: &[usize]) -> String {
        let mut line = String::new();
        for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(cols(cell)));
            if self.right[i] {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        line.trim_end().to_owned()
    }

    /// The table in lines of at most `width` columns. When it is too wide, the first
    /// column narrows and a first cell too long for it stands on its own line above the
    /// rest of its row; `None` when even that does not fit.
    pub(crate) fn render(&self, width: usize) -> Option<String> {
        let n = self.head.len();
        let mut widths: Vec<usize> = self.head.iter().map(|h| cols(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cols(cell));
            }
        }
        let rest: usize = widths[1..].iter().sum::<usize>() + 2 * (n - 1);
        if widths[0] + rest > width {
            // The first column gets what is left, at least its header and 8 columns.
            let first = width.checked_sub(rest)?;
            if first < cols(&self.head[0]).max(8) {
                return None;
            }
            widths[0] = first;
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.line(&self.head, &widths));
        for row in &self.rows {
            if cols(&row[0]) > widths[0] {
                if cols(&row[0]) > width {
                    return None;
                }
                let _ = writeln!(out, "{}", row[0]);
                let mut rest = row.clone();
                rest[0] = String::new();
                let _ = writeln!(out, "{}", self.line(&rest, &widths));
            } else {
                let _ = writeln!(out, "{}", self.line(row, &widths));
            }
        }
        Some(out)
    }

    /// [`Table::render`], or when the table cannot fit, each row as a record: its first
    /// cell, then `header value` pairs wrapped under it.
    pub(crate) fn render_or_records(&self, width: usize) -> String {
        if let Some(table) = self.render(width) {
            return table;
        }
        let mut out = String::new();
        for row in &self.rows {
            out.push_str(&wrap(&format!("{} {}", self.head[0], row[0]), width, "  "));
            let pairs: Vec<String> = self.head[1..]
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| if h.is_empty() { v.clone() } else { format!("{h} {v}") })
                .collect();
            out.push_str(&wrap_items("  ", &pairs, ",", width, "  "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_width_and_indents() {
        let text = format!("  {} end", "word ".repeat(30).trim_end());
        let out = wrap(&text, 20, "    ");
        assert!(out.lines().all(|l| l.chars().count() <= 20), "{out}");
        assert!(out.starts_with("  word") && out.lines().skip(1).all(|l| l.starts_with("    word") || l == "    end"));
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        assert_eq!(wrap("a-very-long-word-alone", 5, " "), "a-very-long-word-alone\n");
    }

    #[test]
    fn mail_lines_are_broken_at_the_width_but_the_reproduce_line() {
        let path = format!("/{}/x.yaml", "d".repeat(100));
        let text = format!("warning: {path}:1:2: ignored\nreproduce: irqsim run {path}\nshort\n");
        let out = fit_mail(&text);
        assert!(out.lines().filter(|l| !l.starts_with("reproduce:")).all(|l| l.chars().count() <= MAIL_WIDTH), "{out}");
        assert!(out.contains(&format!("\nreproduce: irqsim run {path}\nshort\n")), "{out}");
        // Broken at the space before the path, then in the path; nothing lost.
        assert!(out.starts_with("warning:\n  /ddd"), "{out}");
        assert_eq!(out.replace("\n  ", "").replace("warning:", "warning: "), text);
        let fits = "a line that fits\n";
        assert_eq!(fit_mail(fits), fits);
    }

    #[test]
    fn short_durations_keep_four_significant_digits_in_seven_characters() {
        let cases = [
            (948_825.0, "948.8us"),
            (12_746.0, "12.75us"),
            (1_879_000.0, "1.879ms"),
            (500.0, "500.0ns"),
            (0.0, "0.0ns"),
            (-54.8, "-54.8ns"),
            (-5_000.0, "-5.000us"),
        ];
        for (ns, shown) in cases {
            assert_eq!(fmt_ns_short(ns), shown);
            assert!(shown.trim_start_matches('-').len() <= 7);
        }
    }

    #[test]
    fn a_mean_and_its_half_width_share_unit_and_decimals() {
        assert_eq!(fmt_ns_pm(4_440.2, Some(102.4), "+-"), "4.440+-0.102us");
        assert_eq!(fmt_ns_pm(-54.83, Some(27.61), "+-"), "-54.8+-27.6ns");
        // The half width larger than the mean picks the unit.
        assert_eq!(fmt_ns_pm(900.0, Some(1_500.0), " ± "), "0.900 ± 1.500us");
        assert_eq!(fmt_ns_pm(6_345.0, None, "+-"), "6.345us");
    }

    #[test]
    fn counts_rates_and_changes() {
        assert_eq!(fmt_si(2_557_050.0), "2.557M");
        assert_eq!(fmt_si(153_931.0), "153.9k");
        assert_eq!(fmt_si(9_999.0), "9999");
        assert_eq!(fmt_si(0.25), "0.25");
        assert_eq!(fmt_si(0.0), "0");
        assert_eq!(fmt_si(f64::NAN), "-");
        assert_eq!(fmt_pct(-0.01234), "-1.2%");
        assert_eq!(fmt_pct(0.5), "+50.0%");
        assert_eq!(fmt_pct(f64::INFINITY), "-");
    }

    fn table() -> Table {
        let mut t = Table::new(vec!["metric".into(), "A".into(), "B".into()], vec![false, true, true]);
        t.row(vec!["end_to_end p99".into(), "6.345us".into(), "6.100us".into()]);
        t.row(vec!["x86.vector_reservations_global max".into(), "0".into(), "12".into()]);
        t
    }

    #[test]
    fn a_table_aligns_its_columns() {
        let out = table().render(72).unwrap();
        let expected = "\
metric                                    A        B
end_to_end p99                      6.345us  6.100us
x86.vector_reservations_global max        0       12
";
        assert_eq!(out, expected);
    }

    #[test]
    fn a_long_first_cell_stands_on_its_own_line_when_the_table_is_too_wide() {
        let out = table().render(34).unwrap();
        let expected = "\
metric                  A        B
end_to_end p99    6.345us  6.100us
x86.vector_reservations_global max
                        0       12
";
        assert_eq!(out, expected);
        // Too narrow for the numbers: records, each line within the width, each header
        // with its value.
        assert!(table().render(20).is_none());
        let records = table().render_or_records(20);
        let expected = "\
metric end_to_end
  p99
  A 6.345us,
  B 6.100us
metric
  x86.vector_reservations_global
  max
  A 0, B 12
";
        assert_eq!(records, expected);
    }
}
