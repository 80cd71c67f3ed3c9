//! Keeping a repository's size bounded (`floe expire`, `floe gc`, `floe du`, and the
//! daemon's per-folder `--keep`): expire snapshots older than a cutoff, collect what
//! nothing needs any more, and say where the bytes are.

use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_core::{ErrorCode, RepoUrl};
use floe_store::Repo;
pub use floe_store::retention::{
    ExpireReport, ExpiredCommit, GC_PASSES, GcReport, ObjectKind, Tally, Usage,
};

use crate::ApiError;

/// `now` less `span`, refused when it reaches before the epoch.
pub fn cutoff(now: DateTime<Utc>, span: Duration) -> Result<DateTime<Utc>, ApiError> {
    chrono::TimeDelta::from_std(span).ok().and_then(|d| now.checked_sub_signed(d)).ok_or_else(
        || {
            ApiError::new(
                ErrorCode::Usage,
                format!("{} is further back than time goes", humantime::format_duration(span)),
            )
        },
    )
}

async fn open(repo: &str) -> Result<Repo, ApiError> {
    Ok(Repo::open(&RepoUrl::parse(repo)?).await?)
}

/// Expire and gc rewrite the repository info: a local repository must have no
/// writer meanwhile (see [`Repo::open_exclusive`]).
async fn open_exclusive(repo: &str) -> Result<Repo, ApiError> {
    Ok(Repo::open_exclusive(&RepoUrl::parse(repo)?).await?)
}

/// Expire the snapshots of `repo` older than `older_than`, keeping what branch tips
/// and tags point to; what each expired snapshot ingested stays known to Floe.
pub async fn expire(
    repo: &str,
    older_than: Duration,
    dry_run: bool,
) -> Result<ExpireReport, ApiError> {
    let cutoff = cutoff(Utc::now(), older_than)?;
    Ok(open_exclusive(repo).await?.expire(cutoff, dry_run).await?)
}

/// Delete what nothing in `repo` needs any more and that is older than `grace`.
pub async fn gc(repo: &str, grace: Duration, dry_run: bool) -> Result<GcReport, ApiError> {
    let cutoff = cutoff(Utc::now(), grace)?;
    Ok(open_exclusive(repo).await?.gc(cutoff, dry_run).await?)
}

/// Bytes by kind, and what an expire and a gc would free now.
pub async fn du(repo: &str) -> Result<Usage, ApiError> {
    Ok(open(repo).await?.usage().await?)
}

/// `1.2 MB`, in powers of 1000 (as storage consoles bill).
pub fn bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

/// The words `floe du` uses for each kind of object.
pub fn kind_words(k: ObjectKind) -> &'static str {
    match k {
        ObjectKind::Chunks => "chunks",
        ObjectKind::Manifests => "manifests",
        ObjectKind::Snapshots => "snapshots",
        ObjectKind::TransactionLogs => "transaction logs",
        ObjectKind::Overwritten => "overwritten repo info copies",
        ObjectKind::FloeHistory => "Floe's history archive",
        ObjectKind::Other => "other (repo info, config)",
    }
}

pub use floe_sync::erase::{DeleteReport, DeleteWindow, Holder, HolderKind};

impl From<floe_sync::erase::DeleteError> for ApiError {
    fn from(e: floe_sync::erase::DeleteError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// Overwrite a time window with fill values in one recorded commit (`floe delete`).
pub async fn delete(d: &DeleteWindow) -> Result<DeleteReport, ApiError> {
    Ok(floe_sync::erase::delete_window(d).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cutoff_is_now_less_the_span() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let c = cutoff(now, Duration::from_secs(90 * 86400)).unwrap_or_default();
        assert_eq!((now - c).num_days(), 90);
        assert_eq!(cutoff(now, Duration::ZERO).ok(), Some(now));
        assert!(cutoff(now, Duration::from_secs(u64::MAX / 4)).is_err());
    }

    #[test]
    fn bytes_read_as_a_console_shows_them() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(131_000_000), "131.0 MB");
    }
}
