//! Failures at the API's edge: a stable `code` (see [`floe_core::ErrorCode`]) and a
//! message that says what to do. Every source error maps by an explicit table.

use floe_core::ErrorCode;
use serde::Serialize;

/// What the CLI prints and the GUI shows: `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code: code.as_str(), message: message.into() }
    }

    /// The code as an [`ErrorCode`].
    pub fn error_code(&self) -> ErrorCode {
        ALL.iter().copied().find(|c| c.as_str() == self.code).unwrap_or(ErrorCode::Internal)
    }

    /// The code as the CLI's exit status.
    pub fn exit_code(&self) -> i32 {
        self.error_code().exit_code()
    }
}

const ALL: [ErrorCode; 9] = [
    ErrorCode::Usage,
    ErrorCode::BadSource,
    ErrorCode::SchemaDrift,
    ErrorCode::RecordOrder,
    ErrorCode::ChangedSinceIngest,
    ErrorCode::Repository,
    ErrorCode::Conflict,
    ErrorCode::Storage,
    ErrorCode::Internal,
];

impl From<floe_store::StoreError> for ApiError {
    fn from(e: floe_store::StoreError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<floe_engine::config::ConfigError> for ApiError {
    fn from(e: floe_engine::config::ConfigError) -> Self {
        use floe_engine::config::ConfigError as C;
        let code = match e {
            C::Io { .. } | C::NoConfigDir => ErrorCode::Internal,
            C::Parse { .. }
            | C::Duplicate(_)
            | C::Unknown(_)
            | C::NoFolder(_)
            | C::Invalid(_)
            | C::Url(_) => ErrorCode::Usage,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<floe_engine::daemon::DaemonError> for ApiError {
    fn from(e: floe_engine::daemon::DaemonError) -> Self {
        use floe_engine::daemon::DaemonError as D;
        let code = match e {
            D::AlreadyRunning(_) | D::NotRunning(_) => ErrorCode::Usage,
            D::Config(e) => return e.into(),
            D::Socket { .. } => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<floe_store::secrets::SecretError> for ApiError {
    fn from(e: floe_store::secrets::SecretError) -> Self {
        use floe_store::secrets::SecretError as S;
        let code = match e {
            S::Unavailable(_) => ErrorCode::Storage,
            S::Missing { .. } | S::AzureSecret(_) | S::Local(_) | S::Corrupt(_) => ErrorCode::Usage,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<floe_core::RepoUrlError> for ApiError {
    fn from(e: floe_core::RepoUrlError) -> Self {
        ApiError::new(ErrorCode::Usage, e.to_string())
    }
}

impl From<floe_fuse::StartError> for ApiError {
    fn from(e: floe_fuse::StartError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// A background task that died (a bug, not the user's doing).
pub(crate) fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("internal error: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_to_its_exit_status() {
        for c in ALL {
            assert_eq!(ApiError::new(c, "x").exit_code(), c.exit_code());
        }
    }

    #[test]
    fn serializes_as_code_and_message() {
        let e = ApiError::new(ErrorCode::Storage, "cannot reach it");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, serde_json::json!({"code": "storage", "message": "cannot reach it"}));
    }
}
