//! `floe verify` names exactly what is wrong with a repository: a chunk object
//! replaced by a valid chunk of other values (only a comparison of values can tell),
//! a chunk object deleted, one with flipped bytes, a source file edited after
//! ingest; and it finds nothing wrong where nothing is, on files shaped like real
//! instruments' (so its conversions are the sync's). Local, S3 (moto) and Azure
//! (Azurite) repositories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floe_tests::daemon::{Site, drop_files, spawn_daemon, status, wait_until};
use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;
use serde_json::Value;

/// Records per fixture file (make_fixtures.py's default).
const RECORDS: u64 = 90;

/// `floe verify --json`: its exit code and report.
fn verify(folder: &Path, repo: &str, env: &[(&str, &str)]) -> (i32, Value) {
    let r = floe_env(&["verify", folder.to_str().unwrap(), repo, "--json"], env);
    let report = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("verify printed no report ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, report)
}

/// Four analyser files synced in small chunks (several whole chunks per array).
fn synced(folder: &Path, repo: &str, env: &[(&str, &str)]) {
    make(folder, &["--files", "4"]);
    let f = folder.to_str().unwrap();
    let r = floe_env(&["sync", f, repo, "--quiet", "0", "--chunk-mib", "0.01"], env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// Damage chunk `chunk` of `/waveform` with damage.py; the records it held (all in
/// one file, which the checks below assume).
fn damage(repo: &str, how: &str, chunk: u32, env: &[(&str, &str)]) -> (u64, u64) {
    let k = chunk.to_string();
    let r = py_env("damage.py", &[repo, "/waveform", how, "--chunk", &k], env);
    assert_eq!(r.code, 0, "damage.py {how}: {}\n{}", r.stdout, r.stderr);
    let out: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let records = (out["records"][0].as_u64().unwrap(), out["records"][1].as_u64().unwrap());
    assert_eq!(records.0 / RECORDS, (records.1 - 1) / RECORDS, "chunk {chunk} spans two files");
    records
}

fn spans(v: &Value) -> Vec<(u64, u64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["start"].as_u64().unwrap(), s["end"].as_u64().unwrap()))
        .collect()
}

/// The report names one file, the one holding `records` of the repository, and
/// `/waveform` there with `kind` (one of `kinds`), within those records; every other
/// file verified.
fn names_exactly(report: &Value, records: (u64, u64), kinds: &[&str]) {
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    let f = &findings[0];
    let file = records.0 / RECORDS;
    assert_eq!(f["kind"], "differs", "the sources are unchanged: {report:#}");
    assert!(
        f["source"].as_str().unwrap().ends_with(&format!("_{:04}.nc", file * 15)),
        "{report:#}"
    );
    let d = f["differences"].as_array().unwrap();
    assert_eq!(d.len(), 1, "{report:#}");
    assert_eq!(d[0]["array"], "/waveform");
    assert_eq!(d[0]["dim"], "time");
    assert!(kinds.contains(&d[0]["wrong"]["kind"].as_str().unwrap()), "{report:#}");
    for (s, e) in spans(&d[0]["repo_records"]) {
        assert!(records.0 <= s && e <= records.1, "{s}..{e} outside {records:?}: {report:#}");
    }
    let file_records = spans(&d[0]["records"]);
    let repo_records = spans(&d[0]["repo_records"]);
    for ((fs, fe), (rs, re)) in file_records.iter().zip(&repo_records) {
        assert_eq!((fs + file * RECORDS, fe + file * RECORDS), (*rs, *re), "{report:#}");
    }
    assert_eq!(report["verified"].as_array().unwrap().len(), 3, "{report:#}");
}

/// A copy of the repository folder, to damage.
fn copy_of(repo: &Path, name: &str) -> String {
    let to = repo.with_file_name(name);
    let r = std::process::Command::new("cp").arg("-a").arg(repo).arg(&to).status().unwrap();
    assert!(r.success());
    to.to_string_lossy().into_owned()
}

#[test]
fn verify_names_exactly_the_chunk_replaced_deleted_or_flipped_and_the_edited_file() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let repo = d.path().join("repo");
    synced(&src, repo.to_str().unwrap(), &[]);
    let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verified"].as_array().unwrap().len(), 4, "{report:#}");

    // another chunk object of the same array copied over one: every object still
    // decodes and every source hash still matches; only the values tell
    let swapped = copy_of(&repo, "swapped");
    let records = damage(&swapped, "swap", 1, &[]);
    let (code, report) = verify(&src, &swapped, &[]);
    assert_eq!(code, 7, "{report:#}");
    names_exactly(&report, records, &["values"]);
    let whole: Vec<(u64, u64)> = spans(&report["findings"][0]["differences"][0]["repo_records"]);
    assert_eq!(whole, vec![records], "every record of the chunk differs: {report:#}");

    let deleted = copy_of(&repo, "deleted");
    let records = damage(&deleted, "delete", 1, &[]);
    let (code, report) = verify(&src, &deleted, &[]);
    assert_eq!(code, 7, "{report:#}");
    names_exactly(&report, records, &["missing_chunk"]);

    let flipped = copy_of(&repo, "flipped");
    let records = damage(&flipped, "flip", 1, &[]);
    let (code, report) = verify(&src, &flipped, &[]);
    assert_eq!(code, 7, "{report:#}");
    // (zstd without checksums may decode flipped bytes into other values)
    names_exactly(&report, records, &["values", "unreadable_chunk"]);

    // the text says the same, one line per file and a summary
    let text = floe(&["verify", src.to_str().unwrap(), &swapped]);
    assert_eq!(text.code, 7);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(
        lines[0].contains("`/waveform` records") && lines[0].contains("other values"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("3 of 4 files verified"), "{}", lines[1]);

    // a source edited after ingest: changed, the record named; the repository is fine
    let edited = files(&src, "nc")[2].clone();
    let r = py("edit_value.py", &[&edited, "co2", "7", "1.5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{report:#}");
    let f = &report["findings"][0];
    assert_eq!(f["kind"], "changed", "{report:#}");
    assert!(edited.ends_with(f["source"].as_str().unwrap()), "{report:#}");
    let diff = &f["differences"][0];
    assert_eq!(diff["array"], "/co2");
    assert_eq!(spans(&diff["records"]), vec![(7, 8)]);
    assert_eq!(spans(&diff["repo_records"]), vec![(2 * RECORDS + 7, 2 * RECORDS + 8)]);

    // a file rotated out of the folder is listed, not a failure; a new one is missing
    std::fs::remove_file(&edited).unwrap();
    make(&src, &["--files", "1", "--start", "4"]);
    let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["gone"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(report["findings"][0]["kind"], "not_in_repository", "{report:#}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 1, "{report:#}");
}

#[test]
fn files_shaped_like_real_instruments_verify_after_their_sync() {
    // every conversion the sync makes (times re-encoded per radar volume, char arrays
    // joined into strings, packing, odd fill values, enums, a table stored whole)
    for shape in [
        "cfradial_ppi",
        "cfradial_rhi",
        "granule",
        "fills",
        "attrs",
        "cdf5",
        "bigendian",
        "scalar_string",
        "enum",
        "table",
    ] {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let r = py("real_shapes.py", &[shape, src.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{shape}: {}", r.stderr);
        let repo = d.path().join("repo");
        let (code, sync) = sync_json(&src, &repo, &[]);
        let refused = rejected(&sync).len();
        assert!(code == 0 || (shape == "table" && code == 1), "{shape}: {sync}");
        let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(findings.len(), refused, "{shape}: only refused files are missing: {report:#}");
        assert!(findings.iter().all(|f| f["kind"] == "not_in_repository"), "{shape}: {report:#}");
        assert_eq!(code, if refused == 0 { 0 } else { 1 }, "{shape}: {report:#}");
        let ok = report["verified"].as_array().unwrap().len()
            + report["copies"].as_object().unwrap().len();
        assert_eq!(ok, files(&src, "nc").len() - refused, "{shape}: {report:#}");
    }
}

#[test]
fn every_source_format_verifies_and_a_group_is_verified_where_it_was_synced() {
    for format in ["nc3", "nc3-64", "h5netcdf", "zarr2", "zarr3"] {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        make(&src, &["--files", "3", "--format", format]);
        let repo = d.path().join("repo");
        let (code, sync) = sync_json(&src, &repo, &["--group", "/site"]);
        assert_eq!(code, 0, "{format}: {sync}");
        let (f, r) = (src.to_str().unwrap(), repo.to_str().unwrap());
        let out = floe(&["verify", f, r, "--group", "/site", "--json"]);
        assert_eq!(out.code, 0, "{format}: {}\n{}", out.stdout, out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["verified"].as_array().unwrap().len(), 3, "{format}: {report:#}");
        // the root group holds none of them
        let (code, report) = verify(&src, r, &[]);
        assert_eq!(code, 1, "{format}: {report:#}");
        assert_eq!(report["findings"].as_array().unwrap().len(), 3, "{format}: {report:#}");
    }
}

#[test]
fn a_file_taken_in_steps_verifies_every_step() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("hourly.nc");
    let repo = d.path().join("repo");
    for records in [4, 3] {
        grow(&file, "NETCDF4", &[&records.to_string()]);
        let (code, sync) = sync_json(&src, &repo, &[]);
        assert_eq!(code, 0, "{sync}");
    }
    let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
    assert_eq!(code, 0, "{report:#}");
    // it grows again: its ingested records still read back, the new one is pending
    grow(&file, "NETCDF4", &["1"]);
    let (code, report) = verify(&src, repo.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{report:#}");
    let finding = &report["findings"][0];
    assert_eq!(finding["kind"], "changed");
    assert!(finding["how"].as_str().unwrap().contains("it grew: 1 new records"), "{report:#}");
    assert!(finding["differences"].as_array().unwrap().is_empty(), "{report:#}");
}

/// The damage test's first half against an object store.
fn remote(url: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    synced(&src, url, env);
    let (code, report) = verify(&src, url, env);
    assert_eq!(code, 0, "{report:#}");
    let records = damage(url, "swap", 1, env);
    let (code, report) = verify(&src, url, env);
    assert_eq!(code, 7, "{report:#}");
    names_exactly(&report, records, &["values"]);
    // (then a chunk of another file deleted: two files named, each with its own)
    let deleted = damage(url, "delete", 5, env);
    let (code, report) = verify(&src, url, env);
    assert_eq!(code, 7, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{report:#}");
    let kinds: Vec<&str> =
        findings.iter().map(|f| f["differences"][0]["wrong"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["values", "missing_chunk"], "{report:#}");
    assert_eq!(spans(&findings[0]["differences"][0]["repo_records"]), vec![records]);
    assert_eq!(spans(&findings[1]["differences"][0]["repo_records"]), vec![deleted]);
}

#[test]
fn verify_on_s3() {
    let server = moto_bucket("floe-verify");
    remote("s3://floe-verify/site", &pairs(&s3_env(&server)));
}

#[test]
fn verify_on_azure() {
    let server = azurite_container("floe-verify");
    remote("az://floe-verify/site", &pairs(&az_env(&server)));
}

#[test]
fn the_daemon_reads_each_commit_back_and_verifies_the_folder_on_its_schedule() {
    let site = Site::new();
    let (watched, stage, repo) = (&site.watched, &site.stage, &site.repo);
    let env = site.env();
    let (w, r) = (watched.to_str().unwrap(), repo.to_str().unwrap());
    // a full verification every 3.6 s
    let add = ["add", w, r, "--verify-after-commit", "--verify-every-hours", "0.001"];
    let out = floe_env(&add, &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let _daemon = spawn_daemon(&env, "0.3", "5");
    // eight files of 10 records: /waveform's first chunk (64 records) is whole
    drop_files(stage, watched, &["--files", "8", "--records", "10", "--hf", "10"]);
    let last = |env: &[(&str, &str)]| status(env)[0]["last_verification"].clone();
    wait_until("the commits read back", || {
        let s = status(&env);
        s[0]["files_ingested"] == 8 && s[0]["last_verification"]["scope"] == "commit"
    });
    assert_eq!(last(&env)["verdict"], "verified", "{:#}", status(&env));
    wait_until("a full verification", || {
        let v = last(&env);
        v["scope"] == "full" && v["verdict"] == "verified"
    });
    assert!(last(&env)["summary"].as_str().unwrap().starts_with("8 of 8 files verified"));

    // the repository damaged under the daemon: its next full verification says so,
    // and the folder's last problem names the array
    let r = py("damage.py", &[r, "/waveform", "delete", "--chunk", "0"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    wait_until("the damage found", || last(&env)["verdict"] == "damaged");
    let s = status(&env);
    let v = &s[0]["last_verification"];
    assert_eq!(v["scope"], "full", "{s:#}");
    let first = v["findings"][0].as_str().unwrap();
    assert!(first.contains("`/waveform`") && first.contains("a chunk object is missing"), "{s:#}");
    let problem = s[0]["last_error"].as_str().unwrap();
    assert!(problem.starts_with("Verification found damage"), "{problem}");
    // and `floe status` in words
    let text = floe_env(&["status"], &env);
    assert!(text.stdout.contains("the repository differs from its files"), "{}", text.stdout);
}
