//! How a variable's stored values decode, as xarray decodes them (CF): the gate's
//! value checks and the per-file statistics both look at decoded values.

use crate::model::{DType, decode_fill_value};
use serde_json::{Map, Value};

/// How a variable's stored values decode (CF): fill and missing values are no
/// value, then `value * scale_factor + add_offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoding {
    pub fill: Option<f64>,
    pub missing: Vec<f64>,
    pub scale: f64,
    pub offset: f64,
    pub packed: bool,
}

impl Decoding {
    /// How an array with these attributes decodes. (Its attributes in the
    /// repository are JSON, so xarray reads `scale_factor` and `add_offset` as
    /// float64 there and unpacks in float64: so does this.)
    pub fn of(dtype: DType, attrs: &Map<String, Value>) -> Decoding {
        let num = |k: &str| attrs.get(k).and_then(Value::as_f64);
        let fill =
            attrs.get("_FillValue").and_then(|v| decode_fill_value(dtype, v)).map(|s| s.as_f64());
        let missing = match attrs.get("missing_value") {
            Some(Value::Array(vs)) => vs.iter().filter_map(Value::as_f64).collect(),
            Some(v) => v.as_f64().into_iter().collect(),
            None => Vec::new(),
        };
        let (scale, offset) = (num("scale_factor"), num("add_offset"));
        Decoding {
            fill,
            missing,
            scale: scale.unwrap_or(1.0),
            offset: offset.unwrap_or(0.0),
            packed: scale.is_some() || offset.is_some(),
        }
    }

    /// The decoded value, `None` for fill, missing and NaN.
    pub fn decode(&self, raw: f64) -> Option<f64> {
        if raw.is_nan() || self.fill == Some(raw) || self.missing.contains(&raw) {
            return None;
        }
        // xarray multiplies, then adds: `* 1.0` and `+ 0.0` change no value
        Some(raw * self.scale + self.offset)
    }
}
