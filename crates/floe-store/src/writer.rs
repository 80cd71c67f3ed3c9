use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe_core::{CommitProvenance, PROVENANCE_KEY};
use floe_plan::{ArrayState, RepoState};
use floe_source::{DType, Data};
use icechunk::format::Path as IcePath;
use icechunk::format::snapshot::NodeData;
use icechunk::session::SessionErrorKind;
use serde_json::Value;
use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArraySubset};
use zarrs::storage::{AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey};
use zarrs_icechunk::AsyncIcechunkStore;

use crate::StoreError;
use crate::throttle::{Throttle, Throttled};

/// What arrays are written through.
type Store = Throttled<AsyncIcechunkStore>;

/// One writable session on a branch. Everything written through it becomes visible
/// in one atomic commit ([`Writer::commit`]) or not at all.
pub struct Writer {
    store: Arc<AsyncIcechunkStore>,
    /// The same store with writes charged to the upload limit, for arrays.
    throttled: Arc<Store>,
    branch: String,
    label: String,
    /// Arrays opened in this session, by path (shared by concurrent writes).
    arrays: Mutex<HashMap<String, Arc<Array<Store>>>>,
    /// Tail chunks valid for this session (see [`Tail`]).
    tails: Mutex<HashMap<String, Tail>>,
    /// Where tails are kept across sessions of the repository.
    shared_tails: SharedTails,
}

/// The last, partly filled chunk of an array appended along its first axis: which
/// chunk, how many records it holds, and their bytes. With it an append writes the
/// chunk whole (old records + new ones + fill) instead of reading it back first,
/// which saves a manifest lookup and a chunk fetch per array and per commit.
#[derive(Debug, Clone)]
pub struct Tail {
    chunk: u64,
    records: u64,
    bytes: Vec<u8>,
}

/// Tails as of a snapshot id, shared by the sessions of one [`crate::Repo`].
pub type SharedTails = Arc<Mutex<Option<(String, HashMap<String, Tail>)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // the guarded maps stay consistent even if a holder panicked
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("branch", &self.branch).finish_non_exhaustive()
    }
}

fn key_for(path: &str) -> String {
    let p = path.trim_matches('/');
    if p.is_empty() { "zarr.json".to_string() } else { format!("{p}/zarr.json") }
}

/// The regular chunk shape of a `zarr.json`.
fn chunk_shape(metadata: &Value) -> Vec<u64> {
    metadata["chunk_grid"]["configuration"]["chunk_shape"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// An array operation failed: storage trouble (unreachable, credentials, missing
/// bucket) is the storage's, not the file's; anything else is about this array.
fn array_err(path: &str, e: impl std::fmt::Display) -> StoreError {
    let detail = e.to_string();
    match crate::remote::classify(path, detail.clone()) {
        StoreError::Repository { .. } => StoreError::Array { path: path.to_string(), detail },
        storage => storage,
    }
}

impl Writer {
    pub(crate) fn new(
        session: icechunk::session::Session,
        branch: &str,
        label: &str,
        shared_tails: SharedTails,
        base: &str,
        throttle: Option<Arc<Throttle>>,
    ) -> Self {
        let tails = match lock(&shared_tails).as_ref() {
            Some((id, t)) if id == base => t.clone(),
            _ => HashMap::new(),
        };
        let store = Arc::new(AsyncIcechunkStore::new(session));
        Writer {
            throttled: Arc::new(Throttled::new(store.clone(), throttle)),
            store,
            branch: branch.to_string(),
            label: label.to_string(),
            arrays: Mutex::new(HashMap::new()),
            tails: Mutex::new(tails),
            shared_tails,
        }
    }

    async fn get_json(&self, path: &str) -> Result<Option<Value>, StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let bytes = self.store.get(&key).await.map_err(|e| array_err(path, e))?;
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| array_err(path, e)),
        }
    }

    /// What the branch holds under `group`: arrays, groups, and the last value of
    /// each 1-D coordinate array along one of `record_dims`.
    pub async fn state(
        &self,
        group: &str,
        record_dims: &[String],
    ) -> Result<RepoState, StoreError> {
        let prefix = group.trim_end_matches('/');
        let nodes: Vec<(String, bool)> = {
            let session = self.store.session();
            let guard = session.read().await;
            let it = guard.list_nodes(&IcePath::root()).await.map_err(|e| {
                StoreError::Repository { repo: self.label.clone(), detail: e.to_string() }
            })?;
            let mut v = Vec::new();
            for n in it {
                let n = n.map_err(|e| StoreError::Repository {
                    repo: self.label.clone(),
                    detail: e.to_string(),
                })?;
                v.push((n.path.to_string(), matches!(n.node_data, NodeData::Array { .. })));
            }
            v
        };
        let mut state = RepoState::default();
        for (path, is_array) in nodes {
            let inside =
                prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"));
            if !inside {
                continue;
            }
            if !is_array {
                state.groups.insert(path);
                continue;
            }
            let Some(meta) = self.get_json(&path).await? else {
                continue;
            };
            let shape: Vec<u64> = serde_json::from_value(meta["shape"].clone()).unwrap_or_default();
            let dims: Vec<String> = meta["dimension_names"]
                .as_array()
                .map(|a| a.iter().map(|d| d.as_str().unwrap_or("").to_string()).collect())
                .unwrap_or_default();
            let dtype =
                meta["data_type"].as_str().and_then(DType::from_zarr_name).ok_or_else(|| {
                    array_err(
                        &path,
                        "holds a data type Floe does not write; sync into another group (--group)",
                    )
                })?;
            let chunks = chunk_shape(&meta);
            let attrs = meta["attributes"].as_object().cloned().unwrap_or_default();
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            if dims.len() == 1 && dims[0] == name && record_dims.contains(&name) && shape[0] > 0 {
                let last = self.read(&path, &meta, &[shape[0] - 1], &[1]).await?;
                if let Data::Fixed(b) = last
                    && let Some(v) = dtype.element_as_f64(&b)
                {
                    state.last_coord.insert(path.clone(), v);
                }
            }
            state
                .arrays
                .insert(path, ArrayState { shape, dims, dtype, chunks, attrs, metadata: meta });
        }
        Ok(state)
    }

    /// Write a group's `zarr.json`.
    pub async fn put_group(&mut self, path: &str, metadata: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let body = serde_json::to_vec(metadata).map_err(|e| array_err(path, e))?;
        self.throttled.set(&key, Bytes::from(body)).await.map_err(|e| array_err(path, e))
    }

    /// Write (create or resize) an array's `zarr.json`.
    pub async fn put_array(&mut self, path: &str, metadata: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let body = serde_json::to_vec(metadata).map_err(|e| array_err(path, e))?;
        self.throttled.set(&key, Bytes::from(body)).await.map_err(|e| array_err(path, e))?;
        self.cache().remove(path);
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Array<Store>>>> {
        lock(&self.arrays)
    }

    fn array(&self, path: &str, metadata: &Value) -> Result<Arc<Array<Store>>, StoreError> {
        if let Some(a) = self.cache().get(path) {
            return Ok(a.clone());
        }
        let meta: ArrayMetadata =
            serde_json::from_value(metadata.clone()).map_err(|e| array_err(path, e))?;
        let array = Arc::new(
            Array::new_with_metadata(self.throttled.clone(), path, meta)
                .map_err(|e| array_err(path, e))?,
        );
        self.cache().insert(path.to_string(), array.clone());
        Ok(array)
    }

    /// Write values into the hyperslab `start..start+count` of an array.
    pub async fn write(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
        data: Data,
    ) -> Result<(), StoreError> {
        let array = self.array(path, metadata)?;
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), count.to_vec())
            .map_err(|e| array_err(path, e))?;
        let result = match data {
            Data::Fixed(bytes) => {
                array.async_store_array_subset(&subset, ArrayBytes::new_flen(bytes)).await
            }
            Data::Strings(strings) => array.async_store_array_subset(&subset, strings).await,
        };
        result.map_err(|e| array_err(path, e))
    }

    /// Append records along the first axis: `start[0]` is the array's old length and
    /// `count[0]` records follow. Whole chunks go to zarrs as they are; a partly filled
    /// chunk is written whole from the cached tail (or the tail read back once) plus the
    /// new records plus fill, so nothing is read back on the next append. Arrays whose
    /// chunks split the other axes, and text arrays, take the general path.
    pub async fn append(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
        data: Data,
    ) -> Result<(), StoreError> {
        let array = self.array(path, metadata)?;
        let shape = array.shape().to_vec();
        let chunk_shape = chunk_shape(metadata);
        let whole_records = !shape.is_empty()
            && chunk_shape.len() == shape.len()
            && shape[1..] == chunk_shape[1..]
            && start[1..].iter().all(|&s| s == 0)
            && count[1..] == shape[1..];
        let Data::Fixed(new) = data else {
            return self.write(path, metadata, start, count, data).await;
        };
        if !whole_records {
            return self.write(path, metadata, start, count, Data::Fixed(new)).await;
        }
        let fill = array.fill_value().as_ne_bytes().to_vec();
        let item = fill.len() as u64;
        let per_record = (shape[1..].iter().product::<u64>() * item) as usize;
        let chunk_len = chunk_shape[0].max(1);
        let (mut pos, end) = (start[0], start[0] + count[0]);
        let mut offset = 0usize;
        while pos < end {
            let chunk = pos / chunk_len;
            let in_chunk = pos - chunk * chunk_len;
            let whole = if in_chunk == 0 { (end - pos) / chunk_len * chunk_len } else { 0 };
            if whole > 0 {
                // whole chunks: zarrs encodes them in parallel and reads nothing
                let n = whole as usize * per_record;
                let mut s = vec![0u64; shape.len()];
                s[0] = pos;
                let mut c = shape.clone();
                c[0] = whole;
                let subset =
                    ArraySubset::new_with_start_shape(s, c).map_err(|e| array_err(path, e))?;
                array
                    .async_store_array_subset(
                        &subset,
                        ArrayBytes::new_flen(&new[offset..offset + n]),
                    )
                    .await
                    .map_err(|e| array_err(path, e))?;
                lock(&self.tails).remove(path);
                offset += n;
                pos += whole;
                continue;
            }
            // a partly filled chunk: the records it holds already, the new ones, fill
            let take = (chunk_len - in_chunk).min(end - pos);
            let mut body = if in_chunk == 0 {
                Vec::with_capacity(chunk_len as usize * per_record)
            } else {
                let cached = lock(&self.tails)
                    .get(path)
                    .filter(|t| t.chunk == chunk && t.records == in_chunk)
                    .map(|t| t.bytes.clone());
                match cached {
                    Some(b) => b,
                    None => {
                        let mut s = vec![0u64; shape.len()];
                        s[0] = chunk * chunk_len;
                        let mut c = shape.clone();
                        c[0] = in_chunk;
                        match self.read(path, metadata, &s, &c).await? {
                            Data::Fixed(b) => b,
                            Data::Strings(_) => {
                                return Err(array_err(path, "text in a numeric array"));
                            }
                        }
                    }
                }
            };
            let n = take as usize * per_record;
            body.extend_from_slice(&new[offset..offset + n]);
            let filled = in_chunk + take;
            let tail =
                (filled < chunk_len).then(|| Tail { chunk, records: filled, bytes: body.clone() });
            let missing = (chunk_len - filled) as usize * per_record / item as usize;
            body.extend(fill.iter().copied().cycle().take(missing * fill.len()));
            let mut idx = vec![0u64; shape.len()];
            idx[0] = chunk;
            array
                .async_store_chunk(&idx, ArrayBytes::new_flen(body))
                .await
                .map_err(|e| array_err(path, e))?;
            let mut tails = lock(&self.tails);
            match tail {
                Some(t) => tails.insert(path.to_string(), t),
                None => tails.remove(path),
            };
            offset += n;
            pos += take;
        }
        Ok(())
    }

    /// Read the hyperslab `start..start+count` of an array as stored.
    pub async fn read(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        // Whole chunks, fetched with a plain get: a chunk that was never written (or
        // was all fill) reads as fill. (Partial reads through zarrs_icechunk fail on
        // a missing chunk instead.)
        let array = self.array(path, metadata)?;
        let text = metadata["data_type"].as_str() == Some("string");
        let n: u64 = count.iter().product();
        if count.is_empty() {
            return self.chunk_data(&array, path, &[], text).await;
        }
        let chunk: Vec<u64> = chunk_shape(metadata).into_iter().map(|c| c.max(1)).collect();
        if n == 0 || chunk.len() != count.len() {
            return Ok(if text { Data::Strings(Vec::new()) } else { Data::Fixed(Vec::new()) });
        }
        let item = if text { 0 } else { array.fill_value().as_ne_bytes().len() };
        let mut out_bytes = vec![0u8; n as usize * item];
        let mut out_text = vec![String::new(); if text { n as usize } else { 0 }];
        let first: Vec<u64> = start.iter().zip(&chunk).map(|(s, c)| s / c).collect();
        let last: Vec<u64> =
            start.iter().zip(count).zip(&chunk).map(|((s, n), c)| (s + n - 1) / c).collect();
        let mut idx = first.clone();
        loop {
            let data = self.chunk_data(&array, path, &idx, text).await?;
            let origin: Vec<u64> = idx.iter().zip(&chunk).map(|(i, c)| i * c).collect();
            copy_box(&origin, &chunk, start, count, |src, dst, len| match &data {
                Data::Fixed(b) => out_bytes[dst * item..(dst + len) * item]
                    .copy_from_slice(&b[src * item..(src + len) * item]),
                Data::Strings(v) => out_text[dst..dst + len].clone_from_slice(&v[src..src + len]),
            });
            // next chunk index, C order
            let mut d = idx.len();
            loop {
                if d == 0 {
                    return Ok(if text { Data::Strings(out_text) } else { Data::Fixed(out_bytes) });
                }
                d -= 1;
                if idx[d] < last[d] {
                    idx[d] += 1;
                    break;
                }
                idx[d] = first[d];
            }
        }
    }

    async fn chunk_data(
        &self,
        array: &Array<Store>,
        path: &str,
        idx: &[u64],
        text: bool,
    ) -> Result<Data, StoreError> {
        if text {
            let v: Vec<String> =
                array.async_retrieve_chunk(idx).await.map_err(|e| array_err(path, e))?;
            return Ok(Data::Strings(v));
        }
        let b: ArrayBytes<'static> =
            array.async_retrieve_chunk(idx).await.map_err(|e| array_err(path, e))?;
        Ok(Data::Fixed(b.into_fixed().map_err(|e| array_err(path, e))?.into_owned()))
    }

    /// Commit everything written, with Floe's provenance in the snapshot metadata.
    pub async fn commit(
        self,
        message: &str,
        provenance: &CommitProvenance,
    ) -> Result<String, StoreError> {
        let mut props = BTreeMap::new();
        props.insert(PROVENANCE_KEY.to_string(), provenance.to_value());
        let session = self.store.session();
        let mut guard = session.write().await;
        // another writer may have committed meanwhile: rebase onto it when the
        // changes do not overlap (other arrays, other groups); overlapping ones
        // (both appended to the same array) come back as a conflict
        let result = guard
            .commit(message)
            .properties(props)
            .rebase(&icechunk::conflicts::detector::ConflictDetector, 3)
            .execute()
            .await;
        match result {
            Ok(id) => {
                let tails = std::mem::take(&mut *lock(&self.tails));
                *lock(&self.shared_tails) = Some((id.to_string(), tails));
                Ok(id.to_string())
            }
            Err(e) => match e.kind() {
                SessionErrorKind::Conflict { .. } | SessionErrorKind::RebaseFailed { .. } => {
                    Err(StoreError::Conflict(self.branch.clone()))
                }
                _ => Err(crate::remote::classify(&self.label, e.to_string())),
            },
        }
    }

    /// The snapshot this session started from.
    pub async fn base_snapshot(&self) -> String {
        self.store.session().read().await.snapshot_id().to_string()
    }
}

/// Copy the intersection of a chunk (at `origin`, of shape `chunk`) with the box
/// `start..start+count`: calls `copy(src, dst, len)` with element offsets into the
/// chunk and into the box (both C order), one run along the last axis at a time.
fn copy_box(
    origin: &[u64],
    chunk: &[u64],
    start: &[u64],
    count: &[u64],
    mut copy: impl FnMut(usize, usize, usize),
) {
    let nd = chunk.len();
    let lo: Vec<u64> = (0..nd).map(|d| origin[d].max(start[d])).collect();
    let hi: Vec<u64> = (0..nd).map(|d| (origin[d] + chunk[d]).min(start[d] + count[d])).collect();
    if (0..nd).any(|d| lo[d] >= hi[d]) {
        return;
    }
    let run = (hi[nd - 1] - lo[nd - 1]) as usize;
    let mut x = lo.clone();
    loop {
        let (mut src, mut dst) = (0u64, 0u64);
        for d in 0..nd {
            src = src * chunk[d] + (x[d] - origin[d]);
            dst = dst * count[d] + (x[d] - start[d]);
        }
        copy(src as usize, dst as usize, run);
        // advance over all but the last axis
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            x[d] += 1;
            if x[d] < hi[d] {
                break;
            }
            x[d] = lo[d];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_box;

    #[test]
    fn copies_the_intersection_in_c_order() {
        // chunk of 4x4 at (4, 0); box (5..7, 1..3) of a 2x2 output
        let mut runs = Vec::new();
        copy_box(&[4, 0], &[4, 4], &[5, 1], &[2, 2], |s, d, n| runs.push((s, d, n)));
        assert_eq!(runs, vec![(5, 0, 2), (9, 2, 2)]);
        // disjoint: nothing
        let mut none = 0;
        copy_box(&[0, 0], &[2, 2], &[5, 5], &[1, 1], |_, _, _| none += 1);
        assert_eq!(none, 0);
        // 1-D
        let mut one = Vec::new();
        copy_box(&[8], &[8], &[10], &[20], |s, d, n| one.push((s, d, n)));
        assert_eq!(one, vec![(2, 0, 6)]);
    }
}
