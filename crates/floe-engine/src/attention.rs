//! The files of a folder Floe could not sync, kept from one sync cycle to the next.
//!
//! A folder with such files is never "all synced": each stays listed, with its
//! reason, until it is removed, fixed or replaced (a later cycle takes it, or finds
//! it being written again), or the user marks it ignored (the folder's `ignore`
//! setting). Every cycle tries every file the repository does not hold, so a
//! cycle's report names every file still refused; a file it did not reach (the
//! cycle was stopped, or failed on the storage) keeps its entry while it exists.

use std::collections::BTreeSet;

use floe_core::ErrorCode;
use floe_sync::Report;
use serde::{Deserialize, Serialize};

/// A file Floe could not sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedFile {
    /// As the sync names it (relative to the folder).
    pub file: String,
    pub code: ErrorCode,
    /// Why, and what to do.
    pub message: String,
    /// When Floe first refused it (UTC, RFC 3339): the entry outlives retries.
    pub since: String,
    /// The user marked it ignored: listed, not counted.
    #[serde(default)]
    pub ignored: bool,
}

/// The folder's refused files after `report`'s cycle. `exists` says whether a file
/// (as the sync names it) is still in the folder; `now` stamps new entries. Which
/// are ignored is marked where the status is read ([`mark_ignored`]), by the
/// setting as it is then.
pub fn after_cycle(
    previous: &[RejectedFile],
    report: &Report,
    now: &str,
    exists: impl Fn(&str) -> bool,
) -> Vec<RejectedFile> {
    let refused: BTreeSet<&str> = report.rejected.iter().map(|r| r.file.as_str()).collect();
    let reached = reached(report);
    let mut out: Vec<RejectedFile> = previous
        .iter()
        .filter(|p| !refused.contains(p.file.as_str()))
        .filter(|p| !reached.contains(p.file.as_str()) && exists(&p.file))
        .cloned()
        .collect();
    for r in &report.rejected {
        let since = previous
            .iter()
            .find(|p| p.file == r.file)
            .map_or_else(|| now.to_string(), |p| p.since.clone());
        out.push(RejectedFile {
            file: r.file.clone(),
            code: r.code,
            message: r.message.clone(),
            since,
            ignored: false,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// One file refused during a cycle, before the cycle's report: listed at once.
pub fn refused_now(
    list: &mut Vec<RejectedFile>,
    file: &str,
    code: ErrorCode,
    message: &str,
    now: &str,
) {
    match list.iter_mut().find(|p| p.file == file) {
        Some(p) => (p.code, p.message) = (code, message.to_string()),
        None => list.push(RejectedFile {
            file: file.to_string(),
            code,
            message: message.to_string(),
            since: now.to_string(),
            ignored: false,
        }),
    }
}

/// Mark the entries the folder's `ignore` setting names.
pub fn mark_ignored(list: &mut [RejectedFile], ignore: &[String]) {
    for r in list {
        r.ignored = ignore.iter().any(|i| i == &r.file);
    }
}

/// Entries that count: the ones not ignored.
pub fn counted(list: &[RejectedFile]) -> usize {
    list.iter().filter(|r| !r.ignored).count()
}

/// Files the cycle decided something about other than refusing them: taken, held
/// by the repository already, being written, held for the cadence, dropped at the
/// gate, or gone on after a drift.
fn reached(report: &Report) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    out.extend(report.ingested.iter().map(|i| i.file.as_str()));
    out.extend(report.already_ingested.iter().map(String::as_str));
    out.extend(report.waiting.iter().map(|w| w.file.as_str()));
    out.extend(report.held.iter().map(String::as_str));
    out.extend(report.dropped.iter().map(String::as_str));
    out.extend(report.switched.iter().flat_map(|s| s.files.iter().map(String::as_str)));
    out
}

#[cfg(test)]
mod tests {
    use floe_sync::report::{Ingested, Rejected, Waiting};

    use super::*;

    fn refused(file: &str) -> Rejected {
        Rejected {
            file: file.into(),
            code: ErrorCode::BadSource,
            message: format!("{file}: bad"),
            drift: None,
        }
    }

    fn report(rejected: &[&str]) -> Report {
        Report { rejected: rejected.iter().map(|f| refused(f)).collect(), ..Report::default() }
    }

    fn files(list: &[RejectedFile]) -> Vec<(&str, &str, bool)> {
        list.iter().map(|r| (r.file.as_str(), r.since.as_str(), r.ignored)).collect()
    }

    #[test]
    fn a_refused_file_stays_listed_from_the_first_time_it_was_refused() {
        let first = after_cycle(&[], &report(&["b.nc", "a.nc"]), "t1", |_| true);
        assert_eq!(files(&first), vec![("a.nc", "t1", false), ("b.nc", "t1", false)]);
        let again = after_cycle(&first, &report(&["a.nc", "b.nc"]), "t2", |_| true);
        assert_eq!(files(&again), vec![("a.nc", "t1", false), ("b.nc", "t1", false)]);
        assert_eq!(counted(&again), 2);
    }

    #[test]
    fn fixing_replacing_or_removing_a_file_clears_its_entry() {
        let before = after_cycle(
            &[],
            &report(&["fixed.nc", "rewritten.nc", "gone.nc", "left.nc"]),
            "t1",
            |_| true,
        );
        let mut next = report(&[]);
        next.ingested.push(Ingested {
            file: "fixed.nc".into(),
            records: Default::default(),
            from: Default::default(),
            bytes: 1,
            commit: None,
        });
        next.waiting.push(Waiting { file: "rewritten.nc".into(), reason: "being written".into() });
        // left.nc was not reached (the cycle stopped before it) and still exists
        let after = after_cycle(&before, &next, "t2", |f| f != "gone.nc");
        assert_eq!(files(&after), vec![("left.nc", "t1", false)]);
    }

    #[test]
    fn an_ignored_file_is_listed_but_does_not_count() {
        let mut list = after_cycle(&[], &report(&["a.nc", "notes.nc"]), "t1", |_| true);
        mark_ignored(&mut list, &["notes.nc".into()]);
        assert_eq!(files(&list), vec![("a.nc", "t1", false), ("notes.nc", "t1", true)]);
        assert_eq!(counted(&list), 1);
    }

    #[test]
    fn a_file_refused_mid_cycle_is_listed_at_once_and_keeps_its_first_time() {
        let mut list = Vec::new();
        refused_now(&mut list, "a.nc", ErrorCode::BadSource, "a.nc: truncated", "t1");
        refused_now(&mut list, "a.nc", ErrorCode::BadSource, "a.nc: still truncated", "t2");
        assert_eq!(files(&list), vec![("a.nc", "t1", false)]);
        assert_eq!(list[0].message, "a.nc: still truncated");
    }
}
