//! Scenario-file errors: each names the file, line, column, field path, the value found and
//! what is allowed, followed by the offending source line with a caret. A problem in an
//! override (a sweep's axis value) names the override, its path and value, instead of a
//! line of the file.

use std::fmt;

/// One field of a scenario set from outside the file, as a sweep sets an axis value: a
/// dotted field path (`devices[0].arrival.rate`) and a YAML value (`120k/s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Field path, e.g. `devices[0].arrival.rate`.
    pub path: String,
    /// The value as YAML text, e.g. `120k/s` or `{ process: poisson, rate: 5k/s }`.
    pub value: String,
}

impl fmt::Display for Override {
    /// `PATH=VALUE`, the value quoted when it spans lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.contains('\n') {
            write!(f, "{}={:?}", self.path, self.value)
        } else {
            write!(f, "{}={}", self.path, self.value)
        }
    }
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line (of the override's value when `from_override` is set; 0 there means
    /// the override's path).
    pub line: u64,
    /// 1-based column (within that line, or within the override's path).
    pub column: u64,
    /// Field path, e.g. `devices[0].queues` (`.` for the whole document).
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
    /// The override whose path or value this problem is in; `None` for the file.
    pub from_override: Option<Override>,
}

impl Diagnostic {
    /// `FILE:LINE:COL: PATH: MESSAGE`, or `FILE: override `PATH=VALUE`: PATH: MESSAGE` for
    /// one in an override: the one-line form of a warning.
    pub fn located(&self, file: &str) -> String {
        match &self.from_override {
            None => format!("{file}:{}:{}: {}: {}", self.line, self.column, self.path, self.message),
            Some(o) => format!("{file}: override `{o}`: {}: {}", self.path, self.message),
        }
    }
}

/// Every problem found in one scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as the user named it.
    pub file: String,
    /// The file's text, for the snippets.
    pub source: String,
    /// All problems, in file order, then in override order.
    pub diagnostics: Vec<Diagnostic>,
    /// The overrides the file was loaded with (none for a plain load).
    pub overrides: Vec<Override>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            match &d.from_override {
                None => {
                    writeln!(f, "error: {}:{}:{}: {}: {}", self.file, d.line, d.column, d.path, d.message)?;
                    if let Some(text) = self.source.lines().nth(d.line.saturating_sub(1) as usize) {
                        snippet(f, &d.line.to_string(), text, d.column)?;
                    }
                }
                Some(o) => {
                    writeln!(f, "error: {}: override `{o}`: {}: {}", self.file, d.path, d.message)?;
                    // Line 1 of the value follows `PATH=`; line 0 is the path itself.
                    let (text, column) = match d.line {
                        0 => (o.to_string(), d.column),
                        1 => (
                            format!("{}={}", o.path, o.value.lines().next().unwrap_or("")),
                            d.column + o.path.len() as u64 + 1,
                        ),
                        n => (o.value.lines().nth(n as usize - 1).unwrap_or("").to_owned(), d.column),
                    };
                    snippet(f, "", &text, column)?;
                }
            }
        }
        let n = self.diagnostics.len();
        let with = if self.overrides.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self.overrides.iter().map(Override::to_string).collect();
            format!(" with overrides {}", list.join(", "))
        };
        write!(f, "{n} error{} in {}{with}; nothing was run", if n == 1 { "" } else { "s" }, self.file)
    }
}

/// `text` after a gutter, and a caret under its `column` (1-based).
fn snippet(f: &mut fmt::Formatter<'_>, gutter: &str, text: &str, column: u64) -> fmt::Result {
    let width = gutter.len();
    writeln!(f, "{gutter:>width$} | {text}")?;
    let pad: String =
        text.chars().take(column.saturating_sub(1) as usize).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    writeln!(f, "{:>width$} | {pad}^", "")
}

impl std::error::Error for ScenarioError {}
