//! The per-folder state machine.
//!
//! [`step`] is total: every state accepts every input and says where it goes (often
//! "stay"). The engine feeds it watcher events, scan results, commit outcomes, timer
//! expiries and the user's pause/resume, and emits a [`Transition`] for every change,
//! so the GUI, `floe status` and the logs see the same history.

use std::time::Duration;

use floe_core::ErrorCode;
use serde::{Deserialize, Serialize};

/// Where a sync folder is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FolderState {
    /// Everything complete has been ingested.
    Idle,
    /// Looking for new or changed files.
    Scanning,
    /// Only files still being written, or held for the commit cadence, are left.
    Waiting { files: u64 },
    /// Ingesting; `files` and `bytes` still to go.
    Syncing { files: u64, bytes: u64 },
    /// Stopped by the user.
    Paused,
    /// Storage unreachable or failing transiently (or its disk full); retry number
    /// `attempt` is due later.
    Offline {
        attempt: u32,
        message: String,
        #[serde(default)]
        cause: Stall,
    },
    /// Stopped until the user acts (bad credentials, missing bucket, conflict…).
    Error { code: ErrorCode, message: String },
}

impl FolderState {
    /// The state's name, as serialized (`idle`, `syncing`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FolderState::Idle => "idle",
            FolderState::Scanning => "scanning",
            FolderState::Waiting { .. } => "waiting",
            FolderState::Syncing { .. } => "syncing",
            FolderState::Paused => "paused",
            FolderState::Offline { .. } => "offline",
            FolderState::Error { .. } => "error",
        }
    }
}

/// Why a folder waits to retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stall {
    /// The storage does not answer (network, endpoint, throttling).
    #[default]
    Unreachable,
    /// The storage answers, with errors (5xx, throttling), after its retries.
    Failing,
    /// Another writer holds the repository.
    Busy,
    /// The disk under the repository is full.
    DiskFull,
}

/// What can happen to a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A watcher event or the periodic rescan timer.
    Changed,
    /// A scan finished: `ready` files to ingest (`bytes` in total), `waiting` still written.
    Scanned {
        ready: u64,
        bytes: u64,
        waiting: u64,
    },
    /// A commit landed; `files`/`bytes` are left.
    Committed {
        files: u64,
        bytes: u64,
    },
    /// A storage failure that retrying can fix (network, throttling, 5xx).
    Transient {
        message: String,
        cause: Stall,
    },
    /// A failure retrying cannot fix.
    Fatal {
        code: ErrorCode,
        message: String,
    },
    /// The retry timer of an offline folder expired.
    RetryDue,
    Pause,
    Resume,
}

/// One change of state, for status and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: FolderState,
    pub to: FolderState,
}

/// The next state. Pure and total.
pub fn step(state: &FolderState, input: &Input) -> FolderState {
    use FolderState as S;
    use Input as I;
    match (state, input) {
        // the user's word wins everywhere
        (_, I::Pause) => S::Paused,
        (S::Paused | S::Error { .. }, I::Resume) => S::Scanning,
        (_, I::Resume) => state.clone(),
        (S::Paused, _) => S::Paused,

        // a fatal failure stops the folder until the user acts
        (_, I::Fatal { code, message }) => S::Error { code: *code, message: message.clone() },
        (S::Error { .. }, _) => state.clone(),

        // transient failures: offline, counting attempts; the timer brings it back
        (S::Offline { attempt, .. }, I::Transient { message, cause }) => S::Offline {
            attempt: attempt.saturating_add(1),
            message: message.clone(),
            cause: *cause,
        },
        (_, I::Transient { message, cause }) => {
            S::Offline { attempt: 1, message: message.clone(), cause: *cause }
        }
        (S::Offline { .. }, I::RetryDue) => S::Scanning,
        (S::Offline { .. }, _) => state.clone(),

        // work
        (S::Idle | S::Waiting { .. }, I::Changed) => S::Scanning,
        (S::Scanning | S::Syncing { .. }, I::Changed) => state.clone(),
        (S::Scanning, I::Scanned { ready, bytes, waiting }) => {
            if *ready > 0 {
                S::Syncing { files: *ready, bytes: *bytes }
            } else if *waiting > 0 {
                S::Waiting { files: *waiting }
            } else {
                S::Idle
            }
        }
        (S::Syncing { .. }, I::Committed { files, bytes }) => {
            // when the queue is empty, look again: files may have arrived meanwhile
            if *files > 0 { S::Syncing { files: *files, bytes: *bytes } } else { S::Scanning }
        }
        (_, I::Scanned { .. } | I::Committed { .. } | I::RetryDue) => state.clone(),
    }
}

/// Exponential backoff with jitter for retries of an offline folder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// Delay before retry `attempt` (1-based); `jitter` in `[0, 1)` comes from the
    /// caller (injected, so the policy is testable) and adds up to 50%.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        capped.mul_f64(1.0 + 0.5 * jitter.clamp(0.0, 1.0)).min(self.max.mul_f64(1.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn states() -> Vec<FolderState> {
        use FolderState as S;
        vec![
            S::Idle,
            S::Scanning,
            S::Waiting { files: 2 },
            S::Syncing { files: 3, bytes: 30 },
            S::Paused,
            S::Offline { attempt: 2, message: "down".into(), cause: Stall::Unreachable },
            S::Error { code: ErrorCode::Storage, message: "bad key".into() },
        ]
    }

    fn inputs() -> Vec<Input> {
        use Input as I;
        vec![
            I::Changed,
            I::Scanned { ready: 2, bytes: 20, waiting: 1 },
            I::Scanned { ready: 0, bytes: 0, waiting: 1 },
            I::Scanned { ready: 0, bytes: 0, waiting: 0 },
            I::Committed { files: 1, bytes: 10 },
            I::Committed { files: 0, bytes: 0 },
            I::Transient { message: "timeout".into(), cause: Stall::Unreachable },
            I::Fatal { code: ErrorCode::Storage, message: "denied".into() },
            I::RetryDue,
            I::Pause,
            I::Resume,
        ]
    }

    #[test]
    fn every_state_accepts_every_input_with_the_documented_rules() {
        use FolderState as S;
        for s in states() {
            for i in inputs() {
                let n = step(&s, &i);
                match (&s, &i) {
                    (_, Input::Pause) => assert_eq!(n, S::Paused),
                    (S::Paused, Input::Resume) | (S::Error { .. }, Input::Resume) => {
                        assert_eq!(n, S::Scanning)
                    }
                    (S::Paused, _) => assert_eq!(n, S::Paused, "paused ignores {i:?}"),
                    (_, Input::Fatal { .. }) => assert!(matches!(n, S::Error { .. })),
                    (S::Error { .. }, _) => assert_eq!(n, s, "error waits for the user"),
                    (_, Input::Transient { .. }) => assert!(matches!(n, S::Offline { .. })),
                    _ => {}
                }
                // no input makes work out of nothing: syncing only after a scan found files
                if matches!(n, S::Syncing { .. }) && !matches!(s, S::Syncing { .. }) {
                    assert!(matches!(i, Input::Scanned { ready, .. } if ready > 0), "{s:?} {i:?}");
                }
            }
        }
    }

    #[test]
    fn the_happy_path() {
        use FolderState as S;
        let mut s = S::Idle;
        for (i, want) in [
            (Input::Changed, S::Scanning),
            (
                Input::Scanned { ready: 2, bytes: 20, waiting: 0 },
                S::Syncing { files: 2, bytes: 20 },
            ),
            (Input::Committed { files: 1, bytes: 10 }, S::Syncing { files: 1, bytes: 10 }),
            (Input::Committed { files: 0, bytes: 0 }, S::Scanning),
            (Input::Scanned { ready: 0, bytes: 0, waiting: 1 }, S::Waiting { files: 1 }),
            (Input::Changed, S::Scanning),
            (Input::Scanned { ready: 0, bytes: 0, waiting: 0 }, S::Idle),
        ] {
            s = step(&s, &i);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn outages_count_attempts_and_come_back() {
        let mut s = FolderState::Syncing { files: 1, bytes: 1 };
        for n in 1..=3 {
            s = step(
                &s,
                &Input::Transient {
                    message: "connection refused".into(),
                    cause: Stall::Unreachable,
                },
            );
            assert!(matches!(s, FolderState::Offline { attempt, .. } if attempt == n));
        }
        assert_eq!(step(&s, &Input::Changed), s, "events wait for the retry timer");
        assert_eq!(step(&s, &Input::RetryDue), FolderState::Scanning);
    }

    proptest! {
        #[test]
        fn backoff_grows_is_capped_and_jittered(attempt in 1u32..64, jitter in 0.0f64..1.0) {
            let b = Backoff::default();
            let d = b.delay(attempt, jitter);
            prop_assert!(d >= b.base.min(b.max));
            prop_assert!(d <= b.max.mul_f64(1.5));
            prop_assert!(b.delay(attempt + 1, 0.0) >= b.delay(attempt, 0.0));
        }
    }
}
