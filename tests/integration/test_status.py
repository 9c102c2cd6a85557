# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""mod_status: the GetToken section and its ?auto counters,
server-wide across children and kept over graceful restarts."""
import os
import subprocess
import time

import pytest

from gt_client import checkin_body, gettoken_fields, token_from_response
from gt_httpd import APACHE, MODDIR, httpd_env

STATUS_GLOBAL = "LoadModule status_module %s/mod_status.so" % MODDIR
STATUS_LOCATION = "<Location /server-status>\n    SetHandler server-status\n</Location>"


def status_server(gt, start_httpd, extra_global=""):
    vh = gt.vhost(directives=STATUS_LOCATION)
    return start_httpd([vh], extra_global=STATUS_GLOBAL + "\n" + extra_global)


def auto(gt, h):
    """The GetToken* counters of /server-status?auto, read on a new connection."""
    with gt.client(h.port, None) as c:
        r = c.request(method="GET", path="/server-status?auto", content_type=None, keep=False)
    assert r.status == 200, (r.status, r.body[:200])
    out = {}
    for line in r.body.decode().splitlines():
        k, _, v = line.partition(": ")
        if k.startswith("GetToken"):
            out[k] = int(v)
    return out


def one_request(gt, h, device, fields):
    """One check-in on its own connection; returns the status."""
    with gt.client(h.port, device) as c:
        r = c.request(checkin_body(fields), keep=False)
    return r


def maid_fields(gt, device="dev_a"):
    return gettoken_fields(udid=gt.devices[device].enrollment_id)


def diff(after, before):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


@pytest.mark.gt_log("GT01204", "GT01303", "GT01401", "GT01407")
def test_counters_move_by_exactly_what_was_done(gt, start_httpd):
    h = status_server(gt, start_httpd)
    before = auto(gt, h)
    for name in ("Issued", "Refused", "PassedThrough", "WatchAdmitted"):
        assert "GetToken" + name in before, before
    for _ in range(3):
        token_from_response(one_request(gt, h, "dev_a", maid_fields(gt)))
    for _ in range(2):     # no client certificate
        assert one_request(gt, h, None, maid_fields(gt)).status == 401
    assert one_request(gt, h, "dev_unenrolled", maid_fields(gt, "dev_unenrolled")).status == 403
    bad = gettoken_fields()        # no UDID / EnrollmentID
    assert one_request(gt, h, "dev_a", bad).status == 400
    unknown = gettoken_fields(service="com.example.unknown", udid=gt.devices["dev_a"].enrollment_id)
    assert one_request(gt, h, "dev_a", unknown).status == 400
    for _ in range(2):
        r = one_request(gt, h, "dev_a", {"MessageType": "Authenticate", "UDID": "X"})
        assert r.status == 200 and r.body.startswith(b"BACKEND-OK"), r.body[:100]
    d = diff(auto(gt, h), before)
    signing_total = d.pop("GetTokenSigningMicrosecondsTotal", 0)
    mean = d.pop("GetTokenSigningMicrosecondsMean", 0)
    assert d == {"GetTokenIssued": 3, "GetTokenIssuedMaid": 3, "GetTokenSigned": 3,
                 "GetTokenRefused": 5, "GetTokenRefused401": 2, "GetTokenRefused403": 1,
                 "GetTokenRefused400": 2, "GetTokenPassedThrough": 2}, d
    assert signing_total > 0 and mean > 0


def test_html_page_has_a_gettoken_section(gt, start_httpd):
    h = status_server(gt, start_httpd)
    token_from_response(one_request(gt, h, "dev_a", maid_fields(gt)))
    with gt.client(h.port, None) as c:
        r = c.request(method="GET", path="/server-status", content_type=None, keep=False)
    assert r.status == 200
    page = r.body.decode()
    assert "<h2><a name=\"gettoken\">GetToken</a></h2>" in page
    assert "Tokens issued: 1 (com.apple.maid 1," in page, page[-800:]


@pytest.mark.gt_log("GT01204")
def test_counters_are_shared_by_every_child(gt, start_httpd):
    # every connection gets a fresh child: the counts can only add up when
    # all children write to the same memory.  Children that served their
    # connection keep their scoreboard slot while they exit: with the
    # harness's ServerLimit 2 no new child could start ("scoreboard is full")
    # and a connection waited until the client gave up.
    h = status_server(gt, start_httpd,
                      "StartServers 2\nServerLimit 8\nMaxConnectionsPerChild 1")
    deadline = time.time() + 10
    while not children(h.pid) and time.time() < deadline:
        time.sleep(0.1)
    first_children = children(h.pid)
    assert first_children
    before = auto(gt, h)
    for _ in range(4):
        token_from_response(one_request(gt, h, "dev_a", maid_fields(gt)))
    assert one_request(gt, h, None, maid_fields(gt)).status == 401
    d = diff(auto(gt, h), before)
    assert d["GetTokenIssued"] == 4 and d["GetTokenRefused401"] == 1, d
    # the children that were there first have served their one connection
    # each and are gone: other processes did the counting
    deadline = time.time() + 10
    while first_children & children(h.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not (first_children & children(h.pid)), first_children


def threads(pid):
    try:
        with open("/proc/%s/status" % pid) as f:
            return int(next(l for l in f if l.startswith("Threads:")).split()[1])
    except (OSError, StopIteration):
        return 0


def children(pid):
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and threads(d) > 1:
                out.add(int(d))     # a worker child (mod_cgid's daemon has one thread)
    return out


def graceful(h, timeout=20):
    mark = h.log_mark()
    subprocess.run([APACHE, "-f", h.conf, "-k", "graceful"], check=True, timeout=60, env=httpd_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert h.wait_log(mark, r"resuming normal operations", timeout=timeout), h.log_tail()
    deadline = time.time() + timeout
    while time.time() < deadline and not h._port_open(h.port):
        time.sleep(0.1)


@pytest.mark.gt_log("GT01204")
def test_counters_survive_a_graceful_restart(gt, start_httpd):
    h = status_server(gt, start_httpd)
    for _ in range(2):
        token_from_response(one_request(gt, h, "dev_a", maid_fields(gt)))
    assert one_request(gt, h, None, maid_fields(gt)).status == 401
    before = auto(gt, h)
    assert before["GetTokenIssued"] == 2 and before["GetTokenRefused"] == 1, before
    graceful(h)
    assert auto(gt, h)["GetTokenIssued"] == 2
    token_from_response(one_request(gt, h, "dev_a", maid_fields(gt)))
    after = auto(gt, h)
    assert after["GetTokenIssued"] == 3 and after["GetTokenRefused"] == 1, after


@pytest.mark.gt_log("GT01904")
def test_watch_pairing_issued_and_admitted(gt, start_httpd):
    from pairing_helpers import issue_request, verify_request, watch_vhost, new_watch_udid
    phone = gt.vhost(directives="GetTokenWatchPairingKey %s\n%s"
                     % (gt.pki.maid_ec.key_path, STATUS_LOCATION))
    watch = watch_vhost(gt, [(phone.uuid, gt.pki.maid_ec.cert_path)], gt.make_db("status-watch", []))
    h = start_httpd([phone, watch], extra_global=STATUS_GLOBAL)
    before = auto(gt, h)
    tokens = []
    for _ in range(2):
        w, secret = new_watch_udid(), "sec-status"
        tokens.append((token_from_response(issue_request(gt, phone.port, watch=w, secret=secret)),
                       w, secret))
    for tok in tokens:
        assert verify_request(gt, watch.port, *tok).status == 200
    assert verify_request(gt, watch.port, *tokens[0]).status == 403     # replayed: not admitted
    d = diff(auto(gt, h), before)
    d.pop("GetTokenSigningMicrosecondsTotal", None)
    d.pop("GetTokenSigningMicrosecondsMean", None)
    assert d == {"GetTokenIssued": 2, "GetTokenIssuedWatchPairing": 2, "GetTokenSigned": 2,
                 "GetTokenWatchAdmitted": 2}, d
