//! Sync folders: register (after testing the destination and keeping its login in
//! the OS keychain), list, remove. The running engine is told to reload, so a change
//! takes effect at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use floe_core::{ErrorCode, RepoUrl};
use floe_engine::config::{Cadence, Config, FolderConfig};
use floe_store::{doctor, secrets};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// A folder to register.
#[derive(Debug, Clone, Deserialize)]
pub struct NewFolder {
    pub folder: PathBuf,
    /// Repository: a local path, file://, s3://, az:// or gs://.
    pub repo: String,
    #[serde(default = "main_branch")]
    pub branch: String,
    #[serde(default = "root_group")]
    pub group: String,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub append_dims: Vec<String>,
    #[serde(default)]
    pub commit: Cadence,
    /// Follow NetCDF-3 files live, taking their settled records at most every this
    /// many seconds while the logger has them open (none: when complete).
    #[serde(default)]
    pub live_every_secs: Option<f64>,
    /// Read each commit back from the storage and compare it with the files.
    #[serde(default)]
    pub verify_after_commit: bool,
    /// Verify the whole folder every this many hours (none: never).
    #[serde(default)]
    pub verify_every_hours: Option<f64>,
    /// What a file that drifts does: stop (refused), branch or repo (goes on there).
    #[serde(default)]
    pub on_drift: floe_sync::drift::OnDrift,
    /// Global attributes whose change starts a tagged settings period.
    #[serde(default)]
    pub tag_on_change: Vec<String>,
    /// Commit through a validation gate with these checks (none: straight to the
    /// branch).
    #[serde(default)]
    pub gate: Option<floe_sync::gate::GateOptions>,
    /// Keep this much history (`90d`; none: all of it), and collect nothing
    /// younger than `gc_grace`.
    #[serde(default)]
    pub keep: Option<String>,
    #[serde(default)]
    pub gc_grace: Option<String>,
    /// The destination's login (`AWS_ACCESS_KEY_ID`, …), kept in the OS keychain;
    /// empty to use what the keychain or the environment already has.
    #[serde(default)]
    pub login: BTreeMap<String, String>,
    /// Test the destination before saving (the app always does).
    #[serde(default)]
    pub check: bool,
}

fn main_branch() -> String {
    "main".into()
}
fn root_group() -> String {
    "/".into()
}

/// A login setting the destination form asks for.
#[derive(Debug, Clone, Serialize)]
pub struct LoginField {
    pub var: &'static str,
    pub label: &'static str,
    pub secret: bool,
    pub required: bool,
}

/// What a login for `repo` asks for (nothing for a local repository).
pub fn login_fields(repo: &str) -> Result<Vec<LoginField>, ApiError> {
    let url = RepoUrl::parse(repo)?;
    Ok(secrets::fields(&url)
        .iter()
        .map(|f| LoginField { var: f.var, label: f.prompt, secret: f.secret, required: f.required })
        .collect())
}

/// What `add` did.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub folder: FolderConfig,
    /// The connection test, one line per check (empty without a check).
    pub checks: Vec<String>,
    /// Whether a running engine picked the folder up already.
    pub engine_reloaded: bool,
}

/// Register a folder. With `check`, the destination is tested with the login first;
/// nothing is saved (neither the folder nor the login) unless the test passes.
pub async fn add(config_path: &Path, socket: &Path, new: NewFolder) -> Result<Added, ApiError> {
    let url = RepoUrl::parse(&new.repo)?;
    let login =
        new.login.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect::<BTreeMap<_, _>>();
    let login = if login.is_empty() {
        None
    } else {
        if url.is_local() {
            return Err(secrets::SecretError::Local(url.to_string()).into());
        }
        let l = secrets::Login { vars: login };
        l.validate(&url)?;
        Some(l)
    };
    let mut config = Config::load(config_path)?;
    config.add(FolderConfig {
        path: new.folder,
        repo: new.repo,
        branch: new.branch,
        group: if new.group.starts_with('/') { new.group } else { format!("/{}", new.group) },
        patterns: new.patterns,
        append_dims: new.append_dims,
        paused: false,
        ignore: Vec::new(),
        commit: new.commit,
        live_every_secs: new.live_every_secs,
        verify_after_commit: new.verify_after_commit,
        verify_every_hours: new.verify_every_hours,
        on_drift: new.on_drift,
        tag_on_change: new.tag_on_change,
        gate: new.gate,
        keep: new.keep.filter(|k| !k.trim().is_empty()),
        gc_grace: new.gc_grace.filter(|g| !g.trim().is_empty()),
    })?;
    let mut checks = Vec::new();
    if new.check {
        let d = doctor::diagnose_with(&url, login.clone(), 0).await;
        checks = d.checks.iter().map(|c| format!("{}: {}", c.name, c.detail)).collect();
        if let Some(e) = d.error {
            return Err(ApiError::new(
                e.code(),
                format!("The connection test failed: {e}. Nothing was saved."),
            ));
        }
        if let Some(c) = d.checks.iter().find(|c| c.outcome == doctor::Outcome::Fail) {
            return Err(ApiError::new(
                ErrorCode::Storage,
                format!(
                    "The connection test failed ({}: {}). Nothing was saved.",
                    c.name, c.detail
                ),
            ));
        }
    }
    if let Some(l) = login {
        let u = url.clone();
        tokio::task::spawn_blocking(move || secrets::store(&secrets::Keychain, &u, &l))
            .await
            .map_err(crate::error::join_err)??;
    }
    config.save(config_path)?;
    let folder = config.folders.last().cloned().ok_or_else(|| {
        ApiError::new(ErrorCode::Internal, "the folder vanished from the configuration")
    })?;
    let engine_reloaded = crate::engine::reload_at(socket).await?;
    Ok(Added { folder, checks, engine_reloaded })
}

/// The registered folders.
pub fn list(config_path: &Path) -> Result<Vec<FolderConfig>, ApiError> {
    Ok(Config::load(config_path)?.folders)
}

/// Mark files of a registered folder ignored (or, with `undo`, counted again): a
/// file Floe could not sync then no longer makes the folder need attention. It is
/// still tried, so once fixed it syncs. A file is named as `floe status` lists it
/// (relative to the folder), or by its path. Returns the folder's ignore list.
pub async fn ignore(
    config_path: &Path,
    socket: &Path,
    folder: &Path,
    files: &[PathBuf],
    undo: bool,
) -> Result<Vec<String>, ApiError> {
    let mut config = Config::load(config_path)?;
    let f = config.folder_mut(folder)?;
    for file in files {
        let name = name_in(&f.path, file);
        f.ignore.retain(|i| *i != name);
        if !undo {
            f.ignore.push(name);
        }
    }
    f.ignore.sort();
    let list = f.ignore.clone();
    config.save(config_path)?;
    crate::engine::reload_at(socket).await?;
    Ok(list)
}

/// The folder a start of the app names on its command line (`floe-desktop
/// /data/lidar`, or a file manager's "Open with"): the first argument that is not
/// an option, resolved against the directory it was started in. `argv` includes
/// the program name.
pub fn folder_arg(argv: &[String], cwd: &Path) -> Option<PathBuf> {
    let arg = argv.iter().skip(1).find(|a| !a.starts_with('-'))?;
    Some(cwd.join(arg))
}

/// A file's name as the sync gives it: relative to the folder, `/`-separated.
fn name_in(folder: &Path, file: &Path) -> String {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let rel = abs.strip_prefix(folder).or_else(|_| file.strip_prefix(folder)).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Unregister a folder (its repository and its files are left as they are).
pub async fn remove(
    config_path: &Path,
    socket: &Path,
    folder: &Path,
) -> Result<FolderConfig, ApiError> {
    let mut config = Config::load(config_path)?;
    let removed = config.remove(folder)?;
    config.save(config_path)?;
    crate::engine::reload_at(socket).await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(folder: &Path, repo: &str) -> NewFolder {
        serde_json::from_value(serde_json::json!({
            "folder": folder, "repo": repo, "check": true
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_local_destination_is_tested_and_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sock) = (dir.path().join("c.toml"), dir.path().join("s.sock"));
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let repo = dir.path().join("repo").display().to_string();
        let added = add(&cfg, &sock, new(&data, &repo)).await.unwrap();
        assert!(!added.engine_reloaded);
        assert!(added.checks.iter().any(|c| c.starts_with("write:")), "{:?}", added.checks);
        assert_eq!(list(&cfg).unwrap().len(), 1);
        let e = add(&cfg, &sock, new(&data, &repo)).await.unwrap_err();
        assert!(e.message.contains("already a sync folder"));
        remove(&cfg, &sock, &data).await.unwrap();
        assert!(list(&cfg).unwrap().is_empty());
    }

    #[tokio::test]
    async fn nothing_is_saved_when_the_check_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sock) = (dir.path().join("c.toml"), dir.path().join("s.sock"));
        let e = add(&cfg, &sock, new(&dir.path().join("missing"), "/tmp/r")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Usage);
        assert!(e.message.contains("does not exist"));
        let mut n = new(dir.path(), "/tmp/r");
        n.login.insert("AWS_ACCESS_KEY_ID".into(), "k".into());
        let e = add(&cfg, &sock, n).await.unwrap_err();
        assert!(e.message.contains("local repository"), "{}", e.message);
        assert!(!cfg.exists());
    }

    #[tokio::test]
    async fn files_are_ignored_by_their_name_in_the_folder_and_counted_again_on_undo() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sock) = (dir.path().join("c.toml"), dir.path().join("s.sock"));
        let data = std::fs::canonicalize(dir.path()).unwrap().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/notes.nc"), "text").unwrap();
        let repo = dir.path().join("repo").display().to_string();
        add(&cfg, &sock, new(&data, &repo)).await.unwrap();
        let by_path = [data.join("sub/notes.nc"), PathBuf::from("b.nc")];
        let list = ignore(&cfg, &sock, &data, &by_path, false).await.unwrap();
        assert_eq!(list, vec!["b.nc".to_string(), "sub/notes.nc".to_string()]);
        assert_eq!(ignore(&cfg, &sock, &data, &by_path[..1], false).await.unwrap().len(), 2);
        assert_eq!(
            ignore(&cfg, &sock, &data, &by_path[1..], true).await.unwrap(),
            vec!["sub/notes.nc".to_string()]
        );
        assert_eq!(list_of(&cfg)[0].ignore, vec!["sub/notes.nc".to_string()]);
        let e = ignore(&cfg, &sock, &dir.path().join("other"), &by_path, false).await.unwrap_err();
        assert!(e.message.contains("other"), "{}", e.message);
    }

    #[test]
    fn the_folder_on_a_command_line_is_its_first_argument_that_is_not_an_option() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let cwd = Path::new("/home/lab");
        assert_eq!(folder_arg(&argv(&["floe-desktop"]), cwd), None);
        assert_eq!(folder_arg(&argv(&["floe-desktop", "--hidden"]), cwd), None);
        assert_eq!(
            folder_arg(&argv(&["floe-desktop", "--hidden", "lidar"]), cwd),
            Some(PathBuf::from("/home/lab/lidar"))
        );
        assert_eq!(
            folder_arg(&argv(&["floe-desktop", "/data/radar"]), cwd),
            Some(PathBuf::from("/data/radar"))
        );
    }

    fn list_of(cfg: &Path) -> Vec<FolderConfig> {
        list(cfg).unwrap()
    }

    #[test]
    fn the_form_asks_per_destination() {
        assert!(login_fields("/data/repo").unwrap().is_empty());
        let s3 = login_fields("s3://b/p").unwrap();
        assert!(s3.iter().any(|f| f.var == "AWS_SECRET_ACCESS_KEY" && f.secret && f.required));
        assert!(
            login_fields("az://c/p").unwrap().iter().any(|f| f.var == "AZURE_STORAGE_ACCOUNT_KEY")
        );
        assert!(login_fields("ftp://x").is_err());
    }
}
