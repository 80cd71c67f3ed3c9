//! What a sync run did, for people (`Display`) and scripts (`serde`).

use std::collections::BTreeMap;

use floe_core::ErrorCode;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    pub file: String,
    pub records: BTreeMap<String, u64>,
    /// The file's records before these, taken by earlier syncs (it grew, or is
    /// followed live), per dimension.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub from: BTreeMap<String, u64>,
    pub bytes: u64,
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub file: String,
    pub code: ErrorCode,
    pub message: String,
    /// A schema drift: what drifted, without the advice (see [`crate::IngestError::drift`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub repo: String,
    pub branch: String,
    pub dry_run: bool,
    pub ingested: Vec<Ingested>,
    /// Files the repository already holds with the same content.
    pub already_ingested: Vec<String>,
    /// Files still being written; a later run picks them up.
    pub waiting: Vec<Waiting>,
    /// Complete files held back for the folder's commit cadence (not enough yet
    /// for a commit, and not waited long enough).
    pub held: Vec<String>,
    /// When the held files are due even if no more arrive, seconds from now.
    pub held_due_in: Option<f64>,
    pub rejected: Vec<Rejected>,
    /// Files left for a later run because the run was asked to stop (Ctrl-C, the
    /// daemon's pause) after the commit under way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped_before: Vec<String>,
    pub commits: Vec<String>,
    /// Batches written again on top of another writer's commit, after their commit
    /// conflicted with it (the same arrays appended to at once).
    pub replays: usize,
    pub records: BTreeMap<String, u64>,
    pub bytes: u64,
    pub seconds: f64,
    /// Where the folder went on after files drifted (`--on-drift branch|repo`): the
    /// drifted files were taken there, not refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub switched: Vec<crate::drift::Switch>,
    /// Tags made for new settings periods (`--tag-on-change`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tagged: Vec<String>,
    /// Files whose held records were dropped at the validation gate, unchanged
    /// since: left out until they change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// What the validation gate did (`None`: the folder has no gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<crate::gate::GateOutcome>,
    /// Times the staged commits were written again on top of a branch that another
    /// writer moved meanwhile.
    #[serde(skip_serializing_if = "is_zero")]
    pub gate_replays: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Report {
    /// Add the report of the same run's next target (after a drift) to this one.
    pub fn absorb(&mut self, next: Report) {
        fn union(to: &mut Vec<String>, from: Vec<String>) {
            for f in from {
                if !to.contains(&f) {
                    to.push(f);
                }
            }
        }
        self.ingested.extend(next.ingested);
        union(&mut self.already_ingested, next.already_ingested);
        for w in next.waiting {
            if !self.waiting.iter().any(|x| x.file == w.file) {
                self.waiting.push(w);
            }
        }
        union(&mut self.held, next.held);
        self.held_due_in = match (self.held_due_in, next.held_due_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for r in next.rejected {
            if !self.rejected.iter().any(|x| x.file == r.file) {
                self.rejected.push(r);
            }
        }
        union(&mut self.stopped_before, next.stopped_before);
        self.commits.extend(next.commits);
        self.replays += next.replays;
        for (d, n) in next.records {
            *self.records.entry(d).or_default() += n;
        }
        self.bytes += next.bytes;
        self.seconds += next.seconds;
        self.switched.extend(next.switched);
        self.tagged.extend(next.tagged);
        union(&mut self.dropped, next.dropped);
        if next.gate.is_some() {
            self.gate = next.gate;
        }
        self.gate_replays += next.gate_replays;
    }
}

impl Report {
    /// Whether the validation gate holds this run's (or earlier runs') commits.
    pub fn held_at_gate(&self) -> bool {
        matches!(self.gate, Some(crate::gate::GateOutcome::Held { .. }))
    }

    /// The exit code of the rejections when there were any; otherwise
    /// [`floe_core::EXIT_WORK_REMAINS`] when files still being written were left,
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        match self.rejected.iter().map(|r| r.code.exit_code()).max() {
            Some(code) => code,
            None if self.held_at_gate() => floe_core::EXIT_GATE_HELD,
            None if !self.waiting.is_empty() => floe_core::EXIT_WORK_REMAINS,
            None => 0,
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.dry_run { "would ingest" } else { "ingested" };
        let recs = if self.records.is_empty() {
            "no records".to_string()
        } else {
            self.records
                .iter()
                .map(|(d, n)| format!("{n} along {d}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            f,
            "{verb} {} file(s) into {} (branch {}): {recs}; {} commit(s), {:.1} MB in {:.2} s",
            self.ingested.len(),
            self.repo,
            self.branch,
            self.commits.len(),
            self.bytes as f64 / 1e6,
            self.seconds
        )?;
        for sw in &self.switched {
            writeln!(
                f,
                "schema drift ({}): {} file(s) went on to {} (branch {}), which knows what the old target holds",
                sw.reason,
                sw.files.len(),
                sw.repo,
                sw.branch
            )?;
        }
        for t in &self.tagged {
            writeln!(f, "tagged {t}: a new settings period starts there")?;
        }
        match &self.gate {
            Some(crate::gate::GateOutcome::Promoted { snapshot, commits }) => writeln!(
                f,
                "gate: {commits} staged commit(s) passed the checks; {} now at {snapshot}",
                self.branch
            )?,
            Some(crate::gate::GateOutcome::Held { failures, files }) => {
                writeln!(
                    f,
                    "gate: held: {} file(s) stay on {} and {} does not move; the folder takes nothing new until they are released or dropped",
                    files.len(),
                    crate::gate::staging_branch(&self.branch),
                    self.branch
                )?;
                for x in failures {
                    writeln!(f, "held: {x}")?;
                }
            }
            Some(crate::gate::GateOutcome::Clear) | None => {}
        }
        if self.gate_replays > 0 {
            writeln!(
                f,
                "gate: the staged files were replayed on top of {} ({} time(s)): another writer moved it",
                self.branch, self.gate_replays
            )?;
        }
        if !self.dropped.is_empty() {
            writeln!(
                f,
                "left out {} file(s) dropped at the gate (unchanged since); a changed file is taken again",
                self.dropped.len()
            )?;
        }
        if self.replays > 0 {
            writeln!(
                f,
                "replayed {} batch(es) on top of another writer's commits (their commits conflicted)",
                self.replays
            )?;
        }
        if !self.already_ingested.is_empty() {
            writeln!(
                f,
                "skipped {} file(s) already in the repository",
                self.already_ingested.len()
            )?;
        }
        if !self.held.is_empty() {
            writeln!(
                f,
                "held {} complete file(s) for the commit cadence; due in {:.0} s",
                self.held.len(),
                self.held_due_in.unwrap_or(0.0)
            )?;
        }
        if self.ingested.is_empty()
            && !self.held_at_gate()
            && self.rejected.is_empty()
            && self.waiting.is_empty()
            && self.held.is_empty()
            && !self.dry_run
        {
            writeln!(f, "nothing new to ingest: the repository is up to date")?;
        }
        for w in &self.waiting {
            writeln!(
                f,
                "waiting: {}: still being written ({}); run again later",
                w.file, w.reason
            )?;
        }
        for r in &self.rejected {
            writeln!(f, "rejected [{}]: {}", r.code, r.message)?;
        }
        Ok(())
    }
}
