//! Check a destination: credentials, reachability, permissions, upload throughput.

pub use floe_store::doctor::{Check, Diagnosis, Outcome};

use floe_core::{ErrorCode, RepoUrl};

use crate::ApiError;

/// Diagnose `repo`, uploading (and deleting again) `probe_bytes` to measure the
/// throughput (0 skips it).
pub async fn diagnose(repo: &str, probe_bytes: u64) -> Result<Diagnosis, ApiError> {
    let url = RepoUrl::parse(repo)?;
    Ok(floe_store::doctor::diagnose(&url, probe_bytes).await)
}

/// The exit status a diagnosis calls for: the failure's, 0 when healthy, else a
/// storage failure (a check failed without an error).
pub fn exit_code(d: &Diagnosis) -> i32 {
    match &d.error {
        Some(e) => e.code().exit_code(),
        None if d.healthy() => 0,
        None => ErrorCode::Storage.exit_code(),
    }
}
