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
use floe_tests::servers::{SecretService, azurite};
use floe_tests::*;

#[test]
fn the_app_adds_syncs_shows_history_pauses_mounts_and_refuses_a_wrong_key() {
    let server = azurite();
    assert_eq!(py("storage.py", &["az-container", &server.url(), "lab"]).code, 0);
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
        "at the desktop's 200%",
        "close to tray: web process freed, file synced, window reopened",
        "all good",
    ] {
        let line = r.stdout.lines().find(|l| l.contains(said));
        let line = line.unwrap_or_else(|| panic!("the script never said {said:?}:\n{}", r.stdout));
        eprintln!("{line}");
    }
    // nothing of the refused login was kept: not in the keychain, not in the config,
    // and nothing was written to the container
    let blobs = py("storage.py", &["az-list", &server.url(), "lab"]);
    assert_eq!((blobs.code, blobs.stdout.trim()), (0, ""), "{}", blobs.stderr);
    assert_eq!(keyring.lookup("az://lab"), None);
    let config = std::fs::read_to_string(d.path().join("config.toml")).unwrap();
    assert!(!config.contains("site-wrong") && !config.contains("az://"), "{config}");
    assert!(!config.contains("[[mount]]"), "the unmounted mount is still kept for login");
    for name in [
        "folders-empty",
        "folders-wrong-login",
        "history",
        "folders-paused",
        "mounts",
        "mounts-outlived",
        "folders-held",
        "folders-refused",
        "folders-second-start",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "no screenshot {name}");
    }
}
