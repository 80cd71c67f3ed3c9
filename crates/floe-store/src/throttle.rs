//! An upload bandwidth limit: every byte a session writes to storage (encoded
//! chunks, metadata) first takes its share of a token bucket (`governor`, the
//! rate limiter the Rust ecosystem uses). One [`Throttle`] is shared by all the
//! folders of a daemon, so the setting caps the machine's upload, not each folder's.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    AsyncListableStorageTraits, AsyncMaybeBytesIterator, AsyncReadableStorageTraits,
    AsyncWritableStorageTraits, Bytes, MaybeBytes, OffsetBytesIterator, StorageError, StoreKey,
    StoreKeys, StoreKeysPrefixes, StorePrefix,
};

/// Tokens are KiB, so a limit up to 4 TiB/s fits the limiter's 32-bit counts.
const UNIT: u64 = 1024;

/// A shared upload budget in bytes per second.
#[derive(Debug)]
pub struct Throttle {
    limiter: DefaultDirectRateLimiter,
    burst: u32,
    bytes_per_sec: u64,
}

impl Throttle {
    /// At most `bytes_per_sec` (at least 1 KiB/s), with bursts of one second's worth.
    pub fn new(bytes_per_sec: u64) -> Arc<Throttle> {
        let per_sec = u32::try_from((bytes_per_sec / UNIT).max(1)).unwrap_or(u32::MAX);
        let rate = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        Arc::new(Throttle {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(rate)),
            burst: rate.get(),
            bytes_per_sec,
        })
    }

    pub fn bytes_per_sec(&self) -> u64 {
        self.bytes_per_sec
    }

    /// Wait until `bytes` may go out (larger amounts than a burst go in pieces).
    pub async fn take(&self, bytes: u64) {
        let mut units = bytes.div_ceil(UNIT);
        while units > 0 {
            let n = units.min(u64::from(self.burst)) as u32;
            if let Some(n) = NonZeroU32::new(n) {
                // n never exceeds the burst, so this cannot fail
                let _ = self.limiter.until_n_ready(n).await;
            }
            units -= u64::from(n);
        }
    }
}

/// A zarrs store that charges writes to a [`Throttle`] (reads pass untouched).
///
/// With [`Throttled::direct`], whole-key reads and writes go straight to the
/// Icechunk store, so that a failure keeps its kind: zarrs passes storage errors on
/// as text, and a full disk or a refused key would read as a failed array. The
/// failure, classified from its error kinds, waits in [`Throttled::take_failure`] for
/// the writer that sees the text.
pub struct Throttled<S> {
    inner: Arc<S>,
    throttle: Option<Arc<Throttle>>,
    direct: Option<(icechunk::Store, String)>,
    failure: std::sync::Mutex<Option<crate::StoreError>>,
}

impl<S> std::fmt::Debug for Throttled<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled").field("throttle", &self.throttle).finish_non_exhaustive()
    }
}

impl<S> Throttled<S> {
    pub fn new(inner: Arc<S>, throttle: Option<Arc<Throttle>>) -> Self {
        Throttled { inner, throttle, direct: None, failure: std::sync::Mutex::new(None) }
    }

    /// Write through `store` (the same session as `inner`), failures classified
    /// for the repository `label`.
    pub fn direct(mut self, store: icechunk::Store, label: &str) -> Self {
        self.direct = Some((store, label.to_string()));
        self
    }

    /// The classified failure of the last read or write that failed, if any.
    pub fn take_failure(&self) -> Option<crate::StoreError> {
        floe_core::lock(&self.failure).take()
    }

    /// Keep the failure, classified, for [`Throttled::take_failure`]; zarrs gets its
    /// text.
    fn stash(&self, label: &str, e: &icechunk::store::StoreError) -> StorageError {
        *floe_core::lock(&self.failure) = Some(crate::remote::classify_error(label, e));
        StorageError::Other(crate::remote::message(e))
    }

    async fn charge(&self, bytes: usize) {
        if let Some(t) = &self.throttle {
            t.take(bytes as u64).await;
        }
    }
}

#[async_trait]
impl<S: AsyncReadableStorageTraits> AsyncReadableStorageTraits for Throttled<S> {
    async fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges).await
    }

    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        let Some((store, label)) = &self.direct else {
            return self.inner.get(key).await;
        };
        match store.get(key.as_str(), &icechunk::format::ByteRange::ALL).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if matches!(e.kind(), icechunk::store::StoreErrorKind::NotFound(_)) => Ok(None),
            Err(e) => Err(self.stash(label, &e)),
        }
    }

    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key).await
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

#[async_trait]
impl<S: AsyncWritableStorageTraits> AsyncWritableStorageTraits for Throttled<S> {
    async fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.charge(value.len()).await;
        let Some((store, label)) = &self.direct else {
            return self.inner.set(key, value).await;
        };
        store.set(key.as_str(), value).await.map_err(|e| self.stash(label, &e))
    }

    async fn set_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator<'a>,
    ) -> Result<(), StorageError> {
        let values: Vec<(u64, Bytes)> = offset_values.collect();
        self.charge(values.iter().map(|(_, b)| b.len()).sum()).await;
        self.inner.set_partial_many(key, Box::new(values.into_iter())).await
    }

    async fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key).await
    }

    async fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix).await
    }

    fn supports_set_partial(&self) -> bool {
        self.inner.supports_set_partial()
    }
}

#[async_trait]
impl<S: AsyncListableStorageTraits> AsyncListableStorageTraits for Throttled<S> {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list().await
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix).await
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix).await
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_holds_over_time() {
        // 4 MiB/s: the first second's worth goes at once, 4 MiB more (in pieces
        // larger and smaller than a burst) take about a second
        let t = Throttle::new(4 << 20);
        let start = std::time::Instant::now();
        t.take(4 << 20).await;
        assert!(start.elapsed().as_secs_f64() < 0.2);
        t.take(3 << 20).await;
        for _ in 0..4 {
            t.take(256 << 10).await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.9..1.5).contains(&took), "{took}");
    }
}
