//! Open files and folders: what a handle reads, bound to the snapshot it was opened at.

use super::*;

pub(super) enum Handle {
    Bytes(Bytes),
    Chunk(ChunkJob),
}

impl Vfs {
    /// Open a folder: its listing is taken once, and pages of it are served from
    /// the handle (see [`Vfs::dir_entries`]).
    pub fn opendir(&self, ino: u64) -> Result<u64, MountError> {
        let entries = Arc::new(self.readdir(ino)?);
        let fh = self.inner.next_fh.fetch_add(1, Ordering::Relaxed);
        self.inner.dirs.lock().map_err(|_| poisoned())?.insert(fh, entries);
        Ok(fh)
    }

    pub fn dir_entries(&self, fh: u64) -> Result<Arc<Vec<DirEntry>>, MountError> {
        self.inner
            .dirs
            .lock()
            .map_err(|_| poisoned())?
            .get(&fh)
            .cloned()
            .ok_or(MountError::BadHandle)
    }

    pub fn releasedir(&self, fh: u64) {
        if let Ok(mut d) = self.inner.dirs.lock() {
            d.remove(&fh);
        }
    }

    /// Open a file for reading (`write` asks for write access, which is refused).
    pub fn open(&self, ino: u64, write: bool) -> Result<OpenFile, MountError> {
        if write {
            return Err(MountError::ReadOnly);
        }
        let key = self.key_of(ino)?;
        let Key::In { repo, commit, rel, .. } = key.as_ref() else {
            return Err(MountError::IsADirectory);
        };
        let handle = match self.target(*repo, &commit.id, rel)? {
            Target::Dir(_) => return Err(MountError::IsADirectory),
            Target::Meta(b) => Handle::Bytes(b),
            Target::Chunk { array, file, tree } => {
                self.read_ahead(*repo, &commit.id, &array, &tree, file.index);
                Handle::Chunk(ChunkJob { repo: *repo, snapshot: commit.id.clone(), array, file })
            }
        };
        let fh = self.inner.next_fh.fetch_add(1, Ordering::Relaxed);
        self.inner.handles.lock().map_err(|_| poisoned())?.insert(fh, Arc::new(handle));
        // An inode's content never changes: the kernel may keep its pages.
        Ok(OpenFile { fh, keep_cache: true })
    }

    /// Read up to `size` bytes at `offset` of an open file.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, MountError> {
        let h = self.inner.handles.lock().map_err(|_| poisoned())?.get(&fh).cloned();
        let h = h.ok_or(MountError::BadHandle)?;
        let bytes = match h.as_ref() {
            Handle::Bytes(b) => b.clone(),
            Handle::Chunk(job) => self.chunk_bytes(job)?,
        };
        let len = bytes.len() as u64;
        let start = offset.min(len) as usize;
        let end = offset.saturating_add(u64::from(size)).min(len) as usize;
        Ok(bytes.slice(start..end))
    }

    pub fn release(&self, fh: u64) {
        if let Ok(mut h) = self.inner.handles.lock() {
            h.remove(&fh);
        }
    }

    /// Open files and folders right now.
    pub fn open_handles(&self) -> usize {
        let files = self.inner.handles.lock().map(|h| h.len()).unwrap_or(0);
        files + self.inner.dirs.lock().map(|d| d.len()).unwrap_or(0)
    }
}
