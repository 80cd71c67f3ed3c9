//! `floe daemon` runs the registered folders unattended: files dropped into a watched
//! folder are committed, `floe status` shows it, pause and resume act on the running
//! daemon, a second daemon is refused, and SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use floe_tests::daemon::*;
use floe_tests::*;

#[test]
fn the_daemon_syncs_dropped_files_and_obeys_pause_resume_and_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let (watched, stage, repo) =
        (d.path().join("in"), d.path().join("stage"), d.path().join("repo"));
    std::fs::create_dir_all(&watched).unwrap();
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    // commits of at most 0.1 MB: a file of 83 kB each, and the backlog below (45 kB
    // files) in 30 commits, so that a pause can land in the middle of it (a due
    // commit takes everything waiting, up to this)
    let (w, r) = (watched.to_str().unwrap(), repo.to_str().unwrap());
    let r = floe_env(&["add", w, r, "--commit-max-mb", "0.1"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // a file that was there before the daemon started is found at start
    drop_files(&stage, &watched, &["--files", "1"]);
    let mut daemon = spawn_daemon(&env, "0.3", "5");
    wait_until("the first file", || status(&env)[0]["files_ingested"] == 1);

    // a second daemon for the same user is refused
    let second = floe_env(&["daemon"], &env);
    assert_eq!(second.code, 2);
    assert!(second.stderr.contains("already running"), "{}", second.stderr);

    // files dropped while running are committed (here one each: two do not fit
    // in 0.1 MB)
    drop_files(&stage, &watched, &["--files", "2", "--start", "1"]);
    wait_until("three files", || {
        let s = status(&env);
        s[0]["files_ingested"] == 3 && s[0]["state"]["state"] == "idle"
    });
    assert_eq!(log_json(&repo, "main").len(), 4);

    // paused: nothing is written; resumed: it catches up
    let r = floe_env(&["pause"], &env);
    assert!(r.code == 0 && r.stdout.contains("paused 1"), "{} {}", r.stdout, r.stderr);
    drop_files(&stage, &watched, &["--files", "1", "--start", "3"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status(&env)[0]["state"]["state"], "paused");
    assert_eq!(log_json(&repo, "main").len(), 4, "nothing written while paused");
    let r = floe_env(&["resume"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    wait_until("the file dropped while paused", || status(&env)[0]["files_ingested"] == 4);
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);

    // a pause in the middle of a backlog stops it after the commit under way
    make(&stage, &["--files", "60", "--start", "10", "--records", "10", "--hf", "10"]);
    for f in std::fs::read_dir(&stage).unwrap().flatten() {
        std::fs::rename(f.path(), watched.join(f.file_name())).unwrap();
    }
    wait_until("the backlog to start", || {
        status(&env)[0]["files_ingested"].as_u64().unwrap_or(0) > 5
    });
    assert_eq!(floe_env(&["pause"], &env).code, 0);
    std::thread::sleep(Duration::from_millis(500));
    let held = log_json(&repo, "main").len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(log_json(&repo, "main").len(), held, "no commit after the pause took hold");
    assert!(held < 65, "the backlog was not finished before the pause ({held} commits)");
    assert_eq!(status(&env)[0]["state"]["state"], "paused");
    assert_eq!(floe_env(&["resume"], &env).code, 0);
    wait_until("the rest of the backlog", || status(&env)[0]["files_ingested"] == 64);
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);

    // SIGTERM: a clean stop, the control socket removed
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0));
    assert!(!run.join("floe-daemon.sock").exists());
    let r = floe_env(&["status"], &env);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no Floe daemon is running"), "{}", r.stderr);
}

#[test]
fn sigkill_at_random_moments_never_loses_or_duplicates_a_record() {
    // 200 files, the daemon killed with SIGKILL 20 times at random moments and
    // restarted; between kills `main` must open; at the end every record is there
    // exactly once (xarray compares the repository with the 200 sources). The
    // daemon's own log says what each kill interrupted: at least a quarter of them
    // must land while it was ingesting (its last state `Syncing`), or the test
    // proves nothing about crashes mid-ingest. (3 of 20 did once, on a machine busy
    // compiling: hence every other kill waits for the daemon to start syncing.)
    let d = tempfile::tempdir().unwrap();
    let (watched, repo) = (d.path().join("in"), d.path().join("repo"));
    make(&watched, &["--files", "200", "--records", "30", "--hf", "60"]);
    age(&watched);
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    // commits of at most 0.2 MB (about four of these 51 kB files): a backlog of
    // ~50 commits of several files, for the kills to land in
    let (w, r) = (watched.to_str().unwrap(), repo.to_str().unwrap());
    let r = floe_env(&["add", w, r, "--commit-max-mb", "0.2"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = d.path().join("daemon.log");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut commits_seen = Vec::new();
    let mut mid_ingest = 0;
    for round in 0..20 {
        let before = std::fs::read_to_string(&log).map(|t| t.len()).unwrap_or(0);
        let mut daemon = spawn_daemon_logged(&env, "0", "2", &log);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // every other kill counts from the moment this daemon starts syncing (at
        // most 5 s on): on a loaded machine its start alone can outlast 460 ms,
        // and then no kill would land mid-ingest
        if round % 2 == 1 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.get(before..).is_some_and(|t| t.contains("to=Syncing")) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        std::thread::sleep(Duration::from_millis(60 + seed % 400));
        let _ = daemon.0.kill(); // SIGKILL
        let _ = daemon.0.wait();
        let _ = std::fs::remove_file(run.join("floe-daemon.sock"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let last = text.lines().rfind(|l| l.contains("transition")).unwrap_or_default();
        if last.contains("to=Syncing") {
            mid_ingest += 1;
        }
        if repo.exists() {
            let r = floe(&["log", repo.to_str().unwrap(), "--json"]);
            assert_eq!(r.code, 0, "main must open cleanly after a kill: {}", r.stderr);
            let n = serde_json::from_str::<serde_json::Value>(&r.stdout)
                .unwrap()
                .as_array()
                .unwrap()
                .len();
            commits_seen.push(n);
        }
    }
    eprintln!("{mid_ingest} of 20 kills landed while the daemon was ingesting");
    assert!(mid_ingest >= 5, "only {mid_ingest} of 20 kills landed while the daemon was ingesting");
    let start = || spawn_daemon(&env, "0", "2");
    assert!(
        commits_seen.windows(2).all(|w| w[0] <= w[1]),
        "history never shrinks: {commits_seen:?}"
    );
    let _daemon = start();
    wait_until("all 200 files", || {
        status(&env)[0]["files_ingested"].as_u64().is_some() && files_on(&repo, "main") == 200
    });
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);
}

#[test]
fn an_outage_makes_the_folder_offline_then_it_catches_up() {
    use floe_tests::servers::azurite_at;
    let d = tempfile::tempdir().unwrap();
    let blob = d.path().join("azurite");
    std::fs::create_dir_all(&blob).unwrap();
    let server = azurite_at(&blob, None);
    let port = server.port;
    let r = py("storage.py", &["az-container", &server.url(), "floe"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (watched, stage) = (d.path().join("in"), d.path().join("stage"));
    std::fs::create_dir_all(&watched).unwrap();
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let url = server.url();
    let env = [
        ("FLOE_CONFIG", cfg.to_str().unwrap()),
        ("FLOE_RUNTIME_DIR", run.to_str().unwrap()),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", url.as_str()),
    ];
    let repo = "az://floe/site";
    assert_eq!(floe_env(&["add", watched.to_str().unwrap(), repo], &env).code, 0);
    drop_files(&stage, &watched, &["--files", "2"]);
    let _daemon = spawn_daemon(&env, "0", "2");
    wait_until("two files", || status(&env)[0]["files_ingested"] == 2);

    // the storage goes away; new files arrive; the folder goes offline
    server.terminate();
    drop_files(&stage, &watched, &["--files", "2", "--start", "2"]);
    wait_until("offline", || status(&env)[0]["state"]["state"] == "offline");
    assert!(status(&env)[0]["last_error"].as_str().unwrap_or_default().contains("unreachable"));

    // it comes back: the folder catches up, no gaps, no duplicates
    let _server = azurite_at(&blob, Some(port));
    let mut last = serde_json::Value::Null;
    let caught_up = (0..900).any(|_| {
        last = status(&env);
        let done = last[0]["files_ingested"] == 4;
        if !done {
            std::thread::sleep(Duration::from_millis(200));
        }
        done
    });
    assert!(caught_up, "timed out catching up; last status: {last}");
    assert_url_equals(repo, &files(&watched, "nc"), &[], &env[2..]);
}

#[test]
fn folders_added_or_removed_while_the_daemon_runs_take_effect_at_once() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, stage) = (d.path().join("a"), d.path().join("b"), d.path().join("stage"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    let repo_a = d.path().join("repo-a");
    assert_eq!(floe_env(&["add", a.to_str().unwrap(), repo_a.to_str().unwrap()], &env).code, 0);
    let _daemon = spawn_daemon(&env, "0.3", "60");
    wait_until("the daemon", || status(&env).as_array().is_some_and(|s| s.len() == 1));

    // added while running: the daemon syncs it without a restart
    let repo_b = d.path().join("repo-b");
    let r = floe_env(&["add", b.to_str().unwrap(), repo_b.to_str().unwrap()], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("the running daemon syncs it now"), "{}", r.stdout);
    drop_files(&stage, &b, &["--files", "2"]);
    wait_until("folder b synced", || {
        status(&env).as_array().is_some_and(|s| {
            s.iter().any(|f| f["path"].as_str() == b.to_str() && f["files_ingested"] == 2)
        })
    });
    assert_repo_equals(&repo_b, &files(&b, "nc"), &[]);

    // removed while running: it stops being watched; the other one goes on
    let commits_b = log_json(&repo_b, "main").len();
    assert_eq!(floe_env(&["remove", b.to_str().unwrap()], &env).code, 0);
    wait_until("folder b gone", || status(&env).as_array().is_some_and(|s| s.len() == 1));
    drop_files(&stage, &b, &["--files", "1", "--start", "2"]);
    drop_files(&stage, &a, &["--files", "1", "--start", "3"]);
    wait_until("folder a synced", || status(&env)[0]["files_ingested"] == 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(log_json(&repo_b, "main").len(), commits_b, "a removed folder was still synced");
    // the text status speaks the app's words
    let r = floe_env(&["status"], &env);
    assert!(r.stdout.contains("Up to date") || r.stdout.contains("Checking"), "{}", r.stdout);
}

#[test]
fn the_daemon_waits_out_a_full_disk_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let (watched, stage) = (d.path().join("in"), d.path().join("stage"));
    std::fs::create_dir_all(&watched).unwrap();
    let disk = d.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mount = |opts: &str| {
        let mut c = Command::new("mount");
        c.args(["-t", "tmpfs", "-o", opts, "tmpfs", disk.to_str().unwrap()]);
        assert!(c.status().unwrap().success(), "mounting a tmpfs needs root");
    };
    mount("size=200k");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    let repo = disk.join("repo");
    let cfg = d.path().join("config.toml");
    let run = d.path().join("run");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    let r = floe_env(
        &["add", watched.to_str().unwrap(), repo.to_str().unwrap(), "--commit-files", "24"],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    drop_files(&stage, &watched, &["--files", "24"]);
    let _daemon = spawn_daemon(&env, "0.3", "5");
    wait_until("the full disk in the status", || {
        let s = status(&env);
        s[0]["state"]["state"] == "offline" && s[0]["state"]["cause"] == "disk_full"
    });
    let words = floe_env(&["status"], &env);
    assert!(words.stdout.contains("The disk is full"), "{}", words.stdout);
    // space again: the retry takes everything
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m", disk.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(grown.success());
    wait_until("the files after the retry", || status(&env)[0]["files_ingested"] == 24);
    assert_repo_equals(&repo, &files(&watched, "nc"), &[]);
}
