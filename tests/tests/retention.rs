//! A repository's size stays bounded: `floe expire` + `floe gc` bring a day
//! committed file by file down to the size of the same day committed at once, and
//! what the expired commits ingested stays known (a sync takes nothing twice,
//! verify passes); `floe delete` overwrites a time window so that, after expire +
//! gc, no chunk object in the storage holds its values, unless a tag still does (named,
//! `--untag` removes it); gc with its grace period loses nothing a concurrent writer
//! commits. Local, S3 (moto) and Azurite; sizes and scans read with the storages' own
//! clients and the Python reference readers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use floe_tests::mount::Mount;
use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;
use serde_json::Value;

/// Every object of the repository's storage, by key, as the storage lists it.
fn objects(url: &str, env: &[(&str, &str)]) -> BTreeMap<String, u64> {
    let r = py_env("retention.py", &["objects", url], env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn bytes_of(o: &BTreeMap<String, u64>, prefix: &str) -> u64 {
    o.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let r = floe_env(args, env);
    assert_eq!(r.code, 0, "floe {args:?}: {}\n{}", r.stdout, r.stderr);
    r.stdout
}

fn json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(&a, env)).unwrap()
}

/// (found, of): the window's co2 values found in decompressed chunk objects.
fn scan(url: &str, src: &Path, from: &str, to: &str, env: &[(&str, &str)]) -> (u64, u64) {
    let mut a = vec!["scan", url];
    let f = files(src, "nc");
    a.extend(f.iter().map(String::as_str));
    a.extend(["--var", "co2", "--from", from, "--to", to]);
    let r = py_env("retention.py", &a, env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    (v["found"].as_u64().unwrap(), v["of"].as_u64().unwrap())
}

fn window_check(url: &str, src: &Path, from: &str, to: &str, env: &[(&str, &str)]) {
    let mut a = vec!["window", url];
    let f = files(src, "nc");
    a.extend(f.iter().map(String::as_str));
    a.extend(["--from", from, "--to", to]);
    let r = py_env("retention.py", &a, env);
    assert!(r.code == 0 && r.stdout.contains("OK"), "{}\n{}", r.stdout, r.stderr);
}

fn expire_and_gc(url: &str, env: &[(&str, &str)]) -> (Value, Value) {
    let e = json(&["expire", url, "--older-than", "0s"], env);
    let g = json(&["gc", url, "--grace", "0s"], env);
    (e, g)
}

/// A day of 15-minute files committed one per file, then expired and collected:
/// no bigger than 1.2x the same day committed in one batch; every record still
/// reads back, nothing is taken again, verify passes.
fn bounded(url: &str, batched: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "96"]);
    let s = src.to_str().unwrap();
    let (code, report) = sync_url_json(&src, url, &["--batch", "1"], env);
    assert_eq!(code, 0, "{report:#}");
    let (code, report) = sync_url_json(&src, batched, &[], env);
    assert_eq!(code, 0, "{report:#}");
    let before = objects(url, env);
    let one_batch = bytes_of(&objects(batched, env), "");
    let du = json(&["du", url], env);
    assert_eq!(du["total"]["bytes"].as_u64().unwrap(), bytes_of(&before, ""), "du counts it all");

    let (e, g) = expire_and_gc(url, env);
    assert_eq!(e["expired"].as_array().unwrap().len(), 95, "all but the tip: {e:#}");
    let after = objects(url, env);
    let (total, overwritten) = (bytes_of(&before, ""), bytes_of(&before, "overwritten/"));
    let size = bytes_of(&after, "");
    eprintln!(
        "{url}: one commit per file {total} B ({:.1}% overwritten/), after expire 0s + gc 0s \
         {size} B, one batch {one_batch} B: {:.2}x the batched size; gc freed {} B",
        100.0 * overwritten as f64 / total as f64,
        size as f64 / one_batch as f64,
        g["bytes_freed"]
    );
    assert!(size as f64 <= 1.2 * one_batch as f64, "{size} B against {one_batch} B batched");
    // expire and gc write a little of their own (the archive, the repo info)
    let freed = g["bytes_freed"].as_u64().unwrap();
    assert!(freed >= total - size && freed < total - size + 64 * 1024, "{g:#}");
    assert!(!after.keys().any(|k| k.starts_with("overwritten/")), "copies collected");
    assert!(du["expire_and_gc_frees"].as_u64().unwrap() <= total - size + 64 * 1024, "{du:#}");

    assert_url_equals(url, &files(&src, "nc"), &[], env);
    let (code, report) = sync_url_json(&src, url, &["--batch", "1"], env);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 0, "nothing twice: {report:#}");
    let v = floe_env(&["verify", s, url], env);
    assert_eq!(v.code, 0, "{}\n{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("96 of 96 files verified"), "{}", v.stdout);
    let log = history_at(url, env);
    assert_eq!(log.len(), 2, "the tip and the first commit are snapshots still");
}

#[test]
fn a_day_committed_file_by_file_shrinks_to_the_batched_size() {
    let d = tempfile::tempdir().unwrap();
    let (one, all) = (d.path().join("one"), d.path().join("all"));
    bounded(one.to_str().unwrap(), all.to_str().unwrap(), &[]);
}

#[test]
fn expire_and_gc_bound_repositories_on_s3_and_azure() {
    let server = moto_bucket("floe-keep");
    bounded("s3://floe-keep/lab/one", "s3://floe-keep/lab/all", &pairs(&s3_env(&server)));
    let server = azurite_container("floe-keep");
    bounded("az://floe-keep/lab/one", "az://floe-keep/lab/all", &pairs(&az_env(&server)));
}

const FROM: &str = "2024-01-01T00:35:00Z";
const TO: &str = "2024-01-01T01:05:00Z";

/// Delete a window that cuts through files; a tag keeps its values alive until
/// `--untag`; after expire + gc no chunk object holds them.
fn deleted_for_good(url: &str, env: &[(&str, &str)], mount: bool) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "8"]);
    let (code, report) = sync_url_json(&src, url, &["--batch", "1"], env);
    assert_eq!(code, 0, "{report:#}");
    let r = py_env("retention.py", &["tag", url, "calibration-2024"], env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (found, of) = scan(url, &src, FROM, TO, env);
    assert!(of == 180 && found == of, "the scan sees the values before: {found} of {of}");

    let why = "inlet switched to calibration gas";
    let rep = json(&["delete", url, "--from", FROM, "--to", TO, "--reason", why], env);
    assert_eq!(rep["record"]["records"]["/time"], 180, "{rep:#}");
    assert_eq!(rep["record"]["records"]["/hf_time"], 1800, "{rep:#}");
    assert_eq!(rep["holders"][0]["name"], "calibration-2024", "the tag is named: {rep:#}");
    window_check(url, &src, FROM, TO, env);
    let v = floe_env(&["verify", src.to_str().unwrap(), url], env);
    assert_eq!(v.code, 0, "deleted on purpose is not damage: {}\n{}", v.stdout, v.stderr);
    let log = history_at(url, env);
    assert_eq!(log[0]["provenance"]["deletion"]["reason"], why, "{:#}", log[0]);
    assert_eq!(log[0]["provenance"]["deletion"]["from"], FROM);

    expire_and_gc(url, env);
    let (found, _) = scan(url, &src, FROM, TO, env);
    assert_eq!(found, of, "the tag keeps them alive");
    let rep = json(&["delete", url, "--from", FROM, "--to", TO, "--reason", why, "--untag"], env);
    assert_eq!(rep["record"]["untagged"], serde_json::json!(["calibration-2024"]), "{rep:#}");
    assert!(rep["holders"].as_array().unwrap().is_empty(), "{rep:#}");
    let (e, _) = expire_and_gc(url, env);
    let (found, _) = scan(url, &src, FROM, TO, env);
    assert_eq!(found, 0, "none of the {of} deleted values is left in the storage: {e:#}");
    window_check(url, &src, FROM, TO, env);
    let (code, report) = sync_url_json(&src, url, &[], env);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 0, "nothing again: {report:#}");
    if mount {
        let log = history_at(url, env);
        let live: Vec<&str> = log.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let m = Mount::start(url, &d.path().join("mnt"), &[], env);
        let mut shown: Vec<String> = std::fs::read_dir(m.path("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        shown.sort();
        assert_eq!(shown.len(), live.len(), "only the live snapshots: {shown:?} {live:?}");
        assert!(shown.iter().all(|s| live.iter().any(|l| s.contains(l))), "{shown:?} {live:?}");
        assert!(m.path("tags").read_dir().unwrap().next().is_none(), "the tag is gone");
    }
}

#[test]
fn a_deleted_window_is_gone_from_the_storage_after_expire_and_gc() {
    let d = tempfile::tempdir().unwrap();
    deleted_for_good(d.path().join("repo").to_str().unwrap(), &[], true);
}

#[test]
fn a_deleted_window_is_gone_from_s3_and_azure() {
    let server = moto_bucket("floe-del");
    deleted_for_good("s3://floe-del/lab/ghg", &pairs(&s3_env(&server)), false);
    let server = azurite_container("floe-del");
    deleted_for_good("az://floe-del/lab/ghg", &pairs(&az_env(&server)), false);
}

/// Expire and gc (default grace) again and again while another process commits
/// one file at a time: every file arrives, once, and reads back. On an object store
/// they run beside the writer; a local repository (whose storage does not make
/// conditional writes atomic) refuses them while a writer holds it.
fn concurrent_writer(url: &str, env: &[(&str, &str)], local: bool) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "48"]);
    let s = src.to_str().unwrap();
    let mut writer = spawn_floe(&["sync", s, url, "--batch", "1", "--quiet", "0"], env);
    let (mut rounds, mut refused, mut freed) = (0, 0, 0);
    while writer.try_wait().unwrap().is_none() {
        if floe_env(&["log", url], env).code != 0 {
            continue; // not created yet
        }
        let e = floe_env(&["expire", url, "--older-than", "0s"], env);
        if e.code != 0 {
            assert!(local && e.stderr.contains("another Floe process is writing"), "{}", e.stderr);
            refused += 1;
            continue;
        }
        let g = floe_env(&["gc", url, "--json"], env);
        if g.code != 0 {
            assert!(local && g.stderr.contains("another Floe process is writing"), "{}", g.stderr);
            refused += 1;
            continue;
        }
        let g: Value = serde_json::from_str(&g.stdout).unwrap();
        freed += g["bytes_freed"].as_u64().unwrap();
        rounds += 1;
    }
    let out = writer.wait_with_output().unwrap();
    assert!(out.status.success(), "the writer finished: {}", String::from_utf8_lossy(&out.stderr));
    if local {
        assert!(refused >= 2, "refused while the writer held the repository ({refused})");
    } else {
        assert!(rounds >= 2, "gc ran while the writer committed ({rounds} rounds)");
    }
    eprintln!(
        "{url}: {rounds} expire + gc rounds and {refused} refused during 48 commits, {freed} B freed"
    );
    ok(&["expire", url, "--older-than", "0s"], env);
    ok(&["gc", url], env);
    assert_url_equals(url, &files(&src, "nc"), &[], env);
    let (code, report) = sync_url_json(&src, url, &[], env);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 0, "each file once: {report:#}");
}

#[test]
fn gc_loses_nothing_a_concurrent_writer_commits() {
    let server = moto_bucket("floe-conc");
    concurrent_writer("s3://floe-conc/lab/ghg", &pairs(&s3_env(&server)), false);
    let server = azurite_container("floe-conc");
    concurrent_writer("az://floe-conc/lab/ghg", &pairs(&az_env(&server)), false);
    let d = tempfile::tempdir().unwrap();
    concurrent_writer(d.path().join("repo").to_str().unwrap(), &[], true);
}

/// The daemon's `--keep`: a week of files arriving a "day" (a few seconds here) at
/// a time, with `--keep` one such day: retention runs between the commits, the
/// status says what it freed, the repository stays near the batched size, and every
/// record is there once. (Scaled: Icechunk stamps snapshots with the real clock.)
#[test]
fn the_daemon_keeps_a_bounded_history() {
    use floe_tests::daemon::{Site, drop_files, spawn_daemon, status, wait_until};
    let site = Site::new();
    let env = site.env();
    let (w, r) = (site.watched.to_str().unwrap(), site.repo.to_str().unwrap());
    let day = std::time::Duration::from_secs(3);
    let add = floe_env(&["add", w, r, "--keep", "3s"], &env);
    assert_eq!(add.code, 0, "{}\n{}", add.stdout, add.stderr);
    let _daemon = spawn_daemon(&env, "0", "2");
    let per_day = 12;
    for d in 0..7 {
        let start = (d * per_day).to_string();
        drop_files(&site.stage, &site.watched, &["--files", "12", "--start", &start]);
        let want = (d + 1) * per_day;
        wait_until("the day's files", || status(&env)[0]["files_ingested"] == want);
        std::thread::sleep(day);
    }
    wait_until("a retention run that freed something", || {
        let s = status(&env);
        s[0]["last_retention"]["bytes_freed"].as_u64().is_some_and(|b| b > 0)
    });
    let s = status(&env);
    assert!(s[0]["last_retention"]["error"].is_null(), "{s:#}");
    let text = floe_env(&["status"], &env);
    assert!(text.stdout.contains("History trimmed at"), "{}", text.stdout);
    drop(_daemon);

    let all = site.dir.path().join("all");
    let (code, report) = sync_url_json(&site.watched, all.to_str().unwrap(), &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    let (size, batched) =
        (bytes_of(&objects(r, &[]), ""), bytes_of(&objects(all.to_str().unwrap(), &[]), ""));
    let commits = history_at(r, &[]).len();
    eprintln!(
        "a week of 84 files one commit each, --keep one day: {size} B against {batched} B \
         batched ({:.2}x), {commits} snapshots left",
        size as f64 / batched as f64
    );
    assert!((size as f64) < 2.0 * batched as f64, "{size} B against {batched} B");
    assert_url_equals(r, &files(&site.watched, "nc"), &[], &[]);
    let (code, report) = sync_url_json(&site.watched, r, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ingested"].as_array().unwrap().len(), 0, "each file once: {report:#}");
}
