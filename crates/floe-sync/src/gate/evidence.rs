//! What the checks look at, read from the repository: the branch's schema before
//! and the staging tip's after, each staged file's record coordinates, and (when a
//! value check is on) its records of every variable, read back from the storage.

use std::collections::BTreeSet;

use floe_core::FileProvenance;
use floe_core::model::{DType, Data};

use floe_core::decoding::Decoding;
use floe_plan::{ArrayState, RepoState, cftime};
use floe_store::{Reader, Repo, StoreError};
use serde_json::Value;

use super::checks::{
    ArraySchema, FileCoords, MEANING_ATTRS, Schema, ValueSummary, first_duplicate, gap_over,
    outside, schema_changes, too_empty, valid_bounds,
};
use super::{Check, Failure, GateOptions, Staged};

/// The branch's last records read for the duplicate check: the branch is in record
/// order (the planner refuses a file that starts before its last record), so a new
/// record can only repeat its last ones.
const TAIL: u64 = 64;

/// The branch before and the staging tip after, as the checks read them.
#[derive(Clone, Copy)]
struct Sides<'a> {
    before_reader: &'a Reader,
    tip: &'a Reader,
    before: &'a RepoState,
    after: &'a RepoState,
}

/// Most elements read from an array at once.
const SLAB: u64 = 4 << 20;

/// Run the configured checks on what is staged; the first failure of each check.
pub async fn evaluate(
    repo: &Repo,
    group: &str,
    opts: &GateOptions,
    staged: &Staged,
) -> Result<Vec<Failure>, StoreError> {
    let files = staged.files(group);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let before_reader = repo.reader_at(&staged.base).await?;
    let tip = repo.reader_at(&staged.tip).await?;
    let before = before_reader.state(group).await?;
    let after = tip.state(group).await?;
    let dims: BTreeSet<String> = files.iter().flat_map(|f| f.records.keys().cloned()).collect();
    let mut failures = Vec::new();
    if opts.schema
        && let Some(f) = schema_check(repo, group, staged, &before, &after, &dims).await?
    {
        failures.push(f);
    }
    let sides = Sides { before_reader: &before_reader, tip: &tip, before: &before, after: &after };
    for d in &dims {
        failures.extend(coordinate_checks(opts, sides, group, d, &files).await?);
    }
    if opts.reads_values() {
        failures.extend(value_checks(opts, &tip, &after, &dims, &files).await?);
    }
    // the first of each check: the rest usually follow from it
    let mut seen = BTreeSet::new();
    failures.retain(|f| seen.insert(f.check.name()));
    Ok(failures)
}

/// An array's schema, lengths along the append dimensions left out.
fn schema_of(state: &RepoState, dims: &BTreeSet<String>) -> Schema {
    state
        .arrays
        .iter()
        .map(|(path, a)| {
            let shape = a
                .dims
                .iter()
                .zip(&a.shape)
                .map(|(d, n)| (!dims.contains(d)).then_some(*n))
                .collect();
            let attrs = MEANING_ATTRS
                .iter()
                .filter_map(|k| a.attrs.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            let s = ArraySchema { dtype: a.dtype.to_string(), dims: a.dims.clone(), shape, attrs };
            (path.clone(), s)
        })
        .collect()
}

/// The schema check, blamed on the first file of the first staged commit that
/// changes it.
async fn schema_check(
    repo: &Repo,
    group: &str,
    staged: &Staged,
    before: &RepoState,
    after: &RepoState,
    dims: &BTreeSet<String>,
) -> Result<Option<Failure>, StoreError> {
    let was = schema_of(before, dims);
    let changes = schema_changes(&was, &schema_of(after, dims));
    if changes.is_empty() {
        return Ok(None);
    }
    let mut blamed = None;
    for c in &staged.commits {
        let first = c.provenance.as_ref().and_then(|p| p.files.iter().find(|f| f.group == group));
        let Some(first) = first else { continue };
        let at = repo.reader_at(&c.id).await?.state(group).await?;
        if !schema_changes(&was, &schema_of(&at, dims)).is_empty() {
            blamed = Some(first.source.clone());
            break;
        }
    }
    let file = blamed.unwrap_or_else(|| "the staged files".into());
    Ok(Some(Failure::new(Check::Schema, &file, changes.join("; "))))
}

/// Values of `count` elements of a 1-D array from `start`, as f64 (strings: none).
async fn read_f64(
    r: &Reader,
    path: &str,
    a: &ArrayState,
    start: &[u64],
    count: &[u64],
) -> Result<Vec<f64>, StoreError> {
    if count.contains(&0) {
        return Ok(Vec::new());
    }
    let data = r.read(path, &a.metadata, start, count).await?;
    Ok(as_f64(a.dtype, &data))
}

fn as_f64(dtype: DType, data: &Data) -> Vec<f64> {
    match (data, dtype.size()) {
        (Data::Fixed(b), Some(n)) => {
            b.chunks_exact(n).map(|c| dtype.element_as_f64(c).unwrap_or(f64::NAN)).collect()
        }
        _ => Vec::new(),
    }
}

/// A record coordinate in seconds since 1970, where it is a CF time.
fn to_seconds(a: &ArrayState) -> Option<cftime::TimeUnits> {
    let units = a.attrs.get("units").and_then(Value::as_str)?;
    let calendar = a.attrs.get("calendar").and_then(Value::as_str);
    cftime::is_gregorian(calendar).then(|| cftime::parse_units(units)).flatten()
}

/// `2024-01-01T00:15:00Z` for a CF time, else the raw value.
fn show_coord(v: f64, units: Option<cftime::TimeUnits>) -> String {
    let secs = units.map(|u| cftime::to_unix_seconds(v, u));
    match secs.and_then(|s| chrono::DateTime::from_timestamp(s.floor() as i64, 0)) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => v.to_string(),
    }
}

fn show_secs(s: f64) -> String {
    match s {
        s if s >= 86400.0 => format!("{:.1} days", s / 86400.0),
        s if s >= 3600.0 => format!("{:.1} h", s / 3600.0),
        s if s >= 60.0 => format!("{:.1} min", s / 60.0),
        s => format!("{s:.1} s"),
    }
}

/// The duplicate and gap checks along one append dimension, on its coordinate.
async fn coordinate_checks(
    opts: &GateOptions,
    sides: Sides<'_>,
    group: &str,
    dim: &str,
    files: &[&FileProvenance],
) -> Result<Vec<Failure>, StoreError> {
    let Sides { before_reader, tip, before, after } = sides;
    let path = floe_plan::join(group, dim);
    let Some(a) = after.arrays.get(&path).filter(|a| a.dims == [dim]) else {
        return Ok(Vec::new());
    };
    let held = before.arrays.get(&path).map_or(0, |b| b.shape.first().copied().unwrap_or(0));
    let tail = match before.arrays.get(&path) {
        Some(b) => {
            let k = held.min(TAIL);
            read_f64(before_reader, &path, b, &[held - k], &[k]).await?
        }
        None => Vec::new(),
    };
    let units = to_seconds(a);
    let mut coords = Vec::new();
    for f in files {
        let (Some(&at), Some(&n)) = (f.offsets.get(dim), f.records.get(dim)) else { continue };
        let raw = read_f64(tip, &path, a, &[at], &[n]).await?;
        let seconds = units.map(|u| raw.iter().map(|v| cftime::to_unix_seconds(*v, u)).collect());
        coords.push(FileCoords { file: f.source.clone(), raw, seconds });
    }
    let mut out = Vec::new();
    if opts.duplicates
        && let Some((file, v, other)) = first_duplicate(&tail, &coords)
    {
        let what = format!("its record `{dim}` = {} is already in {other}", show_coord(v, units));
        out.push(Failure::new(Check::Duplicates, &file, what));
    }
    if let Some(max) = opts.max_gap_secs {
        let in_secs = |v: f64| units.map_or(v, |u| cftime::to_unix_seconds(v, u));
        let spans: Vec<(String, f64, f64)> = coords
            .iter()
            .filter_map(|c| {
                let vals = c.seconds.clone().unwrap_or_else(|| c.raw.clone());
                let lo = vals.iter().copied().filter(|v| !v.is_nan()).reduce(f64::min)?;
                let hi = vals.iter().copied().filter(|v| !v.is_nan()).reduce(f64::max)?;
                Some((c.file.clone(), lo, hi))
            })
            .collect();
        let last = tail.iter().copied().filter(|v| !v.is_nan()).reduce(f64::max).map(in_secs);
        if let Some((file, gap)) = gap_over(last, &spans, max) {
            let what = format!(
                "{} without records before it (the limit is {})",
                show_secs(gap),
                show_secs(max)
            );
            out.push(Failure::new(Check::Gap, &file, what));
        }
    }
    Ok(out)
}

/// The valid-range, limits and fill checks on each staged file's records of each
/// numeric data variable along the append dimensions.
async fn value_checks(
    opts: &GateOptions,
    tip: &Reader,
    after: &RepoState,
    dims: &BTreeSet<String>,
    files: &[&FileProvenance],
) -> Result<Vec<Failure>, StoreError> {
    let mut out = Vec::new();
    for (path, a) in &after.arrays {
        let name = path.rsplit('/').next().unwrap_or(path);
        let coordinate = a.dims.len() == 1 && a.dims[0] == name;
        if coordinate || a.dtype == DType::Str || !a.dims.iter().any(|d| dims.contains(d)) {
            continue;
        }
        let d = Decoding::of(a.dtype, &a.attrs);
        let integers = !a.dtype.is_float();
        let valid = if opts.valid_range { valid_bounds(&a.attrs, &d, integers) } else { None };
        let limits = opts.limits.get(name).or_else(|| opts.limits.get(path.as_str()));
        for f in files {
            let Some((start, count)) = region(a, f) else { continue };
            let mut s_valid = ValueSummary::default();
            let mut s_limits = ValueSummary::default();
            for (st, ct) in slabs(&start, &count, a, f) {
                let raw = read_f64(tip, path, a, &st, &ct).await?;
                let decoded: Vec<Option<f64>> = raw.iter().map(|r| d.decode(*r)).collect();
                s_valid.add(decoded.iter().copied(), valid.as_ref());
                if let Some(l) = limits {
                    s_limits.add(decoded.iter().copied(), Some(l));
                }
            }
            if let Some(b) = &valid
                && let Some(x) = outside(Check::ValidRange, &f.source, path, &s_valid, b)
            {
                out.push(x);
            }
            if let Some(l) = limits
                && let Some(x) = outside(Check::Limits, &f.source, path, &s_limits, l)
            {
                out.push(x);
            }
            if let Some(max) = opts.max_fill
                && let Some(x) = too_empty(&f.source, path, &s_valid, max)
            {
                out.push(x);
            }
        }
    }
    Ok(out)
}

/// The hyperslab of an array that holds a file's records: its records along the
/// append dimensions it took, all of every other dimension (`None`: none there).
fn region(a: &ArrayState, f: &FileProvenance) -> Option<(Vec<u64>, Vec<u64>)> {
    let mut start = Vec::new();
    let mut count = Vec::new();
    let mut touched = false;
    for (d, n) in a.dims.iter().zip(&a.shape) {
        match (f.offsets.get(d), f.records.get(d)) {
            (Some(&at), Some(&k)) => {
                touched |= k > 0;
                start.push(at);
                count.push(k.min(n.saturating_sub(at)));
            }
            _ => {
                start.push(0);
                count.push(*n);
            }
        }
    }
    touched.then_some((start, count))
}

/// A region cut into reads of at most [`SLAB`] elements along its first append
/// axis (a file of many records of a wide variable is not read in one piece).
fn slabs(
    start: &[u64],
    count: &[u64],
    a: &ArrayState,
    f: &FileProvenance,
) -> Vec<(Vec<u64>, Vec<u64>)> {
    let Some(ax) = a.dims.iter().position(|d| f.records.contains_key(d)) else {
        return vec![(start.to_vec(), count.to_vec())];
    };
    let per_record: u64 =
        count.iter().enumerate().filter(|(i, _)| *i != ax).map(|(_, n)| *n).product();
    let step = (SLAB / per_record.max(1)).max(1);
    let mut out = Vec::new();
    let mut done = 0;
    while done < count[ax] {
        let n = step.min(count[ax] - done);
        let (mut s, mut c) = (start.to_vec(), count.to_vec());
        s[ax] += done;
        c[ax] = n;
        out.push((s, c));
        done += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn array(dims: &[&str], shape: &[u64]) -> ArrayState {
        ArrayState {
            shape: shape.to_vec(),
            dims: dims.iter().map(|d| d.to_string()).collect(),
            dtype: DType::F32,
            chunks: shape.to_vec(),
            attrs: Default::default(),
            metadata: Value::Null,
        }
    }

    fn file(offset: u64, records: u64) -> FileProvenance {
        FileProvenance {
            source: "a.nc".into(),
            size: 0,
            mtime: String::new(),
            blake3: String::new(),
            format: "netcdf4".into(),
            group: "/".into(),
            records: BTreeMap::from([("time".into(), records)]),
            offsets: BTreeMap::from([("time".into(), offset)]),
            from: BTreeMap::new(),
            records_blake3: None,
            settings: BTreeMap::new(),
        }
    }

    #[test]
    fn a_files_region_is_its_records_and_is_read_in_slabs() {
        let a = array(&["time", "range", "azimuth"], &[1000, 2000, 360]);
        let (s, c) = region(&a, &file(100, 30)).unwrap();
        assert_eq!((s.clone(), c.clone()), (vec![100, 0, 0], vec![30, 2000, 360]));
        // 720,000 values a record: 5 records a read
        let parts = slabs(&s, &c, &a, &file(100, 30));
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[5], (vec![125, 0, 0], vec![5, 2000, 360]));
        assert!(region(&a, &file(100, 0)).is_none(), "a file without records here");
        assert!(region(&array(&["range"], &[5]), &file(0, 3)).is_none(), "a static array");
    }

    #[test]
    fn stored_values_decode_by_their_attributes() {
        let mut a = array(&["time"], &[3]);
        a.dtype = DType::I16;
        a.attrs = serde_json::from_value(serde_json::json!({
            "_FillValue": -32768, "missing_value": [-1, -2], "scale_factor": 0.5}))
        .unwrap();
        let d = Decoding::of(a.dtype, &a.attrs);
        assert_eq!(d.decode(-32768.0), None);
        assert_eq!(d.decode(-2.0), None);
        assert_eq!(d.decode(4.0), Some(2.0));
        assert!(d.packed);
        let bytes: Vec<u8> = [1i16, -3].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(as_f64(DType::I16, &Data::Fixed(bytes)), vec![1.0, -3.0]);
        assert_eq!(show_secs(5400.0), "1.5 h");
    }
}
