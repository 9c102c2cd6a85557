# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""Refusal log lines: they name the vhost and mark the enrollment id as
claimed until the identity is bound to it (also in GETTOKEN_ENROLLMENT);
the same refusal repeated by one client is logged once at warn, each repeat
only at LogLevel gettoken:info."""
import re
import time

import pytest

from gt_client import gettoken_fields


def vhost_rx(h):
    # "name:port (config file:line)"
    return re.escape("mdm-%d.test:%d (%s:" % (h.port, h.port, h.conf))


def refusal_lines(h, mark, n, timeout=3.0):
    """The refusal lines since mark, once there are n of them (or timeout)."""
    deadline = time.time() + timeout
    while True:
        lines = [l for l in h.log_since(mark).splitlines() if "GetToken refused" in l]
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.gt_log("GT01204")
def test_401_line_names_vhost_and_claimed_enrollment(gt, start_httpd, client):
    h = start_httpd(loglevel="warn")
    udid = gt.devices["dev_a"].enrollment_id
    mark = h.log_mark()
    r = client(h, None).checkin(gettoken_fields(udid=udid))
    assert r.status == 401
    lines = refusal_lines(h, mark, 1)
    assert len(lines) == 1, lines
    assert re.search(r"\[gettoken:warn\].*GetToken refused \(401\): .*; vhost %s\d+\), "
                     r"claimed enrollment %s$" % (vhost_rx(h), re.escape(udid)), lines[0]), lines[0]
    access = h.access_lines(r.test_id)
    assert access and " enr=claimed:%s " % udid in access[0], access


@pytest.mark.gt_log("GT01303")
def test_403_line_marks_the_enrollment_as_claimed(gt, start_httpd, client):
    h = start_httpd(loglevel="warn")
    dev = gt.devices["dev_rogue"]     # a certificate bound to no enrollment
    victim = gt.devices["dev_a"].enrollment_id
    mark = h.log_mark()
    r = client(h, "dev_rogue").checkin(gettoken_fields(udid=victim))
    assert r.status == 403
    lines = refusal_lines(h, mark, 1)
    assert len(lines) == 1, lines
    assert lines[0].endswith(", claimed enrollment %s" % victim), lines[0]
    assert dev.sha256 in lines[0] and re.search(vhost_rx(h), lines[0]), lines[0]
    assert " enr=claimed:%s " % victim in h.access_lines(r.test_id)[0]


@pytest.mark.gt_log("GT01401")
def test_after_binding_the_enrollment_is_not_claimed(gt, start_httpd, client):
    h = start_httpd(loglevel="warn")
    udid = gt.devices["dev_a"].enrollment_id
    mark = h.log_mark()
    r = client(h, "dev_a").checkin(gettoken_fields(service="com.example.none", udid=udid))
    assert r.status == 400
    lines = refusal_lines(h, mark, 1)
    assert len(lines) == 1 and lines[0].endswith("), enrollment %s" % udid), lines
    assert " enr=%s " % udid in h.access_lines(r.test_id)[0]


def refuse_repeatedly(gt, start_httpd, client, loglevel, times):
    """One client sends the same refused GetToken `times` times; returns
    (httpd, log mark before, the enrollment id)."""
    h = start_httpd(loglevel=loglevel)
    udid = gt.devices["dev_unenrolled"].enrollment_id
    mark = h.log_mark()
    c = client(h, "dev_unenrolled")
    for _ in range(times):
        assert c.checkin(gettoken_fields(udid=udid)).status == 403
    return h, mark, udid


@pytest.mark.gt_log("GT01204", "GT01303")
def test_repeats_of_one_client_are_logged_once_at_warn(gt, start_httpd, client):
    h, mark, udid = refuse_repeatedly(gt, start_httpd, client, "warn", 5)
    lines = refusal_lines(h, mark, 1)
    assert len(lines) == 1 and "GetToken refused (403)" in lines[0], lines
    # another reason from the same client is a line of its own
    assert client(h, None).checkin(gettoken_fields(udid=udid)).status == 401
    lines = h.wait_log(mark, r"GetToken refused \(401\)")
    assert len(lines) == 1, lines
    assert len(refusal_lines(h, mark, 2)) == 2


@pytest.mark.gt_log("GT01303")
def test_loglevel_info_shows_every_repeat(gt, start_httpd, client):
    h, mark, _ = refuse_repeatedly(gt, start_httpd, client, "warn gettoken:info", 4)
    lines = refusal_lines(h, mark, 4)
    assert len(lines) == 4, lines
    assert ":warn]" in lines[0] and "repeated" not in lines[0], lines[0]
    assert all(":info]" in l and l.endswith("; repeated within 60 s") for l in lines[1:]), lines
