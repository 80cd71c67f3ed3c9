//! Keeping a repository bounded for years: expire old snapshots, collect the garbage
//! they leave, and say where the bytes are.
//!
//! Floe's exactly-once guarantee reads the branch history (each commit's provenance
//! names the files it took). Expiring snapshots removes them from that history, so
//! before Icechunk expires anything, Floe copies the provenance of every snapshot old
//! enough to go into its *history archive*: immutable objects under
//! [`ARCHIVE_PREFIX`] in the repository's own storage. Icechunk records, in the
//! snapshot that takes the place of an expired run, the ids of the snapshots it
//! removed (`pruned_ancestor_tx_logs`); reading a history puts the archived commits
//! back there (see [`Repo::restore_expired`]), so a restart after `floe expire`
//! neither loses nor duplicates a record. Every snapshot older than the cutoff is
//! archived, branch tips too. A commit another writer makes while the expire runs
//! can still be expired unseen (Icechunk's expire reads the repository info again,
//! and a snapshot flushed before the cutoff may land in it only then): after the
//! expire, every snapshot it released that the archive lacks is read from its own
//! object (which stays until gc) and archived too, and a history that meets such a
//! snapshot before that reads it the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::{NonZeroU16, NonZeroUsize};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use floe_core::CommitProvenance;
use futures::{StreamExt, TryStreamExt};
use icechunk::format::SnapshotId;
use icechunk::format::repo_info::RepoInfo;
use icechunk::ops::gc::{self, ExpiredRefAction, GCConfig, GCSummary};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{CommitInfo, Repo, StoreError};

/// Where Floe keeps the provenance of expired snapshots, inside the repository's
/// storage (Icechunk neither reads nor collects objects outside its own prefixes).
pub const ARCHIVE_PREFIX: &str = "floe/history";

/// Where Icechunk copies the repository's info object before each rewrite.
const OVERWRITTEN_PREFIX: &str = "overwritten";

/// One snapshot's record, kept after the snapshot itself expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedCommit {
    pub id: String,
    pub time: DateTime<Utc>,
    pub message: String,
    pub provenance: Option<CommitProvenance>,
}

/// One archive object: the snapshots one `floe expire` run was about to expire.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveFile {
    floe_version: String,
    written_at: DateTime<Utc>,
    commits: Vec<ArchivedCommit>,
}

/// The archive as read so far: objects are immutable, so each is read once per
/// process.
#[derive(Debug, Default)]
pub(crate) struct ArchiveCache {
    read: HashSet<String>,
    commits: HashMap<String, ArchivedCommit>,
    /// Expired snapshots neither archived nor readable any more (expired by
    /// another tool, then collected): asked once per process.
    gone: HashSet<String>,
}

impl ArchivedCommit {
    fn of(s: &icechunk::format::snapshot::SnapshotInfo) -> ArchivedCommit {
        ArchivedCommit {
            id: s.id.to_string(),
            time: s.flushed_at,
            message: s.message.clone(),
            provenance: CommitProvenance::from_metadata(&s.metadata),
        }
    }
}

/// A snapshot `floe expire` removes (or, with `--dry-run`, would remove).
#[derive(Debug, Clone, Serialize)]
pub struct ExpiredCommit {
    pub id: String,
    pub time: DateTime<Utc>,
    pub message: String,
}

/// What `floe expire` did.
#[derive(Debug, Clone, Serialize)]
pub struct ExpireReport {
    pub cutoff: DateTime<Utc>,
    pub dry_run: bool,
    /// Oldest first.
    pub expired: Vec<ExpiredCommit>,
    /// Snapshots whose provenance went into the history archive this run.
    pub archived: usize,
    /// Retained snapshots that now start their branch (their parent expired).
    pub edited: usize,
}

/// What `floe gc` deleted (or, with `--dry-run`, would delete).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub cutoff: DateTime<Utc>,
    pub dry_run: bool,
    pub chunks: u64,
    pub manifests: u64,
    pub snapshots: u64,
    pub transaction_logs: u64,
    /// Copies of the repository's info object no record still names.
    pub overwritten: u64,
    pub bytes_freed: u64,
    /// Objects whose delete failed in the last pass: still garbage, for the next run.
    pub failed: u64,
    pub errors: Vec<String>,
    /// Kinds of object not collected in the last pass because deleting the kind
    /// that names them failed (`transaction_logs`, `manifests`, `chunks`).
    pub skipped: Vec<String>,
}

/// Kinds of object in a repository's storage, as `floe du` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Chunks,
    Manifests,
    Snapshots,
    TransactionLogs,
    /// Copies of the repository info object Icechunk leaves at each rewrite.
    Overwritten,
    /// Floe's history archive.
    FloeHistory,
    /// The repository info object, the config, anything else.
    Other,
}

impl ObjectKind {
    /// The kind of an object by its key under the repository root.
    pub fn of(key: &str) -> ObjectKind {
        match key.split('/').next().unwrap_or_default() {
            "chunks" => ObjectKind::Chunks,
            "manifests" => ObjectKind::Manifests,
            "snapshots" => ObjectKind::Snapshots,
            "transactions" => ObjectKind::TransactionLogs,
            "overwritten" => ObjectKind::Overwritten,
            "floe" => ObjectKind::FloeHistory,
            _ => ObjectKind::Other,
        }
    }
}

/// Objects and bytes of one kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    pub objects: u64,
    pub bytes: u64,
}

/// What `floe du` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub by_kind: BTreeMap<ObjectKind, Tally>,
    pub total: Tally,
    /// What `floe gc --grace 0s` would free now, without expiring anything.
    pub gc_frees: u64,
    /// What `floe expire --older-than 0s` followed by `floe gc --grace 0s` would
    /// free now: everything no branch tip or tag needs.
    pub expire_and_gc_frees: u64,
}

fn gc_err(label: &str, e: &gc::GCError) -> StoreError {
    crate::remote::classify_error(label, e)
}

/// Whether Icechunk gave up rewriting the repository info because a writer's
/// commit kept changing it. Its expire and gc try that rewrite once per run
/// (icechunk 2.3.1, `ops/expiration.rs` and `ops/gc.rs`), and their own retry
/// loop retries another kind of error, so beside a writer committing every
/// second they fail most runs (measured: the first expire beside a 48-file
/// `floe sync --batch 1` on moto). The run is safe to repeat whole.
fn crowded(e: &gc::GCError) -> bool {
    matches!(
        e,
        gc::GCError::Repository(r)
            if matches!(r.kind(), icechunk::repository::RepositoryErrorKind::RepoUpdateAttemptsLimit(_))
    )
}

/// Runs of expire or gc, at most, against a writer that keeps committing.
const CROWDED_RUNS: u32 = 30;

/// Run `op` again while it is [`crowded`], backing off (jittered, 50 ms up to 2 s).
async fn uncrowded<T, F, Fut>(mut op: F) -> Result<T, gc::GCError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, gc::GCError>>,
{
    let mut delay = std::time::Duration::from_millis(50);
    let mut run = 1;
    loop {
        match op().await {
            Err(e) if crowded(&e) && run < CROWDED_RUNS => {
                let jitter = u64::from(std::process::id() ^ run) % 50;
                tokio::time::sleep(delay + std::time::Duration::from_millis(jitter)).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(2));
                run += 1;
            }
            other => return other,
        }
    }
}

/// Passes of Icechunk's gc, at most, while some deletes fail. A failed delete
/// leaves the object garbage and stops the kinds it names from being collected
/// that pass (Icechunk 2.3.1 skips the later phases), and a whole pass is safe to
/// repeat: what it deleted stays deleted and what it left is still unreachable.
/// Why a pass can fail: object_store does not retry a bulk delete (a POST) whose
/// connection drops (measured: Azurite reset one batch of 256 under CI's load,
/// `retries: 0`, and the manifests and chunks of that run stayed).
pub const GC_PASSES: u32 = 3;

/// Pause before the next gc pass, times the pass number.
const GC_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Run the gc pass `op` until no delete fails (or [`GC_PASSES`] ran), and add up
/// what the passes deleted; the failures reported are the last pass's.
async fn until_deleted<F, Fut, E>(
    dry_run: bool,
    pause: std::time::Duration,
    mut op: F,
) -> Result<GCSummary, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<GCSummary, E>>,
{
    let mut total = GCSummary::default();
    for pass in 1..=GC_PASSES {
        let s = op().await?;
        total.bytes_deleted += s.bytes_deleted;
        total.chunks_deleted += s.chunks_deleted;
        total.manifests_deleted += s.manifests_deleted;
        total.snapshots_deleted += s.snapshots_deleted;
        total.attributes_deleted += s.attributes_deleted;
        total.transaction_logs_deleted += s.transaction_logs_deleted;
        total.throttled_batches += s.throttled_batches;
        total.objects_failed_to_delete = s.objects_failed_to_delete;
        total.delete_errors = s.delete_errors;
        total.skipped_phases = s.skipped_phases;
        if dry_run || total.objects_failed_to_delete == 0 {
            break;
        }
        tracing::warn!(
            "gc pass {pass}: {} object(s) not deleted ({}); {}",
            total.objects_failed_to_delete,
            total.delete_errors.join("; "),
            if pass < GC_PASSES { "running another pass" } else { "giving up for this run" }
        );
        if pass < GC_PASSES {
            tokio::time::sleep(pause * pass).await;
        }
    }
    Ok(total)
}

fn nz16(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

fn nzu(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

/// Icechunk's collector with Floe's bounds: at most 1 GB of compressed and 4 GiB of
/// decoded manifests in memory (Icechunk's own figures), 10 requests at a time.
fn gc_config(cutoff: DateTime<Utc>, dry_run: bool) -> GCConfig {
    GCConfig::clean_all(
        cutoff,
        cutoff,
        None,
        nz16(10),
        nzu(1_000_000_000),
        nzu(4 << 30),
        nz16(10),
        nz16(10),
        nz16(50),
        None,
        dry_run,
    )
}

impl Repo {
    fn ctx_storage(&self) -> (&Arc<icechunk::asset_manager::AssetManager>, String) {
        (self.inner.asset_manager(), self.label.clone())
    }

    async fn repo_info(&self) -> Result<Arc<RepoInfo>, StoreError> {
        let (am, label) = self.ctx_storage();
        let (info, _) =
            am.fetch_repo_info().await.map_err(|e| crate::remote::classify_error(&label, &e))?;
        Ok(info)
    }

    /// Every object under `prefix` (relative keys), with its size and write time.
    pub(crate) async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<icechunk::storage::ListInfo<String>>, StoreError> {
        let am = self.inner.asset_manager();
        let ctx = am.storage_context();
        let stream = am
            .storage()
            .list_objects(&ctx, prefix)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        stream.try_collect().await.map_err(|e| crate::remote::classify_error(&self.label, &e))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let am = self.inner.asset_manager();
        let ctx = am.storage_context();
        let (mut read, _) = am
            .storage()
            .get_object(&ctx, key, None)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let mut out = Vec::new();
        read.read_to_end(&mut out)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        Ok(out)
    }

    /// Read the archive objects not read yet.
    async fn load_archive(&self) -> Result<(), StoreError> {
        let listed = self.list(ARCHIVE_PREFIX).await?;
        for object in listed {
            if floe_core::lock(&self.archive).read.contains(&object.id) {
                continue;
            }
            let bytes = self.get(&format!("{ARCHIVE_PREFIX}/{}", object.id)).await?;
            let file: ArchiveFile = zstd::decode_all(bytes.as_slice())
                .ok()
                .and_then(|raw| serde_json::from_slice(&raw).ok())
                .ok_or_else(|| StoreError::Repository {
                    repo: self.label.clone(),
                    detail: format!(
                        "Floe's history archive object `{ARCHIVE_PREFIX}/{}` does not read; \
                         it was written by Floe and must not be edited",
                        object.id
                    ),
                })?;
            let mut cache = floe_core::lock(&self.archive);
            for c in file.commits {
                cache.commits.insert(c.id.clone(), c);
            }
            cache.read.insert(object.id);
        }
        Ok(())
    }

    /// Put the archived commits that expiry removed back into a history (newest
    /// first): after each snapshot that names expired ancestors, those ancestors,
    /// marked `expired`. A history with nothing expired is returned as it is,
    /// without a request.
    pub(crate) async fn restore_expired(
        &self,
        history: Vec<(CommitInfo, Vec<String>)>,
    ) -> Result<Vec<CommitInfo>, StoreError> {
        if history.iter().all(|(_, pruned)| pruned.is_empty()) {
            return Ok(history.into_iter().map(|(c, _)| c).collect());
        }
        self.load_archive().await?;
        let pruned: Vec<String> = history.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
        self.read_unarchived(&pruned).await?;
        let cache = floe_core::lock(&self.archive);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (c, pruned) in history {
            seen.insert(c.id.clone());
            out.push(c);
            // `pruned` is oldest first; a history is newest first
            for id in pruned.iter().rev() {
                if !seen.insert(id.clone()) {
                    continue;
                }
                match cache.commits.get(id) {
                    Some(a) => out.push(CommitInfo {
                        id: a.id.clone(),
                        parent: None,
                        time: a.time,
                        message: a.message.clone(),
                        provenance: a.provenance.clone(),
                        expired: true,
                    }),
                    // expired by another tool than Floe and collected since:
                    // its provenance is gone
                    None => tracing::warn!(
                        "{}: snapshot {id} was expired without Floe's archive; the files it \
                         took are not known to Floe any more",
                        self.label
                    ),
                }
            }
        }
        Ok(out)
    }

    /// Copy the provenance of every snapshot older than `cutoff` (not archived
    /// yet) into the history archive; how many were copied.
    async fn archive_older_than(
        &self,
        info: &RepoInfo,
        cutoff: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.load_archive().await?;
        let snapshots: Vec<_> = info
            .all_snapshots()
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let commits: Vec<ArchivedCommit> = {
            let cache = floe_core::lock(&self.archive);
            snapshots
                .into_iter()
                .filter(|s| s.flushed_at < cutoff && s.parent_id.is_some())
                .filter(|s| !cache.commits.contains_key(&s.id.to_string()))
                .map(|s| ArchivedCommit::of(&s))
                .collect()
        };
        self.archive_commits(commits).await
    }

    /// Read, from their own snapshot objects, the expired snapshots among `ids`
    /// that the archive lacks, into the cache; those found. One whose object is
    /// gone is remembered as gone; one that fails to read otherwise is an error.
    async fn read_unarchived(&self, ids: &[String]) -> Result<Vec<ArchivedCommit>, StoreError> {
        let wanted: Vec<String> = {
            let cache = floe_core::lock(&self.archive);
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| !cache.commits.contains_key(*id) && !cache.gone.contains(*id))
                .filter(|id| seen.insert((*id).clone()))
                .cloned()
                .collect()
        };
        let am = self.inner.asset_manager();
        let mut found = Vec::new();
        for id in wanted {
            let info = match SnapshotId::try_from(id.as_str()) {
                Ok(sid) => match am.fetch_snapshot_info(&sid).await {
                    Ok(info) => Some(info),
                    Err(icechunk::repository::RepositoryError {
                        kind:
                            icechunk::repository::RepositoryErrorKind::StorageError(
                                icechunk::storage::StorageErrorKind::ObjectNotFound,
                            ),
                        ..
                    }) => None,
                    Err(e) => return Err(crate::remote::classify_error(&self.label, &e)),
                },
                Err(_) => None,
            };
            let mut cache = floe_core::lock(&self.archive);
            match info {
                Some(info) => {
                    let a = ArchivedCommit::of(&info);
                    cache.commits.insert(id, a.clone());
                    found.push(a);
                }
                None => {
                    cache.gone.insert(id);
                }
            }
        }
        Ok(found)
    }

    /// Write `commits` into the history archive as one new object; how many.
    async fn archive_commits(&self, commits: Vec<ArchivedCommit>) -> Result<usize, StoreError> {
        if commits.is_empty() {
            return Ok(0);
        }
        let n = commits.len();
        let now = Utc::now();
        let file = ArchiveFile {
            floe_version: env!("CARGO_PKG_VERSION").into(),
            written_at: now,
            commits: commits.clone(),
        };
        let raw = serde_json::to_vec(&file).map_err(|e| StoreError::Repository {
            repo: self.label.clone(),
            detail: e.to_string(),
        })?;
        let packed = zstd::encode_all(raw.as_slice(), 3)
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let digest = blake3::hash(&packed).to_hex();
        let key = format!(
            "{ARCHIVE_PREFIX}/{}-{}.json.zst",
            now.format("%Y%m%dT%H%M%S%.3fZ"),
            &digest.as_str()[..16]
        );
        let am = self.inner.asset_manager();
        let ctx = am.storage_context();
        am.storage()
            .put_object(&ctx, &key, packed.into(), Some("application/zstd"), Vec::new(), None)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let mut cache = floe_core::lock(&self.archive);
        for c in commits {
            cache.commits.insert(c.id.clone(), c);
        }
        Ok(n)
    }

    /// Expire every snapshot older than `cutoff`, keeping what branch tips and tags
    /// point to (and the first, empty commit); their provenance goes into Floe's
    /// history archive first. `dry_run`: say what would go, change nothing.
    pub async fn expire(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<ExpireReport, StoreError> {
        let info = self.repo_info().await?;
        self.expire_from(&info, cutoff, dry_run).await
    }

    /// [`Repo::expire`], planned and archived from `info` (which another writer
    /// may have moved on from by the time Icechunk's expire reads it again).
    async fn expire_from(
        &self,
        info: &RepoInfo,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<ExpireReport, StoreError> {
        let plan = expire_plan(info, cutoff)
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        if dry_run {
            return Ok(ExpireReport { cutoff, dry_run, expired: plan, archived: 0, edited: 0 });
        }
        let archived = self.archive_older_than(info, cutoff).await?;
        let am = Arc::clone(self.inner.asset_manager());
        let config = self.inner.config();
        let result = uncrowded(|| {
            gc::expire(
                Arc::clone(&am),
                cutoff,
                ExpiredRefAction::Ignore,
                ExpiredRefAction::Ignore,
                Some(config.repo_update_retries()),
                config.num_updates_per_repo_info_file(),
            )
        })
        .await
        .map_err(|e| gc_err(&self.label, &e))?;
        let released: HashSet<String> =
            result.released_snapshots.iter().map(ToString::to_string).collect();
        let archived = archived + self.archive_released(&released).await?;
        // what was planned and went, and what went that was not planned (a tip
        // another writer moved on meanwhile): it is in the archive too
        let mut expired: Vec<ExpiredCommit> =
            plan.into_iter().filter(|c| released.contains(&c.id)).collect();
        let listed: HashSet<String> = expired.iter().map(|c| c.id.clone()).collect();
        let others: Vec<ExpiredCommit> = {
            let cache = floe_core::lock(&self.archive);
            released
                .iter()
                .filter(|id| !listed.contains(*id))
                .map(|id| match cache.commits.get(id) {
                    Some(a) => {
                        ExpiredCommit { id: id.clone(), time: a.time, message: a.message.clone() }
                    }
                    None => ExpiredCommit { id: id.clone(), time: cutoff, message: String::new() },
                })
                .collect()
        };
        expired.extend(others);
        expired.sort_by_key(|c| c.time);
        Ok(ExpireReport {
            cutoff,
            dry_run,
            expired,
            archived,
            edited: result.edited_snapshots.len(),
        })
    }

    /// Archive the snapshots an expire released that the archive lacks: commits
    /// another writer made while it ran (see the module's comment).
    async fn archive_released(&self, released: &HashSet<String>) -> Result<usize, StoreError> {
        let ids: Vec<String> = released.iter().cloned().collect();
        let late = self.read_unarchived(&ids).await?;
        let lost: Vec<String> = {
            let cache = floe_core::lock(&self.archive);
            ids.into_iter().filter(|id| cache.gone.contains(id)).collect()
        };
        if !lost.is_empty() {
            // a snapshot this expire released is unreadable already: nothing left
            // to archive it from; a later sync would take its files again
            return Err(StoreError::Repository {
                repo: self.label.clone(),
                detail: format!(
                    "snapshots {} were expired and no longer read; their files may be \
                     synced again (was another gc run with --grace 0s at the same time?)",
                    lost.join(", ")
                ),
            });
        }
        tracing::debug!("{}: {} commits made during the expire archived", self.label, late.len());
        let ids: Vec<String> = late.iter().map(|c| c.id.clone()).collect();
        let written = self.archive_commits(late).await;
        if written.is_err() {
            // not in the archive after all: the next history read or expire asks again
            let mut cache = floe_core::lock(&self.archive);
            for id in ids {
                cache.commits.remove(&id);
            }
        }
        written
    }

    /// Delete what no branch, tag or retained snapshot needs any more and that was
    /// written before `cutoff` (now less the grace period: a writer elsewhere may be
    /// about to commit what it wrote after): chunks, manifests, snapshots,
    /// transaction logs, and the copies of the repository info object that no
    /// record names (see [`Repo::collect_overwritten`]).
    pub async fn gc(&self, cutoff: DateTime<Utc>, dry_run: bool) -> Result<GcReport, StoreError> {
        let started = Utc::now();
        let am = Arc::clone(self.inner.asset_manager());
        let config = self.inner.config();
        let gc_config = gc_config(cutoff, dry_run);
        let summary = until_deleted(dry_run, GC_PAUSE, || {
            uncrowded(|| {
                gc::garbage_collect(
                    Arc::clone(&am),
                    &gc_config,
                    Some(config.repo_update_retries()),
                    config.num_updates_per_repo_info_file(),
                )
            })
        })
        .await
        .map_err(|e| gc_err(&self.label, &e))?;
        // Icechunk's gc rewrites the repository info, which leaves one more copy
        // under `overwritten/` written after `cutoff`. The grace period is measured
        // when the copies are collected, so that copy goes too under `--grace 0s`
        // (on S3 a copy is a new object with a new time; locally it is a hard link
        // that keeps the old one, which is why only S3 and Azure kept it).
        let copies_cutoff = cutoff + (Utc::now() - started);
        let (overwritten, overwritten_bytes) =
            self.collect_overwritten(copies_cutoff, dry_run).await?;
        Ok(GcReport {
            cutoff,
            dry_run,
            chunks: summary.chunks_deleted,
            manifests: summary.manifests_deleted,
            snapshots: summary.snapshots_deleted,
            transaction_logs: summary.transaction_logs_deleted,
            overwritten,
            bytes_freed: summary.bytes_deleted + overwritten_bytes,
            failed: summary.objects_failed_to_delete,
            errors: summary.delete_errors,
            skipped: summary.skipped_phases,
        })
    }

    /// Icechunk copies the repository info object to `overwritten/` before each
    /// rewrite (every commit, branch move and expire) and never deletes the copies
    /// (upstream issue 1852): on a repository that commits every few minutes they
    /// outgrow the data. Two kinds of copy are read back by Icechunk: the chain of
    /// older update logs (`repo_before_updates`, one per 1,000 updates, which
    /// Icechunk's `ops_log` follows), kept here always. Every other copy is a
    /// point-in-time backup that nothing reads; those written before `cutoff` are
    /// deleted. Count and bytes.
    async fn collect_overwritten(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<(u64, u64), StoreError> {
        let keep = self.update_log_chain().await?;
        let garbage: Vec<(String, u64)> = self
            .list(OVERWRITTEN_PREFIX)
            .await?
            .into_iter()
            .filter(|o| o.created_at < cutoff && !keep.contains(&o.id))
            .map(|o| (o.id, o.size_bytes))
            .collect();
        let (n, bytes) = (garbage.len() as u64, garbage.iter().map(|(_, b)| b).sum::<u64>());
        if dry_run || garbage.is_empty() {
            return Ok((n, bytes));
        }
        let am = self.inner.asset_manager();
        let ctx = am.storage_context();
        let ids = futures::stream::iter(garbage).boxed();
        let done = am
            .storage()
            .delete_objects(&ctx, OVERWRITTEN_PREFIX, ids)
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        Ok((done.deleted_objects, done.deleted_bytes))
    }

    /// The `overwritten/` copies Icechunk's update log still reads, newest first.
    async fn update_log_chain(&self) -> Result<HashSet<String>, StoreError> {
        let mut keep = HashSet::new();
        let mut info = self.repo_info().await?;
        let am = self.inner.asset_manager();
        loop {
            let previous = info
                .repo_before_updates()
                .map_err(|e| crate::remote::classify_error(&self.label, &e))?
                .map(str::to_string);
            let Some(previous) = previous else { return Ok(keep) };
            if !keep.insert(previous.clone()) {
                return Ok(keep);
            }
            info = match am.fetch_repo_info_backup(&previous).await {
                Ok((older, _)) => older,
                Err(_) => return Ok(keep),
            };
        }
    }

    /// Bytes by kind of object, and what expiring and collecting would free now.
    pub async fn usage(&self) -> Result<Usage, StoreError> {
        let listed = self.list("").await?;
        let mut by_kind: BTreeMap<ObjectKind, Tally> = BTreeMap::new();
        let mut total = Tally::default();
        for o in &listed {
            let t = by_kind.entry(ObjectKind::of(&o.id)).or_default();
            t.objects += 1;
            t.bytes += o.size_bytes;
            total.objects += 1;
            total.bytes += o.size_bytes;
        }
        let gc_frees = self.gc(Utc::now(), true).await?.bytes_freed;
        let expire_and_gc_frees = self.frees_when_only_refs_stay(&listed).await?;
        Ok(Usage { by_kind, total, gc_frees, expire_and_gc_frees })
    }

    /// Bytes of the chunks, manifests and snapshots no branch tip or tag needs, and
    /// of the `overwritten/` copies no record names: what `expire --older-than 0s`
    /// and `gc --grace 0s` would free. (Transaction logs stay: Icechunk keeps those
    /// of expired snapshots for the snapshots that replace them.)
    async fn frees_when_only_refs_stay(
        &self,
        listed: &[icechunk::storage::ListInfo<String>],
    ) -> Result<u64, StoreError> {
        let info = self.repo_info().await?;
        let map = |e: icechunk::format::IcechunkFormatError| {
            crate::remote::classify_error(&self.label, &e)
        };
        let mut tips: HashSet<SnapshotId> = info.tags().map_err(map)?.map(|(_, s)| s).collect();
        tips.extend(info.branches().map_err(map)?.map(|(_, s)| s));
        tips.insert(icechunk::format::snapshot::Snapshot::INITIAL_SNAPSHOT_ID);
        let am = Arc::clone(self.inner.asset_manager());
        let fetch = Arc::clone(&am);
        let snaps = futures::stream::iter(tips.clone()).then(move |id| {
            let am = Arc::clone(&fetch);
            async move { am.fetch_snapshot(&id).await }
        });
        let config = gc_config(Utc::now(), true);
        let (chunks, manifests, _) =
            gc::find_retained(am, &config, snaps).await.map_err(|e| gc_err(&self.label, &e))?;
        let tip_ids: HashSet<String> = tips.iter().map(ToString::to_string).collect();
        let chain = self.update_log_chain().await?;
        let manifest_ids: HashSet<String> = manifests.iter().map(ToString::to_string).collect();
        let mut frees = 0;
        for o in listed {
            let id = o.id.split_once('/').map_or("", |(_, id)| id);
            let garbage = match ObjectKind::of(&o.id) {
                ObjectKind::Chunks => icechunk::format::ChunkId::try_from(id)
                    .map(|c| !chunks.contains(&c))
                    .unwrap_or(false),
                ObjectKind::Manifests => !manifest_ids.contains(id),
                ObjectKind::Snapshots => !tip_ids.contains(id),
                ObjectKind::Overwritten => !chain.contains(id),
                ObjectKind::TransactionLogs | ObjectKind::FloeHistory | ObjectKind::Other => false,
            };
            if garbage {
                frees += o.size_bytes;
            }
        }
        Ok(frees)
    }
}

/// The snapshots an expire at `cutoff` removes, oldest first: older than the cutoff,
/// not the first commit, not pointed to by a branch or a tag (Icechunk's rule with
/// expired refs ignored).
fn expire_plan(
    info: &RepoInfo,
    cutoff: DateTime<Utc>,
) -> Result<Vec<ExpiredCommit>, icechunk::format::IcechunkFormatError> {
    let mut refs: HashSet<SnapshotId> = info.tags()?.map(|(_, s)| s).collect();
    refs.extend(info.branches()?.map(|(_, s)| s));
    let mut out = Vec::new();
    for s in info.all_snapshots()? {
        let s = s?;
        if s.flushed_at < cutoff && s.parent_id.is_some() && !refs.contains(&s.id) {
            out.push(ExpiredCommit {
                id: s.id.to_string(),
                time: s.flushed_at,
                message: s.message,
            });
        }
    }
    out.sort_by_key(|c| c.time);
    Ok(out)
}

#[cfg(test)]
mod race_tests {
    use std::collections::BTreeMap;

    use floe_core::{FileProvenance, RepoUrl};
    use serde_json::json;

    use super::*;

    fn took(file: &str) -> CommitProvenance {
        CommitProvenance {
            rows: Default::default(),
            floe_version: "test".into(),
            files: vec![FileProvenance {
                source: file.into(),
                size: 1,
                mtime: "2024-01-01T00:00:00Z".into(),
                blake3: file.into(),
                format: "netcdf4".into(),
                group: "/".into(),
                records: BTreeMap::from([("time".into(), 1)]),
                offsets: BTreeMap::from([("time".into(), 0)]),
                from: BTreeMap::new(),
                records_blake3: None,
                settings: BTreeMap::new(),
            }],
            continues: None,
            gate: None,
            deletion: None,
        }
    }

    async fn commit(repo: &Repo, file: &str) {
        let mut w = repo.writer("main").await.unwrap();
        let group = json!({"zarr_format": 3, "node_type": "group", "attributes": {"last": file}});
        w.put_group("", &group).await.unwrap();
        w.commit(file, &took(file)).await.unwrap();
    }

    /// The race CI met (a file synced twice after gc beside a writer): the expire
    /// archives from the repository info it read, another writer commits `c` and
    /// `d`, and Icechunk's expire, reading the info again, expires `c` too. Its
    /// provenance must be in the archive all the same, and the history must name
    /// every file once.
    #[test]
    fn a_commit_made_during_an_expire_keeps_its_provenance() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = RepoUrl::Local(dir.path().join("repo"));
            let repo = Repo::open_for_write(&url, &[]).await.unwrap();
            commit(&repo, "a.nc").await;
            commit(&repo, "b.nc").await;
            let stale = repo.repo_info().await.unwrap();
            drop(repo); // (a local repository takes one writer at a time)
            let other = Repo::open_for_write(&url, &[]).await.unwrap();
            commit(&other, "c.nc").await;
            commit(&other, "d.nc").await;
            drop(other);
            let cutoff = Utc::now();
            let fresh = Repo::open(&url).await.unwrap();
            let report = fresh.expire_from(&stale, cutoff, false).await.unwrap();
            assert_eq!(report.archived, 3, "a, b, and c committed meanwhile: {report:?}");
            // the snapshot objects go with gc: from then on only the archive knows
            fresh.gc(Utc::now(), false).await.unwrap();
            let reader = Repo::open(&url).await.unwrap();
            let history = reader.history("main").await.unwrap();
            let mut files: Vec<String> = history
                .iter()
                .filter_map(|c| c.provenance.as_ref())
                .flat_map(|p| p.files.iter().map(|f| f.source.clone()))
                .collect();
            files.sort();
            assert_eq!(files, ["a.nc", "b.nc", "c.nc", "d.nc"], "{history:#?}");
            assert!(history.iter().filter(|c| c.expired).count() == 3, "{history:#?}");
        });
    }
}

#[cfg(test)]
mod gc_pass_tests {
    use std::cell::RefCell;

    use super::*;

    fn pass(chunks: u64, failed: u64) -> GCSummary {
        GCSummary {
            chunks_deleted: chunks,
            bytes_deleted: chunks * 10,
            objects_failed_to_delete: failed,
            delete_errors: if failed > 0 { vec!["connection reset".into()] } else { vec![] },
            skipped_phases: if failed > 0 { vec!["chunks".into()] } else { vec![] },
            ..Default::default()
        }
    }

    /// Runs `until_deleted` over the given passes; returns its summary and the passes run.
    fn run(dry_run: bool, passes: Vec<GCSummary>) -> (GCSummary, usize) {
        let passes = RefCell::new(passes.into_iter());
        let ran = RefCell::new(0);
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let total = rt
            .block_on(until_deleted::<_, _, ()>(dry_run, std::time::Duration::ZERO, || {
                *ran.borrow_mut() += 1;
                let next = passes.borrow_mut().next().expect("no more passes planned");
                async move { Ok(next) }
            }))
            .unwrap();
        (total, ran.into_inner())
    }

    #[test]
    fn a_pass_with_failed_deletes_is_followed_by_another_that_collects_the_rest() {
        let (total, ran) = run(false, vec![pass(5, 256), pass(300, 0)]);
        assert_eq!(ran, 2);
        assert_eq!(total.chunks_deleted, 305);
        assert_eq!(total.bytes_deleted, 3050);
        assert_eq!(total.objects_failed_to_delete, 0);
        assert!(total.delete_errors.is_empty() && total.skipped_phases.is_empty());
    }

    #[test]
    fn failures_that_persist_are_reported_from_the_last_pass_after_the_limit() {
        let (total, ran) = run(false, vec![pass(5, 256), pass(1, 200), pass(0, 7)]);
        assert_eq!(ran, GC_PASSES as usize);
        assert_eq!(total.chunks_deleted, 6);
        assert_eq!(total.objects_failed_to_delete, 7);
        assert_eq!(total.skipped_phases, vec!["chunks".to_string()]);
    }

    #[test]
    fn a_clean_pass_or_a_dry_run_runs_once() {
        assert_eq!(run(false, vec![pass(5, 0)]).1, 1);
        assert_eq!(run(true, vec![pass(5, 3)]).1, 1);
    }
}
