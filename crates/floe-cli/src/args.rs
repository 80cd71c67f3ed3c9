//! The arguments of each subcommand, one struct each.

use std::path::PathBuf;

use clap::Args;

use crate::parse_size;

/// Which folder goes where, and how its files map onto the repository (`sync` and
/// `add` alike).
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// Folder the instrument writes into.
    pub folder: PathBuf,
    /// Repository: a local path (default kind), file://, s3://, az:// or gs://.
    pub repo: String,
    /// Branch to append to (created from main if missing).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Group inside the repository that receives the files.
    #[arg(long, default_value = "/")]
    pub group: String,
    /// Dimension to append along (repeatable); default: the file's unlimited dimensions.
    #[arg(long = "append-dim")]
    pub append_dim: Vec<String>,
    /// File name pattern to ingest (repeatable); default: *.nc *.nc4 *.cdf *.h5 *.zarr …
    #[arg(long)]
    pub pattern: Vec<String>,
    /// A file that does not fit the repository's schema: `stop` (refused, the
    /// others flow), `branch` (it and those after it go on in a new branch
    /// drift-<first record time>) or `repo` (in a new repository beside this one).
    #[arg(long, default_value = "stop", value_parser = parse_on_drift)]
    pub on_drift: floe_api::sync::OnDrift,
    /// Global attributes (comma-separated) whose change starts a settings period:
    /// the first commit with a new value is tagged <attr>-<value>.
    #[arg(long, value_delimiter = ',')]
    pub tag_on_change: Vec<String>,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// The validation gate (`sync` and `add` alike).
#[derive(Debug, Args)]
pub(crate) struct GateArgs {
    /// Commit to the staging branch floe-staging-<branch> first and move the branch
    /// only when the checks pass (schema unchanged, no duplicate record times; the
    /// options below add more). A failed check holds the files there until
    /// `floe gate release` or `floe gate drop`.
    #[arg(long)]
    pub gate: bool,
    /// With --gate: also check decoded values against each variable's
    /// valid_range / valid_min / valid_max.
    #[arg(long, requires = "gate")]
    pub gate_valid_range: bool,
    /// With --gate: decoded values of VAR within MIN:MAX (either may be empty;
    /// repeatable), e.g. --gate-limit temperature=-60:60.
    #[arg(long, value_parser = parse_limit, requires = "gate")]
    pub gate_limit: Vec<(String, floe_api::gate::Limits)>,
    /// With --gate: at most this share (0..1) of each variable's values in a file
    /// may be fill or NaN.
    #[arg(long, requires = "gate")]
    pub gate_max_fill: Option<f64>,
    /// With --gate: at most this many seconds between consecutive files' records.
    #[arg(long, requires = "gate")]
    pub gate_max_gap: Option<f64>,
    /// With --gate: leave out a check that is on by default (schema, duplicates;
    /// repeatable).
    #[arg(long, value_parser = ["schema", "duplicates"], requires = "gate")]
    pub gate_skip: Vec<String>,
}

impl GateArgs {
    /// The gate's checks, when it is on.
    pub(crate) fn options(&self) -> Result<Option<floe_api::gate::GateOptions>, String> {
        if !self.gate {
            return Ok(None);
        }
        if let Some(f) = self.gate_max_fill
            && !(0.0..=1.0).contains(&f)
        {
            return Err(format!("--gate-max-fill {f}: give a share between 0 and 1 (0.95 is 95%)"));
        }
        Ok(Some(floe_api::gate::GateOptions {
            schema: !self.gate_skip.iter().any(|s| s == "schema"),
            duplicates: !self.gate_skip.iter().any(|s| s == "duplicates"),
            valid_range: self.gate_valid_range,
            limits: self.gate_limit.iter().cloned().collect(),
            max_fill: self.gate_max_fill,
            max_gap_secs: self.gate_max_gap.filter(|g| *g > 0.0),
        }))
    }
}

fn parse_limit(s: &str) -> Result<(String, floe_api::gate::Limits), String> {
    let (var, range) = s.split_once('=').ok_or_else(|| format!("`{s}`: write VAR=MIN:MAX"))?;
    Ok((var.trim().to_string(), floe_api::gate::Limits::parse(range)?))
}

/// `floe gate release|drop`.
#[derive(Debug, Args)]
pub(crate) struct GateDecisionArgs {
    /// A registered folder (`floe list`), or a repository URL.
    pub target: String,
    /// The gated branch (default: the folder's, else main).
    #[arg(long)]
    pub branch: Option<String>,
    /// Print what was decided as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_on_drift(s: &str) -> Result<floe_api::sync::OnDrift, String> {
    floe_api::sync::OnDrift::parse(s).ok_or_else(|| format!("`{s}`: use stop, branch or repo"))
}

/// Following open NetCDF-3 files live (`sync` and `add` alike).
#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// Follow NetCDF-3 files live: take the records a logger has written (and
    /// that have settled) while it still has the file open; the rest follow.
    #[arg(long)]
    pub live: bool,
    /// With --live: take a file's new records at most every this many seconds.
    #[arg(long, default_value_t = 30.0)]
    pub live_every: f64,
}

impl LiveArgs {
    /// The period of live takes, when on.
    pub(crate) fn every(&self) -> Option<f64> {
        self.live.then_some(self.live_every.max(0.0))
    }
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Show what would be ingested without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many files per commit when catching up on a backlog
    /// (provenance stays per file); 1 makes one commit per file.
    #[arg(long)]
    pub batch: Option<usize>,
    /// A backlog's commit closes once it holds this many MB of source files.
    #[arg(long, default_value_t = 64.0)]
    pub batch_mb: f64,
    /// Target chunk size in MiB (uncompressed), for arrays created by this run.
    #[arg(long, default_value_t = 4.0)]
    pub chunk_mib: f64,
    /// At most this many files share a chunk along the append dimension (bounds
    /// how often a chunk is rewritten), for arrays created by this run.
    #[arg(long, default_value_t = 8)]
    pub appends_per_chunk: u64,
    /// Seconds a file must have been unchanged to count as complete.
    #[arg(long, default_value_t = 2.0)]
    pub quiet: f64,
    /// Do not wait for files that changed moments ago: leave them for a later
    /// run (for scripts that poll).
    #[arg(long)]
    pub no_wait: bool,
    /// Wait at most this many seconds in all for recent files to be quiet.
    #[arg(long, default_value_t = 60.0)]
    pub wait_max: f64,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A commit is due once this many complete files are waiting (1: as soon as a
    /// file is complete); it then takes everything waiting.
    #[arg(long, default_value_t = 1)]
    pub commit_files: usize,
    /// ... or once this many MB of them are waiting.
    #[arg(long)]
    pub commit_mb: Option<f64>,
    /// ... or at the latest when the oldest has waited this many seconds.
    #[arg(long, default_value_t = 600.0)]
    pub commit_max_wait: f64,
    /// Never more than this many MB of source files in one commit (a backlog is
    /// split into commits of at most this).
    #[arg(long, default_value_t = 1024.0)]
    pub commit_max_mb: f64,
    #[command(flatten)]
    pub live: LiveArgs,
    /// After each commit, read its files back from the storage and compare them
    /// with the sources (the last result shows in `floe status`).
    #[arg(long)]
    pub verify_after_commit: bool,
    /// Verify the whole folder against its repository every this many hours.
    #[arg(long)]
    pub verify_every_hours: Option<f64>,
    /// Keep this much history (e.g. 90d): the daemon expires older snapshots and
    /// collects their garbage on a schedule, between this folder's commits.
    #[arg(long)]
    pub keep: Option<String>,
    /// With --keep: delete nothing younger than this (default 1d, or --keep when
    /// shorter; another writer may be about to commit it).
    #[arg(long, requires = "keep")]
    pub gc_grace: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// Full rescans of every folder at this interval, in seconds (watchers miss events).
    #[arg(long, default_value_t = 60.0)]
    pub rescan: f64,
    /// Seconds a file must have been unchanged to count as complete.
    #[arg(long, default_value_t = 2.0)]
    pub quiet: f64,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct IgnoreArgs {
    /// The sync folder.
    pub folder: PathBuf,
    /// Files as `floe status` lists them (relative to the folder), or their paths.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Count these files again.
    #[arg(long)]
    pub undo: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    pub folder: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    pub repo: String,
    /// Take them from this shell's AWS_* / AZURE_* / GOOGLE_* variables instead.
    #[arg(long)]
    pub from_env: bool,
    /// Keep them without trying them against the destination first.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    pub repo: String,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    pub repo: String,
    /// MiB to upload (and delete again) to measure throughput; 0 skips it.
    #[arg(long, default_value_t = 32)]
    pub probe_mib: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    pub repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// At most this many commits (newest first).
    #[arg(long, short = 'n')]
    pub limit: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MountArgs {
    pub repo: String,
    pub mountpoint: PathBuf,
    /// Keep fetched chunks in this folder too (bounded by --cache-size).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Size limit of --cache-dir (e.g. 10GiB, 500MB).
    #[arg(long, default_value = "10GiB", value_parser = parse_size)]
    pub cache_size: u64,
    /// Memory for chunk bytes.
    #[arg(long, default_value = "512MiB", value_parser = parse_size)]
    pub memory_cache: u64,
    /// Let other users read the mount (root, or user_allow_other in /etc/fuse.conf).
    #[arg(long)]
    pub allow_other: bool,
    /// Detach: mount in a process of its own, print where, and return.
    #[arg(long)]
    pub background: bool,
    /// Mount it again at every login (by the app or `floe daemon`, whichever
    /// starts first); implies --background. `floe unmount` forgets it.
    #[arg(long)]
    pub at_login: bool,
    /// Where a detached helper writes why it failed, for the process that started it.
    #[arg(long, hide = true)]
    pub failure_file: Option<PathBuf>,
    /// Seconds between re-reads of branch tips and of the branch and tag lists.
    #[arg(long, default_value_t = 2.0)]
    pub refresh_secs: f64,
    /// Seconds a repository request may take before the read fails with EIO.
    #[arg(long, default_value_t = 30.0)]
    pub timeout_secs: f64,
    /// Chunk files fetched ahead of a sequential reader.
    #[arg(long, default_value_t = 8)]
    pub readahead: usize,
}

#[derive(Debug, Args)]
pub(crate) struct UnmountArgs {
    pub mountpoint: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MountsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    pub file: PathBuf,
    /// Also say what a sync into this repository would do with the file.
    #[arg(long)]
    pub repo: Option<String>,
    #[arg(long, default_value = "main")]
    pub branch: String,
    #[arg(long = "append-dim")]
    pub append_dim: Vec<String>,
    #[arg(long, default_value = "/")]
    pub group: String,
    #[arg(long, default_value_t = 4.0)]
    pub chunk_mib: f64,
    #[arg(long, default_value_t = 8)]
    pub appends_per_chunk: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Folder the files were synced from.
    pub folder: PathBuf,
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Group the folder was synced into.
    #[arg(long, default_value = "/")]
    pub group: String,
    /// File name pattern the folder was synced with (repeatable).
    #[arg(long)]
    pub pattern: Vec<String>,
    /// Print the report as JSON (it lists the files gone from the folder too).
    #[arg(long)]
    pub json: bool,
}

/// A span such as `90d`, `36h`, `1d 12h`, `0s`.
pub(crate) fn parse_span(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a span of time ({e}); write e.g. 90d, 36h or 0s"))
}

#[derive(Debug, Args)]
pub(crate) struct ExpireArgs {
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    /// Expire the snapshots older than this (e.g. 90d; 0s keeps only what branch
    /// tips and tags point to).
    #[arg(long, value_parser = parse_span)]
    pub older_than: std::time::Duration,
    /// Say what would be expired; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    /// Never delete anything younger than this: a writer elsewhere may be about to
    /// commit it (0s only when no writer is active).
    #[arg(long, default_value = "1d", value_parser = parse_span)]
    pub grace: std::time::Duration,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReposArgs {
    /// Where the repositories are: a local folder, file://, s3://bucket/prefix,
    /// az://container/prefix or gs://bucket/prefix.
    pub url: String,
    /// Leave out each repository's size (which lists every object of it).
    #[arg(long)]
    pub no_size: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DuArgs {
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    #[arg(long)]
    pub json: bool,
}

/// A UTC time: `2024-01-01T06:00:00Z` (RFC 3339, any offset), `2024-01-01T06:00`,
/// `2024-01-01 06:00:00` or `2024-01-01` (midnight).
pub(crate) fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let t = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(Utc.from_utc_datetime(&n));
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| Utc.from_utc_datetime(&n))
        .ok_or_else(|| format!("`{s}` is not a time; write e.g. 2024-01-01T06:00:00Z (UTC)"))
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    /// First time deleted (UTC; e.g. 2024-01-01T06:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub from: chrono::DateTime<chrono::Utc>,
    /// First time kept after the window (records before it are deleted).
    #[arg(long, value_parser = parse_time)]
    pub to: chrono::DateTime<chrono::Utc>,
    /// Only these variables (comma-separated names or paths); default: every
    /// variable along the time.
    #[arg(long, value_delimiter = ',')]
    pub vars: Vec<String>,
    /// Why, recorded in the commit.
    #[arg(long)]
    pub reason: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Also remove the tags that still hold the window's old values (else they
    /// keep those bytes alive through expire and gc, and are named).
    #[arg(long)]
    pub untag: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    /// The variable (a name, or a path such as /inner/co2).
    pub var: Option<String>,
    /// First record time counted (UTC; e.g. 2024-01-01T06:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// First record time not counted.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// A series: one row per bin of this width (e.g. 1h, 1d), from midnight UTC.
    #[arg(long, value_parser = parse_span)]
    pub every: Option<std::time::Duration>,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Compute every file's statistics from the data and write them afresh, in
    /// one commit (for a repository written before Floe kept them).
    #[arg(long)]
    pub rebuild: bool,
    #[arg(long)]
    pub json: bool,
}
