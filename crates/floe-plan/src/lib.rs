//! Sync pipeline, stage 2: decide how one source file lands in the repository.
//!
//! Everything here is pure: the caller passes what the repository holds
//! ([`RepoState`]), the file's description and its record coordinates, and gets a
//! [`Plan`] (arrays to create, grow and write; records per append dimension) or a
//! [`PlanError`] saying why the file cannot be appended and what to do.

pub mod cftime;
mod chunks;
mod meta;

use std::collections::{BTreeMap, BTreeSet};

use floe_core::model::{DType, Dataset, Scalar, Variable};
use serde::Serialize;
use serde_json::{Map, Value};

pub use cftime::{TimeEncoding, TimeMap, TimeUnits};
pub use chunks::choose_chunks;
pub use meta::{array_metadata, group_metadata};

/// Settings of one sync target that shape the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Group inside the repository that receives the file's root group (`/` by default).
    pub group: String,
    /// Append dimensions named by the user; empty: the file's unlimited dimensions.
    pub append_dims: Vec<String>,
    /// Target size of one chunk, in bytes (uncompressed).
    pub target_chunk_bytes: u64,
    /// How many appends (files) at most share one chunk along the append axis. An
    /// append ending inside a chunk rewrites it on the next one, and every rewrite
    /// stays in the history until garbage collection: this bounds that amplification
    /// to about (n + 1) / 2, while chunks still span several files.
    pub appends_per_chunk: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group: "/".into(),
            append_dims: Vec::new(),
            target_chunk_bytes: 4 << 20,
            appends_per_chunk: 8,
        }
    }
}

/// An array as the repository holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayState {
    pub shape: Vec<u64>,
    pub dims: Vec<String>,
    pub dtype: DType,
    pub chunks: Vec<u64>,
    pub attrs: Map<String, Value>,
    /// The array's whole `zarr.json`, kept so that growing it changes only the shape.
    pub metadata: Value,
}

impl ArrayState {
    /// The array's `zarr.json` with another shape.
    pub fn resized(&self, shape: &[u64]) -> Value {
        let mut m = self.metadata.clone();
        if let Some(obj) = m.as_object_mut() {
            obj.insert("shape".into(), Value::from(shape.to_vec()));
        }
        m
    }
}

/// What the repository holds now: arrays and groups by absolute path, and the last
/// value of each record coordinate (by absolute path of the coordinate array).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoState {
    pub arrays: BTreeMap<String, ArrayState>,
    pub groups: BTreeSet<String>,
    /// Attributes of the groups, where they were read.
    pub group_attrs: BTreeMap<String, Map<String, Value>>,
    pub last_coord: BTreeMap<String, Scalar>,
}

/// How one array is touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrayAction {
    /// New array: write its metadata, then the source's values.
    Create,
    /// Existing array grows along its append axis; the source's records are written.
    Append,
    /// Existing array grows along an append axis but this file has no values for it:
    /// the new records read as the fill value.
    Extend,
    /// Existing static array: the file's values must equal the repository's.
    VerifyStatic,
}

/// One array of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayOp {
    /// Absolute path in the repository, e.g. `/co2` or `/inner/waveform`.
    pub path: String,
    pub action: ArrayAction,
    /// Source group and variable the values come from (none for `Extend`).
    pub source: Option<(String, String)>,
    /// `zarr.json` to write (the new shape), when the metadata changes.
    pub metadata: Option<Value>,
    pub new_shape: Vec<u64>,
    /// Where the source's values go: start and count per axis.
    pub region_start: Vec<u64>,
    pub region_count: Vec<u64>,
    /// Axis along which records are appended, if any.
    pub append_axis: Option<usize>,
    /// Chunk shape of the array (to align reads to chunks).
    pub chunks: Vec<u64>,
    pub dtype: DType,
    /// `dtype` is the repository's; this maps a CF time's source values into the
    /// repository's time encoding (exactly as xarray decodes both, or refused).
    pub time_map: Option<TimeMap>,
}

/// A group to create or whose attributes are set on first write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupOp {
    pub path: String,
    pub metadata: Value,
}

/// The whole plan for one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub groups: Vec<GroupOp>,
    pub arrays: Vec<ArrayOp>,
    /// Records appended per append dimension.
    pub records: BTreeMap<String, u64>,
    /// Index of the first appended record, per append dimension.
    pub offsets: BTreeMap<String, u64>,
    pub append_dims: Vec<String>,
    /// The file has no record dimension and the repository already holds one like
    /// it, value checks pending (every array is [`ArrayAction::VerifyStatic`]): if
    /// the values are equal too, there is nothing to write.
    pub whole_again: bool,
}

/// Why a file cannot be appended. Each message ends with what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "append dimension `{0}` is not in the file; check --append-dim against `floe inspect` of the file"
    )]
    AppendDimMissing(String),
    #[error(
        "schema drift in `{path}`: {what}; the repository was left unchanged. Fix the instrument's output, or send this file to another branch or group (--branch / --group)"
    )]
    Drift { path: String, what: String },
    #[error(
        "record order: {0}; the file was not appended. If the file is a re-send of data already in the repository, remove it from the folder; if it belongs elsewhere, use another branch"
    )]
    Order(String),
    #[error(
        "the file has no record dimension and differs from what the repository holds at `{path}`: {what}; the repository was left unchanged. Give each such file a group of its own (--group), or name the dimension to append along (--append-dim)"
    )]
    WholeDiffers { path: String, what: String },
    #[error(
        "time units of `{path}` are `{found}` but the repository uses `{expected}`, and the values cannot be re-encoded exactly; convert the file to the repository's units or send it to another branch (--branch)"
    )]
    TimeUnits { path: String, found: String, expected: String },
}

/// Join a group path and a name into an absolute repository path.
pub fn join(group: &str, name: &str) -> String {
    let g = group.trim_end_matches('/');
    if name.is_empty() {
        if g.is_empty() { "/".into() } else { g.to_string() }
    } else {
        format!("{g}/{name}")
    }
}

/// Map a source group path (`/` or `/inner`) under the target group.
pub fn target_group(settings_group: &str, source_group: &str) -> String {
    let base = settings_group.trim_end_matches('/');
    let sub = source_group.trim_matches('/');
    match (base.is_empty(), sub.is_empty()) {
        (true, true) => "/".into(),
        (true, false) => format!("/{sub}"),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{sub}"),
    }
}

/// The append dimensions of a file under these settings: the ones named, else the
/// file's unlimited dimensions, else the dimension of its CF time coordinate (many
/// products write `time` as a fixed dimension of length 1). Empty when the file has
/// no record dimension at all (a calibration table): it is stored whole.
pub fn append_dims(ds: &Dataset, settings: &Settings) -> Result<Vec<String>, PlanError> {
    if settings.append_dims.is_empty() {
        let dims = ds.unlimited_dims();
        if dims.is_empty() {
            return Ok(time_coordinate_dims(ds));
        }
        return Ok(dims);
    }
    for d in &settings.append_dims {
        if !ds.groups.iter().any(|g| g.dim(d).is_some()) {
            return Err(PlanError::AppendDimMissing(d.clone()));
        }
    }
    Ok(settings.append_dims.clone())
}

/// Whether a variable is a CF time coordinate: `units` of the form `<unit> since
/// <date>`, `standard_name: time` or `axis: T`.
pub fn is_cf_time(v: &Variable) -> bool {
    let units = attr_str(&v.attrs, "units").is_some_and(|u| cftime::parse_units(u).is_some());
    let named = attr_str(&v.attrs, "standard_name").is_some_and(|n| n == "time");
    let axis = attr_str(&v.attrs, "axis").is_some_and(|a| a.eq_ignore_ascii_case("t"));
    units || named || axis
}

/// Dimensions of the file's CF time coordinates (1-D variables named like their
/// dimension), in the order they appear.
fn time_coordinate_dims(ds: &Dataset) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in &ds.groups {
        for v in &g.variables {
            let coord = v.dims.len() == 1 && v.dims[0] == v.name;
            if coord && is_cf_time(v) && !out.contains(&v.name) {
                out.push(v.name.clone());
            }
        }
    }
    out
}

/// The record coordinate values of a file: for each append dimension that has a
/// coordinate variable (same name, 1-D), its raw values in the file's own units.
pub type Coords = BTreeMap<String, Vec<f64>>;

fn attr_str<'a>(attrs: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    attrs.get(key).and_then(Value::as_str)
}

/// Attributes whose change between files is schema drift.
const DRIFT_ATTRS: &[&str] = &["units", "calendar", "scale_factor", "add_offset", "_FillValue"];

/// Plan appending `ds` to the repository state `repo`.
///
/// `coords` holds the file's record coordinates (raw values) per append dimension.
pub fn plan(
    ds: &Dataset,
    coords: &Coords,
    repo: &RepoState,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    let dims = append_dims(ds, settings)?;

    // Current length of each append dimension in the repository (the longest array
    // along it: shorter ones are extended in this same commit).
    let mut current: BTreeMap<String, u64> = BTreeMap::new();
    for a in repo.arrays.values() {
        for (ax, d) in a.dims.iter().enumerate() {
            if dims.contains(d) {
                let e = current.entry(d.clone()).or_insert(0);
                *e = (*e).max(a.shape[ax]);
            }
        }
    }
    // Records this file brings per append dimension.
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    for d in &dims {
        let n = ds.groups.iter().filter_map(|g| g.dim(d)).map(|x| x.size).max().unwrap_or(0);
        records.insert(d.clone(), n);
    }
    let offsets: BTreeMap<String, u64> =
        dims.iter().map(|d| (d.clone(), current.get(d).copied().unwrap_or(0))).collect();

    let mut out = Plan {
        groups: Vec::new(),
        arrays: Vec::new(),
        records: records.clone(),
        offsets: offsets.clone(),
        append_dims: dims.clone(),
        whole_again: false,
    };
    let mut touched: BTreeSet<String> = BTreeSet::new();

    for g in &ds.groups {
        let gpath = target_group(&settings.group, &g.path);
        // create every missing ancestor group too, the root included
        if gpath != "/" && !repo.groups.contains("/") && !out.groups.iter().any(|x| x.path == "/") {
            out.groups.push(GroupOp { path: "/".into(), metadata: group_metadata(&Map::new()) });
        }
        let mut anc = String::new();
        for part in gpath.split('/').filter(|p| !p.is_empty()) {
            anc = format!("{anc}/{part}");
            if !repo.groups.contains(&anc)
                && anc != gpath
                && !out.groups.iter().any(|x| x.path == anc)
            {
                out.groups
                    .push(GroupOp { path: anc.clone(), metadata: group_metadata(&Map::new()) });
            }
        }
        if !repo.groups.contains(&gpath) {
            out.groups.push(GroupOp { path: gpath.clone(), metadata: group_metadata(&g.attrs) });
        }
        for v in &g.variables {
            let path = join(&gpath, &v.name);
            touched.insert(path.clone());
            let op =
                plan_variable(&path, &g.path, v, &dims, &current, &records, coords, repo, settings);
            let op = match op {
                Err(PlanError::Drift { path, what }) if dims.is_empty() => {
                    return Err(PlanError::WholeDiffers { path, what });
                }
                other => other?,
            };
            out.arrays.push(op);
        }
    }
    if dims.is_empty() && !repo.arrays.is_empty() {
        check_whole_again(ds, repo, settings, &out)?;
        out.whole_again = true;
        return Ok(out);
    }

    // Arrays along an append dimension that this file does not carry: extend them
    // so every array stays aligned (the new records read as fill value).
    for (path, a) in &repo.arrays {
        if touched.contains(path) {
            continue;
        }
        let mut new_shape = a.shape.clone();
        let mut axis = None;
        for (ax, d) in a.dims.iter().enumerate() {
            if let Some(n) = records.get(d) {
                new_shape[ax] = offsets[d] + n;
                axis = Some(ax);
            }
        }
        if new_shape != a.shape {
            out.arrays.push(ArrayOp {
                path: path.clone(),
                action: ArrayAction::Extend,
                source: None,
                metadata: Some(a.resized(&new_shape)),
                new_shape,
                region_start: Vec::new(),
                region_count: Vec::new(),
                append_axis: axis,
                chunks: a.chunks.clone(),
                dtype: a.dtype,
                time_map: None,
            });
        }
    }
    Ok(out)
}

/// A file without a record dimension, into a target that holds one already: the
/// same variables, attributes and group attributes, or it is refused as drift
/// (its values are compared by the caller, which reads both).
fn check_whole_again(
    ds: &Dataset,
    repo: &RepoState,
    settings: &Settings,
    plan: &Plan,
) -> Result<(), PlanError> {
    let differs =
        |path: &str, what: String| PlanError::WholeDiffers { path: path.to_string(), what };
    for op in &plan.arrays {
        if op.action != ArrayAction::VerifyStatic {
            return Err(differs(&op.path, "the repository has no such variable".into()));
        }
    }
    let ours: BTreeSet<&str> = plan.arrays.iter().map(|o| o.path.as_str()).collect();
    for g in &ds.groups {
        let gpath = target_group(&settings.group, &g.path);
        if let Some(missing) =
            repo.arrays.keys().find(|p| parent(p) == gpath && !ours.contains(p.as_str()))
        {
            return Err(differs(missing, "the file lacks this variable".into()));
        }
        if repo.group_attrs.get(&gpath).is_some_and(|a| a != &g.attrs) {
            return Err(differs(&gpath, "the group's attributes changed".into()));
        }
        for v in &g.variables {
            let path = join(&gpath, &v.name);
            if let Some(a) = repo.arrays.get(&path)
                && a.attrs != v.attrs
            {
                let changed: Vec<&str> = a
                    .attrs
                    .keys()
                    .chain(v.attrs.keys())
                    .filter(|k| a.attrs.get(*k) != v.attrs.get(*k))
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                return Err(differs(&path, format!("attributes changed ({})", changed.join(", "))));
            }
        }
    }
    Ok(())
}

/// The group path an array path lives in (`/a/b` -> `/a`, `/b` -> `/`).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[expect(clippy::too_many_arguments)]
fn plan_variable(
    path: &str,
    source_group: &str,
    v: &Variable,
    dims: &[String],
    current: &BTreeMap<String, u64>,
    records: &BTreeMap<String, u64>,
    coords: &Coords,
    repo: &RepoState,
    settings: &Settings,
) -> Result<ArrayOp, PlanError> {
    let axes: Vec<usize> =
        v.dims.iter().enumerate().filter(|(_, d)| dims.contains(d)).map(|(i, _)| i).collect();
    let drift = |what: String| PlanError::Drift { path: path.to_string(), what };
    if axes.len() > 1 {
        return Err(drift(format!(
            "it spans {} append dimensions ({}); Floe appends along one dimension per variable",
            axes.len(),
            axes.iter().map(|&a| v.dims[a].as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let axis = axes.first().copied();
    let source = Some((source_group.to_string(), v.name.clone()));

    let existing = repo.arrays.get(path);
    // CF time along an append dimension: decoded as xarray decodes it and stored in
    // the repository's record-time encoding (see `cftime`)
    let time_map = match axis {
        Some(_) => time_map(path, v, existing)?,
        None => None,
    };

    // Record order along this variable's own coordinate: the file must not start
    // before the branch's last record.
    if let Some(ax) = axis {
        let d = &v.dims[ax];
        if v.dims.len() == 1
            && &v.name == d
            && let Some(first) = coords.get(d).and_then(|v| v.first())
            && let Some((last, a)) = repo.last_coord.get(path).zip(existing)
        {
            let first = OrderKey::of(&Scalar::Float(*first), v.dtype, &v.attrs);
            let last = OrderKey::of(last, a.dtype, &a.attrs);
            check_order(path, first, last)?;
        }
    }

    let region_start: Vec<u64> = v
        .dims
        .iter()
        .map(|d| if dims.contains(d) { current.get(d).copied().unwrap_or(0) } else { 0 })
        .collect();
    let region_count = v.shape.clone();
    let new_shape: Vec<u64> = v
        .dims
        .iter()
        .zip(&v.shape)
        .map(|(d, &n)| match records.get(d) {
            Some(r) if dims.contains(d) => current.get(d).copied().unwrap_or(0) + r,
            _ => n,
        })
        .collect();

    match existing {
        None => {
            // a mapped time is stored as int64 nanoseconds, missing times as NaT
            let (dtype, attrs, fill) = match &time_map {
                Some(m) => {
                    let mut attrs = v.attrs.clone();
                    attrs.remove("missing_value");
                    attrs.insert("units".into(), Value::from(m.to_units.clone()));
                    attrs.insert("_FillValue".into(), Value::from(cftime::NAT));
                    (m.to.dtype, attrs, Some(Scalar::Int(cftime::NAT)))
                }
                None => (v.dtype, v.attrs.clone(), v.fill_value.clone()),
            };
            let chunks = choose_chunks(
                &v.shape,
                dtype,
                axis,
                settings.target_chunk_bytes,
                settings.appends_per_chunk,
            );
            let metadata =
                array_metadata(&new_shape, &chunks, dtype, &v.dims, &attrs, fill.as_ref());
            Ok(ArrayOp {
                path: path.to_string(),
                action: ArrayAction::Create,
                source,
                metadata: Some(metadata),
                new_shape,
                region_start,
                region_count,
                append_axis: axis,
                chunks,
                dtype,
                time_map,
            })
        }
        Some(a) => {
            if a.dtype != v.dtype && time_map.is_none() {
                return Err(drift(format!("type changed from {} to {}", a.dtype, v.dtype)));
            }
            if a.dims != v.dims {
                return Err(drift(format!(
                    "dimensions changed from ({}) to ({})",
                    a.dims.join(", "),
                    v.dims.join(", ")
                )));
            }
            for key in DRIFT_ATTRS {
                if matches!(*key, "units" | "_FillValue") && time_map.is_some() {
                    continue;
                }
                let (x, y) = (a.attrs.get(*key), v.attrs.get(*key));
                if x != y {
                    let show = |o: Option<&Value>| o.map_or("absent".to_string(), Value::to_string);
                    return Err(drift(format!("`{key}` changed from {} to {}", show(x), show(y))));
                }
            }
            for (ax, d) in v.dims.iter().enumerate() {
                if Some(ax) != axis && a.shape[ax] != v.shape[ax] {
                    return Err(drift(format!(
                        "dimension `{d}` changed size from {} to {}",
                        a.shape[ax], v.shape[ax]
                    )));
                }
            }
            if axis.is_none() {
                return Ok(ArrayOp {
                    path: path.to_string(),
                    action: ArrayAction::VerifyStatic,
                    source,
                    metadata: None,
                    new_shape: a.shape.clone(),
                    region_start,
                    region_count,
                    append_axis: None,
                    chunks: a.chunks.clone(),
                    dtype: a.dtype,
                    time_map: None,
                });
            }
            // A variable that was missing from earlier files may be shorter than the
            // dimension: it grows to the common length; the gap reads as fill value.
            let metadata = a.resized(&new_shape);
            Ok(ArrayOp {
                path: path.to_string(),
                action: ArrayAction::Append,
                source,
                metadata: Some(metadata),
                new_shape,
                region_start,
                region_count,
                append_axis: axis,
                chunks: a.chunks.clone(),
                dtype: a.dtype,
                time_map,
            })
        }
    }
}

/// A file must not start before the branch's last record. Inside a file the order
/// is the instrument's business: a radar's per-ray times repeat (several rays a
/// second) and an RHI's step backwards, and they are stored as they are. A first
/// record equal to the last is fine: consecutive radar volumes often share a second.
pub fn check_order(path: &str, first: OrderKey, last: OrderKey) -> Result<(), PlanError> {
    let before = match (first, last) {
        (OrderKey::Time(f), OrderKey::Time(l)) => f < l,
        (OrderKey::Raw(f), OrderKey::Raw(l)) => f < l,
        // one side is a CF time and the other is not: drift, reported elsewhere
        _ => false,
    };
    if before {
        return Err(PlanError::Order(format!(
            "`{path}` starts at {first}, before the branch's last record {last}"
        )));
    }
    Ok(())
}

/// Where a record sits, for ordering: a CF time (standard calendar) as the
/// nanoseconds xarray decodes it to, anything else as its raw value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderKey {
    Time(i64),
    Raw(f64),
}

impl OrderKey {
    pub fn of(value: &Scalar, dtype: DType, attrs: &Map<String, Value>) -> OrderKey {
        let units = attr_str(attrs, "units").and_then(cftime::parse_units);
        let standard = cftime::is_gregorian(attr_str(attrs, "calendar"));
        match units.filter(|_| standard).and_then(|u| cftime::decode(value, dtype, u)) {
            Some(ns) => OrderKey::Time(ns),
            None => OrderKey::Raw(value.as_f64()),
        }
    }
}

impl std::fmt::Display for OrderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderKey::Time(ns) => f.write_str(&cftime::iso(*ns)),
            OrderKey::Raw(v) => write!(f, "{v}"),
        }
    }
}

/// The values that mark a missing time in a source variable.
fn missing_values(v: &Variable) -> Vec<f64> {
    let mut out: Vec<f64> = v.fill_value.iter().map(Scalar::as_f64).collect();
    match v.attrs.get("missing_value") {
        Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_f64)),
        Some(x) => out.extend(x.as_f64()),
        None => {}
    }
    out
}

/// How a CF time variable along an append dimension reaches the repository:
/// `None` keeps its values as they are (the same units and type as the
/// repository's array, or a new array of integer times, or a calendar Floe does
/// not decode); otherwise a map into the repository's time encoding.
fn time_map(
    path: &str,
    v: &Variable,
    existing: Option<&ArrayState>,
) -> Result<Option<TimeMap>, PlanError> {
    let Some(here) = attr_str(&v.attrs, "units") else {
        return Ok(None);
    };
    let Some(from) = cftime::parse_units(here) else {
        return Ok(None);
    };
    if matches!(v.dtype, DType::Str | DType::Bool) {
        return Ok(None);
    }
    let calendar = attr_str(&v.attrs, "calendar");
    let map = |to: TimeEncoding, to_units: String| TimeMap {
        from,
        from_dtype: v.dtype,
        missing: missing_values(v),
        to,
        to_units,
    };
    let Some(a) = existing else {
        // a new array: float times become int64 nanoseconds (integers stay as they
        // are: they decode exactly, and later files are checked value by value)
        if !v.dtype.is_float() || !cftime::is_gregorian(calendar) {
            return Ok(None);
        }
        let Some(to) = TimeEncoding::for_new_array(from) else {
            return Ok(None);
        };
        let Some(units) = cftime::format_units("nanoseconds", to.units.epoch_ns) else {
            return Ok(None);
        };
        return Ok(Some(map(to, units)));
    };
    let there = attr_str(&a.attrs, "units");
    if there == Some(here) && a.dtype == v.dtype {
        return Ok(None); // xarray decodes value by value: the same encoding is exact
    }
    let err = || PlanError::TimeUnits {
        path: path.to_string(),
        found: here.to_string(),
        expected: there.unwrap_or("none").to_string(),
    };
    let to = there.and_then(cftime::parse_units).ok_or_else(err)?;
    let repo_calendar = attr_str(&a.attrs, "calendar");
    if !cftime::is_gregorian(calendar) || !cftime::is_gregorian(repo_calendar) {
        return Err(err());
    }
    Ok(Some(map(TimeEncoding { units: to, dtype: a.dtype }, there.unwrap_or_default().into())))
}

impl RepoState {
    /// The state after `plan` is applied; `last` holds the new last value of each
    /// record coordinate the plan appended to (by array path).
    pub fn advance(&mut self, plan: &Plan, last: &BTreeMap<String, Scalar>) {
        for g in &plan.groups {
            self.groups.insert(g.path.clone());
            let attrs = g.metadata["attributes"].as_object().cloned().unwrap_or_default();
            self.group_attrs.insert(g.path.clone(), attrs);
        }
        for op in &plan.arrays {
            match op.action {
                ArrayAction::Create => {
                    if let Some(meta) = &op.metadata {
                        let attrs = meta["attributes"].as_object().cloned().unwrap_or_default();
                        let dims = meta["dimension_names"]
                            .as_array()
                            .map(|a| {
                                a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()
                            })
                            .unwrap_or_default();
                        self.arrays.insert(
                            op.path.clone(),
                            ArrayState {
                                shape: op.new_shape.clone(),
                                dims,
                                dtype: op.dtype,
                                chunks: op.chunks.clone(),
                                attrs,
                                metadata: meta.clone(),
                            },
                        );
                    }
                }
                ArrayAction::Append | ArrayAction::Extend => {
                    if let Some(a) = self.arrays.get_mut(&op.path) {
                        a.shape = op.new_shape.clone();
                        if let Some(meta) = &op.metadata {
                            a.metadata = meta.clone();
                        }
                    }
                }
                ArrayAction::VerifyStatic => {}
            }
        }
        for (k, v) in last {
            self.last_coord.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod model_tests {
    //! Reference-model test: random sequences of files (variables appearing and
    //! disappearing, varying record counts, a static variable) are planned and
    //! applied to a [`RepoState`]; an independent in-memory model says what every
    //! array's length must be. Every array along `time` must end as long as the
    //! records ingested, every record must land at the offset the model expects,
    //! and nothing static may grow.
    use super::*;
    use floe_core::model::{Dim, Group, SourceFormat, VarKind};
    use proptest::prelude::*;

    fn last(v: f64) -> BTreeMap<String, Scalar> {
        [("/time".to_string(), Scalar::Float(v))].into()
    }

    fn var(name: &str, dims: &[&str], shape: &[u64]) -> Variable {
        Variable {
            name: name.into(),
            dims: dims.iter().map(|d| d.to_string()).collect(),
            shape: shape.to_vec(),
            dtype: DType::F32,
            attrs: Map::new(),
            chunks: None,
            kind: VarKind::Plain,
            fill_value: None,
        }
    }

    /// A file with `n` records carrying the variables whose bit is set in `mask`.
    fn file(n: u64, mask: u8) -> Dataset {
        let mut variables = vec![var("time", &["time"], &[n]), var("level", &["level"], &[3])];
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            if mask & (1 << i) != 0 {
                variables.push(var(name, &["time"], &[n]));
            }
        }
        Dataset {
            format: SourceFormat::Netcdf4,
            groups: vec![Group {
                path: "/".into(),
                attrs: Map::new(),
                dims: vec![
                    Dim { name: "time".into(), size: n, unlimited: true },
                    Dim { name: "level".into(), size: 3, unlimited: false },
                ],
                variables,
            }],
        }
    }

    proptest! {
        #[test]
        fn appends_keep_every_array_aligned(files in proptest::collection::vec((1u64..50, 0u8..8), 1..25)) {
            let settings = Settings::default();
            let mut state = RepoState::default();
            let mut total = 0u64;
            let mut t = 0.0;
            for (n, mask) in files {
                let ds = file(n, mask);
                let coords: Coords = [("time".to_string(), (0..n).map(|i| t + i as f64).collect())].into();
                let plan = plan(&ds, &coords, &state, &settings).expect("plan");
                prop_assert_eq!(plan.offsets["time"], total);
                prop_assert_eq!(plan.records["time"], n);
                for op in &plan.arrays {
                    let writes = matches!(op.action, ArrayAction::Create | ArrayAction::Append);
                    if writes && op.append_axis == Some(0) {
                        prop_assert_eq!(op.region_start[0], total, "{} lands at the end", op.path);
                        prop_assert_eq!(op.region_count[0], n);
                    }
                }
                let last_rec = last(t + (n - 1) as f64);
                state.advance(&plan, &last_rec);
                total += n;
                t += n as f64;
                for (path, a) in &state.arrays {
                    match a.dims.first().map(String::as_str) {
                        Some("time") => prop_assert_eq!(a.shape[0], total, "{} is aligned", path),
                        _ => prop_assert_eq!(&a.shape, &vec![3u64], "{} is static", path),
                    }
                }
            }
        }

        #[test]
        fn a_file_starting_before_the_last_record_is_refused(n in 1u64..20, back in 1u64..40) {
            let settings = Settings::default();
            let mut state = RepoState::default();
            let first = file(n, 1);
            let coords: Coords = [("time".to_string(), (0..n).map(|i| i as f64).collect())].into();
            let p = plan(&first, &coords, &state, &settings).unwrap();
            state.advance(&p, &last((n - 1) as f64));
            let start = (n - 1) as f64 - back as f64;
            let coords: Coords = [("time".to_string(), (0..n).map(|i| start + i as f64).collect())].into();
            let err = plan(&file(n, 1), &coords, &state, &settings).unwrap_err();
            prop_assert!(matches!(err, PlanError::Order(_)));
        }
    }

    #[test]
    fn inside_a_file_the_instruments_order_stands() {
        // a radar's per-ray times: repeats and an RHI's step back
        let settings = Settings::default();
        let mut state = RepoState::default();
        let coords: Coords = [("time".to_string(), vec![0.0, 0.0, 1.0, 0.5, 2.0])].into();
        let p = plan(&file(5, 1), &coords, &state, &settings).expect("in-file order is free");
        state.advance(&p, &last(2.0));
        // the next volume starts in the same second as the last ray: fine
        let next: Coords = [("time".to_string(), vec![2.0, 2.0, 3.0, 2.5, 4.0])].into();
        let p = plan(&file(5, 1), &next, &state, &settings).expect("equal first record is fine");
        state.advance(&p, &last(4.0));
        let early: Coords = [("time".to_string(), vec![3.9, 5.0, 6.0, 7.0, 8.0])].into();
        let e = plan(&file(5, 1), &early, &state, &settings).unwrap_err();
        assert!(e.to_string().contains("before the branch's last record 4"), "{e}");
    }

    /// A file whose `time` is a fixed dimension (no unlimited one).
    fn granule() -> Dataset {
        let mut ds = file(1, 1);
        ds.groups[0].dims[0].unlimited = false;
        ds
    }

    #[test]
    fn a_cf_time_coordinate_on_a_fixed_dimension_is_the_append_dimension() {
        let settings = Settings::default();
        let mut ds = granule();
        assert_eq!(append_dims(&ds, &settings).unwrap(), Vec::<String>::new());
        ds.groups[0].variables[0].attrs.insert("units".into(), "days since 2000-01-01".into());
        assert_eq!(append_dims(&ds, &settings).unwrap(), vec!["time".to_string()]);
        ds.groups[0].variables[0].attrs.clear();
        ds.groups[0].variables[0].attrs.insert("standard_name".into(), "time".into());
        assert_eq!(append_dims(&ds, &settings).unwrap(), vec!["time".to_string()]);
        ds.groups[0].variables[0].attrs.clear();
        ds.groups[0].variables[0].attrs.insert("axis".into(), "T".into());
        assert_eq!(append_dims(&ds, &settings).unwrap(), vec!["time".to_string()]);
        // a non-coordinate with time units does not make an append dimension
        ds.groups[0].variables[0].attrs.clear();
        ds.groups[0].variables[2].attrs.insert("units".into(), "days since 2000-01-01".into());
        assert!(append_dims(&ds, &settings).unwrap().is_empty());
    }

    #[test]
    fn a_file_without_a_record_dimension_is_stored_whole_then_compared() {
        let settings = Settings::default();
        let mut state = RepoState::default();
        let table = granule();
        let p = plan(&table, &Coords::new(), &state, &settings).unwrap();
        assert!(p.append_dims.is_empty() && !p.whole_again);
        assert!(p.arrays.iter().all(|a| a.action == ArrayAction::Create));
        state.advance(&p, &BTreeMap::new());
        let again = plan(&table, &Coords::new(), &state, &settings).unwrap();
        assert!(again.whole_again);
        assert!(again.arrays.iter().all(|a| a.action == ArrayAction::VerifyStatic));
        let mut recal = granule();
        recal.groups[0].variables[2].attrs.insert("comment".into(), "recalibrated".into());
        let e = plan(&recal, &Coords::new(), &state, &settings).unwrap_err();
        assert!(matches!(e, PlanError::WholeDiffers { .. }), "{e}");
        assert!(e.to_string().contains("--append-dim"), "{e}");
        let mut more = granule();
        more.groups[0].variables.push(var("extra", &["level"], &[3]));
        assert!(matches!(
            plan(&more, &Coords::new(), &state, &settings),
            Err(PlanError::WholeDiffers { .. })
        ));
        let mut fewer = granule();
        fewer.groups[0].variables.pop();
        assert!(matches!(
            plan(&fewer, &Coords::new(), &state, &settings),
            Err(PlanError::WholeDiffers { .. })
        ));
    }

    #[test]
    fn static_drift_and_dtype_drift_are_refused() {
        let settings = Settings::default();
        let mut state = RepoState::default();
        let coords: Coords = [("time".to_string(), vec![0.0, 1.0])].into();
        let p = plan(&file(2, 1), &coords, &state, &settings).unwrap();
        state.advance(&p, &last(1.0));
        let later: Coords = [("time".to_string(), vec![2.0, 3.0])].into();
        let mut wider = file(2, 1);
        wider.groups[0].variables[1].shape = vec![4];
        assert!(matches!(plan(&wider, &later, &state, &settings), Err(PlanError::Drift { .. })));
        let mut retyped = file(2, 1);
        retyped.groups[0].variables[2].dtype = DType::F64;
        let e = plan(&retyped, &later, &state, &settings).unwrap_err();
        assert!(e.to_string().contains("type changed from float32 to float64"), "{e}");
        let mut units = file(2, 1);
        units.groups[0].variables[2].attrs.insert("units".into(), "K".into());
        assert!(matches!(plan(&units, &later, &state, &settings), Err(PlanError::Drift { .. })));
    }
}
