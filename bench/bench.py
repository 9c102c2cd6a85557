#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench.py -- the body of bench/run (mod_gettoken performance benchmark).

Starts its own httpd (mpm_event, mod_ssl with an ECDSA P-256 server
certificate, mod_dbd/SQLite with N enrolled devices, an RSA-2048 maid key) on
127.0.0.1 and measures, all in one run:

  sign_us                 one RSA-2048 signature (openssl speed rsa2048 on httpd's
                          CPU, once in every round; the median)
  baseline_rps            static 200 response, same vhost and TLS, keep-alive
  gettoken_rps_keepalive  GetToken, keep-alive connections
  gettoken_rps_newconn    GetToken, new TLS connection + client cert per request
  p50/p99                 latency of each run
  cpu_us_per_req          httpd user+sys CPU (/proc/<pid>/stat) / requests
  overhead_ratio          (GetToken CPU/req - static CPU/req) / sign_us, in each
                          round from that round's runs; the median of the rounds
  scaling                 GetToken CPU/req with 1 000 vs 1 000 000 enrolled devices
  rss                     VmRSS of each child after warm-up and at the end
  --organizations         + the organisation query's cost, in the keep-alive blocks
  --postgresql            + a PostgreSQL vhost (1 000 000 enrolled), in the same blocks
  --mysql                 + a MariaDB vhost (1 000 000 enrolled), in the same blocks
  watch (full run)        bench/watch.py's admitted watch enrollment figure

Prints one table, writes bench/results.json, and prints
"overhead_ratio=<x.xx>" (keep-alive) as the very last line.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from bench_common import BENCH, CLK_TCK, log, run
from bench_httpd import bench_httpd, start
from gt_httpd import APACHE
from bench_measure import Runner, busy_ticks, combine, join_halves, median, sanity_check, sign_us
from bench_report import report
from bench_setup import ensure_loadgen, ensure_module, make_db, make_pki
from bench_mysql import make_mysql
from bench_pg import make_pg

# (key, label, kind, keep-alive) of the measured runs
KINDS = [("static_ka", "static keep-alive", "static", True),
         ("gettoken_ka", "GetToken keep-alive", "gettoken", True),
         ("static_nc", "static new-conn", "static", False),
         ("gettoken_nc", "GetToken new-conn", "gettoken", False)]
# keep-alive GetToken runs on the optional vhosts, measured inside the
# keep-alive block next to the plain one: (key, label, Httpd port attribute)
VARIANTS = [("gettoken_org_ka", "GetToken keep-alive, organisation query", "org_port"),
            ("gettoken_pg_ka", "GetToken keep-alive, PostgreSQL", "pg_port"),
            ("gettoken_mysql_ka", "GetToken keep-alive, MariaDB", "mysql_port")]


@dataclass
class Setup:
    """What one run measures: the options, the server and its load generator."""
    a: argparse.Namespace
    have_module: bool
    pki: object
    plan: dict
    server_cpus: str
    client_cpus: str
    n_small: int
    n_big: int = None
    big_db: str = None
    h: object = None
    R: Runner = None
    pg: object = None
    n_pg: int = None
    mysql: object = None
    n_mysql: int = None


# --------------------------------------------------------------------------
# options and preparation
# --------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts, under 60 s")
    ap.add_argument("--devices", type=int, default=1000,
                    help="enrolled devices with their own client certificate (default 1000)")
    ap.add_argument("--big", type=int, default=1000000,
                    help="enrolled devices in the scaling DB (default 1000000; 0 = skip)")
    ap.add_argument("--concurrency", type=int, default=8, help="client connections (default 8)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved static/GetToken rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin httpd and the load generator to separate CPUs")
    ap.add_argument("--no-build", action="store_true", help="never build the module")
    ap.add_argument("--organizations", action="store_true",
                    help="every device in a GetTokenOrganization, chosen per GetToken by "
                         "GetTokenOrganizationSQL, on a vhost of its own measured in every "
                         "keep-alive block next to the plain one (measures that query)")
    ap.add_argument("--postgresql", action="store_true",
                    help="also a vhost on a PostgreSQL server the bench starts (initdb in the "
                         "work directory) with --pg-devices enrolled, measured in every "
                         "keep-alive block next to SQLite")
    ap.add_argument("--pg-devices", type=int, default=1000000,
                    help="enrolled devices in the PostgreSQL DB (default 1000000)")
    ap.add_argument("--mysql", action="store_true",
                    help="also a vhost on a MariaDB server the bench starts (a data directory "
                         "in the work directory) with --mysql-devices enrolled, measured in "
                         "every keep-alive block next to SQLite")
    ap.add_argument("--mysql-devices", type=int, default=1000000,
                    help="enrolled devices in the MariaDB DB (default 1000000)")
    ap.add_argument("--watch", action="store_true",
                    help="only the watch enrollment figure (bench/watch.py); a full run "
                         "(no --quick) runs it after the rest")
    ap.add_argument("--work", default="/tmp/gettoken-bench", help="work directory")
    ap.add_argument("--serve", action="store_true",
                    help="start the server, print its port, wait (for perf/callgrind), Ctrl-C stops")
    ap.add_argument("--profile", action="store_true",
                    help="instead of the figures: perf-record httpd during each kind of run and "
                         "write bench/profile/<run>.txt (CPU per request by module step / Apache phase)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for the machine to be idle "
                         "(< 0.25 CPUs busy over 3 s); other users' load inflates CPU/req")
    ap.add_argument("--json", default=os.path.join(BENCH, "results.json"))
    a = ap.parse_args()
    a.rounds = max(1, a.rounds)
    return a


def stop_on_signals():
    """SIGTERM and SIGINT unwind like Ctrl-C, so httpd is always stopped."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def request_plan(a):
    """(requests, seconds) of each kind of run: every loop is bounded in
    count and in time."""
    s = a.scale * (0.25 if a.quick else 1.0)
    secs = 1.0 if a.quick else 4
    warm = 1.5 if a.quick else 8

    def n(count):
        return max(200, int(count * s))
    return {
        "secs": secs,
        "static_ka": (n(100000), secs), "gettoken_ka": (n(20000), secs),
        "static_nc": (n(8000), secs), "gettoken_nc": (n(6000), secs),
        "warmup": (n(4000), warm), "warmup_nc": (n(1000), warm), "soak": warm,
        "ab": (n(40000), 8),
    }


def wait_quiet(limit):
    deadline = time.time() + limit
    while True:
        b0, t0 = busy_ticks(), time.time()
        time.sleep(3)
        busy = (busy_ticks() - b0) / CLK_TCK / (time.time() - t0)
        if busy < 0.25:
            log(f"machine idle ({busy:.2f} CPUs busy): starting")
            return
        if time.time() > deadline:
            log(f"machine still busy ({busy:.2f} CPUs) after {limit:.0f} s: starting anyway")
            return
        log(f"machine busy ({busy:.2f} CPUs): waiting")
        time.sleep(7)


def cpu_split(nproc, pin):
    if not pin or nproc < 2:
        return None, None
    half = nproc // 2
    client = f"0-{half - 1}" if half > 1 else "0"
    server = f"{half}-{nproc - 1}" if nproc - half > 1 else str(half)
    return server, client


def machine():
    model = "?"
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            model = l.split(":", 1)[1].strip()
            break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release,
            "httpd": run([APACHE, "-v"], capture_output=True, text=True).stdout.split("\n")[0],
            "openssl": run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}


def prepare(a):
    """The module and loadgen built, the PKI, the DBs and an httpd (not started)."""
    os.makedirs(a.work, exist_ok=True)
    os.chmod(a.work, 0o755)
    if a.wait_quiet > 0:
        wait_quiet(a.wait_quiet)
    have_module = ensure_module(not a.no_build)
    if not have_module:
        log("mod_gettoken.so not available: measuring the static baseline only")
    ensure_loadgen()
    pki = make_pki(a.work, a.devices)
    server_cpus, client_cpus = cpu_split(os.cpu_count(), not a.no_pin)
    small_db = os.path.join(a.work, f"enroll-{a.devices}.db")
    st = Setup(a, have_module, pki, request_plan(a), server_cpus, client_cpus,
               make_db(small_db, pki, a.devices, a.organizations))
    big_db = None
    if have_module and a.big and not (a.serve or a.profile):
        big_db = os.path.join(a.work, f"enroll-{a.big}.db")
        st.n_big = make_db(big_db, pki, a.big, a.organizations)
    pg_params = None
    if have_module and a.postgresql:
        st.pg, pg_params, st.n_pg = make_pg(a.work, pki, a.pg_devices)
    mysql_params = None
    if have_module and a.mysql:
        st.mysql, mysql_params, st.n_mysql = make_mysql(a.work, pki, a.mysql_devices)
    st.h = bench_httpd(a.work, pki, small_db, have_module, server_cpus, a.concurrency * 2,
                       big_db=big_db, organizations=a.organizations, pg_params=pg_params,
                       mysql_params=mysql_params)
    st.big_db = big_db
    return st


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------

def kinds_of(st):
    kinds = [k for k in KINDS if st.have_module or k[2] != "gettoken"]
    # the optional vhosts' runs right after the plain GetToken keep-alive run
    extra = [(key, label, "gettoken", True) for key, label, attr in VARIANTS
             if st.have_module and getattr(st.h, attr, None)]
    return kinds[:2] + extra + kinds[2:] if st.have_module else kinds


def port_of(st, key):
    """The port of an optional vhost's run; None: the main vhost."""
    return next((getattr(st.h, attr) for k, _, attr in VARIANTS if k == key), None)


def warm_up(st):
    """Every kind of run once (all worker threads, DB connections, TLS
    state), before the "after warm-up" RSS snapshot."""
    for kind in (("gettoken", "static") if st.have_module else ("static",)):
        st.R.loadgen(f"warmup {kind} keep-alive", kind, True, *st.plan["warmup"])
        st.R.loadgen(f"warmup {kind} new-conn", kind, False, *st.plan["warmup_nc"])
    for key, label, _, _ in kinds_of(st):
        if port_of(st, key):
            st.R.loadgen(f"warmup {label}", "gettoken", True, *st.plan["warmup"],
                         port=port_of(st, key))


def signature_reading(st, i, block):
    us = round(sign_us(1 if st.a.quick else 2, st.server_cpus), 1)
    log(f"round {i + 1} ({block}): openssl speed rsa2048 on httpd's CPU: {us} µs per signature")
    return us


def interleaved_rounds(st, res):
    """Static and GetToken runs interleaved, a.rounds times; medians are
    reported, so a burst of background load hurts one round, not a figure.

    This machine's speed drifts by 20-30 % within seconds (a shared VM
    host).  So a round is two blocks, keep-alive and new-conn, each a
    palindrome around its own signature measurement (openssl speed on
    httpd's CPU) --
      static-ka GetToken-ka SIGN GetToken-ka static-ka
      static-nc GetToken-nc SIGN GetToken-nc static-nc
    -- every kind run twice for half the time, so it is measured, on
    average, at the moment its signature is, right next to it, and a
    steady drift cancels out.  Each round's ratio uses that block's runs
    and signature only."""
    kinds, rounds = kinds_of(st), {}
    calib = {"ka": [], "nc": []}
    blocks = [("ka", [k for k in kinds if k[3]]), ("nc", [k for k in kinds if not k[3]])]
    for i in range(st.a.rounds):
        tag = f" #{i + 1}" if st.a.rounds > 1 else ""
        halves = {}
        for block, ks in blocks:
            for step in ks + [None] + ks[::-1]:
                if step is None:
                    calib[block].append(signature_reading(st, i, block))
                    continue
                key, label, kind, ka = step
                n, t = st.plan.get(key, st.plan["gettoken_ka"])
                part = f"{label}{tag} ({len(halves.get(key, [])) + 1}/2)"
                halves.setdefault(key, []).append(
                    st.R.loadgen(part, kind, ka, max(1, n // 2), t / 2,
                                 port=port_of(st, key)))
        for key, label, _, _ in kinds:
            rounds.setdefault(key, []).append(join_halves(label + tag, halves[key]))
    res["sign_us_in_rounds"] = calib
    res["sign_us"] = round(median(calib["ka"] + calib["nc"]), 1)
    return {key: combine(label, rounds[key]) for key, label, _, _ in kinds}


def ab_crosscheck(st, runs):
    """The keep-alive figures again with ab(1), one client certificate."""
    runs["ab_static_ka"] = st.R.ab("ab static keep-alive", "static", *st.plan["ab"])
    if st.have_module:
        runs["ab_gettoken_ka"] = st.R.ab("ab GetToken keep-alive", "gettoken", *st.plan["ab"])


def soak(st, res, runs, rss0):
    """Every worker thread, allocator arena and DB connection has been used
    by now; a soak (keep-alive + new-conn) must leave the children's RSS flat."""
    rss1 = st.h.rss_kb()
    kind = "gettoken" if st.have_module else "static"
    name = "GetToken" if st.have_module else "static"
    for key, ka, label in (("soak_ka", True, "keep-alive"), ("soak_nc", False, "new-conn")):
        n = st.plan["gettoken_ka" if ka else "gettoken_nc"][0]
        runs[key] = st.R.loadgen(f"soak: {name} {label}", kind, ka, n, st.plan["soak"])
    rss2 = st.h.rss_kb()
    res["rss_kb"] = {"after_warmup": rss0, "before_soak": rss1, "after_soak": rss2}
    growth = [(rss2[p] - rss1[p]) / rss1[p] * 100 for p in rss1 if p in rss2]
    res["rss_growth_pct_max"] = round(max(growth), 1) if growth else None
    if set(rss0) != set(rss2):
        res["rss_note"] = "child set changed during the run"


def scaling(st, runs):
    """Keep-alive GetToken runs against the 1 M-device DB (its own vhost) and
    the small DB in adjacent pairs, half-length runs, the pair order
    alternating (big-small, small-big, ...).  The figure is the median of the
    pairs' ratios: a burst of the machine's noise spoils one pair, not the figure."""
    sc, pair_ratios = {}, []
    order = (("big", st.h.big_port, st.n_big), ("small", st.h.port, st.n_small))
    n, t = st.plan["gettoken_ka"]
    for i in range(4 if st.a.quick else 8):
        pair = {}
        for tag, port, enrolled in (order if i % 2 == 0 else order[::-1]):
            pair[tag] = st.R.loadgen(f"GetToken keep-alive, {enrolled} enrolled",
                                     "gettoken", True, max(1, n // 2), t / 2, port=port)
            sc.setdefault(tag, []).append(pair[tag])
        pair_ratios.append(round(pair["big"]["cpu_us_per_req"]
                                 / pair["small"]["cpu_us_per_req"], 3))
    for tag, enrolled in (("big", st.n_big), ("small", st.n_small)):
        sc[tag] = runs[f"scale_{tag}"] = combine(
            f"GetToken keep-alive, {enrolled} enrolled", sc[tag])
        sc[tag]["enrolled"] = enrolled
    return {
        "enrolled_small": st.n_small, "enrolled_big": st.n_big,
        "cpu_us_per_req_small": sc["small"]["cpu_us_per_req"],
        "cpu_us_per_req_big": sc["big"]["cpu_us_per_req"],
        "pair_ratios": pair_ratios,
        "ratio_big_small": round(median(pair_ratios), 3),
    }


def measure(st, res):
    """All the figures' runs on the started server; returns the runs."""
    if st.have_module:
        res["sanity"] = sanity_check(st.h, st.pki)
        log(f"sanity: token verifies, claims {res['sanity']['claims']}")
        for key, label, _, _ in kinds_of(st):
            if port_of(st, key):
                sanity_check(st.h, st.pki, port=port_of(st, key))
                log(f"sanity ({label}): token verifies")
    warm_up(st)
    if st.big_db:
        st.R.loadgen(f"warmup gettoken keep-alive, {st.n_big} enrolled", "gettoken", True,
                     *st.plan["warmup"], port=st.h.big_port)
    rss0 = st.h.rss_kb()
    runs = interleaved_rounds(st, res)
    if not st.a.quick:
        ab_crosscheck(st, runs)
    soak(st, res, runs, rss0)
    if st.big_db:
        res["scaling"] = scaling(st, runs)
    return runs


# --------------------------------------------------------------------------
# other modes: --serve, --profile
# --------------------------------------------------------------------------

def serve(st):
    print(st.h.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def profile_run(st, key, kind, ka, freq, dur):
    """perf record of every httpd process during one run; the report text."""
    data = os.path.join(st.h.dir, f"perf.{key}.data")
    pids = ",".join(str(p) for p in [st.h.pid] + st.h.children())
    rec = subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "--call-graph",
                            "dwarf,32768", "-p", pids, "-o", data, "--",
                            "sleep", str(dur + 1)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    r = st.R.loadgen(f"profile {key}", kind, ka, 10 ** 6, dur, port=port_of(st, key))
    rec.wait(timeout=dur + 60)
    script = subprocess.Popen(["perf", "script", "-i", data], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    rep = run([sys.executable, os.path.join(BENCH, "perf_buckets.py"),
               str(r["requests"]), str(freq)], stdin=script.stdout,
              capture_output=True, text=True).stdout
    script.wait()
    if not os.environ.get("BENCH_KEEP_PERF"):
        os.unlink(data)
    return (f"# {key}: {r['requests']} requests, {r['rps']:.0f} rps, "
            f"{r['cpu_us_per_req']} µs httpd CPU/req while recorded\n"
            f"# (perf's DWARF stack copies inflate all of it; compare shares)\n" + rep)


def profile(st):
    """perf record -g (DWARF) on every httpd process during each kind of run;
    perf_buckets.py sorts the stacks into module steps and Apache phases."""
    outdir = os.path.join(BENCH, "profile")
    os.makedirs(outdir, exist_ok=True)
    if not shutil.which("perf"):
        sys.exit("bench: --profile needs perf (apt-get install linux-perf)")
    warm_up(st)
    freq, dur = 999, max(st.plan["secs"], 4)
    for key, _, kind, ka in kinds_of(st):
        txt = profile_run(st, key, kind, ka, freq, dur)
        with open(os.path.join(outdir, f"{key}.txt"), "w") as f:
            f.write(txt)
        print(txt)
    print(f"profiles in {outdir}/")
    return 0


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    a = parse_args()
    stop_on_signals()
    if a.watch:
        return watch_figure()
    t_begin = time.time()
    st = prepare(a)
    res = {"machine": machine(), "quick": a.quick, "organizations": a.organizations,
           "rounds": a.rounds, "devices_with_certs": a.devices,
           "concurrency": a.concurrency, "module": st.have_module,
           "pinning": {"httpd_cpus": st.server_cpus, "loadgen_cpus": st.client_cpus}}
    try:
        start(st.h)
        log(f"httpd on https://127.0.0.1:{st.h.port} (pid {st.h.pid}, children {st.h.children()})")
        if a.serve:
            return serve(st)
        st.R = Runner(st.h, st.pki, st.client_cpus, a.concurrency)
        if a.profile:
            return profile(st)
        runs = measure(st, res)
        errs = st.h.log_tail(200)
    finally:
        st.h.stop()
        if st.pg:
            st.pg.cleanup()
        if st.mysql:
            st.mysql.cleanup()
    if st.big_db:
        os.unlink(st.big_db)   # 200+ MB; rebuilt in ~2 s next time
    res["enrolled_postgresql"] = st.n_pg
    res["enrolled_mysql"] = st.n_mysql
    status = report(a, res, runs, st.have_module, st.n_small, st.server_cpus, st.client_cpus,
                    t_begin, errs)
    if st.have_module and not a.quick:
        status = watch_figure() or status
    return status


def watch_figure():
    """The watch enrollment gate's figure (bench/watch.py: its own httpd)."""
    log("watch enrollment: bench/watch.py")
    return subprocess.run([sys.executable, os.path.join(BENCH, "watch.py")]).returncode


if __name__ == "__main__":
    sys.exit(main())
