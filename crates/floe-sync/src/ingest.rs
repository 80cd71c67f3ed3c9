//! The one-shot ingest of a folder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use floe_core::{CommitProvenance, FLOE_VERSION, FileProvenance, RepoUrl};
use floe_plan::{ArrayAction, ArrayOp, Coords, Plan, RepoState, Settings, cftime};
use floe_source::complete::{self, Completeness};
use floe_source::records::{self, Counts};
use floe_source::{Data, Dataset, SourceError, SourceReader};
use floe_store::{Repo, StoreError, Writer};
use futures::StreamExt;

use crate::IngestError;
use crate::report::{Ingested, Rejected, Report, Waiting};
use crate::scan::{self, Candidate};

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
    /// Hold a batch that is not full until its oldest file has been complete this
    /// long (`None`: commit whatever is there at once). This is a folder's commit
    /// cadence: every N files, every B bytes, or at the latest after this wait.
    pub max_wait: Option<Duration>,
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
            max_wait: None,
            throttle: None,
            quiet: Duration::from_secs(2),
            wait_quiet: None,
            slab_bytes: 32 << 20,
            hashes: None,
            stop: None,
            live: None,
            open_by_events: None,
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
    /// A file followed live with nothing to take now.
    Wait(String),
    /// A file followed live whose last take is too recent: due in this long.
    Hold(Duration),
    Refuse(IngestError),
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

/// Replays of a batch after commit conflicts before giving up with a clear error.
const CONFLICT_REPLAYS: usize = 5;

/// What Floe has ingested into one group of a branch, as of one snapshot.
#[derive(Debug, Default)]
struct Known {
    /// The newest provenance of each source path.
    files: BTreeMap<String, FileProvenance>,
    /// Records taken from each source so far, per dimension (a file that grew is
    /// taken in several steps).
    records: BTreeMap<String, Counts>,
    /// When a commit last took records from each source.
    taken_at: BTreeMap<String, SystemTime>,
    /// The snapshot this was read at.
    tip: Option<String>,
}

/// What Floe has ingested into `group` of `branch` (as of snapshot `at`, else the
/// tip). Other groups belong to other folders (another desktop, another instrument)
/// whose file names may well repeat ours.
async fn ingested_here(
    repo: &Repo,
    branch: &str,
    group: &str,
    at: Option<&str>,
) -> Result<Known, StoreError> {
    let history = match at {
        Some(snapshot) => repo.history_at(snapshot).await?,
        None => repo.history_or_empty(branch).await?,
    };
    let mut known = Known { tip: history.first().map(|c| c.id.clone()), ..Known::default() };
    for c in history.into_iter().rev() {
        let time = SystemTime::from(c.time);
        for f in c.provenance.into_iter().flat_map(|p| p.files) {
            if f.group == group {
                known.taken_at.insert(f.source.clone(), time);
                let total = known.records.entry(f.source.clone()).or_default();
                for (d, n) in &f.records {
                    *total.entry(d.clone()).or_default() += n;
                }
                known.files.insert(f.source.clone(), f);
            }
        }
    }
    Ok(known)
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
            Some(b) => full(b, o) || b.iter().map(|x| x.size).sum::<u64>() + p.size > o.batch_bytes,
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
    pub async fn run(&self) -> Result<Report, IngestError> {
        let started = Instant::now();
        let o = &self.opts;
        let mut report = Report {
            repo: o.repo.to_string(),
            branch: o.branch.clone(),
            dry_run: o.dry_run,
            ..Report::default()
        };
        let folder_label = o.folder.display().to_string();
        if !o.folder.is_dir() {
            return Err(IngestError::Folder(folder_label));
        }
        let patterns = scan::patterns(&o.patterns)
            .map_err(|e| IngestError::Folder(format!("{folder_label} (pattern: {e})")))?;
        let candidates = scan::scan(&o.folder, &patterns)
            .map_err(|_| IngestError::Folder(folder_label.clone()))?;

        let complete_files = self.find_complete(candidates, &mut report).await;
        let now = self.clock.now();

        // 2. open the repository (created on first write, split along the first file's append dims)
        let first_dims = complete_files.iter().find_map(|(c, _, _)| {
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
            if complete_files.is_empty() {
                report.seconds = started.elapsed().as_secs_f64();
                return Ok(report);
            }
            let mut r = Repo::open_for_write(&o.repo, first_dims.as_deref().unwrap_or(&[])).await?;
            r.set_throttle(o.throttle.clone());
            if o.branch != "main" {
                r.ensure_branch(&o.branch, "main").await?;
            }
            Some(r)
        };
        let our_group = floe_plan::target_group(&o.settings.group, "/");
        // The snapshot we know to be the branch's tip: a writer can start there
        // without asking the storage (on a long link each round trip counts).
        let mut ours = repo
            .as_ref()
            .filter(|r| r.created() && o.branch == "main")
            .map(|_| Repo::initial_snapshot());
        // the first batch's writer, opened while the history is read (its errors
        // count only if there is something to write)
        let mut first_writer = None;
        let known_here = match &repo {
            Some(_) if ours.is_some() => Known { tip: ours.clone(), ..Known::default() },
            Some(r) if !o.dry_run => {
                let (known, writer) = tokio::join!(
                    ingested_here(r, &o.branch, &our_group, None),
                    r.writer(&o.branch)
                );
                first_writer = Some(writer);
                known?
            }
            Some(r) => ingested_here(r, &o.branch, &our_group, None).await?,
            None => Known::default(),
        };
        let mut seen_tip = known_here.tip.clone();
        // the same bytes under another name are a re-send, not new records (a
        // first record equal to the branch's last is allowed, so order alone
        // would not catch a one-record file copied in twice)
        let hashes_here: std::collections::HashSet<&str> =
            known_here.files.values().map(|f| f.blake3.as_str()).collect();

        // 3. what is new in each file; order by data time
        let mut pending = Vec::new();
        for (c, e, take) in complete_files {
            let decision = self.decide(&c, &e, &take, &known_here, &hashes_here, now).await;
            if let Take::Live(reason) = &take {
                let now_live = match &decision {
                    Decision::Take(_) => Some("its settled records are taken live".to_string()),
                    Decision::Wait(why) => {
                        Some(format!("followed live, nothing to take now: {why}"))
                    }
                    Decision::Hold(due) => {
                        Some(format!("followed live, next take in {:.0} s", due.as_secs_f64()))
                    }
                    Decision::Already | Decision::Refuse(_) => None,
                };
                if let Some(live) = now_live {
                    let reason = format!("{reason}; {live}");
                    report.waiting.push(Waiting { file: c.rel.clone(), reason });
                }
            }
            match decision {
                Decision::Take(p) => pending.push(*p),
                Decision::Already => report.already_ingested.push(c.rel.clone()),
                Decision::Wait(_) => {}
                Decision::Hold(due) => {
                    report.held.push(c.rel.clone());
                    let due = due.as_secs_f64();
                    report.held_due_in = Some(report.held_due_in.map_or(due, |d| d.min(due)));
                }
                Decision::Refuse(err) => self.reject(&mut report, &c.rel, err),
            }
        }
        pending.sort_by(|a, b| {
            a.sort_key.total_cmp(&b.sort_key).then_with(|| a.cand.rel.cmp(&b.cand.rel))
        });
        (self.progress)(&Progress::Planned {
            files: pending.len(),
            bytes: pending.iter().map(|p| p.size).sum(),
        });

        // 4. batches: plan, write, commit
        let mut batches = batches(pending, o);
        if let Some(wait) = o.max_wait
            && let Some(last) = batches.last()
            && !full(last, o)
            // a live take keeps its own pace (`live`): it is never held
            && !last.iter().any(|p| p.live)
        {
            // not enough for a commit yet: hold them until more arrive or they are due
            let oldest = last.iter().filter_map(|p| p.modified).min().unwrap_or(now);
            let waited = now.duration_since(oldest).unwrap_or_default();
            if waited < wait {
                let due = (wait - waited).as_secs_f64();
                report.held_due_in = Some(report.held_due_in.map_or(due, |d| d.min(due)));
                report.held.extend(last.iter().map(|p| p.cand.rel.clone()));
                batches.pop();
            }
        }

        if o.dry_run {
            let mut state = match &repo {
                Some(r) => {
                    r.writer(&o.branch)
                        .await?
                        .state(&o.settings.group, &first_dims.clone().unwrap_or_default())
                        .await?
                }
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
                    Err(f) => self.reject(&mut report, &p.cand.rel, f.error),
                }
            }
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }

        let repo = repo.ok_or_else(|| StoreError::NotFound(o.repo.to_string()))?;
        let mut known: Option<(String, RepoState)> = None;
        // what other writers ingested into our group, as of `seen_tip`
        let mut there: BTreeMap<String, FileProvenance> = BTreeMap::new();
        for mut batch in batches {
            if o.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                break; // asked to stop: what is committed stays, the rest waits
            }
            let mut conflicts = 0;
            loop {
                let mut writer = match (first_writer.take(), &ours) {
                    (Some(w), _) => w?,
                    (None, Some(tip)) => repo.writer_at(&o.branch, tip)?,
                    (None, None) => repo.writer(&o.branch).await?,
                };
                let base = writer.base_snapshot().await;
                if seen_tip.as_deref() != Some(base.as_str()) {
                    // someone else committed since we looked: learn what they ingested
                    // (as of the very snapshot this session starts from)
                    let k = ingested_here(&repo, &o.branch, &our_group, Some(&base)).await?;
                    seen_tip = k.tip;
                    there = k.files;
                }
                batch.retain(|p| {
                    let done = there.get(&p.cand.rel).is_some_and(|f| f.blake3 == p.hash);
                    if done {
                        report.already_ingested.push(p.cand.rel.clone());
                    }
                    !done
                });
                if batch.is_empty() {
                    break;
                }
                let dims_hint = first_dims.clone().unwrap_or_default();
                // After our own commit the branch holds exactly what we advanced the
                // state to: reuse it then, read it from the repository otherwise.
                let mut state = match known.take() {
                    Some((id, st)) if id == base => st,
                    _ => writer.state(&o.settings.group, &dims_hint).await?,
                };
                let mut done: Vec<(Pending, FileProvenance)> = Vec::new();
                let mut restart = false;
                let mut rejected_idx = Vec::new();
                for (i, p) in batch.iter().enumerate() {
                    let t = Instant::now();
                    let outcome = self.ingest_file(&mut writer, &mut state, p).await;
                    tracing::debug!(seconds = t.elapsed().as_secs_f64(), file = %p.cand.rel, "write");
                    match outcome {
                        Ok(Some(prov)) => done.push((p.clone(), prov)),
                        // a file without records, identical to what the target holds
                        Ok(None) => report.already_ingested.push(p.cand.rel.clone()),
                        Err(f) => {
                            if !f.error.is_per_file() {
                                return Err(f.error);
                            }
                            self.reject(&mut report, &p.cand.rel, f.error);
                            rejected_idx.push(i);
                            if f.wrote {
                                // the session holds part of this file: throw it away and
                                // redo the batch without the file
                                restart = true;
                                break;
                            }
                        }
                    }
                }
                for i in rejected_idx.into_iter().rev() {
                    batch.remove(i);
                }
                if restart {
                    drop(writer);
                    continue;
                }
                if !done.is_empty() {
                    let message = match done.as_slice() {
                        [(p, _)] => format!("floe: ingest {}", p.cand.rel),
                        [(a, _), .., (b, _)] => format!(
                            "floe: ingest {} files ({} .. {})",
                            done.len(),
                            a.cand.rel,
                            b.cand.rel
                        ),
                        [] => String::new(),
                    };
                    let prov = CommitProvenance {
                        floe_version: FLOE_VERSION.to_string(),
                        files: done.iter().map(|(_, f)| f.clone()).collect(),
                    };
                    writer.finish_uploads().await?;
                    crash_point(report.commits.len() + 1);
                    let t = Instant::now();
                    let id = match writer.commit(&message, &prov).await {
                        Ok(id) => id,
                        Err(StoreError::Conflict(_)) if conflicts + 1 < CONFLICT_REPLAYS => {
                            // Another writer moved the branch and Icechunk could not
                            // rebase onto it (both appended to the same arrays). Our
                            // sources are still here: replay the batch on the new tip,
                            // minus anything the other writer has ingested meanwhile.
                            conflicts += 1;
                            tracing::info!(branch = %o.branch, attempt = conflicts, "commit conflict: replaying the batch on the new tip");
                            known = None;
                            ours = None;
                            seen_tip = None; // re-read what the other writer ingested
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    tracing::debug!(
                        seconds = t.elapsed().as_secs_f64(),
                        files = done.len(),
                        "commit"
                    );
                    known = Some((id.clone(), state));
                    seen_tip = Some(id.clone());
                    ours = Some(id.clone());
                    (self.progress)(&Progress::Committed { id: id.clone(), files: done.len() });
                    for (p, f) in done {
                        add_records(&mut report.records, &f.records);
                        report.bytes += p.size;
                        (self.progress)(&Progress::FileDone {
                            file: p.cand.rel.clone(),
                            bytes: p.size,
                        });
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
                break;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The file's BLAKE3 hash (remembered by path while its size and time stay).
    fn file_hash(&self, c: &Candidate, e: &complete::Evidence) -> std::io::Result<String> {
        let o = &self.opts;
        let lock = |m: &'_ HashMemo| {
            m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&c.path).cloned()
        };
        if let Some((len, mtime, h)) = o.hashes.as_deref().and_then(lock)
            && len == e.len
            && mtime == e.mtime
        {
            return Ok(h);
        }
        let h = scan::hash(&c.path)?;
        if let Some(m) = &o.hashes {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(c.path.clone(), (e.len, e.mtime, h.clone()));
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
        let changed = |how: String| {
            Decision::Refuse(IngestError::ChangedSinceIngest {
                file: c.rel.clone(),
                how,
                old: short(prev.map_or("", |p| p.blake3.as_str())),
                new: short(&hash),
            })
        };
        if let Some(p) = prev {
            if dims.is_empty() {
                // (a Zarr store's metadata touched, as Floe has always read it)
                return if c.is_dir {
                    Decision::Already
                } else {
                    changed("it has no record dimension, so it was stored whole".into())
                };
            }
            if records::fewer(&there, &taken) {
                return changed(format!(
                    "it holds {} records, {} were ingested",
                    show_counts(&there),
                    show_counts(&taken)
                ));
            }
            if p.records_blake3.is_none() && !c.is_dir {
                return changed(
                    "it was ingested by an earlier Floe build, which kept no digest of its records to tell growth from change".into(),
                );
            }
        }
        // one pass: the digest of the records taken before, and of all there are (a
        // new file's is taken while it is copied)
        let digests = if prev.is_some() || live {
            match records::digests(reader.as_ref(), &dims, &[&taken, &there], o.slab_bytes) {
                Ok(d) => d,
                Err(err) if live => return Decision::Wait(err.to_string()),
                Err(err) => return Decision::Refuse(err.into()),
            }
        } else {
            Vec::new()
        };
        if let Some(old) = prev.and_then(|p| p.records_blake3.as_ref())
            && *old != digests[0]
        {
            return changed(format!(
                "its first {} records differ from those ingested",
                show_counts(&taken)
            ));
        }
        if prev.is_some() && !records::fewer(&taken, &there) {
            // same records, other bytes (metadata touched): nothing to add
            return if live { Decision::Wait("no new records".into()) } else { Decision::Already };
        }
        if live {
            if there.values().all(|n| *n == 0) {
                return Decision::Wait("no records yet".into());
            }
            tokio::time::sleep(LIVE_SETTLE).await;
            let again = floe_source::open(&c.path).and_then(|r| {
                let now_there = records::counts(r.dataset(), &dims);
                if records::fewer(&now_there, &there) {
                    return Ok(None);
                }
                records::digests(r.as_ref(), &dims, &[&there], o.slab_bytes)
                    .map(|d| d.into_iter().next())
            });
            if !matches!(&again, Ok(Some(d)) if Some(d) == digests.get(1)) {
                return Decision::Wait("its newest records are still being written".into());
            }
        }
        let upto = (!dims.is_empty()).then(|| there.clone());
        let sort_key = {
            let reader = floe_source::Window::new(reader, taken.clone(), upto.as_ref());
            let dims = floe_plan::append_dims(reader.dataset(), &o.settings).unwrap_or_default();
            match read_coords(&reader, &dims) {
                Ok(coords) => sort_key(reader.dataset(), &coords, &dims),
                Err(err) => return Decision::Refuse(err.into()),
            }
        };
        let size = if c.is_dir { dir_size(&c.path) } else { e.len };
        Decision::Take(Box::new(Pending {
            cand: c.clone(),
            size,
            mtime: e.mtime.map(rfc3339).unwrap_or_default(),
            modified: e.mtime,
            skip: taken,
            upto,
            digest: digests.into_iter().nth(1),
            live,
            hash,
            sort_key,
        }))
    }

    /// Phase 1: which files are complete. Files that are merely recent (nothing
    /// says a writer still has them) are waited for when `wait_quiet` allows it,
    /// so a one-shot sync of files just copied in finishes its job; a file that
    /// changes meanwhile starts its quiet period again, up to the bound. The rest
    /// are reported as waiting, with the reason.
    async fn find_complete(
        &self,
        candidates: Vec<Candidate>,
        report: &mut Report,
    ) -> Vec<(Candidate, complete::Evidence, Take)> {
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

    fn reject(&self, report: &mut Report, file: &str, error: IngestError) {
        let message = error.to_string();
        (self.progress)(&Progress::FileRejected {
            file: file.to_string(),
            message: message.clone(),
        });
        report.rejected.push(Rejected { file: file.to_string(), code: error.code(), message });
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
        // static variables must equal what the repository holds: check before writing
        for op in plan.arrays.iter().filter(|o| o.action == ArrayAction::VerifyStatic) {
            let Some((g, v)) = &op.source else { continue };
            let here =
                reader.read(g, v, &op.region_start, &op.region_count).map_err(IngestError::from)?;
            let meta = &state.arrays.get(&op.path).map(|a| a.metadata.clone()).unwrap_or_default();
            let there = writer
                .read(&op.path, meta, &op.region_start, &op.region_count)
                .await
                .map_err(IngestError::from)?;
            if here != there {
                let error = if plan.whole_again {
                    IngestError::Plan {
                        file: rel.clone(),
                        source: floe_plan::PlanError::WholeDiffers {
                            path: op.path.clone(),
                            what: "its values changed".into(),
                        },
                    }
                } else {
                    IngestError::StaticChanged { file: rel.clone(), path: op.path.clone() }
                };
                return Err(error.into());
            }
        }
        if plan.whole_again {
            return Ok(None);
        }
        let t_verify = t0.elapsed();
        let wrote = |error: IngestError| FileFailure { error, wrote: true };
        for g in &plan.groups {
            writer.put_group(&g.path, &g.metadata).await.map_err(|e| wrote(e.into()))?;
        }
        for op in &plan.arrays {
            if let Some(meta) = &op.metadata {
                writer.put_array(&op.path, meta).await.map_err(|e| wrote(e.into()))?;
            }
        }
        let t_meta = t0.elapsed();
        // copy the variables concurrently: their chunk writes overlap in storage
        let shared: &Writer = writer;
        // (futures collected into a Vec first: a lazy iterator of closures here makes
        // the whole future fail the compiler's Send check when it is spawned)
        let mut copies = Vec::new();
        for op in &plan.arrays {
            if matches!(op.action, ArrayAction::Create | ArrayAction::Append) {
                copies.push(self.copy_array(shared, reader.as_ref(), op, rel));
            }
        }
        let results: Vec<Result<(), IngestError>> =
            futures::stream::iter(copies).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        results.into_iter().collect::<Result<(), _>>().map_err(wrote)?;
        tracing::debug!(
            plan = t_plan.as_secs_f64(),
            verify = t_verify.as_secs_f64(),
            metadata = t_meta.as_secs_f64(),
            copy = t0.elapsed().as_secs_f64(),
            "phases (cumulative)"
        );
        state.advance(&plan, &last);
        let group = floe_plan::target_group(&self.opts.settings.group, "/");
        Ok(Some(FileProvenance {
            source: rel.clone(),
            size: p.size,
            mtime: p.mtime.clone(),
            blake3: p.hash.clone(),
            format: reader.dataset().format.as_str().to_string(),
            group,
            records: plan.records.clone(),
            offsets: plan.offsets.clone(),
            from: p.skip.iter().filter(|(_, n)| **n > 0).map(|(d, n)| (d.clone(), *n)).collect(),
            records_blake3: digest,
        }))
    }

    /// Stream one variable into its array, slab by slab along the outer axis, with
    /// slab edges on chunk boundaries of the target array.
    async fn copy_array(
        &self,
        writer: &Writer,
        reader: &dyn SourceReader,
        op: &ArrayOp,
        rel: &str,
    ) -> Result<(), IngestError> {
        let Some((g, v)) = &op.source else {
            return Ok(());
        };
        let meta = op.metadata.clone().unwrap_or_default();
        if op.region_count.is_empty() {
            let data = reader.read(g, v, &[], &[])?;
            return writer.write(&op.path, &meta, &[], &[], data).await.map_err(Into::into);
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
            if axis == 0 && op.append_axis == Some(0) {
                writer.append(&op.path, &meta, &dst_start, &count, data).await?;
            } else {
                writer.write(&op.path, &meta, &dst_start, &count, data).await?;
            }
            done += take;
        }
        Ok(())
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
fn plan_source(
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

/// Test hook: `FLOE_CRASH_BEFORE_COMMIT=N` aborts the process right before its N-th
/// commit, after everything of that commit has been written: the moment a power cut
/// would hurt most. The crash-safety tests use it; nothing else should.
fn crash_point(commit_number: usize) {
    if std::env::var("FLOE_CRASH_BEFORE_COMMIT").ok().and_then(|v| v.parse::<usize>().ok())
        == Some(commit_number)
    {
        std::process::abort();
    }
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

fn dir_size(dir: &std::path::Path) -> u64 {
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
            })
            .collect()
    }

    fn lens(b: &[Vec<Pending>]) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
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
}
