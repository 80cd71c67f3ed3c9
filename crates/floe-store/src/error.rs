use floe_core::ErrorCode;

/// A repository failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no Icechunk repository at {0}; check the path, or run `floe sync` to create one there"
    )]
    NotFound(String),
    #[error(
        "{0} is a non-empty directory that is not an Icechunk repository; choose an empty or new directory"
    )]
    NotARepository(String),
    #[error(
        "branch `{branch}` does not exist in {repo}; create it first or pick one listed by `floe log`"
    )]
    NoBranch { repo: String, branch: String },
    #[error(
        "{0}: remote repositories are wired to storage by the background-sync engine, which this build does not include yet; use a local path for now"
    )]
    RemoteNotYetSupported(String),
    #[error(
        "another Floe process is writing to {0}; wait for it to finish (local repositories take one writer at a time)"
    )]
    Busy(String),
    #[error(
        "another writer committed to branch `{0}` at the same time and the change could not be rebased; run the sync again, it resumes where the branch is"
    )]
    Conflict(String),
    #[error("repository {repo}: {detail}")]
    Repository { repo: String, detail: String },
    #[error("array `{path}`: {detail}")]
    Array { path: String, detail: String },
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound(_)
            | StoreError::NotARepository(_)
            | StoreError::NoBranch { .. }
            | StoreError::Repository { .. }
            | StoreError::Array { .. } => ErrorCode::Repository,
            StoreError::RemoteNotYetSupported(_) => ErrorCode::Usage,
            StoreError::Busy(_) => ErrorCode::Repository,
            StoreError::Conflict(_) => ErrorCode::Conflict,
        }
    }
}
