#!/usr/bin/python3
"""Opens a tpmlab report in headless Chromium and judges what a user sees.

Chromium is driven over --remote-debugging-pipe: the DevTools protocol as
NUL-terminated JSON, commands written to its fd 3, answers and events read
from its fd 4. Standard library only. Chromium runs in its own process group
with a temporary profile and is killed (the whole group) however this ends.

  report_browser.py check REPORT.html RUN.json SCREENSHOT.png
      no console error or exception, no request but the file itself, every
      canvas drawn, the alarm lists (each code's first alarms, plus how many are left
      out) and the PCR grid exactly what run.json
      holds; the screenshot is kept.
  report_browser.py time REPORT.html
      prints the seconds from navigation to the load event.
Exit 0 passed, 1 failed, 77 (skipped) when Chromium is absent.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 90


def find_chromium():
    for name in (os.environ.get("TPMLAB_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="tpmlab-report-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # fd 3: what Chromium reads; fd 4: what it writes. Through copies, in
        # case a pipe end already is fd 3 or 4; subprocess closes every fd
        # not in pass_fds after this runs, so 3 and 4 are the ones kept.
        def child_fds():
            reads, writes = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(reads, 3)
            os.dup2(writes, 4)
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--remote-debugging-pipe", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--user-data-dir=" + self.profile,
             "--window-size=1280,2000", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.deadline = time.monotonic() + TIMEOUT_S

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self.to_chrome, self.from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self):
        while b"\0" not in self.buffer:
            if time.monotonic() > self.deadline:
                raise TimeoutError("Chromium did not answer within %d s" % TIMEOUT_S)
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (it exited %s)" % self.proc.poll())
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            m = self._read_message()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method):
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read_message())


def open_page(browser, url):
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Network", "Runtime", "Log", "Page"):
        browser.send(domain + ".enable", session=session)
    started = time.monotonic()
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_event("Page.loadEventFired")
    return session, time.monotonic() - started


def evaluate(browser, session, expression):
    r = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
    if "exceptionDetails" in r:
        raise RuntimeError("page script failed: %s" % r["exceptionDetails"])
    return r["result"].get("value")


# What the page shows: every listed alarm, every grid cell (paging through),
# and per canvas how many pixels are drawn.
PAGE_STATE = r"""
(() => {
  const alarms = [...document.querySelectorAll('tr.alarm')].map((r) =>
    [Number(r.dataset.step), r.dataset.code, r.children[1].textContent]);
  // Per alarm code, how many the page says it left out of its list.
  const left_out = Object.fromEntries([...document.querySelectorAll('#alarm-groups details')].map((d) =>
    [d.querySelector('summary b').textContent, parseInt((d.querySelector('p.left-out') || {}).textContent || '0', 10)]));
  const cells = [];
  for (const bank of document.querySelectorAll('div.bank')) {
    for (let guard = 0; guard < 10000; guard++) {
      for (const c of bank.querySelectorAll('td.cell[data-step]'))
        cells.push([Number(c.dataset.step), c.dataset.bank, Number(c.dataset.pcr), c.dataset.against]);
      const next = bank.querySelector('button[id^=grid-next-]');
      if (!next || next.disabled) break;
      next.click();
    }
  }
  const canvases = [...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) drawn++;
    return [c.id, c.width, c.height, drawn];
  });
  const first = document.querySelector('td.cell[data-step] a');
  let detail = null;
  if (first) { first.click(); detail = document.getElementById('drift-detail').textContent; }
  return {rendered: document.body.dataset.rendered, alarms, left_out, cells, canvases, detail,
          status: (document.getElementById('run-status') || {}).textContent};
})()
"""


def expected_from_run_json(run):
    alarms, cells = [], []
    for step in run["steps"]:
        for a in step.get("alarms", []):
            alarms.append([step["index"], a["code"], a["message"]])
        moved = {}
        for against, key in (("prev", "drift"), ("golden", "golden_drift")):
            for bank, pcrs in ((step.get(key) or {}).get("pcrs") or {}).items():
                for p in pcrs:
                    moved.setdefault((bank, p), set()).add(against)
        for (bank, p), kinds in moved.items():
            cells.append([step["index"], bank, p, "both" if len(kinds) == 2 else kinds.pop()])
    return sorted(alarms), sorted(cells)


def check(report, run_json, screenshot):
    failures = []
    binary = find_chromium()
    if not binary:
        print("SKIPPED: chromium is absent (Debian package chromium)")
        return 77
    for f in (report, run_json):
        if not os.path.isfile(f):
            print("FAIL: %s does not exist" % f)
            return 1
    run = json.load(open(run_json))
    url = "file://" + os.path.abspath(report)
    browser = Browser(binary)
    try:
        session, load_s = open_page(browser, url)
        state = evaluate(browser, session, PAGE_STATE)
        png = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(png["data"]))
        time.sleep(0.2)  # late console messages still arrive
        evaluate(browser, session, "1")
        events = browser.events
    finally:
        browser.close()
    print("loaded in %.2f s; screenshot: %s" % (load_s, os.path.abspath(screenshot)))

    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            failures.append("exception: %s" % p["exceptionDetails"].get("exception", {}).get("description", p))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            failures.append("console.%s: %s" % (p["type"], [a.get("value", a.get("description")) for a in p["args"]]))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            failures.append("log error: %s" % p["entry"].get("text"))
        elif method == "Network.requestWillBeSent" and p["request"]["url"] != url:
            failures.append("network request: %s" % p["request"]["url"])
    if state.get("rendered") != "yes":
        failures.append("the report's script did not finish")
    if not state["canvases"]:
        failures.append("no chart drawn at all")
    for cid, w, h, drawn in state["canvases"]:
        if w == 0 or h == 0 or drawn == 0:
            failures.append("chart %s is empty (%dx%d, %d pixels drawn)" % (cid, w, h, drawn))
    want_alarms, want_cells = expected_from_run_json(run)
    # A long run's list shows each code's first alarms and says how many it
    # left out; what it shows and what it leaves out add up to run.json's.
    for code in sorted({a[1] for a in want_alarms} | {a[1] for a in state["alarms"]}):
        want = [a for a in want_alarms if a[1] == code]
        shown = sorted(a for a in state["alarms"] if a[1] == code)
        left = state["left_out"].get(code, 0)
        if not shown or shown != want[:len(shown)] or len(shown) + left != len(want):
            failures.append("%s alarms listed %s (%d more said left out), run.json holds %s" % (code, shown, left, want))
    if sorted(state["cells"]) != want_cells:
        failures.append("PCR grid %s, run.json holds %s" % (sorted(state["cells"]), want_cells))
    if want_cells and "Against" not in (state["detail"] or ""):
        failures.append("a grid cell's click shows no drift: %r" % state["detail"])
    if state["status"] is None or not state["status"].startswith(run["status"]):
        failures.append("header result %r, run.json says %r" % (state["status"], run["status"]))
    print("%d alarms (%d left out of the lists), %d grid cells, charts %s" % (
        len(state["alarms"]), sum(state["left_out"].values()), len(state["cells"]),
                                                  ", ".join("%s (%d px)" % (c[0], c[3]) for c in state["canvases"])))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


def time_load(report):
    binary = find_chromium()
    if not binary:
        print("SKIPPED: chromium is absent")
        return 77
    browser = Browser(binary)
    try:
        _, load_s = open_page(browser, "file://" + os.path.abspath(report))
    finally:
        browser.close()
    print("%.3f" % load_s)
    return 0


if __name__ == "__main__":
    # A timeout's SIGTERM (ctest's) still runs the finally that kills Chromium.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:]))
    if len(sys.argv) == 3 and sys.argv[1] == "time":
        sys.exit(time_load(sys.argv[2]))
    sys.exit(__doc__)
