//! A sync through the gate: what is staged already is checked first (a crash
//! between a commit and its promotion, or a hold), then the folder's new files go
//! to the staging branch, and the branch moves once everything staged passes.

use floe_store::{Repo, StoreError};

use super::{GateOptions, GateOutcome, Staged, Standing, evaluate, promote, restart_staging};
use crate::report::Report;
use crate::{Ingest, IngestError};

/// Replays of the staged files on top of a branch another writer moved, before
/// giving up with a conflict.
const REPLAYS: usize = 5;

impl Ingest<'_> {
    /// One sync of one target, through its validation gate when the folder has one.
    pub(crate) async fn run_target(&self) -> Result<Report, IngestError> {
        match &self.opts.gate {
            // a dry run plans against the branch itself: it writes nothing to stage
            Some(gate) if !self.opts.dry_run => self.run_gated(gate).await,
            _ => self.run_once().await,
        }
    }

    async fn run_gated(&self, gate: &GateOptions) -> Result<Report, IngestError> {
        let o = &self.opts;
        let group = floe_plan::target_group(&o.settings.group, "/");
        let mut replays = 0;
        // one handle for the whole run (Icechunk revalidates the branch refs it
        // caches on every lookup, so it sees the ingest's commits)
        let mut repo = existing(&o.repo).await?;
        if let Some(repo) = &repo {
            self.branches_ready(repo).await?;
            if let Some(held) = self.held_already(repo, &group, gate, &mut replays).await? {
                return Ok(held);
            }
        }
        loop {
            let mut report = self.staged_sync().await?;
            report.gate_replays = replays;
            let repo = match &mut repo {
                Some(r) => &*r,
                // this run created the repository: its branches are made now
                None => match existing(&o.repo).await? {
                    Some(r) => {
                        self.branches_ready(&r).await?;
                        &*repo.insert(r)
                    }
                    None => return Ok(report),
                },
            };
            let staged = match super::standing(repo, &o.branch).await? {
                Standing::Even => {
                    report.gate = Some(GateOutcome::Clear);
                    return Ok(report);
                }
                Standing::Diverged { base, staged } => {
                    replays = self.replay(repo, &base, &staged, replays).await?;
                    continue;
                }
                Standing::Ahead(staged) => staged,
            };
            let failures = evaluate(repo, &group, gate, &staged).await?;
            if !failures.is_empty() {
                report.gate = Some(held(failures, &staged, &group));
                tracing::warn!(branch = %o.branch, "gate: held");
                return Ok(report);
            }
            match promote(repo, &o.branch, &staged).await {
                Ok(()) => {
                    tracing::info!(branch = %o.branch, snapshot = %staged.tip, "gate: promoted");
                    let commits = staged.commits.len();
                    report.gate = Some(GateOutcome::Promoted { snapshot: staged.tip, commits });
                    return Ok(report);
                }
                // moved meanwhile: the next look sees it diverged and replays
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The folder's new files into the staging branch (the one-shot ingest, with
    /// the staging branch as its branch), reported as the branch's.
    async fn staged_sync(&self) -> Result<Report, IngestError> {
        let mut opts = self.opts.clone();
        opts.branch = super::staging_branch(&self.opts.branch);
        opts.gate = None;
        let inner = Ingest { opts, clock: self.clock, progress: self.progress };
        let mut report = inner.run_once().await?;
        report.branch = self.opts.branch.clone();
        Ok(report)
    }

    /// The branch exists (a branch after a drift starts empty, any other from
    /// `main`) and its staging branch too, at its tip.
    async fn branches_ready(&self, repo: &Repo) -> Result<(), StoreError> {
        let o = &self.opts;
        if o.branch != "main" {
            match &o.continues {
                Some(_) => repo.ensure_branch_at(&o.branch, &Repo::initial_snapshot()).await?,
                None => repo.ensure_branch(&o.branch, "main").await?,
            }
        }
        let staging = super::staging_branch(&o.branch);
        if let Some(tip) = repo.branch_tip(&o.branch).await? {
            repo.ensure_branch_at(&staging, &tip).await?;
        }
        Ok(())
    }

    /// Before taking anything new: what is staged from before is checked again; a
    /// hold keeps holding (`Some`: the report that says so), staged commits that
    /// pass stay and are promoted with this run's, and staged commits the branch
    /// moved away from are replayed.
    async fn held_already(
        &self,
        repo: &Repo,
        group: &str,
        gate: &GateOptions,
        replays: &mut usize,
    ) -> Result<Option<Report>, IngestError> {
        let o = &self.opts;
        match super::standing(repo, &o.branch).await? {
            Standing::Even => Ok(None),
            Standing::Diverged { base, staged } => {
                *replays = self.replay(repo, &base, &staged, *replays).await?;
                Ok(None)
            }
            Standing::Ahead(staged) => {
                let failures = evaluate(repo, group, gate, &staged).await?;
                if failures.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Report {
                    repo: o.repo.to_string(),
                    branch: o.branch.clone(),
                    gate: Some(held(failures, &staged, group)),
                    ..Report::default()
                }))
            }
        }
    }

    /// The branch moved away from the staged commits (another writer): start the
    /// staging branch again at its tip; the next sync writes the staged files again
    /// on top of it (their sources are still here), minus what the other writer
    /// ingested.
    async fn replay(
        &self,
        repo: &Repo,
        base: &str,
        staged: &str,
        replays: usize,
    ) -> Result<usize, IngestError> {
        let branch = &self.opts.branch;
        if replays >= REPLAYS {
            return Err(StoreError::Conflict(branch.clone()).into());
        }
        tracing::info!(%branch, "gate: the branch moved; replaying the staged files on top of it");
        match restart_staging(repo, branch, base, Some(staged)).await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(replays + 1),
            Err(e) => Err(e.into()),
        }
    }
}

/// The repository, if it exists yet.
async fn existing(url: &floe_core::RepoUrl) -> Result<Option<Repo>, StoreError> {
    match Repo::open(url).await {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn held(failures: Vec<super::Failure>, staged: &Staged, group: &str) -> GateOutcome {
    let files = staged.files(group).iter().map(|f| f.source.clone()).collect();
    GateOutcome::Held { failures, files }
}
