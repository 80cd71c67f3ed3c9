//! What Floe mounts: an Icechunk repository as a read-only tree of folders.
//!
//! ```text
//! <mountpoint>/branches/<branch>/   follows the tip; an open file stays on the snapshot it was opened at
//! <mountpoint>/tags/<tag>/
//! <mountpoint>/snapshots/<snapshot-id>/
//! <mountpoint>/by-time/<UTC commit time>/   one folder per commit of the main branch
//! ```
//!
//! Each of those folders is a plain Zarr v3 hierarchy. This crate holds the whole
//! filesystem meaning (path resolution, inode table, listings, attributes, caches,
//! read-ahead) behind [`Vfs`], which knows nothing of FUSE: the `floe-fuse` adapter
//! only translates kernel requests into [`Vfs`] calls. The repository is reached
//! through the [`Backend`] trait: [`IcechunkBackend`] for real repositories, an
//! in-memory one in tests.

mod backend;
mod cache;
pub mod catalog;
mod error;
mod icechunk_backend;
mod layout;
pub mod names;
mod tree;
mod vfs;

#[cfg(test)]
mod model_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use backend::{Backend, ChunkEntry, Commit, Node, NodeKind, Refs};
pub use catalog::{Catalog, PrefixListing, Single};
pub use error::MountError;
pub use icechunk_backend::{IcechunkBackend, IcechunkCatalog};
pub use layout::{KeyEncoding, Layout};
pub use vfs::{
    Attr, DirEntry, IMMUTABLE_TTL, Kind, OpenFile, ROOT_INO, Vfs, VfsOptions, time_label,
};
