//! Watching a folder: debounced file-system events plus periodic full rescans
//! (watchers miss events: on network shares, under load, across restarts).
//!
//! [`watch`] takes a sink (`Fn(Change)`), not an engine or an app handle, so it is
//! tested on its own; the returned [`WatchHandle`] stops everything when dropped.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use floe_source::complete::is_temporary_name;
use notify_debouncer_full::notify::event::{
    AccessKind, AccessMode, CreateKind, EventKind, ModifyKind,
};
use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Who is writing what, in event order (sent before the `Paths` of the same
    /// events): the completeness check counts a file written and not closed since
    /// as still being written.
    Writes(Vec<(PathBuf, Write)>),
    /// These paths were created, written, renamed or removed (temporary names left out).
    Paths(Vec<PathBuf>),
    /// Time for a full rescan.
    Rescan,
    /// The watcher itself failed (the periodic rescans go on).
    Error(String),
}

/// One write event of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Created or data written: a writer has it open.
    Data,
    /// Closed after writing, or removed: no writer of ours to wait for.
    Closed,
}

/// What an event says about a file's writer, if anything.
fn write_event(kind: &EventKind) -> Option<Write> {
    match kind {
        EventKind::Create(CreateKind::File) | EventKind::Modify(ModifyKind::Data(_)) => {
            Some(Write::Data)
        }
        EventKind::Access(AccessKind::Close(AccessMode::Write)) | EventKind::Remove(_) => {
            Some(Write::Closed)
        }
        EventKind::Access(_)
        | EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Other => None,
    }
}

/// Why a folder cannot be watched.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot watch {path}: {detail}; check that the folder exists and is readable (Floe still rescans it periodically)"
)]
pub struct WatchError {
    pub path: PathBuf,
    pub detail: String,
}

/// A running watch; dropping it stops the watcher and the rescan timer.
pub struct WatchHandle {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    stop: Option<mpsc::Sender<()>>,
    timer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        // closing the channel wakes the timer thread at once
        self.stop.take();
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
    }
}

/// Whether an event can mean new or changed data. Reads are not: the engine's own
/// reads of a folder (completeness probes, ingest) would otherwise wake it again
/// and again. A file closed after writing is the strongest hint there is.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// Watch `folder` recursively; events are debounced by `debounce`; a `Change::Rescan`
/// arrives at start and then every `rescan_every`.
pub fn watch<F>(
    folder: &Path,
    debounce: Duration,
    rescan_every: Duration,
    sink: F,
) -> Result<WatchHandle, WatchError>
where
    F: Fn(Change) + Send + Sync + 'static,
{
    let sink = std::sync::Arc::new(sink);
    let events = sink.clone();
    let err = |e: &dyn std::fmt::Display| WatchError {
        path: folder.to_path_buf(),
        detail: e.to_string(),
    };
    let mut debouncer =
        new_debouncer(debounce, None, move |result: DebounceEventResult| match result {
            Ok(evs) => {
                let writes: Vec<(PathBuf, Write)> = evs
                    .iter()
                    .filter_map(|e| write_event(&e.kind).map(|w| (e, w)))
                    .flat_map(|(e, w)| e.paths.iter().map(move |p| (p.clone(), w)))
                    .collect();
                if !writes.is_empty() {
                    events(Change::Writes(writes));
                }
                let mut paths: Vec<PathBuf> = evs
                    .iter()
                    .filter(|e| changes_content(&e.kind))
                    .flat_map(|e| e.paths.iter().cloned())
                    .filter(|p| {
                        p.file_name()
                            .map(|n| !is_temporary_name(&n.to_string_lossy()))
                            .unwrap_or(false)
                    })
                    .collect();
                paths.sort();
                paths.dedup();
                if !paths.is_empty() {
                    events(Change::Paths(paths));
                }
            }
            Err(errs) => {
                for e in errs {
                    events(Change::Error(e.to_string()));
                }
            }
        })
        .map_err(|e| err(&e))?;
    debouncer.watch(folder, RecursiveMode::Recursive).map_err(|e| err(&e))?;

    let (stop, stopped) = mpsc::channel::<()>();
    let timer = std::thread::Builder::new()
        .name("floe-rescan".into())
        .spawn(move || {
            sink(Change::Rescan);
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(rescan_every) {
                sink(Change::Rescan);
            }
        })
        .map_err(|e| err(&e))?;
    Ok(WatchHandle { _debouncer: debouncer, stop: Some(stop), timer: Some(timer) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn until(ok: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn wait_for(seen: &Arc<Mutex<Vec<Change>>>, what: impl Fn(&Change) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if seen.lock().unwrap().iter().any(&what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    #[test]
    fn real_files_are_seen_temporaries_are_not_and_drop_stops_it() {
        let d = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handle =
            watch(d.path(), Duration::from_millis(200), Duration::from_millis(300), move |c| {
                s.lock().unwrap().push(c)
            })
            .unwrap();
        assert!(wait_for(&seen, |c| *c == Change::Rescan), "a rescan at start");

        std::fs::write(d.path().join("a.nc.part"), b"partial").unwrap();
        std::fs::create_dir(d.path().join("2024")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(d.path().join("2024/b.nc"), b"data").unwrap();
        std::fs::rename(d.path().join("a.nc.part"), d.path().join("a.nc")).unwrap();
        let b = d.path().join("2024/b.nc");
        let a = d.path().join("a.nc");
        // a file written and closed: data, then closed, in that order
        let writes_of = |p: &Path| -> Vec<Write> {
            seen.lock()
                .unwrap()
                .iter()
                .filter_map(|c| match c {
                    Change::Writes(w) => Some(w.clone()),
                    _ => None,
                })
                .flatten()
                .filter(|(x, _)| x == p)
                .map(|(_, w)| w)
                .collect()
        };
        assert!(until(|| writes_of(&b).last() == Some(&Write::Closed)), "{seen:?}");
        assert!(writes_of(&b).contains(&Write::Data), "{seen:?}");
        // one held open after writing: data, and no close yet
        let held = d.path().join("held.nc");
        let mut f = std::fs::File::create(&held).unwrap();
        std::io::Write::write_all(&mut f, b"header").unwrap();
        assert!(until(|| writes_of(&held).contains(&Write::Data)), "{seen:?}");
        std::thread::sleep(Duration::from_millis(400));
        assert!(!writes_of(&held).contains(&Write::Closed), "{seen:?}");
        drop(f);
        assert!(until(|| writes_of(&held).last() == Some(&Write::Closed)), "{seen:?}");
        assert!(wait_for(&seen, |c| matches!(c, Change::Paths(p) if p.contains(&b))), "{seen:?}");
        assert!(wait_for(&seen, |c| matches!(c, Change::Paths(p) if p.contains(&a))), "{seen:?}");
        let tmp = d.path().join("a.nc.part");
        assert!(
            !seen.lock().unwrap().iter().any(|c| matches!(c, Change::Paths(p) if p.contains(&tmp))),
            "temporary names are not reported"
        );
        // reading files (as the engine does) is not a change
        std::thread::sleep(Duration::from_millis(400));
        let before = seen.lock().unwrap().iter().filter(|c| matches!(c, Change::Paths(_))).count();
        for _ in 0..3 {
            let _ = std::fs::read(&b).unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        let after = seen.lock().unwrap().iter().filter(|c| matches!(c, Change::Paths(_))).count();
        assert_eq!(before, after, "reads reported as changes: {seen:?}");
        let rescans = seen.lock().unwrap().iter().filter(|c| **c == Change::Rescan).count();
        assert!(rescans >= 2, "periodic rescans: {rescans}");

        drop(handle);
        let n = seen.lock().unwrap().len();
        std::fs::write(d.path().join("c.nc"), b"late").unwrap();
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(seen.lock().unwrap().len(), n, "nothing after the handle is dropped");
    }

    #[test]
    fn a_missing_folder_is_a_clear_error() {
        let e = watch(
            Path::new("/nonexistent/floe"),
            Duration::from_millis(100),
            Duration::from_secs(1),
            |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("check that the folder exists"), "{e}");
    }
}
