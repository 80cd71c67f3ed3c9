//! Sync pipeline, stage 1: read what an instrument wrote.
//!
//! [`open`] recognises NetCDF-3 (CDF-1/2/5), NetCDF-4/HDF5 and local Zarr v2/v3
//! directory stores and returns a [`SourceReader`]: a description of the file
//! ([`Dataset`]) plus slab reads that return raw stored values (packing, fill values
//! and time encodings untouched), so a large file streams in bounded memory.
//!
//! [`complete`] decides whether a file is finished being written.

pub mod complete;
mod error;
mod model;
mod netcdf;
mod zarr;

use std::path::Path;

pub use error::SourceError;
pub use model::{
    DType, Data, Dataset, Dim, Group, Scalar, SourceFormat, VarKind, Variable, decode_fill_value,
    encode_fill_value,
};

/// A source file opened for reading.
pub trait SourceReader: Send {
    /// The file's groups, dimensions, variables and attributes.
    fn dataset(&self) -> &Dataset;

    /// Read the hyperslab `start..start+count` of a variable, as stored (raw values).
    ///
    /// `count` of a scalar variable is empty. Fixed-size values come back as
    /// little-endian bytes in C order; strings as one `String` per element.
    fn read(
        &self,
        group: &str,
        variable: &str,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, SourceError>;
}

/// Open a NetCDF file or a local Zarr store, detecting the format from its content.
pub fn open(path: &Path) -> Result<Box<dyn SourceReader>, SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::io(path, e))?;
    if meta.is_dir() {
        return Ok(Box::new(zarr::ZarrSource::open(path)?));
    }
    if meta.len() == 0 {
        return Err(SourceError::Empty(path.to_path_buf()));
    }
    Ok(Box::new(netcdf::NetcdfSource::open(path)?))
}

#[cfg(not(target_endian = "little"))]
compile_error!("Floe hands values on as little-endian bytes; big-endian hosts are not supported");
