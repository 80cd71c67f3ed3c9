//! Shared vocabulary of Floe: where a repository lives ([`RepoUrl`]), what every
//! commit records about its source files ([`provenance`]), and the one table that maps
//! failures onto stable codes ([`ErrorCode`]).

pub mod error;
pub mod provenance;
pub mod url;

pub use error::{EXIT_WORK_REMAINS, ErrorCode};
pub use provenance::{CommitProvenance, FileProvenance, PROVENANCE_KEY};
pub use url::{RepoUrl, RepoUrlError};

/// Version of Floe recorded in every commit.
pub const FLOE_VERSION: &str = env!("CARGO_PKG_VERSION");
