//! What a folder's state means, in words for the people at the instrument, and the
//! one overall state the tray icon shows. Pure functions of the daemon's status.

use floe_core::ErrorCode;
use floe_engine::daemon::FolderStatus;
use floe_engine::state::{FolderState, Stall};
use floe_engine::verification::{LastVerification, Scope};
use floe_sync::verify::Verdict;
use serde::Serialize;

/// The whole engine at a glance (the tray icon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Every folder is up to date (or there are none).
    Synced,
    /// Something is being checked or uploaded, or waits for a file to finish.
    Syncing,
    /// Every folder is paused.
    Paused,
    /// A folder stopped or cannot reach its storage: someone should look.
    Attention,
}

impl Overall {
    pub fn label(self) -> &'static str {
        match self {
            Overall::Synced => "All synced",
            Overall::Syncing => "Syncing",
            Overall::Paused => "Paused",
            Overall::Attention => "Needs attention",
        }
    }
}

/// One folder as the app shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderView {
    pub path: String,
    pub repo: String,
    pub branch: String,
    /// The machine state: idle, scanning, waiting, syncing, paused, offline, error.
    pub state: String,
    /// A few words: "Up to date", "Uploading 3 files", …
    pub headline: String,
    /// A sentence with the numbers behind the headline.
    pub detail: String,
    /// What went wrong and what to do, when someone should act or know.
    pub problem: Option<String>,
    pub needs_attention: bool,
    pub paused: bool,
    pub files_pending: u64,
    pub bytes_pending: u64,
    pub files_ingested: u64,
    /// Bytes per second over the last sync cycle.
    pub throughput: f64,
    pub last_commit: Option<String>,
    /// The last verification in a sentence (none: the folder has not been verified
    /// since the engine started).
    pub verification: Option<String>,
    /// The validation gate holds these files (empty: it holds nothing); the app
    /// offers to release or drop them.
    pub held_files: Vec<String>,
    /// The folder went on in a new branch or repository after a schema drift, in a
    /// sentence (none: it did not since the engine started).
    pub drift: Option<String>,
    /// The last retention run (`keep`) in a sentence (none: not run since the
    /// engine started).
    pub retention: Option<String>,
    /// Files Floe could not sync, each with its reason; the ones not ignored make
    /// the folder need attention.
    pub rejected: Vec<floe_engine::attention::RejectedFile>,
}

/// `1.2 MB`, `340 kB`, `12 B`.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0} kB", n / 1e3)
    } else {
        format!("{n:.0} B")
    }
}

fn files(n: u64) -> String {
    if n == 1 { "1 file".into() } else { format!("{n} files") }
}

/// The advice that goes with a stopped folder, by error code.
fn remedy(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Storage => {
            "Check the destination's login (Folders → remove and add it again with the right key) and that the bucket or container exists."
        }
        ErrorCode::Conflict => {
            "Another computer wrote the same data to this branch. Sync this folder to its own branch, then resume."
        }
        ErrorCode::Repository => {
            "The repository could not be opened or written. Check the destination, then resume."
        }
        ErrorCode::Usage => {
            "A setting of this folder is wrong. Remove the folder and add it again."
        }
        ErrorCode::SchemaDrift
        | ErrorCode::RecordOrder
        | ErrorCode::ChangedSinceIngest
        | ErrorCode::BadSource => "The file was set aside; the other files keep flowing.",
        ErrorCode::Internal => "This is a bug in Floe; please report it with the log.",
    }
}

/// The last verification in a sentence.
fn verification(v: &LastVerification) -> String {
    let what = match v.scope {
        Scope::Commit => "Last commit read back",
        Scope::Full => "Last full verification",
    };
    match v.verdict {
        Verdict::Verified => format!("{what} ({}): {}", v.at, v.summary),
        Verdict::Behind => format!("{what} ({}): {}", v.at, v.summary),
        Verdict::Damaged => format!(
            "{what} ({}): the repository differs from its files. {} Run `floe verify` for every detail.",
            v.at,
            v.findings.first().map_or("", String::as_str)
        ),
    }
}

/// Describe one folder.
pub fn describe(s: &FolderStatus) -> FolderView {
    let state = s.state.name().to_string();
    let pending = format!("{} ({}) to upload", files(s.files_pending), bytes(s.bytes_pending));
    let done = match &s.last_commit {
        Some(_) => format!("{} synced since start", files(s.files_ingested)),
        None => "Nothing new synced since start".to_string(),
    };
    let (headline, detail, problem) = match &s.state {
        FolderState::Idle => ("Up to date".to_string(), done.clone(), None),
        FolderState::Scanning => ("Checking for new files".to_string(), done.clone(), None),
        FolderState::Waiting { files: n } => (
            format!("Waiting for {} to finish", files(*n)),
            "The instrument is still writing; Floe uploads a file once it is complete.".to_string(),
            None,
        ),
        FolderState::Syncing { .. } => (
            format!("Uploading {}", files(s.files_pending)),
            format!("{pending}; {:.1} MB/s", s.throughput / 1e6),
            None,
        ),
        FolderState::Paused => {
            ("Paused".to_string(), "Resume to continue syncing.".to_string(), None)
        }
        FolderState::Offline { message, cause: Stall::Unreachable, .. } => (
            "Can't reach the storage".to_string(),
            "Floe keeps the files and retries on its own; nothing is lost.".to_string(),
            Some(format!("The storage did not answer: {message}")),
        ),
        FolderState::Offline { message, cause: Stall::Failing, .. } => (
            "The storage is failing".to_string(),
            "It answers with errors; Floe keeps the files and retries on its own; nothing is lost."
                .to_string(),
            Some(message.clone()),
        ),
        FolderState::Offline { message, cause: Stall::Busy, .. } => (
            "Waiting for another writer".to_string(),
            "Another Floe process is writing to this repository; Floe retries on its own."
                .to_string(),
            Some(message.clone()),
        ),
        FolderState::Offline { message, cause: Stall::DiskFull, .. } => (
            "The disk is full".to_string(),
            "Floe keeps the files and retries once there is space; nothing is lost.".to_string(),
            Some(message.clone()),
        ),
        FolderState::Error { code, message } => (
            "Stopped".to_string(),
            "This folder is not syncing until the problem is fixed.".to_string(),
            Some(format!("{message}. {}", remedy(*code))),
        ),
    };
    // the gate holds: nothing new reaches the branch until someone decides
    let (headline, detail, problem) = match &s.gate_held {
        Some(h) if state != "error" => (
            "Held at the gate".to_string(),
            format!(
                "{} on the staging branch; {} does not move until they are released or dropped.",
                match h.files.len() {
                    1 => "1 file waits".to_string(),
                    n => format!("{n} files wait"),
                },
                s.branch
            ),
            Some(held(h)),
        ),
        _ => (headline, detail, problem),
    };
    // files that could not be synced: never "up to date", whatever else flows
    let refused = floe_engine::attention::counted(&s.rejected);
    let (headline, detail, problem) = match (&s.state, refused) {
        (FolderState::Idle | FolderState::Scanning | FolderState::Waiting { .. }, 1..)
            if s.gate_held.is_none() =>
        {
            (
                format!("Needs attention: {} could not be synced", files(refused as u64)),
                "Each is left where it is and the other files keep flowing: fix, replace or remove it, or mark it ignored.".to_string(),
                // (each file is in `rejected` with its reason: no need to say one twice)
                problem,
            )
        }
        _ => (headline, detail, problem),
    };
    // a file set aside is worth knowing even while everything else flows
    let problem = problem.or_else(|| {
        s.last_error.as_ref().filter(|_| state != "paused").map(|e| format!("Last problem: {e}"))
    });
    let damaged = s.last_verification.as_ref().is_some_and(|v| v.verdict == Verdict::Damaged);
    FolderView {
        path: s.path.display().to_string(),
        repo: s.repo.clone(),
        branch: s.branch.clone(),
        needs_attention: matches!(state.as_str(), "error" | "offline")
            || damaged
            || s.gate_held.is_some()
            || (refused > 0 && state != "paused"),
        paused: state == "paused",
        state,
        headline,
        detail,
        problem,
        files_pending: s.files_pending,
        bytes_pending: s.bytes_pending,
        files_ingested: s.files_ingested,
        throughput: s.throughput,
        last_commit: s.last_commit.clone(),
        verification: s.last_verification.as_ref().map(verification),
        held_files: s.gate_held.as_ref().map(|h| h.files.clone()).unwrap_or_default(),
        drift: s.went_on.as_ref().map(went_on),
        retention: s.last_retention.as_ref().map(retention),
        rejected: s.rejected.clone(),
    }
}

/// `History kept: at …, 95 snapshots expired, 12.9 MB freed.`
fn retention(r: &floe_engine::retention::LastRetention) -> String {
    match &r.error {
        None => format!(
            "History trimmed at {}: {} old snapshot(s) expired, {} freed.",
            r.at,
            r.expired,
            bytes(r.bytes_freed)
        ),
        Some(e) => format!(
            "Trimming the history at {} did not finish ({e}); it is tried again later.",
            r.at
        ),
    }
}

/// `Went on in branch drift-… (from main) on …: <reason>; …`.
fn went_on(w: &floe_engine::daemon::WentOn) -> String {
    let to = if w.repo == w.from_repo {
        format!("branch {} (from {})", w.branch, w.from_branch)
    } else {
        format!("repository {} (from {})", w.repo, w.from_repo)
    };
    format!(
        "Schema drift at {}: went on in {to}, starting with {}. {}. The data before it stays where it was; `floe verify` follows the folder back there.",
        w.at,
        w.files.first().map_or("the drifted file", String::as_str),
        w.reason
    )
}

/// `held: <check> failed on <file>: <what>; <what to do>`, for the first failure
/// (the others follow, counted).
fn held(h: &floe_engine::daemon::GateHeld) -> String {
    let first =
        h.failures.first().map_or_else(|| "a check failed".to_string(), ToString::to_string);
    match h.failures.len() {
        0 | 1 => format!("held: {first}"),
        _ => {
            let others: Vec<&str> = h.failures[1..].iter().map(|f| f.check.name()).collect();
            format!("held: {first} (also failed: {})", others.join(", "))
        }
    }
}

/// The state of all folders together: attention wins, then syncing, then paused
/// (only if every folder is paused), else synced.
pub fn overall(folders: &[FolderView]) -> Overall {
    if folders.iter().any(|f| f.needs_attention) {
        Overall::Attention
    } else if folders.iter().any(|f| matches!(f.state.as_str(), "scanning" | "waiting" | "syncing"))
    {
        Overall::Syncing
    } else if !folders.is_empty() && folders.iter().all(|f| f.paused) {
        Overall::Paused
    } else {
        Overall::Synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(state: serde_json::Value) -> FolderStatus {
        FolderStatus {
            files_pending: 3,
            bytes_pending: 12_500_000,
            files_ingested: 7,
            last_commit: Some("ABC".into()),
            throughput: 2.5e6,
            ..FolderStatus::new(
                "/data/ctd".into(),
                "s3://lab/ctd".into(),
                "main".into(),
                serde_json::from_value(state).unwrap(),
            )
        }
    }

    #[test]
    fn a_drift_says_where_the_folder_went_on_without_needing_attention() {
        let mut s = status(json!({"state": "idle"}));
        s.went_on = Some(floe_engine::daemon::WentOn {
            at: "2026-12-04T12:00:00Z".into(),
            reason: "`co2` is float32 in the file, float64 in the repository".into(),
            from_repo: "s3://lab/ctd".into(),
            from_branch: "main".into(),
            repo: "s3://lab/ctd".into(),
            branch: "drift-2024-01-01T00-45-00Z".into(),
            files: vec!["site_20240101_0045.nc".into()],
        });
        let v = describe(&s);
        assert!(!v.needs_attention && v.problem.is_none());
        let line = v.drift.unwrap();
        assert!(
            line.starts_with("Schema drift at 2026-12-04T12:00:00Z: went on in branch drift-2024-01-01T00-45-00Z (from main), starting with site_20240101_0045.nc. `co2` is float32"),
            "{line}"
        );
        if let Some(w) = s.went_on.as_mut() {
            w.repo = "s3://lab/ctd-2024-01-01T00-45-00Z".into();
            w.branch = "main".into();
        }
        let line = describe(&s).drift.unwrap();
        assert!(
            line.contains(
                "went on in repository s3://lab/ctd-2024-01-01T00-45-00Z (from s3://lab/ctd)"
            ),
            "{line}"
        );
    }

    #[test]
    fn words_for_every_state() {
        let v = describe(&status(json!({"state": "syncing", "files": 3, "bytes": 12_500_000})));
        assert_eq!(v.headline, "Uploading 3 files");
        assert_eq!(v.detail, "3 files (12.5 MB) to upload; 2.5 MB/s");
        assert!(!v.needs_attention);
        let v = describe(&status(json!({"state": "idle"})));
        assert_eq!(v.headline, "Up to date");
        assert_eq!(v.detail, "7 files synced since start");
        let v = describe(&status(json!({"state": "waiting", "files": 1})));
        assert_eq!(v.headline, "Waiting for 1 file to finish");
        let v =
            describe(&status(json!({"state": "offline", "attempt": 2, "message": "timed out"})));
        assert!(v.needs_attention);
        assert!(v.problem.unwrap().contains("timed out"));
        let v = describe(&status(json!({"state": "offline", "attempt": 1, "cause": "disk_full",
            "message": "/data/repo: no space left on the disk that holds it"})));
        assert_eq!(v.headline, "The disk is full");
        assert!(v.needs_attention && v.problem.unwrap().contains("no space left"));
        let v = describe(&status(
            json!({"state": "error", "code": "storage", "message": "the key was refused"}),
        ));
        assert_eq!(v.headline, "Stopped");
        let p = v.problem.unwrap();
        assert!(p.starts_with("the key was refused. Check the destination's login"), "{p}");
        let v = describe(&status(json!({"state": "paused"})));
        assert!(v.paused && v.problem.is_none());
    }

    #[test]
    fn a_set_aside_file_shows_while_the_rest_flows() {
        let mut s = status(json!({"state": "idle"}));
        s.last_error = Some("b.nc: truncated".into());
        let v = describe(&s);
        assert!(!v.needs_attention);
        assert_eq!(v.problem.as_deref(), Some("Last problem: b.nc: truncated"));
    }

    #[test]
    fn files_that_could_not_be_synced_are_never_all_synced_unless_ignored() {
        let mut s = status(json!({"state": "idle"}));
        let refused = |file: &str, why: &str| floe_engine::attention::RejectedFile {
            file: file.into(),
            code: ErrorCode::BadSource,
            message: format!("{file}: {why}"),
            since: "2026-12-07T07:00:00Z".into(),
            ignored: false,
        };
        s.rejected =
            vec![refused("notes.nc", "not a NetCDF file"), refused("trunc.nc", "truncated")];
        let v = describe(&s);
        assert!(v.needs_attention);
        assert_eq!(v.headline, "Needs attention: 2 files could not be synced");
        assert_eq!(v.problem, None, "each file is listed with its reason, once");
        assert_eq!(overall(&[v]), Overall::Attention);
        s.rejected[0].ignored = true;
        let v = describe(&s);
        assert_eq!(v.headline, "Needs attention: 1 file could not be synced");
        assert_eq!(v.rejected.iter().filter(|r| !r.ignored).count(), 1);
        s.rejected[1].ignored = true;
        let v = describe(&s);
        assert!(!v.needs_attention);
        assert_eq!(v.headline, "Up to date");
        assert_eq!(v.rejected.len(), 2, "ignored files stay listed");
        assert_eq!(overall(&[v]), Overall::Synced);
    }

    #[test]
    fn a_damaged_repository_needs_attention_while_the_files_keep_flowing() {
        let mut s = status(json!({"state": "idle"}));
        s.last_verification = Some(LastVerification {
            scope: Scope::Full,
            at: "2026-12-02T08:00:00Z".into(),
            verdict: Verdict::Damaged,
            snapshot: "ABC".into(),
            summary: "3 of 4 files verified".into(),
            findings: vec!["a.nc: the repository differs from the file".into()],
        });
        let v = describe(&s);
        assert!(v.needs_attention);
        assert_eq!(v.headline, "Up to date");
        let line = v.verification.unwrap();
        assert!(
            line.starts_with(
                "Last full verification (2026-12-02T08:00:00Z): the repository differs"
            ),
            "{line}"
        );
        assert!(line.contains("a.nc: the repository differs from the file"), "{line}");
        if let Some(v) = s.last_verification.as_mut() {
            v.verdict = Verdict::Verified;
        }
        assert!(!describe(&s).needs_attention);
    }

    #[test]
    fn overall_state_priorities() {
        let v = |s: serde_json::Value| describe(&status(s));
        assert_eq!(overall(&[]), Overall::Synced);
        assert_eq!(overall(&[v(json!({"state": "idle"}))]), Overall::Synced);
        assert_eq!(
            overall(&[v(json!({"state": "idle"})), v(json!({"state": "paused"}))]),
            Overall::Synced
        );
        assert_eq!(overall(&[v(json!({"state": "paused"}))]), Overall::Paused);
        assert_eq!(
            overall(&[v(json!({"state": "paused"})), v(json!({"state": "scanning"}))]),
            Overall::Syncing
        );
        assert_eq!(
            overall(&[
                v(json!({"state": "syncing", "files": 1, "bytes": 1})),
                v(json!({"state": "error", "code": "conflict", "message": "m"}))
            ]),
            Overall::Attention
        );
    }
}
