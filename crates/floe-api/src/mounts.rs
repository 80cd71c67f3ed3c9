//! Mounts: start one in this process, list every Floe mount of the machine (from
//! `/proc/self/mountinfo`, so mounts made by `floe mount` show too), unmount, and
//! open a folder in the file manager.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_core::{ErrorCode, RepoUrl, lock};
use floe_fuse::{MountSettings, Mounted};
use serde::Serialize;

use crate::ApiError;

/// A mounted repository.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MountView {
    pub mountpoint: String,
    pub repo: String,
    /// Mounted by this process (else by `floe mount` or another app).
    pub here: bool,
}

/// Floe mounts in a mountinfo text: (mount point, repository).
pub fn parse_mountinfo(text: &str) -> Vec<(String, String)> {
    floe_fuse::parse_mountinfo(text)
        .into_iter()
        .filter_map(|m| {
            let repo = m.floe_repo()?.to_string();
            Some((m.mountpoint.display().to_string(), repo))
        })
        .collect()
}

/// The mounts this process made, and the way to list everyone's.
#[derive(Debug, Default, Clone)]
pub struct Mounts {
    mine: Arc<Mutex<BTreeMap<PathBuf, Mounted>>>,
}

impl Mounts {
    /// Mount `repo` read-only at `mountpoint` (an empty folder; created if missing).
    pub async fn mount(&self, repo: &str, mountpoint: &Path) -> Result<MountView, ApiError> {
        let url = RepoUrl::parse(repo)?;
        std::fs::create_dir_all(mountpoint).map_err(|e| {
            ApiError::new(
                ErrorCode::Usage,
                format!("cannot create the folder {}: {e}", mountpoint.display()),
            )
        })?;
        let mp = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
        let settings = MountSettings { fs_name: format!("floe:{url}"), ..MountSettings::default() };
        let mp2 = mp.clone();
        // the mount runs its own threads and runtime: start it off the async workers
        let mounted = tokio::task::spawn_blocking(move || {
            Mounted::start(
                &url,
                &mp2,
                floe_mount::VfsOptions::default(),
                &settings,
                Duration::from_secs(30),
            )
        })
        .await
        .map_err(crate::error::join_err)??;
        lock(&self.mine).insert(mp.clone(), mounted);
        Ok(MountView { mountpoint: mp.display().to_string(), repo: repo.to_string(), here: true })
    }

    /// Every Floe mount of this machine's mount namespace.
    pub fn list(&self) -> Vec<MountView> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mine = lock(&self.mine);
        // forget mounts someone else unmounted
        mine.retain(|_, m| m.is_alive());
        parse_mountinfo(&text)
            .into_iter()
            .map(|(mountpoint, repo)| MountView {
                here: mine.contains_key(Path::new(&mountpoint)),
                mountpoint,
                repo,
            })
            .collect()
    }

    /// Unmount a Floe mount (this process's or another's).
    pub async fn unmount(&self, mountpoint: &Path) -> Result<(), ApiError> {
        let mp = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
        let mine = lock(&self.mine).remove(&mp);
        tokio::task::spawn_blocking(move || match mine {
            Some(m) => m.unmount().map_err(|e| e.to_string()),
            None => floe_fuse::unmount(&mp),
        })
        .await
        .map_err(crate::error::join_err)?
        .map_err(|m| ApiError::new(ErrorCode::Usage, m))
    }

    /// Unmount everything this process mounted (at exit).
    pub fn unmount_all(&self) {
        let all = std::mem::take(&mut *lock(&self.mine));
        for (_, m) in all {
            let _ = m.unmount();
        }
    }
}

/// Show a folder in the desktop's file manager.
pub fn open_in_file_manager(path: &Path) -> Result<(), ApiError> {
    if !path.exists() {
        return Err(ApiError::new(
            ErrorCode::Usage,
            format!("{} does not exist (any more)", path.display()),
        ));
    }
    open::that_detached(path).map_err(|e| {
        ApiError::new(
            ErrorCode::Usage,
            format!(
                "no file manager could open {} ({e}); open it by hand or install one (e.g. xdg-utils)",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floe_mounts_from_mountinfo() {
        let text = "\
36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
90 29 0:52 / /tmp/a\\040b ro,nosuid,nodev - fuse.floe floe:s3://lab/ctd ro,user_id=0
91 29 0:53 / /tmp/c ro - fuse.sshfs host:/x ro
92 29 0:54 / /home/u/floe-demo/mnt ro - fuse.floe floe:/home/u/floe-demo/repo ro
93 29 0:55 / /root/mnt ro,nosuid - fuse floe:az://lab/x ro,user_id=0
";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                ("/tmp/a b".to_string(), "s3://lab/ctd".to_string()),
                ("/home/u/floe-demo/mnt".to_string(), "/home/u/floe-demo/repo".to_string()),
                ("/root/mnt".to_string(), "az://lab/x".to_string()),
            ]
        );
    }
}
