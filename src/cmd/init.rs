//! `wsdeploy init`: write a commented wsdeploy.yaml and its JSON Schema.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::rules;
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::templates;

use super::Context;

const TEMPLATE: &str = include_str!("../../templates/wsdeploy.yaml");
pub(crate) const SCHEMA_FILE: &str = "wsdeploy.schema.json";

/// Write a commented wsdeploy.yaml (and wsdeploy.schema.json beside it, for editor completion). Asks on a terminal;
/// with --yes (or without a terminal) takes the flags and defaults.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy init\n  wsdeploy init --yes --project chat --region eu-west-3 --backend-url https://api.example.com"
)]
pub struct Args {
    /// Project name: prefixes every resource (lowercase letters, digits, '-').
    #[arg(long)]
    pub project: Option<String>,
    /// Where the Lambdas reach your backend.
    #[arg(long, value_name = "URL")]
    pub backend_url: Option<String>,
    /// The frontend's env file (receives the wss:// URL), relative to the current folder.
    #[arg(long, value_name = "FILE")]
    pub frontend_env: Option<PathBuf>,
    /// The backend's env file (receives endpoint and credentials), relative to the current folder.
    #[arg(long, value_name = "FILE")]
    pub backend_env: Option<PathBuf>,
    /// The frontend's folder, to pick the env var prefix from its package.json (found automatically if omitted).
    #[arg(long, value_name = "DIR")]
    pub frontend: Option<PathBuf>,
    /// Also write code for your app: the backend module for this framework (into the backend env file's folder)
    /// and the frontend's reconnecting socket snippet (into the frontend's folder).
    #[arg(long, value_enum, value_name = "FRAMEWORK")]
    pub backend: Option<templates::Backend>,
    /// Also write a GitHub Actions workflow that deploys with `wsdeploy up` (at the git repository's root).
    #[arg(long)]
    pub github_actions: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// The answers `init` needs, whether asked or given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answers {
    pub project: String,
    pub region: String,
    pub backend_url: String,
    pub frontend_env: String,
    pub frontend_var: String,
    pub backend_env: String,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config_path = ctx.global.config.clone();
        let dir = config_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| ".".into(), Path::to_path_buf);
        let schema_path = if dir == Path::new(".") {
            PathBuf::from(SCHEMA_FILE)
        } else {
            dir.join(SCHEMA_FILE)
        };
        let schema = super::schema::schema_text() + "\n";
        if !self.force {
            refuse_existing(&config_path, &schema_path, &schema)?;
        }

        let interactive = ctx.ui.interactive && !ctx.global.yes;
        let answers = self.answers(ctx, &dir, interactive)?;
        let text = render(&answers);
        // What we write must load: a failure here is our bug, caught before anything is written.
        let written_config = Config::from_source(&config_path, text.clone(), &Overrides::default())
            .map_err(|e| {
                anyhow::anyhow!("internal error: the generated config does not load: {e}")
            })?;

        let backend_env = dir.join(&answers.backend_env);
        let backend_dir = parent_of(&backend_env);
        let frontend_dir = self
            .frontend
            .clone()
            .unwrap_or_else(|| parent_of(&dir.join(&answers.frontend_env)));
        let kind = match self.backend {
            Some(k) => Some(k),
            None if interactive => {
                ask_backend().context("cannot read the answer from the terminal")?
            }
            None => None,
        };
        let mut code = Vec::new();
        if let Some(kind) = kind {
            code.extend(templates::app_files(kind, &backend_dir, &frontend_dir));
        }
        if self.github_actions {
            code.extend(templates::workflow(
                &git_root(&dir).unwrap_or_else(|| dir.clone()),
            ));
        }
        // Checked before anything is written: a refusal leaves the folder as it was.
        if !self.force {
            refuse_clashes(&code)?;
        }

        fsutil::write_atomic(&schema_path, schema.as_bytes(), None)?;
        fsutil::write_atomic(&config_path, text.as_bytes(), None)?;
        for f in &code {
            if let Some(parent) = f.path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            fsutil::write_atomic(&f.path, &f.contents, None)?;
        }
        let written: Vec<String> = code.iter().map(|f| f.path.display().to_string()).collect();
        ctx.ui.out_json(&serde_json::json!({
            "config": config_path,
            "schema": schema_path,
            "project": answers.project,
            "region": answers.region,
            "frontend_env_prefix": answers.frontend_var.trim_end_matches("WS_URL"),
            "backend": kind,
            "files": written,
        }));
        report(ctx, &written, &config_path, &schema_path);
        if self.github_actions {
            let repo = github_repository(&dir).unwrap_or_else(|| "OWNER/REPO".into());
            ctx.ui.out(format!(
                "For the workflow, once, with administrator rights in the AWS account:\n  wsdeploy bootstrap --github {repo}:production\n(it creates the deploy role the workflow assumes and prints the command that stores AWS_DEPLOY_ROLE_ARN)"
            ));
        }
        if let Some(kind) = kind {
            ctx.ui.out(format!(
                "To finish:\n  - {}",
                templates::next_steps(kind, &backend_dir, &frontend_dir).join("\n  - ")
            ));
        }
        keep_secrets_out_of_git(ctx, &written_config)?;
        ctx.ui.out(
            "Next: `wsdeploy dev` to run it locally, or `wsdeploy up -s dev` to deploy to AWS.",
        );
        Ok(())
    }

    fn answers(&self, ctx: &Context, dir: &Path, interactive: bool) -> Result<Answers> {
        let default_project = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map_or_else(|| "chat".into(), |n| sanitize_project(&n));
        let region_default = ctx.overrides().region.unwrap_or_else(|| "us-east-1".into());
        let frontend_env = self
            .frontend_env
            .as_ref()
            .map_or_else(|| "../frontend/.env".into(), |p| p.display().to_string());
        let frontend_dir = self.frontend.clone().unwrap_or_else(|| {
            dir.join(Path::new(&frontend_env).parent().unwrap_or(Path::new(".")))
        });
        let prefix = detect_env_prefix(&frontend_dir).unwrap_or("VITE_");
        let mut a = Answers {
            project: self.project.clone().unwrap_or(default_project),
            region: region_default,
            backend_url: self
                .backend_url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:3000".into()),
            frontend_env,
            frontend_var: format!("{prefix}WS_URL"),
            backend_env: self
                .backend_env
                .as_ref()
                .map_or_else(|| "../backend/.env".into(), |p| p.display().to_string()),
        };
        if interactive {
            a = ask(a).context("cannot read the answers from the terminal")?;
        }
        check_answers(&a)?;
        Ok(a)
    }
}

/// The env files that will hold secrets (every stage's backend file: `dev`'s and each deployed stage's, such as
/// `.env.dev`) that git does not ignore: init offers to add each to the `.gitignore` of its folder (`--yes` says
/// yes), and otherwise says which to add. `up` refuses to write into one git tracks.
fn keep_secrets_out_of_git(ctx: &Context, config: &Config) -> Result<()> {
    let mut files: Vec<PathBuf> = config
        .stages
        .values()
        .chain(std::iter::once(&config.local_stage()))
        .filter_map(|s| s.env.backend.as_ref().map(|b| b.file.clone()))
        .filter(|f| fsutil::git_ignores(f) == Some(false))
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let question = format!(
        "{} will hold secrets and git does not ignore them: add them to the .gitignore of their folders?",
        shown.join(", ")
    );
    let add = (ctx.global.yes || ctx.ui.interactive) && ctx.confirm(&question, "")?;
    if !add {
        ctx.ui.warn(format!(
            "{} will hold secrets but git does not ignore them: add each to the .gitignore of its folder (or run `wsdeploy init --force --yes`)",
            shown.join(", ")
        ));
        return Ok(());
    }
    for f in &files {
        let ignore = fsutil::ignore_in_git(f)?;
        ctx.ui
            .info(format!("added {} to {}", f.display(), ignore.display()));
    }
    Ok(())
}

fn parent_of(file: &Path) -> PathBuf {
    crate::config::resolve::normalize(file.parent().unwrap_or(Path::new(".")))
}

/// The repository's root, where GitHub looks for workflows.
fn git_root(dir: &Path) -> Option<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `OWNER/REPO` of the `origin` remote, when it is on GitHub (`https://github.com/o/r.git`, `git@github.com:o/r`).
fn github_repository(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["config", "--get", "remote.origin.url"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = url
        .strip_prefix("git@github.com:")
        .or_else(|| url.split_once("github.com/").map(|(_, p)| p))?;
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    let (owner, repo) = path.split_once('/')?;
    (!owner.is_empty() && !repo.is_empty() && !repo.contains('/'))
        .then(|| format!("{owner}/{repo}"))
}

fn ask_backend() -> anyhow::Result<Option<templates::Backend>> {
    let choice = dialoguer::Select::new()
        .with_prompt("Add the code for your backend and frontend?")
        .items(&[
            "no, only wsdeploy.yaml",
            "Express (JavaScript)",
            "NestJS (TypeScript, TypeORM)",
        ])
        .default(0)
        .interact()?;
    Ok([
        None,
        Some(templates::Backend::Express),
        Some(templates::Backend::Nestjs),
    ][choice])
}

fn ask(a: Answers) -> anyhow::Result<Answers> {
    use dialoguer::Input;
    let project: String = Input::new()
        .with_prompt("Project name (prefixes every AWS resource)")
        .default(a.project)
        .validate_with(|s: &String| {
            if rules::is_name(s) && s.len() <= rules::MAX_PROJECT_LEN {
                Ok(())
            } else {
                Err("lowercase letters, digits and '-', starting with a letter, at most 32")
            }
        })
        .interact_text()?;
    let region: String = Input::new()
        .with_prompt("AWS region")
        .default(a.region)
        .validate_with(|s: &String| {
            if rules::is_region(s) {
                Ok(())
            } else {
                Err("a region code such as eu-west-3")
            }
        })
        .interact_text()?;
    let backend_url: String = Input::new()
        .with_prompt("Backend URL, as the Lambdas will reach it")
        .default(a.backend_url)
        .validate_with(|s: &String| rules::check_backend_url(s).map(|_| ()))
        .interact_text()?;
    let frontend_env: String = Input::new()
        .with_prompt("Frontend env file (gets the wss:// URL)")
        .default(a.frontend_env)
        .interact_text()?;
    let backend_env: String = Input::new()
        .with_prompt("Backend env file (gets endpoint and credentials)")
        .default(a.backend_env)
        .interact_text()?;
    Ok(Answers {
        project,
        region,
        backend_url,
        frontend_env,
        backend_env,
        frontend_var: a.frontend_var,
    })
}

fn check_answers(a: &Answers) -> Result<()> {
    if !rules::is_name(&a.project) || a.project.len() > rules::MAX_PROJECT_LEN {
        return Err(Error::usage(format!(
            "--project `{}` is not a valid project name: use at most {} lowercase letters, digits and '-', starting with a letter",
            a.project,
            rules::MAX_PROJECT_LEN
        )));
    }
    if !rules::is_region(&a.region) {
        return Err(Error::usage(format!(
            "--region `{}` is not an AWS region name: use a code such as eu-west-3",
            a.region
        )));
    }
    if let Err(why) = rules::check_backend_url(&a.backend_url) {
        return Err(Error::usage(format!(
            "--backend-url `{}` {why}: use e.g. https://api.example.com",
            a.backend_url
        )));
    }
    if a.frontend_env == a.backend_env {
        return Err(Error::usage("--frontend-env and --backend-env name the same file; the backend's receives secrets, so give each its own"));
    }
    Ok(())
}

/// Fills the template; values are written as YAML scalars so that any URL or path stays one string.
pub(crate) fn render(a: &Answers) -> String {
    let scalar = |s: &str| {
        serde_yaml::to_string(s)
            .expect("a string serializes")
            .trim_end()
            .to_string()
    };
    TEMPLATE
        .replace("{{project}}", &scalar(&a.project))
        .replace("{{region}}", &scalar(&a.region))
        .replace("{{backend_url}}", &scalar(&a.backend_url))
        .replace("{{frontend_env}}", &scalar(&a.frontend_env))
        .replace("{{frontend_var}}", &scalar(&a.frontend_var))
        .replace("{{backend_env}}", &scalar(&a.backend_env))
        .replace(
            "{{backend_env_dev}}",
            &scalar(&format!("{}.dev", a.backend_env)),
        )
        .replace(
            "{{backend_env_prod}}",
            &scalar(&format!("{}.prod", a.backend_env)),
        )
}

fn sanitize_project(name: &str) -> String {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s
        .trim_matches('-')
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_matches('-');
    let s: String = s
        .chars()
        .take(rules::MAX_PROJECT_LEN)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    if s.is_empty() {
        "chat".into()
    } else {
        s
    }
}

/// The env var prefix the frontend's bundler exposes to browser code, from its package.json.
pub(crate) fn detect_env_prefix(frontend_dir: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(frontend_dir.join("package.json")).ok()?;
    let pkg: serde_json::Value = serde_json::from_str(&text).ok()?;
    let has = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|k| pkg[k].get(name).is_some())
    };
    if has("next") {
        Some("NEXT_PUBLIC_")
    } else if has("vite") {
        Some("VITE_")
    } else if has("react-scripts") {
        Some("REACT_APP_")
    } else {
        None
    }
}

/// Refuses to overwrite the user's config or an outdated schema file (exit 2; nothing written).
fn refuse_existing(config: &Path, schema_path: &Path, schema: &str) -> Result<()> {
    let existing: Vec<String> = [config, schema_path]
        .into_iter()
        .filter(|p| {
            p.exists()
                && !(*p == schema_path && std::fs::read_to_string(p).is_ok_and(|s| s == schema))
        })
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{} already exists; pass --force to overwrite it",
        existing.join(" and ")
    )))
}

/// Refuses to overwrite a file of the app's that differs from the template's (exit 2; nothing written).
fn refuse_clashes(code: &[templates::Planned]) -> Result<()> {
    let clashes: Vec<String> = code
        .iter()
        .filter(|f| f.path.exists() && std::fs::read(&f.path).ok().as_deref() != Some(&*f.contents))
        .map(|f| f.path.display().to_string())
        .collect();
    if clashes.is_empty() {
        return Ok(());
    }
    let one = clashes.len() == 1;
    Err(Error::usage(format!(
        "{} already exist{}; pass --force to overwrite, or move {} away",
        clashes.join(", "),
        if one { "s" } else { "" },
        if one { "it" } else { "them" }
    )))
}

/// The files written, for people.
fn report(ctx: &Context, written: &[String], config: &Path, schema: &Path) {
    ctx.ui.out(format!(
        "Wrote {} and {}.",
        config.display(),
        schema.display()
    ));
    if !written.is_empty() {
        ctx.ui.out(format!(
            "Wrote your app's code:\n  {}",
            written.join("\n  ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_from_folders() {
        assert_eq!(sanitize_project("My Chat App"), "my-chat-app");
        assert_eq!(sanitize_project("42"), "chat");
        assert_eq!(sanitize_project("2fa_service"), "fa-service");
    }

    #[test]
    fn prefixes_from_package_json() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (r#"{"dependencies":{"next":"15"}}"#, Some("NEXT_PUBLIC_")),
            (r#"{"devDependencies":{"vite":"7"}}"#, Some("VITE_")),
            (
                r#"{"dependencies":{"react-scripts":"5"}}"#,
                Some("REACT_APP_"),
            ),
            (r#"{"dependencies":{"left-pad":"1"}}"#, None),
            ("not json", None),
        ];
        for (pkg, want) in cases {
            std::fs::write(dir.path().join("package.json"), pkg).unwrap();
            assert_eq!(detect_env_prefix(dir.path()), want, "{pkg}");
        }
    }

    #[test]
    fn rendered_values_stay_strings() {
        let a = Answers {
            project: "demo".into(),
            region: "eu-west-3".into(),
            backend_url: "https://api.example.com/#x".into(),
            frontend_env: "../web app/.env".into(),
            frontend_var: "VITE_WS_URL".into(),
            backend_env: "../api/.env".into(),
        };
        let v: serde_yaml::Value = serde_yaml::from_str(&render(&a)).unwrap();
        assert_eq!(
            v["backend"]["url"].as_str(),
            Some("https://api.example.com/#x")
        );
        assert_eq!(
            v["env"]["frontend"]["file"].as_str(),
            Some("../web app/.env")
        );
    }
}
