//! A repository's history with Floe's provenance, and the latest records of one
//! variable: what the History screen shows and `floe log` prints.

use floe_core::RepoUrl;
use floe_store::{CommitInfo, Repo, Series, Variable};
use serde::Serialize;

use crate::ApiError;

/// One file a commit took in.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub source: String,
    pub size: u64,
    pub format: String,
    /// `"12 time"`, `"12 time, 1200 hf_time"`.
    pub records: String,
}

/// One commit, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct CommitView {
    pub id: String,
    pub short_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub message: String,
    pub files: Vec<FileView>,
    /// Records appended, all files and dimensions together.
    pub records: u64,
    /// Whether Floe made it (else another tool did, and there is no provenance).
    pub by_floe: bool,
}

fn view(c: &CommitInfo) -> CommitView {
    let files: Vec<FileView> = c
        .provenance
        .iter()
        .flat_map(|p| &p.files)
        .map(|f| FileView {
            source: f.source.clone(),
            size: f.size,
            format: f.format.clone(),
            records: f
                .records
                .iter()
                .map(|(d, n)| format!("{n} {d}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let records = c.provenance.iter().flat_map(|p| &p.files).flat_map(|f| f.records.values()).sum();
    CommitView {
        short_id: c.id.chars().take(8).collect(),
        id: c.id.clone(),
        time: c.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        message: c.message.clone(),
        files,
        records,
        by_floe: c.provenance.is_some(),
    }
}

async fn open(repo: &str) -> Result<Repo, ApiError> {
    Ok(Repo::open(&RepoUrl::parse(repo)?).await?)
}

/// The commits of `branch`, newest first, at most `limit`.
pub async fn commits(repo: &str, branch: &str, limit: usize) -> Result<Vec<CommitView>, ApiError> {
    let mut h = live(open(repo).await?.history(branch).await?);
    h.truncate(limit);
    Ok(h.iter().map(view).collect())
}

/// The commits with everything recorded (for `floe log --json`).
pub async fn commits_full(repo: &str, branch: &str) -> Result<Vec<CommitInfo>, ApiError> {
    Ok(live(open(repo).await?.history(branch).await?))
}

/// The commits that are still snapshots (a history also holds Floe's record of
/// the expired ones, for exactly-once).
fn live(history: Vec<CommitInfo>) -> Vec<CommitInfo> {
    history.into_iter().filter(|c| !c.expired).collect()
}

/// The variables of the branch tip that can be plotted.
pub async fn variables(repo: &str, branch: &str) -> Result<Vec<Variable>, ApiError> {
    Ok(open(repo).await?.view(branch).await?.variables().await?)
}

/// The last `records` records of `variable` at the branch tip.
pub async fn series(
    repo: &str,
    branch: &str,
    variable: &str,
    records: u64,
) -> Result<Series, ApiError> {
    Ok(open(repo).await?.view(branch).await?.tail(variable, records.clamp(1, 10_000)).await?)
}
