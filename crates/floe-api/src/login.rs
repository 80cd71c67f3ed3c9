//! A destination's login in the OS keychain: what it asks for, keep it (tried
//! against the destination first), forget it.

pub use floe_store::secrets::{Field, Login};

use floe_core::{ErrorCode, RepoUrl};
use floe_store::secrets;

use crate::ApiError;
use crate::error::join_err;

/// What a login for `repo` asks for; a local repository needs none (an error that
/// says so).
pub fn fields(repo: &RepoUrl) -> Result<&'static [Field], ApiError> {
    let fields = secrets::fields(repo);
    if fields.is_empty() {
        return Err(secrets::SecretError::Local(repo.to_string()).into());
    }
    Ok(fields)
}

/// The login from this process's environment (`AWS_*`, `AZURE_*`, `GOOGLE_*`).
pub fn from_env(repo: &RepoUrl) -> Login {
    Login::from_env(repo, &floe_store::remote::ProcessEnv)
}

/// How keeping a login went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Kept without trying it.
    Unchecked,
    /// Kept, and the destination accepts it.
    Accepted,
    /// Kept, but the destination could not be asked: why, and the code.
    Unverified(ErrorCode, String),
}

/// Keep `login` for `repo` in the keychain; with `check`, try it first-thing after:
/// a login the destination refuses is forgotten again (and the refusal returned).
pub async fn keep(repo: &RepoUrl, login: Login, check: bool) -> Result<Kept, ApiError> {
    login.validate(repo)?;
    let (u, l) = (repo.clone(), login);
    tokio::task::spawn_blocking(move || secrets::store(&secrets::Keychain, &u, &l))
        .await
        .map_err(join_err)??;
    if !check {
        return Ok(Kept::Unchecked);
    }
    match floe_store::doctor::diagnose(repo, 0).await.error {
        None => Ok(Kept::Accepted),
        Some(e @ floe_store::StoreError::Credentials { .. }) => {
            // the refusal is the news; a keychain that cannot forget it adds nothing
            let _ = forget(repo).await;
            Err(ApiError::new(e.code(), format!("{e}; the login was not kept")))
        }
        Some(e) => Ok(Kept::Unverified(e.code(), e.to_string())),
    }
}

/// Forget `repo`'s login; whether there was one.
pub async fn forget(repo: &RepoUrl) -> Result<bool, ApiError> {
    let u = repo.clone();
    Ok(tokio::task::spawn_blocking(move || secrets::forget(&secrets::Keychain, &u))
        .await
        .map_err(join_err)??)
}
