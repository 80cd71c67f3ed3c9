"""A branch's history as Python icechunk reads it, oldest first: for each commit,
the source files its provenance names (provenance.py) and their sizes, as JSON.

    python history.py REPO_URL [BRANCH]
"""

import json
import os
import sys

import icechunk

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402
from provenance import history  # noqa: E402


def main():
    url = sys.argv[1]
    branch = sys.argv[2] if len(sys.argv) > 2 else "main"
    repo = icechunk.Repository.open(storage_for(url))
    out = []
    for snap, files in history(repo, branch):
        out.append({"id": snap.id, "files": [[f["source"], f["size"]] for f in files]})
    out.reverse()
    print(json.dumps(out))


if __name__ == "__main__":
    from finish import run

    run(main)
