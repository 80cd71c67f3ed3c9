//! Reductions without downloading (`floe stats`): while a file streams in, Floe
//! keeps the count, min, max and sum of each numeric variable's valid decoded
//! values (as xarray decodes them: fill and `missing_value` and NaN are no value,
//! then `scale_factor`/`add_offset`), a row per file in the repository itself
//! ([`table`]). A window or a resampled series is answered from those rows; only
//! a file that a window or bin edge cuts through is read ([`query`], [`exact`]).

pub mod exact;
pub mod moments;
pub mod query;
pub mod stream;
pub mod table;

use std::collections::BTreeMap;

use floe_core::{CommitProvenance, ErrorCode, FLOE_VERSION, RepoUrl};
use floe_plan::RepoState;
use floe_store::{Reader, Repo, StoreError, Writer};
use serde::Serialize;

pub use moments::{Accumulator, Moments};
pub use query::Binning;
pub use table::{Row, Span, Table, TimeKind, counted, table_path, time_kind};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(
        "{repo} (branch {branch}) has no statistics yet (it was written before Floe kept them): run `floe stats --rebuild {url}` once"
    )]
    NoStats { repo: String, branch: String, url: String },
    #[error("`{name}` has no statistics in {repo}; these do: {known}")]
    UnknownVariable { repo: String, name: String, known: String },
    #[error("`{name}` is in more than one group of {repo} ({paths}): name it by its path")]
    Ambiguous { repo: String, name: String, paths: String },
    #[error(
        "the records of `{var}` run along `{dim}`, which is not a CF time coordinate: --from, --to and --every need one"
    )]
    NotTime { var: String, dim: String },
    #[error("the window is empty: --from ({from}) must come before --to ({to})")]
    BadWindow { from: String, to: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StatsError {
    /// Explicit table from failure to stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            StatsError::NoStats { .. }
            | StatsError::UnknownVariable { .. }
            | StatsError::Ambiguous { .. }
            | StatsError::NotTime { .. }
            | StatsError::BadWindow { .. } => ErrorCode::Usage,
            StatsError::Store(e) => e.code(),
        }
    }
}

/// One file's rows as it is ingested, per append dimension; each variable's
/// moments are filled in as its values stream past.
#[derive(Debug, Clone, Default)]
pub struct FileRows {
    pub rows: BTreeMap<String, (TimeKind, Row)>,
}

impl FileRows {
    /// Append every row to its dimension's array in the session.
    pub async fn write(&self, writer: &mut Writer, group: &str) -> Result<(), StoreError> {
        for (dim, (time, row)) in &self.rows {
            if row.records > 0 {
                table::append(writer, group, dim, *time, std::slice::from_ref(row)).await?;
            }
        }
        Ok(())
    }
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub branch: String,
    /// A variable's name or absolute path.
    pub var: String,
    /// Record times (seconds since 1970 UTC) from `from` and before `to`.
    pub from: Option<f64>,
    pub to: Option<f64>,
    /// Bin width in seconds: a series.
    pub every: Option<f64>,
}

/// One bin of the answer.
#[derive(Debug, Clone, Serialize)]
pub struct BinStats {
    /// Bin start and end (seconds since 1970 UTC for times; else the coordinate's values).
    pub start: f64,
    pub end: f64,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// `floe stats`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct StatsAnswer {
    pub repo: String,
    pub branch: String,
    pub snapshot: String,
    pub var: String,
    pub dim: String,
    /// Whether bin edges are times (seconds since 1970 UTC).
    pub times: bool,
    /// The bin width of a series, in seconds.
    pub every: Option<f64>,
    /// Files (rows) in the window, and how many of them had to be read.
    pub files: u64,
    pub files_read: u64,
    pub bins: Vec<BinStats>,
}

/// The one table holding `var`, and its path there.
fn find_var<'t>(
    label: &str,
    tables: &'t [Table],
    var: &str,
) -> Result<(&'t Table, String), StatsError> {
    let by_path: Vec<(&Table, &str)> = tables
        .iter()
        .filter_map(|t| t.block_of(var).map(|(_, p)| (t, p)))
        .filter(|(_, p)| *p == var)
        .collect();
    let hits: Vec<(&Table, &str)> = if by_path.is_empty() {
        tables.iter().filter_map(|t| t.block_of(var).map(|(_, p)| (t, p))).collect()
    } else {
        by_path
    };
    match hits.as_slice() {
        [(t, p)] => Ok((t, p.to_string())),
        [] => Err(StatsError::UnknownVariable {
            repo: label.into(),
            name: var.into(),
            known: tables
                .iter()
                .flat_map(|t| t.vars.iter().cloned())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        many => Err(StatsError::Ambiguous {
            repo: label.into(),
            name: var.into(),
            paths: many.iter().map(|(_, p)| *p).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Answer a window or series from the rows, reading only the files an edge cuts.
pub async fn query(repo: &Repo, q: &StatsQuery) -> Result<StatsAnswer, StatsError> {
    let label = repo.label().to_string();
    if let (Some(a), Some(b)) = (q.from, q.to)
        && a >= b
    {
        return Err(StatsError::BadWindow { from: a.to_string(), to: b.to_string() });
    }
    let reader = repo.reader(&q.branch).await?;
    let tables = table::tables(&reader).await?;
    if tables.is_empty() {
        return Err(StatsError::NoStats {
            repo: label.clone(),
            branch: q.branch.clone(),
            url: label,
        });
    }
    let (t, var) = find_var(&label, &tables, &q.var)?;
    let times = t.time == TimeKind::Seconds;
    if !times && (q.from.is_some() || q.to.is_some() || q.every.is_some()) {
        return Err(StatsError::NotTime { var, dim: t.dim.clone() });
    }
    let (block, _) = t.block_of(&var).unwrap_or((1, ""));
    let (spans, moments) =
        futures::try_join!(table::read_block(&reader, t, 0), table::read_block(&reader, t, block))?;
    let spans: Vec<Span> = spans.iter().map(table::span).collect();
    let b = Binning::new(q.from, q.to, q.every, &spans, times);
    let sorted = query::sort_rows(&b, &spans);
    let mut bins: BTreeMap<usize, Moments> = BTreeMap::new();
    for (row, k) in &sorted.whole {
        bins.entry(*k).or_default().merge(&table::moments(&moments[*row]));
    }
    if !sorted.edges.is_empty() {
        let state = reader.state(&t.group).await?;
        for row in &sorted.edges {
            let at = exact::Records { src: &reader, state: &state, group: &t.group, dim: &t.dim };
            at.binned(&var, spans[*row], |x| b.bin(x), &mut bins).await?;
        }
    }
    let out = (0..b.bins)
        .map(|k| {
            let m = bins.get(&k).copied().unwrap_or_default();
            let (start, end) = b.edges(k);
            let some = |v: f64| (m.count > 0).then_some(v);
            BinStats {
                start,
                end,
                count: m.count,
                min: some(m.min),
                max: some(m.max),
                mean: m.mean(),
            }
        })
        .collect();
    Ok(StatsAnswer {
        repo: label,
        branch: q.branch.clone(),
        snapshot: reader.snapshot().to_string(),
        var,
        dim: t.dim.clone(),
        times,
        every: b.every,
        files: (sorted.whole.len() + sorted.edges.len()) as u64,
        files_read: sorted.edges.len() as u64,
        bins: out,
    })
}

/// What `floe stats --rebuild` did.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub snapshot: String,
    /// Rows written per statistics array.
    pub rows: BTreeMap<String, u64>,
}

/// Every file's span per (group, dimension), from the branch's provenance.
async fn spans_of(
    repo: &Repo,
    branch: &str,
) -> Result<BTreeMap<(String, String), Vec<Span>>, StoreError> {
    let mut out: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
    for c in repo.history(branch).await?.into_iter().rev() {
        for f in c.provenance.iter().flat_map(|p| p.files.iter()) {
            for (dim, &records) in &f.records {
                let Some(&offset) = f.offsets.get(dim) else { continue };
                if records > 0 {
                    let span = Span { offset, records, t_min: f64::NAN, t_max: f64::NAN };
                    out.entry((f.group.clone(), dim.clone())).or_default().push(span);
                }
            }
        }
    }
    for spans in out.values_mut() {
        spans.sort_by_key(|s| s.offset);
        spans.dedup_by_key(|s| s.offset);
    }
    Ok(out)
}

/// The variables of `group` that get statistics along `dim`.
fn counted_in(state: &RepoState, group: &str, dim: &str) -> Vec<String> {
    let prefix = group.trim_end_matches('/');
    state
        .arrays
        .iter()
        .filter(|(p, _)| prefix.is_empty() || p.starts_with(&format!("{prefix}/")))
        .filter(|(p, a)| counted(p, &a.dims, a.dtype, &a.attrs, dim))
        .map(|(p, _)| p.clone())
        .collect()
}

/// Compute every file's row from the branch's data and provenance and write the
/// statistics afresh, in one commit (a repository written before Floe kept them,
/// or after a tool other than Floe changed values).
pub async fn rebuild(url: &RepoUrl, branch: &str) -> Result<RebuildReport, StatsError> {
    let repo = Repo::open_for_write(url, &[]).await?;
    let label = repo.label().to_string();
    let tip = repo
        .branch_tip(branch)
        .await?
        .ok_or_else(|| StoreError::NoBranch { repo: label.clone(), branch: branch.to_string() })?;
    let reader: Reader = repo.reader_at(&tip).await?;
    let state = reader.state("/").await?;
    let spans = spans_of(&repo, branch).await?;
    let mut writer = repo.writer_at(branch, &tip)?;
    let mut rows_written = BTreeMap::new();
    for ((group, dim), spans) in &spans {
        let vars = counted_in(&state, group, dim);
        let coord = state.arrays.get(&floe_plan::join(group, dim)).map(|a| &a.attrs);
        let (time, _) = time_kind(coord);
        let mut rows = Vec::with_capacity(spans.len());
        for s in spans {
            rows.push(
                exact::Records { src: &reader, state: &state, group, dim }.row(*s, &vars).await?,
            );
        }
        table::rewrite(&mut writer, group, dim, time, &rows).await?;
        rows_written.insert(table_path(group, dim), rows.len() as u64);
    }
    let provenance = CommitProvenance {
        rows: Default::default(),
        floe_version: FLOE_VERSION.to_string(),
        files: Vec::new(),
        continues: None,
        gate: None,
        deletion: None,
    };
    let n: u64 = rows_written.values().sum();
    let snapshot =
        writer.commit(&format!("floe: statistics rebuilt ({n} files)"), &provenance).await?;
    Ok(RebuildReport { snapshot, rows: rows_written })
}

/// After a deletion overwrote runs `(first, count)` of `group`'s `dim` in the
/// session: the rows of the files it touched, computed again from what they hold now.
pub(crate) async fn after_delete(
    writer: &mut Writer,
    state: &RepoState,
    group: &str,
    dim: &str,
    runs: &[(u64, u64)],
) -> Result<u64, StoreError> {
    let Some(t) = table::open(writer, group, dim).await? else { return Ok(0) };
    let spans: Vec<Span> =
        table::read_block(writer, &t, 0).await?.iter().map(table::span).collect();
    let mut fresh = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let touched = runs.iter().any(|&(a, n)| s.offset < a + n && a < s.offset + s.records);
        if touched {
            let at = exact::Records { src: &*writer, state, group, dim };
            fresh.push((i as u64, at.row(*s, &t.vars).await?));
        }
    }
    table::replace(writer, &t, &fresh).await?;
    Ok(fresh.len() as u64)
}
