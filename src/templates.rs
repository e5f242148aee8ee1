//! The code `wsdeploy init` copies into the user's app (backend module, frontend snippet, CI workflow). Each file
//! is embedded one by one: the template folders also hold the npm packages they are type-checked with, which must
//! not end up in the binary. A unit test keeps this list equal to the folders' contents.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The backend frameworks a template exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Plain JavaScript: a router, a signature check, a `SocketService`, an in-memory store.
    Express,
    /// TypeScript: a `SocketModule` with a TypeORM entity, a controller, a guard and a `SocketService`.
    Nestjs,
}

macro_rules! embed {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $dir, "/", $name)) as &[u8])),*]
    };
}

type Files = &'static [(&'static str, &'static [u8])];

const EXPRESS: Files = embed!("express":
    "index.js", "memory-store.js", "redis-store.js", "replay-buffer.js", "signature.js",
    "socket-connections.js", "socket-service.js");
const NESTJS: Files = embed!("nestjs/src/socket":
    "fanout-function.ts", "lambda-signature.guard.ts", "raw-body.check.ts", "socket-connection.entity.ts",
    "socket-connections.controller.ts", "socket-message.entity.ts", "socket-pending.entity.ts",
    "socket-subscription.entity.ts",
    "socket.module.ts", "socket.options.ts", "socket.service.ts");
const FRONTEND: Files = embed!("frontend": "wsdeploy-react.js", "wsdeploy-socket.js");
/// The React hooks, written beside the snippet only for a frontend whose package.json depends on React.
const REACT_HOOKS: &str = "wsdeploy-react.js";
const WORKFLOW: Files = embed!("github": "wsdeploy.yml");

/// One file to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    pub path: PathBuf,
    pub contents: Cow<'static, [u8]>,
}

fn place(files: Files, dir: &Path) -> impl Iterator<Item = Planned> + '_ {
    files.iter().map(move |(name, contents)| Planned {
        path: dir.join(name),
        contents: Cow::Borrowed(*contents),
    })
}

/// The backend module (into `{backend}/wsdeploy/` or `{backend}/src/socket/`) and the frontend snippet (into
/// `{frontend}/src/` when the frontend has one, else `{frontend}/`).
pub(crate) fn app_files(kind: Backend, backend_dir: &Path, frontend_dir: &Path) -> Vec<Planned> {
    let backend: Vec<Planned> = match kind {
        Backend::Express => place(EXPRESS, &backend_dir.join("wsdeploy")).collect(),
        Backend::Nestjs => place(NESTJS, &backend_dir.join("src/socket")).collect(),
    };
    let src = frontend_dir.join("src");
    let front = if src.is_dir() {
        src
    } else {
        frontend_dir.to_path_buf()
    };
    let react = uses_react(frontend_dir);
    backend
        .into_iter()
        .chain(place(FRONTEND, &front).filter(|f| react || !f.path.ends_with(REACT_HOOKS)))
        .collect()
}

/// Whether the frontend's package.json lists `react` among its dependencies (any kind).
pub(crate) fn uses_react(frontend_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(frontend_dir.join("package.json")) else {
        return false;
    };
    let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    ["dependencies", "devDependencies", "peerDependencies"]
        .iter()
        .any(|kind| manifest[kind].get("react").is_some())
}

/// The GitHub Actions workflow, at the root of the repository (`root`), using the wsdeploy action and release of
/// this very binary.
pub(crate) fn workflow(root: &Path) -> Vec<Planned> {
    place(WORKFLOW, &root.join(".github/workflows"))
        .map(|mut f| {
            let text = String::from_utf8_lossy(&f.contents)
                .replace("{{WSDEPLOY_ACTION}}", &action_ref())
                .replace("{{WSDEPLOY_VERSION}}", &release_tag());
            f.contents = Cow::Owned(text.into_bytes());
            f
        })
        .collect()
}

/// `owner/name` on GitHub, from the package's `repository`: where the action and the releases are.
fn action_repository() -> &'static str {
    env!("CARGO_PKG_REPOSITORY").trim_start_matches("https://github.com/")
}

/// The release of this binary, as the action's `version` input names it.
fn release_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// The action at the commit this binary was built from (a tag can be moved; a commit cannot), its tag beside it. A
/// build with no commit known (no git at build time) names the tag, and says to pin it.
fn action_ref() -> String {
    match option_env!("WSDEPLOY_COMMIT").filter(|c| c.len() == 40) {
        Some(commit) => format!("{}@{commit} # {}", action_repository(), release_tag()),
        None => format!(
            "{}@{} # pin this to the tag's commit",
            action_repository(),
            release_tag()
        ),
    }
}

/// What the user still has to do after the files are written.
pub(crate) fn next_steps(kind: Backend, backend_dir: &Path, frontend_dir: &Path) -> Vec<String> {
    let b = backend_dir.display();
    let f = frontend_dir.display();
    // NestJS's SocketService imports the fan-out function's client; Express's only loads it with `fanout: true`.
    let lambda = match kind {
        Backend::Express => "",
        Backend::Nestjs => " @aws-sdk/client-lambda",
    };
    let mut steps = vec![format!(
        "in {b}: npm install @aws-sdk/client-apigatewaymanagementapi{lambda}"
    )];
    match kind {
        Backend::Express => steps.push(
            "mount it: app.use(socketConnections({ express, store, userFromToken, signingSecret: process.env.WS_SIGNING_SECRET, \
             previousSigningSecret: process.env.WS_SIGNING_SECRET_PREVIOUS })) \
             from require('./wsdeploy'), and push with new SocketService(store).sendMessage(userId, data)"
                .into(),
        ),
        Backend::Nestjs => steps.push(
            "import SocketModule.register({ userResolver: YourResolver }) in your AppModule, add SocketConnection, \
             SocketMessage, SocketSubscription and SocketPending to your TypeORM entities, and create the app with NestFactory.create(AppModule, { rawBody: true })"
                .into(),
        ),
    }
    steps.push(if uses_react(frontend_dir) {
        format!(
            "in {f}: const socket = useSocket({{ url, getToken }}), then useTopic(socket, topic, onMessage), from \
             {REACT_HOOKS} (no package to install)"
        )
    } else {
        format!(
            "in {f}: connectSocket({{ url, getToken, onMessage }}) from wsdeploy-socket.js (no package to install)"
        )
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dir: &str, ext: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(ext))
            .collect();
        names.sort();
        names
    }

    fn names(files: Files) -> Vec<String> {
        files.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn every_template_file_is_embedded() {
        assert_eq!(names(EXPRESS), on_disk("express", ".js"));
        assert_eq!(names(NESTJS), on_disk("nestjs/src/socket", ".ts"));
        assert_eq!(names(FRONTEND), on_disk("frontend", ".js"));
        assert_eq!(names(WORKFLOW), on_disk("github", ".yml"));
    }

    #[test]
    fn files_land_where_each_framework_keeps_them() {
        let t = tempfile::tempdir().unwrap();
        let front = t.path().join("web");
        std::fs::create_dir_all(front.join("src")).unwrap();
        let planned = app_files(Backend::Nestjs, &t.path().join("api"), &front);
        let service = NESTJS
            .iter()
            .find(|(name, _)| *name == "socket.service.ts")
            .unwrap();
        assert!(planned.contains(&Planned {
            path: t.path().join("api/src/socket/socket.service.ts"),
            contents: Cow::Borrowed(service.1)
        }));
        assert_eq!(
            planned.last().unwrap().path,
            front.join("src/wsdeploy-socket.js")
        );
        assert!(
            !planned.iter().any(|f| f.path.ends_with(REACT_HOOKS)),
            "no React, no hooks"
        );
        std::fs::write(
            front.join("package.json"),
            r#"{"dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"}}"#,
        )
        .unwrap();
        let react = app_files(Backend::Nestjs, &t.path().join("api"), &front);
        assert!(react
            .iter()
            .any(|f| f.path == front.join("src/wsdeploy-react.js")));
        assert!(next_steps(Backend::Nestjs, Path::new("api"), &front)
            .last()
            .unwrap()
            .contains("useSocket"));
        let flat = app_files(Backend::Express, Path::new("api"), Path::new("public"));
        assert_eq!(flat[0].path, Path::new("api/wsdeploy/index.js"));
        assert_eq!(
            flat.last().unwrap().path,
            Path::new("public/wsdeploy-socket.js")
        );
    }
}
