//! The validation gate before `main`: a gated folder commits to
//! `floe-staging-main`, and `main` moves only when the checks pass. A failed check
//! holds the files there (exit 8, `main` unchanged as xarray reads it) until `floe
//! gate release` (recorded in the commit that moves `main`) or `floe gate drop`
//! (recorded, and the file is not taken again). Each check on files shaped as the
//! instrument writes them; local, S3 (moto) and Azurite; the daemon's status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use floe_tests::daemon::{Site, drop_files, spawn_daemon, status, wait_until};
use floe_tests::mount::{Mount, mount_check};
use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;
use serde_json::Value;

/// A config of the test's own: `floe gate` looks registered folders up there.
fn own_config(d: &Path) -> String {
    d.join("config.toml").to_string_lossy().into_owned()
}

fn gated_sync(src: &Path, url: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let gated: Vec<&str> = std::iter::once("--gate").chain(extra.iter().copied()).collect();
    sync_url_json(src, url, &gated, env)
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(|x| x["file"].as_str().or(x.as_str()).unwrap().to_string()).collect())
        .unwrap_or_default();
    n.sort();
    n
}

/// The first failure of a held report: (check, file, what).
fn held(report: &Value) -> (String, String, String) {
    assert_eq!(report["gate"]["gate"], "held", "{report:#}");
    let f = &report["gate"]["failures"][0];
    let s = |k: &str| f[k].as_str().unwrap().to_string();
    (s("check"), s("file"), s("what"))
}

/// The name make_fixtures gives file `i` (one every 15 minutes from 2024-01-01).
fn nth(i: u32) -> String {
    format!("site_20240101_{:02}{:02}.nc", i / 4, 15 * (i % 4))
}

fn path_of(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// The whole story against one repository URL: files that pass reach `main`; a
/// file that repeats the last record time is held (exit 8, `main` as it was, the
/// next good file waits too); `floe gate drop` leaves it out for good; the good one
/// goes on.
fn hold_and_drop(url: &str, env: &[(&str, &str)], mount_while_held: bool) {
    let d = tempfile::tempdir().unwrap();
    let (src, stage) = (d.path().join("src"), d.path().join("stage"));
    let cfg = own_config(d.path());
    let env: Vec<(&str, &str)> =
        env.iter().copied().chain([("FLOE_CONFIG", cfg.as_str())]).collect();
    make(&src, &["--files", "3", "--valid-range"]);
    let good = files(&src, "nc");
    let (code, report) = gated_sync(&src, url, &[], &env);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["gate"]["gate"], "promoted", "{report:#}");
    assert_url_equals(url, &good, &[], &env);

    // file 3 starts 10 s early: its first record repeats file 2's last
    make(&stage, &["--files", "1", "--start", "3", "--time-shift", "-10", "--valid-range"]);
    let dup = nth(3);
    std::fs::rename(stage.join(&dup), src.join(&dup)).unwrap();
    let (code, report) = gated_sync(&src, url, &[], &env);
    assert_eq!(code, 8, "held at the gate: {report:#}");
    let (check, file, what) = held(&report);
    assert_eq!((check.as_str(), file.as_str()), ("duplicates", dup.as_str()), "{report:#}");
    assert!(what.contains("2024-01-01T00:44:50Z") && what.contains("the branch"), "{what}");
    assert_eq!(names(&report["ingested"]), [dup.as_str()], "staged: {report:#}");
    assert_url_equals(url, &good, &[], &env);
    let staged = floe_env(&["log", url, "--branch", "floe-staging-main", "--json"], &env);
    assert_eq!(staged.code, 0, "{}", staged.stderr);
    let staged: Vec<Value> = serde_json::from_str(&staged.stdout).unwrap();
    assert_eq!(staged[0]["provenance"]["files"][0]["source"], dup, "the staging branch keeps it");
    if mount_while_held {
        mount_hides_the_held_file(url, &env);
    }
    // verify tells a held file from one that is not in the repository
    let v = floe_env(&["verify", src.to_str().unwrap(), url, "--json"], &env);
    assert_eq!(v.code, 1, "held is behind: {}\n{}", v.stdout, v.stderr);
    let got: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(got["findings"][0]["source"], dup.as_str(), "{got:#}");
    assert_eq!(got["findings"][0]["kind"], "held", "{got:#}");

    // while held, the next good file waits (it would only go in after the held one)
    make(&stage, &["--files", "1", "--start", "4", "--valid-range"]);
    std::fs::rename(stage.join(nth(4)), src.join(nth(4))).unwrap();
    let (code, report) = gated_sync(&src, url, &[], &env);
    assert_eq!(code, 8, "{report:#}");
    assert!(names(&report["ingested"]).is_empty(), "nothing new while held: {report:#}");
    let text = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--gate"], &env);
    assert!(
        text.stdout.contains(&format!("held: duplicates failed on {dup}"))
            && text.stdout.contains("floe gate drop"),
        "says what failed and what to do: {}",
        text.stdout
    );

    let out = floe_env(&["gate", "drop", url], &env);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("dropped 1 file(s)") && out.stdout.contains(&dup),
        "{}",
        out.stdout
    );

    let (code, report) = gated_sync(&src, url, &[], &env);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(names(&report["dropped"]), [dup.as_str()], "left out: {report:#}");
    assert_eq!(names(&report["ingested"]), [nth(4)], "{report:#}");
    assert_eq!(report["gate"]["gate"], "promoted", "{report:#}");
    let mut now = good.clone();
    now.push(path_of(&src, &nth(4)));
    assert_url_equals(url, &now, &[], &env);
    // a restart does not take the dropped file again
    let (code, report) = gated_sync(&src, url, &[], &env);
    assert_eq!(code, 0, "{report:#}");
    assert!(names(&report["ingested"]).is_empty(), "{report:#}");
    assert_eq!(names(&report["dropped"]), [dup.as_str()], "{report:#}");
    let log = floe_env(&["log", url], &env);
    assert!(log.stdout.contains("gate: dropped") && log.stdout.contains(&dup), "{}", log.stdout);
    // verify counts the dropped file as dropped, not as missing; once it changes,
    // it is a file to sync again
    let v = floe_env(&["verify", src.to_str().unwrap(), url], &env);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("4 of 5 files verified"), "{}", v.stdout);
    assert!(v.stdout.contains("1 dropped at the validation gate"), "{}", v.stdout);
    let f = std::fs::OpenOptions::new().append(true).open(src.join(&dup)).unwrap();
    drop(f.set_len(f.metadata().unwrap().len() + 1));
    let v = floe_env(&["verify", src.to_str().unwrap(), url, "--json"], &env);
    assert_eq!(v.code, 1, "{}\n{}", v.stdout, v.stderr);
    let got: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(got["findings"][0]["kind"], "not_in_repository", "{got:#}");
    assert!(got["dropped"].as_array().unwrap().is_empty(), "{got:#}");
}

/// The length of `time` in a mounted snapshot folder, from its `zarr.json`.
fn mounted_records(m: &Mount, folder: &str) -> u64 {
    let meta = std::fs::read(m.path(&format!("{folder}/time/zarr.json"))).unwrap();
    let meta: Value = serde_json::from_slice(&meta).unwrap();
    meta["shape"][0].as_u64().unwrap()
}

/// While a file is held, the mount's `branches/main` is main as it was (three files
/// of 90 records) and `branches/floe-staging-main` shows the held one too; each
/// folder is what Python icechunk reads at that branch.
fn mount_hides_the_held_file(url: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let m = Mount::start(url, &d.path().join("mnt"), &[], env);
    assert_eq!(mounted_records(&m, "branches/main"), 270);
    assert_eq!(mounted_records(&m, "branches/floe-staging-main"), 360);
    let mnt = m.path("").to_string_lossy().into_owned();
    mount_check(
        &[
            "compare",
            &mnt,
            url,
            "branches/main=branch:main",
            "branches/floe-staging-main=branch:floe-staging-main",
        ],
        env,
    );
}

#[test]
fn a_repeated_record_is_held_at_the_gate_and_dropped() {
    let d = tempfile::tempdir().unwrap();
    hold_and_drop(d.path().join("repo").to_str().unwrap(), &[], true);
}

#[test]
fn the_gate_holds_and_drops_on_s3_and_azure() {
    let server = moto_bucket("floe-gate");
    hold_and_drop("s3://floe-gate/lab/ghg", &pairs(&s3_env(&server)), false);
    let server = azurite_container("floe-gate");
    hold_and_drop("az://floe-gate/lab/ghg", &pairs(&az_env(&server)), false);
}

#[test]
fn a_new_variable_is_held_and_a_release_records_why_in_main() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    let cfg = own_config(d.path());
    let env = [("FLOE_CONFIG", cfg.as_str())];
    let r = repo.to_str().unwrap();
    make(&src, &["--files", "2"]);
    assert_eq!(gated_sync(&src, r, &[], &env).0, 0);
    // the firmware adds a channel: n2o from file 2 on
    make(&src, &["--files", "1", "--start", "2", "--extra-var-from", "2"]);
    let (code, report) = gated_sync(&src, r, &[], &env);
    assert_eq!(code, 8, "{report:#}");
    let (check, file, what) = held(&report);
    assert_eq!((check.as_str(), file.as_str()), ("schema", nth(2).as_str()), "{report:#}");
    assert!(what.contains("new variable `/n2o`"), "{what}");
    let before = log_json(&repo, "main");

    let out = floe_env(&["gate", "release", r, "--json"], &env);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let decision: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(decision["files"], serde_json::json!([nth(2)]));
    let after = log_json(&repo, "main");
    assert_eq!(after.len(), before.len() + 2, "the staged commit and the release");
    let record = &after[0]["provenance"]["gate"];
    assert_eq!(record["decision"], "released", "{:#}", after[0]);
    assert!(
        record["failures"][0].as_str().unwrap().contains(&format!("schema failed on {}", nth(2)))
    );
    assert_repo_equals(&repo, &files(&src, "nc"), &[]);
    // nothing is held any more: a second release says so
    let again = floe_env(&["gate", "release", r], &env);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("nothing is held"), "{}", again.stderr);
}

#[test]
fn value_checks_hold_on_valid_range_limits_fill_and_gaps() {
    let d = tempfile::tempdir().unwrap();
    let cfg = own_config(d.path());
    let env = [("FLOE_CONFIG", cfg.as_str())];
    let case = |name: &str, extra: &[&str], later: &[&str]| -> Option<(String, String, String)> {
        let (src, repo) =
            (d.path().join(format!("{name}-src")), d.path().join(format!("{name}-repo")));
        make(&src, &["--files", "2", "--valid-range"]);
        let r = repo.to_str().unwrap();
        let (code, report) = gated_sync(&src, r, extra, &env);
        assert_eq!(code, 0, "{name}: the first files pass: {report:#}");
        make(&src, later);
        let (code, report) = gated_sync(&src, r, extra, &env);
        match code {
            0 => None,
            8 => {
                assert_eq!(log_json(&repo, "main").len(), 2, "{name}: main did not move");
                Some(held(&report))
            }
            c => panic!("{name}: exit {c}: {report:#}"),
        }
    };
    let next = ["--files", "1", "--start", "2", "--valid-range"];

    // valid ranges: the packed temperature's (in packed units) holds for every
    // file, a co2 spike does not
    let spiked = ["--files", "1", "--start", "2", "--valid-range", "--spike", "9999"];
    assert_eq!(case("range-ok", &["--gate-valid-range"], &next), None);
    let (check, file, what) = case("range", &["--gate-valid-range"], &spiked).unwrap();
    assert_eq!((check.as_str(), file.as_str()), ("valid_range", nth(2).as_str()));
    assert!(
        what.contains("1 of 90 values of `/co2` are outside [300, 600] (the first: 9999)"),
        "{what}"
    );

    // limits on decoded values (methane is near 1.9 ppm)
    assert_eq!(case("limits-ok", &["--gate-limit", "ch4=1.5:2.5"], &next), None);
    let (check, _, what) =
        case("limits", &["--gate-limit", "ch4=1.5:2.5", "--gate-limit", "co2=:1000"], &spiked)
            .unwrap();
    assert_eq!(check, "limits");
    assert!(what.contains("1 of 90 values of `/co2` are outside [-inf, 1000]"), "{what}");

    // fill: one dropout in 90 methane records is 1.1%
    assert_eq!(case("fill-ok", &["--gate-max-fill", "0.05"], &next), None);
    let fill = case(
        "fill",
        &["--gate-max-fill", "0.05"],
        &["--files", "1", "--start", "2", "--records", "9"],
    );
    let (check, _, what) = fill.unwrap();
    assert_eq!(check, "fill");
    assert!(what.contains("11.1% of `/ch4` is fill or NaN"), "{what}");

    // a gap: file 4 after file 1 leaves 30 minutes without records (the 1 Hz
    // `hf_time` ends at 00:29:59, file 4 starts at 01:00:00)
    assert_eq!(case("gap-ok", &["--gate-max-gap", "900"], &next), None);
    let gap = ["--files", "1", "--start", "4", "--valid-range"];
    let (check, file, what) = case("gap", &["--gate-max-gap", "900"], &gap).unwrap();
    assert_eq!((check.as_str(), file.as_str()), ("gap", nth(4).as_str()));
    assert!(what.contains("30.0 min without records before it (the limit is 15.0 min)"), "{what}");
}

#[test]
fn the_daemon_shows_a_hold_and_goes_on_after_a_drop() {
    let site = Site::new();
    let (watched, stage, repo) = (&site.watched, &site.stage, &site.repo);
    let env = site.env();
    let (w, r) = (watched.to_str().unwrap(), repo.to_str().unwrap());
    let out = floe_env(&["add", w, r, "--gate"], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let _daemon = spawn_daemon(&env, "0.3", "5");
    drop_files(stage, watched, &["--files", "2"]);
    wait_until("two files on main", || {
        status(&env)[0]["files_ingested"] == 2 && files_on(repo, "main") == 2
    });
    let main_before = log_json(repo, "main").len();
    drop_files(stage, watched, &["--files", "1", "--start", "2", "--time-shift", "-10"]);
    wait_until("the hold", || !status(&env)[0]["gate_held"].is_null());
    let s = status(&env);
    assert_eq!(s[0]["gate_held"]["files"], serde_json::json!([nth(2)]), "{s:#}");
    let text = floe_env(&["status"], &env);
    assert!(text.stdout.contains("Held at the gate"), "{}", text.stdout);
    assert!(
        text.stdout.contains(&format!("held: duplicates failed on {}", nth(2))),
        "{}",
        text.stdout
    );
    assert_eq!(log_json(repo, "main").len(), main_before, "main did not move");

    // drop it by the folder's name: the daemon looks again at once and goes on
    let out = floe_env(&["gate", "drop", w], &env);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    wait_until("the hold gone", || status(&env)[0]["gate_held"].is_null());
    drop_files(stage, watched, &["--files", "1", "--start", "3"]);
    wait_until("the next file on main", || {
        log_json(repo, "main")
            .iter()
            .any(|c| c["provenance"]["files"][0]["source"] == nth(3).as_str())
    });
    let text = floe_env(&["status"], &env);
    assert!(!text.stdout.contains("Held at the gate"), "{}", text.stdout);
}

#[test]
fn a_gated_folder_that_drifts_goes_on_gated_in_its_new_branch() {
    let d = tempfile::tempdir().unwrap();
    let (src, stage, repo) = (d.path().join("src"), d.path().join("stage"), d.path().join("repo"));
    let cfg = own_config(d.path());
    let env = [("FLOE_CONFIG", cfg.as_str())];
    let r = repo.to_str().unwrap();
    let policy = ["--on-drift", "branch"];
    make(&src, &["--files", "3"]);
    let before = files(&src, "nc");
    assert_eq!(gated_sync(&src, r, &policy, &env).0, 0);

    // a new firmware writes co2 as float32: the two files go on in a drift branch,
    // through the gate there (its staging branch), and main stays as it was
    make(&stage, &["--files", "2", "--start", "3", "--co2-dtype", "f4"]);
    for i in [3, 4] {
        std::fs::rename(stage.join(nth(i)), src.join(nth(i))).unwrap();
    }
    let (code, report) = gated_sync(&src, r, &policy, &env);
    assert_eq!(code, 0, "{report:#}");
    let branch = "drift-2024-01-01T00-45-00Z";
    assert_eq!(report["switched"][0]["branch"], branch, "{report:#}");
    assert_eq!(report["gate"]["gate"], "promoted", "{report:#}");
    let drifted = vec![path_of(&src, &nth(3)), path_of(&src, &nth(4))];
    assert_repo_equals(&repo, &before, &[]);
    assert_repo_equals(&repo, &drifted, &["--branch", branch]);

    // on the drift branch the gate holds as it does on main: file 5 repeats file
    // 4's last record time; neither main nor the drift branch moves
    make(&stage, &["--files", "1", "--start", "5", "--time-shift", "-10", "--co2-dtype", "f4"]);
    std::fs::rename(stage.join(nth(5)), src.join(nth(5))).unwrap();
    let onward = ["--on-drift", "branch", "--branch", branch];
    let (code, report) = gated_sync(&src, r, &onward, &env);
    assert_eq!(code, 8, "{report:#}");
    let (check, file, _) = held(&report);
    assert_eq!((check.as_str(), file.as_str()), ("duplicates", nth(5).as_str()), "{report:#}");
    assert_repo_equals(&repo, &before, &[]);
    assert_repo_equals(&repo, &drifted, &["--branch", branch]);
    // dropped, it stays out; verify at the drift branch follows the folder back to
    // main for the first three, and counts the dropped file as dropped
    let out = floe_env(&["gate", "drop", r, "--branch", branch], &env);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = src.to_str().unwrap();
    let v = floe_env(&["verify", s, r, "--branch", branch, "--json"], &env);
    let got: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(got["verified"].as_array().unwrap().len(), 5, "{got:#}");
    assert_eq!(got["continued"][0]["verified"], 3, "{got:#}");
    assert_eq!(got["dropped"][0], nth(5).as_str(), "{got:#}");
    assert!(got["findings"].as_array().unwrap().is_empty(), "{got:#}");
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
}
