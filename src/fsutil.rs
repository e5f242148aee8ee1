//! Files are replaced atomically: a reader (or a crash) sees the old file or the new one, never a mix.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Writes `contents` to a temporary file in `path`'s folder, fsyncs it and renames it over `path`.
/// `mode` sets the permissions (0600 for files holding secrets); `None` keeps an existing file's mode, else 0644.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: the folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".wsdeploy-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = mode.unwrap_or_else(|| {
            std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777)
        });
        // Set before writing, so a secret is never readable by others, even for a moment.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        // Make the rename itself durable.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Whether git would ignore `path` (`None` when it is not in a git work tree or git is not installed).
pub(crate) fn git_ignores(path: &Path) -> Option<bool> {
    let (dir, name) = folder_and_name(path)?;
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("check-ignore")
        .arg("-q")
        .arg(name)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    // 0: ignored, 1: not ignored, 128: not a repository.
    match out.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

/// Adds `path`'s name (anchored: `/.env.dev`) to the `.gitignore` of its folder, creating it if need be, and
/// returns that file. A `.gitignore` whose last line has no newline gets one first.
pub(crate) fn ignore_in_git(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    let (dir, name) = folder_and_name(path).context("a file without a folder")?;
    let ignore = dir.join(".gitignore");
    let mut text = match std::fs::read_to_string(&ignore) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", ignore.display())),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    // Glob characters matched literally, as gitignore(5) escapes them.
    let literal: String = name
        .to_string_lossy()
        .chars()
        .flat_map(|c| {
            matches!(c, '*' | '?' | '[' | '\\')
                .then_some('\\')
                .into_iter()
                .chain([c])
        })
        .collect();
    text.push_str(&format!("/{literal}\n"));
    write_atomic(&ignore, text.as_bytes(), None)?;
    Ok(ignore)
}

/// The folder git runs in for `path`, and its name there. A bare name (`.env`, as a config in the current folder
/// resolves it) is in the current folder: its parent is the empty path, which is no directory.
fn folder_and_name(path: &Path) -> Option<(&Path, &std::ffi::OsStr)> {
    let dir = match path.parent() {
        Some(d) if d.as_os_str().is_empty() => Path::new("."),
        Some(d) => d,
        None => return None,
    };
    Some((dir, path.file_name()?)).filter(|(d, _)| d.is_dir())
}

/// Whether git tracks `path` (it is in the index of the repository around it); `None` outside a repository or
/// without git.
pub(crate) fn git_tracks(path: &Path) -> Option<bool> {
    let (dir, name) = folder_and_name(path)?;
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(name)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    // 0: tracked, 1: not tracked, 128: not a repository.
    match out.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        write_atomic(&p, b"A=1\n", Some(0o600)).unwrap();
        write_atomic(&p, b"A=2\n", None).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "A=2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600,
                "an existing mode is kept"
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_name() != ".env")
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn missing_folder_is_a_clear_error() {
        let err = write_atomic(Path::new("/nonexistent-wsdeploy/x/.env"), b"", None).unwrap_err();
        assert!(
            err.to_string()
                .contains("the folder /nonexistent-wsdeploy/x does not exist"),
            "{err}"
        );
    }
}
