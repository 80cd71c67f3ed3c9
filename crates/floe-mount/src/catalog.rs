//! What a mount shows above its repositories: the prefixes of a bucket, container
//! or folder as folders, and each repository among them as a folder with its own
//! `branches/`, `tags/`, `snapshots/` and `by-time/`. A mount of one repository is
//! the catalog [`Single`]: its root is that repository.

use std::sync::Arc;

pub use floe_store::catalog::PrefixListing;

use crate::{Backend, MountError};

/// The prefixes and repositories a mount shows. Calls block, each bounded by a
/// timeout, like [`Backend`]'s.
pub trait Catalog: Send + Sync + 'static {
    /// What prefix `rel` holds (`""` is the mount's root): whether it is a
    /// repository's root, and the sub-prefixes that may hold more.
    fn list(&self, rel: &str) -> Result<PrefixListing, MountError>;
    /// The repository whose root is `rel`, opened.
    fn open(&self, rel: &str) -> Result<Arc<dyn Backend>, MountError>;
}

/// One repository, shown at the mount's root.
pub struct Single(pub Arc<dyn Backend>);

impl std::fmt::Debug for Single {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Single")
    }
}

impl Catalog for Single {
    fn list(&self, rel: &str) -> Result<PrefixListing, MountError> {
        match rel {
            "" => Ok(PrefixListing { repository: true, children: Vec::new() }),
            _ => Err(MountError::NotFound),
        }
    }

    fn open(&self, rel: &str) -> Result<Arc<dyn Backend>, MountError> {
        match rel {
            "" => Ok(self.0.clone()),
            _ => Err(MountError::NotFound),
        }
    }
}
