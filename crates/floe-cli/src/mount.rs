//! `floe mount` and `floe unmount`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use floe_core::{ErrorCode, RepoUrl};
use floe_fuse::{MountSettings, Mounted};
use floe_mount::VfsOptions;

use crate::Failure;
use crate::args::{MountArgs, UnmountArgs};

/// Set in the detached child of `floe mount --background`.
const CHILD_ENV: &str = "FLOE_MOUNT_CHILD";

/// `floe unmount`.
#[expect(clippy::needless_pass_by_value, reason = "one command's arguments, consumed by it")]
pub(crate) fn unmount(a: UnmountArgs) -> Result<i32, Failure> {
    floe_fuse::unmount(&a.mountpoint).map_err(|m| Failure(ErrorCode::Usage, m))?;
    out!("unmounted {}", a.mountpoint.display());
    Ok(0)
}

/// `floe mount`.
pub(crate) fn mount(a: MountArgs) -> Result<i32, Failure> {
    let MountArgs {
        repo,
        mountpoint,
        cache_dir,
        cache_size,
        memory_cache,
        allow_other,
        background,
        refresh_secs,
        timeout_secs,
        readahead,
    } = a;
    {
        {
            let url =
                RepoUrl::parse(&repo).map_err(|e| Failure(ErrorCode::Usage, e.to_string()))?;
            if background && std::env::var_os(CHILD_ENV).is_none() {
                return detach(&mountpoint);
            }
            let secs = |s: f64, what: &str| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    Failure(ErrorCode::Usage, format!("--{what} must be a number of seconds ≥ 0"))
                })
            };
            let vfs = VfsOptions {
                refresh: secs(refresh_secs, "refresh-secs")?,
                mem_cache_bytes: memory_cache,
                disk_cache: cache_dir.map(|d| (d, cache_size)),
                readahead_chunks: readahead,
                ..VfsOptions::default()
            };
            let settings = MountSettings {
                allow_other,
                fs_name: format!("floe:{url}"),
                ..MountSettings::default()
            };
            let timeout = secs(timeout_secs, "timeout-secs")?;
            let mounted = Mounted::start(&url, &mountpoint, vfs, &settings, timeout)
                .map_err(|e| Failure(e.code(), e.to_string()))?;
            eprintln!(
                "floe: {url} mounted read-only at {}; Ctrl-C or `floe unmount {}` to unmount",
                mountpoint.display(),
                mountpoint.display()
            );
            wait(mounted)
        }
    }
}

/// Serve until Ctrl-C, SIGTERM, or an unmount from elsewhere.
fn wait(mounted: Mounted) -> Result<i32, Failure> {
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

/// Start this same command again, detached, and return once it has mounted.
fn detach(mountpoint: &Path) -> Result<i32, Failure> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?;
    let log_dir = dirs::state_dir().unwrap_or_else(std::env::temp_dir).join("floe");
    let _ = std::fs::create_dir_all(&log_dir);
    let name = mountpoint.display().to_string().replace('/', "_");
    let log_path = log_dir.join(format!("mount{name}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Failure(ErrorCode::Internal, format!("{}: {e}", log_path.display())))?;
    let args: Vec<_> = std::env::args_os().skip(1).filter(|a| a != "--background").collect();
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Failure(ErrorCode::Internal, format!("cannot start the mount process: {e}"))
        })?;
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < end {
        if floe_fuse::is_mounted(mountpoint) {
            out!(
                "mounted at {} (process {}, log {}); `floe unmount {}` to unmount",
                mountpoint.display(),
                child.id(),
                log_path.display(),
                mountpoint.display()
            );
            return Ok(0);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let msg = std::fs::read_to_string(&log_path).unwrap_or_default();
            let msg = msg
                .lines()
                .rfind(|l| l.starts_with("floe:"))
                .unwrap_or("")
                .trim_start_matches("floe: ");
            return Err(Failure(
                ErrorCode::Usage,
                format!("the mount process ended ({status}): {msg}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Err(Failure(
        ErrorCode::Storage,
        format!("no mount at {} after 60 s; see {}", mountpoint.display(), log_path.display()),
    ))
}
