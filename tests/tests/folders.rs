//! `floe add / list / remove` keep the registered folders in the user's config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::*;

#[test]
fn add_list_remove_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config/floe/config.toml");
    let env = [("FLOE_CONFIG", cfg.to_str().unwrap())];
    let folder = d.path().join("instrument");
    std::fs::create_dir_all(&folder).unwrap();
    let f = folder.to_str().unwrap();

    let r = floe_env(&["list"], &env);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no sync folders"), "{}", r.stdout);

    let r = floe_env(
        &["add", f, "s3://bucket/site-a", "--append-dim", "time", "--pattern", "*.nc"],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let again = floe_env(&["add", f, "/tmp/elsewhere"], &env);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already a sync folder"), "{}", again.stderr);
    let bad = floe_env(&["add", d.path().join("nope").to_str().unwrap(), "/tmp/r"], &env);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("does not exist"), "{}", bad.stderr);

    let r = floe_env(&["list", "--json"], &env);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[0]["repo"], "s3://bucket/site-a");
    assert_eq!(v[0]["append_dims"], serde_json::json!(["time"]));
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.to_lowercase().contains("secret") && !text.contains("key"), "{text}");

    let r = floe_env(&["remove", f], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("left as it is"), "{}", r.stdout);
    let r = floe_env(&["remove", f], &env);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("floe list"), "{}", r.stderr);
}
