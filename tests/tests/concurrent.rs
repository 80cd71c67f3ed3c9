//! Two desktops, one branch: concurrent writers to one repository on Azurite (which
//! enforces Icechunk's conditional writes). Writers into different groups rebase
//! onto each other; two writers of the same folder into the same group replay their
//! batch on the other's commits, and every file ends up there exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::servers::azurite;
use floe_tests::*;

fn finish(child: std::process::Child) -> (i32, String) {
    let o = child.wait_with_output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

/// The exit code and `--json` report of a finished sync.
fn finish_json(child: std::process::Child) -> (i32, serde_json::Value, String) {
    let o = child.wait_with_output().unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), report, String::from_utf8_lossy(&o.stderr).into_owned())
}

fn provenance_sources(repo: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let log = floe_env(&["log", repo, "--json"], env);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let history: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    let mut out = Vec::new();
    for c in history.as_array().unwrap() {
        for f in c["provenance"]["files"].as_array().into_iter().flatten() {
            out.push((
                f["group"].as_str().unwrap().to_string(),
                f["source"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn two_desktops_write_one_branch() {
    let server = azurite();
    assert_eq!(py("storage.py", &["az-container", &server.url(), "lab"]).code, 0);
    let url = server.url();
    let env = [("AZURE_STORAGE_USE_EMULATOR", "true"), ("AZURITE_BLOB_STORAGE_URL", url.as_str())];
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    // the same file names on both desktops, different data (other seeds)
    make(&a, &["--files", "12", "--records", "10", "--hf", "10"]);
    make(&b, &["--files", "12", "--records", "10", "--hf", "10", "--seed", "7"]);
    let repo = "az://lab/shared";
    // the repository exists before both start (as it would after a first sync)
    let first = floe_env(
        &[
            "sync",
            a.to_str().unwrap(),
            repo,
            "--group",
            "site_a",
            "--quiet",
            "0",
            "--pattern",
            "*_0000.nc",
        ],
        &env,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);

    // 1. different groups: commits interleave and rebase onto each other
    let pa = spawn_floe(
        &["sync", a.to_str().unwrap(), repo, "--group", "site_a", "--quiet", "0", "--batch", "1"],
        &env,
    );
    let pb = spawn_floe(
        &["sync", b.to_str().unwrap(), repo, "--group", "site_b", "--quiet", "0", "--batch", "1"],
        &env,
    );
    let (ca, ta) = finish(pa);
    let (cb, tb) = finish(pb);
    assert_eq!((ca, cb), (0, 0), "{ta}\n{tb}");
    assert_url_equals(repo, &files(&a, "nc"), &["--group", "site_a"], &env);
    assert_url_equals(repo, &files(&b, "nc"), &["--group", "site_b"], &env);
    let sources = provenance_sources(repo, &env);
    assert_eq!(sources.len(), 24, "each file once: {sources:?}");

    // 2. the same folder synced from two machines into one group: the loser of each
    //    race replays on the winner's commit; nothing twice, nothing missing
    let c = d.path().join("c");
    make(&c, &["--files", "16", "--records", "10", "--hf", "10", "--start", "100"]);
    let args = [
        "sync",
        c.to_str().unwrap(),
        repo,
        "--group",
        "site_c",
        "--quiet",
        "0",
        "--batch",
        "1",
        "--json",
    ];
    let p1 = spawn_floe(&args, &env);
    let p2 = spawn_floe(&args, &env);
    let (c1, r1, t1) = finish_json(p1);
    let (c2, r2, t2) = finish_json(p2);
    assert_eq!((c1, c2), (0, 0), "{t1}\n{t2}");
    // the race really happened: commits conflicted and batches were replayed
    let replays = r1["replays"].as_u64().unwrap() + r2["replays"].as_u64().unwrap();
    assert!(replays > 0, "no commit conflicted, so nothing was replayed:\n{r1}\n{r2}");
    let taken = r1["ingested"].as_array().unwrap().len() + r2["ingested"].as_array().unwrap().len();
    assert_eq!(taken, 16, "between them the two took each file once");
    let in_c: Vec<_> =
        provenance_sources(repo, &env).into_iter().filter(|(g, _)| g == "/site_c").collect();
    assert_eq!(in_c.len(), 16, "every file exactly once: {in_c:?}");
    assert_url_equals(repo, &files(&c, "nc"), &["--group", "site_c"], &env);
}
