use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use chrono::{DateTime, Utc};
use floe_core::{CommitProvenance, RepoUrl};
use futures::TryStreamExt;
use icechunk::config::{
    ManifestConfig, ManifestSplitCondition, ManifestSplitDim, ManifestSplitDimCondition,
    ManifestSplittingConfig,
};
use icechunk::refs::RefErrorKind;
use icechunk::repository::{RepositoryErrorKind, VersionInfo};
use icechunk::{Repository, RepositoryConfig, Storage};
use serde::Serialize;

use crate::{StoreError, Writer};

/// Chunks per manifest split along an append dimension.
const SPLIT_EVERY_CHUNKS: u32 = 100;

/// An open repository.
pub struct Repo {
    pub(crate) inner: Repository,
    pub(crate) label: String,
    /// A local repository takes one writer at a time: held while this `Repo` lives.
    _lock: Option<std::fs::File>,
    /// The last, partly filled chunk of each appended array as of one snapshot, so
    /// the next append writes whole chunks instead of reading them back.
    pub(crate) tails: crate::writer::SharedTails,
    /// Upload limit charged by every writer of this repository.
    throttle: Option<Arc<crate::throttle::Throttle>>,
    /// Made by `open_for_write` just now: `main` holds only the first, empty commit.
    created: bool,
    /// Floe's history archive, as read so far (see [`crate::retention`]).
    pub(crate) archive: Arc<std::sync::Mutex<crate::retention::ArchiveCache>>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("label", &self.label).finish_non_exhaustive()
    }
}

/// One commit of a branch's history, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub parent: Option<String>,
    pub time: DateTime<Utc>,
    pub message: String,
    /// What Floe recorded, when Floe made the commit.
    pub provenance: Option<CommitProvenance>,
    /// The snapshot itself expired (`floe expire`): this is Floe's archived record
    /// of it, which keeps what it ingested known.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

fn init_zarrs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        zarrs::config::global_config_mut().set_include_zarrs_metadata(false);
    });
}

pub(crate) fn repo_err(label: &str, e: impl std::error::Error + 'static) -> StoreError {
    crate::remote::classify_error(label, &e)
}

fn splitting(dims: &[String]) -> RepositoryConfig {
    let split = ManifestSplittingConfig {
        split_sizes: Some(vec![(
            ManifestSplitCondition::AnyArray,
            dims.iter()
                .map(|d| ManifestSplitDim {
                    condition: ManifestSplitDimCondition::DimensionName(d.clone()),
                    num_chunks: SPLIT_EVERY_CHUNKS,
                })
                .collect(),
        )]),
    };
    RepositoryConfig {
        manifest: Some(ManifestConfig { splitting: Some(split), ..ManifestConfig::default() }),
        ..RepositoryConfig::default()
    }
}

fn lock_dir(path: &Path, label: &str) -> Result<std::fs::File, StoreError> {
    let f = std::fs::File::open(path).map_err(|e| repo_err(label, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Busy(label.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(repo_err(label, e)),
    }
}

impl Repo {
    /// The storage behind a repository URL (and the local path, for local ones).
    pub(crate) async fn storage(
        url: &RepoUrl,
    ) -> Result<(Arc<dyn Storage + Send + Sync>, PathBuf), StoreError> {
        Self::storage_with(url, None).await
    }

    /// The storage behind `url`, with `login` if given (else the keychain's), the
    /// process environment second.
    pub(crate) async fn storage_with(
        url: &RepoUrl,
        login: Option<crate::secrets::Login>,
    ) -> Result<(Arc<dyn Storage + Send + Sync>, PathBuf), StoreError> {
        match url {
            RepoUrl::Local(path) => {
                let label = path.display().to_string();
                let storage = icechunk::new_local_filesystem_storage(path)
                    .await
                    .map_err(|e| repo_err(&label, e))?;
                Ok((storage, path.clone()))
            }
            remote => Ok((
                {
                    let login = match login {
                        Some(l) => Some(l),
                        None => crate::secrets::keychain_login(remote).await,
                    };
                    let env = crate::secrets::Layered { login, env: &crate::remote::ProcessEnv };
                    crate::remote::storage(remote, &env).await?
                },
                PathBuf::new(),
            )),
        }
    }

    /// Open an existing repository.
    pub async fn open(url: &RepoUrl) -> Result<Self, StoreError> {
        Self::open_with(url, None).await
    }

    /// Open an existing repository with `login` (else the keychain's).
    pub async fn open_with(
        url: &RepoUrl,
        login: Option<crate::secrets::Login>,
    ) -> Result<Self, StoreError> {
        init_zarrs();
        let label = url.to_string();
        if let RepoUrl::Local(p) = url
            && !p.exists()
        {
            return Err(StoreError::NotFound(label));
        }
        let (storage, _) = Self::storage_with(url, login).await?;
        // one request less than asking first whether it exists (on a long link each
        // round trip counts)
        let inner = match Repository::open(storage).execute().await {
            Ok(r) => r,
            Err(e) if is_missing(&e) => return Err(StoreError::NotFound(label)),
            Err(e) => return Err(repo_err(&label, e)),
        };
        Ok(Repo {
            inner,
            label,
            _lock: None,
            tails: Default::default(),
            throttle: None,
            created: false,
            archive: Default::default(),
        })
    }

    /// Open an existing repository to rewrite its history (expire, gc): a local one
    /// is locked as for a writer. Icechunk's local storage does not make its
    /// conditional writes atomic, so a rewrite of the repository info racing a
    /// commit could put the branch back (measured: 5 of 48 commits lost to an expire
    /// running beside `floe sync`); object stores make them atomic and need no lock.
    pub async fn open_exclusive(url: &RepoUrl) -> Result<Self, StoreError> {
        let lock = match url {
            RepoUrl::Local(p) if p.exists() => Some(lock_dir(p, &url.to_string())?),
            _ => None,
        };
        let mut repo = Self::open(url).await?;
        repo._lock = lock;
        Ok(repo)
    }

    /// Open the repository for writing, creating it (with manifest splitting along
    /// `append_dims`) if there is none. A local repository is locked for this process.
    pub async fn open_for_write(url: &RepoUrl, append_dims: &[String]) -> Result<Self, StoreError> {
        init_zarrs();
        let label = url.to_string();
        let mut lock = None;
        if let RepoUrl::Local(p) = url {
            std::fs::create_dir_all(p).map_err(|e| repo_err(&label, e))?;
            lock = Some(lock_dir(p, &label)?);
        }
        let (storage, path) = Self::storage(url).await?;
        let mut created = false;
        let inner = match Repository::open(storage.clone()).execute().await {
            Ok(r) => r,
            Err(e) if !is_missing(&e) => return Err(repo_err(&label, e)),
            Err(_) => {
                if url.is_local()
                    && std::fs::read_dir(&path).map(|mut d| d.next().is_some()).unwrap_or(false)
                {
                    return Err(StoreError::NotARepository(label));
                }
                let r = Repository::create(storage)
                    .config(splitting(append_dims))
                    .execute()
                    .await
                    .map_err(|e| repo_err(&label, e))?;
                created = true;
                r
            }
        };
        Ok(Repo {
            inner,
            label,
            _lock: lock,
            tails: Default::default(),
            throttle: None,
            created,
            archive: Default::default(),
        })
    }

    /// The same repository without Icechunk's manifest preloading: a reader that
    /// fetches only what it names (`floe stats` reads a few small arrays, and the
    /// preload would fetch the `time` manifests besides, then log an error for each
    /// when a short command exits before they arrive).
    pub async fn without_preload(mut self) -> Result<Self, StoreError> {
        let none = icechunk::config::ManifestPreloadConfig {
            max_total_refs: Some(0),
            preload_if: Some(icechunk::config::ManifestPreloadCondition::False),
            max_arrays_to_scan: Some(0),
        };
        let config = RepositoryConfig {
            manifest: Some(ManifestConfig { preload: Some(none), ..ManifestConfig::default() }),
            ..RepositoryConfig::default()
        };
        self.inner =
            self.inner.reopen(Some(config), None).await.map_err(|e| repo_err(&self.label, e))?;
        Ok(self)
    }

    /// Whether `open_for_write` made this repository just now: then `main` holds
    /// only the first, empty commit ([`Repo::initial_snapshot`]) and nothing was
    /// ingested yet, which spares asking the storage.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The snapshot every repository starts with (the tip of `main` when created).
    pub fn initial_snapshot() -> String {
        icechunk::format::snapshot::Snapshot::INITIAL_SNAPSHOT_ID.to_string()
    }

    /// Charge what writers upload to `throttle` (a limit shared with others).
    pub fn set_throttle(&mut self, throttle: Option<Arc<crate::throttle::Throttle>>) {
        self.throttle = throttle;
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The Icechunk repository itself, for readers that need more than Floe's view
    /// (the mount reads nodes, manifests and chunks through it).
    pub fn repository(&self) -> &Repository {
        &self.inner
    }

    /// Branches of the repository.
    pub async fn branches(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .inner
            .list_branches()
            .await
            .map_err(|e| repo_err(&self.label, e))?
            .into_iter()
            .collect())
    }

    /// Whether `branch` exists.
    pub async fn has_branch(&self, branch: &str) -> Result<bool, StoreError> {
        Ok(self.branches().await?.iter().any(|b| b == branch))
    }

    /// The snapshot `branch` points at (`None`: there is no such branch).
    pub async fn branch_tip(&self, branch: &str) -> Result<Option<String>, StoreError> {
        match self.inner.lookup_branch(branch).await {
            Ok(id) => Ok(Some(id.to_string())),
            Err(e)
                if matches!(e.kind(), RepositoryErrorKind::Ref(RefErrorKind::RefNotFound(_))) =>
            {
                Ok(None)
            }
            Err(e) => Err(repo_err(&self.label, e)),
        }
    }

    /// Create `branch` at the tip of `from` if it does not exist yet.
    pub async fn ensure_branch(&self, branch: &str, from: &str) -> Result<(), StoreError> {
        if self.has_branch(branch).await? {
            return Ok(());
        }
        let tip = self.inner.lookup_branch(from).await.map_err(|e| repo_err(&self.label, e))?;
        self.inner.create_branch(branch, &tip).await.map_err(|e| repo_err(&self.label, e))?;
        Ok(())
    }

    /// Tag `snapshot` as `name`, or as `name-<suffix>` when `name` is taken (a
    /// setting that returns to an earlier value), so tags never collide; the name
    /// used.
    pub async fn tag_unique(
        &self,
        name: &str,
        suffix: &str,
        snapshot: &str,
    ) -> Result<String, StoreError> {
        let id = self.snapshot_id(snapshot)?;
        let taken = self.inner.list_tags().await.map_err(|e| repo_err(&self.label, e))?;
        let mut chosen = name.to_string();
        let mut n = 1;
        while taken.contains(&chosen) {
            chosen =
                if n == 1 { format!("{name}-{suffix}") } else { format!("{name}-{suffix}-{n}") };
            n += 1;
        }
        self.inner.create_tag(&chosen, &id).await.map_err(|e| repo_err(&self.label, e))?;
        Ok(chosen)
    }

    /// Every tag with the snapshot it points to.
    pub async fn tags(&self) -> Result<Vec<(String, String)>, StoreError> {
        let names = self.inner.list_tags().await.map_err(|e| repo_err(&self.label, e))?;
        let mut out = Vec::new();
        for name in names {
            let id = self.inner.lookup_tag(&name).await.map_err(|e| repo_err(&self.label, e))?;
            out.push((name, id.to_string()));
        }
        Ok(out)
    }

    /// Remove a tag (its snapshot stays while a branch needs it).
    pub async fn delete_tag(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_tag(name).await.map_err(|e| repo_err(&self.label, e))
    }

    /// Create `branch` at `snapshot` unless it exists (a folder that moves on to a
    /// branch of its own after a schema drift starts it empty).
    pub async fn ensure_branch_at(&self, branch: &str, snapshot: &str) -> Result<(), StoreError> {
        if self.has_branch(branch).await? {
            return Ok(());
        }
        let id = self.snapshot_id(snapshot)?;
        self.inner.create_branch(branch, &id).await.map_err(|e| repo_err(&self.label, e))?;
        Ok(())
    }

    /// Point `branch` at `to`, only if it still points at `from` (`None`: create it
    /// there, only if it does not exist): another writer's commit in between comes
    /// back as [`StoreError::Conflict`], never lost.
    pub async fn move_branch(
        &self,
        branch: &str,
        to: &str,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        let to_id = self.snapshot_id(to)?;
        let result = match from {
            Some(from) => {
                let from_id = self.snapshot_id(from)?;
                self.inner.reset_branch(branch, &to_id, Some(&from_id)).await
            }
            None if self.has_branch(branch).await? => {
                return Err(StoreError::Conflict(branch.to_string()));
            }
            None => self.inner.create_branch(branch, &to_id).await,
        };
        result.map_err(|e| match e.kind() {
            RepositoryErrorKind::Conflict { .. }
            | RepositoryErrorKind::Ref(RefErrorKind::Conflict { .. }) => {
                StoreError::Conflict(branch.to_string())
            }
            _ => repo_err(&self.label, e),
        })
    }

    /// Commit a record with no data of its own on `branch` (a decision at the
    /// validation gate): its provenance is the whole of it.
    pub async fn record(
        &self,
        branch: &str,
        message: &str,
        provenance: &CommitProvenance,
    ) -> Result<String, StoreError> {
        self.writer(branch).await?.allowing_empty().commit(message, provenance).await
    }

    /// The branch's history, newest first.
    pub async fn history(&self, branch: &str) -> Result<Vec<CommitInfo>, StoreError> {
        let version = VersionInfo::BranchTipRef(branch.to_string());
        let stream = match self.inner.ancestry(&version).await {
            Ok(s) => s,
            Err(e)
                if matches!(e.kind(), RepositoryErrorKind::Ref(RefErrorKind::RefNotFound(_))) =>
            {
                return Err(StoreError::NoBranch {
                    repo: self.label.clone(),
                    branch: branch.to_string(),
                });
            }
            Err(e) => return Err(repo_err(&self.label, e)),
        };
        self.collect_history(stream).await
    }

    /// The branch's history, newest first; empty if there is no such branch.
    pub async fn history_or_empty(&self, branch: &str) -> Result<Vec<CommitInfo>, StoreError> {
        match self.history(branch).await {
            Err(StoreError::NoBranch { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// `snapshot` as an Icechunk snapshot id.
    pub(crate) fn snapshot_id(
        &self,
        snapshot: &str,
    ) -> Result<icechunk::format::SnapshotId, StoreError> {
        icechunk::format::SnapshotId::try_from(snapshot).map_err(|e| StoreError::BadSnapshotId {
            repo: self.label.clone(),
            snapshot: snapshot.to_string(),
            detail: e.to_string(),
        })
    }

    /// The history that leads to one snapshot (by id), newest first.
    pub async fn history_at(&self, snapshot: &str) -> Result<Vec<CommitInfo>, StoreError> {
        let id = self.snapshot_id(snapshot)?;
        self.ancestry(&VersionInfo::SnapshotId(id)).await
    }

    async fn ancestry(&self, version: &VersionInfo) -> Result<Vec<CommitInfo>, StoreError> {
        let stream = self.inner.ancestry(version).await.map_err(|e| repo_err(&self.label, e))?;
        self.collect_history(stream).await
    }
    /// What Floe has ingested into `group` of `branch`, as of snapshot `at` (else
    /// the branch's tip): the repository is the record, so a restart is
    /// exactly-once without a journal of its own.
    pub async fn holdings(
        &self,
        branch: &str,
        group: &str,
        at: Option<&str>,
    ) -> Result<Holdings, StoreError> {
        let history = match at {
            Some(snapshot) => self.history_at(snapshot).await?,
            None => self.history_or_empty(branch).await?,
        };
        let continues = continuation_of(&history);
        let mut h = Holdings::fold(history, group);
        if let Some(c) = continues {
            h.absorb_older(self.continued(&c, group, 1).await?);
            h.continues = Some(c);
        }
        Ok(h)
    }

    /// The repository a continuation names: `None` when it is this one, else that
    /// one, opened from its URL.
    pub async fn open_continued(
        &self,
        c: &floe_core::Continuation,
    ) -> Result<Option<Repo>, StoreError> {
        if c.repo == self.label {
            return Ok(None);
        }
        let url = RepoUrl::parse(&c.repo).map_err(|e| StoreError::Repository {
            repo: self.label.clone(),
            detail: format!("it continues `{}`, which is not a repository URL: {e}", c.repo),
        })?;
        Ok(Some(Repo::open(&url).await?))
    }

    /// What a continued branch or repository held (and what the one it continued
    /// held, and so on): a folder that moved on after a schema drift keeps knowing
    /// what it ingested before.
    pub async fn continued(
        &self,
        c: &floe_core::Continuation,
        group: &str,
        depth: usize,
    ) -> Result<Holdings, StoreError> {
        if depth > MAX_CONTINUATIONS {
            return Ok(Holdings::default());
        }
        let other = self.open_continued(c).await?;
        let repo = other.as_ref().unwrap_or(self);
        let history = repo.history_at(&c.snapshot).await?;
        let further = continuation_of(&history);
        let mut h = Holdings::fold(history, group);
        if let Some(f) = further {
            h.absorb_older(Box::pin(repo.continued(&f, group, depth + 1)).await?);
        }
        Ok(h)
    }

    /// A writable session on `branch`.
    pub async fn writer(&self, branch: &str) -> Result<Writer, StoreError> {
        let session =
            self.inner.writable_session(branch).await.map_err(|e| repo_err(&self.label, e))?;
        Ok(self.writer_for(session, branch))
    }

    /// A writable session on `branch` starting at `snapshot`, which the caller knows
    /// to be the branch's tip: it just committed it, or just created the repository.
    /// Two round trips less than [`Repo::writer`], which asks the storage for the
    /// tip (and for the repository's status) first. Should the branch have moved
    /// meanwhile, the commit rebases or reports a conflict, as for any session.
    pub fn writer_at(&self, branch: &str, snapshot: &str) -> Result<Writer, StoreError> {
        let id = self.snapshot_id(snapshot)?;
        let r = &self.inner;
        let containers = r.config().virtual_chunk_containers().cloned();
        let resolver = icechunk::virtual_chunks::VirtualChunkResolver::new(
            containers,
            std::collections::HashMap::new(),
            r.storage_settings().clone(),
        );
        let session = icechunk::session::Session::create_writable_session(
            r.config().clone(),
            r.storage_settings().clone(),
            Arc::clone(r.storage()),
            Arc::clone(r.asset_manager()),
            Arc::new(resolver),
            Some(branch.to_string()),
            id,
            r.default_commit_metadata().clone(),
        );
        Ok(self.writer_for(session, branch))
    }

    /// A Writer around a writable session of this repository.
    fn writer_for(&self, session: icechunk::session::Session, branch: &str) -> Writer {
        let base = session.snapshot_id().to_string();
        Writer::new(session, branch, &self.label, self.tails.clone(), &base, self.throttle.clone())
    }
}

/// Continuations followed at most (one per schema drift of a folder).
pub const MAX_CONTINUATIONS: usize = 64;

/// The continuation a history starts with, if its first Floe commit names one.
pub fn continuation_of(history: &[CommitInfo]) -> Option<floe_core::Continuation> {
    history.iter().rev().find_map(|c| c.provenance.as_ref().and_then(|p| p.continues.clone()))
}

/// Icechunk's answer when there is no repository at the storage location.
fn is_missing(e: &icechunk::repository::RepositoryError) -> bool {
    matches!(e.kind(), RepositoryErrorKind::RepositoryDoesntExist)
}

/// What Floe has ingested into one group of a branch, as of one snapshot.
#[derive(Debug, Default, Clone)]
pub struct Holdings {
    /// The newest provenance of each source path.
    pub files: BTreeMap<String, floe_core::FileProvenance>,
    /// Records taken from each source so far, per dimension (a file that grew is
    /// taken in several steps).
    pub records: BTreeMap<String, BTreeMap<String, u64>>,
    /// When a commit last took records from each source.
    pub taken_at: BTreeMap<String, std::time::SystemTime>,
    /// The snapshot this was read at.
    pub tip: Option<String>,
    /// The branch or repository this one continues (its first Floe commit says so).
    pub continues: Option<floe_core::Continuation>,
    /// The newest recorded value of each watched global attribute (`--tag-on-change`).
    pub settings: BTreeMap<String, String>,
    /// Files dropped at the validation gate, by source path: their BLAKE3 hash then
    /// (the same bytes are not taken again; a newer version is).
    pub dropped: BTreeMap<String, String>,
}

impl Holdings {
    /// Take in what an older branch or repository held, that this one continues:
    /// its files count as held unless this one holds a newer version of them.
    pub fn absorb_older(&mut self, older: Holdings) {
        for (source, f) in older.files {
            self.files.entry(source).or_insert(f);
        }
        for (source, records) in older.records {
            let total = self.records.entry(source).or_default();
            for (d, n) in records {
                *total.entry(d).or_default() += n;
            }
        }
        for (source, at) in older.taken_at {
            self.taken_at.entry(source).or_insert(at);
        }
        for (k, v) in older.settings {
            self.settings.entry(k).or_insert(v);
        }
        for (source, hash) in older.dropped {
            if !self.files.contains_key(&source) {
                self.dropped.entry(source).or_insert(hash);
            }
        }
    }

    /// Fold a history (newest first, as Icechunk gives it) for `group`.
    pub fn fold(history: Vec<CommitInfo>, group: &str) -> Holdings {
        let mut h = Holdings { tip: history.first().map(|c| c.id.clone()), ..Holdings::default() };
        for c in history.into_iter().rev() {
            let time = std::time::SystemTime::from(c.time);
            let Some(p) = c.provenance else { continue };
            if let Some(floe_core::GateRecord::Dropped { files, .. }) = &p.gate {
                for d in files.iter().filter(|d| d.group == group) {
                    h.dropped.insert(d.source.clone(), d.blake3.clone());
                }
            }
            for f in p.files {
                if f.group == group {
                    h.dropped.remove(&f.source);
                    h.taken_at.insert(f.source.clone(), time);
                    for (k, v) in &f.settings {
                        h.settings.insert(k.clone(), v.clone());
                    }
                    let total = h.records.entry(f.source.clone()).or_default();
                    for (d, n) in &f.records {
                        *total.entry(d.clone()).or_default() += n;
                    }
                    h.files.insert(f.source.clone(), f);
                }
            }
        }
        h
    }
}

impl Repo {
    /// Commit infos from an ancestry stream, with what expiry removed from it put
    /// back from Floe's archive.
    async fn collect_history(
        &self,
        stream: impl futures::Stream<
            Item = Result<
                icechunk::format::snapshot::SnapshotInfo,
                icechunk::repository::RepositoryError,
            >,
        >,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        let infos: Vec<_> = stream.try_collect().await.map_err(|e| repo_err(&self.label, e))?;
        let history = infos
            .into_iter()
            .map(|s| {
                let pruned = s.pruned_ancestor_tx_logs.iter().map(ToString::to_string).collect();
                let c = CommitInfo {
                    id: s.id.to_string(),
                    parent: s.parent_id.map(|p| p.to_string()),
                    time: s.flushed_at,
                    message: s.message.clone(),
                    provenance: CommitProvenance::from_metadata(&s.metadata),
                    expired: false,
                };
                (c, pruned)
            })
            .collect();
        let history = self.restore_expired(history).await?;
        crate::filelog::restore(self, history).await
    }
}

#[cfg(test)]
mod holdings_tests {
    use super::*;

    fn commit(id: &str, secs: i64, files: &[(&str, &str, &str, u64)]) -> CommitInfo {
        CommitInfo {
            id: id.into(),
            parent: None,
            time: chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            message: String::new(),
            expired: false,
            provenance: Some(floe_core::CommitProvenance {
                rows: Default::default(),
                continues: None,
                gate: None,
                deletion: None,
                floe_version: "t".into(),
                files: files
                    .iter()
                    .map(|(source, group, hash, n)| floe_core::FileProvenance {
                        source: (*source).into(),
                        size: 0,
                        mtime: String::new(),
                        blake3: (*hash).into(),
                        format: "netcdf4".into(),
                        group: (*group).into(),
                        records: BTreeMap::from([("time".into(), *n)]),
                        offsets: BTreeMap::new(),
                        from: BTreeMap::new(),
                        records_blake3: None,
                        settings: BTreeMap::new(),
                    })
                    .collect(),
            }),
        }
    }

    #[test]
    fn a_branch_holds_the_newest_version_of_each_file_and_every_record_taken() {
        // newest first, as Icechunk lists a history
        let history = vec![
            commit("C", 30, &[("a.nc", "/", "a2", 2)]),
            commit("B", 20, &[("b.nc", "/other", "b1", 9)]),
            commit("A", 10, &[("a.nc", "/", "a1", 3)]),
        ];
        let h = Holdings::fold(history, "/");
        assert_eq!(h.tip.as_deref(), Some("C"));
        assert_eq!(h.files["a.nc"].blake3, "a2", "the newest version");
        assert_eq!(h.records["a.nc"]["time"], 5, "a file taken in two steps");
        assert!(!h.files.contains_key("b.nc"), "another group's files are not ours");
        assert_eq!(
            h.taken_at["a.nc"],
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(30)
        );
    }
}
