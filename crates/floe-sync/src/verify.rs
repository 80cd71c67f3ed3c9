//! `floe verify`: does the repository hold, value for value, what the folder's
//! files hold?
//!
//! A checksum says that bytes arrived; it does not say that the repository's arrays
//! read back as the file's values. Verification reads both: for every step of every
//! file the branch's provenance lists, the file's records (through the same
//! [`floe_source::Window`] and the same plan a sync makes, so the same conversions:
//! char arrays as strings, record times in the repository's encoding, packing kept)
//! and the repository's records at the recorded offsets, only those ranges, and
//! compares them bit for bit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use floe_core::{Continuation, FileProvenance, RepoUrl};
use floe_plan::{ArrayAction, ArrayOp, RepoState, Settings};
use floe_source::records::{self, Counts};
use floe_source::{Data, SourceReader};
use floe_store::{Holdings, Reader, Repo, StoreError};
use serde::Serialize;

use crate::IngestError;
use crate::scan::{self, Candidate};

/// Files compared at once (their repository reads overlap on a remote storage).
const FILES_AT_ONCE: usize = 4;

/// What a verification covers.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub folder: PathBuf,
    pub repo: RepoUrl,
    pub branch: String,
    /// Group the folder's files were synced into (`/` by default).
    pub group: String,
    /// File name patterns; empty: the sync's defaults.
    pub patterns: Vec<String>,
    /// Largest slab read from a source, and from the repository, at once.
    pub slab_bytes: u64,
    /// Verify this snapshot instead of the branch's tip (a read-after-write check of
    /// the commit just made).
    pub snapshot: Option<String>,
    /// Only these sources (paths relative to the folder); `None`: all of them.
    pub only: Option<BTreeSet<String>>,
}

impl VerifyOptions {
    pub fn new(folder: PathBuf, repo: RepoUrl) -> Self {
        VerifyOptions {
            folder,
            repo,
            branch: "main".into(),
            group: "/".into(),
            patterns: Vec::new(),
            // (source and repository slabs of four files at once: 64 MiB at most)
            slab_bytes: 8 << 20,
            snapshot: None,
            only: None,
        }
    }
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone)]
pub enum VerifyProgress {
    Planned { files: usize, bytes: u64 },
    FileDone { file: String, bytes: u64 },
}

/// The outcome of a verification, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The repository differs from a source that did not change: a value, a missing
    /// or unreadable chunk. The repository is damaged there.
    Damaged,
    /// Files are not (all) in the repository yet, or changed since they were
    /// ingested; what the repository holds is what was ingested.
    Behind,
    /// Every file is in the repository and reads back as its values.
    Verified,
}

impl Verdict {
    /// Process exit code of `floe verify` (README's table).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Verified => 0,
            Verdict::Behind => 1,
            Verdict::Damaged => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Damaged => "damaged",
            Verdict::Behind => "behind",
            Verdict::Verified => "verified",
        }
    }
}

/// Records `start .. end` along a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.end == self.start + 1 {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}..{}", self.start, self.end)
        }
    }
}

/// What is wrong with one range of one array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wrong {
    /// The values read differ from the file's.
    Values,
    /// A chunk object the repository refers to is not in the storage.
    MissingChunk { detail: String },
    /// A chunk object is there but does not decode.
    UnreadableChunk { detail: String },
    /// The array's description does not fit the file any more (or it is gone).
    Metadata { detail: String },
}

/// One array of one file that does not read back as the file's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Path of the array in the repository.
    pub array: String,
    /// The record dimension the ranges are along (none: a static array, whole).
    pub dim: Option<String>,
    /// The file's records concerned.
    pub records: Vec<Span>,
    /// The same records in the repository.
    pub repo_records: Vec<Span>,
    pub wrong: Wrong,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.array)?;
        if let Some(d) = &self.dim {
            let show = |s: &[Span]| s.iter().map(Span::to_string).collect::<Vec<_>>().join(", ");
            write!(
                f,
                " records {} along `{d}` (repository records {})",
                show(&self.records),
                show(&self.repo_records)
            )?;
        }
        match &self.wrong {
            Wrong::Values => write!(f, ": other values"),
            Wrong::MissingChunk { detail } => write!(f, ": a chunk object is missing ({detail})"),
            Wrong::UnreadableChunk { detail } => write!(f, ": a chunk does not decode ({detail})"),
            Wrong::Metadata { detail } => write!(f, ": {detail}"),
        }
    }
}

/// Why one file is not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// In the folder, not in the repository: not synced (yet), or refused.
    NotInRepository,
    /// On the staging branch, held at the validation gate (a check failed):
    /// not on the branch until `floe gate release` (or dropped with `floe gate drop`).
    Held,
    /// The file changed since it was ingested (`how`); the differences between its
    /// ingested records now and the repository's are listed (a file that only grew
    /// has none).
    Changed { how: String, differences: Vec<Difference> },
    /// The file is as it was ingested, and the repository does not read back as it.
    Differs { differences: Vec<Difference> },
    /// The file is as it was ingested, but cannot be read now.
    Unreadable { detail: String },
}

impl Problem {
    pub fn verdict(&self) -> Verdict {
        match self {
            Problem::Differs { .. } => Verdict::Damaged,
            Problem::NotInRepository
            | Problem::Held
            | Problem::Changed { .. }
            | Problem::Unreadable { .. } => Verdict::Behind,
        }
    }
}

/// One file that is not verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub source: String,
    #[serde(flatten)]
    pub problem: Problem,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |d: &[Difference]| d.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match &self.problem {
            Problem::NotInRepository => write!(
                f,
                "{}: not in the repository (run `floe sync`; `floe sync --dry-run` says why a file is refused)",
                self.source
            ),
            Problem::Held => write!(
                f,
                "{}: held at the validation gate on the staging branch (`floe gate release` puts it on the branch, `floe gate drop` discards it)",
                self.source
            ),
            Problem::Changed { how, differences } if differences.is_empty() => {
                write!(f, "{}: changed since ingest: {how}", self.source)
            }
            Problem::Changed { how, differences } => write!(
                f,
                "{}: changed since ingest: {how}; its ingested records now differ: {}",
                self.source,
                list(differences).join("; ")
            ),
            Problem::Differs { differences } => write!(
                f,
                "{}: the repository differs from the file (unchanged since ingest): {}",
                self.source,
                list(differences).join("; ")
            ),
            Problem::Unreadable { detail } => {
                write!(
                    f,
                    "{}: unchanged since ingest but cannot be read now: {detail}",
                    self.source
                )
            }
        }
    }
}

/// A branch or repository the verified one continues, at the snapshot the
/// folder left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Continued {
    pub repo: String,
    pub branch: String,
    pub snapshot: String,
    /// The schema drift that moved the folder on, in words.
    pub reason: String,
    /// The folder's files verified there.
    pub verified: usize,
}

/// What a verification found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub repo: String,
    pub branch: String,
    /// The snapshot that was read.
    pub snapshot: String,
    /// Files that read back exactly, with every step of theirs.
    pub verified: Vec<String>,
    /// Files in the folder with the very bytes of a verified file under another
    /// name (a re-send, which a sync skips), by the file they copy.
    pub copies: BTreeMap<String, String>,
    /// Files that are not verified, one finding each.
    pub findings: Vec<Finding>,
    /// Files the repository holds that are gone from the folder (instruments rotate
    /// their folders): counted, not a failure.
    pub gone: Vec<String>,
    /// Files dropped at the validation gate (`floe gate drop`), with the very bytes
    /// they had then: kept out of the branch on purpose, so counted, not a failure.
    pub dropped: Vec<String>,
    /// The branches or repositories this snapshot continues (the folder went on
    /// from there after a schema drift), followed back: their files are verified
    /// against them.
    pub continued: Vec<Continued>,
    /// Source bytes read (files hashed and compared).
    pub bytes: u64,
    pub seconds: f64,
}

impl VerifyReport {
    /// The worst of the findings.
    pub fn verdict(&self) -> Verdict {
        self.findings.iter().map(|f| f.problem.verdict()).min().unwrap_or(Verdict::Verified)
    }

    /// `672 files verified`, and what else there is.
    pub fn summary(&self) -> String {
        let ok = self.verified.len() + self.copies.len();
        let mut s = format!(
            "{ok} of {} files verified against snapshot {}",
            ok + self.findings.len() + self.dropped.len(),
            short(&self.snapshot)
        );
        let count = |v: Verdict| self.findings.iter().filter(|f| f.problem.verdict() == v).count();
        let damaged = count(Verdict::Damaged);
        let behind = count(Verdict::Behind);
        for c in self.continued.iter().filter(|c| c.verified > 0) {
            let whose = if c.repo == self.repo { String::new() } else { format!(" of {}", c.repo) };
            s.push_str(&format!(
                " ({} of them against branch {}{whose} at {}, which this one continues after a schema drift)",
                c.verified,
                c.branch,
                short(&c.snapshot)
            ));
        }
        if damaged > 0 {
            s.push_str(&format!("; {damaged} where the repository differs from the file"));
        }
        if behind > 0 {
            s.push_str(&format!("; {behind} not in the repository or changed since ingest"));
        }
        if !self.dropped.is_empty() {
            s.push_str(&format!(
                "; {} dropped at the validation gate, as `floe gate drop` recorded",
                self.dropped.len()
            ));
        }
        if !self.gone.is_empty() {
            s.push_str(&format!(
                "; {} more in the repository are gone from the folder (listed with --json)",
                self.gone.len()
            ));
        }
        s
    }
}

fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

/// Every step in which the history took records from each source of `group`,
/// oldest first.
type Steps = BTreeMap<String, Vec<FileProvenance>>;

fn steps_of(history: Vec<floe_store::CommitInfo>, group: &str) -> Steps {
    let mut steps = Steps::new();
    for c in history.into_iter().rev() {
        for f in c.provenance.into_iter().flat_map(|p| p.files) {
            if f.group == group {
                steps.entry(f.source.clone()).or_default().push(f);
            }
        }
    }
    steps
}

/// The records each array lost to `floe delete`, from the deletion records of a
/// history: a deleted variable's runs along the coordinate of its first dimension
/// (in its group).
fn deleted_of(
    history: &[floe_store::CommitInfo],
    state: &RepoState,
) -> BTreeMap<String, Vec<(u64, u64)>> {
    let parent = |p: &str| p.rsplit_once('/').map_or("", |(g, _)| g).to_string();
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for d in history.iter().filter_map(|c| c.provenance.as_ref()?.deletion.as_ref()) {
        for var in &d.variables {
            let Some(first) = state.arrays.get(var).and_then(|a| a.dims.first()) else {
                continue;
            };
            for (coord, runs) in &d.runs {
                if coord.rsplit('/').next() == Some(first.as_str()) && parent(coord) == parent(var)
                {
                    out.entry(var.clone()).or_default().extend(runs.iter().map(|r| (r[0], r[1])));
                }
            }
        }
    }
    out
}

/// A verification run.
pub struct Verify<'a> {
    pub opts: VerifyOptions,
    pub progress: &'a (dyn Fn(&VerifyProgress) + Sync),
}

impl std::fmt::Debug for Verify<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verify").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// One snapshot the folder's files went into, shared by the files of one run
/// (their checks run as tasks of their own, so that reading and decoding sources
/// takes every core): the one verified, or one it continues.
struct Context {
    reader: Reader,
    state: RepoState,
    steps: Steps,
    slab_bytes: u64,
    /// Records of each array deleted on purpose (`floe delete`): runs `(first,
    /// count)` of repository indices, which hold fill values now, not the files'.
    deleted: BTreeMap<String, Vec<(u64, u64)>>,
    /// BLAKE3 of each static array's values in the repository, read once per run
    /// (every file of a folder carries the same `lat`/`lon`), or why it did not read.
    statics: tokio::sync::Mutex<HashMap<String, Result<blake3::Hash, Wrong>>>,
}

impl Context {
    /// What `reader`'s snapshot of `repo` holds of `group`, and the branch or
    /// repository it continues, if any.
    async fn at(
        reader: Reader,
        repo: &Repo,
        group: &str,
        slab_bytes: u64,
    ) -> Result<(Context, Option<Continuation>), IngestError> {
        let history = repo.history_at(reader.snapshot()).await?;
        let continues = floe_store::continuation_of(&history);
        let state = reader.state(group).await?;
        let deleted = deleted_of(&history, &state);
        let steps = steps_of(history, group);
        let statics = Default::default();
        Ok((Context { reader, state, steps, slab_bytes, deleted, statics }, continues))
    }
}

/// Follow the continuations back (a folder that went on after a schema drift
/// holds its earlier files in the branch or repository it came from): each is one
/// more target, at the snapshot the folder left it.
async fn follow(
    repo: &Repo,
    mut next: Option<Continuation>,
    group: &str,
    slab_bytes: u64,
    targets: &mut Vec<Context>,
) -> Result<Vec<Continued>, IngestError> {
    let mut out = Vec::new();
    while let Some(c) = next.take() {
        if out.len() >= floe_store::MAX_CONTINUATIONS {
            break;
        }
        let other = repo.open_continued(&c).await?;
        let there = other.as_ref().unwrap_or(repo);
        let reader = there.reader_at(&c.snapshot).await?;
        let (target, further) = Context::at(reader, there, group, slab_bytes).await?;
        targets.push(target);
        next = further;
        out.push(Continued {
            repo: c.repo,
            branch: c.branch,
            snapshot: c.snapshot,
            reason: c.reason,
            verified: 0,
        });
    }
    Ok(out)
}

impl Verify<'_> {
    pub async fn run(&self) -> Result<VerifyReport, IngestError> {
        let t0 = Instant::now();
        let o = &self.opts;
        let group = floe_plan::target_group(&o.group, "/");
        let repo = Repo::open(&o.repo).await?;
        let reader = match &o.snapshot {
            Some(s) => repo.reader_at(s).await?,
            None => repo.reader(&o.branch).await?,
        };
        let (first, continues) = Context::at(reader, &repo, &group, o.slab_bytes).await?;
        let mut targets = vec![first];
        let mut report = VerifyReport {
            repo: o.repo.to_string(),
            branch: o.branch.clone(),
            snapshot: targets[0].reader.snapshot().to_string(),
            verified: Vec::new(),
            copies: BTreeMap::new(),
            findings: Vec::new(),
            gone: Vec::new(),
            dropped: Vec::new(),
            continued: Vec::new(),
            bytes: 0,
            seconds: 0.0,
        };
        report.continued = follow(&repo, continues, &group, o.slab_bytes, &mut targets).await?;
        let here = self.scan_folder()?;
        if o.only.is_none() {
            let present: BTreeSet<&str> = here.iter().map(|c| c.rel.as_str()).collect();
            let listed: BTreeSet<&String> = targets.iter().flat_map(|t| t.steps.keys()).collect();
            report.gone =
                listed.into_iter().filter(|s| !present.contains(s.as_str())).cloned().collect();
        }
        let sizes: Vec<u64> = here.iter().map(source_size).collect();
        (self.progress)(&VerifyProgress::Planned { files: here.len(), bytes: sizes.iter().sum() });
        let targets = Arc::new(targets);
        let mut unmatched = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut todo = here.into_iter().zip(sizes);
        loop {
            while tasks.len() < FILES_AT_ONCE
                && let Some((c, size)) = todo.next()
            {
                tasks.spawn(check(targets.clone(), c, size));
            }
            let Some(done) = tasks.join_next().await else { break };
            // (a check that panicked is a bug of Floe's: it goes on as the panic it was;
            // no task is ever aborted)
            let (c, size, outcome) =
                done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            report.bytes += size;
            (self.progress)(&VerifyProgress::FileDone { file: c.rel.clone(), bytes: size });
            match outcome {
                Outcome::Verified { target } => {
                    if let Some(c) = target.checked_sub(1).and_then(|i| report.continued.get_mut(i))
                    {
                        c.verified += 1;
                    }
                    report.verified.push(c.rel)
                }
                Outcome::NotListed(hash) => unmatched.push((c.rel, hash)),
                Outcome::Problem(problem) => {
                    report.findings.push(Finding { source: c.rel, problem })
                }
            }
        }
        if !unmatched.is_empty() {
            let gate = self.at_the_gate(&repo, &group).await?;
            self.copies_or_missing(&targets, &gate, unmatched, &mut report);
        }
        report.verified.sort();
        report.findings.sort_by(|a, b| a.source.cmp(&b.source));
        report.seconds = t0.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The folder's candidate files (the sync's patterns), or only those asked for.
    fn scan_folder(&self) -> Result<Vec<Candidate>, IngestError> {
        let o = &self.opts;
        let folder_err = || IngestError::Folder(o.folder.display().to_string());
        if !o.folder.is_dir() {
            return Err(folder_err());
        }
        let patterns = scan::patterns(&o.patterns).map_err(|_| folder_err())?;
        let mut found = scan::scan(&o.folder, &patterns).map_err(|_| folder_err())?;
        if let Some(only) = &o.only {
            found.retain(|c| only.contains(&c.rel));
        }
        Ok(found)
    }

    /// What the branch's staging branch holds, if the folder is gated (else
    /// nothing): a file there that the branch does not list is held or was
    /// dropped. Read only when some file is unlisted (it is a second history).
    async fn at_the_gate(&self, repo: &Repo, group: &str) -> Result<Holdings, IngestError> {
        let staging = crate::gate::staging_branch(&self.opts.branch);
        Ok(repo.holdings(&staging, group, None).await?)
    }

    /// A file no step lists: a copy of a verified file's bytes under another name
    /// (a re-send, which a sync skips), dropped at the gate with these very
    /// bytes, held there, else not in the repository.
    fn copies_or_missing(
        &self,
        targets: &[Context],
        gate: &Holdings,
        unmatched: Vec<(String, String)>,
        report: &mut VerifyReport,
    ) {
        let verified: BTreeSet<&str> = report.verified.iter().map(String::as_str).collect();
        let mut by_hash: HashMap<&str, &str> = HashMap::new();
        for (source, s) in targets.iter().flat_map(|t| &t.steps) {
            if let Some(last) = s.last()
                && verified.contains(source.as_str())
            {
                by_hash.insert(last.blake3.as_str(), source.as_str());
            }
        }
        for (rel, hash) in unmatched {
            if let Some(of) = by_hash.get(hash.as_str()) {
                report.copies.insert(rel, of.to_string());
            } else if gate.dropped.get(&rel) == Some(&hash) {
                report.dropped.push(rel);
            } else if gate.files.get(&rel).is_some_and(|f| f.blake3 == hash) {
                report.findings.push(Finding { source: rel, problem: Problem::Held });
            } else {
                report.findings.push(Finding { source: rel, problem: Problem::NotInRepository });
            }
        }
    }
}

/// One file of the folder against every step the history lists for it: of the
/// snapshot verified, else of the first one it continues that lists the file.
async fn check(
    targets: Arc<Vec<Context>>,
    c: Candidate,
    size: u64,
) -> Result<(Candidate, u64, Outcome), IngestError> {
    let hash = match scan::hash(&c.path) {
        Ok(h) => h,
        Err(e) => {
            let problem = Problem::Unreadable { detail: e.to_string() };
            return Ok((c, size, Outcome::Problem(problem)));
        }
    };
    let found = targets.iter().enumerate().find_map(|(i, t)| Some((i, t, t.steps.get(&c.rel)?)));
    let Some((target, ctx, file_steps)) = found else {
        return Ok((c, size, Outcome::NotListed(hash)));
    };
    let outcome = match check_steps(ctx, &c, file_steps, &hash, size).await? {
        Checked::Verified => Outcome::Verified { target },
        Checked::Problem(p) => Outcome::Problem(p),
    };
    Ok((c, size, outcome))
}

async fn check_steps(
    ctx: &Context,
    c: &Candidate,
    file_steps: &[FileProvenance],
    hash: &str,
    size: u64,
) -> Result<Checked, IngestError> {
    // (never empty: a source is listed with the steps that took from it)
    let Some(last) = file_steps.last() else { return Ok(Checked::Verified) };
    let changed = last.blake3 != hash;
    let mut differences = Vec::new();
    for step in file_steps {
        match compare_step(ctx, &c.path, step).await {
            Ok(mut d) => differences.append(&mut d),
            Err(Fault::Store(e)) => return Err(e.into()),
            Err(Fault::Source(e)) if changed => {
                let how = format!("{}; reading it failed: {e}", changed_how(last, hash, size));
                return Ok(Checked::Problem(Problem::Changed { how, differences }));
            }
            Err(Fault::Source(e)) => {
                return Ok(Checked::Problem(Problem::Unreadable { detail: e.to_string() }));
            }
        }
    }
    Ok(match (changed, differences.is_empty()) {
        (false, true) => Checked::Verified,
        (false, false) => Checked::Problem(Problem::Differs { differences }),
        (true, _) => {
            let mut how = changed_how(last, hash, size);
            // (opened again only here: most files are unchanged, and opening a
            // NetCDF-4 file reads its whole metadata)
            let more = floe_source::open(&c.path).ok().and_then(|r| grew(r.as_ref(), file_steps));
            if let Some(more) = more {
                how.push_str(&format!("; {more}"));
            }
            Checked::Problem(Problem::Changed { how, differences })
        }
    })
}

/// What one file came to.
enum Outcome {
    /// Verified against the target at this index (0: the snapshot asked for).
    Verified {
        target: usize,
    },
    /// No step lists it; its hash.
    NotListed(String),
    Problem(Problem),
}

/// What the steps of a listed file came to.
enum Checked {
    Verified,
    Problem(Problem),
}

/// Why comparing a step stopped.
enum Fault {
    /// The storage failed (not one object of it): the whole run stops.
    Store(StoreError),
    /// The source could not be read.
    Source(floe_source::SourceError),
}

/// How a file differs from its newest step's record.
fn changed_how(last: &FileProvenance, hash: &str, size: u64) -> String {
    let mut parts = Vec::new();
    if last.size != size {
        parts.push(format!("{} bytes then, {size} now", last.size));
    }
    parts.push(format!("hash {} then, {} now", short(&last.blake3), short(hash)));
    parts.join(", ")
}

/// Records the file holds beyond what its steps took, in words.
fn grew(source: &dyn SourceReader, file_steps: &[FileProvenance]) -> Option<String> {
    let mut taken = Counts::new();
    for s in file_steps {
        for (d, n) in &s.records {
            *taken.entry(d.clone()).or_default() += n;
        }
    }
    let dims: Vec<String> = taken.keys().cloned().collect();
    let there = records::counts(source.dataset(), &dims);
    if records::fewer(&there, &taken) {
        let show = |c: &Counts| c.iter().map(|(d, n)| format!("{n} `{d}`")).collect::<Vec<_>>();
        return Some(format!(
            "it holds {} records, {} were ingested",
            show(&there).join(", "),
            show(&taken).join(", ")
        ));
    }
    let more: Vec<String> = there
        .iter()
        .filter_map(|(d, n)| {
            let t = taken.get(d).copied().unwrap_or(0);
            (*n > t).then(|| format!("{} new records along `{d}`", n - t))
        })
        .collect();
    (!more.is_empty()).then(|| format!("it grew: {} not synced yet", more.join(", ")))
}

/// The source's size as a sync records it.
fn source_size(c: &Candidate) -> u64 {
    if c.is_dir {
        crate::ingest::dir_size(&c.path)
    } else {
        std::fs::metadata(&c.path).map(|m| m.len()).unwrap_or(0)
    }
}

/// The step's records of the file against the repository's at the step's offsets.
async fn compare_step(
    ctx: &Context,
    path: &std::path::Path,
    step: &FileProvenance,
) -> Result<Vec<Difference>, Fault> {
    // (opened per step: a Window owns its reader, and most files have one step)
    let source = floe_source::open(path).map_err(Fault::Source)?;
    let upto: Counts = step
        .records
        .iter()
        .map(|(d, n)| (d.clone(), step.from.get(d).copied().unwrap_or(0) + n))
        .collect();
    let window = floe_source::Window::new(source, step.from.clone(), Some(&upto));
    let settings = Settings {
        group: step.group.clone(),
        append_dims: step.records.keys().cloned().collect(),
        ..Settings::default()
    };
    let plan = match crate::ingest::plan_source(&window, &step.source, &ctx.state, &settings) {
        Ok((plan, _)) => plan,
        Err(IngestError::Source(e)) => return Err(Fault::Source(e)),
        Err(e) => {
            return Ok(vec![Difference {
                array: step.group.clone(),
                dim: None,
                records: Vec::new(),
                repo_records: Vec::new(),
                wrong: Wrong::Metadata { detail: e.to_string() },
            }]);
        }
    };
    let mut out = Vec::new();
    for op in &plan.arrays {
        let found = match op.action {
            ArrayAction::Extend => continue,
            ArrayAction::Create => vec![Difference {
                array: op.path.clone(),
                dim: None,
                records: Vec::new(),
                repo_records: Vec::new(),
                wrong: Wrong::Metadata { detail: "the repository has no such array".into() },
            }],
            ArrayAction::VerifyStatic => compare_static(ctx, &window, op).await?,
            ArrayAction::Append => compare_records(ctx, &window, op, step).await?,
        };
        out.extend(found);
    }
    Ok(out)
}

/// A damaged object is a finding about the records it holds; a failing storage
/// stops the run (explicit table, no catch-all: a new kind must be placed).
fn damage(e: StoreError) -> Result<Wrong, StoreError> {
    match e {
        StoreError::MissingObject { detail, .. } => Ok(Wrong::MissingChunk { detail }),
        StoreError::Array { detail, .. } => Ok(Wrong::UnreadableChunk { detail }),
        e @ (StoreError::NotFound(_)
        | StoreError::NotARepository(_)
        | StoreError::NoBranch { .. }
        | StoreError::MissingBucket(_)
        | StoreError::Credentials { .. }
        | StoreError::Unreachable { .. }
        | StoreError::Failing { .. }
        | StoreError::DiskFull { .. }
        | StoreError::NoPermission { .. }
        | StoreError::Busy(_)
        | StoreError::Conflict(_)
        | StoreError::BadSnapshotId { .. }
        | StoreError::Repository { .. }) => Err(e),
    }
}

/// BLAKE3 of values as read (text: each string with its length).
fn digest(data: &Data) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    match data {
        Data::Fixed(b) => {
            h.update(b);
        }
        Data::Strings(v) => {
            for s in v {
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    h.finalize()
}

/// A static array (no record dimension): the file's values against the
/// repository's, whole. The repository's side is read once per run.
async fn compare_static(
    ctx: &Context,
    window: &dyn SourceReader,
    op: &ArrayOp,
) -> Result<Vec<Difference>, Fault> {
    let Some((g, v)) = &op.source else { return Ok(Vec::new()) };
    let here = window.read(g, v, &op.region_start, &op.region_count).map_err(Fault::Source)?;
    let mut statics = ctx.statics.lock().await;
    let there = match statics.get(&op.path) {
        Some(known) => known.clone(),
        None => {
            let meta =
                ctx.state.arrays.get(&op.path).map(|a| a.metadata.clone()).unwrap_or_default();
            let read = ctx.reader.read(&op.path, &meta, &op.region_start, &op.region_count).await;
            let known = match read {
                Ok(d) => Ok(digest(&d)),
                Err(e) => Err(damage(e).map_err(Fault::Store)?),
            };
            statics.insert(op.path.clone(), known.clone());
            known
        }
    };
    let wrong = match there {
        Ok(h) if h == digest(&here) => return Ok(Vec::new()),
        Ok(_) => Wrong::Values,
        Err(w) => w,
    };
    Ok(vec![Difference {
        array: op.path.clone(),
        dim: None,
        records: Vec::new(),
        repo_records: Vec::new(),
        wrong,
    }])
}

/// Where one array's records of one step are, and how it is read.
struct Records<'a> {
    op: &'a ArrayOp,
    meta: &'a serde_json::Value,
    axis: usize,
    /// The records in the step's window, and their first index in the repository.
    count: u64,
    repo_offset: u64,
}

/// A record array: the step's records of the file against the repository's at
/// the step's offset, slab by slab on the repository's chunk boundaries.
async fn compare_records(
    ctx: &Context,
    window: &dyn SourceReader,
    op: &ArrayOp,
    step: &FileProvenance,
) -> Result<Vec<Difference>, Fault> {
    let (Some((g, v)), Some(axis)) = (&op.source, op.append_axis) else { return Ok(Vec::new()) };
    let Some(array) = ctx.state.arrays.get(&op.path) else { return Ok(Vec::new()) };
    let dim = array.dims[axis].clone();
    let r = Records {
        op,
        meta: &array.metadata,
        axis,
        count: op.region_count[axis],
        repo_offset: step.offsets.get(&dim).copied().unwrap_or(0),
    };
    let mut wrong: BTreeMap<WrongKey, (Wrong, BTreeSet<u64>)> = BTreeMap::new();
    for (start, take) in slabs(&r, ctx.slab_bytes) {
        let mut src_start = vec![0u64; op.region_count.len()];
        src_start[axis] = start;
        let mut count = op.region_count.clone();
        count[axis] = take;
        let mut here = window.read(g, v, &src_start, &count).map_err(Fault::Source)?;
        if let (Some(m), Data::Fixed(bytes)) = (&op.time_map, &here) {
            // (a value the map refuses was refused at ingest: it is not in the repository)
            here = Data::Fixed(m.apply(bytes).unwrap_or_default());
        }
        for (at, found) in compare_slab(ctx, &r, start, &count, &here).await? {
            wrong
                .entry(WrongKey::of(&found))
                .or_insert_with(|| (found, BTreeSet::new()))
                .1
                .insert(at);
        }
    }
    let from = step.from.get(&dim).copied().unwrap_or(0);
    // records deleted on purpose hold fill values now: not a difference
    if let Some(runs) = ctx.deleted.get(&op.path) {
        let gone = |i: &u64| runs.iter().any(|(a, n)| (*a..a + n).contains(&(r.repo_offset + i)));
        for (_, at) in wrong.values_mut() {
            at.retain(|i| !gone(i));
        }
        wrong.retain(|_, (_, at)| !at.is_empty());
    }
    Ok(wrong
        .into_values()
        .map(|(wrong, at)| Difference {
            array: op.path.clone(),
            dim: Some(dim.clone()),
            records: spans(at.iter().map(|i| from + i)),
            repo_records: spans(at.iter().map(|i| r.repo_offset + i)),
            wrong,
        })
        .collect())
}

/// Differences of one array are gathered by what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum WrongKey {
    Values,
    MissingChunk,
    UnreadableChunk,
    Metadata,
}

impl WrongKey {
    fn of(w: &Wrong) -> WrongKey {
        match w {
            Wrong::Values => WrongKey::Values,
            Wrong::MissingChunk { .. } => WrongKey::MissingChunk,
            Wrong::UnreadableChunk { .. } => WrongKey::UnreadableChunk,
            Wrong::Metadata { .. } => WrongKey::Metadata,
        }
    }
}

/// The window's records in slabs `(start, count)` along the axis: each ends on a
/// chunk boundary of the repository's array (or the window's end) and holds as
/// many whole chunks as fit in `slab_bytes`.
fn slabs(r: &Records<'_>, slab_bytes: u64) -> Vec<(u64, u64)> {
    let item = r.op.dtype.size().unwrap_or(16) as u64;
    let per_index: u64 =
        r.op.region_count
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != r.axis)
            .map(|(_, n)| *n)
            .product::<u64>()
            * item;
    let chunk = r.op.chunks.get(r.axis).copied().unwrap_or(1).max(1);
    let max_idx = (slab_bytes / per_index.max(1)).max(1);
    let mut out = Vec::new();
    let mut done = 0;
    while done < r.count {
        let pos = r.repo_offset + done;
        let mut take = chunk - pos % chunk;
        while take + chunk <= max_idx && done + take < r.count {
            take += chunk;
        }
        let take = take.min(r.count - done);
        out.push((done, take));
        done += take;
    }
    out
}

/// One slab (records `start .. start + count[axis]` of the window): which of its
/// records are wrong, and how. A slab that does not read is read again chunk by
/// chunk, so a missing or broken chunk names its own records.
async fn compare_slab(
    ctx: &Context,
    r: &Records<'_>,
    start: u64,
    count: &[u64],
    here: &Data,
) -> Result<Vec<(u64, Wrong)>, Fault> {
    let take = count[r.axis];
    let chunk = r.op.chunks.get(r.axis).copied().unwrap_or(1).max(1);
    let mut at = vec![0u64; count.len()];
    at[r.axis] = r.repo_offset + start;
    match ctx.reader.read(&r.op.path, r.meta, &at, count).await {
        Ok(there) => Ok(differing_records(here, &there, count, r.axis)
            .into_iter()
            .map(|i| (start + i, Wrong::Values))
            .collect()),
        Err(e) => {
            let wrong = damage(e).map_err(Fault::Store)?;
            let first_chunk_end = chunk - (r.repo_offset + start) % chunk;
            if take <= first_chunk_end {
                return Ok((start..start + take).map(|i| (i, wrong.clone())).collect());
            }
            // chunk by chunk
            let mut out = Vec::new();
            let mut done = 0;
            while done < take {
                let n = (chunk - (r.repo_offset + start + done) % chunk).min(take - done);
                let mut c = count.to_vec();
                c[r.axis] = n;
                let piece = slice_records(here, count, r.axis, done, n);
                let found = Box::pin(compare_slab(ctx, r, start + done, &c, &piece)).await?;
                out.extend(found);
                done += n;
            }
            Ok(out)
        }
    }
}

/// Elements of one index along `axis` of a box of shape `count`, and how many
/// indices follow each other within one run: element `e` is at index
/// `(e / inner) % count[axis]`.
fn inner_len(count: &[u64], axis: usize) -> u64 {
    count[axis + 1..].iter().product()
}

/// The records (indices along `axis`, relative to the box) whose values differ.
fn differing_records(here: &Data, there: &Data, count: &[u64], axis: usize) -> Vec<u64> {
    if here == there {
        // (the common case, one memcmp)
        return Vec::new();
    }
    let inner = inner_len(count, axis).max(1);
    let along = count[axis].max(1);
    let mut bad = BTreeSet::new();
    match (here, there) {
        (Data::Fixed(a), Data::Fixed(b)) if a.len() == b.len() => {
            let n: u64 = count.iter().product();
            let item = a.len().checked_div(n as usize).unwrap_or(0);
            if item == 0 {
                return Vec::new();
            }
            for (e, (x, y)) in a.chunks_exact(item).zip(b.chunks_exact(item)).enumerate() {
                if x != y {
                    bad.insert((e as u64 / inner) % along);
                }
            }
        }
        (Data::Strings(a), Data::Strings(b)) if a.len() == b.len() => {
            for (e, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    bad.insert((e as u64 / inner) % along);
                }
            }
        }
        // a different length or kind: every record
        _ => bad.extend(0..count[axis]),
    }
    bad.into_iter().collect()
}

/// Records `from .. from + n` along `axis` of a box of shape `count`.
fn slice_records(data: &Data, count: &[u64], axis: usize, from: u64, n: u64) -> Data {
    let inner = inner_len(count, axis) as usize;
    let along = count[axis] as usize;
    let outer: usize = count[..axis].iter().product::<u64>() as usize;
    let (from, n) = (from as usize, n as usize);
    match data {
        Data::Fixed(b) => {
            let total: usize = outer * along * inner;
            let item = b.len().checked_div(total).unwrap_or(0);
            let mut out = Vec::with_capacity(outer * n * inner * item);
            for o in 0..outer {
                let s = ((o * along + from) * inner) * item;
                out.extend_from_slice(&b[s..s + n * inner * item]);
            }
            Data::Fixed(out)
        }
        Data::Strings(v) => {
            let mut out = Vec::with_capacity(outer * n * inner);
            for o in 0..outer {
                let s = (o * along + from) * inner;
                out.extend_from_slice(&v[s..s + n * inner]);
            }
            Data::Strings(out)
        }
    }
}

/// Sorted indices as ranges.
fn spans(indices: impl Iterator<Item = u64>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for i in indices {
        match out.last_mut() {
            Some(s) if s.end == i => s.end = i + 1,
            _ => out.push(Span { start: i, end: i + 1 }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_that_differ_are_found_along_any_axis() {
        // shape (2, 3): axis 1 is the record axis; element (1, 2) differs
        let a = Data::Fixed((0u8..6).collect());
        let mut b = (0u8..6).collect::<Vec<_>>();
        b[5] = 99;
        assert_eq!(differing_records(&a, &Data::Fixed(b.clone()), &[2, 3], 1), vec![2]);
        assert_eq!(differing_records(&a, &Data::Fixed(b), &[2, 3], 0), vec![1]);
        assert_eq!(differing_records(&a, &Data::Fixed(vec![0; 3]), &[2, 3], 0), vec![0, 1]);
        let s = |v: &[&str]| Data::Strings(v.iter().map(|x| x.to_string()).collect());
        assert_eq!(differing_records(&s(&["a", "b"]), &s(&["a", "c"]), &[2], 0), vec![1]);
    }

    #[test]
    fn a_slab_is_cut_into_records_along_its_axis() {
        // shape (2, 3) of u8, records 1..3 along axis 1
        let d = Data::Fixed((0u8..6).collect());
        assert_eq!(slice_records(&d, &[2, 3], 1, 1, 2), Data::Fixed(vec![1, 2, 4, 5]));
        assert_eq!(slice_records(&d, &[2, 3], 0, 1, 1), Data::Fixed(vec![3, 4, 5]));
    }

    #[test]
    fn indices_become_ranges_and_verdicts_give_exit_codes() {
        let s = spans([1, 2, 3, 7, 9, 10].into_iter());
        let shown: Vec<String> = s.iter().map(Span::to_string).collect();
        assert_eq!(shown, vec!["1..4", "7", "9..11"]);
        assert_eq!(Verdict::Verified.exit_code(), 0);
        assert_eq!(Verdict::Behind.exit_code(), 1);
        assert_eq!(Verdict::Damaged.exit_code(), 7);
        assert!(Verdict::Damaged < Verdict::Behind, "the worst verdict wins");
    }
}
