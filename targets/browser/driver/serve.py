#!/usr/bin/env python3
"""Builds the browser crate and serves the Raft demo for you to open.

    python3 targets/browser/driver/serve.py [--port 8347] [--no-build]

then open http://127.0.0.1:8347/demo.html (`?nodes=5` for five nodes).
OPFS needs a secure context: http on 127.0.0.1 or localhost counts as one,
another host name needs https. Ctrl-C stops the server; the cluster's logs
stay in the browser's OPFS for this origin until you press "wipe".
"""

import argparse
import os
import queue
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import CRATE, Fail, build, serve  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=int(os.environ.get("BLOCKWAL_BROWSER_PORT", "8347")))
    p.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(CRATE / "target")))
    p.add_argument("--no-build", action="store_true", help="serve the pkg/ of an earlier build")
    args = p.parse_args()
    target = Path(args.target_dir).resolve()
    pkg = target / "blockwal-browser-pkg"
    if not args.no_build:
        build(target, pkg)
    try:
        httpd = serve(args.port, pkg, queue.Queue())  # the page posts no reports unless ?report=1
    except Fail as e:
        sys.exit(str(e))
    print(f"serving the Raft demo: open http://127.0.0.1:{args.port}/demo.html (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        httpd.shutdown()


if __name__ == "__main__":
    main()
