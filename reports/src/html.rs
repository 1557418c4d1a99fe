//! `index.html`: one self-contained page per report — what ran (scenario, hash, seed,
//! version, the command that reproduces it), the verdicts, the plots inlined as SVG, the
//! tables (per sweep cell, then per-stage latency, resources and failures of each cell's
//! first run) and the scenario file itself. No external resource, no script: it opens from
//! a mail attachment or an archive as it is.

use std::fmt::Write as _;

use crate::plot::Plot;
use crate::schema::{PointReport, RunReport};
use crate::stats::{Cell, Estimate, cells};

/// Cells whose runs get their own detail tables; beyond, the page says where the rest is.
const DETAIL_CELLS_MAX: usize = 50;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Nanoseconds with a unit and three or four significant digits (`850.0 ns`, `4.469 µs`).
fn fmt_ns(v: f64) -> String {
    if v.is_nan() {
        return "–".to_owned();
    }
    let (value, unit) = if v >= 1e9 {
        (v / 1e9, "s")
    } else if v >= 1e6 {
        (v / 1e6, "ms")
    } else if v >= 1e3 {
        (v / 1e3, "µs")
    } else {
        (v, "ns")
    };
    let decimals = if unit == "ns" { 1 } else { 3 };
    format!("{value:.decimals$}\u{a0}{unit}")
}

/// A latency estimate as `mean ± half width` in the mean's unit.
fn fmt_latency(e: Option<Estimate>) -> String {
    let Some(e) = e else { return "–".to_owned() };
    let mean = fmt_ns(e.mean);
    match e.half_width {
        Some(h) => {
            let scale =
                [(1e9, "s"), (1e6, "ms"), (1e3, "µs")].into_iter().find(|(s, _)| e.mean >= *s).map_or(1.0, |(s, _)| s);
            let decimals = if scale == 1.0 { 1 } else { 3 };
            format!("{mean} ±\u{a0}{:.decimals$}", h / scale)
        }
        None => mean,
    }
}

/// A count estimate: a whole mean (every count with one run) as it is, else with one
/// decimal.
fn fmt_count(e: Option<Estimate>) -> String {
    match e {
        None => "–".to_owned(),
        Some(e) if e.mean.fract() == 0.0 => format!("{}", e.mean),
        Some(e) => format!("{:.1}", e.mean),
    }
}

/// The page's style sheet.
const CSS: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; color: #1f2328; margin: 0; background: #fff; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6em; margin: 0 0 0.3em; }
h2 { font-size: 1.25em; margin: 1.8em 0 0.6em; padding-bottom: 0.2em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
p.description { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.facts th { width: 11em; }
code, pre { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: 10px 12px; overflow-x: auto; }
pre.command { white-space: pre-wrap; word-break: break-all; }
figure { margin: 1.2em 0 2em; }
figure svg { display: block; width: 100%; height: auto; max-width: 960px; border: 1px solid #eaeef2; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
.pass { color: #1a7f37; font-weight: 600; }
.fail { color: #cf222e; font-weight: 600; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 4px; padding: 8px 12px; margin: 0.6em 0; }
details { margin: 0.6em 0; }
summary { cursor: pointer; font-weight: 600; }
nav a { margin-right: 1em; }
";

/// The whole page for `report` with `plots` inlined.
pub fn html(report: &RunReport, plots: &[Plot]) -> String {
    let mut s = String::new();
    let sc = &report.scenario;
    let cells = cells(report);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>irqsim report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(&sc.name)
    );
    let _ = writeln!(s, "<h1>irqsim report: {}</h1>", escape(&sc.name));
    if !sc.description.trim().is_empty() {
        let _ = writeln!(s, "<p class=\"description\">{}</p>", escape(sc.description.trim()));
    }
    let mut nav = vec![("reproduce", "Reproduce")];
    if !report.verdicts.is_empty() {
        nav.push(("verdicts", "Verdicts"));
    }
    if !plots.is_empty() {
        nav.push(("plots", "Plots"));
    }
    if report.sweep.is_some() {
        nav.push(("cells", "Sweep"));
        if report.points.iter().any(|p| p.tables.iter().any(|t| !t.roles.is_empty())) {
            nav.push(("replicated", "Tables"));
        }
    }
    nav.extend([("runs", "Runs"), ("scenario", "Scenario file")]);
    let links: Vec<String> = nav.iter().map(|(id, name)| format!("<a href=\"#{id}\">{name}</a>")).collect();
    let _ = writeln!(s, "<nav>{}</nav>", links.join(""));
    facts(&mut s, report);
    let _ =
        writeln!(s, "<h2 id=\"reproduce\">Reproduce</h2>\n<pre class=\"command\">{}</pre>", escape(&report.reproduce));
    warnings(&mut s, report);
    verdicts(&mut s, report, &cells);
    if !plots.is_empty() {
        let _ = writeln!(s, "<h2 id=\"plots\">Plots</h2>");
        for p in plots {
            let _ = writeln!(
                s,
                "<figure id=\"{}\">\n{}\n<figcaption>{}: <code>{}.svg</code>, <code>{}.png</code></figcaption>\n</figure>",
                escape(&p.name),
                inline_svg(&p.svg, &p.title),
                escape(&p.title),
                escape(&p.name),
                escape(&p.name)
            );
        }
    }
    if report.sweep.is_some() {
        sweep_table(&mut s, report, &cells);
        s.push_str(&crate::replicated::html(report));
    }
    runs(&mut s, report.sweep.is_some(), &cells);
    let _ = writeln!(s, "<h2 id=\"scenario\">Scenario file</h2>");
    if sc.text.is_empty() {
        let _ = writeln!(s, "<p>Not in this report (written before reports carried the scenario).</p>");
    } else {
        let _ = writeln!(s, "<pre>{}</pre>", escape(&sc.text));
    }
    let _ = writeln!(s, "</main>\n</body>\n</html>");
    s
}

/// A plot's SVG for inlining: any XML prologue dropped, labelled as an image by its title.
fn inline_svg(svg: &str, title: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    let body = &svg[start..];
    match body.strip_prefix("<svg") {
        Some(rest) => format!("<svg role=\"img\" aria-label=\"{}\"{rest}", escape(title)),
        None => body.to_owned(),
    }
}

fn facts(s: &mut String, report: &RunReport) {
    let sc = &report.scenario;
    let _ = writeln!(s, "<table class=\"facts\">");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row("scenario", format!("<code>{}</code>", escape(&sc.source)));
    row("scenario sha256", format!("<code>{}</code>", escape(&sc.sha256)));
    row("seed", report.seed.to_string());
    row("irqsim", escape(&report.irqsim_version));
    if let Some(sw) = &report.sweep {
        for a in &sw.axes {
            row("axis", format!("<code>{}</code>: {}", escape(&a.path), escape(&a.values.join(", "))));
        }
        if sw.axes.len() > 1 {
            row("axes combine", escape(&sw.combine));
        }
        row(
            "points × variants × replications",
            format!("{} × {} × {}", sw.point_count, sw.variants.len().max(1), sw.replications),
        );
        for (i, v) in sw.variants.iter().enumerate() {
            let set: Vec<String> = v.set.iter().map(|(k, val)| format!("{k} = {val}")).collect();
            let what = if set.is_empty() { "the scenario as written".to_owned() } else { set.join("; ") };
            let base = if i == 0 { " (baseline)" } else { "" };
            row("variant", format!("<b>{}</b>{base}: {}", escape(&v.name), escape(&what)));
        }
    }
    if let Some(sh) = &report.shard {
        // 0-based, as `irqsim run --shard I/N` takes it and the text and summary print it.
        row("shard", format!("{}/{} (this report holds only this shard's runs)", sh.index, sh.count));
    }
    row("runs", report.points.len().to_string());
    let _ = writeln!(s, "</table>");
}

/// Every distinct run warning, with how many runs it applies to.
fn warnings(s: &mut String, report: &RunReport) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for p in &report.points {
        for w in &p.run.warnings {
            match seen.iter_mut().find(|(t, _)| *t == w.as_str()) {
                Some(e) => e.1 += 1,
                None => seen.push((w, 1)),
            }
        }
    }
    for (w, n) in seen {
        let runs =
            if report.points.len() > 1 { format!(" ({n} of {} runs)", report.points.len()) } else { String::new() };
        let _ = writeln!(s, "<p class=\"warning\"><b>Warning{runs}:</b> {}</p>", escape(w));
    }
}

/// A cell's parameters and variant as text (`devices[0].queues=32, lapic`).
fn cell_name(cell: &Cell<'_>) -> String {
    let mut parts: Vec<String> = cell.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(v) = cell.variant {
        parts.push(v.to_owned());
    }
    if parts.is_empty() { format!("point {}", cell.index) } else { parts.join(", ") }
}

fn verdicts(s: &mut String, report: &RunReport, cells: &[Cell<'_>]) {
    if report.verdicts.is_empty() {
        return;
    }
    let failed = report.verdicts.iter().filter(|v| !v.held).count();
    let _ = writeln!(s, "<h2 id=\"verdicts\">Verdicts</h2>");
    let summary = if failed == 0 {
        format!("<span class=\"pass\">PASS</span>: all {} expectations held.", report.verdicts.len())
    } else {
        format!("<span class=\"fail\">FAIL</span>: {failed} of {} expectations did not hold.", report.verdicts.len())
    };
    let _ = writeln!(s, "<p>{summary}</p>");
    let _ = writeln!(
        s,
        "<table>\n<thead><tr><th>result</th><th>expectation</th><th>where</th><th>value</th></tr></thead>\n<tbody>"
    );
    for v in &report.verdicts {
        let cell = cells.iter().find(|c| c.index == v.point && c.variant == v.variant.as_deref());
        let place = cell.map_or_else(
            || {
                let mut p = format!("point {}", v.point);
                if let Some(var) = &v.variant {
                    p.push_str(&format!(", {var}"));
                }
                p
            },
            cell_name,
        );
        let value = if v.value.is_nan() {
            "no value".to_owned()
        } else if v.metric.ends_with("_ns") {
            fmt_ns(v.value)
        } else {
            format!("{}", v.value)
        };
        let (class, word) = if v.held { ("pass", "PASS") } else { ("fail", "FAIL") };
        let _ = writeln!(
            s,
            "<tr><td class=\"{class}\">{word}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{} <small>(<code>{}</code>)</small></td></tr>",
            escape(&v.expectation),
            escape(&place),
            escape(&value),
            escape(&v.metric)
        );
    }
    let _ = writeln!(s, "</tbody>\n</table>");
}

fn sweep_table(s: &mut String, report: &RunReport, cells: &[Cell<'_>]) {
    let Some(sw) = &report.sweep else { return };
    let _ = writeln!(s, "<h2 id=\"cells\">Sweep: end-to-end latency per point and variant</h2>");
    let reps = sw.replications;
    let note = if reps > 1 {
        format!("Mean over {reps} replications ± the half width of its 95% Student-t interval; counts are means.")
    } else {
        "One run per point and variant.".to_owned()
    };
    let _ = writeln!(s, "<p>{note}</p>");
    let _ = write!(s, "<table>\n<thead><tr>");
    for a in &sw.axes {
        let _ = write!(s, "<th><code>{}</code></th>", escape(&a.path));
    }
    if !sw.variants.is_empty() {
        let _ = write!(s, "<th>variant</th>");
    }
    let _ = writeln!(
        s,
        "<th>runs</th><th>p50</th><th>p99</th><th>p99.9</th><th>raised</th><th>lost</th><th>failures</th></tr></thead>\n<tbody>"
    );
    for c in cells {
        let _ = write!(s, "<tr>");
        for (_, v) in c.parameters {
            let _ = write!(s, "<td>{}</td>", escape(v));
        }
        if !sw.variants.is_empty() {
            let _ = write!(s, "<td>{}</td>", escape(c.variant.unwrap_or_default()));
        }
        let _ = writeln!(
            s,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            c.runs.len(),
            fmt_latency(c.estimate("latency.end_to_end.p50_ns")),
            fmt_latency(c.estimate("latency.end_to_end.p99_ns")),
            fmt_latency(c.estimate("latency.end_to_end.p999_ns")),
            fmt_count(c.estimate("conservation.raised")),
            fmt_count(c.estimate("conservation.lost")),
            fmt_count(c.estimate("failures.total")),
        );
    }
    let _ = writeln!(s, "</tbody>\n</table>");
}

/// Detail tables of each cell's first run (all of them for a single run); in a sweep,
/// without the tables summarised over the replications above.
fn runs(s: &mut String, sweep: bool, cells: &[Cell<'_>]) {
    let _ = writeln!(s, "<h2 id=\"runs\">Runs</h2>");
    let several = cells.len() > 1 || cells.iter().any(|c| c.runs.len() > 1);
    if several {
        let _ = writeln!(
            s,
            "<p>Per-stage latency, resources and failures of the first replication of each point and variant{}. Every number of every run is in <code>points.csv</code>.</p>",
            if cells.len() > DETAIL_CELLS_MAX {
                format!(" (the first {DETAIL_CELLS_MAX} of {})", cells.len())
            } else {
                String::new()
            }
        );
    }
    for (i, cell) in cells.iter().take(DETAIL_CELLS_MAX).enumerate() {
        let Some(run) = cell.runs.first() else { continue };
        if several {
            let open = if i == 0 { " open" } else { "" };
            let _ = writeln!(s, "<details{open}>\n<summary>{} (seed {})</summary>", escape(&cell_name(cell)), run.seed);
        }
        run_tables(s, run, sweep);
        if several {
            let _ = writeln!(s, "</details>");
        }
    }
}

fn run_tables(s: &mut String, p: &PointReport, sweep: bool) {
    let c = &p.conservation;
    let _ = writeln!(
        s,
        "<p>Stopped at {} simulated ({}) after {} events. Interrupts: {} raised = {} delivered + {} lost + {} merged + {} in flight.</p>",
        fmt_ns(p.run.simulated_ns),
        escape(&p.run.stop_reason),
        p.run.event_count,
        c.raised,
        c.delivered,
        c.lost,
        c.merged,
        c.in_flight
    );
    let _ = writeln!(s, "<h3>Latency per stage</h3>");
    let _ = writeln!(
        s,
        "<table>\n<thead><tr><th>stage</th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>what it measures</th></tr></thead>\n<tbody>"
    );
    for st in p.stages.iter().filter(|st| st.count > 0) {
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&st.stage),
            st.count,
            fmt_ns(st.mean_ns),
            fmt_ns(st.p50_ns),
            fmt_ns(st.p90_ns),
            fmt_ns(st.p99_ns),
            fmt_ns(st.p999_ns),
            fmt_ns(st.max_ns),
            escape(&st.description)
        );
    }
    let _ = writeln!(s, "</tbody>\n</table>");
    if !p.resources.is_empty() {
        let _ = writeln!(s, "<h3>Resources</h3>");
        let _ = writeln!(
            s,
            "<table>\n<thead><tr><th>resource</th><th>instances</th><th>min</th><th>mean</th><th>max</th><th>limit</th><th>max / limit</th></tr></thead>\n<tbody>"
        );
        for r in &p.resources {
            let pct = if r.limit == 0 {
                "–".to_owned()
            } else {
                format!("{:.1}%", 100.0 * f64::from(r.used_max) / f64::from(r.limit))
            };
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{pct}</td></tr>",
                escape(&r.name),
                r.instances,
                r.used_min,
                r.used_mean,
                r.used_max,
                r.limit
            );
        }
        let _ = writeln!(s, "</tbody>\n</table>");
    }
    let _ = writeln!(s, "<h3>Failures</h3>");
    if p.failures.is_empty() {
        let _ = writeln!(s, "<p>None.</p>");
    } else {
        let _ = writeln!(
            s,
            "<table>\n<thead><tr><th>failure</th><th>count</th><th>reason</th><th>first</th><th>last</th></tr></thead>\n<tbody>"
        );
        let at = |l: &Option<crate::FailureLine>| {
            l.as_ref().map_or(String::new(), |l| format!("{}: <code>{}</code>", fmt_ns(l.at_ns), escape(&l.line)))
        };
        for f in &p.failures {
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.name),
                f.count,
                escape(&f.reason),
                at(&f.first),
                at(&f.last)
            );
        }
        let _ = writeln!(s, "</tbody>\n</table>");
    }
    for t in p.tables.iter().filter(|t| !sweep || t.roles.is_empty()) {
        let _ = writeln!(s, "<h3>{}</h3>\n<pre>{}</pre>", escape(&t.name), escape(t.text.trim_end()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> RunReport {
        serde_json::from_str(include_str!("../tests/fixtures/sweep.json")).expect("the fixture is a report")
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(escape("plain µs · text"), "plain µs · text");
    }

    #[test]
    fn page_inlines_every_plot_and_escapes_the_scenario() {
        let r = sweep();
        let plots = crate::plot::plots(&r).unwrap();
        let page = html(&r, &plots);
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.contains("<title>irqsim report: nvme-bare-metal</title>"));
        for p in &plots {
            // The SVG as drawn, after the attributes the page adds to its opening tag.
            let body = p.svg.strip_prefix("<svg").unwrap();
            assert!(
                page.contains(&format!(
                    "<figure id=\"{}\">\n<svg role=\"img\" aria-label=\"{}\"{body}",
                    p.name,
                    escape(&p.title)
                )),
                "{}",
                p.name
            );
        }
        assert_eq!(page.matches("<svg ").count(), plots.len());
        // The scenario file, escaped: its comment holds `<`, `>=` and `&`.
        assert!(r.scenario.text.contains("p99 < 10us & p99.9 <= 20us"));
        assert!(page.contains("p99 &lt; 10us &amp; p99.9 &lt;= 20us"));
        assert!(!page.contains("p99 < 10us"));
        assert!(page.contains("<pre class=\"command\">irqsim run reports/tests/fixtures/sweep.yaml --seed 1</pre>"));
        assert!(page.contains("<code>d"), "sha256 shown");
        assert!(
            page.contains(&format!("<tr><th>scenario sha256</th><td><code>{}</code></td></tr>", r.scenario.sha256))
        );
        // Self-contained: nothing fetched, no script.
        for needle in ["<script", "<link", "src=", "url(", "@import", "href=\"http"] {
            assert!(!page.contains(needle), "{needle}");
        }
    }

    #[test]
    fn page_has_the_sweep_table_verdicts_and_run_tables() {
        let r = sweep();
        let page = html(&r, &[]);
        assert!(!page.contains("<h2 id=\"plots\">"), "no plots, no section");
        // One row per cell: parameters, variant, runs, p50/p99/p99.9 mean ± CI, counts.
        let c = cells(&r);
        let first = &c[0];
        let row = format!(
            "<tr><td>20k/s</td><td>lapic</td><td class=\"num\">2</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">5090.5</td><td class=\"num\">0</td><td class=\"num\">0</td></tr>",
            fmt_latency(first.estimate("latency.end_to_end.p50_ns")),
            fmt_latency(first.estimate("latency.end_to_end.p99_ns")),
            fmt_latency(first.estimate("latency.end_to_end.p999_ns")),
        );
        assert!(page.contains(&row), "{row}");
        assert_eq!(page.matches("<tr><td>").count() - page.matches("<tr><td><code>").count(), 6, "a row per cell");
        assert_eq!(page.matches("<tr><td class=\"pass\">PASS</td>").count(), 1);
        assert_eq!(page.matches("<tr><td class=\"fail\">FAIL</td>").count(), 1);
        // Verdicts: one held, one did not.
        assert!(page.contains("<span class=\"fail\">FAIL</span>: 1 of 2 expectations did not hold."));
        assert!(page.contains("<tr><td class=\"pass\">PASS</td><td><code>end_to_end.p99 &lt; 10us</code></td><td>devices[0].arrival.rate=20k/s, lapic</td><td class=\"num\">4.506\u{a0}µs"));
        assert!(page.contains("<tr><td class=\"fail\">FAIL</td><td><code>end_to_end.p99 &lt; 10us</code></td><td>devices[0].arrival.rate=120k/s, lapic</td><td class=\"num\">14.303\u{a0}µs"));
        // Details of each cell's first run, the first open.
        assert_eq!(page.matches("<details").count(), 6);
        assert!(page.contains("<details open>\n<summary>devices[0].arrival.rate=20k/s, lapic (seed 1)</summary>"));
        assert!(page.contains("<tr><td><code>x86.vectors_per_cpu</code></td><td class=\"num\">31</td><td class=\"num\">4</td><td class=\"num\">4.0</td><td class=\"num\">4</td><td class=\"num\">201</td><td class=\"num\">2.0%</td></tr>"));
        assert_eq!(page.matches("<h3>Failures</h3>\n<p>None.</p>").count(), 6);
    }

    #[test]
    fn estimates_show_their_interval_in_the_mean_unit() {
        let e = |mean, half_width| Some(Estimate { n: 2, mean, half_width });
        assert_eq!(fmt_latency(e(4505.599, Some(96.0))), "4.506\u{a0}µs ±\u{a0}0.096");
        assert_eq!(fmt_latency(e(850.0, Some(12.34))), "850.0\u{a0}ns ±\u{a0}12.3");
        assert_eq!(fmt_latency(Some(Estimate { n: 1, mean: 2.5e6, half_width: None })), "2.500\u{a0}ms");
        assert_eq!(fmt_latency(None), "–");
        assert_eq!(fmt_count(e(5090.5, None)), "5090.5");
        assert_eq!(fmt_count(e(0.0, None)), "0");
    }
}
