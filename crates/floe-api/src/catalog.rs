//! Every repository under a prefix (`floe repos`, the app's Mounts screen): found
//! by delimited listings, one per prefix, and each summarised (latest commit,
//! branches, size), newest first.

use floe_core::{ErrorCode, RepoUrl};
pub use floe_store::catalog::RepoSummary;
use serde::Serialize;

use crate::ApiError;

/// Prefixes listed, and repositories summarised, at a time.
const CONCURRENCY: usize = 16;

/// What `floe repos` found under a prefix.
#[derive(Debug, Clone, Serialize)]
pub struct Repos {
    pub url: String,
    /// Newest first.
    pub repositories: Vec<RepoSummary>,
    /// Prefixes that could not be listed, with why.
    pub unlisted: Vec<Unlisted>,
    /// Delimited listings it took to find them.
    pub listings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unlisted {
    pub prefix: String,
    pub error: String,
}

/// Every repository at or under `url`; with `size`, also the bytes of each
/// (listing every object of each: the one part whose cost grows with the data).
pub async fn repos(url: &str, size: bool) -> Result<Repos, ApiError> {
    let parsed = RepoUrl::parse(url)?;
    let catalog = floe_store::catalog::Catalog::open(&parsed).await?;
    let (repositories, unlisted) = catalog.summaries(size, CONCURRENCY).await;
    if repositories.is_empty()
        && let Some((_, e)) = unlisted.iter().find(|(p, _)| p.is_empty())
    {
        return Err(ApiError::new(e.code(), e.to_string()));
    }
    Ok(Repos {
        url: parsed.to_string(),
        repositories,
        unlisted: unlisted
            .into_iter()
            .map(|(prefix, e)| Unlisted { prefix, error: e.to_string() })
            .collect(),
        listings: catalog.requests(),
    })
}

/// Refuse an empty catalog with what to do.
pub fn require_some(r: &Repos) -> Result<(), ApiError> {
    match r.repositories.is_empty() {
        true => Err(ApiError::new(
            ErrorCode::Repository,
            format!(
                "no Icechunk repository at or under {}; check the URL (a repository's root holds an object named `repo`)",
                r.url
            ),
        )),
        false => Ok(()),
    }
}
