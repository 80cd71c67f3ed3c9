//! A slow, lossy link: Azurite in a network namespace behind 500 ms of delay and 1%
//! packet loss (tests/python/slowlink.py; the kernel here has no sch_netem, so the
//! link is emulated in user space over TUN devices). Ingestion must complete and be
//! exact; the MB/min achieved is printed (the field's target is at least 80).
//!
//! The load is a six-hour backlog of 15-minute files (24 files, 43 MB), the catch-up
//! after a link came back: big enough that the rate is the link's and not only the
//! dozen round trips every sync starts and commits with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use floe_tests::servers::SlowLink;
use floe_tests::*;

#[test]
fn ingestion_completes_over_a_slow_lossy_link() {
    let link = SlowLink::start(500, 0.01);
    let server = link.azurite();
    let url = server.url_at(SlowLink::FAR);
    let r = py("storage.py", &["az-container", &url, "lab"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    make(&src, &["--files", "24", "--records", "4000", "--hf", "4000"]);
    let sources = files(&src, "nc");
    let bytes: u64 = sources.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let env = [("AZURE_STORAGE_USE_EMULATOR", "true"), ("AZURITE_BLOB_STORAGE_URL", url.as_str())];
    let t = Instant::now();
    let r = floe_env(&["sync", src.to_str().unwrap(), "az://lab/far", "--quiet", "0"], &env);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let mb_min = bytes as f64 / 1e6 / (secs / 60.0);
    eprintln!(
        "slow link (500 ms, 1% loss): {:.1} MB in {secs:.1} s = {mb_min:.1} MB/min (field target >= 80)",
        bytes as f64 / 1e6
    );
    // the reference readers check from the far side (reading 43 MB back over the
    // emulated link would take minutes and measure nothing of Floe's)
    assert_url_equals_from(Some(&link.namespace), "az://lab/far", &sources, &[], &env);
}
