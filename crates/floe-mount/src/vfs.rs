//! The mount's filesystem semantics, free of any FUSE binding.
//!
//! An inode stands for the root, a top folder (`branches`, `tags`, `snapshots`,
//! `by-time`), or a path inside one ref folder *bound to the snapshot the ref
//! pointed at when it was looked up*. Looking up `main` under `branches` resolves
//! the branch (refs are refreshed at most every `refresh`) and gives the inode of
//! that tip's folder; everything below it belongs to the same snapshot. So an
//! inode's content never changes: the kernel may cache its pages, a file opened
//! before a commit keeps reading the snapshot it was opened at (even when another
//! process opens the new version of the same path), and `branches/main/...`
//! follows the tip as soon as the kernel looks the path up again (its entries are
//! given a TTL of `refresh`). Inodes are counted by lookups and dropped when the
//! kernel forgets them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use quick_cache::sync::GuardResult;

use crate::cache::{DiskCache, MemCache, mem_cache};
use crate::names::shown;
use crate::tree::{Child, ChunkFile, ChunkTree, SnapTree, TreeEntry};
use crate::{Backend, Commit, Layout, MountError, Refs};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Top {
    Branches,
    Tags,
    Snapshots,
    ByTime,
}

fn top_name(t: Top) -> &'static str {
    match t {
        Top::Branches => "branches",
        Top::Tags => "tags",
        Top::Snapshots => "snapshots",
        Top::ByTime => "by-time",
    }
}

const TOPS: [(&str, Top); 4] = [
    ("branches", Top::Branches),
    ("tags", Top::Tags),
    ("snapshots", Top::Snapshots),
    ("by-time", Top::ByTime),
];

/// What an inode stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// The mount's root (`None`) or a top folder.
    Top(Option<Top>),
    /// A path inside ref folder `folder` (e.g. `branches/main`), bound to `commit`.
    In { top: Top, folder: Arc<str>, commit: Commit, rel: String },
}

/// What a path inside a snapshot is.
enum Target {
    Dir(Vec<Child>),
    Meta(Bytes),
    Chunk { array: String, file: ChunkFile, tree: Arc<ChunkTree> },
}

/// The refs as of one refresh, with the views derived from them on demand.
struct RefsView {
    at: Instant,
    branches: BTreeMap<String, Commit>,
    tags: BTreeMap<String, Commit>,
    newest: SystemTime,
    by_time: Mutex<Option<Arc<BTreeMap<String, Commit>>>>,
    snapshots: Mutex<Option<Arc<BTreeMap<String, Commit>>>>,
}

fn shown_map(m: BTreeMap<String, Commit>) -> BTreeMap<String, Commit> {
    m.into_iter().filter_map(|(k, v)| shown(&k).map(|s| (s.into_owned(), v))).collect()
}

impl RefsView {
    fn new(refs: Refs, fallback: SystemTime) -> RefsView {
        let newest = refs
            .branches
            .values()
            .chain(refs.tags.values())
            .map(|c| SystemTime::from(c.time))
            .max()
            .unwrap_or(fallback);
        RefsView {
            at: Instant::now(),
            branches: shown_map(refs.branches),
            tags: shown_map(refs.tags),
            newest,
            by_time: Mutex::new(None),
            snapshots: Mutex::new(None),
        }
    }
}

/// The folder name of a commit under `by-time/`: its UTC time, sortable as text,
/// with no character that needs quoting in a shell or a URL.
pub fn time_label(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H-%M-%S%.6fZ").to_string()
}

struct Handle {
    commit: Commit,
    content: HandleContent,
}

enum HandleContent {
    Bytes(Bytes),
    Chunk { array: String, file: ChunkFile },
}

struct Inodes {
    by_key: HashMap<Arc<Key>, u64>,
    /// inode -> (key, lookups the kernel holds)
    entries: HashMap<u64, (Arc<Key>, u64)>,
    next: u64,
}

/// The inode number shown in a listing for an entry not looked up yet: stable,
/// and never equal to an allocated one (those count up from 1).
fn listing_ino(key: &Key) -> u64 {
    let h = blake3::hash(format!("{key:?}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b) | (1 << 63)
}

struct Inner {
    backend: Arc<dyn Backend>,
    opts: VfsOptions,
    started: SystemTime,
    inodes: Mutex<Inodes>,
    refs: Mutex<Option<Arc<RefsView>>>,
    commits: quick_cache::sync::Cache<String, Commit>,
    ancestry: quick_cache::sync::Cache<String, Arc<Vec<Commit>>>,
    trees: quick_cache::sync::Cache<String, Arc<SnapTree>>,
    chunk_trees: quick_cache::sync::Cache<(String, String), Arc<ChunkTree>>,
    chunks: MemCache,
    disk: Option<DiskCache>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    prefetch: Option<Mutex<SyncSender<(String, String, ChunkFile)>>>,
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
    pub fn new(backend: Arc<dyn Backend>, opts: VfsOptions) -> Result<Vfs, MountError> {
        let disk = match &opts.disk_cache {
            Some((dir, limit)) => Some(DiskCache::open(dir, *limit).map_err(|e| {
                MountError::Unavailable(format!("disk cache {}: {e}", dir.display()))
            })?),
            None => None,
        };
        let root = Arc::new(Key::Top(None));
        let inodes = Inodes {
            by_key: HashMap::from([(root.clone(), ROOT_INO)]),
            entries: HashMap::from([(ROOT_INO, (root, 1))]),
            next: ROOT_INO + 1,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(256);
        let inner = Arc::new(Inner {
            backend,
            started: SystemTime::now(),
            inodes: Mutex::new(inodes),
            refs: Mutex::new(None),
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

    fn key_of(&self, ino: u64) -> Result<Arc<Key>, MountError> {
        let inodes = self.inner.inodes.lock().map_err(|_| poisoned())?;
        inodes.entries.get(&ino).map(|(k, _)| k.clone()).ok_or(MountError::NotFound)
    }

    /// The inode of `key`, counting one kernel lookup.
    fn intern(&self, key: Key) -> u64 {
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

    // ----- refs -----

    fn refs(&self) -> Result<Arc<RefsView>, MountError> {
        let mut slot = self.inner.refs.lock().map_err(|_| poisoned())?;
        if let Some(v) = slot.as_ref()
            && v.at.elapsed() < self.inner.opts.refresh
        {
            return Ok(v.clone());
        }
        match self.inner.backend.refs() {
            Ok(refs) => {
                let v = Arc::new(RefsView::new(refs, self.inner.started));
                *slot = Some(v.clone());
                Ok(v)
            }
            Err(e) => match slot.as_ref() {
                Some(stale) => {
                    tracing::warn!(
                        "refreshing branches and tags failed, showing the last known: {e}"
                    );
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }

    fn ancestry(&self, snapshot: &str) -> Result<Arc<Vec<Commit>>, MountError> {
        self.inner.ancestry.get_or_insert_with(snapshot, || {
            let a = self.inner.backend.ancestry(snapshot)?;
            for c in &a {
                self.inner.commits.insert(c.id.clone(), c.clone());
            }
            Ok(Arc::new(a))
        })
    }

    fn by_time(&self, refs: &RefsView) -> Result<Arc<BTreeMap<String, Commit>>, MountError> {
        let mut slot = refs.by_time.lock().map_err(|_| poisoned())?;
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let branch = shown(&self.inner.opts.history_branch)
            .and_then(|b| refs.branches.get(b.as_ref()))
            .or_else(|| refs.branches.values().next());
        let mut out = BTreeMap::new();
        if let Some(tip) = branch {
            for c in self.ancestry(&tip.id)?.iter() {
                let base = time_label(&c.time);
                let mut name = base.clone();
                let mut n = 1;
                while out.contains_key(&name) {
                    n += 1;
                    name = format!("{base}-{n}");
                }
                out.insert(name, c.clone());
            }
        }
        let v = Arc::new(out);
        *slot = Some(v.clone());
        Ok(v)
    }

    fn snapshots(&self, refs: &RefsView) -> Result<Arc<BTreeMap<String, Commit>>, MountError> {
        let mut slot = refs.snapshots.lock().map_err(|_| poisoned())?;
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let mut out = BTreeMap::new();
        for tip in refs.branches.values().chain(refs.tags.values()) {
            if out.contains_key(&tip.id) {
                continue;
            }
            for c in self.ancestry(&tip.id)?.iter() {
                out.insert(c.id.clone(), c.clone());
            }
        }
        let v = Arc::new(out);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// A snapshot by id, listed or not.
    fn snapshot(&self, refs: &RefsView, id: &str) -> Result<Commit, MountError> {
        if let Some(c) = self.inner.commits.get(id) {
            return Ok(c);
        }
        if let Some(c) = self.snapshots(refs)?.get(id) {
            return Ok(c.clone());
        }
        let a = self.ancestry(id)?;
        a.first().cloned().ok_or(MountError::NotFound)
    }

    // ----- resolution -----

    /// The commit a ref folder name stands for.
    fn ref_commit(&self, top: Top, name: &str) -> Result<Commit, MountError> {
        let refs = self.refs()?;
        match top {
            Top::Branches => refs.branches.get(name).cloned(),
            Top::Tags => refs.tags.get(name).cloned(),
            Top::ByTime => self.by_time(&refs)?.get(name).cloned(),
            Top::Snapshots => match self.snapshot(&refs, name) {
                Ok(c) => Some(c),
                Err(MountError::NotFound) => None,
                Err(e) => return Err(e),
            },
        }
        .ok_or(MountError::NotFound)
    }

    /// The key of entry `name` of folder `parent` (not checked to exist below a ref folder).
    fn child_key(&self, parent: &Key, name: &str) -> Result<Key, MountError> {
        match parent {
            Key::Top(None) => TOPS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| Key::Top(Some(*t)))
                .ok_or(MountError::NotFound),
            Key::Top(Some(top)) => {
                let commit = self.ref_commit(*top, name)?;
                let folder = Arc::from(format!("{}/{name}", top_name(*top)));
                Ok(Key::In { top: *top, folder, commit, rel: String::new() })
            }
            Key::In { top, folder, commit, rel } => Ok(Key::In {
                top: *top,
                folder: folder.clone(),
                commit: commit.clone(),
                rel: join(rel, name),
            }),
        }
    }

    fn tree(&self, snapshot: &str) -> Result<Arc<SnapTree>, MountError> {
        self.inner.trees.get_or_insert_with(snapshot, || {
            Ok(Arc::new(SnapTree::build(&self.inner.backend.nodes(snapshot)?)))
        })
    }

    fn chunk_tree(
        &self,
        snapshot: &str,
        array: &str,
        layout: &Layout,
    ) -> Result<Arc<ChunkTree>, MountError> {
        let key = (snapshot.to_string(), array.to_string());
        self.inner.chunk_trees.get_or_insert_with(&key, || {
            let chunks = self.inner.backend.chunks(snapshot, array)?;
            Ok(Arc::new(ChunkTree::build(layout, chunks)))
        })
    }

    fn target(&self, snapshot: &str, rel: &str) -> Result<Target, MountError> {
        let tree = self.tree(snapshot)?;
        match tree.entry(rel) {
            Some(TreeEntry::Meta(b)) => return Ok(Target::Meta(b.clone())),
            Some(TreeEntry::Dir) => {
                let mut listing = tree.listing(rel).unwrap_or_default().to_vec();
                if let Some((_, (array, layout), "")) = tree.array_of(rel) {
                    let ct = self.chunk_tree(snapshot, array, layout)?;
                    listing.extend(ct.listing("").unwrap_or_default().iter().cloned());
                }
                return Ok(Target::Dir(listing));
            }
            None => {}
        }
        let Some((_, (array, layout), rest)) = tree.array_of(rel) else {
            return Err(MountError::NotFound);
        };
        let ct = self.chunk_tree(snapshot, array, layout)?;
        if let Some(f) = ct.file(rest) {
            return Ok(Target::Chunk { array: array.clone(), file: f.clone(), tree: ct.clone() });
        }
        match ct.listing(rest) {
            Some(l) => Ok(Target::Dir(l.to_vec())),
            None => Err(MountError::NotFound),
        }
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
            Key::Top(_) => {
                let refs = self.refs()?;
                (Kind::Dir, 0, refs.newest, self.inner.opts.refresh)
            }
            Key::In { top, commit, rel, .. } => {
                let mtime = SystemTime::from(commit.time);
                let ttl = self.ttl(*top, rel);
                let tree = self.tree(&commit.id)?;
                match tree.entry(rel) {
                    // Attributes of groups, arrays and zarr.json need no manifest.
                    Some(TreeEntry::Dir) => (Kind::Dir, 0, mtime, ttl),
                    Some(TreeEntry::Meta(b)) => (Kind::File, b.len() as u64, mtime, ttl),
                    None => match self.target(&commit.id, rel)? {
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
        let dirs = |top: Top, m: &BTreeMap<String, Commit>| {
            m.iter()
                .map(|(name, c)| {
                    let folder = Arc::from(format!("{}/{name}", top_name(top)));
                    let k = Key::In { top, folder, commit: c.clone(), rel: String::new() };
                    (k, Child { name: name.clone(), dir: true })
                })
                .collect::<Vec<_>>()
        };
        match key {
            Key::Top(None) => Ok(TOPS
                .iter()
                .map(|(n, t)| (Key::Top(Some(*t)), Child { name: n.to_string(), dir: true }))
                .collect()),
            Key::Top(Some(top)) => {
                let refs = self.refs()?;
                Ok(match top {
                    Top::Branches => dirs(*top, &refs.branches),
                    Top::Tags => dirs(*top, &refs.tags),
                    Top::Snapshots => dirs(*top, &*self.snapshots(&refs)?),
                    Top::ByTime => dirs(*top, &*self.by_time(&refs)?),
                })
            }
            Key::In { commit, rel, .. } => match self.target(&commit.id, rel)? {
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
        let Key::In { commit, rel, .. } = key.as_ref() else {
            return Err(MountError::IsADirectory);
        };
        let commit = commit.clone();
        let content = match self.target(&commit.id, rel)? {
            Target::Dir(_) => return Err(MountError::IsADirectory),
            Target::Meta(b) => HandleContent::Bytes(b),
            Target::Chunk { array, file, tree } => {
                self.read_ahead(&commit.id, &array, &tree, file.index);
                HandleContent::Chunk { array, file }
            }
        };
        let fh = self.inner.next_fh.fetch_add(1, Ordering::Relaxed);
        self.inner
            .handles
            .lock()
            .map_err(|_| poisoned())?
            .insert(fh, Arc::new(Handle { commit, content }));
        // An inode's content never changes: the kernel may keep its pages.
        Ok(OpenFile { fh, keep_cache: true })
    }

    /// Read up to `size` bytes at `offset` of an open file.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, MountError> {
        let h = self.inner.handles.lock().map_err(|_| poisoned())?.get(&fh).cloned();
        let h = h.ok_or(MountError::BadHandle)?;
        let bytes = match &h.content {
            HandleContent::Bytes(b) => b.clone(),
            HandleContent::Chunk { array, file } => self.chunk_bytes(&h.commit.id, array, file)?,
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

    fn chunk_bytes(
        &self,
        snapshot: &str,
        array: &str,
        file: &ChunkFile,
    ) -> Result<Bytes, MountError> {
        fetch_chunk(&self.inner, snapshot, array, file)
    }

    fn read_ahead(&self, snapshot: &str, array: &str, tree: &ChunkTree, index: usize) {
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

fn poisoned() -> MountError {
    MountError::Unavailable("internal lock poisoned".into())
}

/// A chunk's bytes: from memory, else from the disk cache, else from the
/// repository (one fetch per chunk however many readers wait for it).
fn fetch_chunk(
    inner: &Inner,
    snapshot: &str,
    array: &str,
    file: &ChunkFile,
) -> Result<Bytes, MountError> {
    fetch_chunk_waiting(inner, snapshot, array, file, None)
}

/// The same; `wait` bounds how long to wait for a fetch another thread has under
/// way (read-ahead passes zero: a chunk already coming needs no second worker).
fn fetch_chunk_waiting(
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
fn prefetch_worker(
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
