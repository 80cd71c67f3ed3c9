//! `floe login` keeps a destination's secret in the OS keychain: a real Secret
//! Service (GNOME Keyring on a private D-Bus session), a real Azurite whose only
//! account has a key of its own (not the emulator's well-known one), so that nothing
//! but the stored login opens it. A wrong key is refused and not kept; the right one
//! is kept, used by sync and doctor, and never shows up in the config file, the
//! output or the logs; once it is gone from the keychain, a sync is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::servers::{SecretService, azurite_account, moto_with_auth};
use floe_tests::*;

/// The emulator's well-known key: it must not open the lab's account.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const ACCOUNT: &str = "floelab";
/// The lab account's own key (base64 of 64 bytes, like a real one).
const LAB_KEY: &str =
    "bGFiIGtleSBmb3IgdGhlIGZsb2UgdGVzdHMsIGtlcHQgaW4gdGhlIGtleWNoYWluIGFuZCBub3doZXJlIGVsc2U=";

#[test]
fn a_login_lives_in_the_keychain_and_nowhere_else() {
    let server = azurite_account(ACCOUNT, LAB_KEY);
    let lab = [("AZ_ACCOUNT", ACCOUNT), ("AZ_KEY", LAB_KEY)];
    let made = py_env("storage.py", &["az-container", &server.url(), "lab"], &lab);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let keyring = SecretService::start();
    let d = tempfile::tempdir().unwrap();
    let (src, cfg) = (d.path().join("src"), d.path().join("config.toml"));
    let url = server.url();
    // where the emulator is and the account's name: nothing secret in the
    // environment (without a key, the emulator's well-known one would be used)
    let env = [
        ("FLOE_KEYRING", "on"),
        ("DBUS_SESSION_BUS_ADDRESS", keyring.address.as_str()),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", url.as_str()),
        ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT),
        ("FLOE_CONFIG", cfg.to_str().unwrap()),
        ("FLOE_LOG", "debug"),
    ];
    let repo = "az://lab/site-a";

    // a wrong key: the storage refuses it, and it is not kept
    let wrong = "d3Jvbmcga2V5IGZvciBhenVyaXRlIGF0IGFsbA==";
    let r = floe_stdin(&["login", repo], &env, &format!("{ACCOUNT}\n{wrong}\n\n"));
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("refused the credentials") && r.stderr.contains("not kept"),
        "{}",
        r.stderr
    );
    assert_eq!(keyring.lookup("az://lab"), None);

    // the right key: checked against Azurite and kept in the Secret Service
    let r = floe_stdin(&["login", repo], &env, &format!("{ACCOUNT}\n{LAB_KEY}\n\n"));
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("accepts them"), "{}", r.stdout);
    let kept = keyring.lookup("az://lab").expect("an entry in the Secret Service");
    assert!(kept.contains(LAB_KEY) && kept.contains(ACCOUNT));

    // sync and doctor use it; the secret appears nowhere else
    make(&src, &["--files", "2"]);
    let add = floe_env(&["add", src.to_str().unwrap(), repo], &env);
    assert_eq!(add.code, 0, "{}", add.stderr);
    let sync = floe_env(&["sync", src.to_str().unwrap(), repo, "--quiet", "0"], &env);
    assert_eq!(sync.code, 0, "{}\n{}", sync.stdout, sync.stderr);
    let doctor = floe_env(&["doctor", repo, "--probe-mib", "8", "--json"], &env);
    assert_eq!(doctor.code, 0, "{}\n{}", doctor.stdout, doctor.stderr);
    let diag: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    assert!(diag["checks"][0]["detail"].as_str().unwrap().contains("OS keychain"), "{diag}");
    assert!(diag["upload_bytes_per_sec"].as_f64().unwrap() > 0.0, "{diag}");
    assert!(diag["checks"].as_array().unwrap().iter().all(|c| c["outcome"] == "ok"), "{diag}");
    let config = std::fs::read_to_string(&cfg).unwrap();
    for text in [
        &config,
        &add.stdout,
        &add.stderr,
        &sync.stdout,
        &sync.stderr,
        &doctor.stdout,
        &doctor.stderr,
    ] {
        assert!(!text.contains(LAB_KEY) && !text.contains(wrong), "a secret leaked: {text}");
    }
    let reference_env = [
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", url.as_str()),
        ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT),
        ("AZURE_STORAGE_ACCOUNT_KEY", LAB_KEY),
    ];
    assert_url_equals(repo, &files(&src, "nc"), &[], &reference_env);

    // logout forgets it
    let out = floe_env(&["logout", repo], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(keyring.lookup("az://lab"), None);
    let doctor = floe_env(&["doctor", repo, "--probe-mib", "0", "--json"], &env);
    let diag: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    assert!(!diag["checks"][0]["detail"].as_str().unwrap().contains("OS keychain"), "{diag}");
    // and without it a sync is refused, saying why
    make(&src, &["--files", "1", "--start", "2"]);
    let r = floe_env(&["sync", src.to_str().unwrap(), repo, "--quiet", "0"], &env);
    assert_eq!(r.code, 4, "a sync without the login: {}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
    // nor does the emulator's own key: only the login opened this account
    let mut well_known = env.to_vec();
    well_known.push(("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY));
    let r = floe_env(&["sync", src.to_str().unwrap(), repo, "--quiet", "0"], &well_known);
    assert_eq!(r.code, 4, "the well-known key opened the account: {}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
}

#[test]
fn an_s3_login_lives_in_the_keychain_and_a_server_that_checks_keys_takes_only_it() {
    // moto checking signatures: only the IAM user's key made at the start works
    let server = moto_with_auth(3);
    let made = py("storage.py", &["s3-user", &server.url(), "lab-bucket"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let (key_id, secret) = made.stdout.trim().split_once(' ').unwrap();
    let keyring = SecretService::start();
    let d = tempfile::tempdir().unwrap();
    let (src, cfg) = (d.path().join("src"), d.path().join("config.toml"));
    let url = server.url();
    let env = [
        ("FLOE_KEYRING", "on"),
        ("DBUS_SESSION_BUS_ADDRESS", keyring.address.as_str()),
        ("FLOE_CONFIG", cfg.to_str().unwrap()),
    ];
    let repo = "s3://lab-bucket/site";
    // a key moto does not know is refused and not kept
    let wrong = format!("AKIAWRONGWRONGWRONG1\nnot-the-secret\n\n\n{url}\n");
    let r = floe_stdin(&["login", repo], &env, &wrong);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
    assert_eq!(keyring.lookup("s3://lab-bucket"), None);
    // the user's key: checked, kept, used by sync
    let right = format!("{key_id}\n{secret}\n\n\n{url}\n");
    let r = floe_stdin(&["login", repo], &env, &right);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(keyring.lookup("s3://lab-bucket").is_some_and(|k| k.contains(secret)));
    make(&src, &["--files", "2"]);
    let sync = floe_env(&["sync", src.to_str().unwrap(), repo, "--quiet", "0"], &env);
    assert_eq!(sync.code, 0, "{}\n{}", sync.stdout, sync.stderr);
    assert!(!sync.stdout.contains(secret) && !sync.stderr.contains(secret), "a secret leaked");
    let reference = [
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    assert_url_equals(repo, &files(&src, "nc"), &[], &reference);
    // after logout, the keys every test server takes ("testing") are refused
    assert_eq!(floe_env(&["logout", repo], &env).code, 0);
    let mut other = env.to_vec();
    other.extend([
        ("AWS_ENDPOINT_URL", url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);
    make(&src, &["--files", "1", "--start", "2"]);
    let r = floe_env(&["sync", src.to_str().unwrap(), repo, "--quiet", "0"], &other);
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("refused the credentials"), "{}", r.stderr);
}

#[test]
fn without_a_keyring_login_says_to_use_the_environment() {
    // no D-Bus session at all: a headless machine
    let r = floe_stdin(
        &["login", "s3://bucket/x", "--no-check"],
        &[("FLOE_KEYRING", "on"), ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
        "AKIA\nsecret\n\n\n\n",
    );
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("keychain is not available") && r.stderr.contains("AWS_*"),
        "{}",
        r.stderr
    );
    // an incomplete login is refused before anything is kept
    let r = floe_stdin(&["login", "s3://bucket/x"], &[], "AKIA\n\n\n\n\n");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", r.stderr);
}
