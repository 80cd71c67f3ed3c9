//! Statistics computed from what the arrays hold: a whole file's row (rebuilding,
//! after a deletion) or, at a window's edge, a file's records sorted into bins.

use std::collections::BTreeMap;

use floe_core::model::Data;
use floe_plan::{ArrayState, RepoState, cftime};
use floe_store::StoreError;

use super::moments::{Accumulator, Moments};
use super::table::{Arrays, Row, Span, TimeKind, time_kind};
use floe_core::decoding::Decoding;

/// Most elements read at once.
const SLAB: u64 = 4 << 20;

fn f64s(a: &ArrayState, data: &Data) -> Vec<f64> {
    match (data, a.dtype.size()) {
        (Data::Fixed(b), Some(n)) => {
            b.chunks_exact(n).map(|c| a.dtype.element_as_f64(c).unwrap_or(f64::NAN)).collect()
        }
        _ => Vec::new(),
    }
}

/// The records of one group along one dimension, read from `src`.
pub(crate) struct Records<'a, S> {
    pub src: &'a S,
    pub state: &'a RepoState,
    pub group: &'a str,
    pub dim: &'a str,
}

impl<S: Arrays> Records<'_, S> {
    /// The record times of `span` as a row keeps them (see [`TimeKind`]); NaN where
    /// the coordinate holds no value.
    pub(crate) async fn times(&self, span: Span) -> Result<Vec<f64>, StoreError> {
        let Records { src, state, group, dim } = *self;
        let path = floe_plan::join(group, dim);
        let coord = state.arrays.get(&path).filter(|a| a.dims.len() == 1);
        let (kind, units) = time_kind(coord.map(|a| &a.attrs));
        let Some(a) = coord.filter(|_| kind != TimeKind::Index) else {
            return Ok((span.offset..span.offset + span.records).map(|i| i as f64).collect());
        };
        let n = span.records.min(a.shape[0].saturating_sub(span.offset));
        if n == 0 {
            return Ok(Vec::new());
        }
        let raw = f64s(a, &src.slab(&path, &a.metadata, &[span.offset], &[n]).await?);
        let d = Decoding::of(a.dtype, &a.attrs);
        Ok(raw
            .into_iter()
            .map(|r| match (d.decode(r), units) {
                (Some(v), Some(u)) => cftime::to_unix_seconds(v, u),
                (Some(v), None) => v,
                (None, _) => f64::NAN,
            })
            .collect())
    }

    /// A file's row, from the values its records hold now.
    pub(crate) async fn row(&self, span: Span, vars: &[String]) -> Result<Row, StoreError> {
        let t = self.times(span).await?;
        let finite = t.iter().copied().filter(|v| !v.is_nan());
        let t_min = finite.clone().fold(f64::INFINITY, f64::min);
        let t_max = finite.fold(f64::NEG_INFINITY, f64::max);
        let mut out = BTreeMap::new();
        for path in vars {
            let Some(a) = self.state.arrays.get(path) else { continue };
            let Some(mut acc) = Accumulator::new(a.dtype, Decoding::of(a.dtype, &a.attrs)) else {
                continue;
            };
            each_value(self.src, path, a, self.dim, span, |data, _| acc.add_data(data)).await?;
            out.insert(path.clone(), acc.finish());
        }
        Ok(Row { offset: span.offset, records: span.records, t_min, t_max, vars: out })
    }

    /// Sort a file's values of `var` into bins by their record's time: `bin` gives a
    /// time's bin, or `None` outside the window.
    pub(crate) async fn binned(
        &self,
        var: &str,
        span: Span,
        bin: impl Fn(f64) -> Option<usize>,
        into: &mut BTreeMap<usize, Moments>,
    ) -> Result<(), StoreError> {
        let Some(a) = self.state.arrays.get(var) else { return Ok(()) };
        let t = self.times(span).await?;
        let d = Decoding::of(a.dtype, &a.attrs);
        let mut accs: BTreeMap<usize, Accumulator> = BTreeMap::new();
        let size = a.dtype.size().unwrap_or(0);
        let Some(fresh) = Accumulator::new(a.dtype, d.clone()).filter(|_| size > 0) else {
            return Ok(());
        };
        each_value(self.src, var, a, self.dim, span, |data, record| {
            let Data::Fixed(bytes) = data else { return };
            for (i, c) in bytes.chunks_exact(size).enumerate() {
                let r = record(i) as usize;
                let Some(b) = t.get(r).and_then(|tv| bin(*tv)) else { continue };
                let Some(v) = a.dtype.element_as_f64(c).and_then(|raw| d.decode(raw)) else {
                    continue;
                };
                accs.entry(b).or_insert_with(|| fresh.clone()).add_decoded(v);
            }
        })
        .await?;
        for (b, acc) in accs {
            into.entry(b).or_default().merge(&acc.finish());
        }
        Ok(())
    }
}

/// Visit `var`'s stored values over `span`'s records, a slab at a time, with the
/// index (within the span) of the record each value belongs to.
async fn each_value(
    src: &impl Arrays,
    path: &str,
    a: &ArrayState,
    dim: &str,
    span: Span,
    mut visit: impl FnMut(&Data, &dyn Fn(usize) -> u64),
) -> Result<(), StoreError> {
    let Some(ax) = a.dims.iter().position(|d| d == dim) else { return Ok(()) };
    let n = span.records.min(a.shape[ax].saturating_sub(span.offset));
    let per_record: u64 =
        a.shape.iter().enumerate().filter(|(i, _)| *i != ax).map(|(_, k)| *k).product();
    if n == 0 || per_record == 0 {
        return Ok(());
    }
    // elements after the record axis in C order: a value's record is
    // (flat index / inner) % records-in-slab
    let inner: u64 = a.shape[ax + 1..].iter().product();
    let step = (SLAB / per_record).max(1);
    let mut done = 0;
    while done < n {
        let k = step.min(n - done);
        let mut start = vec![0; a.shape.len()];
        let mut count = a.shape.clone();
        start[ax] = span.offset + done;
        count[ax] = k;
        let data = src.slab(path, &a.metadata, &start, &count).await?;
        let base = done;
        let record = move |flat: usize| base + (flat as u64 / inner.max(1)) % k;
        visit(&data, &record);
        done += k;
    }
    Ok(())
}
