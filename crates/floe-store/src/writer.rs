use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe_core::fault::{FaultPoint, Faults, NoFaults};
use floe_core::{CommitProvenance, PROVENANCE_KEY};
use floe_plan::{ArrayState, RepoState};
use floe_source::{DType, Data};
use icechunk::format::Path as IcePath;
use icechunk::format::snapshot::NodeData;
use icechunk::session::SessionErrorKind;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use zarrs::array::{Array, ArrayBytes, ArrayMetadata, ArraySubset, IntoArrayBytes};
use zarrs::storage::{AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey};
use zarrs_icechunk::AsyncIcechunkStore;

use crate::StoreError;
use crate::throttle::{Throttle, Throttled};

/// What arrays are written through.
type Store = Throttled<AsyncIcechunkStore>;

/// One writable session on a branch. Everything written through it becomes visible
/// in one atomic commit ([`Writer::commit`]) or not at all.
///
/// Chunk uploads run in the background (bounded by [`UPLOAD_BUDGET`] bytes in flight),
/// so the next variable or file is read while earlier chunks travel: on a long link
/// many uploads overlap instead of one at a time. The last, partly filled chunk of an
/// appended array stays in memory until it fills up or the session commits, so a
/// batch of files writes each chunk once instead of once per file.
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
    /// Where a crash test stops the process (nothing, in shipped builds).
    faults: Arc<dyn Faults>,
    /// Chunk uploads under way, by array path.
    uploads: Mutex<HashMap<String, Vec<Upload>>>,
    /// Bytes (in KiB permits) that uploads under way may hold.
    budget: Arc<Semaphore>,
    /// Decoded chunks kept for reads, when on (a [`crate::Reader`]'s).
    chunk_cache: Option<Mutex<ChunkCache>>,
    /// The commit may hold no changes (a record of a decision, its provenance alone).
    allow_empty: bool,
}

/// Decoded chunks by array path and chunk index, oldest evicted first once they
/// hold more than `limit` bytes. Verification reads each file's records, and a chunk
/// holds several files' (8 by default): without it every chunk is fetched and
/// decoded once per file it holds.
#[derive(Debug, Default)]
pub(crate) struct ChunkCache {
    limit: usize,
    held: usize,
    chunks: HashMap<(String, Vec<u64>), Arc<Data>>,
    order: std::collections::VecDeque<(String, Vec<u64>)>,
}

impl ChunkCache {
    fn get(&self, key: &(String, Vec<u64>)) -> Option<Arc<Data>> {
        self.chunks.get(key).cloned()
    }

    fn put(&mut self, key: (String, Vec<u64>), data: Arc<Data>) {
        let size = data_bytes(&data);
        if size > self.limit || self.chunks.contains_key(&key) {
            return;
        }
        while self.held + size > self.limit
            && let Some(old) = self.order.pop_front()
        {
            if let Some(d) = self.chunks.remove(&old) {
                self.held -= data_bytes(&d);
            }
        }
        self.held += size;
        self.order.push_back(key.clone());
        self.chunks.insert(key, data);
    }
}

/// Bytes a decoded chunk holds (text: its characters).
fn data_bytes(d: &Data) -> usize {
    match d {
        Data::Fixed(b) => b.len(),
        Data::Strings(v) => v.iter().map(|s| s.len() + 24).sum(),
    }
}

/// A chunk upload running in the background.
type Upload = JoinHandle<Result<(), StoreError>>;

/// Most chunk bytes held by background uploads of one session at once.
pub(crate) const UPLOAD_BUDGET: usize = 64 << 20;

/// Manifests written at once when a session commits (Icechunk's default is one at a
/// time: on a long link every array then costs a round trip of its own).
const COMMIT_CONCURRENCY: usize = 16;

/// The last, partly filled chunk of an array appended along its first axis: which
/// chunk, how many records it holds, and their values. With it an append writes the
/// chunk whole (old records + new ones + fill) instead of reading it back first,
/// which saves a manifest lookup and a chunk fetch per array and per commit. A
/// `dirty` tail holds records not yet uploaded: it is written when the chunk fills up
/// or the session commits.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    chunk: u64,
    records: u64,
    values: Values,
    dirty: bool,
    /// Elements in a whole chunk, and the array's fill value (one element).
    chunk_elements: usize,
    fill: Values,
}

/// A partly filled chunk: its index, the records it holds, records per chunk.
#[derive(Debug, Clone, Copy)]
struct ChunkStart {
    chunk: u64,
    records: u64,
    chunk_len: u64,
}

/// Where a background upload goes: one chunk by index (it may reach past the
/// array's end), or a box of whole chunks inside the array.
enum Place {
    Chunk(Vec<u64>),
    Chunks(ArraySubset),
}

/// Values of a chunk in C order: fixed-size elements as bytes, or text.
#[derive(Debug, Clone)]
enum Values {
    Fixed(Vec<u8>),
    Text(Vec<String>),
}

impl Values {
    /// Elements `from .. from + n` (`item` bytes each; text: one string each),
    /// moved out when they are all there is: a slab of whole chunks, the common
    /// case of a large file, goes to the encoder without a copy (the copies were 9%
    /// of a 1 GiB file's CPU time).
    fn cut(&mut self, from: usize, n: usize, item: usize) -> Values {
        match self {
            Values::Fixed(b) if from == 0 && n * item == b.len() => {
                Values::Fixed(std::mem::take(b))
            }
            Values::Text(v) if from == 0 && n == v.len() => Values::Text(std::mem::take(v)),
            Values::Fixed(b) => Values::Fixed(b[from * item..(from + n) * item].to_vec()),
            Values::Text(v) => Values::Text(v[from..from + n].to_vec()),
        }
    }

    /// The values followed by fill up to `elements` (a whole chunk).
    fn padded(&self, fill: &Values, elements: usize) -> Values {
        match (self, fill) {
            (Values::Fixed(b), Values::Fixed(f)) if !f.is_empty() => {
                let mut out = Vec::with_capacity(elements * f.len());
                out.extend_from_slice(b);
                let missing = (elements * f.len()).saturating_sub(b.len());
                out.extend(f.iter().copied().cycle().take(missing));
                Values::Fixed(out)
            }
            (Values::Text(v), Values::Text(f)) => {
                let mut out = v.clone();
                out.resize(elements.max(v.len()), f.first().cloned().unwrap_or_default());
                Values::Text(out)
            }
            (v, _) => v.clone(),
        }
    }
}

/// Tails as of a snapshot id, shared by the sessions of one [`crate::Repo`].
pub(crate) type SharedTails = Arc<Mutex<Option<(String, HashMap<String, Tail>)>>>;

use floe_core::lock;

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("branch", &self.branch).finish_non_exhaustive()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // a session thrown away (not committed): its uploads are of no use
        for handles in lock(&self.uploads).values() {
            for h in handles {
                h.abort();
            }
        }
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

/// Whether an append writes whole records of an array chunked along its first axis
/// only: then chunks fill record by record, and the tail can be kept in memory.
fn appends_whole_records(shape: &[u64], chunk_shape: &[u64], start: &[u64], count: &[u64]) -> bool {
    !shape.is_empty()
        && chunk_shape.len() == shape.len()
        && shape[1..] == chunk_shape[1..]
        && start[1..].iter().all(|&s| s == 0)
        && count[1..] == shape[1..]
}

/// The appended values, the array's fill value in the same form, and the bytes of
/// one element (1 for text: one string each).
fn values_and_fill(data: Data, fill_bytes: Vec<u8>) -> (Values, Values, usize) {
    match data {
        Data::Fixed(b) => {
            let item = fill_bytes.len();
            (Values::Fixed(b), Values::Fixed(fill_bytes), item)
        }
        Data::Strings(v) => {
            let f = String::from_utf8(fill_bytes).unwrap_or_default();
            (Values::Text(v), Values::Text(vec![f]), 1)
        }
    }
}

/// An array operation failed for a reason of its own (metadata, shapes, values).
fn array_err(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Array { path: path.to_string(), detail: e.to_string() }
}

/// An array read or write through the store failed: the storage's failure, when
/// the store saw one of a kind a user acts on (a full disk, a refused key, no
/// connection: see [`Throttled::take_failure`]), else about this array. zarrs hands
/// the failure on as text; the kind is never read back from it.
fn store_err(store: &Store, path: &str, e: impl std::fmt::Display) -> StoreError {
    match store.take_failure() {
        Some(StoreError::Repository { .. } | StoreError::Array { .. }) | None => array_err(path, e),
        Some(storage) => storage,
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
        // the same session, written directly so that failures keep their kind
        let direct = icechunk::Store::from_session_and_config(store.session(), 10);
        Writer {
            throttled: Arc::new(Throttled::new(store.clone(), throttle).direct(direct, label)),
            store,
            branch: branch.to_string(),
            label: label.to_string(),
            arrays: Mutex::new(HashMap::new()),
            tails: Mutex::new(tails),
            shared_tails,
            faults: Arc::new(NoFaults),
            uploads: Mutex::new(HashMap::new()),
            budget: Arc::new(Semaphore::new(UPLOAD_BUDGET >> 10)),
            chunk_cache: None,
            allow_empty: false,
        }
    }

    /// Let the commit hold no changes: it records a decision (the validation
    /// gate's), its provenance alone.
    pub(crate) fn allowing_empty(mut self) -> Self {
        self.allow_empty = true;
        self
    }

    /// Keep up to `bytes` of decoded chunks for reads (for a read-only session:
    /// a writer's chunks change under it).
    pub(crate) fn with_chunk_cache(mut self, bytes: usize) -> Self {
        self.chunk_cache = Some(Mutex::new(ChunkCache { limit: bytes, ..ChunkCache::default() }));
        self
    }

    /// Stop at `faults`' points (a crash test's; shipped builds keep [`NoFaults`]).
    pub fn with_faults(mut self, faults: Arc<dyn Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// An array read or write failed: see [`store_err`].
    fn failed(&self, path: &str, e: impl std::fmt::Display) -> StoreError {
        store_err(&self.throttled, path, e)
    }

    /// A node's `zarr.json` (`None`: no such node), Floe's own nodes included.
    pub async fn node_metadata(&self, path: &str) -> Result<Option<Value>, StoreError> {
        self.get_json(path).await
    }

    async fn get_json(&self, path: &str) -> Result<Option<Value>, StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let bytes = self.throttled.get(&key).await.map_err(|e| self.failed(path, e))?;
        match bytes {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| array_err(path, e)),
        }
    }

    /// The arrays of Floe's own group (its statistics), by path.
    pub async fn own_arrays(&self) -> Result<Vec<String>, StoreError> {
        let session = self.store.session();
        let guard = session.read().await;
        let own = IcePath::try_from(floe_core::OWN_GROUP).map_err(|e| StoreError::Repository {
            repo: self.label.clone(),
            detail: e.to_string(),
        })?;
        let failed = |e: icechunk::session::SessionError| StoreError::Repository {
            repo: self.label.clone(),
            detail: e.to_string(),
        };
        let mut out = Vec::new();
        for n in guard.list_nodes(&own).await.map_err(failed)? {
            let n = n.map_err(failed)?;
            let path = n.path.to_string();
            if matches!(n.node_data, NodeData::Array { .. }) && floe_core::is_own_node(&path) {
                out.push(path);
            }
        }
        Ok(out)
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
            if !inside || floe_core::is_own_node(&path) {
                continue;
            }
            if !is_array {
                if let Some(meta) = self.get_json(&path).await? {
                    let attrs = meta["attributes"].as_object().cloned().unwrap_or_default();
                    state.group_attrs.insert(path.clone(), attrs);
                }
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
                    && let Some(v) = dtype.element(&b)
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
        self.throttled.set(&key, Bytes::from(body)).await.map_err(|e| self.failed(path, e))
    }

    /// Create Floe's own group (statistics, provenance log) unless the session has it.
    pub async fn ensure_own_group(&mut self) -> Result<(), StoreError> {
        if self.node_metadata(floe_core::OWN_GROUP).await?.is_none() {
            let meta = floe_plan::group_metadata(&serde_json::Map::new());
            self.put_group(floe_core::OWN_GROUP, &meta).await?;
        }
        Ok(())
    }

    /// Write (create or resize) an array's `zarr.json`.
    pub async fn put_array(&mut self, path: &str, metadata: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let body = serde_json::to_vec(metadata).map_err(|e| array_err(path, e))?;
        self.throttled.set(&key, Bytes::from(body)).await.map_err(|e| self.failed(path, e))?;
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

    /// Write `body` to `place` of the array in the background, once the budget has
    /// room. An earlier upload of the same array that failed reports its error here.
    async fn upload(
        &self,
        path: &str,
        array: Arc<Array<Store>>,
        place: Place,
        body: Values,
    ) -> Result<(), StoreError> {
        self.reap(path).await?;
        let bytes = match body {
            Values::Fixed(b) => ArrayBytes::new_flen(b),
            Values::Text(v) => {
                v.into_array_bytes(array.data_type()).map_err(|e| array_err(path, e))?
            }
        };
        let total = UPLOAD_BUDGET >> 10;
        let permits = (bytes.size() >> 10).clamp(1, total) as u32;
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|e| array_err(path, e))?;
        let p = path.to_string();
        let store = self.throttled.clone();
        let faults = self.faults.clone();
        let handle = tokio::spawn(async move {
            let result = match place {
                Place::Chunk(idx) => array.async_store_chunk(&idx, bytes).await,
                Place::Chunks(subset) => array.async_store_array_subset(&subset, bytes).await,
            };
            drop(permit);
            if result.is_ok() {
                faults.reached(FaultPoint::ChunkStored);
            }
            result.map_err(|e| store_err(&store, &p, e))
        });
        lock(&self.uploads).entry(path.to_string()).or_default().push(handle);
        Ok(())
    }

    /// Collect the uploads of `path` that have finished; the first error if any failed.
    async fn reap(&self, path: &str) -> Result<(), StoreError> {
        let done: Vec<_> = {
            let mut map = lock(&self.uploads);
            let Some(v) = map.get_mut(path) else { return Ok(()) };
            let (done, running): (Vec<_>, Vec<_>) = v.drain(..).partition(|h| h.is_finished());
            *v = running;
            done
        };
        join(path, done).await
    }

    /// Wait for the uploads of `path` (all arrays: `None`) to finish.
    async fn settle(&self, path: Option<&str>) -> Result<(), StoreError> {
        let taken: Vec<(String, Vec<_>)> = {
            let mut map = lock(&self.uploads);
            match path {
                Some(p) => map.remove(p).map(|v| vec![(p.to_string(), v)]).unwrap_or_default(),
                None => map.drain().collect(),
            }
        };
        let mut first = Ok(());
        for (p, handles) in taken {
            let r = join(&p, handles).await;
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Upload the tail of `path` if it holds records not written yet (padded with fill
    /// to a whole chunk), in the background.
    async fn upload_dirty_tail(&self, path: &str) -> Result<(), StoreError> {
        let dirty = lock(&self.tails).get_mut(path).filter(|t| t.dirty).map(|t| {
            t.dirty = false;
            t.clone()
        });
        match dirty {
            Some(t) => {
                let array = self.current_array(path).await?;
                self.upload_tail(path, array, &t).await
            }
            None => Ok(()),
        }
    }

    /// Upload what the session still holds of `path` and wait for every upload of
    /// it: afterwards the session holds everything written to it.
    async fn flush(&self, path: &str) -> Result<(), StoreError> {
        self.upload_dirty_tail(path).await?;
        self.settle(Some(path)).await
    }

    /// The array at `path` as this session holds it now.
    async fn current_array(&self, path: &str) -> Result<Arc<Array<Store>>, StoreError> {
        let cached = self.cache().get(path).cloned();
        match cached {
            Some(a) => Ok(a),
            None => {
                let meta = self
                    .get_json(path)
                    .await?
                    .ok_or_else(|| array_err(path, "the array is gone from the session"))?;
                self.array(path, &meta)
            }
        }
    }

    /// Write a tail's chunk whole (its records, then fill), in the background.
    async fn upload_tail(
        &self,
        path: &str,
        array: Arc<Array<Store>>,
        tail: &Tail,
    ) -> Result<(), StoreError> {
        let body = tail.values.padded(&tail.fill, tail.chunk_elements);
        let mut idx = vec![0u64; array.shape().len()];
        idx[0] = tail.chunk;
        self.upload(path, array, Place::Chunk(idx), body).await
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
        // a partial chunk write reads the chunk back: everything before it must be there
        self.flush(path).await?;
        lock(&self.tails).remove(path);
        let array = self.array(path, metadata)?;
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), count.to_vec())
            .map_err(|e| array_err(path, e))?;
        let result = match data {
            Data::Fixed(bytes) => {
                array.async_store_array_subset(&subset, ArrayBytes::new_flen(bytes)).await
            }
            Data::Strings(strings) => array.async_store_array_subset(&subset, strings).await,
        };
        result.map_err(|e| self.failed(path, e))
    }

    /// Overwrite the hyperslab `start..start+count` with the array's fill value (a
    /// deleted time window). A chunk left all fill is not stored (Zarr's rule): it
    /// leaves the manifest, and its old bytes are garbage once no snapshot needs them.
    pub async fn fill(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<(), StoreError> {
        let n = count.iter().product::<u64>() as usize;
        let data = if metadata["data_type"].as_str() == Some("string") {
            let fill = metadata["fill_value"].as_str().unwrap_or_default().to_string();
            Data::Strings(vec![fill; n])
        } else {
            let array = self.array(path, metadata)?;
            // native order is little-endian on every platform Floe ships for, as Data is
            Data::Fixed(array.fill_value().as_ne_bytes().repeat(n))
        };
        self.write(path, metadata, start, count, data).await
    }

    /// Append records along the first axis: `start[0]` is the array's old length and
    /// `count[0]` records follow. Whole chunks are uploaded in the background as they
    /// are; the records of a partly filled chunk join the tail kept in memory (read
    /// back once if this session does not have it), which is uploaded when the chunk
    /// fills up or the session commits. Arrays whose chunks split the other axes take
    /// the general path.
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
        if !appends_whole_records(&shape, &chunk_shape, start, count) {
            return self.write(path, metadata, start, count, data).await;
        }
        let (new, fill, item) = values_and_fill(data, array.fill_value().as_ne_bytes().to_vec());
        // elements of one record; `item` bytes each (text: one string each)
        let per_record = shape[1..].iter().product::<u64>() as usize;
        let chunk_len = chunk_shape[0].max(1);
        let chunk_elements = chunk_len as usize * per_record;
        let mut new = new;
        let mut slice =
            |from: usize, records: u64| new.cut(from, records as usize * per_record, item);
        let (mut pos, end) = (start[0], start[0] + count[0]);
        let mut offset = 0usize; // in elements
        while pos < end {
            let chunk = pos / chunk_len;
            let in_chunk = pos - chunk * chunk_len;
            let whole = if in_chunk == 0 { (end - pos) / chunk_len * chunk_len } else { 0 };
            if whole > 0 {
                // whole chunks: written as they are, nothing read
                self.upload_records(path, &array, &shape, pos, whole, slice(offset, whole)).await?;
                lock(&self.tails).remove(path);
                offset += whole as usize * per_record;
                pos += whole;
                continue;
            }
            // a partly filled chunk: the records it holds already, then the new ones
            let take = (chunk_len - in_chunk).min(end - pos);
            let mut body = if in_chunk == 0 {
                match &fill {
                    Values::Fixed(_) => Values::Fixed(Vec::with_capacity(chunk_elements * item)),
                    Values::Text(_) => Values::Text(Vec::with_capacity(chunk_elements)),
                }
            } else {
                let held = ChunkStart { chunk, records: in_chunk, chunk_len };
                self.records_held(path, &array, metadata, &shape, held).await?
            };
            match (&mut body, slice(offset, take)) {
                (Values::Fixed(b), Values::Fixed(n)) => b.extend_from_slice(&n),
                (Values::Text(v), Values::Text(n)) => v.extend(n),
                _ => return Err(array_err(path, "text and numbers mixed in one array")),
            }
            let filled = in_chunk + take;
            let tail = Tail {
                chunk,
                records: filled,
                values: body,
                dirty: true,
                chunk_elements,
                fill: fill.clone(),
            };
            self.keep_tail(path, &array, tail, filled == chunk_len).await?;
            offset += take as usize * per_record;
            pos += take;
        }
        Ok(())
    }

    /// Upload records `pos .. pos + n` (whole chunks) in the background.
    async fn upload_records(
        &self,
        path: &str,
        array: &Arc<Array<Store>>,
        shape: &[u64],
        pos: u64,
        n: u64,
        values: Values,
    ) -> Result<(), StoreError> {
        let mut s = vec![0u64; shape.len()];
        s[0] = pos;
        let mut c = shape.to_vec();
        c[0] = n;
        let subset = ArraySubset::new_with_start_shape(s, c).map_err(|e| array_err(path, e))?;
        self.upload(path, array.clone(), Place::Chunks(subset), values).await
    }

    /// Keep a partly filled chunk's records in memory; a chunk that is `full` now is
    /// written instead, and no tail is left.
    async fn keep_tail(
        &self,
        path: &str,
        array: &Arc<Array<Store>>,
        tail: Tail,
        full: bool,
    ) -> Result<(), StoreError> {
        if full {
            lock(&self.tails).remove(path);
            self.upload_tail(path, array.clone(), &tail).await
        } else {
            lock(&self.tails).insert(path.to_string(), tail);
            Ok(())
        }
    }

    /// The records a partly filled chunk holds already: the tail this session
    /// keeps, else read back from the repository (after writing out a tail that is
    /// not where this append starts, which is never expected, so its records stay).
    async fn records_held(
        &self,
        path: &str,
        array: &Arc<Array<Store>>,
        metadata: &Value,
        shape: &[u64],
        at: ChunkStart,
    ) -> Result<Values, StoreError> {
        let cached = {
            let tails = lock(&self.tails);
            tails.get(path).map(|t| (t.chunk == at.chunk && t.records == at.records, t.clone()))
        };
        match cached {
            Some((true, t)) => return Ok(t.values),
            Some((false, t)) if t.dirty => self.upload_tail(path, array.clone(), &t).await?,
            _ => {}
        }
        self.settle(Some(path)).await?;
        let mut s = vec![0u64; shape.len()];
        s[0] = at.chunk * at.chunk_len;
        let mut c = shape.to_vec();
        c[0] = at.records;
        Ok(match self.read_stored(path, metadata, &s, &c).await? {
            Data::Fixed(b) => Values::Fixed(b),
            Data::Strings(v) => Values::Text(v),
        })
    }

    /// Read the hyperslab `start..start+count` of an array, as this session holds it
    /// (records still held in memory included).
    pub async fn read(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        self.flush(path).await?;
        self.read_stored(path, metadata, start, count).await
    }

    /// Read the hyperslab `start..start+count` of an array as stored.
    async fn read_stored(
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
            let data = self.cached_chunk(&array, path, &idx, text).await?;
            let origin: Vec<u64> = idx.iter().zip(&chunk).map(|(i, c)| i * c).collect();
            copy_box(&origin, &chunk, start, count, |src, dst, len| match data.as_ref() {
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

    /// One chunk, decoded: from the chunk cache when there is one.
    async fn cached_chunk(
        &self,
        array: &Array<Store>,
        path: &str,
        idx: &[u64],
        text: bool,
    ) -> Result<Arc<Data>, StoreError> {
        let Some(cache) = &self.chunk_cache else {
            return self.chunk_data(array, path, idx, text).await.map(Arc::new);
        };
        let key = (path.to_string(), idx.to_vec());
        if let Some(d) = lock(cache).get(&key) {
            return Ok(d);
        }
        let d = Arc::new(self.chunk_data(array, path, idx, text).await?);
        lock(cache).put(key, d.clone());
        Ok(d)
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
                array.async_retrieve_chunk(idx).await.map_err(|e| self.failed(path, e))?;
            return Ok(Data::Strings(v));
        }
        let b: ArrayBytes<'static> =
            array.async_retrieve_chunk(idx).await.map_err(|e| self.failed(path, e))?;
        Ok(Data::Fixed(b.into_fixed().map_err(|e| array_err(path, e))?.into_owned()))
    }

    /// Upload everything this session still holds (the records of partly filled
    /// chunks, all at once) and wait for every upload: afterwards only the commit
    /// itself is left. [`Writer::commit`] does this first; calling it before is free.
    pub async fn finish_uploads(&self) -> Result<(), StoreError> {
        let dirty: Vec<String> =
            lock(&self.tails).iter().filter(|(_, t)| t.dirty).map(|(p, _)| p.clone()).collect();
        for path in &dirty {
            self.upload_dirty_tail(path).await?;
        }
        self.settle(None).await
    }

    /// Commit everything written, with Floe's provenance: its files as rows of the
    /// provenance log (in this commit), the rest in the snapshot metadata.
    pub async fn commit(
        mut self,
        message: &str,
        provenance: &CommitProvenance,
    ) -> Result<String, StoreError> {
        let stored = crate::filelog::append(&mut self, provenance).await?;
        self.finish_uploads().await?;
        let mut props = BTreeMap::new();
        props.insert(PROVENANCE_KEY.to_string(), stored.to_value());
        let session = self.store.session();
        let mut guard = session.write().await;
        // another writer may have committed meanwhile: rebase onto it when the
        // changes do not overlap (other arrays, other groups); overlapping ones
        // (both appended to the same array) come back as a conflict
        let result = guard
            .commit(message)
            .properties(props)
            .max_concurrent_nodes(COMMIT_CONCURRENCY)
            .rebase(&icechunk::conflicts::detector::ConflictDetector, 3)
            .allow_empty(self.allow_empty)
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
                // a `floe expire` elsewhere rewrote the history under this commit
                // while it rebased (seen here: the rebase then walks past this
                // session's base and trips over its own changes): the commit did
                // not happen, and a replay on the new tip succeeds
                SessionErrorKind::ConflictingPathNotFound(_)
                | SessionErrorKind::MissingPrunedAncestorTxLog { .. } => {
                    Err(StoreError::Conflict(self.branch.clone()))
                }
                _ => Err(crate::remote::classify_error(&self.label, &e)),
            },
        }
    }

    /// The snapshot this session started from.
    pub async fn base_snapshot(&self) -> String {
        self.store.session().read().await.snapshot_id().to_string()
    }
}

/// Wait for uploads of `path`; the first error if any failed.
async fn join(path: &str, handles: Vec<Upload>) -> Result<(), StoreError> {
    let mut first = Ok(());
    for h in handles {
        let r = match h.await {
            Ok(r) => r,
            Err(e) => Err(array_err(path, format!("an upload stopped: {e}"))),
        };
        if first.is_ok() {
            first = r;
        }
    }
    first
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
    fn the_chunk_cache_keeps_to_its_limit_oldest_out_first() {
        use super::{Arc, ChunkCache};
        let mut c = ChunkCache { limit: 10, ..ChunkCache::default() };
        let key = |i: u64| ("/a".to_string(), vec![i]);
        let four = || Arc::new(Data::Fixed(vec![0; 4]));
        c.put(key(0), four());
        c.put(key(1), four());
        assert!(c.get(&key(0)).is_some() && c.get(&key(1)).is_some());
        c.put(key(2), four());
        assert!(c.get(&key(0)).is_none(), "the oldest went out");
        assert!(c.get(&key(1)).is_some() && c.get(&key(2)).is_some());
        assert_eq!(c.held, 8);
        c.put(key(3), Arc::new(Data::Fixed(vec![0; 11])));
        assert!(c.get(&key(3)).is_none(), "a chunk larger than the whole cache is not kept");
        assert_eq!(c.held, 8);
    }
    use floe_core::{CommitProvenance, RepoUrl};
    use floe_source::Data;
    use serde_json::{Value, json};

    fn meta(shape: &[u64], chunks: &[u64], dtype: &str, fill: &Value, codec: &str) -> Value {
        let first = if codec == "vlen-utf8" {
            json!({"name": "vlen-utf8"})
        } else {
            json!({"name": "bytes", "configuration": {"endian": "little"}})
        };
        json!({"zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill, "codecs": [first], "attributes": {}})
    }

    fn floats(from: u32, n: u32, width: u32) -> Vec<u8> {
        (from * width..(from + n) * width).flat_map(|i| (i as f32).to_le_bytes()).collect()
    }

    fn texts(from: u32, n: u32) -> Vec<String> {
        (from..from + n).map(|i| format!("s{i}")).collect()
    }

    /// Appends in pieces that start and end inside chunks, over two sessions: what a
    /// session reads (records held in memory included) and what a commit leaves are
    /// exactly the records appended, whole chunks and tails alike.
    #[test]
    fn appends_across_chunks_and_sessions_keep_every_record() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = RepoUrl::Local(dir.path().join("repo"));
            let repo = crate::Repo::open_for_write(&url, &[]).await.unwrap();
            let prov = CommitProvenance {
                rows: Default::default(),
                floe_version: "test".into(),
                files: Vec::new(),
                continues: None,
                gate: None,
                deletion: None,
            };
            let mut len = 0u32;
            // pieces: inside chunk 0, to its end, across 3 chunks, short, ...
            let pieces = [[3u32, 2, 22, 1, 5], [9, 7, 30, 2, 1]];
            for (session, lens) in pieces.iter().enumerate() {
                // the second session starts from a repository opened afresh: it reads
                // the partly filled chunk back instead of reusing the tail in memory
                let reopened = crate::Repo::open(&url).await.unwrap();
                let mut w = if session == 0 {
                    repo.writer("main").await
                } else {
                    reopened.writer("main").await
                }
                .unwrap();
                if session == 0 {
                    w.put_group("", &json!({"zarr_format": 3, "node_type": "group"}))
                        .await
                        .unwrap();
                }
                for (i, &n) in lens.iter().enumerate() {
                    let wave =
                        meta(&[u64::from(len + n), 2], &[8, 2], "float32", &json!(-1.0), "bytes");
                    let text = meta(&[u64::from(len + n)], &[8], "string", &json!(""), "vlen-utf8");
                    w.put_array("/wave", &wave).await.unwrap();
                    w.put_array("/text", &text).await.unwrap();
                    let (s, c) = (vec![u64::from(len), 0], vec![u64::from(n), 2]);
                    w.append("/wave", &wave, &s, &c, Data::Fixed(floats(len, n, 2))).await.unwrap();
                    let (s, c) = (vec![u64::from(len)], vec![u64::from(n)]);
                    w.append("/text", &text, &s, &c, Data::Strings(texts(len, n))).await.unwrap();
                    len += n;
                    if i + 1 == lens.len() {
                        continue; // the commit has to upload this tail by itself
                    }
                    // the session sees all of it, including the tail not uploaded yet
                    let (s, c) = (vec![0u64, 0], vec![u64::from(len), 2]);
                    let got = w.read("/wave", &wave, &s, &c).await.unwrap();
                    assert_eq!(got, Data::Fixed(floats(0, len, 2)), "in session, {len} records");
                    let got = w.read("/text", &text, &[0], &[u64::from(len)]).await.unwrap();
                    assert_eq!(got, Data::Strings(texts(0, len)));
                }
                w.commit("append", &prov).await.unwrap();
                // a fresh session reads from the repository alone
                let r = crate::Repo::open(&url).await.unwrap();
                let fresh = r.writer("main").await.unwrap();
                let wave = meta(&[u64::from(len), 2], &[8, 2], "float32", &json!(-1.0), "bytes");
                let got = fresh.read("/wave", &wave, &[0, 0], &[u64::from(len), 2]).await.unwrap();
                assert_eq!(got, Data::Fixed(floats(0, len, 2)), "committed, {len} records");
                let text = meta(&[u64::from(len)], &[8], "string", &json!(""), "vlen-utf8");
                let got = fresh.read("/text", &text, &[0], &[u64::from(len)]).await.unwrap();
                assert_eq!(got, Data::Strings(texts(0, len)));
                // past the last record, the last chunk holds fill
                let end = u64::from(len).div_ceil(8) * 8;
                let wave_full = meta(&[end, 2], &[8, 2], "float32", &json!(-1.0), "bytes");
                let (len, rest) = (u64::from(len), end - u64::from(len));
                let got = fresh.read("/wave", &wave_full, &[len, 0], &[rest, 2]).await.unwrap();
                let fill: Vec<u8> = std::iter::repeat_n((-1.0f32).to_le_bytes(), rest as usize * 2)
                    .flatten()
                    .collect();
                assert_eq!(got, Data::Fixed(fill));
            }
        });
    }

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
