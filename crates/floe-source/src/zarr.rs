//! Local Zarr v2 and v3 directory stores, read through `zarrs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArraySubset};
use zarrs::filesystem::FilesystemStore;
use zarrs::node::{Node, NodeMetadata};

use crate::{SourceError, SourceReader, encode_fill_value};
use floe_core::model::{DType, Data, Dataset, Dim, Group, SourceFormat, VarKind, Variable};
use floe_core::model::{decode_fill_value, scalar_from_json};

pub(crate) struct ZarrSource {
    path: PathBuf,
    store: Arc<FilesystemStore>,
    dataset: Dataset,
}

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource").field("path", &self.path).finish_non_exhaustive()
    }
}

fn corrupt(path: &Path, detail: impl std::fmt::Display) -> SourceError {
    SourceError::Corrupt { path: path.to_path_buf(), detail: detail.to_string() }
}

/// numpy dtype string of a Zarr v2 array (e.g. `<f4`) to a Floe type.
fn dtype_from_v2(path: &Path, var: &str, dtype: &str) -> Result<DType, SourceError> {
    let code = dtype.trim_start_matches(['<', '>', '|', '=']);
    Ok(match code {
        "b1" => DType::Bool,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "O" => DType::Str,
        c if c.starts_with('U') => DType::Str,
        _ => {
            return Err(SourceError::UnsupportedType {
                path: path.to_path_buf(),
                variable: var.to_string(),
                dtype: dtype.to_string(),
            });
        }
    })
}

impl ZarrSource {
    pub(crate) fn open(path: &Path) -> Result<Self, SourceError> {
        let has = |f: &str| path.join(f).exists();
        let format = if has("zarr.json") {
            SourceFormat::ZarrV3
        } else if has(".zgroup") || has(".zarray") {
            SourceFormat::ZarrV2
        } else {
            return Err(SourceError::NotNetcdf(path.to_path_buf()));
        };
        let store = Arc::new(FilesystemStore::new(path).map_err(|e| corrupt(path, e))?);
        let root = Node::open(&store, "/").map_err(|e| corrupt(path, e))?;
        let mut groups = Vec::new();
        Self::collect(path, &root, &mut groups)?;
        Ok(ZarrSource { path: path.to_path_buf(), store, dataset: Dataset { format, groups } })
    }

    fn collect(path: &Path, node: &Node, out: &mut Vec<Group>) -> Result<(), SourceError> {
        let attrs = match node.metadata() {
            NodeMetadata::Group(g) => match g {
                zarrs::group::GroupMetadata::V3(m) => m.attributes.clone(),
                zarrs::group::GroupMetadata::V2(m) => m.attributes.clone(),
            },
            NodeMetadata::Array(_) => Map::new(),
        };
        let mut group = Group {
            path: node.path().as_str().to_string(),
            attrs,
            dims: Vec::new(),
            variables: Vec::new(),
        };
        let mut subgroups = Vec::new();
        for child in node.children() {
            match child.metadata() {
                NodeMetadata::Array(meta) => {
                    let name = child.path().as_str().rsplit('/').next().unwrap_or("").to_string();
                    let var = Self::variable(path, &name, meta)?;
                    for (d, &size) in var.dims.iter().zip(&var.shape) {
                        if !group.dims.iter().any(|x: &Dim| &x.name == d) {
                            group.dims.push(Dim { name: d.clone(), size, unlimited: false });
                        }
                    }
                    group.variables.push(var);
                }
                NodeMetadata::Group(_) => subgroups.push(child),
            }
        }
        out.push(group);
        for g in subgroups {
            Self::collect(path, g, out)?;
        }
        Ok(())
    }

    fn variable(path: &Path, name: &str, meta: &ArrayMetadata) -> Result<Variable, SourceError> {
        let (shape, chunks, dtype, mut attrs, dims, fill, is_v2) = match meta {
            ArrayMetadata::V3(m) => {
                let dt_name = m.data_type.name().to_string();
                let dtype = DType::from_zarr_name(&dt_name)
                    .or_else(|| (dt_name == "fixed_length_utf32").then_some(DType::Str))
                    .ok_or_else(|| SourceError::UnsupportedType {
                        path: path.to_path_buf(),
                        variable: name.to_string(),
                        dtype: dt_name.clone(),
                    })?;
                let chunks = serde_json::to_value(&m.chunk_grid)
                    .ok()
                    .and_then(|v| v.pointer("/configuration/chunk_shape").cloned())
                    .and_then(|v| serde_json::from_value::<Vec<u64>>(v).ok());
                let dims = m.dimension_names.as_ref().map(|names| {
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| n.clone().unwrap_or_else(|| format!("dim_{i}")))
                        .collect::<Vec<_>>()
                });
                let fill = serde_json::to_value(&m.fill_value).ok();
                (m.shape.clone(), chunks, dtype, m.attributes.clone(), dims, fill, false)
            }
            ArrayMetadata::V2(m) => {
                let dt = serde_json::to_value(&m.dtype).unwrap_or(Value::Null);
                let dtype = dtype_from_v2(path, name, dt.as_str().unwrap_or("?"))?;
                let chunks = Some(m.chunks.iter().map(|c| c.get()).collect());
                let fill = serde_json::to_value(&m.fill_value).ok();
                (m.shape.clone(), chunks, dtype, m.attributes.clone(), None, fill, true)
            }
        };
        let from_attr = attrs
            .remove("_ARRAY_DIMENSIONS")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        let dims = dims
            .or(from_attr)
            .unwrap_or_else(|| (0..shape.len()).map(|i| format!("{name}_dim_{i}")).collect());
        // xarray masks a Zarr v2 array's fill value; keep that meaning explicit.
        let mut fill_value = None;
        if let Some(v) = attrs.get("_FillValue") {
            fill_value = decode_fill_value(dtype, v);
        } else if is_v2 && let Some(s) = fill.as_ref().and_then(scalar_from_json) {
            attrs.insert("_FillValue".into(), encode_fill_value(dtype, s.clone()));
            fill_value = Some(s);
        }
        Ok(Variable {
            name: name.to_string(),
            dims,
            shape,
            dtype,
            attrs,
            chunks,
            kind: VarKind::Plain,
            fill_value,
        })
    }
}

impl SourceReader for ZarrSource {
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
        let array_path =
            if group == "/" { format!("/{variable}") } else { format!("{group}/{variable}") };
        let array =
            Array::open(self.store.clone(), &array_path).map_err(|e| corrupt(&self.path, e))?;
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), count.to_vec())
            .map_err(|e| corrupt(&self.path, e))?;
        let var = self.dataset.group(group).and_then(|g| g.variable(variable));
        if var.map(|v| v.dtype) == Some(DType::Str) {
            let strings: Vec<String> =
                array.retrieve_array_subset(&subset).map_err(|e| corrupt(&self.path, e))?;
            return Ok(Data::Strings(strings));
        }
        let bytes: ArrayBytes<'static> =
            array.retrieve_array_subset(&subset).map_err(|e| corrupt(&self.path, e))?;
        let raw = bytes.into_fixed().map_err(|e| corrupt(&self.path, e))?;
        Ok(Data::Fixed(raw.into_owned()))
    }
}
