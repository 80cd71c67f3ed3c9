use std::path::{Path, PathBuf};

/// Why a source file could not be read. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "{0}: the file is empty; if the instrument is still writing it, Floe retries later, otherwise check the instrument's output"
    )]
    Empty(PathBuf),
    #[error(
        "{path}: permission denied; give the Floe user read access to this file (e.g. chmod o+r) and it will be picked up on the next run"
    )]
    PermissionDenied { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{0}: not a NetCDF or Zarr file (no NetCDF/HDF5 signature); move it out of the watched folder or exclude it with --pattern"
    )]
    NotNetcdf(PathBuf),
    #[error(
        "{path}: the file is truncated or corrupt ({detail}); if it is still being written Floe retries later, otherwise recover it from the instrument"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path}: variable `{variable}` has the NetCDF-4 type {dtype}, which neither Zarr v3 nor xarray's Zarr reader can hold; the file was left as it is. Drop the variable (e.g. `ncks -x -v {variable}`) or split it into plain variables, then sync the converted file"
    )]
    UnsupportedType { path: PathBuf, variable: String, dtype: String },
    #[error("{path}: {detail}")]
    Unsupported { path: PathBuf, detail: String },
}

impl SourceError {
    /// An I/O error on `path`; permission denied gets its own message and remedy.
    pub fn io(path: &Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            SourceError::PermissionDenied { path: path.to_path_buf() }
        } else {
            SourceError::Io { path: path.to_path_buf(), source: e }
        }
    }
}
