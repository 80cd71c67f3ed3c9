//! `floe mount` through a real FUSE mount (as root; /dev/fuse must exist), checked
//! with the ecosystem's own readers: xarray, zarr-python and Python icechunk at the
//! same ref, plus ls/find/cat/du. Every mount is unmounted when its guard drops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Seek};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use floe_tests::mount::{Mount, is_mounted, mount_check, stderr_tail};
use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;

const EROFS: i32 = 30;
const EIO: i32 = 5;
const ENOTCONN: i32 = 107;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;

fn sync(src: &Path, url: &str, env: &[(&str, &str)]) {
    let r = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--batch", "1"], env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// main's history, newest first: (snapshot id, time).
fn snapshots(url: &str, env: &[(&str, &str)]) -> Vec<String> {
    let out = mount_check(&["snapshots", url], env);
    let v: Vec<(String, String)> = serde_json::from_str(out.trim()).unwrap();
    v.into_iter().map(|(id, _)| id).collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("must fail").raw_os_error().unwrap_or(0)
}

#[test]
fn a_floe_repository_reads_through_the_mount_like_icechunk() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    let url = repo.to_str().unwrap();
    make(&src, &["--files", "3"]);
    sync(&src, url, &[]);
    mount_check(&["tag", url, "v1"], &[]);
    make(&src, &["--files", "2", "--start", "3"]);
    sync(&src, url, &[]);

    let m = Mount::start(url, &d.path().join("mnt"), &[], &[]);
    assert_eq!(listing(&m.dir), ["branches", "by-time", "snapshots", "tags"]);
    let snaps = snapshots(url, &[]);
    assert_eq!(snaps.len(), 6, "the initial commit and one per file");
    let mut ids = snaps.clone();
    ids.sort();
    assert_eq!(listing(&m.path("snapshots")), ids);
    // a snapshot id of the right shape that the repository does not hold: ENOENT
    let missing = std::fs::metadata(m.path("snapshots/AAAAAAAAAAAAAAAAAAAA")).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound, "{missing}");
    let by_time = listing(&m.path("by-time"));
    assert_eq!(by_time.len(), snaps.len(), "one folder per commit of main");
    let old = &snaps[2];
    let old_time = &by_time[by_time.len() - 1 - 2];
    let out = mount_check(
        &[
            "compare",
            m.dir.to_str().unwrap(),
            url,
            "branches/main=branch:main",
            "tags/v1=tag:v1",
            &format!("snapshots/{old}=snapshot:{old}"),
            &format!("by-time/{old_time}=snapshot:{old}"),
        ],
        &[],
    );
    assert_eq!(out.matches("OK:").count(), 4, "{out}");

    // the shell's tools work as on a local Zarr store
    let main = m.path("branches/main");
    let ls = Command::new("ls").arg("-la").arg(&main).output().unwrap();
    assert!(ls.status.success() && String::from_utf8_lossy(&ls.stdout).contains("zarr.json"));
    let find = Command::new("find").arg(&main).arg("-type").arg("f").output().unwrap();
    let found = String::from_utf8_lossy(&find.stdout).lines().count();
    assert!(find.status.success() && found > 20, "find saw {found} files");
    let du = Command::new("du").arg("-sb").arg(&main).output().unwrap();
    let bytes: u64 =
        String::from_utf8_lossy(&du.stdout).split_whitespace().next().unwrap().parse().unwrap();
    assert!(bytes > 100_000, "du says {bytes}");
    let cat = Command::new("cat").arg(main.join("zarr.json")).output().unwrap();
    assert_eq!(cat.stdout, std::fs::read(main.join("zarr.json")).unwrap());
    assert!(String::from_utf8_lossy(&cat.stdout).contains(r#""node_type":"group""#));

    // every write is refused with EROFS
    // a file is not a folder, a folder is not a file
    assert_eq!(errno(std::fs::read_dir(main.join("zarr.json"))), ENOTDIR);
    assert_eq!(errno(std::fs::read(main.join("time"))), EISDIR);
    assert_eq!(errno(std::fs::write(main.join("new.txt"), b"x")), EROFS);
    assert_eq!(errno(std::fs::create_dir(main.join("newdir"))), EROFS);
    assert_eq!(errno(std::fs::remove_file(main.join("zarr.json"))), EROFS);
    assert_eq!(errno(std::fs::rename(main.join("zarr.json"), main.join("x.json"))), EROFS);
    assert_eq!(errno(std::fs::OpenOptions::new().write(true).open(main.join("zarr.json"))), EROFS);

    // the branch follows its tip; a file opened before stays on its snapshot
    let meta = main.join("time/zarr.json");
    let mut f = std::fs::File::open(&meta).unwrap();
    let mut before = String::new();
    f.read_to_string(&mut before).unwrap();
    make(&src, &["--files", "1", "--start", "5"]);
    sync(&src, url, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&meta).unwrap() == before {
        assert!(Instant::now() < deadline, "branches/main did not follow the new tip");
        std::thread::sleep(Duration::from_millis(100));
    }
    // the kernel's page cache out of the way: the read below goes to the mount
    // (as root; `echo 1 > /proc/sys/vm/drop_caches` drops clean cached pages)
    std::fs::write("/proc/sys/vm/drop_caches", "1").expect("drop the page cache (as root)");
    f.rewind().unwrap();
    let mut again = String::new();
    f.read_to_string(&mut again).unwrap();
    assert_eq!(again, before, "an open file stays on the snapshot it was opened at");
    assert_eq!(listing(&m.path("by-time")).len(), 7, "the new commit has its by-time folder");
    // a tag made while mounted appears at the next refresh
    mount_check(&["tag", url, "v2"], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listing(&m.path("tags")).contains(&"v2".to_string()) {
        assert!(Instant::now() < deadline, "tags/v2 did not appear");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_repository_written_by_python_icechunk_mounts_as_well() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("pyrepo");
    let url = repo.to_str().unwrap();
    mount_check(&["pyrepo", url], &[]);
    let snaps = snapshots(url, &[]);
    let old = &snaps[snaps.len() - 2];
    let m = Mount::start(url, &d.path().join("mnt"), &[], &[]);
    assert_eq!(listing(&m.path("branches")), ["dev", "main"]);
    let out = mount_check(
        &[
            "compare",
            m.dir.to_str().unwrap(),
            url,
            "branches/main=branch:main",
            "branches/dev=branch:dev",
            "tags/v1=tag:v1",
            &format!("snapshots/{old}=snapshot:{old}"),
        ],
        &[],
    );
    assert_eq!(out.matches("OK:").count(), 4, "{out}");
    assert!(m.path("branches/main/site/deep/depth/zarr.json").is_file(), "nested groups show");
}

fn remote_round_trip(url: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "3"]);
    sync(&src, url, env);
    let snaps = snapshots(url, env);
    let m = Mount::start(
        url,
        &d.path().join("mnt"),
        &["--cache-dir", d.path().join("cache").to_str().unwrap()],
        env,
    );
    let old = &snaps[1];
    let out = mount_check(
        &[
            "compare",
            m.dir.to_str().unwrap(),
            url,
            "branches/main=branch:main",
            &format!("snapshots/{old}=snapshot:{old}"),
        ],
        env,
    );
    assert_eq!(out.matches("OK:").count(), 2, "{out}");
    let cached: u64 = std::fs::read_dir(d.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(cached > 10_000, "the disk cache holds the chunks read ({cached} bytes)");
}

#[test]
fn an_s3_repository_mounts() {
    let server = moto_bucket("floe-mount");
    let env = s3_env(&server);
    remote_round_trip("s3://floe-mount/repo", &pairs(&env));
}

#[test]
fn an_azure_repository_mounts() {
    let server = azurite_container("floe-mount");
    let env = az_env(&server);
    remote_round_trip("az://floe-mount/repo", &pairs(&env));
}

#[test]
fn an_unreachable_repository_gives_eio_within_the_timeout_not_a_hang() {
    let server = moto_bucket("floe-eio");
    let env = s3_env(&server);
    let env = pairs(&env);
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "2"]);
    let url = "s3://floe-eio/repo";
    sync(&src, url, &env);
    let m = Mount::start(
        url,
        &d.path().join("mnt"),
        &["--timeout-secs", "3", "--readahead", "0"],
        &env,
    );
    let main = m.path("branches/main");
    assert!(std::fs::read(main.join("zarr.json")).unwrap().starts_with(b"{"));
    // The server goes away, and something on its port accepts connections but never answers.
    let port = server.port;
    server.terminate();
    let _black_hole = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let t = Instant::now();
    assert_eq!(errno(std::fs::read(main.join("co2/c/0"))), EIO, "an unfetched chunk");
    println!("EIO after {:?} (--timeout-secs 3)", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "EIO came after {:?}, not within the 3 s timeout and a margin",
        t.elapsed()
    );
    // what was read before is still served from the caches
    assert!(std::fs::read(main.join("zarr.json")).unwrap().starts_with(b"{"));
}

#[test]
fn sixteen_readers_see_no_torn_reads_while_the_branch_advances() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    let url = repo.to_str().unwrap();
    make(&src, &["--files", "2"]);
    sync(&src, url, &[]);
    let m = Mount::start(url, &d.path().join("mnt"), &["--refresh-secs", "0.2"], &[]);
    let readers = Command::new(python())
        .arg(root().join("tests/python/mount_check.py"))
        .args(["readers", m.dir.to_str().unwrap(), url, "10", "16"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut n = 2;
    while start.elapsed() < Duration::from_secs(9) {
        make(&src, &["--files", "1", "--start", &n.to_string()]);
        sync(&src, url, &[]);
        n += 1;
    }
    let out = readers.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        stderr_tail(&String::from_utf8_lossy(&out.stderr))
    );
    assert!(stdout.contains("no torn reads"), "{stdout}");
    assert!(n >= 4, "the branch advanced only {} times", n - 2);
    eprintln!("{} commits during the read: {stdout}", n - 2);
}

#[test]
fn a_killed_mount_is_cleaned_up_and_the_folder_mounts_again() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    let url = repo.to_str().unwrap();
    make(&src, &["--files", "1"]);
    sync(&src, url, &[]);
    let dir = d.path().join(floe_tests::mount::KEEP_DEAD);
    // whatever happens below, nothing stays mounted
    struct Detach(std::path::PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _detach = Detach(dir.clone());
    let m = Mount::start_raw(url, &dir, &[], &[]);
    m.signal("KILL");
    let _ = m.wait();
    assert_eq!(errno(std::fs::read_dir(&dir)), ENOTCONN, "a dead mount is left behind");
    // floe itself detaches the dead mount before mounting again
    let again = Mount::start_raw(url, &dir, &[], &[]);
    assert!(again.path("branches/main/zarr.json").is_file());
}

/// Whether process `pid` runs (a zombie nobody reaped yet has ended).
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// `floe mounts --json`: the entry for `dir`, if any.
fn listed(dir: &Path, env: &[(&str, &str)]) -> Option<serde_json::Value> {
    let r = floe_env(&["mounts", "--json"], env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).unwrap();
    all.into_iter().find(|m| m["mountpoint"] == dir.to_str().unwrap())
}

#[test]
fn a_background_mount_outlives_its_starter_and_comes_back_at_login() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo, dir) = (d.path().join("src"), d.path().join("repo"), d.path().join("mnt"));
    let url = repo.to_str().unwrap();
    make(&src, &["--files", "1"]);
    sync(&src, url, &[]);
    let (cfg, run) = (d.path().join("config.toml"), d.path().join("run"));
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap()), ("FLOE_RUNTIME_DIR", run.to_str().unwrap())];
    struct Detach<'a>(&'a Path, &'a [(&'a str, &'a str)]);
    impl Drop for Detach<'_> {
        fn drop(&mut self) {
            let _ = floe_env(&["unmount", self.0.to_str().unwrap()], self.1);
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _detach = Detach(&dir, &env);

    // the starting `floe mount` has returned: a helper of its own serves the mount
    let r = floe_env(&["mount", url, dir.to_str().unwrap(), "--at-login"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("and again at every login"), "{}", r.stdout);
    let m = listed(&dir, &env).expect("listed");
    assert_eq!(
        (m["state"].as_str(), m["program"].as_str()),
        (Some("mounted"), Some("floe")),
        "{m}"
    );
    assert_eq!(m["at_login"], true);
    assert_eq!(m["repo"], url);
    let pid = m["pid"].as_u64().unwrap();
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("[[mount]]"));
    let text = floe_env(&["mounts"], &env).stdout;
    assert!(text.contains(&format!("mounted, process {pid} (floe)")), "{text}");
    assert!(std::fs::read_dir(&dir).is_ok());

    // mounting it there again is done already; another repository there is refused,
    // naming the process
    let twice = floe_env(&["mount", url, dir.to_str().unwrap(), "--background"], &env);
    assert_eq!(twice.code, 0, "{}", twice.stderr);
    assert!(twice.stdout.contains(&format!("process {pid}")), "{}", twice.stdout);
    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let wrong =
        floe_env(&["mount", other.to_str().unwrap(), dir.to_str().unwrap(), "--background"], &env);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(&format!("already mounted by process {pid}")),
        "{}",
        wrong.stderr
    );

    // what a reboot leaves: the process gone, the mount dead, and listed so
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    let end = Instant::now() + Duration::from_secs(30);
    while listed(&dir, &env).unwrap()["state"] != "dead" {
        assert!(Instant::now() < end, "{:?}", listed(&dir, &env));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(errno(std::fs::read_dir(&dir)), ENOTCONN);

    // the next login's `floe daemon` mounts it again (the dead mount detached first)
    let daemon = floe_tests::daemon::spawn_daemon(&env, "1", "60");
    let end = Instant::now() + Duration::from_secs(60);
    while !listed(&dir, &env).is_some_and(|m| m["state"] == "mounted") {
        assert!(Instant::now() < end, "{:?}", listed(&dir, &env));
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = listed(&dir, &env).unwrap()["pid"].as_u64().unwrap();
    assert_ne!(again, pid);
    drop(daemon);
    // ...and it stays when the daemon is gone
    std::thread::sleep(Duration::from_millis(500));
    assert!(dir.join("branches/main/zarr.json").is_file());

    // unmount: the helper ends, and the mount is no longer kept for login
    let u = floe_env(&["unmount", dir.to_str().unwrap()], &env);
    assert_eq!(u.code, 0, "{}", u.stderr);
    assert!(!running(again), "the helper still runs");
    assert!(!std::fs::read_to_string(&cfg).unwrap().contains("[[mount]]"));
    assert_eq!(listed(&dir, &env), None);
}

#[test]
fn ctrl_c_and_floe_unmount_unmount_cleanly_and_only_the_owner_reads() {
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    let url = repo.to_str().unwrap();
    make(&src, &["--files", "1"]);
    sync(&src, url, &[]);
    // Let other users traverse to the mount point, so that only FUSE decides.
    let open = d.path().join("open");
    std::fs::create_dir(&open).unwrap();
    for p in [d.path(), open.as_path()] {
        Command::new("chmod").arg("755").arg(p).status().unwrap();
    }
    let as_nobody = |dir: &Path| {
        Command::new("runuser")
            .args(["-u", "nobody", "--", "ls"])
            .arg(dir.join("branches"))
            .output()
            .unwrap()
    };

    // Ctrl-C: unmounted, exit 0; other users are refused by default
    let dir = open.join("mnt");
    let m = Mount::start(url, &dir, &[], &[]);
    let denied = as_nobody(&dir);
    assert!(!denied.status.success(), "another user could read the mount");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    m.signal("INT");
    let (code, err) = m.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(!is_mounted(&dir), "Ctrl-C left the mount");

    // --allow-other lets them in
    let m = Mount::start(url, &dir, &["--allow-other"], &[]);
    let allowed = as_nobody(&dir);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert_eq!(String::from_utf8_lossy(&allowed.stdout).trim(), "main");
    drop(m);

    // --background returns once mounted; floe unmount ends it
    let r = floe(&["mount", url, dir.to_str().unwrap(), "--background"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(is_mounted(&dir));
    let u = floe(&["unmount", dir.to_str().unwrap()]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    assert!(!is_mounted(&dir));
    // mounting again at once is not undone by the old process on its way out
    let r = floe(&["mount", url, dir.to_str().unwrap(), "--background"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(Duration::from_millis(800));
    assert!(is_mounted(&dir) && std::fs::read_dir(&dir).is_ok(), "the new mount was taken down");
    let u = floe(&["unmount", dir.to_str().unwrap()]);
    assert_eq!(u.code, 0, "{}", u.stderr);
    let none = floe(&["unmount", dir.to_str().unwrap()]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("nothing is mounted"), "{}", none.stderr);
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    kb << 10
}

/// Bytes of the files under `dir`.
fn disk_use(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() { disk_use(&p) } else { e.metadata().map_or(0, |m| m.len()) };
    }
    total
}

/// Every chunk file under `dir` (paths with a `c` component: default key encoding).
fn chunk_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            chunk_files(&p, out);
        } else if p.components().any(|c| c.as_os_str() == "c") {
            out.push(p);
        }
    }
}

#[test]
fn the_memory_and_disk_caches_stay_within_their_bounds_while_reading_more() {
    // About 160 MB of distinct chunk files, read through a mount whose memory cache
    // holds 8 MiB and whose disk cache holds 4 MiB: the process grows by much less
    // than it read (measured 17-22 MB of 163.5; an unbounded cache would grow by all
    // of it; the rest is the allocator's and the threads' share, see floe-fuse's
    // bound_allocator_memory), and
    // the cache folder never holds more than its bound, counting files still being
    // written.
    let d = tempfile::tempdir().unwrap();
    let (src, repo) = (d.path().join("src"), d.path().join("repo"));
    make(&src, &["--files", "30", "--records", "20000", "--hf", "60000"]);
    sync(&src, repo.to_str().unwrap(), &[]);
    let cache = d.path().join("cache");
    let m = Mount::start(
        repo.to_str().unwrap(),
        &d.path().join("mnt"),
        &[
            "--memory-cache",
            "8MiB",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--cache-size",
            "4MiB",
            "--readahead",
            "2",
        ],
        &[],
    );
    let mut chunks = Vec::new();
    chunk_files(&m.path("branches/main"), &mut chunks);
    let before = rss(m.pid());
    let (mut read, mut most_on_disk) = (0u64, 0u64);
    for c in &chunks {
        read += std::fs::read(c).unwrap().len() as u64;
        most_on_disk = most_on_disk.max(disk_use(&cache));
    }
    let grew = rss(m.pid()).saturating_sub(before);
    println!(
        "read {:.1} MB in {} chunk files; the mount grew by {:.1} MB; the disk cache held at most {:.2} MB",
        read as f64 / 1e6,
        chunks.len(),
        grew as f64 / 1e6,
        most_on_disk as f64 / 1e6
    );
    assert!(read > 150_000_000, "the test must read far more than the caches hold: {read} bytes");
    assert!(most_on_disk > 0, "the disk cache was used");
    assert!(most_on_disk <= 4 << 20, "the disk cache held {most_on_disk} bytes (bound 4 MiB)");
    assert!(
        grew < read / 4,
        "the mount grew by {grew} bytes while reading {read}: the memory cache is not bounded"
    );
}
