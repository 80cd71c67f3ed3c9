//! The same ingest against real object stores on loopback: moto's S3 server and
//! Azurite. The repository there is the record of what was ingested, exactly as on
//! a local disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::servers::{az_env, azurite_container, moto, moto_bucket, pairs, s3_env};
use floe_tests::*;

/// Sync, check with the reference readers, sync again (nothing new), add a file.
fn round_trip(url: &str, env: &[(&str, &str)]) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "3"]);
    let r = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--batch", "1"], env);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ingested 3 file(s)"), "{}", r.stdout);
    assert_url_equals(url, &files(&src, "nc"), &[], env);

    let again = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0"], env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("nothing new to ingest"), "{}", again.stdout);

    make(&src, &["--files", "1", "--start", "3"]);
    let more = floe_env(&["sync", src.to_str().unwrap(), url, "--quiet", "0", "--json"], env);
    assert_eq!(more.code, 0, "{}", more.stderr);
    let report: serde_json::Value = serde_json::from_str(&more.stdout).unwrap();
    assert_eq!(report["ingested"].as_array().unwrap().len(), 1);
    assert_url_equals(url, &files(&src, "nc"), &[], env);

    let log = floe_env(&["log", url, "--json"], env);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let history: serde_json::Value = serde_json::from_str(&log.stdout).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 5, "initial commit + 4 files");
}

#[test]
fn s3_on_moto() {
    let server = moto_bucket("floe-test");
    round_trip("s3://floe-test/instruments/site-a", &pairs(&s3_env(&server)));
}

#[test]
fn azure_on_azurite() {
    let server = azurite_container("floe-test");
    round_trip("az://floe-test/instruments/site-a", &pairs(&az_env(&server)));
}

#[test]
fn a_missing_bucket_or_an_unreachable_server_is_a_clear_error() {
    let server = moto();
    let env = s3_env(&server);
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "1"]);
    let r = floe_env(
        &["sync", src.to_str().unwrap(), "s3://no-such-bucket/x", "--quiet", "0"],
        &pairs(&env),
    );
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("does not exist") && r.stderr.contains("create it"), "{}", r.stderr);
    let port = server.port;
    drop(server);
    let mut env = env;
    env[0].1 = format!("http://127.0.0.1:{port}");
    let r = floe_env(&["log", "s3://floe-test/x"], &pairs(&env));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
}
