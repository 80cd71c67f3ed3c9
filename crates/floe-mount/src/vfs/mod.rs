//! The mount's filesystem semantics, free of any FUSE binding.
//!
//! An inode stands for a catalog folder (the root, or a prefix of the bucket or
//! folder mounted, which may be a repository's root: see [`repos`]), a top folder
//! of a repository (`branches`, `tags`, `snapshots`, `by-time`), or a path inside
//! one ref folder *bound to the snapshot the ref pointed at when it was looked up*. Looking up `main` under `branches` resolves
//! the branch (refs are refreshed at most every `refresh`) and gives the inode of
//! that tip's folder; everything below it belongs to the same snapshot. So an
//! inode's content never changes: the kernel may cache its pages, a file opened
//! before a commit keeps reading the snapshot it was opened at (even when another
//! process opens the new version of the same path), and `branches/main/...`
//! follows the tip as soon as the kernel looks the path up again (its entries are
//! given a TTL of `refresh`). Inodes are counted by lookups and dropped when the
//! kernel forgets them.
//!
//! Split the way mountpoint-s3 splits its file system: [`inodes`] (what a number
//! stands for), [`refs`] (branches, tags, snapshots, by-time onto commits),
//! [`handles`] (open files and folders), [`fetch`] (chunk bytes, caches,
//! read-ahead), [`repos`] (the repositories and the prefixes above them); this module resolves paths and answers the kernel's questions.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use quick_cache::sync::GuardResult;

use crate::cache::{DiskCache, MemCache, mem_cache};
use crate::catalog::{Catalog, PrefixListing, Single};
use crate::names::shown;
use crate::tree::{Child, ChunkFile, ChunkTree, SnapTree, TreeEntry};
use crate::{Backend, Commit, Layout, MountError, Refs};

mod fetch;
mod handles;
mod inodes;
mod refs;
mod repos;

use fetch::*;
use handles::*;
use inodes::*;
pub use refs::time_label;
use refs::*;
use repos::*;

/// How long the kernel may keep what never changes (snapshot contents).
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Settings of a mount.
#[derive(Debug, Clone)]
pub struct VfsOptions {
    /// How often branch tips and the branch and tag lists are re-read.
    pub refresh: Duration,
    /// Memory for chunk bytes.
    pub mem_cache_bytes: u64,
    /// An optional folder for chunk bytes, and its size limit.
    pub disk_cache: Option<(PathBuf, u64)>,
    /// Chunk files fetched ahead of a reader that opens them in key order.
    pub readahead_chunks: usize,
    /// Threads fetching ahead.
    pub prefetch_threads: usize,
    /// The branch whose history `by-time/` shows.
    pub history_branch: String,
}

impl Default for VfsOptions {
    fn default() -> Self {
        VfsOptions {
            refresh: Duration::from_secs(2),
            mem_cache_bytes: 512 << 20,
            disk_cache: None,
            readahead_chunks: 8,
            prefetch_threads: 8,
            history_branch: "main".into(),
        }
    }
}

/// File or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// What `stat` shows, and how long the kernel may keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
    pub ttl: Duration,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub name: String,
    pub kind: Kind,
}

/// An opened file: its handle, and whether the kernel may keep its pages (true
/// unless the file follows a branch tip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFile {
    pub fh: u64,
    pub keep_cache: bool,
}

/// What a path inside a snapshot is.
enum Target {
    Dir(Vec<Child>),
    Meta(Bytes),
    Chunk { array: String, file: ChunkFile, tree: Arc<ChunkTree> },
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    opts: VfsOptions,
    started: SystemTime,
    inodes: Mutex<Inodes>,
    repos: Mutex<Repos>,
    /// What each catalog folder's prefix held when last listed.
    listed: Mutex<HashMap<String, Listed>>,
    commits: quick_cache::sync::Cache<(RepoId, String), Commit>,
    ancestry: quick_cache::sync::Cache<(RepoId, String), Arc<Vec<Commit>>>,
    trees: quick_cache::sync::Cache<(RepoId, String), Arc<SnapTree>>,
    chunk_trees: quick_cache::sync::Cache<(RepoId, String, String), Arc<ChunkTree>>,
    chunks: MemCache,
    disk: Option<DiskCache>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    prefetch: Option<Mutex<SyncSender<ChunkJob>>>,
}

/// The mount's filesystem. Cheap to clone; safe to call from many threads.
#[derive(Clone)]
pub struct Vfs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs").field("opts", &self.inner.opts).finish_non_exhaustive()
    }
}

pub const ROOT_INO: u64 = 1;

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_string() } else { format!("{parent}/{name}") }
}

impl Vfs {
    /// The mount of one repository: its root shows the repository's folders.
    pub fn new(backend: Arc<dyn Backend>, opts: VfsOptions) -> Result<Vfs, MountError> {
        let vfs = Vfs::with_catalog(Arc::new(Single(backend)), opts)?;
        // the backend is open: record it so, so the root's time is its newest commit
        vfs.inner.backend(vfs.inner.repo_id("")?)?;
        Ok(vfs)
    }

    /// The mount of a catalog: prefixes as folders, each repository's root with its
    /// own `branches/`, `tags/`, `snapshots/` and `by-time/`.
    pub fn with_catalog(catalog: Arc<dyn Catalog>, opts: VfsOptions) -> Result<Vfs, MountError> {
        let disk = match &opts.disk_cache {
            Some((dir, limit)) => Some(DiskCache::open(dir, *limit).map_err(|e| {
                MountError::Unavailable(format!("disk cache {}: {e}", dir.display()))
            })?),
            None => None,
        };
        let root = Arc::new(Key::Dir(Arc::from("")));
        let inodes = Inodes {
            by_key: HashMap::from([(root.clone(), ROOT_INO)]),
            entries: HashMap::from([(ROOT_INO, (root, 1))]),
            next: ROOT_INO + 1,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(256);
        let inner = Arc::new(Inner {
            catalog,
            started: SystemTime::now(),
            inodes: Mutex::new(inodes),
            repos: Mutex::new(Repos::default()),
            listed: Mutex::new(HashMap::new()),
            commits: quick_cache::sync::Cache::new(65_536),
            ancestry: quick_cache::sync::Cache::new(64),
            trees: quick_cache::sync::Cache::new(256),
            chunk_trees: quick_cache::sync::Cache::new(4096),
            chunks: mem_cache(opts.mem_cache_bytes),
            disk,
            handles: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            prefetch: (opts.readahead_chunks > 0 && opts.prefetch_threads > 0)
                .then(|| Mutex::new(tx)),
            opts,
        });
        if inner.prefetch.is_some() {
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..inner.opts.prefetch_threads {
                let weak = Arc::downgrade(&inner);
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("floe-prefetch-{i}"))
                    .spawn(move || prefetch_worker(weak, rx))
                    .map_err(|e| MountError::Unavailable(format!("prefetch thread: {e}")))?;
            }
        }
        Ok(Vfs { inner })
    }

    // ----- inodes -----

    // ----- refs -----

    // ----- resolution -----

    /// The key of entry `name` of folder `parent` (not checked to exist below a ref folder).
    fn child_key(&self, parent: &Key, name: &str) -> Result<Key, MountError> {
        match parent {
            Key::Dir(prefix) => self.catalog_child(prefix, name),
            Key::Top(repo, top) => {
                let commit = self.ref_commit(*repo, *top, name)?;
                let folder = Arc::from(format!("{}/{name}", top_name(*top)));
                Ok(Key::In { repo: *repo, top: *top, folder, commit, rel: String::new() })
            }
            Key::In { repo, top, folder, commit, rel } => Ok(Key::In {
                repo: *repo,
                top: *top,
                folder: folder.clone(),
                commit: commit.clone(),
                rel: join(rel, name),
            }),
        }
    }

    fn tree(&self, repo: RepoId, snapshot: &str) -> Result<Arc<SnapTree>, MountError> {
        self.inner.trees.get_or_insert_with(&(repo, snapshot.to_string()), || {
            Ok(Arc::new(SnapTree::build(&self.inner.backend(repo)?.nodes(snapshot)?)))
        })
    }

    fn chunk_tree(
        &self,
        repo: RepoId,
        snapshot: &str,
        array: &str,
        layout: &Layout,
    ) -> Result<Arc<ChunkTree>, MountError> {
        let key = (repo, snapshot.to_string(), array.to_string());
        self.inner.chunk_trees.get_or_insert_with(&key, || {
            let chunks = self.inner.backend(repo)?.chunks(snapshot, array)?;
            Ok(Arc::new(ChunkTree::build(layout, chunks)))
        })
    }

    fn target(&self, repo: RepoId, snapshot: &str, rel: &str) -> Result<Target, MountError> {
        let tree = self.tree(repo, snapshot)?;
        match tree.entry(rel) {
            Some(TreeEntry::Meta(b)) => return Ok(Target::Meta(b.clone())),
            Some(TreeEntry::Dir) => {
                let mut listing = tree.listing(rel).unwrap_or_default().to_vec();
                if let Some((_, (array, layout), "")) = tree.array_of(rel) {
                    let ct = self.chunk_tree(repo, snapshot, array, layout)?;
                    listing.extend(ct.listing("").unwrap_or_default().iter().cloned());
                }
                return Ok(Target::Dir(listing));
            }
            None => {}
        }
        let Some((_, (array, layout), rest)) = tree.array_of(rel) else {
            return Err(MountError::NotFound);
        };
        let ct = self.chunk_tree(repo, snapshot, array, layout)?;
        if let Some(f) = ct.file(rest) {
            return Ok(Target::Chunk { array: array.clone(), file: f.clone(), tree: ct.clone() });
        }
        match ct.listing(rest) {
            Some(l) => Ok(Target::Dir(l.to_vec())),
            None => Err(MountError::NotFound),
        }
    }

    /// A catalog folder's time: its repository's newest commit when that
    /// repository is open already (the root of a one-repository mount always is,
    /// once looked into), else when the mount started. Never opens a repository:
    /// `ls -l` of fifty repository folders must not open fifty repositories.
    fn dir_mtime(&self, prefix: &str) -> SystemTime {
        let open = self.inner.known_repo(prefix).and_then(|id| {
            self.inner.backend_if_open(id)?;
            self.refs(id).ok()
        });
        open.map_or(self.inner.started, |r| r.newest)
    }

    fn ttl(&self, top: Top, rel: &str) -> Duration {
        match top {
            Top::Branches => self.inner.opts.refresh,
            Top::Tags if rel.is_empty() => self.inner.opts.refresh,
            Top::Tags | Top::Snapshots | Top::ByTime => IMMUTABLE_TTL,
        }
    }

    fn attr_of(&self, key: &Key, ino: u64) -> Result<Attr, MountError> {
        let (kind, size, mtime, ttl) = match key {
            Key::Dir(prefix) => (Kind::Dir, 0, self.dir_mtime(prefix), self.inner.opts.refresh),
            Key::Top(repo, _) => {
                let refs = self.refs(*repo)?;
                (Kind::Dir, 0, refs.newest, self.inner.opts.refresh)
            }
            Key::In { repo, top, commit, rel, .. } => {
                let mtime = SystemTime::from(commit.time);
                let ttl = self.ttl(*top, rel);
                let tree = self.tree(*repo, &commit.id)?;
                match tree.entry(rel) {
                    // Attributes of groups, arrays and zarr.json need no manifest.
                    Some(TreeEntry::Dir) => (Kind::Dir, 0, mtime, ttl),
                    Some(TreeEntry::Meta(b)) => (Kind::File, b.len() as u64, mtime, ttl),
                    None => match self.target(*repo, &commit.id, rel)? {
                        Target::Dir(_) => (Kind::Dir, 0, mtime, ttl),
                        Target::Meta(b) => (Kind::File, b.len() as u64, mtime, ttl),
                        Target::Chunk { file, .. } => (Kind::File, file.size, mtime, ttl),
                    },
                }
            }
        };
        Ok(Attr { ino, kind, size, mtime, ttl })
    }

    /// A folder's entries, each with the key it would be looked up as.
    fn listing(&self, key: &Key) -> Result<Vec<(Key, Child)>, MountError> {
        let dirs = |repo: RepoId, top: Top, m: &BTreeMap<String, Commit>| {
            m.iter()
                .map(|(name, c)| {
                    let folder = Arc::from(format!("{}/{name}", top_name(top)));
                    let k = Key::In { repo, top, folder, commit: c.clone(), rel: String::new() };
                    (k, Child { name: name.clone(), dir: true })
                })
                .collect::<Vec<_>>()
        };
        match key {
            Key::Dir(prefix) => self.catalog_listing(prefix),
            Key::Top(repo, top) => {
                let (repo, refs) = (*repo, self.refs(*repo)?);
                Ok(match top {
                    Top::Branches => dirs(repo, *top, &refs.branches),
                    Top::Tags => dirs(repo, *top, &refs.tags),
                    Top::Snapshots => dirs(repo, *top, &*self.snapshots(repo, &refs)?),
                    Top::ByTime => dirs(repo, *top, &*self.by_time(repo, &refs)?),
                })
            }
            Key::In { repo, commit, rel, .. } => match self.target(*repo, &commit.id, rel)? {
                Target::Dir(l) => {
                    l.into_iter().map(|c| Ok((self.child_key(key, &c.name)?, c))).collect()
                }
                Target::Meta(_) | Target::Chunk { .. } => Err(MountError::NotADirectory),
            },
        }
    }

    // ----- operations -----

    /// Look `name` up in folder `parent` (one kernel lookup of the inode it gives).
    pub fn lookup(&self, parent: u64, name: &str) -> Result<Attr, MountError> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(MountError::NotFound);
        }
        let parent = self.key_of(parent)?;
        let key = self.child_key(&parent, name)?;
        // Check it exists first: only what exists gets an inode.
        let attr = self.attr_of(&key, 0)?;
        Ok(Attr { ino: self.intern(key), ..attr })
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr, MountError> {
        let key = self.key_of(ino)?;
        self.attr_of(&key, ino)
    }

    /// A folder's entries (without `.` and `..`), with inode numbers.
    pub fn readdir(&self, ino: u64) -> Result<Vec<DirEntry>, MountError> {
        let key = self.key_of(ino)?;
        let listing = self.listing(&key)?;
        let inodes = self.inner.inodes.lock().map_err(|_| poisoned())?;
        Ok(listing
            .into_iter()
            .map(|(k, c)| DirEntry {
                ino: inodes.by_key.get(&k).copied().unwrap_or_else(|| listing_ino(&k)),
                kind: if c.dir { Kind::Dir } else { Kind::File },
                name: c.name,
            })
            .collect())
    }
}
