//! Read-only access to one snapshot, for verification.

use floe_plan::RepoState;
use floe_source::Data;
use icechunk::repository::VersionInfo;
use serde_json::Value;

use crate::{Repo, StoreError, Writer};

/// Decoded chunks a reader keeps (a chunk holds several files' records).
const READ_CACHE_BYTES: usize = 32 << 20;

/// What one snapshot of a repository holds, read straight from the storage.
///
/// Unlike a [`Writer`], a `Reader` never consults the partly filled chunks a
/// repository keeps in memory between commits: every value comes from the
/// storage's objects, which is what verification has to read.
pub struct Reader {
    // The read paths are the writer's own (one implementation of decoding a chunk,
    // of "a chunk never written reads as fill"); the session is read-only.
    inner: Writer,
    snapshot: String,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("snapshot", &self.snapshot).finish_non_exhaustive()
    }
}

impl Repo {
    /// The tip of `branch`, read-only.
    pub async fn reader(&self, branch: &str) -> Result<Reader, StoreError> {
        if !self.has_branch(branch).await? {
            return Err(StoreError::NoBranch {
                repo: self.label.clone(),
                branch: branch.to_string(),
            });
        }
        self.reader_for(VersionInfo::BranchTipRef(branch.to_string()), branch).await
    }

    /// One snapshot (by id), read-only.
    pub async fn reader_at(&self, snapshot: &str) -> Result<Reader, StoreError> {
        let id = self.snapshot_id(snapshot)?;
        self.reader_for(VersionInfo::SnapshotId(id), "").await
    }

    async fn reader_for(&self, version: VersionInfo, branch: &str) -> Result<Reader, StoreError> {
        let session = self
            .inner
            .readonly_session(&version)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let snapshot = session.snapshot_id().to_string();
        // tails of its own, empty: nothing is served from memory
        let inner = Writer::new(session, branch, &self.label, Default::default(), &snapshot, None)
            .with_chunk_cache(READ_CACHE_BYTES);
        Ok(Reader { inner, snapshot })
    }
}

impl Reader {
    /// The snapshot this reads.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The arrays and groups under `group` (no last coordinate values are read).
    pub async fn state(&self, group: &str) -> Result<RepoState, StoreError> {
        self.inner.state(group, &[]).await
    }

    /// The arrays of Floe's own group (its statistics), by path.
    pub async fn own_arrays(&self) -> Result<Vec<String>, StoreError> {
        self.inner.own_arrays().await
    }

    /// A node's `zarr.json` (`None`: no such node), Floe's own nodes included.
    pub async fn node_metadata(&self, path: &str) -> Result<Option<Value>, StoreError> {
        self.inner.node_metadata(path).await
    }

    /// The hyperslab `start..start+count` of an array, as its chunk objects hold it.
    pub async fn read(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        self.inner.read(path, metadata, start, count).await
    }
}
