//! Mount helpers. A mount made from the app (or by `floe mount --background`) is
//! served by a `floe mount` process of its own, started detached from the process
//! that asked, so closing the window, quitting or restarting the app leaves it
//! mounted and a file open in it keeps reading. The helper writes itself into the
//! registry when it serves, and a failure (with its code) where its starter reads it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe_core::ErrorCode;

use super::registry::{self, Record};
use crate::ApiError;

/// The hidden `floe mount` option naming where a helper writes why it failed.
pub const FAILURE_FILE_ARG: &str = "--failure-file";

/// How long a helper may take to open the repository and mount (its own repository
/// timeout is 30 s; a catalog lists the prefix first).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The program that serves mounts: this one when it is `floe`, else the `floe` beside
/// this executable (the .deb installs both in /usr/bin, a build has both in its
/// target folder), else `floe` on the PATH.
fn program() -> PathBuf {
    let exe = std::env::current_exe().ok();
    if let Some(e) = &exe
        && e.file_name().is_some_and(|n| n == "floe")
    {
        return e.clone();
    }
    exe.and_then(|e| Some(e.parent()?.join("floe")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("floe"))
}

/// Where a helper's messages go: `<state dir>/floe/mount-<key>.log`.
fn log_path(mountpoint: &Path) -> PathBuf {
    dirs::state_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("floe")
        .join(format!("mount-{}.log", registry::key(mountpoint)))
}

/// Start a helper serving `repo` at `mountpoint` (absolute), `extra` passed on to
/// `floe mount`, and return once it serves (or why it could not).
pub fn start(repo: &str, mountpoint: &Path, extra: &[OsString]) -> Result<Record, ApiError> {
    let dir = registry::dir();
    std::fs::create_dir_all(&dir).map_err(|e| internal(&dir, &e))?;
    let log = log_path(mountpoint);
    if let Some(d) = log.parent() {
        std::fs::create_dir_all(d).map_err(|e| internal(d, &e))?;
    }
    let out = std::fs::File::create(&log).map_err(|e| internal(&log, &e))?;
    let err = out.try_clone().map_err(|e| internal(&log, &e))?;
    let failure = dir.join(format!(
        "{}.{}.failed",
        registry::key(mountpoint),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let program = program();
    let child = Command::new(&program)
        .arg("mount")
        .arg(repo)
        .arg(mountpoint)
        .args(extra)
        .arg(FAILURE_FILE_ARG)
        .arg(&failure)
        // it must outlive whoever started it, tests included
        .env_remove("FLOE_MOUNT_EXIT_WITH_PARENT")
        // a mount helper pins no one's working folder (a USB disk, say)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // its own process group: a Ctrl-C in the terminal that started the app is not for it
        .process_group(0)
        .spawn()
        .map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!(
                    "cannot start the mount helper {}: {e}; reinstall Floe (it ships `floe` beside the app)",
                    program.display()
                ),
            )
        })?;
    let started = Started { dir: &dir, repo, mountpoint, failure: &failure, log: &log };
    let served = started.wait(child);
    let _ = std::fs::remove_file(&failure);
    served
}

/// A helper just started: where it registers, what it serves, where it writes.
struct Started<'a> {
    dir: &'a Path,
    repo: &'a str,
    mountpoint: &'a Path,
    failure: &'a Path,
    log: &'a Path,
}

impl Started<'_> {
    /// Poll until the helper serves, ends, or runs out of time.
    fn wait(&self, mut child: Child) -> Result<Record, ApiError> {
        let Started { dir, mountpoint, log, .. } = *self;
        let end = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(r) = registry::serving(dir, mountpoint).filter(|r| r.pid == child.id())
                && floe_fuse::is_mounted(mountpoint)
            {
                reap(child);
                return Ok(r);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return self.ended(status);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ApiError::new(
                    ErrorCode::Storage,
                    format!(
                        "no mount at {} after {} s; the repository did not answer: see {}",
                        mountpoint.display(),
                        START_TIMEOUT.as_secs(),
                        log.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A helper that ended before serving: what it wrote, or that another one serves
    /// the same repository there now (two starters at login, the app and the daemon).
    fn ended(&self, status: std::process::ExitStatus) -> Result<Record, ApiError> {
        let Started { dir, repo, mountpoint, failure, log } = *self;
        if let Some(other) = registry::serving(dir, mountpoint).filter(|r| r.repo == repo) {
            return Ok(other);
        }
        Err(match registry::take_failure(failure) {
            Some(f) => ApiError::new(f.code, f.message),
            None => ApiError::new(
                ErrorCode::Internal,
                format!(
                    "the mount helper ended ({status}) without mounting; see {}",
                    log.display()
                ),
            ),
        })
    }
}

/// Wait for a serving helper in the background, so that when it ends (unmounted) it
/// leaves no zombie behind in a long-running app.
fn reap(mut child: Child) {
    let _ = std::thread::Builder::new().name("mount-reaper".into()).stack_size(64 << 10).spawn(
        move || {
            let _ = child.wait();
        },
    );
}

fn internal(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("{}: {e}", path.display()))
}
