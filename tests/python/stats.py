"""Check `floe stats` against numpy over the same values, read with xarray.

    python stats.py check REPO ANSWER.json [--branch main]
        ANSWER is `floe stats --json` output. The repository's branch is read with
        xarray (CF decoding: fill and missing values masked, packing undone) and,
        for each bin of the answer, numpy reduces the valid values of the records
        whose time is in [start, end): count, min and max must be equal, the mean
        within 1e-12 relative of numpy's float64 mean. For a series, the non-empty
        bins must be the ones pandas' resample gives. Prints OK or what differs.
    python stats.py hidden REPO
        xarray's view of the root group shows no variable of Floe's own, and a
        Zarr walk finds them only under /.floe
    python stats.py drop REPO
        delete Floe's statistics with Python icechunk, in a commit (as a repository
        written before Floe kept them would be)

Settings for s3:// and az:// come from the environment, as for check_repo.py.
"""

import argparse
import json
import os
import sys

import numpy as np
import pandas as pd
import xarray as xr
import zarr

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402

import icechunk  # noqa: E402


def open_branch(url, branch):
    repo = icechunk.Repository.open(storage_for(url))
    return repo, repo.readonly_session(branch=branch)


def dataset_of(store, var):
    group = var.rsplit("/", 1)[0].strip("/") or None
    return xr.open_zarr(store, group=group, consolidated=False, chunks=None)


def seconds(times):
    return (times.astype("datetime64[ns]").astype("int64") / 1e9).astype("f8")


def check(args):
    ans = json.load(open(args.answer))
    _, session = open_branch(args.repo, args.branch)
    ds = dataset_of(session.store, ans["var"])
    name = ans["var"].rsplit("/", 1)[1]
    da = ds[name]
    dim = ans["dim"]
    axis = da.dims.index(dim)
    vals = np.moveaxis(da.values, axis, 0).reshape(da.shape[axis], -1).astype("f8")
    t = seconds(ds[dim].values) if ans["times"] else np.arange(da.shape[axis], dtype="f8")
    bad = []
    total = 0
    for b in ans["bins"]:
        sel = (t >= b["start"]) & (t < b["end"])
        v = vals[sel].ravel()
        v = v[~np.isnan(v)]
        total += v.size
        where = f"bin {b['start']}..{b['end']}"
        if v.size != b["count"]:
            bad.append(f"{where}: count {b['count']}, numpy {v.size}")
            continue
        if v.size == 0:
            if b["mean"] is not None:
                bad.append(f"{where}: no values, yet a mean {b['mean']}")
            continue
        if v.min() != b["min"] or v.max() != b["max"]:
            bad.append(f"{where}: min/max {b['min']}/{b['max']}, numpy {v.min()}/{v.max()}")
        want = v.mean()
        if abs(b["mean"] - want) > 1e-12 * max(abs(want), 1e-300):
            bad.append(f"{where}: mean {b['mean']!r}, numpy {want!r} ({abs(b['mean'] - want) / abs(want):.1e} relative)")
    if ans.get("every") and ans["times"] and ans["bins"]:
        # the same series as pandas resamples it: the same non-empty bins, each
        # with the same count (a bin is labelled by its start; a window's first
        # bin starts at the window)
        lo, hi = ans["bins"][0]["start"], ans["bins"][-1]["end"]
        rep = np.repeat(t, vals.shape[1])
        flat = vals.ravel()
        ok = ~np.isnan(flat) & (rep >= lo) & (rep < hi)
        s = pd.Series(flat[ok], index=pd.to_datetime(rep[ok] * 1e9))
        counts = s.resample(pd.Timedelta(seconds=ans["every"])).count()
        want = {max(ts.value / 1e9, lo): int(c) for ts, c in counts.items() if c > 0}
        got = {b["start"]: b["count"] for b in ans["bins"] if b["count"] > 0}
        if want != got:
            bad.append(f"series {sorted(got.items())[:4]}.. against pandas' {sorted(want.items())[:4]}..")
    if bad:
        print("DIFFERENT:\n" + "\n".join(bad[:20]))
        sys.exit(1)
    print(f"OK: {len(ans['bins'])} bins, {total} values of {ans['var']} equal numpy")


def hidden(args):
    _, session = open_branch(args.repo, "main")
    ds = xr.open_zarr(session.store, consolidated=False)
    own = [v for v in list(ds.variables) if "floe" in v or "stats" in v]
    assert not own, f"xarray shows Floe's own arrays: {own}"
    g = zarr.open_group(session.store, mode="r")
    paths = [p for p, _ in g.members(max_depth=None)]
    outside = [p for p in paths if "stats~" in p and not p.startswith(".floe/")]
    assert not outside, outside
    assert any(p.startswith(".floe/stats~") for p in paths), paths
    print(f"OK: {len(ds.data_vars)} data variables, Floe's statistics only under /.floe")


def drop(args):
    repo = icechunk.Repository.open(storage_for(args.repo))
    s = repo.writable_session("main")
    own = zarr.open_group(s.store, mode="a")[".floe"]
    # the statistics only: the provenance log beside them is the record of what
    # was ingested, which a repository written before the statistics had too
    for name in [n for n in own.array_keys() if n.startswith("stats~")]:
        del own[name]
    s.commit("drop Floe's statistics (as before Floe kept them)")
    print("OK")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("repo")
    c.add_argument("answer")
    c.add_argument("--branch", default="main")
    h = sub.add_parser("hidden")
    h.add_argument("repo")
    d = sub.add_parser("drop")
    d.add_argument("repo")
    args = ap.parse_args()
    {"check": check, "hidden": hidden, "drop": drop}[args.cmd](args)


if __name__ == "__main__":
    from finish import run

    run(main)
