"""What a repository's storage holds, read without Floe: for the retention tests.

    python retention.py objects REPO
        every object of the repository's storage as JSON {key: size}, listed with the
        storage's own client (os.walk, boto3, azure-storage-blob)
    python retention.py scan REPO SOURCES... --var co2 --from T1 --to T2
        decompress every chunk object in the storage and count how many of the
        window's stored float64 values of VAR (as the sources hold them) are in one;
        prints {"found": n, "of": m}
    python retention.py window REPO SOURCES... --from T1 --to T2 [--vars a,b] [--branch main]
        with xarray: inside the window every deleted variable reads as missing
        (NaN, or the fill value for text), outside it and in every other variable the
        repository equals the sources; prints OK or the differences

    python retention.py tag REPO NAME
        tag the tip of main as NAME, with Python icechunk

Settings for s3:// and az:// come from the environment, as for check_repo.py.
"""

import argparse
import json
import os
import sys

import numcodecs
import numpy as np
import xarray as xr

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402
from storage import az_container, s3_client  # noqa: E402

import icechunk  # noqa: E402


def objects(url):
    """{key under the repository root: size} for every object."""
    out = {}
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for page in pages:
            for o in page.get("Contents", []):
                out[o["Key"][len(prefix) + 1:]] = o["Size"]
    elif url.startswith("az://"):
        container, _, prefix = url[5:].partition("/")
        for b in az_container(container).list_blobs(name_starts_with=prefix + "/"):
            out[b.name[len(prefix) + 1:]] = b.size
    else:
        for d, _, names in os.walk(url):
            for n in names:
                p = os.path.join(d, n)
                key = os.path.relpath(p, url)
                if key != ".lock" and not n.startswith("."):
                    out[key] = os.path.getsize(p)
    return out


def read_object(url, key):
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return s3_client().get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()
    if url.startswith("az://"):
        container, _, prefix = url[5:].partition("/")
        return az_container(container).download_blob(f"{prefix}/{key}").readall()
    with open(os.path.join(url, key), "rb") as f:
        return f.read()


def along(files, name, decode):
    """A variable's values (stored values unless `decode`) over the files, concatenated along its first dimension,
    with the decoded times of that dimension."""
    vals, times = [], []
    for f in files:
        with xr.open_dataset(f, decode_cf=decode, mask_and_scale=decode) as raw, \
                xr.open_dataset(f) as dec:
            v = raw[name]
            vals.append(v.values)
            times.append(dec[v.dims[0]].values)
    return np.concatenate(vals), np.concatenate(times)


def in_window(times, t1, t2):
    t = np.asarray(times).astype("datetime64[ns]")
    return (t >= np.datetime64(t1.replace("Z", ""), "ns")) & (t < np.datetime64(t2.replace("Z", ""), "ns"))


def scan(args):
    vals, times = along(args.sources, args.var, decode=False)
    inside = in_window(times, args.from_, args.to)
    picked = np.asarray(vals)[inside].astype("<f8").ravel()
    wanted = {x.tobytes() for x in picked if not np.isnan(x)}
    zstd = numcodecs.Zstd()
    found = set()
    for key in objects(args.repo):
        if not key.startswith("chunks/"):
            continue
        raw = read_object(args.repo, key)
        try:
            body = bytes(zstd.decode(raw))
        except Exception:
            continue
        n = len(body) // 8 * 8
        if n:
            found |= wanted.intersection(body[i:i + 8] for i in range(0, n, 8))
    print(json.dumps({"found": len(found), "of": len(wanted)}))


def window(args):
    repo = icechunk.Repository.open(storage_for(args.repo))
    got = xr.open_zarr(repo.readonly_session(args.branch).store, consolidated=False)
    raw = xr.open_zarr(repo.readonly_session(args.branch).store, consolidated=False, decode_cf=False)
    with xr.open_dataset(args.sources[0]) as first:
        names = [n for n, v in first.data_vars.items() if v.dims and v.dims[0] in ("time", "hf_time")]
    deleted = set(args.vars.split(",")) if args.vars else None
    errors = []
    for name in names:
        e, times = along(args.sources, name, decode=False)
        inside = in_window(times, args.from_, args.to)
        if not inside.any() or not (~inside).any():
            errors.append(f"{name}: the window must cut its records")
            continue
        g, gr = got[name].values, raw[name].values
        if e.ndim != gr.ndim:  # a char array in the file, text in the repository
            e, _ = along(args.sources, name, decode=True)
        if deleted is None or name in deleted:
            gi = g[inside]
            missing = (gi == "") if gi.dtype.kind in "OUT" else np.isnan(gi.astype("f8"))
            if not np.all(missing):
                errors.append(f"{name}: {int((~missing).sum())} values left inside the window")
        elif not _same(gr[inside], e[inside]):
            errors.append(f"{name}: changed inside the window though not deleted")
        if not _same(gr[~inside], e[~inside]):
            errors.append(f"{name}: changed outside the window")
    if errors:
        print("\n".join(errors))
        raise SystemExit(1)
    print(f"OK: window deleted in {sorted(deleted or names)}, the rest unchanged")


def _same(a, b):
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "OUTS" or b.dtype.kind in "OUTS":
        text = lambda x: x.decode() if isinstance(x, bytes) else str(x)  # noqa: E731
        return [text(x) for x in a.ravel()] == [text(x) for x in b.ravel()]
    return np.array_equal(a.astype("f8"), b.astype("f8"), equal_nan=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["objects", "scan", "window", "tag"])
    ap.add_argument("repo")
    ap.add_argument("sources", nargs="*")
    ap.add_argument("--var", default="co2")
    ap.add_argument("--vars", default="")
    ap.add_argument("--from", dest="from_")
    ap.add_argument("--to")
    ap.add_argument("--branch", default="main")
    args = ap.parse_args()
    if args.what == "objects":
        print(json.dumps(objects(args.repo)))
    elif args.what == "tag":
        repo = icechunk.Repository.open(storage_for(args.repo))
        repo.create_tag(args.sources[0], repo.lookup_branch("main"))
        print("tagged")
    elif args.what == "scan":
        scan(args)
    else:
        window(args)


if __name__ == "__main__":
    from finish import run

    run(main)
