//! Chunk bytes: the caches, one fetch per chunk however many readers wait, and the read-ahead.

use super::*;

pub(super) fn poisoned() -> MountError {
    MountError::Unavailable("internal lock poisoned".into())
}

/// A chunk's bytes: from memory, else from the disk cache, else from the
/// repository (one fetch per chunk however many readers wait for it).
pub(super) fn fetch_chunk(inner: &Inner, job: &ChunkJob) -> Result<Bytes, MountError> {
    fetch_chunk_waiting(inner, job, None)
}

/// One chunk file to fetch: of which repository, snapshot and array.
pub(super) struct ChunkJob {
    pub(super) repo: RepoId,
    pub(super) snapshot: String,
    pub(super) array: String,
    pub(super) file: ChunkFile,
}

/// The same; `wait` bounds how long to wait for a fetch another thread has under
/// way (read-ahead passes zero: a chunk already coming needs no second worker).
pub(super) fn fetch_chunk_waiting(
    inner: &Inner,
    job: &ChunkJob,
    wait: Option<Duration>,
) -> Result<Bytes, MountError> {
    let ChunkJob { repo, snapshot, array, file } = job;
    match inner.chunks.get_value_or_guard(&file.id, wait) {
        GuardResult::Value(b) => Ok(b),
        GuardResult::Guard(g) => {
            let bytes = match inner.disk.as_ref().and_then(|d| d.get(&file.id)) {
                Some(b) => b,
                None => {
                    let b = inner.backend(*repo)?.read_chunk(snapshot, array, &file.coords)?;
                    if let Some(d) = &inner.disk {
                        d.put(&file.id, &b);
                    }
                    b
                }
            };
            if bytes.len() as u64 != file.size {
                tracing::warn!(
                    array = array.as_str(),
                    coords = ?file.coords,
                    "chunk is {} bytes, its manifest says {}",
                    bytes.len(),
                    file.size
                );
            }
            let _ = g.insert(bytes.clone());
            Ok(bytes)
        }
        GuardResult::Timeout => Err(MountError::FetchUnderWay),
    }
}

#[expect(clippy::needless_pass_by_value, reason = "a thread's body: it owns what the thread holds")]
pub(super) fn prefetch_worker(inner: std::sync::Weak<Inner>, rx: Arc<Mutex<Receiver<ChunkJob>>>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            // Wake now and then to notice that the mount is gone.
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(j) => Some(j),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        if let Some(job) = job
            && !inner.chunks.contains_key(&job.file.id)
            && let Err(e) = fetch_chunk_waiting(&inner, &job, Some(Duration::ZERO))
            && e != MountError::FetchUnderWay
        {
            tracing::debug!(array = job.array, coords = ?job.file.coords, "read-ahead failed: {e}");
        }
    }
}

impl Vfs {
    pub(super) fn chunk_bytes(&self, job: &ChunkJob) -> Result<Bytes, MountError> {
        fetch_chunk(&self.inner, job)
    }

    pub(super) fn read_ahead(
        &self,
        repo: RepoId,
        snapshot: &str,
        array: &str,
        tree: &ChunkTree,
        index: usize,
    ) {
        let Some(tx) = &self.inner.prefetch else { return };
        let Ok(tx) = tx.lock() else { return };
        for f in tree.following(index, self.inner.opts.readahead_chunks) {
            if self.inner.chunks.contains_key(&f.id) {
                continue;
            }
            let job = ChunkJob {
                repo,
                snapshot: snapshot.to_string(),
                array: array.to_string(),
                file: f.clone(),
            };
            match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => break,
            }
        }
    }
}
