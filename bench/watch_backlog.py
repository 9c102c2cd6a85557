#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench/watch_backlog.py -- how long watch enrollment gate requests wait with
a backlog of expired security tokens in the table.

One httpd (the test suite's harness, 127.0.0.1, free ports), one TLS vhost
with /w/gated (GetTokenWatchEnrollment On in front of a static file) on an
SQLite database that holds --backlog expired rows of
gettoken_watch_security_token (written straight into the table).  Then
--clients connections at once send, for --seconds, a mix of what reaches the
gate: new watches without PAIRING_TOKEN (each records a security token and
purges a batch of expired rows), the same watches again (their token is
returned) and iPhones (parsed and passed on).  Reported: the slowest request,
the 99th percentile and the median wall time per kind, 503s, and how many
expired rows are left; for comparison, how long one DELETE of every expired
row (what a single request did before the purge was batched) takes on a copy
of the same table.

    bench/watch_backlog.py [--backlog 200000] [--clients 8] [--seconds 20] [--wal]
"""
import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)

from bench_common import watch_site  # noqa: E402 (also puts tests/harness on sys.path)
from gt_env import Env  # noqa: E402
from watch_helpers import (PKCS7_CT, SECURITY_TOKEN_TABLE, fill_expired, machine_info,  # noqa: E402
                           plist_bytes, sign_attached)

TABLE = SECURITY_TOKEN_TABLE


def expired(db):
    con = sqlite3.connect(db, timeout=60)
    try:
        return con.execute("SELECT count(*) FROM %s WHERE expires_at < ?" % TABLE,
                           (int(time.time()),)).fetchone()[0]
    finally:
        con.close()


def full_purge_seconds(db, workdir):
    """One DELETE of every expired row, on a copy of the table."""
    copy = os.path.join(workdir, "copy.db")
    shutil.copyfile(db, copy)
    con = sqlite3.connect(copy)
    t0 = time.perf_counter()
    con.execute("DELETE FROM %s WHERE expires_at < ?" % TABLE, (int(time.time()),))
    con.commit()
    took = time.perf_counter() - t0
    con.close()
    os.unlink(copy)
    return took


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backlog", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--wal", action="store_true",
                    help="the SQLite database in WAL mode (PRAGMA journal_mode=WAL)")
    args = ap.parse_args()

    env = Env(prefix="gettoken-bench-backlog-")
    try:
        static, db = watch_site(env, "watch-backlog", args.wal)
        fill_expired(db, args.backlog, watches=5000, spread=3000, timeout=60)
        before = expired(db)
        full = full_purge_seconds(db, env.dir)
        issuer = str(uuid.uuid4())
        directives = "\n".join([
            "GetTokenWatchPairingTrust %s %s" % (issuer, env.pki.maid_ec.cert_path),
            "Alias /w/gated %s" % static,
            "<Location /w/gated>", "    GetTokenWatchEnrollment On", "</Location>"])
        v = env.vhost(gettoken=False, signing_key=None, uuid=None, db=db, directives=directives)
        h = env.httpd([v], loglevel="warn").start()
        signer = env.devices["dev_a"]
        phone = sign_attached(plist_bytes(machine_info("00008110-000A1B2C3D4E5F60",
                                                       product="iPhone15,2")), signer)
        lat = {"new-watch": [], "same-watch": [], "iphone": []}
        statuses, lock = {}, threading.Lock()
        deadline = time.time() + args.seconds

        def client(i):
            n = 0
            with env.client(h.port) as c:
                while time.time() < deadline:
                    n += 1
                    if n % 3 == 1:
                        udid = "00008301-%04X%012X" % (i, n)
                        kind, body = "new-watch", plist_bytes(machine_info(udid))
                    elif n % 3 == 2:
                        kind, body = "same-watch", plist_bytes(machine_info(udid))
                    else:
                        kind, body = "iphone", phone
                    t0 = time.perf_counter()
                    r = c.request(body, method="POST", path="/w/gated", content_type=PKCS7_CT)
                    took = time.perf_counter() - t0
                    with lock:
                        lat[kind].append(took)
                        statuses[r.status] = statuses.get(r.status, 0) + 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        h.stop()
        after = expired(db)

        def summary(xs):
            xs = sorted(xs)
            return {"requests": len(xs), "median_ms": round(statistics.median(xs) * 1e3, 2),
                    "p99_ms": round(xs[int(len(xs) * 0.99)] * 1e3, 2),
                    "max_ms": round(xs[-1] * 1e3, 2)} if xs else {}

        print(json.dumps({"backlog_expired_rows": before, "wal": args.wal, "expired_rows_left": after,
                          "one_full_purge_s": round(full, 2), "clients": args.clients,
                          "statuses": statuses,
                          "latency": {k: summary(v) for k, v in lat.items()}}, indent=1))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
