//! Find candidate files in a watched folder.

use std::io::Read;
use std::path::{Path, PathBuf};

use floe_source::complete::is_temporary_name;

/// Default file patterns: NetCDF/HDF5 files and Zarr directory stores.
pub const DEFAULT_PATTERNS: &[&str] =
    &["*.nc", "*.nc4", "*.cdf", "*.netcdf", "*.h5", "*.hdf5", "*.he5", "*.zarr"];

/// A file (or Zarr directory) found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Path relative to the folder, `/`-separated.
    pub rel: String,
    pub path: PathBuf,
    pub is_dir: bool,
}

fn is_zarr_dir(p: &Path) -> bool {
    p.join("zarr.json").is_file() || p.join(".zgroup").is_file() || p.join(".zarray").is_file()
}

/// Walk `folder` recursively; Zarr stores are leaves. Temporary names are skipped.
pub fn scan(folder: &Path, patterns: &[glob::Pattern]) -> std::io::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if is_temporary_name(&name) {
                continue;
            }
            let ft = entry.file_type()?;
            let is_dir = ft.is_dir();
            let matches = patterns.iter().any(|p| p.matches(&name));
            if is_dir && !is_zarr_dir(&path) {
                stack.push(path);
                continue;
            }
            if !(ft.is_file() || is_dir) || !matches {
                continue;
            }
            let rel = path
                .strip_prefix(folder)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect::<Vec<_>>()
                .join("/");
            out.push(Candidate { rel, path, is_dir });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Compile user patterns (or the defaults).
pub fn patterns(user: &[String]) -> Result<Vec<glob::Pattern>, glob::PatternError> {
    if user.is_empty() {
        DEFAULT_PATTERNS.iter().map(|p| glob::Pattern::new(p)).collect()
    } else {
        user.iter().map(|p| glob::Pattern::new(p)).collect()
    }
}

/// BLAKE3 of a file, or of a directory's files (relative names and contents, sorted).
pub fn hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    if path.is_dir() {
        let mut files = Vec::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                if e.file_type()?.is_dir() {
                    stack.push(e.path());
                } else {
                    files.push(e.path());
                }
            }
        }
        files.sort();
        for f in files {
            let rel = f.strip_prefix(path).unwrap_or(&f).to_string_lossy().to_string();
            hasher.update(rel.as_bytes());
            hasher.update(&[0]);
            hasher.update_reader(std::fs::File::open(&f)?)?;
        }
    } else {
        hash_file(&mut hasher, std::fs::File::open(path)?)?;
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Blocks a large file is hashed in.
const HASH_BLOCK: usize = 8 << 20;

/// Hash one file's bytes: a small one as it reads, a large one with the reading of
/// each block overlapped with the hashing of the one before, which runs on every
/// core. A 1 GiB file took about a second to hash before its ingest could start,
/// on one core, reading and hashing in turn. (Not memory-mapped: a file truncated
/// while mapped would kill the process with SIGBUS.)
fn hash_file(hasher: &mut blake3::Hasher, mut file: std::fs::File) -> std::io::Result<()> {
    let len = file.metadata()?.len();
    if len < 2 * HASH_BLOCK as u64 {
        hasher.update_reader(file)?;
        return Ok(());
    }
    let (full, filled) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1);
    let (empty, emptied) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..2 {
        let _ = empty.send(Vec::with_capacity(HASH_BLOCK));
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            while let Ok(mut buf) = emptied.recv() {
                buf.clear();
                let read = (&mut file).take(HASH_BLOCK as u64).read_to_end(&mut buf);
                let last = matches!(read, Ok(0) | Err(_));
                if full.send(read.map(|_| buf)).is_err() || last {
                    return;
                }
            }
        });
        let hashed = (|| {
            while let Ok(block) = filled.recv() {
                let block = block?;
                if block.is_empty() {
                    break;
                }
                hasher.update_rayon(&block);
                let _ = empty.send(block);
            }
            Ok(())
        })();
        // the reader ends when its last block is sent, or here at the latest
        drop(empty);
        hashed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_file_hashes_in_blocks_to_the_same_digest() {
        let d = tempfile::tempdir().unwrap();
        for len in [3 * HASH_BLOCK + 12_345, 2 * HASH_BLOCK, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let p = d.path().join(format!("f{len}.nc"));
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(hash(&p).unwrap(), blake3::hash(&bytes).to_hex().to_string(), "{len}");
        }
    }

    #[test]
    fn finds_netcdf_and_zarr_skips_temporaries() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("2024/01")).unwrap();
        std::fs::write(d.path().join("2024/01/a.nc"), b"x").unwrap();
        std::fs::write(d.path().join("b.nc.tmp"), b"x").unwrap();
        std::fs::write(d.path().join("notes.txt"), b"x").unwrap();
        std::fs::create_dir_all(d.path().join("s.zarr")).unwrap();
        std::fs::write(d.path().join("s.zarr/zarr.json"), b"{}").unwrap();
        std::fs::create_dir_all(d.path().join("s.zarr/inner.nc")).unwrap();
        let c = scan(d.path(), &patterns(&[]).unwrap()).unwrap();
        let rels: Vec<_> = c.iter().map(|c| c.rel.as_str()).collect();
        assert_eq!(rels, vec!["2024/01/a.nc", "s.zarr"]);
        assert!(c[1].is_dir);
        let h1 = hash(&d.path().join("s.zarr")).unwrap();
        std::fs::write(d.path().join("s.zarr/zarr.json"), b"{ }").unwrap();
        assert_ne!(h1, hash(&d.path().join("s.zarr")).unwrap());
    }
}
