"""Benchmark: `floe stats` against the reference way, side by side in one run.

    python bench/stats.py --floe PATH/TO/floe [--year-files 35040] [--var wind]
                          [--rounds 3] [--work DIR] [--no-s3] [--no-expired] [--no-local]

A year of 15-minute gas-analyser files (35,040 NetCDF-4 files from
tests/python/make_fixtures.py, generated once and kept in --work) goes into a local
repository with `floe sync`; the same repository is copied into a moto S3 server
on loopback (bench/moto_loaded.py). Then, for each, daily means of one variable over the whole year:

- Floe: `floe stats REPO VAR --every 1d --json`, a whole process each time;
- the reference: bench/reference_stats.py, i.e. `xr.open_zarr(store, chunks={})
  [VAR].resample(<dim>="1D").mean().compute()` over Python icechunk, that variable
  only, timed from opening the repository (its imports are not counted).

Both are warmed the same way (one untimed run each, so the page cache and moto
hold what they read), then timed over --rounds interleaved rounds: medians and
the ratio. Bytes read are counted once for each under strace: every read of a
file inside the repository (local) or of a socket to the S3 server, so the count
is what came from the storage and nothing else. The two answers must agree: the
same days, each mean within the reference's own float precision.
Targets (issue 21): at least 100x faster and at most 1% of the bytes read.

Then the same on a copy of the local repository after `floe expire --older-than 0s`
and `floe gc --grace 0s` (unless --no-expired): the history under a retention
policy. Both readers open Icechunk's repository-info object, which holds every
unexpired snapshot's metadata (Floe's per-file provenance is not there but in the
repository's provenance log, which neither reads), so the byte share is shown both
ways.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable


def make_year(out, n, parts=2):
    """n 15-minute files, written by `parts` generators at once."""
    marker = os.path.join(out, f".complete-{n}")
    if os.path.exists(marker):
        return
    shutil.rmtree(out, ignore_errors=True)
    gen = os.path.join(ROOT, "tests/python/make_fixtures.py")
    step = -(-n // parts)
    procs = [
        subprocess.Popen([PY, gen, out, "--start", str(s), "--files", str(min(step, n - s))])
        for s in range(0, n, step)
    ]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("generating the year failed")
    open(marker, "w").close()


def run(cmd, env):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return secs, p.stdout


# strace lines (-f -yy): `PID read(7</path>, ..., 4096) = 4096`, or split in two
# when another thread runs between: `... <unfinished ...>` then `<... read resumed> ... = N`
START = re.compile(r"^(\d+)\s+(\w+)\((\d+)<(.+?)>[,)]")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>")
RESULT = re.compile(r"= (\d+)(?: <[^>]*>)?$")


def bytes_read(cmd, env, wanted):
    """Bytes `cmd` read from descriptors whose strace annotation satisfies `wanted`."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as log:
        calls = "read,pread64,readv,preadv,preadv2,recvfrom,recvmsg"
        p = subprocess.run(["strace", "-f", "-qq", "-yy", "-s", "0", "-e", f"trace={calls}",
                            "-o", log.name, *cmd], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} under strace failed:\n{p.stderr[-3000:]}")
        pending, total = {}, 0
        with open(log.name, errors="replace") as f:
            for line in f:
                line = line.rstrip()
                m = START.match(line)
                if m:
                    if line.endswith("<unfinished ...>"):
                        pending[m.group(1)] = m.group(4)
                        continue
                    what = m.group(4)
                else:
                    r = RESUMED.match(line)
                    if not r:
                        continue
                    what = pending.pop(r.group(1), "")
                n = RESULT.search(line)
                if n and wanted(what):
                    total += int(n.group(1))
        return total


def floe_bins(out):
    ans = json.loads(out)
    return {b["start"]: b["mean"] for b in ans["bins"] if b["count"]}, ans


def agree(floe, ref, dtype):
    """The same days, each mean within the reference's precision (it averages a
    float32 variable in float32, Floe in float64)."""
    ref_bins = {s: m for s, m in ref["bins"]}
    if set(floe) != set(ref_bins):
        only = sorted(set(floe) ^ set(ref_bins))[:5]
        raise SystemExit(f"the days differ: {len(floe)} from Floe, {len(ref_bins)} from the reference ({only}...)")
    worst = max(abs(floe[s] - ref_bins[s]) / max(abs(ref_bins[s]), 1e-300) for s in floe)
    tol = 1e-5 if dtype == "float32" else 1e-12
    if worst > tol:
        raise SystemExit(f"the means differ by up to {worst:.1e} relative (allowed {tol:.0e} for {dtype})")
    return worst


def compare(label, url, var, floe, env, rounds, wanted):
    floe_cmd = [floe, "stats", url, var, "--every", "1d", "--json"]
    ref_out = os.path.join(tempfile.gettempdir(), "floe-bench-reference-stats.json")
    ref_cmd = [PY, os.path.join(HERE, "reference_stats.py"), url, var, "--out", ref_out]
    # warm both the same way
    _, out = run(floe_cmd, env)
    run(ref_cmd, env)
    fb, ans = floe_bins(out)
    with open(ref_out) as f:
        ref = json.load(f)
    worst = agree(fb, ref, ref["dtype"])
    times = {"floe": [], "ref": [], "ref_process": []}
    for _ in range(rounds):
        times["floe"].append(run(floe_cmd, env)[0])
        s, _ = run(ref_cmd, env)
        times["ref_process"].append(s)
        with open(ref_out) as f:
            times["ref"].append(json.load(f)["seconds"])
    nbytes = {"floe": bytes_read(floe_cmd, env, wanted), "ref": bytes_read(ref_cmd, env, wanted)}
    med = {k: statistics.median(v) for k, v in times.items()}
    speed = med["ref"] / med["floe"]
    share = nbytes["floe"] / max(nbytes["ref"], 1)
    print(f"\n{label}: daily means of {var} ({ref['dtype']}, along {ref['dim']}) over "
          f"{len(fb)} days, {ans['files']} files, {rounds} interleaved rounds")
    print(f"{'run':34} {'median s':>9} {'runs s':>26} {'bytes read':>14}")
    for k, name in (("floe", "floe stats --every 1d"), ("ref", "reference (open + compute)"),
                    ("ref_process", "reference (whole process)")):
        shown = " ".join(f"{x:.3f}" for x in times[k])
        b = f"{nbytes['ref' if k != 'floe' else 'floe']:,}"
        print(f"{name:34} {med[k]:9.3f} {shown:>26} {b:>14}")
    print(f"speed: {speed:.0f}x faster than the reference's open + compute (target >= 100x): "
          f"{'met' if speed >= 100 else 'NOT met'}")
    print(f"bytes: {100 * share:.2f}% of the reference's (target <= 1%): {'met' if share <= 0.01 else 'NOT met'}")
    print(f"answers agree: largest relative difference of a daily mean {worst:.1e}")
    return {"label": label, "var": var, "days": len(fb), "files": ans["files"],
            "floe_s": times["floe"], "ref_s": times["ref"], "ref_process_s": times["ref_process"],
            "floe_bytes": nbytes["floe"], "ref_bytes": nbytes["ref"], "speedup": speed,
            "byte_share": share, "worst_relative_difference": worst}


def expired_copy(floe, repo, env):
    """A copy of `repo` with every snapshot but the branch tips expired and collected."""
    kept = repo + "-expired"
    done = os.path.join(kept, ".floe-bench-complete")
    if os.path.exists(done):
        return kept
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(repo, kept, symlinks=True)
    os.remove(done)
    print()
    for step in (["expire", kept, "--older-than", "0s"], ["gc", kept, "--grace", "0s"]):
        secs, out = run([floe, *step], env)
        said = out.strip().splitlines()
        print(f"{step[0]} of the copy ({secs:.1f} s): {said[-1] if said else ''}")
    open(done, "w").close()
    return kept


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def loaded_moto(repo, bucket, prefix, port):
    """bench/moto_loaded.py serving a copy of `repo`; returns the process once it serves."""
    moto = subprocess.Popen([PY, os.path.join(HERE, "moto_loaded.py"), repo, bucket, prefix, str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = moto.stdout.readline().split()
    if line[:1] != ["ready"]:
        moto.kill()
        raise SystemExit(f"moto did not start serving the copy (exit {moto.wait()})")
    print(f"\ncopied the repository into moto S3: {line[1]} objects in {line[2]} s")
    return moto


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--year-files", type=int, default=35040)
    ap.add_argument("--var", default="wind")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/floe/bench"))
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-expired", action="store_true")
    ap.add_argument("--no-local", action="store_true", help="S3 only (the local repository is still made)")
    ap.add_argument("--json", default=None, help="write the figures here too")
    args, _ = ap.parse_known_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is needed to count bytes read: apt-get install strace")
    year = os.path.join(args.work, f"year-{args.year_files}")
    t = time.perf_counter()
    make_year(year, args.year_files)
    print(f"the year: {args.year_files} files in {year} ({time.perf_counter() - t:.0f} s to make or find)")
    repo = os.path.join(args.work, f"repo-stats-{args.year_files}")
    env = dict(os.environ, RUST_LOG="error")
    env.pop("FLOE_LOG", None)
    if not os.path.exists(os.path.join(repo, ".floe-bench-complete")):
        shutil.rmtree(repo, ignore_errors=True)
        secs, _ = run([args.floe, "sync", year, repo, "--quiet", "0"], env)
        print(f"floe sync of the year: {secs:.1f} s")
        open(os.path.join(repo, ".floe-bench-complete"), "w").close()
    results = []
    if not args.no_local:
        results.append(compare("local repository", repo, args.var, args.floe, env, args.rounds,
                               lambda what: what.startswith(repo + "/")))
    if not args.no_expired and not args.no_local:
        kept = expired_copy(args.floe, repo, env)
        results.append(compare("local repository after expire --older-than 0s + gc", kept,
                               args.var, args.floe, env, args.rounds,
                               lambda what: what.startswith(kept + "/")))
    if not args.no_s3:
        port = free_port()
        moto = loaded_moto(repo, "floe-bench", "year", port)
        try:
            endpoint = f"http://127.0.0.1:{port}"
            s3env = dict(env, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                         AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
            results.append(compare("S3 (moto on loopback)", "s3://floe-bench/year", args.var,
                                   args.floe, s3env, args.rounds,
                                   lambda what: f"->127.0.0.1:{port}]" in what))
        finally:
            moto.stdin.close()
            try:
                moto.wait(timeout=30)
            except subprocess.TimeoutExpired:
                moto.kill()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
