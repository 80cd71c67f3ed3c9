//! The one-shot ingest of a folder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use floe_core::fault::{FaultPoint, Faults, NoFaults};
use floe_core::{CommitProvenance, Continuation, FLOE_VERSION, FileProvenance, RepoUrl};
use floe_plan::{ArrayAction, ArrayOp, Coords, Plan, RepoState, Settings, cftime};
use floe_source::complete::{self, Completeness};
use floe_source::records::{self, Counts};
use floe_source::{Data, Dataset, SourceError, SourceReader};
use floe_store::{Repo, StoreError, Writer};
use futures::StreamExt;

use crate::IngestError;
use crate::drift::{self, OnDrift, Switch};
use crate::report::{Ingested, Rejected, Report, Waiting};
use crate::scan::{self, Candidate};
use crate::stats::{
    self,
    stream::{Tallied, Tally},
};

/// Where "now" comes from (injected so completeness decisions are testable).
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// Variables written at once (their chunk uploads overlap).
const WRITE_CONCURRENCY: usize = 8;

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// What a sync run does.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub folder: PathBuf,
    pub repo: RepoUrl,
    pub branch: String,
    pub settings: Settings,
    /// File name patterns; empty: NetCDF/HDF5/Zarr defaults.
    pub patterns: Vec<String>,
    pub dry_run: bool,
    /// Most files per commit (at least 1).
    pub batch_files: usize,
    /// Most source bytes in one commit (a file that would go over starts the next).
    pub batch_bytes: u64,
    /// A batch is full once it holds this many source bytes (with `batch_files`,
    /// whichever comes first).
    pub batch_target_bytes: Option<u64>,
    /// A watched folder's commit cadence: when a commit is due ([`Trigger`]);
    /// `None`: commit whatever is there at once, in batches as above.
    pub trigger: Option<Trigger>,
    /// Upload limit shared with other folders.
    pub throttle: Option<std::sync::Arc<floe_store::throttle::Throttle>>,
    /// A file must have been quiet this long to count as complete.
    pub quiet: Duration,
    /// Wait (at most this long in all) for files that are merely recent to become
    /// quiet, instead of leaving them for a later run (`None`: do not wait; the
    /// daemon comes back to them anyway).
    pub wait_quiet: Option<Duration>,
    /// Largest decoded slab read from a source at once.
    pub slab_bytes: u64,
    /// Hashes of files seen before, by path, valid while size and mtime are unchanged
    /// (a long-running engine hashes each file once; the repository stays the truth).
    pub hashes: Option<std::sync::Arc<HashMemo>>,
    /// Set by someone else (the daemon's pause) to stop after the current commit.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Follow NetCDF-3 files live: while a writer still has one open, take the
    /// records on disk that have settled, at most once per this period per file
    /// (`None`: a file is taken once it is complete).
    pub live: Option<Duration>,
    /// Paths the file-system events say were written and not closed since (the
    /// daemon's watcher): not complete, whatever else the evidence says.
    pub open_by_events: Option<std::sync::Arc<complete::WrittenNotClosed>>,
    /// Where a crash test stops the process ([`floe_core::fault`]); [`NoFaults`] in
    /// every shipped build.
    pub faults: std::sync::Arc<dyn Faults>,
    /// What a file that does not fit the target's schema does ([`crate::drift`]).
    pub on_drift: OnDrift,
    /// The target continues another branch or repository (after a schema drift):
    /// what that one holds counts as held, and the target's first commit says so.
    pub continues: Option<Continuation>,
    /// Global attributes whose change starts a settings period: the first commit
    /// with a new value is tagged `<attr>-<value>` ([`crate::settings`]).
    pub tag_on_change: Vec<String>,
    /// Commit through a validation gate: to the staging branch first, the branch
    /// moved only when the checks pass ([`crate::gate`]).
    pub gate: Option<crate::gate::GateOptions>,
}

/// When a watched folder commits: once `files` complete files are waiting, or
/// `bytes` of them, or when the oldest has waited `max_wait` (a live take is never
/// held). The trigger says when, not how much: a due commit takes everything
/// waiting, in commits of at most `batch_bytes`, so a backlog after an outage goes
/// in as a few commits (as `floe sync` makes of it) instead of one per trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub files: usize,
    pub bytes: Option<u64>,
    pub max_wait: Duration,
}

impl Trigger {
    /// Seconds until `waiting` is due at `now`; `None`: it is due now.
    fn due_in(&self, waiting: &[&Pending], now: SystemTime) -> Option<f64> {
        let bytes: u64 = waiting.iter().map(|p| p.size).sum();
        let oldest = waiting.iter().filter_map(|p| p.modified).min().unwrap_or(now);
        let waited = now.duration_since(oldest).unwrap_or_default();
        let due = waiting.len() >= self.files.max(1)
            || self.bytes.is_some_and(|b| bytes >= b)
            || waiting.iter().any(|p| p.live)
            || waited >= self.max_wait;
        (!due).then(|| (self.max_wait - waited).as_secs_f64())
    }
}

/// A backlog's commits close once they hold this many source bytes (64 MB, by default).
pub const DEFAULT_BATCH_BYTES: u64 = 64_000_000;

/// Remembered file hashes: path -> (size, mtime, BLAKE3).
pub type HashMemo =
    std::sync::Mutex<std::collections::HashMap<PathBuf, (u64, Option<SystemTime>, String)>>;

impl IngestOptions {
    pub fn new(folder: PathBuf, repo: RepoUrl) -> Self {
        IngestOptions {
            folder,
            repo,
            branch: "main".into(),
            settings: Settings::default(),
            patterns: Vec::new(),
            dry_run: false,
            // A backlog is committed by bytes, not by file count: each commit costs
            // a fixed number of round trips and waits for its slowest upload, so on
            // a long link small commits spend their time waiting (24 files over
            // 500 ms: 2 commits of <= 16 files ~30 s, one commit ~17 s).
            batch_files: usize::MAX,
            batch_bytes: 256 << 20,
            batch_target_bytes: Some(DEFAULT_BATCH_BYTES),
            trigger: None,
            throttle: None,
            quiet: Duration::from_secs(2),
            wait_quiet: None,
            slab_bytes: 32 << 20,
            hashes: None,
            stop: None,
            live: None,
            open_by_events: None,
            faults: std::sync::Arc::new(NoFaults),
            on_drift: OnDrift::Stop,
            continues: None,
            tag_on_change: Vec::new(),
            gate: None,
        }
    }
}

/// Progress events, for a progress bar or a log.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Waiting this long for files that changed moments ago to be quiet.
    WaitingQuiet {
        files: usize,
        seconds: f64,
    },
    Planned {
        files: usize,
        bytes: u64,
    },
    FileDone {
        file: String,
        bytes: u64,
    },
    FileRejected {
        file: String,
        code: floe_core::ErrorCode,
        message: String,
    },
    Committed {
        id: String,
        files: usize,
    },
}

/// One file on its way in.
#[derive(Debug, Clone)]
struct Pending {
    cand: Candidate,
    size: u64,
    mtime: String,
    /// When the file was last written (it has been complete since about then).
    modified: Option<SystemTime>,
    /// Records taken from it by earlier syncs (a file or Zarr store that grew), per
    /// dimension.
    skip: Counts,
    /// Records to take up to (what the digest covers; a writer may add more).
    upto: Option<Counts>,
    /// Digest of its records `0 .. upto` (see `floe_source::records`).
    digest: Option<String>,
    /// Taken live: its writer still has it open.
    live: bool,
    hash: String,
    sort_key: f64,
    /// Its values of the watched global attributes.
    settings: crate::settings::Values,
}

/// How a candidate is taken: complete, or followed live while its writer appends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Take {
    Complete,
    /// Still being written (the reason says how Floe knows); its settled records
    /// are taken.
    Live(String),
}

/// What the new-file phase makes of one candidate.
#[derive(Debug)]
enum Decision {
    Take(Box<Pending>),
    /// Nothing in it that the branch does not hold.
    Already,
    /// Its held records were dropped at the validation gate, and it did not change.
    Dropped,
    /// A file followed live with nothing to take now.
    Wait(String),
    /// A file followed live whose last take is too recent: due in this long.
    Hold(Duration),
    Refuse(IngestError),
}

impl Decision {
    /// What a file followed live gets said of it (`None`: nothing to add).
    fn live_note(&self) -> Option<String> {
        match self {
            Decision::Take(_) => Some("its settled records are taken live".into()),
            Decision::Wait(why) => Some(format!("followed live, nothing to take now: {why}")),
            Decision::Hold(due) => {
                Some(format!("followed live, next take in {:.0} s", due.as_secs_f64()))
            }
            Decision::Already | Decision::Dropped | Decision::Refuse(_) => None,
        }
    }
}

/// What the new-file phase sees of one file.
struct Seen<'a> {
    c: &'a Candidate,
    /// The newest provenance of a file of that name, if the branch has one.
    prev: Option<&'a FileProvenance>,
    hash: String,
    dims: Vec<String>,
    /// Records it holds now.
    there: Counts,
    /// Records taken from it before.
    taken: Counts,
}

/// A candidate found complete (or followed live), with its evidence.
type Found = (Candidate, complete::Evidence, Take);

/// What a batch's writes came to.
enum Written {
    /// The files written, with their provenance (possibly none).
    Files(Vec<(Pending, FileProvenance)>),
    /// A file failed half way: the session is spoiled, start the batch again.
    Restart,
}

/// The repository a run writes to and what it knows of the branch there.
struct Target {
    /// `None` only in a dry run against a repository that does not exist yet.
    repo: Option<Repo>,
    /// Our group's path in the repository.
    group: String,
    /// The first complete file's append dimensions (a hint for new arrays).
    first_dims: Option<Vec<String>>,
    /// What the branch held of our group when the run started.
    known: Known,
    tip: BranchTip,
    /// The first batch's writer, opened while the history was read.
    first_writer: Option<Result<Writer, StoreError>>,
}

/// Where the branch is, as far as this run knows, and what it holds: the snapshot
/// a writer can start from without asking the storage (on a long link each round
/// trip counts), what other writers ingested as of the snapshot we last read, and
/// the repository state right after our own last commit.
#[derive(Debug, Default)]
struct BranchTip {
    /// The branch's tip when this run knows it: it created the repository, or
    /// made the last commit.
    ours: Option<String>,
    /// The snapshot whose provenance `there` was read from.
    seen: Option<String>,
    /// What was ingested into our group as of `seen`, by whoever wrote it.
    there: BTreeMap<String, FileProvenance>,
    /// The repository state after our last commit, with that commit's id.
    state: Option<(String, RepoState)>,
}

impl BranchTip {
    fn start(ours: Option<String>, seen: Option<String>) -> BranchTip {
        BranchTip { ours, seen, ..BranchTip::default() }
    }

    /// The tip, if this run knows it without asking.
    fn known(&self) -> Option<&str> {
        self.ours.as_deref()
    }

    /// Whether a session starting at `base` starts where we have not looked.
    fn moved(&self, base: &str) -> bool {
        self.seen.as_deref() != Some(base)
    }

    /// What the branch holds as of a snapshot we just read.
    fn learn(&mut self, known: Known) {
        self.seen = known.tip;
        self.there = known.files;
    }

    /// Whether the branch holds these very bytes of `file` already.
    fn holds(&self, file: &str, hash: &str) -> bool {
        self.there.get(file).is_some_and(|f| f.blake3 == hash)
    }

    /// The state after our own commit, when a session starts right there: the
    /// branch then holds exactly what we advanced it to.
    fn state_at(&mut self, base: &str) -> Option<RepoState> {
        match self.state.take() {
            Some((id, st)) if id == base => Some(st),
            _ => None,
        }
    }

    fn committed(&mut self, id: &str, state: RepoState) {
        self.state = Some((id.to_string(), state));
        self.seen = Some(id.to_string());
        self.ours = Some(id.to_string());
    }

    /// Someone else moved the branch: forget all we thought we knew of it.
    fn conflicted(&mut self) {
        *self = BranchTip::default();
    }
}

/// How long a live take waits to read the newest records again: what is the same
/// both times has settled (a writer flushes a record and then its record count,
/// or the other way round).
const LIVE_SETTLE: Duration = Duration::from_millis(250);

/// A file opened and planned.
struct PlannedFile {
    reader: Box<dyn SourceReader>,
    plan: Plan,
    /// The new last value of each record coordinate it appends to.
    last: BTreeMap<String, floe_source::Scalar>,
    /// Digest of its records `0 .. upto` (see `floe_source::records`).
    digest: Option<String>,
}

/// A file's failure, and whether anything had been written for it already.
struct FileFailure {
    error: IngestError,
    wrote: bool,
}

impl From<IngestError> for FileFailure {
    fn from(error: IngestError) -> Self {
        FileFailure { error, wrote: false }
    }
}

/// The ingest of one folder into one repository branch.
pub struct Ingest<'a> {
    pub opts: IngestOptions,
    pub clock: &'a dyn Clock,
    pub progress: &'a (dyn Fn(&Progress) + Sync),
}

impl std::fmt::Debug for Ingest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// Find the record coordinate values (1-D variable named like the dimension).
fn read_coords(reader: &dyn SourceReader, dims: &[String]) -> Result<Coords, SourceError> {
    let mut out = Coords::new();
    for d in dims {
        for g in &reader.dataset().groups {
            if let Some(v) = g.variable(d)
                && v.dims.len() == 1
                && &v.dims[0] == d
            {
                if let Data::Fixed(b) = reader.read(&g.path, &v.name, &[0], &v.shape)? {
                    let size = v.dtype.size().unwrap_or(8);
                    let vals: Vec<f64> =
                        b.chunks_exact(size).filter_map(|c| v.dtype.element_as_f64(c)).collect();
                    out.insert(d.clone(), vals);
                }
                break;
            }
        }
    }
    Ok(out)
}

/// Data time of a file's first record, for ordering (seconds since 1970 when the
/// units are CF time, otherwise the raw value).
fn sort_key(ds: &Dataset, coords: &Coords, dims: &[String]) -> f64 {
    for d in dims {
        let Some(first) = coords.get(d).and_then(|v| v.first()) else {
            continue;
        };
        let units = ds
            .groups
            .iter()
            .find_map(|g| g.variable(d))
            .and_then(|v| v.attrs.get("units"))
            .and_then(|u| u.as_str())
            .and_then(cftime::parse_units);
        return match units {
            Some(u) => cftime::to_unix_seconds(*first, u),
            None => *first,
        };
    }
    f64::INFINITY
}

/// Schema drifts one run follows at most (each to a branch or repository of its own).
const MAX_DRIFT_SWITCHES: usize = 8;

/// A local repository by its absolute path: a continuation is read back from
/// wherever the next run starts.
fn absolute(url: &RepoUrl) -> RepoUrl {
    match url {
        RepoUrl::Local(p) => RepoUrl::Local(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        other => other.clone(),
    }
}

/// Replays of a batch after commit conflicts before giving up with a clear error.
const CONFLICT_REPLAYS: usize = 5;

/// What Floe has ingested into our group of the branch (the fold of its history's
/// provenance, by floe-store).
type Known = floe_store::Holdings;

/// What Floe has ingested into `group` of `branch` (as of snapshot `at`, else the
/// tip). Other groups belong to other folders (another desktop, another instrument)
/// whose file names may well repeat ours.
async fn ingested_here(
    repo: &Repo,
    branch: &str,
    group: &str,
    at: Option<&str>,
) -> Result<Known, StoreError> {
    repo.holdings(branch, group, at).await
}

/// `12 time, 3 profile`: a record count for a message.
fn show_counts(c: &Counts) -> String {
    let parts: Vec<String> = c.iter().map(|(d, n)| format!("{n} `{d}`")).collect();
    if parts.is_empty() { "no".into() } else { parts.join(", ") }
}

/// Group files (in data-time order) into commits: a batch closes when it is full
/// (`batch_files` files or `batch_target_bytes`) or the next file would take it over
/// `batch_bytes`.
fn batches(pending: Vec<Pending>, o: &IngestOptions) -> Vec<Vec<Pending>> {
    let mut out: Vec<Vec<Pending>> = Vec::new();
    for p in pending {
        let start_new = match out.last() {
            None => true,
            Some(b) => {
                full(b, o)
                    || b.iter().map(|x| x.size).sum::<u64>() + p.size > o.batch_bytes
                    // a new settings period starts with a commit of its own (tagged)
                    || b.last().is_some_and(|x| !crate::settings::changes(&x.settings, &p.settings).is_empty())
            }
        };
        if start_new {
            out.push(Vec::new());
        }
        if let Some(b) = out.last_mut() {
            b.push(p);
        }
    }
    out
}

/// Whether a batch has what it takes for a commit of its own.
fn full(b: &[Pending], o: &IngestOptions) -> bool {
    let bytes: u64 = b.iter().map(|x| x.size).sum();
    b.len() >= o.batch_files.max(1)
        || o.batch_target_bytes.is_some_and(|t| bytes >= t)
        || bytes >= o.batch_bytes
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Ingest<'_> {
    /// One sync of the folder (see [`Ingest::run_once`]); when files drift and the
    /// folder's policy says so, it goes on in the branch or repository the first
    /// drifted record names, with those files and any after them.
    pub async fn run(&self) -> Result<Report, IngestError> {
        let mut report = self.run_target().await?;
        let mut opts = self.opts.clone();
        for _ in 0..MAX_DRIFT_SWITCHES {
            let Some(next) = self.drift_switch(&opts, &mut report).await? else { break };
            let on = Ingest { opts: next, clock: self.clock, progress: self.progress };
            let more = on.run_target().await?;
            report.absorb(more);
            opts = on.opts;
        }
        Ok(report)
    }

    /// After a run that refused files as schema drift: where the folder goes on
    /// (`None`: it does not), the drifted files taken out of the refused ones and
    /// the switch reported.
    async fn drift_switch(
        &self,
        opts: &IngestOptions,
        report: &mut Report,
    ) -> Result<Option<IngestOptions>, IngestError> {
        let drifted: Vec<&Rejected> = report
            .rejected
            .iter()
            .filter(|r| r.code == floe_core::ErrorCode::SchemaDrift)
            .collect();
        if opts.on_drift == OnDrift::Stop || drifted.is_empty() || opts.dry_run {
            return Ok(None);
        }
        // named by the earliest drifted record (files are taken in data order)
        let (first, time) = drifted
            .iter()
            .map(|r| (*r, self.first_record_time(&r.file)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(r, t)| (r.clone(), t))
            .unwrap_or_else(|| (drifted[0].clone(), f64::INFINITY));
        let now = self.clock.now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let name = drift::time_name(time)
            .or_else(|| drift::time_name(now.as_secs_f64()))
            .unwrap_or_else(|| "unknown".into());
        let next = drift::next_target(opts.on_drift, &opts.repo, &opts.branch, &name)
            .map_err(|detail| IngestError::Drift { file: first.file.clone(), detail })?;
        let Some((repo, branch)) = next else { return Ok(None) };
        // (the tip alone: one request, not the branch's whole history)
        let snapshot = Repo::open(&opts.repo)
            .await?
            .branch_tip(&opts.branch)
            .await?
            .unwrap_or_else(Repo::initial_snapshot);
        let files: Vec<String> = drifted.iter().map(|r| r.file.clone()).collect();
        report.rejected.retain(|r| r.code != floe_core::ErrorCode::SchemaDrift);
        let reason = match &first.drift {
            Some(what) => format!("{}: {what}", first.file),
            None => first.message.clone(),
        };
        report.switched.push(Switch {
            files,
            reason: reason.clone(),
            repo: repo.to_string(),
            branch: branch.clone(),
        });
        let mut next = opts.clone();
        next.continues = Some(Continuation {
            repo: absolute(&opts.repo).to_string(),
            branch: opts.branch.clone(),
            snapshot,
            reason,
        });
        next.repo = repo;
        next.branch = branch;
        Ok(Some(next))
    }

    /// The data time of a file's first record (seconds since 1970 for a CF time).
    fn first_record_time(&self, rel: &str) -> f64 {
        let path = self.opts.folder.join(rel);
        let Ok(reader) = floe_source::open(&path) else { return f64::INFINITY };
        let dims =
            floe_plan::append_dims(reader.dataset(), &self.opts.settings).unwrap_or_default();
        match read_coords(reader.as_ref(), &dims) {
            Ok(coords) => sort_key(reader.dataset(), &coords, &dims),
            Err(_) => f64::INFINITY,
        }
    }

    /// One sync of the folder into its target, in its phases: find the complete
    /// files, open the target, decide what is new and in which order, hold what the
    /// cadence holds, then commit the batches (or, in a dry run, plan them).
    pub async fn run_once(&self) -> Result<Report, IngestError> {
        let started = Instant::now();
        let o = &self.opts;
        let mut report = Report {
            repo: o.repo.to_string(),
            branch: o.branch.clone(),
            dry_run: o.dry_run,
            ..Report::default()
        };
        let candidates = self.scan_folder()?;
        let found = self.find_complete(candidates, &mut report).await;
        let now = self.clock.now();
        if let Some(mut target) = self.open_target(&found).await? {
            let pending = self.order_new(found, &target.known, now, &mut report).await;
            let batches = self.hold_for_cadence(batches(pending, o), now, &mut report);
            if o.dry_run {
                self.plan_batches(&target, batches, &mut report).await?;
            } else {
                self.commit_batches(&mut target, batches, &mut report).await?;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Phase 0: the folder's files and Zarr stores that match the patterns.
    fn scan_folder(&self) -> Result<Vec<Candidate>, IngestError> {
        let o = &self.opts;
        let label = o.folder.display().to_string();
        if !o.folder.is_dir() {
            return Err(IngestError::Folder(label));
        }
        let patterns = scan::patterns(&o.patterns)
            .map_err(|e| IngestError::Folder(format!("{label} (pattern: {e})")))?;
        scan::scan(&o.folder, &patterns).map_err(|_| IngestError::Folder(label))
    }

    /// Phase 2: the repository (created on the first write, its manifests split
    /// along the first file's append dimensions) and what the branch holds of our
    /// group. `None`: nothing to do (nothing complete to write).
    async fn open_target(&self, found: &[Found]) -> Result<Option<Target>, IngestError> {
        let o = &self.opts;
        let first_dims = found.iter().find_map(|(c, _, _)| {
            floe_source::open(&c.path)
                .ok()
                .and_then(|r| floe_plan::append_dims(r.dataset(), &o.settings).ok())
        });
        let repo = if o.dry_run {
            match Repo::open(&o.repo).await {
                Ok(r) => Some(r),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            if found.is_empty() {
                return Ok(None);
            }
            let mut r = Repo::open_for_write(&o.repo, first_dims.as_deref().unwrap_or(&[])).await?;
            r.set_throttle(o.throttle.clone());
            match &o.continues {
                // a branch of its own after a drift starts empty
                Some(_) if o.branch != "main" => {
                    r.ensure_branch_at(&o.branch, &Repo::initial_snapshot()).await?
                }
                _ if o.branch != "main" => r.ensure_branch(&o.branch, "main").await?,
                _ => {}
            }
            Some(r)
        };
        let group = floe_plan::target_group(&o.settings.group, "/");
        // a repository this run created holds nothing: its tip is known without asking
        let created = repo
            .as_ref()
            .filter(|r| r.created() && o.branch == "main")
            .map(|_| Repo::initial_snapshot());
        let mut first_writer = None;
        let known = match &repo {
            Some(_) if created.is_some() => Known { tip: created.clone(), ..Known::default() },
            Some(r) if !o.dry_run => {
                // the first batch's writer, opened while the history is read (its
                // errors count only if there is something to write)
                let (known, writer) =
                    tokio::join!(ingested_here(r, &o.branch, &group, None), r.writer(&o.branch));
                first_writer = Some(writer);
                known?
            }
            Some(r) => ingested_here(r, &o.branch, &group, None).await?,
            None => Known::default(),
        };
        let mut known = known;
        if let (Some(r), Some(c), None) = (&repo, &o.continues, &known.continues) {
            // nothing committed here yet: what the continued one holds is held
            known.absorb_older(r.continued(c, &group, 1).await?);
        }
        let tip = BranchTip::start(created, known.tip.clone());
        Ok(Some(Target { repo, group, first_dims, known, tip, first_writer }))
    }

    /// Phase 3: what is new in each file, in data-time order (files that are
    /// followed live are listed as waiting, with what was taken of them).
    async fn order_new(
        &self,
        found: Vec<Found>,
        known: &Known,
        now: SystemTime,
        report: &mut Report,
    ) -> Vec<Pending> {
        // the same bytes under another name are a re-send, not new records (a
        // first record equal to the branch's last is allowed, so order alone
        // would not catch a one-record file copied in twice)
        let hashes_here: std::collections::HashSet<&str> =
            known.files.values().map(|f| f.blake3.as_str()).collect();
        let mut pending = Vec::new();
        for (c, e, take) in found {
            let decision = self.decide(&c, &e, &take, known, &hashes_here, now).await;
            if let Take::Live(reason) = &take
                && let Some(live) = decision.live_note()
            {
                let reason = format!("{reason}; {live}");
                report.waiting.push(Waiting { file: c.rel.clone(), reason });
            }
            match decision {
                Decision::Take(p) => pending.push(*p),
                Decision::Already => report.already_ingested.push(c.rel.clone()),
                Decision::Dropped => report.dropped.push(c.rel.clone()),
                Decision::Wait(_) => {}
                Decision::Hold(due) => {
                    report.held.push(c.rel.clone());
                    let due = due.as_secs_f64();
                    report.held_due_in = Some(report.held_due_in.map_or(due, |d| d.min(due)));
                }
                Decision::Refuse(err) => self.reject(report, &c.rel, err),
            }
        }
        pending.sort_by(|a, b| {
            a.sort_key.total_cmp(&b.sort_key).then_with(|| a.cand.rel.cmp(&b.cand.rel))
        });
        (self.progress)(&Progress::Planned {
            files: pending.len(),
            bytes: pending.iter().map(|p| p.size).sum(),
        });
        pending
    }

    /// The folder's commit cadence: what is waiting is held, all of it, until the
    /// trigger is due (see [`Trigger`]).
    fn hold_for_cadence(
        &self,
        batches: Vec<Vec<Pending>>,
        now: SystemTime,
        report: &mut Report,
    ) -> Vec<Vec<Pending>> {
        let Some(trigger) = &self.opts.trigger else { return batches };
        let waiting: Vec<&Pending> = batches.iter().flatten().collect();
        if waiting.is_empty() {
            return batches;
        }
        let Some(due) = trigger.due_in(&waiting, now) else { return batches };
        report.held_due_in = Some(report.held_due_in.map_or(due, |d| d.min(due)));
        report.held.extend(waiting.iter().map(|p| p.cand.rel.clone()));
        Vec::new()
    }

    /// Phase 4 of a dry run: plan every file against the branch, writing nothing.
    async fn plan_batches(
        &self,
        target: &Target,
        batches: Vec<Vec<Pending>>,
        report: &mut Report,
    ) -> Result<(), IngestError> {
        let o = &self.opts;
        let dims = target.first_dims.clone().unwrap_or_default();
        let mut state = match &target.repo {
            Some(r) => r.writer(&o.branch).await?.state(&o.settings.group, &dims).await?,
            None => RepoState::default(),
        };
        for p in batches.into_iter().flatten() {
            match self.plan_file(&p, &state, false) {
                Ok(PlannedFile { plan, last, .. }) => {
                    state.advance(&plan, &last);
                    add_records(&mut report.records, &plan.records);
                    report.bytes += p.size;
                    report.ingested.push(Ingested {
                        file: p.cand.rel.clone(),
                        records: plan.records,
                        from: p.skip.clone(),
                        bytes: p.size,
                        commit: None,
                    });
                }
                Err(f) => self.reject(report, &p.cand.rel, f.error),
            }
        }
        Ok(())
    }

    /// Phase 4: write and commit each batch, until asked to stop (what is
    /// committed stays, the rest waits for the next run).
    async fn commit_batches(
        &self,
        target: &mut Target,
        batches: Vec<Vec<Pending>>,
        report: &mut Report,
    ) -> Result<(), IngestError> {
        let mut batches = batches.into_iter();
        while let Some(batch) = batches.next() {
            if self.opts.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
            {
                let left = std::iter::once(batch).chain(batches).flatten();
                report.stopped_before = left.map(|p| p.cand.rel).collect();
                break;
            }
            self.commit_batch(target, batch, report).await?;
        }
        Ok(())
    }

    /// One batch into one commit. A commit conflict (another writer appended to
    /// the same arrays and Icechunk could not rebase) replays the batch on the new
    /// tip, minus what the other writer ingested meanwhile: our sources are still
    /// here.
    async fn commit_batch(
        &self,
        target: &mut Target,
        mut batch: Vec<Pending>,
        report: &mut Report,
    ) -> Result<(), IngestError> {
        let o = &self.opts;
        let repo = target.repo.as_ref().ok_or_else(|| StoreError::NotFound(o.repo.to_string()))?;
        let mut conflicts = 0;
        loop {
            let mut writer = match (target.first_writer.take(), target.tip.known()) {
                (Some(w), _) => w?,
                (None, Some(tip)) => repo.writer_at(&o.branch, tip)?,
                (None, None) => repo.writer(&o.branch).await?,
            }
            .with_faults(o.faults.clone());
            let base = writer.base_snapshot().await;
            if target.tip.moved(&base) {
                // someone else committed since we looked: learn what they ingested
                // (as of the very snapshot this session starts from)
                target.tip.learn(ingested_here(repo, &o.branch, &target.group, Some(&base)).await?);
            }
            batch.retain(|p| {
                let there = target.tip.holds(&p.cand.rel, &p.hash);
                if there {
                    report.already_ingested.push(p.cand.rel.clone());
                }
                !there
            });
            if batch.is_empty() {
                return Ok(());
            }
            let mut state = match target.tip.state_at(&base) {
                Some(st) => st,
                None => {
                    let dims = target.first_dims.clone().unwrap_or_default();
                    writer.state(&o.settings.group, &dims).await?
                }
            };
            let done = match self.write_batch(&mut writer, &mut state, &mut batch, report).await? {
                Written::Files(done) => done,
                Written::Restart => continue,
            };
            if done.is_empty() {
                return Ok(());
            }
            // the first commit here says what it continues
            let continues = match target.known.continues {
                None => o.continues.clone(),
                Some(_) => None,
            };
            match self.commit(writer, &done, continues).await {
                Ok(id) => {
                    if target.known.continues.is_none() {
                        target.known.continues = o.continues.clone();
                    }
                    target.tip.committed(&id, state);
                    self.tag_periods(repo, &id, &done, &mut target.known.settings, report).await?;
                    self.committed(id, done, report);
                    return Ok(());
                }
                Err(StoreError::Conflict(_)) if conflicts + 1 < CONFLICT_REPLAYS => {
                    conflicts += 1;
                    report.replays += 1;
                    tracing::info!(branch = %o.branch, attempt = conflicts, "commit conflict: replaying the batch on the new tip");
                    target.tip.conflicted();
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Write every file of the batch into the session. A file refused before it
    /// wrote anything leaves the batch; one refused half way sends the batch back
    /// to a fresh session without it (`Restart`).
    async fn write_batch(
        &self,
        writer: &mut Writer,
        state: &mut RepoState,
        batch: &mut Vec<Pending>,
        report: &mut Report,
    ) -> Result<Written, IngestError> {
        let mut done = Vec::new();
        let mut refused = Vec::new();
        let mut restart = false;
        for (i, p) in batch.iter().enumerate() {
            let t = Instant::now();
            let outcome = self.ingest_file(writer, state, p).await;
            tracing::debug!(seconds = t.elapsed().as_secs_f64(), file = %p.cand.rel, "write");
            match outcome {
                Ok(Some(prov)) => done.push((p.clone(), prov)),
                // a file without records, identical to what the target holds
                Ok(None) => report.already_ingested.push(p.cand.rel.clone()),
                Err(f) if !f.error.is_per_file() => return Err(f.error),
                Err(f) => {
                    self.reject(report, &p.cand.rel, f.error);
                    refused.push(i);
                    if f.wrote {
                        restart = true;
                        break;
                    }
                }
            }
        }
        for i in refused.into_iter().rev() {
            batch.remove(i);
        }
        Ok(if restart { Written::Restart } else { Written::Files(done) })
    }

    /// Commit what the session holds, with the provenance of every file in it.
    async fn commit(
        &self,
        writer: Writer,
        done: &[(Pending, FileProvenance)],
        continues: Option<Continuation>,
    ) -> Result<String, StoreError> {
        let message = match done {
            [(p, _)] => format!("floe: ingest {}", p.cand.rel),
            [(a, _), .., (b, _)] => {
                format!("floe: ingest {} files ({} .. {})", done.len(), a.cand.rel, b.cand.rel)
            }
            [] => String::new(),
        };
        let prov = CommitProvenance {
            rows: Default::default(),
            floe_version: FLOE_VERSION.to_string(),
            files: done.iter().map(|(_, f)| f.clone()).collect(),
            continues,
            gate: None,
            deletion: None,
        };
        writer.finish_uploads().await?;
        self.opts.faults.reached(FaultPoint::ChunksStored);
        let t = Instant::now();
        let id = writer.commit(&message, &prov).await?;
        self.opts.faults.reached(FaultPoint::Committed);
        tracing::debug!(seconds = t.elapsed().as_secs_f64(), files = done.len(), "commit");
        Ok(id)
    }

    /// Tag commit `id` for each watched attribute whose value its files change
    /// (`current`: the branch's values before it, updated).
    async fn tag_periods(
        &self,
        repo: &Repo,
        id: &str,
        done: &[(Pending, FileProvenance)],
        current: &mut crate::settings::Values,
        report: &mut Report,
    ) -> Result<(), StoreError> {
        for (p, _) in done {
            for (attr, value) in crate::settings::changes(current, &p.settings) {
                let name = crate::settings::tag_name(&attr, &value);
                let when = drift::time_name(p.sort_key).unwrap_or_else(|| id.to_string());
                let tag = repo.tag_unique(&name, &when, id).await?;
                tracing::info!(%tag, snapshot = %id, "settings period");
                report.tagged.push(tag);
                current.insert(attr, value);
            }
        }
        Ok(())
    }

    /// Report a commit and the files it took.
    fn committed(&self, id: String, done: Vec<(Pending, FileProvenance)>, report: &mut Report) {
        (self.progress)(&Progress::Committed { id: id.clone(), files: done.len() });
        for (p, f) in done {
            add_records(&mut report.records, &f.records);
            report.bytes += p.size;
            (self.progress)(&Progress::FileDone { file: p.cand.rel.clone(), bytes: p.size });
            report.ingested.push(Ingested {
                file: p.cand.rel,
                records: f.records,
                from: f.from,
                bytes: p.size,
                commit: Some(id.clone()),
            });
        }
        report.commits.push(id);
    }

    /// The file's BLAKE3 hash (remembered by path while its size and time stay).
    fn file_hash(&self, c: &Candidate, e: &complete::Evidence) -> std::io::Result<String> {
        let o = &self.opts;
        let remembered = |m: &'_ HashMemo| floe_core::lock(m).get(&c.path).cloned();
        if let Some((len, mtime, h)) = o.hashes.as_deref().and_then(remembered)
            && len == e.len
            && mtime == e.mtime
        {
            return Ok(h);
        }
        let h = scan::hash(&c.path)?;
        if let Some(m) = &o.hashes {
            floe_core::lock(m).insert(c.path.clone(), (e.len, e.mtime, h.clone()));
        }
        Ok(h)
    }

    /// Phase 3 for one file: is anything in it new to the branch, and which records.
    ///
    /// A file seen before whose bytes changed is taken again only if it grew: its
    /// first records (those taken before) give the digest recorded then, and it
    /// holds more. A file followed live is read twice, [`LIVE_SETTLE`] apart, and
    /// only the records that read the same both times are taken.
    async fn decide(
        &self,
        c: &Candidate,
        e: &complete::Evidence,
        take: &Take,
        known: &Known,
        hashes_here: &std::collections::HashSet<&str>,
        now: SystemTime,
    ) -> Decision {
        let o = &self.opts;
        let live = matches!(take, Take::Live(_));
        let hash = match self.file_hash(c, e) {
            Ok(h) => h,
            Err(err) => return Decision::Refuse(SourceError::io(&c.path, err).into()),
        };
        let prev = known.files.get(&c.rel);
        let unchanged = match prev {
            Some(p) => p.blake3 == hash,
            None => hashes_here.contains(hash.as_str()),
        };
        if unchanged {
            return if live { Decision::Wait("no new bytes".into()) } else { Decision::Already };
        }
        if known.dropped.get(&c.rel) == Some(&hash) {
            return Decision::Dropped;
        }
        if live && let (Some(every), Some(at)) = (o.live, known.taken_at.get(&c.rel)) {
            let since = now.duration_since(*at).unwrap_or_default();
            if since < every {
                return Decision::Hold(every - since);
            }
        }
        let reader = match floe_source::open(&c.path) {
            Ok(r) => r,
            Err(err) if live => return Decision::Wait(err.to_string()),
            Err(err) => return Decision::Refuse(err.into()),
        };
        let dims = floe_plan::append_dims(reader.dataset(), &o.settings).unwrap_or_default();
        let there = records::counts(reader.dataset(), &dims);
        let taken = known.records.get(&c.rel).cloned().unwrap_or_default();
        let seen = Seen { c, prev, hash, dims, there, taken };
        let digest = match self.what_grew(&seen, reader.as_ref(), live) {
            Ok(d) => d,
            Err(decision) => return decision,
        };
        if live && let Some(wait) = self.unsettled(&seen, digest.as_deref()).await {
            return wait;
        }
        self.pending(seen, e, reader, digest, live)
    }

    /// For a file seen before: whether it only grew (its first records give the
    /// digest recorded then, and it holds more), else what to do with it. Returns
    /// the digest of all its records when it had to take it (a new file's is taken
    /// while it is copied).
    fn what_grew(
        &self,
        f: &Seen<'_>,
        reader: &dyn SourceReader,
        live: bool,
    ) -> Result<Option<String>, Decision> {
        let changed = |how: String| {
            Decision::Refuse(IngestError::ChangedSinceIngest {
                file: f.c.rel.clone(),
                how,
                old: short(f.prev.map_or("", |p| p.blake3.as_str())),
                new: short(&f.hash),
            })
        };
        if let Some(p) = f.prev {
            if f.dims.is_empty() {
                // (a Zarr store's metadata touched, as Floe has always read it)
                return Err(if f.c.is_dir {
                    Decision::Already
                } else {
                    changed("it has no record dimension, so it was stored whole".into())
                });
            }
            if records::fewer(&f.there, &f.taken) {
                return Err(changed(format!(
                    "it holds {} records, {} were ingested",
                    show_counts(&f.there),
                    show_counts(&f.taken)
                )));
            }
            if p.records_blake3.is_none() && !f.c.is_dir {
                return Err(changed(
                    "it was ingested by an earlier Floe build, which kept no digest of its records to tell growth from change".into(),
                ));
            }
        }
        if f.prev.is_none() && !live {
            return Ok(None);
        }
        // one pass: the digest of the records taken before, and of all there are
        let marks = [&f.taken, &f.there];
        let digests = match records::digests(reader, &f.dims, &marks, self.opts.slab_bytes) {
            Ok(d) => d,
            Err(err) if live => return Err(Decision::Wait(err.to_string())),
            Err(err) => return Err(Decision::Refuse(err.into())),
        };
        if let Some(old) = f.prev.and_then(|p| p.records_blake3.as_ref())
            && Some(old) != digests.first()
        {
            return Err(changed(format!(
                "its first {} records differ from those ingested",
                show_counts(&f.taken)
            )));
        }
        if f.prev.is_some() && !records::fewer(&f.taken, &f.there) {
            // same records, other bytes (metadata touched): nothing to add
            return Err(if live {
                Decision::Wait("no new records".into())
            } else {
                Decision::Already
            });
        }
        Ok(digests.into_iter().nth(1))
    }

    /// For a file followed live: `None` when its records read the same again
    /// [`LIVE_SETTLE`] later (what reads the same both times has settled), else why
    /// nothing is taken now.
    async fn unsettled(&self, f: &Seen<'_>, digest: Option<&str>) -> Option<Decision> {
        if f.there.values().all(|n| *n == 0) {
            return Some(Decision::Wait("no records yet".into()));
        }
        tokio::time::sleep(LIVE_SETTLE).await;
        let again = floe_source::open(&f.c.path).and_then(|r| {
            if records::fewer(&records::counts(r.dataset(), &f.dims), &f.there) {
                return Ok(None);
            }
            records::digests(r.as_ref(), &f.dims, &[&f.there], self.opts.slab_bytes)
                .map(|d| d.into_iter().next())
        });
        match again {
            Ok(Some(d)) if Some(d.as_str()) == digest => None,
            _ => Some(Decision::Wait("its newest records are still being written".into())),
        }
    }

    /// The file's records `taken .. there` on their way in, with their data time.
    fn pending(
        &self,
        f: Seen<'_>,
        e: &complete::Evidence,
        reader: Box<dyn SourceReader>,
        digest: Option<String>,
        live: bool,
    ) -> Decision {
        let upto = (!f.dims.is_empty()).then(|| f.there.clone());
        let reader = floe_source::Window::new(reader, f.taken.clone(), upto.as_ref());
        let sort_key = match read_coords(&reader, &f.dims) {
            Ok(coords) => sort_key(reader.dataset(), &coords, &f.dims),
            Err(err) => return Decision::Refuse(err.into()),
        };
        let size = if f.c.is_dir { dir_size(&f.c.path) } else { e.len };
        let settings = crate::settings::watched(reader.dataset(), &self.opts.tag_on_change);
        Decision::Take(Box::new(Pending {
            cand: f.c.clone(),
            size,
            mtime: e.mtime.map(rfc3339).unwrap_or_default(),
            modified: e.mtime,
            skip: f.taken,
            upto,
            digest,
            live,
            hash: f.hash,
            sort_key,
            settings,
        }))
    }

    /// Phase 1: which files are complete. Files that are merely recent (nothing
    /// says a writer still has them) are waited for when `wait_quiet` allows it,
    /// so a one-shot sync of files just copied in finishes its job; a file that
    /// changes meanwhile starts its quiet period again, up to the bound. The rest
    /// are reported as waiting, with the reason.
    async fn find_complete(&self, candidates: Vec<Candidate>, report: &mut Report) -> Vec<Found> {
        let o = &self.opts;
        let started = self.clock.now();
        let mut complete_files = Vec::new();
        let mut todo = candidates;
        loop {
            let now = self.clock.now();
            let waited = now.duration_since(started).unwrap_or_default();
            let mut recent = Vec::new();
            let mut longest = Duration::ZERO;
            let writers = complete::OpenForWrite::scan();
            for c in todo {
                let evidence = match evidence(&c, &writers) {
                    Ok(mut e) => {
                        e.open_by_events = o
                            .open_by_events
                            .as_ref()
                            .is_some_and(|w| w.is_open(&c.path, std::time::Instant::now()));
                        e
                    }
                    Err(err) => {
                        let err = IngestError::Source(SourceError::io(&c.path, err));
                        self.reject(report, &c.rel, err);
                        continue;
                    }
                };
                let verdict = complete::decide(&evidence, now, o.quiet);
                match verdict {
                    Completeness::Complete => complete_files.push((c, evidence, Take::Complete)),
                    // followed live: what is on disk and settled is taken now
                    other if o.live.is_some() && evidence.records_on_disk() => {
                        let reason = other.reason().unwrap_or_default();
                        complete_files.push((c, evidence, Take::Live(reason)));
                    }
                    Completeness::Recent { age, quiet }
                        if o.wait_quiet
                            .is_some_and(|max| waited + quiet.saturating_sub(age) <= max) =>
                    {
                        longest = longest.max(quiet.saturating_sub(age));
                        recent.push(c);
                    }
                    other => {
                        let reason = other.reason().unwrap_or_default();
                        report.waiting.push(Waiting { file: c.rel, reason });
                    }
                }
            }
            if recent.is_empty() {
                return complete_files;
            }
            (self.progress)(&Progress::WaitingQuiet {
                files: recent.len(),
                seconds: longest.as_secs_f64(),
            });
            // a little past the quiet period, so the next look finds them quiet
            tokio::time::sleep(longest + Duration::from_millis(50)).await;
            todo = recent;
        }
    }

    #[expect(clippy::needless_pass_by_value, reason = "a refused file's error ends here")]
    fn reject(&self, report: &mut Report, file: &str, error: IngestError) {
        let message = error.to_string();
        (self.progress)(&Progress::FileRejected {
            file: file.to_string(),
            code: error.code(),
            message: message.clone(),
        });
        report.rejected.push(Rejected {
            file: file.to_string(),
            code: error.code(),
            message,
            drift: error.drift(),
        });
    }

    /// Open and plan one file against `state` (no writes).
    ///
    /// With `digest`, also the digest of the file's records for its provenance, when
    /// the new-file phase did not take it already: read here, on the reader that
    /// then copies them, its chunk cache spares the copy a second decompression
    /// (a separate pass cost 30% of a 96-file sync).
    fn plan_file(
        &self,
        p: &Pending,
        state: &RepoState,
        digest: bool,
    ) -> Result<PlannedFile, FileFailure> {
        let full = floe_source::open(&p.cand.path).map_err(IngestError::from)?;
        let digest = match (&p.digest, digest) {
            (Some(d), _) => Some(d.clone()),
            (None, false) => None,
            (None, true) => {
                let dims =
                    floe_plan::append_dims(full.dataset(), &self.opts.settings).unwrap_or_default();
                let upto = p.upto.clone().unwrap_or_else(|| records::counts(full.dataset(), &dims));
                let d = records::digests(full.as_ref(), &dims, &[&upto], self.opts.slab_bytes)
                    .map_err(IngestError::from)?;
                d.into_iter().next()
            }
        };
        let reader: Box<dyn SourceReader> = if p.skip.values().all(|n| *n == 0) && p.upto.is_none()
        {
            full
        } else {
            Box::new(floe_source::Window::new(full, p.skip.clone(), p.upto.as_ref()))
        };
        let (plan, coords) = plan_source(reader.as_ref(), &p.cand.rel, state, &self.opts.settings)?;
        // new last value of each record coordinate, as the repository stores it
        let mut last = BTreeMap::new();
        for op in &plan.arrays {
            if let (Some(ax), Some((_, var))) = (op.append_axis, &op.source)
                && op.new_shape.len() == 1
                && ax == 0
                && plan.append_dims.contains(var)
                && let Some(v) = coords.get(var).and_then(|v| v.last())
            {
                let raw = floe_source::Scalar::Float(*v);
                let stored = match &op.time_map {
                    Some(m) => m.map_one(&raw).map_err(|detail| IngestError::Reencode {
                        file: p.cand.rel.clone(),
                        detail,
                    })?,
                    None => raw,
                };
                last.insert(op.path.clone(), stored);
            }
        }
        Ok(PlannedFile { reader, plan, last, digest })
    }

    /// Plan, verify and write one file into the session; nothing is committed here.
    /// `None`: the file has no record dimension and equals what the target holds.
    async fn ingest_file(
        &self,
        writer: &mut Writer,
        state: &mut RepoState,
        p: &Pending,
    ) -> Result<Option<FileProvenance>, FileFailure> {
        let t0 = Instant::now();
        let PlannedFile { reader, plan, last, digest } = self.plan_file(p, state, true)?;
        let t_plan = t0.elapsed();
        let rel = &p.cand.rel;
        verify_static(writer, state, &plan, reader.as_ref(), rel).await?;
        if plan.whole_again {
            return Ok(None);
        }
        let t_verify = t0.elapsed();
        let wrote = |error: IngestError| FileFailure { error, wrote: true };
        write_metadata(writer, &plan).await.map_err(wrote)?;
        let t_meta = t0.elapsed();
        let tallies =
            self.copy_arrays(writer, reader.as_ref(), &plan, state, rel).await.map_err(wrote)?;
        let group = floe_plan::target_group(&self.opts.settings.group, "/");
        // the file's statistics go into the same commit as its records
        let rows = stats::stream::rows(&plan, tallies);
        rows.write(writer, &group).await.map_err(|e| wrote(e.into()))?;
        tracing::debug!(
            plan = t_plan.as_secs_f64(),
            verify = t_verify.as_secs_f64(),
            metadata = t_meta.as_secs_f64(),
            copy = t0.elapsed().as_secs_f64(),
            "phases (cumulative)"
        );
        state.advance(&plan, &last);
        Ok(Some(file_provenance(p, &plan, reader.dataset().format.as_str(), group, digest)))
    }

    /// Copy the variables the plan creates or appends to, concurrently: their chunk
    /// writes overlap in storage. What each stream tallied for the statistics.
    async fn copy_arrays(
        &self,
        writer: &Writer,
        reader: &dyn SourceReader,
        plan: &Plan,
        state: &RepoState,
        rel: &str,
    ) -> Result<Vec<Tallied>, IngestError> {
        // (futures collected into a Vec first: a lazy iterator of closures here makes
        // the whole future fail the compiler's Send check when it is spawned)
        let mut copies = Vec::new();
        for op in &plan.arrays {
            if matches!(op.action, ArrayAction::Create | ArrayAction::Append) {
                copies.push(self.copy_array(writer, reader, op, Tally::of(op, state), rel));
            }
        }
        let results: Vec<Result<Tallied, IngestError>> =
            futures::stream::iter(copies).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        results.into_iter().collect()
    }

    /// Stream one variable into its array, slab by slab along the outer axis, with
    /// slab edges on chunk boundaries of the target array; each slab passes
    /// through `tally` on its way.
    async fn copy_array(
        &self,
        writer: &Writer,
        reader: &dyn SourceReader,
        op: &ArrayOp,
        mut tally: Tally,
        rel: &str,
    ) -> Result<Tallied, IngestError> {
        let Some((g, v)) = &op.source else {
            return Ok(Tallied::Nothing);
        };
        let meta = op.metadata.clone().unwrap_or_default();
        if op.region_count.is_empty() {
            let data = reader.read(g, v, &[], &[])?;
            writer.write(&op.path, &meta, &[], &[], data).await?;
            return Ok(Tallied::Nothing);
        }
        let axis = op.append_axis.unwrap_or(0);
        let item = op.dtype.size().unwrap_or(16) as u64;
        let per_index: u64 = op
            .region_count
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != axis)
            .map(|(_, n)| *n)
            .product::<u64>()
            * item;
        let chunk = op.chunks.get(axis).copied().unwrap_or(1).max(1);
        let max_idx = (self.opts.slab_bytes / per_index.max(1)).max(1);
        let (dst0, n) = (op.region_start[axis], op.region_count[axis]);
        let mut done = 0u64;
        while done < n {
            let pos = dst0 + done;
            // up to the largest number of whole chunks within the slab budget
            let to_boundary = chunk - pos % chunk;
            let mut take = to_boundary;
            while take + chunk <= max_idx && done + take < n {
                take += chunk;
            }
            let take = take.min(n - done);
            let mut src_start = vec![0u64; op.region_count.len()];
            src_start[axis] = done;
            let mut count = op.region_count.clone();
            count[axis] = take;
            let mut dst_start = op.region_start.clone();
            dst_start[axis] = pos;
            let mut data = reader.read(g, v, &src_start, &count)?;
            if let (Some(m), Data::Fixed(bytes)) = (&op.time_map, &data) {
                let mapped = m
                    .apply(bytes)
                    .map_err(|detail| IngestError::Reencode { file: rel.to_string(), detail })?;
                data = Data::Fixed(mapped);
            }
            tally.add(&data);
            if axis == 0 && op.append_axis == Some(0) {
                writer.append(&op.path, &meta, &dst_start, &count, data).await?;
            } else {
                writer.write(&op.path, &meta, &dst_start, &count, data).await?;
            }
            done += take;
        }
        Ok(tally.finish())
    }
}

/// What a sync of `file` into `branch` of `repo` would do, writing nothing: the plan
/// against what the branch holds now, or why the file would be refused. (Values of
/// static variables are compared only by a real sync.)
pub async fn plan_against(
    file: &std::path::Path,
    repo: &RepoUrl,
    branch: &str,
    settings: &floe_plan::Settings,
) -> Result<Plan, IngestError> {
    let label = file.display().to_string();
    let reader = floe_source::open(file)?;
    let dims = floe_plan::append_dims(reader.dataset(), settings)
        .map_err(|source| IngestError::Plan { file: label.clone(), source })?;
    let state = match Repo::open(repo).await {
        Ok(r) => match r.writer(branch).await {
            Ok(w) => w.state(&settings.group, &dims).await?,
            Err(StoreError::NotFound(_)) => RepoState::default(),
            Err(e) => return Err(e.into()),
        },
        Err(StoreError::NotFound(_)) => RepoState::default(),
        Err(e) => return Err(e.into()),
    };
    plan_source(reader.as_ref(), &label, &state, settings).map(|(plan, _)| plan)
}

/// The planning step shared by a sync and `plan_against`: the file's append
/// dimensions and record coordinates, and its plan against `state`.
pub(crate) fn plan_source(
    reader: &dyn SourceReader,
    file: &str,
    state: &RepoState,
    settings: &floe_plan::Settings,
) -> Result<(Plan, Coords), IngestError> {
    let plan_err = |source| IngestError::Plan { file: file.to_string(), source };
    let dims = floe_plan::append_dims(reader.dataset(), settings).map_err(plan_err)?;
    let coords = read_coords(reader, &dims)?;
    let plan = floe_plan::plan(reader.dataset(), &coords, state, settings).map_err(plan_err)?;
    Ok((plan, coords))
}

fn add_records(total: &mut BTreeMap<String, u64>, add: &BTreeMap<String, u64>) {
    for (k, v) in add {
        *total.entry(k.clone()).or_insert(0) += v;
    }
}

fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

/// What can be seen of a candidate's completeness (a Zarr store: its newest change;
/// a file: its own evidence, and whether a process has it open for writing).
fn evidence(
    c: &Candidate,
    writers: &complete::OpenForWrite,
) -> std::io::Result<complete::Evidence> {
    if c.is_dir {
        newest_mtime(&c.path).map(|m| complete::Evidence {
            len: 1,
            mtime: Some(m),
            ..Default::default()
        })
    } else {
        complete::inspect(&c.path, writers)
    }
}

fn newest_mtime(dir: &std::path::Path) -> std::io::Result<SystemTime> {
    let mut newest = std::fs::metadata(dir)?.modified()?;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let m = e.metadata()?;
            newest = newest.max(m.modified()?);
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(newest)
}

pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A file's static variables (no record dimension) must equal what the repository
/// holds: checked before anything is written.
async fn verify_static(
    writer: &Writer,
    state: &RepoState,
    plan: &Plan,
    reader: &dyn SourceReader,
    rel: &str,
) -> Result<(), FileFailure> {
    for op in plan.arrays.iter().filter(|o| o.action == ArrayAction::VerifyStatic) {
        let Some((g, v)) = &op.source else { continue };
        let here =
            reader.read(g, v, &op.region_start, &op.region_count).map_err(IngestError::from)?;
        let meta = &state.arrays.get(&op.path).map(|a| a.metadata.clone()).unwrap_or_default();
        let there = writer
            .read(&op.path, meta, &op.region_start, &op.region_count)
            .await
            .map_err(IngestError::from)?;
        if here == there {
            continue;
        }
        let error = if plan.whole_again {
            IngestError::Plan {
                file: rel.to_string(),
                source: floe_plan::PlanError::WholeDiffers {
                    path: op.path.clone(),
                    what: "its values changed".into(),
                },
            }
        } else {
            IngestError::StaticChanged { file: rel.to_string(), path: op.path.clone() }
        };
        return Err(error.into());
    }
    Ok(())
}

/// The groups' and new arrays' metadata, into the session.
async fn write_metadata(writer: &mut Writer, plan: &Plan) -> Result<(), IngestError> {
    for g in &plan.groups {
        writer.put_group(&g.path, &g.metadata).await?;
    }
    for op in &plan.arrays {
        if let Some(meta) = &op.metadata {
            writer.put_array(&op.path, meta).await?;
        }
    }
    Ok(())
}

/// What the commit records about one file it took.
fn file_provenance(
    p: &Pending,
    plan: &Plan,
    format: &str,
    group: String,
    digest: Option<String>,
) -> FileProvenance {
    FileProvenance {
        source: p.cand.rel.clone(),
        size: p.size,
        mtime: p.mtime.clone(),
        blake3: p.hash.clone(),
        format: format.to_string(),
        group,
        records: plan.records.clone(),
        offsets: plan.offsets.clone(),
        from: p.skip.iter().filter(|(_, n)| **n > 0).map(|(d, n)| (d.clone(), *n)).collect(),
        records_blake3: digest,
        settings: p.settings.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(sizes: &[u64]) -> Vec<Pending> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Pending {
                cand: Candidate {
                    rel: format!("f{i:03}.nc"),
                    path: PathBuf::from(format!("f{i:03}.nc")),
                    is_dir: false,
                },
                size,
                mtime: String::new(),
                modified: None,
                skip: BTreeMap::new(),
                upto: None,
                digest: None,
                live: false,
                hash: String::new(),
                sort_key: i as f64,
                settings: Default::default(),
            })
            .collect()
    }

    fn lens(b: &[Vec<Pending>]) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_new_settings_period_starts_a_commit_of_its_own() {
        let mut p = pending(&[10, 10, 10, 10]);
        for (i, f) in p.iter_mut().enumerate() {
            let fw = if i < 2 { "2.1" } else { "2.2" };
            f.settings.insert("firmware".into(), fw.into());
        }
        let o = IngestOptions::new(PathBuf::new(), RepoUrl::Local(PathBuf::new()));
        assert_eq!(lens(&batches(p, &o)), vec![2, 2]);
    }

    #[test]
    fn a_backlog_is_committed_by_bytes_unless_files_are_capped() {
        let mut o = IngestOptions::new(PathBuf::from("."), RepoUrl::Local(PathBuf::from("r")));
        // 24 files of 1.8 MB: one commit; 100 files of 1 MB: 64 MB, then the rest
        assert_eq!(lens(&batches(pending(&[1_800_000; 24]), &o)), vec![24]);
        assert_eq!(lens(&batches(pending(&[1_000_000; 100]), &o)), vec![64, 36]);
        // a file bigger than the target is a commit of its own
        assert_eq!(lens(&batches(pending(&[1_000, 500_000_000, 1_000]), &o)), vec![1, 1, 1]);
        // --batch caps the files, --batch 1 is a commit per file
        o.batch_files = 16;
        assert_eq!(lens(&batches(pending(&[1_800_000; 24]), &o)), vec![16, 8]);
        o.batch_files = 1;
        assert_eq!(lens(&batches(pending(&[10; 3]), &o)), vec![1, 1, 1]);
    }

    /// A NetCDF-3 (CDF-1) logger file: `time(time)` float64 seconds since 2024 and
    /// `temp(time)` float32, `times.len()` records; `numrecs` as the header says
    /// (a writer updates it after the data, or before).
    fn classic(path: &std::path::Path, times: &[f64], numrecs: usize) {
        fn name(out: &mut Vec<u8>, n: &str) {
            out.extend((n.len() as u32).to_be_bytes());
            out.extend(n.as_bytes());
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        let units = "seconds since 2024-01-01";
        let mut h = b"CDF\x01".to_vec();
        h.extend((numrecs as u32).to_be_bytes());
        h.extend([0, 0, 0, 0x0A, 0, 0, 0, 1]);
        name(&mut h, "time");
        h.extend(0u32.to_be_bytes()); // unlimited
        h.extend([0; 8]); // no global attributes
        h.extend([0, 0, 0, 0x0B, 0, 0, 0, 2]);
        let mut begins = Vec::new();
        for (var, ty, size) in [("time", 6u32, 8u32), ("temp", 5, 4)] {
            name(&mut h, var);
            h.extend(1u32.to_be_bytes());
            h.extend(0u32.to_be_bytes());
            if var == "time" {
                h.extend([0, 0, 0, 0x0C, 0, 0, 0, 1]);
                name(&mut h, "units");
                h.extend(2u32.to_be_bytes());
                name(&mut h, units);
            } else {
                h.extend([0; 8]);
            }
            h.extend(ty.to_be_bytes());
            h.extend(size.to_be_bytes());
            begins.push(h.len());
            h.extend(0u32.to_be_bytes());
        }
        let start = h.len() as u32;
        h[begins[0]..begins[0] + 4].copy_from_slice(&start.to_be_bytes());
        h[begins[1]..begins[1] + 4].copy_from_slice(&(start + 8).to_be_bytes());
        for t in times {
            h.extend(t.to_be_bytes());
            h.extend((20.0 + *t as f32 / 10.0).to_be_bytes());
        }
        std::fs::write(path, h).unwrap();
    }

    /// A clock that says what the test wants.
    struct At(SystemTime);

    impl Clock for At {
        fn now(&self) -> SystemTime {
            self.0
        }
    }

    fn ingest<'a>(o: IngestOptions, clock: &'a At) -> Ingest<'a> {
        Ingest { opts: o, clock, progress: &|_| {} }
    }

    fn options(folder: &std::path::Path) -> IngestOptions {
        let mut o =
            IngestOptions::new(folder.to_path_buf(), RepoUrl::Local(folder.join("../repo")));
        o.quiet = Duration::from_secs(2);
        o
    }

    fn candidate(dir: &std::path::Path, rel: &str) -> Candidate {
        Candidate { rel: rel.into(), path: dir.join(rel), is_dir: false }
    }

    fn in_an_hour() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    #[tokio::test]
    async fn finding_complete_files_waits_for_recent_ones_and_follows_live_ones() {
        let d = tempfile::tempdir().unwrap();
        classic(&d.path().join("done.nc"), &[0.0, 1.0], 2);
        // its header counts 3 records, the bytes hold 2: being written
        classic(&d.path().join("short.nc"), &[0.0, 1.0], 3);
        let c = |rel| candidate(d.path(), rel);
        let mut o = options(d.path());
        let later = At(in_an_hour());
        let mut report = Report::default();
        let found = ingest(o.clone(), &later)
            .find_complete(vec![c("done.nc"), c("short.nc")], &mut report)
            .await;
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.rel.as_str(), &found[0].2), ("done.nc", &Take::Complete));
        assert_eq!(report.waiting.len(), 1);
        assert!(report.waiting[0].reason.contains("NetCDF-3 header announces"), "{report:?}");
        // just written, and no waiting allowed: listed as recent
        let now = At(SystemTime::now());
        let mut report = Report::default();
        let found = ingest(o.clone(), &now).find_complete(vec![c("done.nc")], &mut report).await;
        assert!(found.is_empty());
        assert!(report.waiting[0].reason.contains("quiet period"), "{report:?}");
        // followed live: the recent file whose records are on disk is taken live
        o.live = Some(Duration::from_secs(30));
        let mut report = Report::default();
        let found =
            ingest(o, &now).find_complete(vec![c("done.nc"), c("short.nc")], &mut report).await;
        assert_eq!(found.len(), 1, "{report:?}");
        assert!(matches!(&found[0].2, Take::Live(r) if r.contains("quiet period")));
    }

    fn provenance(
        source: &str,
        blake3: &str,
        records: u64,
        digest: Option<String>,
    ) -> FileProvenance {
        FileProvenance {
            source: source.into(),
            size: 0,
            mtime: String::new(),
            blake3: blake3.into(),
            format: "netcdf3-classic".into(),
            group: "/".into(),
            records: BTreeMap::from([("time".into(), records)]),
            offsets: BTreeMap::from([("time".into(), 0)]),
            from: BTreeMap::new(),
            records_blake3: digest,
            settings: BTreeMap::new(),
        }
    }

    fn digest_of(path: &std::path::Path, records: u64) -> String {
        let r = floe_source::open(path).unwrap();
        let upto = BTreeMap::from([("time".to_string(), records)]);
        records::digests(r.as_ref(), &["time".to_string()], &[&upto], 1 << 20).unwrap().remove(0)
    }

    #[tokio::test]
    async fn what_is_new_grown_files_give_their_new_records_changed_ones_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        // taken before with 3 records, and since then: grown to 5, changed, the same
        classic(&dir.join("grown.nc"), &[0.0, 1.0, 2.0], 3);
        classic(&dir.join("changed.nc"), &[10.0, 11.0, 12.0], 3);
        classic(&dir.join("same.nc"), &[20.0, 21.0], 2);
        let mut known = Known::default();
        for (f, n) in [("grown.nc", 3), ("changed.nc", 3), ("same.nc", 2)] {
            let hash = scan::hash(&dir.join(f)).unwrap();
            known.files.insert(f.into(), provenance(f, &hash, n, Some(digest_of(&dir.join(f), n))));
            known.records.insert(f.into(), BTreeMap::from([("time".into(), n)]));
        }
        classic(&dir.join("grown.nc"), &[0.0, 1.0, 2.0, 3.0, 4.0], 5);
        classic(&dir.join("changed.nc"), &[10.0, 11.5, 12.0, 13.0], 4);
        // new files, out of name order in time; and one resent under another name
        classic(&dir.join("b.nc"), &[100.0], 1);
        classic(&dir.join("a.nc"), &[200.0], 1);
        std::fs::copy(dir.join("same.nc"), dir.join("resent.nc")).unwrap();
        let later = At(in_an_hour());
        let run = ingest(options(dir), &later);
        let mut report = Report::default();
        let names = ["a.nc", "b.nc", "changed.nc", "grown.nc", "resent.nc", "same.nc"];
        let mut found = Vec::new();
        for n in names {
            let c = candidate(dir, n);
            let e = complete::inspect(&c.path, &complete::OpenForWrite::default()).unwrap();
            found.push((c, e, Take::Complete));
        }
        let pending = run.order_new(found, &known, later.0, &mut report).await;
        let order: Vec<(&str, u64)> = pending
            .iter()
            .map(|p| (p.cand.rel.as_str(), p.skip.get("time").copied().unwrap_or(0)))
            .collect();
        // in data-time order; the grown file from its 4th record
        assert_eq!(order, vec![("grown.nc", 3), ("b.nc", 0), ("a.nc", 0)]);
        assert_eq!(pending[0].upto, Some(BTreeMap::from([("time".into(), 5)])));
        assert!(pending[0].digest.is_some(), "a grown file's digest is taken up front");
        assert!(pending[1].digest.is_none(), "a new file's is taken while it is copied");
        assert_eq!(report.already_ingested, vec!["resent.nc", "same.nc"]);
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert_eq!(report.rejected[0].code, floe_core::ErrorCode::ChangedSinceIngest);
        assert!(report.rejected[0].message.contains("first 3 `time` records differ"), "{report:?}");
    }

    #[test]
    fn the_trigger_holds_everything_waiting_until_it_is_due_and_then_takes_it_all() {
        let d = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut o = options(d.path());
        o.trigger = Some(Trigger { files: 3, bytes: None, max_wait: Duration::from_secs(60) });
        let at = At(now);
        let run = ingest(o, &at);
        let aged = |secs: u64, live: bool| {
            let mut p = pending(&[10]).remove(0);
            p.modified = Some(now - Duration::from_secs(secs));
            p.live = live;
            p
        };
        // 2 of 3 files, the oldest 10 s: both wait, 50 s more
        let mut report = Report::default();
        let kept =
            run.hold_for_cadence(vec![vec![aged(10, false), aged(5, false)]], now, &mut report);
        assert!(kept.is_empty());
        assert_eq!(report.held.len(), 2);
        assert!((report.held_due_in.unwrap() - 50.0).abs() < 0.01);
        // due by count: a commit takes all that waits (5 files, not 3), in the
        // batches made of them
        let mut report = Report::default();
        let backlog = vec![vec![aged(5, false); 4], vec![aged(1, false)]];
        assert_eq!(lens(&run.hold_for_cadence(backlog, now, &mut report)), vec![4, 1]);
        assert!(report.held.is_empty() && report.held_due_in.is_none());
        // due by age; a live take is never held
        assert_eq!(run.hold_for_cadence(vec![vec![aged(61, false)]], now, &mut report).len(), 1);
        assert_eq!(run.hold_for_cadence(vec![vec![aged(1, true)]], now, &mut report).len(), 1);
        assert!(report.held.is_empty());
        // by bytes
        let mut o = options(d.path());
        o.trigger =
            Some(Trigger { files: 100, bytes: Some(15), max_wait: Duration::from_secs(60) });
        let run = ingest(o, &at);
        let mut report = Report::default();
        assert!(run.hold_for_cadence(vec![vec![aged(1, false)]], now, &mut report).is_empty());
        let two = vec![vec![aged(1, false), aged(1, false)]];
        assert_eq!(run.hold_for_cadence(two, now, &mut Report::default()).len(), 1);
    }

    #[test]
    fn the_branch_tip_is_known_after_our_commit_and_forgotten_after_a_conflict() {
        let mut tip = BranchTip::start(Some("created".into()), Some("created".into()));
        assert_eq!(tip.known(), Some("created"));
        assert!(!tip.moved("created") && tip.moved("other"));
        // someone else's commit: learn what it holds
        let mut k = Known { tip: Some("other".into()), ..Known::default() };
        k.files.insert("a.nc".into(), provenance("a.nc", "h1", 1, None));
        tip.learn(k);
        assert!(!tip.moved("other"));
        assert!(tip.holds("a.nc", "h1") && !tip.holds("a.nc", "h2") && !tip.holds("b.nc", "h1"));
        // our commit: the state is reused once, by a session starting right there
        tip.committed("ours", RepoState::default());
        assert_eq!(tip.known(), Some("ours"));
        assert!(!tip.moved("ours"));
        assert!(tip.state_at("elsewhere").is_none(), "only at our own commit");
        tip.committed("ours2", RepoState::default());
        assert!(tip.state_at("ours2").is_some());
        assert!(tip.state_at("ours2").is_none(), "taken once");
        tip.conflicted();
        assert_eq!(tip.known(), None);
        assert!(tip.moved("ours2"), "after a conflict every base is news");
    }

    #[tokio::test]
    async fn a_run_commits_once_and_a_second_run_finds_it_all_ingested() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        classic(&src.join("a.nc"), &[0.0, 1.0], 2);
        classic(&src.join("b.nc"), &[2.0, 3.0], 2);
        let later = At(in_an_hour());
        let report = ingest(options(&src), &later).run().await.unwrap();
        assert_eq!((report.ingested.len(), report.commits.len()), (2, 1), "{report:?}");
        assert_eq!(report.records.get("time"), Some(&4));
        let again = ingest(options(&src), &later).run().await.unwrap();
        assert!(again.commits.is_empty(), "{again:?}");
        assert_eq!(again.already_ingested, vec!["a.nc", "b.nc"]);
        // grown: the new records follow, from the third
        classic(&src.join("b.nc"), &[2.0, 3.0, 4.0], 3);
        let grown = ingest(options(&src), &later).run().await.unwrap();
        assert_eq!(grown.ingested.len(), 1, "{grown:?}");
        assert_eq!(grown.ingested[0].from.get("time"), Some(&2));
        assert_eq!(grown.ingested[0].records.get("time"), Some(&1));
    }
}
