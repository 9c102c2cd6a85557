#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_common.py -- paths, the GetToken body, logging and subprocess helpers
shared by the bench/ scripts.  Importing it puts the test harness
(tests/harness: httpd, PKI, DBs, clients) on sys.path for all of them."""
import os
import sqlite3
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH), "tests", "harness"))

from gt_httpd import GETTOKEN_SO as MODULE  # noqa: E402
from gt_pki import REPO  # noqa: E402

__all__ = ["BENCH", "REPO", "MODULE", "LOADGEN_SRC", "LOADGEN", "CLK_TCK", "GETTOKEN_BODY",
           "log", "run", "watch_site"]

LOADGEN_SRC = os.path.join(BENCH, "loadgen.c")
LOADGEN = os.path.join(BENCH, "loadgen")
CLK_TCK = os.sysconf("SC_CLK_TCK")

GETTOKEN_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>MessageType</key>
\t<string>GetToken</string>
\t<key>TokenServiceType</key>
\t<string>com.apple.maid</string>
\t<key>UDID</key>
\t<string>@UDID@</string>
</dict>
</plist>
"""


T0 = time.time()


def log(*a):
    print(f"bench [{time.time() - T0:5.1f}s]:", *a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def watch_site(env, db_name, wal):
    """The watch benches' site in env: a 2000-byte profile httpd's user can
    read, and an empty database db_name, in WAL mode when wal (its folder then
    writable for the -wal and -shm files).  Returns (profile path, db path)."""
    static = os.path.join(env.dir, "profile.mobileconfig")
    with open(static, "wb") as f:
        f.write(b"x" * 2000)
    os.chmod(static, 0o644)
    db = env.make_db(db_name, [])
    if wal:
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
        os.chmod(os.path.dirname(db), 0o777)   # -wal and -shm files next to it
    return static, db
