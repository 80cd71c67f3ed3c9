//! Inodes: what each number stands for, counted by lookups and forgotten with them.

use super::*;

/// A repository of the mount, by the order it was first looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RepoId(pub(super) u32);

/// What an inode stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    /// A catalog folder: a prefix below the mount's URL (`""`: the mount's root),
    /// which may be a repository's root.
    Dir(Arc<str>),
    /// A top folder (`branches`, …) of a repository.
    Top(RepoId, Top),
    /// A path inside ref folder `folder` (e.g. `branches/main`) of a repository,
    /// bound to `commit`.
    In { repo: RepoId, top: Top, folder: Arc<str>, commit: Commit, rel: String },
}

pub(super) struct Inodes {
    pub(super) by_key: HashMap<Arc<Key>, u64>,
    /// inode -> (key, lookups the kernel holds)
    pub(super) entries: HashMap<u64, (Arc<Key>, u64)>,
    pub(super) next: u64,
}

/// The inode number shown in a listing for an entry not looked up yet: stable,
/// and never equal to an allocated one (those count up from 1).
pub(super) fn listing_ino(key: &Key) -> u64 {
    let h = blake3::hash(format!("{key:?}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b) | (1 << 63)
}

impl Vfs {
    pub(super) fn key_of(&self, ino: u64) -> Result<Arc<Key>, MountError> {
        let inodes = self.inner.inodes.lock().map_err(|_| poisoned())?;
        inodes.entries.get(&ino).map(|(k, _)| k.clone()).ok_or(MountError::NotFound)
    }

    /// The inode of `key`, counting one kernel lookup.
    pub(super) fn intern(&self, key: Key) -> u64 {
        let Ok(mut inodes) = self.inner.inodes.lock() else { return 0 };
        if let Some(&ino) = inodes.by_key.get(&key) {
            if let Some(e) = inodes.entries.get_mut(&ino) {
                e.1 += 1;
            }
            return ino;
        }
        let ino = inodes.next;
        inodes.next += 1;
        let key = Arc::new(key);
        inodes.by_key.insert(key.clone(), ino);
        inodes.entries.insert(ino, (key, 1));
        ino
    }

    /// The kernel forgets `n` lookups of `ino`; at zero the inode is dropped.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let Ok(mut inodes) = self.inner.inodes.lock() else { return };
        let gone = match inodes.entries.get_mut(&ino) {
            Some(e) => {
                e.1 = e.1.saturating_sub(n);
                e.1 == 0
            }
            None => false,
        };
        if gone && let Some((key, _)) = inodes.entries.remove(&ino) {
            inodes.by_key.remove(&key);
        }
    }

    /// How many inodes are alive.
    pub fn inode_count(&self) -> usize {
        self.inner.inodes.lock().map(|i| i.entries.len()).unwrap_or(0)
    }
}
