//! Chunk bytes: the caches, one fetch per chunk however many readers wait, and the read-ahead.

use super::*;

pub(super) fn poisoned() -> MountError {
    MountError::Unavailable("internal lock poisoned".into())
}

/// A chunk's bytes: from memory, else from the disk cache, else from the
/// repository (one fetch per chunk however many readers wait for it).
pub(super) fn fetch_chunk(
    inner: &Inner,
    snapshot: &str,
    array: &str,
    file: &ChunkFile,
) -> Result<Bytes, MountError> {
    fetch_chunk_waiting(inner, snapshot, array, file, None)
}

/// The same; `wait` bounds how long to wait for a fetch another thread has under
/// way (read-ahead passes zero: a chunk already coming needs no second worker).
pub(super) fn fetch_chunk_waiting(
    inner: &Inner,
    snapshot: &str,
    array: &str,
    file: &ChunkFile,
    wait: Option<Duration>,
) -> Result<Bytes, MountError> {
    match inner.chunks.get_value_or_guard(&file.id, wait) {
        GuardResult::Value(b) => Ok(b),
        GuardResult::Guard(g) => {
            let bytes = match inner.disk.as_ref().and_then(|d| d.get(&file.id)) {
                Some(b) => b,
                None => {
                    let b = inner.backend.read_chunk(snapshot, array, &file.coords)?;
                    if let Some(d) = &inner.disk {
                        d.put(&file.id, &b);
                    }
                    b
                }
            };
            if bytes.len() as u64 != file.size {
                tracing::warn!(
                    array,
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
pub(super) fn prefetch_worker(
    inner: std::sync::Weak<Inner>,
    rx: Arc<Mutex<Receiver<(String, String, ChunkFile)>>>,
) {
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
        if let Some((snapshot, array, file)) = job
            && !inner.chunks.contains_key(&file.id)
            && let Err(e) =
                fetch_chunk_waiting(&inner, &snapshot, &array, &file, Some(Duration::ZERO))
            && e != MountError::FetchUnderWay
        {
            tracing::debug!(array, coords = ?file.coords, "read-ahead failed: {e}");
        }
    }
}

impl Vfs {
    pub(super) fn chunk_bytes(
        &self,
        snapshot: &str,
        array: &str,
        file: &ChunkFile,
    ) -> Result<Bytes, MountError> {
        fetch_chunk(&self.inner, snapshot, array, file)
    }

    pub(super) fn read_ahead(&self, snapshot: &str, array: &str, tree: &ChunkTree, index: usize) {
        let Some(tx) = &self.inner.prefetch else { return };
        let Ok(tx) = tx.lock() else { return };
        for f in tree.following(index, self.inner.opts.readahead_chunks) {
            if self.inner.chunks.contains_key(&f.id) {
                continue;
            }
            match tx.try_send((snapshot.to_string(), array.to_string(), f.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => break,
            }
        }
    }
}
