//! Where the statistics live in the repository: one float64 array per data group
//! and append dimension under Floe's own group (`/.floe/stats~<group>~<dim>`), a
//! row per file (a step of a file a logger keeps open is a row of its own).
//!
//! Columns come in blocks of four, one chunk column each: block 0 is the file's
//! `t_min, t_max, offset, records` (first and last record time, where its records
//! are), block `i + 1` is `count, min, max, sum` of variable `i` (the array's
//! `vars` attribute names them). So a query of one variable reads two chunk
//! columns and nothing of the others, and a row is written with the file's data
//! in the same commit: the statistics are exactly as atomic, as branch-local and
//! as durable as the records they describe (a staged, replayed, expired or
//! deleted commit takes its rows with it). Unwritten cells read as 0: a count of
//! 0, no values (a variable first written by a later file).
//!
//! Chunks hold [`ROWS_PER_CHUNK`] rows: a year of 15-minute files is 35 chunks
//! per column block, and a commit rewrites at most one chunk per block (32 KiB
//! before compression).

use std::collections::BTreeMap;

use floe_core::model::{DType, Data, Scalar};
use floe_plan::cftime;
use floe_store::{Reader, StoreError, Writer};
use serde_json::{Map, Value, json};

use super::moments::Moments;

pub const ROWS_PER_CHUNK: u64 = 1024;
const BLOCK: usize = 4;
const FORMAT: u64 = 1;

/// What `t_min`/`t_max` hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// Seconds since 1970-01-01 UTC (the dimension's coordinate is a CF time).
    Seconds,
    /// The coordinate's own values (not a time).
    Coordinate,
    /// Record indices (the dimension has no coordinate array).
    Index,
}

impl TimeKind {
    fn name(self) -> &'static str {
        match self {
            TimeKind::Seconds => "unix_seconds",
            TimeKind::Coordinate => "coordinate",
            TimeKind::Index => "record_index",
        }
    }

    fn parse(s: &str) -> Option<TimeKind> {
        [TimeKind::Seconds, TimeKind::Coordinate, TimeKind::Index]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// Where one file's records are, and their moments per variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub offset: u64,
    pub records: u64,
    pub t_min: f64,
    pub t_max: f64,
    pub vars: BTreeMap<String, Moments>,
}

/// A row's first block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub offset: u64,
    pub records: u64,
    pub t_min: f64,
    pub t_max: f64,
}

/// One statistics array, as its metadata describes it.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: String,
    pub group: String,
    pub dim: String,
    pub time: TimeKind,
    pub vars: Vec<String>,
    pub rows: u64,
    pub metadata: Value,
}

/// The statistics array of a data group's append dimension.
pub fn table_path(group: &str, dim: &str) -> String {
    let g = group.trim_matches('/').replace('/', "~");
    format!("{}/stats~{g}~{dim}", floe_core::OWN_GROUP)
}

/// Whether a variable gets statistics along `dim`: numbers (not text or flags'
/// booleans) along it, not its coordinate, and not a CF time (xarray shows those
/// as dates, whose mean is not a number of the file).
pub fn counted(
    path: &str,
    dims: &[String],
    dtype: DType,
    attrs: &Map<String, Value>,
    dim: &str,
) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let coordinate = dims.len() == 1 && dims[0] == name;
    let time = attrs
        .get("units")
        .and_then(Value::as_str)
        .is_some_and(|u| cftime::parse_units(u).is_some());
    !coordinate
        && !time
        && !matches!(dtype, DType::Str | DType::Bool)
        && dims.iter().any(|d| d == dim)
}

/// How a dimension's coordinate (its attributes, `None`: there is none) turns
/// into the times a row keeps.
pub fn time_kind(
    coord_attrs: Option<&Map<String, Value>>,
) -> (TimeKind, Option<cftime::TimeUnits>) {
    let Some(attrs) = coord_attrs else { return (TimeKind::Index, None) };
    let units = attrs.get("units").and_then(Value::as_str);
    let calendar = attrs.get("calendar").and_then(Value::as_str);
    match units.filter(|_| cftime::is_gregorian(calendar)).and_then(cftime::parse_units) {
        Some(u) => (TimeKind::Seconds, Some(u)),
        None => (TimeKind::Coordinate, None),
    }
}

fn metadata(group: &str, dim: &str, time: TimeKind, vars: &[String], rows: u64) -> Value {
    let mut columns = vec!["t_min", "t_max", "offset", "records"];
    for _ in vars {
        columns.extend(["count", "min", "max", "sum"]);
    }
    let attrs: Map<String, Value> = serde_json::from_value(json!({
        "floe": "per-file statistics of valid decoded values (floe stats)",
        "format": FORMAT,
        "group": group,
        "dim": dim,
        "time": time.name(),
        "vars": vars,
        "columns": columns,
    }))
    .unwrap_or_default();
    let cols = (BLOCK * (1 + vars.len())) as u64;
    floe_plan::array_metadata(
        &[rows, cols],
        &[ROWS_PER_CHUNK, BLOCK as u64],
        DType::F64,
        &["file".to_string(), "column".to_string()],
        &attrs,
        Some(&Scalar::Float(0.0)),
    )
}

impl Table {
    fn from_metadata(path: &str, meta: Value) -> Option<Table> {
        let a = meta.get("attributes")?;
        let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        let vars = a
            .get("vars")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let rows = meta.get("shape")?.get(0)?.as_u64()?;
        Some(Table {
            path: path.to_string(),
            group: text("group")?,
            dim: text("dim")?,
            time: TimeKind::parse(&text("time")?)?,
            vars,
            rows,
            metadata: meta,
        })
    }

    fn cols(&self) -> usize {
        BLOCK * (1 + self.vars.len())
    }

    /// Which column block holds `var` (a name or a path).
    pub fn block_of(&self, var: &str) -> Option<(usize, &str)> {
        self.vars
            .iter()
            .position(|v| v == var || v.rsplit('/').next() == Some(var))
            .map(|i| (i + 1, self.vars[i].as_str()))
    }
}

/// What reads arrays: a snapshot, or the session a commit is being written in.
pub(crate) trait Arrays {
    async fn node(&self, path: &str) -> Result<Option<Value>, StoreError>;
    async fn slab(
        &self,
        path: &str,
        meta: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError>;
}

impl Arrays for Reader {
    async fn node(&self, path: &str) -> Result<Option<Value>, StoreError> {
        self.node_metadata(path).await
    }
    async fn slab(
        &self,
        path: &str,
        meta: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        self.read(path, meta, start, count).await
    }
}

impl Arrays for Writer {
    async fn node(&self, path: &str) -> Result<Option<Value>, StoreError> {
        self.node_metadata(path).await
    }
    async fn slab(
        &self,
        path: &str,
        meta: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        self.read(path, meta, start, count).await
    }
}

/// The statistics array of `group`'s `dim`, if there is one.
pub(crate) async fn open(
    src: &impl Arrays,
    group: &str,
    dim: &str,
) -> Result<Option<Table>, StoreError> {
    let path = table_path(group, dim);
    Ok(src.node(&path).await?.and_then(|m| Table::from_metadata(&path, m)))
}

/// Every statistics array of a snapshot (each names its group and dimension).
pub async fn tables(reader: &Reader) -> Result<Vec<Table>, StoreError> {
    let mut out = Vec::new();
    for path in reader.own_arrays().await? {
        if let Some(m) = reader.node_metadata(&path).await?
            && let Some(t) = Table::from_metadata(&path, m)
        {
            out.push(t);
        }
    }
    Ok(out)
}

fn f64s(data: &Data) -> Vec<f64> {
    match data {
        Data::Fixed(b) => {
            b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
        }
        Data::Strings(_) => Vec::new(),
    }
}

/// Rows `0..table.rows` of column block `block`, four values a row.
pub(crate) async fn read_block(
    src: &impl Arrays,
    t: &Table,
    block: usize,
) -> Result<Vec<[f64; 4]>, StoreError> {
    if t.rows == 0 {
        return Ok(Vec::new());
    }
    let start = [0, (block * BLOCK) as u64];
    let data = src.slab(&t.path, &t.metadata, &start, &[t.rows, BLOCK as u64]).await?;
    Ok(f64s(&data).chunks_exact(BLOCK).map(|c| [c[0], c[1], c[2], c[3]]).collect())
}

pub(crate) fn span(c: &[f64; 4]) -> Span {
    Span { t_min: c[0], t_max: c[1], offset: c[2] as u64, records: c[3] as u64 }
}

pub(crate) fn moments(c: &[f64; 4]) -> Moments {
    Moments::stored(c[0] as u64, c[1], c[2], c[3])
}

fn row_values(r: &Row, vars: &[String]) -> Vec<f64> {
    let mut v = vec![r.t_min, r.t_max, r.offset as f64, r.records as f64];
    for name in vars {
        match r.vars.get(name).filter(|m| m.count > 0) {
            Some(m) => v.extend([m.count as f64, m.min, m.max, m.sum()]),
            None => v.extend([0.0; 4]),
        }
    }
    v
}

/// The array with room for `vars` too (new variables get new column blocks).
async fn grown(
    writer: &mut Writer,
    group: &str,
    dim: &str,
    time: TimeKind,
    vars: impl Iterator<Item = String>,
    rows: u64,
) -> Result<Table, StoreError> {
    let path = table_path(group, dim);
    let old = open(writer, group, dim).await?;
    let (mut names, time, held) = match &old {
        Some(t) => (t.vars.clone(), t.time, t.rows),
        None => {
            writer.ensure_own_group().await?;
            (Vec::new(), time, 0)
        }
    };
    for v in vars {
        if !names.contains(&v) {
            names.push(v);
        }
    }
    let meta = metadata(group, dim, time, &names, held + rows);
    writer.put_array(&path, &meta).await?;
    Ok(Table {
        path,
        group: group.into(),
        dim: dim.into(),
        time,
        vars: names,
        rows: held + rows,
        metadata: meta,
    })
}

/// Append rows (in record order) to `group`'s `dim` array, creating it.
pub(crate) async fn append(
    writer: &mut Writer,
    group: &str,
    dim: &str,
    time: TimeKind,
    rows: &[Row],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let names = rows.iter().flat_map(|r| r.vars.keys().cloned()).collect::<Vec<_>>();
    let t = grown(writer, group, dim, time, names.into_iter(), rows.len() as u64).await?;
    let first = t.rows - rows.len() as u64;
    let bytes: Vec<u8> =
        rows.iter().flat_map(|r| row_values(r, &t.vars)).flat_map(f64::to_le_bytes).collect();
    let count = [rows.len() as u64, t.cols() as u64];
    writer.append(&t.path, &t.metadata, &[first, 0], &count, Data::Fixed(bytes)).await
}

/// Replace whole rows (by index) with new ones, e.g. after a deletion.
pub(crate) async fn replace(
    writer: &mut Writer,
    t: &Table,
    rows: &[(u64, Row)],
) -> Result<(), StoreError> {
    let names = rows.iter().flat_map(|(_, r)| r.vars.keys().cloned()).collect::<Vec<_>>();
    let t = grown(writer, &t.group, &t.dim, t.time, names.into_iter(), 0).await?;
    for (i, r) in rows {
        let bytes: Vec<u8> =
            row_values(r, &t.vars).into_iter().flat_map(f64::to_le_bytes).collect();
        writer
            .write(&t.path, &t.metadata, &[*i, 0], &[1, t.cols() as u64], Data::Fixed(bytes))
            .await?;
    }
    Ok(())
}

/// A fresh array of exactly these rows (rebuilding).
pub(crate) async fn rewrite(
    writer: &mut Writer,
    group: &str,
    dim: &str,
    time: TimeKind,
    rows: &[Row],
) -> Result<(), StoreError> {
    let mut names: Vec<String> = rows.iter().flat_map(|r| r.vars.keys().cloned()).collect();
    names.sort();
    names.dedup();
    writer.ensure_own_group().await?;
    let path = table_path(group, dim);
    let meta = metadata(group, dim, time, &names, rows.len() as u64);
    writer.put_array(&path, &meta).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let cols = (BLOCK * (1 + names.len())) as u64;
    let bytes: Vec<u8> =
        rows.iter().flat_map(|r| row_values(r, &names)).flat_map(f64::to_le_bytes).collect();
    writer.write(&path, &meta, &[0, 0], &[rows.len() as u64, cols], Data::Fixed(bytes)).await
}
