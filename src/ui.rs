//! Everything a person or a machine sees. Logic reports through `Progress` and returns values; only this module and
//! the verbs' `run` functions print.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// For people: progress, tables, colour on a terminal.
    #[default]
    Text,
    /// One JSON document on stdout, nothing else on stdout.
    Json,
}

/// How output is shaped for this run.
#[derive(Debug, Clone)]
pub struct Ui {
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: u8,
    /// stderr is a terminal and this is not CI: spinners and prompts are allowed.
    pub interactive: bool,
}

impl Ui {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8) -> Ui {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        let interactive = !ci && std::io::stderr().is_terminal() && std::io::stdin().is_terminal();
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || !std::io::stderr().is_terminal()
        {
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
        }
        Ui {
            format,
            quiet,
            verbose,
            interactive,
        }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// The command's result for people (stdout, text mode only).
    pub fn out(&self, text: impl AsRef<str>) {
        if !self.json() {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{}", text.as_ref());
        }
    }

    /// The command's result for machines (stdout, JSON mode only).
    pub fn out_json(&self, value: &serde_json::Value) {
        if self.json() {
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut o, value);
            let _ = writeln!(o);
        }
    }

    /// A side remark (stderr), hidden by -q.
    pub fn info(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", text.as_ref());
        }
    }

    /// Always shown (stderr), whatever the format.
    pub fn warn(&self, text: impl AsRef<str>) {
        eprintln!(
            "{} {}",
            console::style("warning:").yellow().bold(),
            text.as_ref()
        );
    }
}
