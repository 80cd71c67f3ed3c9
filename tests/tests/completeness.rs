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

    // the writer holds the file (HDF5 lock / superblock flag): no quiet period needed
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
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
    assert_eq!(code, 0, "{report}");
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
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["waiting"].as_array().unwrap().len(), 1, "{report}");
    assert!(report["waiting"][0]["reason"].as_str().unwrap().contains("quiet period"), "{report}");
}
