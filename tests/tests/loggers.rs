//! Loggers that keep their file open and append a record every second (netCDF-C
//! through Python `netCDF4`, and `h5netcdf`), while `floe sync` runs every 200 ms:
//! never part of a file then a refusal of the rest; once the writer closes, the
//! repository holds the file exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        let path = src.join("logger.nc");
        let mut child = Command::new(python())
            .arg(root().join("tests/python/logger.py"))
            .args([path.to_str().unwrap(), f, RECORDS, "1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "{f}");
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
