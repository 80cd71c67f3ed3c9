//! Driving `floe daemon` from tests: start it, ask its status, drop files in.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{floe_bin, floe_env, make};

/// The daemon process; killed on drop (also when the test panics).
#[derive(Debug)]
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `floe daemon` with the given quiet period and rescan interval (seconds), the
/// OS keychain off unless `env` turns it on.
pub fn spawn_daemon(env: &[(&str, &str)], quiet: &str, rescan: &str) -> Daemon {
    let mut cmd = Command::new(floe_bin());
    cmd.args(["daemon", "--quiet", quiet, "--rescan", rescan])
        .env("FLOE_KEYRING", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon(cmd.spawn().unwrap_or_else(|e| panic!("cannot start floe daemon: {e}")))
}

/// [`spawn_daemon`] with its log (state transitions, at floe_engine=info) written to
/// `log`: the daemon's own account of what it was doing.
pub fn spawn_daemon_logged(env: &[(&str, &str)], quiet: &str, rescan: &str, log: &Path) -> Daemon {
    let mut cmd = Command::new(floe_bin());
    cmd.args(["daemon", "--quiet", quiet, "--rescan", rescan])
        .env("FLOE_KEYRING", "off")
        .env("FLOE_LOG", "error,floe_engine=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("create the daemon's log"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon(cmd.spawn().unwrap_or_else(|e| panic!("cannot start floe daemon: {e}")))
}

/// `floe status --json` of the running daemon (`null` if none answers).
pub fn status(env: &[(&str, &str)]) -> serde_json::Value {
    let r = floe_env(&["status", "--json"], env);
    serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null)
}

/// Poll `ok` until it holds; panic after 90 s.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Write fixtures elsewhere and rename them in, as instruments that write-then-move do.
pub fn drop_files(stage: &Path, into: &Path, args: &[&str]) {
    make(stage, args);
    for f in std::fs::read_dir(stage).into_iter().flatten().flatten() {
        let _ = std::fs::rename(f.path(), into.join(f.file_name()));
    }
}

/// A watched folder, a folder where files are written before they are moved in, its
/// repository, and the daemon's own config and runtime folder.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
    pub watched: std::path::PathBuf,
    pub stage: std::path::PathBuf,
    pub repo: std::path::PathBuf,
    pub cfg: String,
    pub run: String,
}

impl Default for Site {
    fn default() -> Self {
        Site::new()
    }
}

impl Site {
    /// All of it in a fresh temporary directory (removed when the site is dropped).
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let at = |name: &str| dir.path().join(name);
        let (watched, stage, repo) = (at("in"), at("stage"), at("repo"));
        std::fs::create_dir_all(&watched).expect("the watched folder");
        let (cfg, run) = (at("config.toml"), at("run"));
        let text = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
        let (cfg, run) = (text(cfg), text(run));
        Site { dir, watched, stage, repo, cfg, run }
    }

    pub fn env(&self) -> [(&str, &str); 2] {
        [("FLOE_CONFIG", self.cfg.as_str()), ("FLOE_RUNTIME_DIR", self.run.as_str())]
    }
}
