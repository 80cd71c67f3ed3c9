"""The reference way to a series of means: xarray + Python icechunk + dask.

    python bench/reference_stats.py URL VAR --every-s 86400 [--out FILE.json]

Opens the tip of `main` and computes `open_zarr(store, chunks={})[VAR]
.resample(<dim>=...).mean().compute()`: that variable only, in its stored chunks,
as the field would. Prints (or writes) JSON: seconds from opening the repository to
the result (imports excluded), and each non-empty bin's start and mean.
Settings for s3:// come from the environment, as for tests/python/check_repo.py.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import xarray as xr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests/python"))
from check_repo import storage_for  # noqa: E402

import icechunk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("var")
    ap.add_argument("--every-s", type=int, default=86400)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    repo = icechunk.Repository.open(storage_for(args.url))
    session = repo.readonly_session(branch="main")
    da = xr.open_zarr(session.store, chunks={}, consolidated=False)[args.var]
    dim = da.dims[0]
    means = da.resample({dim: f"{args.every_s}s"}).mean().compute()
    secs = time.perf_counter() - t0
    starts = means[dim].values.astype("datetime64[ns]").astype("int64") / 1e9
    out = {
        "seconds": secs,
        "dim": dim,
        "dtype": str(da.dtype),
        "bins": [[float(s), float(m)] for s, m in zip(starts, means.values) if not np.isnan(m)],
    }
    text = json.dumps(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    from finish import run

    run(main)
