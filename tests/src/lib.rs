//! Helpers for Floe's end-to-end tests: run the real `floe` binary, generate
//! fixtures and check repositories with the Python reference readers
//! (icechunk + xarray), which are the ground truth for what Floe writes.
//!
//! The Python interpreter is `$FLOE_PYTHON`, else the venv made by
//! `scripts/setup.sh` (`$HOME/.cache/floe/venv`). Tests fail, not skip, without it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod daemon;
pub mod desktop;
pub mod mount;
pub mod proxy;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root. Read at run time (cargo and nextest set `CARGO_MANIFEST_DIR`
/// for every test): a target directory shared between clones may hold a test binary
/// compiled in another clone, whose compile-time path is not this checkout.
pub fn root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().unwrap().to_path_buf()
}

/// The Python interpreter with the reference readers.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FLOE_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/floe/venv/bin/python");
    assert!(
        p.exists(),
        "no Python reference environment at {}: run scripts/setup.sh first (or set FLOE_PYTHON)",
        p.display()
    );
    p
}

/// The `floe` binary built next to this test executable.
pub fn floe_bin() -> PathBuf {
    if let Ok(p) = std::env::var("FLOE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("floe");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p floe-cli` (nextest builds it)",
        bin.display()
    );
    bin
}

/// Output of a command, as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Run `floe` with arguments.
pub fn floe(args: &[&str]) -> Run {
    floe_env(args, &[])
}

/// Run `floe` with arguments and extra environment variables. The OS keychain is
/// off unless `env` turns it on (`FLOE_KEYRING=on`): tests never see the keyring of
/// whoever runs them.
pub fn floe_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    floe_stdin(args, env, "")
}

/// `floe` with arguments and extra environment variables, the OS keychain off (see
/// [`floe_env`]), its output piped.
fn floe_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(floe_bin());
    c.args(args).env("FLOE_KEYRING", "off");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    c
}

/// Start `floe` (as [`floe_env`] runs it) without waiting for it.
pub fn spawn_floe(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    floe_command(args, env).stdin(std::process::Stdio::null()).spawn().expect("start floe")
}

/// Run `floe` with `input` on its standard input.
pub fn floe_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    use std::io::Write;
    let mut c = floe_command(args, env);
    c.stdin(std::process::Stdio::piped());
    let mut child = c.spawn().expect("run floe");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("run floe").into()
}

/// Run one of the scripts in `tests/python`.
pub fn py(script: &str, args: &[&str]) -> Run {
    py_env(script, args, &[])
}

/// Run one of the scripts in `tests/python` with extra environment variables.
pub fn py_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(python());
    c.arg(root().join("tests/python").join(script)).args(args).env("RUST_LOG", "error");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run python").into()
}

/// Generate fixtures with `make_fixtures.py` (panics on failure).
pub fn make(out: &Path, args: &[&str]) {
    let mut a = vec![out.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = py("make_fixtures.py", &a);
    assert_eq!(r.code, 0, "make_fixtures failed: {}\n{}", r.stdout, r.stderr);
}

/// Add records to a NetCDF file as a logger that reopens it does (`grow_file.py
/// PATH FORMAT COUNT [--change I]`: creates it in FORMAT if missing; panics on failure).
pub fn grow(path: &Path, format: &str, args: &[&str]) {
    let mut a = vec![path.to_str().unwrap(), format];
    a.extend_from_slice(args);
    let r = py("grow_file.py", &a);
    assert_eq!(r.code, 0, "grow_file {format}: {}", r.stderr);
}

/// Files of a folder matching an extension, sorted by name.
pub fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Assert with Python icechunk + xarray that the repository equals the sources.
pub fn assert_repo_equals(repo: &Path, sources: &[String], extra: &[&str]) {
    assert_url_equals(repo.to_str().unwrap(), sources, extra, &[]);
}

/// The same for a repository URL (s3://, az:// on the test servers: settings in `env`).
pub fn assert_url_equals(repo: &str, sources: &[String], extra: &[&str], env: &[(&str, &str)]) {
    assert_url_equals_from(None, repo, sources, extra, env);
}

/// [`assert_url_equals`], the reference readers running in network namespace `netns`
/// (next to a server that is far away from here).
pub fn assert_url_equals_from(
    netns: Option<&str>,
    repo: &str,
    sources: &[String],
    extra: &[&str],
    env: &[(&str, &str)],
) {
    let mut a = vec![repo];
    a.extend(sources.iter().map(String::as_str));
    a.extend_from_slice(extra);
    let r = match netns {
        None => py_env("check_repo.py", &a, env),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(python());
            c.arg(root().join("tests/python/check_repo.py")).args(&a).env("RUST_LOG", "error");
            for (k, v) in env {
                c.env(k, v);
            }
            c.output().expect("run python in the namespace").into()
        }
    };
    assert!(
        r.code == 0 && r.stdout.contains("OK:"),
        "reference readers disagree with the repository (exit {}):\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
            .lines()
            .filter(|l| !l.contains("WARN") && !l.contains(" at "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The branch history as JSON (newest first).
pub fn log_json(repo: &Path, branch: &str) -> Vec<serde_json::Value> {
    history_of(repo.to_str().unwrap(), branch, &[])
}

/// How many source files the commits of `branch` record (however many commits they
/// came in: a due commit takes everything waiting).
pub fn files_on(repo: &Path, branch: &str) -> usize {
    log_json(repo, branch)
        .iter()
        .map(|c| c["provenance"]["files"].as_array().map_or(0, Vec::len))
        .sum()
}

/// `floe log URL --branch BRANCH --json`; the branch must open.
fn history_of(url: &str, branch: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let r = floe_env(&["log", url, "--branch", branch, "--json"], env);
    assert_eq!(r.code, 0, "floe log failed (the branch does not open): {}", r.stderr);
    serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap().as_array().unwrap().clone()
}

/// `floe sync` with JSON output; returns (exit code, report).
pub fn sync_json(folder: &Path, repo: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    sync_url_json(folder, repo.to_str().unwrap(), extra, &[])
}

/// `floe sync` into a repository URL with JSON output and extra environment
/// variables; returns (exit code, report).
pub fn sync_url_json(
    folder: &Path,
    url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, serde_json::Value) {
    let mut a = vec!["sync", folder.to_str().unwrap(), url, "--json", "--quiet", "0"];
    a.extend_from_slice(extra);
    let r = floe_env(&a, env);
    let v = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

/// Names of the rejected files of a report, with their codes.
pub fn rejected(report: &serde_json::Value) -> Vec<(String, String)> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["file"].as_str().unwrap().to_string(), r["code"].as_str().unwrap().to_string()))
        .collect()
}

/// Make files look old enough to be complete.
pub fn age(dir: &Path) {
    let st = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .args(std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()))
        .status();
    assert!(st.is_ok_and(|s| s.success()));
}

/// Every source file appears in exactly one commit of `history` (`floe log --json`),
/// and there are `files` of them.
pub fn each_file_once(history: &[serde_json::Value], files: usize) {
    let mut seen = std::collections::BTreeSet::new();
    for c in history {
        for f in c["provenance"]["files"].as_array().into_iter().flatten() {
            let name = f["source"].as_str().unwrap().to_string();
            assert!(seen.insert(name.clone()), "{name} is in two commits");
        }
    }
    assert_eq!(seen.len(), files, "every file committed: {seen:?}");
}

/// The history of `main` (`floe log --json`) of a repository URL; it must open.
pub fn history_at(url: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    history_of(url, "main", env)
}
