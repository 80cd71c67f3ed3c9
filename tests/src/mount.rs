//! Real FUSE mounts for the tests: `floe mount` in the foreground as a child
//! process, unmounted when dropped (also when a test panics); a mount whose test
//! was killed is detached before the next one starts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mounted repository; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    pub dir: PathBuf,
    child: Child,
    /// Unmount on drop (off once the test has waited for the process to end, so
    /// that a killed mount's leftovers stay for the test to look at).
    cleanup: bool,
}

/// Whether `dir` is a mount point.
pub fn is_mounted(dir: &Path) -> bool {
    floe_fuse::is_mounted(dir)
}

/// A mount point whose name holds this is left alone by [`clean_dead_mounts`]: the
/// test that kills its mount on purpose checks that floe itself cleans it up.
pub const KEEP_DEAD: &str = "keep-dead";

/// Detach Floe mounts left dead by killed tests ("Transport endpoint is not connected").
pub fn clean_dead_mounts() {
    for m in floe_fuse::mount_table() {
        let mp = m.mountpoint.display().to_string();
        if m.source.starts_with("floe:")
            && !mp.contains(KEEP_DEAD)
            && std::fs::read_dir(&m.mountpoint).err().and_then(|e| e.raw_os_error())
                == Some(ENOTCONN)
        {
            let _ = Command::new("umount").args(["-l", &mp]).status();
        }
    }
}

const ENOTCONN: i32 = 107;

impl Mount {
    /// `floe mount URL DIR ARGS...` with `env`, waiting until the kernel shows it.
    pub fn start(url: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Mount {
        clean_dead_mounts();
        Mount::start_raw(url, dir, args, env)
    }

    /// The same, without first detaching dead mounts (floe must do it itself).
    pub fn start_raw(url: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Mount {
        let _ = std::fs::create_dir_all(dir);
        let mut cmd = Command::new(crate::floe_bin());
        cmd.arg("mount").arg(url).arg(dir).args(args);
        cmd.env("FLOE_KEYRING", "off").env("FLOE_MOUNT_EXIT_WITH_PARENT", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut m = Mount { dir: dir.to_path_buf(), child, cleanup: true };
        let deadline = Instant::now() + Duration::from_secs(60);
        // (a dead mount is in the mount table too, but cannot be stat'ed)
        while !(is_mounted(dir) && std::fs::read_dir(dir).is_ok()) {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("floe mount exited ({status}): {}", m.stderr());
            }
            assert!(Instant::now() < deadline, "no mount at {} after 60 s", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal to the mount process (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let _ =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status();
    }

    /// What the (exited) mount process wrote to stderr.
    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// Wait for the mount process to exit; its exit code and stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        self.cleanup = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return (s.code(), self.stderr());
            }
            assert!(Instant::now() < deadline, "floe mount did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.cleanup && is_mounted(&self.dir) {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// `python mount_check.py ARGS...` (the reference readers' checks of a mount, see
/// its docstring), which must succeed; its output.
pub fn mount_check(args: &[&str], env: &[(&str, &str)]) -> String {
    let r = crate::py_env("mount_check.py", args, env);
    assert_eq!(r.code, 0, "mount_check {}:\n{}\n{}", args[0], r.stdout, stderr_tail(&r.stderr));
    r.stdout
}

/// The last 30 lines of a reader's stderr, without the log's warnings and the
/// traceback's frame lines.
pub fn stderr_tail(s: &str) -> String {
    let lines: Vec<&str> =
        s.lines().filter(|l| !l.contains("WARN") && !l.contains(" at ")).collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
