//! `floe stats`: the per-file statistics kept at ingest answer windows and series
//! equal to numpy over the same values (xarray over the repository: fill and
//! missing values masked, packing undone), for a gas analyser's fill-valued,
//! packed, 2-D and second-dimension variables and a radar volume's mostly-fill
//! reflectivity; only files a window edge cuts are read; the statistics are not
//! a variable to xarray; `floe delete` updates them and `--rebuild` fills them in
//! for a repository without them; a file a logger reopens and appends to has a
//! row per step. Local and S3 (moto).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floe_tests::servers::{moto_bucket, pairs, s3_env};
use floe_tests::*;
use serde_json::Value;

fn stats(url: &str, var: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let mut a = vec!["stats", url, var, "--json"];
    a.extend(extra);
    let r = floe_env(&a, env);
    assert_eq!(r.code, 0, "floe {a:?}: {}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// `floe stats` for `var` with `extra`, checked against numpy; the answer.
fn equal_numpy(url: &str, var: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let ans = stats(url, var, extra, env);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("answer.json");
    std::fs::write(&f, ans.to_string()).unwrap();
    let r = py_env("stats.py", &["check", url, f.to_str().unwrap()], env);
    assert!(r.code == 0 && r.stdout.contains("OK"), "{var} {extra:?}:\n{}\n{}", r.stdout, r.stderr);
    ans
}

fn sync(src: &Path, url: &str, extra: &[&str], env: &[(&str, &str)]) {
    let (code, report) = sync_url_json(src, url, extra, env);
    assert_eq!(code, 0, "{report:#}");
}

// the gas analyser's files are 15 minutes from 2024-01-01T00:00Z
const CUT_FROM: &str = "2024-01-01T00:35:00Z";
const CUT_TO: &str = "2024-01-01T02:05:00Z";

/// Every kind of variable, whole, in a window that cuts two files, and hourly.
fn every_kind(url: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "12"]);
    // commits of several files and of one: rows are per file either way
    sync(&src, url, &["--batch", "5"], env);
    assert_url_equals(url, &files(&src, "nc"), &[], env);
    let r = py_env("stats.py", &["hidden", url], env);
    assert!(r.code == 0, "{}\n{}", r.stdout, r.stderr);
    for var in ["co2", "ch4", "temperature", "waveform", "wind"] {
        let whole = equal_numpy(url, var, &[], env);
        assert_eq!(
            (whole["files"].as_u64(), whole["files_read"].as_u64()),
            (Some(12), Some(0)),
            "{whole:#}"
        );
        let cut = equal_numpy(url, var, &["--from", CUT_FROM, "--to", CUT_TO], env);
        // 00:30-00:45 and 02:00-02:15 are cut; the five between are whole
        assert_eq!(
            (cut["files"].as_u64(), cut["files_read"].as_u64()),
            (Some(7), Some(2)),
            "{cut:#}"
        );
        let hourly = equal_numpy(url, var, &["--every", "1h"], env);
        assert_eq!(hourly["bins"].as_array().unwrap().len(), 3, "{hourly:#}");
        assert_eq!(hourly["files_read"].as_u64(), Some(0), "no file crosses an hour");
    }
    let ch4 = stats(url, "ch4", &[], env);
    let n = ch4["bins"][0]["count"].as_u64().unwrap();
    assert_eq!(n, 12 * 90 - 12, "each file's one dropout (the fill value) is not counted");
    // a series within a window: the first bin starts at the window
    let w = equal_numpy(url, "co2", &["--from", CUT_FROM, "--to", CUT_TO, "--every", "30m"], env);
    assert_eq!(w["files_read"].as_u64(), Some(2), "{w:#}");
}

#[test]
fn windows_and_series_equal_numpy_for_every_kind_of_variable() {
    let d = tempfile::tempdir().unwrap();
    every_kind(d.path().join("repo").to_str().unwrap(), &[]);
}

#[test]
fn windows_and_series_equal_numpy_on_s3() {
    let server = moto_bucket("floe-stats");
    every_kind("s3://floe-stats/lab/site", &pairs(&s3_env(&server)));
}

#[test]
fn a_radar_volumes_mostly_fill_reflectivity() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let r = py("real_shapes.py", &["cfradial_ppi", src.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let repo = d.path().join("repo");
    let url = repo.to_str().unwrap();
    sync(&src, url, &[], &[]);
    let whole = equal_numpy(url, "DBZH", &[], &[]);
    let count = whole["bins"][0]["count"].as_u64().unwrap();
    assert!(count > 0, "{whole:#}");
    // volumes every 5 minutes from 12:00:07: ten-minute bins hold two each
    let series = equal_numpy(url, "DBZH", &["--every", "10m"], &[]);
    assert_eq!(series["bins"].as_array().unwrap().len(), 5, "{series:#}");
    equal_numpy(
        url,
        "VRADH",
        &["--from", "2024-05-01T12:12:00Z", "--to", "2024-05-01T12:31:00Z"],
        &[],
    );
}

#[test]
fn a_deletion_updates_the_statistics_of_the_files_it_touched() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "6"]);
    let repo = d.path().join("repo");
    let url = repo.to_str().unwrap();
    sync(&src, url, &["--batch", "1"], &[]);
    let before = equal_numpy(url, "co2", &[], &[]);
    let r = floe(&[
        "delete",
        url,
        "--from",
        CUT_FROM,
        "--to",
        "2024-01-01T01:05:00Z",
        "--reason",
        "calibration gas",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        report["stats_updated"].as_u64(),
        Some(6),
        "00:30, 00:45 and 01:00 were touched, each along time and hf_time: {report:#}"
    );
    let after = equal_numpy(url, "co2", &[], &[]);
    let (b, a) =
        (before["bins"][0]["count"].as_u64().unwrap(), after["bins"][0]["count"].as_u64().unwrap());
    // 00:35 to 01:05 at 10 s: 180 records of co2 are gone
    assert_eq!(b - a, 180, "{before:#}\n{after:#}");
    equal_numpy(url, "waveform", &["--every", "15m"], &[]);
}

#[test]
fn a_repository_without_statistics_is_told_to_rebuild_and_rebuild_fills_them_in() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "5"]);
    let repo = d.path().join("repo");
    let url = repo.to_str().unwrap();
    sync(&src, url, &["--batch", "2"], &[]);
    let r = py("stats.py", &["drop", url]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let r = floe(&["stats", url, "co2"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("floe stats --rebuild"), "{}", r.stderr);
    let r = floe(&["stats", url, "--rebuild", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let rebuilt: Value = serde_json::from_str(&r.stdout).unwrap();
    let rows: u64 =
        rebuilt["rows"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(rows, 10, "5 files along time and along hf_time: {rebuilt:#}");
    for var in ["co2", "temperature", "wind"] {
        let a = equal_numpy(url, var, &["--every", "30m"], &[]);
        assert_eq!(a["files_read"].as_u64(), Some(0), "{a:#}");
    }
    // what a sync adds after a rebuild joins the same rows
    let more = d.path().join("more");
    make(&more, &["--files", "2", "--start", "5"]);
    for f in files(&more, "nc") {
        std::fs::copy(&f, src.join(Path::new(&f).file_name().unwrap())).unwrap();
    }
    sync(&src, url, &[], &[]);
    let all = equal_numpy(url, "co2", &[], &[]);
    assert_eq!(all["files"].as_u64(), Some(7), "{all:#}");
    let r = floe(&["stats", url, "nothing_like_it"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("co2"), "names the variables it has: {}", r.stderr);
}

#[test]
fn a_file_a_logger_reopens_and_appends_to_has_a_row_per_step() {
    // a logger that reopens its file each hour and appends (grow_file.py: a record a
    // second from 2024-01-01T00:00:00Z), in a classic and an HDF5 format
    for format in ["NETCDF3_64BIT_OFFSET", "NETCDF4"] {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let path = src.join("hourly.nc");
        let repo = d.path().join("repo");
        let url = repo.to_str().unwrap();
        for count in ["4", "3"] {
            grow(&path, format, &[count]);
            sync(&src, url, &[], &[]);
        }
        let whole = equal_numpy(url, "temp", &[], &[]);
        assert_eq!(
            (
                whole["files"].as_u64(),
                whole["files_read"].as_u64(),
                whole["bins"][0]["count"].as_u64()
            ),
            (Some(2), Some(0), Some(7)),
            "{format}: a row per step, answered from the rows: {whole:#}"
        );
        // a window that cuts both steps reads them; one inside the second does not
        let cut = equal_numpy(
            url,
            "temp",
            &["--from", "2024-01-01T00:00:02Z", "--to", "2024-01-01T00:00:05Z"],
            &[],
        );
        assert_eq!(cut["bins"][0]["count"].as_u64(), Some(3), "{format}: {cut:#}");
        assert_eq!(cut["files_read"].as_u64(), Some(2), "{format}: {cut:#}");
        let inside = equal_numpy(
            url,
            "temp",
            &["--from", "2024-01-01T00:00:04Z", "--to", "2024-01-01T00:00:07Z"],
            &[],
        );
        assert_eq!(
            (inside["bins"][0]["count"].as_u64(), inside["files_read"].as_u64()),
            (Some(3), Some(0)),
            "{format}: {inside:#}"
        );
        equal_numpy(url, "temp", &["--every", "2s"], &[]);
    }
}
