"""Benchmark: what one commit per file costs as the history grows.

    python bench/commits.py --floe PATH/TO/floe [--commits 2000] [--round 100] [--json F]

Feeds a folder 15-minute instrument files (tests/python/make_fixtures.py), a round
of `--round` files at a time, and runs `floe sync --batch 1` after each round: one
commit per file, into one local repository whose history grows to `--commits`.
Each round is a process of its own, as a daemon's cycle starts from what the
repository records (its history and provenance log are read at every start), so a
round's wall time is what those commits cost at that length of history. Prints
each round's seconds and the ratio of the last rounds to the first (issue 23:
the last 100 commits of 2,000 may cost at most 1.5x the first 100).
"""

import argparse
import json
import os
import shutil
import statistics

from ingest import make_week, measure


def sync(floe, src, repo, env):
    s, _, _ = measure([floe, "sync", src, repo, "--batch", "1", "--quiet", "0"], env)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--round", type=int, default=100)
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/floe/bench"))
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    pool = os.path.join(args.work, "commits-pool")
    make_week(pool, args.commits)
    files = sorted(f for f in os.listdir(pool) if f.endswith(".nc"))[: args.commits]
    src = os.path.join(args.work, "commits-src")
    repo = os.path.join(args.work, "commits-repo")
    for d in (src, repo):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(src)
    env = dict(os.environ, RUST_LOG="error")
    env.pop("FLOE_LOG", None)
    rounds = []
    for start in range(0, len(files), args.round):
        for f in files[start:start + args.round]:
            os.link(os.path.join(pool, f), os.path.join(src, f))
        s = sync(args.floe, src, repo, env)
        n = len(files[start:start + args.round])
        rounds.append({"history_before": start, "commits": n, "seconds": round(s, 3),
                       "ms_per_commit": round(1000 * s / n, 2)})
        print(f"commits {start + 1:>5}-{start + n:<5} {s:7.2f} s  {1000 * s / n:6.1f} ms a commit",
              flush=True)
    k = max(1, min(3, len(rounds) // 4))
    first = statistics.median(r["ms_per_commit"] for r in rounds[:k])
    last = statistics.median(r["ms_per_commit"] for r in rounds[-k:])
    total = sum(r["seconds"] for r in rounds)
    print(f"\n{len(files)} commits in {total:.1f} s; the first {k} rounds {first:.1f} ms a commit, "
          f"the last {k} {last:.1f} ms: {last / first:.2f}x (target ≤ 1.5x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "first_ms": first, "last_ms": last,
                       "ratio": round(last / first, 3), "total_s": round(total, 2)}, f, indent=1)


if __name__ == "__main__":
    main()
