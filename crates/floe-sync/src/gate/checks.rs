//! The gate's checks, each a pure function of what the staged commits hold (read by
//! [`super::evidence`]): no storage, no clock.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::{Check, Failure, Limits};
use floe_core::decoding::Decoding;

/// What the schema of one array is, for the schema check: the parts a reader's
/// code depends on. Lengths along the append dimensions grow and are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArraySchema {
    pub dtype: String,
    pub dims: Vec<String>,
    /// Length of each dimension; `None` along an append dimension.
    pub shape: Vec<Option<u64>>,
    /// The attributes that change what the values mean (see [`MEANING_ATTRS`]).
    pub attrs: BTreeMap<String, Value>,
}

/// Attributes whose change changes what a value means: a reader that knew the old
/// ones misreads the new values.
pub const MEANING_ATTRS: &[&str] =
    &["units", "calendar", "scale_factor", "add_offset", "_FillValue", "missing_value"];

/// Arrays by absolute path.
pub type Schema = BTreeMap<String, ArraySchema>;

/// How `after` differs from `before`, in words, one entry per array (empty: the
/// same). A branch without arrays yet has no schema to keep.
pub fn schema_changes(before: &Schema, after: &Schema) -> Vec<String> {
    if before.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (path, a) in after {
        let Some(b) = before.get(path) else {
            out.push(format!("new variable `{path}` ({} over {})", a.dtype, a.dims.join(", ")));
            continue;
        };
        let mut what = Vec::new();
        if a.dtype != b.dtype {
            what.push(format!("type {} -> {}", b.dtype, a.dtype));
        }
        if a.dims != b.dims {
            what.push(format!("dimensions ({}) -> ({})", b.dims.join(", "), a.dims.join(", ")));
        } else if a.shape != b.shape {
            what.push(format!("shape {} -> {}", show_shape(&b.shape), show_shape(&a.shape)));
        }
        for k in MEANING_ATTRS {
            let (x, y) = (b.attrs.get(*k), a.attrs.get(*k));
            if x != y {
                what.push(format!("{k} {} -> {}", show(x), show(y)));
            }
        }
        if !what.is_empty() {
            out.push(format!("`{path}`: {}", what.join(", ")));
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        out.push(format!("variable `{path}` is gone"));
    }
    out
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(none)".into(), |v| v.to_string())
}

fn show_shape(s: &[Option<u64>]) -> String {
    let parts: Vec<String> =
        s.iter().map(|n| n.map_or_else(|| "*".into(), |n| n.to_string())).collect();
    format!("({})", parts.join(", "))
}

/// One staged file's record coordinate along one dimension: raw values as the
/// repository stores them, and as seconds since 1970 where they are CF times.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCoords {
    pub file: String,
    pub raw: Vec<f64>,
    pub seconds: Option<Vec<f64>>,
}

/// The first record coordinate a staged file repeats: one the branch already holds
/// (`tail`: its last values; the branch is in record order, so only its end can
/// meet new records) or one an earlier staged record has (the same file's
/// included). `(file, value, already in)`.
pub fn first_duplicate(tail: &[f64], files: &[FileCoords]) -> Option<(String, f64, String)> {
    // -0.0 and 0.0 are one coordinate; NaN is no coordinate at all
    let key = |v: f64| if v == 0.0 { 0u64 } else { v.to_bits() };
    let mut seen: HashMap<u64, &str> = HashMap::new();
    for v in tail.iter().filter(|v| !v.is_nan()) {
        seen.insert(key(*v), "the branch");
    }
    for f in files {
        for v in f.raw.iter().filter(|v| !v.is_nan()) {
            if let Some(other) = seen.insert(key(*v), &f.file) {
                return Some((f.file.clone(), *v, other.to_string()));
            }
        }
    }
    None
}

/// The largest step between consecutive files' records (the branch's last record
/// first, when there is one), if it is over `max`: `(file, gap)`, the file after the
/// gap. Coordinates in seconds.
pub fn gap_over(
    last_before: Option<f64>,
    files: &[(String, f64, f64)],
    max: f64,
) -> Option<(String, f64)> {
    let mut prev = last_before;
    let mut worst: Option<(String, f64)> = None;
    for (file, first, last) in files {
        if let Some(p) = prev {
            let gap = first - p;
            if gap > max && worst.as_ref().is_none_or(|(_, w)| gap > *w) {
                worst = Some((file.clone(), gap));
            }
        }
        prev = Some(prev.map_or(*last, |p| p.max(*last)));
    }
    worst
}

/// A variable's valid range as CF means it, on decoded values: `valid_range`, else
/// `valid_min`/`valid_max`. They are in the stored (packed) units unless the
/// variable is packed and they are written as floats while it stores integers (the
/// type of `scale_factor`, NUG's rule for unpacked units).
pub fn valid_bounds(
    attrs: &serde_json::Map<String, Value>,
    d: &Decoding,
    integers: bool,
) -> Option<Limits> {
    let num = |v: &Value| v.as_f64();
    let (lo, hi, floats) = match attrs.get("valid_range") {
        Some(Value::Array(r)) if r.len() == 2 => {
            (r.first().and_then(num), r.get(1).and_then(num), r.iter().any(Value::is_f64))
        }
        _ => {
            let lo = attrs.get("valid_min");
            let hi = attrs.get("valid_max");
            if lo.is_none() && hi.is_none() {
                return None;
            }
            let floats = lo.is_some_and(Value::is_f64) || hi.is_some_and(Value::is_f64);
            (lo.and_then(num), hi.and_then(num), floats)
        }
    };
    let unpacked = d.packed && integers && floats;
    let decode = |v: f64| if unpacked { v } else { v * d.scale + d.offset };
    let (mut min, mut max) = (lo.map(decode), hi.map(decode));
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        // a negative scale_factor turns the range around
        (min, max) = (Some(b), Some(a));
    }
    Some(Limits { min, max })
}

/// What one file's values of one variable hold, for the value checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueSummary {
    pub values: u64,
    /// Fill, missing or NaN.
    pub empty: u64,
    /// Values outside the bounds checked, and the first of them.
    pub outside: u64,
    pub first_outside: Option<f64>,
}

impl ValueSummary {
    /// Count decoded values (`None`: fill) against `bounds`.
    pub fn add(&mut self, decoded: impl Iterator<Item = Option<f64>>, bounds: Option<&Limits>) {
        for v in decoded {
            self.values += 1;
            match v {
                None => self.empty += 1,
                Some(x) if bounds.is_some_and(|b| !b.holds(x)) => {
                    self.outside += 1;
                    self.first_outside.get_or_insert(x);
                }
                Some(_) => {}
            }
        }
    }

    /// The share of fill, missing and NaN (0 for no values).
    pub fn empty_share(&self) -> f64 {
        if self.values == 0 { 0.0 } else { self.empty as f64 / self.values as f64 }
    }
}

/// The bounds check on one file's summary: a failure naming the variable, the
/// bounds' origin (`check`) and the first value outside.
pub fn outside(
    check: Check,
    file: &str,
    var: &str,
    s: &ValueSummary,
    b: &Limits,
) -> Option<Failure> {
    let first = s.first_outside?;
    let what = format!(
        "{} of {} values of `{var}` are outside {} (the first: {first})",
        s.outside,
        s.values,
        b.show()
    );
    Some(Failure::new(check, file, what))
}

/// The fill check on one file's summary.
pub fn too_empty(file: &str, var: &str, s: &ValueSummary, max: f64) -> Option<Failure> {
    let share = s.empty_share();
    (share > max).then(|| {
        let what = format!(
            "{:.1}% of `{var}` is fill or NaN ({} of {} values; the limit is {:.1}%)",
            share * 100.0,
            s.empty,
            s.values,
            max * 100.0
        );
        Failure::new(Check::Fill, file, what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(dtype: &str, units: &str) -> ArraySchema {
        ArraySchema {
            dtype: dtype.into(),
            dims: vec!["time".into(), "range".into()],
            shape: vec![None, Some(500)],
            attrs: BTreeMap::from([("units".into(), Value::from(units))]),
        }
    }

    #[test]
    fn the_schema_check_names_new_changed_and_gone_variables_and_passes_a_first_commit() {
        let before = Schema::from([("/dbz".into(), array("float32", "dBZ"))]);
        assert!(schema_changes(&before, &before).is_empty());
        assert!(schema_changes(&Schema::new(), &before).is_empty(), "nothing to keep yet");
        let mut after = before.clone();
        after.insert("/zdr".into(), array("float32", "dB"));
        assert_eq!(
            schema_changes(&before, &after),
            ["new variable `/zdr` (float32 over time, range)"]
        );
        let mut after = before.clone();
        after.get_mut("/dbz").unwrap().attrs.insert("units".into(), Value::from("mm6 m-3"));
        after.get_mut("/dbz").unwrap().shape[1] = Some(1000);
        let c = schema_changes(&before, &after);
        assert_eq!(c, ["`/dbz`: shape (*, 500) -> (*, 1000), units \"dBZ\" -> \"mm6 m-3\""]);
        assert_eq!(
            schema_changes(&before, &Schema::from([("/x".into(), array("int16", ""))])).len(),
            2
        );
    }

    fn coords(file: &str, raw: &[f64]) -> FileCoords {
        FileCoords { file: file.into(), raw: raw.to_vec(), seconds: None }
    }

    #[test]
    fn duplicates_are_found_against_the_branch_tail_and_across_and_within_files() {
        let a = coords("a.nc", &[10.0, 11.0]);
        assert_eq!(first_duplicate(&[8.0, 9.0], std::slice::from_ref(&a)), None);
        assert_eq!(
            first_duplicate(&[9.0, 10.0], std::slice::from_ref(&a)),
            Some(("a.nc".into(), 10.0, "the branch".into()))
        );
        let b = coords("b.nc", &[11.0, 12.0]);
        assert_eq!(first_duplicate(&[], &[a, b]), Some(("b.nc".into(), 11.0, "a.nc".into())));
        let c = coords("c.nc", &[1.0, 2.0, 2.0]);
        assert_eq!(first_duplicate(&[], &[c]), Some(("c.nc".into(), 2.0, "c.nc".into())));
        // NaN times are not coordinates; -0 is 0
        assert_eq!(first_duplicate(&[f64::NAN], &[coords("d.nc", &[f64::NAN, 1.0])]), None);
        assert!(first_duplicate(&[0.0], &[coords("e.nc", &[-0.0])]).is_some());
    }

    #[test]
    fn the_largest_gap_over_the_limit_names_the_file_after_it() {
        let files = vec![
            ("a.nc".to_string(), 100.0, 190.0),
            ("b.nc".to_string(), 200.0, 290.0),
            ("c.nc".to_string(), 900.0, 990.0),
        ];
        assert_eq!(gap_over(Some(0.0), &files, 1000.0), None);
        assert_eq!(gap_over(Some(0.0), &files, 300.0), Some(("c.nc".into(), 610.0)));
        assert_eq!(gap_over(None, &files[..2], 5.0), Some(("b.nc".into(), 10.0)));
        assert_eq!(gap_over(Some(-500.0), &files[..1], 550.0), Some(("a.nc".into(), 600.0)));
    }

    fn packed() -> Decoding {
        Decoding { fill: Some(-32768.0), missing: vec![], scale: 0.01, offset: 10.0, packed: true }
    }

    #[test]
    fn valid_bounds_are_in_packed_units_unless_written_as_floats_over_integers() {
        let attrs = |v: Value| serde_json::from_value::<serde_json::Map<String, Value>>(v).unwrap();
        // integers on an int16 packed variable: packed units, decoded for the check
        let b =
            valid_bounds(&attrs(serde_json::json!({"valid_range": [0, 1000]})), &packed(), true);
        assert_eq!(b, Some(Limits { min: Some(10.0), max: Some(20.0) }));
        // floats over integers: the unpacked type, as they are
        let b = valid_bounds(&attrs(serde_json::json!({"valid_max": 35.5})), &packed(), true);
        assert_eq!(b, Some(Limits { min: None, max: Some(35.5) }));
        let plain =
            Decoding { fill: None, missing: vec![], scale: 1.0, offset: 0.0, packed: false };
        let b = valid_bounds(&attrs(serde_json::json!({"valid_min": -5.0})), &plain, false);
        assert_eq!(b, Some(Limits { min: Some(-5.0), max: None }));
        assert_eq!(valid_bounds(&attrs(serde_json::json!({"units": "K"})), &plain, false), None);
        // a negative scale turns the range around
        let neg = Decoding { scale: -1.0, offset: 0.0, ..packed() };
        let b = valid_bounds(&attrs(serde_json::json!({"valid_range": [0, 10]})), &neg, true);
        assert_eq!(b, Some(Limits { min: Some(-10.0), max: Some(0.0) }));
    }

    #[test]
    fn value_summaries_count_fill_and_values_outside() {
        let d = packed();
        let raw = [-32768.0, 0.0, 500.0, 2000.0, f64::NAN];
        let mut s = ValueSummary::default();
        let b = Limits { min: Some(10.0), max: Some(20.0) };
        s.add(raw.iter().map(|r| d.decode(*r)), Some(&b));
        assert_eq!((s.values, s.empty, s.outside, s.first_outside), (5, 2, 1, Some(30.0)));
        let f = outside(Check::ValidRange, "a.nc", "/dbz", &s, &b).unwrap();
        assert!(
            f.what.contains("1 of 5 values of `/dbz` are outside [10, 20] (the first: 30)"),
            "{}",
            f.what
        );
        assert!(too_empty("a.nc", "/dbz", &s, 0.5).is_none());
        let f = too_empty("a.nc", "/dbz", &s, 0.3).unwrap();
        assert!(f.what.starts_with("40.0% of `/dbz` is fill or NaN"), "{}", f.what);
        assert_eq!(ValueSummary::default().empty_share(), 0.0);
    }
}
