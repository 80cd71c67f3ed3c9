"""The tags of an Icechunk repository and what each holds, as JSON.

    python tags.py REPO [--dim time]

Prints {tag: records along DIM at the tag's snapshot}, read with Python icechunk +
zarr (settings for s3:// and az:// from the environment, as check_repo.py).
"""

import argparse
import json
import os
import sys

import zarr

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402

import icechunk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("--dim", default="time")
    args = ap.parse_args()
    repo = icechunk.Repository.open(storage_for(args.repo))
    out = {}
    for tag in sorted(repo.list_tags()):
        store = repo.readonly_session(tag=tag).store
        out[tag] = zarr.open_array(store, path=args.dim, mode="r").shape[0]
    print(json.dumps(out))


if __name__ == "__main__":
    from finish import run

    run(main)
