"""A slow, lossy link into a network namespace, for the tests.

    python slowlink.py NAME --delay-ms 500 --loss 0.01

Makes network namespace NAME and joins it to this one by a point-to-point link:
10.77.0.1 here, 10.77.0.2 inside. Packets from here to there are delayed by
--delay-ms and packets either way are dropped with probability --loss, so TCP
sees the round trip and the loss a long-distance link has.

The kernel's own `tc qdisc ... netem` does this when the kernel has sch_netem;
this machine's kernel does not, so the link is two TUN devices, one on each side,
and this process moves the packets between them (the same thing netem does, in
user space). Prints READY when the link is up; runs until SIGTERM, then removes the
namespace.
"""

import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--delay-ms", type=float, default=500.0)
    ap.add_argument("--loss", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    ns = a.name
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    ip("netns", "add", ns)

    def cleanup(*_):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    try:
        here_name, there_name = f"{ns[:10]}a", f"{ns[:10]}b"
        here = tun(here_name)
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        os.setns(target, CLONE_NEWNET)
        there = tun(there_name)  # created inside the namespace
        os.setns(home, CLONE_NEWNET)
        ip("addr", "add", "10.77.0.1", "peer", "10.77.0.2", "dev", here_name)
        ip("link", "set", here_name, "up")
        ip("addr", "add", "10.77.0.2", "peer", "10.77.0.1", "dev", there_name, ns=ns)
        ip("link", "set", there_name, "up", ns=ns)
        ip("link", "set", "lo", "up", ns=ns)
    except Exception as e:  # noqa: BLE001 - say what is missing, then clean up
        print(f"cannot make the link: {e}", file=sys.stderr, flush=True)
        cleanup()

    delay = a.delay_ms / 1000.0
    queue = []  # (due, seq, fd, packet)
    seq = 0
    print("READY", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        ready, _, _ = select.select([here, there], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            while True:
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if rng.random() < a.loss:
                    continue
                out, wait = (there, delay) if fd == here else (here, 0.0)
                seq += 1
                heapq.heappush(queue, (now + wait, seq, out, pkt))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, pkt = heapq.heappop(queue)
            try:
                os.write(out, pkt)
            except (BlockingIOError, OSError):
                pass  # a full queue drops, as a real link does


if __name__ == "__main__":
    main()
