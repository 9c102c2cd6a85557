#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench/watch.py -- what an admitted Apple Watch enrollment request costs at
the gate (GetTokenWatchEnrollment On), counted in RSA-2048 signatures.

One httpd (the test suite's harness: its own config, 127.0.0.1, free ports),
one TLS vhost with two locations that serve the same static file:
  /w/gated   GetTokenWatchEnrollment On
  /w/plain   nothing of mod_gettoken
Every request is a CMS-signed watch MachineInfo with a PAIRING_TOKEN that the
gate admits: a fresh security token per request (written straight into the
SQLite table, as the gate would have issued it) and a pairing token signed
with python3-jwt by the key the vhost trusts.  The same bodies go to
/w/plain, where nothing looks at them.  Both are answered by Apache's static
file handler (200), so what differs is the gate's work: reading and parsing the
MachineInfo, the CMS verification (ECDSA P-256 signer), the JWS verification
(ES256), the UPDATE of the security token and the INSERT of the jti.

The figure is httpd's CPU time per request (all its processes, /proc), gated
minus plain, divided by the CPU time of one RSA-2048 signature (openssl
speed).  Rounds alternate plain and gated blocks; the median of the rounds'
differences is reported, with the wall-clock latency difference (which also
holds SQLite's fsyncs).

    bench/watch.py [--rounds 5] [--requests 200]
"""
import argparse
import json
import os
import sqlite3
import statistics
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)

from bench_common import CLK_TCK, watch_site  # noqa: E402 (also puts tests/harness on sys.path)
from bench_measure import sign_us  # noqa: E402
from gt_env import Env  # noqa: E402
from pairing_helpers import es256, sth_of  # noqa: E402
from watch_helpers import PKCS7_CT, machine_info, plist_bytes, sign_attached  # noqa: E402


def httpd_cpu_s(h):
    """CPU seconds (user + system) of httpd's parent and children so far."""
    return h.cpu_ticks() / CLK_TCK


def admissions(env, db, issuer, n, product="Watch6,1"):
    """n request bodies, each admissible once: its security token is put in
    the table, its pairing token signed by the trusted key."""
    con = sqlite3.connect(db)
    bodies, now = [], int(time.time())
    for _ in range(n):
        udid, secret = "00008301-" + uuid.uuid4().hex[:16].upper(), str(uuid.uuid4())
        sth = sth_of(secret)
        con.execute("INSERT INTO gettoken_watch_security_token (security_token, sth, "
                    "watch_udid, expires_at, used) VALUES (?, ?, ?, ?, 0)",
                    (secret, sth, udid, now + 3600))
        token = es256({"iss": issuer, "iat": now, "exp": now + 3000,
                       "jti": str(uuid.uuid4()), "service_type": "com.apple.watch.pairing",
                       "phone_udid": "00008110-" + uuid.uuid4().hex[:16].upper(),
                       "watch_udid": udid, "sth": sth}, env.pki.maid_ec.key)
        bodies.append(sign_attached(plist_bytes(machine_info(udid, product, token=token)),
                                    env.devices["dev_a"]))
    con.commit()
    con.close()
    return bodies


def block(env, h, path, bodies):
    """Sends the bodies on one keep-alive connection: (CPU s, wall s) per request."""
    statuses = []
    with env.client(h.port) as c:
        c.request(b"", method="GET", path=path, content_type=None)     # handshake first
        cpu0, t0 = httpd_cpu_s(h), time.perf_counter()
        for b in bodies:
            statuses.append(c.request(b, method="POST", path=path, content_type=PKCS7_CT).status)
        wall, cpu = time.perf_counter() - t0, httpd_cpu_s(h) - cpu0
    if set(statuses) != {200}:
        raise RuntimeError("%s: unexpected answers %s\n%s" % (path, sorted(set(statuses)),
                                                              h.log_tail(5)))
    return cpu / len(bodies), wall / len(bodies)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200, help="per block")
    ap.add_argument("--product", default="Watch6,1",
                    help="PRODUCT of the MachineInfo (iPhone15,2: what a non-watch costs)")
    ap.add_argument("--wal", action="store_true",
                    help="the SQLite database in WAL mode (PRAGMA journal_mode=WAL)")
    args = ap.parse_args()

    env = Env(prefix="gettoken-bench-watch-")
    try:
        static, db = watch_site(env, "watch-bench", args.wal)
        issuer = str(uuid.uuid4())
        directives = "\n".join([
            "GetTokenWatchPairingTrust %s %s" % (issuer, env.pki.maid_ec.cert_path),
            "Alias /w/gated %s" % static, "Alias /w/plain %s" % static,
            "<Location /w/gated>", "    GetTokenWatchEnrollment On", "</Location>"])
        v = env.vhost(gettoken=False, signing_key=None, uuid=None, db=db,
                      directives=directives)
        h = env.httpd([v], loglevel="warn").start()
        sig_us = sign_us(2)
        results = []
        for rnd in range(args.rounds):
            bodies = admissions(env, db, issuer, args.requests, args.product)
            plain1 = block(env, h, "/w/plain", bodies[: args.requests // 2])
            gated = block(env, h, "/w/gated", bodies)
            plain2 = block(env, h, "/w/plain", bodies[args.requests // 2:])
            plain = [(a + b) / 2 for a, b in zip(plain1, plain2)]
            r = {"round": rnd + 1, "gate_cpu_us": (gated[0] - plain[0]) * 1e6,
                 "gate_wall_us": (gated[1] - plain[1]) * 1e6,
                 "plain_cpu_us": plain[0] * 1e6, "gated_cpu_us": gated[0] * 1e6}
            results.append(r)
            print("round %d: plain %.0f µs CPU, gated %.0f µs CPU, gate %.0f µs CPU, "
                  "%.0f µs wall" % (r["round"], r["plain_cpu_us"], r["gated_cpu_us"],
                                    r["gate_cpu_us"], r["gate_wall_us"]), file=sys.stderr)
        h.stop()
        cpu = statistics.median(r["gate_cpu_us"] for r in results)
        wall = statistics.median(r["gate_wall_us"] for r in results)
        print(json.dumps({"rsa2048_sign_us": round(sig_us, 1),
                          "admitted_watch_cpu_us": round(cpu, 1),
                          "admitted_watch_in_signatures": round(cpu / sig_us, 2),
                          "admitted_watch_wall_us": round(wall, 1),
                          "rounds": results}, indent=1))
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
