//! The folder tree of one snapshot, built from its nodes (and, lazily, from the
//! manifests of an array when someone looks inside it). A snapshot never changes,
//! so a tree, once built, is valid for as long as it is kept.

use std::collections::HashMap;

use bytes::Bytes;

use crate::names::shown;
use crate::{ChunkEntry, Layout, Node, NodeKind};

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub name: String,
    pub dir: bool,
}

/// What a path inside a snapshot is (before looking inside arrays).
#[derive(Debug, Clone)]
pub(crate) enum TreeEntry {
    /// A group or array folder (the node's index), or a folder of chunk keys.
    Dir,
    /// A node's `zarr.json`.
    Meta(Bytes),
}

/// The groups, arrays and `zarr.json` files of one snapshot, by shown path
/// (`""` is the snapshot's root folder).
#[derive(Debug, Default)]
pub(crate) struct SnapTree {
    entries: HashMap<String, TreeEntry>,
    listings: HashMap<String, Vec<Child>>,
    /// Array folders: shown path -> (repository path, layout).
    arrays: HashMap<String, (String, Layout)>,
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_string() } else { format!("{parent}/{name}") }
}

impl SnapTree {
    pub(crate) fn build(nodes: &[Node]) -> SnapTree {
        let mut t = SnapTree::default();
        t.entries.insert(String::new(), TreeEntry::Dir);
        t.listings.insert(String::new(), Vec::new());
        let mut nodes: Vec<&Node> = nodes.iter().collect();
        nodes.sort_by(|a, b| a.path.cmp(&b.path));
        'nodes: for node in nodes {
            // The shown path of the node: every component escaped.
            let mut path = String::new();
            for comp in node.path.split('/').filter(|c| !c.is_empty()) {
                let Some(name) = shown(comp) else { continue 'nodes };
                let child = join(&path, &name);
                if !t.entries.contains_key(&child) {
                    // An implicit parent (a node below a path with no group) still shows.
                    t.entries.insert(child.clone(), TreeEntry::Dir);
                    t.listings.insert(child.clone(), Vec::new());
                    if let Some(l) = t.listings.get_mut(&path) {
                        l.push(Child { name: name.into_owned(), dir: true });
                    }
                }
                path = child;
            }
            let meta = join(&path, "zarr.json");
            if let std::collections::hash_map::Entry::Vacant(e) = t.entries.entry(meta) {
                e.insert(TreeEntry::Meta(node.zarr_json.clone()));
                if let Some(l) = t.listings.get_mut(&path) {
                    l.insert(0, Child { name: "zarr.json".into(), dir: false });
                }
            }
            if let NodeKind::Array(layout) = &node.kind {
                t.arrays.insert(path, (node.path.clone(), layout.clone()));
            }
        }
        t
    }

    pub(crate) fn entry(&self, path: &str) -> Option<&TreeEntry> {
        self.entries.get(path)
    }

    pub(crate) fn listing(&self, path: &str) -> Option<&[Child]> {
        self.listings.get(path).map(Vec::as_slice)
    }

    /// The array folder that `path` lies in (or is), with the rest of the path.
    pub(crate) fn array_of<'p>(&self, path: &'p str) -> Option<(&str, &(String, Layout), &'p str)> {
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            if let Some((k, v)) = self.arrays.get_key_value(prefix) {
                let rest = path[end..].trim_start_matches('/');
                return Some((k.as_str(), v, rest));
            }
            end = prefix.rfind('/')?;
        }
    }
}

/// One chunk file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkFile {
    pub coords: Vec<u32>,
    pub size: u64,
    pub id: String,
    /// Position in key order, for read-ahead.
    pub index: usize,
}

/// The chunk files of one array of one snapshot, by path under the array folder.
#[derive(Debug, Default)]
pub(crate) struct ChunkTree {
    files: HashMap<String, ChunkFile>,
    listings: HashMap<String, Vec<Child>>,
    /// Chunk file paths in key order.
    order: Vec<String>,
}

impl ChunkTree {
    pub(crate) fn build(layout: &Layout, mut chunks: Vec<ChunkEntry>) -> ChunkTree {
        chunks.sort_by(|a, b| a.coords.cmp(&b.coords));
        let mut t = ChunkTree::default();
        t.listings.insert(String::new(), Vec::new());
        for c in chunks {
            if c.coords.len() != layout.ndim {
                tracing::warn!(coords = ?c.coords, "a chunk whose coordinates do not match its array is left out");
                continue;
            }
            let key = layout.key(&c.coords);
            let mut path = String::new();
            for (i, comp) in key.iter().enumerate() {
                let child = join(&path, comp);
                let last = i + 1 == key.len();
                if !t.listings.contains_key(&child) && !t.files.contains_key(&child) {
                    if let Some(l) = t.listings.get_mut(&path) {
                        l.push(Child { name: comp.clone(), dir: !last });
                    }
                    if !last {
                        t.listings.insert(child.clone(), Vec::new());
                    }
                }
                path = child;
            }
            let index = t.order.len();
            t.order.push(path.clone());
            t.files.insert(path, ChunkFile { coords: c.coords, size: c.size, id: c.id, index });
        }
        t
    }

    pub(crate) fn file(&self, path: &str) -> Option<&ChunkFile> {
        self.files.get(path)
    }

    pub(crate) fn listing(&self, path: &str) -> Option<&[Child]> {
        self.listings.get(path).map(Vec::as_slice)
    }

    /// The chunk files after `index` in key order, at most `n`.
    pub(crate) fn following(&self, index: usize, n: usize) -> impl Iterator<Item = &ChunkFile> {
        self.order.iter().skip(index + 1).take(n).filter_map(|p| self.files.get(p))
    }
}
