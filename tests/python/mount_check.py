"""Reference checks of a Floe mount, with the ecosystem's own readers.

    python mount_check.py compare MOUNT REPO FOLDER=REF ...
        FOLDER is a path under MOUNT (branches/main, tags/v1, snapshots/ID,
        by-time/NAME); REF is branch:NAME, tag:NAME or snapshot:ID. For each:
        xr.open_zarr(mount folder) equals xr.open_zarr(icechunk session at REF);
        zarr-python lists and reads every array from the mount; the mount holds
        exactly the store's keys, each with the store's size and bytes; the
        folder's mtime is the commit time.
    python mount_check.py pyrepo REPO
        write a repository with Python icechunk + xarray (not Floe): three commits
        appending along time, a nested group, tag v1 at the second; prints JSON ids.
    python mount_check.py tag REPO NAME          tag the tip of main
    python mount_check.py snapshots REPO         main's history as JSON [[id, iso time], ...]
    python mount_check.py readers MOUNT REPO SECONDS THREADS
        THREADS threads read files under MOUNT/branches/main (and by-time folders)
        while the branch advances; every file read whole must equal that key in
        some snapshot of main's history (no torn reads), with no errors.

Repository URLs as in check_repo.py (local path, s3://, az:// with the test servers' settings).
"""

import hashlib
import json
import os
import random
import sys
import threading
import time

import numpy as np
import xarray as xr
import zarr

import icechunk
from check_repo import storage_for


def session_at(repo, ref):
    kind, _, name = ref.partition(":")
    if kind == "branch":
        return repo.readonly_session(branch=name)
    if kind == "tag":
        return repo.readonly_session(tag=name)
    return repo.readonly_session(snapshot_id=name)


def store_keys(store):
    import asyncio

    async def collect():
        return [k async for k in store.list()]

    return sorted(asyncio.run(collect()))


def walk_files(root):
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def read_key(store, key):
    import asyncio

    from zarr.core.buffer import default_buffer_prototype

    async def get():
        b = await store.get(key, prototype=default_buffer_prototype())
        return None if b is None else b.to_bytes()

    return asyncio.run(get())


def walk_arrays(group, prefix=""):
    for name, a in group.arrays():
        yield f"{prefix}{name}", a
    for name, g in group.groups():
        yield from walk_arrays(g, f"{prefix}{name}/")


def compare(mount, url, pairs):
    repo = icechunk.Repository.open(storage_for(url))
    for pair in pairs:
        folder, _, ref = pair.partition("=")
        path = os.path.join(mount, folder)
        session = session_at(repo, ref)
        label = f"{folder} vs {ref}"
        # xarray, both ways
        want = xr.open_zarr(session.store, consolidated=False).load()
        got = xr.open_zarr(path, consolidated=False).load()
        xr.testing.assert_identical(want, got)
        # every key of the store, and nothing else, with the same size and bytes;
        # Floe's own group (/.floe: the statistics `floe stats` reads) is not data
        # and the mount does not show it (SEMANTICS.md)
        keys = [k for k in store_keys(session.store) if not k.startswith(".floe/")]
        files = walk_files(path)
        assert files == keys, f"{label}: mount has {len(files)} files, store {len(keys)} keys; " \
            f"extra {sorted(set(files) - set(keys))[:5]}, missing {sorted(set(keys) - set(files))[:5]}"
        for k in keys:
            b = read_key(session.store, k)
            p = os.path.join(path, k)
            assert os.path.getsize(p) == len(b), f"{label}: size of {k}"
            with open(p, "rb") as f:
                assert f.read() == b, f"{label}: bytes of {k}"
        # zarr-python lists and reads every array, group by group
        g_mount = zarr.open_group(path, mode="r")
        g_ref = zarr.open_group(session.store, mode="r")
        names_m = sorted(n for n, _ in walk_arrays(g_mount))
        names_r = sorted(n for n, _ in walk_arrays(g_ref) if not n.startswith(".floe/"))
        assert names_m == names_r, f"{label}: arrays {names_m} vs {names_r}"
        for n, a in walk_arrays(g_mount):
            np.testing.assert_array_equal(a[...], g_ref[n][...], err_msg=f"{label}: {n}")
        # the folder's modification time is the commit time
        info = repo.lookup_snapshot(session.snapshot_id)
        mtime = os.stat(path).st_mtime
        assert abs(mtime - info.written_at.timestamp()) < 1e-3, f"{label}: mtime {mtime} vs {info.written_at}"
        print(f"OK: {label}: {len(keys)} keys, {len(names_m)} arrays")


def pyrepo(url):
    repo = icechunk.Repository.create(storage_for(url))
    t0 = np.datetime64("2024-01-01T00:00:00", "ns")
    ids = []
    for i in range(3):
        n = 50
        times = t0 + np.arange(i * n, (i + 1) * n) * np.timedelta64(60, "s")
        ds = xr.Dataset(
            {
                "temp": (("time", "x"), np.random.default_rng(i).normal(size=(n, 4)).astype("f4"),
                         {"units": "K"}),
                "flag": ("time", np.arange(i * n, (i + 1) * n, dtype="i2")),
            },
            coords={"time": times, "x": np.arange(4)},
            attrs={"title": "written by python icechunk"},
        )
        s = repo.writable_session("main")
        if i == 0:
            ds.to_zarr(s.store, consolidated=False, encoding={"temp": {"chunks": (20, 4)}})
            sub = xr.Dataset({"depth": ("z", np.linspace(0, 10, 7))})
            sub.to_zarr(s.store, group="site/deep", consolidated=False, mode="a")
        else:
            ds.to_zarr(s.store, consolidated=False, append_dim="time")
        ids.append(s.commit(f"python commit {i}"))
        if i == 1:
            repo.create_tag("v1", ids[-1])
    repo.create_branch("dev", ids[0])
    print(json.dumps({"snapshots": ids}))


def tag(url, name):
    repo = icechunk.Repository.open(storage_for(url))
    repo.create_tag(name, repo.lookup_branch("main"))


def snapshots(url):
    repo = icechunk.Repository.open(storage_for(url))
    print(json.dumps([[s.id, s.written_at.isoformat()] for s in repo.ancestry(branch="main")]))


def readers(mount, url, seconds, threads):
    base = os.path.join(mount, "branches", "main")
    end = time.time() + seconds
    seen = {}  # key -> set of digests
    errors = []
    counts = [0] * threads
    lock = threading.Lock()

    def one(i):
        rnd = random.Random(i)
        while time.time() < end:
            try:
                files = walk_files(base) if rnd.random() < 0.2 or not counts[i] else files
                for k in rnd.sample(files, min(8, len(files))):
                    try:
                        with open(os.path.join(base, k), "rb") as f:
                            size = os.fstat(f.fileno()).st_size
                            data = f.read()
                    except FileNotFoundError:
                        continue  # listed at an older tip, gone at the newer one: not an error
                    if len(data) != size:
                        raise AssertionError(f"{k}: read {len(data)} bytes, stat said {size}")
                    with lock:
                        seen.setdefault(k, set()).add(hashlib.sha256(data).hexdigest())
                    counts[i] += 1
            except Exception as e:  # noqa: BLE001 - every error is a failure, reported below
                errors.append(f"thread {i}: {e!r}")
                return

    ts = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    repo = icechunk.Repository.open(storage_for(url))
    valid = {}
    for snap in repo.ancestry(branch="main"):
        store = repo.readonly_session(snapshot_id=snap.id).store
        for k in seen:
            b = read_key(store, k)
            if b is not None:
                valid.setdefault(k, set()).add(hashlib.sha256(b).hexdigest())
    torn = [k for k, ds in seen.items() if not ds <= valid.get(k, set())]
    if errors or torn:
        print(f"FAILED: errors {errors[:5]}, torn reads {torn[:5]}")
        sys.exit(1)
    print(f"OK: {sum(counts)} whole-file reads by {threads} threads, {len(seen)} keys, no torn reads")


def main():
    cmd = sys.argv[1]
    if cmd == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "pyrepo":
        pyrepo(sys.argv[2])
    elif cmd == "tag":
        tag(sys.argv[2], sys.argv[3])
    elif cmd == "snapshots":
        snapshots(sys.argv[2])
    elif cmd == "readers":
        readers(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        raise SystemExit(f"unknown: {cmd}")


if __name__ == "__main__":
    from finish import run

    run(main)
