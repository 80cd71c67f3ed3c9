//! Decisions at a folder's validation gate (`floe gate release|drop`, the app's
//! buttons): what is held is promoted anyway or dropped, recorded in the repository,
//! and the running engine looks at the folder again at once.

use std::path::{Path, PathBuf};

use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::Config;
use floe_engine::daemon::{self, Request};
use floe_sync::gate::GateError;
pub use floe_sync::gate::{Decision, GateOptions, Limits, staging_branch};

use crate::ApiError;

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        let code = match &e {
            GateError::NothingHeld(_) => ErrorCode::Usage,
            GateError::Moved(_) => ErrorCode::Conflict,
            GateError::Store(s) => s.code(),
        };
        ApiError::new(code, e.to_string())
    }
}

/// Release (promote anyway) or drop what the gate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Release,
    Drop,
}

/// Which gate: a registered folder's (by its path), else a repository's branch.
#[derive(Debug, Clone)]
pub struct GateTarget {
    pub repo: RepoUrl,
    pub branch: String,
    pub group: String,
    pub checks: GateOptions,
    /// The registered folder, to tell the engine.
    pub folder: Option<PathBuf>,
}

/// The gate of `target`: a folder in the config (its repository, branch, group and
/// checks), else a repository URL with `branch`.
pub fn target(
    config_path: &Path,
    target: &str,
    branch: Option<&str>,
) -> Result<GateTarget, ApiError> {
    let config = Config::load(config_path)?;
    let wanted = std::fs::canonicalize(target).unwrap_or_else(|_| PathBuf::from(target));
    if let Some(f) = config.folders.iter().find(|f| f.path == wanted || f.path == Path::new(target))
    {
        return Ok(GateTarget {
            repo: RepoUrl::parse(&f.repo)?,
            branch: branch.map_or_else(|| f.branch.clone(), str::to_string),
            group: f.group.clone(),
            checks: f.gate.clone().unwrap_or_default(),
            folder: Some(f.path.clone()),
        });
    }
    let repo = RepoUrl::parse(target).map_err(|e| {
        ApiError::new(
            ErrorCode::Usage,
            format!(
                "`{target}` is neither a registered folder (`floe list`) nor a repository URL: {e}"
            ),
        )
    })?;
    Ok(GateTarget {
        repo,
        branch: branch.unwrap_or("main").to_string(),
        group: "/".into(),
        checks: GateOptions::default(),
        folder: None,
    })
}

/// Release or drop what the gate of `t` holds; a running engine looks at the folder
/// again at once (not running: the decision stands, the next start takes it).
pub async fn decide(socket: &Path, t: &GateTarget, verdict: Verdict) -> Result<Decision, ApiError> {
    let decision = match verdict {
        Verdict::Release => {
            floe_sync::gate::release(&t.repo, &t.branch, &t.group, &t.checks).await?
        }
        Verdict::Drop => {
            floe_sync::gate::drop_held(&t.repo, &t.branch, &t.group, &t.checks).await?
        }
    };
    if let Some(folder) = &t.folder {
        let req = Request::Rescan { folder: Some(folder.clone()) };
        match daemon::request(socket, &req).await {
            Ok(_) | Err(daemon::DaemonError::NotRunning(_)) => {}
            Err(e) => tracing::warn!("the engine was not told of the gate decision: {e}"),
        }
    }
    Ok(decision)
}
