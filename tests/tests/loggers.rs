//! Loggers that keep their file open and append a record every second (netCDF-C
//! through Python `netCDF4`, and `h5netcdf`), while `floe sync` runs every 200 ms
//! and while the daemon watches: never part of a file then a refusal of the rest;
//! once the writer closes, the repository holds the file exactly once. A file that
//! grew after ingest gets its new records; one whose ingested records changed is
//! refused. Followed live (`--live`), a NetCDF-3 logger's records arrive while it
//! still writes, and the end is still exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe_tests::daemon::*;
use floe_tests::*;

const FORMATS: &[&str] =
    &["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA", "NETCDF4", "h5netcdf"];
const RECORDS: &str = "20";

#[test]
fn a_file_held_open_by_its_logger_is_taken_once_it_is_closed() {
    let d = tempfile::tempdir().unwrap();
    // every format at once, each in its own folder and repository
    let mut writers = Vec::new();
    for f in FORMATS {
        let src = d.path().join(f).join("src");
        std::fs::create_dir_all(&src).unwrap();
        let child = start_logger(&src.join("logger.nc"), f, RECORDS, "1");
        writers.push((f, src, d.path().join(f).join("repo"), child));
    }
    let started = Instant::now();
    let mut open_runs = 0;
    while writers.iter_mut().any(|w| w.3.try_wait().unwrap().is_none()) {
        assert!(started.elapsed() < Duration::from_secs(90), "the loggers did not finish");
        for (f, src, repo, child) in writers.iter_mut() {
            let still_open = child.try_wait().unwrap().is_none();
            let (code, report) = sync_json(src, repo, &[]);
            assert!(report["rejected"].as_array().unwrap().is_empty(), "{f}: {report}");
            if still_open && code == 6 {
                open_runs += 1;
                assert!(report["ingested"].as_array().unwrap().is_empty(), "{f}: {report}");
                let reason = report["waiting"][0]["reason"].as_str().unwrap_or_default();
                assert!(
                    ["open for writing", "HDF5 writer", "write lock"]
                        .iter()
                        .any(|r| reason.contains(r)),
                    "{f}: {report}"
                );
            }
            // whatever a run takes is the whole file (it may have closed meanwhile)
            for i in report["ingested"].as_array().unwrap() {
                assert_eq!(i["records"]["time"], 20, "{f}: part of a file was taken: {report}");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(open_runs > 0, "no run saw a logger's file open");
    for (f, src, repo, mut child) in writers {
        assert!(child.wait().unwrap().success(), "{f}: the logger failed");
        let (code, report) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 0, "{f}: {report}");
        let log = log_json(&repo, "main");
        let records: u64 = log
            .iter()
            .flat_map(|c| c["provenance"]["files"].as_array().cloned().unwrap_or_default())
            .map(|p| p["records"]["time"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(records, 20, "{f}: every record exactly once: {log:?}");
        assert_repo_equals(&repo, &files(&src, "nc"), &[]);
    }
}

/// Start `logger.py` writing `records` records, one every `interval` seconds.
fn start_logger(
    path: &std::path::Path,
    format: &str,
    records: &str,
    interval: &str,
) -> std::process::Child {
    let mut child = Command::new(python())
        .arg(root().join("tests/python/logger.py"))
        .args([path.to_str().unwrap(), format, records, interval])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY", "{format}");
    child
}

/// Kills the loggers when a test fails half way.
struct Loggers(Vec<std::process::Child>);

impl Drop for Loggers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The files of the main branch's provenance, oldest commit first (none while the
/// repository does not exist yet).
fn provenance_files(repo: &std::path::Path) -> Vec<serde_json::Value> {
    if !repo.exists() {
        return Vec::new();
    }
    let r = floe(&["log", repo.to_str().unwrap(), "--json"]);
    let mut log: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap_or_default();
    log.reverse();
    log.iter()
        .flat_map(|c| c["provenance"]["files"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn a_file_that_grew_after_ingest_gets_its_new_records_and_a_changed_one_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for f in FORMATS {
        let src = d.path().join(f).join("src");
        let repo = d.path().join(f).join("repo");
        std::fs::create_dir_all(&src).unwrap();
        let path = src.join("hourly.nc");
        grow(&path, f, &["4"]);
        let (code, report) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 0, "{f}: {report}");
        assert_eq!(report["ingested"][0]["records"]["time"], 4, "{f}: {report}");

        // the logger opens it again and appends: the new records follow
        grow(&path, f, &["3"]);
        let (code, report) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 0, "{f}: {report}");
        assert_eq!(report["ingested"][0]["records"]["time"], 3, "{f}: {report}");
        assert_eq!(report["ingested"][0]["from"]["time"], 4, "{f}: {report}");
        let (code, report) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 0, "{f}: {report}");
        assert_eq!(report["already_ingested"][0], "hourly.nc", "{f}: {report}");
        assert_repo_equals(&repo, &files(&src, "nc"), &[]);
        // provenance: which records of which version of the file each commit took
        let prov = provenance_files(&repo);
        assert_eq!(prov.len(), 2, "{f}: {prov:?}");
        assert!(prov[0].get("from").is_none(), "{f}: {prov:?}");
        assert_eq!(prov[1]["from"]["time"], 4, "{f}: {prov:?}");
        assert_eq!(prov[1]["offsets"]["time"], 4, "{f}: {prov:?}");
        assert_ne!(prov[0]["blake3"], prov[1]["blake3"], "{f}: two versions of the file");
        assert_ne!(prov[0]["records_blake3"], prov[1]["records_blake3"], "{f}: {prov:?}");

        // a record Floe took changes (and more follow): refused, nothing written
        grow(&path, f, &["0", "--change", "1"]);
        grow(&path, f, &["2"]);
        let commits = log_json(&repo, "main").len();
        let (code, report) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 1, "{f}: {report}");
        assert_eq!(rejected(&report), vec![("hourly.nc".into(), "changed_since_ingest".into())]);
        let message = report["rejected"][0]["message"].as_str().unwrap();
        assert!(message.contains("its first 7 `time` records differ"), "{f}: {message}");
        assert_eq!(log_json(&repo, "main").len(), commits, "{f}: the repository was left alone");
    }
}

#[test]
fn followed_live_a_loggers_records_arrive_while_it_writes_and_the_end_is_exactly_once() {
    let d = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    let mut loggers = Loggers(Vec::new());
    for f in FORMATS {
        let src = d.path().join(f).join("src");
        std::fs::create_dir_all(&src).unwrap();
        loggers.0.push(start_logger(&src.join("logger.nc"), f, RECORDS, "1"));
        runs.push((*f, src, d.path().join(f).join("repo"), 0usize));
    }
    let started = Instant::now();
    while loggers.0.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        assert!(started.elapsed() < Duration::from_secs(90), "the loggers did not finish");
        for ((f, src, repo, live_takes), child) in runs.iter_mut().zip(loggers.0.iter_mut()) {
            let (code, report) = sync_json(src, repo, &["--live", "--live-every", "1"]);
            let still_open = child.try_wait().unwrap().is_none();
            assert!(report["rejected"].as_array().unwrap().is_empty(), "{f}: {report}");
            // a take before the logger's last record: the file was still open (the
            // logger may close its file a moment before its process ends)
            let partial = report["ingested"].as_array().unwrap().iter().any(|i| {
                i["from"]["time"].as_u64().unwrap_or(0) + i["records"]["time"].as_u64().unwrap()
                    < 20
            });
            if partial {
                assert!(f.starts_with("NETCDF3"), "{f}: an HDF5 file taken while open: {report}");
                *live_takes += 1;
                if still_open {
                    assert_eq!(code, 6, "{f}: work remains while the file is open: {report}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for ((f, src, repo, live_takes), mut child) in runs.into_iter().zip(loggers.0.drain(..)) {
        assert!(child.wait().unwrap().success(), "{f}: the logger failed");
        let (code, report) = sync_json(&src, &repo, &["--live", "--live-every", "1"]);
        assert_eq!(code, 0, "{f}: {report}");
        let prov = provenance_files(&repo);
        let records: u64 = prov.iter().map(|p| p["records"]["time"].as_u64().unwrap_or(0)).sum();
        assert_eq!(records, 20, "{f}: every record exactly once: {prov:?}");
        if f.starts_with("NETCDF3") {
            // 20 records over 20 s, a take at most every second
            assert!(live_takes >= 3, "{f}: only {live_takes} live takes: {prov:?}");
        } else {
            assert_eq!(prov.len(), 1, "{f}: an HDF5 file is taken once closed: {prov:?}");
        }
        assert_repo_equals(&repo, &files(&src, "nc"), &[]);
    }
}

#[test]
fn the_daemon_waits_for_loggers_proc_cannot_see_and_follows_live_ones() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    // the /proc look finds nothing: only the file-system events (and, for HDF5,
    // the superblock flag) tell that the loggers still write, as for another
    // user's loggers
    let env = [
        ("FLOE_CONFIG", cfg.to_str().unwrap()),
        ("FLOE_RUNTIME_DIR", run.to_str().unwrap()),
        ("FLOE_TEST_BLIND_PROC", "1"),
    ];
    let folder = |name: &str, extra: &[&str]| {
        let (src, repo) = (d.path().join(name).join("src"), d.path().join(name).join("repo"));
        std::fs::create_dir_all(&src).unwrap();
        let mut args = vec!["add", src.to_str().unwrap(), repo.to_str().unwrap()];
        args.extend_from_slice(extra);
        let r = floe_env(&args, &env);
        assert_eq!(r.code, 0, "{}", r.stderr);
        (src, repo)
    };
    // every writer in a folder of its own, taken when closed; two NetCDF-3 ones
    // also in live folders
    let mut folders = Vec::new();
    for f in FORMATS {
        folders.push((*f, false, folder(f, &[])));
    }
    for f in ["NETCDF3_CLASSIC", "NETCDF3_64BIT_DATA"] {
        folders.push((f, true, folder(&format!("live-{f}"), &["--live", "--live-every", "1"])));
    }
    // quiet 0.5 s, a record every second: the quiet period alone would take the
    // held files record by record
    let _daemon = spawn_daemon(&env, "0.5", "2");
    wait_until("the daemon", || status(&env).as_array().is_some_and(|s| s.len() == folders.len()));
    let mut loggers = Loggers(
        folders
            .iter()
            .map(|(f, _, (src, _))| start_logger(&src.join("logger.nc"), f, RECORDS, "1"))
            .collect(),
    );
    let mut live_while_open = vec![0; folders.len()];
    while loggers.0.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        for (i, (f, live, (_, repo))) in folders.iter().enumerate() {
            let prov = provenance_files(repo);
            if *live {
                if loggers.0[i].try_wait().unwrap().is_none() {
                    live_while_open[i] = prov.len();
                }
            } else {
                // whatever is taken is the whole file (its logger may have closed it)
                for p in &prov {
                    assert_eq!(p["records"]["time"], 20, "{f}: part of a file was taken: {prov:?}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for c in &mut loggers.0 {
        assert!(c.wait().unwrap().success(), "a logger failed");
    }
    let total = |repo: &std::path::Path| -> u64 {
        provenance_files(repo).iter().map(|p| p["records"]["time"].as_u64().unwrap_or(0)).sum()
    };
    wait_until("every file complete", || folders.iter().all(|(_, _, (_, r))| total(r) == 20));
    std::thread::sleep(Duration::from_secs(2));
    for (i, (f, live, (src, repo))) in folders.iter().enumerate() {
        assert_eq!(total(repo), 20, "{f}: exactly once");
        if *live {
            assert!(live_while_open[i] >= 3, "{f}: {} live takes while open", live_while_open[i]);
        } else {
            assert_eq!(provenance_files(repo).len(), 1, "{f}: one commit");
        }
        assert_repo_equals(repo, &files(src, "nc"), &[]);
    }
}
