//! The crash tests' `floe sync`: the same engine (`floe_api::sync::run`, options as
//! `floe sync --quiet 0 --no-wait` sets them) with a [`Faults`] that kills this
//! process with SIGKILL at the N-th arrival at one [`FaultPoint`]. Only this test
//! binary installs such a hook; `floe` and the app cannot.
//!
//! `floe-faulty <point> <n> <folder> <repo> [--batch FILES] [--batch-mb MB] [--chunk-kib KIB]`
//!
//! Before it dies it prints `fault: <point> #<n> (<pending> of <started> chunk
//! uploads still under way)` to stderr, so a test can count that the hook fired
//! there, and where in the upload it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use floe_core::RepoUrl;
use floe_core::fault::{FaultPoint, Faults};

#[derive(Debug)]
struct KillAt {
    point: FaultPoint,
    n: usize,
    seen: AtomicUsize,
}

impl Faults for KillAt {
    #[expect(unsafe_code, reason = "kill(2) of this very process: the only way to SIGKILL it")]
    fn reached(&self, point: FaultPoint) {
        if point != self.point {
            return;
        }
        let seen = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if seen == self.n {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "fault: {} #{seen}", point.as_str());
            let _ = err.flush();
            // SAFETY: kill(2) with our own pid; no memory is involved.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

fn point(name: &str) -> FaultPoint {
    FaultPoint::ALL
        .into_iter()
        .find(|p| p.as_str() == name)
        .unwrap_or_else(|| panic!("no fault point {name}; one of {:?}", FaultPoint::ALL))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [p, n, folder, repo, rest @ ..] = args.as_slice() else {
        panic!(
            "usage: floe-faulty <point> <n> <folder> <repo> [--batch FILES] [--batch-mb MB] [--chunk-kib KIB]"
        );
    };
    let faults = KillAt { point: point(p), n: n.parse().expect("n"), seen: AtomicUsize::new(0) };
    let mut opts =
        floe_api::sync::IngestOptions::new(PathBuf::from(folder), RepoUrl::parse(repo).unwrap());
    opts.quiet = Duration::ZERO;
    opts.wait_quiet = None;
    for pair in rest.chunks(2) {
        match pair {
            [k, v] if k == "--batch" => opts.batch_files = v.parse().expect("--batch"),
            [k, v] if k == "--batch-mb" => {
                opts.batch_target_bytes =
                    Some((v.parse::<f64>().expect("--batch-mb") * 1e6) as u64);
            }
            [k, v] if k == "--chunk-kib" => {
                opts.settings.target_chunk_bytes = v.parse::<u64>().expect("--chunk-kib") << 10;
            }
            other => panic!("unknown arguments {other:?}"),
        }
    }
    let faults = Arc::new(faults);
    opts.faults = faults.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    match rt.block_on(floe_api::sync::run(opts, &|_| {})) {
        Ok(report) => {
            println!("{} commits", report.commits.len());
            let seen = faults.seen.load(Ordering::SeqCst);
            eprintln!("fault point {p} #{n} was never reached (reached {seen} times)");
            std::process::exit(3);
        }
        Err(e) => {
            eprintln!("floe-faulty: {e}");
            std::process::exit(2);
        }
    }
}
