//! The errno table through the kernel: an in-memory repository
//! (`floe_mount::testing`) mounted with the real FUSE adapter, each failure read back
//! as `std::io::Error::raw_os_error()` by an ordinary program's calls. The Icechunk
//! side of the same answers is tested through `floe mount` in `tests/tests/mount.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use floe_fuse::{MountSettings, mount};
use floe_mount::testing::MemBackend;
use floe_mount::{Vfs, VfsOptions};

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("the call should fail").raw_os_error().expect("an OS error")
}

fn opts() -> VfsOptions {
    // no read-ahead: the test decides which chunk bytes were fetched
    VfsOptions { refresh: Duration::ZERO, readahead_chunks: 0, ..VfsOptions::default() }
}

#[test]
fn each_failure_reaches_a_program_as_its_errno() {
    if !Path::new("/dev/fuse").exists() {
        panic!("/dev/fuse is missing: install fuse3 (scripts/setup.sh does)");
    }
    let backend = Arc::new(MemBackend::new());
    backend.repo.lock().unwrap().commit("main", 0, vec![0, 0], 7, 5);
    backend.repo.lock().unwrap().commit("main", 0, vec![0, 1], 8, 5);
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let vfs = Vfs::new(backend.clone(), opts()).unwrap();
    let session = mount(vfs, &mp, &MountSettings { threads: 2, ..MountSettings::default() })
        .expect("mount through /dev/fuse");
    assert!(floe_fuse::wait_mounted(&mp, Duration::from_secs(10)), "the mount came up");

    let main = mp.join("branches/main");
    let chunk = main.join("g/temp/c/0/0");
    assert_eq!(std::fs::read(&chunk).unwrap(), vec![7; 5], "a chunk reads as its bytes");

    // NotFound, NotADirectory, IsADirectory, ReadOnly: each as the table says.
    assert_eq!(errno(std::fs::metadata(main.join("nope"))), libc::ENOENT);
    assert_eq!(errno(std::fs::read_dir(&chunk)), libc::ENOTDIR);
    assert_eq!(errno(std::fs::read(main.join("g"))), libc::EISDIR);
    assert_eq!(errno(std::fs::OpenOptions::new().write(true).open(&chunk)), libc::EROFS);
    assert_eq!(errno(std::fs::create_dir(main.join("new"))), libc::EROFS);
    assert_eq!(errno(std::fs::remove_file(&chunk)), libc::EROFS);

    // Unavailable: a repository that stops answering is EIO for what needs it (the
    // bytes of a chunk not yet read), while the paths of its last known state still
    // resolve (SEMANTICS.md, "When the repository cannot be reached")...
    let unread = main.join("g/temp/c/0/1");
    assert_eq!(std::fs::metadata(&unread).unwrap().len(), 5);
    let reads = backend.reads.load(Ordering::SeqCst);
    backend.down.store(true, Ordering::SeqCst);
    let e = std::fs::read(&unread).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_ne!(e.kind(), ErrorKind::NotFound, "down is not 'not there'");
    assert_eq!(std::fs::read(&chunk).unwrap(), vec![7; 5], "what was read is cached");
    // ...and the mount answers again once it is back.
    backend.down.store(false, Ordering::SeqCst);
    assert_eq!(std::fs::read(&unread).unwrap(), vec![8; 5]);
    assert_eq!(backend.reads.load(Ordering::SeqCst), reads + 1, "one fetch once it is back");

    session.umount_and_join().unwrap();
    assert!(!floe_fuse::is_mounted(&mp), "unmounted");
}
