"""What the daemon benchmarks share: run `floe`, read `floe status --json`, and a
process's resident memory."""

import json
import subprocess
import time


def floe(binary, args, env):
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env)


def status(binary, env):
    """The running daemon's folders, or None when none answers."""
    r = floe(binary, ["status", "--json"], env)
    return json.loads(r.stdout) if r.returncode == 0 else None


def _status_mb(pid, *fields):
    """Fields of /proc/PID/status given in kB, in MB (0 for one not there)."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in fields:
                got[name] = int(value.split()[0]) / 1024
    return tuple(got.get(n, 0.0) for n in fields)


def rss_split_mb(pid):
    """(anonymous, file-backed) resident memory: the process's own memory, and the
    pages of its binary and libraries it has touched (shared, the kernel's to drop)."""
    return _status_mb(pid, "RssAnon", "RssFile")


def rss_mb(pid):
    return _status_mb(pid, "VmRSS")[0]


def start_daemon(binary, env, rescan=30, wrap=(), stderr=subprocess.DEVNULL, timeout=20):
    """`floe daemon --quiet 0` (under `wrap`, heaptrack say), returned once it answers
    `floe status`."""
    p = subprocess.Popen([*wrap, binary, "daemon", "--quiet", "0", "--rescan", str(rescan)],
                         env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(binary, env) is not None:
            return p
        if p.poll() is not None:
            raise SystemExit(f"floe daemon exited with {p.returncode}")
        time.sleep(0.05)
    p.kill()
    raise SystemExit("floe daemon did not start")
