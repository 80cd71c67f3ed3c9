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


def rss_split_mb(pid):
    """(anonymous, file-backed) resident memory: the process's own memory, and the
    pages of its binary and libraries it has touched (shared, the kernel's to drop)."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                got[line.split(":")[0]] = int(line.split()[1]) / 1024
    return got.get("RssAnon", 0.0), got.get("RssFile", 0.0)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


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
