//! Schema drift that keeps data flowing: `--on-drift branch` sends the drifted file
//! and those after it to a branch named by the first drifted record, `--on-drift
//! repo` to a repository beside the old one; either knows what the old one holds
//! (nothing is ingested twice, a rerun writes nothing), xarray reads each exactly as
//! its sources, and the daemon goes on there (its config updated). Local, S3 (moto)
//! and Azurite repositories.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floe_tests::daemon::{Site, drop_files, spawn_daemon, status, wait_until};
use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;
use serde_json::Value;

/// File 3 of make_fixtures.py starts at 2024-01-01 00:45:00 UTC.
const DRIFT_NAME: &str = "2024-01-01T00-45-00Z";

fn sync(src: &Path, url: &str, policy: &str, env: &[(&str, &str)]) -> (i32, Value) {
    sync_url_json(src, url, &["--on-drift", policy], env)
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["file"].as_str().or(x.as_str()).unwrap().to_string())
        .collect();
    n.sort();
    n
}

/// File names of paths, as `floe verify` lists them.
fn base_names(paths: &[String]) -> Vec<String> {
    paths.iter().map(|p| Path::new(p).file_name().unwrap().to_string_lossy().into_owned()).collect()
}

/// Three files, then two whose `co2` is float32 (the repository's is float64).
fn drifting(src: &Path, stage: &Path) -> (Vec<String>, Vec<String>) {
    make(src, &["--files", "3"]);
    let before = files(src, "nc");
    make(stage, &["--files", "2", "--start", "3", "--co2-dtype", "f4"]);
    let drifted = files(stage, "nc");
    (before, drifted)
}

/// The whole story against one repository URL; `next` is where the data goes on
/// (URL, branch).
fn drifts(url: &str, policy: &str, env: &[(&str, &str)]) -> (String, String) {
    let d = tempfile::tempdir().unwrap();
    let (src, stage) = (d.path().join("src"), d.path().join("stage"));
    let (before, _) = drifting(&src, &stage);
    let (code, report) = sync(&src, url, policy, env);
    assert_eq!(code, 0, "{report:#}");
    for f in std::fs::read_dir(&stage).unwrap().flatten() {
        std::fs::rename(f.path(), src.join(f.file_name())).unwrap();
    }
    let all = files(&src, "nc");
    let after: Vec<String> = all.iter().filter(|f| !before.contains(f)).cloned().collect();

    let (code, report) = sync(&src, url, policy, env);
    assert_eq!(code, 0, "drifted files are not refused: {report:#}");
    let sw = &report["switched"][0];
    let (next_url, next_branch) =
        (sw["repo"].as_str().unwrap().to_string(), sw["branch"].as_str().unwrap().to_string());
    match policy {
        "branch" => {
            assert_eq!(next_url, url);
            assert_eq!(next_branch, format!("drift-{DRIFT_NAME}"));
        }
        _ => {
            assert_eq!(next_url, format!("{url}-{DRIFT_NAME}"));
            assert_eq!(next_branch, "main");
        }
    }
    assert!(sw["reason"].as_str().unwrap().contains("co2"), "{report:#}");
    assert_eq!(names(&report["ingested"]).len(), 2, "{report:#}");
    assert!(report["rejected"].as_array().unwrap().is_empty(), "{report:#}");

    // the old target kept its three files, the new one holds the drifted two
    assert_url_equals(url, &before, &[], env);
    assert_url_equals(&next_url, &after, &["--branch", &next_branch], env);

    // a rerun writes nothing, there or here
    let (code, report) = sync(&src, url, policy, env);
    assert_eq!(code, 0, "{report:#}");
    assert!(report["ingested"].as_array().unwrap().is_empty(), "{report:#}");
    let s = src.to_str().unwrap();
    let there = floe_env(&["sync", s, &next_url, "--branch", &next_branch, "--quiet", "0"], env);
    assert_eq!(there.code, 0, "{}\n{}", there.stdout, there.stderr);
    assert!(
        there.stdout.contains("nothing new to ingest"),
        "the old files count as held: {}",
        there.stdout
    );

    // the new target's first commit says what it continues
    let log = floe_env(&["log", &next_url, "--branch", &next_branch], env);
    assert!(log.stdout.contains("after a schema drift"), "{}", log.stdout);

    // `floe verify` where the folder went on follows it back: all five files verify,
    // three of them against the old target at the snapshot the folder left it
    let v = floe_env(&["verify", s, &next_url, "--branch", &next_branch, "--json"], env);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    let r: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(names(&r["verified"]), base_names(&all), "{r:#}");
    assert!(r["findings"].as_array().unwrap().is_empty(), "{r:#}");
    let back = &r["continued"].as_array().unwrap()[..];
    assert_eq!(back.len(), 1, "{r:#}");
    assert_eq!((back[0]["repo"].as_str(), back[0]["branch"].as_str()), (Some(url), Some("main")));
    assert_eq!(back[0]["verified"], 3, "{r:#}");
    let words = floe_env(&["verify", s, &next_url, "--branch", &next_branch], env);
    assert!(
        words.stdout.contains("5 of 5 files verified")
            && words.stdout.contains("3 of them against branch main"),
        "{}",
        words.stdout
    );
    // the old target does not know where the folder went: the drifted two are not there
    let v = floe_env(&["verify", s, url, "--json"], env);
    let r: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!((v.code, names(&r["verified"])), (1, base_names(&before)), "{r:#}");
    (next_url, next_branch)
}

#[test]
fn a_drifted_file_goes_on_in_a_branch_of_its_own() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("repo");
    drifts(repo.to_str().unwrap(), "branch", &[]);
}

#[test]
fn a_drifted_file_goes_on_in_a_repository_beside_the_old_one() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("ctd");
    let (next, _) = drifts(repo.to_str().unwrap(), "repo", &[]);
    assert!(Path::new(&next).join("snapshots").is_dir(), "a repository at {next}");
}

#[test]
fn drift_goes_on_in_s3_and_azure() {
    let server = moto_bucket("floe-drift");
    drifts("s3://floe-drift/lab/ctd", "branch", &pairs(&s3_env(&server)));
    let server = azurite_container("floe-drift");
    drifts("az://floe-drift/lab/ctd", "repo", &pairs(&az_env(&server)));
}

#[test]
fn without_a_policy_a_drifted_file_is_refused_and_left_where_it_is() {
    let d = tempfile::tempdir().unwrap();
    let (src, stage, repo) = (d.path().join("src"), d.path().join("stage"), d.path().join("repo"));
    drifting(&src, &stage);
    let r = repo.to_str().unwrap();
    assert_eq!(sync(&src, r, "stop", &[]).0, 0);
    for f in std::fs::read_dir(&stage).unwrap().flatten() {
        std::fs::rename(f.path(), src.join(f.file_name())).unwrap();
    }
    let (code, report) = sync(&src, r, "stop", &[]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["rejected"].as_array().unwrap().len(), 2, "{report:#}");
    assert_eq!(report["rejected"][0]["code"], "schema_drift");
    assert_eq!(files(&src, "nc").len(), 5, "the files stay where they are");
}

#[test]
fn the_daemon_goes_on_where_the_drift_took_it_and_remembers() {
    let site = Site::new();
    let (watched, stage, repo) = (&site.watched, &site.stage, &site.repo);
    let env = site.env();
    let (w, r) = (watched.to_str().unwrap(), repo.to_str().unwrap());
    let out = floe_env(&["add", w, r, "--on-drift", "branch"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let _daemon = spawn_daemon(&env, "0.3", "5");
    drop_files(stage, watched, &["--files", "3"]);
    wait_until("three files", || status(&env)[0]["files_ingested"] == 3);
    drop_files(stage, watched, &["--files", "1", "--start", "3", "--co2-dtype", "f4"]);
    let branch = format!("drift-{DRIFT_NAME}");
    wait_until("the drift branch", || status(&env)[0]["branch"] == branch.as_str());
    let s = status(&env);
    let moved = &s[0]["went_on"];
    assert_eq!(
        (moved["from_branch"].as_str(), moved["branch"].as_str()),
        (Some("main"), Some(branch.as_str())),
        "{s:#}"
    );
    assert!(moved["reason"].as_str().unwrap().contains("co2"), "{s:#}");
    assert!(s[0]["last_error"].is_null(), "going on is not a problem: {s:#}");
    let words = floe_env(&["status"], &env);
    assert!(
        words.stdout.contains(&format!("went on in branch {branch} (from main), starting with")),
        "{}",
        words.stdout
    );
    let config = std::fs::read_to_string(&site.cfg).unwrap();
    assert!(config.contains(&format!("branch = \"{branch}\"")), "{config}");
    // the next file goes straight there
    drop_files(stage, watched, &["--files", "1", "--start", "4", "--co2-dtype", "f4"]);
    wait_until("the fifth file", || status(&env)[0]["files_ingested"] == 5);
    assert_eq!(files_on(repo, &branch), 2, "the 2 drifted files");
    assert_eq!(files_on(repo, "main"), 3, "the 3 files before the drift");
}

#[test]
fn each_settings_period_is_tagged_where_it_starts() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    // firmware 2.1, then 2.2, then back to 2.1 (90 records a file)
    make(&src, &["--files", "2", "--firmware", "2.1"]);
    make(&src, &["--files", "2", "--start", "2", "--firmware", "2.2"]);
    make(&src, &["--files", "1", "--start", "4", "--firmware", "2.1"]);
    let (s, r) = (src.to_str().unwrap(), repo.to_str().unwrap());
    let out = floe(&["sync", s, r, "--quiet", "0", "--tag-on-change", "firmware", "--json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let returned = "firmware-2.1-2024-01-01T01-00-00Z";
    assert_eq!(
        report["tagged"],
        serde_json::json!(["firmware-2.1", "firmware-2.2", returned]),
        "{report:#}"
    );
    assert_eq!(report["commits"].as_array().unwrap().len(), 3, "one commit per period: {report:#}");
    let tags = py("tags.py", &[r]);
    assert_eq!(tags.code, 0, "{}", tags.stderr);
    let tags: Value = serde_json::from_str(tags.stdout.trim()).unwrap();
    // each tag is the first commit of its period: the records up to its end
    assert_eq!(tags, serde_json::json!({"firmware-2.1": 180, "firmware-2.2": 360, returned: 450}));
    // later files of the same period make no tag
    make(&src, &["--files", "1", "--start", "5", "--firmware", "2.1"]);
    let out = floe(&["sync", s, r, "--quiet", "0", "--tag-on-change", "firmware", "--json"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(report.get("tagged").is_none(), "{report:#}");
}
