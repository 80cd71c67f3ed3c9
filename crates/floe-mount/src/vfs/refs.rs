//! Refs: branches, tags, snapshots and by-time resolved onto commits, refreshed at most every `refresh`.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Top {
    Branches,
    Tags,
    Snapshots,
    ByTime,
}

pub(super) fn top_name(t: Top) -> &'static str {
    match t {
        Top::Branches => "branches",
        Top::Tags => "tags",
        Top::Snapshots => "snapshots",
        Top::ByTime => "by-time",
    }
}

pub(super) const TOPS: [(&str, Top); 4] = [
    ("branches", Top::Branches),
    ("tags", Top::Tags),
    ("snapshots", Top::Snapshots),
    ("by-time", Top::ByTime),
];

/// The refs as of one refresh, with the views derived from them on demand.
pub(super) struct RefsView {
    pub(super) at: Instant,
    pub(super) branches: BTreeMap<String, Commit>,
    pub(super) tags: BTreeMap<String, Commit>,
    pub(super) newest: SystemTime,
    pub(super) by_time: Mutex<Option<Arc<BTreeMap<String, Commit>>>>,
    pub(super) snapshots: Mutex<Option<Arc<BTreeMap<String, Commit>>>>,
}

pub(super) fn shown_map(m: BTreeMap<String, Commit>) -> BTreeMap<String, Commit> {
    m.into_iter().filter_map(|(k, v)| shown(&k).map(|s| (s.into_owned(), v))).collect()
}

impl RefsView {
    fn new(refs: Refs, fallback: SystemTime) -> RefsView {
        let newest = refs
            .branches
            .values()
            .chain(refs.tags.values())
            .map(|c| SystemTime::from(c.time))
            .max()
            .unwrap_or(fallback);
        RefsView {
            at: Instant::now(),
            branches: shown_map(refs.branches),
            tags: shown_map(refs.tags),
            newest,
            by_time: Mutex::new(None),
            snapshots: Mutex::new(None),
        }
    }
}

/// The folder name of a commit under `by-time/`: its UTC time, sortable as text,
/// with no character that needs quoting in a shell or a URL.
pub fn time_label(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H-%M-%S%.6fZ").to_string()
}

impl Vfs {
    /// The branches and tags of repository `repo`, re-read at most every `refresh`.
    pub(super) fn refs(&self, repo: RepoId) -> Result<Arc<RefsView>, MountError> {
        let slot = self.inner.slot(repo)?;
        let mut cached = slot.refs.lock().map_err(|_| poisoned())?;
        if let Some(v) = cached.as_ref()
            && v.at.elapsed() < self.inner.opts.refresh
        {
            return Ok(v.clone());
        }
        match self.inner.backend(repo).and_then(|b| b.refs()) {
            Ok(refs) => {
                let v = Arc::new(RefsView::new(refs, self.inner.started));
                *cached = Some(v.clone());
                Ok(v)
            }
            Err(e) => match cached.as_ref() {
                Some(stale) => {
                    tracing::warn!(
                        repository = %slot.prefix,
                        "refreshing branches and tags failed, showing the last known: {e}"
                    );
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }

    pub(super) fn ancestry(
        &self,
        repo: RepoId,
        snapshot: &str,
    ) -> Result<Arc<Vec<Commit>>, MountError> {
        self.inner.ancestry.get_or_insert_with(&(repo, snapshot.to_string()), || {
            let a = self.inner.backend(repo)?.ancestry(snapshot)?;
            for c in &a {
                self.inner.commits.insert((repo, c.id.clone()), c.clone());
            }
            Ok(Arc::new(a))
        })
    }

    pub(super) fn by_time(
        &self,
        repo: RepoId,
        refs: &RefsView,
    ) -> Result<Arc<BTreeMap<String, Commit>>, MountError> {
        memoized(&refs.by_time, || {
            let branch = shown(&self.inner.opts.history_branch)
                .and_then(|b| refs.branches.get(b.as_ref()))
                .or_else(|| refs.branches.values().next());
            let mut out = BTreeMap::new();
            if let Some(tip) = branch {
                for c in self.ancestry(repo, &tip.id)?.iter() {
                    let base = time_label(&c.time);
                    let mut name = base.clone();
                    let mut n = 1;
                    while out.contains_key(&name) {
                        n += 1;
                        name = format!("{base}-{n}");
                    }
                    out.insert(name, c.clone());
                }
            }
            Ok(out)
        })
    }

    pub(super) fn snapshots(
        &self,
        repo: RepoId,
        refs: &RefsView,
    ) -> Result<Arc<BTreeMap<String, Commit>>, MountError> {
        memoized(&refs.snapshots, || {
            let mut out = BTreeMap::new();
            for tip in refs.branches.values().chain(refs.tags.values()) {
                if out.contains_key(&tip.id) {
                    continue;
                }
                for c in self.ancestry(repo, &tip.id)?.iter() {
                    out.insert(c.id.clone(), c.clone());
                }
            }
            Ok(out)
        })
    }

    /// A snapshot by id, listed or not.
    pub(super) fn snapshot(
        &self,
        repo: RepoId,
        refs: &RefsView,
        id: &str,
    ) -> Result<Commit, MountError> {
        if let Some(c) = self.inner.commits.get(&(repo, id.to_string())) {
            return Ok(c);
        }
        if let Some(c) = self.snapshots(repo, refs)?.get(id) {
            return Ok(c.clone());
        }
        let a = self.ancestry(repo, id)?;
        a.first().cloned().ok_or(MountError::NotFound)
    }

    /// The commit a ref folder name of repository `repo` stands for.
    pub(super) fn ref_commit(
        &self,
        repo: RepoId,
        top: Top,
        name: &str,
    ) -> Result<Commit, MountError> {
        let refs = self.refs(repo)?;
        match top {
            Top::Branches => refs.branches.get(name).cloned(),
            Top::Tags => refs.tags.get(name).cloned(),
            Top::ByTime => self.by_time(repo, &refs)?.get(name).cloned(),
            Top::Snapshots => match self.snapshot(repo, &refs, name) {
                Ok(c) => Some(c),
                Err(MountError::NotFound) => None,
                Err(e) => return Err(e),
            },
        }
        .ok_or(MountError::NotFound)
    }
}

/// A view derived from one refresh's refs, computed on first use and kept with them.
fn memoized<T>(
    slot: &Mutex<Option<Arc<T>>>,
    compute: impl FnOnce() -> Result<T, MountError>,
) -> Result<Arc<T>, MountError> {
    let mut slot = slot.lock().map_err(|_| poisoned())?;
    if let Some(v) = slot.as_ref() {
        return Ok(v.clone());
    }
    let v = Arc::new(compute()?);
    *slot = Some(v.clone());
    Ok(v)
}
