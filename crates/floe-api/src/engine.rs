//! The user's engine, wherever it runs. A `floe daemon` may already be running for
//! this user (started by hand or by the systemd user unit): then this process shows
//! and controls that one. If none runs, a [`Host`] starts the same engine inside this
//! process, serving the same control socket, so `floe status` and the app always
//! read one source.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use floe_engine::config::Config;
use floe_engine::daemon::{self, DaemonOptions, Reply, Request};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::ApiError;
use crate::words::{FolderView, Overall, describe, overall};

/// Where the engine being shown runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Hosted by this process.
    Here,
    /// A separate `floe daemon`.
    Daemon,
}

/// Everything the Folders screen and the tray show.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub engine: EngineKind,
    pub overall: Overall,
    pub overall_label: &'static str,
    pub folders: Vec<FolderView>,
}

/// The runtime the CLI's commands and the app's engine run on. Its blocking pool is
/// bounded and its idle threads kept a minute: the local filesystem storage runs
/// every object read and write on it, and with tokio's defaults (512 threads, gone
/// after 10 s idle) a daemon committing a file every second kept ~100 threads coming
/// and going, each new one on a fresh stack: bench/soak.py measured its resident
/// memory growing 0.4-0.5 MB a minute (+30% over 30 minutes) with at most 5 MB of
/// heap in use (heaptrack), the same with MALLOC_ARENA_MAX=2.
///
/// It also tunes the allocator for streaming ingest ([`floe_engine::memory::tune_for_ingest`]).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    floe_engine::memory::tune_for_ingest();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(Duration::from_secs(60))
        .build()
}

/// Threads for blocking work (file and local-storage I/O).
pub const BLOCKING_THREADS: usize = 16;

/// The engine options a desktop session uses: the user's config and socket.
pub fn default_options() -> Result<DaemonOptions, ApiError> {
    Ok(DaemonOptions {
        config: Config::default_path()?,
        socket: daemon::default_socket(),
        debounce: Duration::from_millis(500),
        rescan_every: Duration::from_secs(60),
        quiet: Duration::from_secs(2),
    })
}

/// Ask the engine listening on `socket` (a daemon, or a host in another process).
pub async fn ask(socket: &Path, req: &Request) -> Result<Reply, ApiError> {
    let reply = daemon::request(socket, req).await?;
    if reply.ok {
        Ok(reply)
    } else {
        Err(ApiError::new(floe_core::ErrorCode::Usage, reply.message))
    }
}

/// The status of the engine on `socket`, in words.
pub async fn status_at(socket: &Path) -> Result<Vec<FolderView>, ApiError> {
    Ok(ask(socket, &Request::Status).await?.folders.iter().map(describe).collect())
}

/// Tell a running engine that the config changed; `Ok(false)` when none runs (the
/// next one to start reads the config anyway).
pub async fn reload_at(socket: &Path) -> Result<bool, ApiError> {
    match daemon::request(socket, &Request::Reload).await {
        Ok(r) if r.ok => Ok(true),
        Ok(r) => Err(ApiError::new(floe_core::ErrorCode::Usage, r.message)),
        Err(daemon::DaemonError::NotRunning(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// An engine hosted here.
struct Own {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), daemon::DaemonError>>,
}

/// Reaches the user's engine, starting one here when none runs. Dropping it stops
/// the engine it started (a separate daemon keeps running).
pub struct Host {
    opts: DaemonOptions,
    own: Mutex<Option<Own>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("socket", &self.opts.socket).finish_non_exhaustive()
    }
}

use floe_core::lock;

impl Host {
    pub fn new(opts: DaemonOptions) -> Self {
        Host { opts, own: Mutex::new(None) }
    }

    pub fn config_path(&self) -> &Path {
        &self.opts.config
    }

    pub fn socket(&self) -> &Path {
        &self.opts.socket
    }

    /// Make sure an engine answers: a daemon's, or one started here. Must be called
    /// inside a Tokio runtime.
    pub async fn ensure(&self) -> Result<EngineKind, ApiError> {
        if self.hosting() {
            return Ok(EngineKind::Here);
        }
        if daemon::request(&self.opts.socket, &Request::Status).await.is_ok() {
            return Ok(EngineKind::Daemon);
        }
        // an engine of ours that stopped says why
        if let Some(o) = lock(&self.own).take()
            && o.task.is_finished()
        {
            tracing::warn!("the hosted engine had stopped; starting it again");
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon::run(self.opts.clone(), async move {
            let _ = stopped.await;
        }));
        // wait until it answers (or tells why it cannot run)
        for _ in 0..200 {
            if task.is_finished() {
                return match task.await {
                    Ok(Err(daemon::DaemonError::AlreadyRunning(_))) => Ok(EngineKind::Daemon),
                    Ok(Err(e)) => Err(e.into()),
                    Ok(Ok(())) => Err(ApiError::new(
                        floe_core::ErrorCode::Internal,
                        "the engine stopped as soon as it started",
                    )),
                    Err(e) => Err(crate::error::join_err(e)),
                };
            }
            if daemon::request(&self.opts.socket, &Request::Status).await.is_ok() {
                *lock(&self.own) = Some(Own { stop, task });
                return Ok(EngineKind::Here);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        Err(ApiError::new(
            floe_core::ErrorCode::Internal,
            format!("the engine did not answer on {}", self.opts.socket.display()),
        ))
    }

    fn hosting(&self) -> bool {
        lock(&self.own).as_ref().is_some_and(|o| !o.task.is_finished())
    }

    /// Ask whichever engine answers; start one here only when none does (one
    /// request per call while an engine runs).
    async fn request(&self, req: &Request) -> Result<(EngineKind, Reply), ApiError> {
        let reply = match daemon::request(&self.opts.socket, req).await {
            Err(daemon::DaemonError::NotRunning(_)) => {
                self.ensure().await?;
                ask(&self.opts.socket, req).await?
            }
            Ok(r) if !r.ok => return Err(ApiError::new(floe_core::ErrorCode::Usage, r.message)),
            other => other?,
        };
        let kind = if self.hosting() { EngineKind::Here } else { EngineKind::Daemon };
        Ok((kind, reply))
    }

    /// Every folder's state, in words, and the overall state.
    pub async fn status(&self) -> Result<StatusView, ApiError> {
        let (engine, reply) = self.request(&Request::Status).await?;
        let folders: Vec<FolderView> = reply.folders.iter().map(describe).collect();
        let o = overall(&folders);
        Ok(StatusView { engine, overall: o, overall_label: o.label(), folders })
    }

    /// Pause one folder, or all of them.
    pub async fn pause(&self, folder: Option<PathBuf>) -> Result<String, ApiError> {
        Ok(self.request(&Request::Pause { folder }).await?.1.message)
    }

    /// Resume one folder, or all of them.
    pub async fn resume(&self, folder: Option<PathBuf>) -> Result<String, ApiError> {
        Ok(self.request(&Request::Resume { folder }).await?.1.message)
    }

    /// Stop the engine started here, if any (a separate daemon keeps running).
    pub async fn shutdown(&self) {
        let own = lock(&self.own).take();
        if let Some(o) = own {
            let _ = o.stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), o.task).await;
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(o) = lock(&self.own).take() {
            let _ = o.stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> DaemonOptions {
        DaemonOptions {
            config: dir.join("config.toml"),
            socket: dir.join("run/floe.sock"),
            debounce: Duration::from_millis(100),
            rescan_every: Duration::from_secs(60),
            quiet: Duration::from_millis(100),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hosts_an_engine_when_none_runs_and_shares_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = Host::new(opts(dir.path()));
        assert_eq!(a.ensure().await.unwrap(), EngineKind::Here);
        // a second process (here: a second host) sees the first one's engine
        let b = Host::new(opts(dir.path()));
        assert_eq!(b.ensure().await.unwrap(), EngineKind::Daemon);
        assert_eq!(b.status().await.unwrap().overall, Overall::Synced);
        // when the first goes away the second takes over
        a.shutdown().await;
        assert_eq!(b.ensure().await.unwrap(), EngineKind::Here);
        b.shutdown().await;
        assert!(status_at(&dir.path().join("run/floe.sock")).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_config_is_reported_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "[[folder]\n").unwrap();
        let e = Host::new(opts(dir.path())).ensure().await.unwrap_err();
        assert_eq!(e.code, floe_core::ErrorCode::Usage);
        assert!(e.message.contains("fix or remove the file"), "{}", e.message);
    }
}
