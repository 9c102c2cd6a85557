#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""perf_buckets.py -- sort `perf script` call stacks of httpd into buckets.

Usage: perf script -i perf.data | bench/perf_buckets.py [REQUESTS FREQ]

Each sample is classified by what is on its stack: inside gettoken_handler
by the module's own steps (the response's way out through ap_pass_brigade is
Apache's, as it is for a static file); otherwise by Apache's request phases;
otherwise TLS (libssl/libcrypto frames outside a request: handshakes and
connection set-up); otherwise connection/MPM/kernel.  With REQUESTS and the
perf frequency FREQ, prints CPU µs per request too (cpu-clock samples).
"""
import re
import sys
from collections import Counter

MODULE = [
    ("module: RSA-2048 signature (EVP_DigestSignFinal)", ("EVP_DigestSignFinal", "RSA_sign")),
    ("module: signing context (EVP_DigestSignInit)", ("EVP_DigestSignInit",)),
    ("module: client cert (mod_ssl PEM, PEM -> DER)", ("from_ssl",)),
    ("module: enrollment query (ap_dbd_acquire, apr_dbd_pvselect)",
     ("gettoken_binding_check",)),
    ("module: plist parse (gt_checkin_parse)", ("gt_checkin_parse",)),
    ("module: body read (gettoken_body_read)", ("gettoken_body_read", "gettoken_body_replay")),
    # the answer's way out; a tail call in send_token hides ap_pass_brigade
    # from some stacks, leaving the first output filters on top
    ("Apache: response output (ap_pass_brigade, TLS write, TCP)",
     ("ap_pass_brigade", "ap_http_header_filter", "ap_content_length_filter",
      "ap_byterange_filter")),
    ("module: response plist (gt_checkin_response_xml)", ("gt_checkin_response_xml",)),
    ("module: identity SHA-256 and validity", ("gt_sha256_hex", "gt_cert_validity")),
    ("module: token (jti, claims, base64url; not the signature)", ("gettoken_run_generate_token",)),
    ("module: other", ()),
]
APACHE = [
    ("Apache: response output (ap_pass_brigade, TLS write, TCP)",
     ("ap_pass_brigade", "ap_core_output_filter", "ap_finalize_request_protocol")),
    ("Apache: reading the request (ap_read_request, TLS read)", ("ap_read_request",)),
    ("Apache: static file handler", ("default_handler",)),
    ("Apache: request processing (walks, hooks, logging)",
     ("ap_process_request_internal", "ap_process_async_request", "ap_process_request",
      "ap_invoke_handler")),
]
OTHER = [
    ("TLS handshake / records outside requests (mod_ssl, OpenSSL)", None),
    ("Apache: connection, MPM, kernel TCP", ("ap_run_process_connection", "start_thread",
                                             "clone3")),
    ("other (unresolved)", ()),
]


def classify(fns, dsos):
    if "gettoken_handler" in fns:
        for name, keys in MODULE:
            if not keys or any(k in fns for k in keys):
                return name
    for name, keys in APACHE:
        if any(k in fns for k in keys):
            return name
    if any(("libssl" in d or "libcrypto" in d or "mod_ssl" in d) for d in dsos):
        return OTHER[0][0]
    if any(k in fns for k in OTHER[1][1]):
        return OTHER[1][0]
    return OTHER[2][0]


def main():
    reqs = float(sys.argv[1]) if len(sys.argv) > 1 else None
    freq = float(sys.argv[2]) if len(sys.argv) > 2 else None
    counts = Counter()
    total = 0
    fns, dsos = set(), set()

    def flush():
        nonlocal total
        if fns or dsos:
            counts[classify(fns, dsos)] += 1
            total += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            fns, dsos = set(), set()
            continue
        m = re.match(r"\s+[0-9a-f]+\s+(\S+)(?:\s+\((.*)\))?", line)
        if m and line[0] in " \t":
            fns.add(m.group(1).split("+")[0])
            if m.group(2):
                dsos.add(m.group(2))
    flush()
    names = [n for n, _ in MODULE + APACHE] + [n for n, _ in OTHER]
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    print(f"{'bucket':62} {'share':>6}" + (f" {'µs/req':>7}" if reqs and freq else ""))
    for n in seen:
        c = counts.get(n, 0)
        if not c:
            continue
        line = f"{n:62} {100.0 * c / total:5.1f}%"
        if reqs and freq:
            line += f" {c / freq / reqs * 1e6:7.1f}"
        print(line)
    line = f"{'total':62} {100.0:5.1f}%"
    if reqs and freq:
        line += f" {total / freq / reqs * 1e6:7.1f}"
    print(line + f"   ({total} samples)")


if __name__ == "__main__":
    main()
