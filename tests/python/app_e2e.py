"""Drive the real Floe desktop app through tauri-driver + WebKitWebDriver (selenium,
a keep-alive WebDriver client) and check what it did with the reference readers.

Run by tests/tests/app.rs, which starts Xvfb, a Secret Service, Azurite and
tauri-driver, and passes everything in the environment:

  FLOE_E2E_DRIVER   http://127.0.0.1:PORT of tauri-driver
  FLOE_E2E_APP      the floe-desktop binary
  FLOE_E2E_WORK     a scratch folder (watch/, repo/, mnt/ are made here)
  FLOE_E2E_SHOTS    where screenshots go
  FLOE_BIN          the floe CLI (for `floe status`, `floe daemon`)
  AZURITE_BLOB_STORAGE_URL  Azurite, with a container `lab`
  FLOE_E2E_AZ_ACCOUNT, FLOE_E2E_AZ_KEY  its only account and that account's key
  FLOE_E2E_S3_URL, FLOE_E2E_S3_KEY_ID, FLOE_E2E_S3_SECRET  moto checking signatures,
                    with a bucket `lab-bucket` and an IAM user's key

Screens are saved as PNG: folders-empty, folders-wrong-login, folders-syncing,
history, folders-paused, mounts, mounts-prefix, mounts-outlived, settings, folders-zoom-200, folders-held,
folders-drift, folders-remote, folders-refused, folders-refused-ignored, folders-second-start, daemon.
"""

import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import netCDF4
import xarray as xr
import icechunk
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provenance  # noqa: E402

DRIVER = os.environ["FLOE_E2E_DRIVER"]
APP = os.environ["FLOE_E2E_APP"]
WORK = Path(os.environ["FLOE_E2E_WORK"])
SHOTS = Path(os.environ["FLOE_E2E_SHOTS"])
FLOE = os.environ["FLOE_BIN"]
WATCH, REPO, MNT = WORK / "watch", WORK / "repo", WORK / "mnt"


# `kill -USR1 <pid>` prints where the script is (a hung WebDriver call, say)
faulthandler.register(signal.SIGUSR1)


def log(*a):
    print("[app-e2e]", *a, flush=True)


def session(driver=DRIVER):
    opts = ArgOptions()
    opts.set_capability("browserName", "wry")
    opts.set_capability("tauri:options", {"application": APP})
    d = webdriver.Remote(command_executor=driver, options=opts)
    d.implicitly_wait(0)
    return d


def wait(d, what, cond, timeout=60):
    last = None

    def ok(_):
        nonlocal last
        try:
            last = cond()
            return last
        except (WebDriverException, AssertionError) as e:
            # (an engine not answering yet: `floe status` fails with AssertionError)
            last = e
            return False

    try:
        return WebDriverWait(d, timeout, poll_frequency=0.2).until(ok)
    except Exception:
        shot(d, "failure-" + what.replace(" ", "-")[:40])
        raise AssertionError(f"timed out waiting for: {what} (last: {last!r})")


def shot(d, name):
    if d is None:  # (no WebDriver session: the app started by hand)
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    p = SHOTS / f"{name}.png"
    d.save_screenshot(str(p))
    log("screenshot", p)


def css(d, sel):
    return d.find_element(By.CSS_SELECTOR, sel)


def text(d, sel):
    els = d.find_elements(By.CSS_SELECTOR, sel)
    return els[0].text if els else ""


def set_select(d, sel, value):
    d.execute_script(
        "const s=document.querySelector(arguments[0]); s.value=arguments[1];"
        "s.dispatchEvent(new Event('change',{bubbles:true}));", sel, value)


def fill(d, sel, value):
    el = css(d, sel)
    el.clear()
    el.send_keys(value)


def tab(d, name):
    css(d, f"#tab-{name}").click()
    wait(d, f"{name} tab shown", lambda: css(d, f"#{name}").is_displayed())


def card(path):
    return f'article.card[data-path="{path}"]'


def floe_status():
    r = subprocess.run([FLOE, "status", "--json"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def write_nc(name, start, n=12, into=None, spike=None, dtype="f4", firmware=None):
    """A small instrument file, written aside and moved in whole; `spike`: one
    temperature outside the file's valid_range (0-40 degC); `dtype`: temperature's
    type (another one than the repository's is a schema drift); `firmware`: a
    `firmware_version` global attribute."""
    stage = WORK / "stage"
    stage.mkdir(exist_ok=True)
    tmp = stage / name
    with netCDF4.Dataset(tmp, "w") as ds:
        if firmware is not None:
            ds.firmware_version = firmware
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2026-01-01 00:00:00"
        t.calendar = "standard"
        v = ds.createVariable("temperature", dtype, ("time",))
        v.units = "degC"
        v.long_name = "sea water temperature"
        v.valid_range = np.array([0.0, 40.0], dtype=dtype)
        t[:] = np.arange(start, start + n) * 60.0
        values = 10 + np.sin(np.arange(start, start + n) / 5.0)
        if spike is not None:
            values[n // 2] = spike
        v[:] = values
    os.rename(tmp, (into or WATCH) / name)


def phase_app():
    global TRAY
    WATCH.mkdir(parents=True, exist_ok=True)
    d = session()
    TRAY = TrayWatch()
    try:
        wait(d, "first status", lambda: text(d, "#overall") == "All synced")
        wait(d, "the tray's StatusNotifierItem, all synced", lambda: tray() == "synced", 30)
        wait(d, "empty folder list", lambda: css(d, "#no-folders").is_displayed())
        assert "inside this app" in text(d, "#engine-note"), text(d, "#engine-note")
        shot(d, "folders-empty")
        phase_second_start(d)

        # keyboard: the tabs follow the arrow keys
        css(d, "#tab-folders").send_keys(Keys.ARROW_RIGHT)
        wait(d, "arrow key moves to History",
             lambda: css(d, "#tab-history").get_attribute("aria-selected") == "true")
        css(d, "#tab-history").send_keys(Keys.ARROW_LEFT)
        wait(d, "arrow key back to Folders", lambda: css(d, "#folders").is_displayed())

        # a wrong key for Azure: a clear error, and nothing is kept anywhere
        fill(d, "#new-folder", str(WATCH))
        set_select(d, "#dest-kind", "az")
        wait(d, "Azure login fields", lambda: d.find_elements(By.ID, "login-AZURE_STORAGE_ACCOUNT_KEY"))
        fill(d, "#dest-where", "lab")
        fill(d, "#dest-prefix", "site-wrong")
        fill(d, "#login-AZURE_STORAGE_ACCOUNT_NAME", os.environ["FLOE_E2E_AZ_ACCOUNT"])
        fill(d, "#login-AZURE_STORAGE_ACCOUNT_KEY", "d3Jvbmcga2V5IGZvciBhenVyaXRlIGF0IGFsbA==")
        css(d, "#add-folder").click()
        wait(d, "the wrong login is refused",
             lambda: css(d, "#folders-msg").get_attribute("data-kind") == "error", timeout=90)
        msg = text(d, "#folders-msg")
        log("wrong login message:", msg)
        assert "Nothing was saved" in msg, msg
        assert "credentials" in msg.lower() or "refused" in msg.lower(), msg
        assert css(d, "#no-folders").is_displayed()
        shot(d, "folders-wrong-login")
        assert floe_status() == [], "a folder was registered despite the failed test"

        # a local repository: added, tested, syncing
        set_select(d, "#dest-kind", "local")
        fill(d, "#new-folder", str(WATCH))
        fill(d, "#dest-where", str(REPO))
        # with each commit read back from the repository
        css(d, "#add-form details summary").click()
        css(d, "#new-verify-commit").click()
        css(d, "#add-folder").click()
        wait(d, "folder added", lambda: css(d, "#folders-msg").get_attribute("data-kind") == "ok", 60)
        real = str(WATCH.resolve())
        wait(d, "folder card", lambda: d.find_elements(By.CSS_SELECTOR, card(real)))
        write_nc("ctd_0001.nc", 0)
        shot(d, "folders-syncing")
        wait(d, "first commit in the card",
             lambda: "Last commit" in text(d, card(real) + " .commit"), timeout=90)
        wait(d, "up to date", lambda: text(d, card(real) + " .headline") == "Up to date")
        wait(d, "the tray went syncing, then synced again",
             lambda: TRAY.went_through("synced", "syncing", "synced"), 30)
        wait(d, "the commit read back in the card",
             lambda: "1 of 1 files verified" in text(d, card(real) + " .verification"), timeout=60)
        assert text(d, card(real) + " .verification").startswith("Last commit read back")
        st = floe_status()
        assert [f["path"] for f in st] == [real], st
        assert st[0]["files_ingested"] == 1, st
        assert st[0]["last_verification"]["verdict"] == "verified", st

        # History shows the new commit with its file, and the plot
        tab(d, "history")
        wait(d, "commit with the file",
             lambda: "ctd_0001.nc" in text(d, "#commits"), timeout=60)
        wait(d, "plot drawn", lambda: d.find_elements(By.CSS_SELECTOR, "#plot svg path.line"), 30)
        assert "temperature" in text(d, "#plot-summary"), text(d, "#plot-summary")
        shot(d, "history")

        # pause: the app, `floe status` and the repository agree
        tab(d, "folders")
        css(d, card(real) + " button.toggle").click()
        wait(d, "paused", lambda: css(d, card(real)).get_attribute("data-state") == "paused")
        wait(d, "overall paused", lambda: text(d, "#overall") == "Paused")
        wait(d, "the tray paused", lambda: tray() == "paused", 30)
        assert floe_status()[0]["state"]["state"] == "paused"
        write_nc("ctd_0002.nc", 12)
        time.sleep(5)
        assert floe_status()[0]["files_ingested"] == 1, "a paused folder synced"
        shot(d, "folders-paused")
        css(d, card(real) + " button.toggle").click()
        wait(d, "second file synced after resume",
             lambda: floe_status()[0]["files_ingested"] == 2, timeout=90)
        wait(d, "card shows up to date again",
             lambda: text(d, card(real) + " .headline") == "Up to date")
        tab(d, "history")
        wait(d, "second commit in History", lambda: "ctd_0002.nc" in text(d, "#commits"), 60)
        # the whole-history overview: one day of 24 records, from the statistics kept
        # at ingest, equal to numpy over the sources' decoded values
        both = np.concatenate([xr.open_dataset(WATCH / f"ctd_000{i}.nc")["temperature"].values
                               for i in (1, 2)]).astype("f8")

        def overview_bins():
            rows = d.find_elements(By.CSS_SELECTOR, "#overview-bins tr")
            return [(int(r.get_attribute("data-count")), float(r.get_attribute("data-mean") or "nan"))
                    for r in rows]

        wait(d, "the overview counts both files",
             lambda: [c for c, _ in overview_bins()] == [both.size], 60)
        [(count, mean)] = overview_bins()
        assert count == both.size, (count, both.size)
        assert abs(mean - both.mean()) <= 1e-12 * abs(both.mean()), (mean, both.mean())
        assert d.find_elements(By.CSS_SELECTOR, "#overview svg"), "no overview plot"
        assert "mean per day" in text(d, "#overview-summary"), text(d, "#overview-summary")
        d.execute_script("document.getElementById('overview').scrollIntoView()")
        shot(d, "history-overview")

        # what was written equals the sources (Python icechunk + xarray)
        repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(REPO)))
        got = xr.open_zarr(repo.readonly_session(branch="main").store, consolidated=False)
        want = xr.concat([xr.open_dataset(WATCH / f"ctd_000{i}.nc").load() for i in (1, 2)],
                         dim="time")
        xr.testing.assert_identical(got.load(), want.load())

        # Mounts: mount (again at every login), served by a process of its own
        tab(d, "mounts")
        fill(d, "#mount-repo", str(REPO))
        fill(d, "#mount-at", str(MNT))
        css(d, "#mount-at-login").click()
        css(d, "#mount-go").click()
        wait(d, "mounted", lambda: css(d, "#mounts-msg").get_attribute("data-kind") == "ok", 60)
        item = f'li[data-mountpoint="{MNT}"]'
        wait(d, "mount listed", lambda: css(d, item).get_attribute("data-state") == "mounted")
        assert (MNT / "branches" / "main" / "zarr.json").exists()
        helper = int(css(d, item).get_attribute("data-pid"))
        assert Path(f"/proc/{helper}/comm").read_text().strip() == "floe", helper
        assert css(d, item + " input.at-login").is_selected()
        assert "process" in text(d, item) and "mounted" in text(d, item), text(d, item)
        hold_a_file()
        shot(d, "mounts")

        # Mounts: a prefix holding two repositories, browsed from the screen
        lab, lab_mnt = WORK / "lab", WORK / "mnt-lab"
        for site in ("site-a", "site-b"):
            shutil.copytree(REPO, lab / "stations" / site)
        fill(d, "#mount-repo", str(lab))
        fill(d, "#mount-at", str(lab_mnt))
        css(d, "#mount-go").click()
        wait(d, "prefix mounted", lambda: str(lab_mnt) in text(d, "#mount-list"), 60)
        css(d, f'li[data-mountpoint="{lab_mnt}"] button.browse').click()
        wait(d, "repositories listed", lambda: len(d.find_elements(
            By.CSS_SELECTOR, f'li[data-mountpoint="{lab_mnt}"] li[data-repo]')) == 2, 60)
        listed = [e.get_attribute("data-repo") for e in d.find_elements(
            By.CSS_SELECTOR, f'li[data-mountpoint="{lab_mnt}"] li[data-repo]')]
        assert sorted(listed) == ["stations/site-a", "stations/site-b"], listed
        assert (lab_mnt / "stations" / "site-b" / "branches" / "main" / "zarr.json").exists()
        wait(d, "the listing painted", lambda: "Looking for" not in text(d, "#mount-list"))
        time.sleep(0.5)  # (WebKit under Xvfb can hand over the previous paint)
        shot(d, "mounts-prefix")
        css(d, f'li[data-mountpoint="{lab_mnt}"] button.unmount').click()
        wait(d, "prefix unmounted",
             lambda: not d.find_elements(By.CSS_SELECTOR, f'li[data-mountpoint="{lab_mnt}"]'))

        # Settings: start at login writes the autostart entry
        tab(d, "settings")
        box = css(d, "#start-at-login")
        box.click()
        entry = Path(os.environ["XDG_CONFIG_HOME"]) / "autostart" / "Floe.desktop"
        wait(d, "autostart entry", lambda: entry.exists())
        assert "--hidden" in entry.read_text(), entry.read_text()
        shot(d, "settings")
        box.click()
        wait(d, "autostart entry gone", lambda: not entry.exists())

        # 200% zoom: still readable, nothing wider than the window
        tab(d, "folders")
        d.execute_script("document.documentElement.style.fontSize='200%'")
        time.sleep(0.5)
        over = d.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        shot(d, "folders-zoom-200")
        assert over <= 1, f"the page is {over}px wider than the window at 200%"
        d.execute_script("document.documentElement.style.fontSize=''")

        phase_gate(d)
        phase_drift(d)
        phase_refused(d)
        phase_plot_2d(d)
        phase_remote(d)
        log("the tray went through", " -> ".join(TRAY.seen))
    finally:
        TRAY.stop.set()
        d.quit()


# A file of an immutable snapshot folder of the mount, opened while the app that
# made the mount runs and read to its end after that app has gone: (file, bytes read).
HELD = {}


def hold_a_file():
    files = [Path(r) / f for r, _, fs in os.walk(MNT / "snapshots") for f in fs]
    biggest = max(files, key=lambda f: f.stat().st_size)
    f = open(biggest, "rb")
    HELD.update(path=biggest, file=f, head=f.read(biggest.stat().st_size // 2))
    log(f"holding {biggest} open ({biggest.stat().st_size} bytes)")


def floe_mount_of(path):
    ms = json.loads(subprocess.run([FLOE, "mounts", "--json"], capture_output=True, text=True,
                                   check=True, timeout=30).stdout)
    return next((m for m in ms if m["mountpoint"] == str(path)), None)


def phase_mount_outlives_app():
    """The mount made in the first app outlives it: the file it held open reads to
    its end, `floe mounts` names the helper process; then, as a reboot would, the
    helper is killed (the mount dead) and the next app start mounts it again."""
    deadline = time.time() + 30
    while subprocess.run(["pgrep", "-f", f"^{APP}"], capture_output=True).returncode == 0:
        assert time.time() < deadline, "the first app still runs"
        time.sleep(0.2)
    m = floe_mount_of(MNT)
    assert m and m["state"] == "mounted" and m["at_login"], m
    assert m["program"] == "floe" and running(m["pid"]), m
    f = HELD["file"]
    whole = HELD["head"] + f.read()
    f.close()
    assert whole == HELD["path"].read_bytes() and len(whole) == HELD["path"].stat().st_size
    log(f"the app gone, its mount (process {m['pid']}) kept reading {len(whole)} bytes")
    os.kill(m["pid"], signal.SIGKILL)
    deadline = time.time() + 30
    while (floe_mount_of(MNT) or {}).get("state") != "dead":
        assert time.time() < deadline, floe_mount_of(MNT)
        time.sleep(0.2)
    HELD["killed"] = m["pid"]


def main_files(repo_path):
    """The source files main's history lists, as Python icechunk reads it."""
    storage = icechunk.local_filesystem_storage(str(repo_path))
    if not icechunk.Repository.exists(storage):
        return set()
    repo = icechunk.Repository.open(storage)
    return {f["source"] for _, files in provenance.history(repo) for f in files}


def add_local_folder(d, watch, repo, gate=False, on_drift="stop", tags=""):
    """Add `watch` syncing into the local repository `repo` through the form, with
    the More settings asked for; returns the card's folder path."""
    watch.mkdir(exist_ok=True)
    tab(d, "folders")
    set_select(d, "#dest-kind", "local")
    fill(d, "#new-folder", str(watch))
    fill(d, "#dest-where", str(repo))
    if not d.execute_script("return document.querySelector('#add-form details').open"):
        css(d, "#add-form details summary").click()
    if css(d, "#new-verify-commit").is_selected():
        css(d, "#new-verify-commit").click()
    if css(d, "#new-gate").is_selected() != gate:
        css(d, "#new-gate").click()
    set_select(d, "#new-on-drift", on_drift)
    css(d, "#new-tag-on-change").clear()
    if tags:
        css(d, "#new-tag-on-change").send_keys(tags)
    css(d, "#add-folder").click()
    wait(d, f"{watch.name} added", lambda: css(d, "#folders-msg").get_attribute("data-kind") == "ok", 60)
    path = str(watch.resolve())
    wait(d, f"{watch.name} card", lambda: d.find_elements(By.CSS_SELECTOR, card(path)))
    return path


def remove_folder(d, path):
    remove = css(d, card(path) + " button.remove")
    remove.click()
    remove.click()
    wait(d, "folder removed", lambda: not d.find_elements(By.CSS_SELECTOR, card(path)), 30)


def told():
    """What the test session's notification server received (FLOE_E2E_NOTIFIED: one
    JSON object per Notify call), as "summary: body" lines."""
    p = Path(os.environ["FLOE_E2E_NOTIFIED"])
    lines = p.read_text().splitlines() if p.exists() else []
    return "\n".join(f"{n['summary']}: {n['body']}" for n in map(json.loads, lines))


# The tray, read as a tray host does: the StatusNotifierItem the app registered with
# the test session's StatusNotifierWatcher, its icon decoded and matched to Floe's four.
ICONS = Path(__file__).resolve().parents[2] / "src-tauri" / "icons"
TRAY_STATES = ("synced", "syncing", "paused", "attention")


def png_rgba(path):
    """The pixels of an 8-bit RGBA, non-interlaced PNG (what the tray writes)."""
    import struct
    import zlib
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, color, interlace) == (8, 6, 0), (path, depth, color, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, out = zlib.decompress(idat), w * 4, bytearray()
    prev = bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b, c = prev[i], prev[i - 4] if i >= 4 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p_ = a + b - c
                pa, pb, pc = abs(p_ - a), abs(p_ - b), abs(p_ - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return out


def mean_colour(path):
    px = png_rgba(path)
    opaque = [px[i:i + 3] for i in range(0, len(px), 4) if px[i + 3] > 128]
    return [sum(p[k] for p in opaque) / len(opaque) for k in range(3)]


REFERENCE = {}


def gdbus_get(dest, path, iface, prop):
    r = subprocess.run(["gdbus", "call", "--address", os.environ["DBUS_SESSION_BUS_ADDRESS"],
                        "--dest", dest, "--object-path", path, "--method",
                        "org.freedesktop.DBus.Properties.Get", iface, prop],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    import re
    return re.findall(r"'([^']*)'", r.stdout)


def tray():
    """The tray's state as its StatusNotifierItem shows it, or None (not registered)."""
    if not REFERENCE:
        REFERENCE.update({s: mean_colour(ICONS / f"tray-{s}.png") for s in TRAY_STATES})
    items = gdbus_get("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher",
                      "org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems")
    if not items:
        return None
    name, path = items[-1].split("/", 1)
    [icon] = gdbus_get(name, "/" + path, "org.kde.StatusNotifierItem", "IconName") or [""]
    if not icon.startswith("/"):
        theme = gdbus_get(name, "/" + path, "org.kde.StatusNotifierItem", "IconThemePath")
        icon = str(Path(theme[0]) / f"{icon}.png")
    c = mean_colour(icon)
    return min(TRAY_STATES, key=lambda s: sum((a - b) ** 2 for a, b in zip(c, REFERENCE[s])))


class TrayWatch:
    """Every change of the tray's state, sampled every 0.2 s in a thread."""

    def __init__(self):
        import threading
        self.seen, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                s = tray()
            except (AssertionError, OSError, ValueError, subprocess.TimeoutExpired):
                s = None
            if s and (not self.seen or self.seen[-1] != s):
                self.seen.append(s)
            time.sleep(0.2)

    def went_through(self, *states):
        """Whether the states were seen in this order (others between allowed)."""
        it = iter(self.seen)
        return all(any(s == x for x in it) for s in states)


TRAY = None


def phase_drift(d):
    """A folder set in the form to go on in a new branch after a schema drift and
    to tag firmware changes: a file whose temperature is float64 moves it to
    branch drift-<time> (the card says where and why, its repository line follows,
    one notification tells it), the data before it stays on main, and a new
    firmware version is tagged, each as Python icechunk + xarray read them."""
    dwatch, drepo = WORK / "drifting", WORK / "drifting-repo"
    p = add_local_folder(d, dwatch, drepo, on_drift="branch", tags="firmware_version")
    write_nc("ctd_0001.nc", 0, into=dwatch, firmware="1.0")
    wait(d, "the first file on main", lambda: "ctd_0001.nc" in main_files(drepo), 90)
    write_nc("ctd_0002.nc", 12, into=dwatch, firmware="1.1")
    wait(d, "the firmware change on main", lambda: "ctd_0002.nc" in main_files(drepo), 90)
    write_nc("ctd_0003.nc", 24, into=dwatch, dtype="f8", firmware="1.1")
    wait(d, "the drift on the card",
         lambda: css(d, card(p) + " .drift").is_displayed(), 90)
    said = text(d, card(p) + " .drift")
    log("drift on the card:", said)
    assert "went on in branch drift-" in said and "ctd_0003.nc" in said, said
    assert "float" in said, said
    wait(d, "the card's repository line follows",
         lambda: "(branch drift-" in text(d, card(p) + " .repo"), 30)
    assert text(d, card(p) + " .headline") != "Needs attention", text(d, card(p) + " .headline")
    d.execute_script("arguments[0].scrollIntoView()", css(d, card(p)))
    shot(d, "folders-drift")

    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(drepo)))
    branch = next(b for b in repo.list_branches() if b.startswith("drift-"))
    assert branch in text(d, card(p) + " .repo")
    main = xr.open_zarr(repo.readonly_session(branch="main").store, consolidated=False)
    assert main.sizes["time"] == 24 and main["temperature"].dtype == np.float32, main
    moved = xr.open_zarr(repo.readonly_session(branch=branch).store, consolidated=False)
    assert moved["temperature"].dtype == np.float64, moved
    assert moved.sizes["time"] == 12, moved.sizes
    tags = set(repo.list_tags())
    assert {"firmware_version-1.0", "firmware_version-1.1"} <= tags, tags

    wait(d, "one notification of the drift",
         lambda: "went on after a schema drift" in told(), 30)
    time.sleep(5)
    assert told().count("went on after a schema drift") == 1, told()
    remove_folder(d, p)


def phase_second_start(d):
    """A second start of the app, naming a folder, ends at once (no second engine or
    window) and this window offers that folder in the add-folder form."""
    folder = WORK / "second-start"
    folder.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    second = subprocess.run([APP, str(folder)], cwd=WORK, capture_output=True, text=True,
                            timeout=60)
    log(f"a second start ended in {time.monotonic() - t:.1f} s, exit {second.returncode}")
    assert second.returncode == 0, second.stderr[-2000:]
    wait(d, "the form offers the folder",
         lambda: css(d, "#new-folder").get_attribute("value") == str(folder), 30)
    assert "Choose where the data of" in text(d, "#folders-msg"), text(d, "#folders-msg")
    running = subprocess.run(["pgrep", "-c", "-f", f"^{APP}"], capture_output=True, text=True)
    assert running.stdout.strip() == "1", f"{running.stdout} floe-desktop processes run"
    shot(d, "folders-second-start")
    css(d, "#new-folder").clear()


def web_processes(pid):
    """The WebKit web processes under the app (its pages: one while a window is open)."""
    out = subprocess.run(["pgrep", "-P", str(pid), "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "WebKitWebProcess" in line]


def close_window_of(pid):
    """Ask the app's window to close as a window manager does (WM_DELETE_WINDOW to
    each top-level window of `pid` that takes it); the number asked."""
    from Xlib import X, display, protocol

    dpy = display.Display()
    atom = dpy.intern_atom
    wm_pid, protocols, delete = atom("_NET_WM_PID"), atom("WM_PROTOCOLS"), atom("WM_DELETE_WINDOW")
    asked = 0
    for w in dpy.screen().root.query_tree().children:
        owner = w.get_full_property(wm_pid, X.AnyPropertyType)
        if not owner or owner.value[0] != pid or delete not in (w.get_wm_protocols() or []):
            continue
        ev = protocol.event.ClientMessage(window=w, client_type=protocols,
                                          data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        w.send_event(ev)
        asked += 1
    dpy.flush()
    dpy.close()
    return asked


def phase_close_to_tray():
    """The app started by hand (no WebDriver, which ends its session when the last
    window closes): closing its window frees the webview's web process while the
    engine keeps syncing in the tray (a file dropped after closing is committed),
    and a second start opens a new window."""
    deadline = time.time() + 30
    while subprocess.run([FLOE, "status", "--json"], capture_output=True).returncode == 0:
        assert time.time() < deadline, "the first app's engine is still running"
        time.sleep(0.2)
    app = subprocess.Popen([APP], cwd=WORK, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(None, "the window's web process", lambda: web_processes(app.pid), 60)
        wait(None, "the mount kept for login mounted again by the app's start",
             lambda: (floe_mount_of(MNT) or {}).get("state") == "mounted", 60)
        assert floe_mount_of(MNT)["pid"] != HELD["killed"]
        assert (MNT / "branches" / "main" / "zarr.json").exists()
        real = str(WATCH.resolve())
        wait(None, "the engine up", lambda: any(f["path"] == real for f in floe_status()), 60)
        before = next(f for f in floe_status() if f["path"] == real)["files_ingested"]
        wait(None, "the window asked to close", lambda: close_window_of(app.pid) > 0, 30)
        wait(None, "the web process freed", lambda: not web_processes(app.pid), 30)
        assert app.poll() is None, f"closing the window quit the app ({app.returncode})"
        write_nc("ctd_0003.nc", 24)
        wait(None, "a file dropped after closing is committed",
             lambda: next(f for f in floe_status() if f["path"] == real)["files_ingested"]
             == before + 1, 90)
        assert "ctd_0003.nc" in main_files(REPO)
        second = subprocess.run([APP], cwd=WORK, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr[-2000:]
        wait(None, "a new window (a web process again) after a second start",
             lambda: web_processes(app.pid), 30)
        assert app.poll() is None
        log("close to tray: web process freed, file synced, window reopened")
    finally:
        app.terminate()
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()


def write_profile(path):
    """A lidar's profile file: backscatter over (time, range), float32 with a
    _FillValue and a different missing_value, cells of both scattered, one record
    all fill (the laser blocked), as a ceilometer writes it."""
    n, gates = 12, 8
    rng = np.random.default_rng(7)
    values = (rng.random((n, gates)) * 50 + 1).astype("f4")
    values[rng.random((n, gates)) < 0.2] = -9999.0
    values[rng.random((n, gates)) < 0.1] = -8888.0
    values[5, :] = -9999.0
    stage = WORK / "stage"
    stage.mkdir(exist_ok=True)
    tmp = stage / path.name
    with netCDF4.Dataset(tmp, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("range", gates)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2026-03-01 00:00:00"
        t.calendar = "standard"
        r = ds.createVariable("range", "f4", ("range",))
        r.units = "m"
        r[:] = np.arange(gates) * 15.0
        v = ds.createVariable("backscatter", "f4", ("time", "range"), fill_value=np.float32(-9999.0))
        v.missing_value = np.float32(-8888.0)
        v.units = "1e-6 m-1 sr-1"
        v.set_auto_mask(False)
        t[:] = np.arange(n) * 30.0
        v[:] = values
    os.rename(tmp, path)


def phase_plot_2d(d):
    """History's plot of a 2-D variable with fill values: each point the mean of its
    record's valid values over the other dimension (xarray's mean with both the
    _FillValue and missing_value masked), an all-fill record a gap."""
    pwatch, prepo = WORK / "profiler", WORK / "profiler-repo"
    p = add_local_folder(d, pwatch, prepo)
    write_profile(pwatch / "ceilo_0001.nc")
    wait(d, "the profile on main", lambda: "ceilo_0001.nc" in main_files(prepo), 90)
    tab(d, "history")
    fill(d, "#history-other", str(prepo))
    css(d, "#history-show").click()
    wait(d, "backscatter offered", lambda: d.find_elements(
        By.CSS_SELECTOR, '#plot-var option[value="backscatter"]'), 60)
    set_select(d, "#plot-var", "backscatter")
    rows = '#plot-values tr'
    wait(d, "the 2-D plot drawn", lambda: "backscatter" in text(d, "#plot-summary")
         and len(d.find_elements(By.CSS_SELECTOR, rows)) == 12, 60)
    got = [r.get_attribute("data-value") for r in d.find_elements(By.CSS_SELECTOR, rows)]
    want = xr.open_dataset(pwatch / "ceilo_0001.nc")["backscatter"].astype("f8").mean("range").values
    log("2-D plot values", got, "xarray", list(want))
    assert np.isnan(want[5]) and got[5] == "", (want, got)
    for g, w in zip(got, want):
        if np.isnan(w):
            assert g == "", (g, w)
        else:
            assert abs(float(g) - w) <= 1e-9 * abs(w), (g, w)
    said = text(d, "#plot-summary")
    assert "the mean over range per record" in said and "1 all fill" in said, said
    assert d.find_elements(By.CSS_SELECTOR, "#plot svg path.line")
    d.execute_script("document.getElementById('plot').scrollIntoView()")
    shot(d, "history-2d")
    log("the 2-D plot equals xarray's mean over range, the all-fill record a gap")
    css(d, "#history-other").clear()
    tab(d, "folders")
    remove_folder(d, p)


def add_remote_folder(d, watch, kind, where, prefix, login):
    """Add `watch` syncing into a `kind` (s3, az) destination through the form, its
    login typed into the login fields (so kept in the keychain); returns the card's
    folder path."""
    watch.mkdir(exist_ok=True)
    tab(d, "folders")
    fill(d, "#new-folder", str(watch))
    set_select(d, "#dest-kind", kind)
    first = next(iter(login))
    wait(d, f"the {kind} login fields", lambda: d.find_elements(By.ID, f"login-{first}"))
    fill(d, "#dest-where", where)
    fill(d, "#dest-prefix", prefix)
    for var, value in login.items():
        fill(d, f"#login-{var}", value)
    css(d, "#add-folder").click()
    wait(d, f"{watch.name} added",
         lambda: css(d, "#folders-msg").get_attribute("data-kind") == "ok", 90)
    path = str(watch.resolve())
    wait(d, f"{watch.name} card", lambda: d.find_elements(By.CSS_SELECTOR, card(path)))
    return path


def phase_remote(d):
    """An Azure destination (Azurite whose only account has a key of its own) and an
    S3 one (moto checking signatures, an IAM user's key), each added through the
    form with its login: the app keeps the secret in the keychain (the app's own
    environment has none) and syncs a file into each. app.rs reads both back with
    the reference readers and looks in the keychain."""
    e = os.environ
    az_watch, s3_watch = WORK / "to-azure", WORK / "to-s3"
    az = add_remote_folder(d, az_watch, "az", "lab", "site-az", {
        "AZURE_STORAGE_ACCOUNT_NAME": e["FLOE_E2E_AZ_ACCOUNT"],
        "AZURE_STORAGE_ACCOUNT_KEY": e["FLOE_E2E_AZ_KEY"],
    })
    s3 = add_remote_folder(d, s3_watch, "s3", "lab-bucket", "site-s3", {
        "AWS_ACCESS_KEY_ID": e["FLOE_E2E_S3_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": e["FLOE_E2E_S3_SECRET"],
        "AWS_ENDPOINT_URL": e["FLOE_E2E_S3_URL"],
    })
    write_nc("az_0001.nc", 0, into=az_watch)
    write_nc("s3_0001.nc", 0, into=s3_watch)
    for p in (az, s3):
        wait(d, f"a commit into {p}'s destination",
             lambda: "Last commit" in text(d, card(p) + " .commit"), 120)
        wait(d, f"{p} up to date", lambda: text(d, card(p) + " .headline") == "Up to date", 60)
    by_path = {f["path"]: f for f in floe_status()}
    assert by_path[az]["repo"] == "az://lab/site-az", by_path[az]
    assert by_path[s3]["repo"] == "s3://lab-bucket/site-s3", by_path[s3]
    assert by_path[az]["files_ingested"] == by_path[s3]["files_ingested"] == 1, by_path
    d.execute_script(f"document.querySelector('{card(s3)}').scrollIntoView()")
    shot(d, "folders-remote")
    remove_folder(d, az)
    remove_folder(d, s3)
    log("remote destinations: Azure and S3 added with their logins, one file synced into each")


def phase_refused(d):
    """A text file named .nc beside a good file: the card says the folder needs
    attention and lists the file with its reason, one notification tells it, and
    Ignore (kept in the config) makes the folder all synced while still listing it."""
    rwatch, rrepo = WORK / "refusing", WORK / "refusing-repo"
    p = add_local_folder(d, rwatch, rrepo)
    write_nc("ctd_0001.nc", 0, into=rwatch)
    (rwatch / "notes.nc").write_text("calibration notes, not data\n")
    item = card(p) + ' .refused li[data-file="notes.nc"]'
    wait(d, "the refused file listed", lambda: d.find_elements(By.CSS_SELECTOR, item), 90)
    wait(d, "the good file on main", lambda: "ctd_0001.nc" in main_files(rrepo), 90)
    wait(d, "the card needs attention", lambda: text(d, card(p) + " .headline")
         == "Needs attention: 1 file could not be synced", 30)
    assert text(d, "#overall") == "Needs attention", text(d, "#overall")
    assert "not a NetCDF or Zarr file" in text(d, item), text(d, item)
    wait(d, "the tray needs attention", lambda: tray() == "attention", 30)
    d.execute_script("arguments[0].scrollIntoView()", css(d, card(p)))
    shot(d, "folders-refused")
    wait(d, "one notification of the file, received by the session's notification server",
         lambda: "notes.nc could not be synced" in told(), 30)
    time.sleep(4)
    assert told().count("notes.nc could not be synced") == 1, told()

    css(d, item + " button.ignore").click()
    wait(d, "ignored", lambda: css(d, item).get_attribute("data-ignored") == "true", 30)
    wait(d, "all synced once ignored", lambda: text(d, "#overall") == "All synced", 30)
    wait(d, "the tray synced once ignored", lambda: TRAY.went_through(
        "synced", "syncing", "synced", "paused", "attention", "synced"), 30)
    assert text(d, card(p) + " .headline") == "Up to date", text(d, card(p) + " .headline")
    cfg = Path(os.environ["FLOE_CONFIG"]).read_text()
    assert "notes.nc" in cfg, cfg
    shot(d, "folders-refused-ignored")
    remove_folder(d, p)


def phase_gate(d):
    """A gated folder: a value outside valid_range holds it (the card says so and
    offers Release and Drop); Release puts the file on main, Drop leaves the next
    one out, each as Python icechunk + xarray read main."""
    gwatch, grepo = WORK / "gated", WORK / "gated-repo"
    g = add_local_folder(d, gwatch, grepo, gate=True)
    write_nc("buoy_0001.nc", 0, into=gwatch)
    wait(d, "the good file reaches main", lambda: "buoy_0001.nc" in main_files(grepo), 90)
    wait(d, "gated card up to date", lambda: text(d, card(g) + " .headline") == "Up to date")
    assert not css(d, card(g) + " .gate").is_displayed(), "nothing is held yet"

    # a spike of 99 degC: held, main unchanged, the buttons appear
    write_nc("buoy_0002.nc", 12, into=gwatch, spike=99.0)
    wait(d, "held at the gate",
         lambda: text(d, card(g) + " .headline") == "Held at the gate", timeout=90)
    problem = text(d, card(g) + " .problem")
    assert "valid range failed on buoy_0002.nc" in problem, problem
    assert css(d, card(g) + " .gate").is_displayed()
    assert main_files(grepo) == {"buoy_0001.nc"}
    assert any(f["gate_held"] for f in floe_status()), "the status holds no file"
    d.execute_script("arguments[0].scrollIntoView()", css(d, card(g)))
    shot(d, "folders-held")
    css(d, card(g) + " button.gate-release").click()
    wait(d, "released", lambda: "buoy_0002.nc" in main_files(grepo), 60)
    assert "Released 1 file(s)" in text(d, "#folders-msg"), text(d, "#folders-msg")
    wait(d, "buttons gone", lambda: not css(d, card(g) + " .gate").is_displayed(), 30)
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(grepo)))
    got = xr.open_zarr(repo.readonly_session(branch="main").store, consolidated=False,
                       mask_and_scale=False)
    assert float(got["temperature"].max()) == 99.0, "the released spike is on main"

    # another spike: dropped, main stays as it was
    write_nc("buoy_0003.nc", 24, into=gwatch, spike=-50.0)
    wait(d, "held again", lambda: text(d, card(g) + " .headline") == "Held at the gate", 90)
    css(d, card(g) + " button.gate-drop").click()
    wait(d, "dropped", lambda: "Dropped 1 file(s)" in text(d, "#folders-msg"), 60)
    wait(d, "up to date after the drop",
         lambda: text(d, card(g) + " .headline") == "Up to date", 60)
    assert main_files(grepo) == {"buoy_0001.nc", "buoy_0002.nc"}
    got = xr.open_zarr(repo.readonly_session(branch="main").store, consolidated=False,
                       mask_and_scale=False)
    assert got.sizes["time"] == 24, got.sizes
    assert (gwatch / "buoy_0003.nc").exists(), "a dropped file stays where it is"

    # the gated folder goes again, so that the daemon phase sees one folder
    remove_folder(d, g)


def phase_daemon():
    """A running `floe daemon` is shown and controlled, not duplicated."""
    # the first phase's app (and its engine) goes away after its session ends, but
    # not at once: a daemon started before would be refused as a second engine
    deadline = time.time() + 30
    while subprocess.run([FLOE, "status", "--json"], capture_output=True).returncode == 0:
        assert time.time() < deadline, "the first app's engine is still running"
        time.sleep(0.2)
    daemon = subprocess.Popen([FLOE, "daemon", "--quiet", "1"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if floe_status():
                    break
            except AssertionError:
                pass
            assert time.time() < deadline, "floe daemon did not start"
            time.sleep(0.2)
        time.sleep(1)
        # the app of the first phase must be gone, or this daemon was refused
        assert daemon.poll() is None, f"floe daemon exited with {daemon.returncode}"
        d = session()
        try:
            wait(d, "the daemon's engine",
                 lambda: "floe daemon" in text(d, "#engine-note"))
            real = str(WATCH.resolve())
            wait(d, "the daemon's folder", lambda: d.find_elements(By.CSS_SELECTOR, card(real)))
            css(d, "#pause-all").click()
            wait(d, "paused through the daemon",
                 lambda: floe_status()[0]["state"]["state"] == "paused")
            wait(d, "the app agrees", lambda: text(d, "#overall") == "Paused")
            shot(d, "daemon")
            css(d, "#resume-all").click()
            wait(d, "resumed", lambda: floe_status()[0]["state"]["state"] != "paused")
            unmount_outlived(d)
        finally:
            d.quit()
        assert daemon.poll() is None, "the daemon stopped while the app ran"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def running(pid):
    """Whether process `pid` runs (a zombie nobody reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def unmount_outlived(d):
    """The mount the earlier apps made, listed with its process by this one, and
    unmounted from it: its helper ends and it is no longer kept for login."""
    tab(d, "mounts")
    item = f'li[data-mountpoint="{MNT}"]'
    wait(d, "the earlier mount listed", lambda: css(d, item).get_attribute("data-state") == "mounted")
    pid = int(css(d, item).get_attribute("data-pid"))
    shot(d, "mounts-outlived")
    css(d, item + " button.unmount").click()
    wait(d, "unmounted", lambda: not d.find_elements(By.CSS_SELECTOR, item))
    assert not (MNT / "branches").exists()
    deadline = time.time() + 30
    while running(pid):
        assert time.time() < deadline, f"the mount helper {pid} still runs"
        time.sleep(0.2)
    assert "[[mount]]" not in Path(os.environ["FLOE_CONFIG"]).read_text()
    assert floe_mount_of(MNT) is None


def phase_desktop_scale():
    """The app as a 200% desktop shows it (GDK_SCALE=2, what GNOME's Scale setting
    sets; tauri-driver started with it): WebKit draws at two device pixels per CSS
    pixel, and in a window as small as a 1280x900 screen at 200% leaves (640x450),
    no screen is wider than the window."""
    deadline = time.time() + 30
    while subprocess.run(["pgrep", "-f", f"^{APP}"], capture_output=True).returncode == 0:
        assert time.time() < deadline, "an earlier app still runs"
        time.sleep(0.2)
    d = session(os.environ["FLOE_E2E_DRIVER_SCALED"])
    try:
        wait(d, "first status", lambda: text(d, "#overall") != "")
        ratio = d.execute_script("return window.devicePixelRatio")
        assert ratio == 2, f"devicePixelRatio {ratio} under GDK_SCALE=2"
        d.set_window_size(640, 450)
        wait(d, "the small window", lambda: d.execute_script("return window.innerWidth") <= 640)
        for name in ("folders", "history", "mounts", "settings"):
            tab(d, name)
            time.sleep(0.3)
            over = d.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert over <= 1, f"{name} is {over}px wider than the window at the desktop's 200%"
            shot(d, f"{name}-desktop-scale-200")
        log("at the desktop's 200%: device pixel ratio 2, every screen fits 640 px")
    finally:
        d.quit()


def main():
    phase_app()
    phase_mount_outlives_app()
    phase_close_to_tray()
    phase_daemon()
    phase_desktop_scale()
    log("all good")


if __name__ == "__main__":
    from finish import run

    run(main)
