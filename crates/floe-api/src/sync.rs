//! A one-shot sync of a folder into a repository branch (`floe sync`).

pub use floe_sync::drift::OnDrift;
pub use floe_sync::{IngestOptions, Progress, Report};

use crate::ApiError;

/// Sync `opts.folder` once; `progress` hears of each step.
pub async fn run(
    opts: IngestOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Report, ApiError> {
    let ingest = floe_sync::Ingest { opts, clock: &floe_sync::SystemClock, progress };
    Ok(ingest.run().await?)
}
