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
        "{0}: the bucket or container does not exist; create it first (Floe does not create buckets), or fix the name"
    )]
    MissingBucket(String),
    #[error(
        "{repo}: the storage refused the credentials ({detail}); check the access key and secret (AWS_* / AZURE_* variables) and their permissions"
    )]
    Credentials { repo: String, detail: String },
    #[error(
        "{repo}: storage unreachable ({detail}); check the network and the endpoint, then run again"
    )]
    Unreachable { repo: String, detail: String },
    #[error(
        "{repo}: the storage keeps answering with errors ({detail}); Floe retried and tries again later (the daemon by itself): if it lasts, check the storage service's status"
    )]
    Failing { repo: String, detail: String },
    #[error(
        "{repo}: no space left on the disk that holds it ({detail}); free space there (`df -h` shows what is left), then run again: nothing was committed half way, and the files stay where they are"
    )]
    DiskFull { repo: String, detail: String },
    #[error(
        "{repo}: permission denied ({detail}); Floe runs as user `{user}`, who cannot write there: fix the folder's owner or permissions (`ls -ld` shows them), or run Floe as a user who can"
    )]
    NoPermission { repo: String, user: String, detail: String },
    #[error(
        "another Floe process is writing to {0}; wait for it to finish (local repositories take one writer at a time)"
    )]
    Busy(String),
    #[error(
        "another writer keeps committing to the same arrays of branch `{0}`, and replaying on top of it failed several times; give each writer its own group (--group) or branch, then run again (nothing was lost: the files are ingested on the next run)"
    )]
    Conflict(String),
    #[error(
        "`{snapshot}` is not a snapshot id ({detail}); `floe log` lists the snapshots of {repo}"
    )]
    BadSnapshotId { repo: String, snapshot: String, detail: String },
    #[error(
        "{repo}: an object the repository refers to is missing ({detail}); the repository is damaged there: `floe verify` names the files and records affected"
    )]
    MissingObject { repo: String, detail: String },
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
            | StoreError::MissingObject { .. }
            | StoreError::Array { .. } => ErrorCode::Repository,
            StoreError::MissingBucket(_) | StoreError::Credentials { .. } => ErrorCode::Storage,
            StoreError::Unreachable { .. } | StoreError::Failing { .. } => ErrorCode::Storage,
            StoreError::Busy(_) | StoreError::NoPermission { .. } => ErrorCode::Repository,
            StoreError::BadSnapshotId { .. } => ErrorCode::Usage,
            StoreError::DiskFull { .. } => ErrorCode::Storage,
            StoreError::Conflict(_) => ErrorCode::Conflict,
        }
    }
}
