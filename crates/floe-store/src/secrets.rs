//! Destination secrets in the OS keychain (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows), through the `keyring` crate.
//!
//! A login is the set of settings a destination needs, under the same names the
//! clouds' own tools read from the environment (`AWS_SECRET_ACCESS_KEY`, …), kept
//! as one keychain entry per bucket or container (service `floe`, account
//! `s3://bucket`). When a repository is opened the login is consulted first and the
//! process environment second, so headless machines keep working with variables
//! alone. A login never reaches the config file, a command line or a log: its
//! `Debug` shows the names only.

use std::collections::BTreeMap;

use floe_core::RepoUrl;

use crate::remote::Env;

/// The keychain service name Floe's entries live under.
pub const SERVICE: &str = "floe";

/// One setting a login asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The environment variable it stands for.
    pub var: &'static str,
    /// What to ask.
    pub prompt: &'static str,
    /// Typed without echo, never printed.
    pub secret: bool,
    /// A login without it is refused.
    pub required: bool,
}

const S3_FIELDS: &[Field] = &[
    Field { var: "AWS_ACCESS_KEY_ID", prompt: "Access key ID", secret: false, required: true },
    Field {
        var: "AWS_SECRET_ACCESS_KEY",
        prompt: "Secret access key",
        secret: true,
        required: true,
    },
    Field {
        var: "AWS_SESSION_TOKEN",
        prompt: "Session token (empty for none)",
        secret: true,
        required: false,
    },
    Field {
        var: "AWS_REGION",
        prompt: "Region (empty for us-east-1)",
        secret: false,
        required: false,
    },
    Field {
        var: "AWS_ENDPOINT_URL",
        prompt: "Endpoint URL of an S3-compatible server (empty for AWS)",
        secret: false,
        required: false,
    },
];

const AZURE_FIELDS: &[Field] = &[
    Field {
        var: "AZURE_STORAGE_ACCOUNT_NAME",
        prompt: "Storage account name",
        secret: false,
        required: true,
    },
    Field {
        var: "AZURE_STORAGE_ACCOUNT_KEY",
        prompt: "Account key (empty to use a SAS token)",
        secret: true,
        required: false,
    },
    Field {
        var: "AZURE_STORAGE_SAS_TOKEN",
        prompt: "SAS token (empty if you gave a key)",
        secret: true,
        required: false,
    },
];

const GCS_FIELDS: &[Field] = &[Field {
    var: "GOOGLE_SERVICE_ACCOUNT_KEY",
    prompt: "Service account key (the JSON, on one line)",
    secret: true,
    required: true,
}];

/// What a login for `url` asks for (nothing for a local repository).
pub fn fields(url: &RepoUrl) -> &'static [Field] {
    match url {
        RepoUrl::Local(_) => &[],
        RepoUrl::S3 { .. } => S3_FIELDS,
        RepoUrl::Azure { .. } => AZURE_FIELDS,
        RepoUrl::Gcs { .. } => GCS_FIELDS,
    }
}

/// The keychain account a destination's login is kept under: scheme and bucket
/// (one login serves every prefix in a bucket). `None` for a local repository.
pub fn account(url: &RepoUrl) -> Option<String> {
    match url {
        RepoUrl::Local(_) => None,
        RepoUrl::S3 { bucket, .. } => Some(format!("s3://{bucket}")),
        RepoUrl::Azure { container, .. } => Some(format!("az://{container}")),
        RepoUrl::Gcs { bucket, .. } => Some(format!("gs://{bucket}")),
    }
}

/// The settings of one destination. `Debug` names the settings, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("vars", &self.vars.keys().collect::<Vec<_>>()).finish()
    }
}

/// Why a login could not be made, kept or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the OS keychain is not available ({0}); on a desktop, unlock the keyring (GNOME Keyring, KWallet, macOS Keychain); on a headless machine, set the AWS_* / AZURE_* variables instead"
    )]
    Unavailable(String),
    #[error("a login for {url} needs {var}; run `floe login {url}` again and give it")]
    Missing { url: String, var: String },
    #[error("a login for {0} needs an account key or a SAS token; give one of them")]
    AzureSecret(String),
    #[error("{0} is a local repository: it needs no login")]
    Local(String),
    #[error("the keychain entry for {0} is not a Floe login; remove it with `floe logout {0}`")]
    Corrupt(String),
}

impl Login {
    /// Check that the login has what the destination needs.
    pub fn validate(&self, url: &RepoUrl) -> Result<(), SecretError> {
        let label = account(url).ok_or_else(|| SecretError::Local(url.to_string()))?;
        for f in fields(url) {
            if f.required && !self.vars.contains_key(f.var) {
                return Err(SecretError::Missing { url: label, var: f.var.into() });
            }
        }
        if matches!(url, RepoUrl::Azure { .. })
            && !self.vars.contains_key("AZURE_STORAGE_ACCOUNT_KEY")
            && !self.vars.contains_key("AZURE_STORAGE_SAS_TOKEN")
        {
            return Err(SecretError::AzureSecret(label));
        }
        Ok(())
    }

    /// Take a destination's settings from an environment (`floe login --from-env`).
    pub fn from_env(url: &RepoUrl, env: &dyn Env) -> Login {
        let vars = fields(url)
            .iter()
            .filter_map(|f| env.get(f.var).map(|v| (f.var.to_string(), v)))
            .collect();
        Login { vars }
    }

    fn encode(&self) -> String {
        serde_json::to_string(&self.vars).unwrap_or_default()
    }

    fn decode(account: &str, text: &str) -> Result<Login, SecretError> {
        serde_json::from_str(text)
            .map(|vars| Login { vars })
            .map_err(|_| SecretError::Corrupt(account.into()))
    }
}

/// Where logins are kept: the OS keychain, or a map in unit tests.
pub trait SecretStore: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError>;
    fn set(&self, account: &str, value: &str) -> Result<(), SecretError>;
    /// Whether there was something to delete.
    fn delete(&self, account: &str) -> Result<bool, SecretError>;
}

/// The OS keychain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keychain;

#[expect(
    clippy::needless_pass_by_value,
    reason = "a map_err adapter: it takes what map_err hands it"
)]
fn unavailable(e: keyring::Error) -> SecretError {
    SecretError::Unavailable(e.to_string())
}

impl SecretStore for Keychain {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        let entry = keyring::Entry::new(SERVICE, account).map_err(unavailable)?;
        match entry.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        keyring::Entry::new(SERVICE, account)
            .and_then(|e| e.set_password(value))
            .map_err(unavailable)
    }

    fn delete(&self, account: &str) -> Result<bool, SecretError> {
        let entry = keyring::Entry::new(SERVICE, account).map_err(unavailable)?;
        match entry.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// Keep a login for `url` (checked first).
pub fn store(store: &dyn SecretStore, url: &RepoUrl, login: &Login) -> Result<(), SecretError> {
    login.validate(url)?;
    let account = account(url).ok_or_else(|| SecretError::Local(url.to_string()))?;
    store.set(&account, &login.encode())
}

/// The login kept for `url`, if any.
pub fn load(store: &dyn SecretStore, url: &RepoUrl) -> Result<Option<Login>, SecretError> {
    let Some(account) = account(url) else { return Ok(None) };
    match store.get(&account)? {
        Some(text) => Login::decode(&account, &text).map(Some),
        None => Ok(None),
    }
}

/// Forget the login for `url`; whether there was one.
pub fn forget(store: &dyn SecretStore, url: &RepoUrl) -> Result<bool, SecretError> {
    let account = account(url).ok_or_else(|| SecretError::Local(url.to_string()))?;
    store.delete(&account)
}

/// Whether the keychain is consulted at all (`FLOE_KEYRING=off` turns it off, for
/// machines without a keyring daemon where every lookup would only fail).
pub fn keychain_enabled() -> bool {
    !std::env::var("FLOE_KEYRING").is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "false"))
}

/// The login for `url` from the OS keychain, for opening storage. A keychain that
/// cannot be reached is not an error here (the environment may have what is
/// needed); it is logged, without any value.
pub async fn keychain_login(url: &RepoUrl) -> Option<Login> {
    if !keychain_enabled() || url.is_local() {
        return None;
    }
    let url2 = url.clone();
    // the Secret Service client blocks; keep it off the async workers
    let found = tokio::task::spawn_blocking(move || load(&Keychain, &url2)).await;
    match found {
        Ok(Ok(login)) => login,
        Ok(Err(e)) => {
            tracing::debug!(repo = %url, error = %e, "no keychain login; using the environment");
            None
        }
        Err(_) => None,
    }
}

/// A login first, the environment second.
#[derive(Debug)]
pub struct Layered<'a> {
    pub login: Option<Login>,
    pub env: &'a dyn Env,
}

impl std::fmt::Debug for dyn Env + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl Env for Layered<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.login
            .as_ref()
            .and_then(|l| l.vars.get(key).filter(|v| !v.trim().is_empty()).cloned())
            .or_else(|| self.env.get(key))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// The keychain stand-in of unit tests.
    #[derive(Default)]
    struct Memory(Mutex<HashMap<String, String>>);

    impl SecretStore for Memory {
        fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
            Ok(self.0.lock().unwrap().get(account).cloned())
        }
        fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
            self.0.lock().unwrap().insert(account.into(), value.into());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<bool, SecretError> {
            Ok(self.0.lock().unwrap().remove(account).is_some())
        }
    }

    fn url(s: &str) -> RepoUrl {
        RepoUrl::parse(s).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn one_login_per_bucket_round_trips() {
        let m = Memory::default();
        let u = url("s3://lab-data/site/a");
        let login = Login::from_env(
            &u,
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "not for s3"),
            ]),
        );
        assert_eq!(login.vars.len(), 2, "only the destination's own settings are taken");
        store(&m, &u, &login).unwrap();
        assert_eq!(load(&m, &url("s3://lab-data/other")).unwrap(), Some(login.clone()));
        assert_eq!(load(&m, &url("s3://elsewhere")).unwrap(), None);
        assert!(forget(&m, &u).unwrap());
        assert!(!forget(&m, &u).unwrap());
        assert_eq!(load(&m, &u).unwrap(), None);
    }

    #[test]
    fn incomplete_logins_are_refused_with_what_is_missing() {
        let m = Memory::default();
        let u = url("s3://b");
        let e = store(&m, &u, &Login::from_env(&u, &env(&[("AWS_ACCESS_KEY_ID", "a")])));
        assert!(e.unwrap_err().to_string().contains("AWS_SECRET_ACCESS_KEY"));
        let a = url("az://c");
        let e = store(&m, &a, &Login::from_env(&a, &env(&[("AZURE_STORAGE_ACCOUNT_NAME", "x")])));
        assert!(e.unwrap_err().to_string().contains("SAS token"));
        assert!(matches!(
            store(&m, &url("/data/repo"), &Login::default()),
            Err(SecretError::Local(_))
        ));
        m.set("gs://g", "not json").unwrap();
        assert!(matches!(load(&m, &url("gs://g/p")), Err(SecretError::Corrupt(_))));
    }

    #[test]
    fn the_login_wins_over_the_environment_and_values_never_print() {
        let u = url("az://c");
        let login = Login::from_env(
            &u,
            &env(&[("AZURE_STORAGE_ACCOUNT_NAME", "acct"), ("AZURE_STORAGE_ACCOUNT_KEY", "KEY1")]),
        );
        let outer =
            env(&[("AZURE_STORAGE_ACCOUNT_KEY", "KEY2"), ("AZURE_STORAGE_USE_EMULATOR", "true")]);
        let layered = Layered { login: Some(login.clone()), env: &outer };
        assert_eq!(layered.get("AZURE_STORAGE_ACCOUNT_KEY").as_deref(), Some("KEY1"));
        assert_eq!(layered.get("AZURE_STORAGE_USE_EMULATOR").as_deref(), Some("true"));
        let shown = format!("{login:?} {layered:?}");
        assert!(!shown.contains("KEY1") && shown.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{shown}");
    }
}
