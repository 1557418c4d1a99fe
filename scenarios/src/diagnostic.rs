//! Scenario-file errors: each names the file, line, column, field path, the value found and
//! what is allowed, followed by the offending source line with a caret.

use std::fmt;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Field path, e.g. `devices[0].queues` (`.` for the whole document).
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Every problem found in one scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as the user named it.
    pub file: String,
    /// The file's text, for the snippets.
    pub source: String,
    /// All problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "error: {}:{}:{}: {}: {}", self.file, d.line, d.column, d.path, d.message)?;
            if let Some(text) = self.source.lines().nth(d.line.saturating_sub(1) as usize) {
                let gutter = d.line.to_string().len();
                writeln!(f, "{:>gutter$} | {text}", d.line)?;
                let pad: String = text
                    .chars()
                    .take(d.column.saturating_sub(1) as usize)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{:>gutter$} | {pad}^", "")?;
            }
        }
        let n = self.diagnostics.len();
        write!(f, "{n} error{} in {}; nothing was run", if n == 1 { "" } else { "s" }, self.file)
    }
}

impl std::error::Error for ScenarioError {}
