//! Reductions from the statistics Floe keeps at ingest (`floe stats`): a window's
//! count/min/max/mean, or a series resampled by a fixed width, without reading
//! the data except where a window edge cuts through a file.

use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_core::RepoUrl;
use floe_store::Repo;
pub use floe_sync::stats::{BinStats, RebuildReport, StatsAnswer};
use floe_sync::stats::{StatsError, StatsQuery};

use crate::ApiError;

impl From<StatsError> for ApiError {
    fn from(e: StatsError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// What to reduce.
#[derive(Debug, Clone)]
pub struct Stats {
    pub repo: String,
    pub branch: String,
    pub var: String,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub every: Option<Duration>,
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) * 1e-9
}

/// Count, min, max and mean of `var` over the window, or per bin of `every`.
pub async fn stats(s: &Stats) -> Result<StatsAnswer, ApiError> {
    let repo = Repo::open(&RepoUrl::parse(&s.repo)?).await?.without_preload().await?;
    let q = StatsQuery {
        branch: s.branch.clone(),
        var: s.var.clone(),
        from: s.from.map(seconds),
        to: s.to.map(seconds),
        every: s.every.map(|d| d.as_secs_f64()),
    };
    Ok(floe_sync::stats::query(&repo, &q).await?)
}

/// Fill in the statistics of a repository written before Floe kept them (or
/// compute them afresh), in one commit on `branch`.
pub async fn rebuild(repo: &str, branch: &str) -> Result<RebuildReport, ApiError> {
    Ok(floe_sync::stats::rebuild(&RepoUrl::parse(repo)?, branch).await?)
}
