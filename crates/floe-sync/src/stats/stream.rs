//! The statistics of one file, gathered while its variables stream into the
//! repository: each copied slab passes through a [`Tally`] of its array.

use std::collections::BTreeMap;

use floe_core::model::{DType, Data};
use floe_plan::{ArrayOp, Plan, RepoState, cftime};
use serde_json::{Map, Value};

use super::FileRows;
use super::moments::{Accumulator, Moments};
use super::table::{Row, TimeKind, counted, time_kind};
use floe_core::decoding::Decoding;

/// What one array's stream adds to its file's rows.
#[derive(Debug, Clone)]
pub enum Tally {
    /// Not counted (static, text, a CF time variable).
    Nothing,
    /// A variable's valid values.
    Values { dim: String, path: String, acc: Accumulator },
    /// The append dimension's coordinate: the file's first and last record time.
    Times {
        dim: String,
        kind: TimeKind,
        units: Option<cftime::TimeUnits>,
        dtype: DType,
        decoding: Decoding,
        lo: f64,
        hi: f64,
    },
}

/// What one array's stream learned.
#[derive(Debug, Clone)]
pub enum Tallied {
    Nothing,
    Values { dim: String, path: String, moments: Moments },
    Times { dim: String, kind: TimeKind, lo: f64, hi: f64 },
}

/// The target array's dimension names and attributes: as the plan writes them,
/// else as the repository holds them.
fn dims_and_attrs(op: &ArrayOp, state: &RepoState) -> (Vec<String>, Map<String, Value>) {
    if let Some(m) = &op.metadata {
        let dims = m["dimension_names"]
            .as_array()
            .map(|a| a.iter().map(|d| d.as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default();
        let attrs = m["attributes"].as_object().cloned().unwrap_or_default();
        return (dims, attrs);
    }
    state.arrays.get(&op.path).map(|a| (a.dims.clone(), a.attrs.clone())).unwrap_or_default()
}

impl Tally {
    /// How `op`'s slabs are counted.
    pub fn of(op: &ArrayOp, state: &RepoState) -> Tally {
        let Some(axis) = op.append_axis else { return Tally::Nothing };
        let (dims, attrs) = dims_and_attrs(op, state);
        let Some(dim) = dims.get(axis).cloned() else { return Tally::Nothing };
        let name = op.path.rsplit('/').next().unwrap_or("");
        if dims.len() == 1 && name == dim {
            let (kind, units) = time_kind(Some(&attrs));
            let decoding = Decoding::of(op.dtype, &attrs);
            let (lo, hi) = (f64::INFINITY, f64::NEG_INFINITY);
            return Tally::Times { dim, kind, units, dtype: op.dtype, decoding, lo, hi };
        }
        if !counted(&op.path, &dims, op.dtype, &attrs, &dim) {
            return Tally::Nothing;
        }
        match Accumulator::new(op.dtype, Decoding::of(op.dtype, &attrs)) {
            Some(acc) => Tally::Values { dim, path: op.path.clone(), acc },
            None => Tally::Nothing,
        }
    }

    /// A slab as stored (after any time re-encoding).
    pub fn add(&mut self, data: &Data) {
        match self {
            Tally::Nothing => {}
            Tally::Values { acc, .. } => acc.add_data(data),
            Tally::Times { units, dtype, decoding, lo, hi, .. } => {
                let (Data::Fixed(b), Some(n)) = (data, dtype.size()) else { return };
                for c in b.chunks_exact(n) {
                    let Some(v) = dtype.element_as_f64(c).and_then(|r| decoding.decode(r)) else {
                        continue;
                    };
                    let t = units.map_or(v, |u| cftime::to_unix_seconds(v, u));
                    *lo = lo.min(t);
                    *hi = hi.max(t);
                }
            }
        }
    }

    pub fn finish(self) -> Tallied {
        match self {
            Tally::Nothing => Tallied::Nothing,
            Tally::Values { dim, path, acc } => {
                Tallied::Values { dim, path, moments: acc.finish() }
            }
            Tally::Times { dim, kind, lo, hi, .. } => Tallied::Times { dim, kind, lo, hi },
        }
    }
}

/// A file's rows from what its arrays' streams learned, one per dimension it
/// appended to.
pub fn rows(plan: &Plan, tallies: Vec<Tallied>) -> FileRows {
    let mut rows: BTreeMap<String, (TimeKind, Row)> = BTreeMap::new();
    for (dim, &records) in &plan.records {
        let offset = plan.offsets.get(dim).copied().unwrap_or(0);
        let index = |i: u64| (offset + i) as f64;
        let row = Row {
            offset,
            records,
            t_min: index(0),
            t_max: index(records.saturating_sub(1)),
            vars: BTreeMap::new(),
        };
        rows.insert(dim.clone(), (TimeKind::Index, row));
    }
    for t in tallies {
        match t {
            Tallied::Nothing => {}
            Tallied::Values { dim, path, moments } => {
                if let Some((_, r)) = rows.get_mut(&dim) {
                    r.vars.insert(path, moments);
                }
            }
            Tallied::Times { dim, kind, lo, hi } => {
                if let Some((k, r)) = rows.get_mut(&dim) {
                    *k = kind;
                    (r.t_min, r.t_max) = if lo <= hi { (lo, hi) } else { (f64::NAN, f64::NAN) };
                }
            }
        }
    }
    FileRows { rows }
}
