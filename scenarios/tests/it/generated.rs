//! A bounded structured generator of scenario documents, run in CI on stable Rust: it
//! mutates the catalog files, the bad files of `tests/bad/` and the fuzz corpus
//! (`fuzz/corpus/load/`) — edge values for scalars (0, -1, 2^64 - 1, 1e308, empty and very
//! long strings, wrong types, units at and past the limits), deleted, duplicated and
//! truncated lines and blocks, blocks moved between sections and between files — and feeds
//! each document to `scenarios::sweep::plan` in-process (which validates a sweep's every
//! point and variant); a document that validates runs its first and last (point, variant)
//! for at most 200 us and 20,000 events each. No input may panic (in loading, in rendering the error, in the
//! run or in the invariant checks), the run must conserve interrupts and the chip's
//! accounting must hold (`Platform::check_invariants`).
//!
//! The seed is fixed; `SEED=n` replays another one and `GENERATED_COUNT=n` changes how many
//! documents are made. An input that fails is written to
//! `target/generated-failures/seed-S-input-I.yaml` and named in the failure message.
//! Failures already reported and not yet fixed are in [`KNOWN_FAILURES`], matched on their
//! message, and skipped (counted and printed) so that CI stays green.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use scenarios::{catalog, estimate, runner::run_point};
use sim::SimDuration;

use super::workspace_root;

/// The default seed (`SEED=n` overrides it).
const DEFAULT_SEED: u64 = 0x5eed_2026;
/// How many mutated documents a run makes (`GENERATED_COUNT=n` overrides it).
const DEFAULT_COUNT: usize = 2000;
/// A validated document runs at most this long…
const RUN_US: u64 = 200;
/// …and at most this many events.
const RUN_EVENTS: u64 = 20_000;
/// A validated document whose estimated memory is larger is not run here (setting up
/// millions of queues takes seconds in a debug build); loading it is still checked.
const RUN_MEMORY_MAX: u64 = 32 << 20;

/// Failures found and reported but not fixed yet (the models and validation are not changed
/// by the test's author): (name, a piece of the failure message that identifies it, the
/// regression file under `fuzz/corpus/load/`). Each is skipped, counted and printed.
/// TODO: remove each entry when its bug is fixed.
const KNOWN_FAILURES: &[(&str, &str, &str)] = &[];

/// [`sim::SplitMix64`]: small, portable, and enough to pick mutations.
struct Rng(sim::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Values for any scalar: wrong types, empty, huge, special YAML forms.
const ANY_VALUES: &[&str] = &[
    "0",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    ".nan",
    ".inf",
    "''",
    "\"\"",
    "~",
    "[]",
    "{}",
    "[1, 2]",
    "{ a: 1 }",
    "true",
    "null",
    "🦀",
    "\"\\0\"",
    "0x10",
    "-0",
    "1.5",
    "all",
    "0-4095",
];
/// Values for integers.
const INT_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "31",
    "32",
    "33",
    "255",
    "256",
    "2047",
    "2048",
    "2049",
    "4096",
    "65535",
    "65536",
    "1048576",
    "4194304",
    "4194305",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1_000",
];
/// Values for durations, at and past the limits (1 s for costs, 1 h for runs and periods).
const DURATION_VALUES: &[&str] = &[
    "0s",
    "0ps",
    "1ps",
    "0.5ps",
    "0.001ps",
    "1ns",
    "999ms",
    "1s",
    "1.000000000001s",
    "1001ms",
    "60min",
    "61min",
    "3600s",
    "3601s",
    "3600.000000000001s",
    "1h",
    "18446744073709551615ps",
    "18446744073709551616ps",
    "18446744073709551615s",
    "1e308s",
    "-1ns",
    "-0s",
    "1.5e3us",
    "100",
    "5 ns",
    "ns",
    "1µs",
];
/// Values for rates, at and past the limits (one per hour to one per picosecond).
const RATE_VALUES: &[&str] = &[
    "0/s",
    "1/s",
    "0.0002777/s",
    "0.000278/s",
    "1000G/s",
    "1001G/s",
    "999.999G/s",
    "1000000M/s",
    "1GHz",
    "18446744073709551615/s",
    "1e308/s",
    "-1/s",
    "-0/s",
    "1000000000000.1/s",
    "k/s",
    "5",
    "5 k/s",
];

/// A scalar value in a line: `line`, byte range `start..end`.
#[derive(Debug, Clone, Copy)]
struct Site {
    line: usize,
    start: usize,
    end: usize,
}

/// Where the comment of `line` starts (a `#` at its start or after a space, outside quotes).
fn comment_start(line: &str) -> usize {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return i,
            None => {}
        }
        previous = c;
    }
    line.len()
}

/// The scalar values of `lines`: after `key: `, as `- item` and in flow sequences.
fn scalar_sites(lines: &[String]) -> Vec<Site> {
    let mut sites = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let content = &line[..comment_start(line)];
        let bytes = content.as_bytes();
        // The starts of values: after ": " and "- " (at the start) and after "[" or "," in a
        // flow collection.
        let mut starts = Vec::new();
        let trimmed = content.trim_start();
        if let Some(rest) = trimmed.strip_prefix("- ") {
            starts.push(content.len() - rest.len());
        }
        let mut depth = 0i32;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'{' | b'[' => {
                    depth += 1;
                    if b == b'[' {
                        starts.push(i + 1);
                    }
                }
                b'}' | b']' => depth -= 1,
                b',' if depth > 0 => starts.push(i + 1),
                b':' if bytes.get(i + 1) == Some(&b' ') => starts.push(i + 2),
                _ => {}
            }
        }
        for start in starts {
            let skipped = content[start..].len() - content[start..].trim_start().len();
            let start = start + skipped;
            let rest = &content[start..];
            if rest.is_empty() || rest.starts_with(['{', '[', '|', '>', '&', '*', '#']) || rest.starts_with("- ") {
                continue;
            }
            let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
            // A `key: value` pair: its value has a site of its own, after the ": ".
            if rest[..end].contains(": ") {
                continue;
            }
            let value = rest[..end].trim_end();
            if !value.is_empty() {
                sites.push(Site { line: n, start, end: start + value.len() });
            }
        }
    }
    sites
}

/// Whether a line holds nothing but space or a comment.
fn is_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The lines `start..end` of the block that `start` opens: it and every following line
/// indented deeper (blank lines inside included).
fn block(lines: &[String], start: usize) -> std::ops::Range<usize> {
    let own = lines[start].len() - lines[start].trim_start().len();
    let mut end = start + 1;
    while end < lines.len() && (is_blank(&lines[end]) || lines[end].len() - lines[end].trim_start().len() > own) {
        end += 1;
    }
    while end > start + 1 && is_blank(&lines[end - 1]) {
        end -= 1;
    }
    start..end
}

/// Re-indents `block` so its first line starts at column `to`.
fn reindent(block: &[String], to: usize) -> Vec<String> {
    let from = block.first().map_or(0, |l| l.len() - l.trim_start().len());
    block
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                let own = l.len() - l.trim_start().len();
                let kept = own.saturating_sub(from);
                format!("{}{}", " ".repeat(to + kept), l.trim_start())
            }
        })
        .collect()
}

/// The lines that are neither blank nor comments.
fn content_lines(lines: &[String]) -> Vec<usize> {
    (0..lines.len()).filter(|&i| !is_blank(&lines[i])).collect()
}

/// An edge value fit for `original`'s kind.
fn edge_value(rng: &mut Rng, original: &str) -> String {
    let digits = original.trim_start_matches('-').starts_with(|c: char| c.is_ascii_digit());
    let table = if rng.chance(20) {
        ANY_VALUES
    } else if digits && (original.ends_with("/s") || original.ends_with("Hz")) {
        RATE_VALUES
    } else if digits && original.ends_with('s') || original.ends_with("min") {
        DURATION_VALUES
    } else if digits && original.chars().all(|c| c.is_ascii_digit()) {
        INT_VALUES
    } else {
        ANY_VALUES
    };
    let number_end = original.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(original.len());
    if number_end > 0 && rng.chance(40) {
        // The same unit, the number scaled: mostly still valid, often extreme.
        if let Ok(number) = original[..number_end].parse::<f64>() {
            let factor = *rng.pick(&[0.0, 0.001, 0.5, 2.0, 10.0, 1000.0, 1e6, 1e9]);
            let unit = &original[number_end..];
            let scaled = number * factor;
            return if scaled.fract() == 0.0 && scaled < 1e20 {
                format!("{scaled:.0}{unit}")
            } else {
                format!("{scaled}{unit}")
            };
        }
    }
    match rng.below(12) {
        // A very long string (bounded: the loader's own limits are not the point here).
        0 => "x".repeat(1 + rng.below(20_000)),
        1 => format!("\"{}\"", "é".repeat(1 + rng.below(500))),
        _ => (*rng.pick(table)).to_owned(),
    }
}

/// One mutation of `lines`, with `donors` (other documents) to take blocks from.
fn mutate(rng: &mut Rng, lines: &mut Vec<String>, donors: &[Vec<String>]) {
    let content = content_lines(lines);
    if content.is_empty() {
        lines.push(rng.pick(ANY_VALUES).to_string());
        return;
    }
    match rng.below(20) {
        // Most mutations replace a scalar by an edge value.
        0..=11 => {
            let sites = scalar_sites(lines);
            if sites.is_empty() {
                return;
            }
            let site = *rng.pick(&sites);
            let value = edge_value(rng, &lines[site.line][site.start..site.end]);
            lines[site.line].replace_range(site.start..site.end, &value);
        }
        12 => {
            lines.remove(*rng.pick(&content));
        }
        13 => {
            let range = block(lines, *rng.pick(&content));
            lines.drain(range);
        }
        14 => {
            let at = *rng.pick(&content);
            lines.insert(at + 1, lines[at].clone());
        }
        15 => {
            let range = block(lines, *rng.pick(&content));
            let copy: Vec<String> = lines[range.clone()].to_vec();
            lines.splice(range.end..range.end, copy);
        }
        // Swap two disjoint blocks, each taking the other's indentation.
        16 => {
            let a = block(lines, *rng.pick(&content));
            let b = block(lines, *rng.pick(&content));
            let (a, b) = if a.start < b.start { (a, b) } else { (b, a) };
            if a.end > b.start {
                return;
            }
            let block_a = reindent(&lines[a.clone()], indent_of(&lines[b.start]));
            let block_b = reindent(&lines[b.clone()], indent_of(&lines[a.start]));
            lines.splice(b.clone(), block_a);
            lines.splice(a, block_b);
        }
        // A block of another document, inserted at the indentation of the line it precedes.
        17 => {
            let donor = rng.pick(donors);
            let donor_content = content_lines(donor);
            if donor_content.is_empty() {
                return;
            }
            let range = block(donor, *rng.pick(&donor_content));
            let at = *rng.pick(&content);
            let moved = reindent(&donor[range], indent_of(&lines[at]));
            lines.splice(at..at, moved);
        }
        // A key renamed (an unknown field) or a list entry's dash dropped.
        18 => {
            let at = *rng.pick(&content);
            if let Some(colon) = lines[at].find(": ") {
                let start = lines[at].len() - lines[at].trim_start().trim_start_matches("- ").len();
                if start < colon {
                    let key = *rng.pick(&["zzz", "name", "count", "", "a b", "-"]);
                    lines[at].replace_range(start..colon, key);
                }
            }
        }
        // Truncated at a random character.
        _ => {
            let text = lines.join("\n");
            let cut = text.char_indices().map(|(i, _)| i).nth(rng.below(text.chars().count().max(1))).unwrap_or(0);
            *lines = text[..cut].lines().map(str::to_owned).collect();
        }
    }
}

/// The column where a line's text starts.
fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// What became of one input.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Refused with diagnostics.
    Refused,
    /// Validated; not run (too large for this test's bounds).
    TooLarge,
    /// Validated and ran for at most [`RUN_US`].
    Ran,
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// Loads `text` with its sweep (every (point, variant) validated), renders its error or
/// runs its first and last (point, variant) briefly and checks them; a panic or a broken
/// check is an `Err` with what happened.
fn check(text: &str) -> Result<Outcome, String> {
    let planned = catch_unwind(|| scenarios::sweep::plan("generated.yaml", text, None))
        .map_err(|p| format!("loading (sweep::plan) panicked: {}", panic_text(&*p)))?;
    let plan = match planned {
        Ok(plan) => plan,
        Err(rendered) => {
            if rendered.is_empty() {
                return Err("a load error rendered as nothing".into());
            }
            if std::env::var("GENERATED_DEBUG").is_ok() {
                eprintln!("REFUSED: {}", rendered.lines().next().unwrap_or(""));
            }
            return Ok(Outcome::Refused);
        }
    };
    let last = plan.cells.len() - 1;
    for cell in [&plan.cells[0], &plan.cells[last]] {
        let mut s = catch_unwind(AssertUnwindSafe(|| plan.scenario(cell)))
            .map_err(|p| format!("building a sweep point again panicked: {}", panic_text(&*p)))??;
        if estimate::memory_bytes(&s) > RUN_MEMORY_MAX {
            return Ok(Outcome::TooLarge);
        }
        s.duration = s.duration.min(SimDuration::from_us(RUN_US));
        s.event_limit = Some(s.event_limit.unwrap_or(RUN_EVENTS).min(RUN_EVENTS));
        let seed = plan.seed;
        let run = catch_unwind(AssertUnwindSafe(|| run_point(&s, seed, 0)))
            .map_err(|p| format!("run_point panicked (seed {seed}): {}", panic_text(&*p)))?;
        let (point, platform, _) = run.map_err(|e| format!("run_point failed (seed {seed}): {e}"))?;
        let events = point.run.event_count;
        catch_unwind(AssertUnwindSafe(|| platform.check_invariants()))
            .map_err(|p| format!("an invariant check panicked (seed {seed}, {events} events): {}", panic_text(&*p)))?
            .map_err(|e| format!("invariant violated (seed {seed}, {events} events): {e}"))?;
        if plan.cells.len() == 1 {
            break;
        }
    }
    Ok(Outcome::Ran)
}

/// The documents the generator starts from, with their names: the catalog, tests/bad and
/// the fuzz corpus (non-UTF-8 bytes replaced, as the fuzz target does).
fn seeds() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        catalog::CATALOG.iter().map(|(name, text)| (format!("catalog/{name}"), (*text).to_owned())).collect();
    let root = workspace_root();
    for dir in ["scenarios/tests/bad", "fuzz/corpus/load"] {
        out.extend(files_in(&root.join(dir)).into_iter().map(|path| {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            (path.strip_prefix(&root).unwrap().display().to_string(), text)
        }));
    }
    // The corpus starts as copies of the others: each text once.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(_, text)| seen.insert(text.clone()));
    out
}

/// The regular files of `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The known failure a message is, if any.
fn known(message: &str) -> Option<&'static str> {
    KNOWN_FAILURES.iter().find(|(_, piece, _)| message.contains(piece)).map(|(name, _, _)| *name)
}

#[test]
fn generated_scenarios_never_panic_and_runs_stay_consistent() {
    let seed: u64 = std::env::var("SEED").map_or(DEFAULT_SEED, |s| s.parse().expect("SEED must be an integer"));
    let count: usize =
        std::env::var("GENERATED_COUNT").map_or(DEFAULT_COUNT, |s| s.parse().expect("GENERATED_COUNT: a number"));
    let started = Instant::now();
    let seeds = seeds();
    let parsed: Vec<Vec<String>> = seeds.iter().map(|(_, t)| t.lines().map(str::to_owned).collect()).collect();
    let mut rng = Rng(sim::SplitMix64::new(seed));
    // The unmutated documents first (this replays the fuzz corpus), then the mutants.
    let mut inputs: Vec<(String, String)> =
        seeds.iter().map(|(name, text)| (format!("{name} as it is"), text.clone())).collect();
    for _ in 0..count {
        // Mostly the catalog, whose mutants often still validate and run.
        let base = if rng.chance(70) { rng.below(catalog::CATALOG.len()) } else { rng.below(parsed.len()) };
        let mut lines = parsed[base].clone();
        let mutations = *rng.pick(&[1, 1, 1, 1, 2, 2, 3, 4]);
        for _ in 0..mutations {
            mutate(&mut rng, &mut lines, &parsed);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        inputs.push((format!("{} with {mutations} mutation(s)", seeds[base].0), text));
    }
    // Quiet: a caught panic would print its message for every input; they are reported below.
    // `GENERATED_DEBUG=1` keeps them, with backtraces under RUST_BACKTRACE=1, and prints
    // each refusal's first line.
    let hook = std::panic::take_hook();
    if std::env::var("GENERATED_DEBUG").is_err() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let results: Vec<Result<Outcome, String>> = inputs.iter().map(|(_, text)| check(text)).collect();
    std::panic::set_hook(hook);

    let out_dir = workspace_root().join("target/generated-failures");
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut tally = [0usize; 3];
    for (i, ((name, text), result)) in inputs.iter().zip(&results).enumerate() {
        match result {
            Ok(outcome) => {
                tally[[Outcome::Refused, Outcome::TooLarge, Outcome::Ran].iter().position(|o| o == outcome).unwrap()] +=
                    1
            }
            Err(message) => {
                if let Some(todo) = known(message) {
                    skipped.push(format!("input {i} ({name}): {todo}"));
                    continue;
                }
                std::fs::create_dir_all(&out_dir).unwrap();
                let path = out_dir.join(format!("seed-{seed}-input-{i}.yaml"));
                std::fs::write(&path, text).unwrap();
                failures.push(format!("input {i} ({name}): {message}\n  written to {}", path.display()));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "generated: seed {seed}, {} inputs ({} unmutated, {count} mutated) in {elapsed:.1} s: {} refused, {} too large \
         to run, {} ran; {} known failures skipped, {} new",
        inputs.len(),
        seeds.len(),
        tally[0],
        tally[1],
        tally[2],
        skipped.len(),
        failures.len()
    );
    for s in &skipped {
        println!("  known (TODO): {s}");
    }
    assert!(
        failures.is_empty(),
        "{} generated inputs failed (replay: SEED={seed} cargo test -p irqsim --test it generated):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn scalar_sites_find_block_flow_and_list_values() {
    let lines: Vec<String> =
        ["a: 1 # c", "b: { c: 2us, d: [x, y] }", "- e", "f:", "  - g: 'h'"].iter().map(|s| (*s).to_owned()).collect();
    let values: Vec<&str> = scalar_sites(&lines).iter().map(|s| &lines[s.line][s.start..s.end]).collect();
    assert_eq!(values, ["1", "2us", "x", "y", "e", "'h'"]);
}
