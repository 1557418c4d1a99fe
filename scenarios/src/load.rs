//! Text → [`Scenario`], the entry: [`load`] and [`load_with_overrides`] parse the YAML
//! (first syntax or type error, with its field path), apply overrides to the parsed
//! document, validate every section collecting **all** errors (`validate`) and build
//! the models' parameters (`build`). Nothing after this module sees text, and
//! models may assume their parameters are valid.

use serde::de::DeserializeOwned;
use sim::SimDuration;

use models::platform::PlatformParams;

use crate::diagnostic::{Diagnostic, Override, ScenarioError};
use crate::schema::{ExitCostsFromSpec, ScenarioFile};
use crate::validate::Checker;
use crate::{build, overrides, validate};

/// Seed used when neither the scenario nor the command line gives one.
pub const DEFAULT_SEED: u64 = 1;

/// A validated scenario: typed, in range, consistent.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The scenario's own seed (the CLI may override it).
    pub seed: u64,
    /// Simulated time to run.
    pub duration: SimDuration,
    /// Event cap.
    pub event_limit: Option<u64>,
    /// The platform, ready for `models::platform::Platform::new`.
    pub platform: PlatformParams,
    /// Fields that were accepted but have no effect, each as `FILE:LINE:COL: PATH: MESSAGE`
    /// (or `FILE: override `PATH=VALUE`: PATH: MESSAGE`), in file order: a field under a
    /// block that an override switched off. `irqsim validate` and `irqsim run` print them
    /// on standard error after `warning: `, and a run's report lists them among its point's
    /// warnings.
    pub warnings: Vec<String>,
    /// The `expect` section, judged after the run.
    pub expect: Vec<reports::Expectation>,
    /// The `detection` section: its tables join every run's report.
    pub detection: Option<models::detect::section::Detection>,
}

/// Reads and validates a scenario. `file` names it in errors.
pub fn load(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    load_with_overrides(file, source, &[])
}

/// Reads a scenario, sets some of its fields from outside the file, and validates the
/// result: the seam a sweep calls once per point.
///
/// Each override is a dotted field path into the document as written (`seed`,
/// `platform.cpus`, `devices[0].arrival.rate`, `guests[1].posted.kick`; list entries by
/// index, `devices[0]` being the first entry as written, before `count` expands it) and a
/// YAML value (`120k/s`, `64`, `{ process: poisson, rate: 5k/s }`, `~` to unset an optional
/// field). They are applied in order to the parsed document, after YAML anchors and merges
/// are resolved and before any validation, so an overridden value meets exactly the checks
/// the same value written in the file would.
///
/// Errors: a path that names no field, or a value of the wrong type, is reported for every
/// override at once and nothing is validated. Otherwise validation reports every problem;
/// one in an overridden value names the override (path and value) rather than a line of the
/// file, and the summary lists the overrides, so a sweep's user sees which axis value made a
/// point invalid.
pub fn load_with_overrides(
    file: &str,
    source: &str,
    overrides: &[(String, String)],
) -> Result<Scenario, ScenarioError> {
    let overrides: Vec<Override> =
        overrides.iter().map(|(path, value)| Override { path: path.clone(), value: value.clone() }).collect();
    let fail = |diagnostics| ScenarioError {
        file: file.to_owned(),
        source: source.to_owned(),
        diagnostics,
        overrides: overrides.clone(),
    };
    let mut raw = parse(source).map_err(|d| fail(vec![d]))?;
    let placement = overrides::apply(&mut raw, source, &overrides).map_err(fail)?;
    let file_costs = match &raw.exit_costs_from {
        Some(from) => exit_costs_from(file, from).map_err(|d| fail(vec![d]))?,
        None => crate::vmexit::FileCosts::default(),
    };
    let mut checker = Checker {
        overridden: overrides.iter().map(|o| o.path.trim().to_owned()).collect(),
        file_costs,
        ..Checker::default()
    };
    let validated = validate::check(&raw, &mut checker);
    match validated {
        Some(validated) if checker.is_clean() => {
            let mut warnings = checker.warnings;
            warnings.sort_by_key(|d| (d.line, d.column));
            placement.attribute(&mut warnings);
            let mut scenario = build::build(validated);
            scenario.warnings = warnings.iter().map(|d| d.located(file)).collect();
            Ok(scenario)
        }
        _ => {
            let mut diagnostics = checker.diagnostics;
            diagnostics.sort_by_key(|d| (d.line, d.column));
            placement.attribute(&mut diagnostics);
            for d in &mut diagnostics {
                if let Some(message) = exponent_hint(&d.message) {
                    d.message = message;
                }
            }
            Err(fail(diagnostics))
        }
    }
}

/// The value written at `line`:`column`, for "found `…`" in messages.
fn token_at(source: &str, line: u64, column: u64) -> Option<String> {
    let text = source.lines().nth(line.checked_sub(1)? as usize)?;
    let rest: String = text.chars().skip(column.checked_sub(1)? as usize).collect();
    let rest = rest.split(" #").next().unwrap_or("").trim();
    let rest = rest.trim_end_matches([',', '}', ']']).trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// Rewrites the YAML library's terse type errors ("invalid u32") into what is allowed.
fn explain(message: &str, found: Option<String>) -> String {
    let expected = match message {
        "invalid u32" => Some(format!("a whole number from 0 to {}", u32::MAX)),
        "invalid u64" => Some(format!("a whole number from 0 to {}", u64::MAX)),
        "invalid bool" | "invalid boolean" => Some("true or false".to_owned()),
        "expected string scalar" => Some("a single text value".to_owned()),
        _ => None,
    };
    match (expected, found) {
        (Some(expected), Some(found)) => format!("expected {expected}, found `{found}`"),
        (Some(expected), None) => format!("expected {expected}"),
        (None, _) => message.to_owned(),
    }
}

/// The most a vmexit output may be (it is a few dozen lines).
const VMEXIT_FILE_MAX: u64 = 1 << 20;

/// Reads `exit_costs_from`: its file, relative to the folder of the scenario `file`, parsed
/// as a kvm-unit-tests vmexit output at `tsc_ghz`. Errors point at the field and name the
/// vmexit file and line.
fn exit_costs_from(file: &str, from: &ExitCostsFromSpec) -> Result<crate::vmexit::FileCosts, Diagnostic> {
    let at = |spanned_line: u64, column: u64, path: &str, message: String| Diagnostic {
        line: spanned_line,
        column,
        path: path.to_owned(),
        message,
        from_override: None,
    };
    let ghz = from.tsc_ghz.value;
    if !(0.1..=10.0).contains(&ghz) {
        let r = &from.tsc_ghz.referenced;
        return Err(at(
            r.line(),
            r.column(),
            "exit_costs_from.tsc_ghz",
            format!("{ghz} GHz is outside 0.1 to 10 (the TSC frequency the cycles were counted at)"),
        ));
    }
    let r = &from.file.referenced;
    let here = |message: String| at(r.line(), r.column(), "exit_costs_from.file", message);
    let path = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("")).join(&from.file.value);
    let bytes = reports::read_limited(&path, VMEXIT_FILE_MAX, "a vmexit output is a few dozen lines")
        .map_err(|e| here(format!("{e} (the path is relative to the scenario's folder)")))?;
    let text = String::from_utf8(bytes).map_err(|_| here(format!("{}: not UTF-8 text", path.display())))?;
    let entries = crate::vmexit::parse(&path.display().to_string(), &text).map_err(here)?;
    Ok(crate::vmexit::costs(&entries, (ghz * 1e6).round() as u64))
}

/// A quantity written in exponent notation (`1e30/s`, `2.5E-7s`) is read by the unit
/// parser as a number followed by an unknown unit `e30/s`; this says what is wrong instead.
/// (Handled here, where the message reaches the user: the unit parser itself is being
/// reworked separately.)
fn exponent_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix('`')?;
    let (text, rest) = rest.split_once('`')?;
    let (_, expected) = rest.strip_prefix(": unknown unit `")?.split_once("; expected ")?;
    let body = text.trim_start_matches(['+', '-']);
    let (mantissa, after) = body.split_at(body.find(['e', 'E'])?);
    let after_sign = after[1..].trim_start_matches(['+', '-']);
    let digits = after_sign.len() - after_sign.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if mantissa.is_empty() || !mantissa.chars().all(|c| c.is_ascii_digit() || c == '.') || digits == 0 {
        return None;
    }
    let written = &after[..after.len() - after_sign.len() + digits];
    Some(format!(
        "`{text}`: exponent notation (`{written}`) is not accepted; write the number in full with a unit that \
         scales it (e.g. 2.5M/s rather than 2.5e6/s, 300ns rather than 3e-7s); expected {expected}"
    ))
}

/// The sentence a user needs for the YAML library's errors whose own wording is meant for
/// programmers (it names library functions, Rust types or internal budgets), or `None` to
/// keep the library's message.
fn translate(error: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::Error as E;
    let alias = "the aliases (`*name`) here expand to more values than irqsim reads (a small text made huge by \
                 nested aliases, as in the \"billion laughs\" attack); a scenario needs only a few aliases";
    let mut error = error;
    let mut through_alias = false;
    while let E::AliasError { error: inner, .. } | E::WithSnippet { error: inner, .. } = error {
        through_alias |= matches!(error, E::AliasError { .. });
        error = inner;
    }
    Some(match error {
        E::MultipleDocuments { .. } => "the file holds more than one YAML document (a `---` line after the \
            scenario starts another); a scenario file holds one: remove the second `---` and what follows it, or \
            split the file"
            .to_owned(),
        E::NullIntoString { .. } | E::InvalidCharNull { .. } => {
            "expected a text value, found none (nothing after the colon, or `~`)".to_owned()
        }
        E::Eof { .. } => "the file ends in the middle of a value (an unclosed quote, bracket or brace?)".to_owned(),
        E::UnknownAnchor { .. } => "this alias (`*name`) refers to no anchor (`&name`) defined before it".to_owned(),
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => alias.to_owned(),
        E::Budget { .. } if through_alias => alias.to_owned(),
        E::Budget { breach, .. } => {
            use serde_saphyr::budget::BudgetBreach as B;
            let limits = serde_saphyr::Budget::default();
            let what = match breach {
                B::Depth { .. } => format!("lists and mappings nested more than {} levels deep", limits.max_depth),
                B::Nodes { .. } => format!("more than {} values (keys, values and list entries)", limits.max_nodes),
                B::Events { .. } => format!("more than {} YAML parser events", limits.max_events),
                B::Documents { .. } => format!("more than {} YAML documents", limits.max_documents),
                B::Aliases { .. }
                | B::Anchors { .. }
                | B::AliasAnchorRatio { .. }
                | B::RecordedAnchorEvents { .. }
                | B::RecordedAnchorBytes { .. }
                | B::MergeKeys { .. } => return Some(alias.to_owned()),
                B::ScalarBytes { .. } | B::InputBytes { .. } => "more text than irqsim reads".to_owned(),
                _ => "more structure than irqsim reads".to_owned(),
            };
            format!(
                "the YAML is too large or too complex for a scenario: {what}; a scenario is a hand-written file of \
                 a few hundred values, and irqsim stops reading here"
            )
        }
        _ => return None,
    })
}

/// Parses a whole scenario file (refusing one with nothing in it).
pub(crate) fn parse(source: &str) -> Result<ScenarioFile, Diagnostic> {
    let meaningful = source.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && l != "---"
    });
    if !meaningful {
        return Err(Diagnostic {
            line: 1,
            column: 1,
            path: ".".into(),
            message: "the file is empty; a scenario needs at least name, duration, platform and devices".into(),
            from_override: None,
        });
    }
    deserialize(source, "")
}

/// Deserializes YAML `text` into a `T`, or gives the first syntax or type error with its
/// location and field path; `base` is the field path of the text's root (empty for a whole
/// file, the override's path for an override's value).
pub(crate) fn deserialize<T: DeserializeOwned>(text: &str, base: &str) -> Result<T, Diagnostic> {
    let mut path = String::from(".");
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        let mut track = serde_path_to_error::Track::new();
        let result = T::deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
        if result.is_err() {
            // `Spanned` adds a `value` step to the path; the root may be one (an override's value).
            let p = track.path().to_string();
            // Whole `value` segments only: a field named `values` keeps its name.
            path = if p == "." {
                p
            } else {
                let kept: Vec<&str> = p.split('.').filter(|s| *s != "value").collect();
                let joined = kept.join(".");
                // `value[3]` (a Spanned list's items) keeps its index.
                joined.replace(".value[", "[").replace("value[", "[").trim_start_matches('.').to_owned()
            };
        }
        result
    });
    result.map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let raw = e.without_snippet().to_string();
        let message = raw.split(" at line ").next().unwrap_or(&raw).to_owned();
        let found = token_at(text, line, column);
        // serde_path_to_error writes `?` for a key it has not read yet.
        let mut path = path.trim_end_matches(".?").trim_end_matches('?').to_owned();
        let message = if let Some(sentence) = translate(&e) {
            sentence
        } else if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
            let key = key.split(',').next().unwrap_or(key).trim();
            path = if path.is_empty() || path == "." { key.to_owned() } else { format!("{path}.{key}") };
            format!("duplicate key `{key}`; each key may appear once in a mapping")
        } else if message == "expected mapping start" {
            let found = found.map(|f| format!(", found `{f}`")).unwrap_or_default();
            format!("expected a mapping of fields (`key: value` lines){found}")
        } else {
            explain(&message, found)
        };
        Diagnostic { line, column, path: under(base, &path), message, from_override: None }
    })
}

/// The field path `relative` (as serde_path_to_error writes it: `.` or empty for the root)
/// below `base`.
fn under(base: &str, relative: &str) -> String {
    let relative = if relative == "." { "" } else { relative };
    match (base.is_empty(), relative.is_empty()) {
        (true, true) => ".".to_owned(),
        (true, false) => relative.to_owned(),
        (false, true) => base.to_owned(),
        (false, false) if relative.starts_with('[') => format!("{base}{relative}"),
        (false, false) => format!("{base}.{relative}"),
    }
}

#[cfg(test)]
mod tests {
    use super::exponent_hint;

    #[test]
    fn exponent_notation_is_named() {
        let m = exponent_hint("`1e30/s`: unknown unit `e30/s`; expected a rate").unwrap();
        assert!(m.starts_with("`1e30/s`: exponent notation (`e30`) is not accepted;"), "{m}");
        assert!(m.ends_with("; expected a rate"), "{m}");
        let m = exponent_hint("`2.5E-7s`: unknown unit `E-7s`; expected a duration").unwrap();
        assert!(m.contains("(`E-7`)"), "{m}");
        assert_eq!(exponent_hint("`3 parsecs`: unknown unit `parsecs`; expected a duration"), None);
        assert_eq!(exponent_hint("`5 events/s`: unknown unit `events/s`; expected a rate"), None);
        assert_eq!(exponent_hint("`e5/s`: unknown unit `e5/s`; expected a rate"), None);
    }
}
