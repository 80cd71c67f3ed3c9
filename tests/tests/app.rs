//! The real desktop app under Xvfb, driven through tauri-driver and WebKitWebDriver
//! by a keep-alive WebDriver client (tests/python/app_e2e.py): add a folder through
//! the UI, drop a NetCDF file into it, see its commit in History (the repository
//! checked with Python icechunk + xarray), pause and resume (with `floe status`
//! agreeing), a wrong Azure key refused with nothing kept, mount and unmount,
//! start at login, 200% zoom, keyboard tabs, a gated folder held on a value outside
//! valid_range and its Release and Drop buttons (main read back with Python
//! icechunk + xarray after each), and a running `floe daemon` shown and
//! controlled instead of a second engine. The desktop session is real: the tray's
//! state is read from the StatusNotifierItem it registers with a watcher on the
//! session bus, notifications reach a notification server there, and a mount made
//! in the app outlives it (a file open in it keeps reading). Screenshots of every
//! screen go to `artifacts/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use floe_tests::desktop::{Driver, Xvfb, app_bin};
use floe_tests::servers::{SecretService, azurite_account, moto_with_auth};
use floe_tests::*;

/// The lab's Azure account: the only one the test's Azurite has, with a key of its
/// own (not the emulator's well-known one), so only a login typed in the app opens it.
const AZ_ACCOUNT: &str = "floelab";
const AZ_KEY: &str =
    "a2V5IG9mIHRoZSBsYWIgYWNjb3VudCwgdHlwZWQgaW50byB0aGUgYXBwIGFuZCBrZXB0IGluIHRoZSBrZXljaGFpbg==";

#[test]
fn the_app_adds_syncs_shows_history_pauses_mounts_and_refuses_a_wrong_key() {
    let server = azurite_account(AZ_ACCOUNT, AZ_KEY);
    let lab = [("AZ_ACCOUNT", AZ_ACCOUNT), ("AZ_KEY", AZ_KEY)];
    let made = py_env("storage.py", &["az-container", &server.url(), "lab"], &lab);
    assert_eq!(made.code, 0, "{}", made.stderr);
    // moto checking signatures: only the IAM user's key made here opens the bucket
    let s3 = moto_with_auth(3);
    let user = py("storage.py", &["s3-user", &s3.url(), "lab-bucket"]);
    assert_eq!(user.code, 0, "{}", user.stderr);
    let (key_id, secret) = user.stdout.trim().split_once(' ').unwrap();
    let s3_url = s3.url();
    let keyring = SecretService::start();
    let d0 = tempfile::tempdir().unwrap();
    let session = floe_tests::desktop::SessionServices::start(
        &keyring.address,
        &d0.path().join("notified.jsonl"),
    );
    let x = Xvfb::start();
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    let home = d.path().join("home");
    for p in [&work, &home, &d.path().join("run")] {
        std::fs::create_dir_all(p).unwrap();
    }
    let shots = root().join("artifacts/screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (cfg, run, xdg) =
        (s(&d.path().join("config.toml")), s(&d.path().join("run")), s(&home.join(".config")));
    let (app, floe, url) = (s(&app_bin()), s(&floe_bin()), server.url());
    let env: Vec<(&str, &str)> = vec![
        ("DISPLAY", &x.display),
        ("DBUS_SESSION_BUS_ADDRESS", &keyring.address),
        ("HOME", home.to_str().unwrap()),
        ("XDG_CONFIG_HOME", &xdg),
        ("FLOE_CONFIG", &cfg),
        ("FLOE_RUNTIME_DIR", &run),
        ("FLOE_KEYRING", "on"),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", &url),
        ("FLOE_LOG", "info"),
    ];
    let driver = Driver::start(&env, &d.path().join("driver.log"));
    // the same desktop at 200% (GNOME's Scale sets GDK_SCALE for the session)
    let mut scaled_env = env.clone();
    scaled_env.push(("GDK_SCALE", "2"));
    let scaled = Driver::start(&scaled_env, &d.path().join("driver-scaled.log"));
    let mut all = env.clone();
    let (work_s, shots_s, notified) = (s(&work), s(&shots), s(&session.notified));
    all.extend([
        ("FLOE_E2E_DRIVER", driver.url.as_str()),
        ("FLOE_E2E_DRIVER_SCALED", scaled.url.as_str()),
        ("FLOE_E2E_APP", app.as_str()),
        ("FLOE_E2E_WORK", work_s.as_str()),
        ("FLOE_E2E_SHOTS", shots_s.as_str()),
        ("FLOE_BIN", floe.as_str()),
        ("FLOE_E2E_NOTIFIED", notified.as_str()),
        // for the script to type into the login fields: the app's own environment
        // has no secret, so only what it keeps in the keychain opens the servers
        ("FLOE_E2E_AZ_ACCOUNT", AZ_ACCOUNT),
        ("FLOE_E2E_AZ_KEY", AZ_KEY),
        ("FLOE_E2E_S3_URL", s3_url.as_str()),
        ("FLOE_E2E_S3_KEY_ID", key_id),
        ("FLOE_E2E_S3_SECRET", secret),
    ]);
    let r = py_env("app_e2e.py", &[], &all);
    let log = std::fs::read_to_string(d.path().join("driver.log")).unwrap_or_default();
    // a mount the script could not undo must not outlive the test (mounts made in
    // the app live in helper processes of their own: unmounting ends them)
    for m in floe_fuse::mount_table() {
        if m.mountpoint.starts_with(&work) {
            let _ = floe_env(&["unmount", m.mountpoint.to_str().unwrap()], &env);
        }
    }
    assert_eq!(
        r.code,
        0,
        "{}\n{}\n--- app and driver log (tail) ---\n{}",
        r.stdout,
        r.stderr,
        log.lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // every phase ran to its end (each says so)
    for said in [
        "a second start ended in",
        "its mount (process",
        "the tray went through",
        "the 2-D plot equals xarray's mean",
        "remote destinations: Azure and S3 added",
        "at the desktop's 200%",
        "close to tray: web process freed, file synced, window reopened",
        "all good",
    ] {
        let line = r.stdout.lines().find(|l| l.contains(said));
        let line = line.unwrap_or_else(|| panic!("the script never said {said:?}:\n{}", r.stdout));
        eprintln!("{line}");
    }
    // the refused login wrote nothing (only the accepted one's repository is there),
    // and the logins typed into the app live in the keychain and nowhere else
    let blobs = py_env("storage.py", &["az-list", &server.url(), "lab"], &lab);
    assert_eq!(blobs.code, 0, "{}", blobs.stderr);
    assert!(
        blobs.stdout.lines().all(|b| b.starts_with("site-az/")) && !blobs.stdout.is_empty(),
        "{}",
        blobs.stdout
    );
    let kept = keyring.lookup("az://lab").expect("the Azure login in the keychain");
    assert!(kept.contains(AZ_KEY) && kept.contains(AZ_ACCOUNT), "{kept}");
    let kept = keyring.lookup("s3://lab-bucket").expect("the S3 login in the keychain");
    assert!(kept.contains(secret) && kept.contains(key_id), "{kept}");
    let config = std::fs::read_to_string(d.path().join("config.toml")).unwrap();
    assert!(!config.contains("site-wrong"), "{config}");
    assert!(!config.contains(AZ_KEY) && !config.contains(secret), "a secret in the config");
    // what the app synced there equals the file (Python icechunk + xarray, given
    // the keys directly)
    let az_env = [
        ("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT),
        ("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY),
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", url.as_str()),
    ];
    assert_url_equals("az://lab/site-az", &files(&work.join("to-azure"), "nc"), &[], &az_env);
    let s3_env = [
        ("AWS_ENDPOINT_URL", s3_url.as_str()),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    assert_url_equals("s3://lab-bucket/site-s3", &files(&work.join("to-s3"), "nc"), &[], &s3_env);
    assert!(!config.contains("[[mount]]"), "the unmounted mount is still kept for login");
    for name in [
        "folders-empty",
        "folders-wrong-login",
        "history",
        "folders-paused",
        "mounts",
        "mounts-outlived",
        "folders-held",
        "folders-remote",
        "folders-refused",
        "folders-second-start",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "no screenshot {name}");
    }
}
