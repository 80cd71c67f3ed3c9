//! Is a file finished being written?
//!
//! A fixed delay alone is not trusted. The evidence, gathered by [`inspect`], is:
//! an HDF5 superblock whose "open for write" flag is set, a lock held by the writer,
//! a NetCDF-3 file shorter than its header says, and the time since the last change.
//! [`decide`] turns that evidence into a verdict; it is pure (the caller passes the
//! clock), so it is tested exhaustively without files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Names that instruments and copy tools use for files still being written.
/// They are ignored until renamed.
pub fn is_temporary_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with(".~")
        || name.starts_with("~$")
        || name.starts_with('.')
        || [".tmp", ".part", ".partial", ".crdownload", ".swp", ".lock", "~"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// What was observed about a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// HDF5 superblock (v2/v3) has the write-access or SWMR-write flag set.
    pub hdf5_open_for_write: bool,
    /// A shared lock could not be taken: a writer holds an exclusive one.
    pub locked_by_writer: bool,
    /// NetCDF-3 header says the file should be this long (None: not NetCDF-3, or unknown).
    pub classic_expected_len: Option<u64>,
    /// NetCDF-3 header in streaming mode (record count not yet written).
    pub classic_streaming: bool,
    /// Current length.
    pub len: u64,
    /// Last modification.
    pub mtime: Option<SystemTime>,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// Still being written; the reason says how Floe knows.
    Writing(String),
}

/// Decide from the evidence, at time `now`, with a quiet period.
pub fn decide(e: &Evidence, now: SystemTime, quiet: Duration) -> Completeness {
    if e.hdf5_open_for_write {
        return Completeness::Writing("its HDF5 writer still has it open (superblock flag)".into());
    }
    if e.locked_by_writer {
        return Completeness::Writing("another process holds a write lock on it".into());
    }
    if e.classic_streaming {
        return Completeness::Writing("its NetCDF-3 header has no record count yet".into());
    }
    if let Some(expected) = e.classic_expected_len
        && e.len < expected
    {
        return Completeness::Writing(format!(
            "it holds {} of the {} bytes its NetCDF-3 header announces",
            e.len, expected
        ));
    }
    if let Some(mtime) = e.mtime {
        let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
        if age < quiet {
            return Completeness::Writing(format!(
                "it changed {:.1} s ago (quiet period {:.1} s)",
                age.as_secs_f64(),
                quiet.as_secs_f64()
            ));
        }
    }
    Completeness::Complete
}

const HDF5_MAGIC: [u8; 8] = [0x89, b'H', b'D', b'F', 0x0D, 0x0A, 0x1A, 0x0A];

/// Where the HDF5 superblock sits: 0, 512, 1024, 2048, ...
fn find_superblock(f: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    let mut off = 0u64;
    let mut buf = [0u8; 8];
    while off + 8 <= len {
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut buf)?;
        if buf == HDF5_MAGIC {
            return Ok(Some(off));
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Ok(None)
}

fn hdf5_write_flag(f: &mut File, sb: u64) -> std::io::Result<bool> {
    let mut head = [0u8; 12];
    f.seek(SeekFrom::Start(sb))?;
    if f.read(&mut head)? < 12 {
        return Ok(false);
    }
    let version = head[8];
    // Superblock v2/v3: byte 11 holds the file consistency flags.
    // bit 0: opened for write access, bit 2: SWMR write access.
    Ok(version >= 2 && head[11] & 0b101 != 0)
}

/// Expected length of a NetCDF-3 file from its header, and whether it is streaming.
fn classic_expected(path: &Path) -> Option<(u64, bool)> {
    let file = netcdf_reader::NcFile::open(path).ok()?;
    if !matches!(
        file.format(),
        netcdf_reader::NcFormat::Classic
            | netcdf_reader::NcFormat::Offset64
            | netcdf_reader::NcFormat::Cdf5
    ) {
        return None;
    }
    let vars = file.variables().ok()?;
    let numrecs =
        file.dimensions().ok()?.iter().find(|d| d.is_unlimited).map(|d| d.size).unwrap_or(0);
    let rec_vars: Vec<_> = vars.iter().filter(|v| v.is_record_var).collect();
    let rec_stride: u64 = rec_vars.iter().map(|v| v.record_size).sum();
    let mut end = 0u64;
    for v in vars {
        let e = if v.is_record_var {
            if numrecs == 0 {
                continue;
            }
            v.data_offset + (numrecs - 1) * rec_stride + v.record_size
        } else {
            v.data_offset + v._data_size
        };
        end = end.max(e);
    }
    Some((end, false))
}

/// Gather the evidence about a file (I/O; never modifies or locks it for long).
pub fn inspect(path: &Path) -> std::io::Result<Evidence> {
    let mut f = File::open(path)?;
    let meta = f.metadata()?;
    let mut e = Evidence { len: meta.len(), mtime: meta.modified().ok(), ..Default::default() };
    if meta.is_dir() {
        return Ok(e);
    }
    if let Some(sb) = find_superblock(&mut f, e.len)? {
        e.hdf5_open_for_write = hdf5_write_flag(&mut f, sb)?;
    } else {
        let mut magic = [0u8; 4];
        f.seek(SeekFrom::Start(0))?;
        if f.read(&mut magic)? == 4 && &magic[..3] == b"CDF" {
            // numrecs is right after the 4 magic bytes (8 bytes for CDF-5)
            let mut nr = [0u8; 4];
            if magic[3] != 5 && f.read(&mut nr)? == 4 && nr == [0xFF; 4] {
                e.classic_streaming = true;
            }
            if let Some((expected, _)) = classic_expected(path) {
                e.classic_expected_len = Some(expected);
            }
        }
    }
    // A writer holding an exclusive lock (HDF5 >= 1.10 locks the files it writes)
    // makes a shared, non-blocking lock attempt fail. Released at once.
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
        }
        Err(std::fs::TryLockError::WouldBlock) => e.locked_by_writer = true,
        Err(std::fs::TryLockError::Error(_)) => {}
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn temporary_names() {
        for n in ["a.nc.tmp", ".~lock.a.nc#", "x.part", ".hidden.nc", "a.nc~", "b.NC.TMP"] {
            assert!(is_temporary_name(n), "{n}");
        }
        for n in ["a.nc", "data_2024.nc4", "store.zarr", "tmpfile.nc"] {
            assert!(!is_temporary_name(n), "{n}");
        }
    }

    #[test]
    fn every_reason_to_wait_is_honoured() {
        let quiet = Duration::from_secs(2);
        let base = Evidence { len: 100, mtime: Some(t(100)), ..Default::default() };
        assert_eq!(decide(&base, t(110), quiet), Completeness::Complete);
        // each piece of evidence alone makes it wait, whatever the age
        let cases = [
            Evidence { hdf5_open_for_write: true, ..base.clone() },
            Evidence { locked_by_writer: true, ..base.clone() },
            Evidence { classic_streaming: true, ..base.clone() },
            Evidence { classic_expected_len: Some(101), ..base.clone() },
        ];
        for c in cases {
            assert!(matches!(decide(&c, t(10_000), quiet), Completeness::Writing(_)), "{c:?}");
        }
        // too young
        assert!(matches!(decide(&base, t(101), quiet), Completeness::Writing(_)));
        // an empty file waits while young; once quiet it is complete (and reading it
        // then reports it as empty, so the user hears of it)
        let empty = Evidence { len: 0, ..base.clone() };
        assert!(matches!(decide(&empty, t(101), quiet), Completeness::Writing(_)));
        assert_eq!(decide(&empty, t(200), quiet), Completeness::Complete);
        // exact length is complete; clock going backwards is treated as "just changed"
        let exact = Evidence { classic_expected_len: Some(100), ..base.clone() };
        assert_eq!(decide(&exact, t(200), quiet), Completeness::Complete);
        assert!(matches!(decide(&base, t(50), quiet), Completeness::Writing(_)));
    }
}
