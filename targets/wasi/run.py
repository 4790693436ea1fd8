#!/usr/bin/env python3
"""Runs a wasm32-wasip1 program in Wasmtime (the `wasmtime` package from
PyPI) with the host directory $BLOCKWAL_WASI_DIR preopened as /data, and
exits with its status. It is the cargo runner of scripts/test-wasi.sh.
(node's built-in node:wasi, v20, crashed with SIGSEGV after the tests.)

    BLOCKWAL_WASI_DIR=DIR python3 run.py PROGRAM.wasm [ARGS...]
"""
import os
import sys

from wasmtime import Engine, ExitTrap, Linker, Module, Store, WasiConfig


def main() -> int:
    if len(sys.argv) < 2 or "BLOCKWAL_WASI_DIR" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    program = sys.argv[1]
    engine = Engine()
    linker = Linker(engine)
    linker.define_wasi()
    module = Module.from_file(engine, program)
    wasi = WasiConfig()
    wasi.argv = [program] + sys.argv[2:]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    wasi.preopen_dir(os.environ["BLOCKWAL_WASI_DIR"], "/data")
    store = Store(engine)
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
