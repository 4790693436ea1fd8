#!/usr/bin/env python3
"""Drives blockwal in headless Chromium across real browser restarts.

    run.py persist [--cycles N]   kill -9 Chromium mid-stream N times; after
                                  each restart every synced entry must be there
    run.py lock                   a second worker, then a worker in a second
                                  tab, gets a typed Locked error
    run.py bench                  the A/B append+flush benchmark in a worker

It builds the browser crate for wasm32 (release), runs `wasm-bindgen
--target web`, serves `www/` and the generated `pkg/` on a fixed
127.0.0.1 address (OPFS belongs to the origin, so the address must not
change between restarts), and starts Chromium itself with a fixed
`--user-data-dir`, so OPFS survives from one browser process to the next.
The worker reports back with `fetch` POSTs to `/report`.

Every wait is bounded; any failure exits non-zero. Only processes this
script started are killed (by process group, then any stragglers whose
command line names this run's private profile directory).
"""

import argparse
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent
WWW = CRATE / "www"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
]


class Fail(Exception):
    pass


def log(msg):
    print(f"[driver {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(target_dir: Path, pkg: Path):
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir))
    subprocess.run(
        ["cargo", "build", "--release", "--lib", "--target", "wasm32-unknown-unknown"],
        cwd=CRATE, env=env, check=True, stdin=subprocess.DEVNULL)
    wasm = target_dir / "wasm32-unknown-unknown" / "release" / "blockwal_browser.wasm"
    if pkg.exists():
        shutil.rmtree(pkg)
    subprocess.run(
        ["wasm-bindgen", "--target", "web", "--no-typescript", "--out-dir", str(pkg), str(wasm)],
        check=True, stdin=subprocess.DEVNULL)


def serve(port: int, pkg: Path, events: "queue.Queue"):
    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                          ".wasm": "application/wasm", ".js": "text/javascript"}

        def translate_path(self, path):
            path = path.split("?", 1)[0].split("#", 1)[0]
            if path.startswith("/pkg/"):
                return str(pkg / Path(path[len("/pkg/"):]).name)
            name = Path(path).name or "index.html"
            return str(WWW / name)

        def end_headers(self):
            # A persistent profile must never run a stale build from its cache.
            self.send_header("Cache-Control", "no-store")
            # Cross-origin isolation: performance.now() gets 5 us resolution
            # instead of 100 us (matters for the benchmark's short rounds).
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def do_POST(self):
            if self.path != "/report":
                self.send_error(404)
                return
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            try:
                events.put(json.loads(body))
            except ValueError:
                events.put({"event": "error", "message": f"bad report {body[:200]!r}"})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as e:
        raise Fail(f"cannot listen on 127.0.0.1:{port} ({e}); pass --port") from e
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class Browser:
    """One Chromium process (group) on a given profile directory."""

    def __init__(self, profile: Path, url: str, logfile: Path, extra=()):
        self.profile = profile
        self.out = open(logfile, "ab")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, *extra, f"--user-data-dir={profile}", url],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def _stragglers(self):
        """Pids whose command line names this run's profile (only ours)."""
        key = f"--user-data-dir={self.profile}".encode()
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if key in (d / "cmdline").read_bytes():
                        pids.append(int(d.name))
                except OSError:
                    pass
        return pids

    def kill(self):
        """SIGKILL the whole browser, and wait until none of it is left."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.time() + 10
        while time.time() < deadline:
            left = self._stragglers()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        else:
            raise Fail(f"Chromium processes survived SIGKILL: {self._stragglers()}")
        self.out.close()


def next_event(events, deadline, what):
    left = deadline - time.time()
    if left <= 0:
        raise Fail(f"timed out waiting for {what}")
    try:
        ev = events.get(timeout=left)
    except queue.Empty:
        raise Fail(f"timed out waiting for {what}") from None
    if ev.get("event") == "error":
        raise Fail(f"worker error: {ev.get('message')}")
    return ev


def drain(events):
    out = []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


def persist(args, base, events, workdir):
    profile = workdir / "profile"
    rng = random.Random(args.seed)
    synced = 0  # every index <= synced was reported synced by some run
    dirname = f"persist-{args.kind}"
    for cycle in range(args.cycles + 1):
        final = cycle == args.cycles
        url = (f"{base}/index.html?mode=persist&dir={dirname}&expect={synced}"
               f"&append={0 if final else 1}&batch={args.batch}&kind={args.kind}")
        drain(events)
        b = Browser(profile, url, workdir / "chromium.log")
        try:
            deadline = time.time() + args.step_timeout
            ev = next_event(events, deadline, "the worker's check")
            if ev.get("event") != "checked":
                raise Fail(f"unexpected report {ev}")
            found = int(ev["found"])
            if found < synced:
                raise Fail(f"run {cycle}: found {found} entries, {synced} were synced")
            if final:
                ev = next_event(events, deadline, "the worker to finish")
                log(f"final run: found entries 1..={found}; all {synced} synced entries are there")
                return
            target = found + rng.randint(args.min_entries, args.max_entries)
            last = found
            while last < target:
                ev = next_event(events, deadline, f"synced reports up to {target}")
                if ev.get("event") != "synced":
                    raise Fail(f"unexpected report {ev}")
                last = max(last, int(ev["last"]))
            # Kill mid-stream: the worker keeps appending meanwhile.
            time.sleep(rng.uniform(0, args.max_kill_delay))
        finally:
            b.kill()
        for ev in drain(events):
            if ev.get("event") == "error":
                raise Fail(f"worker error: {ev.get('message')}")
            if ev.get("event") == "synced":
                last = max(last, int(ev["last"]))
        log(f"run {cycle}: found {found} (>= {synced} synced before); synced up to {last}; SIGKILL")
        synced = last


def lock(args, base, events, workdir):
    """Two workers of one page: the second gets Locked while the first holds the log."""
    b = Browser(workdir / "profile", f"{base}/index.html?mode=lock&dir=lock", workdir / "chromium.log")
    try:
        deadline = time.time() + args.step_timeout
        seen = {}
        while len(seen) < 2:
            ev = next_event(events, deadline, "the lock workers")
            if ev.get("event") == "try":
                seen[ev.get("tag")] = ev.get("result", "")
        held, after = seen.get("while-held", ""), seen.get("after-release", "")
        log(f"second worker while the first holds the log: {held}")
        log(f"third worker after the first closed it: {after}")
        # `{e:?} / {e}`: the typed variant, then the sentence naming the file.
        named = 'the OPFS file "lock/log" is open in another tab or worker'
        if not held.startswith("Locked {") or named not in held:
            raise Fail(f"expected a typed Locked error, got {held!r}")
        if after != "opened":
            raise Fail(f"expected the log to open after release, got {after!r}")
    finally:
        b.kill()


def lock_tab(args, base, events, workdir):
    """A worker in a second tab gets Locked while a worker in the first holds the log."""
    url = f"{base}/index.html?mode=lock-tab&dir=lock-tab"
    # Reports the previous (killed) page sent after its checks passed are
    # not this page's: say them, then start clean.
    for ev in drain(events):
        log(f"left from the previous page, ignored: {ev}")
    b = Browser(workdir / "profile", url, workdir / "chromium.log", ["--disable-popup-blocking"])
    try:
        ev = next_event(events, time.time() + args.step_timeout, "the second tab")
        got = ev.get("result", "")
        log(f"worker in a second tab while the first tab holds the log: {got}")
        named = 'the OPFS file "lock-tab/log" is open in another tab or worker'
        if ev.get("tag") != "other-tab" or not got.startswith("Locked {") or named not in got:
            raise Fail(f"expected a typed Locked error, got {ev}")
    finally:
        b.kill()


def retrying_a_worker_that_did_not_load(check, args, base, events, workdir):
    """Runs `check`; if a worker did not even load (a bare `error` event, no
    message: its module or wasm failed to load before any blockwal code
    ran, seen once in CI), says so and runs it once more on a new profile.
    Any other failure, and a second one, fails the test."""
    try:
        check(args, base, events, workdir)
    except Fail as e:
        if not str(e).endswith("): error"):
            raise
        log(f"{check.__name__}: {e}; a worker did not load, trying once more")
        drain(events)
        fresh = workdir / f"again-{check.__name__}"
        fresh.mkdir()
        check(args, base, events, fresh)


def bench(args, base, events, workdir):
    url = f"{base}/index.html?mode=bench&rounds={args.rounds}&singles={args.singles}&batches={args.batches}"
    b = Browser(workdir / "profile", url, workdir / "chromium.log")
    try:
        ev = next_event(events, time.time() + args.step_timeout, "the benchmark")
        if ev.get("event") != "bench":
            raise Fail(f"unexpected report {ev}")
        print(ev["text"], end="", flush=True)
    finally:
        b.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["persist", "lock", "bench"])
    p.add_argument("--port", type=int, default=int(os.environ.get("BLOCKWAL_BROWSER_PORT", "8347")))
    p.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(CRATE / "target")))
    p.add_argument("--no-build", action="store_true", help="use the pkg/ of an earlier build")
    p.add_argument("--step-timeout", type=float, default=120.0, help="seconds per browser run")
    p.add_argument("--cycles", type=int, default=3, help="kill -9 cycles before the final check")
    p.add_argument("--kind", choices=["wal", "device"], default="wal",
                   help="wal: blockwal's Wal on OpfsDevice; device: OpfsDevice alone")
    p.add_argument("--batch", type=int, default=1, help="entries per sync")
    p.add_argument("--min-entries", type=int, default=100)
    p.add_argument("--max-entries", type=int, default=400)
    p.add_argument("--max-kill-delay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rounds", type=int, default=150, help="A/B rounds per scenario")
    p.add_argument("--singles", type=int, default=10, help="flushes per side per round (1 entry each)")
    p.add_argument("--batches", type=int, default=8, help="batches of 64 per side per round")
    p.add_argument("--keep", action="store_true", help="keep the profile and logs")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)

    target = Path(args.target_dir).resolve()
    pkg = target / "blockwal-browser-pkg"
    if not args.no_build:
        build(target, pkg)
    workdir = Path(tempfile.mkdtemp(prefix=f"blockwal-{args.mode}-"))
    events = queue.Queue()
    httpd = serve(args.port, pkg, events)
    base = f"http://127.0.0.1:{args.port}"
    ok = False
    try:
        if args.mode == "persist":
            log(f"{args.kind} log, {args.batch} entries per sync, seed {args.seed}, {args.cycles} kill cycles, profile {workdir / 'profile'}")
            persist(args, base, events, workdir)
        elif args.mode == "lock":
            for check in (lock, lock_tab):
                retrying_a_worker_that_did_not_load(check, args, base, events, workdir)
        else:
            bench(args, base, events, workdir)
        ok = True
    except Fail as e:
        log(f"FAILED: {e}")
        clog = workdir / "chromium.log"
        if clog.exists():
            tail = clog.read_bytes()[-3000:].decode(errors="replace")
            log(f"last Chromium output:\n{tail}")
    finally:
        httpd.shutdown()
        if args.keep or not ok:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
