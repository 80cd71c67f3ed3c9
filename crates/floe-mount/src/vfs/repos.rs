//! The repositories of a mount and the prefixes above them: each repository is
//! opened the first time someone looks inside it, and its branches and tags are
//! kept per repository; what a prefix holds is listed at most every `refresh`.
//! A repository that cannot be opened, or a prefix that cannot be listed, shows
//! as an empty folder (and a log line) and is tried again after `refresh`: one
//! unreadable repository never fails the whole mount.

use super::*;

/// Whether a repository has been opened.
enum Opened {
    Not,
    Open(Arc<dyn Backend>),
    /// Opening failed at this moment; not tried again before `refresh` has passed.
    Failed(Instant, MountError),
}

pub(super) struct RepoSlot {
    pub(super) prefix: String,
    opened: Mutex<Opened>,
    pub(super) refs: Mutex<Option<Arc<RefsView>>>,
}

#[derive(Default)]
pub(super) struct Repos {
    by_prefix: HashMap<String, RepoId>,
    slots: Vec<Arc<RepoSlot>>,
}

/// A prefix as the mount shows it: whether it is a repository, and its
/// sub-prefixes by shown name (the name a folder may carry) with their real name.
#[derive(Debug, Default)]
pub(super) struct Shown {
    pub(super) repository: bool,
    pub(super) children: BTreeMap<String, String>,
}

pub(super) struct Listed {
    at: Instant,
    shown: Arc<Shown>,
}

fn shown_listing(l: PrefixListing) -> Shown {
    let children = l
        .children
        .into_iter()
        .filter_map(|real| shown(&real).map(|s| (s.into_owned(), real.clone())))
        .collect();
    Shown { repository: l.repository, children }
}

impl Inner {
    /// The id of the repository whose root is `prefix`.
    pub(super) fn repo_id(&self, prefix: &str) -> Result<RepoId, MountError> {
        let mut repos = self.repos.lock().map_err(|_| poisoned())?;
        if let Some(id) = repos.by_prefix.get(prefix) {
            return Ok(*id);
        }
        let id = RepoId(repos.slots.len() as u32);
        repos.slots.push(Arc::new(RepoSlot {
            prefix: prefix.to_string(),
            opened: Mutex::new(Opened::Not),
            refs: Mutex::new(None),
        }));
        repos.by_prefix.insert(prefix.to_string(), id);
        Ok(id)
    }

    /// The id of the repository whose root is `prefix`, if it has one already.
    pub(super) fn known_repo(&self, prefix: &str) -> Option<RepoId> {
        self.repos.lock().ok()?.by_prefix.get(prefix).copied()
    }

    pub(super) fn slot(&self, id: RepoId) -> Result<Arc<RepoSlot>, MountError> {
        let repos = self.repos.lock().map_err(|_| poisoned())?;
        repos.slots.get(id.0 as usize).cloned().ok_or(MountError::NotFound)
    }

    /// The repository `id`, opened on first use.
    pub(super) fn backend(&self, id: RepoId) -> Result<Arc<dyn Backend>, MountError> {
        let slot = self.slot(id)?;
        let mut opened = slot.opened.lock().map_err(|_| poisoned())?;
        match &*opened {
            Opened::Open(b) => return Ok(b.clone()),
            Opened::Failed(at, e) if at.elapsed() < self.opts.refresh => return Err(e.clone()),
            Opened::Failed(..) | Opened::Not => {}
        }
        match self.catalog.open(&slot.prefix) {
            Ok(b) => {
                *opened = Opened::Open(b.clone());
                Ok(b)
            }
            Err(e) => {
                tracing::warn!(
                    repository = %slot.prefix,
                    "cannot open the repository; it shows as an empty folder until it can: {e}"
                );
                *opened = Opened::Failed(Instant::now(), e.clone());
                Err(e)
            }
        }
    }

    /// The repository `id` if it is open already (no I/O).
    pub(super) fn backend_if_open(&self, id: RepoId) -> Option<Arc<dyn Backend>> {
        let slot = self.slot(id).ok()?;
        let opened = slot.opened.lock().ok()?;
        match &*opened {
            Opened::Open(b) => Some(b.clone()),
            Opened::Not | Opened::Failed(..) => None,
        }
    }
}

impl Vfs {
    /// What prefix `prefix` holds, listed at most every `refresh`. Below the root, a
    /// prefix that cannot be listed shows empty (the last listing, if there was one).
    pub(super) fn prefix_listing(&self, prefix: &str) -> Result<Arc<Shown>, MountError> {
        let stale = {
            let listed = self.inner.listed.lock().map_err(|_| poisoned())?;
            match listed.get(prefix) {
                Some(l) if l.at.elapsed() < self.inner.opts.refresh => return Ok(l.shown.clone()),
                Some(l) => Some(l.shown.clone()),
                None => None,
            }
        };
        let shown = match self.inner.catalog.list(prefix) {
            Ok(l) => Arc::new(shown_listing(l)),
            Err(e) => {
                tracing::warn!(prefix, "cannot list this prefix, showing it as it was: {e}");
                match stale {
                    Some(s) => s,
                    None if prefix.is_empty() => return Err(e),
                    None => Arc::new(Shown::default()),
                }
            }
        };
        let mut listed = self.inner.listed.lock().map_err(|_| poisoned())?;
        listed.insert(prefix.to_string(), Listed { at: Instant::now(), shown: shown.clone() });
        Ok(shown)
    }

    /// The entries of catalog folder `prefix`: a repository's four folders (when it
    /// opens), then the sub-prefixes. A sub-prefix named like one of those four is
    /// left out of a repository's folder (and logged).
    pub(super) fn catalog_listing(
        &self,
        prefix: &Arc<str>,
    ) -> Result<Vec<(Key, Child)>, MountError> {
        let shown = self.prefix_listing(prefix)?;
        let mut out = Vec::new();
        if shown.repository {
            let id = self.inner.repo_id(prefix)?;
            if self.inner.backend(id).is_ok() {
                out.extend(
                    TOPS.iter()
                        .map(|(n, t)| (Key::Top(id, *t), Child { name: n.to_string(), dir: true })),
                );
            }
        }
        for (name, real) in &shown.children {
            if shown.repository && TOPS.iter().any(|(n, _)| n == name) {
                tracing::warn!(
                    prefix = &**prefix,
                    name,
                    "a prefix named like a repository's own folder is not shown"
                );
                continue;
            }
            let key = Key::Dir(Arc::from(join(prefix, real)));
            out.push((key, Child { name: name.clone(), dir: true }));
        }
        Ok(out)
    }

    /// The key of entry `name` of catalog folder `prefix`.
    pub(super) fn catalog_child(&self, prefix: &str, name: &str) -> Result<Key, MountError> {
        let shown = self.prefix_listing(prefix)?;
        if shown.repository
            && let Some((_, top)) = TOPS.iter().find(|(n, _)| *n == name)
        {
            let id = self.inner.repo_id(prefix)?;
            return match self.inner.backend(id) {
                Ok(_) => Ok(Key::Top(id, *top)),
                Err(_) => Err(MountError::NotFound),
            };
        }
        match shown.children.get(name) {
            Some(real) => Ok(Key::Dir(Arc::from(join(prefix, real)))),
            None => Err(MountError::NotFound),
        }
    }
}
