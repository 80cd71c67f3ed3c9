//! The one API that the shells call: the `floe` CLI and the desktop app's Tauri
//! commands are thin delegations into these functions, so both see the same folders,
//! the same engine and the same words.
//!
//! - [`error`]: failures as `{code, message}`, by an explicit table.
//! - [`folders`]: register, list and remove sync folders; test a destination and keep
//!   its secret in the OS keychain before a folder is saved.
//! - [`engine`]: reach the user's engine (a running `floe daemon`, or one this process
//!   hosts when none runs) for status, pause, resume and reload.
//! - [`words`]: folder states in words a lab technician understands; the overall state.
//! - [`history`]: a branch's commits with their provenance; a variable's latest records.
//! - [`notices`]: which desktop notifications the status calls for, once each.
//! - [`mounts`]: mount, list and unmount repositories; open a folder in the file manager.
//! - [`sync`]: a one-shot sync of a folder; [`inspect`]: what a sync would do with a
//!   file; [`doctor`]: check a destination; [`login`]: keep or forget its login.
//! - [`verify`]: compare a folder's files with what the repository holds, values read back.
//! - [`gate`]: release or drop what a folder's validation gate holds.
//! - [`retention`]: expire, garbage-collect, and the bytes by kind.

pub mod catalog;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod folders;
pub mod gate;
pub mod history;
pub mod inspect;
pub mod login;
pub mod mounts;
pub mod notices;
pub mod retention;
pub mod stats;
pub mod sync;
pub mod verify;
pub mod words;

pub use error::ApiError;
