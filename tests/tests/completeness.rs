//! Files still being written wait; they are picked up once complete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use floe_tests::*;

#[test]
fn a_netcdf4_file_held_open_by_its_writer_waits_then_is_ingested() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    std::fs::create_dir_all(&src).unwrap();
    let path = src.join("live.nc");
    let mut writer = Command::new(python())
        .arg(root().join("tests/python/hold_open.py"))
        .arg(&path)
        .arg("6")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(writer.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY");

    // the writer holds the file (HDF5 lock / superblock flag): no quiet period needed,
    // and nothing to wait for in this run: exit 6 says that work remains
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 6, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["waiting"][0]["file"], "live.nc", "{report}");
    assert!(report["waiting"][0]["reason"].as_str().unwrap().contains("writ"), "{report}");

    assert!(writer.wait().unwrap().success());
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"]["time"], 20, "the whole file, once complete: {report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &["--append-dim", "time"]);
}

#[test]
fn a_netcdf3_file_shorter_than_its_header_waits() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "1", "--format", "nc3"]);
    let f = &files(&src, "nc")[0];
    let bytes = std::fs::read(f).unwrap();
    std::fs::write(f, &bytes[..bytes.len() - 1000]).unwrap();
    age(&src);
    let (code, report) = sync_json(&src, &d.path().join("repo"), &[]);
    assert_eq!(code, 6, "{report}");
    let reason = report["waiting"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("header announces"), "{report}");
}

#[test]
fn young_files_wait_for_the_quiet_period() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "1"]);
    let r = floe(&[
        "sync",
        src.to_str().unwrap(),
        d.path().join("repo").to_str().unwrap(),
        "--quiet",
        "3600",
        "--no-wait",
        "--json",
    ]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["waiting"].as_array().unwrap().len(), 1, "{report}");
    assert!(report["waiting"][0]["reason"].as_str().unwrap().contains("quiet period"), "{report}");
}

#[test]
fn files_just_copied_in_are_waited_for_and_ingested() {
    // `cp file.nc in/ && floe sync in/ repo`: the one-shot command finishes its job
    let d = tempfile::tempdir().unwrap();
    let made = d.path().join("made");
    let src = d.path().join("in");
    let repo = d.path().join("repo");
    make(&made, &["--files", "2"]);
    std::fs::create_dir_all(&src).unwrap();
    for f in files(&made, "nc") {
        let name = std::path::Path::new(&f).file_name().unwrap().to_owned();
        std::fs::copy(&f, src.join(name)).unwrap();
    }
    let t = std::time::Instant::now();
    let r = floe(&["sync", src.to_str().unwrap(), repo.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("waiting") && r.stderr.contains("to be quiet"), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["ingested"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["waiting"].as_array().unwrap().is_empty(), "{report}");
    assert!(t.elapsed().as_secs_f64() >= 1.5, "it waited out the 2 s quiet period");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);

    // a quiet period longer than the bound: left as waiting, exit 6, nothing lost
    let more = d.path().join("more");
    make(&more, &["--files", "1", "--start", "5"]);
    let r = floe(&[
        "sync",
        more.to_str().unwrap(),
        d.path().join("repo2").to_str().unwrap(),
        "--quiet",
        "30",
        "--wait-max",
        "1",
        "--json",
    ]);
    assert_eq!(r.code, 6, "{}\n{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["waiting"].as_array().unwrap().len(), 1, "{report}");
}
