//! The validation gate before a branch: a gated folder commits to a staging branch
//! (`floe-staging-<branch>`), the checks run on what it committed, and `<branch>`
//! moves to that snapshot only when they pass. Readers of `<branch>` (and the
//! mount's `branches/<branch>`) only ever see data that passed.
//!
//! A failed check holds the gate: `<branch>` stays, the staging branch keeps the
//! held commits, and the folder takes nothing new until someone decides:
//! [`release`] promotes them anyway, [`drop_held`] discards them and records the
//! dropped files in the repository, so that a restart does not take them again
//! until they change. The state lives in the repository alone (a staging branch
//! ahead of its branch is staged work; it is checked again on the next run), so a
//! crash anywhere neither loses a commit nor lets an unchecked one through.

pub mod checks;
mod evidence;
mod run;

use std::collections::BTreeMap;

use floe_core::{CommitProvenance, DroppedFile, FileProvenance, GateRecord, RepoUrl};
use floe_store::{CommitInfo, Repo, StoreError};
use serde::{Deserialize, Serialize};

pub use evidence::evaluate;

/// The staging branch of `branch`.
pub fn staging_branch(branch: &str) -> String {
    format!("floe-staging-{branch}")
}

/// Which checks a gated folder runs (the config's `[folders.gate]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOptions {
    /// The staged commits keep the branch's schema: no new, changed or gone
    /// variable (on by default).
    #[serde(default = "yes")]
    pub schema: bool,
    /// No record coordinate repeats one the branch or another staged record holds
    /// (on by default).
    #[serde(default = "yes")]
    pub duplicates: bool,
    /// Decoded values within each variable's `valid_range` / `valid_min` /
    /// `valid_max`, where it has them (off by default).
    #[serde(default)]
    pub valid_range: bool,
    /// Decoded values within these limits, by variable name (off by default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Limits>,
    /// At most this share (0..1) of each variable's values in a file may be fill
    /// or NaN (off by default: a radar volume is mostly fill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fill: Option<f64>,
    /// At most this many seconds between consecutive files' records (the branch's
    /// last record and the first staged one included; off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap_secs: Option<f64>,
}

fn yes() -> bool {
    true
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            schema: true,
            duplicates: true,
            valid_range: false,
            limits: BTreeMap::new(),
            max_fill: None,
            max_gap_secs: None,
        }
    }
}

impl GateOptions {
    /// Whether any check reads the variables' values (not only coordinates and
    /// metadata).
    pub fn reads_values(&self) -> bool {
        self.valid_range || !self.limits.is_empty() || self.max_fill.is_some()
    }
}

/// Bounds on decoded values; either side may be open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Limits {
    pub fn holds(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    /// `[a, b]`, with `-inf`/`inf` for an open side.
    pub fn show(&self) -> String {
        let side =
            |v: Option<f64>, open: &str| v.map_or_else(|| open.to_string(), |v| v.to_string());
        format!("[{}, {}]", side(self.min, "-inf"), side(self.max, "inf"))
    }

    /// `MIN:MAX` (either side may be empty), as `--gate-limit VAR=MIN:MAX` takes it.
    pub fn parse(s: &str) -> Result<Limits, String> {
        let (lo, hi) = s.split_once(':').ok_or_else(|| format!("`{s}`: write MIN:MAX"))?;
        let side = |t: &str| -> Result<Option<f64>, String> {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<f64>().map(Some).map_err(|_| format!("`{t}` is not a number"))
        };
        Ok(Limits { min: side(lo)?, max: side(hi)? })
    }
}

/// One check of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Schema,
    Duplicates,
    ValidRange,
    Limits,
    Fill,
    Gap,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Schema => "schema",
            Check::Duplicates => "duplicates",
            Check::ValidRange => "valid range",
            Check::Limits => "limits",
            Check::Fill => "fill",
            Check::Gap => "gap",
        }
    }

    /// What the person at the instrument can do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            Check::Schema => {
                "if the new layout is intended, release the held files (`floe gate release`); otherwise drop them (`floe gate drop`) and fix the instrument's output"
            }
            Check::Duplicates => {
                "a file sent twice under another name, or a clock that went back: drop the held files (`floe gate drop`), or release them if the repeated times are right"
            }
            Check::ValidRange | Check::Limits => {
                "check the instrument; release the held files to keep the values (`floe gate release`), or drop them (`floe gate drop`)"
            }
            Check::Fill => {
                "the instrument may have recorded nothing: check it, then release (`floe gate release`) or drop (`floe gate drop`) the held files"
            }
            Check::Gap => {
                "files may be missing from the folder: add them (they go in after the held ones only if in record order), or release the held files (`floe gate release`)"
            }
        }
    }
}

/// A check that failed, on which file, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub check: Check,
    pub file: String,
    pub what: String,
}

impl Failure {
    pub fn new(check: Check, file: &str, what: String) -> Failure {
        Failure { check, file: file.to_string(), what }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed on {}: {}; {}",
            self.check.name(),
            self.file,
            self.what,
            self.check.remedy()
        )
    }
}

/// What the gate did in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum GateOutcome {
    /// Nothing was staged: the branch is where it was.
    Clear,
    /// The staged commits passed and the branch moved to the staging tip.
    Promoted { snapshot: String, commits: usize },
    /// A check failed: the branch stays, the staging branch keeps these files'
    /// commits, and the folder takes nothing new until they are released or dropped.
    Held { failures: Vec<Failure>, files: Vec<String> },
}

/// The commits on the staging branch that its branch does not have yet.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The branch's tip, where the staging branch started.
    pub base: String,
    /// The staging branch's tip.
    pub tip: String,
    /// The staged commits, oldest first.
    pub commits: Vec<CommitInfo>,
}

impl Staged {
    /// The staged files of `group`, in commit order.
    pub fn files(&self, group: &str) -> Vec<&FileProvenance> {
        self.commits
            .iter()
            .filter_map(|c| c.provenance.as_ref())
            .flat_map(|p| &p.files)
            .filter(|f| f.group == group)
            .collect()
    }
}

/// Where the gate of `branch` stands.
#[derive(Debug, Clone)]
pub enum Standing {
    /// The staging branch is the branch (or does not exist yet).
    Even,
    /// The staging branch holds commits on top of the branch.
    Ahead(Staged),
    /// The branch moved elsewhere (another writer, a reset): the staged commits
    /// are not on top of it and have to be replayed.
    Diverged { base: String, staged: String },
}

/// Where the gate of `branch` stands (the branch must exist).
pub async fn standing(repo: &Repo, branch: &str) -> Result<Standing, StoreError> {
    let staging = staging_branch(branch);
    let base = repo.branch_tip(branch).await?.ok_or_else(|| StoreError::NoBranch {
        repo: repo.label().to_string(),
        branch: branch.to_string(),
    })?;
    let Some(tip) = repo.branch_tip(&staging).await? else { return Ok(Standing::Even) };
    if tip == base {
        return Ok(Standing::Even);
    }
    let history = repo.history_at(&tip).await?;
    let Some(at) = history.iter().position(|c| c.id == base) else {
        return Ok(Standing::Diverged { base, staged: tip });
    };
    let mut commits: Vec<CommitInfo> = history.into_iter().take(at).collect();
    commits.reverse();
    Ok(Standing::Ahead(Staged { base, tip, commits }))
}

/// Start the staging branch at the branch's tip (`from`: where it is now, `None`
/// when it does not exist yet).
pub async fn restart_staging(
    repo: &Repo,
    branch: &str,
    base: &str,
    from: Option<&str>,
) -> Result<(), StoreError> {
    repo.move_branch(&staging_branch(branch), base, from).await
}

/// Move the branch to the staging tip, if it is still at the staged commits' base
/// (a [`StoreError::Conflict`] otherwise: another writer moved it).
pub async fn promote(repo: &Repo, branch: &str, staged: &Staged) -> Result<(), StoreError> {
    repo.move_branch(branch, &staged.tip, Some(&staged.base)).await
}

/// What `floe gate release|drop` did.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub branch: String,
    /// The files whose held commits were promoted or dropped.
    pub files: Vec<String>,
    /// The checks that had failed.
    pub failures: Vec<Failure>,
    /// The commit that records the decision (the branch's new tip).
    pub snapshot: String,
}

/// Why a gate decision cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("nothing is held at the gate of branch `{0}`: there is nothing to release or drop")]
    NothingHeld(String),
    #[error(
        "branch `{0}` moved since its files were staged (another writer): run `floe sync` (or let the daemon run) to replay the staged files on top of it, then decide"
    )]
    Moved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The failures of what is staged now (for the record of a decision).
async fn staged_now(
    url: &RepoUrl,
    branch: &str,
    group: &str,
    opts: &GateOptions,
) -> Result<(Repo, Staged, Vec<Failure>), GateError> {
    let repo = Repo::open(url).await?;
    match standing(&repo, branch).await? {
        Standing::Even => Err(GateError::NothingHeld(branch.to_string())),
        Standing::Diverged { .. } => Err(GateError::Moved(branch.to_string())),
        Standing::Ahead(staged) => {
            let failures = evaluate(&repo, group, opts, &staged).await?;
            Ok((repo, staged, failures))
        }
    }
}

/// Promote what is held anyway: a commit on the staging branch records the release
/// and the checks that failed, and the branch moves to it.
pub async fn release(
    url: &RepoUrl,
    branch: &str,
    group: &str,
    opts: &GateOptions,
) -> Result<Decision, GateError> {
    let (repo, mut staged, failures) = staged_now(url, branch, group, opts).await?;
    let files: Vec<String> = staged.files(group).iter().map(|f| f.source.clone()).collect();
    let record = GateRecord::Released {
        failures: failures.iter().map(ToString::to_string).collect(),
        at: now_rfc3339(),
    };
    let message = format!("floe: gate released {} file(s) of {branch}", files.len());
    let id = repo.record(&staging_branch(branch), &message, &recorded(record)).await?;
    staged.tip = id.clone();
    promote(&repo, branch, &staged).await.map_err(|e| moved(e, branch))?;
    Ok(Decision { branch: branch.to_string(), files, failures, snapshot: id })
}

/// Discard what is held: the staging branch goes back to the branch, a commit there
/// records the dropped files (not taken again until they change), and the branch
/// moves to that record.
pub async fn drop_held(
    url: &RepoUrl,
    branch: &str,
    group: &str,
    opts: &GateOptions,
) -> Result<Decision, GateError> {
    let (repo, staged, failures) = staged_now(url, branch, group, opts).await?;
    let dropped: Vec<DroppedFile> = staged
        .files(group)
        .iter()
        .map(|f| DroppedFile {
            source: f.source.clone(),
            group: f.group.clone(),
            blake3: f.blake3.clone(),
            size: f.size,
        })
        .collect();
    let files = dropped.iter().map(|d| d.source.clone()).collect();
    restart_staging(&repo, branch, &staged.base, Some(&staged.tip))
        .await
        .map_err(|e| moved(e, branch))?;
    let message = format!("floe: gate dropped {} file(s) of {branch}", dropped.len());
    let record = GateRecord::Dropped {
        files: dropped,
        failures: failures.iter().map(ToString::to_string).collect(),
        at: now_rfc3339(),
    };
    let id = repo.record(&staging_branch(branch), &message, &recorded(record)).await?;
    let on_top = Staged { base: staged.base.clone(), tip: id.clone(), commits: Vec::new() };
    promote(&repo, branch, &on_top).await.map_err(|e| moved(e, branch))?;
    Ok(Decision { branch: branch.to_string(), files, failures, snapshot: id })
}

fn recorded(gate: GateRecord) -> CommitProvenance {
    CommitProvenance {
        rows: Default::default(),
        floe_version: floe_core::FLOE_VERSION.to_string(),
        files: Vec::new(),
        continues: None,
        gate: Some(gate),
        deletion: None,
    }
}

fn moved(e: StoreError, branch: &str) -> GateError {
    match e {
        StoreError::Conflict(_) => GateError::Moved(branch.to_string()),
        other => GateError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_open_sides_and_say_what_is_wrong() {
        assert_eq!(Limits::parse("-40:60").unwrap(), Limits { min: Some(-40.0), max: Some(60.0) });
        assert_eq!(Limits::parse(":1e3").unwrap(), Limits { min: None, max: Some(1000.0) });
        assert!(Limits::parse("5").unwrap_err().contains("MIN:MAX"));
        assert!(Limits::parse("a:").unwrap_err().contains("`a` is not a number"));
        let l = Limits { min: Some(0.0), max: None };
        assert!(l.holds(0.0) && !l.holds(-1e-9) && l.show() == "[0, inf]");
    }

    #[test]
    fn a_failure_says_the_check_the_file_and_what_to_do() {
        let f = Failure::new(Check::Duplicates, "b.nc", "time 10 is already in the branch".into());
        let s = f.to_string();
        assert!(s.starts_with("duplicates failed on b.nc: time 10 is already in the branch; "));
        assert!(s.contains("floe gate drop"));
        assert_eq!(staging_branch("main"), "floe-staging-main");
        // on by default: schema and duplicates; the value checks are off
        let d = GateOptions::default();
        assert!(d.schema && d.duplicates && !d.reads_values() && d.max_gap_secs.is_none());
        let parsed: GateOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, d);
    }
}
