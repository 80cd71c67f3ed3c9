"""The reference pipeline the field uses today: xarray + Python icechunk, one commit per file.

    python reference_ingest.py REPO FILE...

First file: `to_zarr(session.store)`; every later file: `to_zarr(session.store,
append_dim=d)` for the variables along each record dimension d; then `commit`.
"""

import sys

import icechunk
import xarray as xr


def main():
    repo_path, files = sys.argv[1], sys.argv[2:]
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(repo_path))
    record_dims = ("time", "hf_time")
    for i, f in enumerate(files):
        ds = xr.open_dataset(f)
        session = repo.writable_session("main")
        if i == 0:
            ds.to_zarr(session.store, consolidated=False)
        else:
            for d in record_dims:
                along = [n for n, v in ds.data_vars.items() if d in v.dims]
                if d in ds.dims:
                    ds[along].to_zarr(session.store, append_dim=d, consolidated=False)
        session.commit(f"ingest {f}")
        ds.close()


if __name__ == "__main__":
    main()
