//! Many repositories under one prefix, as ice-stream keeps them
//! (`<instrument>/<project>`): the catalog mount shows the prefixes as folders and
//! each repository with its own `branches/`, `tags/`, `snapshots/`, `by-time/`;
//! `floe repos` lists them newest first; Dask reduces over a Floe repository on S3
//! and through the mount. On local folders, moto and Azurite, the remote ones
//! through the fault proxy, which counts the listings discovery makes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use floe_tests::mount::{Mount, mount_check};
use floe_tests::proxy::{Proxy, Seen};
use floe_tests::servers::{Server, az_env, azurite_container, moto_bucket, pairs, s3_env};
use floe_tests::{files, floe_env, make, py_env};
use serde_json::Value;

const REPOS: usize = 50;
/// `catalog.py make` puts repository i under `inst<i % 5>/`.
const INSTRUMENTS: usize = 5;

fn py_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let r = py_env("catalog.py", args, env);
    assert_eq!(r.code, 0, "catalog.py {}: {}\n{}", args[0], r.stdout, r.stderr);
    r.stdout
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A listing request, as S3 (`list-type=2`) and Azure (`comp=list`) spell it.
fn is_listing(s: &Seen) -> bool {
    s.method == "GET" && (s.query.contains("list-type=2") || s.query.contains("comp=list"))
}

const TOP: [&str; 4] = ["branches", "by-time", "snapshots", "tags"];
/// The repository `populate` makes unreadable.
const BROKEN: &str = "inst1/proj01";

/// The fixture: 50 small repositories (one of them unreadable: its info object
/// overwritten), two named by their start time as a drift rollover names them (the
/// older one written last), a repository that is also the parent of another, and a
/// Floe repository with real files in it.
fn populate(url: &str, d: &Path, env: &[(&str, &str)]) {
    let made = py_ok(&["make", url, &REPOS.to_string()], env);
    assert_eq!(made.lines().count(), REPOS);
    py_ok(&["corrupt", url, BROKEN], env);
    py_ok(&["one", url, "drift/ghg-2024-03-01T00-00-00Z"], env);
    py_ok(&["one", url, "drift/ghg-2024-01-01T00-00-00Z"], env);
    py_ok(&["one", url, "site", "--chunks", "3"], env);
    py_ok(&["one", url, "site/sub"], env);
    let src = d.join("src");
    make(&src, &["--files", "24"]);
    let gas = format!("{url}/gas/ghg");
    let s = floe_env(&["sync", src.to_str().unwrap(), &gas, "--appends-per-chunk", "2"], env);
    assert_eq!(s.code, 0, "{}\n{}", s.stdout, s.stderr);
}

/// Walk every prefix and every repository's own folder, as a file manager does.
fn walk(m: &Mount) -> usize {
    let root = names(&m.dir);
    for want in ["drift", "gas", "inst0", "inst4", "site"] {
        assert!(root.contains(&want.to_string()), "{want} in {root:?}");
    }
    let mut repos = 0;
    for i in 0..INSTRUMENTS {
        let inst = format!("inst{i}");
        for proj in names(&m.path(&inst)) {
            let rel = format!("{inst}/{proj}");
            let here = names(&m.path(&rel));
            if rel == BROKEN {
                assert!(here.is_empty(), "an unreadable repository is an empty folder: {here:?}");
            } else {
                assert_eq!(here, TOP, "{rel} is a repository with its own folders");
            }
            repos += 1;
        }
    }
    assert_eq!(repos, REPOS, "every repository is shown");
    let site = names(&m.path("site"));
    assert_eq!(
        site,
        ["branches", "by-time", "snapshots", "sub", "tags"],
        "a repository and a parent"
    );
    assert_eq!(names(&m.path("site/sub")), TOP);
    repos
}

/// The catalog mount on one storage: discovery by delimited listings whose number
/// follows the prefixes and repositories (not their chunks), data readable, a new
/// repository shown within the refresh, an unreadable one an empty folder.
fn catalog_mount(
    url: &str,
    env: &[(&str, &str)],
    proxy: Option<&Proxy>,
    mount_env: &[(&str, &str)],
) {
    let d = tempfile::tempdir().unwrap();
    populate(url, d.path(), env);
    let m = Mount::start(url, &d.path().join("mnt"), &["--refresh-secs", "2"], mount_env);
    let start = proxy.map_or(0, |p| p.log().len());
    let repos = walk(&m);
    if let Some(p) = proxy {
        let seen: Vec<Seen> = p.log()[start..].to_vec();
        let listings: Vec<&Seen> = seen.iter().filter(|s| is_listing(s)).collect();
        let undelimited: Vec<&&Seen> =
            listings.iter().filter(|s| !s.query.contains("delimiter=")).collect();
        assert!(undelimited.is_empty(), "every listing has a delimiter: {undelimited:#?}");
        // root, the 5 instruments, drift, gas, site, and each repository's own
        // folder (which may hold other repositories)
        let prefixes = 1 + INSTRUMENTS + 3;
        let bound = prefixes + repos + 3 + 2;
        assert!(
            listings.len() <= bound,
            "{} listings for {prefixes} prefixes and {} repositories: {:#?}",
            listings.len(),
            repos + 3,
            listings.iter().map(|s| format!("{} ?{}", s.path, s.query)).collect::<Vec<_>>()
        );
        // a repository's own folder shows its four folders once it opens:
        // Icechunk's open reads its info object, its config and probes for a
        // format-1 branch ref; never a manifest, chunk or snapshot of it
        let others: Vec<&Seen> = seen.iter().filter(|s| !is_listing(s)).collect();
        let deep: Vec<&&Seen> = others
            .iter()
            .filter(|s| !["/repo", "/config.yaml", "/ref.json"].iter().any(|k| s.path.ends_with(k)))
            .collect();
        assert!(deep.is_empty(), "listing reads nothing inside a repository: {deep:#?}");
        assert!(others.len() <= 3 * (repos + 3), "{} other requests: {others:#?}", others.len());
        eprintln!(
            "{url}: {} delimited listings and {} other requests (opening each repository) \
             to show {prefixes} prefixes and {} repositories holding 1 to 81 chunks each",
            listings.len(),
            others.len(),
            repos + 3
        );
    }

    // data, read through the mount, equals the repository
    let gas = format!("{url}/gas/ghg");
    let mnt = m.path("gas/ghg");
    mount_check(&["compare", mnt.to_str().unwrap(), &gas, "branches/main=branch:main"], env);
    let shown = names(&m.path("gas/ghg/branches/main"));
    assert!(shown.contains(&"co2".to_string()), "{shown:?}");

    // a repository made now appears within the refresh
    py_ok(&["one", url, "inst0/proj99"], env);
    let made = Instant::now();
    while !names(&m.path("inst0")).contains(&"proj99".to_string()) {
        assert!(made.elapsed() < Duration::from_secs(10), "proj99 not shown 10 s later");
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = made.elapsed();
    assert!(took <= Duration::from_secs(5), "shown {took:?} after, with --refresh-secs 2");
    assert_eq!(names(&m.path("inst0/proj99/branches")), ["main"]);

    // the unreadable repository stays an empty folder; the rest reads on
    assert!(names(&m.path(BROKEN)).is_empty());
    assert!(std::fs::read_dir(m.path(&format!("{BROKEN}/branches"))).is_err());
    assert_eq!(names(&m.path("inst1/proj11/branches")), ["extra0", "main"]);
    assert!(names(&m.path("gas/ghg/branches/main")).contains(&"co2".to_string()));
    m.signal("TERM");
    let (_, log) = m.wait();
    assert!(log.contains(BROKEN), "the unreadable repository is named in the log: {log}");
}

/// `floe repos --json`: each repository once, newest first (by the time in its
/// name when it has one), with its branches and size; the unreadable one says why.
fn repos_listing(url: &str, env: &[(&str, &str)]) {
    let r = floe_env(&["repos", url, "--json"], env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let list = v["repositories"].as_array().unwrap();
    let paths: Vec<&str> = list.iter().map(|s| s["path"].as_str().unwrap()).collect();
    // 50 + proj99 + two drift + site + site/sub + gas/ghg
    assert_eq!(list.len(), REPOS + 6, "{paths:?}");
    let at =
        |p: &str| paths.iter().position(|x| *x == p).unwrap_or_else(|| panic!("{p} in {paths:?}"));
    assert!(
        at("drift/ghg-2024-03-01T00-00-00Z") < at("drift/ghg-2024-01-01T00-00-00Z"),
        "named by time: the later start first, though written first: {paths:?}"
    );
    assert!(at("gas/ghg") < at("drift/ghg-2024-03-01T00-00-00Z"), "{paths:?}");
    let bad = &list[at(BROKEN)];
    assert!(bad["error"].is_string(), "{bad:#}");
    let ok = &list[at("inst1/proj11")];
    assert_eq!(ok["branches"], 2, "{ok:#}");
    assert!(ok["bytes"].as_u64().unwrap() > 0, "{ok:#}");
    assert!(v["unlisted"].as_array().unwrap().is_empty(), "{v:#}");
    let text = floe_env(&["repos", url, "--no-size"], env);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("inst4/proj49"), "{}", text.stdout);
}

#[test]
fn a_local_folder_of_repositories_mounts_as_a_catalog() {
    let d = tempfile::tempdir().unwrap();
    let url = d.path().join("lab");
    let url = url.to_str().unwrap();
    catalog_mount(url, &[], None, &[]);
    repos_listing(url, &[]);
}

/// The catalog mount and `floe repos` on a storage server, through the fault proxy.
fn through_the_proxy(server: &Server, env: &[(String, String)], url: &str) {
    let proxy = Proxy::start(&server.url());
    let through = proxy.env(env);
    catalog_mount(url, &pairs(env), Some(&proxy), &pairs(&through));
    repos_listing(url, &pairs(&through));
}

#[test]
fn a_bucket_of_repositories_on_s3_is_found_by_delimited_listings() {
    let server = moto_bucket("floe-cat");
    through_the_proxy(&server, &s3_env(&server), "s3://floe-cat/lab");
}

#[test]
fn a_container_of_repositories_on_azure_is_found_by_delimited_listings() {
    let server = azurite_container("floe-cat");
    through_the_proxy(&server, &az_env(&server), "az://floe-cat/lab");
}

/// A `dask.distributed` LocalCluster with two workers reduces over a Floe
/// repository on S3 (moto), through Icechunk and through a mount path, equal to
/// numpy over the sources.
#[test]
fn dask_reduces_a_floe_repository_on_s3_and_through_the_mount() {
    let server = moto_bucket("floe-dask");
    let env = s3_env(&server);
    let env = pairs(&env);
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "24"]);
    let url = "s3://floe-dask/lab/ghg";
    // small chunks, so that each worker has several to reduce
    let s = floe_env(&["sync", src.to_str().unwrap(), url, "--chunk-mib", "0.002"], &env);
    assert_eq!(s.code, 0, "{}\n{}", s.stdout, s.stderr);
    let m = Mount::start(url, &d.path().join("mnt"), &[], &env);
    let sources = files(&src, "nc");
    let mut a = vec!["dask", url, m.dir.to_str().unwrap()];
    a.extend(sources.iter().map(String::as_str));
    let out = py_ok(&a, &env);
    assert!(out.contains("OK:"), "{out}");
    eprint!("{out}");
}
