//! Sync pipeline, the engine: what runs unattended.
//!
//! - [`attention`]: the files a folder could not sync, kept from cycle to cycle until
//!   they are removed, fixed, replaced or ignored: a folder with any is never "synced".
//! - [`config`]: the sync folders a user registered (`floe add/remove/list`), as TOML in
//!   the user's config directory. Secrets are never stored there.
//! - [`state`]: the per-folder state machine (idle, scanning, waiting, syncing, paused,
//!   offline, error) as a pure, total transition function; every transition is emitted.
//! - [`retention`]: a folder's `keep`: expire and collect on a schedule, between syncs.
//! - [`verification`]: each commit read back after it is made, and the whole folder on
//!   a schedule, compared with the files (`floe verify`).
//! - [`watch`]: file-system events (debounced) plus periodic full rescans, delivered to
//!   an injected sink; the watcher stops when its handle is dropped.

pub mod attention;
pub mod config;
pub mod daemon;
pub mod memory;
pub mod retention;
pub mod state;
pub mod verification;
pub mod watch;
