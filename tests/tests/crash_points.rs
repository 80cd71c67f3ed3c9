//! Ingestion killed (SIGKILL) at each of its fault points, five times per point, on
//! a local repository, on S3 (moto) and on Azure (Azurite): afterwards the branch
//! always opens, its history never shrinks, and once a plain `floe sync` has run,
//! every record is in the repository exactly once (the reference readers compare
//! it with the sources) and no file appears in two commits.
//!
//! The kills come from `floe-faulty` (the same engine with a fault hook injected;
//! see floe_core::fault), which says on stderr which point and arrival it died at:
//! each run is checked to have died there, by SIGKILL, not merely to have failed.
//! Batches are 2 files in 8 KiB chunks: about 26 chunk uploads each, so a kill at
//! an arrival at `chunk-stored` lands with uploads of that batch still to go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Command;

use floe_tests::servers::{az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::*;

/// The arrivals to die at, per point, over five runs. A run starts over from what
/// is committed, so `committed` #1 commits one more batch per run, `chunks-stored`
/// #2 one batch then dies before the next, and `chunk-stored` dies inside batches.
const KILLS: &[(&str, [usize; 5])] = &[
    ("chunk-stored", [3, 30, 7, 45, 12]),
    ("chunks-stored", [1, 2, 1, 2, 1]),
    ("committed", [1, 1, 2, 1, 1]),
];

const FILES: usize = 14;

fn faulty_bin() -> std::path::PathBuf {
    let bin = floe_bin().with_file_name("floe-faulty");
    assert!(bin.exists(), "{} not built (nextest builds it)", bin.display());
    bin
}

/// Run `floe-faulty` to die at arrival `n` of `point`; check it died there.
fn kill_at(point: &str, n: usize, src: &Path, url: &str, env: &[(&str, &str)]) {
    let n_text = n.to_string();
    let mut c = Command::new(faulty_bin());
    c.args([point, &n_text, src.to_str().unwrap(), url, "--batch", "2", "--chunk-kib", "8"]);
    c.env("FLOE_KEYRING", "off");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run floe-faulty");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{point} #{n}: expected death by SIGKILL, got {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!("fault: {point} #{n}")),
        "{point} #{n}: the hook did not fire where it should\n{stderr}"
    );
}

fn kill_at_every_point(url: &str, env: &[(&str, &str)], chunks: Option<&Path>) {
    for (point, ns) in KILLS {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        make(&src, &["--files", &FILES.to_string(), "--records", "500", "--hf", "5000"]);
        let url = format!("{url}-{point}");
        let mut commits = 0;
        for (i, &n) in ns.iter().enumerate() {
            kill_at(point, n, &src, &url, env);
            let now = history_at(&url, env).len();
            assert!(now >= commits, "{point} kill {i}: history shrank from {commits} to {now}");
            if *point == "chunk-stored" && i == 0 {
                // the first kill is inside the first batch: chunks are in storage,
                // no commit holds them
                assert_eq!(now, 1, "nothing but the initial commit");
                if let Some(dir) = chunks {
                    let stored = std::fs::read_dir(dir.join(format!("repo-{point}/chunks")))
                        .map(|d| d.count())
                        .unwrap_or(0);
                    assert!(stored > 0, "the kill came before any chunk was stored");
                }
            }
            commits = now;
        }
        let r = floe_env(&["sync", src.to_str().unwrap(), &url, "--quiet", "0", "--json"], env);
        assert_eq!(r.code, 0, "the sync after the kills: {}\n{}", r.stdout, r.stderr);
        let h = history_at(&url, env);
        assert!(h.len() >= commits);
        each_file_once(&h, FILES);
        assert_url_equals(&url, &files(&src, "nc"), &[], env);
    }
}

#[test]
fn killed_at_every_point_on_a_local_repository() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("repo");
    kill_at_every_point(base.to_str().unwrap(), &[], Some(d.path()));
}

#[test]
fn killed_at_every_point_on_s3() {
    let server = moto_bucket("floe-crash");
    kill_at_every_point("s3://floe-crash/site", &pairs(&s3_env(&server)), None);
}

#[test]
fn killed_at_every_point_on_azure() {
    let server = azurite_container("floe-crash");
    kill_at_every_point("az://floe-crash/site", &pairs(&az_env(&server)), None);
}
