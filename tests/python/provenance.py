"""Floe's provenance as Python icechunk + zarr read it: a commit's own record is in
its snapshot metadata (`floe`, as JSON text; a map in earlier builds); the files it
ingested are rows of the group's provenance log (`/.floe/provenance`, `/.floe/provenance~<group>`), a text array of
JSON rows that the metadata points into (`rows`: group -> [first, count]).
Commits of earlier Floe builds list their files in the metadata itself."""

import json

import zarr


def log_path(group):
    g = group.strip("/")
    return ".floe/provenance" if not g else ".floe/provenance~" + g.replace("/", "~")


def history(repo, branch="main"):
    """[(snapshot info, [file provenance dicts])] of a branch, newest first."""
    snaps = list(repo.ancestry(branch=branch))
    logs = {}
    out = []
    for s in snaps:
        p = (s.metadata or {}).get("floe") or {}
        if isinstance(p, str):
            p = json.loads(p)
        files = list(p.get("files", []))
        for group, (first, count) in sorted(p.get("rows", {}).items()):
            if group not in logs:
                store = repo.readonly_session(snapshot_id=snaps[0].id).store
                logs[group] = zarr.open_array(store, path=log_path(group), mode="r")[:]
            files += [json.loads(str(r)) for r in logs[group][first : first + count]]
        out.append((s, files))
    return out
