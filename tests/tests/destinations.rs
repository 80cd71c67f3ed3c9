//! One end-to-end suite, three destinations: a local repository, S3 (moto) and
//! Azure Blob (Azurite) on loopback. Files are dropped into a watched folder while
//! `floe daemon` runs, one of them written slowly by a Python process that holds it
//! open; Python icechunk + xarray then find the repository equal to the sources.
//! Also here: the commit cadence and the upload limit, which the daemon applies to
//! any destination.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe_tests::daemon::*;
use floe_tests::servers::{azurite, moto};
use floe_tests::*;

/// Drop files, one of them still being written, and check the result.
fn suite(repo: &str, server_env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let (watched, stage) = (d.path().join("in"), d.path().join("stage"));
    std::fs::create_dir_all(&watched).unwrap();
    let (cfg, run) = (d.path().join("config.toml"), d.path().join("run"));
    let mut env =
        vec![("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    env.extend_from_slice(server_env);
    let r = floe_env(&["add", watched.to_str().unwrap(), repo], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);

    drop_files(&stage, &watched, &["--files", "2"]);
    let _daemon = spawn_daemon(&env, "0.5", "5");
    wait_until("the first two files", || status(&env)[0]["files_ingested"] == 2);

    // an instrument writing in place, slowly, holding the file open
    let mut writer = Command::new(python())
        .arg(root().join("tests/python/make_fixtures.py"))
        .arg(&watched)
        .args(["--files", "1", "--start", "2", "--hold", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(writer.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "READY");
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let s = status(&env);
    assert_eq!(s[0]["files_ingested"], 2, "a file still being written was taken: {s}");
    assert!(writer.wait().unwrap().success());
    wait_until("the slowly written file", || status(&env)[0]["files_ingested"] == 3);
    assert!(opened.elapsed() > Duration::from_secs(4));

    drop_files(&stage, &watched, &["--files", "2", "--start", "3"]);
    wait_until("all five files", || {
        let s = status(&env);
        s[0]["files_ingested"] == 5 && s[0]["state"]["state"] == "idle"
    });
    assert_url_equals(repo, &files(&watched, "nc"), &[], server_env);
}

#[test]
fn into_a_local_repository() {
    let d = tempfile::tempdir().unwrap();
    suite(d.path().join("repo").to_str().unwrap(), &[]);
}

#[test]
fn into_s3() {
    let server = moto();
    assert_eq!(py("storage.py", &["s3-bucket", &server.url(), "lab"]).code, 0);
    let url = server.url();
    suite(
        "s3://lab/site-a",
        &[
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
}

#[test]
fn into_azure_blob() {
    let server = azurite();
    assert_eq!(py("storage.py", &["az-container", &server.url(), "lab"]).code, 0);
    let url = server.url();
    suite(
        "az://lab/site-a",
        &[("AZURE_STORAGE_USE_EMULATOR", "true"), ("AZURITE_BLOB_STORAGE_URL", url.as_str())],
    );
}

fn commits(repo: &std::path::Path) -> Vec<usize> {
    // files per commit, oldest first (the first commit is the repository's creation)
    let mut v: Vec<usize> = log_json(repo, "main")
        .iter()
        .map(|c| c["provenance"]["files"].as_array().map_or(0, Vec::len))
        .collect();
    v.reverse();
    v
}

#[test]
fn the_commit_cadence_is_a_trigger_by_count_and_age_and_a_due_commit_takes_all_waiting() {
    let site = Site::new();
    let (watched, stage, repo) = (site.watched.clone(), site.stage.clone(), site.repo.clone());
    let env = site.env();
    let r = floe_env(
        &[
            "add",
            watched.to_str().unwrap(),
            repo.to_str().unwrap(),
            "--commit-files",
            "3",
            "--commit-max-wait",
            "6",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let _daemon = spawn_daemon(&env, "0.3", "30");

    // two files: not enough for a commit, and not old enough
    drop_files(&stage, &watched, &["--files", "2"]);
    wait_until("the two files held", || status(&env)[0]["state"]["state"] == "waiting");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!repo.exists() || commits(&repo).iter().sum::<usize>() == 0);
    // the third makes a commit due, and it takes the three
    drop_files(&stage, &watched, &["--files", "1", "--start", "2"]);
    wait_until("a commit of three", || status(&env)[0]["files_ingested"] == 3);
    assert_eq!(commits(&repo), vec![0, 3]);
    // seven at once: the trigger is due at three, and a due commit takes everything
    // waiting (seven, or the files quiet by then and the rest at the next: never a
    // commit of fewer than three, never one short of what waited)
    drop_files(&stage, &watched, &["--files", "7", "--start", "3"]);
    wait_until("the seven", || status(&env)[0]["files_ingested"] == 10);
    let after = commits(&repo)[2..].to_vec();
    assert_eq!(after.iter().sum::<usize>(), 7, "{after:?}");
    assert!(after.len() <= 2 && after.iter().all(|&n| n >= 3), "{after:?}");
    // one alone waits for the age limit
    let t = Instant::now();
    drop_files(&stage, &watched, &["--files", "1", "--start", "10"]);
    wait_until("the straggler, when due", || status(&env)[0]["files_ingested"] == 11);
    assert!(t.elapsed() > Duration::from_secs(5), "the straggler went early: {:?}", t.elapsed());
    assert_eq!(commits(&repo).last(), Some(&1));
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);
}

#[test]
fn a_backlog_after_an_outage_goes_in_one_commit_and_a_file_alone_at_once() {
    // the default cadence (a commit as soon as a file is complete): files that piled
    // up while the daemon was not running are taken in one commit when it starts,
    // not one commit each; then a file alone is committed by itself
    let site = Site::new();
    let (watched, stage, repo) = (site.watched.clone(), site.stage.clone(), site.repo.clone());
    let env = site.env();
    let r = floe_env(&["add", watched.to_str().unwrap(), repo.to_str().unwrap()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    drop_files(&stage, &watched, &["--files", "24"]);
    std::thread::sleep(Duration::from_secs(1)); // all quiet when the daemon looks
    let _daemon = spawn_daemon(&env, "0.3", "30");
    wait_until("the backlog", || status(&env)[0]["files_ingested"] == 24);
    assert_eq!(commits(&repo), vec![0, 24]);
    drop_files(&stage, &watched, &["--files", "1", "--start", "24"]);
    wait_until("the file alone", || status(&env)[0]["files_ingested"] == 25);
    assert_eq!(commits(&repo), vec![0, 24, 1]);
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);
}

fn du(path: &std::path::Path) -> u64 {
    walk(path).iter().map(|p| p.metadata().map_or(0, |m| m.len())).sum()
}

fn walk(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn the_upload_limit_holds_the_daemon_to_its_rate() {
    let d = tempfile::tempdir().unwrap();
    let (watched, repo) = (d.path().join("in"), d.path().join("repo"));
    // incompressible data: what is written is what is uploaded
    make(&watched, &["--files", "20", "--records", "200", "--hf", "10"]);
    age(&watched);
    let (cfg, run) = (d.path().join("config.toml"), d.path().join("run"));
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    assert_eq!(floe_env(&["add", watched.to_str().unwrap(), repo.to_str().unwrap()], &env).code, 0);
    let limit: u64 = 256 << 10;
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("[limits]\n", &format!("[limits]\nupload_bytes_per_sec = {limit}\n"));
    assert!(text.contains("upload_bytes_per_sec"), "{text}");
    std::fs::write(&cfg, text).unwrap();
    let t = Instant::now();
    let _daemon = spawn_daemon(&env, "0", "30");
    wait_until("all the files", || status(&env)[0]["files_ingested"] == 20);
    let secs = t.elapsed().as_secs_f64();
    let chunks: u64 =
        walk(&repo.join("chunks")).iter().map(|p| p.metadata().map_or(0, |m| m.len())).sum();
    // a second's worth may go at once; the rest at the limit
    let floor = (chunks.saturating_sub(limit)) as f64 / limit as f64;
    eprintln!(
        "{chunks} chunk bytes in {secs:.1} s at a limit of {limit} B/s (floor {floor:.1} s); repo {}",
        du(&repo)
    );
    assert!(chunks > 3 * limit, "too little data to see the limit: {chunks}");
    assert!(secs >= floor * 0.9, "{chunks} bytes in {secs:.1} s beat the limit");
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);
}

/// The history as Python icechunk reads it, oldest first: per commit, the size in
/// bytes of each source file it took.
fn commit_sizes(repo: &std::path::Path) -> Vec<Vec<u64>> {
    let r = py("history.py", &[repo.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let history: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["files"].as_array().unwrap().iter().map(|f| f[1].as_u64().unwrap()).collect())
        .collect()
}

#[test]
fn the_commit_cadence_batches_by_bytes_as_the_repository_records() {
    // files of about 280 kB: `--commit-mb 0.6` commits once 0.6 MB are waiting (the
    // third file), `--commit-max-mb 0.9` never puts more than 0.9 MB in one commit, and
    // `floe sync --batch-mb 0.5` closes a commit once it holds 0.5 MB. What each
    // commit holds is read back with Python icechunk, not from Floe's own log.
    let site = Site::new();
    let (watched, stage, repo) = (site.watched.clone(), site.stage.clone(), site.repo.clone());
    let env = site.env();
    let fixture = ["--records", "500", "--hf", "5000"];
    let args = [
        "add",
        watched.to_str().unwrap(),
        repo.to_str().unwrap(),
        "--commit-files",
        "100",
        "--commit-mb",
        "0.6",
        "--commit-max-mb",
        "0.9",
        "--commit-max-wait",
        "600",
    ];
    assert_eq!(floe_env(&args, &env).code, 0);
    let _daemon = spawn_daemon(&env, "0.3", "30");
    let mut two = vec!["--files", "2"];
    two.extend_from_slice(&fixture);
    drop_files(&stage, &watched, &two);
    wait_until("two files held", || status(&env)[0]["state"]["state"] == "waiting");
    let mut one = vec!["--files", "1", "--start", "2"];
    one.extend_from_slice(&fixture);
    drop_files(&stage, &watched, &one);
    wait_until("a commit by bytes", || status(&env)[0]["files_ingested"] == 3);
    let sizes = commit_sizes(&repo);
    let held: Vec<usize> = sizes.iter().map(Vec::len).collect();
    let bytes: Vec<u64> = sizes.iter().map(|c| c.iter().sum()).collect();
    println!("daemon commits (files): {held:?}, bytes {bytes:?}");
    // 0.6 MB were waiting with the third file; at most 0.9 MB went into one commit
    assert_eq!(held.iter().sum::<usize>(), 3);
    assert!(bytes.iter().all(|&b| b <= 900_000), "a commit over --commit-max-mb: {bytes:?}");
    assert_eq!(held[0], 0, "the repository's creation");
    assert!(held.len() >= 2 && held[1] >= 2, "the first commit waited for 0.6 MB: {held:?}");
    // six at once (1.7 MB): split so that no commit holds more than 0.9 MB
    let mut six = vec!["--files", "6", "--start", "3"];
    six.extend_from_slice(&fixture);
    drop_files(&stage, &watched, &six);
    wait_until("nine files", || status(&env)[0]["files_ingested"] == 9);
    let sizes = commit_sizes(&repo);
    let bytes: Vec<u64> = sizes.iter().map(|c| c.iter().sum()).collect();
    println!("after six more, bytes per commit {bytes:?}");
    assert!(bytes.iter().all(|&b| b <= 900_000), "a commit over --commit-max-mb: {bytes:?}");
    assert!(sizes.len() >= 4, "1.7 MB needed at least two more commits: {bytes:?}");
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);

    // one-shot: --batch-mb 0.5 closes each commit once it holds 0.5 MB
    let (src, repo2) = (site.dir.path().join("src"), site.dir.path().join("repo2"));
    let mut seven = vec!["--files", "7"];
    seven.extend_from_slice(&fixture);
    make(&src, &seven);
    let (code, report) = sync_json(&src, &repo2, &["--batch-mb", "0.5"]);
    assert_eq!(code, 0, "{report}");
    let sizes = commit_sizes(&repo2);
    let per: Vec<usize> = sizes.iter().skip(1).map(Vec::len).collect();
    println!("sync --batch-mb 0.5 commits (files): {per:?}");
    assert_eq!(per, vec![2, 2, 2, 1], "each commit closed once it held 0.5 MB");
    assert_repo_equals(&repo2, &files(&src, "nc"), &[]);
}
