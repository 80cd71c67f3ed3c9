//! Deleting a time window for good (`floe delete`): the records of every variable
//! along a CF time coordinate whose time falls in `[from, to)` are overwritten with
//! the variable's fill value, in one commit whose provenance records the window, the
//! variables and the reason. The time coordinate itself stays, so the gap shows as
//! missing values where it was and appends go on as before. The old values live on
//! in older snapshots until `floe expire` + `floe gc` remove those; a tag or another
//! branch that still points at them keeps them alive, and is named (`--untag`
//! removes such tags).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use floe_core::{CommitProvenance, DeletionRecord, ErrorCode, FLOE_VERSION, RepoUrl};
use floe_plan::{ArrayState, RepoState, cftime};
use floe_source::{DType, Data};
use floe_store::{Reader, Repo, StoreError};
use serde::Serialize;
use serde_json::Value;

use crate::gate::staging_branch;

/// At most this many bytes of fill are written per request (a radar volume's
/// records are large).
const SLAB_BYTES: u64 = 64 << 20;

/// What to delete.
#[derive(Debug, Clone)]
pub struct DeleteWindow {
    pub repo: RepoUrl,
    pub branch: String,
    /// Records at `from` or later and before `to`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Variables (names or absolute paths); empty: every variable along the time.
    pub vars: Vec<String>,
    pub reason: String,
    /// Remove the tags that still hold the window's old values.
    pub untag: bool,
}

/// What kind of reference holds old values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    Tag,
    Branch,
}

/// A reference that still points at the window's old values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub kind: HolderKind,
    pub name: String,
    pub snapshot: String,
}

/// What `floe delete` did.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteReport {
    pub snapshot: String,
    pub record: DeletionRecord,
    /// Tags (not removed) and other branches that still hold the old values: they
    /// keep those bytes alive through expire and gc.
    pub holders: Vec<Holder>,
    /// Statistics rows computed again: one per file the window touched and record
    /// dimension it cut (a file with `time` and `hf_time` counts twice).
    pub stats_updated: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("a deletion needs a reason, recorded in its commit: add --reason \"...\"")]
    NoReason,
    #[error("the window is empty: --from ({from}) must come before --to ({to})")]
    BadWindow { from: String, to: String },
    #[error(
        "{repo} (branch {branch}) has no CF time coordinate to delete along (a 1-D array named as its dimension, with units such as `seconds since 1970-01-01` in a standard calendar)"
    )]
    NoTime { repo: String, branch: String },
    #[error(
        "{repo} (branch {branch}) holds no records between {from} and {to}; nothing was changed (times are UTC)"
    )]
    Empty { repo: String, branch: String, from: String, to: String },
    #[error("`{name}` is not a variable along a record time in {repo}; these are: {known}")]
    UnknownVariable { repo: String, name: String, known: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeleteError {
    /// Explicit table from failure to stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            DeleteError::NoReason
            | DeleteError::BadWindow { .. }
            | DeleteError::NoTime { .. }
            | DeleteError::Empty { .. }
            | DeleteError::UnknownVariable { .. } => ErrorCode::Usage,
            DeleteError::Store(e) => e.code(),
        }
    }
}

/// The records of one time coordinate inside the window.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    /// The coordinate's path, e.g. `/time`.
    coord: String,
    /// The group it belongs to, e.g. `/`.
    group: String,
    dim: String,
    /// Runs of consecutive record indices inside the window: (first, count).
    runs: Vec<(u64, u64)>,
}

impl Window {
    fn records(&self) -> u64 {
        self.runs.iter().map(|(_, n)| n).sum()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn as_f64(dtype: DType, data: &Data) -> Vec<f64> {
    match (data, dtype.size()) {
        (Data::Fixed(b), Some(n)) => {
            b.chunks_exact(n).map(|c| dtype.element_as_f64(c).unwrap_or(f64::NAN)).collect()
        }
        _ => Vec::new(),
    }
}

/// A coordinate's CF time units, where it is a CF time in a standard calendar.
fn time_units(a: &ArrayState) -> Option<cftime::TimeUnits> {
    let units = a.attrs.get("units").and_then(Value::as_str)?;
    let calendar = a.attrs.get("calendar").and_then(Value::as_str);
    cftime::is_gregorian(calendar).then(|| cftime::parse_units(units)).flatten()
}

/// Runs of consecutive indices whose time (seconds since 1970) is in `[from, to)`.
fn runs_within(seconds: &[f64], from: f64, to: f64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, s) in seconds.iter().enumerate() {
        if !(*s >= from && *s < to) {
            continue;
        }
        match runs.last_mut() {
            Some((first, n)) if *first + *n == i as u64 => *n += 1,
            _ => runs.push((i as u64, 1)),
        }
    }
    runs
}

/// The 1-D CF time coordinates of `state` (named as their dimension).
fn time_coords(state: &RepoState) -> Vec<(&String, &ArrayState, cftime::TimeUnits)> {
    state
        .arrays
        .iter()
        .filter(|(path, a)| {
            a.dims.len() == 1 && path.rsplit('/').next() == Some(a.dims[0].as_str())
        })
        .filter_map(|(path, a)| time_units(a).map(|u| (path, a, u)))
        .collect()
}

/// The window's records along each time coordinate (coordinates with none left out).
async fn windows(
    reader: &Reader,
    state: &RepoState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Window>, StoreError> {
    let (lo, hi) = (from.timestamp() as f64, to.timestamp() as f64);
    let mut out = Vec::new();
    for (path, a, units) in time_coords(state) {
        let n = a.shape.first().copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        let raw = as_f64(a.dtype, &reader.read(path, &a.metadata, &[0], &[n]).await?);
        let seconds: Vec<f64> = raw.iter().map(|v| cftime::to_unix_seconds(*v, units)).collect();
        let runs = runs_within(&seconds, lo, hi);
        if !runs.is_empty() {
            out.push(Window {
                coord: path.clone(),
                group: parent(path).to_string(),
                dim: a.dims[0].clone(),
                runs,
            });
        }
    }
    Ok(out)
}

/// Every variable along a window's time (not the time itself), in the same group,
/// as `(path, window)`; `vars` narrows them (names or paths).
fn targets<'w>(
    repo: &str,
    state: &RepoState,
    windows: &'w [Window],
    all_coords: &BTreeSet<String>,
    vars: &[String],
) -> Result<Vec<(String, &'w Window)>, DeleteError> {
    let along = |path: &str, a: &ArrayState| {
        windows
            .iter()
            .find(|w| a.dims.first() == Some(&w.dim) && parent(path) == w.group && path != w.coord)
    };
    let candidates: Vec<(String, &Window)> = state
        .arrays
        .iter()
        .filter(|(path, _)| !all_coords.contains(*path))
        .filter_map(|(path, a)| along(path, a).map(|w| (path.clone(), w)))
        .collect();
    if vars.is_empty() {
        return Ok(candidates);
    }
    let mut chosen = Vec::new();
    for v in vars {
        let hit = candidates
            .iter()
            .find(|(path, _)| path == v || path.rsplit('/').next() == Some(v.as_str()));
        match hit {
            Some(t) => chosen.push(t.clone()),
            None => {
                return Err(DeleteError::UnknownVariable {
                    repo: repo.to_string(),
                    name: v.clone(),
                    known: candidates
                        .iter()
                        .map(|(p, _)| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(chosen)
}

/// Overwrite one variable's records in the window with its fill value, a slab of
/// at most [`SLAB_BYTES`] at a time.
async fn erase(
    writer: &floe_store::Writer,
    path: &str,
    a: &ArrayState,
    w: &Window,
) -> Result<(), StoreError> {
    let per_record: u64 =
        a.shape.iter().skip(1).product::<u64>() * a.dtype.size().unwrap_or(16).max(1) as u64;
    let step = (SLAB_BYTES / per_record.max(1)).max(1);
    for &(first, n) in &w.runs {
        let mut at = first;
        while at < first + n {
            let k = step.min(first + n - at);
            let mut start = vec![0; a.shape.len()];
            let mut count = a.shape.clone();
            start[0] = at;
            count[0] = k;
            writer.fill(path, &a.metadata, &start, &count).await?;
            at += k;
        }
    }
    Ok(())
}

/// Whether `snapshot` still holds values other than the fill value in the window
/// (the same times, any of the variables).
async fn holds(
    repo: &Repo,
    snapshot: &str,
    windows: &[Window],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    paths: &BTreeSet<String>,
) -> Result<bool, StoreError> {
    let reader = repo.reader_at(snapshot).await?;
    let state = reader.state("/").await?;
    let theirs = self::windows(&reader, &state, from, to).await?;
    for w in theirs.iter().filter(|w| windows.iter().any(|m| m.coord == w.coord)) {
        for (path, a) in state.arrays.iter().filter(|(p, _)| paths.contains(*p)) {
            if a.dims.first() != Some(&w.dim) || parent(path) != w.group {
                continue;
            }
            let fill_reader = reader_fill(a);
            for &(first, n) in &w.runs {
                let mut start = vec![0; a.shape.len()];
                let mut count = a.shape.clone();
                start[0] = first;
                count[0] = n;
                let data = reader.read(path, &a.metadata, &start, &count).await?;
                if !all_fill(&data, &fill_reader) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// An array's fill value, as its elements read (text, or a number).
#[derive(Debug, Clone, PartialEq)]
enum Fill {
    Text(String),
    Number(DType, f64),
}

fn reader_fill(a: &ArrayState) -> Fill {
    let v = &a.metadata["fill_value"];
    match a.dtype {
        DType::Str => Fill::Text(v.as_str().unwrap_or_default().to_string()),
        dtype => Fill::Number(
            dtype,
            floe_core::model::decode_fill_value(dtype, v).map_or(f64::NAN, |s| s.as_f64()),
        ),
    }
}

/// Every element is the fill value (a NaN fill matches any NaN: sources write
/// several NaN bit patterns).
fn all_fill(data: &Data, fill: &Fill) -> bool {
    match (data, fill) {
        (Data::Fixed(_), Fill::Number(dtype, f)) => {
            as_f64(*dtype, data).iter().all(|v| v == f || (v.is_nan() && f.is_nan()))
        }
        (Data::Strings(v), Fill::Text(f)) => v.iter().all(|s| s == f),
        _ => false,
    }
}

/// Tags and other branches of `repo` that still hold the window's old values.
async fn holders(
    repo: &Repo,
    branch: &str,
    windows: &[Window],
    d: &DeleteWindow,
    paths: &BTreeSet<String>,
) -> Result<Vec<Holder>, StoreError> {
    let mut out = Vec::new();
    for (name, snapshot) in repo.tags().await? {
        if holds(repo, &snapshot, windows, d.from, d.to, paths).await? {
            out.push(Holder { kind: HolderKind::Tag, name, snapshot });
        }
    }
    for name in repo.branches().await? {
        if name == branch {
            continue;
        }
        let Some(snapshot) = repo.branch_tip(&name).await? else { continue };
        if holds(repo, &snapshot, windows, d.from, d.to, paths).await? {
            out.push(Holder { kind: HolderKind::Branch, name, snapshot });
        }
    }
    Ok(out)
}

/// Delete the window: overwrite, commit with the record, then remove the holding
/// tags when asked. A gated folder's staging branch that held nothing of its own
/// moves on with the branch.
pub async fn delete_window(d: &DeleteWindow) -> Result<DeleteReport, DeleteError> {
    if d.reason.trim().is_empty() {
        return Err(DeleteError::NoReason);
    }
    if d.from >= d.to {
        return Err(DeleteError::BadWindow { from: rfc3339(d.from), to: rfc3339(d.to) });
    }
    let repo = Repo::open_for_write(&d.repo, &[]).await?;
    let label = repo.label().to_string();
    let base = repo
        .branch_tip(&d.branch)
        .await?
        .ok_or_else(|| StoreError::NoBranch { repo: label.clone(), branch: d.branch.clone() })?;
    let reader = repo.reader_at(&base).await?;
    let state = reader.state("/").await?;
    let coords: BTreeSet<String> =
        time_coords(&state).into_iter().map(|(p, ..)| p.clone()).collect();
    if coords.is_empty() {
        return Err(DeleteError::NoTime { repo: label, branch: d.branch.clone() });
    }
    let windows = windows(&reader, &state, d.from, d.to).await?;
    let empty = || DeleteError::Empty {
        repo: label.clone(),
        branch: d.branch.clone(),
        from: rfc3339(d.from),
        to: rfc3339(d.to),
    };
    if windows.is_empty() {
        return Err(empty());
    }
    let targets = targets(&label, &state, &windows, &coords, &d.vars)?;
    if targets.is_empty() {
        return Err(empty());
    }
    let mut writer = repo.writer_at(&d.branch, &base)?;
    for (path, w) in &targets {
        if let Some(a) = state.arrays.get(path) {
            erase(&writer, path, a, w).await?;
        }
    }
    // the statistics of the files the window touched, from what they hold now
    let mut stats_updated = 0;
    for w in &windows {
        stats_updated +=
            crate::stats::after_delete(&mut writer, &state, &w.group, &w.dim, &w.runs).await?;
    }
    let paths: BTreeSet<String> = targets.iter().map(|(p, _)| p.clone()).collect();
    let mut holders = holders(&repo, &d.branch, &windows, d, &paths).await?;
    let staging = staging_branch(&d.branch);
    let staging_idle = repo.branch_tip(&staging).await?.as_deref() == Some(base.as_str());
    holders.retain(|h| !(staging_idle && h.kind == HolderKind::Branch && h.name == staging));
    let untagged: Vec<String> = if d.untag {
        holders.iter().filter(|h| h.kind == HolderKind::Tag).map(|h| h.name.clone()).collect()
    } else {
        Vec::new()
    };
    let record = DeletionRecord {
        from: rfc3339(d.from),
        to: rfc3339(d.to),
        variables: paths.iter().cloned().collect(),
        records: windows.iter().map(|w| (w.coord.clone(), w.records())).collect(),
        runs: windows
            .iter()
            .map(|w| (w.coord.clone(), w.runs.iter().map(|&(a, n)| [a, n]).collect()))
            .collect(),
        reason: d.reason.clone(),
        at: rfc3339(Utc::now()),
        untagged: untagged.clone(),
    };
    let provenance = CommitProvenance {
        rows: Default::default(),
        floe_version: FLOE_VERSION.to_string(),
        files: Vec::new(),
        continues: None,
        gate: None,
        deletion: Some(record.clone()),
    };
    let message = format!(
        "floe: delete {} .. {} ({}): {}",
        record.from,
        record.to,
        record.variables.join(", "),
        d.reason
    );
    let snapshot = writer.commit(&message, &provenance).await?;
    if staging_idle {
        // it held nothing but the branch: it follows, or the next gated run would
        // find the old values there
        repo.move_branch(&staging, &snapshot, Some(&base)).await?;
    }
    for name in &untagged {
        repo.delete_tag(name).await?;
    }
    holders.retain(|h| !(h.kind == HolderKind::Tag && untagged.contains(&h.name)));
    Ok(DeleteReport { snapshot, record, holders, stats_updated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_the_consecutive_records_inside_the_half_open_window() {
        let s = [0.0, 10.0, 20.0, 30.0, 40.0, 15.0, 50.0];
        assert_eq!(runs_within(&s, 10.0, 40.0), vec![(1, 3), (5, 1)]);
        assert_eq!(runs_within(&s, 60.0, 70.0), vec![]);
        assert_eq!(runs_within(&[f64::NAN, 1.0], 0.0, 2.0), vec![(1, 1)], "NaT is never inside");
    }

    #[test]
    fn a_nan_fill_matches_any_nan_and_nothing_else() {
        let fill = Fill::Number(DType::F32, f64::NAN);
        let other_nan = f32::from_bits(0x7fc0_0001).to_le_bytes();
        let mut b = f32::NAN.to_le_bytes().to_vec();
        b.extend_from_slice(&other_nan);
        assert!(all_fill(&Data::Fixed(b.clone()), &fill));
        b.extend_from_slice(&1.5f32.to_le_bytes());
        assert!(!all_fill(&Data::Fixed(b), &fill));
    }

    #[test]
    fn parent_groups() {
        assert_eq!(parent("/time"), "/");
        assert_eq!(parent("/radar/time"), "/radar");
    }
}
