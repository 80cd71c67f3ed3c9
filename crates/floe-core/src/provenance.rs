//! What each commit records about the files it ingested.
//!
//! Provenance lives in the repository, so the repository itself is the record of
//! what has been ingested: a restart reads the branch history and never needs a
//! local journal to stay exactly-once. A commit's own record sits in the
//! snapshot's metadata under [`PROVENANCE_KEY`]; the files it ingested are rows of
//! the group's provenance log, an array in Floe's own group written in the same
//! commit (`floe-store` keeps it), which [`CommitProvenance::rows`] points into.
//! Icechunk keeps every snapshot's metadata in one repository-info object that
//! each commit rewrites and each reader fetches: a year of 15-minute files put
//! 3.72 MB of per-file provenance there (about 106 bytes a file, compressed), so
//! every commit cost more as the history grew and `floe stats` read the year's
//! provenance twice to answer from 0.85 MB of statistics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Key of Floe's entry in a snapshot's metadata map.
pub const PROVENANCE_KEY: &str = "floe";

/// One ingested source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProvenance {
    /// Path relative to the watched folder, with `/` separators.
    pub source: String,
    /// Size in bytes when ingested.
    pub size: u64,
    /// Modification time, RFC 3339 UTC.
    pub mtime: String,
    /// BLAKE3 hash of the file's bytes, hex.
    pub blake3: String,
    /// Source format, e.g. `netcdf4`, `netcdf3-classic`, `zarr-v3`.
    pub format: String,
    /// Group inside the repository the file was appended to.
    pub group: String,
    /// Records appended, per append dimension.
    pub records: BTreeMap<String, u64>,
    /// Index of the first appended record, per append dimension.
    pub offsets: BTreeMap<String, u64>,
    /// Records of the source this commit left out because an earlier commit took
    /// them, per append dimension: a file that grew after ingest (or is followed
    /// live) is taken in steps, and step `k` took the file's records
    /// `from[d] .. from[d] + records[d]` (empty: from the first record).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub from: BTreeMap<String, u64>,
    /// BLAKE3 digest of the values of every record variable over the records taken
    /// from this file so far (`0 .. from + records`), as the source stores them. A
    /// later version of the file whose first records give the same digest only grew;
    /// any other is refused. Absent in provenance of earlier Floe builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_blake3: Option<String>,
    /// The file's values of the global attributes its folder watches
    /// (`--tag-on-change`): a change starts a new settings period, tagged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// Everything Floe records in one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitProvenance {
    pub floe_version: String,
    /// The files this commit ingested. In the snapshot's metadata only for commits
    /// of earlier Floe builds; now read back from the provenance log (`rows`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileProvenance>,
    /// Where this commit's files are in each group's provenance log: rows
    /// `[first, count]`, by group (a commit usually ingests into one group).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rows: BTreeMap<String, [u64; 2]>,
    /// This branch continues another branch or repository, which a schema drift
    /// left behind: what that one held counts as held here (a folder that moved on
    /// does not ingest its earlier files again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<Continuation>,
    /// What the validation gate decided by hand: a commit that records held files
    /// released anyway, or dropped (`floe gate release|drop`). Such a commit holds no
    /// data of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateRecord>,
    /// Records overwritten with the fill value on purpose (`floe delete`): such a
    /// commit ingests no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionRecord>,
}

/// A time window deleted for good (`floe delete`), recorded in the commit that
/// overwrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRecord {
    /// The window, RFC 3339 UTC: records at `from` or later and before `to`.
    pub from: String,
    pub to: String,
    /// Arrays overwritten (absolute paths).
    pub variables: Vec<String>,
    /// Records overwritten, per record coordinate (absolute path).
    pub records: BTreeMap<String, u64>,
    /// Which: runs `[first, count]` of record indices, per record coordinate
    /// (`floe verify` expects fill values there, not the files' values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runs: BTreeMap<String, Vec<[u64; 2]>>,
    pub reason: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Tags removed because they still held the window (`--untag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untagged: Vec<String>,
}

/// A decision at the validation gate, recorded in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateRecord {
    /// The held commits were promoted although these checks failed.
    Released { failures: Vec<String>, at: String },
    /// The held commits were discarded; their files are not ingested again until
    /// they change.
    Dropped { files: Vec<DroppedFile>, failures: Vec<String>, at: String },
}

/// A source file whose held records were dropped at the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedFile {
    /// Path relative to the watched folder, with `/` separators.
    pub source: String,
    /// Group inside the repository it was meant for.
    pub group: String,
    /// BLAKE3 hash of its bytes when dropped: the same bytes are not taken again.
    pub blake3: String,
    pub size: u64,
}

/// Where a folder's data went on from, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// The repository continued (its URL, as the folder named it).
    pub repo: String,
    pub branch: String,
    /// Its tip when the folder moved on.
    pub snapshot: String,
    /// The drift, in words.
    pub reason: String,
}

impl CommitProvenance {
    /// Serialise into the value stored under [`PROVENANCE_KEY`]: one JSON text, not
    /// a map. Icechunk 2.3.1 decodes every snapshot's metadata into maps and encodes
    /// it again at each commit (`RepoInfo::add_snapshot`); at 2,000 one-file commits
    /// that rewrite was 38% of a commit's time (perf, `bench/commits.py`), and a text
    /// is one value to decode where the map was five.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::String(serde_json::to_string(self).unwrap_or_default())
    }

    /// Read back from a snapshot's metadata map, if Floe wrote it (as JSON text, or
    /// as a map, as earlier builds did).
    pub fn from_metadata(metadata: &BTreeMap<String, serde_json::Value>) -> Option<Self> {
        match metadata.get(PROVENANCE_KEY)? {
            serde_json::Value::String(text) => serde_json::from_str(text).ok(),
            value => Self::deserialize(value).ok(),
        }
    }

    /// Total records appended along `dim` in this commit.
    pub fn records_along(&self, dim: &str) -> u64 {
        self.files.iter().filter_map(|f| f.records.get(dim)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_snapshot_metadata() {
        let p = CommitProvenance {
            floe_version: "0.1.0".into(),
            rows: BTreeMap::from([("/".into(), [7, 1])]),
            files: vec![FileProvenance {
                source: "2024/01/a.nc".into(),
                size: 10,
                mtime: "2024-01-01T00:00:00Z".into(),
                blake3: "ab".into(),
                format: "netcdf4".into(),
                group: "/".into(),
                records: BTreeMap::from([("time".into(), 96)]),
                offsets: BTreeMap::from([("time".into(), 0)]),
                from: BTreeMap::new(),
                records_blake3: Some("cd".into()),
                settings: BTreeMap::from([("firmware".into(), "2.1".into())]),
            }],
            continues: Some(Continuation {
                repo: "/data/repo".into(),
                branch: "main".into(),
                snapshot: "S".into(),
                reason: "`/co2`: type changed".into(),
            }),
            gate: Some(GateRecord::Dropped {
                files: vec![DroppedFile {
                    source: "b.nc".into(),
                    group: "/".into(),
                    blake3: "ef".into(),
                    size: 3,
                }],
                failures: vec!["duplicates".into()],
                at: "2024-01-02T00:00:00Z".into(),
            }),
            deletion: Some(DeletionRecord {
                from: "2024-01-01T06:00:00Z".into(),
                to: "2024-01-01T07:00:00Z".into(),
                variables: vec!["/co2".into()],
                records: BTreeMap::from([("/time".into(), 360)]),
                runs: BTreeMap::from([("/time".into(), vec![[2160, 360]])]),
                reason: "calibration gas".into(),
                at: "2024-01-03T00:00:00Z".into(),
                untagged: Vec::new(),
            }),
        };
        // one text in the metadata, not a map (Icechunk re-encodes every snapshot's
        // metadata at each commit)
        assert!(p.to_value().is_string());
        let meta = BTreeMap::from([(PROVENANCE_KEY.to_string(), p.to_value())]);
        assert_eq!(CommitProvenance::from_metadata(&meta).unwrap(), p);
        assert_eq!(p.records_along("time"), 96);
        assert!(CommitProvenance::from_metadata(&BTreeMap::new()).is_none());
    }

    #[test]
    fn provenance_written_before_the_growth_fields_still_reads() {
        let old = serde_json::json!({"floe_version": "0.1.0", "files": [{
            "source": "a.nc", "size": 1, "mtime": "", "blake3": "ab", "format": "netcdf4",
            "group": "/", "records": {"time": 3}, "offsets": {"time": 0}}]});
        let meta = BTreeMap::from([(PROVENANCE_KEY.to_string(), old)]);
        let p = CommitProvenance::from_metadata(&meta).unwrap();
        assert!(p.files[0].from.is_empty() && p.files[0].records_blake3.is_none());
    }
}
