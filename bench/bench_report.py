#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""bench_report.py -- the figures (overhead ratios, scaling) from the runs,
bench/results.json and the printed table."""
import json
import time

from bench_measure import median


def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def report(a, res, runs, have_module, n_small, server_cpus, client_cpus, t_begin, errs):
    """Computes the figures from the runs, writes the JSON, prints the table
    and the last line; returns the exit status."""
    res["runs"] = runs
    res["baseline_rps"] = runs["static_ka"]["rps"]
    res["cpu_us_per_req"] = {k: runs[k]["cpu_us_per_req"] for k in
                             ("static_ka", "gettoken_ka", "static_nc", "gettoken_nc") if k in runs}
    if have_module:
        overhead_figures(res, runs)
    res["non200_total"] = sum(r["failures"] for k, r in runs.items())
    res["elapsed_s"] = round(time.time() - t_begin, 1)
    with open(a.json, "w") as fh:
        json.dump(res, fh, indent=2)
    print_runs(a, res, runs, n_small, server_cpus, client_cpus)
    if have_module:
        print_overhead(res)
    print_rss_and_errors(a, res, errs)
    if have_module:
        print(f"overhead_ratio={res['overhead_ratio']:.2f}")
        return 0
    print("overhead_ratio=nan")
    return 1


def overhead_figures(f, runs):
    """GetToken's CPU per request over the static answer's, in signatures."""
    f["gettoken_rps_keepalive"] = runs["gettoken_ka"]["rps"]
    f["gettoken_rps_newconn"] = runs["gettoken_nc"]["rps"]
    f["latency_us"] = {k: {"p50": runs[k]["p50_us"], "p99": runs[k]["p99_us"]}
                       for k in ("static_ka", "gettoken_ka", "static_nc", "gettoken_nc")}
    c = f["cpu_us_per_req"]
    # the ratio of the medians, for comparison with the per-round figure
    sign = {k: median(f["sign_us_in_rounds"][k]) for k in ("ka", "nc")}
    f["overhead_ratio_keepalive_of_medians"] = round(
        (c["gettoken_ka"] - c["static_ka"]) / sign["ka"], 2)
    f["overhead_ratio_newconn_of_medians"] = round(
        (c["gettoken_nc"] - c["static_nc"]) / sign["nc"], 2)
    # the same ratio per round, each against the signature cost measured
    # on httpd's CPU in that round: insensitive to the machine's drift
    for kind in ("ka", "nc"):
        g, st = runs[f"gettoken_{kind}"]["rounds"], runs[f"static_{kind}"]["rounds"]
        f[f"overhead_ratio_{kind}_per_round"] = [
            round((x["cpu_us_per_req"] - y["cpu_us_per_req"]) / su, 2)
            for x, y, su in zip(g, st, f["sign_us_in_rounds"][kind])]
    # overhead_ratio: (GetToken CPU/req - static CPU/req) / sign_us in
    # each round, with that round's own three measurements; the median
    f["overhead_ratio_keepalive"] = round(median(f["overhead_ratio_ka_per_round"]), 2)
    f["overhead_ratio_newconn"] = round(median(f["overhead_ratio_nc_per_round"]), 2)
    f["overhead_ratio"] = f["overhead_ratio_keepalive"]
    variant_figures(f, runs)


def variant_figures(f, runs):
    """The optional vhosts' keep-alive runs (organisation query, PostgreSQL, MariaDB),
    measured in the same keep-alive blocks: their overhead_ratio, and what
    they add to the plain GetToken's, per round against that block's
    signature, the medians."""
    g, st = runs["gettoken_ka"]["rounds"], runs["static_ka"]["rounds"]
    sign = f["sign_us_in_rounds"]["ka"]
    f["variants"] = {}
    for key in ("gettoken_org_ka", "gettoken_pg_ka", "gettoken_mysql_ka"):
        if key not in runs:
            continue
        v = runs[key]["rounds"]
        ratio = [round((x["cpu_us_per_req"] - y["cpu_us_per_req"]) / su, 3)
                 for x, y, su in zip(v, st, sign)]
        added = [round((x["cpu_us_per_req"] - y["cpu_us_per_req"]) / su, 3)
                 for x, y, su in zip(v, g, sign)]
        f["variants"][key] = {
            "label": runs[key]["label"], "rps": runs[key]["rps"],
            "overhead_ratio_per_round": ratio, "overhead_ratio": round(median(ratio), 2),
            "added_signatures_per_round": added, "added_signatures": round(median(added), 3)}


def print_runs(a, f, runs, n_small, server_cpus, client_cpus):
    m = f["machine"]
    print()
    print(f"mod_gettoken benchmark{' (--quick)' if a.quick else ''}: {m['cpu']}, "
          f"{m['nproc']} CPUs, kernel {m['kernel']}, {m['httpd']}, {m['openssl']}")
    print(f"httpd on CPU {server_cpus or 'any'}, load generator on CPU {client_cpus or 'any'}, "
          f"{a.concurrency} connections, {a.devices} device certificates, "
          f"DB {n_small} enrolled; sign_us = {f['sign_us']:.0f} µs (openssl speed rsa2048 "
          f"on httpd's CPU, median of all {2 * len(f['sign_us_in_rounds']['ka'])} readings)")
    print()
    hdr = (f"{'run':46} {'requests':>8} {'rps':>8} {'p50 µs':>8} {'p99 µs':>8} "
           f"{'CPU µs/req':>10} {'non-200':>7} {'bg CPUs':>7}")
    print(hdr)
    print("-" * len(hdr))
    for k, r in runs.items():
        if k.startswith("warmup"):
            continue
        print(f"{r['label']:46} {r['requests']:>8} {r['rps']:>8.0f} {fmt(r.get('p50_us')):>8} "
              f"{fmt(r.get('p99_us')):>8} {fmt(r['cpu_us_per_req'], 1):>10} {r['failures']:>7} "
              f"{fmt(r.get('background_cpus'), 2):>7}")
    print()
    print(f"baseline_rps (static, keep-alive)     {f['baseline_rps']:.0f}")


def print_overhead(f):
    c = f["cpu_us_per_req"]
    print(f"gettoken_rps_keepalive                {f['gettoken_rps_keepalive']:.0f}")
    print(f"gettoken_rps_newconn                  {f['gettoken_rps_newconn']:.0f}")
    print(f"GetToken - static CPU, keep-alive     {c['gettoken_ka'] - c['static_ka']:.1f} µs/req")
    print(f"GetToken - static CPU, new-conn       {c['gettoken_nc'] - c['static_nc']:.1f} µs/req")
    print(f"sign_us in the rounds (openssl speed)  keep-alive blocks "
          f"{f['sign_us_in_rounds']['ka']}, new-conn blocks {f['sign_us_in_rounds']['nc']}")
    print(f"overhead_ratio keep-alive             {f['overhead_ratio_keepalive']:.2f}  (target <= 1.25; "
          f"median of the rounds {f['overhead_ratio_ka_per_round']}; ratio of the medians "
          f"{f['overhead_ratio_keepalive_of_medians']:.2f})")
    print(f"overhead_ratio new-conn               {f['overhead_ratio_newconn']:.2f}  (target <= 1.25; "
          f"median of the rounds {f['overhead_ratio_nc_per_round']}; ratio of the medians "
          f"{f['overhead_ratio_newconn_of_medians']:.2f})")
    for key, v in f.get("variants", {}).items():
        print(f"{v['label']}: overhead_ratio {v['overhead_ratio']:.2f} (rounds "
              f"{v['overhead_ratio_per_round']}), {v['rps']:.0f} rps; over the plain GetToken "
              f"{v['added_signatures']:+.3f} signatures (rounds {v['added_signatures_per_round']})")
    if "scaling" in f:
        sc = f["scaling"]
        print(f"scaling {sc['enrolled_big']} vs {sc['enrolled_small']} enrolled    "
              f"x{sc['ratio_big_small']:.3f}  (target within 10 %; median of the pairs "
              f"{sc['pair_ratios']}; medians {sc['cpu_us_per_req_big']} vs "
              f"{sc['cpu_us_per_req_small']} µs/req)")


def print_rss_and_errors(a, res, errs):
    f = res
    r0, r1, r2 = (res["rss_kb"][k] for k in ("after_warmup", "before_soak", "after_soak"))
    print("RSS of children (kB), after warm-up / before soak / after soak: " +
          ", ".join(f"{r0[p]} / {r1.get(p, '?')} / {r2.get(p, '?')}" for p in r0) +
          f"  (soak growth max {fmt(res['rss_growth_pct_max'], 1)} %, target <= 5 %)")
    print(f"non-200 answers / transport errors, all runs: {f['non200_total']}")
    print(f"results: {a.json}   ({f['elapsed_s']} s)")
    if f["non200_total"]:
        print("error log tail:\n" + errs[-1500:])
