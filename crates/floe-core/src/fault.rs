//! Points where a test can stop ingestion, injected like the clock: the shipped
//! binaries never install anything but [`NoFaults`] (there is no switch, variable or
//! feature that reaches these from outside), and the crash tests' own binary
//! (`tests/src/bin/floe-faulty.rs`) installs one that kills the process at the N-th
//! arrival at a point.
//!
//! Points inside Icechunk's commit (the manifests written, the snapshot written, the
//! branch moved) have no call site here: the storage fault proxy of the tests stops
//! the process at the storage requests that are those steps.

/// A step of ingestion, in the order a batch passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// One chunk upload of the batch has finished (others may still be under way or
    /// not yet started); nothing of the batch is committed.
    ChunkStored,
    /// Every chunk of the batch is in storage; the commit (manifests, snapshot,
    /// branch update) has not started.
    ChunksStored,
    /// The commit is in the repository and the branch points at it; Floe has not yet
    /// reported it (a restart must find the files ingested).
    Committed,
}

impl FaultPoint {
    /// Every point, in order.
    pub const ALL: [FaultPoint; 3] =
        [FaultPoint::ChunkStored, FaultPoint::ChunksStored, FaultPoint::Committed];

    /// The point's name, as the crash tests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultPoint::ChunkStored => "chunk-stored",
            FaultPoint::ChunksStored => "chunks-stored",
            FaultPoint::Committed => "committed",
        }
    }
}

/// What happens at a [`FaultPoint`]: nothing, in every shipped build.
pub trait Faults: Send + Sync + std::fmt::Debug {
    fn reached(&self, point: FaultPoint);
}

/// No faults: what Floe runs with.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl Faults for NoFaults {
    fn reached(&self, _point: FaultPoint) {}
}
