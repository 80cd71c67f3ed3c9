//! Shared vocabulary of Floe: what a source file holds, independent of its format
//! ([`model`]: the planner needs it, the readers fill it in, so it lives below both),
//! where a repository lives ([`RepoUrl`]), what every
//! commit records about its source files ([`provenance`]), and the one table that maps
//! failures onto stable codes ([`ErrorCode`]).

pub mod decoding;
pub mod error;
pub mod fault;
pub mod model;
pub mod provenance;
pub mod url;

pub use error::{EXIT_GATE_HELD, EXIT_WORK_REMAINS, ErrorCode};
pub use provenance::{
    CommitProvenance, Continuation, DeletionRecord, DroppedFile, FileProvenance, GateRecord,
    PROVENANCE_KEY,
};
pub use url::{RepoUrl, RepoUrlError};

/// Lock a mutex whatever a former holder did: the data Floe guards (maps of
/// uploads, statuses, memos) stays consistent even if a holder panicked, and one
/// panicked task must not take the engine down with it.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Version of Floe recorded in every commit.
pub const FLOE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The group at a repository's root where Floe keeps what it derives from the data
/// (per-file statistics, the provenance log): never part of a dataset, left out of
/// every listing Floe makes and of the mount. A dot name, so Zarr readers that list it treat it as
/// hidden, and xarray's `open_zarr` (which reads one group's arrays) never sees it.
pub const OWN_GROUP: &str = "/.floe";

/// Whether an absolute node path (`/.floe/...`) is Floe's own.
pub fn is_own_node(path: &str) -> bool {
    let p = path.strip_prefix('/').unwrap_or(path);
    p == &OWN_GROUP[1..] || p.starts_with(".floe/")
}
