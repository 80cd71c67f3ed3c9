//! The repository is the source of truth: reruns write nothing, new files append
//! only themselves, order follows data time, and a crash between writing and
//! committing neither loses nor duplicates a record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::*;

#[test]
fn rerun_writes_nothing_and_new_files_append_only_themselves() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "3"]);
    let (code, first) = sync_json(&src, &repo, &["--batch", "1"]);
    assert_eq!(code, 0, "{first}");
    let commits = log_json(&repo, "main").len();
    assert_eq!(commits, 4, "one commit per file with --batch 1, plus the initial one");

    // again: nothing new, no commit, says so
    let r = floe(&["sync", src.to_str().unwrap(), repo.to_str().unwrap(), "--quiet", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("skipped 3 file(s) already in the repository"), "{}", r.stdout);
    assert!(r.stdout.contains("nothing new to ingest"), "{}", r.stdout);
    assert_eq!(log_json(&repo, "main").len(), commits);

    // two more files: exactly two more commits, the data equals all five sources
    make(&src, &["--files", "2", "--start", "3"]);
    let (code, second) = sync_json(&src, &repo, &["--batch", "1"]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["ingested"].as_array().unwrap().len(), 2);
    assert_eq!(second["already_ingested"].as_array().unwrap().len(), 3);
    assert_eq!(log_json(&repo, "main").len(), commits + 2);
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn files_are_ordered_by_their_records_not_their_names() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    // names sort the opposite way of the data time
    make(&src, &["--files", "1", "--start", "2", "--name-prefix", "a_"]);
    make(&src, &["--files", "1", "--start", "1", "--name-prefix", "b_"]);
    make(&src, &["--files", "1", "--start", "0", "--name-prefix", "c_"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    let order: Vec<&str> = report["ingested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert!(
        order[0].starts_with("c_") && order[1].starts_with("b_") && order[2].starts_with("a_"),
        "{order:?}"
    );
    let mut by_time = files(&src, "nc");
    by_time.reverse();
    assert_repo_equals(&repo, &by_time, &[]);
}

#[test]
fn crash_between_write_and_commit_neither_loses_nor_duplicates() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "5"]);
    // die right before the third commit, with its data already written
    let out = std::process::Command::new(floe_bin().with_file_name("floe-faulty"))
        .args(["chunks-stored", "3", src.to_str().unwrap(), repo.to_str().unwrap(), "--batch", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fault: chunks-stored #3"), "the crash hook did not fire: {stderr}");
    let history = log_json(&repo, "main");
    assert_eq!(history.len(), 3, "two commits plus the initial one survive the crash");
    assert_repo_equals(&repo, &files(&src, "nc")[..2], &[]);

    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 3);
    assert_eq!(report["already_ingested"].as_array().unwrap().len(), 2);
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn batches_commit_several_files_with_per_file_provenance() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "5"]);
    let (code, report) = sync_json(&src, &repo, &["--batch", "2"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["commits"].as_array().unwrap().len(), 3);
    let history = log_json(&repo, "main");
    let newest = &history[0]["provenance"]["files"];
    assert_eq!(newest.as_array().unwrap().len(), 1);
    let second = &history[1]["provenance"]["files"].as_array().unwrap().clone();
    assert_eq!(second.len(), 2);
    for f in second {
        assert_eq!(f["records"]["time"], 90);
        assert_eq!(f["format"], "netcdf4");
        assert_eq!(f["blake3"].as_str().unwrap().len(), 64);
    }
    assert_eq!(second[0]["offsets"]["time"], 180);
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn log_prints_provenance_and_dry_run_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "2"]);
    let (code, dry) = sync_json(&src, &repo, &["--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert_eq!(dry["ingested"].as_array().unwrap().len(), 2);
    assert_eq!(dry["records"]["time"], 180);
    assert!(!repo.exists(), "--dry-run created the repository");

    let (code, _) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0);
    let r = floe(&["log", repo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("+ site_20240101_0015.nc"), "{}", r.stdout);
    assert!(r.stdout.contains("90 time"), "{}", r.stdout);
    assert!(r.stdout.contains("Repository initialized"), "{}", r.stdout);
    let nobranch = floe(&["log", repo.to_str().unwrap(), "--branch", "nope"]);
    assert_eq!(nobranch.code, 3);
    assert!(nobranch.stderr.contains("does not exist"), "{}", nobranch.stderr);
}

#[test]
fn branch_and_group_targets() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "2"]);
    let (code, report) = sync_json(&src, &repo, &["--branch", "lab2", "--group", "site_a"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(log_json(&repo, "main").len(), 1, "main is untouched");
    assert_eq!(log_json(&repo, "lab2").len(), 2, "one batch commit on lab2");
    assert_repo_equals(&repo, &files(&src, "nc"), &["--branch", "lab2", "--group", "site_a"]);
}

#[test]
fn ctrl_c_stops_after_the_commit_under_way_and_says_what_remains() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    make(&src, &["--files", "60"]);
    let child = std::process::Command::new(floe_bin())
        .args([
            "sync",
            src.to_str().unwrap(),
            repo.to_str().unwrap(),
            "--quiet",
            "0",
            "--batch",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // a few commits in (one snapshot file per commit), press Ctrl-C
    let snapshots = repo.join("snapshots");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&snapshots).map(|d| d.count()).unwrap_or(0) < 4 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "no commits");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping after the commit under way"), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("remain for the next run")).unwrap_or_default();
    assert!(line.contains("file(s) committed in"), "{stderr}");
    let committed = log_json(&repo, "main").len() - 1;
    assert!(committed < 60, "it stopped before the end: {committed}");
    // the next run takes the rest, exactly once
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 60 - committed, "{report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}
