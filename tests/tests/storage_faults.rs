//! The storage misbehaving under a real `floe sync`, through the fault proxy
//! (tests/src/proxy.rs) between Floe and moto or Azurite.
//!
//! Kills inside Icechunk's commit: the process is SIGKILLed while it waits for the
//! storage to take the commit's manifests, its snapshot, or the branch update (once
//! before the server applies it, once after, with the answer kept from Floe), five
//! times each. After every kill the branch opens and its history has not shrunk;
//! after a plain sync every record is there exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::time::Duration;

use floe_tests::proxy::{Action, Proxy, Rule};
use floe_tests::servers::{Server, az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;

const FILES: usize = 20;

/// The steps of a commit as the storage sees them, and the requests that are they.
const COMMIT_STEPS: &[(&str, &str, Action, [usize; 5])] = &[
    ("manifests written", "/manifests/", Action::Hold, [0, 1, 0, 2, 1]),
    ("snapshot written", "/snapshots/", Action::Hold, [0, 1, 0, 1, 0]),
    ("branch update sent", "/repo", Action::Hold, [0, 1, 0, 1, 0]),
    ("branch update applied, answer lost", "/repo", Action::ForwardThenHold, [0, 0, 1, 0, 0]),
];

/// `floe sync` through the proxy, killed once the proxy holds the request `rule`
/// picks; the held request.
fn kill_at(proxy: &Proxy, rule: Rule, src: &Path, url: &str, env: &[(&str, &str)]) -> String {
    proxy.rule(rule);
    let mut child =
        spawn_floe(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--batch", "2"], env);
    let held = proxy.held(Duration::from_secs(60));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    proxy.release();
    proxy.clear();
    let held = held.unwrap_or_else(|| panic!("the request was never made (floe: {status:?})"));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "floe ended before the kill");
    held.path
}

fn kills_inside_the_commit(server: &Server, url: &str, env: &[(String, String)]) {
    let proxy = Proxy::start(&server.url());
    let through = proxy.env(env);
    let env = pairs(&through);
    for (step, path, action, skips) in COMMIT_STEPS {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        make(&src, &["--files", &FILES.to_string()]);
        let url = format!("{url}-{}", step.replace([' ', ','], "-"));
        // the repository exists, with a commit, before the kills start
        let first = d.path().join("first");
        make(&first, &["--files", "2"]);
        let r = floe_env(&["sync", first.to_str().unwrap(), &url, "--quiet", "0"], &env);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut commits = history_at(&url, &env).len();
        for (i, &skip) in skips.iter().enumerate() {
            // the branch update is the object `repo` itself (`overwritten/repo.*` are
            // its backups)
            let rule = if path.ends_with('/') {
                Rule::put(path, skip, 1, action.clone())
            } else {
                Rule::put_end(path, skip, 1, action.clone())
            };
            let held = kill_at(&proxy, rule, &src, &url, &env);
            assert!(held.contains(path), "{step}: held {held}");
            let now = history_at(&url, &env).len();
            assert!(now >= commits, "{step}, kill {i}: history shrank from {commits} to {now}");
            // the branch update is where it says: the `skip` commits before it landed,
            // and this one too once the server applied it
            match (*path, action) {
                ("/repo", Action::Hold) => assert_eq!(now, commits + skip, "{step}, kill {i}"),
                ("/repo", _) => assert_eq!(now, commits + skip + 1, "{step}, kill {i}"),
                _ => {}
            }
            commits = now;
        }
        let r = floe_env(&["sync", src.to_str().unwrap(), &url, "--quiet", "0"], &env);
        assert_eq!(r.code, 0, "{step}: the sync after the kills: {}", r.stderr);
        let h = history_at(&url, &env);
        each_file_once(&h, FILES);
        // the first two files came from the other folder: same names, same bytes
        assert_url_equals(&url, &files(&src, "nc"), &[], &env);
    }
}

#[test]
fn killed_inside_the_commit_on_s3() {
    let server = moto_bucket("floe-faults");
    kills_inside_the_commit(&server, "s3://floe-faults/site", &s3_env(&server));
}

#[test]
fn killed_inside_the_commit_on_azure() {
    let server = azurite_container("floe-faults");
    kills_inside_the_commit(&server, "az://floe-faults/site", &az_env(&server));
}

/// How the storage misbehaves, and for how many requests.
const OUTAGES: &[(&str, Action, usize)] = &[
    ("503 Service Unavailable", Action::Status(503), 6),
    ("500 Internal Server Error", Action::Status(500), 6),
    ("connections reset", Action::Reset, 4),
    ("answers cut half-way", Action::Cut, 3),
    ("stalled requests", Action::Stall(Duration::from_secs(2)), 4),
];

/// Chunk uploads the storage has seen so far.
fn chunk_puts(proxy: &Proxy) -> usize {
    proxy.log().iter().filter(|s| s.method == "PUT" && s.path.contains("/chunks/")).count()
}

/// A sync whose storage misbehaves from the middle of its chunk uploads on: it
/// retries, finishes, and holds every record once. The proxy's log shows the fault
/// fired and each refused request was made again.
fn outages_mid_upload(server: &Server, url: &str, env: &[(String, String)]) {
    let proxy = Proxy::start(&server.url());
    let through = proxy.env(env);
    let env = pairs(&through);
    for (what, action, times) in OUTAGES {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        make(&src, &["--files", "6", "--records", "500", "--hf", "5000"]);
        let url = format!("{url}-{}", what.replace([' ', '-'], "_"));
        let args = ["sync", src.to_str().unwrap(), &url, "--quiet", "0", "--batch", "3"];
        let child = spawn_floe(&[&args[..], &["--chunk-mib", "0.01"]].concat(), &env);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let before = chunk_puts(&proxy);
        while chunk_puts(&proxy) < before + 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        proxy.rule(Rule::all(action.clone(), *times));
        let out = child.wait_with_output().unwrap();
        proxy.clear();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: the sync did not recover:\n{stderr}");
        let log = proxy.log();
        let hit: Vec<_> = log.iter().filter(|s| s.action == *action).collect();
        assert_eq!(hit.len(), *times, "{what}: the fault fired {} times", hit.len());
        // it began mid-upload: chunks went up before it and after it
        let chunks: Vec<_> = log
            .iter()
            .filter(|s| s.path.contains(&url[5..]))
            .filter(|s| s.method == "PUT" && s.path.contains("/chunks/"))
            .collect();
        let first = hit[0].at;
        assert!(chunks.iter().any(|s| s.at < first), "{what}: no chunk upload before it");
        assert!(chunks.iter().any(|s| s.at > first), "{what}: no chunk upload after it");
        // a stalled request goes on after its stall (shorter than the client's timeout);
        // every other one was refused and must have been made again
        for h in hit.iter().filter(|h| !matches!(h.action, Action::Stall(_))) {
            assert!(
                log.iter().any(|s| s.at > h.at
                    && s.action == Action::Forward
                    && s.method == h.method
                    && s.path == h.path),
                "{what}: {} {} was not made again",
                h.method,
                h.path
            );
        }
        each_file_once(&history_at(&url, &env), 6);
        assert_url_equals(&url, &files(&src, "nc"), &[], &env);
    }
}

#[test]
fn outages_that_start_mid_upload_are_retried_on_s3() {
    let server = moto_bucket("floe-outage");
    outages_mid_upload(&server, "s3://floe-outage/site", &s3_env(&server));
}

#[test]
fn outages_that_start_mid_upload_are_retried_on_azure() {
    let server = azurite_container("floe-outage");
    outages_mid_upload(&server, "az://floe-outage/site", &az_env(&server));
}

/// The daemon under a storage that answers 503 to everything: once its client gives
/// up retrying, the folder is offline because the storage is failing (not stopped
/// for the user to act), `floe status` says so, and when the storage recovers the
/// folder catches up with every record once.
#[test]
fn a_failing_storage_puts_the_daemon_offline_and_it_says_why() {
    use floe_tests::daemon::{drop_files, spawn_daemon, status, wait_until};
    let server = moto_bucket("floe-failing");
    let proxy = Proxy::start(&server.url());
    let d = tempfile::tempdir().unwrap();
    let (watched, stage) = (d.path().join("in"), d.path().join("stage"));
    std::fs::create_dir_all(&watched).unwrap();
    let (cfg, run) = (d.path().join("config.toml"), d.path().join("run"));
    let mut env = vec![
        ("FLOE_CONFIG".to_string(), cfg.to_str().unwrap().to_string()),
        ("FLOE_RUNTIME_DIR".to_string(), run.to_str().unwrap().to_string()),
    ];
    env.extend(proxy.env(&s3_env(&server)));
    let env = pairs(&env);
    let url = "s3://floe-failing/site";
    assert_eq!(floe_env(&["add", watched.to_str().unwrap(), url], &env).code, 0);
    drop_files(&stage, &watched, &["--files", "2"]);
    let _daemon = spawn_daemon(&env, "0", "1");
    wait_until("two files", || status(&env)[0]["files_ingested"] == 2);

    proxy.rule(Rule::all(Action::Status(503), usize::MAX));
    drop_files(&stage, &watched, &["--files", "2", "--start", "2"]);
    wait_until("offline, the storage failing", || {
        let s = status(&env);
        s[0]["state"]["state"] == "offline" && s[0]["state"]["cause"] == "failing"
    });
    let words = floe_env(&["status"], &env);
    assert!(words.stdout.contains("The storage is failing"), "{}", words.stdout);
    assert!(words.stdout.contains("503"), "the status names the answer: {}", words.stdout);

    proxy.clear();
    wait_until("all four files", || status(&env)[0]["files_ingested"] == 4);
    each_file_once(&history_at(url, &env), 4);
    assert_url_equals(url, &files(&watched, "nc"), &[], &env[2..]);
}

/// Another writer wins every race: each time Floe's commit is about to move the
/// branch (the proxy holds that request), the other writer commits a change to the
/// same array first. Floe replays its batch on top, conflicts again, and after its
/// replays gives up with exit 5 and the conflict message; the branch is intact (it
/// opens, with the other writer's commits and nothing of Floe's batch), and once the
/// other writer stops, a sync takes the file.
#[test]
fn a_writer_that_always_wins_makes_floe_give_up_with_the_branch_intact() {
    let server = azurite_container("floe-race");
    let proxy = Proxy::start(&server.url());
    let direct = az_env(&server);
    let through = proxy.env(&direct);
    let (direct, env) = (pairs(&direct), pairs(&through));
    let url = "az://floe-race/site";
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "2"]);
    let first = floe_env(
        &["sync", src.to_str().unwrap(), url, "--quiet", "0", "--pattern", "*_0000.nc"],
        &env,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = history_at(url, &env).len();

    proxy.rule(Rule::put_end("/repo", 0, usize::MAX, Action::HoldThenForward));
    let mut child = spawn_floe(&["sync", src.to_str().unwrap(), url, "--quiet", "0"], &env);
    let mut won = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "floe neither committed nor gave up");
        if proxy.held(Duration::from_millis(200)).is_some() {
            won += 1;
            let r = py_env("compete.py", &[url, "time", &won.to_string()], &direct);
            assert_eq!(r.code, 0, "the other writer: {}", r.stderr);
            proxy.release();
        }
    }
    proxy.clear();
    proxy.release();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("another writer keeps committing"), "{stderr}");
    assert!(won >= 5, "Floe gave up after {won} lost races, not after its replays");

    let h = history_at(url, &env);
    assert_eq!(h.len(), before + won, "the branch holds the other writer's commits");
    each_file_once(&h, 1);

    let r = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--json"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    each_file_once(&history_at(url, &env), 2);
}

/// Two folders syncing at once (`parallel_folders = 2`) share one upload limit, as
/// the storage sees it: the proxy's log of the chunk uploads into both repositories
/// shows them overlapping in time, and their bytes together within the limit (a
/// second's worth may go at once).
#[test]
fn two_folders_upload_side_by_side_within_one_shared_limit() {
    use floe_tests::daemon::{spawn_daemon, status, wait_until};
    let server = moto_bucket("floe-budget");
    let proxy = Proxy::start(&server.url());
    let d = tempfile::tempdir().unwrap();
    let (cfg, run) = (d.path().join("config.toml"), d.path().join("run"));
    let mut env = vec![
        ("FLOE_CONFIG".to_string(), cfg.to_str().unwrap().to_string()),
        ("FLOE_RUNTIME_DIR".to_string(), run.to_str().unwrap().to_string()),
    ];
    env.extend(proxy.env(&s3_env(&server)));
    let env = pairs(&env);
    for (site, seed) in [("a", "1"), ("b", "2")] {
        let watched = d.path().join(site);
        // incompressible data: what is written is what is uploaded
        // (24 files: a backlog goes in one commit, whose chunks pack the records
        // tighter than a commit per file did)
        make(&watched, &["--files", "24", "--records", "200", "--hf", "10", "--seed", seed]);
        age(&watched);
        let url = format!("s3://floe-budget/site-{site}");
        assert_eq!(floe_env(&["add", watched.to_str().unwrap(), &url], &env).code, 0);
    }
    let limit: u64 = 256 << 10;
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("parallel_folders") && !l.starts_with("upload_bytes_per_sec"))
        .map(|l| match l {
            "[limits]" => {
                format!("[limits]\nupload_bytes_per_sec = {limit}\nparallel_folders = 2\n")
            }
            other => format!("{other}\n"),
        })
        .collect();
    std::fs::write(&cfg, &text).unwrap();
    assert!(text.contains("parallel_folders = 2"), "{text}");
    let _daemon = spawn_daemon(&env, "0", "30");
    wait_until("both folders", || {
        let s = status(&env);
        s[0]["files_ingested"] == 24 && s[1]["files_ingested"] == 24
    });
    let puts: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|s| s.method == "PUT" && s.path.contains("/chunks/"))
        .collect();
    let span = |site: &str| {
        let times: Vec<_> = puts.iter().filter(|s| s.path.contains(site)).map(|s| s.at).collect();
        (*times.iter().min().unwrap(), *times.iter().max().unwrap())
    };
    let ((a0, a1), (b0, b1)) = (span("/site-a/"), span("/site-b/"));
    assert!(a0 < b1 && b0 < a1, "the two folders' uploads did not overlap");
    let bytes: u64 = puts.iter().map(|s| s.body_bytes as u64).sum();
    let first = puts.iter().map(|s| s.at).min().unwrap();
    let last = puts.iter().map(|s| s.at).max().unwrap();
    let secs = (last - first).as_secs_f64();
    let floor = bytes.saturating_sub(limit) as f64 / limit as f64;
    println!("{bytes} chunk bytes from two folders in {secs:.1} s at a shared {limit} B/s");
    assert!(bytes > 4 * limit, "too little data to see the limit: {bytes}");
    assert!(secs >= floor * 0.9, "{bytes} bytes in {secs:.1} s: the limit is not shared");
}
