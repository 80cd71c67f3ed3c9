"""Benchmark the desktop app: cold start to the first rendered folder list, and
idle RSS with 5 sync folders (the app, and the app with its WebKit processes), with
the window open and tray-only (started `--hidden`, as the login autostart does).

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


def close_window_of(pid, display_name):
    """WM_DELETE_WINDOW to each top-level window of `pid`, as a window manager sends
    when the user closes it; the number asked."""
    from Xlib import X, display, protocol

    dpy = display.Display(display_name)
    atom = dpy.intern_atom
    wm_pid, protocols, delete = atom("_NET_WM_PID"), atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW")
    asked = 0
    for w in dpy.screen().root.query_tree().children:
        owner = w.get_full_property(wm_pid, X.AnyPropertyType)
        if owner and owner.value[0] == pid and delete in (w.get_wm_protocols() or []):
            w.send_event(protocol.event.ClientMessage(
                window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])))
            asked += 1
    dpy.flush()
    dpy.close()
    return asked


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
                # closed to the tray: the window and its webview go, the engine stays
                if close_window_of(p.pid, display) == 0:
                    raise SystemExit("found no window of the app to close")
                time.sleep(a.idle_secs)
                if p.poll() is not None:
                    raise SystemExit(f"closing the window ended the app ({p.returncode})")
                closed = rss_mb(p.pid) + sum(rss_mb(c) for c in children(p.pid))
                closed_parts = [(Path(f"/proc/{c}/comm").read_text().strip(), rss_mb(c))
                                for c in children(p.pid)] + [("app", rss_mb(p.pid))]
            p.terminate()
            p.wait(timeout=30)
        # tray-only: no window is made, so no WebKit web process (issue 22: < 150 MB)
        tray = []
        for run in range(a.runs if a.runs < 3 else 3):
            p = subprocess.Popen([a.app, "--hidden"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(a.idle_secs)
            if p.poll() is not None:
                raise SystemExit(f"the hidden app exited with {p.returncode}")
            tray.append(rss_mb(p.pid) + sum(rss_mb(c) for c in children(p.pid)))
            p.terminate()
            p.wait(timeout=30)
        med = statistics.median(starts)
        print("\nDesktop app (release, Xvfb, 5 sync folders on local repositories)")
        print(f"  cold start to first rendered folder list: first {starts[0] * 1000:.0f} ms, "
              f"median of {a.runs} {med * 1000:.0f} ms (target < 1500 ms): "
              f"{'OK' if med < 1.5 else 'OVER'}")
        print(f"  idle RSS after {a.idle_secs:.0f} s: app process {app:.1f} MB; "
              f"with its WebKit web and network processes {total:.1f} MB (window open; "
              f"target: no more than 502 MB)")
        print(f"  after closing the window to the tray, {a.idle_secs:.0f} s later, with every "
              f"descendant: {closed:.1f} MB ("
              f"{', '.join(f'{n} {m:.1f}' for n, m in closed_parts)}; target < 150 MB): {'OK' if closed < 150 else 'OVER'}")
        tmed = statistics.median(tray)
        print(f"  tray-only idle RSS after {a.idle_secs:.0f} s (started --hidden), with every "
              f"descendant: median of {len(tray)} {tmed:.1f} MB "
              f"({' '.join(f'{t:.1f}' for t in tray)}; target < 150 MB): "
              f"{'OK' if tmed < 150 else 'OVER'}")
    finally:
        bus.terminate()
        x.terminate()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
