#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench/tpm.py -- what a GetToken signed inside a TPM 2.0 costs, beside the
same GetToken signed with a key file.

One httpd (the test suite's harness: its own config, 127.0.0.1, free ports,
two children of 16 threads), three vhosts that differ only in their key:
  file       the RSA-2048 test key, a PEM file
  tpm-rsa    an RSA-2048 key persistent in the TPM (handle:0x81000001)
  tpm-ec     an EC P-256 key persistent in the TPM (handle:0x81000002)
By default the TPM is the tests' software TPM (swtpm behind the harness's
resource broker, tests/harness/gt_tpm.py), with keys made for the run.  With
--tcti (e.g. device:/dev/tpmrm0) it is that TPM, whose handles --rsa and
--ec must already hold signing keys (README: "A TPM 2.0").

Per vhost: the latency of one GetToken (one client, keep-alive, sequential;
median of --requests) and the rate with --clients clients at once for
--seconds.  The client is Python (the harness's), so the file key's rate is
the client's limit more than httpd's; the TPM rows are bounded by the TPM,
one signature at a time per child.

    bench/tpm.py [--requests 50] [--clients 16] [--seconds 5]
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_common import log  # noqa: E402 (also puts tests/harness on sys.path)
from gt_client import gettoken_fields, token_from_response  # noqa: E402
from gt_env import Env  # noqa: E402
from gt_tpm import EC_HANDLE, RSA_HANDLE, SoftTPM  # noqa: E402


def one_gettoken(c, fields):
    r = c.checkin(fields)
    token_from_response(r)      # raises unless a 200 with a token


def latency_ms(env, port, fields, n):
    times = []
    with env.client(port, "dev_a") as c:
        one_gettoken(c, fields)                 # handshake and warm-up
        for _ in range(n):
            t0 = time.perf_counter()
            one_gettoken(c, fields)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rate_per_s(env, port, fields, clients, seconds):
    done, stop = [0] * clients, time.time() + seconds

    def client(i):
        with env.client(port, "dev_a") as c:
            while time.time() < stop:
                one_gettoken(c, fields)
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--tcti", help="an existing TPM (default: a software TPM for the run)")
    ap.add_argument("--rsa", default=RSA_HANDLE)
    ap.add_argument("--ec", default=EC_HANDLE)
    args = ap.parse_args()

    env = Env(prefix="gettoken-bench-tpm-")
    tpm = None
    try:
        if args.tcti:
            tcti = args.tcti
        else:
            tpm = SoftTPM(os.path.join(env.dir, "tpm")).start().make_keys()
            tcti = tpm.tcti
        os.environ["TPM2OPENSSL_TCTI"] = tcti
        vhosts = {"file": env.vhost(),
                  "tpm-rsa": env.vhost(signing_key="handle:" + args.rsa),
                  "tpm-ec": env.vhost(signing_key="handle:" + args.ec)}
        settings = {"StartServers": "2", "ServerLimit": "2", "ThreadsPerChild": "16",
                    "MaxRequestWorkers": "32", "MinSpareThreads": "32", "MaxSpareThreads": "32"}
        h = env.httpd(list(vhosts.values()), extra_global="GetTokenKeyProvider tpm2",
                      settings=settings, loglevel="warn").start()
        fields = gettoken_fields(udid=env.devices["dev_a"].enrollment_id)
        out = {"tpm": "swtpm behind the harness's resource broker" if tpm else tcti}
        for name, v in vhosts.items():
            ms = latency_ms(env, v.port, fields, args.requests)
            rate = rate_per_s(env, v.port, fields, args.clients, args.seconds)
            out[name] = {"gettoken_ms": round(ms, 2), "gettokens_per_s": round(rate, 1)}
            log("%-8s %7.2f ms per GetToken (one client), %7.1f GetTokens/s (%d clients)"
                % (name, ms, rate, args.clients))
        h.stop()
        print(json.dumps(out, indent=1))
    finally:
        if tpm:
            tpm.stop()
        env.cleanup()


if __name__ == "__main__":
    main()
