//! `floe`: sync instrument output into Icechunk repositories.
//!
//! A thin shell: parse arguments, call the sync/store API, print. Exit codes:
//! 0 all good; 1 some files were rejected (the others were ingested);
//! 2 usage error; 3 repository error; 4 storage unreachable; 5 commit conflict;
//! 70 internal error.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use floe_api::sync::{IngestOptions, Progress};
use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::{Cadence, Config, ConfigError};
use floe_engine::daemon::{self, DaemonError, DaemonOptions, Request};
use floe_plan::Settings;
use indicatif::{ProgressBar, ProgressStyle};

/// `println!` for the command's output, except that a reader who went away (`floe
/// log | head`) ends the command quietly, as a pipe's writer should, instead of
/// panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Write to standard output; on a broken pipe, exit as a killed pipe writer would.
#[expect(clippy::exit, reason = "nobody reads the output any more: there is nothing left to do")]
fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args)
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}

mod args;
mod mount;

use args::*;

/// Resolves on Ctrl-C (`"interrupted"`) or SIGTERM (`"terminated"`).
async fn shutdown_signal() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => "terminated",
    }
}

/// A size such as `10GiB`, `500MB`, `4096` (bytes). `KiB`/`MiB`/`GiB`/`TiB` (and
/// bare `K`/`M`/`G`/`T`) are powers of 1024; `KB`/`MB`/`GB`/`TB` powers of 1000.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("`{s}` is not a size; write e.g. 10GiB or 500MB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        u => {
            return Err(format!(
                "unknown size unit `{u}` in `{s}`; use KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ));
        }
    };
    Ok((n * mult) as u64)
}

#[derive(Debug, Parser)]
#[command(
    name = "floe",
    version,
    about = "Sync scientific array data (NetCDF, Zarr) into Icechunk repositories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest every complete NetCDF/Zarr file of a folder into a repository, exactly once.
    Sync(SyncArgs),
    /// Register a sync folder (kept in the user's config; secrets never go there).
    Add(AddArgs),
    /// Run every registered folder in the foreground: watch, sync, retry (Ctrl-C stops).
    Daemon(DaemonArgs),
    /// Show what the running daemon is doing, per folder.
    Status(StatusArgs),
    /// Pause syncing (all folders, or one) in the running daemon.
    Pause(PauseArgs),
    /// Resume syncing (all folders, or one) in the running daemon.
    Resume(ResumeArgs),
    /// Unregister a sync folder (its repository is left as it is).
    Remove(RemoveArgs),
    /// Stop counting files a folder could not sync as needing attention (they are
    /// still tried: once fixed, they sync).
    Ignore(IgnoreArgs),
    /// List the registered sync folders.
    List(ListArgs),
    /// Keep the credentials for a destination (bucket or container) in the OS keychain.
    /// Asks for them (secrets without echo; from standard input when it is not a
    /// terminal), never takes them on the command line.
    Login(LoginArgs),
    /// Forget the keychain credentials of a destination.
    Logout(LogoutArgs),
    /// Check a destination: credentials, reachability, permissions, upload throughput.
    Doctor(DoctorArgs),
    /// Print a branch's history with the provenance of each commit.
    Log(LogArgs),
    /// Mount a repository read-only: branches/, tags/, snapshots/ and by-time/ as
    /// folders, each a plain Zarr v3 hierarchy; or a prefix holding many
    /// repositories, its prefixes as folders and each repository with its own.
    /// Runs until Ctrl-C or `floe unmount` (with --background, in a process of its own).
    Mount(MountArgs),
    /// Every Floe mount: its repository, the process serving it, its state, and
    /// whether it is mounted again at login.
    Mounts(MountsArgs),
    /// Every repository under a prefix, with its latest commit, branches and size,
    /// newest first.
    Repos(ReposArgs),
    /// Unmount a Floe mount (made by `floe mount` or the app), and no longer mount
    /// it at login.
    Unmount(UnmountArgs),
    /// Show how a source file maps onto a repository, without writing anything.
    Inspect(InspectArgs),
    /// Compare every file of a folder with what the repository holds: in it,
    /// unchanged since ingest, and its records read back as the file's values.
    Verify(VerifyArgs),
    /// Decide what a folder's validation gate holds (see `--gate`).
    #[command(subcommand)]
    Gate(GateCommand),
    /// Expire snapshots older than a cutoff, keeping branch tips and tags (what
    /// the expired ones ingested stays known: no file is taken twice).
    Expire(ExpireArgs),
    /// Delete what no branch, tag or kept snapshot needs, older than the grace period.
    Gc(GcArgs),
    /// Bytes of a repository by kind, and what `expire` + `gc` would free now.
    Du(DuArgs),
    /// Overwrite a time window's records with fill values, in one commit that
    /// records the window, the variables and the reason (after `expire` + `gc` the
    /// old values are gone from the storage).
    Delete(DeleteArgs),
    /// Count, min, max and mean of a variable over a time window, or as a series
    /// (`--every 1d`), from the statistics Floe keeps per file at ingest: only a
    /// file a window edge cuts through is read. `--rebuild` fills them in for a
    /// repository written before Floe kept them.
    Stats(StatsArgs),
}

/// What to do with the files a validation gate holds.
#[derive(Debug, clap::Subcommand)]
enum GateCommand {
    /// Promote the held files anyway: the branch moves to them, and the commit
    /// that moves it records the release and the checks that failed.
    Release(GateDecisionArgs),
    /// Discard the held files: the staging branch goes back to the branch, and a
    /// commit records the dropped files, which are not taken again until they change.
    Drop(GateDecisionArgs),
}

/// Exit status of a `floe sync` stopped by Ctrl-C or SIGTERM (128 + SIGINT, as
/// shells report an interrupted command).
const EXIT_INTERRUPTED: i32 = 130;

/// A failure that stops the command: its code and its message.
struct Failure(ErrorCode, String);

impl<E: std::fmt::Display> From<(ErrorCode, E)> for Failure {
    fn from((c, e): (ErrorCode, E)) -> Self {
        Failure(c, e.to_string())
    }
}

impl From<floe_api::ApiError> for Failure {
    fn from(e: floe_api::ApiError) -> Self {
        Failure(e.code, e.message)
    }
}

/// Send pause or resume to the running daemon.
async fn control(req: Request) -> Result<i32, Failure> {
    let reply = floe_api::engine::ask(&daemon::default_socket(), &req).await?;
    out!("{}", reply.message);
    Ok(0)
}

// the error tables live in floe-api, shared with the app
fn daemon_err(e: DaemonError) -> Failure {
    floe_api::ApiError::from(e).into()
}

fn config_err(e: ConfigError) -> Failure {
    floe_api::ApiError::from(e).into()
}

fn repo_url(s: &str) -> Result<RepoUrl, Failure> {
    RepoUrl::parse(s).map_err(|e| Failure(ErrorCode::Usage, e.to_string()))
}

fn settings(
    group: &str,
    append_dim: Vec<String>,
    chunk_mib: f64,
    appends_per_chunk: u64,
) -> Settings {
    Settings {
        group: if group.starts_with('/') { group.to_string() } else { format!("/{group}") },
        append_dims: append_dim,
        target_chunk_bytes: ((chunk_mib * 1048576.0) as u64).max(1024),
        appends_per_chunk,
    }
}

/// What is logged unless `FLOE_LOG` says otherwise: errors, the engine's progress,
/// and what a mount leaves out or cannot read (an unreadable repository in a
/// catalog shows as an empty folder; the log says why).
const DEFAULT_LOG: &str = "error,floe_engine=info,floe_mount=warn,floe_fuse=warn";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The mount serves the kernel from its own threads and I/O runtime: it runs
    // outside the command runtime.
    let outcome = match cli.command {
        Command::Mount(a) => mount::mount(a),
        command => match floe_api::engine::runtime() {
            Ok(runtime) => runtime.block_on(run(command)),
            Err(e) => Err(Failure(ErrorCode::Internal, format!("cannot start: {e}"))),
        },
    };
    match outcome {
        Ok(code) => ExitCode::from(code as u8),
        Err(Failure(code, msg)) => {
            eprintln!("floe: {msg}");
            ExitCode::from(code.exit_code() as u8)
        }
    }
}

/// One function per subcommand. The mount's two run outside this runtime (`main`
/// sends them there): it serves the kernel from threads and a runtime of its own.
async fn run(command: Command) -> Result<i32, Failure> {
    match command {
        Command::Mount(a) => tokio::task::spawn_blocking(|| mount::mount(a))
            .await
            .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?,
        Command::Unmount(a) => mount::unmount(a).await,
        Command::Mounts(a) => mount::mounts(a),
        Command::Sync(a) => sync(a).await,
        Command::Add(a) => add(a).await,
        Command::Daemon(a) => daemon(a).await,
        Command::Status(a) => status(a).await,
        Command::Pause(a) => pause(a).await,
        Command::Resume(a) => resume(a).await,
        Command::Remove(a) => remove(a).await,
        Command::Ignore(a) => ignore(a).await,
        Command::List(a) => list(a).await,
        Command::Login(a) => login(a).await,
        Command::Logout(a) => logout(a).await,
        Command::Doctor(a) => doctor(a).await,
        Command::Log(a) => log(a).await,
        Command::Inspect(a) => inspect(a).await,
        Command::Verify(a) => verify(a).await,
        Command::Gate(GateCommand::Release(a)) => gate(a, floe_api::gate::Verdict::Release).await,
        Command::Gate(GateCommand::Drop(a)) => gate(a, floe_api::gate::Verdict::Drop).await,
        Command::Expire(a) => expire(a).await,
        Command::Gc(a) => gc(a).await,
        Command::Du(a) => du(a).await,
        Command::Repos(a) => repos(a).await,
        Command::Delete(a) => delete(a).await,
        Command::Stats(a) => stats(a).await,
    }
}

/// `floe stats`.
async fn stats(a: StatsArgs) -> Result<i32, Failure> {
    if a.rebuild {
        let r = floe_api::stats::rebuild(&a.repo, &a.branch).await?;
        if a.json {
            out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        } else {
            let n: u64 = r.rows.values().sum();
            out!("statistics of {n} files written, in snapshot {}", r.snapshot);
        }
        return Ok(0);
    }
    let Some(var) = a.var else {
        return Err(Failure(
            ErrorCode::Usage,
            "name a variable (`floe stats <repo> <var>`), or give --rebuild".into(),
        ));
    };
    let s = floe_api::stats::Stats {
        repo: a.repo,
        branch: a.branch,
        var,
        from: a.from,
        to: a.to,
        every: a.every,
    };
    let r = floe_api::stats::stats(&s).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(0);
    }
    out!("{} along {}: {} files, {} read ({})", r.var, r.dim, r.files, r.files_read, r.snapshot);
    let at = |t: f64| match chrono::DateTime::from_timestamp(t.floor() as i64, 0) {
        Some(d) if r.times && t.is_finite() => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ if t.is_finite() => t.to_string(),
        _ => "…".to_string(),
    };
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.6}"));
    out!("{:<21} {:<21} {:>10} {:>14} {:>14} {:>14}", "from", "to", "count", "min", "max", "mean");
    for b in &r.bins {
        out!(
            "{:<21} {:<21} {:>10} {:>14} {:>14} {:>14}",
            at(b.start),
            at(b.end),
            b.count,
            num(b.min),
            num(b.max),
            num(b.mean)
        );
    }
    Ok(0)
}

/// `floe delete`.
async fn delete(a: DeleteArgs) -> Result<i32, Failure> {
    let d = floe_api::retention::DeleteWindow {
        repo: repo_url(&a.repo)?,
        branch: a.branch,
        from: a.from,
        to: a.to,
        vars: a.vars,
        reason: a.reason,
        untag: a.untag,
    };
    let r = floe_api::retention::delete(&d).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(0);
    }
    let records: Vec<String> =
        r.record.records.iter().map(|(c, n)| format!("{n} along {c}")).collect();
    out!(
        "deleted {} .. {}: records ({}) of {}, in snapshot {}",
        r.record.from,
        r.record.to,
        records.join(", "),
        r.record.variables.join(", "),
        r.snapshot
    );
    for t in &r.record.untagged {
        out!("removed tag {t}, which still held the old values");
    }
    for h in &r.holders {
        use floe_api::retention::HolderKind;
        let (kind, what) = match h.kind {
            HolderKind::Tag => {
                ("tag", "remove it (`--untag`, or delete the tag) to let expire + gc free them")
            }
            HolderKind::Branch => {
                ("branch", "delete the window there too (`--branch`), or its bytes stay")
            }
        };
        out!("{kind} {} (snapshot {}) still holds the old values: {what}", h.name, h.snapshot);
    }
    out!(
        "the old values stay in older snapshots until `floe expire {repo} --older-than 0s` and `floe gc {repo}` remove them",
        repo = a.repo
    );
    Ok(0)
}

/// `floe expire`.
async fn expire(a: ExpireArgs) -> Result<i32, Failure> {
    let r = floe_api::retention::expire(&a.repo, a.older_than, a.dry_run).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(0);
    }
    let verb = if r.dry_run { "would expire" } else { "expired" };
    for c in &r.expired {
        out!("{verb} {}  {}  {}", c.id, c.time.to_rfc3339_opts(chrono_secs(), true), c.message);
    }
    out!(
        "{} snapshot(s) {verb} (older than {}); branch tips and tags kept{}",
        r.expired.len(),
        r.cutoff.to_rfc3339_opts(chrono_secs(), true),
        if r.dry_run { "" } else { "; `floe gc` deletes their data once past its grace period" }
    );
    Ok(0)
}

/// `floe gc`.
async fn gc(a: GcArgs) -> Result<i32, Failure> {
    let r = floe_api::retention::gc(&a.repo, a.grace, a.dry_run).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(if r.failed > 0 { 1 } else { 0 });
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    out!(
        "{verb} {} chunks, {} manifests, {} snapshots, {} transaction logs, {} repo info copies: {} {}",
        r.chunks,
        r.manifests,
        r.snapshots,
        r.transaction_logs,
        r.overwritten,
        floe_api::retention::bytes(r.bytes_freed),
        if r.dry_run { "would be freed" } else { "freed" }
    );
    out!("nothing written after {} was touched", r.cutoff.to_rfc3339_opts(chrono_secs(), true));
    if r.failed > 0 {
        let skipped = if r.skipped.is_empty() {
            String::new()
        } else {
            format!("; not collected this run: {}", r.skipped.join(", "))
        };
        eprintln!(
            "floe: {} object(s) could not be deleted after {} passes (they stay garbage; \
             run gc again): {}{skipped}",
            r.failed,
            floe_api::retention::GC_PASSES,
            r.errors.join("; ")
        );
        return Ok(1);
    }
    Ok(0)
}

/// `floe du`.
async fn du(a: DuArgs) -> Result<i32, Failure> {
    let u = floe_api::retention::du(&a.repo).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&u).unwrap_or_default());
        return Ok(0);
    }
    use floe_api::retention::{bytes, kind_words};
    for (k, t) in &u.by_kind {
        out!("{:>10}  {:>7} objects  {}", bytes(t.bytes), t.objects, kind_words(*k));
    }
    out!("{:>10}  {:>7} objects  in all", bytes(u.total.bytes), u.total.objects);
    out!("gc --grace 0s would free {} now", bytes(u.gc_frees));
    out!("expire --older-than 0s, then gc --grace 0s, would free {}", bytes(u.expire_and_gc_frees));
    Ok(0)
}

/// `floe repos`.
async fn repos(a: ReposArgs) -> Result<i32, Failure> {
    let r = floe_api::catalog::repos(&a.url, !a.no_size).await?;
    if a.json {
        out!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(0);
    }
    floe_api::catalog::require_some(&r)?;
    use floe_api::retention::bytes;
    out!("{:<20}  {:>8}  {:>10}  repository", "latest commit (UTC)", "branches", "size");
    for s in &r.repositories {
        let when = s
            .latest_commit
            .map_or_else(|| "-".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
        let size = s.bytes.map_or_else(|| "-".to_string(), bytes);
        let path = if s.path.is_empty() { s.url.as_str() } else { s.path.as_str() };
        match &s.error {
            None => out!("{when:<20}  {:>8}  {size:>10}  {path}", s.branches),
            Some(e) => out!("{:<20}  {:>8}  {:>10}  {path}: cannot be read: {e}", "?", "?", "?"),
        }
    }
    for u in &r.unlisted {
        eprintln!("floe: {}/{}: cannot be listed: {}", r.url, u.prefix, u.error);
    }
    Ok(0)
}

/// What `floe sync`'s arguments ask of the ingest.
fn sync_options(a: SyncArgs) -> Result<IngestOptions, Failure> {
    let t = a.target;
    let mut opts = IngestOptions::new(t.folder, repo_url(&t.repo)?);
    opts.live = a.live.every().map(Duration::from_secs_f64);
    opts.wait_quiet = (!a.no_wait).then(|| Duration::from_secs_f64(a.wait_max.max(0.0)));
    opts.branch = t.branch;
    opts.settings = settings(&t.group, t.append_dim, a.chunk_mib, a.appends_per_chunk);
    opts.patterns = t.pattern;
    opts.on_drift = t.on_drift;
    opts.tag_on_change = t.tag_on_change;
    opts.gate = t.gate.options().map_err(|e| Failure(ErrorCode::Usage, e))?;
    opts.dry_run = a.dry_run;
    opts.batch_files = a.batch.unwrap_or(usize::MAX).max(1);
    opts.batch_target_bytes = Some(((a.batch_mb.max(0.0) * 1e6) as u64).max(1));
    opts.quiet = Duration::from_secs_f64(a.quiet.max(0.0));
    Ok(opts)
}

/// Ctrl-C (or SIGTERM): stop after the commit under way; twice: at once (an
/// Icechunk commit is atomic: nothing is half written either way).
#[expect(clippy::exit, reason = "a second Ctrl-C means now, whatever the runtime is doing")]
fn stop_on_signal() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("floe: stopping after the commit under way (press Ctrl-C again to stop at once)");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        shutdown_signal().await;
        std::process::exit(EXIT_INTERRUPTED);
    });
    stop
}

/// A bar of source bytes done, on a terminal (not with `--json`).
fn progress_bar(json: bool) -> Option<ProgressBar> {
    (!json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    })
}

/// `floe sync`.
async fn sync(a: SyncArgs) -> Result<i32, Failure> {
    let json = a.json;
    let mut opts = sync_options(a)?;
    opts.stop = Some(stop_on_signal());
    let bar = progress_bar(json);
    let progress = |p: &Progress| {
        if let Progress::WaitingQuiet { files, seconds } = p {
            let line = format!(
                "waiting {seconds:.1} s for {files} file(s) that changed moments ago to be quiet (--no-wait leaves them for a later run)"
            );
            match &bar {
                Some(b) => b.println(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(b) = &bar {
            match p {
                Progress::Planned { bytes, .. } => b.set_length(*bytes),
                Progress::FileDone { file, bytes } => {
                    b.inc(*bytes);
                    b.set_message(file.clone());
                }
                Progress::FileRejected { message, .. } => b.println(format!("rejected: {message}")),
                Progress::Committed { .. } | Progress::WaitingQuiet { .. } => {}
            }
        }
    };
    let report = floe_api::sync::run(opts, &progress).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        write_out(format_args!("{report}"));
    }
    if !report.stopped_before.is_empty() {
        eprintln!(
            "floe: stopped: {} file(s) committed in {} commit(s); {} file(s) remain for the next run",
            report.ingested.len(),
            report.commits.len(),
            report.stopped_before.len()
        );
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(report.exit_code())
}

/// `floe verify`.
async fn verify(a: VerifyArgs) -> Result<i32, Failure> {
    use floe_api::verify::VerifyProgress;
    let mut opts = floe_api::verify::VerifyOptions::new(a.folder, repo_url(&a.repo)?);
    opts.branch = a.branch;
    opts.group = a.group;
    opts.patterns = a.pattern;
    let bar = progress_bar(a.json);
    let progress = |p: &VerifyProgress| {
        if let Some(b) = &bar {
            match p {
                VerifyProgress::Planned { bytes, .. } => b.set_length(*bytes),
                VerifyProgress::FileDone { file, bytes } => {
                    b.inc(*bytes);
                    b.set_message(file.clone());
                }
            }
        }
    };
    let report = floe_api::verify::run(opts, &progress).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if a.json {
        out!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        for f in &report.findings {
            out!("{f}");
        }
        out!("{}", report.summary());
    }
    Ok(report.verdict().exit_code())
}

/// `floe add`.
async fn add(a: AddArgs) -> Result<i32, Failure> {
    let t = a.target;
    let mb = |x: f64| (x.max(0.0) * 1e6) as u64;
    let path = Config::default_path().map_err(config_err)?;
    let new = floe_api::folders::NewFolder {
        folder: t.folder,
        repo: t.repo,
        branch: t.branch,
        group: t.group,
        patterns: t.pattern,
        append_dims: t.append_dim,
        commit: Cadence {
            files: a.commit_files,
            bytes: a.commit_mb.map(mb),
            max_wait_secs: a.commit_max_wait,
            max_commit_bytes: mb(a.commit_max_mb),
        },
        live_every_secs: a.live.every(),
        verify_after_commit: a.verify_after_commit,
        verify_every_hours: a.verify_every_hours.filter(|h| *h > 0.0),
        on_drift: t.on_drift,
        tag_on_change: t.tag_on_change,
        gate: t.gate.options().map_err(|e| Failure(ErrorCode::Usage, e))?,
        keep: a.keep,
        gc_grace: a.gc_grace,
        login: Default::default(),
        check: false,
    };
    let added = floe_api::folders::add(&path, &daemon::default_socket(), new).await?;
    let f = &added.folder;
    out!("added {} -> {} (branch {})", f.path.display(), f.repo, f.branch);
    if added.engine_reloaded {
        out!("the running daemon syncs it now");
    }
    Ok(0)
}

/// `floe daemon`.
async fn daemon(a: DaemonArgs) -> Result<i32, Failure> {
    let DaemonArgs { rescan, quiet } = a;

    let opts = DaemonOptions {
        rescan_every: Duration::from_secs_f64(rescan.max(1.0)),
        quiet: Duration::from_secs_f64(quiet.max(0.0)),
        ..floe_api::engine::default_options()?
    };
    let mounts = floe_api::mounts::Mounts::new(opts.config.clone());
    tokio::spawn(async move { mounts.restore().await });
    daemon::run(opts, async {
        shutdown_signal().await;
    })
    .await
    .map_err(daemon_err)?;
    Ok(0)
}

/// `floe status`.
async fn status(a: StatusArgs) -> Result<i32, Failure> {
    let StatusArgs { json } = a;

    let socket = daemon::default_socket();
    if json {
        let reply = floe_api::engine::ask(&socket, &Request::Status).await?;
        out!("{}", serde_json::to_string_pretty(&reply.folders).unwrap_or_default());
        return Ok(0);
    }
    let folders = floe_api::engine::status_at(&socket).await?;
    let overall = floe_api::words::overall(&folders);
    out!("{}", overall.label());
    for f in &folders {
        out!("{} -> {} [{}] {}", f.path, f.repo, f.state, f.headline);
        out!("    {}", f.detail);
        if let Some(c) = &f.last_commit {
            out!("    last commit {c}");
        }
        if let Some(v) = &f.verification {
            out!("    {v}");
        }
        if let Some(d) = &f.drift {
            out!("    {d}");
        }
        if let Some(r) = &f.retention {
            out!("    {r}");
        }
        if let Some(p) = &f.problem {
            out!("    {p}");
        }
        for r in &f.rejected {
            out!("    not synced{}: {}", if r.ignored { " (ignored)" } else { "" }, r.message);
        }
    }
    Ok(0)
}

/// `floe pause`.
async fn pause(a: PauseArgs) -> Result<i32, Failure> {
    let PauseArgs { folder } = a;

    control(Request::Pause { folder }).await
}

/// `floe resume`.
async fn resume(a: ResumeArgs) -> Result<i32, Failure> {
    let ResumeArgs { folder } = a;

    control(Request::Resume { folder }).await
}

/// `floe remove`.
async fn remove(a: RemoveArgs) -> Result<i32, Failure> {
    let RemoveArgs { folder } = a;

    let path = Config::default_path().map_err(config_err)?;
    let removed = floe_api::folders::remove(&path, &daemon::default_socket(), &folder).await?;
    out!("removed {} (its repository {} is left as it is)", removed.path.display(), removed.repo);
    Ok(0)
}

/// `floe ignore`.
async fn ignore(a: IgnoreArgs) -> Result<i32, Failure> {
    let IgnoreArgs { folder, files, undo } = a;

    let path = Config::default_path().map_err(config_err)?;
    let list =
        floe_api::folders::ignore(&path, &daemon::default_socket(), &folder, &files, undo).await?;
    match list.as_slice() {
        [] => out!("{}: no files ignored", folder.display()),
        l => out!("{}: ignored {}", folder.display(), l.join(", ")),
    }
    Ok(0)
}

/// `floe list`.
async fn list(a: ListArgs) -> Result<i32, Failure> {
    let ListArgs { json } = a;

    let folders = floe_api::folders::list(&Config::default_path().map_err(config_err)?)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&folders).unwrap_or_default());
    } else if folders.is_empty() {
        out!("no sync folders: add one with `floe add <folder> <repo>`");
    } else {
        for f in &folders {
            let paused = if f.paused { " (paused)" } else { "" };
            out!(
                "{} -> {} branch {} group {}{paused}",
                f.path.display(),
                f.repo,
                f.branch,
                f.group
            );
        }
    }
    Ok(0)
}

/// `floe login`.
async fn login(a: LoginArgs) -> Result<i32, Failure> {
    let LoginArgs { repo, from_env, no_check } = a;
    let url = repo_url(&repo)?;
    let fields = floe_api::login::fields(&url)?;
    let login = if from_env {
        floe_api::login::from_env(&url)
    } else {
        let mut l = floe_api::login::Login::default();
        for f in fields {
            if let Some(v) = ask(f)? {
                l.vars.insert(f.var.to_string(), v);
            }
        }
        l
    };
    let names = login.vars.keys().cloned().collect::<Vec<_>>().join(", ");
    let kept = floe_api::login::keep(&url, login, !no_check).await?;
    out!("kept {names} in the OS keychain for {url}");
    match kept {
        floe_api::login::Kept::Unchecked => Ok(0),
        floe_api::login::Kept::Accepted => {
            out!("checked: {url} accepts them");
            Ok(0)
        }
        floe_api::login::Kept::Unverified(code, why) => {
            eprintln!("floe: kept, but could not check them: {why}");
            Ok(code.exit_code())
        }
    }
}

/// `floe logout`.
async fn logout(a: LogoutArgs) -> Result<i32, Failure> {
    let found = floe_api::login::forget(&repo_url(&a.repo)?).await?;
    out!("{}", if found { "forgot the keychain login" } else { "there was no keychain login" });
    Ok(0)
}

/// `floe doctor`.
async fn doctor(a: DoctorArgs) -> Result<i32, Failure> {
    let DoctorArgs { repo, probe_mib, json } = a;

    let d = floe_api::doctor::diagnose(&repo, probe_mib << 20).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
    } else {
        out!("{}", d.repo);
        for c in &d.checks {
            let mark = match c.outcome {
                floe_api::doctor::Outcome::Ok => "ok  ",
                floe_api::doctor::Outcome::Warn => "warn",
                floe_api::doctor::Outcome::Fail => "FAIL",
            };
            out!("  [{mark}] {:<12} {}", c.name, c.detail);
        }
    }
    Ok(floe_api::doctor::exit_code(&d))
}

/// `floe log`.
async fn log(a: LogArgs) -> Result<i32, Failure> {
    let LogArgs { repo, branch, limit, json } = a;

    let mut history = floe_api::history::commits_full(&repo, &branch).await?;
    if let Some(n) = limit {
        history.truncate(n);
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&history).unwrap_or_default());
        return Ok(0);
    }
    for c in &history {
        out!("snapshot {}  {}", c.id, c.time.to_rfc3339_opts(chrono_secs(), true));
        out!("    {}", c.message);
        if let Some(p) = &c.provenance {
            if let Some(k) = &p.continues {
                out!(
                    "    continues {} (branch {}) as of snapshot {}, after a schema drift: {}",
                    k.repo,
                    k.branch,
                    k.snapshot,
                    k.reason
                );
            }
            match &p.gate {
                Some(floe_core::GateRecord::Released { failures, at }) => {
                    out!("    gate: released at {at}, although:");
                    for f in failures {
                        out!("      {f}");
                    }
                }
                Some(floe_core::GateRecord::Dropped { files, at, .. }) => {
                    out!("    gate: dropped at {at} (not taken again until they change):");
                    for f in files {
                        out!("      {} ({} bytes, blake3 {})", f.source, f.size, f.blake3);
                    }
                }
                None => {}
            }
            if let Some(d) = &p.deletion {
                let records: Vec<String> =
                    d.records.iter().map(|(c, n)| format!("{n} along {c}")).collect();
                out!(
                    "    deleted {} .. {} ({}) of {} at {}: {}",
                    d.from,
                    d.to,
                    records.join(", "),
                    d.variables.join(", "),
                    d.at,
                    d.reason
                );
                if !d.untagged.is_empty() {
                    out!("      tags removed: {}", d.untagged.join(", "));
                }
            }
            for f in &p.files {
                // a file taken in steps (it grew, or is followed live): which
                // of its records this step took
                let recs = f
                    .records
                    .iter()
                    .map(|(d, n)| match f.from.get(d) {
                        Some(k) => format!("{n} {d} (its records {k}..{})", k + n),
                        None => format!("{n} {d}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                out!(
                    "    + {} ({} bytes, {}, blake3 {}…, {recs}, at {})",
                    f.source,
                    f.size,
                    f.format,
                    &f.blake3.chars().take(12).collect::<String>(),
                    f.offsets
                        .iter()
                        .map(|(d, o)| format!("{d}[{o}]"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
    }
    Ok(0)
}

/// `floe inspect`.
async fn inspect(a: InspectArgs) -> Result<i32, Failure> {
    let InspectArgs { file, repo, branch, append_dim, group, chunk_mib, appends_per_chunk, json } =
        a;

    let s = settings(&group, append_dim, chunk_mib, appends_per_chunk);
    let seen = floe_api::inspect::inspect(&file, repo.as_deref(), &branch, &s).await?;
    let (ds, dims, verdict) = (&seen.dataset, &seen.append_dims, &seen.would);
    let plan = dims.as_ref().ok().map(|_| seen.plan.as_ref());
    if json {
        let v = serde_json::json!({
            "file": file,
            "dataset": ds,
            "append_dims": dims.as_ref().ok(),
            "plan": plan.as_ref().and_then(|p| p.as_ref().ok()),
            "error": dims.as_ref().err().map(|e| e.to_string())
                .or_else(|| plan.as_ref().and_then(|p| p.as_ref().err()).map(|e| e.to_string())),
            "repo": repo,
            "branch": branch,
            "would": verdict,
        });
        out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(0);
    }
    out!("{}: {}", file.display(), ds.format.as_str());
    match &dims {
        Ok(d) if d.is_empty() => {
            out!("append dimensions: none (no record dimension: stored whole)")
        }
        Ok(d) => {
            let why = if ds.unlimited_dims().is_empty() && s.append_dims.is_empty() {
                " (its CF time coordinate)"
            } else {
                ""
            };
            out!("append dimensions: {}{why}", d.join(", "))
        }
        Err(e) => out!("append dimensions: none ({e})"),
    }
    if let (Some(r), Some(v)) = (&repo, &verdict) {
        out!("into {r} ({branch}): {v}");
    }
    for g in &ds.groups {
        print_group(g, plan.and_then(|p| p.ok()), &s.group);
    }
    Ok(0)
}

/// One group of `floe inspect`: its dimensions, attributes and variables, with the
/// chunks the plan gives each.
fn print_group(g: &floe_api::inspect::Group, plan: Option<&floe_plan::Plan>, target: &str) {
    out!("group {}", g.path);
    for d in &g.dims {
        out!("  dim {} = {}{}", d.name, d.size, if d.unlimited { " (unlimited)" } else { "" });
    }
    for (k, v) in &g.attrs {
        out!("  :{k} = {v}");
    }
    let join = |n: &[u64]| n.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    for v in &g.variables {
        let path = floe_plan::join(&floe_plan::target_group(target, &g.path), &v.name);
        let chunks = plan
            .and_then(|p| p.arrays.iter().find(|a| a.path == path))
            .map(|a| format!(" chunks ({})", join(&a.chunks)))
            .unwrap_or_default();
        out!("  {} {}({}) shape ({}){chunks}", v.dtype, v.name, v.dims.join(", "), join(&v.shape));
        for (k, val) in &v.attrs {
            out!("      :{k} = {val}");
        }
    }
}

/// Ask for one setting: without echo on a terminal when it is secret, else a line
/// of standard input (so scripts can pipe the answers in).
fn ask(field: &floe_api::login::Field) -> Result<Option<String>, Failure> {
    let io = |e: std::io::Error| Failure(ErrorCode::Usage, format!("reading the answer: {e}"));
    let line = if field.secret && std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{}: ", field.prompt)).map_err(io)?
    } else {
        eprint!("{}: ", field.prompt);
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(io)?;
        if !std::io::stdin().is_terminal() {
            eprintln!();
        }
        line
    };
    let v = line.trim().to_string();
    Ok((!v.is_empty()).then_some(v))
}

/// `floe gate release|drop`: decide, then say what was decided.
async fn gate(a: GateDecisionArgs, verdict: floe_api::gate::Verdict) -> Result<i32, Failure> {
    let path = Config::default_path().map_err(config_err)?;
    let target = floe_api::gate::target(&path, &a.target, a.branch.as_deref())?;
    let d = floe_api::gate::decide(&daemon::default_socket(), &target, verdict).await?;
    if a.json {
        let json = serde_json::to_string_pretty(&d)
            .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?;
        out!("{json}");
        return Ok(0);
    }
    let what = match verdict {
        floe_api::gate::Verdict::Release => "released",
        floe_api::gate::Verdict::Drop => "dropped",
    };
    out!(
        "{what} {} file(s) at the gate of {}; {} is now at {}",
        d.files.len(),
        d.branch,
        d.branch,
        d.snapshot
    );
    for f in &d.files {
        out!("  {f}");
    }
    for f in &d.failures {
        out!("it had failed: {f}");
    }
    if verdict == floe_api::gate::Verdict::Drop {
        out!("the dropped files are not taken again until they change");
    }
    Ok(0)
}

fn chrono_secs() -> chrono::SecondsFormat {
    chrono::SecondsFormat::Secs
}
