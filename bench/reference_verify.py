"""The reference way to check a repository against its sources: Python icechunk +
xarray, every file's raw values against the repository's records at the offsets
Floe's provenance recorded.

    python reference_verify.py REPO FOLDER

Hashes each file (BLAKE3 is not in the standard library: SHA-256, which costs about
the same here), opens it with xarray (raw values: decode_cf=False), and compares every
variable with the repository's slice along its record dimension (xarray on an
Icechunk read-only session of `main`). Exits 1 if anything differs.
"""

import hashlib
import os
import sys

import icechunk
import numpy as np
import xarray as xr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests/python"))
import provenance  # noqa: E402


def main():
    repo_path, folder = sys.argv[1], sys.argv[2]
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(repo_path))
    session = repo.readonly_session(branch="main")
    there = xr.open_zarr(session.store, consolidated=False, decode_cf=False)
    steps = {}
    for _, files in provenance.history(repo):
        for f in files:
            steps[f["source"]] = f
    bad = 0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".nc"):
            continue
        path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            hashlib.file_digest(fh, "sha256")
        step = steps.get(name)
        if step is None:
            print(f"{name}: not in the repository")
            bad += 1
            continue
        here = xr.open_dataset(path, decode_cf=False)
        for v in here.variables:
            a = here[v]
            dims = [d for d in a.dims if d in step["offsets"]]
            sel = {d: slice(step["offsets"][d], step["offsets"][d] + step["records"][d]) for d in dims}
            b = there[v].isel(sel)
            # times are re-encoded (int64 nanoseconds): compared decoded
            if "since" in str(a.attrs.get("units", "")) and dims:
                a = xr.decode_cf(here[[v]])[v]
                b = xr.decode_cf(there[[v]].isel(sel))[v]
            x, y = np.asarray(a.values), np.asarray(b.values)
            if a.dtype == "S1" and x.ndim == y.ndim + 1:
                # a char array is stored as strings (its last dimension joined)
                x = np.array([b"".join(r).decode().rstrip("\x00") for r in x.reshape(-1, x.shape[-1])])
                y = np.array([str(s) for s in y.ravel()])
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                print(f"{name}: {v} differs")
                bad += 1
        here.close()
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
