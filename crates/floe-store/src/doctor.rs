//! `floe doctor`: can this machine write to that destination, and how fast?
//!
//! Each check says what it found and, when it fails, what to do. The write and
//! throughput probes put objects under `floe-doctor/` next to the repository and
//! delete them again; the repository itself is only read.

use std::time::Instant;

use bytes::Bytes;
use floe_core::RepoUrl;
use futures::TryStreamExt;
use icechunk::Repository;
use icechunk::storage::StorageContext;
use serde::Serialize;

use crate::StoreError;
use crate::secrets::Login;

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Works, but something deserves attention.
    Warn,
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// Everything the doctor found.
#[derive(Debug, Serialize)]
pub struct Diagnosis {
    pub repo: String,
    pub checks: Vec<Check>,
    /// Upload throughput measured, bytes per second.
    pub upload_bytes_per_sec: Option<f64>,
    /// Round trip of a small request, milliseconds.
    pub latency_ms: Option<f64>,
    /// The first failure, as the error a sync would have met.
    #[serde(skip)]
    pub error: Option<StoreError>,
}

impl Diagnosis {
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }
}

/// Where the credentials for `url` come from, by name only.
async fn credential_source(url: &RepoUrl, given: Option<&Login>) -> (Outcome, String) {
    if let Some(login) = given {
        let names: Vec<_> = login.vars.keys().map(String::as_str).collect();
        return (Outcome::Ok, format!("the login being checked ({})", names.join(", ")));
    }
    if url.is_local() {
        return (Outcome::Ok, "local repository: no credentials needed".into());
    }
    if let Some(login) = crate::secrets::keychain_login(url).await {
        let names: Vec<_> = login.vars.keys().map(String::as_str).collect();
        return (Outcome::Ok, format!("OS keychain login ({})", names.join(", ")));
    }
    let vars: Vec<&str> = crate::secrets::fields(url)
        .iter()
        .map(|f| f.var)
        .chain(["AZURE_STORAGE_USE_EMULATOR", "GOOGLE_APPLICATION_CREDENTIALS"])
        .filter(|v| std::env::var(v).is_ok_and(|x| !x.is_empty()))
        .collect();
    if vars.is_empty() {
        let keychain = if crate::secrets::keychain_enabled() {
            "no keychain login"
        } else {
            "keychain off (FLOE_KEYRING)"
        };
        (
            Outcome::Warn,
            format!(
                "{keychain} and no credential variables set; run `floe login {url}` (or set the AWS_* / AZURE_* variables)"
            ),
        )
    } else {
        (Outcome::Ok, format!("environment ({})", vars.join(", ")))
    }
}

fn fail(checks: &mut Vec<Check>, name: &'static str, e: &StoreError) {
    checks.push(Check { name, outcome: Outcome::Fail, detail: e.to_string() });
}

/// Examine the destination; `probe_bytes` are uploaded (in 4 MiB objects, 4 at a
/// time) to measure throughput, 0 skips that.
pub async fn diagnose(url: &RepoUrl, probe_bytes: u64) -> Diagnosis {
    diagnose_with(url, None, probe_bytes).await
}

/// [`diagnose`] with a login that is not in the keychain yet (checked before it is
/// kept), or the keychain's when `login` is `None`.
pub async fn diagnose_with(url: &RepoUrl, login: Option<Login>, probe_bytes: u64) -> Diagnosis {
    let mut d = Diagnosis {
        repo: url.to_string(),
        checks: Vec::new(),
        upload_bytes_per_sec: None,
        latency_ms: None,
        error: None,
    };
    let (outcome, detail) = credential_source(url, login.as_ref()).await;
    d.checks.push(Check { name: "credentials", outcome, detail });
    if let Err(e) = run_checks(&mut d, url, login, probe_bytes).await {
        d.error = Some(e);
    }
    d
}

/// The checks after the credentials, in order; the first that fails (it says so in
/// its line) stops the rest.
async fn run_checks(
    d: &mut Diagnosis,
    url: &RepoUrl,
    login: Option<Login>,
    probe_bytes: u64,
) -> Result<(), StoreError> {
    let storage = match crate::Repo::storage_with(url, login.clone()).await {
        Ok((s, _)) => s,
        Err(e) => return Err(failed(d, "storage", e)),
    };
    let found = reachable(d, url, &storage).await?;
    let detail = repository(url, login, found).await;
    d.checks.push(Check { name: "repository", outcome: Outcome::Ok, detail });
    if let RepoUrl::Local(p) = url
        && !p.exists()
    {
        // nothing to probe yet; the parent must be writable for the first sync
        d.checks.push(parent_writable(p));
        return Ok(());
    }
    let label = url.to_string();
    let settings = match storage.default_settings().await {
        Ok(s) => s,
        Err(e) => return Err(failed(d, "write", crate::remote::classify_error(&label, &e))),
    };
    let ctx = StorageContext::unattributed(&settings);
    let stamp = format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let mut written = write_probe(d, &label, storage.as_ref(), &ctx, &stamp).await?;
    if probe_bytes > 0 {
        written.extend(upload_probe(d, storage.as_ref(), &ctx, &stamp, probe_bytes).await);
    }
    clean_up(d, storage.as_ref(), &ctx, written).await;
    Ok(())
}

type DynStorage = dyn icechunk::Storage + Send + Sync;

/// A failed check's line; the failure, to return.
fn failed(d: &mut Diagnosis, name: &'static str, e: StoreError) -> StoreError {
    fail(&mut d.checks, name, &e);
    e
}

/// Does the destination answer (and how fast), and is there a repository?
async fn reachable(
    d: &mut Diagnosis,
    url: &RepoUrl,
    storage: &std::sync::Arc<DynStorage>,
) -> Result<bool, StoreError> {
    let t = Instant::now();
    let exists = match url {
        RepoUrl::Local(p) if !p.exists() => Ok(false),
        _ => Repository::exists(storage.clone(), None)
            .await
            .map_err(|e| crate::remote::classify_error(&url.to_string(), &e)),
    };
    let found = match exists {
        Ok(found) => found,
        Err(e) => return Err(failed(d, "reachable", e)),
    };
    let ms = t.elapsed().as_secs_f64() * 1e3;
    d.latency_ms = Some(ms);
    let detail = format!("answered in {ms:.0} ms");
    d.checks.push(Check { name: "reachable", outcome: Outcome::Ok, detail });
    Ok(found)
}

/// What the repository holds, in a line.
async fn repository(url: &RepoUrl, login: Option<Login>, found: bool) -> String {
    if !found {
        return "none yet: the first sync creates it".into();
    }
    match crate::Repo::open_with(url, login).await {
        Ok(r) => match r.history("main").await {
            Ok(h) => format!(
                "Icechunk repository, main has {} commit(s), newest {}",
                h.len(),
                h.first().map(|c| c.time.to_rfc3339()).unwrap_or_default()
            ),
            Err(e) => format!("Icechunk repository ({e})"),
        },
        Err(e) => format!("Icechunk repository that does not open: {e}"),
    }
}

/// Where a local repository does not exist yet: can its nearest parent be written?
fn parent_writable(p: &std::path::Path) -> Check {
    let parent = p.ancestors().skip(1).find(|a| a.exists());
    let writable = parent.is_some_and(|a| {
        let probe = a.join(format!(".floe-doctor-{}", std::process::id()));
        let ok = std::fs::write(&probe, b"floe doctor").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    });
    Check {
        name: "write",
        outcome: if writable { Outcome::Ok } else { Outcome::Fail },
        detail: match parent {
            Some(a) if writable => format!("{} is writable", a.display()),
            Some(a) => format!("{} is not writable: choose another place", a.display()),
            None => "no existing parent directory".into(),
        },
    }
}

/// May we write, read back and delete (what a sync needs)? The objects written.
async fn write_probe(
    d: &mut Diagnosis,
    label: &str,
    storage: &DynStorage,
    ctx: &StorageContext<'_>,
    stamp: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let small = format!("floe-doctor/{stamp}-write");
    let body = Bytes::from(format!("floe doctor {stamp}"));
    let wrote = async {
        storage.put_object(ctx, &small, body.clone(), None, Vec::new(), None).await?;
        let (stream, _) = storage.get_object_range(ctx, &small, None).await?;
        let back: Vec<Bytes> = stream.try_collect().await?;
        Ok::<_, icechunk::storage::StorageError>(back.concat() == body.as_ref())
    }
    .await;
    let (outcome, detail) = match wrote {
        Ok(true) => (Outcome::Ok, "wrote, read back and deleted a test object"),
        Ok(false) => (
            Outcome::Fail,
            "a test object read back different from what was written: the storage is not safe to use",
        ),
        Err(e) => return Err(failed(d, "write", crate::remote::classify_error(label, &e))),
    };
    d.checks.push(Check { name: "write", outcome, detail: detail.into() });
    Ok(vec![(small.trim_start_matches("floe-doctor/").to_string(), body.len() as u64)])
}

/// Upload `probe_bytes` of incompressible bytes (as compressed chunks are), 4 MiB
/// objects four at a time, and say how fast. The objects written.
async fn upload_probe(
    d: &mut Diagnosis,
    storage: &DynStorage,
    ctx: &StorageContext<'_>,
    stamp: &str,
    probe_bytes: u64,
) -> Vec<(String, u64)> {
    const PIECE: u64 = 4 << 20;
    let pieces = probe_bytes.div_ceil(PIECE).max(1);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = Vec::with_capacity(PIECE as usize);
    while data.len() < PIECE as usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    let data = Bytes::from(data);
    let names: Vec<String> =
        (0..pieces).map(|i| format!("floe-doctor/{stamp}-throughput-{i}")).collect();
    let t = Instant::now();
    // four at a time; the storage's boxed futures (no async closures) keep this
    // future Send for every caller, the app's command handlers included
    let mut results = Vec::with_capacity(names.len());
    for batch in names.chunks(4) {
        let puts =
            batch.iter().map(|n| storage.put_object(ctx, n, data.clone(), None, Vec::new(), None));
        results.extend(futures::future::join_all(puts).await);
    }
    let secs = t.elapsed().as_secs_f64().max(1e-6);
    let failed = results.iter().filter(|r| r.is_err()).count();
    let check = if failed == 0 {
        let rate = (pieces * PIECE) as f64 / secs;
        d.upload_bytes_per_sec = Some(rate);
        Check {
            name: "upload",
            outcome: Outcome::Ok,
            detail: format!(
                "{:.1} MB in {secs:.2} s: {:.1} MB/s ({:.0} MB/min)",
                (pieces * PIECE) as f64 / 1e6,
                rate / 1e6,
                rate * 60.0 / 1e6
            ),
        }
    } else {
        Check {
            name: "upload",
            outcome: Outcome::Fail,
            detail: format!("{failed} of {pieces} test uploads failed"),
        }
    };
    d.checks.push(check);
    names.iter().map(|n| (n.trim_start_matches("floe-doctor/").to_string(), PIECE)).collect()
}

/// Delete the test objects; a warning if some stay.
async fn clean_up(
    d: &mut Diagnosis,
    storage: &DynStorage,
    ctx: &StorageContext<'_>,
    written: Vec<(String, u64)>,
) {
    let n = written.len();
    let problem = match storage.delete_batch(ctx, "floe-doctor", written).await {
        Ok(r) if r.deleted_objects as usize >= n => None,
        Ok(r) => Some(format!("{} of {n} deleted", r.deleted_objects)),
        Err(e) => Some(crate::remote::message(&e)),
    };
    if let Some(p) = problem {
        d.checks.push(Check {
            name: "cleanup",
            outcome: Outcome::Warn,
            detail: format!(
                "could not delete the test objects under floe-doctor/ ({p}); delete them by hand"
            ),
        });
    }
}
