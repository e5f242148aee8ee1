//! `dev.command`: the developer's own process (their backend, say) run beside the gateway, so that one command
//! brings the whole app up. It starts after the env files are written, so it reads the values of this run; its
//! output is shown prefixed with `[app]`; it is stopped with dev, and dev stops when it exits.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::config::DevSettings;

/// How long the command may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct App {
    child: Child,
    command: String,
}

impl App {
    /// Starts `settings.command` through the shell, with PORT set to `port` (the backend URL's) when there is one.
    pub(crate) fn start(settings: &DevSettings, port: Option<u16>) -> anyhow::Result<Option<App>> {
        let Some(command) = settings.command.clone() else {
            return Ok(None);
        };
        let mut cmd = shell(&command);
        cmd.current_dir(&settings.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(port) = port {
            cmd.env("PORT", port.to_string());
        }
        // Its own process group: `npm start` forks node, and a signal to the shell alone would orphan it.
        #[cfg(unix)]
        cmd.process_group(0);
        // Out of our group, it would outlive a dev that is SIGKILLed: have the kernel send it SIGTERM then.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start dev.command `{command}` in {}: does the folder exist?",
                settings.dir.display()
            )
        })?;
        forward(child.stdout.take());
        forward(child.stderr.take());
        Ok(Some(App { child, command }))
    }

    /// Resolves when the command exits by itself: dev then stops, since the app it serves is gone.
    pub(crate) async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    pub(crate) fn command(&self) -> &str {
        &self.command
    }

    /// SIGTERM to the whole group; SIGKILL to whatever of it still lives after a grace period. Returns once the
    /// group is gone, so that when dev exits, so has the app (and its port is free).
    pub(crate) async fn stop(mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            use nix::sys::signal::{killpg, Signal};
            let group = nix::unistd::Pid::from_raw(pid as i32);
            let _ = killpg(group, Signal::SIGTERM);
            // The supervising shell exits at once; what it started (npm, node) may still be shutting down.
            let _ = tokio::time::timeout(STOP_GRACE, self.child.wait()).await;
            wait_while_alive(group, STOP_GRACE).await;
            let _ = killpg(group, Signal::SIGKILL);
            let _ = self.child.wait().await;
            wait_while_alive(group, Duration::from_secs(2)).await;
            return;
        }
        let _ = self.child.kill().await;
    }
}

#[cfg(unix)]
async fn wait_while_alive(group: nix::unistd::Pid, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while group_alive(group) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a process of `group` still runs. Zombies do not count: their ports and files are closed, and a
/// container whose PID 1 never reaps would keep them forever.
#[cfg(target_os = "linux")]
fn group_alive(group: nix::unistd::Pid) -> bool {
    let Ok(all) = procfs::process::all_processes() else {
        return false;
    };
    all.filter_map(|p| p.ok()?.stat().ok())
        .any(|s| s.pgrp == group.as_raw() && s.state != 'Z')
}

/// Elsewhere a signal 0 tells whether the group has members (zombies included, reaped promptly there).
#[cfg(all(unix, not(target_os = "linux")))]
fn group_alive(group: nix::unistd::Pid) -> bool {
    nix::sys::signal::killpg(group, None).is_ok()
}

/// Runs the command under a small shell that, when it gets SIGTERM (from dev's stop, or from the kernel when dev
/// itself is `SIGKILLed`), passes it to its whole process group: `npm start` forks a shell that forks node, and none
/// of them would pass the signal on by themselves.
#[cfg(unix)]
const SUPERVISOR: &str = r#"trap 'trap - TERM; kill 0' TERM; sh -c "$1" & wait $!"#;

fn shell(command: &str) -> Command {
    #[cfg(unix)]
    {
        let mut c = Command::new("sh");
        c.args(["-c", SUPERVISOR, "wsdeploy-dev", command]);
        c
    }
    #[cfg(not(unix))]
    {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(command);
        c
    }
}

/// The app's own output is shown even with -q: it is the developer's, not ours.
fn forward(stream: Option<impl AsyncRead + Unpin + Send + 'static>) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            crate::ui::say(&format!("[app] {line}"));
        }
    });
}

/// Waits until `url`'s host and port accept a TCP connection, for at most `limit`. True when they do.
pub(crate) async fn wait_until_listening(url: &str, limit: Duration) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (u.host_str().map(str::to_string), u.port_or_known_default())
    else {
        return false;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
