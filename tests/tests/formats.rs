//! Every input format lands in the repository exactly as xarray reads the source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::*;

fn roundtrip(format: &str, files: usize, ext: &str, sync_extra: &[&str], check_extra: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", &files.to_string(), "--format", format]);
    let (code, report) = sync_json(&src, &repo, sync_extra);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), files, "{report}");
    assert_repo_equals(&repo, &files_of(&src, ext), check_extra);
}

fn files_of(dir: &std::path::Path, ext: &str) -> Vec<String> {
    files(dir, ext)
}

#[test]
fn netcdf4_with_groups_strings_packing_and_two_record_dims() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "12"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"]["time"], 12 * 90);
    assert_eq!(report["records"]["hf_time"], 12 * 900);
    let nc = files(&src, "nc");
    assert_repo_equals(&repo, &nc, &[]);
    assert_repo_equals(
        &repo,
        &nc,
        &["--group", "engineering", "--source-group", "engineering", "--append-dim", "time"],
    );
}

#[test]
fn netcdf3_classic() {
    roundtrip("nc3", 4, "nc", &[], &["--append-dim", "time"]);
}

#[test]
fn netcdf3_64bit_offset() {
    roundtrip("nc3-64", 3, "nc", &[], &["--append-dim", "time"]);
}

#[test]
fn h5netcdf_newest_hdf5_format() {
    roundtrip("h5netcdf", 3, "nc", &[], &["--append-dim", "time"]);
}

#[test]
fn zarr_v2_store() {
    roundtrip(
        "zarr2",
        3,
        "zarr",
        &["--append-dim", "time"],
        &["--append-dim", "time", "--engine", "zarr"],
    );
}

#[test]
fn zarr_v3_store() {
    roundtrip(
        "zarr3",
        3,
        "zarr",
        &["--append-dim", "time"],
        &["--append-dim", "time", "--engine", "zarr"],
    );
}

#[test]
fn one_record_and_thousands_of_records() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "1", "--records", "1", "--hf", "1"]);
    make(&src, &["--files", "1", "--start", "1", "--records", "5000", "--hf", "20000"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["records"]["time"], 5001);
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn a_variable_that_appears_later_reads_as_missing_before() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "4", "--extra-var-from", "2"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn later_files_in_other_time_units_are_reencoded_exactly() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "2"]);
    make(
        &src,
        &["--files", "2", "--start", "2", "--time-units", "seconds since 2024-01-02 00:00:00"],
    );
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
}

#[test]
fn inspect_shows_the_mapping_without_writing() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "1"]);
    let f = &files(&src, "nc")[0];
    let r = floe(&["inspect", f]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("append dimensions: time, hf_time"), "{}", r.stdout);
    assert!(r.stdout.contains("int16 temperature(time)"), "{}", r.stdout);
    assert!(r.stdout.contains(":scale_factor"), "{}", r.stdout);
    assert!(r.stdout.contains("group /engineering"), "{}", r.stdout);
    let j = floe(&["inspect", f, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["append_dims"], serde_json::json!(["time", "hf_time"]));
    assert!(v["plan"]["arrays"].as_array().unwrap().iter().any(|a| a["path"] == "/waveform"));
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1, "inspect wrote something");
}

#[test]
fn a_week_of_15_minute_files() {
    // the instrument's whole week (672 files), checked end to end by xarray
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    make(&src, &["--files", "672"]);
    let (code, report) = sync_json(&src, &repo, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 672);
    assert_eq!(report["records"]["time"], 672 * 90);
    assert_eq!(report["records"]["hf_time"], 672 * 900);
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
    // and the provenance covers every file exactly once
    let mut seen: Vec<String> = log_json(&repo, "main")
        .iter()
        .flat_map(|c| c["provenance"]["files"].as_array().cloned().unwrap_or_default())
        .map(|f| f["source"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut names: Vec<String> = files(&src, "nc")
        .iter()
        .map(|p| std::path::Path::new(p).file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(seen, names);
}

#[test]
fn a_growing_zarr_store_is_synced_incrementally() {
    // an instrument that appends to one Zarr store: each sync takes the new records
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    make(&src, &["--files", "1", "--format", "zarr3"]);
    let store = files(&src, "zarr").pop().unwrap();
    let sync = || {
        let (code, report) = sync_json(&src, &repo, &["--append-dim", "time"]);
        assert_eq!(code, 0, "{report}");
        report
    };
    let first = sync();
    let per_file = first["records"]["time"].as_u64().unwrap();
    for i in 1..3 {
        let r = py("grow_zarr.py", &[&store, &i.to_string()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let report = sync();
        assert_eq!(report["ingested"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(
            report["records"]["time"].as_u64(),
            Some(per_file),
            "only the new records: {report}"
        );
    }
    let again = sync();
    assert!(again["ingested"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(again["already_ingested"].as_array().unwrap().len(), 1, "{again}");
    assert_repo_equals(&repo, &[store], &["--append-dim", "time", "--engine", "zarr"]);
}
