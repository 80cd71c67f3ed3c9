//! Chunk byte caches: a bounded memory cache (weighted by bytes) in front of an
//! optional bounded disk cache. Keys are chunk identities, which name bytes that
//! never change, so nothing here is ever revalidated: entries only age out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use quick_cache::Weighter;

#[derive(Debug, Clone)]
pub(crate) struct ByteWeight;

impl Weighter<String, Bytes> for ByteWeight {
    fn weight(&self, key: &String, val: &Bytes) -> u64 {
        (key.len() + val.len()) as u64 + 64
    }
}

/// The memory cache: quick_cache's sync cache, whose placeholder guards also make
/// concurrent readers of one chunk wait for a single fetch.
pub(crate) type MemCache = quick_cache::sync::Cache<String, Bytes, ByteWeight>;

pub(crate) fn mem_cache(bytes: u64) -> MemCache {
    // Estimate items from 256 KiB chunks; quick_cache sizes its tables from this.
    let items = (bytes / (256 * 1024)).clamp(64, 1 << 20) as usize;
    // quick_cache keeps only 3% of each shard for entries not read yet by default:
    // read-ahead would be evicted before the reader gets there. Give new entries
    // half of the cache, in few shards (a shard's share is what one entry competes in).
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(bytes.max(1))
        .hot_allocation(0.5)
        .shards(4)
        .build();
    match options {
        Ok(o) => MemCache::with_options(o, ByteWeight, Default::default(), Default::default()),
        Err(_) => MemCache::with_weighter(items, bytes.max(1), ByteWeight),
    }
}

/// A bounded folder of chunk files, least recently used out first.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    limit: u64,
    state: Mutex<DiskState>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// file name -> (size, last use tick, still being written)
    files: HashMap<String, (u64, u64, bool)>,
    total: u64,
    tick: u64,
}

fn file_name(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

impl DiskCache {
    /// Open (or create) a cache folder, taking in what an earlier mount left there.
    pub(crate) fn open(dir: &Path, limit: u64) -> std::io::Result<DiskCache> {
        std::fs::create_dir_all(dir)?;
        let mut st = DiskState::default();
        for e in std::fs::read_dir(dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                st.tick += 1;
                st.total += m.len();
                st.files.insert(name, (m.len(), st.tick, false));
            }
        }
        let cache = DiskCache { dir: dir.to_path_buf(), limit, state: Mutex::new(st) };
        cache.evict(0);
        Ok(cache)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let name = file_name(key);
        {
            let mut st = self.state.lock().ok()?;
            st.tick += 1;
            let tick = st.tick;
            let entry = st.files.get_mut(&name).filter(|e| !e.2)?;
            entry.1 = tick;
        }
        match std::fs::read(self.dir.join(&name)) {
            Ok(b) => Some(Bytes::from(b)),
            Err(_) => {
                if let Ok(mut st) = self.state.lock()
                    && let Some((size, ..)) = st.files.remove(&name)
                {
                    st.total -= size;
                }
                None
            }
        }
    }

    /// Keep `bytes` as a file. The space is reserved (older files evicted and the
    /// size counted) before the file is written, under one lock: readers and
    /// read-ahead threads putting at once cannot together go over the limit (they
    /// did: 7.8 MB in a 4 MiB cache, seen through a real mount).
    pub(crate) fn put(&self, key: &str, bytes: &Bytes) {
        let size = bytes.len() as u64;
        if size > self.limit {
            return;
        }
        let name = file_name(key);
        {
            let Ok(mut st) = self.state.lock() else { return };
            if st.files.contains_key(&name) {
                return;
            }
            self.evict_locked(&mut st, size);
            if st.total + size > self.limit {
                // everything left is still being written by others: skip this one
                return;
            }
            st.tick += 1;
            let tick = st.tick;
            st.files.insert(name.clone(), (size, tick, true));
            st.total += size;
        }
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        let ok =
            std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)));
        let Ok(mut st) = self.state.lock() else { return };
        match ok {
            Ok(()) => {
                if let Some(entry) = st.files.get_mut(&name) {
                    entry.2 = false;
                }
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(dir = %self.dir.display(), "disk cache write failed: {e}");
                if let Some((size, ..)) = st.files.remove(&name) {
                    st.total -= size;
                }
            }
        }
    }

    /// Remove least recently used files until `incoming` more bytes fit.
    fn evict(&self, incoming: u64) {
        let Ok(mut st) = self.state.lock() else { return };
        self.evict_locked(&mut st, incoming);
    }

    fn evict_locked(&self, st: &mut DiskState, incoming: u64) {
        if st.total + incoming <= self.limit {
            return;
        }
        // (files still being written are another put's reservation: left alone)
        let mut by_age: Vec<(u64, String, u64)> = st
            .files
            .iter()
            .filter(|(_, e)| !e.2)
            .map(|(n, (s, t, _))| (*t, n.clone(), *s))
            .collect();
        by_age.sort_unstable();
        for (_, name, size) in by_age {
            if st.total + incoming <= self.limit {
                break;
            }
            let _ = std::fs::remove_file(self.dir.join(&name));
            st.files.remove(&name);
            st.total -= size;
        }
    }

    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.state.lock().map(|s| s.total).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_cache_stays_under_its_limit_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1000).unwrap();
        for i in 0..5 {
            c.put(&format!("k{i}"), &Bytes::from(vec![i as u8; 300]));
            assert!(c.total() <= 1000);
        }
        assert!(c.get("k0").is_none(), "oldest evicted");
        assert_eq!(c.get("k4").unwrap(), Bytes::from(vec![4u8; 300]));
        drop(c);
        let again = DiskCache::open(dir.path(), 1000).unwrap();
        assert_eq!(again.get("k4").unwrap().len(), 300);
        let smaller = DiskCache::open(dir.path(), 300).unwrap();
        assert!(smaller.total() <= 300);
    }
}
