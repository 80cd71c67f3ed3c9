"""The reference pipeline the field uses today: xarray + Python icechunk, one commit per file.

    python reference_ingest.py REPO FILE...

REPO is a local path, or az://container/prefix on Azurite (AZURITE_BLOB_STORAGE_URL).

First file: `to_zarr(session.store)`; every later file: `to_zarr(session.store,
append_dim=d)` for the variables along each record dimension d; then `commit`.
"""

import sys

import icechunk
import xarray as xr


def storage_for(url):
    if url.startswith("az://"):
        container, _, prefix = url[5:].partition("/")
        return icechunk.azure_storage(account="devstoreaccount1", container=container, prefix=prefix,
                                      from_env=True, config={"use_emulator": "true"})
    return icechunk.local_filesystem_storage(url)


def main():
    repo_path, files = sys.argv[1], sys.argv[2:]
    repo = icechunk.Repository.create(storage_for(repo_path))
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
