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

use floe_source::{DType, Dataset, Variable};
use serde::Serialize;
use serde_json::{Map, Value};

pub use cftime::{Reencode, TimeUnits};
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
    pub last_coord: BTreeMap<String, f64>,
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
    /// Exact time re-encoding to apply to the values (CF time with other units).
    pub reencode: Option<Reencode>,
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
}

/// Why a file cannot be appended. Each message ends with what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the file has no unlimited dimension to append along; name one with --append-dim (e.g. --append-dim time)"
    )]
    NoAppendDim,
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

/// The append dimensions of a file under these settings.
pub fn append_dims(ds: &Dataset, settings: &Settings) -> Result<Vec<String>, PlanError> {
    if settings.append_dims.is_empty() {
        let dims = ds.unlimited_dims();
        if dims.is_empty() {
            return Err(PlanError::NoAppendDim);
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
            let op = plan_variable(
                &path, &g.path, v, &dims, &current, &records, coords, repo, settings,
            )?;
            out.arrays.push(op);
        }
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
                reencode: None,
            });
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
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
    let mut reencode = None;

    // Record order along this variable's own coordinate.
    if let Some(ax) = axis {
        let d = &v.dims[ax];
        if v.dims.len() == 1 && &v.name == d {
            let units_here = attr_str(&v.attrs, "units");
            let units_repo = existing.and_then(|a| attr_str(&a.attrs, "units"));
            if let (Some(here), Some(there)) = (units_here, units_repo)
                && here != there
            {
                let cal_here = attr_str(&v.attrs, "calendar");
                let cal_repo = existing.and_then(|a| attr_str(&a.attrs, "calendar"));
                let err = || PlanError::TimeUnits {
                    path: path.to_string(),
                    found: here.to_string(),
                    expected: there.to_string(),
                };
                let ok_cal = cal_here == cal_repo && cftime::is_gregorian(cal_here);
                let (Some(from), Some(to)) =
                    (cftime::parse_units(here), cftime::parse_units(there))
                else {
                    return Err(err());
                };
                if !ok_cal {
                    return Err(err());
                }
                let r = Reencode::between(from, to).ok_or_else(err)?;
                reencode = Some(r);
            }
            if let Some(values) = coords.get(d) {
                let r = reencode.unwrap_or(Reencode::IDENTITY);
                let mapped: Vec<f64> =
                    values.iter().map(|x| x * r.scale as f64 + r.offset as f64).collect();
                check_order(path, &mapped, repo.last_coord.get(path).copied())?;
            }
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
            let chunks = choose_chunks(
                &v.shape,
                v.dtype,
                axis,
                settings.target_chunk_bytes,
                settings.appends_per_chunk,
            );
            let metadata = array_metadata(
                &new_shape,
                &chunks,
                v.dtype,
                &v.dims,
                &v.attrs,
                v.fill_value.as_ref(),
            );
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
                dtype: v.dtype,
                reencode: None,
            })
        }
        Some(a) => {
            if a.dtype != v.dtype {
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
                if *key == "units" && reencode.is_some() {
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
                    reencode: None,
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
                reencode,
            })
        }
    }
}

/// Records must strictly increase within the file and start after the repository's last.
pub fn check_order(path: &str, values: &[f64], last: Option<f64>) -> Result<(), PlanError> {
    for w in values.windows(2) {
        if w[1] == w[0] {
            return Err(PlanError::Order(format!(
                "`{path}` repeats the value {} inside the file",
                w[0]
            )));
        }
        if w[1] < w[0] {
            return Err(PlanError::Order(format!(
                "`{path}` goes backwards inside the file ({} after {})",
                w[1], w[0]
            )));
        }
    }
    if let (Some(first), Some(last)) = (values.first(), last) {
        if *first == last {
            return Err(PlanError::Order(format!(
                "`{path}` starts at {first}, a value the repository already holds (duplicate timestamp)"
            )));
        }
        if *first < last {
            return Err(PlanError::Order(format!(
                "`{path}` starts at {first}, before the repository's last record {last}"
            )));
        }
    }
    Ok(())
}

impl RepoState {
    /// The state after `plan` is applied; `last` holds the new last value of each
    /// record coordinate the plan appended to (by array path).
    pub fn advance(&mut self, plan: &Plan, last: &BTreeMap<String, f64>) {
        for g in &plan.groups {
            self.groups.insert(g.path.clone());
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
            self.last_coord.insert(k.clone(), *v);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod model_tests {
    //! Reference-model test: random sequences of files (variables appearing and
    //! disappearing, varying record counts, a static variable) are planned and
    //! applied to a [`RepoState`]; an independent in-memory model says what every
    //! array's length must be. Every array along `time` must end as long as the
    //! records ingested, every record must land at the offset the model expects,
    //! and nothing static may grow.
    use super::*;
    use floe_source::{Dim, Group, SourceFormat, VarKind};
    use proptest::prelude::*;

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
                let last = [("/time".to_string(), t + (n - 1) as f64)].into();
                state.advance(&plan, &last);
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
        fn a_file_starting_at_or_before_the_last_record_is_refused(n in 1u64..20, back in 0u64..40) {
            let settings = Settings::default();
            let mut state = RepoState::default();
            let first = file(n, 1);
            let coords: Coords = [("time".to_string(), (0..n).map(|i| i as f64).collect())].into();
            let p = plan(&first, &coords, &state, &settings).unwrap();
            state.advance(&p, &[("/time".to_string(), (n - 1) as f64)].into());
            let start = (n - 1) as f64 - back as f64;
            let coords: Coords = [("time".to_string(), (0..n).map(|i| start + i as f64).collect())].into();
            let err = plan(&file(n, 1), &coords, &state, &settings).unwrap_err();
            prop_assert!(matches!(err, PlanError::Order(_)));
        }
    }

    #[test]
    fn static_drift_and_dtype_drift_are_refused() {
        let settings = Settings::default();
        let mut state = RepoState::default();
        let coords: Coords = [("time".to_string(), vec![0.0, 1.0])].into();
        let p = plan(&file(2, 1), &coords, &state, &settings).unwrap();
        state.advance(&p, &[("/time".to_string(), 1.0)].into());
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
