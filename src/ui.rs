//! Everything a person or a machine sees. Logic reports through `Progress` and returns values; only this module
//! writes to stdout and stderr, and a write never panics: a closed stdout pipe (`wsdeploy plan | head -1`) ends the
//! output quietly, as ripgrep does, and any other failure (`> /dev/full`) becomes the command's error.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

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
    stdout: Arc<Stdout>,
}

/// What became of stdout, shared by every clone of the `Ui`.
#[derive(Debug, Default)]
struct Stdout {
    /// Set once a write failed: nothing more is written.
    closed: std::sync::atomic::AtomicBool,
    /// A failure other than a closed pipe, reported when the command ends.
    failed: Mutex<Option<std::io::Error>>,
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
            stdout: Arc::default(),
        }
    }

    /// Writes to stdout and flushes. A reader that went away (`| head`) is not an error: output just stops.
    fn write_stdout(&self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        use std::sync::atomic::Ordering;
        if self.stdout.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut o = std::io::stdout().lock();
        if let Err(e) = write(&mut o).and_then(|()| o.flush()) {
            self.stdout.closed.store(true, Ordering::Relaxed);
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                *self
                    .stdout
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        }
    }

    /// Bytes for stdout whatever the format (a schema, a completion script).
    pub fn out_raw(&self, bytes: &[u8]) {
        self.write_stdout(|o| o.write_all(bytes));
    }

    /// Whether everything meant for stdout got there: the last word of every command.
    pub fn finish(&self) -> std::io::Result<()> {
        self.write_stdout(|_| Ok(()));
        match self
            .stdout
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            Some(e) => Err(std::io::Error::new(
                e.kind(),
                format!("cannot write the output to stdout: {e}"),
            )),
            None => Ok(()),
        }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// The command's result for people (stdout, text mode only).
    pub fn out(&self, text: impl AsRef<str>) {
        if !self.json() {
            self.write_stdout(|o| writeln!(o, "{}", text.as_ref()));
        }
    }

    /// The command's result for machines (stdout, JSON mode only).
    pub fn out_json(&self, value: &serde_json::Value) {
        if self.json() {
            self.write_stdout(|o| {
                serde_json::to_writer_pretty(&mut *o, value)?;
                writeln!(o)
            });
        }
    }

    /// A side remark (stderr), hidden by -q.
    pub fn info(&self, text: impl AsRef<str>) {
        if !self.quiet {
            say(text.as_ref());
        }
    }

    /// Always shown (stderr), whatever the format.
    #[allow(clippy::unused_self)] // a `Ui` method like the others, so that every line goes through `ui`
    pub fn warn(&self, text: impl AsRef<str>) {
        say(&format!(
            "{} {}",
            console::style("warning:").yellow().bold(),
            text.as_ref()
        ));
    }
}

/// One line to stderr. A closed terminal (or a dead `| tee`) has nowhere to report to, so a failed write is
/// dropped rather than panicking as `eprintln!` would (in the middle of `dev`'s shutdown, say).
pub(crate) fn say(line: &str) {
    // One write per line: stderr is unbuffered, and `writeln!` would make the line and its newline two system calls
    // (dev says a line per `@connections` call: ten thousand for one large publish).
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Text to stderr as it is (a rendered report that ends its own lines).
pub(crate) fn say_raw(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// How logic reports progress without printing: one `Step` per resource.
pub trait Progress: Send + Sync {
    fn step(&self, label: &str) -> Box<dyn Step>;
}

pub trait Step: Send + Sync {
    /// A passing state worth saying (e.g. waiting for IAM to propagate).
    fn update(&self, msg: &str);
    fn finish(&self, outcome: &str);
    fn fail(&self, why: &str);
}

enum ReporterMode {
    /// Spinners, one line per resource, on a terminal.
    Bars(indicatif::MultiProgress),
    /// One plain line per event, for CI logs.
    Lines,
    Silent,
}

pub struct Reporter {
    mode: ReporterMode,
}

impl Ui {
    /// Progress goes to stderr: bars on a terminal, lines otherwise, nothing with -q.
    pub fn progress(&self) -> Reporter {
        let mode = if self.quiet {
            ReporterMode::Silent
        } else if self.interactive {
            ReporterMode::Bars(indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ))
        } else {
            ReporterMode::Lines
        };
        Reporter { mode }
    }
}

impl Progress for Reporter {
    fn step(&self, label: &str) -> Box<dyn Step> {
        let started = std::time::Instant::now();
        match &self.mode {
            ReporterMode::Bars(multi) => {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                        .expect("static template"),
                );
                bar.set_message(label.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                Box::new(BarStep {
                    bar,
                    label: label.to_string(),
                })
            }
            ReporterMode::Lines => Box::new(LineStep {
                label: label.to_string(),
                started,
            }),
            ReporterMode::Silent => Box::new(SilentStep),
        }
    }
}

struct BarStep {
    bar: indicatif::ProgressBar,
    label: String,
}

impl Step for BarStep {
    fn update(&self, msg: &str) {
        self.bar.set_message(format!("{} — {msg}", self.label));
    }
    fn finish(&self, outcome: &str) {
        self.bar
            .set_style(indicatif::ProgressStyle::with_template("{msg}").expect("static template"));
        let secs = self.bar.elapsed().as_secs_f64();
        self.bar.finish_with_message(format!(
            "{} {} {} {}",
            console::style("✓").green(),
            self.label,
            console::style(outcome).dim(),
            console::style(format!("{secs:.1}s")).dim()
        ));
    }
    fn fail(&self, why: &str) {
        self.bar
            .set_style(indicatif::ProgressStyle::with_template("{msg}").expect("static template"));
        self.bar.finish_with_message(format!(
            "{} {} — {why}",
            console::style("✗").red(),
            self.label
        ));
    }
}

struct LineStep {
    label: String,
    started: std::time::Instant,
}

impl Step for LineStep {
    fn update(&self, msg: &str) {
        say(&format!("… {}: {msg}", self.label));
    }
    fn finish(&self, outcome: &str) {
        say(&format!(
            "✓ {}: {outcome} ({:.1}s)",
            self.label,
            self.started.elapsed().as_secs_f64()
        ));
    }
    fn fail(&self, why: &str) {
        say(&format!("✗ {}: {why}", self.label));
    }
}

struct SilentStep;

impl Step for SilentStep {
    fn update(&self, _: &str) {}
    fn finish(&self, _: &str) {}
    fn fail(&self, _: &str) {}
}
