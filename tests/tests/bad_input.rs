//! Bad input gets one clear line saying what is wrong and what to do; the file is
//! left where it is; the other files are ingested; `main` is never half-written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floe_tests::*;

/// Good files 0..n plus whatever `spoil` adds; returns (folder, repo, good files).
fn setup(n: usize) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", &n.to_string()]);
    let good = files(&src, "nc");
    (d, src, repo, good)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn broken_files_are_reported_and_the_rest_flow() {
    let (_d, src, repo, good) = setup(3);
    let whole = std::fs::read(&good[1]).unwrap();
    std::fs::write(src.join("truncated.nc"), &whole[..whole.len() / 2]).unwrap();
    let mut corrupt = whole.clone();
    for b in corrupt.iter_mut().skip(600).take(4000) {
        *b ^= 0x5a;
    }
    std::fs::write(src.join("corrupt.nc"), &corrupt).unwrap();
    std::fs::write(src.join("empty.nc"), b"").unwrap();
    std::fs::write(src.join("notes.nc"), b"this is a text file with a .nc name\n").unwrap();
    age(&src);
    let before = snapshot(&src);

    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "rejections give exit code 1: {report}");
    let rej = rejected(&report);
    let names: Vec<&str> = rej.iter().map(|(f, _)| f.as_str()).collect();
    for bad in ["truncated.nc", "corrupt.nc", "empty.nc", "notes.nc"] {
        assert!(names.iter().any(|n| n.ends_with(bad)), "{bad} not reported: {report}");
    }
    assert!(rej.iter().all(|(_, c)| c == "bad_source"), "{rej:?}");
    for r in report["rejected"].as_array().unwrap() {
        let m = r["message"].as_str().unwrap();
        assert!(!m.contains('\n'), "one line per problem: {m}");
        assert!(
            ["remove", "recover", "move it", "check", "retries", "exclude"]
                .iter()
                .any(|w| m.contains(w)),
            "message says what to do: {m}"
        );
    }
    assert_eq!(report["ingested"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(snapshot(&src), before, "Floe never moves, edits or deletes source files");
    assert_repo_equals(&repo, &good, &[]);
}

#[test]
fn schema_drift_never_touches_main() {
    let (_d, src, repo, mut good) = setup(2);
    // a changed dtype, a changed static shape: each rejected, with the reason
    make(&src, &["--files", "1", "--start", "2", "--co2-dtype", "f4", "--name-prefix", "dtype_"]);
    make(&src, &["--files", "1", "--start", "3", "--levels", "4", "--name-prefix", "levels_"]);
    // other time units (10 s steps are not whole minutes) are no drift: each value
    // is stored as the instant xarray decodes it to
    make(
        &src,
        &[
            "--files",
            "1",
            "--start",
            "4",
            "--time-units",
            "minutes since 2024-01-01 00:00:00",
            "--name-prefix",
            "units_",
        ],
    );
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "{report}");
    let rej = rejected(&report);
    let get = |p: &str| {
        rej.iter()
            .find(|(f, _)| f.starts_with(p))
            .unwrap_or_else(|| panic!("{p} not rejected: {report}"))
            .1
            .clone()
    };
    assert_eq!(get("dtype_"), "schema_drift");
    assert_eq!(get("levels_"), "schema_drift");
    assert_eq!(rej.len(), 2, "{report}");
    let msgs = report["rejected"].to_string();
    assert!(msgs.contains("type changed from float64 to float32"), "{msgs}");
    assert!(
        msgs.contains("dimension `level` changed size from 3 to 4")
            || msgs.contains("static variable"),
        "{msgs}"
    );
    assert!(msgs.contains("--branch"), "drift messages name the remedy: {msgs}");
    good.extend(files(&src, "nc").into_iter().filter(|f| f.contains("units_")));
    assert_repo_equals(&repo, &good, &[]);
}

#[test]
fn repeats_inside_a_file_are_kept_and_a_resend_is_refused() {
    let (_d, src, repo, mut good) = setup(2);
    // a file whose `time` repeats a value inside it (a radar's rays share a second):
    // the instrument's order is stored as it is
    make(&src, &["--files", "1", "--start", "2", "--duplicate-time", "--name-prefix", "dup_"]);
    // a re-send of the first file's data under another name
    make(&src, &["--files", "1", "--start", "0", "--name-prefix", "zz_resend_"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "{report}");
    let rej = rejected(&report);
    assert_eq!(rej.len(), 1, "{report}");
    assert!(
        rej.iter().any(|(f, c)| f.starts_with("zz_resend_") && c == "record_order"),
        "{report}"
    );
    let msg = report["rejected"].to_string();
    assert!(msg.contains("before the branch's last record 2024-01-01T00:"), "{msg}");
    assert!(msg.contains("re-send"), "the message names the remedy: {msg}");
    good.extend(files(&src, "nc").into_iter().filter(|f| f.contains("dup_")));
    assert_repo_equals(&repo, &good, &[]);
}

#[test]
fn a_changed_file_is_not_ingested_twice() {
    let (_d, src, repo, good) = setup(2);
    let (code, _) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0);
    let name = Path::new(&good[0]).file_name().unwrap().to_string_lossy().into_owned();
    let commits = log_json(&repo, "main").len();
    // other bytes, the same records (trailing bytes after the HDF5 data): nothing new
    let mut bytes = std::fs::read(&good[0]).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&good[0], &bytes).unwrap();
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert!(report["already_ingested"].as_array().unwrap().contains(&name.clone().into()));
    assert_eq!(log_json(&repo, "main").len(), commits);
    // the instrument rewrites an already-ingested file with other values
    make(&src, &["--files", "1", "--start", "0", "--seed", "99"]);
    assert_ne!(std::fs::read(&good[0]).unwrap(), bytes, "the generator wrote other values");
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(rejected(&report), vec![(name, "changed_since_ingest".to_string())]);
    let message = report["rejected"][0]["message"].as_str().unwrap();
    assert!(message.contains("records differ from those ingested"), "{message}");
    assert_eq!(log_json(&repo, "main").len(), commits, "nothing written");
}

#[test]
fn permission_denied_is_reported_and_others_ingested() {
    // root reads everything: run floe as `nobody` to meet a real EACCES
    let (d, src, repo, good) = setup(2);
    make(&src, &["--files", "1", "--start", "2", "--name-prefix", "locked_"]);
    let locked = files(&src, "nc").into_iter().find(|f| f.contains("locked_")).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    for p in [d.path(), src.as_path()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(floe_bin())
        .args(["sync", src.to_str().unwrap(), repo.to_str().unwrap(), "--json", "--quiet", "0"])
        .output()
        .expect("setpriv (util-linux) runs floe as nobody");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{report}");
    let msg = report["rejected"][0]["message"].as_str().unwrap();
    assert!(msg.contains("permission denied") && msg.contains("read access"), "{msg}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 2);
    assert_repo_equals(&repo, &good, &[]);
}

#[test]
fn usage_errors_say_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let r = floe(&[
        "sync",
        d.path().join("missing").to_str().unwrap(),
        d.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = floe(&["sync", d.path().to_str().unwrap(), "ftp://x/y"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("s3://"), "{}", r.stderr);
    let r = floe(&["log", d.path().join("nothing").to_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("no Icechunk repository"), "{}", r.stderr);
    // an --append-dim the file does not have says what to check
    let src = d.path().join("z");
    make(&src, &["--files", "1", "--format", "zarr3"]);
    let (code, report) = sync_json(&src, &d.path().join("r2"), &["--append-dim", "nope"]);
    assert_eq!(code, 1, "{report}");
    assert!(report["rejected"].to_string().contains("floe inspect"), "{report}");
    // without one, a Zarr store (no unlimited dimensions in Zarr) appends along its
    // CF time coordinate
    let (code, report) = sync_json(&src, &d.path().join("r2"), &[]);
    assert_eq!(code, 0, "{report}");
    assert!(report["records"]["time"].as_u64().unwrap() > 0, "{report}");
}

/// A small tmpfs, unmounted when dropped (also when the test fails).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at.to_str().unwrap()])
            .status()
            .expect("mount (util-linux) makes a small disk; the tests run as root");
        assert!(ok.success(), "mounting a tmpfs needs root");
        SmallDisk(at.to_path_buf())
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), self.0.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_and_a_folder_floe_may_not_write_say_where_why_and_what_to_do() {
    let (d, src, _, good) = setup(24);
    // 24 files (2 MB) into a repository on a 200 kB disk
    let disk = SmallDisk::mount(&d.path().join("disk"), "200k");
    let repo = disk.0.join("repo");
    let r = floe(&["sync", src.to_str().unwrap(), repo.to_str().unwrap(), "--quiet", "0"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{}: no space left on the disk", repo.display())),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("free space there"), "{}", r.stderr);
    assert!(!r.stderr.contains("context:"), "no span trace for users: {}", r.stderr);
    assert_eq!(files(&src, "nc"), good, "the sources stay where they are");
    // with space, the next run takes everything, once
    disk.grow("64m");
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_repo_equals(&repo, &good, &[]);

    // a repository folder this user may not write: as `nobody`
    let locked = d.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for p in [d.path(), src.as_path()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let target = locked.join("repo");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(floe_bin())
        .args(["sync", src.to_str().unwrap(), target.to_str().unwrap(), "--quiet", "0"])
        .env_remove("USER")
        .output()
        .expect("setpriv (util-linux) runs floe as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("{}: permission denied", target.display())), "{stderr}");
    assert!(stderr.contains("user `nobody`") && stderr.contains("permissions"), "{stderr}");
}

#[test]
fn a_reader_that_goes_away_ends_floe_quietly() {
    // `floe log repo | head -1`: the reader closes the pipe; floe must not panic
    let (_d, src, repo, _) = setup(2);
    assert_eq!(sync_json(&src, &repo, &[]).0, 0);
    let mut child = std::process::Command::new(floe_bin())
        .args(["log", repo.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before floe writes a line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "as a pipe writer whose reader left: {stderr}");
}
