//! Icechunk repositories, as Floe uses them.
//!
//! [`Repo`] opens or creates a repository (configured with manifest splitting along
//! the append dimensions, so commit cost does not grow with history), lists its
//! history with Floe's provenance, and hands out a [`Writer`]: one writable session
//! on a branch, in which arrays are created, grown and written through `zarrs`, and
//! which ends in exactly one atomic commit (or is discarded, leaving the branch as it was).

pub mod catalog;
pub mod doctor;
mod error;
pub mod filelog;
mod reader;
pub mod remote;
mod repo;
pub mod retention;
pub mod secrets;
pub mod throttle;
pub mod view;
mod writer;

pub use error::StoreError;
pub use reader::Reader;
pub use repo::{CommitInfo, Holdings, MAX_CONTINUATIONS, Repo, continuation_of};
pub use view::{Series, Variable, View};
pub use writer::Writer;
