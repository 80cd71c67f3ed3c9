"""What the daemon benchmarks share: run `floe`, read `floe status --json`, and a
process's resident memory."""

import json
import subprocess


def floe(binary, args, env):
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env)


def status(binary, env):
    """The running daemon's folders, or None when none answers."""
    r = floe(binary, ["status", "--json"], env)
    return json.loads(r.stdout) if r.returncode == 0 else None


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
