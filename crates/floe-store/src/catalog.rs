//! Finding the repositories under a prefix: a local folder, `s3://bucket/prefix`,
//! `az://container/prefix` or `gs://bucket/prefix` that holds many of them (one per
//! instrument and project, say, as `<instrument>/<project>/<repo>`).
//!
//! Every listing is one delimited listing of one prefix (`list_with_delimiter`:
//! the objects right at it and the names of its sub-prefixes), never a listing of
//! everything below it, so finding repositories costs one request per prefix and
//! repository (more only past 1,000 entries at one level), whatever the chunks
//! inside them. A prefix is a repository's root when Icechunk's own marker is there:
//! the `repo` object (format 2 and later), or `refs/` beside `snapshots/` (format 1).
//! Below a repository's root, Icechunk's and Floe's own prefixes (`chunks/`,
//! `manifests/`, …) are not looked into; any other sub-prefix may hold more
//! repositories and is listed like any other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use floe_core::RepoUrl;
use futures::StreamExt;
use icechunk::storage::{ObjectStoreBackend, Role};
use object_store::ObjectStore;
use serde::Serialize;

use crate::{Repo, StoreError};

/// The prefixes a repository's root holds for Icechunk and Floe themselves.
pub const OWN_PREFIXES: [&str; 7] =
    ["chunks", "manifests", "snapshots", "transactions", "refs", "overwritten", "floe"];

/// What one prefix holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixListing {
    /// Icechunk's marker is here: this prefix is a repository's root.
    pub repository: bool,
    /// The sub-prefixes that may hold repositories (names, sorted): at a
    /// repository's root, all but [`OWN_PREFIXES`].
    pub children: Vec<String>,
}

/// Classify one delimited listing: the names of the objects right at the prefix
/// and of its sub-prefixes.
pub fn classify(objects: &[String], prefixes: &[String]) -> PrefixListing {
    let has = |p: &str| prefixes.iter().any(|x| x == p);
    let repository = objects.iter().any(|o| o == "repo") || (has("refs") && has("snapshots"));
    let mut children: Vec<String> = prefixes
        .iter()
        .filter(|p| !p.is_empty() && !p.starts_with('.'))
        .filter(|p| !repository || !OWN_PREFIXES.contains(&p.as_str()))
        .cloned()
        .collect();
    children.sort();
    children.dedup();
    PrefixListing { repository, children }
}

enum Lister {
    Local(PathBuf),
    Store { store: Arc<dyn ObjectStore>, root: String },
}

/// The repositories under one URL, listed a prefix at a time.
pub struct Catalog {
    url: RepoUrl,
    lister: Lister,
    requests: AtomicUsize,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("url", &self.url.to_string()).finish_non_exhaustive()
    }
}

fn store_err(label: &str, e: &(dyn std::error::Error + 'static)) -> StoreError {
    crate::remote::classify_error(label, e)
}

/// An object_store client for a whole bucket or container, made the way
/// Icechunk makes its own (same credentials, emulator settings and retries), so a
/// catalog reaches exactly what `floe mount` of one repository there reaches.
fn bucket_store(
    url: &RepoUrl,
    env: &dyn crate::remote::Env,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let label = url.to_string();
    let backend: Box<dyn ObjectStoreBackend> = match url {
        RepoUrl::Local(_) => {
            return Err(StoreError::Repository { repo: label, detail: "not remote".into() });
        }
        RepoUrl::S3 { bucket, .. } => {
            let (opts, creds) = crate::remote::s3_options(env);
            Box::new(icechunk::storage::S3ObjectStoreBackend {
                bucket: bucket.clone(),
                prefix: None,
                credentials: Some(creds),
                config: Some(opts),
                extra_read_headers: Vec::new(),
                extra_write_headers: Vec::new(),
            })
        }
        RepoUrl::Azure { container, .. } => {
            let (account, creds, config) = crate::remote::azure_options(env);
            let account = crate::remote::azure_account(account, &label)?;
            let config = config
                .into_iter()
                .filter_map(|(k, v)| {
                    k.parse::<object_store::azure::AzureConfigKey>().ok().map(|k| (k, v))
                })
                .collect::<HashMap<_, _>>();
            Box::new(icechunk::storage::AzureObjectStoreBackend {
                account,
                container: container.clone(),
                prefix: None,
                credentials: Some(creds),
                config: Some(config),
            })
        }
        RepoUrl::Gcs { bucket, .. } => Box::new(icechunk::storage::GcsObjectStoreBackend {
            bucket: bucket.clone(),
            prefix: None,
            credentials: Some(crate::remote::gcs_credentials(env)),
            config: None,
            extra_read_headers: Vec::new(),
            extra_write_headers: Vec::new(),
        }),
    };
    backend
        .mk_object_store(&backend.default_settings(), Role::Read)
        .map_err(|e| store_err(&label, &e))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_string() } else { format!("{parent}/{name}") }
}

impl Catalog {
    /// The catalog at `url`, with credentials as for every Floe command (the
    /// keychain's login, then the environment). Nothing is listed yet.
    pub async fn open(url: &RepoUrl) -> Result<Catalog, StoreError> {
        let lister = match url {
            RepoUrl::Local(p) => {
                if !p.is_dir() {
                    return Err(StoreError::NotFound(url.to_string()));
                }
                Lister::Local(p.clone())
            }
            remote => {
                let login = crate::secrets::keychain_login(remote).await;
                let env = crate::secrets::Layered { login, env: &crate::remote::ProcessEnv };
                let root = match remote {
                    RepoUrl::S3 { prefix, .. }
                    | RepoUrl::Azure { prefix, .. }
                    | RepoUrl::Gcs { prefix, .. } => prefix.trim_matches('/').to_string(),
                    RepoUrl::Local(_) => String::new(),
                };
                Lister::Store { store: bucket_store(remote, &env)?, root }
            }
        };
        Ok(Catalog { url: url.clone(), lister, requests: AtomicUsize::new(0) })
    }

    /// The catalog's own URL.
    pub fn url(&self) -> &RepoUrl {
        &self.url
    }

    /// The URL of `rel` (a prefix relative to the catalog's, `""` for itself).
    pub fn url_of(&self, rel: &str) -> RepoUrl {
        self.url.child(rel)
    }

    /// Listing requests made so far (local folders count one per folder read).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// What prefix `rel` holds: one delimited listing.
    pub async fn list(&self, rel: &str) -> Result<PrefixListing, StoreError> {
        let label = self.url_of(rel).to_string();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (objects, prefixes) = match &self.lister {
            Lister::Local(root) => list_local(&root.join(rel), &label)?,
            Lister::Store { store, root } => {
                let full = join(root, rel.trim_matches('/'));
                let path =
                    (!full.is_empty()).then(|| object_store::path::Path::from(full.as_str()));
                let listed = store
                    .list_with_delimiter(path.as_ref())
                    .await
                    .map_err(|e| store_err(&label, &e))?;
                let name =
                    |p: &object_store::path::Path| p.filename().unwrap_or_default().to_string();
                let objects = listed.objects.iter().map(|o| name(&o.location)).collect::<Vec<_>>();
                let prefixes = listed.common_prefixes.iter().map(name).collect::<Vec<_>>();
                (objects, prefixes)
            }
        };
        Ok(classify(&objects, &prefixes))
    }

    /// Every repository at or below the catalog's prefix (relative prefixes,
    /// sorted), listing `concurrency` prefixes at a time. A prefix that cannot be
    /// listed is reported in `unlisted` and the rest go on.
    pub async fn walk(&self, concurrency: usize) -> Walk {
        let mut walk = Walk::default();
        let mut level = vec![String::new()];
        while !level.is_empty() {
            let listed: Vec<(String, Result<PrefixListing, StoreError>)> =
                futures::stream::iter(level.drain(..))
                    .map(|rel| async move {
                        let r = self.list(&rel).await;
                        (rel, r)
                    })
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await;
            for (rel, r) in listed {
                match r {
                    Ok(l) => {
                        if l.repository {
                            walk.repositories.push(rel.clone());
                        }
                        level.extend(l.children.iter().map(|c| join(&rel, c)));
                    }
                    Err(e) => walk.unlisted.push((rel, e)),
                }
            }
        }
        walk.repositories.sort();
        walk
    }
}

/// What [`Catalog::walk`] found.
#[derive(Debug, Default)]
pub struct Walk {
    pub repositories: Vec<String>,
    pub unlisted: Vec<(String, StoreError)>,
}

fn list_local(
    dir: &std::path::Path,
    label: &str,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let io = |e: std::io::Error| store_err(label, &e);
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        // follows symlinks, as a reader of the folder would
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => prefixes.push(name),
            Ok(_) => objects.push(name),
            Err(_) => {}
        }
    }
    Ok((objects, prefixes))
}

/// One repository as `floe repos` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RepoSummary {
    /// Its prefix below the catalog's.
    pub path: String,
    pub url: String,
    /// The newest commit of any branch.
    pub latest_commit: Option<DateTime<Utc>>,
    pub branches: usize,
    pub tags: usize,
    /// Bytes of every object under it (listing them all: the one part of a
    /// summary whose cost grows with the repository).
    pub bytes: Option<u64>,
    pub objects: Option<u64>,
    /// The start time its name carries (`…-2024-05-01T00-00-00Z`, as Floe's drift
    /// rollover and ice-stream name repositories).
    pub named_time: Option<DateTime<Utc>>,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
}

/// The timestamp a repository's last path component ends in, if any:
/// `YYYY-MM-DDTHH-MM-SSZ` (Floe's drift names), `YYYY-MM-DDTHH:MM:SSZ`,
/// `YYYYMMDDTHHMMSSZ`, `YYYY-MM-DD` or `YYYYMMDD`.
pub fn named_time(path: &str) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime};
    let name = path.rsplit('/').next().unwrap_or(path);
    let formats_dt = ["%Y-%m-%dT%H-%M-%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%dT%H%M%SZ"];
    // try every suffix that starts a run of digits: names are `<what>-<when>` or `<what>_<when>`
    let starts = name
        .char_indices()
        .filter(|&(i, c)| {
            c.is_ascii_digit() && (i == 0 || !name[..i].ends_with(|p: char| p.is_ascii_digit()))
        })
        .map(|(i, _)| i);
    for i in starts {
        let tail = &name[i..];
        for f in formats_dt {
            if let Ok(t) = NaiveDateTime::parse_from_str(tail, f) {
                return Some(t.and_utc());
            }
        }
        for f in ["%Y-%m-%d", "%Y%m%d"] {
            if let Ok(d) = NaiveDate::parse_from_str(tail, f) {
                return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
            }
        }
    }
    None
}

/// Newest first: by the time in the name where there is one, else by the latest
/// commit; ties (and repositories with neither) by path.
pub fn sort_newest_first(repos: &mut [RepoSummary]) {
    repos.sort_by(|a, b| {
        let key = |r: &RepoSummary| r.named_time.or(r.latest_commit);
        key(b).cmp(&key(a)).then_with(|| a.path.cmp(&b.path))
    });
}

impl Repo {
    /// Branches, tags and the newest commit; with `size`, also every object's bytes.
    pub async fn summary(
        &self,
        size: bool,
    ) -> Result<(usize, usize, Option<DateTime<Utc>>, Option<(u64, u64)>), StoreError> {
        let branches = self.branches().await?;
        // the count only: `Repo::tags` would look each one up
        let tags =
            self.inner.list_tags().await.map_err(|e| crate::repo::repo_err(&self.label, e))?;
        let mut latest = None;
        for b in &branches {
            latest = latest.max(self.tip_time(b).await?);
        }
        let size = match size {
            true => {
                let listed = self.list("").await?;
                Some((listed.iter().map(|o| o.size_bytes).sum(), listed.len() as u64))
            }
            false => None,
        };
        Ok((branches.len(), tags.len(), latest, size))
    }

    /// When the tip of `branch` was committed (one read of the repository info).
    async fn tip_time(&self, branch: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        use futures::TryStreamExt;
        let at = icechunk::repository::VersionInfo::BranchTipRef(branch.to_string());
        let err = |e: &(dyn std::error::Error + 'static)| store_err(self.label(), e);
        let stream = self.repository().ancestry(&at).await.map_err(|e| err(&e))?;
        let mut stream = std::pin::pin!(stream);
        Ok(stream.try_next().await.map_err(|e| err(&e))?.map(|s| s.flushed_at))
    }
}

impl Catalog {
    /// Every repository under the catalog, summarised, newest first. A
    /// repository that cannot be read is listed with its error.
    pub async fn summaries(
        &self,
        size: bool,
        concurrency: usize,
    ) -> (Vec<RepoSummary>, Vec<(String, StoreError)>) {
        let walk = self.walk(concurrency).await;
        let mut out: Vec<RepoSummary> = futures::stream::iter(walk.repositories)
            .map(|path| async move {
                let url = self.url_of(&path);
                let mut s = RepoSummary {
                    named_time: named_time(&path),
                    path,
                    url: url.to_string(),
                    latest_commit: None,
                    branches: 0,
                    tags: 0,
                    bytes: None,
                    objects: None,
                    error: None,
                };
                match async { Repo::open(&url).await?.summary(size).await }.await {
                    Ok((branches, tags, latest, sized)) => {
                        s.branches = branches;
                        s.tags = tags;
                        s.latest_commit = latest;
                        s.bytes = sized.map(|x| x.0);
                        s.objects = sized.map(|x| x.1);
                    }
                    Err(e) => s.error = Some(e.to_string()),
                }
                s
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        sort_newest_first(&mut out);
        (out, walk.unlisted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_repository_is_known_by_its_marker() {
        let l = classify(
            &v(&["repo", "config.yaml"]),
            &v(&["chunks", "manifests", "snapshots", "transactions", "overwritten", "floe"]),
        );
        assert!(l.repository);
        assert!(l.children.is_empty(), "{l:?}");
        let v1 = classify(&v(&["config.yaml"]), &v(&["refs", "snapshots", "chunks"]));
        assert!(v1.repository);
        let plain = classify(&v(&["README"]), &v(&["b", "a", "chunks"]));
        assert!(!plain.repository);
        assert_eq!(
            plain.children,
            ["a", "b", "chunks"],
            "outside a repository every prefix is a folder"
        );
    }

    #[test]
    fn a_repository_that_is_also_a_parent_keeps_its_other_prefixes() {
        let l = classify(&v(&["repo"]), &v(&["chunks", "2024", "snapshots", ".hidden"]));
        assert!(l.repository);
        assert_eq!(l.children, ["2024"]);
    }

    #[test]
    fn the_time_in_a_name() {
        let t = |s: &str| named_time(s).map(|t| t.to_rfc3339());
        assert_eq!(t("lab/ctd-2024-05-01T06-30-00Z").as_deref(), Some("2024-05-01T06:30:00+00:00"));
        assert_eq!(t("radar_20240501T063000Z").as_deref(), Some("2024-05-01T06:30:00+00:00"));
        assert_eq!(t("lidar/2023-12-31").as_deref(), Some("2023-12-31T00:00:00+00:00"));
        assert_eq!(t("x/site2_20240102").as_deref(), Some("2024-01-02T00:00:00+00:00"));
        assert_eq!(t("ctd"), None);
        assert_eq!(t("2024/ctd"), None, "only the last component names the repository");
    }

    #[test]
    fn newest_first_by_name_then_commit() {
        let r = |path: &str, commit: Option<&str>| RepoSummary {
            path: path.into(),
            url: path.into(),
            latest_commit: commit.map(|c| c.parse().unwrap()),
            branches: 1,
            tags: 0,
            bytes: None,
            objects: None,
            named_time: named_time(path),
            error: None,
        };
        let mut v = vec![
            r("a/ctd", Some("2024-03-01T00:00:00Z")),
            r("a/ctd-2024-01-01T00-00-00Z", Some("2024-06-01T00:00:00Z")),
            r("a/ctd-2024-05-01T00-00-00Z", Some("2024-05-02T00:00:00Z")),
            r("b/empty", None),
        ];
        sort_newest_first(&mut v);
        let order: Vec<_> = v.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            order,
            ["a/ctd-2024-05-01T00-00-00Z", "a/ctd", "a/ctd-2024-01-01T00-00-00Z", "b/empty"]
        );
    }
}
