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
mod netcdf;
pub mod records;
mod window;
mod zarr;

use std::path::Path;

pub use error::SourceError;
pub use floe_core::model::{
    DType, Data, Dataset, Dim, Group, Scalar, SourceFormat, VarKind, Variable, decode_fill_value,
    encode_fill_value,
};
pub use window::Window;

/// A source file opened for reading.
pub trait SourceReader: Send + Sync {
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
///
/// The readers are young crates fed with whatever an instrument left behind: a panic
/// inside them (while opening or reading) becomes a [`SourceError::Corrupt`] for this
/// one file, so the other files keep flowing.
pub fn open(path: &Path) -> Result<Box<dyn SourceReader>, SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::io(path, e))?;
    if meta.len() == 0 && !meta.is_dir() {
        return Err(SourceError::Empty(path.to_path_buf()));
    }
    let opened = guard(path, || -> Result<Box<dyn SourceReader>, SourceError> {
        if meta.is_dir() {
            Ok(Box::new(zarr::ZarrSource::open(path)?))
        } else {
            Ok(Box::new(netcdf::NetcdfSource::open(path)?))
        }
    })?;
    Ok(Box::new(Guarded { inner: opened, path: path.to_path_buf() }))
}

/// Run `f`, turning a panic into a "corrupt file" error for `path`.
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, SourceError>) -> Result<T, SourceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(SourceError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("the reader failed on it: {what}"),
        })
    })
}

/// A reader whose reads are guarded against panics in the format crates.
struct Guarded {
    inner: Box<dyn SourceReader>,
    path: std::path::PathBuf,
}

impl SourceReader for Guarded {
    fn dataset(&self) -> &Dataset {
        self.inner.dataset()
    }

    fn read(
        &self,
        group: &str,
        variable: &str,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, SourceError> {
        guard(&self.path, || self.inner.read(group, variable, start, count))
    }
}

#[cfg(not(target_endian = "little"))]
compile_error!("Floe hands values on as little-endian bytes; big-endian hosts are not supported");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_reader_becomes_a_corrupt_file_error() {
        let path = Path::new("/data/x.nc");
        let r: Result<(), SourceError> = guard(path, || panic!("index out of bounds"));
        match r {
            Err(SourceError::Corrupt { path: p, detail }) => {
                assert_eq!(p, path);
                assert!(detail.contains("index out of bounds"), "{detail}");
            }
            other => panic!("expected a corrupt-file error, got {other:?}"),
        }
        assert!(matches!(guard(path, || Ok(3)), Ok(3)));
    }
}
