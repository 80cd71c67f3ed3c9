//! A folder's retention (`floe add … --keep 90d`): expire the snapshots older than
//! `keep` and collect the garbage, on a schedule, at a quiet moment of the folder
//! (the folder's loop runs it between syncs, never while the folder commits). The
//! last run shows in `floe status` and the app.

use std::time::Duration;

use chrono::{DateTime, Utc};
use floe_core::RepoUrl;
use floe_store::{Repo, StoreError};
use serde::{Deserialize, Serialize};

/// The longest wait between two runs: a repository that commits every few
/// minutes grows by a day's garbage at most.
const AT_MOST_EVERY: Duration = Duration::from_secs(86_400);

/// The shortest wait between two runs (a `--keep` of seconds, as tests use).
const AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// A folder's retention, from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Snapshots older than this expire.
    pub keep: Duration,
    /// Nothing younger than this is deleted (another writer may be about to
    /// commit it).
    pub grace: Duration,
}

impl Policy {
    /// A folder's policy, if it keeps a bounded history (`keep` and `gc_grace`
    /// are spans such as `90d`; the grace defaults to a day, or `keep` if shorter:
    /// whoever keeps only seconds of history has no other writer).
    pub fn of(keep: Option<&str>, gc_grace: Option<&str>) -> Result<Option<Policy>, String> {
        let Some(keep) = keep else { return Ok(None) };
        let keep = humantime::parse_duration(keep).map_err(|e| {
            format!("keep = \"{keep}\" is not a span of time ({e}); write e.g. 90d")
        })?;
        let grace = match gc_grace {
            Some(g) => humantime::parse_duration(g)
                .map_err(|e| format!("gc_grace = \"{g}\" is not a span of time ({e})"))?,
            None => keep.min(AT_MOST_EVERY),
        };
        Ok(Some(Policy { keep, grace }))
    }

    /// How long after a run the next one is due: `keep`, within a second and a day.
    pub fn every(&self) -> Duration {
        self.keep.clamp(AT_LEAST_EVERY, AT_MOST_EVERY)
    }
}

/// The last retention run of a folder, as `floe status` and the app show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRetention {
    /// When it finished, RFC 3339 UTC.
    pub at: String,
    /// Snapshots expired.
    pub expired: u64,
    /// Bytes the garbage collection freed.
    pub bytes_freed: u64,
    /// Why it did not run through (it is tried again at the next quiet moment).
    pub error: Option<String>,
}

/// `now` less `span` (the epoch at the earliest).
fn before(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(span)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Expire and collect `url` by `policy`, as of `now`.
pub async fn run(url: &RepoUrl, policy: Policy, now: DateTime<Utc>) -> LastRetention {
    let at = |e: Option<String>, expired, bytes_freed| LastRetention {
        at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expired,
        bytes_freed,
        error: e,
    };
    let outcome: Result<(u64, u64), StoreError> = async {
        let repo = Repo::open_exclusive(url).await?;
        let e = repo.expire(before(now, policy.keep), false).await?;
        let g = repo.gc(before(now, policy.grace), false).await?;
        Ok((e.expired.len() as u64, g.bytes_freed))
    }
    .await;
    match outcome {
        Ok((expired, freed)) => at(None, expired, freed),
        Err(e) => at(Some(e.to_string()), 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_spans_and_defaults_its_grace_to_a_day_or_keep() {
        assert_eq!(Policy::of(None, None), Ok(None));
        let p = Policy::of(Some("90d"), None).unwrap().unwrap();
        assert_eq!((p.keep.as_secs(), p.grace.as_secs()), (90 * 86_400, 86_400));
        assert_eq!(p.every(), AT_MOST_EVERY);
        let p = Policy::of(Some("5s"), None).unwrap().unwrap();
        assert_eq!((p.grace.as_secs(), p.every().as_secs()), (5, 5));
        let p = Policy::of(Some("2d"), Some("1h")).unwrap().unwrap();
        assert_eq!(p.grace.as_secs(), 3600);
        assert!(Policy::of(Some("ninety days"), None).unwrap_err().contains("90d"));
    }

    #[test]
    fn before_never_goes_past_the_epoch() {
        let now = DateTime::from_timestamp(100, 0).unwrap_or_default();
        assert_eq!(before(now, Duration::from_secs(40)).timestamp(), 60);
        assert_eq!(before(now, Duration::from_secs(u64::MAX / 2)), DateTime::UNIX_EPOCH);
    }
}
