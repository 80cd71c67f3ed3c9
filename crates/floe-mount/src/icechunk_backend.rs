//! The mount's view of a real Icechunk repository (local, S3, Azure, GCS), read
//! through readonly sessions. Every call is bounded by a timeout: a repository that
//! cannot be reached gives an error (EIO in the mount) and a log line, never a hang.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe_core::RepoUrl;
use futures::TryStreamExt;
use icechunk::format::manifest::ChunkPayload;
use icechunk::format::snapshot::NodeData;
use icechunk::format::{ByteRange, ChunkIndices, Path as IcePath, SnapshotId};
use icechunk::repository::VersionInfo;
use icechunk::session::Session;

use crate::{
    Backend, Catalog, ChunkEntry, Commit, Layout, MountError, Node, NodeKind, PrefixListing, Refs,
};

/// A repository opened for the mount.
pub struct IcechunkBackend {
    rt: Arc<tokio::runtime::Runtime>,
    repo: floe_store::Repo,
    label: String,
    timeout: Duration,
    sessions: quick_cache::sync::Cache<String, Arc<Session>>,
    /// Commit times by snapshot id: a snapshot never changes, so each is read once,
    /// not at every refresh of the branch and tag lists.
    commits: quick_cache::sync::Cache<String, Commit>,
}

impl std::fmt::Debug for IcechunkBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcechunkBackend").field("repo", &self.label).finish_non_exhaustive()
    }
}

fn unavailable(label: &str, what: &str, e: impl std::fmt::Display) -> MountError {
    let msg = format!("{label}: {what}: {e}");
    tracing::warn!("{msg}");
    MountError::Unavailable(msg)
}

/// The runtime a mount's repository reads run on: four threads, whatever the
/// number of repositories (a catalog of fifty shares them).
fn io_runtime(url: &RepoUrl) -> Result<Arc<tokio::runtime::Runtime>, floe_store::StoreError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("floe-mount-io")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| floe_store::StoreError::Repository {
            repo: url.to_string(),
            detail: format!("cannot start the I/O runtime: {e}"),
        })
}

/// Run a mount call on `rt`, bounded by `timeout`: no answer by then is
/// `Unavailable` (EIO), never a hang.
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    timeout: Duration,
    label: &str,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, MountError>>,
) -> Result<T, MountError> {
    rt.block_on(async {
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(unavailable(
                label,
                what,
                format!("no answer within {} s", timeout.as_secs_f64()),
            )),
        }
    })
}

/// The same for what `floe mount` does before mounting: no answer is a store
/// error, which the mount command reports as it reports any other.
fn bounded_start<T>(
    rt: &tokio::runtime::Runtime,
    timeout: Duration,
    url: &RepoUrl,
    fut: impl std::future::Future<Output = Result<T, floe_store::StoreError>>,
) -> Result<T, floe_store::StoreError> {
    rt.block_on(async {
        tokio::time::timeout(timeout, fut).await.map_err(|_| {
            floe_store::StoreError::Unreachable {
                repo: url.to_string(),
                detail: format!("no answer within {} s", timeout.as_secs()),
            }
        })?
    })
}

/// The repositories under a prefix URL, as the mount shows them.
pub struct IcechunkCatalog {
    rt: Arc<tokio::runtime::Runtime>,
    catalog: floe_store::catalog::Catalog,
    timeout: Duration,
    /// The repository at the URL itself, opened with the catalog (so a damaged
    /// one fails `floe mount` as it always has), handed to the mount once.
    root: std::sync::Mutex<Option<Arc<dyn Backend>>>,
}

impl std::fmt::Debug for IcechunkCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcechunkCatalog").field("catalog", &self.catalog).finish_non_exhaustive()
    }
}

impl IcechunkCatalog {
    /// The catalog at `url`, with its root listed once (so a wrong URL or
    /// credentials fail here, not at the first `ls`), and the repository there
    /// opened if the URL is one. A URL with neither a repository nor a prefix
    /// below it is refused. `timeout` bounds every call.
    pub fn open(
        url: &RepoUrl,
        timeout: Duration,
    ) -> Result<IcechunkCatalog, floe_store::StoreError> {
        let rt = io_runtime(url)?;
        let (catalog, root) = bounded_start(&rt, timeout, url, async {
            let c = floe_store::catalog::Catalog::open(url).await?;
            let root = c.list("").await?;
            Ok((c, root))
        })?;
        if !root.repository && root.children.is_empty() {
            return Err(floe_store::StoreError::NotFound(url.to_string()));
        }
        let opened =
            match root.repository {
                true => Some(Arc::new(IcechunkBackend::open_in(rt.clone(), url, timeout)?)
                    as Arc<dyn Backend>),
                false => None,
            };
        Ok(IcechunkCatalog { rt, catalog, timeout, root: std::sync::Mutex::new(opened) })
    }
}

impl Catalog for IcechunkCatalog {
    fn list(&self, rel: &str) -> Result<PrefixListing, MountError> {
        let label = self.catalog.url_of(rel).to_string();
        bounded(&self.rt, self.timeout, &label, "list", async {
            self.catalog.list(rel).await.map_err(|e| unavailable(&label, "list", e))
        })
    }

    fn open(&self, rel: &str) -> Result<Arc<dyn Backend>, MountError> {
        if rel.is_empty()
            && let Some(b) = self.root.lock().ok().and_then(|mut r| r.take())
        {
            return Ok(b);
        }
        let url = self.catalog.url_of(rel);
        match IcechunkBackend::open_in(self.rt.clone(), &url, self.timeout) {
            Ok(b) => Ok(Arc::new(b)),
            Err(e) => Err(MountError::Unavailable(format!("{url}: {e}"))),
        }
    }
}

fn snapshot_id(id: &str) -> Result<SnapshotId, MountError> {
    SnapshotId::try_from(id).map_err(|_| MountError::NotFound)
}

fn array_path(array: &str) -> Result<IcePath, MountError> {
    IcePath::new(&format!("/{}", array.trim_start_matches('/'))).map_err(|_| MountError::NotFound)
}

impl IcechunkBackend {
    /// Open the repository at `url` (credentials as for every Floe command: the
    /// keychain login, then the environment). `timeout` bounds every later call.
    pub fn open(
        url: &RepoUrl,
        timeout: Duration,
    ) -> Result<IcechunkBackend, floe_store::StoreError> {
        IcechunkBackend::open_in(io_runtime(url)?, url, timeout)
    }

    /// The same, on a runtime shared with other repositories of a catalog.
    pub fn open_in(
        rt: Arc<tokio::runtime::Runtime>,
        url: &RepoUrl,
        timeout: Duration,
    ) -> Result<IcechunkBackend, floe_store::StoreError> {
        let repo = bounded_start(&rt, timeout, url, floe_store::Repo::open(url))?;
        Ok(IcechunkBackend {
            repo,
            label: url.to_string(),
            rt,
            timeout,
            sessions: quick_cache::sync::Cache::new(32),
            commits: quick_cache::sync::Cache::new(4096),
        })
    }

    fn run<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, MountError>>,
    ) -> Result<T, MountError> {
        bounded(&self.rt, self.timeout, &self.label, what, fut)
    }

    async fn commit_of(&self, id: SnapshotId) -> Result<Commit, MountError> {
        let key = id.to_string();
        if let Some(c) = self.commits.get(&key) {
            return Ok(c);
        }
        let stream = self
            .repo
            .repository()
            .ancestry(&VersionInfo::SnapshotId(id))
            .await
            .map_err(|e| unavailable(&self.label, "history", e))?;
        let mut stream = std::pin::pin!(stream);
        let first = stream.try_next().await.map_err(|e| unavailable(&self.label, "history", e))?;
        let c = first
            .map(|s| Commit { id: s.id.to_string(), time: s.flushed_at })
            .ok_or(MountError::NotFound)?;
        self.commits.insert(key, c.clone());
        Ok(c)
    }

    fn session(&self, snapshot: &str) -> Result<Arc<Session>, MountError> {
        self.sessions.get_or_insert_with(snapshot, || {
            let id = snapshot_id(snapshot)?;
            self.run("open snapshot", async {
                self.repo
                    .repository()
                    .readonly_session(&VersionInfo::SnapshotId(id))
                    .await
                    .map(Arc::new)
                    .map_err(|e| {
                        if is_not_found(&e) {
                            MountError::NotFound
                        } else {
                            unavailable(&self.label, "open snapshot", e)
                        }
                    })
            })
        })
    }
}

/// Whether Icechunk says the snapshot (or an object it needs) does not exist, from
/// its error kinds.
fn is_not_found(e: &icechunk::repository::RepositoryError) -> bool {
    use icechunk::format::IcechunkFormatErrorKind;
    use icechunk::refs::RefErrorKind;
    use icechunk::repository::RepositoryErrorKind as K;
    use icechunk::storage::StorageErrorKind;
    let kind = matches!(
        e.kind(),
        K::SnapshotNotFound { .. }
            | K::FormatError(IcechunkFormatErrorKind::SnapshotIdNotFound { .. })
            | K::StorageError(StorageErrorKind::ObjectNotFound)
            | K::Ref(RefErrorKind::RefNotFound(_))
    );
    // a snapshot file missing from the object store (local, S3, Azure): the object
    // store's own NotFound (HTTP 404), under Icechunk's storage error
    let missing_object =
        std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |c| c.source()).any(
            |c| {
                matches!(
                    c.downcast_ref::<object_store::Error>(),
                    Some(object_store::Error::NotFound { .. })
                ) || c
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
            },
        );
    kind || missing_object
}

impl Backend for IcechunkBackend {
    fn refs(&self) -> Result<Refs, MountError> {
        self.run("branches and tags", async {
            let l = &self.label;
            let mut refs = Refs::default();
            let branches = self
                .repo
                .repository()
                .list_branches()
                .await
                .map_err(|e| unavailable(l, "branches", e))?;
            for b in branches {
                let id = self
                    .repo
                    .repository()
                    .lookup_branch(&b)
                    .await
                    .map_err(|e| unavailable(l, "branch", e))?;
                refs.branches.insert(b, self.commit_of(id).await?);
            }
            let tags =
                self.repo.repository().list_tags().await.map_err(|e| unavailable(l, "tags", e))?;
            for t in tags {
                let id = self
                    .repo
                    .repository()
                    .lookup_tag(&t)
                    .await
                    .map_err(|e| unavailable(l, "tag", e))?;
                refs.tags.insert(t, self.commit_of(id).await?);
            }
            Ok(refs)
        })
    }

    fn ancestry(&self, snapshot: &str) -> Result<Vec<Commit>, MountError> {
        let id = snapshot_id(snapshot)?;
        self.run("history", async {
            let stream = match self.repo.repository().ancestry(&VersionInfo::SnapshotId(id)).await {
                Ok(s) => s,
                Err(e) if is_not_found(&e) => return Err(MountError::NotFound),
                Err(e) => return Err(unavailable(&self.label, "history", e)),
            };
            let infos: Vec<_> = stream.try_collect().await.map_err(|e| {
                if is_not_found(&e) {
                    MountError::NotFound
                } else {
                    unavailable(&self.label, "history", e)
                }
            })?;
            Ok(infos
                .into_iter()
                .map(|s| Commit { id: s.id.to_string(), time: s.flushed_at })
                .collect())
        })
    }

    fn nodes(&self, snapshot: &str) -> Result<Vec<Node>, MountError> {
        let session = self.session(snapshot)?;
        self.run("list nodes", async {
            let it = session
                .list_nodes(&IcePath::root())
                .await
                .map_err(|e| unavailable(&self.label, "list nodes", e))?;
            let mut out = Vec::new();
            for n in it {
                let n = n.map_err(|e| unavailable(&self.label, "list nodes", e))?;
                if floe_core::is_own_node(&n.path.to_string()) {
                    // Floe's statistics: not data, and not a folder of the dataset
                    continue;
                }
                let path = n.path.to_string().trim_start_matches('/').to_string();
                let kind = match n.node_data {
                    NodeData::Group => NodeKind::Group,
                    NodeData::Array { .. } => match Layout::from_zarr_json(&n.user_data) {
                        Ok(l) => NodeKind::Array(l),
                        Err(e) => {
                            tracing::warn!(array = %path, "left out of the mount: {e}");
                            continue;
                        }
                    },
                };
                out.push(Node { path, zarr_json: n.user_data.clone(), kind });
            }
            Ok(out)
        })
    }

    fn chunks(&self, snapshot: &str, array: &str) -> Result<Vec<ChunkEntry>, MountError> {
        let session = self.session(snapshot)?;
        let path = array_path(array)?;
        self.run("list chunks", async {
            let stream = session.array_chunk_iterator(&path).await;
            let infos: Vec<_> = stream
                .try_collect()
                .await
                .map_err(|e| unavailable(&self.label, "list chunks", e))?;
            Ok(infos
                .into_iter()
                .map(|c| {
                    let coords = c.coord.0;
                    let id = match &c.payload {
                        ChunkPayload::Ref(r) => format!("{}:{}:{}", r.id, r.offset, r.length),
                        _ => format!("{snapshot}/{array}/{coords:?}"),
                    };
                    ChunkEntry { size: c.payload.length(), coords, id }
                })
                .collect())
        })
    }

    fn read_chunk(&self, snapshot: &str, array: &str, coords: &[u32]) -> Result<Bytes, MountError> {
        let session = self.session(snapshot)?;
        let path = array_path(array)?;
        let idx = ChunkIndices(coords.to_vec());
        self.run("read chunk", async {
            let reader = session
                .get_chunk_reader(&path, &idx, &ByteRange::ALL)
                .await
                .map_err(|e| unavailable(&self.label, "read chunk", e))?;
            match reader {
                Some(fut) => fut.await.map_err(|e| unavailable(&self.label, "read chunk", e)),
                None => Err(MountError::NotFound),
            }
        })
    }
}
