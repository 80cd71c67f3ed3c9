//! The app's commands: each one a delegation into `floe_api`, the API the `floe`
//! CLI calls too. Arguments and results are the API's DTOs; failures reach the UI
//! as `{code, message}` ([`ApiError`]).

use std::path::PathBuf;

use floe_api::ApiError;
use floe_api::engine::StatusView;
use floe_api::folders::{Added, LoginField, NewFolder};
use floe_api::history::CommitView;
use floe_api::mounts::MountView;
use floe_api::stats::{Stats, StatsAnswer};
use floe_engine::config::FolderConfig;
use floe_store::{Series, Variable};
use tauri::State;

use crate::Floe;

type R<T> = Result<T, ApiError>;

#[tauri::command]
pub(crate) async fn status(s: State<'_, Floe>) -> R<StatusView> {
    s.host.status().await
}

#[tauri::command]
pub(crate) async fn folders(s: State<'_, Floe>) -> R<Vec<FolderConfig>> {
    floe_api::folders::list(s.host.config_path())
}

#[tauri::command]
pub(crate) async fn login_fields(repo: String) -> R<Vec<LoginField>> {
    floe_api::folders::login_fields(&repo)
}

#[tauri::command]
pub(crate) async fn add_folder(s: State<'_, Floe>, folder: NewFolder) -> R<Added> {
    floe_api::folders::add(s.host.config_path(), s.host.socket(), folder).await
}

#[tauri::command]
pub(crate) async fn remove_folder(s: State<'_, Floe>, path: PathBuf) -> R<FolderConfig> {
    floe_api::folders::remove(s.host.config_path(), s.host.socket(), &path).await
}

#[tauri::command]
pub(crate) async fn pause(s: State<'_, Floe>, folder: Option<PathBuf>) -> R<String> {
    s.host.pause(folder).await
}

#[tauri::command]
pub(crate) async fn resume(s: State<'_, Floe>, folder: Option<PathBuf>) -> R<String> {
    s.host.resume(folder).await
}

/// Mark a file the folder could not sync ignored (`undo`: counted again).
#[tauri::command]
pub(crate) async fn ignore_file(
    s: State<'_, Floe>,
    path: PathBuf,
    file: String,
    undo: bool,
) -> R<Vec<String>> {
    let files = [PathBuf::from(file)];
    floe_api::folders::ignore(s.host.config_path(), s.host.socket(), &path, &files, undo).await
}

/// Release (`release: true`) or drop what the folder's validation gate holds.
#[tauri::command]
pub(crate) async fn gate_decide(
    s: State<'_, Floe>,
    path: PathBuf,
    release: bool,
) -> R<floe_api::gate::Decision> {
    let target = floe_api::gate::target(s.host.config_path(), &path.to_string_lossy(), None)?;
    let verdict =
        if release { floe_api::gate::Verdict::Release } else { floe_api::gate::Verdict::Drop };
    floe_api::gate::decide(s.host.socket(), &target, verdict).await
}

#[tauri::command]
pub(crate) async fn commits(repo: String, branch: String, limit: usize) -> R<Vec<CommitView>> {
    floe_api::history::commits(&repo, &branch, limit).await
}

#[tauri::command]
pub(crate) async fn variables(repo: String, branch: String) -> R<Vec<Variable>> {
    floe_api::history::variables(&repo, &branch).await
}

#[tauri::command]
pub(crate) async fn series(
    repo: String,
    branch: String,
    variable: String,
    records: u64,
) -> R<Series> {
    floe_api::history::series(&repo, &branch, &variable, records).await
}

/// The History's overview: `variable`'s mean per bin of `every_s` seconds over the
/// whole history, from the statistics kept at ingest (`floe stats --every`).
#[tauri::command]
pub(crate) async fn overview(
    repo: String,
    branch: String,
    variable: String,
    every_s: u64,
) -> R<StatsAnswer> {
    let every = Some(std::time::Duration::from_secs(every_s.max(1)));
    floe_api::stats::stats(&Stats { repo, branch, var: variable, from: None, to: None, every })
        .await
}

#[tauri::command]
pub(crate) async fn mounts(s: State<'_, Floe>) -> R<Vec<MountView>> {
    Ok(s.mounts.list())
}

#[tauri::command]
pub(crate) async fn mount(
    s: State<'_, Floe>,
    repo: String,
    mountpoint: PathBuf,
    at_login: bool,
) -> R<MountView> {
    s.mounts.mount(&repo, &mountpoint, at_login, Vec::new()).await
}

#[tauri::command]
pub(crate) async fn set_mount_at_login(
    s: State<'_, Floe>,
    mountpoint: PathBuf,
    on: bool,
) -> R<MountView> {
    s.mounts.set_at_login(&mountpoint, on)
}

#[tauri::command]
pub(crate) async fn unmount(s: State<'_, Floe>, mountpoint: PathBuf) -> R<()> {
    s.mounts.unmount(&mountpoint).await
}

/// Every repository under a prefix, newest first (the Mounts screen's browser).
#[tauri::command]
pub(crate) async fn repos(url: String) -> R<floe_api::catalog::Repos> {
    floe_api::catalog::repos(&url, false).await
}

#[tauri::command]
pub(crate) async fn open_folder(path: PathBuf) -> R<()> {
    floe_api::mounts::open_in_file_manager(&path)
}

#[tauri::command]
pub(crate) async fn pick_folder(app: tauri::AppHandle) -> R<Option<String>> {
    crate::shell::pick_folder(app).await
}

#[tauri::command]
pub(crate) async fn start_at_login(app: tauri::AppHandle) -> R<bool> {
    crate::shell::start_at_login(&app)
}

#[tauri::command]
pub(crate) async fn set_start_at_login(app: tauri::AppHandle, enabled: bool) -> R<bool> {
    crate::shell::set_start_at_login(&app, enabled)
}

/// The folder this app's own command line named, for the add-folder form.
#[tauri::command]
pub(crate) async fn start_folder() -> R<Option<String>> {
    let argv: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir().unwrap_or_default();
    Ok(floe_api::folders::folder_arg(&argv, &cwd).map(|p| p.display().to_string()))
}

#[tauri::command]
pub(crate) async fn ui_ready() -> R<()> {
    crate::shell::ui_ready();
    Ok(())
}
