"""Benchmark the desktop app: cold start to the first rendered folder list, and
idle RSS with 5 sync folders (the app, and the app with its WebKit processes).

    python bench/app.py --app PATH/TO/floe-desktop --floe PATH/TO/floe [--runs 5]

Runs under its own Xvfb and D-Bus session. "Rendered" is the UI's own signal: after
the first folder list is in the DOM it calls `ui_ready`, which writes
$FLOE_READY_FILE; the clock starts just before the process is spawned.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid):
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(p.name))
                out.extend(children(int(p.name)))
    return out


def xvfb():
    n = next(n for n in range(120, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    p = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        time.sleep(0.05)
    return p, f":{n}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True)
    ap.add_argument("--floe", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-secs", type=float, default=15)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="floe-bench-app-"))
    x, display = xvfb()
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address"],
                           stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    try:
        env = dict(os.environ, DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=address,
                   HOME=str(work / "home"), XDG_CONFIG_HOME=str(work / "home/.config"),
                   FLOE_CONFIG=str(work / "config.toml"), FLOE_RUNTIME_DIR=str(work / "run"),
                   FLOE_KEYRING="off")
        for i in range(5):
            f = work / f"instrument{i}"
            f.mkdir(parents=True)
            subprocess.run([a.floe, "add", str(f), str(work / f"repo{i}")], env=env, check=True,
                           capture_output=True)
        starts = []
        for run in range(a.runs):
            ready = work / f"ready{run}"
            t0 = time.time()
            p = subprocess.Popen([a.app], env=dict(env, FLOE_READY_FILE=str(ready)),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not ready.exists() or not ready.read_text().strip():
                if p.poll() is not None:
                    raise SystemExit(f"the app exited with {p.returncode} before drawing")
                if time.time() - t0 > 60:
                    raise SystemExit("the app did not draw its folder list within 60 s")
                time.sleep(0.005)
            starts.append(int(ready.read_text()) / 1000 - t0)
            last = run == a.runs - 1
            if last:
                time.sleep(a.idle_secs)
                app = rss_mb(p.pid)
                total = app + sum(rss_mb(c) for c in children(p.pid))
            p.terminate()
            p.wait(timeout=30)
        med = statistics.median(starts)
        print("\nDesktop app (release, Xvfb, 5 sync folders on local repositories)")
        print(f"  cold start to first rendered folder list: first {starts[0] * 1000:.0f} ms, "
              f"median of {a.runs} {med * 1000:.0f} ms (target < 1500 ms): "
              f"{'OK' if med < 1.5 else 'OVER'}")
        print(f"  idle RSS after {a.idle_secs:.0f} s: app process {app:.1f} MB; "
              f"with its WebKit web and network processes {total:.1f} MB")
    finally:
        bus.terminate()
        x.terminate()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
