//! The thin `fuser` adapter over [`floe_mount::Vfs`]: every callback runs one
//! `Vfs` operation and replies. All filesystem meaning lives in `floe-mount`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use floe_mount::{Attr, Kind, MountError, Vfs};
use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, SessionACL, TimeOrNow, WriteFlags,
};

/// The errno of every mount error: an explicit table, no catch-all arm.
pub fn errno(e: &MountError) -> Errno {
    match e {
        MountError::NotFound => Errno::ENOENT,
        MountError::NotADirectory => Errno::ENOTDIR,
        MountError::IsADirectory => Errno::EISDIR,
        MountError::ReadOnly => Errno::EROFS,
        MountError::BadHandle => Errno::EBADF,
        // a read-ahead's answer; a reader that got it could try again
        MountError::FetchUnderWay => Errno::EAGAIN,
        MountError::Unavailable(_) => Errno::EIO,
    }
}

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountSettings {
    /// Let other users read the mount (FUSE `allow_other`; needs `user_allow_other`
    /// in /etc/fuse.conf for non-root users). Off: only the mounting user can.
    pub allow_other: bool,
    /// Threads serving kernel requests.
    pub threads: usize,
    /// The name shown in `mount` and `df`.
    pub fs_name: String,
}

impl Default for MountSettings {
    fn default() -> Self {
        MountSettings { allow_other: false, threads: 16, fs_name: "floe".into() }
    }
}

struct FloeFs {
    vfs: Vfs,
    uid: u32,
    gid: u32,
}

/// Blocks reported to `du` and `stat`.
const BLOCK: u64 = 512;

impl FloeFs {
    fn attr(&self, a: &Attr) -> FileAttr {
        let (kind, perm, nlink) = match a.kind {
            Kind::Dir => (FileType::Directory, 0o555, 2),
            Kind::File => (FileType::RegularFile, 0o444, 1),
        };
        FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: a.size.div_ceil(BLOCK),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 128 * 1024,
            flags: 0,
        }
    }
}

fn name_str(name: &OsStr) -> Option<&str> {
    name.to_str()
}

impl Filesystem for FloeFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name_str(name) else { return reply.error(Errno::ENOENT) };
        match self.vfs.lookup(parent.0, name) {
            Ok(a) => reply.entry(&a.ttl, &self.attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    // (fuser's default batch_forget calls this for each inode.)
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.vfs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.vfs.getattr(ino.0) {
            Ok(a) => reply.attr(&a.ttl, &self.attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write =
            !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY) || flags.0 & libc::O_TRUNC != 0;
        match self.vfs.open(ino.0, write) {
            Ok(f) => {
                // nothing is ever written: no FLUSH round trip when the file closes
                let mut fl = FopenFlags::FOPEN_NOFLUSH;
                if f.keep_cache {
                    fl |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                reply.opened(FileHandle(f.fh), fl);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.vfs.read(fh.0, offset, size) {
            Ok(b) => reply.data(&b),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.vfs.release(fh.0);
        reply.ok();
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.vfs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.vfs.dir_entries(fh.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        // Offsets: 1 is ".", 2 is "..", 3.. the entries; each names the next one.
        let dots = [
            (ino, FileType::Directory, "."),
            (INodeNo(floe_mount::ROOT_INO), FileType::Directory, ".."),
        ];
        let mut next = offset;
        while (next as usize) < dots.len() {
            let (i, k, n) = dots[next as usize];
            next += 1;
            if reply.add(i, next, k, n) {
                return reply.ok();
            }
        }
        for e in entries.iter().skip(next as usize - dots.len()) {
            next += 1;
            let kind = match e.kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
            };
            if reply.add(INodeNo(e.ino), next, kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.vfs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(0, 0, 0, self.vfs.inode_count() as u64, 0, BLOCK as u32, 255, BLOCK as u32);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else {
            reply.ok();
        }
    }

    // ----- every write gets EROFS -----

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _r: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(&self, _req: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _wf: WriteFlags,
        _flags: OpenFlags,
        _lo: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _f: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}

/// The owner shown for every file: the mounting user.
fn owner() -> (u32, u32) {
    std::fs::metadata("/proc/self").map(|m| (m.uid(), m.gid())).unwrap_or((0, 0))
}

/// Keep the mount's memory near its caches' bounds: glibc gives each thread that
/// allocates its own arena and keeps what it freed there, and a mount has many
/// (kernel request threads, read-ahead, the I/O runtime). Reading 163.5 MB of
/// distinct chunks through a mount with an 8 MiB memory cache grew it by 99 MB with
/// the default arenas and by 37 MB with one (tests/mount.rs,
/// the_memory_and_disk_caches_stay_within_their_bounds_while_reading_more); two
/// keep some allocation concurrency. Even so, CI once measured 55.7 MB: glibc raises
/// its mmap threshold each time a large block is freed, so chunk-sized buffers (2 MB
/// here) soon come from the heap, where a freed one is kept wherever a small
/// allocation sits above it. A fixed threshold keeps every buffer of 128 KiB and
/// more in its own mapping, returned to the system when freed: 17.1, 20.8 and
/// 22.4 MB over three runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "mallopt(3) takes two integers and touches no Rust memory")]
fn bound_allocator_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before the serving
    // threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator_memory() {}

/// Mount `vfs` at `mountpoint` read-only; the returned session serves it until it
/// is dropped or [`fuser::BackgroundSession::umount_and_join`] is called.
pub fn mount(
    vfs: Vfs,
    mountpoint: &Path,
    settings: &MountSettings,
) -> io::Result<fuser::BackgroundSession> {
    clean_dead_mount(mountpoint);
    bound_allocator_memory();
    let (uid, gid) = owner();
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::NoExec,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
        MountOption::FSName(settings.fs_name.clone()),
        MountOption::Subtype("floe".into()),
    ];
    config.acl = if settings.allow_other { SessionACL::All } else { SessionACL::Owner };
    config.n_threads = Some(settings.threads.max(1));
    config.clone_fd = true;
    fuser::spawn_mount(FloeFs { vfs, uid, gid }, mountpoint, &config)
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The kernel's mount id: a mount replaced at the same point gets a new one.
    pub id: u64,
    pub mountpoint: PathBuf,
    /// `fuse.floe` through fusermount3, plain `fuse` when root mounts directly.
    pub fstype: String,
    /// What was mounted: `floe:<repository>` for Floe's mounts.
    pub source: String,
}

impl MountEntry {
    /// The repository, for a Floe mount.
    pub fn floe_repo(&self) -> Option<&str> {
        let fuse = self.fstype == "fuse" || self.fstype.starts_with("fuse.");
        self.source.strip_prefix("floe:").filter(|_| fuse)
    }
}

/// The mounts in a mountinfo text (octal escapes such as `\040` undone).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let id = left.split(' ').next()?.parse().ok()?;
            let mountpoint = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, source) = (r.next()?, r.next()?);
            Some(MountEntry {
                id,
                mountpoint: PathBuf::from(unescape_mountinfo(mountpoint)),
                fstype: fstype.to_string(),
                source: unescape_mountinfo(source),
            })
        })
        .collect()
}

/// This mount namespace's mounts, now.
pub fn mount_table() -> Vec<MountEntry> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether something is mounted at `mountpoint`.
pub fn is_mounted(mountpoint: &Path) -> bool {
    let target = std::fs::canonicalize(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    mount_table().iter().any(|m| m.mountpoint == target)
}

/// Undo mountinfo's octal escapes (`\040` is a space, `\134` a backslash).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A mount whose process died leaves "Transport endpoint is not connected":
/// detach it so that the folder can be mounted again.
pub fn clean_dead_mount(mountpoint: &Path) {
    if is_dead(mountpoint) {
        tracing::warn!(mountpoint = %mountpoint.display(), "removing a dead mount left by a killed process");
        let _ = lazy_unmount(mountpoint);
    }
}

/// Whether `mountpoint` is a mount whose server is gone. (Listing, not `stat`: the
/// kernel may still answer `stat` from attributes it cached before the server died.)
pub fn is_dead(mountpoint: &Path) -> bool {
    std::fs::read_dir(mountpoint).err().and_then(|e| e.raw_os_error()) == Some(libc::ENOTCONN)
}

fn run(cmd: &str, args: &[&OsStr]) -> io::Result<bool> {
    match Command::new(cmd).args(args).stderr(std::process::Stdio::null()).status() {
        Ok(s) => Ok(s.success()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn lazy_unmount(mountpoint: &Path) -> io::Result<bool> {
    let mp = mountpoint.as_os_str();
    Ok(run("fusermount3", &[OsStr::new("-uz"), mp])? || run("umount", &[OsStr::new("-l"), mp])?)
}

/// Unmount `mountpoint` (from any process): a clean unmount first; if the mount is
/// busy, say so; if its server is dead, detach it.
pub fn unmount(mountpoint: &Path) -> Result<(), String> {
    let shown = mountpoint.display();
    if !is_mounted(mountpoint) {
        return Err(format!("nothing is mounted at {shown}"));
    }
    let mp = mountpoint.as_os_str();
    let ok = run("fusermount3", &[OsStr::new("-u"), mp]).unwrap_or(false)
        || run("umount", &[mp]).unwrap_or(false);
    if ok {
        return Ok(());
    }
    if is_dead(mountpoint) {
        return match lazy_unmount(mountpoint) {
            Ok(true) => Ok(()),
            _ => {
                Err(format!("could not detach the dead mount at {shown}; try `umount -l {shown}`"))
            }
        };
    }
    Err(format!(
        "{shown} is busy: close the programs and shells using files under it (see `fuser -vm {shown}`), then unmount again"
    ))
}

/// Wait until `mountpoint` is mounted (or `timeout` passes).
pub fn wait_mounted(mountpoint: &Path, timeout: Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if is_mounted(mountpoint) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A repository mounted by this process.
#[derive(Debug)]
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    mountpoint: PathBuf,
}

/// Why a mount could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Repository(#[from] floe_store::StoreError),
    #[error("{0}")]
    Mount(String),
}

impl StartError {
    pub fn code(&self) -> floe_core::ErrorCode {
        match self {
            StartError::Repository(e) => e.code(),
            StartError::Mount(_) => floe_core::ErrorCode::Usage,
        }
    }
}

impl Mounted {
    /// Open the repository at `url`, or the catalog of repositories under it, and
    /// mount it read-only at `mountpoint`.
    pub fn start(
        url: &floe_core::RepoUrl,
        mountpoint: &Path,
        vfs: floe_mount::VfsOptions,
        settings: &MountSettings,
        timeout: Duration,
    ) -> Result<Mounted, StartError> {
        // before the repository's I/O threads start (arenas are made as threads first
        // allocate)
        bound_allocator_memory();
        clean_dead_mount(mountpoint);
        let meta = std::fs::metadata(mountpoint).map_err(|e| {
            StartError::Mount(format!(
                "mount point {}: {e}; create an empty folder there first",
                mountpoint.display()
            ))
        })?;
        if !meta.is_dir() {
            return Err(StartError::Mount(format!(
                "mount point {} is not a folder",
                mountpoint.display()
            )));
        }
        if is_mounted(mountpoint) {
            return Err(StartError::Mount(format!(
                "something is already mounted at {}; `floe unmount {}` first",
                mountpoint.display(),
                mountpoint.display()
            )));
        }
        let catalog = floe_mount::IcechunkCatalog::open(url, timeout)?;
        let vfs = Vfs::with_catalog(std::sync::Arc::new(catalog), vfs)
            .map_err(|e| StartError::Mount(e.to_string()))?;
        let session = mount(vfs, mountpoint, settings).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EPERM)
                || e.kind() == io::ErrorKind::PermissionDenied
            {
                "; mounting needs /dev/fuse and the fuse3 package (fusermount3) for non-root users"
            } else if e.kind() == io::ErrorKind::NotFound {
                "; install the fuse3 package (it provides /dev/fuse and fusermount3)"
            } else {
                ""
            };
            StartError::Mount(format!("cannot mount at {}: {e}{hint}", mountpoint.display()))
        })?;
        Ok(Mounted { session: Some(session), mountpoint: mountpoint.to_path_buf() })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether the kernel still serves the mount (false once someone unmounted it).
    pub fn is_alive(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.guard.is_finished())
    }

    /// Unmount and wait for the serving threads to end.
    pub fn unmount(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        let Some(s) = self.session.take() else { return Ok(()) };
        if s.guard.is_finished() {
            // Unmounted from elsewhere (`floe unmount`, `umount`). Dropping the session
            // would unmount the *path* once more, and by then a new mount may sit
            // there: leave the finished session's handles to the process's end.
            std::mem::forget(s);
            return Ok(());
        }
        s.umount_and_join()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(mountpoint = %self.mountpoint.display(), "unmount: {e}");
        }
    }
}
