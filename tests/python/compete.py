"""Another writer that commits first: change the metadata of array PATH of branch main
(an attribute), so that a commit appending to it at the same time conflicts.

    python compete.py REPO_URL PATH N
"""

import os
import sys

import icechunk
import zarr

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402


def main():
    url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    repo = icechunk.Repository.open(storage_for(url))
    session = repo.writable_session("main")
    array = zarr.open_array(session.store, path=path, mode="r+")
    array.attrs["competitor"] = n
    print(session.commit(f"competitor {n}"))


if __name__ == "__main__":
    from finish import run

    run(main)
