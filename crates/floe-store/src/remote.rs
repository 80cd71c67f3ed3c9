//! Object-store destinations: S3 (and S3-compatible endpoints), Azure Blob, GCS.
//!
//! Settings and credentials come from a `floe login` kept in the OS keychain
//! ([`crate::secrets`]) and, for what it does not hold, from the environment, the
//! way the clouds' own tools read it:
//!
//! | destination | variables |
//! | --- | --- |
//! | `s3://` | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default `us-east-1`), `AWS_ENDPOINT_URL` (S3-compatible servers: path-style; `http://` allowed) |
//! | `az://` | `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` or `AZURE_STORAGE_SAS_TOKEN`, `AZURE_STORAGE_USE_EMULATOR=true` with `AZURITE_BLOB_STORAGE_URL` for Azurite |
//! | `gs://` | `GOOGLE_SERVICE_ACCOUNT_KEY` (the JSON itself), `GOOGLE_APPLICATION_CREDENTIALS` / `GOOGLE_SERVICE_ACCOUNT` (a path to it) |

use std::collections::HashMap;
use std::sync::Arc;

use icechunk::Storage;
use icechunk::storage::{
    AzureCredentials, AzureStaticCredentials, GcsCredentials, GcsStaticCredentials, S3Credentials,
    S3Options, S3StaticCredentials, StorageErrorKind,
};

use crate::StoreError;

/// Where settings come from (the process environment, or a map in tests).
pub trait Env: Sync {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

fn first(env: &dyn Env, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| env.get(k))
}

fn prefix_opt(prefix: &str) -> Option<String> {
    (!prefix.is_empty()).then(|| prefix.to_string())
}

/// S3 options from the environment (pure, for testing).
pub fn s3_options(env: &dyn Env) -> (S3Options, S3Credentials) {
    let region =
        first(env, &["AWS_REGION", "AWS_DEFAULT_REGION"]).unwrap_or_else(|| "us-east-1".into());
    let mut opts = S3Options::default().with_region(region);
    if let Some(endpoint) = first(env, &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
        opts = opts
            .with_allow_http(endpoint.starts_with("http://"))
            .with_force_path_style(true)
            .with_endpoint_url(endpoint);
    }
    let creds = match (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            S3Credentials::Static(S3StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: env.get("AWS_SESSION_TOKEN"),
                expires_after: None,
            })
        }
        _ => S3Credentials::FromEnv,
    };
    (opts, creds)
}

/// Azure account, credentials and object_store settings from the environment.
pub fn azure_options(env: &dyn Env) -> (Option<String>, AzureCredentials, HashMap<String, String>) {
    let emulator = env.get("AZURE_STORAGE_USE_EMULATOR").is_some_and(|v| v == "true" || v == "1");
    let mut config = HashMap::new();
    if emulator {
        config.insert("use_emulator".to_string(), "true".to_string());
    }
    let account = first(env, &["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"])
        .or_else(|| emulator.then(|| "devstoreaccount1".to_string()));
    let creds = if let Some(key) = first(env, &["AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"]) {
        AzureCredentials::Static(AzureStaticCredentials::AccessKey(key))
    } else if let Some(sas) = env.get("AZURE_STORAGE_SAS_TOKEN") {
        AzureCredentials::Static(AzureStaticCredentials::SASToken(sas))
    } else {
        AzureCredentials::FromEnv
    };
    (account, creds, config)
}

/// The Azure account [`azure_options`] found, or what to set when there is none.
pub fn azure_account(account: Option<String>, label: &str) -> Result<String, StoreError> {
    account.ok_or_else(|| StoreError::Credentials {
        repo: label.to_string(),
        detail:
            "no storage account: set AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY)"
                .into(),
    })
}

/// GCS credentials: a service account key given whole, else what the environment says.
pub fn gcs_credentials(env: &dyn Env) -> GcsCredentials {
    match env.get("GOOGLE_SERVICE_ACCOUNT_KEY") {
        Some(key) => GcsCredentials::Static(GcsStaticCredentials::ServiceAccountKey(key)),
        None => GcsCredentials::FromEnv,
    }
}

/// Storage for a remote repository URL.
pub async fn storage(
    url: &floe_core::RepoUrl,
    env: &dyn Env,
) -> Result<Arc<dyn Storage + Send + Sync>, StoreError> {
    use floe_core::RepoUrl;
    let label = url.to_string();
    let err = |e: &dyn std::fmt::Display| StoreError::Repository {
        repo: label.clone(),
        detail: e.to_string(),
    };
    match url {
        RepoUrl::Local(_) => Err(err(&"not a remote repository")),
        RepoUrl::S3 { bucket, prefix } => {
            let (opts, creds) = s3_options(env);
            icechunk::storage::new_s3_object_store_storage(
                opts,
                bucket.clone(),
                prefix_opt(prefix),
                Some(creds),
                Vec::new(),
                Vec::new(),
            )
            .await
            .map_err(|e| err(&e))
        }
        RepoUrl::Azure { container, prefix } => {
            let (account, creds, config) = azure_options(env);
            let account = azure_account(account, &label)?;
            icechunk::storage::new_azure_blob_storage(
                account,
                container.clone(),
                prefix_opt(prefix),
                Some(creds),
                Some(config),
            )
            .await
            .map_err(|e| err(&e))
        }
        RepoUrl::Gcs { bucket, prefix } => icechunk::storage::new_gcs_storage(
            bucket.clone(),
            prefix_opt(prefix),
            Some(gcs_credentials(env)),
            None,
            Vec::new(),
            Vec::new(),
        )
        .map_err(|e| err(&e)),
    }
}

/// Turn a storage failure into the error a user can act on, from the kinds of the
/// errors in its chain: an I/O error's kind (disk full, permission, connection),
/// object_store's variants (HTTP 401/403 as `Unauthenticated`/`PermissionDenied`)
/// and its HTTP client's error kind (connect, timeout). What the chain does not
/// classify falls back to [`by_protocol_code`], and what object_store gave up
/// retrying is a failing storage.
pub fn classify_error(label: &str, e: &(dyn std::error::Error + 'static)) -> StoreError {
    let detail = message(e);
    let local = !label.contains("://");
    let chain = || std::iter::successors(Some(e), |c| c.source());
    if let Some(known) = chain().find_map(|cause| by_kind(label, local, cause, &detail)) {
        return known;
    }
    // object_store turns 401/403/404/409/412 into their own variants and retries the
    // rest (5xx, 429, broken connections) with backoff; what comes back as `Generic`
    // from a remote store, with nothing more specific in its chain, is that, given up
    // on for now: a failing storage, worth trying again later. (Its status is in the
    // client's retry error, which object_store does not export.)
    let gave_up = !local
        && chain().any(|c| {
            matches!(
                c.downcast_ref::<object_store::Error>(),
                Some(object_store::Error::Generic { .. })
            )
        });
    match by_protocol_code(label, detail) {
        StoreError::Repository { repo, detail } if gave_up => StoreError::Failing { repo, detail },
        known => known,
    }
}

/// Who this process runs as: `$USER`, else the name `/etc/passwd` gives the owner
/// of `/proc/self` (a service started without a login shell has no `$USER`).
fn current_user() -> String {
    if let Ok(u) = std::env::var("USER")
        && !u.is_empty()
    {
        return u;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
            let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
                t.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
                })
            });
            return name.unwrap_or_else(|| format!("uid {uid}"));
        }
    }
    "this user".into()
}

/// An error's own words: Icechunk appends a span trace ("context: ...") that says
/// nothing to a user.
pub fn message(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    match text.split_once("\n\ncontext:") {
        Some((head, _)) => head.trim_end().to_string(),
        None => text,
    }
}

/// The storage's own error kind inside one of Icechunk's. Icechunk nests its kinds
/// as `#[error(transparent)]` variants, whose `source()` skips the nested kind: a
/// leaf such as `ObjectNotFound` never shows up in the chain on its own.
fn storage_kind<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a StorageErrorKind> {
    use icechunk::repository::RepositoryErrorKind as R;
    use icechunk::session::SessionErrorKind as S;
    use icechunk::store::StoreErrorKind as T;
    let of_repository = |r: &'a R| match r {
        R::StorageError(k) => Some(k),
        _ => None,
    };
    let of_session = |s: &'a S| match s {
        S::StorageError(k) => Some(k),
        S::RepositoryError(r) => of_repository(r),
        _ => None,
    };
    if let Some(k) = cause.downcast_ref::<StorageErrorKind>() {
        return Some(k);
    }
    if let Some(t) = cause.downcast_ref::<T>() {
        return match t {
            T::SessionError(s) => of_session(s),
            T::RepositoryError(r) => of_repository(r),
            _ => None,
        };
    }
    if let Some(s) = cause.downcast_ref::<S>() {
        return of_session(s);
    }
    cause.downcast_ref::<R>().and_then(of_repository)
}

fn by_kind(
    label: &str,
    local: bool,
    cause: &(dyn std::error::Error + 'static),
    detail: &str,
) -> Option<StoreError> {
    let (repo, detail) = (label.to_string(), detail.to_string());
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind as K;
        return match io.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => {
                Some(StoreError::DiskFull { repo, detail })
            }
            K::PermissionDenied | K::ReadOnlyFilesystem if local => {
                Some(StoreError::NoPermission { repo, user: current_user(), detail })
            }
            K::PermissionDenied => Some(StoreError::Credentials { repo, detail }),
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::TimedOut
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable => Some(StoreError::Unreachable { repo, detail }),
            _ => None,
        };
    }
    // A missing repository, branch or tag has kinds of Icechunk's own, matched by
    // the callers before any of this: an object that is not found here is one the
    // repository refers to (a chunk, a manifest), and the repository is damaged.
    if storage_kind(cause).is_some_and(|k| matches!(k, StorageErrorKind::ObjectNotFound)) {
        return Some(StoreError::MissingObject { repo, detail });
    }
    if let Some(os) = cause.downcast_ref::<object_store::Error>() {
        return match os {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                Some(StoreError::Credentials { repo, detail })
            }
            object_store::Error::NotFound { .. } => {
                Some(StoreError::MissingObject { repo, detail })
            }
            _ => None,
        };
    }
    if let Some(http) = cause.downcast_ref::<object_store::client::HttpError>() {
        use object_store::client::HttpErrorKind as H;
        return match http.kind() {
            H::Connect | H::Timeout | H::Interrupted | H::Request => {
                Some(StoreError::Unreachable { repo, detail })
            }
            _ => None,
        };
    }
    None
}

/// What the chain's kinds leave open, by the storage protocol's own error code in
/// the response (S3's `<Code>`, Azure's `x-ms-error-code`, as object_store quotes
/// the body): codes are part of each protocol, spelled exactly so; HTTP statuses and
/// English words are not matched here (object_store's variants carry 401/403, its
/// HTTP client's kinds and the I/O kinds carry a failed connection).
fn by_protocol_code(label: &str, detail: String) -> StoreError {
    // (Azure answers a listing of an account or container that is not there with
    // `ResourceNotFound`)
    const MISSING_BUCKET: &[&str] =
        &["NoSuchBucket", "ContainerNotFound", "ResourceNotFound", "AccountNotFound"];
    const CREDENTIALS: &[&str] = &[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AuthenticationFailed",
        "AuthorizationFailure",
        "InvalidAuthenticationInfo",
    ];
    let has = |codes: &[&str]| codes.iter().any(|c| detail.contains(c));
    if has(MISSING_BUCKET) {
        StoreError::MissingBucket(label.to_string())
    } else if has(CREDENTIALS) {
        StoreError::Credentials { repo: label.to_string(), detail }
    } else {
        StoreError::Repository { repo: label.to_string(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn s3_compatible_endpoints_use_path_style_and_http() {
        let (o, c) = s3_options(&env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]));
        assert_eq!(o.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(o.allow_http && o.force_path_style);
        assert_eq!(o.region.as_deref(), Some("us-east-1"));
        assert!(matches!(c, S3Credentials::Static(_)));
        let (o, c) = s3_options(&env(&[("AWS_REGION", "eu-west-1")]));
        assert!(!o.allow_http && o.endpoint_url.is_none());
        assert!(matches!(c, S3Credentials::FromEnv));
    }

    #[test]
    fn azurite_needs_no_account() {
        let (a, c, cfg) = azure_options(&env(&[("AZURE_STORAGE_USE_EMULATOR", "true")]));
        assert_eq!(a.as_deref(), Some("devstoreaccount1"));
        assert!(matches!(c, AzureCredentials::FromEnv));
        assert_eq!(cfg.get("use_emulator").map(String::as_str), Some("true"));
        let (a, c, _) = azure_options(&env(&[
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("AZURE_STORAGE_ACCOUNT_KEY", "k"),
        ]));
        assert_eq!(a.as_deref(), Some("acct"));
        assert!(matches!(c, AzureCredentials::Static(_)));
    }

    #[test]
    fn storage_failures_are_classified_by_kind() {
        let io = |k| std::io::Error::new(k, "x");
        let c = |e: &(dyn std::error::Error + 'static)| classify_error("s3://b", e);
        assert!(matches!(c(&io(std::io::ErrorKind::StorageFull)), StoreError::DiskFull { .. }));
        assert!(matches!(
            c(&io(std::io::ErrorKind::ConnectionRefused)),
            StoreError::Unreachable { .. }
        ));
        assert!(matches!(
            c(&io(std::io::ErrorKind::PermissionDenied)),
            StoreError::Credentials { .. }
        ));
        assert!(matches!(
            classify_error("/data/repo", &io(std::io::ErrorKind::PermissionDenied)),
            StoreError::NoPermission { .. }
        ));
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: Box::new(io(std::io::ErrorKind::Other)),
        };
        assert!(matches!(c(&denied), StoreError::Credentials { .. }));
        // a kind deep in the chain counts: object_store wraps the client's error
        let deep = object_store::Error::Generic {
            store: "S3",
            source: Box::new(io(std::io::ErrorKind::TimedOut)),
        };
        assert!(matches!(c(&deep), StoreError::Unreachable { .. }));
        // what object_store gave up retrying (a 503 for minutes) is a failing storage
        let gave_up = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable".into(),
        };
        assert!(matches!(c(&gave_up), StoreError::Failing { .. }));
        // unless the storage's own error code says more
        let refused = object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: "403 Forbidden: <Code>AuthenticationFailed</Code>".into(),
        };
        assert!(matches!(c(&refused), StoreError::Credentials { .. }));
        assert!(matches!(classify_error("/data/repo", &gave_up), StoreError::Repository { .. }));
        // an object the repository refers to, gone: Icechunk's own leaf kind, nested
        // in kinds whose source() skips it
        use icechunk::session::SessionErrorKind;
        use icechunk::store::StoreErrorKind;
        let gone = icechunk::store::StoreError::capture(StoreErrorKind::SessionError(
            SessionErrorKind::StorageError(StorageErrorKind::ObjectNotFound),
        ));
        assert!(matches!(c(&gone), StoreError::MissingObject { .. }));
        let other = icechunk::store::StoreError::capture(StoreErrorKind::SessionError(
            SessionErrorKind::StorageError(StorageErrorKind::Other("x".into())),
        ));
        assert!(matches!(c(&other), StoreError::Repository { .. }));
    }

    #[test]
    fn what_the_kinds_leave_open_goes_by_the_protocol_code_only() {
        let text = |t: &str| by_protocol_code("s3://b", t.into());
        assert!(matches!(text("<Code>NoSuchBucket</Code>"), StoreError::MissingBucket(_)));
        assert!(matches!(text("ContainerNotFound"), StoreError::MissingBucket(_)));
        assert!(matches!(text("<Code>InvalidAccessKeyId</Code>"), StoreError::Credentials { .. }));
        // words and numbers in a message are not codes
        for words in ["403 Forbidden", "connection refused", "unauthorized", "not found"] {
            assert!(matches!(text(words), StoreError::Repository { .. }), "{words}");
        }
    }
}
