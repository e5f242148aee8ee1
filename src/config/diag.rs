//! Config diagnostics: what is wrong, where (file, key path, line, column) and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::positions::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Dotted key path, e.g. `stages.prod.backend.url`; empty for the whole file.
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(
        severity: Severity,
        path: &[String],
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> Self {
        let pos = pos.unwrap_or(Pos { line: 1, col: 1 });
        Diagnostic {
            severity,
            path: display_path(path),
            line: pos.line,
            column: pos.col,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// `stages.prod.backend.url`; a key that is not a plain word is quoted so the path stays unambiguous.
pub(crate) fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|k| {
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-$".contains(c))
            {
                k.clone()
            } else {
                format!("{k:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Every problem found in one config file, errors first, each shown with its line of source.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// Sorted by position, duplicates removed (a rule checked for several stages may hit the same top-level key).
    pub fn normalize(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (a.severity, a.line, a.column, &a.path, &a.message)
                .cmp(&(b.severity, b.line, b.column, &b.path, &b.message))
        });
        self.diagnostics.dedup();
    }

    pub fn render(&self, file: &Path) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            render_one(&mut out, file, &self.source, d);
        }
        let errors = self.errors().count();
        if errors > 0 {
            let s = if errors == 1 { "" } else { "s" };
            out.push_str(&format!(
                "{errors} error{s} in {}; nothing was changed.\n",
                file.display()
            ));
        }
        out
    }
}

fn render_one(out: &mut String, file: &Path, source: &str, d: &Diagnostic) {
    use fmt::Write;
    let label = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let at = if d.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", d.path)
    };
    let _ = writeln!(out, "{label}: {at}{}", d.message);
    let _ = writeln!(out, "  --> {}:{}:{}", file.display(), d.line, d.column);
    if let Some(text) = source.lines().nth(d.line.saturating_sub(1)) {
        let (shown, column) = window(text.trim_end_matches('\r'), d.column);
        let gutter = d.line.to_string().len();
        let caret_pad: String = shown
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let _ = writeln!(out, "{:gutter$} |", "");
        let _ = writeln!(out, "{} | {}", d.line, redact_userinfo(&shown));
        let _ = writeln!(out, "{:gutter$} | {caret_pad}^", "");
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "  = help: {help}");
    }
    out.push('\n');
}

/// Longest source line a report shows whole; a longer one is cut to a window around the column.
const MAX_SHOWN: usize = 120;

/// The part of `line` a report shows, and the column within it.
fn window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= MAX_SHOWN {
        return (line.to_string(), column);
    }
    let start = column
        .saturating_sub(1)
        .saturating_sub(MAX_SHOWN / 2)
        .min(chars.len() - MAX_SHOWN);
    let end = start + MAX_SHOWN;
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, column - start + usize::from(start > 0))
}

/// A source line as shown in a report, with any `scheme://user:password@` reduced to `scheme://***@`: the report
/// goes to terminals and CI logs, and a password written in a URL must not follow it there.
pub(crate) fn redact_userinfo(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                rest = &tail[userinfo_end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_never_reaches_the_report() {
        assert_eq!(
            redact_userinfo("  url: https://admin:hunter2@api.example.com/x # and http://u@h"),
            "  url: https://***@api.example.com/x # and http://***@h"
        );
        assert_eq!(redact_userinfo("a: 'x://b' c@d"), "a: 'x://b' c@d");
    }
}
