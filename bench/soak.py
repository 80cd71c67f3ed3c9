"""Soak the background engine: `floe daemon` with 5 watched folders, each receiving a
complete file every 5 s (renamed in, as a logger's finished file is) for 30 minutes,
one commit per file into 5 local repositories. Every minute it reports the daemon's
resident memory, its open file descriptors (the floor and peak of that minute's
samples: a commit in flight holds files open for a moment, a leak raises the floor)
and the commit latency (file renamed in
-> `floe status` counts it ingested, polled every 0.25 s) of that minute's files.

Passes when, after the first 5 minutes, memory grows less than 10% and descriptors
not at all; latency is reported (it may grow with Icechunk's history).

    python bench/soak.py --floe PATH/TO/floe [--minutes 30] [--folders 5] [--every 5]
        [--json out.json]
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import floe_proc  # noqa: E402
ROOT = os.path.dirname(HERE)


rss_mb = floe_proc.rss_mb


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def stage_files(work, folders, per_folder):
    """Each folder's files, made before the clock starts (one minute of 1 Hz records
    per file, as a met station's logger closes them)."""
    stages = []
    for i in range(folders):
        stage = f"{work}/stage{i}"
        subprocess.run([sys.executable, f"{ROOT}/tests/python/make_fixtures.py", stage,
                        "--files", str(per_folder), "--seed", str(i)],
                       check=True, stdout=subprocess.DEVNULL)
        stages.append(sorted(os.path.join(stage, n) for n in os.listdir(stage)))
    return stages


def main():
    work = tempfile.mkdtemp(prefix="floe-soak-")
    env = dict(os.environ, FLOE_CONFIG=f"{work}/config.toml", FLOE_RUNTIME_DIR=f"{work}/run",
               FLOE_KEYRING="off")
    env.pop("FLOE_LOG", None)
    daemon = None
    try:
        per_folder = int(ARGS.minutes * 60 / ARGS.every) + 2
        t = time.perf_counter()
        stages = stage_files(work, ARGS.folders, per_folder)
        print(f"staged {ARGS.folders} x {per_folder} files in {time.perf_counter() - t:.0f} s",
              flush=True)
        watched = []
        for i in range(ARGS.folders):
            w = f"{work}/in{i}"
            os.makedirs(w)
            r = floe_proc.floe(ARGS.floe, ["add", w, f"{work}/repo{i}"], env)
            assert r.returncode == 0, r.stderr
            watched.append(w)
        wrap = shlex.split(ARGS.wrap) if ARGS.wrap else []
        daemon = floe_proc.start_daemon(ARGS.floe, env, rescan=60, wrap=wrap,
                                        stderr=open(f"{work}/daemon.log", "w"))

        pending = [deque() for _ in watched]   # rename times not yet seen ingested
        seen = [0] * len(watched)
        rows, minute_lat, minute_fds = [], [], []
        start = time.monotonic()
        next_drop, next_report, dropped = start, start + 60, 0
        end = start + ARGS.minutes * 60
        while True:
            now = time.monotonic()
            if now >= next_drop and now < end:
                for i, w in enumerate(watched):
                    src = stages[i][dropped]
                    os.rename(src, os.path.join(w, os.path.basename(src)))
                    pending[i].append(time.monotonic())
                dropped += 1
                next_drop += ARGS.every
            s = floe_proc.status(ARGS.floe, env)
            if s is None:
                raise SystemExit(f"floe daemon stopped: {open(f'{work}/daemon.log').read()[-2000:]}")
            at = time.monotonic()
            minute_fds.append(fds(daemon.pid))
            by_path = {f["path"]: f for f in s}
            for i, w in enumerate(watched):
                n = by_path[os.path.realpath(w)]["files_ingested"]
                while seen[i] < n and pending[i]:
                    minute_lat.append(at - pending[i].popleft())
                    seen[i] += 1
            if at >= next_report:
                anon, file = floe_proc.rss_split_mb(daemon.pid)
                row = {"minute": len(rows) + 1, "rss_mb": round(rss_mb(daemon.pid), 1),
                       "anon_mb": round(anon, 1), "file_mb": round(file, 1),
                       # the floor of the minute's samples: files open for a commit
                       # in flight come and go, a leak raises the floor
                       "fds": min(minute_fds), "fds_max": max(minute_fds),
                       "files": len(minute_lat),
                       "p50_s": round(statistics.median(minute_lat), 3) if minute_lat else None,
                       "p95_s": round(pct(minute_lat, 0.95), 3) if minute_lat else None,
                       "max_s": round(max(minute_lat), 3) if minute_lat else None}
                rows.append(row)
                print(f"min {row['minute']:3d}  RSS {row['rss_mb']:7.1f} MB (anon {anon:5.1f}, "
                      f"file {file:5.1f})  fds {row['fds']:3d}-{row['fds_max']:<3d}  "
                      f"files {row['files']:4d}  latency p50 {row['p50_s']} s  p95 {row['p95_s']} s  "
                      f"max {row['max_s']} s", flush=True)
                minute_lat, minute_fds = [], []
                next_report += 60
            if at >= end and all(not p for p in pending):
                break
            if at >= end + 120:
                raise SystemExit(f"files still not ingested 2 minutes after the end: "
                                 f"{[len(p) for p in pending]}")
            time.sleep(0.25)

        base = rows[4] if len(rows) > 5 else rows[0]
        after = rows[rows.index(base):]
        grow = max(r["rss_mb"] for r in after) / base["rss_mb"] - 1
        # the daemon's own memory, without the pages of its binary it touched
        anon_grow = max(r["anon_mb"] for r in after) / base["anon_mb"] - 1
        fd_grow = max(r["fds"] for r in after) - base["fds"]
        ok = grow < 0.10 and fd_grow <= 0
        total = sum(r["files"] for r in rows)
        print(f"\nSoak: {ARGS.folders} folders x a file every {ARGS.every:g} s for {ARGS.minutes:g} min, "
              f"{total} commits: RSS {base['rss_mb']} MB at minute {base['minute']} -> max "
              f"{max(r['rss_mb'] for r in after)} MB after (+{grow * 100:.1f}%, target < 10%; "
              f"anonymous {base['anon_mb']} -> max {max(r['anon_mb'] for r in after)} MB, "
              f"+{anon_grow * 100:.1f}%); "
              f"fds (each minute's floor) {base['fds']} -> max {max(r['fds'] for r in after)} "
              f"(target: no growth); "
              f"latency p50 {rows[0]['p50_s']} s in the first minute, {rows[-1]['p50_s']} s in the "
              f"last: {'OK' if ok else 'OVER'}")
        if ARGS.json:
            with open(ARGS.json, "w") as f:
                json.dump({"rows": rows, "rss_growth": grow, "anon_growth": anon_grow,
                           "fd_growth": fd_grow, "ok": ok}, f,
                          indent=1)
        raise SystemExit(0 if ok else 1)
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--folders", type=int, default=5)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--json")
    ap.add_argument("--wrap", help="a command to run the daemon under (heaptrack -o FILE, say); "
                                   "RSS and descriptors are then the wrapper's")
    ARGS = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
    from finish import run

    run(main)
