/// Why a filesystem operation failed. The FUSE adapter maps every variant to an
/// errno by an explicit table (no catch-all arm).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("no such file or folder")]
    NotFound,
    #[error("not a folder")]
    NotADirectory,
    #[error("is a folder")]
    IsADirectory,
    #[error("the mount is read-only")]
    ReadOnly,
    #[error("no such open file (stale handle)")]
    BadHandle,
    /// Another reader is fetching this chunk already (what a read-ahead that must
    /// not wait is told; a reader waits for that fetch instead).
    #[error("the chunk is being fetched by another reader")]
    FetchUnderWay,
    /// The repository could not answer (unreachable, timed out, damaged).
    #[error("repository unavailable: {0}")]
    Unavailable(String),
}
