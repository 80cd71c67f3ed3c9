"""Benchmark: `floe verify` of the week against its default `floe sync`, side by side
with the reference way (Python icechunk + xarray, bench/reference_verify.py).

    python bench/verify.py --floe PATH/TO/floe [--files 672] [--rounds 5] [--work DIR]

Each round syncs the week into a fresh local repository (default settings: one
commit of 64 MB here), then verifies it with Floe and with the reference. Medians
of the rounds, and the ratio verify / sync (target: at most 2).
"""

import argparse
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ingest import make_week, measure  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", required=True)
    ap.add_argument("--files", type=int, default=672)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/floe/bench"))
    args, _ = ap.parse_known_args()
    week = os.path.join(args.work, "week")
    make_week(week, args.files)
    repo = os.path.join(args.work, "repo-verify")
    env = dict(os.environ, RUST_LOG="error")
    runs = {"sync": [], "verify": [], "reference": []}
    rss = {"sync": [], "verify": [], "reference": []}
    for _ in range(args.rounds):
        shutil.rmtree(repo, ignore_errors=True)
        for name, cmd in (
            ("sync", [args.floe, "sync", week, repo, "--quiet", "0"]),
            ("verify", [args.floe, "verify", week, repo]),
            ("reference", [sys.executable, os.path.join(HERE, "reference_verify.py"), repo, week]),
        ):
            s, r, _ = measure(cmd, env)
            runs[name].append(s)
            rss[name].append(r)
    shutil.rmtree(repo, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nVerify the week ({args.files} files), medians of {args.rounds} rounds")
    print(f"{'run':28} {'median s':>9} {'runs s':>36} {'peak RSS MB':>12}")
    for k, label in (("sync", "floe sync (default)"), ("verify", "floe verify"),
                     ("reference", "reference (xarray + icechunk)")):
        shown = " ".join(f"{x:.2f}" for x in runs[k])
        print(f"{label:28} {med[k]:9.2f} {shown:>36} {max(rss[k]):12.1f}")
    ratio = med["verify"] / med["sync"]
    print(f"floe verify / floe sync: {ratio:.2f}x (target <= 2x): {'OK' if ratio <= 2 else 'OVER'}")
    print(f"reference / floe verify: {med['reference'] / med['verify']:.1f}x")


if __name__ == "__main__":
    main()
