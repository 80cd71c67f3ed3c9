//! `floe`: sync instrument output into Icechunk repositories.
//!
//! A thin shell: parse arguments, call the sync/store API, print. Exit codes:
//! 0 all good; 1 some files were rejected (the others were ingested);
//! 2 usage error; 3 repository error; 4 storage unreachable; 5 commit conflict;
//! 70 internal error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::{Cadence, Config, ConfigError};
use floe_engine::daemon::{self, DaemonError, DaemonOptions, Request};
use floe_plan::Settings;
use floe_store::{doctor, secrets};
use floe_sync::{Ingest, IngestOptions, Progress, SystemClock};
use indicatif::{ProgressBar, ProgressStyle};

mod mount;

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
    Sync {
        /// Folder the instrument writes into.
        folder: PathBuf,
        /// Repository: a local path (default kind), file://, s3://, az:// or gs://.
        repo: String,
        /// Branch to append to (created from main if missing).
        #[arg(long, default_value = "main")]
        branch: String,
        /// Group inside the repository that receives the files.
        #[arg(long, default_value = "/")]
        group: String,
        /// Dimension to append along (repeatable); default: the file's unlimited dimensions.
        #[arg(long = "append-dim")]
        append_dim: Vec<String>,
        /// File name pattern to ingest (repeatable); default: *.nc *.nc4 *.cdf *.h5 *.zarr …
        #[arg(long)]
        pattern: Vec<String>,
        /// Show what would be ingested without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// At most this many files per commit when catching up on a backlog
        /// (provenance stays per file); 1 makes one commit per file.
        #[arg(long)]
        batch: Option<usize>,
        /// A backlog's commit closes once it holds this many MB of source files.
        #[arg(long, default_value_t = 64.0)]
        batch_mb: f64,
        /// Target chunk size in MiB (uncompressed), for arrays created by this run.
        #[arg(long, default_value_t = 4.0)]
        chunk_mib: f64,
        /// At most this many files share a chunk along the append dimension (bounds
        /// how often a chunk is rewritten), for arrays created by this run.
        #[arg(long, default_value_t = 8)]
        appends_per_chunk: u64,
        /// Seconds a file must have been unchanged to count as complete.
        #[arg(long, default_value_t = 2.0)]
        quiet: f64,
        /// Do not wait for files that changed moments ago: leave them for a later
        /// run (for scripts that poll).
        #[arg(long)]
        no_wait: bool,
        /// Wait at most this many seconds in all for recent files to be quiet.
        #[arg(long, default_value_t = 60.0)]
        wait_max: f64,
        /// Follow NetCDF-3 files live: take the records a logger has written (and
        /// that have settled) while it still has the file open; the rest follow.
        #[arg(long)]
        live: bool,
        /// With --live: take a file's new records at most every this many seconds.
        #[arg(long, default_value_t = 30.0)]
        live_every: f64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a sync folder (kept in the user's config; secrets never go there).
    Add {
        folder: PathBuf,
        /// Repository: a local path, file://, s3://, az:// or gs://.
        repo: String,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(long, default_value = "/")]
        group: String,
        #[arg(long)]
        pattern: Vec<String>,
        #[arg(long = "append-dim")]
        append_dim: Vec<String>,
        /// Commit once this many complete files are waiting (1: every file).
        #[arg(long, default_value_t = 1)]
        commit_files: usize,
        /// ... or once this many MB of them are waiting.
        #[arg(long)]
        commit_mb: Option<f64>,
        /// ... or at the latest when the oldest has waited this many seconds.
        #[arg(long, default_value_t = 600.0)]
        commit_max_wait: f64,
        /// Never more than this many MB of source files in one commit.
        #[arg(long, default_value_t = 1024.0)]
        commit_max_mb: f64,
        /// Follow NetCDF-3 files live: take the records a logger has written (and
        /// that have settled) while it still has the file open; the rest follow.
        #[arg(long)]
        live: bool,
        /// With --live: take a file's new records at most every this many seconds.
        #[arg(long, default_value_t = 30.0)]
        live_every: f64,
    },
    /// Run every registered folder in the foreground: watch, sync, retry (Ctrl-C stops).
    Daemon {
        /// Full rescans of every folder at this interval, in seconds (watchers miss events).
        #[arg(long, default_value_t = 60.0)]
        rescan: f64,
        /// Seconds a file must have been unchanged to count as complete.
        #[arg(long, default_value_t = 2.0)]
        quiet: f64,
    },
    /// Show what the running daemon is doing, per folder.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Pause syncing (all folders, or one) in the running daemon.
    Pause { folder: Option<PathBuf> },
    /// Resume syncing (all folders, or one) in the running daemon.
    Resume { folder: Option<PathBuf> },
    /// Unregister a sync folder (its repository is left as it is).
    Remove { folder: PathBuf },
    /// List the registered sync folders.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Keep the credentials for a destination (bucket or container) in the OS keychain.
    /// Asks for them (secrets without echo; from standard input when it is not a
    /// terminal), never takes them on the command line.
    Login {
        repo: String,
        /// Take them from this shell's AWS_* / AZURE_* / GOOGLE_* variables instead.
        #[arg(long)]
        from_env: bool,
        /// Keep them without trying them against the destination first.
        #[arg(long)]
        no_check: bool,
    },
    /// Forget the keychain credentials of a destination.
    Logout { repo: String },
    /// Check a destination: credentials, reachability, permissions, upload throughput.
    Doctor {
        repo: String,
        /// MiB to upload (and delete again) to measure throughput; 0 skips it.
        #[arg(long, default_value_t = 32)]
        probe_mib: u64,
        #[arg(long)]
        json: bool,
    },
    /// Print a branch's history with the provenance of each commit.
    Log {
        repo: String,
        #[arg(long, default_value = "main")]
        branch: String,
        /// At most this many commits (newest first).
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Mount a repository read-only: branches/, tags/, snapshots/ and by-time/ as
    /// folders, each a plain Zarr v3 hierarchy. Runs until Ctrl-C or `floe unmount`.
    Mount {
        repo: String,
        mountpoint: PathBuf,
        /// Keep fetched chunks in this folder too (bounded by --cache-size).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Size limit of --cache-dir (e.g. 10GiB, 500MB).
        #[arg(long, default_value = "10GiB", value_parser = parse_size)]
        cache_size: u64,
        /// Memory for chunk bytes.
        #[arg(long, default_value = "512MiB", value_parser = parse_size)]
        memory_cache: u64,
        /// Let other users read the mount (root, or user_allow_other in /etc/fuse.conf).
        #[arg(long)]
        allow_other: bool,
        /// Detach: mount, print where, and return.
        #[arg(long)]
        background: bool,
        /// Seconds between re-reads of branch tips and of the branch and tag lists.
        #[arg(long, default_value_t = 2.0)]
        refresh_secs: f64,
        /// Seconds a repository request may take before the read fails with EIO.
        #[arg(long, default_value_t = 30.0)]
        timeout_secs: f64,
        /// Chunk files fetched ahead of a sequential reader.
        #[arg(long, default_value_t = 8)]
        readahead: usize,
    },
    /// Unmount a folder mounted by `floe mount`.
    Unmount { mountpoint: PathBuf },
    /// Show how a source file maps onto a repository, without writing anything.
    Inspect {
        file: PathBuf,
        /// Also say what a sync into this repository would do with the file.
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(long = "append-dim")]
        append_dim: Vec<String>,
        #[arg(long, default_value = "/")]
        group: String,
        #[arg(long, default_value_t = 4.0)]
        chunk_mib: f64,
        #[arg(long, default_value_t = 8)]
        appends_per_chunk: u64,
        #[arg(long)]
        json: bool,
    },
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
    println!("{}", reply.message);
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,floe_engine=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The mount serves the kernel from its own threads and I/O runtime: it runs
    // outside the command runtime.
    match cli.command {
        Command::Mount { .. } | Command::Unmount { .. } => {
            return match mount::run(cli.command) {
                Ok(code) => ExitCode::from(code as u8),
                Err(Failure(code, msg)) => {
                    eprintln!("floe: {msg}");
                    ExitCode::from(code.exit_code() as u8)
                }
            };
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floe: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(Failure(code, msg)) => {
            eprintln!("floe: {msg}");
            ExitCode::from(code.exit_code() as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Mount { .. } | Command::Unmount { .. } => mount::run(cli.command),
        Command::Sync {
            folder,
            repo,
            branch,
            group,
            append_dim,
            pattern,
            dry_run,
            batch,
            batch_mb,
            chunk_mib,
            appends_per_chunk,
            quiet,
            no_wait,
            wait_max,
            live,
            live_every,
            json,
        } => {
            let mut opts = IngestOptions::new(folder, repo_url(&repo)?);
            opts.live = live.then(|| Duration::from_secs_f64(live_every.max(0.0)));
            // Ctrl-C (or SIGTERM): stop after the commit under way; twice: at once
            // (an Icechunk commit is atomic: nothing is half written either way)
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            opts.stop = Some(stop.clone());
            tokio::spawn(async move {
                shutdown_signal().await;
                eprintln!(
                    "floe: stopping after the commit under way (press Ctrl-C again to stop at once)"
                );
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                shutdown_signal().await;
                std::process::exit(EXIT_INTERRUPTED);
            });
            opts.wait_quiet = (!no_wait).then(|| Duration::from_secs_f64(wait_max.max(0.0)));
            opts.branch = branch;
            opts.settings = settings(&group, append_dim, chunk_mib, appends_per_chunk);
            opts.patterns = pattern;
            opts.dry_run = dry_run;
            opts.batch_files = batch.unwrap_or(usize::MAX).max(1);
            opts.batch_target_bytes = Some(((batch_mb.max(0.0) * 1e6) as u64).max(1));
            opts.quiet = Duration::from_secs_f64(quiet.max(0.0));
            let bar = (!json && std::io::stderr().is_terminal()).then(|| {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            });
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
                        Progress::FileRejected { message, .. } => {
                            b.println(format!("rejected: {message}"))
                        }
                        Progress::Committed { .. } | Progress::WaitingQuiet { .. } => {}
                    }
                }
            };
            let ingest = Ingest { opts, clock: &SystemClock, progress: &progress };
            let report = ingest.run().await.map_err(|e| Failure(e.code(), e.to_string()))?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{report}");
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
        Command::Add {
            folder,
            repo,
            branch,
            group,
            pattern,
            append_dim,
            commit_files,
            commit_mb,
            commit_max_wait,
            commit_max_mb,
            live,
            live_every,
        } => {
            let mb = |x: f64| (x.max(0.0) * 1e6) as u64;
            let path = Config::default_path().map_err(config_err)?;
            let new = floe_api::folders::NewFolder {
                folder,
                repo,
                branch,
                group,
                patterns: pattern,
                append_dims: append_dim,
                commit: Cadence {
                    files: commit_files,
                    bytes: commit_mb.map(mb),
                    max_wait_secs: commit_max_wait,
                    max_commit_bytes: mb(commit_max_mb),
                },
                live_every_secs: live.then_some(live_every),
                login: Default::default(),
                check: false,
            };
            let added = floe_api::folders::add(&path, &daemon::default_socket(), new).await?;
            let f = &added.folder;
            println!("added {} -> {} (branch {})", f.path.display(), f.repo, f.branch);
            if added.engine_reloaded {
                println!("the running daemon syncs it now");
            }
            Ok(0)
        }
        Command::Daemon { rescan, quiet } => {
            let opts = DaemonOptions {
                rescan_every: Duration::from_secs_f64(rescan.max(1.0)),
                quiet: Duration::from_secs_f64(quiet.max(0.0)),
                ..floe_api::engine::default_options()?
            };
            daemon::run(opts, async {
                shutdown_signal().await;
            })
            .await
            .map_err(daemon_err)?;
            Ok(0)
        }
        Command::Status { json } => {
            let socket = daemon::default_socket();
            if json {
                let reply = floe_api::engine::ask(&socket, &Request::Status).await?;
                println!("{}", serde_json::to_string_pretty(&reply.folders).unwrap_or_default());
                return Ok(0);
            }
            let folders = floe_api::engine::status_at(&socket).await?;
            let overall = floe_api::words::overall(&folders);
            println!("{}", overall.label());
            for f in &folders {
                println!("{} -> {} [{}] {}", f.path, f.repo, f.state, f.headline);
                println!("    {}", f.detail);
                if let Some(c) = &f.last_commit {
                    println!("    last commit {c}");
                }
                if let Some(p) = &f.problem {
                    println!("    {p}");
                }
            }
            Ok(0)
        }
        Command::Pause { folder } => control(Request::Pause { folder }).await,
        Command::Resume { folder } => control(Request::Resume { folder }).await,
        Command::Remove { folder } => {
            let path = Config::default_path().map_err(config_err)?;
            let removed =
                floe_api::folders::remove(&path, &daemon::default_socket(), &folder).await?;
            println!(
                "removed {} (its repository {} is left as it is)",
                removed.path.display(),
                removed.repo
            );
            Ok(0)
        }
        Command::List { json } => {
            let folders = floe_api::folders::list(&Config::default_path().map_err(config_err)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&folders).unwrap_or_default());
            } else if folders.is_empty() {
                println!("no sync folders: add one with `floe add <folder> <repo>`");
            } else {
                for f in &folders {
                    let paused = if f.paused { " (paused)" } else { "" };
                    println!(
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
        Command::Login { repo, from_env, no_check } => {
            login(&repo_url(&repo)?, from_env, no_check).await
        }
        Command::Logout { repo } => {
            let url = repo_url(&repo)?;
            let found =
                tokio::task::spawn_blocking(move || secrets::forget(&secrets::Keychain, &url))
                    .await
                    .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?
                    .map_err(secret_err)?;
            println!(
                "{}",
                if found { "forgot the keychain login" } else { "there was no keychain login" }
            );
            Ok(0)
        }
        Command::Doctor { repo, probe_mib, json } => {
            let url = repo_url(&repo)?;
            let d = doctor::diagnose(&url, probe_mib << 20).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
            } else {
                println!("{}", d.repo);
                for c in &d.checks {
                    let mark = match c.outcome {
                        doctor::Outcome::Ok => "ok  ",
                        doctor::Outcome::Warn => "warn",
                        doctor::Outcome::Fail => "FAIL",
                    };
                    println!("  [{mark}] {:<12} {}", c.name, c.detail);
                }
            }
            Ok(match &d.error {
                Some(e) => e.code().exit_code(),
                None if d.healthy() => 0,
                None => ErrorCode::Storage.exit_code(),
            })
        }
        Command::Log { repo, branch, limit, json } => {
            let mut history = floe_api::history::commits_full(&repo, &branch).await?;
            if let Some(n) = limit {
                history.truncate(n);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&history).unwrap_or_default());
                return Ok(0);
            }
            for c in &history {
                println!("snapshot {}  {}", c.id, c.time.to_rfc3339_opts(chrono_secs(), true));
                println!("    {}", c.message);
                if let Some(p) = &c.provenance {
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
                        println!(
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
        Command::Inspect {
            file,
            repo,
            branch,
            append_dim,
            group,
            chunk_mib,
            appends_per_chunk,
            json,
        } => {
            let reader = floe_source::open(&file)
                .map_err(|e| Failure(ErrorCode::BadSource, e.to_string()))?;
            let s = settings(&group, append_dim, chunk_mib, appends_per_chunk);
            let against = match &repo {
                Some(r) => {
                    let url = repo_url(r)?;
                    Some(floe_sync::plan_against(&file, &url, &branch, &s).await)
                }
                None => None,
            };
            let verdict = against.as_ref().map(|a| match a {
                Ok(p) => would(p),
                Err(e) => format!("would be refused: {e}"),
            });
            let ds = reader.dataset();
            let dims = floe_plan::append_dims(ds, &s);
            let plan = dims
                .as_ref()
                .ok()
                .map(|_| floe_plan::plan(ds, &Default::default(), &Default::default(), &s));
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
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(0);
            }
            println!("{}: {}", file.display(), ds.format.as_str());
            match &dims {
                Ok(d) if d.is_empty() => {
                    println!("append dimensions: none (no record dimension: stored whole)")
                }
                Ok(d) => {
                    let why = if ds.unlimited_dims().is_empty() && s.append_dims.is_empty() {
                        " (its CF time coordinate)"
                    } else {
                        ""
                    };
                    println!("append dimensions: {}{why}", d.join(", "))
                }
                Err(e) => println!("append dimensions: none ({e})"),
            }
            if let (Some(r), Some(v)) = (&repo, &verdict) {
                println!("into {r} ({branch}): {v}");
            }
            for g in &ds.groups {
                println!("group {}", g.path);
                for d in &g.dims {
                    println!(
                        "  dim {} = {}{}",
                        d.name,
                        d.size,
                        if d.unlimited { " (unlimited)" } else { "" }
                    );
                }
                for (k, v) in &g.attrs {
                    println!("  :{k} = {v}");
                }
                for v in &g.variables {
                    let chunks = plan
                        .as_ref()
                        .and_then(|p| p.as_ref().ok())
                        .and_then(|p| {
                            p.arrays.iter().find(|a| {
                                a.path
                                    == floe_plan::join(
                                        &floe_plan::target_group(&s.group, &g.path),
                                        &v.name,
                                    )
                            })
                        })
                        .map(|a| {
                            format!(
                                " chunks ({})",
                                a.chunks.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                            )
                        })
                        .unwrap_or_default();
                    println!(
                        "  {} {}({}) shape ({}){chunks}",
                        v.dtype,
                        v.name,
                        v.dims.join(", "),
                        v.shape.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                    );
                    for (k, val) in &v.attrs {
                        println!("      :{k} = {val}");
                    }
                }
            }
            Ok(0)
        }
    }
}

/// What a plan does, in a sentence.
fn would(p: &floe_plan::Plan) -> String {
    if p.whole_again {
        return "would be compared with what the repository holds (no record dimension): skipped if equal, refused as drift otherwise".into();
    }
    if p.append_dims.is_empty() {
        return "would be stored whole (no record dimension)".into();
    }
    let parts: Vec<String> = p
        .records
        .iter()
        .map(|(d, n)| {
            format!("{n} records along {d} from record {}", p.offsets.get(d).copied().unwrap_or(0))
        })
        .collect();
    format!("would append {}", parts.join(", "))
}

fn secret_err(e: secrets::SecretError) -> Failure {
    floe_api::ApiError::from(e).into()
}

/// Ask for one setting: without echo on a terminal when it is secret, else a line
/// of standard input (so scripts can pipe the answers in).
fn ask(field: &secrets::Field) -> Result<Option<String>, Failure> {
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

async fn login(url: &RepoUrl, from_env: bool, no_check: bool) -> Result<i32, Failure> {
    let fields = secrets::fields(url);
    if fields.is_empty() {
        return Err(secret_err(secrets::SecretError::Local(url.to_string())));
    }
    let login = if from_env {
        secrets::Login::from_env(url, &floe_store::remote::ProcessEnv)
    } else {
        let mut l = secrets::Login::default();
        for f in fields {
            if let Some(v) = ask(f)? {
                l.vars.insert(f.var.to_string(), v);
            }
        }
        l
    };
    login.validate(url).map_err(secret_err)?;
    let (u, l) = (url.clone(), login.clone());
    tokio::task::spawn_blocking(move || secrets::store(&secrets::Keychain, &u, &l))
        .await
        .map_err(|e| Failure(ErrorCode::Internal, e.to_string()))?
        .map_err(secret_err)?;
    let names: Vec<_> = login.vars.keys().map(String::as_str).collect();
    println!("kept {} in the OS keychain for {}", names.join(", "), url);
    if no_check {
        return Ok(0);
    }
    let d = doctor::diagnose(url, 0).await;
    match d.error {
        None => {
            println!("checked: {} accepts them", url);
            Ok(0)
        }
        Some(e @ floe_store::StoreError::Credentials { .. }) => {
            let u = url.clone();
            let _ =
                tokio::task::spawn_blocking(move || secrets::forget(&secrets::Keychain, &u)).await;
            Err(Failure(e.code(), format!("{e}; the login was not kept")))
        }
        Some(e) => {
            eprintln!("floe: kept, but could not check them: {e}");
            Ok(e.code().exit_code())
        }
    }
}

fn chrono_secs() -> chrono::SecondsFormat {
    chrono::SecondsFormat::Secs
}
