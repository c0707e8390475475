"""A screenshot of an exported page (``lstm-scratch export CKPT --html PAGE``) after it wrote.

    python docs/webpage_screenshot.py PAGE.html docs/figures/webpage.png \\
        --query "prime=ROMEO:&length=700&temperature=0.7&seed=3&autorun=1"

Why not ``chromium --headless --screenshot``: that waits for the text only under
``--virtual-time-budget``, whose clock is virtual, so the page's chars/s in the
picture would be wrong. Here Chromium runs in real time and this script drives it over
its DevTools pipe (``--remote-debugging-pipe``: commands in on fd 3, replies out on fd 4,
each a JSON message ended by a NUL byte): open the page, wait for ``data-done``, capture.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time


class DevTools:
    """The few DevTools calls this needs, over Chromium's pipe."""

    def __init__(self, chromium, profile, width, height):
        to_chromium, self._to = os.pipe()
        self._from, from_chromium = os.pipe()

        def child():
            a, b = os.dup(to_chromium), os.dup(from_chromium)   # out of the way of 3 and 4
            os.dup2(a, 3)                                       # dup2: inheritable
            os.dup2(b, 4)
        self.browser = subprocess.Popen(
            [chromium, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={profile}", "--hide-scrollbars",
             f"--window-size={width},{height}", "about:blank"],
            preexec_fn=child, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer, self._id = b"", 0

    def call(self, method, session=None, **params):
        self._id += 1
        message = dict(id=self._id, method=method, params=params)
        if session:
            message["sessionId"] = session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        while True:                                 # events come too: skip to our reply
            while b"\0" not in self._buffer:
                chunk = os.read(self._from, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its DevTools pipe")
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self):
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError):
            pass
        try:
            self.browser.wait(10)
        except subprocess.TimeoutExpired:
            self.browser.kill()
            self.browser.wait()


def screenshot(page, out, query, width=1000, height=720, timeout=300):
    """Open ``page`` with ``query``, wait for data-done on #output, write a PNG to ``out``;
    returns the page's status line (chars, chars/s, seed)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    url = "file://" + os.path.abspath(page) + ("?" + query if query else "")
    tools = DevTools(chromium, tempfile.mkdtemp(prefix="shot-profile-"), width, height)
    try:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                   deviceScaleFactor=1, mobile=False)
        tools.call("Page.navigate", session, url=url)
        ask = lambda js: tools.call("Runtime.evaluate", session, expression=js,
                                    returnByValue=True)["result"].get("value")
        start = time.monotonic()
        while ask("document.getElementById('output')?.dataset.done ?? ''") != "1":
            if time.monotonic() - start > timeout:
                raise SystemExit(f"the page did not finish within {timeout} s (autorun=1 given?)")
            time.sleep(0.1)
        png = tools.call("Page.captureScreenshot", session, format="png")["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(png))
        return ask("document.getElementById('status').textContent")
    finally:
        tools.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page")
    ap.add_argument("out")
    ap.add_argument("--query", default="prime=ROMEO:&length=700&temperature=0.7&seed=3&autorun=1")
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--height", type=int, default=720)
    args = ap.parse_args()
    status = screenshot(args.page, args.out, args.query, args.width, args.height)
    print(f"wrote {args.out} ({status})")


if __name__ == "__main__":
    main()
