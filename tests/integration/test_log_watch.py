# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The mod_gettoken Authors
"""The harness's error-log watch (conftest.py fails every test on what it
finds): a warning of the module whose id was not declared is found, a
declared one is not, and a crashed child is found whatever was declared."""
import os
import signal
import time

from gt_client import gettoken_fields


def test_an_undeclared_refusal_is_found_a_declared_one_is_not(gt, start_httpd, client):
    h = start_httpd()
    assert h.unexpected_lines() == []           # a clean start-up
    udid = gt.devices["dev_a"].enrollment_id
    assert client(h, None).checkin(gettoken_fields(udid=udid)).status == 401
    h.settle_log()
    lines = h.unexpected_lines()
    assert len(lines) == 1 and "gettoken: GT01204: " in lines[0], lines
    mark = h.log_mark()
    victim = gt.devices["dev_a"].enrollment_id
    assert client(h, "dev_rogue").checkin(gettoken_fields(udid=victim)).status == 403
    assert h.wait_log(mark, r"\[gettoken:warn\].*GT01303: ")    # it was written...
    h.settle_log()
    assert h.unexpected_lines({"GT01303"}) == []                # ...and declared


def test_a_crashed_child_is_found(gt, start_httpd):
    h = start_httpd()
    assert h.unexpected_lines() == []
    for pid in h.children():    # the workers (and mod_cgid's daemon)
        os.kill(pid, signal.SIGSEGV)
    deadline = time.time() + 10
    while not h.crash_lines() and time.time() < deadline:
        time.sleep(0.1)     # the parent notices within a second
    # it reports each dead child as it reaps it, in its once-a-second
    # maintenance: let the log settle and stop the server, so that no report
    # comes after the lines read here (the log watch at the end of the test
    # would take it for a crash nobody expected)
    h.settle_log(quiet=2.5, timeout=15)
    h.stop()
    lines = h.unexpected_lines({"GT01204", "GT01303"})
    assert any("exit signal Segmentation fault" in l for l in lines), h.log_tail(5)
