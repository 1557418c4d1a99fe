//! Text → [`Scenario`], the entry: [`load`] parses the YAML (first syntax or type error,
//! with its field path), validates every section collecting **all** errors (`validate`) and
//! builds the models' parameters (`build`). Nothing after this module sees text, and
//! models may assume their parameters are valid.

use serde::Deserialize;
use sim::SimDuration;

use models::platform::PlatformParams;

use crate::diagnostic::{Diagnostic, ScenarioError};
use crate::schema::ScenarioFile;
use crate::validate::Checker;
use crate::{build, validate};

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
}

/// Reads and validates a scenario. `file` names it in errors.
pub fn load(file: &str, source: &str) -> Result<Scenario, ScenarioError> {
    let fail = |diagnostics| ScenarioError { file: file.to_owned(), source: source.to_owned(), diagnostics };
    let raw = parse(source).map_err(|d| fail(vec![d]))?;
    let mut checker = Checker::default();
    let validated = validate::check(&raw, &mut checker);
    match validated {
        Some(validated) if checker.is_clean() => Ok(build::build(validated)),
        _ => {
            let mut diagnostics = checker.diagnostics;
            diagnostics.sort_by_key(|d| (d.line, d.column));
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

/// Parses a whole scenario file (refusing one with nothing in it), or gives the first
/// syntax or type error with its location and field path.
fn parse(source: &str) -> Result<ScenarioFile, Diagnostic> {
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
        });
    }
    let mut path = String::from(".");
    let result = serde_saphyr::with_deserializer_from_str(source, |de| {
        let mut track = serde_path_to_error::Track::new();
        let result = ScenarioFile::deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
        if result.is_err() {
            path = track.path().to_string().replace(".value", "");
        }
        result
    });
    result.map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let raw = e.without_snippet().to_string();
        let message = raw.split(" at line ").next().unwrap_or(&raw).to_owned();
        let found = token_at(source, line, column);
        // serde_path_to_error writes `?` for a key it has not read yet.
        let mut path = path.trim_end_matches(".?").trim_end_matches('?').to_owned();
        let message = if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
            let key = key.split(',').next().unwrap_or(key).trim();
            path = if path.is_empty() || path == "." { key.to_owned() } else { format!("{path}.{key}") };
            format!("duplicate key `{key}`; each key may appear once in a mapping")
        } else if message == "expected mapping start" {
            let found = found.map(|f| format!(", found `{f}`")).unwrap_or_default();
            format!("expected a mapping of fields (`key: value` lines){found}")
        } else {
            explain(&message, found)
        };
        let path = if path.is_empty() { ".".to_owned() } else { path };
        Diagnostic { line, column, path, message }
    })
}
