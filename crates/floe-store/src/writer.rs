use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// One writable session on a branch. Everything written through it becomes visible
/// in one atomic commit ([`Writer::commit`]) or not at all.
pub struct Writer {
    store: Arc<AsyncIcechunkStore>,
    branch: String,
    label: String,
    /// Arrays opened in this session, by path (shared by concurrent writes).
    arrays: Mutex<HashMap<String, Arc<Array<AsyncIcechunkStore>>>>,
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

fn array_err(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Array { path: path.to_string(), detail: e.to_string() }
}

impl Writer {
    pub(crate) fn new(session: icechunk::session::Session, branch: &str, label: &str) -> Self {
        Writer {
            store: Arc::new(AsyncIcechunkStore::new(session)),
            branch: branch.to_string(),
            label: label.to_string(),
            arrays: Mutex::new(HashMap::new()),
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
            let chunks: Vec<u64> =
                serde_json::from_value(meta["chunk_grid"]["configuration"]["chunk_shape"].clone())
                    .unwrap_or_default();
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
        self.store.set(&key, Bytes::from(body)).await.map_err(|e| array_err(path, e))
    }

    /// Write (create or resize) an array's `zarr.json`.
    pub async fn put_array(&mut self, path: &str, metadata: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key_for(path)).map_err(|e| array_err(path, e))?;
        let body = serde_json::to_vec(metadata).map_err(|e| array_err(path, e))?;
        self.store.set(&key, Bytes::from(body)).await.map_err(|e| array_err(path, e))?;
        self.cache().remove(path);
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Array<AsyncIcechunkStore>>>> {
        // a panic while holding this lock cannot leave the map inconsistent
        self.arrays.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn array(
        &self,
        path: &str,
        metadata: &Value,
    ) -> Result<Arc<Array<AsyncIcechunkStore>>, StoreError> {
        if let Some(a) = self.cache().get(path) {
            return Ok(a.clone());
        }
        let meta: ArrayMetadata =
            serde_json::from_value(metadata.clone()).map_err(|e| array_err(path, e))?;
        let array = Arc::new(
            Array::new_with_metadata(self.store.clone(), path, meta)
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

    /// Read the hyperslab `start..start+count` of an array as stored.
    pub async fn read(
        &self,
        path: &str,
        metadata: &Value,
        start: &[u64],
        count: &[u64],
    ) -> Result<Data, StoreError> {
        let meta: ArrayMetadata =
            serde_json::from_value(metadata.clone()).map_err(|e| array_err(path, e))?;
        let array = Array::new_with_metadata(self.store.clone(), path, meta)
            .map_err(|e| array_err(path, e))?;
        let subset = ArraySubset::new_with_start_shape(start.to_vec(), count.to_vec())
            .map_err(|e| array_err(path, e))?;
        if metadata["data_type"].as_str() == Some("string") {
            let v: Vec<String> =
                array.async_retrieve_array_subset(&subset).await.map_err(|e| array_err(path, e))?;
            return Ok(Data::Strings(v));
        }
        let b: ArrayBytes<'static> =
            array.async_retrieve_array_subset(&subset).await.map_err(|e| array_err(path, e))?;
        let raw = b.into_fixed().map_err(|e| array_err(path, e))?;
        Ok(Data::Fixed(raw.into_owned()))
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
        let result = guard.commit(message).properties(props).execute().await;
        match result {
            Ok(id) => Ok(id.to_string()),
            Err(e) => match e.kind() {
                SessionErrorKind::Conflict { .. } | SessionErrorKind::RebaseFailed { .. } => {
                    Err(StoreError::Conflict(self.branch.clone()))
                }
                _ => {
                    Err(StoreError::Repository { repo: self.label.clone(), detail: e.to_string() })
                }
            },
        }
    }

    /// The snapshot this session started from.
    pub async fn base_snapshot(&self) -> String {
        self.store.session().read().await.snapshot_id().to_string()
    }

    /// Paths of groups and arrays this session has touched (for tests and dry runs).
    pub fn touched(&self) -> BTreeSet<String> {
        self.cache().keys().cloned().collect()
    }
}
