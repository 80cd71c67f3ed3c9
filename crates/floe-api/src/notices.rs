//! What the desktop notifications say, and when: decided here from the status the
//! app polls, so the shell only shows them. Pure: the caller keeps the [`Told`].

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::StatusView;

/// One desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// What the notifications have told so far.
#[derive(Debug, Default)]
pub struct Told {
    /// The folders that needed attention at the last look.
    attention: BTreeSet<String>,
    /// The drift each folder last went on from.
    drift: BTreeMap<String, String>,
    /// Refused files told of, by folder, file and the time Floe first refused it
    /// (so the same file refused again after it was fixed and broke anew is news).
    refused: BTreeSet<(String, String, String)>,
}

/// The notifications `view` calls for since `told`: one per file newly refused
/// (not ignored), one per folder that newly needs attention for another reason,
/// one per new schema drift (data keeps flowing, but somebody should know where to).
pub fn news(view: &StatusView, told: &mut Told) -> Vec<Notice> {
    let mut out = Vec::new();
    let mut refused_now = BTreeSet::new();
    for f in &view.folders {
        let mut told_a_file = false;
        for r in f.rejected.iter().filter(|r| !r.ignored) {
            let key = (f.path.clone(), r.file.clone(), r.since.clone());
            if !told.refused.contains(&key) {
                out.push(Notice {
                    title: format!("Floe: {} could not be synced", r.file),
                    body: format!("{} (in {}). It is left where it is.", r.message, f.path),
                });
                told_a_file = true;
            }
            refused_now.insert(key);
        }
        if f.needs_attention && !told.attention.contains(&f.path) && !told_a_file {
            let body = f.problem.clone().unwrap_or_else(|| f.headline.clone());
            out.push(Notice { title: format!("Floe: {} needs attention", f.path), body });
        }
        if let Some(d) = &f.drift
            && told.drift.get(&f.path) != Some(d)
        {
            out.push(Notice {
                title: format!("Floe: {} went on after a schema drift", f.path),
                body: d.clone(),
            });
            told.drift.insert(f.path.clone(), d.clone());
        }
    }
    told.refused = refused_now;
    told.attention =
        view.folders.iter().filter(|f| f.needs_attention).map(|f| f.path.clone()).collect();
    out
}

#[cfg(test)]
mod tests {
    use floe_engine::attention::RejectedFile;
    use floe_engine::daemon::FolderStatus;
    use floe_engine::state::FolderState;

    use super::*;
    use crate::engine::EngineKind;
    use crate::words::{describe, overall};

    fn view(rejected: &[(&str, &str, bool)], state: FolderState) -> StatusView {
        let s = FolderStatus {
            files_ingested: 3,
            last_commit: Some("A".into()),
            rejected: rejected
                .iter()
                .map(|(file, since, ignored)| RejectedFile {
                    file: (*file).into(),
                    code: floe_core::ErrorCode::BadSource,
                    message: format!("{file}: truncated"),
                    since: (*since).into(),
                    ignored: *ignored,
                })
                .collect(),
            ..FolderStatus::new("/data/lidar".into(), "/repo".into(), "main".into(), state)
        };
        let folders = vec![describe(&s)];
        let o = overall(&folders);
        StatusView { engine: EngineKind::Here, overall: o, overall_label: o.label(), folders }
    }

    fn titles(n: &[Notice]) -> Vec<&str> {
        n.iter().map(|n| n.title.as_str()).collect()
    }

    #[test]
    fn each_newly_refused_file_is_told_once() {
        let mut told = Told::default();
        let n = news(&view(&[("a.nc", "t1", false)], FolderState::Idle), &mut told);
        assert_eq!(titles(&n), vec!["Floe: a.nc could not be synced"]);
        assert!(n[0].body.contains("a.nc: truncated (in /data/lidar)"), "{:?}", n[0]);
        // the same file still refused, and a second one: only the second is news
        let n = news(
            &view(&[("a.nc", "t1", false), ("b.nc", "t2", false)], FolderState::Idle),
            &mut told,
        );
        assert_eq!(titles(&n), vec!["Floe: b.nc could not be synced"]);
        // an ignored file is not news; a file cleared and refused anew is
        let n = news(&view(&[("c.nc", "t3", true)], FolderState::Idle), &mut told);
        assert!(n.is_empty(), "{n:?}");
        let n = news(&view(&[("a.nc", "t4", false)], FolderState::Idle), &mut told);
        assert_eq!(titles(&n), vec!["Floe: a.nc could not be synced"]);
    }

    #[test]
    fn a_folder_that_stops_is_told_once() {
        let mut told = Told::default();
        let stopped = FolderState::Error {
            code: floe_core::ErrorCode::Storage,
            message: "access denied".into(),
        };
        let n = news(&view(&[], stopped.clone()), &mut told);
        assert_eq!(titles(&n), vec!["Floe: /data/lidar needs attention"]);
        assert!(news(&view(&[], stopped), &mut told).is_empty());
        assert!(news(&view(&[], FolderState::Idle), &mut told).is_empty());
    }
}
