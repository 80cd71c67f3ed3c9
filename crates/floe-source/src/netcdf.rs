//! NetCDF-3 and NetCDF-4/HDF5 through the pure-Rust `netcdf-reader`.
//!
//! Files are read with positional reads (no memory map, no HDF5 file lock), so an
//! instrument that re-opens its file for append is never disturbed, and a file that
//! shrinks under us gives an error rather than a crash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use netcdf_reader::{
    FileStorage, NcAttrValue, NcAttribute, NcFile, NcFormat, NcGroup, NcOpenOptions, NcSliceInfo,
    NcSliceInfoElem, NcType, NcVariable,
};
use serde_json::{Map, Value};

use crate::{SourceError, SourceReader};
use floe_core::model::{
    DType, Data, Dataset, Dim, Group, Scalar, SourceFormat, VarKind, Variable, encode_fill_value,
};

/// Attributes that belong to the NetCDF/HDF5 machinery, not to the data. xarray
/// does not show them either.
const HIDDEN_ATTRS: &[&str] = &[
    "_NCProperties",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_SuperblockVersion",
    "_IsNetcdf4",
    "_nc3_strict",
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
];

pub(crate) struct NetcdfSource {
    path: PathBuf,
    file: NcFile,
    dataset: Dataset,
}

impl std::fmt::Debug for NetcdfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcdfSource").field("path", &self.path).finish_non_exhaustive()
    }
}

pub(crate) fn map_err(path: &Path, e: netcdf_reader::Error) -> SourceError {
    use netcdf_reader::Error as E;
    match e {
        E::Io(io) => SourceError::io(path, io),
        E::InvalidMagic | E::UnsupportedVersion(_) => SourceError::NotNetcdf(path.to_path_buf()),
        E::UnsupportedFeature(detail) => SourceError::Unsupported {
            path: path.to_path_buf(),
            detail: format!("{detail}; this NetCDF feature is not supported, convert the file"),
        },
        other => SourceError::Corrupt { path: path.to_path_buf(), detail: other.to_string() },
    }
}

impl NetcdfSource {
    pub(crate) fn open(path: &Path) -> Result<Self, SourceError> {
        let storage = FileStorage::open(path).map_err(|e| match e {
            hdf5_reader::error::Error::Io(io) => SourceError::io(path, io),
            other => SourceError::Corrupt { path: path.to_path_buf(), detail: other.to_string() },
        })?;
        let options = NcOpenOptions { chunk_cache_bytes: 16 * 1024 * 1024, ..Default::default() };
        let file = NcFile::from_storage_with_options(Arc::new(storage), options)
            .map_err(|e| map_err(path, e))?;
        let format = match file.format() {
            NcFormat::Classic => SourceFormat::Netcdf3Classic,
            NcFormat::Offset64 => SourceFormat::Netcdf3Offset64,
            NcFormat::Cdf5 => SourceFormat::Netcdf3Cdf5,
            NcFormat::Nc4 => SourceFormat::Netcdf4,
            NcFormat::Nc4Classic => SourceFormat::Netcdf4Classic,
        };
        let root = file.root_group().map_err(|e| map_err(path, e))?;
        let mut groups = Vec::new();
        collect_groups(path, root, "/", &mut groups)?;
        Ok(NetcdfSource { path: path.to_path_buf(), dataset: Dataset { format, groups }, file })
    }

    fn var_path(group: &str, variable: &str) -> String {
        let g = group.trim_matches('/');
        if g.is_empty() { variable.to_string() } else { format!("{g}/{variable}") }
    }
}

fn collect_groups(
    path: &Path,
    group: &NcGroup,
    group_path: &str,
    out: &mut Vec<Group>,
) -> Result<(), SourceError> {
    let mut dims: Vec<Dim> = group
        .dimensions
        .iter()
        .map(|d| Dim { name: d.name.clone(), size: d.size, unlimited: d.is_unlimited })
        .collect();
    let mut variables = Vec::new();
    for v in &group.variables {
        // dimensions inherited from parent groups become visible here too
        for d in &v.dimensions {
            if !dims.iter().any(|x| x.name == d.name) {
                dims.push(Dim { name: d.name.clone(), size: d.size, unlimited: d.is_unlimited });
            }
        }
        variables.push(convert_variable(path, v)?);
    }
    out.push(Group {
        path: group_path.to_string(),
        attrs: convert_attrs(&group.attributes, None),
        dims,
        variables,
    });
    for child in &group.groups {
        let child_path = if group_path == "/" {
            format!("/{}", child.name)
        } else {
            format!("{group_path}/{}", child.name)
        };
        collect_groups(path, child, &child_path, out)?;
    }
    Ok(())
}

fn convert_variable(path: &Path, v: &NcVariable) -> Result<Variable, SourceError> {
    let unsupported = || SourceError::UnsupportedType {
        path: path.to_path_buf(),
        variable: v.name.clone(),
        dtype: type_name(&v.dtype),
    };
    let mut dims: Vec<String> = v.dimensions.iter().map(|d| d.name.clone()).collect();
    let mut shape: Vec<u64> = v.dimensions.iter().map(|d| d.size).collect();
    let mut kind = VarKind::Plain;
    let mut enum_attrs = None;
    let base_type = match &v.dtype {
        // an enum is stored as its integer values, the mapping in CF's
        // flag_values / flag_meanings (xarray reads it as the base integers too)
        NcType::Enum { base, members } => {
            enum_attrs = Some(enum_flags(members));
            kind = VarKind::Enum;
            base.as_ref()
        }
        other => other,
    };
    let dtype = match base_type {
        NcType::Byte => DType::I8,
        NcType::UByte => DType::U8,
        NcType::Short => DType::I16,
        NcType::UShort => DType::U16,
        NcType::Int => DType::I32,
        NcType::UInt => DType::U32,
        NcType::Int64 => DType::I64,
        NcType::UInt64 => DType::U64,
        NcType::Float => DType::F32,
        NcType::Double => DType::F64,
        NcType::String => DType::Str,
        NcType::Char => {
            if let Some(last) = dims.pop() {
                shape.pop();
                kind = VarKind::CharArray { strlen_dim: last };
            }
            DType::Str
        }
        NcType::Enum { .. }
        | NcType::Compound { .. }
        | NcType::Opaque { .. }
        | NcType::Array { .. }
        | NcType::VLen { .. } => return Err(unsupported()),
    };
    let mut attrs = convert_attrs(&v.attributes, Some(dtype));
    if let Some((values, meanings)) = enum_attrs {
        attrs.entry("flag_values").or_insert(values);
        attrs.entry("flag_meanings").or_insert(meanings);
    }
    Ok(Variable {
        name: v.name.clone(),
        dims,
        shape,
        dtype,
        attrs,
        chunks: None,
        kind,
        fill_value: v.attribute("_FillValue").and_then(|a| scalars(&a.value).into_iter().next()),
    })
}

/// A NetCDF type as a person names it (for messages).
fn type_name(t: &NcType) -> String {
    match t {
        NcType::Byte => "byte".into(),
        NcType::UByte => "ubyte".into(),
        NcType::Short => "short".into(),
        NcType::UShort => "ushort".into(),
        NcType::Int => "int".into(),
        NcType::UInt => "uint".into(),
        NcType::Int64 => "int64".into(),
        NcType::UInt64 => "uint64".into(),
        NcType::Float => "float".into(),
        NcType::Double => "double".into(),
        NcType::Char => "char".into(),
        NcType::String => "string".into(),
        NcType::Enum { base, .. } => format!("enum of {}", type_name(base)),
        NcType::Compound { fields, .. } => format!(
            "compound {{{}}}",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name, type_name(&f.dtype)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        NcType::Opaque { size, .. } => format!("opaque ({size} bytes)"),
        NcType::Array { base, dims } => format!("array {dims:?} of {}", type_name(base)),
        NcType::VLen { base } => format!("vlen of {}", type_name(base)),
    }
}

/// CF's `flag_values` and `flag_meanings` for an enum's members (a member name
/// with spaces gets underscores: meanings are separated by blanks).
fn enum_flags(members: &[netcdf_reader::NcEnumMember]) -> (Value, Value) {
    let values = members
        .iter()
        .map(|m| match m.value.as_i128().and_then(|v| i64::try_from(v).ok()) {
            Some(i) => Value::from(i),
            None => Value::from(m.value.as_i128().and_then(|v| u64::try_from(v).ok())),
        })
        .collect();
    let meanings: Vec<String> = members.iter().map(|m| m.name.replace(' ', "_")).collect();
    (Value::Array(values), Value::from(meanings.join(" ")))
}

fn scalars(value: &NcAttrValue) -> Vec<Scalar> {
    fn ints<T: Copy + Into<i64>>(v: &[T]) -> Vec<Scalar> {
        v.iter().map(|&x| Scalar::Int(x.into())).collect()
    }
    fn uints<T: Copy + Into<u64>>(v: &[T]) -> Vec<Scalar> {
        v.iter().map(|&x| Scalar::UInt(x.into())).collect()
    }
    match value {
        NcAttrValue::Bytes(v) => ints(v),
        NcAttrValue::Shorts(v) => ints(v),
        NcAttrValue::Ints(v) => ints(v),
        NcAttrValue::Int64s(v) => ints(v),
        NcAttrValue::UBytes(v) => uints(v),
        NcAttrValue::UShorts(v) => uints(v),
        NcAttrValue::UInts(v) => uints(v),
        NcAttrValue::UInt64s(v) => uints(v),
        NcAttrValue::Floats(v) => v.iter().map(|&x| Scalar::Float(f64::from(x))).collect(),
        NcAttrValue::Doubles(v) => v.iter().map(|&x| Scalar::Float(x)).collect(),
        NcAttrValue::Chars(s) => vec![Scalar::Text(s.trim_end_matches('\0').to_string())],
        NcAttrValue::Strings(v) => v.iter().map(|s| Scalar::Text(s.clone())).collect(),
        NcAttrValue::UserDefined { values, .. } => {
            values.iter().map(|v| Scalar::Text(format!("{v:?}"))).collect()
        }
    }
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Int(i) => Value::from(*i),
        Scalar::UInt(u) => Value::from(*u),
        Scalar::Float(f) if f.is_finite() => Value::from(*f),
        Scalar::Float(f) if f.is_nan() => Value::from("NaN"),
        Scalar::Float(f) if *f > 0.0 => Value::from("Infinity"),
        Scalar::Float(_) => Value::from("-Infinity"),
        Scalar::Text(t) => Value::from(t.clone()),
    }
}

/// Convert attributes to the JSON xarray writes: one value as a scalar, several as a
/// list, `_FillValue` in xarray's Zarr encoding for the variable's type.
fn convert_attrs(attrs: &[NcAttribute], dtype: Option<DType>) -> Map<String, Value> {
    let mut out = Map::new();
    for a in attrs {
        if HIDDEN_ATTRS.contains(&a.name.as_str()) {
            continue;
        }
        let vals = scalars(&a.value);
        if a.name == "_FillValue" && dtype == Some(DType::Str) {
            // xarray's Zarr reader refuses a `_FillValue` attribute on a string
            // array (the whole store fails to open); the array's own fill value
            // carries it
            continue;
        }
        let value = match (a.name.as_str(), dtype, vals.as_slice()) {
            ("_FillValue", Some(dt), [one]) => encode_fill_value(dt, one.clone()),
            (_, _, [one]) => scalar_json(one),
            (_, _, many) => Value::Array(many.iter().map(scalar_json).collect()),
        };
        out.insert(a.name.clone(), value);
    }
    out
}

fn selection(start: &[u64], count: &[u64]) -> NcSliceInfo {
    NcSliceInfo {
        selections: start
            .iter()
            .zip(count)
            .map(|(&s, &c)| NcSliceInfoElem::Slice { start: s, end: s + c, step: 1 })
            .collect(),
    }
}

macro_rules! read_fixed {
    ($file:expr, $name:expr, $scalar:expr, $sel:expr, $t:ty) => {{
        let arr: ndarray::ArrayD<$t> = if $scalar {
            $file.read_variable::<$t>($name)
        } else {
            $file.read_variable_slice::<$t>($name, $sel)
        }?;
        let std = arr.as_standard_layout();
        match std.as_slice() {
            Some(s) => bytemuck::cast_slice::<$t, u8>(s).to_vec(),
            None => std.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }};
}

/// Take the C-order hyperslab `start..start+count` out of a full array of `shape`.
pub(crate) fn slice_strings(
    all: Vec<String>,
    shape: &[u64],
    start: &[u64],
    count: &[u64],
) -> Vec<String> {
    hyperslab(all, shape, start, count)
}

/// [`slice_strings`] for fixed-size elements of `size` bytes.
fn slice_bytes(all: &[u8], size: usize, shape: &[u64], start: &[u64], count: &[u64]) -> Vec<u8> {
    let items: Vec<&[u8]> = all.chunks_exact(size.max(1)).collect();
    hyperslab(items, shape, start, count).concat()
}

fn hyperslab<T: Clone + Default>(
    all: Vec<T>,
    shape: &[u64],
    start: &[u64],
    count: &[u64],
) -> Vec<T> {
    if shape.is_empty() || (start.iter().all(|&s| s == 0) && count == shape) {
        return all;
    }
    let n: u64 = count.iter().product();
    let mut out = Vec::with_capacity(n as usize);
    let mut idx = vec![0u64; count.len()];
    for _ in 0..n {
        let mut flat = 0u64;
        for d in 0..shape.len() {
            flat = flat * shape[d] + start[d] + idx[d];
        }
        out.push(all.get(flat as usize).cloned().unwrap_or_default());
        for d in (0..count.len()).rev() {
            idx[d] += 1;
            if idx[d] < count[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

impl SourceReader for NetcdfSource {
    fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    fn read(
        &self,
        group: &str,
        variable: &str,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, SourceError> {
        let var =
            self.dataset.group(group).and_then(|g| g.variable(variable)).ok_or_else(|| {
                SourceError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("variable {group}/{variable} vanished while reading"),
                }
            })?;
        let name = Self::var_path(group, variable);
        let scalar = var.shape.is_empty();
        let sel = selection(start, count);
        let f = &self.file;
        let read = || -> Result<Data, netcdf_reader::Error> {
            if var.kind == VarKind::Enum {
                // the typed reads refuse an enum; its bytes are the base integers
                let all = f.read_variable_native_bytes(&name)?;
                let size = var.dtype.size().unwrap_or(1);
                return Ok(Data::Fixed(slice_bytes(&all, size, &var.shape, start, count)));
            }
            Ok(match var.dtype {
                DType::I8 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, i8)),
                DType::U8 | DType::Bool => Data::Fixed(read_fixed!(f, &name, scalar, &sel, u8)),
                DType::I16 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, i16)),
                DType::U16 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, u16)),
                DType::I32 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, i32)),
                DType::U32 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, u32)),
                DType::I64 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, i64)),
                DType::U64 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, u64)),
                DType::F32 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, f32)),
                DType::F64 => Data::Fixed(read_fixed!(f, &name, scalar, &sel, f64)),
                DType::Str => {
                    let all = f.read_variable_as_strings(&name)?;
                    Data::Strings(slice_strings(all, &var.shape, start, count))
                }
            })
        };
        read().map_err(|e| map_err(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hyperslab_in_c_order() {
        let all: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        // shape 2x3, take row 1, columns 1..3
        let got = slice_strings(all, &[2, 3], &[1, 1], &[1, 2]);
        assert_eq!(got, vec!["4".to_string(), "5".to_string()]);
    }
}
