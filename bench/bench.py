#!/usr/bin/python3
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

from bench_common import BENCH, CLK_TCK, log, run
from bench_httpd import Httpd, find_httpd, free_port
from bench_measure import Runner, busy_ticks, combine, join_halves, median, sanity_check, sign_us
from bench_report import report
from bench_setup import ensure_loadgen, ensure_module, make_db, make_pki


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def profile(h, R, have_module, plan, secs):
    """perf record -g (DWARF) on every httpd process during each kind of run;
    perf_buckets.py sorts the stacks into module steps and Apache phases."""
    outdir = os.path.join(BENCH, "profile")
    os.makedirs(outdir, exist_ok=True)
    if not shutil.which("perf"):
        sys.exit("bench: --profile needs perf (apt-get install linux-perf)")
    for kind in (("gettoken", "static") if have_module else ("static",)):
        R.loadgen(f"warmup {kind} keep-alive", kind, True, *plan["warmup"])
        R.loadgen(f"warmup {kind} new-conn", kind, False, *plan["warmup_nc"])
    freq, dur = 999, max(secs, 4)
    for key, kind, ka in (("gettoken_ka", "gettoken", True), ("static_ka", "static", True),
                          ("gettoken_nc", "gettoken", False), ("static_nc", "static", False)):
        if kind == "gettoken" and not have_module:
            continue
        data = os.path.join(h.work, f"perf.{key}.data")
        pids = ",".join(str(p) for p in [h.parent()] + h.children())
        rec = subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "--call-graph",
                                "dwarf,32768", "-p", pids, "-o", data, "--",
                                "sleep", str(dur + 1)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = R.loadgen(f"profile {key}", kind, ka, 10 ** 6, dur)
        rec.wait(timeout=dur + 60)
        script = subprocess.Popen(["perf", "script", "-i", data], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        rep = run([sys.executable, os.path.join(BENCH, "perf_buckets.py"),
                   str(r["requests"]), str(freq)], stdin=script.stdout,
                  capture_output=True, text=True).stdout
        script.wait()
        if not os.environ.get("BENCH_KEEP_PERF"):
            os.unlink(data)
        txt = (f"# {key}: {r['requests']} requests, {r['rps']:.0f} rps, "
               f"{r['cpu_us_per_req']} µs httpd CPU/req while recorded\n"
               f"# (perf's DWARF stack copies inflate all of it; compare shares)\n" + rep)
        open(os.path.join(outdir, f"{key}.txt"), "w").write(txt)
        print(txt)
    print(f"profiles in {outdir}/")
    return 0


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
            "httpd": run([find_httpd(), "-v"], capture_output=True, text=True).stdout.split("\n")[0],
            "openssl": run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}


def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller counts, under 60 s")
    ap.add_argument("--devices", type=int, default=1000,
                    help="enrolled devices with their own client certificate (default 1000)")
    ap.add_argument("--big", type=int, default=1000000,
                    help="enrolled devices in the scaling DB (default 1000000; 0 = skip)")
    ap.add_argument("--concurrency", type=int, default=8, help="client connections (default 8)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved static/GetToken rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin httpd and the load generator to separate CPUs")
    ap.add_argument("--no-build", action="store_true", help="never build the module")
    ap.add_argument("--organizations", action="store_true",
                    help="every device in a GetTokenOrganization, chosen per GetToken by "
                         "GetTokenOrganizationSQL (measures that query)")
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

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if a.rounds is None:
        a.rounds = 5
    a.rounds = max(1, a.rounds)
    t_begin = time.time()
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

    # request counts: every loop is bounded in count and in time
    s = a.scale * (0.25 if a.quick else 1.0)
    secs = 1.0 if a.quick else 4
    N = lambda n: max(200, int(n * s))
    plan = {
        "static_ka": (N(100000), secs), "gettoken_ka": (N(20000), secs),
        "static_nc": (N(8000), secs), "gettoken_nc": (N(6000), secs),
        "warmup": (N(4000), 1.5 if a.quick else 8),
        "warmup_nc": (N(1000), 1.5 if a.quick else 8), "soak": 1.5 if a.quick else 8,
        "ab": (N(40000), 8),
    }

    small_db = os.path.join(a.work, f"enroll-{a.devices}.db")
    n_small = make_db(small_db, pki, a.devices, a.organizations)

    res = {"machine": machine(), "quick": a.quick, "organizations": a.organizations, "rounds": a.rounds, "devices_with_certs": a.devices,
           "concurrency": a.concurrency, "module": have_module,
           "pinning": {"httpd_cpus": server_cpus, "loadgen_cpus": client_cpus}}

    big_db = n_big = None
    if have_module and a.big and not (a.serve or a.profile):
        big_db = os.path.join(a.work, f"enroll-{a.big}.db")
        n_big = make_db(big_db, pki, a.big, a.organizations)

    port = free_port()
    h = Httpd(a.work, pki, small_db, port, have_module, server_cpus, a.concurrency * 2,
              big_db=big_db, organizations=a.organizations)
    runs = {}
    try:
        h.start()
        log(f"httpd on https://127.0.0.1:{port} (pid {h.parent()}, children {h.children()})")
        if a.serve:
            print(port, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return
        R = Runner(h, pki, client_cpus, a.concurrency)
        if a.profile:
            return profile(h, R, have_module, plan, secs)
        if have_module:
            res["sanity"] = sanity_check(h, pki)
            log(f"sanity: token verifies, claims {res['sanity']['claims']}")
        # warm up every kind of run (all worker threads, DB connections,
        # TLS state) before the "after warm-up" RSS snapshot
        for kind in (("gettoken", "static") if have_module else ("static",)):
            R.loadgen(f"warmup {kind} keep-alive", kind, True, *plan["warmup"])
            R.loadgen(f"warmup {kind} new-conn", kind, False, *plan["warmup_nc"])
        if big_db:
            R.loadgen(f"warmup gettoken keep-alive, {n_big} enrolled", "gettoken", True,
                      *plan["warmup"], port=h.big_port)
        # (soak runs below are reported, but not part of the figures)
        rss0 = h.rss_kb()

        # static and GetToken runs interleaved, a.rounds times; medians are
        # reported, so a burst of background load hurts one round, not a figure
        kinds = [("static_ka", "static keep-alive", "static", True),
                 ("gettoken_ka", "GetToken keep-alive", "gettoken", True),
                 ("static_nc", "static new-conn", "static", False),
                 ("gettoken_nc", "GetToken new-conn", "gettoken", False)]
        if not have_module:
            kinds = [k for k in kinds if k[2] != "gettoken"]
        # This machine's speed drifts by 20-30 % within seconds (a shared VM
        # host).  So a round is two blocks, keep-alive and new-conn, each a
        # palindrome around its own signature measurement (openssl speed on
        # httpd's CPU) --
        #   static-ka GetToken-ka SIGN GetToken-ka static-ka
        #   static-nc GetToken-nc SIGN GetToken-nc static-nc
        # -- every kind run twice for half the time, so it is measured, on
        # average, at the moment its signature is, right next to it, and a
        # steady drift cancels out.  Each round's ratio uses that block's
        # runs and signature only.
        rounds = {}
        calib = {"ka": [], "nc": []}
        blocks = [("ka", [k for k in kinds if k[3]]), ("nc", [k for k in kinds if not k[3]])]
        for i in range(a.rounds):
            tag = f" #{i + 1}" if a.rounds > 1 else ""
            halves = {}
            for block, ks in blocks:
                for step in ks + [None] + ks[::-1]:
                    if step is None:
                        calib[block].append(round(sign_us(1 if a.quick else 2, server_cpus), 1))
                        log(f"round {i + 1} ({block}): openssl speed rsa2048 on httpd's CPU: "
                            f"{calib[block][-1]} µs per signature")
                        continue
                    key, label, kind, ka = step
                    n, t = plan[key]
                    halves.setdefault(key, []).append(
                        R.loadgen(f"{label}{tag} ({len(halves.get(key, [])) + 1}/2)", kind,
                                  ka, max(1, n // 2), t / 2))
            for key, label, _, _ in kinds:
                rounds.setdefault(key, []).append(join_halves(label + tag, halves[key]))
        res["sign_us_in_rounds"] = calib
        res["sign_us"] = round(median(calib["ka"] + calib["nc"]), 1)
        for key, label, _, _ in kinds:
            runs[key] = combine(label, rounds[key])
        if not a.quick:
            # cross-check of the keep-alive figures with ab(1), one client cert
            runs["ab_static_ka"] = R.ab("ab static keep-alive", "static", *plan["ab"])
            if have_module:
                runs["ab_gettoken_ka"] = R.ab("ab GetToken keep-alive", "gettoken", *plan["ab"])
        # RSS: every worker thread, allocator arena and DB connection has been
        # used by now; a GetToken soak (keep-alive + new-conn) must leave it flat
        rss1 = h.rss_kb()
        runs["soak_ka"] = R.loadgen("soak: GetToken keep-alive" if have_module else
                                    "soak: static keep-alive",
                                    "gettoken" if have_module else "static", True,
                                    plan["gettoken_ka"][0], plan["soak"])
        runs["soak_nc"] = R.loadgen("soak: GetToken new-conn" if have_module else
                                    "soak: static new-conn",
                                    "gettoken" if have_module else "static", False,
                                    plan["gettoken_nc"][0], plan["soak"])
        rss2 = h.rss_kb()
        res["rss_kb"] = {"after_warmup": rss0, "before_soak": rss1, "after_soak": rss2}
        growth = [(rss2[p] - rss1[p]) / rss1[p] * 100 for p in rss1 if p in rss2]
        res["rss_growth_pct_max"] = round(max(growth), 1) if growth else None
        if set(rss0) != set(rss2):
            res["rss_note"] = "child set changed during the run"
        # scaling: keep-alive GetToken runs against the 1 M-device DB (its
        # own vhost) and the small DB in adjacent pairs, half-length runs,
        # the pair order alternating (big-small, small-big, ...).  The
        # figure is the median of the pairs' ratios: a burst of the
        # machine's noise spoils one pair, not the figure.
        if big_db:
            sc, pair_ratios = {}, []
            order = (("big", h.big_port, n_big), ("small", h.port, n_small))
            n, t = plan["gettoken_ka"]
            for i in range(4 if a.quick else 8):
                pair = {}
                for tag, p, enrolled in (order if i % 2 == 0 else order[::-1]):
                    pair[tag] = R.loadgen(f"GetToken keep-alive, {enrolled} enrolled",
                                          "gettoken", True, max(1, n // 2), t / 2, port=p)
                    sc.setdefault(tag, []).append(pair[tag])
                pair_ratios.append(round(pair["big"]["cpu_us_per_req"]
                                         / pair["small"]["cpu_us_per_req"], 3))
            for tag, enrolled in (("big", n_big), ("small", n_small)):
                sc[tag] = runs[f"scale_{tag}"] = combine(
                    f"GetToken keep-alive, {enrolled} enrolled", sc[tag])
                sc[tag]["enrolled"] = enrolled
            res["scaling"] = {
                "enrolled_small": n_small, "enrolled_big": n_big,
                "cpu_us_per_req_small": sc["small"]["cpu_us_per_req"],
                "cpu_us_per_req_big": sc["big"]["cpu_us_per_req"],
                "pair_ratios": pair_ratios,
                "ratio_big_small": round(median(pair_ratios), 3),
            }
        errs = h.tail_log(200)
        h.stop()
        if big_db:
            os.unlink(big_db)   # 200+ MB; rebuilt in ~2 s next time
    finally:
        h.stop()
    return report(a, res, runs, have_module, n_small, server_cpus, client_cpus, t_begin, errs)


if __name__ == "__main__":
    sys.exit(main())
