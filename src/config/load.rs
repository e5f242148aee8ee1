//! Reading `wsdeploy.yaml`: YAML syntax, then the typed layers, collecting every structural error in one pass.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::diag::{Diagnostic, Report, Severity};
use super::model::Layer;
use super::positions::{Pos, Positions};

/// A parsed config file: the top-level layer, the stage layers, and where everything is in the source.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub source: String,
    pub layer: Layer,
    pub positions: Positions,
    /// Key paths whose values were dropped because they did not deserialize: later rules stay quiet about them.
    pub dropped: Vec<Vec<String>>,
}

/// Why a config could not be used. Always a bad-input error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no config file at {path}")]
    NotFound { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has errors", .0.file.display())]
    Invalid(Box<Report>),
    #[error("{0}")]
    Stage(String),
    #[error("{} is {bytes} bytes; a wsdeploy config is a few kilobytes and at most {MAX_FILE_BYTES}: is this the right file?", path.display())]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("{} is not a regular file (a FIFO, a device or a directory): point -c at the config file itself", path.display())]
    NotAFile { path: PathBuf },
}

/// Most errors a single file can produce before we stop looking; each drop-and-retry round finds one.
const MAX_STRUCTURAL_ERRORS: usize = 64;

/// Largest config file read: a real one is a few kilobytes, and a huge one is the wrong file (or an attack on
/// whatever parses it).
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Deepest nesting of `[`/`{` accepted: a config needs three or four levels; the YAML parsers' costs grow with it.
const MAX_FLOW_DEPTH: usize = 32;

pub(crate) fn read(path: &Path) -> Result<(ConfigFile, Report), ConfigError> {
    use std::io::Read as _;
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_path_buf(),
        },
        _ => ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        },
    };
    // Only a regular file, read at most to the cap: a FIFO would block the open, and `/dev/zero` or a `/proc` file
    // reports a size of 0 while having no end. The path is looked at before opening it, and the opened file again
    // (it may have been swapped in between; non-blocking, so that a FIFO swapped in cannot hold the open).
    let not_a_file = || ConfigError::NotAFile {
        path: path.to_path_buf(),
    };
    if !std::fs::metadata(path).map_err(failed)?.is_file() {
        return Err(not_a_file());
    }
    let file = open_nonblocking(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            bytes: meta.len().max(bytes.len() as u64),
        });
    }
    let source = String::from_utf8(bytes)
        .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(parse(path, source))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Parses `source` as the file at `path`. Never fails: problems are in the returned report.
pub(crate) fn parse(path: &Path, source: String) -> (ConfigFile, Report) {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| ".".into());
    let positions = Positions::index(&source);
    let mut report = Report {
        file: path.to_path_buf(),
        source: source.clone(),
        diagnostics: vec![],
    };
    let mut dropped = vec![];
    if let Some((line, column)) = too_deep(&source) {
        report.diagnostics.push(
            Diagnostic::new(
                Severity::Error,
                &[],
                Some(Pos { line, col: column }),
                format!("collections nest deeper than {MAX_FLOW_DEPTH} levels"),
            )
            .help("a wsdeploy config needs three or four levels: is this the right file?"),
        );
        return (
            ConfigFile {
                path: path.to_path_buf(),
                dir,
                source,
                layer: Layer::default(),
                positions: Positions::default(),
                dropped,
            },
            report,
        );
    }
    let layer = match serde_yaml::from_str::<Value>(&source) {
        Err(e) => {
            report
                .diagnostics
                .push(syntax_diagnostic(&e, &source, &positions));
            Layer::default()
        }
        Ok(Value::Null) => {
            report.diagnostics.push(
                Diagnostic::new(Severity::Error, &[], None, "the file is empty")
                    .help("run `wsdeploy init` to write a commented starting point"),
            );
            Layer::default()
        }
        Ok(mut value) => {
            let _ = value.apply_merge();
            typed(value, &positions, &mut report, &mut dropped)
        }
    };
    (
        ConfigFile {
            path: path.to_path_buf(),
            dir,
            source,
            layer,
            positions,
            dropped,
        },
        report,
    )
}

fn syntax_diagnostic(e: &serde_yaml::Error, source: &str, positions: &Positions) -> Diagnostic {
    let mut pos = e.location().map(|l| Pos {
        line: l.line(),
        col: l.column(),
    });
    let msg = e.to_string();
    // serde_yaml appends " at line L column C", which the rendering shows already.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let mut help = "fix the YAML syntax at this position (indentation, a missing ':' or an unclosed quote or bracket)".to_string();
    if msg.starts_with("duplicate entry") {
        if let Some((path, at)) = positions.first_duplicate() {
            pos = Some(*at);
            help = format!(
                "`{}` is set twice in the same mapping: keep one",
                path.last().map_or("", String::as_str)
            );
        }
    }
    if msg.contains("repetition limit exceeded") {
        // The first alias is where the expansion starts.
        pos = source.lines().enumerate().find_map(|(i, l)| {
            l.find('*').map(|c| Pos {
                line: i + 1,
                col: c + 1,
            })
        });
        help =
            "its aliases (*name) expand into too many values: a wsdeploy config needs few, if any"
                .into();
    }
    let line = pos
        .and_then(|p| source.lines().nth(p.line.saturating_sub(1)))
        .unwrap_or("");
    if line.trim_start_matches(' ').starts_with('\t') {
        help = "YAML does not allow tabs for indentation: indent with spaces".into();
    }
    Diagnostic::new(Severity::Error, &[], pos, format!("invalid YAML: {msg}")).help(help)
}

/// Deserializes the whole tree; on an error, reports it, drops the offending node and tries again, so one run
/// reports every unknown key and every wrongly typed value.
fn typed(
    mut value: Value,
    positions: &Positions,
    report: &mut Report,
    dropped: &mut Vec<Vec<String>>,
) -> Layer {
    for _ in 0..MAX_STRUCTURAL_ERRORS {
        let err = match serde_path_to_error::deserialize::<_, Layer>(value.clone()) {
            Ok(layer) => return layer,
            Err(err) => err,
        };
        let mut path: Vec<String> = err
            .path()
            .iter()
            .map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => index.to_string(),
                serde_path_to_error::Segment::Map { key } => key.clone(),
                serde_path_to_error::Segment::Enum { variant } => variant.clone(),
                serde_path_to_error::Segment::Unknown => "?".into(),
            })
            .collect();
        let raw = err.into_inner().to_string();
        let diagnostic = match unknown_field(&raw) {
            Some((field, expected)) => {
                // serde_path_to_error's path ends at the map holding the unknown key.
                if path.last() != Some(&field) {
                    path.push(field.clone());
                }
                unknown_key_diagnostic(&path, positions.key(&path), &field, &expected)
            }
            None => type_diagnostic(&path, positions.value(&path), &raw),
        };
        report.diagnostics.push(diagnostic);
        if path.is_empty() || !remove(&mut value, &path) {
            // The root itself is wrong (e.g. a list instead of a mapping): nothing more to learn.
            return Layer::default();
        }
        dropped.push(path);
    }
    Layer::default()
}

fn remove(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for key in parents {
        node = match node {
            Value::Mapping(m) => match m.get_mut(key.as_str()) {
                Some(v) => v,
                None => return false,
            },
            Value::Sequence(s) => match key.parse::<usize>().ok().and_then(|i| s.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            Value::Tagged(t) => &mut t.value,
            _ => return false,
        };
    }
    match node {
        Value::Mapping(m) => m.remove(last.as_str()).is_some() || remove_non_string_key(m, last),
        _ => false,
    }
}

/// Keys such as `1:` or `true:` are not strings in YAML; serde reports them by their text.
fn remove_non_string_key(m: &mut serde_yaml::Mapping, text: &str) -> bool {
    let key = m
        .keys()
        .find(|k| serde_yaml::to_string(k).is_ok_and(|s| s.trim() == text))
        .cloned();
    key.and_then(|k| m.remove(k)).is_some()
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are no fields").
fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, tail) = rest.split_once('`')?;
    Some((field.to_string(), backticked(tail)))
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(String::from).collect()
}

pub(crate) fn did_you_mean<'a>(
    given: &str,
    options: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    options
        .into_iter()
        .map(|o| {
            (
                strsim::jaro_winkler(&given.to_lowercase(), &o.to_lowercase()),
                o,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o)
}

/// Keys a user may reach for that WebSocket APIs do not have: (the mapping they sit in, keys, why not).
const NOT_FOR_WEBSOCKETS: &[(&str, &[&str], &str)] = &[
    (
        "domain",
        &["security_policy", "tls_policy", "tls", "tls_version", "min_tls_version"],
        "API Gateway enforces the TLS_1_2 security policy (TLS 1.2 and 1.3) on every WebSocket API endpoint and offers no other (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-ciphers.html): remove it",
    ),
    (
        "domain",
        &["mtls", "mutual_tls", "mutual_tls_authentication", "truststore", "truststore_uri", "client_certificates"],
        "API Gateway offers mutual TLS on the custom domains of REST and HTTP APIs only, not of WebSocket APIs (https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-mutual-tls.html, http-api-mutual-tls.html): remove it and authenticate clients by the token the `auth` route forwards to your backend",
    ),
];

fn unknown_key_diagnostic(
    path: &[String],
    pos: Option<Pos>,
    field: &str,
    expected: &[String],
) -> Diagnostic {
    let parent = path.iter().rev().nth(1).map(String::as_str);
    let unsupported = NOT_FOR_WEBSOCKETS
        .iter()
        .find(|(under, keys, _)| parent == Some(*under) && keys.contains(&field));
    if let Some((_, _, why)) = unsupported {
        return Diagnostic::new(
            Severity::Error,
            path,
            pos,
            format!("WebSocket APIs have no `{field}`"),
        )
        .help(*why);
    }
    let d = Diagnostic::new(Severity::Error, path, pos, format!("unknown key `{field}`"));
    let valid = expected.join(", ");
    match did_you_mean(field, expected.iter().map(String::as_str)) {
        Some(s) => d.help(format!("did you mean `{s}`? Keys allowed here: {valid}")),
        None if expected.is_empty() => d.help("remove this key: nothing may be set here"),
        None => d.help(format!(
            "remove it or use one of the keys allowed here: {valid}"
        )),
    }
}

/// Turns serde's wording ("invalid type: string \"x\", expected u32") into a sentence for people.
fn type_diagnostic(path: &[String], pos: Option<Pos>, raw: &str) -> Diagnostic {
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (given, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let options = backticked(tail);
        let d = Diagnostic::new(
            Severity::Error,
            path,
            pos,
            format!("`{given}` is not an allowed value"),
        );
        let list = options.join(", ");
        return match did_you_mean(given, options.iter().map(String::as_str)) {
            Some(s) => d.help(format!("did you mean `{s}`? Allowed values: {list}")),
            None => d.help(format!("use one of: {list}")),
        };
    }
    let parsed = raw
        .strip_prefix("invalid type: ")
        .or_else(|| raw.strip_prefix("invalid value: "))
        .and_then(|r| r.rsplit_once(", expected "));
    match parsed {
        Some((found, expected)) => {
            let expected = describe_expected(expected);
            Diagnostic::new(
                Severity::Error,
                path,
                pos,
                format!("expected {expected}, found {}", describe_found(found)),
            )
            .help(format!("write {expected} here"))
        }
        None => Diagnostic::new(Severity::Error, path, pos, raw.to_string()),
    }
}

fn describe_expected(e: &str) -> String {
    match e {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i32" | "i64" => "a whole number".into(),
        "a string" => "a string".into(),
        "a boolean" => "true or false".into(),
        "a map" => "a mapping of `name: value` entries".into(),
        e if e.starts_with("struct ") => {
            "a mapping of settings (`key: value` lines indented below)".into()
        }
        e if e.starts_with("enum ") => "one of the allowed names".into(),
        e => e.to_string(),
    }
}

fn describe_found(f: &str) -> String {
    match f {
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        "unit value" => "nothing (null)".into(),
        f => {
            if let Some(n) = f
                .strip_prefix("integer ")
                .or_else(|| f.strip_prefix("floating point "))
            {
                format!("the number {}", n.trim_matches('`'))
            } else if let Some(b) = f.strip_prefix("boolean ") {
                b.trim_matches('`').to_string()
            } else if let Some(s) = f.strip_prefix("string ") {
                format!("the text {s}")
            } else {
                f.to_string()
            }
        }
    }
}

/// Where `[`/`{` first nest deeper than [`MAX_FLOW_DEPTH`] (outside quotes and comments), as a 1-based line and
/// column. Checked before parsing: both YAML parsers take time that grows faster than the depth.
fn too_deep(source: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    for (i, line) in source.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        for (col, c) in line.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some((i + 1, col + 1));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    None
}
