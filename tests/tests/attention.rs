//! A folder with files Floe could not sync is never "all synced": the daemon lists
//! each with its reason until it is fixed, replaced or removed, or the user marks it
//! ignored; and a pause is kept in the config, so the daemon starts paused again
//! after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use floe_tests::daemon::*;
use floe_tests::*;

/// The daemon's refused files as (file, ignored, code).
fn refused(env: &[(&str, &str)]) -> Vec<(String, bool, String)> {
    let s = status(env);
    s[0]["rejected"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                    (text("file"), r["ignored"].as_bool().unwrap_or(false), text("code"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn stopped(mut d: Daemon) {
    let pid = d.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(d.0.wait().unwrap().code(), Some(0));
}

#[test]
fn files_that_could_not_be_synced_need_attention_until_fixed_removed_or_ignored() {
    let site = Site::new();
    let env = site.env();
    let w = site.watched.to_str().unwrap();
    assert_eq!(floe_env(&["add", w, site.repo.to_str().unwrap()], &env).code, 0);
    // what a new user tried: three good files, a truncated one, a text file named .nc
    drop_files(&site.stage, &site.watched, &["--files", "3"]);
    let good = files(&site.watched, "nc");
    let whole = std::fs::read(&good[0]).unwrap();
    std::fs::write(site.watched.join("truncated.nc"), &whole[..3000]).unwrap();
    std::fs::write(site.watched.join("notes.nc"), "calibration notes, not data\n").unwrap();
    age(&site.watched);

    let _daemon = spawn_daemon(&env, "0.3", "1");
    wait_until("three files in and two refused", || {
        status(&env)[0]["files_ingested"] == 3 && refused(&env).len() == 2
    });
    let codes: Vec<(String, bool, String)> = refused(&env);
    assert_eq!(
        codes,
        vec![
            ("notes.nc".to_string(), false, "bad_source".to_string()),
            ("truncated.nc".to_string(), false, "bad_source".to_string())
        ]
    );
    // the words: never "All synced", and each file with its reason
    wait_until("the folder idle", || status(&env)[0]["state"]["state"] == "idle");
    let out = floe_env(&["status"], &env).stdout;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Needs attention"), "{out}");
    assert!(out.contains("Needs attention: 2 files could not be synced"), "{out}");
    for why in ["notes.nc: not a NetCDF or Zarr file", "truncated.nc: the file is truncated"] {
        assert!(out.lines().any(|l| l.contains("not synced: ") && l.contains(why)), "{out}");
    }
    // refused again on every rescan, it is still one entry since the first refusal
    let since = status(&env)[0]["rejected"][0]["since"].clone();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&env)[0]["rejected"][0]["since"], since);

    // ignored: listed, no longer counted; the setting is in the config
    let r = floe_env(&["ignore", w, "notes.nc"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&site.cfg).unwrap().contains("notes.nc"));
    wait_until("notes.nc ignored", || refused(&env).first().is_some_and(|r| r.1));
    let out = floe_env(&["status"], &env).stdout;
    assert!(out.contains("Needs attention: 1 file could not be synced"), "{out}");
    assert!(
        out.lines().any(|l| l.contains("not synced (ignored): ") && l.contains("notes.nc")),
        "{out}"
    );

    // replaced by a whole file (written elsewhere, moved in): taken, entry gone
    make(&site.stage, &["--files", "1", "--start", "3"]);
    let fresh = files(&site.stage, "nc");
    std::fs::rename(&fresh[0], site.watched.join("truncated.nc")).unwrap();
    wait_until("the replaced file taken", || {
        status(&env)[0]["files_ingested"] == 4
            && refused(&env).iter().all(|r| r.0 != "truncated.nc")
    });
    let out = floe_env(&["status"], &env).stdout;
    assert_eq!(out.lines().next(), Some("All synced"), "{out}");

    // removed: its entry goes too
    std::fs::remove_file(site.watched.join("notes.nc")).unwrap();
    wait_until("the removed file's entry gone", || refused(&env).is_empty());
    assert_repo_equals(&site.repo, &files(&site.watched, "nc"), &[]);
}

#[test]
fn a_pause_survives_a_restart_of_the_daemon() {
    let site = Site::new();
    let env = site.env();
    let w = site.watched.to_str().unwrap();
    assert_eq!(floe_env(&["add", w, site.repo.to_str().unwrap()], &env).code, 0);
    drop_files(&site.stage, &site.watched, &["--files", "1"]);
    let daemon = spawn_daemon(&env, "0.3", "1");
    wait_until("the first file", || status(&env)[0]["files_ingested"] == 1);
    let r = floe_env(&["pause", w], &env);
    assert!(r.code == 0 && r.stdout.contains("paused 1"), "{} {}", r.stdout, r.stderr);
    assert!(std::fs::read_to_string(&site.cfg).unwrap().contains("paused = true"));
    stopped(daemon);

    // restarted (a reboot, a new login): still paused, nothing taken
    drop_files(&site.stage, &site.watched, &["--files", "1", "--start", "1"]);
    let daemon = spawn_daemon(&env, "0.3", "1");
    wait_until("the daemon up", || status(&env)[0]["state"]["state"] == "paused");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(status(&env)[0]["state"]["state"], "paused");
    assert_eq!(log_json(&site.repo, "main").len(), 2, "nothing written while paused");
    let r = floe_env(&["resume"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read_to_string(&site.cfg).unwrap().contains("paused = false"));
    wait_until("the file dropped while paused", || status(&env)[0]["files_ingested"] == 1);
    stopped(daemon);

    // and resumed stays resumed
    let _daemon = spawn_daemon(&env, "0.3", "1");
    wait_until("the daemon up, resumed", || {
        let s = status(&env);
        s[0]["state"]["state"] == "idle"
    });
    assert_repo_equals(&site.repo, &files(&site.watched, "nc"), &[]);
}
