//! Registered sync folders, kept in `<config dir>/floe/config.toml`.

use std::path::{Path, PathBuf};

use floe_core::RepoUrl;
use serde::{Deserialize, Serialize};

/// One sync target: a folder, the repository it goes to, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderConfig {
    /// Absolute path of the watched folder.
    pub path: PathBuf,
    /// Repository URL (a local path, s3://, az://, gs://). Never holds a secret.
    pub repo: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default = "default_group")]
    pub group: String,
    /// File name patterns; empty: NetCDF/HDF5/Zarr defaults.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Append dimensions; empty: the files' unlimited dimensions.
    #[serde(default)]
    pub append_dims: Vec<String>,
    /// Kept here by `floe pause`/`resume` and the app, so a restart resumes the
    /// folder as the user left it.
    #[serde(default)]
    pub paused: bool,
    /// Files (as the sync names them, relative to the folder) the user marked
    /// ignored: still tried, but no longer counted as needing attention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// When to commit.
    #[serde(default)]
    pub commit: Cadence,
    /// Follow NetCDF-3 files live: while a logger still has one open, take its
    /// settled records at most every this many seconds (absent: take a file once
    /// it is complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_every_secs: Option<f64>,
    /// After each commit, read the files it took back from the storage and compare
    /// them with the sources (`floe verify` of that commit). Off by default: it reads
    /// back what was just uploaded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify_after_commit: bool,
    /// Verify the whole folder against its repository every this many hours
    /// (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_every_hours: Option<f64>,
    /// What a file that does not fit the repository's schema does: `stop` (it is
    /// refused), `branch` or `repo` (the folder goes on in a new branch or
    /// repository, and this config is updated to it).
    #[serde(default)]
    pub on_drift: floe_sync::drift::OnDrift,
    /// Global attributes whose change starts a tagged settings period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_on_change: Vec<String>,
    /// Commit through a validation gate (absent: straight to the branch): to
    /// `floe-staging-<branch>` first, the branch moved only when these checks pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<floe_sync::gate::GateOptions>,
    /// Keep this much history (a span such as `90d`): older snapshots expire and
    /// their garbage is collected on a schedule, at a quiet moment (absent: the
    /// history is kept whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<String>,
    /// With `keep`: collect nothing younger than this (default a day, or `keep`
    /// when shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_grace: Option<String>,
}

/// A folder's commit cadence. A commit is due once `files` complete files are
/// waiting, or `bytes` of them (if set), or when the oldest has waited
/// `max_wait_secs`; it then takes everything waiting, in commits of at most
/// `max_commit_bytes`. The default commits a file as soon as it is complete, and a
/// backlog (after an outage, or a restart) in as few commits as that limit allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cadence {
    pub files: usize,
    pub bytes: Option<u64>,
    pub max_wait_secs: f64,
    pub max_commit_bytes: u64,
}

impl FolderConfig {
    /// Its retention policy, from `keep` and `gc_grace` (None: keep everything).
    pub fn retention(&self) -> Result<Option<crate::retention::Policy>, String> {
        crate::retention::Policy::of(self.keep.as_deref(), self.gc_grace.as_deref())
    }
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence { files: 1, bytes: None, max_wait_secs: 600.0, max_commit_bytes: 1 << 30 }
    }
}

impl Cadence {
    /// When a commit is due (what the sync holds back until then).
    pub fn trigger(&self) -> floe_sync::Trigger {
        floe_sync::Trigger {
            files: self.files.max(1),
            bytes: self.bytes,
            max_wait: std::time::Duration::from_secs_f64(self.max_wait_secs.max(0.0)),
        }
    }
}

/// Limits for the whole daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Folders syncing at the same time (the others wait their turn).
    pub parallel_folders: usize,
    /// Upload cap for all folders together, bytes per second; none: unlimited.
    pub upload_bytes_per_sec: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { parallel_folders: 2, upload_bytes_per_sec: None }
    }
}

fn default_branch() -> String {
    "main".into()
}
fn default_group() -> String {
    "/".into()
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, rename = "folder")]
    pub folders: Vec<FolderConfig>,
    /// Mounts made again at login (by the app or `floe daemon`, whichever starts).
    #[serde(default, rename = "mount", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountConfig>,
}

/// A repository mounted again at every login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    pub repo: String,
    /// The mount point (absolute).
    pub path: PathBuf,
}

/// Why the configuration could not be read, written or changed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}; fix or remove the file (it is plain TOML)")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{0} is already a sync folder; remove it first (`floe remove {0}`) to change its settings"
    )]
    Duplicate(String),
    #[error("{0} is not a sync folder; `floe list` shows the registered ones")]
    Unknown(String),
    #[error("{0}: the folder does not exist; create it or check the path")]
    NoFolder(String),
    #[error("{0}")]
    Url(#[from] floe_core::RepoUrlError),
    #[error("no configuration directory on this system: set XDG_CONFIG_HOME or FLOE_CONFIG")]
    NoConfigDir,
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// `$FLOE_CONFIG`, else `<user config dir>/floe/config.toml`.
    pub fn default_path() -> Result<PathBuf, ConfigError> {
        if let Some(p) = std::env::var_os("FLOE_CONFIG") {
            return Ok(PathBuf::from(p));
        }
        dirs::config_dir()
            .map(|d| d.join("floe").join("config.toml"))
            .ok_or(ConfigError::NoConfigDir)
    }

    /// Read the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|source| ConfigError::Parse { path: path.into(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io { path: path.into(), source }),
        }
    }

    /// Write atomically (temporary file + rename), creating the directory.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io { path: path.into(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = toml::to_string_pretty(self).unwrap_or_default();
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Register a folder (its path made absolute; the repository URL checked).
    pub fn add(&mut self, mut folder: FolderConfig) -> Result<(), ConfigError> {
        // a relative local repository would depend on where the daemon starts
        if let RepoUrl::Local(p) = RepoUrl::parse(&folder.repo)?
            && p.is_relative()
            && let Ok(cwd) = std::env::current_dir()
        {
            folder.repo = cwd.join(p).display().to_string();
        }
        if folder.commit.files == 0 || folder.commit.max_commit_bytes == 0 {
            return Err(ConfigError::Invalid(
                "a commit needs at least 1 file and 1 byte: give --commit-files 1 or more".into(),
            ));
        }
        if folder.live_every_secs.is_some_and(|s| s.is_nan() || s < 0.0) {
            return Err(ConfigError::Invalid("--live-every must be 0 seconds or more".into()));
        }
        if folder.commit.max_wait_secs.is_nan() || folder.commit.max_wait_secs < 0.0 {
            return Err(ConfigError::Invalid("--commit-max-wait must be 0 seconds or more".into()));
        }
        folder.retention().map_err(ConfigError::Invalid)?;
        let abs = std::fs::canonicalize(&folder.path)
            .map_err(|_| ConfigError::NoFolder(folder.path.display().to_string()))?;
        folder.path = abs;
        if self.folders.iter().any(|f| f.path == folder.path) {
            return Err(ConfigError::Duplicate(folder.path.display().to_string()));
        }
        self.folders.push(folder);
        Ok(())
    }

    /// Unregister a folder (by the path given at `add`, relative or absolute).
    pub fn remove(&mut self, path: &Path) -> Result<FolderConfig, ConfigError> {
        let i = self.position(path)?;
        Ok(self.folders.remove(i))
    }

    /// A registered folder, to change (by the path given at `add`, relative or absolute).
    pub fn folder_mut(&mut self, path: &Path) -> Result<&mut FolderConfig, ConfigError> {
        let i = self.position(path)?;
        Ok(&mut self.folders[i])
    }

    fn position(&self, path: &Path) -> Result<usize, ConfigError> {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.folders
            .iter()
            .position(|f| f.path == abs || f.path == path)
            .ok_or_else(|| ConfigError::Unknown(path.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(p: &Path) -> FolderConfig {
        FolderConfig {
            path: p.to_path_buf(),
            repo: "s3://bucket/site".into(),
            branch: "main".into(),
            group: "/".into(),
            patterns: vec!["*.nc".into()],
            append_dims: vec![],
            paused: false,
            ignore: Vec::new(),
            commit: Cadence::default(),
            live_every_secs: None,
            verify_after_commit: false,
            verify_every_hours: None,
            on_drift: Default::default(),
            tag_on_change: Vec::new(),
            gate: None,
            keep: None,
            gc_grace: None,
        }
    }

    #[test]
    fn add_save_load_remove() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("cfg/floe/config.toml");
        let watched = d.path().join("instrument");
        std::fs::create_dir_all(&watched).unwrap();
        let mut c = Config::load(&file).unwrap();
        assert!(c.folders.is_empty());
        c.add(folder(&watched)).unwrap();
        assert!(matches!(c.add(folder(&watched)), Err(ConfigError::Duplicate(_))));
        c.save(&file).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("[[folder]]") && text.contains("s3://bucket/site"), "{text}");
        let mut back = Config::load(&file).unwrap();
        assert_eq!(back, c);
        back.remove(&watched).unwrap();
        assert!(back.folders.is_empty());
        assert!(matches!(back.remove(&watched), Err(ConfigError::Unknown(_))));
    }

    #[test]
    fn older_files_get_the_default_cadence_and_limits() {
        let c: Config = toml::from_str("[[folder]]\npath = \"/x\"\nrepo = \"/r\"\n").unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.folders[0].commit, Cadence::default());
        assert_eq!(c.folders[0].commit.trigger().files, 1);
        let c: Config = toml::from_str(
            "[limits]\nupload_bytes_per_sec = 1000\n[[folder]]\npath = \"/x\"\nrepo = \"/r\"\n[folder.commit]\nbytes = 5\n",
        )
        .unwrap();
        assert_eq!(c.limits.upload_bytes_per_sec, Some(1000));
        assert_eq!(c.folders[0].commit.trigger().bytes, Some(5));
        assert_eq!(c.folders[0].commit.files, 1);
    }

    #[test]
    fn bad_input_says_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        let mut f = folder(&d.path().join("missing"));
        assert!(matches!(c.add(f.clone()), Err(ConfigError::NoFolder(_))));
        f.path = d.path().to_path_buf();
        f.repo = "ftp://nope".into();
        assert!(c.add(f).unwrap_err().to_string().contains("s3://"));
        let file = d.path().join("config.toml");
        std::fs::write(&file, "[[folder]]\npath = 3\n").unwrap();
        let e = Config::load(&file).unwrap_err();
        assert!(e.to_string().contains("plain TOML"), "{e}");
    }
}
