//! Sync pipeline: folder in, commits out.
//!
//! [`scan`] finds candidate files, [`ingest::Ingest`] runs the one-shot pipeline
//! (complete? → already ingested? → order by data time → plan → write → commit with
//! provenance) and returns a [`report::Report`]; [`verify::Verify`] reads back what
//! the repository holds of each file and compares it with the file, value by value.

pub mod drift;
pub mod erase;
pub mod error;
pub mod gate;
pub mod ingest;
pub mod report;
pub mod scan;
pub mod settings;
pub mod stats;
pub mod verify;

pub use error::IngestError;
pub use ingest::{
    Clock, HashMemo, Ingest, IngestOptions, Progress, SystemClock, Trigger, plan_against,
};
pub use report::Report;
