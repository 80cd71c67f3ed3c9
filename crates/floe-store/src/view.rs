//! A read-only look at a branch tip: which variables it holds and the most recent
//! records of one of them (the GUI's "do the data look right?" plot).

use serde::Serialize;

use crate::{Repo, StoreError, Writer};
use floe_source::{DType, Data};

/// One array of a branch, as a user picks it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Variable {
    /// Path in the repository, e.g. `temperature` or `site_a/temperature`.
    pub path: String,
    pub dims: Vec<String>,
    pub shape: Vec<u64>,
    pub units: Option<String>,
    pub long_name: Option<String>,
}

/// The last records of a variable along its first dimension, each reduced to one
/// number (the mean over its other dimensions, fill values left out).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    pub path: String,
    pub dim: String,
    pub units: Option<String>,
    /// Record positions along `dim` (index of the first one shown, then one each).
    pub first_index: u64,
    /// Unix seconds of each record when `dim` has a CF time coordinate, else empty.
    pub times: Vec<f64>,
    /// One value per record; `None` when the record is all fill. A variable with
    /// more dimensions than the record one gives the mean of each record's valid
    /// values (fill values and NaN left out, as xarray's `mean(skipna=True)`).
    pub values: Vec<Option<f64>>,
    /// The dimensions averaged over in each record (empty for a 1-D variable).
    pub reduced: Vec<String>,
}

/// A branch tip opened for reading.
#[derive(Debug)]
pub struct View {
    inner: Writer,
}

fn attr_str(attrs: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    attrs.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

/// Each element of `bytes` as a number.
fn numbers(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    let Some(size) = dtype.size() else { return Vec::new() };
    bytes.chunks_exact(size).map(|b| dtype.element_as_f64(b).unwrap_or(f64::NAN)).collect()
}

impl Repo {
    /// The tip of `branch`, read-only.
    pub async fn view(&self, branch: &str) -> Result<View, StoreError> {
        if !self.has_branch(branch).await? {
            return Err(StoreError::NoBranch {
                repo: self.label.clone(),
                branch: branch.to_string(),
            });
        }
        let session = self
            .inner
            .readonly_session(&icechunk::repository::VersionInfo::BranchTipRef(branch.into()))
            .await
            .map_err(|e| crate::remote::classify_error(&self.label, &e))?;
        let base = session.snapshot_id().to_string();
        let inner = Writer::new(session, branch, &self.label, Default::default(), &base, None);
        Ok(View { inner })
    }
}

impl View {
    /// The numeric arrays with at least one dimension, coordinates of their own
    /// dimension left out.
    pub async fn variables(&self) -> Result<Vec<Variable>, StoreError> {
        let state = self.inner.state("/", &[]).await?;
        let mut out = Vec::new();
        for (path, a) in &state.arrays {
            let name = path.rsplit('/').next().unwrap_or("");
            let is_coord = a.dims.len() == 1 && a.dims[0] == name;
            if a.dims.is_empty() || is_coord || a.dtype.size().is_none() {
                continue;
            }
            out.push(Variable {
                path: path.trim_start_matches('/').to_string(),
                dims: a.dims.clone(),
                shape: a.shape.clone(),
                units: attr_str(&a.attrs, "units"),
                long_name: attr_str(&a.attrs, "long_name"),
            });
        }
        Ok(out)
    }

    /// The last `n` records of `path` (see [`Series`]).
    pub async fn tail(&self, path: &str, n: u64) -> Result<Series, StoreError> {
        let path = format!("/{}", path.trim_start_matches('/'));
        let state = self.inner.state("/", &[]).await?;
        let Some(a) = state.arrays.get(&path) else {
            return Err(StoreError::Array {
                path: path.clone(),
                detail: "no such variable on this branch; pick one from the list".into(),
            });
        };
        let Some(len) = a.shape.first().copied() else {
            return Err(StoreError::Array {
                path: path.clone(),
                detail: "a scalar has no records to plot".into(),
            });
        };
        let take = n.min(len);
        let first = len - take;
        let mut start = vec![0; a.shape.len()];
        start[0] = first;
        let mut count = a.shape.clone();
        count[0] = take;
        let data = self.inner.read(&path, &a.metadata, &start, &count).await?;
        let Data::Fixed(bytes) = data else {
            return Err(StoreError::Array {
                path: path.clone(),
                detail: "holds text, which cannot be plotted".into(),
            });
        };
        let raw = numbers(a.dtype, &bytes);
        // as xarray decodes (the _FillValue as its Zarr backend writes it, every
        // missing_value, then scale and offset), as the gate and the statistics do
        let decoding = floe_core::decoding::Decoding::of(a.dtype, &a.attrs);
        let per = raw.len().checked_div(take as usize).unwrap_or(0);
        let values = (0..take as usize)
            .map(|r| {
                let row = &raw[r * per..(r + 1) * per];
                let ok: Vec<f64> = row
                    .iter()
                    .filter_map(|v| decoding.decode(*v))
                    .filter(|v| v.is_finite())
                    .collect();
                (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64)
            })
            .collect();
        let dim = a.dims.first().cloned().unwrap_or_default();
        let times = self.times(&state, &dim, first, take).await.unwrap_or_default();
        Ok(Series {
            path: path.trim_start_matches('/').to_string(),
            dim,
            units: attr_str(&a.attrs, "units"),
            first_index: first,
            times,
            values,
            reduced: a.dims.iter().skip(1).cloned().collect(),
        })
    }

    /// Unix seconds of records `first..first+n` of `dim`, when it has a CF time
    /// coordinate in the standard calendar.
    async fn times(
        &self,
        state: &floe_plan::RepoState,
        dim: &str,
        first: u64,
        n: u64,
    ) -> Option<Vec<f64>> {
        let (path, a) = state.arrays.iter().find(|(p, a)| {
            a.dims.len() == 1 && a.dims[0] == dim && p.rsplit('/').next() == Some(dim)
        })?;
        let units = floe_plan::cftime::parse_units(&attr_str(&a.attrs, "units")?)?;
        if !floe_plan::cftime::is_gregorian(attr_str(&a.attrs, "calendar").as_deref()) {
            return None;
        }
        let Data::Fixed(bytes) = self.inner.read(path, &a.metadata, &[first], &[n]).await.ok()?
        else {
            return None;
        };
        Some(
            numbers(a.dtype, &bytes)
                .into_iter()
                .map(|v| floe_plan::cftime::to_unix_seconds(v, units))
                .collect(),
        )
    }
}
