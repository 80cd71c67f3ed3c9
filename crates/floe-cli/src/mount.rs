//! `floe mount` and `floe unmount`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use floe_api::mounts::{MountView, Mounts, Serving, registry};
use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::Config;
use floe_fuse::MountSettings;
use floe_mount::VfsOptions;

use crate::Failure;
use crate::args::{MountArgs, MountsArgs, UnmountArgs};

fn mounts_api() -> Result<Mounts, Failure> {
    Ok(Mounts::new(Config::default_path().map_err(crate::config_err)?))
}

/// `floe unmount`.
pub(crate) async fn unmount(a: UnmountArgs) -> Result<i32, Failure> {
    mounts_api()?.unmount(&a.mountpoint).await?;
    out!("unmounted {}", a.mountpoint.display());
    Ok(0)
}

/// `floe mounts`.
pub(crate) fn mounts(MountsArgs { json }: MountsArgs) -> Result<i32, Failure> {
    let all = mounts_api()?.list();
    if json {
        out!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return Ok(0);
    }
    if all.is_empty() {
        out!("no Floe mounts");
    }
    for m in &all {
        out!("{}", mount_line(m));
    }
    Ok(0)
}

/// One mount in words: `/mnt/ctd ← s3://lab/ctd: mounted, process 4242 (floe) since …, at login`.
fn mount_line(m: &MountView) -> String {
    let process = match (m.pid, &m.program) {
        (Some(pid), Some(p)) => format!(", process {pid} ({p})"),
        (Some(pid), None) => format!(", process {pid}"),
        (None, _) => String::new(),
    };
    let since = m.since.as_ref().map_or(String::new(), |s| format!(" since {s}"));
    let login = if m.at_login { ", mounted at login" } else { "" };
    format!("{} ← {}: {}{process}{since}{login}", m.mountpoint, m.repo, m.state_label)
}

/// `floe mount`.
pub(crate) fn mount(a: MountArgs) -> Result<i32, Failure> {
    let url = RepoUrl::parse(&a.repo).map_err(|e| Failure(ErrorCode::Usage, e.to_string()))?;
    if a.background || a.at_login {
        return detach(&a);
    }
    let failure_file = a.failure_file.clone();
    let served = serve(&url, a);
    if let (Err(Failure(code, message)), Some(f)) = (&served, failure_file) {
        let failure = registry::Failure { code: *code, message: message.clone() };
        registry::write_failure(&f, &failure);
    }
    wait(served?)
}

fn secs(s: f64, what: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| Failure(ErrorCode::Usage, format!("--{what} must be a number of seconds ≥ 0")))
}

/// Mount in this process and say so.
fn serve(url: &RepoUrl, a: MountArgs) -> Result<Serving, Failure> {
    let vfs = VfsOptions {
        refresh: secs(a.refresh_secs, "refresh-secs")?,
        mem_cache_bytes: a.memory_cache,
        disk_cache: a.cache_dir.map(|d| (d, a.cache_size)),
        readahead_chunks: a.readahead,
        ..VfsOptions::default()
    };
    let settings = MountSettings {
        allow_other: a.allow_other,
        fs_name: format!("floe:{url}"),
        ..MountSettings::default()
    };
    let timeout = secs(a.timeout_secs, "timeout-secs")?;
    let serving = Serving::start(url, &a.mountpoint, vfs, &settings, timeout, log_file())?;
    eprintln!(
        "floe: {url} mounted read-only at {}; Ctrl-C or `floe unmount {}` to unmount",
        a.mountpoint.display(),
        a.mountpoint.display()
    );
    Ok(serving)
}

/// The file this process's messages go to, when they go to one (a detached helper).
fn log_file() -> Option<PathBuf> {
    std::fs::read_link("/proc/self/fd/2").ok().filter(|p| p.is_file())
}

/// Serve until Ctrl-C, SIGTERM, or an unmount from elsewhere.
fn wait(mounted: Serving) -> Result<i32, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?;
    // Tests (and supervisors) may ask the mount to end with the process that started it.
    let parent = std::env::var_os("FLOE_MOUNT_EXIT_WITH_PARENT")
        .map(|_| std::os::unix::process::parent_id());
    let why = rt.block_on(async {
        let stop = crate::shutdown_signal();
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                why = &mut stop => return why,
                _ = tick.tick() => {
                    if !mounted.is_alive() { return "unmounted" }
                    if parent.is_some_and(|p| p != std::os::unix::process::parent_id()) { return "the starting process exited" }
                }
            }
        }
    });
    let mp = mounted.mountpoint().to_path_buf();
    match mounted.unmount() {
        Ok(()) => {
            eprintln!("floe: {why}; {} unmounted", mp.display());
            Ok(0)
        }
        Err(e) => Err(Failure(
            ErrorCode::Usage,
            format!(
                "{why}, but unmounting {} failed: {e}; close what uses it, then `floe unmount {}`",
                mp.display(),
                mp.display()
            ),
        )),
    }
}

/// Mount in a helper process of its own (the options passed on), and return once
/// it serves.
fn detach(a: &MountArgs) -> Result<i32, Failure> {
    let mut extra: Vec<OsString> = Vec::new();
    let mut opt = |k: &str, v: String| extra.extend([OsString::from(k), OsString::from(v)]);
    if let Some(d) = &a.cache_dir {
        opt(
            "--cache-dir",
            std::path::absolute(d).unwrap_or_else(|_| d.clone()).display().to_string(),
        );
    }
    opt("--cache-size", a.cache_size.to_string());
    opt("--memory-cache", a.memory_cache.to_string());
    opt("--refresh-secs", a.refresh_secs.to_string());
    opt("--timeout-secs", a.timeout_secs.to_string());
    opt("--readahead", a.readahead.to_string());
    if a.allow_other {
        extra.push("--allow-other".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?;
    let m = rt.block_on(mounts_api()?.mount(&a.repo, &a.mountpoint, a.at_login, extra))?;
    let log = m.log.as_ref().map_or(String::new(), |l| format!(", log {l}"));
    out!(
        "mounted at {} (process {}{log}){}; `floe unmount {}` to unmount",
        m.mountpoint,
        m.pid.map_or_else(|| "?".to_string(), |p| p.to_string()),
        if m.at_login { ", and again at every login" } else { "" },
        m.mountpoint
    );
    Ok(0)
}
