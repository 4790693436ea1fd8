#!/usr/bin/env python3
"""Tests the browser Raft demo (www/demo.html) in real headless Chromium.

    demo.py [--nodes 3] [--writes 100] [--no-build] [--shots DIR]

1. Loads the page on a fresh profile, waits for a leader, writes `--writes`
   keys one after the other (each acknowledged only once committed and
   applied on the leader), kills the leader's worker, waits for a new
   leader and reads every acknowledged write back from it, restarts the
   killed node and waits until it has caught up with the same map; then
   partitions the leader, writes on the majority side, heals it and waits
   until it has caught up.
2. Starts writing again and SIGKILLs Chromium mid-stream, restarts it on the
   same profile (so the same OPFS), and checks that every node comes back
   with every write acknowledged before the kill.
3. Saves screenshots (leader elected, after the kill, caught up, after the
   reload), checks they are not blank, and prints the election time, the
   commit latency per write (median, p99) and the cluster's recovery time
   after the reload.

It starts Chromium itself (with a DevTools port, a fixed profile and the
page served by run.py's server on 127.0.0.1) and a chromedriver attached to
it, which runs the page's `window.demo` API and takes screenshots. Every wait
is bounded; only processes this script started are killed.
"""

import argparse
import base64
import json
import os
import queue
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import CRATE, Browser, Fail, build, drain, log, serve  # noqa: E402

CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    """A chromedriver process and one session attached to our Chromium."""

    def __init__(self, logfile: Path):
        self.port = free_port()
        self.out = open(logfile, "ab")
        self.proc = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        self.sid = None
        deadline = time.time() + 20
        while True:
            try:
                self.call("GET", "/status", timeout=2)
                break
            except (OSError, urllib.error.URLError):
                if time.time() > deadline:
                    raise Fail("chromedriver did not start") from None
                time.sleep(0.1)

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r).get("value")
        except urllib.error.HTTPError as e:
            raise Fail(f"webdriver {method} {path}: {e.read()[:500]!r}") from None

    def attach(self, devtools_port):
        """A session on the Chromium listening on `devtools_port` (it may still be starting)."""
        deadline = time.time() + 30
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"debuggerAddress": f"127.0.0.1:{devtools_port}"}}}}
        while True:
            try:
                self.sid = self.call("POST", "/session", caps, timeout=20)["sessionId"]
                break
            except (Fail, OSError, urllib.error.URLError) as e:
                if time.time() > deadline:
                    raise Fail(f"could not attach to Chromium: {e}") from None
                time.sleep(0.3)
        self.call("POST", f"/session/{self.sid}/timeouts", {"script": 180_000})

    def detach(self):
        if self.sid:
            try:
                self.call("DELETE", f"/session/{self.sid}", timeout=5)
            except (Fail, OSError, urllib.error.URLError):
                pass  # the browser is gone: the session went with it
            self.sid = None

    def run(self, body, *args, timeout=200):
        """Runs `body` (an async function body; `args` are its arguments) in the page."""
        script = ("const done = arguments[arguments.length - 1];"
                  f"(async (...args) => {{ {body} }})(...Array.from(arguments).slice(0, -1))"
                  ".then((v) => done({ok: v}), (e) => done({err: String(e && e.stack || e)}));")
        v = self.call("POST", f"/session/{self.sid}/execute/async", {"script": script, "args": list(args)},
                      timeout=timeout)
        if v is None or "err" in v:
            raise Fail(f"in the page: {v and v.get('err')}")
        return v.get("ok")

    def screenshot(self, path: Path):
        png = base64.b64decode(self.call("GET", f"/session/{self.sid}/screenshot"))
        path.write_bytes(png)
        colours = png_colours(png)
        log(f"screenshot {path} ({len(png)} bytes, {colours} colours)")
        if len(png) < 10_000 or colours < 16:
            raise Fail(f"screenshot {path} looks blank: {len(png)} bytes, {colours} colours")

    def close(self):
        self.detach()
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.out.close()


def png_colours(png: bytes, limit=64):
    """Distinct colours in an 8-bit RGB(A) PNG, counted up to `limit`."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return 0
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos + 8 <= len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", data[:10])
            if depth != 8 or ctype not in (2, 6):
                return 0
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    seen = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:
            for x in range(0, stride, bpp * 7):
                seen.add(bytes(line[x:x + 3]))
            if len(seen) >= limit:
                return len(seen)
        prev = line
    return len(seen)


def wait(driver, body, what, timeout, *args):
    """Polls `body` (returns a truthy value when done) in the page."""
    deadline = time.time() + timeout
    while True:
        v = driver.run(body, *args)
        if v:
            return v
        if time.time() > deadline:
            raise Fail(f"timed out after {timeout:.0f} s waiting for {what}; nodes: {driver.run('return demo.statuses()')}")
        time.sleep(0.1)


def check_errors(driver):
    errs = driver.run("return demo.metrics.errors")
    if errs:
        raise Fail(f"errors in the page: {errs}")


LEADER = "const l = demo.leader(); return l ? l : 0;"
CAUGHT_UP = """
  const [id, index] = args;
  const s = demo.statuses().find((n) => n.id === id);
  return s && s.alive && s.opened && s.applied >= index;"""


def check_map(driver, node, acked, what):
    """Every acknowledged write is in `node`'s applied map."""
    got = driver.run("return await demo.dump(args[0]);", node)
    missing = [k for k, v in acked.items() if got.get(k) != v]
    if missing:
        raise Fail(f"{what}: node {node} lacks {len(missing)} acknowledged writes, e.g. "
                   f"{missing[:5]} (has {[got.get(k) for k in missing[:5]]})")
    log(f"{what}: node {node} holds all {len(acked)} acknowledged writes")


def scenario(args, base, events, workdir, shots):
    profile = workdir / "profile"
    devtools = free_port()
    flags = [f"--remote-debugging-port={devtools}", "--window-size=1200,760"]
    url = f"{base}/demo.html?nodes={args.nodes}&report=1"
    rng = random.Random(args.seed)
    drv = Driver(workdir / "chromedriver.log")
    browser = None
    out = {}
    try:
        # ---- 1. a fresh cluster: election, writes, a killed leader ------
        browser = Browser(profile, url, workdir / "chromium.log", flags)
        drv.attach(devtools)
        lead = wait(drv, LEADER, "a leader", 60)
        m = drv.run("return demo.metrics")
        out["election_ms"], out["election_open_ms"] = m["electedAt"], m["electedAt"] - m["openedAt"]
        log(f"node {lead} elected {m['electedAt']:.0f} ms after the page started, "
            f"{out['election_open_ms']:.0f} ms after every log was open")
        drv.screenshot(shots / "demo-leader.png")

        writes = drv.run("""
          const out = [];
          for (let i = 0; i < args[0]; i++) out.push(await demo.put(`k${String(i).padStart(4, '0')}`, `v${i}-${args[1]}`));
          return out;""", args.writes, args.seed)
        acked = {w["key"]: w["value"] for w in writes}
        last = max(w["index"] for w in writes)
        lat = sorted(w["ms"] for w in writes)
        out["commit_median_ms"] = statistics.median(lat)
        out["commit_p99_ms"] = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        log(f"{len(writes)} writes acknowledged (last index {last}); commit latency median "
            f"{out['commit_median_ms']:.2f} ms, p99 {out['commit_p99_ms']:.2f} ms")
        check_errors(drv)

        old = wait(drv, LEADER, "a leader to kill", 30)
        if not drv.run("return demo.kill(args[0]);", old):
            raise Fail(f"node {old} could not be killed")
        new = wait(drv, "const l = demo.leader(); return l && l !== args[0] ? l : 0;", "a new leader", 60, old)
        el = drv.run("return demo.metrics.elections.at(-1)")
        out["reelection_ms"] = el["ms"]
        log(f"leader {old} killed; node {new} elected {el['ms']:.0f} ms later")
        drv.screenshot(shots / "demo-after-kill.png")
        wait(drv, CAUGHT_UP, f"node {new} to apply index {last}", 30, new, last)
        check_map(drv, new, acked, "after the leader was killed")

        if not drv.run("return demo.restart(args[0]);", old):
            raise Fail(f"node {old} could not be restarted")
        commit = drv.run("return demo.statuses().find((n) => n.id === args[0]).commit;", new)
        wait(drv, CAUGHT_UP, f"node {old} to catch up to {commit}", 60, old, commit)
        check_map(drv, old, acked, "the restarted node caught up")
        drv.screenshot(shots / "demo-caught-up.png")

        # The leader cut off: the others elect a new one and go on; healed,
        # it steps down and catches up.
        cut = wait(drv, LEADER, "a leader to partition", 30)
        drv.run("demo.partition(args[0]); return true;", cut)
        new = wait(drv, "const l = demo.leader(); return l && l !== args[0] ? l : 0;",
                   "a leader on the majority side", 60, cut)
        more = drv.run("""
          const out = [];
          for (let i = 0; i < 5; i++) out.push(await demo.put(`p${i}`, `during partition of ${args[0]}`));
          return out;""", cut)
        for w in more:
            acked[w["key"]] = w["value"]
            last = max(last, w["index"])
        drv.run("demo.heal(args[0]); return true;", cut)
        wait(drv, CAUGHT_UP, f"healed node {cut} to catch up to {last}", 60, cut, last)
        check_map(drv, cut, acked, f"partitioned leader {cut} healed (node {new} led meanwhile)")
        check_errors(drv)

        # ---- 2. SIGKILL Chromium while writing; restart on the profile ---
        drain(events)
        drv.run("""
          (async () => { for (let i = 0; ; i++) await demo.put(`w${String(i).padStart(5, '0')}`, `x${i}-${args[0]}`); })();
          return true;""", args.seed)
        target = rng.randint(20, 60)
        got = 0
        deadline = time.time() + 120
        while got < target:
            try:
                ev = events.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise Fail(f"only {got} writes acknowledged in 120 s") from None
            if ev.get("event") == "error":
                raise Fail(f"page error: {ev.get('message')}")
            if ev.get("event") == "ack":
                acked[ev["key"]] = ev["value"]
                last = max(last, ev["index"])
                got += 1
        time.sleep(rng.uniform(0, 0.05))
        drv.detach()
        browser.kill()
        browser = None
        for ev in drain(events):
            if ev.get("event") == "ack":
                acked[ev["key"]] = ev["value"]
                last = max(last, ev["index"])
                got += 1
        log(f"Chromium SIGKILLed mid-stream after {got} more acknowledged writes (last index {last})")

        browser = Browser(profile, f"{url}&expect={last}", workdir / "chromium.log", flags)
        drv.attach(devtools)
        m = wait(drv, "const m = demo.metrics; return m.recoveredAt !== null ? m : null;",
                 "the cluster to recover", 90)
        out["recovery_ms"] = m["recoveredAt"]
        out["recovery_open_ms"] = m["openedAt"]
        out["recovery_election_ms"] = m["electedAt"]
        log(f"after the restart: every log opened at {m['openedAt']:.0f} ms, a leader at "
            f"{m['electedAt']:.0f} ms, applied up to {last} at {m['recoveredAt']:.0f} ms (from navigation start)")
        for node in range(1, args.nodes + 1):
            wait(drv, CAUGHT_UP, f"node {node} to apply index {last}", 60, node, last)
            check_map(drv, node, acked, "after SIGKILL and restart")
        drv.screenshot(shots / "demo-after-reload.png")
        check_errors(drv)
        return out
    finally:
        drv.close()
        if browser:
            browser.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--writes", type=int, default=100)
    p.add_argument("--port", type=int, default=int(os.environ.get("BLOCKWAL_BROWSER_PORT", "8347")))
    p.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(CRATE / "target")))
    p.add_argument("--no-build", action="store_true", help="use the pkg/ of an earlier build")
    p.add_argument("--shots", default=None, help="directory for the screenshots (default: <target dir>/demo-screenshots)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the profile and logs")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)

    target = Path(args.target_dir).resolve()
    pkg = target / "blockwal-browser-pkg"
    if not args.no_build:
        build(target, pkg)
    workdir = Path(tempfile.mkdtemp(prefix="blockwal-demo-"))
    shots = Path(args.shots).resolve() if args.shots else target / "demo-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    events = queue.Queue()
    httpd = serve(args.port, pkg, events)
    ok = False
    try:
        log(f"{args.nodes} nodes, {args.writes} writes, seed {args.seed}, profile {workdir / 'profile'}")
        out = scenario(args, f"http://127.0.0.1:{args.port}", events, workdir, shots)
        print(f"demo: leader election {out['election_ms']:.0f} ms after page start (fresh cluster; "
              f"{out['election_open_ms']:.0f} ms after every log was open); "
              f"re-election after killing the leader {out['reelection_ms']:.0f} ms\n"
              f"demo: commit latency per write ({args.writes} sequential puts, acked when applied on the leader): "
              f"median {out['commit_median_ms']:.2f} ms, p99 {out['commit_p99_ms']:.2f} ms\n"
              f"demo: recovery after SIGKILL + restart: logs opened {out['recovery_open_ms']:.0f} ms, "
              f"leader {out['recovery_election_ms']:.0f} ms, all acknowledged writes applied "
              f"{out['recovery_ms']:.0f} ms after navigation start\n"
              f"demo: screenshots in {shots}", flush=True)
        ok = True
    except Fail as e:
        log(f"FAILED: {e}")
        clog = workdir / "chromium.log"
        if clog.exists():
            log("last Chromium output:\n" + clog.read_bytes()[-3000:].decode(errors="replace"))
    finally:
        httpd.shutdown()
        if args.keep or not ok:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
