use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{Layout, MountError};

/// One commit: a snapshot id and when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Commit {
    pub id: String,
    pub time: DateTime<Utc>,
}

/// The branches and tags of a repository, each with the commit it points at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    pub branches: BTreeMap<String, Commit>,
    pub tags: BTreeMap<String, Commit>,
}

/// What a node of a snapshot is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Group,
    Array(Layout),
}

/// A group or array of a snapshot: its path (`""` for the root, `"a/b"` below it),
/// its `zarr.json` document, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: String,
    pub zarr_json: Bytes,
    pub kind: NodeKind,
}

/// One stored chunk of an array: its grid coordinates, its stored size in bytes,
/// and an identity that names its bytes (equal ids mean equal bytes, across
/// snapshots), used as the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkEntry {
    pub coords: Vec<u32>,
    pub size: u64,
    pub id: String,
}

/// The read side of a repository, as the mount needs it. Calls block; an
/// implementation bounds every call with a timeout and answers
/// [`MountError::Unavailable`] rather than hang.
pub trait Backend: Send + Sync + 'static {
    /// Every branch and tag, with the commit it points at.
    fn refs(&self) -> Result<Refs, MountError>;
    /// The history that leads to `snapshot`, newest first (the snapshot itself first).
    /// [`MountError::NotFound`] if there is no such snapshot.
    fn ancestry(&self, snapshot: &str) -> Result<Vec<Commit>, MountError>;
    /// Every group and array of a snapshot.
    fn nodes(&self, snapshot: &str) -> Result<Vec<Node>, MountError>;
    /// Every stored chunk of one array of a snapshot (sizes from the manifests: no
    /// chunk is fetched).
    fn chunks(&self, snapshot: &str, array: &str) -> Result<Vec<ChunkEntry>, MountError>;
    /// The stored bytes of one chunk.
    fn read_chunk(&self, snapshot: &str, array: &str, coords: &[u32]) -> Result<Bytes, MountError>;
}
