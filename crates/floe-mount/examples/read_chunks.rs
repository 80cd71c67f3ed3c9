//! Benchmark helper: read every chunk of one array straight through the icechunk
//! crate, in process (the baseline the mount is compared with), and print
//! `{"chunks":N,"bytes":B,"seconds":S}`.
//!
//!     read_chunks REPO SNAPSHOT_ID ARRAY_PATH [CONCURRENCY]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{StreamExt, TryStreamExt};
use icechunk::format::{ByteRange, Path as IcePath, SnapshotId};
use icechunk::repository::VersionInfo;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (repo, snap, array) = (&args[1], &args[2], &args[3]);
    let conc: usize = args.get(4).map(|c| c.parse().unwrap()).unwrap_or(8);
    let url = floe_core::RepoUrl::parse(repo).unwrap();
    let repo = floe_store::Repo::open(&url).await.unwrap();
    let id = SnapshotId::try_from(snap.as_str()).unwrap();
    let session = repo.repository().readonly_session(&VersionInfo::SnapshotId(id)).await.unwrap();
    let path = IcePath::new(&format!("/{}", array.trim_start_matches('/'))).unwrap();
    let t = std::time::Instant::now();
    let mut coords: Vec<_> = session
        .array_chunk_iterator(&path)
        .await
        .map_ok(|c| c.coord)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    coords.sort();
    let session = &session;
    let path = &path;
    let bytes: usize = futures::stream::iter(coords.iter())
        .map(|c| async move {
            let reader = session.get_chunk_reader(path, c, &ByteRange::ALL).await.unwrap().unwrap();
            reader.await.unwrap().len()
        })
        .buffered(conc)
        .fold(0, |a, n| async move { a + n })
        .await;
    println!(
        "{{\"chunks\":{},\"bytes\":{bytes},\"seconds\":{}}}",
        coords.len(),
        t.elapsed().as_secs_f64()
    );
}
