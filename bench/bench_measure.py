#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_measure.py -- measurements: a signature (openssl speed), load runs
with loadgen and ab and their CPU cost, and how rounds are combined."""
import json
import os
import re
import resource
import subprocess
import time

from bench_common import LOADGEN, CLK_TCK, GETTOKEN_BODY, log, run
from gt_client import Client, decode_unverified, token_from_response, verify_maid_token
from gt_pki import Identity

# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------

def sign_us(secs, cpus=None):
    """One RSA-2048 signature in µs of CPU time, from `openssl speed -mr
    -seconds <secs> rsa2048` on `cpus` if given.  Only its sign phase is
    waited for: the result line of the sign loop ("+R1:count:bits:seconds",
    seconds of CPU time) is read as it comes, then openssl is stopped
    before it spends as long again on verifying."""
    cmd = ["openssl", "speed", "-mr", "-seconds", str(secs), "rsa2048"]
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in p.stdout:
            seen.append(line)
            m = re.match(r"\+R1:(\d+):2048:([0-9.]+)", line)
            if m and int(m.group(1)) > 0:
                return float(m.group(2)) / int(m.group(1)) * 1e6
    finally:
        p.kill()
        p.wait()
    raise RuntimeError("cannot parse openssl speed -mr output:\n" + "".join(seen[-20:]))


class Runner:
    def __init__(self, httpd, pki, client_cpus, conc):
        self.h, self.pki, self.client_cpus, self.conc = httpd, pki, client_cpus, conc
        self.body = os.path.join(httpd.dir, "gettoken.plist.tmpl")
        open(self.body, "w").write(GETTOKEN_BODY)

    def _pin(self, cmd):
        return (["taskset", "-c", self.client_cpus] + cmd) if self.client_cpus else cmd

    def loadgen(self, label, kind, keepalive, n, secs, warmup=0, conc=None, port=None):
        cmd = [LOADGEN, "-p", str(port or self.h.port), "-C", self.pki.ca,
               "-i", self.pki.identities,
               "-c", str(conc or self.conc), "-n", str(n), "-t", str(secs), "-w", str(warmup)]
        if kind == "gettoken":
            cmd += ["-m", "PUT", "-u", "/mdm/checkin", "-b", self.body, "-e", "TokenData"]
        else:
            cmd += ["-m", "GET", "-u", "/static/ok.plist", "-e", "TokenData"]
        if keepalive:
            cmd.append("-k")
        return self._measure(label, self._pin(cmd), secs, parse=json.loads)

    def ab(self, label, kind, n, secs):
        """Cross-check with ab(1): keep-alive, one client certificate."""
        cmd = ["ab", "-q", "-k", "-c", str(self.conc), "-t", str(int(secs)), "-n", str(n),
               "-E", self.pki.combined]
        if kind == "gettoken":
            udid = self.pki.enrolled[0][0]
            bodyf = os.path.join(self.h.dir, "gettoken-dev0.plist")
            open(bodyf, "w").write(GETTOKEN_BODY.replace("@UDID@", udid))
            cmd += ["-u", bodyf, "-T", "application/x-apple-aspen-mdm-checkin",
                    f"https://127.0.0.1:{self.h.port}/mdm/checkin"]
        else:
            cmd.append(f"https://127.0.0.1:{self.h.port}/static/ok.plist")
        return self._measure(label, self._pin(cmd), secs, parse=parse_ab)

    def _measure(self, label, cmd, secs, parse):
        b0, u0 = busy_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, t0 = self.h.cpu_ticks(), time.time()
        p = run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
        c1, t1 = self.h.cpu_ticks(), time.time()
        b1, u1 = busy_ticks(), resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise RuntimeError(f"{label}: {cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
        if p.stderr.strip():
            log(f"{label}: {p.stderr.strip()[:600]}")
        r = parse(p.stdout)
        r["label"] = label
        r["server_cpu_s"] = round((c1 - c0) / CLK_TCK, 3)
        r["server_cpu_cores"] = round((c1 - c0) / CLK_TCK / max(t1 - t0, 1e-9), 2)
        done = r["requests"]
        r["cpu_us_per_req"] = round((c1 - c0) / CLK_TCK * 1e6 / done, 1) if done else None
        r["failures"] = r["requests"] - r["ok"] + r.get("errors", 0)
        client_s = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
        r["client_cpu_s"] = round(client_s, 3)
        # CPU busy on the machine that was neither httpd nor the load generator
        # (other users of the machine): a run with much of it is disturbed
        other_s = (b1 - b0 - (c1 - c0)) / CLK_TCK - client_s
        r["background_cpus"] = round(max(0.0, other_s) / max(t1 - t0, 1e-9), 2)
        log(f"{label}: {done} req, {r['rps']:.0f} rps, p50 {r.get('p50_us')} µs, "
            f"p99 {r.get('p99_us')} µs, {r['cpu_us_per_req']} µs CPU/req, "
            f"{r['failures']} failures, background {r['background_cpus']} CPUs")
        return r


def busy_ticks():
    """All CPUs' non-idle time from /proc/stat (user nice system irq softirq steal)."""
    f = open("/proc/stat").readline().split()
    return sum(int(f[i]) for i in (1, 2, 3, 6, 7, 8))


def parse_ab(out):
    def num(pat, default=0.0):
        m = re.search(pat, out, re.M)
        return float(m.group(1)) if m else default
    done = int(num(r"^Complete requests:\s+(\d+)"))
    failed = int(num(r"^Failed requests:\s+(\d+)"))
    non2xx = int(num(r"^Non-2xx responses:\s+(\d+)"))
    p = {int(a): int(b) for a, b in re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    return {"requests": done, "ok": done - max(failed, non2xx), "non200": non2xx,
            "errors": 0, "rps": num(r"^Requests per second:\s+([0-9.]+)"),
            "p50_us": p.get(50, 0) * 1000, "p99_us": p.get(99, 0) * 1000,
            "elapsed_s": num(r"^Time taken for tests:\s+([0-9.]+)"), "tool": "ab (ms resolution)"}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def join_halves(label, rs):
    """One round's figure of a kind of run from its two halves: CPU per
    request over both (total CPU / total requests), latencies averaged."""
    done = sum(r["requests"] for r in rs)
    cpu_s = sum(r["server_cpu_s"] for r in rs)
    out = {"label": label, "halves": rs, "requests": done,
           "cpu_us_per_req": round(cpu_s * 1e6 / done, 1) if done else None,
           "server_cpu_s": round(cpu_s, 3)}
    for k in ("rps", "p50_us", "p90_us", "p99_us", "background_cpus"):
        if all(k in r for r in rs):
            out[k] = round(sum(r[k] for r in rs) / len(rs), 2)
    for k in ("ok", "failures", "non200", "errors", "badbody"):
        out[k] = sum(r.get(k, 0) for r in rs)
    return out


def combine(label, rs):
    """Medians over rounds of one kind of run; counts are summed."""
    med = median
    out = {"label": label + (f" (median of {len(rs)})" if len(rs) > 1 else ""),
           "rounds": rs}
    for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "background_cpus"):
        out[k] = round(med([r[k] for r in rs]), 2)
    for k in ("requests", "failures", "non200", "errors"):
        out[k] = sum(r.get(k, 0) for r in rs)
    out["cpu_us_per_req_min"] = min(r["cpu_us_per_req"] for r in rs)
    out["cpu_us_per_req_max"] = max(r["cpu_us_per_req"] for r in rs)
    return out


def sanity_check(h, pki, port=None):
    """One GetToken as device 0 over Python's ssl: 200, plist with TokenData,
    a JWS whose RS256 signature verifies with the maid key and whose claims
    are right (the harness's independent token check)."""
    from cryptography import x509
    with open(pki.maid_cert, "rb") as f:
        maid_pub = x509.load_pem_x509_certificate(f.read()).public_key()
    dev0 = Identity("dev0", None, None, pki.dev0_key, pki.dev0_cert)
    with Client(port or h.port, pki.ca, dev0, timeout=10) as c:
        r = c.request(GETTOKEN_BODY.replace("@UDID@", pki.enrolled[0][0]).encode())
    if r.status != 200:
        raise RuntimeError(f"sanity GetToken: HTTP {r.status}: {r.body[:300]!r}\n{h.log_tail(5)}")
    token = token_from_response(r)
    claims = verify_maid_token(token, maid_pub, h.server_uuid, time.time())
    return {"header": decode_unverified(token)[0], "claims": claims, "answer_bytes": len(r.body)}
