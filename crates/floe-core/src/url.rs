//! Repository locations: a local path or `file://` URL, `s3://`, `az://`, `gs://`.

use std::fmt;
use std::path::PathBuf;

/// Where an Icechunk repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoUrl {
    /// A directory on a local disk or a mounted NAS.
    Local(PathBuf),
    /// An S3 (or S3-compatible) bucket and key prefix.
    S3 { bucket: String, prefix: String },
    /// An Azure Blob container and blob prefix.
    Azure { container: String, prefix: String },
    /// A Google Cloud Storage bucket and prefix.
    Gcs { bucket: String, prefix: String },
}

/// Why a repository URL could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoUrlError {
    #[error(
        "the repository location is empty: give a local path or a URL such as s3://bucket/prefix"
    )]
    Empty,
    #[error(
        "unsupported repository scheme `{0}://`: use a local path, file://, s3://, az:// or gs://"
    )]
    UnsupportedScheme(String),
    #[error("`{0}` names no bucket or container: write it as {1}://<bucket>/<prefix>")]
    MissingBucket(String, &'static str),
    #[error(
        "`{0}` is not a valid bucket or container name: use lowercase letters, digits, `-` and `.`"
    )]
    InvalidBucket(String),
    #[error("`{0}` is not a local file URL: write file:///absolute/path")]
    BadFileUrl(String),
}

impl RepoUrl {
    /// Parse a repository location as a user typed it.
    pub fn parse(input: &str) -> Result<Self, RepoUrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RepoUrlError::Empty);
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Ok(RepoUrl::Local(PathBuf::from(input)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs/path or file://localhost/abs/path
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(RepoUrlError::BadFileUrl(input.to_string()));
                }
                Ok(RepoUrl::Local(PathBuf::from(path)))
            }
            "s3" => {
                let (bucket, prefix) = split_bucket(input, rest, "s3")?;
                Ok(RepoUrl::S3 { bucket, prefix })
            }
            "az" | "azure" | "abfs" => {
                let (container, prefix) = split_bucket(input, rest, "az")?;
                Ok(RepoUrl::Azure { container, prefix })
            }
            "gs" | "gcs" => {
                let (bucket, prefix) = split_bucket(input, rest, "gs")?;
                Ok(RepoUrl::Gcs { bucket, prefix })
            }
            other => Err(RepoUrlError::UnsupportedScheme(other.to_string())),
        }
    }

    /// True for repositories on a local or mounted filesystem.
    pub fn is_local(&self) -> bool {
        matches!(self, RepoUrl::Local(_))
    }

    /// The location `rel` (a `/`-separated relative prefix) below this one:
    /// `s3://b/lab` + `ctd/2024` -> `s3://b/lab/ctd/2024`.
    pub fn child(&self, rel: &str) -> RepoUrl {
        let rel = rel.trim_matches('/');
        let under = |prefix: &str| match (prefix.is_empty(), rel.is_empty()) {
            (_, true) => prefix.to_string(),
            (true, false) => rel.to_string(),
            (false, false) => format!("{prefix}/{rel}"),
        };
        match self {
            RepoUrl::Local(p) if rel.is_empty() => RepoUrl::Local(p.clone()),
            RepoUrl::Local(p) => RepoUrl::Local(p.join(rel)),
            RepoUrl::S3 { bucket, prefix } => {
                RepoUrl::S3 { bucket: bucket.clone(), prefix: under(prefix) }
            }
            RepoUrl::Azure { container, prefix } => {
                RepoUrl::Azure { container: container.clone(), prefix: under(prefix) }
            }
            RepoUrl::Gcs { bucket, prefix } => {
                RepoUrl::Gcs { bucket: bucket.clone(), prefix: under(prefix) }
            }
        }
    }

    /// The repository beside this one named `<name>-<suffix>` (`/data/ctd` ->
    /// `/data/ctd-<suffix>`, `s3://b/lab/ctd` -> `s3://b/lab/ctd-<suffix>`); `None`
    /// for a repository at the root of a bucket or container, which has no name.
    pub fn sibling(&self, suffix: &str) -> Option<RepoUrl> {
        let named = |prefix: &str| {
            (!prefix.is_empty()).then(|| format!("{}-{suffix}", prefix.trim_end_matches('/')))
        };
        Some(match self {
            RepoUrl::Local(p) => {
                let name = p.file_name()?.to_string_lossy().into_owned();
                RepoUrl::Local(p.with_file_name(format!("{name}-{suffix}")))
            }
            RepoUrl::S3 { bucket, prefix } => {
                RepoUrl::S3 { bucket: bucket.clone(), prefix: named(prefix)? }
            }
            RepoUrl::Azure { container, prefix } => {
                RepoUrl::Azure { container: container.clone(), prefix: named(prefix)? }
            }
            RepoUrl::Gcs { bucket, prefix } => {
                RepoUrl::Gcs { bucket: bucket.clone(), prefix: named(prefix)? }
            }
        })
    }
}

fn split_bucket(
    input: &str,
    rest: &str,
    scheme: &'static str,
) -> Result<(String, String), RepoUrlError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(RepoUrlError::MissingBucket(input.to_string(), scheme));
    }
    let valid = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_');
    if !valid {
        return Err(RepoUrlError::InvalidBucket(bucket.to_string()));
    }
    let prefix = prefix.trim_matches('/').to_string();
    Ok((bucket.to_string(), prefix))
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, scheme: &str, bucket: &str, prefix: &str| {
            if prefix.is_empty() {
                write!(f, "{scheme}://{bucket}")
            } else {
                write!(f, "{scheme}://{bucket}/{prefix}")
            }
        };
        match self {
            RepoUrl::Local(p) => write!(f, "{}", p.display()),
            RepoUrl::S3 { bucket, prefix } => join(f, "s3", bucket, prefix),
            RepoUrl::Azure { container, prefix } => join(f, "az", container, prefix),
            RepoUrl::Gcs { bucket, prefix } => join(f, "gs", bucket, prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_file_urls() {
        assert_eq!(RepoUrl::parse("repo").unwrap(), RepoUrl::Local("repo".into()));
        assert_eq!(RepoUrl::parse("/data/r").unwrap(), RepoUrl::Local("/data/r".into()));
        assert_eq!(RepoUrl::parse("file:///data/r").unwrap(), RepoUrl::Local("/data/r".into()));
        assert_eq!(
            RepoUrl::parse("file://localhost/data/r").unwrap(),
            RepoUrl::Local("/data/r".into())
        );
        assert!(matches!(RepoUrl::parse("file://rel/x"), Err(RepoUrlError::BadFileUrl(_))));
    }

    #[test]
    fn cloud_urls() {
        assert_eq!(
            RepoUrl::parse("s3://bucket/a/b/").unwrap(),
            RepoUrl::S3 { bucket: "bucket".into(), prefix: "a/b".into() }
        );
        assert_eq!(
            RepoUrl::parse("az://c").unwrap(),
            RepoUrl::Azure { container: "c".into(), prefix: String::new() }
        );
        assert_eq!(
            RepoUrl::parse("gs://b/p").unwrap(),
            RepoUrl::Gcs { bucket: "b".into(), prefix: "p".into() }
        );
        assert_eq!(RepoUrl::parse("s3://bucket/a/b").unwrap().to_string(), "s3://bucket/a/b");
    }

    #[test]
    fn a_sibling_is_named_after_the_repository() {
        let s = |u: &str| RepoUrl::parse(u).unwrap().sibling("2024-05-01T00-00-00Z");
        assert_eq!(s("/data/ctd").unwrap().to_string(), "/data/ctd-2024-05-01T00-00-00Z");
        assert_eq!(s("s3://b/lab/ctd").unwrap().to_string(), "s3://b/lab/ctd-2024-05-01T00-00-00Z");
        assert_eq!(s("az://c/x").unwrap().to_string(), "az://c/x-2024-05-01T00-00-00Z");
        assert!(s("s3://b").is_none(), "the root of a bucket has no name");
    }

    #[test]
    fn a_child_is_below_the_prefix() {
        let c = |u: &str, rel: &str| RepoUrl::parse(u).unwrap().child(rel).to_string();
        assert_eq!(c("s3://b/lab", "ctd/2024/"), "s3://b/lab/ctd/2024");
        assert_eq!(c("s3://b", "ctd"), "s3://b/ctd");
        assert_eq!(c("az://c/x", ""), "az://c/x");
        assert_eq!(c("/data", "a/b"), "/data/a/b");
    }

    #[test]
    fn bad_urls_say_what_to_do() {
        let e = RepoUrl::parse("ftp://x/y").unwrap_err();
        assert!(e.to_string().contains("s3://"));
        assert!(matches!(RepoUrl::parse("s3:///p"), Err(RepoUrlError::MissingBucket(..))));
        assert!(matches!(RepoUrl::parse("s3://Bad Bucket/p"), Err(RepoUrlError::InvalidBucket(_))));
        assert!(matches!(RepoUrl::parse("  "), Err(RepoUrlError::Empty)));
    }
}
