//! How a source file maps onto a repository (`floe inspect`), writing nothing.

use std::path::Path;

use floe_plan::{Plan, Settings};
pub use floe_source::{Dataset, Group};
use serde::Serialize;

use crate::ApiError;

/// What `floe inspect` shows.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub dataset: Dataset,
    /// The dimensions its records are appended along, or why there are none.
    pub append_dims: Result<Vec<String>, String>,
    /// The plan into an empty repository (its arrays and chunks), or why none.
    pub plan: Result<Plan, String>,
    /// Against `repo` (when one was given): what a sync would do, in a sentence.
    pub would: Option<String>,
}

/// Inspect `file`; with `repo`, also say what a sync into its `branch` would do.
pub async fn inspect(
    file: &Path,
    repo: Option<&str>,
    branch: &str,
    settings: &Settings,
) -> Result<Inspection, ApiError> {
    let reader = floe_source::open(file)?;
    let would = match repo {
        Some(r) => {
            let url = floe_core::RepoUrl::parse(r)?;
            Some(match floe_sync::plan_against(file, &url, branch, settings).await {
                Ok(p) => would(&p),
                Err(e) => format!("would be refused: {e}"),
            })
        }
        None => None,
    };
    let ds = reader.dataset().clone();
    let append_dims = floe_plan::append_dims(&ds, settings).map_err(|e| e.to_string());
    let plan = match &append_dims {
        Ok(_) => floe_plan::plan(&ds, &Default::default(), &Default::default(), settings)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.clone()),
    };
    Ok(Inspection { dataset: ds, append_dims, plan, would })
}

/// What a plan does, in a sentence.
pub fn would(p: &Plan) -> String {
    if p.whole_again {
        return "would be compared with what the repository holds (no record dimension): skipped if equal, refused as drift otherwise".into();
    }
    if p.append_dims.is_empty() {
        return "would be stored whole (no record dimension)".into();
    }
    let parts: Vec<String> = p
        .records
        .iter()
        .map(|(d, n)| {
            format!("{n} records along {d} from record {}", p.offsets.get(d).copied().unwrap_or(0))
        })
        .collect();
    format!("would append {}", parts.join(", "))
}
