#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench/passthrough.py -- what `GetToken On` costs the check-ins it does not
answer (bench/run --passthrough; a full bench/run ends with it).

With one check-in URL for everything a device sends (nanomdm's and Fleet's
usual set-up), the module sits in front of every Authenticate, TokenUpdate,
Idle poll and command report; GetToken itself is rare.  This prices that
traffic, as an operator would see it:

  front httpd   the harness's httpd (mpm_event, fixed pool), one TLS vhost with
                client certificates (mTLS), keep-alive, two locations with the
                same `ProxyPass http://127.0.0.1:<backend>/sink`:
                /mdm/plain (no module) and /mdm/checkin (GetToken On)
  backend       a second httpd (plain HTTP) answering every POST with a small
                static file, on the load generator's CPU
  bodies        Authenticate (XML, ~708 B), TokenUpdate (XML, ~3.6 KB), a
                100 KB and a 1 MB command report (an InstalledApplicationList),
                each as an XML and a binary plist; POSTed by loadgen (the
                module treats PUT and POST alike; the static backend answers POST)

Per body, rounds; a round is 4 palindromes -- plain, GetToken On, GetToken On,
plain, each run 0.5 s -- and a palindrome's figure is the front httpd's CPU
time per request (all its processes, from their CPU clocks: ns, not /proc's
10 ms ticks) with GetToken On minus plain.  The round's figure is the median
of its palindromes, and the median of the rounds is reported, in µs and in %
of plain.  (One long palindrome per round scattered by ±5 % on the 2-CPU VM,
a run taken by a passing disturbance moving the whole round; four short ones
and their median stay mostly within ±2 %.)

Then memory: 12 connections each POSTing 8 MB bodies at once, plain and
GetToken On alternately; the peak RSS of the front's children (VmHWM, reset
before each run through clear_refs) over its value before the run.

    bench/passthrough.py [--rounds 3] [--secs 4] [--palindromes 4] [--quick]
"""
import argparse
import json
import os
import plistlib
import resource
import statistics
import sys
import time
import uuid
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_common import BENCH, CLK_TCK, LOADGEN, log, run  # noqa: E402 (puts tests/harness on sys.path)
from bench_measure import busy_ticks  # noqa: E402
from bench_httpd import settings as bench_settings, start  # noqa: E402
from bench_setup import ensure_loadgen, ensure_module, make_db, make_pki  # noqa: E402
from gt_httpd import GETTOKEN_SO, Httpd, VHost, free_port  # noqa: E402
from gt_stream import mem_kb  # noqa: E402

SINK_BODY = b"SINK-OK\n"
TARGET_PCT = 3.0          # the target per message
TARGET_RSS_KB = 16 * 1024
BIG_BODY = 8 * 1024 * 1024
BIG_CONNECTIONS = 12


# --------------------------------------------------------------------------
# the bodies
# --------------------------------------------------------------------------

def _udid():
    return "00008030-%016X" % int.from_bytes(os.urandom(8), "big")


def authenticate(fmt):
    msg = {"MessageType": "Authenticate", "Topic": "com.apple.mgmt.External." + str(uuid.uuid4()),
           "UDID": _udid(), "BuildVersion": "21E236", "DeviceName": "iPhone",
           "Model": "iPhone14,2", "OSVersion": "17.4.1",
           "ProductName": "iPhone14,2", "SerialNumber": "F2LX12345678"}
    return _padded(msg, "DeviceName", fmt, 708 if fmt == "xml" else None)


def token_update(fmt):
    """With an UnlockToken of the size that makes the XML form ~3.6 KB."""
    msg = {"MessageType": "TokenUpdate", "Topic": "com.apple.mgmt.External." + str(uuid.uuid4()),
           "UDID": _udid(), "Token": os.urandom(32), "PushMagic": str(uuid.uuid4()).upper(),
           "AwaitingConfiguration": False}
    n = 1200
    while len(plistlib.dumps(dict(msg, UnlockToken=bytes(n)), fmt=plistlib.FMT_XML)) < 3600:
        n += 3
    msg["UnlockToken"] = os.urandom(n)
    return plistlib.dumps(msg, fmt=plistlib.FMT_XML if fmt == "xml" else plistlib.FMT_BINARY)


def _padded(msg, key, fmt, size):
    """msg serialised; for XML, msg[key] padded so the body is `size` bytes."""
    f = plistlib.FMT_XML if fmt == "xml" else plistlib.FMT_BINARY
    if size is None:
        return plistlib.dumps(msg, fmt=f)
    msg = dict(msg, **{key: msg.get(key, "")})
    short = size - len(plistlib.dumps(msg, fmt=f))
    if short > 0:
        msg[key] += "x" * short
    return plistlib.dumps(msg, fmt=f)


def command_report(fmt, size):
    """An InstalledApplicationList answer of at least `size` bytes."""
    def app(i):
        return {"Identifier": "com.example.app%05d" % i, "Name": "Example App %d" % i,
                "ShortVersion": "%d.%d.%d" % (i % 9, i % 17, i % 5), "Version": str(1000 + i),
                "BundleSize": 1000000 + i * 37, "DynamicSize": 4096 + i, "IsValidated": True,
                "Installing": False, "ExternalVersionIdentifier": 800000000 + i}
    f = plistlib.FMT_XML if fmt == "xml" else plistlib.FMT_BINARY
    head = {"Status": "Acknowledged", "UDID": _udid(), "CommandUUID": str(uuid.uuid4()).upper()}

    def dump(n):
        return plistlib.dumps(dict(head, InstalledApplicationList=[app(i) for i in range(n)]),
                              fmt=f)
    per_app = (len(dump(40)) - len(dump(20))) / 20
    n = max(1, int((size - len(dump(0))) / per_app) - 2)
    body = dump(n)
    while len(body) < size:
        n += max(1, int((size - len(body)) / per_app))
        body = dump(n)
    return body


def bodies():
    """[(key, label, bytes)] of the measured messages."""
    out = []
    for fmt in ("xml", "binary"):
        out += [(f"authenticate_{fmt}", f"Authenticate, {fmt}", authenticate(fmt)),
                (f"token_update_{fmt}", f"TokenUpdate, {fmt}", token_update(fmt)),
                (f"report_100k_{fmt}", f"command report 100 KB, {fmt}",
                 command_report(fmt, 100 * 1024)),
                (f"report_1m_{fmt}", f"command report 1 MB, {fmt}",
                 command_report(fmt, 1024 * 1024))]
    for _, label, b in out:
        assert b"GetToken" not in b, label
    return out


# --------------------------------------------------------------------------
# the servers
# --------------------------------------------------------------------------

@dataclass
class SinkVHost:
    """The backend's one plain-HTTP vhost: every POST gets the static /sink."""
    port: int
    docroot: str

    def render(self, cgi):
        return (f"<VirtualHost 127.0.0.1:{self.port}>\n    DocumentRoot {self.docroot}\n"
                "</VirtualHost>")


def fresh(h):
    """h with no pid file left by a run that was killed: the harness would
    read its dead pid and give up on the new server."""
    try:
        os.unlink(h.pidfile)
    except FileNotFoundError:
        pass
    return h


def backend(work, cpus, threads):
    d = os.path.join(work, "backend")
    docroot = os.path.join(d, "htdocs")
    os.makedirs(docroot, exist_ok=True)
    with open(os.path.join(docroot, "sink"), "wb") as f:
        f.write(SINK_BODY)
    for p in (work, d, docroot):
        os.chmod(p, 0o755)
    os.chmod(os.path.join(docroot, "sink"), 0o644)
    s = {k: v for k, v in bench_settings(d, threads).items() if not k.startswith("DBD")}
    s.update({"DocumentRoot": docroot, "KeepAliveTimeout": "30"})
    return Httpd(d, [SinkVHost(free_port(), docroot)], load_gettoken=False,
                 loglevel="warn", omit_modules=("cgid", "alias", "proxy", "proxy_http",
                                                "env", "headers", "dbd"),
                 settings=s, cpus=cpus)


def front(work, pki, db, backend_port, cpus, threads):
    d = os.path.join(work, "front")
    os.makedirs(os.path.join(d, "htdocs"), exist_ok=True)
    sink = f"ProxyPass http://127.0.0.1:{backend_port}/sink"
    vhost = VHost(pki.server_cert, pki.server_key, db=db, signing_key=pki.maid_key,
                  location=sink, backend=False, ssl_options=None,
                  directives=f"<Location /mdm/plain>\n    {sink}\n</Location>")
    return Httpd(d, [vhost], load_gettoken=True, loglevel="warn",
                 omit_modules=("cgid", "alias", "env", "headers"),
                 settings=bench_settings(d, threads), cpus=cpus)


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------

def cpu_s(pids):
    """CPU time (user + system, every thread) of the processes so far, in
    seconds, from their process CPU clocks (clock_getcpuclockid: the
    clock id of a process is (~pid << 3) | CPUCLOCK_SCHED)."""
    total = 0.0
    for pid in pids:
        try:
            total += time.clock_gettime(((~pid) << 3) | 2)
        except OSError:
            pass
    return total


class Front:
    def __init__(self, h, backend_h, pki, client_cpus, conc):
        self.h, self.pki, self.client_cpus, self.conc = h, pki, client_cpus, conc
        self.pids = [h.pid] + h.children()
        self.backend_pids = [backend_h.pid] + backend_h.children()

    def post(self, label, path, body_file, n, secs, conc=None):
        cmd = [LOADGEN, "-p", str(self.h.port), "-C", self.pki.ca, "-i", self.pki.identities,
               "-c", str(conc or self.conc), "-n", str(n), "-t", str(secs), "-k",
               "-m", "POST", "-u", path, "-B", body_file, "-s", "200", "-e", "SINK-OK"]
        if self.client_cpus:
            cmd = ["taskset", "-c", self.client_cpus] + cmd
        c0, b0, busy0 = cpu_s(self.pids), cpu_s(self.backend_pids), busy_ticks()
        u0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        p = run(cmd, capture_output=True, text=True, timeout=secs + 120, check=False)
        c1, b1, busy1 = cpu_s(self.pids), cpu_s(self.backend_pids), busy_ticks()
        u1, t1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        if p.returncode != 0:
            raise RuntimeError(f"{label}: loadgen failed ({p.returncode}): {p.stderr[-1500:]}")
        r = json.loads(p.stdout)
        bad = r["requests"] - r["ok"] + r.get("errors", 0)
        if bad or not r["requests"]:
            raise RuntimeError(f"{label}: {bad} of {r['requests']} requests failed\n"
                               + self.h.log_tail(10))
        r["cpu_s"] = c1 - c0
        r["front_busy"] = (c1 - c0) / max(t1 - t0, 1e-9)
        # CPUs busy with neither httpd nor loadgen: other users of the machine
        loadgen_s = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
        other_s = (busy1 - busy0) / CLK_TCK - (c1 - c0) - (b1 - b0) - loadgen_s
        r["background_cpus"] = max(0.0, other_s) / max(t1 - t0, 1e-9)
        return r


def palindrome(fr, label, path_of, body_file, run_secs):
    """plain, GetToken On, GetToken On, plain: CPU µs per request of each,
    and what GetToken On added."""
    runs = {"plain": [], "gettoken": []}
    for loc in ("plain", "gettoken", "gettoken", "plain"):
        runs[loc].append(fr.post(f"{label} {loc}", path_of[loc], body_file, 10 ** 6, run_secs))
    fig = {loc: sum(r["cpu_s"] for r in rs) * 1e6 / sum(r["requests"] for r in rs)
           for loc, rs in runs.items()}
    fig["added_us"] = fig["gettoken"] - fig["plain"]
    fig["added_pct"] = fig["added_us"] / fig["plain"] * 100
    fig["requests"] = sum(r["requests"] for rs in runs.values() for r in rs)
    fig["background_cpus"] = max(r["background_cpus"] for rs in runs.values() for r in rs)
    fig["front_busy"] = min(r["front_busy"] for rs in runs.values() for r in rs)
    return fig


def palindromes(fr, items, rounds, per_round, secs, workdir):
    """Per body and round: `per_round` palindromes, each of four runs of
    secs / per_round / 2 seconds; the round's figure is the median of its
    palindromes (one run disturbed by something else on the machine moves
    one palindrome, not the round)."""
    per = {key: [] for key, _, _ in items}
    files = {}
    path_of = {"plain": "/mdm/plain", "gettoken": "/mdm/checkin"}
    for key, _, b in items:
        files[key] = os.path.join(workdir, key + ".plist")
        with open(files[key], "wb") as f:
            f.write(b)
    for i in range(rounds):
        for key, label, b in items:
            pals = [palindrome(fr, label, path_of, files[key], secs / per_round / 2)
                    for _ in range(per_round)]
            mid = sorted(pals, key=lambda p: p["added_pct"])
            fig = {"plain": statistics.median(p["plain"] for p in pals),
                   "gettoken": statistics.median(p["gettoken"] for p in pals),
                   "added_us": statistics.median(p["added_us"] for p in pals),
                   "added_pct": statistics.median(p["added_pct"] for p in pals),
                   "palindromes_pct": [round(p["added_pct"], 1) for p in mid],
                   "requests": sum(p["requests"] for p in pals),
                   "background_cpus": max(p["background_cpus"] for p in pals),
                   "front_busy": min(p["front_busy"] for p in pals)}
            per[key].append(fig)
            log(f"round {i + 1}: {label} ({len(b)} B): plain {fig['plain']:.1f} µs, "
                f"GetToken On {fig['gettoken']:.1f} µs, added {fig['added_us']:+.1f} µs "
                f"({fig['added_pct']:+.1f} %; palindromes {fig['palindromes_pct']}), "
                f"background {fig['background_cpus']:.2f} CPUs, front busy >= "
                f"{fig['front_busy']:.2f}")
    return per


def children_mem(fr):
    return {pid: mem_kb(pid) for pid in fr.pids[1:]}


def big_bodies(fr, workdir, runs):
    """12 connections POSTing 8 MB bodies at once, plain and GetToken On
    alternately; peak RSS of the front's children over their RSS before."""
    body = os.path.join(workdir, "report-8m.plist")
    with open(body, "wb") as f:
        f.write(command_report("xml", BIG_BODY))
    out = {"plain": [], "gettoken": []}
    for loc in ["plain", "gettoken", "gettoken", "plain"][:runs]:
        before = children_mem(fr)
        for pid in before:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")       # VmHWM := VmRSS
        path = "/mdm/plain" if loc == "plain" else "/mdm/checkin"
        r = fr.post(f"12 x 8 MB, {loc}", path, body, 2 * BIG_CONNECTIONS, 120,
                    conc=BIG_CONNECTIONS)
        after = children_mem(fr)
        rss0 = sum(m["VmRSS"] for m in before.values())
        peak = sum(m["VmHWM"] for m in after.values())
        out[loc].append({"rss_before_kb": rss0, "peak_kb": peak, "growth_kb": peak - rss0,
                         "requests": r["requests"]})
        log(f"12 x 8 MB, {loc}: children's RSS {rss0} kB before, peak {peak} kB "
            f"({peak - rss0:+d} kB)")
    return out


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------

def summary(items, per, mem):
    rows = []
    for key, label, b in items:
        rs = per[key]
        rows.append({"key": key, "label": label, "bytes": len(b),
                     "plain_us": statistics.median(r["plain"] for r in rs),
                     "gettoken_us": statistics.median(r["gettoken"] for r in rs),
                     "added_us": statistics.median(r["added_us"] for r in rs),
                     "added_pct": statistics.median(r["added_pct"] for r in rs),
                     "added_pct_rounds": [round(r["added_pct"], 1) for r in rs],
                     "background_cpus_max": max(r["background_cpus"] for r in rs),
                     "rounds": rs})
    peak = {loc: max(x["peak_kb"] for x in xs) for loc, xs in mem.items() if xs}
    return {"messages": rows, "memory": mem, "peak_kb": peak,
            "peak_diff_kb": peak.get("gettoken", 0) - peak.get("plain", 0)}


def print_table(s, load):
    print(f"\nfront httpd CPU per request, keep-alive mTLS, ProxyPass to a backend httpd "
          f"(median of {len(s['messages'][0]['rounds'])} rounds, each the median of "
          f"{len(s['messages'][0]['rounds'][0]['palindromes_pct'])} palindromes; load average "
          f"at the start {load})")
    print(f"{'message passed through':34} {'bytes':>8} {'plain µs':>9} {'GetToken On':>11} "
          f"{'added µs':>9} {'added %':>8} {'bg CPUs':>7}  rounds (%)")
    print("-" * 108)
    for m in s["messages"]:
        print(f"{m['label']:34} {m['bytes']:>8} {m['plain_us']:>9.1f} {m['gettoken_us']:>11.1f} "
              f"{m['added_us']:>+9.1f} {m['added_pct']:>+7.1f}% {m['background_cpus_max']:>7.2f}  "
              f"{m['added_pct_rounds']}")
    worst = max(m["added_pct"] for m in s["messages"])
    print(f"\nworst median: {worst:+.1f} % (target <= {TARGET_PCT:.0f} %)")
    if s["peak_kb"]:
        print(f"12 x 8 MB bodies at once: children's peak RSS plain {s['peak_kb'].get('plain')} kB, "
              f"GetToken On {s['peak_kb'].get('gettoken')} kB, difference "
              f"{s['peak_diff_kb']:+d} kB (target within {TARGET_RSS_KB} kB)")
    print(f"passthrough_worst_pct={worst:.1f}")
    return 0 if worst <= TARGET_PCT and abs(s["peak_diff_kb"]) <= TARGET_RSS_KB else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=4.0,
                    help="seconds per location, body and round")
    ap.add_argument("--palindromes", type=int, default=4, help="palindromes per round")
    ap.add_argument("--quick", action="store_true",
                    help="2 palindromes of 0.5 s runs per round, one memory pair")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--only", default="", help="comma-separated body keys (e.g. authenticate_xml)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--work", default="/tmp/gettoken-bench")
    ap.add_argument("--json", default=os.path.join(BENCH, "results-passthrough.json"))
    a = ap.parse_args()
    secs, per_round = (2.0, 2) if a.quick else (a.secs, a.palindromes)
    load = open("/proc/loadavg").read().split()[:3]
    os.makedirs(a.work, exist_ok=True)
    os.chmod(a.work, 0o755)
    if not ensure_module(True):
        sys.exit("bench: mod_gettoken.so is not built")
    ensure_loadgen()
    pki = make_pki(a.work, 1000)
    db = os.path.join(a.work, "enroll-1000.db")
    make_db(db, pki, 1000)
    nproc = os.cpu_count()
    server_cpus, client_cpus = (str(nproc - 1), f"0-{nproc - 2}") if nproc >= 2 else (None, None)
    items = bodies()
    if a.only:
        items = [x for x in items if x[0] in a.only.split(",")]
    be = start(fresh(backend(a.work, client_cpus, 2 * a.concurrency)))
    fh = None
    try:
        fh = start(fresh(front(a.work, pki, db, be.port, server_cpus, 2 * a.concurrency)))
        fr = Front(fh, be, pki, client_cpus, a.concurrency)
        log(f"front httpd on CPU {server_cpus} (port {fh.port}), backend and loadgen on CPU "
            f"{client_cpus}; load average {' '.join(load)}")
        for key, label, _ in items:      # warm-up: every location, every body
            for path in ("/mdm/plain", "/mdm/checkin"):
                b = os.path.join(fh.dir, key + ".plist")
                with open(b, "wb") as f:
                    f.write(next(x[2] for x in items if x[0] == key))
                fr.post(f"warm-up {label}", path, b, 200, 1)
        per = palindromes(fr, items, a.rounds, per_round, secs, fh.dir)
        mem = {}
        if not a.no_memory:
            mem = big_bodies(fr, fh.dir, 2 if a.quick else 4)
        errs = fh.log_tail(20)
    finally:
        if fh:
            fh.stop()
        be.stop()
    s = summary(items, per, mem)
    s.update({"module": GETTOKEN_SO, "load_average_at_start": load,
              "secs_per_location_and_round": secs, "palindromes_per_round": per_round,
              "rounds": a.rounds,
              "concurrency": a.concurrency, "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime())})
    with open(a.json, "w") as f:
        json.dump(s, f, indent=1)
    status = print_table(s, " ".join(load))
    if errs.strip():
        print("front error log (last lines):\n" + errs)
    return status


if __name__ == "__main__":
    sys.exit(main())
