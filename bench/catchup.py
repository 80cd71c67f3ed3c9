"""Catch-up after an outage: N files (the gas analyser's 15-minute NetCDF-4 files,
~190 KB each) piled up in a watched folder while no daemon ran. Timed: from
`floe daemon` starting to `floe status` counting the last of them committed, against
`floe sync` of the same files into a fresh repository, locally and (with --azurite)
into Azurite on loopback. Rounds are interleaved (sync, daemon, sync, daemon, ...) and
the medians compared. Target: the daemon within 1.5x of `floe sync`.

    python bench/catchup.py --floe PATH/TO/floe [--files 288] [--rounds 3]
        [--azurite http://127.0.0.1:PORT] [--json out.json]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import floe_proc  # noqa: E402
import ingest  # noqa: E402
ROOT = os.path.dirname(HERE)


def backlog(n):
    """The N files, made once and kept in the bench cache (as bench/ingest.py keeps its week)."""
    out = os.path.expanduser(f"~/.cache/floe/bench/backlog-{n}")
    ingest.make_week(out, n)
    return out, sorted(f for f in os.listdir(out) if f.endswith(".nc"))


def folder_of(src, names, at):
    """A watched folder holding the backlog (hard links: the files as they were)."""
    os.makedirs(at)
    for f in names:
        os.link(f"{src}/{f}", f"{at}/{f}")
    return at


def by_sync(folder, repo, env):
    t = time.perf_counter()
    r = floe_proc.floe(ARGS.floe, ["sync", folder, repo, "--quiet", "0"], env)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"floe sync failed: {r.stderr[-2000:]}")
    return secs


def by_daemon(folder, repo, env, n):
    r = floe_proc.floe(ARGS.floe, ["add", folder, repo], env)
    if r.returncode != 0:
        raise SystemExit(f"floe add failed: {r.stderr[-2000:]}")
    t = time.perf_counter()
    d = floe_proc.start_daemon(ARGS.floe, env)
    try:
        while True:
            s = floe_proc.status(ARGS.floe, env) or []
            if s and s[0]["files_ingested"] >= n:
                return time.perf_counter() - t
            if d.poll() is not None:
                raise SystemExit(f"floe daemon exited with {d.returncode}")
            if time.perf_counter() - t > 1800:
                raise SystemExit(f"the daemon took over 30 minutes: {s}")
            time.sleep(0.05)
    finally:
        d.terminate()
        d.wait()


def commits_of(repo, env):
    r = floe_proc.floe(ARGS.floe, ["log", repo, "--json"], env)
    return len(json.loads(r.stdout)) - 1 if r.returncode == 0 else None


def measure(where, repo_of, env, src, names):
    sync_s, daemon_s, commits = [], [], None
    for i in range(ARGS.rounds):
        work = tempfile.mkdtemp(prefix="floe-catchup-")
        try:
            e = dict(env, FLOE_CONFIG=f"{work}/config.toml", FLOE_RUNTIME_DIR=f"{work}/run")
            sync_s.append(by_sync(folder_of(src, names, f"{work}/a"), repo_of(work, f"sync{i}"), e))
            daemon_repo = repo_of(work, f"daemon{i}")
            daemon_s.append(by_daemon(folder_of(src, names, f"{work}/b"), daemon_repo, e, len(names)))
            commits = commits_of(daemon_repo, e)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    s, d = statistics.median(sync_s), statistics.median(daemon_s)
    ratio = d / s
    print(f"{where}: floe sync {s:.2f} s, the daemon catching up {d:.2f} s "
          f"(median of {ARGS.rounds}; runs {[round(x, 2) for x in sync_s]} / "
          f"{[round(x, 2) for x in daemon_s]}; the daemon's commits: {commits}): "
          f"{ratio:.2f}x floe sync (target <= 1.5x): {'OK' if ratio <= 1.5 else 'OVER'}", flush=True)
    return {"where": where, "files": len(names), "sync_s": sync_s, "daemon_s": daemon_s,
            "sync_median_s": s, "daemon_median_s": d, "ratio": ratio, "daemon_commits": commits}


def main():
    src, names = backlog(ARGS.files)
    mb = sum(os.path.getsize(f"{src}/{f}") for f in names) / 1e6
    print(f"Catch-up of a backlog: {len(names)} files, {mb:.1f} MB", flush=True)
    env = dict(os.environ, FLOE_KEYRING="off")
    env.pop("FLOE_LOG", None)
    results = [measure("local", lambda work, name: f"{work}/{name}", env, src, names)]
    if ARGS.azurite:
        az_env = dict(env, AZURE_STORAGE_USE_EMULATOR="true", AZURITE_BLOB_STORAGE_URL=ARGS.azurite)
        subprocess.run([sys.executable, f"{ROOT}/tests/python/storage.py", "az-container",
                        ARGS.azurite, "bench"], check=False, capture_output=True)
        run = uuid.uuid4().hex[:8]
        results.append(measure("Azurite", lambda work, name: f"az://bench/{run}/{name}", az_env, src,
                               names))
    if ARGS.json:
        with open(ARGS.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--files", type=int, default=288)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--azurite")
    ap.add_argument("--json")
    ARGS = ap.parse_args()
    main()
