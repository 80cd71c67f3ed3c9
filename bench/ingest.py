"""Benchmark: Floe vs the reference pipeline (xarray + Python icechunk), side by side.

    python bench/ingest.py --floe PATH/TO/floe [--files 672] [--big-gib 1] [--work DIR]

1. A week of 15-minute instrument files (672 NetCDF-4 files) into fresh local repos,
   once with `floe sync`, once with bench/reference_ingest.py: wall time, files/s,
   MB/s, peak RSS, repo size, and the ratios.
2. One large file (1 GiB by default) with each: peak RSS (Floe's target: < 300 MB).
Each run is a separate process; peak RSS is that process's ru_maxrss.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def measure(cmd, env=None):
    """Run cmd in a child of a fresh helper process; return (seconds, peak RSS MB, output)."""
    helper = (
        "import resource, subprocess, sys, time, json;"
        "t=time.perf_counter();p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
        "dt=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024;"
        "print(json.dumps({'s':dt,'rss':r,'rc':p.returncode,'out':p.stdout[-2000:],'err':p.stderr[-2000:]}))"
    )
    out = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise SystemExit(f"{cmd[0]} failed ({res['rc']}):\n{res['out']}\n{res['err']}")
    return res["s"], res["rss"], res["out"]


def du(path):
    total = 0
    for d, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(d, f))
    return total


def make_week(out, n):
    marker = os.path.join(out, f".complete-{n}")
    if os.path.exists(marker):
        return
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "tests/python/make_fixtures.py"), out, "--files", str(n)], check=True)
    open(marker, "w").close()


def make_big(path, gib):
    if os.path.exists(path):
        return
    import netCDF4
    import numpy as np

    samples = 4096
    records = int(gib * (1 << 30) / (samples * 4))
    with netCDF4.Dataset(path + ".tmp", "w", format="NETCDF4") as ds:
        ds.createDimension("time", None)
        ds.createDimension("sample", samples)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2024-01-01"
        w = ds.createVariable("waveform", "f4", ("time", "sample"), chunksizes=(64, samples))
        step = 4096
        rng = np.random.default_rng(1)
        block = rng.standard_normal((step, samples)).astype("f4")
        for s in range(0, records, step):
            n = min(step, records - s)
            t[s:s + n] = np.arange(s, s + n, dtype="f8")
            w[s:s + n] = block[:n]
    os.rename(path + ".tmp", path)


def row(name, secs, rss, nfiles, nbytes, repo):
    return {"pipeline": name, "seconds": round(secs, 2), "files_per_s": round(nfiles / secs, 1),
            "mb_per_s": round(nbytes / 1e6 / secs, 1), "peak_rss_mb": round(rss, 1),
            "repo_mb": round(du(repo) / 1e6, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--files", type=int, default=672)
    ap.add_argument("--big-gib", type=float, default=1.0)
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/floe/bench"))
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--azurite", default=None,
                    help="also run the week into this Azurite (blob URL, e.g. http://127.0.0.1:10000)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    week = os.path.join(args.work, "week")
    make_week(week, args.files)
    files = sorted(os.path.join(week, f) for f in os.listdir(week) if f.endswith(".nc"))
    nbytes = sum(os.path.getsize(f) for f in files)
    env = dict(os.environ, RUST_LOG="error")

    results = {"week": [], "big": []}
    floe_repo = os.path.join(args.work, "repo-floe")
    ref_repo = os.path.join(args.work, "repo-reference")
    for r in (floe_repo, ref_repo):
        shutil.rmtree(r, ignore_errors=True)
    s, rss, _ = measure([args.floe, "sync", week, floe_repo, "--quiet", "0"], env)
    results["week"].append(row("floe (default: commits of 64 MB)", s, rss, len(files), nbytes, floe_repo))
    shutil.rmtree(floe_repo, ignore_errors=True)
    s, rss, _ = measure([args.floe, "sync", week, floe_repo, "--quiet", "0", "--batch", "16"], env)
    results["week"].append(row("floe --batch 16", s, rss, len(files), nbytes, floe_repo))
    shutil.rmtree(floe_repo, ignore_errors=True)
    s, rss, _ = measure([args.floe, "sync", week, floe_repo, "--quiet", "0", "--batch", "1"], env)
    results["week"].append(row("floe --batch 1 (commit per file)", s, rss, len(files), nbytes, floe_repo))
    s, rss, _ = measure([sys.executable, os.path.join(HERE, "reference_ingest.py"), ref_repo, *files], env)
    results["week"].append(row("reference (xarray + icechunk)", s, rss, len(files), nbytes, ref_repo))

    if args.azurite:
        import uuid
        az_env = dict(env, AZURE_STORAGE_USE_EMULATOR="true", AZURITE_BLOB_STORAGE_URL=args.azurite)
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/python/storage.py"), "az-container",
                        args.azurite, "bench"], check=False, capture_output=True)
        run = uuid.uuid4().hex[:8]
        results["azure"] = []
        s, rss, _ = measure([args.floe, "sync", week, f"az://bench/{run}/floe", "--quiet", "0"], az_env)
        results["azure"].append(row("floe (default: commits of 64 MB)", s, rss, len(files), nbytes, week))
        s, rss, _ = measure([args.floe, "sync", week, f"az://bench/{run}/floe16", "--quiet", "0", "--batch", "16"], az_env)
        results["azure"].append(row("floe --batch 16", s, rss, len(files), nbytes, week))
        s, rss, _ = measure([args.floe, "sync", week, f"az://bench/{run}/floe1", "--quiet", "0", "--batch", "1"], az_env)
        results["azure"].append(row("floe --batch 1 (commit per file)", s, rss, len(files), nbytes, week))
        s, rss, _ = measure([sys.executable, os.path.join(HERE, "reference_ingest.py"), f"az://bench/{run}/ref", *files], az_env)
        results["azure"].append(row("reference (xarray + icechunk)", s, rss, len(files), nbytes, week))
        for r in results["azure"]:
            r["repo_mb"] = float("nan")  # in Azurite, not on this disk

    if args.big_gib > 0:
        big_dir = os.path.join(args.work, "big")
        os.makedirs(big_dir, exist_ok=True)
        big = os.path.join(big_dir, f"big-{args.big_gib:g}GiB.nc")
        make_big(big, args.big_gib)
        size = os.path.getsize(big)
        for name, cmd, repo in (
            ("floe", lambda r: [args.floe, "sync", big_dir, r, "--quiet", "0"], os.path.join(args.work, "big-floe")),
            ("reference (xarray + icechunk)", lambda r: [sys.executable, os.path.join(HERE, "reference_ingest.py"), r, big], os.path.join(args.work, "big-reference")),
        ):
            shutil.rmtree(repo, ignore_errors=True)
            s, rss, _ = measure(cmd(repo), env)
            results["big"].append(row(name, s, rss, 1, size, repo))
            shutil.rmtree(repo, ignore_errors=True)

    def table(title, rows):
        print(f"\n{title}")
        print(f"{'pipeline':32} {'wall s':>8} {'files/s':>8} {'MB/s':>8} {'peak RSS MB':>12} {'repo MB':>8}")
        for r in rows:
            print(f"{r['pipeline']:32} {r['seconds']:8.2f} {r['files_per_s']:8.1f} {r['mb_per_s']:8.1f} {r['peak_rss_mb']:12.1f} {r['repo_mb']:8.1f}")
        ref = rows[-1]
        for f in rows[:-1]:
            print(f"ratio reference / {f['pipeline']}: wall time {ref['seconds'] / f['seconds']:.1f}x, "
                  f"peak RSS {ref['peak_rss_mb'] / f['peak_rss_mb']:.1f}x")

    table(f"Ingest a week of 15-minute files: {len(files)} NetCDF-4 files, {nbytes / 1e6:.1f} MB", results["week"])
    if results.get("azure"):
        table(f"The same week into Azurite on loopback ({args.azurite})", results["azure"])
        ref_s = results["azure"][-1]["seconds"]
        for r in results["azure"][:-1]:
            ratio = ref_s / r["seconds"]
            print(f"{r['pipeline']} vs reference into Azurite: {ratio:.1f}x faster (target >= 10x): {'OK' if ratio >= 10 else 'UNDER'}")
    if results["big"]:
        table(f"Ingest one {args.big_gib:g} GiB NetCDF-4 file", results["big"])
        floe_big = results["big"][0]["peak_rss_mb"]
        print(f"floe peak RSS on the big file: {floe_big:.0f} MB (target < 300 MB): {'OK' if floe_big < 300 else 'OVER'}")
    ref_s = results["week"][-1]["seconds"]
    for r in results["week"][:-1]:
        ratio = ref_s / r["seconds"]
        print(f"{r['pipeline']} vs reference on the week: {ratio:.1f}x faster (target >= 10x): {'OK' if ratio >= 10 else 'UNDER'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
