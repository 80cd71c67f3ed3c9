//! Mounts: each served by a process of its own (a `floe mount` helper, or a
//! `floe mount` in a terminal), so that mounts made in the app outlive its window
//! and the app itself; list every Floe mount of the machine with its repository,
//! process and state; unmount; keep some to mount again at login; open a folder in
//! the file manager.
//!
//! What is mounted comes from `/proc/self/mountinfo` (mounts made by anyone show),
//! who serves it from the [`registry`], and what to mount at login from the config.

pub mod helper;
pub mod registry;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::{Config, MountConfig};
use floe_fuse::{MountEntry, MountSettings, Mounted};
use serde::Serialize;

use crate::ApiError;
use registry::{Claim, Record};

/// Where a mount stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountState {
    /// Mounted and served.
    Mounted,
    /// Its process serves it but the kernel does not show it (yet, or any more).
    Starting,
    /// Still in the mount table, but its process is gone: reads fail with
    /// "Transport endpoint is not connected" until it is unmounted or mounted again.
    Dead,
    /// To be mounted at login, not mounted now.
    NotMounted,
}

impl MountState {
    /// The state in words, as `floe mounts` and the app show it.
    pub fn label(self) -> &'static str {
        match self {
            MountState::Mounted => "mounted",
            MountState::Starting => "starting",
            MountState::Dead => "dead (its process ended): mount again or unmount",
            MountState::NotMounted => "not mounted",
        }
    }
}

/// A Floe mount.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MountView {
    pub mountpoint: String,
    pub repo: String,
    pub state: MountState,
    pub state_label: &'static str,
    /// The process serving it, when known (a mount made by an older Floe has none).
    pub pid: Option<u32>,
    /// That process's name (`floe`).
    pub program: Option<String>,
    /// Serving since (UTC, RFC 3339).
    pub since: Option<String>,
    /// Mounted again at every login.
    pub at_login: bool,
    /// The helper's log, for a mount started detached.
    pub log: Option<String>,
}

/// The Floe mounts of a mount table: (mount point, repository).
fn floe_mounts(table: &[MountEntry]) -> Vec<(String, String)> {
    table
        .iter()
        .filter_map(|m| Some((m.mountpoint.display().to_string(), m.floe_repo()?.to_string())))
        .collect()
}

/// How many times a listing is read again when a Floe mount came or went while it
/// was read.
const LIST_TRIES: usize = 5;

/// `view` of a mount table that held still while it was made: the kernel's table, the
/// registry and the probes are read at different moments, and a mount detached or
/// replaced in between would be shown in a state it never had. (CI caught a listing
/// of "mounted, no process" in the moment a dead mount was detached for its
/// successor: the table was read before, the probe found a plain folder after.) So
/// the table is read again after the view, and everything again when one of its
/// Floe mounts (by mount id) changed; after [`LIST_TRIES`] the last view stands.
fn settled<T>(
    mut table: impl FnMut() -> Vec<MountEntry>,
    mut view: impl FnMut(&[MountEntry]) -> T,
) -> T {
    fn floe(t: &[MountEntry]) -> impl Iterator<Item = &MountEntry> {
        t.iter().filter(|m| m.floe_repo().is_some())
    }
    let mut before = table();
    let mut tries = 1;
    loop {
        let v = view(&before);
        let after = table();
        if tries == LIST_TRIES || floe(&after).eq(floe(&before)) {
            return v;
        }
        (before, tries) = (after, tries + 1);
    }
}

/// Every Floe mount from what the kernel shows (`table`), who serves what
/// (`records`) and what is kept for login (`at_login`); `dead` says whether a mount
/// nobody is known to serve has lost its process.
pub fn join(
    table: &[(String, String)],
    records: &[Record],
    at_login: &[MountConfig],
    dead: impl Fn(&Path) -> bool,
) -> Vec<MountView> {
    let login = |mp: &str| at_login.iter().any(|m| m.path == Path::new(mp));
    let record = |mp: &str| records.iter().find(|r| r.mountpoint == Path::new(mp));
    let view = |mp: &str, repo: &str, state: MountState, r: Option<&Record>| MountView {
        mountpoint: mp.to_string(),
        repo: repo.to_string(),
        state,
        state_label: state.label(),
        pid: r.map(|r| r.pid),
        program: None,
        since: r.map(|r| r.since.clone()),
        at_login: login(mp),
        log: r.and_then(|r| r.log.as_ref()).map(|l| l.display().to_string()),
    };
    let mut out: Vec<MountView> = table
        .iter()
        .map(|(mp, repo)| match record(mp) {
            Some(r) => view(mp, repo, MountState::Mounted, Some(r)),
            None if dead(Path::new(mp)) => view(mp, repo, MountState::Dead, None),
            None => view(mp, repo, MountState::Mounted, None),
        })
        .collect();
    let shown = |mp: &Path, out: &[MountView]| out.iter().any(|v| Path::new(&v.mountpoint) == mp);
    for r in records {
        if !shown(&r.mountpoint, &out) {
            let mp = r.mountpoint.display().to_string();
            out.push(view(&mp, &r.repo, MountState::Starting, Some(r)));
        }
    }
    for m in at_login {
        if !shown(&m.path, &out) {
            out.push(view(&m.path.display().to_string(), &m.repo, MountState::NotMounted, None));
        }
    }
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out
}

/// A process's name, from `/proc`.
fn program_of(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_string())
}

/// A mount point as the kernel shows it: absolute, links resolved.
fn canonical(mountpoint: &Path) -> PathBuf {
    std::fs::canonicalize(mountpoint).unwrap_or_else(|_| absolute(mountpoint))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A repository URL a helper working in `/` reads the same: a local path made absolute.
fn absolute_repo(repo: &str) -> Result<String, ApiError> {
    Ok(match RepoUrl::parse(repo)? {
        RepoUrl::Local(p) if p.is_relative() => absolute(&p).display().to_string(),
        _ => repo.to_string(),
    })
}

/// This machine's Floe mounts, and the user's mounts kept for login.
#[derive(Debug, Clone)]
pub struct Mounts {
    config: PathBuf,
}

impl Mounts {
    /// Mounts kept for login in the config at `config`.
    pub fn new(config: impl Into<PathBuf>) -> Self {
        Mounts { config: config.into() }
    }

    /// Mount `repo` read-only at `mountpoint` (an empty folder; created if missing),
    /// served by a helper process that outlives this one; `at_login` keeps it for
    /// every login. `extra` goes to `floe mount` as given (cache sizes, say).
    pub async fn mount(
        &self,
        repo: &str,
        mountpoint: &Path,
        at_login: bool,
        extra: Vec<OsString>,
    ) -> Result<MountView, ApiError> {
        let repo = absolute_repo(repo)?;
        // a mount whose process died (a killed helper, a reboot that left it) is
        // detached first: its folder cannot even be looked at until then
        let dead = absolute(mountpoint);
        tokio::task::spawn_blocking(move || floe_fuse::clean_dead_mount(&dead))
            .await
            .map_err(crate::error::join_err)?;
        std::fs::create_dir_all(mountpoint).map_err(|e| {
            ApiError::new(
                ErrorCode::Usage,
                format!("cannot create the folder {}: {e}", mountpoint.display()),
            )
        })?;
        let mp = canonical(mountpoint);
        // mounting what is mounted there already is done
        let same = registry::serving(&registry::dir(), &mp).is_some_and(|r| r.repo == repo);
        if !(same && floe_fuse::is_mounted(&mp)) {
            let (r, mp2) = (repo.clone(), mp.clone());
            tokio::task::spawn_blocking(move || helper::start(&r, &mp2, &extra))
                .await
                .map_err(crate::error::join_err)??;
        }
        if at_login {
            self.keep_at_login(&repo, &mp)?;
        }
        self.view(&mp)
    }

    /// Every Floe mount of this machine's mount namespace, and those kept for login.
    pub fn list(&self) -> Vec<MountView> {
        let at_login = Config::load(&self.config).map(|c| c.mounts).unwrap_or_else(|e| {
            tracing::warn!("mounts kept for login unknown: {e}");
            Vec::new()
        });
        let mut out = settled(floe_fuse::mount_table, |table| {
            // the registry after the table: a helper claims before it mounts, so a
            // mount in the table has its record by now
            join(
                &floe_mounts(table),
                &registry::all(&registry::dir()),
                &at_login,
                floe_fuse::is_dead,
            )
        });
        for v in &mut out {
            v.program = v.pid.and_then(program_of);
        }
        out
    }

    fn view(&self, mountpoint: &Path) -> Result<MountView, ApiError> {
        self.list().into_iter().find(|v| Path::new(&v.mountpoint) == mountpoint).ok_or_else(|| {
            ApiError::new(ErrorCode::Usage, format!("{} is not a Floe mount", mountpoint.display()))
        })
    }

    /// Unmount a Floe mount (whoever serves it), wait for its process to leave, and
    /// no longer mount it at login.
    pub async fn unmount(&self, mountpoint: &Path) -> Result<(), ApiError> {
        let mp = canonical(mountpoint);
        let kept = Config::load(&self.config).is_ok_and(|c| c.mounts.iter().any(|m| m.path == mp));
        // (a mount kept for login and not mounted now is only forgotten)
        if !kept || floe_fuse::is_mounted(&mp) {
            let mp2 = mp.clone();
            tokio::task::spawn_blocking(move || {
                floe_fuse::unmount(&mp2).map_err(|m| ApiError::new(ErrorCode::Usage, m))?;
                wait_left(&registry::dir(), &mp2, Duration::from_secs(10));
                Ok::<(), ApiError>(())
            })
            .await
            .map_err(crate::error::join_err)??;
        }
        if kept {
            self.forget_at_login(&mp)?;
        }
        Ok(())
    }

    /// Mount `mountpoint` again at every login (`on`), or no longer.
    pub fn set_at_login(&self, mountpoint: &Path, on: bool) -> Result<MountView, ApiError> {
        let mp = canonical(mountpoint);
        if on {
            let v = self.view(&mp)?;
            self.keep_at_login(&v.repo, &mp)?;
        } else {
            self.forget_at_login(&mp)?;
        }
        self.view(&mp)
    }

    fn keep_at_login(&self, repo: &str, mp: &Path) -> Result<(), ApiError> {
        let mut c = Config::load(&self.config)?;
        c.mounts.retain(|m| m.path != mp);
        c.mounts.push(MountConfig { repo: repo.to_string(), path: mp.to_path_buf() });
        Ok(c.save(&self.config)?)
    }

    fn forget_at_login(&self, mp: &Path) -> Result<(), ApiError> {
        let mut c = Config::load(&self.config)?;
        let before = c.mounts.len();
        c.mounts.retain(|m| m.path != mp);
        if c.mounts.len() != before {
            c.save(&self.config)?;
        }
        Ok(())
    }

    /// Mount what is kept for login and not served now (by the app and by `floe
    /// daemon` as they start, whichever comes first; the other finds it served),
    /// logging each outcome for whichever shell asked.
    pub async fn restore(&self) -> Vec<(PathBuf, Result<MountView, ApiError>)> {
        let kept = match Config::load(&self.config) {
            Ok(c) => c.mounts,
            Err(e) => {
                tracing::warn!("mounts kept for login unknown: {e}");
                return vec![(self.config.clone(), Err(e.into()))];
            }
        };
        let mut out = Vec::new();
        for m in kept {
            let served = registry::serving(&registry::dir(), &m.path).is_some()
                && floe_fuse::is_mounted(&m.path);
            if served {
                continue;
            }
            let r = self.mount(&m.repo, &m.path, false, Vec::new()).await;
            match &r {
                Ok(v) => {
                    tracing::info!(pid = ?v.pid, "mounted {} ({}) again at login", v.mountpoint, v.repo)
                }
                Err(e) => tracing::warn!("could not mount {} at login: {e}", m.path.display()),
            }
            out.push((m.path, r));
        }
        out
    }
}

/// Wait (up to `timeout`) until nobody serves `mp`.
fn wait_left(dir: &Path, mp: &Path, timeout: Duration) {
    let end = std::time::Instant::now() + timeout;
    while registry::serving(dir, mp).is_some() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mount served by this process, written in the registry for as long as it serves.
#[derive(Debug)]
pub struct Serving {
    // (dropped in this order: unmounted first, then the record goes)
    mounted: Mounted,
    _claim: Claim,
}

impl Serving {
    /// Claim `mountpoint` in the registry, open the repository (or the catalog under
    /// it) and mount it; `log` is where this process's messages go, if detached.
    pub fn start(
        url: &RepoUrl,
        mountpoint: &Path,
        vfs: floe_mount::VfsOptions,
        settings: &MountSettings,
        timeout: Duration,
        log: Option<PathBuf>,
    ) -> Result<Serving, ApiError> {
        let mp = canonical(mountpoint);
        let record = Record {
            mountpoint: mp.clone(),
            repo: url.to_string(),
            pid: std::process::id(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            log,
        };
        let claim = registry::claim(&registry::dir(), &record)?;
        let mounted = Mounted::start(url, &mp, vfs, settings, timeout)
            .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
        Ok(Serving { mounted, _claim: claim })
    }

    pub fn mountpoint(&self) -> &Path {
        self.mounted.mountpoint()
    }

    /// Whether the kernel still serves the mount (false once someone unmounted it).
    pub fn is_alive(&self) -> bool {
        self.mounted.is_alive()
    }

    /// Unmount, wait for the serving threads, and leave the registry.
    pub fn unmount(self) -> std::io::Result<()> {
        let Serving { mounted, _claim } = self;
        mounted.unmount()
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
            floe_mounts(&floe_fuse::parse_mountinfo(text)),
            vec![
                ("/tmp/a b".to_string(), "s3://lab/ctd".to_string()),
                ("/home/u/floe-demo/mnt".to_string(), "/home/u/floe-demo/repo".to_string()),
                ("/root/mnt".to_string(), "az://lab/x".to_string()),
            ]
        );
    }

    fn entry(id: u64, mp: &str) -> MountEntry {
        MountEntry {
            id,
            mountpoint: PathBuf::from(mp),
            fstype: "fuse.floe".into(),
            source: format!("floe:/repo{mp}"),
        }
    }

    /// A view made from each table read, and the tables `reads` returns in turn.
    fn settle(reads: Vec<Vec<MountEntry>>) -> (Vec<u64>, usize) {
        let mut reads = reads.into_iter();
        let mut last = Vec::new();
        let mut views = 0;
        let table = || {
            last = reads.next().unwrap_or_else(|| last.clone());
            last.clone()
        };
        let ids = settled(table, |t| {
            views += 1;
            t.iter().map(|m| m.id).collect()
        });
        (ids, views)
    }

    #[test]
    fn a_listing_is_made_from_a_table_that_held_still() {
        let other =
            MountEntry { fstype: "ext4".into(), source: "/dev/sda1".into(), ..entry(7, "/data") };
        // nothing changed: one view
        assert_eq!(settle(vec![vec![entry(90, "/m")]]), (vec![90], 1));
        // the dead mount detached while the view was made: viewed again without it
        assert_eq!(settle(vec![vec![entry(90, "/m")], vec![], vec![]]), (vec![], 2));
        // replaced at the same point (a new mount id) counts as a change
        assert_eq!(
            settle(vec![vec![entry(90, "/m")], vec![entry(91, "/m")], vec![entry(91, "/m")]]),
            (vec![91], 2)
        );
        // other file systems coming and going do not
        assert_eq!(
            settle(vec![vec![entry(90, "/m")], vec![entry(90, "/m"), other]]),
            (vec![90], 1)
        );
        // a table that never holds still: the last of LIST_TRIES views stands
        let busy: Vec<_> = (0..20).map(|i| vec![entry(100 + i, "/m")]).collect();
        assert_eq!(settle(busy), (vec![100 + LIST_TRIES as u64 - 1], LIST_TRIES));
    }

    fn rec(mp: &str, pid: u32) -> Record {
        Record {
            mountpoint: PathBuf::from(mp),
            repo: format!("floe:{mp}"),
            pid,
            since: "2026-12-07T10:00:00Z".into(),
            log: Some(PathBuf::from("/tmp/m.log")),
        }
    }

    #[test]
    fn every_mount_gets_its_process_and_state() {
        let table = vec![
            ("/m/served".to_string(), "s3://lab/a".to_string()),
            ("/m/dead".to_string(), "s3://lab/b".to_string()),
            ("/m/old-floe".to_string(), "s3://lab/c".to_string()),
        ];
        let records = vec![rec("/m/served", 41), rec("/m/coming", 42)];
        let login = vec![
            MountConfig { repo: "s3://lab/a".into(), path: "/m/served".into() },
            MountConfig { repo: "s3://lab/d".into(), path: "/m/after-reboot".into() },
        ];
        let v = join(&table, &records, &login, |p| p == Path::new("/m/dead"));
        let got: Vec<_> =
            v.iter().map(|m| (m.mountpoint.as_str(), m.state, m.pid, m.at_login)).collect();
        assert_eq!(
            got,
            [
                ("/m/after-reboot", MountState::NotMounted, None, true),
                ("/m/coming", MountState::Starting, Some(42), false),
                ("/m/dead", MountState::Dead, None, false),
                ("/m/old-floe", MountState::Mounted, None, false),
                ("/m/served", MountState::Mounted, Some(41), true),
            ]
        );
        // the repository as the kernel shows it; the helper's log and start time
        let served = &v[4];
        assert_eq!(served.repo, "s3://lab/a");
        assert_eq!(served.log.as_deref(), Some("/tmp/m.log"));
        assert_eq!(served.since.as_deref(), Some("2026-12-07T10:00:00Z"));
        assert_eq!(v[0].repo, "s3://lab/d");
    }

    #[test]
    fn a_relative_local_repository_is_made_absolute_for_the_helper() {
        let abs = absolute_repo("data/repo").unwrap();
        assert!(Path::new(&abs).is_absolute(), "{abs}");
        assert_eq!(absolute_repo("s3://lab/x").unwrap(), "s3://lab/x");
        assert_eq!(absolute_repo("/srv/repo").unwrap(), "/srv/repo");
    }
}
