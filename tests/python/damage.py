"""Damage an Icechunk repository on purpose, one chunk object of one array.

    python damage.py REPO ARRAY swap|delete|flip [--chunk K]

REPO is a local path, s3://bucket/prefix or az://container/prefix (settings from the
environment, as check_repo.py). The chunk objects of ARRAY's chunk K (along its first
axis; the array must be chunked along that axis only) is found by content: every
object under `chunks/` is decoded (zstd, as Floe writes) and compared with what the
repository reads for that chunk before the damage.

- swap: chunk K+1's object is copied over chunk K's (a valid compressed chunk of the
  same array with other values: only a comparison of values can tell)
- delete: chunk K's object is deleted
- flip: bytes in the middle of chunk K's object are inverted

Prints JSON: the chunk, the records it holds along the first axis, the object key.
"""

import argparse
import json
import os
import sys

import numcodecs
import numpy as np
import zarr

sys.path.insert(0, os.path.dirname(__file__))
from check_repo import storage_for  # noqa: E402
from storage import connection  # noqa: E402

import icechunk  # noqa: E402


class Local:
    def __init__(self, root):
        self.root = root

    def keys(self, prefix):
        d = os.path.join(self.root, prefix)
        return [f"{prefix}/{n}" for n in os.listdir(d)]

    def get(self, key):
        with open(os.path.join(self.root, key), "rb") as f:
            return f.read()

    def put(self, key, data):
        with open(os.path.join(self.root, key), "wb") as f:
            f.write(data)

    def delete(self, key):
        os.remove(os.path.join(self.root, key))


class S3:
    def __init__(self, url):
        import boto3

        self.bucket, _, self.prefix = url[5:].partition("/")
        self.client = boto3.client(
            "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])

    def full(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def keys(self, prefix):
        out = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.full(prefix) + "/")
        for page in pages:
            for o in page.get("Contents", []):
                out.append(prefix + "/" + o["Key"].rsplit("/", 1)[1])
        return out

    def get(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=self.full(key))["Body"].read()

    def put(self, key, data):
        self.client.put_object(Bucket=self.bucket, Key=self.full(key), Body=data)

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=self.full(key))


class Azure:
    def __init__(self, url):
        from azure.storage.blob import BlobServiceClient

        container, _, self.prefix = url[5:].partition("/")
        endpoint = os.environ["AZURITE_BLOB_STORAGE_URL"]
        service = BlobServiceClient.from_connection_string(connection(endpoint))
        self.client = service.get_container_client(container)

    def full(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def keys(self, prefix):
        start = self.full(prefix) + "/"
        return [prefix + "/" + b.name[len(start):] for b in self.client.list_blobs(name_starts_with=start)]

    def get(self, key):
        return self.client.download_blob(self.full(key)).readall()

    def put(self, key, data):
        self.client.upload_blob(self.full(key), data, overwrite=True)

    def delete(self, key):
        self.client.delete_blob(self.full(key))


def objects_for(url):
    if url.startswith("s3://"):
        return S3(url)
    if url.startswith("az://"):
        return Azure(url)
    return Local(url)


def chunk_bytes(arr, k):
    """What chunk k of arr decodes to (little-endian, C order)."""
    c = arr.chunks[0]
    values = np.ascontiguousarray(arr[k * c:(k + 1) * c])
    return values.astype(values.dtype.newbyteorder("<")).tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo")
    ap.add_argument("array")
    ap.add_argument("how", choices=["swap", "delete", "flip"])
    ap.add_argument("--chunk", type=int, default=1)
    args = ap.parse_args()
    repo = icechunk.Repository.open(storage_for(args.repo))
    store = repo.readonly_session(branch="main").store
    arr = zarr.open_array(store, path=args.array.strip("/"), mode="r")
    if tuple(arr.chunks[1:]) != tuple(arr.shape[1:]):
        sys.exit(f"{args.array} is chunked along more than its first axis: {arr.chunks}")
    k = args.chunk
    # (a swap needs the next chunk whole too)
    whole = k + 2 if args.how == "swap" else k + 1
    if whole * arr.chunks[0] > arr.shape[0]:
        sys.exit(f"{args.array} has too few whole chunks ({arr.shape[0]} records of {arr.chunks[0]})")
    want = {chunk_bytes(arr, k): "target"}
    if args.how == "swap":
        want[chunk_bytes(arr, k + 1)] = "other"
    objects = objects_for(args.repo)
    zstd = numcodecs.Zstd()
    found = {}
    for key in objects.keys("chunks"):
        try:
            decoded = bytes(zstd.decode(objects.get(key)))
        except Exception:  # noqa: BLE001 (other arrays' chunks may not be zstd at all)
            continue
        if decoded in want:
            found[want[decoded]] = key
    if "target" not in found or (args.how == "swap" and "other" not in found):
        sys.exit(f"chunk objects of {args.array} not found: {found}")
    target = found["target"]
    if args.how == "swap":
        objects.put(target, objects.get(found["other"]))
    elif args.how == "delete":
        objects.delete(target)
    else:
        data = bytearray(objects.get(target))
        mid = len(data) // 2
        for i in range(mid, min(mid + 16, len(data))):
            data[i] ^= 0xFF
        objects.put(target, bytes(data))
    c = arr.chunks[0]
    print(json.dumps({"chunk": k, "records": [k * c, (k + 1) * c], "object": target}))


if __name__ == "__main__":
    from finish import run

    run(main)
