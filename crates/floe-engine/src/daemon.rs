//! The engine at work: every configured folder watched and synced, one task each,
//! with a control socket for `floe status`, `floe pause` and `floe resume`.
//!
//! Each folder runs cycles of the one-shot ingest (`floe_sync::Ingest`, one commit
//! per file) whenever the watcher or the rescan timer says so; the state machine in
//! [`crate::state`] decides what happens next, and every transition is logged and
//! visible in the status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_core::{ErrorCode, RepoUrl};
use floe_plan::Settings;
use floe_store::StoreError;
use floe_sync::{HashMemo, Ingest, IngestError, IngestOptions, Progress, SystemClock};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use floe_store::throttle::Throttle;

use crate::attention::{self, RejectedFile};
use crate::config::{Config, FolderConfig};
use crate::state::{Backoff, FolderState, Input, Stall, step};
use crate::verification::{self, LastVerification};
use crate::watch::{Change, Write, watch};
use floe_source::complete::WrittenNotClosed;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub debounce: Duration,
    pub rescan_every: Duration,
    pub quiet: Duration,
}

/// What `floe status` shows of one folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FolderStatus {
    pub path: PathBuf,
    pub repo: String,
    pub branch: String,
    pub state: FolderState,
    pub files_pending: u64,
    pub bytes_pending: u64,
    pub files_ingested: u64,
    pub last_commit: Option<String>,
    pub last_error: Option<String>,
    /// Source bytes per second over the last sync cycle.
    pub throughput: f64,
    /// The last verification: of the commit just made, or of the whole folder.
    #[serde(default)]
    pub last_verification: Option<LastVerification>,
    /// The validation gate holds the folder's staged files (none: it does not).
    #[serde(default)]
    pub gate_held: Option<GateHeld>,
    /// The folder went on elsewhere after a schema drift (the newest such move
    /// since the engine started; none: it did not).
    #[serde(default)]
    pub went_on: Option<WentOn>,
    /// The last retention run (`keep`; none: not run since the engine started).
    #[serde(default)]
    pub last_retention: Option<crate::retention::LastRetention>,
    /// Files Floe could not sync, by name, each with its reason (see [`crate::attention`]).
    #[serde(default)]
    pub rejected: Vec<RejectedFile>,
}

impl FolderStatus {
    /// A folder that has done nothing yet, in `state`.
    pub fn new(path: PathBuf, repo: String, branch: String, state: FolderState) -> Self {
        FolderStatus {
            path,
            repo,
            branch,
            state,
            files_pending: 0,
            bytes_pending: 0,
            files_ingested: 0,
            last_commit: None,
            last_error: None,
            throughput: 0.0,
            last_verification: None,
            gate_held: None,
            went_on: None,
            last_retention: None,
            rejected: Vec::new(),
        }
    }
}

/// Where a folder went on after a schema drift, from where, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WentOn {
    /// When the engine moved it (UTC, RFC 3339).
    pub at: String,
    /// The first drift, in words.
    pub reason: String,
    pub from_repo: String,
    pub from_branch: String,
    pub repo: String,
    pub branch: String,
    /// The drifted files that went there first.
    pub files: Vec<String>,
}

/// What the validation gate holds, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateHeld {
    /// The checks that failed, each with the file and what to do.
    pub failures: Vec<floe_sync::gate::Failure>,
    /// The held files (their commits are on the staging branch).
    pub files: Vec<String>,
}

/// A control request, one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Pause {
        folder: Option<PathBuf>,
    },
    Resume {
        folder: Option<PathBuf>,
    },
    /// Re-read the configuration: start added folders, stop removed ones, restart
    /// changed ones (`floe add`/`floe remove` and the app send it).
    Reload,
    /// Look at one folder (or all) now, as if files had changed (`floe gate
    /// release|drop` sends it: the folder takes what it held back at once).
    Rescan {
        folder: Option<PathBuf>,
    },
}

/// The answer, one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
    pub folders: Vec<FolderStatus>,
}

/// Why the daemon cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("a Floe daemon is already running for this user (socket {0}); use `floe status`")]
    AlreadyRunning(String),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("control socket {path}: {source}")]
    Socket { path: String, source: std::io::Error },
    #[error("no Floe daemon is running (no socket at {0}); start one with `floe daemon`")]
    NotRunning(String),
}

/// The default control socket: `$FLOE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/floe`,
/// else the system temp dir, `/floe-daemon.sock`.
pub fn default_socket() -> PathBuf {
    let dir = std::env::var_os("FLOE_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("floe")))
        .unwrap_or_else(|| std::env::temp_dir().join("floe"));
    dir.join("floe-daemon.sock")
}

type Shared = Arc<Mutex<BTreeMap<PathBuf, FolderStatus>>>;

use floe_core::lock;

/// How the control socket reaches a folder task: its queue and its stop flag.
type Control = (mpsc::UnboundedSender<Msg>, Arc<AtomicBool>);

#[derive(Debug, Clone, Copy)]
enum Msg {
    Change,
    Pause,
    Resume,
}

/// Failures that retrying fixes (the folder goes offline and retries): storage
/// out of reach or answering with errors, another writer's lock, a full disk (someone frees space; the
/// status says which it is). A commit conflict is not one: the ingest already
/// replayed it on the other writer's commits several times, so the folder stops
/// with the reason.
fn transient(e: &IngestError) -> Option<Stall> {
    match e {
        IngestError::Store(StoreError::Unreachable { .. }) => Some(Stall::Unreachable),
        IngestError::Store(StoreError::Failing { .. }) => Some(Stall::Failing),
        IngestError::Store(StoreError::Busy(_)) => Some(Stall::Busy),
        IngestError::Store(StoreError::DiskFull { .. }) => Some(Stall::DiskFull),
        _ => None,
    }
}

/// Run until `shutdown` resolves.
pub async fn run(
    opts: DaemonOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let config = Config::load(&opts.config)?;
    if UnixStream::connect(&opts.socket).await.is_ok() {
        return Err(DaemonError::AlreadyRunning(opts.socket.display().to_string()));
    }
    let sock_err = |source| DaemonError::Socket { path: opts.socket.display().to_string(), source };
    if let Some(dir) = opts.socket.parent() {
        std::fs::create_dir_all(dir).map_err(sock_err)?;
    }
    let _ = std::fs::remove_file(&opts.socket);
    let listener = UnixListener::bind(&opts.socket).map_err(sock_err)?;

    let limits = Limits {
        permits: Arc::new(tokio::sync::Semaphore::new(config.limits.parallel_folders.max(1))),
        throttle: config.limits.upload_bytes_per_sec.map(Throttle::new),
    };
    let engine = Arc::new(Engine {
        opts: opts.clone(),
        shared: Arc::default(),
        limits,
        running: Mutex::new(BTreeMap::new()),
    });
    engine.reconcile(config.folders);
    tracing::info!(folders = lock(&engine.running).len(), socket = %opts.socket.display(), "floe daemon running");

    let serve = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let engine = engine.clone();
            tokio::spawn(async move {
                let _ = serve_one(stream, &engine).await;
            });
        }
    };
    tokio::select! {
        _ = shutdown => {}
        _ = serve => {}
    }
    engine.reconcile(Vec::new());
    let _ = std::fs::remove_file(&opts.socket);
    tracing::info!("floe daemon stopped");
    Ok(())
}

/// One folder's task and the way to reach it.
struct Running {
    config: FolderConfig,
    control: Control,
    /// The folder's `ignore` setting, which changes without a restart.
    ignore: Ignore,
    task: tokio::task::JoinHandle<()>,
}

/// The folders of one daemon.
struct Engine {
    opts: DaemonOptions,
    shared: Shared,
    limits: Limits,
    running: Mutex<BTreeMap<PathBuf, Running>>,
}

impl Engine {
    /// Make the running folders those of `folders`: stop the ones that went away or
    /// changed (a pause or the files ignored are not a change: the running folder
    /// takes the new `ignore` as it is), start the new ones. A folder keeps its
    /// pause across reloads.
    fn reconcile(&self, folders: Vec<FolderConfig>) {
        let same = |a: &FolderConfig, b: &FolderConfig| {
            FolderConfig { paused: false, ignore: vec![], ..a.clone() }
                == FolderConfig { paused: false, ignore: vec![], ..b.clone() }
        };
        let mut running = lock(&self.running);
        let keep: Vec<PathBuf> = folders
            .iter()
            .filter(|f| running.get(&f.path).is_some_and(|r| same(&r.config, f)))
            .map(|f| f.path.clone())
            .collect();
        let gone: Vec<PathBuf> = running.keys().filter(|p| !keep.contains(p)).cloned().collect();
        for p in gone {
            if let Some(r) = running.remove(&p) {
                r.task.abort();
                lock(&self.shared).remove(&p);
                tracing::info!(folder = %p.display(), "folder stopped");
            }
        }
        for folder in folders {
            if let Some(r) = running.get(&folder.path) {
                *lock(&r.ignore) = folder.ignore.clone();
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = Arc::new(AtomicBool::new(folder.paused));
            let ignore: Ignore = Arc::new(Mutex::new(folder.ignore.clone()));
            let ctx = Ctx {
                opts: self.opts.clone(),
                shared: self.shared.clone(),
                limits: self.limits.clone(),
            };
            let task = tokio::spawn(folder_task(folder.clone(), ctx, tx.clone(), rx, stop.clone()));
            running.insert(
                folder.path.clone(),
                Running { config: folder, control: (tx, stop), ignore, task },
            );
        }
    }

    fn reload(&self) -> Reply {
        match Config::load(&self.opts.config) {
            Ok(c) => {
                let n = c.folders.len();
                self.reconcile(c.folders);
                Reply { ok: true, message: format!("reloaded: {n} folder(s)"), folders: vec![] }
            }
            Err(e) => Reply { ok: false, message: e.to_string(), folders: vec![] },
        }
    }
}

async fn serve_one(stream: UnixStream, engine: &Engine) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply { ok: false, message: format!("bad request ({e})"), folders: vec![] },
        Ok(Request::Status) => {
            Reply { ok: true, message: String::new(), folders: engine.statuses() }
        }
        Ok(Request::Pause { folder }) => control(engine, folder.as_deref(), Action::Pause),
        Ok(Request::Resume { folder }) => control(engine, folder.as_deref(), Action::Resume),
        Ok(Request::Rescan { folder }) => control(engine, folder.as_deref(), Action::Rescan),
        Ok(Request::Reload) => engine.reload(),
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    w.write_all(&out).await
}

/// What a control request does to a folder.
#[derive(Debug, Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Rescan,
}

impl Action {
    /// The message to the folder's task, whether its current sync stops after the
    /// commit under way (`None`: leave the flag), and the word for the reply.
    fn parts(self) -> (Msg, Option<bool>, &'static str) {
        match self {
            Action::Pause => (Msg::Pause, Some(true), "paused"),
            Action::Resume => (Msg::Resume, Some(false), "resumed"),
            Action::Rescan => (Msg::Change, None, "looking at"),
        }
    }
}

/// Pause, resume or rescan one folder (by path) or all of them.
fn control(engine: &Engine, folder: Option<&Path>, action: Action) -> Reply {
    let running = lock(&engine.running);
    let targets: Vec<_> = running
        .iter()
        .filter(|(p, _)| {
            folder.is_none_or(|f| *p == f || std::fs::canonicalize(f).is_ok_and(|f| f == **p))
        })
        .collect();
    let (msg, stop_flag, verb) = action.parts();
    let mut unsaved = None;
    if let Some(paused) = stop_flag {
        let paths: Vec<&Path> = targets.iter().map(|(p, _)| p.as_path()).collect();
        unsaved = remember_pause(&engine.opts.config, &paths, paused).err();
    }
    for (tx, stop) in targets.iter().map(|(_, r)| &r.control) {
        // the flag stops a sync cycle after its current commit; the message moves the
        // state machine once the cycle is over
        if let Some(on) = stop_flag {
            stop.store(on, Ordering::SeqCst);
        }
        let _ = tx.send(msg);
    }
    if targets.is_empty() {
        return Reply {
            ok: false,
            message: "no such sync folder; `floe list` shows them".into(),
            folders: vec![],
        };
    }
    let message = match unsaved {
        None => format!("{verb} {} folder(s)", targets.len()),
        Some(e) => format!(
            "{verb} {} folder(s), but the config could not keep it ({e}): after a restart they \
             start as before",
            targets.len()
        ),
    };
    Reply { ok: true, message, folders: vec![] }
}

/// Keep a pause (or resume) in the config, so the folders start that way after a
/// restart or a reboot.
fn remember_pause(
    config: &Path,
    folders: &[&Path],
    paused: bool,
) -> Result<(), crate::config::ConfigError> {
    let mut c = Config::load(config)?;
    let mut changed = false;
    for f in c.folders.iter_mut().filter(|f| folders.contains(&f.path.as_path())) {
        changed |= f.paused != paused;
        f.paused = paused;
    }
    if changed { c.save(config) } else { Ok(()) }
}

impl Engine {
    /// The folders running now (a stopped folder's task may publish once more),
    /// their refused files marked by the `ignore` setting as it is now.
    fn statuses(&self) -> Vec<FolderStatus> {
        let running = lock(&self.running);
        let shared = lock(&self.shared);
        let mut out = Vec::new();
        for s in shared.values() {
            let Some(r) = running.get(&s.path) else { continue };
            let mut s = s.clone();
            attention::mark_ignored(&mut s.rejected, &lock(&r.ignore));
            out.push(s);
        }
        out
    }
}

/// Ask a running daemon.
pub async fn request(socket: &Path, req: &Request) -> Result<Reply, DaemonError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|_| DaemonError::NotRunning(socket.display().to_string()))?;
    let sock_err = |source| DaemonError::Socket { path: socket.display().to_string(), source };
    let (r, mut w) = stream.into_split();
    let mut body = serde_json::to_vec(req).unwrap_or_default();
    body.push(b'\n');
    w.write_all(&body).await.map_err(sock_err)?;
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).await.map_err(sock_err)?;
    serde_json::from_str(&line).map_err(|e| sock_err(std::io::Error::other(e)))
}

/// What the folders of one daemon share: how many may sync at once, and the upload limit.
#[derive(Debug, Clone)]
struct Limits {
    permits: Arc<tokio::sync::Semaphore>,
    throttle: Option<Arc<Throttle>>,
}

/// A folder's `ignore` setting, as the last reload left it: applied where the
/// status is read ([`Engine::statuses`]), so its task never needs it.
type Ignore = Arc<Mutex<Vec<String>>>;

/// A folder task's view of the daemon.
struct Ctx {
    opts: DaemonOptions,
    shared: Shared,
    limits: Limits,
}

async fn folder_task(
    mut folder: FolderConfig,
    ctx: Ctx,
    tx: mpsc::UnboundedSender<Msg>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    stop: Arc<AtomicBool>,
) {
    let Ctx { opts, shared, limits } = ctx;
    let path = folder.path.clone();
    let initial = if folder.paused { FolderState::Paused } else { FolderState::Scanning };
    let status = Arc::new(Mutex::new(FolderStatus::new(
        path.clone(),
        folder.repo.clone(),
        folder.branch.clone(),
        initial.clone(),
    )));
    let publish = {
        let (shared, status, path) = (shared.clone(), status.clone(), path.clone());
        move || {
            let s = lock(&status).clone();
            lock(&shared).insert(path.clone(), s);
        }
    };
    publish();
    let machine = Arc::new(Mutex::new(initial));
    let apply = {
        let (machine, status, path) = (machine.clone(), status.clone(), path.clone());
        move |input: Input| {
            let mut m = lock(&machine);
            let next = step(&m, &input);
            if next != *m {
                tracing::info!(folder = %path.display(), from = ?*m, to = ?next, "transition");
                let mut st = lock(&status);
                st.state = next.clone();
                if let FolderState::Syncing { files, bytes } = next {
                    st.files_pending = files;
                    st.bytes_pending = bytes;
                } else if !matches!(next, FolderState::Paused) {
                    st.files_pending = 0;
                    st.bytes_pending = 0;
                }
                *m = next;
            }
        }
    };
    let watch_tx = tx.clone();
    // files written and not closed since, as the events tell (writers that /proc
    // does not show us: another user's, another container's)
    let writes: Arc<WrittenNotClosed> = Arc::default();
    let marks = writes.clone();
    let _watcher = match watch(&path, opts.debounce, opts.rescan_every, move |c: Change| match c {
        Change::Writes(w) => {
            let now = std::time::Instant::now();
            for (p, kind) in w {
                match kind {
                    Write::Data => marks.written(&p, now),
                    Write::Closed => marks.closed(&p),
                }
            }
        }
        // events may have been lost: what they said no longer holds
        Change::Error(_) => marks.forget_all(),
        Change::Paths(_) | Change::Rescan => {
            let _ = watch_tx.send(Msg::Change);
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            lock(&status).last_error = Some(e.to_string());
            None
        }
    };
    let mut url = match RepoUrl::parse(&folder.repo) {
        Ok(u) => u,
        Err(e) => {
            apply(Input::Fatal { code: ErrorCode::Usage, message: e.to_string() });
            publish();
            return;
        }
    };
    let hashes: Arc<HashMemo> = Arc::default();
    let verify_every =
        folder.verify_every_hours.filter(|h| *h > 0.0).map(|h| Duration::from_secs_f64(h * 3600.0));
    let mut verify_at = verify_every.map(|e| tokio::time::Instant::now() + e);
    let policy = folder.retention().unwrap_or_else(|e| {
        lock(&status).last_error = Some(e);
        None
    });
    // the first run soon after the start (a daemon restarted daily would never
    // reach a day), then every `keep` (a day at most)
    let mut retain_at =
        policy.map(|p| tokio::time::Instant::now() + p.every().min(RETENTION_FIRST_AFTER));
    let backoff = Backoff::default();
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut recheck_at: Option<tokio::time::Instant> = None;
    loop {
        publish();
        let current = lock(&machine).clone();
        if current == FolderState::Scanning {
            let mut o = IngestOptions::new(path.clone(), url.clone());
            o.branch = folder.branch.clone();
            o.settings = Settings {
                group: folder.group.clone(),
                append_dims: folder.append_dims.clone(),
                ..Settings::default()
            };
            o.patterns = folder.patterns.clone();
            // the cadence says when; a due commit takes all that waits, in commits
            // of at most max_commit_bytes (one per file, as before, made a 288-file
            // backlog ~4x slower than `floe sync` of it locally, ~17 s a file over
            // a 500 ms link)
            o.batch_files = usize::MAX;
            o.batch_target_bytes = None;
            o.batch_bytes = folder.commit.max_commit_bytes.max(1);
            o.trigger = Some(folder.commit.trigger());
            o.throttle = limits.throttle.clone();
            o.quiet = opts.quiet;
            o.hashes = Some(hashes.clone());
            o.stop = Some(stop.clone());
            o.open_by_events = Some(writes.clone());
            o.live = folder.live_every_secs.map(|s| Duration::from_secs_f64(s.max(0.0)));
            o.on_drift = folder.on_drift;
            o.tag_on_change = folder.tag_on_change.clone();
            o.gate = folder.gate.clone();
            let started = Instant::now();
            let progress = {
                let (apply, status, publish) = (apply.clone(), status.clone(), publish.clone());
                move |p: &Progress| {
                    match p {
                        Progress::Planned { files, bytes } => apply(Input::Scanned {
                            ready: *files as u64,
                            bytes: *bytes,
                            waiting: 0,
                        }),
                        Progress::Committed { id, files } => {
                            let mut st = lock(&status);
                            st.last_commit = Some(id.clone());
                            st.files_ingested += *files as u64;
                            let (files, bytes) =
                                (st.files_pending.saturating_sub(*files as u64), st.bytes_pending);
                            drop(st);
                            apply(Input::Committed { files, bytes });
                        }
                        Progress::FileRejected { file, code, message } => {
                            attention::refused_now(
                                &mut lock(&status).rejected,
                                file,
                                *code,
                                message,
                                &now_utc(),
                            );
                        }
                        Progress::FileDone { bytes, .. } => {
                            let mut st = lock(&status);
                            st.bytes_pending = st.bytes_pending.saturating_sub(*bytes);
                        }
                        // the daemon does not wait inside a sync (wait_quiet is off):
                        // a recent file is taken at the next event or rescan
                        Progress::WaitingQuiet { .. } => {}
                    }
                    publish();
                }
            };
            let ingest = Ingest { opts: o, clock: &SystemClock, progress: &progress };
            // bounded concurrency: a folder syncs when one of the permits is free
            let permit = limits.permits.acquire().await;
            let outcome = ingest.run().await;
            drop(permit);
            crate::memory::trim_after_cycle();
            match outcome {
                Ok(report) => {
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    if report.bytes > 0 {
                        lock(&status).throughput = report.bytes as f64 / secs;
                    }
                    let waiting = (report.waiting.len() + report.held.len()) as u64;
                    // whatever state progress left it in, the cycle is over
                    let m = lock(&machine).clone();
                    if matches!(m, FolderState::Syncing { .. }) {
                        apply(Input::Committed { files: 0, bytes: 0 });
                    }
                    if lock(&machine).clone() == FolderState::Scanning {
                        apply(Input::Scanned { ready: 0, bytes: 0, waiting });
                    }
                    let now = tokio::time::Instant::now();
                    recheck_at = match (report.waiting.is_empty(), report.held_due_in) {
                        (false, _) => Some(now + opts.quiet),
                        (true, Some(due)) => Some(now + Duration::from_secs_f64(due.max(0.05))),
                        (true, None) => None,
                    };
                    if !report.waiting.is_empty()
                        && let Some(due) = report.held_due_in
                    {
                        recheck_at = recheck_at.map(|r| r.min(now + Duration::from_secs_f64(due)));
                    }
                    retry_at = None;
                    lock(&status).gate_held = gate_hold(&report);
                    {
                        let mut st = lock(&status);
                        st.rejected =
                            attention::after_cycle(&st.rejected, &report, &now_utc(), |f| {
                                path.join(f).exists()
                            });
                    }
                    if let Some(sw) = report.switched.last() {
                        let (moved, unsaved) = went_on(&opts.config, &mut folder, sw);
                        url = RepoUrl::parse(&folder.repo).unwrap_or(url);
                        let mut st = lock(&status);
                        (st.repo, st.branch) = (folder.repo.clone(), folder.branch.clone());
                        st.went_on = Some(moved);
                        if let Some(e) = unsaved {
                            st.last_error = Some(e);
                        }
                    }
                    // (a held commit is not on the branch: it is read back once it is)
                    if folder.verify_after_commit
                        && !report.held_at_gate()
                        && let Some(last) = report.commits.last()
                    {
                        let files = report.ingested.iter().map(|i| i.file.clone()).collect();
                        verify_into(&folder, &url, Some((last.clone(), files)), &status).await;
                    }
                }
                Err(e) if let Some(cause) = transient(&e) => {
                    apply(Input::Transient { message: e.to_string(), cause });
                    lock(&status).last_error = Some(e.to_string());
                    let attempt = match lock(&machine).clone() {
                        FolderState::Offline { attempt, .. } => attempt,
                        _ => 1,
                    };
                    let jitter = f64::from(started.elapsed().subsec_nanos() % 1000) / 1000.0;
                    retry_at = Some(tokio::time::Instant::now() + backoff.delay(attempt, jitter));
                }
                Err(e) => {
                    apply(Input::Fatal { code: e.code(), message: e.to_string() });
                    lock(&status).last_error = Some(e.to_string());
                }
            }
            continue;
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Change) => apply(Input::Changed),
                Some(Msg::Pause) => apply(Input::Pause),
                Some(Msg::Resume) => apply(Input::Resume),
                None => return,
            },
            _ = tokio::time::sleep_until(retry_at.unwrap_or(far)), if retry_at.is_some() => {
                retry_at = None;
                apply(Input::RetryDue);
            }
            _ = tokio::time::sleep_until(recheck_at.unwrap_or(far)), if recheck_at.is_some() => {
                recheck_at = None;
                apply(Input::Changed);
            }
            _ = tokio::time::sleep_until(verify_at.unwrap_or(far)), if verify_at.is_some() => {
                if lock(&machine).clone() != FolderState::Paused {
                    let permit = limits.permits.acquire().await;
                    verify_into(&folder, &url, None, &status).await;
                    drop(permit);
                }
                verify_at = verify_every.map(|e| tokio::time::Instant::now() + e);
            }
            _ = tokio::time::sleep_until(retain_at.unwrap_or(far)), if retain_at.is_some() => {
                // a quiet moment: nothing to ingest, nothing waiting, nothing to retry
                let quiet = lock(&machine).clone() == FolderState::Idle
                    && recheck_at.is_none()
                    && retry_at.is_none();
                let now = tokio::time::Instant::now();
                retain_at = match policy {
                    Some(p) if quiet => {
                        let permit = limits.permits.acquire().await;
                        let r = crate::retention::run(&url, p, chrono::Utc::now()).await;
                        drop(permit);
                        tracing::info!(folder = %path.display(), expired = r.expired, bytes_freed = r.bytes_freed, error = ?r.error, "retention");
                        lock(&status).last_retention = Some(r);
                        Some(now + p.every())
                    }
                    Some(_) => Some(now + opts.quiet.max(Duration::from_secs(1))),
                    None => None,
                };
            }
        }
    }
}

fn now_utc() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The first retention run comes this long after the folder starts, at most.
const RETENTION_FIRST_AFTER: Duration = Duration::from_secs(300);

/// What the gate holds after a sync, for the status.
fn gate_hold(report: &floe_sync::Report) -> Option<GateHeld> {
    match &report.gate {
        Some(floe_sync::gate::GateOutcome::Held { failures, files }) => {
            Some(GateHeld { failures: failures.clone(), files: files.clone() })
        }
        Some(
            floe_sync::gate::GateOutcome::Clear | floe_sync::gate::GateOutcome::Promoted { .. },
        )
        | None => None,
    }
}

/// Run a verification (see [`verification::verify`]) and keep its result in the
/// folder's status; a damaged repository, or a verification that could not run, is
/// also the folder's last problem. Data keeps flowing either way.
async fn verify_into(
    folder: &FolderConfig,
    url: &RepoUrl,
    after_commit: Option<(String, std::collections::BTreeSet<String>)>,
    status: &Mutex<FolderStatus>,
) {
    match verification::verify(folder, url, after_commit).await {
        Ok(v) => {
            tracing::info!(
                folder = %folder.path.display(),
                scope = ?v.scope,
                verdict = v.verdict.as_str(),
                summary = %v.summary,
                "verified"
            );
            let mut st = lock(status);
            if v.verdict == floe_sync::verify::Verdict::Damaged {
                let first = v.findings.first().cloned().unwrap_or_else(|| v.summary.clone());
                st.last_error = Some(format!("Verification found damage: {first}"));
            }
            st.last_verification = Some(v);
        }
        Err(e) => {
            lock(status).last_error = Some(format!("The verification could not run: {e}"));
        }
    }
}

/// The folder went on elsewhere after a schema drift: it syncs there from now on,
/// in this run and after a restart (the config says so). Returns the move, and
/// the problem when the config could not say so.
fn went_on(
    config: &Path,
    folder: &mut FolderConfig,
    sw: &floe_sync::drift::Switch,
) -> (WentOn, Option<String>) {
    let moved = WentOn {
        at: now_utc(),
        reason: sw.reason.clone(),
        from_repo: folder.repo.clone(),
        from_branch: folder.branch.clone(),
        repo: sw.repo.clone(),
        branch: sw.branch.clone(),
        files: sw.files.clone(),
    };
    folder.repo = sw.repo.clone();
    folder.branch = sw.branch.clone();
    let saved = Config::load(config).and_then(|mut c| {
        if let Some(f) = c.folders.iter_mut().find(|f| f.path == folder.path) {
            f.repo = folder.repo.clone();
            f.branch = folder.branch.clone();
        }
        c.save(config)
    });
    tracing::info!(folder = %folder.path.display(), repo = %sw.repo, branch = %sw.branch, reason = %sw.reason, "schema drift: went on");
    let unsaved = saved.err().map(|e| {
        format!(
            "the folder went on in {} (branch {}) after a schema drift, but the config could not be updated ({e}): after a restart it drifts there again",
            sw.repo, sw.branch
        )
    });
    (moved, unsaved)
}
