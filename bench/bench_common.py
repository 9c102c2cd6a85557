#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_common.py -- paths, the GetToken body, logging and subprocess helpers
shared by the bench/ scripts.  Importing it puts the test harness
(tests/harness: httpd, PKI, DBs, clients) on sys.path for all of them."""
import os
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(BENCH), "tests", "harness"))

from gt_httpd import GETTOKEN_SO as MODULE  # noqa: E402
from gt_pki import REPO  # noqa: E402

__all__ = ["BENCH", "REPO", "MODULE", "LOADGEN_SRC", "LOADGEN", "CLK_TCK", "GETTOKEN_BODY",
           "log", "run"]

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
