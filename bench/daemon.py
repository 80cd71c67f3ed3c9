"""Benchmark the background engine: latency from a file becoming complete (renamed
into the watched folder) to its commit on `main`, p50/p99 over N files on a local
repository; and the daemon's idle RSS with 5 watched folders.

    python bench/daemon.py --floe PATH/TO/floe [--files 100]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import floe_proc  # noqa: E402
ROOT = os.path.dirname(HERE)


def floe(args, env):
    return floe_proc.floe(ARGS.floe, args, env)


def status(env):
    return floe_proc.status(ARGS.floe, env) or []


rss_mb = floe_proc.rss_mb


def start_daemon(env):
    return floe_proc.start_daemon(ARGS.floe, env)


def main():
    work = tempfile.mkdtemp(prefix="floe-bench-daemon-")
    try:
        env = dict(os.environ, FLOE_CONFIG=f"{work}/config.toml", FLOE_RUNTIME_DIR=f"{work}/run")
        stage, watched = f"{work}/stage", f"{work}/in"
        os.makedirs(watched)
        subprocess.run([sys.executable, f"{ROOT}/tests/python/make_fixtures.py", stage, "--files", str(ARGS.files)],
                       check=True)
        floe(["add", watched, f"{work}/repo"], env)
        d = start_daemon(env)
        lat = []
        for i, name in enumerate(sorted(os.listdir(stage))):
            t0 = time.perf_counter()
            os.rename(f"{stage}/{name}", f"{watched}/{name}")
            while True:
                s = status(env)
                if s and s[0]["files_ingested"] >= i + 1:
                    break
                time.sleep(0.005)
            lat.append(time.perf_counter() - t0)
        d.terminate()
        d.wait()
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        print(f"\nLatency, file complete -> commit on main (local repo, {len(lat)} files, quiet period 0, "
              f"500 ms debounce included): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
              f"(target p50 < 1 s): {'OK' if p50 < 1 else 'OVER'}")

        # idle RSS with 5 folders
        for i in range(5):
            f = f"{work}/idle{i}"
            os.makedirs(f)
            subprocess.run([sys.executable, f"{ROOT}/tests/python/make_fixtures.py", f, "--files", "2"], check=True)
            floe(["add", f, f"{work}/idle-repo{i}"], env)
        d = start_daemon(env)
        for _ in range(200):
            s = status(env)
            if len(s) == 6 and all(x["state"]["state"] == "idle" for x in s):
                break
            time.sleep(0.1)
        time.sleep(3)
        rss = rss_mb(d.pid)
        d.terminate()
        d.wait()
        print(f"Daemon idle RSS with 6 watched folders: {rss:.1f} MB (target < 60 MB with 5): "
              f"{'OK' if rss < 60 else 'OVER'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--files", type=int, default=100)
    ARGS = ap.parse_args()
    main()
