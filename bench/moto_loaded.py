"""A moto S3 server on loopback, holding a copy of a local repository.

    python bench/moto_loaded.py REPO BUCKET PREFIX PORT

Loads every file under REPO as s3://BUCKET/PREFIX/<relative path> straight into
moto's in-process backend, then serves it on 127.0.0.1:PORT until stdin closes.
Prints `ready <objects> <seconds>` once it serves. Why not through the API: a year
of 15-minute files is 254,397 objects, and uploading them to moto over HTTP took
more than 50 minutes (16 threads, moto at 3.6 GB); put straight into the backend
they take about a minute. The bytes, keys and listings served are the same; only
the objects' times are the time of the load.
"""

import logging
import os
import sys
import time


def load(repo, bucket, prefix):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    n = 0
    for d, _, files in os.walk(repo):
        for f in files:
            path = os.path.join(d, f)
            with open(path, "rb") as fh:
                backend.put_object(bucket, f"{prefix}/{os.path.relpath(path, repo)}", fh.read())
            n += 1
    return n


def main():
    repo, bucket, prefix, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    t = time.perf_counter()
    n = load(repo, bucket, prefix)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"ready {n} {time.perf_counter() - t:.0f}", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
