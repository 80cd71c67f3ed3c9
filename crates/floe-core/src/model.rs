//! The description of a source file, independent of its format.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// The on-disk format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    Netcdf3Classic,
    Netcdf3Offset64,
    Netcdf3Cdf5,
    Netcdf4,
    Netcdf4Classic,
    ZarrV2,
    ZarrV3,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Netcdf3Classic => "netcdf3-classic",
            SourceFormat::Netcdf3Offset64 => "netcdf3-64bit-offset",
            SourceFormat::Netcdf3Cdf5 => "netcdf3-cdf5",
            SourceFormat::Netcdf4 => "netcdf4",
            SourceFormat::Netcdf4Classic => "netcdf4-classic",
            SourceFormat::ZarrV2 => "zarr-v2",
            SourceFormat::ZarrV3 => "zarr-v3",
        }
    }
}

/// Element type of a variable, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    /// Variable-length UTF-8 text.
    Str,
}

impl DType {
    /// Bytes per element; `None` for variable-length strings.
    pub fn size(self) -> Option<usize> {
        match self {
            DType::Bool | DType::I8 | DType::U8 => Some(1),
            DType::I16 | DType::U16 => Some(2),
            DType::I32 | DType::U32 | DType::F32 => Some(4),
            DType::I64 | DType::U64 | DType::F64 => Some(8),
            DType::Str => None,
        }
    }

    /// The Zarr v3 `data_type` name.
    pub fn zarr_name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::Str => "string",
        }
    }

    /// Parse a Zarr v3 `data_type` name.
    pub fn from_zarr_name(name: &str) -> Option<Self> {
        Some(match name {
            "bool" => DType::Bool,
            "int8" => DType::I8,
            "int16" => DType::I16,
            "int32" => DType::I32,
            "int64" => DType::I64,
            "uint8" => DType::U8,
            "uint16" => DType::U16,
            "uint32" => DType::U32,
            "uint64" => DType::U64,
            "float32" => DType::F32,
            "float64" => DType::F64,
            "string" => DType::Str,
            _ => return None,
        })
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Decode one little-endian element, typed as stored (integers stay exact).
    pub fn element(self, bytes: &[u8]) -> Option<Scalar> {
        macro_rules! le {
            ($t:ty, $n:expr) => {
                <$t>::from_le_bytes(bytes.get(..$n)?.try_into().ok()?)
            };
        }
        Some(match self {
            DType::I8 => Scalar::Int(le!(i8, 1).into()),
            DType::I16 => Scalar::Int(le!(i16, 2).into()),
            DType::I32 => Scalar::Int(le!(i32, 4).into()),
            DType::I64 => Scalar::Int(le!(i64, 8)),
            DType::Bool | DType::U8 => Scalar::UInt(le!(u8, 1).into()),
            DType::U16 => Scalar::UInt(le!(u16, 2).into()),
            DType::U32 => Scalar::UInt(le!(u32, 4).into()),
            DType::U64 => Scalar::UInt(le!(u64, 8)),
            DType::F32 => Scalar::Float(le!(f32, 4).into()),
            DType::F64 => Scalar::Float(le!(f64, 8)),
            DType::Str => return None,
        })
    }

    /// Decode one little-endian element as f64 (for coordinate checks).
    pub fn element_as_f64(self, bytes: &[u8]) -> Option<f64> {
        self.element(bytes).map(|s| s.as_f64())
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.zarr_name())
    }
}

/// How a variable was stored in its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum VarKind {
    /// Plain fixed-size values.
    Plain,
    /// NetCDF `char` array whose last dimension (`strlen_dim`) holds the characters;
    /// Floe stores it as a string array without that dimension.
    CharArray { strlen_dim: String },
    /// NetCDF-4 enum, stored as its base integers (the mapping in `flag_values` and
    /// `flag_meanings`).
    Enum,
}

/// A dimension of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dim {
    pub name: String,
    pub size: u64,
    pub unlimited: bool,
}

/// A variable (array) of a source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub name: String,
    /// Dimension names, outermost first (after dropping a char array's string dimension).
    pub dims: Vec<String>,
    pub shape: Vec<u64>,
    pub dtype: DType,
    /// Attributes in the form xarray writes them to Zarr (JSON; `_FillValue` encoded
    /// the way xarray's Zarr backend encodes it).
    pub attrs: Map<String, Value>,
    /// The source's own chunk shape, when it has one.
    pub chunks: Option<Vec<u64>>,
    pub kind: VarKind,
    /// The declared fill value (`_FillValue`), typed as stored.
    #[serde(skip)]
    pub fill_value: Option<Scalar>,
}

impl Variable {
    /// Bytes per element when fixed-size.
    pub fn itemsize(&self) -> Option<usize> {
        self.dtype.size()
    }
}

/// A group: the root (`/`) or a nested NetCDF-4/Zarr group (`/inner`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// `/` for the root, otherwise `/a/b`.
    pub path: String,
    pub attrs: Map<String, Value>,
    pub dims: Vec<Dim>,
    pub variables: Vec<Variable>,
}

impl Group {
    pub fn dim(&self, name: &str) -> Option<&Dim> {
        self.dims.iter().find(|d| d.name == name)
    }
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }
}

/// A whole source file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dataset {
    pub format: SourceFormat,
    pub groups: Vec<Group>,
}

impl Dataset {
    /// Names of unlimited (record) dimensions anywhere in the file, in first-seen order.
    pub fn unlimited_dims(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in &self.groups {
            for d in g.dims.iter().filter(|d| d.unlimited) {
                if !out.contains(&d.name) {
                    out.push(d.name.clone());
                }
            }
        }
        out
    }

    pub fn group(&self, path: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.path == path)
    }
}

/// Values read from a source.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Little-endian fixed-size elements, C order.
    Fixed(Vec<u8>),
    /// One string per element, C order.
    Strings(Vec<String>),
}

impl Data {
    pub fn len_bytes(&self) -> usize {
        match self {
            Data::Fixed(b) => b.len(),
            Data::Strings(s) => s.iter().map(String::len).sum(),
        }
    }
}

/// Encode a `_FillValue` attribute the way xarray's Zarr backend does, so that xarray
/// reading the repository masks exactly what it masks when reading the source:
/// floats as base64 of the little-endian float64 bytes, integers as JSON integers.
pub fn encode_fill_value(dtype: DType, value: Scalar) -> Value {
    match (dtype, value) {
        (DType::F32 | DType::F64, v) => Value::String(
            base64::engine::general_purpose::STANDARD.encode(v.as_f64().to_le_bytes()),
        ),
        (DType::Bool, v) => Value::Bool(v.as_f64() != 0.0),
        (DType::Str, Scalar::Text(s)) => Value::String(s),
        (DType::Str, _) => Value::String(String::new()),
        (_, Scalar::Int(i)) => Value::from(i),
        (_, Scalar::UInt(u)) => Value::from(u),
        (_, Scalar::Float(f)) => {
            if f < 0.0 {
                Value::from(f as i64)
            } else {
                Value::from(f as u64)
            }
        }
        (_, Scalar::Text(_)) => Value::Null,
    }
}

/// A JSON fill value as Zarr metadata writes it (numbers, `"NaN"`, `"Infinity"`).
pub fn scalar_from_json(v: &Value) -> Option<Scalar> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(Scalar::Int)
            .or_else(|| n.as_u64().map(Scalar::UInt))
            .or_else(|| n.as_f64().map(Scalar::Float)),
        Value::String(s) if s == "NaN" => Some(Scalar::Float(f64::NAN)),
        Value::String(s) if s == "Infinity" => Some(Scalar::Float(f64::INFINITY)),
        Value::String(s) if s == "-Infinity" => Some(Scalar::Float(f64::NEG_INFINITY)),
        _ => None,
    }
}

/// Decode a `_FillValue` attribute as xarray's Zarr backend writes it (the inverse of
/// [`encode_fill_value`]).
pub fn decode_fill_value(dtype: DType, v: &Value) -> Option<Scalar> {
    match v {
        Value::String(s) if dtype.is_float() => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            let arr: [u8; 8] = bytes.as_slice().try_into().ok()?;
            Some(Scalar::Float(f64::from_le_bytes(arr)))
        }
        Value::String(s) if dtype == DType::Str => Some(Scalar::Text(s.clone())),
        Value::Bool(b) => Some(Scalar::Int(i64::from(*b))),
        other => scalar_from_json(other),
    }
}

/// One attribute value, typed as the source stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub fn as_f64(&self) -> f64 {
        match self {
            Scalar::Int(i) => *i as f64,
            Scalar::UInt(u) => *u as f64,
            Scalar::Float(f) => *f,
            Scalar::Text(_) => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_values_match_xarray_encoding() {
        // xarray: base64.standard_b64encode(struct.pack("<d", nan)) == "AAAAAAAA+H8="
        assert_eq!(
            encode_fill_value(DType::F32, Scalar::Float(f64::NAN)),
            Value::from("AAAAAAAA+H8=")
        );
        assert_eq!(encode_fill_value(DType::I16, Scalar::Int(-32767)), Value::from(-32767));
        assert_eq!(
            encode_fill_value(DType::U64, Scalar::UInt(18446744073709551614)),
            Value::from(18446744073709551614u64)
        );
    }

    #[test]
    fn fill_values_round_trip_through_xarray_encoding() {
        for (dt, v) in [
            (DType::F32, Scalar::Float(-9999.0)),
            (DType::F64, Scalar::Float(f64::INFINITY)),
            (DType::I16, Scalar::Int(-32767)),
            (DType::U64, Scalar::UInt(u64::MAX - 1)),
        ] {
            assert_eq!(decode_fill_value(dt, &encode_fill_value(dt, v.clone())), Some(v));
        }
        let nan =
            decode_fill_value(DType::F32, &encode_fill_value(DType::F32, Scalar::Float(f64::NAN)));
        assert!(matches!(nan, Some(Scalar::Float(x)) if x.is_nan()));
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in [DType::I8, DType::U16, DType::F64, DType::Str, DType::Bool] {
            assert_eq!(DType::from_zarr_name(d.zarr_name()), Some(d));
        }
        assert_eq!(DType::I32.element_as_f64(&(-5i32).to_le_bytes()), Some(-5.0));
    }
}
