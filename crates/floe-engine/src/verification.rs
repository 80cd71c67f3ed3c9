//! The daemon's verifications of a folder: each commit read back from the storage
//! after it is made (a folder setting, off by default), and the whole folder on a
//! schedule. The last result is part of the folder's status.

use std::collections::BTreeSet;

use floe_core::RepoUrl;
use floe_sync::IngestError;
use floe_sync::verify::{Verdict, Verify, VerifyOptions};
use serde::{Deserialize, Serialize};

use crate::config::FolderConfig;

/// Findings kept in the status (all of them with `floe verify`).
const FINDINGS_SHOWN: usize = 5;

/// What a verification covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The files of the commit just made, read back at that commit.
    Commit,
    /// Every file of the folder, at the branch's tip.
    Full,
}

/// The last verification of a folder, as `floe status` and the app show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastVerification {
    pub scope: Scope,
    /// When it finished, RFC 3339 UTC.
    pub at: String,
    pub verdict: Verdict,
    pub snapshot: String,
    pub summary: String,
    /// The first findings, one line each.
    pub findings: Vec<String>,
}

/// Verify `folder`'s files against its repository: at `snapshot` and only `files`
/// (a read-after-write check), or everything at the branch's tip.
pub async fn verify(
    folder: &FolderConfig,
    url: &RepoUrl,
    after_commit: Option<(String, BTreeSet<String>)>,
) -> Result<LastVerification, IngestError> {
    let mut o = VerifyOptions::new(folder.path.clone(), url.clone());
    o.branch = folder.branch.clone();
    o.group = folder.group.clone();
    o.patterns = folder.patterns.clone();
    let scope = match after_commit {
        Some((snapshot, files)) => {
            o.snapshot = Some(snapshot);
            o.only = Some(files);
            Scope::Commit
        }
        None => Scope::Full,
    };
    let report = Verify { opts: o, progress: &|_| {} }.run().await?;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(LastVerification {
        scope,
        at,
        verdict: report.verdict(),
        snapshot: report.snapshot.clone(),
        summary: report.summary(),
        findings: report.findings.iter().take(FINDINGS_SHOWN).map(|f| f.to_string()).collect(),
    })
}
