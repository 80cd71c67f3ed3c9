//! The provenance log: what each commit ingested, file by file, kept as data of
//! the repository rather than in its snapshots' metadata.
//!
//! Each data group has one text array in Floe's own group (`/.floe/provenance`
//! for the root group, `/.floe/provenance~<group>` for others), a row per
//! ingested file (or step of a file a logger keeps open): that file's
//! [`FileProvenance`] as JSON. A commit appends its rows in the same session as its
//! records, so they are exactly as atomic, branch-local and durable as the data
//! they describe (a staged, replayed or dropped commit takes its rows with it),
//! and its snapshot metadata keeps only where they are ([`CommitProvenance::rows`]).
//! The log only ever grows, so the tip's log holds the rows of every commit in
//! its history, expired ones included.
//!
//! Why not the metadata, where the files were before: Icechunk keeps every
//! snapshot's metadata in one repository-info object, which each commit rewrites
//! and each reader of the repository fetches. A year of 15-minute files put
//! 3.72 MB there (about 106 bytes a file, compressed), read twice by a `floe
//! stats` that needed 0.85 MB of statistics, and rewritten whole by every commit.
//! Here a commit rewrites one chunk of [`ROWS_PER_CHUNK`] rows (about 100 KB
//! before compression) and only the readers of a history read the log.

use std::collections::BTreeMap;

use floe_core::model::DType;
use floe_core::{CommitProvenance, FileProvenance};
use floe_source::Data;
use serde_json::{Map, Value, json};

use crate::repo::CommitInfo;
use crate::{Reader, Repo, StoreError, Writer};

/// Rows per chunk: a year of 15-minute files is 137 chunks, and a commit of one
/// file rewrites at most one of them (about 100 KB of JSON, 25 KB compressed).
pub const ROWS_PER_CHUNK: u64 = 256;
const FORMAT: u64 = 1;

/// The provenance log of a data group.
pub fn log_path(group: &str) -> String {
    let g = group.trim_matches('/');
    if g.is_empty() {
        format!("{}/provenance", floe_core::OWN_GROUP)
    } else {
        format!("{}/provenance~{}", floe_core::OWN_GROUP, g.replace('/', "~"))
    }
}

fn metadata(group: &str, rows: u64) -> Value {
    let attrs: Map<String, Value> = serde_json::from_value(json!({
        "floe": "provenance log: a row per ingested file, as JSON (floe log, floe verify)",
        "format": FORMAT,
        "group": group,
    }))
    .unwrap_or_default();
    floe_plan::array_metadata(
        &[rows],
        &[ROWS_PER_CHUNK],
        DType::Str,
        &["file".to_string()],
        &attrs,
        None,
    )
}

fn rows_of(meta: &Value) -> u64 {
    meta["shape"][0].as_u64().unwrap_or(0)
}

fn bad(path: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Array {
        path: path.to_string(),
        detail: format!(
            "{detail}: Floe's provenance log is damaged (was the repository edited by another tool?); `floe verify` checks the data against the sources"
        ),
    }
}

/// Write `provenance`'s files as rows of their groups' logs in `writer`'s session;
/// the provenance to store in the snapshot metadata: the same, with the files
/// replaced by where their rows are.
pub(crate) async fn append(
    writer: &mut Writer,
    provenance: &CommitProvenance,
) -> Result<CommitProvenance, StoreError> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in &provenance.files {
        let row = serde_json::to_string(f).map_err(|e| bad(&log_path(&f.group), e))?;
        by_group.entry(f.group.as_str()).or_default().push(row);
    }
    let mut stored = CommitProvenance { files: Vec::new(), ..provenance.clone() };
    for (group, rows) in by_group {
        let n = rows.len() as u64;
        let (path, meta, first) = grow(writer, group, n).await?;
        stored.rows.insert(group.to_string(), [first, n]);
        writer.append(&path, &meta, &[first], &[n], Data::Strings(rows)).await?;
    }
    Ok(stored)
}

/// Make room for `n` more rows in `group`'s log (creating it, and Floe's own group):
/// the log's path, its new metadata and the index of the first new row.
async fn grow(
    writer: &mut Writer,
    group: &str,
    n: u64,
) -> Result<(String, Value, u64), StoreError> {
    let path = log_path(group);
    let held = match writer.node_metadata(&path).await? {
        Some(meta) => rows_of(&meta),
        None => {
            writer.ensure_own_group().await?;
            0
        }
    };
    let meta = metadata(group, held + n);
    writer.put_array(&path, &meta).await?;
    Ok((path, meta, held))
}

/// Put the files back into a history (newest first) whose commits keep them in the
/// provenance log: every commit's rows are in the log of its newest commit.
pub(crate) async fn restore(
    repo: &Repo,
    mut history: Vec<CommitInfo>,
) -> Result<Vec<CommitInfo>, StoreError> {
    let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
    for p in history.iter().filter_map(|c| c.provenance.as_ref()) {
        for (group, [first, count]) in &p.rows {
            let end = wanted.entry(group.clone()).or_default();
            *end = (*end).max(first + count);
        }
    }
    let Some(tip) = history.first().filter(|_| !wanted.is_empty()) else { return Ok(history) };
    let reader = repo.reader_at(&tip.id).await?;
    let mut logs = BTreeMap::new();
    for (group, end) in wanted {
        let rows = read(&reader, &group, end).await?;
        logs.insert(group, rows);
    }
    for p in history.iter_mut().filter_map(|c| c.provenance.as_mut()) {
        for (group, [first, count]) in &p.rows {
            let rows = &logs[group];
            p.files.extend_from_slice(&rows[*first as usize..(first + count) as usize]);
        }
    }
    Ok(history)
}

/// Rows `0..end` of `group`'s log.
async fn read(reader: &Reader, group: &str, end: u64) -> Result<Vec<FileProvenance>, StoreError> {
    let path = log_path(group);
    let meta = reader
        .node_metadata(&path)
        .await?
        .ok_or_else(|| bad(&path, "the history names rows of a log that is not there"))?;
    if rows_of(&meta) < end {
        return Err(bad(
            &path,
            format!("the history names {end} rows and the log holds {}", rows_of(&meta)),
        ));
    }
    if end == 0 {
        return Ok(Vec::new());
    }
    let Data::Strings(rows) = reader.read(&path, &meta, &[0], &[end]).await? else {
        return Err(bad(&path, "the log is not text"));
    };
    rows.iter()
        .enumerate()
        .map(|(i, r)| serde_json::from_str(r).map_err(|e| bad(&path, format!("row {i}: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_has_a_log_of_its_own() {
        assert_eq!(log_path("/"), "/.floe/provenance");
        assert_eq!(log_path(""), "/.floe/provenance");
        assert_eq!(log_path("/radar/sweep_0"), "/.floe/provenance~radar~sweep_0");
        assert!(floe_core::is_own_node(&log_path("/a")));
    }

    fn file(source: &str, group: &str, n: u64) -> FileProvenance {
        FileProvenance {
            source: source.into(),
            size: n,
            mtime: "2024-01-01T00:00:00Z".into(),
            blake3: format!("{n:064x}"),
            format: "netcdf4".into(),
            group: group.into(),
            records: BTreeMap::from([("time".into(), n)]),
            offsets: BTreeMap::from([("time".into(), 0)]),
            from: BTreeMap::new(),
            records_blake3: None,
            settings: BTreeMap::new(),
        }
    }

    /// Commits of many files, in two groups, over several chunks of the log and
    /// several sessions: the history names every file of every commit, in order,
    /// and the snapshot metadata holds where they are, not the files.
    #[test]
    fn the_history_reads_each_commits_files_back_from_the_log() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = floe_core::RepoUrl::Local(dir.path().join("repo"));
            let sizes = [1u64, ROWS_PER_CHUNK - 1, 2, ROWS_PER_CHUNK * 2 + 3, 1];
            let mut wrote = Vec::new();
            for (k, n) in sizes.iter().enumerate() {
                // every other commit from a repository opened afresh: the log's
                // partly filled chunk is read back, not kept in memory
                let repo = Repo::open_for_write(&url, &[]).await.unwrap();
                let group = if k % 2 == 0 { "/" } else { "/lidar/profile" };
                let files: Vec<_> =
                    (0..*n).map(|i| file(&format!("c{k}/f{i}.nc"), group, i + 1)).collect();
                let p = CommitProvenance {
                    floe_version: "test".into(),
                    files: files.clone(),
                    rows: BTreeMap::new(),
                    continues: None,
                    gate: None,
                    deletion: None,
                };
                repo.writer("main").await.unwrap().commit(&format!("c{k}"), &p).await.unwrap();
                wrote.push(files);
            }
            let repo = Repo::open(&url).await.unwrap();
            let history = repo.history("main").await.unwrap();
            let ours: Vec<_> = history.iter().rev().filter_map(|c| c.provenance.clone()).collect();
            assert_eq!(ours.len(), sizes.len());
            for (k, (p, files)) in ours.iter().zip(&wrote).enumerate() {
                assert_eq!(&p.files, files, "commit {k}");
                assert_eq!(p.rows.values().map(|r| r[1]).sum::<u64>(), sizes[k]);
            }
            // the root group's log holds commits 0, 2 and 4: 1 + 2 + 1 rows
            assert_eq!(ours[4].rows["/"], [3, 1]);
            // the metadata itself holds no file
            let tip = icechunk::repository::VersionInfo::BranchTipRef("main".into());
            let raw = repo.inner.ancestry(&tip).await.unwrap();
            let infos: Vec<_> = futures::TryStreamExt::try_collect(raw).await.unwrap();
            let stored = CommitProvenance::from_metadata(&infos[0].metadata).unwrap();
            assert!(stored.files.is_empty() && stored.rows["/"] == [3, 1], "{stored:?}");
            // and the logs are Floe's own nodes, not data
            let state = repo.reader("main").await.unwrap().state("/").await.unwrap();
            assert!(state.arrays.is_empty(), "{:?}", state.arrays.keys());
        });
    }

    #[test]
    fn the_log_is_a_text_array_of_whole_chunks_of_rows() {
        let m = metadata("/", 300);
        assert_eq!(m["data_type"], "string");
        assert_eq!(m["shape"], json!([300]));
        assert_eq!(m["chunk_grid"]["configuration"]["chunk_shape"], json!([ROWS_PER_CHUNK]));
        assert_eq!(rows_of(&m), 300);
    }
}
