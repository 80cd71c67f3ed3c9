//! Who serves each Floe mount. The process that serves a mount writes a record (its
//! pid, the repository, since when) into a file named after the mount point and
//! holds that file locked for as long as it serves. A record whose file is not
//! locked is a process that died: the lock, not the pid, says who is alive, so a
//! reused pid never passes for a mount helper. (Claimers take a lock file of their
//! own first, and a record appears only whole: see [`claim`].) The files live in
//! the user's runtime folder (`$XDG_RUNTIME_DIR`, emptied at logout, as the
//! processes end).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use floe_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// A serving process, as it wrote itself down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub mountpoint: PathBuf,
    pub repo: String,
    pub pid: u32,
    /// When it started serving (UTC, RFC 3339).
    pub since: String,
    /// Where its messages go, when it runs detached.
    pub log: Option<PathBuf>,
}

/// Why a mount helper did not mount: written by the helper for the process that
/// started it (so the reason keeps its code, not only its words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

/// `mounts/` in Floe's runtime folder, where the daemon keeps its socket:
/// `$FLOE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/floe`, else the temporary folder's `floe`.
pub fn dir() -> PathBuf {
    std::env::var_os("FLOE_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::runtime_dir().map(|d| d.join("floe")))
        .unwrap_or_else(|| std::env::temp_dir().join("floe"))
        .join("mounts")
}

/// A mount point's name in the registry: FNV-1a of its path (a path may be longer
/// than a file name may be), kept the same across builds.
pub fn key(mountpoint: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in mountpoint.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn record_path(dir: &Path, mountpoint: &Path) -> PathBuf {
    dir.join(format!("{}.json", key(mountpoint)))
}

/// This process serving a mount point, for as long as it is held: the mount
/// point's lock, and its published record (locked too, which is what readers look at).
#[derive(Debug)]
pub struct Claim {
    lock: File,
    lock_path: PathBuf,
    _record: File,
    path: PathBuf,
}

fn lock_path(dir: &Path, mountpoint: &Path) -> PathBuf {
    dir.join(format!("{}.lock", key(mountpoint)))
}

/// Claim `record.mountpoint` for this process: refused when another live process
/// serves it. Claimers take `<key>.lock`, which readers never touch; the record is
/// written in a file of its own, locked, and only then renamed into place. So a
/// reader sees either the old file, unlocked (nobody), or the whole new record; never
/// a dead helper's record under a new claimer's lock (CI caught a listing naming the
/// killed process as serving, in the moment between the new claimer's lock and its
/// write).
pub fn claim(dir: &Path, record: &Record) -> Result<Claim, ApiError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    let (lock, lock_path) = take_lock(dir, record)?;
    let path = record_path(dir, &record.mountpoint);
    let published = publish(dir, &path, record)?;
    Ok(Claim { lock, lock_path, _record: published, path })
}

/// The mount point's lock, or who holds it.
fn take_lock(dir: &Path, record: &Record) -> Result<(File, PathBuf), ApiError> {
    let path = lock_path(dir, &record.mountpoint);
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, &e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let by = serving(dir, &record.mountpoint)
                    .map_or(String::new(), |r| format!(" by process {} ({})", r.pid, r.repo));
                return Err(ApiError::new(
                    ErrorCode::Usage,
                    format!(
                        "{} is already mounted{by}; `floe unmount {}` first",
                        record.mountpoint.display(),
                        record.mountpoint.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, &e)),
        }
        // a holder that was leaving may have removed the file between our open and
        // our lock: then the lock is on a file nobody else can find; open again
        if same_file(&file, &path) {
            return Ok((file, path));
        }
    }
}

/// Write `record` whole into a locked file of its own and rename it to `path`.
fn publish(dir: &Path, path: &Path, record: &Record) -> Result<File, ApiError> {
    let tmp = dir.join(format!("{}.{}.tmp", key(&record.mountpoint), std::process::id()));
    let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, &e))?;
    let text = serde_json::to_vec(record).unwrap_or_default();
    let written = file
        .try_lock()
        .map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => std::io::Error::from(std::io::ErrorKind::WouldBlock),
        })
        .and_then(|()| file.write_all(&text))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, &e));
    }
    Ok(file)
}

impl Drop for Claim {
    fn drop(&mut self) {
        // both removed while still locked, so no one else can take a stale file for
        // ours; the record first, so a reader never sees it after the lock is free
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.lock_path);
        let _ = self.lock.unlock();
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn read_record(file: &mut File) -> Option<Record> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The live record of the file at `path`: `None` when no process holds it.
fn live(path: &Path) -> Option<Record> {
    let mut file = File::open(path).ok()?;
    match file.try_lock_shared() {
        // nobody holds it: its writer died without removing it
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => read_record(&mut file),
        Err(TryLockError::Error(_)) => None,
    }
}

/// Who serves `mountpoint` now, if anyone.
pub fn serving(dir: &Path, mountpoint: &Path) -> Option<Record> {
    live(&record_path(dir, mountpoint))
}

/// Every live record.
pub fn all(dir: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Record> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| live(&p))
        .collect();
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    out
}

/// Write a helper's failure for the process that started it.
pub fn write_failure(path: &Path, failure: &Failure) {
    let _ = std::fs::write(path, serde_json::to_vec(failure).unwrap_or_default());
}

/// A helper's failure, if it wrote one (the file is removed once read).
pub fn take_failure(path: &Path) -> Option<Failure> {
    let text = std::fs::read(path).ok()?;
    let _ = std::fs::remove_file(path);
    serde_json::from_slice(&text).ok()
}

fn io_err(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!(
            "cannot keep the list of mounts in {}: {e}; check that the folder is writable",
            path.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mp: &str) -> Record {
        Record {
            mountpoint: PathBuf::from(mp),
            repo: "s3://lab/ctd".into(),
            pid: std::process::id(),
            since: "2026-12-07T10:00:00Z".into(),
            log: None,
        }
    }

    #[test]
    fn a_held_claim_is_seen_and_refuses_a_second_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim(dir.path(), &record("/mnt/a")).unwrap();
        assert_eq!(serving(dir.path(), Path::new("/mnt/a")), Some(record("/mnt/a")));
        let again = claim(dir.path(), &record("/mnt/a")).unwrap_err();
        assert_eq!(again.code, ErrorCode::Usage);
        assert!(again.message.contains("already mounted by process"), "{}", again.message);
        let b = claim(dir.path(), &record("/mnt/b")).unwrap();
        let every: Vec<_> = all(dir.path()).into_iter().map(|r| r.mountpoint).collect();
        assert_eq!(every, [PathBuf::from("/mnt/a"), PathBuf::from("/mnt/b")]);
        drop(a);
        assert_eq!(serving(dir.path(), Path::new("/mnt/a")), None);
        assert_eq!(all(dir.path()).len(), 1);
        drop(b);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "records left behind");
    }

    #[test]
    fn a_record_nobody_holds_is_a_dead_process_and_can_be_claimed() {
        let dir = tempfile::tempdir().unwrap();
        // what a killed helper leaves: the file, without its lock
        let path = record_path(dir.path(), Path::new("/mnt/a"));
        std::fs::write(&path, serde_json::to_vec(&record("/mnt/a")).unwrap()).unwrap();
        assert_eq!(serving(dir.path(), Path::new("/mnt/a")), None);
        assert!(all(dir.path()).is_empty());
        let mut longer = record("/mnt/a");
        longer.repo = "az://lab/a-much-longer-repository-name".into();
        let c = claim(dir.path(), &longer).unwrap();
        assert_eq!(serving(dir.path(), Path::new("/mnt/a")), Some(longer));
        drop(c);
    }

    #[test]
    fn a_claim_under_way_never_shows_the_dead_helpers_record() {
        let dir = tempfile::tempdir().unwrap();
        let mp = Path::new("/mnt/a");
        let stale = || {
            let mut dead = record("/mnt/a");
            dead.pid = 1;
            std::fs::write(record_path(dir.path(), mp), serde_json::to_vec(&dead).unwrap())
                .unwrap();
        };
        // a claimer between its two steps: the lock taken, its record not yet written
        stale();
        let (held, _) = take_lock(dir.path(), &record("/mnt/a")).unwrap();
        assert_eq!(serving(dir.path(), mp), None);
        let refused = claim(dir.path(), &record("/mnt/a")).unwrap_err();
        assert!(refused.message.contains("is already mounted;"), "{}", refused.message);
        drop(held);
        // and claims racing readers: a reader sees nobody or the new claimer, never pid 1
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..300 {
                    stale();
                    drop(claim(dir.path(), &record("/mnt/a")).unwrap());
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(r) = serving(dir.path(), mp) {
                    assert_eq!(r.pid, std::process::id(), "a dead helper's record read as live");
                }
            }
        });
    }

    #[test]
    fn a_failure_is_read_once_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        assert_eq!(take_failure(&p), None);
        let f = Failure { code: ErrorCode::Storage, message: "no route".into() };
        write_failure(&p, &f);
        assert_eq!(take_failure(&p), Some(f));
        assert_eq!(take_failure(&p), None);
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(key(Path::new("/mnt/a")), key(Path::new("/mnt/a")));
        assert_ne!(key(Path::new("/mnt/a")), key(Path::new("/mnt/b")));
        assert_eq!(key(Path::new("")), "cbf29ce484222325");
    }
}
