//! A file that does not fit its target's schema (a new firmware writes another type,
//! a variable changes its units): refused and left where it is (`stop`, the
//! default), or the folder's data goes on in a branch or a repository of its own,
//! named by the first drifted record's time, which keeps knowing what the old one
//! holds (see [`floe_core::Continuation`]).

use floe_core::RepoUrl;
use serde::{Deserialize, Serialize};

/// What a folder does when a file drifts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDrift {
    /// The file is refused (schema drift, exit 1); the folder goes on with the rest.
    #[default]
    Stop,
    /// The drifted file and those after it go to a new branch `drift-<time>`.
    Branch,
    /// ... to a new repository beside the old one, `<name>-<time>`.
    Repo,
}

impl OnDrift {
    pub fn parse(s: &str) -> Option<OnDrift> {
        match s {
            "stop" => Some(OnDrift::Stop),
            "branch" => Some(OnDrift::Branch),
            "repo" => Some(OnDrift::Repo),
            _ => None,
        }
    }
}

/// Where a folder went on after a drift, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switch {
    /// The drifted files (that went on there).
    pub files: Vec<String>,
    /// The first drift, in words.
    pub reason: String,
    pub repo: String,
    pub branch: String,
}

/// A record time (seconds since 1970, UTC) as a branch or folder name may hold it:
/// `2024-05-01T12-00-07Z`.
pub fn time_name(unix_seconds: f64) -> Option<String> {
    if !unix_seconds.is_finite() {
        return None;
    }
    let t = chrono::DateTime::from_timestamp(unix_seconds.floor() as i64, 0)?;
    Some(t.format("%Y-%m-%dT%H-%M-%SZ").to_string())
}

/// Where a folder on `repo`/`branch` goes on after a drift at `time`; `None` when
/// it stops there. A repository at the root of a bucket has no name to go on from.
pub fn next_target(
    on: OnDrift,
    repo: &RepoUrl,
    branch: &str,
    time: &str,
) -> Result<Option<(RepoUrl, String)>, String> {
    match on {
        OnDrift::Stop => Ok(None),
        OnDrift::Branch => {
            let next = format!("drift-{time}");
            // (the same first drifted record again: it drifts there too)
            Ok((next != branch).then(|| (repo.clone(), next)))
        }
        OnDrift::Repo => match repo.sibling(time) {
            Some(next) => Ok(Some((next, branch.to_string()))),
            None => Err(format!(
                "{repo} is the root of its bucket or container, so a repository beside it has no name; give the folder's repository a prefix (s3://bucket/<name>) or use --on-drift branch"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_first_drifted_record() {
        assert_eq!(time_name(1_714_564_807.25).as_deref(), Some("2024-05-01T12-00-07Z"));
        assert_eq!(time_name(f64::INFINITY), None);
        let repo = RepoUrl::parse("s3://lab/ctd").unwrap();
        let t = "2024-05-01T12-00-07Z";
        assert_eq!(next_target(OnDrift::Stop, &repo, "main", t), Ok(None));
        assert_eq!(
            next_target(OnDrift::Branch, &repo, "main", t),
            Ok(Some((repo.clone(), "drift-2024-05-01T12-00-07Z".into())))
        );
        assert_eq!(next_target(OnDrift::Branch, &repo, "drift-2024-05-01T12-00-07Z", t), Ok(None));
        let (next, branch) = next_target(OnDrift::Repo, &repo, "main", t).unwrap().unwrap();
        assert_eq!(
            (next.to_string(), branch.as_str()),
            ("s3://lab/ctd-2024-05-01T12-00-07Z".into(), "main")
        );
        let root = RepoUrl::parse("s3://lab").unwrap();
        assert!(next_target(OnDrift::Repo, &root, "main", t).unwrap_err().contains("prefix"));
        assert_eq!(OnDrift::parse("repo"), Some(OnDrift::Repo));
        assert_eq!(OnDrift::parse("sideways"), None);
    }
}
