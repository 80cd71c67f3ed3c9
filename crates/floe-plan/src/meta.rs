use floe_core::model::{DType, Scalar};
use serde_json::{Map, Value, json};

/// NetCDF's default fill value for a type: what an unwritten record of a variable
/// without `_FillValue` reads as in NetCDF, and so in the repository.
fn default_fill(dtype: DType) -> Value {
    match dtype {
        DType::Bool => json!(false),
        DType::I8 => json!(-127),
        DType::U8 => json!(255),
        DType::I16 => json!(-32767),
        DType::U16 => json!(65535),
        DType::I32 => json!(-2147483647),
        DType::U32 => json!(4294967295u64),
        DType::I64 => json!(-9223372036854775806i64),
        DType::U64 => json!(18446744073709551614u64),
        DType::F32 | DType::F64 => json!("NaN"),
        DType::Str => json!(""),
    }
}

fn fill_json(dtype: DType, fill: &Scalar) -> Value {
    match (dtype, fill) {
        (DType::Str, Scalar::Text(s)) => json!(s),
        (DType::Bool, s) => json!(s.as_f64() != 0.0),
        (DType::F32 | DType::F64, s) => {
            let f = s.as_f64();
            if f.is_nan() {
                json!("NaN")
            } else if f == f64::INFINITY {
                json!("Infinity")
            } else if f == f64::NEG_INFINITY {
                json!("-Infinity")
            } else if dtype == DType::F32 {
                // the float32 value itself, so that zarr readers see it bit for bit
                json!(f64::from(f as f32))
            } else {
                json!(f)
            }
        }
        (_, Scalar::Int(i)) => json!(i),
        (_, Scalar::UInt(u)) => json!(u),
        (_, s) => json!(s.as_f64() as i64),
    }
}

/// The fill value recorded in an array's `_FillValue` attribute, if any.
fn fill_from_attrs(dtype: DType, attrs: &Map<String, Value>) -> Option<Value> {
    floe_core::model::decode_fill_value(dtype, attrs.get("_FillValue")?)
        .map(|s| fill_json(dtype, &s))
}

/// The Zarr v3 `zarr.json` of an array Floe writes: little-endian bytes + zstd (or
/// vlen-utf8 + zstd for text), `/`-separated chunk keys, xarray's dimension names and
/// attributes, and the fill value that makes unwritten records read as missing.
pub fn array_metadata(
    shape: &[u64],
    chunks: &[u64],
    dtype: DType,
    dims: &[String],
    attrs: &Map<String, Value>,
    fill: Option<&Scalar>,
) -> Value {
    let fill_value = fill
        .map(|f| fill_json(dtype, f))
        .or_else(|| fill_from_attrs(dtype, attrs))
        .unwrap_or_else(|| default_fill(dtype));
    let codecs = if dtype == DType::Str {
        json!([{"name": "vlen-utf8"}, {"name": "zstd", "configuration": {"level": 3, "checksum": false}}])
    } else {
        json!([
            {"name": "bytes", "configuration": {"endian": "little"}},
            {"name": "zstd", "configuration": {"level": 3, "checksum": false}}
        ])
    };
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype.zarr_name(),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value,
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": dims,
        "storage_transformers": []
    })
}

/// The `zarr.json` of a group.
pub fn group_metadata(attrs: &Map<String, Value>) -> Value {
    json!({"zarr_format": 3, "node_type": "group", "attributes": attrs})
}
