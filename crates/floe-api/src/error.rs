//! Failures at the API's edge: a stable `code` (see [`floe_core::ErrorCode`]) and a
//! message that says what to do. Every source error maps by an explicit table.

use floe_core::ErrorCode;
use serde::Serialize;

/// What the CLI prints and the GUI shows: `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: ErrorCode,
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
        ApiError { code, message: message.into() }
    }

    /// The code as the CLI's exit status.
    pub fn exit_code(&self) -> i32 {
        self.code.exit_code()
    }
}

impl From<floe_store::StoreError> for ApiError {
    fn from(e: floe_store::StoreError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<floe_sync::IngestError> for ApiError {
    fn from(e: floe_sync::IngestError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl From<floe_source::SourceError> for ApiError {
    fn from(e: floe_source::SourceError) -> Self {
        ApiError::new(ErrorCode::BadSource, e.to_string())
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
#[expect(
    clippy::needless_pass_by_value,
    reason = "a map_err adapter: it takes what map_err hands it"
)]
pub(crate) fn join_err(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("internal error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_to_its_exit_status() {
        for c in ErrorCode::ALL {
            assert_eq!(ApiError::new(c, "x").exit_code(), c.exit_code());
        }
    }

    #[test]
    fn serializes_as_code_and_message() {
        let e = ApiError::new(ErrorCode::Storage, "cannot reach it");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, serde_json::json!({"code": "storage", "message": "cannot reach it"}));
    }

    /// The UI's list of codes (`ui/src/codes.ts`) is the Rust enum's.
    #[test]
    fn the_ui_knows_every_code_and_no_other() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui/src/codes.ts");
        let text = std::fs::read_to_string(path).unwrap();
        let list = text.split("ERROR_CODES = [").nth(1).and_then(|t| t.split(']').next()).unwrap();
        let ui: Vec<&str> =
            list.split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).collect();
        let rust: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(ui, rust, "update ui/src/codes.ts to the codes of floe_core::ErrorCode");
    }
}
