//! Editing dotenv files in place: managed keys are set or removed, every other byte is kept (comments, order,
//! quoting, `export ` prefixes, CRLF, a missing final newline), and the file is replaced atomically.

pub use crate::secret::SigningSecrets;
use std::path::Path;

/// `KEY` of a line like `  export KEY = value`, with the byte range of the value.
fn parse_line(line: &str) -> Option<(&str, std::ops::Range<usize>)> {
    let body = line.trim_end_matches(['\n', '\r']);
    let indent = body.len() - body.trim_start().len();
    let mut rest = &body[indent..];
    let mut at = indent;
    if let Some(r) = rest.strip_prefix("export ") {
        let skipped = rest.len() - r.trim_start().len();
        at += skipped;
        rest = &rest[skipped..];
    }
    let eq = rest.find('=')?;
    let key = rest[..eq].trim_end();
    if key.is_empty()
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || key.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let value_start = at + eq + 1;
    Some((key, value_start..body.len()))
}

/// The value of `key` (last assignment wins, as in dotenv loaders), unquoted.
#[must_use]
pub fn get(text: &str, key: &str) -> Option<String> {
    text.split_inclusive('\n')
        .rev()
        .find_map(|l| {
            parse_line(l)
                .filter(|(k, _)| *k == key)
                .map(|(_, r)| l[r].to_string())
        })
        .map(|v| unquote(v.trim()))
}

/// A written value as dotenv readers read it: single quotes literal, double quotes with dotenvy's escapes.
fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'') {
        if let Some(end) = inner.find('\'') {
            return inner[..end].to_string();
        }
    }
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return out,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some(e @ ('"' | '\\' | '$' | '\'')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
    }
    // An unquoted value may carry a trailing comment.
    v.split(" #").next().unwrap_or(v).trim_end().to_string()
}

/// A value no quoting makes every dotenv reader read back as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value cannot be written so that every dotenv reader reads it back: it holds `${{`, or a newline or a `'` together with `\"`, `\\`, `$` or a backquote")]
pub struct Unwritable;

/// A value as it must be written for dotenv readers (dotenvy, Node's `process.loadEnvFile`, python-dotenv) to read
/// back exactly `value`: bare when nothing in it means anything to them; else in double quotes, where a newline is
/// `\n`, the one escape they all share (they disagree on `\\` and `\"`, and expand `$` differently); else in single
/// quotes, which all of them take literally but for python-dotenv's backslashes. The style of the value it replaces
/// (`like`) is kept where it can be.
fn render(value: &str, like: &str) -> Result<String, Unwritable> {
    let like = like.trim();
    let quoted = |q: char| like.len() >= 2 && like.starts_with(q) && like.ends_with(q);
    let bare = !value
        .chars()
        .any(|c| c.is_whitespace() || "#\"'`$\\".contains(c));
    let double = !value.chars().any(|c| "\"\\$`\r".contains(c));
    // python-dotenv reads `\\` in single quotes as one backslash, and `\'` as a quote.
    let single = !value.chars().any(|c| "'\n\r".contains(c))
        && !value.contains("\\\\")
        && !value.ends_with('\\');
    let in_double = || format!("\"{}\"", value.replace('\n', "\\n"));
    let in_single = || format!("'{value}'");
    // python-dotenv expands `${NAME}` in every quoting, single quotes included, and has no escape for it.
    if value.contains("${") {
        return Err(Unwritable);
    }
    Ok(if quoted('\'') && single {
        in_single()
    } else if quoted('"') && double {
        in_double()
    } else if bare {
        value.to_string()
    } else if double {
        in_double()
    } else if single {
        in_single()
    } else {
        return Err(Unwritable);
    })
}

/// Sets each `(key, value)` (every assignment of the key, so duplicates agree) and removes each of `remove`;
/// keys not present are appended, in the file's line-ending style.
pub fn edit(text: &str, set: &[(&str, &str)], remove: &[&str]) -> Result<String, Unwritable> {
    let crlf = text.contains("\r\n");
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + 256);
    let mut seen = vec![false; set.len()];
    for line in text.split_inclusive('\n') {
        match parse_line(line) {
            Some((key, _)) if remove.contains(&key) => {}
            Some((key, range)) => match set.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    seen[i] = true;
                    out.push_str(&line[..range.start]);
                    out.push_str(&render(set[i].1, &line[range.clone()])?);
                    out.push_str(&line[range.end..]);
                }
                None => out.push_str(line),
            },
            None => out.push_str(line),
        }
    }
    let missing: Vec<&(&str, &str)> = set
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(kv, _)| kv)
        .collect();
    if !missing.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        for (k, v) in missing {
            out.push_str(&format!("{k}={}{eol}", render(v, "")?));
        }
    }
    Ok(out)
}

/// Applies `edit` to the file (created if missing) atomically. `secret` files are written 0600.
/// Returns whether the contents changed.
pub fn update_file(
    path: &Path,
    set: &[(&str, &str)],
    remove: &[&str],
    secret: bool,
) -> anyhow::Result<bool> {
    let old = match std::fs::read(path) {
        Ok(b) => Some(String::from_utf8(b).map_err(|_| {
            anyhow::anyhow!("{} is not UTF-8 text; fix or remove it", path.display())
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    if old.is_none() && set.is_empty() {
        return Ok(false);
    }
    let new = edit(old.as_deref().unwrap_or(""), set, remove)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let mode_ok = !secret || mode_is_private(path);
    if old.as_deref() == Some(new.as_str()) && mode_ok {
        return Ok(false);
    }
    crate::fsutil::write_atomic(
        path,
        new.as_bytes(),
        if secret { Some(0o600) } else { None },
    )?;
    Ok(old.as_deref() != Some(new.as_str()))
}

/// What `up` and `dev` write into a stage's env files.
pub struct StageValues<'a> {
    pub websocket_url: &'a str,
    pub endpoint: &'a str,
    pub region: &'a str,
    /// A key to write (id, secret); `None` keeps the one the file holds.
    pub key: Option<(&'a str, &'a str)>,
    /// Remove any key lines: with `credentials: policy` the backend uses its own role, and a stale key left in the
    /// file would take precedence over it in the templates.
    pub drop_key: bool,
    pub signing: &'a SigningSecrets,
    /// Whose secret it is (the stage's resource prefix, `{project}-{stage}`), recorded beside it.
    pub stage: &'a str,
    /// The fan-out function's name, with `fanout: true` (`None` removes it).
    pub fanout_function: Option<&'a str>,
    /// `dev` only: its Lambda Invoke API, for the backend's Lambda client.
    pub fanout_endpoint: Option<&'a str>,
}

/// The signing secret the backend env file holds for `stage` (its resource prefix), if the file says it is that
/// stage's and it is strong enough: a secret another stage (or `dev`) wrote, or a short hand-typed one, is never
/// adopted.
pub fn stage_signing_secret(
    text: &str,
    b: &crate::config::resolve::BackendEnvSettings,
    stage: &str,
) -> Option<String> {
    let owner = get(text, &b.signing_secret_stage())?;
    get(text, &b.signing_secret).filter(|s| owner == stage && crate::secret::is_strong(s))
}

/// Writes the managed keys of both env files; returns each file with whether it changed.
pub fn write_stage(
    env: &crate::config::resolve::EnvSettings,
    v: &StageValues<'_>,
) -> anyhow::Result<Vec<(String, bool)>> {
    let mut written = vec![];
    if let Some(f) = &env.frontend {
        let changed = update_file(&f.file, &[(f.url.as_str(), v.websocket_url)], &[], false)?;
        written.push((f.file.display().to_string(), changed));
    }
    if let Some(b) = &env.backend {
        let owner = b.signing_secret_stage();
        let previous = b.signing_secret_previous();
        let mut set: Vec<(&str, &str)> = vec![
            (&b.endpoint, v.endpoint),
            (&b.region, v.region),
            (&b.signing_secret, &v.signing.current),
            (&owner, v.stage),
        ];
        let mut drop: Vec<&str> = vec![];
        match &v.signing.previous {
            Some(p) => set.push((&previous, p)),
            None => drop.push(&previous),
        }
        if let Some((id, secret)) = v.key {
            set.push((&b.access_key_id, id));
            set.push((&b.secret_access_key, secret));
        }
        if v.drop_key {
            drop.extend([b.access_key_id.as_str(), &b.secret_access_key]);
        }
        let endpoint = b.fanout_endpoint();
        match v.fanout_function {
            Some(name) => set.push((&b.fanout_function, name)),
            None => drop.push(&b.fanout_function),
        }
        match v.fanout_endpoint {
            Some(url) => set.push((&endpoint, url)),
            None => drop.push(&endpoint),
        }
        let changed = update_file(&b.file, &set, &drop, true)?;
        written.push((b.file.display().to_string(), changed));
    }
    Ok(written)
}

#[cfg(unix)]
fn mode_is_private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn mode_is_private(_: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_everything_it_does_not_manage() {
        let text =
            "# app\r\nexport WS_URL='old'\r\nOTHER=\"x y\" # note\r\n\r\nWS_URL=dup\r\nLAST=1";
        let out = edit(text, &[("WS_URL", "wss://a/b"), ("NEW", "v")], &[]).unwrap();
        assert_eq!(out, "# app\r\nexport WS_URL='wss://a/b'\r\nOTHER=\"x y\" # note\r\n\r\nWS_URL=wss://a/b\r\nLAST=1\r\nNEW=v\r\n");
        assert_eq!(get(&out, "WS_URL").as_deref(), Some("wss://a/b"));
        assert_eq!(get(&out, "OTHER").as_deref(), Some("x y"));
        let removed = edit(&out, &[], &["WS_URL", "NEW"]).unwrap();
        assert_eq!(removed, "# app\r\nOTHER=\"x y\" # note\r\n\r\nLAST=1\r\n");
    }

    #[test]
    fn values_that_need_quotes_get_them() {
        assert_eq!(
            edit("", &[("A", "has space"), ("B", "a+b/c=")], &[]).unwrap(),
            "A=\"has space\"\nB=a+b/c=\n"
        );
        assert_eq!(
            edit(
                "",
                &[
                    ("Q", "say \"hi\" to $USER\\n"),
                    ("N", "two\nlines # not a comment")
                ],
                &[]
            )
            .unwrap(),
            "Q='say \"hi\" to $USER\\n'\nN=\"two\\nlines # not a comment\"\n"
        );
        for unwritable in ["it's \"both\"", "ends in \\", "${HOME}"] {
            assert_eq!(edit("", &[("X", unwritable)], &[]), Err(Unwritable));
        }
    }

    #[test]
    fn writes_secrets_0600_and_reports_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, "KEEP=1\n").unwrap();
        assert!(update_file(&p, &[("S", "x")], &[], true).unwrap());
        assert!(
            !update_file(&p, &[("S", "x")], &[], true).unwrap(),
            "no change, no write"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "KEEP=1\nS=x\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(
            !update_file(&dir.path().join("absent"), &[], &["S"], true).unwrap(),
            "nothing to remove from a missing file"
        );
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,30}",
            "#[ -~é€]{0,20}",
            "(export )?[A-Z_]{1,8} ?= ?[ -~]{0,12}",
            "(export )?(MANAGED|SECRET)=[a-z\"']{0,6}",
            Just(String::new()),
        ]
    }

    proptest! {
        /// Whatever the file holds, removing the managed keys' lines from input and output leaves the same bytes.
        #[test]
        fn every_unmanaged_byte_is_kept(lines in prop::collection::vec((line(), prop::bool::ANY), 0..12), final_newline in prop::bool::ANY) {
            let mut text = String::new();
            for (i, (l, crlf)) in lines.iter().enumerate() {
                text.push_str(l);
                if i + 1 < lines.len() || final_newline {
                    text.push_str(if *crlf { "\r\n" } else { "\n" });
                }
            }
            let out = edit(&text, &[("MANAGED", "wss://x/y"), ("SECRET", "a+b/c=")], &[]).unwrap();
            let strip = |s: &str| -> String {
                s.split_inclusive('\n')
                    .filter(|l| !matches!(parse_line(l), Some((k, _)) if k == "MANAGED" || k == "SECRET"))
                    .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            prop_assert_eq!(strip(&text), strip(&out));
            prop_assert_eq!(get(&out, "MANAGED"), Some("wss://x/y".to_string()));
            prop_assert_eq!(get(&out, "SECRET"), Some("a+b/c=".to_string()));
            // Bytes before the first managed line are kept exactly, line endings included.
            let cut = text.split_inclusive('\n').take_while(|l| parse_line(l).is_none_or(|(k, _)| k != "MANAGED" && k != "SECRET")).map(str::len).sum::<usize>();
            prop_assert_eq!(&out.as_bytes()[..cut.min(out.len())], &text.as_bytes()[..cut.min(out.len())]);
        }
    }
}
