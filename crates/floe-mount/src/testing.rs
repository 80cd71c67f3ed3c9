//! An in-memory repository behind the mount's [`Backend`], for tests: the reference
//! model of `floe-mount`'s own tests, and a kernel mount without Icechunk in
//! `floe-fuse`'s (enable the `testing` feature in a dev-dependency; no shipped build
//! does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};

use crate::{Backend, ChunkEntry, Commit, Layout, MountError, Node, NodeKind, Refs};

/// One node of a snapshot: its `zarr.json` and, for an array, its chunks by grid
/// coordinates.
#[derive(Clone, Debug, Default)]
pub struct MemNode {
    pub zarr_json: Bytes,
    /// None for a group.
    pub chunks: Option<BTreeMap<Vec<u32>, Bytes>>,
}

/// One snapshot: its parent, commit time and nodes by path (`""` is the root).
#[derive(Clone, Debug)]
pub struct MemSnap {
    pub parent: Option<String>,
    pub time: DateTime<Utc>,
    pub nodes: BTreeMap<String, MemNode>,
}

/// The repository: snapshots by id, branches and tags onto snapshot ids.
#[derive(Debug, Default)]
pub struct MemRepo {
    pub snaps: HashMap<String, MemSnap>,
    pub branches: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    n: u32,
}

/// A [`Backend`] over a [`MemRepo`], with its faults injected: `down` makes every
/// call fail as an unreachable repository does; `reads` counts chunk fetches.
#[derive(Debug, Default)]
pub struct MemBackend {
    pub repo: Mutex<MemRepo>,
    pub down: AtomicBool,
    pub reads: AtomicUsize,
}

const GROUP_JSON: &str = r#"{"zarr_format":3,"node_type":"group","attributes":{}}"#;

fn array_json(ndim: usize, enc: &str) -> Bytes {
    let shape = vec![8; ndim];
    Bytes::from(format!(
        r#"{{"zarr_format":3,"node_type":"array","shape":{shape:?},"data_type":"uint8","chunk_grid":{{"name":"regular","configuration":{{"chunk_shape":{shape:?}}}}},"chunk_key_encoding":{enc},"fill_value":0,"codecs":[{{"name":"bytes"}}]}}"#
    ))
}

const DEFAULT_ENC: &str = r#"{"name":"default","configuration":{"separator":"/"}}"#;
const V2_ENC: &str = r#"{"name":"v2","configuration":{"separator":"."}}"#;

impl MemBackend {
    /// A repository whose `main` holds one snapshot with an empty root group.
    pub fn new() -> MemBackend {
        let b = MemBackend::default();
        {
            let mut r = b.repo.lock().unwrap();
            let mut nodes = BTreeMap::new();
            nodes.insert(
                String::new(),
                MemNode { zarr_json: Bytes::from(GROUP_JSON), chunks: None },
            );
            let id = r.new_id();
            let time = r.time();
            r.snaps.insert(id.clone(), MemSnap { parent: None, time, nodes });
            r.branches.insert("main".into(), id);
        }
        b
    }

    fn check_up(&self) -> Result<(), MountError> {
        if self.down.load(Ordering::SeqCst) {
            Err(MountError::Unavailable("test: repository down".into()))
        } else {
            Ok(())
        }
    }
}

impl MemRepo {
    fn new_id(&mut self) -> String {
        self.n += 1;
        format!("SNAP{:016}", self.n)
    }

    fn time(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + i64::from(self.n) * 900, 0).unwrap()
    }

    /// Commit a change to `branch`: write one chunk of one array (creating the
    /// array, inside group `g`, if needed). `array` picks one of four shapes:
    /// 0 `g/temp` and 1 `g/pressure` (2-D, default and v2 key encodings), 2
    /// `g/sub/deep` (nested group), anything else `scalar` (0-D).
    pub fn commit(&mut self, branch: &str, array: u8, coords: Vec<u32>, fill: u8, len: usize) {
        let tip = self.branches[branch].clone();
        let mut snap = self.snaps[&tip].clone();
        snap.parent = Some(tip);
        snap.nodes
            .entry("g".into())
            .or_insert_with(|| MemNode { zarr_json: Bytes::from(GROUP_JSON), chunks: None });
        let (path, ndim, enc) = match array {
            0 => ("g/temp".to_string(), 2, DEFAULT_ENC),
            1 => ("g/pressure".to_string(), 2, V2_ENC),
            2 => ("g/sub/deep".to_string(), 2, DEFAULT_ENC),
            _ => ("scalar".to_string(), 0, DEFAULT_ENC),
        };
        let coords: Vec<u32> = coords.into_iter().take(ndim).collect();
        let node = snap.nodes.entry(path).or_insert_with(|| MemNode {
            zarr_json: array_json(ndim, enc),
            chunks: Some(BTreeMap::new()),
        });
        node.chunks.as_mut().unwrap().insert(coords, Bytes::from(vec![fill; len]));
        let id = self.new_id();
        snap.time = self.time();
        self.snaps.insert(id.clone(), snap);
        self.branches.insert(branch.to_string(), id);
    }

    /// The commits from `id` back to the first.
    pub fn ancestry(&self, id: &str) -> Vec<Commit> {
        let mut out = Vec::new();
        let mut cur = Some(id.to_string());
        while let Some(c) = cur {
            let s = &self.snaps[&c];
            out.push(Commit { id: c.clone(), time: s.time });
            cur = s.parent.clone();
        }
        out
    }
}

impl Backend for MemBackend {
    fn refs(&self) -> Result<Refs, MountError> {
        self.check_up()?;
        let r = self.repo.lock().unwrap();
        let commit = |id: &String| Commit { id: id.clone(), time: r.snaps[id].time };
        Ok(Refs {
            branches: r.branches.iter().map(|(k, v)| (k.clone(), commit(v))).collect(),
            tags: r.tags.iter().map(|(k, v)| (k.clone(), commit(v))).collect(),
        })
    }

    fn ancestry(&self, snapshot: &str) -> Result<Vec<Commit>, MountError> {
        self.check_up()?;
        let r = self.repo.lock().unwrap();
        if !r.snaps.contains_key(snapshot) {
            return Err(MountError::NotFound);
        }
        Ok(r.ancestry(snapshot))
    }

    fn nodes(&self, snapshot: &str) -> Result<Vec<Node>, MountError> {
        self.check_up()?;
        let r = self.repo.lock().unwrap();
        let s = r.snaps.get(snapshot).ok_or(MountError::NotFound)?;
        Ok(s.nodes
            .iter()
            .map(|(p, n)| Node {
                path: p.clone(),
                zarr_json: n.zarr_json.clone(),
                kind: match n.chunks {
                    None => NodeKind::Group,
                    Some(_) => NodeKind::Array(Layout::from_zarr_json(&n.zarr_json).unwrap()),
                },
            })
            .collect())
    }

    fn chunks(&self, snapshot: &str, array: &str) -> Result<Vec<ChunkEntry>, MountError> {
        self.check_up()?;
        let r = self.repo.lock().unwrap();
        let s = r.snaps.get(snapshot).ok_or(MountError::NotFound)?;
        let n = s.nodes.get(array).and_then(|n| n.chunks.as_ref()).ok_or(MountError::NotFound)?;
        Ok(n.iter()
            .map(|(c, b)| ChunkEntry {
                coords: c.clone(),
                size: b.len() as u64,
                // Content identity: equal bytes share it, like Icechunk's chunk ids.
                id: format!("{}", blake3::hash(b)),
            })
            .collect())
    }

    fn read_chunk(&self, snapshot: &str, array: &str, coords: &[u32]) -> Result<Bytes, MountError> {
        self.check_up()?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        let r = self.repo.lock().unwrap();
        let s = r.snaps.get(snapshot).ok_or(MountError::NotFound)?;
        s.nodes
            .get(array)
            .and_then(|n| n.chunks.as_ref())
            .and_then(|c| c.get(coords))
            .cloned()
            .ok_or(MountError::NotFound)
    }
}

/// A [`crate::Catalog`] over in-memory prefixes and repositories: `prefixes` says
/// what each prefix holds, `repos` which repositories open (a prefix marked a
/// repository with no backend here fails to open, as an unreadable one does);
/// `lists` counts listings and `opens` repositories opened.
#[derive(Debug, Default)]
pub struct MemCatalog {
    pub prefixes: Mutex<BTreeMap<String, crate::PrefixListing>>,
    pub repos: Mutex<BTreeMap<String, std::sync::Arc<MemBackend>>>,
    pub lists: AtomicUsize,
    pub opens: AtomicUsize,
}

impl MemCatalog {
    /// Add prefix `path` (and its parents), a repository's root if `repo` is given.
    pub fn add(&self, path: &str, repo: Option<std::sync::Arc<MemBackend>>) {
        let mut prefixes = self.prefixes.lock().unwrap();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for i in 0..parts.len() {
            let parent = parts[..i].join("/");
            let l = prefixes.entry(parent).or_default();
            if !l.children.iter().any(|c| c == parts[i]) {
                l.children.push(parts[i].to_string());
                l.children.sort();
            }
        }
        let l = prefixes.entry(parts.join("/")).or_default();
        l.repository = true;
        if let Some(r) = repo {
            self.repos.lock().unwrap().insert(parts.join("/"), r);
        }
    }
}

impl crate::Catalog for MemCatalog {
    fn list(&self, rel: &str) -> Result<crate::PrefixListing, MountError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let p = self.prefixes.lock().unwrap();
        match p.get(rel) {
            Some(l) => Ok(l.clone()),
            None if rel.is_empty() => Ok(crate::PrefixListing::default()),
            None => Err(MountError::Unavailable(format!("test: no prefix {rel}"))),
        }
    }

    fn open(&self, rel: &str) -> Result<std::sync::Arc<dyn Backend>, MountError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        match self.repos.lock().unwrap().get(rel) {
            Some(b) => Ok(b.clone()),
            None => Err(MountError::Unavailable(format!("test: {rel} cannot be opened"))),
        }
    }
}
