//! Whether a repository holds, value for value, what a folder's files hold
//! (`floe verify`, the daemon's read-after-write check and its scheduled runs).

pub use floe_sync::verify::{
    Difference, Finding, Problem, Span, Verdict, VerifyOptions, VerifyProgress, VerifyReport, Wrong,
};

use crate::ApiError;

/// Verify `opts.folder` against its repository; `progress` hears of each file.
pub async fn run(
    opts: VerifyOptions,
    progress: &(dyn Fn(&VerifyProgress) + Sync),
) -> Result<VerifyReport, ApiError> {
    let verify = floe_sync::verify::Verify { opts, progress };
    Ok(verify.run().await?)
}
