//! The .deb (built by installer/build-deb.sh): installs with dpkg, puts `floe` on
//! PATH with the app, its desktop entry, icon and systemd user unit; the installed
//! app starts under Xvfb and draws its folder list; removing the package leaves
//! nothing behind; lintian finds no error or warning in it. Prints the package size
//! (target under 40 MB).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe_tests::desktop::Xvfb;
use floe_tests::root;

fn deb() -> PathBuf {
    let dir = root().join("installer/out");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let debs: Vec<PathBuf> =
        found.into_iter().filter(|p| p.extension().is_some_and(|e| e == "deb")).collect();
    assert_eq!(debs.len(), 1, "expected one .deb in {}: run installer/build-deb.sh", dir.display());
    debs[0].clone()
}

fn sh(cmd: &str, args: &[&str]) -> (i32, String) {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

/// Removes the package (and its leftovers) even when the test fails half-way.
struct Installed(String);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = sh("dpkg", &["--purge", &self.0]);
    }
}

#[test]
fn the_deb_is_lintian_clean() {
    let deb = deb();
    let (code, out) = sh(
        "lintian",
        &["--tag-display-limit", "0", "--fail-on", "error,warning", deb.to_str().unwrap()],
    );
    let tags: Vec<&str> =
        out.lines().filter(|l| l.starts_with("E:") || l.starts_with("W:")).collect();
    assert!(code == 0 && tags.is_empty(), "lintian (exit {code}):\n{out}");
}

#[test]
fn the_deb_installs_runs_and_removes_cleanly() {
    let deb = deb();
    let size = std::fs::metadata(&deb).unwrap().len();
    let mb = size as f64 / 1e6;
    println!("package {}: {mb:.1} MB (target < 40 MB)", deb.display());
    let (_, name) = sh("dpkg-deb", &["-f", deb.to_str().unwrap(), "Package"]);
    let name = name.trim().to_string();
    let (_, depends) = sh("dpkg-deb", &["-f", deb.to_str().unwrap(), "Depends"]);
    for d in ["fuse3", "libwebkit2gtk-4.1-0", "libc6"] {
        assert!(depends.contains(d), "Depends lacks {d}: {depends}");
    }
    let names: Vec<&str> =
        depends.trim().split(", ").map(|d| d.split(' ').next().unwrap_or(d)).collect();
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "a package is named twice in Depends: {depends}");
    // start from a machine without it
    let _ = sh("dpkg", &["--purge", &name]);
    let (code, out) = sh("dpkg", &["-i", deb.to_str().unwrap()]);
    let guard = Installed(name.clone());
    assert_eq!(code, 0, "dpkg -i: {out}");
    let (_, listed) = sh("dpkg", &["-L", &name]);
    let files: Vec<String> =
        listed.lines().map(str::to_string).filter(|l| Path::new(l).is_file()).collect();
    for want in [
        "/usr/bin/floe",
        "/usr/bin/floe-desktop",
        "/usr/lib/systemd/user/floe.service",
        "/usr/share/applications/Floe.desktop",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not in the package: {files:?}");
    }
    assert!(files.iter().any(|f| f.starts_with("/usr/share/icons/")), "no icon: {files:?}");
    let entry = std::fs::read_to_string("/usr/share/applications/Floe.desktop").unwrap();
    assert!(entry.contains("Exec=floe-desktop"), "{entry}");
    let unit = std::fs::read_to_string("/usr/lib/systemd/user/floe.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/floe daemon"), "{unit}");

    // `floe` is on PATH
    let (code, out) = sh("sh", &["-c", "floe --version"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("floe "), "{out}");

    // the installed app starts under Xvfb and draws its folder list
    let x = Xvfb::start();
    let d = tempfile::tempdir().unwrap();
    let ready = d.path().join("ready");
    let home = d.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let log = d.path().join("app.log");
    let mut app = Command::new("dbus-run-session")
        .args(["--", "/usr/bin/floe-desktop"])
        .env("DISPLAY", &x.display)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("FLOE_RUNTIME_DIR", d.path().join("run"))
        .env("FLOE_KEYRING", "off")
        .env("FLOE_READY_FILE", &ready)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let drew = loop {
        if std::fs::read_to_string(&ready).is_ok_and(|s| !s.trim().is_empty()) {
            break true;
        }
        if app.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // the app, its WebKit processes and the session bus: the whole group
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", app.id())])
        .stderr(Stdio::null())
        .status();
    let _ = app.wait();
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(drew, "the installed app did not draw: {out}");

    // removed: nothing of it is left
    drop(guard);
    let (code, _) = sh("dpkg", &["-s", &name]);
    assert_ne!(code, 0, "{name} is still installed");
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert!(left.is_empty(), "left behind after removal: {left:?}");
    let (code, _) = sh("sh", &["-c", "command -v floe"]);
    assert_ne!(code, 0, "floe still on PATH");
    assert!(mb < 40.0, "the package is {mb:.1} MB (target < 40 MB)");
}
