use floe_core::ErrorCode;
use floe_plan::PlanError;
use floe_source::SourceError;
use floe_store::StoreError;

/// Why one file was not ingested, or why the whole run stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{file}: {source}")]
    Plan { file: String, source: PlanError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{file}: already ingested with other content ({how}; hash {old} then, {new} now); Floe never overwrites committed records (a file that only grew by new records is taken again): rename the file if it is new data, or restore the original"
    )]
    ChangedSinceIngest { file: String, how: String, old: String, new: String },
    #[error(
        "{file}: static variable `{path}` differs from what the repository holds; the repository was left unchanged. If the change is real (e.g. a recalibrated instrument), send this file to another branch or group (--branch / --group)"
    )]
    StaticChanged { file: String, path: String },
    #[error("{file}: {detail}")]
    Reencode { file: String, detail: String },
    #[error("{0}: the folder does not exist or cannot be read; check the path and permissions")]
    Folder(String),
    #[error("{file} drifted, and the folder cannot go on elsewhere: {detail}")]
    Drift { file: String, detail: String },
}

impl IngestError {
    /// Explicit table from failure to stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            IngestError::Source(_) => ErrorCode::BadSource,
            IngestError::Plan { source, .. } => match source {
                PlanError::Order(_) => ErrorCode::RecordOrder,
                PlanError::AppendDimMissing(_) => ErrorCode::BadSource,
                PlanError::Drift { .. }
                | PlanError::TimeUnits { .. }
                | PlanError::WholeDiffers { .. } => ErrorCode::SchemaDrift,
            },
            IngestError::Store(e) => e.code(),
            IngestError::ChangedSinceIngest { .. } => ErrorCode::ChangedSinceIngest,
            IngestError::StaticChanged { .. } => ErrorCode::SchemaDrift,
            IngestError::Reencode { .. } => ErrorCode::SchemaDrift,
            IngestError::Folder(_) | IngestError::Drift { .. } => ErrorCode::Usage,
        }
    }

    /// What drifted, without the advice that follows it in the message (for a
    /// folder that goes on elsewhere, where that advice does not apply); `None`
    /// for a failure that is not a schema drift.
    pub fn drift(&self) -> Option<String> {
        match self {
            IngestError::Plan { source, .. } => match source {
                PlanError::Drift { path, what } => Some(format!("`{path}`: {what}")),
                PlanError::WholeDiffers { path, what } => {
                    Some(format!("`{path}` differs from the repository's: {what}"))
                }
                PlanError::TimeUnits { path, found, expected } => Some(format!(
                    "time units of `{path}` are `{found}`, the repository's `{expected}`"
                )),
                PlanError::Order(_) | PlanError::AppendDimMissing(_) => None,
            },
            IngestError::StaticChanged { path, .. } => {
                Some(format!("static variable `{path}` differs from the repository's"))
            }
            IngestError::Reencode { detail, .. } => Some(detail.clone()),
            IngestError::Source(_)
            | IngestError::Store(_)
            | IngestError::ChangedSinceIngest { .. }
            | IngestError::Folder(_)
            | IngestError::Drift { .. } => None,
        }
    }

    /// True when the failure belongs to one file (the run goes on with the others).
    pub fn is_per_file(&self) -> bool {
        match self {
            IngestError::Source(_)
            | IngestError::Plan { .. }
            | IngestError::ChangedSinceIngest { .. }
            | IngestError::StaticChanged { .. }
            | IngestError::Reencode { .. } => true,
            IngestError::Store(StoreError::Array { .. }) => true,
            IngestError::Store(_) | IngestError::Folder(_) | IngestError::Drift { .. } => false,
        }
    }
}
