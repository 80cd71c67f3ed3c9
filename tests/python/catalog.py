"""Many repositories under one prefix, and reading Floe's repositories with Dask.

    python catalog.py make URL N
        N Icechunk repositories under URL, laid out as ice-stream keeps them:
        `inst<i % 5>/proj<i>`; repository i holds one array of 1 + 40 * (i % 3) chunks
        (so a listing that grew with the chunks would show it) and a branch per
        (i % 2). Prints the relative paths.
    python catalog.py one URL REL [--chunks K]
        one more repository at URL/REL.
    python catalog.py corrupt URL REL
        overwrite the repository info object of URL/REL with bytes that do not read.
    python catalog.py dask REPO_URL MOUNT_PATH SOURCE...
        a dask.distributed LocalCluster with two workers reduces co2, ch4 and the
        waveform over the repository (through Icechunk) and over the mount path (a
        plain Zarr v3 tree), each compared to numpy over the sources.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402
from storage import az_container, s3_client  # noqa: E402

import icechunk  # noqa: E402
import zarr  # noqa: E402


def join(url, rel):
    return url.rstrip("/") + "/" + rel


def one(url, rel, chunks, branches=0):
    repo = icechunk.Repository.create(storage_for(join(url, rel)))
    session = repo.writable_session("main")
    root = zarr.group(store=session.store)
    a = root.create_array("x", shape=(chunks,), chunks=(1,), dtype="i4", fill_value=-1)
    a[:] = np.arange(chunks, dtype="i4")
    snap = session.commit(f"{chunks} chunks")
    for b in range(branches):
        repo.create_branch(f"extra{b}", snap)


def make(args):
    for i in range(args.n):
        rel = f"inst{i % 5}/proj{i:02d}"
        one(args.url, rel, 1 + 40 * (i % 3), branches=i % 2)
        print(rel)


def corrupt(args):
    """The `repo` object at a repository's root is Icechunk's (format 2) info."""
    key = join(args.rel, "repo")
    junk = b"this is not an icechunk repository info object"
    url = args.url
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        s3_client().put_object(Bucket=bucket, Key=join(prefix, key) if prefix else key, Body=junk)
    elif url.startswith("az://"):
        container, _, prefix = url[5:].partition("/")
        az_container(container).upload_blob(join(prefix, key) if prefix else key, junk, overwrite=True)
    else:
        with open(os.path.join(url, key), "wb") as f:
            f.write(junk)


def sources(files):
    """co2, ch4 (fill masked) and the waveform of every source, in record order."""
    import netCDF4

    co2, ch4, wave = [], [], []
    for f in files:
        with netCDF4.Dataset(f) as ds:
            co2.append(np.ma.filled(ds["co2"][:].astype("f8"), np.nan))
            ch4.append(np.ma.filled(ds["ch4"][:].astype("f4"), np.nan))
            wave.append(np.ma.filled(ds["waveform"][:].astype("f4"), np.nan))
    return np.concatenate(co2), np.concatenate(ch4), np.concatenate(wave)


def reductions(ds):
    """What a scientist asks of the cluster: lazy until computed."""
    return {
        "co2 mean": ds["co2"].mean(),
        "co2 max": ds["co2"].max(),
        "ch4 valid": ds["ch4"].count(),
        "ch4 min": ds["ch4"].min(),
        "waveform mean per sample": ds["waveform"].mean(dim="time"),
    }


def expected(co2, ch4, wave):
    return {
        "co2 mean": np.mean(co2),
        "co2 max": np.max(co2),
        "ch4 valid": np.count_nonzero(~np.isnan(ch4)),
        "ch4 min": np.nanmin(ch4),
        "waveform mean per sample": np.mean(wave, axis=0),
    }


def same(name, got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape} vs {want.shape}"
    if name.endswith(("max", "min", "valid")):
        ok = np.array_equal(got, want)
    else:
        # dask sums per chunk then adds the partial sums: another order than numpy's
        # (float32 values of order 1 summed in float32: an absolute bound, as a
        # mean near zero has no useful relative one)
        if want.dtype == np.float64:
            ok = np.allclose(got, want, rtol=1e-12, atol=0)
        else:
            ok = np.allclose(got, want, rtol=0, atol=1e-6)
    return None if ok else f"{name}: {got} vs numpy {want}"


def dask_check(args):
    import xarray as xr
    from dask.distributed import Client, LocalCluster, get_task_stream

    want = expected(*sources(args.sources))
    errors = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        workers = set(client.scheduler_info()["workers"])
        repo = icechunk.Repository.open(storage_for(args.repo))
        session = repo.readonly_session("main")
        ways = {
            "icechunk": xr.open_zarr(session.store, chunks={}, consolidated=False),
            "mount": xr.open_zarr(os.path.join(args.mount, "branches", "main"), chunks={},
                                  consolidated=False),
        }
        for way, ds in ways.items():
            chunks = ds["co2"].data.numblocks[0]
            if chunks < 4:
                errors.append(f"{way}: co2 is in {chunks} chunks; the check wants several per worker")
            lazy = reductions(ds)
            with get_task_stream(client) as ts:
                got = dict(zip(lazy, client.compute(list(lazy.values()), sync=True)))
            ran = {t["worker"] for t in ts.data}
            if not ran or not ran <= workers:
                errors.append(f"{way}: tasks ran on {ran}, not on the cluster's workers {workers}")
            for name in want:
                e = same(name, got[name].values, want[name])
                if e:
                    errors.append(f"{way}: {e}")
            print(f"{way}: {len(ts.data)} tasks on {len(ran)} workers over {chunks} chunks of co2")
    for e in errors:
        print(f"MISMATCH {e}")
    if errors:
        sys.exit(1)
    print(f"OK: dask equals numpy over {len(args.sources)} source file(s), through icechunk and the mount")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("url")
    m.add_argument("n", type=int)
    o = sub.add_parser("one")
    o.add_argument("url")
    o.add_argument("rel")
    o.add_argument("--chunks", type=int, default=1)
    c = sub.add_parser("corrupt")
    c.add_argument("url")
    c.add_argument("rel")
    d = sub.add_parser("dask")
    d.add_argument("repo")
    d.add_argument("mount")
    d.add_argument("sources", nargs="+")
    args = ap.parse_args()
    if args.cmd == "make":
        make(args)
    elif args.cmd == "one":
        one(args.url, args.rel, args.chunks)
    elif args.cmd == "corrupt":
        corrupt(args)
    else:
        dask_check(args)


if __name__ == "__main__":
    from finish import run

    run(main)
