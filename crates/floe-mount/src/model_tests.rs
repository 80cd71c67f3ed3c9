//! Reference-model tests of the mount's semantics, without a kernel.
//!
//! The in-memory repository of [`crate::testing`] (branches, tags, snapshots with
//! groups, arrays and chunks) backs a [`Vfs`]; random sequences of operations ("a commit lands on a
//! branch", "a branch is made", "a tag is created", "a file is opened, then the
//! branch moves") run against it, and after every step each ref folder of the mount
//! is walked and compared, entry by entry and byte by byte, with what a naive model
//! computes from the repository directly. Shrunk failures are pinned below as named
//! regression tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use crate::testing::{MemBackend, MemRepo, MemSnap};
use crate::{Kind, MountError, ROOT_INO, Vfs, VfsOptions, time_label};

// ----- the model: what each ref folder must hold, computed naively -----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Dir(BTreeSet<String>),
    File(Bytes),
}

fn chunk_key(zarr_json: &Bytes, coords: &[u32]) -> Vec<String> {
    let v2 = std::str::from_utf8(zarr_json).unwrap().contains(r#""name":"v2""#);
    let nums: Vec<String> = coords.iter().map(|c| c.to_string()).collect();
    if v2 {
        vec![if nums.is_empty() { "0".into() } else { nums.join(".") }]
    } else {
        let mut k = vec!["c".to_string()];
        k.extend(nums);
        k
    }
}

fn model_tree(s: &MemSnap) -> BTreeMap<String, Want> {
    let mut out: BTreeMap<String, Want> = BTreeMap::new();
    let mut add = |path: Vec<String>, leaf: Option<Bytes>| {
        for i in 0..=path.len() {
            let p = path[..i].join("/");
            let is_leaf = i == path.len() && leaf.is_some();
            if is_leaf {
                out.insert(p, Want::File(leaf.clone().unwrap()));
            } else {
                let e = out.entry(p).or_insert_with(|| Want::Dir(BTreeSet::new()));
                if let (Want::Dir(set), Some(next)) = (e, path.get(i)) {
                    set.insert(next.clone());
                }
            }
        }
    };
    for (p, n) in &s.nodes {
        let base: Vec<String> = p.split('/').filter(|c| !c.is_empty()).map(String::from).collect();
        let mut meta = base.clone();
        meta.push("zarr.json".into());
        add(meta, Some(n.zarr_json.clone()));
        for (coords, bytes) in n.chunks.iter().flatten() {
            let mut k = base.clone();
            k.extend(chunk_key(&n.zarr_json, coords));
            add(k, Some(bytes.clone()));
        }
    }
    out
}

fn model_refs(r: &MemRepo) -> BTreeMap<String, String> {
    // ref folder -> snapshot id
    let mut out = BTreeMap::new();
    for (b, id) in &r.branches {
        out.insert(format!("branches/{b}"), id.clone());
    }
    for (t, id) in &r.tags {
        out.insert(format!("tags/{t}"), id.clone());
    }
    for c in r.ancestry(&r.branches["main"]) {
        out.insert(format!("by-time/{}", time_label(&c.time)), c.id.clone());
        out.insert(format!("snapshots/{}", c.id), c.id.clone());
    }
    for id in r.branches.values().chain(r.tags.values()) {
        for c in r.ancestry(id) {
            out.insert(format!("snapshots/{}", c.id), c.id.clone());
        }
    }
    out
}

// ----- walking the mount -----

fn walk(vfs: &Vfs, path: &str) -> Result<u64, MountError> {
    let mut ino = ROOT_INO;
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        ino = vfs.lookup(ino, comp)?.ino;
    }
    Ok(ino)
}

fn read_all(vfs: &Vfs, ino: u64) -> Bytes {
    let f = vfs.open(ino, false).unwrap();
    let mut out = Vec::new();
    loop {
        let b = vfs.read(f.fh, out.len() as u64, 7).unwrap();
        if b.is_empty() {
            break;
        }
        out.extend_from_slice(&b);
    }
    vfs.release(f.fh);
    Bytes::from(out)
}

/// The whole mount equals the model.
fn check(vfs: &Vfs, backend: &MemBackend) {
    let (refs, trees) = {
        let r = backend.repo.lock().unwrap();
        let refs = model_refs(&r);
        let trees: HashMap<String, BTreeMap<String, Want>> =
            refs.values().map(|id| (id.clone(), model_tree(&r.snaps[id]))).collect();
        (refs, trees)
    };
    // The top folders list exactly the refs.
    for top in ["branches", "tags", "snapshots", "by-time"] {
        let want: BTreeSet<String> = refs
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{top}/")).map(String::from))
            .collect();
        let ino = walk(vfs, top).unwrap();
        let got: BTreeSet<String> = vfs.readdir(ino).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(got, want, "listing of {top}/");
    }
    for (folder, id) in &refs {
        for (rel, want) in &trees[id] {
            let path = if rel.is_empty() { folder.clone() } else { format!("{folder}/{rel}") };
            let ino = walk(vfs, &path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let attr = vfs.getattr(ino).unwrap();
            match want {
                Want::Dir(names) => {
                    assert_eq!(attr.kind, Kind::Dir, "{path}");
                    let got: BTreeSet<String> =
                        vfs.readdir(ino).unwrap().into_iter().map(|e| e.name).collect();
                    assert_eq!(&got, names, "listing of {path}");
                }
                Want::File(bytes) => {
                    assert_eq!(attr.kind, Kind::File, "{path}");
                    assert_eq!(attr.size, bytes.len() as u64, "size of {path}");
                    assert_eq!(&read_all(vfs, ino), bytes, "bytes of {path}");
                }
            }
        }
        // Something that is not there is not found.
        assert_eq!(walk(vfs, &format!("{folder}/nope")).unwrap_err(), MountError::NotFound);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Commit {
        branch: bool,
        array: u8,
        coords: Vec<u32>,
        fill: u8,
        len: usize,
    },
    Branch,
    Tag,
    /// Open a chunk file of `branches/main`, commit new bytes to it, and read the
    /// handle: it must still show the bytes it was opened at.
    OpenThenAdvance {
        fill: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0u8..4, prop::collection::vec(0u32..3, 2), any::<u8>(), 0usize..40)
            .prop_map(|(branch, array, coords, fill, len)| Op::Commit { branch, array, coords, fill, len }),
        1 => Just(Op::Branch),
        1 => Just(Op::Tag),
        2 => any::<u8>().prop_map(|fill| Op::OpenThenAdvance { fill }),
    ]
}

fn opts() -> VfsOptions {
    VfsOptions {
        refresh: Duration::ZERO,
        mem_cache_bytes: 1 << 20,
        readahead_chunks: 2,
        prefetch_threads: 1,
        ..VfsOptions::default()
    }
}

fn run(ops: &[Op]) {
    let backend = Arc::new(MemBackend::new());
    let vfs = Vfs::new(backend.clone(), opts()).unwrap();
    check(&vfs, &backend);
    for op in ops {
        match op {
            Op::Commit { branch, array, coords, fill, len } => {
                let mut r = backend.repo.lock().unwrap();
                let b = if *branch && r.branches.contains_key("dev") { "dev" } else { "main" };
                r.commit(b, *array, coords.clone(), *fill, *len);
            }
            Op::Branch => {
                let mut r = backend.repo.lock().unwrap();
                let tip = r.branches["main"].clone();
                r.branches.entry("dev".into()).or_insert(tip);
            }
            Op::Tag => {
                let mut r = backend.repo.lock().unwrap();
                let name = format!("v{}", r.tags.len() + 1);
                let tip = r.branches["main"].clone();
                r.tags.insert(name, tip);
            }
            Op::OpenThenAdvance { fill } => {
                let path = "branches/main/g/temp/c/0/0";
                let Ok(ino) = walk(&vfs, path) else { continue };
                let f = vfs.open(ino, false).unwrap();
                let before = vfs.read(f.fh, 0, 1 << 20).unwrap();
                let size = vfs.getattr(ino).unwrap().size;
                backend.repo.lock().unwrap().commit("main", 0, vec![0, 0], *fill, 5);
                let again = vfs.read(f.fh, 0, 1 << 20).unwrap();
                assert_eq!(before, again, "an open file stays on its snapshot");
                assert_eq!(vfs.getattr(ino).unwrap().size, size, "and so does its inode");
                vfs.release(f.fh);
                let new_ino = walk(&vfs, path).unwrap();
                assert_ne!(new_ino, ino, "the new tip's file is another inode");
                let fresh = read_all(&vfs, new_ino);
                assert_eq!(fresh, Bytes::from(vec![*fill; 5]), "a new open sees the new tip");
            }
        }
        check(&vfs, &backend);
    }
    assert_eq!(vfs.open_handles(), 0, "every handle released");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn the_mount_matches_the_model(ops in prop::collection::vec(op(), 0..14)) {
        run(&ops);
    }
}

// ----- pinned cases and properties the model does not reach -----

#[test]
fn an_empty_repository_mounts() {
    run(&[]);
}

#[test]
fn a_tag_made_before_more_commits_keeps_its_snapshot() {
    run(&[
        Op::Commit { branch: false, array: 0, coords: vec![0, 0], fill: 1, len: 3 },
        Op::Tag,
        Op::Commit { branch: false, array: 0, coords: vec![0, 0], fill: 2, len: 4 },
        Op::Commit { branch: false, array: 1, coords: vec![1, 2], fill: 3, len: 0 },
    ]);
}

#[test]
fn a_scalar_array_and_a_branch_that_diverges() {
    run(&[
        Op::Branch,
        Op::Commit { branch: true, array: 3, coords: vec![0, 0], fill: 9, len: 2 },
        Op::Commit { branch: false, array: 2, coords: vec![2, 1], fill: 8, len: 1 },
        Op::OpenThenAdvance { fill: 7 },
    ]);
}

#[test]
fn writes_are_refused_and_folders_are_not_files() {
    let backend = Arc::new(MemBackend::new());
    backend.repo.lock().unwrap().commit("main", 0, vec![0, 0], 1, 3);
    let vfs = Vfs::new(backend, opts()).unwrap();
    let chunk = walk(&vfs, "branches/main/g/temp/c/0/0").unwrap();
    assert_eq!(vfs.open(chunk, true).unwrap_err(), MountError::ReadOnly);
    let dir = walk(&vfs, "branches/main/g").unwrap();
    assert_eq!(vfs.open(dir, false).unwrap_err(), MountError::IsADirectory);
    assert_eq!(vfs.readdir(chunk).unwrap_err(), MountError::NotADirectory);
    for bad in ["..", ".", "", "a/b"] {
        assert_eq!(vfs.lookup(ROOT_INO, bad).unwrap_err(), MountError::NotFound);
    }
}

#[test]
fn an_unreachable_repository_is_an_error_not_a_hang_and_known_snapshots_stay_readable() {
    let backend = Arc::new(MemBackend::new());
    backend.repo.lock().unwrap().commit("main", 0, vec![0, 0], 1, 3);
    let vfs = Vfs::new(backend.clone(), opts()).unwrap();
    let id = backend.repo.lock().unwrap().branches["main"].clone();
    let cached = walk(&vfs, &format!("snapshots/{id}/g/temp/c/0/0")).unwrap();
    assert_eq!(read_all(&vfs, cached).len(), 3);
    backend.down.store(true, Ordering::SeqCst);
    // Refs are served from the last refresh; what is cached still reads.
    assert_eq!(read_all(&vfs, cached).len(), 3);
    // What needs the repository fails with Unavailable (EIO in the mount).
    backend.repo.lock().unwrap().commit("main", 1, vec![0, 0], 1, 3);
    let fresh = Vfs::new(backend.clone(), opts()).unwrap();
    assert!(matches!(fresh.lookup(ROOT_INO, "branches").unwrap_err(), MountError::Unavailable(_)));
    // and once it is back, so is the mount
    backend.down.store(false, Ordering::SeqCst);
    assert!(walk(&fresh, "branches/main/g/pressure/zarr.json").is_ok());
}

#[test]
fn stat_and_listing_of_groups_never_fetch_chunk_bytes_and_readers_share_one_fetch() {
    let backend = Arc::new(MemBackend::new());
    for i in 0..3 {
        backend.repo.lock().unwrap().commit("main", 0, vec![i, 0], 1, 1000);
    }
    let vfs = Vfs::new(backend.clone(), VfsOptions { readahead_chunks: 0, ..opts() }).unwrap();
    let dir = walk(&vfs, "branches/main/g/temp/c/0").unwrap();
    vfs.readdir(dir).unwrap();
    let chunk = walk(&vfs, "branches/main/g/temp/c/1/0").unwrap();
    assert_eq!(vfs.getattr(chunk).unwrap().size, 1000);
    assert_eq!(backend.reads.load(Ordering::SeqCst), 0, "sizes come from the manifest");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let vfs = vfs.clone();
            std::thread::spawn(move || read_all(&vfs, chunk))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().len(), 1000);
    }
    assert_eq!(backend.reads.load(Ordering::SeqCst), 1, "one fetch for all readers");
}

#[test]
fn read_ahead_fetches_the_next_chunks_of_a_sequential_reader() {
    let backend = Arc::new(MemBackend::new());
    for i in 0..3 {
        for j in 0..3 {
            backend.repo.lock().unwrap().commit("main", 0, vec![i, j], (i * 3 + j) as u8, 100);
        }
    }
    let vfs = Vfs::new(
        backend.clone(),
        VfsOptions { readahead_chunks: 4, prefetch_threads: 2, ..opts() },
    )
    .unwrap();
    let first = walk(&vfs, "branches/main/g/temp/c/0/0").unwrap();
    let f = vfs.open(first, false).unwrap();
    vfs.release(f.fh);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while backend.reads.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(backend.reads.load(Ordering::SeqCst), 4, "the next 4 chunks were fetched ahead");
    let next = walk(&vfs, "branches/main/g/temp/c/0/1").unwrap();
    assert_eq!(read_all(&vfs, next), Bytes::from(vec![1u8; 100]));
    assert!(backend.reads.load(Ordering::SeqCst) <= 8);
}

#[test]
fn forgotten_inodes_are_dropped_and_listing_numbers_match_lookups() {
    let backend = Arc::new(MemBackend::new());
    backend.repo.lock().unwrap().commit("main", 0, vec![0, 0], 1, 3);
    let vfs = Vfs::new(backend.clone(), opts()).unwrap();
    let start = vfs.inode_count();
    let branches = vfs.lookup(ROOT_INO, "branches").unwrap().ino;
    let main = vfs.lookup(branches, "main").unwrap().ino;
    let listed = vfs.readdir(main).unwrap();
    let g = vfs.lookup(main, "g").unwrap().ino;
    assert!(listed.iter().find(|e| e.name == "g").unwrap().ino >= 1 << 63, "not looked up yet");
    assert_eq!(listed_ino_after(&vfs, main, "g"), g, "once looked up, the listing shows its inode");
    assert_eq!(vfs.lookup(main, "g").unwrap().ino, g, "the same snapshot path, the same inode");
    assert_eq!(vfs.inode_count(), start + 3);
    vfs.forget(g, 2);
    vfs.forget(main, 1);
    vfs.forget(branches, 1);
    assert_eq!(vfs.inode_count(), start, "every forgotten inode is dropped");
    assert_eq!(vfs.getattr(g).unwrap_err(), MountError::NotFound);
    vfs.forget(ROOT_INO, 5);
    assert!(vfs.getattr(ROOT_INO).is_ok(), "the root is never forgotten");
}

fn listed_ino_after(vfs: &Vfs, dir: u64, name: &str) -> u64 {
    vfs.readdir(dir).unwrap().into_iter().find(|e| e.name == name).unwrap().ino
}

#[test]
fn hostile_ref_names_are_escaped() {
    let backend = Arc::new(MemBackend::new());
    {
        let mut r = backend.repo.lock().unwrap();
        let tip = r.branches["main"].clone();
        r.tags.insert("../../etc".into(), tip.clone());
        r.tags.insert("..".into(), tip);
    }
    let vfs = Vfs::new(backend, opts()).unwrap();
    let tags = walk(&vfs, "tags").unwrap();
    let names: BTreeSet<String> = vfs.readdir(tags).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, BTreeSet::from(["%2E%2E".to_string(), "..%2F..%2Fetc".to_string()]));
    assert!(walk(&vfs, "tags/..%2F..%2Fetc/zarr.json").is_ok());
}

// ----- a catalog: prefixes as folders, repositories among them -----

fn names(vfs: &Vfs, path: &str) -> Vec<String> {
    let ino = walk(vfs, path).unwrap();
    let mut v: Vec<String> = vfs.readdir(ino).unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

fn repo_with(fill: u8) -> Arc<MemBackend> {
    let b = Arc::new(MemBackend::new());
    b.repo.lock().unwrap().commit("main", 0, vec![0, 0], fill, 4);
    b
}

#[test]
fn a_catalog_shows_prefixes_as_folders_and_each_repository_with_its_own_folders() {
    use crate::testing::MemCatalog;
    let cat = Arc::new(MemCatalog::default());
    cat.add("lab/ctd", Some(repo_with(1)));
    cat.add("lab/ctd/2024", Some(repo_with(2)));
    cat.add("lab/radar", None);
    cat.add("field/lidar-2024-05-01T00-00-00Z", Some(repo_with(3)));
    let vfs = Vfs::with_catalog(cat.clone(), opts()).unwrap();
    assert_eq!(names(&vfs, ""), ["field", "lab"]);
    assert_eq!(names(&vfs, "lab"), ["ctd", "radar"]);
    // a repository that is also the parent of another shows both
    assert_eq!(names(&vfs, "lab/ctd"), ["2024", "branches", "by-time", "snapshots", "tags"]);
    // each repository reads its own data
    for (path, fill) in
        [("lab/ctd", 1u8), ("lab/ctd/2024", 2), ("field/lidar-2024-05-01T00-00-00Z", 3)]
    {
        let ino = walk(&vfs, &format!("{path}/branches/main/g/temp/c/0/0")).unwrap();
        assert_eq!(read_all(&vfs, ino), Bytes::from(vec![fill; 4]), "{path}");
    }
    // an unreadable repository is an empty folder, not an error for the mount
    assert_eq!(names(&vfs, "lab/radar"), Vec::<String>::new());
    assert_eq!(walk(&vfs, "lab/radar/branches").unwrap_err(), MountError::NotFound);
    // ... and shows its folders once it can be opened
    cat.repos.lock().unwrap().insert("lab/radar".into(), repo_with(4));
    assert_eq!(names(&vfs, "lab/radar"), ["branches", "by-time", "snapshots", "tags"]);
    // a new repository appears at the next listing
    cat.add("lab/sonde", Some(repo_with(5)));
    assert_eq!(names(&vfs, "lab"), ["ctd", "radar", "sonde"]);
    assert_eq!(vfs.open_handles(), 0);
}

#[test]
fn a_catalog_lists_each_prefix_once_per_refresh_and_never_opens_a_repository_to_list_its_parent() {
    use crate::testing::MemCatalog;
    let cat = Arc::new(MemCatalog::default());
    let backends: Vec<_> =
        (0..50).map(|i| (format!("inst{}/proj{i}", i % 5), repo_with(i as u8))).collect();
    for (p, b) in &backends {
        cat.add(p, Some(b.clone()));
    }
    let opts = VfsOptions { refresh: Duration::from_secs(60), ..opts() };
    let vfs = Vfs::with_catalog(cat.clone(), opts).unwrap();
    let mut seen = 0;
    for inst in names(&vfs, "") {
        for proj in names(&vfs, &inst) {
            let ino = walk(&vfs, &format!("{inst}/{proj}")).unwrap();
            assert_eq!(vfs.getattr(ino).unwrap().kind, Kind::Dir);
            seen += 1;
        }
    }
    assert_eq!(seen, 50);
    // the root, 5 instruments: nothing below them was listed, no repository opened
    assert_eq!(cat.lists.load(Ordering::SeqCst), 6);
    assert_eq!(
        cat.opens.load(Ordering::SeqCst),
        0,
        "listing and stat of repository folders open none"
    );
    assert_eq!(names(&vfs, "inst0"), names(&vfs, "inst0"));
    assert_eq!(cat.lists.load(Ordering::SeqCst), 6, "listings are kept for the refresh period");
}

#[test]
fn the_root_of_a_one_repository_mount_is_the_repository() {
    let vfs = Vfs::new(repo_with(1), opts()).unwrap();
    assert_eq!(names(&vfs, ""), ["branches", "by-time", "snapshots", "tags"]);
}
