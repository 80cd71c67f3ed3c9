//! `floe daemon` runs the registered folders unattended: files dropped into a watched
//! folder are committed, `floe status` shows it, pause and resume act on the running
//! daemon, a second daemon is refused, and SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_tests::*;

/// The daemon process; killed on drop (also when the test panics).
struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(env: &[(&str, &str)]) -> serde_json::Value {
    let r = floe_env(&["status", "--json"], env);
    serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Write fixtures elsewhere and rename them in, as instruments that write-then-move do.
fn drop_files(stage: &Path, into: &Path, args: &[&str]) {
    make(stage, args);
    for f in std::fs::read_dir(stage).unwrap().flatten() {
        std::fs::rename(f.path(), into.join(f.file_name())).unwrap();
    }
}

#[test]
fn the_daemon_syncs_dropped_files_and_obeys_pause_resume_and_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let (watched, stage, repo) =
        (d.path().join("in"), d.path().join("stage"), d.path().join("repo"));
    std::fs::create_dir_all(&watched).unwrap();
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    let r = floe_env(&["add", watched.to_str().unwrap(), repo.to_str().unwrap()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // a file that was there before the daemon started is found at start
    drop_files(&stage, &watched, &["--files", "1"]);
    let mut cmd = Command::new(floe_bin());
    cmd.args(["daemon", "--quiet", "0.3", "--rescan", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut daemon = Daemon(cmd.spawn().unwrap());
    wait_until("the first file", || status(&env)[0]["files_ingested"] == 1);

    // a second daemon for the same user is refused
    let second = floe_env(&["daemon"], &env);
    assert_eq!(second.code, 2);
    assert!(second.stderr.contains("already running"), "{}", second.stderr);

    // files dropped while running are committed, one commit each
    drop_files(&stage, &watched, &["--files", "2", "--start", "1"]);
    wait_until("three files", || {
        let s = status(&env);
        s[0]["files_ingested"] == 3 && s[0]["state"]["state"] == "idle"
    });
    assert_eq!(log_json(&repo, "main").len(), 4);

    // paused: nothing is written; resumed: it catches up
    let r = floe_env(&["pause"], &env);
    assert!(r.code == 0 && r.stdout.contains("paused 1"), "{} {}", r.stdout, r.stderr);
    drop_files(&stage, &watched, &["--files", "1", "--start", "3"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status(&env)[0]["state"]["state"], "paused");
    assert_eq!(log_json(&repo, "main").len(), 4, "nothing written while paused");
    let r = floe_env(&["resume"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_until("the file dropped while paused", || status(&env)[0]["files_ingested"] == 4);
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);

    // SIGTERM: a clean stop, the control socket removed
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0));
    assert!(!run.join("floe-daemon.sock").exists());
    let r = floe_env(&["status"], &env);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no Floe daemon is running"), "{}", r.stderr);
}
