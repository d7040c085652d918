"""Headless Chromium for the report's page tests: Debian's ``chromium``, driven over the DevTools
protocol through a pipe, with no network and a fresh profile."""

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class DevTools:
    """Chromium's DevTools protocol over ``--remote-debugging-pipe``: JSON messages ending in
    NUL, read from the browser's fd 4 and written to its fd 3."""

    def __init__(self, profile):
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def as_fds_3_and_4():  # in the child, before exec; dup2 leaves the new fds inheritable
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser))
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=as_fds_3_and_4,  # Python's own fds are not inheritable
        )
        os.close(to_browser)
        os.close(from_browser)
        self.events, self._buffer, self._id = [], b"", 0

    def send(self, method, session=None, **params):
        """Send a command and return its result, keeping every event that arrives meanwhile."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params} | ({"sessionId": session} if session else {})
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method, timeout=60):
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._next(deadline))

    def _next(self, deadline=None):
        deadline = deadline or time.monotonic() + 60
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._from_browser, 1 << 20) if ready else b""
            assert chunk, "Chromium stopped answering"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self):
        try:
            self.send("Browser.close")
        finally:
            self.process.wait(timeout=30)
            os.close(self._to_browser)
            os.close(self._from_browser)


@contextlib.contextmanager
def opened(page, tmp_path):
    """``page`` open in headless Chromium at 1200 × 900: yields (evaluate a JavaScript expression,
    take a PNG screenshot of a clip {x, y, width, height, scale}), the browser's events kept in
    ``events`` (the list yielded third) once it is closed."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI must install Chromium (Debian package chromium) for this test: {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride", session, width=1200, height=900, deviceScaleFactor=1, mobile=False
        )
        browser.send("Page.navigate", session, url=page.as_uri())
        browser.wait_for("Page.loadEventFired")

        def evaluate(expression):
            found = browser.send(
                "Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True
            )
            return found["result"].get("value")

        def screenshot(clip):
            found = browser.send("Page.captureScreenshot", session, format="png", clip=clip, captureBeyondViewport=True)
            return base64.b64decode(found["data"])

        yield evaluate, screenshot, browser.events
    finally:
        browser.close()


def first_screen(page, tmp_path):
    """The bounding box {top, bottom, left, right} of the page's first ``.matrix`` and a PNG
    screenshot of the first screen, 1200 × 900 from the top."""
    with opened(page, tmp_path) as (evaluate, screenshot, _):
        box = evaluate(
            "(() => { const r = document.querySelector('.matrix').getBoundingClientRect();"
            " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; })()"
        )
        png = screenshot({"x": 0, "y": 0, "width": 1200, "height": 900, "scale": 1})
    return box, png


def in_chromium(page, tmp_path):
    """Open ``page`` in headless Chromium at 1200 × 900: the figures' [loaded, natural width and
    height, shown width and height], the console errors, the URLs requested, and a PNG
    screenshot of the first figure."""
    with opened(page, tmp_path) as (evaluate, screenshot, events):
        # the figures load lazily, as they come into view: each is loaded (and decoded) here first
        evaluate(
            "Promise.all([...document.querySelectorAll('figure img')].map(i => { i.loading = 'eager';"
            " return i.decode().catch(() => null); }))"
        )
        sizes = evaluate(
            "[...document.querySelectorAll('figure img')].map(i => [i.complete, i.naturalWidth, "
            "i.naturalHeight, i.getBoundingClientRect().width, i.getBoundingClientRect().height])"
        )
        clip = evaluate(
            "(() => { const r = document.querySelector('figure').getBoundingClientRect();"
            " return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height, scale: 1}; })()"
        )
        png = screenshot(clip)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (
        round(clip["width"]),
        round(clip["height"]),
    )
    errors = [
        e["params"]
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    return sizes, errors, requested, png
