//! Stable error codes. Every failure Floe reports maps onto one of these by an
//! explicit table (no catch-all arm), and each code maps onto a CLI exit code.

use serde::{Deserialize, Serialize};

/// Exit code of a run that finished everything it could but left files that are
/// provably still being written (listed as waiting): run again later.
pub const EXIT_WORK_REMAINS: i32 = 6;

/// Exit code of a gated run whose checks failed: the branch did not move, the
/// staging branch holds the files until `floe gate release` or `floe gate drop`.
pub const EXIT_GATE_HELD: i32 = 8;

/// A stable, machine-readable failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The command line or a setting is wrong.
    Usage,
    /// A source file could not be read (truncated, corrupt, not NetCDF/Zarr, permission).
    BadSource,
    /// A source file does not fit what the repository holds.
    SchemaDrift,
    /// Records would go backwards in time or repeat.
    RecordOrder,
    /// A file already ingested has changed since.
    ChangedSinceIngest,
    /// The repository could not be opened or written.
    Repository,
    /// Two writers changed the same data; the commit could not be rebased.
    Conflict,
    /// Storage could not be reached.
    Storage,
    /// A bug in Floe.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (the UI's `ui/src/codes.ts` lists the same,
    /// checked by a test in floe-api).
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::Usage,
        ErrorCode::BadSource,
        ErrorCode::SchemaDrift,
        ErrorCode::RecordOrder,
        ErrorCode::ChangedSinceIngest,
        ErrorCode::Repository,
        ErrorCode::Conflict,
        ErrorCode::Storage,
        ErrorCode::Internal,
    ];

    /// The code as text, as it appears in `--json` output and the GUI.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "usage",
            ErrorCode::BadSource => "bad_source",
            ErrorCode::SchemaDrift => "schema_drift",
            ErrorCode::RecordOrder => "record_order",
            ErrorCode::ChangedSinceIngest => "changed_since_ingest",
            ErrorCode::Repository => "repository",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Storage => "storage",
            ErrorCode::Internal => "internal",
        }
    }

    /// Process exit code of the CLI when this is the reason it stops.
    ///
    /// 0 is success; 1 means some files were rejected (the others were ingested);
    /// the codes below are for failures that stop the whole command.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorCode::BadSource
            | ErrorCode::SchemaDrift
            | ErrorCode::RecordOrder
            | ErrorCode::ChangedSinceIngest => 1,
            ErrorCode::Usage => 2,
            ErrorCode::Repository => 3,
            ErrorCode::Storage => 4,
            ErrorCode::Conflict => 5,
            ErrorCode::Internal => 70,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Its place in [`ErrorCode::ALL`]; no catch-all arm, so a new code does not
    /// compile until it has a place (and the test below fails until it is listed).
    fn place(c: ErrorCode) -> usize {
        match c {
            ErrorCode::Usage => 0,
            ErrorCode::BadSource => 1,
            ErrorCode::SchemaDrift => 2,
            ErrorCode::RecordOrder => 3,
            ErrorCode::ChangedSinceIngest => 4,
            ErrorCode::Repository => 5,
            ErrorCode::Conflict => 6,
            ErrorCode::Storage => 7,
            ErrorCode::Internal => 8,
        }
    }

    #[test]
    fn all_lists_every_code_once_and_serializes_as_its_text() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(place(*c), i);
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }
}
